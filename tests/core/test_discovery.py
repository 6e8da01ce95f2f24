"""Discovery: a provider spec completed from its OpenID Provider Metadata document.

A spec with a ``discovery_url`` may leave its endpoints out; every operation resolves it first
(the document fetched once and cached), so hooks always see a resolved spec. A document that
cannot be used is a ConfigurationError naming the field: another issuer (Discovery 4.3), a
required field missing, an endpoint over plain http off loopback, HTML, truncated or oversized
bodies, or signatures keyturn cannot verify.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

import keyturn
from keyturn import ConfigurationError, ProviderSpec
from keyturn.discovery import parse_metadata, resolve_spec
from keyturn.documents import MAX_DOCUMENT_SIZE
from keyturn.web import WebAuth, WebRequest
from tests.conftest import CLIENT_ID, FakeClock

from ._oidc import (
    AUTHORIZE,
    CREDENTIALS,
    DISCOVERY_URL,
    ISSUER,
    JWKS_URI,
    REDIRECT,
    SPEC,
    TOKEN,
    USERINFO,
    Provider,
    metadata,
)

KINDS = [("sync", "httpx"), ("sync", "httpx2"), ("async", "httpx"), ("async", "httpx2")]


def sync_client(op: Provider, clock: FakeClock, spec: ProviderSpec = SPEC, **options: Any) -> Any:
    op.now = clock
    return keyturn.Keyturn(
        CREDENTIALS,
        http_client=op.sync_client(),
        clock=clock,
        environ={},
        providers=[spec],
        **options,
    )


def async_client(op: Provider, clock: FakeClock, spec: ProviderSpec = SPEC, **options: Any) -> Any:
    op.now = clock
    return keyturn.AsyncKeyturn(
        CREDENTIALS,
        http_client=op.async_client(),
        clock=clock,
        environ={},
        providers=[spec],
        **options,
    )


def resolve(client: Any) -> ProviderSpec:
    spec: ProviderSpec = keyturn.effects.run(client.resolve_op("op"), client.http_client)
    return spec


# -- the spec: endpoints from discovery ------------------------------------------------------


def test_a_spec_needs_its_endpoints_unless_it_has_a_discovery_url() -> None:
    with pytest.raises(ValidationError, match="authorization_endpoint and token_endpoint"):
        ProviderSpec(id="x", name="X")
    with pytest.raises(ValidationError, match="token_endpoint required"):
        ProviderSpec(id="x", name="X", authorization_endpoint=AUTHORIZE)
    spec = ProviderSpec(id="x", name="X", discovery_url=DISCOVERY_URL)
    assert spec.authorization_endpoint == "" and spec.token_endpoint == ""


def test_a_valid_document_resolves_the_spec(clock: FakeClock) -> None:
    op = Provider()
    op.discovery["end_session_endpoint"] = ISSUER + "/logout"
    op.discovery["revocation_endpoint"] = ISSUER + "/revoke"
    op.discovery["authorization_response_iss_parameter_supported"] = True
    with sync_client(op, clock) as kt:
        spec = resolve(kt)
    assert spec.authorization_endpoint == AUTHORIZE
    assert spec.token_endpoint == TOKEN  # on another host than the issuer: allowed
    assert spec.userinfo_endpoint == USERINFO
    assert spec.jwks_uri == JWKS_URI
    assert spec.revocation_endpoint == ISSUER + "/revoke"
    assert spec.end_session_endpoint == ISSUER + "/logout"
    assert spec.issuer == ISSUER  # taken from the discovery URL, then the document
    assert spec.id_token_signing_algs == {"RS256", "PS256", "ES256", "EdDSA"}
    assert spec.authorization_response_iss is True
    assert spec.pkce_method == "S256"
    assert spec.default_scopes == ("openid", "email")
    assert op.count(DISCOVERY_URL) == 1


def test_what_the_spec_sets_wins_except_the_issuer(clock: FakeClock) -> None:
    own = SPEC.model_copy(
        update={
            "userinfo_endpoint": "https://elsewhere.example/me",
            "id_token_signing_algs": frozenset({"ES256"}),
            "pkce_method": None,
            "token_endpoint": "https://elsewhere.example/token",
        }
    )
    data = metadata(authorization_response_iss_parameter_supported=True)
    resolved = resolve_spec(own, parse_metadata(data))
    assert resolved.userinfo_endpoint == "https://elsewhere.example/me"
    assert resolved.token_endpoint == "https://elsewhere.example/token"
    assert resolved.id_token_signing_algs == {"ES256"}
    assert resolved.pkce_method is None
    assert resolved.authorization_endpoint == AUTHORIZE
    explicit = ProviderSpec.model_validate(
        {**SPEC.model_dump(), "authorization_response_iss": False}
    )
    assert resolve_spec(explicit, parse_metadata(data)).authorization_response_iss is False
    # The issuer is never taken over: another one is refused.
    other = SPEC.model_copy(update={"issuer": "https://other.example"})
    op = Provider()
    with sync_client(op, clock, other) as kt, pytest.raises(ConfigurationError) as caught:
        resolve(kt)
    assert "issuer" in str(caught.value) and "4.3" in str(caught.value)


@pytest.mark.parametrize(
    ("methods", "expected"),
    [(None, "S256"), (["S256"], "S256"), (["plain"], "plain"), (["plain", "S256"], "S256")],
)
def test_pkce_follows_the_methods_the_document_lists(methods: Any, expected: str) -> None:
    resolved = resolve_spec(
        SPEC, parse_metadata(metadata(code_challenge_methods_supported=methods))
    )
    assert resolved.pkce_method == expected


@pytest.mark.parametrize(
    ("methods", "expected"),
    [
        (None, "client_secret_basic"),  # OIDC Discovery 1.0 section 3: the default
        (["client_secret_post", "client_secret_basic"], "client_secret_post"),  # the spec's
        (["client_secret_basic"], "client_secret_basic"),
        (["private_key_jwt", "client_secret_post"], "client_secret_post"),
        (["private_key_jwt"], "client_secret_post"),  # needs a key the app must name
    ],
)
def test_client_authentication_follows_the_methods_the_document_lists(
    methods: Any, expected: str
) -> None:
    data = metadata(token_endpoint_auth_methods_supported=methods)
    assert resolve_spec(SPEC, parse_metadata(data)).client_auth == expected


def test_a_client_authentication_the_spec_names_wins() -> None:
    spec = SPEC.model_copy(update={"client_auth": "private_key_jwt"})
    assert "client_auth" in spec.model_fields_set
    data = metadata(token_endpoint_auth_methods_supported=["client_secret_basic"])
    assert resolve_spec(spec, parse_metadata(data)).client_auth == "private_key_jwt"


def test_signing_algorithms_keep_only_those_keyturn_verifies() -> None:
    data = metadata(id_token_signing_alg_values_supported=["none", "HS256", "RS256", "ES384"])
    assert resolve_spec(SPEC, parse_metadata(data)).id_token_signing_algs == {"RS256", "ES384"}


def test_a_spec_without_discovery_resolves_to_itself_with_no_effect(kt: keyturn.Keyturn) -> None:
    spec = kt.provider("google")
    operation = kt.resolve_op("google")
    with pytest.raises(StopIteration) as stop:
        next(operation)
    assert stop.value.value is spec


def test_the_resolved_spec_is_reused_and_equals_a_fresh_resolution(clock: FakeClock) -> None:
    op = Provider()
    with sync_client(op, clock) as kt:
        first = resolve(kt)
        second = resolve(kt)
        assert second is first  # the shortcut: resolved once per document text
        fresh = resolve_spec(SPEC, parse_metadata(op.discovery))
        assert first == fresh
        assert first.model_dump() == fresh.model_dump()
        assert repr(first) == repr(fresh)
        assert first.model_fields_set == fresh.model_fields_set
        # A new document (after the old one expired) gives a new resolution.
        op.discovery["userinfo_endpoint"] = ISSUER + "/v2/userinfo"
        clock.advance(3601)
        third = resolve(kt)
        assert third.userinfo_endpoint == ISSUER + "/v2/userinfo"
        assert third == resolve_spec(SPEC, parse_metadata(op.discovery))
    assert op.count(DISCOVERY_URL) == 2


def test_the_issuer_may_end_with_a_slash_when_the_spec_names_none(clock: FakeClock) -> None:
    """Auth0's issuer is https://tenant.auth0.com/ and its document is at
    https://tenant.auth0.com/.well-known/openid-configuration."""
    op = Provider()
    op.discovery["issuer"] = ISSUER + "/"
    with sync_client(op, clock) as kt:
        assert resolve(kt).issuer == ISSUER + "/"


def test_a_discovery_url_that_does_not_name_the_issuer_needs_one(clock: FakeClock) -> None:
    spec = SPEC.model_copy(update={"discovery_url": ISSUER + "/metadata.json"})
    with sync_client(Provider(), clock, spec) as kt, pytest.raises(ConfigurationError) as caught:
        resolve(kt)
    assert "set issuer" in str(caught.value)


def test_a_discovery_url_over_plain_http_is_refused(clock: FakeClock) -> None:
    spec = SPEC.model_copy(update={"discovery_url": "http://op.example/.well-known/x"})
    with sync_client(Provider(), clock, spec) as kt, pytest.raises(ConfigurationError) as caught:
        resolve(kt)
    assert "discovery_url" in str(caught.value)


# -- bad documents ---------------------------------------------------------------------------


def _raw(op: Provider, body: bytes, kind: str = "application/json", status: int = 200) -> None:
    op.raw[DISCOVERY_URL] = (status, body, kind)


BAD_DOCUMENTS: list[tuple[str, Any, str]] = [
    ("issuer-mismatch", metadata(issuer="https://evil.example"), "issuer"),
    *[
        (f"no-{name}", metadata(**{name: None}), name)
        for name in (
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "response_types_supported",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
        )
    ],
    *[
        (f"http-{name}", metadata(**{name: "http://op.example/x"}), name)
        for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
    ],
    ("http-end-session", metadata(end_session_endpoint="http://op.example/logout"), "end_session"),
    ("ftp-endpoint", metadata(token_endpoint="ftp://op.example/token"), "token_endpoint"),
    ("fragment", metadata(authorization_endpoint=AUTHORIZE + "#x"), "authorization_endpoint"),
    ("issuer-query", metadata(issuer=ISSUER + "?x=1"), "issuer"),
    ("jwks-not-text", metadata(jwks_uri=5), "jwks_uri"),
    ("algs-not-list", metadata(id_token_signing_alg_values_supported="RS256"), "id_token_signing"),
    ("iss-flag-text", metadata(authorization_response_iss_parameter_supported="yes"), "iss_param"),
    ("none-alone", metadata(id_token_signing_alg_values_supported=["none"]), "none"),
    ("hmac-only", metadata(id_token_signing_alg_values_supported=["HS256"]), "id_token_signing"),
    ("no-code-flow", metadata(response_types_supported=["id_token"]), "response_types"),
]


@pytest.mark.parametrize(
    ("document", "field"),
    [(doc, field) for _, doc, field in BAD_DOCUMENTS],
    ids=[name for name, _, _ in BAD_DOCUMENTS],
)
def test_a_bad_document_is_a_configuration_error_naming_the_field(
    clock: FakeClock, document: dict[str, Any], field: str
) -> None:
    op = Provider()
    op.discovery = document
    with sync_client(op, clock) as kt, pytest.raises(ConfigurationError) as caught:
        resolve(kt)
    assert field in str(caught.value)
    assert DISCOVERY_URL in str(caught.value) and "op:" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "kind", "words"),
    [
        (b"<!doctype html><html><body>Sign in</body></html>", "text/html", "HTML"),
        (json.dumps(metadata()).encode()[:-40], "application/json", "not JSON"),
        (b"[1, 2, 3]", "application/json", "array"),
        (b'"issuer"', "application/json", "string"),
        (b"\xff\xfe\x00bad", "application/json", "UTF-8"),
        (b" " * (MAX_DOCUMENT_SIZE + 1) + b"{}", "application/json", "larger"),
    ],
    ids=["html", "truncated", "array", "string", "not-utf8", "too-large"],
)
def test_a_body_that_is_not_a_document_is_a_configuration_error(
    clock: FakeClock, body: bytes, kind: str, words: str
) -> None:
    op = Provider()
    _raw(op, body, kind)
    with sync_client(op, clock) as kt, pytest.raises(ConfigurationError, match=words):
        resolve(kt)


def test_a_document_just_under_the_size_limit_is_read(clock: FakeClock) -> None:
    op = Provider()
    body = json.dumps(metadata()).encode()
    _raw(op, body[:-1] + b" " * (MAX_DOCUMENT_SIZE - len(body)) + b"}")
    with sync_client(op, clock) as kt:
        assert resolve(kt).token_endpoint == TOKEN


def test_an_unknown_document_is_a_configuration_error_and_a_server_error_transient(
    clock: FakeClock,
) -> None:
    op = Provider()
    op.fail[DISCOVERY_URL] = [404, 503, httpx.ConnectError("refused")]
    with sync_client(op, clock) as kt:
        with pytest.raises(ConfigurationError, match="HTTP 404"):
            resolve(kt)
        with pytest.raises(keyturn.InvalidResponseError) as server:
            resolve(kt)
        assert server.value.status == 503 and not server.value.permanent
        assert server.value.operation == "discovery"
        with pytest.raises(keyturn.TransportError) as network:
            resolve(kt)
        assert not network.value.permanent and network.value.operation == "discovery"
        assert resolve(kt).token_endpoint == TOKEN  # none of the failures was cached
    assert op.count(DISCOVERY_URL) == 4


def test_loopback_endpoints_may_use_plain_http(clock: FakeClock) -> None:
    base = "http://127.0.0.1:8765"
    spec = SPEC.model_copy(
        update={
            "discovery_url": base + "/.well-known/openid-configuration",
            "endpoint_hosts": frozenset({"localhost:8765", "[::1]:8765", "op.example"}),
        }
    )
    op = Provider()
    op.raw[spec.discovery_url or ""] = (
        200,
        json.dumps(
            metadata(
                issuer=base,
                authorization_endpoint=base + "/authorize",
                token_endpoint="http://localhost:8765/token",
                jwks_uri="http://[::1]:8765/jwks",
            )
        ).encode(),
        "application/json",
    )
    with sync_client(op, clock, spec) as kt:
        resolved = resolve(kt)
    assert resolved.issuer == base and resolved.jwks_uri == "http://[::1]:8765/jwks"


def test_a_multi_tenant_template_is_compared_as_written(clock: FakeClock) -> None:
    template = "https://login.example/{tenantid}/v2.0"
    op = Provider()
    op.discovery["issuer"] = template
    with sync_client(op, clock) as kt, pytest.raises(ConfigurationError) as caught:
        resolve(kt)
    assert "issuer_claims" in str(caught.value)  # the hint
    spec = SPEC.model_copy(
        update={
            "issuer": template,
            "issuer_claims": {"tenantid": "tid"},
            "endpoint_hosts": SPEC.endpoint_hosts | {"op.example"},
        }
    )
    with sync_client(op, clock, spec) as kt:
        resolved = resolve(kt)
    assert resolved.issuer == template
    assert resolved.authorization_response_iss is False


# -- the four ways to hold a client ----------------------------------------------------------


@pytest.mark.parametrize(("mode", "library"), KINDS, ids=[f"{m}-{lib}" for m, lib in KINDS])
async def test_sign_in_through_discovery_with_each_client(
    clock: FakeClock, mode: str, library: str
) -> None:
    op = Provider()
    op.now = clock
    options: dict[str, Any] = {"clock": clock, "environ": {}, "providers": [SPEC]}
    if mode == "sync":
        http = op.sync_client(library)
        with keyturn.Keyturn(CREDENTIALS, http_client=http, **options) as kt:
            request = kt.authorize_url("op", REDIRECT)
            assert request.url.startswith(AUTHORIZE + "?")
            op.nonces["c1"] = request.nonce.get_secret_value()  # type: ignore[union-attr]
            token = kt.sign_in(request, {"code": "c1", "state": request.state.get_secret_value()})
    else:
        http = op.async_client(library)
        async with keyturn.AsyncKeyturn(CREDENTIALS, http_client=http, **options) as akt:
            spec = await akt.discover("op")
            assert spec.token_endpoint == TOKEN
            request = akt.authorize_url("op", REDIRECT)
            op.nonces["c1"] = request.nonce.get_secret_value()  # type: ignore[union-attr]
            query = {"code": "c1", "state": request.state.get_secret_value()}
            token = await akt.sign_in(request, query)
    assert token.user is not None and token.user.id == "42"
    assert op.count(DISCOVERY_URL) == 1 and op.count(JWKS_URI) == 1


async def test_the_async_authorize_url_needs_discover_first(clock: FakeClock) -> None:
    op = Provider()
    async with async_client(op, clock) as akt:
        with pytest.raises(ConfigurationError, match=r"await discover\('op'\)"):
            akt.authorize_url("op", REDIRECT)
        assert op.count(DISCOVERY_URL) == 0
        request = await keyturn.effects.arun(akt.authorize_url_op("op", REDIRECT), akt.http_client)
        assert request.url.startswith(AUTHORIZE)
        assert akt.authorize_url("op", REDIRECT).url.startswith(AUTHORIZE)  # now it can
    assert op.count(DISCOVERY_URL) == 1


def test_authorize_url_for_a_provider_without_discovery_makes_no_http_client(
    clock: FakeClock,
) -> None:
    with keyturn.Keyturn({"google": (CLIENT_ID, "s")}, clock=clock, environ={}) as kt:
        kt.authorize_url("google", REDIRECT)
        assert kt._http_client is None


def test_discover_checks_the_key_set_too(clock: FakeClock) -> None:
    op = Provider()
    op.jwks = {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}
    with sync_client(op, clock) as kt, pytest.raises(keyturn.KeySetError) as caught:
        kt.discover("op")
    assert caught.value.operation == "jwks" and not caught.value.permanent
    assert "kty" in str(caught.value)


# -- hooks see the resolved spec -------------------------------------------------------------


class SeenSpecs:
    """Records the spec each provider hook receives and lets keyturn's defaults answer."""

    def __init__(self) -> None:
        self.seen: dict[str, ProviderSpec] = {}

    @keyturn.hookimpl
    def keyturn_authorize_url(self, provider: ProviderSpec) -> None:
        self.seen["authorize_url"] = provider

    @keyturn.hookimpl
    def keyturn_exchange_code(self, provider: ProviderSpec) -> None:
        self.seen["exchange_code"] = provider

    @keyturn.hookimpl
    def keyturn_refresh(self, provider: ProviderSpec) -> None:
        self.seen["refresh"] = provider

    @keyturn.hookimpl
    def keyturn_userinfo(self, provider: ProviderSpec) -> None:
        self.seen["userinfo"] = provider

    @keyturn.hookimpl
    def keyturn_revoke(self, provider: ProviderSpec) -> None:
        self.seen["revoke"] = provider


def test_every_hook_receives_the_resolved_spec(clock: FakeClock) -> None:
    op = Provider()
    op.discovery["revocation_endpoint"] = ISSUER + "/revoke"
    op.raw[ISSUER + "/revoke"] = (200, b"", "text/plain")
    seen = SeenSpecs()
    pm = keyturn.get_plugin_manager(plugins=[seen], environ={})
    with sync_client(op, clock, plugin_manager=pm) as kt:
        request = kt.authorize_url("op", REDIRECT)
        op.nonces["c1"] = request.nonce.get_secret_value()
        token = kt.sign_in(request, {"code": "c1", "state": request.state.get_secret_value()})
        clock.advance(3600)
        kt.refresh(token.tokens)
        kt.revoke(token.tokens)
    assert set(seen.seen) == {"authorize_url", "exchange_code", "refresh", "userinfo", "revoke"}
    for hook, spec in seen.seen.items():
        assert spec.token_endpoint == TOKEN, hook
        assert spec.jwks_uri == JWKS_URI, hook


# -- the web routes --------------------------------------------------------------------------


def web(op: Provider, clock: FakeClock) -> WebAuth:
    return WebAuth(sync_client(op, clock), secret="discovery-tests-" + "0123456789abcdef" * 2)


def test_the_sign_in_route_resolves_before_it_builds_the_url(clock: FakeClock) -> None:
    op = Provider()
    answer = web(op, clock).handle(WebRequest("GET", "https://app.example/auth/signin/op"))
    assert answer.status == 302
    assert dict(answer.headers)["location"].startswith(AUTHORIZE + "?")
    assert op.count(DISCOVERY_URL) == 1


def test_the_sign_in_route_answers_a_page_when_discovery_fails(clock: FakeClock) -> None:
    op = Provider()
    op.fail[DISCOVERY_URL] = [httpx.ConnectError("refused")]
    auth = web(op, clock)
    unreachable = auth.handle(WebRequest("GET", "https://app.example/auth/signin/op"))
    assert unreachable.status == 502
    op.discovery["issuer"] = "https://evil.example"
    misconfigured = auth.handle(WebRequest("GET", "https://app.example/auth/signin/op"))
    assert misconfigured.status == 500
    assert b"evil" not in misconfigured.body


def test_an_endpoint_on_a_host_the_spec_does_not_list_is_refused(clock: FakeClock) -> None:
    """A document that moves the token endpoint elsewhere would send it every code, refresh
    token and client secret: refused before any request goes there, naming field and host."""
    op = Provider()
    op.discovery["token_endpoint"] = "https://attacker.example/token"
    kt = sync_client(op, clock)
    with pytest.raises(ConfigurationError) as caught:
        resolve(kt)
    message = str(caught.value)
    assert "token_endpoint on attacker.example" in message
    assert "endpoint_hosts" in message
    assert op.count("https://attacker.example/token") == 0


def test_the_issuers_own_host_and_listed_hosts_pass_and_case_does_not_matter(
    clock: FakeClock,
) -> None:
    op = Provider()
    op.discovery["userinfo_endpoint"] = "https://API.OP.EXAMPLE/userinfo"
    assert resolve(sync_client(op, clock)).userinfo_endpoint == "https://API.OP.EXAMPLE/userinfo"
    without = SPEC.model_copy(update={"endpoint_hosts": frozenset({"keys.op.example"})})
    with pytest.raises(ConfigurationError, match=r"token_endpoint on api\.op\.example"):
        resolve(sync_client(op, clock, without))


def test_an_endpoint_the_spec_sets_itself_is_not_read_from_the_document(clock: FakeClock) -> None:
    op = Provider()
    op.discovery["token_endpoint"] = "https://attacker.example/token"
    spec = SPEC.model_copy(update={"token_endpoint": TOKEN})
    assert resolve(sync_client(op, clock, spec)).token_endpoint == TOKEN


@pytest.mark.parametrize("bad", ["https://x.example", "x.example/path", "", "a b", "x:port"])
def test_endpoint_hosts_are_host_names(bad: str) -> None:
    with pytest.raises(ValidationError, match="endpoint_hosts"):
        ProviderSpec(id="x", name="X", discovery_url=DISCOVERY_URL, endpoint_hosts={bad})


# -- a templated issuer and a document naming one tenant ----------------------------------


def _templated(**extra: Any) -> ProviderSpec:
    return ProviderSpec(
        id="multi",
        name="Multi",
        discovery_url="https://id.example/{tenant}/.well-known/openid-configuration",
        issuer="https://id.example/{region}/{tenantid}/v2",
        issuer_claims={"region": "reg", "tenantid": "tid"},
        **extra,
    )


@pytest.mark.parametrize(
    ("issuer", "allowed", "accepted"),
    [
        ("https://id.example/{region}/{tenantid}/v2", None, False),  # the template itself
        ("https://id.example/eu/t-1/v2", None, True),
        ("https://id.example/eu/t-1/v2", frozenset({"t-1"}), True),
        ("https://id.example/eu/t-2/v2", frozenset({"t-1"}), False),
        ("https://id.example/eu/a/b/v2", None, False),  # two segments for one placeholder
        ("https://id.example/eu//v2", None, False),
        ("https://id.example/eu/t-1/v2/", None, False),
        ("https://other.example/eu/t-1/v2", None, False),
        ("https://id.example/e.u/t-1/v2", None, True),
    ],
)
def test_a_document_naming_one_filling_of_the_template_pins_the_spec(
    issuer: str, allowed: frozenset[str] | None, accepted: bool
) -> None:
    from keyturn.discovery import check_issuer, template_instance

    values = {"tenantid": allowed} if allowed is not None else {}
    spec = _templated(issuer_claim_values=values)
    assert template_instance(spec, issuer) is accepted
    metadata = parse_metadata(
        {
            "issuer": issuer,
            "authorization_endpoint": "https://id.example/authorize",
            "token_endpoint": "https://id.example/token",
            "jwks_uri": "https://id.example/keys",
            "response_types_supported": ["code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }
    )
    if issuer == spec.issuer:
        check_issuer(spec, metadata)  # compared as written
        assert resolve_spec(spec, metadata).issuer_claims == spec.issuer_claims
        return
    if not accepted:
        with pytest.raises(ConfigurationError, match="names the issuer"):
            check_issuer(spec, metadata)
        return
    check_issuer(spec, metadata)
    resolved = resolve_spec(spec, metadata)
    assert resolved.issuer == issuer
    assert (resolved.issuer_claims, resolved.issuer_claim_values) == ({}, {})


def test_a_spec_without_a_template_is_no_template_instance() -> None:
    from keyturn.discovery import template_instance

    plain = ProviderSpec(
        id="plain",
        name="Plain",
        discovery_url="https://id.example/.well-known/openid-configuration",
    )
    assert template_instance(plain, "https://id.example") is False
