"""GitLab.com for keyturn: a provider plugin that is nothing but its ProviderSpec.

GitLab's OAuth 2.0 server is Doorkeeper, which follows RFC 6749 closely, so keyturn's default
flows serve it unchanged and this plugin implements one hook, ``keyturn_register_providers``.

What the spec encodes, and where it comes from:

* Endpoints ``/oauth/authorize``, ``/oauth/token`` and ``/oauth/revoke`` on
  ``https://gitlab.com``: GitLab, "OAuth 2.0 identity provider API"
  (https://docs.gitlab.com/api/oauth2/). ``/oauth/userinfo``: GitLab, "GitLab as OpenID
  Connect identity provider" (https://docs.gitlab.com/integration/openid_connect_provider/).
* Issuer ``https://gitlab.com``: the instance URL, which GitLab's Doorkeeper OpenID Connect
  configuration uses as issuer (``config/initializers/doorkeeper_openid_connect.rb``:
  ``issuer Gitlab.config.gitlab.url``); discovery at
  ``https://gitlab.com/.well-known/openid-configuration``. The file:
  https://gitlab.com/gitlab-org/gitlab/-/blob/master/config/initializers/doorkeeper_openid_connect.rb
* PKCE ``S256``: the API page's "Authorization code with PKCE" flow sends
  ``code_challenge_method=S256``.
* Client authentication in the form body (``client_secret_post``): the page's token and
  revoke examples post ``client_id`` and ``client_secret`` as form fields.
* Refresh tokens rotate: a refresh "invalidates the existing ``access_token`` and
  ``refresh_token``" and "sends new tokens in the response" (API page).
* Access tokens live two hours (``expires_in`` 7200 in every example; "Access tokens expire
  after two hours", "Configure GitLab as an OAuth 2.0 authentication identity provider",
  https://docs.gitlab.com/integration/oauth_provider/).
  keyturn reads ``expires_in`` from each response rather than assuming it.
* Default scopes ``openid profile email``: the OpenID Connect scopes (sign-in, profile, primary
  email address) from the scope table of the same page; ask for ``read_user``, ``api``... per
  call when the app needs the REST API.
* ``root_namespace_id`` may be passed per call: the optional authorize parameter for groups
  with SAML SSO (API page).
* Token responses are JSON with ``scope`` space-delimited (Doorkeeper's ``TokenResponse``);
  ``token_type`` is ``bearer`` (keyturn reads it as ``Bearer``); ``created_at`` is kept in
  ``TokenSet.extra``. The class:
  https://github.com/doorkeeper-gem/doorkeeper/blob/main/lib/doorkeeper/oauth/token_response.rb
* Errors follow RFC 6749 §5.2 with Doorkeeper's statuses: 401 for ``invalid_client`` and
  ``unauthorized_client``, 400 otherwise (``Doorkeeper::OAuth::ErrorResponse#status``), so
  keyturn's default classification applies with no extra lists. The class:
  https://github.com/doorkeeper-gem/doorkeeper/blob/main/lib/doorkeeper/oauth/error_response.rb

GitLab's example refresh request also carries ``redirect_uri``. RFC 6749 §6 defines no such
field for the refresh grant and Doorkeeper's ``RefreshTokenRequest`` does not read it
(https://github.com/doorkeeper-gem/doorkeeper/blob/main/lib/doorkeeper/oauth/refresh_token_request.rb),
so keyturn does not send it. Self-managed GitLab instances answer at other hosts: give the
app a copy of :data:`GITLAB` with other endpoints through ``Keyturn(providers=[...])``.
``docs/providers/gitlab.md`` gathers these facts with the cassettes that show them.
"""

from __future__ import annotations

from collections.abc import Callable

import keyturn
from keyturn import ProviderSpec

__all__ = ["GITLAB"]

GITLAB = ProviderSpec(
    id="gitlab",
    name="GitLab",
    authorization_endpoint="https://gitlab.com/oauth/authorize",
    token_endpoint="https://gitlab.com/oauth/token",
    userinfo_endpoint="https://gitlab.com/oauth/userinfo",
    revocation_endpoint="https://gitlab.com/oauth/revoke",
    issuer="https://gitlab.com",
    default_scopes=("openid", "profile", "email"),
    extra_authorize_params=frozenset({"root_namespace_id"}),
    client_auth="client_secret_post",
    pkce_method="S256",
    rotates_refresh_tokens=True,
)


@keyturn.hookimpl
def keyturn_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    """Register GitLab.com."""
    register(GITLAB)
