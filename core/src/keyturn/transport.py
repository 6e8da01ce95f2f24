"""The one place keyturn does network I/O: send an :class:`~keyturn.HttpRequest`.

Any client with httpx's calling convention works: ``httpx.Client`` / ``httpx.AsyncClient``
(the default) and ``httpx2.Client`` / ``httpx2.AsyncClient`` passed in by the app. The client's
own settings (timeouts, proxies, certificates, transports, event hooks) apply unchanged.

:meth:`HttpRequest.perform <keyturn.HttpRequest.perform>` (blocking drivers) and
:meth:`~keyturn.HttpRequest.aperform` (async ones) call :func:`send` and :func:`asend`.
Network failures raise :class:`NetworkFailure`, which the driver throws into the flow at its
``yield``; the client turns it into :class:`~keyturn.TransportError` naming the provider and
the operation.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Protocol
from urllib.parse import urlsplit

from .http import HttpRequest, HttpResponse

__all__ = [
    "AsyncClosedHttpClient",
    "AsyncHttpClient",
    "ClosedHttpClient",
    "NetworkFailure",
    "SyncHttpClient",
    "asend",
    "send",
]

log = logging.getLogger("keyturn")


class SyncHttpClient(Protocol):
    """What keyturn needs of a blocking client: ``httpx.Client`` or ``httpx2.Client``."""

    def request(self, method: str, url: str, *, headers: Any = ..., content: Any = ...) -> Any: ...


class AsyncHttpClient(Protocol):
    """What keyturn needs of an async client: ``httpx.AsyncClient`` or ``httpx2.AsyncClient``."""

    async def request(
        self, method: str, url: str, *, headers: Any = ..., content: Any = ...
    ) -> Any: ...


#: What a closed httpx client says when asked to send a request.
CLOSED_MESSAGE = "Cannot send a request, as the client has been closed."


class ClosedHttpClient:
    """Stands for a blocking client that was closed before keyturn ever needed to make it.

    Sending raises ``RuntimeError`` as a closed ``httpx.Client`` does; closing again does
    nothing.
    """

    def request(self, method: str, url: str, *, headers: Any = None, content: Any = None) -> Any:
        raise RuntimeError(CLOSED_MESSAGE)

    def close(self) -> None:
        """Nothing to close."""


class AsyncClosedHttpClient:
    """The async twin of :class:`ClosedHttpClient`."""

    async def request(
        self, method: str, url: str, *, headers: Any = None, content: Any = None
    ) -> Any:
        raise RuntimeError(CLOSED_MESSAGE)

    async def aclose(self) -> None:
        """Nothing to close."""


class NetworkFailure(Exception):
    """No HTTP response: thrown into a flow at the ``yield`` of the request that failed.

    :ivar code: ``timeout`` or ``network_error``.
    :ivar detail: the exception's class and the host, never the URL's query or any header.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeout classes, all transport error classes) of httpx and httpx2, those in use.

    A library that was never imported has raised nothing, so neither is imported here: an
    app that passes an ``httpx2`` client never loads httpx for it.
    """
    timeouts: list[type[BaseException]] = []
    errors: list[type[BaseException]] = []
    for name in ("httpx", "httpx2"):
        library = sys.modules.get(name)
        if library is not None:
            timeouts.append(library.TimeoutException)
            errors.append(library.TransportError)
    return tuple(timeouts), tuple(errors)


def _failure(exc: BaseException, request: HttpRequest) -> NetworkFailure:
    timeouts, _ = _transport_errors()
    code = "timeout" if isinstance(exc, timeouts) else "network_error"
    host = urlsplit(request.url).netloc
    return NetworkFailure(code, f"{type(exc).__name__} talking to {host}")


def _received(request: HttpRequest, raw: Any) -> HttpResponse:
    headers = {key.lower(): value for key, value in raw.headers.items()}
    response = HttpResponse(raw.status_code, headers, raw.content)
    _log(request, response)
    return response


def _log(request: HttpRequest, response: HttpResponse | None) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%r -> %r", request, response)


def send(client: SyncHttpClient, request: HttpRequest) -> HttpResponse:
    """Send ``request`` with a blocking client.

    :raises NetworkFailure: no HTTP answer (the HTTP library's exception is not chained: it
        holds the request, form body included).
    """
    errors = _transport_errors()[1]
    try:
        raw = client.request(
            request.method, request.url, headers=dict(request.headers), content=request.body or None
        )
    except errors as exc:
        failure = _failure(exc, request)
    else:
        return _received(request, raw)
    _log(request, None)
    raise failure


async def asend(client: AsyncHttpClient, request: HttpRequest) -> HttpResponse:
    """Send ``request`` with an async client; as :func:`send`."""
    errors = _transport_errors()[1]
    try:
        raw = await client.request(
            request.method, request.url, headers=dict(request.headers), content=request.body or None
        )
    except errors as exc:
        failure = _failure(exc, request)
    else:
        return _received(request, raw)
    _log(request, None)
    raise failure
