"""What the emulator remembers: codes, grants (token families), tokens and counters.

One lock guards everything, so the server's event loop and the test thread (``configure``,
``revoke_grants``, ``counters``) can touch the store at once. Each public method is one
atomic step: two refreshes of the same rotating token can never both succeed.

A *grant* is what one consent produces: the token family of RFC 6819 §5.2.2.3. Every access
and refresh token issued from it, through any number of rotations, belongs to it, so revoking
the grant (the user in the provider's settings, reuse detection, Google's revoke endpoint)
kills the whole family.

Profiles with sessions (``oidc``) also remember who is signed in at the provider: a *session*
per user, made when the user approves an authorization request, named by a ``sid`` that
the ID tokens carry, and ended by RP-Initiated Logout. Ending one revokes no token: the
grants, and their refresh tokens, outlive the browser's session at the provider.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from .profiles import Behaviour

__all__ = [
    "COUNTERS",
    "Code",
    "Grant",
    "Issued",
    "Pending",
    "Refusal",
    "Session",
    "Store",
    "Token",
    "User",
]

#: Counters every snapshot has, zero until something happens. Error codes are added as they
#: occur (``invalid_grant``, ``bad_refresh_token``...), each also counted in ``errors``.
COUNTERS = (
    "authorize",  # authorize requests that passed validation (auto-consent or consent page)
    "consent_denied",  # the user pressed Deny
    "token_requests",  # every token-endpoint request that arrived, faults and drops included
    "authorization_code",  # successful code exchanges
    "refresh_token",  # successful refreshes
    "userinfo",  # successful userinfo / user / emails requests
    "revoke",  # successful revocation requests
    "grants_revoked",  # grants revoked by any means
    "reuse_detected",  # detect_reuse profiles: a rotated refresh token came back
    "code_reuse",  # an authorization code presented a second time
    "family_revoked",  # token families revoked because of reuse (refresh token or code)
    "fault_5xx",  # token-endpoint requests answered 503 by fault injection
    "rate_limited",  # token-endpoint requests answered 429 by fault injection
    "fault_429",  # the same, answered as a rate limit by profiles that do (Discord)
    "dropped",  # token-endpoint requests whose connection was closed, unprocessed
    "lost_answers",  # token-endpoint requests processed, then closed without an answer
    "errors",  # error answers of every kind
    "discovery",  # requests for the discovery document, served broken or not
    "jwks",  # requests for the JWKS, served broken or not
    "logout",  # RP-Initiated Logout requests that passed validation
)
# Also added as they occur: "auth_<method>" for each authenticated token or revocation
# request, by client authentication method (auth_client_secret_basic, auth_private_key_jwt...).


class Refusal(Exception):
    """A request the profile refuses; ``situation`` names the answer in its failures table.

    :ivar detail: an ``error_description`` in place of the table's, naming the check that
        failed (client assertions); never holds a secret.
    """

    def __init__(self, situation: str, detail: str | None = None) -> None:
        super().__init__(situation)
        self.situation = situation
        self.detail = detail


@dataclass(frozen=True)
class User:
    """An emulated account. Users are made up from the authorize request's login hint."""

    key: str
    sub: str
    number: int
    login: str
    name: str
    email: str

    @classmethod
    def from_hint(cls, hint: str | None) -> User:
        """The account for ``login_hint`` / ``login``; the default account when ``None``."""
        key = hint or "default"
        digest = hashlib.sha256(key.encode()).hexdigest()
        number = int(digest[:8], 16) % 90_000_000 + 10_000_000
        if key == "default":
            return cls(
                key, f"1{number:020d}", number, "ada-example", "Ada Example", "ada@example.com"
            )
        local, at, _ = key.partition("@")
        email = key if at else f"{key}@example.com"
        login = local.replace(".", "-").replace("_", "-") or "user"
        name = " ".join(part.capitalize() for part in local.replace("-", ".").split(".") if part)
        return cls(key, f"1{number:020d}", number, login, name or login, email)

    def matches(self, who: str) -> bool:
        """Whether ``who`` names this user: its key, ``sub``, login, email or number."""
        return who in (self.key, self.sub, self.login, self.email, str(self.number))


@dataclass
class Pending:
    """A validated authorize request waiting for the user's Allow or Deny."""

    profile: str
    client_id: str
    redirect_uri: str
    state: str | None
    scopes: tuple[str, ...]
    challenge: str | None
    method: str | None
    nonce: str | None
    user: User
    offline: bool
    force_consent: bool
    force_login: bool = False
    sid: str | None = None
    auth_time: int | None = None
    response_mode: str | None = None


@dataclass
class Code:
    """An authorization code: single use, short-lived, bound to its request."""

    request: Pending
    expires_at: float
    used: bool = False
    grant_id: int | None = None


@dataclass
class Grant:
    """One consent and every token issued from it."""

    id: int
    profile: str
    client_id: str
    user: User
    scopes: tuple[str, ...]
    revoked: bool = False
    tokens: set[str] = field(default_factory=set)
    sid: str | None = None
    auth_time: int | None = None
    #: The refresh token rotated last, the only one a grace period may accept again.
    superseded: str | None = None


@dataclass
class Token:
    """An issued token. ``status`` leaves ``active`` once and never returns."""

    value: str
    kind: Literal["access", "refresh"]
    grant_id: int
    expires_at: float | None
    status: Literal["active", "rotated", "revoked"] = "active"
    #: When a refresh token was rotated (epoch seconds); ``None`` until then.
    rotated_at: float | None = None


@dataclass(frozen=True)
class Session:
    """A user signed in at the provider (profiles with sessions).

    :ivar sid: the session id, ``sid`` in ID tokens.
    :ivar auth_time: when the user signed in, epoch seconds (``auth_time``).
    :ivar user: who.
    """

    sid: str
    auth_time: int
    user: User


@dataclass(frozen=True)
class Issued:
    """What a successful exchange or refresh produced."""

    grant: Grant
    access_token: str
    access_expires_in: int | None
    refresh_token: str | None
    refresh_expires_in: int | None
    nonce: str | None


def _refresh_lifetime(
    behaviour: Behaviour, grant: Grant, knob: int | None
) -> tuple[int | None, int | None]:
    """How long a new refresh token of ``grant`` lives, and the lifetime its answer reports.

    An offline token (the grant holds the profile's ``offline_token_scope``) has no fixed expiry
    and reports 0, as Keycloak does; otherwise the ``refresh_token_lifetime`` knob, or the
    profile's ``refresh_lifetime_default`` when the knob gives none.
    """
    if behaviour.offline_token_scope is not None and behaviour.offline_token_scope in grant.scopes:
        return None, 0
    life = knob if knob is not None else behaviour.refresh_lifetime_default
    return life, life


def new_token(prefix: str) -> str:
    """An opaque random token with the provider's prefix."""
    return prefix + secrets.token_urlsafe(32)


class Store:
    """The emulator's memory, safe to share between threads.

    :param clock: returns the current time in epoch seconds.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._pending: dict[str, Pending] = {}
        self._codes: dict[str, Code] = {}
        self._grants: dict[int, Grant] = {}
        self._tokens: dict[str, Token] = {}
        self._consented: set[tuple[str, str, str]] = set()
        self._counters: dict[str, Counter[str]] = {}
        self._sessions: dict[tuple[str, str], Session] = {}
        self._introduced: set[tuple[str, str, str]] = set()
        self._next_grant = 1

    # -- counters -----------------------------------------------------------------------

    def count(self, profile: str, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name`` of ``profile``."""
        with self._lock:
            self._counters.setdefault(profile, Counter())[name] += amount

    def count_error(self, profile: str, error: str) -> None:
        """Count one error answer under ``errors`` and under its code."""
        with self._lock:
            counter = self._counters.setdefault(profile, Counter())
            counter["errors"] += 1
            counter[error] += 1

    def counters(self, profiles: Iterable[str]) -> dict[str, int]:
        """A snapshot of the counters of ``profiles``, summed; every name in
        :data:`COUNTERS` is present."""
        total: Counter[str] = Counter(dict.fromkeys(COUNTERS, 0))
        with self._lock:
            for profile in profiles:
                total.update(self._counters.get(profile, Counter()))
        return {name: total[name] for name in sorted(total)}

    def reset_counters(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._counters.clear()

    # -- authorization ------------------------------------------------------------------

    def hold(self, request: Pending) -> str:
        """Keep ``request`` until the user answers the consent page; returns its ticket."""
        ticket = secrets.token_urlsafe(16)
        with self._lock:
            self._pending[ticket] = request
        return ticket

    def release(self, ticket: str) -> Pending | None:
        """The request held under ``ticket``, forgotten as it is returned."""
        with self._lock:
            return self._pending.pop(ticket, None)

    # -- sessions at the provider (profiles with sessions) -------------------------------

    def session(self, profile: str, user: User) -> Session | None:
        """``user``'s session at ``profile``, if signed in."""
        with self._lock:
            return self._sessions.get((profile, user.key))

    def sign_in(self, profile: str, user: User, fresh: bool) -> Session:
        """The session ``user`` approves a request in: the current one, or a new one when
        there is none or ``fresh`` (``prompt=login``) asks for a new sign-in."""
        with self._lock:
            current = self._sessions.get((profile, user.key))
            if current is None or fresh:
                current = Session(secrets.token_urlsafe(16), int(self.clock()), user)
                self._sessions[(profile, user.key)] = current
            return current

    def end_session(self, profile: str, sub: str, sid: str | None) -> bool:
        """End the session of the user ``sub`` at ``profile`` (only the one named ``sid``,
        when given); ``False`` if there was none."""
        with self._lock:
            for key, current in list(self._sessions.items()):
                if key[0] == profile and current.user.sub == sub:
                    if sid is not None and current.sid != sid:
                        return False
                    del self._sessions[key]
                    return True
            return False

    # -- codes --------------------------------------------------------------------------

    def first_authorization(self, profile: str, client_id: str, user: str) -> bool:
        """Whether this is ``user``'s first approved authorization of ``client_id`` at
        ``profile`` (Apple sends the user's name then only); records it."""
        key = (profile, client_id, user)
        with self._lock:
            first = key not in self._introduced
            self._introduced.add(key)
            return first

    def issue_code(self, behaviour: Behaviour, request: Pending, lifetime: float) -> str:
        """A fresh authorization code for an approved request."""
        code = behaviour.code_prefix + secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = Code(request, self.clock() + lifetime)
        return code

    def exchange(
        self,
        behaviour: Behaviour,
        client_id: str,
        code: str,
        redirect_uri: str | None,
        verifier: str | None,
        access_lifetime: int | None,
        refresh_lifetime: int | None,
        check_verifier: Callable[[str, str, str], bool],
    ) -> Issued:
        """Trade ``code`` for tokens (RFC 6749 §4.1.3), or raise :class:`Refusal`.

        A code presented a second time is refused and, as RFC 6749 §4.1.2 advises, the
        tokens issued from it are revoked.
        """
        with self._lock:
            found = self._codes.get(code)
            if found is None or found.request.profile != behaviour.name:
                raise Refusal("bad_code")
            request = found.request
            if found.used:
                self.count(behaviour.name, "code_reuse")
                if found.grant_id is not None and self._revoke_grant(found.grant_id):
                    self.count(behaviour.name, "family_revoked")
                raise Refusal("bad_code")
            if request.client_id != client_id or self.clock() >= found.expires_at:
                raise Refusal("bad_code")
            if redirect_uri != request.redirect_uri:
                raise Refusal("redirect_mismatch")
            if request.challenge is not None:
                if verifier is None or not check_verifier(
                    verifier, request.challenge, request.method or "plain"
                ):
                    raise Refusal("bad_verifier")
            elif verifier is not None:
                raise Refusal("bad_verifier")
            found.used = True
            grant = self._new_grant(behaviour.name, client_id, request.user, request.scopes)
            grant.sid, grant.auth_time = request.sid, request.auth_time
            found.grant_id = grant.id
            wants_refresh = access_lifetime is not None or not behaviour.refresh_needs_expiry
            if behaviour.offline_param:
                consent_key = (behaviour.name, client_id, request.user.key)
                first = consent_key not in self._consented
                wants_refresh = request.offline and (first or request.force_consent)
                if request.offline:
                    self._consented.add(consent_key)
            if behaviour.offline_scope is not None:
                wants_refresh = wants_refresh and behaviour.offline_scope in request.scopes
            access = self._mint(grant, "access", behaviour.access_prefix, access_lifetime)
            refresh = None
            life, reported = _refresh_lifetime(behaviour, grant, refresh_lifetime)
            if wants_refresh:
                refresh = self._mint(grant, "refresh", behaviour.refresh_prefix, life)
            self.count(behaviour.name, "authorization_code")
            return Issued(
                grant,
                access,
                access_lifetime,
                refresh,
                reported if refresh else None,
                request.nonce,
            )

    def grant(
        self,
        behaviour: Behaviour,
        client_id: str,
        user: User,
        scopes: tuple[str, ...],
        access_lifetime: int | None,
        refresh_lifetime: int | None,
    ) -> Issued:
        """A grant as a consent and a code exchange would leave it, without either.

        Nothing is counted: no request reached the provider. The refresh token is issued
        whenever the profile issues one at all (the ``access_type=offline`` rule of Google
        is taken as met).
        """
        with self._lock:
            grant = self._new_grant(behaviour.name, client_id, user, scopes)
            access = self._mint(grant, "access", behaviour.access_prefix, access_lifetime)
            refresh = None
            life, reported = _refresh_lifetime(behaviour, grant, refresh_lifetime)
            if access_lifetime is not None or not behaviour.refresh_needs_expiry:
                refresh = self._mint(grant, "refresh", behaviour.refresh_prefix, life)
            return Issued(
                grant,
                access,
                access_lifetime,
                refresh,
                reported if refresh else None,
                None,
            )

    def refresh(
        self,
        behaviour: Behaviour,
        client_id: str,
        refresh_token: str,
        access_lifetime: int | None,
        refresh_lifetime: int | None,
    ) -> Issued:
        """Trade a refresh token for a new access token (RFC 6749 §6), or raise
        :class:`Refusal`, rotating as the profile does.

        With ``detect_reuse`` and a ``reuse_grace``, the refresh token rotated last in its
        grant is exchanged again for new tokens until ``reuse_grace`` seconds after its
        rotation (Okta: "the previous token remains valid"; Auth0: "a new rotating refresh
        token is issued"); after that, or for any older token, it is reuse.
        """
        with self._lock:
            token = self._tokens.get(refresh_token)
            if token is None or token.kind != "refresh":
                raise Refusal("unknown_refresh")
            grant = self._grants[token.grant_id]
            if grant.profile != behaviour.name or grant.client_id != client_id:
                raise Refusal("unknown_refresh")
            if token.status == "rotated" and not self._in_grace(behaviour, grant, token):
                if behaviour.rotation == "detect_reuse":
                    self.count(behaviour.name, "reuse_detected")
                    if self._revoke_grant(grant.id):
                        self.count(behaviour.name, "family_revoked")
                    raise Refusal("reuse_detected")
                raise Refusal("rotated_refresh")
            if grant.revoked or token.status == "revoked" or self._expired(token):
                raise Refusal("dead_refresh")
            access = self._mint(grant, "access", behaviour.access_prefix, access_lifetime)
            new_refresh = None
            life, reported = _refresh_lifetime(behaviour, grant, refresh_lifetime)
            if behaviour.rotation != "none":
                if token.status == "rotated":
                    self.count(behaviour.name, "reuse_grace")
                elif behaviour.rotation != "keep_old":
                    # keep_old (Microsoft; Keycloak's default): the used one stays valid.
                    token.status, token.rotated_at = "rotated", self.clock()
                    grant.superseded = token.value
                if behaviour.rotation_revokes_access:
                    for value in grant.tokens:
                        old = self._tokens[value]
                        if old.kind == "access" and old.value != access:
                            old.status = "revoked"
                new_refresh = self._mint(grant, "refresh", behaviour.refresh_prefix, life)
            self.count(behaviour.name, "refresh_token")
            return Issued(
                grant,
                access,
                access_lifetime,
                new_refresh,
                reported if new_refresh else None,
                None,
            )

    # -- using and revoking tokens ------------------------------------------------------

    def bearer(self, profile: str, access_token: str) -> Grant | None:
        """The grant behind a usable access token of ``profile``, else ``None``."""
        with self._lock:
            token = self._tokens.get(access_token)
            if token is None or token.kind != "access" or token.status != "active":
                return None
            grant = self._grants[token.grant_id]
            if grant.profile != profile or grant.revoked or self._expired(token):
                return None
            return grant

    def lookup(self, profile: str, value: str) -> tuple[Token, Grant] | None:
        """An issued token of ``profile`` that still works, with its grant."""
        with self._lock:
            token = self._tokens.get(value)
            if token is None or token.status != "active":
                return None
            grant = self._grants[token.grant_id]
            if grant.profile != profile or grant.revoked:
                return None
            return token, grant

    def revoke_token(self, value: str) -> None:
        """Revoke one token."""
        with self._lock:
            token = self._tokens.get(value)
            if token is not None:
                token.status = "revoked"

    def revoke_grant(self, grant_id: int) -> bool:
        """Revoke a grant and every token in it; ``False`` if it was revoked already."""
        with self._lock:
            return self._revoke_grant(grant_id)

    def revoke_grants(self, profile: str | None, user: str | None) -> int:
        """Revoke every live grant of ``profile`` (all when ``None``) held by ``user`` (all
        users when ``None``), as a user does in the provider's settings; returns how many."""
        with self._lock:
            chosen = [
                grant.id
                for grant in self._grants.values()
                if not grant.revoked
                and (profile is None or grant.profile == profile)
                and (user is None or grant.user.matches(user))
            ]
            return sum(self._revoke_grant(grant_id) for grant_id in chosen)

    # -- internals (lock held) -----------------------------------------------------------

    def _in_grace(self, behaviour: Behaviour, grant: Grant, token: Token) -> bool:
        return (
            behaviour.rotation == "detect_reuse"
            and token.rotated_at is not None
            and grant.superseded == token.value
            and self.clock() < token.rotated_at + behaviour.reuse_grace
        )

    def _expired(self, token: Token) -> bool:
        return token.expires_at is not None and self.clock() >= token.expires_at

    def _new_grant(
        self, profile: str, client_id: str, user: User, scopes: tuple[str, ...]
    ) -> Grant:
        grant = Grant(self._next_grant, profile, client_id, user, scopes)
        self._grants[grant.id] = grant
        self._next_grant += 1
        return grant

    def _mint(
        self, grant: Grant, kind: Literal["access", "refresh"], prefix: str, life: int | None
    ) -> str:
        value = new_token(prefix)
        expires_at = None if life is None else self.clock() + life
        self._tokens[value] = Token(value, kind, grant.id, expires_at)
        grant.tokens.add(value)
        return value

    def _revoke_grant(self, grant_id: int) -> bool:
        grant = self._grants[grant_id]
        if grant.revoked:
            return False
        grant.revoked = True
        for value in grant.tokens:
            self._tokens[value].status = "revoked"
        self.count(grant.profile, "grants_revoked")
        return True
