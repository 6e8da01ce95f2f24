"""Checks on an ID token received straight from the token endpoint.

OpenID Connect Core §3.1.3.7 lets a client that received the ID token directly from the
token endpoint over TLS rely on the TLS server check instead of the signature. keyturn
therefore reads the claims without verifying the signature and checks what binds the token
to this sign-in: ``nonce`` (replay), ``aud`` (our client id) and ``iss``. An ID token that
came any other way must be verified with the provider's keys before it is trusted.
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Collection
from typing import Any

from .errors import CallbackError

__all__ = ["IdTokenError", "check_id_token", "unverified_claims"]


class IdTokenError(CallbackError):
    """The ID token does not belong to this sign-in (nonce, audience or issuer differ)."""


def unverified_claims(id_token: str) -> dict[str, Any]:
    """The payload of a compact JWS, not verified.

    :raises IdTokenError: the token is not three dot-separated parts with a JSON payload.
    """
    parts = id_token.split(".")
    if len(parts) != 3:
        raise IdTokenError("the ID token is not a compact JWT")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, TypeError) as exc:
        raise IdTokenError("the ID token's payload is not base64url JSON") from exc
    if not isinstance(claims, dict):
        raise IdTokenError("the ID token's payload is not a JSON object")
    return claims


def check_id_token(
    id_token: str,
    *,
    nonce: str | None,
    client_id: str,
    issuer: str | None,
    issuer_aliases: Collection[str] = (),
) -> dict[str, Any]:
    """Check ``nonce``, ``aud`` and ``iss`` and return the claims.

    :param issuer_aliases: other spellings of ``issuer`` the provider uses (its spec's
        ``issuer_aliases``).
    :raises IdTokenError: naming the claim that does not match (never its value).
    """
    claims = unverified_claims(id_token)
    if nonce is not None:
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise IdTokenError("the ID token's nonce does not match the authorization request")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if not any(isinstance(aud, str) and aud == client_id for aud in audiences):
        raise IdTokenError("the ID token was issued to another client (aud)")
    if issuer is not None:
        accepted = {issuer, *issuer_aliases}
        sent_issuer = claims.get("iss")
        if not isinstance(sent_issuer, str) or sent_issuer not in accepted:
            raise IdTokenError("the ID token comes from another issuer (iss)")
    return claims
