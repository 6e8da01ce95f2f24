"""GitLab for keyturn: GitLab.com and self-managed GitLab instances.

GitLab's OAuth 2.0 server is Doorkeeper, which follows RFC 6749 closely, so keyturn's default
flows serve it with two additions: the instance is a deployment setting, and a token response
without ``expires_in`` gets its expiry from ``created_at`` and GitLab's documented default.
``docs/providers/gitlab.md`` gathers these facts with the cassettes that show them.

What the spec encodes, and where it comes from:

* The instance: the deployment setting ``base_url`` (kind ``url``, default
  ``https://gitlab.com``), for self-managed GitLab (``Keyturn(settings={"gitlab":
  {"base_url": "https://gitlab.example.com"}})`` or ``KEYTURN_GITLAB_BASE_URL``). A URL with a
  path serves an instance installed under a relative URL root.
* Endpoints ``{base_url}/oauth/authorize``, ``/oauth/token`` and ``/oauth/revoke``: GitLab,
  "OAuth 2.0 identity provider API" (https://docs.gitlab.com/api/oauth2/).
  ``/oauth/userinfo``: GitLab, "GitLab as OpenID Connect identity provider"
  (https://docs.gitlab.com/integration/openid_connect_provider/).
* Issuer ``{base_url}``: the instance URL, which GitLab's Doorkeeper OpenID Connect
  configuration uses as issuer (``issuer Gitlab.config.gitlab.url``,
  https://gitlab.com/gitlab-org/gitlab/-/blob/master/config/initializers/doorkeeper_openid_connect.rb).
  The discovery document at ``{base_url}/.well-known/openid-configuration`` is not read: the
  paths are the same on every instance, so typing them costs nothing, and a sign-in then
  needs no extra request and cannot fail on the document.
* Key set ``{base_url}/oauth/discovery/keys`` and ID tokens signed ``RS256`` only: the
  ``jwks_uri`` and ``id_token_signing_alg_values_supported`` of GitLab.com's discovery
  document, as captured by panva/wellknown
  (https://github.com/panva/wellknown/blob/545129cf1c103df8b5cee924ce8f727cc3bdc181/issuers/gitlab/gitlab.mjs;
  ``cassettes/gitlab/discovery.yaml``). keyturn reads the key set before each code exchange
  and refresh and refuses an ID token no key of it verifies.
* PKCE ``S256``: the API page's "Authorization code with PKCE" flow sends
  ``code_challenge_method=S256``.
* Client authentication in the form body (``client_secret_post``): the page's token and
  revoke examples post ``client_id`` and ``client_secret`` as form fields.
* Rotation ``rotate``: a refresh "invalidates the existing ``access_token`` and
  ``refresh_token``" and "sends new tokens in the response" (API page).
* Access tokens live two hours: ``expires_in`` 7200 in every example of the API page;
  "Access tokens expire after two hours" ("Configure GitLab as an OAuth 2.0 authentication
  identity provider", https://docs.gitlab.com/integration/oauth_provider/). keyturn reads
  ``expires_in`` from each response. Some GitLab versions left it out
  (https://gitlab.com/gitlab-org/gitlab/-/issues/360729); see :func:`derived_expiry`.
* Default scopes ``openid profile email``: the OpenID Connect scopes from the scope table of
  the same page; ask for ``read_user``, ``api``... per call when the app needs the REST API.
* ``root_namespace_id`` may be passed per call: the optional authorize parameter for groups
  with SAML SSO (API page).
* Token responses are JSON with ``scope`` space-delimited and ``created_at`` (Doorkeeper's
  ``TokenResponse``,
  https://github.com/doorkeeper-gem/doorkeeper/blob/main/lib/doorkeeper/oauth/token_response.rb);
  ``created_at`` is kept in ``TokenSet.extra``.
* Errors follow RFC 6749 §5.2 with Doorkeeper's statuses: 401 for ``invalid_client`` and
  ``unauthorized_client``, 400 otherwise
  (https://github.com/doorkeeper-gem/doorkeeper/blob/main/lib/doorkeeper/oauth/error_response.rb),
  so keyturn's default classification applies.

GitLab's example refresh request also carries ``redirect_uri``. RFC 6749 §6 defines no such
field for the refresh grant and Doorkeeper's ``RefreshTokenRequest`` does not read it
(https://github.com/doorkeeper-gem/doorkeeper/blob/main/lib/doorkeeper/oauth/refresh_token_request.rb),
so keyturn does not send it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import keyturn
from keyturn import ClientCredentials, DeploymentSetting, Flow, ProviderSpec, TokenSet, flows

__all__ = ["CREATED_AT_TOLERANCE", "DEFAULT_LIFETIME", "GITLAB", "derived_expiry"]

log = logging.getLogger("keyturn")

#: Seconds an access token lives when the response does not say: "Access tokens expire after
#: two hours" (https://docs.gitlab.com/integration/oauth_provider/); ``expires_in`` 7200 in
#: every example response of https://docs.gitlab.com/api/oauth2/.
DEFAULT_LIFETIME = 7200

#: How far before the moment keyturn read the response ``created_at`` may lie and still be
#: taken as the token's issue time, in seconds. The token was issued for the request keyturn
#: just sent, so a ``created_at`` further back (or in the future) says more about the two
#: clocks than about the token; see :func:`derived_expiry`.
CREATED_AT_TOLERANCE = 300

GITLAB = ProviderSpec(
    id="gitlab",
    name="GitLab",
    authorization_endpoint="{base_url}/oauth/authorize",
    token_endpoint="{base_url}/oauth/token",
    userinfo_endpoint="{base_url}/oauth/userinfo",
    revocation_endpoint="{base_url}/oauth/revoke",
    issuer="{base_url}",
    jwks_uri="{base_url}/oauth/discovery/keys",
    id_token_signing_algs=frozenset({"RS256"}),
    settings=(
        DeploymentSetting(
            name="base_url",
            kind="url",
            default="https://gitlab.com",
            description=(
                "the GitLab instance's URL, https://gitlab.com or a self-managed "
                "instance's (with its relative URL root, if any)"
            ),
        ),
    ),
    default_scopes=("openid", "profile", "email"),
    extra_authorize_params=frozenset({"root_namespace_id"}),
    client_auth="client_secret_post",
    pkce_method="S256",
    rotation="rotate",
)


def _epoch(value: Any) -> float | None:
    """``created_at`` as epoch seconds, or ``None`` when it is absent or not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def derived_expiry(created_at: Any, now: float) -> int:
    """When an access token expires whose response carried no ``expires_in``.

    GitLab's lifetime is :data:`DEFAULT_LIFETIME` from ``created_at``, the moment the server
    issued the token. keyturn trusts ``created_at`` only as far as it can be true of a token
    issued for the request it has just sent: a value up to :data:`CREATED_AT_TOLERANCE`
    seconds in the past is used as it is (the token then counts as expiring that much
    sooner, the safe side); a value further back is taken as that far back, so a slow clock
    at the server cannot make a new token look expired at once; a value in the future is
    taken as now, so a fast clock cannot make it look valid for longer than
    :data:`DEFAULT_LIFETIME`. A missing or unreadable ``created_at`` counts as now.

    :param created_at: the response's ``created_at`` (epoch seconds), as sent.
    :param now: the time keyturn read the response, in epoch seconds.
    :return: ``expires_at``, in epoch seconds: between ``now + DEFAULT_LIFETIME -
        CREATED_AT_TOLERANCE`` and ``now + DEFAULT_LIFETIME``.
    """
    issued = _epoch(created_at)
    if issued is None:
        issued = now
    elif not now - CREATED_AT_TOLERANCE <= issued <= now:
        log.warning(
            "gitlab sent a created_at %s than keyturn's clock allows; counting the "
            "token's lifetime from no earlier than %d seconds ago",
            "later" if issued > now else "earlier",
            CREATED_AT_TOLERANCE,
        )
        issued = min(now, max(issued, now - CREATED_AT_TOLERANCE))
    return int(issued) + DEFAULT_LIFETIME


def _with_expiry(tokens: TokenSet, now: float) -> TokenSet:
    """``tokens``, with an expiry derived from ``created_at`` if the response gave none.

    keyturn's parser leaves ``expires_at`` empty only when ``expires_in`` was absent (an
    unreadable one makes the token due at once), so only that case is changed.
    """
    if tokens.expires_at is not None:
        return tokens
    expires_at = derived_expiry(tokens.extra.get("created_at"), now)
    return tokens.model_copy(update={"expires_at": expires_at})


def _exchange(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    clock: Callable[[], float],
) -> Flow[TokenSet]:
    tokens = yield from flows.exchange_code_flow(
        provider, credentials, code, redirect_uri, code_verifier, clock
    )
    return _with_expiry(tokens, clock())


def _refresh(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    tokens: TokenSet,
    clock: Callable[[], float],
) -> Flow[TokenSet]:
    refreshed = yield from flows.refresh_flow(provider, credentials, tokens, clock)
    return _with_expiry(refreshed, clock())


@keyturn.hookimpl
def keyturn_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    """Register GitLab (GitLab.com unless ``base_url`` names another instance)."""
    register(GITLAB)


@keyturn.hookimpl
@keyturn.for_provider("gitlab")
def keyturn_exchange_code(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    clock: Callable[[], float],
) -> Flow[TokenSet] | None:
    """keyturn's code exchange, with :func:`derived_expiry` when ``expires_in`` is absent."""
    return _exchange(provider, credentials, code, redirect_uri, code_verifier, clock)


@keyturn.hookimpl
@keyturn.for_provider("gitlab")
def keyturn_refresh(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    tokens: TokenSet,
    clock: Callable[[], float],
) -> Flow[TokenSet] | None:
    """keyturn's refresh, with :func:`derived_expiry` when ``expires_in`` is absent."""
    return _refresh(provider, credentials, tokens, clock)
