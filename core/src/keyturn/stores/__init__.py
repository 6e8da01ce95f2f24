"""Token stores for server-side apps: tokens per key, refreshed once across processes.

* :class:`TokenStore`: the protocol a store implements (rows with versions, leases).
* :class:`MemoryTokenStore`: a dict, for tests and single-process apps.
* :class:`SQLiteTokenStore`: the embedded default, one file shared by a host's processes.
* :class:`RedisTokenStore`: one Redis server shared by many hosts (``keyturn[redis]``);
  imported on first use, so ``import keyturn.stores`` does not need redis-py.
* :class:`TokenManager` / :class:`AsyncTokenManager`: save after sign-in, then
  ``get_access_token(key)`` whenever the app needs one; both drive the operations of
  :class:`BaseTokenManager`, whose store calls are the effects of :mod:`.effects`. A manager
  parses a row again only when it changed since its last read (:mod:`.cache`).

What holds when a process dies mid-refresh is spelled out in :mod:`keyturn.stores.manager`.

Every built-in store is also a :class:`~keyturn.documents.DocumentCache` (``get``, ``put``):
discovery documents and key sets, kept apart from the rows (never loaded as tokens, never
swept), for every process that shares the store. Hand it to the client yourself,
``TokenManager(Keyturn(document_cache=store), store)``: a client is never changed behind the
app's back. The web integration does it for the client it makes itself.
"""

from typing import TYPE_CHECKING, Any

from .base import LockTimeoutError, StoredTokens, TokenNotFoundError, TokenStore
from .manager import AsyncTokenManager, BaseTokenManager, TokenManager
from .memory import MemoryTokenStore
from .sqlite import SQLiteTokenStore

if TYPE_CHECKING:
    from .redis import RedisTokenStore as RedisTokenStore

__all__ = [
    "AsyncTokenManager",
    "BaseTokenManager",
    "LockTimeoutError",
    "MemoryTokenStore",
    "SQLiteTokenStore",
    "StoredTokens",
    "TokenManager",
    "TokenNotFoundError",
    "TokenStore",
]


def __getattr__(name: str) -> Any:
    """Import :class:`RedisTokenStore` only when it is asked for."""
    if name == "RedisTokenStore":
        from .redis import RedisTokenStore

        globals()[name] = RedisTokenStore  # later lookups skip this function
        return RedisTokenStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
