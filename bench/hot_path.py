"""Hot path: ``jwt`` + ``session`` on a valid token, through the hooks, against the seed.

The baseline is the NextAuth guide's logic written by hand on a dict: return the token while
``now < accessTokenExpires``, then copy ``user``, ``accessToken`` and ``error`` into the
session. keyturn does the same through pluggy (two hook calls), pydantic models and the flow
driver, so the ratio is the price of the framework on every request that needs no refresh.

Run: ``python -m bench.hot_path [--quick]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keyturn
from keyturn.models import Profile

from ._report import Result, parse_args, per_call, print_ratio

NOW = 1_800_000_000


def seed_jwt(token: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """The guide's ``jwt`` callback for a request that is not a sign-in."""
    if now_ms < token["accessTokenExpires"]:
        return token
    raise AssertionError("the benchmark token must stay valid")


def seed_session(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
    """The guide's ``session`` callback."""
    session["user"] = token["user"]
    session["accessToken"] = token["accessToken"]
    session["error"] = token.get("error")
    return session


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Time both and print the ratio; returns ``{"hot_path": ratio}``."""
    number = 200 if parse_args(__doc__, argv).quick else 20_000

    client = keyturn.Keyturn(
        {"google": ("bench-client", "bench-secret-fake")}, clock=lambda: float(NOW)
    )
    tokens = keyturn.TokenSet(
        provider="google",
        access_token="bench-access-token-fake",
        refresh_token="bench-refresh-token-fake",
        expires_at=NOW + 3600,
    )
    user = Profile(id="1", name="Ada Example", email="ada@example.com")
    jwt = client.jwt(tokens=tokens, profile=user)

    def through_keyturn() -> None:
        client.session(client.jwt(jwt))

    seed_token = {
        "accessToken": "bench-access-token-fake",
        "accessTokenExpires": (NOW + 3600) * 1000,
        "refreshToken": "bench-refresh-token-fake",
        "user": {"name": "Ada Example", "email": "ada@example.com"},
    }

    def by_hand() -> None:
        seed_session({}, seed_jwt(seed_token, NOW * 1000))

    baseline = Result("seed logic on a dict (by hand)", per_call(by_hand, number=number))
    subject = Result(
        "keyturn jwt() + session() through the hooks", per_call(through_keyturn, number=number)
    )
    ratio = print_ratio("hot path: jwt + session on a valid token", subject, baseline)
    client.close()
    return {"hot_path": ratio}


if __name__ == "__main__":
    main()
