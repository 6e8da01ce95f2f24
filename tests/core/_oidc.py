"""An OpenID Provider for the discovery, key set and ID-token tests: keys, signed tokens, and
an httpx handler that serves a discovery document, a JWK Set, a token and a userinfo endpoint
and counts the requests each one gets.

Keys are made once per test session (RSA generation takes a tenth of a second). Tokens are
signed with joserfc's algorithm objects directly, as a provider would, so tests can sign what
keyturn must refuse (``alg: none``, HS256 with a public key's bytes) too.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import httpx2
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

import keyturn
from tests.conftest import CLIENT_ID, CLIENT_SECRET, START

ISSUER = "https://op.example"
DISCOVERY_URL = ISSUER + "/.well-known/openid-configuration"
JWKS_URI = "https://keys.op.example/jwks"
AUTHORIZE = ISSUER + "/authorize"
TOKEN = "https://api.op.example/token"
USERINFO = ISSUER + "/userinfo"
REDIRECT = "https://app.example/auth/callback/op"
#: The test provider spreads its endpoints over hosts, as Google does, and says so.
OP_HOSTS = frozenset({"api.op.example", "keys.op.example"})

#: The spec of the test provider: an id, a name and the discovery URL, nothing else.
SPEC = keyturn.ProviderSpec(
    id="op",
    name="Test OP",
    discovery_url=DISCOVERY_URL,
    default_scopes=("openid", "email"),
    endpoint_hosts=OP_HOSTS,
)
CREDENTIALS = {"op": (CLIENT_ID, CLIENT_SECRET)}


@functools.cache
def rsa_key(n: int = 0, bits: int = 2048) -> RSAKey:
    """RSA key number ``n`` of ``bits`` bits (private)."""
    return RSAKey.generate_key(bits)


@functools.cache
def weak_rsa_jwk(kid: str) -> dict[str, Any]:
    """The public JWK of a 1024-bit RSA key, made with cryptography (joserfc warns)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()
    return {
        "kty": "RSA",
        "kid": kid,
        "n": b64(numbers.n.to_bytes(128, "big")),
        "e": b64(numbers.e.to_bytes(3, "big")),
    }


@functools.cache
def ec_key(curve: str = "P-256", n: int = 0) -> ECKey:
    """EC key number ``n`` on ``curve`` (private)."""
    return ECKey.generate_key(curve)


@functools.cache
def okp_key(curve: str = "Ed25519", n: int = 0) -> OKPKey:
    """OKP key number ``n`` on ``curve`` (private)."""
    return OKPKey.generate_key(curve)  # type: ignore[arg-type]


def public_jwk(key: Key, kid: str | None = None, **members: Any) -> dict[str, Any]:
    """The public JWK of ``key``, with ``kid`` and any other members."""
    data: dict[str, Any] = dict(key.as_dict(private=False))
    data.pop("kid", None)
    if kid is not None:
        data["kid"] = kid
    data.update(members)
    return data


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value).encode())


def sign(
    claims: dict[str, Any],
    key: Key | bytes | None,
    alg: str = "RS256",
    *,
    kid: str | None = "k1",
    header: dict[str, Any] | None = None,
) -> str:
    """A compact JWS of ``claims`` signed with ``key`` (``None`` for ``alg: none``)."""
    protected: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        protected["kid"] = kid
    protected.update(header or {})
    signing_input = f"{b64json(protected)}.{b64json(claims)}"
    if key is None:
        return signing_input + "."
    if isinstance(key, bytes):  # HMAC with raw bytes: what an alg-confusion attacker sends
        import hmac

        digest = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}[alg]
        return signing_input + "." + b64(hmac.new(key, signing_input.encode(), digest).digest())
    signature = JWSRegistry.algorithms[alg].sign(signing_input.encode(), key)
    return signing_input + "." + b64(signature)


def claims(**changes: Any) -> dict[str, Any]:
    """ID token claims good at START for CLIENT_ID at ISSUER, with ``changes``."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": "42",
        "iat": START,
        "exp": START + 3600,
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def metadata(**changes: Any) -> dict[str, Any]:
    """The test provider's discovery document, with ``changes`` (``None`` drops a field)."""
    doc: dict[str, Any] = {
        "issuer": ISSUER,
        "authorization_endpoint": AUTHORIZE,
        "token_endpoint": TOKEN,
        "userinfo_endpoint": USERINFO,
        "jwks_uri": JWKS_URI,
        "response_types_supported": ["code", "id_token", "code id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "scopes_supported": ["openid", "email", "profile"],
        "claims_supported": ["sub", "email"],
    }
    doc.update(changes)
    return {name: value for name, value in doc.items() if value is not None}


class Provider:
    """The test OP behind an httpx handler; counts requests by URL.

    :ivar discovery: the discovery document served (or ``raw_discovery`` bytes instead).
    :ivar jwks: the key set served.
    :ivar keys: ``kid -> (private key, alg)`` the token endpoint signs with: the first one.
    :ivar headers: extra response headers by URL (``Cache-Control``...).
    :ivar fail: URL -> an exception to raise or a status to answer, once per entry.
    :ivar hold: seconds each discovery and JWKS answer waits (to make callers overlap).
    """

    def __init__(self, signer: tuple[str, Key, str] | None = None) -> None:
        kid, key, alg = signer or ("k1", rsa_key(), "RS256")
        self.signer: tuple[str, Key, str] = (kid, key, alg)
        self.discovery: dict[str, Any] = metadata()
        self.raw: dict[str, tuple[int, bytes, str]] = {}
        self.jwks: dict[str, Any] = {"keys": [public_jwk(key, kid)]}
        self.headers: dict[str, dict[str, str]] = {}
        self.fail: dict[str, list[Exception | int]] = {}
        self.counts: Counter[str] = Counter()
        self.hold = 0.0
        self.lock = threading.Lock()
        #: code -> nonce, for the ID tokens the token endpoint signs.
        self.nonces: dict[str, str] = {}
        #: ID token claims changed for every token the token endpoint signs.
        self.claim_changes: dict[str, Any] = {}
        self.id_tokens: list[str] = []
        self.now: Callable[[], float] = lambda: START

    # -- what tests read ----------------------------------------------------------------------

    def count(self, url: str) -> int:
        with self.lock:
            return self.counts[url]

    # -- answers -------------------------------------------------------------------------------

    def id_token(self, **changes: Any) -> str:
        kid, key, alg = self.signer
        now = int(self.now())
        token = sign(
            claims(iat=now, exp=now + 3600, **{**self.claim_changes, **changes}), key, alg, kid=kid
        )
        self.id_tokens.append(token)
        return token

    def _answer(self, method: str, url: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        with self.lock:
            self.counts[url] += 1
            failures = self.fail.get(url)
            failure = failures.pop(0) if failures else None
        if isinstance(failure, Exception):
            raise failure
        headers = {"content-type": "application/json", **self.headers.get(url, {})}
        if isinstance(failure, int):
            return failure, b'{"error": "server_error"}', headers
        if url in self.raw:
            status, raw, kind = self.raw[url]
            return status, raw, {**headers, "content-type": kind}
        if url == DISCOVERY_URL:
            return 200, json.dumps(self.discovery).encode(), headers
        if url == JWKS_URI:
            return 200, json.dumps(self.jwks).encode(), headers
        if url == TOKEN:
            form = dict(parse_qsl(body.decode()))
            answer: dict[str, Any] = {
                "access_token": f"fake-at-{len(self.id_tokens)}",
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": "fake-rt-1",
            }
            if form.get("grant_type") == "authorization_code":
                nonce = self.nonces.get(form.get("code", ""))
                changes = {"nonce": nonce} if nonce else {}
                answer["id_token"] = self.id_token(**changes, **self._hashes(answer, form))
            else:
                answer["id_token"] = self.id_token(**self._hashes(answer, {}))
            return 200, json.dumps(answer).encode(), headers
        if url == USERINFO:
            return 200, json.dumps({"sub": "42", "email": "ada@example.com"}).encode(), headers
        return 404, b"{}", headers

    def _hashes(self, answer: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        from keyturn.idtoken import token_hash

        _, key, alg = self.signer
        curve = getattr(key, "curve_name", None)
        hashes = {"at_hash": token_hash(answer["access_token"], alg, curve)}
        if "code" in form:
            hashes["c_hash"] = token_hash(form["code"], alg, curve)
        return hashes

    def handler(self, request: httpx.Request) -> httpx.Response:
        """For ``httpx.MockTransport``, sync or async clients."""
        url = str(request.url).split("?", 1)[0]
        if self.hold and url in (DISCOVERY_URL, JWKS_URI):
            time.sleep(self.hold)
        status, body, headers = self._answer(request.method, url, request.content)
        return httpx.Response(status, content=body, headers=headers)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        """For ``httpx.MockTransport`` with an async client: holds without blocking the loop."""
        url = str(request.url).split("?", 1)[0]
        if self.hold and url in (DISCOVERY_URL, JWKS_URI):
            await asyncio.sleep(self.hold)
        status, body, headers = self._answer(request.method, url, request.content)
        return httpx.Response(status, content=body, headers=headers)

    def handler2(self, request: httpx2.Request) -> httpx2.Response:
        """For ``httpx2.MockTransport``."""
        url = str(request.url).split("?", 1)[0]
        status, body, headers = self._answer(request.method, url, request.content)
        return httpx2.Response(status, content=body, headers=headers)

    # -- clients --------------------------------------------------------------------------------

    def sync_client(self, library: str = "httpx") -> Any:
        if library == "httpx2":
            return httpx2.Client(transport=httpx2.MockTransport(self.handler2))
        return httpx.Client(transport=httpx.MockTransport(self.handler))

    def async_client(self, library: str = "httpx") -> Any:
        if library == "httpx2":
            return httpx2.AsyncClient(transport=httpx2.MockTransport(self.handler2))
        return httpx.AsyncClient(transport=httpx.MockTransport(self.async_handler))
