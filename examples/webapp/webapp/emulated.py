"""A keyturn client whose GitHub and Google are the local emulator, not the real sites."""

from __future__ import annotations

from collections.abc import Sequence

from keyturn import AsyncKeyturn, Keyturn
from keyturn_emulator import Emulator

__all__ = ["DEFAULT_PROVIDERS", "emulated_client"]

#: The providers the example offers.
DEFAULT_PROVIDERS = ("github", "google")


def emulated_client(
    emulator: Emulator, *, leeway: float = 2, providers: Sequence[str] = DEFAULT_PROVIDERS
) -> AsyncKeyturn:
    """An :class:`~keyturn.AsyncKeyturn` that signs in with ``providers`` at ``emulator``.

    Each installed plugin's spec is copied with its endpoints moved to the emulator's profile
    of the same name (:meth:`Emulator.point`), so the real keyturn-github and keyturn-google
    code runs; the credentials are the ones the emulator accepts.

    :param emulator: a running emulator.
    :param leeway: seconds before an access token's expiry at which it is refreshed. keyturn's
        default is 60; the example uses a small one so that refreshes of short-lived demo
        tokens happen close to their expiry, where one can watch them.
    :param providers: provider ids with an installed plugin and an emulator profile.
    """
    with Keyturn(environ={}) as installed:
        specs = [emulator.point(installed.provider(name)) for name in providers]
    return AsyncKeyturn(
        dict.fromkeys(providers, emulator.credentials),
        providers=specs,
        leeway=leeway,
        environ={},
    )
