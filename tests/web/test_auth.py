"""keyturn.web.auth: the blocking WebAuth (as a Flask or Django view uses it), and the
settings every entry point checks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from keyturn import ConfigurationError
from keyturn.starlette import KeyturnAuth
from keyturn.stores.base import TokenStore
from keyturn.stores.memory import MemoryTokenStore
from keyturn.stores.sqlite import SQLiteTokenStore
from keyturn.web import WebAuth, WebRequest, WebResponse
from keyturn.web.settings import StrategyName

from ._site import (
    ADA,
    BASE,
    LIFETIME,
    SECRET,
    World,
    counters,
    make_client,
    parse_set_cookie,
    set_cookies,
)

# == the blocking WebAuth =====================================================================


class SyncBrowser:
    """A browser for :class:`WebAuth`: builds each :class:`WebRequest` and keeps the cookies."""

    def __init__(self, web: WebAuth, cookies: Mapping[str, str] | None = None) -> None:
        self.web = web
        self.jar = dict(cookies or {})

    def request(
        self,
        method: str,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> WebResponse:
        all_headers = dict(headers or {})
        body = b""
        if form is not None:
            body = urlencode(form).encode()
            all_headers["content-type"] = "application/x-www-form-urlencoded"
        request = WebRequest(method, BASE + path, all_headers, dict(self.jar), body)
        response = self.web.handle(request)
        for cookie in set_cookies(response):
            if cookie.expired:
                self.jar.pop(cookie.name, None)
            else:
                self.jar[cookie.name] = cookie.value
        return response

    def json(self, path: str) -> Any:
        response = self.request("GET", path)
        assert response.status == 200
        return json.loads(response.body)


def sync_store(kind: str, tmp_path: Path) -> TokenStore | None:
    if kind == "memory":
        return MemoryTokenStore()
    if kind == "sqlite":
        return SQLiteTokenStore(tmp_path / "s.db")
    return None


def test_blocking_webauth_signs_in_refreshes_and_signs_out(
    world: World, kind: str, tmp_path: Path
) -> None:
    store = sync_store(kind, tmp_path)
    strategy: StrategyName = "jwt" if kind == "jwt" else "database"
    with make_client(world, blocking=True) as client:
        web = WebAuth(client, secret=SECRET, strategy=strategy, store=store)
        browser = SyncBrowser(web)
        started = browser.request("GET", "/auth/signin/github?callbackUrl=%2Fhome")
        assert started.status == 302
        location = started.header("location")
        assert location is not None
        query = world.emu.authorize(location)
        done = browser.request("GET", "/auth/callback/github?" + urlencode(query))
        assert done.status == 303 and done.header("location") == "/home"
        body = browser.json("/auth/session")
        assert body["user"]["name"] == ADA["name"]

        current = web.current(WebRequest("GET", BASE + "/page", cookies=browser.jar))
        assert current.session is not None and current.access_token is not None
        assert current.access_token not in repr(current) and not current.needs_sign_in

        world.clock.advance(LIFETIME + 1)
        page = web.current(WebRequest("GET", BASE + "/page", cookies=browser.jar))
        assert page.session is not None and page.session.error is None
        assert counters(world)["refresh_token"] == 1
        assert bool(page.cookies) is (kind == "jwt")
        browser.jar.update({c.name: c.value for c in map(parse_set_cookie, page.cookies)})
        assert browser.json("/auth/session")["accessTokenExpires"] == int(world.clock()) + LIFETIME
        assert counters(world)["refresh_token"] == 1

        token = browser.json("/auth/csrf")["csrfToken"]
        refused = browser.request("POST", "/auth/signout", form={"csrfToken": "nope"})
        assert refused.status == 403 and browser.json("/auth/session") is not None
        out = browser.request("POST", "/auth/signout", form={"csrfToken": token})
        assert out.status == 303 and counters(world)["revoke"] == 1
        assert browser.json("/auth/session") is None
    if isinstance(store, SQLiteTokenStore):
        store.close()


def test_blocking_webauth_refreshes_once_across_threads(
    world: World, kind: str, tmp_path: Path
) -> None:
    store = sync_store(kind, tmp_path)
    strategy: StrategyName = "jwt" if kind == "jwt" else "database"
    with make_client(world, blocking=True) as client:
        web = WebAuth(client, secret=SECRET, strategy=strategy, store=store)
        browser = SyncBrowser(web)
        started = browser.request("GET", "/auth/signin/github")
        query = world.emu.authorize(started.header("location") or "")
        browser.request("GET", "/auth/callback/github?" + urlencode(query))
        world.clock.advance(LIFETIME + 1)
        cookies = dict(browser.jar)
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(lambda _: SyncBrowser(web, cookies).json("/auth/session"), range(4))
            )
        assert counters(world)["refresh_token"] == 1
        assert len({body["accessTokenExpires"] for body in results}) == 1
        assert all("error" not in body for body in results)
    if isinstance(store, SQLiteTokenStore):
        store.close()


def test_blocking_webauth_shows_a_revoked_grant(world: World) -> None:
    with make_client(world, blocking=True) as client:
        web = WebAuth(client, secret=SECRET)
        browser = SyncBrowser(web)
        started = browser.request("GET", "/auth/signin/github")
        query = world.emu.authorize(started.header("location") or "")
        browser.request("GET", "/auth/callback/github?" + urlencode(query))
        world.emu.revoke_grants("github")
        world.clock.advance(LIFETIME + 1)
        current = web.current(WebRequest("GET", BASE + "/", cookies=browser.jar))
        assert current.session is not None and current.needs_sign_in
        assert current.session.error == "RefreshAccessTokenError"
        assert web.sign_in_url("github", "/a b") == "/auth/signin/github?callbackUrl=%2Fa%20b"


# == settings =================================================================================


async def test_bad_settings_are_configuration_errors(world: World) -> None:
    async with make_client(world) as client:
        for settings in (
            {"base_path": "auth"},
            {"base_path": "/auth?x"},
            {"session_max_age": 0},
            {"strategy": "cookie"},
            {"url": "app.example"},
            {"url": "ftp://app.example"},
        ):
            with pytest.raises(ConfigurationError):
                KeyturnAuth(client, secret=SECRET, **settings)
        misspelt: Any = {"sesion_max_age": 60}
        with pytest.raises(TypeError, match=r"unknown setting\(s\): sesion_max_age"):
            KeyturnAuth(client, secret=SECRET, **misspelt)


def test_a_client_of_the_wrong_kind_is_refused_at_construction() -> None:
    import keyturn
    from keyturn.web import AsyncWebAuth

    blocking = keyturn.Keyturn({"google": ("id", "secret")})
    non_blocking = keyturn.AsyncKeyturn({"google": ("id", "secret")})
    with pytest.raises(
        ConfigurationError,
        match=r"KeyturnAuth needs an AsyncKeyturn, not Keyturn: use keyturn.web.WebAuth",
    ):
        KeyturnAuth(blocking, secret=SECRET)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"AsyncWebAuth needs an AsyncKeyturn"):
        AsyncWebAuth(blocking, secret=SECRET)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"WebAuth needs a Keyturn.*AsyncKeyturn"):
        WebAuth(non_blocking, secret=SECRET)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"WebAuth needs a Keyturn.*str"):
        WebAuth("google", secret=SECRET)  # type: ignore[arg-type]
    blocking.close()
