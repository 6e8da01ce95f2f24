"""A provider's JSON Web Key Set (RFC 7517): which of its keys may verify an ID token.

:func:`parse_key_set` reads a set with joserfc (imported on first use) and keeps the keys
that can verify a signature; the others are skipped, each with its reason:

* ``use`` other than ``sig``, or ``key_ops`` without ``verify``: for encryption or another job;
* ``kty`` other than ``RSA``, ``EC`` and ``OKP``: ``oct`` (a shared secret has no place in a
  public set, and HMAC algorithms are refused anyway) and types keyturn does not know;
* private members (``d``, ``p``, ``q``...): a provider that publishes its private key has
  lost it, and a signature made with it proves nothing;
* RSA keys under 2048 bits (RFC 7518 §3.3), EC and OKP keys on curves keyturn does not verify
  with (X25519 and X448 are for key agreement), and keys joserfc cannot read.

Which key verifies a token (:meth:`KeySet.select`): the algorithm comes from the token's
header, and it must fit the key: ``RS*``/``PS*`` an RSA key, ``ES256``/``ES384``/``ES512``/
``ES256K`` an EC key on P-256/P-384/P-521/secp256k1, ``EdDSA`` an OKP key on Ed25519 or
Ed448 (``Ed25519``/``Ed448`` that curve only), and the key's own ``alg`` when it names one.

* A ``kid`` in the header: the keys with that ``kid`` that fit the algorithm. One: it. None:
  :class:`UnknownKeyError` (the client fetches the set again, once). Several: refused as
  ambiguous: a set that publishes one ``kid`` twice for keys that could verify the same token
  cannot say which one signed it. Keys sharing a ``kid`` but told apart by their type, curve
  or ``alg`` are fine.
* No ``kid``: only when exactly one key of the set fits the algorithm.

Fetching the set and fetching it again on an unknown ``kid`` is :class:`KeySets`' job: an
unknown ``kid`` fetches the set again at most once per :data:`REFETCH_COOLDOWN` (60 s) per
``jwks_uri`` on the client's clock, whatever the number of tokens that ask, and concurrent
callers share that one request.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .documents import JWKS_TTL, Document, DocumentKind, DocumentProblem, Documents
from .effects import Operation, Shared
from .errors import KeySetError
from .singleflight import SingleFlight

if TYPE_CHECKING:
    from joserfc.jwk import Key

__all__ = [
    "JWKS",
    "REFETCH_COOLDOWN",
    "SIGNING_ALGORITHMS",
    "KeySet",
    "KeySets",
    "SigningKey",
    "UnknownKeyError",
    "parse_key_set",
    "require_usable",
]

#: Seconds between two fetches of one key set forced by an unknown ``kid``.
REFETCH_COOLDOWN = 60.0

#: Each signature algorithm keyturn verifies with a key set: the key type and curves it needs.
_ALGORITHMS: dict[str, tuple[str, frozenset[str] | None]] = {
    **{f"{family}{size}": ("RSA", None) for family in ("RS", "PS") for size in (256, 384, 512)},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "ES256K": ("EC", frozenset({"secp256k1"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
    "Ed25519": ("OKP", frozenset({"Ed25519"})),
    "Ed448": ("OKP", frozenset({"Ed448"})),
}
#: The JWS algorithms an ID token may be signed with when keyturn verifies it with the
#: provider's keys. ``none`` and the HMAC algorithms (``HS*``) are not among them.
SIGNING_ALGORITHMS = frozenset(_ALGORITHMS)

#: Curves keyturn verifies signatures on, by key type.
_CURVES = {
    "EC": frozenset({"P-256", "P-384", "P-521", "secp256k1"}),
    "OKP": frozenset({"Ed25519", "Ed448"}),
}
#: Members only a private (or symmetric) key has.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: The smallest RSA modulus accepted, in bits (RFC 7518 §3.3). Checked before joserfc reads
#: the key, which warns about smaller ones.
MIN_RSA_BITS = 2048
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class UnknownKeyError(Exception):
    """No key of the set fits the token: its ``kid`` is not there, or no key of its type is.

    Raised by :meth:`KeySet.select`; :func:`keyturn.idtoken.verify_signature` turns it into
    :class:`~keyturn.idtoken.UnknownSigningKeyError`. Fetching the set again may help.
    """


class AmbiguousKeyError(Exception):
    """Several keys of the set fit the token and nothing tells them apart."""


@dataclass(frozen=True, repr=False)
class SigningKey:
    """One key of a set that can verify signatures.

    :ivar kid: its key id, or ``None``.
    :ivar kty: ``RSA``, ``EC`` or ``OKP``.
    :ivar curve: the curve of an EC or OKP key (``P-256``, ``Ed25519``); ``None`` for RSA.
    :ivar alg: the only algorithm the key is for, when the set says so.
    :ivar key: the joserfc key (public).
    """

    kid: str | None
    kty: str
    curve: str | None
    alg: str | None
    key: Key

    def fits(self, alg: str) -> bool:
        """Whether this key can verify a signature made with ``alg``."""
        needed = _ALGORITHMS.get(alg)
        if needed is None or needed[0] != self.kty:
            return False
        if needed[1] is not None and self.curve not in needed[1]:
            return False
        return self.alg is None or self.alg == alg

    def __repr__(self) -> str:
        curve = f" {self.curve}" if self.curve else ""
        return f"SigningKey(kid={self.kid!r}, {self.kty}{curve}, alg={self.alg!r})"


@dataclass(frozen=True)
class KeySet:
    """The usable keys of a JWK Set, and why the others were skipped.

    :ivar keys: the keys that can verify signatures, in the set's order.
    :ivar skipped: for each reason, how many keys were skipped for it.
    """

    keys: tuple[SigningKey, ...]
    skipped: Mapping[str, int] = field(default_factory=dict)

    def select(self, kid: str | None, alg: str) -> SigningKey:
        """The one key that may verify a token with this header; see the module's rules.

        :raises UnknownKeyError: no key fits.
        :raises AmbiguousKeyError: several keys fit and nothing tells them apart.
        """
        fitting = [key for key in self.keys if key.fits(alg) and (kid is None or key.kid == kid)]
        if not fitting:
            raise UnknownKeyError
        if len(fitting) > 1:
            raise AmbiguousKeyError
        return fitting[0]

    def describe_skipped(self) -> str:
        """The reasons keys were skipped, for a message: ``"2 for use enc, 1 of kty oct"``."""
        return ", ".join(f"{count} {reason}" for reason, count in self.skipped.items())


def _skip_reason(data: Any) -> str | None:
    """Why a member of ``keys`` cannot verify signatures, judged before reading it."""
    if not isinstance(data, dict):
        return "that are not JSON objects"
    kty = data.get("kty")
    if kty not in ("RSA", "EC", "OKP"):
        return "of a key type that verifies no signature keyturn accepts (kty)"
    use = data.get("use")
    if use is not None and use != "sig":
        return "not for signatures (use)"
    ops = data.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return "not for verifying (key_ops)"
    if _PRIVATE_MEMBERS & set(data):
        return "with private members, which a public key set never holds"
    for name in ("kid", "alg", "crv"):
        if name in data and not isinstance(data[name], str):
            return f"with an unusable {name}"
    alg = data.get("alg")
    if alg is not None and alg not in SIGNING_ALGORITHMS:
        return "for an algorithm keyturn does not verify with (alg)"
    if kty != "RSA" and data.get("crv") not in _CURVES[kty]:
        return "on a curve keyturn does not verify with (crv)"
    if kty == "RSA" and _modulus_bits(data.get("n")) < MIN_RSA_BITS:
        return f"of RSA under {MIN_RSA_BITS} bits"
    return None


def _modulus_bits(value: Any) -> int:
    """The size of an RSA modulus given in base64url, in bits; 0 if it cannot be read."""
    if not isinstance(value, str) or not _BASE64URL.fullmatch(value):
        return 0
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, binascii.Error):
        return 0
    return int.from_bytes(raw, "big").bit_length()


def _read_key(data: dict[str, Any]) -> SigningKey | str:
    """The key, or why joserfc could not read it as one that verifies."""
    from joserfc.jwk import JWKRegistry

    members = {
        name: value
        for name, value in data.items()
        if name in ("kty", "n", "e", "crv", "x", "y", "kid", "alg")
    }
    try:
        key = JWKRegistry.import_key(members)
        public = key.public_key  # reading the numbers happens here
    except Exception:  # anything a malformed key makes joserfc or cryptography raise
        return "that could not be read"
    kty = str(data["kty"])
    curve = None if kty == "RSA" else str(data["crv"])
    if kty == "RSA" and getattr(public, "key_size", 0) < MIN_RSA_BITS:
        return f"of RSA under {MIN_RSA_BITS} bits"
    kid = data.get("kid")
    alg = data.get("alg")
    return SigningKey(kid, kty, curve, alg, key)


def parse_key_set(data: Any) -> KeySet:
    """The usable keys of a decoded JWK Set; see the module's rules.

    :param data: the decoded JSON object.
    :raises DocumentProblem: it is not a JWK Set (no ``keys`` array).
    """
    members = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(members, list):
        raise DocumentProblem("is not a JWK Set (keys)")
    keys: list[SigningKey] = []
    skipped: Counter[str] = Counter()
    for member in members:
        reason = _skip_reason(member)
        if reason is None:
            read = _read_key(member)
            if isinstance(read, SigningKey):
                keys.append(read)
                continue
            reason = read
        skipped[reason] += 1
    return KeySet(tuple(keys), dict(skipped))


def require_usable(keys: KeySet) -> KeySet:
    """``keys``, if it has a key that can verify signatures.

    :raises DocumentProblem: none of its keys can.
    """
    if not keys.keys:
        detail = keys.describe_skipped() or "the set is empty"
        raise DocumentProblem(f"has no key that can verify an ID token ({detail})")
    return keys


def _usable_key_set(data: Any) -> KeySet:
    return require_usable(parse_key_set(data))


def _invalid(provider: str, url: str, reason: str) -> KeySetError:
    return KeySetError(
        provider=provider,
        operation="jwks",
        error="invalid_jwks",
        description=f"the key set at {url} {reason}",
        permanent=False,
    )


#: Key sets: kept ten minutes by default; one that cannot be used is a
#: :class:`~keyturn.KeySetError`.
JWKS = DocumentKind(operation="jwks", default_ttl=JWKS_TTL, invalid=_invalid)


class KeySets:
    """A client's key sets: fetched through its :class:`~keyturn.documents.Documents`.

    :param documents: where documents are fetched and kept.
    :param clock: the client's clock, for the refetch cooldown.
    :param cooldown: seconds between two refetches of one set forced by unknown ``kid``\\ s.
    """

    def __init__(
        self,
        documents: Documents,
        clock: Callable[[], float],
        cooldown: float = REFETCH_COOLDOWN,
    ) -> None:
        self.documents = documents
        self.clock = clock
        self.cooldown = cooldown
        self._lock = threading.Lock()
        #: jwks_uri -> when an unknown kid last made it fetch the set again.
        self._refetched_at: dict[str, float] = {}
        self._flight: SingleFlight[Document[KeySet]] = SingleFlight(clock=clock)

    def get_op(self, provider: str, uri: str) -> Operation[Document[KeySet]]:
        """The set at ``uri``: cached while fresh, else fetched (once for concurrent callers).

        :raises TransportError: it cannot be fetched (and no stale copy stands in).
        :raises KeySetError: it has no usable key, or is not a JWK Set.
        """
        return (yield from self.documents.get_op(uri, JWKS, provider, _usable_key_set))

    def refetch_op(self, provider: str, uri: str) -> Operation[Document[KeySet]]:
        """The set fetched again past the cache, unless the cooldown holds: then the cached one.

        Callers at the same moment share one call, so a flood of tokens with unknown
        ``kid``\\ s makes at most one request per cooldown.
        """
        return (yield from Shared(self._flight, uri, lambda: self._refetch_op(provider, uri)))

    def _refetch_op(self, provider: str, uri: str) -> Operation[Document[KeySet]]:
        now = self.clock()
        with self._lock:
            last = self._refetched_at.get(uri)
            allowed = last is None or now - last >= self.cooldown
            if allowed:
                self._refetched_at[uri] = now
        if not allowed:
            return (yield from self.get_op(provider, uri))
        return (
            yield from self.documents.get_op(uri, JWKS, provider, _usable_key_set, refetch=True)
        )
