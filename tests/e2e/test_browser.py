"""The example web app (``examples/webapp``) in a real browser: headless Chromium via Playwright.

Each test starts the provider emulator and the example app with uvicorn on 127.0.0.1 (free
ports), opens a fresh browser context and clicks through the page as a person would: sign in
with GitHub (the emulator's consent page, Allow) or Google, watch the access token refresh
without a reload and call the protected API with it, two tabs sharing one refresh (both open
as the token expires, then both opened at once on an expired session), a grant revoked at the
provider sending the page back to sign-in by itself, and sign-out. Every test runs with both
session strategies (``jwt``: the session sealed in the cookie; ``database``: a SQLite token
store in ``tmp_path``).

A generic OpenID Connect provider (keyturn-oidc's ``corp``, from the issuer of the emulator's
``oidc`` profile) gets its own small Starlette app that logs out at the provider: sign-in
through the emulator's pages, a refresh after the provider rotated its keys (the ID token
verified after one more fetch of the key set), and ``keyturn.signOut`` through the emulator's
end-session page and back, which ends the user's session at the provider too. That app and
the emulator share a fake clock, moved on by the test.

Time is real: access tokens live :data:`LIFETIME` seconds and the app refreshes them
:data:`LEEWAY` second early, so the tests wait on the page (Playwright's ``expect`` and
``wait_for_function``) rather than sleeping. At every step on the app's pages
``document.cookie`` must be empty: keyturn's cookies are HttpOnly.

Screenshots of every step are written to ``test-artifacts/browser/<strategy>/<NN-step>.png``
under the repository root (ignored by git; CI keeps the folder as an artefact).

Needs Debian's Chromium at ``/usr/bin/chromium`` (``apt-get install chromium``); Playwright
drives it and never downloads a browser of its own. Without it these tests fail.
"""

from __future__ import annotations

import re
import shutil
import socket
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

import keyturn_oidc
from keyturn import AsyncKeyturn
from keyturn.starlette import KeyturnAuth
from keyturn.stores.sqlite import SQLiteTokenStore
from keyturn.web.settings import StrategyName
from keyturn_emulator import Emulator
from tests.conftest import ROOT, FakeClock

sys.path.insert(0, str(ROOT / "examples" / "webapp"))

from webapp import create_app, emulated_client

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Debian's Chromium; Playwright is pointed at it instead of a browser it would download.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where the screenshots go, one folder per strategy.
SHOTS = ROOT / "test-artifacts" / "browser"

#: Seconds the emulator's access tokens live, and how early the app refreshes them.
LIFETIME = 4
LEEWAY = 1
#: Milliseconds to wait for something that happens once the access token has expired.
AFTER_EXPIRY_MS = (LIFETIME + 8) * 1000
#: Milliseconds to wait for the page to react to a click or a load.
UI_MS = 10_000

SECRET = "browser-test-secret-not-a-real-one-0123456789"
SESSION_COOKIE = re.compile(r"^keyturn\.session-token(\.\d+)?$")
STRATEGIES: list[StrategyName] = ["jwt", "database"]

# -- servers --------------------------------------------------------------------------------


class AppServer:
    """The app under uvicorn in a daemon thread, on a loopback port bound beforehand.

    Unlike the emulator's server thread, the app's lifespan runs, so the app closes its
    keyturn client (and that client's connections) before the thread ends.
    """

    def __init__(self, app: Any) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.bind(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            http="h11",
            ws="none",
            loop="asyncio",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the example app did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join()
        self.socket.close()


@dataclass
class Site:
    """One running example app, its emulator, and where its screenshots go."""

    url: str
    emu: Emulator
    strategy: str
    shots: Path

    def github(self, counter: str) -> int:
        """One of the emulator's counters for the GitHub profile."""
        return self.emu.counters("github")[counter]

    def authorize_url(self, provider: str = "github") -> re.Pattern[str]:
        """Matches the emulator's authorize (and consent) page of ``provider``."""
        return re.compile(re.escape(self.emu.base_url) + f"/{provider}/.*auth")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"the browser tests need Debian's Chromium at {CHROMIUM}: install it with "
            "'sudo apt-get install chromium' (Playwright is told to use it and never "
            "downloads a browser)",
            pytrace=False,
        )
    shutil.rmtree(SHOTS, ignore_errors=True)  # no screenshot left from an earlier run
    playwright: Playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
    finally:
        playwright.stop()


@pytest.fixture(params=STRATEGIES)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    strategy: StrategyName = request.param
    with Emulator(access_token_lifetime=LIFETIME, consent="page") as emu:
        store = SQLiteTokenStore(tmp_path / "sessions.sqlite3") if strategy == "database" else None
        try:
            app = create_app(
                emulated_client(emu, leeway=LEEWAY),
                secret=SECRET,
                strategy=strategy,
                store=store,
                secure_cookies=False,  # plain HTTP on loopback
            )
            server = AppServer(app)
            server.start()
            try:
                shots = SHOTS / strategy
                shots.mkdir(parents=True, exist_ok=True)
                yield Site(server.url, emu, strategy, shots)
            finally:
                server.stop()
        finally:
            if store is not None:
                store.close()


@pytest.fixture
def context(browser: Browser, site: Site) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies), closed before the servers stop."""
    made = browser.new_context(viewport={"width": 900, "height": 720})
    made.set_default_timeout(UI_MS)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return watched(context.new_page())


# -- helpers --------------------------------------------------------------------------------


#: Uncaught script errors of each page made by :func:`watched`.
SCRIPT_ERRORS: weakref.WeakKeyDictionary[Page, list[str]] = weakref.WeakKeyDictionary()


def watched(page: Page) -> Page:
    """``page``, with its uncaught script errors collected (checked by :func:`shot`)."""
    errors = SCRIPT_ERRORS.setdefault(page, [])
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


def shot(page: Page, site: Site, name: str) -> None:
    """Check the page's invariants, then save a screenshot as ``<strategy>/<name>.png``."""
    assert SCRIPT_ERRORS.get(page, []) == []
    if page.url.startswith(site.url):
        assert page.evaluate("document.cookie") == ""  # HttpOnly: scripts see no cookie
    page.screenshot(path=site.shots / f"{name}.png", full_page=True)


def session_cookies(context: BrowserContext) -> list[dict[str, Any]]:
    return [dict(c) for c in context.cookies() if SESSION_COOKIE.match(c.get("name", ""))]


def expiry(page: Page) -> int:
    """The access token expiry the page shows (epoch seconds)."""
    value = page.locator("#token-expires-at").get_attribute("data-epoch")
    assert value is not None
    return int(value)


def wait_for_later_expiry(page: Page, than: int) -> int:
    """Wait until the page shows an access token expiring after ``than``; returns it."""
    page.wait_for_function(
        "old => Number(document.getElementById('token-expires-at').dataset.epoch) > old",
        arg=than,
        timeout=AFTER_EXPIRY_MS,
    )
    return expiry(page)


def mark(page: Page) -> None:
    """Leave a mark in the page's window; a reload or a navigation would wipe it."""
    page.evaluate("window.__notReloaded = true")


def still_marked(page: Page) -> bool:
    return bool(page.evaluate("window.__notReloaded === true"))


def expect_signed_in(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-state", "signed-in", timeout=UI_MS)
    expect(page.locator("#user-name")).to_have_text("Ada Example")


def expect_avatar_loaded(page: Page, site: Site) -> None:
    """The user's picture comes from the provider (the emulator) and has loaded."""
    expect(page.locator("#user-image")).to_have_attribute(
        "src", re.compile("^" + re.escape(site.emu.base_url) + "/")
    )
    page.wait_for_function(
        "() => { const i = document.getElementById('user-image');"
        " return i.complete && i.naturalWidth > 0; }"
    )


def sign_in(
    page: Page, site: Site, shots: tuple[str, str, str] | None = None, provider: str = "github"
) -> None:
    """Sign in from the signed-out page, pressing Allow on the emulator's consent page."""
    page.goto(site.url + "/")
    expect(page.locator("body")).to_have_attribute("data-state", "signed-out", timeout=UI_MS)
    expect(page.locator(f"#sign-in-{provider}")).to_be_visible()
    if shots:
        shot(page, site, shots[0])
    page.click(f"#sign-in-{provider}")
    page.wait_for_url(site.authorize_url(provider))
    expect(page.locator("#allow")).to_be_visible()
    if shots:
        shot(page, site, shots[1])
    page.click("#allow")
    page.wait_for_url(site.url + "/")
    expect_signed_in(page)
    if shots:
        shot(page, site, shots[2])


# -- the scenarios --------------------------------------------------------------------------


def test_chromium_is_installed() -> None:
    assert CHROMIUM.is_file(), (
        f"the browser tests need Debian's Chromium at {CHROMIUM}: sudo apt-get install chromium"
    )


def test_sign_in_shows_the_profile_and_the_token_lifetime(
    page: Page, context: BrowserContext, site: Site
) -> None:
    sign_in(page, site, ("01-signed-out", "02-consent", "03-signed-in"))

    expect(page.locator("#user-email")).to_have_text("ada@example.com")
    expect(page.locator("#provider")).to_have_text("github")
    left = page.locator("#token-expires-in").get_attribute("data-seconds")
    assert left is not None
    assert 0 < int(left) <= LIFETIME
    assert expiry(page) > time.time() - 1
    expect(page.locator("#refresh-count")).to_have_text("0")
    expect_avatar_loaded(page, site)
    expect(page.locator("#document-cookie")).to_have_text('""')

    cookies = session_cookies(context)
    assert cookies, "no session cookie after sign-in"
    assert all(c["httpOnly"] and c["sameSite"] == "Lax" for c in cookies)
    assert not any(c["name"] == "keyturn.flow" for c in context.cookies())
    assert site.github("authorize") == 1
    assert site.github("authorization_code") == 1


def test_sign_in_with_google(page: Page, site: Site) -> None:
    sign_in(page, site, provider="google")
    expect(page.locator("#provider")).to_have_text("google")
    expect(page.locator("#user-email")).to_have_text("ada@example.com")
    expect_avatar_loaded(page, site)

    page.click("#call-api")
    result = page.locator("#api-result")
    expect(result).to_have_attribute("data-status", "200", timeout=UI_MS)
    expect(result).to_contain_text('"provider": "google"')
    expect(result).to_contain_text('"email": "ada@example.com"')
    counters = site.emu.counters("google")
    assert counters["authorization_code"] == 1
    assert counters["userinfo"] == 2  # the profile at sign-in, then the API call
    assert site.github("authorize") == 0
    shot(page, site, "04-google-signed-in")


def test_the_page_refreshes_the_token_without_a_reload(page: Page, site: Site) -> None:
    sign_in(page, site)
    first = expiry(page)
    assert site.github("refresh_token") == 0
    mark(page)
    shot(page, site, "05-before-expiry")

    later = wait_for_later_expiry(page, first)

    assert later > first
    assert still_marked(page), "the page was reloaded"
    assert site.github("refresh_token") == 1
    expect(page.locator("#refresh-count")).to_have_text("1")
    expect(page.locator("body")).to_have_attribute("data-state", "signed-in")
    shot(page, site, "06-refreshed")

    userinfo = site.github("userinfo")
    page.click("#call-api")
    result = page.locator("#api-result")
    expect(result).to_have_attribute("data-status", "200", timeout=UI_MS)
    expect(result).to_contain_text('"login": "ada-example"')
    expect(result).to_contain_text('"name": "Ada Example"')
    assert site.github("userinfo") == userinfo + 1
    assert still_marked(page)
    shot(page, site, "07-api-called")


def test_two_tabs_at_an_expired_session_share_one_refresh(
    page: Page, context: BrowserContext, site: Site
) -> None:
    sign_in(page, site)
    second = watched(context.new_page())
    second.goto(site.url + "/")
    expect_signed_in(second)
    first = expiry(page)
    assert expiry(second) == first
    mark(page)
    mark(second)
    shot(second, site, "08-two-tabs-open")

    # Two tabs open as the token expires: both read the session just after that same
    # expiry, so at the same moment.
    wait_for_later_expiry(page, first)
    wait_for_later_expiry(second, first)

    assert site.github("refresh_token") == 1
    later = expiry(page)
    assert expiry(second) == later
    assert still_marked(page)
    assert still_marked(second)
    shot(page, site, "09-first-tab-refreshed")
    shot(second, site, "10-second-tab-refreshed")

    # Two tabs opened at the same moment on a session whose token has already expired.
    for tab in (page, second):
        tab.goto("about:blank")  # no page of the app is open while the token expires
    # Nothing to wait on while no page is open: sleep until just past the expiry.
    time.sleep(max(0.0, later + 0.3 - time.time()))
    for tab in (page, second):
        tab.evaluate("url => { window.location.href = url; }", site.url + "/")
    for tab in (page, second):
        tab.wait_for_url(site.url + "/")
        expect_signed_in(tab)

    assert site.github("refresh_token") == 2
    assert expiry(page) == expiry(second) > later
    shot(page, site, "11-first-tab-opened-after-expiry")
    shot(second, site, "12-second-tab-opened-after-expiry")


def test_a_revoked_grant_sends_the_page_back_to_sign_in(page: Page, site: Site) -> None:
    sign_in(page, site)
    assert site.github("authorize") == 1
    shot(page, site, "13-before-revocation")

    assert site.emu.revoke_grants("github") == 1
    # Nothing touches the page: at expiry its refresh fails for good and it signs in again.
    page.wait_for_url(site.authorize_url(), timeout=AFTER_EXPIRY_MS)
    expect(page.locator("#allow")).to_be_visible()
    assert site.github("authorize") == 2
    assert site.github("refresh_token") == 0
    assert site.github("bad_refresh_token") >= 1
    shot(page, site, "14-back-at-consent")

    page.click("#allow")
    page.wait_for_url(site.url + "/")
    expect_signed_in(page)
    assert site.github("authorization_code") == 2
    assert expiry(page) > time.time() - 1
    shot(page, site, "15-signed-in-again")


def test_sign_out_ends_the_session(page: Page, context: BrowserContext, site: Site) -> None:
    sign_in(page, site)
    assert session_cookies(context)
    shot(page, site, "16-before-sign-out")

    page.click("#sign-out")

    expect(page.locator("body")).to_have_attribute("data-state", "signed-out", timeout=UI_MS)
    expect(page.locator("#sign-in-github")).to_be_visible()
    assert session_cookies(context) == []
    assert site.github("revoke") == 1
    status = page.evaluate(
        "() => fetch('/api/profile', {headers: {accept: 'application/json'}}).then(r => r.status)"
    )
    assert status == 401
    shot(page, site, "17-signed-out")


def test_sign_in_from_a_page_with_a_long_address(page: Page, site: Site) -> None:
    # client.js sends the page's own address as callbackUrl; a long one must not make a flow
    # cookie the browser drops (over 4 KB), which would fail the sign-in at the callback.
    page.goto(site.url + "/?q=" + "x" * 2500)
    expect(page.locator("body")).to_have_attribute("data-state", "signed-out", timeout=UI_MS)
    page.evaluate("() => keyturn.signIn('github')")
    page.wait_for_url(site.authorize_url())
    assert any(c["name"] == "keyturn.flow" for c in page.context.cookies())
    page.click("#allow")
    page.wait_for_url(site.url + "/")  # the page, without its too long query
    expect_signed_in(page)
    shot(page, site, "18-signed-in-from-a-long-address")


# -- a generic OpenID Connect provider (keyturn-oidc) at the emulator's oidc profile ---------

#: Seconds the oidc profile's access tokens live here. The app and the emulator share a fake
#: clock, so the test moves time on instead of waiting for an expiry.
OIDC_LIFETIME = 300

#: The test app's one page: the session as the server reads it (refreshed first when due),
#: and buttons that call client.js.
OIDC_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>corp</title></head>
<body data-state="{state}">
<p>Signed in as <span id="user-name">{name}</span> (<span id="user-id">{user_id}</span>)</p>
<p>Access token expires at <span id="token-expires-at" data-epoch="{expires}">{expires}</span></p>
<button id="sign-in" onclick="keyturn.signIn('corp')">Sign in with corp</button>
<button id="sign-out" onclick="keyturn.signOut({{callbackUrl: '/bye'}})">Sign out</button>
<script src="/auth/client.js"></script>
</body></html>
"""


def oidc_app(
    client: AsyncKeyturn, strategy: StrategyName, store: SQLiteTokenStore | None
) -> Starlette:
    """A Starlette app with keyturn's routes at ``/auth`` that logs out at ``corp``.

    ``/`` and ``/bye`` render :data:`OIDC_PAGE` from ``KeyturnAuth.current``, which refreshes
    a due access token and hands back the refreshed session's cookies.
    """
    auth = KeyturnAuth(
        client,
        secret=SECRET,
        strategy=strategy,
        store=store,
        secure_cookies=False,  # plain HTTP on loopback
        logout_at_provider=["corp"],
    )

    async def page(request: Request) -> Response:
        current = await auth.current(request)
        session = current.session
        user = session.user if session is not None else None
        state = "signed-out" if session is None else ("error" if session.error else "signed-in")
        body = OIDC_PAGE.format(
            state=state,
            name=escape(user.name or "") if user else "",
            user_id=escape(user.id) if user else "",
            expires=(session.expires_at or 0) if session is not None else 0,
        )
        return auth.apply(current, HTMLResponse(body, headers={"cache-control": "no-store"}))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    return Starlette(
        routes=[Route("/", page), Route("/bye", page), Mount("/auth", app=auth)],
        lifespan=lifespan,
    )


@dataclass
class OidcSite:
    """The test app, the emulator behind its ``corp`` provider, and their shared clock."""

    url: str
    emu: Emulator
    clock: FakeClock
    shots: Path

    def count(self, counter: str) -> int:
        """One of the emulator's counters for the oidc profile."""
        return self.emu.counters("oidc")[counter]


@pytest.fixture(params=STRATEGIES)
def oidc_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OidcSite]:
    strategy: StrategyName = request.param
    clock = FakeClock(time.time())  # now: the browser's cookies live in real time
    with Emulator(access_token_lifetime=OIDC_LIFETIME, consent="page", clock=clock) as emu:
        issuer = emu.issuer("oidc")
        assert issuer is not None
        client = AsyncKeyturn(
            {"corp": emu.credentials},
            providers=[keyturn_oidc.provider("corp", issuer, name="Corp")],
            clock=clock,
            leeway=5,
            environ={},
        )
        store = SQLiteTokenStore(tmp_path / "sessions.sqlite3") if strategy == "database" else None
        try:
            server = AppServer(oidc_app(client, strategy, store))
            emu.register_post_logout_redirect_uris(server.url + "/auth/signout/callback")
            server.start()
            try:
                shots = SHOTS / "oidc" / strategy
                shots.mkdir(parents=True, exist_ok=True)
                yield OidcSite(server.url, emu, clock, shots)
            finally:
                server.stop()
        finally:
            if store is not None:
                store.close()


def oidc_shot(page: Page, site: OidcSite, name: str) -> None:
    """Like :func:`shot`, for the oidc app."""
    assert SCRIPT_ERRORS.get(page, []) == []
    if page.url.startswith(site.url):
        assert page.evaluate("document.cookie") == ""
    page.screenshot(path=site.shots / f"{name}.png", full_page=True)


def test_a_generic_oidc_provider_signs_in_refreshes_and_logs_out_at_the_provider(
    browser: Browser, oidc_site: OidcSite
) -> None:
    site = oidc_site
    emu = site.emu
    context = browser.new_context(viewport={"width": 900, "height": 720})
    context.set_default_timeout(UI_MS)
    try:
        page = watched(context.new_page())
        authorize = re.compile(re.escape(emu.base_url) + "/oidc/authorize")

        # Sign-in through the emulator's pages: the discovery document and the key set are
        # read once, and the ID token from the code exchange is verified with that set.
        page.goto(site.url + "/")
        expect(page.locator("body")).to_have_attribute("data-state", "signed-out")
        assert site.count("discovery") == 0  # nothing is read before the first sign-in
        page.click("#sign-in")
        page.wait_for_url(authorize)
        expect(page.locator("#allow")).to_be_visible()
        expect(page.locator("body")).to_contain_text("Signing in as")  # no session there yet
        oidc_shot(page, site, "01-consent")
        page.click("#allow")
        page.wait_for_url(site.url + "/")
        expect(page.locator("body")).to_have_attribute("data-state", "signed-in")
        expect(page.locator("#user-name")).to_have_text("Ada Example")
        oidc_shot(page, site, "02-signed-in")
        assert emu.signed_in("oidc")
        assert session_cookies(context)
        assert (site.count("authorization_code"), site.count("userinfo")) == (1, 1)
        assert (site.count("discovery"), site.count("jwks")) == (1, 1)
        first = expiry(page)

        # The provider rotates its keys; then the access token falls due. Reading the session
        # refreshes it: the new ID token names a kid the cached set lacks, so the set is
        # fetched once more and the token verifies. The refresh token rotated too.
        emu.rotate_keys()
        site.clock.advance(OIDC_LIFETIME)
        page.reload()
        expect(page.locator("body")).to_have_attribute("data-state", "signed-in")
        expect(page.locator("#user-name")).to_have_text("Ada Example")
        assert expiry(page) > first
        assert site.count("refresh_token") == 1
        assert (site.count("discovery"), site.count("jwks")) == (1, 2)
        page.reload()  # the refreshed session was kept: no second refresh
        expect(page.locator("body")).to_have_attribute("data-state", "signed-in")
        assert site.count("refresh_token") == 1
        oidc_shot(page, site, "03-refreshed")

        # Sign-out with client.js: the emulator's end-session page logs the user out there and
        # sends the browser back to /auth/signout/callback, which goes on to the callbackUrl.
        with page.expect_request(re.compile(re.escape(emu.base_url) + "/oidc/.*logout.*")):
            page.click("#sign-out")
        page.wait_for_url(site.url + "/bye")
        expect(page.locator("body")).to_have_attribute("data-state", "signed-out")
        oidc_shot(page, site, "04-signed-out")
        assert session_cookies(context) == []
        assert emu.logouts("oidc") == 1
        assert not emu.signed_in("oidc")
        assert site.count("revoke") == 1  # the grant was revoked before the browser left

        # The next sign-in finds no session at the provider: its page asks to sign in again.
        page.click("#sign-in")
        page.wait_for_url(authorize)
        expect(page.locator("body")).to_contain_text("Signing in as")
        oidc_shot(page, site, "05-signing-in-again")
        page.click("#allow")
        page.wait_for_url(site.url + "/bye")  # client.js signs in back to the page it is on
        expect(page.locator("body")).to_have_attribute("data-state", "signed-in")
        assert emu.signed_in("oidc")
        assert site.count("authorization_code") == 2
        assert (site.count("discovery"), site.count("jwks")) == (1, 2)
    finally:
        context.close()
