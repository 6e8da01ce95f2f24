"""Where keyturn may send the browser after sign-in or sign-out: only back to the app.

A ``callbackUrl`` is accepted when it is a path on this site (``/dashboard?tab=2``) or an
absolute URL with exactly the app's origin. Everything else (another host, a scheme-relative
``//evil.example``, also when hidden in the path of an absolute URL, backslash tricks that some
browsers read as ``//``, control characters, ``javascript:``) is refused: an open redirect
would let a phishing link borrow the app's name. The accepted path is returned as ASCII, with
other characters percent-encoded, so it fits a ``Location`` header.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

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
    path = parts.path or "/"
    if path.startswith("//"):  # "https://app.example//evil.example" must not become "//evil..."
        return None
    target = urlunsplit(("", "", path, parts.query, parts.fragment))
    return "".join(char if 0x20 < ord(char) < 0x7F else quote(char, safe="") for char in target)
