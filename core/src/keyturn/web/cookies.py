"""Cookie names, attributes, and values split over several cookies when they outgrow one.

Browsers keep at most about 4 KB of name and value per cookie, so a long value is written as
``name.0``, ``name.1``... and joined on read; writing a shorter value expires the chunks it no
longer needs. What all of a session's chunks may add to a request's ``Cookie`` header is
bounded by :data:`SESSION_COOKIE_BUDGET`: proxies refuse a ``Cookie`` header past about 8 KB
before the app sees the request.

Every cookie is ``HttpOnly`` (scripts never read it) and ``SameSite=Lax`` (sent on top-level
navigations from other sites, such as the provider's redirect back, but not on their
sub-requests or POSTs). With ``secure`` on, cookies are ``Secure`` and their names take the
``__Host-`` prefix (``__Secure-`` if a ``Domain`` or another ``Path`` is set). Browsers accept
a ``__Host-`` cookie only from HTTPS, with ``Path=/`` and no ``Domain``, so neither a plain
HTTP response nor a sibling subdomain (which can set a cookie for the whole domain, even a
``__Secure-`` one) can plant one. Only the name written is read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CHUNK_SIZE",
    "SESSION_COOKIE_BUDGET",
    "CookiePolicy",
    "chunked_size",
    "expire_chunked",
    "read_chunked",
    "write_chunked",
]

#: The most characters of value put in one cookie (name and attributes stay under 4096).
CHUNK_SIZE = 3900
#: The most bytes a ``jwt`` session's cookies (every chunk: name, ``=``, value, and the
#: ``; `` between them) add to a request's ``Cookie`` header. nginx (one 8 KB buffer per
#: header line) and gunicorn (8190 bytes per header field) refuse a longer header; this
#: leaves about 3 KB for the app's own cookies and keyturn's CSRF cookie, and at sign-in for
#: the flow cookie (at most about 2.1 KB).
SESSION_COOKIE_BUDGET = 5120
_MAX_CHUNKS = 16
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._~-]*$")


@dataclass(frozen=True)
class CookiePolicy:
    """How keyturn's cookies are written.

    :ivar secure: add ``Secure`` and the ``__Host-`` name prefix (``__Secure-`` when a
        ``Domain`` or a ``Path`` other than ``/`` is set); browsers take both from HTTPS only.
    :ivar path: the cookies' ``Path``.
    :ivar domain: the cookies' ``Domain``; ``None`` keeps them to the exact host.
    :ivar same_site: ``lax`` (default) or ``strict``; ``none`` only for the flow cookie of a
        provider that posts its callback (``form_post``), and always with ``Secure``.
    """

    secure: bool
    path: str = "/"
    domain: str | None = None
    same_site: str = "lax"

    def name(self, base: str) -> str:
        """The full cookie name for ``base``: the only one read and written."""
        if not self.secure:
            return base
        host_only = self.path == "/" and not self.domain
        return ("__Host-" if host_only else "__Secure-") + base

    def strays(self, base: str) -> tuple[str, ...]:
        """The other names of ``base`` a secure app may find in a request, never read.

        Left by an earlier version (``__Secure-``), by the app before HTTPS, or planted by a
        sibling subdomain; deleted whenever keyturn writes or ends the cookie. Over plain HTTP
        there are none: a ``__Secure-`` cookie cannot be deleted from there.
        """
        if not self.secure:
            return ()
        own = self.name(base)
        return tuple(name for name in ("__Secure-" + base, base) if name != own)

    def set(self, name: str, value: str, max_age: int) -> str:
        """A ``Set-Cookie`` header value.

        :raises ValueError: the value holds characters a cookie cannot carry unquoted.
        """
        if not _SAFE_VALUE.match(value):
            raise ValueError("cookie values must be URL-safe base64 or JWE text")
        parts = [f"{name}={value}", f"Path={self.path}", f"Max-Age={max(max_age, 0)}"]
        if self.domain:
            parts.append(f"Domain={self.domain}")
        parts += ["HttpOnly", f"SameSite={self.same_site.capitalize()}"]
        if self.secure or self.same_site == "none":  # browsers refuse SameSite=None without it
            parts.append("Secure")
        return "; ".join(parts)

    def expire(self, name: str) -> str:
        """A ``Set-Cookie`` header value that deletes ``name``."""
        return self.set(name, "", 0)


def read_chunked(name: str, cookies: Mapping[str, str]) -> str | None:
    """The value of ``name``, joined from ``name.0``, ``name.1``... if it was split.

    A gap in the chunks (``name.0`` and ``name.2`` without ``name.1``) reads as whatever came
    before the gap, which then fails to decrypt: a broken cookie is a missing cookie.
    """
    whole = cookies.get(name)
    if whole:
        return whole
    parts: list[str] = []
    for index in range(_MAX_CHUNKS):
        part = cookies.get(f"{name}.{index}")
        if part is None:
            break
        parts.append(part)
    return "".join(parts) or None


def _chunks(name: str, value: str) -> list[tuple[str, str]]:
    if len(value) <= CHUNK_SIZE:
        return [(name, value)]
    return [
        (f"{name}.{index}", value[start : start + CHUNK_SIZE])
        for index, start in enumerate(range(0, len(value), CHUNK_SIZE))
    ]


def chunked_size(name: str, value: str) -> int:
    """Bytes ``value`` stored under ``name`` adds to a ``Cookie`` header, chunks and all."""
    chunks = _chunks(name, value)
    return sum(len(key) + 1 + len(part) for key, part in chunks) + 2 * (len(chunks) - 1)


def write_chunked(
    name: str,
    value: str,
    policy: CookiePolicy,
    max_age: int,
    present: Mapping[str, str],
    strays: tuple[str, ...] = (),
) -> list[str]:
    """``Set-Cookie`` values that store ``value`` under ``name``, split if long.

    :param present: the request's cookies, so that chunks left from a longer value (or the
        unsplit cookie, when the value now needs chunks) are expired.
    :param strays: other names whose cookies and chunks present are expired too
        (:meth:`CookiePolicy.strays`).
    :raises ValueError: the value needs more than 16 chunks (about 60 KB).
    """
    chunks = _chunks(name, value)
    if len(chunks) > _MAX_CHUNKS:
        raise ValueError(f"a {len(value)}-character cookie value is too large to store")
    headers = [policy.set(key, part, max_age) for key, part in chunks]
    written = {key for key, _ in chunks}
    stale = [old for base in (name, *strays) for old in _family(base, present)]
    return headers + [policy.expire(old) for old in stale if old not in written]


def expire_chunked(
    name: str, policy: CookiePolicy, present: Mapping[str, str], strays: tuple[str, ...] = ()
) -> list[str]:
    """``Set-Cookie`` values that delete ``name``, ``strays``, and every chunk of them present."""
    return [policy.expire(old) for base in (name, *strays) for old in _family(base, present)]


def _family(name: str, present: Mapping[str, str]) -> list[str]:
    prefix = name + "."
    return [
        key
        for key in present
        if key == name or (key.startswith(prefix) and key[len(prefix) :].isdigit())
    ]
