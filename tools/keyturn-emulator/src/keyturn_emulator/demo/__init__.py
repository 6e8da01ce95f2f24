"""``keyturn demo``: the whole token life cycle against the local emulator, self-checking.

:func:`~.scenario.run_demo` runs the tour (sign-in, refresh with and without rotation, many
callers and one refresh, revocation and signing in again) and returns a
:class:`~.report.DemoReport`; :class:`~.display.Display` shows it as it happens.
"""

from __future__ import annotations

from .failure import DemoFailure
from .observer import Observer
from .report import DemoReport, Event, ProviderSummary, fingerprint
from .scenario import run_demo
from .settings import DEFAULT_PROVIDERS, PROVIDERS, DemoSettings

__all__ = [
    "DEFAULT_PROVIDERS",
    "PROVIDERS",
    "DemoFailure",
    "DemoReport",
    "DemoSettings",
    "Event",
    "Observer",
    "ProviderSummary",
    "fingerprint",
    "run_demo",
]
