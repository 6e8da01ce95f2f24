"""Keycloak: deployment settings, refresh_expires_in (0 on offline tokens), Keycloak's errors.

The cassettes in cassettes/keycloak/ are written from Keycloak's documentation and public
reports (provenance in cassettes/README.md) for the server https://sso.example.com and the
realm ``acme``. Every replay test runs four times: Keyturn over httpx.Client and
httpx2.Client, AsyncKeyturn over httpx.AsyncClient and httpx2.AsyncClient. The last classes
run keyturn's conformance suite on the same cassettes, with Keycloak's default rotation
(``keep_old``) and with ``rotate`` (a realm with "Revoke Refresh Token" on).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import keyturn
import keyturn_keycloak
from keyturn.idtoken import unverified_claims
from keyturn.plugins import KeyturnPluginManager
from keyturn.stores.sqlite import SQLiteTokenStore
from pytest_keyturn import ProviderConformance
from pytest_keyturn.cassettes import make_vcr
from tests.conftest import CASSETTES, CLIENT_ID, CLIENT_SECRET, FakeClock

from ._replay import Driver, Failure, Replay, refresh_failure_test, replay_fixtures

VCR = make_vcr(CASSETTES / "keycloak")
SETTINGS = {"server_url": "https://sso.example.com", "realm": "acme"}
REALM = "https://sso.example.com/realms/acme"
OIDC = REALM + "/protocol/openid-connect"
REDIRECT_URI = "https://app.example.com/api/auth/callback/keycloak"
NONCE = "n-0S6_WzA2Mj"
CODE = "code-from-the-callback"
SUB = "f3b5a6a4-5c2e-4b3e-9d1a-000000000001"
#: Placeholders in the cassettes, as a token flows through them.
EXCHANGED_REFRESH = "REDACTED-616d2aa4"
REFRESHED_ACCESS, REFRESHED_REFRESH = "REDACTED-99c20718", "REDACTED-32568891"
OFFLINE_REFRESH = "REDACTED-ac3680ce"
OFFLINE_REFRESHED_ACCESS, OFFLINE_REFRESHED_REFRESH = "REDACTED-cd257f60", "REDACTED-63fb6ee5"
SIXTY_DAYS = 60 * 86400

connect, driver = replay_fixtures(
    Replay(
        "keycloak",
        VCR,
        REDIRECT_URI,
        code=CODE,
        access_lifetime=300,
        authorize={"nonce": NONCE},
        settings=SETTINGS,
    )
)


def client(**options: object) -> keyturn.Keyturn:
    return keyturn.Keyturn({"keycloak": (CLIENT_ID, CLIENT_SECRET)}, **options)  # type: ignore[arg-type]


def due_tokens(clock: FakeClock, refresh_token: str = EXCHANGED_REFRESH) -> keyturn.TokenSet:
    """Tokens as a sign-in left them, now due for a refresh (no ID token: none to compare)."""
    return keyturn.TokenSet.model_validate(
        {
            "provider": "keycloak",
            "access_token": "access-token-from-sign-in",
            "expires_at": int(clock.now) - 1,
            "refresh_token": refresh_token,
            "refresh_token_expires_at": int(clock.now) + 1500,
            "scope": ("openid", "email", "profile"),
        }
    )


# -- deployment settings -----------------------------------------------------------------------


def test_the_spec_is_a_template_until_server_and_realm_are_given(
    pm: KeyturnPluginManager,
) -> None:
    template = client(plugin_manager=pm, environ={}).provider("keycloak", deployed=False)
    assert template.token_endpoint == ("{server_url}/realms/{realm}/protocol/openid-connect/token")
    assert template.needs_deployment


@pytest.mark.parametrize(
    ("server_url", "base"),
    [
        ("https://sso.example.com", "https://sso.example.com/realms/acme"),
        # Before Keycloak 17 every path started with /auth; a trailing slash is dropped.
        ("https://sso.example.com/auth/", "https://sso.example.com/auth/realms/acme"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/realms/acme"),
    ],
)
def test_every_url_is_derived_from_server_and_realm(
    pm: KeyturnPluginManager, server_url: str, base: str
) -> None:
    settings = {"keycloak": {"server_url": server_url, "realm": "acme"}}
    spec = client(plugin_manager=pm, environ={}, settings=settings).provider("keycloak")
    oidc = base + "/protocol/openid-connect"
    assert spec.issuer == base
    assert (
        spec.authorization_endpoint,
        spec.token_endpoint,
        spec.userinfo_endpoint,
        spec.revocation_endpoint,
        spec.end_session_endpoint,
        spec.jwks_uri,
    ) == (
        oidc + "/auth",
        oidc + "/token",
        oidc + "/userinfo",
        oidc + "/revoke",
        oidc + "/logout",
        oidc + "/certs",
    )
    assert spec.deployment["realm"] == "acme"


def test_settings_come_from_the_environment(pm: KeyturnPluginManager) -> None:
    environ = {
        "KEYTURN_KEYCLOAK_SERVER_URL": "https://login.example.org",
        "KEYTURN_KEYCLOAK_REALM": "staff",
    }
    spec = client(plugin_manager=pm, environ=environ).provider("keycloak")
    assert spec.issuer == "https://login.example.org/realms/staff"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"realm": "acme"}, "server_url"),
        ({"server_url": "https://sso.example.com"}, "realm"),
    ],
)
def test_a_missing_setting_is_named(
    pm: KeyturnPluginManager, settings: dict[str, str], named: str
) -> None:
    kt = client(plugin_manager=pm, environ={}, settings={"keycloak": settings})
    with pytest.raises(keyturn.ConfigurationError) as caught:
        kt.provider("keycloak")
    message = str(caught.value)
    assert named in message
    assert f"KEYTURN_KEYCLOAK_{named.upper()}" in message


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"server_url": "http://sso.example.com", "realm": "acme"}, "server_url"),
        (
            {"server_url": "https://sso.example.com/?secret-looking-x1", "realm": "acme"},
            "server_url",
        ),
        ({"server_url": "https://sso.example.com", "realm": "acme/../master"}, "realm"),
        ({"server_url": "https://sso.example.com", "realm": "secret-looking-x1?"}, "realm"),
    ],
)
def test_a_value_that_could_bend_a_url_is_refused_without_quoting_it(
    pm: KeyturnPluginManager, settings: dict[str, str], named: str
) -> None:
    with pytest.raises(keyturn.ConfigurationError) as caught:
        client(plugin_manager=pm, environ={}, settings={"keycloak": settings}).provider("keycloak")
    assert named in str(caught.value)
    assert "secret-looking-x1" not in str(caught.value)
    assert "master" not in str(caught.value)


def test_rotation_is_keep_old_unless_the_realm_revokes_refresh_tokens(
    pm: KeyturnPluginManager,
) -> None:
    default = client(plugin_manager=pm, environ={}, settings={"keycloak": SETTINGS})
    assert default.provider("keycloak").rotation == "keep_old"
    revoking = client(
        plugin_manager=pm,
        environ={"KEYTURN_KEYCLOAK_ROTATION": "rotate"},
        settings={"keycloak": SETTINGS},
    )
    spec = revoking.provider("keycloak")
    assert (spec.rotation, spec.rotates_refresh_tokens) == ("rotate", True)
    with pytest.raises(keyturn.ConfigurationError, match="rotation"):
        client(
            plugin_manager=pm,
            environ={},
            settings={"keycloak": {**SETTINGS, "rotation": "sometimes"}},
        ).provider("keycloak")


# -- refresh_expires_in ------------------------------------------------------------------------


def _parsed(extra: dict[str, object]) -> keyturn.TokenSet:
    return keyturn.TokenSet(provider="keycloak", access_token="a", refresh_token="r", extra=extra)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1800, 1_000_000 + 1800),
        ("1800", 1_000_000 + 1800),
        (0, None),  # an offline token: no fixed expiry
        (0.0, None),
        (-5, 1_000_000),  # never sent by Keycloak: expired, not endless
    ],
)
def test_refresh_expires_in_becomes_the_refresh_tokens_expiry(
    raw: object, expected: int | None
) -> None:
    tokens = keyturn_keycloak.read_refresh_expiry(
        keyturn_keycloak.KEYCLOAK,
        _parsed({"refresh_expires_in": raw, "session_state": "s"}),
        1_000_000,
    )
    assert tokens.refresh_token_expires_at == expected
    assert tokens.extra == {"session_state": "s"}


@pytest.mark.parametrize("raw", ["soon", True, None, [1800], "1e400"])
def test_an_unreadable_or_null_refresh_expires_in_is_ignored(
    raw: object, caplog: pytest.LogCaptureFixture
) -> None:
    before = _parsed({"refresh_expires_in": raw}).model_copy(
        update={"refresh_token_expires_at": 123}
    )
    with caplog.at_level(logging.WARNING):
        tokens = keyturn_keycloak.read_refresh_expiry(keyturn_keycloak.KEYCLOAK, before, 1_000)
    assert tokens.refresh_token_expires_at == 123
    assert "refresh_expires_in" not in tokens.extra
    assert ("unreadable refresh_expires_in" in caplog.text) == (raw is not None)


def test_a_response_without_refresh_expires_in_is_left_alone() -> None:
    tokens = _parsed({"other": 1})
    assert keyturn_keycloak.read_refresh_expiry(keyturn_keycloak.KEYCLOAK, tokens, 5) is tokens


# -- replayed: exchange and refresh ------------------------------------------------------------


async def test_exchange_reads_refresh_expires_in(driver: Driver, clock: FakeClock) -> None:
    request = driver.authorize_url(nonce=NONCE)
    with driver.play("exchange_code"):
        tokens = await driver.exchange_code(request, CODE)
    assert tokens.expires_at == clock.now + 300
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == EXCHANGED_REFRESH
    assert tokens.refresh_token_expires_at == clock.now + 1800
    assert tokens.scope == ("openid", "email", "profile")
    assert "refresh_expires_in" not in tokens.extra
    assert tokens.extra["not-before-policy"] == 0
    assert tokens.id_token is not None
    claims = unverified_claims(tokens.id_token.get_secret_value())
    assert (claims["iss"], claims["sub"], claims["nonce"]) == (REALM, SUB, NONCE)


async def test_an_offline_token_has_no_fixed_expiry_and_still_refreshes_months_later(
    driver: Driver, clock: FakeClock
) -> None:
    request = driver.authorize_url(
        nonce=NONCE, scopes=["openid", "email", "offline_access", "profile"]
    )
    with driver.play("exchange_offline"):
        tokens = await driver.exchange_code(request, CODE)
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() == OFFLINE_REFRESH
    assert "offline_access" in (tokens.scope or ())
    # refresh_expires_in 0 means "no fixed expiry", not "expired now".
    assert tokens.refresh_token_expires_at is None
    assert not tokens.refresh_token_expired(clock.now)
    clock.advance(SIXTY_DAYS)
    assert not tokens.refresh_token_expired(clock.now)
    # Sixty days on, keyturn still sends it (a real server decides by its offline idle time).
    with driver.play("refresh_offline"):
        refreshed = await driver.refresh(tokens.model_copy(update={"id_token": None}))
    assert refreshed.access_token.get_secret_value() == OFFLINE_REFRESHED_ACCESS
    assert refreshed.refresh_token is not None
    assert refreshed.refresh_token.get_secret_value() == OFFLINE_REFRESHED_REFRESH
    assert refreshed.refresh_token_expires_at is None


async def test_an_offline_refresh_drops_an_expiry_the_old_token_had(
    driver: Driver, clock: FakeClock
) -> None:
    clock.advance(SIXTY_DAYS)  # when refresh_offline's answer was written
    old = due_tokens(clock, OFFLINE_REFRESH)
    assert old.refresh_token_expires_at is not None
    with driver.play("refresh_offline"):
        refreshed = await driver.refresh(old)
    assert refreshed.refresh_token_expires_at is None


async def test_refresh_keeps_the_new_refresh_token_and_its_expiry(
    driver: Driver, clock: FakeClock
) -> None:
    with driver.play("refresh_ok"):
        refreshed = await driver.refresh(due_tokens(clock))
    assert refreshed.access_token.get_secret_value() == REFRESHED_ACCESS
    assert refreshed.refresh_token is not None
    assert refreshed.refresh_token.get_secret_value() == REFRESHED_REFRESH
    assert refreshed.refresh_token_expires_at == clock.now + 1800
    assert refreshed.expires_at == clock.now + 300


@pytest.mark.parametrize("scenario", ["exchange_offline", "exchange_code"])
async def test_a_token_set_keeps_its_refresh_expiry_through_a_store(
    driver: Driver, clock: FakeClock, tmp_path: Path, scenario: str
) -> None:
    request = driver.authorize_url(nonce=NONCE)
    with driver.play(scenario):
        tokens = await driver.exchange_code(request, CODE)
    with SQLiteTokenStore(tmp_path / "tokens.db") as store:
        store.save("user-1", tokens)
        loaded = store.load("user-1")
    assert loaded is not None
    assert loaded.tokens == tokens
    assert loaded.tokens.refresh_token_expires_at == tokens.refresh_token_expires_at
    if scenario == "exchange_offline":
        assert loaded.tokens.refresh_token_expires_at is None
        assert not loaded.tokens.refresh_token_expired(clock.now + SIXTY_DAYS)


# -- replayed: errors ----------------------------------------------------------------------------


def _failure(upstream: str, meaning: str) -> Failure:
    return Failure(keyturn.OAuthError, "invalid_grant", 400, True, f"{upstream}: {meaning}")


test_refresh_failures_are_classified = refresh_failure_test(
    {
        "refresh_invalid_grant": _failure(
            "Token is not active", keyturn_keycloak.KNOWN_GRANT_ERRORS["token is not active"]
        ),
        "refresh_session_not_active": _failure(
            "Session not active", keyturn_keycloak.KNOWN_GRANT_ERRORS["session not active"]
        ),
        "refresh_stale_token": _failure(
            "Stale token", keyturn_keycloak.KNOWN_GRANT_ERRORS["stale token"]
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


@pytest.mark.parametrize(
    ("scenario", "upstream"),
    [
        ("refresh_invalid_grant", "Token is not active"),
        ("refresh_session_not_active", "Session not active"),
        ("refresh_stale_token", "Stale token"),
    ],
)
async def test_keycloaks_own_text_is_kept_first_in_the_error(
    driver: Driver, clock: FakeClock, scenario: str, upstream: str
) -> None:
    with driver.play(scenario), pytest.raises(keyturn.OAuthError) as caught:
        await driver.refresh(due_tokens(clock))
    error = caught.value
    assert error.description is not None
    assert error.description.startswith(upstream + ": ")
    assert error.details["keycloak_description"] == upstream
    assert "sign in again" in str(error)
    assert EXCHANGED_REFRESH not in str(error)
    assert EXCHANGED_REFRESH not in repr(error.details)


@pytest.mark.parametrize("known", sorted(keyturn_keycloak.KNOWN_GRANT_ERRORS))
def test_every_known_description_is_explained_whatever_its_case(known: str) -> None:
    upstream = known.upper()
    error = keyturn.OAuthError(
        provider="keycloak",
        operation="refresh",
        error="invalid_grant",
        status=400,
        description=f" {upstream} ",
        permanent=True,
    )
    explained = keyturn_keycloak.explain(error)
    assert explained.description == f"{upstream}: {keyturn_keycloak.KNOWN_GRANT_ERRORS[known]}"
    assert explained.permanent and explained.error == "invalid_grant"
    assert explained.details["keycloak_description"] == f" {upstream} "


def test_an_unknown_invalid_grant_keeps_its_description_unchanged() -> None:
    error = keyturn.OAuthError(
        provider="keycloak",
        operation="refresh",
        error="invalid_grant",
        status=400,
        description="Invalid refresh token",
        permanent=True,
    )
    assert keyturn_keycloak.explain(error) is error
    other = keyturn.OAuthError(
        provider="keycloak",
        operation="refresh",
        error="invalid_client",
        status=401,
        description="Token is not active",
        permanent=True,
    )
    assert keyturn_keycloak.explain(other) is other


async def test_jwt_after_session_not_active_asks_for_a_new_sign_in(
    driver: Driver, clock: FakeClock
) -> None:
    token = await driver.signed_in_jwt(clock)
    failed = await driver.jwt_fails_for_good(token, "refresh_session_not_active")
    assert failed.refresh_failure is not None
    assert failed.refresh_failure.error == "invalid_grant"


# -- replayed: userinfo and revoke ---------------------------------------------------------------


async def test_userinfo_reads_the_realms_claims(driver: Driver, clock: FakeClock) -> None:
    with driver.play("userinfo"):
        profile = await driver.userinfo(due_tokens(clock))
    assert (profile.id, profile.email, profile.email_verified) == (SUB, "user@example.com", True)
    assert profile.name == "Example User"
    assert profile.raw["preferred_username"] == "example"


async def test_revoke_posts_the_refresh_token(driver: Driver, clock: FakeClock) -> None:
    with driver.play("revoke"):
        assert await driver.revoke(due_tokens(clock)) is None


# -- keyturn's conformance suite on the same cassettes ---------------------------------------------


class TestKeycloakConformance(ProviderConformance):
    """Keycloak's default: a new refresh token on every refresh, the old one still usable."""

    provider = "keycloak"
    cassettes = CASSETTES / "keycloak"
    settings = SETTINGS
    redirect_uri = REDIRECT_URI


class TestKeycloakRevokingRefreshTokensConformance(ProviderConformance):
    """A realm with "Revoke Refresh Token" on: each refresh token is single-use."""

    provider = "keycloak"
    cassettes = CASSETTES / "keycloak"
    settings = {**SETTINGS, "rotation": "rotate"}
    redirect_uri = REDIRECT_URI


@pytest.mark.parametrize("rotation", ["none", "detect_reuse"])
def test_a_rotation_no_realm_has_is_refused(rotation: str) -> None:
    with pytest.raises(keyturn.ConfigurationError, match=r"keep_old .* or rotate"):
        keyturn.Keyturn(
            settings={"keycloak": {**SETTINGS, "rotation": rotation}}, environ={}
        ).provider("keycloak")
