"""Slack's code exchange, refresh, userinfo and revocation as keyturn flows.

Each reads the answer through :func:`keyturn_slack.web_api.read_answer` (``ok`` first, then
RFC 6749's reading) and, where the deployment names a workspace, checks it
(:mod:`keyturn_slack.team`). Every URL comes from the spec the hooks receive, so a copy of the
spec pointed elsewhere (keyturn's emulator) takes the flows with it.

* Exchange and refresh: ``POST openid.connect.token``, form-encoded, with ``client_id`` and
  ``client_secret`` in the form (``client_secret_post``, one of the two methods Slack's
  discovery document lists). The refresh sends ``grant_type=refresh_token`` there, as the Sign
  in with Slack page says of token rotation: "It works exactly like regular token rotation,
  except with the Sign in Slack token exchange endpoint"
  (https://docs.slack.dev/authentication/sign-in-with-slack/). With token rotation each
  refresh returns a new refresh token and the old one is revoked ("The refresh token is then
  revoked", https://docs.slack.dev/authentication/using-token-rotation); the access token
  lives 12 hours (``expires_in`` 43200), read from each answer. Without token rotation the
  answer has no ``refresh_token`` and no ``expires_in``: keyturn then treats the access token
  as never expiring and never refreshes it.
* Token answers keep what keyturn does not know in ``TokenSet.extra`` (a ``team`` or
  ``enterprise`` object where Slack sends one: tokens belong to an installation), without
  ``ok``, ``warning`` and ``response_metadata``.
* Userinfo: ``GET openid.connect.userInfo`` with the access token as a Bearer credential
  (https://docs.slack.dev/reference/methods/openid.connect.userInfo); the OpenID claims
  become the profile, Slack's own claims (``https://slack.com/team_id``, images...) stay in
  ``raw``.
* Revocation: ``POST auth.revoke`` with ``token`` in the form
  (https://docs.slack.dev/reference/methods/auth.revoke, which takes the token as a POST
  parameter or in the ``Authorization`` header). The access token is revoked: the method is
  documented for access tokens, not for refresh tokens. An answer saying the token is already
  dead (``invalid_auth``, ``token_revoked``, ``account_inactive``) counts as revoked;
  ``token_expired`` does not, since an expired access token of a rotating installation leaves
  its refresh token alive: refresh first (``kt.jwt``), then revoke.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from keyturn import (
    ClientCredentials,
    ConfigurationError,
    Flow,
    HttpRequest,
    HttpResponse,
    Profile,
    ProviderSpec,
    TokenSet,
    flows,
)

from .team import check_team
from .web_api import answer_error, read_answer, rebuilt

__all__ = [
    "ALREADY_REVOKED",
    "exchange_code_flow",
    "refresh_flow",
    "revoke_flow",
    "token_answer",
    "userinfo_flow",
]

log = logging.getLogger("keyturn")

#: ``auth.revoke`` errors saying the token no longer works, which was the goal.
ALREADY_REVOKED = frozenset({"invalid_auth", "token_revoked", "account_inactive"})


def token_answer(
    provider: ProviderSpec,
    operation: str,
    response: HttpResponse,
    now: float,
    previous: TokenSet | None = None,
) -> tuple[TokenSet, dict[str, Any]]:
    """Read a token answer: Slack's envelope first, then keyturn's RFC 6749 parser.

    :param provider: the Slack spec.
    :param operation: ``exchange_code`` or ``refresh``.
    :param response: the answer.
    :param now: the time the answer arrived (epoch seconds).
    :param previous: the tokens refreshed, whose refresh token, scope and ID token stay
        where the answer brings none.
    :return: the tokens, and the answer's fields (envelope dropped).
    :raises ProviderError: an ``ok: false`` answer, an RFC 6749 error, an unusable body.
    """
    data = read_answer(provider, operation, response)
    tokens = flows.parse_token_response(
        provider, operation, rebuilt(response, data), now, previous=previous
    )
    return tokens, data


def exchange_code_flow(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    clock: Callable[[], float],
) -> Flow[TokenSet]:
    """``grant_type=authorization_code`` at ``openid.connect.token``; the workspace checked."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier is not None:
        form["code_verifier"] = code_verifier
    response = yield flows.token_request(provider, credentials, form)
    tokens, data = token_answer(provider, "exchange_code", response, clock())
    check_team(
        provider,
        "exchange_code",
        response.status,
        tokens=tokens,
        answer=data,
        id_token_required=True,
    )
    return tokens


def refresh_flow(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    tokens: TokenSet,
    clock: Callable[[], float],
) -> Flow[TokenSet]:
    """``grant_type=refresh_token`` at ``openid.connect.token``; a new ID token's workspace
    checked."""
    assert tokens.refresh_token is not None, "keyturn checks this before calling the hook"
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token.get_secret_value()}
    response = yield flows.token_request(provider, credentials, form)
    refreshed, data = token_answer(provider, "refresh", response, clock(), previous=tokens)
    check_team(
        provider,
        "refresh",
        response.status,
        tokens=refreshed if flows.text(data.get("id_token")) else None,
        answer=data,
    )
    return refreshed


def userinfo_flow(provider: ProviderSpec, tokens: TokenSet) -> Flow[Profile]:
    """``openid.connect.userInfo``: the OpenID claims as a profile, Slack's claims in ``raw``.

    :raises ConfigurationError: the spec has no userinfo endpoint.
    """
    endpoint = provider.userinfo_endpoint
    if endpoint is None:
        raise ConfigurationError(f"{provider.id} declares no userinfo endpoint")
    return _userinfo(provider, endpoint, tokens)


def _userinfo(provider: ProviderSpec, endpoint: str, tokens: TokenSet) -> Flow[Profile]:
    response = yield flows.bearer_request("GET", endpoint, tokens)
    data = read_answer(provider, "userinfo", response)
    if not isinstance(data.get("sub"), str) or not data["sub"]:
        raise flows.unusable_response(
            provider, "userinfo", response, "the userinfo answer has no 'sub'"
        )
    check_team(provider, "userinfo", response.status, answer=data)
    return flows.profile_from_oidc(data)


def revoke_flow(
    provider: ProviderSpec, credentials: ClientCredentials, tokens: TokenSet
) -> Flow[None]:
    """``auth.revoke`` with the access token.

    :raises ConfigurationError: the spec has no revocation endpoint.
    """
    endpoint = provider.revocation_endpoint
    if endpoint is None:
        raise ConfigurationError(f"{provider.id} declares no revoke endpoint")
    request = HttpRequest.form(
        "POST",
        endpoint,
        {"token": tokens.access_token.get_secret_value()},
        {"Accept": "application/json"},
    )
    return _revoke(provider, request)


def _revoke(provider: ProviderSpec, request: HttpRequest) -> Flow[None]:
    response = yield request
    data = response.data()
    if data is not None and data.get("ok") is False:
        error = answer_error(provider, "revoke", response, data)
        if error.error in ALREADY_REVOKED:
            log.info("%s: the token to revoke is already dead (%s)", provider.id, error.error)
            return
        raise error
    read_answer(provider, "revoke", response)
