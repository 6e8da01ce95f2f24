"""``EmulatorApp``: the Starlette app that serves every profile, assembled from
:mod:`keyturn_emulator.routes`.

Each profile lives under ``/<profile>`` with the paths of the real provider (see
:mod:`keyturn_emulator.profiles`), so ``point()`` can swap only scheme, host and a prefix;
``/_emulator/...`` holds the controls (:mod:`keyturn_emulator.routes.control`).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from .pkce import verify_pkce
from .profiles import PROFILES
from .routes import authorize, control, discovery, logout, revoke, token, userinfo
from .routes.authorize import LOOPBACK_HOSTS
from .routes.site import Site

__all__ = ["LOOPBACK_HOSTS", "EmulatorApp", "verify_pkce"]


class EmulatorApp(Site):
    """Builds the Starlette app over a :class:`~keyturn_emulator.state.Store`.

    :param store: the shared state.
    :param base_url: ``http://127.0.0.1:PORT``, the root of every endpoint and issuer.
    :param client_id: the one registered client.
    :param client_secret: its secret.
    :param knobs: returns the current knobs.
    :param configure: applies new knobs (for ``POST /_emulator/configure``).
    :param redirect_uris: redirect URIs accepted besides loopback ones.
    :param keys: the server's signing keys.
    :param registration: the client's public keys and post-logout redirect URIs.
    """

    def token_paths(self) -> dict[str, str]:
        """Token-endpoint path -> profile name."""
        return {token.path(b): b.name for b in PROFILES.values()}

    def state(self) -> dict[str, Any]:
        """What ``GET /_emulator/state`` answers."""
        return control.snapshot(self)

    def build(self) -> Starlette:
        """The Starlette app with every route."""
        routes: list[Route] = []
        for b in PROFILES.values():
            routes += authorize.routes(self, b)
            routes += token.routes(self, b)
            routes += userinfo.routes(self, b)
            routes += revoke.routes(self, b)
            routes += discovery.routes(self, b)
            routes += logout.routes(self, b)
        routes += control.routes(self)
        return Starlette(routes=routes)
