"""Okta for keyturn.

Okta serves each customer on its own domain (``acme.okta.com``, or a custom domain), and
under it one or more *authorization servers*. The spec is a template filled from two
deployment settings (see ``docs/deployment.md``):

* ``domain`` (``KEYTURN_OKTA_DOMAIN``, required): the Okta domain, a host name.
* ``authorization_server`` (``KEYTURN_OKTA_AUTHORIZATION_SERVER``, default ``default``): the
  id of a custom authorization server, which puts every URL under ``/oauth2/<id>``
  [authorization servers]. The value ``org`` selects the *org authorization server*, whose
  URLs have no id (``https://<domain>/oauth2/v1/...``) and whose issuer is the bare
  ``https://<domain>`` [org metadata]; this plugin's ``keyturn_deploy`` hook writes those
  URLs, as no placeholder can. Okta generates custom server ids (``aus...``), so ``org`` never
  names one.

What the spec encodes, each fact with its source in brackets (URLs at the end;
``docs/providers/okta.md`` gathers them):

* Endpoints ``/v1/authorize``, ``/v1/token``, ``/v1/userinfo``, ``/v1/revoke``,
  ``/v1/logout`` (RP-initiated logout, ``end_session_endpoint``) and the key set at
  ``/v1/keys`` under the authorization server; its discovery document is at
  ``<issuer>/.well-known/openid-configuration`` [custom metadata; org metadata]. The
  endpoints are typed rather than discovered, so a sign-in needs no request for the
  document; ``cassettes/okta/discovery.yaml`` holds the documented example, and keyturn's
  conformance suite checks the spec against it.
* ID tokens signed with RS256, verified against ``jwks_uri`` [custom metadata].
* PKCE ``S256`` (the only method the documents list); client authentication
  ``client_secret_basic``, the method Okta's own token examples use [refresh guide].
* A refresh token only for the ``offline_access`` scope [refresh guide]: it is among the
  default scopes.
* Refresh-token rotation is a setting of each app: "Rotate token after every use" or
  "Use persistent token"; rotating is the default for single-page apps [rotation guide].
  With rotation, reusing a rotated refresh token after the grace period "immediately
  invalidates the most recently issued refresh token and all access tokens issued since the
  user authenticated"; within the grace period "the previous token remains valid" [rotation
  guide]. The grace period ("leeway") is 0 to 60 seconds, 30 by default [refresh guide; Okta
  management API, ``OpenIdConnectApplicationSettingsRefreshToken.leeway``]. The settings
  ``rotation`` (default ``detect_reuse``: the safe reading whatever the app chose, since
  keyturn sends each refresh token once and keeps the old one when none comes back) and
  ``refresh_reuse_grace`` (default 30) say what the app chose.
* A dead refresh token answers 400 ``invalid_grant`` "The refresh token is invalid or
  expired." (the answer quoted in okta/okta-react-native#287), which keyturn's defaults read
  as permanent.

Sources:

* authorization servers: https://developer.okta.com/docs/concepts/auth-servers/
* custom metadata: https://developer.okta.com/docs/api/openapi/okta-oauth/oauth/customas/getwellknownopenidconfigurationcustomas
* org metadata: https://developer.okta.com/docs/api/openapi/okta-oauth/oauth/orgas
* refresh guide: https://developer.okta.com/docs/guides/refresh-tokens/main/
* rotation guide: https://developer.okta.com/docs/guides/refresh-tokens/refresh-token-rotation/
* okta/okta-react-native#287: https://github.com/okta/okta-react-native/issues/287
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import keyturn
from keyturn import DeploymentSetting, ProviderSpec, flows

__all__ = ["MAX_GRACE", "OKTA", "ORG_AUTHORIZATION_SERVER", "org_server"]

#: The longest grace period for token rotation Okta allows, in seconds.
MAX_GRACE = 60
#: The value of ``authorization_server`` that selects the org authorization server.
ORG_AUTHORIZATION_SERVER = "org"

_SERVER = "https://{domain}/oauth2/{authorization_server}"
#: The spec fields that hold the authorization server's path.
_URL_FIELDS = (
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "revocation_endpoint",
    "end_session_endpoint",
    "issuer",
    "jwks_uri",
    "discovery_url",
)

OKTA = ProviderSpec(
    id="okta",
    name="Okta",
    authorization_endpoint=f"{_SERVER}/v1/authorize",
    token_endpoint=f"{_SERVER}/v1/token",
    userinfo_endpoint=f"{_SERVER}/v1/userinfo",
    revocation_endpoint=f"{_SERVER}/v1/revoke",
    end_session_endpoint=f"{_SERVER}/v1/logout",
    issuer=_SERVER,
    jwks_uri=f"{_SERVER}/v1/keys",
    id_token_signing_algs=frozenset({"RS256"}),
    default_scopes=("openid", "profile", "email", "offline_access"),
    extra_authorize_params=frozenset(
        {"prompt", "login_hint", "max_age", "acr_values", "idp", "sessionToken", "display"}
    ),
    client_auth="client_secret_basic",
    pkce_method="S256",
    rotation="detect_reuse",
    refresh_reuse_grace=30,
    settings=(
        DeploymentSetting(
            name="domain",
            kind="host",
            description="your Okta domain, such as acme.okta.com (Admin Console, top right)",
        ),
        DeploymentSetting(
            name="authorization_server",
            kind="segment",
            default="default",
            description=(
                "the id of the custom authorization server (Security > API), or 'org' for "
                "the org authorization server"
            ),
        ),
        DeploymentSetting(
            name="rotation",
            kind="rotation",
            default="detect_reuse",
            description="the app's Refresh token behavior: detect_reuse when it rotates",
        ),
        DeploymentSetting(
            name="refresh_reuse_grace",
            kind="seconds",
            default="30",
            description="the app's grace period for token rotation, 0 to 60 seconds",
        ),
    ),
)


def org_server(spec: ProviderSpec) -> ProviderSpec:
    """``spec`` with its URLs moved from a custom authorization server to the org one.

    The org authorization server has no id in its paths: ``/oauth2/v1/token`` rather than
    ``/oauth2/<id>/v1/token``, and its issuer is the domain alone. A URL that does not hold
    the template's server path (a spec pointed elsewhere) is left as it is.
    """
    marker = "/oauth2/{authorization_server}"
    update: dict[str, str] = {}
    for field in _URL_FIELDS:
        value = getattr(spec, field)
        if value and marker in value:
            update[field] = value.replace(marker + "/", "/oauth2/").removesuffix(marker)
    return spec.model_copy(update=update)


@keyturn.hookimpl
def keyturn_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(OKTA)


@keyturn.hookimpl
@keyturn.for_provider("okta")
def keyturn_deploy(provider: ProviderSpec, settings: Mapping[str, str]) -> ProviderSpec | None:
    """The org authorization server's URLs for ``authorization_server=org``; else the
    default (``None``).

    :raises keyturn.ConfigurationError: a ``refresh_reuse_grace`` over Okta's 60 seconds.
    """
    grace = settings.get("refresh_reuse_grace")
    if grace is not None and float(grace) > MAX_GRACE:
        raise keyturn.ConfigurationError(
            f"the refresh_reuse_grace of okta is over {MAX_GRACE} seconds: Okta's grace "
            f"period for token rotation is 0 to {MAX_GRACE} seconds"
        )
    if settings.get("authorization_server") != ORG_AUTHORIZATION_SERVER:
        return None
    return flows.deploy(org_server(provider), settings)
