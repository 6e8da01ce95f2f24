"""Signed ID tokens through the clients: sign-in and refresh verify the signature (and the
token hashes) whenever the resolved spec has a ``jwks_uri``, before the claim checks.

A refresh whose new ID token fails is a permanent failure that keeps the old tokens
(OpenID Connect Core 12.2, as for the claim checks); a key set that cannot be fetched is a
transient one, found out before the refresh token or the code is sent.
"""

from __future__ import annotations

import inspect
from typing import Any

import httpx
import pytest
from joserfc.jwk import Key

import keyturn
from keyturn import REFRESH_ACCESS_TOKEN_ERROR, RefreshIdTokenError
from keyturn.idtoken import IdTokenError
from tests.conftest import CLIENT_ID, FakeClock

from ._oidc import (
    AUTHORIZE,
    CREDENTIALS,
    ISSUER,
    JWKS_URI,
    REDIRECT,
    SPEC,
    TOKEN,
    USERINFO,
    Provider,
    ec_key,
    okp_key,
    public_jwk,
    rsa_key,
    sign,
)


class Client:
    """A sync or async client at the test OP, called the same way."""

    def __init__(self, op: Provider, clock: FakeClock, mode: str, spec: Any = SPEC) -> None:
        op.now = clock
        options: dict[str, Any] = {"clock": clock, "environ": {}, "providers": [spec]}
        self.mode = mode
        if mode == "sync":
            self.client: Any = keyturn.Keyturn(CREDENTIALS, http_client=op.sync_client(), **options)
        else:
            self.client = keyturn.AsyncKeyturn(
                CREDENTIALS, http_client=op.async_client(), **options
            )
        self.op = op

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, method)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def sign_in(self, code: str = "c1", **query: str) -> keyturn.JWT:
        if self.mode == "async":
            await self.client.discover("op")
        request = self.client.authorize_url("op", REDIRECT)
        self.op.nonces[code] = request.nonce.get_secret_value()
        callback = {"code": code, "state": request.state.get_secret_value(), **query}
        token: keyturn.JWT = await self("sign_in", request, callback)
        return token


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


SIGNERS = [("k1", rsa_key(), "RS256"), ("k2", ec_key(), "ES256"), ("k3", okp_key(), "EdDSA")]


@pytest.mark.parametrize("signer", SIGNERS, ids=[alg for _, _, alg in SIGNERS])
async def test_sign_in_and_refresh_with_signed_id_tokens(
    clock: FakeClock, mode: str, signer: tuple[str, Key, str]
) -> None:
    op = Provider(signer)
    kt = Client(op, clock, mode)
    token = await kt.sign_in()
    assert token.user is not None and token.user.id == "42"
    first = token.tokens.id_token
    assert first is not None and first.get_secret_value() == op.id_tokens[0]
    clock.advance(3600)
    after = await kt("jwt", token)
    assert after.error is None and after.refresh_failure is None
    assert after.tokens.id_token is not None
    assert after.tokens.id_token.get_secret_value() == op.id_tokens[1]
    # Read at sign-in, and again before the refresh: the set's ten minutes had passed.
    assert op.count(JWKS_URI) == 2
    await kt("close" if mode == "sync" else "aclose")


async def test_sign_in_refuses_a_bad_signature_before_any_userinfo_request(
    clock: FakeClock, mode: str
) -> None:
    op = Provider(("k1", rsa_key(1), "RS256"))  # signs with a key the set does not hold
    op.jwks = {"keys": [public_jwk(rsa_key(), "k1")]}
    kt = Client(op, clock, mode)
    with pytest.raises(IdTokenError, match="signature"):
        await kt.sign_in()
    assert op.count(USERINFO) == 0


async def test_sign_in_refuses_a_c_hash_of_another_code(clock: FakeClock, mode: str) -> None:
    op = Provider()
    original = op._hashes
    op._hashes = lambda answer, form: {**original(answer, form), "c_hash": "AAAAAAAAAAAAAAAAAAAAAA"}  # type: ignore[method-assign]
    kt = Client(op, clock, mode)
    with pytest.raises(IdTokenError, match="c_hash"):
        await kt.sign_in()


async def test_a_key_set_without_a_usable_key_fails_sign_in_before_the_code_is_sent(
    clock: FakeClock, mode: str
) -> None:
    op = Provider()
    op.jwks = {"keys": [public_jwk(rsa_key(), "k1", use="enc")]}
    kt = Client(op, clock, mode)
    with pytest.raises(keyturn.KeySetError) as caught:
        await kt.sign_in()
    assert caught.value.error == "invalid_jwks" and not caught.value.permanent
    assert op.count(TOKEN) == 0


def tokens_of(op: Provider, clock: FakeClock, **changes: Any) -> keyturn.TokenSet:
    """Signed-in tokens, due for a refresh, whose ID token the OP signed."""
    kid, key, alg = op.signer
    now = int(clock())
    id_token = sign(
        {"iss": ISSUER, "aud": CLIENT_ID, "sub": "42", "iat": now, "exp": now + 3600, **changes},
        key,
        alg,
        kid=kid,
    )
    return keyturn.TokenSet(
        provider="op",
        access_token="fake-at-old",
        refresh_token="fake-rt-old",
        expires_at=now - 1,
        id_token=id_token,
    )


async def test_a_refreshed_id_token_with_a_bad_signature_keeps_the_old_tokens(
    clock: FakeClock, mode: str
) -> None:
    op = Provider()
    old = tokens_of(op, clock)
    op.signer = ("k1", rsa_key(1), "RS256")  # the answer is signed with a foreign key
    kt = Client(op, clock, mode)
    with pytest.raises(RefreshIdTokenError) as caught:
        await kt("refresh", old)
    error = caught.value
    assert error.permanent and error.error == "invalid_id_token" and error.operation == "refresh"
    assert "signature" in str(error)
    token = keyturn.JWT(tokens=tokens_of(Provider(), clock, nonce="n"))
    after = await kt("jwt", token)
    assert after.tokens == token.tokens
    assert after.error == REFRESH_ACCESS_TOKEN_ERROR
    assert after.refresh_failure is not None
    assert after.refresh_failure.error == "invalid_id_token" and after.refresh_failure.permanent


async def test_a_refreshed_id_token_whose_at_hash_does_not_match_is_refused(
    clock: FakeClock, mode: str
) -> None:
    op = Provider()
    op._hashes = lambda answer, form: {"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}  # type: ignore[method-assign]
    kt = Client(op, clock, mode)
    with pytest.raises(RefreshIdTokenError, match="at_hash"):
        await kt("refresh", tokens_of(op, clock))


async def test_an_unreachable_key_set_on_refresh_is_transient_and_sends_nothing(
    clock: FakeClock, mode: str
) -> None:
    op = Provider()
    op.fail[JWKS_URI] = [httpx.ConnectError("down")]
    kt = Client(op, clock, mode)
    token = keyturn.JWT(tokens=tokens_of(op, clock))
    after = await kt("jwt", token)
    assert after.tokens == token.tokens and after.error is None
    assert after.refresh_failure is not None
    assert after.refresh_failure.error == "network_error" and not after.refresh_failure.permanent
    assert op.count(TOKEN) == 0  # the refresh token was not sent, so not spent
    again = await kt("jwt", token)
    assert again.refresh_failure is None and again.tokens.access_token != token.tokens.access_token


async def test_a_spec_with_its_own_jwks_uri_verifies_without_discovery(
    clock: FakeClock, mode: str
) -> None:
    spec = keyturn.ProviderSpec(
        id="op",
        name="Test OP",
        authorization_endpoint=AUTHORIZE,
        token_endpoint=TOKEN,
        userinfo_endpoint=USERINFO,
        issuer=ISSUER,
        jwks_uri=JWKS_URI,
        default_scopes=("openid",),
    )
    op = Provider()
    kt = Client(op, clock, mode, spec)
    assert (await kt.sign_in()).user is not None
    op.signer = ("k1", rsa_key(1), "RS256")
    with pytest.raises(IdTokenError, match="signature"):
        await kt.sign_in("c2")


TEMPLATE = "https://login.example/{tenantid}/v2.0"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


async def test_a_multi_tenant_sign_in_checks_the_tokens_tenant(clock: FakeClock, mode: str) -> None:
    spec = SPEC.model_copy(
        update={
            "issuer": TEMPLATE,
            "issuer_claims": {"tenantid": "tid"},
            "endpoint_hosts": SPEC.endpoint_hosts | {"op.example"},
        }
    )
    op = Provider()
    op.discovery["issuer"] = TEMPLATE
    op.claim_changes = {"iss": f"https://login.example/{TENANT}/v2.0", "tid": TENANT}
    kt = Client(op, clock, mode, spec)
    token = await kt.sign_in()
    assert token.user is not None
    op.claim_changes = {"iss": f"https://login.example/{TENANT}/v2.0", "tid": "another"}
    with pytest.raises(IdTokenError, match="iss"):
        await kt.sign_in("c2")
    # The callback's iss cannot be compared with a template: the request carries none.
    request = kt.client.authorize_url("op", REDIRECT)
    assert request.issuer is None
