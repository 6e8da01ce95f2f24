"""The app's entry points: :class:`WebAuth` (blocking) and :class:`AsyncWebAuth`.

Both take the same settings, run the same route flows (:mod:`keyturn.web.routes`) and
differ only in how they perform I/O. :mod:`keyturn.starlette` wraps :class:`AsyncWebAuth`
as an ASGI app; a Flask or Django view wraps :class:`WebAuth` in a few lines (see
``docs/web.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack, cast

from keyturn.client import AsyncKeyturn, Keyturn
from keyturn.models import Session
from keyturn.stores.base import TokenStore
from keyturn.stores.manager import AsyncTokenManager, TokenManager

from .keys import Keyring
from .messages import WebRequest, WebResponse
from .ops import AsyncOps, SyncOps, adrive, drive
from .routes import Routes
from .settings import WebOptions, WebSettings

__all__ = ["DEFAULT_SESSION_STORE", "AsyncWebAuth", "CurrentSession", "WebAuth"]

#: The SQLite file the database strategy uses when no store is given.
DEFAULT_SESSION_STORE = "keyturn-sessions.sqlite3"


class CurrentSession:
    """The request's session, and the cookies to set on the response (after a refresh).

    :ivar session: the session as the ``session`` callback shaped it; ``None`` when signed out.
    :ivar expires: epoch seconds at which the session ends (0 when signed out).
    :ivar cookies: ``Set-Cookie`` values to add to whatever response the app sends.
    """

    def __init__(self, session: Session | None, expires: int, cookies: list[str]) -> None:
        self.session = session
        self.expires = expires
        self.cookies = cookies

    def __repr__(self) -> str:
        state = "signed out" if self.session is None else f"signed in with {self.session.provider}"
        return f"CurrentSession(<{state}>, {len(self.cookies)} cookie(s))"

    @property
    def needs_sign_in(self) -> bool:
        """Signed out, or the refresh failed for good (``error == "RefreshAccessTokenError"``)."""
        return self.session is None or self.session.error is not None

    @property
    def access_token(self) -> str | None:
        """The access token in clear, for calling the provider's API; ``None`` if signed out."""
        if self.session is None or self.session.access_token is None:
            return None
        return self.session.access_token.get_secret_value()


class _WebAuthBase:
    def __init__(self, client: Keyturn | AsyncKeyturn, options: WebOptions) -> None:
        unknown = sorted(set(options) - set(WebOptions.__annotations__))
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
        strategy = options.get("strategy", "jwt")
        given = cast(Mapping[str, Any], options)
        passed: Any = {name: given[name] for name in _PASSED_ON if name in given}
        self.settings = WebSettings(
            client=client,
            keyring=Keyring(options.get("secret"), environ=options.get("environ")),
            strategy_name=strategy,
            **passed,
        )
        self.routes = Routes(self.settings)
        self.store: TokenStore | None = None
        if strategy == "database":
            store = options.get("store")
            if store is None:
                from keyturn.stores.sqlite import SQLiteTokenStore

                store = SQLiteTokenStore(DEFAULT_SESSION_STORE)
            self.store = store

    @property
    def base_path(self) -> str:
        """Where the routes live (``/auth``)."""
        return self.settings.base_path

    def sign_in_url(self, provider: str, callback_url: str = "/") -> str:
        """The path that starts a sign-in with ``provider`` and comes back to ``callback_url``."""
        from urllib.parse import quote

        return f"{self.base_path}/signin/{provider}?callbackUrl={quote(callback_url, safe='')}"


_PASSED_ON = (
    "base_path",
    "secure_cookies",
    "session_max_age",
    "expose_access_token",
    "scopes",
    "fetch_profile",
    "revoke_on_signout",
    "url",
)


class WebAuth(_WebAuthBase):
    """Sign-in routes and sessions for blocking frameworks (Flask, Django)."""

    def __init__(self, client: Keyturn | None = None, **options: Unpack[WebOptions]) -> None:
        self.client = client or Keyturn()
        super().__init__(self.client, options)
        manager = None if self.store is None else TokenManager(self.client, self.store)
        self._ops = SyncOps(self.client, manager)

    def handle(self, request: WebRequest) -> WebResponse:
        """Answer a request to one of the routes (a 404 for any other path)."""
        return drive(self.routes.handle(request), self._ops)

    def current(self, request: WebRequest) -> CurrentSession:
        """The request's session, refreshed first when due (see :class:`CurrentSession`)."""
        return CurrentSession(*drive(self.routes.current(request), self._ops))


class AsyncWebAuth(_WebAuthBase):
    """Sign-in routes and sessions for async frameworks; see :mod:`keyturn.starlette`."""

    def __init__(self, client: AsyncKeyturn | None = None, **options: Unpack[WebOptions]) -> None:
        self.client = client or AsyncKeyturn()
        super().__init__(self.client, options)
        manager = None if self.store is None else AsyncTokenManager(self.client, self.store)
        self._ops = AsyncOps(self.client, manager)

    async def handle(self, request: WebRequest) -> WebResponse:
        """Answer a request to one of the routes (a 404 for any other path)."""
        return await adrive(self.routes.handle(request), self._ops)

    async def current(self, request: WebRequest) -> CurrentSession:
        """The request's session, refreshed first when due (see :class:`CurrentSession`)."""
        return CurrentSession(*await adrive(self.routes.current(request), self._ops))
