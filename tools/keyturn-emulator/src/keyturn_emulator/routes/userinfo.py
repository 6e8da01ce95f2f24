"""The userinfo endpoint, and GitHub's ``/user/emails``: who the access token belongs to.

Google and strict answer OpenID claims (``sub`` plus what the scopes release); GitHub answers
its REST ``/user`` shape with ``email`` null, the address being on ``/user/emails``
(https://docs.github.com/en/rest/users/users#get-the-authenticated-user and
https://docs.github.com/en/rest/users/emails#list-email-addresses-for-the-authenticated-user).
A missing, revoked or expired token gets the profile's 401.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from keyturn_emulator.profiles import Behaviour
from keyturn_emulator.state import User

from .answers import unauthorized
from .claims import claims
from .site import Handler, Site

__all__ = ["bearer", "routes"]


def bearer(request: Request, token_scheme: bool) -> str | None:
    """The access token in the ``Authorization`` header (RFC 6750 §2.1), if any.

    :param request: the request.
    :param token_scheme: accept GitHub's ``token`` scheme besides ``Bearer``.
    :return: the token, or ``None``.
    """
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    accepted = ("bearer", "token") if token_scheme else ("bearer",)
    if scheme.lower() in accepted and value.strip():
        return value.strip()
    return None


def routes(site: Site, b: Behaviour) -> list[Route]:
    """The profile's userinfo route, and its emails route where it has one (``GET``).

    :param site: the emulated provider.
    :param b: the profile.
    """
    root = f"/{b.name}"
    if "userinfo" not in b.paths:  # Apple: the profile is in the ID token
        return []
    found = [Route(root + b.paths["userinfo"], _userinfo(site, b), methods=["GET"])]
    if "emails" in b.paths:
        found.append(Route(root + b.paths["emails"], _emails(site, b), methods=["GET"]))
    return found


def _userinfo(site: Site, b: Behaviour) -> Handler:
    async def userinfo(request: Request) -> Response:
        token = bearer(request, token_scheme=b.form_unless_json)
        grant = site.store.bearer(b.name, token) if token else None
        if grant is None:
            return unauthorized(site, b)
        site.store.count(b.name, "userinfo")
        user = grant.user
        if b.form_unless_json:
            # /user has email null when the user shows no public email (the "public email"
            # field of https://docs.github.com/en/rest/users/users#get-the-authenticated-user).
            return JSONResponse(
                {
                    "login": user.login,
                    "id": user.number,
                    "node_id": f"U_emu{user.number}",
                    "avatar_url": site.avatar_url(user),
                    "type": "User",
                    "name": user.name,
                    "email": None,
                }
            )
        if b.user_api == "discord":
            return JSONResponse(_discord_user(user, grant.scopes))
        envelope = {"ok": True} if b.envelope else {}
        return JSONResponse({**envelope, "sub": user.sub, **claims(site, user, grant.scopes)})

    return userinfo


def _discord_user(user: User, scopes: tuple[str, ...]) -> dict[str, Any]:
    """Discord's user object for ``GET /users/@me``: ``email`` and ``verified`` only with the
    ``email`` scope (https://discord.com/developers/docs/resources/user#user-object)."""
    data: dict[str, Any] = {
        "id": str(user.number),
        "username": user.login,
        "discriminator": "0",
        "global_name": user.name,
        "avatar": None,
    }
    if "email" in scopes:
        data.update({"email": user.email, "verified": True})
    return data


def _emails(site: Site, b: Behaviour) -> Handler:
    async def emails(request: Request) -> Response:
        token = bearer(request, token_scheme=True)
        grant = site.store.bearer(b.name, token) if token else None
        if grant is None:
            return unauthorized(site, b)
        site.store.count(b.name, "userinfo")
        entry = {
            "email": grant.user.email,
            "primary": True,
            "verified": True,
            "visibility": "private",
        }
        return JSONResponse([entry])

    return emails
