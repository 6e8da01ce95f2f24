"""Rows that end: a row saved with ``expires_at`` may be dropped from then on.

A database web session is such a row (it ends ``session_max_age`` after sign-in). Every store
keeps the moment with the row and hands it back; a refresh keeps it; :meth:`sweep` deletes the
rows past it; Redis also drops them by itself (the key's time to live). A row without one is
kept until it is deleted, as before.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import keyturn
from keyturn.plugins import KeyturnPluginManager
from keyturn.stores import MemoryTokenStore, SQLiteTokenStore, TokenManager
from keyturn.stores.base import dump_tokens
from tests.conftest import CREDENTIALS, START, FakeClock, StrictFake, due_tokens

from .test_stores import KEY, fresh_tokens

pytest_plugins = ["tests.stores._redis_server"]

ENDS = START + 7200


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Any]:
    """Each store, empty, on the fake clock (what ``sweep`` compares with by default)."""
    if request.param == "memory":
        yield MemoryTokenStore(clock=clock)
    elif request.param == "sqlite":
        with SQLiteTokenStore(tmp_path / "tokens.db", clock=clock) as db:
            yield db
    else:
        from keyturn.stores.redis import RedisTokenStore

        yield RedisTokenStore(request.getfixturevalue("redis_client"), clock=clock)


def test_a_row_keeps_when_it_ends(store: Any) -> None:
    saved = store.save(KEY, fresh_tokens(), data={"user": "Ada"}, expires_at=ENDS)
    assert saved.expires_at == ENDS
    loaded = store.load(KEY)
    assert loaded is not None
    assert loaded.expires_at == ENDS
    assert loaded == saved
    plain = store.save("plain", fresh_tokens())
    assert plain.expires_at is None
    assert store.load("plain").expires_at is None
    # A later save without one makes the row last until deleted again.
    again = store.save(KEY, fresh_tokens("fake-at-2"), version=saved.version)
    assert again is not None and again.expires_at is None
    assert store.load(KEY).expires_at is None


def test_a_sweep_deletes_the_rows_that_ended_and_only_them(store: Any, clock: FakeClock) -> None:
    store.save("ended", fresh_tokens(), expires_at=START + 10)
    store.save("ends-now", fresh_tokens(), expires_at=START + 20)
    store.save("later", fresh_tokens(), expires_at=START + 3600)
    store.save("for-ever", fresh_tokens())
    assert store.sweep() == 0
    clock.advance(20)
    assert store.sweep() == 2
    assert store.load("ended") is None
    assert store.load("ends-now") is None
    assert store.load("later") is not None
    assert store.load("for-ever") is not None
    assert store.sweep() == 0
    assert store.sweep(now=START + 3600) == 1  # a moment of the caller's choosing
    assert store.load("later") is None
    assert store.load("for-ever") is not None


def test_a_refresh_keeps_the_rows_end(
    store: Any, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    with (
        httpx.Client(transport=provider.handler()) as http,
        keyturn.Keyturn(
            CREDENTIALS, http_client=http, clock=clock, plugin_manager=pm, environ={}
        ) as client,
    ):
        manager = TokenManager(client, store)
        signed_in = manager.save(KEY, due_tokens(), data={"user": "Ada"}, expires_at=ENDS)
        assert signed_in.expires_at == ENDS
        assert manager.get_access_token(KEY) == "fake-at-1"
        row = manager.load(KEY)
    assert row is not None
    assert row.version > signed_in.version
    assert row.expires_at == ENDS
    assert row.data == {"user": "Ada"}


def test_an_end_that_is_not_a_finite_number_is_refused(store: Any) -> None:
    for bad in (float("nan"), float("inf"), "soon", True):
        with pytest.raises((TypeError, ValueError), match="expires_at"):
            store.save(KEY, fresh_tokens(), expires_at=bad)
    assert store.load(KEY) is None


# The tables as keyturn created them before rows could end.
_SCHEMA_BEFORE_EXPIRY = (
    """CREATE TABLE keyturn_tokens (
        key TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        tokens TEXT NOT NULL,
        failure TEXT,
        updated_at REAL NOT NULL,
        data TEXT
    )""",
    """CREATE TABLE keyturn_versions (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last INTEGER NOT NULL
    )""",
    "INSERT INTO keyturn_versions (id, last) VALUES (1, 1)",
    """CREATE TABLE keyturn_leases (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
)


# -- SQLite --------------------------------------------------------------------------------------


def test_sqlite_sweeps_leases_left_by_dead_processes_too(tmp_path: Path, clock: FakeClock) -> None:
    with SQLiteTokenStore(tmp_path / "t.db", clock=clock) as db:
        assert db.acquire("left", 30) is not None  # never released
        assert db.acquire("held", 300) is not None
        clock.advance(60)
        db.sweep()
        with sqlite3.connect(tmp_path / "t.db") as raw:
            keys = [row[0] for row in raw.execute("SELECT key FROM keyturn_leases")]
        raw.close()
    assert keys == ["held"]


def test_a_sqlite_file_without_the_column_gets_it_and_its_sessions_their_end(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "before.db"
    session, bad = "keyturn-session:" + "ab" * 32, "keyturn-session:" + "cd" * 32
    keys = (session, "user-1", bad)
    raw = sqlite3.connect(path)
    with raw:
        for statement in _SCHEMA_BEFORE_EXPIRY:
            raw.execute(statement)
        for key, data in (
            (session, {"expires": START + 100, "user": None, "claims": {}}),
            ("user-1", {"expires": START + 100}),  # an app's own row: its data is its own
            (bad, {"expires": "not a time"}),
        ):
            raw.execute(
                "INSERT INTO keyturn_tokens (key, version, tokens, updated_at, data)"
                " VALUES (?, 1, ?, 0, ?)",
                (key, dump_tokens(fresh_tokens()), json.dumps(data)),
            )
    raw.close()
    with SQLiteTokenStore(path, clock=clock) as db:
        ends = {key: row.expires_at for key in keys if (row := db.load(key)) is not None}
        assert ends == {session: START + 100, "user-1": None, bad: None}
        clock.advance(100)
        assert db.sweep() == 1
        assert db.load(session) is None
    with SQLiteTokenStore(path) as db:  # opening it again changes nothing more
        assert db.load("user-1") is not None


# -- Redis ---------------------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_drops_a_row_when_it_ends(redis_client: redis.Redis, clock: FakeClock) -> None:
    from keyturn.stores.redis import RedisTokenStore

    store = RedisTokenStore(redis_client, clock=clock)
    store.save(KEY, fresh_tokens(), expires_at=START + 600)
    assert 590_000 < redis_client.pttl(store.row_key(KEY)) <= 600_000
    with_ttl = RedisTokenStore(redis_client, ttl=60, clock=clock)
    with_ttl.save(KEY, fresh_tokens(), expires_at=START + 600)
    assert 50_000 < redis_client.pttl(store.row_key(KEY)) <= 60_000  # the sooner of the two
    store.save("soon", fresh_tokens(), expires_at=START + 0.05)
    from ._redis_server import wait_until

    wait_until(lambda: store.load("soon") is None, "the row to end")
