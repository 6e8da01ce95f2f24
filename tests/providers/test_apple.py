"""Sign in with Apple: the client secret JWT, the spec, and cassettes/apple/ replayed.

The cassettes are written from Apple's documentation (provenance in cassettes/README.md) and
replay with record_mode "none": a request keyturn sends that a cassette does not hold fails.
Every replay test runs four times: Keyturn over httpx.Client and httpx2.Client, AsyncKeyturn
over httpx.AsyncClient and httpx2.AsyncClient. Apple's client secret is an ES256 JWT the
plugin signs for every request
(https://developer.apple.com/documentation/signinwithapplerestapi/generate-and-validate-tokens);
the cassettes hold it as ``client_secret=REDACTED``, and the tests below check the JWT itself.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey

import keyturn
from keyturn.callback_user import MAX_USER_FIELD
from keyturn_apple import APPLE, CLIENT_SECRET_LIFETIME, MAX_CLIENT_SECRET_LIFETIME
from pytest_keyturn import ProviderConformance
from pytest_keyturn.cassettes import make_vcr
from tests.conftest import CASSETTES, FakeClock

from ._replay import Driver, Failure, Replay, refresh_failure_test, replay_fixtures

VCR = make_vcr(CASSETTES / "apple")

SERVICES_ID = "com.example.web"
TEAM_ID = "ABCDE12345"
KEY_ID = "XYZ987ABCD"
REDIRECT_URI = "https://app.example.com/auth/callback/apple"
NONCE = "n-0S6_WzA2Mj"
APPLE_SUB = "001234.5b3a3bdf9c0b4f049c1471cae1cd1d8d.0001"
PRIVATE_EMAIL = "k7x2q9w4m1@privaterelay.appleid.com"
EXCHANGED_ACCESS_TOKEN = "REDACTED-bea78c67"
REFRESH_TOKEN = "REDACTED-c653f6ae"
REFRESHED_ACCESS_TOKEN = "REDACTED-6b52fb7b"
#: The exchange's ID token was issued at this time (its iat).
ISSUED = 1_800_000_000


def _p8() -> str:
    """A new P-256 key in the PKCS #8 PEM form of Apple's .p8 files."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


PRIVATE_KEY = _p8()
CREDENTIALS = keyturn.ClientCredentials(
    client_id=SERVICES_ID, private_key=PRIVATE_KEY, private_key_id=KEY_ID
)

connect, driver = replay_fixtures(
    Replay(
        "apple",
        VCR,
        REDIRECT_URI,
        code="c1f6c4f8.0.rsza.code-from-the-callback",
        access_lifetime=3600,
        authorize={"nonce": NONCE},
        settings={"team_id": TEAM_ID},
        credentials=CREDENTIALS,
    )
)


@pytest.fixture(autouse=True)
def _at_issue_time(clock: FakeClock) -> None:
    clock.set(ISSUED)


def due_tokens(clock: FakeClock) -> keyturn.TokenSet:
    return keyturn.TokenSet.model_validate(
        {
            "provider": "apple",
            "access_token": "access-token-from-sign-in",
            "expires_at": int(clock.now) - 1,
            "refresh_token": REFRESH_TOKEN,
        }
    )


def _public_key() -> ECKey:
    pem = serialization.load_pem_private_key(PRIVATE_KEY.encode(), None).public_key()
    public = pem.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ECKey.import_key(public)


def _client(clock: Any = None, **options: Any) -> keyturn.Keyturn:
    options.setdefault("settings", {"apple": {"team_id": TEAM_ID}})
    return keyturn.Keyturn(
        {"apple": options.pop("credentials", CREDENTIALS)},
        environ=options.pop("environ", {}),
        clock=clock or FakeClock(ISSUED),
        **options,
    )


# -- the spec ------------------------------------------------------------------------------


def test_spec_encodes_apples_documented_behaviour() -> None:
    assert APPLE.authorization_endpoint == "https://appleid.apple.com/auth/authorize"
    assert APPLE.token_endpoint == "https://appleid.apple.com/auth/token"
    assert APPLE.revocation_endpoint == "https://appleid.apple.com/auth/revoke"
    assert APPLE.jwks_uri == "https://appleid.apple.com/auth/keys"
    assert APPLE.issuer == "https://appleid.apple.com"
    assert APPLE.userinfo_endpoint is None
    assert APPLE.id_token_signing_algs == {"RS256"}
    assert APPLE.rotation == "none" and not APPLE.rotates_refresh_tokens
    assert APPLE.authorize_params["response_mode"] == "form_post"
    assert [s.name for s in APPLE.settings] == ["team_id"]


def test_authorize_url_asks_for_form_post_name_and_email() -> None:
    with _client() as kt:
        request = kt.authorize_url("apple", REDIRECT_URI)
    query = parse_qs(urlsplit(request.url).query)
    assert query["response_mode"] == ["form_post"]
    assert query["scope"] == ["openid name email"]
    assert query["response_type"] == ["code"]
    assert "code_challenge" not in query  # Apple lists no PKCE method
    assert request.nonce is not None and query["nonce"] == [request.nonce.get_secret_value()]


# -- the client secret JWT -----------------------------------------------------------------


def test_client_secret_is_an_es256_jwt_with_apples_claims() -> None:
    clock = FakeClock(ISSUED)
    with _client(clock) as kt:
        credentials = kt._request_credentials(kt.provider("apple"))
    assert credentials.client_secret is not None
    secret = credentials.client_secret.get_secret_value()
    token = jwt.decode(secret, _public_key(), algorithms=["ES256"])
    assert token.header["alg"] == "ES256"
    assert token.header["kid"] == KEY_ID
    assert token.claims == {
        "iss": TEAM_ID,
        "sub": SERVICES_ID,
        "aud": "https://appleid.apple.com",
        "iat": ISSUED,
        "exp": ISSUED + CLIENT_SECRET_LIFETIME,
    }
    assert token.claims["exp"] - token.claims["iat"] < MAX_CLIENT_SECRET_LIFETIME


def test_a_new_client_secret_is_minted_for_each_request() -> None:
    clock = FakeClock(ISSUED)
    with _client(clock) as kt:
        spec = kt.provider("apple")
        first = kt._request_credentials(spec).client_secret
        clock.advance(10)
        second = kt._request_credentials(spec).client_secret
    assert first is not None and second is not None
    later = jwt.decode(second.get_secret_value(), _public_key(), algorithms=["ES256"])
    assert later.claims["iat"] == ISSUED + 10
    assert first.get_secret_value() != second.get_secret_value()


def test_static_client_secret_is_refused() -> None:
    credentials = keyturn.ClientCredentials(
        client_id=SERVICES_ID,
        client_secret="a-static-secret-value",
        private_key=PRIVATE_KEY,
        private_key_id=KEY_ID,
    )
    with (
        _client(credentials=credentials) as kt,
        pytest.raises(keyturn.ConfigurationError, match="static client secret") as caught,
    ):
        kt._request_credentials(kt.provider("apple"))
    assert "a-static-secret-value" not in str(caught.value)


def test_static_secret_from_the_environment_is_refused() -> None:
    environ = {
        "KEYTURN_APPLE_CLIENT_ID": SERVICES_ID,
        "KEYTURN_APPLE_CLIENT_SECRET": "eyJhbGciOiJFUzI1NiJ9.handmade.secret",
        "KEYTURN_APPLE_TEAM_ID": TEAM_ID,
    }
    with (
        keyturn.Keyturn(environ=environ) as kt,
        pytest.raises(keyturn.ConfigurationError, match="KEYTURN_APPLE_CLIENT_SECRET"),
    ):
        kt._request_credentials(kt.provider("apple"))


def test_missing_team_id_names_the_variable() -> None:
    with (
        _client(settings={}) as kt,
        pytest.raises(keyturn.ConfigurationError, match="KEYTURN_APPLE_TEAM_ID"),
    ):
        kt.authorize_url("apple", REDIRECT_URI)


def test_team_id_from_the_environment() -> None:
    environ = {
        "KEYTURN_APPLE_CLIENT_ID": SERVICES_ID,
        "KEYTURN_APPLE_TEAM_ID": "TEAMFROMENV",
        "KEYTURN_APPLE_PRIVATE_KEY": PRIVATE_KEY,
        "KEYTURN_APPLE_PRIVATE_KEY_ID": KEY_ID,
    }
    with keyturn.Keyturn(environ=environ, clock=FakeClock(ISSUED)) as kt:
        secret = kt._request_credentials(kt.provider("apple")).client_secret
    assert secret is not None
    claims = jwt.decode(secret.get_secret_value(), _public_key(), algorithms=["ES256"]).claims
    assert claims["iss"] == "TEAMFROMENV"


def test_missing_key_and_key_id_are_named() -> None:
    no_key = keyturn.ClientCredentials(client_id=SERVICES_ID)
    with (
        _client(credentials=no_key) as kt,
        pytest.raises(keyturn.ConfigurationError, match="KEYTURN_APPLE_PRIVATE_KEY_FILE"),
    ):
        kt._request_credentials(kt.provider("apple"))
    no_kid = keyturn.ClientCredentials(client_id=SERVICES_ID, private_key=PRIVATE_KEY)
    with (
        _client(credentials=no_kid) as kt,
        pytest.raises(keyturn.ConfigurationError, match="KEYTURN_APPLE_PRIVATE_KEY_ID"),
    ):
        kt._request_credentials(kt.provider("apple"))


def test_credentials_repr_shows_no_key() -> None:
    with _client() as kt:
        credentials = kt._request_credentials(kt.provider("apple"))
    assert credentials.client_secret is not None
    shown = repr(credentials) + str(credentials)
    assert credentials.client_secret.get_secret_value() not in shown
    assert "PRIVATE KEY" not in shown


# -- replayed ------------------------------------------------------------------------------


async def test_exchange_code_verifies_the_id_token(driver: Driver) -> None:
    request = driver.authorize_url(nonce=NONCE)
    with driver.play("exchange_code"):
        tokens = await driver.exchange_code(request, "c1f6c4f8.0.rsza.code-from-the-callback")
    assert tokens.access_token.get_secret_value() == EXCHANGED_ACCESS_TOKEN
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == REFRESH_TOKEN
    assert tokens.expires_at == ISSUED + 3600
    assert tokens.id_token is not None


async def test_sign_in_reads_the_profile_from_the_id_token_and_the_user_field(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    request = driver.authorize_url(nonce=NONCE)
    form = {
        "state": request.state.get_secret_value(),
        "code": "c1f6c4f8.0.rsza.code-from-the-callback",
        # Apple's first-authorization field: display only, never identity.
        "user": '{"name":{"firstName":"Ada","lastName":"Lovelace"},"email":"ada@evil.example"}',
    }
    with driver.play("exchange_code"):
        token = await driver.call("sign_in", request, form)
    user = token.user
    assert user is not None
    assert user.id == APPLE_SUB
    assert user.email == PRIVATE_EMAIL  # the ID token's, not the form's
    assert user.email_verified is True  # Apple's "true" string
    assert user.name == "Ada Lovelace"
    assert user.raw["is_private_email"] == "true"
    assert user.raw["user"]["email"] == "ada@evil.example"


@pytest.mark.parametrize(
    "field",
    ["not json", "[1, 2]", '{"name": "Ada"}', "x" * (MAX_USER_FIELD + 1)],
    ids=["not-json", "not-object", "no-parts", "too-big"],
)
async def test_a_bad_user_field_is_ignored_with_a_log_line(
    driver: Driver, caplog: pytest.LogCaptureFixture, field: str
) -> None:
    request = driver.authorize_url(nonce=NONCE)
    form = {
        "state": request.state.get_secret_value(),
        "code": "c1f6c4f8.0.rsza.code-from-the-callback",
        "user": field,
    }
    with caplog.at_level(logging.WARNING, "keyturn.callback_user"), driver.play("exchange_code"):
        token = await driver.call("sign_in", request, form)
    assert token.user is not None and token.user.id == APPLE_SUB
    assert token.user.name is None and "user" not in token.user.raw
    assert any("user field" in r.getMessage() for r in caplog.records)
    assert all(field not in r.getMessage() for r in caplog.records)


async def test_refresh_keeps_the_refresh_token(driver: Driver, clock: FakeClock) -> None:
    old = due_tokens(clock)
    with driver.play("refresh_ok"):
        new = await driver.refresh(old)
    assert new.access_token.get_secret_value() == REFRESHED_ACCESS_TOKEN
    assert new.refresh_token == old.refresh_token
    assert new.expires_at == int(clock.now) + 3600
    assert new.id_token is None


async def test_invalid_client_says_it_is_a_configuration_problem(
    driver: Driver, clock: FakeClock
) -> None:
    with driver.play("refresh_invalid_client"), pytest.raises(keyturn.OAuthError) as caught:
        await driver.refresh(due_tokens(clock))
    error = caught.value
    assert error.error == "invalid_client" and error.permanent and error.status == 400
    assert "configuration problem" in str(error)
    assert "KEYTURN_APPLE_TEAM_ID" in str(error)
    assert REFRESH_TOKEN not in str(error)


async def test_revoke_posts_the_refresh_token(driver: Driver, clock: FakeClock) -> None:
    with driver.play("revoke"):
        assert await driver.revoke(due_tokens(clock)) is None


test_refresh_failure_is_classified = refresh_failure_test(
    {
        "refresh_invalid_grant": Failure(keyturn.OAuthError, "invalid_grant", 400, True, None),
        "refresh_transient": Failure(
            keyturn.InvalidResponseError,
            "http_error",
            503,
            False,
            "HTTP 503 with a text/html body and no OAuth error",
        ),
    },
    due_tokens,
)


async def test_jwt_after_invalid_grant_asks_to_sign_in_again(
    driver: Driver, clock: FakeClock
) -> None:
    token = await driver.signed_in_jwt(clock)
    await driver.jwt_fails_for_good(token, "refresh_invalid_grant")


class TestAppleConformance(ProviderConformance):
    provider = "apple"
    cassettes = CASSETTES / "apple"
    client_id = SERVICES_ID
    redirect_uri = REDIRECT_URI
    settings = {"team_id": TEAM_ID}
    private_key = PRIVATE_KEY
    private_key_id = KEY_ID
