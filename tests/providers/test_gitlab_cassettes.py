"""GitLab's token endpoint, replayed from cassettes/gitlab/.

The cassettes are written from GitLab's documentation (provenance in cassettes/README.md) and
replay with record_mode "none": a request keyturn sends that a cassette does not hold fails
the test. Every test runs four times: Keyturn over httpx.Client and httpx2.Client, AsyncKeyturn
over httpx.AsyncClient and httpx2.AsyncClient.

What keyturn-gitlab adds to keyturn's defaults is checked here through the clients: the
instance as a deployment setting (``exchange_self_managed``), the expiry derived from
``created_at`` when ``expires_in`` is absent (``exchange_no_expires_in``,
``refresh_no_expires_in``), and rotation (``refresh_ok``, ``refresh_rotated``).

The spec has GitLab's ``jwks_uri``, so keyturn reads the key set before each exchange and
refresh and verifies every ID token against it: each token cassette holds that GET, answered
with a key made for the cassettes (``kid`` ``keyturn-cassette-gitlab-1``, private half thrown
away), which signs ``exchange_code``'s ID token.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml
from joserfc.jwk import RSAKey
from joserfc.jws import JWSRegistry
from pydantic import SecretStr

import keyturn
from keyturn import flows
from keyturn.idtoken import unverified_claims
from keyturn_gitlab import DEFAULT_LIFETIME, GITLAB
from pytest_keyturn.cassettes import make_vcr
from pytest_keyturn.signing import token_header
from tests.conftest import CLIENT_SECRET, FakeClock

from ._replay import Connect, Driver, Failure, Replay, refresh_failure_test, replay_fixtures
from .test_gitlab import GITLAB_CASSETTES, GITLAB_CLIENT_ID, VCR

REDIRECT_URI = "https://app.example.com/auth/callback/gitlab"
#: The nonce in exchange_code's id_token (OpenID Connect Core's example value).
NONCE = "n-0S6_WzA2Mj"
CODE = "REDACTED-9221d611"
#: Placeholder token values in the cassettes (keyturn's scrubber writes this form).
EXCHANGED_REFRESH_TOKEN = "REDACTED-bc7042e6"
FIRST_ACCESS_TOKEN = "REDACTED-d857c4f5"
FIRST_REFRESH_TOKEN = "REDACTED-7046a692"
SECOND_ACCESS_TOKEN = "REDACTED-a7152671"
SECOND_REFRESH_TOKEN = "REDACTED-98237ca8"
#: The key id of the key made for the cassettes, which their key sets serve.
CASSETTE_KID = "keyturn-cassette-gitlab-1"

connect, _ = replay_fixtures(
    Replay(
        "gitlab",
        VCR,
        REDIRECT_URI,
        code=CODE,
        access_lifetime=7200,
        authorize={"nonce": NONCE},
    )
)

assert GITLAB_CASSETTES.is_dir()


@pytest.fixture
def driver(connect: Connect) -> Driver:
    """A driver with the client id the cassettes were written for."""
    return connect((GITLAB_CLIENT_ID, CLIENT_SECRET))


def secret(value: object) -> str:
    assert isinstance(value, SecretStr)
    return value.get_secret_value()


def signed_in_tokens(clock: FakeClock, refresh: str = EXCHANGED_REFRESH_TOKEN) -> keyturn.TokenSet:
    """Tokens as a sign-in left them, now due for a refresh."""
    return keyturn.TokenSet.model_validate(
        {
            "provider": "gitlab",
            "access_token": "access-token-from-sign-in",
            "expires_at": int(clock.now) - 1,
            "refresh_token": refresh,
        }
    )


# -- code exchange ------------------------------------------------------------------------


async def test_exchange_code_reads_gitlabs_token_response(driver: Driver, clock: FakeClock) -> None:
    request = driver.authorize_url(nonce=NONCE)
    assert request.url.startswith("https://gitlab.com/oauth/authorize?")
    with driver.play("exchange_code"):
        tokens = await driver.exchange_code(request, CODE)
    assert secret(tokens.refresh_token) == EXCHANGED_REFRESH_TOKEN
    # expires_in is there: it wins over created_at, as keyturn reads it for every provider.
    assert tokens.expires_at == clock.now + 7200
    assert tokens.token_type == "Bearer"
    assert tokens.scope == ("openid", "profile", "email")
    assert tokens.extra["created_at"] == 1800000000
    assert tokens.id_token is not None
    id_token = tokens.id_token.get_secret_value()
    assert token_header(id_token) == {"alg": "RS256", "kid": CASSETTE_KID, "typ": "JWT"}
    claims = unverified_claims(id_token)
    assert (claims["iss"], claims["aud"], claims["nonce"]) == (
        "https://gitlab.com",
        GITLAB_CLIENT_ID,
        NONCE,
    )


async def test_an_exchange_reads_the_key_set_at_gitlabs_jwks_uri(driver: Driver) -> None:
    request = driver.authorize_url(nonce=NONCE)
    with driver.play("exchange_code") as cassette:  # each of its interactions must play
        await driver.exchange_code(request, CODE)
    assert {(held.method, held.uri) for held in cassette.requests} == {
        ("GET", "https://gitlab.com/oauth/discovery/keys"),
        ("POST", "https://gitlab.com/oauth/token"),
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed_by_a_stranger(folder: Path) -> None:
    """``exchange_code.yaml`` copied into ``folder``, its ID token's header and claims kept and
    signed again with a new RSA key the cassette's key set does not hold."""
    source = GITLAB_CASSETTES / "exchange_code.yaml"
    cassette = yaml.safe_load(source.read_text("utf-8"))
    token_answer = next(
        i["response"] for i in cassette["interactions"] if i["request"]["method"] == "POST"
    )
    body = json.loads(token_answer["body"]["string"])
    header, claims, _ = body["id_token"].split(".")
    stranger = RSAKey.generate_key(2048, private=True)
    signature = JWSRegistry.algorithms["RS256"].sign(f"{header}.{claims}".encode(), stranger)
    body["id_token"] = f"{header}.{claims}.{_b64(signature)}"
    token_answer["body"]["string"] = json.dumps(body)
    (folder / "exchange_code.yaml").write_text(yaml.safe_dump(cassette), "utf-8")


async def test_an_id_token_signed_with_another_key_is_refused(
    driver: Driver, tmp_path: Path
) -> None:
    # Same kid, same claims, same nonce: only the signature is not the key set's key's.
    _signed_by_a_stranger(tmp_path)
    request = driver.authorize_url(nonce=NONCE)
    with (
        make_vcr(tmp_path).use_cassette("exchange_code.yaml") as cassette,
        pytest.raises(keyturn.IdTokenError, match="signature") as caught,
    ):
        await driver.exchange_code(request, CODE)
    assert cassette.all_played
    assert EXCHANGED_REFRESH_TOKEN not in str(caught.value)


async def test_an_exchange_without_expires_in_expires_two_hours_after_created_at(
    driver: Driver, clock: FakeClock
) -> None:
    request = driver.authorize_url(nonce=NONCE)
    with driver.play("exchange_no_expires_in"):
        tokens = await driver.exchange_code(request, CODE)
    # created_at is 10 s before the clock: the token is that much older.
    assert tokens.extra["created_at"] == clock.now - 10
    assert tokens.expires_at == clock.now - 10 + DEFAULT_LIFETIME
    # Without the plugin's hook keyturn would read "never expires".
    assert tokens.expires_at is not None


async def test_a_refresh_without_expires_in_expires_two_hours_after_created_at(
    driver: Driver, clock: FakeClock
) -> None:
    clock.set(1800014000)  # the cassette's created_at: the server's clock and ours agree
    with driver.play("refresh_no_expires_in"):
        tokens = await driver.refresh(signed_in_tokens(clock, refresh=FIRST_REFRESH_TOKEN))
    assert secret(tokens.refresh_token) == "REDACTED-b52a4055"
    assert tokens.expires_at == clock.now + DEFAULT_LIFETIME


async def test_a_created_at_from_a_clock_far_behind_does_not_expire_the_token_at_once(
    driver: Driver, clock: FakeClock
) -> None:
    # The cassette says created_at 1800014000; ours reads a day later. Taken at its word the
    # token would have expired 22 hours ago and every request would refresh it again.
    clock.set(1800014000 + 86400)
    with driver.play("refresh_no_expires_in"):
        tokens = await driver.refresh(signed_in_tokens(clock, refresh=FIRST_REFRESH_TOKEN))
    assert tokens.expires_at is not None
    assert tokens.expires_at > clock.now + 60  # not due at once
    assert tokens.expires_at <= clock.now + DEFAULT_LIFETIME


async def test_a_created_at_from_a_clock_ahead_does_not_lengthen_the_token(
    driver: Driver, clock: FakeClock
) -> None:
    clock.set(1800014000 - 86400)  # created_at lies a day in our future
    with driver.play("refresh_no_expires_in"):
        tokens = await driver.refresh(signed_in_tokens(clock, refresh=FIRST_REFRESH_TOKEN))
    assert tokens.expires_at == clock.now + DEFAULT_LIFETIME


async def test_a_self_managed_instance_is_reached_at_its_base_url(
    connect: Connect, clock: FakeClock
) -> None:
    deployed = flows.deploy(GITLAB, {"base_url": "https://gitlab.example.com"})
    driver = connect((GITLAB_CLIENT_ID, CLIENT_SECRET), providers=[deployed])
    request = driver.authorize_url()
    assert request.url.startswith("https://gitlab.example.com/oauth/authorize?")
    with driver.play("exchange_self_managed") as cassette:
        tokens = await driver.exchange_code(request, "REDACTED-9fbc9bfd")
    assert cassette.requests[0].uri == "https://gitlab.example.com/oauth/token"
    assert secret(tokens.refresh_token) == "REDACTED-1f751415"
    assert tokens.expires_at == clock.now + 7200


# -- refresh and rotation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "sent", "access", "refresh"),
    [
        ("refresh_ok", EXCHANGED_REFRESH_TOKEN, FIRST_ACCESS_TOKEN, FIRST_REFRESH_TOKEN),
        ("refresh_rotated", FIRST_REFRESH_TOKEN, SECOND_ACCESS_TOKEN, SECOND_REFRESH_TOKEN),
    ],
)
async def test_refresh_replaces_the_refresh_token_with_the_rotated_one(
    driver: Driver, clock: FakeClock, scenario: str, sent: str, access: str, refresh: str
) -> None:
    old = signed_in_tokens(clock, refresh=sent)
    with driver.play(scenario) as cassette:
        tokens = await driver.refresh(old)
    assert secret(tokens.access_token) == access
    assert secret(tokens.refresh_token) == refresh
    assert tokens.expires_at == clock.now + 7200
    body = cassette.requests[0].body.decode()
    assert f"refresh_token={sent}" in body
    assert "redirect_uri" not in body  # RFC 6749 §6 has none; see docs/providers/gitlab.md


REFRESH_FAILURES = {
    "refresh_invalid_grant": Failure(
        keyturn.OAuthError,
        "invalid_grant",
        400,
        True,
        "The provided authorization grant is invalid, expired, revoked, does not match the "
        "redirection URI used in the authorization request, or was issued to another client.",
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


async def test_jwt_follows_the_rotation_chain(driver: Driver, clock: FakeClock) -> None:
    token = await driver.signed_in_jwt(clock)
    with driver.play("refresh_ok"):
        first = await driver.jwt(token)
    assert first.error is None and first.refresh_failure is None
    assert secret(first.tokens.refresh_token) == FIRST_REFRESH_TOKEN
    clock.advance(7200 - 30)
    with driver.play("refresh_rotated"):  # sends the refresh token refresh_ok returned
        second = await driver.jwt(first)
    assert secret(second.tokens.access_token) == SECOND_ACCESS_TOKEN
    assert secret(second.tokens.refresh_token) == SECOND_REFRESH_TOKEN


async def test_jwt_after_a_spent_refresh_token_asks_for_a_new_sign_in(
    driver: Driver, clock: FakeClock
) -> None:
    token = await driver.signed_in_jwt(clock)
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
