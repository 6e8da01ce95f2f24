"""ID tokens the emulator signs: a compact JWS with the server's active key for the algorithm
the profile signs with, ``kid`` in its header, and ``at_hash`` over the access token issued
with it (OpenID Connect Core §3.1.3.6 and §3.1.3.7,
https://openid.net/specs/openid-connect-core-1_0.html).

Google signs with RS256 as Google does; ``strict`` with ES256 and ``oidc`` with RS256 unless
the ``id_token_alg`` knob names another algorithm the profile advertises (see
:attr:`keyturn_emulator.profiles.Behaviour.id_token_algs`). The keys, their rotation and the
JWKS are in :mod:`keyturn_emulator.keys`. ``iat`` and ``exp`` come from the emulator's
clock: a test whose client runs on a fake clock gives the emulator the same one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .faults import Knobs
from .keys import KeyRing, at_hash
from .profiles import Algorithm, Behaviour

__all__ = ["sign_id_token", "signing_alg"]


def signing_alg(behaviour: Behaviour, knobs: Knobs) -> Algorithm:
    """The algorithm ``behaviour`` signs ID tokens with now.

    :param behaviour: the profile.
    :param knobs: the current knobs; their ``id_token_alg`` applies to profiles that
        advertise it, the others keep their own.
    """
    chosen = knobs.id_token_alg
    if chosen is not None and chosen in behaviour.id_token_algs:
        return chosen
    return behaviour.id_token_algs[0]


def sign_id_token(
    keys: KeyRing, alg: Algorithm, claims: Mapping[str, Any], access_token: str | None
) -> str:
    """An ID token of ``claims``, with ``at_hash`` over ``access_token`` when there is one.

    :param keys: the server's key ring.
    :param alg: the algorithm (its active key signs).
    :param claims: ``iss``, ``aud``, ``sub``, ``iat``, ``exp``, ...
    :param access_token: the access token issued alongside.
    :return: ``header.payload.signature``.
    """
    payload = dict(claims)
    if access_token is not None:
        payload["at_hash"] = at_hash(access_token, alg)
    return keys.sign(payload, alg)
