"""keyturn.web.strategies: where a session lives (sealed in the cookie, or in a token store
behind a session id) and how a due session is refreshed when it is read."""

from __future__ import annotations

import asyncio

import pytest

from keyturn.stores.memory import MemoryTokenStore
from keyturn.web import DEFAULT_SESSION_MAX_AGE
from keyturn.web.strategies import DatabaseStrategy

from ._site import (
    ADA,
    LIFETIME,
    SESSION,
    BigClaims,
    MakeSite,
    counters,
    expired,
    jar,
    set_cookies,
    userinfo_status,
    written,
)

# == where the session lives ==================================================================


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_database_session_keeps_large_claims_in_the_store(
    make_site: MakeSite, kind: str
) -> None:
    claims = BigClaims("signIn")
    site = await make_site(kind, plugins=[claims])
    browser = await site.browser()
    done = await site.sign_in(browser)
    assert list(written(done)) == [SESSION] and len(written(done)[SESSION]) == 43
    assert (await browser.get("/auth/session")).json()["claims"] == {"blob": claims.blob}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_signing_in_again_replaces_the_stored_session(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind)
    assert site.store is not None
    browser = await site.browser()
    await site.sign_in(browser)
    first = jar(browser)[SESSION]
    assert site.store.load(DatabaseStrategy.key_of(first)) is not None
    done = await site.sign_in(browser)
    second = jar(browser)[SESSION]
    assert second != first
    assert [c.value for c in set_cookies(done) if c.name == SESSION][-1] == second
    assert site.store.load(DatabaseStrategy.key_of(first)) is None
    assert site.store.load(DatabaseStrategy.key_of(second)) is not None
    assert (await browser.get("/auth/session")).json()["user"]["name"] == ADA["name"]


# == refresh ==================================================================================


async def test_a_due_session_is_refreshed_on_read(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    await site.sign_in(browser)
    before = (await browser.get("/auth/session")).json()
    old = site.tokens_of(browser)
    site.clock.advance(LIFETIME - 30)  # inside the client's 60 s leeway
    answer = await browser.get("/auth/session")
    assert counters(site)["refresh_token"] == 1
    body = answer.json()
    assert "error" not in body and body["user"] == before["user"]
    assert body["accessTokenExpires"] == int(site.clock()) + LIFETIME
    assert body["expires"] == before["expires"]  # a refresh does not extend the session
    if kind == "jwt":
        [cookie] = [c for c in set_cookies(answer) if c.name == SESSION]
        assert int(cookie.attrs["max-age"]) == DEFAULT_SESSION_MAX_AGE - (LIFETIME - 30)
    else:
        assert not written(answer)  # the store changed, not the cookie
    new = site.tokens_of(browser)  # jwt: from the cookie the answer set
    assert new.expires_at == body["accessTokenExpires"]
    assert new.access_token != old.access_token
    assert new.refresh_token != old.refresh_token  # GitHub rotates refresh tokens

    answer = await browser.get("/auth/session")
    assert answer.json()["accessTokenExpires"] == body["accessTokenExpires"]
    assert counters(site)["refresh_token"] == 1 and not written(answer)


async def test_concurrent_reads_of_an_expired_session_refresh_once(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind, expose_access_token=True)
    browser = await site.browser()
    await site.sign_in(browser)
    site.clock.advance(LIFETIME + 1)
    tabs = [await site.browser(cookies=jar(browser)) for _ in range(3)]
    answers = await asyncio.gather(*(tab.get("/auth/session") for tab in tabs))
    assert counters(site)["refresh_token"] == 1
    assert counters(site)["token_requests"] == 2  # the sign-in's exchange and one refresh
    bodies = [answer.json() for answer in answers]
    assert all("error" not in body for body in bodies)
    assert {body["accessTokenExpires"] for body in bodies} == {int(site.clock()) + LIFETIME}
    assert len({body["accessToken"] for body in bodies}) == 1

    # The rotated tokens work: at the provider, and for the next refresh.
    assert await userinfo_status(site, bodies[0]["accessToken"]) == 200
    site.clock.advance(LIFETIME + 1)
    answer = await tabs[0].get("/auth/session")
    assert "error" not in answer.json()
    assert counters(site)["refresh_token"] == 2
    assert await userinfo_status(site, answer.json()["accessToken"]) == 200


async def test_a_revoked_grant_ends_in_refresh_access_token_error(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    await site.sign_in(browser)
    stale = jar(browser)
    assert site.emu.revoke_grants("github") >= 1
    site.clock.advance(LIFETIME + 1)
    requests = counters(site)["token_requests"]
    answer = await browser.get("/auth/session")
    assert answer.status_code == 200
    body = answer.json()
    assert body["error"] == "RefreshAccessTokenError"
    assert body["user"]["name"] == ADA["name"]
    assert counters(site)["token_requests"] == requests + 1

    again = await browser.get("/auth/session")
    assert again.json()["error"] == "RefreshAccessTokenError"
    if kind == "jwt":
        # Another tab still holds the cookie from before the failure: within the client's
        # reuse window the provider's answer is reused, not asked for again.
        other = await site.browser(cookies=stale)
        assert (await other.get("/auth/session")).json()["error"] == "RefreshAccessTokenError"
    else:
        site.clock.advance(3 * LIFETIME)  # the row remembers the failure for good
        assert (await browser.get("/auth/session")).json()["error"] == "RefreshAccessTokenError"
    assert counters(site)["token_requests"] == requests + 1


class EndsDuringRefresh(MemoryTokenStore):
    """A store whose rows vanish as a refresh takes its lease: a sign-out in another tab."""

    def acquire(self, key: str, lease: float) -> str | None:
        self.delete(key)
        return super().acquire(key, lease)


async def test_a_session_ended_during_its_refresh_reads_as_signed_out(
    make_site: MakeSite,
) -> None:
    site = await make_site("memory", store=EndsDuringRefresh())
    browser = await site.browser()
    await site.sign_in(browser)
    site.clock.advance(LIFETIME + 1)
    answer = await browser.get("/auth/session")
    assert answer.status_code == 200 and answer.json() is None
    assert SESSION in expired(answer)
    assert counters(site)["refresh_token"] == 0


async def test_a_transient_failure_keeps_the_session_while_the_token_is_valid(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    await site.sign_in(browser)
    expires = (await browser.get("/auth/session")).json()["accessTokenExpires"]
    site.emu.configure(fault_rate=1.0)
    site.clock.advance(LIFETIME - 30)
    answer = await browser.get("/auth/session")
    body = answer.json()
    assert "error" not in body and body["user"]["name"] == ADA["name"]
    assert body["accessTokenExpires"] == expires
    assert counters(site)["fault_5xx"] >= 1 and counters(site)["refresh_token"] == 0

    site.emu.configure(fault_rate=0.0)  # the provider is back: the next read refreshes
    answer = await browser.get("/auth/session")
    assert answer.json()["accessTokenExpires"] == int(site.clock()) + LIFETIME
    assert counters(site)["refresh_token"] == 1
