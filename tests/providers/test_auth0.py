"""keyturn-auth0: its settings, its cassettes, its rate-limit handling and its emulator profile.

* Settings: the spec is a template; a missing domain is a ConfigurationError naming
  ``KEYTURN_AUTH0_DOMAIN``; a value that is not a host is refused without being quoted; the
  issuer keeps Auth0's final slash; rotation and its reuse interval are stated per deployment.
* Cassettes (cassettes/auth0/, written from Auth0's documentation; provenance in
  cassettes/README.md), each replayed four ways: Keyturn and AsyncKeyturn over httpx and
  httpx2; then keyturn's conformance suite on the same cassettes. Auth0 answers a dead refresh
  token with 403 ``invalid_grant``, and a rate limit with 429.
* The emulator's ``auth0`` profile: reuse detection with a reuse interval ("Only the previous
  token can be reused",
  https://auth0.com/docs/secure/tokens/refresh-tokens/configure-refresh-token-rotation), the
  429 knob, and keyturn's own reuse window, which never sends a rotated token again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import keyturn
from keyturn import HttpResponse
from keyturn.idtoken import unverified_claims
from keyturn_auth0 import AUTH0, rate_limit_wait
from keyturn_emulator import Emulator
from keyturn_emulator.providers.auth0 import REUSE_GRACE
from pytest_keyturn import ProviderConformance
from pytest_keyturn.cassettes import make_vcr
from tests.conftest import CASSETTES, CLIENT_ID, FakeClock

from ._replay import Connect, Driver, Failure, Replay, refresh_failure_test, replay_fixtures

DOMAIN = "dev-abc123.us.auth0.com"
TENANT = f"https://{DOMAIN}"
REDIRECT_URI = "https://app.example.com/api/auth/callback/auth0"
NONCE = "n-0S6_WzA2Mj"
SUB = "auth0|5f7c8ec7c33c6c004bbafe82"
#: Placeholders in the cassettes (keyturn's scrubber writes this form).
EXCHANGED_ACCESS_TOKEN = "REDACTED-73aa2741"
EXCHANGED_REFRESH_TOKEN = "REDACTED-01b39619"
REFRESHED_ACCESS_TOKEN = "REDACTED-e9761d76"
ROTATED_ACCESS_TOKEN = "REDACTED-90cb4254"
ROTATED_REFRESH_TOKEN = "REDACTED-51b35e86"
SCOPES = ("openid", "profile", "email", "offline_access")

connect, driver = replay_fixtures(
    Replay(
        "auth0",
        make_vcr(CASSETTES / "auth0"),
        REDIRECT_URI,
        code="auth0-code-from-the-callback",
        access_lifetime=3600,
        authorize={"nonce": NONCE},
        settings={"domain": DOMAIN},
    )
)


def deployed(settings: dict[str, Any] | None = None, **environ: str) -> keyturn.ProviderSpec:
    """The spec a client makes of the template with ``settings`` and ``environ``."""
    given = {"auth0": settings} if settings is not None else {}
    with keyturn.Keyturn(settings=given, environ=environ) as kt:
        return kt.provider("auth0")


def due_tokens(clock: FakeClock) -> keyturn.TokenSet:
    """Tokens as the exchange left them, now due for a refresh."""
    return keyturn.TokenSet.model_validate(
        {
            "provider": "auth0",
            "access_token": "access-token-from-sign-in",
            "expires_at": int(clock.now) - 1,
            "refresh_token": EXCHANGED_REFRESH_TOKEN,
            "scope": SCOPES,
        }
    )


# -- settings -------------------------------------------------------------------------------


def test_a_missing_domain_names_its_variable() -> None:
    with (
        keyturn.Keyturn(environ={}) as kt,
        pytest.raises(keyturn.ConfigurationError, match="KEYTURN_AUTH0_DOMAIN") as caught,
    ):
        kt.provider("auth0")
    assert "settings={'auth0': {'domain': ...}}" in str(caught.value)


def test_the_domain_fills_every_url_and_the_issuer_keeps_its_slash() -> None:
    spec = deployed(KEYTURN_AUTH0_DOMAIN="acme.eu.auth0.com")
    assert spec.authorization_endpoint == "https://acme.eu.auth0.com/authorize"
    assert spec.token_endpoint == "https://acme.eu.auth0.com/oauth/token"
    assert spec.userinfo_endpoint == "https://acme.eu.auth0.com/userinfo"
    assert spec.revocation_endpoint == "https://acme.eu.auth0.com/oauth/revoke"
    assert spec.end_session_endpoint == "https://acme.eu.auth0.com/oidc/logout"
    assert spec.jwks_uri == "https://acme.eu.auth0.com/.well-known/jwks.json"
    assert spec.issuer == "https://acme.eu.auth0.com/"


def test_a_custom_domain_in_code_wins_over_the_environment() -> None:
    spec = deployed({"domain": "login.example.com"}, KEYTURN_AUTH0_DOMAIN="acme.eu.auth0.com")
    assert spec.issuer == "https://login.example.com/"
    assert spec.token_endpoint == "https://login.example.com/oauth/token"


@pytest.mark.parametrize(
    "domain",
    ["acme.eu.auth0.com/x", "https://acme.eu.auth0.com", "acme.eu.auth0.com?a=b", "a b", ""],
)
def test_a_domain_that_is_not_a_host_is_refused_unquoted(domain: str) -> None:
    with pytest.raises(keyturn.ConfigurationError, match="domain") as caught:
        deployed({"domain": domain})
    if domain:
        assert domain not in str(caught.value)


def test_rotation_and_the_reuse_interval_are_stated_per_deployment() -> None:
    default = deployed({"domain": DOMAIN})
    assert (default.rotation, default.refresh_reuse_grace) == ("detect_reuse", 0.0)
    overlap = deployed({"domain": DOMAIN, "refresh_reuse_grace": 15})
    assert overlap.refresh_reuse_grace == 15.0
    off = deployed({"domain": DOMAIN}, KEYTURN_AUTH0_ROTATION="none")
    assert (off.rotation, off.rotates_refresh_tokens, off.refresh_reuse_grace) == (
        "none",
        False,
        0.0,
    )
    with pytest.raises(keyturn.ConfigurationError, match="refresh_reuse_grace"):
        deployed({"domain": DOMAIN, "refresh_reuse_grace": "-1"})


# -- cassettes ------------------------------------------------------------------------------


async def test_exchange_code_reads_auth0s_answer_and_verifies_the_id_token(
    driver: Driver, clock: FakeClock
) -> None:
    request = driver.authorize_url(nonce=NONCE, audience="https://api.example.com")
    assert request.url.startswith(f"{TENANT}/authorize?")
    assert "audience=https%3A%2F%2Fapi.example.com" in request.url
    with driver.play("exchange_code"):
        tokens = await driver.exchange_code(request, "auth0-code-from-the-callback")
    assert tokens.access_token.get_secret_value() == EXCHANGED_ACCESS_TOKEN
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == EXCHANGED_REFRESH_TOKEN
    assert tokens.expires_at == clock.now + 3600
    assert tokens.id_token is not None
    claims = unverified_claims(tokens.id_token.get_secret_value())
    assert (claims["iss"], claims["aud"], claims["sub"]) == (f"{TENANT}/", CLIENT_ID, SUB)


async def test_an_id_token_without_the_final_slash_is_another_issuer(
    connect: Connect,
) -> None:
    # Auth0's issuer is https://<domain>/; a spec that dropped the slash refuses the token.
    slashless = connect(providers=[AUTH0.model_copy(update={"issuer": "https://{domain}"})])
    request = slashless.authorize_url(nonce=NONCE)
    with slashless.play("exchange_code"), pytest.raises(keyturn.IdTokenError, match="iss"):
        await slashless.exchange_code(request, "auth0-code-from-the-callback")


async def test_a_non_rotating_application_keeps_its_refresh_token(
    connect: Connect, clock: FakeClock
) -> None:
    kept = connect(settings={"rotation": "none"})
    old = due_tokens(clock)
    with kept.play("refresh_ok"):
        tokens = await kept.refresh(old)
    assert tokens.access_token.get_secret_value() == REFRESHED_ACCESS_TOKEN
    assert tokens.refresh_token == old.refresh_token


async def test_a_rotating_application_replaces_the_refresh_token(
    driver: Driver, clock: FakeClock
) -> None:
    with driver.play("refresh_rotated"):
        tokens = await driver.refresh(due_tokens(clock))
    assert tokens.access_token.get_secret_value() == ROTATED_ACCESS_TOKEN
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == ROTATED_REFRESH_TOKEN


test_refresh_failure_is_classified = refresh_failure_test(
    {
        "refresh_invalid_grant": Failure(
            keyturn.OAuthError, "invalid_grant", 403, True, "Unknown or invalid refresh token."
        ),
        "refresh_transient": Failure(
            keyturn.InvalidResponseError,
            "http_error",
            503,
            False,
            "HTTP 503 with a text/html body and no OAuth error",
        ),
        "refresh_rate_limited": Failure(
            keyturn.OAuthError,
            "too_many_requests",
            429,
            False,
            "Global limit has been reached",
        ),
    },
    due_tokens,
)


async def test_a_rate_limit_carries_the_wait_from_x_ratelimit_reset(
    driver: Driver, clock: FakeClock
) -> None:
    # No Retry-After: x-ratelimit-reset (1800000012) less the answer's Date (1800000000).
    with driver.play("refresh_rate_limited"), pytest.raises(keyturn.ProviderError) as caught:
        await driver.refresh(due_tokens(clock))
    assert caught.value.retry_after == 12.0
    assert not caught.value.permanent


def answer(status: int, **headers: str) -> HttpResponse:
    return HttpResponse(status=status, headers=headers, body=b"")


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after": "7", "x-ratelimit-reset": "1800000012"}, 7.0),
        ({"x-ratelimit-reset": "1800000012", "date": "Fri, 15 Jan 2027 08:00:00 GMT"}, 12.0),
        ({"x-ratelimit-reset": "1799999990", "date": "Fri, 15 Jan 2027 08:00:00 GMT"}, 0.0),
        ({"x-ratelimit-reset": "1900000000", "date": "Fri, 15 Jan 2027 08:00:00 GMT"}, 3600.0),
        ({"x-ratelimit-reset": "1800000012"}, None),  # no Date: nothing to measure from
        ({"x-ratelimit-reset": "soon", "date": "Fri, 15 Jan 2027 08:00:00 GMT"}, None),
        ({"x-ratelimit-reset": "1800000012", "date": "yesterday"}, None),
        ({}, None),
    ],
)
def test_rate_limit_wait(headers: dict[str, str], wait: float | None) -> None:
    assert rate_limit_wait(answer(429, **headers)) == wait


async def test_userinfo_reads_auth0s_claims(driver: Driver, clock: FakeClock) -> None:
    with driver.play("userinfo"):
        profile = await driver.userinfo(due_tokens(clock))
    assert (profile.id, profile.name, profile.email) == (SUB, "Example User", "user@example.com")


async def test_revoke_sends_the_refresh_token_with_the_secret_in_the_form(
    driver: Driver, clock: FakeClock
) -> None:
    with driver.play("revoke"):
        assert await driver.revoke(due_tokens(clock)) is None


async def test_jwt_after_auth0s_403_asks_for_a_new_sign_in(
    driver: Driver, clock: FakeClock
) -> None:
    token = await driver.signed_in_jwt(clock)
    failed = await driver.jwt_fails_for_good(token, "refresh_invalid_grant")
    assert failed.refresh_failure is not None
    assert failed.refresh_failure.status == 403


async def test_jwt_after_a_rate_limit_keeps_the_session(driver: Driver, clock: FakeClock) -> None:
    token = await driver.signed_in_jwt(clock)
    failed = await driver.jwt_fails_for_now(token, "refresh_rate_limited")
    assert failed.refresh_failure is not None
    assert failed.refresh_failure.status == 429


class TestAuth0Conformance(ProviderConformance):
    provider = "auth0"
    cassettes = CASSETTES / "auth0"
    client_id = CLIENT_ID
    settings = {"domain": DOMAIN}


# -- the emulator's auth0 profile -----------------------------------------------------------


@pytest.fixture
def emu_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(emu_clock: FakeClock) -> Iterator[Emulator]:
    with Emulator(clock=emu_clock) as emulator:
        yield emulator


def client(emu: Emulator, clock: FakeClock, **settings: str) -> keyturn.Keyturn:
    """keyturn-auth0's spec pointed at the emulator, on the emulator's clock."""
    return keyturn.Keyturn(
        {"auth0": emu.credentials},
        providers=[emu.point(AUTH0)],
        environ={},
        clock=clock,
        settings={"auth0": settings} if settings else {},
    )


def raw_refresh(emu: Emulator, refresh_token: str) -> httpx.Response:
    credentials = emu.credentials
    assert credentials.client_secret is not None
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret.get_secret_value(),
    }
    return httpx.post(emu.endpoints("auth0")["token_endpoint"], data=form)


def test_the_previous_token_is_exchanged_within_the_reuse_interval_then_kills_the_family(
    emu: Emulator, emu_clock: FakeClock
) -> None:
    first = emu.grant("auth0", scopes=SCOPES)["refresh_token"]
    second = raw_refresh(emu, first).json()["refresh_token"]
    emu_clock.advance(REUSE_GRACE - 1)
    late = raw_refresh(emu, first)
    assert late.status_code == 200, late.text
    assert late.json()["refresh_token"] not in (first, second)  # "a new ... token is issued"
    emu_clock.advance(1)
    reused = raw_refresh(emu, first)
    assert (reused.status_code, reused.json()) == (
        403,
        {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."},
    )
    assert raw_refresh(emu, second).status_code == 403
    assert emu.counters("auth0")["family_revoked"] == 1


def test_keyturn_reads_the_profiles_403_as_permanent(emu: Emulator, emu_clock: FakeClock) -> None:
    with client(emu, emu_clock) as kt:
        request = kt.authorize_url("auth0", "http://127.0.0.1:8765/callback")
        token = kt.sign_in(request, emu.authorize(request.url))
        assert emu.revoke_grants("auth0") == 1
        with pytest.raises(keyturn.OAuthError) as caught:
            kt.refresh(token.tokens)
    assert (caught.value.status, caught.value.error, caught.value.permanent) == (
        403,
        "invalid_grant",
        True,
    )


def test_keyturn_never_sends_the_rotated_token_again(emu: Emulator, emu_clock: FakeClock) -> None:
    with client(emu, emu_clock, refresh_reuse_grace=str(REUSE_GRACE)) as kt:
        request = kt.authorize_url("auth0", "http://127.0.0.1:8765/callback")
        signed_in = kt.sign_in(request, emu.authorize(request.url))
        assert kt.provider("auth0").refresh_reuse_grace == REUSE_GRACE
        first = kt.refresh(signed_in.tokens)
        late = kt.refresh(signed_in.tokens)
    assert late == first
    counters = emu.counters("auth0")
    assert counters["refresh_token"] == 1
    assert (counters.get("reuse_grace", 0), counters["reuse_detected"]) == (0, 0)


def test_a_rate_limited_refresh_is_transient_with_its_wait(
    emu: Emulator, emu_clock: FakeClock
) -> None:
    with client(emu, emu_clock) as kt:
        request = kt.authorize_url("auth0", "http://127.0.0.1:8765/callback")
        token = kt.sign_in(request, emu.authorize(request.url))
        emu.configure(rate_limit_rate=1.0)
        with pytest.raises(keyturn.OAuthError) as caught:
            kt.refresh(token.tokens)
        emu.configure(rate_limit_rate=0.0)
        refreshed = kt.refresh(token.tokens)  # nothing was spent: the same token works
    error = caught.value
    assert (error.status, error.error, error.permanent, error.retry_after) == (
        429,
        "too_many_requests",
        False,
        1.0,
    )
    assert refreshed.refresh_token != token.tokens.refresh_token
    counters = emu.counters("auth0")
    assert (counters["rate_limited"], counters["refresh_token"]) == (1, 1)


def test_the_rate_limit_knob_is_checked() -> None:
    with Emulator() as emu:
        with pytest.raises(ValueError, match="rate_limit_rate"):
            emu.configure(rate_limit_rate=1.5)
        with pytest.raises(ValueError, match="fault_rate \\+ rate_limit_rate"):
            emu.configure(fault_rate=0.6, rate_limit_rate=0.6)


@pytest.mark.parametrize("status", [429, 400])
def test_any_429_is_transient_whatever_its_error_code(status: int, clock: FakeClock) -> None:
    import keyturn_auth0

    spec = deployed({"domain": DOMAIN})
    credentials = keyturn.ClientCredentials(client_id=CLIENT_ID, client_secret="not-a-secret")
    flow = keyturn_auth0.keyturn_refresh(
        provider=spec, credentials=credentials, tokens=due_tokens(clock), clock=clock
    )
    assert flow is not None
    request = next(flow)
    assert request.url == f"{TENANT}/oauth/token"
    refused = HttpResponse(
        status=status,
        headers={"content-type": "application/json", "retry-after": "3"},
        body=b'{"error":"access_denied","error_description":"Too many attempts"}',
    )
    with pytest.raises(keyturn.OAuthError) as caught:
        flow.send(refused)
    assert caught.value.permanent is (status != 429)
    assert caught.value.retry_after == 3.0
    assert caught.value.error == "access_denied"


def test_rate_limits_leave_a_seeded_runs_other_faults_in_place() -> None:
    from keyturn_emulator.faults import Dice, Knobs

    knobs = Knobs(seed=7, fault_rate=0.2, drop_rate=0.1, lost_answer_rate=0.1)
    limited = knobs.changed(rate_limit_rate=0.3)
    before, plain = Dice(7), Dice(7)
    with_limits = [before.roll(limited) for _ in range(400)]
    without = [plain.roll(knobs) for _ in range(400)]
    for verdict, old in zip(with_limits, without, strict=True):
        assert verdict == old or (old, verdict) == ("pass", "limit")
    assert 60 < with_limits.count("limit") < 180
