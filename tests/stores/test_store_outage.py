"""A store that fails right after the provider rotated the refresh token: nothing is lost.

The provider answers a refresh with new tokens and takes the old refresh token back; if the
store then cannot take the new ones (a full disk, Redis gone), the process is the only holder
of the live refresh token. These tests check that the process keeps and uses the new tokens,
never waits on the lease it left behind, never sends the spent refresh token, and saves the
new tokens as soon as the store takes writes again. SQLite's full disk is a write failure
injected in a store subclass (this machine cannot mount a small file system for a test);
Redis is a real redis-server, killed and started again on the same port and files.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import keyturn
from keyturn.plugins import KeyturnPluginManager
from keyturn.stores import (
    AsyncTokenManager,
    SQLiteTokenStore,
    StoredTokens,
    TokenManager,
    TokenStore,
)
from tests.conftest import CREDENTIALS, FakeClock, StrictFake, due_tokens

from ._redis_server import GUARD, answers_ping, free_port, wait_until
from .test_stores import KEY, fresh_tokens

pytest_plugins = ["tests.stores._redis_server"]

DISK_FULL = "database or disk is full"
#: Short enough that a caller waiting on a lease fails the test quickly with LockTimeoutError.
LOCK_TIMEOUT = 0.3


class FullDisk(SQLiteTokenStore):
    """A SQLite store whose writes fail while ``full`` is set, as on a full disk.

    Reads still work (SQLite reads a full disk fine); every write raises what SQLite raises
    then. ``failing`` names the writes that fail (all of them by default).
    """

    WRITES = frozenset({"save", "delete", "acquire", "release"})

    def __init__(self, path: Path, **options: Any) -> None:
        super().__init__(path, **options)
        self.full = False
        #: Fill the disk while the provider answers the next refresh (:meth:`during_refresh`).
        self.fill_next = False
        self.failing: frozenset[str] = self.WRITES
        self.failed: list[str] = []

    def during_refresh(self) -> None:
        """Runs while the provider answers a refresh: the disk fills up if armed to."""
        if self.fill_next:
            self.fill_next = False
            self.full = True

    def _write(self, name: str) -> None:
        if self.full and name in self.failing:
            self.failed.append(name)
            raise sqlite3.OperationalError(DISK_FULL)

    def save(self, key: str, tokens: keyturn.TokenSet, **kwargs: Any) -> StoredTokens | None:
        self._write("save")
        return super().save(key, tokens, **kwargs)

    def delete(self, key: str) -> bool:
        self._write("delete")
        return super().delete(key)

    def acquire(self, key: str, lease: float) -> str | None:
        self._write("acquire")
        return super().acquire(key, lease)

    def release(self, key: str, owner: str) -> None:
        self._write("release")
        super().release(key, owner)


def refreshed(row: StoredTokens | None) -> tuple[str, str | None]:
    """The access and refresh token a row holds."""
    assert row is not None
    refresh = row.tokens.refresh_token
    return (
        row.tokens.access_token.get_secret_value(),
        None if refresh is None else refresh.get_secret_value(),
    )


class Harness:
    """A manager (blocking or async) over ``store``, refreshing at ``provider`` on ``clock``.

    ``during_refresh`` runs while the provider answers a refresh, after it rotated nothing yet:
    the place to make the store fail "right after" the answer.
    """

    def __init__(
        self,
        kind: str,
        store: TokenStore,
        provider: StrictFake,
        clock: FakeClock,
        pm: KeyturnPluginManager,
        during_refresh: Callable[[], None] = lambda: None,
        lease: float = 60.0,
    ) -> None:
        self.kind = kind
        self.lease = lease
        self.store = store
        self.provider = provider
        self.clock = clock
        self.pm = pm
        self.during_refresh = during_refresh
        self.loop = asyncio.new_event_loop() if kind == "async" else None
        self.manager: Any = None
        self._close: list[Callable[[], Any]] = []

    def __enter__(self) -> Harness:
        options: dict[str, Any] = {
            "clock": self.clock,
            "plugin_manager": self.pm,
            "environ": {},
        }
        if self.loop is None:
            http = httpx.Client(transport=self.provider.handler(self.during_refresh))
            client = keyturn.Keyturn(CREDENTIALS, http_client=http, **options)
            self.manager = TokenManager(
                client, self.store, lease=self.lease, lock_timeout=LOCK_TIMEOUT
            )
            self._close = [client.close, http.close]
        else:

            async def hold() -> None:
                self.during_refresh()

            ahttp = httpx.AsyncClient(transport=self.provider.async_handler(hold))
            aclient = keyturn.AsyncKeyturn(CREDENTIALS, http_client=ahttp, **options)
            self.manager = AsyncTokenManager(
                aclient, self.store, lease=self.lease, lock_timeout=LOCK_TIMEOUT
            )
            self._close = [lambda: self.run(aclient.aclose()), lambda: self.run(ahttp.aclose())]
        return self

    def __exit__(self, *exc_info: object) -> None:
        for close in self._close:
            close()
        if self.loop is not None:
            self.loop.close()

    def run(self, value: Any) -> Any:
        if self.loop is None:
            return value
        return self.loop.run_until_complete(value)

    def save(self, tokens: keyturn.TokenSet, **kwargs: Any) -> StoredTokens:
        row: StoredTokens = self.run(self.manager.save(KEY, tokens, **kwargs))
        return row

    def load(self) -> StoredTokens | None:
        row: StoredTokens | None = self.run(self.manager.load(KEY))
        return row

    def delete(self) -> bool:
        return bool(self.run(self.manager.delete(KEY)))

    def access_token(self) -> str:
        return str(self.run(self.manager.get_access_token(KEY)))

    def attempt(self) -> str:
        """The access token, or the name of the error the call raised."""
        try:
            return self.access_token()
        except Exception as exc:
            return type(exc).__name__


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def disk(tmp_path: Path, clock: FakeClock) -> Iterator[FullDisk]:
    """A store whose disk fills up while the provider answers the first refresh."""
    # Leases expire on the same fake clock as the tokens, so a test can outlast one.
    store = FullDisk(tmp_path / "tokens.db", clock=clock)
    store.fill_next = True
    try:
        yield store
    finally:
        store.close()


def once(action: Callable[[], None]) -> Callable[[], None]:
    done: list[bool] = []

    def first_time_only() -> None:
        if not done:
            done.append(True)
            action()

    return first_time_only


# == SQLite, its disk full right after the provider rotated ====================================


def test_rotated_tokens_outlive_a_full_disk_and_are_saved_when_it_has_room(
    kind: str, disk: FullDisk, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    with Harness(kind, disk, provider, clock, pm, during_refresh=disk.during_refresh) as app:
        app.save(due_tokens())
        # The provider rotates (fake-rt-0 is spent), then the save and the release fail.
        first = app.attempt()
        assert "save" in disk.failed and provider.refreshes == 1
        # Still full: the retry uses the new tokens; it neither waits on the lease this
        # process left behind nor asks the provider again.
        retry = app.attempt()
        assert refreshed(disk.load(KEY)) == ("fake-at-0", "fake-rt-0")  # nothing saved yet
        # Past the lease and the client's reuse window, with room on the disk again: the
        # next call saves the tokens it kept and sends nothing.
        clock.advance(61)
        disk.full = False
        after = app.attempt()
        row = disk.load(KEY)
        assert (first, retry, after) == ("fake-at-1", "fake-at-1", "fake-at-1")
        assert provider.refreshes == 1
        assert provider.reuse_detected == 0
        assert refreshed(row) == ("fake-at-1", "fake-rt-1")
        assert row is not None and row.failure is None
        assert disk.acquire(KEY, 60) is not None  # the lease kept for the save was given back
        # The saved refresh token is the live one: the next refresh works.
        clock.advance(3600)
        assert app.access_token() == "fake-at-2"
        assert provider.refreshes == 2
        assert provider.reuse_detected == 0
        assert refreshed(disk.load(KEY)) == ("fake-at-2", "fake-rt-2")


def test_tokens_kept_for_a_full_disk_are_refreshed_with_their_own_refresh_token(
    kind: str, disk: FullDisk, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    with Harness(kind, disk, provider, clock, pm, during_refresh=disk.during_refresh) as app:
        app.save(due_tokens())
        assert app.attempt() == "fake-at-1"
        # An hour later the disk is still full and the kept access token is due: it is
        # refreshed with the refresh token that came with it, never with the stored one.
        clock.advance(3600)
        assert app.attempt() == "fake-at-2"
        assert provider.refreshes == 2
        assert provider.reuse_detected == 0
        assert refreshed(disk.load(KEY)) == ("fake-at-0", "fake-rt-0")
        disk.full = False
        assert app.access_token() == "fake-at-2"
        assert refreshed(disk.load(KEY)) == ("fake-at-2", "fake-rt-2")
    assert provider.refreshes == 2


def test_the_kept_tokens_are_what_a_load_shows_until_saved(
    kind: str, disk: FullDisk, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    with Harness(kind, disk, provider, clock, pm, during_refresh=disk.during_refresh) as app:
        signed_in = app.save(due_tokens(), data={"user": "Ada"})
        assert app.attempt() == "fake-at-1"
        shown = app.load()
        assert shown is not None
        assert refreshed(shown) == ("fake-at-1", "fake-rt-1")
        assert shown.data == {"user": "Ada"}
        assert shown.version == signed_in.version  # what the pending save compares against
        assert shown.failure is None
        disk.full = False
        assert app.access_token() == "fake-at-1"
        saved = app.load()
        assert saved is not None
        assert refreshed(saved) == ("fake-at-1", "fake-rt-1")
        assert saved.data == {"user": "Ada"}
        assert saved.version > signed_in.version


def test_a_sign_in_or_out_replaces_tokens_still_waiting_to_be_saved(
    kind: str, disk: FullDisk, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    with Harness(kind, disk, provider, clock, pm, during_refresh=disk.during_refresh) as app:
        app.save(due_tokens())
        assert app.attempt() == "fake-at-1"
        disk.full = False
        app.save(fresh_tokens("fake-at-new-sign-in", "fake-rt-new"))
        assert app.access_token() == "fake-at-new-sign-in"
        assert refreshed(disk.load(KEY)) == ("fake-at-new-sign-in", "fake-rt-new")
        probe = disk.acquire(KEY, 60)
        assert probe is not None  # the lease kept for the old tokens went with them
        disk.release(KEY, probe)
        # Kept again (the disk fills up during the next refresh), then signed out.
        clock.advance(3600)
        disk.fill_next = True
        provider.live.add("fake-rt-new")
        assert app.attempt() == "fake-at-2"
        assert refreshed(disk.load(KEY)) == ("fake-at-new-sign-in", "fake-rt-new")
        disk.full = False
        assert app.delete() is True
        assert app.load() is None
        assert app.attempt() == "TokenNotFoundError"
        assert disk.load(KEY) is None
    assert provider.reuse_detected == 0


def test_a_lease_whose_release_failed_does_not_hold_up_the_next_refresh(
    kind: str, disk: FullDisk, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    disk.fill_next = False
    disk.failing = frozenset({"release"})

    def release_fails() -> None:
        disk.full = True

    # A lease longer than the tokens live: it is still there when they are due again.
    lease = 7200.0
    with Harness(
        kind, disk, provider, clock, pm, during_refresh=once(release_fails), lease=lease
    ) as app:
        app.save(due_tokens())
        assert app.attempt() == "fake-at-1"  # saved; only giving the lease back failed
        assert disk.failed == ["release"]
        assert refreshed(disk.load(KEY)) == ("fake-at-1", "fake-rt-1")
        disk.full = False
        # Due again while the lease this process failed to give back has not expired.
        clock.advance(3600 - 59)
        assert app.attempt() == "fake-at-2"
        assert provider.refreshes == 2
        assert provider.reuse_detected == 0


def test_a_failure_that_cannot_be_recorded_is_raised_and_not_lost(
    kind: str, disk: FullDisk, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    provider.live.clear()  # revoked at the provider
    with Harness(kind, disk, provider, clock, pm, during_refresh=disk.during_refresh) as app:
        app.save(due_tokens())
        # The provider's refusal is what the caller sees, not the store's error.
        assert app.attempt() == "OAuthError"
        clock.advance(3600)  # past the client's memory of the refusal
        assert app.attempt() == "ProviderError"  # from the kept failure: no request
        assert provider.refreshes == 1
        disk.full = False
        assert app.attempt() == "ProviderError"
        row = disk.load(KEY)
        assert row is not None
        assert row.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
        assert row.tokens == due_tokens()
    assert provider.refreshes == 1


def test_threads_share_the_kept_tokens(
    disk: FullDisk, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    with Harness("sync", disk, provider, clock, pm, during_refresh=disk.during_refresh) as app:
        app.save(due_tokens())
        with ThreadPoolExecutor(max_workers=8) as pool:
            during = list(pool.map(lambda _: app.attempt(), range(32)))
        disk.full = False
        with ThreadPoolExecutor(max_workers=8) as pool:
            after = list(pool.map(lambda _: app.attempt(), range(32)))
    assert set(during) == {"fake-at-1"}
    assert set(after) == {"fake-at-1"}
    assert provider.refreshes == 1
    assert refreshed(disk.load(KEY)) == ("fake-at-1", "fake-rt-1")


def test_a_blocking_and_an_async_manager_on_one_store_share_the_kept_tokens(
    disk: FullDisk, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    with (
        Harness("sync", disk, provider, clock, pm, during_refresh=disk.during_refresh) as blocking,
        Harness("async", disk, provider, clock, pm) as other,
    ):
        blocking.save(due_tokens())
        assert blocking.attempt() == "fake-at-1"
        # The async manager of the same process sees the tokens the blocking one kept.
        assert other.attempt() == "fake-at-1"
        clock.advance(61)
        disk.full = False
        assert other.attempt() == "fake-at-1"
        assert refreshed(disk.load(KEY)) == ("fake-at-1", "fake-rt-1")
    assert provider.refreshes == 1
    assert provider.reuse_detected == 0


def test_a_sign_in_during_an_outage_is_not_overwritten_by_kept_tokens(
    disk: FullDisk, clock: FakeClock, pm: KeyturnPluginManager, tmp_path: Path
) -> None:
    provider = StrictFake()
    with Harness("sync", disk, provider, clock, pm, during_refresh=disk.during_refresh) as app:
        app.save(due_tokens())
        assert app.attempt() == "fake-at-1"
        disk.full = False
        # Another process signs the user in again meanwhile.
        with SQLiteTokenStore(tmp_path / "tokens.db") as other:
            other.save(KEY, fresh_tokens("fake-at-other-sign-in", "fake-rt-other"))
        assert app.access_token() == "fake-at-other-sign-in"
        assert refreshed(disk.load(KEY)) == ("fake-at-other-sign-in", "fake-rt-other")


# == Redis, killed right after the provider rotated, then started again ========================


class RedisProcess:
    """A redis-server that writes every change to its append-only file before answering, so
    that it can be killed and started again on the same port with the same rows."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is needed for this test")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        settings = ["--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        durable = ["--appendonly", "yes", "--appendfsync", "always"]
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, *settings, *durable, "--dir", str(self.directory)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: answers_ping(self.url), "redis-server to answer")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write; what a crash or an OOM kill does."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(GUARD)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(GUARD)
            self.process = None


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.redis
def test_rotated_tokens_outlive_a_redis_restart_and_are_saved_when_it_is_back(
    kind: str, redis_process: RedisProcess, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from keyturn.stores.redis import RedisTokenStore

    # No retries of its own: a call to the stopped server fails at once.
    client = redis.Redis.from_url(redis_process.url, retry=Retry(NoBackoff(), 0))
    store = RedisTokenStore(client)
    provider = StrictFake()
    with (
        contextlib.closing(client),
        Harness(kind, store, provider, clock, pm, during_refresh=once(redis_process.kill)) as app,
    ):
        app.save(due_tokens())
        first = app.attempt()  # the provider rotated, then Redis died: save and release fail
        assert provider.refreshes == 1
        retry = app.attempt()  # while it is down
        clock.advance(61)  # past the client's reuse window
        redis_process.start()
        after = app.attempt()
        row = store.load(KEY)
        assert (first, retry, after) == ("fake-at-1", "fake-at-1", "fake-at-1")
        assert provider.refreshes == 1
        assert provider.reuse_detected == 0
        assert refreshed(row) == ("fake-at-1", "fake-rt-1")
        assert client.exists(store.lease_key(KEY)) == 0  # the kept lease was given back
        clock.advance(3600)
        assert app.access_token() == "fake-at-2"
    assert provider.refreshes == 2
    assert provider.reuse_detected == 0


def test_an_async_caller_cancelled_during_the_outage_loses_nothing(
    disk: FullDisk, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    answering = threading.Event()
    go_on = threading.Event()

    def hold_the_answer() -> None:
        disk.during_refresh()
        answering.set()
        go_on.wait(GUARD)

    async def scenario(manager: AsyncTokenManager) -> list[str]:
        await manager.save(KEY, due_tokens())
        caller = asyncio.ensure_future(manager.get_access_token(KEY))
        await asyncio.to_thread(answering.wait, GUARD)
        caller.cancel()  # a client that hung up while the provider answered
        with contextlib.suppress(asyncio.CancelledError):
            await caller
        go_on.set()  # the refresh goes on in a task of its own; its save fails
        results = [await manager.get_access_token(KEY)]
        disk.full = False
        results.append(await manager.get_access_token(KEY))
        return results

    with Harness("async", disk, provider, clock, pm, during_refresh=hold_the_answer) as app:
        assert app.run(scenario(app.manager)) == ["fake-at-1", "fake-at-1"]
    assert provider.refreshes == 1
    assert refreshed(disk.load(KEY)) == ("fake-at-1", "fake-rt-1")


def test_a_transient_failure_kept_for_a_full_disk_is_retried_under_the_lease(
    kind: str, disk: FullDisk, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    provider = StrictFake()
    provider.failures.append((503, {"error": "temporarily_unavailable"}))
    disk.failing = frozenset({"save"})  # leases still work: only rows cannot be written
    with Harness(kind, disk, provider, clock, pm, during_refresh=disk.during_refresh) as app:
        app.save(due_tokens())
        assert app.attempt() == "OAuthError"  # transient, and the access token has expired
        # Another process holds the lease now: the retry waits for it, as any refresh does,
        # and gives up after the lock timeout without asking the provider.
        holder = disk.acquire(KEY, 60)
        assert holder is not None
        assert app.attempt() == "LockTimeoutError"
        assert provider.refreshes == 1
        disk.release(KEY, holder)
        disk.full = False
        assert app.access_token() == "fake-at-1"
        assert refreshed(disk.load(KEY)) == ("fake-at-1", "fake-rt-1")
    assert provider.refreshes == 2
    assert provider.reuse_detected == 0
