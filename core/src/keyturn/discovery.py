"""The OpenID Provider Metadata document, and a provider spec completed from it.

A provider that publishes its metadata (OpenID Connect Discovery 1.0,
https://openid.net/specs/openid-connect-discovery-1_0.html) needs no endpoints in its
:class:`~keyturn.ProviderSpec`: ``discovery_url`` is enough, and :func:`resolve_spec` fills
in what the spec leaves out. The client fetches the document through
:mod:`keyturn.documents` (cached, shared by concurrent callers); this module reads it.

What a document must be, each failure a :class:`~keyturn.ConfigurationError` naming the field:

* a JSON object (not HTML, not truncated, not an array) of at most 512 KiB;
* with the fields section 3 requires: ``issuer``, ``authorization_endpoint``, ``jwks_uri``,
  ``response_types_supported``, ``subject_types_supported`` and
  ``id_token_signing_alg_values_supported``, and ``token_endpoint``, which section 3 waives
  for implicit-only providers only (keyturn uses the code flow, so ``code`` must be among the
  response types too);
* whose ``issuer`` is exactly the configured one (section 4.3): the spec's ``issuer``, or,
  when the spec names none, the discovery URL without ``/.well-known/openid-configuration``
  (with or without a final ``/``). A multi-tenant issuer template
  (``https://login.microsoftonline.com/{tenantid}/v2.0``) is compared as written, and also
  accepts a document that names one tenant's issuer, the template with each placeholder
  filled by one path segment (among ``issuer_claim_values`` where the spec lists them):
  Microsoft's document for a tenant named by its domain, or for ``consumers``, names the
  tenant's id, and the spec is then pinned to that one issuer (:func:`resolve_spec`);
* whose URLs are https, or http on a loopback host (``127.0.0.1``, ``localhost``, ``::1``),
  absolute, without a fragment (the issuer without a query either);
* whose signing algorithms include one keyturn verifies: ``none`` alone, or only HMAC
  algorithms (which need the client secret, not the provider's keys), are refused.

Endpoints on other hosts than the issuer's are allowed: Google's issuer is
``https://accounts.google.com`` and its token endpoint is on ``oauth2.googleapis.com``. The
document is trusted because it is fetched over TLS from the configured URL and names the
configured issuer, as section 4.3 intends. Fields keyturn does not read are ignored.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .documents import DISCOVERY_TTL, DocumentKind, DocumentProblem
from .errors import ConfigurationError
from .flows import LOOPBACK_HOSTS, url_problem
from .jwks import SIGNING_ALGORITHMS
from .models import DEFER_BUILD, ProviderSpec

__all__ = [
    "DISCOVERY",
    "LOOPBACK_HOSTS",
    "WELL_KNOWN",
    "ProviderMetadata",
    "check_issuer",
    "check_url",
    "expected_issuers",
    "parse_metadata",
    "resolve_spec",
    "template_instance",
    "url_problem",
]

#: The path OpenID Connect Discovery 1.0 section 4 appends to an issuer.
WELL_KNOWN = "/.well-known/openid-configuration"

#: The URL fields of the metadata, each checked by :func:`url_problem`.
_URL_FIELDS = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "revocation_endpoint",
    "end_session_endpoint",
)


class ProviderMetadata(BaseModel):
    """The fields of an OpenID Provider Metadata document keyturn reads (Discovery 1.0 §3).

    Unknown fields are ignored; lists are kept as tuples.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=DEFER_BUILD)

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    response_types_supported: tuple[str, ...]
    subject_types_supported: tuple[str, ...]
    id_token_signing_alg_values_supported: tuple[str, ...]
    userinfo_endpoint: str | None = None
    revocation_endpoint: str | None = None
    end_session_endpoint: str | None = None
    token_endpoint_auth_methods_supported: tuple[str, ...] | None = None
    code_challenge_methods_supported: tuple[str, ...] | None = None
    scopes_supported: tuple[str, ...] | None = None
    authorization_response_iss_parameter_supported: bool = Field(default=False, strict=True)


def check_url(provider: str, field: str, value: str) -> None:
    """Refuse a URL of the spec (``discovery_url``, ``jwks_uri``) as :func:`url_problem` does.

    :raises ConfigurationError: naming the field.
    """
    problem = url_problem(value)
    if problem is not None:
        raise ConfigurationError(f"{provider}: {field} {problem}: {value!r}")


def parse_metadata(data: Any) -> ProviderMetadata:
    """Read a decoded discovery document; what does not depend on the provider's spec.

    :param data: the decoded JSON object.
    :raises DocumentProblem: naming the field that is missing or unusable.
    """
    try:
        metadata = ProviderMetadata.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "the document"
        if error["type"] == "missing":
            raise DocumentProblem(f"has no {field}") from None
        raise DocumentProblem(f"has an unusable {field} (not of the type section 3 sets)") from None
    for field in _URL_FIELDS:
        value = getattr(metadata, field)
        if value is None:
            continue
        problem = url_problem(value, query=field != "issuer")
        if problem is not None:
            raise DocumentProblem(f"has a {field} that {problem}: {value!r}")
    if "code" not in metadata.response_types_supported:
        raise DocumentProblem(
            "does not offer the authorization code flow (response_types_supported)"
        )
    algorithms = set(metadata.id_token_signing_alg_values_supported)
    if algorithms <= {"none"}:
        raise DocumentProblem(
            "offers unsigned ID tokens only (id_token_signing_alg_values_supported: none)"
        )
    if not algorithms & SIGNING_ALGORITHMS:
        shown = ", ".join(sorted(algorithms))
        raise DocumentProblem(
            "offers no ID token signature keyturn verifies with the provider's keys "
            f"(id_token_signing_alg_values_supported: {shown})"
        )
    return metadata


def expected_issuers(spec: ProviderSpec) -> frozenset[str]:
    """The issuers a discovery document of ``spec`` may name.

    The spec's ``issuer``; when it names none, the discovery URL without
    :data:`WELL_KNOWN`, with or without a final ``/`` (Discovery 1.0 §4 drops that slash
    before appending the path, so the URL alone cannot tell).

    :raises ConfigurationError: no issuer, and a discovery URL that does not end with
        :data:`WELL_KNOWN`.
    """
    if spec.issuer is not None:
        return frozenset({spec.issuer})
    url = spec.discovery_url or ""
    if not url.endswith(WELL_KNOWN) or len(url) == len(WELL_KNOWN):
        raise ConfigurationError(
            f"{spec.id}: set issuer: the discovery_url does not end with {WELL_KNOWN}, so the "
            "issuer its document must name cannot be told from it"
        )
    base = url[: -len(WELL_KNOWN)]
    return frozenset({base, base + "/"})


#: What fills a placeholder of an issuer template in a document's issuer: one path segment.
_TENANT_SEGMENT = "[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,127}"


def template_instance(spec: ProviderSpec, issuer: str) -> bool:
    """Whether ``issuer`` is the spec's issuer template with every placeholder filled.

    Each placeholder must be filled by one path segment, and by one of its
    ``issuer_claim_values`` where the spec lists them. ``False`` for a spec whose issuer is
    not a template, and for the template itself.
    """
    template = spec.issuer
    if template is None or not spec.issuer_is_template or issuer == template:
        return False
    pattern = ""
    names: list[str] = []
    position = 0
    for match in re.finditer(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", template):
        pattern += re.escape(template[position : match.start()])
        pattern += f"({_TENANT_SEGMENT})"
        names.append(match.group(1))
        position = match.end()
    pattern += re.escape(template[position:])
    found = re.fullmatch(pattern, issuer)
    if found is None:
        return False
    for name, value in zip(names, found.groups(), strict=True):
        allowed = spec.issuer_claim_values.get(name)
        if allowed is not None and value not in allowed:
            return False
    return True


def check_issuer(spec: ProviderSpec, metadata: ProviderMetadata) -> None:
    """Refuse a document that names another issuer than the configured one (Discovery §4.3).

    A spec whose issuer is a multi-tenant template also accepts a document naming one
    tenant's issuer (:func:`template_instance`); :func:`resolve_spec` then pins the spec to it.

    :raises ConfigurationError: naming both issuers (public values, never a secret).
    """
    expected = expected_issuers(spec)
    if metadata.issuer in expected or template_instance(spec, metadata.issuer):
        return
    shown = " or ".join(repr(issuer) for issuer in sorted(expected))
    hint = ""
    if "{" in metadata.issuer and not spec.issuer_claims:
        hint = (
            "; it is a multi-tenant template: set the spec's issuer to it and issuer_claims "
            "to the claims that fill its placeholders"
        )
    raise ConfigurationError(
        f"{spec.id}: the discovery document at {spec.discovery_url} names the issuer "
        f"{metadata.issuer!r}, not the configured {shown} (issuer; OpenID Connect Discovery "
        f"1.0 section 4.3){hint}"
    )


def _invalid(provider: str, url: str, reason: str) -> ConfigurationError:
    return ConfigurationError(f"{provider}: the discovery document at {url} {reason}")


#: Discovery documents: kept an hour by default; one that cannot be used is a
#: :class:`~keyturn.ConfigurationError`.
DISCOVERY = DocumentKind(operation="discovery", default_ttl=DISCOVERY_TTL, invalid=_invalid)


def _pkce_method(spec: ProviderSpec, metadata: ProviderMetadata) -> str | None:
    """The PKCE method the document offers; the spec's own when it lists none.

    A server that does not list ``code_challenge_methods_supported`` may still support PKCE,
    and one that does not ignores the parameters (RFC 7636 §5), so S256 stays the default;
    only a list without S256 but with ``plain`` makes it ``plain``.
    """
    methods = metadata.code_challenge_methods_supported
    if methods is None or "S256" in methods:
        return spec.pkce_method
    return "plain" if "plain" in methods else spec.pkce_method


#: Client authentication methods keyturn can use with a client secret, in the order it picks
#: them from a document: OpenID Connect Discovery makes ``client_secret_basic`` the default
#: when ``token_endpoint_auth_methods_supported`` is absent.
_SECRET_METHODS = ("client_secret_basic", "client_secret_post")


def _client_auth(spec: ProviderSpec, metadata: ProviderMetadata) -> str:
    """The secret-based client authentication the provider accepts: the spec's own when the
    document lists it, else ``client_secret_basic`` or ``client_secret_post``, whichever the
    document lists first in that order. Methods without a secret (``private_key_jwt``...)
    are never chosen for the app: they need credentials it has to set up, so it names them."""
    listed = metadata.token_endpoint_auth_methods_supported
    if listed is None:
        listed = ("client_secret_basic",)
    if spec.client_auth in listed:
        return spec.client_auth
    for method in _SECRET_METHODS:
        if method in listed:
            return method
    return spec.client_auth


def resolve_spec(spec: ProviderSpec, metadata: ProviderMetadata) -> ProviderSpec:
    """``spec`` with what it leaves out taken from its provider's metadata.

    Filled in when the spec does not set them: the authorization and token endpoints (left
    empty), ``userinfo_endpoint``, ``revocation_endpoint``, ``end_session_endpoint`` and
    ``jwks_uri`` (left ``None``), ``issuer`` (the document's), ``id_token_signing_algs``
    (the document's algorithms that keyturn verifies), ``authorization_response_iss`` (from
    ``authorization_response_iss_parameter_supported``; never for a templated issuer) and
    ``pkce_method`` (see :func:`_pkce_method`), ``client_auth`` (see :func:`_client_auth`).
    A field the spec sets explicitly (in its
    ``model_fields_set``) wins. The issuer must already have passed :func:`check_issuer`.
    A templated issuer whose document names one tenant's issuer (:func:`template_instance`)
    becomes that issuer, without ``issuer_claims``: ID tokens must then come from that tenant.

    :return: a copy of ``spec``, or ``spec`` itself when nothing is missing.
    """
    explicit = spec.model_fields_set
    update: dict[str, Any] = {}
    if not spec.authorization_endpoint:
        update["authorization_endpoint"] = metadata.authorization_endpoint
    if not spec.token_endpoint:
        update["token_endpoint"] = metadata.token_endpoint
    for name in ("userinfo_endpoint", "revocation_endpoint", "end_session_endpoint", "jwks_uri"):
        value = getattr(metadata, name)
        if getattr(spec, name) is None and value is not None:
            update[name] = value
    if spec.issuer is None:
        update["issuer"] = metadata.issuer
    elif template_instance(spec, metadata.issuer):
        update.update(issuer=metadata.issuer, issuer_claims={}, issuer_claim_values={})
    if "id_token_signing_algs" not in explicit:
        algorithms = frozenset(metadata.id_token_signing_alg_values_supported) & SIGNING_ALGORITHMS
        if algorithms != spec.id_token_signing_algs:
            update["id_token_signing_algs"] = algorithms
    if (
        "authorization_response_iss" not in explicit
        and metadata.authorization_response_iss_parameter_supported
        and not spec.issuer_claims
        and not spec.authorization_response_iss
    ):
        update["authorization_response_iss"] = True
    if "pkce_method" not in explicit:
        method = _pkce_method(spec, metadata)
        if method != spec.pkce_method:
            update["pkce_method"] = method
    if "client_auth" not in explicit:
        method = _client_auth(spec, metadata)
        if method != spec.client_auth:
            update["client_auth"] = method
    _check_hosts(spec, metadata.issuer, update)
    return spec.model_copy(update=update) if update else spec


def _host(url: str) -> str:
    """``host`` or ``host:port`` of ``url``, lower-cased (``""`` when it has none)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6, written as in a URL
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port is not None else host


def _check_hosts(spec: ProviderSpec, issuer: str, taken: dict[str, Any]) -> None:
    """Refuse an endpoint taken from the document on a host that is neither the issuer's
    nor listed in ``spec.endpoint_hosts``.

    The document is fetched from the issuer over TLS, so it speaks for the issuer; but a
    document that moves the token endpoint elsewhere (a compromised or misconfigured
    server, a proxy rewriting it) would send every code, refresh token and client secret
    there. Providers that really do spread their endpoints over hosts list them.
    """
    allowed = {_host(issuer)} | {host.lower() for host in spec.endpoint_hosts}
    for field in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "revocation_endpoint",
        "end_session_endpoint",
        "jwks_uri",
    ):
        value = taken.get(field)
        if value is None:
            continue
        host = _host(value)
        if host not in allowed:
            raise ConfigurationError(
                f"{spec.id}: the discovery document at {spec.discovery_url} puts "
                f"{field} on {host}, not on the issuer's host {_host(issuer)}; if the "
                f"provider really serves it there, add {host!r} to the spec's endpoint_hosts"
            )
