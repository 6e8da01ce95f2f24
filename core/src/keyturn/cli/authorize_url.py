"""``keyturn authorize-url PROVIDER --redirect-uri URL``: an authorize URL with its secrets.

Prints the URL, its state, PKCE verifier and nonce (keep the verifier: the code exchange
needs it).
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import urlsplit

from keyturn.client import Keyturn
from keyturn.errors import ConfigurationError, KeyturnError
from keyturn.models import REVEAL

from .options import UsageError, add_authorize_options, authorize_params, non_empty

ORDER = 20


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "authorize-url",
        help="print an authorize URL, its state and its PKCE verifier",
        description="Credentials come from KEYTURN_<PROVIDER>_CLIENT_ID, or --client-id.",
    )
    parser.add_argument("provider", help="provider id, e.g. google")
    parser.add_argument("--redirect-uri", required=True, help="your registered callback URL")
    parser.add_argument(
        "--client-id", type=non_empty, help="overrides KEYTURN_<PROVIDER>_CLIENT_ID"
    )
    add_authorize_options(
        parser,
        param_help="a provider-specific parameter, e.g. login_hint=user@example.com (repeat)",
    )
    parser.add_argument("--no-pkce", action="store_true", help="do not use PKCE")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def _absolute_http_url(url: str) -> bool:
    try:
        target = urlsplit(url)
        _ = target.port  # raises for a port that is not a number from 0 to 65535
    except ValueError:
        return False
    return target.scheme in ("https", "http") and bool(target.hostname) and "#" not in url


def run(args: argparse.Namespace) -> int:
    params = authorize_params(
        args.param, options={"redirect_uri": "--redirect-uri", "client_id": "--client-id"}
    )
    if not _absolute_http_url(args.redirect_uri):
        raise UsageError(
            "--redirect-uri must be an absolute http(s) URL without a fragment, "
            f"got {args.redirect_uri!r}"
        )
    credentials = {args.provider: (args.client_id, None)} if args.client_id else None
    with Keyturn(credentials) as client:
        spec = client.provider(args.provider)
        try:
            client.credentials(spec)
        except ConfigurationError:
            raise KeyturnError(
                f"no client id for {spec.id}: pass --client-id or set {spec.env_prefix}CLIENT_ID"
            ) from None
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
