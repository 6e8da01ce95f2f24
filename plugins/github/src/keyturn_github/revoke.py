"""Revoking a GitHub grant through the REST API.

``DELETE /applications/{client_id}/grant`` with the JSON body ``{"access_token": ...}``,
authenticated as the app with HTTP Basic ``client_id:client_secret``, deletes the user's
grant and every token issued under it. (Pointing the spec's ``revocation_endpoint`` at
``/applications/{client_id}/token`` instead revokes the one access token.) GitHub documents
two answers: 204 No Content, and 422 "Validation failed, or the endpoint has been spammed".
Source: GitHub Docs, "REST API endpoints for OAuth authorizations", "Delete an app
authorization" and "Delete an app token",
https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-authorization

How the answers are read:

* 204 (or any 2xx): revoked.
* 404: GitHub does not know the token, so it no longer works: counted as revoked, as keyturn
  counts an RFC 7009 ``invalid_token``. GitHub does not document this status for the
  endpoint (its REST troubleshooting page says only that GitHub answers 404 where it will not
  confirm that a resource exists,
  https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api). An unknown
  client id might answer the same, but that client id already served the code exchange that
  issued the token.
* 422: an error, classified transient: one of the two causes GitHub names (spam protection)
  passes with time, and a revocation that did not happen must not pass for one that did.
* Anything else: an error, classified by its status (401 bad client credentials: permanent;
  "Authenticating with invalid credentials will initially return a ``401 Unauthorized``
  response", https://docs.github.com/en/rest/authentication/authenticating-to-the-rest-api).

The endpoint takes the access token, not the refresh token. An expiring GitHub App token
(8 hours) that has already expired may no longer identify the grant; refresh it first
(``Keyturn.jwt`` does when it is due) and revoke with the fresh one.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote

from keyturn import ClientCredentials, ConfigurationError, Flow, HttpRequest, ProviderSpec, TokenSet

from .rest import MEDIA_TYPE, api_error

__all__ = ["basic_authorization", "grant_url", "revoke_flow"]

log = logging.getLogger("keyturn")

#: The placeholder in ``revocation_endpoint`` that the app's client id replaces.
CLIENT_ID_FIELD = "{client_id}"


def grant_url(provider: ProviderSpec, client_id: str) -> str:
    """The spec's revocation endpoint with ``{client_id}`` filled in (percent-encoded).

    :raises ConfigurationError: the spec has no revocation endpoint.
    """
    template = provider.revocation_endpoint
    if template is None:
        raise ConfigurationError(f"{provider.id} declares no revoke endpoint")
    return template.replace(CLIENT_ID_FIELD, quote(client_id, safe=""))


def basic_authorization(client_id: str, client_secret: str) -> str:
    """The ``Authorization`` value for HTTP Basic (RFC 7617): ``Basic base64(id:secret)``.

    GitHub's REST API takes the pair as is, without the form-encoding RFC 6749 applies to
    token endpoints: "use the app's client ID as the username and the app's client secret as
    the password" (GitHub Docs, "Authenticating to the REST API", "Using basic authentication",
    https://docs.github.com/en/rest/authentication/authenticating-to-the-rest-api).
    """
    pair = f"{client_id}:{client_secret}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def revoke_flow(
    provider: ProviderSpec, credentials: ClientCredentials, tokens: TokenSet
) -> Flow[None]:
    """Delete the user's grant at GitHub.

    :param provider: the GitHub spec (or a copy pointing at another server).
    :param credentials: the app's client id and secret; the secret is required.
    :param tokens: the user's tokens; the access token identifies the grant.
    :return: a flow returning ``None`` once the grant is gone.
    :raises ConfigurationError: no client secret, or no revocation endpoint (raised here,
        before any request).
    :raises ProviderError: GitHub refused (see the module docs for which answers count).
    """
    secret = credentials.client_secret.get_secret_value() if credentials.client_secret else ""
    if not secret:
        raise ConfigurationError(
            f"revoking a {provider.name} grant needs the app's client secret: set it in "
            f"credentials= or {provider.env_prefix}CLIENT_SECRET"
        )
    request = HttpRequest.json(
        "DELETE",
        grant_url(provider, credentials.client_id),
        {"access_token": tokens.access_token.get_secret_value()},
        {"Accept": MEDIA_TYPE, "Authorization": basic_authorization(credentials.client_id, secret)},
    )
    return _flow(provider, request)


def _flow(provider: ProviderSpec, request: HttpRequest) -> Flow[None]:
    response = yield request
    if response.ok:
        return
    if response.status == 404:
        log.info("%s: the grant to revoke is unknown (404); counted as revoked", provider.id)
        return
    if response.status == 422:
        raise api_error(provider, "revoke", response, permanent=False)
    raise api_error(provider, "revoke", response)
