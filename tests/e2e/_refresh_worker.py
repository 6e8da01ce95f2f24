"""Code a spawned child process runs for the cross-process refresh test.

Kept apart from the test module so that a child imports keyturn and nothing of pytest.
"""

from __future__ import annotations

from typing import Any

import keyturn
from keyturn.stores import SQLiteTokenStore, TokenManager

#: Seconds a child waits for its sibling at the start line, and for the refresh lease.
WAIT = 60.0


def refresh_in_child(
    db: str,
    key: str,
    spec: dict[str, Any],
    credentials: tuple[str, str],
    start: Any,
    results: Any,
) -> None:
    """Open the shared store, wait for the sibling process, then ask for the key's token.

    :param db: the SQLite file both processes share.
    :param key: the row to read (its access token is already expired).
    :param spec: the provider spec as JSON-ready data (specs cross the process boundary so).
    :param credentials: ``(client_id, client_secret)`` at the emulator.
    :param start: a ``multiprocessing`` barrier for the two children; both leave it at once.
    :param results: a queue that receives ``("ok", access_token)`` or
        ``("error", class name, permanent)``.
    """
    provider = keyturn.ProviderSpec.model_validate(spec)
    with (
        SQLiteTokenStore(db) as store,
        keyturn.Keyturn({provider.id: credentials}, providers=[provider], environ={}) as client,
    ):
        manager = TokenManager(client, store, lock_timeout=WAIT)
        start.wait(WAIT)
        try:
            results.put(("ok", manager.get_access_token(key)))
        except keyturn.ProviderError as exc:
            results.put(("error", type(exc).__name__, exc.permanent))
        except keyturn.KeyturnError as exc:
            results.put(("error", type(exc).__name__, None))
