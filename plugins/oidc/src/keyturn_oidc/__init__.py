"""Any OpenID Connect provider for keyturn, from its issuer URL.

An app declares providers by id and issuer, in code (:func:`provider`, passed to
``Keyturn(providers=[...])``) or in the environment (``KEYTURN_OIDC_PROVIDERS`` and
``KEYTURN_<ID>_ISSUER``, see :mod:`keyturn_oidc.environ`, registered by this plugin's
``keyturn_register_providers``). Each spec names its issuer and its discovery document and no
endpoint: keyturn reads the provider's metadata (OpenID Connect Discovery 1.0,
https://openid.net/specs/openid-connect-discovery-1_0.html), checks that it names the
configured issuer, and serves everything with its own default flows:

* sign-in: the authorization endpoint, PKCE (``S256`` unless the document offers ``plain``
  only), RFC 9207's ``iss`` when the document says the provider sends it;
* code exchange and refresh at the token endpoint, every ID token verified with the keys at
  ``jwks_uri``, with the algorithms the document lists (never ``none`` or HMAC);
* userinfo at ``userinfo_endpoint`` (its ``sub`` must be the ID token's, and stays the
  profile's id);
* revocation (RFC 7009) at ``revocation_endpoint`` when the document has one; without one,
  ``revoke()`` raises :class:`keyturn.ConfigurationError` and the web sign-out skips it;
* logout at the provider through ``end_session_endpoint`` (OpenID Connect RP-Initiated
  Logout 1.0), which the resolved spec carries.

So this plugin implements no provider hook: its one hook registers the providers the
environment declares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import keyturn
from keyturn import ProviderSpec

from .environ import PROVIDERS_VARIABLE, env_prefix, providers_from_env
from .spec import DEFAULT_SCOPES, WELL_KNOWN, discovery_url_for, provider

__all__ = [
    "DEFAULT_SCOPES",
    "PROVIDERS_VARIABLE",
    "WELL_KNOWN",
    "discovery_url_for",
    "env_prefix",
    "provider",
    "providers_from_env",
]


@keyturn.hookimpl(trylast=True)
def keyturn_register_providers(
    register: Callable[[ProviderSpec], None], environ: Mapping[str, str]
) -> None:
    """Register the providers ``KEYTURN_OIDC_PROVIDERS`` lists in the client's environment
    (its ``environ=`` option, ``os.environ`` by default).

    Called after every other plugin's registration (``trylast``), so an id that another
    installed plugin registers is refused here, with the variable named, rather than
    replacing that plugin's provider.

    :raises keyturn.ConfigurationError: a variable that cannot work, or an id taken.
    """
    for spec in providers_from_env(environ):
        try:
            register(spec)
        except keyturn.PluginError as exc:
            raise keyturn.ConfigurationError(
                f"{PROVIDERS_VARIABLE} lists {spec.id!r}, an id another installed plugin "
                f"registers already ({exc}); choose another id"
            ) from None
