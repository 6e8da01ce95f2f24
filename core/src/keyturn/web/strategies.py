"""Where a signed-in session lives between requests: the two strategies.

``jwt`` (the default, as in Auth.js): the :class:`~keyturn.JWT` is sealed into the session
cookie (JWE, ``dir`` + ``A256GCM``), split into chunks when it outgrows 4 KB. Nothing is kept
on the server. A refresh runs the ``jwt`` callback through the client's single-flight path and
writes the cookie again. The cookie keeps what the session needs: the tokens a refresh and the
app's calls use, the user, the claims and the refresh failure; it leaves out the ID token, the
provider's raw profile and the token response's unknown fields unless the app asks for them
(``keeps``), or, for the ID token, the provider is one the app logs out at
(``id_token_for``: ``logout_at_provider`` sends it as ``id_token_hint``). Its plaintext is
compressed with each token apart (:mod:`keyturn.web.packing`),
and all of its chunks stay within :data:`~keyturn.web.cookies.SESSION_COOKIE_BUDGET`: what the
app asked to keep is left out when it does not fit, and a session that still does not fit is
:class:`SessionTooLargeError` at sign-in and ends at a refresh.

``database``: the cookie holds only a random session id; the tokens, and the user and claims
as the row's ``data``, live in a :class:`~keyturn.stores.TokenStore` under a key derived from
the id (the store never sees the id itself). A refresh goes through the
:class:`~keyturn.stores.TokenManager`: once per session across threads, tasks and processes
sharing the store, saved compare-and-set. The ``jwt`` callback runs at sign-in; the refresh
outcome is recorded in the store row, from which the session's ``error`` is read. Signing out
deletes the row, so a stolen cookie dies with it. A row ends with its session: it is saved
with the session's end as its ``expires_at`` (Redis drops it then; ``sweep()`` on the store,
or ``keyturn sessions sweep``, deletes such rows), and a row read after its session ended is
deleted there and then. Neither revokes the grant at the provider.

In both, a session lasts ``max_age`` seconds from sign-in, and a cookie that cannot be read
(tampered, truncated, expired, sealed with another key) is a signed-out visitor.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import re
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, StrictInt, ValidationError

from keyturn.client import BaseKeyturn
from keyturn.effects import Operation, done
from keyturn.errors import KeyturnError, ProviderError, TokenNotFoundError
from keyturn.models import JWT, REVEAL, IdTokenIdentity, Profile
from keyturn.stores.base import StoredTokens, TokenStore
from keyturn.stores.manager import BaseTokenManager

from .cookies import (
    SESSION_COOKIE_BUDGET,
    CookiePolicy,
    chunked_size,
    expire_chunked,
    read_chunked,
    write_chunked,
)
from .messages import WebRequest
from .sealing import Sealer

__all__ = [
    "COOKIE_PARTS",
    "CookiePart",
    "Current",
    "DatabaseStrategy",
    "JwtStrategy",
    "SessionStrategy",
    "SessionTooLargeError",
]

log = logging.getLogger("keyturn.web")

#: Prefix of the store keys that hold database sessions.
SESSION_KEY_PREFIX = "keyturn-session:"
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")


#: What a ``jwt`` cookie leaves out unless the app asks for it (``session_cookie_keeps``):
#: the ID token (``TokenSet.id_token``), the provider's raw profile (``Profile.raw``) and the
#: token response's unknown fields (``TokenSet.extra``).
CookiePart = Literal["id_token", "raw_profile", "token_extra"]
COOKIE_PARTS: tuple[CookiePart, ...] = ("id_token", "raw_profile", "token_extra")

#: The values of a sealed session that hold secrets, compressed apart from the rest.
_SECRET_PATHS = tuple(
    ("jwt", "tokens", field) for field in ("access_token", "refresh_token", "id_token", "extra")
)


class SessionTooLargeError(KeyturnError):
    """A session does not fit the ``jwt`` cookie's budget, even with nothing optional in it.

    :ivar provider: the session's provider.
    :ivar size: bytes its cookies would add to a request's ``Cookie`` header.
    """

    def __init__(self, provider: str, size: int) -> None:
        super().__init__(
            f"a {provider} session needs {size} bytes of cookies, over the budget of "
            f"{SESSION_COOKIE_BUDGET} that proxies let through; sessions this large need "
            "strategy='database'"
        )
        self.provider = provider
        self.size = size


@dataclass(frozen=True)
class Current:
    """A readable session: its JWT, when it ends, and (database) its store key."""

    jwt: JWT
    expires: int
    key: str | None = None


class SessionStrategy(Protocol):
    """What the routes need of a strategy. Each method returns an operation (it may do I/O)."""

    cookie: str

    def open(self, request: WebRequest, policy: CookiePolicy) -> Operation[Current | None]:
        """The request's session, or ``None`` when signed out."""
        ...

    def refresh(
        self, request: WebRequest, policy: CookiePolicy, current: Current
    ) -> Operation[tuple[Current | None, list[str]]]:
        """Refresh the tokens if due; the session after, and cookies to set.

        The session is ``None`` when it ended meanwhile (signed out in another tab).
        """
        ...

    def create(self, request: WebRequest, policy: CookiePolicy, jwt: JWT) -> Operation[list[str]]:
        """Start a session after sign-in; the cookies to set.

        :raises SessionTooLargeError: the session cannot be stored (``jwt`` only).
        """
        ...

    def end(
        self, request: WebRequest, policy: CookiePolicy, current: Current | None
    ) -> Operation[list[str]]:
        """Forget the session; the cookies that delete it."""
        ...


class _Envelope(BaseModel):
    """What a session cookie holds, read straight from its JSON plaintext in one pass.

    Only object keys go through pydantic-core's string cache (no token stays in it). Built on
    first use, not when the module is imported.
    """

    model_config = ConfigDict(extra="ignore", cache_strings="keys", defer_build=True)

    exp: StrictInt
    jwt: JWT


def _dump(jwt: JWT) -> dict[str, Any]:
    return jwt.model_dump(mode="json", context=REVEAL)


def _kept(jwt: JWT, keeps: Sequence[CookiePart]) -> JWT:
    """``jwt`` without the parts of :data:`COOKIE_PARTS` that ``keeps`` does not name."""
    tokens, user = jwt.tokens, jwt.user
    drop: dict[str, Any] = {}
    if "id_token" not in keeps and tokens.id_token is not None:
        drop["id_token"] = None
        # Whom it named stays, so a refreshed ID token is still held to this session.
        drop["id_token_identity"] = IdTokenIdentity.of(tokens.id_token.get_secret_value())
    if "token_extra" not in keeps and tokens.extra:
        drop["extra"] = {}
    update: dict[str, Any] = {}
    if drop:
        update["tokens"] = tokens.model_copy(update=drop)
    if "raw_profile" not in keeps and user is not None and user.raw:
        update["user"] = user.model_copy(update={"raw": {}})
    return jwt.model_copy(update=update) if update else jwt


def _present(jwt: JWT, keeps: Sequence[CookiePart]) -> list[str]:
    """The parts of ``keeps`` that ``jwt`` holds something in."""
    held = {
        "id_token": jwt.tokens.id_token is not None,
        "token_extra": bool(jwt.tokens.extra),
        "raw_profile": jwt.user is not None and bool(jwt.user.raw),
    }
    return [part for part in keeps if held[part]]


class JwtStrategy:
    """Sessions sealed in the cookie itself.

    :param client: the client whose ``jwt`` operation refreshes the session.
    :param sealer: seals and reads the cookie.
    :param cookie: the cookie's base name.
    :param max_age: seconds a session lasts from sign-in.
    :param keeps: the parts of :data:`COOKIE_PARTS` the cookie keeps while they fit.
    :param id_token_for: providers whose sessions keep the ID token too while it fits (the
        app logs out at them, with the ID token as ``id_token_hint``).
    """

    name = "jwt"

    def __init__(
        self,
        client: BaseKeyturn[Any],
        sealer: Sealer,
        cookie: str,
        max_age: int,
        keeps: Sequence[CookiePart] = (),
        *,
        id_token_for: Collection[str] = (),
    ) -> None:
        self.client = client
        self.sealer = sealer
        self.cookie = cookie
        self.max_age = max_age
        self.keeps = tuple(keeps)
        self.id_token_for = frozenset(id_token_for)
        with_id_token: tuple[CookiePart, ...] = (*self.keeps, "id_token")
        #: What the cookie of a provider in ``id_token_for`` keeps while it fits.
        self._keeps_with_id_token = self.keeps if "id_token" in self.keeps else with_id_token

    def keeps_for(self, provider: str) -> tuple[CookiePart, ...]:
        """The parts a session of ``provider`` keeps in its cookie while they fit."""
        return self._keeps_with_id_token if provider in self.id_token_for else self.keeps

    def _attempts(self, jwt: JWT) -> list[tuple[CookiePart, ...]]:
        """What to try to keep, largest first: all that is wanted; the ID token alone when
        the app logs out at the provider with it; nothing."""
        wanted = self.keeps_for(jwt.provider)
        if not _present(jwt, wanted):  # the first attempt is already the smallest
            return [wanted]
        attempts = [wanted]
        holds_id_token = jwt.tokens.id_token is not None
        if jwt.provider in self.id_token_for and wanted != ("id_token",) and holds_id_token:
            attempts.append(("id_token",))
        attempts.append(())
        return attempts

    def _sealed(self, name: str, jwt: JWT, payload: dict[str, Any]) -> tuple[JWT, str]:
        """The JWT as the cookie keeps it, and the cookie's value.

        What the app asked to keep is left out, with a warning, when the cookie would not fit
        its budget with it; the ID token of a provider the app logs out at goes last.

        :raises SessionTooLargeError: the cookie does not fit even without it.
        """
        attempts = self._attempts(jwt)
        size = first = 0
        for keeps in attempts:
            kept = _kept(jwt, keeps)
            value = self.sealer.seal({**payload, "jwt": _dump(kept)}, self.max_age, _SECRET_PATHS)
            size = chunked_size(name, value)
            first = first or size
            if size <= SESSION_COOKIE_BUDGET:
                if keeps != attempts[0]:
                    self._warn_left_out(jwt, attempts[0], keeps, first)
                return kept, value
        raise SessionTooLargeError(jwt.provider, size)

    def _warn_left_out(
        self,
        jwt: JWT,
        wanted: Sequence[CookiePart],
        kept: Sequence[CookiePart],
        size: int,
    ) -> None:
        """Say what the cookie left out, which setting asked for it, and what that costs."""
        left_out = [part for part in _present(jwt, wanted) if part not in kept]
        hint_lost = jwt.provider in self.id_token_for and "id_token" in left_out
        settings = [
            name
            for name, asked in (
                ("session_cookie_keeps", any(part in self.keeps for part in left_out)),
                ("logout_at_provider", hint_lost),
            )
            if asked
        ]
        log.warning(
            "the %s session cookie left out %s, which %s: with them it needs %d bytes, over "
            "the budget of %d (keep them with strategy='database')%s",
            jwt.provider,
            ", ".join(left_out),
            " and ".join(settings) + (" ask for" if len(settings) > 1 else " asks for"),
            size,
            SESSION_COOKIE_BUDGET,
            f"; logging out at {jwt.provider} will send the client_id without id_token_hint"
            if hint_lost
            else "",
        )

    def open(self, request: WebRequest, policy: CookiePolicy) -> Operation[Current | None]:
        return done(self._read(request, policy))

    def _read(self, request: WebRequest, policy: CookiePolicy) -> Current | None:
        value = read_chunked(policy.name(self.cookie), request.cookies)
        plaintext = None if value is None else self.sealer.open(value)
        if plaintext is None:
            return None
        # The quick reading: the JWT validated from the JSON text, with no dict in between.
        # It either gives what the general reading below gives, or refuses (a plaintext only
        # json.loads reads, a missing or invalid field, an expired session); the general
        # reading then decides, and logs why it refuses.
        try:
            envelope = _Envelope.model_validate_json(plaintext)
        except ValidationError:
            envelope = None
        if envelope is not None and envelope.exp > self.sealer.clock():
            return Current(jwt=envelope.jwt, expires=envelope.exp)
        payload = self.sealer.payload(plaintext)
        if payload is None:
            return None
        try:
            jwt = JWT.model_validate(payload.get("jwt"))
        except ValidationError:
            log.info("a session cookie decrypted but held no session; treated as absent")
            return None
        return Current(jwt=jwt, expires=int(payload["exp"]))

    def refresh(
        self, request: WebRequest, policy: CookiePolicy, current: Current
    ) -> Operation[tuple[Current | None, list[str]]]:
        updated = yield from self.client.jwt_op(current.jwt)
        # The default callback hands a valid token back as it is: no need to compare fields.
        if updated is current.jwt or updated == current.jwt:
            return current, []
        now = int(self.sealer.clock())
        name = policy.name(self.cookie)
        try:
            kept, value = self._sealed(name, updated, {"exp": current.expires})
        except SessionTooLargeError as exc:
            # The new tokens cannot be stored: the session ends (the caller expires its
            # cookies) rather than keep a cookie whose refresh token may be spent.
            log.error("a refreshed session no longer fits its cookie and ends: %s", exc)
            return None, []
        strays = policy.strays(self.cookie)
        max_age = current.expires - now
        cookies = write_chunked(name, value, policy, max_age, request.cookies, strays)
        return Current(jwt=kept, expires=current.expires), cookies

    def create(self, request: WebRequest, policy: CookiePolicy, jwt: JWT) -> Operation[list[str]]:
        name = policy.name(self.cookie)
        _, value = self._sealed(name, jwt, {})
        strays = policy.strays(self.cookie)
        return done(write_chunked(name, value, policy, self.max_age, request.cookies, strays))

    def end(
        self, request: WebRequest, policy: CookiePolicy, current: Current | None
    ) -> Operation[list[str]]:
        name, strays = policy.name(self.cookie), policy.strays(self.cookie)
        return done(expire_chunked(name, policy, request.cookies, strays))


def _takes_expires_at(store: TokenStore) -> bool:
    """Whether ``store.save`` takes ``expires_at`` (a store of an app's own may predate it)."""
    try:
        parameters = inspect.signature(store.save).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        parameter.name == "expires_at" or parameter.kind is inspect.Parameter.VAR_KEYWORD
        for parameter in parameters
    )


class DatabaseStrategy:
    """Sessions in a token store, found through a random id in the cookie.

    :param manager: the store's operations; refreshes go through its lease.
    :param cookie: the cookie's base name.
    :param max_age: seconds a session lasts from sign-in.
    """

    name = "database"

    def __init__(
        self, manager: BaseTokenManager[BaseKeyturn[Any]], cookie: str, max_age: int
    ) -> None:
        self.manager = manager
        self.cookie = cookie
        self.max_age = max_age
        #: Whether rows are saved with the session's end (every built-in store takes it).
        self.rows_end = _takes_expires_at(manager.store)

    @property
    def clock(self) -> Callable[[], float]:
        return self.manager.client.clock

    @staticmethod
    def key_of(session_id: str) -> str:
        """The store key of a session id: a digest, so the store never holds live ids."""
        return SESSION_KEY_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()

    def _ended(self, row: StoredTokens) -> bool:
        """Whether ``row`` is of a session that has ended (its end is known and past)."""
        expires = row.data.get("expires")
        return isinstance(expires, int) and expires <= self.clock()

    def _current(self, row: StoredTokens | None) -> Current | None:
        if row is None:
            return None
        expires = row.data.get("expires")
        if not isinstance(expires, int) or expires <= self.clock():
            return None
        try:
            user = row.data.get("user")
            jwt = JWT(
                tokens=row.tokens,
                user=None if user is None else Profile.model_validate(user),
                error=row.error,
                refresh_failure=row.failure,
                claims=dict(row.data.get("claims") or {}),
            )
        except ValidationError:
            log.warning("a database session row holds an unreadable user; treated as absent")
            return None
        return Current(jwt=jwt, expires=expires, key=row.key)

    def open(self, request: WebRequest, policy: CookiePolicy) -> Operation[Current | None]:
        session_id = request.cookies.get(policy.name(self.cookie), "")
        if not _SESSION_ID.match(session_id):
            return None
        row = yield from self.manager.load_op(self.key_of(session_id))
        if row is not None and self._ended(row):
            yield from self._forget_op(row.key)
            return None
        return self._current(row)

    def _forget_op(self, key: str) -> Operation[None]:
        """Delete the row of a session that ended; the visitor is signed out either way."""
        try:
            yield from self.manager.delete_op(key)
        except Exception as exc:  # the store's trouble: a sweep deletes the row later
            log.warning(
                "the row of an ended database session could not be deleted (%s); "
                "a sweep will delete it",
                type(exc).__name__,
            )

    def refresh(
        self, request: WebRequest, policy: CookiePolicy, current: Current
    ) -> Operation[tuple[Current | None, list[str]]]:
        tokens = current.jwt.tokens
        due = tokens.expires_within(self.manager.client.leeway, self.clock())
        if current.jwt.error is not None or not due:
            return current, []
        assert current.key is not None
        # A provider failure is recorded in the row by the manager; a missing row means the
        # session was ended (signed out in another tab) while this request was reading it.
        with contextlib.suppress(ProviderError, TokenNotFoundError):
            yield from self.manager.get_tokens_op(current.key)
        row = yield from self.manager.load_op(current.key)
        return self._current(row), []

    def create(self, request: WebRequest, policy: CookiePolicy, jwt: JWT) -> Operation[list[str]]:
        session_id = secrets.token_urlsafe(32)
        expires = int(self.clock()) + self.max_age
        data = {
            "expires": expires,
            "user": None if jwt.user is None else jwt.user.model_dump(mode="json"),
            "claims": jwt.claims,
        }
        key = self.key_of(session_id)
        ends = expires if self.rows_end else None
        yield from self.manager.save_op(key, jwt.tokens, data=data, expires_at=ends)
        name = policy.name(self.cookie)
        strays = [policy.expire(s) for s in policy.strays(self.cookie) if s in request.cookies]
        return [policy.set(name, session_id, self.max_age), *strays]

    def end(
        self, request: WebRequest, policy: CookiePolicy, current: Current | None
    ) -> Operation[list[str]]:
        if current is not None and current.key is not None:
            yield from self.manager.delete_op(current.key)
        names = (policy.name(self.cookie), *policy.strays(self.cookie))
        return [policy.expire(name) for name in names if name in request.cookies]
