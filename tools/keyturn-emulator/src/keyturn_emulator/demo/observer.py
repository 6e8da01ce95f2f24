"""What watches the demo as it runs: the base the display builds on, silent by itself."""

from __future__ import annotations

import time

from .report import DemoReport, Event

__all__ = ["Observer"]


class Observer:
    """Receives the demo's progress; the display subclasses it. This one shows nothing.

    Every method is called from the thread running :func:`~keyturn_emulator.demo.scenario.run_demo`.
    """

    def begin(self, report: DemoReport) -> None:
        """The emulator is up (``report.emulator``) and the tour starts."""

    def provider(self, provider: str, name: str, origin: str) -> None:
        """The tour of one provider starts.

        :param provider: its id.
        :param name: its display name.
        :param origin: the plugin that serves it, or keyturn's defaults.
        """

    def event(self, event: Event) -> None:
        """A step happened (it is already in the report)."""

    def wait(self, seconds: float, reason: str) -> None:
        """Block for ``seconds`` while the demo waits for ``reason``; this one sleeps.

        :param seconds: how long to block.
        :param reason: what the wait is for, e.g. ``"the access token to expire"``.
        """
        time.sleep(seconds)

    def end(self, report: DemoReport) -> None:
        """Every check passed; ``report`` is complete."""
