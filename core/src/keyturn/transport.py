"""The one place keyturn does network I/O: drive a flow with an HTTP client.

Any client with httpx's calling convention works: ``httpx.Client`` / ``httpx.AsyncClient``
(the default) and ``httpx2.Client`` / ``httpx2.AsyncClient`` passed in by the app. The client's
own settings (timeouts, proxies, certificates, transports, event hooks) apply unchanged.

Network failures are thrown into the flow as :class:`NetworkFailure`; the client turns them
into :class:`~keyturn.TransportError` naming the provider and the operation.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

from .http import Flow, HttpRequest, HttpResponse

__all__ = ["AsyncHttpClient", "NetworkFailure", "SyncHttpClient", "arun_flow", "run_flow"]

log = logging.getLogger("keyturn")
T = TypeVar("T")


class SyncHttpClient(Protocol):
    """What keyturn needs of a blocking client: ``httpx.Client`` or ``httpx2.Client``."""

    def request(self, method: str, url: str, *, headers: Any = ..., content: Any = ...) -> Any: ...


class AsyncHttpClient(Protocol):
    """What keyturn needs of an async client: ``httpx.AsyncClient`` or ``httpx2.AsyncClient``."""

    async def request(
        self, method: str, url: str, *, headers: Any = ..., content: Any = ...
    ) -> Any: ...


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
    """(timeout classes, all transport error classes) of httpx, and of httpx2 if it is in use."""
    timeouts: list[type[BaseException]] = [httpx.TimeoutException]
    errors: list[type[BaseException]] = [httpx.TransportError]
    other = sys.modules.get("httpx2")
    if other is not None:
        timeouts.append(other.TimeoutException)
        errors.append(other.TransportError)
    return tuple(timeouts), tuple(errors)


def _failure(exc: BaseException, request: HttpRequest) -> NetworkFailure:
    timeouts, _ = _transport_errors()
    code = "timeout" if isinstance(exc, timeouts) else "network_error"
    host = urlsplit(request.url).netloc
    return NetworkFailure(code, f"{type(exc).__name__} talking to {host}")


def _response(raw: Any) -> HttpResponse:
    headers = {key.lower(): value for key, value in raw.headers.items()}
    return HttpResponse(raw.status_code, headers, raw.content)


def _log(request: HttpRequest, response: HttpResponse | None) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%r -> %r", request, response)


def run_flow(flow: Flow[T], client: SyncHttpClient) -> T:
    """Drive ``flow`` to its result with a blocking client."""
    _, errors = _transport_errors()
    try:
        request = next(flow)
        while True:
            try:
                raw = client.request(
                    request.method,
                    request.url,
                    headers=dict(request.headers),
                    content=request.body or None,
                )
            except errors as exc:
                _log(request, None)
                failure = _failure(exc, request)
            else:
                response = _response(raw)
                _log(request, response)
                request = flow.send(response)
                continue
            # Thrown outside the except block, so the HTTP library's exception is not chained.
            request = flow.throw(failure)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def arun_flow(flow: Flow[T], client: AsyncHttpClient) -> T:
    """Drive ``flow`` to its result with an async client."""
    _, errors = _transport_errors()
    try:
        request = next(flow)
        while True:
            try:
                raw = await client.request(
                    request.method,
                    request.url,
                    headers=dict(request.headers),
                    content=request.body or None,
                )
            except errors as exc:
                _log(request, None)
                failure = _failure(exc, request)
            else:
                response = _response(raw)
                _log(request, response)
                request = flow.send(response)
                continue
            # Thrown outside the except block, so the HTTP library's exception is not chained.
            request = flow.throw(failure)
    except StopIteration as stop:
        result: T = stop.value
        return result
