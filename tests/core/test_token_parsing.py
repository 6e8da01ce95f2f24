"""The token response parser: what providers really send, and what keyturn makes of it.

Bodies that are not JSON, HTML error pages, odd ``expires_in`` values, form-encoded bodies,
errors sent with HTTP 200, the permanent/transient classification, and the refresh rule that
the old refresh token is never lost.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from pydantic import SecretStr

import keyturn
from keyturn import flows
from keyturn.http import HttpResponse
from keyturn.models import ProviderSpec, TokenSet
from keyturn_google import GOOGLE
from tests.conftest import START, Both, FakeClock, Recorder

REDIRECT = "https://app.example/auth/callback/google"
HTML_502 = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"
HTML_404 = b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>"
FORM = "application/x-www-form-urlencoded"


async def run_operation(client: Both, operation: str) -> TokenSet:
    """A code exchange or a refresh of due tokens."""
    if operation == "refresh":
        tokens: TokenSet = await client("refresh", old_tokens())
    else:
        tokens = await client("exchange_code", "google", "4/code", redirect_uri=REDIRECT)
    return tokens


def response(
    body: Any = None,
    status: int = 200,
    content_type: str | None = "application/json",
    raw: bytes | None = None,
) -> HttpResponse:
    headers = {} if content_type is None else {"content-type": content_type}
    return HttpResponse(status, headers, raw if raw is not None else json.dumps(body).encode())


def parse(
    body: Any = None,
    status: int = 200,
    content_type: str | None = "application/json",
    *,
    raw: bytes | None = None,
    previous: TokenSet | None = None,
    provider: ProviderSpec = GOOGLE,
) -> TokenSet:
    operation = "exchange_code" if previous is None else "refresh"
    return flows.parse_token_response(
        provider, operation, response(body, status, content_type, raw), START, previous=previous
    )


def secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


def old_tokens(**fields: Any) -> TokenSet:
    """Tokens due for refresh, as a previous sign-in left them."""
    base: dict[str, Any] = {
        "provider": "google",
        "access_token": "at-old",
        "refresh_token": "rt-old",
        "expires_at": START - 10,
    }
    return TokenSet.model_validate({**base, **fields})


def lifetime_warnings(caplog: pytest.LogCaptureFixture, field: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "keyturn" and r.levelno == logging.WARNING and field in r.getMessage()
    ]


# -- bodies that are not token responses ---------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"this is not json", "application/json"),
        (b'{"access_token": "at"', "application/json"),
        (b'[{"access_token": "at"}]', "application/json"),
        (b'"access_token"', "application/json"),
        (b"null", "application/json"),
        (b"3599", "application/json"),
        (b"", "application/json"),
        (b"", None),
        (b'{"access_token": "at"}', "text/plain"),
        (b"access_token=at", "text/html"),
    ],
    ids=[
        "text",
        "truncated",
        "array",
        "string",
        "null",
        "number",
        "empty",
        "empty-typeless",
        "json-as-text-plain",
        "form-as-html",
    ],
)
def test_a_2xx_body_that_is_no_token_response_is_a_transient_invalid_response(
    raw: bytes, content_type: str | None
) -> None:
    """A proxy in the way can answer 200 with anything: retrying may help."""
    with pytest.raises(keyturn.InvalidResponseError) as caught:
        parse(raw=raw, content_type=content_type)
    error = caught.value
    assert error.error == "invalid_response"
    assert error.status == 200
    assert error.permanent is False
    assert error.provider == "google"
    assert error.operation == "exchange_code"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token_type": "Bearer", "expires_in": 3599},
        {"access_token": ""},
        {"access_token": None},
        {"access_token": 12345},
        {"access_token": ["at"]},
        {"access_token": {"value": "at"}},
    ],
    ids=["empty", "no-token", "empty-string", "null", "number", "list", "object"],
)
def test_json_without_a_usable_access_token_is_an_invalid_response(body: dict[str, Any]) -> None:
    with pytest.raises(keyturn.InvalidResponseError) as caught:
        parse(body)
    assert caught.value.error == "invalid_response"
    assert caught.value.status == 200
    assert "access_token" in str(caught.value)


@pytest.mark.parametrize("operation", ["exchange_code", "refresh"])
async def test_an_html_502_page_is_transient(client: Both, http: Recorder, operation: str) -> None:
    http.queue(502, raw=HTML_502, content_type="text/html; charset=UTF-8")
    with pytest.raises(keyturn.InvalidResponseError) as caught:
        await run_operation(client, operation)
    error = caught.value
    assert (error.status, error.permanent, error.operation) == (502, False, operation)
    assert error.error == "http_error"
    assert "text/html" in str(error)


@pytest.mark.parametrize("operation", ["exchange_code", "refresh"])
async def test_an_html_404_page_is_permanent(client: Both, http: Recorder, operation: str) -> None:
    http.queue(404, raw=HTML_404, content_type="text/html")
    with pytest.raises(keyturn.InvalidResponseError) as caught:
        await run_operation(client, operation)
    assert (caught.value.status, caught.value.permanent) == (404, True)


async def test_an_empty_200_body_through_the_client_is_transient(
    client: Both, http: Recorder
) -> None:
    http.queue(200, raw=b"")
    with pytest.raises(keyturn.InvalidResponseError) as caught:
        await client("exchange_code", "google", "4/code", redirect_uri=REDIRECT)
    assert (caught.value.status, caught.value.permanent) == (200, False)


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (500, False),
        (502, False),
        (503, False),
        (504, False),
        (599, False),
        (429, False),
        (408, False),
        (425, False),
        (400, True),
        (401, True),
        (403, True),
        (404, True),
        (410, True),
    ],
)
def test_an_error_status_without_an_oauth_error_is_classified_by_status(
    status: int, permanent: bool
) -> None:
    with pytest.raises(keyturn.InvalidResponseError) as caught:
        parse({"message": "something went wrong"}, status=status)
    assert caught.value.status == status
    assert caught.value.permanent is permanent


# -- expires_in --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "lifetime"),
    [
        (3599, 3599),
        (3599.9, 3599),
        ("3599", 3599),
        (" 3599 ", 3599),
        ("3599.5", 3599),
        (0, 0),
        (-30, 0),
        ("-30", 0),
        (-0.5, 0),
    ],
    ids=[
        "int",
        "float",
        "string",
        "padded-string",
        "float-string",
        "zero",
        "negative",
        "negative-string",
        "negative-float",
    ],
)
def test_expires_in_becomes_expires_at_in_epoch_seconds(
    value: Any, lifetime: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Negative lifetimes mean "already expired": due at once, not in the past."""
    tokens = parse({"access_token": "at", "expires_in": value})
    assert tokens.expires_at == START + lifetime
    assert lifetime_warnings(caplog, "expires_in") == []


@pytest.mark.parametrize(
    "body", [{"access_token": "at"}, {"access_token": "at", "expires_in": None}]
)
def test_missing_expires_in_means_no_known_expiry(body: dict[str, Any]) -> None:
    tokens = parse(body)
    assert tokens.expires_at is None
    assert not tokens.expires_within(60, START + 10**9)


GARBAGE_LIFETIMES: list[Any] = [
    "soon",
    "",
    "   ",
    "0x10",
    "3599s",
    True,
    False,
    [3599],
    {"seconds": 3599},
    float("nan"),
    "NaN",
    float("inf"),
    "-Infinity",
]
GARBAGE_IDS = [
    "word",
    "empty",
    "blank",
    "hex",
    "unit",
    "true",
    "false",
    "list",
    "object",
    "nan",
    "nan-string",
    "inf",
    "minus-inf-string",
]


@pytest.mark.parametrize("value", GARBAGE_LIFETIMES, ids=GARBAGE_IDS)
def test_unreadable_expires_in_keeps_the_tokens_due_now_with_a_warning(
    value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The response may carry a rotated refresh token: it is kept, never discarded."""
    caplog.set_level(logging.WARNING, logger="keyturn")
    tokens = parse(
        {"access_token": "at-new", "expires_in": value, "refresh_token": "rt-rotated"},
        previous=old_tokens(),
    )
    assert secret(tokens.access_token) == "at-new"
    assert secret(tokens.refresh_token) == "rt-rotated"
    assert tokens.expires_at == START
    assert tokens.expires_within(0, START)
    assert len(lifetime_warnings(caplog, "expires_in")) == 1


@pytest.mark.parametrize("value", GARBAGE_LIFETIMES, ids=GARBAGE_IDS)
def test_unreadable_expires_in_on_a_refresh_keeps_the_old_refresh_token(value: Any) -> None:
    tokens = parse({"access_token": "at-new", "expires_in": value}, previous=old_tokens())
    assert secret(tokens.refresh_token) == "rt-old"
    assert tokens.expires_at == START


def test_an_expires_in_too_large_for_a_float_is_unreadable_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="keyturn")
    tokens = parse(raw=b'{"access_token": "at", "expires_in": 1' + b"0" * 400 + b"}")
    assert tokens.expires_at == START
    assert len(lifetime_warnings(caplog, "expires_in")) == 1


def test_parse_expires_in_rejects_what_it_cannot_read() -> None:
    assert flows.parse_expires_in(None) is None
    assert flows.parse_expires_in("60") == 60
    unreadable: list[Any] = [True, "soon", float("nan"), float("inf"), [1], {}]
    for value in unreadable:
        with pytest.raises(ValueError, match=r"lifetime|float"):
            flows.parse_expires_in(value)


# -- refresh_token_expires_in --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "lifetime"),
    [(15897600, 15897600), (15897600.8, 15897600), ("15897600", 15897600), (-1, 0), ("-1", 0)],
    ids=["int", "float", "string", "negative", "negative-string"],
)
def test_refresh_token_expires_in_becomes_refresh_token_expires_at(
    value: Any, lifetime: int
) -> None:
    tokens = parse({"access_token": "at", "refresh_token": "rt", "refresh_token_expires_in": value})
    assert tokens.refresh_token_expires_at == START + lifetime


def test_a_negative_refresh_token_lifetime_makes_the_refresh_token_expired_now() -> None:
    tokens = parse({"access_token": "at", "refresh_token": "rt", "refresh_token_expires_in": -5})
    assert tokens.refresh_token_expired(START)


def test_missing_refresh_token_expires_in_means_no_known_expiry() -> None:
    tokens = parse({"access_token": "at", "refresh_token": "rt"})
    assert tokens.refresh_token_expires_at is None
    assert not tokens.refresh_token_expired(START + 10**9)


@pytest.mark.parametrize(
    "value", ["soon", True, [86400], float("nan")], ids=["word", "true", "list", "nan"]
)
def test_unreadable_refresh_token_expires_in_never_costs_the_refresh_token(
    value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A lifetime keyturn cannot read must not make a good refresh token unusable.

    Treating it as "expired now" would stop keyturn from ever sending the refresh token
    (RefreshTokenUnusable, permanent): the user would have to sign in again although the
    provider issued a working token. The access token's rule (due now) does not transfer.
    """
    caplog.set_level(logging.WARNING, logger="keyturn")
    tokens = parse(
        {
            "access_token": "at",
            "expires_in": 3599,
            "refresh_token": "rt-new",
            "refresh_token_expires_in": value,
        }
    )
    assert secret(tokens.refresh_token) == "rt-new"
    assert tokens.expires_at == START + 3599
    assert len(lifetime_warnings(caplog, "refresh_token_expires_in")) == 1
    assert not tokens.refresh_token_expired(START)


async def test_after_an_unreadable_refresh_token_lifetime_the_refresh_is_still_attempted(
    client: Both, http: Recorder, clock: FakeClock
) -> None:
    http.queue(
        200,
        {
            "access_token": "at-1",
            "expires_in": 3599,
            "refresh_token": "rt-1",
            "refresh_token_expires_in": "a while",
        },
    )
    tokens = await client("exchange_code", "google", "4/code", redirect_uri=REDIRECT)
    clock.advance(3600)
    http.queue(200, {"access_token": "at-2", "expires_in": 3599})
    refreshed = await client("refresh", tokens)
    assert http.form()["refresh_token"] == "rt-1"
    assert secret(refreshed.access_token) == "at-2"


def test_unreadable_refresh_token_expires_in_without_rotation_keeps_the_old_expiry() -> None:
    previous = old_tokens(refresh_token_expires_at=START + 86400)
    tokens = parse(
        {"access_token": "at-new", "expires_in": 3599, "refresh_token_expires_in": "later"},
        previous=previous,
    )
    assert secret(tokens.refresh_token) == "rt-old"
    assert not tokens.refresh_token_expired(START)


# -- token_type, scope, extra -----------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("bearer", "Bearer"),
        ("BEARER", "Bearer"),
        ("Bearer", "Bearer"),
        ("bEaReR", "Bearer"),
        ("DPoP", "DPoP"),
        ("mac", "mac"),
        (None, "Bearer"),
        ("", "Bearer"),
    ],
)
def test_token_type_bearer_is_case_insensitive_and_others_are_kept(
    sent: str | None, kept: str
) -> None:
    body: dict[str, Any] = {"access_token": "at"}
    if sent is not None:
        body["token_type"] = sent
    assert parse(body).token_type == kept


def test_scope_is_split_on_the_provider_separator() -> None:
    scope = "openid  https://www.googleapis.com/auth/userinfo.email "
    tokens = parse({"access_token": "at", "scope": scope})
    assert tokens.scope == ("openid", "https://www.googleapis.com/auth/userinfo.email")
    comma = GOOGLE.model_copy(update={"scope_separator": ","})
    assert parse({"access_token": "at", "scope": "repo,user"}, provider=comma).scope == (
        "repo",
        "user",
    )


def test_unknown_fields_land_in_extra_and_known_ones_do_not() -> None:
    body = {
        "access_token": "at",
        "token_type": "Bearer",
        "expires_in": 3599,
        "refresh_token": "rt",
        "refresh_token_expires_in": 86400,
        "scope": "openid",
        "id_token": "a.b.c",
        "x_custom": {"nested": [1, 2]},
        "user_id": 42,
        "ext_expires_in": 3599,
    }
    tokens = parse(body)
    assert tokens.extra == {"x_custom": {"nested": [1, 2]}, "user_id": 42, "ext_expires_in": 3599}
    assert secret(tokens.id_token) == "a.b.c"


def test_the_id_token_is_kept() -> None:
    assert secret(parse({"access_token": "at", "id_token": "h.p.s"}).id_token) == "h.p.s"
    assert parse({"access_token": "at"}).id_token is None


# -- form-encoded bodies -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", [FORM, FORM + "; charset=utf-8", "Application/X-WWW-Form-Urlencoded"]
)
def test_a_form_encoded_token_response_is_read(content_type: str) -> None:
    raw = (
        b"access_token=gho_abc&token_type=bearer&expires_in=28800"
        b"&refresh_token=ghr_xyz&refresh_token_expires_in=15897600&scope=repo%2Cuser&extra=1"
    )
    tokens = parse(raw=raw, content_type=content_type)
    assert secret(tokens.access_token) == "gho_abc"
    assert secret(tokens.refresh_token) == "ghr_xyz"
    assert tokens.token_type == "Bearer"
    assert tokens.expires_at == START + 28800
    assert tokens.refresh_token_expires_at == START + 15897600
    assert tokens.scope == ("repo,user",)
    assert tokens.extra == {"extra": "1"}


@pytest.mark.parametrize("status", [200, 400])
def test_a_form_encoded_error_is_an_oauth_error(status: int) -> None:
    raw = b"error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired."
    with pytest.raises(keyturn.OAuthError) as caught:
        parse(raw=raw, content_type=FORM, status=status)
    error = caught.value
    assert error.error == "bad_verification_code"
    assert error.description == "The code passed is incorrect or expired."
    assert error.status == status
    assert error.permanent is True


async def test_form_encoded_bodies_through_the_client(client: Both, http: Recorder) -> None:
    http.queue(200, raw=b"access_token=at-form&expires_in=60&token_type=bearer", content_type=FORM)
    tokens = await client("exchange_code", "google", "4/code", redirect_uri=REDIRECT)
    assert secret(tokens.access_token) == "at-form"
    assert tokens.expires_at == START + 60
    http.queue(200, raw=b"error=invalid_grant&error_description=Bad", content_type=FORM)
    with pytest.raises(keyturn.OAuthError) as caught:
        await client("refresh", old_tokens())
    assert (caught.value.error, caught.value.status, caught.value.permanent) == (
        "invalid_grant",
        200,
        True,
    )


# -- OAuth errors and their classification ---------------------------------------------------


async def test_an_error_with_http_200_is_an_oauth_error(client: Both, http: Recorder) -> None:
    """GitHub's quirk: errors with 200. An error wins even next to an access token."""
    http.queue(200, {"error": "invalid_grant", "error_description": "expired", "access_token": "x"})
    with pytest.raises(keyturn.OAuthError) as caught:
        await client("refresh", old_tokens())
    error = caught.value
    assert (error.error, error.status, error.description) == ("invalid_grant", 200, "expired")
    assert error.permanent is True
    assert error.operation == "refresh"


@pytest.mark.parametrize(
    ("code", "status", "permanent"),
    [
        ("invalid_grant", 400, True),
        ("invalid_client", 401, True),
        ("unauthorized_client", 400, True),
        ("unsupported_grant_type", 400, True),
        ("invalid_request", 400, True),
        ("invalid_scope", 400, True),
        ("access_denied", 403, True),
        ("invalid_grant", 503, True),
        ("temporarily_unavailable", 400, False),
        ("temporarily_unavailable", 503, False),
        ("server_error", 400, False),
        ("server_error", 500, False),
        ("slow_down", 400, False),
        ("something_new", 400, True),
        ("something_new", 401, True),
        ("something_new", 200, True),
        ("something_new", 503, False),
        ("something_new", 500, False),
        ("something_new", 429, False),
        ("something_new", 408, False),
        # Google's own lists: google-auth retries internal_failure; policy blocks stay.
        ("internal_failure", 400, False),
        ("admin_policy_enforced", 503, True),
        ("deleted_client", 500, True),
    ],
)
def test_oauth_errors_are_classified(code: str, status: int, permanent: bool) -> None:
    with pytest.raises(keyturn.OAuthError) as caught:
        parse({"error": code, "error_description": "why"}, status=status)
    error = caught.value
    assert (error.error, error.status, error.description) == (code, status, "why")
    assert error.permanent is permanent
    assert flows.is_permanent(GOOGLE, status, code) is permanent


def test_the_provider_lists_win_over_rfc_codes_and_statuses() -> None:
    odd = GOOGLE.model_copy(
        update={
            "transient_errors": frozenset({"invalid_grant"}),
            "permanent_errors": frozenset({"server_error", "flaky"}),
        }
    )
    assert flows.is_permanent(odd, 400, "invalid_grant") is False
    assert flows.is_permanent(odd, 503, "server_error") is True
    assert flows.is_permanent(odd, 503, "flaky") is True
    assert flows.is_permanent(GOOGLE, 400, "invalid_grant") is True
    assert flows.is_permanent(GOOGLE, 503, "server_error") is False


def test_no_status_and_no_code_is_transient() -> None:
    assert flows.is_permanent(GOOGLE, None, None) is False
    assert flows.is_permanent(GOOGLE, None, "something_new") is False
    assert flows.is_permanent(GOOGLE, None, "invalid_grant") is True


def test_an_error_field_that_is_not_a_string_is_not_an_oauth_error() -> None:
    with pytest.raises(keyturn.InvalidResponseError) as caught:
        parse({"error": {"code": 400, "message": "bad"}}, status=400)
    assert caught.value.error == "http_error"
    assert caught.value.permanent is True


# -- refresh: what is kept, what is replaced -------------------------------------------------


async def test_a_refresh_without_refresh_token_keeps_the_old_one_and_its_expiry(
    client: Both, http: Recorder
) -> None:
    previous = old_tokens(refresh_token_expires_at=START + 86400)
    http.queue(200, {"access_token": "at-new", "expires_in": 3599, "token_type": "Bearer"})
    tokens = await client("refresh", previous)
    assert secret(tokens.access_token) == "at-new"
    assert secret(tokens.refresh_token) == "rt-old"
    assert tokens.refresh_token_expires_at == START + 86400
    assert tokens.expires_at == START + 3599
    assert http.form()["refresh_token"] == "rt-old"


async def test_a_refresh_with_a_refresh_token_rotates_it(client: Both, http: Recorder) -> None:
    previous = old_tokens(refresh_token_expires_at=START + 86400)
    http.queue(
        200,
        {
            "access_token": "at-new",
            "expires_in": 28800,
            "refresh_token": "rt-new",
            "refresh_token_expires_in": 15897600,
        },
    )
    tokens = await client("refresh", previous)
    assert secret(tokens.refresh_token) == "rt-new"
    assert tokens.refresh_token_expires_at == START + 15897600


def test_a_rotated_refresh_token_does_not_inherit_the_old_expiry() -> None:
    previous = old_tokens(refresh_token_expires_at=START + 60)
    tokens = parse({"access_token": "at-new", "refresh_token": "rt-new"}, previous=previous)
    assert secret(tokens.refresh_token) == "rt-new"
    assert tokens.refresh_token_expires_at is None


def test_a_refresh_keeps_scope_and_id_token_when_absent_and_replaces_them_when_sent() -> None:
    previous = old_tokens(scope=("openid", "email"), id_token="old.id.token")
    kept = parse({"access_token": "at-new", "expires_in": 3599}, previous=previous)
    assert kept.scope == ("openid", "email")
    assert secret(kept.id_token) == "old.id.token"
    replaced = parse(
        {"access_token": "at-new", "scope": "openid", "id_token": "new.id.token"},
        previous=previous,
    )
    assert replaced.scope == ("openid",)
    assert secret(replaced.id_token) == "new.id.token"


def test_an_empty_refresh_token_in_the_response_does_not_replace_the_old_one() -> None:
    empties: list[Any] = ["", None, 0, []]
    for empty in empties:
        tokens = parse({"access_token": "at-new", "refresh_token": empty}, previous=old_tokens())
        assert secret(tokens.refresh_token) == "rt-old"


MALFORMED_REFRESHES: list[tuple[int, str, bytes]] = [
    (502, "text/html", HTML_502),
    (200, "application/json", b"<html>oops</html>"),
    (200, "application/json", b"{}"),
    (200, "application/json", b'["at-new"]'),
    (200, "application/json", b""),
    (200, "text/html", b"<html>captive portal</html>"),
]


@pytest.mark.parametrize(
    ("status", "content_type", "raw"),
    MALFORMED_REFRESHES,
    ids=["html-502", "html-as-json", "no-access-token", "array", "empty", "html-200"],
)
async def test_a_malformed_refresh_never_loses_the_old_refresh_token(
    client: Both, http: Recorder, clock: FakeClock, status: int, content_type: str, raw: bytes
) -> None:
    previous = old_tokens(expires_at=START + 3599, refresh_token_expires_at=START + 86400)
    token = await client("jwt", tokens=previous)
    clock.advance(3600)
    http.queue(status, raw=raw, content_type=content_type)
    result = await client("jwt", token)
    assert len(http.requests) == 1
    assert result.tokens == previous
    assert secret(result.tokens.refresh_token) == "rt-old"
    assert result.refresh_failure is not None
    assert result.refresh_failure.status == status
    assert result.refresh_failure.permanent is False
    assert result.refresh_failure.at == int(clock.now)
    assert result.error is None
    # Transient: the next request tries again with the same refresh token.
    http.queue(200, {"access_token": "at-new", "expires_in": 3599})
    again = await client("jwt", result)
    assert http.form()["refresh_token"] == "rt-old"
    assert secret(again.tokens.access_token) == "at-new"
    assert secret(again.tokens.refresh_token) == "rt-old"
    assert again.refresh_failure is None


async def test_a_refresh_with_an_unreadable_lifetime_succeeds_and_stays_due(
    client: Both, http: Recorder, clock: FakeClock
) -> None:
    token = await client("jwt", tokens=old_tokens(expires_at=START + 3599))
    clock.advance(3600)
    http.queue(200, {"access_token": "at-new", "expires_in": "about an hour"})
    result = await client("jwt", token)
    assert secret(result.tokens.access_token) == "at-new"
    assert secret(result.tokens.refresh_token) == "rt-old"
    assert result.tokens.expires_at == int(clock.now)
    assert result.refresh_failure is None
    # Due at once: the next read refreshes again instead of using a token of unknown age.
    http.queue(200, {"access_token": "at-newer", "expires_in": 3599})
    later = await client("jwt", result)
    assert secret(later.tokens.access_token) == "at-newer"
    assert len(http.requests) == 2
