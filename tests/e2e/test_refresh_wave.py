"""The refresh wave benchmark at its quick size: exact counts and the memory bound, no time.

``bench.refresh_wave.main(["--quick"])`` refreshes 10,000 expired tokens against the
emulator's strict profile (in a child process), three callers each and a late caller each
with the spent refresh token, twice (once timed, once under tracemalloc), and a raw POST
loop. It raises when a count is wrong or the heap exceeds its bound; the assertions here say
the same again, so that a change to the benchmark cannot quietly drop a check.
"""

from __future__ import annotations

import pytest
from bench import refresh_wave

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results() -> dict[str, float]:
    return refresh_wave.main(["--quick"])


def test_one_refresh_per_token_and_every_caller_served(results: dict[str, float]) -> None:
    tokens = refresh_wave.QUICK_TOKENS
    assert results["refresh_wave.tokens"] == tokens
    assert results["refresh_wave.requests"] == tokens
    assert results["refresh_wave.traced_requests"] == tokens
    assert results["refresh_wave.failed"] == 0
    assert results["refresh_wave.reuse_detected"] == 0
    # the late callers of every token were answered from the cache, all at once
    assert results["refresh_wave.cached"] == tokens


def test_the_heap_comes_back_within_its_bound_after_the_window(
    results: dict[str, float],
) -> None:
    tokens = refresh_wave.QUICK_TOKENS
    # the cache held every outcome: at least most of a TokenSet per token
    assert results["refresh_wave.memory_held_mb"] > tokens * 1_500 / 1e6
    assert results["refresh_wave.memory_held_mb"] <= results["refresh_wave.memory_held_bound_mb"]
    bound = (refresh_wave.POOL_ALLOWANCE + tokens * refresh_wave.SLACK_PER_TOKEN) / 1e6
    assert results["refresh_wave.memory_bound_mb"] == pytest.approx(bound)
    assert results["refresh_wave.memory_growth_mb"] <= bound


def test_the_rates_are_reported(results: dict[str, float]) -> None:
    for key in ("keyturn_per_s", "raw_per_s", "rate_ratio", "cpu_ratio"):
        assert results[f"refresh_wave.{key}"] > 0, key
