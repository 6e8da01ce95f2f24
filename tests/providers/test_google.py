"""Google's documented behaviour, as the plugin encodes it.

Sources: Google's documentation and the library code and reported responses cited, with
their URLs, in docs/providers/google.md (for example
https://developers.google.com/identity/protocols/oauth2/web-server).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

import keyturn
from keyturn import flows
from keyturn.http import HttpResponse
from keyturn_google import GOOGLE
from tests.conftest import CLIENT_ID, Recorder


def test_endpoints_are_googles_documented_ones() -> None:
    assert GOOGLE.authorization_endpoint == "https://accounts.google.com/o/oauth2/v2/auth"
    assert GOOGLE.token_endpoint == "https://oauth2.googleapis.com/token"
    assert GOOGLE.revocation_endpoint == "https://oauth2.googleapis.com/revoke"
    assert GOOGLE.userinfo_endpoint == "https://openidconnect.googleapis.com/v1/userinfo"
    assert GOOGLE.issuer == "https://accounts.google.com"
    assert GOOGLE.default_scopes == ("openid", "email", "profile")
    assert not GOOGLE.rotates_refresh_tokens
    assert GOOGLE.pkce_method == "S256"


def test_authorize_url_asks_for_offline_access_with_consent(kt: keyturn.Keyturn) -> None:
    request = kt.authorize_url(
        "google",
        "https://app.example/cb",
        login_hint="ada@example.com",
        hd="example.com",
        include_granted_scopes="true",
    )
    parts = urlsplit(request.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == GOOGLE.authorization_endpoint
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["login_hint"] == "ada@example.com"
    assert query["hd"] == "example.com"
    assert query["include_granted_scopes"] == "true"
    assert query["scope"] == "openid email profile"


def test_defaults_are_overridable_per_call(kt: keyturn.Keyturn) -> None:
    request = kt.authorize_url(
        "google", "https://app.example/cb", prompt="select_account", access_type="online"
    )
    query = parse_qs(urlsplit(request.url).query)
    assert query["prompt"] == ["select_account"]
    assert query["access_type"] == ["online"]


def _response(
    status: int, body: bytes, content_type: str = "application/json; charset=utf-8"
) -> HttpResponse:
    return HttpResponse(status, {"content-type": content_type}, body)


# Every Google token error docs/providers/google.md lists, each row with its source there,
# plus google-auth's retryable codes (_can_retry in
# https://github.com/googleapis/google-auth-library-python/blob/main/google/oauth2/_client.py).
GOOGLE_ERRORS = [
    (
        400,
        b'{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}',
        "invalid_grant",
        True,
    ),
    (400, b'{"error": "invalid_grant", "error_description": "Bad Request"}', "invalid_grant", True),
    (
        400,
        b'{"error": "invalid_grant", "error_description": "The account has been deleted"}',
        "invalid_grant",
        True,
    ),
    (400, b'{"error": "invalid_grant", "error_subtype": "invalid_rapt"}', "invalid_grant", True),
    (400, b'{"error": "invalid_grant", "error_subtype": "rapt_required"}', "invalid_grant", True),
    (
        401,
        b'{"error": "invalid_client", "error_description": "Unauthorized"}',
        "invalid_client",
        True,
    ),
    (
        401,
        b'{"error": "invalid_client", "error_description": "The OAuth client was not found."}',
        "invalid_client",
        True,
    ),
    (
        401,
        b'{"error": "unauthorized_client", "error_description": "Unauthorized"}',
        "unauthorized_client",
        True,
    ),
    (
        400,
        b'{"error": "invalid_request", '
        b'"error_description": "Could not determine client ID from request."}',
        "invalid_request",
        True,
    ),
    (
        400,
        b'{"error": "invalid_request", "error_description": "client_secret is missing."}',
        "invalid_request",
        True,
    ),
    (400, b'{"error": "admin_policy_enforced"}', "admin_policy_enforced", True),
    (401, b'{"error": "deleted_client"}', "deleted_client", True),
    (500, b'{"error": "internal_failure"}', "internal_failure", False),
    (503, b'{"error": "temporarily_unavailable"}', "temporarily_unavailable", False),
    (500, b'{"error": "server_error"}', "server_error", False),
]


@pytest.mark.parametrize(("status", "body", "code", "permanent"), GOOGLE_ERRORS)
def test_every_documented_google_error_is_classified(
    status: int, body: bytes, code: str, permanent: bool
) -> None:
    with pytest.raises(keyturn.OAuthError) as caught:
        flows.parse_token_response(GOOGLE, "refresh", _response(status, body), now=0)
    error = caught.value
    assert (error.error, error.status, error.permanent) == (code, status, permanent)
    assert error.provider == "google"


def test_rapt_is_classified_permanent_even_though_it_comes_from_google_policy() -> None:
    assert flows.is_permanent(GOOGLE, 400, "invalid_grant")
    assert not flows.is_permanent(GOOGLE, 500, "internal_failure")
    # A code Google does not document: the status decides.
    assert not flows.is_permanent(GOOGLE, 503, "backend_hiccup")
    assert flows.is_permanent(GOOGLE, 400, "backend_hiccup")


def test_revoke_posts_only_the_refresh_token(kt: keyturn.Keyturn, http: Recorder) -> None:
    tokens = keyturn.TokenSet(provider="google", access_token="at", refresh_token="rt")
    http.queue(200, {})
    kt.revoke(tokens)
    request = http.requests[-1]
    assert (request.method, str(request.url)) == ("POST", "https://oauth2.googleapis.com/revoke")
    assert http.form() == {"token": "rt"}  # no client secret sent where it is not needed
    assert "authorization" not in request.headers


def test_revoke_falls_back_to_the_access_token(kt: keyturn.Keyturn, http: Recorder) -> None:
    http.queue(200, {})
    kt.revoke(keyturn.TokenSet(provider="google", access_token="at"))
    assert http.form() == {"token": "at"}


def test_revoking_a_dead_token_counts_as_revoked(kt: keyturn.Keyturn, http: Recorder) -> None:
    http.queue(400, {"error": "invalid_token", "error_description": "Token expired or revoked"})
    kt.revoke(keyturn.TokenSet(provider="google", access_token="at", refresh_token="rt"))


def test_other_revoke_failures_raise(kt: keyturn.Keyturn, http: Recorder) -> None:
    http.queue(503, raw=b"<html>down</html>", content_type="text/html")
    with pytest.raises(keyturn.InvalidResponseError) as caught:
        kt.revoke(keyturn.TokenSet(provider="google", access_token="at", refresh_token="rt"))
    assert not caught.value.permanent and caught.value.operation == "revoke"


def test_google_revoke_override_does_not_apply_to_other_providers(http: Recorder) -> None:
    import httpx

    other = GOOGLE.model_copy(
        update={
            "id": "other",
            "name": "Other",
            "revocation_endpoint": "https://other.example/revoke",
        }
    )

    class RegistersOther:
        @keyturn.hookimpl
        def keyturn_register_providers(self, register: object) -> None:
            register(other)  # type: ignore[operator]

    pm = keyturn.get_plugin_manager(plugins=[RegistersOther()], environ={})
    client = keyturn.Keyturn(
        {"other": ("id", "secret")},
        plugin_manager=pm,
        environ={},
        http_client=httpx.Client(transport=httpx.MockTransport(http)),
    )
    http.queue(200, {})
    client.revoke(keyturn.TokenSet(provider="other", access_token="at", refresh_token="rt"))
    assert http.form() == {
        "token": "rt",
        "token_type_hint": "refresh_token",
        "client_id": "id",
        "client_secret": "secret",
    }


def test_testing_status_refresh_token_lifetime_is_honoured() -> None:
    body = (
        b'{"access_token": "at", "expires_in": 3599, "refresh_token": "rt", '
        b'"token_type": "Bearer", "refresh_token_expires_in": 604799}'
    )
    tokens = flows.parse_token_response(GOOGLE, "exchange_code", _response(200, body), now=1000)
    assert tokens.expires_at == 1000 + 3599
    assert tokens.refresh_token_expires_at == 1000 + 604799


def test_userinfo_is_normalised(kt: keyturn.Keyturn, http: Recorder) -> None:
    http.queue(
        200,
        {
            "sub": "1010",
            "name": "Foo Bar",
            "email": "foo@bar.com",
            "email_verified": True,
            "picture": "https://lh3.example/p.jpg",
            "hd": "bar.com",
            "locale": "en",
        },
    )
    profile = kt.userinfo(keyturn.TokenSet(provider="google", access_token="at"))
    assert (profile.id, profile.name, profile.email, profile.email_verified, profile.image) == (
        "1010",
        "Foo Bar",
        "foo@bar.com",
        True,
        "https://lh3.example/p.jpg",
    )
    assert profile.raw["hd"] == "bar.com"
    assert http.requests[-1].headers["authorization"] == "Bearer at"


def test_rapt_subtype_reaches_the_app_through_the_jwt(kt: keyturn.Keyturn, http: Recorder) -> None:
    """Workspace re-authentication is told apart from a revoked grant by its subtype."""
    tokens = keyturn.TokenSet(
        provider="google", access_token="at", refresh_token="rt", expires_at=0
    )
    token = kt.jwt(tokens=tokens)
    http.queue(400, {"error": "invalid_grant", "error_subtype": "rapt_required"})
    result = kt.jwt(token)
    assert result.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
    assert result.refresh_failure is not None
    assert result.refresh_failure.details == {"error_subtype": "rapt_required"}
    http.queue(
        400,
        {"error": "invalid_grant", "error_subtype": "rapt_required", "refresh_token": "never-kept"},
    )
    with pytest.raises(keyturn.OAuthError) as caught:
        kt.refresh(tokens)
    assert caught.value.details == {"error_subtype": "rapt_required"}
