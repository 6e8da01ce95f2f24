"""The neutral HTTP model that flows speak, and the ``Flow`` type.

Hooks never do I/O. A hook that talks to the provider returns a *flow*: a generator that
yields :class:`HttpRequest` objects, receives an :class:`HttpResponse` for each, and finally
returns its result (a ``TokenSet``, a ``Profile``, ``None``). The clients drive flows: the
sync one with a blocking HTTP client, the async one with an async client. One plugin thus
serves both, and cassettes record the same traffic either way. ``httpx.Auth.auth_flow`` uses
the same trick. A flow is the simplest kind of :mod:`keyturn.effects` operation: an
:class:`HttpRequest` is its only effect.

A flow written by hand::

    def refresh_flow(provider, credentials, tokens, clock):
        response = yield HttpRequest.form("POST", provider.token_endpoint, {...})
        return parse_token_response(...)

Neither class prints bodies or credential headers in its ``repr``.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from .effects import Effect

if TYPE_CHECKING:
    from .transport import AsyncHttpClient, SyncHttpClient

__all__ = ["Flow", "HttpRequest", "HttpResponse"]

T = TypeVar("T")

#: A generator that yields requests, is sent responses, and returns a ``T``.
Flow = Generator["HttpRequest", "HttpResponse", T]

#: Media types read as JSON (with any ``+json`` type, and a body that declares none).
_JSON_TYPES = frozenset({"", "application/json", "text/json", "text/javascript"})

_HIDDEN_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization"})


def _safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: ("[hidden]" if k.lower() in _HIDDEN_HEADERS else v) for k, v in headers.items()}


@dataclass(frozen=True, repr=False)
class HttpResponse:
    """A response as a flow sees it.

    :ivar status: the HTTP status code.
    :ivar headers: response headers, with lower-case names.
    :ivar body: the raw body.
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``application/json``)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def ok(self) -> bool:
        """``True`` for 2xx statuses."""
        return 200 <= self.status < 300

    def data(self) -> dict[str, Any] | None:
        """The body as a mapping, read by its content type; ``None`` if it is neither.

        JSON objects and form-encoded bodies are read; a JSON body that is not an object,
        invalid JSON or any other media type gives ``None``. A body with no content type
        is tried as JSON.
        """
        kind = self.content_type
        if kind == "application/x-www-form-urlencoded":
            try:
                text = self.body.decode("utf-8")
            except UnicodeDecodeError:
                return None
            return dict(parse_qsl(text, keep_blank_values=True))
        value = self.json()
        return value if isinstance(value, dict) else None

    def json(self) -> Any:
        """The body decoded as JSON of any shape (object, array, scalar); ``None`` if it is not.

        Read for a JSON media type or a body with no content type, as :meth:`data` does. APIs
        that answer with arrays (a list of e-mail addresses) need this rather than
        :meth:`data`. A body that is not JSON, or nests too deep to decode, gives ``None``.
        """
        kind = self.content_type
        if kind not in _JSON_TYPES and not kind.endswith("+json"):
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None

    def __repr__(self) -> str:
        return (
            f"HttpResponse({self.status}, {self.content_type or 'no content-type'}, "
            f"<{len(self.body)} bytes>)"
        )


@dataclass(frozen=True, repr=False)
class HttpRequest(Effect[HttpResponse]):
    """An outgoing request, independent of any HTTP library; the effect a flow yields.

    Drivers send it with the client's HTTP client (:mod:`keyturn.transport`) and send the
    :class:`HttpResponse` back into the flow; a request that gets no answer (DNS, connection,
    timeout) is thrown into the flow as :class:`keyturn.transport.NetworkFailure`.

    :ivar method: ``GET``, ``POST``, ``DELETE``...
    :ivar url: the full URL, query string included.
    :ivar headers: request headers; ``Accept: application/json`` is the usual one.
    :ivar body: the encoded body, or ``b""``.
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def form(
        cls,
        method: str,
        url: str,
        data: Mapping[str, str],
        headers: Mapping[str, str] | None = None,
    ) -> HttpRequest:
        """A request with an ``application/x-www-form-urlencoded`` body."""
        merged = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return cls(method, url, merged, urlencode(dict(data)).encode())

    @classmethod
    def json(
        cls,
        method: str,
        url: str,
        data: Any,
        headers: Mapping[str, str] | None = None,
    ) -> HttpRequest:
        """A request with a JSON body."""
        merged = {"Content-Type": "application/json", **(headers or {})}
        return cls(method, url, merged, json.dumps(data).encode())

    def perform(self, http: SyncHttpClient) -> HttpResponse:
        from .transport import send

        return send(http, self)

    async def aperform(self, http: AsyncHttpClient) -> HttpResponse:
        from .transport import asend

        return await asend(http, self)

    def __repr__(self) -> str:
        size = f", body=<{len(self.body)} bytes>" if self.body else ""
        url = self.url.split("?", 1)[0] + ("?..." if "?" in self.url else "")
        return f"HttpRequest({self.method} {url}, headers={_safe_headers(self.headers)}{size})"
