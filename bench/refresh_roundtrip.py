"""One refresh round trip through keyturn, against the same POST sent with httpx by hand.

Both send the same form (``grant_type=refresh_token``, the refresh token, ``client_id`` and
``client_secret``, ``Accept: application/json``) to the same token endpoint: the emulator's
``google`` profile, which does not rotate refresh tokens, so one token serves every call of
both sides and neither is favoured. The baseline also parses the JSON answer; keyturn
additionally runs its plugin hook and flow, builds a :class:`~keyturn.TokenSet` and goes
through single-flight. The ratio is the price of all that on a loopback round trip, which is
close to the cheapest a round trip gets; over a real network the same absolute overhead is a
far smaller fraction. The emulator serves from a process of its own (see
:mod:`bench._emulator_process`): from a thread of this one, each round trip would mostly wait
for the interpreter lock, whichever side sent it.

keyturn is built with ``refresh_reuse_window=0``: by default it would answer repeated
refreshes of one token from its 30 s reuse window without any request, which is the point in
production but not what this benchmark measures.

A last section takes the network out: both sides send to an ``httpx.MockTransport`` that
replays one answer the emulator gave (the same bytes, ID token included), timed in CPU time,
so the ratio there is keyturn's own work per refresh against httpx's, with no server and no
socket; beside it, what the ID token checks alone cost (signature, OpenID Connect claims,
same user as before), which keyturn runs on every refreshed ID token.

Run: ``python -m bench.refresh_roundtrip [--quick]``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx

import keyturn

from ._emulator_process import Provider, emulator_process
from ._report import Result, aper_call_pair, parse_args, per_call_pair, print_ratio

PROFILE = "google"
TIMEOUT = 10.0


def refresh_form(provider: Provider, tokens: keyturn.TokenSet) -> dict[str, str]:
    """What keyturn's Google plugin sends (client credentials in the body)."""
    secret = provider.credentials.client_secret
    refresh = tokens.refresh_token
    if secret is None or refresh is None:
        raise RuntimeError("the emulator's sign-in returned no refresh token")
    return {
        "grant_type": "refresh_token",
        "refresh_token": refresh.get_secret_value(),
        "client_id": provider.credentials.client_id,
        "client_secret": secret.get_secret_value(),
    }


def check(response: httpx.Response) -> dict[str, Any]:
    """The baseline's share of the work: a status check and the parsed answer."""
    if response.status_code != 200:
        raise RuntimeError(f"the token endpoint answered HTTP {response.status_code}")
    data: dict[str, Any] = response.json()
    return data


def sync_pair(
    provider: Provider, tokens: keyturn.TokenSet, number: int, rounds: int
) -> tuple[Result, Result]:
    """``Keyturn.refresh`` against ``httpx.Client.post``."""
    spec = provider.spec
    form = refresh_form(provider, tokens)
    headers = dict(spec.token_request_headers)
    with (
        httpx.Client(timeout=TIMEOUT) as http,
        keyturn.Keyturn(
            {spec.id: provider.credentials}, providers=[spec], environ={}, refresh_reuse_window=0
        ) as kt,
    ):
        by_hand, through_keyturn = per_call_pair(
            lambda: check(http.post(spec.token_endpoint, data=form, headers=headers)),
            lambda: kt.refresh(tokens),
            number=number,
            rounds=rounds,
        )
    return (
        Result("keyturn Keyturn.refresh", through_keyturn),
        Result("httpx.Client.post + json (by hand)", by_hand),
    )


def offline_pair(
    provider: Provider, tokens: keyturn.TokenSet, number: int, rounds: int
) -> tuple[Result, Result, Result]:
    """The sync pair on a mock transport replaying one of the emulator's answers (CPU time),
    and the ID token checks of that answer alone."""
    from keyturn.idtoken import (
        check_id_token,
        check_same_session,
        unverified_claims,
        verify_signature,
    )
    from keyturn.jwks import parse_key_set

    spec = provider.spec
    form = refresh_form(provider, tokens)
    headers = dict(spec.token_request_headers)
    if spec.jwks_uri is None or tokens.id_token is None:
        raise RuntimeError(f"the {PROFILE} profile must sign ID tokens for this benchmark")
    with httpx.Client(timeout=TIMEOUT) as http:
        answer = http.post(spec.token_endpoint, data=form, headers=headers)
        key_set = http.get(spec.jwks_uri)
    check(answer)
    replies = {spec.jwks_uri: key_set.content, spec.token_endpoint: answer.content}

    def replay(request: httpx.Request) -> httpx.Response:
        content = replies[str(request.url).split("?")[0]]
        return httpx.Response(200, content=content, headers={"Content-Type": "application/json"})

    new_id_token = str(answer.json()["id_token"])
    keys = parse_key_set(key_set.json())
    old_claims = unverified_claims(tokens.id_token.get_secret_value())
    client_id = provider.credentials.client_id

    def id_token_checks() -> None:
        verify_signature(new_id_token, keys, spec.id_token_signing_algs)
        claims = check_id_token(new_id_token, nonce=None, client_id=client_id, issuer=spec.issuer)
        check_same_session(claims, old_claims)

    with (
        httpx.Client(transport=httpx.MockTransport(replay)) as http,
        keyturn.Keyturn(
            {spec.id: provider.credentials},
            providers=[spec],
            environ={},
            refresh_reuse_window=0,
            http_client=http,
        ) as kt,
    ):
        by_hand, through_keyturn = per_call_pair(
            lambda: check(http.post(spec.token_endpoint, data=form, headers=headers)),
            lambda: kt.refresh(tokens),
            number=number,
            rounds=rounds,
            timer=time.thread_time,
        )
        checks, _ = per_call_pair(
            id_token_checks, lambda: None, number=number, rounds=rounds, timer=time.thread_time
        )
    return (
        Result("keyturn Keyturn.refresh", through_keyturn),
        Result("httpx.Client.post + json (by hand)", by_hand),
        Result("of which the ID token checks alone", checks),
    )


async def async_pair(
    provider: Provider, tokens: keyturn.TokenSet, number: int, rounds: int
) -> tuple[Result, Result]:
    """``AsyncKeyturn.refresh`` against ``httpx.AsyncClient.post``."""
    spec = provider.spec
    form = refresh_form(provider, tokens)
    headers = dict(spec.token_request_headers)
    async with (
        httpx.AsyncClient(timeout=TIMEOUT) as http,
        keyturn.AsyncKeyturn(
            {spec.id: provider.credentials}, providers=[spec], environ={}, refresh_reuse_window=0
        ) as kt,
    ):

        async def by_hand() -> None:
            check(await http.post(spec.token_endpoint, data=form, headers=headers))

        async def through_keyturn() -> None:
            await kt.refresh(tokens)

        hand_seconds, keyturn_seconds = await aper_call_pair(
            by_hand, through_keyturn, number=number, rounds=rounds
        )
    return (
        Result("keyturn AsyncKeyturn.refresh", keyturn_seconds),
        Result("httpx.AsyncClient.post + json (by hand)", hand_seconds),
    )


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Time both pairs and print the ratios; returns ``refresh_roundtrip.sync`` / ``.async``."""
    quick = parse_args(__doc__, argv).quick
    number, rounds = (20, 3) if quick else (300, 7)
    with emulator_process(PROFILE) as provider:
        tokens = provider.sign_in()
        provider.ask("reset")
        subject, baseline = sync_pair(provider, tokens, number, rounds)
        sync_ratio = print_ratio(
            "refresh round trip, sync (median per call)",
            subject,
            baseline,
            key="refresh_roundtrip.sync",
            target=1.10,
        )
        subject, baseline = asyncio.run(async_pair(provider, tokens, number, rounds))
        async_ratio = print_ratio("refresh round trip, async (median per call)", subject, baseline)
        refreshed = provider.counters()["refresh_token"]
        subject, baseline, checks = offline_pair(provider, tokens, number, rounds)
        offline_ratio = print_ratio(
            "the same without a network: a mock transport replays one answer (CPU per call)",
            subject,
            baseline,
        )
        print(
            f"  {checks.name:<44} {checks.micros:>10.1f} us   "
            f"{checks.seconds / baseline.seconds:.2f}x"
        )
    expected = 2 * 2 * (number * rounds + 1)  # two pairs, two sides, one warm-up call each
    if refreshed != expected:
        raise RuntimeError(f"expected {expected} refreshes at the emulator, counted {refreshed}")
    return {
        "refresh_roundtrip.sync": sync_ratio,
        "refresh_roundtrip.async": async_ratio,
        "refresh_roundtrip.offline": offline_ratio,
        "refresh_roundtrip.id_token_checks": checks.seconds / baseline.seconds,
    }


if __name__ == "__main__":
    main()
