"""The neutral request and response that keyturn's web routes speak.

An adapter (:mod:`keyturn.starlette`, or the few lines a Flask or Django view needs) turns
its framework's request into a :class:`WebRequest`, hands it to
:meth:`~keyturn.web.WebAuth.handle`, and writes the :class:`WebResponse` back.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["WebRequest", "WebResponse"]


@dataclass(frozen=True)
class WebRequest:
    """One HTTP request, as the app received it.

    :ivar method: ``GET``, ``POST``...
    :ivar url: the absolute URL (scheme, host, path and query) the browser asked for.
    :ivar headers: header names in lower case.
    :ivar cookies: the request's cookies by name.
    :ivar body: the raw body (read only for ``POST``).
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: bytes = field(default=b"", repr=False)

    @cached_property
    def path(self) -> str:
        """The URL's path."""
        return urlsplit(self.url).path or "/"

    @cached_property
    def query(self) -> dict[str, str]:
        """The query parameters (the last value wins for repeated names)."""
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    @cached_property
    def origin(self) -> str:
        """``scheme://host[:port]`` of the URL."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @cached_property
    def form(self) -> dict[str, str]:
        """Fields of a form-encoded or JSON object body; empty for anything else.

        Only string fields are kept. A body that cannot be read (not UTF-8, not JSON, or JSON
        nested deeper than the parser follows) has no fields.
        """
        kind = self.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if kind == "application/x-www-form-urlencoded":
                return dict(parse_qsl(self.body.decode(), keep_blank_values=True))
            if kind == "application/json":
                data: Any = json.loads(self.body or b"{}")
                if isinstance(data, dict):
                    return {k: v for k, v in data.items() if isinstance(v, str)}
        except (UnicodeDecodeError, ValueError, RecursionError):
            pass
        return {}

    @property
    def wants_json(self) -> bool:
        """Whether the client asked for JSON rather than a page (``fetch`` from a script)."""
        accept = self.headers.get("accept", "")
        if "text/html" in accept:
            return False
        kind = self.headers.get("content-type", "")
        return "application/json" in accept or "application/json" in kind


@dataclass
class WebResponse:
    """What to send back: status, headers (``set-cookie`` may repeat) and body."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def cookies(self) -> list[str]:
        """The ``Set-Cookie`` values."""
        return [value for name, value in self.headers if name == "set-cookie"]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case), or ``None``."""
        return next((value for key, value in self.headers if key == name), None)

    def add_cookies(self, cookies: list[str]) -> WebResponse:
        """Append ``Set-Cookie`` headers; returns ``self``."""
        self.headers.extend(("set-cookie", cookie) for cookie in cookies)
        return self

    @classmethod
    def json(cls, data: Any, status: int = 200) -> WebResponse:
        """A JSON answer that no cache keeps."""
        body = _COMPACT_JSON.encode(data).encode()
        return cls(status, [*_NO_STORE, ("content-type", "application/json")], body)

    @classmethod
    def redirect(cls, location: str, status: int = 303) -> WebResponse:
        """A redirect (``303 See Other`` by default: the next request is a GET)."""
        return cls(status, [*_NO_STORE, ("location", location)])

    @classmethod
    def page(cls, title: str, message: str, status: int, links: Mapping[str, str]) -> WebResponse:
        """A small HTML page; every text is escaped."""
        items = "".join(
            f'<li><a href="{html.escape(href)}">{html.escape(text)}</a></li>'
            for text, href in links.items()
        )
        body = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width'>"
            f"<title>{html.escape(title)}</title></head><body>"
            f"<h1>{html.escape(title)}</h1><p id='keyturn-message'>{html.escape(message)}</p>"
            f"<ul>{items}</ul></body></html>"
        )
        headers = [*_NO_STORE, ("content-type", "text/html; charset=utf-8"), *_PAGE_HEADERS]
        return cls(status, headers, body.encode())


#: ``json.dumps(..., separators=(",", ":"))`` without building an encoder for every answer.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))
_NO_STORE = [("cache-control", "no-store")]
_PAGE_HEADERS = [
    ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
]
