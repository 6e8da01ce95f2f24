"""The provider emulator, over real HTTP on loopback: every profile, knob and control."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

import keyturn
from keyturn.idtoken import unverified_claims
from keyturn.pkce import code_challenge, new_code_verifier
from keyturn_emulator import PROFILES, AuthorizeRefused, Emulator, Knobs
from keyturn_emulator.faults import Dice
from tests.conftest import ROOT, FakeClock

REDIRECT = "http://127.0.0.1:8765/callback"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def installed(provider: str) -> keyturn.ProviderSpec:
    """The spec the installed plugin registers."""
    return keyturn.Keyturn(environ={}).provider(provider)


def client(emu: Emulator, spec: keyturn.ProviderSpec, **kwargs: Any) -> keyturn.Keyturn:
    """A fresh client for ``spec`` (fresh, so nothing is shared between steps)."""
    return keyturn.Keyturn({spec.id: emu.credentials}, providers=[spec], environ={}, **kwargs)


def sign_in(kt: keyturn.Keyturn, emu: Emulator, provider: str, **params: Any) -> keyturn.JWT:
    request = kt.authorize_url(provider, REDIRECT, **params)
    return kt.sign_in(request, emu.authorize(request.url))


def secret(value: Any) -> str:
    return str(value.get_secret_value())


# -- raw HTTP helpers: the emulator as any OAuth client sees it ----------------------------


def raw_code(
    emu: Emulator, profile: str, scope: str = "openid email", user: str | None = None
) -> tuple[str, str]:
    """An authorization code and its PKCE verifier, through the authorize endpoint."""
    verifier = new_code_verifier()
    query = {
        "response_type": "code",
        "client_id": emu.credentials.client_id,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "state-example",
        "code_challenge": code_challenge(verifier),
        "code_challenge_method": "S256",
        "access_type": "offline",
        "prompt": "consent",
    }
    if user is not None:
        query["login_hint"] = query["login"] = user
    url = emu.endpoints(profile)["authorization_endpoint"] + "?" + urlencode(query)
    callback = emu.authorize(url)
    assert callback["state"] == "state-example"
    return callback["code"], verifier


def token_post(
    emu: Emulator, profile: str, form: dict[str, str], *, accept_json: bool = True, **kw: Any
) -> httpx.Response:
    headers = {"Accept": "application/json"} if accept_json else {}
    body = {
        "client_id": emu.credentials.client_id,
        "client_secret": secret(emu.credentials.client_secret),
        **form,
    }
    return httpx.post(emu.endpoints(profile)["token_endpoint"], data=body, headers=headers, **kw)


def raw_tokens(
    emu: Emulator, profile: str, scope: str = "openid email", user: str | None = None
) -> dict[str, Any]:
    code, verifier = raw_code(emu, profile, scope, user)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    response = token_post(emu, profile, form)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def raw_refresh(emu: Emulator, profile: str, refresh_token: str) -> httpx.Response:
    return token_post(emu, profile, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def userinfo_status(emu: Emulator, profile: str, access_token: str) -> int:
    url = emu.endpoints(profile)["userinfo_endpoint"]
    return httpx.get(url, headers={"Authorization": f"Bearer {access_token}"}).status_code


# -- packaging ----------------------------------------------------------------------------


def test_google_plugin_signs_in_refreshes_keeps_token_and_revokes(emu: Emulator) -> None:
    spec = emu.point(installed("google"))
    with client(emu, spec) as kt:
        request = kt.authorize_url("google", REDIRECT)
        callback = emu.authorize(request.url)
        assert callback["iss"] == emu.issuer("google")
        token = kt.sign_in(request, callback)
        first = token.tokens
        assert secret(first.access_token).startswith("ya29.")
        assert secret(first.refresh_token).startswith("1//")
        assert token.user is not None and token.user.email == "ada@example.com"
        refreshed = kt.refresh(first)
        assert secret(refreshed.refresh_token) == secret(first.refresh_token)
        assert secret(refreshed.access_token) != secret(first.access_token)
        kt.revoke(refreshed)
    with client(emu, spec) as kt, pytest.raises(keyturn.OAuthError) as failure:
        kt.refresh(refreshed)
    assert failure.value.permanent is True
    assert (failure.value.status, failure.value.error) == (400, "invalid_grant")
    assert failure.value.description == "Token has been expired or revoked."
    counters = emu.counters("google")
    assert counters["authorization_code"] == 1
    assert counters["refresh_token"] == 1
    assert counters["revoke"] == 1
    assert counters["userinfo"] == 1


def test_google_id_token_carries_issuer_audience_and_nonce(emu: Emulator) -> None:
    with client(emu, emu.point(installed("google"))) as kt:
        request = kt.authorize_url("google", REDIRECT)
        token = kt.sign_in(request, emu.authorize(request.url))
    assert token.tokens.id_token is not None and request.nonce is not None
    claims = unverified_claims(secret(token.tokens.id_token))
    assert claims["iss"] == emu.issuer("google")
    assert claims["aud"] == emu.credentials.client_id
    assert claims["nonce"] == secret(request.nonce)
    assert claims["email"] == "ada@example.com"


def test_google_issues_refresh_tokens_only_for_offline_consent(emu: Emulator) -> None:
    with client(emu, emu.point(installed("google"))) as kt:
        online = sign_in(kt, emu, "google", access_type="online", login_hint="bob@example.com")
        first = sign_in(kt, emu, "google", prompt="select_account", login_hint="bob@example.com")
        again = sign_in(kt, emu, "google", prompt="select_account", login_hint="bob@example.com")
        forced = sign_in(kt, emu, "google", login_hint="bob@example.com")  # prompt=consent
    assert online.tokens.refresh_token is None
    assert first.tokens.refresh_token is not None  # first offline consent
    # "The refresh_token is only returned on the first authorization":
    # https://developers.google.com/identity/protocols/oauth2/web-server
    assert again.tokens.refresh_token is None
    assert forced.tokens.refresh_token is not None
    assert forced.user is not None and forced.user.email == "bob@example.com"


def test_google_token_response_shape(emu: Emulator) -> None:
    emu.configure(refresh_token_lifetime=604799)
    data = raw_tokens(emu, "google", "openid email profile")
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 3600
    assert data["refresh_token_expires_in"] == 604799
    assert data["scope"] == "openid email profile"
    refreshed = raw_refresh(emu, "google", data["refresh_token"]).json()
    # No rotation, nothing re-sent: the refresh sample of
    # https://developers.google.com/identity/protocols/oauth2/web-server#offline
    assert "refresh_token" not in refreshed
    assert "id_token" in refreshed


def test_google_revoke_endpoint(emu: Emulator) -> None:
    data = raw_tokens(emu, "google")
    url = emu.endpoints("google")["revocation_endpoint"]
    assert httpx.get(url, params={"token": data["access_token"]}).status_code == 404
    # Revoking the access token revokes the grant, refresh token included:
    # https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke
    assert httpx.post(url, data={"token": data["access_token"]}).status_code == 200
    assert raw_refresh(emu, "google", data["refresh_token"]).status_code == 400
    again = httpx.post(url, data={"token": data["access_token"]})
    assert (again.status_code, again.json()["error"]) == (400, "invalid_token")


# -- strict profile -----------------------------------------------------------------------


def test_strict_rotation_with_reuse_detection_revokes_the_family(emu: Emulator) -> None:
    spec = emu.spec("strict")
    with client(emu, spec) as kt:
        old = sign_in(kt, emu, "strict").tokens
        new = kt.refresh(old)
    assert secret(new.refresh_token) != secret(old.refresh_token)
    assert userinfo_status(emu, "strict", secret(new.access_token)) == 200
    with client(emu, spec) as replay, pytest.raises(keyturn.OAuthError) as reused:
        replay.refresh(old)
    assert (reused.value.status, reused.value.error, reused.value.permanent) == (
        400,
        "invalid_grant",
        True,
    )
    with client(emu, spec) as kt, pytest.raises(keyturn.OAuthError) as family:
        kt.refresh(new)  # the legitimate newest token died with its family
    assert family.value.error == "invalid_grant"
    assert userinfo_status(emu, "strict", secret(new.access_token)) == 401
    counters = emu.counters("strict")
    assert (counters["reuse_detected"], counters["family_revoked"]) == (1, 1)
    assert counters["refresh_token"] == 1


def test_strict_requires_pkce(emu: Emulator) -> None:
    query = {
        "response_type": "code",
        "client_id": emu.credentials.client_id,
        "redirect_uri": REDIRECT,
        "state": "s-example",
    }
    url = emu.endpoints("strict")["authorization_endpoint"] + "?" + urlencode(query)
    callback = emu.authorize(url)
    assert callback["error"] == "invalid_request"
    assert callback["state"] == "s-example"
    assert "code" not in callback


def test_code_is_single_use_bound_to_redirect_and_verifier(emu: Emulator) -> None:
    code, verifier = raw_code(emu, "strict")
    base = {"grant_type": "authorization_code", "code": code}
    wrong_verifier = token_post(
        emu, "strict", {**base, "redirect_uri": REDIRECT, "code_verifier": new_code_verifier()}
    )
    wrong_redirect = token_post(
        emu, "strict", {**base, "redirect_uri": REDIRECT + "x", "code_verifier": verifier}
    )
    for response in (wrong_verifier, wrong_redirect):
        assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    good = {**base, "redirect_uri": REDIRECT, "code_verifier": verifier}
    first = token_post(emu, "strict", good)
    assert first.status_code == 200
    second = token_post(emu, "strict", good)
    assert (second.status_code, second.json()["error"]) == (400, "invalid_grant")
    # RFC 6749 §4.1.2: tokens issued from a replayed code are revoked.
    assert userinfo_status(emu, "strict", first.json()["access_token"]) == 401
    assert emu.counters("strict")["code_reuse"] == 1


def test_codes_and_tokens_expire_on_the_emulator_clock() -> None:
    clock = FakeClock()
    with Emulator(access_token_lifetime=100, refresh_token_lifetime=1000, clock=clock) as emu:
        code, verifier = raw_code(emu, "google")
        clock.advance(601)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        stale = token_post(emu, "google", {**form, "code_verifier": verifier})
        assert (stale.status_code, stale.json()["error"]) == (400, "invalid_grant")
        data = raw_tokens(emu, "google")
        assert userinfo_status(emu, "google", data["access_token"]) == 200
        clock.advance(101)
        assert userinfo_status(emu, "google", data["access_token"]) == 401
        assert raw_refresh(emu, "google", data["refresh_token"]).status_code == 200
        clock.advance(1000)
        expired = raw_refresh(emu, "google", data["refresh_token"])
    assert expired.status_code == 400
    assert expired.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }


# -- github profile -----------------------------------------------------------------------


def test_github_plugin_signs_in_rotates_and_revokes() -> None:
    with Emulator(access_token_lifetime=28800, refresh_token_lifetime=15897600) as emu:
        spec = emu.point(installed("github"))
        with client(emu, spec) as kt:
            token = sign_in(kt, emu, "github")
            old = token.tokens
            # /user has email null, so the profile came from /user/emails.
            assert token.user is not None and token.user.email == "ada@example.com"
            assert secret(old.access_token).startswith("ghu_")
            assert secret(old.refresh_token).startswith("ghr_")
            assert old.refresh_token_expires_at is not None
            new = kt.refresh(old)
            assert secret(new.refresh_token) != secret(old.refresh_token)
            # The old access token dies with the rotation ("that refresh token and the old user
            # access token will no longer work"), GitHub Docs, "Refreshing user access tokens":
            # https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens
            assert userinfo_status(emu, "github", secret(old.access_token)) == 401
            kt.revoke(new)
        assert userinfo_status(emu, "github", secret(new.access_token)) == 401
        with client(emu, spec) as replay, pytest.raises(keyturn.OAuthError) as failure:
            replay.refresh(old)
        counters = emu.counters("github")
    assert (failure.value.status, failure.value.error) == (200, "bad_refresh_token")
    assert failure.value.permanent is True
    assert counters["revoke"] == 1
    assert counters["reuse_detected"] == 0  # GitHub rotates without family revocation


def test_github_answers_form_encoded_unless_json_is_accepted() -> None:
    with Emulator(access_token_lifetime=28800) as emu:
        code, verifier = raw_code(emu, "github", scope="repo gist")
        form = {"code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
        # No grant_type, as in the exchange parameters of
        # https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps
        response = token_post(emu, "github", form, accept_json=False)
        assert response.headers["content-type"].startswith("application/x-www-form-urlencoded")
        data = keyturn.HttpResponse(
            200, {"content-type": "application/x-www-form-urlencoded"}, response.content
        ).data()
        assert data is not None
        assert (data["scope"], data["token_type"], data["expires_in"]) == (
            "repo,gist",
            "bearer",
            "28800",
        )
        refused = raw_refresh(emu, "github", data["refresh_token"] + "x")
        assert (refused.status_code, refused.json()["error"]) == (200, "bad_refresh_token")
        as_form = token_post(
            emu, "github", {"grant_type": "refresh_token", "refresh_token": "x"}, accept_json=False
        )
        assert as_form.status_code == 200
        assert as_form.text.startswith("error=bad_refresh_token&")
        vnd = httpx.post(
            emu.endpoints("github")["token_endpoint"],
            headers={"Accept": "application/vnd.github.v3+json"},
        )
        assert vnd.status_code == 406


def test_github_user_endpoints_and_revoke_by_basic_auth() -> None:
    with Emulator(access_token_lifetime=None) as emu:
        data = raw_tokens(emu, "github", scope="")
        # No expiry: "If you disabled expiration of user access tokens, this parameter will be
        # omitted",
        # https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app
        assert "refresh_token" not in data and "expires_in" not in data
        assert data["scope"] == ""
        root = emu.endpoints("github")["userinfo_endpoint"]
        auth = {"Authorization": f"token {data['access_token']}"}
        user = httpx.get(root, headers=auth).json()
        assert user["email"] is None and isinstance(user["id"], int)
        emails = httpx.get(root + "/emails", headers=auth).json()
        assert emails[0]["primary"] is True and emails[0]["email"] == "ada@example.com"
        grant_url = emu.endpoints("github")["revocation_endpoint"].format(
            client_id=emu.credentials.client_id
        )
        body = {"access_token": data["access_token"]}
        basic = (emu.credentials.client_id, secret(emu.credentials.client_secret))
        wrong = httpx.request("DELETE", grant_url, json=body, auth=(basic[0], "wrong"))
        done = httpx.request("DELETE", grant_url, json=body, auth=basic)
        again = httpx.request("DELETE", grant_url, json=body, auth=basic)
    assert (wrong.status_code, done.status_code, again.status_code) == (401, 204, 404)


# -- errors common to every profile -------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "status", "error"),
    [
        ("google", 401, "invalid_client"),
        ("github", 200, "incorrect_client_credentials"),
        ("strict", 401, "invalid_client"),
    ],
)
def test_wrong_client_secret(emu: Emulator, profile: str, status: int, error: str) -> None:
    response = httpx.post(
        emu.endpoints(profile)["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": "unknown"},
        headers={"Accept": "application/json"},
        auth=(emu.credentials.client_id, "not-the-secret"),
    )
    assert (response.status_code, response.json()["error"]) == (status, error)
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")
    assert emu.counters(profile)[error] == 1


@pytest.mark.parametrize(
    ("profile", "status", "error"),
    [
        ("google", 400, "invalid_grant"),
        ("github", 200, "bad_refresh_token"),
        ("strict", 400, "invalid_grant"),
    ],
)
def test_provider_side_revocation_makes_refresh_fail(
    emu: Emulator, profile: str, status: int, error: str
) -> None:
    first = raw_tokens(emu, profile)
    second = raw_tokens(emu, profile)
    bob = raw_tokens(emu, profile, user="bob@example.com")
    assert emu.revoke_grants(profile, user="ada@example.com") == 2
    for data in (first, second):
        response = raw_refresh(emu, profile, data["refresh_token"])
        assert (response.status_code, response.json()["error"]) == (status, error)
        assert userinfo_status(emu, profile, data["access_token"]) == 401
    assert raw_refresh(emu, profile, bob["refresh_token"]).json()["access_token"]
    assert emu.counters(profile)["grants_revoked"] == 2


def test_userinfo_refuses_unknown_tokens(emu: Emulator) -> None:
    for profile in emu.profiles:
        if PROFILES[profile].envelope:
            # Slack's Web API: HTTP 200 and ok:false (keyturn-slack's profile).
            url = emu.endpoints(profile)["userinfo_endpoint"]
            answer = httpx.get(url, headers={"Authorization": "Bearer not-a-token-example"})
            assert (answer.status_code, answer.json()) == (
                200,
                {"ok": False, "error": "invalid_auth"},
            )
            continue
        if profile == "apple":  # no userinfo endpoint: the profile is in the ID token
            assert "userinfo_endpoint" not in emu.endpoints(profile)
            continue
        assert userinfo_status(emu, profile, "not-a-token-example") == 401


# -- authorize ----------------------------------------------------------------------------


def test_authorize_refuses_unknown_client_and_foreign_redirect(emu: Emulator) -> None:
    with client(emu, emu.point(installed("google"))) as kt:
        good = kt.authorize_url("google", REDIRECT).url
        foreign = kt.authorize_url("google", "https://app.example/callback").url
    with pytest.raises(AuthorizeRefused) as unknown:
        emu.authorize(good.replace(emu.credentials.client_id, "someone-else"))
    assert (unknown.value.status, unknown.value.error) == (400, "invalid_client")
    with pytest.raises(AuthorizeRefused) as mismatch:
        emu.authorize(foreign)
    assert mismatch.value.error == "redirect_uri_mismatch"
    callback = emu.authorize(good.replace("scope=openid", "scope=openid%20nonsense"))
    assert callback["error"] == "invalid_scope"


def test_consent_page_allow_and_deny() -> None:
    with Emulator(consent="page") as emu:
        spec = emu.point(installed("google"))
        with client(emu, spec) as kt:
            request = kt.authorize_url("google", REDIRECT)
        page = httpx.get(request.url)
        assert page.headers["content-type"].startswith("text/html")
        assert ">Allow</button>" in page.text and ">Deny</button>" in page.text
        allowed = emu.authorize(request.url)
        denied = emu.authorize(request.url, deny=True)
        counters = emu.counters("google")
    assert "code" in allowed
    assert denied["error"] == "access_denied"
    assert denied["state"] == secret(request.state)
    assert "code" not in denied
    assert counters["consent_denied"] == 1


# -- faults -------------------------------------------------------------------------------


def test_faults_answer_503_and_surface_as_transient(emu: Emulator) -> None:
    spec = emu.spec("strict")
    with client(emu, spec) as kt:
        tokens = sign_in(kt, emu, "strict").tokens
    emu.configure(fault_rate=1.0)
    with client(emu, spec) as kt, pytest.raises(keyturn.InvalidResponseError) as failure:
        kt.refresh(tokens)
    assert (failure.value.status, failure.value.permanent) == (503, False)
    assert emu.counters("strict")["fault_5xx"] == 1
    emu.configure(fault_rate=0.0)
    with client(emu, spec) as kt:
        assert kt.refresh(tokens).refresh_token is not None


def test_dropped_refresh_is_a_network_error_and_not_processed(emu: Emulator) -> None:
    spec = emu.spec("strict")
    with client(emu, spec) as kt:
        tokens = sign_in(kt, emu, "strict").tokens
    emu.configure(drop_rate=1.0)
    with client(emu, spec) as kt, pytest.raises(keyturn.TransportError) as failure:
        kt.refresh(tokens)
    assert failure.value.permanent is False
    emu.configure(drop_rate=0.0)
    with client(emu, spec) as kt:
        refreshed = kt.refresh(tokens)  # the same refresh token still works: no rotation
    assert secret(refreshed.refresh_token) != secret(tokens.refresh_token)
    counters = emu.counters("strict")
    assert (counters["dropped"], counters["refresh_token"], counters["reuse_detected"]) == (
        1,
        1,
        0,
    )


def test_a_lost_answer_is_processed_then_the_connection_closes_without_one(
    emu: Emulator,
) -> None:
    spec = emu.spec("strict")
    with client(emu, spec) as kt:
        tokens = sign_in(kt, emu, "strict").tokens
    emu.reset_counters()
    emu.configure(lost_answer_rate=1.0)
    with client(emu, spec) as kt, pytest.raises(keyturn.TransportError) as failure:
        kt.refresh(tokens)
    assert (failure.value.status, failure.value.permanent) == (None, False)
    # The provider did its part: the refresh token rotated, only the answer never came.
    assert emu.store.lookup("strict", secret(tokens.refresh_token)) is None
    counters = emu.counters("strict")
    assert (counters["token_requests"], counters["refresh_token"]) == (1, 1)
    assert (counters["lost_answers"], counters["dropped"], counters["errors"]) == (1, 0, 0)
    emu.configure(lost_answer_rate=0.0)
    # The client still holds the spent token: the strict profile sees it come back.
    with client(emu, spec) as kt, pytest.raises(keyturn.OAuthError) as reused:
        kt.refresh(tokens)
    assert (reused.value.error, reused.value.permanent) == ("invalid_grant", True)
    counters = emu.counters("strict")
    assert (counters["reuse_detected"], counters["family_revoked"]) == (1, 1)


def test_a_lost_answer_sends_not_a_single_byte(emu: Emulator) -> None:
    emu.configure(lost_answer_rate=1.0)
    url = httpx.URL(emu.endpoints("strict")["token_endpoint"])
    body = b"grant_type=refresh_token&refresh_token=unknown"
    request = (
        f"POST {url.raw_path.decode()} HTTP/1.1\r\nHost: {url.netloc.decode()}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert received == b""
    # The request was read and answered inside the emulator (an error: the token is
    # unknown), and that answer was thrown away.
    assert emu.counters("strict")["lost_answers"] == 1
    assert emu.counters("strict")["errors"] == 1


def test_lost_answers_and_drops_share_one_draw_so_seeded_runs_keep_their_drops() -> None:
    # Adding lost answers to a seeded run leaves its drops and 503s where they were.
    def verdicts(**knobs: Any) -> list[str]:
        dice = Dice(11)
        return [dice.roll(Knobs(seed=11, **knobs)) for _ in range(400)]

    before = verdicts(drop_rate=0.1, fault_rate=0.1)
    after = verdicts(drop_rate=0.1, fault_rate=0.1, lost_answer_rate=0.2)
    assert {"pass", "fault", "drop"} == set(before)
    assert "lose" in after
    assert all(a == b for a, b in zip(before, after, strict=True) if b in ("drop", "fault"))
    assert [i for i, v in enumerate(before) if v == "drop"] == [
        i for i, v in enumerate(after) if v == "drop"
    ]
    with pytest.raises(ValueError, match="drop_rate \\+ lost_answer_rate"):
        Knobs(drop_rate=0.6, lost_answer_rate=0.5)


def fault_pattern(seed: int) -> list[int]:
    with Emulator(fault_rate=0.5, seed=seed) as emu:
        url = emu.endpoints("strict")["token_endpoint"]
        return [httpx.post(url, data={}).status_code for _ in range(30)]


@pytest.mark.slow
def test_seeded_faults_are_reproducible() -> None:
    first = fault_pattern(7)
    assert first == fault_pattern(7)
    assert 503 in first and 401 in first


def test_knobs_are_checked(emu: Emulator) -> None:
    with pytest.raises(TypeError, match="unknown emulator knob"):
        emu.configure(fault_ratio=0.5)
    with pytest.raises(ValueError, match="fault_rate"):
        emu.configure(fault_rate=1.5)
    with pytest.raises(ValueError, match="latency"):
        Emulator(latency=-1)
    assert emu.configure(latency=0.0, access_token_lifetime=60).access_token_lifetime == 60


# -- controls, pointing, concurrency, life cycle -------------------------------------------


@pytest.mark.parametrize("profile", ["google", "github", "strict"])
def test_a_grant_made_without_requests_answers_like_a_code_exchange(
    emu: Emulator, profile: str
) -> None:
    exchanged = raw_tokens(emu, profile, scope="openid email" if profile != "github" else "user")
    emu.reset_counters()
    granted = emu.grant(profile, user="grace@example.com", scopes=["openid", "email"])
    assert set(granted) == set(exchanged) - {"id_token"}
    assert (granted["token_type"], granted["expires_in"]) == (
        exchanged["token_type"],
        exchanged["expires_in"],
    )
    assert granted["scope"] == PROFILES[profile].scope_separator.join(["openid", "email"])
    assert emu.counters(profile)["token_requests"] == 0  # nothing reached the provider
    assert emu.counters(profile)["authorization_code"] == 0
    assert userinfo_status(emu, profile, granted["access_token"]) == 200
    refreshed = raw_refresh(emu, profile, granted["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert emu.counters(profile)["refresh_token"] == 1


def test_granted_tokens_belong_to_a_family_like_any_other(emu: Emulator) -> None:
    granted = emu.grant("strict", user="grace@example.com")
    assert granted["scope"] == "openid email profile"
    url = emu.endpoints("strict")["userinfo_endpoint"]
    me = httpx.get(url, headers={"Authorization": f"Bearer {granted['access_token']}"}).json()
    assert me["email"] == "grace@example.com"
    first = raw_refresh(emu, "strict", granted["refresh_token"])
    assert first.status_code == 200
    reused = raw_refresh(emu, "strict", granted["refresh_token"])
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    counters = emu.counters("strict")
    assert (counters["reuse_detected"], counters["family_revoked"]) == (1, 1)
    assert userinfo_status(emu, "strict", first.json()["access_token"]) == 401
    other = emu.grant("strict")  # another family: untouched
    assert userinfo_status(emu, "strict", other["access_token"]) == 200
    with pytest.raises(keyturn.ConfigurationError, match="no profile"):
        emu.grant("nowhere")


@pytest.mark.slow
def test_an_idle_connection_is_kept_longer_than_a_client_pool_keeps_it(emu: Emulator) -> None:
    # httpx keeps an idle pooled connection for 5 s; a server that closes it at 5 s too
    # races a late client into a network error. The emulator keeps it for a minute.
    port = int(emu.base_url.rsplit(":", 1)[1])
    # the control routes answer only to the emulator's own host and port
    request = f"GET /_emulator/state HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for _ in range(2):
            sock.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(65536)
                assert chunk, "the emulator closed the idle connection"
                head += chunk
            assert head.startswith(b"HTTP/1.1 200")
            length = int(re.search(rb"content-length: (\d+)", head.lower())[1])  # type: ignore[index]
            body = head.split(b"\r\n\r\n", 1)[1]
            while len(body) < length:
                body += sock.recv(65536)
            time.sleep(6)


def test_state_and_controls_over_http(emu: Emulator) -> None:
    data = raw_tokens(emu, "google")
    state = httpx.get(emu.base_url + "/_emulator/state").json()
    assert state["profiles"]["google"]["counters"]["authorization_code"] == 1
    assert state["counters"]["authorization_code"] == 1
    assert state["profiles"]["github"]["endpoints"] == emu.endpoints("github")
    revoked = httpx.post(emu.base_url + "/_emulator/revoke", json={"profile": "google"})
    assert revoked.json() == {"revoked": 1}
    assert raw_refresh(emu, "google", data["refresh_token"]).status_code == 400
    configured = httpx.post(emu.base_url + "/_emulator/configure", json={"fault_rate": 0.25})
    assert configured.json()["knobs"]["fault_rate"] == 0.25
    assert emu.knobs.fault_rate == 0.25
    bad = httpx.post(emu.base_url + "/_emulator/configure", json={"fault_rate": 7})
    assert bad.status_code == 400
    httpx.post(emu.base_url + "/_emulator/reset", json={})
    assert emu.counters()["authorization_code"] == 0


def foreign_hosts(emu: Emulator) -> list[str]:
    port = int(emu.base_url.rsplit(":", 1)[1])
    return [f"attacker.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1", "localhost"]


# What a page of another origin can make a browser send: "simple" requests (text/plain,
# form or no content type, which need no CORS preflight), or anything that names a foreign
# Origin or comes from another site.
CROSS_ORIGIN = {
    "text-plain": {"content": b'{"fault_rate": 1}', "headers": {"Content-Type": "text/plain"}},
    "form": {"data": {"fault_rate": "1"}},
    "multipart": {"files": {"fault_rate": ("f", b"1")}},
    "no-content-type": {"content": b'{"fault_rate": 1}'},
    "foreign-origin": {
        "json": {"fault_rate": 1},
        "headers": {"Origin": "http://attacker.example"},
    },
    "null-origin": {"json": {"fault_rate": 1}, "headers": {"Origin": "null"}},
    "other-port-origin": {
        "json": {"fault_rate": 1},
        "headers": {"Origin": "http://127.0.0.1:9"},
    },
    "cross-site": {"json": {"fault_rate": 1}, "headers": {"Sec-Fetch-Site": "cross-site"}},
    "same-site": {"json": {"fault_rate": 1}, "headers": {"Sec-Fetch-Site": "same-site"}},
}


@pytest.mark.parametrize("request_kwargs", CROSS_ORIGIN.values(), ids=CROSS_ORIGIN.keys())
@pytest.mark.parametrize("route", ["configure", "revoke", "reset"])
def test_control_routes_refuse_what_a_page_of_another_origin_can_send(
    emu: Emulator, route: str, request_kwargs: dict[str, Any]
) -> None:
    raw_tokens(emu, "strict")
    refused = httpx.post(f"{emu.base_url}/_emulator/{route}", **request_kwargs)
    assert refused.status_code in (403, 415), refused.text
    assert "error" in refused.json()
    # Nothing happened.
    assert emu.knobs.fault_rate == 0.0
    assert emu.counters("strict")["authorization_code"] == 1
    assert emu.counters("strict")["grants_revoked"] == 0


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://attacker.example"}, {"Sec-Fetch-Site": "cross-site"}],
    ids=["foreign-origin", "cross-site"],
)
def test_the_state_is_not_served_to_another_origin(emu: Emulator, headers: dict[str, str]) -> None:
    refused = httpx.get(emu.base_url + "/_emulator/state", headers=headers)
    assert refused.status_code == 403
    assert "counters" not in refused.json()


@pytest.mark.parametrize("route", ["state", "configure", "revoke", "reset"])
def test_control_routes_refuse_a_host_that_is_not_the_emulator(emu: Emulator, route: str) -> None:
    # A page on a name the attacker re-points at 127.0.0.1 (DNS rebinding) is same-origin
    # for the browser; only its Host header gives it away.
    raw_tokens(emu, "strict")
    for host in foreign_hosts(emu):
        headers = {"Host": host}
        if route == "state":
            refused = httpx.get(f"{emu.base_url}/_emulator/state", headers=headers)
        else:
            refused = httpx.post(
                f"{emu.base_url}/_emulator/{route}", json={"fault_rate": 1}, headers=headers
            )
        assert refused.status_code == 400, (host, refused.text)
        assert "counters" not in refused.json()
    assert emu.knobs.fault_rate == 0.0
    assert emu.counters("strict")["authorization_code"] == 1
    assert emu.counters("strict")["grants_revoked"] == 0


def test_control_routes_answer_the_emulator_own_host_and_origin(emu: Emulator) -> None:
    port = int(emu.base_url.rsplit(":", 1)[1])
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
        origin = "http://" + host
        for headers in (
            {"Host": host},
            {"Host": host, "Origin": origin, "Sec-Fetch-Site": "same-origin"},
            {"Host": host, "Sec-Fetch-Site": "none"},
        ):
            state = httpx.get(emu.base_url + "/_emulator/state", headers=headers)
            assert state.status_code == 200, (headers, state.text)
            configured = httpx.post(
                emu.base_url + "/_emulator/configure",
                content=b'{"latency": 0}',
                headers={**headers, "Content-Type": "application/json; charset=utf-8"},
            )
            assert configured.status_code == 200, (headers, configured.text)
    assert httpx.post(emu.base_url + "/_emulator/revoke", json={}).json() == {"revoked": 0}


@pytest.mark.parametrize("route", ["configure", "revoke"])
def test_a_control_body_that_is_not_a_readable_json_object_is_a_400(
    emu: Emulator, route: str
) -> None:
    url = f"{emu.base_url}/_emulator/{route}"
    for body in (b"[" * 20_000, b"[]", b"{", b"\xff", b'{"profile": 5}'):
        answer = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, (route, body[:10], answer.text)
        assert "error" in answer.json()


def test_the_avatar_is_served_to_pages_of_any_origin(emu: Emulator) -> None:
    # The app under test shows it with <img src>, from its own origin.
    picture = httpx.get(
        emu.base_url + "/_emulator/avatar/ada.svg",
        headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"},
    )
    assert picture.status_code == 200
    assert picture.headers["content-type"].startswith("image/svg+xml")


def test_point_moves_every_endpoint_and_keeps_the_rest(emu: Emulator) -> None:
    original = installed("google")
    pointed = emu.point(original)
    for field in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint"):
        assert getattr(pointed, field).startswith(emu.base_url + "/google/")
    assert pointed.revocation_endpoint == emu.base_url + "/google/revoke"
    assert pointed.issuer == emu.issuer("google")
    assert (pointed.id, pointed.authorize_params) == (original.id, original.authorize_params)
    with pytest.raises(keyturn.ConfigurationError, match="profile"):
        emu.point(original.model_copy(update={"id": "bitbucket"}))
    with pytest.raises(keyturn.ConfigurationError, match="keyturn-github"):
        emu.spec("github")
    assert emu.point(original, profile="strict").token_endpoint.endswith("/strict/token")


@pytest.mark.slow
def test_thousand_refreshes_from_fifty_threads_all_answered(emu: Emulator) -> None:
    data = raw_tokens(emu, "google")
    url = emu.endpoints("google")["token_endpoint"]
    form = {
        "grant_type": "refresh_token",
        "refresh_token": data["refresh_token"],
        "client_id": emu.credentials.client_id,
        "client_secret": secret(emu.credentials.client_secret),
    }

    def worker(_: int) -> list[str]:
        with httpx.Client(timeout=60) as http:
            answers = [http.post(url, data=form) for _ in range(20)]
        assert {answer.status_code for answer in answers} == {200}
        return [answer.json()["access_token"] for answer in answers]

    with ThreadPoolExecutor(max_workers=50) as pool:
        tokens = [token for batch in pool.map(worker, range(50)) for token in batch]
    assert len(set(tokens)) == 1000
    assert emu.counters("google")["refresh_token"] == 1000


async def test_concurrent_reuse_of_one_rotating_token_succeeds_once(emu: Emulator) -> None:
    data = raw_tokens(emu, "strict")
    url = emu.endpoints("strict")["token_endpoint"]
    form = {"grant_type": "refresh_token", "refresh_token": data["refresh_token"]}
    auth = (emu.credentials.client_id, secret(emu.credentials.client_secret))
    async with httpx.AsyncClient(auth=auth, timeout=60) as http:
        responses = await asyncio.gather(*(http.post(url, data=form) for _ in range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1
    assert statuses.count(400) == 49
    counters = emu.counters("strict")
    # The first late request revokes the family; the rest find a dead token.
    assert (counters["refresh_token"], counters["reuse_detected"]) == (1, 1)
    assert counters["family_revoked"] == 1


def test_stop_is_idempotent_and_leaves_no_thread() -> None:
    emu = Emulator().start()
    url = emu.base_url
    assert any(t.name.startswith("keyturn-emulator") for t in threading.enumerate())
    emu.stop()
    emu.stop()
    assert not any(t.name.startswith("keyturn-emulator") for t in threading.enumerate())
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_emulator/state")
    with pytest.raises(keyturn.ConfigurationError, match="not running"):
        _ = emu.base_url


def test_client_secret_basic_and_post_both_authenticate(emu: Emulator) -> None:
    code, verifier = raw_code(emu, "google")
    pair = f"{emu.credentials.client_id}:{secret(emu.credentials.client_secret)}"
    response = httpx.post(
        emu.endpoints("google")["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()},
    )
    assert response.status_code == 200
    assert response.json()["access_token"].startswith("ya29.")


# -- the command line ---------------------------------------------------------------------


@pytest.mark.slow
def test_cli_starts_prints_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keyturn",
            "emulator",
            "--port",
            "0",
            "--fault-rate",
            "0",
            "--lost-answer-rate",
            "0.5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("keyturn emulator at http://127.0.0.1:")
        base_url = first.split()[-1]
        lines = [process.stdout.readline() for _ in range(4)]
        assert any("client_secret" in line for line in lines)
        state = httpx.get(base_url + "/_emulator/state", timeout=10).json()
        assert state["base_url"] == base_url
        assert state["knobs"]["lost_answer_rate"] == 0.5
        # authorize, token, userinfo, revoke, the JWKS and the discovery document
        assert json.dumps(state["profiles"]["google"]["endpoints"]).count(base_url) == 6
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
