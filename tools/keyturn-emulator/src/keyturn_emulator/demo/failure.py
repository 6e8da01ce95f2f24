"""The one error ``keyturn demo`` raises: a step that did not behave as it should."""

from __future__ import annotations

from keyturn.errors import KeyturnError

from .report import DemoReport

__all__ = ["DemoFailure"]


class DemoFailure(KeyturnError):
    """A step of the demo did not behave as it should.

    The message is one line: ``<provider>, <step>: <what went wrong>``.

    :ivar report: the report up to the failure (set by
        :func:`~keyturn_emulator.demo.scenario.run_demo`).
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
        self.report: DemoReport | None = None
