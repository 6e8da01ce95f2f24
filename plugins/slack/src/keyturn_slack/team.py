"""The workspace (Slack calls it the team) a sign-in belongs to, and the ``team`` setting.

Slack's authorize endpoint takes ``team``: "The workspace the user is intending to
authenticate. If that workspace has been previously authenticated, the user will be signed in
directly, bypassing the consent screen" (Sign in with Slack,
https://docs.slack.dev/authentication/sign-in-with-slack/). That is a hint for the consent
screen, not a restriction Slack is documented to enforce: the user may still end up signed in
to another workspace. So when the deployment sets ``team`` (``KEYTURN_SLACK_TEAM=T0123ABC456``
or ``settings={"slack": {"team": ...}}``), keyturn-slack also checks what came back:

* the ID token's ``https://slack.com/team_id`` claim (the claim of the example on the same
  page) must be the setting's value, at sign-in, where an ID token is then required, and on a
  refresh that brings a new ID token;
* a ``team`` object in a token answer (``{"id": ...}``, as ``oauth.v2.access`` answers carry
  it: https://docs.slack.dev/reference/methods/oauth.v2.access) must name it too;
* the userinfo answer's ``https://slack.com/team_id`` must name it.

Anything else is a permanent ``team_mismatch`` error: the sign-in is refused, a session that
somehow holds another workspace's tokens is told to sign in again. Team ids are not secrets;
the message names both.

The claim is read from the ID token's payload without checking its signature: keyturn checks
the signature (and issuer, audience, nonce, times) right after the flow returns, and refuses
the sign-in if it fails. A token that fails either check is refused; the order does not
matter.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from keyturn import OAuthError, ProviderSpec, TokenSet, flows

__all__ = ["TEAM_CLAIM", "TEAM_MISMATCH", "check_team", "id_token_team", "required_team"]

#: The ID token and userinfo claim holding the workspace id.
TEAM_CLAIM = "https://slack.com/team_id"
#: The error code of an answer for another workspace than the deployment's.
TEAM_MISMATCH = "team_mismatch"


def required_team(provider: ProviderSpec) -> str | None:
    """The workspace the deployment is bound to (its ``team`` setting), or ``None``."""
    return provider.deployment.get("team") or None


def id_token_team(id_token: str) -> str | None:
    """The ``https://slack.com/team_id`` claim of an ID token, unverified; ``None`` when the
    token cannot be read or has no such text claim."""
    parts = id_token.split(".")
    if len(parts) != 3:
        return None
    segment = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return None
    if not isinstance(claims, dict):
        return None
    return flows.text(claims.get(TEAM_CLAIM))


def _mismatch(
    provider: ProviderSpec, operation: str, status: int | None, team: str, found: str | None
) -> OAuthError:
    named = f"workspace {found}" if found else "no workspace"
    return OAuthError(
        provider=provider.id,
        operation=operation,
        error=TEAM_MISMATCH,
        status=status,
        description=f"the answer names {named}; this deployment signs in to {team} only",
        permanent=True,
    )


def check_team(
    provider: ProviderSpec,
    operation: str,
    status: int | None,
    *,
    tokens: TokenSet | None = None,
    answer: Mapping[str, Any] | None = None,
    id_token_required: bool = False,
) -> None:
    """Refuse an answer for another workspace than the deployment's ``team``.

    Does nothing when the deployment sets no ``team``.

    :param provider: the deployed Slack spec.
    :param operation: the operation, for the error.
    :param status: the answer's HTTP status, for the error.
    :param tokens: the tokens read from a token answer: their ID token's claim is checked.
    :param answer: the decoded answer: its ``team.id`` (token answers) or its
        ``https://slack.com/team_id`` (userinfo) is checked where present.
    :param id_token_required: refuse ``tokens`` without an ID token (a sign-in: nothing else
        then says which workspace the user chose).
    :raises OAuthError: ``team_mismatch``, permanent.
    """
    team = required_team(provider)
    if team is None:
        return
    if answer is not None:
        for named in _answer_teams(answer):
            if named != team:
                raise _mismatch(provider, operation, status, team, named)
    if tokens is None:
        return
    if tokens.id_token is None:
        if id_token_required:
            raise _mismatch(provider, operation, status, team, None)
        return
    found = id_token_team(tokens.id_token.get_secret_value())
    if found != team:
        raise _mismatch(provider, operation, status, team, found)


def _answer_teams(answer: Mapping[str, Any]) -> list[str]:
    """The workspace ids an answer names: ``team.id`` and the ``team_id`` claim."""
    found: list[str] = []
    team = answer.get("team")
    if isinstance(team, Mapping) and flows.text(team.get("id")):
        found.append(str(team["id"]))
    claim = flows.text(answer.get(TEAM_CLAIM))
    if claim is not None:
        found.append(claim)
    return found
