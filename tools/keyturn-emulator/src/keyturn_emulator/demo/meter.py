"""The HTTP requests each demo step cost, read from the emulator's own counters.

The emulator counts what reaches it, so the numbers are the provider's view: a refresh
that single-flight shared among 200 callers shows up as one token request, however many
callers asked.
"""

from __future__ import annotations

from keyturn_emulator import Emulator

__all__ = ["RequestMeter"]

#: Endpoint name -> the emulator counters that add up to its requests.
_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "authorize": ("authorize", "consent_denied"),
    "token": ("token_requests",),
    "userinfo": ("userinfo",),
    "revoke": ("revoke",),
    "discovery": ("discovery",),
    "jwks": ("jwks",),
}


class RequestMeter:
    """Differences of one emulator profile's counters between readings.

    :param emulator: the running emulator.
    :param profile: the profile to watch (``google``, ``github``, ``strict``, ``oidc``).
    """

    def __init__(self, emulator: Emulator, profile: str) -> None:
        self.emulator = emulator
        self.profile = profile
        self._last = emulator.counters(profile)
        self._first = dict(self._last)

    def _since(self, before: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
        now = self.emulator.counters(self.profile)
        return now, {name: count - before.get(name, 0) for name, count in now.items()}

    def take(self) -> dict[str, int]:
        """Every counter's change since the previous call (or since the meter was made).

        :return: counter name -> change, for all counters, zeros included.
        """
        self._last, delta = self._since(self._last)
        return delta

    def total(self) -> dict[str, int]:
        """Every counter's change since the meter was made."""
        return self._since(self._first)[1]

    @staticmethod
    def requests(delta: dict[str, int]) -> dict[str, int]:
        """HTTP requests by endpoint in a counter change, zeros left out.

        :param delta: from :meth:`take` or :meth:`total`.
        :return: e.g. ``{"authorize": 1, "token": 1, "userinfo": 2}``; ``discovery`` and
            ``jwks`` count reads of the discovery document and of the key set.
        """
        counts = {
            endpoint: sum(delta.get(name, 0) for name in names)
            for endpoint, names in _ENDPOINTS.items()
        }
        return {endpoint: count for endpoint, count in counts.items() if count}
