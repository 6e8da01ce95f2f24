"""Web integration: sign-in routes, sessions in an encrypted cookie or a token store.

Framework-neutral: :class:`WebAuth` (blocking: Flask, Django) and :class:`AsyncWebAuth`
(async) answer :class:`WebRequest` with :class:`WebResponse`. :mod:`keyturn.starlette`
mounts the async one in Starlette and FastAPI. Needs ``keyturn[web]`` (joserfc).
"""

from __future__ import annotations

from .auth import AsyncWebAuth, BaseWebAuth, CurrentSession, WebAuth
from .keys import SECRET_ENV, Keyring
from .messages import WebRequest, WebResponse
from .routes import session_json
from .settings import DEFAULT_SESSION_MAX_AGE, DEFAULT_SESSION_STORE, WebOptions

__all__ = [
    "DEFAULT_SESSION_MAX_AGE",
    "DEFAULT_SESSION_STORE",
    "SECRET_ENV",
    "AsyncWebAuth",
    "BaseWebAuth",
    "CurrentSession",
    "Keyring",
    "WebAuth",
    "WebOptions",
    "WebRequest",
    "WebResponse",
    "session_json",
]
