"""Where a signed-in session lives between requests: the two strategies.

``jwt`` (the default, as in Auth.js): the whole :class:`~keyturn.JWT` (tokens, user, claims,
refresh failure) is sealed into the session cookie (JWE, ``dir`` + ``A256GCM``), split into
chunks when it outgrows 4 KB. Nothing is kept on the server. A refresh runs the ``jwt``
callback through the client's single-flight path and writes the cookie again.

``database``: the cookie holds only a random session id; the tokens, and the user and claims
as the row's ``data``, live in a :class:`~keyturn.stores.TokenStore` under a key derived from
the id (the store never sees the id itself). A refresh goes through the
:class:`~keyturn.stores.TokenManager`: once per session across threads, tasks and processes
sharing the store, saved compare-and-set. The ``jwt`` callback runs at sign-in; the refresh
outcome is recorded in the store row, from which the session's ``error`` is read. Signing out
deletes the row, so a stolen cookie dies with it.

In both, a session lasts ``max_age`` seconds from sign-in, and a cookie that cannot be read
(tampered, truncated, expired, sealed with another key) is a signed-out visitor.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from keyturn.errors import ProviderError, TokenNotFoundError
from keyturn.models import JWT, REVEAL, Profile
from keyturn.stores.base import StoredTokens

from .cookies import CookiePolicy, expire_chunked, read_chunked, write_chunked
from .messages import WebRequest
from .ops import Op, WebFlow
from .sealing import Sealer

__all__ = ["Current", "DatabaseStrategy", "JwtStrategy", "SessionStrategy"]

log = logging.getLogger("keyturn.web")

#: Prefix of the store keys that hold database sessions.
SESSION_KEY_PREFIX = "keyturn-session:"
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class Current:
    """A readable session: its JWT, when it ends, and (database) its store key."""

    jwt: JWT
    expires: int
    key: str | None = None


class SessionStrategy(Protocol):
    """What the routes need of a strategy. Each method is a web flow (it may yield ops)."""

    cookie: str

    def open(self, request: WebRequest, policy: CookiePolicy) -> WebFlow[Current | None]:
        """The request's session, or ``None`` when signed out."""
        ...

    def refresh(
        self, request: WebRequest, policy: CookiePolicy, current: Current
    ) -> WebFlow[tuple[Current | None, list[str]]]:
        """Refresh the tokens if due; the session after, and cookies to set.

        The session is ``None`` when it ended meanwhile (signed out in another tab).
        """
        ...

    def create(self, request: WebRequest, policy: CookiePolicy, jwt: JWT) -> WebFlow[list[str]]:
        """Start a session after sign-in; the cookies to set."""
        ...

    def end(
        self, request: WebRequest, policy: CookiePolicy, current: Current | None
    ) -> WebFlow[list[str]]:
        """Forget the session; the cookies that delete it."""
        ...


def _dump(jwt: JWT) -> dict[str, Any]:
    return jwt.model_dump(mode="json", context=REVEAL)


class JwtStrategy:
    """Sessions sealed in the cookie itself.

    :param sealer: seals and reads the cookie.
    :param cookie: the cookie's base name.
    :param max_age: seconds a session lasts from sign-in.
    """

    name = "jwt"

    def __init__(self, sealer: Sealer, cookie: str, max_age: int) -> None:
        self.sealer = sealer
        self.cookie = cookie
        self.max_age = max_age

    def open(self, request: WebRequest, policy: CookiePolicy) -> WebFlow[Current | None]:
        value = read_chunked(policy.name(self.cookie), request.cookies)
        payload = None if value is None else self.sealer.unseal(value)
        if payload is None:
            return None
        try:
            jwt = JWT.model_validate(payload.get("jwt"))
        except ValidationError:
            log.info("a session cookie decrypted but held no session; treated as absent")
            return None
        return Current(jwt=jwt, expires=int(payload["exp"]))
        yield  # a flow with no I/O

    def refresh(
        self, request: WebRequest, policy: CookiePolicy, current: Current
    ) -> WebFlow[tuple[Current | None, list[str]]]:
        updated: JWT = yield Op("jwt", (current.jwt,))
        if updated == current.jwt:
            return current, []
        now = int(self.sealer.clock())
        value = self.sealer.seal({"jwt": _dump(updated), "exp": current.expires}, self.max_age)
        name = policy.name(self.cookie)
        cookies = write_chunked(name, value, policy, current.expires - now, request.cookies)
        return Current(jwt=updated, expires=current.expires), cookies

    def create(self, request: WebRequest, policy: CookiePolicy, jwt: JWT) -> WebFlow[list[str]]:
        value = self.sealer.seal({"jwt": _dump(jwt)}, self.max_age)
        name = policy.name(self.cookie)
        return write_chunked(name, value, policy, self.max_age, request.cookies)
        yield

    def end(
        self, request: WebRequest, policy: CookiePolicy, current: Current | None
    ) -> WebFlow[list[str]]:
        return expire_chunked(policy.name(self.cookie), policy, request.cookies)
        yield


class DatabaseStrategy:
    """Sessions in a token store, found through a random id in the cookie.

    :param cookie: the cookie's base name.
    :param max_age: seconds a session lasts from sign-in.
    :param leeway: the client's leeway (when a refresh is due).
    :param clock: the client's clock.
    """

    name = "database"

    def __init__(
        self, cookie: str, max_age: int, leeway: float, clock: Callable[[], float]
    ) -> None:
        self.cookie = cookie
        self.max_age = max_age
        self.leeway = leeway
        self.clock = clock

    @staticmethod
    def key_of(session_id: str) -> str:
        """The store key of a session id: a digest, so the store never holds live ids."""
        return SESSION_KEY_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()

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

    def open(self, request: WebRequest, policy: CookiePolicy) -> WebFlow[Current | None]:
        session_id = request.cookies.get(policy.name(self.cookie), "")
        if not _SESSION_ID.match(session_id):
            return None
        row: StoredTokens | None = yield Op("load", (self.key_of(session_id),))
        return self._current(row)

    def refresh(
        self, request: WebRequest, policy: CookiePolicy, current: Current
    ) -> WebFlow[tuple[Current | None, list[str]]]:
        tokens = current.jwt.tokens
        if current.jwt.error is not None or not tokens.expires_within(self.leeway, self.clock()):
            return current, []
        assert current.key is not None
        # A provider failure is recorded in the row by the manager; a missing row means the
        # session was ended (signed out in another tab) while this request was reading it.
        with contextlib.suppress(ProviderError, TokenNotFoundError):
            yield Op("refresh", (current.key,))
        row: StoredTokens | None = yield Op("load", (current.key,))
        return self._current(row), []

    def create(self, request: WebRequest, policy: CookiePolicy, jwt: JWT) -> WebFlow[list[str]]:
        session_id = secrets.token_urlsafe(32)
        expires = int(self.clock()) + self.max_age
        data = {
            "expires": expires,
            "user": None if jwt.user is None else jwt.user.model_dump(mode="json"),
            "claims": jwt.claims,
        }
        yield Op("save", (self.key_of(session_id), jwt.tokens, data))
        return [policy.set(policy.name(self.cookie), session_id, self.max_age)]

    def end(
        self, request: WebRequest, policy: CookiePolicy, current: Current | None
    ) -> WebFlow[list[str]]:
        if current is not None and current.key is not None:
            yield Op("delete", (current.key,))
        name = policy.name(self.cookie)
        return [policy.expire(name)] if name in request.cookies else []
