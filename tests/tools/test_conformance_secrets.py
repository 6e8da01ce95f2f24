"""The secret check: any live-looking credential in a cassette fails it, named but not shown.

The rules are those of :mod:`pytest_keyturn.cassettes` ("What counts as a live secret"). Most
tests here run :func:`~pytest_keyturn.cassettes.scan_cassette` on one doctored interaction;
the last ones write the small "acme" plugin of :mod:`tests.tools.test_testing_plugin` with
its correct cassettes, put one unscrubbed value into one of them, and run the conformance
suite in a nested pytest session: the secret check fails alone, naming the file, the
interaction and the field, and the tests that replay the file skip it with a reason that
points at the secret check. Live-looking values are built at run time, so no file of this
repository holds one.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from pytest_keyturn.cassettes import (
    LONG_TOKEN,
    find_jwt,
    find_secrets,
    is_placeholder,
    redact,
    scan_cassette,
)
from tests.tools.test_testing_plugin import (
    OPTIONS,
    SKIPPED,
    SUITE_SIZE,
    interaction,
    refresh_fields,
    standard_cassettes,
    write_plugin,
)

pytest_plugins = ["pytester"]


def b64(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(header: dict[str, Any], claims: dict[str, Any] | None = None) -> str:
    """A compact JWS with ``header``; its signature is random bytes."""
    claims = claims or {"sub": "7", "aud": "api://acme", "exp": 2_000_000_000}
    return f"{b64(header)}.{b64(claims)}.{b64(secrets.token_bytes(64))}"


PROVIDER_JWT = {"alg": "RS256", "kid": "provider-key-1", "typ": "JWT"}
CASSETTE_JWT = {"alg": "RS256", "kid": "keyturn-cassette-fake-1"}


def opaque(length: int = 40) -> str:
    """A random token of ``length`` characters, as opaque providers issue them."""
    return secrets.token_urlsafe(length)[:length]


def cassette(
    request_body: str = "grant_type=refresh_token&refresh_token=REDACTED-1a2b3c4d",
    response_body: Any = None,
    *,
    uri: str = "https://auth.example.com/token",
    request_headers: dict[str, list[str]] | None = None,
    response_headers: dict[str, list[str]] | None = None,
) -> str:
    """One interaction's cassette text, clean unless an argument says otherwise."""
    if response_body is None:
        response_body = {"access_token": "REDACTED-5e6f7a8b", "expires_in": 3600}
    body = response_body if isinstance(response_body, str) else json.dumps(response_body)
    data = {
        "version": 1,
        "interactions": [
            {
                "request": {
                    "body": request_body,
                    "headers": {
                        "content-type": ["application/x-www-form-urlencoded"],
                        **(request_headers or {}),
                    },
                    "method": "POST",
                    "uri": uri,
                },
                "response": {
                    "body": {"string": body},
                    "headers": {
                        "content-type": ["application/json"],
                        **(response_headers or {}),
                    },
                    "status": {"code": 200, "message": "OK"},
                },
            }
        ],
    }
    return yaml.safe_dump(data)


def found(text: str) -> list[str]:
    return [str(finding) for finding in scan_cassette(text)]


# -- what counts ----------------------------------------------------------------------------


def test_a_clean_cassette_has_no_findings() -> None:
    assert found(cassette()) == []


@pytest.mark.parametrize("field", ["access_token", "refresh_token", "id_token"])
def test_a_jwt_signed_by_the_provider_is_found_in_any_token_field(field: str) -> None:
    token = jwt(PROVIDER_JWT)
    text = cassette(response_body={field: token, "expires_in": 3600})
    assert found(text) == [f"interaction 0, response body field {field}: a signed JWT (alg RS256)"]
    assert token not in " ".join(found(text))
    assert "JSON Web Token" in find_secrets(text)


def test_a_jwt_is_found_outside_token_fields_and_nested() -> None:
    """Slack answers the user's token under authed_user; a JWT may sit in any field."""
    body = {"ok": True, "authed_user": {"id": "U1", "access_token": jwt(PROVIDER_JWT)}}
    assert found(cassette(response_body=body)) == [
        "interaction 0, response body field authed_user.access_token: a signed JWT (alg RS256)"
    ]
    body = {"data": [{"note": jwt({"alg": "ES256"})}]}
    assert found(cassette(response_body=body)) == [
        "interaction 0, response body field data[0].note: a signed JWT (alg ES256)"
    ]


def test_encrypted_and_unsigned_jwts_are_found() -> None:
    encrypted = ".".join([b64({"alg": "RSA-OAEP", "enc": "A256GCM"}), *[opaque(30)] * 4])
    assert find_jwt(encrypted) == "an encrypted JWT (alg RSA-OAEP)"
    unsigned = f"{b64({'alg': 'none'})}.{b64({'sub': '1'})}."
    assert find_jwt(unsigned) == "an unsigned JWT (alg none) with a header of its own"
    assert find_jwt(f"{b64({'alg': '<script>'})}.{b64({})}.sig") == (
        "a signed JWT (alg not readable)"
    )


def test_a_jwt_after_other_dotted_text_is_still_found() -> None:
    assert find_jwt("see auth.example.com." + jwt(PROVIDER_JWT)) == "a signed JWT (alg RS256)"


@pytest.mark.parametrize(
    "value",
    [
        jwt(CASSETTE_JWT),  # signed with a key made for cassettes
        redact("id_token", jwt(PROVIDER_JWT)),  # the scrubber's claims-only form
        "REDACTED-1a2b3c4d",
        "accounts.google.com",
        "https://www.googleapis.com/oauth2/v3/certs",
        f"{b64({'typ': 'JWT'})}.{b64({'sub': '1'})}.sig",  # no alg: not a JOSE header
    ],
    ids=["cassette key", "claims only", "placeholder", "host", "url", "no alg"],
)
def test_what_is_not_a_live_jwt(value: str) -> None:
    assert find_jwt(value) is None
    assert found(cassette(response_body={"issuer": value, "expires_in": 1})) == []


@pytest.mark.parametrize(
    "value",
    [jwt(CASSETTE_JWT), redact("id_token", jwt(PROVIDER_JWT)), "REDACTED-1a2b3c4d"],
    ids=["cassette key", "claims only", "placeholder"],
)
def test_an_id_token_may_be_cassette_signed_or_scrubbed(value: str) -> None:
    assert found(cassette(response_body={"id_token": value, "expires_in": 1})) == []


@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("access_token", "response"),
        ("refresh_token", "response"),
        ("device_code", "response"),
        ("refresh_token", "request"),
        ("code", "request"),
        ("code_verifier", "request"),
        ("token", "request"),
    ],
)
def test_a_long_opaque_token_is_found_in_token_fields(field: str, where: str) -> None:
    value = opaque(LONG_TOKEN)
    if where == "response":
        text = cassette(response_body={field: value})
    else:
        text = cassette(request_body=urlencode({"grant_type": "x", field: value}))
    assert found(text) == [
        f"interaction 0, {where} body field {field}: a long opaque value ({LONG_TOKEN} "
        "characters), not a placeholder; the scrubbed form is REDACTED-<8 hex>"
    ]
    assert value not in " ".join(found(text))


def test_a_json_request_body_and_a_query_are_read_too() -> None:
    value = opaque()
    text = cassette(request_body=json.dumps({"refresh_token": value}))
    text = text.replace("application/x-www-form-urlencoded", "application/json")
    assert [f.field for f in scan_cassette(text)] == ["refresh_token"]
    text = cassette(uri=f"https://api.example.com/me?access_token={value}&page=2")
    assert found(text) == [
        "interaction 0, request URI parameter access_token: a long opaque value (40 "
        "characters), not a placeholder; the scrubbed form is REDACTED-<8 hex>"
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"access_token": "short-1", "expires_in": 3600},  # shorter than any live token
        {"code": "authorization_pending_for_now"},  # in a response, code is an error code
        {"error": "invalid_grant", "error_description": "x" * 80},  # not a token field
        {"refresh_token": "fake-refresh-token-for-the-tests"},
        {"refresh_token": "REDACTED-refresh-2"},
        {"access_token": None, "refresh_token": 12345678901234567890},
    ],
)
def test_placeholders_short_values_and_other_fields_pass(body: dict[str, Any]) -> None:
    assert found(cassette(response_body=body)) == []


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [
        ("REDACTED", True),
        ("REDACTED-1a2b3c4d", True),
        ("fake-client-secret", True),
        ("example_code_1", True),
        ("Test.Token", True),
        ("my-access-token-value", False),  # words, but none says it stands for a token
        ("sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc", False),  # a long random run
        ("AbcFakeXyz" * 3, False),  # "fake" inside a random run is no word
        ("", False),
    ],
)
def test_what_is_an_obvious_placeholder(value: str, placeholder: bool) -> None:
    assert is_placeholder(value) is placeholder


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"client_secret": "s3cr3t"},
            "request body field client_secret: a value that is not a placeholder (6 "
            "characters); write REDACTED",
        ),
        (
            {"client_assertion": "hand-written-assertion"},
            "request body field client_assertion: a value that is not a placeholder",
        ),
        (
            {"client_assertion": jwt({"alg": "ES256"})},
            "request body field client_assertion: a signed JWT (alg ES256)",
        ),
        ({"client_secret": "REDACTED"}, None),
        ({"client_secret": "fake-client-secret"}, None),
    ],
    ids=["short secret", "assertion", "assertion jwt", "redacted", "placeholder"],
)
def test_client_secrets_and_assertions_in_request_bodies(
    fields: dict[str, str], message: str | None
) -> None:
    text = cassette(request_body=urlencode({"grant_type": "refresh_token", **fields}))
    if message is None:
        assert found(text) == []
    else:
        (only,) = found(text)
        assert only.startswith(f"interaction 0, {message}")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Authorization": ["Bearer " + opaque(12)]}, "a Bearer credential"),
        ({"authorization": ["Basic " + b64(b"client:secret")]}, "a Basic credential"),
        ({"Authorization": ["token " + opaque()]}, "a credential"),
        (
            {"Authorization": ["Bearer REDACTED"]},
            "redacted, but the scrubber drops this header: remove it",
        ),
        ({"Proxy-Authorization": ["Basic " + opaque()]}, "a Basic credential"),
        ({"Cookie": ["session=" + opaque()]}, "a cookie"),
        ({"x-api-key": ["Bearer " + opaque()]}, "what looks like a live bearer credential"),
    ],
)
def test_credential_request_headers(headers: dict[str, list[str]], message: str) -> None:
    (only,) = found(cassette(request_headers=headers))
    name = next(iter(headers))
    assert only == f"interaction 0, request header {name}: {message}"
    assert headers[name][0].split()[-1] not in only


def test_response_headers_a_cookie_is_found_a_bearer_challenge_is_not() -> None:
    challenge = 'Bearer realm="example", error="invalid_token", error_description="expired"'
    text = cassette(response_headers={"WWW-Authenticate": [challenge]})
    assert found(text) == []
    text = cassette(response_headers={"Set-Cookie": ["sid=" + opaque()]})
    assert found(text) == ["interaction 0, response header Set-Cookie: a cookie"]


def test_known_shapes_in_a_body_without_fields() -> None:
    leaked = "gho_" + "fakeExample" * 4
    text = cassette(response_body=f"<p>your token is {leaked}</p>")
    text = text.replace("application/json", "text/html")
    assert found(text) == ["interaction 0, response body: what looks like a live GitHub token"]


def test_every_interaction_is_named_by_its_index() -> None:
    data = yaml.safe_load(cassette())
    second = json.loads(json.dumps(data["interactions"][0]))
    second["response"]["body"]["string"] = json.dumps({"refresh_token": opaque()})
    data["interactions"].append(second)
    assert [f.interaction for f in scan_cassette(yaml.safe_dump(data))] == [1]


@pytest.mark.parametrize(
    "text", ["not: [valid yaml", "just some notes\n", "- a\n- list\n", "interactions: 3\n"]
)
def test_a_file_that_is_no_cassette_is_read_as_text(text: str) -> None:
    assert found(text) == []
    leaked = text + "\n# " + jwt(PROVIDER_JWT)
    assert [(f.interaction, f.place, f.problem) for f in scan_cassette(leaked)] == [
        (None, "file", "what looks like a live JSON Web Token")
    ]


def test_odd_shapes_of_an_interaction_do_not_crash_the_scan() -> None:
    odd = {
        "version": 1,
        "interactions": [
            None,
            {"request": "x", "response": 3},
            {"request": {"headers": ["a"], "body": None, "uri": None}, "response": {}},
            {"request": {"body": b"\xff\xfe"}, "response": {"body": {"string": None}}},
        ],
    }
    assert scan_cassette(yaml.safe_dump(odd)) == []


# -- the suite -----------------------------------------------------------------------------


def run_suite(pytester: pytest.Pytester) -> pytest.RunResult:
    return pytester.runpytest(*OPTIONS, "-rfs")


def test_a_jwt_access_token_fails_the_secret_check_alone(pytester: pytest.Pytester) -> None:
    """A provider that issues JWT access tokens (Microsoft, Auth0, Okta) must not have one
    left in a cassette: it is a bearer credential for its audience until it expires.

    Before the check knew JWTs, this cassette passed it, and the replay of refresh_ok (which
    vcrpy scrubs as it loads) failed instead, blaming the plugin's response parsing."""
    cassettes = standard_cassettes(rotate=False)
    token = jwt(PROVIDER_JWT)
    body = {"access_token": token, "expires_in": 3600}
    cassettes["refresh_ok"]["interactions"][0]["response"]["body"]["string"] = json.dumps(body)
    write_plugin(pytester, cassettes)
    result = run_suite(pytester)
    result.stdout.fnmatch_lines(
        [
            "*test_cassettes_hold_no_secrets*",
            "*cassettes must be scrubbed*",
            "*refresh_ok.yaml, interaction 0, response body field access_token: a signed JWT "
            "(alg RS256)*",
        ]
    )
    assert token not in result.stdout.str()
    # refresh_ok and the rotation check replay refresh_ok.yaml (sync and async): skipped with
    # a reason naming the secret check, not failed against the spec.
    result.assert_outcomes(passed=SUITE_SIZE - SKIPPED - 5, failed=1, skipped=SKIPPED + 4)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]4[]] *refresh_ok.yaml is not scrubbed (interaction 0, response body "
            "field access_token: a signed JWT (alg RS256)): test_cassettes_hold_no_secrets "
            "fails for it*"
        ]
    )


def test_an_unscrubbed_extra_cassette_fails_the_check_and_skips_nothing_else(
    pytester: pytest.Pytester,
) -> None:
    """A file no scenario reads still fails the check; a count says how many more there are."""
    cassettes = standard_cassettes(rotate=False)
    fields = {**refresh_fields("REDACTED-refresh-1"), "client_secret": opaque(24)}
    body = {"access_token": opaque(), "refresh_token": jwt(PROVIDER_JWT)}
    cassettes["refresh_extra"] = {"interactions": [interaction(fields, 200, body)], "version": 1}
    write_plugin(pytester, cassettes)
    result = run_suite(pytester)
    result.assert_outcomes(passed=SUITE_SIZE - SKIPPED - 1, failed=1, skipped=SKIPPED)
    result.stdout.fnmatch_lines(
        [
            "*refresh_extra.yaml, interaction 0, request body field client_secret: a value "
            "that is not a placeholder (24 characters); write REDACTED",
            "*refresh_extra.yaml, interaction 0, response body field access_token: a long "
            "opaque value (40 characters)*",
            "*refresh_extra.yaml, interaction 0, response body field refresh_token: a signed "
            "JWT (alg RS256)",
        ]
    )
