"""The pytest plugin of pytest-keyturn, loaded through the ``pytest11`` entry point.

It only adds fixtures, all named ``keyturn_*``, and imports nothing heavy (not even keyturn):
vcrpy is imported when a cassette fixture is first used, so the plugin costs next to nothing
in test runs that do not use it.

* :func:`keyturn_clock`: a :class:`FakeClock` fixed at :data:`START`, moved by hand.
* :func:`keyturn_vcr`: a factory ``keyturn_vcr(folder)`` returning a ``vcr.VCR`` configured
  with keyturn's scrubbing and matching (:func:`pytest_keyturn.cassettes.make_vcr`).

The conformance suite (:class:`pytest_keyturn.ProviderConformance`) uses both; your own
tests may too::

    def test_refresh(keyturn_vcr, keyturn_clock):
        with keyturn_vcr(CASSETTES).use_cassette("refresh_ok.yaml"):
            ...
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .clock import START, FakeClock

__all__ = ["START", "FakeClock", "VcrFactory", "keyturn_clock", "keyturn_vcr"]

#: ``keyturn_vcr(folder, record_mode="none")`` returns a configured ``vcr.VCR``.
VcrFactory = Callable[..., Any]

_MISSING_VCR = (
    "keyturn's cassette fixtures need vcrpy, which is not installed. "
    "pip install pytest-keyturn (or vcrpy)"
)


@pytest.fixture
def keyturn_clock() -> FakeClock:
    """A fresh :class:`FakeClock` at :data:`START` for each test."""
    return FakeClock()


@pytest.fixture
def keyturn_vcr() -> VcrFactory:
    """A factory of ``vcr.VCR`` objects with keyturn's scrubbing and matching.

    Call it with the folder of one provider's cassettes; ``record_mode`` defaults to
    ``"none"`` (replay only; a request the cassette does not hold fails).

    Fails the test with an install hint when vcrpy is missing.
    """
    try:
        import vcr  # noqa: F401
    except ImportError:
        missing = True
    else:
        missing = False
    if missing:  # failed outside the except block, so the ImportError is not chained
        pytest.fail(_MISSING_VCR, pytrace=False)
    from .cassettes import make_vcr

    def factory(folder: str | Path, *, record_mode: str = "none") -> Any:
        return make_vcr(folder, record_mode=record_mode)

    return factory
