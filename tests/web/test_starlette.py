"""keyturn.starlette: KeyturnAuth's dependencies in FastAPI, and current() and apply() for
plain Starlette endpoints."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from keyturn import Session
from keyturn.starlette import KeyturnAuth

from ._site import ADA, LIFETIME, SESSION, MakeSite, Site, counters, written


def fastapi_app(site: Site) -> FastAPI:
    auth = site.auth
    userinfo = site.emu.endpoints("github")["userinfo_endpoint"]
    app = FastAPI()
    app.mount("/auth", auth)
    signed_in, maybe_signed_in = Depends(auth.session), Depends(auth.optional_session)
    access_token = Depends(auth.access_token)

    @app.get("/api/me")
    async def me(session: Session = signed_in) -> dict[str, Any]:
        return {"name": session.user.name if session.user else None, "at": session.expires_at}

    @app.get("/api/maybe")
    async def maybe(session: Session | None = maybe_signed_in) -> dict[str, Any]:
        return {"signed_in": session is not None}

    @app.get("/api/github")
    async def github(token: str = access_token) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            answer = await http.get(userinfo, headers={"authorization": f"Bearer {token}"})
        return {"status": answer.status_code, "login": answer.json().get("login")}

    return app


HTML = {"accept": "text/html,application/xhtml+xml"}
JSON = {"accept": "application/json"}


async def test_the_session_dependency(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind, sign_in_page="/login")
    browser = await site.browser(app=fastapi_app(site))
    answer = await browser.get("/api/me", headers=JSON)
    assert answer.status_code == 401 and answer.json() == {"detail": "signed_out"}
    answer = await browser.get("/api/me?x=1", headers=HTML)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?callbackUrl=%2Fapi%2Fme%3Fx%3D1"
    assert (await browser.post("/api/me", headers=HTML)).status_code == 405
    assert (await browser.get("/api/maybe")).json() == {"signed_in": False}

    await site.sign_in(browser)
    answer = await browser.get("/api/me")
    assert answer.json() == {"name": ADA["name"], "at": int(site.clock()) + LIFETIME}
    assert (await browser.get("/api/maybe")).json() == {"signed_in": True}


async def test_without_a_sign_in_page_a_page_gets_401(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser(app=fastapi_app(site))
    answer = await browser.get("/api/me", headers=HTML)
    assert answer.status_code == 401 and "location" not in answer.headers


async def test_a_failed_refresh_sends_pages_back_to_the_provider(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind, sign_in_page="/login")
    browser = await site.browser(app=fastapi_app(site))
    await site.sign_in(browser)
    site.emu.revoke_grants("github")
    site.clock.advance(LIFETIME + 1)
    answer = await browser.get("/api/me?x=1", headers=HTML)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/auth/signin/github?callbackUrl=%2Fapi%2Fme%3Fx%3D1"
    answer = await browser.get("/api/me", headers=JSON)
    assert answer.status_code == 401 and answer.json() == {"detail": "RefreshAccessTokenError"}
    assert (await browser.get("/api/github", headers=JSON)).status_code == 401
    assert (await browser.get("/api/maybe")).json() == {"signed_in": True}


async def test_the_access_token_dependency_refreshes_and_sets_the_cookie(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind)
    browser = await site.browser(app=fastapi_app(site))
    await site.sign_in(browser)
    answer = await browser.get("/api/github")
    assert answer.json()["status"] == 200 and answer.json()["login"]
    before = site.tokens_of(browser)

    site.clock.advance(LIFETIME + 1)  # the provider refuses the old token by now
    answer = await browser.get("/api/github")
    assert answer.json()["status"] == 200
    assert counters(site)["refresh_token"] == 1
    if kind == "jwt":
        assert list(written(answer)) == [SESSION]  # the endpoint's response carries it
    after = site.tokens_of(browser)
    assert after.access_token != before.access_token
    assert (await browser.get("/api/github")).json()["status"] == 200
    assert counters(site)["refresh_token"] == 1


async def test_plain_starlette_endpoints_use_current_and_apply(make_site: MakeSite) -> None:
    site = await make_site()

    async def page(request: Request) -> Response:
        current = await site.auth.current(request)
        body = {"signed_in": current.session is not None, "token": current.access_token}
        return KeyturnAuth.apply(current, JSONResponse(body))

    app = Starlette(routes=[Route("/page", page), Mount("/auth", app=site.auth)])
    browser = await site.browser(app=app)
    assert (await browser.get("/page")).json() == {"signed_in": False, "token": None}
    await site.sign_in(browser)
    site.clock.advance(LIFETIME + 1)
    answer = await browser.get("/page")
    assert answer.json()["token"] == site.tokens_of(browser).access_token.get_secret_value()
    assert list(written(answer)) == [SESSION]
