"""keyturn.web.routes: sign-in, the callback, the session, sign-out, the providers and the
client script, and the answers to unknown routes, methods and providers.

Attacks and bad input are in ``test_attacks.py``."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlsplit

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from keyturn.web import DEFAULT_SESSION_MAX_AGE, Keyring
from keyturn.web.sealing import Sealer
from keyturn.web.strategies import DatabaseStrategy

from ._site import (
    ADA,
    BASE,
    FLOW,
    LIFETIME,
    SECRET,
    SESSION,
    MakeSite,
    b64encode,
    counters,
    expired,
    iso,
    jar,
    message_of,
    set_cookies,
    sign_out,
    userinfo_status,
    written,
)

# == sign-in ==================================================================================


async def test_signin_redirects_to_the_provider_with_state_and_pkce(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    started = await browser.get("/auth/signin/github", params={"callbackUrl": "/home?tab=2"})
    assert started.status_code == 302 and started.headers["cache-control"] == "no-store"
    location = started.headers["location"]
    endpoint = site.emu.endpoints("github")["authorization_endpoint"]
    assert location.startswith(endpoint + "?")
    query = dict(parse_qsl(urlsplit(location).query))
    assert query["client_id"] == site.emu.credentials.client_id
    assert query["redirect_uri"] == f"{BASE}/auth/callback/github"
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 32

    [flow] = set_cookies(started)
    assert query["state"] not in flow.value
    state = Sealer(Keyring(SECRET), FLOW, site.clock).unseal(flow.value)
    assert state is not None and state["callbackUrl"] == "/home?tab=2"
    verifier = state["request"]["code_verifier"]
    assert query["code_challenge"] == b64encode(hashlib.sha256(verifier.encode()).digest())
    assert state["request"]["state"] == query["state"]

    again = await browser.get("/auth/signin/github")
    assert dict(parse_qsl(urlsplit(again.headers["location"]).query))["state"] != query["state"]


async def test_signin_passes_the_configured_scopes(make_site: MakeSite) -> None:
    site = await make_site(scopes={"github": ["read:user"]})
    started = await (await site.browser()).get("/auth/signin/github")
    assert dict(parse_qsl(urlsplit(started.headers["location"]).query))["scope"] == "read:user"


async def test_the_callback_starts_a_session_and_returns_to_the_page(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    now = int(site.clock())
    done = await site.sign_in(browser, callback_url="/home?tab=2#top")
    assert done.headers["location"] == "/home?tab=2#top"
    assert done.headers["cache-control"] == "no-store"
    assert list(written(done)) == [SESSION] and FLOW in expired(done)
    assert FLOW not in jar(browser)
    assert counters(site)["authorization_code"] == 1

    answer = await browser.get("/auth/session")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body.keys() == {"user", "provider", "expires", "accessTokenExpires"}
    assert {k: body["user"][k] for k in ADA} == ADA
    assert body["user"]["id"] and body["user"]["image"].startswith(site.emu.base_url)
    assert body["provider"] == "github"
    assert body["expires"] == iso(now + DEFAULT_SESSION_MAX_AGE)
    assert body["accessTokenExpires"] == now + LIFETIME
    tokens = site.tokens_of(browser)
    assert tokens.refresh_token is not None
    assert tokens.access_token.get_secret_value() not in answer.text
    assert tokens.refresh_token.get_secret_value() not in answer.text
    assert not written(answer)
    # The cookie itself does not carry the tokens in clear.
    for value in jar(browser).values():
        assert tokens.access_token.get_secret_value() not in value
        assert tokens.refresh_token.get_secret_value() not in value


async def test_expose_access_token_adds_only_the_access_token(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind, expose_access_token=True)
    browser = await site.browser()
    await site.sign_in(browser)
    answer = await browser.get("/auth/session")
    tokens = site.tokens_of(browser)
    assert answer.json()["accessToken"] == tokens.access_token.get_secret_value()
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() not in answer.text
    assert await userinfo_status(site, answer.json()["accessToken"]) == 200


async def test_without_the_profile_the_session_has_no_user(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind, fetch_profile=False)
    browser = await site.browser()
    await site.sign_in(browser)
    body = (await browser.get("/auth/session")).json()
    assert body["user"] is None and body["provider"] == "github"
    assert counters(site)["userinfo"] == 0


async def test_signed_out_the_session_is_null(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind)
    answer = await (await site.browser()).get("/auth/session")
    assert answer.status_code == 200 and answer.json() is None
    assert answer.headers.get("set-cookie") is None


async def test_a_fresh_sign_in_with_google_and_the_session_claims(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    await site.sign_in(browser, "google")
    body = (await browser.get("/auth/session")).json()
    assert body["provider"] == "google" and body["user"]["email"]
    # The ID token was checked at sign-in; the cookie does not keep it (nothing needs it).
    assert site.tokens_of(browser).id_token is None


# == sign-out =================================================================================


async def test_signout_revokes_and_clears_the_session(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    await site.sign_in(browser)
    key = DatabaseStrategy.key_of(jar(browser)[SESSION])
    access_token = site.tokens_of(browser).access_token.get_secret_value()
    assert await userinfo_status(site, access_token) == 200

    out = await sign_out(browser, callbackUrl="/bye")
    assert out.status_code == 303 and out.headers["location"] == "/bye"
    assert counters(site)["revoke"] == 1
    assert SESSION in expired(out) and not written(out)
    assert SESSION not in jar(browser)
    if site.store is not None:
        assert site.store.load(key) is None
    assert await userinfo_status(site, access_token) == 401
    assert (await browser.get("/auth/session")).json() is None


async def test_signout_without_revocation_or_session(make_site: MakeSite) -> None:
    site = await make_site(revoke_on_signout=False)
    browser = await site.browser()
    out = await sign_out(browser)  # signed out already: nothing to do, still fine
    assert out.status_code == 303 and out.headers["location"] == "/"
    assert not expired(out)
    await site.sign_in(browser)
    out = await sign_out(browser)
    assert out.status_code == 303 and SESSION in expired(out)
    assert counters(site)["revoke"] == 0


# == routes and error pages ===================================================================


async def test_unknown_routes_are_404_and_wrong_methods_405(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    for path in (
        "/auth/nope",
        "/auth/signin",
        "/auth/signin/",
        "/auth/signin/github/x",
        "/auth/session/x",
        "/auth/callback",
        "/auth/client.js/x",
    ):
        answer = await browser.get(path)
        assert answer.status_code == 404, path
        assert answer.json() == {"error": "not_found"}
    for method, path, allow in (
        ("GET", "/auth/signout", "POST"),
        ("POST", "/auth/session", "GET"),
        ("POST", "/auth/signin/github", "GET"),
        ("DELETE", "/auth/csrf", "GET"),
        ("PUT", "/auth/callback/github", "GET"),
    ):
        answer = await browser.request(method, path)
        assert answer.status_code == 405, (method, path)
        assert answer.headers["allow"] == allow
        assert answer.headers.get("set-cookie") is None


async def test_an_unknown_provider_gets_a_404_page(make_site: MakeSite) -> None:
    site = await make_site()
    answer = await (await site.browser()).get("/auth/signin/<b>nope<i>")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert "nope" in message_of(answer) and "<b>" not in answer.text
    assert answer.headers.get("set-cookie") is None


async def test_a_provider_without_credentials_gets_a_500_page_that_names_it(
    make_site: MakeSite, caplog: pytest.LogCaptureFixture
) -> None:
    site = await make_site()
    answer = await (await site.browser()).get("/auth/signin/strict")
    assert answer.status_code == 500
    assert "strict" in message_of(answer) and "not configured" in message_of(answer)
    secret = site.emu.credentials.client_secret
    assert secret is not None and secret.get_secret_value() not in answer.text
    assert answer.headers.get("set-cookie") is None
    assert any("strict" in record.getMessage() for record in caplog.records)


async def test_providers_and_the_client_script(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    listing = (await browser.get("/auth/providers")).json()
    assert listing["github"] == {
        "id": "github",
        "name": "GitHub",
        "signinUrl": "/auth/signin/github",
    }
    script = await browser.get("/auth/client.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "getSession" in script.text and "signOut" in script.text


async def test_the_routes_follow_the_base_path(make_site: MakeSite) -> None:
    site = await make_site(base_path="/login/")
    app = Starlette(routes=[Mount("/login", app=site.auth)])
    browser = await site.browser(app=app)
    started = await browser.get("/login/signin/github")
    query = dict(parse_qsl(urlsplit(started.headers["location"]).query))
    assert query["redirect_uri"] == f"{BASE}/login/callback/github"
    query = site.emu.authorize(started.headers["location"])
    done = await browser.get("/login/callback/github", params=query)
    assert done.status_code == 303
    assert (await browser.get("/login/session")).json()["provider"] == "github"
    assert (await browser.get("/auth/session")).status_code == 404
    assert site.auth.web.sign_in_url("github") == "/login/signin/github?callbackUrl=%2F"
