"""Where keyturn may send the browser after sign-in or sign-out: only back to the app.

A ``callbackUrl`` is accepted when it is a path on this site (``/dashboard?tab=2``) or an
absolute URL with the app's origin: the same scheme, host and port, where a port written out
as the scheme's default (``https://app.example:443``) is the same as none. Everything else
(another host or port, user information before the host, a scheme-relative
``//evil.example``, also when hidden in the path of an absolute URL, backslash tricks that
some browsers read as ``//``, control characters, ``javascript:``) is refused: an open
redirect would let a phishing link borrow the app's name. The accepted path is returned as
ASCII, with other characters (and ``"``) percent-encoded, so it fits a ``Location`` header and
takes no more room in the flow cookie's JSON than its own length.

The target is also kept short: it travels in the sign-in's flow cookie, which a browser drops
silently past 4 KB. One longer than :data:`MAX_CALLBACK_URL` loses its fragment, then its
query; a path that is still too long becomes ``/``.
"""

from __future__ import annotations

from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

__all__ = ["MAX_CALLBACK_URL", "same_origin", "same_origin_target"]

#: The longest target kept, in characters once percent-encoded (path, query and fragment).
MAX_CALLBACK_URL = 1024

_FORBIDDEN = frozenset("\\\r\n\t\0")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin_target(
    value: str | None, origin: str, default: str = "/", max_length: int = MAX_CALLBACK_URL
) -> str | None:
    """The path to redirect to (``default`` when ``value`` is empty), or ``None`` if refused.

    :param value: the ``callbackUrl`` the request carried.
    :param origin: the app's ``scheme://host[:port]``.
    :param max_length: the longest target returned; a longer one is cut back to its path, or
        to ``/`` (see the module's docstring).
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
        if not same_origin(f"{parts.scheme}://{parts.netloc}", origin):
            return None
    elif not value.startswith("/"):
        return None
    path = parts.path or "/"
    if path.startswith("//"):  # "https://app.example//evil.example" must not become "//evil..."
        return None
    for query, fragment in ((parts.query, parts.fragment), (parts.query, ""), ("", "")):
        target = _ascii(urlunsplit(("", "", path, query, fragment)))
        if len(target) <= max_length:
            return target
    return "/"


def same_origin(first: str, second: str) -> bool:
    """Whether two ``scheme://host[:port]`` texts name the same origin.

    Scheme and host compare without case, and the scheme's default port equals no port. A
    text with user information (``https://app.example@evil.example``), a path, or a port
    that is not a number from 1 to 65535 is no origin and matches nothing.
    """
    one, other = _origin_key(first), _origin_key(second)
    return one is not None and one == other


def _origin_key(text: str) -> tuple[str, str, int | None] | None:
    try:
        parts: SplitResult = urlsplit(text)
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    if "@" in parts.netloc or parts.path or parts.query or parts.fragment:
        return None
    host = parts.hostname
    if not host or port == 0:
        return None
    scheme = parts.scheme.lower()
    return scheme, host, _DEFAULT_PORTS.get(scheme) if port is None else port


def _ascii(target: str) -> str:
    return "".join(
        char if 0x20 < ord(char) < 0x7F and char != '"' else quote(char, safe="") for char in target
    )
