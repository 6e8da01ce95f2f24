"""The ``/_emulator/...`` controls, for tests and the command line, and the avatar pictures.

* ``GET /_emulator/state``: counters (per profile and summed), knobs and endpoints, as JSON.
* ``POST /_emulator/revoke``: revoke grants at the provider side; JSON or form fields
  ``profile`` and ``user`` (both optional); answers ``{"revoked": n}``.
* ``POST /_emulator/configure``: change knobs (JSON object); answers the new knobs.
* ``POST /_emulator/reset``: zero the counters.
* ``GET /_emulator/avatar/<login>.svg``: the user's picture (``picture``, ``avatar_url``).
"""

from __future__ import annotations

import html
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from keyturn_emulator.profiles import PROFILES

from .forms import params
from .site import Handler, Site

__all__ = ["routes", "snapshot"]


def snapshot(site: Site) -> dict[str, Any]:
    """What ``GET /_emulator/state`` answers.

    :param site: the emulated provider.
    :return: base URL, client id, counters, knobs, and each profile's counters, endpoints
        and issuer.
    """
    return {
        "base_url": site.base_url,
        "client_id": site.client_id,
        "counters": site.store.counters(PROFILES),
        "knobs": site.knobs().as_dict(),
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
        Route("/_emulator/state", _state(site), methods=["GET"]),
        Route("/_emulator/revoke", _revoke(site), methods=["POST"]),
        Route("/_emulator/configure", _configure(site), methods=["POST"]),
        Route("/_emulator/reset", _reset(site), methods=["POST"]),
        Route("/_emulator/avatar/{login}.svg", _avatar, methods=["GET"]),
    ]


def _state(site: Site) -> Handler:
    async def state(request: Request) -> Response:
        return JSONResponse(snapshot(site))

    return state


def _revoke(site: Site) -> Handler:
    async def revoke(request: Request) -> Response:
        body = await params(request)
        profile = body.get("profile") or None
        if profile is not None and profile not in PROFILES:
            return JSONResponse({"error": f"unknown profile {profile!r}"}, 400)
        revoked = site.store.revoke_grants(profile, body.get("user") or None)
        return JSONResponse({"revoked": revoked})

    return revoke


def _configure(site: Site) -> Handler:
    async def configure(request: Request) -> Response:
        try:
            knobs = json.loads(await request.body() or b"{}")
            if not isinstance(knobs, dict):
                raise TypeError("expected a JSON object of knobs")
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
