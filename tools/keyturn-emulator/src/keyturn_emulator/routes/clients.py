"""Client authentication at the token and revocation endpoints: the secret (RFC 6749 §2.3.1),
and, where the profile takes them, JWT assertions (RFC 7523 §2.2,
https://www.rfc-editor.org/rfc/rfc7523; OpenID Connect Core §9,
https://openid.net/specs/openid-connect-core-1_0.html#ClientAuthentication).

A request with ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``
and a ``client_assertion`` authenticates with the assertion alone (a Basic header or a
``client_secret`` beside it is two methods: refused). The assertion is

* ``client_secret_jwt`` when its ``alg`` is HS256, HS384 or HS512: the HMAC key is the client
  secret;
* ``private_key_jwt`` when it is RS256/384/512, PS256/384/512, ES256/384/512, Ed25519 or
  Ed448 (RFC 9864's names; the deprecated ``EdDSA`` is refused): it must verify with a public
  key registered for the client (the one its ``kid`` names, or any registered key when it
  names none);

and any other ``alg``, ``none`` included, is refused. Then, with the emulator's clock:

* ``iss`` and ``sub`` are both the client id (and so is a ``client_id`` parameter, if sent);
* ``aud`` (a string or a list) contains the token endpoint's URL, the issuer, or the URL of
  the endpoint the assertion is presented to;
* ``exp`` is in the future, and at most :data:`ASSERTION_MAX_LIFETIME` (5 minutes) ahead, as
  an assertion should be short-lived; ``nbf``, when present, is not in the future;
* ``jti`` is a non-empty string never accepted before from this client (a replay is
  refused; see :meth:`keyturn_emulator.registration.Registration.spend_jti`).

Each failure is the profile's ``bad_assertion`` answer, 401 ``invalid_client`` (RFC 7523
§3.2 and OpenID Connect Core §9), whose ``error_description`` names the check, never a
secret. The ``jti`` is spent only once every other check has passed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from starlette.requests import Request

from keyturn_emulator.profiles import Behaviour
from keyturn_emulator.registration import PublicKey
from keyturn_emulator.state import Refusal

from .site import Site

__all__ = [
    "ASSERTION_MAX_LIFETIME",
    "ASSERTION_TYPE",
    "PRIVATE_KEY_JWT_ALGS",
    "SECRET_JWT_ALGS",
    "SECRET_JWT_MAX_LIFETIME",
    "authenticate",
    "basic",
]

#: The longest lifetime (``exp`` - ``iat``) of a client secret JWT: Apple's six months,
#: https://developer.apple.com/documentation/signinwithapplerestapi/generate-and-validate-tokens
SECRET_JWT_MAX_LIFETIME = 15_777_000

#: ``client_assertion_type`` of a JWT assertion (RFC 7523 §2.2).
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Seconds a client assertion's ``exp`` may lie ahead of the emulator's clock.
ASSERTION_MAX_LIFETIME = 300
#: Algorithms of ``client_secret_jwt`` assertions: HMAC with the client secret.
SECRET_JWT_ALGS = ("HS256", "HS384", "HS512")
#: Algorithms of ``private_key_jwt`` assertions: signatures with the client's key pair.
PRIVATE_KEY_JWT_ALGS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "Ed25519",
    "Ed448",
)


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
    """The authenticated client id, from HTTP Basic, the body, or a JWT assertion.

    Each success is counted as ``auth_<method>`` (``auth_client_secret_basic``,
    ``auth_private_key_jwt``...).

    :param site: holds the registered client.
    :param b: the profile (whether it refuses two methods at once, takes assertions).
    :param request: the request, for its ``Authorization`` header and URL.
    :param params: the request's body parameters.
    :return: the client id.
    :raises Refusal: the client is missing, unknown, has the wrong secret, or a bad
        assertion.
    """
    method, client_id = _authenticate(site, b, request, params)
    site.store.count(b.name, f"auth_{method}")
    return client_id


def _authenticate(
    site: Site, b: Behaviour, request: Request, params: Mapping[str, str]
) -> tuple[str, str]:
    credentials = basic(request.headers.get("authorization"))
    body_id = params.get("client_id")
    body_secret = params.get("client_secret")
    if b.jwt_client_auth and ("client_assertion" in params or "client_assertion_type" in params):
        if credentials is not None or body_secret is not None:
            raise Refusal("two_auth_methods")
        return _assertion(site, b, request, params)
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
    if b.secret_jwt_audience is not None:
        _check_secret_jwt(site, b, client_id, secret)
    elif not hmac.compare_digest(secret.encode(), site.client_secret.encode()):
        raise Refusal("bad_secret")
    return ("client_secret_basic" if credentials is not None else "client_secret_post"), client_id


def _bad(detail: str) -> Refusal:
    return Refusal("bad_assertion", f"Client assertion refused: {detail}.")


def _assertion(
    site: Site, b: Behaviour, request: Request, params: Mapping[str, str]
) -> tuple[str, str]:
    """``(method, client_id)`` of a request that authenticates with a JWT assertion."""
    if params.get("client_assertion_type") != ASSERTION_TYPE:
        raise _bad(f"client_assertion_type must be {ASSERTION_TYPE}")
    assertion = params.get("client_assertion", "")
    if not assertion:
        raise _bad("client_assertion is missing")
    try:
        header = jws.extract_compact(assertion.encode("utf-8")).headers()
    except (JoseError, ValueError, TypeError):
        raise _bad("not a compact JWS") from None
    alg = header.get("alg")
    keys: list[OctKey] | list[PublicKey]
    if alg in SECRET_JWT_ALGS:
        method = "client_secret_jwt"
        keys = [OctKey.import_key(site.client_secret)]
    elif alg in PRIVATE_KEY_JWT_ALGS:
        method = "private_key_jwt"
        keys = site.registration.keys()
        if not keys:
            raise _bad("no public key is registered for this client")
        kid = header.get("kid")
        if kid is not None:
            keys = [key for key in keys if key.kid == kid]
            if not keys:
                raise _bad("no registered key has the assertion's kid")
    else:
        raise _bad("its alg is not one the provider accepts")
    if method not in b.client_auth_methods:
        raise _bad(f"{method} is not accepted here")
    claims = _verified(assertion, keys, str(alg))
    if claims is None:
        raise _bad("the signature does not verify")
    client_id = _check_claims(site, b, request, params, claims)
    if not site.registration.spend_jti(claims["jti"]):
        raise _bad("its jti was used before")
    return method, client_id


def _verified(
    assertion: str, keys: list[OctKey] | list[PublicKey], alg: str
) -> dict[str, Any] | None:
    for key in keys:
        try:
            return dict(jwt.decode(assertion, key, algorithms=[alg]).claims)
        except (JoseError, ValueError, TypeError):
            continue
    return None


def _number(value: Any) -> float | None:
    """A JSON number as a finite float; ``None`` for anything else (booleans, strings, and
    integers too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _check_claims(
    site: Site, b: Behaviour, request: Request, params: Mapping[str, str], claims: dict[str, Any]
) -> str:
    """The client id an assertion's claims name, checked as the module docstring says."""
    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(iss, str) or iss != sub:
        raise _bad("iss and sub must both be the client id")
    if not hmac.compare_digest(iss.encode(), site.client_id.encode()):
        raise _bad("iss and sub do not name a registered client")
    body_id = params.get("client_id")
    if body_id is not None and body_id != iss:
        raise _bad("client_id differs from the assertion's iss")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise _bad("aud must be a string or a list of strings")
    accepted = {
        site.endpoints(b)["token_endpoint"],
        site.base_url + request.url.path,
        site.issuer(b) or site.endpoints(b)["token_endpoint"],
    }
    if not accepted & set(audiences):
        raise _bad("aud must name the token endpoint or the issuer")
    now = site.store.clock()
    exp = _number(claims.get("exp"))
    if exp is None:
        raise _bad("exp is missing or not a number")
    if exp <= now:
        raise _bad("it has expired")
    if exp > now + ASSERTION_MAX_LIFETIME:
        raise _bad(f"exp is more than {ASSERTION_MAX_LIFETIME} seconds ahead")
    if "nbf" in claims:
        nbf = _number(claims["nbf"])
        if nbf is None or nbf > now:
            raise _bad("it is not valid yet (nbf)")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise _bad("jti is missing")
    return iss


def _bad_secret(detail: str) -> Refusal:
    return Refusal("bad_secret", f"The client secret JWT was refused: {detail}.")


def _check_secret_jwt(site: Site, b: Behaviour, client_id: str, secret: str) -> None:
    """A client secret that is a JWT the client signed, as Apple checks it: ES256 with the
    registered key its ``kid`` names; ``sub`` the client id; ``iss`` a team id; ``aud`` the
    profile's audience or issuer; ``iat`` not in the future; ``exp`` after now and at most
    :data:`SECRET_JWT_MAX_LIFETIME` after ``iat``. Each failure is the profile's
    ``bad_secret`` answer, its description naming the check (never the secret).
    """
    try:
        header = jws.extract_compact(secret.encode("utf-8")).headers()
    except (JoseError, ValueError, TypeError):
        raise _bad_secret("it is not a JWT") from None
    if header.get("alg") != "ES256":
        raise _bad_secret("it must be signed with ES256")
    kid = header.get("kid")
    registered = site.registration.keys()
    keys = [key for key in registered if kid is not None and key.kid == kid]
    if not keys:
        raise _bad_secret("no registered key has its kid")
    claims = _verified(secret, keys, "ES256")
    if claims is None:
        raise _bad_secret("the signature does not verify")
    if claims.get("sub") != client_id:
        raise _bad_secret("sub must be the client id")
    if not isinstance(claims.get("iss"), str) or not claims["iss"]:
        raise _bad_secret("iss must be the team id")
    audiences = {b.secret_jwt_audience, site.issuer(b)}
    if claims.get("aud") not in audiences:
        raise _bad_secret(f"aud must be {b.secret_jwt_audience}")
    now = site.store.clock()
    iat, exp = _number(claims.get("iat")), _number(claims.get("exp"))
    if iat is None or exp is None:
        raise _bad_secret("iat and exp must be numbers")
    if iat > now + 60:
        raise _bad_secret("iat is in the future")
    if exp <= now:
        raise _bad_secret("it has expired")
    if exp - iat > SECRET_JWT_MAX_LIFETIME:
        raise _bad_secret(f"exp is more than {SECRET_JWT_MAX_LIFETIME} seconds after iat")
