"""Google's ID tokens must be signed by a key of Google's key set, at sign-in and on refresh.

The spec keyturn-google ships, pointed at the emulator's ``google`` profile (its endpoints and
its key set, nothing else changed), signs in and refreshes over real HTTP on loopback. A
plugin wrapped around the code exchange and the refresh swaps the emulator's ID token for the
same claims signed another way: with the emulator's own active key (accepted: the control),
with another RSA key under the emulator's ``kid`` or under a ``kid`` the set does not hold,
HS256 with the client secret (how the emulator signed before it had keys), or ``alg: none``.
Each of those is refused: ``IdTokenError`` at sign-in, and on refresh
``RefreshIdTokenError`` with the old tokens kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from joserfc.jwk import RSAKey
from joserfc.jws import JWSRegistry
from pydantic import SecretStr

import keyturn
from keyturn import REFRESH_ACCESS_TOKEN_ERROR, Flow, RefreshIdTokenError, TokenSet, hookimpl
from keyturn.idtoken import IdTokenError, unverified_claims
from keyturn_emulator import Emulator
from keyturn_google import GOOGLE

REDIRECT = "http://127.0.0.1:8765/callback"
#: A key Google's set (here: the emulator's) does not hold.
STRANGER = RSAKey.generate_key(2048, private=True)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(claims: dict[str, Any], alg: str, kid: str, sign: Callable[[bytes], bytes]) -> str:
    header = _b64(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode())
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def secret(emu: Emulator) -> str:
    assert emu.credentials.client_secret is not None
    return emu.credentials.client_secret.get_secret_value()


def _rs256(key: RSAKey) -> Callable[[bytes], bytes]:
    return lambda data: JWSRegistry.algorithms["RS256"].sign(data, key)


#: name -> how the claims are signed, given the emulator.
SIGNERS: dict[str, Callable[[Emulator, dict[str, Any]], str]] = {
    "another key under the emulator's kid": lambda emu, claims: _signed(
        claims, "RS256", emu.signing_kid("google"), _rs256(STRANGER)
    ),
    "another key under a kid the set lacks": lambda emu, claims: _signed(
        claims, "RS256", "not-in-googles-set", _rs256(STRANGER)
    ),
    "HS256 with the client secret": lambda emu, claims: _signed(
        claims,
        "HS256",
        emu.signing_kid("google"),
        lambda data: hmac.new(secret(emu).encode(), data, hashlib.sha256).digest(),
    ),
    "alg none": lambda emu, claims: _signed(claims, "none", emu.signing_kid("google"), bytes),
}


class Resign:
    """Swaps the ID token of every code exchange (and, with ``refresh``, of every refresh
    answer, which the emulator sends without one) for its claims signed by ``sign``."""

    def __init__(
        self, sign: Callable[[dict[str, Any]], str], *, exchange: bool, refresh: bool
    ) -> None:
        self.sign = sign
        self.exchange = exchange
        self.refresh = refresh
        #: The claims of the last ID token handed out.
        self.claims: dict[str, Any] = {}
        self.swapped = 0

    def _swap(self, flow: Flow[TokenSet], fresh: bool) -> Flow[TokenSet]:
        tokens = yield from flow
        if tokens.id_token is not None:
            self.claims = unverified_claims(tokens.id_token.get_secret_value())
        if not fresh:
            return tokens
        now = int(time.time())
        claims = {**self.claims, "iat": now, "exp": now + 3600}
        if tokens.id_token is None:  # a refresh: the claims of sign-in, no nonce, no at_hash
            claims = {k: v for k, v in claims.items() if k not in ("nonce", "at_hash")}
        self.swapped += 1
        return tokens.model_copy(update={"id_token": SecretStr(self.sign(claims))})

    @hookimpl(wrapper=True)
    def keyturn_exchange_code(self) -> Any:
        flow = yield
        return None if flow is None else self._swap(flow, self.exchange)

    @hookimpl(wrapper=True)
    def keyturn_refresh(self) -> Any:
        flow = yield
        return None if flow is None else self._swap(flow, self.refresh)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def client(emu: Emulator, plugin: Resign) -> keyturn.Keyturn:
    pm = keyturn.get_plugin_manager()
    pm.register(plugin)
    spec = emu.point(GOOGLE)
    return keyturn.Keyturn(
        {"google": emu.credentials}, providers=[spec], plugin_manager=pm, environ={}
    )


def test_the_shipped_spec_verifies_with_the_key_set_it_is_pointed_at(emu: Emulator) -> None:
    assert GOOGLE.jwks_uri == "https://www.googleapis.com/oauth2/v3/certs"
    assert GOOGLE.id_token_signing_algs == frozenset({"RS256"})
    assert GOOGLE.discovery_url is None
    pointed = emu.point(GOOGLE)
    assert pointed.jwks_uri == emu.jwks_uri("google")
    assert pointed.id_token_signing_algs == GOOGLE.id_token_signing_algs
    changed = {
        name
        for name in type(GOOGLE).model_fields
        if getattr(pointed, name) != getattr(GOOGLE, name)
    }
    assert changed <= {
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "revocation_endpoint",
        "jwks_uri",
        "issuer",
        "issuer_aliases",
    }


def test_an_id_token_re_signed_with_the_emulators_key_signs_in_and_refreshes(
    emu: Emulator,
) -> None:
    plugin = Resign(emu.sign_id_token, exchange=True, refresh=True)
    with client(emu, plugin) as kt:
        request = kt.authorize_url("google", REDIRECT)
        token = kt.sign_in(request, emu.authorize(request.url))
        assert token.tokens.id_token is not None
        refreshed = kt.refresh(token.tokens)
    assert plugin.swapped >= 1
    assert refreshed.id_token is not None and refreshed.id_token != token.tokens.id_token
    assert unverified_claims(refreshed.id_token.get_secret_value())["sub"] == plugin.claims["sub"]


@pytest.mark.parametrize("forgery", list(SIGNERS))
def test_a_sign_in_whose_id_token_google_did_not_sign_is_refused(
    emu: Emulator, forgery: str
) -> None:
    plugin = Resign(lambda claims: SIGNERS[forgery](emu, claims), exchange=True, refresh=False)
    jwks_before = emu.counters("google")["jwks"]
    with client(emu, plugin) as kt:
        request = kt.authorize_url("google", REDIRECT)
        callback = emu.authorize(request.url)
        with pytest.raises(IdTokenError) as caught:
            kt.sign_in(request, callback)
    assert plugin.swapped == 1
    message = str(caught.value)
    assert secret(emu) not in message
    # The set is read once, before the exchange: fetched by this very sign-in, it is not
    # fetched again for a kid it does not hold.
    assert emu.counters("google")["jwks"] - jwks_before == 1


@pytest.mark.parametrize("forgery", list(SIGNERS))
def test_a_refresh_whose_id_token_google_did_not_sign_keeps_the_old_tokens(
    emu: Emulator, forgery: str
) -> None:
    plugin = Resign(lambda claims: SIGNERS[forgery](emu, claims), exchange=False, refresh=True)
    with client(emu, plugin) as kt:
        request = kt.authorize_url("google", REDIRECT)
        signed_in = kt.sign_in(request, emu.authorize(request.url))
        old = signed_in.tokens
        with pytest.raises(RefreshIdTokenError) as caught:
            kt.refresh(old)
        error = caught.value
        assert error.permanent and error.error == "invalid_id_token"
        assert error.operation == "refresh"
        assert secret(emu) not in str(error)
        due = signed_in.model_copy(
            update={"tokens": old.model_copy(update={"expires_at": time.time() - 1})}
        )
        after = kt.jwt(due)
    assert after.tokens == due.tokens
    assert after.error == REFRESH_ACCESS_TOKEN_ERROR
    assert after.refresh_failure is not None
    assert after.refresh_failure.error == "invalid_id_token"
    assert after.refresh_failure.permanent
    assert plugin.swapped >= 1
