"""keyturn.web.cookies: the attributes of every cookie keyturn writes, the __Host- prefix,
and values split over several cookies when they outgrow one."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from keyturn.web.cookies import CHUNK_SIZE, CookiePolicy, read_chunked, write_chunked

from ._site import (
    ADA,
    BASE,
    CSRF,
    FLOW,
    HOST,
    LIFETIME,
    PUBLIC,
    SECURE,
    SESSION,
    BigClaims,
    MakeSite,
    blob,
    expired,
    jar,
    parse_set_cookie,
    set_cookies,
    sign_out,
    written,
)

POLICY = CookiePolicy(secure=False)


def test_cookie_attributes() -> None:
    cookie = parse_set_cookie(POLICY.set("n", "v", 60))
    assert (cookie.name, cookie.value) == ("n", "v")
    assert cookie.attrs == {"path": "/", "max-age": "60", "httponly": "", "samesite": "Lax"}
    secure = CookiePolicy(secure=True)
    assert secure.name("n") == "__Host-n" and POLICY.name("n") == "n"
    host = parse_set_cookie(secure.set("__Host-n", "v", 60))
    assert "secure" in host.attrs and host.attrs["path"] == "/" and "domain" not in host.attrs
    # __Host- needs Path=/ and no Domain; elsewhere the name takes __Secure-.
    assert CookiePolicy(secure=True, path="/app").name("n") == "__Secure-n"
    assert CookiePolicy(secure=True, domain="app.example").name("n") == "__Secure-n"
    assert CookiePolicy(secure=False, domain="app.example").name("n") == "n"
    assert parse_set_cookie(POLICY.expire("n")).expired
    with pytest.raises(ValueError, match="URL-safe"):
        POLICY.set("n", "a;b", 60)


def test_a_long_value_is_split_into_chunks_and_joined_on_read() -> None:
    [single] = write_chunked("c", "v" * CHUNK_SIZE, POLICY, 60, {})
    assert parse_set_cookie(single).name == "c"
    value = blob(2 * CHUNK_SIZE + 5)
    headers = write_chunked("c", value, POLICY, 60, {})
    cookies = [parse_set_cookie(header) for header in headers]
    assert [c.name for c in cookies] == ["c.0", "c.1", "c.2"]
    assert all(len(header) < 4096 for header in headers)
    assert read_chunked("c", {c.name: c.value for c in cookies}) == value
    assert read_chunked("c", {}) is None
    assert read_chunked("c", {"c.0": "a", "c.2": "c"}) == "a"  # a gap ends the value
    with pytest.raises(ValueError, match="too large"):
        write_chunked("c", "v" * (16 * CHUNK_SIZE + 1), POLICY, 60, {})


def test_a_rewrite_expires_the_cookies_it_no_longer_needs() -> None:
    present = {"c": "x", "c.0": "x", "c.1": "x", "c.2": "x", "c.x": "x", "cc": "x", "other": "x"}

    def rewrite(value: str) -> tuple[set[str], set[str]]:
        cookies = [parse_set_cookie(h) for h in write_chunked("c", value, POLICY, 60, present)]
        return {c.name for c in cookies if not c.expired}, {c.name for c in cookies if c.expired}

    assert rewrite("v" * (CHUNK_SIZE + 1)) == ({"c.0", "c.1"}, {"c", "c.2"})
    assert rewrite("short") == ({"c"}, {"c.0", "c.1", "c.2"})


async def test_every_cookie_is_httponly_lax_and_host_wide_without_secure_on_http(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    started, query = await site.start(browser)
    done = await browser.get("/auth/callback/github", params=query)
    csrf = await browser.get("/auth/csrf")
    out = await sign_out(browser)
    cookies = [*set_cookies(started), *set_cookies(done), *set_cookies(csrf), *set_cookies(out)]
    assert {c.name for c in cookies} == {FLOW, SESSION, CSRF}
    for cookie in cookies:
        assert {"httponly", "path", "samesite"} <= cookie.attrs.keys(), cookie.header
        assert cookie.attrs["path"] == "/" and cookie.attrs["samesite"] == "Lax"
        assert "secure" not in cookie.attrs and "domain" not in cookie.attrs
    assert set_cookies(started)[0].attrs["max-age"] == "900"  # the flow lasts 15 minutes
    assert written(done)[SESSION] and SESSION in expired(out)


async def test_https_gives_host_prefixed_cookies(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind)
    browser = await site.browser("https://127.0.0.1:8000")
    started, query = await site.start(browser)
    assert "redirect_uri=https%3A%2F%2F127.0.0.1%3A8000%2Fauth" in started.headers["location"]
    done = await browser.get("/auth/callback/github", params=query)
    assert done.status_code == 303
    answer = await browser.get("/auth/session")
    assert answer.json()["user"]["name"] == ADA["name"]
    csrf = await browser.get("/auth/csrf")
    out = await browser.post("/auth/signout", data={"csrfToken": csrf.json()["csrfToken"]})
    assert out.status_code == 303
    cookies = [c for r in (started, done, csrf, out) for c in set_cookies(r)]
    assert {c.name for c in cookies} == {HOST + FLOW, HOST + SESSION, HOST + CSRF}
    for cookie in cookies:  # what a browser requires of a __Host- cookie
        assert "secure" in cookie.attrs and "httponly" in cookie.attrs
        assert cookie.attrs["path"] == "/" and "domain" not in cookie.attrs
    assert (await browser.get("/auth/session")).json() is None


@pytest.mark.parametrize(
    ("settings", "base_url", "secure"),
    [
        ({}, BASE, False),
        ({"secure_cookies": True}, BASE, True),
        ({"url": PUBLIC}, BASE, True),  # behind a proxy that ends TLS
        ({"secure_cookies": False}, "https://127.0.0.1:8000", False),
    ],
)
async def test_secure_cookies_follow_the_app_url_unless_set(
    make_site: MakeSite, settings: dict[str, Any], base_url: str, secure: bool
) -> None:
    site = await make_site(**settings)
    browser = await site.browser(base_url)
    started = await browser.get("/auth/signin/github")
    [cookie] = set_cookies(started)
    assert cookie.name == (HOST if secure else "") + FLOW
    assert ("secure" in cookie.attrs) is secure
    redirect_uri = dict(parse_qsl(urlsplit(started.headers["location"]).query))["redirect_uri"]
    origin = settings.get("url", base_url)
    assert redirect_uri == f"{origin}/auth/callback/github"


async def test_a_large_session_is_chunked_and_read_back(make_site: MakeSite) -> None:
    claims = BigClaims("signIn")
    site = await make_site(plugins=[claims])
    browser = await site.browser()
    done = await site.sign_in(browser)
    chunks = written(done)
    assert sorted(chunks) == [f"{SESSION}.{i}" for i in range(len(chunks))] and len(chunks) >= 2
    assert all(len(header) < 4096 for header in done.headers.get_list("set-cookie"))
    answer = await browser.get("/auth/session")
    assert answer.json()["claims"] == {"blob": claims.blob}

    site.clock.advance(LIFETIME)  # the refresh writes a short session: one cookie
    answer = await browser.get("/auth/session")
    assert answer.json()["claims"] == {"small": True}
    assert list(written(answer)) == [SESSION]
    assert set(chunks) <= expired(answer)
    assert SESSION in jar(browser) and not set(chunks) & set(jar(browser))
    answer = await browser.get("/auth/session")
    assert answer.json()["claims"] == {"small": True} and not written(answer)


async def test_a_session_that_outgrows_one_cookie_expires_the_unsplit_one(
    make_site: MakeSite,
) -> None:
    claims = BigClaims("refresh")
    site = await make_site(plugins=[claims])
    browser = await site.browser()
    assert list(written(await site.sign_in(browser))) == [SESSION]
    site.clock.advance(LIFETIME)
    answer = await browser.get("/auth/session")
    assert answer.json()["claims"] == {"blob": claims.blob}
    assert len(written(answer)) >= 2 and SESSION in expired(answer)
    assert SESSION not in jar(browser)
    assert (await browser.get("/auth/session")).json()["claims"] == {"blob": claims.blob}


@pytest.mark.parametrize("planted", [SECURE + SESSION, SESSION])
async def test_on_https_a_session_under_another_name_is_not_read_but_cleared(
    make_site: MakeSite, kind: str, planted: str
) -> None:
    # A sibling subdomain can set a __Secure- cookie (or an unprefixed one) for the whole
    # domain; only the __Host- name is the app's own.
    site = await make_site(kind)
    browser = await site.browser("https://127.0.0.1:8000")
    await site.sign_in(browser)
    value = jar(browser)[HOST + SESSION]
    stranger = await site.browser("https://127.0.0.1:8000", cookies={planted: value})
    answer = await stranger.get("/auth/session")
    assert answer.status_code == 200 and answer.json() is None
    assert planted in expired(answer) and not written(answer)
    # Signing in next to such a cookie clears it too.
    stranger = await site.browser("https://127.0.0.1:8000", cookies={planted: value})
    done = await site.sign_in(stranger)
    assert planted in expired(done) and HOST + SESSION in written(done)
    assert (await stranger.get("/auth/session")).json()["user"]["name"] == ADA["name"]
