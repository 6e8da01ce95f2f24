"""The benchmarks run end to end and report what they measured (counts and ratios only).

Timings are never asserted: they belong to the benchmarks' output. What is asserted is that
each benchmark ran, returned its ratios, and, for concurrent refresh, the request counts the
emulator saw, which do not depend on the machine.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from typing import Any

import pytest
from bench import refresh_wave

from keyturn_emulator import DEFAULT_CLIENT_SECRET
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

#: The wave's size here: the benchmark's checks hold at any size, and its quick size
#: (10,000 tokens, three passes through the emulator) takes minutes on a small machine.
WAVE_TOKENS = 1_000

TOKEN_SHAPE = re.compile(r"(at_|rt_|ya29\.|1//)[A-Za-z0-9_-]{40,}")
CASES = ("keyturn", "naive", "authlib_shared", "authlib_per_request")
FIELDS = (
    "requests",
    "refreshed",
    "revoked",
    "ok",
    "alive",
    "ms",
    "requests_vs_keyturn",
    "time_vs_keyturn",
)


@pytest.fixture(scope="module")
def quick_run() -> tuple[dict[str, float], str]:
    """``python -m bench --quick --json`` once for the module: the JSON and the tables."""
    done = subprocess.run(
        [
            *(sys.executable, "-W", "error", "-m", "bench", "--quick", "--json"),
            *("--wave-tokens", str(WAVE_TOKENS)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,  # the refresh wave refreshes 20,000 tokens
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results: Any = json.loads(done.stdout)  # stdout holds the JSON and nothing else
    assert isinstance(results, dict)
    return results, done.stderr


@pytest.fixture(scope="module")
def results(quick_run: tuple[dict[str, float], str]) -> dict[str, float]:
    return quick_run[0]


def callers_measured(results: dict[str, float]) -> list[int]:
    found = {int(m[1]) for key in results if (m := re.match(r"concurrent_refresh\.n(\d+)\.", key))}
    return sorted(found)


def test_every_benchmark_reports_a_finite_positive_ratio(results: dict[str, float]) -> None:
    keys: tuple[str, ...] = (
        "import",
        "hot_path",
        "refresh_roundtrip.sync",
        "refresh_roundtrip.async",
        "refresh_roundtrip.offline",
        "refresh_roundtrip.id_token_checks",
        "web_session",
        "token_store.sqlite",
        "token_store.sqlite.uncached",
        "token_store.sqlite.async",
    )
    if shutil.which("redis-server") is not None:  # else the benchmark says it skipped Redis
        keys += ("token_store.redis", "token_store.redis.uncached", "token_store.redis.async")
    for key in keys:
        assert key in results, sorted(results)
        assert math.isfinite(results[key]) and results[key] > 0, key


def test_tables_go_to_stderr_with_a_line_per_benchmark(
    quick_run: tuple[dict[str, float], str],
) -> None:
    tables = quick_run[1]
    for heading in (
        "== import_time",
        "== hot_path",
        "== refresh_roundtrip",
        "== concurrent_refresh",
        "== refresh_wave",
        "== web_session",
        "== token_store",
        "token store read, sqlite: get_access_token on a valid token",
        "web session read",
        "refresh round trip, sync",
        "refresh round trip, async",
        "concurrent refresh: 10 callers",
        f"refresh wave: {WAVE_TOKENS:,} expired tokens",
    ):
        assert heading in tables


def test_the_session_cookie_size_is_reported(results: dict[str, float]) -> None:
    # The JWE cookie carries the same user and tokens as the signed one, encrypted: never
    # smaller, and well under one cookie's 4 KB for this session.
    assert results["web_session.signed_cookie_bytes"] > 0
    assert results["web_session.signed_cookie_bytes"] < results["web_session.cookie_bytes"] < 3900


def test_concurrent_refresh_reports_every_case_at_several_sizes(results: dict[str, float]) -> None:
    sizes = callers_measured(results)
    assert len(sizes) >= 2 and sizes[0] >= 10
    for callers in sizes:
        for case in CASES:
            for field in FIELDS:
                assert f"concurrent_refresh.n{callers}.{case}.{field}" in results


def test_keyturn_sends_one_refresh_for_all_callers_and_keeps_the_family(
    results: dict[str, float],
) -> None:
    for callers in callers_measured(results):
        prefix = f"concurrent_refresh.n{callers}.keyturn."
        assert results[prefix + "requests"] == 1
        assert results[prefix + "refreshed"] == 1
        assert results[prefix + "revoked"] == 0
        assert results[prefix + "ok"] == callers
        assert results[prefix + "alive"] == 1


def test_the_naive_loop_refreshes_once_per_caller_and_loses_the_family(
    results: dict[str, float],
) -> None:
    for callers in callers_measured(results):
        prefix = f"concurrent_refresh.n{callers}.naive."
        assert results[prefix + "requests"] == callers
        assert results[prefix + "requests_vs_keyturn"] == callers
        assert results[prefix + "refreshed"] == 1  # the first request wins the rotation
        assert results[prefix + "revoked"] == 1  # the second trips reuse detection
        assert results[prefix + "ok"] == 1
        assert results[prefix + "alive"] == 0  # even the winner's new token is revoked


def test_authlib_coordinates_within_one_client_only(results: dict[str, float]) -> None:
    for callers in callers_measured(results):
        shared = f"concurrent_refresh.n{callers}.authlib_shared."
        assert (results[shared + "requests"], results[shared + "revoked"]) == (1, 0)
        assert results[shared + "ok"] == callers
        per_request = f"concurrent_refresh.n{callers}.authlib_per_request."
        assert results[per_request + "requests"] == callers
        assert results[per_request + "revoked"] == 1
        assert results[per_request + "alive"] == 0


def test_a_provider_outage_costs_keyturn_one_request_and_the_others_one_per_caller(
    results: dict[str, float],
) -> None:
    sizes = {
        int(m[1])
        for key in results
        if (m := re.match(r"concurrent_refresh\.outage\.n(\d+)\.", key))
    }
    assert len(sizes) == 1
    callers = sizes.pop()
    prefix = f"concurrent_refresh.outage.n{callers}."
    assert results[prefix + "keyturn.requests"] == 1  # waiters share the transient failure
    for case in ("naive", "authlib_shared", "authlib_per_request"):
        # Authlib's lock serialises the callers, but each one retries after the last failed
        assert results[prefix + case + ".requests"] == callers, case
    for case in CASES:
        assert results[prefix + case + ".ok"] == 0, case


def test_the_refresh_wave_sends_one_request_per_token_and_serves_every_caller(
    results: dict[str, float],
) -> None:
    # The wave runs once in the suite, here, as part of `python -m bench --quick`. The
    # benchmark raises when a count or a bound is off; these say the same again, so that a
    # change to it cannot quietly drop a check.
    tokens = WAVE_TOKENS
    for key in ("tokens", "requests", "traced_requests", "cached"):
        assert results[f"refresh_wave.{key}"] == tokens, key
    assert results["refresh_wave.failed"] == 0
    assert results["refresh_wave.reuse_detected"] == 0


def test_the_refresh_wave_heap_comes_back_within_its_bound(results: dict[str, float]) -> None:
    tokens = WAVE_TOKENS
    # the cache held every outcome: at least most of a TokenSet per token
    assert results["refresh_wave.memory_held_mb"] > tokens * 1_500 / 1e6
    assert results["refresh_wave.memory_held_mb"] <= results["refresh_wave.memory_held_bound_mb"]
    bound = (refresh_wave.POOL_ALLOWANCE + tokens * refresh_wave.SLACK_PER_TOKEN) / 1e6
    assert results["refresh_wave.memory_bound_mb"] == pytest.approx(bound)
    assert results["refresh_wave.memory_growth_mb"] <= bound
    assert results["refresh_wave.blocks_kept"] <= refresh_wave.BLOCK_ALLOWANCE
    for key in ("keyturn_per_s", "raw_per_s", "rate_ratio", "cpu_ratio"):
        assert results[f"refresh_wave.{key}"] > 0, key


def test_no_secret_or_token_reaches_the_output(quick_run: tuple[dict[str, float], str]) -> None:
    results, tables = quick_run
    text = tables + json.dumps(results)
    assert DEFAULT_CLIENT_SECRET not in text
    # the emulator's tokens: a profile prefix, then 43 URL-safe random characters
    assert TOKEN_SHAPE.search(text) is None


def test_a_wave_without_tracemalloc_bounds_the_live_blocks_instead(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The full 100,000-token wave is run this way: two passes, over httpx2.
    tokens = 200
    results = refresh_wave.main(
        ["--tokens", str(tokens), "--no-trace", "--http", "httpx2", "--concurrency", "50"]
    )
    tables = capsys.readouterr().out
    assert "two passes (no tracemalloc)" in tables
    assert "raw httpx2.AsyncClient.post loop" in tables
    assert "live blocks against before the wave" in tables
    for key in ("tokens", "requests", "cached"):
        assert results[f"refresh_wave.{key}"] == tokens, key
    assert results["refresh_wave.traced_requests"] == 0
    assert results["refresh_wave.failed"] == 0
    assert results["refresh_wave.reuse_detected"] == 0
    assert "refresh_wave.memory_held_mb" not in results  # no heap figures without tracing
    assert results["refresh_wave.blocks_kept"] <= refresh_wave.BLOCK_ALLOWANCE
