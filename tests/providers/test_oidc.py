"""keyturn-oidc: providers declared by issuer, in code and in the environment, and what the core
does with them.

* ``keyturn_oidc.provider``: the spec it builds from an issuer, and every setting it refuses
  (a ConfigurationError naming the argument);
* the environment convention (``KEYTURN_OIDC_PROVIDERS``, ``KEYTURN_<ID>_...``): the specs it
  builds, every variable it refuses (named), and the plugin's registration of them, which never
  takes an id another plugin registers;
* a whole session against the test OpenID Provider of ``tests/core/_oidc.py`` (sign-in, code
  exchange, signed ID tokens, refresh, userinfo, revocation, logout endpoint) with no hook of
  the plugin's own, over the four client kinds; and multi-tenant issuers.
"""

from __future__ import annotations

import base64
import string
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import keyturn
import keyturn_oidc
from keyturn import ConfigurationError, ProviderSpec
from keyturn.idtoken import unverified_claims
from keyturn_oidc.environ import providers_from_env
from tests.conftest import CLIENT_ID, CLIENT_SECRET, FakeClock
from tests.core._oidc import (
    DISCOVERY_URL,
    ISSUER,
    JWKS_URI,
    OP_HOSTS,
    TOKEN,
    USERINFO,
    Provider,
    metadata,
    rsa_key,
)

KINDS = [("sync", "httpx"), ("sync", "httpx2"), ("async", "httpx"), ("async", "httpx2")]
REDIRECT = "https://app.example/auth/callback/op"
REVOKE = ISSUER + "/revoke"
LOGOUT = ISSUER + "/logout"


# -- in code --------------------------------------------------------------------------------


def test_a_provider_is_its_issuer_and_where_its_document_is() -> None:
    spec = keyturn_oidc.provider("corp", "https://id.corp.example")
    assert spec.id == "corp"
    assert spec.name == "id.corp.example"
    assert spec.issuer == "https://id.corp.example"
    assert spec.discovery_url == "https://id.corp.example/.well-known/openid-configuration"
    assert (spec.authorization_endpoint, spec.token_endpoint) == ("", "")
    assert spec.userinfo_endpoint is None and spec.jwks_uri is None
    assert spec.default_scopes == ("openid", "email", "profile")
    # Client authentication is left to the document (keyturn.discovery picks a secret method).
    assert "client_auth" not in spec.model_fields_set
    assert spec.pkce_method == "S256"
    assert {"prompt", "login_hint", "max_age", "acr_values"} <= spec.extra_authorize_params
    assert spec.env_prefix == "KEYTURN_CORP_"


@pytest.mark.parametrize(
    ("issuer", "discovery_url"),
    [
        ("https://dev-abc123.us.auth0.com/", "https://dev-abc123.us.auth0.com"),
        ("https://sso.example/auth/realms/apps", "https://sso.example/auth/realms/apps"),
        ("https://sso.example/realms/apps/", "https://sso.example/realms/apps"),
        ("https://subdomain.okta.com/oauth2/default", "https://subdomain.okta.com/oauth2/default"),
        ("http://127.0.0.1:8080/oidc", "http://127.0.0.1:8080/oidc"),
        ("http://localhost/oidc", "http://localhost/oidc"),
    ],
)
def test_the_issuer_is_kept_exactly_and_its_document_found_per_discovery_section_4(
    issuer: str, discovery_url: str
) -> None:
    spec = keyturn_oidc.provider("corp", issuer)
    assert spec.issuer == issuer
    assert spec.discovery_url == discovery_url + "/.well-known/openid-configuration"
    assert keyturn_oidc.discovery_url_for(issuer) == spec.discovery_url


def test_every_other_spec_field_can_be_given() -> None:
    spec = keyturn_oidc.provider(
        "auth0",
        "https://dev-abc123.us.auth0.com/",
        name="Auth0",
        scopes="openid email offline_access",
        discovery_url="https://login.example/.well-known/openid-configuration",
        client_auth="client_secret_post",
        authorize_params={"audience": "https://api.example"},
        trusted_audiences=frozenset({"https://api.example"}),
        token_endpoint="https://proxy.example/token",
    )
    assert spec.name == "Auth0"
    assert spec.default_scopes == ("openid", "email", "offline_access")
    assert spec.discovery_url == "https://login.example/.well-known/openid-configuration"
    assert spec.client_auth == "client_secret_post"
    assert spec.authorize_params == {"audience": "https://api.example"}
    assert spec.trusted_audiences == {"https://api.example"}
    assert spec.token_endpoint == "https://proxy.example/token"
    assert keyturn_oidc.provider("x", ISSUER, scopes=["openid"]).default_scopes == ("openid",)


def test_a_multi_tenant_issuer_is_a_template_with_its_claims() -> None:
    spec = keyturn_oidc.provider(
        "entra",
        "https://login.microsoftonline.com/{tenantid}/v2.0",
        discovery_url="https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration",
        issuer_claims={"tenantid": "tid"},
        issuer_claim_values={"tenantid": frozenset({"t1", "t2"})},
    )
    assert spec.issuer_is_template
    assert spec.issuer_claims == {"tenantid": "tid"}
    assert spec.name == "login.microsoftonline.com"


@pytest.mark.parametrize(
    ("issuer", "options", "expected"),
    [
        ("http://id.corp.example", {}, "corp: issuer is not https (http only on 127.0.0.1"),
        ("ftp://id.corp.example", {}, "corp: issuer is not an https URL: 'ftp://id.corp.example'"),
        ("id.corp.example", {}, "corp: issuer is not an https URL"),
        ("https://", {}, "corp: issuer has no host"),
        ("https://id.corp.example/?tenant=1", {}, "corp: issuer has a query"),
        ("https://id.corp.example/#x", {}, "corp: issuer has a fragment"),
        ("https://[::1", {}, "corp: issuer is not a URL"),
        ("", {}, "corp: issuer must be the provider's issuer URL"),
        (
            "https://login.microsoftonline.com/{tenantid}/v2.0",
            {"issuer_claims": {"tenantid": "tid"}},
            "corp: discovery_url is needed: the issuer",
        ),
        (
            "https://login.microsoftonline.com/{tenantid}/v2.0",
            {"discovery_url": "https://login.microsoftonline.com/common/v2.0/x"},
            "corp: issuer_claims must map each placeholder of the issuer ({tenantid})",
        ),
        (
            "https://id.corp.example",
            {"issuer_claims": {"tenantid": "tid"}},
            "corp: issuer_claims is only for an issuer with {placeholders}",
        ),
        (
            "https://id.corp.example",
            {"discovery_url": "http://id.corp.example/.well-known/openid-configuration"},
            "corp: discovery_url is not https",
        ),
        ("https://id.corp.example", {"scopes": "email"}, "corp: scopes must include openid"),
        ("https://id.corp.example", {"scopes": ()}, "corp: scopes must include openid"),
        ("https://id.corp.example", {"client_auth": "magic"}, "corp: client_auth is not usable"),
        (
            "https://id.corp.example",
            {"pkce_method": "S512"},
            "corp: pkce_method is not usable: Input should be 'S256' or 'plain'",
        ),
    ],
)
def test_a_setting_that_cannot_work_is_refused_by_name(
    issuer: str, options: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        keyturn_oidc.provider("corp", issuer, **options)
    assert str(caught.value).startswith(expected), str(caught.value)


@pytest.mark.parametrize("bad_id", ["Corp", "1corp", "corp idp", "", "corp.example"])
def test_an_id_that_is_not_one_is_refused(bad_id: str) -> None:
    with pytest.raises(ConfigurationError, match=r": id is not usable: String should match"):
        keyturn_oidc.provider(bad_id, "https://id.corp.example")


def test_scopes_are_passed_as_scopes() -> None:
    with pytest.raises(TypeError, match="scopes="):
        keyturn_oidc.provider("corp", ISSUER, default_scopes=("openid",))


# -- in the environment ---------------------------------------------------------------------


def env(**variables: str) -> dict[str, str]:
    return {f"KEYTURN_{name}": value for name, value in variables.items()}


def test_the_environment_declares_providers_in_order() -> None:
    specs = providers_from_env(
        env(
            OIDC_PROVIDERS=" corp,partner  my-idp ",
            CORP_ISSUER="https://id.corp.example",
            CORP_CLIENT_SECRET="fake-secret-never-read-here",
            PARTNER_ISSUER="https://sso.partner.example/realms/apps/",
            PARTNER_NAME="Partner SSO",
            PARTNER_SCOPES="openid, email groups",
            PARTNER_DISCOVERY_URL="https://sso.partner.example/meta",
            PARTNER_CLIENT_AUTH="client_secret_post",
            PARTNER_AUTHORIZE_PARAMS="audience=https%3A%2F%2Fapi.example&prompt=consent",
            MY_IDP_ISSUER="http://127.0.0.1:9000/oidc",
        )
    )
    assert [spec.id for spec in specs] == ["corp", "partner", "my-idp"]
    corp, partner, mine = specs
    assert corp == keyturn_oidc.provider("corp", "https://id.corp.example")
    assert partner == keyturn_oidc.provider(
        "partner",
        "https://sso.partner.example/realms/apps/",
        name="Partner SSO",
        scopes=("openid", "email", "groups"),
        discovery_url="https://sso.partner.example/meta",
        client_auth="client_secret_post",
        authorize_params={"audience": "https://api.example", "prompt": "consent"},
    )
    assert mine.issuer == "http://127.0.0.1:9000/oidc"
    assert mine.env_prefix == "KEYTURN_MY_IDP_"


def test_the_environment_declares_a_multi_tenant_issuer() -> None:
    (entra,) = providers_from_env(
        env(
            OIDC_PROVIDERS="entra",
            ENTRA_ISSUER="https://login.microsoftonline.com/{tenantid}/v2.0",
            ENTRA_DISCOVERY_URL=(
                "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
            ),
            ENTRA_ISSUER_CLAIMS="tenantid=tid",
            ENTRA_ISSUER_CLAIM_VALUES="tenantid=t1,t2 tenantid=t3",
        )
    )
    assert entra.issuer_claims == {"tenantid": "tid"}
    assert entra.issuer_claim_values == {"tenantid": frozenset({"t1", "t2", "t3"})}


@pytest.mark.parametrize(
    "variables",
    [{}, {"OIDC_PROVIDERS": ""}, {"OIDC_PROVIDERS": " , "}, {"CORP_ISSUER": "https://x.example"}],
)
def test_no_listed_id_declares_nothing(variables: dict[str, str]) -> None:
    assert providers_from_env(env(**variables)) == []


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"OIDC_PROVIDERS": "corp"},
            "KEYTURN_OIDC_PROVIDERS lists 'corp', but KEYTURN_CORP_ISSUER is not set",
        ),
        (
            {"OIDC_PROVIDERS": "corp", "CORP_ISSUER": "  "},
            "KEYTURN_OIDC_PROVIDERS lists 'corp', but KEYTURN_CORP_ISSUER is not set",
        ),
        ({"OIDC_PROVIDERS": "Corp"}, "KEYTURN_OIDC_PROVIDERS lists 'Corp', which is not a"),
        ({"OIDC_PROVIDERS": "corp.example"}, "KEYTURN_OIDC_PROVIDERS lists 'corp.example', which"),
        (
            {"OIDC_PROVIDERS": "corp corp", "CORP_ISSUER": "https://x.example"},
            "KEYTURN_OIDC_PROVIDERS lists 'corp' twice",
        ),
        (
            {"OIDC_PROVIDERS": "my-idp my_idp"},
            "KEYTURN_OIDC_PROVIDERS lists 'my-idp' and 'my_idp', whose variables would both be "
            "named KEYTURN_MY_IDP_...",
        ),
        (
            {"OIDC_PROVIDERS": "corp", "CORP_ISSUER": "http://id.corp.example"},
            "KEYTURN_CORP_ISSUER is not https (http only on 127.0.0.1, localhost or ::1): "
            "'http://id.corp.example'",
        ),
        (
            {"OIDC_PROVIDERS": "corp", "CORP_ISSUER": "https://id.corp.example?x=1"},
            "KEYTURN_CORP_ISSUER has a query",
        ),
        (
            {
                "OIDC_PROVIDERS": "corp",
                "CORP_ISSUER": "https://id.corp.example",
                "CORP_DISCOVERY_URL": "file:///etc/passwd",
            },
            "KEYTURN_CORP_DISCOVERY_URL is not an https URL",
        ),
        (
            {
                "OIDC_PROVIDERS": "corp",
                "CORP_ISSUER": "https://id.corp.example",
                "CORP_SCOPES": "email profile",
            },
            "KEYTURN_CORP_SCOPES must include openid",
        ),
        (
            {
                "OIDC_PROVIDERS": "corp",
                "CORP_ISSUER": "https://id.corp.example",
                "CORP_CLIENT_AUTH": "magic",
            },
            "KEYTURN_CORP_CLIENT_AUTH is not usable",
        ),
        (
            {"OIDC_PROVIDERS": "e", "E_ISSUER": "https://login.example/{tenantid}/v2.0"},
            "KEYTURN_E_ISSUER_CLAIMS must map each placeholder of the issuer ({tenantid})",
        ),
        (
            {
                "OIDC_PROVIDERS": "e",
                "E_ISSUER": "https://login.example/{tenantid}/v2.0",
                "E_ISSUER_CLAIMS": "tenantid=tid",
            },
            "KEYTURN_E_DISCOVERY_URL is needed",
        ),
        (
            {
                "OIDC_PROVIDERS": "e",
                "E_ISSUER": "https://login.example/{tenantid}/v2.0",
                "E_ISSUER_CLAIMS": "tenantid",
            },
            "KEYTURN_E_ISSUER_CLAIMS must be name=value pairs separated by spaces",
        ),
        (
            {
                "OIDC_PROVIDERS": "e",
                "E_ISSUER": "https://login.example/{tenantid}/v2.0",
                "E_DISCOVERY_URL": "https://login.example/common/v2.0/x",
                "E_ISSUER_CLAIMS": "tenantid=tid",
                "E_ISSUER_CLAIM_VALUES": "9tenant=t1",
            },
            "KEYTURN_E_ISSUER_CLAIM_VALUES must be name=value pairs",
        ),
        (
            {
                "OIDC_PROVIDERS": "corp",
                "CORP_ISSUER": "https://id.corp.example",
                "CORP_AUTHORIZE_PARAMS": "audience",
            },
            "KEYTURN_CORP_AUTHORIZE_PARAMS must be a URL query",
        ),
    ],
)
def test_a_variable_that_cannot_work_is_refused_by_name(
    variables: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        providers_from_env(env(**variables, CORP_CLIENT_SECRET="fake-secret-of-corp"))
    assert str(caught.value).startswith(expected), str(caught.value)
    assert "fake-secret-of-corp" not in str(caught.value)


_VALUES = st.text(string.printable, max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    ids=st.text(string.ascii_letters + string.digits + "-_ ,.", max_size=20),
    issuer=_VALUES | st.sampled_from(["https://a.example", "http://127.0.0.1/x", "https://{t}/"]),
    scopes=_VALUES,
    discovery=_VALUES,
    claims=_VALUES,
    values=_VALUES,
    client_auth=_VALUES,
    params=_VALUES,
)
def test_any_environment_gives_specs_or_a_configuration_error(
    ids: str,
    issuer: str,
    scopes: str,
    discovery: str,
    claims: str,
    values: str,
    client_auth: str,
    params: str,
) -> None:
    """Whatever the variables hold: specs, or a ConfigurationError; never another error."""
    environ = {"KEYTURN_OIDC_PROVIDERS": ids}
    for provider_id in ids.replace(",", " ").split():
        prefix = "KEYTURN_" + provider_id.upper().replace("-", "_") + "_"
        environ.update(
            {
                prefix + "ISSUER": issuer,
                prefix + "SCOPES": scopes,
                prefix + "DISCOVERY_URL": discovery,
                prefix + "ISSUER_CLAIMS": claims,
                prefix + "ISSUER_CLAIM_VALUES": values,
                prefix + "CLIENT_AUTH": client_auth,
                prefix + "AUTHORIZE_PARAMS": params,
            }
        )
    try:
        specs = providers_from_env(environ)
    except ConfigurationError:
        return
    for spec in specs:
        assert isinstance(spec, ProviderSpec)
        assert "openid" in spec.default_scopes
        assert spec.discovery_url is not None


# -- the plugin registers what the environment declares ---------------------------------------


@pytest.fixture
def declared(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set ``KEYTURN_...`` variables in the process environment, as an app's would be."""

    def declare(**variables: str) -> None:
        for name, value in env(**variables).items():
            monkeypatch.setenv(name, value)

    return declare


def test_the_plugin_is_found_through_its_entry_point_and_overrides_no_hook() -> None:
    pm = keyturn.get_plugin_manager()
    plugin = pm.get_plugin("oidc")
    assert plugin is keyturn_oidc
    assert pm.distributions["oidc"][0] == "keyturn-oidc"
    hooks = {caller.name for caller in pm.get_hookcallers(plugin) or ()}
    assert hooks == {"keyturn_register_providers"}


def test_the_plugin_registers_the_declared_providers(declared: Callable[..., None]) -> None:
    declared(
        OIDC_PROVIDERS="corp partner",
        CORP_ISSUER="https://id.corp.example",
        PARTNER_ISSUER="https://sso.partner.example/realms/apps",
        CORP_CLIENT_ID="corp-client",
    )
    with keyturn.Keyturn(plugin_manager=keyturn.get_plugin_manager()) as kt:
        registered = kt.registered_providers
        credentials = kt.credentials("corp")
    corp = registered["corp"]
    assert (corp.plugin, corp.distribution, corp.hooks) == ("oidc", "keyturn-oidc", ())
    assert corp.spec == keyturn_oidc.provider("corp", "https://id.corp.example")
    assert registered["partner"].spec.issuer == "https://sso.partner.example/realms/apps"
    assert credentials.client_id == "corp-client"
    assert "google" in registered  # the other plugins are there as ever


def test_a_clients_own_environ_declares_its_providers_and_the_process_one_is_not_read(
    declared: Callable[..., None],
) -> None:
    declared(OIDC_PROVIDERS="process", PROCESS_ISSUER="https://process.example")
    mine = env(
        OIDC_PROVIDERS="corp",
        CORP_ISSUER="https://id.corp.example",
        CORP_CLIENT_ID="corp-client",
    )
    with keyturn.Keyturn(plugin_manager=keyturn.get_plugin_manager(), environ=mine) as kt:
        registered = kt.registered_providers
        assert kt.credentials("corp").client_id == "corp-client"
    assert registered["corp"].spec == keyturn_oidc.provider("corp", "https://id.corp.example")
    assert "process" not in registered
    with keyturn.Keyturn(plugin_manager=keyturn.get_plugin_manager()) as kt:
        assert "process" in kt.registered_providers and "corp" not in kt.registered_providers


def test_a_bad_declaration_in_a_clients_environ_names_its_variable() -> None:
    with pytest.raises(keyturn.ConfigurationError, match="KEYTURN_CORP_ISSUER is not set"):
        keyturn.Keyturn(
            plugin_manager=keyturn.get_plugin_manager(), environ=env(OIDC_PROVIDERS="corp")
        )


def test_without_the_variable_the_plugin_registers_nothing() -> None:
    with keyturn.Keyturn(plugin_manager=keyturn.get_plugin_manager(), environ={}) as kt:
        assert all(reg.plugin != "oidc" for reg in kt.registered_providers.values())


def test_an_id_another_plugin_registers_is_refused_not_replaced(
    declared: Callable[..., None],
) -> None:
    declared(OIDC_PROVIDERS="google", GOOGLE_ISSUER="https://accounts.google.com")
    with pytest.raises(ConfigurationError) as caught:
        keyturn.Keyturn(plugin_manager=keyturn.get_plugin_manager())
    message = str(caught.value)
    assert message.startswith(
        "KEYTURN_OIDC_PROVIDERS lists 'google', an id another installed plugin registers"
    )
    assert "by plugin 'google'" in message


def test_an_id_an_app_plugin_registers_is_refused_too(declared: Callable[..., None]) -> None:
    """Whatever the order plugins are loaded in: keyturn-oidc registers last."""

    class AppProviders:
        @keyturn.hookimpl
        def keyturn_register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
            register(keyturn_oidc.provider("corp", "https://other.example"))

    declared(OIDC_PROVIDERS="corp", CORP_ISSUER="https://id.corp.example")
    pm = keyturn.get_plugin_manager(plugins=[AppProviders()])
    with pytest.raises(ConfigurationError, match="lists 'corp', an id another installed plugin"):
        keyturn.Keyturn(plugin_manager=pm)


def test_a_bad_variable_stops_the_client_from_being_built(declared: Callable[..., None]) -> None:
    declared(OIDC_PROVIDERS="corp", CORP_ISSUER="http://id.corp.example")
    with pytest.raises(ConfigurationError, match=r"^KEYTURN_CORP_ISSUER is not https"):
        keyturn.Keyturn(plugin_manager=keyturn.get_plugin_manager())


def test_disabling_the_plugin_ignores_the_variables(declared: Callable[..., None]) -> None:
    declared(OIDC_PROVIDERS="corp", CORP_ISSUER="http://not-even-valid.example")
    pm = keyturn.get_plugin_manager(environ={"KEYTURN_DISABLE_PLUGINS": "oidc"})
    with keyturn.Keyturn(plugin_manager=pm) as kt:
        assert "corp" not in kt.providers


def test_a_spec_in_code_replaces_the_declared_one(declared: Callable[..., None]) -> None:
    declared(OIDC_PROVIDERS="corp", CORP_ISSUER="https://id.corp.example")
    mine = keyturn_oidc.provider("corp", "https://id.corp.example", scopes="openid groups")
    with keyturn.Keyturn(plugin_manager=keyturn.get_plugin_manager(), providers=[mine]) as kt:
        assert kt.provider("corp") == mine


# -- a whole session, from the discovery document alone --------------------------------------


class OP(Provider):
    """The test OP with a revocation and an end-session endpoint; remembers what it was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.discovery = metadata(revocation_endpoint=REVOKE, end_session_endpoint=LOGOUT)
        self.sent: list[tuple[str, str, str | None, dict[str, str]]] = []

    def _remember(self, method: str, url: Any, headers: Any, body: bytes) -> None:
        form = dict(parse_qsl(body.decode())) if body else {}
        self.sent.append((method, str(url).split("?", 1)[0], headers.get("authorization"), form))

    def _answer(self, method: str, url: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        if url == REVOKE:
            with self.lock:
                self.counts[url] += 1
            return 200, b"", {}
        return super()._answer(method, url, body)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self._remember(request.method, request.url, request.headers, request.content)
        return super().handler(request)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        self._remember(request.method, request.url, request.headers, request.content)
        return await super().async_handler(request)

    def handler2(self, request: httpx2.Request) -> httpx2.Response:
        self._remember(request.method, request.url, request.headers, request.content)
        return super().handler2(request)

    def requests_to(self, url: str) -> list[tuple[str, str, str | None, dict[str, str]]]:
        return [sent for sent in self.sent if sent[1] == url]


class Session:
    """One client of the test's kind, for the test OP, behind an awaitable surface."""

    def __init__(self, client: keyturn.Keyturn | keyturn.AsyncKeyturn) -> None:
        self.client = client

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, method)(*args, **kwargs)
        return await result if isinstance(self.client, keyturn.AsyncKeyturn) else result

    async def authorize_url(self, provider: str) -> keyturn.AuthorizationRequest:
        if isinstance(self.client, keyturn.AsyncKeyturn):
            await self.client.discover(provider)  # AsyncKeyturn.authorize_url cannot fetch
        return self.client.authorize_url(provider, REDIRECT)


@pytest.fixture
def op(clock: FakeClock) -> OP:
    provider = OP()
    provider.now = clock
    return provider


@pytest.fixture(params=KINDS, ids=[f"{mode}-{library}" for mode, library in KINDS])
async def session(
    request: pytest.FixtureRequest, op: OP, clock: FakeClock
) -> AsyncIterator[Callable[..., Session]]:
    """Clients of one kind (sync or async, httpx or httpx2) over the test OP."""
    mode, library = request.param
    closers: list[Callable[[], Any]] = []

    def make(*specs: ProviderSpec) -> Session:
        options: dict[str, Any] = {
            "clock": clock,
            "environ": {},
            "providers": specs,
            "plugin_manager": keyturn.get_plugin_manager(),
        }
        credentials = {spec.id: (CLIENT_ID, CLIENT_SECRET) for spec in specs}
        if mode == "sync":
            sync_http = op.sync_client(library)
            closers.append(sync_http.close)
            return Session(keyturn.Keyturn(credentials, http_client=sync_http, **options))
        async_http = op.async_client(library)
        closers.append(async_http.aclose)
        return Session(keyturn.AsyncKeyturn(credentials, http_client=async_http, **options))

    yield make
    for close in closers:
        result = close()
        if result is not None:
            await result


BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


async def test_a_whole_session_comes_from_the_discovery_document(
    session: Callable[..., Session], op: OP, clock: FakeClock
) -> None:
    # This provider takes the client secret in a Basic header only.
    op.discovery = metadata(
        revocation_endpoint=REVOKE,
        end_session_endpoint=LOGOUT,
        token_endpoint_auth_methods_supported=["client_secret_basic"],
    )
    s = session(keyturn_oidc.provider("op", ISSUER, name="Test OP", endpoint_hosts=OP_HOSTS))
    # Sign-in: the URL is built on the document's authorization endpoint.
    request = await s.authorize_url("op")
    assert request.url.startswith(ISSUER + "/authorize?")
    assert request.nonce is not None
    op.nonces["code-1"] = request.nonce.get_secret_value()
    query = {"state": request.state.get_secret_value(), "code": "code-1"}
    token = await s.call("sign_in", request, query)
    # The code was exchanged at the document's token endpoint, the client authenticated as the
    # document allows (Basic, the secret never in the form); the ID token's signature was
    # verified with the document's key set; the profile came from its userinfo endpoint,
    # keeping sub as the id.
    ((method, _, authorization, form),) = op.requests_to(TOKEN)
    assert (method, authorization) == ("POST", BASIC)
    assert form["grant_type"] == "authorization_code" and "client_secret" not in form
    assert op.count(JWKS_URI) == 1
    assert token.user is not None and token.user.id == "42"
    assert op.count(USERINFO) == 1
    # Refresh: due, refreshed at the same endpoint; the new ID token is verified too.
    clock.advance(3600 - 30)
    refreshed = await s.call("jwt", token)
    assert refreshed.error is None
    assert refreshed.tokens.id_token is not None
    assert refreshed.tokens.id_token != token.tokens.id_token
    assert op.requests_to(TOKEN)[-1][3]["grant_type"] == "refresh_token"
    # An hour on, the key set (kept ten minutes) is read again; the document (kept an hour) not.
    assert op.count(JWKS_URI) == 2
    # Userinfo, and revocation (RFC 7009) at the document's revocation endpoint.
    profile = await s.call("userinfo", refreshed.tokens)
    assert profile.id == "42"
    assert await s.call("revoke", refreshed.tokens) is None
    ((method, _, authorization, form),) = op.requests_to(REVOKE)
    assert (method, authorization) == ("POST", BASIC)
    assert form["token_type_hint"] == "refresh_token"
    # Logout at the provider: the resolved spec carries the document's end-session endpoint.
    resolved = await s.call("discover", "op")
    assert resolved.end_session_endpoint == LOGOUT
    assert op.count(DISCOVERY_URL) == 1


async def test_the_secret_goes_in_the_form_where_the_document_lists_that_first(
    session: Callable[..., Session], op: OP
) -> None:
    """The test OP's document lists client_secret_post and client_secret_basic."""
    s = session(keyturn_oidc.provider("op", ISSUER, endpoint_hosts=OP_HOSTS))
    request = await s.authorize_url("op")
    assert request.nonce is not None
    op.nonces["code-1"] = request.nonce.get_secret_value()
    await s.call("exchange_code", request, "code-1")
    ((_, _, authorization, form),) = op.requests_to(TOKEN)
    assert authorization is None
    assert (form["client_id"], form["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)


async def test_a_private_key_declared_in_the_environment_signs_the_client_in(
    op: OP, clock: FakeClock, declared: Callable[..., None]
) -> None:
    """KEYTURN_<ID>_CLIENT_AUTH=private_key_jwt, and the key as keyturn reads any client's."""
    pem = rsa_key(3).as_pem(private=True).decode()
    declared(
        OIDC_PROVIDERS="op",
        OP_ISSUER=ISSUER,
        OP_ENDPOINT_HOSTS=" ".join(sorted(OP_HOSTS)),
        OP_CLIENT_AUTH="private_key_jwt",
        OP_CLIENT_ID=CLIENT_ID,
        OP_PRIVATE_KEY=pem,
    )
    op.now = clock
    with (
        op.sync_client() as http,
        keyturn.Keyturn(
            http_client=http, clock=clock, plugin_manager=keyturn.get_plugin_manager()
        ) as kt,
    ):
        assert kt.provider("op").client_auth == "private_key_jwt"
        request = kt.authorize_url("op", REDIRECT)
        assert request.nonce is not None
        op.nonces["code-1"] = request.nonce.get_secret_value()
        kt.exchange_code(request, "code-1")
    ((_, _, authorization, form),) = op.requests_to(TOKEN)
    assert authorization is None and "client_secret" not in form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assertion = unverified_claims(form["client_assertion"])
    assert (assertion["iss"], assertion["sub"], assertion["aud"]) == (CLIENT_ID, CLIENT_ID, TOKEN)


async def test_without_a_revocation_endpoint_revoke_sends_nothing(
    session: Callable[..., Session], op: OP
) -> None:
    op.discovery = metadata()  # no revocation_endpoint
    s = session(keyturn_oidc.provider("op", ISSUER, endpoint_hosts=OP_HOSTS))
    tokens = keyturn.TokenSet(provider="op", access_token="fake-at", refresh_token="fake-rt")
    with pytest.raises(ConfigurationError, match="op declares no revoke endpoint"):
        await s.call("revoke", tokens)
    assert op.requests_to(REVOKE) == []


async def test_an_id_token_signed_with_another_key_is_refused(
    session: Callable[..., Session], op: OP
) -> None:
    op.signer = ("k1", rsa_key(7), "RS256")  # the set still publishes key 0 as k1
    s = session(keyturn_oidc.provider("op", ISSUER, endpoint_hosts=OP_HOSTS))
    request = await s.authorize_url("op")
    assert request.nonce is not None
    op.nonces["code-1"] = request.nonce.get_secret_value()
    query = {"state": request.state.get_secret_value(), "code": "code-1"}
    with pytest.raises(keyturn.IdTokenError, match="signature"):
        await s.call("sign_in", request, query)


# -- multi-tenant issuers -------------------------------------------------------------------

TEMPLATE = ISSUER + "/{tenantid}/v2.0"


def tenant_provider(op: OP, **options: Any) -> ProviderSpec:
    op.discovery = metadata(issuer=TEMPLATE)
    return keyturn_oidc.provider(
        "op",
        TEMPLATE,
        discovery_url=DISCOVERY_URL,
        issuer_claims={"tenantid": "tid"},
        endpoint_hosts=OP_HOSTS,
        **options,
    )


async def sign_in(s: Session, op: OP) -> keyturn.JWT:
    request = await s.authorize_url("op")
    assert request.nonce is not None
    op.nonces["code-1"] = request.nonce.get_secret_value()
    query = {"state": request.state.get_secret_value(), "code": "code-1"}
    token: keyturn.JWT = await s.call("sign_in", request, query, fetch_profile=False)
    return token


async def test_a_token_of_any_tenant_signs_in_under_a_template(
    session: Callable[..., Session], op: OP
) -> None:
    s = session(tenant_provider(op))
    op.claim_changes = {"iss": ISSUER + "/t1/v2.0", "tid": "t1"}
    token = await sign_in(s, op)
    assert token.error is None


@pytest.mark.parametrize(
    ("claims", "options"),
    [
        ({"iss": ISSUER + "/t1/v2.0", "tid": "t2"}, {}),
        ({"iss": ISSUER + "/{tenantid}/v2.0", "tid": "t1"}, {}),
        ({"iss": ISSUER + "/t3/v2.0", "tid": "t3"}, {"issuer_claim_values": {"tenantid": {"t1"}}}),
    ],
    ids=["another tenant's issuer", "the template itself", "a tenant the app does not serve"],
)
async def test_a_token_that_does_not_fill_the_template_is_refused(
    session: Callable[..., Session], op: OP, claims: dict[str, str], options: dict[str, Any]
) -> None:
    s = session(tenant_provider(op, **options))
    op.claim_changes = claims
    with pytest.raises(keyturn.IdTokenError, match="iss"):
        await sign_in(s, op)


# -- the web integration: sign-in, and sign-out at the document's endpoints ----------------------


def test_the_web_signs_in_then_revokes_and_logs_out_at_the_documents_endpoints(
    op: OP, clock: FakeClock
) -> None:
    from urllib.parse import urlencode, urlsplit

    from keyturn.web import WebAuth
    from tests.web._site import SECRET
    from tests.web.test_auth import SyncBrowser

    spec = keyturn_oidc.provider(
        "op", ISSUER, endpoint_hosts=OP_HOSTS
    )  # no end_session_endpoint until it is read
    with (
        op.sync_client() as http,
        keyturn.Keyturn(
            {"op": (CLIENT_ID, CLIENT_SECRET)},
            http_client=http,
            clock=clock,
            environ={},
            providers=[spec],
            plugin_manager=keyturn.get_plugin_manager(),
        ) as kt,
    ):
        web = WebAuth(kt, secret=SECRET, logout_at_provider=["op"])
        browser = SyncBrowser(web)
        started = browser.request("GET", "/auth/signin/op?callbackUrl=%2Fhome")
        location = started.header("location")
        assert location is not None and location.startswith(ISSUER + "/authorize?")
        sent = dict(parse_qsl(urlsplit(location).query))
        op.nonces["code-1"] = sent["nonce"]
        back = {"state": sent["state"], "code": "code-1"}
        assert browser.request("GET", "/auth/callback/op?" + urlencode(back)).status == 303
        assert browser.json("/auth/session")["user"]["id"] == "42"
        token = browser.json("/auth/csrf")["csrfToken"]
        out = browser.request(
            "POST", "/auth/signout", form={"csrfToken": token, "callbackUrl": "/bye"}
        )
        goto = out.header("location")
    assert out.status == 303 and goto is not None
    endpoint, _, query = goto.partition("?")
    hint = dict(parse_qsl(query))
    assert endpoint == LOGOUT
    assert hint["client_id"] == CLIENT_ID
    assert hint["id_token_hint"] == op.id_tokens[0]
    assert hint["post_logout_redirect_uri"].endswith("/auth/signout/callback")
    # The grant was revoked at the document's revocation endpoint before the browser left.
    ((method, _, _, form),) = op.requests_to(REVOKE)
    assert method == "POST" and form["token_type_hint"] == "refresh_token"
    assert op.count(DISCOVERY_URL) == 1
