"""OpenID claims about a user, shared by the ID token and the userinfo answer."""

from __future__ import annotations

from typing import Any

from keyturn_emulator.state import User

from .site import Site

__all__ = ["claims"]


def claims(
    site: Site, user: User, scopes: tuple[str, ...], include_picture: bool = True
) -> dict[str, Any]:
    """The claims ``scopes`` release: ``email`` and ``profile`` (OpenID Connect Core §5.4).

    :param site: gives the avatar's address.
    :param user: the account.
    :param scopes: the grant's scopes.
    :param include_picture: add ``picture`` under ``profile`` (the ID token leaves it out).
    """
    found: dict[str, Any] = {}
    if "email" in scopes:
        found.update(email=user.email, email_verified=True)
    if "profile" in scopes:
        given, _, family = user.name.partition(" ")
        found.update(name=user.name, given_name=given, locale="en")
        if family:
            found["family_name"] = family
        if include_picture:
            found["picture"] = site.avatar_url(user)
    return found
