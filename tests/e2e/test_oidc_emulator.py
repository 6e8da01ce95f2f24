"""keyturn-oidc against the emulator's ``oidc`` profile, over real HTTP on loopback.

The provider is declared as an app would declare any OpenID Provider,
``keyturn_oidc.provider("corp", issuer)``, so everything else comes from the emulator's
discovery document: the endpoints, the key set, the signing algorithms, PKCE, RFC 9207 and
the client authentication methods. Each scenario runs with the four client kinds (sync and
async, over httpx and httpx2):

* a whole session: sign-in, the code exchange with its ID token verified against the served
  keys, a refresh after the provider rotated its keys (an unknown ``kid``: the set is fetched
  once more, then the new ID token verifies), userinfo, revocation (RFC 7009), and the revoked
  grant refused;
* the discovery document and the key set fetched once per client, however many sign-ins,
  sequential or concurrent, and once more per new client;
* the refetch cooldown: a second unknown ``kid`` within it is a typed error with no request
  for the set, and after it the set is read again;
* ES256 ID tokens when the provider switches to them;
* ``private_key_jwt`` (the public key registered at the emulator) and ``client_secret_jwt``,
  each counted by the emulator under its method, and a key it does not know refused;
* broken documents from the emulator's fault knobs: each a typed error, no secret in it.

The emulator and the clients share a :class:`FakeClock`, so expiries and cooldowns move when
the test moves them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import httpx2
import pytest
from joserfc.jwk import RSAKey

import keyturn
import keyturn_oidc
from keyturn import ClientCredentials, ConfigurationError, ProviderSpec
from keyturn.idtoken import unverified_claims
from keyturn.jwks import REFETCH_COOLDOWN
from keyturn_emulator import Emulator
from tests.conftest import FakeClock

KINDS = [("sync", "httpx"), ("sync", "httpx2"), ("async", "httpx"), ("async", "httpx2")]
REDIRECT = "http://127.0.0.1:8765/auth/callback/corp"

#: A client secret long enough to be an HS256 key. Not a secret: nothing real uses it.
LONG_SECRET = "emulator-secret-example-long-enough-for-hs256"
#: The client's key pair for private_key_jwt, made once for the module.
CLIENT_KEY = RSAKey.generate_key(2048, parameters={"kid": "corp-client-1"}, private=True)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def emu(clock: FakeClock) -> Iterator[Emulator]:
    with Emulator(access_token_lifetime=600, clock=clock) as emulator:
        yield emulator


def corp(emu: Emulator, **fields: Any) -> ProviderSpec:
    """The emulator's oidc profile, declared by its issuer alone."""
    issuer = emu.issuer("oidc")
    assert issuer is not None
    return keyturn_oidc.provider("corp", issuer, name="Corp", **fields)


def secret_of(emu: Emulator) -> str:
    value = emu.credentials.client_secret
    assert value is not None
    return value.get_secret_value()


def kid_of(token: keyturn.TokenSet) -> str:
    """The ``kid`` in the header of the ID token of ``token``."""
    assert token.id_token is not None
    head = token.id_token.get_secret_value().split(".")[0]
    data = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return str(data["kid"])


class Client:
    """One keyturn client of the test's kind, behind an awaitable surface."""

    def __init__(self, client: keyturn.Keyturn | keyturn.AsyncKeyturn) -> None:
        self.client = client

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, method)(*args, **kwargs)
        return await result if isinstance(self.client, keyturn.AsyncKeyturn) else result

    async def sign_in(self, emu: Emulator, **kwargs: Any) -> keyturn.JWT:
        """Sign in as a browser would: the authorize URL, the emulator's consent, the callback."""
        if isinstance(self.client, keyturn.AsyncKeyturn):
            await self.client.discover("corp")  # AsyncKeyturn.authorize_url cannot fetch
        request = self.client.authorize_url("corp", REDIRECT)
        callback = await asyncio.to_thread(emu.authorize, request.url)
        token: keyturn.JWT = await self.call("sign_in", request, callback, **kwargs)
        return token


@pytest.fixture(params=KINDS, ids=[f"{mode}-{library}" for mode, library in KINDS])
async def client(
    request: pytest.FixtureRequest, clock: FakeClock
) -> AsyncIterator[Callable[..., Client]]:
    """Makes clients of one kind; each with its own HTTP client, closed at the end."""
    mode, library = request.param
    closers: list[Callable[[], Any]] = []

    def make(spec: ProviderSpec, credentials: ClientCredentials | None = None) -> Client:
        options: dict[str, Any] = {"clock": clock, "environ": {}, "providers": [spec]}
        given = {"corp": credentials} if credentials is not None else {}
        if mode == "sync":
            sync_http = httpx.Client() if library == "httpx" else httpx2.Client()
            made = keyturn.Keyturn(given, http_client=sync_http, **options)
            closers.append(made.close)
            closers.append(sync_http.close)
            return Client(made)
        async_http = httpx.AsyncClient() if library == "httpx" else httpx2.AsyncClient()
        async_made = keyturn.AsyncKeyturn(given, http_client=async_http, **options)
        closers.append(async_made.aclose)
        closers.append(async_http.aclose)
        return Client(async_made)

    yield make
    for close in closers:
        result = close()
        if result is not None:
            await result


# -- a whole session ------------------------------------------------------------------------


async def test_sign_in_refresh_after_rotation_userinfo_and_revoke(
    client: Callable[..., Client], emu: Emulator, clock: FakeClock
) -> None:
    c = client(corp(emu), emu.credentials)
    token = await c.sign_in(emu)
    first = token.tokens
    # The code exchange's ID token names the active key and was verified with the served set.
    assert first.id_token is not None and first.refresh_token is not None
    assert kid_of(first) == emu.signing_kid("oidc")
    claims = unverified_claims(first.id_token.get_secret_value())
    assert claims["iss"] == emu.issuer("oidc")
    assert claims["aud"] == emu.credentials.client_id
    assert token.user is not None and token.user.id == claims["sub"]
    assert token.user.email == "ada@example.com"
    counters = emu.counters("oidc")
    assert (counters["discovery"], counters["jwks"], counters["authorization_code"]) == (1, 1, 1)
    assert counters["userinfo"] == 1
    old_kid = kid_of(first)

    # The provider rotates its keys; the token falls due and is refreshed. The new ID token
    # names a kid the cached set lacks: the set is fetched once more, and the token verifies.
    new_kid = emu.rotate_keys()["RS256"]
    clock.advance(600)
    refreshed = await c.call("jwt", token)
    assert refreshed.error is None
    tokens = refreshed.tokens
    assert tokens.id_token is not None and tokens.refresh_token is not None
    assert kid_of(tokens) == new_kid != old_kid
    assert tokens.id_token != first.id_token
    # The profile rotates refresh tokens.
    assert tokens.refresh_token.get_secret_value() != first.refresh_token.get_secret_value()
    assert unverified_claims(tokens.id_token.get_secret_value())["sub"] == claims["sub"]
    counters = emu.counters("oidc")
    assert (counters["refresh_token"], counters["discovery"], counters["jwks"]) == (1, 1, 2)

    # A second refresh with the same key: nothing fetched again.
    again = await c.call("refresh", tokens)
    assert kid_of(again) == new_kid
    assert emu.counters("oidc")["jwks"] == 2

    profile = await c.call("userinfo", again)
    assert profile.id == claims["sub"] and profile.email == "ada@example.com"

    assert await c.call("revoke", again) is None
    assert emu.counters("oidc")["revoke"] == 1
    with pytest.raises(keyturn.OAuthError) as caught:
        await c.call("refresh", again)
    assert caught.value.error == "invalid_grant" and caught.value.permanent
    assert emu.counters("oidc")["discovery"] == 1


async def test_the_document_and_the_keys_are_fetched_once_per_client(
    client: Callable[..., Client], emu: Emulator
) -> None:
    spec = corp(emu)
    c = client(spec, emu.credentials)
    for _ in range(3):
        await c.sign_in(emu)
    counters = emu.counters("oidc")
    assert (counters["authorization_code"], counters["discovery"], counters["jwks"]) == (3, 1, 1)

    # Another client keeps its own caches: one more of each.
    other = client(spec, emu.credentials)
    await other.sign_in(emu, fetch_profile=False)
    counters = emu.counters("oidc")
    assert (counters["authorization_code"], counters["discovery"], counters["jwks"]) == (4, 2, 2)


async def test_concurrent_first_sign_ins_share_one_fetch_of_each_document(emu: Emulator) -> None:
    callers = 20
    async with (
        httpx.AsyncClient() as http,
        keyturn.AsyncKeyturn(
            {"corp": emu.credentials}, providers=[corp(emu)], http_client=http, environ={}
        ) as kt,
    ):
        # Authorize URLs need the document first: build them with another client, whose
        # fetch is counted and then forgotten.
        async with keyturn.AsyncKeyturn(
            {"corp": emu.credentials}, providers=[corp(emu)], environ={}
        ) as helper:
            await helper.discover("corp")
            requests = [helper.authorize_url("corp", REDIRECT) for _ in range(callers)]
        callbacks = [await asyncio.to_thread(emu.authorize, r.url) for r in requests]
        emu.reset_counters()
        results = await asyncio.gather(
            *(
                kt.exchange_code(request, callback["code"])
                for request, callback in zip(requests, callbacks, strict=True)
            )
        )
    assert len({r.access_token.get_secret_value() for r in results}) == callers
    counters = emu.counters("oidc")
    assert counters["authorization_code"] == callers
    assert (counters["discovery"], counters["jwks"]) == (1, 1)


async def test_a_second_unknown_kid_within_the_cooldown_fetches_nothing(
    client: Callable[..., Client], emu: Emulator, clock: FakeClock
) -> None:
    c = client(corp(emu), emu.credentials)
    token = await c.sign_in(emu, fetch_profile=False)
    emu.rotate_keys(keep_previous=False)
    tokens = await c.call("refresh", token.tokens)  # unknown kid: one refetch
    assert emu.counters("oidc")["jwks"] == 2

    # Rotated again at once: the client refuses to fetch the set again within its cooldown,
    # so the ID token cannot be verified. A typed, permanent error; the set is not requested.
    emu.rotate_keys(keep_previous=False)
    with pytest.raises(keyturn.RefreshIdTokenError) as caught:
        await c.call("refresh", tokens)
    assert caught.value.permanent
    assert emu.counters("oidc")["jwks"] == 2
    assert secret_of(emu) not in str(caught.value)

    # Past the cooldown, a new sign-in reads the set once more and verifies.
    clock.advance(REFETCH_COOLDOWN)
    again = await c.sign_in(emu, fetch_profile=False)
    assert kid_of(again.tokens) == emu.signing_kid("oidc")
    assert emu.counters("oidc")["jwks"] == 3


async def test_es256_id_tokens_verify_when_the_provider_switches_to_them(
    client: Callable[..., Client], emu: Emulator
) -> None:
    assert "ES256" in emu.discovery_document("oidc")["id_token_signing_alg_values_supported"]
    emu.configure(id_token_alg="ES256")
    c = client(corp(emu), emu.credentials)
    token = await c.sign_in(emu)
    assert kid_of(token.tokens) == emu.signing_kid("oidc") == emu.keys.active_kid("ES256")
    refreshed = await c.call("refresh", token.tokens)
    assert kid_of(refreshed) == emu.keys.active_kid("ES256")


# -- client authentication with signed assertions (RFC 7523) ----------------------------------


async def test_private_key_jwt_signs_the_client_in_refreshes_and_revokes(
    client: Callable[..., Client], emu: Emulator
) -> None:
    emu.register_client_keys({"keys": [CLIENT_KEY.as_dict(private=False)]})
    credentials = ClientCredentials(
        client_id=emu.credentials.client_id,
        private_key=CLIENT_KEY.as_pem(private=True).decode(),
        private_key_id="corp-client-1",
    )
    c = client(corp(emu, client_auth="private_key_jwt"), credentials)
    token = await c.sign_in(emu)
    tokens = await c.call("refresh", token.tokens)
    assert await c.call("revoke", tokens) is None
    counters = emu.counters("oidc")
    assert counters["auth_private_key_jwt"] == 3
    assert counters.get("auth_client_secret_basic", 0) == 0
    assert counters.get("auth_client_secret_post", 0) == 0


async def test_private_key_jwt_with_a_key_the_provider_does_not_know_is_refused(
    client: Callable[..., Client], emu: Emulator
) -> None:
    emu.register_client_keys({"keys": [CLIENT_KEY.as_dict(private=False)]})
    stranger = RSAKey.generate_key(2048, parameters={"kid": "corp-client-1"}, private=True)
    pem = stranger.as_pem(private=True).decode()
    credentials = ClientCredentials(
        client_id=emu.credentials.client_id, private_key=pem, private_key_id="corp-client-1"
    )
    c = client(corp(emu, client_auth="private_key_jwt"), credentials)
    with pytest.raises(keyturn.OAuthError) as caught:
        await c.sign_in(emu)
    assert caught.value.error == "invalid_client" and caught.value.permanent
    assert "PRIVATE KEY" not in str(caught.value) and "PRIVATE KEY" not in repr(caught.value)
    assert emu.counters("oidc")["authorization_code"] == 0


async def test_client_secret_jwt_signs_the_client_in_and_refreshes(
    client: Callable[..., Client], clock: FakeClock
) -> None:
    # HS256 needs a key of 32 bytes or more (RFC 7518 section 3.2): a longer secret than the
    # emulator's default one.
    with Emulator(client_secret=LONG_SECRET, clock=clock) as emu:
        c = client(corp(emu, client_auth="client_secret_jwt"), emu.credentials)
        token = await c.sign_in(emu)
        await c.call("refresh", token.tokens)
        counters = emu.counters("oidc")
    assert counters["auth_client_secret_jwt"] == 2
    assert counters.get("auth_client_secret_basic", 0) == 0


async def test_client_secret_jwt_with_the_default_short_secret_is_refused_before_sending(
    client: Callable[..., Client], emu: Emulator
) -> None:
    c = client(corp(emu, client_auth="client_secret_jwt"), emu.credentials)
    with pytest.raises(ConfigurationError, match="shorter than the 32 bytes") as caught:
        await c.sign_in(emu)
    assert secret_of(emu) not in str(caught.value)
    assert emu.counters("oidc")["token_requests"] == 0


# -- broken documents ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("knob", "fault", "error", "names"),
    [
        ("discovery_fault", "wrong_issuer", ConfigurationError, "issuer"),
        ("discovery_fault", "foreign_host", ConfigurationError, "token_endpoint on attacker"),
        ("discovery_fault", "missing_jwks_uri", ConfigurationError, "jwks_uri"),
        ("discovery_fault", "html", ConfigurationError, "is HTML or XML, not JSON"),
        ("discovery_fault", "truncated", ConfigurationError, "discovery document"),
        ("jwks_fault", "empty", keyturn.KeySetError, "key"),
        ("jwks_fault", "oct_keys", keyturn.KeySetError, "key"),
    ],
)
async def test_a_broken_document_at_the_provider_is_a_typed_error(
    client: Callable[..., Client],
    emu: Emulator,
    knob: str,
    fault: str,
    error: type[Exception],
    names: str,
) -> None:
    emu.configure(**{knob: fault})
    c = client(corp(emu), emu.credentials)
    with pytest.raises(error) as caught:
        await c.sign_in(emu, fetch_profile=False)
    message = str(caught.value)
    assert names in message
    assert secret_of(emu) not in message and secret_of(emu) not in repr(caught.value)
    if knob == "jwks_fault":
        assert isinstance(caught.value, keyturn.ProviderError) and not caught.value.permanent
