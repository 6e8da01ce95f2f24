"""Authenticating the client at the token endpoint with a signed JWT instead of a bare secret.

OpenID Connect Core section 9 names two methods built on RFC 7523 (sections 2.2 and 3), and a
:class:`~keyturn.ProviderSpec` chooses one with ``client_auth``:

* ``private_key_jwt``: the app signs a short JWT with its private key (RSA of 2048 bits or
  more, EC P-256 or P-384, or Ed25519), whose public half the provider holds. The secret never
  leaves the app.
* ``client_secret_jwt``: the same JWT, signed with HMAC (HS256 by default) using the client
  secret as the key, so the secret itself is never sent either.

Either way each request to the token endpoint (code exchange, refresh) or the revocation
endpoint carries a *fresh* assertion, sent as ``client_assertion`` with
``client_assertion_type`` = :data:`JWT_BEARER` and the ``client_id``:

* ``iss`` and ``sub``: the client id;
* ``aud``: the token endpoint URL (also for revocation: the provider is the audience, and its
  token endpoint names it, as OpenID Connect Core section 9 asks);
* ``jti``: 256 random bits, new for every assertion, so a provider that remembers ``jti``
  values (RFC 7523 section 3, item 7) never sees one twice;
* ``iat``: now, on the client's clock; ``exp``: ``iat`` + :data:`ASSERTION_LIFETIME` (60 s).
  Short enough that a copied assertion is soon worthless, long enough for a modest clock
  skew between the app and the provider.

The same signing serves providers whose ``client_secret`` is itself a JWT the app signs
(Apple's): :func:`sign_jwt` signs any claims with a :class:`SigningKey` or a PEM key, and the
``keyturn_client_secret`` hook lets a plugin hand keyturn such a secret for each request.

Private keys are parsed (and checked) once: a key's parsed form is kept under the SHA-256 of
its PEM text, never under the text itself, for the life of the process (at most
:data:`KEY_CACHE_SIZE` keys). joserfc and cryptography are imported on first use only, so an
app that signs nothing never loads them. No message here quotes a key, a secret or an
assertion.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import SecretStr

from .errors import ConfigurationError, PluginError

if TYPE_CHECKING:
    from joserfc.jwk import ECKey, OKPKey, RSAKey

    from .models import ClientCredentials, ProviderSpec

__all__ = [
    "ASSERTION_LIFETIME",
    "JWT_BEARER",
    "JWT_METHODS",
    "KEY_CACHE_SIZE",
    "SECRET_METHODS",
    "SigningAlg",
    "SigningKey",
    "check_credentials",
    "client_assertion",
    "credentials_key",
    "environ_key_settings",
    "request_credentials",
    "sign_jwt",
]

#: ``client_assertion_type`` of a JWT client assertion (RFC 7523 section 2.2).
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Seconds from ``iat`` to ``exp`` of each client assertion.
ASSERTION_LIFETIME = 60
#: The client authentication methods that send a client assertion.
JWT_METHODS = frozenset({"private_key_jwt", "client_secret_jwt"})
#: The methods that use the client secret (sent, or as the HMAC key of the assertion).
SECRET_METHODS = frozenset({"client_secret_post", "client_secret_basic", "client_secret_jwt"})
#: How many parsed private keys are kept (by the SHA-256 of their PEM text).
KEY_CACHE_SIZE = 32

#: The JWS algorithms keyturn signs with.
SigningAlg = Literal[
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "EdDSA",
    "Ed25519",
    "HS256",
    "HS384",
    "HS512",
]
_SIGNING_ALGS: frozenset[str] = frozenset(get_args(SigningAlg))
_RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
#: The EC curves keyturn signs with, each with its one algorithm (RFC 7518 section 3.4).
_EC_ALGS = {"secp256r1": ("P-256", "ES256"), "secp384r1": ("P-384", "ES384")}
_OKP_ALGS = frozenset({"EdDSA", "Ed25519"})
#: HMAC algorithms, with the shortest secret each accepts in bytes: a key at least as long
#: as the hash (RFC 7518 section 3.2).
HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
#: The smallest RSA key RFC 7518 (section 3.3) allows.
MIN_RSA_BITS = 2048
#: The largest PEM text read from a file: far more than any private key takes.
MAX_PEM_SIZE = 64 * 1024


@dataclass(frozen=True, eq=False, repr=False)
class _Parsed:
    """A private key read from PEM: its joserfc form, type, default algorithm and fingerprint."""

    key: RSAKey | ECKey | OKPKey
    kty: Literal["RSA", "EC", "OKP"]
    default_alg: str
    allowed: frozenset[str]
    digest: bytes
    pem: SecretStr


_cache: OrderedDict[bytes, _Parsed] = OrderedDict()
_cache_lock = threading.Lock()


def _normalise(pem: str) -> str:
    """The PEM text as written, or with ``\\n`` escapes turned into line breaks.

    An environment variable often holds a PEM key on one line with its breaks written as
    ``\\n`` (the form many secret managers and ``.env`` files use).
    """
    text = pem.strip()
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    return text


def _parse(pem: str) -> _Parsed:
    """The key of ``pem``, parsed once per distinct text (see the module docs)."""
    text = _normalise(pem)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    with _cache_lock:
        found = _cache.get(digest)
        if found is not None:
            _cache.move_to_end(digest)
            return found
    parsed = _load(text, digest)
    with _cache_lock:
        _cache[digest] = parsed
        _cache.move_to_end(digest)
        while len(_cache) > KEY_CACHE_SIZE:
            _cache.popitem(last=False)
    return parsed


def _load(text: str, digest: bytes) -> _Parsed:
    """Read and check a PEM private key; every failure is a ConfigurationError without it."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from joserfc.jwk import ECKey, OKPKey, RSAKey

    data = text.encode("utf-8", "surrogatepass")
    if b"-----BEGIN" not in data:
        raise ConfigurationError("the private key is not PEM text (it has no BEGIN line)")
    if b"PRIVATE KEY-----" not in data and (
        b"PUBLIC KEY-----" in data or b"CERTIFICATE-----" in data
    ):
        kind = "a public key" if b"PUBLIC KEY-----" in data else "a certificate"
        raise ConfigurationError(
            f"the private key is {kind}, not a private key: keyturn signs with the private "
            "key and the provider holds the public one"
        )
    if b"ENCRYPTED PRIVATE KEY-----" in data or b"Proc-Type: 4,ENCRYPTED" in data:
        raise ConfigurationError(
            "the private key is encrypted with a passphrase; give keyturn the unencrypted PEM "
            "(keep it in a secret store, or in a file only the app can read)"
        )
    try:
        raw = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raw = None  # raised below, outside the handler: cryptography's error stays behind
    if raw is None:
        raise ConfigurationError("the private key is not a readable PEM private key")
    secret = SecretStr(text)
    if isinstance(raw, rsa.RSAPrivateKey):
        if raw.key_size < MIN_RSA_BITS:
            raise ConfigurationError(
                f"the RSA private key has {raw.key_size} bits; RFC 7518 asks for "
                f"{MIN_RSA_BITS} or more"
            )
        return _Parsed(RSAKey(raw, data), "RSA", "RS256", _RSA_ALGS, digest, secret)
    if isinstance(raw, ec.EllipticCurvePrivateKey):
        curve = _EC_ALGS.get(raw.curve.name)
        if curve is None:
            raise ConfigurationError(
                f"the EC private key is on curve {raw.curve.name}; keyturn signs with P-256 "
                "(ES256) or P-384 (ES384)"
            )
        return _Parsed(ECKey(raw, data), "EC", curve[1], frozenset({curve[1]}), digest, secret)
    if isinstance(raw, ed25519.Ed25519PrivateKey):
        return _Parsed(OKPKey(raw, data), "OKP", "EdDSA", _OKP_ALGS, digest, secret)
    raise ConfigurationError(
        f"the private key is of a type keyturn does not sign with "
        f"({type(raw).__name__.removeprefix('_')}); it signs with RSA, EC (P-256, P-384) or "
        "Ed25519 keys"
    )


@functools.cache
def _registry_class() -> type[Any]:
    """A joserfc JWS registry that signs EdDSA without joserfc's deprecation warning.

    RFC 9864 deprecates the name ``EdDSA`` in favour of ``Ed25519``; providers still
    advertise ``EdDSA`` (``token_endpoint_auth_signing_alg_values_supported``), so keyturn
    signs with it by default for an Ed25519 key and ``Ed25519`` on request. The app chose it
    knowingly, so joserfc's per-signature warning would say nothing useful.
    """
    from joserfc.jws import JWSRegistry

    class _SigningRegistry(JWSRegistry):
        def get_alg(self, name: str) -> Any:
            if name == "EdDSA" and self.allowed and name in self.allowed:
                return self.algorithms[name]
            return super().get_alg(name)

    return _SigningRegistry


def _encode(header: Mapping[str, Any], claims: Mapping[str, Any], key: Any, alg: str) -> str:
    from joserfc import jwt
    from joserfc.errors import JoseError

    registry = _registry_class()(algorithms=[alg])
    try:
        return jwt.encode(dict(header), dict(claims), key, registry=registry)
    except (JoseError, ValueError, TypeError) as exc:
        reason = type(exc).__name__
    raise ConfigurationError(f"could not sign a JWT with {alg} ({reason})")


class SigningKey:
    """A private key ready to sign JWTs, with its algorithm and key id; never shown.

    Made from PEM text with :meth:`from_pem` (or read from the credentials' ``private_key``:
    :attr:`ClientCredentials.signing_key <keyturn.ClientCredentials.signing_key>`). Its
    ``repr`` names the algorithm and key id only; two keys are equal when they hold the same
    PEM text, algorithm and key id.

    :ivar alg: the JWS algorithm it signs with (``RS256``, ``ES256``, ``EdDSA``...).
    :ivar kid: the ``kid`` header it puts on what it signs, or ``None``.
    """

    __slots__ = ("_parsed", "alg", "kid")

    alg: str
    kid: str | None

    def __init__(self, parsed: _Parsed, alg: str, kid: str | None) -> None:
        self._parsed = parsed
        self.alg = alg
        self.kid = kid

    @classmethod
    def from_pem(
        cls, pem: str | SecretStr, *, kid: str | None = None, alg: str | None = None
    ) -> SigningKey:
        """Read a PEM private key (PKCS#8, or the traditional RSA and EC forms).

        :param pem: the PEM text, unencrypted; ``\\n`` escapes on one line are read as line
            breaks.
        :param kid: the key id to put in the ``kid`` header (the provider's name for the key).
        :param alg: the JWS algorithm; by default ``RS256`` for RSA, ``ES256`` or ``ES384``
            by curve, ``EdDSA`` for Ed25519.
        :return: the key.
        :raises ConfigurationError: not a readable private key (a public key, a certificate,
            an encrypted key, an RSA key under 2048 bits, another curve), or an algorithm the
            key cannot sign with. The message never quotes the key.
        """
        text = pem.get_secret_value() if isinstance(pem, SecretStr) else pem
        if not isinstance(text, str):
            raise ConfigurationError("the private key must be PEM text")
        parsed = _parse(text)
        chosen = parsed.default_alg if alg is None else alg
        if chosen not in parsed.allowed:
            shown = ", ".join(sorted(parsed.allowed))
            raise ConfigurationError(
                f"an {parsed.kty} private key cannot sign with {chosen!r} (it signs with {shown})"
            )
        return cls(parsed, chosen, kid)

    def sign(self, claims: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None) -> str:
        """A compact JWS of ``claims`` (a JWT), with ``alg``, ``typ: JWT`` and ``kid`` set.

        :param claims: the payload; numbers for times (``iat``, ``exp``).
        :param headers: more header parameters; ``alg`` and ``kid`` are the key's own.
        :return: the signed JWT.
        :raises ConfigurationError: joserfc refused to sign (an unknown header parameter...).
        """
        header: dict[str, Any] = dict(headers or {})
        header["alg"] = self.alg
        if self.kid is not None:
            header["kid"] = self.kid
        return _encode(header, claims, self._parsed.key, self.alg)

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK (with ``kid``, ``alg`` and ``use: sig``): what to register
        at a provider that takes a key rather than a key set URL.

        :return: the JWK as a dict; it holds no private part.
        """
        jwk: dict[str, Any] = dict(self._parsed.key.as_dict(private=False))
        jwk.update({"use": "sig", "alg": self.alg})
        if self.kid is not None:
            jwk["kid"] = self.kid
        return jwk

    def _identity(self) -> tuple[bytes, str, str | None]:
        return (self._parsed.digest, self.alg, self.kid)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SigningKey):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __repr__(self) -> str:
        return f"SigningKey(kty={self._parsed.kty!r}, alg={self.alg!r}, kid={self.kid!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # cryptography's keys do not pickle; rebuild from the PEM text (a cache hit).
        return (_restore, (self._parsed.pem, self.kid, self.alg))


def _restore(pem: SecretStr, kid: str | None, alg: str) -> SigningKey:
    return SigningKey.from_pem(pem, kid=kid, alg=alg)


def sign_jwt(
    key: SigningKey | str | SecretStr,
    claims: Mapping[str, Any],
    *,
    kid: str | None = None,
    alg: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``claims`` as a JWT with a private key: for secrets a provider wants minted.

    Apple's ``client_secret`` is such a JWT (ES256, signed with the key Apple issues, ``kid``
    its key id); the ``keyturn_client_secret`` hook shows how a plugin mints it per request.

    :param key: a :class:`SigningKey` (``credentials.signing_key``), or the PEM text of a
        private key (parsed once, see the module docs).
    :param claims: the claims; the caller chooses every one (``iss``, ``sub``, ``aud``,
        ``iat``, ``exp``...).
    :param kid: the ``kid`` header; by default the key's own.
    :param alg: the algorithm; by default the key's own (``RS256`` for RSA, ``ES256`` or
        ``ES384`` by curve, ``EdDSA`` for Ed25519).
    :param headers: more header parameters.
    :return: the compact JWT.
    :raises ConfigurationError: the key is unusable or cannot sign with ``alg``; the message
        never quotes it.
    """
    if isinstance(key, SigningKey):
        signer = key
        if (kid is not None and kid != key.kid) or (alg is not None and alg != key.alg):
            signer = SigningKey.from_pem(
                key._parsed.pem,
                kid=key.kid if kid is None else kid,
                alg=key.alg if alg is None else alg,
            )
    else:
        signer = SigningKey.from_pem(key, kid=kid, alg=alg)
    return signer.sign(claims, headers=headers)


# -- credentials ----------------------------------------------------------------------------


def credentials_key(
    private_key: SecretStr | None, private_key_id: str | None, signing_alg: str | None
) -> SigningKey | None:
    """The signing key that credentials with these fields hold, checked; ``None`` without one.

    ``signing_alg`` names the algorithm of client assertions: an HMAC one (``HS256``...) is
    for ``client_secret_jwt`` and leaves the key its default; any other must suit the key.

    :raises ConfigurationError: an unusable key, a key id without a key, or an asymmetric
        algorithm without a key or that the key cannot sign with.
    """
    if signing_alg is not None and signing_alg not in _SIGNING_ALGS:
        raise ConfigurationError(
            f"signing_alg {signing_alg!r} is not one keyturn signs with "
            f"({', '.join(sorted(_SIGNING_ALGS))})"
        )
    hmac = signing_alg in HMAC_KEY_BYTES
    if private_key is None:
        if private_key_id is not None:
            raise ConfigurationError("private_key_id is set but there is no private_key")
        if signing_alg is not None and not hmac:
            raise ConfigurationError(
                f"signing_alg {signing_alg} signs with a private key, and there is no private_key"
            )
        return None
    return SigningKey.from_pem(private_key, kid=private_key_id, alg=None if hmac else signing_alg)


def environ_key_settings(prefix: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The key settings of a provider's environment, as ``ClientCredentials`` fields.

    ``<prefix>PRIVATE_KEY`` (PEM text) or ``<prefix>PRIVATE_KEY_FILE`` (a path to it),
    ``<prefix>PRIVATE_KEY_ID`` (the ``kid``) and ``<prefix>SIGNING_ALG``; unset or empty
    variables are left out.

    :param prefix: ``KEYTURN_<ID>_``.
    :param environ: the environment.
    :return: ``private_key``, ``private_key_id``, ``signing_alg``, as far as they are set.
    :raises ConfigurationError: both key variables are set, or the file cannot be read (the
        message names the variable and the path, never the content).
    """
    settings: dict[str, str] = {}
    text = environ.get(prefix + "PRIVATE_KEY") or None
    path = environ.get(prefix + "PRIVATE_KEY_FILE") or None
    if text is not None and path is not None:
        raise ConfigurationError(f"set {prefix}PRIVATE_KEY or {prefix}PRIVATE_KEY_FILE, not both")
    if path is not None:
        text = _read_key_file(prefix + "PRIVATE_KEY_FILE", path)
    if text is not None:
        settings["private_key"] = text
    for field, name in (("private_key_id", "PRIVATE_KEY_ID"), ("signing_alg", "SIGNING_ALG")):
        value = environ.get(prefix + name)
        if value:
            settings[field] = value
    return settings


def _read_key_file(variable: str, path: str) -> str:
    reason = None
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_PEM_SIZE + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    if reason is not None:
        raise ConfigurationError(f"{variable} names {path!r}, which cannot be read ({reason})")
    if len(data) > MAX_PEM_SIZE:
        raise ConfigurationError(
            f"{variable} names {path!r}, which is larger than any PEM private key"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    raise ConfigurationError(f"{variable} names {path!r}, which is not PEM text")


def check_credentials(provider: ProviderSpec, credentials: ClientCredentials) -> None:
    """Refuse credentials that cannot authenticate as the spec's ``client_auth`` says.

    ``private_key_jwt`` needs a private key; either JWT method needs an algorithm of its
    kind. (``client_secret_jwt``'s secret is checked per request, after the
    ``keyturn_client_secret`` hook, which may supply it.)

    :raises ConfigurationError: naming what is missing.
    """
    method = provider.client_auth
    if method not in JWT_METHODS:
        return
    alg = credentials.signing_alg
    prefix = provider.env_prefix
    if method == "private_key_jwt":
        if credentials.signing_key is None:
            raise ConfigurationError(
                f"{provider.id} authenticates with private_key_jwt and its credentials have no "
                f"private key: set {prefix}PRIVATE_KEY_FILE (or {prefix}PRIVATE_KEY), or pass "
                "ClientCredentials(private_key=...)"
            )
        if alg in HMAC_KEY_BYTES:
            raise ConfigurationError(
                f"{provider.id} authenticates with private_key_jwt, which signs with the private "
                f"key; signing_alg {alg} is for client_secret_jwt"
            )
    elif alg is not None and alg not in HMAC_KEY_BYTES:
        raise ConfigurationError(
            f"{provider.id} authenticates with client_secret_jwt, which signs with HS256, HS384 "
            f"or HS512; signing_alg {alg} needs private_key_jwt"
        )


def client_assertion(provider: ProviderSpec, credentials: ClientCredentials, now: float) -> str:
    """A new client assertion for one request (see the module docs for its claims).

    :param provider: the spec; its ``client_auth`` picks the key, its ``token_endpoint`` is
        the audience.
    :param credentials: the app's credentials: the private key, or the client secret (which
        must be at least as long as the HMAC's hash, RFC 7518 section 3.2).
    :param now: the time on the client's clock, in epoch seconds.
    :return: the signed assertion.
    :raises ConfigurationError: what the method needs is missing or unusable.
    """
    issued = int(now)
    claims = {
        "iss": credentials.client_id,
        "sub": credentials.client_id,
        "aud": provider.token_endpoint,
        "jti": secrets.token_urlsafe(32),
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
    }
    if provider.client_auth == "private_key_jwt":
        check_credentials(provider, credentials)
        key = credentials.signing_key
        assert key is not None  # check_credentials
        return key.sign(claims)
    if provider.client_auth != "client_secret_jwt":
        raise ConfigurationError(
            f"{provider.id} authenticates with {provider.client_auth}, "
            "which sends no client assertion"
        )
    check_credentials(provider, credentials)
    alg = credentials.signing_alg or "HS256"
    secret = credentials.client_secret
    if secret is None or not secret.get_secret_value():
        raise ConfigurationError(
            f"{provider.id} authenticates with client_secret_jwt and its credentials have no "
            f"client secret: set {provider.env_prefix}CLIENT_SECRET"
        )
    data = secret.get_secret_value().encode("utf-8")
    if len(data) < HMAC_KEY_BYTES[alg]:
        raise ConfigurationError(
            f"{provider.id}: the client secret is shorter than the {HMAC_KEY_BYTES[alg]} bytes "
            f"{alg} needs as its key (RFC 7518 section 3.2)"
        )
    from joserfc.jwk import OctKey

    return _encode({"alg": alg}, claims, OctKey.import_key(data), alg)


def request_credentials(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    now: float,
    client_secret: Callable[..., Any] | None,
) -> ClientCredentials:
    """The credentials for one request to the token or revocation endpoint.

    :param provider: the spec.
    :param credentials: the app's configured credentials.
    :param now: the client's clock, epoch seconds.
    :param client_secret: how to call the ``keyturn_client_secret`` hook, or ``None`` when
        only keyturn's default (the configured secret) implements it.
    :return: ``credentials``, with the secret the hook returned and, for the JWT methods, a
        new ``client_assertion``.
    :raises PluginError: the hook returned something other than a non-empty string or
        ``None`` (an ``async def`` implementation returns a coroutine).
    :raises ConfigurationError: the method's key or secret is missing or unusable.
    """
    method = provider.client_auth
    if client_secret is not None and method in SECRET_METHODS:
        result = client_secret(provider=provider, credentials=credentials, now=int(now))
        if result is not None and (not isinstance(result, str) or not result):
            close = getattr(result, "close", None)
            if callable(close):  # a coroutine from an async def hook: silence "never awaited"
                close()
            what = "an empty string" if isinstance(result, str) else type(result).__name__
            raise PluginError(
                f"keyturn_client_secret for {provider.id!r} returned {what}, not a secret "
                "(return a str or None from a plain function; no async def hooks)"
            )
        current = credentials.client_secret
        if (None if current is None else current.get_secret_value()) != result:
            update = None if result is None else SecretStr(result)
            credentials = credentials.model_copy(update={"client_secret": update})
    if method in JWT_METHODS:
        assertion = client_assertion(provider, credentials, now)
        credentials = credentials.model_copy(update={"client_assertion": SecretStr(assertion)})
    return credentials


def _cached_keys() -> int:
    """How many parsed keys the cache holds (for tests)."""
    with _cache_lock:
        return len(_cache)
