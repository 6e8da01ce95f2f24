"""Google for keyturn.

Facts encoded here come from Google's web-server OAuth guide and discovery document:

* Authorize at ``accounts.google.com/o/oauth2/v2/auth`` with ``access_type=offline`` and
  ``prompt=consent`` by default, because Google issues a refresh token only on a consent
  that asks for offline access. ``include_granted_scopes``, ``login_hint`` and ``hd`` may be
  passed per call; each default can be overridden per call (``prompt="select_account"``).
* Tokens at ``oauth2.googleapis.com/token`` with ``client_secret_post``; PKCE ``S256``.
* Refresh tokens do not rotate: refresh responses carry no ``refresh_token`` and the old one
  stays valid (keyturn's parser keeps it).
* Errors come with 400 (``invalid_grant``, ``invalid_request``) or 401 (``invalid_client``,
  ``unauthorized_client``); ``internal_failure`` is retryable, as in google-auth.
* Revoke is a POST of ``token=...`` alone (no client authentication) to
  ``oauth2.googleapis.com/revoke``; revoking a token that is already dead answers 400
  ``invalid_token``, which counts as revoked.
"""

from __future__ import annotations

from collections.abc import Callable

import keyturn
from keyturn import flows
from keyturn.http import Flow, HttpRequest
from keyturn.models import ClientCredentials, ProviderSpec, TokenSet

__all__ = ["GOOGLE"]

GOOGLE = ProviderSpec(
    id="google",
    name="Google",
    authorization_endpoint="https://accounts.google.com/o/oauth2/v2/auth",
    token_endpoint="https://oauth2.googleapis.com/token",
    userinfo_endpoint="https://openidconnect.googleapis.com/v1/userinfo",
    revocation_endpoint="https://oauth2.googleapis.com/revoke",
    issuer="https://accounts.google.com",
    # "The modern value is https://accounts.google.com; however, accounts.google.com is
    # also returned for legacy implementations" (Google's OpenID Connect reference).
    issuer_aliases=frozenset({"accounts.google.com"}),
    default_scopes=("openid", "email", "profile"),
    authorize_params={"access_type": "offline", "prompt": "consent"},
    extra_authorize_params=frozenset({"include_granted_scopes", "login_hint", "hd"}),
    client_auth="client_secret_post",
    pkce_method="S256",
    rotates_refresh_tokens=False,
    # Google's own client library retries these (google.oauth2._client._can_retry).
    transient_errors=frozenset({"internal_failure"}),
    # Workspace policy blocks and deleted clients do not heal on retry.
    permanent_errors=frozenset({"admin_policy_enforced", "deleted_client"}),
)


@keyturn.hookimpl
def keyturn_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(GOOGLE)


def _revoke(provider: ProviderSpec, tokens: TokenSet) -> Flow[None]:
    # Revoking the refresh token revokes the whole grant, its access tokens included.
    secret = tokens.refresh_token or tokens.access_token
    endpoint = provider.revocation_endpoint or GOOGLE.revocation_endpoint or ""
    response = yield HttpRequest.form("POST", endpoint, {"token": secret.get_secret_value()})
    flows.check_revoke_response(provider, response)


@keyturn.hookimpl
@keyturn.for_provider("google")
def keyturn_revoke(
    provider: ProviderSpec, credentials: ClientCredentials, tokens: TokenSet
) -> Flow[None] | None:
    return _revoke(provider, tokens)
