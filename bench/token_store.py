"""``TokenManager.get_access_token`` on a valid token, against reading the row by hand.

Every request of a server-side app that keeps its tokens in a store asks the manager for an
access token, and almost every time the stored one is still valid: no lease, no refresh,
just a read. This benchmark times that read through :class:`~keyturn.stores.TokenManager`
against the least a hand-written version can do with the same row:

* SQLite (a file in a temporary folder): ``SELECT`` of the row's columns with :mod:`sqlite3`
  on a connection of its own to the same file, then ``json.loads`` of the tokens column and
  the access token taken out of it;
* Redis (a ``redis-server`` started on a free loopback port, persistence off): ``HMGET`` of
  the row's fields with redis-py on the same server and key, then the same ``json.loads``.

Both sides run in alternating rounds in one process (the Redis server is another process on
this machine, so its share of the time is the same for both).

The manager reads the row on every call but parses and validates its tokens only when the row
changed since its last read (:mod:`keyturn.stores.cache`), where the hand-written read parses
every time; so the manager is also timed with ``cache_size=0``, parsing every read as the
baseline does, to show what that costs. The async manager is timed too, against the same
hand-written reads awaited through ``asyncio.to_thread`` (what it does with a store call).
Those two pairs have no target. If ``redis-server`` is not on the ``PATH`` the
Redis rows are skipped and the output says why.

Run: ``python -m bench.token_store [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import socket
import sqlite3
import string
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import keyturn
from keyturn.stores import AsyncTokenManager, SQLiteTokenStore, TokenManager, TokenStore
from keyturn.stores.cache import DEFAULT_CACHE_SIZE

from ._report import Result, aper_call_pair, parse_args, per_call_pair, print_ratio

NOW = 1_800_000_000
KEY = "user-1"
# Token-like text of a realistic length (Google's access tokens are about 170 characters).
_RANDOM = random.Random(0)
ACCESS = "bench-fake-" + "".join(_RANDOM.choices(string.ascii_letters + string.digits, k=160))
REFRESH = "bench-fake-" + "".join(_RANDOM.choices(string.ascii_letters + string.digits, k=90))
SCOPE = ("openid", "email", "profile")
#: Loopback only, nothing written to disk (as the tests start it).
SERVER_SETTINGS = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
#: Seconds to wait for redis-server to answer; a guard against a hang.
STARTUP = 10.0


class Sizes(NamedTuple):
    """Calls per round (sync, async) and rounds per side."""

    number: int
    async_number: int
    rounds: int


def bench_tokens() -> keyturn.TokenSet:
    """A valid, not-due token set (one hour left, the client's clock standing still)."""
    return keyturn.TokenSet(
        provider="google",
        access_token=ACCESS,
        refresh_token=REFRESH,
        expires_at=NOW + 3600,
        scope=SCOPE,
    )


def bench_client() -> keyturn.Keyturn:
    return keyturn.Keyturn(
        {"google": ("bench-client", "bench-secret-fake")}, clock=lambda: float(NOW), environ={}
    )


def bench_async_client() -> keyturn.AsyncKeyturn:
    return keyturn.AsyncKeyturn(
        {"google": ("bench-client", "bench-secret-fake")}, clock=lambda: float(NOW), environ={}
    )


def check(access_token: str) -> None:
    """Both sides must hand back the stored access token."""
    if access_token != ACCESS:
        raise RuntimeError("the benchmark read a different access token than it stored")


def time_pair(
    store: TokenStore,
    by_hand: Callable[[], str],
    number: int,
    rounds: int,
    cache_size: int = DEFAULT_CACHE_SIZE,
) -> tuple[float, float]:
    """Median seconds per call: the hand-written read, then ``get_access_token``."""
    client = bench_client()
    try:
        manager = TokenManager(client, store, cache_size=cache_size)
        manager.save(KEY, bench_tokens())
        check(manager.get_access_token(KEY))
        check(by_hand())
        return per_call_pair(
            by_hand, lambda: manager.get_access_token(KEY), number=number, rounds=rounds
        )
    finally:
        client.close()


def time_async_pair(
    store: TokenStore,
    by_hand: Callable[[], str],
    number: int,
    rounds: int,
) -> tuple[float, float]:
    """As :func:`time_pair` for :class:`AsyncTokenManager`, the hand-written read in a thread."""

    async def measure() -> tuple[float, float]:
        async with bench_async_client() as client:
            manager = AsyncTokenManager(client, store)

            async def hand() -> None:
                check(await asyncio.to_thread(by_hand))

            async def through_keyturn() -> None:
                check(await manager.get_access_token(KEY))

            return await aper_call_pair(hand, through_keyturn, number=number, rounds=rounds)

    return asyncio.run(measure())


def report(
    name: str,
    store: TokenStore,
    by_hand: Callable[[], str],
    baseline_name: str,
    target: float,
    sizes: Sizes,
) -> dict[str, float]:
    """Time the sync pairs (with and without the row cache) and the async pair; print them."""
    hand, subject = time_pair(store, by_hand, sizes.number, sizes.rounds)
    ratio = print_ratio(
        f"token store read, {name}: get_access_token on a valid token (median per call)",
        Result(f"keyturn TokenManager.get_access_token ({name})", subject),
        Result(baseline_name, hand),
        key=f"token_store.{name}",
        target=target,
    )
    hand, subject = time_pair(store, by_hand, sizes.number, sizes.rounds, cache_size=0)
    uncached = print_ratio(
        f"token store read, {name}, every read parsed and validated (cache_size=0)",
        Result("keyturn TokenManager, cache_size=0", subject),
        Result(baseline_name, hand),
    )
    hand, subject = time_async_pair(store, by_hand, sizes.async_number, sizes.rounds)
    async_ratio = print_ratio(
        f"token store read, {name}, async: both sides through a worker thread",
        Result(f"keyturn AsyncTokenManager.get_access_token ({name})", subject),
        Result(baseline_name + " in to_thread", hand),
    )
    return {
        f"token_store.{name}": ratio,
        f"token_store.{name}.uncached": uncached,
        f"token_store.{name}.async": async_ratio,
    }


def sqlite_rows(directory: Path, sizes: Sizes) -> dict[str, float]:
    """The SQLite pair: the store's file, read by hand through a connection of its own."""
    path = directory / "tokens.db"
    with SQLiteTokenStore(path) as store:
        raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:

            def by_hand() -> str:
                row = raw.execute(
                    "SELECT version, tokens, failure, data FROM keyturn_tokens WHERE key = ?",
                    (KEY,),
                ).fetchone()
                text: str = json.loads(row[1])["access_token"]
                return text

            return report(
                "sqlite", store, by_hand, "SELECT + json.loads (sqlite3, by hand)", 1.3, sizes
            )
        finally:
            raw.close()


def free_port() -> int:
    """A loopback port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def redis_server(binary: str, directory: Path) -> Iterator[str]:
    """A redis-server on a free loopback port, persistence off, stopped on exit; its URL."""
    import redis

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with (directory / "redis.log").open("wb") as log:
        process = subprocess.Popen(
            [binary, "--port", str(port), *SERVER_SETTINGS, "--dir", str(directory)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            probe = redis.Redis.from_url(url, socket_connect_timeout=1)
            try:
                if probe.ping():
                    break
            except redis.ConnectionError:
                pass
            finally:
                probe.close()
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start; see its log in " + str(directory))
            time.sleep(0.01)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(STARTUP)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def redis_rows(directory: Path, sizes: Sizes) -> dict[str, float]:
    """The Redis pair, or nothing (and a line saying why) without ``redis-server``."""
    binary = shutil.which("redis-server")
    if binary is None:
        print("token store read, redis: skipped, redis-server is not on the PATH")
        return {}
    import redis

    from keyturn.stores.redis import RedisTokenStore

    with redis_server(binary, directory) as url:
        client: Any = redis.Redis.from_url(url)
        raw: Any = redis.Redis.from_url(url)
        try:
            store = RedisTokenStore(client)
            row_key = store.row_key(KEY)
            fields = ["version", "tokens", "failure", "data"]

            def by_hand() -> str:
                row = raw.hmget(row_key, fields)
                text: str = json.loads(row[1])["access_token"]
                return text

            return report(
                "redis", store, by_hand, "HMGET + json.loads (redis-py, by hand)", 1.1, sizes
            )
        finally:
            raw.close()
            client.close()


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Time both stores and print the ratios; ``token_store.sqlite`` / ``.redis`` (+ ``.async``)."""
    quick = parse_args(__doc__, argv).quick
    # Short rounds, many of them: the Redis server and the other work on a small machine
    # come and go, and the median of many alternating rounds shrugs that off.
    sqlite_sizes = Sizes(200, 20, 3) if quick else Sizes(2_000, 200, 15)
    redis_sizes = Sizes(50, 20, 3) if quick else Sizes(200, 100, 25)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="keyturn-bench-") as name:
        directory = Path(name)
        results.update(sqlite_rows(directory, sqlite_sizes))
        results.update(redis_rows(directory, redis_sizes))
    return results


if __name__ == "__main__":
    main()
