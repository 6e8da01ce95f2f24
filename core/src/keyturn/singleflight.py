"""Run one call per key however many callers ask at once, and share its outcome.

Refresh tokens that rotate are single-use: if two requests refresh the same token at the
same moment, the provider honours one and answers ``invalid_grant`` to the other (strict
providers then revoke the whole token family). :class:`SingleFlight` makes the first caller
for a key the *leader*, who does the work; everyone who asks for the same key meanwhile
waits and receives the leader's outcome. Successes, and failures the owner chooses to
remember, stay in a short result cache, so a caller who arrives a moment later with the
already-used refresh token still gets the new tokens instead of ``invalid_grant``.

The decision logic (cache hit, leader or waiter, what to remember, who to wake) is written
once; :meth:`SingleFlight.call` waits with threads, :meth:`SingleFlight.acall` with asyncio.

Guarantees:

* Keys are hashed (SHA-256) before they are stored: a refresh token is never kept in clear
  as a dictionary key, so a heap dump of the cache shows digests only.
* Nothing leaks per key: an in-flight entry lives exactly as long as its call, and an outcome
  stays in the result cache for ``window`` seconds (on ``clock``), then goes at the next call
  or :meth:`~SingleFlight.stats`. The window alone bounds the cache: however many calls end
  within it, each outcome is there for a caller who comes back late, because turning such a
  caller away sends a spent refresh token to the provider. ``max_results`` adds a hard cap
  only when the owner asks for one (:class:`~keyturn.Keyturn` does not).
* A cached failure holds no traceback (nor the frames and responses one keeps alive): the
  cache keeps a bare copy, and the callers who shared the call got theirs already.
* Every waiter of a failed call gets the same error (copied, so tracebacks do not mix); no
  waiter retries on its own, so a failing provider sees one request, not a stampede. Errors
  the owner does not ask to remember are not cached: the next call tries again.
* Async leaders run the call in a task of their own: a caller that is cancelled (a client
  that hung up) does not cancel a refresh the provider may already have answered; the result
  still reaches the cache and the other waiters.
* Several event loops may share one instance. A waiter on another loop than the leader's is
  woken thread-safely; if the leader's loop stops or closes before the call ends, waiters
  stop waiting for it and one of them leads a new call. A leader whose thread or task is
  interrupted (``KeyboardInterrupt``, cancellation) wakes its waiters the same way.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar, cast

if TYPE_CHECKING:  # asyncio is imported when first used: sync-only apps never pay for it
    import asyncio

__all__ = ["SingleFlight", "SingleFlightStats"]

T = TypeVar("T")

#: How often a waiter checks that a leader on another event loop is still alive (seconds).
_LIVENESS_POLL = 0.05
#: A result cache that held more entries than this is rebuilt once it shrinks to an eighth.
_REBUILD_ABOVE = 1024


@dataclass(frozen=True)
class SingleFlightStats:
    """A snapshot of a :class:`SingleFlight`, for metrics and tests.

    :ivar in_flight: keys with a call running now.
    :ivar waiters: callers waiting for those calls (leaders not counted).
    :ivar cached: outcomes in the result cache (some may have expired but not been pruned).
    """

    in_flight: int
    waiters: int
    cached: int


class _Outcome(Generic[T]):
    """How a call ended: a value, an error, or 'no result, try again' (``retry``)."""

    __slots__ = ("error", "retry", "value")

    def __init__(
        self, value: T | None = None, error: Exception | None = None, retry: bool = False
    ) -> None:
        self.value = value
        self.error = error
        self.retry = retry

    def unwrap(self, *, shared: bool) -> T:
        if self.error is not None:
            raise _copy_error(self.error) if shared else self.error
        return cast(T, self.value)


def _bare(outcome: _Outcome[T]) -> _Outcome[T]:
    """``outcome`` as the result cache keeps it: a failure without its traceback.

    The traceback of a failed call holds its frames, and through them the request, the
    response and the caller's locals; a cached failure is only ever raised as a copy.
    """
    if outcome.error is None:
        return outcome
    return _Outcome(error=_copy_error(outcome.error))


def _copy_error(error: Exception) -> Exception:
    """A copy of ``error`` for one more caller, so each raise gets its own traceback."""
    try:
        clone = copy.copy(error)
    except Exception:  # an exception type that cannot be copied: share the instance
        return error
    clone.__traceback__ = None
    return clone


class _Call(Generic[T]):
    """One call in flight for one key."""

    __slots__ = ("done", "loop", "outcome", "sync_waiters", "task", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.done = threading.Event()
        self.loop = loop  # the leader's event loop; None for a thread leader
        self.outcome: _Outcome[T] | None = None
        self.task: asyncio.Task[None] | None = None
        self.waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[_Outcome[T]]]] = []
        self.sync_waiters = 0

    def abandoned(self) -> bool:
        """Whether the leader's event loop stopped or closed before the call ended."""
        loop = self.loop
        if loop is None or self.done.is_set():
            return False
        return loop.is_closed() or not loop.is_running()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    aio = sys.modules.get("asyncio")
    if aio is None:  # never imported: no loop can be running
        return None
    try:
        loop: asyncio.AbstractEventLoop = aio.get_running_loop()
    except RuntimeError:
        return None
    return loop


def _settle(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[_Outcome[T]], outcome: _Outcome[T]
) -> None:
    """Resolve ``future`` on its own loop, from whatever thread we are on."""

    def resolve() -> None:
        if not future.done():
            future.set_result(outcome)

    if _running_loop() is loop:
        resolve()
        return
    with contextlib.suppress(RuntimeError):  # a closed loop: its waiter is gone with it
        loop.call_soon_threadsafe(resolve)


class SingleFlight(Generic[T]):
    """One call per key at a time, with an optional short cache of outcomes.

    :param window: seconds an outcome stays in the result cache, measured on ``clock``; 0
        caches nothing (concurrent callers still share one call).
    :param clock: returns seconds; the cache's notion of now.
    :param remember_error: decides whether a failure is cached like a success. By default
        none is: every later call tries again.
    :param max_results: the most outcomes the cache holds, the oldest going first; ``None``
        (the default) sets no count, and the window alone bounds the cache. A cap is for an
        owner that prefers bounded memory to reuse: an outcome dropped before its window ends
        sends its next caller back to the work.

    Memory: an entry costs about 330 bytes of its own (the key's hex digest, the outcome,
    its expiry and the ordered map's slot) plus the value it holds. A cached refresh holds a
    :class:`~keyturn.TokenSet` and costs about 2.7 KB in all with a 470-character ID token,
    2.1 KB without one (measured with :mod:`tracemalloc` by
    ``tests/core/test_singleflight.py``). So the cache of a client that refreshes ``r``
    tokens a second holds about ``r * window * 2.7 KB``: 81 MB at 1,000 refreshes a second
    with the default 30 s window, and nothing once the refreshes stop and the window has
    passed. When the cache shrinks to an eighth of its peak its map is rebuilt, so the slots
    of expired outcomes are returned as well as the outcomes.
    :param reusable: decides whether a cached value may still be handed out (say, tokens
        that are not already due); a value it rejects is dropped and the work runs again.
    """

    def __init__(
        self,
        *,
        window: float = 0.0,
        clock: Callable[[], float] = time.time,
        remember_error: Callable[[Exception], bool] | None = None,
        max_results: int | None = None,
        reusable: Callable[[T], bool] | None = None,
    ) -> None:
        if window < 0:
            raise ValueError("window must be zero or more seconds")
        if max_results is not None and max_results < 0:
            raise ValueError("max_results must be zero or more")
        self.window = window
        self.clock = clock
        self._remember_error = remember_error or (lambda _error: False)
        self.max_results = max_results
        self._reusable = reusable
        self._mutex = threading.Lock()
        self._calls: dict[str, _Call[T]] = {}
        self._results: OrderedDict[str, tuple[float, _Outcome[T]]] = OrderedDict()
        #: The most entries ``_results`` held since it was last rebuilt: a dict never gives
        #: back the slots of deleted keys, so a map that held a wave keeps its size until
        #: rebuilt.
        self._peak = 0

    # -- the decision logic, shared by threads and tasks ----------------------------------

    @staticmethod
    def digest(key: str | bytes) -> str:
        """The SHA-256 hex digest under which ``key`` is tracked."""
        data = key.encode("utf-8") if isinstance(key, str) else key
        return hashlib.sha256(data).hexdigest()

    def _begin(
        self,
        digest: str,
        loop: asyncio.AbstractEventLoop | None,
        future: asyncio.Future[_Outcome[T]] | None,
    ) -> tuple[_Outcome[T] | None, _Call[T] | None, bool]:
        """Cached outcome; or the call to follow, and whether this caller leads it.

        An async caller passes its own ``future``: it is registered under the lock, so it
        cannot miss the call's end. A thread caller is counted instead.
        """
        with self._mutex:
            hit = self._cached(digest)
            if hit is not None:
                return hit, None, False
            call = self._calls.get(digest)
            lead = call is None or call.abandoned()
            if call is None or lead:
                call = _Call(loop)
                self._calls[digest] = call
            if future is not None and loop is not None:
                call.waiters.append((loop, future))
            elif not lead:
                call.sync_waiters += 1
            return None, call, lead

    def _finish(self, digest: str, call: _Call[T], outcome: _Outcome[T]) -> None:
        """Record how the call ended, cache it if wanted, and wake every waiter."""
        with self._mutex:
            if self._calls.get(digest) is call:
                del self._calls[digest]
            if self._worth_caching(outcome):
                results = self._results
                results.pop(digest, None)
                results[digest] = (self.clock() + self.window, _bare(outcome))
                self._peak = max(self._peak, len(results))
                self._prune()
            call.outcome = outcome
            waiters, call.waiters = call.waiters, []
        call.done.set()
        for loop, future in waiters:
            _settle(loop, future, outcome)

    def _worth_caching(self, outcome: _Outcome[T]) -> bool:
        if self.window <= 0 or self.max_results == 0 or outcome.retry:
            return False
        return outcome.error is None or self._remember_error(outcome.error)

    def _cached(self, digest: str) -> _Outcome[T] | None:
        self._prune()
        entry = self._results.get(digest)
        if entry is None:
            return None
        expires, outcome = entry
        if expires <= self.clock() or not self._usable(outcome):
            del self._results[digest]
            return None
        return outcome

    def _usable(self, outcome: _Outcome[T]) -> bool:
        if outcome.error is not None or self._reusable is None:
            return True
        return self._reusable(cast(T, outcome.value))

    def _prune(self) -> None:
        now = self.clock()
        results = self._results
        while results and next(iter(results.values()))[0] <= now:
            results.popitem(last=False)
        cap = self.max_results
        while cap is not None and len(results) > cap:
            results.popitem(last=False)
        if self._peak > _REBUILD_ABOVE and len(results) * 8 <= self._peak:
            # Give back the slots the departed entries left: the copy is sized to what stays.
            self._results = OrderedDict(results)
            self._peak = len(results)

    # -- threads ---------------------------------------------------------------------------

    def call(self, key: str | bytes, fn: Callable[[], T]) -> T:
        """Run ``fn`` unless a call for ``key`` is running or cached; share its outcome.

        :param key: what identifies the work (hashed before use).
        :param fn: the work; runs in the calling thread when this caller leads.
        :return: the leader's result.
        :raises Exception: the leader's error (a copy for waiters).
        :raises RuntimeError: the call is led by a task of the event loop this thread is
            running, which a blocking wait would deadlock.
        """
        digest = self.digest(key)
        while True:
            hit, call, lead = self._begin(digest, None, None)
            if hit is not None:
                return hit.unwrap(shared=True)
            assert call is not None
            if lead:
                return self._lead_sync(digest, call, fn)
            outcome = self._wait_sync(call)
            if not outcome.retry:
                return outcome.unwrap(shared=True)

    def _lead_sync(self, digest: str, call: _Call[T], fn: Callable[[], T]) -> T:
        try:
            value = fn()
        except Exception as exc:
            self._finish(digest, call, _Outcome(error=exc))
            raise
        except BaseException:
            self._finish(digest, call, _Outcome(retry=True))
            raise
        self._finish(digest, call, _Outcome(value=value))
        return value

    def _wait_sync(self, call: _Call[T]) -> _Outcome[T]:
        try:
            if call.loop is None:
                call.done.wait()
            else:
                if call.loop is _running_loop():
                    raise RuntimeError(
                        "a blocking call waits for a task of the event loop it is blocking"
                    )
                while not call.done.wait(_LIVENESS_POLL):
                    if call.abandoned():
                        return _Outcome(retry=True)
        finally:
            with self._mutex:
                call.sync_waiters -= 1
        assert call.outcome is not None
        return call.outcome

    # -- asyncio ---------------------------------------------------------------------------

    async def acall(self, key: str | bytes, fn: Callable[[], Awaitable[T]]) -> T:
        """The async twin of :meth:`call`: ``fn`` is awaited in a task of its own.

        Cancelling a caller does not cancel the call: other waiters, and the result cache,
        still receive its outcome.

        :param key: what identifies the work (hashed before use).
        :param fn: returns the awaitable to run when this caller leads.
        :return: the leader's result.
        :raises Exception: the leader's error (a copy for waiters).
        """
        import asyncio

        digest = self.digest(key)
        loop = asyncio.get_running_loop()
        while True:
            future: asyncio.Future[_Outcome[T]] = loop.create_future()
            hit, call, lead = self._begin(digest, loop, future)
            if hit is not None:
                return hit.unwrap(shared=True)
            assert call is not None
            if lead:
                call.task = loop.create_task(self._drive(digest, call, fn))
            outcome = await self._wait_async(call, loop, future)
            if not outcome.retry:
                return outcome.unwrap(shared=not lead)

    async def _drive(self, digest: str, call: _Call[T], fn: Callable[[], Awaitable[T]]) -> None:
        try:
            value = await fn()
        except Exception as exc:
            self._finish(digest, call, _Outcome(error=exc))
        except BaseException:
            self._finish(digest, call, _Outcome(retry=True))
            raise
        else:
            self._finish(digest, call, _Outcome(value=value))

    async def _wait_async(
        self,
        call: _Call[T],
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[_Outcome[T]],
    ) -> _Outcome[T]:
        import asyncio

        if call.loop is loop:
            return await future
        # Led from another loop (or a thread): woken thread-safely, but that loop may stop.
        while True:
            await asyncio.wait({future}, timeout=_LIVENESS_POLL)
            if future.done():
                return future.result()
            if call.abandoned():
                return _Outcome(retry=True)

    # -- introspection -----------------------------------------------------------------------

    def stats(self) -> SingleFlightStats:
        """How many calls run now, how many callers wait, how many outcomes are cached."""
        with self._mutex:
            self._prune()
            waiters = 0
            for call in self._calls.values():
                waiters += call.sync_waiters + len(call.waiters)
                if call.loop is not None:
                    waiters -= 1  # the async leader waits on a future of its own
            return SingleFlightStats(len(self._calls), waiters, len(self._results))

    def forget(self) -> None:
        """Empty the result cache (calls in flight are not affected)."""
        with self._mutex:
            self._results = OrderedDict()
            self._peak = 0
