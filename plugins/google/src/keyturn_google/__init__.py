"""Google for keyturn.

What the spec and the revoke hook encode, each fact with its source in brackets (the sources
are listed with their URLs at the end; ``docs/providers/google.md`` gathers the same facts
with the cassettes that show them):

* ID tokens are verified with Google's keys: the key set at
  ``www.googleapis.com/oauth2/v3/certs`` (``jwks_uri``), RS256 only
  (``id_token_signing_alg_values_supported``) [discovery; validating]. keyturn checks the
  signature of every ID token Google returns, at sign-in and on every refresh that brings
  one, and fetches the set again when a token names a ``kid`` it does not hold (Google
  changes its keys from time to time [validating]). The spec types its endpoints rather
  than reading the discovery document: they are documented and stable, and a sign-in then
  needs no request for the document.
* Every redirect back names the issuer (``iss``, RFC 9207) [discovery], so a callback that
  leaves it out is refused.
* Authorize at ``accounts.google.com/o/oauth2/v2/auth`` with ``access_type=offline`` and
  ``prompt=consent`` by default, because Google issues a refresh token only on a consent
  that asks for offline access ("The refresh_token is only returned on the first
  authorization" [web server]; "Refresh tokens are typically only issued the first time a
  user grants consent for your app, or when prompt=consent is added" [health codelab]).
  ``include_granted_scopes`` and ``login_hint`` [web server] and ``hd`` [OIDC guide] may be
  passed per call; each default can be overridden per call (``prompt="select_account"``).
* Tokens at ``oauth2.googleapis.com/token`` with ``client_secret_post``; PKCE ``S256``
  [web server; discovery: ``token_endpoint_auth_methods_supported`` and
  ``code_challenge_methods_supported``].
* Refresh tokens do not rotate: refresh responses carry no ``refresh_token`` and the old one
  stays valid (keyturn's parser keeps it) [web server, the refresh sample; gcsfs recording;
  google-auth ``_handle_refresh_grant_response``].
* Errors come with 400 (``invalid_grant``, ``invalid_request``) or 401 (``invalid_client``,
  ``unauthorized_client``): Google documents the codes [web server, "Authorization errors"],
  the statuses are those of real responses quoted in public issues, which
  ``docs/providers/google.md`` lists with their URLs. ``internal_failure`` is retryable, as in
  google-auth [google-auth ``_can_retry``].
* Revoke is a POST of ``token=...`` alone (no client authentication) to
  ``oauth2.googleapis.com/revoke`` [web server, "Revoking a token"]; revoking a token that is
  already dead answers 400 ``invalid_token``, which counts as revoked (a reported answer, not
  documented: see docs/providers/google.md).

Sources:

* web server: Google Identity, "Using OAuth 2.0 for Web Server Applications",
  https://developers.google.com/identity/protocols/oauth2/web-server
* health codelab: Google Health API codelab "Make your first Google Health API call",
  https://developers.google.com/health/codelabs/make-your-first-api-call
* OIDC guide: Google Identity, "OpenID Connect",
  https://developers.google.com/identity/openid-connect/openid-connect
* discovery: Google's OpenID Connect reference and discovery document,
  https://developers.google.com/identity/openid-connect/reference and
  https://accounts.google.com/.well-known/openid-configuration
* validating: Google Identity, "OpenID Connect", validating an ID token,
  https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken
* gcsfs recording: a real refresh response (2021) without ``refresh_token``,
  https://github.com/fsspec/gcsfs/blob/2f2b270624c490eeabf9fc44c606e69fdb5f3843/gcsfs/tests/recordings/test_many_connect_new.yaml
* google-auth: Google's Python client library, ``google/oauth2/_client.py``,
  https://github.com/googleapis/google-auth-library-python/blob/main/google/oauth2/_client.py
"""

from __future__ import annotations

from collections.abc import Callable

import keyturn
from keyturn import ClientCredentials, Flow, HttpRequest, ProviderSpec, TokenSet, flows

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
    # also returned for legacy implementations" (Google's OpenID Connect reference,
    # https://developers.google.com/identity/openid-connect/reference).
    issuer_aliases=frozenset({"accounts.google.com"}),
    # Google's discovery document (https://accounts.google.com/.well-known/openid-configuration)
    # lists "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs" and
    # "id_token_signing_alg_values_supported": ["RS256"]; Google says to verify the ID token's
    # signature with those keys ("Validating an ID token",
    # https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken).
    jwks_uri="https://www.googleapis.com/oauth2/v3/certs",
    id_token_signing_algs=frozenset({"RS256"}),
    # RFC 9207: Google's redirects back carry iss=https://accounts.google.com, and keyturn
    # compares it whenever it is there. It is not *required*: the reference lists
    # authorization_response_iss_parameter_supported among the fields a discovery document
    # may have (https://developers.google.com/identity/openid-connect/reference), but the
    # document Google serves (https://accounts.google.com/.well-known/openid-configuration,
    # cassettes/google/discovery.yaml) does not set it, and RFC 9207 section 2.4 makes a
    # missing iss a refusal only where the provider's metadata says it sends one.
    authorization_response_iss=False,
    default_scopes=("openid", "email", "profile"),
    authorize_params={"access_type": "offline", "prompt": "consent"},
    extra_authorize_params=frozenset({"include_granted_scopes", "login_hint", "hd"}),
    client_auth="client_secret_post",
    pkce_method="S256",
    rotates_refresh_tokens=False,
    # Google's own client library retries these (google.oauth2._client._can_retry,
    # https://github.com/googleapis/google-auth-library-python/blob/main/google/oauth2/_client.py).
    transient_errors=frozenset({"internal_failure"}),
    # Workspace policy blocks and deleted clients do not heal on retry: admin_policy_enforced
    # ("an admin set any of the services requested in your app's scopes to Restricted",
    # https://developers.google.com/identity/protocols/oauth2#expiration) and deleted_client
    # (the error Google names for a deleted OAuth client,
    # https://developers.google.com/identity/protocols/oauth2/web-server#authorization-errors).
    permanent_errors=frozenset({"admin_policy_enforced", "deleted_client"}),
)


@keyturn.hookimpl
def keyturn_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(GOOGLE)


def _revoke(provider: ProviderSpec, tokens: TokenSet) -> Flow[None]:
    # Revoking the refresh token revokes the whole grant, its access tokens included ("If the
    # token is an access token and it has a corresponding refresh token, the refresh token
    # will also be revoked",
    # https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke).
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
