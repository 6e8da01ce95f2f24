"""Import cost: keyturn's client with both shipped plugins loaded, against ``import httpx``.

keyturn depends on httpx, pydantic and pluggy, so the baseline is the one dependency every
app already pays for. Each case runs in a fresh interpreter (the only way to measure a cold
import), several times, and the medians are compared. Loading the plugins goes through the
entry points, as an app's first ``Keyturn()`` does. (A bare ``import keyturn`` loads only
the hook markers; the client's names load on first use, so the subject imports ``Keyturn``.)

Run: ``python -m bench.import_time [--quick]``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections.abc import Sequence

from ._report import Result, parse_args, print_ratio

BASELINE = "import httpx"
# What an app imports before its first Keyturn(): the client (hence httpx) and the plugins.
SUBJECT = (
    "from keyturn import Keyturn; "
    "from keyturn.plugins import default_plugin_manager, collect_providers; "
    "found = collect_providers(default_plugin_manager()); "
    "assert {'google', 'github'} <= set(found), sorted(found)"
)
TIMER = "import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"


def cold(code: str, runs: int) -> float:
    """Median seconds of ``code`` in ``runs`` fresh interpreters."""
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", TIMER.format(code=code)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        samples.append(float(out.strip().splitlines()[-1]))
    return statistics.median(samples)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Time both and print the ratio; returns ``{"import": ratio}``."""
    runs = 3 if parse_args(__doc__, argv).quick else 15
    baseline = Result(BASELINE, cold(BASELINE, runs))
    subject = Result("keyturn client + google and github plugins", cold(SUBJECT, runs))
    ratio = print_ratio("import time (fresh interpreter, median)", subject, baseline, unit="ms")
    return {"import": ratio}


if __name__ == "__main__":
    main()
