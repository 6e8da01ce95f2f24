"""Keep a valid access token per key, refreshing it once across threads, tasks and processes.

::

    store = SQLiteTokenStore("tokens.db")
    manager = TokenManager(Keyturn(), store)      # AsyncTokenManager(AsyncKeyturn(), store)
    manager.save(user_id, tokens)                 # after sign-in
    access_token = manager.get_access_token(user_id)

To share discovery documents and key sets between the processes too (fetched once between
them), give the client the store as its document cache: ``TokenManager(Keyturn(
document_cache=store), store)``. The manager leaves the client as the app made it.

A row may also keep the app's own data next to the tokens, e.g. for a web session stored in
the database: ``manager.save(session_id, tokens, data={"user": profile, "claims": claims})``,
read back as the ``data`` of ``manager.load(session_id)``. It is not secret (stored in
clear), and every refresh writes it back unchanged with the new tokens. So is a row's end,
``expires_at`` (epoch seconds, see :class:`~keyturn.stores.StoredTokens`), after which the
store may drop the row: ``manager.save(session_id, tokens, expires_at=ends)``.

Both managers run the same operations (:class:`BaseTokenManager`, generators of effects, see
:mod:`keyturn.effects`): :class:`TokenManager` drives them with blocking calls,
:class:`AsyncTokenManager` with ``await``, store calls in worker threads.

``get_access_token`` (and ``get_tokens``) reads the row; while the access token has more
than the client's ``leeway`` left it is returned with no lock and no request. The row is read
from the store on every call, but its tokens are parsed and validated again only when the row
changed since this manager last read it (:mod:`keyturn.stores.cache`). Otherwise:

1. callers of this manager in this process join one attempt (single-flight);
2. that attempt takes the store's lease on the key (polling while another process holds
   it, up to ``lock_timeout``);
3. it reads the row again: if another process refreshed meanwhile, those tokens are
   returned and no request is sent;
4. it refreshes through the client, and saves the result compare-and-set against the
   version it read (with that row's ``data``), before returning it; then it releases the
   lease.

Failures. The stored tokens are never replaced by a failure: the row keeps its tokens and
records the failure next to them. A *transient* failure (network, 5xx, 429) is retried on
the next call; until the access token really expires (the leeway is a margin, not the end)
the current one is returned, as a session stays usable. A *permanent* failure
(``invalid_grant``...) is raised, and recorded so that later calls raise it again without a
request (the row's ``error`` is ``"RefreshAccessTokenError"``) until the app saves new tokens
after a new sign-in.

When the store fails after the provider answered (a full disk, Redis gone, a lock timeout):

* The provider may already have rotated the refresh token, so the process holds the only
  live one. The manager keeps the outcome (new tokens, or the failure) in memory, for the
  store object, until the store takes it, and returns the new tokens to the caller as if
  they had been saved (the store's error is logged at WARNING). The client's reuse window
  (``refresh_reuse_window``) does not bound this: the kept outcome stays until it is saved,
  or until the row changes under it.
* Every later call for that key, from any manager of this process over the same store
  object (blocking and async alike, every thread and task), first tries the save again
  (compare-and-set against the version the refresh read, with that row's ``data`` and
  end); meanwhile it uses the kept tokens, and refreshes them with their own refresh token
  when they fall due. The spent refresh token in the store is never sent. ``load`` shows the
  kept tokens while the store still holds the row they replace.
* The lease stays held for the kept tokens and is given back once they are saved, so other
  processes keep waiting rather than refresh with the spent token. That protection lasts as
  long as the lease (``lease``, 60 s): a process that waits past it, reads the old row and
  refreshes before this process's next call for the key saves the kept tokens sends the
  spent token, and a strict provider then refuses (``invalid_grant``, recorded as usual).
* A sign-in (``save``) or sign-out (``delete``) of the key replaces kept tokens; a row
  changed by another process meanwhile (a newer version) wins over them, as for any save.
* A lease whose release failed is given back before the next refresh of that key takes a
  lease, so no caller ever waits on a lease its own process holds for a refresh that has
  ended; if the store still fails, the caller gets its error at once instead of waiting.
* Kept tokens live in memory only: they are lost with the process (the window of the next
  list, held open until the store is back). Tokens that can never be saved (a row deleted
  meanwhile) are dropped.

What is guaranteed when a process dies (killed, crashed, powered off) at any point:

* The row is always one whole, committed :class:`~keyturn.TokenSet`: never half-written,
  never older than a version that was once committed (every refresh save is
  compare-and-set), never replaced by a failure.
* Killed before its request was sent, or after its save committed: nothing is lost. The
  lease it held is taken over at once when its owner is proven dead (same host name, PID
  namespace and boot; a store that does so, see
  :func:`~keyturn.stores.base.owner_is_dead`), or after ``lease`` seconds; the next caller
  re-reads the row and either finds the new tokens (no request) or refreshes normally.
* Killed at any moment of the round trip, from the moment its request may have reached the
  provider until the save of the answer committed (when the store fails then, until the kept
  tokens are saved, as above): the provider may have issued new tokens (and, if it rotates,
  spent the old refresh token) while those tokens existed only in the answer on its way back
  or in the dead process's memory; nothing on the client side can recover them. The window is
  the whole round trip, not only the time after the answer arrived: the provider's own
  processing, the answer's way back and the save. The store still holds the previous tokens,
  intact. The next caller refreshes with the previous refresh token: a provider that does not
  rotate (Google), or that tolerates a reused token for a moment, answers normally; a strict
  provider answers ``invalid_grant``, which is raised and recorded as above, so the app asks
  the user to sign in again instead of looping. keyturn keeps the part of the window that is
  its own as small as it can be: the save is the first thing done with the answer, one
  ``BEGIN IMMEDIATE`` transaction, durable when it commits (SQLite: WAL with
  ``synchronous=FULL``).
* The same window opens with no process dying when the answer is lost: the connection
  breaks, or the HTTP timeout runs out, after the provider received the request. The
  caller sees a transient :class:`~keyturn.TransportError` and the row keeps its tokens
  with that failure recorded, but the refresh may have happened: the next refresh then
  presents a token a rotating provider has already spent, and at a provider that detects
  reuse the grant is revoked and the failure recorded as permanent, once (the provider
  emulator's ``lost_answer_rate`` produces exactly this, in keyturn's stress tests). A
  request that never reached the provider (connection refused, DNS) costs nothing.
* At most one refresh per key is in flight across all processes sharing the store, as long
  as a refresh ends within ``lease`` seconds (keep it well above the HTTP timeout); a holder
  that overruns its lease cannot overwrite the row a newer holder saved.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from keyturn.client import AsyncKeyturn, BaseKeyturn, Keyturn
from keyturn.effects import Operation, Shared, Sleep, arun, run
from keyturn.errors import KeyturnError, ProviderError
from keyturn.models import RefreshFailure, TokenSet
from keyturn.singleflight import SingleFlight

from .base import (
    LockTimeoutError,
    StoredTokens,
    TokenNotFoundError,
    TokenStore,
    failure_error,
)
from .cache import DEFAULT_CACHE_SIZE, RowCache
from .effects import AcquireLease, DeleteRow, LoadCached, ReadTokens, ReleaseLease, SaveRow

__all__ = ["AsyncTokenManager", "BaseTokenManager", "TokenManager"]

log = logging.getLogger("keyturn")

#: Seconds a refresh lease lasts if its holder never releases it (it died).
DEFAULT_LEASE = 60.0
_FIRST_POLL = 0.005
_MAX_POLL = 0.1

C = TypeVar("C", bound="BaseKeyturn[Any]")
T = TypeVar("T")


class _Backoff:
    """Delays between attempts to take a lease, until a deadline."""

    def __init__(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.delay = _FIRST_POLL

    def next_delay(self) -> float | None:
        """Seconds to sleep before the next attempt, or ``None`` once time is up."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            return None
        delay = min(self.delay, left)
        self.delay = min(self.delay * 2, _MAX_POLL)
        return delay


@dataclass(frozen=True, eq=False)
class _Unsaved:
    """A refresh outcome the store did not take: what the row is to become once it does.

    :ivar tokens: the tokens to save (the provider's new ones, or the row's after a failure).
    :ivar failure: the failure to record with them, if the refresh failed.
    :ivar version: the version of the row they replace, compared when they are saved.
    :ivar data: that row's data, written back with them.
    :ivar expires_at: that row's end, written back with them.
    :ivar owner: the lease kept until they are saved; ``None`` when nothing needs it (a
        failure: the refresh token was not spent).
    """

    tokens: TokenSet
    failure: RefreshFailure | None
    version: int
    data: Mapping[str, Any] = field(repr=False)
    expires_at: float | None
    owner: str | None = field(repr=False)

    def row(self, key: str) -> StoredTokens:
        """The row as this process knows it (``data`` copied for the caller)."""
        data = copy.deepcopy(dict(self.data))
        return StoredTokens(key, self.tokens, self.version, self.failure, data, self.expires_at)


class _Outstanding:
    """What this process owes one store object: outcomes not saved, leases not given back.

    Shared by every manager over that store object (:func:`_outstanding_for`), so that a
    blocking and an async manager of one app see each other's kept tokens.
    """

    __slots__ = ("leases", "lock", "unsaved")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: key -> the outcome of a refresh the store has not taken yet.
        self.unsaved: dict[str, _Unsaved] = {}
        #: key -> a lease whose refresh ended but whose release failed.
        self.leases: dict[str, str] = {}

    def keep(self, key: str, entry: _Unsaved) -> None:
        with self.lock:
            self.unsaved[key] = entry

    def replace(self, key: str, old: _Unsaved, new: _Unsaved) -> None:
        with self.lock:
            if self.unsaved.get(key) is old:
                self.unsaved[key] = new

    def settle(self, key: str, entry: _Unsaved) -> bool:
        """Forget ``entry`` if it is still the key's; whether it was."""
        with self.lock:
            if self.unsaved.get(key) is entry:
                del self.unsaved[key]
                return True
            return False

    def left(self, key: str, owner: str) -> None:
        with self.lock:
            self.leases[key] = owner

    def given_back(self, key: str, owner: str) -> None:
        with self.lock:
            if self.leases.get(key) == owner:
                del self.leases[key]


_OUTSTANDING: weakref.WeakKeyDictionary[Any, _Outstanding] = weakref.WeakKeyDictionary()
_OUTSTANDING_LOCK = threading.Lock()


def _outstanding_for(store: TokenStore) -> _Outstanding:
    """The outstanding work of ``store``, shared by its managers; a private one if ``store``
    cannot be weakly referenced (then each manager keeps its own)."""
    with _OUTSTANDING_LOCK:
        try:
            found = _OUTSTANDING.get(store)
            if found is None:
                found = _OUTSTANDING[store] = _Outstanding()
        except TypeError:
            return _Outstanding()
        return found


def _describe(error: BaseException) -> str:
    """A store's error for a log line: its type, and its message when that is the database's,
    the OS's or Redis's (a store of the app's own might put anything in a message)."""
    name = type(error).__name__
    if isinstance(error, sqlite3.Error | OSError | KeyturnError) or type(
        error
    ).__module__.startswith("redis"):
        return f"{name}: {error}"
    return name


class BaseTokenManager(Generic[C]):
    """Tokens per key in a :class:`TokenStore`: every operation, written once.

    The ``*_op`` methods are operations (see :mod:`keyturn.effects`) that the two managers
    drive; :mod:`keyturn.web`'s database sessions compose them into its own routes.

    :param client: the client that refreshes (its ``leeway`` and ``clock`` decide when).
    :param store: where rows and leases live.
    :param lease: seconds a refresh lease lasts if its holder dies without releasing it;
        keep it well above the HTTP client's timeout (60).
    :param lock_timeout: seconds to wait for another holder's lease (``lease + 5``).
    :param cache_size: the most rows whose parsed tokens the manager keeps (1024), so that
        reading a row that has not changed does not parse it again; ``0`` parses every
        read. See :mod:`keyturn.stores.cache` for what makes it safe and what it costs.
    """

    def __init__(
        self,
        client: C,
        store: TokenStore,
        *,
        lease: float = DEFAULT_LEASE,
        lock_timeout: float | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if lease <= 0:
            raise ValueError("lease must be a positive number of seconds")
        self.client = client
        self.store = store
        self.lease = lease
        self.lock_timeout = lease + 5.0 if lock_timeout is None else lock_timeout
        #: The rows this manager read, parsed; the store is still read on every call.
        self.cache = RowCache(store, cache_size)
        self._flight: SingleFlight[TokenSet] = SingleFlight()
        self._outstanding = _outstanding_for(store)
        # Looked at on every call: empty unless the store failed after a refresh.
        self._unsaved = self._outstanding.unsaved

    @property
    def _clock(self) -> Callable[[], float]:
        return self.client.clock

    # -- operations ------------------------------------------------------------------------

    def save_op(
        self,
        key: str,
        tokens: TokenSet,
        *,
        data: Mapping[str, Any] | None = None,
        expires_at: float | None = None,
    ) -> Operation[StoredTokens]:
        """The operation behind :meth:`TokenManager.save`."""
        self.cache.forget(key)
        row = yield from SaveRow(self.store, key, tokens, data=data, expires_at=expires_at)
        assert row is not None, "an unconditional save always writes"
        yield from self._replaced_op(key)
        return row

    def load_op(self, key: str) -> Operation[StoredTokens | None]:
        """The operation behind :meth:`TokenManager.load`."""
        entry = self._unsaved.get(key) if self._unsaved else None
        if entry is None:
            return (yield from LoadCached(self.cache, key))
        try:
            row = yield from LoadCached(self.cache, key)
        except Exception:
            return entry.row(key)  # the store cannot be read: what this process knows
        if row is not None and row.version == entry.version:
            return entry.row(key)  # the row the kept outcome replaces
        return row

    def delete_op(self, key: str) -> Operation[bool]:
        """The operation behind :meth:`TokenManager.delete`."""
        self.cache.forget(key)
        deleted = yield from DeleteRow(self.store, key)
        yield from self._replaced_op(key)
        return deleted

    def get_tokens_op(self, key: str) -> Operation[TokenSet]:
        """The operation behind :meth:`TokenManager.get_tokens`."""
        if self._unsaved and key in self._unsaved:
            return (yield from self._shared_refresh_op(key))
        tokens = self._ready((yield from ReadTokens(self.cache, key)))
        if tokens is not None:
            return tokens
        return (yield from self._shared_refresh_op(key))

    def _shared_refresh_op(self, key: str) -> Operation[TokenSet]:
        """The refresh of ``key``, joined by every caller of this manager asking meanwhile."""
        return (yield from Shared(self._flight, key, lambda: self._refresh_op(key)))

    def _refresh_op(self, key: str) -> Operation[TokenSet]:
        """Under the lease: read again, refresh, save compare-and-set, release.

        Tokens kept because the store failed come first: saved if the store takes them now,
        used (and refreshed with their own refresh token) if it does not.
        """
        while True:
            entry = self._unsaved.get(key)
            if entry is not None:
                kept = yield from self._kept_op(key, entry)
                if kept is not None:
                    return kept
            owner = yield from self._acquire_op(key, entry)
            if owner is not None:
                return (yield from self._refresh_under_op(key, owner))
            # Another manager of this process kept tokens for this key meanwhile: use them.

    def _refresh_under_op(self, key: str, owner: str) -> Operation[TokenSet]:
        keep_lease = False
        try:
            row = self._row((yield from LoadCached(self.cache, key)))
            tokens = self._ready((row.tokens, row.failure))
            if tokens is not None:
                return tokens  # refreshed by another process while we waited
            try:
                new = yield from self.client.refresh_op(row.tokens)
            except ProviderError as exc:
                failed = _Unsaved(
                    row.tokens, self._failure(exc), row.version, row.data, row.expires_at, None
                )
                yield from self._save_op(key, failed)
                return self._after_failure(row.tokens, exc)
            # From here the provider may have spent the old refresh token: the lease stays
            # with the new tokens until they are in the store.
            keep_lease = True
            done = _Unsaved(new, None, row.version, row.data, row.expires_at, owner)
            keep_lease = not (yield from self._save_op(key, done))
            return new
        finally:
            if not keep_lease:
                yield from self._release_op(key, owner)

    def _save_row(self, key: str, entry: _Unsaved) -> SaveRow:
        """The save of a refresh's outcome, as first tried and as tried again."""
        return SaveRow(
            self.store,
            key,
            entry.tokens,
            entry.version,
            failure=entry.failure,
            data=entry.data,
            expires_at=entry.expires_at,
        )

    def _save_op(self, key: str, entry: _Unsaved) -> Operation[bool]:
        """Save a refresh's outcome; keep it in memory if the store fails. Whether it is done
        with (saved, or refused because the row moved on)."""
        try:
            saved = yield from self._save_row(key, entry)
        except BaseException as exc:
            self._outstanding.keep(key, entry)
            log.warning(
                "%s tokens could not be saved after a refresh (%s); this process keeps them "
                "and saves them on the next call",
                entry.tokens.provider,
                _describe(exc),
            )
            if not isinstance(exc, Exception):
                raise
            return False
        if saved is None:
            self._moved_on(entry)
        else:
            yield from self._replaced_op(key)  # what was kept before describes an older row
        return True

    def _kept_op(self, key: str, entry: _Unsaved) -> Operation[TokenSet | None]:
        """Try again to save what the store did not take; the tokens to hand out, or ``None``
        to go on with a refresh as usual (saved and due, or dropped)."""
        try:
            saved = yield from self._save_row(key, entry)
        except Exception as exc:
            log.info(
                "%s tokens kept after a refresh are still not saved (%s)",
                entry.tokens.provider,
                _describe(exc),
            )
            return (yield from self._use_kept_op(key, entry))
        self._outstanding.settle(key, entry)
        if entry.owner is not None:
            yield from self._release_op(key, entry.owner)
        if saved is None:
            self._moved_on(entry)
            return None
        log.info("%s tokens kept after a refresh are saved now", entry.tokens.provider)
        return self._ready((entry.tokens, entry.failure))

    def _use_kept_op(self, key: str, entry: _Unsaved) -> Operation[TokenSet | None]:
        """The kept tokens while the store still fails: as they are, or refreshed with their
        own refresh token when due (the lease kept for them stands)."""
        tokens = self._ready((entry.tokens, entry.failure))  # a kept permanent failure raises
        if tokens is not None:
            return tokens
        if entry.owner is None:
            return None  # the row's own tokens, not spent: refresh under a lease as usual
        try:
            new = yield from self.client.refresh_op(entry.tokens)
        except ProviderError as exc:
            failed = dataclasses.replace(entry, failure=self._failure(exc))
            self._outstanding.replace(key, entry, failed)
            return self._after_failure(entry.tokens, exc)
        self._outstanding.replace(key, entry, dataclasses.replace(entry, tokens=new, failure=None))
        return new

    def _replaced_op(self, key: str) -> Operation[None]:
        """After a sign-in or sign-out wrote the key: kept tokens are of no more use."""
        entry = self._unsaved.get(key) if self._unsaved else None
        if entry is not None and self._outstanding.settle(key, entry) and entry.owner:
            yield from self._release_op(key, entry.owner)

    def _acquire_op(self, key: str, seen: _Unsaved | None = None) -> Operation[str | None]:
        """The lease on ``key``; ``None`` if another manager of this process kept tokens for
        the key while this one waited (other than ``seen``, already dealt with): they are to
        be used, not refreshed again."""
        left = self._outstanding.leases.get(key)
        if left is not None:
            # A lease of this process whose refresh ended: give it back first, and let the
            # store's error through if it still fails, rather than wait for it to expire.
            yield from ReleaseLease(self.store, key, left)
            self._outstanding.given_back(key, left)
        backoff = _Backoff(self.lock_timeout)
        while True:
            owner = yield from AcquireLease(self.store, key, self.lease)
            if owner is not None:
                return owner
            kept = self._unsaved.get(key)
            if kept is not None and kept is not seen:
                return None
            delay = backoff.next_delay()
            if delay is None:
                raise LockTimeoutError(
                    f"another caller held the refresh lease for more than {self.lock_timeout:g} s"
                )
            yield from Sleep(delay)

    def _release_op(self, key: str, owner: str) -> Operation[None]:
        """Give the lease back; if the store fails, remember it to give back before the next
        refresh of the key (the refresh's outcome matters more than the store's error)."""
        try:
            yield from ReleaseLease(self.store, key, owner)
        except BaseException as exc:
            self._outstanding.left(key, owner)
            log.warning(
                "a refresh lease could not be given back (%s); this process gives it back "
                "before its next refresh of that key",
                _describe(exc),
            )
            if not isinstance(exc, Exception):
                raise

    # -- decisions -------------------------------------------------------------------------

    def _row(self, row: StoredTokens | None) -> StoredTokens:
        if row is None:
            raise TokenNotFoundError("no tokens are stored under this key; sign in first")
        return row

    def _ready(self, found: tuple[TokenSet, RefreshFailure | None] | None) -> TokenSet | None:
        """The stored tokens if they can be used as they are; ``None`` if a refresh is due.

        :param found: the row's tokens and failure, ``None`` without a row.
        :raises TokenNotFoundError: there is no row.
        :raises ProviderError: a permanent refresh failure is recorded (sign in again).
        """
        if found is None:
            raise TokenNotFoundError("no tokens are stored under this key; sign in first")
        tokens, failure = found
        if failure is not None and failure.permanent:
            raise failure_error(tokens, failure)
        if tokens.expires_within(self.client.leeway, self.client.clock()):
            return None
        return tokens

    def _failure(self, error: ProviderError) -> RefreshFailure:
        return RefreshFailure(
            error=error.error,
            status=error.status,
            description=error.description,
            details=error.details,
            permanent=error.permanent,
            at=int(self._clock()),
        )

    def _after_failure(self, tokens: TokenSet, error: ProviderError) -> TokenSet:
        """A transient failure leaves a not-yet-expired access token usable; else raise."""
        if not error.permanent and not tokens.expires_within(0, self._clock()):
            log.info(
                "%s refresh failed (%s, transient); the current access token stays in use",
                tokens.provider,
                error.error,
            )
            return tokens
        raise error

    def _moved_on(self, entry: _Unsaved) -> None:
        log.warning(
            "%s tokens changed in the store during a refresh (a new sign-in?); "
            "the newer row is kept",
            entry.tokens.provider,
        )


class TokenManager(BaseTokenManager[Keyturn]):
    """Tokens per key in a :class:`TokenStore`, refreshed through a :class:`~keyturn.Keyturn`.

    Parameters as for :class:`BaseTokenManager`.
    """

    def _run(self, operation: Operation[T]) -> T:
        return run(operation, self.client.sender)

    def save(
        self,
        key: str,
        tokens: TokenSet,
        *,
        data: Mapping[str, Any] | None = None,
        expires_at: float | None = None,
    ) -> StoredTokens:
        """Store tokens after a sign-in, replacing the key's row and clearing any failure.

        :param key: the app's key (user id, session id).
        :param tokens: what :meth:`Keyturn.exchange_code` (or ``sign_in``) returned.
        :param data: the app's data to keep with the tokens, replacing the row's (``None``:
            none), e.g. the user's profile and the session's claims. JSON-serialisable and
            not secret: it is stored in clear. Refreshes keep it as it is.
        :param expires_at: when the row ends (epoch seconds): from then on the store may
            drop it, and a sweep deletes it. ``None``: kept until deleted. Refreshes keep it.
        :return: the new row.
        :raises TypeError: ``data`` cannot be written as JSON, or ``expires_at`` is not a
            number (nothing is saved).
        """
        return self._run(self.save_op(key, tokens, data=data, expires_at=expires_at))

    def load(self, key: str) -> StoredTokens | None:
        """The row for ``key`` as stored, without refreshing."""
        return self._run(self.load_op(key))

    def delete(self, key: str) -> bool:
        """Forget the key's tokens (sign-out); whether there were any."""
        return self._run(self.delete_op(key))

    def get_tokens(self, key: str) -> TokenSet:
        """The key's tokens, refreshed first (and saved) if the access token is due.

        The same tokens object may be handed to several callers while the row is unchanged;
        like every keyturn model it must not be changed in place.

        :raises TokenNotFoundError: nothing is stored under ``key``.
        :raises ProviderError: the refresh failed: permanent (sign in again), or transient
            with the access token already expired (try again later).
        :raises LockTimeoutError: another caller held the lease for too long.
        """
        # get_tokens_op, with its first step (a store read) done here rather than through
        # the driver: the read is the whole of the usual call.
        if self._unsaved and key in self._unsaved:
            return self._run(self._shared_refresh_op(key))
        tokens = self._ready(self.cache.tokens(key))
        if tokens is not None:
            return tokens
        return self._run(self._shared_refresh_op(key))

    def get_access_token(self, key: str) -> str:
        """The key's access token, refreshed first if due; see :meth:`get_tokens`."""
        return self.get_tokens(key).access_token.get_secret_value()


class AsyncTokenManager(BaseTokenManager[AsyncKeyturn]):
    """The async twin of :class:`TokenManager`, refreshing through an :class:`AsyncKeyturn`.

    Store calls run in worker threads, so a store waiting on its lock never blocks the event
    loop. A refresh runs in a task of its own: a caller cancelled meanwhile (a client that
    hung up) does not stop the save of tokens the provider already rotated.

    Parameters as for :class:`BaseTokenManager`.
    """

    async def _run(self, operation: Operation[T]) -> T:
        return await arun(operation, self.client.sender)

    async def save(
        self,
        key: str,
        tokens: TokenSet,
        *,
        data: Mapping[str, Any] | None = None,
        expires_at: float | None = None,
    ) -> StoredTokens:
        """See :meth:`TokenManager.save`."""
        return await self._run(self.save_op(key, tokens, data=data, expires_at=expires_at))

    async def load(self, key: str) -> StoredTokens | None:
        """See :meth:`TokenManager.load`."""
        return await self._run(self.load_op(key))

    async def delete(self, key: str) -> bool:
        """See :meth:`TokenManager.delete`."""
        return await self._run(self.delete_op(key))

    async def get_tokens(self, key: str) -> TokenSet:
        """See :meth:`TokenManager.get_tokens`."""
        return await self._run(self.get_tokens_op(key))

    async def get_access_token(self, key: str) -> str:
        """See :meth:`TokenManager.get_access_token`."""
        return (await self.get_tokens(key)).access_token.get_secret_value()
