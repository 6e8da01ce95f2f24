"""Whatever token response the parser accepts, every store can keep.

A refresh the provider answered has already spent the old refresh token at a rotating provider,
so a save that fails afterwards loses the grant. The parser therefore keeps the tokens and makes
the rest storable: unknown fields nested too deep or too large are dropped from ``extra`` (and
named in a warning, never shown), and lifetimes are capped at ``MAX_LIFETIME``. Each test here
goes all the way: parse, dump with ``REVEAL``, JSON, validate, and a real store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

import keyturn
from keyturn import REVEAL, flows, models
from keyturn.http import HttpResponse
from keyturn.models import EXTRA_MAX_DEPTH, EXTRA_MAX_SIZE, TokenSet
from keyturn.stores import SQLiteTokenStore, TokenManager
from keyturn.stores.base import dump_tokens, load_tokens
from keyturn.stores.redis import RedisTokenStore
from keyturn_google import GOOGLE
from tests.conftest import START, FakeClock, Recorder

pytest_plugins = ["tests.stores._redis_server"]

KEY = "user-1"
MASK = "**********"


def nested(depth: int) -> dict[str, Any]:
    """``{"a": {"a": ... {}}}`` with ``depth`` levels of objects."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def previous() -> TokenSet:
    return TokenSet(
        provider="google", access_token="at-old", refresh_token="rt-old", expires_at=START - 1
    )


def parse(body: dict[str, Any]) -> TokenSet:
    response = HttpResponse(200, {"content-type": "application/json"}, json.dumps(body).encode())
    return flows.parse_token_response(GOOGLE, "refresh", response, START, previous=previous())


def round_trip(tokens: TokenSet) -> TokenSet:
    """Through what every store and the sealed web cookie do: REVEAL, JSON text, validate."""
    text = json.dumps(tokens.model_dump(mode="json", context=REVEAL))
    return TokenSet.model_validate(json.loads(text))


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteTokenStore]:
    with SQLiteTokenStore(tmp_path / "tokens.db") as store:
        yield store


def dropped_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# -- unknown fields -------------------------------------------------------------------------


def test_a_field_nested_300_deep_is_dropped_and_the_rotated_tokens_are_kept(
    caplog: pytest.LogCaptureFixture, sqlite_store: SQLiteTokenStore
) -> None:
    caplog.set_level(logging.WARNING, logger="keyturn")
    body = {
        "access_token": "at-new",
        "refresh_token": "rt-new",
        "expires_in": 3599,
        "x_deep": nested(300),
        "x_kept": {"team": {"id": "T1"}},
    }
    tokens = parse(body)
    assert tokens.access_token.get_secret_value() == "at-new"
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == "rt-new"
    assert tokens.extra == {"x_kept": {"team": {"id": "T1"}}}
    warnings = dropped_warnings(caplog)
    assert len(warnings) == 1 and "x_deep" in warnings[0] and "x_kept" not in warnings[0]
    assert '"a"' not in warnings[0] and "{" not in warnings[0]  # names, never values
    assert round_trip(tokens) == tokens
    assert sqlite_store.save(KEY, tokens) is not None
    stored = sqlite_store.load(KEY)
    assert stored is not None and stored.tokens == tokens


def test_the_documented_depth_is_kept_and_one_more_level_is_dropped() -> None:
    tokens = parse(
        {
            "access_token": "at",
            "at_limit": nested(EXTRA_MAX_DEPTH),
            "over_limit": [nested(EXTRA_MAX_DEPTH)],
        }
    )
    assert list(tokens.extra) == ["at_limit"]
    assert round_trip(tokens) == tokens


def test_unknown_fields_are_kept_in_order_until_the_size_budget_is_spent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="keyturn")
    big = "x" * (EXTRA_MAX_SIZE // 2)
    tokens = parse(
        {"access_token": "at", "first": big, "second": big, "small": 1, "team": {"id": "T"}}
    )
    assert list(tokens.extra) == ["first", "small", "team"]
    size = len(json.dumps(tokens.model_dump(mode="json", context=REVEAL)["extra"]))
    assert size <= EXTRA_MAX_SIZE
    (warning,) = dropped_warnings(caplog)
    assert "second" in warning and big not in warning


def test_values_json_cannot_write_back_are_dropped() -> None:
    """Python's JSON reader accepts NaN and Infinity; what the stores write cannot hold them."""
    raw = b'{"access_token": "at", "nan": NaN, "inf": [Infinity], "fine": 1.5}'
    response = HttpResponse(200, {"content-type": "application/json"}, raw)
    tokens = flows.parse_token_response(GOOGLE, "exchange_code", response, START)
    assert tokens.extra == {"fine": 1.5}
    assert round_trip(tokens) == tokens


def test_a_token_set_built_by_a_plugin_is_bounded_too(caplog: pytest.LogCaptureFixture) -> None:
    """The bound lives in the model, so a plugin's own parser cannot let a deep field through."""
    caplog.set_level(logging.WARNING, logger="keyturn")
    tokens = TokenSet(
        provider="slack", access_token="xoxe", extra={"deep": nested(300), "ok": {"a": 1}}
    )
    assert tokens.extra == {"ok": {"a": 1}}
    assert any("slack" in m and "deep" in m for m in dropped_warnings(caplog))


def test_a_refresh_with_a_deep_field_is_saved_by_the_token_manager(
    http: Recorder, kt: keyturn.Keyturn, sqlite_store: SQLiteTokenStore
) -> None:
    """The issue this guards: the provider rotated, then the save failed and the grant was lost."""
    manager = TokenManager(kt, sqlite_store)
    manager.save(KEY, previous())
    http.queue(
        200,
        {"access_token": "at-new", "refresh_token": "rt-new", "expires_in": 3599, "x": nested(300)},
    )
    assert manager.get_access_token(KEY) == "at-new"
    stored = sqlite_store.load(KEY)
    assert stored is not None and stored.tokens.refresh_token is not None
    assert stored.tokens.refresh_token.get_secret_value() == "rt-new"


# -- lifetimes ------------------------------------------------------------------------------


def test_a_lifetime_of_1e300_is_capped_and_the_tokens_are_kept(
    caplog: pytest.LogCaptureFixture, sqlite_store: SQLiteTokenStore
) -> None:
    caplog.set_level(logging.WARNING, logger="keyturn")
    tokens = parse(
        {
            "access_token": "at-new",
            "refresh_token": "rt-new",
            "expires_in": 1e300,
            "refresh_token_expires_in": 1e300,
        }
    )
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == "rt-new"
    assert tokens.expires_at == START + flows.MAX_LIFETIME
    assert tokens.refresh_token_expires_at == START + flows.MAX_LIFETIME
    warnings = dropped_warnings(caplog)
    assert any("refresh_token_expires_in" in m for m in warnings)
    assert not any("1e+300" in m or "1e300" in m for m in warnings)
    assert round_trip(tokens) == tokens
    assert sqlite_store.save(KEY, tokens) is not None
    stored = sqlite_store.load(KEY)
    assert stored is not None and stored.tokens == tokens


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3599, 3599), ("3599", 3599), (1e300, flows.MAX_LIFETIME), ("1e300", flows.MAX_LIFETIME)],
)
def test_parse_expires_in_caps_at_the_maximum_lifetime(value: Any, expected: int) -> None:
    assert flows.parse_expires_in(value) == expected


def test_the_maximum_lifetime_outlasts_every_documented_one() -> None:
    """Ten years: GitHub's refresh tokens live 15897600 s (six months), Google's Testing ones
    604799 s, Microsoft's 90 days; the cap never shortens a real lifetime."""
    assert flows.MAX_LIFETIME == 10 * 365 * 86400
    assert flows.MAX_LIFETIME > 19 * 15897600


@pytest.mark.redis
def test_a_redis_store_expiring_with_the_tokens_saves_a_lifetime_of_1e300(
    redis_client: redis.Redis,
) -> None:
    clock = FakeClock()
    store = RedisTokenStore(redis_client, expire_with_tokens=True, clock=clock)
    tokens = parse(
        {
            "access_token": "at-new",
            "refresh_token": "rt-new",
            "expires_in": 3599,
            "refresh_token_expires_in": 1e300,
            "x": nested(300),
        }
    )
    assert store.save(KEY, tokens) is not None
    stored = store.load(KEY)
    assert stored is not None and stored.tokens == tokens
    ttl = redis_client.pttl(store.row_key(KEY))
    assert 0 < ttl <= flows.MAX_LIFETIME * 1000


def test_a_field_holding_the_mask_is_dropped_not_a_crash() -> None:
    """A TokenSet refuses the mask a default dump writes; a provider sending it costs the field."""
    tokens = parse({"access_token": "at", "refresh_token": "rt", "odd": {"v": "**********"}})
    assert tokens.refresh_token is not None and tokens.extra == {}
    assert round_trip(tokens) == tokens


# -- the shortcuts decide as the field-by-field path does -----------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from([MASK, "é" * 700, "\U0001f600" * 400, "x" * 3000]),
)
VALUES = st.one_of(
    st.recursive(
        SCALARS,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=8,
    ),
    st.builds(nested, st.integers(min_value=1, max_value=EXTRA_MAX_DEPTH + 2)),
)


@settings(max_examples=400, deadline=None)
@given(fields=st.dictionaries(st.text(max_size=12) | st.just(MASK), VALUES, max_size=6))
def test_the_shortcuts_keep_exactly_what_the_field_by_field_path_keeps(
    fields: dict[str, Any],
) -> None:
    slow = models._storable_fields(fields, "p", refuse_mask=False)
    if models._flat_and_small(fields) or models._storable_as_is(fields):
        assert slow == fields
    assert models.storable_extra(fields, "p") == slow
    kept = TokenSet(provider="p", access_token="at", extra=slow)
    assert load_tokens(dump_tokens(kept)) == kept


def test_a_profile_keeps_its_fields_but_one_nested_too_deep(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A session holding the profile must be writable: pydantic stops serialising near 255
    levels, so a raw field past EXTRA_MAX_DEPTH is dropped (named in the log, no value)."""
    raw = {"login": "ada", "masked_looking": "**********", "x_deep": nested(300), "ok": nested(3)}
    with caplog.at_level(logging.WARNING, logger="keyturn"):
        profile = keyturn.Profile(id="1", raw=raw)
    assert profile.raw == {"login": "ada", "masked_looking": "**********", "ok": nested(3)}
    assert profile.model_dump_json()  # writable
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "x_deep" in warnings[0] and "ada" not in warnings[0]
    shallow = keyturn.Profile(id="2", raw={"a": nested(EXTRA_MAX_DEPTH - 1)})
    assert shallow.raw == {"a": nested(EXTRA_MAX_DEPTH - 1)}
