"""CSRF protection for keyturn's state-changing routes (sign-out): a signed double submit.

``GET /auth/csrf`` answers ``{"csrfToken": token}`` and sets an HttpOnly cookie holding the
token and an HMAC of it under the app's key. A ``POST`` must send the same token back in a
``csrfToken`` field or an ``X-CSRF-Token`` header. Another site can make the browser send the
cookie but cannot read the token (the same-origin policy keeps the JSON answer from it), and
cannot forge a cookie whose HMAC checks. Requests whose ``Origin`` (or ``Sec-Fetch-Site``)
says they come from another site are refused before any of that (an origin that writes its
scheme's default port, ``https://app.example:443``, is the app's own).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from .keys import Keyring
from .messages import WebRequest
from .redirects import same_origin

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "Csrf"]

#: The form or JSON field a POST carries the token in.
CSRF_FIELD = "csrfToken"
#: The header it may use instead.
CSRF_HEADER = "x-csrf-token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Csrf:
    """Issues and checks CSRF tokens.

    :param keyring: the app's keys.
    :param purpose: the cookie's base name, which is also the key's purpose.
    """

    def __init__(self, keyring: Keyring, purpose: str) -> None:
        self._keys = [key.material for key in keyring.keys(purpose)]

    def _mac(self, key: bytes, token: str) -> str:
        return _b64(hmac.new(key, token.encode(), hashlib.sha256).digest())

    def token_of(self, cookie: str | None) -> str | None:
        """The token in a cookie value this app made, or ``None``."""
        if not cookie or cookie.count(".") != 1:
            return None
        token, mac = cookie.split(".")
        for key in self._keys:
            if hmac.compare_digest(self._mac(key, token), mac):
                return token
        return None

    def issue(self, cookie: str | None) -> tuple[str, str | None]:
        """The token to hand out, and a cookie value to set (``None``: the current one is fine).

        A cookie made with an older secret is re-signed with the newest.
        """
        token = self.token_of(cookie) or _b64(secrets.token_bytes(32))
        value = f"{token}.{self._mac(self._keys[0], token)}"
        return token, None if value == cookie else value

    def check(self, request: WebRequest, cookie: str | None, origin: str | None = None) -> bool:
        """Whether a state-changing request is the app's own.

        :param origin: the app's public origin, which a browser puts in ``Origin``; the
            request's own by default (behind a proxy, pass the app's ``url``).
        """
        sent_from = request.headers.get("origin")
        if sent_from is not None and not same_origin(sent_from, origin or request.origin):
            return False
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return False
        expected = self.token_of(cookie)
        sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
        return expected is not None and sent is not None and hmac.compare_digest(expected, sent)
