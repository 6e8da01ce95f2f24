"""ID tokens the emulator signs: compact JWS, HS256 keyed with the client secret.

OpenID Connect Core §10.1 allows HMAC with the client secret. keyturn checks the claims of an
ID token that came straight from the token endpoint (``nonce``, ``aud``, ``azp``, ``iss``,
``sub``, and ``exp`` and ``iat`` on its own clock) and not its signature, so the algorithm only
has to be a valid one. ``iat`` and ``exp`` come from the emulator's clock: a test whose client
runs on a fake clock gives the emulator the same one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["sign_id_token"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_id_token(claims: Mapping[str, Any], key: str) -> str:
    """A compact HS256 JWS of ``claims``.

    :param claims: the payload (``iss``, ``aud``, ``sub``, ``iat``, ``exp``, ...).
    :param key: the HMAC key: the client secret.
    :return: ``header.payload.signature``.
    """
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(dict(claims), separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"
