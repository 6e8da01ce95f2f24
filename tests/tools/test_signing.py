"""ID tokens in cassettes signed again with a key made for the cassette (pytest_keyturn.signing).

A recorded ID token loses the provider's signature; keyturn record signs its scrubbed claims
again with a key it makes, adds the public key to the recorded key set, and the scrubber
leaves such a token whole. These tests check the signer and the scrubber's exception; the
recording itself is tested in test_record.py, the replay in test_conformance_oidc.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from joserfc.jwk import Key
from vcr.request import Request as VcrRequest

from keyturn.idtoken import IdTokenError, token_hash, unverified_claims, verify_signature
from keyturn.jwks import parse_key_set
from pytest_keyturn.cassettes import redact, scrub_response
from pytest_keyturn.signing import (
    CASSETTE_KID_PREFIX,
    CassetteSigner,
    is_cassette_signed,
    token_header,
)
from tests.conftest import CLIENT_ID, START
from tests.core._oidc import ec_key, okp_key, rsa_key, sign

JWKS_URI = "https://op.example/jwks"
CLAIMS: dict[str, Any] = {
    "iss": "https://op.example",
    "aud": CLIENT_ID,
    "sub": "42",
    "iat": START,
    "exp": START + 3600,
    "at_hash": "recorded-over-the-live-access-token",
    "c_hash": "recorded-over-the-live-code",
}
KEYS: dict[str, Callable[[], Key]] = {
    "RS256": rsa_key,
    "PS256": rsa_key,
    "ES256": lambda: ec_key("P-256"),
    "ES384": lambda: ec_key("P-384"),
    "EdDSA": lambda: okp_key("Ed25519"),
}


def provider_token(alg: str = "RS256", **header: Any) -> str:
    """An ID token as a provider signs it, with its own key id."""
    return sign(CLAIMS, KEYS[alg](), alg, kid="provider-key", header=header)


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_a_token_signed_again_verifies_with_the_cassettes_key_only(alg: str) -> None:
    signer = CassetteSigner(JWKS_URI)
    live = provider_token(alg)
    assert signer.prepare(live)
    again = signer.sign(live, access_token="REDACTED-access", code="REDACTED-code")
    assert again is not None and is_cassette_signed(again)
    (public,) = signer.public_keys()
    assert public["kid"].startswith(CASSETTE_KID_PREFIX) and public["alg"] == alg
    assert not {"d", "p", "q"} & set(public)
    verified = verify_signature(again, parse_key_set({"keys": [public]}), {alg})
    curve = verified.curve
    # The claims are the recorded ones but for the hashes, now over the placeholders.
    expected = {
        **CLAIMS,
        "at_hash": token_hash("REDACTED-access", alg, curve),
        "c_hash": token_hash("REDACTED-code", alg, curve),
    }
    assert verified.claims == expected
    assert token_header(again) == {"alg": alg, "kid": public["kid"], "typ": "JWT"}
    other = CassetteSigner(JWKS_URI)  # another recording's key of the same kind
    other.prepare(live)
    with pytest.raises(IdTokenError):
        verify_signature(again, parse_key_set({"keys": other.public_keys()}), {alg})


def test_hashes_the_token_does_not_carry_are_not_added() -> None:
    claims = {k: v for k, v in CLAIMS.items() if k not in ("at_hash", "c_hash")}
    live = sign(claims, rsa_key(), "RS256", kid="provider-key")
    signer = CassetteSigner(JWKS_URI)
    signer.prepare(live)
    again = signer.sign(live, access_token="REDACTED-access", code="REDACTED-code")
    assert again is not None and unverified_claims(again) == claims


def test_one_key_per_algorithm_and_none_for_what_keyturn_cannot_sign() -> None:
    signer = CassetteSigner(JWKS_URI)
    assert signer.prepare(provider_token("RS256"))
    assert signer.prepare(provider_token("RS256"))
    assert signer.prepare(provider_token("ES256"))
    assert [key["alg"] for key in signer.public_keys()] == ["ES256", "RS256"]
    hs256 = sign(CLAIMS, b"shared-secret", "HS256")
    for token in (hs256, sign(CLAIMS, None, "none"), "not.a.token", "REDACTED-1.e30.REDACTED"):
        assert not CassetteSigner(JWKS_URI).prepare(token), token
        assert CassetteSigner(JWKS_URI).sign(token) is None
    assert "key" not in repr(signer).replace("keyturn", "")


def test_the_scrubber_leaves_a_cassette_signed_token_whole_and_redacts_any_other() -> None:
    signer = CassetteSigner(JWKS_URI)
    live = provider_token()
    signer.prepare(live)
    again = signer.sign(live)
    assert again is not None
    assert redact("id_token", again) == again
    scrubbed = redact("id_token", live)
    assert scrubbed.startswith("REDACTED-") and scrubbed.endswith(".REDACTED")
    # A provider whose kid merely looks alike is not exempt: the prefix is the whole marker.
    assert redact("id_token", provider_token(kid="keyturn-cassett")).endswith(".REDACTED")
    body = {"access_token": "REDACTED-a", "id_token": again}
    response: dict[str, Any] = {
        "body": {"string": json.dumps(body)},
        "headers": {"content-type": ["application/json"]},
        "status": {"code": 200, "message": "OK"},
    }
    assert json.loads(scrub_response(copy.deepcopy(response))["body"]["string"]) == body


def test_tokens_that_cannot_be_read_are_not_cassette_signed() -> None:
    for token in ("", "a.b", "a.b.c", "!!.e30.x", "e30.e30.x", "REDACTED-1.e30.REDACTED"):
        assert not is_cassette_signed(token)
    assert token_header("garbage") == {}


def _interaction(body: dict[str, Any], *, uri: str, method: str = "POST", sent: str = "") -> Any:
    request = VcrRequest(method, uri, sent or None, {"content-type": "x"})
    response = {
        "body": {"string": json.dumps(body).encode()},
        "headers": {"content-type": ["application/json"]},
        "status": {"code": 200, "message": "OK"},
    }
    return request, response


def test_saving_signs_the_token_and_gives_the_key_set_the_new_key() -> None:
    signer = CassetteSigner(JWKS_URI)
    live = provider_token()
    signer.prepare(live)
    sent = "grant_type=authorization_code&code=REDACTED-code&client_id=x"
    request, response = _interaction(
        {"access_token": "REDACTED-access", "id_token": live},
        uri="https://op.example/token",
        sent=sent,
    )
    _, saved = signer.before_save_interaction(request, response)
    token = json.loads(saved["body"]["string"])["id_token"]
    assert is_cassette_signed(token)
    claims = unverified_claims(token)
    assert claims["at_hash"] == token_hash("REDACTED-access", "RS256")
    assert claims["c_hash"] == token_hash("REDACTED-code", "RS256")

    provider_key = {"kty": "RSA", "kid": "provider-key", "n": "AQAB", "e": "AQAB"}
    request, response = _interaction({"keys": [provider_key]}, uri=JWKS_URI, method="GET")
    _, saved = signer.before_save_interaction(request, response)
    keys = json.loads(saved["body"]["string"])["keys"]
    assert keys[0] == provider_key
    assert keys[1:] == signer.public_keys()
    verify_signature(token, parse_key_set({"keys": keys[1:]}), {"RS256"})
    # Saving again (vcrpy loads, then saves) adds nothing twice.
    _, twice = signer.before_save_interaction(request, saved)
    assert json.loads(twice["body"]["string"])["keys"] == keys


def test_saving_a_token_no_key_was_made_for_scrubs_it() -> None:
    signer = CassetteSigner(JWKS_URI)  # prepare() was never called: the recording failed
    live = provider_token()
    request, response = _interaction(
        {"access_token": "REDACTED-access", "id_token": live}, uri="https://op.example/token"
    )
    _, saved = signer.before_save_interaction(request, response)
    token = json.loads(saved["body"]["string"])["id_token"]
    assert token.startswith("REDACTED-") and token.endswith(".REDACTED")
    request, response = _interaction({"keys": []}, uri=JWKS_URI, method="GET")
    _, saved = signer.before_save_interaction(request, response)
    assert json.loads(saved["body"]["string"]) == {"keys": []}  # no key to add
