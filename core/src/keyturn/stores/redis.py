"""A token store on Redis: for apps whose processes run on several hosts.

Needs redis-py (``pip install keyturn[redis]``). Every operation is one round trip, and
every decision is taken on the server, atomically:

* a row is a hash ``<prefix>tokens:<key>`` with the fields ``version``, ``tokens`` (the
  JSON of :func:`~keyturn.stores.base.dump_tokens`, secrets included, as the SQLite store
  keeps it), ``failure``, ``data`` (the app's JSON object) and ``expires_at`` (when the row
  ends); the last three are absent when empty, so rows written before they existed load
  without them; it is read with one ``HMGET``;
* a save is a Lua script that compares the stored version with the one the caller read,
  and writes the whole row (and its expiry) only if they match;
* a lease is a string ``<prefix>lease:<key>`` holding its owner, taken with
  ``SET ... NX PX <lease>`` and given back by a Lua script that deletes it only while it
  still names that owner. Lease expiry runs on the Redis server's clock, so hosts whose
  clocks disagree still agree on when a lease ends.

Each script touches a single key: no operation spans two hash slots.

Leases left by a killed process end when they expire (the manager's ``lease``, 60 s by
default). :class:`RedisTokenStore` can also take over at once a lease whose owner is proven
dead (``reclaim_dead_leases=True``), as the SQLite store does by default: the owner ran on
this host name, in this PID namespace, since this boot, and its pid is gone
(:func:`~keyturn.stores.base.owner_is_dead`). Containers given the same host name have PID
namespaces of their own, so they never take each other's leases. It stays off by default
here, as it always was: with many hosts, waiting out a dead owner's lease is the rarer cost.

A row that ends (``expires_at``, as a database web session's row does) is given that moment
as its time to live, so Redis drops it by itself; :meth:`RedisTokenStore.sweep` finds any that
are still there.

The store is also a :class:`~keyturn.documents.DocumentCache`: ``Keyturn(document_cache=
store)`` keeps each discovery document and key set in a hash ``<prefix>document:<url>``
(fields ``text`` and ``expires_at``, on the client's clock), so that every host fetches each
once between them. The key lives as long as the document plus
:data:`~keyturn.documents.STALE_IF_ERROR` (a day, for outages), on the server's clock; a
document's own lifetime counts at most :data:`~keyturn.documents.MAX_TTL`. These keys are
apart from the rows: :meth:`RedisTokenStore.sweep` walks ``<prefix>tokens:*`` only.

Durability is the server's: with ``appendonly yes`` and ``appendfsync always`` a save that
returned survives a crash of the Redis server; with snapshots only, a crash can bring back
an older row, and a provider that rotates refresh tokens then answers ``invalid_grant``
(recorded as a permanent failure: the user signs in again). See
:mod:`keyturn.stores.manager` for the refresh protocol and what it guarantees.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Self

try:
    import redis
except ImportError as exc:  # pragma: no cover - exercised with redis hidden
    raise ImportError("RedisTokenStore needs redis-py: pip install keyturn[redis]") from exc

from keyturn.documents import MAX_TTL, STALE_IF_ERROR
from keyturn.models import RefreshFailure, TokenSet

from .base import (
    RowText,
    StoredTokens,
    check_expires_at,
    dump_data,
    dump_tokens,
    load_data,
    load_row,
    new_owner,
    owner_is_dead,
)

__all__ = ["DEFAULT_PREFIX", "SWEEP_BATCH", "RedisTokenStore", "row_expires_at"]

#: The key prefix used unless another is given.
DEFAULT_PREFIX = "keyturn:"

# Clients opened from a URL give up on a server that stopped answering, instead of hanging
# a request for ever; ``?socket_timeout=...`` in the URL wins.
_URL_DEFAULTS: dict[str, Any] = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0}

# KEYS[1]: the row, KEYS[2]: the store's version counter. ARGV: expected version ("" for
# any), tokens, failure ("" for none), milliseconds the row lives ("0" for ever), data (""
# for none), when the row ends ("" for never). Returns the new version, or 0 on a conflict.
# Versions come from one counter, so none is ever reused, not even for a key deleted and
# written again.
_SAVE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= current then
  return 0
end
local version = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'version', version, 'tokens', ARGV[2])
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], 'failure')
else
  redis.call('HSET', KEYS[1], 'failure', ARGV[3])
end
if ARGV[5] == '' then
  redis.call('HDEL', KEYS[1], 'data')
else
  redis.call('HSET', KEYS[1], 'data', ARGV[5])
end
if ARGV[6] == '' then
  redis.call('HDEL', KEYS[1], 'expires_at')
else
  redis.call('HSET', KEYS[1], 'expires_at', ARGV[6])
end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
return version
"""

# KEYS[1]: the lease. ARGV[1]: the owner giving it back.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1]: the lease. ARGV: the dead owner, the new owner, milliseconds the lease lasts.
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""


# KEYS[1]: a row. ARGV[1]: now. Deletes the row if it ended by then; returns 1 if it did.
_SWEEP = """
local ends = redis.call('HGET', KEYS[1], 'expires_at')
if ends and tonumber(ends) <= tonumber(ARGV[1]) then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

#: Row keys :meth:`RedisTokenStore.sweep` asks for per ``SCAN`` and checks per pipeline.
SWEEP_BATCH = 500

# The fields of a row, in the order of :data:`~keyturn.stores.base.RowText`.
_ROW_FIELDS = ("version", "tokens", "failure", "data", "expires_at")


def row_expires_at(tokens: TokenSet) -> int | None:
    """When ``tokens`` can neither be used nor refreshed any more (epoch seconds).

    With a refresh token: when it expires (``refresh_token_expires_at``), or when the access
    token does if that is later; ``None`` if the refresh token has no known end. Without
    one: when the access token expires, ``None`` if it never does.

    :param tokens: the tokens a row holds.
    :return: the moment the row is of no more use, or ``None``.
    """
    if tokens.refresh_token is None:
        return tokens.expires_at
    end = tokens.refresh_token_expires_at
    if end is None or tokens.expires_at is None:
        return end
    return max(end, tokens.expires_at)


def _text(value: bytes | str) -> str:
    """A reply as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value


def _milliseconds(seconds: float) -> int:
    """``seconds`` as whole milliseconds, at least one."""
    return max(1, math.ceil(seconds * 1000))


class RedisTokenStore:
    """Tokens and leases in Redis (redis-py). Implements :class:`TokenStore`.

    Safe to share between threads (redis-py's connection pool); the async manager calls it
    from worker threads, so one store serves :class:`~keyturn.stores.TokenManager` and
    :class:`~keyturn.stores.AsyncTokenManager` alike.

    :param client: a :class:`redis.Redis` client, or a URL (``redis://``, ``rediss://``,
        ``unix://``) to open one from, with 5 s socket timeouts unless its query string
        says otherwise (``?socket_timeout=2``). A client passed in may decode responses
        or not.
    :param prefix: put before every key this store writes, so that several apps (or
        stores) can share one Redis database.
    :param ttl: seconds a row lives after its last write (sign-in or refresh), so that
        keys nobody uses any more go away; ``None`` keeps rows until deleted.
    :param expire_with_tokens: also drop a row once its tokens can neither be used nor
        refreshed (see :func:`row_expires_at`), e.g. when a GitHub refresh token runs out.
        A row whose tokens are already past that moment lives one more millisecond.
    :param reclaim_dead_leases: take over at once a lease whose owner is proven dead (this
        host name, PID namespace and boot; its pid gone), instead of waiting for it to
        expire. Off by default.
    :param clock: returns epoch seconds; turns ``expire_with_tokens`` moments and row ends
        into a time to live, and is the moment :meth:`sweep` compares with. Lease expiry uses
        the server's clock, not this one.
    """

    def __init__(
        self,
        client: redis.Redis | str,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: float | None = None,
        expire_with_tokens: bool = False,
        reclaim_dead_leases: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be a positive number of seconds, or None")
        self._owns_client = isinstance(client, str)
        self.redis: redis.Redis = (
            redis.Redis.from_url(client, **_URL_DEFAULTS) if isinstance(client, str) else client
        )
        self.prefix = prefix
        self.ttl = ttl
        self.expire_with_tokens = expire_with_tokens
        self.reclaim_dead_leases = reclaim_dead_leases
        self.clock = clock
        self._save = self.redis.register_script(_SAVE)
        self._release = self.redis.register_script(_RELEASE)
        self._take_over = self.redis.register_script(_TAKE_OVER)
        self._sweep = self.redis.register_script(_SWEEP)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """A store on a new client for ``url``; :meth:`close` closes that client.

        :param url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS) or
            ``unix://path``.
        :param options: keyword arguments of :class:`RedisTokenStore` (``prefix``, ``ttl``...).
        :return: the store.
        """
        return cls(url, **options)

    def __repr__(self) -> str:
        # The URL may carry a password: show where the server is, nothing more.
        settings = self.redis.connection_pool.connection_kwargs
        where = settings.get("path") or f"{settings.get('host')}:{settings.get('port')}"
        return f"RedisTokenStore({where}/{settings.get('db', 0)}, prefix={self.prefix!r})"

    def close(self) -> None:
        """Close the client if this store opened it (from a URL).

        A client passed in stays open: it belongs to the app, which may use it elsewhere.
        """
        if self._owns_client:
            self.redis.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def row_key(self, key: str) -> str:
        """The Redis key of ``key``'s row.

        :param key: the app's key.
        :return: ``<prefix>tokens:<key>``.
        """
        return f"{self.prefix}tokens:{key}"

    def lease_key(self, key: str) -> str:
        """The Redis key of ``key``'s refresh lease.

        :param key: the app's key.
        :return: ``<prefix>lease:<key>``.
        """
        return f"{self.prefix}lease:{key}"

    def document_key(self, key: str) -> str:
        """The Redis key of the document kept under ``key`` (its URL).

        :param key: the document cache's key.
        :return: ``<prefix>document:<key>``.
        """
        return f"{self.prefix}document:{key}"

    def load(self, key: str) -> StoredTokens | None:
        """See :meth:`TokenStore.load`."""
        row = self.load_text(key)
        return None if row is None else load_row(key, *row)

    def load_text(self, key: str) -> RowText | None:
        """The row for ``key`` as its fields hold it, unparsed, or ``None``; one ``HMGET``.

        What :meth:`load` parses; a token manager reads this to parse only rows that changed
        (see :mod:`keyturn.stores.cache`). ``failure`` and ``data`` come back as the client
        gives them (bytes unless it decodes responses).
        """
        version, tokens, failure, data, ends = self.redis.hmget(self.row_key(key), _ROW_FIELDS)
        if version is None or tokens is None:
            return None
        return int(version), _text(tokens), failure, data, None if ends is None else float(ends)

    def save(
        self,
        key: str,
        tokens: TokenSet,
        *,
        version: int | None = None,
        failure: RefreshFailure | None = None,
        data: Mapping[str, Any] | None = None,
        expires_at: float | None = None,
    ) -> StoredTokens | None:
        """See :meth:`TokenStore.save`.

        The row's time to live is set again on every write (or removed, when no expiry
        applies to these tokens or this row): the soonest of ``ttl``, the tokens' end (with
        ``expire_with_tokens``) and ``expires_at``.
        """
        data_text = dump_data(data)
        ends = check_expires_at(expires_at)
        written = self._save(
            keys=[self.row_key(key), self.prefix + "version"],
            args=[
                "" if version is None else str(version),
                dump_tokens(tokens),
                "" if failure is None else failure.model_dump_json(),
                str(self._row_ttl(tokens, ends)),
                "" if data_text is None else data_text,
                "" if ends is None else repr(ends),
            ],
        )
        if int(written) == 0:
            return None
        return StoredTokens(key, tokens, int(written), failure, load_data(data_text), ends)

    def _row_ttl(self, tokens: TokenSet, ends: float | None = None) -> int:
        """Milliseconds a row holding ``tokens`` and ending at ``ends`` lives; ``0`` for ever."""
        candidates: list[int] = []
        if self.ttl is not None:
            candidates.append(_milliseconds(self.ttl))
        if self.expire_with_tokens:
            end = row_expires_at(tokens)
            if end is not None:
                candidates.append(_milliseconds(end - self.clock()))
        if ends is not None:
            candidates.append(_milliseconds(ends - self.clock()))
        return min(candidates, default=0)

    def delete(self, key: str) -> bool:
        """See :meth:`TokenStore.delete`."""
        return int(self.redis.delete(self.row_key(key))) > 0

    def acquire(self, key: str, lease: float) -> str | None:
        """See :meth:`TokenStore.acquire`.

        A lease ends after ``lease`` seconds on the server's clock; one whose owner died on
        this host is taken over at once only with ``reclaim_dead_leases``.
        """
        name = self.lease_key(key)
        owner = new_owner()
        milliseconds = _milliseconds(lease)
        if self.redis.set(name, owner, nx=True, px=milliseconds):
            return owner
        if not self.reclaim_dead_leases:
            return None
        held = self.redis.get(name)
        if held is None or not owner_is_dead(_text(held)):
            return None  # gone meanwhile (the caller polls again), or alive
        if int(self._take_over(keys=[name], args=[held, owner, milliseconds])) == 1:
            return owner
        return None

    def release(self, key: str, owner: str) -> None:
        """See :meth:`TokenStore.release`."""
        self._release(keys=[self.lease_key(key)], args=[owner])

    # -- the DocumentCache protocol ------------------------------------------------------------

    def get(self, key: str) -> tuple[str, float] | None:
        """The document kept under ``key`` (a URL) and when it expires, or ``None``; one
        ``HMGET``.

        See :class:`~keyturn.documents.DocumentCache`: documents, never token rows. An entry
        that cannot be read (not UTF-8, no finite expiry) counts as absent.
        """
        text, expires_at = self.redis.hmget(self.document_key(key), ("text", "expires_at"))
        if text is None or expires_at is None:
            return None
        try:
            moment = float(_text(expires_at))
            body = _text(text)
        except (UnicodeDecodeError, ValueError):
            return None
        if not math.isfinite(moment):
            return None
        return body, moment

    def put(self, key: str, text: str, expires_at: float) -> None:
        """Keep a document under ``key``: written with its time to live in one transaction.

        The key lives until ``expires_at`` (at most :data:`~keyturn.documents.MAX_TTL` from
        now, on this store's clock) and :data:`~keyturn.documents.STALE_IF_ERROR` more.
        """
        lifetime = min(max(expires_at - self.clock(), 0.0), MAX_TTL) + STALE_IF_ERROR
        name = self.document_key(key)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(name, mapping={"text": text, "expires_at": repr(float(expires_at))})
        pipe.pexpire(name, _milliseconds(lifetime))
        pipe.execute()

    def sweep(self, now: float | None = None) -> int:
        """Delete the rows under this prefix that ended (``expires_at`` at or before ``now``).

        Redis drops such rows by itself when their time to live runs out; a sweep finds the
        ones still there (a clock of this host ahead of the time to live it set, a row whose
        expiry was removed by hand). It walks the prefix's rows with ``SCAN``, so it costs one
        pass over them; each row is checked and deleted on the server by a script (one key
        each, pipelined by :data:`SWEEP_BATCH`), so a row written meanwhile is never lost.

        :param now: epoch seconds; the store's ``clock`` by default.
        :return: how many rows were deleted.
        """
        moment = repr(self.clock() if now is None else check_expires_at(now))
        pattern = _glob_escape(self.row_key("")) + "*"
        deleted = 0
        batch: list[bytes | str] = []
        for name in self.redis.scan_iter(match=pattern, count=SWEEP_BATCH):
            batch.append(name)
            if len(batch) == SWEEP_BATCH:
                deleted += self._sweep_rows(batch, moment)
                batch = []
        if batch:
            deleted += self._sweep_rows(batch, moment)
        return deleted

    def _sweep_rows(self, names: list[bytes | str], moment: str) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            self._sweep(keys=[name], args=[moment], client=pipe)
        return sum(int(result) for result in pipe.execute())


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
