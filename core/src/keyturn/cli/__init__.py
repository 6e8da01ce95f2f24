"""The ``keyturn`` command.

Each sub-command lives in its own module of this package (found by listing the package, so
adding a command is adding a module) and exposes ``add_parser(commands)``, which adds its
parser and sets ``handler`` to a function taking the parsed arguments and returning the exit
status. ``ORDER`` (an int, default 100) places the command in ``--help``. Heavy imports
(the emulator, vcrpy) happen inside handlers, so ``keyturn providers`` stays quick.

Errors print one line on stderr and exit non-zero, with no traceback: status 1 for a keyturn
error, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from typing import NoReturn

from keyturn import __version__
from keyturn.errors import KeyturnError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line like every other keyturn error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"keyturn: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The full ``keyturn`` parser, with every sub-command."""
    parser = _Parser(
        prog="keyturn",
        description="OAuth 2.0 sign-in and token refresh, with provider plugins.",
    )
    parser.add_argument("--version", action="version", version=f"keyturn {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    modules = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except KeyturnError as exc:
        print(f"keyturn: error: {exc}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
