"""Options that more than one ``keyturn`` command takes, defined and read in one place.

Commands of other distributions use them too (``keyturn record`` in pytest-keyturn takes the
same ``--scope`` and ``--param`` as ``keyturn authorize-url``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from keyturn.errors import KeyturnError

__all__ = ["add_authorize_options", "authorize_params"]


def add_authorize_options(parser: argparse.ArgumentParser, *, param_help: str) -> None:
    """Add ``--scope SCOPE`` and ``--param NAME=VALUE``, both repeatable, for the authorize URL.

    ``--scope`` collects into ``args.scope`` (``None`` when absent: the provider's default
    scopes); ``--param`` into ``args.param`` (a list, empty when absent), which
    :func:`authorize_params` turns into keyword arguments.

    :param parser: the command's parser.
    :param param_help: the help line of ``--param``.
    """
    parser.add_argument(
        "--scope", action="append", metavar="SCOPE", help="a scope (repeat); default: provider's"
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help=param_help
    )


def authorize_params(items: Iterable[str]) -> dict[str, str]:
    """The ``--param`` values as a mapping; a later value for a name replaces an earlier one.

    :param items: the values given, each ``NAME=VALUE`` (the value may be empty or hold ``=``).
    :return: name to value.
    :raises KeyturnError: for an item without ``=`` or with an empty name.
    """
    params: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise KeyturnError(f"--param takes NAME=VALUE, got {item!r}")
        params[name] = value
    return params
