"""Keycloak for keyturn: your server, your realm.

What the spec and the hooks encode, each fact with its source in brackets (the sources are
listed with their URLs at the end; ``docs/providers/keycloak.md`` gathers the same facts with
the cassettes that show them):

* Every URL lives under the realm: ``{server_url}/realms/{realm}``, which is also the issuer
  [endpoints; discovery]. The app gives ``server_url`` (``https://sso.example.com``, or
  ``https://sso.example.com/auth`` for a server older than Keycloak 17, which kept the
  ``/auth`` prefix [migration]) and ``realm``, in code
  (``Keyturn(settings={"keycloak": {"server_url": ..., "realm": ...}})``) or as
  ``KEYTURN_KEYCLOAK_SERVER_URL`` and ``KEYTURN_KEYCLOAK_REALM``. The OpenID Connect
  endpoints are ``.../protocol/openid-connect/{auth,token,userinfo,logout,revoke}``, the key
  set ``.../protocol/openid-connect/certs`` and the discovery document
  ``.../.well-known/openid-configuration`` [endpoints]. The spec types them rather than
  reading the document, so a sign-in costs no request for it; the conformance suite compares
  them with a published document.
* ID tokens are verified against the realm's key set, RS256 (Keycloak's default signature
  algorithm for a realm [discovery: ``id_token_signing_alg_values_supported``]).
* Tokens at the token endpoint with ``client_secret_post`` (the discovery document lists
  ``client_secret_basic`` and ``client_secret_post``, and Keycloak's "Client Id and Secret"
  authenticator takes either); PKCE ``S256`` [discovery: ``code_challenge_methods_supported``].
* Refresh tokens: every refresh answers with a new refresh token. The old one stays usable
  unless the realm turns on "Revoke Refresh Token" (off by default), which makes each refresh
  token single-use [timeouts]. So ``rotation`` is a deployment setting: ``keep_old`` by
  default, ``rotate`` for a realm that revokes refresh tokens
  (``KEYTURN_KEYCLOAK_ROTATION=rotate``). keyturn keeps the newest token either way; the
  setting tells the conformance suite and the reader what the server does with the old one.
* Lifetimes: the token response spells the refresh token's lifetime ``refresh_expires_in``
  (not RFC 6749's nothing, nor GitHub's ``refresh_token_expires_in``) [token response]. It is
  read into ``TokenSet.refresh_token_expires_at``. An offline token (scope
  ``offline_access``) reports ``refresh_expires_in: 0`` when the realm does not limit offline
  sessions: that means *no fixed expiry* (the offline session dies after the realm's
  "Offline Session Idle" time unused, 30 days by default [timeouts; keycloak 8919]), so it
  reads as ``None``, never as "expired now".
* Errors: a refresh token the server no longer honours is 400 ``invalid_grant`` with one of a
  few descriptions [token manager; token response; keycloak 48063]. keyturn keeps
  Keycloak's text and says what it means: "Token is not active" (the refresh token has
  expired), "Session not active" (the user's session at Keycloak ended: logout, an
  administrator, or the idle or maximum session time), "Stale token" (a newer refresh token
  of the session was used while "Revoke Refresh Token" is on, or a not-before revocation
  policy retired it), "Maximum allowed refresh token reuse exceeded", "Session doesn't have
  required client" and "Client session not active". Each is permanent: the user signs in
  again.
* Logout at the provider: ``end_session_endpoint`` (RP-Initiated Logout). Since Keycloak 18
  it needs ``id_token_hint`` or ``client_id`` [logout]; keyturn's web sign-out sends both
  when the session holds the ID token, and ``client_id`` always.

Sources:

* endpoints: Keycloak, "Securing applications: OpenID Connect, available endpoints",
  https://www.keycloak.org/securing-apps/oidc-layers
* discovery: a Keycloak realm's discovery document, as python-social-auth keeps one in
  ``social_core/tests/backends/test_egi_checkin.py`` (``cassettes/oidc/keycloak.yaml``),
  https://github.com/python-social-auth/social-core
* migration: Keycloak, "Migrating to Quarkus distribution" (the ``/auth`` context path
  removed in Keycloak 17), https://www.keycloak.org/migration/migrating-to-quarkus
* timeouts: Keycloak Server Administration Guide, "Session and token timeouts" ("Revoke
  Refresh Token", "Offline Session Idle"),
  https://www.keycloak.org/docs/latest/server_admin/index.html#_timeouts
* token response: a realm's refresh answer with ``refresh_expires_in``, and "Token is not
  active" for the retired token once "Revoke Refresh Token" is on,
  https://qiita.com/KWS_0901/items/729e1d36bea81c5e3b92
* keycloak 8919: ``refresh_expires_in`` is 0 for offline tokens when "Offline Session Max
  Limited" is off, https://github.com/keycloak/keycloak/issues/8919
* keycloak 48063: the same 0, and "Session not active" once the offline idle time has passed,
  https://github.com/keycloak/keycloak/issues/48063
* token manager: the texts as Keycloak's server raises them (``TokenManager``),
  https://github.com/keycloak/keycloak/blob/main/services/src/main/java/org/keycloak/protocol/oidc/TokenManager.java
* logout: Keycloak 18 release notes, "OpenID Connect Logout",
  https://www.keycloak.org/docs/latest/upgrading/index.html#openid-connect-logout
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import keyturn
from keyturn import (
    ClientCredentials,
    DeploymentSetting,
    Flow,
    OAuthError,
    ProviderSpec,
    TokenSet,
    flows,
)

__all__ = [
    "KEYCLOAK",
    "KNOWN_GRANT_ERRORS",
    "REALM_ROTATIONS",
    "REFRESH_EXPIRES_IN",
    "explain",
    "read_refresh_expiry",
]

log = logging.getLogger(__name__)

#: The token response's field for the refresh token's lifetime, in seconds.
REFRESH_EXPIRES_IN = "refresh_expires_in"

_REALM = "{server_url}/realms/{realm}"
_OIDC = _REALM + "/protocol/openid-connect"

#: Keycloak's descriptions of a refresh token it no longer honours (400 ``invalid_grant``),
#: lower-cased, with what each means for the app. The description keyturn raises is
#: Keycloak's own text followed by this explanation.
KNOWN_GRANT_ERRORS: dict[str, str] = {
    "token is not active": (
        "the refresh token has expired or was revoked; the user must sign in again"
    ),
    "session not active": (
        "the user's session at Keycloak has ended (logout, an administrator, or the realm's "
        "idle or maximum session time); the user must sign in again"
    ),
    "stale token": (
        "a newer refresh token of this session has been used while the realm revokes "
        "refresh tokens (Revoke Refresh Token), or a not-before revocation policy retired "
        "it; the user must sign in again"
    ),
    "maximum allowed refresh token reuse exceeded": (
        "the refresh token was used more often than the realm's Refresh Token Max Reuse "
        "allows; the user must sign in again"
    ),
    "session doesn't have required client": (
        "the user's session at Keycloak no longer includes this client; the user must sign in again"
    ),
    "client session not active": (
        "this client's session at Keycloak has ended; the user must sign in again"
    ),
}

KEYCLOAK = ProviderSpec(
    id="keycloak",
    name="Keycloak",
    authorization_endpoint=_OIDC + "/auth",
    token_endpoint=_OIDC + "/token",
    userinfo_endpoint=_OIDC + "/userinfo",
    revocation_endpoint=_OIDC + "/revoke",
    end_session_endpoint=_OIDC + "/logout",
    jwks_uri=_OIDC + "/certs",
    issuer=_REALM,
    id_token_signing_algs=frozenset({"RS256"}),
    default_scopes=("openid", "profile", "email"),
    # Keycloak's authorization endpoint takes the OpenID Connect parameters, and kc_idp_hint
    # to go straight to one identity provider of the realm
    # (https://www.keycloak.org/docs/latest/server_admin/index.html#_client_suggested_idp).
    extra_authorize_params=frozenset(
        {"login_hint", "prompt", "max_age", "ui_locales", "acr_values", "kc_idp_hint"}
    ),
    client_auth="client_secret_post",
    pkce_method="S256",
    rotation="keep_old",
    settings=(
        DeploymentSetting(
            name="server_url",
            kind="url",
            description=(
                "the Keycloak server's base URL: https://sso.example.com, or "
                "https://sso.example.com/auth for servers before Keycloak 17"
            ),
        ),
        DeploymentSetting(
            name="realm",
            kind="segment",
            description="the realm your client is registered in (the name in its URLs)",
        ),
        DeploymentSetting(
            name="rotation",
            kind="rotation",
            default="keep_old",
            description=(
                "keep_old (Keycloak's default: a refresh returns a new refresh token and the "
                "old one stays usable), or rotate when the realm turns on Revoke Refresh Token"
            ),
        ),
    ),
)


@keyturn.hookimpl
def keyturn_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    """Register Keycloak (a template until the app gives its server URL and realm)."""
    register(KEYCLOAK)


#: The rotation kinds a realm can have: every refresh answers with a new refresh token, and
#: "Revoke Refresh Token" decides whether the old one dies.
REALM_ROTATIONS = frozenset({"keep_old", "rotate"})


@keyturn.hookimpl
@keyturn.for_provider("keycloak")
def keyturn_deploy(provider: ProviderSpec, settings: Mapping[str, str]) -> ProviderSpec:
    """Keycloak's spec for a server and realm; refuses a ``rotation`` no realm has.

    :raises keyturn.ConfigurationError: ``rotation`` is ``none`` or ``detect_reuse``: a
        refresh always brings a new refresh token, and Keycloak has no grace window.
    """
    rotation = settings.get("rotation", provider.rotation)
    if rotation not in REALM_ROTATIONS:
        raise keyturn.ConfigurationError(
            f"KEYTURN_KEYCLOAK_ROTATION={rotation!r} is not what a Keycloak realm does: "
            "keep_old (the default) or rotate (with Revoke Refresh Token on)"
        )
    return flows.deploy(provider, settings)


def read_refresh_expiry(provider: ProviderSpec, tokens: TokenSet, issued: int) -> TokenSet:
    """``tokens`` with the refresh token's expiry read from Keycloak's ``refresh_expires_in``.

    keyturn's parser knows RFC 6749's fields and ``refresh_token_expires_in``; Keycloak's
    field lands in ``extra``, from which this moves it into ``refresh_token_expires_at``:

    * a positive number of seconds: ``issued + seconds``;
    * ``0``, which an offline token reports: no fixed expiry (``None``), never "expired";
    * a negative number (never seen from Keycloak): expired at ``issued``;
    * absent or ``null``: the expiry unchanged (a previous one the parser kept stays);
    * unreadable: logged and ignored, like an unreadable ``refresh_token_expires_in``.

    :param provider: the spec, for the log line.
    :param tokens: a parsed exchange or refresh answer.
    :param issued: when the answer arrived (epoch seconds).
    :return: the tokens, with the field out of ``extra``.
    """
    if REFRESH_EXPIRES_IN not in tokens.extra:
        return tokens
    raw = tokens.extra[REFRESH_EXPIRES_IN]
    extra = {key: value for key, value in tokens.extra.items() if key != REFRESH_EXPIRES_IN}
    try:
        seconds = flows.parse_expires_in(raw)
    except (ValueError, OverflowError):
        log.warning("%s sent an unreadable %s; ignoring it", provider.id, REFRESH_EXPIRES_IN)
        return tokens.model_copy(update={"extra": extra})
    if seconds is None:  # null: as if absent
        return tokens.model_copy(update={"extra": extra})
    if seconds == 0 and _negative(raw):
        expires_at: int | None = issued
    else:
        expires_at = None if not seconds else issued + seconds
    return tokens.model_copy(update={"extra": extra, "refresh_token_expires_at": expires_at})


def _negative(raw: object) -> bool:
    try:
        return float(raw) < 0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def explain(error: OAuthError) -> OAuthError:
    """The error with what Keycloak's description means, when keyturn knows it.

    Keycloak's text is kept first, word for word: ``"Token is not active: the refresh token
    has expired or was revoked; ..."``. An error keyturn does not know is returned as it is.
    """
    description = error.description or ""
    text = description.strip()
    meaning = KNOWN_GRANT_ERRORS.get(text.lower())
    if error.error != "invalid_grant" or meaning is None:
        return error
    return OAuthError(
        provider=error.provider,
        operation=error.operation,
        error=error.error,
        status=error.status,
        description=f"{text}: {meaning}",
        permanent=True,
        details={**error.details, "keycloak_description": description},
        retry_after=error.retry_after,
    )


def _exchange(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    clock: Callable[[], float],
) -> Flow[TokenSet]:
    try:
        tokens = yield from flows.exchange_code_flow(
            provider, credentials, code, redirect_uri, code_verifier, clock
        )
    except OAuthError as exc:
        raise explain(exc) from None
    return read_refresh_expiry(provider, tokens, int(clock()))


def _refresh(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    tokens: TokenSet,
    clock: Callable[[], float],
) -> Flow[TokenSet]:
    try:
        refreshed = yield from flows.refresh_flow(provider, credentials, tokens, clock)
    except OAuthError as exc:
        raise explain(exc) from None
    return read_refresh_expiry(provider, refreshed, int(clock()))


@keyturn.hookimpl
@keyturn.for_provider("keycloak")
def keyturn_exchange_code(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    clock: Callable[[], float],
) -> Flow[TokenSet] | None:
    return _exchange(provider, credentials, code, redirect_uri, code_verifier, clock)


@keyturn.hookimpl
@keyturn.for_provider("keycloak")
def keyturn_refresh(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    tokens: TokenSet,
    clock: Callable[[], float],
) -> Flow[TokenSet] | None:
    return _refresh(provider, credentials, tokens, clock)
