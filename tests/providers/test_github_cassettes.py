"""GitHub's token, user and revoke endpoints, replayed from cassettes/github/.

The cassettes are written from GitHub's documentation (provenance in cassettes/README.md), and
they replay with record_mode "none": a request keyturn sends that a cassette does not hold
(other method, URI or body fields) fails the test. Every test runs four times: Keyturn over
httpx.Client and httpx2.Client, AsyncKeyturn over httpx.AsyncClient and httpx2.AsyncClient.

The last class runs keyturn's conformance suite (pytest_keyturn.ProviderConformance) on the
same cassettes, exactly as a plugin's own test suite does.
"""

from __future__ import annotations

from typing import Any

import pytest

import keyturn
from keyturn_github import GITHUB
from pytest_keyturn import ProviderConformance
from pytest_keyturn.cassettes import make_vcr
from tests.conftest import CASSETTES, CLIENT_ID, FakeClock

from ._replay import Connect, Driver, Failure, Replay, refresh_failure_test, replay_fixtures

VCR = make_vcr(CASSETTES / "github")

REDIRECT_URI = "https://app.example.com/api/auth/callback/github"
#: Placeholder token values in the cassettes (keyturn's scrubber writes this form).
EXCHANGED_ACCESS_TOKEN = "REDACTED-06fd796e"
EXCHANGED_REFRESH_TOKEN = "REDACTED-751fb7ad"
FIRST_ACCESS_TOKEN = "REDACTED-99389ffe"
FIRST_REFRESH_TOKEN = "REDACTED-4e944e33"
SECOND_ACCESS_TOKEN = "REDACTED-02e42bae"
SECOND_REFRESH_TOKEN = "REDACTED-44589792"
NON_EXPIRING_ACCESS_TOKEN = "REDACTED-fa89c897"
FORM_ACCESS_TOKEN = "REDACTED-f6f7edf5"
FORM_REFRESH_TOKEN = "REDACTED-2e5bc831"
#: Lifetimes GitHub sends: access 8 hours; refresh "six months", in two spellings (15897600
#: today, 15811200 before https://github.com/github/docs/pull/32165). Source:
#: https://github.com/github/docs/blob/main/data/reusables/apps/user-access-token-response-parameters.md
ACCESS_LIFETIME = 28800
REFRESH_LIFETIME_NOW = 15897600
REFRESH_LIFETIME_BEFORE = 15811200
#: What the app holds before a refresh; the body matcher only needs these fields present.
OLD_ACCESS_TOKEN = "ghu_fake_access_token_from_sign_in"
OLD_REFRESH_TOKEN = "ghr_fake_refresh_token_from_sign_in"
GITHUB_ERRORS = (
    "https://docs.github.com/apps/managing-oauth-apps/"
    "troubleshooting-oauth-app-access-token-request-errors/"
)

connect, driver = replay_fixtures(
    Replay(
        "github",
        VCR,
        REDIRECT_URI,
        code="code-from-the-callback",
        access_lifetime=ACCESS_LIFETIME,
    )
)


def signed_in_tokens(
    clock: FakeClock, access: str = OLD_ACCESS_TOKEN, refresh: str = OLD_REFRESH_TOKEN
) -> keyturn.TokenSet:
    """An expiring GitHub App user token pair, its access token now due for a refresh."""
    return keyturn.TokenSet.model_validate(
        {
            "provider": "github",
            "access_token": access,
            "token_type": "Bearer",
            "expires_at": int(clock.now) - 1,
            "refresh_token": refresh,
            "refresh_token_expires_at": int(clock.now) + 1000,
            "scope": (),
        }
    )


def secret(value: Any) -> str:
    assert value is not None
    return str(value.get_secret_value())


# -- code exchange ------------------------------------------------------------------------


async def test_exchange_code_reads_an_expiring_github_app_token(
    driver: Driver, clock: FakeClock
) -> None:
    request = driver.authorize_url()
    with driver.play("exchange_code"):
        tokens = await driver.exchange_code(request, "code-from-the-callback")
    assert tokens.provider == "github"
    assert secret(tokens.access_token) == EXCHANGED_ACCESS_TOKEN
    assert secret(tokens.refresh_token) == EXCHANGED_REFRESH_TOKEN
    assert tokens.expires_at == clock.now + ACCESS_LIFETIME
    assert tokens.refresh_token_expires_at == clock.now + REFRESH_LIFETIME_NOW
    assert tokens.scope == ()  # GitHub App user tokens: always ""
    assert tokens.token_type == "Bearer"  # GitHub writes "bearer"
    assert tokens.id_token is None
    assert tokens.extra == {}


async def test_a_refresh_token_past_its_own_expiry_is_never_sent(
    driver: Driver, clock: FakeClock
) -> None:
    request = driver.authorize_url()
    with driver.play("exchange_code"):
        tokens = await driver.exchange_code(request, "code-from-the-callback")
        # Six months later: keyturn refuses before any request (the cassette holds no
        # second interaction, so a request would fail the test).
        clock.advance(REFRESH_LIFETIME_NOW)
        with pytest.raises(keyturn.RefreshTokenUnusable) as caught:
            await driver.refresh(tokens)
    assert caught.value.error == "refresh_token_expired"
    assert caught.value.permanent
    assert EXCHANGED_REFRESH_TOKEN not in str(caught.value)


async def test_a_token_without_expiry_is_never_refreshed(driver: Driver, clock: FakeClock) -> None:
    request = driver.authorize_url()
    query = {"state": request.state.get_secret_value(), "code": "code-from-the-callback"}
    with driver.play("exchange_non_expiring") as cassette:
        token = await driver.sign_in(request, query)
        assert token.tokens.expires_at is None
        assert token.tokens.refresh_token is None
        assert token.tokens.scope == ("read:user", "user:email")  # "read:user,user:email"
        assert secret(token.tokens.access_token) == NON_EXPIRING_ACCESS_TOKEN
        clock.advance(10 * 365 * 24 * 3600)
        later = await driver.jwt(token)
        assert cassette.play_count == 1  # the jwt callback sent nothing
    assert later == token
    assert driver.client.session(later).error is None


async def test_exchange_error_at_http_200_is_a_permanent_oauth_error(driver: Driver) -> None:
    request = driver.authorize_url()
    with driver.play("exchange_error_200"), pytest.raises(keyturn.OAuthError) as caught:
        await driver.exchange_code(request, "code-from-the-callback")
    error = caught.value
    assert (error.error, error.status, error.permanent) == ("bad_verification_code", 200, True)
    assert error.description == "The code passed is incorrect or expired."
    assert error.details == {"error_uri": GITHUB_ERRORS + "#bad-verification-code"}
    assert error.operation == "exchange_code"


async def test_a_form_encoded_token_response_is_read_by_its_content_type(
    connect: Connect, clock: FakeClock
) -> None:
    # Without "Accept: application/json" GitHub answers form-encoded ("By default, the
    # response takes the following form", "Authorizing OAuth apps",
    # https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps
    # ); this spec leaves the header out, as the cassette's request does.
    driver = connect(providers=[GITHUB.model_copy(update={"token_request_headers": {}})])
    request = driver.authorize_url()
    with driver.play("form_encoded_response"):
        tokens = await driver.exchange_code(request, "code-from-the-callback")
    assert secret(tokens.access_token) == FORM_ACCESS_TOKEN
    assert secret(tokens.refresh_token) == FORM_REFRESH_TOKEN
    assert tokens.expires_at == clock.now + ACCESS_LIFETIME  # "28800", a string in a form
    assert tokens.refresh_token_expires_at == clock.now + REFRESH_LIFETIME_NOW
    assert tokens.scope == ("read:user", "user:email")
    assert tokens.token_type == "Bearer"
    assert tokens.extra == {}


# -- refresh ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "sent", "access", "refresh", "refresh_lifetime"),
    [
        (
            "refresh_ok",
            EXCHANGED_REFRESH_TOKEN,
            FIRST_ACCESS_TOKEN,
            FIRST_REFRESH_TOKEN,
            REFRESH_LIFETIME_BEFORE,
        ),
        (
            "refresh_rotated",
            FIRST_REFRESH_TOKEN,
            SECOND_ACCESS_TOKEN,
            SECOND_REFRESH_TOKEN,
            REFRESH_LIFETIME_NOW,
        ),
    ],
)
async def test_refresh_replaces_the_refresh_token_with_the_rotated_one(
    driver: Driver,
    clock: FakeClock,
    scenario: str,
    sent: str,
    access: str,
    refresh: str,
    refresh_lifetime: int,
) -> None:
    old = signed_in_tokens(clock, refresh=sent)
    with driver.play(scenario) as cassette:
        tokens = await driver.refresh(old)
    assert secret(tokens.access_token) == access
    assert secret(tokens.refresh_token) == refresh
    assert tokens.refresh_token != old.refresh_token
    assert tokens.expires_at == clock.now + ACCESS_LIFETIME
    # Read from the response, whichever of GitHub's two values it carries.
    assert tokens.refresh_token_expires_at == clock.now + refresh_lifetime
    assert tokens.refresh_token_expires_at != old.refresh_token_expires_at
    assert tokens.scope == ()
    assert tokens.token_type == "Bearer"
    assert f"refresh_token={sent}" in cassette.requests[0].body.decode()


REFRESH_FAILURES = {
    "refresh_invalid_grant": Failure(
        keyturn.OAuthError,
        "bad_refresh_token",
        200,
        True,
        "The refresh token passed is incorrect or expired.",
    ),
    "refresh_error_200": Failure(
        keyturn.OAuthError,
        "incorrect_client_credentials",
        200,
        True,
        "The client_id and/or client_secret passed are incorrect.",
    ),
    # An HTML 503 page carries no OAuth error: an unusable answer, worth retrying.
    "refresh_transient": Failure(
        keyturn.InvalidResponseError,
        "http_error",
        503,
        False,
        "HTTP 503 with a text/html body and no OAuth error",
    ),
}


test_refresh_failure_is_classified = refresh_failure_test(REFRESH_FAILURES, signed_in_tokens)


# -- userinfo and revoke ------------------------------------------------------------------


async def test_userinfo_with_a_public_email_needs_one_request(
    driver: Driver, clock: FakeClock
) -> None:
    with driver.play("userinfo") as cassette:
        profile = await driver.userinfo(signed_in_tokens(clock))
    assert cassette.play_count == 1
    assert isinstance(profile, keyturn.Profile)
    assert profile.id == "1000001"  # GitHub's numeric id, as text
    assert profile.name == "Example User"
    assert profile.email == "user@example.com"
    assert profile.email_verified is None  # /user does not say
    assert profile.image == "https://avatars.githubusercontent.com/u/1000001?v=4"
    assert profile.raw["login"] == "example-user"


async def test_userinfo_with_a_private_email_asks_the_address_list(
    driver: Driver, clock: FakeClock
) -> None:
    with driver.play("userinfo_private_email") as cassette:
        profile = await driver.userinfo(signed_in_tokens(clock))
    assert [request.uri for request in cassette.requests] == [
        "https://api.github.com/user",
        "https://api.github.com/user/emails",
    ]
    assert profile.id == "1000001"
    assert profile.name == "example-user"  # no name set: the login stands in
    assert profile.email == "user@example.com"  # the primary verified one of three
    assert profile.email_verified is True
    assert profile.raw["email"] is None


async def test_revoke_deletes_the_grant(driver: Driver, clock: FakeClock) -> None:
    tokens = signed_in_tokens(clock, access=EXCHANGED_ACCESS_TOKEN)
    with driver.play("revoke") as cassette:
        result = await driver.revoke(tokens)
    assert result is None
    assert cassette.requests[0].method == "DELETE"


async def test_revoke_without_the_client_secret_sends_nothing(
    connect: Connect, clock: FakeClock
) -> None:
    driver = connect((CLIENT_ID, None))
    with (
        VCR.use_cassette("revoke.yaml") as cassette,
        pytest.raises(keyturn.ConfigurationError, match="client secret"),
    ):
        await driver.revoke(signed_in_tokens(clock))
    assert cassette.play_count == 0
    assert driver.sent == []


# -- the jwt callback over a whole sign-in ------------------------------------------------


async def test_jwt_follows_the_rotation_chain(driver: Driver, clock: FakeClock) -> None:
    token = await driver.signed_in_jwt(clock)
    with driver.play("refresh_ok"):
        first = await driver.jwt(token)
    assert first.error is None and first.refresh_failure is None
    assert secret(first.tokens.access_token) == FIRST_ACCESS_TOKEN
    assert secret(first.tokens.refresh_token) == FIRST_REFRESH_TOKEN
    assert first.tokens.refresh_token_expires_at == clock.now + REFRESH_LIFETIME_BEFORE
    # Still fresh: a read, and nothing is sent.
    sent = len(driver.sent)
    assert await driver.jwt(first) == first
    assert len(driver.sent) == sent
    clock.advance(ACCESS_LIFETIME - 30)
    with driver.play("refresh_rotated"):  # sends the refresh token refresh_ok returned
        second = await driver.jwt(first)
    assert secret(second.tokens.access_token) == SECOND_ACCESS_TOKEN
    assert secret(second.tokens.refresh_token) == SECOND_REFRESH_TOKEN
    assert second.tokens.refresh_token_expires_at == clock.now + REFRESH_LIFETIME_NOW
    session = driver.client.session(second)
    assert session.error is None
    assert session.access_token == second.tokens.access_token


async def test_jwt_after_bad_refresh_token_asks_for_a_new_sign_in(
    driver: Driver, clock: FakeClock
) -> None:
    token = await driver.signed_in_jwt(clock)
    # Once failed for good, keyturn stops asking GitHub (no second interaction exists).
    failed = await driver.jwt_fails_for_good(token, "refresh_invalid_grant")
    assert failed.refresh_failure is not None
    assert (failed.refresh_failure.error, failed.refresh_failure.status) == (
        "bad_refresh_token",
        200,
    )


async def test_jwt_after_a_transient_failure_keeps_the_session(
    driver: Driver, clock: FakeClock
) -> None:
    token = await driver.signed_in_jwt(clock)
    failed = await driver.jwt_fails_for_now(token, "refresh_transient")
    assert failed.refresh_failure is not None
    assert failed.refresh_failure.status == 503


# -- keyturn's conformance suite on the same cassettes ------------------------------------


class TestGitHubConformance(ProviderConformance):
    provider = "github"
    cassettes = CASSETTES / "github"
