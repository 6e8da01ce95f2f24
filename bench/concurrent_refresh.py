"""Concurrent refresh: N callers hold the same expired token; how many refreshes reach the provider?

The provider is the emulator's ``strict`` profile: refresh tokens rotate, and presenting an
already-rotated one revokes the whole token family (reuse detection, as Auth0 and Okta do).
Every case starts from a fresh sign-in whose access token is past its expiry, lets N
callers ask for a valid token at the same moment, and reads the emulator's counters:

* ``keyturn``: one shared ``AsyncKeyturn``; every caller runs ``jwt()``, which refreshes
  through single-flight. Expected: one request, no revocation, N callers served.
* ``naive``: the NextAuth guide's ``jwt`` callback and ``refreshAccessToken`` written with
  httpx: every caller that sees an expired token refreshes it. N requests; the second one
  trips reuse detection and the family dies, the one "winner" included.
* ``authlib_shared``: one Authlib ``AsyncOAuth2Client`` shared by every caller, holding the
  token and the token endpoint; each caller runs ``ensure_active_token``, as a request made
  through the client does. Authlib guards this with a lock per client object.
* ``authlib_per_request``: one ``AsyncOAuth2Client`` per caller, built from the token the
  caller holds. That is what Authlib's web integrations do (``oauth.<name>.get(url,
  token=...)`` builds a client for each call), so the lock never spans two requests.

Columns: ``requests`` token requests that reached the emulator; ``refreshed`` the ones it
honoured; ``revoked`` token families killed by reuse detection; ``ok`` callers that came
back with a new access token; ``alive`` whether that token still works afterwards (one
userinfo request); ``time`` wall time from the first call to the last answer. Ratios are
against keyturn. The emulator serves from a thread of this process, so the times include
its work too.

A last run repeats the cases while the provider is down (every token request answered 503,
the emulator's ``fault_rate=1``): a failure is transient, so the question is how many
requests the callers send at a provider that is already struggling.

Connection pools: every case gets a pool of ``max(100, N)`` connections (``httpx.Limits``),
so with N = 1000 the naive and Authlib callers are not queued behind httpx's default of 100.
The per-request Authlib clients share one TLS context built in advance (see
:func:`authlib_client`), so their time is spent on the refresh, not on loading certificates.

Run: ``python -m bench.concurrent_refresh [--quick]``.
"""

from __future__ import annotations

import asyncio
import ssl
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2
from authlib.integrations.httpx_client import (
    AsyncOAuth2Client,
)

import keyturn
from keyturn_emulator import Emulator

from ._emulated import access_token_works, emulated_spec, sign_in
from ._report import parse_args

PROFILE = "strict"
FULL_CALLERS = (10, 100, 1000)
QUICK_CALLERS = (10, 20)
#: Callers in the outage run (the provider answers every token request 503).
FULL_OUTAGE = 100
QUICK_OUTAGE = 10
TIMEOUT = 60.0
#: The cases, keyturn first: the ratios are taken against it.
CASES = ("keyturn", "naive", "authlib_shared", "authlib_per_request")
LABELS = {
    "keyturn": "keyturn AsyncKeyturn.jwt (shared client)",
    "naive": "naive loop (NextAuth guide, httpx)",
    "authlib_shared": "Authlib AsyncOAuth2Client (shared)",
    "authlib_per_request": "Authlib AsyncOAuth2Client (per request)",
}

#: What every caller ends with: its new access token, or ``None`` when it got none.
Outcomes = list[str | None]


@dataclass(frozen=True)
class Provider:
    """The emulated provider and the app's credentials there."""

    emu: Emulator
    spec: keyturn.ProviderSpec
    client_id: str
    client_secret: str = field(repr=False)

    @property
    def token_endpoint(self) -> str:
        return self.spec.token_endpoint


@dataclass(frozen=True)
class Run:
    """One case at one N: what the emulator counted and what the callers got."""

    case: str
    callers: int
    requests: int
    refreshed: int
    revoked: int
    ok: int
    alive: bool
    seconds: float

    def counts(self) -> tuple[int, int, int, int, bool]:
        return (self.requests, self.refreshed, self.revoked, self.ok, self.alive)


def pool(callers: int) -> int:
    """Connections each case may open at once."""
    return max(100, callers)


async def timed(callers: int, one: Callable[[], Awaitable[str | None]]) -> tuple[Outcomes, float]:
    """Start ``callers`` calls of ``one`` at once; their outcomes and the wall time."""
    began = time.perf_counter()
    outcomes = await asyncio.gather(*(one() for _ in range(callers)))
    return list(outcomes), time.perf_counter() - began


# -- (a) keyturn ------------------------------------------------------------------------


async def keyturn_case(
    provider: Provider, start: keyturn.JWT, callers: int
) -> tuple[Outcomes, float]:
    """Every caller runs ``jwt()`` on the expired token through one ``AsyncKeyturn``."""
    limits = httpx.Limits(max_connections=pool(callers), max_keepalive_connections=pool(callers))
    async with (
        httpx.AsyncClient(timeout=TIMEOUT, limits=limits) as http,
        keyturn.AsyncKeyturn(
            {provider.spec.id: provider.emu.credentials},
            providers=[provider.spec],
            environ={},
            http_client=http,
        ) as kt,
    ):

        async def one() -> str | None:
            token = await kt.jwt(start)
            if token.error is not None or token.refresh_failure is not None:
                return None
            return token.tokens.access_token.get_secret_value()

        return await timed(callers, one)


# -- (b) the NextAuth guide, line by line, in Python ---------------------------------------


def secret_refresh_token(start: keyturn.JWT) -> str:
    """The refresh token of the sign-in, in clear (the baselines keep tokens as strings)."""
    refresh = start.tokens.refresh_token
    if refresh is None:
        raise RuntimeError("the emulator's sign-in returned no refresh token")
    return refresh.get_secret_value()


async def refresh_access_token(
    http: httpx.AsyncClient, provider: Provider, token: dict[str, Any]
) -> dict[str, Any]:
    """The guide's ``refreshAccessToken``: POST the refresh token; on any failure, flag it."""
    try:
        response = await http.post(
            provider.token_endpoint,
            data={
                "client_id": provider.client_id,
                "client_secret": provider.client_secret,
                "grant_type": "refresh_token",
                "refresh_token": token["refreshToken"],
            },
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        refreshed = response.json()
        if not response.is_success:
            raise RuntimeError(refreshed.get("error"))
        return {
            **token,
            "accessToken": refreshed["access_token"],
            "accessTokenExpires": time.time() * 1000 + refreshed["expires_in"] * 1000,
            "refreshToken": refreshed.get("refresh_token") or token["refreshToken"],
        }
    except Exception:
        return {**token, "error": "RefreshAccessTokenError"}


async def seed_jwt(
    http: httpx.AsyncClient, provider: Provider, token: dict[str, Any]
) -> dict[str, Any]:
    """The guide's ``jwt`` callback on a request that is not a sign-in."""
    if time.time() * 1000 < token["accessTokenExpires"]:
        return token
    return await refresh_access_token(http, provider, token)


async def naive_case(
    provider: Provider, start: keyturn.JWT, callers: int
) -> tuple[Outcomes, float]:
    """Every caller runs the guide's ``jwt`` on its copy of the expired token."""
    seed_token = {
        "accessToken": start.tokens.access_token.get_secret_value(),
        "accessTokenExpires": (start.tokens.expires_at or 0) * 1000,
        "refreshToken": secret_refresh_token(start),
        "user": None,
    }
    limits = httpx.Limits(max_connections=pool(callers), max_keepalive_connections=pool(callers))
    async with httpx.AsyncClient(timeout=TIMEOUT, limits=limits) as http:

        async def one() -> str | None:
            token = await seed_jwt(http, provider, dict(seed_token))
            return None if token.get("error") else str(token["accessToken"])

        return await timed(callers, one)


# -- (c) Authlib -------------------------------------------------------------------------


def authlib_token(start: keyturn.JWT) -> dict[str, Any]:
    """The expired token as Authlib stores it."""
    return {
        "access_token": start.tokens.access_token.get_secret_value(),
        "refresh_token": secret_refresh_token(start),
        "token_type": "Bearer",
        "expires_at": start.tokens.expires_at,
    }


def authlib_client(
    provider: Provider, token: dict[str, Any], connections: int, tls: ssl.SSLContext
) -> AsyncOAuth2Client:
    """A client set up as Authlib's docs show for automatic refresh (token + token endpoint).

    ``tls`` is built once and shared: a client that builds its own spends ~80 ms loading
    certificates, which would swamp the per-request case and measure nothing about refresh.
    """
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    return AsyncOAuth2Client(
        provider.client_id,
        provider.client_secret,
        token=token,
        token_endpoint=provider.token_endpoint,
        timeout=TIMEOUT,
        limits=limits,
        verify=tls,
    )


async def authlib_shared_case(
    provider: Provider, start: keyturn.JWT, callers: int
) -> tuple[Outcomes, float]:
    """One client, every caller asks it for an active token."""
    tls = ssl.create_default_context()
    async with authlib_client(provider, authlib_token(start), pool(callers), tls) as client:

        async def one() -> str | None:
            try:
                await client.ensure_active_token(client.token)
            except Exception:
                return None
            return str(client.token["access_token"])

        return await timed(callers, one)


async def authlib_per_request_case(
    provider: Provider, start: keyturn.JWT, callers: int
) -> tuple[Outcomes, float]:
    """A client per caller, each built from the token that caller holds."""
    token = authlib_token(start)
    tls = ssl.create_default_context()

    async def one() -> str | None:
        async with authlib_client(provider, dict(token), 1, tls) as client:
            try:
                await client.ensure_active_token(client.token)
            except Exception:
                return None
            return str(client.token["access_token"])

    return await timed(callers, one)


CaseFn = Callable[[Provider, keyturn.JWT, int], Coroutine[Any, Any, tuple[Outcomes, float]]]
CASE_FUNCTIONS: dict[str, CaseFn] = {
    "keyturn": keyturn_case,
    "naive": naive_case,
    "authlib_shared": authlib_shared_case,
    "authlib_per_request": authlib_per_request_case,
}


# -- running and reporting ---------------------------------------------------------------


def expired_sign_in(provider: Provider) -> keyturn.JWT:
    """A fresh grant whose access token expired a second ago (the refresh token is live)."""
    token = sign_in(provider.emu, provider.spec)
    past = int(time.time()) - 1
    return token.model_copy(update={"tokens": token.tokens.model_copy(update={"expires_at": past})})


def run_case(provider: Provider, case: str, callers: int, fault_rate: float = 0.0) -> Run:
    """Sign in afresh, zero the counters, run ``case`` with ``callers`` callers, and count.

    ``fault_rate`` applies to the run only (the sign-in before it always succeeds).
    """
    start = expired_sign_in(provider)
    provider.emu.reset_counters()
    provider.emu.configure(fault_rate=fault_rate)
    try:
        outcomes, seconds = asyncio.run(CASE_FUNCTIONS[case](provider, start, callers))
    finally:
        provider.emu.configure(fault_rate=0.0)
    counters = provider.emu.counters(PROFILE)
    served = [token for token in outcomes if token is not None]
    return Run(
        case=case,
        callers=callers,
        requests=counters["token_requests"],
        refreshed=counters["refresh_token"],
        revoked=counters["family_revoked"],
        ok=len(served),
        alive=access_token_works(provider.spec, served[0] if served else None),
        seconds=seconds,
    )


def measure(provider: Provider, case: str, callers: int, repeats: int) -> Run:
    """Run ``case`` ``repeats`` times; the median time, and counts that must not vary."""
    runs = [run_case(provider, case, callers) for _ in range(repeats)]
    first = runs[0]
    if any(run.counts() != first.counts() for run in runs):
        raise RuntimeError(f"{case} with {callers} callers counted differently between runs")
    seconds = statistics.median(run.seconds for run in runs)
    return Run(case, callers, *first.counts(), seconds=seconds)


def print_table(runs: Sequence[Run]) -> None:
    """One block per N: the counts, the time, and the ratios against keyturn."""
    base = runs[0]
    print(f"concurrent refresh: {base.callers} callers, one expired token, {PROFILE} profile")
    print(
        f"  {'case':<42} {'requests':>8} {'refreshed':>9} {'revoked':>7} {'ok':>11} "
        f"{'alive':>5} {'time ms':>9} {'req x':>7} {'time x':>7}"
    )
    for run in runs:
        ok = f"{run.ok}/{run.callers}"
        print(
            f"  {LABELS[run.case]:<42} {run.requests:>8} {run.refreshed:>9} {run.revoked:>7} "
            f"{ok:>11} {'yes' if run.alive else 'no':>5} {run.seconds * 1e3:>9.1f} "
            f"{run.requests / base.requests:>7.2f} {run.seconds / base.seconds:>7.2f}"
        )


def print_outage(runs: Sequence[Run]) -> None:
    """The provider answers every token request 503: who retries, and how often."""
    base = runs[0]
    print(f"provider down (every token request answered 503): {base.callers} callers")
    print(f"  {'case':<42} {'requests':>8} {'ok':>11} {'req x':>7}")
    for run in runs:
        ok = f"{run.ok}/{run.callers}"
        print(
            f"  {LABELS[run.case]:<42} {run.requests:>8} {ok:>11} "
            f"{run.requests / base.requests:>7.2f}"
        )


def outage_numbers(runs: Sequence[Run]) -> dict[str, float]:
    """``concurrent_refresh.outage.n<N>.<case>.requests`` and ``.ok`` entries."""
    numbers: dict[str, float] = {}
    for run in runs:
        prefix = f"concurrent_refresh.outage.n{run.callers}.{run.case}."
        numbers[prefix + "requests"] = float(run.requests)
        numbers[prefix + "ok"] = float(run.ok)
    return numbers


def as_numbers(runs: Sequence[Run]) -> dict[str, float]:
    """Flat ``concurrent_refresh.n<N>.<case>.<field>`` entries for the summary and JSON."""
    base = runs[0]
    numbers: dict[str, float] = {}
    for run in runs:
        prefix = f"concurrent_refresh.n{run.callers}.{run.case}."
        numbers[prefix + "requests"] = float(run.requests)
        numbers[prefix + "refreshed"] = float(run.refreshed)
        numbers[prefix + "revoked"] = float(run.revoked)
        numbers[prefix + "ok"] = float(run.ok)
        numbers[prefix + "alive"] = 1.0 if run.alive else 0.0
        numbers[prefix + "ms"] = run.seconds * 1e3
        numbers[prefix + "requests_vs_keyturn"] = run.requests / base.requests
        numbers[prefix + "time_vs_keyturn"] = run.seconds / base.seconds
    return numbers


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run every case at every N and print the tables; returns the counts and ratios."""
    quick = parse_args(__doc__, argv).quick
    sizes = QUICK_CALLERS if quick else FULL_CALLERS
    repeats = 1 if quick else 3
    outage = QUICK_OUTAGE if quick else FULL_OUTAGE
    numbers: dict[str, float] = {}
    with Emulator() as emu:
        credentials = emu.credentials
        provider = Provider(
            emu,
            emulated_spec(emu, PROFILE),
            credentials.client_id,
            (credentials.client_secret.get_secret_value() if credentials.client_secret else ""),
        )
        for case in CASES:  # warm up imports, connections and the server's code paths
            run_case(provider, case, 2)
        for callers in sizes:
            runs = [measure(provider, case, callers, repeats) for case in CASES]
            print_table(runs)
            numbers.update(as_numbers(runs))
        down = [run_case(provider, case, outage, fault_rate=1.0) for case in CASES]
        print_outage(down)
        numbers.update(outage_numbers(down))
    return numbers


if __name__ == "__main__":
    main()
