"""``keyturn emulator``: run the local OAuth 2.0 provider emulator until Ctrl-C or SIGTERM.

Prints the base URL, the client credentials it accepts and each profile's endpoints, then
serves. Knob flags set lifetimes and faults; ``GET <base>/_emulator/state`` shows counters.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import threading
from types import FrameType
from typing import Any

from keyturn.cli.options import (
    UsageError,
    fraction,
    port_number,
    seconds,
    whole_number,
    whole_seconds,
)
from keyturn.errors import KeyturnError

ORDER = 40


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "emulator",
        help="run a local OAuth 2.0 provider (google, github, strict and oidc profiles)",
        description="A real OAuth 2.0 and OpenID Connect provider on 127.0.0.1 for development "
        "and tests: no credentials, no internet. Runs until Ctrl-C or SIGTERM.",
    )
    parser.add_argument(
        "--port", type=port_number, default=0, help="port to listen on (0: pick one)"
    )
    parser.add_argument(
        "--access-token-lifetime",
        type=whole_seconds,
        default=3600,
        metavar="SECONDS",
        help="access token lifetime ('never' for no expiry; default 3600)",
    )
    parser.add_argument(
        "--refresh-token-lifetime",
        type=whole_seconds,
        default=None,
        metavar="SECONDS",
        help="refresh token lifetime (default: no expiry)",
    )
    parser.add_argument(
        "--fault-rate", type=fraction, default=0.0, help="fraction of token requests answered 503"
    )
    parser.add_argument(
        "--drop-rate",
        type=fraction,
        default=0.0,
        help="fraction of token requests whose connection is closed, unprocessed",
    )
    parser.add_argument(
        "--lost-answer-rate",
        type=fraction,
        default=0.0,
        help="fraction of token requests processed, then closed without an answer",
    )
    parser.add_argument(
        "--latency",
        type=seconds(),
        default=0.0,
        metavar="SECONDS",
        help="delay per provider request",
    )
    parser.add_argument(
        "--seed", type=whole_number, default=None, help="seed for reproducible faults"
    )
    parser.add_argument(
        "--consent",
        choices=("auto", "page"),
        default="auto",
        help="'page' shows an Allow/Deny page instead of approving at once",
    )
    parser.add_argument("--json", action="store_true", help="print the details as JSON")
    parser.set_defaults(handler=run)


def _describe(emu: Any) -> dict[str, Any]:
    credentials = emu.credentials
    secret = credentials.client_secret.get_secret_value() if credentials.client_secret else None
    return {
        "base_url": emu.base_url,
        "client_id": credentials.client_id,
        "client_secret": secret,
        "state": emu.base_url + "/_emulator/state",
        "profiles": {
            name: {"issuer": emu.issuer(name), **emu.endpoints(name)} for name in emu.profiles
        },
    }


def _print(info: dict[str, Any]) -> None:
    print(f"keyturn emulator at {info['base_url']}")
    print(f"  client_id     {info['client_id']}")
    print(f"  client_secret {info['client_secret']}")
    print(f"  state         {info['state']}")
    for name, endpoints in info["profiles"].items():
        print(f"{name}:")
        for key, value in endpoints.items():
            if value:
                print(f"  {key.removesuffix('_endpoint'):<13} {value}")
    print("Ctrl-C to stop.")


def run(args: argparse.Namespace) -> int:
    try:
        from keyturn_emulator import Emulator, Knobs
    except ImportError as exc:
        raise KeyturnError(str(exc)) from None
    if args.drop_rate + args.lost_answer_rate > 1.0:
        raise UsageError("--drop-rate and --lost-answer-rate add up to more than 1")
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        emu = Emulator(
            access_token_lifetime=args.access_token_lifetime,
            refresh_token_lifetime=args.refresh_token_lifetime,
            fault_rate=args.fault_rate,
            drop_rate=args.drop_rate,
            lost_answer_rate=args.lost_answer_rate,
            latency=args.latency,
            seed=args.seed,
            consent=args.consent,
            port=args.port,
        )
    except ValueError as exc:
        # The options are checked above; should a check miss, the emulator's message names
        # its knobs, and the user typed options.
        names = "|".join([*sorted(Knobs.__dataclass_fields__, key=len, reverse=True), "port"])
        message = re.sub(
            rf"\b({names})\b", lambda found: "--" + found[1].replace("_", "-"), str(exc)
        )
        raise UsageError(message) from None
    try:
        emu.start()
    except OSError as exc:
        raise KeyturnError(f"emulator: cannot listen on port {args.port}: {exc.strerror}") from None
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        info = _describe(emu)
        if args.json:
            print(json.dumps(info, indent=2), flush=True)
        else:
            _print(info)
            print(end="", flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        emu.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
