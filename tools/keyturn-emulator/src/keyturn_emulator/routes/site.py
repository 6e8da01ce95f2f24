"""``Site``: what every route reads: the store, the address, the one client, its registration,
the signing keys and the knobs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from keyturn_emulator.faults import Knobs
from keyturn_emulator.keys import KeyRing
from keyturn_emulator.profiles import Behaviour
from keyturn_emulator.registration import Registration
from keyturn_emulator.state import Store, User

__all__ = ["DISCOVERY_PATH", "Handler", "Site"]

#: Where a discovery document lives below its issuer (OpenID Connect Discovery §4,
#: https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig).
DISCOVERY_PATH = "/.well-known/openid-configuration"

#: A Starlette endpoint: one request in, one response out.
Handler = Callable[[Request], Awaitable[Response]]


class Site:
    """The emulated provider as its routes see it.

    :param store: the shared state.
    :param base_url: ``http://127.0.0.1:PORT``, the root of every endpoint and issuer.
    :param client_id: the one registered client.
    :param client_secret: its secret.
    :param knobs: returns the current knobs.
    :param configure: applies new knobs (for ``POST /_emulator/configure``).
    :param redirect_uris: redirect URIs accepted besides loopback ones.
    :param keys: the server's signing keys; a new ring when ``None``.
    :param registration: the client's public keys and logout URIs; empty when ``None``.
    """

    def __init__(
        self,
        store: Store,
        base_url: str,
        client_id: str,
        client_secret: str,
        knobs: Callable[[], Knobs],
        configure: Callable[..., Knobs],
        redirect_uris: frozenset[str] = frozenset(),
        keys: KeyRing | None = None,
        registration: Registration | None = None,
    ) -> None:
        self.store = store
        self.base_url = base_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.knobs = knobs
        self.configure = configure
        self.redirect_uris = redirect_uris
        self.keys = keys if keys is not None else KeyRing()
        self.registration = registration if registration is not None else Registration()

    def issuer(self, behaviour: Behaviour) -> str | None:
        """The profile's issuer URL, or ``None`` for profiles without one.

        :param behaviour: the profile.
        """
        return f"{self.base_url}/{behaviour.name}" if behaviour.has_issuer else None

    def endpoints(self, behaviour: Behaviour) -> dict[str, str]:
        """The profile's endpoint URLs under their ``ProviderSpec`` field names.

        Always ``authorization_endpoint``, ``token_endpoint`` and ``revocation_endpoint``;
        ``userinfo_endpoint`` for profiles that have one (all but Apple); ``jwks_uri`` for
        profiles that issue ID tokens, ``discovery_url`` for those with an issuer,
        ``end_session_endpoint`` for those with RP-Initiated Logout.

        :param behaviour: the profile.
        """
        root = f"{self.base_url}/{behaviour.name}"
        found = {
            "authorization_endpoint": root + behaviour.paths["authorize"],
            "token_endpoint": root + behaviour.paths["token"],
            "revocation_endpoint": root + behaviour.paths["revoke"],
        }
        if "userinfo" in behaviour.paths:  # Apple has none
            found["userinfo_endpoint"] = root + behaviour.paths["userinfo"]
        if "jwks" in behaviour.paths:
            found["jwks_uri"] = root + behaviour.paths["jwks"]
        if "end_session" in behaviour.paths:
            found["end_session_endpoint"] = root + behaviour.paths["end_session"]
        issuer = self.issuer(behaviour)
        if issuer is not None:
            found["discovery_url"] = issuer + DISCOVERY_PATH
        return found

    def avatar_url(self, user: User) -> str:
        """Where ``user``'s picture is served (``GET /_emulator/avatar/<login>.svg``).

        :param user: the account.
        """
        return f"{self.base_url}/_emulator/avatar/{user.login}.svg"
