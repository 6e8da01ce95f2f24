"""``keyturn providers``: the installed provider plugins and what each one overrides.

Each provider is shown with its issuer and its endpoints. A spec that reads its endpoints
from a discovery document (``discovery_url``) leaves them out, and the listing says where
they come from instead; ``--discover`` fetches each such document (and key set) and shows
the endpoints it gives. A provider whose document cannot be read or used is reported on one
line of stderr, the others are still listed, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from keyturn.client import Keyturn
from keyturn.errors import KeyturnError

#: The endpoints of a spec, in the order they are shown.
ENDPOINTS = (
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "revocation_endpoint",
    "end_session_endpoint",
)
#: Shown after the endpoints, where a spec has them.
KEYS = ("jwks_uri",)

ORDER = 10


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("providers", help="list installed provider plugins")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--discover",
        action="store_true",
        help="fetch the discovery documents and show the endpoints they give",
    )
    parser.set_defaults(handler=run)


def _one_line(error: KeyturnError, provider: str) -> str:
    message = " ".join(str(error).split())
    return message if message.startswith(provider) else f"{provider}: {message}"


def rows(*, discover: bool = False) -> list[dict[str, Any]]:
    """One JSON-ready row per installed provider.

    :param discover: read each discovery document, and show the spec it resolves to; a
        provider whose document fails has ``error`` (one line) and its spec as declared.
    """
    result: list[dict[str, Any]] = []
    with Keyturn() as client:
        for pid, reg in sorted(client.registered_providers.items()):
            spec = reg.spec
            error: str | None = None
            discovered = False
            if discover and spec.discovery_url is not None:
                try:
                    spec = client.discover(pid)
                    discovered = True
                except KeyturnError as exc:
                    error = _one_line(exc, pid)
            row: dict[str, Any] = {
                "id": pid,
                "name": spec.name,
                "plugin": reg.plugin,
                "distribution": reg.distribution,
                "version": reg.version,
                "issuer": spec.issuer,
                "discovery_url": spec.discovery_url,
            }
            row.update({key: getattr(spec, key) or None for key in ENDPOINTS + KEYS})
            row["id_token_signing_algs"] = sorted(spec.id_token_signing_algs)
            # Unknown (None) for a spec that leaves it to its discovery document, which cannot
            # say: keyturn keeps or replaces the refresh token as each answer says.
            declared = (
                spec.discovery_url is None or "rotates_refresh_tokens" in spec.model_fields_set
            )
            row["rotates_refresh_tokens"] = spec.rotates_refresh_tokens if declared else None
            row["rotation"] = spec.rotation if declared else None
            row["refresh_reuse_grace"] = spec.refresh_reuse_grace if declared else None
            row["settings"] = [
                {
                    "name": setting.name,
                    "kind": setting.kind,
                    "default": setting.default,
                    "variable": spec.env_prefix + setting.name.upper(),
                }
                for setting in spec.settings
            ]
            row["pkce"] = spec.pkce_method
            row["hooks"] = list(reg.hooks)
            if discover and spec.discovery_url is not None:
                row["discovered"] = discovered
            if error is not None:
                row["error"] = error
            result.append(row)
    return result


#: How each rotation kind reads in the listing.
_ROTATION_TEXT = {
    "none": "keeps refresh tokens",
    "rotate": "rotates refresh tokens (the old one dies)",
    "keep_old": "rotates refresh tokens (the old one stays valid)",
    "detect_reuse": "rotates refresh tokens with reuse detection",
}


def _rotation(row: dict[str, Any]) -> str:
    """The refresh-token behaviour of a listed provider, in words."""
    kind = row["rotation"]
    if kind is None:
        return "refresh tokens kept or rotated, as each answer says"
    text = _ROTATION_TEXT[kind]
    if kind == "detect_reuse" and row["refresh_reuse_grace"]:
        text += f" after a {row['refresh_reuse_grace']:g} s grace"
    if any(setting["name"] == "rotation" for setting in row["settings"]):
        text += ", unless the deployment says otherwise"
    return text


def _show(key: str) -> str:
    return key.removesuffix("_endpoint")


def run(args: argparse.Namespace) -> int:
    found = rows(discover=True) if args.discover else rows()
    failed = [row["error"] for row in found if "error" in row]
    if args.json:
        print(json.dumps(found, indent=2))
    elif not found:
        print("no provider plugins installed (pip install keyturn-google)")
    for row in [] if args.json else found:
        origin = f"{row['distribution']} {row['version']}" if row["distribution"] else row["plugin"]
        print(f"{row['id']}: {row['name']} ({origin})")
        if row["issuer"]:
            print(f"  {'issuer':<13} {row['issuer']}")
        if row["discovery_url"] and not row.get("discovered"):
            explicit = [key for key in ENDPOINTS if row[key]]
            rest = "the rest " if explicit else ""
            for key in explicit:
                print(f"  {_show(key):<13} {row[key]}")
            print(f"  {'endpoints':<13} {rest}from {row['discovery_url']}")
        else:
            if row["discovery_url"]:
                print(f"  {'discovery':<13} {row['discovery_url']}")
            for key in ENDPOINTS + KEYS:
                if row[key]:
                    print(f"  {_show(key):<13} {row[key]}")
            if row.get("discovered"):
                print(f"  {'signatures':<13} {', '.join(row['id_token_signing_algs'])}")
        print(f"  {'behaviour':<13} PKCE {row['pkce'] or 'off'}, {_rotation(row)}")
        for setting in row["settings"]:
            given = "required" if setting["default"] is None else f"default {setting['default']!r}"
            print(f"  {'setting':<13} {setting['name']} ({setting['variable']}, {given})")
        overrides = ", ".join(row["hooks"]) or "none (keyturn's RFC 6749 defaults)"
        print(f"  {'overrides':<13} {overrides}")
    for message in failed:
        print(f"keyturn: error: {message}", file=sys.stderr)
    return 1 if failed else 0
