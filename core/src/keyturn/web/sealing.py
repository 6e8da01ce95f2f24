"""Seal a JSON payload into a cookie value: a compact JWE (``dir`` + ``A256GCM``).

The payload is encrypted and authenticated with a key of the :class:`~keyturn.web.keys.Keyring`
for one purpose, and carries ``iat`` and ``exp``. :meth:`Sealer.unseal` returns ``None`` for
anything it cannot trust (tampered, truncated, expired, made with another key or for another
purpose, or simply not a JWE), never raising: a bad cookie means "signed out".

Values are written with joserfc. They are read here, with AES-GCM from ``cryptography``
directly, because every page load of a signed-in user reads one and joserfc's general JWE
machinery (an algorithm registry built per call, its header checks, key wrapping) costs about
ten times the decryption itself. Reading accepts only what :meth:`Sealer.seal` writes: the
protected header is exactly ``alg`` ``dir``, ``enc`` ``A256GCM`` and a known ``kid``; the
encrypted key is empty; the IV is 96 bits and the tag 128 bits; every part is unpadded
base64url in its one canonical spelling; the tag covers the ciphertext and the protected
header as sent (the additional authenticated data of RFC 7516); the payload is a JSON object
whose ``exp`` is an integer still in the future. joserfc checks all of this too, except that
it allows other registered header members, which keyturn never writes.

A plaintext is JSON, or JSON packed by :mod:`keyturn.web.packing` (compressed in parts, each
token apart) when :meth:`Sealer.seal` is told which values hold secrets. JSON nested deeper
than a parser follows is refused like any other unreadable value.
"""

from __future__ import annotations

import binascii
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pydantic_core
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc import jwe
from joserfc.jwk import OctKey

from . import packing
from .keys import Keyring

__all__ = ["MAX_SEALED_LENGTH", "Sealer"]

log = logging.getLogger("keyturn.web")

#: Longer values are refused unread (a session cookie is at most a few chunks of 4 KB).
MAX_SEALED_LENGTH = 64 * 1024

_HEADER = {"alg": "dir", "enc": "A256GCM"}
_HEADER_MEMBERS = frozenset({"alg", "enc", "kid"})
#: The longest protected header read (joserfc's limit); ours are about 80 characters.
_MAX_HEADER_LENGTH = 1024
_IV_BYTES = 12
_TAG_BYTES = 16
_PACKED = bytes([packing.FORMAT])
#: base64url to standard base64, applied only after ``+``, ``/`` and ``=`` were refused.
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
#: The characters that can end a canonical unpadded base64 text missing 1 or 2 pad characters:
#: the ones whose unused low bits are zero.
_CANONICAL_LAST = ("", "AEIMQUYcgkosw048", "AQgw")


class _Unreadable(Exception):
    """A value that is not a JWE this sealer could have written; read as absent."""


class Sealer:
    """Encrypts payloads for one purpose and reads them back.

    :param keyring: the app's keys.
    :param purpose: which derived key to use (the cookie's base name).
    :param clock: returns epoch seconds; decides ``iat`` and expiry.
    """

    def __init__(self, keyring: Keyring, purpose: str, clock: Callable[[], float]) -> None:
        self.purpose = purpose
        self.clock = clock
        keys = keyring.keys(purpose)
        self._kid = keys[0].kid
        self._sealing_key = OctKey.import_key(keys[0].material)
        # Built once per secret: reading a cookie only looks its kid up here.
        self._ciphers = {key.kid: AESGCM(key.material) for key in keys}
        # The protected header seal() writes with each key, exactly as sent: a cookie that
        # carries one of these needs no decoding to find its key. Any other spelling takes
        # the general check in _parse_header.
        self._sealed_headers: dict[str, AESGCM] = {}
        for key in keys:
            written = jwe.encrypt_compact(
                {**_HEADER, "kid": key.kid}, b"{}", OctKey.import_key(key.material)
            ).split(".", 1)[0]
            if self._parse_header(written) is self._ciphers[key.kid]:
                self._sealed_headers[written] = self._ciphers[key.kid]

    def seal(
        self, payload: dict[str, Any], max_age: int, apart: Sequence[Sequence[str]] = ()
    ) -> str:
        """``payload`` plus ``iat``/``exp`` (now + ``max_age`` unless it has an ``exp``).

        :param apart: paths of the values that hold secrets (``("jwt", "tokens",
            "access_token")``); when given, the plaintext is compressed with each of them
            apart from everything else (:func:`keyturn.web.packing.pack`).
        """
        now = int(self.clock())
        body = {"iat": now, "exp": now + max_age, **payload}
        if apart:
            plaintext = packing.pack(body, apart)
        else:
            plaintext = json.dumps(body, separators=(",", ":")).encode()
        return jwe.encrypt_compact({**_HEADER, "kid": self._kid}, plaintext, self._sealing_key)

    def unseal(self, value: str) -> dict[str, Any] | None:
        """The payload of a value made by :meth:`seal` and not expired, else ``None``."""
        plaintext = self.open(value)
        return None if plaintext is None else self.payload(plaintext)

    def open(self, value: str) -> bytes | None:
        """The authenticated plaintext of a value made by :meth:`seal`, else ``None``.

        Neither parsed nor checked for expiry: :meth:`payload` does both. For a reader that
        parses the JSON its own way and hands back to :meth:`payload` whatever it refuses.
        """
        if not value or len(value) > MAX_SEALED_LENGTH:
            return None
        parts = value.split(".")
        if len(parts) != 5:
            return None
        cipher = self._cipher_for(parts[0])
        if cipher is None:
            return None
        try:
            plaintext = _decrypt(cipher, parts)
        except (_Unreadable, InvalidTag):
            log.info("a %s cookie failed to decrypt; treated as absent", self.purpose)
            return None
        if plaintext[:1] != _PACKED:
            return plaintext
        unpacked = packing.unpack(plaintext)
        if unpacked is None:
            log.info("a %s cookie failed to unpack; treated as absent", self.purpose)
        return unpacked

    def payload(self, plaintext: bytes) -> dict[str, Any] | None:
        """The payload in ``plaintext`` (from :meth:`open`) if not expired, else ``None``."""
        try:
            body = _parse_json(plaintext)
        except ValueError:
            log.info("a %s cookie failed to decrypt; treated as absent", self.purpose)
            return None
        if not isinstance(body, dict):
            return None
        exp = body.get("exp")
        if not isinstance(exp, int) or exp <= self.clock():
            log.info("an expired %s cookie; treated as absent", self.purpose)
            return None
        return body

    def _cipher_for(self, encoded: str) -> AESGCM | None:
        # The kid in the protected header picks the key; an unknown kid is a foreign key.
        cipher = self._sealed_headers.get(encoded)
        return cipher if cipher is not None else self._parse_header(encoded)

    def _parse_header(self, encoded: str) -> AESGCM | None:
        if len(encoded) > _MAX_HEADER_LENGTH:
            return None
        try:
            header = _parse_json(_b64decode(encoded))
        except (_Unreadable, ValueError):  # not base64url, or not JSON
            return None
        if not isinstance(header, dict) or header.keys() != _HEADER_MEMBERS:
            return None
        if header["alg"] != "dir" or header["enc"] != "A256GCM":
            return None
        kid = header["kid"]
        return self._ciphers.get(kid) if isinstance(kid, str) else None


def _decrypt(cipher: AESGCM, parts: list[str]) -> bytes:
    """The plaintext of a compact JWE whose header was already checked.

    :raises _Unreadable: a part is malformed or the wrong size.
    :raises InvalidTag: the ciphertext, IV, tag or protected header was changed, or another
        key sealed it.
    """
    header, encrypted_key, iv_text, ciphertext_text, tag_text = parts
    if encrypted_key:  # dir: the key is shared, never sent
        raise _Unreadable
    iv = _b64decode(iv_text)
    tag = _b64decode(tag_text)
    if len(iv) != _IV_BYTES or len(tag) != _TAG_BYTES:
        raise _Unreadable
    ciphertext = _b64decode(ciphertext_text)
    # The additional authenticated data is the protected header exactly as sent (ASCII,
    # which _b64decode has already required).
    return cipher.decrypt(iv, ciphertext + tag, header.encode("ascii"))


def _b64decode(text: str) -> bytes:
    """Strict unpadded base64url, as joserfc reads it: one spelling for each byte string.

    :raises _Unreadable: padding, characters outside the alphabet, an impossible length, or
        non-zero unused bits in the last character.
    """
    if "+" in text or "/" in text or "=" in text:
        raise _Unreadable
    missing = -len(text) % 4
    if missing == 3 or (missing and text[-1] not in _CANONICAL_LAST[missing]):
        raise _Unreadable
    try:
        standard = text.encode("ascii").translate(_TO_STANDARD) + b"=" * missing
        return binascii.a2b_base64(standard, strict_mode=True)
    except ValueError as exc:  # binascii.Error, or text that is not ASCII
        raise _Unreadable from exc


def _parse_json(plaintext: bytes) -> Any:
    """``json.loads(plaintext)``, faster: pydantic-core's parser, the standard one as fallback.

    The plaintext is authenticated, so it is what :meth:`Sealer.seal` wrote with
    ``json.dumps``. For such text both parsers give equal values; the fallback covers what
    pydantic-core refuses and ``json`` accepts (a lone surrogate escape in some string, arrays
    and objects nested deeper than pydantic-core's limit of 200). Only object keys go through
    pydantic-core's string cache, so no token value stays in it.

    :raises ValueError: not JSON, or nested deeper than ``json`` follows (``RecursionError``
        is turned into ``ValueError``: such a value is unreadable, not a crash).
    """
    try:
        return pydantic_core.from_json(plaintext, cache_strings="keys")
    except ValueError:
        try:
            return json.loads(plaintext)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc
