"""keyturn-okta: its settings, its cassettes and its emulator profile.

* Settings: the spec is a template; a missing domain is a ConfigurationError naming
  ``KEYTURN_OKTA_DOMAIN``; a value that is not a host, or not one path segment, is refused
  without being quoted; ``authorization_server=org`` gives the org server's URLs; rotation
  and its grace period are stated per deployment.
* Cassettes (cassettes/okta/, written from Okta's documentation; provenance in
  cassettes/README.md), each replayed four ways: Keyturn and AsyncKeyturn over httpx and
  httpx2; then keyturn's conformance suite on the same cassettes.
* The emulator's ``okta`` profile: reuse detection with Okta's 30-second grace period
  (https://developer.okta.com/docs/guides/refresh-tokens/refresh-token-rotation/), and
  keyturn's own reuse window, which never sends a rotated token again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import keyturn
from keyturn.idtoken import unverified_claims
from keyturn_emulator import Emulator
from keyturn_okta import OKTA
from pytest_keyturn import ProviderConformance
from pytest_keyturn.cassettes import make_vcr
from tests.conftest import CASSETTES, CLIENT_ID, FakeClock

from ._replay import Connect, Driver, Failure, Replay, refresh_failure_test, replay_fixtures

DOMAIN = "subdomain.okta.com"
SERVER = f"https://{DOMAIN}/oauth2/default"
REDIRECT_URI = "https://app.example.com/api/auth/callback/okta"
NONCE = "n-0S6_WzA2Mj"
SUB = "00uid4BxXw6I6TV4m0g3"
#: Placeholders in the cassettes (keyturn's scrubber writes this form).
EXCHANGED_ACCESS_TOKEN = "REDACTED-0a764fdb"
EXCHANGED_REFRESH_TOKEN = "REDACTED-5b9a0546"
REFRESHED_ACCESS_TOKEN = "REDACTED-5144d77d"
ROTATED_ACCESS_TOKEN = "REDACTED-f9be62c8"
ROTATED_REFRESH_TOKEN = "REDACTED-544b41ca"
SCOPES = ("openid", "profile", "email", "offline_access")

connect, driver = replay_fixtures(
    Replay(
        "okta",
        make_vcr(CASSETTES / "okta"),
        REDIRECT_URI,
        code="okta-code-from-the-callback",
        access_lifetime=3600,
        authorize={"nonce": NONCE},
        settings={"domain": DOMAIN},
    )
)


def deployed(settings: dict[str, Any] | None = None, **environ: str) -> keyturn.ProviderSpec:
    """The spec a client makes of the template with ``settings`` and ``environ``."""
    given = {"okta": settings} if settings is not None else {}
    with keyturn.Keyturn(settings=given, environ=environ) as kt:
        return kt.provider("okta")


def due_tokens(clock: FakeClock) -> keyturn.TokenSet:
    """Tokens as the exchange left them, now due for a refresh."""
    return keyturn.TokenSet.model_validate(
        {
            "provider": "okta",
            "access_token": "access-token-from-sign-in",
            "expires_at": int(clock.now) - 1,
            "refresh_token": EXCHANGED_REFRESH_TOKEN,
            "scope": SCOPES,
        }
    )


# -- settings -------------------------------------------------------------------------------


def test_the_registered_spec_is_a_template_of_domain_and_server() -> None:
    with keyturn.Keyturn(environ={}) as kt:
        template = kt.provider("okta", deployed=False)
    assert template.needs_deployment
    assert template.token_endpoint == "https://{domain}/oauth2/{authorization_server}/v1/token"
    assert [s.name for s in template.settings] == [
        "domain",
        "authorization_server",
        "rotation",
        "refresh_reuse_grace",
    ]


def test_a_missing_domain_names_its_variable() -> None:
    with (
        keyturn.Keyturn(environ={}) as kt,
        pytest.raises(keyturn.ConfigurationError, match="KEYTURN_OKTA_DOMAIN") as caught,
    ):
        kt.provider("okta")
    assert "settings={'okta': {'domain': ...}}" in str(caught.value)


def test_the_default_authorization_server_from_the_environment() -> None:
    spec = deployed(KEYTURN_OKTA_DOMAIN="acme.okta.com")
    assert spec.authorization_endpoint == "https://acme.okta.com/oauth2/default/v1/authorize"
    assert spec.token_endpoint == "https://acme.okta.com/oauth2/default/v1/token"
    assert spec.userinfo_endpoint == "https://acme.okta.com/oauth2/default/v1/userinfo"
    assert spec.revocation_endpoint == "https://acme.okta.com/oauth2/default/v1/revoke"
    assert spec.end_session_endpoint == "https://acme.okta.com/oauth2/default/v1/logout"
    assert spec.jwks_uri == "https://acme.okta.com/oauth2/default/v1/keys"
    assert spec.issuer == "https://acme.okta.com/oauth2/default"
    assert spec.deployment["authorization_server"] == "default"


def test_a_custom_authorization_server_and_a_value_in_code_over_the_environment() -> None:
    spec = deployed(
        {"domain": "ACME.okta.com", "authorization_server": "aus59pz16qgMvHvBS0g7"},
        KEYTURN_OKTA_DOMAIN="other.okta.com",
    )
    assert spec.issuer == "https://acme.okta.com/oauth2/aus59pz16qgMvHvBS0g7"
    assert spec.token_endpoint == "https://acme.okta.com/oauth2/aus59pz16qgMvHvBS0g7/v1/token"


def test_the_org_authorization_server_has_no_server_in_its_urls() -> None:
    # Okta's org server: issuer https://{domain}, endpoints under /oauth2/v1/ (the
    # OrgASOidcMetadata example, cassettes/oidc/okta_org.yaml).
    spec = deployed({"domain": "subdomain.okta.com", "authorization_server": "org"})
    assert spec.issuer == "https://subdomain.okta.com"
    assert spec.authorization_endpoint == "https://subdomain.okta.com/oauth2/v1/authorize"
    assert spec.token_endpoint == "https://subdomain.okta.com/oauth2/v1/token"
    assert spec.userinfo_endpoint == "https://subdomain.okta.com/oauth2/v1/userinfo"
    assert spec.revocation_endpoint == "https://subdomain.okta.com/oauth2/v1/revoke"
    assert spec.end_session_endpoint == "https://subdomain.okta.com/oauth2/v1/logout"
    assert spec.jwks_uri == "https://subdomain.okta.com/oauth2/v1/keys"
    assert spec.rotation == "detect_reuse" and spec.refresh_reuse_grace == 30


def test_the_org_server_agrees_with_oktas_documented_org_metadata() -> None:
    import json

    import yaml

    document = yaml.safe_load((CASSETTES / "oidc" / "okta_org.yaml").read_text())
    metadata = json.loads(document["interactions"][0]["response"]["body"]["string"])
    spec = deployed({"domain": "subdomain.okta.com", "authorization_server": "org"})
    for field in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
        assert getattr(spec, field) == metadata[field], field
    assert spec.end_session_endpoint == metadata["end_session_endpoint"]
    assert spec.revocation_endpoint == metadata["revocation_endpoint"]


@pytest.mark.parametrize(
    "domain",
    [
        "acme.okta.com/evil",
        "https://acme.okta.com",
        "acme.okta.com?x=1",
        "acme.okta.com#frag",
        "evil.example@acme.okta.com",
        "acme okta.com",
        "-acme.okta.com",
    ],
)
def test_a_domain_that_is_not_a_host_is_refused_unquoted(domain: str) -> None:
    with pytest.raises(keyturn.ConfigurationError) as caught:
        deployed({"domain": domain})
    message = str(caught.value)
    assert "domain" in message and "not a host name" in message
    assert domain not in message


@pytest.mark.parametrize("server", ["..", "a/b", "default?x", "{domain}", "de fault"])
def test_an_authorization_server_that_is_not_one_segment_is_refused(server: str) -> None:
    with pytest.raises(keyturn.ConfigurationError, match="authorization_server") as caught:
        deployed({"domain": "acme.okta.com", "authorization_server": server})
    assert server not in str(caught.value)


def test_rotation_is_stated_per_deployment() -> None:
    default = deployed({"domain": "acme.okta.com"})
    assert (default.rotation, default.refresh_reuse_grace) == ("detect_reuse", 30.0)
    assert default.rotates_refresh_tokens
    persistent = deployed({"domain": "acme.okta.com", "rotation": "none"})
    assert (persistent.rotation, persistent.refresh_reuse_grace) == ("none", 0.0)
    assert not persistent.rotates_refresh_tokens
    shorter = deployed(
        {"domain": "acme.okta.com"},
        KEYTURN_OKTA_REFRESH_REUSE_GRACE="5",
        KEYTURN_OKTA_ROTATION="detect_reuse",
    )
    assert shorter.refresh_reuse_grace == 5.0


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"refresh_reuse_grace": "61"}, "over 60 seconds"),
        ({"refresh_reuse_grace": "soon"}, "not a number of seconds"),
        ({"rotation": "sometimes"}, "is not one of"),
        ({"tenant": "acme"}, "which it does not have"),
    ],
)
def test_bad_rotation_settings_are_refused(settings: dict[str, str], expected: str) -> None:
    with pytest.raises(keyturn.ConfigurationError, match=expected):
        deployed({"domain": "acme.okta.com", **settings})


# -- cassettes ------------------------------------------------------------------------------


async def test_exchange_code_reads_oktas_answer_and_verifies_the_id_token(
    driver: Driver, clock: FakeClock
) -> None:
    request = driver.authorize_url(nonce=NONCE)
    assert request.url.startswith(f"{SERVER}/v1/authorize?")
    assert "scope=openid%20profile%20email%20offline_access" in request.url
    with driver.play("exchange_code"):
        tokens = await driver.exchange_code(request, "okta-code-from-the-callback")
    assert tokens.access_token.get_secret_value() == EXCHANGED_ACCESS_TOKEN
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == EXCHANGED_REFRESH_TOKEN
    assert tokens.expires_at == clock.now + 3600
    assert tokens.scope == SCOPES
    assert tokens.id_token is not None
    claims = unverified_claims(tokens.id_token.get_secret_value())
    assert (claims["iss"], claims["aud"], claims["sub"], claims["nonce"]) == (
        SERVER,
        CLIENT_ID,
        SUB,
        NONCE,
    )


async def test_exchange_code_refuses_an_id_token_for_another_nonce(driver: Driver) -> None:
    request = driver.authorize_url(nonce="not-the-nonce-of-the-id-token")
    with driver.play("exchange_code"), pytest.raises(keyturn.IdTokenError, match="nonce"):
        await driver.exchange_code(request, "okta-code-from-the-callback")


async def test_a_persistent_token_app_keeps_its_refresh_token(
    connect: Connect, clock: FakeClock
) -> None:
    # "Use persistent token": Okta answers a refresh with a new access token only.
    persistent = connect(settings={"rotation": "none"})
    old = due_tokens(clock)
    with persistent.play("refresh_ok"):
        tokens = await persistent.refresh(old)
    assert tokens.access_token.get_secret_value() == REFRESHED_ACCESS_TOKEN
    assert tokens.refresh_token == old.refresh_token
    assert tokens.id_token is not None


async def test_a_rotating_app_replaces_the_refresh_token(driver: Driver, clock: FakeClock) -> None:
    old = due_tokens(clock)
    with driver.play("refresh_rotated"):
        tokens = await driver.refresh(old)
    assert tokens.access_token.get_secret_value() == ROTATED_ACCESS_TOKEN
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == ROTATED_REFRESH_TOKEN


test_refresh_failure_is_classified = refresh_failure_test(
    {
        "refresh_invalid_grant": Failure(
            keyturn.OAuthError,
            "invalid_grant",
            400,
            True,
            "The refresh token is invalid or expired.",
        ),
        "refresh_transient": Failure(
            keyturn.InvalidResponseError,
            "http_error",
            503,
            False,
            "HTTP 503 with a text/html body and no OAuth error",
        ),
    },
    due_tokens,
)


async def test_userinfo_reads_oktas_claims(driver: Driver, clock: FakeClock) -> None:
    with driver.play("userinfo"):
        profile = await driver.userinfo(due_tokens(clock))
    assert (profile.id, profile.name, profile.email) == (SUB, "Example User", "user@example.com")
    assert profile.email_verified is True


async def test_revoke_sends_the_refresh_token_with_basic_auth(
    driver: Driver, clock: FakeClock
) -> None:
    with driver.play("revoke") as cassette:
        assert await driver.revoke(due_tokens(clock)) is None
    # client_secret_basic: the form has no client_id or secret (the cassette checks it), the
    # credentials travel in the Authorization header, which the cassette does not keep.
    assert "client_secret" not in cassette.requests[0].body.decode()


async def test_jwt_after_oktas_invalid_grant_asks_for_a_new_sign_in(
    driver: Driver, clock: FakeClock
) -> None:
    token = await driver.signed_in_jwt(clock)
    failed = await driver.jwt_fails_for_good(token, "refresh_invalid_grant")
    assert failed.refresh_failure is not None
    assert failed.refresh_failure.status == 400


async def test_jwt_after_a_503_keeps_the_session(driver: Driver, clock: FakeClock) -> None:
    token = await driver.signed_in_jwt(clock)
    await driver.jwt_fails_for_now(token, "refresh_transient")


class TestOktaConformance(ProviderConformance):
    provider = "okta"
    cassettes = CASSETTES / "okta"
    client_id = CLIENT_ID
    settings = {"domain": DOMAIN}


# -- the emulator's okta profile: the grace period -------------------------------------------


@pytest.fixture
def emu_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(emu_clock: FakeClock) -> Iterator[Emulator]:
    with Emulator(clock=emu_clock) as emulator:
        yield emulator


def raw_refresh(emu: Emulator, refresh_token: str) -> httpx.Response:
    """A refresh as any client sends it: with the client's Basic credentials."""
    credentials = emu.credentials
    assert credentials.client_secret is not None
    return httpx.post(
        emu.endpoints("okta")["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(credentials.client_id, credentials.client_secret.get_secret_value()),
    )


def test_a_late_caller_with_the_old_token_gets_tokens_within_the_grace_period(
    emu: Emulator, emu_clock: FakeClock
) -> None:
    first = emu.grant("okta", scopes=SCOPES)["refresh_token"]
    rotated = raw_refresh(emu, first)
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    emu_clock.advance(29)
    late = raw_refresh(emu, first)
    assert late.status_code == 200, late.text
    assert late.json()["refresh_token"] not in (first, second)
    assert emu.counters("okta")["reuse_grace"] == 1
    assert raw_refresh(emu, second).status_code == 200  # the rotation's own token still works


def test_after_the_grace_period_the_old_token_kills_the_family(
    emu: Emulator, emu_clock: FakeClock
) -> None:
    first = emu.grant("okta", scopes=SCOPES)["refresh_token"]
    second = raw_refresh(emu, first).json()["refresh_token"]
    emu_clock.advance(30)
    reused = raw_refresh(emu, first)
    assert (reused.status_code, reused.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "The refresh token is invalid or expired."},
    )
    assert raw_refresh(emu, second).status_code == 400  # the family is revoked
    counters = emu.counters("okta")
    assert (counters["reuse_detected"], counters["family_revoked"]) == (1, 1)


def test_only_the_token_rotated_last_has_a_grace_period(emu: Emulator) -> None:
    first = emu.grant("okta", scopes=SCOPES)["refresh_token"]
    second = raw_refresh(emu, first).json()["refresh_token"]
    third = raw_refresh(emu, second).json()["refresh_token"]
    assert raw_refresh(emu, first).status_code == 400  # second-to-last: reuse at once
    assert raw_refresh(emu, third).status_code == 400
    assert emu.counters("okta")["reuse_detected"] == 1


def client(emu: Emulator, clock: FakeClock) -> keyturn.Keyturn:
    """keyturn-okta's spec pointed at the emulator, on the emulator's clock."""
    spec = emu.point(OKTA)
    return keyturn.Keyturn({"okta": emu.credentials}, providers=[spec], environ={}, clock=clock)


def test_without_offline_access_okta_issues_no_refresh_token(
    emu: Emulator, emu_clock: FakeClock
) -> None:
    with client(emu, emu_clock) as kt:
        request = kt.authorize_url(
            "okta", "http://127.0.0.1:8765/callback", scopes=["openid", "email"]
        )
        token = kt.sign_in(request, emu.authorize(request.url))
    assert token.tokens.refresh_token is None


def test_keyturn_never_sends_the_rotated_token_again(emu: Emulator, emu_clock: FakeClock) -> None:
    # Two requests of one user hold the same due token; the second comes after the first
    # refreshed it. Okta would accept the old token within its grace period, but keyturn's
    # reuse window answers the late caller with the first refresh's tokens, sending nothing.
    with client(emu, emu_clock) as kt:
        request = kt.authorize_url("okta", "http://127.0.0.1:8765/callback")
        signed_in = kt.sign_in(request, emu.authorize(request.url))
        assert kt.provider("okta").refresh_reuse_grace == 30
        first = kt.refresh(signed_in.tokens)
        late = kt.refresh(signed_in.tokens)
    assert late == first
    assert first.refresh_token != signed_in.tokens.refresh_token
    counters = emu.counters("okta")
    assert counters["refresh_token"] == 1
    assert (counters.get("reuse_grace", 0), counters["reuse_detected"]) == (0, 0)
