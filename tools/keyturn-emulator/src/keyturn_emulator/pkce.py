"""PKCE as the emulator checks it (RFC 7636): the shape of a challenge, and the verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

__all__ = ["valid_challenge", "verify_pkce"]

#: 43 to 128 unreserved characters: the shape of a verifier and of a challenge (§4.1, §4.2).
_UNRESERVED = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


def valid_challenge(challenge: str) -> bool:
    """Whether ``challenge`` has the shape RFC 7636 §4.2 allows.

    :param challenge: the ``code_challenge`` of an authorize request.
    :return: ``True`` for 43 to 128 unreserved characters.
    """
    return _UNRESERVED.match(challenge) is not None


def verify_pkce(verifier: str, challenge: str, method: str) -> bool:
    """RFC 7636 §4.6: does ``verifier`` match the ``challenge`` sent with ``method``?

    :param verifier: the ``code_verifier`` of the token request.
    :param challenge: the ``code_challenge`` of the authorize request.
    :param method: ``S256`` or ``plain``.
    :return: ``True`` when they match.
    """
    if not _UNRESERVED.match(verifier):
        return False
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    else:
        computed = verifier
    return hmac.compare_digest(computed, challenge)
