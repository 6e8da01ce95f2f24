"""What a token store is: the protocol, the row it returns, and its errors.

A store keeps one :class:`~keyturn.TokenSet` per app-chosen key (a user id, a session id),
with the secrets, a version that grows on every write, and the last refresh failure. It
also hands out short leases on a key, so that one process at a time refreshes it.

Writes are compare-and-set: ``save(key, tokens, version=n)`` succeeds only while the stored
row is still at version ``n``, so an older :class:`~keyturn.TokenSet` never overwrites a
newer one. Versions start at 1; ``version=0`` means "only if there is no row yet";
``version=None`` writes unconditionally (a fresh sign-in replaces whatever was there).

Next to the tokens a row keeps ``data``: a small JSON mapping of the app's own (the signed-in
user's profile, the claims of a database-backed web session). It is not secret, is stored in
clear, and is written whole by every save; the manager carries it over on each refresh.

A row may also have an end, ``expires_at`` (epoch seconds): from then on the store may drop it
at any moment. A database-backed web session's row ends with the session. Redis drops such a
row by itself; every built-in store deletes them in :meth:`sweep`. A row without one is kept
until it is deleted.

A lease's owner names the process that took it, ``host:pid:place:random``, where ``place`` is
the PID namespace and the boot of the process (:func:`process_place`). A store may take a
lease over before it expires only from an owner :func:`owner_is_dead` proves gone.
"""

from __future__ import annotations

import json
import math
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from keyturn.errors import LockTimeoutError, ProviderError, TokenNotFoundError
from keyturn.models import REFRESH_ACCESS_TOKEN_ERROR, REVEAL, RefreshFailure, TokenSet

__all__ = [
    "LockTimeoutError",
    "RowText",
    "StoredTokens",
    "TokenNotFoundError",
    "TokenStore",
    "check_expires_at",
    "dump_data",
    "dump_tokens",
    "load_data",
    "load_row",
    "load_tokens",
    "new_owner",
    "owner_is_dead",
    "process_place",
]


@dataclass(frozen=True)
class StoredTokens:
    """One row of a token store.

    :ivar key: the app's key; left out of ``repr`` (it may be a session id).
    :ivar tokens: the tokens, secrets included (masked in ``repr`` as always).
    :ivar version: grows by one on every write; what :meth:`TokenStore.save` compares.
    :ivar failure: the last refresh failure, cleared by a successful refresh or a sign-in.
    :ivar data: the app's own data kept with the row (say the signed-in user's profile and
        the claims of a web session); empty unless the app saved some. A JSON object as
        :func:`json.loads` gives it back (tuples come back as lists, keys as strings). Not
        secret: stores keep it in clear, so never put tokens in it. Every save replaces it
        whole; the manager carries it over from the row it refreshes. Left out of ``repr``
        (it may hold personal data).
    :ivar expires_at: when the row ends (epoch seconds): from then on the store may drop it,
        and :meth:`sweep` deletes it. ``None``: kept until deleted. A refresh keeps it.
    """

    key: str = field(repr=False)
    tokens: TokenSet
    version: int
    failure: RefreshFailure | None = None
    data: Mapping[str, Any] = field(default_factory=dict, repr=False)
    expires_at: float | None = None

    @property
    def error(self) -> str | None:
        """``"RefreshAccessTokenError"`` after a permanent refresh failure, as in a session."""
        if self.failure is not None and self.failure.permanent:
            return REFRESH_ACCESS_TOKEN_ERROR
        return None


#: A row as a store keeps it, parsed by nobody yet: ``(version, tokens, failure, data,
#: expires_at)``, the middle three being the JSON texts of :func:`dump_tokens`, of the failure
#: and of :func:`dump_data` (``None`` when absent). What a store's ``load_text`` returns, and
#: :func:`load_row` turns into a :class:`StoredTokens`.
RowText = tuple[int, str, str | bytes | None, str | bytes | None, float | None]


@runtime_checkable
class TokenStore(Protocol):
    """Where :class:`~keyturn.stores.TokenManager` keeps tokens between requests.

    Every method is blocking and short; the async manager runs them in a worker thread.
    Implementations must be safe to call from several threads at once. The manager always
    passes ``data=`` to :meth:`save`, so every store must accept it and keep it. It passes
    ``expires_at=`` only for a row that has an end, and the ``database`` web strategy only to
    a store whose ``save`` takes it: a store of an app's own that predates it keeps working.
    The built-in stores also have ``sweep(now=None) -> int``, which deletes the rows that
    ended; it is not part of this protocol.
    """

    def load(self, key: str) -> StoredTokens | None:
        """The row for ``key``, or ``None``.

        :param key: the app's key.
        :return: the stored row.
        """
        ...

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
        """Write ``tokens`` (``failure``, ``data``) for ``key``, if the row is still at ``version``.

        Every write gets a version the store has never given before, to any key, deletes
        included: a refresh that read a row before a sign-out can never overwrite the row a
        new sign-in wrote after it, even though both rows belong to the same key.

        :param key: the app's key.
        :param tokens: the tokens to keep, secrets included.
        :param version: the version read before; ``0`` when there was no row; ``None`` to
            write whatever is stored.
        :param failure: the refresh failure to record with the tokens, or ``None``.
        :param data: the app's data the row holds after this write, replacing what it held
            (``None``: an empty mapping). Must be JSON-serialisable; see
            :attr:`StoredTokens.data`. Whoever rewrites a row it read (a refresh) passes its
            ``data`` back to keep it.
        :param expires_at: when the row ends (epoch seconds), replacing its end; ``None``: it
            lasts until deleted. See :attr:`StoredTokens.expires_at`; a refresh passes the
            row's back, as it does ``data``.
        :return: the new row, or ``None`` when the row changed since ``version`` (nothing
            was written).
        :raises TypeError: ``data`` is not a mapping that :func:`json.dumps` can write, or
            ``expires_at`` is not a number; checked before anything is written.
        :raises ValueError: ``expires_at`` is not finite.
        """
        ...

    def delete(self, key: str) -> bool:
        """Forget ``key`` (sign-out).

        :param key: the app's key.
        :return: whether there was a row.
        """
        ...

    def acquire(self, key: str, lease: float) -> str | None:
        """Take the refresh lease on ``key`` if nobody holds a live one.

        A lease is live until it expires, or until its holder is proven dead (see
        :func:`owner_is_dead`), for a store that takes such leases over. Never blocks for
        long: callers poll.

        :param key: the app's key.
        :param lease: seconds the lease lasts if it is never released.
        :return: an owner token to pass to :meth:`release`, or ``None`` if the key is taken.
        """
        ...

    def release(self, key: str, owner: str) -> None:
        """Give the lease back; does nothing if ``owner`` no longer holds it.

        :param key: the app's key.
        :param owner: what :meth:`acquire` returned.
        """
        ...


def failure_error(tokens: TokenSet, failure: RefreshFailure) -> ProviderError:
    """The error a stored permanent failure stands for, raised again on later calls."""
    return ProviderError(
        provider=tokens.provider,
        operation="refresh",
        error=failure.error,
        permanent=failure.permanent,
        status=failure.status,
        description=failure.description,
        details=failure.details,
    )


def dump_tokens(tokens: TokenSet) -> str:
    """``tokens`` as JSON text, secrets included: for a store's own column."""
    return json.dumps(tokens.model_dump(mode="json", context=REVEAL), separators=(",", ":"))


def load_row(
    key: str,
    version: int | str | bytes,
    tokens: str | bytes,
    failure: str | bytes | None,
    data: str | bytes | None,
    expires_at: float | None = None,
) -> StoredTokens:
    """A row from the text a store keeps in its columns or fields (the inverse of the dumps)."""
    return StoredTokens(
        key,
        load_tokens(tokens.decode() if isinstance(tokens, bytes) else tokens),
        int(version),
        None if failure is None else RefreshFailure.model_validate_json(failure),
        load_data(data),
        expires_at,
    )


def check_expires_at(value: object) -> float | None:
    """``expires_at`` as given to :meth:`TokenStore.save`, checked: a finite number or ``None``.

    :raises TypeError: not a number (``bool`` included).
    :raises ValueError: NaN or infinite.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expires_at must be epoch seconds, not {type(value).__name__}")
    moment = float(value)
    if not math.isfinite(moment):
        raise ValueError("expires_at must be a finite number of epoch seconds")
    return moment


def load_tokens(text: str) -> TokenSet:
    """The inverse of :func:`dump_tokens`."""
    data: Any = json.loads(text)
    return TokenSet.model_validate(data)


def dump_data(data: Mapping[str, Any] | None) -> str | None:
    """``data`` as compact JSON text for a store's own column; ``None`` when it is empty.

    :param data: what :meth:`TokenStore.save` was given.
    :return: the JSON text, or ``None`` for ``None`` or an empty mapping.
    :raises TypeError: ``data`` is not a mapping, or holds something JSON cannot write (an
        object, bytes, a set, a cycle, NaN or infinity).
    """
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TypeError(f"data must be a mapping, not {type(data).__name__}")
    if not data:
        return None
    try:
        return json.dumps(dict(data), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"data must be JSON-serialisable: {exc}") from exc


def load_data(text: str | bytes | None) -> dict[str, Any]:
    """The inverse of :func:`dump_data`: a new dict, empty for ``None``."""
    if text is None:
        return {}
    data: Any = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("a token store row holds data that is not a JSON object")
    return data


_HOST = socket.gethostname()

#: Where this process's PID namespace and boot are read (Linux).
PID_NAMESPACE = "/proc/self/ns/pid"
BOOT_ID = "/proc/sys/kernel/random/boot_id"

_place: tuple[int, str] | None = None  # (pid it was read in, place)


def _read_place() -> str:
    """``<pid namespace inode>.<boot id>``, or ``""`` where either cannot be read."""
    try:
        namespace = os.readlink(PID_NAMESPACE)  # "pid:[4026531836]"
        with open(BOOT_ID, encoding="ascii") as file:
            boot = file.read().strip()
    except (OSError, ValueError):
        return ""
    inode = namespace.partition("[")[2].rstrip("]")
    if not inode.isdigit() or not boot or ":" in boot or "." in boot:
        return ""
    return f"{inode}.{boot}"


def process_place() -> str:
    """What tells this process's pids apart from other processes' with the same host name.

    On Linux, the inode of its PID namespace and the kernel's boot id: two processes with
    the same host name, the same place and the same pid are the same process. ``""`` where
    this cannot be read (another OS, ``/proc`` hidden): such a process proves nobody dead,
    and nobody proves it dead.
    """
    global _place
    pid = os.getpid()
    known = _place
    if known is None or known[0] != pid:  # read again in a child: it may be elsewhere
        known = _place = (pid, _read_place())
    return known[1]


def new_owner() -> str:
    """A lease owner token: ``host:pid:place:random``, unique to one acquisition."""
    return f"{_HOST}:{os.getpid()}:{process_place()}:{uuid.uuid4().hex}"


def owner_is_dead(owner: str) -> bool:
    """Whether ``owner`` is proven to be a process that has exited (POSIX only).

    Lets a lease left by a killed process be taken over at once instead of after it
    expires. It is proven only when the owner ran on this host name, in this PID namespace,
    since this boot (:func:`process_place`, which must be known), and no process has its pid
    now. Anything else counts as alive: another host, a container with the same host name
    but a PID namespace of its own (its pids mean nothing here), a host that rebooted, an
    owner written without a place (by an older keyturn), this very process, a pid that
    exists but is not ours to signal.
    """
    parts = owner.rsplit(":", 3)
    if len(parts) != 4 or os.name != "posix":
        return False
    host, pid_text, place, _ = parts
    if host != _HOST or not pid_text.isdigit() or not place or place != process_place():
        return False
    pid = int(pid_text)
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists but is not ours (EPERM), or unknown: alive
        return False
    return False
