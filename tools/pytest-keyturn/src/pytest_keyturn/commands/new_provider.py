"""``keyturn new-provider NAME``: write a new provider plugin distribution to start from.

The files come from :mod:`pytest_keyturn.scaffold`: a ``ProviderSpec`` with placeholder endpoints,
its entry point, the conformance test and starter cassettes written from RFC 6749.
"""

from __future__ import annotations

import argparse
from typing import Any

ORDER = 50


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "new-provider",
        help="write a new provider plugin (keyturn-NAME/) to start from",
        description="Write a provider plugin distribution: pyproject.toml with the keyturn "
        "entry point, the package with a ProviderSpec to fill in, the conformance test, and "
        "starter cassettes written from RFC 6749.",
    )
    parser.add_argument("name", help="provider id: lowercase letters, digits, '-' or '_'")
    parser.add_argument(
        "--output", metavar="DIR", help="folder to write (default ./keyturn-NAME); must be empty"
    )
    parser.add_argument("--display-name", metavar="TEXT", help="e.g. 'Acme ID' (default: NAME)")
    parser.add_argument(
        "--rotating",
        action="store_true",
        help="the provider rotates refresh tokens (adds a refresh_rotated starter)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from keyturn.cli.options import UsageError
    from pytest_keyturn.scaffold import (
        ScaffoldError,
        check_display_name,
        check_provider_id,
        generate,
    )

    try:
        check_provider_id(args.name)
        if args.display_name is not None:
            check_display_name(args.display_name)
    except ScaffoldError as exc:
        raise UsageError(str(exc)) from None
    target = Path(args.output) if args.output else Path(f"keyturn-{args.name}")
    written = generate(args.name, target, display_name=args.display_name, rotating=args.rotating)
    print(f"wrote {target}/")
    for path in written:
        print(f"  {path.as_posix()}")
    print("next: fill in the endpoints in the package's __init__.py, then:")
    print(f"  cd {target} && pip install -e '.[test]' && pytest")
    return 0
