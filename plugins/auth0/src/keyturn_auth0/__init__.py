"""Auth0 for keyturn.

Auth0 serves each tenant on its own domain (``acme.eu.auth0.com``, or a custom domain). The
spec is a template filled from the deployment setting ``domain`` (``KEYTURN_AUTH0_DOMAIN``,
required; see ``docs/deployment.md``).

What the spec and the hooks encode, each fact with its source in brackets (URLs at the end;
``docs/providers/auth0.md`` gathers them):

* Endpoints ``/authorize``, ``/oauth/token``, ``/userinfo``, ``/oauth/revoke`` and the key
  set at ``/.well-known/jwks.json``; the discovery document at
  ``/.well-known/openid-configuration`` [discovery]. The issuer is ``https://<domain>/``,
  **with** a final slash, as the document writes it [discovery]. The endpoints are typed, so
  a sign-in needs no request for the document; ``cassettes/auth0/discovery.yaml`` holds the
  documented example and keyturn's conformance suite checks the spec against it.
* RP-initiated logout at ``/oidc/logout`` [logout]. Tenants created before 14 November 2023
  do not advertise it in their document unless "RP-Initiated Logout End Session Endpoint
  Discovery" is on, but the endpoint serves them all [logout].
* ID tokens signed with RS256 (or PS256), verified against the key set [discovery]; HS256,
  which the document also lists, is signed with the client secret and never accepted by
  keyturn with a key set.
* PKCE ``S256``; the client secret in the form (``client_secret_post``, among the methods the
  document lists) [discovery].
* A refresh token only for the ``offline_access`` scope [refresh tokens]: among the default
  scopes. An ``audience`` (an API of yours) may be passed per call.
* Refresh-token rotation is a setting of each application; with it, a rotated refresh token
  may be exchanged again during the "reuse interval" (the rotation overlap period), and only
  the one just before the newest: "if the second-to-last one is exchanged, breach detection
  will be triggered" and the family is revoked [rotation]. The interval is the Management
  API's ``refresh_token.leeway``, whose default is 0 [management API]. The settings ``rotation``
  (default ``detect_reuse``) and ``refresh_reuse_grace`` (default 0) say what the
  application chose.
* A dead refresh token answers ``invalid_grant`` "Unknown or invalid refresh token." (the
  body quoted in auth0/Auth0.swift#819 and auth0/nextjs-auth0#498), with HTTP 403 as Auth0 is
  reported to send it; keyturn reads any ``invalid_grant`` as permanent, whatever the status.
* Rate limits answer 429 [rate limits]. This plugin's exchange and refresh hooks make any 429
  transient, whatever its body says, and give the error a ``retry_after``: from
  ``Retry-After`` when the answer has one (keyturn reads it), else from ``x-ratelimit-reset``,
  "a UNIX timestamp ... of the expected time" the limit resets [rate limits], taken against
  the answer's own ``Date`` header (a flow has no clock of its own); without ``Date`` it is
  not read.

Sources:

* discovery: https://auth0.com/docs/get-started/applications/configure-applications-with-oidc-discovery
* logout: https://auth0.com/docs/authenticate/login/logout/log-users-out-of-auth0
* refresh tokens: https://auth0.com/docs/secure/tokens/refresh-tokens/get-refresh-tokens
* rotation: https://auth0.com/docs/secure/tokens/refresh-tokens/configure-refresh-token-rotation
* management API: https://auth0.com/docs/api/management/v2/clients/patch-clients-by-id
* rate limits: https://auth0.com/docs/troubleshoot/customer-support/operational-policies/rate-limit-policy/rate-limit-use-cases
* auth0/Auth0.swift#819: https://github.com/auth0/Auth0.swift/issues/819
* auth0/nextjs-auth0#498: https://github.com/auth0/nextjs-auth0/issues/498
"""

from __future__ import annotations

from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import TypeVar

import keyturn
from keyturn import (
    ClientCredentials,
    DeploymentSetting,
    Flow,
    HttpResponse,
    ProviderError,
    ProviderSpec,
    TokenSet,
    flows,
)

__all__ = ["AUTH0", "rate_limit_wait"]

T = TypeVar("T")

AUTH0 = ProviderSpec(
    id="auth0",
    name="Auth0",
    authorization_endpoint="https://{domain}/authorize",
    token_endpoint="https://{domain}/oauth/token",
    userinfo_endpoint="https://{domain}/userinfo",
    revocation_endpoint="https://{domain}/oauth/revoke",
    end_session_endpoint="https://{domain}/oidc/logout",
    issuer="https://{domain}/",
    jwks_uri="https://{domain}/.well-known/jwks.json",
    id_token_signing_algs=frozenset({"RS256", "PS256"}),
    default_scopes=("openid", "profile", "email", "offline_access"),
    extra_authorize_params=frozenset(
        {
            "audience",
            "connection",
            "organization",
            "invitation",
            "prompt",
            "login_hint",
            "screen_hint",
            "max_age",
            "ui_locales",
        }
    ),
    client_auth="client_secret_post",
    pkce_method="S256",
    rotation="detect_reuse",
    refresh_reuse_grace=0,
    settings=(
        DeploymentSetting(
            name="domain",
            kind="host",
            description=(
                "your tenant's domain, such as acme.eu.auth0.com, or its custom domain "
                "(Dashboard > Applications > your application > Settings)"
            ),
        ),
        DeploymentSetting(
            name="rotation",
            kind="rotation",
            default="detect_reuse",
            description="the application's Refresh Token Rotation: detect_reuse when on",
        ),
        DeploymentSetting(
            name="refresh_reuse_grace",
            kind="seconds",
            default="0",
            description="the application's reuse interval (rotation overlap period), seconds",
        ),
    ),
)

#: The longest wait read from ``x-ratelimit-reset``, as keyturn caps ``Retry-After``.
MAX_WAIT = flows.MAX_RETRY_AFTER


def rate_limit_wait(response: HttpResponse) -> float | None:
    """Seconds a rate-limited answer asks to wait: ``Retry-After``, else ``x-ratelimit-reset``
    (epoch seconds) less the answer's ``Date``; ``None`` when neither can be read.

    :param response: any response; a 429 most often.
    :return: seconds, from 0 to :data:`MAX_WAIT`.
    """
    wait = flows.retry_after(response)
    if wait is not None:
        return wait
    reset = response.headers.get("x-ratelimit-reset", "").strip()
    if not reset.isdigit():
        return None
    try:
        now = parsedate_to_datetime(response.headers.get("date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    if now.tzinfo is None:
        return None
    return min(max(int(reset) - now.timestamp(), 0.0), MAX_WAIT)


def _rate_limits(flow: Flow[T]) -> Flow[T]:
    """``flow``, with a 429 made transient and given its wait (see the module docstring)."""
    request = next(flow)
    while True:
        response = yield request
        try:
            request = flow.send(response)
        except StopIteration as stop:
            result: T = stop.value
            return result
        except ProviderError as error:
            if response.status != 429:
                raise
            raise type(error)(
                provider=error.provider,
                operation=error.operation,
                error=error.error,
                permanent=False,
                status=error.status,
                description=error.description,
                details=error.details,
                retry_after=rate_limit_wait(response),
            ) from None


@keyturn.hookimpl
def keyturn_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(AUTH0)


@keyturn.hookimpl
@keyturn.for_provider("auth0")
def keyturn_exchange_code(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    clock: Callable[[], float],
) -> Flow[TokenSet] | None:
    return _rate_limits(
        flows.exchange_code_flow(provider, credentials, code, redirect_uri, code_verifier, clock)
    )


@keyturn.hookimpl
@keyturn.for_provider("auth0")
def keyturn_refresh(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    tokens: TokenSet,
    clock: Callable[[], float],
) -> Flow[TokenSet] | None:
    return _rate_limits(flows.refresh_flow(provider, credentials, tokens, clock))
