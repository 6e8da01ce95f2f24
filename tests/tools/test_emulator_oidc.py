"""The emulator as an OpenID Provider, over real HTTP on loopback: discovery documents, the
JWKS and its rotation, signed ID tokens, client assertions (RFC 7523), RP-Initiated Logout,
the ``oidc`` profile, and specs that carry all of it.

Signatures are checked here with joserfc directly, against the JWKS as fetched over HTTP,
never through the emulator's own code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey, RSAKey

import keyturn
import keyturn_oidc
from keyturn.pkce import code_challenge, new_code_verifier
from keyturn_emulator import PROFILES, Emulator
from keyturn_emulator.routes.clients import ASSERTION_TYPE
from tests.conftest import ROOT, FakeClock

REDIRECT = "http://127.0.0.1:8765/callback"
LOGGED_OUT = "http://127.0.0.1:8765/signed-out"

#: The client's key pairs for private_key_jwt, made once for the module.
CLIENT_RSA = RSAKey.generate_key(2048, parameters={"kid": "client-rsa-1"}, private=True)
CLIENT_EC = ECKey.generate_key("P-256", parameters={"kid": "client-ec-1"}, private=True)
#: A key the emulator never registered, under the registered key's kid.
IMPOSTOR = RSAKey.generate_key(2048, parameters={"kid": "client-rsa-1"}, private=True)

#: Members only a private or symmetric JWK has.
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(post_logout_redirect_uris=[LOGGED_OUT]) as emulator:
        yield emulator


def secret(emu: Emulator) -> str:
    value = emu.credentials.client_secret
    assert value is not None
    return value.get_secret_value()


def b64url_json(part: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


def header_of(token: str) -> dict[str, Any]:
    return b64url_json(token.split(".")[0])


def expected_at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def fetch_jwks(emu: Emulator, profile: str) -> dict[str, Any]:
    uri = emu.jwks_uri(profile)
    assert uri is not None
    response = httpx.get(uri)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def private_values(emu: Emulator) -> list[str]:
    """The private parameters of every key the emulator's ring ever made."""
    return [
        str(value)
        for made in emu.keys._made
        for member, value in made.as_dict(private=True).items()
        if member in PRIVATE_MEMBERS
    ]


def verify(id_token: str, jwks: Any, algs: list[str]) -> dict[str, Any]:
    """The claims of ``id_token`` once joserfc verified it against ``jwks``."""
    claims: dict[str, Any] = jwt.decode(
        id_token, KeySet.import_key_set(jwks), algorithms=algs
    ).claims
    return claims


# -- raw HTTP, as any client sees the emulator ------------------------------------------------


def authorize(
    emu: Emulator,
    profile: str = "oidc",
    *,
    prompt: str | None = None,
    user: str | None = None,
    nonce: str = "nonce-example",
) -> tuple[dict[str, str], str]:
    """The callback's query for an authorize request, and the PKCE verifier."""
    verifier = new_code_verifier()
    query = {
        "response_type": "code",
        "client_id": emu.credentials.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid email profile",
        "state": "state-example",
        "nonce": nonce,
        "code_challenge": code_challenge(verifier),
        "code_challenge_method": "S256",
        "access_type": "offline",
    }
    if prompt is not None:
        query["prompt"] = prompt
    if user is not None:
        query["login_hint"] = user
    url = emu.endpoints(profile)["authorization_endpoint"] + "?" + urlencode(query)
    return emu.authorize(url), verifier


def token_request(
    emu: Emulator,
    profile: str,
    form: dict[str, str],
    *,
    auth: dict[str, str] | None = None,
    basic: bool = False,
) -> httpx.Response:
    """POST to the token endpoint; ``auth`` replaces the client_secret_post parameters."""
    body = dict(form)
    if auth is None and not basic:
        auth = {"client_id": emu.credentials.client_id, "client_secret": secret(emu)}
    body.update(auth or {})
    credentials = (emu.credentials.client_id, secret(emu)) if basic else None
    return httpx.post(emu.endpoints(profile)["token_endpoint"], data=body, auth=credentials)


def sign_in(
    emu: Emulator,
    profile: str = "oidc",
    *,
    auth: dict[str, str] | None = None,
    user: str | None = None,
    nonce: str = "nonce-example",
) -> httpx.Response:
    """A code exchange after an authorize request; the raw token response."""
    callback, verifier = authorize(emu, profile, user=user, nonce=nonce)
    form = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    return token_request(emu, profile, form, auth=auth)


def tokens(emu: Emulator, profile: str = "oidc", **kwargs: Any) -> dict[str, Any]:
    response = sign_in(emu, profile, **kwargs)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def refresh(emu: Emulator, profile: str, refresh_token: str, **kwargs: Any) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return token_request(emu, profile, form, **kwargs)


def assertion(
    emu: Emulator,
    key: Any,
    alg: str,
    *,
    header: dict[str, Any] | None = None,
    profile: str = "oidc",
    **claims: Any,
) -> str:
    """A client assertion: iss and sub the client, aud the token endpoint, exp in a minute, a
    fresh jti; ``claims`` override (``None`` removes a claim)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": emu.credentials.client_id,
        "sub": emu.credentials.client_id,
        "aud": emu.endpoints(profile)["token_endpoint"],
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    protected = {"alg": alg, **(header if header is not None else {})}
    if header is None and getattr(key, "kid", None) is not None:
        protected["kid"] = key.kid
    return jwt.encode(protected, payload, key, algorithms=[alg])


def assertion_auth(value: str) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": value}


def secret_key(emu: Emulator) -> OctKey:
    return OctKey.import_key(secret(emu))


# == discovery ==================================================================================


@pytest.mark.parametrize("profile", ["google", "strict", "oidc"])
def test_the_discovery_document_names_the_issuer_and_every_endpoint(
    emu: Emulator, profile: str
) -> None:
    url = emu.discovery_url(profile)
    assert url == f"{emu.issuer(profile)}/.well-known/openid-configuration"
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "public, max-age=3600"
    doc = response.json()
    assert doc == emu.discovery_document(profile)
    behaviour = PROFILES[profile]
    endpoints = emu.endpoints(profile)
    assert doc["issuer"] == emu.issuer(profile)  # OpenID Connect Discovery 4.3: exactly
    for field in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "revocation_endpoint",
        "jwks_uri",
    ):
        assert doc[field] == endpoints[field], field
    assert doc["response_types_supported"] == ["code"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == list(behaviour.id_token_algs)
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert doc["code_challenge_methods_supported"] == sorted(behaviour.pkce_methods)
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert "openid" in doc["scopes_supported"]
    assert {"iss", "sub", "aud", "exp", "iat", "at_hash"} <= set(doc["claims_supported"])
    assert emu.counters(profile)["discovery"] == 1


def test_each_profile_advertises_its_own_algorithms_methods_and_logout(emu: Emulator) -> None:
    google, strict, oidc = (emu.discovery_document(p) for p in ("google", "strict", "oidc"))
    # Google's own document: RS256 only, the secret in the body or in Basic, no logout.
    assert google["id_token_signing_alg_values_supported"] == ["RS256"]
    assert google["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert google["code_challenge_methods_supported"] == ["S256", "plain"]
    assert "end_session_endpoint" not in google
    assert "end_session_endpoint" not in strict
    assert strict["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    assert oidc["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert oidc["end_session_endpoint"] == emu.endpoints("oidc")["end_session_endpoint"]
    assert oidc["end_session_endpoint"] == emu.base_url + "/oidc/logout"
    methods = oidc["token_endpoint_auth_methods_supported"]
    assert {"private_key_jwt", "client_secret_jwt", "client_secret_basic"} <= set(methods)
    assert {"RS256", "ES256", "HS256"} <= set(
        oidc["token_endpoint_auth_signing_alg_values_supported"]
    )
    assert oidc["code_challenge_methods_supported"] == ["S256"]
    assert {"sid", "auth_time"} <= set(oidc["claims_supported"])
    assert "offline_access" in oidc["scopes_supported"]


def test_github_has_no_discovery_document_and_no_keys(emu: Emulator) -> None:
    assert emu.discovery_url("github") is None
    assert emu.jwks_uri("github") is None
    assert httpx.get(emu.base_url + "/github/.well-known/openid-configuration").status_code == 404
    with pytest.raises(keyturn.ConfigurationError, match="no issuer"):
        emu.discovery_document("github")
    with pytest.raises(keyturn.ConfigurationError, match="no ID tokens"):
        emu.jwks("github")


def test_documents_are_counted_each_time_they_are_fetched(emu: Emulator) -> None:
    discovery, jwks = emu.discovery_url("oidc"), emu.jwks_uri("oidc")
    assert discovery is not None and jwks is not None
    for _ in range(3):
        httpx.get(discovery)
    httpx.get(jwks)
    emu.discovery_document("oidc")  # read in Python: no request, not counted
    emu.jwks("oidc")
    counters = emu.counters("oidc")
    assert (counters["discovery"], counters["jwks"]) == (3, 1)
    assert emu.counters("strict")["discovery"] == 0
    state = httpx.get(emu.base_url + "/_emulator/state").json()
    assert state["profiles"]["oidc"]["counters"]["discovery"] == 3
    emu.reset_counters()
    assert emu.counters("oidc")["jwks"] == 0


def test_the_max_age_of_both_documents_is_a_knob(emu: Emulator) -> None:
    emu.configure(discovery_max_age=60, jwks_max_age=0)
    assert httpx.get(emu.discovery_url("oidc")).headers["cache-control"] == (  # type: ignore[arg-type]
        "public, max-age=60"
    )
    assert httpx.get(emu.jwks_uri("oidc")).headers["cache-control"] == (  # type: ignore[arg-type]
        "public, max-age=0"
    )
    emu.configure(discovery_max_age=None, jwks_max_age=None)
    assert "cache-control" not in httpx.get(emu.discovery_url("oidc")).headers  # type: ignore[arg-type]
    assert "cache-control" not in httpx.get(emu.jwks_uri("oidc")).headers  # type: ignore[arg-type]
    for bad in (-1, 1.5, True, "60"):
        with pytest.raises(ValueError, match="max_age"):
            emu.configure(jwks_max_age=bad)


def test_a_broken_discovery_document_for_each_fault(emu: Emulator) -> None:
    url = emu.discovery_url("oidc")
    assert url is not None
    right = emu.discovery_document("oidc")

    def served(fault: str) -> httpx.Response:
        emu.configure(discovery_fault=fault)
        return httpx.get(url)

    html = served("html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    truncated = served("truncated")
    assert truncated.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.text)
    assert served("wrong_issuer").json()["issuer"] != right["issuer"]
    assert "jwks_uri" not in served("missing_jwks_uri").json()
    foreign = served("foreign_host").json()
    assert urlsplit(foreign["token_endpoint"]).hostname == "attacker.example"
    huge = served("huge")
    assert len(huge.content) > 2 * 1024 * 1024
    assert {k: v for k, v in huge.json().items() if k != "x_padding"} == right
    emu.configure(discovery_fault=None)
    assert httpx.get(url).json() == right
    assert emu.counters("oidc")["discovery"] == 7  # broken or not, every request counts
    with pytest.raises(ValueError, match="discovery_fault"):
        emu.configure(discovery_fault="gone")
    refused = httpx.post(emu.base_url + "/_emulator/configure", json={"jwks_fault": ["html"]})
    assert refused.status_code == 400


def test_a_broken_jwks_for_each_fault(emu: Emulator) -> None:
    url = emu.jwks_uri("oidc")
    assert url is not None
    right = emu.jwks("oidc")
    kids = [key["kid"] for key in right["keys"]]

    def served(fault: str) -> httpx.Response:
        applied = httpx.post(emu.base_url + "/_emulator/configure", json={"jwks_fault": fault})
        assert applied.status_code == 200, applied.text
        return httpx.get(url)

    assert served("html").headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(served("truncated").text)
    assert served("empty").json() == {"keys": []}
    duplicate = served("duplicate_kid").json()["keys"]
    assert len(duplicate) == len(kids) and {key["kid"] for key in duplicate} == {kids[0]}
    oct_keys = served("oct_keys").json()["keys"]
    assert [key["kid"] for key in oct_keys] == kids
    assert {key["kty"] for key in oct_keys} == {"oct"}
    emu.configure(jwks_fault=None)
    assert httpx.get(url).json() == right
    with pytest.raises(ValueError, match="jwks_fault"):
        emu.configure(jwks_fault="missing")


# == the JWKS ===================================================================================


@pytest.mark.parametrize("profile", ["google", "strict", "oidc"])
def test_the_jwks_holds_public_keys_only(emu: Emulator, profile: str) -> None:
    tokens(emu, profile) if profile != "google" else None  # keys made by signing, or not
    response = httpx.get(emu.jwks_uri(profile))  # type: ignore[arg-type]
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=3600"
    keys = response.json()["keys"]
    algs = PROFILES[profile].id_token_algs
    assert sorted(key["alg"] for key in keys) == sorted(algs * 2)  # active and previous
    assert len({key["kid"] for key in keys}) == len(keys)
    for key in keys:
        assert not PRIVATE_MEMBERS & set(key), key
        assert key["use"] == "sig"
        imported = KeySet.import_key_set({"keys": [key]}).keys[0]
        assert not imported.is_private
        if key["kty"] == "RSA":
            assert key["alg"] == "RS256"
            assert len(base64.urlsafe_b64decode(key["n"] + "==")) * 8 == 2048
        else:
            assert (key["kty"], key["crv"], key["alg"]) == ("EC", "P-256", "ES256")
    # No private value of any key of the ring appears in what was served.
    assert not any(value in response.text for value in private_values(emu))


def test_no_private_part_reaches_the_jwks_across_rotations(emu: Emulator) -> None:
    kids = []
    for keep in (True, False, True):
        kids.append(emu.rotate_keys(keep_previous=keep)["RS256"])
        served = fetch_jwks(emu, "oidc")
        for key in served["keys"]:
            assert not PRIVATE_MEMBERS & set(key)
        assert not any(value in json.dumps(served) for value in private_values(emu))
    state = httpx.get(emu.base_url + "/_emulator/state")
    assert not any(value in state.text for value in private_values(emu))
    # The second rotation dropped the key before it; the third kept the second's.
    assert state.json()["keys"]["RS256"] == {"active": kids[2], "previous": kids[1]}
    assert kids[2] == emu.signing_kid("oidc")


# == signed ID tokens ===========================================================================


@pytest.mark.parametrize(
    ("profile", "alg", "kty"),
    [("google", "RS256", "RSA"), ("strict", "ES256", "EC"), ("oidc", "RS256", "RSA")],
)
def test_id_tokens_verify_against_the_served_jwks(
    emu: Emulator, profile: str, alg: str, kty: str
) -> None:
    data = tokens(emu, profile, nonce="n-0S6_WzA2Mj")
    id_token = data["id_token"]
    header = header_of(id_token)
    assert header["alg"] == alg == emu.id_token_alg(profile)
    assert header["kid"] == emu.signing_kid(profile)
    jwks = fetch_jwks(emu, profile)
    assert {key["kty"] for key in jwks["keys"] if key["kid"] == header["kid"]} == {kty}
    claims = verify(id_token, jwks, [alg])
    assert claims["iss"] == emu.issuer(profile)
    assert claims["aud"] == claims["azp"] == emu.credentials.client_id
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["email"] == "ada@example.com"
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["at_hash"] == expected_at_hash(data["access_token"])
    # A signature made by another key under the same kid does not verify.
    forged = jwt.encode(header, claims, IMPOSTOR if kty == "RSA" else ECKey.generate_key("P-256"))
    with pytest.raises(JoseError):
        verify(forged, jwks, [alg])


def test_refreshed_id_tokens_are_signed_and_hash_the_new_access_token(emu: Emulator) -> None:
    first = tokens(emu, "oidc")
    response = refresh(emu, "oidc", first["refresh_token"])
    assert response.status_code == 200, response.text
    again = response.json()
    jwks = fetch_jwks(emu, "oidc")
    before, after = (
        verify(first["id_token"], jwks, ["RS256"]),
        verify(again["id_token"], jwks, ["RS256"]),
    )
    assert after["at_hash"] == expected_at_hash(again["access_token"]) != before["at_hash"]
    # OpenID Connect Core 12.2: same iss, sub, aud, auth_time; no nonce.
    for claim in ("iss", "sub", "aud", "auth_time", "sid"):
        assert after[claim] == before[claim], claim
    assert "nonce" in before and "nonce" not in after


def test_the_signing_algorithm_is_a_knob_for_the_profiles_that_advertise_it(emu: Emulator) -> None:
    emu.configure(id_token_alg="ES256")
    assert [emu.id_token_alg(p) for p in ("google", "strict", "oidc")] == [
        "RS256",
        "ES256",
        "ES256",
    ]
    oidc = tokens(emu, "oidc")["id_token"]
    assert header_of(oidc)["alg"] == "ES256"
    assert verify(oidc, fetch_jwks(emu, "oidc"), ["ES256"])["sub"]
    google = tokens(emu, "google")["id_token"]
    assert header_of(google)["alg"] == "RS256"  # Google advertises RS256 alone
    switched = httpx.post(emu.base_url + "/_emulator/configure", json={"id_token_alg": "RS256"})
    assert switched.json()["knobs"]["id_token_alg"] == "RS256"
    strict = tokens(emu, "strict")["id_token"]
    assert header_of(strict)["alg"] == "RS256"
    assert verify(strict, fetch_jwks(emu, "strict"), ["RS256"])
    emu.configure(id_token_alg=None)
    assert emu.id_token_alg("strict") == "ES256"
    for bad in ("HS256", "none", "PS256"):
        with pytest.raises(ValueError, match="id_token_alg"):
            emu.configure(id_token_alg=bad)
    with pytest.raises(keyturn.ConfigurationError, match="no ID tokens"):
        emu.id_token_alg("github")


def test_rotation_keeping_the_old_key_gives_an_unknown_kid_until_the_set_is_fetched_again(
    emu: Emulator,
) -> None:
    old_token = tokens(emu, "oidc")["id_token"]
    cached = fetch_jwks(emu, "oidc")  # what a client caches
    old_kid = header_of(old_token)["kid"]
    answer = httpx.post(emu.base_url + "/_emulator/rotate-keys", json={"algs": ["RS256"]})
    assert answer.status_code == 200, answer.text
    new_kid = answer.json()["active"]["RS256"]
    assert new_kid == emu.signing_kid("oidc") != old_kid
    new_token = tokens(emu, "oidc")["id_token"]
    assert header_of(new_token)["kid"] == new_kid
    assert new_kid not in {key["kid"] for key in cached["keys"]}
    with pytest.raises(JoseError):
        verify(new_token, cached, ["RS256"])  # unknown kid in the cached set
    refetched = fetch_jwks(emu, "oidc")
    assert verify(new_token, refetched, ["RS256"])
    assert verify(old_token, refetched, ["RS256"])  # the old key is still published
    rsa_kids = [key["kid"] for key in refetched["keys"] if key["alg"] == "RS256"]
    assert rsa_kids == [new_kid, old_kid]
    assert emu.counters("oidc")["jwks"] == 2
    # The EC keys did not move.
    assert [k for k in cached["keys"] if k["alg"] == "ES256"] == [
        k for k in refetched["keys"] if k["alg"] == "ES256"
    ]


def test_rotation_dropping_the_old_key_leaves_its_tokens_unverifiable(emu: Emulator) -> None:
    old_token = tokens(emu, "oidc")["id_token"]
    kids = emu.rotate_keys(keep_previous=False)
    assert set(kids) == {"RS256", "ES256"}
    served = fetch_jwks(emu, "oidc")
    assert sorted(key["kid"] for key in served["keys"]) == sorted(kids.values())
    with pytest.raises(JoseError):
        verify(old_token, served, ["RS256"])
    assert verify(tokens(emu, "oidc")["id_token"], served, ["RS256"])


def test_the_rotation_control_refuses_bad_input(emu: Emulator) -> None:
    url = emu.base_url + "/_emulator/rotate-keys"
    for body in ({"keep_previous": "yes"}, {"algs": ["HS256"]}, {"algs": "RS256"}, [1]):
        refused = httpx.post(url, json=body)
        assert refused.status_code == 400, body
        assert "error" in refused.json()
    assert httpx.post(url, content=b"{}", headers={"Content-Type": "text/plain"}).status_code == 415
    assert (
        httpx.post(url, json={}, headers={"Origin": "http://attacker.example"}).status_code == 403
    )
    with pytest.raises(ValueError, match="signing algorithm"):
        emu.rotate_keys(algs=["HS256"])  # type: ignore[list-item]


# == client assertions (RFC 7523, OpenID Connect Core 9) =======================================


@pytest.mark.parametrize(
    ("key", "alg"), [(CLIENT_RSA, "RS256"), (CLIENT_RSA, "PS256"), (CLIENT_EC, "ES256")]
)
def test_private_key_jwt_signs_in_refreshes_and_revokes(emu: Emulator, key: Any, alg: str) -> None:
    kids = emu.register_client_keys(
        {"keys": [CLIENT_RSA.as_dict(private=False), CLIENT_EC.as_dict(private=False)]}
    )
    assert kids == ["client-rsa-1", "client-ec-1"]
    data = tokens(emu, auth=assertion_auth(assertion(emu, key, alg)))
    refreshed = refresh(
        emu, "oidc", data["refresh_token"], auth=assertion_auth(assertion(emu, key, alg))
    )
    assert refreshed.status_code == 200, refreshed.text
    revoke = httpx.post(
        emu.endpoints("oidc")["revocation_endpoint"],
        data={
            "token": refreshed.json()["refresh_token"],
            **assertion_auth(assertion(emu, key, alg)),
        },
    )
    assert revoke.status_code == 200, revoke.text
    assert emu.counters("oidc")["auth_private_key_jwt"] == 3
    assert emu.counters("oidc")["revoke"] == 1


def test_private_key_jwt_also_takes_the_issuer_as_audience_and_a_key_without_kid(
    emu: Emulator,
) -> None:
    emu.register_client_keys(CLIENT_EC.as_dict(private=False))  # one JWK, not a set
    as_issuer = assertion(
        emu, CLIENT_EC, "ES256", aud=[emu.issuer("oidc"), "https://other.example"]
    )
    assert sign_in(emu, auth=assertion_auth(as_issuer)).status_code == 200
    without_kid = assertion(emu, CLIENT_EC, "ES256", header={})
    assert "kid" not in header_of(without_kid)
    assert sign_in(emu, auth=assertion_auth(without_kid)).status_code == 200


def test_client_secret_jwt_and_the_secret_itself(emu: Emulator) -> None:
    for alg in ("HS256", "HS512"):
        made = assertion(emu, secret_key(emu), alg)
        assert sign_in(emu, auth=assertion_auth(made)).status_code == 200
    assert tokens(emu, "oidc")["access_token"].startswith("oat_")  # client_secret_post
    callback, verifier = authorize(emu)
    form = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    assert token_request(emu, "oidc", form, basic=True).status_code == 200
    counters = emu.counters("oidc")
    assert counters["auth_client_secret_jwt"] == 2
    assert counters["auth_client_secret_post"] == 1
    assert counters["auth_client_secret_basic"] == 1


def test_strict_takes_client_assertions_too(emu: Emulator) -> None:
    made = assertion(emu, secret_key(emu), "HS256", profile="strict")
    assert sign_in(emu, "strict", auth=assertion_auth(made)).status_code == 200
    assert emu.counters("strict")["auth_client_secret_jwt"] == 1


def _refusals(emu: Emulator) -> dict[str, tuple[dict[str, str], str]]:
    """Each refused assertion: the auth parameters, and what the answer's description says."""
    now = int(time.time())
    good = assertion(emu, CLIENT_RSA, "RS256")
    header, payload, _ = good.split(".")
    return {
        "wrong type": (
            {
                "client_assertion_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "client_assertion": good,
            },
            "client_assertion_type must be",
        ),
        "no assertion": ({"client_assertion_type": ASSERTION_TYPE}, "client_assertion is missing"),
        "not a JWS": (assertion_auth("not-a-jwt"), "not a compact JWS"),
        "alg none": (
            assertion_auth(
                base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode() + f".{payload}."
            ),
            "its alg is not one the provider accepts",
        ),
        "secret jwt, wrong secret": (
            assertion_auth(assertion(emu, OctKey.import_key("not-the-secret-example"), "HS256")),
            "the signature does not verify",
        ),
        "private key jwt, unregistered key": (
            assertion_auth(assertion(emu, IMPOSTOR, "RS256")),
            "the signature does not verify",
        ),
        "tampered payload": (
            assertion_auth(f"{header}.{payload[:-2]}AA.{good.split('.')[2]}"),
            "the signature does not verify",
        ),
        "unknown kid": (
            assertion_auth(assertion(emu, CLIENT_RSA, "RS256", header={"kid": "elsewhere"})),
            "no registered key has the assertion's kid",
        ),
        "iss is not sub": (
            assertion_auth(assertion(emu, CLIENT_RSA, "RS256", sub="someone-else")),
            "iss and sub must both be the client id",
        ),
        "another client": (
            assertion_auth(
                assertion(emu, CLIENT_RSA, "RS256", iss="other-client", sub="other-client")
            ),
            "do not name a registered client",
        ),
        "wrong audience": (
            assertion_auth(
                assertion(emu, CLIENT_RSA, "RS256", aud="https://attacker.example/token")
            ),
            "aud must name the token endpoint or the issuer",
        ),
        "another profile's token endpoint": (
            assertion_auth(
                assertion(emu, CLIENT_RSA, "RS256", aud=emu.endpoints("strict")["token_endpoint"])
            ),
            "aud must name the token endpoint or the issuer",
        ),
        "aud not a string": (
            assertion_auth(assertion(emu, CLIENT_RSA, "RS256", aud=7)),
            "aud must be a string or a list of strings",
        ),
        "expired": (
            assertion_auth(assertion(emu, CLIENT_RSA, "RS256", exp=now - 1)),
            "it has expired",
        ),
        "exp too far ahead": (
            assertion_auth(assertion(emu, CLIENT_RSA, "RS256", exp=now + 3600)),
            "exp is more than 300 seconds ahead",
        ),
        "exp beyond any float": (
            assertion_auth(assertion(emu, CLIENT_RSA, "RS256", exp=10**400)),
            "exp is missing or not a number",
        ),
        "no exp": (
            assertion_auth(assertion(emu, CLIENT_RSA, "RS256", exp=None)),
            "exp is missing or not a number",
        ),
        "not yet valid": (
            assertion_auth(assertion(emu, CLIENT_RSA, "RS256", nbf=now + 120)),
            "it is not valid yet",
        ),
        "no jti": (
            assertion_auth(assertion(emu, CLIENT_RSA, "RS256", jti=None)),
            "jti is missing",
        ),
        "empty jti": (
            assertion_auth(assertion(emu, CLIENT_RSA, "RS256", jti="")),
            "jti is missing",
        ),
        "client_id differs": (
            {**assertion_auth(good), "client_id": "other-client"},
            "client_id differs from the assertion's iss",
        ),
    }


REFUSALS = [
    "wrong type",
    "no assertion",
    "not a JWS",
    "alg none",
    "secret jwt, wrong secret",
    "private key jwt, unregistered key",
    "tampered payload",
    "unknown kid",
    "iss is not sub",
    "another client",
    "wrong audience",
    "another profile's token endpoint",
    "aud not a string",
    "expired",
    "exp too far ahead",
    "exp beyond any float",
    "no exp",
    "not yet valid",
    "no jti",
    "empty jti",
    "client_id differs",
]


@pytest.mark.parametrize("case", REFUSALS)
def test_each_bad_assertion_is_a_401_invalid_client_naming_the_check(
    emu: Emulator, case: str
) -> None:
    emu.register_client_keys({"keys": [CLIENT_RSA.as_dict(private=False)]})
    auth, says = _refusals(emu)[case]
    response = sign_in(emu, auth=auth)
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "invalid_client"
    assert says in body["error_description"]
    assert secret(emu) not in response.text
    assert emu.counters("oidc")["invalid_client"] == 1
    assert emu.counters("oidc")["authorization_code"] == 0


def test_every_refusal_case_is_tested() -> None:
    with Emulator() as emu:
        assert sorted(_refusals(emu)) == sorted(REFUSALS)


def test_private_key_jwt_without_a_registered_key_is_refused(emu: Emulator) -> None:
    response = sign_in(emu, auth=assertion_auth(assertion(emu, CLIENT_RSA, "RS256")))
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert "no public key is registered" in response.json()["error_description"]


def test_a_replayed_assertion_is_refused_and_a_refused_one_spends_no_jti(emu: Emulator) -> None:
    emu.register_client_keys({"keys": [CLIENT_RSA.as_dict(private=False)]})
    once = assertion(emu, CLIENT_RSA, "RS256")
    assert sign_in(emu, auth=assertion_auth(once)).status_code == 200
    replayed = sign_in(emu, auth=assertion_auth(once))
    assert (replayed.status_code, replayed.json()["error"]) == (401, "invalid_client")
    assert "its jti was used before" in replayed.json()["error_description"]
    # The same jti in an assertion of the other method is a replay too.
    jti = b64url_json(once.split(".")[1])["jti"]
    again = assertion(emu, secret_key(emu), "HS256", jti=jti)
    assert (
        "jti was used before"
        in sign_in(emu, auth=assertion_auth(again)).json()["error_description"]
    )
    # An assertion refused for another reason leaves its jti unspent.
    fresh = secrets.token_urlsafe(8)
    wrong_aud = assertion(emu, CLIENT_RSA, "RS256", jti=fresh, aud="https://attacker.example")
    assert sign_in(emu, auth=assertion_auth(wrong_aud)).status_code == 401
    assert (
        sign_in(
            emu, auth=assertion_auth(assertion(emu, CLIENT_RSA, "RS256", jti=fresh))
        ).status_code
        == 200
    )


def test_an_assertion_with_another_method_beside_it_is_refused(emu: Emulator) -> None:
    made = assertion_auth(assertion(emu, secret_key(emu), "HS256"))
    callback, verifier = authorize(emu)
    form = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    both = token_request(emu, "oidc", {**form, **made}, basic=True)
    assert (both.status_code, both.json()["error"]) == (400, "invalid_request")
    with_secret = token_request(emu, "oidc", form, auth={**made, "client_secret": secret(emu)})
    assert (with_secret.status_code, with_secret.json()["error"]) == (400, "invalid_request")


def test_assertions_at_the_revocation_endpoint_are_checked_too(emu: Emulator) -> None:
    data = tokens(emu)
    url = emu.endpoints("oidc")["revocation_endpoint"]
    expired = assertion(emu, secret_key(emu), "HS256", exp=int(time.time()) - 5)
    refused = httpx.post(url, data={"token": data["refresh_token"], **assertion_auth(expired)})
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    # The revocation endpoint's own URL is an acceptable audience there.
    own = assertion(emu, secret_key(emu), "HS256", aud=url)
    done = httpx.post(url, data={"token": data["refresh_token"], **assertion_auth(own)})
    assert done.status_code == 200
    assert refresh(emu, "oidc", data["refresh_token"]).json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "jwks",
    [
        {"keys": [CLIENT_RSA.as_dict(private=True)]},
        CLIENT_EC.as_dict(private=True),
        {"kty": "oct", "k": "c2VjcmV0"},
        {"keys": []},
        {"keys": "none"},
        {"keys": [["not", "a", "key"]]},
        {"kty": "RSA", "n": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
    ],
    ids=[
        "private-set",
        "private-jwk",
        "oct",
        "empty",
        "not-a-list",
        "not-objects",
        "no-e",
        "bad-point",
    ],
)
def test_client_keys_must_be_public_keys(emu: Emulator, jwks: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="key"):
        emu.register_client_keys(jwks)
    refused = httpx.post(emu.base_url + "/_emulator/client-keys", json=jwks)
    assert refused.status_code == 400
    assert "d" not in refused.json() and "error" in refused.json()


def test_client_keys_registered_over_http_replace_the_old_ones(emu: Emulator) -> None:
    url = emu.base_url + "/_emulator/client-keys"
    assert httpx.post(url, json={"keys": [CLIENT_RSA.as_dict(private=False)]}).json() == {
        "kids": ["client-rsa-1"]
    }
    assert sign_in(emu, auth=assertion_auth(assertion(emu, CLIENT_RSA, "RS256"))).status_code == 200
    okp = OKPKey.generate_key("Ed25519", parameters={"kid": "client-ed-1"}, private=True)
    assert httpx.post(url, json=okp.as_dict(private=False)).json() == {"kids": ["client-ed-1"]}
    assert sign_in(emu, auth=assertion_auth(assertion(emu, okp, "Ed25519"))).status_code == 200
    gone = sign_in(emu, auth=assertion_auth(assertion(emu, CLIENT_RSA, "RS256")))
    assert gone.status_code == 401
    foreign = httpx.post(url, json={"keys": []}, headers={"Sec-Fetch-Site": "cross-site"})
    assert foreign.status_code == 403


def test_google_takes_no_assertion(emu: Emulator) -> None:
    made = assertion(emu, secret_key(emu), "HS256", profile="google")
    response = sign_in(
        emu, "google", auth={"client_id": emu.credentials.client_id, **assertion_auth(made)}
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


# == the oidc profile ===========================================================================


def test_the_oidc_profile_through_keyturn(emu: Emulator) -> None:
    spec = emu.spec("oidc")
    with keyturn.Keyturn({"oidc": emu.credentials}, providers=[spec], environ={}) as kt:
        request = kt.authorize_url("oidc", REDIRECT)
        callback = emu.authorize(request.url)
        assert callback["iss"] == emu.issuer("oidc")  # RFC 9207
        token = kt.sign_in(request, callback)
        first = token.tokens
        assert token.user is not None and token.user.email == "ada@example.com"
        assert first.id_token is not None
        refreshed = kt.refresh(first)
        assert refreshed.id_token is not None
        assert refreshed.refresh_token is not None and first.refresh_token is not None
        assert refreshed.refresh_token.get_secret_value() != first.refresh_token.get_secret_value()
        kt.revoke(refreshed)
    jwks = fetch_jwks(emu, "oidc")
    for id_token in (first.id_token, refreshed.id_token):
        assert verify(id_token.get_secret_value(), jwks, ["RS256"])["sub"] == token.user.id
    # The old refresh token died with the rotation; no reuse detection, so nothing else did.
    old = refresh(emu, "oidc", first.refresh_token.get_secret_value())
    assert (old.status_code, old.json()["error"]) == (400, "invalid_grant")
    assert emu.counters("oidc")["family_revoked"] == 0
    counters = emu.counters("oidc")
    assert (counters["authorization_code"], counters["refresh_token"], counters["revoke"]) == (
        1,
        1,
        1,
    )
    assert counters["auth_client_secret_basic"] == 3


def test_the_oidc_profile_requires_pkce_and_a_scope(emu: Emulator) -> None:
    query = {
        "response_type": "code",
        "client_id": emu.credentials.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid",
        "state": "s-example",
    }
    url = emu.endpoints("oidc")["authorization_endpoint"]
    no_pkce = emu.authorize(url + "?" + urlencode(query))
    assert no_pkce["error"] == "invalid_request" and no_pkce["iss"] == emu.issuer("oidc")
    no_scope = {
        **query,
        "scope": "",
        "code_challenge": code_challenge(new_code_verifier()),
        "code_challenge_method": "S256",
    }
    assert emu.authorize(url + "?" + urlencode(no_scope))["error"] == "invalid_request"


def test_userinfo_names_the_subject_and_revocation_follows_rfc_7009(emu: Emulator) -> None:
    data = tokens(emu)
    userinfo = httpx.get(
        emu.endpoints("oidc")["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {data['access_token']}"},
    )
    claims = verify(data["id_token"], fetch_jwks(emu, "oidc"), ["RS256"])
    assert userinfo.json()["sub"] == claims["sub"]
    url = emu.endpoints("oidc")["revocation_endpoint"]
    auth = (emu.credentials.client_id, secret(emu))
    assert httpx.post(url, data={"token": "unknown-example"}, auth=auth).status_code == 200
    assert httpx.post(url, data={"token": data["access_token"]}).status_code == 401
    assert httpx.post(url, data={"token": data["access_token"]}, auth=auth).status_code == 200
    assert refresh(emu, "oidc", data["refresh_token"]).status_code == 200  # the grant stays


def test_prompt_none_answers_login_required_without_a_session(emu: Emulator) -> None:
    assert not emu.signed_in("oidc")
    silent, _ = authorize(emu, prompt="none")
    assert (silent["error"], silent["state"]) == ("login_required", "state-example")
    first, _ = authorize(emu)
    assert "code" in first and emu.signed_in("oidc")
    again, _ = authorize(emu, prompt="none")
    assert "code" in again
    mixed, _ = authorize(emu, prompt="none login")
    assert mixed["error"] == "invalid_request"
    assert not emu.signed_in("oidc", user="grace@example.com")
    with pytest.raises(keyturn.ConfigurationError, match="no sessions"):
        emu.signed_in("strict")


def test_a_session_keeps_its_sid_and_auth_time_until_prompt_login() -> None:
    clock = FakeClock()
    with Emulator(clock=clock) as emu:
        jwks_claims = []
        for prompt in (None, None, "login"):
            callback, verifier = authorize(emu, prompt=prompt)
            form = {
                "grant_type": "authorization_code",
                "code": callback["code"],
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            }
            data = token_request(emu, "oidc", form).json()
            jwks_claims.append(b64url_json(data["id_token"].split(".")[1]))
            clock.advance(100)
    first, second, fresh = jwks_claims
    assert first["sid"] == second["sid"] and first["auth_time"] == second["auth_time"]
    assert fresh["sid"] != first["sid"] and fresh["auth_time"] == first["auth_time"] + 200


# == RP-Initiated Logout ========================================================================


def logout(emu: Emulator, method: str = "GET", **params: str) -> httpx.Response:
    url = emu.endpoints("oidc")["end_session_endpoint"]
    if method == "POST":
        return httpx.post(url, data=params)
    return httpx.get(url, params=params)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_logout_ends_the_session_and_goes_back_with_state(emu: Emulator, method: str) -> None:
    hint = tokens(emu)["id_token"]
    assert emu.signed_in("oidc")
    done = logout(
        emu,
        method,
        id_token_hint=hint,
        client_id=emu.credentials.client_id,
        post_logout_redirect_uri=LOGGED_OUT,
        state="after-logout",
    )
    assert done.status_code == 302
    location = urlsplit(done.headers["location"])
    assert location._replace(query="").geturl() == LOGGED_OUT
    assert dict(parse_qsl(location.query)) == {"state": "after-logout"}
    assert emu.logouts("oidc") == emu.logouts() == 1
    assert not emu.signed_in("oidc")
    silent, _ = authorize(emu, prompt="none")
    assert silent["error"] == "login_required"  # the next sign-in asks again


def test_logout_with_only_a_hint_or_only_a_client_id(emu: Emulator) -> None:
    hint = tokens(emu)["id_token"]
    back = logout(emu, id_token_hint=hint, post_logout_redirect_uri=LOGGED_OUT)
    assert (back.status_code, back.headers["location"]) == (302, LOGGED_OUT)
    by_client = logout(
        emu, client_id=emu.credentials.client_id, post_logout_redirect_uri=LOGGED_OUT
    )
    assert by_client.status_code == 302
    page = logout(emu)  # nothing at all: a page, no redirect
    assert page.status_code == 200 and "data-logout='done'" in page.text
    assert emu.logouts("oidc") == 3


def test_an_expired_hint_is_accepted_and_a_rotated_out_key_still_counts() -> None:
    clock = FakeClock()
    with Emulator(clock=clock, post_logout_redirect_uris=[LOGGED_OUT]) as emu:
        hint = tokens(emu)["id_token"]
        clock.advance(7200)  # past the ID token's exp
        emu.rotate_keys(keep_previous=False)  # and its key is no longer published
        assert header_of(hint)["kid"] not in {k["kid"] for k in fetch_jwks(emu, "oidc")["keys"]}
        done = logout(emu, id_token_hint=hint, post_logout_redirect_uri=LOGGED_OUT)
        assert done.status_code == 302
        assert not emu.signed_in("oidc")


def test_an_old_hint_does_not_end_a_newer_session(emu: Emulator) -> None:
    old_hint = tokens(emu)["id_token"]
    authorize(emu, prompt="login")  # a new session, a new sid
    assert logout(emu, id_token_hint=old_hint).status_code == 200
    assert emu.signed_in("oidc")
    assert emu.logouts("oidc") == 1


def _logout_refusals(emu: Emulator) -> dict[str, dict[str, str]]:
    hint = tokens(emu)["id_token"]
    claims = b64url_json(hint.split(".")[1])
    foreign_key = RSAKey.generate_key(
        2048, parameters={"kid": header_of(hint)["kid"]}, private=True
    )
    return {
        "unregistered uri": {
            "id_token_hint": hint,
            "post_logout_redirect_uri": "http://127.0.0.1:8765/elsewhere",
        },
        "registered uri plus a query": {
            "id_token_hint": hint,
            "post_logout_redirect_uri": LOGGED_OUT + "?x=1",
        },
        "uri without hint or client": {"post_logout_redirect_uri": LOGGED_OUT},
        "hint signed elsewhere": {
            "id_token_hint": jwt.encode(header_of(hint), claims, foreign_key),
            "post_logout_redirect_uri": LOGGED_OUT,
        },
        "hint of another profile": {
            "id_token_hint": tokens(emu, "strict")["id_token"],
            "post_logout_redirect_uri": LOGGED_OUT,
        },
        "hint to another client": {
            "id_token_hint": emu.keys.sign({**claims, "aud": "other-client"}, "RS256"),
            "post_logout_redirect_uri": LOGGED_OUT,
        },
        "hint that is no JWT": {
            "id_token_hint": "not-a-token",
            "post_logout_redirect_uri": LOGGED_OUT,
        },
        "unknown client": {"client_id": "other-client", "post_logout_redirect_uri": LOGGED_OUT},
        "client not in the hint's audience": {
            "id_token_hint": emu.keys.sign({**claims, "aud": ["other-client"]}, "RS256"),
            "client_id": emu.credentials.client_id,
        },
    }


LOGOUT_REFUSALS = [
    "unregistered uri",
    "registered uri plus a query",
    "uri without hint or client",
    "hint signed elsewhere",
    "hint of another profile",
    "hint to another client",
    "hint that is no JWT",
    "unknown client",
    "client not in the hint's audience",
]


@pytest.mark.parametrize("case", LOGOUT_REFUSALS)
def test_a_refused_logout_shows_an_error_page_and_logs_nobody_out(emu: Emulator, case: str) -> None:
    params = _logout_refusals(emu)[case]
    assert emu.signed_in("oidc")
    for method in ("GET", "POST"):
        refused = logout(emu, method, **params, state="s-example")
        assert refused.status_code == 400, (method, refused.text)
        assert "location" not in refused.headers
        assert refused.headers["content-type"].startswith("text/html")
        assert "data-error=" in refused.text
    assert emu.logouts("oidc") == 0
    assert emu.signed_in("oidc")


def test_every_logout_refusal_is_tested() -> None:
    with Emulator() as emu:
        assert sorted(_logout_refusals(emu)) == sorted(LOGOUT_REFUSALS)


def test_post_logout_redirect_uris_are_registered_exactly(emu: Emulator) -> None:
    other = "http://127.0.0.1:9999/bye"
    hint = tokens(emu)["id_token"]
    assert logout(emu, id_token_hint=hint, post_logout_redirect_uri=other).status_code == 400
    assert emu.register_post_logout_redirect_uris(other) == sorted([LOGGED_OUT, other])
    url = emu.base_url + "/_emulator/post-logout-redirect-uris"
    third = "https://app.example/signed-out"
    assert httpx.post(url, json={"uris": [third]}).json() == {
        "uris": sorted([LOGGED_OUT, other, third])
    }
    assert logout(emu, id_token_hint=hint, post_logout_redirect_uri=other).status_code == 302
    assert httpx.get(emu.base_url + "/_emulator/state").json()[
        "post_logout_redirect_uris"
    ] == sorted([LOGGED_OUT, other, third])
    for bad in ("/relative", "ftp://app.example/", "https://app.example/#frag", 5):
        with pytest.raises(ValueError, match="post_logout_redirect_uri"):
            emu.register_post_logout_redirect_uris(bad)  # type: ignore[arg-type]
        assert httpx.post(url, json={"uris": [bad]}).status_code == 400
    assert httpx.post(url, json={"uris": "https://app.example/"}).status_code == 400
    with pytest.raises(ValueError, match="absolute http"):
        Emulator(post_logout_redirect_uris=["javascript:alert(1)"])


def test_profiles_without_logout_have_no_end_session_route(emu: Emulator) -> None:
    for profile in ("google", "strict", "github"):
        assert "end_session_endpoint" not in emu.endpoints(profile)
        assert httpx.get(f"{emu.base_url}/{profile}/logout").status_code == 404


# == specs that point at the emulator ===========================================================


def test_spec_carries_the_keys_discovery_and_logout(emu: Emulator) -> None:
    spec = emu.spec("oidc")
    endpoints = emu.endpoints("oidc")
    assert spec.jwks_uri == endpoints["jwks_uri"] == emu.base_url + "/oidc/jwks"
    assert spec.discovery_url == emu.discovery_url("oidc")
    assert spec.end_session_endpoint == endpoints["end_session_endpoint"]
    assert spec.id_token_signing_algs == frozenset({"RS256", "ES256"})
    assert spec.authorization_response_iss is True
    assert spec.client_auth == "client_secret_basic"
    strict = emu.spec("strict")
    assert strict.jwks_uri == emu.base_url + "/strict/jwks"
    assert strict.end_session_endpoint is None
    assert strict.id_token_signing_algs == frozenset({"ES256", "RS256"})
    google = emu.spec("google")
    assert google.jwks_uri == emu.base_url + "/google/oauth2/v3/certs"
    assert google.id_token_signing_algs == frozenset({"RS256"})


def test_point_leaves_nothing_at_the_real_provider(emu: Emulator) -> None:
    real = (
        keyturn.Keyturn(environ={})
        .provider("google")
        .model_copy(
            update={
                "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
                "discovery_url": "https://accounts.google.com/.well-known/openid-configuration",
                "end_session_endpoint": "https://accounts.google.com/logout",
                "id_token_signing_algs": frozenset({"RS256", "PS256"}),
            }
        )
    )
    pointed = emu.point(real)
    assert pointed.jwks_uri == emu.jwks_uri("google")
    assert pointed.discovery_url == emu.discovery_url("google")
    assert pointed.end_session_endpoint is None  # the google profile has no logout
    assert pointed.id_token_signing_algs == frozenset({"RS256"})
    for value in pointed.model_dump(mode="json").values():
        assert "google.com" not in str(value) and "googleapis" not in str(value)
    as_oidc = emu.point(real, profile="oidc")
    assert as_oidc.end_session_endpoint == emu.endpoints("oidc")["end_session_endpoint"]
    github = emu.point(
        keyturn.Keyturn(environ={})
        .provider("github")
        .model_copy(update={"jwks_uri": "https://github.example/keys"})
    )
    assert github.jwks_uri is None and github.discovery_url is None


def test_a_pointed_spec_verifies_sign_in_against_the_emulator(emu: Emulator) -> None:
    # Whatever the client does with jwks_uri, the ID token it receives verifies with the set
    # at the spec's jwks_uri under the spec's algorithms.
    spec = emu.point(keyturn.Keyturn(environ={}).provider("google"))
    with keyturn.Keyturn({"google": emu.credentials}, providers=[spec], environ={}) as kt:
        request = kt.authorize_url("google", REDIRECT)
        token = kt.sign_in(request, emu.authorize(request.url))
    assert token.tokens.id_token is not None and spec.jwks_uri is not None
    served = httpx.get(spec.jwks_uri).json()
    claims = verify(
        token.tokens.id_token.get_secret_value(), served, sorted(spec.id_token_signing_algs)
    )
    assert claims["iss"] == spec.issuer


@pytest.mark.parametrize("needle", ["rotate_keys", "keyturn_oidc"])
def test_the_readme_openid_connect_examples_run(needle: str) -> None:
    readme = (ROOT / "tools" / "keyturn-emulator" / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    (example,) = [block for block in blocks if needle in block]
    namespace = {"Emulator": Emulator, "Keyturn": keyturn.Keyturn}
    exec(compile(example, "README.md", "exec"), namespace)


# == bad input never breaks the emulator ========================================================

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_headers = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["RS256", "ES256", "HS256", "PS256", "none", "EdDSA", "Ed25519"])
        | _json_values,
        "kid": st.sampled_from(["client-rsa-1", "client-ec-1"]) | _json_values,
        "typ": _json_values,
        "crit": _json_values,
    },
)


def _segment(data: Any) -> str:
    text = json.dumps(data, allow_nan=True).encode()
    return base64.urlsafe_b64encode(text).rstrip(b"=").decode()


_compact = st.builds(
    lambda header, payload, signature: f"{_segment(header)}.{_segment(payload)}.{signature}",
    _headers | _json_values,
    _json_values,
    st.text(alphabet="ABCDEFabcdef0123456789-_", max_size=90),
)


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[tuple[Emulator, httpx.Client]]:
    """One emulator for every example, with the client's keys registered."""
    with (
        Emulator(post_logout_redirect_uris=[LOGGED_OUT]) as emu,
        httpx.Client(timeout=30) as http,
    ):
        emu.register_client_keys(
            {"keys": [CLIENT_RSA.as_dict(private=False), CLIENT_EC.as_dict(private=False)]}
        )
        yield emu, http


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_compact | st.text(max_size=60))
def test_malformed_assertions_and_hints_are_refused_never_a_crash(
    fuzz_target: tuple[Emulator, httpx.Client], value: str
) -> None:
    emu, http = fuzz_target
    token = http.post(
        emu.endpoints("oidc")["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": "unknown-example",
            **assertion_auth(value),
        },
    )
    assert (token.status_code, token.json()["error"]) == (401, "invalid_client"), token.text
    hint = http.get(
        emu.endpoints("oidc")["end_session_endpoint"],
        params={"id_token_hint": value, "post_logout_redirect_uri": LOGGED_OUT},
    )
    assert hint.status_code == 400, hint.text
    assert emu.logouts("oidc") == 0


_claim_values = _json_values | st.integers(min_value=-(10**30), max_value=10**400)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    claims=st.fixed_dictionaries(
        {},
        optional={
            name: _claim_values | st.just("keyturn-emulator-client")
            for name in ("iss", "sub", "aud", "exp", "nbf", "iat", "jti")
        },
    )
)
def test_signed_assertions_with_any_claims_are_answered_never_a_crash(
    fuzz_target: tuple[Emulator, httpx.Client], claims: dict[str, Any]
) -> None:
    # Signed with the client secret, so every claim check is reached.
    emu, http = fuzz_target
    value = jwt.encode({"alg": "HS256"}, claims, secret_key(emu), algorithms=["HS256"])
    token = http.post(
        emu.endpoints("oidc")["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": "unknown-example",
            **assertion_auth(value),
        },
    )
    # Refused as a client, or (claims that happen to pass) as a grant: never a 500.
    assert (token.status_code, token.json()["error"]) in (
        (401, "invalid_client"),
        (400, "invalid_grant"),
    )


# == keyturn against the emulator: discovery and verified signatures end to end ===============


def test_keyturn_oidc_signs_in_refreshes_and_revokes_from_the_issuer_alone(emu: Emulator) -> None:
    issuer = emu.issuer("oidc")
    assert issuer is not None
    corp = keyturn_oidc.provider("corp", issuer)
    with keyturn.Keyturn({"corp": emu.credentials}, providers=[corp], environ={}) as kt:
        request = kt.authorize_url("corp", REDIRECT)
        token = kt.sign_in(request, emu.authorize(request.url))
        refreshed = kt.refresh(token.tokens)
        kt.revoke(refreshed)
    assert token.user is not None and token.user.email == "ada@example.com"
    counters = emu.counters("oidc")
    assert (counters["discovery"], counters["jwks"]) == (1, 1)  # each fetched once
    assert (counters["authorization_code"], counters["refresh_token"], counters["revoke"]) == (
        1,
        1,
        1,
    )


def test_keyturn_fetches_the_key_set_again_once_after_a_rotation() -> None:
    clock = FakeClock()
    with Emulator(clock=clock) as emu:
        spec = emu.spec("oidc")
        with keyturn.Keyturn(
            {"oidc": emu.credentials}, providers=[spec], environ={}, clock=clock
        ) as kt:

            def sign_in_once() -> keyturn.JWT:
                request = kt.authorize_url("oidc", REDIRECT)
                return kt.sign_in(request, emu.authorize(request.url))

            sign_in_once()
            assert emu.counters("oidc")["jwks"] == 1
            emu.rotate_keys()
            sign_in_once()  # an unknown kid: the set is fetched again, once
            sign_in_once()
            assert emu.counters("oidc")["jwks"] == 2
            emu.rotate_keys(keep_previous=False)
            with pytest.raises(keyturn.IdTokenError, match="does not hold"):
                sign_in_once()  # within the client's cooldown the set is not fetched again
            assert emu.counters("oidc")["jwks"] == 2
            clock.advance(61)
            sign_in_once()
            assert emu.counters("oidc")["jwks"] == 3
            emu.configure(id_token_alg="ES256")
            assert header_of(sign_in_once().tokens.id_token.get_secret_value())["alg"] == "ES256"  # type: ignore[union-attr]


# -- sign_id_token: claims signed as a profile signs its ID tokens ---------------------------


def published(emu: Emulator, profile: str) -> KeySet:
    jwks: Any = emu.jwks(profile)
    return KeySet.import_key_set(jwks)


@pytest.mark.parametrize("profile", ["google", "strict", "oidc"])
def test_sign_id_token_signs_with_the_profiles_algorithm_and_active_key(
    emu: Emulator, profile: str
) -> None:
    from joserfc import jws

    claims = {"iss": "x", "sub": "42", "groups": ["a", "b"]}
    token = emu.sign_id_token(claims, profile)
    keys = published(emu, profile)
    alg = emu.id_token_alg(profile)
    decoded = jwt.decode(token, keys, algorithms=[alg])
    assert dict(decoded.claims) == claims  # signed as given: nothing added
    assert decoded.header["kid"] == emu.signing_kid(profile)
    assert decoded.header["alg"] == alg
    raw = b'{"sub":"42","deep":[[[]]]}'
    assert jws.deserialize_compact(emu.sign_id_token(raw, profile), keys).payload == raw
    emu.rotate_keys()
    rotated = emu.sign_id_token(claims, profile)
    assert jwt.decode(rotated, published(emu, profile)).header["kid"] == (emu.signing_kid(profile))
    assert jwt.decode(rotated, published(emu, profile)).header["kid"] != (decoded.header["kid"])


def test_sign_id_token_refuses_a_profile_without_id_tokens(emu: Emulator) -> None:
    with pytest.raises(keyturn.ConfigurationError, match="no ID tokens"):
        emu.sign_id_token({"sub": "1"}, "github")
    with pytest.raises(keyturn.ConfigurationError):
        emu.sign_id_token({"sub": "1"}, "no-such-profile")
