"""A provider's ``Retry-After`` (RFC 9110 §10.2.3) travels on the error it comes with."""

from __future__ import annotations

import pytest

from keyturn import ProviderSpec
from keyturn.flows import MAX_RETRY_AFTER, error_from_response, retry_after
from keyturn.http import HttpResponse

SPEC = ProviderSpec(
    id="p", name="P", authorization_endpoint="https://p/a", token_endpoint="https://p/t"
)
DATE = "Sun, 29 Nov 2026 00:00:00 GMT"


def response(status: int, headers: dict[str, str], body: bytes = b"") -> HttpResponse:
    return HttpResponse(status=status, headers=headers, body=body)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": " 0 "}, 0.0),
        ({"retry-after": "99999999"}, MAX_RETRY_AFTER),
        ({"retry-after": "Sun, 29 Nov 2026 00:00:42 GMT", "date": DATE}, 42.0),
        ({"retry-after": "Sat, 28 Nov 2026 23:59:00 GMT", "date": DATE}, 0.0),
        ({"retry-after": "Sun, 29 Nov 2026 00:00:42 GMT"}, None),  # no Date to measure from
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-5"}, None),
        ({"retry-after": "1.5"}, None),  # RFC 9110: delta-seconds is digits only
        ({}, None),
    ],
)
def test_retry_after_reads_both_forms(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after(response(429, headers)) == expected


def test_an_oauth_error_carries_the_wait() -> None:
    error = error_from_response(
        SPEC,
        "refresh",
        response(429, {"retry-after": "12"}),
        {"error": "rate_limited", "error_description": "slow down"},
    )
    assert error is not None
    assert error.retry_after == 12.0
    assert error.permanent is False


def test_an_http_error_carries_the_wait_and_a_429_is_transient() -> None:
    body = b'{"message": "You are being rate limited.", "retry_after": 1.2, "global": false}'
    error = error_from_response(
        SPEC,
        "refresh",
        response(429, {"retry-after": "2", "content-type": "application/json"}, body),
        None,
    )
    assert error is not None
    assert (error.error, error.retry_after, error.permanent) == ("http_error", 2.0, False)


def test_no_header_no_wait() -> None:
    error = error_from_response(SPEC, "refresh", response(400, {}), {"error": "invalid_grant"})
    assert error is not None
    assert error.retry_after is None
