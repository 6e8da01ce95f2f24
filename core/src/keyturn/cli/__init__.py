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

Whatever goes wrong prints one line on stderr, never a traceback, and sets the exit status:

* ``2``: the command line is wrong in itself, and nothing was done: an unknown command or
  option, a missing argument, a value of the wrong form or out of range, values that
  contradict each other. argparse reports its own findings; a command raises
  :class:`~keyturn.cli.options.UsageError` for what it checks itself. Messages name options
  as they are typed (``--scope``, ``--client-id``), never a Python function or argument.
* ``1``: a well-formed command failed: a :class:`~keyturn.KeyturnError` (an unknown provider,
  missing credentials, a provider that refused, a demo step that misbehaved), a file that
  could not be read or written, or an error keyturn did not expect (its type and message,
  and how to see the traceback: set ``KEYTURN_TRACEBACK=1``).
* ``130``: interrupted with Ctrl-C.
* ``141`` (128 + SIGPIPE), with nothing on stderr: whoever read the output went away, as in
  ``keyturn providers | head -1``; a shell reports the same for ``yes | head -1``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, NoReturn

from keyturn import __version__
from keyturn.errors import KeyturnError

from .options import UsageError

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

__all__ = ["ELSEWHERE", "FOLDERS", "GROUP", "UsageError", "build_parser", "main"]

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


#: Exit statuses besides 0, 1 (a failure) and 2 (a usage error).
INTERRUPTED = 130
BROKEN_PIPE = 141

# argparse names the converter of a value it could not convert ("invalid int value: 'x'").
_PYTHON_TYPE = re.compile(r"invalid \S+ value: ")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line like every other keyturn error."""

    def error(self, message: str) -> NoReturn:
        message = _PYTHON_TYPE.sub("invalid value: ", message)
        self.exit(2, f"keyturn: error: {message} (see '{self.prog} --help')\n")

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        # argparse drops the OSError of a failed write (a closed pipe under ``--help``);
        # main() reports it like any other command's.
        if message:
            (file or sys.stdout).write(message)


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
    """Run the command line; returns the exit status (argparse exits by itself on ``--help``
    and on the usage errors it finds)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    for arg in args_list:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            # Bytes the locale could not decode arrive as lone surrogates.
            shown = os.fsencode(arg).decode("ascii", "backslashreplace")
            print(
                f"keyturn: error: the argument '{shown}' is not UTF-8 text (see 'keyturn --help')",
                file=sys.stderr,
            )
            return 2
    dist = _not_installed(args_list)
    if dist is not None:
        wanted = next(arg for arg in args_list if not arg.startswith("-"))
        print(
            f"keyturn: error: 'keyturn {wanted}' comes with the {dist} distribution, which is "
            f"not installed: pip install {dist} (from a clone of keyturn: "
            f"pip install ./{FOLDERS[dist]})",
            file=sys.stderr,
        )
        return 2
    command: str | None = None
    try:
        args = build_parser().parse_args(args_list)
        command = args.command
        status: int = args.handler(args)
        sys.stdout.flush()  # a pipe that broke shows here, not at exit
    except SystemExit:
        # argparse is done (--help, --version, a usage error); its output may still be
        # waiting in the buffer for a reader that is gone.
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            return BROKEN_PIPE
        raise
    except BrokenPipeError:
        # The network is the transports' business (they raise keyturn's own errors): a
        # broken pipe that reaches here is the output's reader gone away.
        _silence_stdout()
        return BROKEN_PIPE
    except KeyboardInterrupt:
        print("keyturn: interrupted", file=sys.stderr)
        return INTERRUPTED
    except UsageError as exc:
        hint = f" (see 'keyturn {command} --help')" if command else ""
        print(f"keyturn: error: {exc}{hint}", file=sys.stderr)
        return 2
    except KeyturnError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(_describe_os_error(exc))
    except Exception as exc:
        if os.environ.get("KEYTURN_TRACEBACK"):
            raise
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return _fail(f"unexpected {what} (set KEYTURN_TRACEBACK=1 to see where)")
    return status


def _fail(message: str) -> int:
    print(f"keyturn: error: {message}", file=sys.stderr)
    return 1


def _describe_os_error(exc: OSError) -> str:
    """``PATH: reason``, as the shell's own tools say it."""
    reason = exc.strerror or str(exc)
    if exc.filename is not None:
        return f"{exc.filename}: {reason}"
    return reason


def _silence_stdout() -> None:
    """Point standard output at the null device, so that the interpreter's last flush does
    not complain about the pipe again (as the ``signal`` module's documentation advises)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a file (a test's capture): nothing will be flushed to a pipe


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
