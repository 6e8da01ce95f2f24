"""Google's token, userinfo and revoke endpoints, replayed from cassettes/google/.

The cassettes are written from Google's documentation (provenance in cassettes/README.md), and
they replay with record_mode "none": a request keyturn sends that a cassette does not hold (other
method, URI or form fields) fails the test. Every test runs four times: Keyturn over httpx.Client
and httpx2.Client, AsyncKeyturn over httpx.AsyncClient and httpx2.AsyncClient.

The last class runs keyturn's conformance suite (pytest_keyturn.ProviderConformance) on the
same cassettes, exactly as a plugin's own test suite does.
"""

from __future__ import annotations

import pytest

import keyturn
from keyturn.idtoken import unverified_claims
from pytest_keyturn import ProviderConformance
from pytest_keyturn.cassettes import make_vcr
from tests.conftest import CASSETTES, CLIENT_ID, FakeClock

from ._replay import Connect, Driver, Failure, Replay, refresh_failure_test, replay_fixtures

VCR = make_vcr(CASSETTES / "google")

REDIRECT_URI = "https://app.example.com/api/auth/callback/google"
#: The nonce in exchange_code's id_token (OpenID Connect Core's example value).
NONCE = "n-0S6_WzA2Mj"
#: Google reports the granted scopes by their full names, not as "email profile".
GRANTED = (
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
    "openid",
)
DRIVE_METADATA = "https://www.googleapis.com/auth/drive.metadata.readonly"
#: Placeholder token values in the cassettes (keyturn's scrubber writes this form).
EXCHANGED_ACCESS_TOKEN = "REDACTED-39ad149e"
EXCHANGED_REFRESH_TOKEN = "REDACTED-682c9652"
REFRESHED_ACCESS_TOKEN = "REDACTED-328fda98"
GOOGLE_SUB = "100000000000000000001"
#: What the app holds before a refresh; the body matcher only needs these fields present.
OLD_ACCESS_TOKEN = "access-token-from-sign-in"
OLD_REFRESH_TOKEN = "refresh-token-from-sign-in"

connect, driver = replay_fixtures(
    Replay(
        "google",
        VCR,
        REDIRECT_URI,
        code="4/code-from-the-callback",
        access_lifetime=3599,
        authorize={"nonce": NONCE},
    )
)


def signed_in_tokens(clock: FakeClock) -> keyturn.TokenSet:
    """Tokens as an exchange left them, now due for a refresh."""
    return keyturn.TokenSet.model_validate(
        {
            "provider": "google",
            "access_token": OLD_ACCESS_TOKEN,
            "expires_at": int(clock.now) - 1,
            "refresh_token": OLD_REFRESH_TOKEN,
            "scope": GRANTED,
            "id_token": "id-token-from-sign-in",
        }
    )


# -- code exchange ------------------------------------------------------------------------


async def test_exchange_code_reads_googles_token_response(driver: Driver, clock: FakeClock) -> None:
    request = driver.authorize_url(nonce=NONCE)
    with driver.play("exchange_code"):
        tokens = await driver.exchange_code(request, "4/code-from-the-callback")
    assert tokens.provider == "google"
    assert tokens.access_token.get_secret_value() == EXCHANGED_ACCESS_TOKEN
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == EXCHANGED_REFRESH_TOKEN
    assert tokens.expires_at == clock.now + 3599
    assert tokens.refresh_token_expires_at is None
    assert tokens.scope == GRANTED
    assert tokens.token_type == "Bearer"
    assert tokens.id_token is not None
    claims = unverified_claims(tokens.id_token.get_secret_value())
    assert (claims["nonce"], claims["aud"], claims["sub"]) == (NONCE, CLIENT_ID, GOOGLE_SUB)
    assert tokens.extra == {}


async def test_exchange_code_rejects_an_id_token_for_another_nonce(driver: Driver) -> None:
    request = driver.authorize_url(nonce="a-nonce-this-sign-in-never-sent")
    with driver.play("exchange_code"), pytest.raises(keyturn.IdTokenError, match="nonce"):
        await driver.exchange_code(request, "4/code-from-the-callback")


async def test_exchange_in_testing_status_gives_a_seven_day_refresh_token(
    driver: Driver, clock: FakeClock
) -> None:
    request = driver.authorize_url(scopes=[DRIVE_METADATA])
    with driver.play("exchange_testing_status"):
        tokens = await driver.exchange_code(request, "4/code-from-the-callback")
        assert tokens.expires_at == clock.now + 3599
        assert tokens.refresh_token_expires_at == clock.now + 604799
        assert tokens.scope == (DRIVE_METADATA,)
        assert tokens.id_token is None
        # Seven days later the refresh token is dead: keyturn says so without a request
        # (the cassette holds no second interaction, so one would fail the test).
        clock.advance(604799)
        with pytest.raises(keyturn.RefreshTokenUnusable) as caught:
            await driver.refresh(tokens)
    assert caught.value.error == "refresh_token_expired"
    assert caught.value.permanent


async def test_exchange_with_a_bad_code_is_a_permanent_invalid_grant(driver: Driver) -> None:
    request = driver.authorize_url(nonce=NONCE)
    with driver.play("exchange_invalid_grant"), pytest.raises(keyturn.OAuthError) as caught:
        await driver.exchange_code(request, "4/not-a-code")
    error = caught.value
    assert (error.error, error.status, error.permanent) == ("invalid_grant", 400, True)
    assert error.description == "Malformed auth code."
    assert error.operation == "exchange_code"


# -- refresh ------------------------------------------------------------------------------


async def test_refresh_keeps_the_refresh_token_google_does_not_rotate(
    driver: Driver, clock: FakeClock
) -> None:
    old = signed_in_tokens(clock)
    with driver.play("refresh_ok"):
        tokens = await driver.refresh(old)
    assert tokens.access_token.get_secret_value() == REFRESHED_ACCESS_TOKEN
    assert tokens.refresh_token == old.refresh_token
    assert tokens.expires_at == clock.now + 3599
    assert tokens.refresh_token_expires_at is None
    assert tokens.scope == GRANTED
    assert tokens.token_type == "Bearer"
    assert tokens.id_token == old.id_token  # the response carries none: the old one stays


REFRESH_FAILURES = {
    "refresh_invalid_grant": Failure(
        keyturn.OAuthError, "invalid_grant", 400, True, "Token has been expired or revoked."
    ),
    "refresh_invalid_grant_bad_request": Failure(
        keyturn.OAuthError, "invalid_grant", 400, True, "Bad Request"
    ),
    "refresh_rapt_required": Failure(keyturn.OAuthError, "invalid_grant", 400, True, None),
    "refresh_invalid_client": Failure(
        keyturn.OAuthError, "invalid_client", 401, True, "Unauthorized"
    ),
    "refresh_unauthorized_client": Failure(
        keyturn.OAuthError, "unauthorized_client", 401, True, "Unauthorized"
    ),
    # An HTML 503 page carries no OAuth error: an unusable answer, worth retrying.
    "refresh_transient": Failure(
        keyturn.InvalidResponseError,
        "http_error",
        503,
        False,
        "HTTP 503 with a text/html body and no OAuth error",
    ),
    # google-auth retries internal_failure; the plugin lists it as transient.
    "refresh_internal_failure": Failure(keyturn.OAuthError, "internal_failure", 500, False, None),
}


test_refresh_failure_is_classified = refresh_failure_test(REFRESH_FAILURES, signed_in_tokens)


async def test_refresh_without_client_secret_is_a_permanent_invalid_request(
    connect: Connect, clock: FakeClock
) -> None:
    # A web client configured without its secret: keyturn sends no client_secret field, which
    # the cassette's request (no client_secret either) checks.
    driver = connect((CLIENT_ID, None))
    with driver.play("refresh_invalid_request"), pytest.raises(keyturn.OAuthError) as caught:
        await driver.refresh(signed_in_tokens(clock))
    failure = caught.value
    assert (failure.error, failure.status, failure.permanent) == ("invalid_request", 400, True)
    assert failure.description == "client_secret is missing."


# -- userinfo and revoke ------------------------------------------------------------------


async def test_userinfo_normalises_googles_claims(driver: Driver, clock: FakeClock) -> None:
    with driver.play("userinfo"):
        profile = await driver.userinfo(signed_in_tokens(clock))
    assert isinstance(profile, keyturn.Profile)
    assert profile.id == GOOGLE_SUB
    assert profile.name == "Example User"
    assert profile.email == "user@example.com"
    assert profile.email_verified is True
    assert profile.image == "https://lh3.googleusercontent.com/a/placeholder-photo"
    assert profile.raw["given_name"] == "Example"
    assert profile.raw["family_name"] == "User"
    assert profile.raw["locale"] == "en"


@pytest.mark.parametrize("scenario", ["revoke", "revoke_invalid_token"])
async def test_revoke_succeeds_also_for_an_already_dead_token(
    driver: Driver, clock: FakeClock, scenario: str
) -> None:
    # The cassette's form holds only "token": a client_id or token_type_hint would not match.
    with driver.play(scenario):
        result = await driver.revoke(signed_in_tokens(clock))
    assert result is None


# -- the jwt callback over a whole sign-in ------------------------------------------------


async def test_jwt_refreshes_a_due_token_and_keeps_the_refresh_token(
    driver: Driver, clock: FakeClock
) -> None:
    token = await driver.signed_in_jwt(clock)
    with driver.play("refresh_ok"):
        refreshed = await driver.jwt(token)
    assert refreshed.error is None
    assert refreshed.refresh_failure is None
    assert refreshed.tokens.access_token.get_secret_value() == REFRESHED_ACCESS_TOKEN
    assert refreshed.tokens.refresh_token == token.tokens.refresh_token
    assert token.tokens.refresh_token is not None
    assert token.tokens.refresh_token.get_secret_value() == EXCHANGED_REFRESH_TOKEN
    assert refreshed.tokens.expires_at == clock.now + 3599
    session = driver.client.session(refreshed)
    assert session.error is None
    assert session.access_token == refreshed.tokens.access_token


async def test_jwt_after_a_permanent_failure_asks_for_a_new_sign_in(
    driver: Driver, clock: FakeClock
) -> None:
    token = await driver.signed_in_jwt(clock)
    # Once failed for good, keyturn stops asking Google (no second interaction exists).
    failed = await driver.jwt_fails_for_good(token, "refresh_invalid_grant")
    assert failed.refresh_failure is not None
    assert (failed.refresh_failure.error, failed.refresh_failure.status) == ("invalid_grant", 400)


async def test_jwt_after_a_transient_failure_keeps_the_session(
    driver: Driver, clock: FakeClock
) -> None:
    token = await driver.signed_in_jwt(clock)
    failed = await driver.jwt_fails_for_now(token, "refresh_transient")
    assert failed.refresh_failure is not None
    assert failed.refresh_failure.status == 503
    assert driver.client.session(failed).error is None


# -- keyturn's conformance suite on the same cassettes ------------------------------------


class TestGoogleConformance(ProviderConformance):
    provider = "google"
    cassettes = CASSETTES / "google"
