"""Slack (keyturn-slack): cassettes replayed four ways, Slack's answers classified, the team.

The cassettes in cassettes/slack/ are written from Slack's documentation (provenance in
cassettes/README.md) and replay with record_mode "none": a request keyturn sends that a
cassette does not hold fails the test. The replay tests run four times: Keyturn over
httpx.Client and httpx2.Client, AsyncKeyturn over httpx.AsyncClient and httpx2.AsyncClient.

Slack answers failures with HTTP 200 and ``{"ok": false, "error": ...}``
(https://docs.slack.dev/reference/methods/openid.connect.token): the table tests drive the
plugin's flows with canned answers and check that every such answer is an error, classified
permanent or transient, and never read as tokens, also with the plain HTTP 400 OAuth body a
third party reports (https://nango.dev/blog/slack-oauth-refresh-token-invalid-grant).

The last class runs keyturn's conformance suite on the same cassettes.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Generator, Iterator
from typing import Any

import httpx
import pytest

import keyturn
from keyturn import HttpRequest, HttpResponse
from keyturn_emulator import Emulator
from keyturn_slack import PERMANENT_ERRORS, SLACK, TRANSIENT_ERRORS
from keyturn_slack.operations import (
    exchange_code_flow,
    refresh_flow,
    revoke_flow,
    userinfo_flow,
)
from keyturn_slack.team import check_team, id_token_team
from pytest_keyturn import ProviderConformance
from pytest_keyturn.cassettes import make_vcr
from tests.conftest import CASSETTES, CLIENT_ID, CLIENT_SECRET, FakeClock

from ._replay import Driver, Failure, Replay, refresh_failure_test, replay_fixtures

VCR = make_vcr(CASSETTES / "slack")

REDIRECT_URI = "https://app.example.com/api/auth/callback/slack"
#: The nonce in exchange_code's ID token (OpenID Connect Core's example value).
NONCE = "n-0S6_WzA2Mj"
#: Twelve hours: access tokens with token rotation on
#: (https://docs.slack.dev/authentication/using-token-rotation).
ACCESS_LIFETIME = 43200
#: Placeholder tokens of the cassettes (keyturn's scrubber writes this form).
EXCHANGED_ACCESS_TOKEN = "REDACTED-13620ee5"
EXCHANGED_REFRESH_TOKEN = "REDACTED-a6d60754"
FIRST_ACCESS_TOKEN = "REDACTED-3b8131c7"
FIRST_REFRESH_TOKEN = "REDACTED-602678b0"
SECOND_ACCESS_TOKEN = "REDACTED-a2ff3fef"
SECOND_REFRESH_TOKEN = "REDACTED-152264f1"
#: The workspace and user of the cassettes.
TEAM = "T0123ABC456"
USER = "U0123ABC456"
#: What the app holds before a refresh; the body matcher only needs the fields present.
OLD_ACCESS_TOKEN = "access-token-from-sign-in"
OLD_REFRESH_TOKEN = "refresh-token-from-sign-in"

connect, driver = replay_fixtures(
    Replay(
        "slack",
        VCR,
        REDIRECT_URI,
        code="code-from-the-callback",
        access_lifetime=ACCESS_LIFETIME,
        authorize={"nonce": NONCE},
    )
)


def due_tokens(clock: FakeClock) -> keyturn.TokenSet:
    """Tokens as a sign-in left them, now due for a refresh."""
    return keyturn.TokenSet.model_validate(
        {
            "provider": "slack",
            "access_token": OLD_ACCESS_TOKEN,
            "expires_at": int(clock.now) - 1,
            "refresh_token": OLD_REFRESH_TOKEN,
            "id_token": "id-token-from-sign-in",
        }
    )


# -- the code exchange --------------------------------------------------------------------


async def test_exchange_code_reads_slacks_envelope(driver: Driver, clock: FakeClock) -> None:
    request = driver.authorize_url(nonce=NONCE)
    with driver.play("exchange_code"):
        tokens = await driver.exchange_code(request, "code-from-the-callback")
    assert tokens.access_token.get_secret_value() == EXCHANGED_ACCESS_TOKEN
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == EXCHANGED_REFRESH_TOKEN
    assert tokens.expires_at == clock.now + ACCESS_LIFETIME
    assert tokens.token_type == "Bearer"
    assert tokens.id_token is not None
    assert id_token_team(tokens.id_token.get_secret_value()) == TEAM
    assert tokens.extra == {}  # "ok" was read, not kept


async def test_exchange_with_a_bad_code_is_a_permanent_error_at_200(driver: Driver) -> None:
    request = driver.authorize_url(nonce=NONCE)
    with driver.play("exchange_invalid_code"), pytest.raises(keyturn.OAuthError) as caught:
        await driver.exchange_code(request, "not-a-code")
    error = caught.value
    assert (error.error, error.status, error.permanent) == ("invalid_code", 200, True)
    assert error.operation == "exchange_code"


# -- refresh ------------------------------------------------------------------------------


async def test_refresh_rotates_and_keeps_no_warning(driver: Driver, clock: FakeClock) -> None:
    old = due_tokens(clock)
    with driver.play("refresh_ok"):
        tokens = await driver.refresh(old)
    assert tokens.access_token.get_secret_value() == FIRST_ACCESS_TOKEN
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == FIRST_REFRESH_TOKEN
    assert tokens.expires_at == clock.now + ACCESS_LIFETIME
    assert tokens.id_token == old.id_token  # the answer brings none: the old one stays
    # Slack's notes are dropped: not stored, not shown.
    assert tokens.extra == {}
    assert "superfluous_charset" not in repr(tokens)


async def test_refresh_with_the_rotated_token_gets_another_pair(
    driver: Driver, clock: FakeClock
) -> None:
    with driver.play("refresh_rotated"):
        tokens = await driver.refresh(due_tokens(clock))
    assert tokens.access_token.get_secret_value() == SECOND_ACCESS_TOKEN
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == SECOND_REFRESH_TOKEN


REFRESH_FAILURES = {
    # A dead refresh token: HTTP 200 and ok:false. Never tokens, always permanent.
    "refresh_invalid_grant": Failure(keyturn.OAuthError, "invalid_refresh_token", 200, True, None),
    "refresh_bad_client_secret": Failure(keyturn.OAuthError, "bad_client_secret", 200, True, None),
    # The RFC 6749 form a third party reports: read all the same.
    "refresh_invalid_grant_400": Failure(
        keyturn.OAuthError, "invalid_grant", 400, True, "Token has been expired or revoked."
    ),
    "refresh_ratelimited": Failure(keyturn.OAuthError, "ratelimited", 429, False, None),
    "refresh_transient": Failure(
        keyturn.InvalidResponseError,
        "http_error",
        503,
        False,
        "HTTP 503 with a text/html body and no OAuth error",
    ),
}

test_refresh_failure_is_classified = refresh_failure_test(REFRESH_FAILURES, due_tokens)


async def test_ratelimited_carries_slacks_retry_after(driver: Driver, clock: FakeClock) -> None:
    with driver.play("refresh_ratelimited"), pytest.raises(keyturn.OAuthError) as caught:
        await driver.refresh(due_tokens(clock))
    assert caught.value.retry_after == 30.0


# -- userinfo and revoke ------------------------------------------------------------------


async def test_userinfo_reads_the_claims_and_drops_the_envelope(
    driver: Driver, clock: FakeClock
) -> None:
    with driver.play("userinfo"):
        profile = await driver.userinfo(due_tokens(clock))
    assert profile.id == USER
    assert (profile.name, profile.email, profile.email_verified) == (
        "Example User",
        "user@example.com",
        True,
    )
    assert profile.image == "https://example.com/avatar.png"
    assert profile.raw["https://slack.com/team_id"] == TEAM
    assert not {"ok", "warning", "response_metadata"} & set(profile.raw)


@pytest.mark.parametrize("scenario", ["revoke", "revoke_invalid_auth"])
async def test_revoke_succeeds_also_for_a_dead_token(
    driver: Driver, clock: FakeClock, scenario: str
) -> None:
    # The cassette's form holds only "token": a client_id or token_type_hint would not match.
    with driver.play(scenario):
        result = await driver.revoke(due_tokens(clock))
    assert result is None


# -- the jwt callback over a whole sign-in ------------------------------------------------


async def test_jwt_refreshes_a_due_token_and_keeps_the_rotated_one(
    driver: Driver, clock: FakeClock
) -> None:
    token = await driver.signed_in_jwt(clock)
    with driver.play("refresh_ok"):
        refreshed = await driver.jwt(token)
    assert refreshed.error is None
    assert refreshed.tokens.refresh_token is not None
    assert refreshed.tokens.refresh_token.get_secret_value() == FIRST_REFRESH_TOKEN
    assert refreshed.tokens.access_token.get_secret_value() == FIRST_ACCESS_TOKEN


async def test_jwt_after_ok_false_asks_for_a_new_sign_in(driver: Driver, clock: FakeClock) -> None:
    token = await driver.signed_in_jwt(clock)
    failed = await driver.jwt_fails_for_good(token, "refresh_invalid_grant")
    assert failed.refresh_failure is not None
    assert failed.refresh_failure.error == "invalid_refresh_token"


async def test_jwt_after_ratelimited_keeps_the_session(driver: Driver, clock: FakeClock) -> None:
    token = await driver.signed_in_jwt(clock)
    failed = await driver.jwt_fails_for_now(token, "refresh_ratelimited")
    assert failed.refresh_failure is not None
    assert failed.refresh_failure.status == 429


# -- Slack's answers, classified (the flows driven with canned answers) --------------------


def _answer(status: int, body: Any, headers: dict[str, str] | None = None) -> HttpResponse:
    merged = {"content-type": "application/json; charset=utf-8", **(headers or {})}
    return HttpResponse(status, merged, json.dumps(body).encode())


def _drive(flow: Generator[HttpRequest, HttpResponse, Any], answer: HttpResponse) -> Any:
    """Send ``answer`` to the flow's one request; its result, or what it raises."""
    next(flow)
    try:
        flow.send(answer)
    except StopIteration as done:
        return done.value
    raise AssertionError("the flow sent a second request")


def _credentials() -> keyturn.ClientCredentials:
    return keyturn.ClientCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


def _refresh(answer: HttpResponse, spec: keyturn.ProviderSpec = SLACK) -> Any:
    old = due_tokens(FakeClock())
    return _drive(refresh_flow(spec, _credentials(), old, FakeClock()), answer)


#: Every Slack code keyturn-slack classifies, and its class: the table of the plugin's docs.
CLASSIFIED = {
    **dict.fromkeys(
        [
            "invalid_refresh_token",
            "invalid_grant_type",
            "invalid_client_id",
            "bad_client_secret",
            "token_revoked",
            "token_expired",
            "invalid_code",
            "invalid_auth",
            "team_mismatch",
        ],
        True,
    ),
    **dict.fromkeys(
        ["ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"],
        False,
    ),
}


def test_the_classification_table_is_the_specs() -> None:
    assert {code for code, permanent in CLASSIFIED.items() if permanent} <= PERMANENT_ERRORS
    assert {code for code, permanent in CLASSIFIED.items() if not permanent} == TRANSIENT_ERRORS
    assert not PERMANENT_ERRORS & TRANSIENT_ERRORS


@pytest.mark.parametrize(("code", "permanent"), list(CLASSIFIED.items()))
@pytest.mark.parametrize("status", [200, 400])
def test_ok_false_is_never_read_as_tokens(code: str, permanent: bool, status: int) -> None:
    # An access token beside ok:false must not be taken: the answer is an error.
    body = {"ok": False, "error": code, "access_token": "xoxp-must-not-be-read", "warning": "w"}
    with pytest.raises(keyturn.OAuthError) as caught:
        _refresh(_answer(status, body))
    error = caught.value
    assert (error.error, error.status, error.permanent) == (code, status, permanent)
    assert (error.provider, error.operation) == ("slack", "refresh")
    assert error.details == {}  # no warning, no field of the body beyond the code
    assert "xoxp-must-not-be-read" not in str(error)
    assert OLD_REFRESH_TOKEN not in str(error)


@pytest.mark.parametrize(("code", "permanent"), list(CLASSIFIED.items()))
def test_the_plain_oauth_form_is_classified_the_same(code: str, permanent: bool) -> None:
    body = {"error": code, "error_description": "described", "response_metadata": {"x": "y"}}
    with pytest.raises(keyturn.OAuthError) as caught:
        _refresh(_answer(400, body))
    assert (caught.value.error, caught.value.permanent) == (code, permanent)
    assert caught.value.description == "described"
    assert "response_metadata" not in caught.value.details


def test_ok_false_without_a_code_is_still_an_error() -> None:
    with pytest.raises(keyturn.OAuthError) as caught:
        _refresh(_answer(200, {"ok": False, "access_token": "xoxp-must-not-be-read"}))
    assert (caught.value.error, caught.value.permanent) == ("unknown_error", True)


@pytest.mark.parametrize("ok", ["true", None, 1, "false"])
def test_an_ok_that_is_not_a_boolean_is_unusable(ok: Any) -> None:
    with pytest.raises(keyturn.InvalidResponseError) as caught:
        _refresh(_answer(200, {"ok": ok, "access_token": "xoxp-must-not-be-read"}))
    assert caught.value.permanent is False
    assert "xoxp-must-not-be-read" not in str(caught.value)


def test_ok_true_without_an_access_token_is_unusable() -> None:
    with pytest.raises(keyturn.InvalidResponseError):
        _refresh(_answer(200, {"ok": True, "refresh_token": "xoxe-1-new"}))


def test_ok_true_with_a_failed_status_is_an_error() -> None:
    with pytest.raises(keyturn.ProviderError) as caught:
        _refresh(_answer(502, {"ok": True, "access_token": "xoxp-1"}))
    assert (caught.value.status, caught.value.permanent) == (502, False)


def test_a_token_answer_keeps_the_installations_team_and_no_notes() -> None:
    body = {
        "ok": True,
        "access_token": "xoxe.xoxp-1-new",
        "refresh_token": "xoxe-1-new",
        "expires_in": 43200,
        "team": {"id": TEAM, "name": "Example Workspace"},
        "enterprise": None,
        "warning": "superfluous_charset",
        "response_metadata": {"warnings": ["superfluous_charset"]},
    }
    tokens = _refresh(_answer(200, body))
    assert tokens.extra == {"team": {"id": TEAM, "name": "Example Workspace"}, "enterprise": None}
    assert tokens.refresh_token.get_secret_value() == "xoxe-1-new"


def test_without_rotation_there_is_no_refresh_token_and_no_expiry() -> None:
    flow = exchange_code_flow(SLACK, _credentials(), "code", REDIRECT_URI, None, FakeClock())
    body = {"ok": True, "access_token": "xoxp-1", "token_type": "Bearer", "id_token": "a.b.c"}
    tokens = _drive(flow, _answer(200, body))
    assert (tokens.refresh_token, tokens.expires_at) == (None, None)


def test_userinfo_at_200_with_ok_false_is_an_error() -> None:
    flow = userinfo_flow(SLACK, due_tokens(FakeClock()))
    with pytest.raises(keyturn.OAuthError) as caught:
        _drive(flow, _answer(200, {"ok": False, "error": "invalid_auth", "sub": "U1"}))
    assert (caught.value.error, caught.value.operation, caught.value.permanent) == (
        "invalid_auth",
        "userinfo",
        True,
    )


def test_userinfo_without_sub_is_unusable() -> None:
    flow = userinfo_flow(SLACK, due_tokens(FakeClock()))
    with pytest.raises(keyturn.InvalidResponseError):
        _drive(flow, _answer(200, {"ok": True, "email": "user@example.com"}))


@pytest.mark.parametrize(
    ("body", "revoked"),
    [
        ({"ok": True, "revoked": True}, True),
        ({"ok": False, "error": "token_revoked"}, True),
        ({"ok": False, "error": "account_inactive"}, True),
        ({"ok": False, "error": "token_expired"}, False),
        ({"ok": False, "error": "ratelimited"}, False),
    ],
)
def test_revoke_reads_ok(body: dict[str, Any], revoked: bool) -> None:
    flow = revoke_flow(SLACK, _credentials(), due_tokens(FakeClock()))
    request = next(flow)
    assert request.method == "POST"
    assert request.body == f"token={OLD_ACCESS_TOKEN}".encode()
    if revoked:
        with pytest.raises(StopIteration):
            flow.send(_answer(200, body))
        return
    with pytest.raises(keyturn.OAuthError) as caught:
        flow.send(_answer(200, body))
    assert caught.value.error == body["error"]


# -- the team setting ---------------------------------------------------------------------


def _id_token(claims: dict[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.signature"


@pytest.mark.parametrize(
    "token", ["", "one.part", "a.!!!.c", "a.bnVsbA.c", _id_token({"https://slack.com/team_id": 7})]
)
def test_an_unreadable_id_token_names_no_team(token: str) -> None:
    assert id_token_team(token) is None


def _deployed(team: str | None) -> keyturn.ProviderSpec:
    settings: dict[str, dict[str, str]] = {"slack": {"team": team}} if team else {}
    with keyturn.Keyturn(
        {"slack": (CLIENT_ID, CLIENT_SECRET)}, environ={}, settings=settings
    ) as kt:
        return kt.provider("slack")


def test_without_a_team_nothing_is_checked_and_no_team_is_asked() -> None:
    spec = _deployed(None)
    assert spec.deployment == {}
    tokens = keyturn.TokenSet(provider="slack", access_token="x", id_token=_id_token({}))
    check_team(spec, "exchange_code", 200, tokens=tokens, id_token_required=True)


def test_a_refresh_bringing_another_workspaces_id_token_is_refused() -> None:
    spec = _deployed(TEAM)
    body = {
        "ok": True,
        "access_token": "xoxp-2",
        "id_token": _id_token({"https://slack.com/team_id": "T0OTHER"}),
    }
    with pytest.raises(keyturn.OAuthError) as caught:
        _refresh(_answer(200, body), spec)
    assert (caught.value.error, caught.value.permanent) == ("team_mismatch", True)
    assert "T0OTHER" in str(caught.value) and TEAM in str(caught.value)


def test_a_token_answer_naming_another_team_is_refused() -> None:
    body = {"ok": True, "access_token": "xoxp-2", "team": {"id": "T0OTHER"}}
    with pytest.raises(keyturn.OAuthError, match="team_mismatch"):
        _refresh(_answer(200, body), _deployed(TEAM))


def test_a_refresh_without_an_id_token_keeps_the_team_checked_at_sign_in() -> None:
    tokens = _refresh(_answer(200, {"ok": True, "access_token": "xoxp-2"}), _deployed(TEAM))
    assert tokens.access_token.get_secret_value() == "xoxp-2"


def test_userinfo_of_another_workspace_is_refused() -> None:
    flow = userinfo_flow(_deployed(TEAM), due_tokens(FakeClock()))
    body = {"ok": True, "sub": USER, "https://slack.com/team_id": "T0OTHER"}
    with pytest.raises(keyturn.OAuthError, match="team_mismatch"):
        _drive(flow, _answer(200, body))


def test_the_team_goes_on_the_authorize_url_from_the_environment() -> None:
    environ = {"KEYTURN_SLACK_TEAM": TEAM}
    with keyturn.Keyturn({"slack": (CLIENT_ID, CLIENT_SECRET)}, environ=environ) as kt:
        url = kt.authorize_url("slack", REDIRECT_URI).url
    assert f"&team={TEAM}" in url
    assert url.startswith("https://slack.com/openid/connect/authorize?")


def test_a_team_per_call_is_refused_the_deployment_names_it() -> None:
    # The workspace is the deployment's: a per-call team could not be checked at the callback.
    with (
        keyturn.Keyturn({"slack": (CLIENT_ID, CLIENT_SECRET)}, environ={}) as kt,
        pytest.raises(keyturn.ConfigurationError, match="team"),
    ):
        kt.authorize_url("slack", REDIRECT_URI, team=TEAM)


@pytest.mark.parametrize("value", ["T0/../x", "T0 1", "T0?x=1"])
def test_a_team_that_is_not_one_word_is_refused(value: str) -> None:
    with (
        keyturn.Keyturn(
            {"slack": (CLIENT_ID, CLIENT_SECRET)}, environ={}, settings={"slack": {"team": value}}
        ) as kt,
        pytest.raises(keyturn.ConfigurationError, match="team") as caught,
    ):
        kt.provider("slack")
    assert value not in str(caught.value)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("team", "accepted"), [(TEAM, True), ("T0OTHER", False)])
async def test_sign_in_checks_the_workspace(
    mode: str, team: str, accepted: bool, clock: FakeClock
) -> None:
    options: dict[str, Any] = {
        "environ": {},
        "clock": clock,
        "settings": {"slack": {"team": team}},
    }
    credentials = {"slack": (CLIENT_ID, CLIENT_SECRET)}
    outcome: Any
    with VCR.use_cassette("exchange_code.yaml") as cassette:
        try:
            if mode == "sync":
                with (
                    httpx.Client() as http,
                    keyturn.Keyturn(credentials, http_client=http, **options) as kt,
                ):
                    request = kt.authorize_url("slack", REDIRECT_URI, nonce=NONCE)
                    query = {"state": request.state.get_secret_value(), "code": "c"}
                    outcome = kt.sign_in(request, query, fetch_profile=False)
            else:
                async with httpx.AsyncClient() as ahttp:
                    akt = keyturn.AsyncKeyturn(credentials, http_client=ahttp, **options)
                    request = akt.authorize_url("slack", REDIRECT_URI, nonce=NONCE)
                    query = {"state": request.state.get_secret_value(), "code": "c"}
                    outcome = await akt.sign_in(request, query, fetch_profile=False)
                    await akt.aclose()
        except keyturn.OAuthError as error:
            outcome = error
    assert f"team={team}" in request.url
    if accepted:
        assert isinstance(outcome, keyturn.JWT) and outcome.error is None
        assert cassette.all_played
    else:
        assert isinstance(outcome, keyturn.OAuthError)
        assert (outcome.error, outcome.operation, outcome.permanent) == (
            "team_mismatch",
            "exchange_code",
            True,
        )


# -- against the emulator's slack profile -------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def _emulated(emu: Emulator, clock: FakeClock | None = None) -> keyturn.Keyturn:
    options: dict[str, Any] = {"environ": {}, "providers": [emu.point(SLACK)]}
    if clock is not None:
        options["clock"] = clock
    return keyturn.Keyturn({"slack": emu.credentials}, **options)


def _now() -> FakeClock:
    """A fake clock at the real time: the emulator signs ID tokens on the real clock."""
    clock = FakeClock()
    clock.set(int(time.time()))
    return clock


def test_the_emulator_answers_as_slack(emulator: Emulator) -> None:
    clock = _now()
    with _emulated(emulator, clock) as kt, _emulated(emulator, clock) as other:
        request = kt.authorize_url("slack", "http://127.0.0.1:8765/callback")
        token = kt.sign_in(request, emulator.authorize(request.url))
        tokens = token.tokens
        # Twelve hours by default, a refresh token (rotation on), the envelope read.
        assert tokens.expires_at == clock.now + 43200
        assert tokens.refresh_token is not None
        assert tokens.extra == {}
        assert token.user is not None and token.user.email == "ada@example.com"
        refreshed = kt.refresh(tokens)
        assert refreshed.refresh_token != tokens.refresh_token
        # The rotated-away refresh token, sent by another process (this one would answer
        # from its reuse window): HTTP 200 and ok:false, never tokens.
        with pytest.raises(keyturn.OAuthError) as caught:
            other.refresh(tokens)
        assert (caught.value.error, caught.value.status, caught.value.permanent) == (
            "invalid_refresh_token",
            200,
            True,
        )
        kt.revoke(refreshed)
        # Revoked: userinfo answers ok:false invalid_auth at 200, revoking again succeeds.
        with pytest.raises(keyturn.OAuthError, match="invalid_auth"):
            kt.userinfo(refreshed)
        kt.revoke(refreshed)
        with pytest.raises(keyturn.OAuthError, match="invalid_refresh_token"):
            other.refresh(refreshed)


def test_without_token_rotation_the_emulator_issues_no_refresh_token(emulator: Emulator) -> None:
    emulator.configure(access_token_lifetime=None)
    try:
        with _emulated(emulator) as kt:
            request = kt.authorize_url("slack", "http://127.0.0.1:8765/callback")
            tokens = kt.sign_in(request, emulator.authorize(request.url)).tokens
    finally:
        emulator.configure(access_token_lifetime=3600)
    assert (tokens.refresh_token, tokens.expires_at) == (None, None)


def test_a_lifetime_set_on_the_emulator_wins_over_slacks(emulator: Emulator) -> None:
    emulator.configure(access_token_lifetime=5)
    clock = _now()
    try:
        with _emulated(emulator, clock) as kt:
            request = kt.authorize_url("slack", "http://127.0.0.1:8765/callback")
            tokens = kt.sign_in(request, emulator.authorize(request.url)).tokens
    finally:
        emulator.configure(access_token_lifetime=3600)
    assert tokens.expires_at == clock.now + 5


def test_the_emulator_refuses_a_bad_secret_in_slacks_envelope(emulator: Emulator) -> None:
    spec = emulator.point(SLACK)
    credentials = {"slack": (emulator.credentials.client_id, "not-the-secret")}
    with keyturn.Keyturn(credentials, environ={}, providers=[spec]) as kt:
        request = kt.authorize_url("slack", "http://127.0.0.1:8765/callback")
        query = emulator.authorize(request.url)
        with pytest.raises(keyturn.OAuthError) as caught:
            kt.exchange_code(request, query["code"])
    assert (caught.value.error, caught.value.status) == ("bad_client_secret", 200)
    assert "not-the-secret" not in str(caught.value)


# -- keyturn's conformance suite on the same cassettes ------------------------------------


class TestSlackConformance(ProviderConformance):
    provider = "slack"
    cassettes = CASSETTES / "slack"
