"""What the emulator knows about its one client beyond the id and secret: the public keys its
``private_key_jwt`` assertions are checked with, the ``post_logout_redirect_uris`` it may be
sent back to after logout, and the ``jti`` of every client assertion it accepted.

Registering is what a provider's console or dynamic registration does (the
``jwks`` and ``post_logout_redirect_uris`` client metadata of OpenID Connect Dynamic Client
Registration, https://openid.net/specs/openid-connect-registration-1_0.html, and of
RP-Initiated Logout §3.1, https://openid.net/specs/openid-connect-rpinitiated-1_0.html):
``Emulator(post_logout_redirect_uris=..., client_jwks=...)``, the controller's
``register_client_keys`` and ``register_post_logout_redirect_uris``, or the
``/_emulator/client-keys`` and ``/_emulator/post-logout-redirect-uris`` controls.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

__all__ = ["PublicKey", "Registration", "public_keys"]

PublicKey = RSAKey | ECKey | OKPKey

#: Members of a JWK that only a private key has (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def public_keys(jwks: Mapping[str, Any]) -> list[PublicKey]:
    """The public keys of a JWK Set (``{"keys": [...]}``) or of one JWK.

    :param jwks: a JWK Set or a JWK, as JSON data.
    :return: the keys (RSA, EC or OKP).
    :raises ValueError: not a JWK or JWK Set, a key with private or symmetric parts (send the
        public key only), a key of another type, or no key at all.
    """
    if not isinstance(jwks, Mapping):
        raise ValueError("expected a JWK Set or a JWK (a JSON object)")
    entries = jwks.get("keys") if "keys" in jwks else [jwks]
    if not isinstance(entries, list) or not entries:
        raise ValueError("a JWK Set needs a non-empty list of keys")
    found: list[PublicKey] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise ValueError("each key must be a JSON object")
        if _PRIVATE_MEMBERS & set(entry):
            raise ValueError("register the client's public key only, without private parts")
        if entry.get("kty") not in ("RSA", "EC", "OKP"):
            raise ValueError("client keys must be RSA, EC or OKP public keys")
        try:
            imported = KeySet.import_key_set({"keys": [dict(entry)]}).keys[0]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not a usable public key: {type(exc).__name__}") from None
        assert isinstance(imported, RSAKey | ECKey | OKPKey)
        found.append(imported)
    return found


def _absolute(uri: str) -> str:
    if not isinstance(uri, str):
        raise ValueError("a post_logout_redirect_uri must be a string")
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise ValueError(
            "a post_logout_redirect_uri must be an absolute http(s) URL without a fragment"
        )
    return uri


class Registration:
    """The one client's registered keys and logout URIs, and the assertions it spent; safe
    to share between threads.

    :param post_logout_redirect_uris: URIs registered from the start.
    """

    def __init__(self, post_logout_redirect_uris: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._keys: list[PublicKey] = []
        self._logout_uris: set[str] = {_absolute(uri) for uri in post_logout_redirect_uris}
        self._jtis: set[str] = set()

    # -- keys for private_key_jwt ---------------------------------------------------------

    def register_keys(self, jwks: Mapping[str, Any]) -> list[str | None]:
        """Replace the client's public keys with those of ``jwks``; returns their ``kid``s.

        :raises ValueError: see :func:`public_keys`.
        """
        keys = public_keys(jwks)
        with self._lock:
            self._keys = keys
        return [None if key.kid is None else str(key.kid) for key in keys]

    def keys(self) -> list[PublicKey]:
        """The client's registered public keys."""
        with self._lock:
            return list(self._keys)

    # -- post-logout redirect URIs --------------------------------------------------------

    def register_logout_uris(self, uris: Iterable[str]) -> list[str]:
        """Add ``uris`` to the registered post-logout redirect URIs; returns them all, sorted.

        :raises ValueError: a URI that is not an absolute http(s) URL without a fragment.
        """
        checked = [_absolute(uri) for uri in uris]
        with self._lock:
            self._logout_uris.update(checked)
            return sorted(self._logout_uris)

    def logout_uri_registered(self, uri: str) -> bool:
        """Whether ``uri`` exactly matches a registered post-logout redirect URI (simple
        string comparison, RP-Initiated Logout §3)."""
        with self._lock:
            return uri in self._logout_uris

    def logout_uris(self) -> list[str]:
        """The registered post-logout redirect URIs, sorted."""
        with self._lock:
            return sorted(self._logout_uris)

    # -- spent assertions -----------------------------------------------------------------

    def spend_jti(self, jti: str) -> bool:
        """Record an accepted assertion's ``jti``; ``False`` if it was spent already.

        Every ``jti`` is kept for the emulator's life, so one is never accepted twice, even
        after the assertion that carried it expired (RFC 7523 §3 lets a server forget it
        then; refusing it forever is the stricter reading, and a client that makes a fresh
        ``jti`` for each assertion never notices).
        """
        with self._lock:
            if jti in self._jtis:
                return False
            self._jtis.add(jti)
            return True
