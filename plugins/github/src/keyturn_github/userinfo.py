"""The signed-in GitHub user as a :class:`keyturn.Profile`.

``GET /user`` gives the account; its ``email`` is ``null`` when the user keeps every address
private. Then ``GET /user/emails`` (the ``user:email`` scope, or the "Email addresses"
permission of a GitHub App) lists the addresses, and the primary verified one is used. An app
without that scope or permission gets 403 or 404 there: the profile then has no email rather
than the sign-in failing.

Sources: GitHub Docs, "Get the authenticated user",
https://docs.github.com/en/rest/users/users#get-the-authenticated-user ; "List email addresses
for the authenticated user" (entries with ``email``, ``primary``, ``verified``,
``visibility``; the scope and permission it needs),
https://docs.github.com/en/rest/users/emails#list-email-addresses-for-the-authenticated-user ;
"a token that has insufficient permissions" gets "``404 Not Found`` or ``403 Forbidden``",
https://docs.github.com/en/rest/authentication/authenticating-to-the-rest-api . Falling back
to the address list when ``/user`` has no email is what httpx-oauth's
``GitHubOAuth2.get_id_email`` does too,
https://github.com/frankie567/httpx-oauth/blob/master/httpx_oauth/clients/github.py
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from keyturn import ConfigurationError, Flow, HttpResponse, Profile, ProviderSpec, TokenSet, flows

from .rest import MEDIA_TYPE, api_error

__all__ = ["emails_endpoint", "primary_verified_email", "profile_from_user", "userinfo_flow"]

log = logging.getLogger("keyturn")

#: Statuses of ``/user/emails`` that mean "not allowed to read the addresses".
EMAILS_UNAVAILABLE = frozenset({403, 404})


def emails_endpoint(userinfo_endpoint: str) -> str:
    """The address list endpoint beside the spec's userinfo endpoint (``.../user/emails``)."""
    return userinfo_endpoint.rstrip("/") + "/emails"


def primary_verified_email(entries: Any) -> str | None:
    """The address marked both ``primary`` and ``verified`` in a ``/user/emails`` answer.

    :param entries: the decoded body: a list of objects with ``email``, ``primary``,
        ``verified`` and ``visibility``.
    :return: the address, or ``None`` when the primary address is unverified or the body is
        not such a list.
    """
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if (
            isinstance(entry, Mapping)
            and entry.get("primary") is True
            and entry.get("verified") is True
            and isinstance(entry.get("email"), str)
            and entry["email"]
        ):
            return str(entry["email"])
    return None


def profile_from_user(
    user: Mapping[str, Any], email: str | None = None, email_verified: bool | None = None
) -> Profile:
    """Normalise a ``/user`` object.

    :param user: the decoded ``/user`` body; it must hold GitHub's numeric ``id``.
    :param email: an address found elsewhere (``/user/emails``), used when ``user`` has none.
    :param email_verified: what is known about ``email``'s verification.
    :return: ``id`` as text, ``name`` (the login when the user set no name), ``email``,
        ``image`` from ``avatar_url``, and the whole object in ``raw``.
    """
    own_email = flows.text(user.get("email"))
    return Profile(
        id=user["id"],
        name=flows.text(user.get("name")) or flows.text(user.get("login")),
        email=own_email or email,
        # A public address on /user says nothing about verification: unknown, not False.
        email_verified=None if own_email else email_verified,
        image=flows.text(user.get("avatar_url")),
        raw=dict(user),
    )


def _has_id(user: Mapping[str, Any]) -> bool:
    ident = user.get("id")
    if isinstance(ident, bool):
        return False
    return isinstance(ident, int) or (isinstance(ident, str) and bool(ident))


def _read_user(provider: ProviderSpec, response: HttpResponse) -> dict[str, Any]:
    if not response.ok:
        raise api_error(provider, "userinfo", response)
    user = response.json()
    if not isinstance(user, dict) or not _has_id(user):
        raise flows.unusable_response(
            provider, "userinfo", response, "the /user response is not an object with an 'id'"
        )
    return user


def userinfo_flow(provider: ProviderSpec, tokens: TokenSet) -> Flow[Profile]:
    """GET the spec's userinfo endpoint, and its ``/emails`` when the address is private.

    :param provider: the GitHub spec (or a copy pointing at another server).
    :param tokens: the user's tokens.
    :return: a flow returning the normalised profile.
    :raises ConfigurationError: the spec has no userinfo endpoint.
    :raises ProviderError: ``/user`` failed (401 for a dead token), or ``/user/emails``
        failed with anything but 403 or 404.
    """
    endpoint = provider.userinfo_endpoint
    if endpoint is None:
        raise ConfigurationError(f"{provider.id} declares no userinfo endpoint")
    return _flow(provider, endpoint, tokens)


def _flow(provider: ProviderSpec, endpoint: str, tokens: TokenSet) -> Flow[Profile]:
    response = yield flows.bearer_request("GET", endpoint, tokens, accept=MEDIA_TYPE)
    user = _read_user(provider, response)
    if flows.text(user.get("email")) is not None:
        return profile_from_user(user)
    response = yield flows.bearer_request(
        "GET", emails_endpoint(endpoint), tokens, accept=MEDIA_TYPE
    )
    if response.status in EMAILS_UNAVAILABLE:
        log.info(
            "%s: the address list answered %d (no user:email scope or permission); "
            "the profile has no email",
            provider.id,
            response.status,
        )
        return profile_from_user(user)
    if not response.ok:
        raise api_error(provider, "userinfo", response)
    email = primary_verified_email(response.json())
    return profile_from_user(user, email, True if email else None)
