"""Client authentication with signed JWTs (RFC 7523) and client secrets minted per request.

* ``private_key_jwt`` and ``client_secret_jwt``: every request to the token endpoint (code
  exchange, refresh) and to the revocation endpoint carries ``client_id``,
  ``client_assertion_type`` and a new ``client_assertion``, and no secret; the assertion,
  verified with joserfc against the public key (or the secret), says ``iss`` = ``sub`` = the
  client id, ``aud`` = the token endpoint, a ``jti`` of its own, ``iat`` on the client's clock
  and ``exp`` a minute later. Sync and async alike.
* Keys come from ``ClientCredentials``, ``KEYTURN_<ID>_PRIVATE_KEY`` or ``_PRIVATE_KEY_FILE``;
  a key that cannot sign, or its absence, is a ``ConfigurationError`` that never quotes it.
* The ``keyturn_client_secret`` hook is called once per request, with the client's clock, and
  what it returns is sent; an ``async def`` implementation is refused.
* The key and the assertions appear in no repr, str, dump, log line or error message.
* Parsed keys are cached by a digest of their PEM text: what the cache gives equals a fresh
  parse, and a new key (in the environment, in a file) is seen at once.
"""

from __future__ import annotations

import base64
import datetime
import inspect
import logging
import pickle
import re
import traceback
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID
from joserfc import jwk, jwt
from joserfc.errors import BadSignatureError, SecurityWarning
from pydantic import SecretStr, ValidationError

import keyturn
from keyturn import REVEAL, ClientCredentials, ProviderSpec, client_auth, flows, hookspecs
from keyturn.client_auth import ASSERTION_LIFETIME, JWT_BEARER, SigningKey, sign_jwt
from tests.conftest import START, Both, FakeClock, Recorder
from tests.core.test_secrets import assert_hidden

CLIENT_ID = "acme-client-id"
#: 40 bytes: long enough for HS256 (32) but not for HS384 (48).
SECRET = "acme-client-secret-FAKE-0123456789abcdef"
TOKEN_URL = "https://acme.example/oauth2/token"
REVOKE_URL = "https://acme.example/oauth2/revoke"
REDIRECT = "https://app.example/auth/callback/acme"
TOKENS = {"access_token": "fake-at-1", "refresh_token": "fake-rt-1", "expires_in": 3600}
REFRESHED = {"access_token": "fake-at-2", "refresh_token": "fake-rt-2", "expires_in": 3600}


def acme(client_auth: str, provider_id: str = "acme") -> ProviderSpec:
    return ProviderSpec(
        id=provider_id,
        name="Acme",
        authorization_endpoint="https://acme.example/oauth2/authorize",
        token_endpoint=TOKEN_URL,
        revocation_endpoint=REVOKE_URL,
        client_auth=client_auth,
    )


# -- keys -------------------------------------------------------------------------------------


def private_pem(key: Any, form: Any = serialization.PrivateFormat.PKCS8) -> str:
    data: bytes = key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption())
    return data.decode()


def public_pem(key: Any) -> str:
    data: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data.decode()


@dataclass(frozen=True)
class Pair:
    """A private key as PEM, its public half as a joserfc key, and what it signs with."""

    name: str
    pem: str
    public: Any
    alg: str


def pair(name: str, key: Any, kty: str, alg: str) -> Pair:
    return Pair(name, private_pem(key), jwk.import_key(public_pem(key), kty), alg)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def rsa_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def pairs(rsa_key: Any) -> dict[str, Pair]:
    return {
        "RSA": pair("RSA", rsa_key, "RSA", "RS256"),
        "P-256": pair("P-256", ec.generate_private_key(ec.SECP256R1()), "EC", "ES256"),
        "P-384": pair("P-384", ec.generate_private_key(ec.SECP384R1()), "EC", "ES384"),
        "Ed25519": pair("Ed25519", ed25519.Ed25519PrivateKey.generate(), "OKP", "EdDSA"),
    }


def body_lines(pem: str) -> list[str]:
    """The base64 lines of a PEM text: none may show anywhere."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def assert_no_key(text: str, *pems: str) -> None:
    assert "-----BEGIN" not in text
    for pem in pems:
        for line in body_lines(pem):
            assert line[:24] not in text


def verify(token: str, key: Any, alg: str) -> jwt.Token:
    """The token's header and claims, its signature checked with joserfc."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # joserfc's note that EdDSA is old
        return jwt.decode(token, key, algorithms=[alg])


def form(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode()))


# -- clients ----------------------------------------------------------------------------------


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(http: Recorder, clock: FakeClock) -> Iterator[Callable[..., Both]]:
    """Builds a sync or async client of the ``acme`` spec over the ``http`` recorder."""
    opened: list[Any] = []

    def build(
        mode: str,
        spec: ProviderSpec,
        credentials: Any = None,
        *,
        environ: dict[str, str] | None = None,
        plugins: tuple[object, ...] = (),
    ) -> Both:
        pm = keyturn.get_plugin_manager(plugins=plugins, environ={})
        given = None if credentials is None else {spec.id: credentials}
        options: dict[str, Any] = {
            "clock": clock,
            "plugin_manager": pm,
            "environ": {} if environ is None else environ,
            "providers": [spec],
        }
        if mode == "sync":
            client: Any = httpx.Client(transport=httpx.MockTransport(http))
            opened.append(client)
            return Both(keyturn.Keyturn(given, http_client=client, **options))
        aclient = httpx.AsyncClient(transport=httpx.MockTransport(http))
        opened.append(aclient)
        return Both(keyturn.AsyncKeyturn(given, http_client=aclient, **options))

    yield build
    for client in opened:
        if isinstance(client, httpx.Client):
            client.close()


async def each_operation(client: Both, http: Recorder) -> list[httpx.Request]:
    """Exchange a code, refresh, revoke: the three requests sent, in order."""
    before = len(http.requests)
    http.queue(200, TOKENS)
    tokens = await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    http.queue(200, REFRESHED)
    refreshed = await client("refresh", tokens)
    http.queue(200, {})
    await client("revoke", refreshed)
    return http.requests[before:]


# -- private_key_jwt --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["RSA", "P-256", "P-384", "Ed25519"])
async def test_private_key_jwt_sends_a_verified_assertion_on_every_request(
    make: Callable[..., Both],
    http: Recorder,
    clock: FakeClock,
    pairs: dict[str, Pair],
    mode: str,
    kind: str,
) -> None:
    key = pairs[kind]
    credentials = ClientCredentials(client_id=CLIENT_ID, private_key=key.pem, private_key_id="k1")
    client = make(mode, acme("private_key_jwt"), credentials)
    sent = await each_operation(client, http)

    assert [str(request.url) for request in sent] == [TOKEN_URL, TOKEN_URL, REVOKE_URL]
    jtis = []
    for request in sent:
        body = form(request)
        assert body["client_id"] == CLIENT_ID
        assert body["client_assertion_type"] == JWT_BEARER
        assert "client_secret" not in body
        assert "authorization" not in request.headers
        token = verify(body["client_assertion"], key.public, key.alg)
        assert token.header == {"alg": key.alg, "kid": "k1", "typ": "JWT"}
        claims = token.claims
        assert claims["iss"] == claims["sub"] == CLIENT_ID
        assert claims["aud"] == TOKEN_URL  # the revocation request too
        assert claims["iat"] == START == int(clock())
        assert claims["exp"] - claims["iat"] == ASSERTION_LIFETIME == 60
        assert len(base64.urlsafe_b64decode(claims["jti"] + "==")) >= 16  # >= 128 bits
        jtis.append(claims["jti"])
    assert len(set(jtis)) == 3
    assert sent[0].content.decode().count("client_assertion=") == 1


async def test_each_assertion_is_made_when_its_request_is_sent(
    make: Callable[..., Both], http: Recorder, clock: FakeClock, pairs: dict[str, Pair], mode: str
) -> None:
    key = pairs["P-256"]
    credentials = ClientCredentials(client_id=CLIENT_ID, private_key=key.pem)
    client = make(mode, acme("private_key_jwt"), credentials)
    http.queue(200, TOKENS)
    tokens = await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    clock.advance(7200)
    http.queue(200, REFRESHED)
    await client("refresh", tokens)
    first, second = (
        verify(form(r)["client_assertion"], key.public, "ES256") for r in http.requests
    )
    assert first.claims["iat"] == START
    assert second.claims["iat"] == START + 7200
    assert second.claims["exp"] == START + 7200 + ASSERTION_LIFETIME
    assert first.claims["jti"] != second.claims["jti"]
    assert "kid" not in first.header  # no key id given, none sent


async def test_a_refresh_through_jwt_authenticates_the_same_way(
    make: Callable[..., Both], http: Recorder, clock: FakeClock, pairs: dict[str, Pair], mode: str
) -> None:
    key = pairs["Ed25519"]
    credentials = ClientCredentials(client_id=CLIENT_ID, private_key=key.pem)
    client = make(mode, acme("private_key_jwt"), credentials)
    http.queue(200, TOKENS)
    tokens = await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    token = await client("jwt", tokens=tokens)
    clock.advance(3600)
    http.queue(200, REFRESHED)
    token = await client("jwt", token)
    assert token.tokens.access_token.get_secret_value() == "fake-at-2"
    assertion = form(http.requests[-1])["client_assertion"]
    assert verify(assertion, key.public, "EdDSA").claims["iat"] == START + 3600


@pytest.mark.parametrize(("alg", "kty"), [("PS256", "RSA"), ("RS512", "RSA")])
async def test_signing_alg_chooses_the_algorithm(
    make: Callable[..., Both], http: Recorder, pairs: dict[str, Pair], alg: str, kty: str
) -> None:
    key = pairs["RSA"]
    credentials = ClientCredentials(client_id=CLIENT_ID, private_key=key.pem, signing_alg=alg)
    client = make("sync", acme("private_key_jwt"), credentials)
    http.queue(200, TOKENS)
    await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    token = verify(form(http.requests[-1])["client_assertion"], key.public, alg)
    assert token.header["alg"] == alg


async def test_ed25519_signs_with_its_rfc_9864_name_on_request(pairs: dict[str, Pair]) -> None:
    key = pairs["Ed25519"]
    credentials = ClientCredentials(client_id=CLIENT_ID, private_key=key.pem, signing_alg="Ed25519")
    assertion = client_auth.client_assertion(acme("private_key_jwt"), credentials, START)
    assert verify(assertion, key.public, "Ed25519").header["alg"] == "Ed25519"


async def test_a_plugins_own_flow_built_on_token_request_gets_the_assertion(
    make: Callable[..., Both], http: Recorder, pairs: dict[str, Pair], mode: str
) -> None:
    class CustomRefresh:
        @keyturn.hookimpl
        @keyturn.for_provider("acme")
        def keyturn_refresh(self, provider: Any, credentials: Any, tokens: Any, clock: Any) -> Any:
            def flow() -> keyturn.Flow[keyturn.TokenSet]:
                request = flows.token_request(provider, credentials, {"grant_type": "custom"})
                response = yield request
                return flows.parse_token_response(provider, "refresh", response, clock(), tokens)

            return flow()

    key = pairs["P-256"]
    credentials = ClientCredentials(client_id=CLIENT_ID, private_key=key.pem)
    client = make(mode, acme("private_key_jwt"), credentials, plugins=(CustomRefresh(),))
    tokens = keyturn.TokenSet(provider="acme", access_token="fake-at-0", refresh_token="fake-rt-0")
    http.queue(200, REFRESHED)
    await client("refresh", tokens)
    body = form(http.requests[-1])
    assert body["grant_type"] == "custom"
    assert verify(body["client_assertion"], key.public, "ES256").claims["aud"] == TOKEN_URL


def test_token_request_refuses_a_jwt_method_without_an_assertion(pairs: dict[str, Pair]) -> None:
    credentials = ClientCredentials(client_id=CLIENT_ID, private_key=pairs["P-256"].pem)
    with pytest.raises(keyturn.ConfigurationError, match="no client assertion"):
        flows.token_request(acme("private_key_jwt"), credentials, {"grant_type": "x"})
    with pytest.raises(keyturn.ConfigurationError, match="no client assertion"):
        flows.token_request(acme("client_secret_jwt"), ClientCredentials(client_id="c"), {})


# -- client_secret_jwt ------------------------------------------------------------------------


@pytest.mark.parametrize(("alg", "secret"), [(None, SECRET), ("HS384", SECRET + "x" * 8)])
async def test_client_secret_jwt_signs_with_the_secret_and_never_sends_it(
    make: Callable[..., Both], http: Recorder, mode: str, alg: str | None, secret: str
) -> None:
    credentials = ClientCredentials(client_id=CLIENT_ID, client_secret=secret, signing_alg=alg)
    client = make(mode, acme("client_secret_jwt"), credentials)
    sent = await each_operation(client, http)
    key = jwk.OctKey.import_key(secret.encode())
    jtis = set()
    for request in sent:
        body = form(request)
        assert set(body) >= {"client_id", "client_assertion_type", "client_assertion"}
        assert "client_secret" not in body
        assert secret not in request.content.decode()
        assert "authorization" not in request.headers
        token = verify(body["client_assertion"], key, alg or "HS256")
        assert token.header["alg"] == (alg or "HS256")
        assert token.claims["iss"] == token.claims["sub"] == CLIENT_ID
        assert token.claims["aud"] == TOKEN_URL
        assert token.claims["exp"] - token.claims["iat"] == ASSERTION_LIFETIME
        jtis.add(token.claims["jti"])
    assert len(jtis) == 3
    # Signed with another secret, it does not verify.
    with pytest.raises(BadSignatureError):
        verify(form(sent[0])["client_assertion"], jwk.OctKey.import_key(b"y" * 48), alg or "HS256")


async def test_client_secret_jwt_refuses_a_secret_shorter_than_its_hash(
    make: Callable[..., Both], http: Recorder, mode: str
) -> None:
    credentials = ClientCredentials(client_id=CLIENT_ID, client_secret=SECRET, signing_alg="HS384")
    client = make(mode, acme("client_secret_jwt"), credentials)
    with pytest.raises(keyturn.ConfigurationError, match="48 bytes") as caught:
        await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    assert SECRET not in str(caught.value)
    assert http.requests == []


async def test_client_secret_jwt_without_a_secret_names_what_is_missing(
    make: Callable[..., Both], http: Recorder, mode: str
) -> None:
    client = make(mode, acme("client_secret_jwt"), ClientCredentials(client_id=CLIENT_ID))
    with pytest.raises(keyturn.ConfigurationError, match=r"no client secret.*KEYTURN_ACME_CLIENT"):
        await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    assert http.requests == []


# -- keys from the environment ----------------------------------------------------------------


def acme_env(**values: str) -> dict[str, str]:
    return {
        "KEYTURN_ACME_CLIENT_ID": CLIENT_ID,
        **{f"KEYTURN_ACME_{k}": v for k, v in values.items()},
    }


async def test_the_key_is_read_from_the_environment_as_text(
    make: Callable[..., Both], http: Recorder, pairs: dict[str, Pair], mode: str
) -> None:
    key = pairs["P-384"]
    env = acme_env(PRIVATE_KEY=key.pem, PRIVATE_KEY_ID="env-key")
    client = make(mode, acme("private_key_jwt"), environ=env)
    http.queue(200, TOKENS)
    await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    token = verify(form(http.requests[-1])["client_assertion"], key.public, "ES384")
    assert token.header["kid"] == "env-key"


async def test_a_one_line_key_with_escaped_line_breaks_is_read(
    make: Callable[..., Both], http: Recorder, pairs: dict[str, Pair]
) -> None:
    key = pairs["P-256"]
    env = acme_env(PRIVATE_KEY=key.pem.strip().replace("\n", "\\n"))
    client = make("sync", acme("private_key_jwt"), environ=env)
    http.queue(200, TOKENS)
    await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    verify(form(http.requests[-1])["client_assertion"], key.public, "ES256")


async def test_the_key_is_read_from_a_file(
    make: Callable[..., Both], http: Recorder, pairs: dict[str, Pair], tmp_path: Path, mode: str
) -> None:
    key = pairs["RSA"]
    path = tmp_path / "client-key.pem"
    path.write_text(key.pem)
    env = acme_env(PRIVATE_KEY_FILE=str(path), SIGNING_ALG="PS384")
    client = make(mode, acme("private_key_jwt"), environ=env)
    http.queue(200, TOKENS)
    await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    token = verify(form(http.requests[-1])["client_assertion"], key.public, "PS384")
    assert "kid" not in token.header


def environ_client(env: dict[str, str], spec: ProviderSpec | None = None) -> keyturn.Keyturn:
    return keyturn.Keyturn(providers=[spec or acme("private_key_jwt")], environ=env)


@pytest.mark.parametrize(
    ("setup", "pattern"),
    [
        (lambda d: str(d / "missing.pem"), r"KEYTURN_ACME_PRIVATE_KEY_FILE names '.*missing\.pem'"),
        (lambda d: str(d), r"KEYTURN_ACME_PRIVATE_KEY_FILE names .*cannot be read"),
        (
            lambda d: (d / "big.pem").write_text("x" * (65 * 1024)) and str(d / "big.pem"),
            "larger than any PEM private key",
        ),
        (
            lambda d: (d / "bin.pem").write_bytes(b"\xff\xfe\x00") and str(d / "bin.pem"),
            "not PEM text",
        ),
    ],
    ids=["missing", "a directory", "too large", "not text"],
)
def test_an_unusable_key_file_names_the_variable_and_path(
    tmp_path: Path, setup: Callable[[Path], str], pattern: str
) -> None:
    path = setup(tmp_path)
    with pytest.raises(keyturn.ConfigurationError, match=pattern) as caught:
        environ_client(acme_env(PRIVATE_KEY_FILE=path)).credentials("acme")
    assert path in str(caught.value)


def test_a_key_file_holding_a_public_key_is_refused_without_its_content(
    tmp_path: Path, pairs: dict[str, Pair], rsa_key: Any
) -> None:
    path = tmp_path / "public.pem"
    path.write_text(public_pem(rsa_key))
    with pytest.raises(keyturn.ConfigurationError, match="public key") as caught:
        environ_client(acme_env(PRIVATE_KEY_FILE=str(path))).credentials("acme")
    assert str(caught.value).startswith("KEYTURN_ACME_PRIVATE_KEY_FILE: ")
    assert_no_key(str(caught.value), public_pem(rsa_key))


def test_the_key_variable_and_the_key_file_are_not_both_set(
    tmp_path: Path, pairs: dict[str, Pair]
) -> None:
    path = tmp_path / "key.pem"
    path.write_text(pairs["P-256"].pem)
    env = acme_env(PRIVATE_KEY=pairs["P-256"].pem, PRIVATE_KEY_FILE=str(path))
    with pytest.raises(keyturn.ConfigurationError, match="not both") as caught:
        environ_client(env).credentials("acme")
    assert_no_key(str(caught.value), pairs["P-256"].pem)


def test_an_unknown_signing_alg_in_the_environment_is_named(pairs: dict[str, Pair]) -> None:
    env = acme_env(PRIVATE_KEY=pairs["P-256"].pem, SIGNING_ALG="none")
    with pytest.raises(keyturn.ConfigurationError, match="signing_alg") as caught:
        environ_client(env).credentials("acme")
    assert_no_key(str(caught.value), pairs["P-256"].pem)


# -- bad keys ---------------------------------------------------------------------------------


def self_signed_certificate(key: Any) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme test")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def bad_keys(rsa_key: Any, pairs: dict[str, Pair]) -> dict[str, tuple[str, str]]:
    """Name -> (PEM text, what the error says)."""
    p256 = pairs["P-256"].pem
    lines = p256.splitlines()
    encrypted = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()
    return {
        "not PEM": ("not a key at all " + lines[1], "not PEM text"),
        "truncated": ("\n".join([*lines[:2], lines[-1]]), "not a readable PEM private key"),
        "altered": (p256.replace(lines[1], lines[1][::-1]), "not a readable PEM private key"),
        "public key": (public_pem(rsa_key), "is a public key"),
        "certificate": (self_signed_certificate(rsa_key), "is a certificate"),
        "encrypted": (encrypted, "encrypted with a passphrase"),
        "RSA 1024": (
            private_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
            "1024 bits",
        ),
        "P-521": (private_pem(ec.generate_private_key(ec.SECP521R1())), "secp521r1"),
        "Ed448": (private_pem(ed448.Ed448PrivateKey.generate()), "RSA, EC .* or Ed25519"),
    }


BAD = ["not PEM", "truncated", "altered", "public key", "certificate", "encrypted"]
BAD += ["RSA 1024", "P-521", "Ed448"]


def raised(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except BaseException as exc:
        return exc
    raise AssertionError("nothing raised")


@pytest.mark.parametrize("name", BAD)
def test_a_bad_key_is_a_configuration_error_that_never_quotes_it(
    bad_keys: dict[str, tuple[str, str]], name: str
) -> None:
    pem, says = bad_keys[name]
    env = acme_env(PRIVATE_KEY=pem)
    ways: dict[str, Callable[[], Any]] = {
        "model": lambda: ClientCredentials(client_id=CLIENT_ID, private_key=pem),
        "bytes": lambda: ClientCredentials(client_id=CLIENT_ID, private_key=pem.encode()),
        "validate": lambda: ClientCredentials.model_validate(
            {"client_id": CLIENT_ID, "private_key": pem}
        ),
        "credentials=": lambda: keyturn.Keyturn(
            {"acme": {"client_id": CLIENT_ID, "private_key": pem}}, providers=[acme("none")]
        ),
        "environment": lambda: environ_client(env).credentials("acme"),
        "SigningKey": lambda: SigningKey.from_pem(pem),
        "sign_jwt": lambda: sign_jwt(pem, {"sub": "x"}),
    }
    for way, call in ways.items():
        error = raised(call)
        assert type(error) is keyturn.ConfigurationError, (way, type(error))
        message = str(error)
        assert re.search(says, message), (way, message)
        assert_no_key(message, pem)
        assert_no_key(repr(error), pem)
        assert_no_key("".join(traceback.format_exception(error)), pem)
        assert error.__cause__ is None, way
        assert error.__context__ is None or error.__suppress_context__, way
    assert str(raised(ways["environment"])).startswith("KEYTURN_ACME_PRIVATE_KEY: ")
    assert "'acme'" in str(raised(ways["credentials="]))


def test_undecodable_key_bytes_are_refused_without_a_validation_error() -> None:
    with pytest.raises(keyturn.ConfigurationError, match="not PEM text"):
        ClientCredentials(client_id=CLIENT_ID, private_key=b"\xff\xfe-----BEGIN")


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"signing_alg": "ES256"}, "cannot sign with 'ES256'"),
        ({"signing_alg": "EdDSA"}, "cannot sign with 'EdDSA'"),
        ({"private_key": None, "signing_alg": "RS256"}, "there is no private_key"),
        ({"private_key": None, "private_key_id": "k1"}, "private_key_id is set"),
    ],
)
def test_settings_that_cannot_sign_together_are_refused(
    pairs: dict[str, Pair], fields: dict[str, Any], says: str
) -> None:
    values = {"client_id": CLIENT_ID, "private_key": pairs["RSA"].pem, **fields}
    with pytest.raises(keyturn.ConfigurationError, match=says) as caught:
        ClientCredentials.model_validate(values)
    assert_no_key(str(caught.value), pairs["RSA"].pem)


def test_an_unknown_algorithm_is_a_validation_error_naming_only_the_algorithm(
    pairs: dict[str, Pair],
) -> None:
    with pytest.raises(ValidationError) as caught:
        ClientCredentials(client_id=CLIENT_ID, private_key=pairs["RSA"].pem, signing_alg="none")
    assert [error["loc"] for error in caught.value.errors()] == [("signing_alg",)]
    assert_no_key(str(caught.value), pairs["RSA"].pem)


# -- a key or a secret the method needs -------------------------------------------------------


async def test_private_key_jwt_without_a_key_fails_before_anything_is_sent(
    make: Callable[..., Both], http: Recorder, mode: str
) -> None:
    client = make(mode, acme("private_key_jwt"), (CLIENT_ID, SECRET))
    pattern = "private_key_jwt.*no private key.*KEYTURN_ACME_PRIVATE_KEY_FILE"
    with pytest.raises(keyturn.ConfigurationError, match=pattern):
        client.client.authorize_url("acme", REDIRECT)
    with pytest.raises(keyturn.ConfigurationError, match=pattern):
        await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    tokens = keyturn.TokenSet(provider="acme", access_token="fake-at", refresh_token="fake-rt")
    with pytest.raises(keyturn.ConfigurationError, match=pattern):
        await client("refresh", tokens)
    with pytest.raises(keyturn.ConfigurationError, match=pattern):
        await client("revoke", tokens)
    assert http.requests == []


@pytest.mark.parametrize(
    ("method", "alg", "says"),
    [
        ("private_key_jwt", "HS256", "HS256 is for client_secret_jwt"),
        ("client_secret_jwt", "RS256", "RS256 needs private_key_jwt"),
    ],
)
def test_an_algorithm_of_the_other_method_is_refused(
    pairs: dict[str, Pair], method: str, alg: str, says: str
) -> None:
    credentials = ClientCredentials(
        client_id=CLIENT_ID, client_secret=SECRET, private_key=pairs["RSA"].pem, signing_alg=alg
    )
    client = keyturn.Keyturn({"acme": credentials}, providers=[acme(method)], environ={})
    with pytest.raises(keyturn.ConfigurationError, match=says):
        client.credentials("acme")


def test_a_secret_method_still_takes_credentials_without_a_secret() -> None:
    """A public client registered as client_secret_post keeps working, as before."""
    client = keyturn.Keyturn(
        {"acme": ClientCredentials(client_id=CLIENT_ID)}, providers=[acme("client_secret_post")]
    )
    assert client.credentials("acme").client_secret is None


# -- never shown ------------------------------------------------------------------------------


def test_credentials_hide_the_key_and_round_trip_it_revealed(pairs: dict[str, Pair]) -> None:
    pem = pairs["RSA"].pem
    credentials = ClientCredentials(
        client_id=CLIENT_ID, client_secret=SECRET, private_key=pem, private_key_id="k1"
    )
    assert_hidden(credentials, SECRET, *(line[:24] for line in body_lines(pem)), "-----BEGIN")
    assert "k1" in repr(credentials)  # a key id is public
    revealed = credentials.model_dump(mode="json", context=REVEAL)
    assert revealed["private_key"] == pem
    again = ClientCredentials.model_validate(revealed)
    assert again == credentials
    assert again.signing_key == credentials.signing_key
    assert repr(credentials.signing_key) == "SigningKey(kty='RSA', alg='RS256', kid='k1')"
    with pytest.raises(ValidationError, match="REVEAL"):
        ClientCredentials.model_validate(credentials.model_dump())


def test_request_credentials_hide_the_assertion(pairs: dict[str, Pair]) -> None:
    credentials = ClientCredentials(client_id=CLIENT_ID, private_key=pairs["P-256"].pem)
    spec = acme("private_key_jwt")
    sent = client_auth.request_credentials(spec, credentials, START, None)
    assert sent.client_assertion is not None
    assertion = sent.client_assertion.get_secret_value()
    assert assertion.count(".") == 2
    assert_hidden(sent, assertion, assertion.split(".")[2])
    request = flows.token_request(spec, sent, {"grant_type": "refresh_token"})
    assert_hidden(request, assertion)
    assert sent.signing_key == credentials.signing_key


def test_a_signing_key_shows_nothing_of_itself_and_pickles(pairs: dict[str, Pair]) -> None:
    key = SigningKey.from_pem(pairs["Ed25519"].pem, kid="k9")
    for text in (repr(key), str(key), f"{key}"):
        assert_no_key(text, pairs["Ed25519"].pem)
    assert "d" not in key.public_jwk()  # the private part of an OKP JWK
    again = pickle.loads(pickle.dumps(key))
    assert again == key and hash(again) == hash(key)
    assert again.public_jwk() == key.public_jwk()
    credentials = ClientCredentials(client_id=CLIENT_ID, private_key=pairs["Ed25519"].pem)
    assert pickle.loads(pickle.dumps(credentials)) == credentials


async def test_no_key_assertion_or_minted_secret_in_any_log_line_or_error(
    make: Callable[..., Both],
    http: Recorder,
    pairs: dict[str, Pair],
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = pairs["RSA"]
    credentials = ClientCredentials(client_id=CLIENT_ID, private_key=key.pem)
    client = make(mode, acme("private_key_jwt"), credentials)
    sent = await each_operation(client, http)
    tokens = keyturn.TokenSet(provider="acme", access_token="fake-at", refresh_token="fake-rt-9")
    http.queue(401, {"error": "invalid_client", "error_description": "bad assertion"})
    with pytest.raises(keyturn.OAuthError) as caught:
        await client("refresh", tokens)
    sent.append(http.requests[-1])
    assertions = [form(request)["client_assertion"] for request in sent]
    shown = [caplog.text, str(caught.value), repr(caught.value)]
    assert "invalid_client" in caplog.text  # the failure was logged
    for text in shown:
        assert_no_key(text, key.pem)
        for assertion in assertions:
            for part in assertion.split("."):
                assert part not in text


# -- the minted-secret hook -------------------------------------------------------------------


class MintedSecret:
    """Mints a new secret for every request, and remembers each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    @keyturn.hookimpl
    @keyturn.for_provider("acme")
    def keyturn_client_secret(self, provider: ProviderSpec, credentials: Any, now: int) -> str:
        self.calls.append((provider.id, credentials.client_id, now))
        return f"minted-{len(self.calls)}-" + "s" * 40

    def minted(self, number: int) -> str:
        return f"minted-{number}-" + "s" * 40


async def test_the_minted_secret_is_asked_for_each_request_and_sent(
    make: Callable[..., Both], http: Recorder, clock: FakeClock, mode: str
) -> None:
    plugin = MintedSecret()
    credentials = ClientCredentials(client_id=CLIENT_ID, client_secret=SECRET)
    client = make(mode, acme("client_secret_post"), credentials, plugins=(plugin,))
    client.client.authorize_url("acme", REDIRECT)
    assert plugin.calls == []  # nothing is sent there
    http.queue(200, TOKENS)
    tokens = await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    clock.advance(100)
    http.queue(200, REFRESHED)
    refreshed = await client("refresh", tokens)
    clock.advance(5)
    http.queue(200, {})
    await client("revoke", refreshed)
    assert plugin.calls == [
        ("acme", CLIENT_ID, START),
        ("acme", CLIENT_ID, START + 100),
        ("acme", CLIENT_ID, START + 105),
    ]
    assert all(isinstance(call[2], int) for call in plugin.calls)
    sent = [form(request)["client_secret"] for request in http.requests]
    assert sent == [plugin.minted(1), plugin.minted(2), plugin.minted(3)]
    assert all(SECRET not in request.content.decode() for request in http.requests)


async def test_the_minted_secret_goes_into_basic_auth(
    make: Callable[..., Both], http: Recorder, mode: str
) -> None:
    plugin = MintedSecret()
    client = make(mode, acme("client_secret_basic"), (CLIENT_ID, SECRET), plugins=(plugin,))
    http.queue(200, TOKENS)
    await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    scheme, _, value = http.requests[-1].headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(value).decode() == f"{CLIENT_ID}:{plugin.minted(1)}"


async def test_the_minted_secret_is_the_key_of_client_secret_jwt(
    make: Callable[..., Both], http: Recorder, mode: str
) -> None:
    plugin = MintedSecret()
    client = make(mode, acme("client_secret_jwt"), (CLIENT_ID, None), plugins=(plugin,))
    http.queue(200, TOKENS)
    await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    assertion = form(http.requests[-1])["client_assertion"]
    verify(assertion, jwk.OctKey.import_key(plugin.minted(1).encode()), "HS256")


@pytest.mark.parametrize("method", ["none", "private_key_jwt"])
async def test_the_hook_is_not_asked_where_no_secret_is_used(
    make: Callable[..., Both], http: Recorder, pairs: dict[str, Pair], method: str
) -> None:
    plugin = MintedSecret()
    credentials = ClientCredentials(client_id=CLIENT_ID, private_key=pairs["P-256"].pem)
    client = make("sync", acme(method), credentials, plugins=(plugin,))
    http.queue(200, TOKENS)
    await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    assert plugin.calls == []
    assert "client_secret" not in form(http.requests[-1])


async def test_a_hook_answering_for_another_provider_leaves_the_configured_secret(
    make: Callable[..., Both], http: Recorder, mode: str
) -> None:
    plugin = MintedSecret()
    spec = acme("client_secret_post", provider_id="other")
    client = make(mode, spec, (CLIENT_ID, SECRET), plugins=(plugin,))
    http.queue(200, TOKENS)
    await client("exchange_code", "other", "fake-code", redirect_uri=REDIRECT)
    assert form(http.requests[-1])["client_secret"] == SECRET
    assert plugin.calls == []


class AsyncSecret:
    @keyturn.hookimpl
    async def keyturn_client_secret(self, provider: ProviderSpec) -> str:
        return "never"


class EmptySecret:
    @keyturn.hookimpl
    def keyturn_client_secret(self, provider: ProviderSpec) -> str:
        return ""


class NumberSecret:
    @keyturn.hookimpl
    def keyturn_client_secret(self, provider: ProviderSpec) -> int:
        return 42


@pytest.mark.parametrize(
    ("plugin", "says"),
    [(AsyncSecret(), "returned coroutine"), (EmptySecret(), "empty"), (NumberSecret(), "int")],
    ids=["async def", "empty", "not a str"],
)
async def test_a_hook_answer_that_is_not_a_secret_is_refused(
    make: Callable[..., Both], http: Recorder, mode: str, plugin: object, says: str
) -> None:
    client = make(mode, acme("client_secret_post"), (CLIENT_ID, SECRET), plugins=(plugin,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a coroutine left unawaited would warn
        with pytest.raises(keyturn.PluginError, match=says) as caught:
            await client("exchange_code", "acme", "fake-code", redirect_uri=REDIRECT)
    assert "no async def hooks" in str(caught.value)
    assert http.requests == []


def apple_example() -> types.ModuleType:
    """The Apple plugin in keyturn_client_secret's docstring, run as written."""
    doc = inspect.getdoc(hookspecs.keyturn_client_secret) or ""
    lines = doc.split("::\n", 1)[1].splitlines()
    block = []
    for line in lines:
        if line and not line.startswith("    "):
            break
        block.append(line[4:])
    module = types.ModuleType("apple_example")
    module.keyturn = keyturn  # type: ignore[attr-defined]
    exec("\n".join(block), module.__dict__)
    return module


async def test_the_apple_example_mints_a_secret_apple_would_accept(
    http: Recorder, clock: FakeClock, pairs: dict[str, Pair], tmp_path: Path, mode: str
) -> None:
    key = pairs["P-256"]
    path = tmp_path / "AuthKey_ABC123DEFG.p8"
    path.write_text(key.pem)
    environ = {
        "KEYTURN_APPLE_CLIENT_ID": "com.example.app.signin",
        "KEYTURN_APPLE_PRIVATE_KEY_FILE": str(path),
        "KEYTURN_APPLE_PRIVATE_KEY_ID": "ABC123DEFG",
        "KEYTURN_APPLE_TEAM_ID": "ABCDE12345",
    }
    apple = ProviderSpec(
        id="apple",
        name="Apple",
        authorization_endpoint="https://appleid.apple.com/auth/authorize",
        token_endpoint="https://appleid.apple.com/auth/token",
        revocation_endpoint="https://appleid.apple.com/auth/revoke",
        settings=(keyturn.DeploymentSetting(name="team_id", kind="text", description="team"),),
    )
    pm = keyturn.get_plugin_manager(plugins=[apple_example()], environ={})
    transport = httpx.MockTransport(http)
    options: dict[str, Any] = {"clock": clock, "plugin_manager": pm, "environ": environ}
    client: Any
    if mode == "sync":
        client = keyturn.Keyturn(
            http_client=httpx.Client(transport=transport), providers=[apple], **options
        )
    else:
        client = keyturn.AsyncKeyturn(
            http_client=httpx.AsyncClient(transport=transport), providers=[apple], **options
        )
    both = Both(client)
    http.queue(200, TOKENS)
    tokens = await both("exchange_code", "apple", "fake-code", redirect_uri=REDIRECT)
    clock.advance(30)
    http.queue(200, {})
    await both("revoke", tokens)
    secrets = [form(request)["client_secret"] for request in http.requests]
    assert secrets[0] != secrets[1]
    for index, secret in enumerate(secrets):
        token = verify(secret, key.public, "ES256")
        assert token.header == {"alg": "ES256", "kid": "ABC123DEFG", "typ": "JWT"}
        issued = START + 30 * index
        assert token.claims == {
            "iss": "ABCDE12345",
            "sub": "com.example.app.signin",
            "aud": "https://appleid.apple.com",
            "iat": issued,
            "exp": issued + 300,
        }


# -- sign_jwt and SigningKey ------------------------------------------------------------------


def test_sign_jwt_takes_pem_text_a_secret_or_a_signing_key(pairs: dict[str, Pair]) -> None:
    key = pairs["P-256"]
    claims = {"iss": "team", "sub": "client", "exp": START + 10}
    from_text = sign_jwt(key.pem, claims, kid="a")
    from_secret = sign_jwt(SecretStr(key.pem), claims, kid="a")
    from_key = sign_jwt(SigningKey.from_pem(key.pem, kid="a"), claims)
    for token in (from_text, from_secret, from_key):
        decoded = verify(token, key.public, "ES256")
        assert decoded.claims == claims
        assert decoded.header["kid"] == "a"
    renamed = sign_jwt(SigningKey.from_pem(key.pem, kid="a"), claims, kid="b", headers={"cty": "x"})
    assert verify(renamed, key.public, "ES256").header == {
        "alg": "ES256",
        "kid": "b",
        "typ": "JWT",
        "cty": "x",
    }


def test_sign_jwt_refuses_what_cannot_sign(pairs: dict[str, Pair]) -> None:
    with pytest.raises(keyturn.ConfigurationError, match="cannot sign with 'RS256'"):
        sign_jwt(pairs["P-256"].pem, {}, alg="RS256")
    with pytest.raises(keyturn.ConfigurationError, match="cannot sign with 'ES384'"):
        sign_jwt(SigningKey.from_pem(pairs["P-256"].pem), {}, alg="ES384")
    with pytest.raises(keyturn.ConfigurationError, match="PEM text"):
        sign_jwt(None, {})  # type: ignore[arg-type]
    with pytest.raises(keyturn.ConfigurationError, match="could not sign") as caught:
        sign_jwt(pairs["P-256"].pem, {}, headers={"x-unknown": 1})
    assert_no_key(str(caught.value), pairs["P-256"].pem)


def test_the_traditional_pem_forms_are_read_too(rsa_key: Any, pairs: dict[str, Pair]) -> None:
    traditional = private_pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL)
    assert "BEGIN RSA PRIVATE KEY" in traditional
    token = sign_jwt(traditional, {"sub": "x"})
    assert verify(token, pairs["RSA"].public, "RS256").claims == {"sub": "x"}


# -- the parsed-key cache ---------------------------------------------------------------------


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """An empty key cache, and a count of the keys parsed for real."""
    monkeypatch.setattr(client_auth, "_cache", OrderedDict())
    count: list[int] = []
    load = client_auth._load

    def counted(text: str, digest: bytes) -> Any:
        count.append(1)
        return load(text, digest)

    monkeypatch.setattr(client_auth, "_load", counted)
    return count


def test_a_cached_key_equals_a_fresh_parse(
    loads: list[int], pairs: dict[str, Pair], monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = pairs["RSA"].pem
    values = {"client_id": CLIENT_ID, "private_key": pem, "private_key_id": "k1"}
    first = ClientCredentials.model_validate(values)
    cached = [ClientCredentials.model_validate(values) for _ in range(5)]
    assert len(loads) == 1  # parsed once
    monkeypatch.setattr(client_auth, "_cache", OrderedDict())
    fresh = ClientCredentials.model_validate(values)
    assert len(loads) == 2
    for other in [*cached, fresh]:
        assert other == first
        assert repr(other) == repr(first)
        assert other.model_dump(context=REVEAL) == first.model_dump(context=REVEAL)
        assert other.model_fields_set == first.model_fields_set
        assert other.signing_key == first.signing_key
        assert other.signing_key is not None and first.signing_key is not None
        assert other.signing_key.public_jwk() == first.signing_key.public_jwk()
        token = other.signing_key.sign({"sub": "x"})
        assert verify(token, pairs["RSA"].public, "RS256").claims == {"sub": "x"}


def test_the_cache_keeps_a_bounded_number_of_keys(loads: list[int]) -> None:
    pems = [
        private_pem(ed25519.Ed25519PrivateKey.generate())
        for _ in range(client_auth.KEY_CACHE_SIZE + 1)
    ]
    first = SigningKey.from_pem(pems[0])
    for pem in pems[1:]:
        SigningKey.from_pem(pem)
    assert client_auth._cached_keys() == client_auth.KEY_CACHE_SIZE
    assert len(loads) == len(pems)
    again = SigningKey.from_pem(pems[0])  # evicted: parsed again, and the same key
    assert len(loads) == len(pems) + 1
    assert again == first and again.public_jwk() == first.public_jwk()
    SigningKey.from_pem(pems[-1])  # still cached
    assert len(loads) == len(pems) + 1


def test_the_environment_is_read_on_each_lookup_and_a_new_key_is_used_at_once(
    loads: list[int], pairs: dict[str, Pair], tmp_path: Path
) -> None:
    path = tmp_path / "key.pem"
    path.write_text(pairs["P-256"].pem)
    env = acme_env(PRIVATE_KEY_FILE=str(path))
    client = environ_client(env)
    spec = acme("private_key_jwt")
    first = client.credentials("acme")
    assert client.credentials("acme") == first
    assert client.credentials("acme").model_dump(context=REVEAL) == first.model_dump(context=REVEAL)
    direct = ClientCredentials(client_id=CLIENT_ID, private_key=pairs["P-256"].pem)
    assert first == direct and repr(first) == repr(direct)
    assert len(loads) == 1
    path.write_text(pairs["P-384"].pem)  # the key file is replaced: the new key signs
    assertion = client_auth.client_assertion(spec, client.credentials("acme"), START)
    assert verify(assertion, pairs["P-384"].public, "ES384").claims["sub"] == CLIENT_ID
    env["KEYTURN_ACME_PRIVATE_KEY_ID"] = "rotated"  # so is a new key id
    assert client.credentials("acme").private_key_id == "rotated"
    assert len(loads) == 2


def test_the_cache_is_keyed_by_a_digest_never_by_the_key(
    loads: list[int], pairs: dict[str, Pair]
) -> None:
    SigningKey.from_pem(pairs["P-256"].pem)
    for cache_key in client_auth._cache:
        assert isinstance(cache_key, bytes) and len(cache_key) == 32
        assert cache_key not in pairs["P-256"].pem.encode()


# -- cassettes --------------------------------------------------------------------------------


def test_cassettes_scrub_and_match_the_client_assertion(pairs: dict[str, Pair]) -> None:
    from vcr.request import Request as VcrRequest

    from pytest_keyturn.cassettes import body_matcher, find_secrets, scrub_request

    credentials = ClientCredentials(client_id=CLIENT_ID, private_key=pairs["P-256"].pem)
    spec = acme("private_key_jwt")
    bodies = []
    for _ in range(2):
        sent = client_auth.request_credentials(spec, credentials, START, None)
        request = flows.token_request(spec, sent, {"grant_type": "refresh_token"})
        bodies.append(request.body)
    assert "client assertion" in find_secrets(bodies[0].decode())
    headers = {"content-type": "application/x-www-form-urlencoded"}
    recorded = scrub_request(VcrRequest("POST", TOKEN_URL, bodies[0], dict(headers)))
    stored = recorded.body.decode()
    assert find_secrets(stored) == []
    assert "client_assertion=REDACTED-" in stored
    assert form_of(bodies[0])["client_assertion"] not in stored
    # A replay sends another assertion: it still matches the recorded request.
    body_matcher(recorded, VcrRequest("POST", TOKEN_URL, bodies[1], dict(headers)))


def form_of(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode()))


def test_the_module_docs_state_the_lifetime_the_code_uses() -> None:
    doc = client_auth.__doc__ or ""
    assert "(60 s)" in doc and ASSERTION_LIFETIME == 60
    page = (Path(__file__).resolve().parents[2] / "docs" / "client-auth.md").read_text()
    assert "`iat` + 60 seconds" in page
    assert JWT_BEARER in page
