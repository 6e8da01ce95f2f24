"""Seal a JSON payload into a cookie value: a compact JWE (``dir`` + ``A256GCM``) via joserfc.

The payload is encrypted and authenticated with a key of the :class:`~keyturn.web.keys.Keyring`
for one purpose, and carries ``iat`` and ``exp``. :meth:`Sealer.unseal` returns ``None`` for
anything it cannot trust (tampered, truncated, expired, made with another key or for another
purpose, or simply not a JWE), never raising: a bad cookie means "signed out".
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from .keys import Keyring

__all__ = ["MAX_SEALED_LENGTH", "Sealer"]

log = logging.getLogger("keyturn.web")

#: Longer values are refused unread (a session cookie is at most a few chunks of 4 KB).
MAX_SEALED_LENGTH = 64 * 1024

_HEADER = {"alg": "dir", "enc": "A256GCM"}
_ALGORITHMS = ["dir", "A256GCM"]


class Sealer:
    """Encrypts payloads for one purpose and reads them back.

    :param keyring: the app's keys.
    :param purpose: which derived key to use (the cookie's base name).
    :param clock: returns epoch seconds; decides ``iat`` and expiry.
    """

    def __init__(self, keyring: Keyring, purpose: str, clock: Callable[[], float]) -> None:
        self.purpose = purpose
        self.clock = clock
        self._keys = [(key.kid, OctKey.import_key(key.material)) for key in keyring.keys(purpose)]

    def seal(self, payload: dict[str, Any], max_age: int) -> str:
        """``payload`` plus ``iat``/``exp`` (now + ``max_age`` unless it has an ``exp``)."""
        now = int(self.clock())
        body = {"iat": now, "exp": now + max_age, **payload}
        kid, key = self._keys[0]
        plaintext = json.dumps(body, separators=(",", ":")).encode()
        return jwe.encrypt_compact({**_HEADER, "kid": kid}, plaintext, key)

    def unseal(self, value: str) -> dict[str, Any] | None:
        """The payload of a value made by :meth:`seal` and not expired, else ``None``."""
        if not value or len(value) > MAX_SEALED_LENGTH:
            return None
        key = self._key_for(value)
        if key is None:
            return None
        try:
            plaintext = jwe.decrypt_compact(value, key, algorithms=_ALGORITHMS).plaintext
            body = json.loads(plaintext or b"")
        except (JoseError, ValueError, TypeError):
            log.info("a %s cookie failed to decrypt; treated as absent", self.purpose)
            return None
        if not isinstance(body, dict):
            return None
        exp = body.get("exp")
        if not isinstance(exp, int) or exp <= self.clock():
            log.info("an expired %s cookie; treated as absent", self.purpose)
            return None
        return body

    def _key_for(self, value: str) -> OctKey | None:
        # The kid in the protected header picks the key; an unknown kid is a foreign key.
        try:
            encoded = value.split(".", 1)[0]
            header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        except (ValueError, TypeError):  # binascii.Error is a ValueError
            return None
        if not isinstance(header, dict):
            return None
        kid = header.get("kid")
        if header.get("alg") != "dir" or header.get("enc") != "A256GCM":
            return None
        for known, key in self._keys:
            if known == kid:
                return key
        return None
