"""Discord: Basic client authentication, rotating refresh tokens, rate limits, the user API.

The cassettes in cassettes/discord/ are written from Discord's documentation (provenance in
cassettes/README.md). Every replay test runs four times: Keyturn over httpx.Client and
httpx2.Client, AsyncKeyturn over httpx.AsyncClient and httpx2.AsyncClient. The last class runs
keyturn's conformance suite on the same cassettes.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

import keyturn
import keyturn_discord
from keyturn import HttpResponse
from pytest_keyturn import ProviderConformance
from pytest_keyturn.cassettes import make_vcr
from tests.conftest import CASSETTES, CLIENT_ID, CLIENT_SECRET, FakeClock

from ._replay import Driver, Failure, Replay, refresh_failure_test, replay_fixtures

VCR = make_vcr(CASSETTES / "discord")
REDIRECT_URI = "https://app.example.com/api/auth/callback/discord"
CODE = "code-from-the-callback"
#: Placeholders in the cassettes, as a token flows through them.
EXCHANGED_ACCESS, EXCHANGED_REFRESH = "REDACTED-8ec24448", "REDACTED-cd7578d4"
REFRESHED_ACCESS, REFRESHED_REFRESH = "REDACTED-37fbaccb", "REDACTED-1a8edba0"
WEEK = 604800
USER_ID = "80351110224678912"

connect, driver = replay_fixtures(
    Replay("discord", VCR, REDIRECT_URI, code=CODE, access_lifetime=WEEK)
)


def due_tokens(clock: FakeClock, refresh_token: str = EXCHANGED_REFRESH) -> keyturn.TokenSet:
    """Tokens as a sign-in left them, now due for a refresh."""
    return keyturn.TokenSet.model_validate(
        {
            "provider": "discord",
            "access_token": EXCHANGED_ACCESS,
            "expires_at": int(clock.now) - 1,
            "refresh_token": refresh_token,
            "scope": ("identify", "email"),
        }
    )


# -- what goes out --------------------------------------------------------------------------------


def test_the_client_authenticates_with_basic_and_never_in_the_form(clock: FakeClock) -> None:
    credentials = keyturn.ClientCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    flow = keyturn_discord.keyturn_refresh(
        provider=keyturn_discord.DISCORD,
        credentials=credentials,
        tokens=due_tokens(clock),
        clock=clock,
    )
    assert flow is not None
    request = next(flow)
    flow.close()
    assert request.url == "https://discord.com/api/oauth2/token"
    assert b"client_secret" not in request.body
    assert b"client_id" not in request.body
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


def test_the_authorize_url_asks_for_identify_and_email(driver: Driver) -> None:
    request = driver.authorize_url()
    assert request.url.startswith("https://discord.com/oauth2/authorize?")
    assert "scope=identify%20email" in request.url
    assert "code_challenge_method=S256" in request.url
    assert "nonce=" not in request.url


# -- exchange and refresh -----------------------------------------------------------------------


async def test_exchange_reads_a_week_long_access_token(driver: Driver, clock: FakeClock) -> None:
    request = driver.authorize_url()
    with driver.play("exchange_code"):
        tokens = await driver.exchange_code(request, CODE)
    assert tokens.access_token.get_secret_value() == EXCHANGED_ACCESS
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == EXCHANGED_REFRESH
    assert tokens.expires_at == clock.now + WEEK
    assert tokens.refresh_token_expires_at is None
    assert tokens.scope == ("identify", "email")
    assert tokens.id_token is None


async def test_refresh_keeps_the_refresh_token_the_answer_carries(
    driver: Driver, clock: FakeClock
) -> None:
    with driver.play("refresh_ok"):
        refreshed = await driver.refresh(due_tokens(clock))
    assert refreshed.access_token.get_secret_value() == REFRESHED_ACCESS
    assert refreshed.refresh_token is not None
    assert refreshed.refresh_token.get_secret_value() == REFRESHED_REFRESH
    assert refreshed.expires_at == clock.now + WEEK
    # The next refresh sends the new one (refresh_rotated holds exactly that request).
    with driver.play("refresh_rotated"):
        again = await driver.refresh(refreshed.model_copy(update={"expires_at": 0}))
    assert again.refresh_token is not None
    assert again.refresh_token.get_secret_value() not in {EXCHANGED_REFRESH, REFRESHED_REFRESH}


async def test_jwt_refreshes_a_due_sign_in_and_rotates(driver: Driver, clock: FakeClock) -> None:
    token = await driver.signed_in_jwt(clock)
    with driver.play("refresh_ok"):
        refreshed = await driver.jwt(token)
    assert refreshed.error is None
    assert refreshed.tokens.refresh_token is not None
    assert refreshed.tokens.refresh_token.get_secret_value() == REFRESHED_REFRESH


# -- errors and rate limits ---------------------------------------------------------------------

test_refresh_failures_are_classified = refresh_failure_test(
    {
        "refresh_invalid_grant": Failure(
            keyturn.OAuthError,
            "invalid_grant",
            400,
            True,
            'Invalid "refresh_token" in request.',
        ),
        "refresh_rate_limited": Failure(
            keyturn.InvalidResponseError,
            "rate_limited",
            429,
            False,
            "rate limited: You are being rate limited.",
        ),
        "refresh_rate_limited_body_only": Failure(
            keyturn.InvalidResponseError,
            "rate_limited",
            429,
            False,
            "rate limited: You are being rate limited.",
        ),
        "refresh_transient": Failure(
            keyturn.InvalidResponseError,
            "rate_limited",
            429,
            False,
            "rate limited: You are being rate limited.",
        ),
    },
    due_tokens,
)


@pytest.mark.parametrize(
    ("scenario", "wait", "is_global"),
    [
        # The header (3) wins over the body's 2.5.
        ("refresh_rate_limited", 3.0, "false"),
        # No header: the body's float.
        ("refresh_rate_limited_body_only", 2.5, "false"),
        ("refresh_transient", 2.0, "true"),
    ],
)
async def test_a_rate_limit_carries_how_long_to_wait(
    driver: Driver, clock: FakeClock, scenario: str, wait: float, is_global: str
) -> None:
    with driver.play(scenario), pytest.raises(keyturn.InvalidResponseError) as caught:
        await driver.refresh(due_tokens(clock))
    assert caught.value.retry_after == wait
    assert caught.value.details["global"] == is_global


async def test_jwt_keeps_the_session_through_a_rate_limit(driver: Driver, clock: FakeClock) -> None:
    token = await driver.signed_in_jwt(clock)
    failed = await driver.jwt_fails_for_now(token, "refresh_rate_limited")
    assert failed.refresh_failure is not None
    assert failed.refresh_failure.status == 429


def _response(status: int, body: bytes, **headers: str) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json", **headers}, body)


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"retry-after": "7"}, b'{"retry_after": 1.5}', 7.0),
        ({}, b'{"retry_after": 1.5}', 1.5),
        ({}, b'{"retry_after": 0}', 0.0),
        ({}, b'{"retry_after": 1e9}', keyturn.flows.MAX_RETRY_AFTER),
        ({"retry-after": "soon"}, b'{"retry_after": 4}', 4.0),
        ({}, b'{"retry_after": -1}', None),
        ({}, b'{"retry_after": "2"}', None),
        ({}, b'{"retry_after": true}', None),
        ({}, b"[1, 2]", None),
        ({}, b"<html>slow down</html>", None),
        ({}, b"", None),
    ],
)
def test_retry_after_from_the_header_else_the_body(
    headers: dict[str, str], body: bytes, expected: float | None
) -> None:
    error = keyturn_discord.rate_limited(
        keyturn_discord.DISCORD, "refresh", _response(429, body, **headers)
    )
    assert error.retry_after == expected
    assert not error.permanent
    assert error.status == 429


def test_a_rate_limit_message_is_kept_short() -> None:
    body = b'{"message": "' + b"x" * 5000 + b'", "global": "yes"}'
    error = keyturn_discord.rate_limited(keyturn_discord.DISCORD, "userinfo", _response(429, body))
    assert error.description is not None
    assert len(error.description) < 250
    assert "global" not in error.details  # not a boolean: not repeated


# -- userinfo -------------------------------------------------------------------------------------


async def test_userinfo_reads_the_current_user(driver: Driver, clock: FakeClock) -> None:
    with driver.play("userinfo"):
        profile = await driver.userinfo(due_tokens(clock))
    assert profile.id == USER_ID
    assert profile.name == "Example User"  # global_name, the display name
    assert (profile.email, profile.email_verified) == ("user@example.com", True)
    assert profile.image == (
        f"https://cdn.discordapp.com/avatars/{USER_ID}/8342729096ea3675442027381ff50dfe.png"
    )
    assert profile.raw["username"] == "example"


async def test_userinfo_with_identify_alone_has_no_email_and_a_default_avatar(
    driver: Driver, clock: FakeClock
) -> None:
    with driver.play("userinfo_identify_only"):
        profile = await driver.userinfo(due_tokens(clock))
    assert (profile.email, profile.email_verified) == (None, None)
    assert profile.name == "example"  # no global_name: the username
    index = (int(USER_ID) >> 22) % 6
    assert profile.image == f"https://cdn.discordapp.com/embed/avatars/{index}.png"


@pytest.mark.parametrize(
    ("user", "image"),
    [
        ({"id": "1", "avatar": "a_abc"}, "https://cdn.discordapp.com/avatars/1/a_abc.gif"),
        (
            {"id": "1", "avatar": None, "discriminator": "1337"},
            "https://cdn.discordapp.com/embed/avatars/2.png",
        ),
        ({"id": "1", "avatar": "../../evil"}, None),
        ({"id": "not-a-snowflake", "avatar": "abc"}, None),
        ({"avatar": "abc"}, None),
    ],
)
def test_avatar_urls(user: dict[str, Any], image: str | None) -> None:
    assert keyturn_discord.avatar_url(user) == image


def test_a_user_without_an_id_is_an_unusable_answer() -> None:
    response = _response(200, b'{"username": "example"}')
    with pytest.raises(keyturn.InvalidResponseError) as caught:
        keyturn_discord.profile(keyturn_discord.DISCORD, response, {"username": "example"})
    assert not caught.value.permanent


# -- revoke ---------------------------------------------------------------------------------------


async def test_revoke_posts_the_refresh_token(driver: Driver, clock: FakeClock) -> None:
    with driver.play("revoke"):
        assert await driver.revoke(due_tokens(clock)) is None


# -- keyturn's conformance suite on the same cassettes ---------------------------------------------


class TestDiscordConformance(ProviderConformance):
    provider = "discord"
    cassettes = CASSETTES / "discord"
    # Basic authentication: the cassettes' requests show no client id, so the suite uses this.
    client_id = CLIENT_ID
    redirect_uri = REDIRECT_URI
