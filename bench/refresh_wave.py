"""A refresh wave: 100,000 expired tokens at once, three callers each, then a late caller each.

What a busy app sees when a deploy, an outage or a common token lifetime makes many sessions
expire together. The provider is the emulator's ``strict`` profile: refresh tokens rotate,
and presenting one already rotated away revokes the whole token family (reuse detection).

* **The wave.** Every token gets three concurrent ``AsyncKeyturn.jwt`` callers (three tabs or
  requests of one session); at most :data:`CONCURRENCY` tokens are in flight at a time, all
  on one client. Expected: exactly one refresh request per token, every caller served.
* **The late callers.** When the whole wave is done, each token gets one more ``jwt`` caller
  still holding the old, now rotated, refresh token (a request that carried the old session
  cookie). Within ``refresh_reuse_window`` it must get the new tokens from the client's reuse
  cache: a request would be reuse, and the family would be revoked. So the cache holds one
  outcome per token of the wave at the end: every one of them, whatever their number.
* **Rate.** Refreshes per second of the wave against a raw ``AsyncClient.post`` loop: one
  POST per token with a fresh refresh token, the same form, the same concurrency, the same
  connection pool, the same emulator. Also this process's CPU time per refresh, which a busy
  machine disturbs less than the wall time. Both sides use the same HTTP library: httpx by
  default, httpx2 with ``--http httpx2``. httpcore 1.0's pool looks at every connection,
  and for each idle one counts them all again, each time it hands out a connection, so at
  hundreds in flight most of either side's CPU goes there (about 10 ms per request at 200
  on a small machine); httpcore2's pool does not, and a full wave takes half as long.
* **Memory.** The wave is run a second time on fresh tokens with :mod:`tracemalloc` on (it slows
  every allocation about fourfold, so the timed wave runs without it). Tracing starts after a
  warm-up, so what it counts is what the wave allocated and left behind, measured with the
  process's resident size three times: before the wave, after it with the reuse cache full, and
  after the window has passed. The client's clock stands still during the wave (as a test's
  ``FakeClock`` does), so every late caller is within the default 30 s window however long this
  machine takes; it is then moved past the window, which lets the cache drop every outcome. The
  emulator's clock stands still as well, from its start, so the ID tokens it signs never look
  issued in the future to the client. The bound: after the window, the heap may have grown by
  the connection pool's buffers (:data:`POOL_ALLOWANCE`) and :data:`SLACK_PER_TOKEN` bytes per
  token, nothing more; with the cache full, by what the cache is documented to cost per entry
  (:data:`CACHE_ENTRY`) on top of that. The resident size is printed, not bounded: the allocator
  keeps freed memory for reuse rather than handing it back at once (on glibc it is printed once
  more after ``malloc_trim(0)``, which hands back what malloc keeps; an arena of Python's own
  allocator goes back only when every block in it is free, so some stays). Beside them, the
  live blocks of Python's allocator (:func:`sys.getallocatedblocks`, cheap enough for any
  pass): once the window has passed there may be at most :data:`BLOCK_ALLOWANCE` more than
  before the wave, whatever its size. With ``--no-trace`` (the timed pass and the raw loop
  only) that is the memory bound.

The emulator runs in a child process: its state (the 100,000 token families it must keep to
detect reuse) is not keyturn's memory, and would otherwise be counted as the client's. Its
own resident size is printed beside. It also gives the server a CPU of its own.

The benchmark stops with an error when a count is wrong (a request more or less than one per
token, a failed caller, any reuse detected) or the memory bound is exceeded.

Run: ``python -m bench.refresh_wave [--quick] [--tokens N]`` (``--quick``: 10,000 tokens).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import importlib
import sys
import time
import tracemalloc
from array import array
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

import httpx

import keyturn
from keyturn.flows import basic_auth

from ._emulator_process import Provider, emulator_process, rss

PROFILE = "strict"
FULL_TOKENS = 100_000
QUICK_TOKENS = 10_000
#: Tokens being refreshed at once (each with three callers), and POSTs in flight in the raw
#: loop; also the size of each side's connection pool (httpx's default pool size).
CONCURRENCY = 100
#: The HTTP libraries either side may use (``--http``); both sides always use the same one.
HTTP_LIBRARIES = ("httpx", "httpx2")
#: Concurrent callers per token in the wave.
CALLERS = 3
#: Tokens run through both sides first, outside any measurement (imports, connections).
WARM_TOKENS = 400
TIMEOUT = 120.0
#: The heap a pool of :data:`CONCURRENCY` open connections may keep after the wave (buffers,
#: parser and stream state), plus what the first wave of that size warms up in asyncio.
POOL_ALLOWANCE = 8_000_000
#: What the heap may keep per token once the window has passed: nothing that scales with the
#: wave should remain, and 64 bytes is less than any per-token object would cost.
SLACK_PER_TOKEN = 64
#: How many more live blocks of Python's allocator (:func:`sys.getallocatedblocks`) than before
#: the wave there may be once the window has passed: the connection pool's and asyncio's
#: state, whatever the wave's size (a few hundred are measured). Anything the wave kept per
#: token would be at least one block per token.
BLOCK_ALLOWANCE = 5_000
#: What the reuse cache costs per cached refresh, as keyturn.singleflight documents it
#: (2.7 KB with a 470-character ID token), with 10% of slack.
CACHE_ENTRY = 2_970

MB = 1e6


# -- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """The traced heap, the resident size and the live memory blocks at one moment.

    ``blocks`` is :func:`sys.getallocatedblocks`: the blocks Python's own allocator has
    handed out and not taken back, that is the small objects alive, whether or not
    :mod:`tracemalloc` runs. It counts objects, not bytes.
    """

    traced: int
    rss: int
    blocks: int = 0


async def settle() -> Memory:
    """Collect garbage and measure.

    The ``sleep(0)`` first lets this task resume from a plain callback: a task woken by a
    future keeps that future (and, for ``gather``, every task it gathered) referenced for the
    rest of the step, which would be measured as the wave's.
    """
    await asyncio.sleep(0)
    gc.collect()
    return Memory(tracemalloc.get_traced_memory()[0], rss(), sys.getallocatedblocks())


def trim_malloc() -> bool:
    """Have glibc hand the free memory it keeps back to the system; whether it could.

    Strings longer than 512 bytes (an ID token) come from ``malloc``, not Python's own
    allocator, and glibc keeps freed memory in the middle of its heap for reuse: after the
    window the resident size stays up though nothing holds that memory. Trimming shows how
    much of it was only kept, not used.
    """
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


class WaveClock:
    """The client's clock: stands still during the wave, moved on when told."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def limits(http: ModuleType, concurrency: int) -> httpx.Limits:
    """A pool of library ``http`` with a connection for every request in flight."""
    found: httpx.Limits = http.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency
    )
    return found


async def bounded(count: int, one: Callable[[int], Awaitable[None]], concurrency: int) -> float:
    """Run ``one(i)`` for every ``i`` below ``count``, ``concurrency`` at a time.

    A fixed set of workers takes the next index in turn, so no task or coroutine is made per
    token in advance (that would be memory the measurement counts). Returns the wall time.
    """
    indices = iter(range(count))

    async def worker() -> None:
        for index in indices:
            await one(index)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began


@dataclass(frozen=True)
class Timing:
    """Wall time, and this process's CPU time (the emulator's is not in it)."""

    wall: float
    cpu: float


async def timed(count: int, one: Callable[[int], Awaitable[None]], concurrency: int) -> Timing:
    """:func:`bounded`, with the CPU time this process spent meanwhile."""
    cpu = time.process_time()
    wall = await bounded(count, one, concurrency)
    return Timing(wall, time.process_time() - cpu)


# -- keyturn ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wave:
    """What the keyturn side measured."""

    timing: Timing
    late: Timing
    failed: int
    cached: int
    before: Memory
    held: Memory
    after: Memory
    #: The resident size after glibc's ``malloc_trim(0)`` (0 where there is none).
    trimmed: int


def expired(
    provider: Provider, grants: Sequence[tuple[str, str, str]], now: float
) -> list[keyturn.JWT]:
    """The sessions of the wave: each grant's tokens, the access token expired a second ago."""
    spec = provider.spec
    return [
        keyturn.JWT(
            tokens=keyturn.TokenSet(
                provider=spec.id,
                access_token=access,
                refresh_token=refresh,
                expires_at=int(now) - 1,
                scope=tuple(scope.split(spec.scope_separator)),
            )
        )
        for access, refresh, scope in grants
    ]


async def keyturn_wave(
    provider: Provider,
    warm: list[keyturn.JWT],
    starts: list[keyturn.JWT],
    concurrency: int,
    trace: bool,
    http_library: ModuleType = httpx,
) -> tuple[Wave, dict[str, int]]:
    """The wave and its late callers through one ``AsyncKeyturn``, and what the emulator
    counted (from the end of the warm-up). With ``trace``, :mod:`tracemalloc` runs from the
    end of the warm-up to the end of the window, and the memory figures are its."""
    clock = WaveClock()
    failed = 0
    # The hash of each token's new access token, from its first caller: the other callers,
    # the late one included, must hold the same. Allocated before the measurement starts.
    issued = array("q", bytes(8 * max(len(starts), len(warm))))

    async with (
        http_library.AsyncClient(timeout=TIMEOUT, limits=limits(http_library, concurrency)) as http,
        keyturn.AsyncKeyturn(
            {provider.spec.id: provider.credentials},
            providers=[provider.spec],
            environ={},
            http_client=http,
            clock=clock,
        ) as kt,
    ):
        window = kt.single_flight.window

        def served(start: keyturn.JWT, token: keyturn.JWT, index: int) -> bool:
            if token.error is not None or token.refresh_failure is not None:
                return False
            access = token.tokens.access_token.get_secret_value()
            if access == start.tokens.access_token.get_secret_value():
                return False
            if issued[index] == 0:
                issued[index] = hash(access)
            return issued[index] == hash(access)

        def crowd(sessions: list[keyturn.JWT]) -> Callable[[int], Awaitable[None]]:
            async def one(index: int) -> None:
                nonlocal failed
                start = sessions[index]
                tokens = await asyncio.gather(*(kt.jwt(start) for _ in range(CALLERS)))
                failed += sum(not served(start, token, index) for token in tokens)

            return one

        def late(sessions: list[keyturn.JWT]) -> Callable[[int], Awaitable[None]]:
            async def one(index: int) -> None:
                nonlocal failed
                start = sessions[index]
                failed += not served(start, await kt.jwt(start), index)

            return one

        await bounded(len(warm), crowd(warm), concurrency)
        await bounded(len(warm), late(warm), concurrency)
        clock.advance(window)
        kt.single_flight.stats()  # drops the warm-up's outcomes
        for index in range(len(warm)):
            issued[index] = 0
        if failed:
            raise RuntimeError(f"{failed} callers failed while warming up")
        provider.ask("reset")

        trim_malloc()  # the resident size before, as after the window: what is in use
        if trace:
            tracemalloc.start()
        try:
            before = await settle()
            timing = await timed(len(starts), crowd(starts), concurrency)
            late_timing = await timed(len(starts), late(starts), concurrency)
            cached = kt.single_flight.stats().cached
            held = await settle()
            clock.advance(window)  # the window is over: the cache drops every outcome
            kt.single_flight.stats()
            after = await settle()
        finally:
            tracemalloc.stop()
        trimmed = rss() if trim_malloc() else 0
    wave = Wave(timing, late_timing, failed, cached, before, held, after, trimmed)
    return wave, provider.counters()


# -- the raw loop --------------------------------------------------------------------------


async def raw_loop(
    provider: Provider,
    warm: list[str],
    refresh_tokens: list[str],
    concurrency: int,
    http_library: ModuleType = httpx,
) -> tuple[Timing, int, dict[str, int]]:
    """One POST per token, by hand, after a warm-up on the same pool: seconds taken, answers
    that were not a new token, and what the emulator counted (without the warm-up)."""
    credentials = provider.credentials
    headers = {"Authorization": basic_auth(credentials), "Accept": "application/json"}
    endpoint = provider.spec.token_endpoint
    failed = 0
    client = http_library.AsyncClient(timeout=TIMEOUT, limits=limits(http_library, concurrency))
    async with client as http:

        def post(tokens: list[str]) -> Callable[[int], Awaitable[None]]:
            async def one(index: int) -> None:
                nonlocal failed
                form = {"grant_type": "refresh_token", "refresh_token": tokens[index]}
                try:
                    response = await http.post(endpoint, data=form, headers=headers)
                except http_library.HTTPError:
                    failed += 1
                    return
                if response.status_code != 200 or "access_token" not in response.json():
                    failed += 1

            return one

        await bounded(len(warm), post(warm), concurrency)
        provider.ask("reset")
        timing = await timed(len(refresh_tokens), post(refresh_tokens), concurrency)
    return timing, failed, provider.counters()


# -- running and reporting -------------------------------------------------------------------


def check(condition: bool, message: str, problems: list[str]) -> None:
    if not condition:
        problems.append(message)


def count_problems(
    name: str, count: int, wave: Wave, counters: dict[str, int], problems: list[str]
) -> None:
    """What must hold of a keyturn wave: one request per token, every caller served."""
    requests, refreshed = counters["token_requests"], counters["refresh_token"]
    check(requests == count, f"{name}: {requests} refresh requests for {count} tokens", problems)
    check(refreshed == count, f"{name}: {refreshed} refreshes honoured", problems)
    check(wave.failed == 0, f"{name}: {wave.failed} callers failed", problems)
    reuse = counters["reuse_detected"]
    check(reuse == 0, f"{name}: reuse detected {reuse} times", problems)
    revoked = counters["family_revoked"]
    check(revoked == 0, f"{name}: {revoked} families revoked", problems)
    check(wave.cached == count, f"{name}: {wave.cached} outcomes cached", problems)


def print_counts(name: str, count: int, wave: Wave, counters: dict[str, int]) -> None:
    print(f"  {name}")
    print(f"    refresh requests the emulator counted {counters['token_requests']:>10,}")
    print(f"    refreshes it honoured                 {counters['refresh_token']:>10,}")
    print(f"    failed callers (of {count * (CALLERS + 1):,})".ljust(42) + f"{wave.failed:>10,}")
    reuse, revoked = counters["reuse_detected"], counters["family_revoked"]
    print(f"    reuse detected, families revoked      {reuse:>10,}, {revoked:,}")
    print(f"    outcomes in the reuse cache at the end{wave.cached:>10,}")


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run the waves and the raw loop; print the counts, memory and rates; check them.

    :raises RuntimeError: a count is wrong or the memory bound is exceeded.
    """
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TOKENS:,} tokens")
    parser.add_argument("--tokens", type=int, help=f"tokens in the wave ({FULL_TOKENS:,})")
    parser.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help=f"tokens in flight ({CONCURRENCY})"
    )
    parser.add_argument(
        "--http",
        choices=HTTP_LIBRARIES,
        default="httpx",
        help="the HTTP library of both sides (httpx)",
    )
    parser.add_argument(
        "--no-trace",
        action="store_true",
        help="skip the pass under tracemalloc (about four times the timed one); memory is then "
        "bounded by the live blocks of Python's allocator alone",
    )
    options = parser.parse_args(argv)
    http_library = importlib.import_module(options.http)
    trace = not options.no_trace
    count: int = options.tokens or (QUICK_TOKENS if options.quick else FULL_TOKENS)
    concurrency: int = options.concurrency

    with emulator_process(PROFILE, still_clock=True) as provider:
        now = WaveClock().now

        def sessions(number: int) -> list[keyturn.JWT]:
            return expired(provider, provider.grants(number), now)

        def refresh_tokens(number: int) -> list[str]:
            return [refresh for _, refresh, _ in provider.grants(number)]

        emulator_before = provider.ask("rss")
        began = time.perf_counter()

        def done(what: str) -> None:  # progress: the full run takes minutes
            print(f"  {what}: done at {time.perf_counter() - began:.0f} s", flush=True)

        passes = "three passes" if trace else "two passes (no tracemalloc)"
        print(f"refresh wave of {count:,} tokens, in {passes}", flush=True)
        rated, rated_counters = asyncio.run(
            keyturn_wave(
                provider,
                sessions(WARM_TOKENS),
                sessions(count),
                concurrency,
                trace=False,
                http_library=http_library,
            )
        )
        done("the timed keyturn wave")
        raw, raw_failed, raw_counters = asyncio.run(
            raw_loop(
                provider,
                refresh_tokens(WARM_TOKENS),
                refresh_tokens(count),
                concurrency,
                http_library,
            )
        )
        done("the raw loop")
        traced: Wave | None = None
        traced_counters: dict[str, int] = {}
        if trace:
            traced, traced_counters = asyncio.run(
                keyturn_wave(
                    provider,
                    sessions(WARM_TOKENS),
                    sessions(count),
                    concurrency,
                    trace=True,
                    http_library=http_library,
                )
            )
            done("the keyturn wave under tracemalloc")
        took = time.perf_counter() - began
        emulator_after = provider.ask("rss")

    held_bound = POOL_ALLOWANCE + count * (SLACK_PER_TOKEN + CACHE_ENTRY)
    after_bound = POOL_ALLOWANCE + count * SLACK_PER_TOKEN
    measured = traced or rated  # the wave whose memory is reported
    held_growth = measured.held.traced - measured.before.traced
    growth = measured.after.traced - measured.before.traced
    trimmed_growth = measured.trimmed - measured.before.rss if measured.trimmed else 0
    blocks_kept = measured.after.blocks - measured.before.blocks
    keyturn_rate = count / rated.timing.wall
    raw_rate = count / raw.wall
    keyturn_cpu = rated.timing.cpu / count
    raw_cpu = raw.cpu / count

    print(
        f"refresh wave: {count:,} expired tokens, {CALLERS} callers each at once, then one late "
        f"caller each; {PROFILE} profile, {concurrency} tokens in flight, {options.http} "
        f"({took:.0f} s in all)"
    )
    print_counts("the timed wave", count, rated, rated_counters)
    if traced is not None:
        print_counts("the wave under tracemalloc", count, traced, traced_counters)
    print("rate, and this process's CPU time per refresh (the emulator's is not in it)")
    print(
        f"  raw {options.http + '.AsyncClient.post loop':<39}{raw_rate:>7,.0f} refreshes/s   1.00x"
        f"   {raw_cpu * 1e3:6.2f} ms   1.00x"
    )
    print(
        f"  keyturn AsyncKeyturn.jwt, {CALLERS} callers each     {keyturn_rate:>7,.0f} refreshes/s"
        f"   {keyturn_rate / raw_rate:.2f}x   {keyturn_cpu * 1e3:6.2f} ms   "
        f"{keyturn_cpu / raw_cpu:.2f}x"
    )
    print(
        f"  late callers served from the cache         {count / rated.late.wall:>7,.0f} callers/s"
        f"           {rated.late.cpu / count * 1e3:6.2f} ms"
    )
    which = "wave under tracemalloc" if traced is not None else "timed wave, resident size only"
    print(f"memory of the client process, {which} (the emulator runs in its own)")
    print(f"  {'':<28} {'heap growth':>14} {'resident (RSS)':>16} {'live blocks':>14}")
    for label, memory in (
        ("before the wave", measured.before),
        ("after it, cache full", measured.held),
        ("after the reuse window", measured.after),
    ):
        heap = (
            f"{(memory.traced - measured.before.traced) / MB:>+11.1f} MB"
            if traced is not None
            else f"{'-':>14}"
        )
        blocks = memory.blocks - measured.before.blocks
        print(f"  {label:<28} {heap} {memory.rss / MB:>13.1f} MB {blocks:>+14,}")
    if measured.trimmed:
        print(f"  {'after malloc_trim(0)':<28} {'':>14} {measured.trimmed / MB:>13.1f} MB")
    bound_text = (
        f"{after_bound / MB:.1f} MB: {POOL_ALLOWANCE / MB:.0f} MB for the connection pool "
        f"+ {SLACK_PER_TOKEN} B per token"
    )
    if traced is not None:
        print(
            f"  with the cache full: {held_growth / MB:.1f} MB, {held_growth / count:,.0f} B per "
            f"token (bound {held_bound / MB:.1f} MB)"
        )
        print(
            f"  after the window: {growth / MB:.2f} MB, {growth / count:,.1f} B per token "
            f"(bound {bound_text})"
        )
    print(
        f"  after the window: {blocks_kept:+,} live blocks against before the wave (bound "
        f"{BLOCK_ALLOWANCE:,}, whatever the wave's size)"
    )
    if measured.trimmed:
        print(
            f"  after the window and malloc_trim(0): {trimmed_growth / MB:+.2f} MB resident "
            "against before the wave (printed, not bounded: an arena of Python's allocator "
            "goes back to the system only when every block in it is free)"
        )
    print(
        f"  emulator process: {emulator_before / MB:.0f} MB before, {emulator_after / MB:.0f} MB "
        f"after ({(3 if trace else 2) * (count + WARM_TOKENS):,} token families, the "
        "provider's state)"
    )

    problems: list[str] = []
    count_problems("timed wave", count, rated, rated_counters, problems)
    if traced is not None:
        count_problems("traced wave", count, traced, traced_counters, problems)
    check(raw_failed == 0, f"{raw_failed} raw POSTs failed", problems)
    check(raw_counters["refresh_token"] == count, "the raw loop's refreshes", problems)
    if traced is not None:
        check(held_growth <= held_bound, "the heap with the cache full exceeds its bound", problems)
        check(growth <= after_bound, "the heap after the window exceeds its bound", problems)
    check(
        blocks_kept <= BLOCK_ALLOWANCE,
        f"{blocks_kept:,} more live blocks after the window than before the wave",
        problems,
    )
    if problems:
        raise RuntimeError("refresh wave: " + "; ".join(problems))

    return {
        "refresh_wave.tokens": float(count),
        "refresh_wave.requests": float(rated_counters["token_requests"]),
        "refresh_wave.traced_requests": float(traced_counters.get("token_requests", 0)),
        "refresh_wave.failed": float(rated.failed + (traced.failed if traced else 0)),
        "refresh_wave.reuse_detected": float(
            rated_counters["reuse_detected"] + traced_counters.get("reuse_detected", 0)
        ),
        "refresh_wave.cached": float(measured.cached),
        **(
            {
                "refresh_wave.memory_held_mb": held_growth / MB,
                "refresh_wave.memory_held_bound_mb": held_bound / MB,
                "refresh_wave.memory_growth_mb": growth / MB,
            }
            if traced is not None
            else {}
        ),
        "refresh_wave.memory_bound_mb": after_bound / MB,
        "refresh_wave.rss_growth_mb": (measured.after.rss - measured.before.rss) / MB,
        "refresh_wave.rss_trimmed_growth_mb": trimmed_growth / MB,
        "refresh_wave.blocks_kept": float(blocks_kept),
        "refresh_wave.keyturn_per_s": keyturn_rate,
        "refresh_wave.raw_per_s": raw_rate,
        "refresh_wave.rate_ratio": keyturn_rate / raw_rate,
        "refresh_wave.cpu_ratio": keyturn_cpu / raw_cpu,
    }


if __name__ == "__main__":
    main()
