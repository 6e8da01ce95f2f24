"""The Flask example (examples/flask_app) end to end, with the provider emulator on loopback.

Flask's test client plays the browser; the emulator's ``github`` profile plays GitHub, which
the app's blocking :class:`keyturn.Keyturn` reaches over real loopback HTTP. One
:class:`FakeClock` drives the emulator, the client and the cookies, so tokens expire on
demand. Every test runs with both session strategies: ``jwt`` (the session sealed in the
cookie) and ``database`` (a session id in the cookie, the tokens in a SQLite store).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from examples.flask_app.app import create_app
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

import keyturn
from keyturn.stores import SQLiteTokenStore
from keyturn.web import DEFAULT_SESSION_MAX_AGE, WebAuth
from keyturn_emulator import Emulator
from tests.conftest import START, FakeClock

SECRET = "flask-example-test-secret-0123456789abcdef"
LIFETIME = 3600
SESSION_COOKIE = "keyturn.session-token"
FLOW_COOKIE = "keyturn.flow"
HTML = {"Accept": "text/html,application/xhtml+xml"}
JSON = {"Accept": "application/json"}


@dataclass
class Site:
    """The app, its browser, and the provider behind it."""

    strategy: str
    emu: Emulator
    clock: FakeClock
    auth: WebAuth
    app: Flask
    browser: FlaskClient
    store: SQLiteTokenStore | None

    def counters(self) -> dict[str, int]:
        return self.emu.counters("github")

    def session_cookie(self, name: str = SESSION_COOKIE) -> str | None:
        cookie = self.browser.get_cookie(name)
        return None if cookie is None else cookie.value

    def session_json(self) -> Any:
        response = self.browser.get("/auth/session")
        assert response.status_code == 200
        return response.get_json()

    def sign_in(self, callback_url: str = "/", **request: Any) -> TestResponse:
        """Start at ``/auth/signin/github``, approve at the emulator, call the callback back."""
        start = self.browser.get(
            f"/auth/signin/github?callbackUrl={quote(callback_url, safe='')}", **request
        )
        assert start.status_code == 302
        location = start.headers["Location"]
        assert location.startswith(self.emu.base_url)
        query = self.emu.authorize(location)
        return self.browser.get("/auth/callback/github", query_string=query, **request)

    def signed_in(self) -> None:
        response = self.sign_in()
        assert (response.status_code, response.headers["Location"]) == (303, "/")


@pytest.fixture(params=["jwt", "database"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    clock = FakeClock()
    with Emulator(access_token_lifetime=LIFETIME, clock=clock) as emu:
        with keyturn.Keyturn(environ={}) as probe:
            spec = emu.point(probe.provider("github"))
        store = (
            SQLiteTokenStore(tmp_path / "sessions.sqlite3") if request.param == "database" else None
        )
        with keyturn.Keyturn(
            {"github": emu.credentials}, providers=[spec], clock=clock, environ={}
        ) as kt:
            auth = WebAuth(kt, secret=SECRET, strategy=request.param, store=store)
            app = create_app(auth)
            yield Site(request.param, emu, clock, auth, app, app.test_client(), store)
        if store is not None:
            store.close()


def page_user(response: TestResponse) -> str | None:
    """The name the home page says is signed in, or ``None`` for the signed-out page."""
    found = re.search(r"<span id='user'>([^<]*)</span>", response.get_data(as_text=True))
    return None if found is None else found[1]


def set_cookies(response: TestResponse) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def jwe_header(value: str) -> dict[str, Any]:
    encoded = value.split(".")[0]
    header: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    )
    return header


# -- sign-in ------------------------------------------------------------------------------


def test_sign_in_shows_the_user_on_the_page_and_in_the_session_json(site: Site) -> None:
    signed_out = site.browser.get("/")
    assert signed_out.status_code == 200
    assert page_user(signed_out) is None
    assert 'href="/auth/signin/github?callbackUrl=%2F"' in signed_out.get_data(as_text=True)
    assert site.session_json() is None

    callback = site.sign_in("/?tab=2")

    assert (callback.status_code, callback.headers["Location"]) == (303, "/?tab=2")
    assert site.session_cookie(FLOW_COOKIE) is None  # the one-time flow cookie is spent
    value = site.session_cookie()
    assert value is not None
    if site.strategy == "jwt":
        assert value.count(".") == 4
        assert jwe_header(value)["alg"] == "dir" and jwe_header(value)["enc"] == "A256GCM"
        # Sealed, not just signed: no part decodes to the user's data. (Looking for "ada" in
        # the cookie's text instead failed now and then: random ciphertext spells it too.)
        decoded = b"".join(
            base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in value.split(".")
        )
        assert b"ada@example.com" not in decoded and b"Ada Example" not in decoded
    else:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value)
        assert site.store is not None
        key = "keyturn-session:" + hashlib.sha256(value.encode()).hexdigest()
        row = site.store.load(key)
        assert row is not None and row.data["user"]["email"] == "ada@example.com"

    assert page_user(site.browser.get("/")) == "Ada Example"
    body = site.session_json()
    assert body["user"]["name"] == "Ada Example"
    assert body["user"]["email"] == "ada@example.com"
    assert set(body["user"]) == {"id", "name", "email", "image"}
    assert body["provider"] == "github"
    assert body["accessTokenExpires"] == START + LIFETIME
    expires = datetime.fromtimestamp(START + DEFAULT_SESSION_MAX_AGE, UTC)
    assert body["expires"] == expires.isoformat().replace("+00:00", "Z")
    assert "accessToken" not in body and "error" not in body
    counters = site.counters()
    assert (counters["authorize"], counters["authorization_code"]) == (1, 1)


def test_a_denied_sign_in_shows_an_error_page_and_no_session(site: Site) -> None:
    start = site.browser.get("/auth/signin/github")
    query = site.emu.authorize(start.headers["Location"], deny=True)

    failed = site.browser.get("/auth/callback/github", query_string=query)

    assert failed.status_code == 400
    message = re.search(r"<p id='keyturn-message'>([^<]*)</p>", failed.get_data(as_text=True))
    assert message is not None and "access_denied" in message[1]
    assert site.session_cookie() is None
    assert site.session_cookie(FLOW_COOKIE) is None
    assert site.counters()["authorization_code"] == 0


def test_sign_in_refuses_a_callback_url_on_another_site(site: Site) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = site.browser.get(f"/auth/signin/github?callbackUrl={quote(target, safe='')}")
        assert response.status_code == 400, target
        assert site.session_cookie(FLOW_COOKIE) is None
    assert site.counters()["authorize"] == 0


# -- refresh ------------------------------------------------------------------------------


def test_an_expired_access_token_is_refreshed_once_and_the_new_one_kept(site: Site) -> None:
    site.signed_in()
    first_cookie = site.session_cookie()
    site.clock.advance(LIFETIME)  # within the client's 60 s leeway: due

    page = site.browser.get("/")

    assert page_user(page) == "Ada Example"
    assert site.counters()["refresh_token"] == 1
    if site.strategy == "jwt":  # the page carries the re-sealed cookie
        assert any(c.startswith(f"{SESSION_COOKIE}=") for c in set_cookies(page))
        assert site.session_cookie() != first_cookie
    else:  # the store row changed; the session id did not
        assert set_cookies(page) == []
        assert site.session_cookie() == first_cookie
    assert site.session_json()["accessTokenExpires"] == START + 2 * LIFETIME

    # Past the client's 30 s reuse window: had the app dropped the new cookie, the next
    # request would present the rotated (now dead) refresh token and fail.
    site.clock.advance(120)
    body = site.session_json()
    assert "error" not in body
    profile = site.browser.get("/api/profile", headers=JSON)
    assert profile.status_code == 200
    assert profile.get_json()["email"] == "ada@example.com"
    counters = site.counters()
    assert counters["refresh_token"] == 1
    assert counters["errors"] == 0


def test_the_profile_api_needs_a_valid_access_token(site: Site) -> None:
    refused = site.browser.get("/api/profile", headers=JSON)
    assert refused.status_code == 401
    assert refused.get_json() == {"error": "signed_out"}

    # A browser goes to the sign-in links, and from them back to the API after signing in.
    sent = site.browser.get("/api/profile", headers=HTML)
    assert (sent.status_code, sent.headers["Location"]) == (303, "/?callbackUrl=%2Fapi%2Fprofile")
    links = site.browser.get(sent.headers["Location"]).get_data(as_text=True)
    assert 'href="/auth/signin/github?callbackUrl=%2Fapi%2Fprofile"' in links
    callback = site.sign_in("/api/profile")
    assert (callback.status_code, callback.headers["Location"]) == (303, "/api/profile")

    before = site.counters()["userinfo"]
    profile = site.browser.get("/api/profile", headers=JSON)

    assert profile.status_code == 200
    assert profile.get_json() == {
        "provider": "github",
        "id": profile.get_json()["id"],
        "name": "Ada Example",
        "email": "ada@example.com",
    }
    assert site.counters()["userinfo"] > before  # the provider accepted the token


def test_a_revoked_grant_sends_the_browser_to_sign_in_again(site: Site) -> None:
    site.signed_in()
    assert site.emu.revoke_grants() == 1
    site.clock.advance(LIFETIME)

    sent = site.browser.get("/api/profile", headers=HTML)

    assert sent.status_code == 303
    assert sent.headers["Location"] == "/auth/signin/github?callbackUrl=%2Fapi%2Fprofile"
    counters = site.counters()
    assert counters["bad_refresh_token"] == 1
    assert counters["refresh_token"] == 0
    # The failure is remembered (in the cookie the redirect set, or in the store row), past
    # the client's 30 s reuse window too: nothing more is sent to the provider.
    site.clock.advance(120)
    api = site.browser.get("/api/profile", headers=JSON)
    assert api.status_code == 401
    assert api.get_json() == {"error": "RefreshAccessTokenError"}
    assert site.session_json()["error"] == "RefreshAccessTokenError"
    home = site.browser.get("/").get_data(as_text=True)
    assert "<p id='error'>" in home
    assert site.counters()["token_requests"] == counters["token_requests"]

    # Signing in again starts a clean session.
    callback = site.sign_in("/api/profile")
    assert callback.status_code == 303
    assert "error" not in site.session_json()
    assert site.browser.get("/api/profile", headers=JSON).status_code == 200


# -- sign-out -----------------------------------------------------------------------------


def test_sign_out_needs_the_csrf_token(site: Site) -> None:
    site.signed_in()
    token = site.browser.get("/auth/csrf").get_json()["csrfToken"]

    for form, headers in [
        ({}, {}),
        ({"csrfToken": "not-the-token"}, {}),
        ({"csrfToken": token}, {"Origin": "https://evil.example"}),
        ({"csrfToken": token}, {"Sec-Fetch-Site": "cross-site"}),
    ]:
        refused = site.browser.post("/auth/signout", data=form, headers=headers)
        assert refused.status_code == 403, (form, headers)
        assert not any(c.startswith(f"{SESSION_COOKIE}=") for c in set_cookies(refused))
    assert site.session_json() is not None
    assert site.counters()["revoke"] == 0

    session_id = site.session_cookie()
    assert session_id is not None
    key = "keyturn-session:" + hashlib.sha256(session_id.encode()).hexdigest()

    done = site.browser.post(
        "/auth/signout",
        data={"csrfToken": token, "callbackUrl": "/bye"},
        headers={"Origin": "http://localhost"},
    )

    assert (done.status_code, done.headers["Location"]) == (303, "/bye")
    assert site.session_cookie() is None
    assert site.session_json() is None
    assert page_user(site.browser.get("/")) is None
    assert site.counters()["revoke"] == 1
    if site.strategy == "database":
        assert site.store is not None and site.store.load(key) is None
        # A copy of the cookie kept from before is worth nothing: its row is gone.
        site.browser.set_cookie(SESSION_COOKIE, session_id)
        assert site.session_json() is None


def test_sign_out_from_a_script_sends_the_token_in_a_header(site: Site) -> None:
    site.signed_in()
    token = site.browser.get("/auth/csrf", headers=JSON).get_json()["csrfToken"]

    done = site.browser.post(
        "/auth/signout",
        json={"callbackUrl": "/"},
        headers={**JSON, "X-CSRF-Token": token},
    )

    assert done.status_code == 200
    assert done.get_json() == {"url": "/"}
    assert site.session_json() is None


def test_an_oversized_post_is_refused_before_keyturn_reads_it(site: Site) -> None:
    site.signed_in()
    token = site.browser.get("/auth/csrf").get_json()["csrfToken"]

    response = site.browser.post(
        "/auth/signout", data={"csrfToken": token, "padding": "x" * (100 * 1024)}
    )

    assert response.status_code == 413
    assert site.session_json() is not None


# -- cookies ------------------------------------------------------------------------------


def test_a_tampered_session_cookie_reads_as_signed_out_and_is_cleared(site: Site) -> None:
    site.signed_in()
    value = site.session_cookie()
    assert value is not None
    forged = value[:-4] + ("AAAA" if value[-4:] != "AAAA" else "BBBB")
    site.browser.set_cookie(SESSION_COOKIE, forged)

    page = site.browser.get("/")

    assert page_user(page) is None
    assert f"{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" in set_cookies(page)
    assert site.session_cookie() is None


def test_over_https_the_cookies_are_secure_and_prefixed(site: Site) -> None:
    https = {"base_url": "https://localhost"}

    callback = site.sign_in("/", **https)

    assert callback.status_code == 303
    written = [c for c in set_cookies(callback) if f"{SESSION_COOKIE}=" in c]
    assert written and all(c.startswith(f"__Host-{SESSION_COOKIE}=") for c in written)
    assert all(c.endswith("; Secure") for c in written)
    assert site.session_cookie(f"__Host-{SESSION_COOKIE}") is not None
    assert site.session_cookie() is None
    page = site.browser.get("/", **https)
    assert page_user(page) == "Ada Example"
