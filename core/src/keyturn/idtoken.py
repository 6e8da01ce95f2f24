"""Checks on an ID token: its signature against the provider's keys, and its claims.

**Signature.** When the provider's spec has a ``jwks_uri`` (set, or read from its discovery
document), the client verifies every ID token it receives, at sign-in and on refresh, before
anything else (:func:`verify_signature`, with the key chosen as :mod:`keyturn.jwks` says):

* the algorithm is the header's ``alg``, accepted only if it is among the spec's
  ``id_token_signing_algs`` *and* keyturn verifies it with a key set
  (:data:`keyturn.jwks.SIGNING_ALGORITHMS`): ``none`` and ``HS256``/``HS384``/``HS512`` are
  always refused, so a token "signed" with the bytes of a public key (algorithm confusion)
  never passes;
* the algorithm must fit the chosen key (type, curve, the key's own ``alg``);
* a header with ``crit`` is refused: keyturn understands no JWS extension (RFC 7515 §4.1.11);
* ``at_hash`` and ``c_hash``, when present, must be the left half of the hash of the access
  token and of the code (OpenID Connect Core 1.0 §3.1.3.6 and §3.3.2.11,
  https://openid.net/specs/openid-connect-core-1_0.html), the hash being the algorithm's:
  SHA-256 for ``*256``, SHA-384, SHA-512; for ``EdDSA`` and ``Ed25519`` on Ed25519, SHA-512,
  and on Ed448 SHAKE256 with a 114-byte output (OpenID Connect Token Hash Algorithms 1.0,
  https://openid.net/specs/openid-connect-token-hash-algorithms-1_0.html).

Without a ``jwks_uri``, the signature is **not** verified: OpenID Connect Core §3.1.3.7
(step 6) lets a client that received the ID token directly from the token endpoint over TLS
rely on the TLS server check instead, and that is the only way keyturn receives one. An ID
token that came any other way (a front-channel response, another service) must be verified
with the provider's keys before it is trusted.

**Claims**, with the client's clock and leeway (:func:`check_id_token`, §3.1.3.7):

* ``iss`` is present, and is the provider's issuer (or one of its declared spellings) when
  its spec names one; for a multi-tenant issuer template, the template with each placeholder
  filled from the token's own claim (``{tenantid}`` from ``tid``), which must be a single
  path segment (and among the allowed values when the spec lists them);
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
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import CallbackError

if TYPE_CHECKING:
    from .jwks import KeySet

__all__ = [
    "DEFAULT_LEEWAY",
    "IdTokenError",
    "UnknownSigningKeyError",
    "VerifiedIdToken",
    "check_id_token",
    "check_same_session",
    "check_same_subject",
    "check_token_hashes",
    "token_hash",
    "unverified_claims",
    "verify_signature",
]

#: Seconds of clock skew allowed on ``exp`` and ``iat`` when the caller names none: the
#: clients' default ``leeway``.
DEFAULT_LEEWAY = 60.0


class IdTokenError(CallbackError):
    """The ID token does not belong to this sign-in (signature, nonce, audience, issuer,
    subject, times, token hashes), or the userinfo answer is about another subject than the
    ID token."""


class UnknownSigningKeyError(IdTokenError):
    """No key of the provider's key set fits the ID token: its ``kid`` is not in the set (or,
    without a ``kid``, no key of its type is). The client fetches the set again once (see
    :mod:`keyturn.jwks`) before it gives up with this error."""


#: A base64url segment of a compact JWS (no padding).
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
#: The longest ID token verified, in characters. Entra ID stops listing groups at 200 (about
#: 10 KB), but Okta and Keycloak list every group they are asked to: 2,000 GUIDs make about
#: 105 KB. Verifying costs a hash of the token, about a millisecond at this bound.
MAX_ID_TOKEN = 512 * 1024


@dataclass(frozen=True, repr=False)
class VerifiedIdToken:
    """An ID token whose signature :func:`verify_signature` has verified.

    :ivar claims: its payload.
    :ivar alg: the algorithm it was signed with.
    :ivar curve: the curve of the key that verified it (EC and OKP keys), else ``None``.
    :ivar kid: the key id of that key, or ``None``.
    """

    claims: dict[str, Any]
    alg: str
    curve: str | None
    kid: str | None

    def __repr__(self) -> str:
        return f"VerifiedIdToken(alg={self.alg!r}, kid={self.kid!r})"


def _decode_segment(segment: str, what: str) -> bytes:
    if not _SEGMENT.fullmatch(segment):
        raise IdTokenError(f"the ID token's {what} is not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (ValueError, binascii.Error):
        raise IdTokenError(f"the ID token's {what} is not base64url") from None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise IdTokenError(f"the ID token's {what} is not JSON") from None
    if not isinstance(value, dict):
        raise IdTokenError(f"the ID token's {what} is not a JSON object")
    return value


def verify_signature(id_token: str, keys: KeySet, algorithms: Collection[str]) -> VerifiedIdToken:
    """Verify a compact JWS ID token against a provider's key set (see the module's rules).

    :param id_token: the ID token.
    :param keys: the provider's usable keys (:func:`keyturn.jwks.parse_key_set`).
    :param algorithms: the algorithms the provider's spec allows (``id_token_signing_algs``).
    :return: the verified token's claims, algorithm and key.
    :raises UnknownSigningKeyError: no key of the set fits the token (fetch the set again).
    :raises IdTokenError: anything else: malformed, an algorithm refused or not fitting the
        key, several keys that cannot be told apart, a signature that does not verify. The
        message names the part at fault, never a value of the token.
    """
    from joserfc.jws import JWSRegistry

    from .jwks import SIGNING_ALGORITHMS, AmbiguousKeyError, UnknownKeyError

    if len(id_token) > MAX_ID_TOKEN:
        raise IdTokenError("the ID token is too long to be verified")
    parts = id_token.split(".")
    if len(parts) != 3:
        raise IdTokenError("the ID token is not a compact JWS")
    header = _json_object(_decode_segment(parts[0], "header"), "header")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in SIGNING_ALGORITHMS:
        raise IdTokenError(
            "the ID token's algorithm is refused: none, HMAC or unknown algorithms are never "
            "accepted with the provider's keys (alg)"
        )
    if alg not in algorithms:
        raise IdTokenError(
            "the ID token is signed with an algorithm the provider's spec does "
            "not allow (alg; id_token_signing_algs)"
        )
    if "crit" in header:
        raise IdTokenError("the ID token's header asks for extensions keyturn does not know (crit)")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise IdTokenError("the ID token's key id is not a string (kid)")
    try:
        key = keys.select(kid, alg)
    except UnknownKeyError:
        raise UnknownSigningKeyError(
            "the ID token is signed with a key the provider's key set does not hold (kid)"
            if kid is not None
            else "the ID token names no key (kid), and no key of the provider's set fits its alg"
        ) from None
    except AmbiguousKeyError:
        raise IdTokenError(
            "the provider's key set holds several keys that fit the ID token and nothing tells "
            "them apart (kid)"
        ) from None
    signature = _decode_segment(parts[2], "signature")
    payload = _decode_segment(parts[1], "payload")
    model = JWSRegistry.algorithms[alg]
    signing_input = (parts[0] + "." + parts[1]).encode("ascii")
    try:
        model.check_key(key.key)
        valid = model.verify(signing_input, signature, key.key)
    except Exception:  # a key or signature cryptography cannot use: not a valid signature
        valid = False
    if not valid:
        raise IdTokenError("the ID token's signature does not verify with the provider's key")
    claims = _json_object(payload, "payload")
    return VerifiedIdToken(claims, alg, key.curve, key.kid)


#: The hash of ``at_hash`` and ``c_hash`` for each algorithm whose name settles it.
_SHA = {
    **{
        f"{family}{size}": f"sha{size}"
        for family in ("RS", "PS", "ES", "HS")
        for size in (256, 384, 512)
    },
    "ES256K": "sha256",
}


def token_hash(value: str, alg: str, curve: str | None = None) -> str:
    """``at_hash`` / ``c_hash`` of ``value`` for a token signed with ``alg`` (and ``curve``).

    The base64url (unpadded) left half of the hash of ``value``'s ASCII octets; the hash is
    the algorithm's (see the module's description).

    :raises ValueError: no hash is defined for ``alg`` (and ``curve``).
    """
    data = value.encode("utf-8")
    if alg == "Ed448" or (alg == "EdDSA" and curve == "Ed448"):
        digest = hashlib.shake_256(data).digest(114)
    elif alg == "Ed25519" or (alg == "EdDSA" and curve == "Ed25519"):
        digest = hashlib.sha512(data).digest()
    elif alg in _SHA:
        digest = hashlib.new(_SHA[alg], data).digest()
    else:
        raise ValueError(f"no token hash is defined for {alg}")
    half = digest[: len(digest) // 2]
    return base64.urlsafe_b64encode(half).rstrip(b"=").decode("ascii")


def check_token_hashes(
    verified: VerifiedIdToken, *, access_token: str | None = None, code: str | None = None
) -> None:
    """Check ``at_hash`` against the access token and ``c_hash`` against the code, if present.

    A hash claim is checked when the token carries it and the value it binds is given.

    :raises IdTokenError: a hash claim that is not a string or does not match (named, never
        shown).
    """
    for claim, value in (("at_hash", access_token), ("c_hash", code)):
        sent = verified.claims.get(claim)
        if sent is None or value is None:
            continue
        expected = token_hash(value, verified.alg, verified.curve)
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
            what = "access token" if claim == "at_hash" else "authorization code"
            raise IdTokenError(f"the ID token's {claim} does not match the {what}")


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
    issuer_claims: Mapping[str, str] | None = None,
    issuer_claim_values: Mapping[str, Collection[str]] | None = None,
) -> dict[str, Any]:
    """Check an ID token's claims (OpenID Connect Core §3.1.3.7) and return them.

    The signature is not verified here: see :func:`verify_signature`.

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
    :param issuer_claims: when ``issuer`` is a template, its placeholders and the claims that
        fill them (the spec's ``issuer_claims``): ``{"tenantid": "tid"}``.
    :param issuer_claim_values: for a placeholder, the only values accepted.
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
    if issuer is not None:
        if issuer_claims:
            issuer = _fill_issuer(issuer, claims, issuer_claims, issuer_claim_values or {})
        if sent_issuer not in {issuer, *issuer_aliases}:
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


#: What a claim filling an issuer's placeholder may be: one path segment, no dot segment.
_SEGMENT_VALUE = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,127}")


def _fill_issuer(
    template: str,
    claims: Mapping[str, Any],
    placeholders: Mapping[str, str],
    allowed: Mapping[str, Collection[str]],
) -> str:
    """The issuer ``template`` names for this token: each placeholder filled from its claim.

    :raises IdTokenError: a claim that is missing, not a plausible single path segment, or
        not among the allowed values (named, never shown).
    """
    issuer = template
    for placeholder, claim in placeholders.items():
        value = claims.get(claim)
        if not isinstance(value, str) or not _SEGMENT_VALUE.fullmatch(value):
            raise IdTokenError(
                f"the ID token's {claim} cannot fill the issuer's {{{placeholder}}} (iss)"
            )
        if placeholder in allowed and value not in allowed[placeholder]:
            raise IdTokenError(f"the ID token's {claim} is not one this app accepts (iss)")
        issuer = issuer.replace("{" + placeholder + "}", value)
    return issuer


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
