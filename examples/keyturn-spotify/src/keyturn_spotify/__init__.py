"""Spotify for keyturn: a provider plugin that is nothing but its ProviderSpec.

Spotify's accounts service follows RFC 6749 and RFC 7636, so keyturn's default flows serve it
unchanged and this plugin implements one hook, ``keyturn_register_providers``. It is the
worked example of keyturn's plugin tutorial (``docs/writing-a-provider-plugin.md``).

What the spec encodes, and where it comes from:

* Endpoints ``https://accounts.spotify.com/authorize`` and
  ``https://accounts.spotify.com/api/token``: Spotify for Developers, "Authorization Code with
  PKCE Flow"
  (https://developer.spotify.com/documentation/web-api/tutorials/code-pkce-flow).
* PKCE ``S256`` and no client secret: that page's flow sends ``code_challenge_method=S256``,
  and its token request carries ``client_id`` and ``code_verifier`` in the form, with no
  ``Authorization`` header (``client_auth="none"``).
* Refresh: a POST of ``grant_type=refresh_token``, ``refresh_token`` and, with PKCE,
  ``client_id`` ("Refreshing tokens",
  https://developer.spotify.com/documentation/web-api/tutorials/refreshing-tokens).
* Rotation ``rotate``: the refresh response of the PKCE flow carries a new
  ``refresh_token``. Spotify does not say in so many words whether the old one dies, so the
  spec takes the safe reading: each refresh token is sent once, and a response without a new
  one keeps the old one (keyturn's parser does that for every provider).
* Access tokens live one hour (``expires_in`` 3600; "Refreshing tokens"); keyturn reads
  ``expires_in`` from each response. Refresh tokens live six months from the user's
  authorization, and a refresh does not extend that (same page); the response does not say
  so, and keyturn learns of it when the refresh is refused.
* Scopes are space-separated (``user-read-private user-read-email`` in the examples); there
  is no default scope, so the spec asks for ``user-read-email`` (Spotify for Developers,
  "Scopes", https://developer.spotify.com/documentation/web-api/concepts/scopes).
* No OpenID Connect: no issuer, no ID token, no userinfo endpoint in keyturn's sense (the
  profile is the Web API's ``GET /v1/me``), and no revocation endpoint.
"""

from __future__ import annotations

from collections.abc import Callable

import keyturn
from keyturn import ProviderSpec

__all__ = ["SPOTIFY"]

SPOTIFY = ProviderSpec(
    id="spotify",
    name="Spotify",
    authorization_endpoint="https://accounts.spotify.com/authorize",
    token_endpoint="https://accounts.spotify.com/api/token",
    default_scopes=("user-read-email",),
    client_auth="none",
    pkce_method="S256",
    rotation="rotate",
)


@keyturn.hookimpl
def keyturn_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    """Register Spotify."""
    register(SPOTIFY)
