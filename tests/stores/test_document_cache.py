"""Token stores as document caches: discovery documents and key sets shared across processes.

Every built-in store implements :class:`keyturn.documents.DocumentCache`, so a client given
``document_cache=store`` keeps what it fetches where every process sharing the store finds it.
Two clients over one SQLite file (two store objects, two connections: as two processes have)
or one Redis server fetch each document once between them; an expired entry is fetched again;
an entry that cannot be read counts as absent. Documents never mix with token rows: they are
not rows, and a sweep leaves them. The web integration's own client keeps its documents in the
database strategy's store.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import keyturn
from keyturn.documents import DISCOVERY_TTL, MAX_TTL, STALE_IF_ERROR, DocumentCache
from keyturn.plugins import KeyturnPluginManager
from keyturn.stores import MemoryTokenStore, SQLiteTokenStore, TokenStore
from keyturn.stores.redis import RedisTokenStore
from keyturn.web import AsyncWebAuth, WebAuth
from tests.conftest import START, FakeClock
from tests.core._oidc import CREDENTIALS, DISCOVERY_URL, JWKS_URI, SPEC, Provider

pytest_plugins = ["tests.stores._redis_server"]

SECRET = "a-test-secret-of-at-least-32-characters"
TEXT = '{"issuer": "https://op.example"}'


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Each built-in store in turn, empty."""
    if request.param == "memory":
        yield MemoryTokenStore()
    elif request.param == "sqlite":
        with SQLiteTokenStore(tmp_path / "tokens.db") as db:
            yield db
    else:
        yield RedisTokenStore(request.getfixturevalue("redis_client"))


def shared_stores(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> list[Any]:
    """Two store objects over the same data, as two processes open it."""
    if kind == "sqlite":
        return [SQLiteTokenStore(tmp_path / "shared.db") for _ in range(2)]
    url = request.getfixturevalue("redis_url")
    request.getfixturevalue("redis_client")  # an emptied database
    return [RedisTokenStore.from_url(url) for _ in range(2)]


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Any]]:
    stores = shared_stores(request.param, request, tmp_path)
    yield stores
    for store in stores:
        store.close()


def make_client(
    mode: str, provider: Provider, cache: DocumentCache, clock: FakeClock, pm: KeyturnPluginManager
) -> keyturn.Keyturn | keyturn.AsyncKeyturn:
    options: dict[str, Any] = {
        "providers": [SPEC],
        "plugin_manager": pm,
        "environ": {},
        "clock": clock,
        "document_cache": cache,
    }
    if mode == "sync":
        return keyturn.Keyturn(CREDENTIALS, http_client=provider.sync_client(), **options)
    return keyturn.AsyncKeyturn(CREDENTIALS, http_client=provider.async_client(), **options)


async def discover(client: keyturn.Keyturn | keyturn.AsyncKeyturn) -> keyturn.ProviderSpec:
    """The provider's spec, resolved by reading its discovery document and key set."""
    if isinstance(client, keyturn.AsyncKeyturn):
        try:
            return await client.discover("op")
        finally:
            await client.http_client.aclose()  # type: ignore[attr-defined]
    try:
        return client.discover("op")
    finally:
        client.http_client.close()  # type: ignore[attr-defined]


# -- each store -------------------------------------------------------------------------------


def test_every_built_in_store_is_a_document_cache(store: TokenStore) -> None:
    assert isinstance(store, DocumentCache)


def test_a_document_is_kept_and_replaced(store: Any) -> None:
    assert store.get(DISCOVERY_URL) is None
    store.put(DISCOVERY_URL, TEXT, START + 3600.5)
    assert store.get(DISCOVERY_URL) == (TEXT, START + 3600.5)
    store.put(DISCOVERY_URL, '{"keys": []}', START + 7200)
    assert store.get(DISCOVERY_URL) == ('{"keys": []}', float(START + 7200))
    assert store.get(JWKS_URI) is None
    # Any text a provider sends, byte for byte.
    text = '{"name": "Zürich \\u2603 ☃", "n": "' + "A" * 5000 + '"}'
    store.put(JWKS_URI, text, START)
    assert store.get(JWKS_URI) == (text, float(START))


def test_documents_are_not_token_rows_and_are_not_swept(store: Any) -> None:
    tokens = keyturn.TokenSet(provider="op", access_token="fake-access", expires_at=START)
    store.put(DISCOVERY_URL, TEXT, START + 10)
    assert store.load(DISCOVERY_URL) is None
    # A row under the same key: both kept, each where it belongs.
    store.save(DISCOVERY_URL, tokens, expires_at=START + 5)
    assert store.get(DISCOVERY_URL) == (TEXT, START + 10)
    loaded = store.load(DISCOVERY_URL)
    assert loaded is not None and loaded.tokens == tokens
    # A sweep long after both ended deletes the row, never the document.
    assert store.sweep(now=START + 10 * STALE_IF_ERROR) == 1
    assert store.load(DISCOVERY_URL) is None
    assert store.get(DISCOVERY_URL) == (TEXT, START + 10)
    assert store.delete(DISCOVERY_URL) is False
    assert store.get(DISCOVERY_URL) == (TEXT, START + 10)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_documents_long_past_their_stale_window_are_dropped_when_another_is_written(
    kind: str, tmp_path: Path
) -> None:
    # (Redis drops each document with its own time to live, tested below.)
    store = MemoryTokenStore() if kind == "memory" else SQLiteTokenStore(tmp_path / "t.db")
    store.put(JWKS_URI, TEXT, START)
    store.put(DISCOVERY_URL, TEXT, START + STALE_IF_ERROR)  # the first is just inside
    assert store.get(JWKS_URI) == (TEXT, START)
    store.put(DISCOVERY_URL, TEXT, START + STALE_IF_ERROR + 1)
    assert store.get(JWKS_URI) is None
    assert store.get(DISCOVERY_URL) == (TEXT, START + STALE_IF_ERROR + 1)
    if isinstance(store, SQLiteTokenStore):
        store.close()


def test_sqlite_keeps_documents_in_a_table_of_their_own(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    with SQLiteTokenStore(path) as store:
        store.put(DISCOVERY_URL, TEXT, START + 60)
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT key, text, expires_at FROM keyturn_documents").fetchall()
        assert rows == [(DISCOVERY_URL, TEXT, START + 60.0)]
        assert db.execute("SELECT COUNT(*) FROM keyturn_tokens").fetchone() == (0,)
    # A file made before the table existed gets it when a store opens it.
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE keyturn_documents")
    with SQLiteTokenStore(path) as store:
        assert store.get(DISCOVERY_URL) is None
        store.put(DISCOVERY_URL, TEXT, START + 60)
        assert store.get(DISCOVERY_URL) == (TEXT, START + 60)


@pytest.mark.parametrize(
    ("text", "expires_at"),
    [(b"\xff\xfe", START + 60), (TEXT, "soon"), (TEXT, float("inf"))],
    ids=["bytes", "text-expiry", "infinite"],
)
def test_sqlite_reads_an_entry_it_cannot_use_as_absent(
    tmp_path: Path, text: Any, expires_at: Any
) -> None:
    with SQLiteTokenStore(tmp_path / "tokens.db") as store:
        # Written by another program: SQLite keeps a blob, or text in a REAL column, as given.
        with sqlite3.connect(tmp_path / "tokens.db") as db:
            db.execute(
                "INSERT INTO keyturn_documents VALUES (?, ?, ?)", (DISCOVERY_URL, text, expires_at)
            )
        assert store.get(DISCOVERY_URL) is None


@pytest.mark.redis
def test_redis_keeps_a_document_in_a_hash_with_a_time_to_live_under_the_prefix(
    redis_client: redis.Redis,
) -> None:
    clock = FakeClock()
    store = RedisTokenStore(redis_client, prefix="app1:", clock=clock)
    store.put(DISCOVERY_URL, TEXT, START + 600)
    name = f"app1:document:{DISCOVERY_URL}"
    assert redis_client.keys("*") == [name.encode()]
    assert redis_client.hgetall(name) == {b"text": TEXT.encode(), b"expires_at": b"1800000600.0"}
    assert (
        (600 + STALE_IF_ERROR) * 1000 - 5000
        < redis_client.pttl(name)
        <= (600 + STALE_IF_ERROR) * 1000
    )
    # A document's own lifetime counts at most MAX_TTL; one already expired keeps the stale day.
    store.put(JWKS_URI, TEXT, START + 10 * MAX_TTL)
    assert redis_client.pttl(f"app1:document:{JWKS_URI}") <= (MAX_TTL + STALE_IF_ERROR) * 1000
    store.put(JWKS_URI, TEXT, START - 60)
    assert redis_client.pttl(f"app1:document:{JWKS_URI}") > (STALE_IF_ERROR - 5) * 1000
    # Another prefix is another cache.
    assert RedisTokenStore(redis_client, prefix="app2:").get(DISCOVERY_URL) is None
    assert store.sweep(now=START + 10 * MAX_TTL) == 0
    assert store.get(DISCOVERY_URL) == (TEXT, START + 600)


@pytest.mark.redis
@pytest.mark.parametrize(
    "fields",
    [
        {"text": TEXT},
        {"expires_at": "1800000600.0"},
        {"text": TEXT, "expires_at": "soon"},
        {"text": TEXT, "expires_at": "inf"},
        {"text": b"\xff\xfe", "expires_at": "1800000600.0"},
    ],
    ids=["no-expiry", "no-text", "text-expiry", "infinite", "not-utf8"],
)
def test_redis_reads_an_entry_it_cannot_use_as_absent(
    redis_client: redis.Redis, fields: dict[str, str | bytes]
) -> None:
    store = RedisTokenStore(redis_client)
    mapping: dict[Any, Any] = dict(fields)
    redis_client.hset(store.document_key(DISCOVERY_URL), mapping=mapping)
    assert store.get(DISCOVERY_URL) is None


@pytest.mark.redis
def test_redis_reads_documents_with_a_client_that_decodes_responses(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url, decode_responses=True) as text_client:
        text_client.flushdb()
        store = RedisTokenStore(text_client)
        store.put(DISCOVERY_URL, TEXT, START + 1.25)
        assert store.get(DISCOVERY_URL) == (TEXT, START + 1.25)


# -- clients sharing a store ------------------------------------------------------------------


@pytest.mark.parametrize("modes", [("sync", "sync"), ("sync", "async"), ("async", "async")])
async def test_two_clients_over_one_store_fetch_each_document_once_between_them(
    two_stores: list[Any], pm: KeyturnPluginManager, modes: tuple[str, str]
) -> None:
    provider = Provider()
    clock = FakeClock()
    first, second = (
        make_client(mode, provider, store, clock, pm)
        for mode, store in zip(modes, two_stores, strict=True)
    )
    spec = await discover(first)
    again = await discover(second)
    assert (provider.count(DISCOVERY_URL), provider.count(JWKS_URI)) == (1, 1)
    # What the second client read from the store is what the first one fetched.
    assert again == spec
    assert again.model_dump() == spec.model_dump()
    assert again.model_fields_set == spec.model_fields_set
    assert second.key_sets is not first.key_sets
    assert two_stores[1].get(DISCOVERY_URL) == two_stores[0].get(DISCOVERY_URL)


async def test_an_expired_document_is_fetched_again_and_kept_anew(
    two_stores: list[Any], pm: KeyturnPluginManager
) -> None:
    provider = Provider()
    clock = FakeClock()
    await discover(make_client("sync", provider, two_stores[0], clock, pm))
    kept = two_stores[1].get(DISCOVERY_URL)
    assert kept is not None and kept[1] == START + DISCOVERY_TTL
    clock.advance(DISCOVERY_TTL + 1)
    await discover(make_client("async", provider, two_stores[1], clock, pm))
    assert provider.count(DISCOVERY_URL) == 2
    renewed = two_stores[0].get(DISCOVERY_URL)
    assert renewed is not None and renewed[1] == clock.now + DISCOVERY_TTL
    # Fresh again: a third client reads it from the store.
    await discover(make_client("sync", provider, two_stores[0], clock, pm))
    assert provider.count(DISCOVERY_URL) == 2


@pytest.mark.parametrize(
    "damage", ["not JSON", "[1, 2]", '{"issuer": "https://op.example"}'], ids=str
)
async def test_a_corrupt_entry_is_treated_as_absent(
    two_stores: list[Any], pm: KeyturnPluginManager, damage: str
) -> None:
    provider = Provider()
    clock = FakeClock()
    spec = await discover(make_client("sync", provider, two_stores[0], clock, pm))
    # Damaged in place (a truncated write, another program), still within its lifetime.
    two_stores[0].put(DISCOVERY_URL, damage, START + DISCOVERY_TTL)
    again = await discover(make_client("async", provider, two_stores[1], clock, pm))
    assert again == spec
    assert provider.count(DISCOVERY_URL) == 2
    kept = two_stores[0].get(DISCOVERY_URL)
    assert kept is not None and kept[0] != damage  # the good copy replaced it


def test_a_store_that_fails_costs_a_fetch_never_a_sign_in(
    tmp_path: Path, pm: KeyturnPluginManager, caplog: pytest.LogCaptureFixture
) -> None:
    provider = Provider()
    store = SQLiteTokenStore(tmp_path / "tokens.db")
    store.close()  # every read and write now raises sqlite3.ProgrammingError
    client = make_client("sync", provider, store, FakeClock(), pm)
    assert isinstance(client, keyturn.Keyturn)
    with caplog.at_level(logging.WARNING, logger="keyturn"), client:
        assert client.discover("op").jwks_uri == JWKS_URI
    assert provider.count(DISCOVERY_URL) == 1
    assert "the document cache could not be read (ProgrammingError); fetching" in caplog.text


def test_clients_sharing_a_memory_store_share_its_documents(pm: KeyturnPluginManager) -> None:
    provider = Provider()
    store = MemoryTokenStore()
    for _ in range(3):
        client = make_client("sync", provider, store, FakeClock(), pm)
        assert isinstance(client, keyturn.Keyturn)
        with client:
            client.discover("op")
    assert (provider.count(DISCOVERY_URL), provider.count(JWKS_URI)) == (1, 1)


# -- the web integration ----------------------------------------------------------------------


@pytest.mark.parametrize("entry", [WebAuth, AsyncWebAuth])
def test_the_web_integrations_own_client_keeps_documents_in_the_sessions_store(
    entry: type[WebAuth] | type[AsyncWebAuth], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryTokenStore()
    auth = entry(secret=SECRET, strategy="database", store=store)
    assert auth.store is store
    assert auth.client.documents.cache is store
    # The default store (a SQLite file in the working directory) serves as well.
    monkeypatch.chdir(tmp_path)
    default = entry(secret=SECRET, strategy="database")
    assert isinstance(default.store, SQLiteTokenStore)
    assert default.client.documents.cache is default.store
    default.store.close()
    # Cookie sessions have no store: the client keeps its documents in memory.
    cookies = entry(secret=SECRET)
    assert cookies.store is None
    assert type(cookies.client.documents.cache).__name__ == "MemoryDocumentCache"


def test_a_client_the_app_passes_is_never_changed() -> None:
    store = MemoryTokenStore()
    client = keyturn.Keyturn()
    auth = WebAuth(client, secret=SECRET, strategy="database", store=store)
    assert auth.client is client
    assert client.documents.cache is not store
    # The one line that shares them.
    shared = keyturn.Keyturn(document_cache=store)
    assert WebAuth(shared, secret=SECRET, strategy="database", store=store).client is shared
    assert shared.documents.cache is store


def test_a_store_of_the_apps_own_that_is_no_document_cache_is_left_out() -> None:
    class Rows:
        """A token store with the protocol's methods only (its own get would be something else)."""

        def __init__(self) -> None:
            self.inner = MemoryTokenStore()

        def load(self, key: str) -> Any:
            return self.inner.load(key)

        def save(self, key: str, tokens: Any, **options: Any) -> Any:
            return self.inner.save(key, tokens, **options)

        def delete(self, key: str) -> bool:
            return self.inner.delete(key)

        def acquire(self, key: str, lease: float) -> str | None:
            return self.inner.acquire(key, lease)

        def release(self, key: str, owner: str) -> None:
            self.inner.release(key, owner)

    rows = Rows()
    auth = WebAuth(secret=SECRET, strategy="database", store=rows)
    assert auth.store is rows
    assert type(auth.client.documents.cache).__name__ == "MemoryDocumentCache"
