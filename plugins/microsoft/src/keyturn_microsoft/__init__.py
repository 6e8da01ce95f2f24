"""The Microsoft identity platform (Microsoft Entra ID, v2.0 endpoints) for keyturn.

What the spec and the hooks encode, each fact with its source in brackets (the sources are
listed with their URLs at the end; ``docs/providers/microsoft.md`` gathers the same facts with
the cassettes that show them):

* Every URL names a tenant: ``common`` (work, school and personal accounts), ``organizations``
  (work and school), ``consumers`` (personal Microsoft accounts), or one tenant by its id (a
  GUID) or one of its domain names [auth code flow]. The deployment setting ``tenant``
  (``KEYTURN_MICROSOFT_TENANT``, or ``Keyturn(settings={"microsoft": {"tenant": ...}})``)
  chooses it; ``common`` by default. Authorize at
  ``login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize``, tokens at ``.../token``.
* Keys and issuer come from the tenant's discovery document,
  ``login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration`` [OIDC]. For
  ``common`` and ``organizations`` its issuer is the template
  ``https://login.microsoftonline.com/{tenantid}/v2.0``, which each ID token fills with its
  own ``tid`` [OIDC; ID token claims]; the spec says so with ``issuer_claims``. For one
  tenant, its document names the tenant's own issuer (with the tenant's GUID, also when the
  tenant is named by a domain), and keyturn pins the spec to it: an ID token from any other
  tenant is refused. ``consumers`` is the tenant of personal accounts,
  ``9188040d-6c67-4c5b-b112-36a304b66dad`` [ID token claims], and is pinned to it.
* ``offline_access`` is among the default scopes: without it there is no refresh token
  [scopes]. PKCE ``S256``; ``client_secret_post`` [auth code flow].
* Each refresh returns a new refresh token, and the old one is not revoked: refresh tokens
  "replace themselves with a fresh token upon every use" and the platform "doesn't revoke old
  refresh tokens" [refresh tokens]. ``rotation="keep_old"``: keyturn keeps the newest.
* There is no revocation endpoint for a user's grant [OIDC: the document lists none]. Signing
  out ends the app's session only; the grant lives until its refresh token expires (24 hours
  for single-page apps, 90 days otherwise), the user removes the app's consent, or an
  administrator revokes the user's sessions [refresh tokens]. ``Keyturn.revoke`` says so with
  a :class:`~keyturn.ConfigurationError` and sends nothing.
* Errors name an ``AADSTS<code>`` at the start of ``error_description`` and in ``error_codes``
  [error codes]. The refresh and code exchange read it (see :data:`SIGN_IN_AGAIN`,
  :data:`INTERACTIVE`, :data:`CONFIGURATION` and :data:`TRANSIENT`), keep it in
  ``ProviderError.details["aadsts"]``, and say in the description what the app should do.

Sources:

* auth code flow: "Microsoft identity platform and OAuth 2.0 authorization code flow",
  https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow
* OIDC: "OpenID Connect on the Microsoft identity platform",
  https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc
* ID token claims: "ID token claims reference",
  https://learn.microsoft.com/en-us/entra/identity-platform/id-token-claims-reference
* scopes: "Scopes and permissions in the Microsoft identity platform",
  https://learn.microsoft.com/en-us/entra/identity-platform/scopes-oidc
* refresh tokens: "Refresh tokens in the Microsoft identity platform",
  https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens
* error codes: "Microsoft Entra authentication and authorization error codes",
  https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
* userinfo: "Microsoft identity platform UserInfo endpoint",
  https://learn.microsoft.com/en-us/entra/identity-platform/userinfo
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import keyturn
from keyturn import (
    ClientCredentials,
    ConfigurationError,
    DeploymentSetting,
    Flow,
    HttpResponse,
    OAuthError,
    ProviderSpec,
    TokenSet,
    flows,
)

__all__ = [
    "CONFIGURATION",
    "CONSUMERS_TENANT_ID",
    "INTERACTIVE",
    "MICROSOFT",
    "SHARED_TENANTS",
    "SIGN_IN_AGAIN",
    "TRANSIENT",
    "aadsts_code",
    "classify",
    "tenant_value",
]

_LOGIN = "https://login.microsoftonline.com"

#: The tenants that stand for many: any account, work and school accounts, personal accounts
#: ("common", "organizations", "consumers": the auth code flow page's ``tenant`` parameter).
SHARED_TENANTS = frozenset({"common", "organizations", "consumers"})

#: The tenant of personal Microsoft accounts: the ``tid`` of their ID tokens ("ID token claims
#: reference", https://learn.microsoft.com/en-us/entra/identity-platform/id-token-claims-reference),
#: and the tenant the ``consumers`` discovery document names in its issuer.
CONSUMERS_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_DOMAIN = re.compile(
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)

TENANT = DeploymentSetting(
    name="tenant",
    kind="segment",
    default="common",
    description=(
        "who may sign in: common, organizations, consumers, or your tenant's id (the "
        "'Directory (tenant) ID' of the app registration) or one of its domain names"
    ),
)

MICROSOFT = ProviderSpec(
    id="microsoft",
    name="Microsoft",
    authorization_endpoint=_LOGIN + "/{tenant}/oauth2/v2.0/authorize",
    token_endpoint=_LOGIN + "/{tenant}/oauth2/v2.0/token",
    # "https://graph.microsoft.com/oidc/userinfo" (the UserInfo page, and the userinfo_endpoint
    # of every tenant's discovery document).
    userinfo_endpoint="https://graph.microsoft.com/oidc/userinfo",
    # No revocation endpoint: no discovery document of the platform lists one, and the
    # refresh tokens page names only user and administrator actions that revoke a grant.
    revocation_endpoint=None,
    discovery_url=_LOGIN + "/{tenant}/v2.0/.well-known/openid-configuration",
    # The issuer of the common and organizations documents, filled by each ID token's tid. For
    # one tenant, keyturn pins it to the tenant's own issuer (see keyturn_deploy below).
    issuer=_LOGIN + "/{tenantid}/v2.0",
    issuer_claims={"tenantid": "tid"},
    # "id_token_signing_alg_values_supported": ["RS256"] in every tenant's document.
    id_token_signing_algs=frozenset({"RS256"}),
    # "offline_access ... your app receives refresh tokens" only with this scope (scopes page).
    default_scopes=("openid", "profile", "email", "offline_access"),
    # Optional parameters of the authorize request (auth code flow page).
    extra_authorize_params=frozenset({"login_hint", "domain_hint", "prompt"}),
    client_auth="client_secret_post",
    pkce_method="S256",
    rotation="keep_old",
    settings=(TENANT,),
    # MSAL's interaction-required codes: the user must come back to the sign-in page
    # (https://learn.microsoft.com/en-us/javascript/api/@azure/msal-node/interactionrequiredautherrorcodes).
    permanent_errors=frozenset({"interaction_required", "consent_required", "login_required"}),
    transient_errors=frozenset({"temporarily_unavailable", "server_error"}),
)

#: AADSTS codes after which the refresh token cannot be used again: sign in again. From the
#: error code reference (https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes)
#: and the refresh tokens page (the 24-hour lifetime of single-page apps).
SIGN_IN_AGAIN: Mapping[str, str] = {
    "700082": "the refresh token expired after going unused for too long",
    "700084": "the refresh token of a single-page app reached the end of its 24-hour lifetime",
    "50173": "the grant was revoked (a password change or an administrator's action)",
    "70008": "the refresh token or authorization code has expired",
    "70000": "the grant is invalid or expired",
}

#: AADSTS codes and errors after which only an interactive sign-in helps: multi-factor
#: authentication, consent, or a sign-in the refresh cannot stand in for.
INTERACTIVE: Mapping[str, str] = {
    "50076": "multi-factor authentication is required",
    "50079": "the user must register for multi-factor authentication",
    "65001": "the user or an administrator has not consented to the app",
    "interaction_required": "the provider requires an interaction",
    "consent_required": "the user's consent is required",
    "login_required": "the user must sign in",
}

#: AADSTS codes of a problem with the app's own registration: no user action helps.
CONFIGURATION: Mapping[str, str] = {
    "7000222": (
        "the app's client secret has expired: a configuration problem, not the user's "
        "(create a new client secret for the app registration and configure it)"
    ),
    "7000215": (
        "the app's client secret is not the registration's: a configuration problem, not the "
        "user's (check KEYTURN_MICROSOFT_CLIENT_SECRET)"
    ),
}

#: AADSTS codes of a passing service condition: try again later.
TRANSIENT: Mapping[str, str] = {
    "90033": "the directory service is temporarily unavailable",
    "90006": "the service had an internal error",
    "50196": "the service detected a loop of requests from this client",
}

_AADSTS = re.compile(r"^\s*AADSTS(\d{4,9})\b")


def aadsts_code(description: str | None, error_codes: Any = None) -> str | None:
    """The AADSTS code of an error answer: ``"700082"``, or ``None`` when it names none.

    Read from the start of ``error_description`` ("AADSTS700082: ..."), else from the first
    entry of the ``error_codes`` list.

    :param description: the answer's ``error_description``.
    :param error_codes: the answer's ``error_codes`` (a list of numbers), if any.
    """
    if description:
        found = _AADSTS.match(description)
        if found is not None:
            return found.group(1)
    if isinstance(error_codes, list) and error_codes:
        first = error_codes[0]
        if isinstance(first, int) and not isinstance(first, bool) and 0 < first < 10**9:
            return str(first)
    return None


def classify(
    provider: ProviderSpec, error: OAuthError, data: Mapping[str, Any] | None = None
) -> OAuthError:
    """``error`` classified by its AADSTS code, with a description that says what to do.

    * :data:`SIGN_IN_AGAIN`: permanent; the user signs in again.
    * :data:`INTERACTIVE` (codes, or the errors ``interaction_required``,
      ``consent_required``, ``login_required``): permanent; "the user must sign in
      interactively".
    * :data:`CONFIGURATION`: permanent; the description says it is the app's configuration.
    * :data:`TRANSIENT`: transient, whatever the ``error`` it comes with.
    * any other code: as keyturn classifies the ``error`` (RFC 6749, then the status).

    The code is kept in ``details["aadsts"]``.

    :param provider: the provider's spec.
    :param error: the error keyturn read from the answer.
    :param data: the decoded answer, for its ``error_codes``.
    """
    code = aadsts_code(error.description, (data or {}).get("error_codes"))
    key = code or ""
    permanent = error.permanent
    what: str | None = None
    if key in TRANSIENT:
        permanent, what = False, f"{TRANSIENT[key]}; try again later"
    elif key in CONFIGURATION:
        permanent, what = True, CONFIGURATION[key]
    elif key in INTERACTIVE or error.error in INTERACTIVE:
        reason = INTERACTIVE[key] if key in INTERACTIVE else INTERACTIVE[error.error]
        permanent, what = True, f"the user must sign in interactively: {reason}"
    elif key in SIGN_IN_AGAIN:
        permanent, what = True, f"{SIGN_IN_AGAIN[key]}; the user must sign in again"
    details = dict(error.details)
    if code is not None:
        details["aadsts"] = code
    description = error.description
    if what is not None:
        first = (error.description or "").splitlines()[0].strip() if error.description else ""
        description = f"{what} ({first})" if first else what
    return OAuthError(
        provider=provider.id,
        operation=error.operation,
        error=error.error,
        status=error.status,
        description=description,
        permanent=permanent,
        details=details,
        retry_after=error.retry_after,
    )


def _token_flow(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    operation: str,
    form: dict[str, str],
    clock: Callable[[], float],
    previous: TokenSet | None,
) -> Flow[TokenSet]:
    response: HttpResponse = yield flows.token_request(provider, credentials, form)
    try:
        return flows.parse_token_response(provider, operation, response, clock(), previous)
    except OAuthError as exc:
        try:
            data: Mapping[str, Any] | None = response.data()
        except ValueError:
            data = None
        raise classify(provider, exc, data) from None


@keyturn.hookimpl
def keyturn_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    """Register the Microsoft identity platform."""
    register(MICROSOFT)


def tenant_value(value: str) -> str:
    """The tenant ``value`` names, spelled as keyturn uses it, or :class:`ConfigurationError`.

    ``common``, ``organizations`` and ``consumers`` (in any case) and tenant GUIDs are
    lower-cased, as Microsoft writes them in issuers; a domain name is lower-cased too. The
    message names what is accepted, never the value (it may be pasted in the wrong place).
    """
    lowered = value.strip().lower()
    if lowered in SHARED_TENANTS or _GUID.fullmatch(lowered) or _DOMAIN.fullmatch(lowered):
        return lowered
    raise ConfigurationError(
        "the tenant setting of 'microsoft' (KEYTURN_MICROSOFT_TENANT, or settings="
        "{'microsoft': {'tenant': ...}}) must be common, organizations, consumers, a tenant "
        "id (a GUID) or one of the tenant's domain names"
    )


@keyturn.hookimpl
@keyturn.for_provider("microsoft")
def keyturn_deploy(provider: ProviderSpec, settings: Mapping[str, str]) -> ProviderSpec:
    """The spec for the app's tenant.

    ``common`` and ``organizations`` keep the issuer template: each ID token's ``tid`` fills
    it. A tenant id accepts only that tenant's ID tokens, ``consumers`` only the personal
    accounts' tenant; a domain-named tenant is pinned to the tenant its discovery document
    names (keyturn compares the document's issuer with the template and keeps it).
    """
    tenant = tenant_value(settings.get("tenant") or "common")
    spec = flows.deploy(provider, {**settings, "tenant": tenant})
    if not spec.issuer_is_template or tenant in {"common", "organizations"}:
        return spec
    if tenant == "consumers":
        allowed = frozenset({CONSUMERS_TENANT_ID})
    elif _GUID.fullmatch(tenant):
        allowed = frozenset({tenant})
    else:
        return spec  # a domain: the document names the tenant's id, and pins the issuer to it
    data = {name: getattr(spec, name) for name in spec.model_fields_set}
    data["issuer_claim_values"] = dict.fromkeys(spec.issuer_claims, allowed)
    return ProviderSpec.model_validate(data)


@keyturn.hookimpl
@keyturn.for_provider("microsoft")
def keyturn_exchange_code(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    clock: Callable[[], float],
) -> Flow[TokenSet]:
    """The RFC 6749 exchange, with Microsoft's errors classified by their AADSTS code."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier is not None:
        form["code_verifier"] = code_verifier
    return _token_flow(provider, credentials, "exchange_code", form, clock, None)


@keyturn.hookimpl
@keyturn.for_provider("microsoft")
def keyturn_refresh(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    tokens: TokenSet,
    clock: Callable[[], float],
) -> Flow[TokenSet]:
    """The RFC 6749 refresh, with Microsoft's errors classified by their AADSTS code.

    Microsoft returns a new refresh token each time and leaves the old one valid; keyturn
    keeps the new one.
    """
    assert tokens.refresh_token is not None, "keyturn checks this before calling the hook"
    form = {
        "grant_type": "refresh_token",
        "refresh_token": tokens.refresh_token.get_secret_value(),
    }
    return _token_flow(provider, credentials, "refresh", form, clock, tokens)


@keyturn.hookimpl
@keyturn.for_provider("microsoft")
def keyturn_revoke(
    provider: ProviderSpec, credentials: ClientCredentials, tokens: TokenSet
) -> Flow[None] | None:
    """Refuse, sending nothing: the platform has no endpoint where an app revokes a user's
    grant (whatever URL a copy of the spec names, as a test server's discovery may)."""
    raise ConfigurationError(
        "microsoft has no revocation endpoint for a user's grant: end the app's session; the "
        "grant lives until its refresh token expires, the user removes the app's consent, or "
        "an administrator revokes the user's sessions "
        "(https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens)"
    )
