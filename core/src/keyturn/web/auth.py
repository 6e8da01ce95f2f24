"""The app's entry points: :class:`WebAuth` (blocking) and :class:`AsyncWebAuth`.

Both take the same settings, run the same route operations (:mod:`keyturn.web.routes`) and
differ only in the driver: :func:`keyturn.effects.run` or :func:`keyturn.effects.arun`.
:mod:`keyturn.starlette` wraps :class:`AsyncWebAuth` as an ASGI app; a Flask or Django view
wraps :class:`WebAuth` in a few lines (see ``docs/web.md``).
"""

from __future__ import annotations

from typing import Any, TypeVar, Unpack
from urllib.parse import quote

from keyturn.client import AsyncKeyturn, BaseKeyturn, Keyturn
from keyturn.effects import arun, run
from keyturn.errors import ConfigurationError
from keyturn.models import Session
from keyturn.stores.base import TokenStore

from .messages import WebRequest, WebResponse
from .routes import Routes
from .settings import WebOptions, WebSettings, own_client_options

__all__ = ["AsyncWebAuth", "BaseWebAuth", "CurrentSession", "WebAuth"]


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


class BaseWebAuth:
    """What :class:`WebAuth` and :class:`AsyncWebAuth` share: the settings and the routes.

    :ivar settings: the checked settings.
    :ivar routes: the route operations, which the two classes drive.
    :ivar store: the database strategy's token store (``None`` for ``jwt`` sessions).
    """

    def __init__(self, client: BaseKeyturn[Any], options: WebOptions) -> None:
        self.settings = WebSettings(client, options)
        self.routes = Routes(self.settings)
        self.store: TokenStore | None = self.settings.store

    @property
    def base_path(self) -> str:
        """Where the routes live (``/auth``)."""
        return self.settings.base_path

    def sign_in_url(self, provider: str, callback_url: str = "/") -> str:
        """The path that starts a sign-in with ``provider`` and comes back to ``callback_url``."""
        return f"{self.base_path}/signin/{provider}?callbackUrl={quote(callback_url, safe='')}"


C = TypeVar("C", Keyturn, AsyncKeyturn)


def checked_client(client: object, kind: type[C], entry: str, other: str) -> C | None:
    """``client`` when it is a ``kind`` (or ``None``); else a ConfigurationError saying why.

    A blocking client in an async entry point, or the other way round, would otherwise be
    accepted and fail on the first sign-in, after the provider's code is spent.
    """
    if client is None or isinstance(client, kind):
        return client
    article = "an" if kind.__name__[0] in "AEIOU" else "a"
    raise ConfigurationError(
        f"{entry} needs {article} {kind.__name__}, not {type(client).__name__}"
        + (
            f": use {other} with a {type(client).__name__}"
            if isinstance(client, BaseKeyturn)
            else ""
        )
    )


class WebAuth(BaseWebAuth):
    """Sign-in routes and sessions for blocking frameworks (Flask, Django).

    :param client: ``Keyturn()`` when omitted; with the ``database`` strategy, one that keeps
        discovery documents and key sets in the sessions' store (``document_cache=store``).
    :param options: the settings, all optional: see :class:`WebOptions`.
    """

    def __init__(self, client: Keyturn | None = None, **options: Unpack[WebOptions]) -> None:
        given = checked_client(client, Keyturn, "WebAuth", "AsyncWebAuth")
        if given is None:
            options, client_options = own_client_options(options)
            given = Keyturn(**client_options)
        self.client = given
        super().__init__(self.client, options)

    def handle(self, request: WebRequest) -> WebResponse:
        """Answer a request to one of the routes (a 404 for any other path)."""
        return run(self.routes.handle(request), self.client.sender)

    def current(self, request: WebRequest) -> CurrentSession:
        """The request's session, refreshed first when due (see :class:`CurrentSession`)."""
        return CurrentSession(*run(self.routes.current(request), self.client.sender))


class AsyncWebAuth(BaseWebAuth):
    """Sign-in routes and sessions for async frameworks; see :mod:`keyturn.starlette`.

    :param client: ``AsyncKeyturn()`` when omitted; with the ``database`` strategy, one that
        keeps discovery documents and key sets in the sessions' store.
    :param options: the settings, all optional: see :class:`WebOptions`.
    """

    def __init__(self, client: AsyncKeyturn | None = None, **options: Unpack[WebOptions]) -> None:
        given = checked_client(client, AsyncKeyturn, "AsyncWebAuth", "WebAuth")
        if given is None:
            options, client_options = own_client_options(options)
            given = AsyncKeyturn(**client_options)
        self.client = given
        super().__init__(self.client, options)

    async def handle(self, request: WebRequest) -> WebResponse:
        """Answer a request to one of the routes (a 404 for any other path)."""
        return await arun(self.routes.handle(request), self.client.sender)

    async def current(self, request: WebRequest) -> CurrentSession:
        """The request's session, refreshed first when due (see :class:`CurrentSession`)."""
        return CurrentSession(*await arun(self.routes.current(request), self.client.sender))
