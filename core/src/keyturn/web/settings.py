"""Everything the web routes are configured with, checked once at construction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from keyturn.client import AsyncKeyturn, Keyturn
from keyturn.errors import ConfigurationError

from .cookies import CookiePolicy
from .csrf import Csrf
from .keys import Keyring
from .messages import WebRequest
from .sealing import Sealer
from .strategies import DatabaseStrategy, JwtStrategy, SessionStrategy

__all__ = ["DEFAULT_SESSION_MAX_AGE", "StrategyName", "WebSettings"]

#: Seconds a session lasts from sign-in unless told otherwise: 30 days, as in Auth.js.
DEFAULT_SESSION_MAX_AGE = 30 * 24 * 3600

StrategyName = Literal["jwt", "database"]

SESSION_COOKIE = "keyturn.session-token"
FLOW_COOKIE = "keyturn.flow"
CSRF_COOKIE = "keyturn.csrf-token"


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
