"""Profiles of the providers shipped as plugins beyond Google and GitHub, one module each.

Each module defines ``behaviour() -> Behaviour`` (see :mod:`keyturn_emulator.profiles`),
built from the provider's documented answers, with the page each one comes from. They are
added to :data:`keyturn_emulator.profiles.PROFILES` under their names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keyturn_emulator.profiles import Behaviour

__all__ = ["behaviours"]


def behaviours() -> tuple[Behaviour, ...]:
    """The profile of every provider module here."""
    from . import apple, auth0, discord, gitlab, keycloak, microsoft, okta, slack

    return (
        gitlab.behaviour(),
        microsoft.behaviour(),
        slack.behaviour(),
        okta.behaviour(),
        auth0.behaviour(),
        keycloak.behaviour(),
        discord.behaviour(),
        apple.behaviour(),
    )
