"""An operator sees why users are sent back to sign in, and no secret in what is logged.

A permanent refresh failure (the user must sign in again) is a WARNING naming the provider,
the error code and the provider's description; a transient one is an INFO saying the next
call tries again. Each failure is logged once, however many callers shared it.
"""

from __future__ import annotations

import logging

import httpx
import pytest

import keyturn
from keyturn.models import TokenSet
from tests.conftest import CLIENT_SECRET, START, Recorder

REFRESH = "1//refresh-token-that-must-not-be-logged"
ACCESS = "ya29.fake-access-token-not-to-be-logged"


def expired() -> TokenSet:
    return TokenSet(
        provider="google", access_token=ACCESS, refresh_token=REFRESH, expires_at=START - 1
    )


def refresh_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "keyturn" and "refresh" in r.getMessage()]


def assert_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    for secret in (REFRESH, ACCESS, CLIENT_SECRET):
        assert secret not in caplog.text


def test_a_permanent_failure_is_a_warning_with_code_and_description(
    kt: keyturn.Keyturn, http: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    http.queue(400, {"error": "invalid_grant", "error_description": "Token has been expired."})
    caplog.set_level(logging.DEBUG, logger="keyturn")
    token = kt.jwt(kt.jwt(tokens=expired()).model_copy())
    assert token.error == keyturn.REFRESH_ACCESS_TOKEN_ERROR
    (record,) = refresh_records(caplog)
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "google" in message and "invalid_grant" in message
    assert "Token has been expired." in message
    assert "sign in again" in message
    assert_no_secret(caplog)


def test_a_transient_failure_is_info_and_says_it_will_be_retried(
    kt: keyturn.Keyturn, http: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    http.queue(503, {"error": "temporarily_unavailable"})
    caplog.set_level(logging.DEBUG, logger="keyturn")
    with pytest.raises(keyturn.ProviderError):
        kt.refresh(expired())
    (record,) = refresh_records(caplog)
    assert record.levelno == logging.INFO
    assert "google" in record.getMessage() and "temporarily_unavailable" in record.getMessage()
    assert "next" in record.getMessage()
    assert_no_secret(caplog)


def test_a_network_failure_is_info(
    kt: keyturn.Keyturn, http: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    http.fail(httpx.ConnectError("refused"))
    caplog.set_level(logging.DEBUG, logger="keyturn")
    with pytest.raises(keyturn.TransportError):
        kt.refresh(expired())
    (record,) = refresh_records(caplog)
    assert record.levelno == logging.INFO and "network_error" in record.getMessage()


def test_an_unusable_refresh_token_is_a_warning_without_a_request(
    kt: keyturn.Keyturn, http: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="keyturn")
    gone = expired().model_copy(update={"refresh_token_expires_at": START - 5})
    with pytest.raises(keyturn.RefreshTokenUnusable):
        kt.refresh(gone)
    (record,) = refresh_records(caplog)
    assert record.levelno == logging.WARNING and "refresh_token_expired" in record.getMessage()
    assert not http.requests


def test_callers_sharing_a_failure_log_it_once(
    kt: keyturn.Keyturn, http: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    http.queue(400, {"error": "invalid_grant"})
    caplog.set_level(logging.DEBUG, logger="keyturn")
    for _ in range(3):  # the permanent failure is reused for the window: one request, one log
        with pytest.raises(keyturn.ProviderError):
            kt.refresh(expired())
    assert len(http.requests) == 1
    assert len(refresh_records(caplog)) == 1
