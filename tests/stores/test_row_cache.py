"""The token manager's row cache: what it skips equals what parsing gives, and it never lags.

A manager reads the row on every call but parses and validates its tokens only when the row
changed (:mod:`keyturn.stores.cache`). These tests prove that what comes out of the cache is
what a fresh, validated read gives (equality, dumps, repr, fields set), that a row written or
deleted by another manager, store object or process is seen by the very next read, that a
reused version with other contents is not mistaken for the cached row, and that the cache
stays within its bound. They run on the stores that hand out a row's text (SQLite and a real
redis-server, the latter with the ``redis`` marker); the memory store and stores of an app's
own are read with their ``load``, which is tested too.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import keyturn
from keyturn.models import REVEAL, RefreshFailure
from keyturn.plugins import KeyturnPluginManager
from keyturn.stores import (
    AsyncTokenManager,
    MemoryTokenStore,
    SQLiteTokenStore,
    StoredTokens,
    TokenManager,
    TokenNotFoundError,
    TokenStore,
)
from keyturn.stores import cache as cache_module
from keyturn.stores.base import dump_tokens, load_tokens
from keyturn.stores.cache import DEFAULT_CACHE_SIZE, RowCache, reads_text
from tests.conftest import CREDENTIALS, START, FakeClock, StrictFake, due_tokens

from .test_stores import KEY

pytest_plugins = ["tests.stores._redis_server"]

ROOT = Path(__file__).resolve().parents[2]


def rich_tokens(access: str = "fake-at-cache") -> keyturn.TokenSet:
    """Tokens with every field set, ``extra`` included, so that every field is compared."""
    return keyturn.TokenSet(
        provider="google",
        access_token=access,
        token_type="Bearer",
        expires_at=START + 3600,
        refresh_token="fake-rt-cache",
        refresh_token_expires_at=START + 86_400,
        scope=("openid", "email", "profile"),
        id_token="fake-id-token-cache",
        extra={"nested": {"list": [1, 2.5, None, True], "text": "é"}, "n": 3},
    )


def sparse_tokens() -> keyturn.TokenSet:
    """Tokens with only the required fields set: the dump then leaves the others at default."""
    return keyturn.TokenSet(provider="google", access_token="fake-at-sparse")


class Stores:
    """Opens store objects on one backing file or server: as separate processes would."""

    def __init__(self, kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.kind = kind
        self.request = request
        self.path = tmp_path / "tokens.db"
        self.opened: list[Any] = []

    def open(self) -> TokenStore:
        """A new store object (its own connection) on the shared file or server."""
        if self.kind == "sqlite":
            db = SQLiteTokenStore(self.path)
            self.opened.append(db)
            return db
        from keyturn.stores.redis import RedisTokenStore

        url: str = self.request.getfixturevalue("redis_url")
        redis_store = RedisTokenStore.from_url(url)
        self.opened.append(redis_store)
        return redis_store

    def close(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """SQLite and Redis in turn, empty."""
    if request.param == "redis":
        request.getfixturevalue("redis_client")  # empties the database
    opener = Stores(request.param, request, tmp_path)
    yield opener
    opener.close()


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


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the token texts the cache parses: one item per parse."""
    seen: list[str] = []
    real = load_tokens  # what cache.py imported

    def counting(text: str) -> keyturn.TokenSet:
        seen.append("parsed")
        return real(text)

    monkeypatch.setattr(cache_module, "load_tokens", counting)
    return seen


def assert_same_model(cached: Any, fresh: Any) -> None:
    """Everything a caller can observe of a model is the same."""
    assert cached == fresh
    assert cached.model_dump(context=REVEAL) == fresh.model_dump(context=REVEAL)
    assert cached.model_dump(mode="json", context=REVEAL) == fresh.model_dump(
        mode="json", context=REVEAL
    )
    assert cached.model_dump_json(context=REVEAL) == fresh.model_dump_json(context=REVEAL)
    assert cached.model_dump() == fresh.model_dump()
    assert repr(cached) == repr(fresh)
    assert str(cached) == str(fresh)
    assert cached.model_fields_set == fresh.model_fields_set
    assert type(cached) is type(fresh)


def fresh_row(store: TokenStore, key: str = KEY) -> StoredTokens:
    """The row as the store's own ``load`` parses and validates it, every time."""
    row = store.load(key)
    assert row is not None
    return row


# -- what the cache hands out equals what parsing gives ---------------------------------------


@pytest.mark.parametrize("make", [rich_tokens, sparse_tokens, due_tokens])
def test_a_cached_read_equals_a_fresh_validated_read(
    stores: Stores,
    kt: keyturn.Keyturn,
    parses: list[str],
    make: Callable[[], keyturn.TokenSet],
) -> None:
    store = stores.open()
    manager = TokenManager(kt, store)
    manager.save(KEY, make())
    first = manager.cache.tokens(KEY)
    assert first is not None
    assert parses == ["parsed"]
    second = manager.cache.tokens(KEY)
    assert second is not None
    assert parses == ["parsed"]  # not parsed again: the shortcut ran
    assert second[0] is first[0]
    fresh = fresh_row(stores.open())
    assert_same_model(second[0], fresh.tokens)
    assert second[1] is None and fresh.failure is None
    # And the parse the cache did is the store's own parse of the same text.
    assert_same_model(second[0], load_tokens(dump_tokens(make())))


def test_get_tokens_and_get_access_token_hand_out_the_cached_tokens(
    stores: Stores, kt: keyturn.Keyturn, parses: list[str], provider: StrictFake
) -> None:
    store = stores.open()
    manager = TokenManager(kt, store)
    manager.save(KEY, rich_tokens())
    tokens = [manager.get_tokens(KEY) for _ in range(5)]
    assert all(t is tokens[0] for t in tokens)
    assert [manager.get_access_token(KEY) for _ in range(3)] == ["fake-at-cache"] * 3
    assert parses == ["parsed"]
    assert_same_model(tokens[0], fresh_row(store).tokens)
    assert provider.refreshes == 0


def test_a_cached_row_equals_the_stores_own_load_failure_and_data_included(
    stores: Stores, kt: keyturn.Keyturn, parses: list[str]
) -> None:
    store = stores.open()
    manager = TokenManager(kt, store)
    failure = RefreshFailure(
        error="server_error",
        status=503,
        description="down",
        details={"a": "1"},
        permanent=False,
        at=START,
    )
    data = {"user": {"name": "Ada", "tags": ["x"]}, "expires": START + 60}
    saved = store.save(KEY, rich_tokens(), failure=failure, data=data)
    assert saved is not None
    rows = [manager.load(KEY) for _ in range(3)]
    assert parses == ["parsed"]
    fresh = fresh_row(stores.open())
    for row in rows:
        assert row == fresh
        assert row is not None
        assert repr(row) == repr(fresh)
        assert_same_model(row.tokens, fresh.tokens)
        assert row.failure is not None and fresh.failure is not None
        assert_same_model(row.failure, fresh.failure)
        assert row.data == data
    assert rows[0] is not None and rows[1] is not None
    assert rows[0].tokens is rows[1].tokens  # from the cache
    # data is parsed on every read: each caller's mapping is its own.
    rows[0].data["user"]["name"] = "changed"
    again = manager.load(KEY)
    assert again is not None
    assert again.data == data


async def test_the_async_manager_reads_through_the_cache_too(
    stores: Stores, provider: StrictFake, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    store = stores.open()
    async with (
        httpx.AsyncClient(transport=provider.async_handler()) as http,
        keyturn.AsyncKeyturn(
            CREDENTIALS, http_client=http, clock=clock, plugin_manager=pm, environ={}
        ) as akt,
    ):
        manager = AsyncTokenManager(akt, store)
        await manager.save(KEY, rich_tokens())
        first = await manager.get_tokens(KEY)
        second = await manager.get_tokens(KEY)
        assert second is first
        assert_same_model(second, fresh_row(store).tokens)
        other = stores.open()
        other.save(KEY, rich_tokens("fake-at-elsewhere"))
        assert await manager.get_access_token(KEY) == "fake-at-elsewhere"
        assert other.delete(KEY)
        with pytest.raises(TokenNotFoundError):
            await manager.get_access_token(KEY)
        assert len(manager.cache) == 0


# -- a changed row is seen at once ------------------------------------------------------------


def test_a_row_saved_by_another_manager_is_seen_by_the_next_read(
    stores: Stores, kt: keyturn.Keyturn, parses: list[str]
) -> None:
    mine = TokenManager(kt, stores.open())
    theirs = TokenManager(kt, stores.open())
    mine.save(KEY, rich_tokens("fake-at-1"))
    assert mine.get_access_token(KEY) == "fake-at-1"
    assert mine.get_access_token(KEY) == "fake-at-1"
    theirs.save(KEY, rich_tokens("fake-at-2"))
    assert mine.get_access_token(KEY) == "fake-at-2"
    assert_same_model(mine.get_tokens(KEY), fresh_row(stores.open()).tokens)
    # Saved again with the very same tokens: a new version, so parsed again.
    before = mine.get_tokens(KEY)
    theirs.save(KEY, rich_tokens("fake-at-2"))
    after = mine.get_tokens(KEY)
    assert after == before
    assert after is not before
    assert len(parses) == 3  # mine's first read, then one after each save by the other


def test_a_failure_recorded_by_another_manager_is_seen_by_the_next_read(
    stores: Stores, kt: keyturn.Keyturn
) -> None:
    mine = TokenManager(kt, stores.open())
    other = stores.open()
    mine.save(KEY, rich_tokens())
    assert mine.get_access_token(KEY) == "fake-at-cache"
    row = fresh_row(other)
    failure = RefreshFailure(error="invalid_grant", permanent=True, at=START)
    assert other.save(KEY, row.tokens, version=row.version, failure=failure) is not None
    with pytest.raises(keyturn.ProviderError) as raised:
        mine.get_access_token(KEY)
    assert raised.value.error == "invalid_grant"
    loaded = mine.load(KEY)
    assert loaded is not None
    assert loaded.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR


def test_a_row_saved_by_another_process_is_seen_by_the_next_read(
    tmp_path: Path, kt: keyturn.Keyturn
) -> None:
    path = tmp_path / "tokens.db"
    with SQLiteTokenStore(path) as store:
        manager = TokenManager(kt, store)
        manager.save(KEY, rich_tokens("fake-at-parent"))
        assert manager.get_access_token(KEY) == "fake-at-parent"
        child = (
            "import sys, keyturn\n"
            "from keyturn.stores import SQLiteTokenStore\n"
            "with SQLiteTokenStore(sys.argv[1]) as db:\n"
            "    db.save(sys.argv[2], keyturn.TokenSet(provider='google',"
            " access_token='fake-at-child', expires_at=4_000_000_000))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", child, str(path), KEY],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert manager.get_access_token(KEY) == "fake-at-child"
        assert_same_model(manager.get_tokens(KEY), fresh_row(store).tokens)


def test_a_reused_version_with_other_tokens_is_not_taken_for_the_cached_row(
    tmp_path: Path, kt: keyturn.Keyturn
) -> None:
    # What restoring an older copy of the file (or flushing a Redis database) can do: the
    # same version number, other contents. The text is compared as well as the version.
    with SQLiteTokenStore(tmp_path / "tokens.db") as store:
        manager = TokenManager(kt, store)
        row = manager.save(KEY, rich_tokens("fake-at-before"))
        assert manager.get_access_token(KEY) == "fake-at-before"
        with sqlite3.connect(tmp_path / "tokens.db") as raw:
            raw.execute(
                "UPDATE keyturn_tokens SET tokens = ? WHERE key = ? AND version = ?",
                (dump_tokens(rich_tokens("fake-at-restored")), KEY, row.version),
            )
        raw.close()
        assert fresh_row(store).version == row.version
        assert manager.get_access_token(KEY) == "fake-at-restored"
        assert_same_model(manager.get_tokens(KEY), fresh_row(store).tokens)


@pytest.mark.redis
def test_a_flushed_redis_database_reusing_versions_is_not_mistaken_for_the_cached_row(
    redis_url: str, redis_client: Any, kt: keyturn.Keyturn
) -> None:
    from keyturn.stores.redis import RedisTokenStore

    with RedisTokenStore.from_url(redis_url) as store:
        manager = TokenManager(kt, store)
        before = manager.save(KEY, rich_tokens("fake-at-before"))
        assert manager.get_access_token(KEY) == "fake-at-before"
        redis_client.flushdb()  # the version counter starts again
        after = store.save(KEY, rich_tokens("fake-at-after"))
        assert after is not None
        assert after.version == before.version
        assert manager.get_access_token(KEY) == "fake-at-after"


# -- deleting --------------------------------------------------------------------------------


def test_a_delete_by_another_manager_is_seen_and_drops_the_entry(
    stores: Stores, kt: keyturn.Keyturn
) -> None:
    mine = TokenManager(kt, stores.open())
    theirs = TokenManager(kt, stores.open())
    mine.save(KEY, rich_tokens())
    assert mine.get_access_token(KEY) == "fake-at-cache"
    assert len(mine.cache) == 1
    assert theirs.delete(KEY)
    with pytest.raises(TokenNotFoundError):
        mine.get_access_token(KEY)
    assert mine.load(KEY) is None
    assert len(mine.cache) == 0
    # Signed in again with the very same tokens: a new version, read as such.
    theirs.save(KEY, rich_tokens())
    assert mine.get_access_token(KEY) == "fake-at-cache"


def test_the_managers_own_delete_and_save_drop_the_entry(
    stores: Stores, kt: keyturn.Keyturn
) -> None:
    manager = TokenManager(kt, stores.open())
    manager.save(KEY, rich_tokens())
    manager.get_access_token(KEY)
    assert len(manager.cache) == 1
    assert manager.delete(KEY)
    assert len(manager.cache) == 0
    with pytest.raises(TokenNotFoundError):
        manager.get_access_token(KEY)
    manager.save(KEY, rich_tokens("fake-at-new"))
    assert manager.get_access_token(KEY) == "fake-at-new"
    manager.save(KEY, rich_tokens("fake-at-newer"))
    assert len(manager.cache) == 0
    assert manager.get_access_token(KEY) == "fake-at-newer"


def test_a_refresh_is_seen_by_the_manager_that_cached_the_old_row(
    stores: Stores, kt: keyturn.Keyturn, clock: FakeClock, provider: StrictFake
) -> None:
    mine = TokenManager(kt, stores.open())
    theirs = TokenManager(kt, stores.open())
    mine.save(KEY, due_tokens())
    clock.advance(-3600)  # not due yet: read and cached as valid
    assert mine.get_access_token(KEY) == "fake-at-0"
    clock.advance(3600)
    assert theirs.get_access_token(KEY) == "fake-at-1"  # refreshed and saved by the other
    assert mine.get_access_token(KEY) == "fake-at-1"  # no second refresh
    assert provider.refreshes == 1


# -- the bound ---------------------------------------------------------------------------------


def test_the_cache_holds_at_most_its_size_and_keeps_the_latest_rows(
    stores: Stores, kt: keyturn.Keyturn, parses: list[str]
) -> None:
    manager = TokenManager(kt, stores.open(), cache_size=3)
    keys = [f"user-{n}" for n in range(10)]
    for key in keys:
        manager.save(key, rich_tokens(f"fake-at-{key}"))
    for key in keys:
        assert manager.get_access_token(key) == f"fake-at-{key}"
        assert len(manager.cache) <= 3
    assert len(manager.cache) == 3
    parsed = len(parses)
    for key in keys[-3:]:  # the latest three are cached
        assert manager.get_access_token(key) == f"fake-at-{key}"
    assert len(parses) == parsed
    assert manager.get_access_token(keys[0]) == f"fake-at-{keys[0]}"  # evicted: parsed again
    assert len(parses) == parsed + 1
    assert len(manager.cache) == 3


def test_a_cache_of_size_zero_keeps_nothing_and_reads_the_same(
    stores: Stores, kt: keyturn.Keyturn, parses: list[str]
) -> None:
    store = stores.open()
    manager = TokenManager(kt, store, cache_size=0)
    manager.save(KEY, rich_tokens())
    for _ in range(3):
        assert_same_model(manager.get_tokens(KEY), fresh_row(store).tokens)
    assert len(manager.cache) == 0
    assert len(parses) == 3
    assert not manager.cache.enabled


def test_a_negative_cache_size_is_refused(kt: keyturn.Keyturn) -> None:
    with pytest.raises(ValueError, match="cache size"):
        TokenManager(kt, MemoryTokenStore(), cache_size=-1)


def test_the_default_size_and_the_memory_an_entry_takes(
    tmp_path: Path, kt: keyturn.Keyturn
) -> None:
    # What cache.py states: a Google-sized token set, with a 900-character ID token, takes
    # under 5 KB an entry, so the default 1024 entries stay under 5 MB. Measured, not timed.
    assert DEFAULT_CACHE_SIZE == 1024
    with SQLiteTokenStore(tmp_path / "tokens.db") as store:
        manager = TokenManager(kt, store, cache_size=200)
        for n in range(200):
            store.save(
                f"user-{n}",
                keyturn.TokenSet(
                    provider="google",
                    access_token="fake-" + "a" * 160 + str(n),
                    refresh_token="fake-" + "r" * 100,
                    expires_at=START + 3600,
                    scope=("openid", "email", "profile"),
                    id_token="fake-" + "i" * 900,
                ),
            )
        manager.get_access_token("user-0")
        manager.cache.clear()
        tracemalloc.start()
        try:
            for n in range(200):
                manager.get_access_token(f"user-{n}")
            used, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert len(manager.cache) == 200
    assert used / 200 < 5 * 1024


def test_threads_reading_while_rows_change_and_entries_are_evicted(
    stores: Stores, kt: keyturn.Keyturn
) -> None:
    manager = TokenManager(kt, stores.open(), cache_size=4)
    writer = stores.open()
    keys = [f"user-{n}" for n in range(8)]
    for key in keys:
        writer.save(key, rich_tokens(f"fake-at-{key}-0"))

    def read(n: int) -> str:
        return manager.get_access_token(keys[n % len(keys)])

    def write(n: int) -> None:
        key = keys[n % len(keys)]
        writer.save(key, rich_tokens(f"fake-at-{key}-{n}"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        reads = pool.map(read, range(400))
        list(pool.map(write, range(40)))
        results = list(reads)
    assert all(r.startswith("fake-at-user-") for r in results)
    assert len(manager.cache) <= 4
    for key in keys:  # once the writes are over, every read sees the last one
        assert_same_model(manager.get_tokens(key), fresh_row(writer, key).tokens)


# -- which stores are read through the cache --------------------------------------------------


class DecryptingStore(SQLiteTokenStore):
    """An app's subclass that changes ``load`` alone: it must keep being called."""

    loads = 0

    def load(self, key: str) -> StoredTokens | None:
        type(self).loads += 1
        return super().load(key)


class TextStore(SQLiteTokenStore):
    """A subclass that changes both: read through the cache with its own ``load_text``."""

    texts = 0

    def load(self, key: str) -> StoredTokens | None:
        return super().load(key)

    def load_text(self, key: str) -> Any:
        type(self).texts += 1
        return super().load_text(key)


def test_a_subclass_that_changes_load_alone_is_read_with_its_load(
    tmp_path: Path, kt: keyturn.Keyturn
) -> None:
    with DecryptingStore(tmp_path / "tokens.db") as store:
        assert not reads_text(store)
        manager = TokenManager(kt, store)
        assert not manager.cache.enabled
        manager.save(KEY, rich_tokens())
        assert manager.get_access_token(KEY) == "fake-at-cache"
        assert manager.load(KEY) is not None
        assert DecryptingStore.loads == 2
        assert len(manager.cache) == 0


def test_a_subclass_that_changes_both_is_read_with_its_load_text(
    tmp_path: Path, kt: keyturn.Keyturn
) -> None:
    with TextStore(tmp_path / "tokens.db") as store:
        assert reads_text(store)
        manager = TokenManager(kt, store)
        manager.save(KEY, rich_tokens())
        assert manager.get_access_token(KEY) == "fake-at-cache"
        assert TextStore.texts == 1
        assert len(manager.cache) == 1


def test_a_load_replaced_on_the_object_is_kept(tmp_path: Path, kt: keyturn.Keyturn) -> None:
    with SQLiteTokenStore(tmp_path / "tokens.db") as store:
        calls: list[str] = []
        real = store.load

        def load(key: str) -> StoredTokens | None:
            calls.append(key)
            return real(key)

        store.load = load  # type: ignore[method-assign]
        manager = TokenManager(kt, store)
        manager.save(KEY, rich_tokens())
        assert manager.get_access_token(KEY) == "fake-at-cache"
        assert calls == [KEY]


def test_the_memory_store_is_read_with_its_load(kt: keyturn.Keyturn) -> None:
    store = MemoryTokenStore()
    manager = TokenManager(kt, store)
    assert not manager.cache.enabled
    manager.save(KEY, rich_tokens())
    assert manager.get_tokens(KEY) == rich_tokens()
    store.save(KEY, rich_tokens("fake-at-2"))
    assert manager.get_access_token(KEY) == "fake-at-2"
    store.delete(KEY)
    with pytest.raises(TokenNotFoundError):
        manager.get_access_token(KEY)


def test_no_secret_shows_in_the_caches_repr(stores: Stores, kt: keyturn.Keyturn) -> None:
    manager = TokenManager(kt, stores.open())
    manager.save(KEY, rich_tokens())
    manager.get_access_token(KEY)
    text = repr(manager.cache)
    assert text == f"RowCache(<1 of {DEFAULT_CACHE_SIZE} rows>)"
    assert "fake" not in text and KEY not in text


def test_a_row_cache_over_a_store_needs_no_manager(stores: Stores) -> None:
    store = stores.open()
    rows = RowCache(store, size=2)
    assert rows.enabled
    assert rows.load(KEY) is None
    assert rows.tokens(KEY) is None
    store.save(KEY, rich_tokens())
    assert rows.load(KEY) == fresh_row(store)
    rows.clear()
    assert len(rows) == 0


def test_the_async_manager_reads_in_a_worker_thread(
    stores: Stores, provider: StrictFake, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    # The store is read off the event loop, cache or not: a store call may wait on a lock.
    store = stores.open()
    threads: list[bool] = []
    real = RowCache.tokens

    def spying(self: RowCache, key: str) -> Any:
        threads.append(asyncio_running())
        return real(self, key)

    def asyncio_running() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    async def main() -> None:
        async with keyturn.AsyncKeyturn(
            CREDENTIALS, clock=clock, plugin_manager=pm, environ={}
        ) as akt:
            manager = AsyncTokenManager(akt, store)
            await manager.save(KEY, rich_tokens())
            await manager.get_access_token(KEY)
            await manager.get_access_token(KEY)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RowCache, "tokens", spying)
        asyncio.run(main())
    assert threads == [False, False]
