"""Hook calls without pluggy's overhead: same outcomes, and never stale.

``KeyturnPluginManager.caller`` plans each hook call once per generation of the manager
(keyturn/dispatch.py). These tests check the two promises: a planned call gives what
``pm.hook.<name>(...)`` gives, result or exception, for every shape of implementations; and
any change to the manager (a plugin registered or unregistered, a block, a monitor) is seen
by the very next call, including by clients built before the change.
"""

from __future__ import annotations

import gc
import itertools
import sys
from collections.abc import Callable, Generator, Iterator
from typing import Any, cast

import pluggy
import pytest

import keyturn
from keyturn import callbacks
from keyturn.dispatch import Passthrough, plan
from keyturn.errors import ConfigurationError, ProviderError
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
    assert read == pm.hook.keyturn_jwt(
        token=token, trigger="read", tokens=None, profile=None, error=None, now=START
    )
    assert client.session(read).claims == {"seen": "read", "wrapped": True}
    assert wrapper.calls == 1
    assert client.session(read) == pm.hook.keyturn_session(token=read)
    assert wrapper.calls == 3

    pm.unregister(wrapper)
    assert client.session(read).claims == {"seen": "read"}
    assert wrapper.calls == 3


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


def raising(name: str, exception: type[BaseException]) -> Callable[..., Any]:
    @hookimpl
    def keyturn_probe(x: int, log: list[str]) -> Any:
        log.append(name)
        raise exception(name)

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
            if behaviour == "stubborn":
                yield from stubborn_yield(name, log)
            raise
        except BaseException as exc:  # StopIteration, GeneratorExit
            log.append(f"{name}!{type(exc).__name__}")
            if behaviour == "catch-all":
                return f"{name} caught {type(exc).__name__}"
            raise
        log.append(f"<{name}")
        if behaviour == "raise":
            raise Boom(f"{name} after")
        if behaviour == "second-yield":
            yield
        if behaviour == "stubborn":
            yield from stubborn_yield(name, log)
        if behaviour == "replace":
            return f"{name}({result})"
        return result

    return cast(Callable[..., Any], keyturn_probe)


def stubborn_yield(name: str, log: list[str]) -> Iterator[None]:
    """A second yield that ignores the first GeneratorExit (closing it again ends it)."""
    try:
        yield
    except GeneratorExit:
        log.append(f"{name} ignores exit")
    try:
        yield
    except GeneratorExit:
        log.append(f"{name} exits")
        raise


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
    "stubborn": lambda: wrapper("stubborn", "stubborn"),
    "catch-all": lambda: wrapper("catch-all", "catch-all"),
    "stop": lambda: raising("stop", StopIteration),
    "exit": lambda: raising("exit", GeneratorExit),
}

WELL_BEHAVED = sorted(set(IMPLS) - {"no-yield", "second-yield", "stubborn"})
SHAPES = [
    # every order of one or two implementations, and every set of three well-behaved ones
    *(combo for size in (1, 2) for combo in itertools.permutations(sorted(IMPLS), size)),
    *itertools.combinations(WELL_BEHAVED, 3),
    *itertools.combinations(reversed(WELL_BEHAVED), 3),
]


@pytest.fixture(scope="module", autouse=True)
def frozen_heap() -> Iterator[None]:
    """Everything alive before these tests is frozen (``gc.freeze``), so the collection each
    :func:`outcome` makes walks only what the call made, not the whole test session's heap."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def outcome(call: Callable[..., Any]) -> tuple[str, Any, list[str]]:
    """What a call gives: its result or exception, and the log of what ran, garbage included.

    The log is read after the call's generators are collected, so a wrapper that runs again
    when it is finalized shows there too; an exception raised while finalizing is logged.
    """
    log: list[str] = []
    unraisable: list[str] = []
    hook = sys.unraisablehook
    sys.unraisablehook = lambda raised: unraisable.append(
        f"unraisable {type(raised.exc_value).__name__}"
    )
    try:
        got = _outcome(call, log)
        gc.collect()
    finally:
        sys.unraisablehook = hook
    return (*got, log + unraisable)


def _outcome(call: Callable[..., Any], log: list[str]) -> tuple[str, Any]:
    try:
        return ("result", call(x=3, log=log))
    except BaseException as exc:  # GeneratorExit too: an implementation may raise it
        message = str(exc)
        if isinstance(exc, RuntimeError) and message.startswith("wrap_controller"):
            # pluggy names the file and line of the wrapper
            message = message.split(" ")[-1] + message.split(" ")[2]
        chain = (type(exc.__cause__).__name__, type(exc.__context__).__name__)
        return (type(exc).__name__, (message, chain))


@pytest.mark.parametrize("shape", SHAPES, ids="+".join)
def test_a_planned_call_gives_what_pluggy_gives(shape: tuple[str, ...]) -> None:
    pm = KeyturnPluginManager()
    pm.add_hookspecs(ProbeSpec)
    for name in shape:
        pm.register(type(name, (), {"keyturn_probe": staticmethod(IMPLS[name]())})(), name=name)
    planned = pm.caller("keyturn_probe")
    assert not isinstance(planned, pluggy.HookCaller)
    assert outcome(planned) == outcome(pm.hook.keyturn_probe)


def test_each_shape_is_written_for_its_implementations() -> None:
    """One wrapper, several, none: each shape gets its own call function, not a loop."""
    sources = {}
    for shape in [
        ("value",),
        ("pass", "value"),
        ("pass", "value", "none"),
        ("outer", "pass", "value"),
    ]:
        pm = KeyturnPluginManager()
        pm.add_hookspecs(ProbeSpec)
        for name in shape:
            pm.register(type(name, (), {"keyturn_probe": staticmethod(IMPLS[name]())})(), name=name)
        planned = pm.caller("keyturn_probe")
        sources[shape] = planned.__doc__ or ""
    assert sources[("value",)] == ""  # a single plain implementation is called directly
    assert "_kt_drive" in sources[("pass", "value")]
    assert sources[("pass", "value", "none")].count("_kt_r = _kt_p") == 2
    assert "_kt_unwind(_kt_t, _kt_r, None)" in sources[("outer", "pass", "value")]


class PassSpec:
    @hookspec(firstresult=True)
    def keyturn_pass(self, mode: str, x: Any, log: list[str]) -> Any:
        """A first-result hook whose last implementation may be passed through."""


class Echo:
    """Returns ``x`` unchanged when ``mode`` is ``"read"`` (a Passthrough's promise)."""

    @hookimpl
    def keyturn_pass(self, mode: str, x: Any, log: list[str]) -> Any:
        log.append("echo")
        if x is None:
            raise Boom("echo needs x")
        return x if mode == "read" else f"echo:{mode}:{x}"


class PassWrapper:
    @hookimpl(wrapper=True)
    def keyturn_pass(self, mode: str, log: list[str]) -> Generator[None, Any, Any]:
        log.append("wrap>")
        try:
            result = yield
        except Boom:
            log.append("wrap!")
            raise
        log.append("<wrap")
        return ("wrapped", result)


class Declines:
    @hookimpl(tryfirst=True)
    def keyturn_pass(self, x: Any, log: list[str]) -> Any:
        log.append("declines")
        return None


@pytest.mark.parametrize("others", [(), (PassWrapper,), (PassWrapper, Declines), (Declines,)])
@pytest.mark.parametrize(("mode", "x"), [("read", "t"), ("read", None), ("write", "t")])
def test_a_passthrough_hands_its_argument_on_without_the_call(
    others: tuple[type, ...], mode: str, x: Any
) -> None:
    pm = KeyturnPluginManager()
    pm.add_hookspecs(PassSpec)
    echo = Echo()
    pm.register(echo)
    for plugin in others:
        pm.register(plugin())
    planned = plan(
        pm.hook.keyturn_pass,
        {echo.keyturn_pass: Passthrough(when="mode", equals="read", returns="x")},
    )
    assert not isinstance(planned, pluggy.HookCaller)

    def run(call: Callable[..., Any]) -> tuple[Any, list[str]]:
        log: list[str] = []
        try:
            return call(mode=mode, x=x, log=log), log
        except Boom as exc:
            return str(exc), log

    (result, log), (expected, pluggy_log) = run(planned), run(pm.hook.keyturn_pass)
    assert result == expected
    skipped = mode == "read" and x is not None
    assert [entry for entry in pluggy_log if entry != "echo"] == [
        entry for entry in log if entry != "echo"
    ]
    if not others:
        # Echo alone is the plan itself: nothing to hand the argument to, nothing skipped.
        assert planned == echo.keyturn_pass
        skipped = False
    assert ("echo" in log) is not skipped
    assert "echo" in pluggy_log


@pytest.fixture
def default_calls() -> Iterator[list[str]]:
    """The triggers keyturn's default ``keyturn_jwt`` was called with, seen by a profiler."""
    triggers: list[str] = []
    code = callbacks.keyturn_jwt.__code__

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is code:
            triggers.append(frame.f_locals["trigger"])

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield triggers
    finally:
        sys.setprofile(previous)


JWT_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("read", {}),
    ("read-no-token", {"token": None}),
    ("signIn", {"trigger": "signIn", "tokens": TokenSet(provider="google", access_token="at-2")}),
    ("signIn-no-tokens", {"trigger": "signIn", "token": None}),
    ("refresh", {"trigger": "refresh", "tokens": TokenSet(provider="google", access_token="at-3")}),
    (
        "refreshError",
        {
            "trigger": "refreshError",
            "error": ProviderError(
                provider="google",
                operation="refresh",
                error="invalid_grant",
                status=400,
                permanent=True,
            ),
        },
    ),
]


@pytest.mark.parametrize("wrappers", [(), (JwtWrapper,), (JwtWrapper, JwtWrapper)])
@pytest.mark.parametrize(("case", "changes"), JWT_CALLS, ids=[case for case, _ in JWT_CALLS])
def test_keyturn_jwt_planned_gives_what_pluggy_gives(
    pm: KeyturnPluginManager,
    default_calls: list[str],
    wrappers: tuple[type, ...],
    case: str,
    changes: dict[str, Any],
) -> None:
    """On a read with a token, the default is not called: the wrappers get the token itself."""
    token = JWT(tokens=TokenSet(provider="google", access_token="at-1"), claims={"k": 1})
    for plugin in wrappers:
        pm.register(plugin())
    arguments: dict[str, Any] = {
        "token": token,
        "trigger": "read",
        "tokens": None,
        "profile": None,
        "error": None,
        "now": START,
    }
    arguments.update(changes)

    def run(call: Callable[..., Any]) -> tuple[Any, ...]:
        try:
            result = call(**arguments)
        except ConfigurationError as exc:
            return ("raised", str(exc))
        return ("result", result, result is token)

    planned = run(pm.caller("keyturn_jwt"))
    planned_calls = list(default_calls)
    assert planned == run(pm.hook.keyturn_jwt)
    assert default_calls[len(planned_calls) :] == [arguments["trigger"]]  # pluggy calls it
    skipped = not wrappers or (arguments["trigger"] == "read" and arguments["token"] is not None)
    if not wrappers:
        # The default alone is the plan itself; the client skips it on a read.
        assert pm.caller("keyturn_jwt") is callbacks.keyturn_jwt
        skipped = False
    assert planned_calls == ([] if skipped else [arguments["trigger"]])


def test_the_client_skips_the_default_under_a_wrapper_only_on_a_read(
    pm: KeyturnPluginManager, clock: FakeClock, default_calls: list[str]
) -> None:
    client = fresh_client(pm, clock)
    pm.register(JwtWrapper())
    token = signed_in(client)
    assert default_calls == ["signIn"]
    assert client.jwt(token).claims == {"seen": "read"}
    assert default_calls == ["signIn"]
    pm.register(Declines())  # another plugin: still planned, the default still skipped
    client.jwt(token)
    assert default_calls == ["signIn"]


def test_a_plan_made_while_the_manager_changes_is_not_kept(
    pm: KeyturnPluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrapper = SessionWrapper()
    real_plan = plan

    def plan_while_registering(caller: Any, passthrough: Any) -> Any:
        made = real_plan(caller, passthrough)  # made from what is there now
        if not pm.is_registered(wrapper):
            pm.register(wrapper)  # another thread registers while this plan is made
        return made

    monkeypatch.setattr("keyturn.plugins.plan", plan_while_registering)
    token = JWT(tokens=TokenSet(provider="google", access_token="at"))
    assert pm.caller("keyturn_session") is callbacks.keyturn_session  # for the call under way
    assert "keyturn_session" not in pm.plans
    assert pm.caller("keyturn_session")(token=token).claims == {"wrapped": True}
    assert "keyturn_session" in pm.plans
    pm.unregister(wrapper)
    assert pm.plans == {}


def test_argument_names_the_generated_code_uses_go_through_pluggy() -> None:
    class OddSpec:
        @hookspec(firstresult=True)
        def keyturn_odd(self, _kt_r: int) -> Any:
            """An argument named as the generated code's own variables."""

    class Odd:
        @hookimpl(wrapper=True)
        def keyturn_odd(self, _kt_r: int) -> Generator[None, Any, Any]:
            return (yield)

        @hookimpl
        def keyturn_other(self) -> None:
            pass

    pm = KeyturnPluginManager()
    pm.add_hookspecs(OddSpec)
    pm.register(Odd())
    assert isinstance(pm.caller("keyturn_odd"), pluggy.HookCaller)


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
