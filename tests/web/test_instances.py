"""Several instances of one app (as worker processes or hosts run it) at one expired session.

Each instance here has a client of its own, so nothing is shared in memory: no single-flight,
no reuse window. With the ``database`` strategy the instances share only the token store (two
SQLite connections on one file; two Redis clients on one server), and the store's lease and
compare-and-set make one refresh for all of them. With the ``jwt`` strategy the instances share
nothing at all, and what docs/web.md says happens is what happens: each refreshes, and with a
rotating provider all but one are refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from keyturn.stores.base import TokenStore
from keyturn.stores.redis import RedisTokenStore
from keyturn.stores.sqlite import SQLiteTokenStore

from ._site import LIFETIME, MakeSite, counters, jar

pytest_plugins = ["tests.stores._redis_server"]

INSTANCES = 3
TABS_EACH = 4


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], TokenStore]]:
    """Makes a store per instance, all on the same database."""
    opened: list[SQLiteTokenStore | RedisTokenStore] = []

    # On the test's clock: session rows end (and Redis drops them) on that clock.
    clock = request.getfixturevalue("world").clock

    def make() -> TokenStore:
        store: SQLiteTokenStore | RedisTokenStore
        if request.param == "sqlite":
            store = SQLiteTokenStore(tmp_path / "sessions.db", clock=clock)
        else:
            store = RedisTokenStore(request.getfixturevalue("redis_url"), clock=clock)
        opened.append(store)
        return store

    if request.param == "redis":
        request.getfixturevalue("redis_client")  # an emptied database
    yield make
    for store in opened:
        store.close()


async def test_database_sessions_refresh_once_across_instances(
    make_site: MakeSite, new_store: Callable[[], TokenStore]
) -> None:
    apps = [await make_site("database", store=new_store()) for _ in range(INSTANCES)]
    browser = await apps[0].browser()
    await apps[0].sign_in(browser)
    cookies = jar(browser)
    apps[0].clock.advance(LIFETIME + 1)

    tabs = [await app.browser(cookies=cookies) for app in apps for _ in range(TABS_EACH)]
    answers = await asyncio.gather(*(tab.get("/auth/session") for tab in tabs))

    bodies = [answer.json() for answer in answers]
    seen = counters(apps[0])
    assert seen["token_requests"] == 2  # the sign-in's exchange and one refresh, for 12 tabs
    assert seen["refresh_token"] == 1 and seen["errors"] == 0
    assert all(body["user"]["name"] == "Ada Example" and "error" not in body for body in bodies)
    assert {body["accessTokenExpires"] for body in bodies} == {int(apps[0].clock()) + LIFETIME}

    # Signing out on one instance ends the session on all of them.
    token = (await tabs[-1].get("/auth/csrf")).json()["csrfToken"]
    out = await tabs[-1].post("/auth/signout", json={"csrfToken": token})
    assert out.status_code == 200
    for tab in (tabs[0], tabs[TABS_EACH]):
        assert (await tab.get("/auth/session")).json() is None


async def test_jwt_sessions_refresh_once_per_instance(make_site: MakeSite) -> None:
    # The limit docs/web.md states: nothing spans instances in the jwt strategy.
    apps = [await make_site("jwt") for _ in range(2)]
    browser = await apps[0].browser()
    await apps[0].sign_in(browser)
    cookies = jar(browser)
    apps[0].clock.advance(LIFETIME + 1)

    tabs = [await app.browser(cookies=cookies) for app in apps for _ in range(TABS_EACH)]
    answers = await asyncio.gather(*(tab.get("/auth/session") for tab in tabs))

    bodies = [answer.json() for answer in answers]
    seen = counters(apps[0])
    assert seen["token_requests"] == 3  # the sign-in's exchange, then one refresh per instance
    assert seen["refresh_token"] == 1  # GitHub's profile took the first...
    assert seen["bad_refresh_token"] == 1  # ...and refused the spent token in the second
    errors = [body.get("error") for body in bodies]
    assert errors.count("RefreshAccessTokenError") == TABS_EACH  # the instance that lost
    assert errors.count(None) == TABS_EACH
