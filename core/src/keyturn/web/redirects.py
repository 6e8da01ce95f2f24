"""Where keyturn may send the browser after sign-in or sign-out: only back to the app.

A ``callbackUrl`` is accepted when it is a path on this site (``/dashboard?tab=2``) or an
absolute URL with exactly the app's origin. Everything else (another host, a scheme-relative
``//evil.example``, backslash tricks that some browsers read as ``//``, control characters,
``javascript:``) is refused: an open redirect would let a phishing link borrow the app's name.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["same_origin_target"]

_FORBIDDEN = frozenset("\\\r\n\t\0")


def same_origin_target(value: str | None, origin: str, default: str = "/") -> str | None:
    """The path to redirect to (``default`` when ``value`` is empty), or ``None`` if refused.

    :param value: the ``callbackUrl`` the request carried.
    :param origin: the app's ``scheme://host[:port]``.
    """
    if not value:
        return default
    if any(char in _FORBIDDEN or ord(char) < 0x20 for char in value) or value.startswith("//"):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme or parts.netloc:
        if f"{parts.scheme}://{parts.netloc}".lower() != origin.lower():
            return None
    elif not value.startswith("/"):
        return None
    return urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
