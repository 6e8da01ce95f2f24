"""Operations written once and driven both ways: keyturn.effects.

Each behaviour is checked through the blocking driver and the async one. The ``assert_type``
lines are checked by mypy (which runs over the tests in CI): the result of ``yield from`` an
effect has the effect's declared type, with no cast.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, assert_type

import httpx
import pytest

from keyturn import HttpRequest, HttpResponse, TokenSet
from keyturn.effects import Blocking, Effect, Operation, Shared, Sleep, arun, done, run
from keyturn.singleflight import SingleFlight
from keyturn.stores import MemoryTokenStore, StoredTokens
from keyturn.stores.effects import AcquireLease, LoadRow, ReleaseLease, SaveRow
from keyturn.transport import AsyncHttpClient, NetworkFailure, SyncHttpClient

T = TypeVar("T")


@dataclass(frozen=True)
class Double(Effect[int]):
    """A test effect with a typed result; records which driver performed it."""

    value: int
    seen: list[str] = field(default_factory=list)

    def perform(self, http: SyncHttpClient) -> int:
        self.seen.append("sync")
        return self.value * 2

    async def aperform(self, http: AsyncHttpClient) -> int:
        self.seen.append("async")
        return self.value * 2


@dataclass(frozen=True)
class Fail(Effect[str]):
    """A test effect whose performing raises."""

    error: BaseException

    def perform(self, http: SyncHttpClient) -> str:
        raise self.error

    async def aperform(self, http: AsyncHttpClient) -> str:
        raise self.error


@dataclass(frozen=True)
class ThreadOf(Blocking[int]):
    """A blocking call that says which thread ran it."""

    def call(self) -> int:
        return threading.get_ident()


@dataclass(frozen=True)
class WaitFor(Blocking[bool]):
    """Wait (up to 5 s) for an event set by the test."""

    event: threading.Event

    def call(self) -> bool:
        return self.event.wait(5)


def drive(mode: str, operation: Operation[T]) -> T:
    """Run ``operation`` with the blocking driver or, in a fresh event loop, the async one."""
    if mode == "sync":
        return run(operation, httpx.Client())
    return asyncio.run(arun(operation, httpx.AsyncClient()))


MODES = pytest.mark.parametrize("mode", ["sync", "async"])


@MODES
def test_a_result_comes_back_typed_and_each_driver_performs_its_own_way(mode: str) -> None:
    seen: list[str] = []

    def operation() -> Operation[str]:
        doubled = yield from Double(21, seen)
        assert_type(doubled, int)
        again = yield from Double(doubled, seen)
        return f"{doubled} {again}"

    assert drive(mode, operation()) == "42 84"
    assert seen == [mode, mode]


@MODES
def test_an_effects_exception_is_thrown_in_at_its_yield_and_can_be_handled(mode: str) -> None:
    def operation() -> Operation[str]:
        try:
            yield from Fail(LookupError("gone"))
        except LookupError as exc:
            recovered = yield from Double(1)
            return f"handled {exc} then {recovered}"
        return "not reached"

    assert drive(mode, operation()) == "handled gone then 2"


@MODES
def test_finally_blocks_still_perform_their_effects_when_an_effect_fails(mode: str) -> None:
    seen: list[str] = []

    def operation() -> Operation[None]:
        try:
            yield from Fail(RuntimeError("store down"))
        finally:
            yield from Double(0, seen)

    with pytest.raises(RuntimeError, match="store down"):
        drive(mode, operation())
    assert seen == [mode]


@MODES
def test_an_unhandled_error_leaves_the_driver_without_an_extra_context(mode: str) -> None:
    def operation() -> Operation[str]:
        return (yield from Fail(ValueError("bad")))

    with pytest.raises(ValueError, match="bad") as info:
        drive(mode, operation())
    assert info.value.__context__ is None


@MODES
def test_yielding_something_that_is_not_an_effect_is_a_type_error_at_that_yield(
    mode: str,
) -> None:
    def operation() -> Operation[str]:
        try:
            yield "GET /"  # type: ignore[misc]
        except TypeError as exc:
            return str(exc)
        return "not reached"

    assert "yielded str, not an effect" in drive(mode, operation())


@MODES
def test_done_is_an_operation_that_asks_for_nothing(mode: str) -> None:
    operation = done("ready")
    with pytest.raises(StopIteration) as stop:
        next(operation)
    assert stop.value.value == "ready"
    assert drive(mode, done("ready")) == "ready"


def test_a_blocking_effect_runs_in_place_for_run_and_in_a_worker_thread_for_arun() -> None:
    def operation() -> Operation[int]:
        return (yield from ThreadOf())

    here = threading.get_ident()
    assert drive("sync", operation()) == here
    assert drive("async", operation()) != here


def test_sleep_blocks_for_run_and_awaits_for_arun(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[tuple[str, float]] = []
    monkeypatch.setattr(time, "sleep", lambda seconds: slept.append(("time", seconds)))

    async def fake_sleep(seconds: float) -> None:
        slept.append(("asyncio", seconds))

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)

    def operation() -> Operation[None]:
        yield from Sleep(0.25)

    drive("sync", operation())
    drive("async", operation())
    assert slept == [("time", 0.25), ("asyncio", 0.25)]


def test_store_effects_carry_their_store_and_return_its_answers() -> None:
    store = MemoryTokenStore()
    tokens = TokenSet(provider="google", access_token="fake-access")

    def operation() -> Operation[tuple[StoredTokens | None, StoredTokens | None, bool]]:
        saved = yield from SaveRow(store, "user-1", tokens, version=0, data={"n": 1})
        assert_type(saved, StoredTokens | None)
        owner = yield from AcquireLease(store, "user-1", 30.0)
        assert_type(owner, str | None)
        assert owner is not None
        taken = yield from AcquireLease(store, "user-1", 30.0)
        yield from ReleaseLease(store, "user-1", owner)
        loaded = yield from LoadRow(store, "user-1")
        return saved, loaded, taken is None

    saved, loaded, refused = drive("async", operation())
    assert saved is not None and loaded == saved
    assert loaded.data == {"n": 1}
    assert refused


@MODES
def test_shared_runs_the_operation_once_for_callers_that_overlap(mode: str) -> None:
    flight: SingleFlight[int] = SingleFlight()
    started = 0
    gate = threading.Event()

    def slow() -> Operation[int]:
        nonlocal started
        started += 1
        yield from WaitFor(gate)  # the other callers arrive while this one is out
        return 7

    def caller() -> Operation[int]:
        return (yield from Shared(flight, "key", slow))

    if mode == "sync":
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda: results.append(run(caller(), httpx.Client())))
            for _ in range(5)
        ]
        for thread in threads:
            thread.start()
        _wait_for(lambda: flight.stats().waiters == 4)
        gate.set()
        for thread in threads:
            thread.join(5)
    else:

        async def main() -> list[int]:
            http = httpx.AsyncClient()
            tasks = [asyncio.create_task(arun(caller(), http)) for _ in range(5)]
            for _ in range(1000):
                if flight.stats().waiters == 4:
                    break
                await asyncio.sleep(0.005)
            gate.set()
            return list(await asyncio.gather(*tasks))

        results = asyncio.run(main())
    assert results == [7] * 5
    assert started == 1


def test_a_cancelled_caller_still_runs_the_operations_finally_effects() -> None:
    released: list[str] = []

    @dataclass(frozen=True)
    class Forever(Effect[None]):
        def perform(self, http: SyncHttpClient) -> None:
            raise AssertionError("async only")

        async def aperform(self, http: AsyncHttpClient) -> None:
            await asyncio.Event().wait()

    def operation() -> Operation[None]:
        try:
            yield from Forever()
        finally:
            yield from Double(0, released)

    async def main() -> None:
        task = asyncio.create_task(arun(operation(), httpx.AsyncClient()))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert released == ["async"]


@MODES
def test_an_http_request_is_an_effect_sent_with_the_drivers_client(mode: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"path": request.url.path})

    def operation() -> Operation[HttpResponse]:
        response = yield from HttpRequest("GET", "https://provider.example/userinfo")
        assert_type(response, HttpResponse)
        return response

    transport = httpx.MockTransport(answer)
    if mode == "sync":
        response = run(operation(), httpx.Client(transport=transport))
    else:
        response = asyncio.run(arun(operation(), httpx.AsyncClient(transport=transport)))
    assert response.status == 200
    assert response.data() == {"path": "/userinfo"}


@MODES
def test_a_request_with_no_answer_is_thrown_in_as_a_network_failure_without_context(
    mode: str,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def operation() -> Operation[NetworkFailure]:
        try:
            yield HttpRequest.form("POST", "https://provider.example/token", {"code": "c"})
        except NetworkFailure as failure:
            return failure
        raise AssertionError("no failure")

    transport = httpx.MockTransport(refuse)
    if mode == "sync":
        failure = run(operation(), httpx.Client(transport=transport))
    else:
        failure = asyncio.run(arun(operation(), httpx.AsyncClient(transport=transport)))
    assert failure.code == "network_error"
    assert failure.detail == "ConnectError talking to provider.example"
    assert failure.__context__ is None and failure.__cause__ is None


def _wait_for(condition: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


def test_a_blocking_app_never_imports_asyncio() -> None:
    code = (
        "import sys, keyturn, keyturn.stores, keyturn.effects;"
        "from keyturn.stores import MemoryTokenStore, TokenManager;"
        "manager = TokenManager(keyturn.Keyturn(environ={}), MemoryTokenStore());"
        "manager.save('k', keyturn.TokenSet(provider='google', access_token='fake'));"
        "manager.get_tokens('k');"
        "print('asyncio' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
