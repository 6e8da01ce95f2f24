"""Slack for keyturn: Sign in with Slack (OpenID Connect) with token rotation.

What the spec and the hooks encode, each fact with its source in brackets (the sources are
listed with their URLs at the end; ``docs/providers/slack.md`` gathers the same facts, the
doubts, and the cassettes that show them):

* Endpoints, issuer and keys: authorize at ``slack.com/openid/connect/authorize``, tokens at
  ``slack.com/api/openid.connect.token``, userinfo at
  ``slack.com/api/openid.connect.userInfo``, issuer ``https://slack.com``, keys at
  ``slack.com/openid/connect/keys``, ID tokens RS256, client authentication
  ``client_secret_post`` or ``client_secret_basic`` [sign in: its discovery document]. keyturn
  verifies every ID token against those keys. Scopes ``openid``, ``email``, ``profile`` [sign
  in]. PKCE ``S256``: the token method takes ``code_verifier`` [token method], though the
  discovery document does not advertise PKCE.
* Errors: Slack answers with HTTP 200 and ``{"ok": false, "error": "..."}`` and asks callers
  to check ``ok`` [token method]; ``ok`` is read on every endpoint, and an ``ok: false`` body
  is never read as tokens, whatever it holds. A plain RFC 6749 error body (HTTP 400
  ``invalid_grant``) is read too, since a third party reports one for refreshes [nango].
  Codes: see :data:`PERMANENT_ERRORS` and :data:`TRANSIENT_ERRORS`; ``ratelimited`` comes with
  HTTP 429 and ``Retry-After`` [rate limits], which the error carries.
* Refresh: token rotation is opt-in per app; with it, access tokens expire after 12 hours and
  each refresh returns a new refresh token, the old one being revoked [rotation]: rotation
  ``rotate``. A Sign in with Slack token is refreshed at ``openid.connect.token`` with
  ``grant_type=refresh_token`` [sign in, "Token rotation"; token method]; the rotation guide
  itself shows ``oauth.v2.access``, the method of app installations [rotation]. Without token
  rotation there is no refresh token and the access token does not expire: keyturn never
  refreshes it.
* The deployment setting ``team`` (optional, a workspace id such as ``T0123ABC456``): sent as
  the authorize parameter ``team`` [sign in], and required of every answer's workspace (the ID
  token's ``https://slack.com/team_id``); see :mod:`keyturn_slack.team`.
* Revocation: ``slack.com/api/auth.revoke`` with the access token [auth.revoke]; see
  :mod:`keyturn_slack.operations`.
* ``warning`` and ``response_metadata``, which Slack adds to answers, are dropped before
  anything is kept or logged (:mod:`keyturn_slack.web_api`).

Every URL is read from the spec the hooks receive, so
``Keyturn(providers=[emulator.point(SLACK)])`` runs the whole plugin against keyturn's emulator.

Sources:

* sign in: Slack, "Sign in with Slack", https://docs.slack.dev/authentication/sign-in-with-slack/
  (its discovery document: https://slack.com/.well-known/openid-configuration)
* token method: Slack, ``openid.connect.token``,
  https://docs.slack.dev/reference/methods/openid.connect.token
* userinfo method: https://docs.slack.dev/reference/methods/openid.connect.userInfo
* rotation: Slack, "Using token rotation",
  https://docs.slack.dev/authentication/using-token-rotation
* oauth.v2.access: its error codes, https://docs.slack.dev/reference/methods/oauth.v2.access
* auth.revoke: https://docs.slack.dev/reference/methods/auth.revoke
* rate limits: Slack, "Rate limits", https://docs.slack.dev/apis/web-api/rate-limits
* nango: a 400 ``invalid_grant`` reported for a Slack refresh,
  https://nango.dev/blog/slack-oauth-refresh-token-invalid-grant
"""

from __future__ import annotations

from collections.abc import Callable

import keyturn
from keyturn import (
    ClientCredentials,
    DeploymentSetting,
    Flow,
    Profile,
    ProviderSpec,
    TokenSet,
    flows,
)

from .operations import exchange_code_flow, refresh_flow, revoke_flow, userinfo_flow
from .team import TEAM_CLAIM, TEAM_MISMATCH, required_team

__all__ = ["PERMANENT_ERRORS", "SLACK", "TEAM_CLAIM", "TEAM_MISMATCH", "TRANSIENT_ERRORS"]

#: Slack error codes after which retrying cannot help: the user signs in again (or the app's
#: configuration is fixed). From the error tables of ``oauth.v2.access`` and
#: ``oauth.v2.exchange`` (https://docs.slack.dev/reference/methods/oauth.v2.access,
#: https://docs.slack.dev/reference/methods/oauth.v2.exchange) and the common errors of every
#: method; ``invalid_refresh_token`` as ``tooling.tokens.rotate`` documents it for a bad
#: refresh token (https://docs.slack.dev/reference/methods/tooling.tokens.rotate).
PERMANENT_ERRORS = frozenset(
    {
        "invalid_refresh_token",  # a refresh token rotated away, revoked or unknown
        "invalid_grant_type",
        "invalid_client_id",
        "bad_client_secret",
        "invalid_code",
        "code_already_used",
        "bad_redirect_uri",
        "oauth_authorization_url_mismatch",
        "token_revoked",
        "token_expired",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "authorization_not_found",
        "token_rotation_not_enabled",
        TEAM_MISMATCH,  # keyturn-slack's own: an answer for another workspace
    }
)
#: Slack error codes of a passing condition: ``ratelimited`` (HTTP 429 with ``Retry-After``,
#: https://docs.slack.dev/apis/web-api/rate-limits), and the common server errors
#: ``internal_error`` ("likely due to a transient issue on our end"), ``fatal_error``,
#: ``service_unavailable`` and ``request_timeout`` listed on every method page.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)

SLACK = ProviderSpec(
    id="slack",
    name="Slack",
    authorization_endpoint="https://slack.com/openid/connect/authorize",
    token_endpoint="https://slack.com/api/openid.connect.token",
    userinfo_endpoint="https://slack.com/api/openid.connect.userInfo",
    revocation_endpoint="https://slack.com/api/auth.revoke",
    issuer="https://slack.com",
    jwks_uri="https://slack.com/openid/connect/keys",
    id_token_signing_algs=frozenset({"RS256"}),
    default_scopes=("openid", "email", "profile"),
    client_auth="client_secret_post",
    pkce_method="S256",
    rotation="rotate",
    settings=(
        DeploymentSetting(
            name="team",
            # A segment no URL holds: optional (left out, no workspace is required), and a
            # value is one word of letters, digits, '.', '_', '~', '-', as Slack's ids are.
            kind="segment",
            description=(
                "the Slack workspace id (T0123ABC456) users sign in to; optional: sent as the "
                "authorize parameter team, and every answer must then be for that workspace"
            ),
        ),
    ),
    permanent_errors=PERMANENT_ERRORS,
    transient_errors=TRANSIENT_ERRORS,
)


@keyturn.hookimpl
def keyturn_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(SLACK)


@keyturn.hookimpl
@keyturn.for_provider("slack")
def keyturn_authorize_url(
    provider: ProviderSpec, credentials: ClientCredentials, params: dict[str, str]
) -> str | None:
    team = required_team(provider)
    if team is None:
        return None  # keyturn's default builds the URL
    return flows.authorize_url(provider, {**params, "team": team})


@keyturn.hookimpl
@keyturn.for_provider("slack")
def keyturn_exchange_code(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    clock: Callable[[], float],
) -> Flow[TokenSet] | None:
    return exchange_code_flow(provider, credentials, code, redirect_uri, code_verifier, clock)


@keyturn.hookimpl
@keyturn.for_provider("slack")
def keyturn_refresh(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    tokens: TokenSet,
    clock: Callable[[], float],
) -> Flow[TokenSet] | None:
    return refresh_flow(provider, credentials, tokens, clock)


@keyturn.hookimpl
@keyturn.for_provider("slack")
def keyturn_userinfo(provider: ProviderSpec, tokens: TokenSet) -> Flow[Profile] | None:
    return userinfo_flow(provider, tokens)


@keyturn.hookimpl
@keyturn.for_provider("slack")
def keyturn_revoke(
    provider: ProviderSpec, credentials: ClientCredentials, tokens: TokenSet
) -> Flow[None] | None:
    return revoke_flow(provider, credentials, tokens)
