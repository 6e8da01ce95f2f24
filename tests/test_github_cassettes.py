"""GitHub's token, user and revoke endpoints, replayed from cassettes/github/.

The cassettes are written from GitHub's documentation (provenance in cassettes/README.md), and
they replay with record_mode "none": a request keyturn sends that a cassette does not hold
(other method, URI or body fields) fails the test. Every test runs four times: Keyturn over
httpx.Client and httpx2.Client, AsyncKeyturn over httpx.AsyncClient and httpx2.AsyncClient.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import httpx
import httpx2
import pytest

import keyturn
from keyturn.plugins import KeyturnPluginManager
from keyturn.testing.cassettes import make_vcr
from keyturn_github import GITHUB

from .conftest import CASSETTES, CLIENT_ID, CLIENT_SECRET, FakeClock

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
#: Lifetimes GitHub sends (B3): access 8 hours; refresh "six months", in two spellings.
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

Credentials = tuple[str, str | None]
KINDS = [("sync", "httpx"), ("sync", "httpx2"), ("async", "httpx"), ("async", "httpx2")]


class Driver:
    """One Keyturn or AsyncKeyturn behind an awaitable surface, so a test serves both.

    It also notes which HTTP library carried each request, to prove the app's client was used.
    """

    def __init__(self, client: keyturn.Keyturn | keyturn.AsyncKeyturn, library: str) -> None:
        self.client = client
        self.library = library
        self.sent: list[str] = []

    def note(self, request: Any) -> None:
        self.sent.append(type(request).__module__.split(".")[0])

    @contextmanager
    def play(self, scenario: str) -> Iterator[Any]:
        """Replay ``github/<scenario>.yaml``; afterwards every interaction must have played."""
        before = len(self.sent)
        with VCR.use_cassette(f"{scenario}.yaml") as cassette:
            yield cassette
        assert cassette.all_played, f"{scenario}: some interactions were not played"
        assert len(self.sent) - before == cassette.play_count
        assert set(self.sent) <= {self.library}

    def authorize_url(self, **kwargs: Any) -> keyturn.AuthorizationRequest:
        return self.client.authorize_url("github", REDIRECT_URI, **kwargs)

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, method)(*args, **kwargs)
        if isinstance(self.client, keyturn.AsyncKeyturn):
            return await result
        return result

    async def exchange_code(
        self, request: keyturn.AuthorizationRequest, code: str
    ) -> keyturn.TokenSet:
        tokens: keyturn.TokenSet = await self.call("exchange_code", request, code)
        return tokens

    async def refresh(self, tokens: keyturn.TokenSet) -> keyturn.TokenSet:
        refreshed: keyturn.TokenSet = await self.call("refresh", tokens)
        return refreshed

    async def userinfo(self, tokens: keyturn.TokenSet) -> keyturn.Profile:
        profile: keyturn.Profile = await self.call("userinfo", tokens)
        return profile

    async def revoke(self, tokens: keyturn.TokenSet) -> object:
        """Whatever keyturn's revoke returned (it should be None)."""
        result: object = await self.call("revoke", tokens)
        return result

    async def sign_in(
        self, request: keyturn.AuthorizationRequest, query: dict[str, str]
    ) -> keyturn.JWT:
        token: keyturn.JWT = await self.call("sign_in", request, query, fetch_profile=False)
        return token

    async def jwt(self, token: keyturn.JWT) -> keyturn.JWT:
        result: keyturn.JWT = await self.call("jwt", token)
        return result


@pytest.fixture(params=KINDS, ids=[f"{mode}-{library}" for mode, library in KINDS])
async def connect(
    request: pytest.FixtureRequest, clock: FakeClock, pm: KeyturnPluginManager
) -> AsyncIterator[Callable[..., Driver]]:
    """Build drivers of one kind (sync or async, httpx or httpx2); close their clients after."""
    mode, library = request.param
    closers: list[Callable[[], Any]] = []

    def make(
        credentials: Credentials = (CLIENT_ID, CLIENT_SECRET),
        providers: Sequence[keyturn.ProviderSpec] = (),
    ) -> Driver:
        creds = {"github": credentials}
        options: dict[str, Any] = {
            "clock": clock,
            "plugin_manager": pm,
            "environ": {},
            "providers": providers,
        }
        if mode == "sync":
            sync_http: httpx.Client | httpx2.Client = (
                httpx.Client(trust_env=False)
                if library == "httpx"
                else httpx2.Client(trust_env=False)
            )
            driver = Driver(keyturn.Keyturn(creds, http_client=sync_http, **options), library)
            sync_http.event_hooks["request"] = [driver.note]
            closers.append(sync_http.close)
            return driver
        async_http: httpx.AsyncClient | httpx2.AsyncClient = (
            httpx.AsyncClient(trust_env=False)
            if library == "httpx"
            else httpx2.AsyncClient(trust_env=False)
        )
        driver = Driver(keyturn.AsyncKeyturn(creds, http_client=async_http, **options), library)

        async def note(sent: Any) -> None:
            driver.note(sent)

        async_http.event_hooks["request"] = [note]
        closers.append(async_http.aclose)
        return driver

    yield make
    for close in closers:
        result = close()
        if result is not None:
            await result


@pytest.fixture
def driver(connect: Callable[..., Driver]) -> Driver:
    """A driver with the test credentials (client id and secret)."""
    return connect()


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
    connect: Callable[..., Driver], clock: FakeClock
) -> None:
    # Without "Accept: application/json" GitHub answers form-encoded (B2); this spec leaves
    # the header out, as the cassette's request does.
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


class Failure(NamedTuple):
    """How keyturn must classify one refresh failure."""

    cls: type[keyturn.ProviderError]
    error: str
    status: int
    permanent: bool
    description: str | None


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


@pytest.mark.parametrize("scenario", REFRESH_FAILURES)
async def test_refresh_failure_is_classified(
    driver: Driver, clock: FakeClock, scenario: str
) -> None:
    expected = REFRESH_FAILURES[scenario]
    with driver.play(scenario), pytest.raises(keyturn.ProviderError) as caught:
        await driver.refresh(signed_in_tokens(clock))
    failure = caught.value
    assert type(failure) is expected.cls
    assert (failure.error, failure.status, failure.permanent) == (
        expected.error,
        expected.status,
        expected.permanent,
    )
    assert failure.description == expected.description
    assert (failure.provider, failure.operation) == ("github", "refresh")
    assert OLD_REFRESH_TOKEN not in str(failure)


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
    connect: Callable[..., Driver], clock: FakeClock
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


async def signed_in_jwt(driver: Driver, clock: FakeClock) -> keyturn.JWT:
    """Sign in through exchange_code, then let the access token fall due."""
    request = driver.authorize_url()
    query = {"state": request.state.get_secret_value(), "code": "code-from-the-callback"}
    with driver.play("exchange_code"):
        token = await driver.sign_in(request, query)
    assert token.error is None
    assert token.tokens.expires_at == clock.now + ACCESS_LIFETIME
    clock.advance(ACCESS_LIFETIME - 30)  # inside the 60 s leeway: due for a refresh
    return token


async def test_jwt_follows_the_rotation_chain(driver: Driver, clock: FakeClock) -> None:
    token = await signed_in_jwt(driver, clock)
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
    token = await signed_in_jwt(driver, clock)
    with driver.play("refresh_invalid_grant"):
        failed = await driver.jwt(token)
        # Once failed for good, keyturn stops asking GitHub (no second interaction exists).
        again = await driver.jwt(failed)
    assert failed.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
    assert failed.tokens == token.tokens
    assert failed.refresh_failure is not None
    assert failed.refresh_failure.permanent
    assert (failed.refresh_failure.error, failed.refresh_failure.status) == (
        "bad_refresh_token",
        200,
    )
    assert again == failed
    assert driver.client.session(failed).error == "RefreshAccessTokenError"


async def test_jwt_after_a_transient_failure_keeps_the_session(
    driver: Driver, clock: FakeClock
) -> None:
    token = await signed_in_jwt(driver, clock)
    with driver.play("refresh_transient"):
        failed = await driver.jwt(token)
    assert failed.error is None
    assert failed.tokens == token.tokens
    assert failed.refresh_failure is not None
    assert not failed.refresh_failure.permanent
    assert failed.refresh_failure.status == 503
    assert driver.client.session(failed).access_token == token.tokens.access_token
