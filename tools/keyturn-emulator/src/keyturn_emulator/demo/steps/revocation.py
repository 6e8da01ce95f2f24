"""Step 4: the grant is revoked at the provider and the session turns to an error, for good.

The user removes the app in their account settings; the app is not told. When the access
token next falls due, the refresh is refused for good: the session shows
``error="RefreshAccessTokenError"`` with the old tokens kept, and a further ``jwt()`` makes
no request until the user signs in again.
"""

from __future__ import annotations

from keyturn.models import JWT, REFRESH_ACCESS_TOKEN_ERROR
from keyturn_emulator.demo.report import fingerprint
from keyturn_emulator.demo.tour import Tour

__all__ = ["revoke"]


def revoke(tour: Tour, token: JWT) -> JWT:
    """Revoke the grant at the provider, let the token fall due, check the session.

    :param tour: the provider's tour.
    :param token: the token from step 3.
    :return: the token after the refused refresh, its error set.
    :raises DemoFailure: no grant to revoke, no ``RefreshAccessTokenError``, lost tokens,
        other than one token request, or a retry after the refusal.
    """
    revoked = tour.emu.revoke_grants(tour.provider)
    if revoked < 1:
        raise tour.fail("revoke", "the emulator had no grant to revoke")
    tour.record(
        "revoke",
        f"the user removes the app in their {tour.spec.name} account settings: "
        f"{revoked} grant revoked at the provider; the app is not told",
        grants_revoked=revoked,
    )
    tour.wait_until_due(token)
    before = token.tokens
    with tour.step("refresh_refused"):
        after = tour.kt.jwt(token)
        session = tour.kt.session(after)
    failure = after.refresh_failure
    if session.error != REFRESH_ACCESS_TOKEN_ERROR or failure is None:
        raise tour.fail(
            "refresh_refused",
            f"expected session.error == {REFRESH_ACCESS_TOKEN_ERROR!r}, got {session.error!r}",
        )
    kept = fingerprint(after.tokens.access_token) == fingerprint(
        before.access_token
    ) and fingerprint(after.tokens.refresh_token) == fingerprint(before.refresh_token)
    if not kept:
        raise tour.fail("refresh_refused", "the failed refresh lost the old tokens")
    requests = tour.record(
        "refresh_refused",
        f"access token due; the refresh is refused: {failure.error} (HTTP {failure.status}, "
        f"{'permanent' if failure.permanent else 'transient'}); session.error = "
        f"{session.error}; old tokens kept (access {fingerprint(before.access_token)}, "
        f"refresh {fingerprint(before.refresh_token)})",
        error=session.error,
        refresh_error=failure.error,
        status=failure.status,
        permanent=failure.permanent,
        old_tokens_kept=kept,
    )
    if requests.get("token") != 1:
        raise tour.fail("refresh_refused", f"expected 1 token request, the emulator saw {requests}")
    with tour.step("no_retry"):
        again = tour.kt.jwt(after)
    requests = tour.record(
        "no_retry",
        f"no request: the session keeps {again.error} until the user signs in again",
        error=again.error,
    )
    if requests or again.error != REFRESH_ACCESS_TOKEN_ERROR:
        raise tour.fail("no_retry", f"a refused token was tried again ({requests})")
    return after
