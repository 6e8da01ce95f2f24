"""The provider emulator in a process of its own, for the benchmarks that time round trips.

An emulator serving from a thread of the benchmark's own process shares its interpreter lock:
every time the client blocks on the socket the server thread takes the lock, and the client
gets it back only when the server releases it, so a round trip's wall time is mostly waiting
for the lock and the side that crosses the socket more often looks slower than it is. In a
child process the server has a CPU and an interpreter of its own, as a real provider does, and
its memory (the token families it keeps) is not counted as the client's.

The parent talks to the child over a pipe (:class:`Provider`); the child is stopped however the
benchmark ends.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

import keyturn
from keyturn_emulator import Emulator

from ._emulated import emulated_spec, sign_in

__all__ = ["Provider", "emulator_process", "rss"]


def rss() -> int:
    """This process's resident set size in bytes (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _serve(conn: Connection, profile: str, still: bool) -> None:
    """The child process: run an emulator and answer the parent's requests on ``conn``.

    Requests are tuples: ``("grants", n)`` answers ``n`` new grants of the profile as
    ``(access_token, refresh_token, scope)``; ``("sign_in",)`` the :class:`~keyturn.TokenSet`
    of one full sign-in; ``("counters",)`` the profile's counters; ``("reset",)`` zeroes them;
    ``("rss",)`` the child's resident size in bytes; ``("stop",)`` ends the process.
    """
    # A clock that stands still, at a moment no later than the client's, keeps the ID tokens
    # of a wave that outlasts the client's leeway (a loaded machine) from ever looking
    # "issued in the future" to a client whose own clock stands still too.
    started = float(int(time.time()))
    clock = (lambda: started) if still else time.time
    with Emulator(access_token_lifetime=3600, clock=clock) as emu:
        spec = emulated_spec(emu, profile)
        conn.send((spec, emu.credentials))
        while True:
            try:
                request = conn.recv()
            except EOFError:  # the benchmark ended without saying stop
                return
            if request[0] == "grants":
                answers = (emu.grant(profile) for _ in range(request[1]))
                conn.send([(a["access_token"], a["refresh_token"], a["scope"]) for a in answers])
            elif request[0] == "sign_in":
                conn.send(sign_in(emu, spec).tokens)
            elif request[0] == "counters":
                conn.send(emu.counters(profile))
            elif request[0] == "reset":
                emu.reset_counters()
                conn.send(None)
            elif request[0] == "rss":
                conn.send(rss())
            else:
                conn.send(None)
                return


class Provider:
    """The parent's handle on the emulator in its child process."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        spec, credentials = conn.recv()
        #: The profile's spec, its endpoints the child's.
        self.spec: keyturn.ProviderSpec = spec
        self.credentials: keyturn.ClientCredentials = credentials

    def ask(self, *request: Any) -> Any:
        """Send one request to the child (see :func:`_serve`) and return its answer."""
        self._conn.send(request)
        return self._conn.recv()

    def grants(self, count: int) -> list[tuple[str, str, str]]:
        """``count`` fresh grants: access token, refresh token, scope."""
        found: list[tuple[str, str, str]] = self.ask("grants", count)
        return found

    def sign_in(self) -> keyturn.TokenSet:
        """The tokens of one full sign-in (an ID token among them where the profile has one)."""
        tokens: keyturn.TokenSet = self.ask("sign_in")
        return tokens

    def counters(self) -> dict[str, int]:
        """What the emulator counted for the profile since the last reset."""
        found: dict[str, int] = self.ask("counters")
        return found


@contextmanager
def emulator_process(profile: str, *, still_clock: bool = False) -> Iterator[Provider]:
    """Start an emulator serving ``profile`` in a child process; stop it however the
    benchmark ends.

    :param profile: an emulator profile (``google``, ``strict``, ...).
    :param still_clock: the emulator's clock stands still from its start (see :func:`_serve`).
    """
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(child, profile, still_clock), daemon=True)
    process.start()
    child.close()
    try:
        yield Provider(parent)
        parent.send(("stop",))
        parent.recv()
    finally:
        parent.close()
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join()
