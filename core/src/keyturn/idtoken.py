"""Checks on an ID token received straight from the token endpoint.

keyturn does **not** verify an ID token's signature: it has no key set (JWKS) support yet.
OpenID Connect Core §3.1.3.7 (step 6) lets a client that received the ID token directly from
the token endpoint over TLS rely on the TLS server check instead of the signature, and that is
the only way keyturn receives one. An ID token that came any other way (a front-channel
response, another service) must be verified with the provider's keys before it is trusted;
these functions do not do that.

What is checked, with the client's clock and leeway (:func:`check_id_token`, §3.1.3.7):

* ``iss`` is present, and is the provider's issuer (or one of its declared spellings) when
  its spec names one;
* ``aud`` lists our client id, and no other audience the provider's spec does not trust;
* ``azp``, when present, is our client id;
* ``sub`` is a non-empty string;
* ``exp`` and ``iat`` are numbers; ``exp`` is not past (beyond the leeway) and ``iat`` is not
  in the future (beyond the leeway);
* ``nonce`` is the one sent with the authorization request (at sign-in).

Besides, at sign-in the userinfo answer must be about the ID token's subject
(:func:`check_same_subject`, §5.3.2), and an ID token that comes with a refresh must name the
same issuer, subject and audience as the one it replaces (:func:`check_same_session`, §12.2).
"""

from __future__ import annotations

import base64
import hmac
import json
import math
import time
from collections.abc import Collection, Mapping
from typing import Any

from .errors import CallbackError

__all__ = [
    "DEFAULT_LEEWAY",
    "IdTokenError",
    "check_id_token",
    "check_same_session",
    "check_same_subject",
    "unverified_claims",
]

#: Seconds of clock skew allowed on ``exp`` and ``iat`` when the caller names none: the
#: clients' default ``leeway``.
DEFAULT_LEEWAY = 60.0


class IdTokenError(CallbackError):
    """The ID token does not belong to this sign-in (nonce, audience, issuer, subject, times),
    or the userinfo answer is about another subject than the ID token."""


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
    except (ValueError, TypeError, RecursionError) as exc:
        raise IdTokenError("the ID token's payload is not base64url JSON") from exc
    if not isinstance(claims, dict):
        raise IdTokenError("the ID token's payload is not a JSON object")
    return claims


def _audiences(claims: Mapping[str, Any]) -> list[str]:
    """``aud`` as a list of strings.

    :raises IdTokenError: absent, empty, or not a string or a list of strings.
    """
    audience = claims.get("aud")
    sent: list[Any] = audience if isinstance(audience, list) else [audience]
    audiences = [aud for aud in sent if isinstance(aud, str) and aud]
    if not audiences or len(audiences) != len(sent):
        raise IdTokenError("the ID token names no audience it can be checked against (aud)")
    return audiences


def _time(claims: Mapping[str, Any], name: str) -> float:
    """A NumericDate claim (``exp``, ``iat``) as a number.

    :raises IdTokenError: absent or not a finite number.
    """
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise IdTokenError(f"the ID token has no usable {name}")
    return float(value)


def check_id_token(
    id_token: str,
    *,
    nonce: str | None,
    client_id: str,
    issuer: str | None,
    issuer_aliases: Collection[str] = (),
    trusted_audiences: Collection[str] = (),
    now: float | None = None,
    leeway: float = DEFAULT_LEEWAY,
) -> dict[str, Any]:
    """Check an ID token's claims (OpenID Connect Core §3.1.3.7) and return them.

    The signature is not verified: see the module's description.

    :param nonce: the nonce of the authorization request; ``None`` skips the check (a
        refresh, or a sign-in that sent none).
    :param client_id: our client id: the audience the token must name.
    :param issuer: the provider's issuer; ``None`` skips comparing ``iss`` to it (``iss``
        must still be there).
    :param issuer_aliases: other spellings of ``issuer`` the provider uses (its spec's
        ``issuer_aliases``).
    :param trusted_audiences: audiences besides ``client_id`` the token may also name (its
        spec's ``trusted_audiences``); any other one refuses it.
    :param now: the current time in epoch seconds (``time.time()``): pass the client's clock.
    :param leeway: seconds of clock skew allowed on ``exp`` and ``iat``.
    :raises IdTokenError: naming the claim that does not pass (never its value).
    """
    claims = unverified_claims(id_token)
    if nonce is not None:
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise IdTokenError("the ID token's nonce does not match the authorization request")
    audiences = _audiences(claims)
    if client_id not in audiences:
        raise IdTokenError("the ID token was issued to another client (aud)")
    if any(aud != client_id and aud not in trusted_audiences for aud in audiences):
        raise IdTokenError("the ID token also names an audience this client does not trust (aud)")
    if "azp" in claims and claims["azp"] != client_id:
        raise IdTokenError("the ID token was issued to another authorized party (azp)")
    sent_issuer = claims.get("iss")
    if not isinstance(sent_issuer, str) or not sent_issuer:
        raise IdTokenError("the ID token names no issuer (iss)")
    if issuer is not None and sent_issuer not in {issuer, *issuer_aliases}:
        raise IdTokenError("the ID token comes from another issuer (iss)")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise IdTokenError("the ID token names no subject (sub)")
    current = time.time() if now is None else now
    if _time(claims, "exp") + leeway <= current:
        raise IdTokenError("the ID token has expired (exp)")
    if _time(claims, "iat") - leeway > current:
        raise IdTokenError("the ID token was issued in the future (iat)")
    return claims


def check_same_subject(claims: Mapping[str, Any], userinfo_sub: object) -> None:
    """Refuse a userinfo answer about another subject than the ID token (OIDC Core §5.3.2).

    :param claims: the ID token's checked claims.
    :param userinfo_sub: the ``sub`` of the userinfo answer (an integer counts as its text).
    :raises IdTokenError: the two differ.
    """
    sent = str(userinfo_sub) if isinstance(userinfo_sub, int | str) else None
    if sent is None or sent != claims.get("sub"):
        raise IdTokenError("the userinfo answer is about another subject than the ID token (sub)")


def check_same_session(claims: Mapping[str, Any], previous: Mapping[str, Any]) -> None:
    """Refuse a refreshed ID token of another session than ``previous`` (OIDC Core §12.2).

    The new token's ``iss`` and ``sub`` must be the same as the previous one's, and so must its
    audiences (in any order). Each token has already passed :func:`check_id_token`.

    :param claims: the new ID token's checked claims.
    :param previous: the claims of the ID token it replaces.
    :raises IdTokenError: naming the claim that differs (never its value).
    """
    for name in ("iss", "sub"):
        if claims.get(name) != previous.get(name):
            raise IdTokenError(f"the refreshed ID token names another {name} than the session's")
    if set(_audiences(claims)) != set(_audiences(previous)):
        raise IdTokenError("the refreshed ID token names another aud than the session's")
