"""The conformance suite checks sign-in: ID tokens, key sets and discovery documents.

Each test writes a small OpenID Connect provider plugin ("acme", issuer
``https://id.example.com``) and copies the cassettes of ``tests/tools/cassettes/acme_oidc``
into a temporary folder, changing what the test is about, then runs keyturn's conformance
suite on it in a nested pytest session (pytester) and checks which tests fail, and with what
message. The cassettes' ID tokens are signed with a key made for them (see the folder's
README); a test that needs a token signed by another key makes that key itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from joserfc.jwk import RSAKey

from keyturn.discovery import WELL_KNOWN
from pytest_keyturn.signing import CASSETTE_KID_PREFIX, is_cassette_signed, token_header

pytest_plugins = ["pytester"]

CASSETTES = Path(__file__).parent / "cassettes" / "acme_oidc"
ISSUER = "https://id.example.com"
JWKS_URI = ISSUER + "/oauth/jwks"
#: Tests each ProviderConformance subclass runs (8 single, 6 run for sync and async).
SUITE_SIZE = 20
#: The tests that read a key set: the exchange, the sign-in replay and four refresh tests,
#: each sync and async.
KEY_SET_TESTS = 12

#: The spec, its endpoints typed from the provider's documentation.
TYPED: dict[str, Any] = {
    "id": "acme",
    "name": "Acme ID",
    "authorization_endpoint": ISSUER + "/oauth/authorize",
    "token_endpoint": ISSUER + "/oauth/token",
    "userinfo_endpoint": ISSUER + "/oauth/userinfo",
    "issuer": ISSUER,
    "jwks_uri": JWKS_URI,
    "id_token_signing_algs": frozenset({"RS256"}),
    "default_scopes": ("openid", "email"),
}
#: The spec of a provider known by its discovery document alone.
DISCOVERED: dict[str, Any] = {
    "id": "acme",
    "name": "Acme ID",
    "discovery_url": ISSUER + WELL_KNOWN,
    "default_scopes": ("openid", "email"),
}

PLUGIN = """
import keyturn

ACME = keyturn.ProviderSpec(**{fields!r})


@keyturn.hookimpl
def keyturn_register_providers(register):
    register(ACME)
"""

TEST_MODULE = """
from pathlib import Path

import keyturn
from pytest_keyturn import ProviderConformance

import acme_plugin


class TestAcme(ProviderConformance):
    provider = "acme"
    cassettes = Path(__file__).parent / "cassettes"
    plugin_manager_factory = staticmethod(
        lambda: keyturn.get_plugin_manager(entry_points=False, plugins=[acme_plugin])
    )
"""

Cassettes = dict[str, dict[str, Any]]


def shipped() -> Cassettes:
    """The cassettes of the folder, by scenario, as loaded YAML."""
    return {
        path.stem: yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted(CASSETTES.glob("*.yaml"))
    }


def response_json(cassette: Mapping[str, Any], index: int = 0) -> Any:
    return json.loads(cassette["interactions"][index]["response"]["body"]["string"])


def set_response_json(cassette: dict[str, Any], index: int, value: Any) -> None:
    cassette["interactions"][index]["response"]["body"]["string"] = json.dumps(value)


def write_plugin(
    pytester: pytest.Pytester,
    fields: Mapping[str, Any] = TYPED,
    change: Callable[[Cassettes], object] | None = None,
) -> None:
    """The plugin with ``fields`` as its spec, and the cassettes after ``change``."""
    pytester.syspathinsert()
    pytester.makepyfile(acme_plugin=PLUGIN.format(fields=dict(fields)), test_acme=TEST_MODULE)
    cassettes = shipped()
    if change is not None:
        change(cassettes)
    folder = pytester.path / "cassettes"
    folder.mkdir()
    for name, data in cassettes.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")


def run_suite(pytester: pytest.Pytester) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio", "-rfs")


def assert_outcomes(result: pytest.RunResult, *, failed: int = 0, skipped: int = 0) -> None:
    result.assert_outcomes(passed=SUITE_SIZE - failed - skipped, failed=failed, skipped=skipped)


def other_key_set(*, kid: str) -> dict[str, Any]:
    """A key set holding one new RSA key (public) with ``kid``."""
    public = dict(RSAKey.generate_key(2048).as_dict(private=False))
    public.pop("kid", None)
    return {"keys": [{"kid": kid, "use": "sig", "alg": "RS256", **public}]}


def replace_key_sets(cassettes: Cassettes, key_set: dict[str, Any]) -> None:
    """Every recorded GET of the key set answers with ``key_set`` instead."""
    for cassette in cassettes.values():
        for index, interaction in enumerate(cassette["interactions"]):
            if interaction["request"]["uri"] == JWKS_URI:
                set_response_json(cassette, index, key_set)


# -- providers that pass ----------------------------------------------------------------------


def test_a_provider_with_typed_endpoints_passes_the_whole_suite(
    pytester: pytest.Pytester,
) -> None:
    write_plugin(pytester)
    assert_outcomes(run_suite(pytester))


def test_a_provider_known_by_its_discovery_document_alone_passes_the_whole_suite(
    pytester: pytest.Pytester,
) -> None:
    # Its authorize URL is compared with the document's endpoint, not with an empty one.
    write_plugin(pytester, DISCOVERED)
    assert_outcomes(run_suite(pytester))


def test_a_key_set_of_its_own_file_serves_the_exchange_too(pytester: pytest.Pytester) -> None:
    def change(cassettes: Cassettes) -> None:
        del cassettes["exchange_code"]["interactions"][0]  # the exchange's own GET of the keys

    write_plugin(pytester, change=change)
    assert_outcomes(run_suite(pytester))


# -- the sign-in replay -----------------------------------------------------------------------


def test_an_issuer_no_token_carries_fails_the_sign_in_and_names_the_issuer(
    pytester: pytest.Pytester,
) -> None:
    """The very bug the sign-in replay exists for. (A refresh that brings an ID token is
    checked against the issuer too; a provider whose refreshes bring none would pass every
    other test.)"""
    wrong = "https://login.example.com"
    write_plugin(pytester, {**TYPED, "issuer": wrong}, change=lambda c: c.pop("discovery"))
    result = run_suite(pytester)
    assert_outcomes(result, failed=6, skipped=1)
    for name in (
        "test_sign_in_checks_the_id_token",
        "test_refresh_ok",
        "test_refresh_token_rotation_matches_the_spec",
    ):
        result.stdout.fnmatch_lines([f"FAILED *{name}?sync?*", f"FAILED *{name}?async?*"])
    result.stdout.fnmatch_lines(
        [
            "*exchange_code.yaml: a sign-in replayed through keyturn (sync) was refused with "
            "IdTokenError: the ID token comes from another issuer (iss). The ID token's iss is "
            f"'{ISSUER}', but the spec's issuer is '{wrong}'*Set the spec's issuer to the "
            "issuer the provider's ID tokens carry*",
            "*refresh_ok.yaml: the recorded answer is a success, but keyturn (sync) raised "
            "RefreshIdTokenError*(iss). The ID token's iss is*",
        ]
    )


def test_a_token_signed_by_a_key_absent_from_the_key_set_fails(
    pytester: pytest.Pytester,
) -> None:
    write_plugin(
        pytester,
        change=lambda c: replace_key_sets(c, other_key_set(kid=CASSETTE_KID_PREFIX + "other")),
    )
    result = run_suite(pytester)
    # The exchange and the sign-in verify the exchange's ID token; refresh_ok its own.
    failures = [
        "test_exchange_code",
        "test_sign_in_checks_the_id_token",
        "test_refresh_ok",
        "test_refresh_token_rotation_matches_the_spec",
    ]
    assert_outcomes(result, failed=2 * len(failures))
    for name in failures:
        result.stdout.fnmatch_lines([f"FAILED *{name}?sync?*", f"FAILED *{name}?async?*"])
    result.stdout.fnmatch_lines(
        [
            "*exchange_code.yaml: a sign-in replayed through keyturn (sync) was refused with "
            "UnknownSigningKeyError*The ID token's header names kid 'keyturn-cassette-acme-1' "
            "(alg 'RS256'), and the key set the cassette holds has no key that fits it*"
        ]
    )


def test_a_token_whose_signature_the_key_of_its_kid_does_not_verify_fails(
    pytester: pytest.Pytester,
) -> None:
    # Another key published under the token's own kid: found, but the signature is not its.
    write_plugin(
        pytester,
        change=lambda c: replace_key_sets(c, other_key_set(kid="keyturn-cassette-acme-1")),
    )
    result = run_suite(pytester)
    assert_outcomes(result, failed=8)
    result.stdout.fnmatch_lines(
        ["*signature does not verify with the provider's key. The key set the cassette holds*"]
    )


def test_a_missing_key_set_fails_with_how_to_record_it(pytester: pytest.Pytester) -> None:
    def change(cassettes: Cassettes) -> None:
        del cassettes["jwks"]
        del cassettes["exchange_code"]["interactions"][0]

    write_plugin(pytester, change=change)
    result = run_suite(pytester)
    assert_outcomes(result, failed=KEY_SET_TESTS)
    result.stdout.fnmatch_lines(
        [
            f"*exchange_code.yaml: the spec's jwks_uri is {JWKS_URI}, and keyturn reads that key "
            "set before it sends the code*neither exchange_code.yaml nor jwks.yaml holds a GET "
            "of it. Record the scenario again with `keyturn record acme exchange_code "
            "--cassette-dir cassettes --flat`*",
            f"*refresh_ok.yaml: the spec's jwks_uri is {JWKS_URI}, and keyturn reads that key "
            "set before it sends the refresh token*",
        ],
        consecutive=False,
    )


def test_an_id_token_scrubbed_of_its_signature_fails_with_how_to_record_it_again(
    pytester: pytest.Pytester,
) -> None:
    def change(cassettes: Cassettes) -> None:
        body = response_json(cassettes["exchange_code"], 1)
        claims = body["id_token"].split(".")[1]
        body["id_token"] = f"REDACTED-1a2b3c4d.{claims}.REDACTED"
        set_response_json(cassettes["exchange_code"], 1, body)

    write_plugin(pytester, change=change)
    result = run_suite(pytester)
    assert_outcomes(result, failed=4)  # the exchange and the sign-in, sync and async
    result.stdout.fnmatch_lines(
        [
            "*exchange_code.yaml: the ID token's header and signature were scrubbed away "
            "(REDACTED)*Record the cassette again with `keyturn record acme exchange_code*"
        ]
    )


def test_a_wrong_client_id_is_named_with_where_it_came_from(pytester: pytest.Pytester) -> None:
    def change(cassettes: Cassettes) -> None:
        for cassette in cassettes.values():
            for interaction in cassette["interactions"]:
                request = interaction["request"]
                if request["body"]:
                    request["body"] = request["body"].replace(
                        "client_id=example-acme-client", "client_id=another-client"
                    )

    write_plugin(pytester, change=change)
    result = run_suite(pytester)
    # The sign-in checks aud; so does the refresh that brings a new ID token.
    assert_outcomes(result, failed=6)
    result.stdout.fnmatch_lines(
        [
            "*The ID token's aud is 'example-acme-client' (azp 'example-acme-client'); the "
            "suite signed in with the client id 'another-client' (from the recorded request)*"
        ]
    )


def test_a_spec_without_issuer_whose_provider_sends_id_tokens_fails(
    pytester: pytest.Pytester,
) -> None:
    fields = {key: value for key, value in TYPED.items() if key != "issuer"}
    write_plugin(pytester, fields, change=lambda c: c.pop("discovery"))
    result = run_suite(pytester)
    assert_outcomes(result, failed=2, skipped=1)
    result.stdout.fnmatch_lines(
        ["*acme: the spec names no issuer, so keyturn cannot check the iss of its ID tokens*"]
    )


def test_an_openid_exchange_without_an_id_token_fails(pytester: pytest.Pytester) -> None:
    def change(cassettes: Cassettes) -> None:
        body = response_json(cassettes["exchange_code"], 1)
        del body["id_token"]
        set_response_json(cassettes["exchange_code"], 1, body)

    write_plugin(pytester, change=change)
    result = run_suite(pytester)
    assert_outcomes(result, failed=2)
    result.stdout.fnmatch_lines(
        ["*the spec's default scopes ask for openid*the recorded answer carries no id_token*"]
    )


def test_a_provider_without_id_tokens_skips_the_sign_in_replay_and_says_why(
    pytester: pytest.Pytester,
) -> None:
    def change(cassettes: Cassettes) -> None:
        body = response_json(cassettes["exchange_code"], 1)
        del body["id_token"]
        set_response_json(cassettes["exchange_code"], 1, body)
        del cassettes["discovery"]

    fields = {**TYPED, "default_scopes": ("read",)}
    del fields["issuer"]
    write_plugin(pytester, fields, change=change)
    result = run_suite(pytester)
    assert_outcomes(result, skipped=3)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]2[]] *acme: exchange_code.yaml's answer carries no id_token and the spec "
            "does not ask for openid, so there is no ID token to check*"
        ]
    )
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] *acme: the spec names no issuer and no discovery_url*"]
    )


# -- the discovery document -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "jwks_uri",
            ISSUER + "/keys",
            f"*jwks_uri: the document's is '{ISSUER}/keys', the spec's '{JWKS_URI}'*",
        ),
        (
            "token_endpoint",
            "https://api.example.com/token",
            "*token_endpoint: the document's is 'https://api.example.com/token', the spec's*",
        ),
        (
            "issuer",
            "https://id.example.com/",
            f"*issuer: the document's is 'https://id.example.com/', the spec's '{ISSUER}'*",
        ),
        (
            "id_token_signing_alg_values_supported",
            ["ES256"],
            "*id_token_signing_algs: the spec allows RS256, which the document does not list*",
        ),
        (
            "token_endpoint_auth_methods_supported",
            ["private_key_jwt"],
            "*client_auth: 'client_secret_post' is not among the document's*",
        ),
    ],
    ids=["jwks_uri", "token_endpoint", "issuer", "algorithms", "client_auth"],
)
def test_a_discovery_document_that_disagrees_with_the_spec_fails(
    pytester: pytest.Pytester, field: str, value: Any, message: str
) -> None:
    def change(cassettes: Cassettes) -> None:
        document = response_json(cassettes["discovery"])
        document[field] = value
        set_response_json(cassettes["discovery"], 0, document)

    write_plugin(pytester, change=change)
    result = run_suite(pytester)
    assert_outcomes(result, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*acme: the spec disagrees with the discovery document in discovery.yaml "
            f"({ISSUER}{WELL_KNOWN}):",
            message,
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(["FAILED *test_spec_agrees_with_its_discovery_document*"])


def test_a_spec_without_jwks_uri_whose_document_has_one_fails(pytester: pytest.Pytester) -> None:
    fields = {key: value for key, value in TYPED.items() if key != "jwks_uri"}
    write_plugin(pytester, fields)
    result = run_suite(pytester)
    # The exchange cassette holds the GET of the key set this spec never sends.
    assert_outcomes(result, failed=5)
    result.stdout.fnmatch_lines(
        [
            "*jwks_uri: the spec has none, so keyturn does not verify the signature of its ID "
            f"tokens; set it to the document's, '{JWKS_URI}'*"
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*exchange_code.yaml: keyturn (sync) played 1 of the 2 recorded interactions; it "
            f"must send every request the cassette holds, and did not send GET {JWKS_URI}*"
        ]
    )


def test_without_a_discovery_cassette_the_comparison_says_how_to_record_one(
    pytester: pytest.Pytester,
) -> None:
    write_plugin(pytester, change=lambda c: c.pop("discovery"))
    result = run_suite(pytester)
    assert_outcomes(result, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED *acme: no discovery.yaml to compare the spec's issuer and keys with; record "
            f"the provider's document at {ISSUER}{WELL_KNOWN} with `keyturn record acme "
            "discovery --cassette-dir cassettes --flat`*"
        ]
    )


def test_a_discovery_spec_without_its_document_fails_with_how_to_record_it(
    pytester: pytest.Pytester,
) -> None:
    write_plugin(pytester, DISCOVERED, change=lambda c: c.pop("discovery"))
    result = run_suite(pytester)
    # Everything but the spec's own checks needs the document's endpoints.
    assert_outcomes(result, failed=SUITE_SIZE - 6)
    result.stdout.fnmatch_lines(
        [
            "*discovery.yaml is missing (the spec reads its endpoints from "
            f"{ISSUER}{WELL_KNOWN}, so every scenario replays its document). Record it against "
            "the real provider with `keyturn record acme discovery --cassette-dir cassettes "
            "--flat`*"
        ]
    )


def test_a_discovery_spec_whose_document_names_another_issuer_fails(
    pytester: pytest.Pytester,
) -> None:
    def change(cassettes: Cassettes) -> None:
        document = response_json(cassettes["discovery"])
        document["issuer"] = "https://login.example.com"
        set_response_json(cassettes["discovery"], 0, document)

    write_plugin(pytester, DISCOVERED, change=change)
    result = run_suite(pytester)
    assert_outcomes(result, failed=SUITE_SIZE - 6)
    result.stdout.fnmatch_lines(
        ["*names the issuer 'https://login.example.com', not the configured*(issuer; OpenID*"]
    )


# -- the cassettes themselves -----------------------------------------------------------------


def test_the_shipped_tokens_are_signed_with_a_key_made_for_the_cassettes() -> None:
    """What the README says: a cassette key id, and only public keys in the key sets."""
    cassettes = shipped()
    for name, index in (("exchange_code", 1), ("refresh_ok", 0)):
        token = response_json(cassettes[name], index)["id_token"]
        assert token_header(token) == {
            "alg": "RS256",
            "kid": "keyturn-cassette-acme-1",
            "typ": "JWT",
        }
        assert is_cassette_signed(token)
    for name in ("exchange_code", "jwks"):
        key_set = response_json(cassettes[name])
        assert [key["kid"] for key in key_set["keys"]] == ["keyturn-cassette-acme-1"]
        assert not {"d", "p", "q"} & set(key_set["keys"][0])
