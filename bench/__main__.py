"""Run every benchmark in turn, then print a summary of what each returned.

Usage: ``python -m bench [--quick] [--json] [--wave-tokens N]``. ``--quick`` is a smoke run with few
iterations (the counts are exact, the times rough). ``--json`` prints the summary as one
JSON object on stdout and sends the benchmarks' own tables to stderr, so the output can be
piped into another program.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Sequence

from . import (
    concurrent_refresh,
    hot_path,
    import_time,
    refresh_roundtrip,
    refresh_wave,
    token_store,
    web_session,
)
from ._report import TARGETS

#: Every benchmark, in the order they run: name and entry point.
BENCHMARKS: tuple[tuple[str, Callable[[Sequence[str] | None], dict[str, float]]], ...] = (
    ("import_time", import_time.main),
    ("hot_path", hot_path.main),
    ("refresh_roundtrip", refresh_roundtrip.main),
    ("concurrent_refresh", concurrent_refresh.main),
    ("refresh_wave", refresh_wave.main),
    ("web_session", web_session.main),
    ("token_store", token_store.main),
)


def run_all(quick: bool, wave_tokens: int | None = None) -> dict[str, float]:
    """Run the benchmarks one after another; their results merged into one mapping."""
    argv = ["--quick"] if quick else []
    results: dict[str, float] = {}
    for name, entry in BENCHMARKS:
        print(f"== {name}", flush=True)
        extra = ["--tokens", str(wave_tokens)] if name == "refresh_wave" and wave_tokens else []
        results.update(entry(argv + extra))
        print(flush=True)
    return results


def format_value(value: float) -> str:
    """Counts print as integers, ratios and times with two decimals."""
    return str(int(value)) if value.is_integer() else f"{value:.2f}"


def print_summary(results: dict[str, float]) -> None:
    """One line per number, grouped by benchmark as the keys are."""
    print("summary")
    print("  import, hot_path, refresh_roundtrip.*: keyturn's time / the baseline's (below 1:")
    print("  keyturn is faster). concurrent_refresh.*_vs_keyturn: that case / keyturn (above 1:")
    print("  keyturn sent fewer requests or finished sooner); refresh_wave.rate_ratio: keyturn's")
    print("  refreshes per second / the raw loop's (below 1: keyturn is slower), its cpu_ratio the")
    print("  CPU time per refresh the other way round; the other entries are counts, ms and MB.")
    print("  A row with a target shows it and whether the ratio meets it.")
    width = max(map(len, results), default=0)
    for key, value in results.items():
        line = f"  {key:<{width}}  {format_value(value):>10}"
        if key in TARGETS:
            met = "met" if value <= TARGETS[key] else "NOT MET"
            line += f"   target <= {TARGETS[key]:.2f}x  {met}"
        print(line)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Parse the options, run everything, print the summary or the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few iterations; numbers are rough")
    parser.add_argument(
        "--wave-tokens", type=int, help="tokens in the refresh wave (100,000; 10,000 with --quick)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON only")
    options = parser.parse_args(argv)
    if options.json:
        with contextlib.redirect_stdout(sys.stderr):
            results = run_all(options.quick, options.wave_tokens)
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        results = run_all(options.quick, options.wave_tokens)
        print_summary(results)
    return results


if __name__ == "__main__":
    main()
