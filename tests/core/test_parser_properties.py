"""Properties of the token response parser over arbitrary responses.

Whatever a provider, a proxy or a captive portal answers, the parser returns a usable
``TokenSet`` or raises a ``ProviderError``: never anything else, never a token without an
access token, never a lost refresh token, and never one a token store cannot save.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keyturn
from keyturn import flows
from keyturn.http import HttpResponse
from keyturn.models import TokenSet
from keyturn.stores.base import dump_tokens, load_tokens
from keyturn_google import GOOGLE

#: Hundreds of examples a property: seconds each.
pytestmark = pytest.mark.slow

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "text/json",
            "application/problem+json",
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=utf-8",
            "text/html",
            "text/html; charset=UTF-8",
            "text/plain",
            "",
        ]
    ),
    st.none(),  # no content-type header at all
    st.text(max_size=40),
)

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["3599", "-1", "0", " 60 ", "1e400", "NaN", "Infinity", "bearer", "BEARER"]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
TOKEN_FIELDS = [
    "access_token",
    "expires_in",
    "refresh_token",
    "refresh_token_expires_in",
    "token_type",
    "scope",
    "id_token",
    "error",
    "error_description",
]
FIELD_VALUES = st.one_of(
    JSON_SCALARS,
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from(["", " ", "-3599", "3599", "0", "-0.5", "1e400", "bearer", "invalid_grant"]),
    st.text(min_size=1, max_size=30),
    JSON_VALUES,
)
#: Token-response-like objects: any subset of the known fields with odd values, plus unknowns.
TOKEN_DICTS = st.builds(
    lambda unknown, known: {**unknown, **known},
    st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=3),
    st.fixed_dictionaries({}, optional=dict.fromkeys(TOKEN_FIELDS, FIELD_VALUES)),
)


def _form(data: dict[str, Any]) -> bytes:
    fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    return urlencode(fields).encode()


BODIES = st.one_of(
    st.binary(max_size=200),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    TOKEN_DICTS.map(lambda value: json.dumps(value).encode()),
    TOKEN_DICTS.map(_form),
    st.text(max_size=100).map(lambda text: text.encode("utf-8", "surrogatepass")),
)

NOW = st.integers(min_value=0, max_value=4_000_000_000)


@st.composite
def previous_tokens(draw: st.DrawFn) -> TokenSet | None:
    if draw(st.booleans()):
        return None
    return TokenSet(
        provider="google",
        access_token="at-previous",
        refresh_token=draw(st.sampled_from([None, "rt-previous"])),
        refresh_token_expires_at=draw(st.none() | st.integers(0, 4_000_000_000)),
        expires_at=draw(st.none() | st.integers(0, 4_000_000_000)),
        scope=draw(st.none() | st.just(("openid",))),
        id_token=draw(st.sampled_from([None, "h.p.s"])),
    )


def _response(status: int, content_type: str | None, body: bytes) -> HttpResponse:
    headers = {} if content_type is None else {"content-type": content_type}
    return HttpResponse(status, headers, body)


def _parse(
    status: int, content_type: str | None, body: bytes, now: int, previous: TokenSet | None
) -> TokenSet | keyturn.ProviderError:
    """The parser's result, or the ProviderError it raised (any other exception escapes)."""
    operation = "exchange_code" if previous is None else "refresh"
    response = _response(status, content_type, body)
    try:
        return flows.parse_token_response(GOOGLE, operation, response, now, previous=previous)
    except keyturn.ProviderError as error:
        return error


def _check(
    status: int, content_type: str | None, body: bytes, now: int, previous: TokenSet | None
) -> TokenSet | None:
    """Parse and check the invariants; the TokenSet, or None when a ProviderError was raised."""
    operation = "exchange_code" if previous is None else "refresh"
    tokens = _parse(status, content_type, body, now, previous)
    if isinstance(tokens, keyturn.ProviderError):
        error = tokens
        assert error.provider == "google"
        assert error.operation == operation
        assert error.status == status
        assert isinstance(error.permanent, bool)
        assert isinstance(error.error, str) and error.error
        assert str(error)
        return None
    assert 200 <= status < 300, "an error status never yields tokens"
    access_token = tokens.access_token.get_secret_value()
    assert isinstance(access_token, str) and access_token
    assert tokens.provider == "google"
    assert tokens.expires_at is None or tokens.expires_at >= now
    assert tokens.token_type
    if previous is not None and previous.refresh_token is not None:
        assert tokens.refresh_token is not None, "a refresh never loses the refresh token"
    assert load_tokens(dump_tokens(tokens)) == tokens, "what the parser returns can be stored"
    return tokens


@SETTINGS
@given(
    status=st.integers(min_value=100, max_value=599) | st.sampled_from([200, 201]),
    content_type=CONTENT_TYPES,
    body=BODIES,
    now=NOW,
    previous=previous_tokens(),
)
def test_parse_returns_tokens_or_raises_a_provider_error(
    status: int, content_type: str | None, body: bytes, now: int, previous: TokenSet | None
) -> None:
    _check(status, content_type, body, now, previous)


@SETTINGS
@given(
    status=st.integers(min_value=200, max_value=299),
    content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded"]),
    data=TOKEN_DICTS,
    access_token=st.text(min_size=1, max_size=30),
    now=NOW,
    previous=previous_tokens(),
)
def test_a_2xx_token_response_with_an_access_token_parses(
    status: int,
    content_type: str,
    data: dict[str, Any],
    access_token: str,
    now: int,
    previous: TokenSet | None,
) -> None:
    """With a string access token and no error, any other field values still give tokens."""
    data = {k: v for k, v in data.items() if k != "error"}
    data["access_token"] = access_token
    body = _form(data) if "form" in content_type else json.dumps(data).encode()
    tokens = _check(status, content_type, body, now, previous)
    assert tokens is not None
    assert tokens.access_token.get_secret_value() == access_token


@SETTINGS
@given(
    status=st.integers(min_value=200, max_value=299),
    data=TOKEN_DICTS,
    access_token=FIELD_VALUES.filter(lambda value: not isinstance(value, str) or value == ""),
    now=NOW,
    previous=previous_tokens(),
)
def test_an_access_token_that_is_not_a_non_empty_string_is_an_invalid_response(
    status: int, data: dict[str, Any], access_token: Any, now: int, previous: TokenSet | None
) -> None:
    data = {k: v for k, v in data.items() if k != "error"}
    data["access_token"] = access_token
    result = _parse(status, "application/json", json.dumps(data).encode(), now, previous)
    assert isinstance(result, keyturn.InvalidResponseError)
    assert result.permanent is False


@SETTINGS
@given(
    data=TOKEN_DICTS,
    access_token=st.text(min_size=1, max_size=30),
    now=NOW,
    previous=previous_tokens(),
)
def test_a_refresh_response_without_refresh_token_keeps_the_previous_one(
    data: dict[str, Any], access_token: str, now: int, previous: TokenSet | None
) -> None:
    data = {k: v for k, v in data.items() if k not in ("error", "refresh_token")}
    data["access_token"] = access_token
    tokens = _check(200, "application/json", json.dumps(data).encode(), now, previous)
    assert tokens is not None
    expected = None if previous is None else previous.refresh_token
    assert tokens.refresh_token == expected


@SETTINGS
@given(
    status=st.integers(min_value=100, max_value=599),
    code=st.text(min_size=1, max_size=30),
    description=JSON_VALUES,
    content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded"]),
    extra=TOKEN_DICTS,
)
def test_an_error_field_is_always_an_oauth_error(
    status: int, code: str, description: Any, content_type: str, extra: dict[str, Any]
) -> None:
    data = {**extra, "error": code, "error_description": description}
    body = _form(data) if "form" in content_type else json.dumps(data).encode()
    error = _parse(status, content_type, body, 0, None)
    assert isinstance(error, keyturn.OAuthError), "a response with an error code parsed as tokens"
    assert error.error == code
    assert error.status == status
    assert error.permanent is flows.is_permanent(GOOGLE, status, code)


@SETTINGS
@given(
    content_type=CONTENT_TYPES,
    body=BODIES,
    status=st.integers(min_value=100, max_value=599),
)
def test_http_response_data_never_raises(
    content_type: str | None, body: bytes, status: int
) -> None:
    data = _response(status, content_type, body).data()
    assert data is None or isinstance(data, dict)
