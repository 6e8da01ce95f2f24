"""pytest-keyturn: test keyturn and its provider plugins offline.

* :class:`ProviderConformance`: the conformance suite a provider plugin runs on its cassettes
  (see ``docs/writing-a-provider-plugin.md``);
* :class:`FakeClock`: a clock that stands still until a test moves it;
* :mod:`pytest_keyturn.cassettes`: vcrpy settings, scrubbing and the secret scanner;
* :mod:`pytest_keyturn.plugin`: the pytest fixtures ``keyturn_clock`` and ``keyturn_vcr``,
  loaded in every pytest run of an environment that has this distribution;
* :mod:`pytest_keyturn.recording` and :mod:`pytest_keyturn.scaffold`: what the
  ``keyturn record`` and ``keyturn new-provider`` commands run.

The pytest plugin imports this package, so importing it stays cheap: keyturn, httpx, pydantic
and vcrpy load only when :class:`ProviderConformance` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .clock import START, FakeClock

if TYPE_CHECKING:
    from .conformance import ProviderConformance

__all__ = ["START", "FakeClock", "ProviderConformance"]


def __getattr__(name: str) -> Any:
    if name == "ProviderConformance":
        from .conformance import ProviderConformance

        globals()[name] = ProviderConformance
        return ProviderConformance
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
