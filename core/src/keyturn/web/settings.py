"""Everything the web routes are configured with.

:class:`WebOptions` declares each setting once; :class:`WebSettings` reads and checks each one
once, when the app builds its ``WebAuth``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal, TypedDict, cast
from urllib.parse import urlsplit

from keyturn.client import BaseKeyturn
from keyturn.errors import ConfigurationError, UnknownProviderError
from keyturn.stores.base import TokenStore
from keyturn.stores.manager import BaseTokenManager

from .cookies import CookiePolicy
from .csrf import Csrf
from .keys import Keyring
from .messages import WebRequest
from .sealing import Sealer
from .strategies import COOKIE_PARTS, CookiePart, DatabaseStrategy, JwtStrategy, SessionStrategy

__all__ = [
    "DEFAULT_SESSION_MAX_AGE",
    "DEFAULT_SESSION_STORE",
    "StrategyName",
    "WebOptions",
    "WebSettings",
    "end_session_problem",
    "own_client_options",
]

#: Seconds a session lasts from sign-in unless told otherwise: 30 days, as in Auth.js.
DEFAULT_SESSION_MAX_AGE = 30 * 24 * 3600
#: The SQLite file the database strategy uses when no store is given.
DEFAULT_SESSION_STORE = "keyturn-sessions.sqlite3"

StrategyName = Literal["jwt", "database"]

SESSION_COOKIE = "keyturn.session-token"
FLOW_COOKIE = "keyturn.flow"
CSRF_COOKIE = "keyturn.csrf-token"
SIGNOUT_COOKIE = "keyturn.signout"


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
    :param secure_cookies: ``Secure`` cookies with the ``__Host-`` prefix; by default when
        the app is reached over HTTPS. Set ``False`` only for plain-HTTP loopback development.
    :param session_max_age: seconds a session lasts from sign-in (30 days).
    :param session_cookie_keeps: what a ``jwt`` session cookie keeps besides what the session
        needs, while it fits the cookie budget: any of ``"id_token"``, ``"raw_profile"``
        (``Profile.raw``) and ``"token_extra"`` (``TokenSet.extra``); none by default. The
        ``database`` strategy keeps all of them anyway.
    :param expose_access_token: add ``accessToken`` to ``/auth/session`` for scripts, as the
        NextAuth guide does; off by default, so tokens stay on the server.
    :param scopes: scopes per provider id; the provider's defaults otherwise.
    :param fetch_profile: fetch the user's profile at sign-in (on).
    :param revoke_on_signout: revoke the grant at the provider on sign-out where it has a
        revocation endpoint (on).
    :param logout_at_provider: ids of the providers at which sign-out also ends the user's
        session (OpenID Connect RP-Initiated Logout 1.0): the browser is sent to the
        provider's ``end_session_endpoint`` and comes back to ``<base_path>/signout/callback``,
        then to the sign-out's ``callbackUrl``. A ``jwt`` session cookie of these providers
        keeps the ID token (for ``id_token_hint``) while it fits. Each must have an
        ``end_session_endpoint`` in its spec, or a ``discovery_url`` to read one from (checked
        at sign-out then); none by default.
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
    session_cookie_keeps: Sequence[CookiePart]
    expose_access_token: bool
    scopes: Mapping[str, Sequence[str]] | None
    fetch_profile: bool
    revoke_on_signout: bool
    logout_at_provider: Collection[str]
    url: str | None
    environ: Mapping[str, str] | None


class WebSettings:
    """The routes' configuration: each setting of :class:`WebOptions` read and checked once.

    :param client: the app's client (``Keyturn`` or ``AsyncKeyturn``).
    :param options: the settings the app passed.
    :raises TypeError: a setting :class:`WebOptions` does not declare (a misspelt name).
    :raises ConfigurationError: a setting with a value it cannot take.
    """

    session_cookie = SESSION_COOKIE
    flow_cookie = FLOW_COOKIE
    csrf_cookie = CSRF_COOKIE
    signout_cookie = SIGNOUT_COOKIE

    def __init__(self, client: BaseKeyturn[Any], options: WebOptions) -> None:
        unknown = sorted(set(options) - set(WebOptions.__annotations__))
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
        self.client = client
        self.keyring = Keyring(options.get("secret"), environ=options.get("environ"))
        self.base_path = _base_path(options.get("base_path", "/auth"))
        self.secure_cookies = options.get("secure_cookies")
        self.session_max_age = options.get("session_max_age", DEFAULT_SESSION_MAX_AGE)
        if self.session_max_age <= 0:
            raise ConfigurationError("session_max_age must be a positive number of seconds")
        self.session_cookie_keeps = _cookie_keeps(options.get("session_cookie_keeps", ()))
        self.expose_access_token = options.get("expose_access_token", False)
        self.scopes: Mapping[str, Sequence[str]] = options.get("scopes") or {}
        self.fetch_profile = options.get("fetch_profile", True)
        self.revoke_on_signout = options.get("revoke_on_signout", True)
        self.logout_at_provider = _logout_providers(client, options.get("logout_at_provider", ()))
        self.url = _origin(options.get("url"))
        self.flow_sealer = Sealer(self.keyring, self.flow_cookie, client.clock)
        self.signout_sealer = Sealer(self.keyring, self.signout_cookie, client.clock)
        self.csrf = Csrf(self.keyring, self.csrf_cookie)
        self.store: TokenStore | None = None
        self.strategy: SessionStrategy
        strategy = options.get("strategy", "jwt")
        if strategy == "jwt":
            sealer = Sealer(self.keyring, self.session_cookie, client.clock)
            self.strategy = JwtStrategy(
                client,
                sealer,
                self.session_cookie,
                self.session_max_age,
                self.session_cookie_keeps,
                id_token_for=self.logout_at_provider,
            )
        elif strategy == "database":
            given = options.get("store")
            self.store = _default_store() if given is None else given
            self.strategy = DatabaseStrategy(
                BaseTokenManager(client, self.store), self.session_cookie, self.session_max_age
            )
        else:
            raise ConfigurationError(f"strategy must be 'jwt' or 'database', not {strategy!r}")

    def origin(self, request: WebRequest) -> str:
        """The app's origin: ``url`` when set (behind a proxy), else the request's."""
        return self.url or request.origin

    def policy(self, request: WebRequest) -> CookiePolicy:
        """How to write cookies for this request (``Secure`` follows HTTPS unless set)."""
        secure = self.secure_cookies
        if secure is None:
            secure = self.origin(request).startswith("https://")
        return _POLICIES[secure]

    def flow_policy(self, request: WebRequest, posted: bool) -> CookiePolicy:
        """How to write the flow cookie: as :meth:`policy`, or, for a provider whose
        callback is a cross-site ``POST`` (``form_post``), ``SameSite=None; Secure``, which
        the browser sends with that ``POST`` (a ``Lax`` cookie it would hold back).

        Browsers keep a ``Secure`` cookie from HTTPS, and from ``http://localhost`` for
        development; such a provider cannot sign in over plain HTTP elsewhere.
        """
        secure = self.policy(request).secure
        return _POST_POLICIES[secure] if posted else _POLICIES[secure]


#: The two policies :meth:`WebSettings.policy` answers with (they are immutable).
_POLICIES = {True: CookiePolicy(secure=True), False: CookiePolicy(secure=False)}
#: The flow cookie's policies for a provider that posts its callback (``form_post``).
_POST_POLICIES = {
    True: CookiePolicy(secure=True, same_site="none"),
    False: CookiePolicy(secure=False, same_site="none"),
}


def _cookie_keeps(value: Sequence[str]) -> tuple[CookiePart, ...]:
    if isinstance(value, str):
        value = [value]
    kept: list[CookiePart] = []
    for part in value:
        if part not in COOKIE_PARTS:
            raise ConfigurationError(
                f"session_cookie_keeps takes {', '.join(map(repr, COOKIE_PARTS))}, not {part!r}"
            )
        kept.append(part)
    return tuple(kept)


def _logout_providers(client: BaseKeyturn[Any], value: Collection[str]) -> frozenset[str]:
    """The ids of ``logout_at_provider``, each checked against its provider's spec."""
    if isinstance(value, str):
        value = [value]
    chosen: set[str] = set()
    for provider in value:
        try:
            spec = client.provider(provider)
        except UnknownProviderError as exc:
            raise ConfigurationError(f"logout_at_provider: {exc}") from None
        endpoint = spec.end_session_endpoint
        if endpoint is None:
            if spec.discovery_url is None:
                raise ConfigurationError(
                    f"logout_at_provider names {provider!r}, whose spec has no "
                    "end_session_endpoint (nor a discovery_url to read one from)"
                )
        else:
            problem = end_session_problem(endpoint)
            if problem is not None:
                raise ConfigurationError(
                    f"logout_at_provider names {provider!r}, whose end_session_endpoint {problem}"
                )
        chosen.add(provider)
    return frozenset(chosen)


def end_session_problem(url: str) -> str | None:
    """What is wrong with ``url`` as an ``end_session_endpoint``, or ``None`` if nothing.

    It must be an absolute ``https`` URL (plain ``http`` only on a loopback host, for tests
    and development) without a fragment; a query is allowed and kept (RP-Initiated Logout 1.0
    section 2).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("https", "http") or not host:
        return "is not an absolute http(s) URL"
    if parts.fragment or url.endswith("#"):
        return "has a fragment"
    if parts.scheme == "http" and not _loopback(host):
        return "must use https (plain http is for loopback hosts only)"
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _base_path(value: str) -> str:
    base = value.rstrip("/")
    if not base.startswith("/") or "?" in base or "#" in base:
        raise ConfigurationError(f"base_path must be a path like '/auth': {value!r}")
    return base


def _origin(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"url must be the app's origin, like https://app.example: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _default_store() -> TokenStore:
    from keyturn.stores.sqlite import SQLiteTokenStore

    return SQLiteTokenStore(DEFAULT_SESSION_STORE)


def own_client_options(options: WebOptions) -> tuple[WebOptions, dict[str, Any]]:
    """The settings and the client options of an entry point that makes its own client.

    With the ``database`` strategy, the store is settled now (the default SQLite file when
    the app names none) and handed to the new client as its document cache when it is one
    (every built-in store is: :class:`~keyturn.documents.DocumentCache`): the processes
    that share the sessions then share discovery documents and key sets too, and fetch
    each once between them. A client the app passes is never changed; give it
    ``document_cache=store`` itself.

    :param options: the settings the app passed.
    :return: the settings (with ``store`` settled), and keyword arguments for the client.
    """
    if options.get("strategy", "jwt") != "database":
        return options, {}
    from keyturn.documents import DocumentCache

    given = options.get("store")
    store = _default_store() if given is None else given
    settled = cast(WebOptions, {**options, "store": store})
    return settled, ({"document_cache": store} if isinstance(store, DocumentCache) else {})
