"""What only the Redis token store does, against a real redis-server: its keys and their
layout, Lua compare-and-set with clients that decode responses, leases that expire on the
server and dead owners, prefixes, time to live, URLs, the optional import, and processes
sharing one server.

Its rows, compare-and-set, leases and the token manager over it are tested with the other
stores in ``test_stores.py``, whose ``store`` fixture includes Redis. The server comes from
:mod:`tests.stores._redis_server`; every test starts from an empty database. The tests that
talk to it carry the ``redis`` marker; the few that need only the redis package do not.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import pytest
import redis

import keyturn
from keyturn.plugins import KeyturnPluginManager
from keyturn.stores import TokenManager
from keyturn.stores.base import dump_tokens, process_place
from keyturn.stores.redis import DEFAULT_PREFIX, RedisTokenStore, row_expires_at
from tests.conftest import CREDENTIALS, START, FakeClock, StrictFake, due_tokens

from ._redis_server import GUARD, wait_until
from .test_stores import (
    CRASHED,
    KEY,
    LOCAL_CREDENTIALS,
    LocalProvider,
    expect_crash,
    fresh_tokens,
    local_spec,
    refresh_and_report,
    stored_due_tokens,
)

pytest_plugins = ["tests.stores._redis_server"]


@pytest.fixture
def store(redis_client: redis.Redis) -> RedisTokenStore:
    return RedisTokenStore(redis_client)


# -- rows ------------------------------------------------------------------------------------


@pytest.mark.redis
def test_a_row_is_one_hash_under_the_default_prefix(
    store: RedisTokenStore, redis_client: redis.Redis
) -> None:
    tokens = fresh_tokens()
    assert store.save(KEY, tokens) is not None
    # Kept as the SQLite store keeps it, under the default prefix, and nothing else.
    assert sorted(redis_client.keys("*")) == [
        f"{DEFAULT_PREFIX}tokens:{KEY}".encode(),
        f"{DEFAULT_PREFIX}version".encode(),  # the counter versions come from
    ]
    assert redis_client.hget(f"keyturn:tokens:{KEY}", "tokens") == dump_tokens(tokens).encode()


@pytest.mark.redis
def test_a_client_that_decodes_responses_works_the_same(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with redis.Redis.from_url(redis_url, decode_responses=True) as text_client:
        store = RedisTokenStore(text_client)
        failure = keyturn.RefreshFailure(
            error="server_error", status=502, permanent=False, at=START
        )
        saved = store.save(KEY, fresh_tokens(), failure=failure, data={"user": {"name": "Ada"}})
        assert saved is not None
        row = store.load(KEY)
        owner = store.acquire(KEY, 60)
        assert owner is not None
        store.release(KEY, owner)
        assert store.acquire(KEY, 60) is not None
    assert row is not None
    assert row.tokens == fresh_tokens()
    assert row.failure == failure
    assert row.data == {"user": {"name": "Ada"}}
    assert saved.data == row.data


@pytest.mark.redis
def test_data_is_a_field_of_the_hash_present_only_when_not_empty(
    store: RedisTokenStore, redis_client: redis.Redis
) -> None:
    name = store.row_key(KEY)
    store.save(KEY, fresh_tokens(), data={"user": {"name": "Ada"}, "roles": ["a", "b"]})
    assert redis_client.hget(name, "data") == b'{"user":{"name":"Ada"},"roles":["a","b"]}'
    store.save(KEY, fresh_tokens("fake-at-2"))
    assert redis_client.hexists(name, "data") == 0  # emptied by a save without data
    assert sorted(redis_client.hkeys(name)) == [b"tokens", b"version"]


@pytest.mark.redis
def test_a_row_written_before_data_existed_loads_with_empty_data(
    store: RedisTokenStore, redis_client: redis.Redis
) -> None:
    redis_client.hset(
        store.row_key(KEY), mapping={"version": 5, "tokens": dump_tokens(fresh_tokens())}
    )
    redis_client.set(f"{DEFAULT_PREFIX}version", 5)  # the counter that gave it out
    row = store.load(KEY)
    assert row is not None
    assert row.version == 5
    assert row.tokens == fresh_tokens()
    assert row.data == {}
    updated = store.save(KEY, fresh_tokens("fake-at-2"), version=5, data={"user": "Ada"})
    assert updated is not None
    assert updated.version == 6
    reloaded = store.load(KEY)
    assert reloaded is not None
    assert reloaded.data == {"user": "Ada"}


@pytest.mark.redis
def test_the_repr_names_the_server_but_not_its_password(
    store: RedisTokenStore, redis_url: str
) -> None:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    with RedisTokenStore.from_url(f"redis://:fake-password@127.0.0.1:{port}/0") as by_url:
        shown = repr(by_url)
    assert "fake-password" not in shown
    assert f"127.0.0.1:{port}/0" in shown
    assert f"127.0.0.1:{port}/0" in repr(store)


# -- leases ----------------------------------------------------------------------------------


@pytest.mark.redis
def test_a_lease_expires_on_the_server(store: RedisTokenStore, redis_client: redis.Redis) -> None:
    assert store.acquire(KEY, 30) is not None
    assert 0 < redis_client.pttl(store.lease_key(KEY)) <= 30_000
    first = store.acquire("short", 0.05)
    assert first is not None
    wait_until(lambda: store.acquire("short", 60) is not None, "the lease to expire")
    store.release("short", first)  # the old holder's release does not free the new lease
    assert store.acquire("short", 60) is None


@pytest.mark.redis
@pytest.mark.skipif(not process_place(), reason="a dead owner is proven only where /proc tells")
def test_a_dead_owners_lease_is_taken_over_only_when_asked(
    store: RedisTokenStore, redis_client: redis.Redis
) -> None:
    dead = f"{socket.gethostname()}:{_exited_pid()}:{process_place()}:{uuid.uuid4().hex}"
    redis_client.set(store.lease_key(KEY), dead, px=60_000)
    assert store.acquire(KEY, 60) is None  # default: wait for expiry
    reclaiming = RedisTokenStore(redis_client, reclaim_dead_leases=True)
    owner = reclaiming.acquire(KEY, 60)
    assert owner is not None
    assert redis_client.get(store.lease_key(KEY)) == owner.encode()
    assert reclaiming.acquire(KEY, 60) is None  # a live owner (this process) keeps it


def _exited_pid() -> int:
    """The process id of a child that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- keys, expiry, connections ---------------------------------------------------------------


@pytest.mark.redis
def test_prefixes_keep_stores_apart(redis_client: redis.Redis) -> None:
    app_a = RedisTokenStore(redis_client, prefix="app-a:")
    app_b = RedisTokenStore(redis_client, prefix="app-b:")
    app_a.save(KEY, fresh_tokens("fake-at-a"))
    assert app_b.load(KEY) is None
    assert app_b.delete(KEY) is False
    assert app_b.save(KEY, fresh_tokens("fake-at-b"), version=0) is not None
    owner = app_a.acquire(KEY, 60)
    assert owner is not None
    assert app_b.acquire(KEY, 60) is not None
    row_a, row_b = app_a.load(KEY), app_b.load(KEY)
    assert row_a is not None
    assert row_b is not None
    assert row_a.tokens.access_token.get_secret_value() == "fake-at-a"
    assert row_b.tokens.access_token.get_secret_value() == "fake-at-b"
    names = {name.decode() if isinstance(name, bytes) else name for name in redis_client.keys("*")}
    assert names == {
        f"app-a:tokens:{KEY}",
        f"app-a:lease:{KEY}",
        "app-a:version",
        f"app-b:tokens:{KEY}",
        f"app-b:lease:{KEY}",
        "app-b:version",
    }


@pytest.mark.redis
def test_rows_live_for_ever_unless_a_ttl_is_set(redis_client: redis.Redis) -> None:
    plain = RedisTokenStore(redis_client)
    plain.save(KEY, fresh_tokens())
    assert redis_client.pttl(plain.row_key(KEY)) == -1
    expiring = RedisTokenStore(redis_client, ttl=30)
    row = expiring.save(KEY, fresh_tokens(), version=1)
    assert row is not None
    assert 0 < redis_client.pttl(plain.row_key(KEY)) <= 30_000
    plain.save(KEY, fresh_tokens())  # written without a ttl: kept for ever again
    assert redis_client.pttl(plain.row_key(KEY)) == -1
    short = RedisTokenStore(redis_client, ttl=0.05)
    short.save("idle", fresh_tokens())
    wait_until(lambda: short.load("idle") is None, "the row to expire")


@pytest.mark.redis
def test_rows_can_expire_with_their_tokens(redis_client: redis.Redis) -> None:
    clock = FakeClock()
    store = RedisTokenStore(redis_client, expire_with_tokens=True, ttl=7200, clock=clock)
    github_like = fresh_tokens().model_copy(update={"refresh_token_expires_at": START + 600})
    store.save(KEY, github_like)
    # The access token (START + 3600) outlives the refresh token: the row lasts until then.
    assert 3_590_000 < redis_client.pttl(store.row_key(KEY)) <= 3_600_000
    longer = github_like.model_copy(update={"refresh_token_expires_at": START + 86_400})
    store.save(KEY, longer)
    assert 7_190_000 < redis_client.pttl(store.row_key(KEY)) <= 7_200_000  # the ttl comes first
    unbounded = fresh_tokens()  # a refresh token with no known end: only the ttl applies
    store.save(KEY, unbounded)
    assert 7_190_000 < redis_client.pttl(store.row_key(KEY)) <= 7_200_000
    clock.advance(86_400 + 3600)
    store.save(KEY, longer)  # already of no use: gone at once
    wait_until(lambda: store.load(KEY) is None, "the dead row to go")


def test_when_tokens_stop_being_of_use() -> None:
    tokens = fresh_tokens()  # access token until START + 3600, refresh token without end
    assert row_expires_at(tokens) is None
    assert row_expires_at(tokens.model_copy(update={"refresh_token_expires_at": 5})) == (
        START + 3600
    )
    later = tokens.model_copy(update={"refresh_token_expires_at": START + 9000})
    assert row_expires_at(later) == START + 9000
    assert row_expires_at(later.model_copy(update={"expires_at": None})) == START + 9000
    no_refresh = tokens.model_copy(update={"refresh_token": None})
    assert row_expires_at(no_refresh) == START + 3600
    assert row_expires_at(no_refresh.model_copy(update={"expires_at": None})) is None


@pytest.mark.redis
def test_a_ttl_must_be_positive(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="ttl"):
        RedisTokenStore(redis_client, ttl=0)


@pytest.mark.redis
def test_a_store_opened_from_a_url_closes_its_client(
    redis_url: str, redis_client: redis.Redis
) -> None:
    def connected() -> list[str]:
        return [
            client["name"] for client in redis_client.client_list() if client["name"] == "by-url"
        ]

    store = RedisTokenStore.from_url(f"{redis_url}?client_name=by-url", prefix="by-url:")
    store.save(KEY, fresh_tokens())
    assert connected() == ["by-url"]
    assert store.redis.connection_pool.connection_kwargs["socket_timeout"] == 5.0
    store.close()
    wait_until(lambda: connected() == [], "the server to see the connection closed")
    assert redis_client.exists(f"by-url:tokens:{KEY}") == 1  # written for good
    lent = RedisTokenStore(redis_client)
    lent.close()  # the app's client stays usable
    assert lent.load(KEY) is None
    assert redis_client.ping()


def test_the_export_is_lazy_and_needs_redis_only_when_used() -> None:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, keyturn.stores as s; loaded = 'redis' in sys.modules; "
            "s.RedisTokenStore; print(loaded, 'redis' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.split() == ["False", "True"]
    import keyturn.stores

    assert keyturn.stores.RedisTokenStore is RedisTokenStore


def test_without_redis_the_import_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # what an absent package looks like
    monkeypatch.delitem(sys.modules, "keyturn.stores.redis")
    with pytest.raises(ImportError, match=r"pip install keyturn\[redis\]"):
        importlib.import_module("keyturn.stores.redis")


# -- managers and processes sharing one server -----------------------------------------------


@pytest.mark.redis
def test_threads_of_two_managers_on_one_server_refresh_once(
    redis_client: redis.Redis, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    # Two managers with their own clients, stores and single-flights, as two processes
    # have: only the lease in Redis keeps them from refreshing the same token twice.
    with ExitStack() as stack:
        managers = []
        for _ in range(2):
            # The provider takes a moment to answer, so that both managers ask meanwhile.
            http = stack.enter_context(
                httpx.Client(transport=provider.handler(lambda: time.sleep(0.05)))
            )
            client = stack.enter_context(
                keyturn.Keyturn(
                    CREDENTIALS, http_client=http, clock=clock, plugin_manager=pm, environ={}
                )
            )
            managers.append(TokenManager(client, RedisTokenStore(redis_client)))
        managers[0].save(KEY, due_tokens())
        with ThreadPoolExecutor(max_workers=16) as pool:
            tokens = list(pool.map(lambda n: managers[n % 2].get_access_token(KEY), range(64)))
    assert set(tokens) == {"fake-at-1"}
    assert provider.refreshes == 1
    assert provider.reuse_detected == 0


class CrashingRedisStore(RedisTokenStore):
    """Ends the process (no cleanup, like SIGKILL) as soon as it holds the lease."""

    crash = False

    def acquire(self, key: str, lease: float) -> str | None:
        owner = super().acquire(key, lease)
        if owner is not None and self.crash:
            os._exit(CRASHED)
        return owner


def child_main(
    url: str,
    prefix: str,
    spec: dict[str, Any],
    credentials: tuple[str, str],
    lease: float,
    crash: bool,
    start: Any,
    results: Any,
) -> None:
    """A separate process on the shared server; with ``crash``, it dies holding the lease."""
    with CrashingRedisStore.from_url(url, prefix=prefix) as store:
        store.crash = crash
        refresh_and_report(store, spec, credentials, start, results, lease=lease)


def spawn(
    url: str,
    prefix: str,
    spec: keyturn.ProviderSpec,
    credentials: tuple[str, str] = LOCAL_CREDENTIALS,
    *,
    lease: float = 60.0,
    crash: bool = False,
    start: Any = None,
) -> tuple[Any, Any]:
    context = multiprocessing.get_context("spawn")
    results = context.SimpleQueue()
    args = (url, prefix, spec.model_dump(mode="json"), credentials, lease, crash, start, results)
    process = context.Process(target=child_main, args=args)
    process.start()
    return process, results


@pytest.fixture
def prefix(redis_client: redis.Redis) -> str:
    """A prefix of its own for a test whose children share the server."""
    return f"test-{uuid.uuid4().hex[:8]}:"


@pytest.mark.slow
@pytest.mark.redis
def test_two_processes_refresh_once_against_the_emulator(
    redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    from keyturn_emulator import Emulator

    with Emulator(latency=0.3) as emu:
        spec = emu.spec("strict")
        secret = emu.credentials.client_secret
        assert secret is not None
        credentials = (emu.credentials.client_id, secret.get_secret_value())
        with keyturn.Keyturn({"strict": credentials}, providers=[spec], environ={}) as kt:
            request = kt.authorize_url("strict", "http://127.0.0.1:9/callback")
            signed_in = kt.sign_in(request, emu.authorize(request.url), fetch_profile=False)
        store = RedisTokenStore(redis_client, prefix=prefix)
        # Stored as if its access token had run out: both processes will want a refresh.
        store.save(KEY, signed_in.tokens.model_copy(update={"expires_at": 1_000_000_000}))
        start = multiprocessing.get_context("spawn").Event()
        children = [spawn(redis_url, prefix, spec, credentials, start=start) for _ in range(2)]
        start.set()
        outcomes = [results.get() for _, results in children]
        for process, results in children:
            process.join()
            results.close()
        counters = emu.counters("strict")
    assert [kind for kind, _ in outcomes] == ["ok", "ok"]
    assert outcomes[0][1] == outcomes[1][1]
    assert outcomes[0][1] != signed_in.tokens.access_token.get_secret_value()
    assert counters["refresh_token"] == 1
    assert counters["reuse_detected"] == 0
    assert counters["family_revoked"] == 0
    row = store.load(KEY)
    assert row is not None
    assert row.version == 2
    assert row.tokens.access_token.get_secret_value() == outcomes[0][1]


@contextmanager
def a_dead_lease_holder(
    url: str, redis_client: redis.Redis, prefix: str, lease: float
) -> Iterator[tuple[StrictFake, LocalProvider]]:
    """A provider on loopback, due tokens under ``prefix``, and a child process that took
    their lease of ``lease`` seconds and died before asking the provider anything."""
    fake = StrictFake()
    with LocalProvider(fake) as server:
        RedisTokenStore(redis_client, prefix=prefix).save(KEY, stored_due_tokens())
        expect_crash(*spawn(url, prefix, local_spec(server.url), lease=lease, crash=True))
        assert fake.refreshes == 0
        yield fake, server


def parent_manager(
    redis_client: redis.Redis, prefix: str, url: str, **options: Any
) -> tuple[TokenManager, RedisTokenStore, keyturn.Keyturn]:
    store = RedisTokenStore(redis_client, prefix=prefix, **options)
    client = keyturn.Keyturn(
        {"localfake": LOCAL_CREDENTIALS}, providers=[local_spec(url)], environ={}
    )
    return TokenManager(client, store, lock_timeout=GUARD), store, client


@pytest.mark.slow
@pytest.mark.redis
def test_killed_holding_the_lease_the_lease_expires_and_the_next_caller_proceeds(
    redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    with a_dead_lease_holder(redis_url, redis_client, prefix, lease=0.5) as (fake, server):
        manager, store, client = parent_manager(redis_client, prefix, server.url)
        with client:
            assert manager.get_access_token(KEY) == "fake-at-1"  # once the lease ran out
        row = store.load(KEY)
    assert fake.refreshes == 1
    assert row is not None
    assert row.version == 2
    assert redis_client.exists(store.lease_key(KEY)) == 0  # released after the refresh


@pytest.mark.slow
@pytest.mark.redis
def test_killed_holding_the_lease_a_host_that_reclaims_proceeds_at_once(
    redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    with a_dead_lease_holder(redis_url, redis_client, prefix, lease=60) as (fake, server):
        waiting = RedisTokenStore(redis_client, prefix=prefix)
        assert waiting.acquire(KEY, 60) is None  # by default the dead lease stands
        manager, store, client = parent_manager(
            redis_client, prefix, server.url, reclaim_dead_leases=True
        )
        with client:
            assert manager.get_access_token(KEY) == "fake-at-1"
        row = store.load(KEY)
    assert fake.refreshes == 1
    assert row is not None
    assert row.version == 2
