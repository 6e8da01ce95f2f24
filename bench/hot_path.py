"""Hot path: ``jwt`` + ``session`` on a valid token, through the hooks, against the seed.

The baseline is the NextAuth guide's logic written by hand on a dict: return the token while
``now < accessTokenExpires``, then copy ``user``, ``accessToken`` and ``error`` into the
session. keyturn does the same through its two hooks and pydantic models, so the ratio is the price
of the framework on every request that needs no refresh. A second case adds one app wrapper
on each hook (the usual way to add claims), against the same wrapper logic written by hand
on the dict.

Run: ``python -m bench.hot_path [--quick]``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import keyturn
from keyturn.models import Profile, Session

from ._report import Result, parse_args, per_call_pair, print_ratio

NOW = 1_800_000_000
SEED_TOKEN = {
    "accessToken": "bench-access-token-fake",
    "accessTokenExpires": (NOW + 3600) * 1000,
    "refreshToken": "bench-refresh-token-fake",
    "user": {"name": "Ada Example", "email": "ada@example.com"},
    "login": "1",
}


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


class AppWrappers:
    """An app's wrappers of both callbacks, as the hookspecs' docs show them.

    ``keyturn_jwt`` adds the user's login to ``claims`` on sign-in and passes every other
    result through; ``keyturn_session`` checks the claim is there and passes the session
    through. On a read neither changes anything: what is measured is the wrapping.
    """

    @keyturn.hookimpl(wrapper=True)
    def keyturn_jwt(self, trigger: str, profile: Profile | None) -> Any:
        token = yield
        if trigger == "signIn" and profile is not None:
            token = token.model_copy(update={"claims": {**token.claims, "login": profile.id}})
        return token

    @keyturn.hookimpl(wrapper=True)
    def keyturn_session(self, token: Any) -> Any:
        session = yield
        if "login" not in token.claims:
            raise AssertionError("the wrapper's claim is missing")
        return session


def app_jwt(token: dict[str, Any], trigger: str, profile: dict[str, Any] | None) -> Any:
    """The same wrapper logic, by hand on the dict."""
    if trigger == "signIn" and profile is not None:
        token = {**token, "login": profile["id"]}
    return token


def app_session(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
    if "login" not in token:
        raise AssertionError("the wrapper's claim is missing")
    return session


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Time both cases against their baselines; returns ``{"hot_path": ratio, ...}``."""
    number = 200 if parse_args(__doc__, argv).quick else 20_000
    results: dict[str, float] = {}
    for wrapped in (False, True):
        pm = keyturn.get_plugin_manager(plugins=[AppWrappers()] if wrapped else ())
        client = keyturn.Keyturn(
            {"google": ("bench-client", "bench-secret-fake")},
            clock=lambda: float(NOW),
            plugin_manager=pm,
        )
        tokens = keyturn.TokenSet(
            provider="google",
            access_token="bench-access-token-fake",
            refresh_token="bench-refresh-token-fake",
            expires_at=NOW + 3600,
        )
        user = Profile(id="1", name="Ada Example", email="ada@example.com")
        jwt = client.jwt(tokens=tokens, profile=user)
        if wrapped and jwt.claims.get("login") != "1":
            raise AssertionError("the app's jwt wrapper did not run")

        def through_keyturn(client: keyturn.Keyturn = client, jwt: keyturn.JWT = jwt) -> None:
            client.session(client.jwt(jwt))

        def by_hand() -> None:
            seed_session({}, seed_jwt(SEED_TOKEN, NOW * 1000))

        def by_hand_wrapped() -> None:
            token = app_jwt(seed_jwt(SEED_TOKEN, NOW * 1000), "read", None)
            app_session(seed_session({}, token), token)

        base, subject = per_call_pair(
            by_hand_wrapped if wrapped else by_hand,
            through_keyturn,
            number=number,
            rounds=9,
            timer=time.thread_time,
        )
        key = "hot_path.wrapped" if wrapped else "hot_path"
        results[key] = print_ratio(
            "hot path: jwt + session on a valid token"
            + (", one app wrapper on each hook" if wrapped else ""),
            Result("keyturn jwt() + session()" + (" + wrappers" if wrapped else ""), subject),
            Result("seed logic on a dict" + (" + the wrappers' logic" if wrapped else ""), base),
            key=key,
            target=10.0 if wrapped else 4.0,
        )
        if not wrapped:
            # The floor: the one object keyturn must build per request, a Session, made
            # from the JWT without validation, against the same baseline.
            def session_alone(jwt: keyturn.JWT = jwt) -> None:
                Session.from_jwt(jwt)

            floor, _ = per_call_pair(
                session_alone,
                by_hand,
                number=number,
                rounds=9,
                timer=time.thread_time,
            )
            results["hot_path.floor"] = floor / base
            print(
                f"  {'of which Session.from_jwt alone (the floor)':<44} "
                f"{floor * 1e6:>10.1f} us   {floor / base:.2f}x"
            )
        client.close()
    return results


if __name__ == "__main__":
    main()
