"""ID tokens in cassettes: signed again with a key made for the cassette.

A recorded ID token cannot keep the provider's signature: with it, the token would be
accepted wherever the provider's keys are trusted until it expires. The scrubber therefore
cuts the header and the signature away (``REDACTED-<hash>.<claims>.REDACTED``), which keeps
the claims readable but leaves nothing to verify; and keyturn verifies the signature of every
ID token of a provider whose spec has a ``jwks_uri``.

So ``keyturn record``, for such a provider, signs each recorded ID token again:

* one key per recording and algorithm, made when the recording ends, of the type the token's
  own ``alg`` needs (RSA 2048 bits for ``RS*``/``PS*``, the algorithm's curve for ``ES*``,
  Ed25519 for ``EdDSA``), with a key id starting with :data:`CASSETTE_KID_PREFIX`;
* the claims are the recorded ones after personal data is scrubbed, except ``at_hash`` and
  ``c_hash``, computed again over the access token and the code as the cassette holds them
  (their placeholders), so that replay checks them as keyturn checks a live token;
* the header holds ``alg``, ``kid`` and the token's own ``typ``;
* the key's public JWK is added to the key set the same cassette recorded (its GET of the
  spec's ``jwks_uri``): the provider's keys stay, so the cassette still shows the set it
  published; the private key is forgotten when the recording ends.

A token signed so is a credential nowhere: only the cassette's own key set verifies it. The
scrubber leaves it as it is (:func:`is_cassette_signed`), on record and each time vcrpy loads
the cassette. Hand-written cassettes may do the same: sign with a key of their own whose key id
starts with :data:`CASSETTE_KID_PREFIX`, and throw the private key away.

joserfc is imported on first use.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

if TYPE_CHECKING:
    from joserfc.jwk import Key

__all__ = [
    "CASSETTE_KID_PREFIX",
    "CassetteSigner",
    "is_cassette_signed",
    "token_header",
]

#: How the key id of a key made for cassettes starts.
CASSETTE_KID_PREFIX = "keyturn-cassette-"

#: The curve of the key made for each elliptic-curve or Edwards algorithm.
_CURVES = {
    "ES256": "P-256",
    "ES384": "P-384",
    "ES512": "P-521",
    "ES256K": "secp256k1",
    "EdDSA": "Ed25519",
    "Ed25519": "Ed25519",
    "Ed448": "Ed448",
}
_RSA = frozenset(f"{family}{size}" for family in ("RS", "PS") for size in (256, 384, 512))


def _segment(value: Any) -> str:
    data = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decoded(segment: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError, RecursionError):
        return None


def token_header(id_token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, unverified; empty when it cannot be read."""
    header = _decoded(id_token.split(".", 1)[0])
    return header if isinstance(header, dict) else {}


def is_cassette_signed(id_token: str) -> bool:
    """Whether ``id_token`` is signed with a key made for cassettes (see the module docs)."""
    if id_token.count(".") != 2:
        return False
    kid = token_header(id_token).get("kid")
    return isinstance(kid, str) and kid.startswith(CASSETTE_KID_PREFIX)


def _new_key(alg: str) -> Key | None:
    from joserfc.jwk import ECKey, OKPKey, RSAKey

    if alg in _RSA:
        return RSAKey.generate_key(2048)
    curve = _CURVES.get(alg)
    if curve is None:
        return None
    if alg.startswith("ES"):
        return ECKey.generate_key(curve)
    return OKPKey.generate_key(curve)  # type: ignore[arg-type]


class CassetteSigner:
    """Signs the ID tokens of one recording again and adds its keys to the recorded key set.

    :param jwks_uri: the spec's (resolved) ``jwks_uri``: the GET whose answer gains the keys.
    """

    def __init__(self, jwks_uri: str) -> None:
        self.jwks_uri = jwks_uri
        #: alg -> (kid, private key); forgotten with the signer.
        self._keys: dict[str, tuple[str, Key]] = {}

    def __repr__(self) -> str:
        return f"CassetteSigner({self.jwks_uri!r}, algorithms={sorted(self._keys)})"

    def prepare(self, id_token: str) -> bool:
        """Make the key that will sign ``id_token`` again (one per algorithm).

        :return: whether keyturn can sign with the token's ``alg``; when it cannot (``none``,
            HMAC, an unknown algorithm), the token is scrubbed as any other.
        """
        alg = token_header(id_token).get("alg")
        if not isinstance(alg, str):
            return False
        if alg in self._keys:
            return True
        key = _new_key(alg)
        if key is None:
            return False
        self._keys[alg] = (CASSETTE_KID_PREFIX + secrets.token_hex(4), key)
        return True

    @property
    def prepared(self) -> bool:
        """Whether any key was made: the recorded key set must then gain it."""
        return bool(self._keys)

    def public_keys(self) -> list[dict[str, Any]]:
        """The public JWKs of the keys made so far, with ``kid``, ``alg`` and ``use``."""
        keys = []
        for alg, (kid, key) in sorted(self._keys.items()):
            jwk = dict(key.as_dict(private=False))
            jwk.pop("kid", None)
            keys.append({"kid": kid, "use": "sig", "alg": alg, **jwk})
        return keys

    def sign(
        self, id_token: str, *, access_token: str | None = None, code: str | None = None
    ) -> str | None:
        """``id_token``'s claims signed with the key made for its algorithm.

        :param access_token: the access token as the cassette holds it (``at_hash``).
        :param code: the code as the cassette holds it (``c_hash``).
        :return: the new token, or ``None`` when no key was made for its ``alg`` or its
            claims cannot be read.
        """
        from joserfc.jws import JWSRegistry

        from keyturn.idtoken import token_hash

        parts = id_token.split(".")
        header = token_header(id_token)
        alg = header.get("alg")
        claims = _decoded(parts[1]) if len(parts) == 3 else None
        if not isinstance(alg, str) or alg not in self._keys or not isinstance(claims, dict):
            return None
        kid, key = self._keys[alg]
        curve = _CURVES.get(alg) if alg in ("EdDSA", "Ed25519", "Ed448") else None
        for claim, value in (("at_hash", access_token), ("c_hash", code)):
            if claim in claims and value:
                claims[claim] = token_hash(value, alg, curve)
        protected: dict[str, Any] = {"alg": alg, "kid": kid}
        if isinstance(header.get("typ"), str):
            protected["typ"] = header["typ"]
        signing_input = f"{_segment(protected)}.{_segment(claims)}"
        signature = JWSRegistry.algorithms[alg].sign(signing_input.encode("ascii"), key)
        return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"

    # -- vcrpy --------------------------------------------------------------------------------

    def before_save_interaction(self, request: Any, response: dict[str, Any]) -> Any:
        """vcrpy ``before_save_interaction``: personal data scrubbed, then the ID token signed
        again (or scrubbed, when it cannot be), then the key set given the new keys."""
        from .cassettes import _header, redact, scrub_interaction

        request, response = scrub_interaction(request, response)
        body = response.get("body")
        if not isinstance(body, dict) or body.get("string") is None:
            return request, response
        content_type = _header(response.get("headers", {}), "content-type")
        raw = body["string"]
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if request.method.upper() == "GET" and request.uri == self.jwks_uri and self.prepared:
            body["string"] = self._with_keys(text)
            return request, response
        sent = _form(request.body)
        code = sent.get("code") if sent.get("grant_type") == "authorization_code" else None

        def signed(fields: Mapping[str, Any]) -> Any:
            token = fields.get("id_token")
            if not isinstance(token, str) or is_cassette_signed(token):
                return token
            access = fields.get("access_token")
            again = self.sign(
                token, access_token=access if isinstance(access, str) else None, code=code
            )
            return again if again is not None else redact("id_token", token)

        kind = content_type.split(";", 1)[0].strip().lower()
        if kind == "application/x-www-form-urlencoded":
            pairs = parse_qsl(text, keep_blank_values=True)
            fields = dict(pairs)
            if "id_token" in fields:
                token = signed(fields)
                body["string"] = urlencode(
                    [(k, token if k == "id_token" else v) for k, v in pairs]
                ).encode()
            return request, response
        try:
            data = json.loads(text)
        except ValueError:
            return request, response
        if isinstance(data, dict) and "id_token" in data:
            data["id_token"] = signed(data)
            body["string"] = json.dumps(data, separators=(",", ":")).encode()
        return request, response

    def _with_keys(self, text: str) -> str | bytes:
        """The recorded key set with the cassette's public keys appended."""
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            data = {"keys": []}
        known = {key.get("kid") for key in data["keys"] if isinstance(key, dict)}
        data["keys"].extend(key for key in self.public_keys() if key["kid"] not in known)
        return json.dumps(data, separators=(",", ":")).encode()


def _form(body: Any) -> dict[str, str]:
    """A recorded request's form fields; empty for any other body."""
    if body is None:
        return {}
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    if text.lstrip().startswith("{"):
        return {}
    return dict(parse_qsl(text, keep_blank_values=True))
