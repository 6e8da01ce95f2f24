"""The provider's signing keys: which key signed an ID token, and a rotation at the provider.

keyturn verifies the signature of every ID token of a provider whose spec (as its discovery
document resolves it) has a ``jwks_uri``, with the key set it read from there. Between the
sign-in and the refresh of the ``oidc`` tour the emulator rotates its keys, as a provider
does on its own schedule: the refreshed ID token then names a ``kid`` the client's cached set
lacks, and the client must read the set once more to verify it (step 2 checks that it did).
"""

from __future__ import annotations

from joserfc.errors import JoseError
from joserfc.jws import extract_compact

from keyturn.models import TokenSet
from keyturn_emulator.demo.tour import Tour

__all__ = ["ROTATING_KEYS", "rotate_signing_keys", "verified_kid"]

#: Providers whose tour rotates the emulator's signing keys before the refresh.
ROTATING_KEYS = frozenset({"oidc"})


def verified_kid(tour: Tour, tokens: TokenSet) -> str | None:
    """The ``kid`` of the key that signed ``tokens``' ID token, when keyturn verified it.

    :param tour: the provider's tour.
    :param tokens: tokens the client accepted.
    :return: the ``kid``; ``None`` when there is no ID token, or the provider publishes no
        keys (so its ID tokens are not verified by signature).
    :raises DemoFailure: the ID token has no readable header or no ``kid``.
    """
    if tokens.id_token is None:
        return None
    with tour.step("keys"):
        spec = tour.kt.discover(tour.provider)  # cached: no request
    if spec.jwks_uri is None:
        return None
    try:
        header = extract_compact(tokens.id_token.get_secret_value().encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError):
        raise tour.fail("keys", "the ID token has no readable header") from None
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise tour.fail("keys", "the ID token names no key (no kid)")
    return kid


def rotate_signing_keys(tour: Tour, signed_with: str | None) -> str:
    """Rotate the emulator's signing key for the profile's algorithm; record it.

    :param tour: the provider's tour.
    :param signed_with: the ``kid`` of the sign-in's ID token.
    :return: the ``kid`` of the new active key, which signs the next ID tokens.
    :raises DemoFailure: the sign-in's ID token was not verified with a key, or the rotation
        kept the same key.
    """
    if signed_with is None:
        raise tour.fail("keys", "the sign-in's ID token was not verified with the provider's keys")
    alg = tour.emu.id_token_alg(tour.provider)
    new_kid = tour.emu.rotate_keys(algs=[alg])[alg]
    if new_kid == signed_with:
        raise tour.fail("keys", "the rotation kept the same key")
    tour.record(
        "keys",
        f"the provider rotates its {alg} signing key: {signed_with} -> {new_kid}; the "
        "client's cached key set does not hold the new one yet",
        alg=alg,
        kid_before=signed_with,
        kid_after=new_kid,
    )
    return new_kid
