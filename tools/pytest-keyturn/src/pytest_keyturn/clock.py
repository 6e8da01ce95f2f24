"""A clock that tests move by hand, for the ``clock=`` argument of keyturn's clients."""

from __future__ import annotations

__all__ = ["START", "FakeClock"]

#: The fixed "now" of the ``keyturn_clock`` fixture, in epoch seconds (2027-01-15).
START = 1_800_000_000


class FakeClock:
    """A clock that stands still until a test moves it; pass it as ``clock=`` to a client.

    :param now: the starting time in epoch seconds.
    """

    def __init__(self, now: float = START) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        """The current fake time in epoch seconds."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds

    def set(self, now: float) -> None:
        """Jump to ``now`` (epoch seconds)."""
        self.now = float(now)

    def __repr__(self) -> str:
        return f"FakeClock({self.now!r})"
