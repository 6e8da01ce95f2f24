"""OpenID Connect providers declared in the environment.

``KEYTURN_OIDC_PROVIDERS`` lists provider ids, separated by spaces or commas; each id then
has variables of its own, named ``KEYTURN_<ID>_...`` with the id in upper case and ``-``
written ``_`` (the prefix keyturn reads the client's credentials under too)::

    KEYTURN_OIDC_PROVIDERS="corp partner"
    KEYTURN_CORP_ISSUER=https://id.corp.example          # required
    KEYTURN_CORP_CLIENT_ID=...                           # read by the client, as for any
    KEYTURN_CORP_CLIENT_SECRET=...                       # provider
    KEYTURN_PARTNER_ISSUER=https://partner.example/realms/apps

Each id's variables, all but the issuer optional (an empty value counts as unset):

=========================  ==================================================================
``_ISSUER``                the issuer URL, exactly as the provider's discovery document
                           writes it (a final ``/`` included)
``_NAME``                  the display name (the issuer's host)
``_SCOPES``                the scopes of a sign-in, separated by spaces or commas (``openid
                           email profile``); must include ``openid``
``_DISCOVERY_URL``         where the metadata is read (``<issuer>/.well-known/
                           openid-configuration``)
``_ISSUER_CLAIMS``         for an issuer template, each placeholder and the ID-token claim
                           that fills it: ``tenantid=tid`` (pairs separated by spaces)
``_ISSUER_CLAIM_VALUES``   the only values a placeholder may take: ``tenantid=<id>,<id>``
``_CLIENT_AUTH``           how the client authenticates at the token endpoint
                           (``private_key_jwt``...; the secret method the document lists)
``_AUTHORIZE_PARAMS``      authorize parameters sent with every sign-in, as a URL query:
                           ``audience=https%3A%2F%2Fapi.example&prompt=consent``
``_ENDPOINT_HOSTS``        hosts besides the issuer's that the document may put endpoints
                           on, separated by spaces or commas (``graph.microsoft.com``)
=========================  ==================================================================

Everything is checked when a client is built, and a setting that cannot work is a
:class:`keyturn.ConfigurationError` naming its variable: an id that is not one, an id listed
twice, two ids whose variables would share a prefix, a listed id without ``_ISSUER``, an
issuer that is not an https URL (plain http only on a loopback host), and the rest of what
:func:`keyturn_oidc.provider` refuses. No variable here holds a secret, so messages may show
the values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from keyturn import ConfigurationError, ProviderSpec

from .spec import DEFAULT_SCOPES, Names, build

__all__ = ["PROVIDERS_VARIABLE", "SETTINGS", "env_prefix", "provider_ids", "providers_from_env"]

#: The variable that lists the providers declared in the environment.
PROVIDERS_VARIABLE = "KEYTURN_OIDC_PROVIDERS"
#: Each spec field set from the environment, and its variable's name after ``KEYTURN_<ID>_``.
SETTINGS = {
    "issuer": "ISSUER",
    "name": "NAME",
    "default_scopes": "SCOPES",
    "discovery_url": "DISCOVERY_URL",
    "issuer_claims": "ISSUER_CLAIMS",
    "issuer_claim_values": "ISSUER_CLAIM_VALUES",
    "client_auth": "CLIENT_AUTH",
    "authorize_params": "AUTHORIZE_PARAMS",
    "endpoint_hosts": "ENDPOINT_HOSTS",
}

#: A provider id, as ``keyturn.ProviderSpec`` allows them.
_ID = re.compile(r"^[a-z][a-z0-9_-]*$")
#: A name on the left of ``=``: a placeholder of an issuer template.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_prefix(provider_id: str) -> str:
    """``KEYTURN_<ID>_``: the prefix of a provider's variables, as keyturn reads credentials."""
    return "KEYTURN_" + provider_id.upper().replace("-", "_") + "_"


def provider_ids(environ: Mapping[str, str]) -> list[str]:
    """The ids ``KEYTURN_OIDC_PROVIDERS`` lists, in order.

    :raises ConfigurationError: an id that is not one, an id listed twice, or two ids whose
        variables would share a prefix (``my-idp`` and ``my_idp``).
    """
    raw = environ.get(PROVIDERS_VARIABLE, "")
    found: list[str] = []
    prefixes: dict[str, str] = {}
    for provider_id in (part for part in re.split(r"[\s,]+", raw) if part):
        if not _ID.match(provider_id):
            raise ConfigurationError(
                f"{PROVIDERS_VARIABLE} lists {provider_id!r}, which is not a provider id "
                "(lower-case letters, digits, '-' and '_', starting with a letter)"
            )
        if provider_id in found:
            raise ConfigurationError(f"{PROVIDERS_VARIABLE} lists {provider_id!r} twice")
        prefix = env_prefix(provider_id)
        if prefix in prefixes:
            raise ConfigurationError(
                f"{PROVIDERS_VARIABLE} lists {prefixes[prefix]!r} and {provider_id!r}, whose "
                f"variables would both be named {prefix}...: rename one"
            )
        prefixes[prefix] = provider_id
        found.append(provider_id)
    return found


def _pairs(variable: str, value: str) -> list[tuple[str, str]]:
    """``name=value`` items separated by spaces.

    :raises ConfigurationError: an item without ``=``, or with a name that is not one.
    """
    pairs = []
    for item in value.split():
        name, sign, rest = item.partition("=")
        if not sign or not _NAME.match(name) or not rest:
            raise ConfigurationError(
                f"{variable} must be name=value pairs separated by spaces (tenantid=tid), "
                f"not {item!r}"
            )
        pairs.append((name, rest))
    return pairs


def _read(provider_id: str, environ: Mapping[str, str]) -> ProviderSpec:
    """One provider's spec from its variables."""
    prefix = env_prefix(provider_id)

    def variable(field: str) -> str:
        if field == "id":
            return PROVIDERS_VARIABLE
        return prefix + SETTINGS.get(field, field.upper())

    def get(field: str) -> str | None:
        return environ.get(variable(field), "").strip() or None

    issuer = get("issuer")
    if issuer is None:
        raise ConfigurationError(
            f"{PROVIDERS_VARIABLE} lists {provider_id!r}, but {variable('issuer')} is not set "
            "(the provider's issuer URL, as its discovery document writes it)"
        )
    fields: dict[str, Any] = {}
    claims = get("issuer_claims")
    if claims is not None:
        fields["issuer_claims"] = dict(_pairs(variable("issuer_claims"), claims))
    allowed = get("issuer_claim_values")
    if allowed is not None:
        values: dict[str, set[str]] = {}
        for name, listed in _pairs(variable("issuer_claim_values"), allowed):
            values.setdefault(name, set()).update(part for part in listed.split(",") if part)
        fields["issuer_claim_values"] = {name: frozenset(v) for name, v in values.items()}
    client_auth = get("client_auth")
    if client_auth is not None:
        fields["client_auth"] = client_auth
    params = get("authorize_params")
    if params is not None:
        try:
            fields["authorize_params"] = dict(parse_qsl(params, strict_parsing=True))
        except ValueError:
            raise ConfigurationError(
                f"{variable('authorize_params')} must be a URL query (audience=...&prompt=...), "
                f"not {params!r}"
            ) from None
    hosts = get("endpoint_hosts")
    if hosts is not None:
        fields["endpoint_hosts"] = frozenset(part for part in re.split(r"[\s,]+", hosts) if part)
    return build(
        provider_id,
        issuer,
        name=get("name"),
        scopes=get("default_scopes") or DEFAULT_SCOPES,
        discovery_url=get("discovery_url"),
        fields=fields,
        names=Names("", variable),
    )


def providers_from_env(environ: Mapping[str, str] | None = None) -> list[ProviderSpec]:
    """The providers the environment declares, in the order ``KEYTURN_OIDC_PROVIDERS``
    lists them; none when it is unset.

    The plugin registers these when a client is built, reading the client's environment
    (``Keyturn(environ=...)``, ``os.environ`` by default); call this with a mapping of your
    own to build the same specs for ``Keyturn(providers=[...])``.

    :param environ: where to read the variables (``os.environ``).
    :raises ConfigurationError: naming the variable that cannot work.
    """
    env = os.environ if environ is None else environ
    return [_read(provider_id, env) for provider_id in provider_ids(env)]
