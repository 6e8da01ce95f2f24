"""The emulator's ``keycloak`` and ``discord`` profiles, over real HTTP on loopback, alone and
with the installed plugins pointed at them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

import keyturn
from keyturn.pkce import code_challenge, new_code_verifier
from keyturn_emulator import Emulator
from tests.conftest import FakeClock

REDIRECT = "http://127.0.0.1:8765/callback"
SIXTY_DAYS = 60 * 86400


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock) -> Iterator[Emulator]:
    with Emulator(clock=clock) as emulator:
        yield emulator


def secret(value: Any) -> str:
    return str(value.get_secret_value())


def raw_tokens(emu: Emulator, profile: str, scope: str) -> dict[str, Any]:
    """A code exchange as any client sends it, the client in the form."""
    verifier = new_code_verifier()
    query = {
        "response_type": "code",
        "client_id": emu.credentials.client_id,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "state-example",
        "code_challenge": code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    url = emu.endpoints(profile)["authorization_endpoint"] + "?" + urlencode(query)
    code = emu.authorize(url)["code"]
    response = token_post(
        emu,
        profile,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def token_post(emu: Emulator, profile: str, form: dict[str, str]) -> httpx.Response:
    body = {
        "client_id": emu.credentials.client_id,
        "client_secret": secret(emu.credentials.client_secret),
        **form,
    }
    return httpx.post(
        emu.endpoints(profile)["token_endpoint"], data=body, headers={"Accept": "application/json"}
    )


def refresh(emu: Emulator, profile: str, refresh_token: str) -> httpx.Response:
    return token_post(emu, profile, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def client(emu: Emulator, provider: str, clock: FakeClock) -> keyturn.Keyturn:
    """The installed plugin, pointed at the emulator's profile of the same name."""
    spec = emu.point(keyturn.Keyturn(environ={}).provider(provider, deployed=False))
    return keyturn.Keyturn({provider: emu.credentials}, providers=[spec], environ={}, clock=clock)


def sign_in(kt: keyturn.Keyturn, emu: Emulator, provider: str, **params: Any) -> keyturn.JWT:
    request = kt.authorize_url(provider, REDIRECT, **params)
    return kt.sign_in(request, emu.authorize(request.url))


# -- keycloak ---------------------------------------------------------------------------------


def test_keycloak_answers_with_refresh_expires_in(emu: Emulator) -> None:
    data = raw_tokens(emu, "keycloak", "openid email")
    assert data["refresh_expires_in"] == 1800  # "SSO Session Idle" by default
    assert "refresh_token_expires_in" not in data
    emu.configure(refresh_token_lifetime=120)
    assert raw_tokens(emu, "keycloak", "openid email")["refresh_expires_in"] == 120


def test_keycloak_offline_tokens_report_0_and_do_not_expire(
    emu: Emulator, clock: FakeClock
) -> None:
    data = raw_tokens(emu, "keycloak", "openid offline_access")
    assert data["refresh_expires_in"] == 0
    clock.advance(SIXTY_DAYS)
    again = refresh(emu, "keycloak", data["refresh_token"])
    assert again.status_code == 200, again.text
    assert again.json()["refresh_expires_in"] == 0


def test_keycloak_keeps_the_old_refresh_token_and_words_its_refusals(
    emu: Emulator, clock: FakeClock
) -> None:
    data = raw_tokens(emu, "keycloak", "openid")
    first = refresh(emu, "keycloak", data["refresh_token"]).json()
    assert first["refresh_token"] != data["refresh_token"]
    # Revoke Refresh Token is off by default: the old one still works.
    assert refresh(emu, "keycloak", data["refresh_token"]).status_code == 200
    clock.advance(1800)  # SSO Session Idle passes
    expired = refresh(emu, "keycloak", first["refresh_token"])
    assert (expired.status_code, expired.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "Token is not active"},
    )
    unknown = refresh(emu, "keycloak", "kc_rt_never-issued")
    assert unknown.json()["error_description"] == "Invalid refresh token"


def test_the_keycloak_plugin_reads_the_emulators_lifetimes(emu: Emulator, clock: FakeClock) -> None:
    with client(emu, "keycloak", clock) as kt:
        normal = sign_in(kt, emu, "keycloak")
        offline = sign_in(kt, emu, "keycloak", scopes=["openid", "email", "offline_access"])
    assert normal.tokens.refresh_token_expires_at == int(clock.now) + 1800
    assert "refresh_expires_in" not in normal.tokens.extra
    assert offline.tokens.refresh_token_expires_at is None
    clock.advance(SIXTY_DAYS)
    with client(emu, "keycloak", clock) as kt:
        refreshed = kt.refresh(offline.tokens)
        assert refreshed.refresh_token_expires_at is None
        # The normal token's refresh_expires_in passed long ago: keyturn does not send it.
        with pytest.raises(keyturn.RefreshTokenUnusable):
            kt.refresh(normal.tokens)


def test_the_keycloak_plugin_explains_a_refused_refresh(emu: Emulator, clock: FakeClock) -> None:
    with client(emu, "keycloak", clock) as kt:
        token = sign_in(kt, emu, "keycloak")
        assert emu.revoke_grants("keycloak") == 1
        with pytest.raises(keyturn.OAuthError) as caught:
            kt.refresh(token.tokens)
    assert caught.value.permanent
    assert caught.value.description is not None
    assert caught.value.description.startswith("Token is not active: ")


# -- discord ----------------------------------------------------------------------------------


def test_discord_answers_injected_faults_as_rate_limits(emu: Emulator) -> None:
    data = raw_tokens(emu, "discord", "identify email")
    emu.configure(fault_rate=1.0)
    limited = refresh(emu, "discord", data["refresh_token"])
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert limited.json() == {
        "message": "You are being rate limited.",
        "retry_after": 1.0,
        "global": False,
    }
    counters = emu.counters("discord")
    assert (counters["fault_429"], counters["fault_5xx"]) == (1, 0)


def test_the_discord_plugin_reads_a_rate_limit_as_transient_with_its_wait(
    emu: Emulator, clock: FakeClock
) -> None:
    with client(emu, "discord", clock) as kt:
        token = sign_in(kt, emu, "discord")
        emu.configure(fault_rate=1.0)
        with pytest.raises(keyturn.InvalidResponseError) as caught:
            kt.refresh(token.tokens)
        emu.configure(fault_rate=0.0)
        # Not processed: the same refresh token still works, and rotates.
        refreshed = kt.refresh(token.tokens)
    assert (caught.value.error, caught.value.status, caught.value.permanent) == (
        "rate_limited",
        429,
        False,
    )
    assert caught.value.retry_after == 1.0
    assert refreshed.refresh_token != token.tokens.refresh_token


def test_the_discord_plugin_reads_the_user_object(emu: Emulator, clock: FakeClock) -> None:
    with client(emu, "discord", clock) as kt:
        token = sign_in(kt, emu, "discord")
        assert token.user is not None
        assert token.user.id.isdigit()
        assert token.user.email == "ada@example.com"
        assert token.user.email_verified is True
        assert token.user.image is not None
        assert token.user.image.startswith("https://cdn.discordapp.com/embed/avatars/")
        bare = sign_in(kt, emu, "discord", scopes=["identify"])
    assert bare.user is not None
    assert (bare.user.email, bare.user.email_verified) == (None, None)
