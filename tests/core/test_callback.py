"""The authorize redirect and the way back: URL, state, PKCE, nonce, callback and ID token checks.

Also where credentials come from and what an unknown provider says.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import keyturn
from keyturn import pkce
from keyturn.idtoken import IdTokenError, check_id_token
from keyturn.models import AuthorizationRequest
from keyturn.plugins import KeyturnPluginManager
from keyturn_google import GOOGLE
from tests.conftest import CLIENT_ID, CLIENT_SECRET, START, Both, Recorder, sign_google_id_token

REDIRECT = "https://app.example/auth/callback/google"
ISSUER = "https://accounts.google.com"
URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


#: A provider whose metadata says it names itself on every callback (RFC 9207).
DECLARES_ISS = GOOGLE.model_copy(update={"id": "declares-iss", "authorization_response_iss": True})


@pytest.fixture
def declares_iss() -> AuthorizationRequest:
    client = keyturn.Keyturn({"declares-iss": (CLIENT_ID, CLIENT_SECRET)}, providers=[DECLARES_ISS])
    return client.authorize_url("declares-iss", REDIRECT)


@pytest.fixture
def auth(kt: keyturn.Keyturn) -> AuthorizationRequest:
    """A Google authorize request with the default settings."""
    return kt.authorize_url("google", REDIRECT)


def query_of(url: str) -> dict[str, str]:
    pairs = parse_qs(urlsplit(url).query, keep_blank_values=True)
    assert all(len(values) == 1 for values in pairs.values()), "a parameter is repeated"
    return {name: values[0] for name, values in pairs.items()}


def state_of(request: AuthorizationRequest) -> str:
    return request.state.get_secret_value()


def b64(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def id_token(**claims: Any) -> str:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": "42",
        "iat": START,
        "exp": START + 3600,
    }
    return sign_google_id_token({**base, **claims})


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


# -- verify_callback -----------------------------------------------------------------------


def test_a_good_callback_gives_the_code(auth: AuthorizationRequest) -> None:
    query = {"code": "4/0Adeu5B", "state": state_of(auth), "scope": "openid email", "iss": ISSUER}
    assert auth.verify_callback(query) == "4/0Adeu5B"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: None,
        lambda s: "",
        lambda s: s[:-1],
        lambda s: s + "x",
        lambda s: s.swapcase(),
        lambda s: "a" * len(s),
    ],
    ids=["missing", "empty", "truncated", "extended", "case-changed", "other"],
)
def test_a_missing_or_wrong_state_is_a_state_mismatch(
    auth: AuthorizationRequest, mangle: Any
) -> None:
    state = mangle(state_of(auth))
    query = {"code": "4/code"}
    if state is not None:
        query["state"] = state
    with pytest.raises(keyturn.StateMismatchError):
        auth.verify_callback(query)


@pytest.mark.parametrize("query", [{}, {"code": ""}], ids=["absent", "empty"])
def test_no_code_is_a_missing_code_error(auth: AuthorizationRequest, query: dict[str, str]) -> None:
    with pytest.raises(keyturn.MissingCodeError):
        auth.verify_callback({**query, "state": state_of(auth), "iss": ISSUER})


def test_an_error_with_the_right_state_is_authorization_denied(auth: AuthorizationRequest) -> None:
    query = {
        "error": "access_denied",
        "error_description": "The user denied access.",
        "state": state_of(auth),
        "iss": ISSUER,
    }
    with pytest.raises(keyturn.AuthorizationDenied) as caught:
        auth.verify_callback(query)
    error = caught.value
    assert (error.provider, error.error, error.description) == (
        "google",
        "access_denied",
        "The user denied access.",
    )
    assert "access_denied" in str(error)


def test_an_error_without_description(auth: AuthorizationRequest) -> None:
    with pytest.raises(keyturn.AuthorizationDenied) as caught:
        auth.verify_callback(
            {"error": "admin_policy_enforced", "state": state_of(auth), "iss": ISSUER}
        )
    assert caught.value.error == "admin_policy_enforced"
    assert caught.value.description is None


def test_an_error_with_a_code_is_still_an_error(auth: AuthorizationRequest) -> None:
    query = {"error": "access_denied", "code": "4/code", "state": state_of(auth), "iss": ISSUER}
    with pytest.raises(keyturn.AuthorizationDenied):
        auth.verify_callback(query)


@pytest.mark.parametrize("state", [None, "forged-state-value"])
def test_state_is_checked_before_the_error(auth: AuthorizationRequest, state: str | None) -> None:
    """A forged callback cannot plant an error message either."""
    query = {"error": "access_denied", "error_description": "planted"}
    if state is not None:
        query["state"] = state
    with pytest.raises(keyturn.StateMismatchError):
        auth.verify_callback(query)


@pytest.mark.parametrize(
    "extra",
    [{"code": "4/code"}, {"error": "access_denied"}],
    ids=["with-code", "with-error"],
)
def test_another_issuer_is_an_issuer_mismatch(
    auth: AuthorizationRequest, extra: dict[str, str]
) -> None:
    """RFC 9207: the mix-up defence applies to error responses too."""
    query = {**extra, "state": state_of(auth), "iss": "https://evil.example"}
    with pytest.raises(keyturn.IssuerMismatchError):
        auth.verify_callback(query)


def test_the_right_issuer_is_fine(auth: AuthorizationRequest) -> None:
    assert auth.issuer == ISSUER
    state = state_of(auth)
    assert auth.verify_callback({"code": "c1", "state": state, "iss": ISSUER}) == "c1"


def test_no_iss_is_fine_from_a_provider_not_known_to_send_it(kt: keyturn.Keyturn) -> None:
    spec = GOOGLE.model_copy(update={"id": "quiet", "authorization_response_iss": False})
    client = keyturn.Keyturn({"quiet": (CLIENT_ID, CLIENT_SECRET)}, providers=[spec])
    request = client.authorize_url("quiet", REDIRECT)
    assert request.issuer_required is False
    assert request.verify_callback({"code": "c2", "state": state_of(request)}) == "c2"


@pytest.mark.parametrize(
    "extra",
    [{"code": "4/code"}, {"error": "access_denied"}],
    ids=["with-code", "with-error"],
)
def test_no_iss_from_a_provider_that_always_sends_it_is_an_issuer_mismatch(
    declares_iss: AuthorizationRequest, extra: dict[str, str]
) -> None:
    """RFC 9207 section 2.4: a client that knows the provider sends iss must refuse a
    response without it (a mix-up attacker would leave it out)."""
    assert declares_iss.issuer_required
    with pytest.raises(keyturn.IssuerMismatchError, match="no iss"):
        declares_iss.verify_callback({**extra, "state": state_of(declares_iss)})


def test_sign_in_refuses_a_callback_without_iss_before_any_request(
    declares_iss: AuthorizationRequest,
) -> None:
    """Not only the web routes: the client's own sign_in checks it, before the code is spent."""
    spent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        spent.append(request)
        return httpx.Response(500)

    client = keyturn.Keyturn(
        {"declares-iss": (CLIENT_ID, CLIENT_SECRET)},
        providers=[DECLARES_ISS],
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(keyturn.IssuerMismatchError):
        client.sign_in(declares_iss, {"code": "4/code", "state": state_of(declares_iss)})
    assert spent == []


def test_google_does_not_require_iss_but_compares_it(auth: AuthorizationRequest) -> None:
    """Google's served discovery document does not set
    authorization_response_iss_parameter_supported (cassettes/google/discovery.yaml)."""
    assert not GOOGLE.authorization_response_iss and not auth.issuer_required
    assert auth.verify_callback({"code": "c", "state": state_of(auth)}) == "c"
    with pytest.raises(keyturn.IssuerMismatchError):
        auth.verify_callback(
            {"code": "c", "state": state_of(auth), "iss": "https://attacker.example"}
        )


def test_a_state_mismatch_is_reported_before_a_missing_iss(auth: AuthorizationRequest) -> None:
    with pytest.raises(keyturn.StateMismatchError):
        auth.verify_callback({"code": "4/code", "state": "forged"})


def test_an_authorization_request_saved_before_issuer_required_existed_still_loads(
    auth: AuthorizationRequest,
) -> None:
    saved = auth.model_dump(context=keyturn.REVEAL)
    del saved["issuer_required"]
    old = AuthorizationRequest.model_validate(saved)
    assert old.issuer_required is False
    assert old.verify_callback({"code": "c", "state": state_of(auth)}) == "c"


def test_without_a_known_issuer_iss_is_not_checked(auth: AuthorizationRequest) -> None:
    anonymous = auth.model_copy(update={"issuer": None})
    query = {"code": "c", "state": state_of(auth), "iss": "https://anything.example"}
    assert anonymous.verify_callback(query) == "c"


def test_callback_errors_share_one_base() -> None:
    for cls in (
        keyturn.StateMismatchError,
        keyturn.IssuerMismatchError,
        keyturn.MissingCodeError,
        keyturn.AuthorizationDenied,
        IdTokenError,
    ):
        assert issubclass(cls, keyturn.CallbackError)
        assert issubclass(cls, keyturn.KeyturnError)
        assert not issubclass(cls, keyturn.ProviderError)


# -- authorize_url -------------------------------------------------------------------------


def test_the_default_google_authorize_url(auth: AuthorizationRequest) -> None:
    parts = urlsplit(auth.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == GOOGLE.authorization_endpoint
    assert "scope=openid%20email%20profile" in parts.query  # %20, not +
    query = query_of(auth.url)
    assert auth.code_verifier is not None and auth.nonce is not None
    verifier = auth.code_verifier.get_secret_value()
    assert query == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid email profile",
        "state": state_of(auth),
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "nonce": auth.nonce.get_secret_value(),
        "access_type": "offline",
        "prompt": "consent",
    }
    assert "=" not in query["code_challenge"]
    assert (auth.provider, auth.redirect_uri, auth.issuer) == ("google", REDIRECT, ISSUER)
    assert auth.scopes == ("openid", "email", "profile")
    assert auth.created_at == START


async def test_the_async_client_builds_the_same_url(
    kt: keyturn.Keyturn, akt: keyturn.AsyncKeyturn
) -> None:
    sync = kt.authorize_url("google", REDIRECT, state="s" * 43, nonce="n" * 43)
    other = akt.authorize_url("google", REDIRECT, state="s" * 43, nonce="n" * 43)
    plain = {k: v for k, v in query_of(sync.url).items() if k != "code_challenge"}
    assert plain == {k: v for k, v in query_of(other.url).items() if k != "code_challenge"}


def test_no_nonce_without_openid(kt: keyturn.Keyturn) -> None:
    request = kt.authorize_url(
        "google", REDIRECT, scopes=["https://www.googleapis.com/auth/drive.readonly"]
    )
    query = query_of(request.url)
    assert "nonce" not in query
    assert request.nonce is None
    assert query["scope"] == "https://www.googleapis.com/auth/drive.readonly"


def test_explicit_state_and_nonce_are_used(kt: keyturn.Keyturn) -> None:
    request = kt.authorize_url("google", REDIRECT, state="my-own-state", nonce="my-own-nonce")
    query = query_of(request.url)
    assert (query["state"], query["nonce"]) == ("my-own-state", "my-own-nonce")
    assert state_of(request) == "my-own-state"


def test_google_extras_are_accepted_and_defaults_overridable(kt: keyturn.Keyturn) -> None:
    request = kt.authorize_url(
        "google",
        REDIRECT,
        login_hint="ada@example.com",
        hd="example.com",
        include_granted_scopes="true",
        prompt="select_account",
    )
    query = query_of(request.url)
    assert query["login_hint"] == "ada@example.com"
    assert query["hd"] == "example.com"
    assert query["include_granted_scopes"] == "true"
    assert query["prompt"] == "select_account"
    assert query["access_type"] == "offline"


def test_an_unknown_parameter_is_refused_by_name(kt: keyturn.Keyturn) -> None:
    with pytest.raises(keyturn.ConfigurationError, match="allow_signup") as caught:
        kt.authorize_url("google", REDIRECT, allow_signup="false")
    assert "login_hint" in str(caught.value)  # says what is accepted


@pytest.mark.parametrize(
    "name", ["code_challenge", "code_challenge_method", "response_type", "client_id", "scope"]
)
def test_a_reserved_parameter_is_refused(kt: keyturn.Keyturn, name: str) -> None:
    params: dict[str, Any] = {name: "attacker-chosen"}
    with pytest.raises(keyturn.ConfigurationError, match=name):
        kt.authorize_url("google", REDIRECT, **params)


def test_reserved_parameters_stay_reserved_even_if_a_spec_lists_them(kt: keyturn.Keyturn) -> None:
    """A plugin's spec cannot open the door to overriding state, PKCE or the client id."""
    sloppy = GOOGLE.model_copy(
        update={"extra_authorize_params": frozenset({"code_challenge", "client_id", "scope"})}
    )
    for name in ("code_challenge", "client_id", "scope"):
        params: dict[str, Any] = {name: "attacker-chosen"}
        with pytest.raises(keyturn.ConfigurationError, match=name):
            kt.authorize_url(sloppy, REDIRECT, **params)


def test_pkce_can_be_turned_off(kt: keyturn.Keyturn) -> None:
    request = kt.authorize_url("google", REDIRECT, pkce=False)
    query = query_of(request.url)
    assert "code_challenge" not in query
    assert "code_challenge_method" not in query
    assert request.code_verifier is None


def test_a_provider_without_pkce_gets_no_challenge(
    kt: keyturn.Keyturn,
) -> None:
    spec = GOOGLE.model_copy(update={"pkce_method": None})
    request = kt.authorize_url(spec, REDIRECT)
    assert "code_challenge" not in query_of(request.url)
    assert request.code_verifier is None


def test_random_values_are_unique_long_and_url_safe(kt: keyturn.Keyturn) -> None:
    requests = [kt.authorize_url("google", REDIRECT) for _ in range(50)]
    states = {state_of(r) for r in requests}
    verifiers = {r.code_verifier.get_secret_value() for r in requests if r.code_verifier}
    nonces = {r.nonce.get_secret_value() for r in requests if r.nonce}
    assert len(states) == len(verifiers) == len(nonces) == 50
    assert not states & verifiers and not states & nonces
    for value in states | nonces:
        assert len(value) >= 43  # 256 bits
        assert URL_SAFE.match(value)
    for verifier in verifiers:
        assert 43 <= len(verifier) <= 128
        assert URL_SAFE.match(verifier)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "/auth/callback",
        "auth/callback",
        "app.example/auth/callback",
        "//app.example/auth/callback",
        "https://app.example/auth/callback#fragment",
        "https://app.example/auth/callback#",
        "ftp://app.example/auth/callback",
        "javascript:alert(1)",
        "",
        "https://",
        "https:///auth/callback",
    ],
)
def test_a_bad_redirect_uri_is_refused(kt: keyturn.Keyturn, redirect_uri: str) -> None:
    with pytest.raises(keyturn.ConfigurationError, match="redirect_uri"):
        kt.authorize_url("google", redirect_uri)


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://localhost:8000/cb", "https://app.example/cb?tenant=a", "http://127.0.0.1/cb"],
)
def test_good_redirect_uris_are_accepted(kt: keyturn.Keyturn, redirect_uri: str) -> None:
    assert query_of(kt.authorize_url("google", redirect_uri).url)["redirect_uri"] == redirect_uri


# -- the code exchange uses what the authorize request recorded ------------------------------


async def test_the_exchange_sends_the_requests_redirect_uri_and_verifier(
    client: Both, http: Recorder
) -> None:
    request = client.client.authorize_url("google", REDIRECT)
    assert request.code_verifier is not None
    code = request.verify_callback({"code": "4/0Adeu5B", "state": state_of(request), "iss": ISSUER})
    http.queue(200, {"access_token": "at", "expires_in": 3599})
    await client("exchange_code", request, code)
    sent = http.requests[-1]
    assert str(sent.url) == GOOGLE.token_endpoint
    assert sent.method == "POST"
    assert http.form() == {
        "grant_type": "authorization_code",
        "code": "4/0Adeu5B",
        "redirect_uri": REDIRECT,
        "code_verifier": request.code_verifier.get_secret_value(),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }


async def test_the_same_explicit_redirect_uri_is_fine(client: Both, http: Recorder) -> None:
    request = client.client.authorize_url("google", REDIRECT)
    http.queue(200, {"access_token": "at"})
    await client("exchange_code", request, "4/code", redirect_uri=REDIRECT)
    assert http.form()["redirect_uri"] == REDIRECT


async def test_a_different_redirect_uri_is_refused_before_any_request(
    client: Both, http: Recorder
) -> None:
    request = client.client.authorize_url("google", REDIRECT)
    with pytest.raises(keyturn.ConfigurationError, match="redirect_uri"):
        await client("exchange_code", request, "4/code", redirect_uri="https://other.example/cb")
    assert http.requests == []


async def test_a_different_code_verifier_is_refused_before_any_request(
    client: Both, http: Recorder
) -> None:
    request = client.client.authorize_url("google", REDIRECT)
    with pytest.raises(keyturn.ConfigurationError, match="code_verifier"):
        await client("exchange_code", request, "4/code", code_verifier="x" * 43)
    assert http.requests == []


async def test_without_pkce_no_verifier_is_sent(client: Both, http: Recorder) -> None:
    request = client.client.authorize_url("google", REDIRECT, pkce=False)
    http.queue(200, {"access_token": "at"})
    await client("exchange_code", request, "4/code")
    assert "code_verifier" not in http.form()


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("google", "4/code"), {}), (("google", ""), {"redirect_uri": REDIRECT})],
    ids=["no-redirect-uri", "empty-code"],
)
async def test_an_exchange_without_redirect_uri_or_code_is_refused(
    client: Both, http: Recorder, args: tuple[str, str], kwargs: dict[str, str]
) -> None:
    with pytest.raises(keyturn.ConfigurationError):
        await client("exchange_code", *args, **kwargs)
    assert http.requests == []


# -- ID token checks -----------------------------------------------------------------------


async def test_the_exchange_checks_the_id_token_nonce(client: Both, http: Recorder) -> None:
    request = client.client.authorize_url("google", REDIRECT)
    assert request.nonce is not None
    http.queue(200, {"access_token": "at", "id_token": id_token(nonce="someone-elses-nonce")})
    with pytest.raises(IdTokenError, match="nonce"):
        await client("exchange_code", request, "4/code")
    good = id_token(nonce=request.nonce.get_secret_value())
    http.queue(200, {"access_token": "at", "id_token": good})
    tokens = await client("exchange_code", request, "4/code")
    assert tokens.id_token is not None


async def test_the_exchange_checks_the_id_token_audience(client: Both, http: Recorder) -> None:
    request = client.client.authorize_url("google", REDIRECT)
    assert request.nonce is not None
    nonce = request.nonce.get_secret_value()
    http.queue(200, {"access_token": "at", "id_token": id_token(nonce=nonce, aud="other-client")})
    with pytest.raises(IdTokenError, match="aud"):
        await client("exchange_code", request, "4/code")


def test_check_id_token_returns_the_claims() -> None:
    claims = check_id_token(
        id_token(nonce="n1"), nonce="n1", client_id=CLIENT_ID, issuer=ISSUER, now=START
    )
    assert claims["sub"] == "42"


@pytest.mark.parametrize("iss", [ISSUER, "accounts.google.com"])
def test_both_google_issuer_spellings_are_accepted(iss: str) -> None:
    token = id_token(iss=iss)
    claims = check_id_token(
        token,
        nonce=None,
        client_id=CLIENT_ID,
        issuer=GOOGLE.issuer,
        issuer_aliases=GOOGLE.issuer_aliases,
        now=START,
    )
    assert claims["iss"] == iss


def test_an_issuer_alias_is_accepted_only_where_the_spec_declares_it() -> None:
    token = id_token(iss="accounts.google.com")
    with pytest.raises(IdTokenError, match="iss"):
        check_id_token(token, nonce=None, client_id=CLIENT_ID, issuer=ISSUER, now=START)


@pytest.mark.parametrize(
    ("claims", "nonce", "word"),
    [
        ({"nonce": "other"}, "mine", "nonce"),
        ({}, "mine", "nonce"),
        ({"nonce": 42}, "42", "nonce"),
        ({"aud": "other-client"}, None, "aud"),
        ({"aud": ["a", "b"]}, None, "aud"),
        ({"aud": None}, None, "aud"),
        ({"iss": "https://evil.example"}, None, "iss"),
        ({"iss": "https://accounts.google.com.evil.example"}, None, "iss"),
        ({"iss": None}, None, "iss"),
        ({"iss": ["https://accounts.google.com"]}, None, "iss"),
        ({"iss": {"url": "https://accounts.google.com"}}, None, "iss"),
    ],
    ids=[
        "nonce-other",
        "nonce-absent",
        "nonce-number",
        "aud-other",
        "aud-list-other",
        "aud-null",
        "iss-other",
        "iss-lookalike",
        "iss-null",
        "iss-list",
        "iss-object",
    ],
)
def test_an_id_token_that_does_not_match_is_refused(
    claims: dict[str, Any], nonce: str | None, word: str
) -> None:
    with pytest.raises(IdTokenError, match=word):
        check_id_token(
            id_token(**claims), nonce=nonce, client_id=CLIENT_ID, issuer=ISSUER, now=START
        )


def test_an_audience_list_is_accepted_when_every_other_audience_is_trusted() -> None:
    token = id_token(aud=["another", CLIENT_ID])
    assert check_id_token(
        token,
        nonce=None,
        client_id=CLIENT_ID,
        issuer=ISSUER,
        trusted_audiences={"another"},
        now=START,
    )
    with pytest.raises(IdTokenError, match="aud"):
        check_id_token(token, nonce=None, client_id=CLIENT_ID, issuer=ISSUER, now=START)


def test_without_an_issuer_iss_is_not_compared() -> None:
    token = id_token(iss="https://elsewhere.example")
    assert check_id_token(token, nonce=None, client_id=CLIENT_ID, issuer=None, now=START)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b",
        "a.b.c.d",
        "eyJhbGciOiJSUzI1NiJ9.!!!not-base64!!!.sig",
        f"eyJhbGciOiJSUzI1NiJ9.{base64.urlsafe_b64encode(b'not json').decode()}.sig",
        f"eyJhbGciOiJSUzI1NiJ9.{base64.urlsafe_b64encode(bytes([0xFF, 0xFE])).decode()}.sig",
        f"eyJhbGciOiJSUzI1NiJ9.{b64(['a', 'list'])}.sig",
        f"eyJhbGciOiJSUzI1NiJ9.{b64('a string')}.sig",
    ],
    ids=[
        "empty",
        "one-part",
        "two-parts",
        "four-parts",
        "bad-base64",
        "not-json",
        "not-utf8",
        "json-array",
        "json-string",
    ],
)
def test_a_malformed_id_token_is_an_id_token_error(token: str) -> None:
    with pytest.raises(IdTokenError):
        check_id_token(token, nonce=None, client_id=CLIENT_ID, issuer=ISSUER, now=START)


# -- credentials and providers ----------------------------------------------------------


@pytest.fixture
def bare(pm: KeyturnPluginManager, http: Recorder) -> Iterator[keyturn.Keyturn]:
    """A client with no credentials and an empty environment."""
    with (
        httpx.Client(transport=httpx.MockTransport(http)) as transport,
        keyturn.Keyturn(http_client=transport, plugin_manager=pm, environ={}) as k,
    ):
        yield k


def test_missing_credentials_name_the_environment_variables(bare: keyturn.Keyturn) -> None:
    with pytest.raises(keyturn.ConfigurationError) as caught:
        bare.authorize_url("google", REDIRECT)
    assert "KEYTURN_GOOGLE_CLIENT_ID" in str(caught.value)
    assert "KEYTURN_GOOGLE_CLIENT_SECRET" in str(caught.value)
    with pytest.raises(keyturn.ConfigurationError, match="KEYTURN_GOOGLE_CLIENT_ID"):
        bare.exchange_code("google", "4/code", redirect_uri=REDIRECT)


def test_an_empty_client_id_in_the_environment_counts_as_missing(
    pm: KeyturnPluginManager,
) -> None:
    environ = {"KEYTURN_GOOGLE_CLIENT_ID": "", "KEYTURN_GOOGLE_CLIENT_SECRET": "s"}
    with (
        keyturn.Keyturn(plugin_manager=pm, environ=environ) as k,
        pytest.raises(keyturn.ConfigurationError, match="KEYTURN_GOOGLE_CLIENT_ID"),
    ):
        k.credentials("google")


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_credentials_are_read_from_the_environ_mapping(
    pm: KeyturnPluginManager, http: Recorder, flavour: str
) -> None:
    environ = {
        "KEYTURN_GOOGLE_CLIENT_ID": "env-client-id",
        "KEYTURN_GOOGLE_CLIENT_SECRET": "env-client-secret",
    }
    transport = httpx.MockTransport(http)
    http.queue(200, {"access_token": "at"})
    if flavour == "sync":
        with (
            httpx.Client(transport=transport) as raw,
            keyturn.Keyturn(http_client=raw, plugin_manager=pm, environ=environ) as k,
        ):
            request = k.authorize_url("google", REDIRECT)
            k.exchange_code(request, "4/code")
    else:
        async with (
            httpx.AsyncClient(transport=transport) as araw,
            keyturn.AsyncKeyturn(http_client=araw, plugin_manager=pm, environ=environ) as ak,
        ):
            request = ak.authorize_url("google", REDIRECT)
            await ak.exchange_code(request, "4/code")
    assert query_of(request.url)["client_id"] == "env-client-id"
    form = http.form()
    assert (form["client_id"], form["client_secret"]) == ("env-client-id", "env-client-secret")


def test_given_credentials_win_over_the_environment(pm: KeyturnPluginManager) -> None:
    environ = {"KEYTURN_GOOGLE_CLIENT_ID": "env-id", "KEYTURN_GOOGLE_CLIENT_SECRET": "env-secret"}
    with keyturn.Keyturn(
        {"google": ("given-id", "given-secret")}, plugin_manager=pm, environ=environ
    ) as k:
        credentials = k.credentials("google")
    assert credentials.client_id == "given-id"
    assert credentials.client_secret is not None
    assert credentials.client_secret.get_secret_value() == "given-secret"


def test_a_public_client_from_the_environment_has_no_secret(pm: KeyturnPluginManager) -> None:
    with keyturn.Keyturn(plugin_manager=pm, environ={"KEYTURN_GOOGLE_CLIENT_ID": "id"}) as k:
        assert k.credentials("google").client_secret is None


async def test_an_unknown_provider_lists_the_installed_ones(client: Both) -> None:
    with pytest.raises(keyturn.UnknownProviderError) as caught:
        client.client.authorize_url("bitbucket", REDIRECT)
    error = caught.value
    assert isinstance(error, keyturn.ConfigurationError)
    assert error.provider == "bitbucket"
    assert "google" in error.known
    assert "'bitbucket'" in str(error) and "google" in str(error)
    with pytest.raises(keyturn.UnknownProviderError):
        await client("exchange_code", "bitbucket", "4/code", redirect_uri=REDIRECT)


# -- PKCE helper -------------------------------------------------------------------------


def test_the_rfc_7636_appendix_b_vector() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce.code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce.code_challenge(verifier, "S256") == s256(verifier)
    assert pkce.code_challenge(verifier, "plain") == verifier


@pytest.mark.parametrize(
    "verifier",
    [
        "",
        "a" * 42,
        "a" * 129,
        "a" * 42 + "+",
        "a" * 42 + "/",
        "a" * 42 + "=",
        "a" * 42 + " ",
        "é" * 43,
    ],
    ids=["empty", "42-chars", "129-chars", "plus", "slash", "equals", "space", "non-ascii"],
)
def test_a_bad_verifier_is_refused(verifier: str) -> None:
    with pytest.raises(ValueError, match="43 to 128"):
        pkce.code_challenge(verifier)


@pytest.mark.parametrize("verifier", ["a" * 43, "A" * 128, "0-._~" * 9])
def test_verifiers_at_the_limits_are_accepted(verifier: str) -> None:
    assert pkce.code_challenge(verifier) == s256(verifier)


def test_new_verifiers_are_valid_and_fresh() -> None:
    verifiers = {pkce.new_code_verifier() for _ in range(20)}
    assert len(verifiers) == 20
    for verifier in verifiers:
        assert 43 <= len(verifier) <= 128
        assert pkce.code_challenge(verifier) == s256(verifier)


@pytest.mark.parametrize(
    "value",
    [("", "secret"), ("id",), {"client_id": ""}, {"client_id": "id", "unknown": "x"}, "id:secret"],
    ids=["empty-id", "one-tuple", "empty-mapping-id", "unknown-field", "string"],
)
def test_unusable_constructor_credentials_are_a_configuration_error(value: Any) -> None:
    with pytest.raises(keyturn.ConfigurationError, match="google") as caught:
        keyturn.Keyturn({"google": value}, environ={})
    assert "secret" not in str(caught.value).replace("client_secret", "")
