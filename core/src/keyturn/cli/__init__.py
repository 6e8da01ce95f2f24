"""The ``keyturn`` command.

Sub-commands are found through the ``keyturn.commands`` entry-point group, so a distribution
adds its own by declaring one::

    [project.entry-points."keyturn.commands"]
    emulator = "keyturn_emulator.commands.emulator"

The entry point's name is the command's name and its value a module that defines
``add_parser(commands)``: it adds its parser to ``commands`` (an argparse sub-parser action)
and sets ``handler`` to a function that takes the parsed arguments and returns the exit
status. An optional ``ORDER`` (an int, default 100) places the command in ``--help``. Keep
heavy imports inside the handler, so ``keyturn --help`` stays quick.

keyturn installs ``providers``, ``authorize-url`` and ``sessions``. Tools live in distributions
of their own (:data:`ELSEWHERE`); asked for one that is not installed, the command says which
distribution to install.

Errors print one line on stderr and exit non-zero, with no traceback: status 1 for a keyturn
error, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from keyturn import __version__
from keyturn.errors import KeyturnError

__all__ = ["ELSEWHERE", "FOLDERS", "GROUP", "build_parser", "main"]

#: The entry-point group sub-commands are published under.
GROUP = "keyturn.commands"

#: Commands that other distributions of the project provide: command -> distribution.
ELSEWHERE = {
    "demo": "keyturn-emulator",
    "emulator": "keyturn-emulator",
    "record": "pytest-keyturn",
    "new-provider": "pytest-keyturn",
}
#: Where each of those distributions lives in a clone of keyturn's repository.
FOLDERS = {"keyturn-emulator": "tools/keyturn-emulator", "pytest-keyturn": "tools/pytest-keyturn"}


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line like every other keyturn error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"keyturn: error: {message} (see '{self.prog} --help')\n")


def _commands() -> dict[str, ModuleType]:
    """The installed sub-command modules by name.

    :raises KeyturnError: a command's module cannot be imported (naming its distribution).
    """
    found: dict[str, ModuleType] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        if ep.name in found:
            continue
        try:
            found[ep.name] = ep.load()
        except Exception as exc:
            dist = ep.dist.metadata["Name"] if ep.dist is not None else "an unknown distribution"
            raise KeyturnError(
                f"the {ep.name!r} command from {dist} failed to load: {type(exc).__name__}: {exc}"
            ) from None
    return found


def _missing_note(installed: Sequence[str]) -> str | None:
    absent: dict[str, list[str]] = {}
    for command, dist in ELSEWHERE.items():
        if command not in installed:
            absent.setdefault(dist, []).append(command)
    if not absent:
        return None
    lines = [f"  {', '.join(cmds)} (pip install {dist})" for dist, cmds in absent.items()]
    return "more commands:\n" + "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The full ``keyturn`` parser, with every installed sub-command."""
    modules = _commands()
    parser = _Parser(
        prog="keyturn",
        description="OAuth 2.0 sign-in and token refresh, with provider plugins.",
        epilog=_missing_note(list(modules)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"keyturn {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    ordered = sorted(modules.items(), key=lambda item: (getattr(item[1], "ORDER", 100), item[0]))
    for _, module in ordered:
        module.add_parser(commands)
    return parser


def _not_installed(argv: Sequence[str]) -> str | None:
    """The distribution to install when ``argv`` names a command that lives elsewhere."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command is None or command not in ELSEWHERE:
        return None
    installed = {ep.name for ep in importlib.metadata.entry_points(group=GROUP)}
    return None if command in installed else ELSEWHERE[command]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    dist = _not_installed(args_list)
    if dist is not None:
        command = next(arg for arg in args_list if not arg.startswith("-"))
        print(
            f"keyturn: error: 'keyturn {command}' comes with the {dist} distribution, which is "
            f"not installed: pip install {dist} (from a clone of keyturn: "
            f"pip install ./{FOLDERS[dist]})",
            file=sys.stderr,
        )
        return 2
    try:
        args = build_parser().parse_args(args_list)
        status: int = args.handler(args)
    except KeyturnError as exc:
        print(f"keyturn: error: {exc}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
