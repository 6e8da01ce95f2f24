"""Client authentication at the token and revocation endpoints (RFC 6749 §2.3)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from urllib.parse import unquote_plus

from starlette.requests import Request

from keyturn_emulator.profiles import Behaviour
from keyturn_emulator.state import Refusal

from .site import Site

__all__ = ["authenticate", "basic"]


def basic(header: str | None) -> tuple[str, str] | None:
    """``(client_id, secret)`` from ``Authorization: Basic``, each form-decoded (§2.3.1).

    :param header: the ``Authorization`` header, if any.
    :return: ``None`` when there is no Basic header; ``("", "")`` when it is malformed.
    """
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return ("", "")
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate(site: Site, b: Behaviour, request: Request, params: Mapping[str, str]) -> str:
    """The authenticated client id, from HTTP Basic or from the body.

    :param site: holds the registered client.
    :param b: the profile (whether it refuses two methods at once).
    :param request: the request, for its ``Authorization`` header.
    :param params: the request's body parameters.
    :return: the client id.
    :raises Refusal: the client is missing, unknown or has the wrong secret.
    """
    credentials = basic(request.headers.get("authorization"))
    body_id = params.get("client_id")
    body_secret = params.get("client_secret")
    if credentials is not None:
        if b.single_auth_method and body_secret is not None:
            raise Refusal("two_auth_methods")
        client_id, secret = credentials
        if body_id is not None and body_id != client_id:
            raise Refusal("bad_secret")
    else:
        client_id, secret = body_id or "", body_secret or ""
    if not client_id:
        raise Refusal("missing_client")
    if not hmac.compare_digest(client_id.encode(), site.client_id.encode()):
        raise Refusal("unknown_client")
    if not secret:
        raise Refusal("missing_secret")
    if not hmac.compare_digest(secret.encode(), site.client_secret.encode()):
        raise Refusal("bad_secret")
    return client_id
