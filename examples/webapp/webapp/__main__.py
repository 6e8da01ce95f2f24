"""``python -m webapp``: the example app and a local provider emulator, on 127.0.0.1.

The emulator plays GitHub and Google (no accounts, no credentials, no internet). Access
tokens live 30 seconds by default, so the page shows a refresh every half minute.

    cd examples/webapp
    python -m webapp                      # then open the URL it prints
    python -m webapp --strategy database  # sessions in a token store instead of the cookie
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from collections.abc import Sequence
from typing import get_args

import uvicorn

from keyturn.stores.base import TokenStore
from keyturn.stores.memory import MemoryTokenStore
from keyturn.stores.sqlite import SQLiteTokenStore
from keyturn.web import SECRET_ENV
from keyturn.web.settings import StrategyName
from keyturn_emulator import Emulator

from .app import create_app
from .emulated import emulated_client

#: The environment variable that picks the session strategy when ``--strategy`` is not given.
STRATEGY_ENV = "WEBAPP_STRATEGY"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m webapp",
        description=(
            "Run keyturn's example web app on 127.0.0.1 with a local emulator as GitHub and "
            "Google. Open the printed URL, sign in, and watch the access token refresh."
        ),
    )
    parser.add_argument(
        "--strategy",
        choices=get_args(StrategyName),
        default=os.environ.get(STRATEGY_ENV, "jwt"),
        help=(
            "where sessions live: 'jwt' sealed in the cookie, 'database' in a token store "
            f"(default: ${STRATEGY_ENV}, else jwt)"
        ),
    )
    parser.add_argument(
        "--store",
        metavar="FILE",
        help="with --strategy database: a SQLite file for the sessions (default: in memory)",
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="the app's port; 0 picks a free one (8000)"
    )
    parser.add_argument(
        "--access-token-lifetime",
        type=int,
        default=30,
        metavar="SECONDS",
        help="how long the emulator's access tokens live (30)",
    )
    parser.add_argument(
        "--leeway",
        type=float,
        default=2,
        metavar="SECONDS",
        help="refresh this long before an access token expires (2)",
    )
    parser.add_argument(
        "--consent",
        choices=("page", "auto"),
        default="page",
        help="show the emulator's Allow/Deny page at sign-in, or approve at once (page)",
    )
    args = parser.parse_args(argv)
    if args.strategy not in get_args(StrategyName):
        parser.error(f"${STRATEGY_ENV} must be jwt or database, not {args.strategy!r}")
    if args.store is not None and args.strategy != "database":
        parser.error("--store needs --strategy database")
    if args.access_token_lifetime <= args.leeway:
        parser.error("--access-token-lifetime must be longer than --leeway")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run until interrupted (Ctrl+C)."""
    args = parse_args(argv)
    # A secret made up for this run unless one is set: sessions end when the app stops.
    secret = os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", args.port))
    except OSError as exc:
        sock.close()
        print(f"cannot listen on 127.0.0.1:{args.port} ({exc}); try --port 0", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    store: TokenStore | None = None
    if args.strategy == "database":
        store = MemoryTokenStore() if args.store is None else SQLiteTokenStore(args.store)
    try:
        with Emulator(
            access_token_lifetime=args.access_token_lifetime, consent=args.consent
        ) as emu:
            app = create_app(
                emulated_client(emu, leeway=args.leeway),
                secret=secret,
                strategy=args.strategy,
                store=store,
                # Plain HTTP on 127.0.0.1: a Secure cookie would never come back over it.
                # Anywhere else, serve HTTPS and leave this at None (Secure follows HTTPS).
                secure_cookies=False,
            )
            print(f"keyturn example app:  http://127.0.0.1:{port}/", flush=True)
            print(
                f"provider emulator:    {emu.base_url}  "
                f"(access tokens live {args.access_token_lifetime} s, "
                f"sessions: {args.strategy})",
                flush=True,
            )
            print("Ctrl+C stops both.", flush=True)
            config = uvicorn.Config(app, log_level="warning")
            uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn has stopped the app and passes Ctrl+C on; the emulator stops too
    finally:
        sock.close()
        if isinstance(store, SQLiteTokenStore):
            store.close()
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
