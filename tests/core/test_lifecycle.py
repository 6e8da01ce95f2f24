"""The NextAuth refresh-token-rotation guide, step by step, through both clients.

Sign in, read while valid, refresh when due (with leeway), survive a transient failure, end in
``RefreshAccessTokenError`` on a permanent one, and sign in again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import keyturn
from keyturn import REFRESH_ACCESS_TOKEN_ERROR, REVEAL, hookimpl
from keyturn.plugins import get_plugin_manager
from tests.conftest import CLIENT_ID, CLIENT_SECRET, Both, FakeClock, Recorder, sign_google_id_token

REDIRECT = "https://app.example/auth/callback/google"
ISSUER = "https://accounts.google.com"


def id_token(nonce: str, now: float, aud: str = CLIENT_ID) -> str:
    claims = {
        "iss": "https://accounts.google.com",
        "aud": aud,
        "sub": "42",
        "nonce": nonce,
        "iat": int(now),
        "exp": int(now) + 3600,
    }
    return sign_google_id_token(claims)


@pytest.fixture(params=["sync", "async"])
def make_client(
    request: pytest.FixtureRequest, http: Recorder, clock: FakeClock
) -> Callable[..., Both]:
    def make(plugins: list[object] | None = None) -> Both:
        pm = get_plugin_manager(plugins=plugins or [], environ={})
        creds = {"google": (CLIENT_ID, CLIENT_SECRET)}
        transport = httpx.MockTransport(http)
        client: keyturn.Keyturn | keyturn.AsyncKeyturn
        if request.param == "sync":
            client = keyturn.Keyturn(
                creds,
                http_client=httpx.Client(transport=transport),
                clock=clock,
                plugin_manager=pm,
                environ={},
            )
        else:
            client = keyturn.AsyncKeyturn(
                creds,
                http_client=httpx.AsyncClient(transport=transport),
                clock=clock,
                plugin_manager=pm,
                environ={},
            )
        return Both(client)

    return make


async def sign_in(kt: Both, http: Recorder, *, refresh_token: str = "rt-1") -> keyturn.JWT:
    request = kt.client.authorize_url("google", REDIRECT)
    assert request.nonce is not None
    http.queue(
        200,
        {
            "access_token": "at-1",
            "expires_in": 3599,
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "scope": "openid https://www.googleapis.com/auth/userinfo.email",
            "id_token": id_token(request.nonce.get_secret_value(), kt.client.clock()),
        },
    )
    http.queue(
        200,
        {
            "sub": "42",
            "name": "Ada",
            "email": "ada@example.com",
            "email_verified": True,
            "picture": "https://img.example/ada.png",
        },
    )
    query = {"code": "4/code", "state": request.state.get_secret_value(), "iss": ISSUER}
    token: keyturn.JWT = await kt("sign_in", request, query)
    return token


def secret(value: Any) -> str:
    return str(value.get_secret_value())


async def test_the_seed_from_sign_in_to_refresh_error_and_back(
    make_client: Callable[..., Both], http: Recorder, clock: FakeClock
) -> None:
    kt = make_client()
    start = clock.now

    # 1. Sign in: the code exchange and the profile, then jwt(signIn).
    token = await sign_in(kt, http)
    assert [r.url.path for r in http.requests] == ["/token", "/v1/userinfo"]
    exchange = http.form(0)
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["redirect_uri"] == REDIRECT
    assert "code_verifier" in exchange
    assert secret(token.tokens.access_token) == "at-1"
    assert token.tokens.expires_at == start + 3599  # epoch seconds, not milliseconds
    assert token.user is not None and token.user.email == "ada@example.com"
    assert token.error is None

    # 2. The session carries user, access token and expiry, never the refresh token.
    session = kt.client.session(token)
    dumped = session.model_dump(mode="json", context=REVEAL)
    assert dumped["access_token"] == "at-1"
    assert "rt-1" not in json.dumps(dumped)
    assert session.user == token.user and session.error is None

    # 3. Still valid (outside the 60 s leeway): returned untouched, no request.
    clock.advance(3599 - 61)
    assert await kt("jwt", token) is token
    assert len(http.requests) == 2

    # 4. Inside the leeway: refreshed. Google sends no refresh token; the old one stays.
    clock.advance(2)
    http.queue(200, {"access_token": "at-2", "expires_in": 3599, "token_type": "Bearer"})
    token = await kt("jwt", token)
    refresh = http.form()
    assert refresh == {
        "grant_type": "refresh_token",
        "refresh_token": "rt-1",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    assert secret(token.tokens.access_token) == "at-2"
    assert secret(token.tokens.refresh_token) == "rt-1"
    assert token.tokens.expires_at == clock.now + 3599
    assert token.user is not None and token.user.name == "Ada"

    # 5. A transient failure (503) keeps everything, sets no error, and is retried next time.
    clock.advance(3600)
    http.queue(503, raw=b"<html>unavailable</html>", content_type="text/html")
    failed = await kt("jwt", token)
    assert failed.tokens == token.tokens
    assert failed.error is None
    assert failed.refresh_failure is not None and not failed.refresh_failure.permanent
    assert failed.refresh_failure.status == 503
    assert kt.client.session(failed).error is None
    http.queue(200, {"access_token": "at-3", "expires_in": 3599})
    token = await kt("jwt", failed)
    assert secret(token.tokens.access_token) == "at-3"
    assert token.refresh_failure is None

    # 6. A permanent failure (invalid_grant): old tokens kept, RefreshAccessTokenError set.
    clock.advance(3600)
    http.queue(
        400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
    )
    dead = await kt("jwt", token)
    assert dead.error == REFRESH_ACCESS_TOKEN_ERROR
    assert dead.tokens == token.tokens
    assert dead.refresh_failure is not None
    assert (dead.refresh_failure.error, dead.refresh_failure.status) == ("invalid_grant", 400)
    assert kt.client.session(dead).error == REFRESH_ACCESS_TOKEN_ERROR
    # The provider is not asked again with a dead grant.
    before = len(http.requests)
    assert (await kt("jwt", dead)).error == REFRESH_ACCESS_TOKEN_ERROR
    assert len(http.requests) == before

    # 7. The app sends the user to sign in again: a fresh state without the error.
    again = await sign_in(kt, http, refresh_token="rt-new")
    assert again.error is None and secret(again.tokens.refresh_token) == "rt-new"


async def test_missing_refresh_token_is_permanent_without_a_request(
    make_client: Callable[..., Both], http: Recorder, clock: FakeClock
) -> None:
    kt = make_client()
    tokens = keyturn.TokenSet(provider="google", access_token="at", expires_at=int(clock.now))
    token = await kt("jwt", tokens=tokens)
    result = await kt("jwt", token)
    assert result.error == REFRESH_ACCESS_TOKEN_ERROR
    assert result.refresh_failure is not None
    assert result.refresh_failure.error == "no_refresh_token"
    assert http.requests == []


async def test_expired_refresh_token_is_not_sent(
    make_client: Callable[..., Both], http: Recorder, clock: FakeClock
) -> None:
    kt = make_client()
    tokens = keyturn.TokenSet(
        provider="google",
        access_token="at",
        refresh_token="rt",
        expires_at=int(clock.now) + 3599,
        refresh_token_expires_at=int(clock.now) + 604799,
    )
    token = await kt("jwt", tokens=tokens)
    clock.advance(604799)
    result = await kt("jwt", token)
    assert result.error == REFRESH_ACCESS_TOKEN_ERROR
    assert result.refresh_failure is not None
    assert result.refresh_failure.error == "refresh_token_expired"
    assert http.requests == []
    with pytest.raises(keyturn.RefreshTokenUnusable) as caught:
        await kt("refresh", tokens)
    assert caught.value.permanent


async def test_token_without_expiry_is_never_refreshed(
    make_client: Callable[..., Both], http: Recorder, clock: FakeClock
) -> None:
    kt = make_client()
    tokens = keyturn.TokenSet(provider="google", access_token="at", refresh_token="rt")
    token = await kt("jwt", tokens=tokens)
    clock.advance(10 * 365 * 86400)
    assert await kt("jwt", token) is token
    assert http.requests == []


async def test_network_failure_is_transient_and_keeps_the_session(
    make_client: Callable[..., Both], http: Recorder, clock: FakeClock
) -> None:
    kt = make_client()
    tokens = keyturn.TokenSet(
        provider="google", access_token="at", refresh_token="rt", expires_at=int(clock.now)
    )
    token = await kt("jwt", tokens=tokens)
    http.fail(httpx.ConnectError("connection refused"))
    result = await kt("jwt", token)
    assert result.error is None
    assert result.refresh_failure is not None
    assert (result.refresh_failure.error, result.refresh_failure.permanent) == (
        "network_error",
        False,
    )
    assert result.tokens == token.tokens


@pytest.mark.parametrize("leeway", [0, 300])
async def test_leeway_is_configurable(leeway: int, http: Recorder, clock: FakeClock) -> None:
    client = keyturn.Keyturn(
        {"google": (CLIENT_ID, CLIENT_SECRET)},
        leeway=leeway,
        clock=clock,
        http_client=httpx.Client(transport=httpx.MockTransport(http)),
        environ={},
    )
    tokens = keyturn.TokenSet(
        provider="google", access_token="at", refresh_token="rt", expires_at=int(clock.now) + 301
    )
    token = client.jwt(tokens=tokens)
    clock.advance(2)  # 299 s left
    http.queue(200, {"access_token": "at-2", "expires_in": 3599})
    result = client.jwt(token)
    assert (result is token) == (leeway == 0)
    assert len(http.requests) == (0 if leeway == 0 else 1)


def test_negative_leeway_is_refused() -> None:
    with pytest.raises(keyturn.ConfigurationError):
        keyturn.Keyturn(leeway=-1, environ={})


class AddsClaims:
    """An app's wrappers around the default callbacks, as NextAuth's callbacks option."""

    @hookimpl(wrapper=True)
    def keyturn_jwt(self, trigger: str, profile: keyturn.Profile | None) -> Any:
        token = yield
        if trigger == "signIn" and profile is not None:
            return token.model_copy(update={"claims": {"role": "admin", "sub": profile.id}})
        return token

    @hookimpl(wrapper=True)
    def keyturn_session(self, token: keyturn.JWT) -> Any:
        session = yield
        return session.model_copy(update={"claims": {"role": token.claims.get("role")}})


async def test_app_wrappers_add_claims_and_shape_the_session(
    make_client: Callable[..., Both], http: Recorder, clock: FakeClock
) -> None:
    kt = make_client(plugins=[AddsClaims()])
    token = await sign_in(kt, http)
    assert token.claims == {"role": "admin", "sub": "42"}
    clock.advance(3600)
    http.queue(200, {"access_token": "at-2", "expires_in": 3599})
    refreshed = await kt("jwt", token)
    assert refreshed.claims == token.claims  # claims survive a refresh
    assert kt.client.session(refreshed).claims == {"role": "admin"}
