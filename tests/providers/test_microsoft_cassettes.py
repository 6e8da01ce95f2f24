"""Microsoft's token and userinfo endpoints, replayed from cassettes/microsoft/.

The cassettes are written from Microsoft's documentation (provenance in cassettes/README.md)
and replay with record_mode "none". The spec reads its key set and issuer from the tenant's
discovery document, so every scenario is replayed with ``discovery.yaml`` (the ``common``
document) and ``jwks.yaml`` (a key made for these cassettes) beside it, as the conformance
suite replays them. Every test runs four times: Keyturn over httpx.Client and httpx2.Client,
AsyncKeyturn over httpx.AsyncClient and httpx2.AsyncClient.

The last class runs keyturn's conformance suite on the same cassettes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml

import keyturn
from keyturn.idtoken import unverified_claims
from pytest_keyturn import ProviderConformance
from pytest_keyturn.cassettes import make_vcr
from tests.conftest import CASSETTES, FakeClock

from ._replay import Driver, Replay, replay_fixtures

FOLDER = CASSETTES / "microsoft"
VCR = make_vcr(FOLDER)
#: The cassettes every scenario is replayed with: the common discovery document, the key set.
SUPPORT = (FOLDER / "discovery.yaml", FOLDER / "jwks.yaml")

#: The app registration's id (a GUID, as Microsoft's client ids are; the docs' placeholder).
CLIENT_ID = "00001111-aaaa-2222-bbbb-3333cccc4444"
CLIENT_SECRET = "test-client-secret-not-real"
REDIRECT_URI = "https://app.example.com/api/auth/callback/microsoft"
NONCE = "n-0S6_WzA2Mj"
#: The tenant of the signed-in account: its ID tokens' tid, and their iss.
TENANT = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"
CODE = "code-from-the-callback"
EXCHANGED_ACCESS_TOKEN = "REDACTED-99e9bdb2"
EXCHANGED_REFRESH_TOKEN = "REDACTED-fb369379"
REFRESHED_ACCESS_TOKEN = "REDACTED-0cbbe7ab"
REFRESHED_REFRESH_TOKEN = "REDACTED-a7f64515"
ROTATED_REFRESH_TOKEN = "REDACTED-472c6c86"
GRANTED = ("openid", "profile", "email", "https://graph.microsoft.com/User.Read")

connect, driver = replay_fixtures(
    Replay(
        "microsoft",
        VCR,
        REDIRECT_URI,
        code=CODE,
        access_lifetime=3599,
        authorize={"nonce": NONCE},
    )
)


class _WithSupport:
    """A vcrpy persister: the scenario's interactions first, then the supporting cassettes'."""

    def load_cassette(self, cassette_path: Any, serializer: Any) -> tuple[list[Any], list[Any]]:
        from vcr.persisters.filesystem import FilesystemPersister

        requests, responses = FilesystemPersister.load_cassette(cassette_path, serializer)
        requests, responses = list(requests), list(responses)
        for extra in SUPPORT:
            more, answers = FilesystemPersister.load_cassette(extra, serializer)
            requests.extend(more)
            responses.extend(answers)
        return requests, responses

    @staticmethod
    def save_cassette(cassette_path: Any, cassette_dict: Any, serializer: Any) -> None:
        raise RuntimeError("replay only")


@contextmanager
def play(driver: Driver, scenario: str) -> Iterator[Any]:
    """Replay ``<scenario>.yaml`` with the document and key set; each of its own interactions
    must play (the document and the key set only when the client has not read them yet)."""
    path = FOLDER / f"{scenario}.yaml"
    own = len(yaml.safe_load(path.read_text())["interactions"])
    with VCR.use_cassette(path.name, persister=_WithSupport()) as cassette:
        yield cassette
    assert all(cassette.play_counts[index] for index in range(own)), f"{scenario}: not played"
    assert set(driver.sent) <= {driver.library}


@pytest.fixture
def ms(connect: Any) -> Driver:
    """A driver with the Microsoft test credentials (tenant common, the default)."""
    made: Driver = connect((CLIENT_ID, CLIENT_SECRET))
    return made


async def signed_in(ms: Driver, clock: FakeClock) -> keyturn.JWT:
    """Sign in through ``exchange_code``; the access token is then due for a refresh."""
    with play(ms, "exchange_code"):
        await ms.call("discover", "microsoft")  # AsyncKeyturn.authorize_url cannot await it
        request = ms.authorize_url(nonce=NONCE)
        query = {"state": request.state.get_secret_value(), "code": CODE}
        token = await ms.sign_in(request, query)
    assert token.error is None
    clock.advance(3599 - 30)
    return token


# -- sign-in ------------------------------------------------------------------------------


async def test_sign_in_verifies_the_id_token_against_the_tenant_of_its_tid(
    ms: Driver, clock: FakeClock
) -> None:
    token = await signed_in(ms, clock)
    tokens = token.tokens
    assert tokens.access_token.get_secret_value() == EXCHANGED_ACCESS_TOKEN
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == EXCHANGED_REFRESH_TOKEN
    assert tokens.scope == GRANTED
    assert tokens.extra == {"ext_expires_in": 3599}
    assert tokens.id_token is not None
    claims = unverified_claims(tokens.id_token.get_secret_value())
    assert (claims["iss"], claims["tid"], claims["aud"]) == (ISSUER, TENANT, CLIENT_ID)


async def test_the_common_document_resolves_the_spec(ms: Driver) -> None:
    with play(ms, "discovery"):
        spec = await ms.call("discover", "microsoft")
    assert spec.issuer == "https://login.microsoftonline.com/{tenantid}/v2.0"
    assert spec.issuer_claims == {"tenantid": "tid"}
    assert spec.jwks_uri == "https://login.microsoftonline.com/common/discovery/v2.0/keys"
    assert spec.revocation_endpoint is None  # the document lists none, and the spec says so
    request = ms.authorize_url()
    assert request.url.startswith("https://login.microsoftonline.com/common/oauth2/v2.0/authorize?")
    assert "offline_access" in request.url and "code_challenge_method=S256" in request.url


async def test_an_id_token_of_another_nonce_is_refused(ms: Driver) -> None:
    with play(ms, "exchange_code"):
        await ms.call("discover", "microsoft")
        request = ms.authorize_url(nonce="a-nonce-this-sign-in-never-sent")
        with pytest.raises(keyturn.IdTokenError, match="nonce"):
            await ms.exchange_code(request, CODE)


# -- refresh: a new refresh token each time -----------------------------------------------


async def test_refresh_keeps_the_new_refresh_token(ms: Driver, clock: FakeClock) -> None:
    token = await signed_in(ms, clock)
    with play(ms, "refresh_ok"):
        refreshed = await ms.jwt(token)
    assert refreshed.error is None and refreshed.refresh_failure is None
    assert refreshed.tokens.access_token.get_secret_value() == REFRESHED_ACCESS_TOKEN
    assert refreshed.tokens.refresh_token is not None
    assert refreshed.tokens.refresh_token.get_secret_value() == REFRESHED_REFRESH_TOKEN
    assert refreshed.tokens.expires_at == clock.now + 3599
    # The next refresh sends the new one (refresh_rotated's request names it).
    clock.advance(3599 - 30)
    with play(ms, "refresh_rotated"):
        again = await ms.jwt(refreshed)
    assert again.tokens.refresh_token is not None
    assert again.tokens.refresh_token.get_secret_value() == ROTATED_REFRESH_TOKEN


# -- refresh failures, classified by their AADSTS code -------------------------------------

#: scenario: (error, status, permanent, AADSTS code, words the description must hold)
FAILURES = {
    "refresh_invalid_grant": ("invalid_grant", 400, True, "700082", "sign in again"),
    "refresh_interaction_required": (
        "invalid_grant",
        400,
        True,
        "50076",
        "the user must sign in interactively: multi-factor authentication is required",
    ),
    "refresh_invalid_client": (
        "invalid_client",
        401,
        True,
        "7000222",
        "the app's client secret has expired: a configuration problem",
    ),
    "refresh_transient": ("temporarily_unavailable", 503, False, "90033", "try again later"),
}


@pytest.mark.parametrize("scenario", FAILURES)
async def test_refresh_failure_is_classified_by_its_aadsts_code(
    ms: Driver, clock: FakeClock, scenario: str
) -> None:
    error, status, permanent, code, words = FAILURES[scenario]
    token = await signed_in(ms, clock)
    with play(ms, scenario), pytest.raises(keyturn.OAuthError) as caught:
        await ms.refresh(token.tokens)
    failure = caught.value
    assert (failure.error, failure.status, failure.permanent) == (error, status, permanent)
    assert failure.details["aadsts"] == code
    assert failure.description is not None and words in failure.description
    assert f"AADSTS{code}:" in failure.description  # Microsoft's own words are kept
    assert "Trace ID" not in failure.description  # but not its trace lines
    assert EXCHANGED_REFRESH_TOKEN not in str(failure)


async def test_jwt_after_a_permanent_failure_asks_for_a_new_sign_in(
    ms: Driver, clock: FakeClock
) -> None:
    token = await signed_in(ms, clock)
    with play(ms, "refresh_invalid_grant"):
        failed = await ms.jwt(token)
        again = await ms.jwt(failed)  # no second request: the cassette holds one
    assert failed.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR and again == failed
    assert failed.tokens == token.tokens
    assert ms.client.session(failed).error == keyturn.REFRESH_ACCESS_TOKEN_ERROR


async def test_jwt_after_a_transient_failure_keeps_the_session(
    ms: Driver, clock: FakeClock
) -> None:
    token = await signed_in(ms, clock)
    with play(ms, "refresh_transient"):
        failed = await ms.jwt(token)
    assert failed.error is None and failed.tokens == token.tokens
    assert failed.refresh_failure is not None and not failed.refresh_failure.permanent
    assert ms.client.session(failed).access_token == token.tokens.access_token


# -- userinfo and revocation ---------------------------------------------------------------


async def test_userinfo_reads_graphs_oidc_endpoint(ms: Driver, clock: FakeClock) -> None:
    token = await signed_in(ms, clock)
    with play(ms, "userinfo"):
        profile = await ms.userinfo(token.tokens)
    assert profile.id == "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ"
    assert (profile.name, profile.email) == ("Example User", "user@example.com")


async def test_revoke_sends_nothing_and_says_what_signing_out_means(
    ms: Driver, clock: FakeClock
) -> None:
    token = await signed_in(ms, clock)
    sent = len(ms.sent)
    with pytest.raises(keyturn.ConfigurationError, match="no revocation endpoint") as caught:
        await ms.revoke(token.tokens)
    assert len(ms.sent) == sent
    assert "refresh token expires" in str(caught.value)
    assert "administrator revokes" in str(caught.value)


# -- keyturn's conformance suite on the same cassettes ------------------------------------


class TestMicrosoftConformance(ProviderConformance):
    provider = "microsoft"
    cassettes = FOLDER
    client_id = CLIENT_ID
