"""Rows read through a token manager, parsed only when they changed.

Reading a row costs a store round trip and, far more in CPU, turning its text into models: a
``json.loads`` of the tokens and a pydantic validation of the :class:`~keyturn.TokenSet`
(and of the failure, when there is one). A manager reads the row on every
``get_access_token``, and nearly always finds what it found the time before. :class:`RowCache`
keeps, per key, the models it built from the last text it read and hands them out again while
the store still holds exactly that text.

What makes that safe:

* Every call still reads the row from the store; only the parsing is skipped. A row changed by
  another manager, process or host is seen by the next read, and a deleted row reads as
  absent, whatever the cache holds.
* An entry is used only if the row's version (the one :meth:`TokenStore.save
  <keyturn.stores.TokenStore.save>` compares) is the entry's *and* the text of the tokens and
  of the failure is the entry's, character for character. Building models from a text is a
  pure function of that text, so what comes out of the cache is what parsing would give. The
  version alone would do while versions are never reused; comparing the text as well keeps
  the cache right when they are (a store file restored from a backup, a Redis database
  flushed), and costs one string comparison.
* What is handed out is shared: the same :class:`~keyturn.TokenSet` object for every read of
  one row. The models are frozen; their ``extra`` mapping must not be changed in place (no
  keyturn model is ever changed after it is built).
* The cache holds at most ``size`` rows (:data:`DEFAULT_CACHE_SIZE`). An entry keeps the text
  it was built from and the models: measured with :mod:`tracemalloc`, about 2.7 KB for a
  Google-sized token set (a 170-character access token, a refresh token, three scopes) and
  4.6 KB with a 900-character ID token, so the default of 1024 rows stays under 5 MB. When
  full, the entry that was parsed longest ago goes first (a read that finds its entry does
  not move it). Its keys are the app's keys, as the store's own; no token is ever a key, and
  nothing of an entry shows in a ``repr``.

Only stores that can hand out a row's text (:class:`RowTextStore`: the SQLite and Redis
stores) are read this way. Any other store (the memory store, which keeps models and parses
nothing, or an app's own) is read with its ``load``, as before. So is a subclass of a
built-in store that overrides ``load`` without overriding ``load_text``: its ``load`` may do
what ``load_text`` does not.
"""

from __future__ import annotations

import threading
from typing import Protocol, cast, runtime_checkable

from keyturn.models import RefreshFailure, TokenSet

from .base import RowText, StoredTokens, TokenStore, load_data, load_tokens

__all__ = ["DEFAULT_CACHE_SIZE", "RowCache", "RowTextStore", "reads_text"]

#: Rows a manager's cache holds unless told otherwise.
DEFAULT_CACHE_SIZE = 1024

# An entry: version, tokens text, failure text, and the models built from them.
_Entry = tuple[int, str, "str | bytes | None", TokenSet, "RefreshFailure | None"]


@runtime_checkable
class RowTextStore(Protocol):
    """A :class:`~keyturn.stores.TokenStore` that can also hand out a row as stored."""

    def load_text(self, key: str) -> RowText | None:
        """The row for ``key`` as text, unparsed, or ``None``; see :data:`RowText`."""
        ...


def _definer(cls: type, name: str) -> type | None:
    """The class in ``cls``'s method resolution order whose body defines ``name``."""
    return next((base for base in cls.__mro__ if name in base.__dict__), None)


def reads_text(store: TokenStore) -> bool:
    """Whether ``store``'s rows can be read with ``load_text`` in place of ``load``.

    True when ``load_text`` is defined by the class that defines ``load`` or by a subclass of
    it, and neither method was replaced on the object itself: a subclass that changes ``load``
    alone (to decrypt, to log...) keeps being read through its ``load``.
    """
    cls = type(store)
    text_owner, load_owner = _definer(cls, "load_text"), _definer(cls, "load")
    replaced = {"load", "load_text"} & getattr(store, "__dict__", {}).keys()
    return (
        text_owner is not None
        and load_owner is not None
        and issubclass(text_owner, load_owner)
        and not replaced
    )


class RowCache:
    """The models of recently read rows of one store, by key; at most ``size`` of them.

    Safe to use from several threads: reads take no lock, and an entry is replaced whole.

    :param store: the store to read.
    :param size: the most rows to keep; ``0`` keeps none (every read parses).
    """

    __slots__ = ("_entries", "_load_text", "_mutex", "size", "store")

    def __init__(self, store: TokenStore, size: int = DEFAULT_CACHE_SIZE) -> None:
        if size < 0:
            raise ValueError("a cache size is zero or more rows")
        self.store = store
        self.size = size
        self._load_text = cast(RowTextStore, store).load_text if reads_text(store) else None
        self._entries: dict[str, _Entry] = {}
        self._mutex = threading.Lock()

    def __repr__(self) -> str:
        return f"RowCache(<{len(self._entries)} of {self.size} rows>)"

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        """Whether reads go through the cache (a store that hands out text, ``size`` > 0)."""
        return self._load_text is not None and self.size > 0

    def tokens(self, key: str) -> tuple[TokenSet, RefreshFailure | None] | None:
        """The row's tokens and failure, or ``None`` if there is no row; the store is read.

        :param key: the app's key.
        :return: what ``load(key)`` would give for ``tokens`` and ``failure``.
        """
        load_text = self._load_text
        if load_text is None:
            row = self.store.load(key)
            return None if row is None else (row.tokens, row.failure)
        text = load_text(key)
        if text is None:
            self.forget(key)
            return None
        entry = self._models(key, text)
        return entry[3], entry[4]

    def load(self, key: str) -> StoredTokens | None:
        """The row, equal to what the store's ``load`` gives; the store is read.

        Only the tokens and the failure come from the cache: ``data`` is parsed on every
        read, so each caller gets a mapping of its own; ``expires_at`` is read as stored.

        :param key: the app's key.
        """
        load_text = self._load_text
        if load_text is None:
            return self.store.load(key)
        text = load_text(key)
        if text is None:
            self.forget(key)
            return None
        entry = self._models(key, text)
        return StoredTokens(key, entry[3], entry[0], entry[4], load_data(text[3]), text[4])

    def forget(self, key: str) -> None:
        """Drop ``key``'s entry, if any (its row was written or deleted)."""
        if key in self._entries:
            with self._mutex:
                self._entries.pop(key, None)

    def clear(self) -> None:
        """Drop every entry."""
        with self._mutex:
            self._entries.clear()

    def _models(self, key: str, text: RowText) -> _Entry:
        """The entry for exactly ``text``: the cached one, or one built now (and kept)."""
        version, tokens, failure = text[0], text[1], text[2]
        entry = self._entries.get(key)
        if entry is not None and entry[0] == version and entry[1] == tokens and entry[2] == failure:
            return entry
        entry = (
            version,
            tokens,
            failure,
            load_tokens(tokens),
            None if failure is None else RefreshFailure.model_validate_json(failure),
        )
        if self.size:
            self._keep(key, entry)
        return entry

    def _keep(self, key: str, entry: _Entry) -> None:
        entries = self._entries
        with self._mutex:
            entries.pop(key, None)  # back to the end of the insertion order
            entries[key] = entry
            while len(entries) > self.size:
                del entries[next(iter(entries))]
