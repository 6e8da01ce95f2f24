"""The app's entry points: :class:`WebAuth` (blocking) and :class:`AsyncWebAuth`.

Both take the same settings, run the same route flows (:mod:`keyturn.web.routes`) and
differ only in how they perform I/O. :mod:`keyturn.starlette` wraps :class:`AsyncWebAuth`
as an ASGI app; a Flask or Django view wraps :class:`WebAuth` in a few lines (see
``docs/web.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from keyturn.client import AsyncKeyturn, Keyturn
from keyturn.models import Session
from keyturn.stores.base import TokenStore
from keyturn.stores.manager import AsyncTokenManager, TokenManager

from .keys import Keyring
from .messages import WebRequest, WebResponse
from .ops import AsyncOps, SyncOps, adrive, drive
from .routes import Routes
from .settings import DEFAULT_SESSION_MAX_AGE, StrategyName, WebSettings

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
    def __init__(
        self,
        client: Keyturn | AsyncKeyturn,
        *,
        secret: str | Sequence[str] | None,
        strategy: StrategyName,
        store: TokenStore | None,
        base_path: str,
        secure_cookies: bool | None,
        session_max_age: int,
        expose_access_token: bool,
        scopes: Mapping[str, Sequence[str]] | None,
        fetch_profile: bool,
        revoke_on_signout: bool,
        url: str | None,
        environ: Mapping[str, str] | None,
    ) -> None:
        self.settings = WebSettings(
            client=client,
            keyring=Keyring(secret, environ=environ),
            strategy_name=strategy,
            base_path=base_path,
            secure_cookies=secure_cookies,
            session_max_age=session_max_age,
            expose_access_token=expose_access_token,
            scopes=dict(scopes or {}),
            fetch_profile=fetch_profile,
            revoke_on_signout=revoke_on_signout,
            url=url,
        )
        self.routes = Routes(self.settings)
        self.store: TokenStore | None = None
        if strategy == "database":
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


_SETTINGS_DOC = """
    :param client: the client that talks to providers (credentials, plugins, clock).
    :param secret: the key material for every cookie (at least 32 random characters), or
        several, newest first, while rotating; ``KEYTURN_SECRET`` when omitted.
    :param strategy: ``"jwt"`` (the session sealed in the cookie, the default) or
        ``"database"`` (a session id in the cookie, tokens in ``store``).
    :param store: the token store of the database strategy; a SQLite file
        (``keyturn-sessions.sqlite3``) when omitted.
    :param base_path: where the routes are mounted (``/auth``).
    :param secure_cookies: ``Secure`` cookies with the ``__Secure-`` prefix; by default when
        the app is reached over HTTPS. Set ``False`` only for plain-HTTP loopback development.
    :param session_max_age: seconds a session lasts from sign-in (30 days).
    :param expose_access_token: add ``accessToken`` to ``/auth/session`` for scripts, as the
        NextAuth guide does; off by default, so tokens stay on the server.
    :param scopes: scopes per provider id; the provider's defaults otherwise.
    :param fetch_profile: fetch the user's profile at sign-in (on).
    :param revoke_on_signout: revoke the grant at the provider on sign-out where it has a
        revocation endpoint (on).
    :param url: the app's public origin (``https://app.example``) when a proxy in front
        changes the scheme or host the app sees.
    :param environ: where to read ``KEYTURN_SECRET`` (``os.environ``).
    :raises ConfigurationError: a missing or short secret, or a bad setting.
"""


class WebAuth(_WebAuthBase):
    """Sign-in routes and sessions for blocking frameworks (Flask, Django)."""

    def __init__(
        self,
        client: Keyturn | None = None,
        *,
        secret: str | Sequence[str] | None = None,
        strategy: StrategyName = "jwt",
        store: TokenStore | None = None,
        base_path: str = "/auth",
        secure_cookies: bool | None = None,
        session_max_age: int = DEFAULT_SESSION_MAX_AGE,
        expose_access_token: bool = False,
        scopes: Mapping[str, Sequence[str]] | None = None,
        fetch_profile: bool = True,
        revoke_on_signout: bool = True,
        url: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client or Keyturn()
        super().__init__(
            self.client,
            secret=secret,
            strategy=strategy,
            store=store,
            base_path=base_path,
            secure_cookies=secure_cookies,
            session_max_age=session_max_age,
            expose_access_token=expose_access_token,
            scopes=scopes,
            fetch_profile=fetch_profile,
            revoke_on_signout=revoke_on_signout,
            url=url,
            environ=environ,
        )
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

    def __init__(
        self,
        client: AsyncKeyturn | None = None,
        *,
        secret: str | Sequence[str] | None = None,
        strategy: StrategyName = "jwt",
        store: TokenStore | None = None,
        base_path: str = "/auth",
        secure_cookies: bool | None = None,
        session_max_age: int = DEFAULT_SESSION_MAX_AGE,
        expose_access_token: bool = False,
        scopes: Mapping[str, Sequence[str]] | None = None,
        fetch_profile: bool = True,
        revoke_on_signout: bool = True,
        url: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client or AsyncKeyturn()
        super().__init__(
            self.client,
            secret=secret,
            strategy=strategy,
            store=store,
            base_path=base_path,
            secure_cookies=secure_cookies,
            session_max_age=session_max_age,
            expose_access_token=expose_access_token,
            scopes=scopes,
            fetch_profile=fetch_profile,
            revoke_on_signout=revoke_on_signout,
            url=url,
            environ=environ,
        )
        manager = None if self.store is None else AsyncTokenManager(self.client, self.store)
        self._ops = AsyncOps(self.client, manager)

    async def handle(self, request: WebRequest) -> WebResponse:
        """Answer a request to one of the routes (a 404 for any other path)."""
        return await adrive(self.routes.handle(request), self._ops)

    async def current(self, request: WebRequest) -> CurrentSession:
        """The request's session, refreshed first when due (see :class:`CurrentSession`)."""
        return CurrentSession(*await adrive(self.routes.current(request), self._ops))


WebAuth.__doc__ = (WebAuth.__doc__ or "").rstrip() + "\n" + _SETTINGS_DOC
AsyncWebAuth.__doc__ = (AsyncWebAuth.__doc__ or "").rstrip() + "\n" + _SETTINGS_DOC
