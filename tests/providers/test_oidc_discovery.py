"""keyturn-oidc against the published discovery documents of real providers (cassettes/oidc/).

Each cassette holds one provider's discovery document (and the key set published with it, where
there is one), as the provider published it or as someone captured it (provenance in
cassettes/README.md). A spec made by ``keyturn_oidc.provider`` from the issuer alone resolves,
through the real client, into the endpoints, algorithms, logout and revocation the provider
documents; every test runs four times: Keyturn over httpx.Client and httpx2.Client,
AsyncKeyturn over httpx.AsyncClient and httpx2.AsyncClient. The expected values are written
out below, not read from the documents, so each row says what the provider publishes.

Then what each provider makes of the issuer check (OpenID Connect Discovery 1.0 §4.3):
Microsoft's ``common`` document names a template, so ``common`` itself is refused; Auth0's
issuer ends with a slash; Keycloak's realm sits under ``/auth``; Okta's org and ``default``
servers are two issuers on one host.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest

import keyturn
import keyturn_oidc
from keyturn import effects
from keyturn.jwks import KeySet
from pytest_keyturn.cassettes import make_vcr
from tests.conftest import CASSETTES, CLIENT_ID, CLIENT_SECRET, FakeClock

VCR = make_vcr(CASSETTES / "oidc")
KINDS = [("sync", "httpx"), ("sync", "httpx2"), ("async", "httpx"), ("async", "httpx2")]
REDIRECT_URI = "https://app.example.com/api/auth/callback/oidc"

MS = "https://login.microsoftonline.com"
MS_TENANT = "12345678-1234-1234-1234-123456789012"
MS_COMMON_DISCOVERY = f"{MS}/common/v2.0/.well-known/openid-configuration"
#: Microsoft's tenant of personal accounts, as its common key set names it.
MS_CONSUMERS = "9188040d-6c67-4c5b-b112-36a304b66dad"
OKTA = "https://subdomain.okta.com"
AUTH0 = "https://dev-abc123.us.auth0.com"
KEYCLOAK = "https://aai.egi.eu/auth/realms/egi"
KEYCLOAK_OIDC = f"{KEYCLOAK}/protocol/openid-connect"
#: Where Google's document puts endpoints besides accounts.google.com, its issuer's host.
GOOGLE_HOSTS = frozenset(
    {"oauth2.googleapis.com", "openidconnect.googleapis.com", "www.googleapis.com"}
)
#: Microsoft's userinfo endpoint is on Microsoft Graph.
MS_HOSTS = frozenset({"graph.microsoft.com"})


@dataclass(frozen=True)
class Published:
    """One provider's document, and what keyturn must read from it.

    :ivar kids: the key ids of the key set published with it, in order; ``None`` when none was.
    """

    cassette: str
    spec: keyturn.ProviderSpec
    authorization: str
    token: str
    userinfo: str
    jwks_uri: str
    revocation: str | None
    end_session: str | None
    algorithms: frozenset[str]
    kids: tuple[str, ...] | None
    pkce: str = "S256"


DOCUMENTS = [
    Published(
        "google",
        keyturn_oidc.provider(
            "accounts", "https://accounts.google.com", endpoint_hosts=GOOGLE_HOSTS
        ),
        authorization="https://accounts.google.com/o/oauth2/v2/auth",
        token="https://oauth2.googleapis.com/token",
        userinfo="https://openidconnect.googleapis.com/v1/userinfo",
        jwks_uri="https://www.googleapis.com/oauth2/v3/certs",
        revocation="https://oauth2.googleapis.com/revoke",
        end_session=None,
        algorithms=frozenset({"RS256"}),
        kids=(
            "73e25f9789119c7875d58087a78ac23f5ef2eda3",
            "c88d809f4db943df53da7accfd47764d05ba391f",
        ),
    ),
    Published(
        "microsoft_common",
        keyturn_oidc.provider(
            "entra",
            f"{MS}/{{tenantid}}/v2.0",
            discovery_url=MS_COMMON_DISCOVERY,
            issuer_claims={"tenantid": "tid"},
            endpoint_hosts=MS_HOSTS,
        ),
        authorization=f"{MS}/common/oauth2/v2.0/authorize",
        token=f"{MS}/common/oauth2/v2.0/token",
        userinfo="https://graph.microsoft.com/oidc/userinfo",
        jwks_uri=f"{MS}/common/discovery/v2.0/keys",
        revocation=None,
        end_session=f"{MS}/common/oauth2/v2.0/logout",
        algorithms=frozenset({"RS256"}),
        kids=(
            "Mc7l3Iz93g7uwgNeEmmw_WYGPko",
            "iw1BXXcybk07kmtIeeJeIYqas18",
            "3PaK4EfyBNQu3CtjYsa3YmhQ5E0",
            "k8kbXTgyy1QKJ54n61Qg3OldE_E",
            "d-Zi0Gbus4sEaOqXgU8pMvYc3KI",
            "8IIDH6M8c3cXoeojKme8Jvqsr2Y",
            "iE89_EVhreMiV2-8rKE2zWBUm3M",
        ),
    ),
    Published(
        "microsoft_tenant",
        keyturn_oidc.provider("contoso", f"{MS}/{MS_TENANT}/v2.0", endpoint_hosts=MS_HOSTS),
        authorization=f"{MS}/{MS_TENANT}/oauth2/v2.0/authorize",
        token=f"{MS}/{MS_TENANT}/oauth2/v2.0/token",
        userinfo="https://graph.microsoft.com/oidc/userinfo",
        jwks_uri=f"{MS}/{MS_TENANT}/discovery/v2.0/keys",
        revocation=None,
        end_session=f"{MS}/{MS_TENANT}/oauth2/v2.0/logout",
        algorithms=frozenset({"RS256"}),
        kids=None,
    ),
    Published(
        "okta_org",
        keyturn_oidc.provider("okta", OKTA),
        authorization=f"{OKTA}/oauth2/v1/authorize",
        token=f"{OKTA}/oauth2/v1/token",
        userinfo=f"{OKTA}/oauth2/v1/userinfo",
        jwks_uri=f"{OKTA}/oauth2/v1/keys",
        revocation=f"{OKTA}/oauth2/v1/revoke",
        end_session=f"{OKTA}/oauth2/v1/logout",
        algorithms=frozenset({"RS256"}),
        kids=(
            "U5R8cHbGw445Qbq8zVO1PcCpXL8yG6IcovVa3laCoxM",
            "Y3vBOdYT-l-I0j-gRQ26XjutSX00TeWiSguuDhW3ngo",
            "h5Sr3LXcpQiQlAUVPdhrdLFoIvkhRTAVs_h39bQnxlU",
        ),
    ),
    Published(
        "okta_default",
        keyturn_oidc.provider("okta-default", f"{OKTA}/oauth2/default"),
        authorization=f"{OKTA}/oauth2/default/v1/authorize",
        token=f"{OKTA}/oauth2/default/v1/token",
        userinfo=f"{OKTA}/oauth2/default/v1/userinfo",
        jwks_uri=f"{OKTA}/oauth2/default/v1/keys",
        revocation=f"{OKTA}/oauth2/default/v1/revoke",
        end_session=f"{OKTA}/oauth2/default/v1/logout",
        algorithms=frozenset({"RS256"}),
        kids=(
            "U5R8cHbGw445Qbq8zVO1PcCpXL8yG6IcovVa3laCoxM",
            "Y3vBOdYT-l-I0j-gRQ26XjutSX00TeWiSguuDhW3ngo",
            "h5Sr3LXcpQiQlAUVPdhrdLFoIvkhRTAVs_h39bQnxlU",
        ),
    ),
    Published(
        "auth0",
        keyturn_oidc.provider("auth0", f"{AUTH0}/"),
        authorization=f"{AUTH0}/authorize",
        token=f"{AUTH0}/oauth/token",
        userinfo=f"{AUTH0}/userinfo",
        jwks_uri=f"{AUTH0}/.well-known/jwks.json",
        revocation=f"{AUTH0}/oauth/revoke",
        end_session=None,
        # HS256 is listed too: it needs the client secret, not Auth0's keys, and is dropped.
        algorithms=frozenset({"RS256", "PS256"}),
        kids=("NjVBRjY5MDlCMUIwNzU4RTA2QzZFMDQ4QzQ2MDAyQjVDNjk1RTM2Qg",),
    ),
    Published(
        "keycloak",
        keyturn_oidc.provider("egi", KEYCLOAK),
        authorization=f"{KEYCLOAK_OIDC}/auth",
        token=f"{KEYCLOAK_OIDC}/token",
        userinfo=f"{KEYCLOAK_OIDC}/userinfo",
        jwks_uri=f"{KEYCLOAK_OIDC}/certs",
        revocation=f"{KEYCLOAK_OIDC}/revoke",
        end_session=f"{KEYCLOAK_OIDC}/logout",
        # HS256, HS384 and HS512 are listed too, and dropped.
        algorithms=frozenset(
            {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
        ),
        kids=None,
    ),
]


def _id(document: Published) -> str:
    return document.cassette


class Client:
    """One Keyturn or AsyncKeyturn behind an awaitable surface, and the cassette it replays."""

    def __init__(self, client: keyturn.Keyturn | keyturn.AsyncKeyturn, library: str) -> None:
        self.client = client
        self.library = library
        self.sent: list[str] = []

    def note(self, request: Any) -> None:
        self.sent.append(type(request).__module__.split(".")[0])

    @contextmanager
    def play(self, cassette: str, *, all_played: bool = True) -> Iterator[Any]:
        """Replay ``cassette``; afterwards, unless told otherwise, every interaction played."""
        before = len(self.sent)
        with VCR.use_cassette(f"{cassette}.yaml") as played:
            yield played
        if all_played:
            assert played.all_played, f"{cassette}: some interactions were not played"
        assert len(self.sent) - before == played.play_count
        assert set(self.sent) <= {self.library}

    async def run(self, operation: effects.Operation[Any]) -> Any:
        if isinstance(self.client, keyturn.AsyncKeyturn):
            return await effects.arun(operation, self.client.http_client)
        return effects.run(operation, self.client.http_client)

    async def call(self, method: str, *args: Any) -> Any:
        result = getattr(self.client, method)(*args)
        if isinstance(self.client, keyturn.AsyncKeyturn):
            return await result
        return result

    async def resolve(self, provider: str) -> keyturn.ProviderSpec:
        """The spec resolved from the provider's discovery document (no key set read)."""
        spec: keyturn.ProviderSpec = await self.run(self.client.resolve_op(provider))
        return spec

    async def discover(self, provider: str) -> keyturn.ProviderSpec:
        """The spec resolved, and its key set read and checked."""
        spec: keyturn.ProviderSpec = await self.call("discover", provider)
        return spec

    async def key_set(self, spec: keyturn.ProviderSpec) -> KeySet:
        """The key set the client holds for ``spec`` (from its cache: no request)."""
        assert spec.jwks_uri is not None
        document = await self.run(self.client.key_sets.get_op(spec.id, spec.jwks_uri))
        assert not document.fetched
        keys: KeySet = document.value
        return keys


Connect = Callable[..., Client]


@pytest.fixture(params=KINDS, ids=[f"{mode}-{library}" for mode, library in KINDS])
async def connect(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Connect]:
    """Build clients of one kind for the given specs; close their HTTP clients afterwards."""
    mode, library = request.param
    closers: list[Callable[[], Any]] = []

    def make(*specs: keyturn.ProviderSpec) -> Client:
        options: dict[str, Any] = {
            "clock": clock,
            "environ": {},
            "providers": specs,
            "plugin_manager": keyturn.get_plugin_manager(entry_points=False),
        }
        credentials = {spec.id: (CLIENT_ID, CLIENT_SECRET) for spec in specs}
        if mode == "sync":
            sync_http = (httpx.Client if library == "httpx" else httpx2.Client)(trust_env=False)
            made = Client(keyturn.Keyturn(credentials, http_client=sync_http, **options), library)
            sync_http.event_hooks["request"] = [made.note]
            closers.append(sync_http.close)
            return made
        async_http = (httpx.AsyncClient if library == "httpx" else httpx2.AsyncClient)(
            trust_env=False
        )
        made = Client(keyturn.AsyncKeyturn(credentials, http_client=async_http, **options), library)

        async def note(sent: Any) -> None:
            made.note(sent)

        async_http.event_hooks["request"] = [note]
        closers.append(async_http.aclose)
        return made

    yield make
    for close in closers:
        result = close()
        if result is not None:
            await result


# -- every document resolves into the spec its provider documents ---------------------------


@pytest.mark.parametrize("document", DOCUMENTS, ids=_id)
async def test_the_document_resolves_into_the_documented_spec(
    connect: Connect, document: Published
) -> None:
    client = connect(document.spec)
    pid = document.spec.id
    with client.play(document.cassette) as played:
        if document.kids is None:
            resolved = await client.resolve(pid)
        else:
            resolved = await client.discover(pid)
    assert played.play_count == (1 if document.kids is None else 2)
    assert resolved.authorization_endpoint == document.authorization
    assert resolved.token_endpoint == document.token
    assert resolved.userinfo_endpoint == document.userinfo
    assert resolved.jwks_uri == document.jwks_uri
    assert resolved.revocation_endpoint == document.revocation
    assert resolved.end_session_endpoint == document.end_session
    assert resolved.id_token_signing_algs == document.algorithms
    assert resolved.pkce_method == document.pkce
    # None of these documents says the provider names itself on the redirect (RFC 9207).
    assert resolved.authorization_response_iss is False
    # What the app declared stays as declared: issuer, scopes.
    declared = document.spec.model_dump()
    changed = {name for name, value in resolved.model_dump().items() if declared[name] != value}
    assert changed <= {
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "revocation_endpoint",
        "end_session_endpoint",
        "jwks_uri",
        "id_token_signing_algs",
        "pkce_method",
    }
    assert resolved.issuer == document.spec.issuer
    assert resolved.default_scopes == ("openid", "email", "profile")
    # Each document lists client_secret_post, keyturn's first choice of a secret method.
    assert resolved.client_auth == "client_secret_post"
    if document.kids is not None:
        keys = await client.key_set(resolved)
        assert tuple(key.kid for key in keys.keys) == document.kids
        assert {key.kty for key in keys.keys} == {"RSA"}
        assert dict(keys.skipped) == {}


@pytest.mark.parametrize("document", DOCUMENTS, ids=_id)
async def test_a_sign_in_starts_at_the_documented_authorization_endpoint(
    connect: Connect, document: Published
) -> None:
    client = connect(document.spec)
    with client.play(document.cassette, all_played=False):
        await client.resolve(document.spec.id)
        request = client.client.authorize_url(document.spec.id, REDIRECT_URI, prompt="login")
    url = urlsplit(request.url)
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == document.authorization
    assert query["client_id"] == CLIENT_ID
    assert query["scope"] == "openid email profile"
    assert query["code_challenge_method"] == "S256"
    assert query["prompt"] == "login"
    assert request.nonce is not None
    assert query["nonce"] == request.nonce.get_secret_value()


@pytest.mark.parametrize("document", DOCUMENTS, ids=_id)
async def test_the_document_is_read_once_then_served_from_the_cache(
    connect: Connect, document: Published, clock: FakeClock
) -> None:
    """The cassette plays each interaction once: a second request would fail the test."""
    client = connect(document.spec)
    pid = document.spec.id
    with client.play(document.cassette, all_played=False) as played:
        first = await client.resolve(pid)
        clock.advance(60)
        again = await client.resolve(pid)
    assert played.play_count == 1
    assert again == first
    assert again.model_dump() == first.model_dump()


async def test_microsofts_cache_control_sets_how_long_the_document_is_kept(
    connect: Connect, clock: FakeClock
) -> None:
    """The tenant document came with ``Cache-Control: max-age=86400, private``."""
    (document,) = [d for d in DOCUMENTS if d.cassette == "microsoft_tenant"]
    client = connect(document.spec)
    with client.play("microsoft_tenant"):
        await client.resolve(document.spec.id)
    assert document.spec.discovery_url is not None
    kept = client.client.documents.cache.get(document.spec.discovery_url)
    assert kept is not None
    assert kept[1] == clock.now + 86400
    assert json.loads(kept[0])["issuer"] == f"{MS}/{MS_TENANT}/v2.0"


# -- Microsoft: a multi-tenant issuer is a template -----------------------------------------


async def test_microsoft_common_is_refused_as_a_literal_issuer(connect: Connect) -> None:
    literal = keyturn_oidc.provider("entra", f"{MS}/common/v2.0")
    assert literal.discovery_url == MS_COMMON_DISCOVERY  # the very document of the template
    client = connect(literal)
    with (
        client.play("microsoft_common", all_played=False) as played,
        pytest.raises(keyturn.ConfigurationError) as caught,
    ):
        await client.discover("entra")
    message = str(caught.value)
    assert "(issuer;" in message
    assert f"'{MS}/{{tenantid}}/v2.0'" in message
    assert "multi-tenant template" in message
    assert played.play_count == 1  # refused before the key set is read


async def test_microsoft_common_resolves_with_the_tenants_an_app_accepts(
    connect: Connect,
) -> None:
    spec = keyturn_oidc.provider(
        "entra",
        f"{MS}/{{tenantid}}/v2.0",
        discovery_url=MS_COMMON_DISCOVERY,
        issuer_claims={"tenantid": "tid"},
        issuer_claim_values={"tenantid": frozenset({MS_CONSUMERS})},
        endpoint_hosts=MS_HOSTS,
    )
    client = connect(spec)
    with client.play("microsoft_common"):
        resolved = await client.discover("entra")
    assert resolved.issuer == f"{MS}/{{tenantid}}/v2.0"
    assert resolved.issuer_claims == {"tenantid": "tid"}
    assert resolved.issuer_claim_values == {"tenantid": frozenset({MS_CONSUMERS})}
    assert resolved.authorization_response_iss is False  # a template cannot be compared


async def test_microsoft_has_no_revocation_endpoint_so_revoke_sends_nothing(
    connect: Connect,
) -> None:
    (document,) = [d for d in DOCUMENTS if d.cassette == "microsoft_tenant"]
    client = connect(document.spec)
    tokens = keyturn.TokenSet(
        provider="contoso", access_token="fake-access", refresh_token="fake-refresh"
    )
    with (
        client.play("microsoft_tenant") as played,
        pytest.raises(keyturn.ConfigurationError, match="contoso declares no revoke endpoint"),
    ):
        await client.call("revoke", tokens)
    assert played.play_count == 1  # the document; no revocation request
    assert "fake-refresh" not in str(played.requests)


# -- Auth0: the issuer ends with a slash ----------------------------------------------------


async def test_auth0s_issuer_needs_its_final_slash(connect: Connect) -> None:
    without = keyturn_oidc.provider("auth0", AUTH0)
    assert without.discovery_url == f"{AUTH0}/.well-known/openid-configuration"
    assert without.discovery_url == keyturn_oidc.provider("auth0", f"{AUTH0}/").discovery_url
    client = connect(without)
    with (
        client.play("auth0", all_played=False),
        pytest.raises(keyturn.ConfigurationError, match=r"\(issuer;") as caught,
    ):
        await client.resolve("auth0")
    assert f"names the issuer '{AUTH0}/', not the configured '{AUTH0}'" in str(caught.value)


# -- Keycloak: a realm under /auth -----------------------------------------------------------


def test_keycloaks_auth_path_is_kept_in_the_discovery_url() -> None:
    spec = keyturn_oidc.provider("egi", KEYCLOAK)
    assert spec.discovery_url == f"{KEYCLOAK}/.well-known/openid-configuration"
    assert spec.discovery_url.startswith("https://aai.egi.eu/auth/realms/egi/")


# -- Okta: the org server and the default server are two issuers ----------------------------


async def test_oktas_org_issuer_does_not_accept_the_default_servers_document(
    connect: Connect,
) -> None:
    mixed = keyturn_oidc.provider(
        "okta", OKTA, discovery_url=f"{OKTA}/oauth2/default/.well-known/openid-configuration"
    )
    client = connect(mixed)
    with (
        client.play("okta_default", all_played=False),
        pytest.raises(keyturn.ConfigurationError, match=r"\(issuer;") as caught,
    ):
        await client.resolve("okta")
    assert f"names the issuer '{OKTA}/oauth2/default'" in str(caught.value)


def test_okta_org_and_default_are_told_apart_by_their_paths() -> None:
    org, default = (d for d in DOCUMENTS if d.cassette in ("okta_org", "okta_default"))
    assert org.spec.discovery_url == f"{OKTA}/.well-known/openid-configuration"
    assert default.spec.discovery_url == f"{OKTA}/oauth2/default/.well-known/openid-configuration"
    assert org.token != default.token
