"""Sign in with Apple in headless Chromium, through the emulator's ``apple`` profile.

Apple answers ``response_mode=form_post``: its page posts ``code``, ``state`` and, the first
time, ``user`` to the app
(https://developer.apple.com/documentation/signinwithapple/incorporating-sign-in-with-apple-into-other-platforms).
Here the app is served as ``http://localhost:<port>`` and the emulator as
``http://127.0.0.1:<port>``: two sites, so the browser's POST to the callback is cross-site,
as Apple's is, and a ``SameSite=Lax`` flow cookie would stay behind. keyturn writes that
cookie ``SameSite=None; Secure`` for such a provider (Chromium keeps ``Secure`` cookies from
``http://localhost``), the posted ``state`` is checked against it, the client secret JWT is
minted per request and checked by the emulator against the registered key, and the name from
``user`` shows on the page.

Needs Debian's Chromium at ``/usr/bin/chromium``, as ``test_browser.py``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from html import escape

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Browser, Playwright, expect, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from keyturn import AsyncKeyturn, ClientCredentials
from keyturn.starlette import KeyturnAuth
from keyturn_apple import APPLE
from keyturn_emulator import Emulator
from tests.conftest import ROOT

from .test_browser import CHROMIUM, CHROMIUM_ARGS, UI_MS, AppServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SECRET = "apple-browser-test-secret-not-real-0123456789"
KEY_ID = "BROWSERKEY"
SHOTS = ROOT / "test-artifacts" / "browser" / "apple"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>apple</title></head>
<body data-state="{state}">
<p>Signed in as <span id="user-name">{name}</span> (<span id="user-id">{user_id}</span>)</p>
<button id="sign-in" onclick="keyturn.signIn('apple')">Sign in with Apple</button>
<script src="/auth/client.js"></script>
</body></html>
"""


def _p8() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def apple_app(client: AsyncKeyturn) -> Starlette:
    auth = KeyturnAuth(client, secret=SECRET, secure_cookies=False)  # plain HTTP, loopback

    async def page(request: Request) -> Response:
        current = await auth.current(request)
        session = current.session
        user = session.user if session is not None else None
        body = PAGE.format(
            state="signed-out" if session is None else "signed-in",
            name=escape(user.name or "") if user else "",
            user_id=escape(user.id) if user else "",
        )
        return auth.apply(current, HTMLResponse(body, headers={"cache-control": "no-store"}))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    return Starlette(routes=[Route("/", page), Mount("/auth", app=auth)], lifespan=lifespan)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"the browser tests need Debian's Chromium at {CHROMIUM}", pytrace=False)
    playwright: Playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
    finally:
        playwright.stop()


def test_sign_in_with_apple_through_a_cross_site_form_post(browser: Browser) -> None:
    key = _p8()
    credentials = ClientCredentials(client_id="com.example.web", private_key=key)
    assert credentials.signing_key is not None
    jwk = {**credentials.signing_key.public_jwk(), "kid": KEY_ID}
    SHOTS.mkdir(parents=True, exist_ok=True)
    with Emulator(consent="page", client_jwks={"keys": [jwk]}) as emu:
        client = AsyncKeyturn(
            {
                "apple": ClientCredentials(
                    client_id=emu.credentials.client_id, private_key=key, private_key_id=KEY_ID
                )
            },
            providers=[emu.point(APPLE)],
            settings={"apple": {"team_id": "ABCDE12345"}},
            environ={},
        )
        server = AppServer(apple_app(client))
        server.start()
        app_url = f"http://localhost:{server.port}"  # another site than the emulator's
        assert "127.0.0.1" in emu.base_url
        context = browser.new_context(viewport={"width": 900, "height": 720})
        context.set_default_timeout(UI_MS)
        try:
            page = context.new_page()
            page.goto(app_url + "/")
            expect(page.locator("body")).to_have_attribute("data-state", "signed-out")
            page.click("#sign-in")
            page.wait_for_url(re.compile(re.escape(emu.base_url) + "/apple/auth/authorize"))
            flows = [c for c in context.cookies(app_url) if c["name"] == "keyturn.flow"]
            assert flows and flows[0]["sameSite"] == "None" and flows[0]["secure"]
            page.screenshot(path=SHOTS / "01-consent.png", full_page=True)
            page.click("#allow")  # the emulator's page then posts the form to the app
            page.wait_for_url(app_url + "/")
            expect(page.locator("body")).to_have_attribute("data-state", "signed-in")
            expect(page.locator("#user-name")).to_have_text("Ada Example")  # from `user`
            page.screenshot(path=SHOTS / "02-signed-in.png", full_page=True)
            assert page.evaluate("document.cookie") == ""
            assert not [c for c in context.cookies(app_url) if c["name"] == "keyturn.flow"]
            counters = emu.counters("apple")
            assert counters["authorization_code"] == 1
            assert counters["auth_client_secret_post"] == 1  # the minted JWT was accepted
        finally:
            context.close()
            server.stop()
