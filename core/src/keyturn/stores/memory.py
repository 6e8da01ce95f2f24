"""A token store in a dict: for tests, and for one process that may lose its tokens on exit."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from keyturn.documents import MemoryDocumentCache
from keyturn.models import RefreshFailure, TokenSet

from .base import StoredTokens, check_expires_at, dump_data, load_data, new_owner

__all__ = ["MemoryTokenStore"]


class MemoryTokenStore:
    """Rows and leases in memory, guarded by one lock. Implements :class:`TokenStore`.

    A row's ``data`` is kept as JSON text, as the other stores keep it: every load hands out
    a copy of its own, and what a caller does to that copy never changes the store.

    It is also a :class:`~keyturn.documents.DocumentCache` (:meth:`get`, :meth:`put`):
    ``Keyturn(document_cache=store)`` keeps discovery documents and key sets next to the
    rows, apart from them (a :class:`~keyturn.documents.MemoryDocumentCache` of its own),
    for clients that share the store object.

    :param clock: returns epoch seconds; when leases expire, and the moment :meth:`sweep`
        compares row ends with.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._mutex = threading.Lock()
        self._rows: dict[str, tuple[StoredTokens, str | None]] = {}  # the row, its data
        self._last_version = 0
        self._leases: dict[str, tuple[str, float]] = {}
        self._documents = MemoryDocumentCache()

    def __repr__(self) -> str:
        return f"MemoryTokenStore(<{len(self._rows)} rows>)"

    def __len__(self) -> int:
        return len(self._rows)

    def load(self, key: str) -> StoredTokens | None:
        """See :meth:`TokenStore.load`."""
        with self._mutex:
            stored = self._rows.get(key)
        if stored is None:
            return None
        row, data = stored
        return dataclasses.replace(row, data=load_data(data))

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
        text = dump_data(data)
        ends = check_expires_at(expires_at)
        with self._mutex:
            current = self._rows.get(key)
            current_version = 0 if current is None else current[0].version
            if version is not None and version != current_version:
                return None
            self._last_version += 1  # never reused, even after a delete
            row = StoredTokens(key, tokens, self._last_version, failure, expires_at=ends)
            self._rows[key] = (row, text)
        return dataclasses.replace(row, data=load_data(text))

    def delete(self, key: str) -> bool:
        """See :meth:`TokenStore.delete`."""
        with self._mutex:
            return self._rows.pop(key, None) is not None

    def sweep(self, now: float | None = None) -> int:
        """Delete the rows that ended (``expires_at`` at or before ``now``), and old leases.

        :param now: epoch seconds; the store's ``clock`` by default.
        :return: how many rows were deleted.
        """
        moment = self.clock() if now is None else check_expires_at(now)
        assert moment is not None
        with self._mutex:
            ended = [
                key
                for key, (row, _) in self._rows.items()
                if row.expires_at is not None and row.expires_at <= moment
            ]
            for key in ended:
                del self._rows[key]
            for key in [key for key, (_, ends) in self._leases.items() if ends <= moment]:
                del self._leases[key]
        return len(ended)

    def acquire(self, key: str, lease: float) -> str | None:
        """See :meth:`TokenStore.acquire`."""
        with self._mutex:
            now = self.clock()
            held = self._leases.get(key)
            if held is not None and held[1] > now:
                return None
            owner = new_owner()
            self._leases[key] = (owner, now + lease)
            return owner

    def release(self, key: str, owner: str) -> None:
        """See :meth:`TokenStore.release`."""
        with self._mutex:
            held = self._leases.get(key)
            if held is not None and held[0] == owner:
                del self._leases[key]

    # -- the DocumentCache protocol ------------------------------------------------------------

    def get(self, key: str) -> tuple[str, float] | None:
        """The document kept under ``key`` (a URL) and when it expires, or ``None``.

        See :class:`~keyturn.documents.DocumentCache`: documents, never token rows.
        """
        return self._documents.get(key)

    def put(self, key: str, text: str, expires_at: float) -> None:
        """Keep a document under ``key`` until ``expires_at`` (and a day past it, for outages).

        See :class:`~keyturn.documents.DocumentCache`; :meth:`sweep` leaves documents alone.
        """
        self._documents.put(key, text, expires_at)
