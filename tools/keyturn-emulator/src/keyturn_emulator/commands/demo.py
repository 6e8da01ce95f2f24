"""``keyturn demo``: sign-in, refresh, rotation, one refresh for many callers, revocation.

Starts the provider emulator in this process and runs :func:`keyturn_emulator.demo.run_demo` for
each chosen provider, showing a timeline (or, with ``--json``, printing one JSON document).
Exit status: 0 when every step behaved as shown, 1 with a one-line error when one did not,
130 on Ctrl-C (the emulator is stopped first).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from keyturn.cli.options import whole_number_from

ORDER = 5

#: The providers, in the order ``all`` runs them (keyturn_emulator.demo.settings.PROVIDERS,
#: repeated here so that building the parser imports nothing of the demo).
_PROVIDERS = (
    "google",
    "github",
    "strict",
    "oidc",
    "gitlab",
    "microsoft",
    "slack",
    "okta",
    "auth0",
    "keycloak",
    "discord",
    "apple",
)
_CHOICES = (*_PROVIDERS, "all")
#: The most concurrent callers the demo sends (each is a task holding a connection).
MAX_CALLERS = 10_000


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="watch sign-in, refresh, rotation and revocation against a local emulator",
        description="Run keyturn against its local provider emulator: sign in through the "
        "real authorize URL, refresh an expired token (rotated on GitHub, kept on Google), "
        "send many concurrent callers at an expired token and count one refresh, revoke the "
        "grant and watch the session turn to RefreshAccessTokenError, then sign in again. "
        "No credentials, no internet. Every step checks itself: exit 1 if one misbehaves.",
    )
    parser.add_argument(
        "--provider",
        action="append",
        choices=_CHOICES,
        metavar="{" + ",".join(_CHOICES) + "}",
        help="provider to tour (repeatable; default: google then github; oidc: any OpenID "
        "Provider through keyturn-oidc, from its issuer alone; the others: their "
        "keyturn-<id> plugin against the emulator's profile of that name; "
        "all: every one)",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="tokens live 1 s with no leeway, so the whole run takes a few seconds",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (events and summary) instead of the display",
    )
    parser.add_argument(
        "--callers",
        type=whole_number_from(2, MAX_CALLERS),
        default=200,
        metavar="N",
        help=f"concurrent callers sent at the expired token (2 to {MAX_CALLERS}; default 200)",
    )
    parser.set_defaults(handler=run)


def chosen_providers(values: list[str] | None) -> tuple[str, ...]:
    """The providers to tour, in order and without repeats, from ``--provider`` values."""
    if not values:
        return ("google", "github")
    ordered: list[str] = []
    for value in values:
        for name in _PROVIDERS if value == "all" else (value,):
            if name not in ordered:
                ordered.append(name)
    return tuple(ordered)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("keyturn: demo interrupted; the emulator is stopped", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from keyturn_emulator.demo.scenario import DemoFailure, DemoSettings, Observer, run_demo

    settings = DemoSettings.choose(
        chosen_providers(args.provider), fast=args.fast, callers=args.callers
    )
    observer: Observer
    if args.json:
        observer = Observer()
    else:
        from keyturn_emulator.demo.display import Display

        observer = Display()
    # The demo provokes refresh failures on purpose and reports each in its own output; the
    # log lines keyturn writes for an operator would only repeat them on stderr.
    quiet = logging.getLogger("keyturn")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    try:
        report = run_demo(settings, observer)
    except DemoFailure as exc:
        if args.json and exc.report is not None:
            print(json.dumps(exc.report.as_dict(), indent=2), flush=True)
        raise
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    return 0
