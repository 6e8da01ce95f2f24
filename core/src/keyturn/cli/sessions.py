"""``keyturn sessions sweep``: delete the rows of ended sessions from a token store.

The ``database`` web strategy saves each session's row with the session's end as the row's
``expires_at``. A row read after that is deleted at once, and Redis drops rows by itself when
they end; a session whose browser never comes back leaves its row in SQLite until a sweep.
Run this command from cron or a timer (hourly is plenty)::

    keyturn sessions sweep --sqlite keyturn-sessions.sqlite3
    keyturn sessions sweep --redis redis://cache:6379/0 [--prefix keyturn:]

It deletes every row whose end has passed (any row saved with ``expires_at``, not only
sessions), and in SQLite the leases that expired too. It does not revoke anything at the
provider: the refresh token of a swept session stays valid there until it expires or the user
revokes the app's access.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
from contextlib import closing
from typing import Any
from urllib.parse import unquote, urlsplit

from keyturn.errors import KeyturnError

ORDER = 30

_DEFAULT_PREFIX = "keyturn:"  # keyturn.stores.redis.DEFAULT_PREFIX, without importing redis


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "sessions",
        help="look after the database sessions in a token store",
        description="Look after the rows of the 'database' web strategy in a token store.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sweep = actions.add_parser(
        "sweep",
        help="delete the rows of sessions that ended",
        description=(
            "Delete the rows whose end has passed (sessions that expired or were abandoned). "
            "The grant at the provider is not revoked."
        ),
    )
    where = sweep.add_mutually_exclusive_group(required=True)
    where.add_argument("--sqlite", metavar="PATH", help="a SQLite token store file")
    where.add_argument(
        "--redis", metavar="URL", help="a Redis server: redis://[[user]:password@]host[:port][/db]"
    )
    sweep.add_argument(
        "--prefix",
        metavar="PREFIX",
        help=f"the Redis store's key prefix (default: {_DEFAULT_PREFIX})",
    )
    sweep.set_defaults(handler=lambda args: run_sweep(sweep, args))


def run_sweep(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Sweep the store the command line names; print how many rows went."""
    if args.sqlite is not None:
        if args.prefix is not None:
            parser.error("--prefix goes with --redis")
        deleted, where = _sweep_sqlite(args.sqlite), args.sqlite
    else:
        deleted, where = _sweep_redis(parser, args.redis, args.prefix or _DEFAULT_PREFIX)
    print(f"deleted {deleted} ended rows from {where}")
    return 0


def _sweep_sqlite(path: str) -> int:
    from keyturn.stores.sqlite import SQLiteTokenStore

    _check_sqlite(path)
    try:
        with SQLiteTokenStore(path) as store:
            return store.sweep()
    except sqlite3.Error as exc:
        raise KeyturnError(f"{path}: {exc}") from None


def _check_sqlite(path: str) -> None:
    """Refuse what is not a keyturn SQLite store, without creating or changing anything."""
    if not os.path.exists(path):
        raise KeyturnError(f"{path}: no such file")
    if os.path.isdir(path):
        raise KeyturnError(f"{path}: is a directory")
    try:
        uri = "file:" + os.path.abspath(path).replace("?", "%3f").replace("#", "%23") + "?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'keyturn_tokens'"
            ).fetchone()
    except sqlite3.Error as exc:
        raise KeyturnError(f"{path}: {exc}") from None
    if found is None:
        raise KeyturnError(f"{path}: not a keyturn token store")


def _sweep_redis(parser: argparse.ArgumentParser, url: str, prefix: str) -> tuple[int, str]:
    try:
        from keyturn.stores.redis import RedisTokenStore
    except ImportError as exc:
        raise KeyturnError(str(exc)) from None
    import redis

    try:
        store = RedisTokenStore.from_url(url, prefix=prefix)
    except ValueError as exc:
        parser.error(f"--redis: {_hide_password(str(exc), url)}")
    with store:
        try:
            return store.sweep(), repr(store)
        except redis.RedisError as exc:
            raise KeyturnError(f"{store!r}: {_hide_password(str(exc), url)}") from None


def _hide_password(message: str, url: str) -> str:
    """``message`` without the URL's password, should a client library ever quote it."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return message
    for shown in {password, unquote(password or "")} - {None, ""}:
        assert shown is not None
        message = message.replace(shown, "***")
    return message
