"""A real redis-server for the tests, as a pytest plugin.

A test module that needs it says ``pytest_plugins = ["tests.stores._redis_server"]`` and asks for
the ``redis_url`` or ``redis_client`` fixture; the test must carry the ``redis`` marker (the
root conftest refuses it at collection otherwise, and ``redis_url`` when the fixture is asked
for at run time, as a store fixture parametrised over Redis does). The server is started once
for the session, and only when a test asks for it, on a free loopback port with persistence off
and its files in a temporary folder. A missing ``redis-server`` fails the test: it is never
skipped.

Test modules also import its helpers (:func:`wait_until`, :data:`GUARD`) directly, so it may
already be imported when pytest loads it as a plugin; it holds no ``assert`` statement to
rewrite, and says so to pytest: PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

INSTALL = "apt-get update && apt-get install -y redis-server"
#: A guard against a hang, not a speed check.
GUARD = 10.0
#: Loopback only, nothing written to disk.
SERVER_SETTINGS = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no")


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
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the session, stopped at its end; its URL."""
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
def redis_url(request: pytest.FixtureRequest, redis_server: str) -> str:
    """The server's URL, for a test that carries the ``redis`` marker."""
    if request.node.get_closest_marker("redis") is None:
        pytest.fail(
            f"{request.node.nodeid} uses redis-server without the redis marker", pytrace=False
        )
    return redis_server


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client on an emptied database."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()
