"""``keyturn providers``: the installed provider plugins and what each one overrides."""

from __future__ import annotations

import argparse
import json
from typing import Any

from keyturn.client import Keyturn

ENDPOINTS = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "revocation_endpoint")

ORDER = 10


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("providers", help="list installed provider plugins")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def rows() -> list[dict[str, Any]]:
    """One JSON-ready row per installed provider."""
    with Keyturn() as client:
        registered = client.registered_providers
    result: list[dict[str, Any]] = []
    for pid, reg in sorted(registered.items()):
        spec = reg.spec
        row: dict[str, Any] = {
            "id": pid,
            "name": spec.name,
            "plugin": reg.plugin,
            "distribution": reg.distribution,
            "version": reg.version,
        }
        row.update({key: getattr(spec, key) for key in ENDPOINTS})
        row["rotates_refresh_tokens"] = spec.rotates_refresh_tokens
        row["pkce"] = spec.pkce_method
        row["hooks"] = list(reg.hooks)
        result.append(row)
    return result


def run(args: argparse.Namespace) -> int:
    found = rows()
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print("no provider plugins installed (pip install keyturn-google)")
        return 0
    for row in found:
        origin = f"{row['distribution']} {row['version']}" if row["distribution"] else row["plugin"]
        print(f"{row['id']}: {row['name']} ({origin})")
        for key in ENDPOINTS:
            if row[key]:
                print(f"  {key.removesuffix('_endpoint'):<13} {row[key]}")
        rotation = (
            "rotates refresh tokens" if row["rotates_refresh_tokens"] else "keeps refresh tokens"
        )
        print(f"  {'behaviour':<13} PKCE {row['pkce'] or 'off'}, {rotation}")
        overrides = ", ".join(row["hooks"]) or "none (keyturn's RFC 6749 defaults)"
        print(f"  {'overrides':<13} {overrides}")
    return 0
