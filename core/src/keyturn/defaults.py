"""keyturn's own implementations of the provider hooks: plain RFC 6749, 7009 and OIDC.

Registered before any plugin, so they run last: a provider plugin's implementation wins when
it returns something, and these serve every provider that needs nothing special.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from . import flows
from .hookspecs import hookimpl
from .http import Flow
from .idtoken import IdTokenError, unverified_claims
from .models import ClientCredentials, Profile, ProviderSpec, TokenSet


@hookimpl
def keyturn_authorize_url(
    provider: ProviderSpec, credentials: ClientCredentials, params: dict[str, str]
) -> str:
    return flows.authorize_url(provider, params)


@hookimpl
def keyturn_exchange_code(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    clock: Callable[[], float],
) -> Flow[TokenSet]:
    return flows.exchange_code_flow(provider, credentials, code, redirect_uri, code_verifier, clock)


@hookimpl
def keyturn_refresh(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    tokens: TokenSet,
    clock: Callable[[], float],
) -> Flow[TokenSet]:
    return flows.refresh_flow(provider, credentials, tokens, clock)


@hookimpl
def keyturn_userinfo(provider: ProviderSpec, tokens: TokenSet) -> Flow[Profile]:
    if provider.userinfo_endpoint is None and tokens.id_token is not None:
        return _id_token_profile(tokens)
    return flows.userinfo_flow(provider, tokens)


def _id_token_profile(tokens: TokenSet) -> Flow[Profile]:
    """The profile in the ID token's claims, for a provider without a userinfo endpoint
    (Apple): no request. keyturn verified the ID token when it arrived."""
    assert tokens.id_token is not None
    claims = unverified_claims(tokens.id_token.get_secret_value())
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise IdTokenError("the ID token has no sub")
    return flows.profile_from_oidc(claims)
    yield  # a flow that sends no request


@hookimpl
def keyturn_revoke(
    provider: ProviderSpec, credentials: ClientCredentials, tokens: TokenSet
) -> Flow[None]:
    return flows.revoke_flow(provider, credentials, tokens)


@hookimpl
def keyturn_deploy(provider: ProviderSpec, settings: Mapping[str, str]) -> ProviderSpec:
    return flows.deploy(provider, settings)


@hookimpl
def keyturn_client_secret(
    provider: ProviderSpec, credentials: ClientCredentials, now: int
) -> str | None:
    secret = credentials.client_secret
    # An empty configured secret is no secret (and the hook may not return "").
    return None if secret is None else (secret.get_secret_value() or None)
