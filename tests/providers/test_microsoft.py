"""keyturn-microsoft: the tenant setting, issuers per tenant, AADSTS classification, keep_old.

Sources: the tenants of the authorize and token URLs, "Microsoft identity platform and OAuth 2.0
authorization code flow"
(https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow); the error
codes, https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes; refresh
tokens that "replace themselves with a fresh token upon every use" while the platform "doesn't
revoke old refresh tokens", https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens.
The cassette replays are in test_microsoft_cassettes.py.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

import keyturn
import keyturn_microsoft
from keyturn.discovery import check_issuer, parse_metadata, resolve_spec
from keyturn.http import HttpResponse
from keyturn.idtoken import IdTokenError, check_id_token
from keyturn_emulator import Emulator
from tests.conftest import CASSETTES

MS = "https://login.microsoftonline.com"
TEMPLATE = f"{MS}/{{tenantid}}/v2.0"
#: The tenant of cassettes/oidc/microsoft_tenant.yaml (the Azure SDK recorder's placeholder).
RECORDED_TENANT = "12345678-1234-1234-1234-123456789012"
OTHER_TENANT = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
CLIENT_ID = "00001111-aaaa-2222-bbbb-3333cccc4444"
NOW = 1_800_000_000


def deployed(tenant: str | None = None, environ: dict[str, str] | None = None) -> Any:
    settings: dict[str, dict[str, str]] = {}
    if tenant is not None:
        settings["microsoft"] = {"tenant": tenant}
    with keyturn.Keyturn(environ=environ or {}, settings=settings) as kt:
        return kt.provider("microsoft")


def document(issuer: str, tenant: str = "common") -> Any:
    """A v2.0 document as Microsoft serves it for ``tenant``, naming ``issuer``."""
    played = yaml.safe_load((CASSETTES / "oidc" / "microsoft_common.yaml").read_text())
    data = json.loads(played["interactions"][0]["response"]["body"]["string"])
    text = json.dumps(data).replace("/common/", f"/{tenant}/")
    data = json.loads(text)
    data["issuer"] = issuer
    return parse_metadata(data)


def id_token(tenant: str, issuer_tenant: str | None = None) -> str:
    """An unsigned ID token of an account of ``tenant`` (the claims check ignores signatures)."""
    claims = {
        "iss": f"{MS}/{issuer_tenant or tenant}/v2.0",
        "tid": tenant,
        "aud": CLIENT_ID,
        "sub": "subject",
        "iat": NOW,
        "exp": NOW + 3600,
        "ver": "2.0",
    }

    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{segment({'alg': 'RS256'})}.{segment(claims)}.c2ln"


def accepts(spec: keyturn.ProviderSpec, token: str) -> bool:
    try:
        check_id_token(
            token,
            nonce=None,
            client_id=CLIENT_ID,
            issuer=spec.issuer,
            now=NOW,
            issuer_claims=spec.issuer_claims,
            issuer_claim_values=spec.issuer_claim_values,
        )
    except IdTokenError:
        return False
    return True


# -- the tenant setting -------------------------------------------------------------------


def test_without_a_tenant_the_spec_serves_common() -> None:
    spec = deployed()
    assert spec.deployment == {"tenant": "common"}
    assert spec.authorization_endpoint == f"{MS}/common/oauth2/v2.0/authorize"
    assert spec.token_endpoint == f"{MS}/common/oauth2/v2.0/token"
    assert spec.discovery_url == f"{MS}/common/v2.0/.well-known/openid-configuration"
    assert (spec.issuer, spec.issuer_claims) == (TEMPLATE, {"tenantid": "tid"})
    assert spec.issuer_claim_values == {}
    assert spec.revocation_endpoint is None
    assert spec.rotation == "keep_old" and spec.rotates_refresh_tokens
    assert "offline_access" in spec.default_scopes and spec.pkce_method == "S256"


def test_the_tenant_comes_from_the_environment_and_code_wins() -> None:
    environ = {"KEYTURN_MICROSOFT_TENANT": "organizations"}
    assert deployed(environ=environ).token_endpoint == f"{MS}/organizations/oauth2/v2.0/token"
    assert deployed("consumers", environ).token_endpoint == f"{MS}/consumers/oauth2/v2.0/token"


def test_a_tenant_id_accepts_only_its_own_tokens() -> None:
    spec = deployed(RECORDED_TENANT.upper())  # as the portal may show it
    assert spec.token_endpoint == f"{MS}/{RECORDED_TENANT}/oauth2/v2.0/token"
    assert spec.issuer_claim_values == {"tenantid": frozenset({RECORDED_TENANT})}
    assert accepts(spec, id_token(RECORDED_TENANT))
    assert not accepts(spec, id_token(OTHER_TENANT))


def test_consumers_accepts_only_personal_accounts() -> None:
    spec = deployed("consumers")
    consumers = keyturn_microsoft.CONSUMERS_TENANT_ID
    assert spec.issuer_claim_values == {"tenantid": frozenset({consumers})}
    assert accepts(spec, id_token(consumers))
    assert not accepts(spec, id_token(OTHER_TENANT))


@pytest.mark.parametrize(
    "value",
    [
        "not-a-tenant",  # one segment, but neither a shared tenant, a GUID nor a domain
        "12345678-1234-1234-1234-12345678901",  # a GUID one digit short
        "contoso",
        "..",
        "a/b",
        "com mon",
        "",
    ],
)
def test_a_bad_tenant_is_a_configuration_error_that_does_not_quote_it(value: str) -> None:
    with pytest.raises(keyturn.ConfigurationError) as caught:
        deployed(value or " ")
    message = str(caught.value)
    assert "tenant" in message
    if len(value.strip()) > 2:
        assert value not in message


def test_a_bad_tenant_in_the_environment_is_refused_too() -> None:
    with pytest.raises(keyturn.ConfigurationError, match="tenant"):
        deployed(environ={"KEYTURN_MICROSOFT_TENANT": "not-a-tenant"})


# -- discovery: how each tenant's document is compared and resolved ----------------------


def test_common_keeps_the_template_and_accepts_each_tenants_tokens() -> None:
    spec = deployed()
    metadata = document(TEMPLATE)
    check_issuer(spec, metadata)
    resolved = resolve_spec(spec, metadata)
    assert resolved.issuer == TEMPLATE and resolved.issuer_claims == {"tenantid": "tid"}
    assert accepts(resolved, id_token(RECORDED_TENANT))
    assert accepts(resolved, id_token(OTHER_TENANT))
    # A token whose iss names another tenant than its own tid is refused.
    assert not accepts(resolved, id_token(OTHER_TENANT, issuer_tenant=RECORDED_TENANT))


def test_a_tenant_id_resolves_against_its_recorded_document() -> None:
    played = yaml.safe_load((CASSETTES / "oidc" / "microsoft_tenant.yaml").read_text())
    metadata = parse_metadata(json.loads(played["interactions"][0]["response"]["body"]["string"]))
    spec = deployed(RECORDED_TENANT)
    check_issuer(spec, metadata)
    resolved = resolve_spec(spec, metadata)
    assert resolved.issuer == f"{MS}/{RECORDED_TENANT}/v2.0"
    assert resolved.issuer_claims == {} and resolved.issuer_claim_values == {}
    assert resolved.jwks_uri == f"{MS}/{RECORDED_TENANT}/discovery/v2.0/keys"
    assert resolved.revocation_endpoint is None
    assert accepts(resolved, id_token(RECORDED_TENANT))
    assert not accepts(resolved, id_token(OTHER_TENANT))


def test_a_tenant_id_refuses_a_document_of_another_tenant() -> None:
    spec = deployed(RECORDED_TENANT)
    with pytest.raises(keyturn.ConfigurationError, match="names the issuer"):
        check_issuer(spec, document(f"{MS}/{OTHER_TENANT}/v2.0", RECORDED_TENANT))


def test_a_domain_is_pinned_to_the_tenant_its_document_names() -> None:
    domain = "contoso.onmicrosoft.com"
    spec = deployed("Contoso.onmicrosoft.com")
    assert spec.discovery_url == f"{MS}/{domain}/v2.0/.well-known/openid-configuration"
    assert spec.issuer == TEMPLATE  # the tenant's id is not known before its document
    metadata = document(f"{MS}/{RECORDED_TENANT}/v2.0", domain)
    check_issuer(spec, metadata)
    resolved = resolve_spec(spec, metadata)
    assert resolved.issuer == f"{MS}/{RECORDED_TENANT}/v2.0" and resolved.issuer_claims == {}
    assert accepts(resolved, id_token(RECORDED_TENANT))
    assert not accepts(resolved, id_token(OTHER_TENANT))


@pytest.mark.parametrize(
    "issuer",
    [
        f"{MS}/a/b/v2.0",  # more than one segment where the tenant goes
        f"{MS}//v2.0",
        "https://evil.example/aaaabbbb-0000-cccc-1111-dddd2222eeee/v2.0",
        f"{MS}/{RECORDED_TENANT}/v2.0/extra",
    ],
)
def test_a_document_that_does_not_fill_the_template_is_refused(issuer: str) -> None:
    spec = deployed("contoso.onmicrosoft.com")
    with pytest.raises(keyturn.ConfigurationError, match="names the issuer"):
        check_issuer(spec, document(issuer, "contoso.onmicrosoft.com"))


def test_consumers_is_pinned_by_its_document_and_refuses_another() -> None:
    spec = deployed("consumers")
    consumers = keyturn_microsoft.CONSUMERS_TENANT_ID
    metadata = document(f"{MS}/{consumers}/v2.0", "consumers")
    check_issuer(spec, metadata)
    assert resolve_spec(spec, metadata).issuer == f"{MS}/{consumers}/v2.0"
    with pytest.raises(keyturn.ConfigurationError):
        check_issuer(spec, document(f"{MS}/{OTHER_TENANT}/v2.0", "consumers"))


# -- AADSTS classification ----------------------------------------------------------------


def refresh_answer(status: int, body: Any, content_type: str = "application/json") -> Any:
    """Run the plugin's refresh flow against one answer; return the error it raises."""
    spec = deployed()
    tokens = keyturn.TokenSet(
        provider="microsoft", access_token="old-access", refresh_token="old-refresh-secret"
    )
    credentials = keyturn.ClientCredentials(client_id=CLIENT_ID, client_secret="s3cret-value")
    flow = keyturn_microsoft.keyturn_refresh(
        provider=spec, credentials=credentials, tokens=tokens, clock=lambda: NOW
    )
    assert flow is not None
    request = next(flow)
    assert "old-refresh-secret" in request.body.decode()
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = HttpResponse(status=status, headers={"content-type": content_type}, body=raw)
    with pytest.raises(keyturn.ProviderError) as caught:
        flow.send(response)
    error = caught.value
    for secret in ("old-refresh-secret", "s3cret-value", "old-access"):
        assert secret not in str(error) and secret not in repr(error.details)
    return error


def aadsts(error: str, code: int | None, text: str = "Something happened.") -> dict[str, Any]:
    trace = "\r\nTrace ID: 0000aaaa\r\nCorrelation ID: bbbb\r\nTimestamp: 2027-01-01 00:00:00Z"
    body: dict[str, Any] = {"error": error, "trace_id": "0000aaaa", "correlation_id": "bbbb"}
    if code is None:
        body["error_description"] = text + trace
    else:
        body["error_description"] = f"AADSTS{code}: {text}{trace}"
        body["error_codes"] = [code]
    return body


SIGN_IN_AGAIN = "the user must sign in again"
INTERACTIVELY = "the user must sign in interactively"
CONFIGURATION = "a configuration problem"

#: (error, status, AADSTS code or None) -> (permanent, words the description holds)
CLASSIFICATION = [
    (("invalid_grant", 400, 700082), (True, SIGN_IN_AGAIN)),
    (("invalid_grant", 400, 700084), (True, SIGN_IN_AGAIN)),
    (("invalid_grant", 400, 50173), (True, SIGN_IN_AGAIN)),
    (("invalid_grant", 400, 50076), (True, INTERACTIVELY)),
    (("invalid_grant", 400, 50079), (True, INTERACTIVELY)),
    (("invalid_grant", 400, 65001), (True, INTERACTIVELY)),
    (("interaction_required", 400, 50076), (True, INTERACTIVELY)),
    (("interaction_required", 400, None), (True, INTERACTIVELY)),
    (("consent_required", 400, None), (True, INTERACTIVELY)),
    (("login_required", 400, None), (True, INTERACTIVELY)),
    (("invalid_client", 401, 7000222), (True, CONFIGURATION)),
    (("invalid_client", 401, 7000215), (True, CONFIGURATION)),
    (("temporarily_unavailable", 503, 90033), (False, "try again later")),
    # 90033 is transient whatever error it comes with.
    (("invalid_grant", 400, 90033), (False, "try again later")),
    (("server_error", 500, None), (False, None)),
    (("temporarily_unavailable", 503, None), (False, None)),
    # A code the plugin does not know: RFC 6749's meaning of the error stands.
    (("invalid_grant", 400, 9002313), (True, None)),
    (("invalid_request", 400, 900144), (True, None)),
]


@pytest.mark.parametrize(("answer", "expected"), CLASSIFICATION, ids=str)
def test_refresh_errors_are_classified_by_their_aadsts_code(
    answer: tuple[str, int, int | None], expected: tuple[bool, str | None]
) -> None:
    code_name, status, code = answer
    permanent, words = expected
    error = refresh_answer(status, aadsts(code_name, code))
    assert isinstance(error, keyturn.OAuthError)
    assert (error.error, error.status, error.permanent) == (code_name, status, permanent)
    assert error.details.get("aadsts") == (None if code is None else str(code))
    assert error.details["trace_id"] == "0000aaaa"
    assert error.description is not None
    if words is not None:
        assert words in error.description
        assert "Trace ID" not in error.description
    if code is not None:
        assert f"AADSTS{code}" in error.description


def test_the_code_is_read_from_error_codes_when_the_description_lacks_it() -> None:
    body = {"error": "invalid_grant", "error_description": "expired", "error_codes": [700082]}
    error = refresh_answer(400, body)
    assert error.details["aadsts"] == "700082" and SIGN_IN_AGAIN in error.description


@pytest.mark.parametrize(
    "codes", [[True], [-5], ["700082"], [10**12], [], "700082", [None], {"a": 1}]
)
def test_unusable_error_codes_are_ignored(codes: Any) -> None:
    body = {"error": "invalid_grant", "error_description": "expired", "error_codes": codes}
    error = refresh_answer(400, body)
    assert "aadsts" not in error.details
    assert error.permanent and error.description == "expired"


def test_a_5xx_page_without_an_oauth_error_is_transient() -> None:
    error = refresh_answer(502, b"<html>Bad gateway</html>", "text/html")
    assert isinstance(error, keyturn.InvalidResponseError) and not error.permanent


@pytest.mark.parametrize(
    ("description", "codes", "expected"),
    [
        ("AADSTS700082: The refresh token has expired", None, "700082"),
        ("  AADSTS50076: MFA", [1], "50076"),
        ("The refresh token AADSTS700082 has expired", None, None),  # only at the start
        ("AADSTS12: too short", None, None),
        (None, [7000222], "7000222"),
        (None, None, None),
        ("", [], None),
    ],
)
def test_aadsts_code(description: str | None, codes: Any, expected: str | None) -> None:
    assert keyturn_microsoft.aadsts_code(description, codes) == expected


# -- against the emulator: a refresh token that stays valid once used ---------------------


def test_keep_old_against_the_emulator() -> None:
    with Emulator(access_token_lifetime=3600) as emu:
        template = keyturn.Keyturn(environ={}).provider("microsoft", deployed=False)
        spec = emu.point(template)
        credentials = {"microsoft": emu.credentials}
        with keyturn.Keyturn(credentials, providers=[spec], environ={}) as kt:
            request = kt.authorize_url("microsoft", "http://127.0.0.1:8000/callback")
            first = kt.sign_in(request, emu.authorize(request.url)).tokens
            assert first.refresh_token is not None and first.id_token is not None
            second = kt.refresh(first)
        assert second.refresh_token is not None
        old, new = first.refresh_token.get_secret_value(), second.refresh_token.get_secret_value()
        assert new != old  # a new refresh token each time ...
        assert emu.store.lookup("microsoft", old) is not None  # ... and the old one still works
        with keyturn.Keyturn(credentials, providers=[spec], environ={}) as fresh:
            again = fresh.refresh(first)  # a client without the first one's reuse window
        assert again.access_token != second.access_token
        assert again.refresh_token is not None
        assert again.refresh_token.get_secret_value() not in (old, new)
        assert emu.counters("microsoft")["refresh_token"] == 2
        # Revoking the grant (the user removes the app's consent) ends every token of it.
        emu.revoke_grants("microsoft")
        with (
            keyturn.Keyturn(credentials, providers=[spec], environ={}) as late,
            pytest.raises(keyturn.OAuthError) as caught,
        ):
            late.refresh(first)
        assert caught.value.permanent and caught.value.details["aadsts"] == "50173"


def test_the_emulator_issues_a_refresh_token_only_with_offline_access() -> None:
    with Emulator(access_token_lifetime=3600) as emu:
        template = keyturn.Keyturn(environ={}).provider("microsoft", deployed=False)
        spec = emu.point(template)
        with keyturn.Keyturn({"microsoft": emu.credentials}, providers=[spec], environ={}) as kt:
            request = kt.authorize_url(
                "microsoft", "http://127.0.0.1:8000/callback", scopes=["openid", "profile"]
            )
            tokens = kt.sign_in(request, emu.authorize(request.url)).tokens
        assert tokens.refresh_token is None
        assert tokens.id_token is not None
