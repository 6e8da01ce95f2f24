"""PKCE (RFC 7636) and the other random values of an authorize request."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Literal

__all__ = ["code_challenge", "new_code_verifier", "random_token"]


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random string for ``state`` and ``nonce`` (256 bits by default)."""
    return secrets.token_urlsafe(nbytes)


def new_code_verifier() -> str:
    """A fresh code verifier: 43 characters from the unreserved set (32 random bytes)."""
    return secrets.token_urlsafe(32)


def code_challenge(verifier: str, method: Literal["S256", "plain"] = "S256") -> str:
    """The ``code_challenge`` for ``verifier``.

    :raises ValueError: the verifier is not 43 to 128 unreserved characters (RFC 7636 §4.1).
    """
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    if not 43 <= len(verifier) <= 128 or not set(verifier) <= allowed:
        raise ValueError("a PKCE code verifier is 43 to 128 characters of [A-Za-z0-9-._~]")
    if method == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
