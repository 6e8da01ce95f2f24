"""Who holds a lease, and when a store may take it over before it expires.

A lease's owner names the process that took it: ``host:pid:place:random``, where ``place`` is
the PID namespace and the boot (``<pid namespace inode>.<boot id>`` on Linux). A store takes a
lease over before it expires only from an owner it can prove dead: same host name, same PID
namespace, same boot, and no process with that pid. Two containers that share a volume and a
host name see each other's pids as missing; they must wait for the lease to expire instead of
both refreshing (a strict provider then revokes the grant).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from keyturn.stores import SQLiteTokenStore
from keyturn.stores.base import new_owner, owner_is_dead
from tests.conftest import FakeClock

from .test_stores import KEY

pytest_plugins = ["tests.stores._redis_server"]

HOST = socket.gethostname()
LEASE = 60.0


def this_place() -> str:
    """This process's PID namespace and boot, as lease owners spell them."""
    namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    inode = namespace.partition("[")[2].rstrip("]")
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return f"{inode}.{boot}"


def other_namespace() -> str:
    inode, _, boot = this_place().partition(".")
    return f"{int(inode) + 1}.{boot}"


def other_boot() -> str:
    inode = this_place().partition(".")[0]
    return f"{inode}.{uuid.uuid4()}"


def exited_pid() -> int:
    """The pid of a child that has exited and been reaped: no process has it now."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def owner(place: str | None, pid: int | None = None) -> str:
    """An owner string; ``place=None`` writes the form without a place (older keyturn)."""
    pid = exited_pid() if pid is None else pid
    if place is None:
        return f"{HOST}:{pid}:{uuid.uuid4().hex}"
    return f"{HOST}:{pid}:{place}:{uuid.uuid4().hex}"


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/ns/pid").exists(), reason="needs Linux's /proc (PID namespaces)"
)


def plant(path: Path, held_by: str, expires_at: float) -> None:
    """Write a lease as another process would have taken it."""
    with sqlite3.connect(path) as raw:
        raw.execute(
            "INSERT OR REPLACE INTO keyturn_leases (key, owner, expires_at) VALUES (?, ?, ?)",
            (KEY, held_by, expires_at),
        )
    raw.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sqlite(tmp_path: Path, clock: FakeClock) -> Iterator[SQLiteTokenStore]:
    with SQLiteTokenStore(tmp_path / "tokens.db", clock=clock) as store:
        yield store


# -- the owner string -------------------------------------------------------------------------


@needs_proc
def test_an_owner_names_host_pid_namespace_boot_and_is_unique() -> None:
    first, second = new_owner(), new_owner()
    host, pid, place, random = first.split(":")
    assert (host, pid, place) == (HOST, str(os.getpid()), this_place())
    assert len(random) == 32
    assert first != second


@needs_proc
@pytest.mark.parametrize(
    ("held_by", "dead"),
    [
        (lambda: owner(this_place()), True),
        (lambda: owner(this_place(), os.getpid()), False),  # this very process
        (lambda: owner(this_place(), 1), False),  # alive (init), or not ours to signal
        (lambda: owner(other_namespace()), False),  # another container on this host
        (lambda: owner(other_boot()), False),  # this host before a reboot, or another host
        (lambda: owner(None), False),  # the form without a place: cannot be proven
        (lambda: owner(""), False),  # a process that could not tell its place
        (lambda: f"other-host:{exited_pid()}:{this_place()}:{uuid.uuid4().hex}", False),
        (lambda: "garbage", False),
        (lambda: f"{HOST}:not-a-pid:{this_place()}:x", False),
    ],
    ids=[
        "same-place-exited",
        "this-process",
        "pid-1",
        "other-namespace",
        "other-boot",
        "no-place",
        "empty-place",
        "other-host",
        "garbage",
        "bad-pid",
    ],
)
def test_an_owner_is_dead_only_when_that_can_be_proven(held_by: object, dead: bool) -> None:
    assert callable(held_by)
    assert owner_is_dead(held_by()) is dead


# -- SQLite ------------------------------------------------------------------------------------


@needs_proc
@pytest.mark.parametrize(
    "place", [other_namespace, other_boot, lambda: None], ids=["namespace", "boot", "no-place"]
)
def test_sqlite_waits_for_the_expiry_of_a_lease_it_cannot_prove_dead(
    sqlite: SQLiteTokenStore, clock: FakeClock, place: object
) -> None:
    # Same host name, a pid that does not exist here: in another PID namespace (a container
    # sharing the volume), after a reboot, or written by a keyturn that did not say where.
    assert callable(place)
    plant(Path(sqlite.path), owner(place()), clock() + LEASE)
    assert sqlite.acquire(KEY, LEASE) is None
    clock.advance(LEASE - 1)
    assert sqlite.acquire(KEY, LEASE) is None
    clock.advance(1)
    assert sqlite.acquire(KEY, LEASE) is not None  # expired: anyone may take it


@needs_proc
def test_sqlite_takes_over_at_once_a_lease_whose_owner_is_proven_dead(
    sqlite: SQLiteTokenStore, clock: FakeClock
) -> None:
    plant(Path(sqlite.path), owner(this_place()), clock() + LEASE)
    taken = sqlite.acquire(KEY, LEASE)
    assert taken is not None
    assert sqlite.acquire(KEY, LEASE) is None  # held by this process now
    plant(Path(sqlite.path), owner(this_place(), os.getpid()), clock() + LEASE)
    assert sqlite.acquire(KEY, LEASE) is None  # a live owner keeps it


@needs_proc
def test_sqlite_waits_for_expiry_whatever_the_owner_when_told_not_to_reclaim(
    tmp_path: Path, clock: FakeClock
) -> None:
    with SQLiteTokenStore(tmp_path / "t.db", clock=clock, reclaim_dead_leases=False) as store:
        assert store.reclaim_dead_leases is False
        plant(tmp_path / "t.db", owner(this_place()), clock() + LEASE)
        assert store.acquire(KEY, LEASE) is None
        clock.advance(LEASE)
        assert store.acquire(KEY, LEASE) is not None
    with SQLiteTokenStore(tmp_path / "t.db", clock=clock) as default:
        assert default.reclaim_dead_leases is True


# -- Redis -------------------------------------------------------------------------------------


@needs_proc
@pytest.mark.redis
def test_redis_reclaims_only_a_lease_whose_owner_is_proven_dead(
    redis_client: redis.Redis,
) -> None:
    from keyturn.stores.redis import RedisTokenStore

    store = RedisTokenStore(redis_client, reclaim_dead_leases=True)
    name = store.lease_key(KEY)
    for foreign in (owner(other_namespace()), owner(other_boot()), owner(None)):
        redis_client.set(name, foreign, px=60_000)
        assert store.acquire(KEY, LEASE) is None
        assert redis_client.get(name) == foreign.encode()
    redis_client.set(name, owner(this_place()), px=60_000)
    taken = store.acquire(KEY, LEASE)
    assert taken is not None
    assert redis_client.get(name) == taken.encode()
