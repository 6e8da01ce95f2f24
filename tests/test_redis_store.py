"""The Redis token store against a real redis-server: rows, compare-and-set, leases, expiry,
prefixes, the token manager over it, and processes sharing one server.

The server is started once for the session on a free loopback port, with persistence off
and its files in a temporary folder; every test starts from an empty database.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import keyturn
from keyturn.plugins import KeyturnPluginManager
from keyturn.stores import (
    AsyncTokenManager,
    LockTimeoutError,
    StoredTokens,
    TokenManager,
    TokenNotFoundError,
    TokenStore,
)
from keyturn.stores.base import dump_tokens
from keyturn.stores.redis import DEFAULT_PREFIX, RedisTokenStore, row_expires_at

from .conftest import START, FakeClock
from .test_singleflight import CREDENTIALS, StrictFake, due_tokens
from .test_stores import (
    CRASHED,
    KEY,
    LOCAL_CREDENTIALS,
    LocalProvider,
    fresh_tokens,
    local_spec,
    stored_due_tokens,
)

INSTALL = "apt-get update && apt-get install -y redis-server"
#: A guard against a hang, not a speed check.
GUARD = 10.0
#: Loopback only, nothing written to disk.
SERVER_SETTINGS = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no")


# -- the server ------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Poll ``predicate``; fail after :data:`GUARD` seconds."""
    deadline = time.monotonic() + GUARD
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.01)


def answers_ping(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
    finally:
        client.close()


def start_server(binary: str, directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start redis-server on a free port; return it once it answers PING."""
    log_path = directory / "redis.log"
    for _ in range(3):  # another program may take the port between probe and start
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [binary, "--port", str(port), *SERVER_SETTINGS, "--dir", str(directory)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + GUARD
        while process.poll() is None and time.monotonic() < deadline:
            if answers_ping(url):
                return process, url
            time.sleep(0.01)
        if process.poll() is None:
            process.kill()
        process.wait()
    pytest.fail(f"redis-server did not start; its log:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the session, stopped at its end."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(f"redis-server is needed for the Redis store tests; install it: {INSTALL}")
    process, url = start_server(binary, tmp_path_factory.mktemp("redis"))
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(GUARD)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client on an emptied database."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def store(raw: redis.Redis) -> RedisTokenStore:
    return RedisTokenStore(raw)


# -- rows ------------------------------------------------------------------------------------


def test_the_store_implements_the_protocol(store: RedisTokenStore) -> None:
    assert isinstance(store, TokenStore)


def test_a_saved_row_loads_back_with_its_secrets(store: RedisTokenStore, raw: redis.Redis) -> None:
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
    assert (loaded.version, loaded.failure) == (1, None)
    assert store.load("someone-else") is None
    # Kept as the SQLite store keeps it, under the default prefix, and nothing else.
    assert sorted(raw.keys("*")) == [
        f"{DEFAULT_PREFIX}tokens:{KEY}".encode(),
        f"{DEFAULT_PREFIX}version".encode(),  # the counter versions come from
    ]
    assert raw.hget(f"keyturn:tokens:{KEY}", "tokens") == dump_tokens(tokens).encode()


def test_a_client_that_decodes_responses_works_the_same(redis_url: str, raw: redis.Redis) -> None:
    with redis.Redis.from_url(redis_url, decode_responses=True) as text_client:
        store = RedisTokenStore(text_client)
        failure = keyturn.RefreshFailure(
            error="server_error", status=502, permanent=False, at=START
        )
        assert store.save(KEY, fresh_tokens(), failure=failure) is not None
        row = store.load(KEY)
        owner = store.acquire(KEY, 60)
        assert owner is not None
        store.release(KEY, owner)
        assert store.acquire(KEY, 60) is not None
    assert row is not None
    assert row.tokens == fresh_tokens()
    assert row.failure == failure


def test_a_version_is_never_given_twice_not_even_after_a_delete(
    store: RedisTokenStore,
) -> None:
    before_sign_out = store.save(KEY, fresh_tokens("fake-at-old"), version=0)
    assert before_sign_out is not None
    assert store.delete(KEY)
    signed_in_again = store.save(KEY, fresh_tokens("fake-at-new"), version=0)
    assert signed_in_again is not None
    assert signed_in_again.version > before_sign_out.version
    late = store.save(KEY, fresh_tokens("fake-at-late"), version=before_sign_out.version)
    assert late is None


def test_save_is_compare_and_set(store: RedisTokenStore) -> None:
    assert store.save(KEY, fresh_tokens("fake-at-1"), version=0) is not None
    assert store.save(KEY, fresh_tokens("fake-at-x"), version=0) is None  # a row exists
    second = store.save(KEY, fresh_tokens("fake-at-2"), version=1)
    assert second is not None
    assert second.version == 2
    assert store.save(KEY, fresh_tokens("fake-at-stale"), version=1) is None  # too late
    row = store.load(KEY)
    assert row is not None
    assert row.version == 2
    assert row.tokens.access_token.get_secret_value() == "fake-at-2"
    forced = store.save(KEY, fresh_tokens("fake-at-3"))  # a new sign-in always writes
    assert forced is not None
    assert forced.version == 3


def test_writers_racing_on_one_version_leave_one_winner(store: RedisTokenStore) -> None:
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


def test_a_failure_is_stored_next_to_the_tokens_until_the_next_save(
    store: RedisTokenStore,
) -> None:
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


def test_delete(store: RedisTokenStore) -> None:
    store.save(KEY, fresh_tokens())
    assert store.delete(KEY) is True
    assert store.delete(KEY) is False
    assert store.load(KEY) is None


def test_no_secret_or_key_in_reprs(store: RedisTokenStore, redis_url: str) -> None:
    session_key = "session-fake-3c1e8a"
    row = store.save(session_key, fresh_tokens())
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    with RedisTokenStore.from_url(f"redis://:fake-password@127.0.0.1:{port}/0") as by_url:
        shown = repr(row) + str(row) + repr(store) + repr(by_url)
    for secret in ("fake-at-signin", "fake-rt-0", "fake-id-token", session_key, "fake-password"):
        assert secret not in shown
    assert "version=1" in shown
    assert f"127.0.0.1:{port}/0" in repr(store)


# -- leases ----------------------------------------------------------------------------------


def test_a_lease_is_exclusive_until_its_owner_releases_it(store: RedisTokenStore) -> None:
    owner = store.acquire(KEY, 60)
    assert owner is not None
    assert store.acquire(KEY, 60) is None
    assert store.acquire("another-key", 60) is not None  # per key
    store.release(KEY, "someone-else")
    assert store.acquire(KEY, 60) is None
    store.release(KEY, owner)
    assert store.acquire(KEY, 60) is not None


def test_a_lease_expires_on_the_server(store: RedisTokenStore, raw: redis.Redis) -> None:
    assert store.acquire(KEY, 30) is not None
    assert 0 < raw.pttl(store.lease_key(KEY)) <= 30_000
    first = store.acquire("short", 0.05)
    assert first is not None
    wait_until(lambda: store.acquire("short", 60) is not None, "the lease to expire")
    store.release("short", first)  # the old holder's release does not free the new lease
    assert store.acquire("short", 60) is None


def test_a_dead_owners_lease_is_taken_over_only_when_asked(
    store: RedisTokenStore, raw: redis.Redis
) -> None:
    dead = f"{socket.gethostname()}:{_exited_pid()}:{uuid.uuid4().hex}"
    raw.set(store.lease_key(KEY), dead, px=60_000)
    assert store.acquire(KEY, 60) is None  # default: wait for expiry
    reclaiming = RedisTokenStore(raw, reclaim_dead_leases=True)
    owner = reclaiming.acquire(KEY, 60)
    assert owner is not None
    assert raw.get(store.lease_key(KEY)) == owner.encode()
    assert reclaiming.acquire(KEY, 60) is None  # a live owner (this process) keeps it


def _exited_pid() -> int:
    """The process id of a child that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- keys, expiry, connections ---------------------------------------------------------------


def test_prefixes_keep_stores_apart(raw: redis.Redis) -> None:
    app_a = RedisTokenStore(raw, prefix="app-a:")
    app_b = RedisTokenStore(raw, prefix="app-b:")
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
    names = {name.decode() if isinstance(name, bytes) else name for name in raw.keys("*")}
    assert names == {
        f"app-a:tokens:{KEY}",
        f"app-a:lease:{KEY}",
        "app-a:version",
        f"app-b:tokens:{KEY}",
        f"app-b:lease:{KEY}",
        "app-b:version",
    }


def test_rows_live_for_ever_unless_a_ttl_is_set(raw: redis.Redis) -> None:
    plain = RedisTokenStore(raw)
    plain.save(KEY, fresh_tokens())
    assert raw.pttl(plain.row_key(KEY)) == -1
    expiring = RedisTokenStore(raw, ttl=30)
    row = expiring.save(KEY, fresh_tokens(), version=1)
    assert row is not None
    assert 0 < raw.pttl(plain.row_key(KEY)) <= 30_000
    plain.save(KEY, fresh_tokens())  # written without a ttl: kept for ever again
    assert raw.pttl(plain.row_key(KEY)) == -1
    short = RedisTokenStore(raw, ttl=0.05)
    short.save("idle", fresh_tokens())
    wait_until(lambda: short.load("idle") is None, "the row to expire")


def test_rows_can_expire_with_their_tokens(raw: redis.Redis) -> None:
    clock = FakeClock()
    store = RedisTokenStore(raw, expire_with_tokens=True, ttl=7200, clock=clock)
    github_like = fresh_tokens().model_copy(update={"refresh_token_expires_at": START + 600})
    store.save(KEY, github_like)
    # The access token (START + 3600) outlives the refresh token: the row lasts until then.
    assert 3_590_000 < raw.pttl(store.row_key(KEY)) <= 3_600_000
    longer = github_like.model_copy(update={"refresh_token_expires_at": START + 86_400})
    store.save(KEY, longer)
    assert 7_190_000 < raw.pttl(store.row_key(KEY)) <= 7_200_000  # the ttl comes first
    unbounded = fresh_tokens()  # a refresh token with no known end: only the ttl applies
    store.save(KEY, unbounded)
    assert 7_190_000 < raw.pttl(store.row_key(KEY)) <= 7_200_000
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


def test_a_ttl_must_be_positive(raw: redis.Redis) -> None:
    with pytest.raises(ValueError, match="ttl"):
        RedisTokenStore(raw, ttl=0)


def test_a_store_opened_from_a_url_closes_its_client(redis_url: str, raw: redis.Redis) -> None:
    def connected() -> list[str]:
        return [client["name"] for client in raw.client_list() if client["name"] == "by-url"]

    store = RedisTokenStore.from_url(f"{redis_url}?client_name=by-url", prefix="by-url:")
    store.save(KEY, fresh_tokens())
    assert connected() == ["by-url"]
    assert store.redis.connection_pool.connection_kwargs["socket_timeout"] == 5.0
    store.close()
    wait_until(lambda: connected() == [], "the server to see the connection closed")
    assert raw.exists(f"by-url:tokens:{KEY}") == 1  # written for good
    lent = RedisTokenStore(raw)
    lent.close()  # the app's client stays usable
    assert lent.load(KEY) is None
    assert raw.ping()


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


# -- the manager over Redis ------------------------------------------------------------------


@pytest.fixture
def provider() -> StrictFake:
    return StrictFake()


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


def test_the_manager_refreshes_only_when_due_and_saves_before_returning(
    kt: keyturn.Keyturn, store: RedisTokenStore, provider: StrictFake, clock: FakeClock
) -> None:
    manager = TokenManager(kt, store)
    manager.save(KEY, fresh_tokens())
    assert manager.get_access_token(KEY) == "fake-at-signin"
    assert provider.refreshes == 0
    clock.advance(3600 - 60)  # inside the 60 s leeway
    assert manager.get_access_token(KEY) == "fake-at-1"
    row = store.load(KEY)  # already in Redis when the call returned
    assert row is not None
    assert row.version == 2
    assert row.tokens.access_token.get_secret_value() == "fake-at-1"
    assert row.tokens.refresh_token is not None
    assert row.tokens.refresh_token.get_secret_value() == "fake-rt-1"
    assert row.tokens.id_token == fresh_tokens().id_token
    assert manager.get_access_token(KEY) == "fake-at-1"
    assert provider.refreshes == 1
    with pytest.raises(TokenNotFoundError):
        manager.get_access_token("nobody")


def test_a_permanent_failure_keeps_the_tokens_and_is_not_retried(
    kt: keyturn.Keyturn, store: RedisTokenStore, provider: StrictFake, clock: FakeClock
) -> None:
    manager = TokenManager(kt, store)
    manager.save(KEY, due_tokens())
    provider.live.clear()  # revoked at the provider
    with pytest.raises(keyturn.OAuthError) as caught:
        manager.get_access_token(KEY)
    assert caught.value.permanent
    row = store.load(KEY)
    assert row is not None
    assert row.tokens == due_tokens()
    assert row.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
    clock.advance(3600)
    with pytest.raises(keyturn.ProviderError) as again:
        manager.get_access_token(KEY)
    assert again.value.error == "invalid_grant"
    assert provider.refreshes == 1
    manager.save(KEY, fresh_tokens(refresh="fake-rt-new").model_copy(update={"expires_at": None}))
    assert manager.get_access_token(KEY) == "fake-at-signin"


def test_a_transient_failure_keeps_the_tokens_and_the_next_call_retries(
    kt: keyturn.Keyturn, store: RedisTokenStore, provider: StrictFake
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
    assert row.error is None
    assert manager.get_access_token(KEY) == "fake-at-1"
    assert provider.refreshes == 2
    row = store.load(KEY)
    assert row is not None
    assert row.failure is None


def test_a_transient_failure_before_expiry_hands_out_the_current_token(
    kt: keyturn.Keyturn, store: RedisTokenStore, provider: StrictFake, clock: FakeClock
) -> None:
    manager = TokenManager(kt, store)
    manager.save(KEY, fresh_tokens())
    clock.advance(3600 - 30)  # due, with 30 s of life left
    provider.failures.append((502, {"error": "server_error"}))
    assert manager.get_access_token(KEY) == "fake-at-signin"
    assert provider.refreshes == 1
    row = store.load(KEY)
    assert row is not None
    assert row.failure is not None
    assert row.failure.error == "server_error"


def test_threads_of_two_managers_on_one_server_refresh_once(
    raw: redis.Redis, provider: StrictFake, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
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
            managers.append(TokenManager(client, RedisTokenStore(raw)))
        managers[0].save(KEY, due_tokens())
        with ThreadPoolExecutor(max_workers=16) as pool:
            tokens = list(pool.map(lambda n: managers[n % 2].get_access_token(KEY), range(64)))
    assert set(tokens) == {"fake-at-1"}
    assert provider.refreshes == 1
    assert provider.reuse_detected == 0


async def test_tasks_of_one_async_manager_refresh_once(
    store: RedisTokenStore, provider: StrictFake, clock: FakeClock, pm: KeyturnPluginManager
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
        assert await manager.delete(KEY) is True
    assert set(tokens) == {"fake-at-1"}
    assert provider.refreshes == 1
    assert row is not None
    assert row.version == 2


def test_a_caller_waits_for_the_lease_and_uses_what_the_holder_saved(
    kt: keyturn.Keyturn, store: RedisTokenStore, provider: StrictFake
) -> None:
    manager = TokenManager(kt, store, lock_timeout=GUARD)
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
    kt: keyturn.Keyturn, store: RedisTokenStore, provider: StrictFake
) -> None:
    manager = TokenManager(kt, store, lock_timeout=0.05)
    manager.save(KEY, due_tokens())
    assert store.acquire(KEY, 60) is not None
    with pytest.raises(LockTimeoutError):
        manager.get_access_token(KEY)
    assert provider.refreshes == 0


def test_a_sign_in_during_a_refresh_is_not_overwritten(
    store: RedisTokenStore, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    managers: list[TokenManager] = []

    def sign_in_meanwhile() -> None:  # runs while the refresh request is out
        managers[0].save(KEY, fresh_tokens("fake-at-newer-sign-in", "fake-rt-newer"))

    with (
        httpx.Client(transport=provider.handler(sign_in_meanwhile)) as http,
        keyturn.Keyturn(
            CREDENTIALS, http_client=http, clock=clock, plugin_manager=pm, environ={}
        ) as client,
    ):
        managers.append(TokenManager(client, store))
        managers[0].save(KEY, due_tokens())
        assert managers[0].get_access_token(KEY) == "fake-at-1"
    row = store.load(KEY)
    assert row is not None
    assert row.tokens.access_token.get_secret_value() == "fake-at-newer-sign-in"
    assert row.version == 2


# -- processes sharing one server ------------------------------------------------------------


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
    """A separate process: one manager on the shared server, one refresh of KEY."""
    store = CrashingRedisStore.from_url(url, prefix=prefix)
    store.crash = crash
    provider = keyturn.ProviderSpec.model_validate(spec)
    with keyturn.Keyturn({provider.id: credentials}, providers=[provider], environ={}) as client:
        manager = TokenManager(client, store, lease=lease, lock_timeout=20)
        if start is not None:
            start.wait()
        try:
            results.put(("ok", manager.get_access_token(KEY)))
        except keyturn.KeyturnError as exc:
            results.put(("error", type(exc).__name__))
    store.close()


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
def prefix(raw: redis.Redis) -> str:
    """A prefix of its own for a test whose children share the server."""
    return f"test-{uuid.uuid4().hex[:8]}:"


def test_two_processes_refresh_once_against_the_emulator(
    redis_url: str, raw: redis.Redis, prefix: str
) -> None:
    from keyturn.emulator import Emulator

    with Emulator(latency=0.3) as emu:
        spec = emu.spec("strict")
        secret = emu.credentials.client_secret
        assert secret is not None
        credentials = (emu.credentials.client_id, secret.get_secret_value())
        with keyturn.Keyturn({"strict": credentials}, providers=[spec], environ={}) as kt:
            request = kt.authorize_url("strict", "http://127.0.0.1:9/callback")
            signed_in = kt.sign_in(request, emu.authorize(request.url), fetch_profile=False)
        store = RedisTokenStore(raw, prefix=prefix)
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


def crash_holding_the_lease(url: str, prefix: str, server: LocalProvider, lease: float) -> None:
    process, results = spawn(url, prefix, local_spec(server.url), lease=lease, crash=True)
    process.join()
    assert process.exitcode == CRASHED
    assert results.empty()
    results.close()


def parent_manager(
    raw: redis.Redis, prefix: str, url: str, **options: Any
) -> tuple[TokenManager, RedisTokenStore, keyturn.Keyturn]:
    store = RedisTokenStore(raw, prefix=prefix, **options)
    client = keyturn.Keyturn(
        {"localfake": LOCAL_CREDENTIALS}, providers=[local_spec(url)], environ={}
    )
    return TokenManager(client, store, lock_timeout=GUARD), store, client


def test_killed_holding_the_lease_the_lease_expires_and_the_next_caller_proceeds(
    redis_url: str, raw: redis.Redis, prefix: str
) -> None:
    fake = StrictFake()
    with LocalProvider(fake) as server:
        RedisTokenStore(raw, prefix=prefix).save(KEY, stored_due_tokens())
        crash_holding_the_lease(redis_url, prefix, server, lease=0.5)
        assert fake.refreshes == 0
        manager, store, client = parent_manager(raw, prefix, server.url)
        with client:
            assert manager.get_access_token(KEY) == "fake-at-1"  # once the lease ran out
        row = store.load(KEY)
    assert fake.refreshes == 1
    assert row is not None
    assert row.version == 2
    assert raw.exists(store.lease_key(KEY)) == 0  # released after the refresh


def test_killed_holding_the_lease_a_host_that_reclaims_proceeds_at_once(
    redis_url: str, raw: redis.Redis, prefix: str
) -> None:
    fake = StrictFake()
    with LocalProvider(fake) as server:
        RedisTokenStore(raw, prefix=prefix).save(KEY, stored_due_tokens())
        crash_holding_the_lease(redis_url, prefix, server, lease=60)
        waiting = RedisTokenStore(raw, prefix=prefix)
        assert waiting.acquire(KEY, 60) is None  # by default the dead lease stands
        manager, store, client = parent_manager(raw, prefix, server.url, reclaim_dead_leases=True)
        with client:
            assert manager.get_access_token(KEY) == "fake-at-1"
        row = store.load(KEY)
    assert fake.refreshes == 1
    assert row is not None
    assert row.version == 2
