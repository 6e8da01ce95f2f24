"""A token store's methods as effects, for operations that read and write rows.

Each effect carries its store and arguments and is :class:`~keyturn.effects.Blocking`: a
blocking driver calls the store in place, an async driver in a worker thread. The result type
of each is the store method's, so ``row = yield from LoadRow(store, key)`` is typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyturn.effects import Blocking
from keyturn.models import RefreshFailure, TokenSet

from .base import StoredTokens, TokenStore
from .cache import RowCache

__all__ = [
    "AcquireLease",
    "DeleteRow",
    "LoadCached",
    "LoadRow",
    "ReadTokens",
    "ReleaseLease",
    "SaveRow",
]


@dataclass(frozen=True, slots=True)
class LoadRow(Blocking[StoredTokens | None]):
    """:meth:`TokenStore.load <keyturn.stores.TokenStore.load>`."""

    store: TokenStore
    key: str

    def call(self) -> StoredTokens | None:
        return self.store.load(self.key)


@dataclass(frozen=True, slots=True)
class LoadCached(Blocking[StoredTokens | None]):
    """:meth:`RowCache.load <keyturn.stores.cache.RowCache.load>`: a row, parsed if it changed."""

    cache: RowCache
    key: str

    def call(self) -> StoredTokens | None:
        return self.cache.load(self.key)


@dataclass(frozen=True, slots=True)
class ReadTokens(Blocking[tuple[TokenSet, RefreshFailure | None] | None]):
    """:meth:`RowCache.tokens <keyturn.stores.cache.RowCache.tokens>`: tokens and failure."""

    cache: RowCache
    key: str

    def call(self) -> tuple[TokenSet, RefreshFailure | None] | None:
        return self.cache.tokens(self.key)


@dataclass(frozen=True, slots=True)
class SaveRow(Blocking[StoredTokens | None]):
    """:meth:`TokenStore.save <keyturn.stores.TokenStore.save>`: ``None`` when the row moved on.

    ``expires_at`` is passed only when set, so a store that predates it still works for rows
    without an end.
    """

    store: TokenStore
    key: str
    tokens: TokenSet
    version: int | None = None
    failure: RefreshFailure | None = None
    data: Mapping[str, Any] | None = None
    expires_at: float | None = None

    def call(self) -> StoredTokens | None:
        if self.expires_at is None:
            return self.store.save(
                self.key, self.tokens, version=self.version, failure=self.failure, data=self.data
            )
        return self.store.save(
            self.key,
            self.tokens,
            version=self.version,
            failure=self.failure,
            data=self.data,
            expires_at=self.expires_at,
        )


@dataclass(frozen=True, slots=True)
class DeleteRow(Blocking[bool]):
    """:meth:`TokenStore.delete <keyturn.stores.TokenStore.delete>`."""

    store: TokenStore
    key: str

    def call(self) -> bool:
        return self.store.delete(self.key)


@dataclass(frozen=True, slots=True)
class AcquireLease(Blocking[str | None]):
    """:meth:`TokenStore.acquire <keyturn.stores.TokenStore.acquire>`: an owner, or ``None``."""

    store: TokenStore
    key: str
    lease: float

    def call(self) -> str | None:
        return self.store.acquire(self.key, self.lease)


@dataclass(frozen=True, slots=True)
class ReleaseLease(Blocking[None]):
    """:meth:`TokenStore.release <keyturn.stores.TokenStore.release>`."""

    store: TokenStore
    key: str
    owner: str

    def call(self) -> None:
        self.store.release(self.key, self.owner)
