"""The standard cassette scenarios every provider plugin records.

:class:`~pytest_keyturn.ProviderConformance` looks for one ``<scenario>.yaml`` per name, and
``keyturn new-provider`` writes a starter for each, in this order.
"""

from __future__ import annotations

__all__ = ["STANDARD_SCENARIOS"]

STANDARD_SCENARIOS = (
    "exchange_code",
    "refresh_ok",
    "refresh_rotated",
    "refresh_invalid_grant",
    "refresh_transient",
)
