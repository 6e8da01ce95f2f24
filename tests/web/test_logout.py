"""Logging out at the provider (OpenID Connect RP-Initiated Logout 1.0) on sign-out.

With ``logout_at_provider=["google"]``, ``POST /auth/signout`` ends the session here, then
sends the browser to the provider's ``end_session_endpoint`` with ``id_token_hint``,
``client_id``, ``post_logout_redirect_uri`` and ``state``; ``GET /auth/signout/callback``
takes it on to the sign-out's ``callbackUrl`` when ``state`` matches this browser's sealed
``keyturn.signout`` cookie. These tests check what keyturn sends and what it does with the
way back; the emulator's Google profile, with an ``end_session_endpoint`` added to a copy of
its spec, signs the user in. The endpoint itself is never called here.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from keyturn import ConfigurationError, Flow, Profile, ProviderSpec, hookimpl
from keyturn.web import Keyring, WebAuth
from keyturn.web.routes import MAX_END_SESSION_URL
from keyturn.web.sealing import Sealer
from keyturn.web.strategies import DatabaseStrategy
from keyturn_google import GOOGLE

from ._site import (
    BASE,
    FLOW,
    HOST,
    LIFETIME,
    PUBLIC,
    SECRET,
    SESSION,
    Groups,
    MakeSite,
    Site,
    World,
    b64decode,
    blob,
    csrf_token,
    expired,
    jar,
    make_client,
    message_of,
    set_cookies,
    sign_out,
    written,
)

SIGNOUT = "keyturn.signout"
#: What the signout cookie's max age is (15 minutes).
SIGNOUT_MAX_AGE = 15 * 60


def end_session_endpoint(world: World) -> str:
    return f"{world.emu.base_url}/google/end_session"


def google_with_logout(world: World, endpoint: str | None = None) -> ProviderSpec:
    """The emulator's Google, whose spec names an ``end_session_endpoint``."""
    spec = world.emu.point(GOOGLE)
    return spec.model_copy(update={"end_session_endpoint": endpoint or end_session_endpoint(world)})


async def logout_site(
    make_site: MakeSite, world: World, kind: str = "jwt", **settings: Any
) -> Site:
    """A site that logs out at Google (given an ``end_session_endpoint``)."""
    settings.setdefault("logout_at_provider", ["google"])
    providers = settings.pop("providers", [google_with_logout(world)])
    return await make_site(kind, providers=providers, **settings)


def split(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its query, and the query's parameters."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", dict(parse_qsl(parts.query))


def claims_of(id_token: str) -> dict[str, Any]:
    return dict(json.loads(b64decode(id_token.split(".")[1])))


def signout_state(site: Site, response: httpx.Response, name: str = SIGNOUT) -> dict[str, Any]:
    """What the sign-out's ``keyturn.signout`` cookie holds."""
    [cookie] = [c for c in set_cookies(response) if c.name == name and not c.expired]
    payload = Sealer(Keyring(SECRET), SIGNOUT, site.clock).unseal(cookie.value)
    assert payload is not None
    return payload


# == the way out ===============================================================================


async def test_signout_sends_the_browser_to_the_end_session_endpoint(
    make_site: MakeSite, world: World, kind: str
) -> None:
    site = await logout_site(make_site, world, kind)
    browser = await site.browser()
    await site.sign_in(browser, "google")
    held = site.tokens_of(browser).id_token
    assert held is not None  # kept for the hint, in the cookie too (jwt)
    id_token = held.get_secret_value()
    key = DatabaseStrategy.key_of(jar(browser)[SESSION])

    out = await sign_out(browser, callbackUrl="/bye")
    assert out.status_code == 303 and out.headers["cache-control"] == "no-store"
    endpoint, query = split(out.headers["location"])
    assert endpoint == end_session_endpoint(world)
    assert set(query) == {"id_token_hint", "client_id", "post_logout_redirect_uri", "state"}
    assert query["id_token_hint"] == id_token
    assert query["client_id"] == site.emu.credentials.client_id
    assert claims_of(id_token)["aud"] == query["client_id"]
    assert query["post_logout_redirect_uri"] == f"{BASE}/auth/signout/callback"
    assert len(query["state"]) >= 43

    # The local session ended as it always does: grant revoked, cookie (or row) gone.
    assert site.emu.counters("google")["revoke"] == 1
    assert SESSION in expired(out) and not written(out)
    assert (await browser.get("/auth/session")).json() is None
    if site.store is not None:
        assert site.store.load(key) is None

    # The state is bound to this browser by a sealed, short-lived cookie with the target.
    [cookie] = [c for c in set_cookies(out) if c.name == SIGNOUT]
    assert cookie.attrs["max-age"] == str(SIGNOUT_MAX_AGE)
    assert "httponly" in cookie.attrs and cookie.attrs["samesite"] == "Lax"
    assert query["state"] not in cookie.value and id_token not in cookie.value
    saved = signout_state(site, out)
    assert saved["state"] == query["state"] and saved["callbackUrl"] == "/bye"


async def test_a_json_signout_answers_with_the_end_session_url(
    make_site: MakeSite, world: World, kind: str
) -> None:
    site = await logout_site(make_site, world, kind)
    browser = await site.browser()
    await site.sign_in(browser, "google")
    id_token = site.tokens_of(browser).id_token
    assert id_token is not None
    token = await csrf_token(browser)
    out = await browser.post(
        "/auth/signout",
        json={"csrfToken": token, "callbackUrl": "/after"},
        headers={"accept": "application/json"},
    )
    assert out.status_code == 200 and out.headers["cache-control"] == "no-store"
    assert list(out.json()) == ["url"]
    endpoint, query = split(out.json()["url"])
    assert endpoint == end_session_endpoint(world)
    assert set(query) == {"id_token_hint", "client_id", "post_logout_redirect_uri", "state"}
    assert query["id_token_hint"] == id_token.get_secret_value()
    assert query["client_id"] == site.emu.credentials.client_id
    assert query["post_logout_redirect_uri"] == f"{BASE}/auth/signout/callback"
    assert signout_state(site, out)["state"] == query["state"]
    assert SESSION in expired(out)


async def test_a_refreshed_jwt_session_still_holds_the_id_token(
    make_site: MakeSite, world: World
) -> None:
    site = await logout_site(make_site, world)
    browser = await site.browser()
    await site.sign_in(browser, "google")
    before = site.tokens_of(browser)
    site.clock.advance(LIFETIME)
    assert "error" not in (await browser.get("/auth/session")).json()
    after = site.tokens_of(browser)
    assert after.access_token != before.access_token  # the cookie was written again
    assert after.id_token is not None and before.id_token is not None
    out = await sign_out(browser)
    assert split(out.headers["location"])[1]["id_token_hint"] == after.id_token.get_secret_value()


async def test_the_end_session_endpoint_keeps_its_own_query(
    make_site: MakeSite, world: World
) -> None:
    endpoint = f"{world.emu.base_url}/logout?tenant=a%20b&x=1"
    site = await logout_site(make_site, world, providers=[google_with_logout(world, endpoint)])
    browser = await site.browser()
    await site.sign_in(browser, "google")
    location = (await sign_out(browser)).headers["location"]
    assert location.startswith(f"{world.emu.base_url}/logout?tenant=a%20b&x=1&id_token_hint=")
    _, query = split(location)
    assert query["tenant"] == "a b" and query["x"] == "1" and "state" in query


async def test_the_way_back_is_built_from_the_public_url_and_base_path(
    make_site: MakeSite, world: World
) -> None:
    """Behind a proxy (``url=``) and over HTTPS: an absolute https callback, a __Host- cookie."""
    local = await logout_site(make_site, world)
    browser = await local.browser()
    await local.sign_in(browser, "google")
    session = jar(browser)[SESSION]  # the same secret reads it on the public site

    site = await logout_site(make_site, world, url=PUBLIC, base_path="/login")
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = Starlette(routes=[Mount("/login", app=site.auth)])
    public = await site.browser(PUBLIC, cookies={HOST + SESSION: session}, app=app)
    token = (await public.get("/login/csrf")).json()["csrfToken"]
    out = await public.post("/login/signout", data={"csrfToken": token, "callbackUrl": "/x"})
    _, query = split(out.headers["location"])
    assert query["post_logout_redirect_uri"] == f"{PUBLIC}/login/signout/callback"
    [cookie] = [c for c in set_cookies(out) if c.name == HOST + SIGNOUT]
    assert "secure" in cookie.attrs and cookie.attrs["path"] == "/"
    back = await public.get("/login/signout/callback", params={"state": query["state"]})
    assert back.status_code == 303 and back.headers["location"] == "/x"


# == the way back ==============================================================================


async def test_the_state_comes_back_to_the_callback_url(
    make_site: MakeSite, world: World, kind: str
) -> None:
    site = await logout_site(make_site, world, kind)
    browser = await site.browser()
    await site.sign_in(browser, "google")
    out = await sign_out(browser, callbackUrl="/bye?see=you")
    _, query = split(out.headers["location"])
    assert SIGNOUT in jar(browser)

    back = await browser.get("/auth/signout/callback", params={"state": query["state"]})
    assert back.status_code == 303 and back.headers["location"] == "/bye?see=you"
    assert back.headers["cache-control"] == "no-store"
    assert SIGNOUT in expired(back) and SIGNOUT not in jar(browser)
    assert (await browser.get("/auth/session")).json() is None

    # The same return again: the cookie is gone, so it is refused, and goes nowhere.
    again = await browser.get("/auth/signout/callback", params={"state": query["state"]})
    assert_refused(again)


def assert_refused(answer: httpx.Response) -> None:
    """A 400 page that sends the browser nowhere but the app's home."""
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert "does not match a sign-out started in this browser" in message_of(answer)
    assert 'href="/"' in answer.text and answer.text.count("href=") == 1


async def test_a_forged_state_is_refused_and_spends_the_cookie(
    make_site: MakeSite, world: World
) -> None:
    site = await logout_site(make_site, world)
    browser = await site.browser()
    await site.sign_in(browser, "google")
    out = await sign_out(browser, callbackUrl="/bye")
    state = split(out.headers["location"])[1]["state"]

    forged = await browser.get("/auth/signout/callback", params={"state": state[:-1] + "x"})
    assert_refused(forged)
    assert SIGNOUT in expired(forged)
    # One attempt per sign-out: the right state after a wrong one finds no cookie.
    assert_refused(await browser.get("/auth/signout/callback", params={"state": state}))
    assert (await browser.get("/auth/session")).json() is None


@pytest.mark.parametrize(
    "params",
    [{}, {"state": ""}, {"state": "é" * 43}, {"state": "x" * 10_000}, {"error": "denied"}],
    ids=["missing", "empty", "non-ascii", "huge", "error-only"],
)
async def test_a_return_without_the_right_state_is_refused(
    make_site: MakeSite, world: World, params: dict[str, str]
) -> None:
    site = await logout_site(make_site, world)
    browser = await site.browser()
    await site.sign_in(browser, "google")
    await sign_out(browser, callbackUrl="/bye")
    answer = await browser.get("/auth/signout/callback", params=params)
    assert_refused(answer)
    assert SIGNOUT in expired(answer)


async def test_a_return_without_the_cookie_is_refused(make_site: MakeSite, world: World) -> None:
    site = await logout_site(make_site, world)
    browser = await site.browser()
    await site.sign_in(browser, "google")
    out = await sign_out(browser)
    state = split(out.headers["location"])[1]["state"]
    elsewhere = await site.browser()  # another browser, carrying the state but no cookie
    answer = await elsewhere.get("/auth/signout/callback", params={"state": state})
    assert_refused(answer)
    assert not set_cookies(answer)


async def test_an_expired_signout_cookie_is_refused(make_site: MakeSite, world: World) -> None:
    site = await logout_site(make_site, world)
    browser = await site.browser()
    await site.sign_in(browser, "google")
    out = await sign_out(browser)
    state = split(out.headers["location"])[1]["state"]
    site.clock.advance(SIGNOUT_MAX_AGE + 1)
    assert_refused(await browser.get("/auth/signout/callback", params={"state": state}))


async def test_another_cookie_of_the_app_is_no_signout_cookie(
    make_site: MakeSite, world: World
) -> None:
    """A value sealed for another purpose (the flow cookie) carrying a state is useless."""
    site = await logout_site(make_site, world)
    flow = Sealer(Keyring(SECRET), FLOW, site.clock).seal({"state": "s" * 43}, 600)
    browser = await site.browser(cookies={SIGNOUT: flow})
    assert_refused(await browser.get("/auth/signout/callback", params={"state": "s" * 43}))


async def test_a_forged_return_signs_nobody_out(make_site: MakeSite, world: World) -> None:
    """A link to the callback route is no way to sign a visitor out (no logout CSRF)."""
    site = await logout_site(make_site, world)
    browser = await site.browser()
    await site.sign_in(browser, "google")
    answer = await browser.get("/auth/signout/callback", params={"state": "forged"})
    assert_refused(answer)
    assert not expired(answer)
    assert (await browser.get("/auth/session")).json()["provider"] == "google"


async def test_a_sealed_target_elsewhere_is_not_followed(make_site: MakeSite, world: World) -> None:
    """Even a cookie sealed with the app's key cannot make the callback an open redirect."""
    site = await logout_site(make_site, world)
    sealer = Sealer(Keyring(SECRET), SIGNOUT, site.clock)
    cookie = sealer.seal({"state": "s" * 43, "callbackUrl": "https://evil.example/"}, 600)
    browser = await site.browser(cookies={SIGNOUT: cookie})
    answer = await browser.get("/auth/signout/callback", params={"state": "s" * 43})
    assert answer.status_code == 303 and answer.headers["location"] == "/"


async def test_the_callback_route_takes_only_get(make_site: MakeSite, world: World) -> None:
    site = await logout_site(make_site, world)
    browser = await site.browser()
    answer = await browser.post("/auth/signout/callback")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET"
    assert (await browser.get("/auth/signout/elsewhere")).status_code == 404
    assert (await browser.get("/auth/signout/callback/x")).status_code == 404


# == unchanged where not asked for ============================================================


async def test_a_provider_not_opted_in_signs_out_as_before(
    make_site: MakeSite, world: World, kind: str
) -> None:
    # google has an end_session_endpoint but is not named; github is not named either.
    site = await logout_site(make_site, world, kind, logout_at_provider=[])
    browser = await site.browser()
    await site.sign_in(browser, "google")
    assert site.tokens_of(browser).id_token is None or kind != "jwt"
    out = await sign_out(browser, callbackUrl="/bye")
    assert out.status_code == 303 and out.headers["location"] == "/bye"
    assert not [c for c in set_cookies(out) if SIGNOUT in c.name]

    opted_in = await logout_site(make_site, world, kind)
    other = await opted_in.browser()
    await opted_in.sign_in(other, "github")
    out = await sign_out(other, callbackUrl="/bye")
    assert out.status_code == 303 and out.headers["location"] == "/bye"
    assert not [c for c in set_cookies(out) if SIGNOUT in c.name]


async def test_a_visitor_without_a_session_is_not_sent_to_the_provider(
    make_site: MakeSite, world: World
) -> None:
    site = await logout_site(make_site, world)
    browser = await site.browser()
    out = await sign_out(browser, callbackUrl="/bye")
    assert out.status_code == 303 and out.headers["location"] == "/bye"
    assert SIGNOUT not in {c.name for c in set_cookies(out)}


# == configuration ============================================================================


def test_a_provider_without_an_end_session_endpoint_is_a_configuration_error(
    world: World,
) -> None:
    with make_client(world, blocking=True) as client:
        with pytest.raises(ConfigurationError, match=r"'google'.*end_session_endpoint"):
            WebAuth(client, secret=SECRET, logout_at_provider=["google"])
        with pytest.raises(ConfigurationError, match=r"logout_at_provider.*'nope'"):
            WebAuth(client, secret=SECRET, logout_at_provider=["nope"])
        with pytest.raises(ConfigurationError, match="'github'"):
            WebAuth(client, secret=SECRET, logout_at_provider="github")


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("http://idp.example/logout", "https"),
        ("https://idp.example/logout#top", "fragment"),
        ("/logout", "absolute"),
        ("javascript:alert(1)", "absolute"),
        ("https://[::1/logout", "not a URL"),
    ],
)
def test_an_unusable_end_session_endpoint_is_a_configuration_error(
    world: World, endpoint: str, problem: str
) -> None:
    spec = google_with_logout(world, endpoint)
    with (
        make_client(world, blocking=True, providers=[spec]) as client,
        pytest.raises(ConfigurationError, match=problem),
    ):
        WebAuth(client, secret=SECRET, logout_at_provider=["google"])


def test_loopback_and_https_endpoints_are_accepted(world: World) -> None:
    for endpoint in (
        "https://idp.example/logout",
        "http://127.0.0.1:9/logout",
        "http://localhost/logout",
        "http://[::1]:8080/logout",
    ):
        spec = google_with_logout(world, endpoint)
        with make_client(world, blocking=True, providers=[spec]) as client:
            auth = WebAuth(client, secret=SECRET, logout_at_provider=("google",))
            assert auth.settings.logout_at_provider == frozenset({"google"})


def test_a_provider_with_a_discovery_document_is_checked_at_sign_out(world: World) -> None:
    """Its end_session_endpoint may come from the document: not known yet, not refused yet."""
    spec = world.emu.point(GOOGLE).model_copy(
        update={"discovery_url": "https://idp.example/.well-known/openid-configuration"}
    )
    with make_client(world, blocking=True, providers=[spec]) as client:
        auth = WebAuth(client, secret=SECRET, logout_at_provider=["google"])
    assert auth.settings.logout_at_provider == frozenset({"google"})


async def test_a_discovery_document_out_of_reach_at_sign_out_signs_out_here_only(
    make_site: MakeSite, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A provider whose end_session_endpoint comes from a discovery document that cannot be
    fetched just now: the session ends here, the browser goes to callbackUrl, the log says
    why."""
    site = await logout_site(make_site, world)
    browser = await site.browser()
    await site.sign_in(browser, "google")
    session = jar(browser)[SESSION]
    spec = world.emu.point(GOOGLE).model_copy(
        update={"discovery_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
    )
    later = await logout_site(make_site, world, providers=[spec], revoke_on_signout=False)
    browser = await later.browser(cookies={SESSION: session})
    with caplog.at_level(logging.WARNING, logger="keyturn.web"):
        out = await sign_out(browser, callbackUrl="/bye")
    assert out.status_code == 303 and out.headers["location"] == "/bye"
    assert SESSION in expired(out) and SIGNOUT not in {c.name for c in set_cookies(out)}
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "google" in warning and "signed out here only" in warning


# == the cookie budget and the ID token ========================================================


async def test_an_id_token_too_large_for_the_cookie_logs_out_with_the_client_id_only(
    make_site: MakeSite, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = Groups(2000, world.emu.keys)
    site = await logout_site(make_site, world, plugins=[plugin])
    browser = await site.browser()
    with caplog.at_level(logging.WARNING, logger="keyturn.web"):
        await site.sign_in(browser, "google")
    assert plugin.grown == 1
    kept = site.jwt_of(jar(browser))
    assert kept.tokens.id_token is None and kept.tokens.id_token_identity is not None
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "id_token" in warning and "logout_at_provider" in warning
    assert "without id_token_hint" in warning and "strategy='database'" in warning
    assert "session_cookie_keeps" not in warning  # the app did not ask for it there

    out = await sign_out(browser, callbackUrl="/bye")
    endpoint, query = split(out.headers["location"])
    assert endpoint == end_session_endpoint(world)
    assert set(query) == {"client_id", "post_logout_redirect_uri", "state"}
    back = await browser.get("/auth/signout/callback", params={"state": query["state"]})
    assert back.headers["location"] == "/bye"


async def test_the_database_strategy_sends_the_id_token_while_the_url_stays_short(
    make_site: MakeSite, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The row keeps any ID token; the URL carries it while servers would still accept it."""
    few, many = Groups(20, world.emu.keys), Groups(2000, world.emu.keys)
    site = await logout_site(make_site, world, "sqlite", plugins=[few])
    browser = await site.browser()
    await site.sign_in(browser, "google")
    held = site.tokens_of(browser).id_token
    assert held is not None and len(held.get_secret_value()) > 1000
    out = await sign_out(browser)
    assert len(out.headers["location"]) <= MAX_END_SESSION_URL
    assert split(out.headers["location"])[1]["id_token_hint"] == held.get_secret_value()

    site = await logout_site(make_site, world, "sqlite", plugins=[many])
    browser = await site.browser()
    with caplog.at_level(logging.WARNING, logger="keyturn.web"):
        await site.sign_in(browser, "google")
        held = site.tokens_of(browser).id_token
        assert held is not None and len(held.get_secret_value()) > MAX_END_SESSION_URL
        out = await sign_out(browser)
    location = out.headers["location"]
    assert len(location) <= MAX_END_SESSION_URL
    assert set(split(location)[1]) == {"client_id", "post_logout_redirect_uri", "state"}
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "without id_token_hint" in warning and "google" in warning
    assert str(MAX_END_SESSION_URL) in warning


class RawBlob:
    """A provider whose profile carries a large field (kept in ``Profile.raw``)."""

    def __init__(self, size: int) -> None:
        self.blob = blob(size)

    def _grow(self, flow: Flow[Profile]) -> Flow[Profile]:
        profile = yield from flow
        return profile.model_copy(update={"raw": {**profile.raw, "blob": self.blob}})

    @hookimpl(wrapper=True)
    def keyturn_userinfo(self) -> Any:
        flow = yield
        return None if flow is None else self._grow(flow)


async def test_the_id_token_is_the_last_part_the_cookie_gives_up(
    make_site: MakeSite, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Too large with the raw profile too: the raw profile goes, the ID token stays."""
    site = await logout_site(
        make_site, world, plugins=[RawBlob(9000)], session_cookie_keeps=["raw_profile"]
    )
    browser = await site.browser()
    with caplog.at_level(logging.WARNING, logger="keyturn.web"):
        await site.sign_in(browser, "google")
    kept = site.jwt_of(jar(browser))
    assert kept.tokens.id_token is not None
    assert kept.user is not None and kept.user.raw == {}
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "raw_profile" in warning and "session_cookie_keeps" in warning
    assert "id_token" not in warning and "logout_at_provider" not in warning
    query = split((await sign_out(browser)).headers["location"])[1]
    assert query["id_token_hint"] == kept.tokens.id_token.get_secret_value()

    # Without logging out at the provider, the same settings keep neither (as before).
    plain = await make_site(plugins=[RawBlob(9000)], session_cookie_keeps=["raw_profile"])
    other = await plain.browser()
    await plain.sign_in(other, "google")
    assert plain.jwt_of(jar(other)).tokens.id_token is None


# == no ID token in logs or pages =============================================================


async def test_the_id_token_reaches_only_the_browser(
    make_site: MakeSite, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    site = await logout_site(make_site, world)
    browser = await site.browser()
    await site.sign_in(browser, "google")
    held = site.tokens_of(browser).id_token
    assert held is not None
    id_token = held.get_secret_value()
    with caplog.at_level(logging.DEBUG):
        out = await sign_out(browser)
        state = split(out.headers["location"])[1]["state"]
        pages = [
            await browser.get("/auth/signout/callback", params={"state": "forged"}),
            await browser.get("/auth/signout/callback", params={"state": state}),
        ]
    assert id_token in out.headers["location"]
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        assert id_token not in text and id_token.split(".")[2] not in text
        if record.name.startswith("keyturn"):  # httpx logs the URLs the test asks for
            assert state not in text
    for page in pages:
        assert id_token not in page.text and id_token not in str(page.headers)
    assert any("log out at google" in r.getMessage() for r in caplog.records)


async def test_a_session_whose_id_token_went_missing_still_logs_out(
    make_site: MakeSite, world: World, kind: str
) -> None:
    """A database row with no ID token (saved by the app's own code): client_id only."""
    site = await logout_site(make_site, world, kind)
    browser = await site.browser()
    await site.sign_in(browser, "google")
    if site.store is not None:
        key = DatabaseStrategy.key_of(jar(browser)[SESSION])
        row = site.store.load(key)
        assert row is not None and row.tokens.id_token is not None
        tokens = row.tokens.model_copy(update={"id_token": None})
        site.store.save(key, tokens, data=row.data, expires_at=row.expires_at)
    else:
        from keyturn.web.strategies import _dump

        jwt = site.jwt_of(jar(browser))
        tokens = jwt.tokens.model_copy(update={"id_token": None})
        payload = {"jwt": _dump(jwt.model_copy(update={"tokens": tokens}))}
        sealed = Sealer(Keyring(SECRET), SESSION, site.clock).seal(payload, 3600)
        browser = await site.browser(cookies={SESSION: sealed})
    query = split((await sign_out(browser)).headers["location"])[1]
    assert set(query) == {"client_id", "post_logout_redirect_uri", "state"}


# == the blocking WebAuth ======================================================================


def test_blocking_webauth_logs_out_at_the_provider_and_comes_back(world: World) -> None:
    from urllib.parse import urlencode

    from .test_auth import SyncBrowser

    with make_client(world, blocking=True, providers=[google_with_logout(world)]) as client:
        web = WebAuth(client, secret=SECRET, logout_at_provider=["google"])
        browser = SyncBrowser(web)
        started = browser.request("GET", "/auth/signin/google?callbackUrl=%2Fhome")
        location = started.header("location")
        assert location is not None
        query = world.emu.authorize(location)
        assert browser.request("GET", "/auth/callback/google?" + urlencode(query)).status == 303
        token = browser.json("/auth/csrf")["csrfToken"]
        out = browser.request(
            "POST", "/auth/signout", form={"csrfToken": token, "callbackUrl": "/bye"}
        )
        goto = out.header("location")
        assert out.status == 303 and goto is not None
        endpoint, sent = split(goto)
        assert endpoint == end_session_endpoint(world) and "id_token_hint" in sent
        assert browser.json("/auth/session") is None
        back = browser.request(
            "GET", "/auth/signout/callback?" + urlencode({"state": sent["state"]})
        )
        assert back.status == 303 and back.header("location") == "/bye"
        again = browser.request(
            "GET", "/auth/signout/callback?" + urlencode({"state": sent["state"]})
        )
        assert again.status == 400 and again.header("location") is None
