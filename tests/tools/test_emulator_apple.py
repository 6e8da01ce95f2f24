"""The emulator's ``apple`` profile, driven by the keyturn-apple plugin and by hand.

Sign in with Apple as documented: the authorize endpoint answers ``response_mode=form_post``
with a page that posts ``code``, ``state`` and, the first time, ``user``
(https://developer.apple.com/documentation/signinwithapple/incorporating-sign-in-with-apple-into-other-platforms);
the client secret is an ES256 JWT checked against a registered key
(https://developer.apple.com/documentation/signinwithapplerestapi/generate-and-validate-tokens);
refresh tokens never rotate; revocation authenticates the client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import keyturn
from keyturn_apple import APPLE
from keyturn_emulator import Emulator
from tests.conftest import FakeClock

REDIRECT = "http://127.0.0.1:8765/callback/apple"
TEAM_ID = "ABCDE12345"
KEY_ID = "TESTKEY123"


def _key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


PRIVATE_KEY = _key()
CLOCK = FakeClock()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    credentials = keyturn.ClientCredentials(
        client_id="x", private_key=PRIVATE_KEY, private_key_id=KEY_ID
    )
    assert credentials.signing_key is not None
    jwk = {**credentials.signing_key.public_jwk(), "kid": KEY_ID}
    with Emulator(clock=CLOCK, client_jwks={"keys": [jwk]}) as emulator:
        yield emulator


def _client(emu: Emulator, **kwargs: Any) -> keyturn.Keyturn:
    credentials = keyturn.ClientCredentials(
        client_id=emu.credentials.client_id, private_key=PRIVATE_KEY, private_key_id=KEY_ID
    )
    kwargs.setdefault("settings", {"apple": {"team_id": TEAM_ID}})
    return keyturn.Keyturn(
        {"apple": credentials},
        providers=[emu.point(APPLE)],
        environ={},
        clock=CLOCK,
        **kwargs,
    )


def test_sign_in_posts_the_callback_and_the_name_the_first_time_only(emu: Emulator) -> None:
    with _client(emu) as kt:
        request = kt.authorize_url("apple", REDIRECT)
        posted = emu.authorize(request.url)
        assert set(posted) == {"code", "state", "user"}
        assert json.loads(posted["user"])["name"] == {"firstName": "Ada", "lastName": "Example"}
        token = kt.sign_in(request, posted)
        assert token.user is not None
        assert token.user.name == "Ada Example"
        assert token.user.id == token.user.raw["sub"]
        assert token.tokens.refresh_token is not None

        again = kt.authorize_url("apple", REDIRECT)
        second = emu.authorize(again.url)
        assert "user" not in second  # Apple sends the name once
        later = kt.sign_in(again, second)
        assert later.user is not None and later.user.name is None

        page = httpx.get(kt.authorize_url("apple", REDIRECT).url)
    assert page.status_code == 200
    assert "<form method='post' action='http://127.0.0.1:8765/callback/apple'>" in page.text
    assert "document.forms[0].submit()" in page.text


def test_refresh_does_not_rotate_and_revoke_authenticates(emu: Emulator) -> None:
    with _client(emu) as kt:
        request = kt.authorize_url("apple", REDIRECT)
        tokens = kt.sign_in(request, emu.authorize(request.url)).tokens
        refreshed = kt.refresh(tokens)
        assert refreshed.refresh_token == tokens.refresh_token
        assert refreshed.access_token != tokens.access_token
        assert kt.refresh(refreshed).refresh_token == tokens.refresh_token  # still valid
        kt.revoke(refreshed)
    with _client(emu) as fresh, pytest.raises(keyturn.OAuthError) as caught:
        fresh.refresh(refreshed)
    assert caught.value.error == "invalid_grant" and caught.value.permanent


def _token_post(emu: Emulator, secret: str) -> httpx.Response:
    url = emu.endpoints("apple")["token_endpoint"]
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "r-unknown",
        "client_id": emu.credentials.client_id,
        "client_secret": secret,
    }
    return httpx.post(url, data=form)


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"aud": "https://example.com"}, "aud must be"),
        ({"sub": "someone-else"}, "sub must be the client id"),
        ({"exp": -10}, "it has expired"),
        ({"exp": 15_777_001}, "more than 15777000 seconds"),
        ({"iss": ""}, "iss must be the team id"),
    ],
    ids=["aud", "sub", "expired", "too-long", "no-team"],
)
def test_a_bad_client_secret_jwt_is_invalid_client(
    emu: Emulator, change: dict[str, Any], detail: str
) -> None:
    now = int(CLOCK())
    claims: dict[str, Any] = {
        "iss": TEAM_ID,
        "sub": emu.credentials.client_id,
        "aud": "https://appleid.apple.com",
        "iat": now,
        "exp": now + 300,
    }
    for name, value in change.items():
        claims[name] = now + value if name == "exp" else value
    secret = keyturn.sign_jwt(PRIVATE_KEY, claims, kid=KEY_ID)
    response = _token_post(emu, secret)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    assert detail in response.json()["error_description"]


def test_a_static_secret_and_an_unknown_kid_are_refused(emu: Emulator) -> None:
    assert _token_post(emu, "a-static-client-secret").json()["error"] == "invalid_client"
    now = int(CLOCK())
    claims = {"iss": TEAM_ID, "sub": emu.credentials.client_id, "aud": "https://appleid.apple.com"}
    secret = keyturn.sign_jwt(PRIVATE_KEY, {**claims, "iat": now, "exp": now + 60}, kid="OTHER")
    answer = _token_post(emu, secret).json()
    assert answer["error"] == "invalid_client" and "kid" in answer["error_description"]
