"""Test support for keyturn and its provider plugins.

* :class:`ProviderConformance`: the conformance suite a provider plugin runs on its cassettes
  (see ``docs/writing-a-provider-plugin.md``);
* :mod:`keyturn.testing.cassettes`: vcrpy settings, scrubbing and the secret scanner;
* :mod:`keyturn.testing.plugin`: the pytest fixtures ``keyturn_clock`` and ``keyturn_vcr``.

Importing this package is cheap: neither pytest nor vcrpy is imported until a name that
needs them is used. vcrpy comes with the ``testing`` extra: ``pip install keyturn[testing]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .conformance import ProviderConformance
    from .plugin import FakeClock

__all__ = ["FakeClock", "ProviderConformance"]


def __getattr__(name: str) -> Any:
    if name == "ProviderConformance":
        from .conformance import ProviderConformance

        return ProviderConformance
    if name == "FakeClock":
        from .plugin import FakeClock

        return FakeClock
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
