"""Operations written once for blocking and async callers: generators of typed effects.

Every keyturn operation that does I/O (a code exchange, a refresh under a store's lease, a web
request) is a generator. When it needs the outside world it yields an :class:`Effect` (an HTTP
request, a store read, a lease, a pause), and a *driver* performs the effect and sends the
result back in, or throws in the exception it raised. The operation decides everything; the
driver only performs. :func:`run` drives with blocking calls (``Keyturn``, ``TokenManager``,
``WebAuth``), :func:`arun` with ``await`` (``AsyncKeyturn``, ``AsyncTokenManager``,
``AsyncWebAuth``). ``httpx.Auth.auth_flow`` serves httpx's two clients the same way.

An effect's type parameter is its result: ``row = yield from LoadRow(store, key)`` gives
``row`` the type ``StoredTokens | None`` for mypy, and each effect implements
:meth:`Effect.perform` and :meth:`Effect.aperform` returning exactly that type. Provider flows
(:data:`keyturn.http.Flow`) are operations whose only effect is :class:`~keyturn.HttpRequest`,
so ``response = yield request`` in a plugin's flow and ``yield from flow`` in an operation
both work.

Exceptions travel as in plain code: an exception raised while performing an effect is thrown
into the operation at its ``yield``, where ``try``/``except``/``finally`` see it, so
``finally: yield from ReleaseLease(...)`` releases a lease whatever happened. An operation
that needs no I/O on some path simply returns; :func:`done` makes a value into an operation
for an interface whose other implementations do I/O.

What an effect needs (a token store, a single-flight) it carries itself; the drivers pass only
the HTTP client, the one thing that differs between a blocking and an async caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

if TYPE_CHECKING:
    from .singleflight import SingleFlight
    from .transport import AsyncHttpClient, SyncHttpClient

__all__ = ["Blocking", "Effect", "Operation", "Shared", "Sleep", "arun", "done", "run"]

R = TypeVar("R")
T = TypeVar("T")

#: A generator that yields effects, is sent their results, and returns a ``T``.
Operation = Generator["Effect[Any]", Any, T]


class Effect(Generic[R]):
    """Something an operation asks its driver to do; ``R`` is what the driver sends back.

    ``result = yield from effect`` in an operation yields the effect and evaluates to its
    result, typed ``R``. Subclasses implement both :meth:`perform` and :meth:`aperform`.
    """

    __slots__ = ()

    def __iter__(self) -> Generator[Effect[R], Any, R]:
        result = yield self
        return cast(R, result)

    def perform(self, http: SyncHttpClient) -> R:
        """Do it, blocking.

        :param http: the blocking HTTP client of the driver's ``Keyturn``.
        :return: the result sent back into the operation.
        """
        raise NotImplementedError

    async def aperform(self, http: AsyncHttpClient) -> R:
        """Do it, awaiting.

        :param http: the async HTTP client of the driver's ``AsyncKeyturn``.
        :return: the result sent back into the operation.
        """
        raise NotImplementedError


class Blocking(Effect[R]):
    """An effect that is one short blocking call, such as a token store's method.

    Blocking drivers call :meth:`call` in place; async drivers run it in a worker thread, so a
    store waiting on its own lock never blocks the event loop.
    """

    __slots__ = ()

    def call(self) -> R:
        """The call itself."""
        raise NotImplementedError

    def perform(self, http: SyncHttpClient) -> R:
        return self.call()

    async def aperform(self, http: AsyncHttpClient) -> R:
        import asyncio  # here, not at the top: blocking-only apps never import asyncio

        return await asyncio.to_thread(self.call)


@dataclass(frozen=True, slots=True)
class Sleep(Effect[None]):
    """Pause for ``seconds``: ``time.sleep`` for a blocking driver, ``asyncio.sleep`` else."""

    seconds: float

    def perform(self, http: SyncHttpClient) -> None:
        time.sleep(self.seconds)

    async def aperform(self, http: AsyncHttpClient) -> None:
        import asyncio

        await asyncio.sleep(self.seconds)


@dataclass(frozen=True, slots=True)
class Shared(Effect[T]):
    """Run ``operation()`` once for every caller that asks for ``key`` at the same time.

    The first caller drives the operation through ``flight`` (a
    :class:`~keyturn.singleflight.SingleFlight`); the others wait for its outcome, threads
    with :meth:`~keyturn.singleflight.SingleFlight.call`, tasks with
    :meth:`~keyturn.singleflight.SingleFlight.acall` (in a task of its own, so a cancelled
    caller does not cancel the work). The operation is driven by the same kind of driver as
    the caller's.
    """

    flight: SingleFlight[T]
    key: str
    operation: Callable[[], Operation[T]]

    def perform(self, http: SyncHttpClient) -> T:
        return self.flight.call(self.key, lambda: run(self.operation(), http))

    async def aperform(self, http: AsyncHttpClient) -> T:
        return await self.flight.acall(self.key, lambda: arun(self.operation(), http))


def done(value: T) -> Operation[T]:
    """An operation that asks for nothing and returns ``value``.

    For a method that must return an operation because other implementations of its
    interface do I/O (a session kept in a cookie needs no store to be read).
    """
    yield from ()
    return value


class _Steps(Generic[T]):
    """An operation advanced one effect at a time; the drivers only perform what it yields."""

    __slots__ = ("error", "operation", "result", "value")

    def __init__(self, operation: Operation[T]) -> None:
        self.operation = operation
        self.value: Any = None
        self.error: BaseException | None = None
        self.result: T

    def next(self) -> Effect[Any] | None:
        """The next effect, given the last one's ``value`` or ``error``; ``None`` at the end."""
        while True:
            value, error = self.value, self.error
            self.value, self.error = None, None
            try:
                item = self.operation.send(value) if error is None else self.operation.throw(error)
            except StopIteration as stop:
                self.result = stop.value
                return None
            if isinstance(item, Effect):
                return item
            self.error = TypeError(
                f"an operation yielded {type(item).__name__}, not an effect (a flow yields "
                "keyturn.HttpRequest objects)"
            )


def run(operation: Operation[T], http: SyncHttpClient) -> T:
    """Drive ``operation`` to its result, performing each effect with blocking calls.

    :param operation: the generator to drive.
    :param http: the blocking HTTP client for :class:`~keyturn.HttpRequest` effects.
    :return: what the operation returns.
    :raises BaseException: whatever the operation raises, including an effect's exception
        it did not handle.
    """
    steps = _Steps(operation)
    while (effect := steps.next()) is not None:
        try:
            steps.value = effect.perform(http)
        except BaseException as exc:  # thrown into the operation, which may handle it
            steps.error = exc
    return steps.result


async def arun(operation: Operation[T], http: AsyncHttpClient) -> T:
    """The async driver: as :func:`run`, awaiting each effect.

    :param operation: the generator to drive.
    :param http: the async HTTP client for :class:`~keyturn.HttpRequest` effects.
    :return: what the operation returns.
    :raises BaseException: whatever the operation raises (cancellation included: it is
        thrown into the operation first, so its ``finally`` blocks still run their effects).
    """
    steps = _Steps(operation)
    while (effect := steps.next()) is not None:
        try:
            steps.value = await effect.aperform(http)
        except BaseException as exc:  # thrown into the operation, which may handle it
            steps.error = exc
    return steps.result
