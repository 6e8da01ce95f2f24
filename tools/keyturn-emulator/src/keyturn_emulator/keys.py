"""The emulator's signing keys: one key ring per running server.

Per algorithm (RS256 with RSA 2048, ES256 with P-256) the ring holds an **active** key, which
signs every ID token, and a **previous** one, which signed before the last rotation and is
still published, as providers keep a retired key in their JWKS while tokens it signed are
about. A fresh ring starts as if it had rotated once: the active key and a previous key, both
in the JWKS. :meth:`KeyRing.rotate` makes a brand-new key active (a ``kid`` no JWKS has
shown yet, so a client that cached the old set meets an unknown ``kid`` until it fetches the
set again) and either keeps the old active key published as the previous one, until the
next rotation, or drops it at once (``keep_previous=False``), so that tokens it signed no
longer verify against the published set.

Keys exist in memory only, are never written out, and are made when first needed (an ID
token to sign, a JWKS to serve), per algorithm: generating RSA keys takes a tenth of a
second each, which an emulator that never issues an ID token need not pay. Each ``kid`` is
16 random hex digits.

The JWKS holds public parts only (RFC 7517 §4 and §6, https://www.rfc-editor.org/rfc/rfc7517).
Every key the ring ever made is remembered privately, so an ID token this server signed is
recognised as its own (``id_token_hint`` at logout) even after its key left the JWKS.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Iterable, Mapping
from typing import Any, get_args

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeyParameters, KeySet, RSAKey

from .profiles import Algorithm

__all__ = ["ALGORITHMS", "KeyRing", "at_hash"]

#: The algorithms the emulator signs ID tokens with, each with keys of its own.
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)

_HASHES = {"RS256": hashlib.sha256, "ES256": hashlib.sha256}

SigningKey = RSAKey | ECKey


def at_hash(access_token: str, alg: str) -> str:
    """``at_hash`` of an access token for an ID token signed with ``alg``.

    The left half of the hash of the token's ASCII octets, with the hash of the JWS
    algorithm, base64url-encoded without padding (OpenID Connect Core §3.1.3.6,
    https://openid.net/specs/openid-connect-core-1_0.html#CodeIDToken). The same rule gives
    ``c_hash`` for a code; the emulator returns no code alongside an ID token (its only
    response type is ``code``), so it never needs one.

    :param access_token: the access token issued with the ID token.
    :param alg: the ID token's ``alg``.
    """
    digest = _HASHES[alg](access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def _new_key(alg: Algorithm) -> SigningKey:
    parameters: KeyParameters = {"kid": secrets.token_hex(8), "use": "sig", "alg": alg}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=parameters, private=True)
    return ECKey.generate_key("P-256", parameters=parameters, private=True)


class KeyRing:
    """The signing keys of one server, safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, SigningKey] = {}
        self._previous: dict[str, SigningKey] = {}
        self._made: list[SigningKey] = []

    # -- keys (lock held) -----------------------------------------------------------------

    def _make(self, alg: Algorithm) -> SigningKey:
        key = _new_key(alg)
        self._made.append(key)
        return key

    def _ensure(self, alg: Algorithm) -> SigningKey:
        active = self._active.get(alg)
        if active is None:
            self._previous[alg] = self._make(alg)
            active = self._active[alg] = self._make(alg)
        return active

    # -- reading ----------------------------------------------------------------------------

    def active_kid(self, alg: Algorithm) -> str:
        """The ``kid`` of the key that signs ``alg`` ID tokens now."""
        with self._lock:
            return str(self._ensure(alg).kid)

    def published(self, algs: Iterable[Algorithm]) -> list[dict[str, Any]]:
        """The public JWKs of ``algs``: each one's active key, then its previous key if kept.

        :param algs: the algorithms whose keys to list (a profile's advertised ones).
        :return: JWKs with ``kty``, ``kid``, ``use``, ``alg`` and the public parameters only.
        """
        found: list[dict[str, Any]] = []
        with self._lock:
            for alg in dict.fromkeys(algs):
                found.append(self._ensure(alg).as_dict(private=False))
                previous = self._previous.get(alg)
                if previous is not None:
                    found.append(previous.as_dict(private=False))
        return found

    def jwks(self, algs: Iterable[Algorithm]) -> dict[str, Any]:
        """The JWK Set of ``algs`` (RFC 7517 §5): ``{"keys": [...]}``, public parts only."""
        return {"keys": self.published(algs)}

    def summary(self) -> dict[str, Any]:
        """The active and published ``kid`` of each algorithm made so far, for the state
        control; no key material."""
        with self._lock:
            return {
                alg: {
                    "active": str(key.kid),
                    "previous": None
                    if self._previous.get(alg) is None
                    else str(self._previous[alg].kid),
                }
                for alg, key in self._active.items()
            }

    # -- changing ---------------------------------------------------------------------------

    def rotate(
        self, algs: Iterable[Algorithm] = ALGORITHMS, *, keep_previous: bool = True
    ) -> dict[str, str]:
        """Make a new key active for each of ``algs``.

        :param algs: the algorithms to rotate; all by default.
        :param keep_previous: keep the old active key in the JWKS (until the next rotation);
            ``False`` drops it at once, and with it the key that was previous already.
        :return: the new active ``kid`` of each rotated algorithm.
        :raises ValueError: an algorithm the emulator does not sign with.
        """
        chosen = list(dict.fromkeys(algs))
        for alg in chosen:
            if alg not in ALGORITHMS:
                raise ValueError(f"unknown signing algorithm {alg!r} (one of {ALGORITHMS})")
        kids: dict[str, str] = {}
        with self._lock:
            for alg in chosen:
                old = self._ensure(alg)
                if keep_previous:
                    self._previous[alg] = old
                else:
                    self._previous.pop(alg, None)
                new = self._active[alg] = self._make(alg)
                kids[alg] = str(new.kid)
        return kids

    # -- signing and recognising ------------------------------------------------------------

    def sign(self, claims: Mapping[str, Any] | bytes, alg: Algorithm) -> str:
        """A compact JWS of ``claims``, signed with the active ``alg`` key, ``kid`` in its
        header.

        :param claims: the JWT claims, or the payload's bytes as they are to be signed (for
            a payload no JSON encoder would write: nested past any parser's depth, say).
        :param alg: RS256 or ES256.
        """
        with self._lock:
            key = self._ensure(alg)
        header = {"alg": alg, "kid": str(key.kid), "typ": "JWT"}
        if isinstance(claims, bytes):
            return jws.serialize_compact(header, claims, key, algorithms=[alg])
        return jwt.encode(header, dict(claims), key, algorithms=[alg])

    def issued_here(self, token: str) -> dict[str, Any] | None:
        """The claims of a JWT that one of this ring's keys signed, published or not, else
        ``None``. Its times are not checked.

        :param token: a compact JWS.
        """
        with self._lock:
            keys = KeySet(list(self._made))
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError, TypeError):
            return None
        return dict(decoded.claims)
