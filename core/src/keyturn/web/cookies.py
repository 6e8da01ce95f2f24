"""Cookie names, attributes, and values split over several cookies when they outgrow one.

Browsers keep at most about 4 KB of name and value per cookie. A session holding tokens, an
ID token and a profile can pass that, so a long value is written as ``name.0``, ``name.1``...
and joined on read; writing a shorter value expires the chunks it no longer needs.

Every cookie is ``HttpOnly`` (scripts never read it) and ``SameSite=Lax`` (sent on top-level
navigations from other sites, such as the provider's redirect back, but not on their
sub-requests or POSTs). With ``secure`` on, cookies are ``Secure`` and their names take the
``__Secure-`` prefix, which browsers only accept from HTTPS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CHUNK_SIZE", "CookiePolicy", "expire_chunked", "read_chunked", "write_chunked"]

#: The most characters of value put in one cookie (name and attributes stay under 4096).
CHUNK_SIZE = 3900
_MAX_CHUNKS = 16
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._~-]*$")


@dataclass(frozen=True)
class CookiePolicy:
    """How keyturn's cookies are written.

    :ivar secure: add ``Secure`` and the ``__Secure-`` name prefix (HTTPS only).
    :ivar path: the cookies' ``Path``.
    :ivar domain: the cookies' ``Domain``; ``None`` keeps them to the exact host.
    :ivar same_site: ``lax`` (default) or ``strict``.
    """

    secure: bool
    path: str = "/"
    domain: str | None = None
    same_site: str = "lax"

    def name(self, base: str) -> str:
        """The full cookie name for ``base``."""
        return ("__Secure-" if self.secure else "") + base

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
        if self.secure:
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


def write_chunked(
    name: str, value: str, policy: CookiePolicy, max_age: int, present: Mapping[str, str]
) -> list[str]:
    """``Set-Cookie`` values that store ``value`` under ``name``, split if long.

    :param present: the request's cookies, so that chunks left from a longer value (or the
        unsplit cookie, when the value now needs chunks) are expired.
    :raises ValueError: the value needs more than 16 chunks (about 60 KB).
    """
    if len(value) <= CHUNK_SIZE:
        headers = [policy.set(name, value, max_age)]
        written = {name}
    else:
        chunks = [value[i : i + CHUNK_SIZE] for i in range(0, len(value), CHUNK_SIZE)]
        if len(chunks) > _MAX_CHUNKS:
            raise ValueError(f"a {len(value)}-character cookie value is too large to store")
        headers = [policy.set(f"{name}.{i}", chunk, max_age) for i, chunk in enumerate(chunks)]
        written = {f"{name}.{i}" for i in range(len(chunks))}
    return headers + [policy.expire(old) for old in _family(name, present) if old not in written]


def expire_chunked(name: str, policy: CookiePolicy, present: Mapping[str, str]) -> list[str]:
    """``Set-Cookie`` values that delete ``name`` and every chunk of it present."""
    return [policy.expire(old) for old in _family(name, present)]


def _family(name: str, present: Mapping[str, str]) -> list[str]:
    prefix = name + "."
    return [
        key
        for key in present
        if key == name or (key.startswith(prefix) and key[len(prefix) :].isdigit())
    ]
