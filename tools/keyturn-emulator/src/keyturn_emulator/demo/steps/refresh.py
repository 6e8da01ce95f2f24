"""Step 2: the access token falls due, ``jwt()`` refreshes it; rotation or keeping is checked.

A rotating provider must return a new refresh token and refuse the old one from then on (one
that keeps the old one valid, Microsoft, must still accept it); a provider that does not rotate
(Google) must leave the refresh token as it was. When the
provider rotated its signing keys since the sign-in (the ``oidc`` tour), the new ID token
must verify with the new key, after one more read of the key set.
"""

from __future__ import annotations

from keyturn.client import Keyturn
from keyturn.errors import ProviderError
from keyturn.models import JWT
from keyturn_emulator import PROFILES
from keyturn_emulator.demo.report import fingerprint
from keyturn_emulator.demo.steps.keys import verified_kid
from keyturn_emulator.demo.tour import Tour

__all__ = ["refresh"]


def refresh(tour: Tour, token: JWT, *, new_kid: str | None = None) -> JWT:
    """Let the token fall due, refresh through ``jwt()``, check rotation or keeping.

    :param tour: the provider's tour.
    :param token: the signed-in token.
    :param new_kid: the key the provider rotated to since the sign-in, if it did: the new ID
        token must be signed with it, and the client must read the key set once more.
    :return: the refreshed token.
    :raises DemoFailure: the refresh failed, returned the old access token, rotated when it
        should not (or the reverse), cost other than one token request, the new ID token is
        not signed with ``new_kid`` or was verified without reading the keys again, or the
        rotated-away refresh token still works.
    """
    tour.wait_until_due(token)
    before = token.tokens
    with tour.step("refresh"):
        after = tour.kt.jwt(token)
    failure = after.refresh_failure
    if failure is not None or after.error is not None:
        reason = failure.error if failure is not None else after.error
        status = f" (HTTP {failure.status})" if failure and failure.status else ""
        raise tour.fail("refresh", f"the refresh failed: {reason}{status}")
    old_access, new_access = (
        fingerprint(before.access_token),
        fingerprint(after.tokens.access_token),
    )
    old_refresh, new_refresh = (
        fingerprint(before.refresh_token),
        fingerprint(after.tokens.refresh_token),
    )
    if new_access == old_access:
        raise tour.fail("refresh", "jwt() returned the old access token")
    rotated = new_refresh != old_refresh
    if rotated != _rotates(tour):
        expected = "rotated" if _rotates(tour) else "kept"
        raise tour.fail("refresh", f"the refresh token should have been {expected}")
    if rotated:
        what = f"refresh token rotated {old_refresh} -> {new_refresh}"
    else:
        what = f"refresh token {old_refresh} kept ({tour.spec.name} does not rotate)"
    kid = verified_kid(tour, after.tokens)
    if new_kid is not None:
        if kid != new_kid:
            raise tour.fail(
                "refresh", f"the new ID token should be signed with the new key {new_kid}: {kid}"
            )
        what += f"; ID token verified with the new key {kid} after reading the key set again"
    elif kid is not None:
        what += f"; ID token verified with key {kid}"
    requests = tour.record(
        "refresh",
        f"access token due; jwt() refreshed it: access {old_access} -> {new_access}; {what}",
        access_before=old_access,
        access_after=new_access,
        refresh_before=old_refresh,
        refresh_after=new_refresh,
        rotated=rotated,
        id_token_kid=kid,
    )
    if requests.get("token") != 1:
        raise tour.fail("refresh", f"expected 1 token request, the emulator saw {requests}")
    if new_kid is not None and requests.get("jwks") != 1:
        raise tour.fail(
            "refresh", f"expected the key set to be read once more, the emulator saw {requests}"
        )
    if rotated:
        _check_old_refresh_token(tour, token, old_refresh)
    return after


def _rotates(tour: Tour) -> bool:
    """Whether the refresh token must change on refresh.

    What the spec declares; a spec that leaves its provider to the discovery document and
    declares nothing (keyturn-oidc's: no document says whether refresh tokens rotate) is held
    to what the emulator's profile does.
    """
    spec = tour.spec
    if spec.discovery_url is None or "rotates_refresh_tokens" in spec.model_fields_set:
        return spec.rotates_refresh_tokens
    return PROFILES[tour.provider].rotation != "none"


def _check_old_refresh_token(tour: Tour, old: JWT, shown: str | None) -> None:
    """Show that the rotated-away refresh token no longer works at the provider; for a
    provider that keeps used refresh tokens (Keycloak's default, ``keep_old``), that it still
    does, and that keyturn went on with the new one all the same."""
    value = old.tokens.refresh_token
    assert value is not None
    if PROFILES[tour.provider].rotation == "keep_old":
        # Microsoft does not revoke a used refresh token: it must still work at the provider.
        if tour.emu.store.lookup(tour.provider, value.get_secret_value()) is None:
            raise tour.fail("refresh", "the emulator no longer accepts the old refresh token")
        tour.record(
            "rotation_check",
            f"the old refresh token {shown} still works at the provider ({tour.spec.name} "
            "does not revoke a used one); keyturn keeps the new one",
            refresh_token=shown,
            refused=False,
            sent=False,
        )
        return
    if tour.emu.store.lookup(tour.provider, value.get_secret_value()) is not None:
        raise tour.fail("refresh", "the emulator still accepts the old refresh token")
    profile = PROFILES[tour.provider]
    if profile.rotation == "detect_reuse":
        # Sending it would be taken for token theft and revoke the whole grant (after the
        # grace period, where the provider has one).
        grace = (
            f"accepted again for {profile.reuse_grace:g} s only (its grace period), then "
            if profile.reuse_grace
            else ""
        )
        tour.record(
            "rotation_check",
            f"the old refresh token {shown} is rotated out at the provider, {grace}taken "
            "for theft; keyturn never sends it again (this provider revokes the whole grant "
            "when a rotated token comes back)",
            refresh_token=shown,
            refused=True,
            sent=False,
        )
        return
    # A fresh client: the tour's own reuse window would answer with the new tokens instead.
    probe = Keyturn(
        {tour.provider: tour.credentials},
        providers=[tour.spec],
        environ={},
        leeway=tour.settings.leeway,
        settings=tour.deployment,
    )
    try:
        probe.refresh(old.tokens)
    except ProviderError as exc:
        error = exc
    else:
        raise tour.fail("refresh", "the provider accepted the old refresh token again")
    finally:
        probe.close()
    code, status = error.error, error.status
    if not error.permanent:
        raise tour.fail("refresh", f"the old refresh token failed, but not permanently ({code})")
    tour.record(
        "rotation_check",
        f"the old refresh token {shown} is refused: {code} (HTTP {status}, permanent)",
        refresh_token=shown,
        refused=True,
        sent=True,
        error=code,
        status=status,
    )
