"""Cassette hygiene: no live secret in any cassette, every cassette documented, scrubbing works.

A cassette under cassettes/ must read exactly as keyturn's scrubber
(pytest_keyturn.cassettes) would write it: placeholders instead of tokens, no credential
headers, no content-length. The secret rules are the conformance suite's own
(pytest_keyturn.cassettes.scan_cassette, "What counts as a live secret" in its module docs),
so a cassette that passes here passes the suite's secret check. The scrubber itself is
tested by recording real traffic from a small server on 127.0.0.1 that answers with
live-looking tokens.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import yaml
from vcr.request import Request as VcrRequest
from vcr.serialize import deserialize
from vcr.serializers import yamlserializer

import keyturn
from pytest_keyturn.cassettes import (
    body_matcher,
    find_secrets,
    make_vcr,
    redact,
    scan_cassette,
    scrub_body,
    scrub_request,
    scrub_response,
)
from tests.conftest import CASSETTES, CLIENT_ID, CLIENT_SECRET, FakeClock

CASSETTE_FILES = sorted(CASSETTES.rglob("*.yaml"))
README = CASSETTES / "README.md"
FORBIDDEN_HEADERS = {"authorization", "cookie", "proxy-authorization", "content-length"}


def _ids(paths: list[Path]) -> list[str]:
    return [path.relative_to(CASSETTES).as_posix() for path in paths]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def check_cassette(path: Path) -> None:
    """Fail unless ``path`` is a clean vcrpy cassette, as keyturn's scrubber writes them."""
    text = path.read_text(encoding="utf-8")
    assert find_secrets(text) == [], f"{path.name} looks like it holds a live secret"
    findings = [str(finding) for finding in scan_cassette(text)]
    assert findings == [], f"{path.name} is not scrubbed: {findings}"
    data = yaml.safe_load(text)
    assert set(data) == {"version", "interactions"}
    assert data["version"] == 1
    assert data["interactions"], f"{path.name} has no interactions"
    requests, responses = deserialize(text, yamlserializer)  # what vcrpy itself loads
    assert len(requests) == len(responses) == len(data["interactions"])
    for number, interaction in enumerate(data["interactions"]):
        where = f"{path.name}, interaction {number}"
        request, response = interaction["request"], interaction["response"]
        assert set(request) == {"body", "headers", "method", "uri"}, where
        assert set(response) == {"body", "headers", "status"}, where
        assert isinstance(response["status"]["code"], int), where
        assert isinstance(response["status"]["message"], str), where
        assert isinstance(response["body"]["string"], str), where
        for headers in (request["headers"], response["headers"]):
            assert all(isinstance(v, list) for v in headers.values()), where
            assert not {name.lower() for name in headers} & FORBIDDEN_HEADERS, where
        # Scrubbing once more must change nothing: every secret is already a placeholder.
        again = scrub_request(VcrRequest._from_dict(copy.deepcopy(request)))
        assert _text(again.body) == _text(request["body"]), where
        assert dict(again.headers) == {k: v[0] for k, v in request["headers"].items()}, where
        rescrubbed = scrub_response(copy.deepcopy(response))
        assert _text(rescrubbed["body"]["string"]) == response["body"]["string"], where
        assert rescrubbed["headers"] == response["headers"], where


# -- (a) every cassette is clean ----------------------------------------------------------


@pytest.mark.parametrize("path", CASSETTE_FILES, ids=_ids(CASSETTE_FILES))
def test_cassette_is_clean_vcrpy_yaml(path: Path) -> None:
    check_cassette(path)


def test_google_has_every_documented_scenario_and_no_rotation() -> None:
    found = {path.stem for path in (CASSETTES / "google").glob("*.yaml")}
    assert found == {
        "exchange_code",
        "exchange_testing_status",
        "exchange_invalid_grant",
        "refresh_ok",
        "refresh_invalid_grant",
        "refresh_invalid_grant_bad_request",
        "refresh_rapt_required",
        "refresh_invalid_client",
        "refresh_unauthorized_client",
        "refresh_invalid_request",
        "refresh_transient",
        "refresh_internal_failure",
        "userinfo",
        "revoke",
        "revoke_invalid_token",
        "discovery",
    }
    assert "refresh_rotated" not in found  # Google does not rotate refresh tokens


LIVE_ACCESS_TOKEN = "ya29." + "a0AfH6SMBx7q" * 4
#: A JWT access token as Microsoft, Auth0 and Okta issue them (header {"alg":"RS256",
#: "kid":"k1"}; made up).
LIVE_JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiI3In0." + "c2lnbmF0dXJl" * 4
LIVE_REFRESH_TOKEN = "1//0" + "gYIARAAGBASNwF" * 3


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"access_token":"REDACTED-328fda98"', f'"access_token":"{LIVE_ACCESS_TOKEN}"'),
        ("refresh_token=REDACTED-682c9652", f"refresh_token={LIVE_REFRESH_TOKEN}"),
        ("client_secret=REDACTED", f"client_secret={CLIENT_SECRET}"),
        ("refresh_token=REDACTED-682c9652", "refresh_token=unscrubbed-refresh-token"),
        ("    headers:\n", "    headers:\n      content-length:\n      - '42'\n"),
        ("    headers:\n", "    headers:\n      authorization:\n      - Basic c2VjcmV0\n"),
        ('"access_token":"REDACTED-328fda98"', f'"access_token":"{LIVE_JWT}"'),
        ("refresh_token=REDACTED-682c9652", "refresh_token=" + "Zk9xT2pLbWN4" * 3),
    ],
    ids=[
        "live access token",
        "live refresh token",
        "client secret",
        "unredacted token",
        "content-length",
        "authorization",
        "jwt access token",
        "opaque refresh token",
    ],
)
def test_check_catches_an_unclean_cassette(tmp_path: Path, old: str, new: str) -> None:
    """The hygiene check can fail: a doctored copy of refresh_ok.yaml does not pass it."""
    original = (CASSETTES / "google" / "refresh_ok.yaml").read_text(encoding="utf-8")
    assert old in original
    doctored = tmp_path / "refresh_ok.yaml"
    doctored.write_text(original.replace(old, new, 1), encoding="utf-8")
    check_cassette(CASSETTES / "google" / "refresh_ok.yaml")
    with pytest.raises(AssertionError):
        check_cassette(doctored)


def test_find_secrets_flags_live_looking_values() -> None:
    assert "Google access token" in find_secrets(f'{{"access_token": "{LIVE_ACCESS_TOKEN}"}}')
    assert "Google refresh token" in find_secrets(f"refresh_token={LIVE_REFRESH_TOKEN}")
    assert "GitHub token" in find_secrets("gho_" + "A1b2C3d4E5" * 4)
    assert "client secret" in find_secrets(f"client_secret={CLIENT_SECRET}")
    assert "bearer credential" in find_secrets("Authorization: Bearer " + "x1" * 15)
    assert (
        find_secrets(f"client_secret=REDACTED&refresh_token={redact('x', LIVE_REFRESH_TOKEN)}")
        == []
    )


# -- (b) the README accounts for every cassette -------------------------------------------


def test_readme_lists_exactly_the_cassettes_that_exist() -> None:
    listed = set(re.findall(r"`([a-z0-9_-]+/[a-z0-9_]+\.yaml)`", README.read_text("utf-8")))
    assert listed, "cassettes/README.md names no cassette"
    assert listed == set(_ids(CASSETTE_FILES))


#: How a cassette not recorded by keyturn is labelled in the README: written from the provider's
#: documentation, from a real response someone else captured (the OpenID Connect discovery
#: documents), or standing for a generic condition.
PROVENANCES = (
    "Written from documentation",
    "Written from a capture",
    "**Models a generic condition, not provider evidence",
)
#: How a cassette made by `keyturn record` is labelled, in the README and on its first line.
RECORDED = "Recorded against"


def _provenance_rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            name, _, provenance = (cell.strip() for cell in line.strip("| ").split(" | "))
            rows[name.strip("`")] = provenance
    return rows


def check_provenance(name: str, provenance: str, first_line: str) -> None:
    """A README row and the file's first line must tell the same story."""
    if provenance.startswith(RECORDED):
        assert first_line.startswith("# Recorded against"), (
            f"{name}: the README says recorded, the file does not"
        )
        return
    assert provenance.startswith(PROVENANCES), f"{name}: unknown provenance {provenance!r}"
    # Not recorded: the file must say so too, not only the README.
    assert first_line.startswith("# Written by hand") and "NOT recorded" in first_line, name


def test_readme_gives_every_cassette_a_provenance_that_matches_the_file() -> None:
    rows = _provenance_rows(README.read_text("utf-8"))
    assert set(rows) == set(_ids(CASSETTE_FILES))
    for name, provenance in rows.items():
        first_line = (CASSETTES / name).read_text("utf-8").splitlines()[0]
        check_provenance(name, provenance, first_line)


@pytest.mark.parametrize(
    ("provenance", "first_line", "ok"),
    [
        ("Written from documentation.", "# Written by hand from docs, NOT recorded", True),
        ("Written from a capture of the live documents.", "# Written by hand, NOT recorded", True),
        ("Written from a capture.", "# Recorded against Google on 2026-11-27", False),
        ("Recorded against Google on 2026-11-27.", "# Recorded against Google on 2026-11-27", True),
        ("Recorded against Google on 2026-11-27.", "# Written by hand, NOT recorded", False),
        ("Written from documentation.", "# Recorded against Google on 2026-11-27", False),
        ("Made up.", "# Written by hand, NOT recorded", False),
    ],
)
def test_the_provenance_check_tells_recorded_from_written(
    provenance: str, first_line: str, ok: bool
) -> None:
    if ok:
        check_provenance("x.yaml", provenance, first_line)
    else:
        with pytest.raises(AssertionError):
            check_provenance("x.yaml", provenance, first_line)


# -- (c) the scrubber, on real traffic ----------------------------------------------------


@dataclass
class LoopbackProvider:
    """A token/userinfo/revoke server on 127.0.0.1 that hands out live-looking secrets."""

    base: str = ""
    access_token: str = field(default_factory=lambda: "ya29." + secrets.token_urlsafe(30))
    refresh_token: str = field(default_factory=lambda: "1//0" + secrets.token_urlsafe(30))
    id_token: str = field(
        default_factory=lambda: (
            "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(40) + "." + secrets.token_urlsafe(40)
        )
    )
    received: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)

    def spec(self) -> keyturn.ProviderSpec:
        return keyturn.ProviderSpec(
            id="loopback",
            name="Loopback",
            authorization_endpoint=f"{self.base}/authorize",
            token_endpoint=f"{self.base}/token",
            userinfo_endpoint=f"{self.base}/userinfo",
            revocation_endpoint=f"{self.base}/revoke",
        )

    def answer(self, method: str, path: str, headers: dict[str, str], body: str) -> Any:
        self.received.append((method, path, headers, body))
        if path == "/token":
            return {
                "access_token": self.access_token,
                "expires_in": 3599,
                "refresh_token": self.refresh_token,
                "scope": "openid email",
                "token_type": "Bearer",
                "id_token": self.id_token,
            }
        if path == "/userinfo":
            return {"sub": "42", "email": "person@example.com", "email_verified": True}
        return {}


def _handler(provider: LoopbackProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode()
            headers = {k.lower(): v for k, v in self.headers.items()}
            payload = json.dumps(provider.answer(self.command, self.path, headers, body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Set-Cookie", "session=abc")
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _reply

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def loopback() -> Iterator[tuple[LoopbackProvider, Callable[[], None]]]:
    """The running server, and a function that stops it (also called at teardown)."""
    provider = LoopbackProvider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            server.shutdown()
            server.server_close()
            thread.join()

    try:
        yield provider, stop
    finally:
        stop()


class LoopbackPlugin:
    """A test plugin registering the loopback provider."""

    def __init__(self, spec: keyturn.ProviderSpec) -> None:
        self.spec = spec

    @keyturn.hookimpl
    def keyturn_register_providers(self, register: Callable[[keyturn.ProviderSpec], None]) -> None:
        register(self.spec)


def _sign_in_refresh_userinfo_revoke(
    spec: keyturn.ProviderSpec, clock: FakeClock, code: str, verifier: str
) -> tuple[keyturn.TokenSet, keyturn.TokenSet, keyturn.Profile]:
    pm = keyturn.get_plugin_manager(plugins=[LoopbackPlugin(spec)])
    with (
        httpx.Client(trust_env=False) as http,
        keyturn.Keyturn(
            {"loopback": (CLIENT_ID, CLIENT_SECRET)},
            http_client=http,
            clock=clock,
            plugin_manager=pm,
            environ={},
        ) as kt,
    ):
        tokens = kt.exchange_code(
            "loopback", code, redirect_uri="https://app.example.com/cb", code_verifier=verifier
        )
        refreshed = kt.refresh(tokens)
        profile = kt.userinfo(refreshed)
        kt.revoke(refreshed)
    return tokens, refreshed, profile


def test_recording_scrubs_secrets_and_replays(
    tmp_path: Path, clock: FakeClock, loopback: tuple[LoopbackProvider, Callable[[], None]]
) -> None:
    provider, stop = loopback
    code, verifier = "4/" + secrets.token_urlsafe(20), secrets.token_urlsafe(32)

    with make_vcr(tmp_path, record_mode="all").use_cassette("loopback.yaml"):
        tokens, refreshed, profile = _sign_in_refresh_userinfo_revoke(
            provider.spec(), clock, code, verifier
        )

    # The caller and the server saw the real values.
    assert tokens.access_token.get_secret_value() == provider.access_token
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == provider.refresh_token
    assert refreshed.refresh_token == tokens.refresh_token
    assert profile.id == "42"
    sent = [dict(parse_qsl(body)) for method, _, _, body in provider.received if method == "POST"]
    assert [form.get("client_secret") for form in sent] == [CLIENT_SECRET] * 3
    assert (sent[0]["code"], sent[0]["code_verifier"]) == (code, verifier)
    assert sent[1]["refresh_token"] == sent[2]["token"] == provider.refresh_token
    assert provider.received[2][2]["authorization"] == f"Bearer {provider.access_token}"
    assert find_secrets(json.dumps(provider.received)), "the server's values must look live"

    # The file holds none of them.
    path = tmp_path / "loopback.yaml"
    text = path.read_text(encoding="utf-8")
    for secret in (
        provider.access_token,
        provider.refresh_token,
        provider.id_token,
        CLIENT_SECRET,
        code,
        verifier,
    ):
        assert secret not in text
    assert "session=abc" not in text  # set-cookie dropped too
    check_cassette(path)  # includes: no authorization, no content-length, a fixed point
    interactions = yaml.safe_load(text)["interactions"]
    assert [i["request"]["method"] for i in interactions] == ["POST", "POST", "GET", "POST"]
    exchanged = json.loads(interactions[0]["response"]["body"]["string"])
    placeholder = redact("refresh_token", provider.refresh_token)
    assert re.fullmatch(r"REDACTED-[0-9a-f]{8}", placeholder)
    assert exchanged["refresh_token"] == placeholder
    # The same placeholder links the refresh and the revocation to the exchanged token.
    assert dict(parse_qsl(interactions[1]["request"]["body"]))["refresh_token"] == placeholder
    assert dict(parse_qsl(interactions[3]["request"]["body"]))["token"] == placeholder

    # Replay without the server: record_mode "none" serves everything from the file.
    stop()
    with make_vcr(tmp_path).use_cassette("loopback.yaml") as cassette:
        replayed, replayed_refresh, replayed_profile = _sign_in_refresh_userinfo_revoke(
            provider.spec(), clock, code, verifier
        )
    assert cassette.all_played
    assert replayed.access_token.get_secret_value() == redact("access_token", provider.access_token)
    assert replayed_refresh.refresh_token == replayed.refresh_token
    assert replayed_profile.email == "person@example.com"


def test_scrubbing_is_idempotent() -> None:
    form = (
        f"grant_type=refresh_token&refresh_token={LIVE_REFRESH_TOKEN}"
        f"&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
    )
    request = VcrRequest(
        "POST",
        "https://oauth2.googleapis.com/token",
        form,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic eDp5",
            "Content-Length": str(len(form)),
        },
    )
    once = scrub_request(request)
    once_body, once_headers = once.body, dict(once.headers)
    twice = scrub_request(once)
    assert (twice.body, dict(twice.headers)) == (once_body, once_headers)
    assert LIVE_REFRESH_TOKEN.encode() not in once_body
    assert set(once_headers) == {"Content-Type"}

    body = json.dumps(
        {
            "access_token": LIVE_ACCESS_TOKEN,
            "refresh_token": LIVE_REFRESH_TOKEN,
            "id_token": "eyJ.eyJ.sig",
            "expires_in": 3599,
        }
    )
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"Content-Type": ["application/json"], "Content-Length": [str(len(body))]},
        "body": {"string": body.encode()},
    }
    scrubbed_once = scrub_response(copy.deepcopy(response))
    assert scrub_response(copy.deepcopy(scrubbed_once)) == scrubbed_once
    assert find_secrets(_text(scrubbed_once["body"]["string"])) == []
    assert json.loads(scrubbed_once["body"]["string"])["expires_in"] == 3599

    for content_type, raw in [
        ("application/x-www-form-urlencoded", form),
        ("application/json", body),
    ]:
        fields = ("access_token", "refresh_token", "id_token", "client_secret")
        once_raw = scrub_body(raw, content_type, fields)
        assert scrub_body(once_raw, content_type, fields) == once_raw
        assert once_raw != raw.encode()


def test_an_id_token_keeps_only_its_claims_when_scrubbed() -> None:
    """The nonce check must replay, so the claims survive; header and signature do not."""
    from keyturn.idtoken import unverified_claims
    from pytest_keyturn.cassettes import redact

    live = "eyJhbGciOiJSUzI1NiJ9.eyJub25jZSI6Im4tMSIsImF1ZCI6ImNpZCJ9.c2lnbmF0dXJlLXZhbHVl"
    scrubbed = redact("id_token", live)
    assert scrubbed.startswith("REDACTED-")
    assert scrubbed.endswith(".REDACTED")
    assert "eyJhbGciOiJSUzI1NiJ9" not in scrubbed
    assert "c2lnbmF0dXJlLXZhbHVl" not in scrubbed
    assert unverified_claims(scrubbed) == {"nonce": "n-1", "aud": "cid"}
    assert redact("id_token", scrubbed) == scrubbed


def _jws_header(header: dict[str, Any]) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        ({"alg": "RS256", "kid": "keyturn-cassette-fake-1"}, True),
        ({"alg": "RS256", "kid": "keyturn-cassette-"}, True),
        ({"alg": "RS256", "kid": "73e25f9789119c7875d58087a78ac23f5ef2eda3"}, False),
        ({"alg": "RS256", "kid": "a-keyturn-cassette-key"}, False),
        ({"alg": "RS256", "kid": 1}, False),
        ({"alg": "RS256"}, False),
        (["keyturn-cassette-fake-1"], False),
    ],
)
def test_an_id_token_signed_for_cassettes_is_kept_whole(header: Any, kept: bool) -> None:
    """Only a header naming a cassette key (``kid`` starting ``keyturn-cassette-``) keeps the
    token as it is; any other, a provider's, loses its header and signature."""
    from pytest_keyturn.cassettes import CASSETTE_KID_PREFIX

    assert CASSETTE_KID_PREFIX == "keyturn-cassette-"
    token = f"{_jws_header(header)}.eyJub25jZSI6Im4tMSJ9.c2lnbmF0dXJlLXZhbHVl"
    scrubbed = redact("id_token", token)
    assert (scrubbed == token) is kept
    if not kept:
        assert scrubbed.startswith("REDACTED-") and scrubbed.endswith(".REDACTED")
    assert redact("id_token", scrubbed) == scrubbed
    # Other fields are redacted whatever the value looks like.
    assert redact("access_token", token).startswith("REDACTED-")
    body = json.dumps({"id_token": token, "access_token": "at-live-value-123"})
    response = {"headers": {"content-type": ["application/json"]}, "body": {"string": body}}
    written = json.loads(scrub_response(response)["body"]["string"])
    assert (written["id_token"] == token) is kept
    assert written["access_token"].startswith("REDACTED-")


def test_a_header_that_is_not_json_is_redacted() -> None:
    for header in ("bm90IGpzb24", "!!!", "", "e30"):  # not JSON, not base64, empty, {}
        token = f"{header}.eyJub25jZSI6Im4tMSJ9.c2ln"
        assert redact("id_token", token).endswith(".REDACTED")


GOOGLE_KEY_SET = "https://www.googleapis.com/oauth2/v3/certs"
GOOGLE_TOKEN_CASSETTES = sorted(
    path
    for path in (CASSETTES / "google").glob("*.yaml")
    if path.stem.startswith(("exchange_", "refresh_"))
)


@pytest.mark.parametrize("path", GOOGLE_TOKEN_CASSETTES, ids=_ids(GOOGLE_TOKEN_CASSETTES))
def test_google_token_cassettes_serve_a_cassette_key_set_that_verifies_their_id_tokens(
    path: Path,
) -> None:
    """keyturn reads Google's key set before each code exchange and refresh: each such
    cassette holds it last, public parts of a cassette key only, and every ID token it
    answers verifies against it (RS256, as Google's spec allows)."""
    from joserfc import jws
    from joserfc.jwk import KeySet

    interactions = yaml.safe_load(path.read_text("utf-8"))["interactions"]
    assert interactions[0]["request"]["method"] == "POST"  # the token request stays first
    key_sets = [i for i in interactions if i["request"]["uri"] == GOOGLE_KEY_SET]
    assert len(key_sets) == 1 and interactions[-1] is key_sets[0]
    assert key_sets[0]["request"]["method"] == "GET"
    jwks = json.loads(key_sets[0]["response"]["body"]["string"])
    assert [key["kid"] for key in jwks["keys"]] == ["keyturn-cassette-fake-1"]
    for key in jwks["keys"]:
        assert key["kty"] == "RSA" and key["alg"] == "RS256"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key), "a private key member"
    keys = KeySet.import_key_set(jwks)
    tokens = [
        json.loads(i["response"]["body"]["string"]).get("id_token")
        for i in interactions
        if i["request"]["method"] == "POST"
        and "json" in i["response"]["headers"]["content-type"][0]
    ]
    for token in filter(None, tokens):
        verified = jws.deserialize_compact(token, keys, algorithms=["RS256"])
        assert verified.headers()["kid"] == "keyturn-cassette-fake-1"
    if path.stem == "exchange_code":
        assert any(tokens), "exchange_code answers an ID token"


GITLAB_TOKEN_CASSETTES = sorted(
    path
    for path in (CASSETTES / "gitlab").glob("*.yaml")
    if path.stem.startswith(("exchange_", "refresh_"))
)


@pytest.mark.parametrize("path", GITLAB_TOKEN_CASSETTES, ids=_ids(GITLAB_TOKEN_CASSETTES))
def test_gitlab_token_cassettes_serve_a_cassette_key_set_that_verifies_their_id_tokens(
    path: Path,
) -> None:
    """keyturn reads the instance's key set (``{base_url}/oauth/discovery/keys``) before each
    exchange and refresh: each such cassette holds it last, the public half of the cassettes'
    key only, and every ID token it answers verifies against it with RS256."""
    from joserfc import jws
    from joserfc.jwk import KeySet

    interactions = yaml.safe_load(path.read_text("utf-8"))["interactions"]
    token_request = interactions[0]["request"]
    assert token_request["method"] == "POST" and token_request["uri"].endswith("/oauth/token")
    key_set_uri = token_request["uri"].removesuffix("/oauth/token") + "/oauth/discovery/keys"
    key_sets = [i for i in interactions if i["request"]["uri"] == key_set_uri]
    assert len(key_sets) == 1 and interactions[-1] is key_sets[0]
    assert key_sets[0]["request"]["method"] == "GET"
    jwks = json.loads(key_sets[0]["response"]["body"]["string"])
    assert [key["kid"] for key in jwks["keys"]] == ["keyturn-cassette-gitlab-1"]
    for key in jwks["keys"]:
        assert key["kty"] == "RSA" and key["alg"] == "RS256"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key), "a private key member"
    keys = KeySet.import_key_set(jwks)
    tokens = [
        json.loads(i["response"]["body"]["string"]).get("id_token")
        for i in interactions
        if i["request"]["method"] == "POST"
        and "json" in i["response"]["headers"]["content-type"][0]
    ]
    for token in filter(None, tokens):
        verified = jws.deserialize_compact(token, keys, algorithms=["RS256"])
        assert verified.headers()["kid"] == "keyturn-cassette-gitlab-1"
    if path.stem == "exchange_code":
        assert any(tokens), "exchange_code answers an ID token"


#: A client assertion as RFC 7523 sends one: a signed JWT (this one is made up).
ASSERTION = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJhY21lIn0.c2lnbmF0dXJlLW5vdC1yZWFs"


def test_a_client_assertion_is_scrubbed_and_matched_by_presence() -> None:
    """Each request carries a new assertion: the cassette keeps neither, and replays match."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    url = "https://acme.example/token"
    form = "grant_type=refresh_token&client_id=acme&client_assertion_type=jwt&client_assertion="
    assert "client assertion" in find_secrets(form + ASSERTION)
    recorded = scrub_request(VcrRequest("POST", url, form + ASSERTION, dict(headers)))
    assert ASSERTION.encode() not in recorded.body
    assert b"client_assertion=REDACTED-" in recorded.body
    assert find_secrets(recorded.body.decode()) == []
    body_matcher(recorded, VcrRequest("POST", url, form + ASSERTION[::-1], dict(headers)))
    with pytest.raises(AssertionError):
        body_matcher(
            recorded, VcrRequest("POST", url, form.split("&client_assertion=")[0], headers)
        )
