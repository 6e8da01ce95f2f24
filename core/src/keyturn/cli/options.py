"""What more than one ``keyturn`` command shares: options, value checks and usage errors.

Commands of other distributions use them too (``keyturn record`` in pytest-keyturn takes the
same ``--scope`` and ``--param`` as ``keyturn authorize-url``; ``keyturn emulator`` checks its
numbers with the converters here).

Every converter is meant for argparse's ``type=``: it returns the value, or raises
:class:`argparse.ArgumentTypeError` with a message in command-line terms ("must be a port
number from 0 to 65535, got '99999'"), which argparse prints after the option's name. A
converter that raised ``ValueError`` instead would have argparse name the Python function
("invalid _seconds value").
"""

from __future__ import annotations

import argparse
import inspect
import math
from collections.abc import Callable, Iterable, Mapping

from keyturn.errors import KeyturnError

__all__ = [
    "UsageError",
    "add_authorize_options",
    "authorize_params",
    "fraction",
    "non_empty",
    "port_number",
    "seconds",
    "whole_number",
    "whole_number_from",
    "whole_seconds",
]


class UsageError(KeyturnError):
    """The command line is wrong in itself: a value of the wrong form, out of range, or
    contradicting another. The command did nothing; ``keyturn`` exits with status 2."""


def _refuse(expected: str, text: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"must be {expected}, got {text!r}")


def whole_number(text: str) -> int:
    """An integer, such as a seed."""
    try:
        return int(text)
    except ValueError:
        raise _refuse("a whole number", text) from None


def whole_number_from(minimum: int, maximum: int) -> Callable[[str], int]:
    """A converter for a whole number from ``minimum`` to ``maximum``, both included."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if not minimum <= value <= maximum:
            raise _refuse(f"a whole number from {minimum} to {maximum}", text)
        return value

    return convert


def port_number(text: str) -> int:
    """A TCP port, 0 to 65535 (0: let the system choose)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise _refuse("a port number from 0 to 65535", text)
    return value


def fraction(text: str) -> float:
    """A number from 0 to 1, such as a rate of faults."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise _refuse("a number from 0 to 1", text)
    return value


def seconds(*, positive: bool = False) -> Callable[[str], float]:
    """A converter for a finite number of seconds: zero or more, or more than zero."""
    expected = "a number of seconds, " + ("more than 0" if positive else "0 or more")

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        low_enough = value <= 0.0 if positive else value < 0.0
        if low_enough or not math.isfinite(value):
            raise _refuse(expected, text)
        return value

    return convert


def whole_seconds(text: str) -> int | None:
    """A lifetime: a whole number of seconds, 0 or more, or ``never`` (``None``)."""
    if text.lower() in ("none", "never"):
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise _refuse("a whole number of seconds, 0 or more, or 'never'", text)
    return value


def non_empty(text: str) -> str:
    """Any text but the empty string."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def add_authorize_options(parser: argparse.ArgumentParser, *, param_help: str) -> None:
    """Add ``--scope SCOPE`` and ``--param NAME=VALUE``, both repeatable, for the authorize URL.

    ``--scope`` collects into ``args.scope`` (``None`` when absent: the provider's default
    scopes); ``--param`` into ``args.param`` (a list, empty when absent), which
    :func:`authorize_params` turns into keyword arguments.

    :param parser: the command's parser.
    :param param_help: the help line of ``--param``.
    """
    parser.add_argument(
        "--scope",
        action="append",
        type=non_empty,
        metavar="SCOPE",
        help="a scope (repeat); default: provider's",
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help=param_help
    )


#: Authorize parameters keyturn sets (RFC 6749, RFC 7636, OpenID Connect).
_SET_BY_KEYTURN = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "nonce",
    }
)


def _authorize_url_arguments() -> frozenset[str]:
    # ``Keyturn.authorize_url`` takes extra parameters as keywords: a name it also has as an
    # argument of its own (``provider``, ``pkce``...) would reach that argument instead.
    from keyturn.client import BaseKeyturn

    signature = inspect.signature(BaseKeyturn.authorize_url)
    return frozenset(
        name
        for name, parameter in signature.parameters.items()
        if parameter.kind is not inspect.Parameter.VAR_KEYWORD and name != "self"
    )


def authorize_params(
    items: Iterable[str], *, options: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The ``--param`` values as a mapping; a later value for a name replaces an earlier one.

    :param items: the values given, each ``NAME=VALUE`` (the value may be empty or hold ``=``).
    :param options: authorize parameters the command sets through an option of its own,
        with that option (``{"redirect_uri": "--redirect-uri"}``); ``scope`` is always
        ``--scope``.
    :return: name to value.
    :raises UsageError: for an item without ``=`` or with an empty name, or for a parameter
        keyturn sets itself (``state``, ``scope``...), naming the option to use instead
        where there is one.
    """
    instead = {"scope": "--scope", **(options or {})}
    params: dict[str, str] = {}
    taken: frozenset[str] | None = None
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--param takes NAME=VALUE, got {item!r}")
        if name in instead:
            raise UsageError(f"--param {name}: use {instead[name]}")
        if taken is None:
            taken = _SET_BY_KEYTURN | _authorize_url_arguments()
        if name in taken:
            raise UsageError(f"--param {name}: keyturn sets {name} itself")
        params[name] = value
    return params
