"""The rows of ``database`` sessions end with their sessions.

A session lasts ``session_max_age`` seconds from sign-in. Its row holds the live refresh token,
so it must not outlive the session: it is deleted when it is read after the session ended,
it carries the session's end as the row's ``expires_at`` (so a sweep deletes it even when the
browser never comes back), and Redis drops it by itself at that moment.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from keyturn.stores.base import TokenStore
from keyturn.stores.memory import MemoryTokenStore
from keyturn.stores.sqlite import SQLiteTokenStore
from keyturn.web.strategies import DatabaseStrategy

from ._site import SESSION, MakeSite, expired, jar

pytest_plugins = ["tests.stores._redis_server"]

MAX_AGE = 7200


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path, world: Any) -> Iterator[TokenStore]:
    """Each store, on the clock the emulator and the app run on."""
    if request.param == "memory":
        yield MemoryTokenStore(clock=world.clock)
    elif request.param == "sqlite":
        with SQLiteTokenStore(tmp_path / "sessions.db", clock=world.clock) as db:
            yield db
    else:
        from keyturn.stores.redis import RedisTokenStore

        client: redis.Redis = request.getfixturevalue("redis_client")
        yield RedisTokenStore(client, clock=world.clock)


async def test_a_session_row_carries_the_sessions_end(make_site: MakeSite, store: Any) -> None:
    site = await make_site("database", store=store, session_max_age=MAX_AGE)
    browser = await site.browser()
    await site.sign_in(browser)
    row = store.load(DatabaseStrategy.key_of(jar(browser)[SESSION]))
    assert row is not None
    assert row.expires_at == row.data["expires"] == int(site.clock()) + MAX_AGE


async def test_a_row_read_after_its_session_ended_is_deleted(
    make_site: MakeSite, store: Any
) -> None:
    site = await make_site("database", store=store, session_max_age=MAX_AGE)
    browser = await site.browser()
    await site.sign_in(browser)
    key = DatabaseStrategy.key_of(jar(browser)[SESSION])
    site.clock.advance(MAX_AGE)
    # Still there (Redis counts its time to live on the real clock, not on the test's).
    assert store.load(key) is not None
    answer = await browser.get("/auth/session")
    assert answer.status_code == 200 and answer.json() is None
    assert SESSION in expired(answer)
    assert store.load(key) is None


async def test_a_sweep_deletes_abandoned_sessions(make_site: MakeSite, store: Any) -> None:
    site = await make_site("database", store=store, session_max_age=MAX_AGE)
    abandoned = [await site.browser() for _ in range(3)]
    for browser in abandoned:
        await site.sign_in(browser)
    site.clock.advance(MAX_AGE - 60)
    kept = await site.browser()
    await site.sign_in(kept)
    site.clock.advance(60)
    deleted = store.sweep()
    for browser in abandoned:
        assert store.load(DatabaseStrategy.key_of(jar(browser)[SESSION])) is None
    assert store.load(DatabaseStrategy.key_of(jar(kept)[SESSION])) is not None
    assert (await kept.get("/auth/session")).json()["user"] is not None
    assert deleted == 3


@pytest.mark.redis
async def test_redis_session_rows_live_as_long_as_their_session(
    make_site: MakeSite, redis_client: redis.Redis, world: Any
) -> None:
    from keyturn.stores.redis import RedisTokenStore

    store = RedisTokenStore(redis_client, clock=world.clock)
    site = await make_site("database", store=store, session_max_age=MAX_AGE)
    browser = await site.browser()
    await site.sign_in(browser)
    key = DatabaseStrategy.key_of(jar(browser)[SESSION])
    assert MAX_AGE * 1000 - 5_000 < redis_client.pttl(store.row_key(key)) <= MAX_AGE * 1000


class StoreBeforeRowEnds(MemoryTokenStore):
    """An app's own store written before rows could end: its save takes no ``expires_at``."""

    def save(  # type: ignore[override]
        self,
        key: str,
        tokens: Any,
        *,
        version: int | None = None,
        failure: Any = None,
        data: Any = None,
    ) -> Any:
        return super().save(key, tokens, version=version, failure=failure, data=data)


async def test_a_store_that_predates_row_ends_still_keeps_sessions(
    make_site: MakeSite, world: Any
) -> None:
    store = StoreBeforeRowEnds(clock=world.clock)
    site = await make_site("database", store=store, session_max_age=MAX_AGE)
    browser = await site.browser()
    await site.sign_in(browser)
    key = DatabaseStrategy.key_of(jar(browser)[SESSION])
    row = store.load(key)
    assert row is not None and row.expires_at is None
    assert (await browser.get("/auth/session")).json()["user"] is not None
    site.clock.advance(MAX_AGE)
    assert (await browser.get("/auth/session")).json() is None
    assert store.load(key) is None  # deleted when read, all the same
