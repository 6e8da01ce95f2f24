"""How ``keyturn demo`` runs: which providers it tours, how long tokens live, how many callers.

:class:`DemoSettings` checks its values when made, so a run never starts with a leeway that
would make every token due as soon as it is issued.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DEFAULT_PROVIDERS", "PROVIDERS", "DemoSettings"]

#: Providers the demo knows, in the order ``all`` runs them. ``oidc`` is any OpenID Provider
#: as keyturn-oidc declares it, by its issuer alone (here the emulator's ``oidc`` profile).
#: ``oidc`` is keyturn-oidc; each other id is its keyturn-<id> plugin against the
#: emulator's profile of that name.
PROVIDERS = (
    "google",
    "github",
    "strict",
    "oidc",
    "gitlab",
    "microsoft",
    "slack",
    "okta",
    "auth0",
    "keycloak",
    "discord",
    "apple",
)
#: Providers run when none is chosen.
DEFAULT_PROVIDERS = ("google", "github")


@dataclass(frozen=True)
class DemoSettings:
    """How the demo runs.

    :ivar providers: provider ids to tour, in order (see :data:`PROVIDERS`).
    :ivar access_token_lifetime: seconds the emulator's access tokens live.
    :ivar leeway: the clients' leeway: a token counts as due this many seconds before it
        expires. Keep it well under the lifetime, or every token is due as soon as it is
        issued (keyturn's default of 60 s would be, with tokens that live seconds).
    :ivar callers: concurrent callers in step 3.
    """

    providers: tuple[str, ...] = DEFAULT_PROVIDERS
    access_token_lifetime: int = 5
    leeway: float = 1.0
    callers: int = 200

    def __post_init__(self) -> None:
        unknown = [name for name in self.providers if name not in PROVIDERS]
        if unknown or not self.providers:
            raise ValueError(f"providers must be among {', '.join(PROVIDERS)}")
        if self.access_token_lifetime < 1:
            raise ValueError("access_token_lifetime must be at least 1 second")
        if not 0 <= self.leeway < self.access_token_lifetime:
            raise ValueError("leeway must be zero or more and less than the token lifetime")
        if self.callers < 2:
            raise ValueError("callers must be at least 2")

    @classmethod
    def choose(
        cls, providers: Sequence[str] = DEFAULT_PROVIDERS, *, fast: bool = False, callers: int = 200
    ) -> DemoSettings:
        """Settings for a normal run (tokens live 5 s, leeway 1 s) or a fast one (1 s, 0).

        :param providers: provider ids, in order.
        :param fast: shorten every wait to about a second.
        :param callers: concurrent callers in step 3.
        :raises ValueError: an unknown provider or too few callers.
        """
        if fast:
            return cls(tuple(providers), access_token_lifetime=1, leeway=0.0, callers=callers)
        return cls(tuple(providers), callers=callers)

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready mapping."""
        data = asdict(self)
        data["providers"] = list(self.providers)
        return data
