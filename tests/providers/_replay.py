"""Replaying one provider's cassettes through each of keyturn's four client kinds.

A cassette test module names its provider, its ``vcr.VCR``, its redirect URI and its sign-in
in a :class:`Replay`, and takes its ``connect`` and ``driver`` fixtures from
:func:`replay_fixtures`. Every test then runs four times: Keyturn over httpx.Client and
httpx2.Client, AsyncKeyturn over httpx.AsyncClient and httpx2.AsyncClient. What every provider's
module checks the same way is written here once: a sign-in that falls due
(:meth:`Driver.signed_in_jwt`), the jwt callback after a failed refresh, and the test that
classifies refresh failures (:func:`refresh_failure_test`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import httpx
import httpx2
import pytest

import keyturn
from keyturn.plugins import KeyturnPluginManager
from tests.conftest import CLIENT_ID, CLIENT_SECRET, FakeClock

Credentials = tuple[str, str | None]
#: (mode, library): the four ways an app can hold keyturn.
KINDS = [("sync", "httpx"), ("sync", "httpx2"), ("async", "httpx"), ("async", "httpx2")]
SYNC_CLIENTS: dict[str, type[httpx.Client] | type[httpx2.Client]] = {
    "httpx": httpx.Client,
    "httpx2": httpx2.Client,
}
ASYNC_CLIENTS: dict[str, type[httpx.AsyncClient] | type[httpx2.AsyncClient]] = {
    "httpx": httpx.AsyncClient,
    "httpx2": httpx2.AsyncClient,
}


@dataclass(frozen=True)
class Replay:
    """What differs between providers' cassette tests.

    :param provider: the provider id the clients are configured for.
    :param vcr: the ``vcr.VCR`` that holds the provider's cassettes (from ``make_vcr``).
    :param redirect_uri: the callback URI every authorization request carries.
    :param code: the authorization code the ``exchange_code`` cassette's request carries.
    :param access_lifetime: seconds the access token of ``exchange_code``'s answer lives.
    :param authorize: what a sign-in passes to ``authorize_url`` besides the redirect URI
        (the nonce an ID token carries, say).
    :param settings: the deployment settings of a provider whose spec is a template (its
        domain...), given to every client.
    """

    provider: str
    vcr: Any
    redirect_uri: str
    code: str
    access_lifetime: int
    authorize: Mapping[str, Any] = field(default_factory=dict)
    #: The provider's deployment settings (``Keyturn(settings={provider: ...})``).
    settings: Mapping[str, str] = field(default_factory=dict)
    #: The default credentials of ``connect()``: ``(CLIENT_ID, CLIENT_SECRET)`` when ``None``.
    credentials: Any = None


class Driver:
    """One Keyturn or AsyncKeyturn behind an awaitable surface, so a test serves both.

    It also notes which HTTP library carried each request, to prove the app's client was used.
    """

    def __init__(
        self, replay: Replay, client: keyturn.Keyturn | keyturn.AsyncKeyturn, library: str
    ) -> None:
        self.replay = replay
        self.client = client
        self.library = library
        self.sent: list[str] = []

    def note(self, request: Any) -> None:
        self.sent.append(type(request).__module__.split(".")[0])

    @contextmanager
    def play(self, scenario: str) -> Iterator[Any]:
        """Replay ``<scenario>.yaml``; afterwards every interaction must have played."""
        before = len(self.sent)
        with self.replay.vcr.use_cassette(f"{scenario}.yaml") as cassette:
            yield cassette
        assert cassette.all_played, f"{scenario}: some interactions were not played"
        assert len(self.sent) - before == cassette.play_count
        assert set(self.sent) <= {self.library}

    def authorize_url(self, **kwargs: Any) -> keyturn.AuthorizationRequest:
        return self.client.authorize_url(self.replay.provider, self.replay.redirect_uri, **kwargs)

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

    async def signed_in_jwt(self, clock: FakeClock) -> keyturn.JWT:
        """Sign in through the ``exchange_code`` cassette, then let the access token fall due."""
        request = self.authorize_url(**self.replay.authorize)
        query = {"state": request.state.get_secret_value(), "code": self.replay.code}
        if request.issuer_required and request.issuer is not None:
            query["iss"] = request.issuer  # RFC 9207: as the provider's redirect names it
        with self.play("exchange_code"):
            token = await self.sign_in(request, query)
        assert token.error is None
        lifetime = self.replay.access_lifetime
        assert token.tokens.expires_at == clock.now + lifetime
        clock.advance(lifetime - 30)  # inside the 60 s leeway: due for a refresh
        return token

    async def jwt_fails_for_good(self, token: keyturn.JWT, scenario: str) -> keyturn.JWT:
        """Run the jwt callback on a due ``token`` while ``scenario`` refuses the refresh for good.

        Asserts what every provider shares: the JWT keeps its tokens, carries keyturn's refresh
        error and a permanent failure, the session shows the error, and a second jwt call sends
        nothing (the cassette holds one interaction, which must play once).

        :return: the failed JWT, for the provider's own checks of its failure.
        """
        with self.play(scenario):
            failed = await self.jwt(token)
            again = await self.jwt(failed)
        assert failed.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
        assert failed.tokens == token.tokens
        assert failed.refresh_failure is not None
        assert failed.refresh_failure.permanent
        assert again == failed
        assert self.client.session(failed).error == "RefreshAccessTokenError"
        return failed

    async def jwt_fails_for_now(self, token: keyturn.JWT, scenario: str) -> keyturn.JWT:
        """Run the jwt callback on a due ``token`` while ``scenario`` fails the refresh for now.

        Asserts that the JWT keeps its tokens and no error, that its failure is not permanent,
        and that the session still hands out the old access token.

        :return: the JWT, for the provider's own checks of its failure.
        """
        with self.play(scenario):
            failed = await self.jwt(token)
        assert failed.error is None
        assert failed.tokens == token.tokens
        assert failed.refresh_failure is not None
        assert not failed.refresh_failure.permanent
        assert self.client.session(failed).access_token == token.tokens.access_token
        return failed


class Connect(Protocol):
    """Builds a driver of the test's kind; the ``connect`` fixture's value."""

    def __call__(
        self,
        credentials: Credentials | None = None,
        providers: Sequence[keyturn.ProviderSpec] = (),
        settings: Mapping[str, str] | None = None,
    ) -> Driver: ...


def replay_fixtures(replay: Replay) -> tuple[Any, Any]:
    """The ``connect`` and ``driver`` fixtures for one provider's cassette tests.

    Assign them to module names of the same spelling: ``connect, driver = replay_fixtures(...)``.

    :param replay: the provider, cassettes and redirect URI the drivers use.
    :return: ``connect``, run once per kind, which builds drivers and closes their HTTP
        clients after the test; and ``driver``, one driver with the test credentials.
    """

    @pytest.fixture(params=KINDS, ids=[f"{mode}-{library}" for mode, library in KINDS])
    async def connect(
        request: pytest.FixtureRequest, clock: FakeClock, pm: KeyturnPluginManager
    ) -> AsyncIterator[Connect]:
        """Build drivers of one kind (sync or async, httpx or httpx2); close their clients after."""
        mode, library = request.param
        closers: list[Callable[[], Any]] = []

        def make(
            credentials: Credentials | None = None,
            providers: Sequence[keyturn.ProviderSpec] = (),
            settings: Mapping[str, str] | None = None,
        ) -> Driver:
            if credentials is None:
                credentials = replay.credentials or (CLIENT_ID, CLIENT_SECRET)
            creds = {replay.provider: credentials}
            options: dict[str, Any] = {
                "clock": clock,
                "plugin_manager": pm,
                "environ": {},
                "providers": providers,
            }
            chosen = {**replay.settings, **(settings or {})}
            if chosen:
                options["settings"] = {replay.provider: chosen}
            if mode == "sync":
                sync_http = SYNC_CLIENTS[library](trust_env=False)
                client = keyturn.Keyturn(creds, http_client=sync_http, **options)
                driver = Driver(replay, client, library)
                sync_http.event_hooks["request"] = [driver.note]
                closers.append(sync_http.close)
                return driver
            async_http = ASYNC_CLIENTS[library](trust_env=False)
            async_client = keyturn.AsyncKeyturn(creds, http_client=async_http, **options)
            driver = Driver(replay, async_client, library)

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
    def driver(connect: Connect) -> Driver:
        """A driver with the test credentials (client id and secret)."""
        return connect()

    return connect, driver


class Failure(NamedTuple):
    """How keyturn must classify one refresh failure."""

    cls: type[keyturn.ProviderError]
    error: str
    status: int
    permanent: bool
    description: str | None

    def check(self, failure: keyturn.ProviderError, provider: str) -> None:
        """Assert that ``failure``, raised by ``provider``'s refresh, is classified so."""
        assert type(failure) is self.cls
        assert (failure.error, failure.status, failure.permanent) == (
            self.error,
            self.status,
            self.permanent,
        )
        assert failure.description == self.description
        assert (failure.provider, failure.operation) == (provider, "refresh")


def refresh_failure_test(
    failures: Mapping[str, Failure], due_tokens: Callable[[FakeClock], keyturn.TokenSet]
) -> Any:
    """The test that each of a provider's refresh failures is classified as it must be.

    Assign it to ``test_refresh_failure_is_classified`` in the provider's cassette module.

    :param failures: for each scenario (a cassette), how keyturn must classify its failure.
    :param due_tokens: the tokens the app holds, due for a refresh on the test's clock.
    """

    @pytest.mark.parametrize("scenario", failures)
    async def test_refresh_failure_is_classified(
        driver: Driver, clock: FakeClock, scenario: str
    ) -> None:
        expected = failures[scenario]
        old = due_tokens(clock)
        with driver.play(scenario), pytest.raises(keyturn.ProviderError) as caught:
            await driver.refresh(old)
        expected.check(caught.value, driver.replay.provider)
        assert old.refresh_token is not None
        assert old.refresh_token.get_secret_value() not in str(caught.value)

    return test_refresh_failure_is_classified
