"""An example web app: sign in with GitHub or Google through keyturn, see the token refresh.

:func:`~webapp.app.create_app` builds the FastAPI app (keyturn's routes at ``/auth``, one
page, one protected API endpoint); :func:`~webapp.emulated.emulated_client` gives it a
client whose providers are a local :class:`keyturn_emulator.Emulator`;
``python -m webapp`` runs both on 127.0.0.1. See ``README.md`` next to this package.
"""

from __future__ import annotations

from .app import create_app
from .emulated import emulated_client

__all__ = ["create_app", "emulated_client"]
