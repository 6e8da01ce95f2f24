"""The ``/_emulator/...`` controls, for tests and the command line, and the avatar pictures.

* ``GET /_emulator/state``: counters (per profile and summed), knobs and endpoints, as JSON.
* ``POST /_emulator/revoke``: revoke grants at the provider side; a JSON object with
  ``profile`` and ``user`` (both optional); answers ``{"revoked": n}``.
* ``POST /_emulator/configure``: change knobs (JSON object); answers the new knobs.
* ``POST /_emulator/reset``: zero the counters.
* ``POST /_emulator/rotate-keys``: make new signing keys active; a JSON object with
  ``keep_previous`` (default ``true``: the old key stays in the JWKS until the next rotation;
  ``false`` drops it at once) and ``algs`` (default every algorithm); answers
  ``{"active": {"RS256": kid, ...}}``.
* ``POST /_emulator/client-keys``: register the client's public keys for ``private_key_jwt``,
  a JWK Set or one JWK (public parts only), replacing those registered; answers
  ``{"kids": [...]}``.
* ``POST /_emulator/post-logout-redirect-uris``: register URIs the end-session endpoint may
  send the browser back to, ``{"uris": [...]}``; answers every registered one.
* ``GET /_emulator/avatar/<login>.svg``: the user's picture (``picture``, ``avatar_url``).

The signing algorithm and the broken OpenID documents are knobs (``id_token_alg``,
``discovery_fault``, ``jwks_fault``), set through ``configure``; the ``discovery``, ``jwks``
and ``logout`` counts are among the counters of ``state``, beside the active ``kid`` of each
algorithm.

The controls answer only what no web page of another origin can make a browser send, since
any page the developer opens could otherwise switch faults on or revoke grants:

* the ``Host`` header must name the emulator itself: ``127.0.0.1``, ``localhost`` or
  ``[::1]`` with its port (a page on a name an attacker re-points at 127.0.0.1, DNS
  rebinding, is refused here: ``400``);
* a request that says it comes from elsewhere is refused (``403``): an ``Origin`` that is not
  one of those addresses, or ``Sec-Fetch-Site`` other than ``same-origin`` or ``none``;
* a ``POST`` must have ``Content-Type: application/json`` (``415`` otherwise; the body may be
  empty). A page can send a form, ``text/plain`` or no content type across origins without
  asking, but JSON only after a CORS preflight, which the emulator never grants.

``curl -X POST -H 'Content-Type: application/json' -d '{"profile": "google"}'
http://127.0.0.1:PORT/_emulator/revoke`` passes; so does every HTTP client that sends JSON
and no ``Origin``. The avatar is a picture the app under test shows in its own pages, so it
is served to any origin.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from keyturn_emulator.keys import ALGORITHMS
from keyturn_emulator.profiles import PROFILES

from .site import Handler, Site

__all__ = ["LOOPBACK_NAMES", "refusal", "routes", "snapshot"]


def snapshot(site: Site) -> dict[str, Any]:
    """What ``GET /_emulator/state`` answers.

    :param site: the emulated provider.
    :return: base URL, client id, counters, knobs, the signing keys' ``kid``s, the registered
        post-logout redirect URIs, and each profile's counters, endpoints and issuer.
    """
    return {
        "base_url": site.base_url,
        "client_id": site.client_id,
        "counters": site.store.counters(PROFILES),
        "knobs": site.knobs().as_dict(),
        "keys": site.keys.summary(),
        "post_logout_redirect_uris": site.registration.logout_uris(),
        "profiles": {
            name: {
                "counters": site.store.counters([name]),
                "endpoints": site.endpoints(b),
                "issuer": site.issuer(b),
            }
            for name, b in PROFILES.items()
        },
    }


def routes(site: Site) -> list[Route]:
    """Every control route, and the avatar route.

    :param site: the emulated provider.
    """
    return [
        Route("/_emulator/state", _guarded(site, _state(site)), methods=["GET"]),
        Route("/_emulator/revoke", _guarded(site, _revoke(site)), methods=["POST"]),
        Route("/_emulator/configure", _guarded(site, _configure(site)), methods=["POST"]),
        Route("/_emulator/reset", _guarded(site, _reset(site)), methods=["POST"]),
        Route("/_emulator/rotate-keys", _guarded(site, _rotate_keys(site)), methods=["POST"]),
        Route("/_emulator/client-keys", _guarded(site, _client_keys(site)), methods=["POST"]),
        Route(
            "/_emulator/post-logout-redirect-uris",
            _guarded(site, _logout_uris(site)),
            methods=["POST"],
        ),
        Route("/_emulator/avatar/{login}.svg", _avatar, methods=["GET"]),
    ]


#: The host names the emulator answers its controls under (it listens on 127.0.0.1).
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
#: ``Sec-Fetch-Site`` values of requests that no other origin started.
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})


def _authority(value: str, scheme: str = "http") -> tuple[str, int] | None:
    """``(host, port)`` of a ``Host`` header value or an origin's authority, or ``None``."""
    try:
        parts = urlsplit(f"{scheme}://{value}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.username is not None or parts.password is not None:
        return None
    if parts.path or parts.query or parts.fragment:
        return None
    return host.lower(), port if port is not None else (443 if scheme == "https" else 80)


def _is_own(site: Site, authority: tuple[str, int] | None) -> bool:
    own_port = urlsplit(site.base_url).port
    return authority is not None and authority[0] in LOOPBACK_NAMES and authority[1] == own_port


def refusal(site: Site, request: Request) -> Response | None:
    """The answer to a control request the emulator will not serve, or ``None``.

    :param site: the emulated provider.
    :param request: a request to one of the ``/_emulator`` controls.
    """
    if not _is_own(site, _authority(request.headers.get("host", ""))):
        return JSONResponse(
            {"error": "the Host header does not name this emulator (127.0.0.1 and its port)"},
            400,
        )
    origin = request.headers.get("origin")
    if origin is not None:
        scheme, sep, rest = origin.partition("://")
        if not sep or scheme.lower() != "http" or not _is_own(site, _authority(rest)):
            return JSONResponse({"error": "the emulator's controls refuse other origins"}, 403)
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() not in _OWN_FETCH_SITES:
        return JSONResponse({"error": "the emulator's controls refuse other sites"}, 403)
    if request.method == "POST":
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "application/json":
            return JSONResponse(
                {"error": "send the controls a JSON body (Content-Type: application/json)"},
                415,
            )
    return None


def _guarded(site: Site, handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        refused = refusal(site, request)
        return refused if refused is not None else await handler(request)

    return guarded


async def _json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}``.

    :raises ValueError: not JSON (or nested too deep to read), or not an object.
    """
    try:
        data = json.loads(await request.body() or b"{}")
    except RecursionError:
        raise ValueError("the JSON body is nested too deep") from None
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _state(site: Site) -> Handler:
    async def state(request: Request) -> Response:
        return JSONResponse(snapshot(site))

    return state


def _revoke(site: Site) -> Handler:
    async def revoke(request: Request) -> Response:
        try:
            body = await _json_object(request)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        profile = body.get("profile") or None
        user = body.get("user") or None
        if not isinstance(profile, str | None) or not isinstance(user, str | None):
            return JSONResponse({"error": "profile and user must be strings"}, 400)
        if profile is not None and profile not in PROFILES:
            return JSONResponse({"error": f"unknown profile {profile!r}"}, 400)
        revoked = site.store.revoke_grants(profile, user)
        return JSONResponse({"revoked": revoked})

    return revoke


def _configure(site: Site) -> Handler:
    async def configure(request: Request) -> Response:
        try:
            knobs = await _json_object(request)
            applied = site.configure(**knobs)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"knobs": applied.as_dict()})

    return configure


def _reset(site: Site) -> Handler:
    async def reset(request: Request) -> Response:
        site.store.reset_counters()
        return JSONResponse({"counters": site.store.counters(PROFILES)})

    return reset


def _rotate_keys(site: Site) -> Handler:
    async def rotate_keys(request: Request) -> Response:
        try:
            body = await _json_object(request)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        keep = body.get("keep_previous", True)
        algs = body.get("algs", list(ALGORITHMS))
        if not isinstance(keep, bool):
            return JSONResponse({"error": "keep_previous must be true or false"}, 400)
        if not isinstance(algs, list) or not all(alg in ALGORITHMS for alg in algs):
            return JSONResponse({"error": f"algs must be a list of {', '.join(ALGORITHMS)}"}, 400)
        return JSONResponse({"active": site.keys.rotate(algs, keep_previous=keep)})

    return rotate_keys


def _client_keys(site: Site) -> Handler:
    async def client_keys(request: Request) -> Response:
        try:
            kids = site.registration.register_keys(await _json_object(request))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"kids": kids})

    return client_keys


def _logout_uris(site: Site) -> Handler:
    async def logout_uris(request: Request) -> Response:
        try:
            uris = (await _json_object(request)).get("uris")
            if not isinstance(uris, list):
                raise ValueError("uris must be a list of URLs")
            registered = site.registration.register_logout_uris(uris)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"uris": registered})

    return logout_uris


async def _avatar(request: Request) -> Response:
    login = str(request.path_params["login"])
    initial = html.escape((login[:1] or "?").upper())
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' width='64' height='64'>"
        "<circle cx='32' cy='32' r='32' fill='#4a6fa5'/>"
        "<text x='32' y='42' font-size='30' text-anchor='middle' fill='#fff' "
        f"font-family='sans-serif'>{initial}</text></svg>"
    )
    return Response(svg, media_type="image/svg+xml")
