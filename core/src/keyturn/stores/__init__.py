"""Token stores for server-side apps: tokens per key, refreshed once across processes.

* :class:`TokenStore`: the protocol a store implements (rows with versions, leases).
* :class:`MemoryTokenStore`: a dict, for tests and single-process apps.
* :class:`SQLiteTokenStore`: the embedded default, one file shared by a host's processes.
* :class:`TokenManager` / :class:`AsyncTokenManager`: save after sign-in, then
  ``get_access_token(key)`` whenever the app needs one.

What holds when a process dies mid-refresh is spelled out in :mod:`keyturn.stores.manager`.
"""

from .base import LockTimeoutError, StoredTokens, TokenNotFoundError, TokenStore
from .manager import AsyncTokenManager, TokenManager
from .memory import MemoryTokenStore
from .sqlite import SQLiteTokenStore

__all__ = [
    "AsyncTokenManager",
    "LockTimeoutError",
    "MemoryTokenStore",
    "SQLiteTokenStore",
    "StoredTokens",
    "TokenManager",
    "TokenNotFoundError",
    "TokenStore",
]
