"""ID tokens: what OpenID Connect Core requires of one at sign-in and on refresh.

At sign-in (§3.1.3.7): an issuer we expect, our client id among the audiences and no audience
we do not trust, ``azp`` naming us when present, a subject, and ``exp`` and ``iat`` that make
sense on the client's clock (with its leeway); the userinfo answer's ``sub`` must be the ID
token's (§5.3.2). On refresh (§12.2): a new ID token passes the same checks and names the same
issuer, subject and audience as the session's, or the refresh is a permanent failure that keeps
the old tokens. The signature is not verified (see keyturn.idtoken).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

import keyturn
from keyturn import REFRESH_ACCESS_TOKEN_ERROR, RefreshIdTokenError
from keyturn.idtoken import IdTokenError, check_id_token, unverified_claims
from keyturn.models import AuthorizationRequest, IdTokenIdentity, TokenSet
from keyturn_google import GOOGLE
from tests.conftest import CLIENT_ID, START, Both, FakeClock, Recorder, sign_google_id_token

REDIRECT = "https://app.example/auth/callback/google"
ISSUER = "https://accounts.google.com"
LEEWAY = 60


def b64(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def make_id_token(*, drop: tuple[str, ...] = (), **claims: Any) -> str:
    """An ID token good at START for CLIENT_ID, with ``claims`` changed and ``drop`` removed."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": "42",
        "iat": START,
        "exp": START + 3600,
    }
    payload = {k: v for k, v in {**base, **claims}.items() if k not in drop}
    return sign_google_id_token(payload)


def check(token: str, **options: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "nonce": None,
        "client_id": CLIENT_ID,
        "issuer": ISSUER,
        "now": START,
        "leeway": LEEWAY,
    }
    return check_id_token(token, **{**settings, **options})


# -- check_id_token: OIDC Core 3.1.3.7 ------------------------------------------------------


def test_a_good_id_token_passes_and_gives_its_claims() -> None:
    assert check(make_id_token(azp=CLIENT_ID))["sub"] == "42"


@pytest.mark.parametrize(
    ("claims", "drop", "word"),
    [
        ({"exp": START - LEEWAY - 1}, (), "exp"),
        ({"exp": START - 10**6, "iat": START - 10**6 - 3600}, (), "exp"),
        ({"iat": START + LEEWAY + 1}, (), "iat"),
        ({"iat": START + 86400, "exp": START + 90000}, (), "iat"),
        ({"aud": [CLIENT_ID, "another-client"]}, (), "aud"),
        ({"aud": [CLIENT_ID, 7]}, (), "aud"),
        ({"aud": []}, (), "aud"),
        ({"azp": "another-client"}, (), "azp"),
        ({"azp": 7}, (), "azp"),
        ({}, ("sub",), "sub"),
        ({"sub": ""}, (), "sub"),
        ({"sub": 42}, (), "sub"),
        ({}, ("exp",), "exp"),
        ({"exp": "tomorrow"}, (), "exp"),
        ({"exp": True}, (), "exp"),
        ({"exp": float("nan")}, (), "exp"),
        ({}, ("iat",), "iat"),
        ({"iat": "now"}, (), "iat"),
        ({}, ("iss",), "iss"),
    ],
    ids=[
        "expired",
        "long-expired",
        "issued-in-the-future",
        "issued-tomorrow",
        "untrusted-audience",
        "audience-not-text",
        "no-audience",
        "azp-other-client",
        "azp-not-text",
        "no-sub",
        "empty-sub",
        "sub-number",
        "no-exp",
        "exp-text",
        "exp-bool",
        "exp-nan",
        "no-iat",
        "iat-text",
        "no-iss",
    ],
)
def test_an_id_token_failing_oidc_core_checks_is_refused(
    claims: dict[str, Any], drop: tuple[str, ...], word: str
) -> None:
    with pytest.raises(IdTokenError, match=word) as caught:
        check(make_id_token(drop=drop, **claims))
    assert "another-client" not in str(caught.value)  # names the claim, never its value


def test_the_leeway_allows_for_clock_skew() -> None:
    check(make_id_token(exp=START - LEEWAY + 1, iat=START - 3600))
    check(make_id_token(iat=START + LEEWAY - 1))
    with pytest.raises(IdTokenError, match="exp"):
        check(make_id_token(exp=START - 1, iat=START - 3600), leeway=0)


def test_an_audience_the_spec_trusts_may_ride_along() -> None:
    token = make_id_token(aud=[CLIENT_ID, "https://api.example"], azp=CLIENT_ID)
    claims = check(token, trusted_audiences={"https://api.example"})
    assert claims["aud"] == [CLIENT_ID, "https://api.example"]
    with pytest.raises(IdTokenError, match="aud"):
        check(make_id_token(aud=["https://api.example"]), trusted_audiences={"https://api.example"})


def test_a_provider_spec_declares_trusted_audiences() -> None:
    assert GOOGLE.trusted_audiences == frozenset()
    spec = GOOGLE.model_copy(update={"trusted_audiences": frozenset({"https://api.example"})})
    assert spec.trusted_audiences == {"https://api.example"}


# -- through the client: sign-in ------------------------------------------------------------


def start(client: Both) -> tuple[AuthorizationRequest, str]:
    request = client.client.authorize_url("google", REDIRECT)
    assert request.nonce is not None
    return request, request.nonce.get_secret_value()


def callback(request: AuthorizationRequest) -> dict[str, str]:
    return {"code": "4/code", "state": request.state.get_secret_value(), "iss": ISSUER}


async def test_the_exchange_refuses_an_id_token_expired_on_the_clients_clock(
    client: Both, http: Recorder, clock: FakeClock
) -> None:
    request, nonce = start(client)
    clock.advance(3600 + LEEWAY + 1)  # the user took an hour and more at the provider
    http.queue(200, {"access_token": "at", "id_token": make_id_token(nonce=nonce)})
    with pytest.raises(IdTokenError, match="exp"):
        await client("exchange_code", request, "4/code")


@pytest.mark.parametrize(
    ("claims", "word"),
    [
        ({"iat": START + 3600}, "iat"),
        ({"aud": [CLIENT_ID, "another-client"]}, "aud"),
        ({"azp": "another-client"}, "azp"),
    ],
    ids=["iat", "aud", "azp"],
)
async def test_sign_in_refuses_an_id_token_failing_the_checks(
    client: Both, http: Recorder, claims: dict[str, Any], word: str
) -> None:
    request, nonce = start(client)
    http.queue(200, {"access_token": "at", "id_token": make_id_token(nonce=nonce, **claims)})
    with pytest.raises(IdTokenError, match=word):
        await client("sign_in", request, callback(request))
    assert len(http.requests) == 1  # no userinfo request after a refused ID token


async def test_sign_in_refuses_a_userinfo_answer_for_another_subject(
    client: Both, http: Recorder
) -> None:
    """OIDC Core 5.3.2: otherwise the user would be signed in as whoever userinfo names."""
    request, nonce = start(client)
    http.queue(200, {"access_token": "at", "id_token": make_id_token(nonce=nonce, sub="42")})
    http.queue(200, {"sub": "1337", "email": "mallory@example.com"})
    with pytest.raises(IdTokenError, match="sub") as caught:
        await client("sign_in", request, callback(request))
    assert "1337" not in str(caught.value) and "42" not in str(caught.value)


async def test_sign_in_accepts_a_userinfo_answer_for_the_same_subject(
    client: Both, http: Recorder
) -> None:
    request, nonce = start(client)
    http.queue(200, {"access_token": "at", "id_token": make_id_token(nonce=nonce, sub="42")})
    http.queue(200, {"sub": "42", "email": "ada@example.com"})
    token = await client("sign_in", request, callback(request))
    assert token.user is not None and token.user.id == "42"


# -- through the client: refresh (OIDC Core 12.2) -------------------------------------------


def signed_in(id_token: str | None = None, refresh_token: str = "rt-old") -> TokenSet:
    return TokenSet(
        provider="google",
        access_token="at-old",
        refresh_token=refresh_token,
        expires_at=START - 1,
        id_token=make_id_token(nonce="n", azp=CLIENT_ID) if id_token is None else id_token,
    )


def trusting(client: Both, http: Recorder, clock: FakeClock, audience: str) -> Both:
    """A client of the same kind whose Google spec trusts ``audience``."""
    spec = GOOGLE.model_copy(update={"trusted_audiences": frozenset({audience})})
    options: dict[str, Any] = {
        "credentials": {"google": (CLIENT_ID, "secret")},
        "clock": clock,
        "environ": {},
        "providers": [spec],
    }
    transport = httpx.MockTransport(http)
    if isinstance(client.client, keyturn.Keyturn):
        return Both(keyturn.Keyturn(http_client=httpx.Client(transport=transport), **options))
    return Both(keyturn.AsyncKeyturn(http_client=httpx.AsyncClient(transport=transport), **options))


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "1337"},
        {"iss": "accounts.google.com"},  # a spelling Google's spec accepts, but not the same
        {"aud": [CLIENT_ID, "https://api.example"]},  # trusted, but not the same
    ],
    ids=["another-sub", "another-iss", "another-aud"],
)
async def test_a_refresh_whose_id_token_is_not_the_sessions_is_a_permanent_failure(
    client: Both, http: Recorder, clock: FakeClock, claims: dict[str, Any]
) -> None:
    client = trusting(client, http, clock, "https://api.example")
    http.queue(
        200,
        {
            "access_token": "at-new",
            "expires_in": 3599,
            "refresh_token": "rt-new",
            "id_token": make_id_token(azp=CLIENT_ID, **claims),
        },
    )
    with pytest.raises(RefreshIdTokenError) as caught:
        await client("refresh", signed_in())
    error = caught.value
    assert isinstance(error, keyturn.ProviderError)
    assert error.permanent and error.operation == "refresh" and error.provider == "google"
    assert error.error == "id_token_mismatch"
    assert "1337" not in str(error) and "api.example" not in str(error)


async def test_jwt_keeps_the_old_tokens_when_the_refreshed_id_token_names_another_subject(
    client: Both, http: Recorder
) -> None:
    old = signed_in()
    token = keyturn.JWT(tokens=old)
    http.queue(
        200,
        {
            "access_token": "at-new",
            "expires_in": 3599,
            "id_token": make_id_token(azp=CLIENT_ID, sub="1337"),
        },
    )
    after = await client("jwt", token)
    assert after.tokens == old  # access, refresh and ID token all kept
    assert after.error == REFRESH_ACCESS_TOKEN_ERROR
    assert after.refresh_failure is not None
    assert after.refresh_failure.error == "id_token_mismatch"
    assert after.refresh_failure.permanent
    assert len(http.requests) == 1
    # Not sent again within the reuse window: the refused outcome is remembered.
    again = await client("jwt", token)
    assert again.error == REFRESH_ACCESS_TOKEN_ERROR and len(http.requests) == 1


async def test_a_refreshed_id_token_failing_the_checks_is_a_permanent_failure(
    client: Both, http: Recorder
) -> None:
    http.queue(
        200,
        {
            "access_token": "at-new",
            "expires_in": 3599,
            "id_token": make_id_token(azp=CLIENT_ID, exp=START - 3600, iat=START - 7200),
        },
    )
    with pytest.raises(RefreshIdTokenError, match="exp") as caught:
        await client("refresh", signed_in())
    assert caught.value.permanent and caught.value.error == "invalid_id_token"


async def test_a_refreshed_id_token_of_the_same_session_replaces_the_old_one(
    client: Both, http: Recorder, clock: FakeClock
) -> None:
    clock.advance(3000)
    new = make_id_token(azp=CLIENT_ID, iat=int(clock.now), exp=int(clock.now) + 3600)
    http.queue(200, {"access_token": "at-new", "expires_in": 3599, "id_token": new})
    tokens = await client("refresh", signed_in())
    assert tokens.id_token is not None and tokens.id_token.get_secret_value() == new
    assert unverified_claims(new)["sub"] == "42"


async def test_a_refresh_without_an_id_token_keeps_the_old_one_unchecked(
    client: Both, http: Recorder, clock: FakeClock
) -> None:
    """The old ID token has long expired by now; it is not the refresh's to judge."""
    clock.advance(10 * 86400)
    old = signed_in()
    http.queue(200, {"access_token": "at-new", "expires_in": 3599})
    tokens = await client("refresh", old)
    assert tokens.id_token == old.id_token


async def test_a_first_id_token_on_refresh_gets_the_ordinary_checks(
    client: Both, http: Recorder
) -> None:
    """Tokens without a readable ID token have nothing to compare to."""
    http.queue(
        200,
        {"access_token": "at-new", "expires_in": 3599, "id_token": make_id_token(aud="x")},
    )
    with pytest.raises(RefreshIdTokenError, match="aud"):
        await client("refresh", signed_in("not-a-jwt", refresh_token="rt-1"))
    good = make_id_token()
    http.queue(200, {"access_token": "at-new", "expires_in": 3599, "id_token": good})
    tokens = await client("refresh", signed_in("not-a-jwt", refresh_token="rt-2"))
    assert tokens.id_token is not None and tokens.id_token.get_secret_value() == good


# -- tokens that keep only whom their ID token named (a jwt session cookie) ------------------


def identity_only() -> TokenSet:
    """Signed-in tokens as a ``jwt`` session cookie keeps them: no ID token, its identity."""
    full = signed_in()
    assert full.id_token is not None
    identity = IdTokenIdentity.of(full.id_token.get_secret_value())
    assert identity is not None and identity.sub == "42"
    return full.model_copy(update={"id_token": None, "id_token_identity": identity})


@pytest.mark.parametrize(
    "claims",
    [{"sub": "1337"}, {"iss": "accounts.google.com"}, {"aud": [CLIENT_ID, "https://api.example"]}],
    ids=["another-sub", "another-iss", "another-aud"],
)
async def test_a_refreshed_id_token_is_held_to_the_identity_kept_in_the_tokens_place(
    client: Both, http: Recorder, clock: FakeClock, claims: dict[str, Any]
) -> None:
    client = trusting(client, http, clock, "https://api.example")
    http.queue(
        200,
        {
            "access_token": "at-new",
            "expires_in": 3599,
            "id_token": make_id_token(azp=CLIENT_ID, **claims),
        },
    )
    with pytest.raises(RefreshIdTokenError) as caught:
        await client("refresh", identity_only())
    assert caught.value.error == "id_token_mismatch" and caught.value.permanent


async def test_a_refreshed_id_token_of_the_kept_identity_passes(
    client: Both, http: Recorder
) -> None:
    new = make_id_token(azp=CLIENT_ID)
    http.queue(200, {"access_token": "at-new", "expires_in": 3599, "id_token": new})
    tokens = await client("refresh", identity_only())
    assert tokens.id_token is not None and tokens.id_token.get_secret_value() == new


async def test_a_refresh_without_an_id_token_carries_the_kept_identity_over(
    client: Both, http: Recorder
) -> None:
    old = identity_only()
    http.queue(200, {"access_token": "at-new", "expires_in": 3599, "refresh_token": "rt-2"})
    tokens = await client("refresh", old)
    assert tokens.id_token is None and tokens.id_token_identity == old.id_token_identity
    # ...so the refresh after it is still held to the same subject.
    http.queue(
        200,
        {"access_token": "at-3", "expires_in": 3599, "id_token": make_id_token(sub="1337")},
    )
    with pytest.raises(RefreshIdTokenError, match="sub"):
        await client("refresh", tokens)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        make_id_token(sub=7),
        make_id_token(aud=[CLIENT_ID, 3]),
        make_id_token(drop=("iss",)),
    ],
    ids=["unreadable", "numeric-sub", "odd-aud", "no-iss"],
)
def test_an_id_token_without_a_readable_identity_gives_none(token: str) -> None:
    assert IdTokenIdentity.of(token) is None


def test_the_identity_is_masked_nowhere_and_holds_no_secret() -> None:
    identity = IdTokenIdentity.of(make_id_token(nonce="secret-nonce"))
    assert identity is not None
    assert identity.claims() == {"iss": ISSUER, "sub": "42", "aud": [CLIENT_ID]}
    assert "secret-nonce" not in repr(identity) + identity.model_dump_json()
