"""The ASGI layer in front of the provider routes: latency, injected 503s, dropped
connections and lost answers (see :mod:`keyturn_emulator.faults` for what each knob means).

A dropped request is decided on arrival and never reaches the routes, so nothing behind it
happens: no code is spent, no refresh token rotates. The client receives the start of an
answer and then the connection closes, which every HTTP client reports as a network error.

A request whose answer is lost goes through the routes like any other, so everything behind
it happens; the answer they write is thrown away and the connection is closed before its
first byte. The client sees a server that hung up without answering (a network error too).
Closing a connection without an answer is not something ASGI can express: the gate closes
the server's transport for the request, which uvicorn's HTTP/1.1 implementation exposes on
the ``send`` callable it hands to the app. Where it does not, the answer is cut after its
first byte instead, as for a drop: still no usable answer, still a network error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

from .faults import Dice, Knobs
from .profiles import PROFILES
from .state import Store

__all__ = ["CONTROL_PREFIX", "Gate"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths under this prefix are the emulator's own controls: never delayed, never failed.
CONTROL_PREFIX = "/_emulator"

_UNAVAILABLE = (
    b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body>"
    b"<h1>Service Unavailable</h1><p>The server is temporarily unable to handle the request "
    b"(injected by keyturn's emulator).</p></body></html>"
)

_RATE_LIMITED = (
    b'{"error":"too_many_requests","error_description":"Rate limit exceeded '
    b"(injected by keyturn's emulator).\"}"
)
#: A rate limit as Discord answers it: 429, ``Retry-After`` in whole seconds and a JSON body
#: with ``retry_after`` in seconds
#: (https://discord.com/developers/docs/topics/rate-limits#exceeding-a-rate-limit).
_DISCORD_RATE_LIMITED = (
    b'{"message":"You are being rate limited.","retry_after":1.0,"global":false}'
)

#: Seconds to wait for the server to see the connection it was told to close.
_DISCONNECT_WAIT = 5.0

# Set while a request is being dropped, so the server's "response not completed" log line,
# which is the point of a drop here, does not alarm anyone.
_dropping: ContextVar[bool] = ContextVar("keyturn_emulator_dropping", default=False)


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _dropping.get()


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


class Gate:
    """Wraps the routes' ASGI app with the fault knobs.

    :param app: the routes.
    :param token_paths: token-endpoint path -> profile name; only these requests can fail.
    :param knobs: returns the current knobs (read per request, so ``configure`` applies at
        once).
    :param dice: decides each token request's fate.
    :param store: where faults and drops are counted.
    """

    def __init__(
        self,
        app: ASGIApp,
        token_paths: dict[str, str],
        knobs: Callable[[], Knobs],
        dice: Dice,
        store: Store,
    ) -> None:
        self.app = app
        self.token_paths = token_paths
        self.knobs = knobs
        self.dice = dice
        self.store = store
        _install_log_filter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        knobs = self.knobs()
        if knobs.latency > 0:
            await asyncio.sleep(knobs.latency)
        profile = self.token_paths.get(scope["path"])
        if profile is not None:
            self.store.count(profile, "token_requests")
            verdict = self.dice.roll(knobs)
            if verdict == "drop":
                self.store.count(profile, "dropped")
                await self._drop(send)
                return
            if verdict == "lose":
                self.store.count(profile, "lost_answers")
                await self._lose(scope, receive, send)
                return
            if verdict == "fault":
                if PROFILES[profile].fault_answer == "rate_limit":
                    self.store.count(profile, "fault_429")
                    await self._discord_rate_limited(send)
                    return
                self.store.count(profile, "fault_5xx")
                await self._unavailable(send)
                return
            if verdict == "limit":
                self.store.count(profile, "rate_limited")
                await self._rate_limited(send)
                return
        await self.app(scope, receive, send)

    async def _drop(self, send: Send) -> None:
        # Promise a body, send one byte of it, and return: the server closes the connection
        # because the response is incomplete.
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")],
            }
        )
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        _dropping.set(True)

    async def _lose(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def discard(message: Message) -> None:
            pass

        # The routes do their work and write their answer into the void.
        await self.app(scope, receive, discard)
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        close = getattr(transport, "close", None)
        if not callable(close):
            await self._drop(send)
            return
        close()
        # Wait for the server to notice (receive() then reports the disconnect), so that it
        # does not answer 500 for a request the app returned from without answering.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DISCONNECT_WAIT):
                while (await receive())["type"] != "http.disconnect":
                    pass

    async def _rate_limited(self, send: Send) -> None:
        # The headers Auth0 documents for its rate limits ("Rate Limit Use Cases",
        # https://auth0.com/docs/troubleshoot/customer-support/operational-policies/rate-limit-policy/rate-limit-use-cases):
        # x-ratelimit-reset is the epoch second at which the bucket refills.
        reset = int(self.store.clock()) + 1
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_RATE_LIMITED)).encode()),
                    (b"retry-after", b"1"),
                    (b"x-ratelimit-limit", b"30"),
                    (b"x-ratelimit-remaining", b"0"),
                    (b"x-ratelimit-reset", str(reset).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _RATE_LIMITED})

    async def _unavailable(self, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(_UNAVAILABLE)).encode()),
                    (b"retry-after", b"1"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _UNAVAILABLE})

    async def _discord_rate_limited(self, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_DISCORD_RATE_LIMITED)).encode()),
                    (b"retry-after", b"1"),
                    (b"x-ratelimit-scope", b"user"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _DISCORD_RATE_LIMITED})
