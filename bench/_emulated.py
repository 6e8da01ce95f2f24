"""Signed-in tokens from keyturn's provider emulator, for the benchmarks that talk HTTP.

Every network benchmark runs against :class:`keyturn_emulator.Emulator` on 127.0.0.1, in the
same process: no internet, no credentials, and the emulator counts every request it gets,
which is what the concurrency benchmark reports.
"""

from __future__ import annotations

import httpx

import keyturn
from keyturn_emulator import Emulator

__all__ = ["REDIRECT_URI", "access_token_works", "emulated_spec", "sign_in"]

#: Any loopback redirect URI is accepted by the emulator; nothing listens there.
REDIRECT_URI = "http://127.0.0.1:8765/callback"


def emulated_spec(emu: Emulator, profile: str) -> keyturn.ProviderSpec:
    """The spec to benchmark with: the installed plugin's spec pointed at the emulator.

    ``strict`` has no plugin; keyturn's RFC 6749 defaults serve :meth:`Emulator.spec`.

    :param emu: a running emulator.
    :param profile: ``google``, ``github`` or ``strict``.
    :return: a spec whose endpoints are the emulator's.
    """
    if profile == "strict":
        return emu.spec("strict")
    return emu.point(keyturn.Keyturn(environ={}).provider(profile))


def sign_in(emu: Emulator, spec: keyturn.ProviderSpec) -> keyturn.JWT:
    """A fresh grant: authorize (the emulator plays the browser) and exchange the code.

    :param emu: a running emulator.
    :param spec: from :func:`emulated_spec`.
    :return: the JWT of the sign-in, with access and refresh tokens.
    """
    with keyturn.Keyturn({spec.id: emu.credentials}, providers=[spec], environ={}) as kt:
        request = kt.authorize_url(spec.id, REDIRECT_URI)
        return kt.sign_in(request, emu.authorize(request.url), fetch_profile=False)


def access_token_works(spec: keyturn.ProviderSpec, access_token: str | None) -> bool:
    """Whether the provider still accepts ``access_token`` (one userinfo request).

    :param spec: the emulated spec the token came from.
    :param access_token: the token to try; ``None`` is never accepted.
    :return: ``True`` on HTTP 200.
    """
    if access_token is None or spec.userinfo_endpoint is None:
        return False
    response = httpx.get(
        spec.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )
    return response.status_code == 200
