"""The embedded default store: one SQLite file shared by every process of one host.

Settings: WAL journal (readers never wait for the writer), ``synchronous=FULL`` (a
committed transaction survives a killed process and a power cut), ``busy_timeout`` (writers
queue instead of failing with "database is locked"). Every write is one short
``BEGIN IMMEDIATE`` transaction.

Why a lease row and not a write transaction held across the refresh: holding SQLite's
single write lock for the length of an HTTP request would stall every other key's writes
(all users, all processes) behind one slow provider, and a blocked writer only learns of it
through ``busy_timeout``. A lease row (``key``, ``owner``, ``expires_at``) locks one key:
it is taken and released in two tiny transactions, other keys are untouched, and a lease
left by a process that died is taken over when it expires (choose a lease longer than the
HTTP timeout, 60 s by default against keyturn's 10 s), or at once when its owner is proven
dead (``reclaim_dead_leases``, on by default, see below). See :mod:`keyturn.stores.manager`
for the whole protocol and what it guarantees.

Taking over a dead owner's lease. Processes sharing the file may run in containers that
share the volume and even the host name, but not their PIDs: a pid that does not exist here
may be alive in another PID namespace. A lease's owner therefore names its host, pid, PID
namespace and boot (:func:`~keyturn.stores.base.new_owner`), and a lease is taken over
before it expires only when all of host, namespace and boot are this process's and the pid
is gone (:func:`~keyturn.stores.base.owner_is_dead`): that is proof, not a guess, so it is
the default. Any doubt (another namespace, another boot, an owner written by an older
keyturn, a system without ``/proc``) means waiting for the lease to expire.
``reclaim_dead_leases=False`` always waits, as the Redis store does by default.

Rows live in ``keyturn_tokens`` (``key``, ``version``, ``tokens``, ``failure``,
``updated_at``, ``data``, ``expires_at``): ``tokens`` is the JSON of
:func:`~keyturn.stores.base.dump_tokens`, secrets included; ``data`` the app's JSON object,
``NULL`` when empty; ``expires_at`` when the row ends, ``NULL`` for never (indexed, for
:meth:`SQLiteTokenStore.sweep`). A file made before a column existed gets it when a store
opens it: its rows load with empty data, and its database web sessions get their end from
their data.

The store is also a :class:`~keyturn.documents.DocumentCache`: ``Keyturn(document_cache=
store)`` keeps discovery documents and key sets in ``keyturn_documents`` (``key``, the URL;
``text``; ``expires_at``, on the client's clock), a table of its own that :meth:`sweep` never
touches, so the processes sharing the file fetch each document once between them. An entry is
dropped when another is written more than a day (:data:`~keyturn.documents.STALE_IF_ERROR`)
after it expired; one that cannot be read counts as absent.

Use a local file: SQLite's locking is not reliable on network file systems.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from keyturn.documents import STALE_IF_ERROR
from keyturn.errors import LockTimeoutError
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

__all__ = ["SQLiteTokenStore"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS keyturn_tokens (
        key TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        tokens TEXT NOT NULL,
        failure TEXT,
        updated_at REAL NOT NULL,
        data TEXT,
        expires_at REAL
    )""",
    # One row: the last version given out. Versions are never reused, deletes included.
    """CREATE TABLE IF NOT EXISTS keyturn_versions (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last INTEGER NOT NULL
    )""",
    """INSERT OR IGNORE INTO keyturn_versions (id, last)
        SELECT 1, COALESCE(MAX(version), 0) FROM keyturn_tokens""",
    """CREATE TABLE IF NOT EXISTS keyturn_leases (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
    # Discovery documents and key sets (the DocumentCache protocol); never token rows.
    """CREATE TABLE IF NOT EXISTS keyturn_documents (
        key TEXT PRIMARY KEY,
        text TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
)


_LOAD = "SELECT version, tokens, failure, data, expires_at FROM keyturn_tokens WHERE key = ?"

#: Rows one transaction of :meth:`SQLiteTokenStore.sweep` deletes at most, so that a large
#: sweep never holds the write lock for long.
SWEEP_BATCH = 500

# The key prefix of the web's database sessions (keyturn.web.strategies.SESSION_KEY_PREFIX),
# whose data holds the session's end as an integer "expires": rows of a file made before
# expires_at existed take theirs from there.
_SESSION_ENDS = """UPDATE keyturn_tokens SET expires_at = json_extract(data, '$.expires')
    WHERE substr(key, 1, 16) = 'keyturn-session:'
      AND (CASE WHEN json_valid(data) THEN json_type(data, '$.expires') END) = 'integer'"""


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring a ``keyturn_tokens`` table made by an older keyturn up to date."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(keyturn_tokens)")}
    if "data" not in columns:
        db.execute("ALTER TABLE keyturn_tokens ADD COLUMN data TEXT")
    if "expires_at" not in columns:
        db.execute("ALTER TABLE keyturn_tokens ADD COLUMN expires_at REAL")
        # An SQLite without JSON functions leaves their end unknown.
        with contextlib.suppress(sqlite3.OperationalError):
            db.execute(_SESSION_ENDS)
    db.execute(
        "CREATE INDEX IF NOT EXISTS keyturn_tokens_expires_at"
        " ON keyturn_tokens (expires_at) WHERE expires_at IS NOT NULL"
    )


class SQLiteTokenStore:
    """Tokens in a SQLite file (stdlib :mod:`sqlite3`). Implements :class:`TokenStore`.

    One connection per store object, shared by its threads under a lock; open one store
    per process (connections must not cross ``fork``).

    :param path: the database file; created with its tables if missing, brought up to date
        if an older keyturn made it.
    :param timeout: seconds a write waits for another process's write (``busy_timeout``).
    :param reclaim_dead_leases: take over a lease before it expires when its owner is proven
        dead (same host, PID namespace and boot, pid gone); ``False`` always waits for the
        lease to expire. On by default: the proof holds for containers sharing the file.
    :param clock: returns epoch seconds; when leases expire, and the moment :meth:`sweep`
        compares row ends with. All processes sharing the file must agree on it, so leave it
        alone outside tests.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 5.0,
        reclaim_dead_leases: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout
        self.reclaim_dead_leases = reclaim_dead_leases
        self.clock = clock
        self._mutex = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            with self._transaction() as db:
                for statement in _SCHEMA:
                    db.execute(statement)
                _add_missing_columns(db)
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteTokenStore({self.path!r})"

    def close(self) -> None:
        """Close the connection."""
        with self._mutex:
            self._db.close()

    def __enter__(self) -> SQLiteTokenStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` write transaction: committed on success, else rolled back.

        :raises LockTimeoutError: another connection kept the database locked for longer
            than ``timeout`` seconds.
        """
        with self._mutex:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                raise LockTimeoutError(
                    f"the SQLite token store {self.path!r} stayed locked by another "
                    f"connection for more than {self.timeout:g} s"
                ) from exc
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def load(self, key: str) -> StoredTokens | None:
        """See :meth:`TokenStore.load`."""
        row = self.load_text(key)
        return None if row is None else load_row(key, *row)

    def load_text(self, key: str) -> RowText | None:
        """The row for ``key`` as its columns hold it, unparsed, or ``None``.

        What :meth:`load` parses; a token manager reads this to parse only rows that changed
        (see :mod:`keyturn.stores.cache`).
        """
        with self._mutex:
            row: RowText | None = self._db.execute(_LOAD, (key,)).fetchone()
        return row

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
        """See :meth:`TokenStore.save`."""
        data_text = dump_data(data)
        ends = check_expires_at(expires_at)
        tokens_text = dump_tokens(tokens)
        failure_text = None if failure is None else failure.model_dump_json()
        with self._transaction() as db:
            row = db.execute("SELECT version FROM keyturn_tokens WHERE key = ?", (key,)).fetchone()
            current = 0 if row is None else int(row[0])
            if version is not None and version != current:
                return None
            db.execute("UPDATE keyturn_versions SET last = last + 1 WHERE id = 1")
            (new_version,) = db.execute("SELECT last FROM keyturn_versions").fetchone()
            db.execute(
                "INSERT OR REPLACE INTO keyturn_tokens"
                " (key, version, tokens, failure, data, updated_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, new_version, tokens_text, failure_text, data_text, time.time(), ends),
            )
        return StoredTokens(key, tokens, int(new_version), failure, load_data(data_text), ends)

    def delete(self, key: str) -> bool:
        """See :meth:`TokenStore.delete`."""
        with self._transaction() as db:
            return db.execute("DELETE FROM keyturn_tokens WHERE key = ?", (key,)).rowcount > 0

    def acquire(self, key: str, lease: float) -> str | None:
        """See :meth:`TokenStore.acquire`."""
        with self._transaction() as db:
            now = self.clock()
            row = db.execute(
                "SELECT owner, expires_at FROM keyturn_leases WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and row[1] > now and not self._reclaims(row[0]):
                return None
            owner = new_owner()
            db.execute(
                "INSERT OR REPLACE INTO keyturn_leases (key, owner, expires_at) VALUES (?, ?, ?)",
                (key, owner, now + lease),
            )
            return owner

    def _reclaims(self, owner: str) -> bool:
        return self.reclaim_dead_leases and owner_is_dead(owner)

    def release(self, key: str, owner: str) -> None:
        """See :meth:`TokenStore.release`."""
        with self._transaction() as db:
            db.execute("DELETE FROM keyturn_leases WHERE key = ? AND owner = ?", (key, owner))

    def sweep(self, now: float | None = None) -> int:
        """Delete the rows that ended (``expires_at`` at or before ``now``), and old leases.

        Works in transactions of at most :data:`SWEEP_BATCH` rows, so other writers wait
        for one batch at most. Leases that expired (left by processes that died) go too.

        :param now: epoch seconds; the store's ``clock`` by default.
        :return: how many rows were deleted.
        """
        moment = self.clock() if now is None else check_expires_at(now)
        deleted = 0
        while True:
            with self._transaction() as db:
                count = db.execute(
                    "DELETE FROM keyturn_tokens WHERE rowid IN (SELECT rowid FROM keyturn_tokens"
                    " WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)",
                    (moment, SWEEP_BATCH),
                ).rowcount
            deleted += count
            if count < SWEEP_BATCH:
                break
        with self._transaction() as db:
            db.execute("DELETE FROM keyturn_leases WHERE expires_at <= ?", (moment,))
        return deleted

    # -- the DocumentCache protocol ------------------------------------------------------------

    def get(self, key: str) -> tuple[str, float] | None:
        """The document kept under ``key`` (a URL) and when it expires, or ``None``.

        See :class:`~keyturn.documents.DocumentCache`: documents, never token rows. An entry
        that cannot be read (not text, no finite expiry) counts as absent.
        """
        with self._mutex:
            row = self._db.execute(
                "SELECT text, expires_at FROM keyturn_documents WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        text, expires_at = row
        if (
            not isinstance(text, str)
            or isinstance(expires_at, bool)
            or not isinstance(expires_at, int | float)
            or not math.isfinite(expires_at)
        ):
            return None
        return text, float(expires_at)

    def put(self, key: str, text: str, expires_at: float) -> None:
        """Keep a document under ``key`` until ``expires_at`` (and a day past it, for outages).

        Entries that expired more than :data:`~keyturn.documents.STALE_IF_ERROR` before this
        one expires are dropped in the same transaction. :meth:`sweep` leaves documents alone.
        """
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO keyturn_documents (key, text, expires_at) VALUES (?, ?, ?)",
                (key, text, float(expires_at)),
            )
            db.execute(
                "DELETE FROM keyturn_documents WHERE expires_at < ?",
                (float(expires_at) - STALE_IF_ERROR,),
            )
