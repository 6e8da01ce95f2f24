"""The keys behind every cookie keyturn writes, derived from the app's secret.

One secret (``KEYTURN_SECRET``, at least 32 characters of randomness: ``python -c "import
secrets; print(secrets.token_urlsafe(32))"``) feeds HKDF-SHA256, once per purpose: the session
cookie, the sign-in flow cookie and the CSRF cookie each get a key of their own, so a value
made for one is useless as another.

Rotation: pass several secrets, newest first. New cookies use the first; cookies made with
any of them are still read, so users stay signed in while the old secret is phased out.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyturn.errors import ConfigurationError

__all__ = ["MIN_SECRET_LENGTH", "SECRET_ENV", "DerivedKey", "Keyring"]

#: The environment variable read when no secret is passed.
SECRET_ENV = "KEYTURN_SECRET"
#: The shortest secret accepted, in characters.
MIN_SECRET_LENGTH = 32

_INFO = b"keyturn cookie key v1"


@dataclass(frozen=True)
class DerivedKey:
    """A 256-bit key for one purpose, and a public id for it (``kid``)."""

    kid: str
    material: bytes = field(repr=False)


class Keyring:
    """The app's secrets, and the keys derived from them for each purpose.

    :param secrets: one secret, or several newest first (rotation); ``KEYTURN_SECRET`` when
        omitted.
    :param environ: where to read ``KEYTURN_SECRET``; ``os.environ`` by default.
    :raises ConfigurationError: no secret, or one shorter than 32 characters.
    """

    def __init__(
        self,
        secrets: str | Sequence[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if secrets is None:
            value = (os.environ if environ is None else environ).get(SECRET_ENV, "")
            if not value:
                raise ConfigurationError(
                    f"no secret for the session cookies: set {SECRET_ENV} (for example to the "
                    'output of python -c "import secrets; print(secrets.token_urlsafe(32))") '
                    "or pass secret="
                )
            secrets = [value]
        elif isinstance(secrets, str):
            secrets = [secrets]
        if not secrets:
            raise ConfigurationError("secret= needs at least one secret")
        for number, secret in enumerate(secrets, 1):
            if len(secret) < MIN_SECRET_LENGTH:
                raise ConfigurationError(
                    f"secret {number} is {len(secret)} characters long; use at least "
                    f"{MIN_SECRET_LENGTH} random characters"
                )
        self._secrets = tuple(s.encode() for s in secrets)
        self._cache: dict[str, tuple[DerivedKey, ...]] = {}

    def __repr__(self) -> str:
        return f"Keyring(<{len(self._secrets)} secret(s)>)"

    def keys(self, purpose: str) -> tuple[DerivedKey, ...]:
        """The keys for ``purpose``, newest first: write with ``[0]``, read with any.

        :param purpose: what the key protects; also the HKDF salt (a cookie's base name).
        """
        cached = self._cache.get(purpose)
        if cached is None:
            cached = tuple(_derive(secret, purpose) for secret in self._secrets)
            self._cache[purpose] = cached
        return cached


def _derive(secret: bytes, purpose: str) -> DerivedKey:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=purpose.encode(), info=_INFO)
    material = hkdf.derive(secret)
    digest = hashlib.sha256(b"kid\0" + material).digest()[:9]
    return DerivedKey(kid=base64.urlsafe_b64encode(digest).decode(), material=material)
