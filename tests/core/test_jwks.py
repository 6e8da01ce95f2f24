"""ID-token signatures against a provider's key set: which keys count, which key verifies,
which algorithms are refused, the token hashes, and multi-tenant issuers.

The verifier is also driven by hypothesis over arbitrary headers, payloads, signatures and key
sets: it raises only IdTokenError (never anything else), and what it accepts was signed by a
key of the set.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc.jwk import Key

from keyturn.documents import DocumentProblem
from keyturn.idtoken import (
    MAX_ID_TOKEN,
    IdTokenError,
    UnknownSigningKeyError,
    VerifiedIdToken,
    check_id_token,
    check_token_hashes,
    token_hash,
    verify_signature,
)
from keyturn.jwks import SIGNING_ALGORITHMS, KeySet, parse_key_set, require_usable
from tests.conftest import CLIENT_ID, START

from ._oidc import (
    b64,
    b64json,
    claims,
    ec_key,
    okp_key,
    public_jwk,
    rsa_key,
    sign,
    weak_rsa_jwk,
)

ALL = SIGNING_ALGORITHMS


def key_set(*members: Any) -> KeySet:
    return parse_key_set({"keys": list(members)})


def verify(token: str, keys: KeySet, algorithms: Any = ALL) -> VerifiedIdToken:
    return verify_signature(token, keys, algorithms)


# -- good signatures -------------------------------------------------------------------------


GOOD: list[tuple[str, Key, str]] = [
    ("RS256", rsa_key(), "RSA"),
    ("RS384", rsa_key(), "RSA"),
    ("RS512", rsa_key(), "RSA"),
    ("PS256", rsa_key(), "RSA"),
    ("PS512", rsa_key(), "RSA"),
    ("ES256", ec_key("P-256"), "P-256"),
    ("ES384", ec_key("P-384"), "P-384"),
    ("ES512", ec_key("P-521"), "P-521"),
    ("EdDSA", okp_key("Ed25519"), "Ed25519"),
    ("EdDSA", okp_key("Ed448"), "Ed448"),
    ("Ed25519", okp_key("Ed25519"), "Ed25519"),
]


@pytest.mark.parametrize(("alg", "key", "what"), GOOD, ids=[f"{a}-{w}" for a, _, w in GOOD])
def test_a_token_signed_by_a_key_of_the_set_verifies(alg: str, key: Key, what: str) -> None:
    keys = key_set(public_jwk(rsa_key(1), "other"), public_jwk(key, "k1"))
    verified = verify(sign(claims(), key, alg), keys)
    assert verified.claims["sub"] == "42"
    assert verified.alg == alg and verified.kid == "k1"
    assert verified.curve == (None if what == "RSA" else what)


def test_without_a_kid_the_one_key_that_fits_the_algorithm_verifies() -> None:
    keys = key_set(public_jwk(rsa_key(), "r"), public_jwk(ec_key(), "e"))
    assert verify(sign(claims(), ec_key(), "ES256", kid=None), keys).kid == "e"
    two_rsa = key_set(public_jwk(rsa_key(), "r"), public_jwk(rsa_key(1), "r1"))
    with pytest.raises(IdTokenError, match="kid"):
        verify(sign(claims(), rsa_key(), "RS256", kid=None), two_rsa)


# -- refused signatures ----------------------------------------------------------------------


def tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["sub"] = "1337"
    return f"{header}.{b64json(forged)}.{signature}"


RSA_SET = key_set(public_jwk(rsa_key(), "k1"))


def test_a_wrong_signature_is_refused() -> None:
    with pytest.raises(IdTokenError, match="signature") as caught:
        verify(tamper(sign(claims(), rsa_key())), RSA_SET)
    assert "1337" not in str(caught.value)
    other = sign(claims(), rsa_key(1))  # another key, same kid
    with pytest.raises(IdTokenError, match="signature"):
        verify(other, RSA_SET)
    empty_signature = sign(claims(), rsa_key()).rsplit(".", 1)[0] + "."
    with pytest.raises(IdTokenError, match="signature"):
        verify(empty_signature, RSA_SET)


def test_an_unknown_kid_asks_for_the_set_again() -> None:
    with pytest.raises(UnknownSigningKeyError, match="kid"):
        verify(sign(claims(), rsa_key(), kid="rotated"), RSA_SET)


def test_alg_none_is_refused() -> None:
    with pytest.raises(IdTokenError, match="alg") as caught:
        verify(sign(claims(), None, "none"), RSA_SET, ALL | {"none"})
    assert not isinstance(caught.value, UnknownSigningKeyError)


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_with_the_public_keys_bytes_is_refused(alg: str) -> None:
    """Algorithm confusion: the attacker "signs" with the public key as an HMAC secret."""
    jwk = public_jwk(rsa_key(), "k1")
    for secret in (json.dumps(jwk).encode(), rsa_key().as_pem(private=False)):
        with pytest.raises(IdTokenError, match="alg"):
            verify(sign(claims(), secret, alg), RSA_SET, ALL | {alg})


def test_an_algorithm_the_spec_does_not_allow_is_refused() -> None:
    with pytest.raises(IdTokenError, match="id_token_signing_algs"):
        verify(sign(claims(), rsa_key(), "PS256"), RSA_SET, {"RS256"})


@pytest.mark.parametrize(
    ("alg", "key", "members"),
    [
        ("ES256", ec_key("P-256"), {}),  # an EC signature, the kid of an RSA key
        ("ES384", ec_key("P-384"), {}),
        ("RS256", rsa_key(), {"alg": "PS256"}),  # the key says it is for PS256 only
        ("EdDSA", okp_key("Ed25519"), {}),
    ],
    ids=["ec-alg-rsa-key", "es384-rsa-key", "key-alg", "eddsa-rsa-key"],
)
def test_an_algorithm_that_does_not_fit_the_key_is_refused(
    alg: str, key: Key, members: dict[str, Any]
) -> None:
    keys = key_set(public_jwk(rsa_key(), "k1", **members))
    with pytest.raises(UnknownSigningKeyError):
        verify(sign(claims(), key, alg), keys)


def test_an_ec_key_on_another_curve_does_not_verify() -> None:
    keys = key_set(public_jwk(ec_key("P-384"), "k1"))
    with pytest.raises(UnknownSigningKeyError):
        verify(sign(claims(), ec_key("P-256"), "ES256"), keys)
    ed = key_set(public_jwk(okp_key("Ed448"), "k1"))
    with pytest.raises(UnknownSigningKeyError):
        verify(sign(claims(), okp_key("Ed25519"), "Ed25519"), ed)


def test_duplicate_kids_are_ambiguous_unless_the_key_type_tells_them_apart() -> None:
    twins = key_set(public_jwk(rsa_key(), "k1"), public_jwk(rsa_key(1), "k1"))
    with pytest.raises(IdTokenError, match="several keys"):
        verify(sign(claims(), rsa_key()), twins)
    mixed = key_set(public_jwk(rsa_key(), "k1"), public_jwk(ec_key(), "k1"))
    assert verify(sign(claims(), ec_key(), "ES256"), mixed).curve == "P-256"
    assert verify(sign(claims(), rsa_key()), mixed).curve is None
    by_alg = key_set(
        public_jwk(rsa_key(), "k1", alg="RS256"), public_jwk(rsa_key(1), "k1", alg="PS256")
    )
    assert verify(sign(claims(), rsa_key(1), "PS256"), by_alg).alg == "PS256"


def test_a_header_with_crit_is_refused() -> None:
    token = sign(claims(), rsa_key(), header={"crit": ["b64"], "b64": False})
    with pytest.raises(IdTokenError, match="crit"):
        verify(token, RSA_SET)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        "!!!.e30.c2ln",
        b64json([1]) + ".e30.c2ln",
        b64json({"alg": 5}) + ".e30.c2ln",
        b64json({"alg": "RS256", "kid": 7}) + ".e30.c2ln",
        "x" * (MAX_ID_TOKEN + 1),
    ],
    ids=[
        "empty",
        "two-parts",
        "four-parts",
        "not-b64",
        "header-array",
        "alg-number",
        "kid-int",
        "huge",
    ],
)
def test_a_malformed_token_is_an_id_token_error(token: str) -> None:
    with pytest.raises(IdTokenError):
        verify(token, RSA_SET)


def test_a_signed_payload_that_is_not_an_object_is_refused() -> None:
    header = b64json({"alg": "RS256", "kid": "k1"})
    payload = b64(b"[1, 2]")
    from joserfc.jws import JWSRegistry

    signature = JWSRegistry.algorithms["RS256"].sign(f"{header}.{payload}".encode(), rsa_key())
    with pytest.raises(IdTokenError, match="payload"):
        verify(f"{header}.{payload}.{b64(signature)}", RSA_SET)


# -- the key set -----------------------------------------------------------------------------


def test_keys_that_cannot_verify_are_skipped_with_their_reason() -> None:
    private = dict(rsa_key(2).as_dict(private=True), kid="leaked")
    keys = key_set(
        public_jwk(rsa_key(), "enc", use="enc"),
        public_jwk(rsa_key(), "wrap", key_ops=["wrapKey"]),
        {"kty": "oct", "k": "c2VjcmV0", "kid": "shared"},
        {"kty": "PQC", "kid": "future"},
        private,
        weak_rsa_jwk("weak"),
        public_jwk(okp_key("X25519"), "agree"),
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "broken"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "off-curve"},
        {"kty": "RSA", "kid": 7},
        "not an object",
        public_jwk(rsa_key(), "good", use="sig", key_ops=["verify"]),
    )
    assert [key.kid for key in keys.keys] == ["good"]
    assert sum(keys.skipped.values()) == 11
    described = keys.describe_skipped()
    for word in ("use", "key_ops", "kty", "private", "2048", "crv", "could not be read", "kid"):
        assert word in described
    assert "AQAB" not in described and "c2VjcmV0" not in described
    assert repr(keys.keys[0]) == "SigningKey(kid='good', RSA, alg=None)"


@pytest.mark.parametrize("data", [{}, {"keys": {}}, {"keys": "x"}, [], "keys"])
def test_what_is_not_a_jwk_set_is_a_document_problem(data: Any) -> None:
    with pytest.raises(DocumentProblem, match="JWK Set"):
        parse_key_set(data)


def test_a_set_without_a_usable_key_is_refused_naming_why() -> None:
    with pytest.raises(DocumentProblem, match="use"):
        require_usable(key_set(public_jwk(rsa_key(), "enc", use="enc")))
    with pytest.raises(DocumentProblem, match="empty"):
        require_usable(key_set())


# -- token hashes (OIDC Core 3.1.3.6, 3.3.2.11) -----------------------------------------------


def half(digest: bytes) -> str:
    return b64(digest[: len(digest) // 2])


@pytest.mark.parametrize(
    ("alg", "curve", "expected"),
    [
        ("RS256", None, half(hashlib.sha256(b"at-1").digest())),
        ("ES256K", None, half(hashlib.sha256(b"at-1").digest())),
        ("PS384", None, half(hashlib.sha384(b"at-1").digest())),
        ("ES512", None, half(hashlib.sha512(b"at-1").digest())),
        ("EdDSA", "Ed25519", half(hashlib.sha512(b"at-1").digest())),
        ("Ed25519", None, half(hashlib.sha512(b"at-1").digest())),
        ("EdDSA", "Ed448", half(hashlib.shake_256(b"at-1").digest(114))),
    ],
)
def test_the_token_hash_follows_the_algorithm(alg: str, curve: str | None, expected: str) -> None:
    assert token_hash("at-1", alg, curve) == expected


def test_the_token_hash_of_oidc_core_example() -> None:
    """OpenID Connect Core 1.0 A.3's ID token: at_hash of its access token, RS256."""
    assert token_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256") == (
        "77QmUPtjPfzWtF2AnpK9RQ"
    )


def test_no_token_hash_is_defined_for_an_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="EdDSA"):
        token_hash("x", "EdDSA", None)


@pytest.mark.parametrize(
    ("alg", "key"), [("RS256", rsa_key()), ("ES384", ec_key("P-384")), ("EdDSA", okp_key())]
)
def test_at_hash_and_c_hash_are_checked_when_present(alg: str, key: Key) -> None:
    keys = key_set(public_jwk(key, "k1"))
    curve = getattr(key, "curve_name", None)
    good = claims(at_hash=token_hash("at", alg, curve), c_hash=token_hash("code", alg, curve))
    verified = verify(sign(good, key, alg), keys)
    check_token_hashes(verified, access_token="at", code="code")
    check_token_hashes(verified)  # nothing to bind them to: nothing checked
    with pytest.raises(IdTokenError, match="at_hash") as caught:
        check_token_hashes(verified, access_token="another-at")
    assert "another-at" not in str(caught.value)
    with pytest.raises(IdTokenError, match="c_hash"):
        check_token_hashes(verified, access_token="at", code="another-code")
    absent = verify(sign(claims(), key, alg), keys)
    check_token_hashes(absent, access_token="at", code="code")
    wrong_type = verify(sign(claims(at_hash=5), key, alg), keys)
    with pytest.raises(IdTokenError, match="at_hash"):
        check_token_hashes(wrong_type, access_token="at")


# -- multi-tenant issuers ---------------------------------------------------------------------

TEMPLATE = "https://login.example/{tenantid}/v2.0"
TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


def check_tenant(token_claims: dict[str, Any], **options: Any) -> dict[str, Any]:
    token = sign(token_claims, rsa_key())
    return check_id_token(
        token,
        nonce=None,
        client_id=CLIENT_ID,
        issuer=TEMPLATE,
        issuer_claims={"tenantid": "tid"},
        now=START,
        **options,
    )


def test_a_templated_issuer_takes_the_tenant_from_the_token() -> None:
    issued = claims(iss=f"https://login.example/{TENANT}/v2.0", tid=TENANT)
    assert check_tenant(issued)["tid"] == TENANT
    assert check_tenant(issued, issuer_claim_values={"tenantid": {TENANT}})


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": f"https://login.example/{TENANT}/v2.0", "tid": "another-tenant"},
        {"iss": "https://login.example/{tenantid}/v2.0", "tid": "{tenantid}"},
        {"iss": f"https://login.example/{TENANT}/v2.0"},
        {"iss": "https://login.example/a/b/v2.0", "tid": "a/b"},
        {"iss": "https://login.example/../v2.0", "tid": ".."},
        {"iss": "https://login.example//v2.0", "tid": ""},
        {"iss": "https://login.example/7/v2.0", "tid": 7},
        {"iss": "https://evil.example/x/v2.0", "tid": "x"},
    ],
    ids=[
        "other-tid",
        "literal-template",
        "no-tid",
        "two-segments",
        "dot-dot",
        "empty",
        "number",
        "other-host",
    ],
)
def test_a_templated_issuer_refuses_a_token_whose_tenant_does_not_fit(
    changes: dict[str, Any],
) -> None:
    with pytest.raises(IdTokenError, match="iss") as caught:
        check_tenant(claims(**changes))
    assert TENANT not in str(caught.value)


def test_a_templated_issuer_refuses_a_tenant_the_app_does_not_serve() -> None:
    issued = claims(iss=f"https://login.example/{TENANT}/v2.0", tid=TENANT)
    with pytest.raises(IdTokenError, match="iss"):
        check_tenant(issued, issuer_claim_values={"tenantid": {"another-tenant"}})


def test_a_spec_declares_the_placeholders_of_its_issuer() -> None:
    from pydantic import ValidationError

    from keyturn import ProviderSpec

    base = {"id": "ms", "name": "MS", "discovery_url": "https://login.example/.well-known/x"}
    with pytest.raises(ValidationError, match="undeclared"):
        ProviderSpec(**base, issuer=TEMPLATE)
    with pytest.raises(ValidationError, match="unused"):
        ProviderSpec(**base, issuer="https://login.example/v2.0", issuer_claims={"t": "tid"})
    with pytest.raises(ValidationError, match="issuer_claim_values"):
        ProviderSpec(
            **base,
            issuer=TEMPLATE,
            issuer_claims={"tenantid": "tid"},
            issuer_claim_values={"other": frozenset({"x"})},
        )
    with pytest.raises(ValidationError, match="authorization_response_iss"):
        ProviderSpec(
            **base,
            issuer=TEMPLATE,
            issuer_claims={"tenantid": "tid"},
            authorization_response_iss=True,
        )
    spec = ProviderSpec(**base, issuer=TEMPLATE, issuer_claims={"tenantid": "tid"})
    assert spec.issuer_is_template


# -- hypothesis: the verifier never fails in another way, and accepts only real signatures -----

SIGNERS: list[tuple[str, Key]] = [
    ("RS256", rsa_key()),
    ("PS256", rsa_key(1)),
    ("ES256", ec_key("P-256")),
    ("EdDSA", okp_key("Ed25519")),
]
PUBLIC = {
    "rsa": public_jwk(rsa_key(), "a"),
    "rsa1": public_jwk(rsa_key(1), "b"),
    "ec": public_jwk(ec_key("P-256"), "c"),
    "ed": public_jwk(okp_key("Ed25519"), "d"),
}

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
header_fields = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(sorted(ALL | {"none", "HS256", "XX"})) | json_values,
        "kid": st.sampled_from(["a", "b", "c", "d", "zz"]) | json_values,
        "crit": json_values,
        "typ": json_values,
    },
)
jwk_members = st.fixed_dictionaries(
    {},
    optional={
        "kty": st.sampled_from(["RSA", "EC", "OKP", "oct", "?"]) | json_values,
        "kid": st.sampled_from(["a", "b", "c", "d"]) | json_values,
        "use": st.sampled_from(["sig", "enc"]) | json_values,
        "alg": st.sampled_from(sorted(ALL)) | json_values,
        "crv": st.sampled_from(["P-256", "Ed25519", "X25519"]) | json_values,
        "n": st.text(max_size=12),
        "e": st.sampled_from(["AQAB", "", "AA"]),
        "x": st.text(max_size=12),
        "y": st.text(max_size=12),
        "key_ops": json_values,
    },
)


def _mangled(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """The public JWK ``name`` with up to two members replaced by arbitrary JSON."""
    changes = st.dictionaries(
        st.sampled_from(["kid", "use", "alg", "key_ops", "crv", "kty"]), json_values, max_size=2
    )
    return changes.map(lambda changed: {**PUBLIC[name], **changed})


real_or_mangled = st.sampled_from(sorted(PUBLIC)).flatmap(_mangled)
key_sets = st.lists(real_or_mangled | jwk_members | json_values, max_size=5)


def _signed_by_a_key_of(token: str, members: list[Any], verified: VerifiedIdToken) -> bool:
    """Whether one of the generated private keys whose public key is in ``members``
    signed ``token`` (checked with joserfc directly, outside keyturn's verifier)."""
    from joserfc.jws import JWSRegistry

    header, payload, signature = token.split(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    for alg, key in SIGNERS:
        public = public_jwk(key)
        listed = any(
            isinstance(m, dict) and all(m.get(k) == v for k, v in public.items()) for m in members
        )
        model = JWSRegistry.algorithms[verified.alg]
        if (
            listed
            and alg == verified.alg
            and model.verify(f"{header}.{payload}".encode(), raw, key)
        ):
            return True
    return False


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    signer=st.sampled_from(range(len(SIGNERS))),
    header=header_fields,
    payload=json_values,
    members=key_sets,
    mangle=st.sampled_from(["none", "signature", "payload", "header", "random"]),
    junk=st.binary(max_size=80),
)
def test_the_verifier_raises_only_id_token_errors_and_accepts_only_real_signatures(
    signer: int,
    header: dict[str, Any],
    payload: Any,
    members: list[Any],
    mangle: str,
    junk: bytes,
) -> None:
    alg, key = SIGNERS[signer]
    protected = {"alg": alg, **header}
    signing_input = f"{b64json(protected)}.{b64json(payload)}"
    from joserfc.jws import JWSRegistry

    signature = b64(JWSRegistry.algorithms[alg].sign(signing_input.encode(), key))
    token = f"{signing_input}.{signature}"
    if mangle == "signature":
        token = f"{signing_input}.{b64(junk)}"
    elif mangle == "payload":
        token = f"{b64json(protected)}.{b64(junk)}.{signature}"
    elif mangle == "header":
        token = f"{b64(junk)}.{b64json(payload)}.{signature}"
    elif mangle == "random":
        token = junk.decode("latin-1")
    keys = parse_key_set({"keys": members})
    try:
        verified = verify(token, keys)
    except IdTokenError:
        return
    assert _signed_by_a_key_of(token, members, verified)
    assert verified.claims == payload
