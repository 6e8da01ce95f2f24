"""Everything the web routes are configured with, checked once at construction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypedDict
from urllib.parse import urlsplit

from keyturn.client import AsyncKeyturn, Keyturn
from keyturn.errors import ConfigurationError
from keyturn.stores.base import TokenStore

from .cookies import CookiePolicy
from .csrf import Csrf
from .keys import Keyring
from .messages import WebRequest
from .sealing import Sealer
from .strategies import DatabaseStrategy, JwtStrategy, SessionStrategy

__all__ = ["DEFAULT_SESSION_MAX_AGE", "StrategyName", "WebOptions", "WebSettings"]

#: Seconds a session lasts from sign-in unless told otherwise: 30 days, as in Auth.js.
DEFAULT_SESSION_MAX_AGE = 30 * 24 * 3600

StrategyName = Literal["jwt", "database"]

SESSION_COOKIE = "keyturn.session-token"
FLOW_COOKIE = "keyturn.flow"
CSRF_COOKIE = "keyturn.csrf-token"


class WebOptions(TypedDict, total=False):
    """The settings :class:`~keyturn.web.WebAuth`, :class:`~keyturn.web.AsyncWebAuth` and
    :class:`~keyturn.starlette.KeyturnAuth` take as keyword arguments; all optional.

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
    """

    secret: str | Sequence[str] | None
    strategy: StrategyName
    store: TokenStore | None
    base_path: str
    secure_cookies: bool | None
    session_max_age: int
    expose_access_token: bool
    scopes: Mapping[str, Sequence[str]] | None
    fetch_profile: bool
    revoke_on_signout: bool
    url: str | None
    environ: Mapping[str, str] | None


@dataclass
class WebSettings:
    """The routes' configuration; see :class:`~keyturn.web.WebAuth` for each setting."""

    client: Keyturn | AsyncKeyturn
    keyring: Keyring
    strategy_name: StrategyName = "jwt"
    base_path: str = "/auth"
    secure_cookies: bool | None = None
    session_max_age: int = DEFAULT_SESSION_MAX_AGE
    expose_access_token: bool = False
    scopes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    fetch_profile: bool = True
    revoke_on_signout: bool = True
    url: str | None = None
    session_cookie: str = SESSION_COOKIE
    flow_cookie: str = FLOW_COOKIE
    csrf_cookie: str = CSRF_COOKIE

    def __post_init__(self) -> None:
        base = self.base_path.rstrip("/")
        if not base.startswith("/") or "?" in base or "#" in base:
            raise ConfigurationError(f"base_path must be a path like '/auth': {self.base_path!r}")
        self.base_path = base
        if self.session_max_age <= 0:
            raise ConfigurationError("session_max_age must be a positive number of seconds")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigurationError(
                    f"url must be the app's origin, like https://app.example: {self.url!r}"
                )
            self.url = f"{parts.scheme}://{parts.netloc}"
        clock = self.client.clock
        self.flow_sealer = Sealer(self.keyring, self.flow_cookie, clock)
        self.csrf = Csrf(self.keyring, self.csrf_cookie)
        self.strategy: SessionStrategy
        if self.strategy_name == "jwt":
            sealer = Sealer(self.keyring, self.session_cookie, clock)
            self.strategy = JwtStrategy(sealer, self.session_cookie, self.session_max_age)
        elif self.strategy_name == "database":
            self.strategy = DatabaseStrategy(
                self.session_cookie, self.session_max_age, self.client.leeway, clock
            )
        else:
            raise ConfigurationError(
                f"strategy must be 'jwt' or 'database', not {self.strategy_name!r}"
            )

    def origin(self, request: WebRequest) -> str:
        """The app's origin: ``url`` when set (behind a proxy), else the request's."""
        return self.url or request.origin

    def policy(self, request: WebRequest) -> CookiePolicy:
        """How to write cookies for this request (``Secure`` follows HTTPS unless set)."""
        secure = self.secure_cookies
        if secure is None:
            secure = self.origin(request).startswith("https://")
        return CookiePolicy(secure=secure)
