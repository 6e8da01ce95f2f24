"""The OpenID Connect documents: the discovery document and the JWKS.

* ``GET <issuer>/.well-known/openid-configuration``, for every profile with an issuer: the
  provider metadata of OpenID Connect Discovery 1.0 §3
  (https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata), its
  ``issuer`` exactly the profile's issuer (§4.3), with the revocation endpoint (RFC 8414
  §2) and, where the profile has one, the ``end_session_endpoint`` of RP-Initiated Logout
  (https://openid.net/specs/openid-connect-rpinitiated-1_0.html#OPMetadata), and
  ``authorization_response_iss_parameter_supported`` (RFC 9207 §3), since every profile with
  an issuer sends ``iss`` on its redirects.
* ``GET <profile>/<jwks path>``, for every profile that issues ID tokens: the public keys of
  the algorithms it advertises, as a JWK Set (RFC 7517 §5,
  https://www.rfc-editor.org/rfc/rfc7517), never a private part (see
  :mod:`keyturn_emulator.keys`).

Both answer with ``Cache-Control: public, max-age=N`` (the ``discovery_max_age`` and
``jwks_max_age`` knobs), as providers send it, and each request is counted (``discovery``,
``jwks``), served broken or not, so a test can assert that a client fetched a document once.
The ``discovery_fault`` and ``jwks_fault`` knobs serve them broken
(:mod:`keyturn_emulator.faults` lists the ways).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from keyturn_emulator.profiles import Behaviour

from .clients import PRIVATE_KEY_JWT_ALGS, SECRET_JWT_ALGS
from .site import DISCOVERY_PATH, Handler, Site

__all__ = ["document", "routes"]

#: Claims the emulator's ID tokens and userinfo answers may hold.
_CLAIMS = (
    "aud",
    "azp",
    "email",
    "email_verified",
    "exp",
    "family_name",
    "given_name",
    "iat",
    "iss",
    "locale",
    "name",
    "nonce",
    "picture",
    "sub",
    "at_hash",
)

_BROKEN_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Sign in</h1>"
    "<p>This is a web page, not the document you asked for (keyturn emulator).</p>"
    "</body></html>"
)


def routes(site: Site, b: Behaviour) -> list[Route]:
    """The profile's discovery route (with an issuer) and JWKS route (with ID tokens).

    :param site: the emulated provider.
    :param b: the profile.
    """
    found: list[Route] = []
    if b.has_issuer:
        path = f"/{b.name}{DISCOVERY_PATH}"
        found.append(Route(path, _discovery(site, b), methods=["GET"]))
    if "jwks" in b.paths:
        found.append(Route(f"/{b.name}" + b.paths["jwks"], _jwks(site, b), methods=["GET"]))
    return found


def document(site: Site, b: Behaviour) -> dict[str, Any]:
    """The profile's discovery document, as served when no fault is set.

    :param site: the emulated provider.
    :param b: a profile with an issuer.
    """
    endpoints = site.endpoints(b)
    data: dict[str, Any] = {
        "issuer": site.issuer(b),
        "authorization_endpoint": endpoints["authorization_endpoint"],
        "token_endpoint": endpoints["token_endpoint"],
        "revocation_endpoint": endpoints["revocation_endpoint"],
    }
    if "userinfo_endpoint" in endpoints:
        data["userinfo_endpoint"] = endpoints["userinfo_endpoint"]
    if "jwks_uri" in endpoints:
        data["jwks_uri"] = endpoints["jwks_uri"]
    if "end_session_endpoint" in endpoints:
        data["end_session_endpoint"] = endpoints["end_session_endpoint"]
    claims = list(_CLAIMS)
    if b.sessions:
        claims += ["auth_time", "sid"]
    methods = sorted(b.client_auth_methods)
    data.update(
        {
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(b.id_token_algs),
            "scopes_supported": sorted(b.scopes or {"openid", "email", "profile"}),
            "claims_supported": sorted(claims),
            "token_endpoint_auth_methods_supported": methods,
            "code_challenge_methods_supported": sorted(b.pkce_methods),
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "authorization_response_iss_parameter_supported": True,
        }
    )
    if b.jwt_client_auth:
        algs = [*SECRET_JWT_ALGS, *PRIVATE_KEY_JWT_ALGS]
        data["token_endpoint_auth_signing_alg_values_supported"] = algs
    if b.single_auth_method:  # these profiles authenticate revocation requests
        data["revocation_endpoint_auth_methods_supported"] = methods
        if b.jwt_client_auth:
            data["revocation_endpoint_auth_signing_alg_values_supported"] = algs
    if b.sessions:
        data["prompt_values_supported"] = ["none", "login", "consent"]
    return data


def _cache_headers(max_age: int | None) -> dict[str, str]:
    return {} if max_age is None else {"Cache-Control": f"public, max-age={max_age}"}


def _broken_json(data: dict[str, Any], headers: dict[str, str]) -> Response:
    text = json.dumps(data)
    return Response(text[: len(text) // 2], 200, headers, media_type="application/json")


def _discovery(site: Site, b: Behaviour) -> Handler:
    async def discovery(request: Request) -> Response:
        site.store.count(b.name, "discovery")
        knobs = site.knobs()
        headers = _cache_headers(knobs.discovery_max_age)
        data = document(site, b)
        fault = knobs.discovery_fault
        if fault == "html":
            return HTMLResponse(_BROKEN_PAGE)
        if fault == "truncated":
            return _broken_json(data, headers)
        if fault == "wrong_issuer":
            data["issuer"] = f"{site.base_url}/not-{b.name}"
        elif fault == "missing_jwks_uri":
            data.pop("jwks_uri", None)
        elif fault == "foreign_host":
            data["token_endpoint"] = "https://attacker.example/token"
        elif fault == "huge":
            data["x_padding"] = "x" * (2 * 1024 * 1024)
        return JSONResponse(data, headers=headers)

    return discovery


def _jwks(site: Site, b: Behaviour) -> Handler:
    async def jwks(request: Request) -> Response:
        site.store.count(b.name, "jwks")
        knobs = site.knobs()
        headers = _cache_headers(knobs.jwks_max_age)
        data = site.keys.jwks(b.id_token_algs)
        fault = knobs.jwks_fault
        if fault == "html":
            return HTMLResponse(_BROKEN_PAGE)
        if fault == "truncated":
            return _broken_json(data, headers)
        if fault == "empty":
            data = {"keys": []}
        elif fault == "duplicate_kid":
            first = data["keys"][0]["kid"]
            data = {"keys": [{**key, "kid": first} for key in data["keys"]]}
        elif fault == "oct_keys":
            data = {
                "keys": [
                    {"kty": "oct", "kid": key["kid"], "k": secrets.token_urlsafe(32)}
                    for key in data["keys"]
                ]
            }
        return JSONResponse(data, headers=headers)

    return jwks
