"""``keyturn record PROVIDER SCENARIO``: record a scrubbed cassette against the real provider.

The work is done by :func:`pytest_keyturn.recording.record`; this module reads the command line,
the environment and stdin. Tokens are never taken as argument values (they would show in
``ps`` and in shell history): ``--refresh-token -`` and ``--access-token -`` read them from
stdin, one line each in that order, or they come from ``KEYTURN_RECORD_REFRESH_TOKEN`` and
``KEYTURN_RECORD_ACCESS_TOKEN``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from keyturn.cli.options import (
    UsageError,
    add_authorize_options,
    authorize_params,
    port_number,
    seconds,
)

ORDER = 40

_EPILOG = """\
scenarios (the name decides what is done):
  exchange_*     sign in through the browser and exchange the code
                 (a name containing "userinfo" also fetches the profile)
  refresh_*      refresh a token (--refresh-token -)
  userinfo*      fetch the profile (--access-token -)
  revoke*        revoke a token (--access-token -, optionally --refresh-token -)
  discovery      fetch the OpenID Connect discovery document (no credentials needed)

With a jwks_uri, the key set is recorded with each exchange and refresh, and an ID token
that comes back is signed again with a key made for the cassette (added to the key set).

Credentials come from KEYTURN_<PROVIDER>_CLIENT_ID and KEYTURN_<PROVIDER>_CLIENT_SECRET.
Example:
  keyturn record github exchange_code --open --save-tokens /tmp/github-tokens.json
  jq -r .refresh_token /tmp/github-tokens.json | keyturn record github refresh_rotated \\
      --refresh-token -
"""


def _from_stdin(value: str) -> str:
    # The message must not repeat the value: it may be the token itself.
    if value != "-":
        raise argparse.ArgumentTypeError(
            "takes only '-' (read the token from stdin); or set the environment variable"
        )
    return value


# The same values as in pytest_keyturn.recording, which is imported only when the command runs.
DEFAULT_PORT = 8765
REFRESH_TOKEN_ENV = "KEYTURN_RECORD_REFRESH_TOKEN"
ACCESS_TOKEN_ENV = "KEYTURN_RECORD_ACCESS_TOKEN"


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "record",
        help="record a scrubbed cassette against the real provider",
        description="Run one scenario against the provider with real credentials and write "
        "cassettes/<provider>/<scenario>.yaml, scrubbed of tokens, secrets and personal data.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("provider", help="provider id, e.g. github")
    parser.add_argument("scenario", help="scenario name, e.g. exchange_code or refresh_ok")
    parser.add_argument(
        "--cassette-dir", default="cassettes", metavar="DIR", help="default: ./cassettes"
    )
    parser.add_argument(
        "--flat",
        action="store_true",
        help="write DIR/<scenario>.yaml, without the provider's folder (a plugin's cassettes/)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing cassette")
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"loopback port of the redirect URI http://127.0.0.1:PORT/callback "
        f"(default {DEFAULT_PORT})",
    )
    parser.add_argument("--open", action="store_true", help="open the authorize URL in a browser")
    parser.add_argument(
        "--timeout",
        type=seconds(positive=True),
        default=300.0,
        help="seconds to wait for the redirect (300)",
    )
    add_authorize_options(parser, param_help="a provider-specific authorize parameter (repeat)")
    parser.add_argument(
        "--refresh-token",
        type=_from_stdin,
        metavar="-",
        help=f"read the refresh token from stdin (or set {REFRESH_TOKEN_ENV})",
    )
    parser.add_argument(
        "--access-token",
        type=_from_stdin,
        metavar="-",
        help=f"read the access token from stdin (or set {ACCESS_TOKEN_ENV})",
    )
    parser.add_argument(
        "--save-tokens",
        metavar="PATH",
        help="write the tokens received to PATH (mode 0600) for recording later scenarios",
    )
    parser.set_defaults(handler=run)


def read_tokens(
    args: argparse.Namespace, environ: Any, stdin: TextIO
) -> tuple[str | None, str | None]:
    """(access token, refresh token) from stdin (``-``) or the environment.

    With both options set to ``-``, stdin holds the access token on its first line and the
    refresh token on its second.
    """
    from keyturn.errors import KeyturnError

    values: list[str | None] = []
    for option, env in (
        (args.access_token, ACCESS_TOKEN_ENV),
        (args.refresh_token, REFRESH_TOKEN_ENV),
    ):
        if option == "-":
            try:
                line = stdin.readline().strip()
            except UnicodeDecodeError:
                line = "\x00"  # refused below, like any other line that is not a token
            if not line:
                raise KeyturnError("expected a token on stdin, found none")
            if not all("!" <= char <= "~" for char in line):
                # Never shown: it may be a token all the same.
                raise KeyturnError(
                    "the token read from stdin is not printable ASCII (as OAuth tokens are)"
                )
            values.append(line)
        else:
            values.append(environ.get(env) or None)
    return values[0], values[1]


def run(args: argparse.Namespace) -> int:
    import os
    import webbrowser

    from keyturn.client import Keyturn
    from pytest_keyturn.recording import RecordingError, Scenario, record, save_tokens

    try:
        Scenario.parse(args.scenario)
    except RecordingError as exc:
        raise UsageError(str(exc)) from None
    params = authorize_params(args.param, options={"redirect_uri": "--port"})
    access_token, refresh_token = read_tokens(args, os.environ, sys.stdin)
    with Keyturn() as client:
        result = record(
            client,
            args.provider,
            args.scenario,
            cassette_dir=args.cassette_dir,
            flat=args.flat,
            force=args.force,
            port=args.port,
            browser=webbrowser.open if args.open else None,
            access_token=access_token,
            refresh_token=refresh_token,
            scopes=args.scope,
            params=params,
            timeout=args.timeout,
        )
        name = client.provider(args.provider).name
    plural = "" if result.interactions == 1 else "s"
    print(f"wrote {result.path} ({result.interactions} interaction{plural}): {result.outcome}")
    if args.save_tokens and result.tokens is not None:
        save_tokens(result.tokens, args.save_tokens)
        print(f"saved the tokens to {args.save_tokens} (keep it private; delete it when done)")
    readme = (
        result.path.parent / "README.md" if args.flat else result.path.parent.parent / "README.md"
    )
    entry = result.path.name if args.flat else f"{args.provider}/{result.path.name}"
    print(
        f"next: read it through, then add a row for `{entry}` to {readme} "
        f'marked "recorded against {name}" with the date'
    )
    return 0
