"""Hook calls without pluggy's overhead: same outcomes, and never stale.

``KeyturnPluginManager.caller`` plans each hook call once per generation of the manager
(keyturn/dispatch.py). These tests check the two promises: a planned call gives what
``pm.hook.<name>(...)`` gives, result or exception, for every shape of implementations; and
any change to the manager (a plugin registered or unregistered, a block, a monitor) is seen
by the very next call, including by clients built before the change.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator
from typing import Any, cast

import pluggy
import pytest

import keyturn
from keyturn import callbacks
from keyturn.hookspecs import hookimpl, hookspec
from keyturn.models import JWT, REVEAL, Profile, Session, TokenSet
from keyturn.plugins import KeyturnPluginManager
from tests.conftest import CREDENTIALS, START, FakeClock

# -- the fast path is taken, and left as soon as something changes ------------------------


def fresh_client(pm: KeyturnPluginManager, clock: FakeClock) -> keyturn.Keyturn:
    return keyturn.Keyturn(CREDENTIALS, clock=clock, plugin_manager=pm)


def signed_in(client: keyturn.Keyturn) -> JWT:
    tokens = TokenSet(
        provider="google", access_token="at-1", refresh_token="rt-1", expires_at=START + 3600
    )
    return client.jwt(tokens=tokens, profile=Profile(id="7", name="Ada"))


class SessionWrapper:
    """An app wrapper that marks every session it sees."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl(wrapper=True)
    def keyturn_session(self, token: JWT) -> Generator[None, Session, Session]:
        session = yield
        self.calls += 1
        return session.model_copy(update={"claims": {**session.claims, "wrapped": True}})


class JwtWrapper:
    @hookimpl(wrapper=True)
    def keyturn_jwt(self, trigger: str) -> Generator[None, JWT, JWT]:
        token = yield
        return token.model_copy(update={"claims": {**token.claims, "seen": trigger}})


def test_only_the_default_is_called_directly(pm: KeyturnPluginManager) -> None:
    assert pm.caller("keyturn_session") is callbacks.keyturn_session
    assert pm.caller("keyturn_jwt") is callbacks.keyturn_jwt


def test_a_wrapper_registered_after_the_client_still_runs(
    pm: KeyturnPluginManager, clock: FakeClock
) -> None:
    client = fresh_client(pm, clock)
    token = signed_in(client)
    assert "wrapped" not in client.session(client.jwt(token)).claims  # plans now cached

    wrapper = SessionWrapper()
    pm.register(wrapper)
    pm.register(JwtWrapper())
    read = client.jwt(token)
    assert read.claims == {"seen": "read"}
    assert client.session(read).claims == {"seen": "read", "wrapped": True}
    assert wrapper.calls == 1

    pm.unregister(wrapper)
    assert client.session(read).claims == {"seen": "read"}
    assert wrapper.calls == 1


def test_blocking_a_plugin_is_seen_at_once(pm: KeyturnPluginManager, clock: FakeClock) -> None:
    client = fresh_client(pm, clock)
    token = signed_in(client)
    wrapper = SessionWrapper()
    pm.register(wrapper, name="app-wrapper")
    assert client.session(token).claims == {"wrapped": True}
    pm.set_blocked("app-wrapper")
    assert client.session(token).claims == {}
    assert pm.unblock("app-wrapper")
    assert pm.caller("keyturn_session") is callbacks.keyturn_session


@pytest.mark.parametrize("how", ["monitoring", "tracing"])
def test_monitoring_sees_every_call_while_installed(
    pm: KeyturnPluginManager, clock: FakeClock, how: str
) -> None:
    client = fresh_client(pm, clock)
    token = signed_in(client)
    client.session(client.jwt(token))  # plans cached before the monitor arrives
    seen: list[str] = []
    if how == "monitoring":
        undo = pm.add_hookcall_monitoring(
            lambda name, impls, kwargs: seen.append(name), lambda *args: None
        )
    else:
        pm.trace.root.setwriter(lambda message: seen.append(message))
        undo = pm.enable_tracing()
    client.session(client.jwt(token))
    assert any("keyturn_jwt" in entry for entry in seen)
    assert any("keyturn_session" in entry for entry in seen)

    undo()
    count = len(seen)
    client.session(client.jwt(token))
    assert len(seen) == count
    assert pm.caller("keyturn_session") is callbacks.keyturn_session


def test_a_monitor_left_after_another_is_undone_still_sees_calls(
    pm: KeyturnPluginManager,
) -> None:
    first: list[str] = []
    second: list[str] = []
    undo_first = pm.add_hookcall_monitoring(lambda n, i, k: first.append(n), lambda *a: None)
    undo_second = pm.add_hookcall_monitoring(lambda n, i, k: second.append(n), lambda *a: None)
    token = JWT(tokens=TokenSet(provider="google", access_token="at"))
    undo_second()
    pm.caller("keyturn_session")(token=token)
    assert first == ["keyturn_session"]
    undo_first()
    undo_first()  # twice: counted once
    assert pm.caller("keyturn_session") is callbacks.keyturn_session


def test_a_plain_pluggy_manager_is_used_through_pluggy(clock: FakeClock) -> None:
    pm = pluggy.PluginManager("keyturn")
    pm.add_hookspecs(keyturn.hookspecs)
    pm.register(keyturn.defaults)
    pm.register(callbacks)
    wrapper = SessionWrapper()
    pm.register(wrapper)
    client = keyturn.Keyturn(CREDENTIALS, clock=clock, plugin_manager=pm)  # type: ignore[arg-type]
    assert client.session(signed_in(client)).claims == {"wrapped": True}
    assert wrapper.calls == 1


def test_old_style_hookwrappers_go_through_pluggy(pm: KeyturnPluginManager) -> None:
    class OldStyle:
        @hookimpl(hookwrapper=True)
        def keyturn_session(self) -> Generator[None, Any, None]:
            yield

    pm.register(OldStyle())
    assert isinstance(pm.caller("keyturn_session"), pluggy.HookCaller)


# -- a planned call gives what pluggy gives -----------------------------------------------


class ProbeSpec:
    @hookspec(firstresult=True)
    def keyturn_probe(self, x: int, log: list[str]) -> Any:
        """A first-result hook for comparing planned calls with pluggy's."""


class Boom(Exception):
    pass


def plain(name: str, returns: Any = None, raises: bool = False, **opts: Any) -> Callable[..., Any]:
    @hookimpl(**opts)
    def keyturn_probe(x: int, log: list[str]) -> Any:
        log.append(name)
        if raises:
            raise Boom(name)
        return returns if returns is None else f"{returns}:{x}"

    return cast(Callable[..., Any], keyturn_probe)


def wrapper(name: str, behaviour: str, **opts: Any) -> Callable[..., Any]:
    @hookimpl(wrapper=True, **opts)
    def keyturn_probe(log: list[str]) -> Generator[None, Any, Any]:
        log.append(f"{name}>")
        if behaviour == "no-yield":
            return "never"
        try:
            result = yield
        except Boom as exc:
            log.append(f"{name}!")
            if behaviour == "swallow":
                return f"{name} swallowed {exc}"
            raise
        log.append(f"<{name}")
        if behaviour == "raise":
            raise Boom(f"{name} after")
        if behaviour == "second-yield":
            yield
        if behaviour == "replace":
            return f"{name}({result})"
        return result

    return cast(Callable[..., Any], keyturn_probe)


IMPLS: dict[str, Callable[[], Callable[..., Any]]] = {
    "none": lambda: plain("none"),
    "value": lambda: plain("value", "v"),
    "raises": lambda: plain("raises", raises=True),
    "first": lambda: plain("first", "f", tryfirst=True),
    "last": lambda: plain("last", "l", trylast=True),
    "pass": lambda: wrapper("pass", "pass"),
    "replace": lambda: wrapper("replace", "replace"),
    "swallow": lambda: wrapper("swallow", "swallow"),
    "raise": lambda: wrapper("raise", "raise"),
    "outer": lambda: wrapper("outer", "replace", tryfirst=True),
    "no-yield": lambda: wrapper("no-yield", "no-yield"),
    "second-yield": lambda: wrapper("second-yield", "second-yield"),
}

WELL_BEHAVED = sorted(set(IMPLS) - {"no-yield", "second-yield"})
SHAPES = [
    # every order of one or two implementations, and every set of three well-behaved ones
    *(combo for size in (1, 2) for combo in itertools.permutations(sorted(IMPLS), size)),
    *itertools.combinations(WELL_BEHAVED, 3),
    *itertools.combinations(reversed(WELL_BEHAVED), 3),
]


def outcome(call: Callable[..., Any]) -> tuple[str, Any, list[str]]:
    log: list[str] = []
    try:
        return ("result", call(x=3, log=log), log)
    except Exception as exc:
        message = str(exc)
        if isinstance(exc, RuntimeError):  # pluggy names the file and line of the wrapper
            message = message.split(" ")[-1] + message.split(" ")[2]
        return (type(exc).__name__, message, log)


@pytest.mark.parametrize("shape", SHAPES, ids="+".join)
def test_a_planned_call_gives_what_pluggy_gives(shape: tuple[str, ...]) -> None:
    pm = KeyturnPluginManager()
    pm.add_hookspecs(ProbeSpec)
    for name in shape:
        pm.register(type(name, (), {"keyturn_probe": staticmethod(IMPLS[name]())})(), name=name)
    planned = pm.caller("keyturn_probe")
    assert not isinstance(planned, pluggy.HookCaller)
    assert outcome(planned) == outcome(pm.hook.keyturn_probe)


# -- Session.from_jwt equals the validated Session ------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        JWT(tokens=TokenSet(provider="google", access_token="at")),
        JWT(
            tokens=TokenSet(
                provider="github",
                access_token="gho_x",
                refresh_token="ghr_y",
                expires_at=START + 10,
                id_token="id.token.here",
            ),
            user=Profile(id="1", name="Ada", email="ada@example.com", raw={"login": "ada"}),
            error="RefreshAccessTokenError",
            claims={"role": "admin", "nested": {"a": [1, 2]}},
        ),
    ],
)
def test_session_from_jwt_equals_the_validated_session(token: JWT) -> None:
    validated = Session(
        provider=token.tokens.provider,
        user=token.user,
        access_token=token.tokens.access_token,
        expires_at=token.tokens.expires_at,
        error=token.error,
        claims=token.claims,
    )
    built = Session.from_jwt(token)
    assert built == validated
    assert built.model_dump() == validated.model_dump()
    assert built.model_dump(mode="json", context=REVEAL) == validated.model_dump(
        mode="json", context=REVEAL
    )
    assert built.model_dump_json() == validated.model_dump_json()
    assert repr(built) == repr(validated)
    assert str(built) == str(validated)
    assert built.model_fields_set == validated.model_fields_set
    assert Session.model_validate(built.model_dump(context=REVEAL)) == built
    assert built.model_copy(update={"error": "x"}).error == "x"
    with pytest.raises(Exception, match="frozen"):
        built.error = "changed"  # type: ignore[misc]
    assert "refresh" not in repr(built) and "ghr_y" not in built.model_dump_json()
    # its claims are its own, as a validated Session's are
    built.claims["added"] = True
    assert "added" not in token.claims
