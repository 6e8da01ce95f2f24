"""How big keyturn's cookies get: a ``jwt`` session keeps only what it needs and stays within
its budget, whatever the provider sends; a session that cannot fit ends cleanly (a clear page
at sign-in, signed out after a refresh), never with a 500; the flow cookie stays under the
4 KB a browser keeps, whatever the ``callbackUrl``.

Proxies in front of an app refuse a request whose ``Cookie`` header passes about 8 KB (nginx's
``large_client_header_buffers``, gunicorn's ``limit_request_field_size``), before keyturn
runs: sign-out included. The ID tokens with thousands of groups are made by the tests
(:class:`~tests.web._site.Groups`)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from keyturn.web import Keyring
from keyturn.web.cookies import SESSION_COOKIE_BUDGET
from keyturn.web.sealing import Sealer

from ._site import (
    ADA,
    CSRF,
    FLOW,
    LIFETIME,
    SECRET,
    SESSION,
    BigClaims,
    Groups,
    MakeSite,
    Site,
    blob,
    cookie_header_size,
    counters,
    csrf_token,
    expired,
    jar,
    message_of,
    sign_out,
    written,
)

#: What a proxy lets through in one ``Cookie`` header (gunicorn: 8190 bytes for the field).
PROXY_LIMIT = 8190
#: What a browser keeps of one cookie: name, value and attributes.
BROWSER_LIMIT = 4096


def session_size(cookies: dict[str, str]) -> int:
    """Bytes the session cookie (all its chunks) adds to the ``Cookie`` header."""
    family = {k: v for k, v in cookies.items() if k == SESSION or k.startswith(SESSION + ".")}
    return cookie_header_size(family)


def groups_plugin(site_or_world: Any, count: int, at: tuple[str, ...] = ("signIn",)) -> Groups:
    return Groups(count, site_or_world.emu.keys, at)


# == the session cookie keeps what the session needs ===========================================


@pytest.mark.parametrize("count", [400, 2000])
async def test_an_id_token_with_thousands_of_groups_signs_in_within_the_budget(
    make_site: MakeSite, world: Any, count: int
) -> None:
    plugin = groups_plugin(world, count)
    site = await make_site(plugins=[plugin])
    browser = await site.browser()
    done = await site.sign_in(browser, "google")
    assert plugin.grown == 1
    assert all(len(header) < BROWSER_LIMIT for header in done.headers.get_list("set-cookie"))
    await csrf_token(browser)  # every cookie keyturn sets while signed in
    assert session_size(jar(browser)) <= SESSION_COOKIE_BUDGET
    assert cookie_header_size(jar(browser)) < PROXY_LIMIT
    body = (await browser.get("/auth/session")).json()
    assert body["user"]["email"] == ADA["email"] and body["provider"] == "google"
    kept = site.jwt_of(jar(browser))
    assert kept.tokens.id_token is None and kept.tokens.extra == {}
    assert kept.user is not None and kept.user.raw == {}
    assert kept.tokens.refresh_token is not None
    # Every later request still works, sign-out included.
    site.clock.advance(LIFETIME)
    assert "error" not in (await browser.get("/auth/session")).json()
    assert session_size(jar(browser)) <= SESSION_COOKIE_BUDGET
    out = await sign_out(browser)
    assert out.status_code == 303 and counters(site)["revoke"] == 0  # google: not github
    assert (await browser.get("/auth/session")).json() is None


async def test_a_refresh_that_brings_a_bigger_id_token_keeps_the_session(
    make_site: MakeSite, world: Any
) -> None:
    plugin = groups_plugin(world, 2000, at=("refresh",))
    site = await make_site(plugins=[plugin])
    browser = await site.browser()
    await site.sign_in(browser, "google")
    site.clock.advance(LIFETIME)
    answer = await browser.get("/auth/session")
    assert plugin.grown == 1
    assert answer.status_code == 200 and "error" not in answer.json()
    assert answer.json()["accessTokenExpires"] == int(site.clock()) + LIFETIME
    assert session_size(jar(browser)) <= SESSION_COOKIE_BUDGET
    assert site.jwt_of(jar(browser)).tokens.id_token is None


async def test_a_refreshed_id_token_about_another_user_ends_a_session_that_dropped_its_own(
    make_site: MakeSite, world: Any
) -> None:
    """The cookie leaves the ID token out, yet keeps whom it named (OIDC Core 12.2)."""
    plugin = Groups(1, world.emu.keys, at=("refresh",), claims={"sub": "someone-else"})
    site = await make_site(plugins=[plugin])
    browser = await site.browser()
    await site.sign_in(browser, "google")
    kept = site.jwt_of(jar(browser))
    assert kept.tokens.id_token is None
    assert kept.tokens.id_token_identity is not None
    assert kept.user is not None and kept.tokens.id_token_identity.sub == kept.user.id
    site.clock.advance(LIFETIME)
    answer = (await browser.get("/auth/session")).json()
    assert plugin.grown == 1
    assert answer["error"] == "RefreshAccessTokenError"
    failure = site.jwt_of(jar(browser)).refresh_failure
    assert failure is not None and failure.error == "id_token_mismatch"


async def test_the_app_can_ask_the_cookie_to_keep_more(
    make_site: MakeSite, world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    keeps = ("id_token", "raw_profile", "token_extra")
    site = await make_site(session_cookie_keeps=keeps, plugins=[groups_plugin(world, 5)])
    browser = await site.browser()
    only_id_token = await make_site(session_cookie_keeps=["id_token"])
    with caplog.at_level(logging.WARNING, logger="keyturn.web"):
        await site.sign_in(browser, "github")
        kept = site.jwt_of(jar(browser))
        assert kept.tokens.id_token is None and kept.user is not None and kept.user.raw
        # GitHub sends no ID token: nothing asked for is left out, nothing to warn about.
        await only_id_token.sign_in(await only_id_token.browser(), "github")
        await site.sign_in(browser, "google")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    kept = site.jwt_of(jar(browser))
    assert kept.tokens.id_token is not None
    assert kept.user is not None and len(kept.user.raw["groups"]) == 5
    assert session_size(jar(browser)) <= SESSION_COOKIE_BUDGET


async def test_what_the_app_asked_to_keep_is_left_out_when_it_does_not_fit(
    make_site: MakeSite, world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    keeps = ("id_token", "raw_profile")
    site = await make_site(session_cookie_keeps=keeps, plugins=[groups_plugin(world, 2000)])
    browser = await site.browser()
    with caplog.at_level(logging.WARNING, logger="keyturn.web"):
        await site.sign_in(browser, "google")
    kept = site.jwt_of(jar(browser))
    assert kept.tokens.id_token is None and kept.user is not None and kept.user.raw == {}
    assert session_size(jar(browser)) <= SESSION_COOKIE_BUDGET
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "id_token" in warning and "raw_profile" in warning and "database" in warning
    assert (await browser.get("/auth/session")).json()["user"]["email"] == ADA["email"]


def test_an_unknown_part_to_keep_is_a_configuration_error(world: Any) -> None:
    from keyturn import ConfigurationError
    from keyturn.web import WebAuth

    from ._site import make_client

    keeps: Any = ["id_token", "tokens"]
    with (
        make_client(world, blocking=True) as client,
        pytest.raises(ConfigurationError, match="session_cookie_keeps"),
    ):
        WebAuth(client, secret=SECRET, session_cookie_keeps=keeps)


# == a session that cannot fit =================================================================


async def test_a_session_that_cannot_fit_ends_the_sign_in_with_a_clear_page(
    make_site: MakeSite, caplog: pytest.LogCaptureFixture
) -> None:
    site = await make_site(plugins=[BigClaims("signIn", size=20_000)])
    browser = await site.browser()
    _, query = await site.start(browser)
    with caplog.at_level(logging.ERROR, logger="keyturn.web"):
        answer = await browser.get("/auth/callback/github", params=query)
    assert answer.status_code == 507
    assert answer.headers["content-type"].startswith("text/html")
    message = message_of(answer)
    assert "too large" in message and "github" in message
    assert not written(answer) and FLOW in expired(answer)
    assert SESSION not in jar(browser) and FLOW not in jar(browser)
    [error] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "strategy='database'" in error and str(SESSION_COOKIE_BUDGET) in error
    assert counters(site)["revoke"] == 1  # the grant no session holds is given back
    # Nothing afterwards fails: the visitor is signed out and can try again.
    assert (await browser.get("/auth/session")).json() is None
    assert (await sign_out(browser)).status_code == 303


async def test_a_sign_in_that_cannot_fit_still_ends_the_session_the_browser_had(
    make_site: MakeSite,
) -> None:
    site = await make_site(plugins=[BigClaims("signIn", size=20_000)])
    browser = await site.browser()
    other = await make_site()
    other_browser = await other.browser()
    await other.sign_in(other_browser)
    browser.cookies.set(SESSION, jar(other_browser)[SESSION], domain="127.0.0.1")
    assert (await browser.get("/auth/session")).json()["user"]["name"] == ADA["name"]
    _, query = await site.start(browser)
    answer = await browser.get("/auth/callback/github", params=query)
    assert answer.status_code == 507 and SESSION in expired(answer)
    assert (await browser.get("/auth/session")).json() is None


async def test_a_refresh_that_cannot_fit_ends_the_session_cleanly(
    make_site: MakeSite, caplog: pytest.LogCaptureFixture
) -> None:
    site = await make_site(plugins=[BigClaims("refresh", size=20_000)])
    browser = await site.browser()
    await site.sign_in(browser)
    assert (await browser.get("/auth/session")).json()["claims"] == {"small": True}
    site.clock.advance(LIFETIME)
    with caplog.at_level(logging.ERROR, logger="keyturn.web"):
        answer = await browser.get("/auth/session")
    assert answer.status_code == 200 and answer.json() is None
    assert SESSION in expired(answer) and not written(answer)
    [error] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "strategy='database'" in error
    assert (await browser.get("/auth/session")).json() is None
    assert (await sign_out(browser)).status_code == 303


# == sign-out clears every chunk ===============================================================


def oversized_session(site: Site, chunks: int) -> dict[str, str]:
    """The cookies of a session as big as keyturn once wrote them: ``chunks`` of 3900."""
    sealer = Sealer(Keyring(SECRET), SESSION, site.clock)
    tokens = {"provider": "github", "access_token": "gho_fake", "refresh_token": "ghr_fake"}
    claims = {"blob": blob(int(3900 * (chunks - 0.5) * 3 / 4) - 250)}
    value = sealer.seal({"jwt": {"tokens": tokens, "claims": claims}}, 3600)
    parts = [value[i : i + 3900] for i in range(0, len(value), 3900)]
    assert len(parts) == chunks
    return {f"{SESSION}.{i}": part for i, part in enumerate(parts)}


async def test_sign_out_clears_every_chunk_of_a_session_however_written(
    make_site: MakeSite,
) -> None:
    site = await make_site()
    cookies = oversized_session(site, 5)
    browser = await site.browser(cookies=cookies)
    assert (await browser.get("/auth/session")).json()["claims"]["blob"]
    cookies.pop(f"{SESSION}.3")  # a gap: what follows it is still ours to clear
    browser = await site.browser(cookies=cookies)
    await csrf_token(browser)
    out = await sign_out(browser)
    assert out.status_code == 303
    assert set(cookies) <= expired(out)
    assert not any(name.startswith(SESSION) for name in jar(browser))
    assert CSRF in jar(browser)
