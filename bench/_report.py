"""Timing and printing shared by the benchmarks.

Every benchmark times keyturn and a baseline in the same process, one after the other, and
prints the ratio: absolute times depend on the machine, ratios much less so.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass


def parse_args(description: str | None, argv: Sequence[str] | None) -> argparse.Namespace:
    """The options every benchmark takes: ``--quick`` runs few iterations (a smoke run)."""
    parser = argparse.ArgumentParser(description=(description or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few iterations; numbers are rough")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Result:
    """One measured case: the median seconds per call over several rounds."""

    name: str
    seconds: float

    @property
    def micros(self) -> float:
        return self.seconds * 1e6


def per_call(func: Callable[[], object], *, number: int, rounds: int = 5) -> float:
    """Median seconds per call of ``func`` over ``rounds`` rounds of ``number`` calls."""
    func()  # warm caches and lazy imports outside the measurement
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(number):
            func()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def per_call_pair(
    first: Callable[[], object],
    second: Callable[[], object],
    *,
    number: int,
    rounds: int = 5,
    timer: Callable[[], float] = time.perf_counter,
) -> tuple[float, float]:
    """Like :func:`per_call` for two functions, their rounds taken in turn.

    Alternating spreads slow drifts (a busy neighbour, a warming server) over both sides
    instead of charging them to whichever ran second. Work that stays on the calling thread
    is best timed with ``timer=time.thread_time`` (CPU time): other processes on a busy
    machine then do not count. Anything waiting on a socket needs wall time.
    """
    first()
    second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for func, into in ((first, samples[0]), (second, samples[1])):
            start = timer()
            for _ in range(number):
                func()
            into.append((timer() - start) / number)
    return statistics.median(samples[0]), statistics.median(samples[1])


async def aper_call_pair(
    first: Callable[[], Awaitable[object]],
    second: Callable[[], Awaitable[object]],
    *,
    number: int,
    rounds: int = 5,
) -> tuple[float, float]:
    """The async twin of :func:`per_call_pair`: calls are awaited one after another."""
    await first()
    await second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for func, into in ((first, samples[0]), (second, samples[1])):
            start = time.perf_counter()
            for _ in range(number):
                await func()
            into.append((time.perf_counter() - start) / number)
    return statistics.median(samples[0]), statistics.median(samples[1])


#: Every target the benchmarks check, by result key: the largest acceptable ratio.
TARGETS: dict[str, float] = {}


def verdict(key: str, ratio: float, target: float) -> str:
    """Record ``target`` for ``key`` and say whether ``ratio`` meets it."""
    TARGETS[key] = target
    return f"target <= {target:.2f}x: {'met' if ratio <= target else 'NOT MET'}"


def print_ratio(
    title: str,
    subject: Result,
    baseline: Result,
    unit: str = "us",
    *,
    key: str | None = None,
    target: float | None = None,
) -> float:
    """Print ``subject`` against ``baseline`` and return the ratio subject / baseline.

    With ``key`` and ``target``, also print whether the ratio meets the target (at most
    ``target`` times the baseline) and record it in :data:`TARGETS` for the summary.
    """
    ratio = subject.seconds / baseline.seconds if baseline.seconds else float("inf")
    scale = 1e6 if unit == "us" else 1e3
    print(f"{title}")
    print(f"  {baseline.name:<44} {baseline.seconds * scale:>10.1f} {unit}   1.00x")
    line = f"  {subject.name:<44} {subject.seconds * scale:>10.1f} {unit}   {ratio:.2f}x"
    if key is not None and target is not None:
        line += "   " + verdict(key, ratio, target)
    print(line)
    return ratio
