"""The ``keyturn`` command.

``keyturn providers``
    List the installed provider plugins: id, name, distribution, version, endpoints.
``keyturn authorize-url PROVIDER --redirect-uri URL``
    Print an authorize URL with its state, PKCE verifier and nonce (keep the verifier: the
    code exchange needs it).

Errors print one line on stderr and exit non-zero; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from . import __version__
from .client import Keyturn
from .errors import KeyturnError
from .models import REVEAL

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line like every other keyturn error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"keyturn: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="keyturn",
        description="OAuth 2.0 sign-in and token refresh, with provider plugins.",
    )
    parser.add_argument("--version", action="version", version=f"keyturn {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    providers = commands.add_parser("providers", help="list installed provider plugins")
    providers.add_argument("--json", action="store_true", help="print JSON")

    authorize = commands.add_parser(
        "authorize-url",
        help="print an authorize URL, its state and its PKCE verifier",
        description="Credentials come from KEYTURN_<PROVIDER>_CLIENT_ID, or --client-id.",
    )
    authorize.add_argument("provider", help="provider id, e.g. google")
    authorize.add_argument("--redirect-uri", required=True, help="your registered callback URL")
    authorize.add_argument("--client-id", help="overrides KEYTURN_<PROVIDER>_CLIENT_ID")
    authorize.add_argument(
        "--scope", action="append", metavar="SCOPE", help="a scope (repeat); default: provider's"
    )
    authorize.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a provider-specific parameter, e.g. login_hint=user@example.com (repeat)",
    )
    authorize.add_argument("--no-pkce", action="store_true", help="do not use PKCE")
    authorize.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _providers(args: argparse.Namespace) -> int:
    client = Keyturn()
    rows: list[dict[str, Any]] = []
    for pid, reg in sorted(client.registered_providers.items()):
        spec = reg.spec
        rows.append(
            {
                "id": pid,
                "name": spec.name,
                "plugin": reg.plugin,
                "distribution": reg.distribution,
                "version": reg.version,
                "authorization_endpoint": spec.authorization_endpoint,
                "token_endpoint": spec.token_endpoint,
                "userinfo_endpoint": spec.userinfo_endpoint,
                "revocation_endpoint": spec.revocation_endpoint,
                "rotates_refresh_tokens": spec.rotates_refresh_tokens,
                "pkce": spec.pkce_method,
            }
        )
    client.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no provider plugins installed (pip install keyturn-google)")
        return 0
    for row in rows:
        origin = f"{row['distribution']} {row['version']}" if row["distribution"] else row["plugin"]
        print(f"{row['id']}: {row['name']} ({origin})")
        for key in (
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "revocation_endpoint",
        ):
            if row[key]:
                print(f"  {key.removesuffix('_endpoint'):<13} {row[key]}")
        rotation = (
            "rotates refresh tokens" if row["rotates_refresh_tokens"] else "keeps refresh tokens"
        )
        print(f"  {'behaviour':<13} PKCE {row['pkce'] or 'off'}, {rotation}")
    return 0


def _authorize_url(args: argparse.Namespace) -> int:
    params: dict[str, str] = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise KeyturnError(f"--param takes NAME=VALUE, got {item!r}")
        params[name] = value
    credentials = {args.provider: (args.client_id, None)} if args.client_id else None
    with Keyturn(credentials) as client:
        request = client.authorize_url(
            args.provider, args.redirect_uri, scopes=args.scope, pkce=not args.no_pkce, **params
        )
    data = request.model_dump(mode="json", context=REVEAL)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(data["url"])
    print(f"state:         {data['state']}")
    if data["code_verifier"]:
        print(f"code_verifier: {data['code_verifier']}")
    if data["nonce"]:
        print(f"nonce:         {data['nonce']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    handlers = {"providers": _providers, "authorize-url": _authorize_url}
    try:
        return handlers[args.command](args)
    except KeyturnError as exc:
        print(f"keyturn: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
