"""GitHub's documented behaviour, as the plugin encodes it.

Sources: GitHub's documentation and the recordings and reports cited, with their URLs, in
docs/providers/github.md (for example
https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps).
HTTP goes to an in-memory transport (conftest's Recorder); the cassette replays are in
test_github_cassettes.py.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import keyturn
import keyturn_github
from keyturn import flows
from keyturn.http import HttpResponse
from keyturn.plugins import KeyturnPluginManager
from keyturn_github import GITHUB
from keyturn_github.revoke import basic_authorization, grant_url
from keyturn_github.userinfo import emails_endpoint, primary_verified_email
from keyturn_google import GOOGLE
from tests.conftest import CLIENT_ID, CLIENT_SECRET, START, Both, FakeClock, Recorder

REDIRECT = "https://app.example.com/api/auth/callback/github"
JSON = "application/json; charset=utf-8"
FORM = "application/x-www-form-urlencoded"
#: Fake tokens with GitHub's prefixes; short, so they never look live. Prefixes:
#: https://github.blog/changelog/2021-03-31-authentication-token-format-updates-are-generally-available
ACCESS = "ghu_fake_access"
REFRESH = "ghr_fake_refresh"
USER = {
    "login": "example-user",
    "id": 1000001,
    "name": "Example User",
    "email": None,
    "avatar_url": "https://avatars.example/u/1000001",
}


@pytest.fixture
def credentials() -> dict[str, tuple[str, str]]:
    return {"github": (CLIENT_ID, CLIENT_SECRET)}


def tokens(**update: object) -> keyturn.TokenSet:
    data: dict[str, object] = {
        "provider": "github",
        "access_token": ACCESS,
        "expires_at": START - 1,
        "refresh_token": REFRESH,
        "refresh_token_expires_at": START + 1000,
        "scope": (),
    }
    data.update(update)
    return keyturn.TokenSet.model_validate(data)


def response(status: int, body: bytes, content_type: str = JSON) -> HttpResponse:
    return HttpResponse(status, {"content-type": content_type}, body)


# -- the spec ------------------------------------------------------------------------------


def test_spec_holds_githubs_documented_endpoints_and_behaviour() -> None:
    assert GITHUB.id == "github"
    assert GITHUB.authorization_endpoint == "https://github.com/login/oauth/authorize"
    assert GITHUB.token_endpoint == "https://github.com/login/oauth/access_token"
    assert GITHUB.userinfo_endpoint == "https://api.github.com/user"
    assert GITHUB.revocation_endpoint == "https://api.github.com/applications/{client_id}/grant"
    assert GITHUB.issuer is None  # not an OpenID provider
    assert GITHUB.default_scopes == ("read:user", "user:email")
    assert GITHUB.authorize_params == {}
    assert GITHUB.extra_authorize_params == {"login", "allow_signup", "prompt"}
    assert GITHUB.pkce_method == "S256"
    assert GITHUB.client_auth == "client_secret_post"
    assert GITHUB.rotates_refresh_tokens
    assert GITHUB.scope_separator == ","
    assert GITHUB.token_request_headers == {"Accept": "application/json"}
    assert GITHUB.transient_errors == frozenset()


def test_the_installed_plugin_registers_github_with_its_overrides(
    pm: KeyturnPluginManager,
) -> None:
    registered = keyturn.Keyturn(plugin_manager=pm, environ={}).registered_providers["github"]
    assert registered.spec == GITHUB
    assert registered.distribution == "keyturn-github"
    assert registered.hooks == ("keyturn_authorize_url", "keyturn_revoke", "keyturn_userinfo")


def test_the_hooks_answer_for_github_only() -> None:
    other = tokens(provider="google")
    creds = keyturn.ClientCredentials(client_id="id", client_secret="secret")
    assert keyturn_github.keyturn_userinfo(provider=GOOGLE, tokens=other) is None
    assert keyturn_github.keyturn_revoke(provider=GOOGLE, credentials=creds, tokens=other) is None
    params = {"prompt": "consent"}  # refused for GitHub, none of its business for Google
    assert (
        keyturn_github.keyturn_authorize_url(provider=GOOGLE, credentials=creds, params=params)
        is None
    )


# -- authorize URL -------------------------------------------------------------------------


def test_authorize_url_carries_githubs_parameters(kt: keyturn.Keyturn) -> None:
    request = kt.authorize_url(
        "github", REDIRECT, login="example-user", allow_signup="false", prompt="select_account"
    )
    parts = urlsplit(request.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == GITHUB.authorization_endpoint
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "read:user user:email",  # requested space-delimited, granted with commas
        "state": request.state.get_secret_value(),
        "code_challenge": query["code_challenge"],
        "code_challenge_method": "S256",
        "login": "example-user",
        "allow_signup": "false",
        "prompt": "select_account",
    }
    assert len(query["code_challenge"]) == 43
    assert request.nonce is None and request.issuer is None


@pytest.mark.parametrize("prompt", ["consent", "none", "login", "select_account consent", ""])
def test_undocumented_prompt_values_are_refused(kt: keyturn.Keyturn, prompt: str) -> None:
    with pytest.raises(keyturn.ConfigurationError, match="select_account"):
        kt.authorize_url("github", REDIRECT, prompt=prompt)


@pytest.mark.parametrize("name", ["access_type", "include_granted_scopes", "hd", "login_hint"])
def test_google_only_parameters_are_refused(kt: keyturn.Keyturn, name: str) -> None:
    extra: dict[str, Any] = {name: "x"}
    with pytest.raises(keyturn.ConfigurationError, match=name):
        kt.authorize_url("github", REDIRECT, **extra)


# -- token responses -----------------------------------------------------------------------

GITHUB_DOCS = "https://docs.github.com/apps/managing-oauth-apps/"

# GitHub's token-request errors, each at HTTP 200 as GitHub sends them (the 200 status:
# https://github.com/octokit/auth-oauth-app.js/issues/13; the catalogue:
# https://docs.github.com/en/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors
# ). The last two rows are the 2020 404 and a code GitHub does not document.
TOKEN_ERRORS = [
    (200, "bad_verification_code", "The code passed is incorrect or expired."),
    (200, "bad_refresh_token", "The refresh token passed is incorrect or expired."),
    (
        200,
        "incorrect_client_credentials",
        "The client_id and/or client_secret passed are incorrect.",
    ),
    (
        200,
        "redirect_uri_mismatch",
        "The redirect_uri MUST match the registered callback URL for this application.",
    ),
    (200, "unverified_user_email", "The user must have a verified primary email."),
    (200, "unsupported_grant_type", None),
    (200, "application_suspended", None),
    (404, "Not Found", None),
    (200, "some_unknown_error", None),
]


@pytest.mark.parametrize(("status", "code", "description"), TOKEN_ERRORS)
@pytest.mark.parametrize("operation", ["exchange_code", "refresh"])
def test_every_documented_error_is_permanent(
    status: int, code: str, description: str | None, operation: str
) -> None:
    body: dict[str, str] = {"error": code}
    if description is not None:
        body["error_description"] = description
        body["error_uri"] = GITHUB_DOCS + "troubleshooting"
    with pytest.raises(keyturn.OAuthError) as caught:
        flows.parse_token_response(
            GITHUB, operation, response(status, json.dumps(body).encode()), now=START
        )
    error = caught.value
    assert (error.error, error.status, error.permanent) == (code, status, True)
    assert (error.provider, error.operation, error.description) == (
        "github",
        operation,
        description,
    )


def test_github_codes_are_permanent_whatever_the_status() -> None:
    for _, code, _ in TOKEN_ERRORS[:-1]:  # all but the undocumented code
        assert flows.is_permanent(GITHUB, 503, code), code
    # Codes GitHub does not list keep core's rule: the status decides.
    assert not flows.is_permanent(GITHUB, 502, "some_unknown_error")


def test_a_form_encoded_error_is_read_as_an_error() -> None:
    # Verbatim from https://github.com/rwth-acis/VIAProMa/issues/186: no JSON Accept header.
    body = (
        b"error=incorrect_client_credentials&error_description=The+client_id+and%2For+"
        b"client_secret+passed+are+incorrect.&error_uri=https%3A%2F%2Fdocs.github.com%2Fapps"
        b"%2Fmanaging-oauth-apps%2Ftroubleshooting-oauth-app-access-token-request-errors%2F"
        b"%23incorrect-client-credentials"
    )
    with pytest.raises(keyturn.OAuthError) as caught:
        flows.parse_token_response(GITHUB, "refresh", response(200, body, FORM), now=START)
    error = caught.value
    assert (error.error, error.status, error.permanent) == (
        "incorrect_client_credentials",
        200,
        True,
    )
    assert error.description == "The client_id and/or client_secret passed are incorrect."
    assert error.details["error_uri"].endswith("#incorrect-client-credentials")


def test_the_documented_form_encoded_success_is_read() -> None:
    # The form sample of "Authorizing OAuth apps", with fake token values:
    # https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps
    body = (
        b"access_token=gho_fake_oauth_app_token&expires_in=28800&refresh_token=ghr_fake_refresh"
        b"&refresh_token_expires_in=15897600&scope=repo%2Cgist&token_type=bearer"
    )
    tokens = flows.parse_token_response(
        GITHUB, "exchange_code", response(200, body, FORM), now=START
    )
    assert tokens.access_token.get_secret_value() == "gho_fake_oauth_app_token"
    assert tokens.expires_at == START + 28800
    assert tokens.refresh_token_expires_at == START + 15897600
    assert tokens.scope == ("repo", "gist")
    assert tokens.token_type == "Bearer"


@pytest.mark.parametrize(("scope", "expected"), [("", ()), ("repo,gist", ("repo", "gist"))])
def test_scope_is_comma_separated_or_empty(scope: str, expected: tuple[str, ...]) -> None:
    body = {"access_token": ACCESS, "token_type": "bearer", "scope": scope}
    tokens = flows.parse_token_response(
        GITHUB, "exchange_code", response(200, json.dumps(body).encode()), now=START
    )
    assert tokens.scope == expected
    assert tokens.expires_at is None and tokens.refresh_token is None


# -- refresh through the clients -----------------------------------------------------------


@pytest.mark.parametrize("refresh_lifetime", [15897600, 15811200])
async def test_refresh_rotates_and_reads_the_refresh_lifetime(
    client: Both, http: Recorder, refresh_lifetime: int
) -> None:
    http.queue(
        200,
        {
            "access_token": "ghu_fake_new_access",
            "expires_in": 28800,
            "refresh_token": "ghr_fake_new_refresh",
            "refresh_token_expires_in": refresh_lifetime,
            "token_type": "bearer",
            "scope": "",
        },
    )
    new = await client("refresh", tokens())
    request = http.requests[-1]
    assert (request.method, str(request.url)) == ("POST", GITHUB.token_endpoint)
    assert request.headers["accept"] == "application/json"
    assert http.form() == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    assert new.access_token.get_secret_value() == "ghu_fake_new_access"
    assert new.refresh_token is not None
    assert new.refresh_token.get_secret_value() == "ghr_fake_new_refresh"
    assert new.expires_at == START + 28800
    assert new.refresh_token_expires_at == START + refresh_lifetime
    assert new.scope == ()


async def test_an_error_at_200_on_refresh_is_recorded_in_the_jwt(
    client: Both, http: Recorder
) -> None:
    token = await client("jwt", tokens=tokens())
    http.queue(
        200,
        {
            "error": "bad_refresh_token",
            "error_description": "The refresh token passed is incorrect or expired.",
        },
    )
    failed = await client("jwt", token)
    assert failed.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
    assert failed.tokens == token.tokens  # nothing lost
    assert failed.refresh_failure is not None
    assert (failed.refresh_failure.error, failed.refresh_failure.status) == (
        "bad_refresh_token",
        200,
    )


async def test_a_token_without_expiry_is_never_refreshed(
    client: Both, http: Recorder, clock: FakeClock
) -> None:
    forever = tokens(expires_at=None, refresh_token=None, refresh_token_expires_at=None)
    token = await client("jwt", tokens=forever)
    clock.advance(5 * 365 * 24 * 3600)
    assert await client("jwt", token) == token
    assert http.requests == []


async def test_an_expired_refresh_token_is_never_sent(
    client: Both, http: Recorder, clock: FakeClock
) -> None:
    clock.advance(1000)  # the refresh token's own expiry
    with pytest.raises(keyturn.RefreshTokenUnusable) as caught:
        await client("refresh", tokens())
    assert caught.value.error == "refresh_token_expired"
    token = await client("jwt", tokens=tokens())
    failed = await client("jwt", token)
    assert failed.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
    assert http.requests == []


# -- userinfo ------------------------------------------------------------------------------


async def test_userinfo_sends_githubs_media_type_and_the_bearer_token(
    client: Both, http: Recorder
) -> None:
    http.queue(200, dict(USER, email="public@example.com"))
    profile = await client("userinfo", tokens())
    assert len(http.requests) == 1  # a public address: no second request
    request = http.requests[0]
    assert (request.method, str(request.url)) == ("GET", "https://api.github.com/user")
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["authorization"] == f"Bearer {ACCESS}"
    assert (profile.id, profile.name, profile.email, profile.image) == (
        "1000001",
        "Example User",
        "public@example.com",
        "https://avatars.example/u/1000001",
    )
    assert profile.email_verified is None
    assert profile.raw == dict(USER, email="public@example.com")


async def test_a_private_email_comes_from_the_primary_verified_address(
    client: Both, http: Recorder
) -> None:
    http.queue(200, dict(USER, name=None))
    http.queue(
        200,
        [
            {"email": "work@example.org", "primary": False, "verified": True},
            {"email": "main@example.com", "primary": True, "verified": True},
        ],
    )
    profile = await client("userinfo", tokens())
    second = http.requests[1]
    assert str(second.url) == "https://api.github.com/user/emails"
    assert second.headers["accept"] == "application/vnd.github+json"
    assert second.headers["authorization"] == f"Bearer {ACCESS}"
    assert (profile.name, profile.email, profile.email_verified) == (
        "example-user",
        "main@example.com",
        True,
    )


@pytest.mark.parametrize("status", [403, 404])
async def test_no_permission_for_the_address_list_gives_a_profile_without_email(
    client: Both, http: Recorder, status: int
) -> None:
    http.queue(200, USER)
    http.queue(status, {"message": "Resource not accessible by integration"})
    profile = await client("userinfo", tokens())
    assert profile.id == "1000001"
    assert profile.email is None and profile.email_verified is None


async def test_an_unverified_primary_address_is_not_used(client: Both, http: Recorder) -> None:
    http.queue(200, USER)
    http.queue(
        200,
        [
            {"email": "main@example.com", "primary": True, "verified": False},
            {"email": "work@example.org", "primary": False, "verified": True},
        ],
    )
    profile = await client("userinfo", tokens())
    assert profile.email is None and profile.email_verified is None


async def test_a_dead_token_on_user_is_a_permanent_provider_error(
    client: Both, http: Recorder
) -> None:
    http.queue(401, {"message": "Bad credentials"})
    with pytest.raises(keyturn.ProviderError) as caught:
        await client("userinfo", tokens())
    error = caught.value
    assert (error.provider, error.operation, error.status) == ("github", "userinfo", 401)
    assert error.permanent
    assert error.description == "Bad credentials"
    assert ACCESS not in str(error)
    assert len(http.requests) == 1


async def test_a_server_error_on_the_address_list_is_transient(
    client: Both, http: Recorder
) -> None:
    http.queue(200, USER)
    http.queue(502, raw=b"<html>bad gateway</html>", content_type="text/html")
    with pytest.raises(keyturn.InvalidResponseError) as caught:
        await client("userinfo", tokens())
    assert (caught.value.status, caught.value.permanent) == (502, False)


@pytest.mark.parametrize("body", [{"login": "no-id"}, {"id": True}, ["not", "an", "object"]])
async def test_a_user_object_without_an_id_is_refused(
    client: Both, http: Recorder, body: object
) -> None:
    http.queue(200, body)
    with pytest.raises(keyturn.InvalidResponseError, match="'id'"):
        await client("userinfo", tokens())


def test_primary_verified_email_reads_only_a_list_of_objects() -> None:
    assert primary_verified_email({"email": "a@example.com"}) is None
    assert primary_verified_email([None, "x", {"primary": True, "verified": True}]) is None
    assert (
        primary_verified_email([{"email": "a@example.com", "primary": True, "verified": True}])
        == "a@example.com"
    )
    # "true" is not True: a malformed answer is not trusted.
    assert (
        primary_verified_email([{"email": "a@example.com", "primary": "true", "verified": True}])
        is None
    )


def test_emails_endpoint_sits_beside_the_userinfo_endpoint() -> None:
    assert emails_endpoint("https://api.github.com/user") == "https://api.github.com/user/emails"
    assert (
        emails_endpoint("http://127.0.0.1:8/api/v3/user/")
        == "http://127.0.0.1:8/api/v3/user/emails"
    )


# -- revoke --------------------------------------------------------------------------------


async def test_revoke_deletes_the_grant_with_basic_client_authentication(
    client: Both, http: Recorder
) -> None:
    http.queue(204, raw=b"", content_type="")
    assert await client("revoke", tokens()) is None
    request = http.requests[-1]
    assert request.method == "DELETE"
    assert str(request.url) == f"https://api.github.com/applications/{CLIENT_ID}/grant"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"access_token": ACCESS}
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"{CLIENT_ID}:{CLIENT_SECRET}"


async def test_a_grant_github_does_not_know_counts_as_revoked(client: Both, http: Recorder) -> None:
    http.queue(404, {"message": "Not Found"})
    assert await client("revoke", tokens()) is None


@pytest.mark.parametrize(
    ("status", "body", "permanent", "description"),
    [
        (422, {"message": "Validation Failed"}, False, "Validation Failed"),
        (401, {"message": "Requires authentication"}, True, "Requires authentication"),
        (503, None, False, "HTTP 503 from GitHub's REST API"),
    ],
)
async def test_other_revoke_answers_raise(
    client: Both,
    http: Recorder,
    status: int,
    body: object,
    permanent: bool,
    description: str,
) -> None:
    if body is None:
        http.queue(status, raw=b"<html>unavailable</html>", content_type="text/html")
    else:
        http.queue(status, body)
    with pytest.raises(keyturn.InvalidResponseError) as caught:
        await client("revoke", tokens())
    error = caught.value
    assert (error.operation, error.status, error.permanent) == ("revoke", status, permanent)
    assert error.description == description
    assert CLIENT_SECRET not in str(error) and ACCESS not in str(error)


@pytest.mark.parametrize("secret", [None, ""])
def test_revoke_needs_the_client_secret(http: Recorder, secret: str | None) -> None:
    client = keyturn.Keyturn(
        {"github": keyturn.ClientCredentials(client_id=CLIENT_ID, client_secret=secret)},
        http_client=httpx.Client(transport=httpx.MockTransport(http)),
        environ={},
    )
    with pytest.raises(keyturn.ConfigurationError, match="client secret") as caught:
        client.revoke(tokens())
    assert "KEYTURN_GITHUB_CLIENT_SECRET" in str(caught.value)
    assert http.requests == []


def test_the_client_id_is_percent_encoded_into_the_path() -> None:
    assert grant_url(GITHUB, "Iv1.a/b?c") == (
        "https://api.github.com/applications/Iv1.a%2Fb%3Fc/grant"
    )
    assert basic_authorization("id", "s:cret") == "Basic " + base64.b64encode(b"id:s:cret").decode()


def test_revoke_logs_neither_the_credentials_nor_the_token(
    kt: keyturn.Keyturn, http: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    http.queue(404, {"message": "Not Found"})
    with caplog.at_level(logging.DEBUG, logger="keyturn"):
        kt.revoke(tokens())
    text = caplog.text
    assert "DELETE" in text  # the request was logged...
    basic = basic_authorization(CLIENT_ID, CLIENT_SECRET).split()[1]
    for secret in (basic, CLIENT_SECRET, ACCESS):
        assert secret not in text  # ...without what it carried


# -- every URL comes from the spec ---------------------------------------------------------


async def test_hooks_follow_endpoints_replaced_in_the_spec(
    http: Recorder, clock: FakeClock, pm: KeyturnPluginManager
) -> None:
    base = "http://127.0.0.1:9"
    local = GITHUB.model_copy(
        update={
            "authorization_endpoint": f"{base}/login/oauth/authorize",
            "token_endpoint": f"{base}/login/oauth/access_token",
            "userinfo_endpoint": f"{base}/api/v3/user",
            "revocation_endpoint": f"{base}/api/v3/applications/{{client_id}}/grant",
        }
    )
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(http)) as transport,
        keyturn.AsyncKeyturn(
            {"github": (CLIENT_ID, CLIENT_SECRET)},
            http_client=transport,
            clock=clock,
            plugin_manager=pm,
            environ={},
            providers=[local],
        ) as kt,
    ):
        assert kt.authorize_url("github", REDIRECT).url.startswith(local.authorization_endpoint)
        with pytest.raises(keyturn.ConfigurationError):  # the local spec keeps GitHub's hooks
            kt.authorize_url("github", REDIRECT, prompt="consent")
        expiring = {"access_token": ACCESS, "expires_in": 28800, "refresh_token": REFRESH}
        http.queue(200, expiring)
        signed_in = await kt.exchange_code("github", "code", redirect_uri=REDIRECT)
        http.queue(200, expiring)
        await kt.refresh(signed_in)
        http.queue(200, USER)
        http.queue(200, [{"email": "main@example.com", "primary": True, "verified": True}])
        await kt.userinfo(signed_in)
        http.queue(204, raw=b"", content_type="")
        await kt.revoke(signed_in)
    assert [(r.method, str(r.url)) for r in http.requests] == [
        ("POST", f"{base}/login/oauth/access_token"),
        ("POST", f"{base}/login/oauth/access_token"),
        ("GET", f"{base}/api/v3/user"),
        ("GET", f"{base}/api/v3/user/emails"),
        ("DELETE", f"{base}/api/v3/applications/{CLIENT_ID}/grant"),
    ]
