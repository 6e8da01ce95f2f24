"""An OpenID Connect provider as a :class:`keyturn.ProviderSpec`: its issuer, and nothing else.

:func:`provider` builds the spec an app passes to ``Keyturn(providers=[...])``; the
environment convention (:mod:`keyturn_oidc.environ`) builds the same specs from variables.
Both refuse settings that cannot work before any request is sent, each with a
:class:`keyturn.ConfigurationError` that names the setting: the argument in code, the
variable in the environment.

What a spec built here holds, and why:

* ``issuer`` exactly as given, a final ``/`` included: the discovery document's ``issuer``
  must be that very string (OpenID Connect Discovery 1.0, section 4.3), and some providers'
  issuers end with a slash (Auth0's ``https://<tenant>.auth0.com/``). An https URL without a
  query or fragment; plain http only on a loopback host.
* ``discovery_url``: the issuer with its final ``/`` removed and
  ``/.well-known/openid-configuration`` appended (Discovery 1.0, section 4), unless given. A
  multi-tenant issuer template (``https://login.microsoftonline.com/{tenantid}/v2.0``) is not
  a URL to fetch: it needs ``discovery_url`` and ``issuer_claims`` (the ID-token claim that
  fills each placeholder), as keyturn's ``ProviderSpec`` describes.
* No endpoints: keyturn reads the authorization, token, userinfo, revocation and end-session
  endpoints, the key set (``jwks_uri``), the signing algorithms, PKCE and RFC 9207 support
  from the document, and its default flows do the rest.
* ``default_scopes`` ``openid email profile``; ``openid`` is required, since without it the
  provider sends no ID token.
* no ``client_auth`` of its own: keyturn picks the secret method the document lists
  (``client_secret_post`` or ``client_secret_basic``; Basic when the document lists none, the
  default OpenID Connect Discovery 1.0 gives ``token_endpoint_auth_methods_supported``). Pass
  ``client_auth=`` to choose (``private_key_jwt`` needs the client's key, so it is never
  picked for the app).
* ``extra_authorize_params``: the optional authorization request parameters of OpenID Connect
  Core 1.0, section 3.1.2.1 (``prompt``, ``login_hint``, ``max_age``...), so a caller may
  pass them per call.

Sources: https://openid.net/specs/openid-connect-discovery-1_0.html,
https://openid.net/specs/openid-connect-core-1_0.html.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from keyturn import ConfigurationError, ProviderSpec
from keyturn.flows import url_problem

__all__ = [
    "DEFAULT_SCOPES",
    "OIDC_AUTHORIZE_PARAMS",
    "WELL_KNOWN",
    "Names",
    "build",
    "discovery_url_for",
    "provider",
]

#: The path OpenID Connect Discovery 1.0 section 4 appends to an issuer.
WELL_KNOWN = "/.well-known/openid-configuration"
#: The scopes a sign-in asks for unless told otherwise.
DEFAULT_SCOPES = ("openid", "email", "profile")
#: The optional authorization request parameters of OpenID Connect Core 1.0 §3.1.2.1 that a
#: caller may pass per call: ``kt.authorize_url("corp", uri, prompt="login")``.
OIDC_AUTHORIZE_PARAMS = frozenset(
    {"display", "prompt", "max_age", "ui_locales", "id_token_hint", "login_hint", "acr_values"}
)

#: A placeholder of a multi-tenant issuer template: ``{tenantid}``.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: What a caller of :func:`provider` calls the spec fields it names differently.
_ARGUMENTS = {"default_scopes": "scopes"}


def discovery_url_for(issuer: str) -> str:
    """Where an issuer publishes its metadata (OpenID Connect Discovery 1.0, section 4).

    >>> discovery_url_for("https://dev-abc123.us.auth0.com/")
    'https://dev-abc123.us.auth0.com/.well-known/openid-configuration'
    """
    return issuer.rstrip("/") + WELL_KNOWN


@dataclass(frozen=True)
class Names:
    """How errors name each setting: an argument of :func:`provider`, or a variable.

    :ivar prefix: what starts every message (``"corp: "`` in code, empty for variables,
        whose names say which provider they belong to).
    :ivar name: the name of a spec field's setting: ``"issuer"`` or ``"KEYTURN_CORP_ISSUER"``.
    """

    prefix: str
    name: Callable[[str], str]

    def error(self, field: str, problem: str) -> ConfigurationError:
        """The error for one setting."""
        return ConfigurationError(f"{self.prefix}{self.name(field)} {problem}")


def _in_code(provider_id: str) -> Names:
    return Names(f"{provider_id}: ", lambda field: _ARGUMENTS.get(field, field))


def _scopes(value: Sequence[str] | str) -> tuple[str, ...]:
    """Scopes from a list, or from one string separated by spaces or commas."""
    if isinstance(value, str):
        return tuple(part for part in re.split(r"[\s,]+", value) if part)
    return tuple(value)


def build(
    provider_id: str,
    issuer: str,
    *,
    name: str | None,
    scopes: Sequence[str] | str,
    discovery_url: str | None,
    fields: Mapping[str, Any],
    names: Names,
) -> ProviderSpec:
    """The spec of one provider; :func:`provider` and the environment both end here.

    :param fields: more :class:`~keyturn.ProviderSpec` fields, over this module's defaults.
    :param names: how errors name each setting.
    :raises ConfigurationError: naming the setting that cannot work.
    """
    if not isinstance(issuer, str) or not issuer:
        raise names.error("issuer", "must be the provider's issuer URL")
    problem = url_problem(issuer, query=False)
    if problem is not None:
        raise names.error("issuer", f"{problem}: {issuer!r}")
    placeholders = set(_PLACEHOLDER.findall(issuer))
    claims = fields.get("issuer_claims") or {}
    if placeholders != set(claims):
        if not placeholders:
            raise names.error(
                "issuer_claims", "is only for an issuer with {placeholders}, and this one has none"
            )
        wanted = ", ".join("{" + placeholder + "}" for placeholder in sorted(placeholders))
        raise names.error(
            "issuer_claims",
            f"must map each placeholder of the issuer ({wanted}) to the ID-token claim that "
            "fills it (Microsoft's {tenantid}: tid)",
        )
    if placeholders and discovery_url is None:
        raise names.error(
            "discovery_url",
            f"is needed: the issuer {issuer!r} is a multi-tenant template, not a URL to fetch "
            "(Microsoft's: https://login.microsoftonline.com/common/v2.0"
            f"{WELL_KNOWN})",
        )
    url = discovery_url if discovery_url is not None else discovery_url_for(issuer)
    problem = url_problem(url)
    if problem is not None:
        raise names.error("discovery_url", f"{problem}: {url!r}")
    wanted_scopes = _scopes(scopes)
    if "openid" not in wanted_scopes:
        raise names.error(
            "default_scopes",
            f"must include openid, or the provider sends no ID token: {' '.join(wanted_scopes)!r}",
        )
    values: dict[str, Any] = {
        "extra_authorize_params": OIDC_AUTHORIZE_PARAMS,
        **fields,
        "id": provider_id,
        "name": name or urlsplit(issuer).hostname or provider_id,
        "issuer": issuer,
        "discovery_url": url,
        "default_scopes": wanted_scopes,
    }
    try:
        return ProviderSpec(**values)
    except ValidationError as exc:
        raise _spec_error(exc, names) from None


def _spec_error(exc: ValidationError, names: Names) -> ConfigurationError:
    """The first problem pydantic found, naming the setting (values are settings, no secret)."""
    error = exc.errors()[0]
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["loc"]:
        field = str(error["loc"][0])
        return names.error(field, f"is not usable: {message} ({error['input']!r})")
    return ConfigurationError(f"{names.prefix}{message}")


def provider(
    id: str,
    issuer: str,
    *,
    name: str | None = None,
    scopes: Sequence[str] | str = DEFAULT_SCOPES,
    discovery_url: str | None = None,
    **spec_fields: Any,
) -> ProviderSpec:
    """The spec of an OpenID Connect provider, from its issuer; pass it to
    ``Keyturn(providers=[...])`` or ``AsyncKeyturn(providers=[...])``.

    ::

        corp = keyturn_oidc.provider("corp", "https://id.corp.example")
        entra = keyturn_oidc.provider(
            "entra",
            "https://login.microsoftonline.com/{tenantid}/v2.0",
            discovery_url="https://login.microsoftonline.com/common/v2.0"
            "/.well-known/openid-configuration",
            issuer_claims={"tenantid": "tid"},
        )
        kt = keyturn.Keyturn(providers=[corp, entra])

    :param id: the provider id (``corp``): lower-case letters, digits, ``-`` and ``_``. The
        client reads its credentials from ``KEYTURN_<ID>_CLIENT_ID`` and ``_CLIENT_SECRET``.
    :param issuer: the issuer URL, exactly as the provider's discovery document writes it
        (a final ``/`` included), or a multi-tenant template with ``issuer_claims``.
    :param name: the display name; the issuer's host by default.
    :param scopes: what a sign-in asks for; must include ``openid``.
    :param discovery_url: where the metadata is read; ``<issuer>/.well-known/
        openid-configuration`` by default, required for an issuer template.
    :param spec_fields: any other :class:`keyturn.ProviderSpec` field: ``issuer_claims``,
        ``issuer_claim_values``, ``client_auth`` (``private_key_jwt``...; by default the
        secret method the document lists), ``authorize_params``, ``trusted_audiences``,
        ``endpoint_hosts`` (hosts besides the issuer's that the document may name: Google's
        ``oauth2.googleapis.com``...), an endpoint to use instead of the document's...
    :raises ConfigurationError: a setting that cannot work, named.
    """
    if "default_scopes" in spec_fields:
        raise TypeError("provider() takes scopes=, not default_scopes=")
    return build(
        id,
        issuer,
        name=name,
        scopes=scopes,
        discovery_url=discovery_url,
        fields=spec_fields,
        names=_in_code(id),
    )
