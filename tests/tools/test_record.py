"""``keyturn record`` and the personal-data scrubbing it relies on.

A small provider on 127.0.0.1 (stdlib http.server, port 0) stands in for the real one: its
authorize endpoint redirects to the redirect URI with a code and the state, its token
endpoint hands out live-looking tokens and an ID token with a real-looking name and email,
and it serves userinfo and revoke. The tests play the browser: they GET the authorize URL and
follow the redirect into the recorder's own loopback server.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
import yaml
from joserfc.jwk import Key

import keyturn
from keyturn import cli
from keyturn.discovery import WELL_KNOWN
from keyturn.idtoken import token_hash, unverified_claims, verify_signature
from keyturn.jwks import parse_key_set
from keyturn.plugins import KeyturnPluginManager
from pytest_keyturn.cassettes import (
    find_secrets,
    make_vcr,
    scrub_personal_data,
    scrub_personal_json,
    scrub_response,
)
from pytest_keyturn.clock import FakeClock
from pytest_keyturn.commands import record as record_cli
from pytest_keyturn.recording import (
    ACCESS_TOKEN_ENV,
    DEFAULT_PORT,
    REFRESH_TOKEN_ENV,
    Recording,
    RecordingError,
    Scenario,
    record,
    save_tokens,
)
from pytest_keyturn.signing import CASSETTE_KID_PREFIX, is_cassette_signed, token_header
from tests.conftest import CASSETTES, CLIENT_ID, CLIENT_SECRET
from tests.core._oidc import ec_key, public_jwk, rsa_key, sign

#: What the stand-in provider says about the user: real-looking, so a leak would show.
PERSON = {
    "name": "Ada Lovelace",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "email": "ada.lovelace@fakemail.net",
    "picture": "https://avatars.fakecdn.net/u/ada.png",
}
LOGIN = "ada-lovelace"
SUB = "248289761001"
#: None of these may be left in a cassette (each too long to turn up in base64 by chance).
PERSONAL_STRINGS = ("Ada Lovelace", "Lovelace", "fakemail", "fakecdn", LOGIN)


@dataclass
class Provider:
    """State of the stand-in provider; ``leak`` makes userinfo echo the access token."""

    base: str = ""
    leak: bool = False
    nonce: str = ""
    code: str = field(default_factory=lambda: "fake-code-" + secrets.token_hex(8))
    access_token: str = field(default_factory=lambda: "ya29.fake-access-" + secrets.token_hex(16))
    refresh_token: str = field(default_factory=lambda: "1//0fake-refresh-" + secrets.token_hex(16))
    rotated: str = field(default_factory=lambda: "1//0fake-rotated-" + secrets.token_hex(16))
    revoked: list[str] = field(default_factory=list)
    #: When set, ID tokens are signed with this key (its kid and alg) and carry at_hash, the
    #: key set is served at /jwks, and refreshes bring an ID token too.
    signer: tuple[str, Key, str] | None = None
    #: The ID tokens handed out, as sent.
    id_tokens: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)

    def spec(self, *, keys: bool = False) -> keyturn.ProviderSpec:
        extra: dict[str, Any] = {}
        if keys:
            assert self.signer is not None
            extra = {"jwks_uri": f"{self.base}/jwks", "id_token_signing_algs": {self.signer[2]}}
        return keyturn.ProviderSpec(
            id="fakeidp",
            name="Fake IdP",
            authorization_endpoint=f"{self.base}/authorize",
            token_endpoint=f"{self.base}/token",
            userinfo_endpoint=f"{self.base}/userinfo",
            revocation_endpoint=f"{self.base}/revoke",
            issuer=self.base,
            default_scopes=("openid", "email", "profile"),
            rotates_refresh_tokens=True,
            **extra,
        )

    def id_token(self, access_token: str, *, nonce: bool = True) -> str:
        issued = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.base,
            "aud": CLIENT_ID,
            "sub": SUB,
            "nonce": self.nonce,
            "iat": issued,
            "exp": issued + 3600,
            **PERSON,
        }
        if not nonce:
            del claims["nonce"]
        if self.signer is None:
            payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
            token = f"eyJhbGciOiJSUzI1NiJ9.{payload}.ZmFrZS1zaWduYXR1cmUtdmFsdWU"
        else:
            kid, key, alg = self.signer
            claims["at_hash"] = token_hash(access_token, alg)
            token = sign(claims, key, alg, kid=kid)
        self.id_tokens.append(token)
        return token

    def key_set(self) -> dict[str, Any]:
        assert self.signer is not None
        kid, key, _ = self.signer
        return {"keys": [public_jwk(key, kid)]}

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.base,
            "authorization_endpoint": f"{self.base}/authorize",
            "token_endpoint": f"{self.base}/token",
            "jwks_uri": f"{self.base}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }

    def token(self, form: dict[str, str]) -> tuple[int, Any]:
        if form.get("client_secret") != CLIENT_SECRET:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") == "authorization_code" and form.get("code") == self.code:
            return 200, {
                "access_token": self.access_token,
                "token_type": "Bearer",
                "expires_in": 3599,
                "refresh_token": self.refresh_token,
                "scope": "openid email profile",
                "id_token": self.id_token(self.access_token),
            }
        if form.get("grant_type") == "refresh_token" and (
            form.get("refresh_token") == self.refresh_token
        ):
            refreshed = "ya29.fake-refreshed-" + secrets.token_hex(16)
            body = {
                "access_token": refreshed,
                "token_type": "Bearer",
                "expires_in": 3599,
                "refresh_token": self.rotated,
            }
            if self.signer is not None:
                body["id_token"] = self.id_token(refreshed, nonce=False)
            return 200, body
        return 400, {"error": "invalid_grant", "error_description": "Token has been revoked."}

    def userinfo(self, authorization: str) -> tuple[int, Any]:
        if authorization != f"Bearer {self.access_token}":
            return 401, {"error": "invalid_token"}
        body = {
            "sub": SUB,
            "login": LOGIN,
            "html_url": f"https://people.fakehost.net/{LOGIN}",
            "email_verified": True,
            **PERSON,
        }
        if self.leak:
            body["session_hint"] = self.access_token
        return 200, body


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {"Content-Type": "application/json"}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            if parts.path == "/authorize":
                provider.nonce = query.get("nonce", "")
                back = urlencode({"code": provider.code, "state": query["state"]})
                self._send(302, None, {"Location": f"{query['redirect_uri']}?{back}"})
            elif parts.path == "/userinfo":
                self._send(*provider.userinfo(self.headers.get("Authorization", "")))
            elif parts.path == "/jwks" and provider.signer is not None:
                provider.fetched.append(parts.path)
                self._send(200, provider.key_set())
            elif parts.path == WELL_KNOWN:
                provider.fetched.append(parts.path)
                self._send(200, provider.metadata())
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            if self.path == "/token":
                self._send(*provider.token(form))
            elif self.path == "/revoke":
                provider.revoked.append(form.get("token", ""))
                self._send(200, None, {})
            else:
                self._send(404, {"error": "not_found"})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def provider() -> Iterator[Provider]:
    state = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def make_client(
    provider: Provider, pm: KeyturnPluginManager
) -> Iterator[Callable[..., keyturn.Keyturn]]:
    """Clients that know the stand-in provider; closed after the test."""
    made: list[keyturn.Keyturn] = []

    def make(*, keys: bool = False, **options: Any) -> keyturn.Keyturn:
        options.setdefault("providers", [provider.spec(keys=keys)])
        client = keyturn.Keyturn(
            {"fakeidp": (CLIENT_ID, CLIENT_SECRET)},
            plugin_manager=pm,
            environ={},
            http_client=httpx.Client(trust_env=False),
            **options,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.http_client.close()  # type: ignore[attr-defined]


class Browser:
    """Plays the user: opens the authorize URL and follows the redirect to the recorder."""

    def __init__(self, tamper: Callable[[str], str] | None = None) -> None:
        self.opened: list[str] = []
        self.landed: list[httpx.Response] = []
        self.tamper = tamper

    def __call__(self, url: str) -> None:
        self.opened.append(url)
        with httpx.Client(trust_env=False) as http:
            response = http.get(url)
            assert response.status_code == 302
            location = response.headers["location"]
            self.landed.append(http.get(self.tamper(location) if self.tamper else location))


def _record(client: keyturn.Keyturn, scenario: str, folder: Path, **kwargs: Any) -> Recording:
    lines: list[str] = []
    kwargs.setdefault("port", 0)
    kwargs.setdefault("timeout", 10)
    return record(client, "fakeidp", scenario, cassette_dir=folder, say=lines.append, **kwargs)


def _interactions(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    interactions: list[dict[str, Any]] = data["interactions"]
    return interactions


def _assert_clean(path: Path, provider: Provider) -> str:
    text = path.read_text(encoding="utf-8")
    assert find_secrets(text) == []
    for value in (provider.access_token, provider.refresh_token, provider.rotated, provider.code):
        assert value not in text
    assert CLIENT_SECRET not in text
    for personal in PERSONAL_STRINGS:
        assert personal not in text, personal
    assert "content-length" not in text.lower()
    return text


# -- exchange ---------------------------------------------------------------------------------


def test_exchange_records_a_scrubbed_cassette_that_replays(
    provider: Provider, make_client: Callable[..., keyturn.Keyturn], tmp_path: Path
) -> None:
    browser = Browser()
    lines: list[str] = []
    result = record(
        make_client(),
        "fakeidp",
        "exchange_code_userinfo",
        cassette_dir=tmp_path,
        port=0,
        timeout=10,
        browser=browser,
        say=lines.append,
    )

    path = tmp_path / "fakeidp" / "exchange_code_userinfo.yaml"
    assert result.path == path and path.exists()
    assert result.interactions == 2
    assert result.outcome == "tokens and profile received"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no scratch left
    # The user was shown the redirect URI and the URL, and the recorder's page answered.
    assert len(browser.opened) == 1 and browser.opened[0] in lines
    assert any("redirect URI" in line and "http://127.0.0.1:" in line for line in lines)
    assert browser.landed[0].status_code == 200

    text = _assert_clean(path, provider)
    assert text.startswith("# Recorded against Fake IdP on ")
    exchange, userinfo = _interactions(path)
    sent = dict(parse_qsl(exchange["request"]["body"]))
    assert sent["client_id"] == CLIENT_ID
    assert sent["redirect_uri"].startswith("http://127.0.0.1:")
    assert sent["redirect_uri"].endswith("/callback")
    body = json.loads(exchange["response"]["body"]["string"])
    claims = unverified_claims(body["id_token"])
    # What keyturn checks survives; the person does not.
    assert claims["nonce"] == provider.nonce and provider.nonce
    assert (claims["iss"], claims["aud"], claims["sub"]) == (provider.base, CLIENT_ID, SUB)
    assert claims["email"] == "user@example.com"
    assert claims["name"] == "Example User"
    assert claims["picture"] == "https://example.com/avatar.png"
    profile = json.loads(userinfo["response"]["body"]["string"])
    assert profile["sub"] == SUB and profile["email_verified"] is True
    assert profile["login"] == "example-user"
    assert profile["html_url"] == "https://people.fakehost.net/example-user"

    # The tokens came back for --save-tokens, and they are the live ones.
    assert result.tokens is not None
    assert result.tokens.refresh_token is not None
    assert result.tokens.refresh_token.get_secret_value() == provider.refresh_token

    # Replay with record_mode "none": no request reaches the stand-in provider, on a clock
    # at the recording's time (keyturn checks the ID token's exp and iat on it).
    replayer = make_client(clock=FakeClock(claims["iat"]))
    request = replayer.authorize_url("fakeidp", sent["redirect_uri"], nonce=provider.nonce)
    with make_vcr(tmp_path / "fakeidp").use_cassette(path.name) as cassette:
        tokens = replayer.exchange_code(request, "any-code")
        replayed = replayer.userinfo(tokens)
    assert cassette.all_played
    assert tokens.access_token.get_secret_value().startswith("REDACTED-")
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value().startswith("REDACTED-")
    assert (replayed.id, replayed.email, replayed.name) == (SUB, "user@example.com", "Example User")


def test_a_forged_callback_is_refused_and_nothing_is_written(
    provider: Provider, make_client: Callable[..., keyturn.Keyturn], tmp_path: Path
) -> None:
    def forge(location: str) -> str:
        return location.replace("state=", "state=forged")

    with pytest.raises(keyturn.StateMismatchError):
        _record(make_client(), "exchange_code", tmp_path, browser=Browser(forge))
    assert not any(tmp_path.rglob("*.yaml"))


# -- ID tokens of a provider with a key set ----------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_an_exchange_records_the_key_set_and_signs_the_id_token_again(
    provider: Provider, make_client: Callable[..., keyturn.Keyturn], tmp_path: Path, alg: str
) -> None:
    key = rsa_key() if alg == "RS256" else ec_key()
    provider.signer = ("provider-key-1", key, alg)
    result = _record(make_client(keys=True), "exchange_code", tmp_path, browser=Browser())
    assert result.interactions == 2  # the key set, read before the code is sent; the exchange
    text = _assert_clean(result.path, provider)
    (live,) = provider.id_tokens
    for segment in (live.split(".")[0], live.split(".")[2]):
        assert segment not in text  # neither the provider's header nor its signature
    keys, exchange = _interactions(result.path)
    assert (keys["request"]["method"], keys["request"]["uri"]) == ("GET", f"{provider.base}/jwks")
    published = json.loads(keys["response"]["body"]["string"])["keys"]
    kept, added = published
    assert kept == provider.key_set()["keys"][0]  # the provider's set stays
    assert added["kid"].startswith(CASSETTE_KID_PREFIX) and added["alg"] == alg
    assert not {"d", "p", "q"} & set(added)  # public only

    body = json.loads(exchange["response"]["body"]["string"])
    token = body["id_token"]
    assert token_header(token) == {"alg": alg, "kid": added["kid"], "typ": "JWT"}
    claims = unverified_claims(token)
    # The checked claims stay, the person goes, and at_hash binds the placeholder.
    assert (claims["iss"], claims["aud"], claims["sub"]) == (provider.base, CLIENT_ID, SUB)
    assert claims["nonce"] == provider.nonce
    assert claims["name"] == "Example User" and claims["email"] == "user@example.com"
    assert body["access_token"].startswith("REDACTED-")
    assert claims["at_hash"] == token_hash(body["access_token"], alg)
    # The recorded key set verifies it, and nothing else does.
    verified = verify_signature(token, parse_key_set({"keys": published}), {alg})
    assert verified.kid == added["kid"]
    with pytest.raises(keyturn.IdTokenError):
        verify_signature(token, parse_key_set(provider.key_set()), {alg})

    # Replayed as a sign-in: the signature, at_hash and the claims pass keyturn's checks.
    code = dict(parse_qsl(exchange["request"]["body"]))["code"]
    redirect_uri = dict(parse_qsl(exchange["request"]["body"]))["redirect_uri"]
    replayer = make_client(keys=True, clock=FakeClock(claims["iat"]))
    request = replayer.authorize_url("fakeidp", redirect_uri, nonce=provider.nonce)
    query = {"state": request.state.get_secret_value(), "code": code}
    with make_vcr(tmp_path / "fakeidp").use_cassette(result.path.name) as cassette:
        token_jwt = replayer.sign_in(request, query, fetch_profile=False)
    assert cassette.all_played
    assert token_jwt.tokens.id_token is not None
    assert token_jwt.tokens.id_token.get_secret_value() == token


def test_a_refresh_records_the_key_set_and_signs_its_id_token_again(
    provider: Provider, make_client: Callable[..., keyturn.Keyturn], tmp_path: Path
) -> None:
    provider.signer = ("provider-key-1", rsa_key(), "RS256")
    result = _record(
        make_client(keys=True), "refresh_ok", tmp_path, refresh_token=provider.refresh_token
    )
    _assert_clean(result.path, provider)
    keys, refresh = _interactions(result.path)
    assert keys["request"]["uri"] == f"{provider.base}/jwks"
    token = json.loads(refresh["response"]["body"]["string"])["id_token"]
    assert is_cassette_signed(token)

    old = keyturn.TokenSet(provider="fakeidp", access_token="old", refresh_token="old-refresh")
    replayer = make_client(keys=True, clock=FakeClock(unverified_claims(token)["iat"]))
    with make_vcr(tmp_path / "fakeidp").use_cassette(result.path.name) as cassette:
        new = replayer.refresh(old)
    assert cassette.all_played
    assert new.id_token is not None and new.id_token.get_secret_value() == token


def test_a_discovery_spec_records_only_the_scenario_and_the_key_set(
    provider: Provider, make_client: Callable[..., keyturn.Keyturn], tmp_path: Path
) -> None:
    provider.signer = ("provider-key-1", rsa_key(), "RS256")
    spec = keyturn.ProviderSpec(
        id="fakeidp",
        name="Fake IdP",
        discovery_url=provider.base + WELL_KNOWN,
        default_scopes=("openid", "email"),
    )
    result = _record(make_client(providers=[spec]), "exchange_code", tmp_path, browser=Browser())
    # The document was read before the cassette started: `keyturn record fakeidp discovery`
    # records it on its own.
    assert [i["request"]["uri"] for i in _interactions(result.path)] == [
        f"{provider.base}/jwks",
        f"{provider.base}/token",
    ]
    assert provider.fetched == [WELL_KNOWN, "/jwks"]


def test_without_a_key_set_the_id_token_is_scrubbed_as_before(
    provider: Provider, make_client: Callable[..., keyturn.Keyturn], tmp_path: Path
) -> None:
    provider.signer = ("provider-key-1", rsa_key(), "RS256")
    # The provider signs, but the spec names no jwks_uri: nothing is fetched, nothing signed.
    result = _record(make_client(), "exchange_code", tmp_path, browser=Browser())
    (exchange,) = _interactions(result.path)
    token = json.loads(exchange["response"]["body"]["string"])["id_token"]
    assert token.startswith("REDACTED-") and token.endswith(".REDACTED")
    assert provider.fetched == []


def test_discovery_records_the_document_without_credentials(
    provider: Provider, pm: KeyturnPluginManager, tmp_path: Path
) -> None:
    with keyturn.Keyturn(
        providers=[provider.spec()],
        plugin_manager=pm,
        environ={},
        http_client=httpx.Client(trust_env=False),
    ) as client:
        result = _record(client, "discovery", tmp_path)
    assert result.outcome == f"document received (issuer {provider.base})"
    assert result.interactions == 1
    (interaction,) = _interactions(result.path)
    assert interaction["request"]["uri"] == provider.base + WELL_KNOWN
    assert json.loads(interaction["response"]["body"]["string"]) == provider.metadata()
    assert result.path.read_text("utf-8").startswith("# Recorded against Fake IdP on ")


def test_discovery_of_a_spec_with_a_discovery_url_fetches_it_in_the_cassette(
    provider: Provider, make_client: Callable[..., keyturn.Keyturn], tmp_path: Path
) -> None:
    provider.signer = ("provider-key-1", rsa_key(), "RS256")
    spec = keyturn.ProviderSpec(
        id="fakeidp", name="Fake IdP", discovery_url=provider.base + WELL_KNOWN
    )
    client = make_client(providers=[spec])
    client.discover("fakeidp")  # read already: the cassette still gets its own GET
    result = _record(client, "discovery", tmp_path)
    assert result.interactions == 1
    assert provider.fetched.count(WELL_KNOWN) == 2


def test_discovery_needs_an_issuer_or_a_discovery_url(
    provider: Provider, make_client: Callable[..., keyturn.Keyturn], tmp_path: Path
) -> None:
    spec = provider.spec().model_copy(update={"issuer": None})
    with pytest.raises(RecordingError, match="has no discovery_url and no issuer"):
        _record(make_client(providers=[spec]), "discovery", tmp_path)
    assert not any(tmp_path.rglob("*.yaml"))


# -- refresh, userinfo, revoke ----------------------------------------------------------------


def test_refresh_records_the_rotation_and_replays(
    provider: Provider, make_client: Callable[..., keyturn.Keyturn], tmp_path: Path
) -> None:
    result = _record(
        make_client(), "refresh_rotated", tmp_path, refresh_token=provider.refresh_token
    )
    assert result.outcome == "refreshed, refresh token rotated"
    _assert_clean(result.path, provider)
    (interaction,) = _interactions(result.path)
    sent = dict(parse_qsl(interaction["request"]["body"]))
    assert sent["grant_type"] == "refresh_token"
    assert sent["refresh_token"].startswith("REDACTED-")

    old = keyturn.TokenSet(provider="fakeidp", access_token="old", refresh_token="old-refresh")
    replayer = make_client()
    with make_vcr(tmp_path / "fakeidp").use_cassette(result.path.name):
        new = replayer.refresh(old)
    assert new.refresh_token is not None
    assert new.refresh_token.get_secret_value().startswith("REDACTED-")


def test_an_error_answer_is_recorded_as_the_scenario(
    provider: Provider, make_client: Callable[..., keyturn.Keyturn], tmp_path: Path
) -> None:
    result = _record(
        make_client(), "refresh_invalid_grant", tmp_path, refresh_token="fake-dead-refresh-token"
    )
    assert result.outcome == "the provider answered invalid_grant (HTTP 400, permanent)"
    assert result.tokens is None
    _assert_clean(result.path, provider)

    old = keyturn.TokenSet(provider="fakeidp", access_token="old", refresh_token="old-refresh")
    with (
        make_vcr(tmp_path / "fakeidp").use_cassette(result.path.name),
        pytest.raises(keyturn.ProviderError) as caught,
    ):
        make_client().refresh(old)
    assert (caught.value.error, caught.value.status, caught.value.permanent) == (
        "invalid_grant",
        400,
        True,
    )


def test_userinfo_and_revoke_record_with_an_access_token(
    provider: Provider, make_client: Callable[..., keyturn.Keyturn], tmp_path: Path
) -> None:
    client = make_client()
    profile = _record(client, "userinfo", tmp_path, access_token=provider.access_token)
    assert profile.outcome == "profile received"
    text = _assert_clean(profile.path, provider)
    assert "authorization" not in text.lower()

    revoked = _record(
        client,
        "revoke",
        tmp_path,
        access_token=provider.access_token,
        refresh_token=provider.refresh_token,
    )
    assert revoked.outcome == "revoked"
    assert provider.revoked == [provider.refresh_token]  # the real request went out
    _assert_clean(revoked.path, provider)

    tokens = keyturn.TokenSet(provider="fakeidp", access_token="a", refresh_token="r")
    with make_vcr(tmp_path / "fakeidp").use_cassette("userinfo.yaml"):
        assert make_client().userinfo(tokens).email == "user@example.com"
    with make_vcr(tmp_path / "fakeidp").use_cassette("revoke.yaml") as cassette:
        make_client().revoke(tokens)
    assert cassette.all_played


# -- refusals ---------------------------------------------------------------------------------


def test_an_existing_cassette_is_kept_unless_forced(
    provider: Provider, make_client: Callable[..., keyturn.Keyturn], tmp_path: Path
) -> None:
    path = tmp_path / "fakeidp" / "userinfo.yaml"
    path.parent.mkdir()
    path.write_text("# the old recording\n", encoding="utf-8")
    with pytest.raises(RecordingError, match="exists; use --force"):
        _record(make_client(), "userinfo", tmp_path, access_token=provider.access_token)
    assert path.read_text(encoding="utf-8") == "# the old recording\n"

    _record(make_client(), "userinfo", tmp_path, access_token=provider.access_token, force=True)
    assert path.read_text(encoding="utf-8").startswith("# Recorded against Fake IdP")


def test_a_cassette_still_holding_a_secret_is_refused_and_deleted(
    provider: Provider, make_client: Callable[..., keyturn.Keyturn], tmp_path: Path
) -> None:
    provider.leak = True  # userinfo echoes the access token in a field nobody scrubs
    with pytest.raises(RecordingError) as caught:
        _record(make_client(), "userinfo", tmp_path, access_token=provider.access_token)
    message = str(caught.value)
    assert "live secret" in message and "Google access token" in message
    assert provider.access_token not in message
    assert "\n" not in message
    assert list(tmp_path.rglob("*")) == [tmp_path / "fakeidp"]  # nothing kept, no scratch


@pytest.mark.parametrize(
    ("scenario", "tokens", "needed"),
    [
        ("refresh_ok", {}, "refresh token"),
        ("userinfo", {"refresh_token": "fake-refresh"}, "access token"),
        ("revoke", {}, "access token"),
    ],
)
def test_a_scenario_without_its_token_is_refused_before_any_request(
    make_client: Callable[..., keyturn.Keyturn],
    tmp_path: Path,
    scenario: str,
    tokens: dict[str, str],
    needed: str,
) -> None:
    with pytest.raises(RecordingError, match=needed):
        _record(make_client(), scenario, tmp_path, **tokens)
    assert not any(tmp_path.rglob("*.yaml"))


@pytest.mark.parametrize("name", ["login", "Refresh_ok", "refresh-ok", "exchange", ""])
def test_scenario_names_are_checked(name: str) -> None:
    with pytest.raises(RecordingError):
        Scenario.parse(name)


def test_scenario_names_choose_what_is_done() -> None:
    assert Scenario.parse("exchange_code") == Scenario("exchange_code", "exchange", False)
    assert Scenario.parse("exchange_userinfo").fetch_profile
    assert Scenario.parse("refresh_transient").kind == "refresh"
    assert Scenario.parse("userinfo_emails").kind == "userinfo"
    assert Scenario.parse("revoke_invalid_token").kind == "revoke"
    assert Scenario.parse("discovery").kind == "discovery"


def test_missing_credentials_are_one_clear_error(
    provider: Provider, pm: KeyturnPluginManager, tmp_path: Path
) -> None:
    with (
        keyturn.Keyturn(providers=[provider.spec()], plugin_manager=pm, environ={}) as client,
        pytest.raises(RecordingError) as caught,
    ):
        _record(client, "refresh_ok", tmp_path, refresh_token="fake-refresh")
    assert str(caught.value) == (
        "recording fakeidp needs the app's real credentials: set KEYTURN_FAKEIDP_CLIENT_ID "
        "and KEYTURN_FAKEIDP_CLIENT_SECRET"
    )


def test_saved_tokens_are_private_and_complete(tmp_path: Path) -> None:
    tokens = keyturn.TokenSet(
        provider="fakeidp", access_token="fake-access", refresh_token="fake-refresh"
    )
    path = tmp_path / "tokens.json"
    save_tokens(tokens, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keyturn.TokenSet.model_validate_json(path.read_text()) == tokens


# -- the command line -------------------------------------------------------------------------


def test_record_help_lists_the_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["record", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for text in (
        "exchange_*",
        "refresh_*",
        "discovery",
        "--refresh-token -",
        "--force",
        "--cassette-dir",
    ):
        assert text in out
    assert "signed again with a key made for the cassette" in " ".join(out.split())
    assert str(DEFAULT_PORT) in out
    # The parser documents the same names as the recorder uses.
    assert (record_cli.DEFAULT_PORT, record_cli.REFRESH_TOKEN_ENV, record_cli.ACCESS_TOKEN_ENV) == (
        DEFAULT_PORT,
        REFRESH_TOKEN_ENV,
        ACCESS_TOKEN_ENV,
    )


def test_missing_credentials_exit_1_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KEYTURN_GOOGLE_CLIENT_ID", raising=False)
    monkeypatch.delenv("KEYTURN_GOOGLE_CLIENT_SECRET", raising=False)
    status = cli.main(["record", "google", "exchange_code", "--cassette-dir", str(tmp_path)])
    assert status == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("keyturn: error: recording google needs the app's real credentials")
    assert not any(tmp_path.iterdir())


def test_a_token_given_as_an_argument_is_refused_without_echoing_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = "1//0fake-refresh-token-typed-on-the-command-line"
    for option in ("--refresh-token", "--access-token"):
        with pytest.raises(SystemExit) as exited:
            cli.main(["record", "google", "refresh_ok", option, token])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and option in err
        assert token not in err


def test_tokens_come_from_stdin_lines_or_the_environment() -> None:
    parser = cli.build_parser()
    both = parser.parse_args(
        ["record", "x", "revoke", "--access-token", "-", "--refresh-token", "-"]
    )
    stdin = io.StringIO("fake-access-line\nfake-refresh-line\n")
    assert record_cli.read_tokens(both, {}, stdin) == ("fake-access-line", "fake-refresh-line")
    neither = parser.parse_args(["record", "x", "revoke"])
    environ = {ACCESS_TOKEN_ENV: "fake-access-env", REFRESH_TOKEN_ENV: "fake-refresh-env"}
    assert record_cli.read_tokens(neither, environ, io.StringIO("")) == (
        "fake-access-env",
        "fake-refresh-env",
    )
    with pytest.raises(keyturn.KeyturnError, match="a token on stdin"):
        record_cli.read_tokens(both, {}, io.StringIO(""))


def test_the_command_records_a_refresh_read_from_stdin(
    provider: Provider,
    make_client: Callable[..., keyturn.Keyturn],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """End to end through argv: the refresh token arrives on stdin and is never printed."""
    client = make_client()
    monkeypatch.setattr(keyturn.client, "Keyturn", lambda *a, **k: client)
    monkeypatch.setattr("sys.stdin", io.StringIO(provider.refresh_token + "\n"))
    saved = tmp_path / "tokens.json"
    argv = [
        "record",
        "fakeidp",
        "refresh_ok",
        "--refresh-token",
        "-",
        "--cassette-dir",
        str(tmp_path),
        "--save-tokens",
        str(saved),
    ]
    assert cli.main(argv) == 0
    assert provider.refresh_token not in " ".join(argv)
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'fakeidp' / 'refresh_ok.yaml'} (1 interaction)" in out
    assert "`fakeidp/refresh_ok.yaml`" in out and "recorded against Fake IdP" in out
    assert provider.refresh_token not in out and provider.rotated not in out
    assert json.loads(saved.read_text())["refresh_token"] == provider.rotated

    # Once there, the same command refuses to overwrite it.
    monkeypatch.setattr("sys.stdin", io.StringIO(provider.rotated + "\n"))
    assert cli.main(argv) == 1
    assert "exists; use --force" in capsys.readouterr().err


# -- personal-data scrubbing ------------------------------------------------------------------

GITHUB_USER = {
    "login": "octocat",
    "id": 583231,
    "node_id": "MDQ6VXNlcjU4MzIzMQ==",
    "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
    "url": "https://api.github.com/users/octocat",
    "followers_url": "https://api.github.com/users/octocat/followers",
    "following_url": "https://api.github.com/users/octocat/following{/other_user}",
    "type": "User",
    "site_admin": False,
    "name": "The Octocat",
    "company": "@github",
    "blog": "https://github.blog",
    "location": "San Francisco",
    "email": None,
    "bio": None,
    "public_repos": 8,
    "plan": {"name": "pro", "space": 976562499, "private_repos": 9999},
}


def test_a_github_user_keeps_ids_and_shape_but_loses_the_person() -> None:
    scrubbed = scrub_personal_json(GITHUB_USER)
    assert scrubbed.keys() == GITHUB_USER.keys()
    assert scrubbed["login"] == "example-user"
    assert scrubbed["name"] == "Example User"
    assert scrubbed["avatar_url"] == "https://example.com/avatar.png"
    assert scrubbed["followers_url"] == "https://api.github.com/users/example-user/followers"
    assert scrubbed["following_url"].endswith("/users/example-user/following{/other_user}")
    assert "octocat" not in json.dumps(scrubbed) and "San Francisco" not in json.dumps(scrubbed)
    for kept in ("id", "node_id", "type", "site_admin", "email", "bio", "public_repos"):
        assert scrubbed[kept] == GITHUB_USER[kept]
    assert scrubbed["plan"] == GITHUB_USER["plan"]  # a plan's name is not a person's
    assert GITHUB_USER["login"] == "octocat"  # the input is not changed


def test_an_email_list_keeps_distinct_addresses_distinct() -> None:
    emails = [
        {"email": "octocat@github.com", "primary": True, "verified": True},
        {"email": "583231+octocat@users.noreply.github.com", "primary": False},
        {"email": "octocat@github.com", "visibility": "private"},
    ]
    scrubbed = scrub_personal_json(emails)
    assert [item["email"] for item in scrubbed] == [
        "user@example.com",
        "user2@example.com",
        "user@example.com",
    ]
    assert [item.get("primary") for item in scrubbed] == [True, False, None]


def test_documentation_values_are_already_placeholders() -> None:
    body = {"sub": "1", "email": "person@example.org", "picture": "https://img.example/a.png"}
    assert scrub_personal_json(body) == body


def _response(body: Any, content_type: str = "application/json") -> dict[str, Any]:
    return {
        "status": {"code": 200, "message": "OK"},
        "headers": {"Content-Type": [content_type]},
        "body": {"string": json.dumps(body).encode()},
    }


def test_personal_scrubbing_is_idempotent_and_leaves_other_bodies_alone() -> None:
    once = scrub_personal_data(_response(GITHUB_USER))
    twice = scrub_personal_data(copy.deepcopy(once))
    assert twice == once
    page = _response({"name": "Ada"}, "text/html")
    page["body"]["string"] = b"<p>Ada Lovelace</p>"
    assert scrub_personal_data(copy.deepcopy(page)) == page


def test_an_id_token_loses_personal_claims_but_keeps_the_checked_ones() -> None:
    claims = {"iss": "https://idp.fake", "aud": CLIENT_ID, "sub": SUB, "nonce": "n-1", **PERSON}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    live = f"eyJhbGciOiJSUzI1NiJ9.{payload}.ZmFrZS1zaWduYXR1cmU"
    recorded = scrub_personal_data(scrub_response(_response({"id_token": live})))
    token = json.loads(recorded["body"]["string"])["id_token"]
    assert token.startswith("REDACTED-") and token.endswith(".REDACTED")
    left = unverified_claims(token)
    assert {k: left[k] for k in ("iss", "aud", "sub", "nonce")} == {
        k: claims[k] for k in ("iss", "aud", "sub", "nonce")
    }
    assert left["email"] == "user@example.com" and left["family_name"] == "User"
    again = scrub_personal_data(scrub_response(copy.deepcopy(recorded)))
    assert again["body"]["string"] == recorded["body"]["string"]


@pytest.mark.parametrize(
    "path", sorted(CASSETTES.rglob("*.yaml")), ids=lambda p: p.relative_to(CASSETTES).as_posix()
)
def test_saving_a_shipped_cassette_twice_is_saving_it_once(path: Path) -> None:
    for interaction in _interactions(path):
        response = interaction["response"]
        once = scrub_personal_data(copy.deepcopy(response))
        assert scrub_personal_data(copy.deepcopy(once)) == once
        assert find_secrets(str(once)) == []


def test_replay_plays_a_cassette_as_written() -> None:
    """Personal scrubbing runs on save only: loading keeps the hand-written values."""
    recorder = make_vcr(CASSETTES / "google")
    with recorder.use_cassette("userinfo.yaml") as cassette:
        pass
    body = json.loads(cassette.responses[0]["body"]["string"])
    assert body["picture"] == "https://lh3.googleusercontent.com/a/placeholder-photo"
