"""Web session read: ``GET /auth/session`` on a valid session, against a signed-cookie session.

keyturn reads the session from a JWE cookie (``dir`` + ``A256GCM``), validates it into
models, runs ``jwt`` and ``session`` through the hooks and answers JSON. The baseline is
what Flask and Starlette's ``SessionMiddleware`` do for their own sessions: a cookie signed
(not encrypted) with itsdangerous, decoded and loaded from JSON, then dumped as the answer.
The same user and tokens are in both. The cookie sizes are printed too: encryption and the
token fields cost bytes on every request.

Run: ``python -m bench.web_session [--quick]``.
"""

from __future__ import annotations

import json
import random
import string
import time
from collections.abc import Sequence

from itsdangerous import URLSafeTimedSerializer

import keyturn
from keyturn.effects import run
from keyturn.models import Profile
from keyturn.web import WebAuth, WebRequest

from ._report import Result, parse_args, per_call_pair, print_ratio

NOW = 1_800_000_000
SECRET = "bench-secret-" + "x" * 32
URL = "http://127.0.0.1/auth/session"
# Token-like text that does not compress (itsdangerous compresses its payload when it can).
_RANDOM = random.Random(0)
ACCESS = "bench-fake-" + "".join(_RANDOM.choices(string.ascii_letters + string.digits, k=160))
REFRESH = "bench-fake-" + "".join(_RANDOM.choices(string.ascii_letters + string.digits, k=90))


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Time both reads and print the ratio; returns the ratio and the two cookie sizes."""
    number = 50 if parse_args(__doc__, argv).quick else 2_000

    client = keyturn.Keyturn(
        {"google": ("bench-client", "bench-secret-fake")}, clock=lambda: float(NOW)
    )
    auth = WebAuth(client, secret=SECRET)
    tokens = keyturn.TokenSet(
        provider="google",
        access_token=ACCESS,
        refresh_token=REFRESH,
        expires_at=NOW + 3600,
    )
    user = Profile(id="1", name="Ada Example", email="ada@example.com")
    jwt = client.jwt(tokens=tokens, profile=user)
    blank = WebRequest("GET", URL)
    strategy = auth.settings.strategy
    set_cookie = run(strategy.create(blank, auth.settings.policy(blank), jwt), client.http_client)
    name, value = set_cookie[0].split(";", 1)[0].split("=", 1)
    request = WebRequest("GET", URL, headers={"accept": "application/json"}, cookies={name: value})

    def through_keyturn() -> None:
        response = auth.handle(request)
        assert response.status == 200

    signer = URLSafeTimedSerializer(SECRET, salt="cookie-session")
    signed = signer.dumps(
        {
            "user": user.model_dump(mode="json"),
            "accessToken": tokens.access_token.get_secret_value(),
            "refreshToken": REFRESH,
            "accessTokenExpires": (NOW + 3600) * 1000,
        }
    )

    def signed_cookie() -> None:
        data = signer.loads(signed)
        json.dumps({"user": data["user"], "accessTokenExpires": data["accessTokenExpires"]})

    base, subject = per_call_pair(
        signed_cookie, through_keyturn, number=number, rounds=9, timer=time.thread_time
    )
    ratio = print_ratio(
        "web session read: GET /auth/session on a valid session",
        Result("keyturn WebAuth.handle, JWE cookie", subject),
        Result("itsdangerous signed cookie + JSON (Flask's way)", base),
        key="web_session",
        target=2.0,
    )
    print(f"  cookie bytes: signed {len(signed)}, keyturn JWE {len(value)}")
    client.close()
    return {
        "web_session": ratio,
        "web_session.cookie_bytes": float(len(value)),
        "web_session.signed_cookie_bytes": float(len(signed)),
    }


if __name__ == "__main__":
    main()
