"""Token stores and the token manager: rows, compare-and-set, leases, failures, processes.

The store tests and the manager tests run over every store: memory, SQLite and Redis (a real
redis-server, see :mod:`tests.stores._redis_server`; the Redis case carries the ``redis``
marker). What only one store does is tested here for SQLite and in ``test_redis_store.py`` for
Redis.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

import keyturn
from keyturn.plugins import KeyturnPluginManager
from keyturn.stores import (
    AsyncTokenManager,
    LockTimeoutError,
    MemoryTokenStore,
    SQLiteTokenStore,
    StoredTokens,
    TokenManager,
    TokenNotFoundError,
    TokenStore,
)
from keyturn.stores.base import dump_tokens
from tests.conftest import CREDENTIALS, START, FakeClock, StrictFake, due_tokens

pytest_plugins = ["tests.stores._redis_server"]

KEY = "user-42"
CRASHED = 17


def fresh_tokens(access: str = "fake-at-signin", refresh: str = "fake-rt-0") -> keyturn.TokenSet:
    return keyturn.TokenSet(
        provider="google",
        access_token=access,
        refresh_token=refresh,
        expires_at=START + 3600,
        id_token="fake-id-token",
        scope=("openid", "email"),
    )


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TokenStore]:
    """Each store in turn, empty: a new object, a new file, an emptied Redis database."""
    if request.param == "memory":
        yield MemoryTokenStore()
    elif request.param == "sqlite":
        with SQLiteTokenStore(tmp_path / "tokens.db") as db:
            yield db
    else:
        # Imported here: the child processes below import this module, and need no redis.
        from keyturn.stores.redis import RedisTokenStore

        # The server starts when the first test asks for it.
        yield RedisTokenStore(request.getfixturevalue("redis_client"))


# -- stores ----------------------------------------------------------------------------------


def test_stores_implement_the_protocol(store: TokenStore) -> None:
    assert isinstance(store, TokenStore)


def test_a_saved_row_loads_back_with_its_secrets(store: TokenStore) -> None:
    tokens = fresh_tokens()
    row = store.save(KEY, tokens)
    assert row is not None
    assert row.version == 1
    loaded = store.load(KEY)
    assert loaded is not None
    assert loaded.tokens == tokens
    assert loaded.tokens.refresh_token is not None
    assert loaded.tokens.refresh_token.get_secret_value() == "fake-rt-0"
    assert loaded.tokens.id_token is not None
    assert loaded.tokens.id_token.get_secret_value() == "fake-id-token"
    assert loaded.version == 1
    assert loaded.failure is None
    assert store.load("someone-else") is None


def test_sqlite_rows_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    with SQLiteTokenStore(path) as db:
        db.save(KEY, fresh_tokens())
    with SQLiteTokenStore(path) as db:
        row = db.load(KEY)
    assert row is not None
    assert row.tokens == fresh_tokens()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_save_is_compare_and_set(store: TokenStore) -> None:
    assert store.save(KEY, fresh_tokens("fake-at-1"), version=0) is not None
    assert store.save(KEY, fresh_tokens("fake-at-x"), version=0) is None  # a row exists
    second = store.save(KEY, fresh_tokens("fake-at-2"), version=1)
    assert second is not None
    assert second.version == 2
    # A writer that read version 1 is too late: the newer tokens stay.
    assert store.save(KEY, fresh_tokens("fake-at-stale"), version=1) is None
    row = store.load(KEY)
    assert row is not None
    assert row.version == 2
    assert row.tokens.access_token.get_secret_value() == "fake-at-2"
    # An unconditional save (a new sign-in) always writes.
    forced = store.save(KEY, fresh_tokens("fake-at-3"))
    assert forced is not None
    assert forced.version == 3


def test_a_version_is_never_given_twice_not_even_after_a_delete(store: TokenStore) -> None:
    # A refresh that read the row before a sign-out must not overwrite the row a new
    # sign-in wrote afterwards, though the key is the same.
    before_sign_out = store.save(KEY, fresh_tokens("fake-at-old"), version=0)
    assert before_sign_out is not None
    other = store.save("someone-else", fresh_tokens("fake-at-other"))
    assert other is not None
    assert store.delete(KEY)
    signed_in_again = store.save(KEY, fresh_tokens("fake-at-new"), version=0)
    assert signed_in_again is not None
    assert len({before_sign_out.version, other.version, signed_in_again.version}) == 3
    assert signed_in_again.version > before_sign_out.version
    late = store.save(KEY, fresh_tokens("fake-at-late-refresh"), version=before_sign_out.version)
    assert late is None
    row = store.load(KEY)
    assert row is not None
    assert row.tokens.access_token.get_secret_value() == "fake-at-new"


def test_a_sqlite_file_locked_too_long_is_a_lock_timeout(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with SQLiteTokenStore(db, timeout=0.05) as store:
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
            with pytest.raises(keyturn.LockTimeoutError, match="locked by another connection"):
                store.save(KEY, fresh_tokens())
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert store.save(KEY, fresh_tokens()) is not None  # and it works once released


def test_sqlite_versions_keep_growing_after_reopening(tmp_path: Path) -> None:
    with SQLiteTokenStore(tmp_path / "t.db") as first:
        old = first.save(KEY, fresh_tokens())
        assert old is not None
        first.delete(KEY)
    with SQLiteTokenStore(tmp_path / "t.db") as second:
        new = second.save(KEY, fresh_tokens())
    assert new is not None
    assert new.version > old.version


def test_writers_racing_on_one_version_leave_one_winner(store: TokenStore) -> None:
    store.save(KEY, fresh_tokens())
    barrier = threading.Barrier(16)

    def write(n: int) -> StoredTokens | None:
        barrier.wait()
        return store.save(KEY, fresh_tokens(f"fake-at-writer-{n}"), version=1)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(write, range(16)))
    winners = [row for row in results if row is not None]
    assert len(winners) == 1
    assert winners[0].version == 2
    row = store.load(KEY)
    assert row is not None
    assert row.version == 2
    assert row.tokens == winners[0].tokens


def test_a_failure_is_stored_next_to_the_tokens_until_the_next_save(store: TokenStore) -> None:
    failure = keyturn.RefreshFailure(error="invalid_grant", status=400, permanent=True, at=START)
    store.save(KEY, fresh_tokens(), failure=failure)
    row = store.load(KEY)
    assert row is not None
    assert row.failure == failure
    assert row.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
    assert row.tokens == fresh_tokens()
    store.save(KEY, fresh_tokens("fake-at-new"), version=row.version)
    cleared = store.load(KEY)
    assert cleared is not None
    assert cleared.failure is None
    assert cleared.error is None


def test_delete(store: TokenStore) -> None:
    store.save(KEY, fresh_tokens())
    assert store.delete(KEY) is True
    assert store.delete(KEY) is False
    assert store.load(KEY) is None


def test_no_secret_or_key_in_reprs(store: TokenStore) -> None:
    session_key = "session-fake-3c1e8a"
    row = store.save(session_key, fresh_tokens())
    shown = repr(row) + repr(store) + str(row)
    for secret in ("fake-at-signin", "fake-rt-0", "fake-id-token", session_key):
        assert secret not in shown
    assert "version=1" in shown


def test_a_lease_is_exclusive_until_released(store: TokenStore) -> None:
    owner = store.acquire(KEY, 60)
    assert owner is not None
    assert store.acquire(KEY, 60) is None
    assert store.acquire("another-key", 60) is not None  # per key
    store.release(KEY, "someone-else")
    assert store.acquire(KEY, 60) is None
    store.release(KEY, owner)
    assert store.acquire(KEY, 60) is not None


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_lease_expires(kind: str, tmp_path: Path) -> None:
    clock = FakeClock()
    store: TokenStore = (
        MemoryTokenStore(clock=clock)
        if kind == "memory"
        else SQLiteTokenStore(tmp_path / "t.db", clock=clock)
    )
    first = store.acquire(KEY, 30)
    assert first is not None
    clock.advance(29)
    assert store.acquire(KEY, 30) is None
    clock.advance(1)
    second = store.acquire(KEY, 30)
    assert second is not None
    store.release(KEY, first)  # the old holder's release does not free the new lease
    assert store.acquire(KEY, 30) is None
    if isinstance(store, SQLiteTokenStore):
        store.close()


# -- the app's data kept with a row ----------------------------------------------------------

PROFILE: dict[str, Any] = {
    "user": {"sub": "1234", "name": "Ada", "email": "ada@example.test", "verified": True},
    "claims": {"roles": ["admin", "dev"], "tenant": None, "level": 3, "ratio": 0.5},
    "signed_in_at": START,
}


def test_data_round_trips_with_the_row(store: TokenStore) -> None:
    data = json.loads(json.dumps(PROFILE))  # a copy of its own, changed below
    saved = store.save(KEY, fresh_tokens(), data=data)
    assert saved is not None
    assert saved.data == PROFILE
    data["user"]["name"] = "changed after the save"
    loaded = store.load(KEY)
    assert loaded is not None
    assert loaded.data == PROFILE
    assert loaded.tokens == fresh_tokens()
    # A caller changing what it loaded changes neither the store nor the next load.
    assert isinstance(loaded.data, dict)
    loaded.data["claims"]["roles"].append("intruder")
    again = store.load(KEY)
    assert again is not None
    assert again.data == PROFILE


def test_data_comes_back_as_json_gives_it(store: TokenStore) -> None:
    saved = store.save(KEY, fresh_tokens(), data={"pair": (1, "two"), "by_id": {7: "seven"}})
    loaded = store.load(KEY)
    assert saved is not None
    assert loaded is not None
    assert loaded.data == {"pair": [1, "two"], "by_id": {"7": "seven"}}
    assert saved.data == loaded.data  # the row save returns is the row load returns


def test_data_is_empty_unless_saved(store: TokenStore) -> None:
    saved = store.save(KEY, fresh_tokens())
    loaded = store.load(KEY)
    assert saved is not None
    assert loaded is not None
    assert saved.data == {}
    assert loaded.data == {}
    assert StoredTokens(KEY, fresh_tokens(), 1, None).data == {}  # positional rows still work


def test_every_save_replaces_the_data(store: TokenStore) -> None:
    store.save(KEY, fresh_tokens(), data={"user": {"name": "Ada"}, "theme": "dark"})
    row = store.save(KEY, fresh_tokens("fake-at-2"), version=1, data={"user": {"name": "Bob"}})
    assert row is not None
    loaded = store.load(KEY)
    assert loaded is not None
    assert loaded.data == {"user": {"name": "Bob"}}  # replaced whole, not merged
    # A save that loses the compare-and-set leaves the data alone.
    assert store.save(KEY, fresh_tokens("fake-at-stale"), version=1, data={"x": 1}) is None
    kept = store.load(KEY)
    assert kept is not None
    assert kept.data == {"user": {"name": "Bob"}}
    store.save(KEY, fresh_tokens("fake-at-3"), version=kept.version)  # no data: emptied
    emptied = store.load(KEY)
    assert emptied is not None
    assert emptied.data == {}
    store.save(KEY, fresh_tokens("fake-at-4"), data={"back": True})
    store.save(KEY, fresh_tokens("fake-at-5"), data={})  # an empty mapping empties it too
    assert (last := store.load(KEY)) is not None
    assert last.data == {}


@pytest.mark.parametrize(
    "bad",
    [
        {"when": object()},
        {"raw": b"bytes"},
        {"nested": {"ids": {1, 2}}},
        {"ratio": float("nan")},
        ["not", "a", "mapping"],
    ],
    ids=["object", "bytes", "set", "nan", "list"],
)
def test_data_that_is_not_json_is_refused_and_nothing_is_written(
    store: TokenStore, bad: Any
) -> None:
    first = store.save(KEY, fresh_tokens(), data={"user": "Ada"})
    assert first is not None
    with pytest.raises(TypeError, match="data must be"):
        store.save(KEY, fresh_tokens("fake-at-new"), data=bad)
    with pytest.raises(TypeError, match="data must be"):
        store.save("someone-else", fresh_tokens("fake-at-other"), version=0, data=bad)
    row = store.load(KEY)
    assert row is not None
    assert row.version == first.version
    assert row.tokens == fresh_tokens()
    assert row.data == {"user": "Ada"}
    assert store.load("someone-else") is None
    after = store.save(KEY, fresh_tokens("fake-at-next"))
    assert after is not None
    assert after.version == first.version + 1  # no version was spent on the refused saves


def test_a_circular_data_structure_is_refused(store: TokenStore) -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(TypeError, match="JSON-serialisable"):
        store.save(KEY, fresh_tokens(), data=loop)
    assert store.load(KEY) is None


def test_data_stays_out_of_reprs(store: TokenStore) -> None:
    row = store.save(KEY, fresh_tokens(), data=PROFILE)
    assert row is not None
    assert "ada@example.test" not in repr(row) + str(row) + repr(store)


def test_sqlite_keeps_data_as_compact_json_and_null_when_empty(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    with SQLiteTokenStore(path) as db:
        db.save(KEY, fresh_tokens(), data={"user": {"name": "Ada"}, "roles": ["a", "b"]})
        db.save("plain", fresh_tokens())
    with sqlite3.connect(path) as raw:
        stored = dict(raw.execute("SELECT key, data FROM keyturn_tokens").fetchall())
    raw.close()
    assert stored == {KEY: '{"user":{"name":"Ada"},"roles":["a","b"]}', "plain": None}


# The tables as keyturn created them before rows had data.
_OLD_SCHEMA = (
    """CREATE TABLE keyturn_tokens (
        key TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        tokens TEXT NOT NULL,
        failure TEXT,
        updated_at REAL NOT NULL
    )""",
    """CREATE TABLE keyturn_versions (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last INTEGER NOT NULL
    )""",
    """CREATE TABLE keyturn_leases (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
)


def test_a_sqlite_file_of_the_old_schema_gets_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    failure = keyturn.RefreshFailure(error="server_error", status=502, permanent=False, at=START)
    raw = sqlite3.connect(path)
    with raw:
        for statement in _OLD_SCHEMA:
            raw.execute(statement)
        raw.execute(
            "INSERT INTO keyturn_tokens (key, version, tokens, failure, updated_at)"
            " VALUES (?, 7, ?, ?, 0)",
            (KEY, dump_tokens(fresh_tokens()), failure.model_dump_json()),
        )
        raw.execute("INSERT INTO keyturn_versions (id, last) VALUES (1, 7)")
    raw.close()
    with SQLiteTokenStore(path) as db:
        old = db.load(KEY)
        saved = db.save("new-user", fresh_tokens("fake-at-new"), data={"user": "Bob"})
    with SQLiteTokenStore(path) as db:  # opening it again changes nothing more
        new = db.load("new-user")
        still_old = db.load(KEY)
    with sqlite3.connect(path) as raw:
        columns = [row[1] for row in raw.execute("PRAGMA table_info(keyturn_tokens)")]
    raw.close()
    assert columns == ["key", "version", "tokens", "failure", "updated_at", "data", "expires_at"]
    assert old is not None
    assert old.tokens == fresh_tokens()
    assert old.version == 7
    assert old.failure == failure
    assert old.data == {}
    assert still_old == old
    assert saved is not None
    assert saved.version == 8
    assert new is not None
    assert new.data == {"user": "Bob"}


def test_a_new_sqlite_file_has_the_same_columns_as_an_upgraded_one(tmp_path: Path) -> None:
    with SQLiteTokenStore(tmp_path / "new.db"):
        pass
    with sqlite3.connect(tmp_path / "new.db") as raw:
        columns = [row[1] for row in raw.execute("PRAGMA table_info(keyturn_tokens)")]
    raw.close()
    assert columns == ["key", "version", "tokens", "failure", "updated_at", "data", "expires_at"]


# -- the manager, in one process -------------------------------------------------------------


@pytest.fixture
def kt(
    provider: StrictFake, clock: FakeClock, pm: KeyturnPluginManager
) -> Iterator[keyturn.Keyturn]:
    http = httpx.Client(transport=provider.handler())
    with keyturn.Keyturn(
        CREDENTIALS, http_client=http, clock=clock, plugin_manager=pm, environ={}
    ) as client:
        yield client
    http.close()


def test_a_valid_token_is_returned_without_a_request(
    kt: keyturn.Keyturn, store: TokenStore, provider: StrictFake
) -> None:
    manager = TokenManager(kt, store)
    manager.save(KEY, fresh_tokens())
    assert manager.get_access_token(KEY) == "fake-at-signin"
    assert provider.refreshes == 0


def test_a_due_token_is_refreshed_and_saved_before_it_is_returned(
    kt: keyturn.Keyturn, store: TokenStore, provider: StrictFake, clock: FakeClock
) -> None:
    manager = TokenManager(kt, store)
    manager.save(KEY, fresh_tokens())
    clock.advance(3600 - 60)  # inside the 60 s leeway
    assert manager.get_access_token(KEY) == "fake-at-1"
    row = store.load(KEY)
    assert row is not None
    assert row.version == 2
    assert row.tokens.access_token.get_secret_value() == "fake-at-1"
    assert row.tokens.refresh_token is not None
    assert row.tokens.refresh_token.get_secret_value() == "fake-rt-1"
    assert row.tokens.id_token == fresh_tokens().id_token  # kept from before
    assert manager.get_access_token(KEY) == "fake-at-1"
    assert provider.refreshes == 1


def test_an_unknown_key_asks_for_a_sign_in(kt: keyturn.Keyturn, store: TokenStore) -> None:
    with pytest.raises(TokenNotFoundError):
        TokenManager(kt, store).get_access_token("nobody")


def test_a_permanent_failure_keeps_the_tokens_and_is_not_retried(
    kt: keyturn.Keyturn, store: TokenStore, provider: StrictFake, clock: FakeClock
) -> None:
    manager = TokenManager(kt, store)
    manager.save(KEY, due_tokens())
    provider.live.clear()  # revoked at the provider
    with pytest.raises(keyturn.OAuthError) as caught:
        manager.get_access_token(KEY)
    assert caught.value.permanent
    row = store.load(KEY)
    assert row is not None
    assert row.tokens == due_tokens()  # nothing lost
    assert row.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
    assert row.failure is not None
    assert row.failure.error == "invalid_grant"
    clock.advance(3600)  # past the client's reuse window: only the stored failure answers
    with pytest.raises(keyturn.ProviderError) as again:
        manager.get_access_token(KEY)
    assert again.value.error == "invalid_grant"
    assert again.value.permanent
    assert provider.refreshes == 1
    # A new sign-in clears it.
    manager.save(KEY, fresh_tokens(refresh="fake-rt-new").model_copy(update={"expires_at": None}))
    assert manager.get_access_token(KEY) == "fake-at-signin"


def test_a_transient_failure_keeps_the_tokens_and_the_next_call_retries(
    kt: keyturn.Keyturn, store: TokenStore, provider: StrictFake
) -> None:
    manager = TokenManager(kt, store)
    manager.save(KEY, due_tokens())  # already expired
    provider.failures.append((503, {"error": "temporarily_unavailable"}))
    with pytest.raises(keyturn.OAuthError) as caught:
        manager.get_access_token(KEY)
    assert not caught.value.permanent
    row = store.load(KEY)
    assert row is not None
    assert row.tokens == due_tokens()
    assert row.failure is not None
    assert row.failure.permanent is False
    assert row.error is None
    assert manager.get_access_token(KEY) == "fake-at-1"
    assert provider.refreshes == 2
    row = store.load(KEY)
    assert row is not None
    assert row.failure is None


def test_a_transient_failure_before_expiry_hands_out_the_current_token(
    kt: keyturn.Keyturn, store: TokenStore, provider: StrictFake, clock: FakeClock
) -> None:
    manager = TokenManager(kt, store)
    manager.save(KEY, fresh_tokens())
    clock.advance(3600 - 30)  # due (60 s leeway) but 30 s of life left
    provider.failures.append((502, {"error": "server_error"}))
    assert manager.get_access_token(KEY) == "fake-at-signin"
    assert provider.refreshes == 1
    row = store.load(KEY)
    assert row is not None
    assert row.failure is not None
    assert row.failure.error == "server_error"


def test_threads_of_one_manager_refresh_once(
    kt: keyturn.Keyturn, store: TokenStore, provider: StrictFake
) -> None:
    manager = TokenManager(kt, store)
    manager.save(KEY, due_tokens())
    with ThreadPoolExecutor(max_workers=16) as pool:
        tokens = list(pool.map(lambda _: manager.get_access_token(KEY), range(64)))
    assert set(tokens) == {"fake-at-1"}
    assert provider.refreshes == 1
    assert provider.reuse_detected == 0


async def test_tasks_of_one_async_manager_refresh_once(
    store: TokenStore, provider: StrictFake, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    async with (
        httpx.AsyncClient(transport=provider.async_handler()) as http,
        keyturn.AsyncKeyturn(
            CREDENTIALS, http_client=http, clock=clock, plugin_manager=pm, environ={}
        ) as akt,
    ):
        manager = AsyncTokenManager(akt, store)
        await manager.save(KEY, due_tokens())
        tokens = await asyncio.gather(*(manager.get_access_token(KEY) for _ in range(64)))
        row = await manager.load(KEY)
        await manager.save("other", due_tokens("fake-rt-revoked"))  # unknown to the provider
        with pytest.raises(keyturn.OAuthError):
            await manager.get_access_token("other")
        failed = await manager.load("other")
        assert await manager.delete("other") is True
    assert set(tokens) == {"fake-at-1"}
    assert provider.refreshes == 2
    assert row is not None
    assert row.version == 2
    assert failed is not None
    assert failed.tokens == due_tokens("fake-rt-revoked")
    assert failed.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR


def test_a_caller_waits_for_the_lease_and_uses_what_the_holder_saved(
    kt: keyturn.Keyturn, store: TokenStore, provider: StrictFake
) -> None:
    manager = TokenManager(kt, store, lock_timeout=10)
    first = manager.save(KEY, due_tokens())
    holder = store.acquire(KEY, 60)  # another process is refreshing
    assert holder is not None
    result: list[str] = []
    waiter = threading.Thread(target=lambda: result.append(manager.get_access_token(KEY)))
    waiter.start()
    assert store.save(KEY, fresh_tokens("fake-at-other"), version=first.version) is not None
    store.release(KEY, holder)
    waiter.join()
    assert result == ["fake-at-other"]
    assert provider.refreshes == 0


def test_a_lease_held_too_long_times_out_without_a_request(
    kt: keyturn.Keyturn, store: TokenStore, provider: StrictFake
) -> None:
    manager = TokenManager(kt, store, lock_timeout=0.05)
    manager.save(KEY, due_tokens())
    assert store.acquire(KEY, 60) is not None
    with pytest.raises(LockTimeoutError):
        manager.get_access_token(KEY)
    assert provider.refreshes == 0


def test_a_sign_in_during_a_refresh_is_not_overwritten(
    store: TokenStore, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    manager_box: list[TokenManager] = []

    def sign_in_meanwhile() -> None:  # runs while the refresh request is out
        manager_box[0].save(KEY, fresh_tokens("fake-at-newer-sign-in", "fake-rt-newer"))

    with (
        httpx.Client(transport=provider.handler(sign_in_meanwhile)) as http,
        keyturn.Keyturn(
            CREDENTIALS, http_client=http, clock=clock, plugin_manager=pm, environ={}
        ) as client,
    ):
        manager = TokenManager(client, store)
        manager_box.append(manager)
        manager.save(KEY, due_tokens())
        assert manager.get_access_token(KEY) == "fake-at-1"
    row = store.load(KEY)
    assert row is not None
    assert row.tokens.access_token.get_secret_value() == "fake-at-newer-sign-in"
    assert row.version == 2


def test_a_refresh_keeps_the_data(
    kt: keyturn.Keyturn, store: TokenStore, provider: StrictFake, clock: FakeClock
) -> None:
    manager = TokenManager(kt, store)
    signed_in = manager.save(KEY, fresh_tokens(), data=PROFILE)
    assert signed_in.data == PROFILE
    clock.advance(3600 - 60)
    assert manager.get_access_token(KEY) == "fake-at-1"
    row = manager.load(KEY)
    assert row is not None
    assert row.version == 2
    assert row.tokens.access_token.get_secret_value() == "fake-at-1"
    assert row.data == PROFILE
    assert provider.refreshes == 1


def test_refresh_failures_keep_the_data(
    kt: keyturn.Keyturn, store: TokenStore, provider: StrictFake
) -> None:
    manager = TokenManager(kt, store)
    manager.save(KEY, due_tokens(), data=PROFILE)
    provider.failures.append((503, {"error": "temporarily_unavailable"}))
    with pytest.raises(keyturn.OAuthError):
        manager.get_access_token(KEY)
    transient = store.load(KEY)
    assert transient is not None
    assert transient.failure is not None
    assert transient.version == 2
    assert transient.data == PROFILE
    provider.live.clear()  # then revoked at the provider
    with pytest.raises(keyturn.OAuthError):
        manager.get_access_token(KEY)
    permanent = store.load(KEY)
    assert permanent is not None
    assert permanent.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
    assert permanent.version == 3
    assert permanent.data == PROFILE
    assert provider.refreshes == 2


def test_the_manager_refuses_data_that_is_not_json(kt: keyturn.Keyturn, store: TokenStore) -> None:
    manager = TokenManager(kt, store)
    with pytest.raises(TypeError, match="JSON-serialisable"):
        manager.save(KEY, fresh_tokens(), data={"seen": {1, 2}})
    assert manager.load(KEY) is None


async def test_an_async_refresh_and_its_failures_keep_the_data(
    store: TokenStore, provider: StrictFake, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    async with (
        httpx.AsyncClient(transport=provider.async_handler()) as http,
        keyturn.AsyncKeyturn(
            CREDENTIALS, http_client=http, clock=clock, plugin_manager=pm, environ={}
        ) as akt,
    ):
        manager = AsyncTokenManager(akt, store)
        signed_in = await manager.save(KEY, due_tokens(), data=PROFILE)
        assert await manager.get_access_token(KEY) == "fake-at-1"
        refreshed = await manager.load(KEY)
        await manager.save("other", due_tokens("fake-rt-revoked"), data={"user": "Bob"})
        with pytest.raises(keyturn.OAuthError):
            await manager.get_access_token("other")
        failed = await manager.load("other")
        with pytest.raises(TypeError, match="JSON-serialisable"):
            await manager.save("third", due_tokens(), data={"raw": b"bytes"})
        refused = await manager.load("third")
    assert signed_in.data == PROFILE
    assert refreshed is not None
    assert refreshed.version > signed_in.version
    assert refreshed.tokens.access_token.get_secret_value() == "fake-at-1"
    assert refreshed.data == PROFILE
    assert failed is not None
    assert failed.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
    assert failed.data == {"user": "Bob"}
    assert refused is None


def test_a_sign_in_during_a_refresh_keeps_its_own_data(
    store: TokenStore, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    manager_box: list[TokenManager] = []

    def sign_in_meanwhile() -> None:  # runs while the refresh request is out
        manager_box[0].save(KEY, fresh_tokens("fake-at-newer"), data={"user": "newer"})

    with (
        httpx.Client(transport=provider.handler(sign_in_meanwhile)) as http,
        keyturn.Keyturn(
            CREDENTIALS, http_client=http, clock=clock, plugin_manager=pm, environ={}
        ) as client,
    ):
        manager = TokenManager(client, store)
        manager_box.append(manager)
        manager.save(KEY, due_tokens(), data={"user": "older"})
        assert manager.get_access_token(KEY) == "fake-at-1"
    row = store.load(KEY)
    assert row is not None
    assert row.tokens.access_token.get_secret_value() == "fake-at-newer"
    assert row.data == {"user": "newer"}


def test_the_manager_refuses_a_lease_of_zero(kt: keyturn.Keyturn) -> None:
    with pytest.raises(ValueError, match="lease"):
        TokenManager(kt, MemoryTokenStore(), lease=0)


# -- processes: a real HTTP provider on loopback and one SQLite file --------------------------


class LocalProvider:
    """:class:`StrictFake` behind a real HTTP server on 127.0.0.1 (port chosen by the OS)."""

    def __init__(self, fake: StrictFake, delay: float = 0.0) -> None:
        self.fake = fake
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                if delay:
                    time.sleep(delay)  # lets a second process arrive while this one waits
                status, body = outer.fake.answer(form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever)

    def __enter__(self) -> LocalProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def local_spec(url: str) -> keyturn.ProviderSpec:
    return keyturn.ProviderSpec(
        id="localfake",
        name="Local fake",
        authorization_endpoint=url + "/authorize",
        token_endpoint=url + "/token",
        rotates_refresh_tokens=True,
    )


def stored_due_tokens() -> keyturn.TokenSet:
    return keyturn.TokenSet(
        provider="localfake",
        access_token="fake-at-0",
        refresh_token="fake-rt-0",
        expires_at=1_000_000_000,  # long past on the real clock the processes use
    )


class CrashingStore(SQLiteTokenStore):
    """Ends the process (no cleanup, like SIGKILL) at one point of the refresh."""

    def __init__(self, path: str, crash: str | None) -> None:
        super().__init__(path)
        self.crash = crash

    def acquire(self, key: str, lease: float) -> str | None:
        owner = super().acquire(key, lease)
        if owner is not None and self.crash == "holding_the_lease":
            os._exit(CRASHED)
        return owner

    def save(self, key: str, tokens: keyturn.TokenSet, **kwargs: Any) -> StoredTokens | None:
        # Only a refresh saves in the child: by now the provider has answered.
        if self.crash == "answered_not_saved":
            os._exit(CRASHED)
        row = super().save(key, tokens, **kwargs)
        if self.crash == "saved":
            os._exit(CRASHED)
        return row


LOCAL_CREDENTIALS = ("fake-client-id", "fake-client-secret")


def refresh_and_report(
    store: TokenStore,
    spec: dict[str, Any],
    credentials: tuple[str, str],
    start: Any,
    results: Any,
    **manager_options: Any,
) -> None:
    """A child process's work over any store: one manager, one refresh of KEY.

    Waits for ``start`` (when given), then puts ``("ok", access token)`` or
    ``("error", exception class name)`` on ``results``.
    """
    provider = keyturn.ProviderSpec.model_validate(spec)
    with keyturn.Keyturn({provider.id: credentials}, providers=[provider], environ={}) as client:
        manager = TokenManager(client, store, lock_timeout=20, **manager_options)
        if start is not None:
            start.wait()
        try:
            results.put(("ok", manager.get_access_token(KEY)))
        except keyturn.KeyturnError as exc:
            results.put(("error", type(exc).__name__))


def expect_crash(process: Any, results: Any) -> None:
    """Wait for a child that is to end itself before reporting anything."""
    process.join()
    assert process.exitcode == CRASHED
    assert results.empty()
    results.close()


def child_main(
    db: str,
    spec: dict[str, Any],
    credentials: tuple[str, str],
    crash: str | None,
    start: Any,
    results: Any,
) -> None:
    """A separate process on the shared SQLite file, ending itself at ``crash``."""
    with CrashingStore(db, crash) as store:
        refresh_and_report(store, spec, credentials, start, results)


def spawn(
    db: Path,
    url: str,
    crash: str | None = None,
    start: Any = None,
    *,
    spec: keyturn.ProviderSpec | None = None,
    credentials: tuple[str, str] = LOCAL_CREDENTIALS,
) -> tuple[Any, Any]:
    context = multiprocessing.get_context("spawn")
    results = context.SimpleQueue()
    spec_data = (spec or local_spec(url)).model_dump(mode="json")
    process = context.Process(
        target=child_main, args=(str(db), spec_data, credentials, crash, start, results)
    )
    process.start()
    return process, results


def parent_manager(db: Path, url: str, stack: ExitStack) -> tuple[TokenManager, SQLiteTokenStore]:
    store = stack.enter_context(SQLiteTokenStore(db))
    client = stack.enter_context(
        keyturn.Keyturn(
            {"localfake": LOCAL_CREDENTIALS},
            providers=[local_spec(url)],
            environ={},
        )
    )
    return TokenManager(client, store, lock_timeout=2), store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "shared.db"
    with SQLiteTokenStore(path) as store:
        store.save(KEY, stored_due_tokens())
    return path


@pytest.mark.slow
def test_two_processes_sharing_one_file_refresh_once(db: Path) -> None:
    fake = StrictFake()
    with LocalProvider(fake, delay=0.3) as server:
        start = multiprocessing.get_context("spawn").Event()
        children = [spawn(db, server.url, start=start) for _ in range(2)]
        start.set()
        outcomes = [results.get() for _, results in children]
        for process, results in children:
            process.join()
            results.close()
    assert outcomes == [("ok", "fake-at-1"), ("ok", "fake-at-1")]
    assert fake.refreshes == 1
    assert fake.reuse_detected == 0
    with SQLiteTokenStore(db) as store:
        row = store.load(KEY)
    assert row is not None
    assert row.version == 2
    assert row.tokens.refresh_token is not None
    assert row.tokens.refresh_token.get_secret_value() == "fake-rt-1"


def crash_child(db: Path, url: str, crash: str) -> None:
    expect_crash(*spawn(db, url, crash))


@pytest.mark.slow
def test_killed_holding_the_lease_before_any_request(db: Path) -> None:
    fake = StrictFake()
    with LocalProvider(fake) as server, ExitStack() as stack:
        crash_child(db, server.url, "holding_the_lease")
        assert fake.refreshes == 0
        manager, store = parent_manager(db, server.url, stack)
        # The dead process's lease is taken over at once (2 s lock timeout, 60 s lease).
        assert manager.get_access_token(KEY) == "fake-at-1"
        row = store.load(KEY)
    assert fake.refreshes == 1
    assert row is not None
    assert row.version == 2


@pytest.mark.slow
def test_killed_after_the_save(db: Path) -> None:
    fake = StrictFake()
    with LocalProvider(fake) as server, ExitStack() as stack:
        crash_child(db, server.url, "saved")
        assert fake.refreshes == 1
        manager, store = parent_manager(db, server.url, stack)
        row = store.load(KEY)
        assert row is not None
        assert row.version == 2
        assert row.tokens.refresh_token is not None
        assert row.tokens.refresh_token.get_secret_value() == "fake-rt-1"
        # The next caller uses the saved tokens: no second request.
        assert manager.get_access_token(KEY) == "fake-at-1"
    assert fake.refreshes == 1


@pytest.mark.slow
def test_killed_after_the_answer_before_the_save_with_a_strict_provider(db: Path) -> None:
    fake = StrictFake()
    with LocalProvider(fake) as server, ExitStack() as stack:
        crash_child(db, server.url, "answered_not_saved")
        assert fake.refreshes == 1  # the provider rotated; the answer died with the child
        manager, store = parent_manager(db, server.url, stack)
        before = store.load(KEY)
        assert before is not None
        assert before.version == 1
        assert before.tokens == stored_due_tokens()
        with pytest.raises(keyturn.OAuthError) as caught:
            manager.get_access_token(KEY)
        assert caught.value.error == "invalid_grant"
        assert caught.value.permanent
        after = store.load(KEY)
        # Nothing else lost: the tokens are kept, the state says "sign in again", and later
        # calls do not hammer the provider.
        with pytest.raises(keyturn.ProviderError):
            manager.get_access_token(KEY)
    assert fake.refreshes == 2
    assert fake.reuse_detected == 1
    assert after is not None
    assert after.tokens == stored_due_tokens()
    assert after.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR


@pytest.mark.slow
def test_killed_after_the_answer_before_the_save_with_a_non_rotating_provider(db: Path) -> None:
    fake = StrictFake(rotate=False)
    with LocalProvider(fake) as server, ExitStack() as stack:
        crash_child(db, server.url, "answered_not_saved")
        manager, store = parent_manager(db, server.url, stack)
        assert manager.get_access_token(KEY) == "fake-at-2"
        row = store.load(KEY)
    assert fake.refreshes == 2
    assert row is not None
    assert row.failure is None
