"""The session read path's shortcuts give what the general code gives.

``GET /auth/session`` runs on every page load of a signed-in user, so a few steps take a
shorter road than the general one: the session cookie's JSON is validated into a JWT in one
pass, the cookie policy is one of two shared objects, JSON answers reuse one encoder, and an
unchanged token is recognised by identity before fields are compared. Each is held here to
the general result. (The direct JWE reader is held to joserfc in ``test_sealing.py``.)"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from keyturn import JWT, Keyturn, TokenSet, hookimpl
from keyturn.effects import run
from keyturn.models import REVEAL, Profile, RefreshFailure
from keyturn.plugins import get_plugin_manager
from keyturn.web import WebAuth, WebRequest, WebResponse
from keyturn.web.cookies import CookiePolicy
from keyturn.web.sealing import Sealer
from keyturn.web.strategies import _SECRET_PATHS, Current, JwtStrategy
from keyturn_google import GOOGLE
from tests.conftest import START, FakeClock

from ._site import SECRET, SESSION

# == JSON answers =============================================================================


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"csrfToken": "abc"},
        {"user": {"name": "Zoë \u2603 \U0001f600", "image": None}, "n": [1, 2.5, True]},
        {"nested": {"a": [{"b": {}}], "x": -0.0, "big": 2**70, "inf": float("inf")}},
        ["list", 1],
    ],
)
def test_a_json_answer_is_what_json_dumps_writes(data: Any) -> None:
    response = WebResponse.json(data, 201)
    assert response.body == json.dumps(data, separators=(",", ":")).encode()
    assert response.status == 201
    assert response.headers == [
        ("cache-control", "no-store"),
        ("content-type", "application/json"),
    ]


def test_a_json_answer_still_refuses_what_json_dumps_refuses() -> None:
    looped: dict[str, Any] = {}
    looped["self"] = looped
    with pytest.raises(ValueError, match="Circular reference"):
        WebResponse.json(looped)
    with pytest.raises(TypeError, match="not JSON serializable"):
        WebResponse.json({"when": datetime(2027, 1, 1, tzinfo=UTC)})


# == the cookie policy ========================================================================


def _client(clock: FakeClock, plugins: list[object] | None = None) -> Keyturn:
    return Keyturn(
        {"google": ("client-id", "client-secret-fake")},
        providers=[GOOGLE],
        clock=clock,
        plugin_manager=get_plugin_manager(plugins=plugins or [], environ={}),
        environ={},
    )


@pytest.mark.parametrize(
    ("options", "url", "secure"),
    [
        ({}, "http://127.0.0.1:8000/auth/session", False),
        ({}, "https://app.example/auth/session", True),
        ({"secure_cookies": True}, "http://127.0.0.1/auth/session", True),
        ({"secure_cookies": False}, "https://app.example/auth/session", False),
        ({"url": "https://app.example"}, "http://10.0.0.5/auth/session", True),
        ({"url": "http://app.example"}, "https://app.example/auth/session", False),
    ],
)
def test_the_shared_cookie_policies_equal_fresh_ones(
    clock: FakeClock, options: dict[str, Any], url: str, secure: bool
) -> None:
    web = WebAuth(_client(clock), secret=SECRET, **options)
    policy = web.settings.policy(WebRequest("GET", url))
    assert policy == CookiePolicy(secure=secure)
    assert repr(policy) == repr(CookiePolicy(secure=secure))
    assert policy.set("n", "v", 5) == CookiePolicy(secure=secure).set("n", "v", 5)


# == an unchanged token =======================================================================


class _Copies:
    """An app wrapper that hands back an equal copy (or, told to, a changed one) on read."""

    def __init__(self) -> None:
        self.change = False

    @hookimpl(wrapper=True)
    def keyturn_jwt(self, trigger: str) -> Any:
        token = yield
        if trigger != "read":
            return token
        if self.change:
            return token.model_copy(update={"claims": {"seen": True}})
        return JWT.model_validate(token.model_dump(context={"reveal_secrets": True}))


def _session(clock: FakeClock, plugins: list[object]) -> tuple[JwtStrategy, WebRequest, Any]:
    web = WebAuth(_client(clock, plugins), secret=SECRET)
    strategy = web.settings.strategy
    assert isinstance(strategy, JwtStrategy)
    tokens = TokenSet(
        provider="google",
        access_token="access-fake",
        refresh_token="refresh-fake",
        expires_at=int(clock()) + 3600,
    )
    jwt = JWT(tokens=tokens, user=Profile(id="1", name="Ada"))
    blank = WebRequest("GET", "http://127.0.0.1/auth/session")
    policy = web.settings.policy(blank)
    [cookie] = run(strategy.create(blank, policy, jwt), web.client.http_client)
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    request = WebRequest("GET", blank.url, cookies={SESSION: value})
    return strategy, request, policy


@pytest.mark.parametrize("plugins", [[], [_Copies()]], ids=["default", "equal-copy"])
def test_an_unchanged_token_writes_no_cookie(clock: FakeClock, plugins: list[object]) -> None:
    strategy, request, policy = _session(clock, plugins)
    current = run(strategy.open(request, policy), None)  # type: ignore[arg-type]
    assert current is not None
    after, cookies = run(strategy.refresh(request, policy, current), None)  # type: ignore[arg-type]
    assert after is current and cookies == []


def test_a_changed_token_is_written_again(clock: FakeClock) -> None:
    copies = _Copies()
    copies.change = True
    strategy, request, policy = _session(clock, [copies])
    current = run(strategy.open(request, policy), None)  # type: ignore[arg-type]
    assert current is not None
    after, cookies = run(strategy.refresh(request, policy, current), None)  # type: ignore[arg-type]
    assert after is not None and after.jwt.claims == {"seen": True}
    assert after.expires == current.expires
    [cookie] = cookies
    assert cookie.startswith(f"{SESSION}=")


# == the session cookie read in one pass ======================================================


def _general_read(sealer: Sealer, value: str) -> Current | None:
    """How a session cookie was read before: unseal to a dict, then validate the JWT."""
    payload = sealer.unseal(value)
    if payload is None:
        return None
    try:
        jwt = JWT.model_validate(payload.get("jwt"))
    except ValidationError:
        return None
    return Current(jwt=jwt, expires=int(payload["exp"]))


def _fields_set(model: Any) -> Any:
    """``model_fields_set`` of a model and of every model inside it."""
    if not isinstance(model, BaseModel):
        return None
    inner = {name: _fields_set(getattr(model, name)) for name in type(model).model_fields}
    return model.model_fields_set, {k: v for k, v in inner.items() if v is not None}


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


_TOKENS = {"provider": "google", "access_token": "access-fake", "expires_at": START + 3600}
_FULL_JWT = JWT(
    tokens=TokenSet(
        provider="github",
        access_token="gho_fake",
        refresh_token="ghr_fake",
        id_token="id-fake",
        expires_at=START + 3600,
        refresh_token_expires_at=START + 9000,
        scope=("read:user", "user:email"),
        extra={"n": [1, 2.5, None], "deep": {"x": {"y": "z"}}},
    ),
    user=Profile(id="42", name="Zoë", email="z@example.com", email_verified=True, raw={"a": 1}),
    error="RefreshAccessTokenError",
    refresh_failure=RefreshFailure(
        error="invalid_grant", status=400, details={"k": "v"}, permanent=True, at=START
    ),
    claims={"team": ["a", "b"], "big": 2**70, "inf": float("inf"), "f": 0.1, "u": "\u2603"},
)
#: Session cookie payloads: whether they make a session, and whether the one-pass reading
#: takes them (when it does not, the general reading decides).
_PAYLOADS: list[tuple[str, dict[str, Any], bool, bool]] = [
    ("full", {"jwt": _FULL_JWT.model_dump(mode="json", context=REVEAL)}, True, True),
    ("minimal", {"jwt": {"tokens": _TOKENS}}, True, True),
    ("integer user id", {"jwt": {"tokens": _TOKENS, "user": {"id": 7}}}, True, True),
    ("extra members", {"jwt": {"tokens": _TOKENS}, "v": 2, "note": [1]}, True, True),
    ("its own end", {"jwt": {"tokens": _TOKENS}, "exp": START + 5}, True, True),
    ("huge end", {"jwt": {"tokens": _TOKENS}, "exp": 2**70}, True, True),
    ("deep claims", {"jwt": {"tokens": _TOKENS, "claims": {"d": _nested(20)}}}, True, True),
    ("lone surrogate", {"jwt": {"tokens": _TOKENS, "claims": {"s": "\ud800"}}}, True, False),
    ("very deep claims", {"jwt": {"tokens": _TOKENS, "claims": {"d": _nested(300)}}}, True, False),
    ("expired", {"jwt": {"tokens": _TOKENS}, "exp": START}, False, False),
    ("end as text", {"jwt": {"tokens": _TOKENS}, "exp": str(START + 600)}, False, False),
    ("end as float", {"jwt": {"tokens": _TOKENS}, "exp": START + 600.0}, False, False),
    ("end as true", {"jwt": {"tokens": _TOKENS}, "exp": True}, False, False),
    ("no jwt", {}, False, False),
    ("jwt null", {"jwt": None}, False, False),
    ("unknown field", {"jwt": {"tokens": _TOKENS, "role": "admin"}}, False, False),
    ("masked token", {"jwt": {"tokens": {**_TOKENS, "access_token": "**********"}}}, False, False),
    ("no tokens", {"jwt": {"user": {"id": "1"}}}, False, False),
]


@pytest.mark.parametrize("packed", [False, True], ids=["json", "packed"])
@pytest.mark.parametrize(
    ("payload", "accepted", "quick"), [p[1:] for p in _PAYLOADS], ids=[p[0] for p in _PAYLOADS]
)
def test_the_one_pass_reading_gives_what_the_general_one_gives(
    clock: FakeClock,
    payload: dict[str, Any],
    accepted: bool,
    quick: bool,
    packed: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A cookie written before session cookies were compressed (JSON) reads as one written now.
    strategy, _, policy = _session(clock, [])
    value = strategy.sealer.seal(payload, 600, _SECRET_PATHS if packed else ())
    request = WebRequest("GET", "http://127.0.0.1/auth/session", cookies={SESSION: value})
    expected = _general_read(strategy.sealer, value)
    assert (expected is not None) == accepted
    if quick:  # the general reading must not be needed
        monkeypatch.setattr(strategy.sealer, "payload", None)
    got = strategy._read(request, policy)
    assert got == expected
    assert repr(got) == repr(expected)
    if got is not None and expected is not None:
        dumped = got.jwt.model_dump(context=REVEAL)
        assert repr(dumped) == repr(expected.jwt.model_dump(context=REVEAL))
        assert _fields_set(got.jwt) == _fields_set(expected.jwt)
        assert type(got.expires) is int


def test_a_refused_session_is_logged_as_the_general_reading_logs_it(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    strategy, _, policy = _session(clock, [])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"jwt": {"tokens": _TOKENS}, "exp": START}, "an expired keyturn.session-token cookie"),
        ({"jwt": None}, "a session cookie decrypted but held no session"),
    ]
    for payload, message in cases:
        value = strategy.sealer.seal(payload, 600)
        request = WebRequest("GET", "http://127.0.0.1/auth/session", cookies={SESSION: value})
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="keyturn.web"):
            assert strategy._read(request, policy) is None
        assert [r.getMessage() for r in caplog.records] == [f"{message}; treated as absent"]


def test_the_one_pass_reading_keeps_no_token_in_the_string_cache(clock: FakeClock) -> None:
    strategy, request, policy = _session(clock, [])
    first = strategy._read(request, policy)
    second = strategy._read(request, policy)
    assert first is not None and second is not None
    one, two = first.jwt.tokens.access_token, second.jwt.tokens.access_token
    assert one.get_secret_value() == two.get_secret_value() == "access-fake"
    # A string pydantic-core caches comes back as the very same object on the next parse.
    assert one.get_secret_value() is not two.get_secret_value()
