"""No token or secret in a repr, a str, a default dump, a log line or an exception message.

Secrets are revealed only on request (``context=REVEAL``), and what is revealed round-trips.
Errors keep their context (provider, status, code, permanence) across pickling.
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import traceback
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

import keyturn
from keyturn import REVEAL
from keyturn.http import HttpRequest, HttpResponse
from keyturn.idtoken import IdTokenError, check_id_token
from keyturn.models import (
    JWT,
    ClientCredentials,
    Profile,
    RefreshFailure,
    Session,
    TokenSet,
)
from tests.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    START,
    Both,
    FakeClock,
    Recorder,
    sign_google_id_token,
)

REDIRECT = "https://app.example/auth/callback/google"
ISSUER = "https://accounts.google.com"
ACCESS = "ya29.FAKE-ACCESS-SECRET-a1b2c3d4"
ACCESS_2 = "ya29.FAKE-ACCESS-SECRET-e5f6a7b8"
REFRESH = "1//REFRESH-SECRET-0c9d8e7f"
REFRESH_2 = "1//REFRESH-SECRET-6a5b4c3d"
CODE = "4/CODE-SECRET-0A1B2C3D"
STATE = "STATE-SECRET-f00dfeedbeefcafe0123456789"
NONCE = "NONCE-SECRET-8badf00d"
CLIENT_SECRET_2 = "GOCSPX-CLIENT-SECRET-deadbeef"
#: A second token nested in an unknown field of a token response (an app install answering
#: with the installing user's token inside an object).
NESTED = "xoxe.xoxp-fake-nested-secret-1a2b3c"
MASK = "**********"


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def make_id_token(nonce: str, aud: str = CLIENT_ID) -> str:
    claims = {
        "iss": "https://accounts.google.com",
        "aud": aud,
        "sub": "42",
        "nonce": nonce,
        "iat": START,
        "exp": START + 3600,
    }
    return sign_google_id_token(claims)


ID_TOKEN = make_id_token(NONCE)
#: The ID token's signature alone: no rendering may show it either.
ID_TOKEN_SIGNATURE = ID_TOKEN.rsplit(".", 1)[1]


def renderings(obj: object) -> dict[str, str]:
    """Every ordinary way an object turns into text."""
    shown = {"repr": repr(obj), "str": str(obj), "format": f"{obj}"}
    if isinstance(obj, BaseModel):
        shown["model_dump"] = repr(obj.model_dump())
        shown["model_dump_json_mode"] = json.dumps(obj.model_dump(mode="json"))
        shown["model_dump_json"] = obj.model_dump_json()
    return shown


def assert_hidden(obj: object, *secrets: str) -> None:
    for how, text in renderings(obj).items():
        for value in secrets:
            assert value not in text, f"{how}() of {type(obj).__name__} shows a secret"


def assert_revealed_round_trip(obj: BaseModel, *secrets: str) -> None:
    """``context=REVEAL`` writes the secrets, as JSON, and reading it back gives the same model."""
    dumped = obj.model_dump(mode="json", context=REVEAL)
    text = json.dumps(dumped)
    for value in secrets:
        assert value in text
    assert type(obj).model_validate(json.loads(text)) == obj


def sample_tokens() -> TokenSet:
    return TokenSet(
        provider="google",
        access_token=ACCESS,
        refresh_token=REFRESH,
        id_token=ID_TOKEN,
        expires_at=START + 3599,
        refresh_token_expires_at=START + 86400,
        scope=("openid", "email"),
        extra={
            "x_custom": "not-shown-either",
            "authed_user": {"id": "U1", "access_token": NESTED, "expires_in": 43200},
            "scopes": ["chat:write", "users:read"],
            "ok": True,
            "nothing": None,
        },
    )


def sample_jwt() -> JWT:
    return JWT(
        tokens=sample_tokens(),
        user=Profile(id="42", name="Ada", email="ada@example.com"),
        refresh_failure=RefreshFailure(error="server_error", status=503, permanent=False, at=START),
        claims={"role": "admin"},
    )


# -- models ------------------------------------------------------------------------------


def test_token_set_hides_its_tokens() -> None:
    tokens = sample_tokens()
    assert_hidden(tokens, ACCESS, REFRESH, ID_TOKEN, ID_TOKEN_SIGNATURE, NESTED, "not-shown")
    assert "x_custom" in repr(tokens)  # extra is named, not shown
    assert_revealed_round_trip(tokens, ACCESS, REFRESH, ID_TOKEN, NESTED, "not-shown")


def test_jwt_hides_its_tokens() -> None:
    token = sample_jwt()
    assert_hidden(token, ACCESS, REFRESH, ID_TOKEN, ID_TOKEN_SIGNATURE, NESTED, "not-shown")
    assert_revealed_round_trip(token, ACCESS, REFRESH, ID_TOKEN, NESTED, "not-shown")


def test_a_default_dump_of_extra_keeps_its_keys_and_masks_every_value() -> None:
    """The shape stays readable (what a provider sent), no value does: any may be a token."""
    masked = {
        "x_custom": MASK,
        "authed_user": {"id": MASK, "access_token": MASK, "expires_in": MASK},
        "scopes": [MASK, MASK],
        "ok": MASK,
        "nothing": MASK,
    }
    tokens = sample_tokens()
    assert tokens.model_dump()["extra"] == masked
    assert tokens.model_dump(mode="json")["extra"] == masked
    assert json.loads(tokens.model_dump_json())["extra"] == masked
    assert sample_jwt().model_dump()["tokens"]["extra"] == masked
    assert TokenSet(provider="google", access_token="at").model_dump()["extra"] == {}
    assert tokens.model_dump(context=REVEAL)["extra"] == tokens.extra


@pytest.mark.parametrize("how", ["model_dump", "model_dump_json"])
def test_a_masked_extra_cannot_be_loaded_back(how: str) -> None:
    """Only extra masked (the tokens revealed): loading it must still fail, naming REVEAL."""
    tokens = sample_tokens()
    data = tokens.model_dump(mode="json", context=REVEAL)
    default = tokens.model_dump() if how == "model_dump" else json.loads(tokens.model_dump_json())
    data["extra"] = default["extra"]
    with pytest.raises(ValidationError, match="REVEAL"):
        TokenSet.model_validate(data)
    jwt = sample_jwt().model_dump(mode="json", context=REVEAL)
    jwt["tokens"]["extra"] = {"authed_user": {"access_token": MASK}}
    with pytest.raises(ValidationError, match="REVEAL"):
        JWT.model_validate(jwt)


def test_session_hides_the_access_token_and_never_holds_the_refresh_token(
    kt: keyturn.Keyturn,
) -> None:
    session = kt.session(sample_jwt())
    assert isinstance(session, Session)
    assert_hidden(session, ACCESS, REFRESH, ID_TOKEN)
    assert_revealed_round_trip(session, ACCESS)
    revealed = json.dumps(session.model_dump(mode="json", context=REVEAL))
    assert REFRESH not in revealed
    assert ID_TOKEN_SIGNATURE not in revealed


def test_client_credentials_hide_the_secret() -> None:
    credentials = ClientCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET_2)
    assert_hidden(credentials, CLIENT_SECRET_2)
    assert CLIENT_ID in repr(credentials)  # the client id is public
    assert_revealed_round_trip(credentials, CLIENT_SECRET_2)


def test_an_authorization_request_hides_state_nonce_and_verifier(kt: keyturn.Keyturn) -> None:
    """The URL carries state and nonce in its query: it must not print them either."""
    request = kt.authorize_url("google", REDIRECT, state=STATE, nonce=NONCE)
    assert request.code_verifier is not None
    verifier = request.code_verifier.get_secret_value()
    assert STATE in request.url and NONCE in request.url  # the redirect itself needs them
    assert_hidden(request, STATE, NONCE, verifier)


def test_an_authorization_request_round_trips_revealed(kt: keyturn.Keyturn) -> None:
    request = kt.authorize_url("google", REDIRECT, state=STATE, nonce=NONCE)
    assert request.code_verifier is not None
    assert_revealed_round_trip(request, STATE, NONCE, request.code_verifier.get_secret_value())


def test_http_request_and_response_reprs_hide_bodies_credentials_and_queries() -> None:
    basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET_2}".encode()).decode()
    request = HttpRequest.form(
        "POST",
        f"https://oauth2.googleapis.com/token?access_token={ACCESS}",
        {"grant_type": "refresh_token", "refresh_token": REFRESH, "client_secret": CLIENT_SECRET_2},
        {"Authorization": basic, "Cookie": f"sid={ACCESS_2}", "Accept": "application/json"},
    )
    assert_hidden(request, ACCESS, ACCESS_2, REFRESH, CLIENT_SECRET_2, basic)
    assert "oauth2.googleapis.com/token" in repr(request)
    assert "application/json" in repr(request)  # harmless headers stay visible
    bearer = HttpRequest("GET", "https://x.example/me", {"authorization": f"Bearer {ACCESS}"})
    assert_hidden(bearer, ACCESS)
    response = HttpResponse(
        200,
        {"content-type": "application/json", "set-cookie": f"sid={ACCESS_2}"},
        json.dumps({"access_token": ACCESS, "refresh_token": REFRESH}).encode(),
    )
    assert_hidden(response, ACCESS, ACCESS_2, REFRESH)


# -- logs ----------------------------------------------------------------------------------


async def test_no_secret_in_any_log_line_through_a_whole_session(
    client: Both, http: Recorder, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="keyturn")
    request = client.client.authorize_url("google", REDIRECT, state=STATE, nonce=NONCE)
    assert request.code_verifier is not None
    verifier = request.code_verifier.get_secret_value()

    # Sign in: code exchange and profile.
    http.queue(
        200,
        {
            "access_token": ACCESS,
            "expires_in": 3599,
            "refresh_token": REFRESH,
            "id_token": ID_TOKEN,
            "token_type": "Bearer",
            "scope": "openid email",
        },
    )
    http.queue(200, {"sub": "42", "email": "ada@example.com", "name": "Ada"})
    token = await client("sign_in", request, {"code": CODE, "state": STATE, "iss": ISSUER})
    assert http.form(0)["code"] == CODE
    assert http.form(0)["code_verifier"] == verifier

    # A refresh that rotates and sends an unreadable lifetime (a warning is logged).
    clock.advance(3600)
    http.queue(200, {"access_token": ACCESS_2, "refresh_token": REFRESH_2, "expires_in": "soon"})
    token = await client("jwt", token)
    assert token.tokens.refresh_token.get_secret_value() == REFRESH_2

    # A refresh that fails for good.
    http.queue(400, {"error": "invalid_grant", "error_description": "Token has been revoked."})
    dead = await client("jwt", token)
    assert dead.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR

    # Revoke.
    http.queue(200, raw=b"", content_type="text/html")
    await client("revoke", dead.tokens)
    assert http.form()["token"] == REFRESH_2

    secrets = [
        ACCESS,
        ACCESS_2,
        REFRESH,
        REFRESH_2,
        CLIENT_SECRET,
        CODE,
        verifier,
        STATE,
        NONCE,
        ID_TOKEN,
        ID_TOKEN_SIGNATURE,
    ]
    keyturn_lines = [r for r in caplog.records if r.name == "keyturn"]
    assert len([r for r in keyturn_lines if r.levelno == logging.DEBUG]) >= len(http.requests)
    assert any(r.levelno == logging.WARNING for r in keyturn_lines)
    assert "oauth2.googleapis.com" in caplog.text
    for record in caplog.records:
        message = record.getMessage()
        for value in secrets:
            assert value not in message, f"{record.name} logged a secret: {message[:60]}"
    for value in secrets:
        assert value not in caplog.text


# -- exceptions ------------------------------------------------------------------------------


def all_text(error: BaseException) -> str:
    """What a log line or an error page could show of an exception."""
    return "\n".join(
        [
            str(error),
            repr(error),
            *map(str, error.args),
            repr(vars(error)),
            "".join(traceback.format_exception(error)),
        ]
    )


def due_tokens(**fields: Any) -> TokenSet:
    base: dict[str, Any] = {
        "provider": "google",
        "access_token": ACCESS,
        "refresh_token": REFRESH,
        "expires_at": START,
    }
    return TokenSet.model_validate({**base, **fields})


async def run_operation(client: Both, operation: str) -> TokenSet:
    """A code exchange or a refresh of due tokens."""
    if operation == "refresh":
        tokens: TokenSet = await client("refresh", due_tokens())
    else:
        tokens = await client("exchange_code", "google", CODE, redirect_uri=REDIRECT)
    return tokens


SECRETS = (ACCESS, REFRESH, CLIENT_SECRET, CODE)


async def test_an_oauth_error_names_the_code_not_the_tokens(client: Both, http: Recorder) -> None:
    """Not even when the error body echoes tokens back (some servers do)."""
    http.queue(
        400,
        {
            "error": "invalid_grant",
            "error_description": "Token has been revoked.",
            "refresh_token": REFRESH,
            "access_token": ACCESS,
            "code": CODE,
        },
    )
    with pytest.raises(keyturn.OAuthError) as caught:
        await client("refresh", due_tokens())
    text = all_text(caught.value)
    assert "invalid_grant" in str(caught.value)
    assert "google" in str(caught.value) and "400" in str(caught.value)
    for value in SECRETS:
        assert value not in text


@pytest.mark.parametrize(
    ("status", "content_type", "raw"),
    [
        (200, "text/html", f"<p>access_token={ACCESS}&refresh_token={REFRESH}</p>".encode()),
        (502, "text/html", f"<html>upstream sent refresh_token={REFRESH}</html>".encode()),
        (200, "application/json", json.dumps({"refresh_token": REFRESH}).encode()),
    ],
    ids=["html-200", "html-502", "json-without-access-token"],
)
async def test_an_invalid_response_never_quotes_the_body(
    client: Both, http: Recorder, status: int, content_type: str, raw: bytes
) -> None:
    http.queue(status, raw=raw, content_type=content_type)
    with pytest.raises(keyturn.InvalidResponseError) as caught:
        await client("exchange_code", "google", CODE, redirect_uri=REDIRECT)
    text = all_text(caught.value)
    for value in SECRETS:
        assert value not in text


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (
            httpx.ConnectError(f"cannot reach /token?refresh_token={REFRESH}&code={CODE}"),
            "network_error",
        ),
        (httpx.ReadError(f"connection reset while sending {CLIENT_SECRET}"), "network_error"),
        (httpx.RemoteProtocolError(f"bad response to {ACCESS}"), "network_error"),
        (httpx.ReadTimeout(f"timed out: {REFRESH}"), "timeout"),
        (httpx.ConnectTimeout(f"timed out: {CODE}"), "timeout"),
        (httpx.PoolTimeout("no connection available"), "timeout"),
    ],
    ids=["connect", "read", "protocol", "read-timeout", "connect-timeout", "pool-timeout"],
)
@pytest.mark.parametrize("operation", ["exchange_code", "refresh"])
async def test_a_transport_error_is_transient_and_keeps_secrets_out(
    client: Both, http: Recorder, failure: Exception, code: str, operation: str
) -> None:
    http.fail(failure)
    with pytest.raises(keyturn.TransportError) as caught:
        await run_operation(client, operation)
    error = caught.value
    assert (error.error, error.permanent, error.status) == (code, False, None)
    assert (error.provider, error.operation) == ("google", operation)
    assert "oauth2.googleapis.com" in str(error)
    # The HTTP library's exception holds the request and its form body: it is not chained.
    assert error.__cause__ is None
    assert error.__context__ is None
    text = all_text(error)
    for value in SECRETS:
        assert value not in text


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"refresh_token": None}, "no_refresh_token"),
        ({"refresh_token_expires_at": START - 1}, "refresh_token_expired"),
    ],
)
async def test_an_unusable_refresh_token_is_permanent_and_not_shown(
    client: Both, http: Recorder, fields: dict[str, Any], code: str
) -> None:
    with pytest.raises(keyturn.RefreshTokenUnusable) as caught:
        await client("refresh", due_tokens(**fields))
    assert (caught.value.error, caught.value.permanent) == (code, True)
    assert http.requests == []
    text = all_text(caught.value)
    for value in SECRETS:
        assert value not in text


def test_callback_and_id_token_errors_never_show_state_nonce_or_token(kt: keyturn.Keyturn) -> None:
    request = kt.authorize_url("google", REDIRECT, state=STATE, nonce=NONCE)
    forged = "STATE-FORGED-0123456789abcdef"
    with pytest.raises(keyturn.StateMismatchError) as state_error:
        request.verify_callback({"state": forged, "code": CODE})
    other_nonce = make_id_token("NONCE-OTHER-1234")
    with pytest.raises(IdTokenError) as nonce_error:
        check_id_token(
            other_nonce, nonce=NONCE, client_id=CLIENT_ID, issuer="https://accounts.google.com"
        )
    for error in (state_error.value, nonce_error.value):
        text = all_text(error)
        for value in (
            STATE,
            forged,
            CODE,
            NONCE,
            "NONCE-OTHER-1234",
            other_nonce,
            ID_TOKEN_SIGNATURE,
        ):
            assert value not in text


# -- pickling -----------------------------------------------------------------------------


PICKLED_ERRORS: list[keyturn.KeyturnError] = [
    keyturn.KeyturnError("base"),
    keyturn.ConfigurationError("no client credentials"),
    keyturn.UnknownProviderError("gitlab", ["google", "github"]),
    keyturn.PluginError("duplicate provider id"),
    keyturn.CallbackError("unusable callback"),
    keyturn.StateMismatchError("state differs"),
    keyturn.IssuerMismatchError("issuer differs"),
    keyturn.MissingCodeError("no code"),
    keyturn.AuthorizationDenied("google", "access_denied", "The user said no."),
    IdTokenError("nonce differs"),
    keyturn.OAuthError(
        provider="google",
        operation="refresh",
        error="invalid_grant",
        permanent=True,
        status=400,
        description="Token has been revoked.",
    ),
    keyturn.InvalidResponseError(
        provider="google",
        operation="exchange_code",
        error="http_error",
        permanent=False,
        status=502,
    ),
    keyturn.TransportError(
        provider="google",
        operation="refresh",
        error="timeout",
        permanent=False,
        description="ReadTimeout talking to host",
    ),
    keyturn.RefreshTokenUnusable(
        provider="google", operation="refresh", error="no_refresh_token", permanent=True
    ),
]


@pytest.mark.parametrize("error", PICKLED_ERRORS, ids=lambda e: type(e).__name__)
def test_every_error_survives_pickling_with_its_attributes(error: keyturn.KeyturnError) -> None:
    """Errors cross process boundaries (multiprocessing, task queues, caches)."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_pickled_errors_keep_their_context() -> None:
    error = keyturn.OAuthError(
        provider="google",
        operation="refresh",
        error="invalid_grant",
        permanent=True,
        status=400,
        description="revoked",
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (
        copy.provider,
        copy.operation,
        copy.error,
        copy.permanent,
        copy.status,
        copy.description,
    ) == ("google", "refresh", "invalid_grant", True, 400, "revoked")
    denied = keyturn.AuthorizationDenied("google", "access_denied", "no")
    denied_copy = pickle.loads(pickle.dumps(denied))
    assert (denied_copy.provider, denied_copy.error, denied_copy.description) == (
        "google",
        "access_denied",
        "no",
    )
    unknown = pickle.loads(pickle.dumps(keyturn.UnknownProviderError("gitlab", ["google"])))
    assert (unknown.provider, unknown.known) == ("gitlab", ["google"])


async def test_an_error_raised_by_the_client_survives_pickling(
    client: Both, http: Recorder
) -> None:
    http.fail(httpx.ConnectError("refused"))
    with pytest.raises(keyturn.TransportError) as caught:
        await client("refresh", due_tokens())
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.error, copy.permanent, copy.operation) == ("network_error", False, "refresh")


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (keyturn.TokenSet, {"provider": "google", "access_token": "**********"}),
        (keyturn.ClientCredentials, {"client_id": "cid", "client_secret": "**********"}),
        (keyturn.ClientCredentials, {"client_id": "cid", "private_key": "**********"}),
        (keyturn.ClientCredentials, {"client_id": "cid", "client_assertion": "**********"}),
    ],
)
def test_a_masked_secret_cannot_be_loaded_back(model: Any, data: dict[str, Any]) -> None:
    """Dumping without REVEAL and loading back must fail loudly, not store the mask."""
    with pytest.raises(ValidationError, match="REVEAL"):
        model.model_validate(data)


def test_a_default_dump_does_not_round_trip_but_a_revealed_one_does(kt: keyturn.Keyturn) -> None:
    request = kt.authorize_url("google", REDIRECT, state=STATE, nonce=NONCE)
    with pytest.raises(ValidationError):
        keyturn.AuthorizationRequest.model_validate(request.model_dump())
    again = keyturn.AuthorizationRequest.model_validate(
        request.model_dump(mode="json", context=keyturn.REVEAL)
    )
    assert again == request
