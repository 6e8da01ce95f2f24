"""Step 3: many concurrent callers at one expired token, and one refresh request between them.

``settings.callers`` ``AsyncKeyturn`` tasks call ``jwt()`` on the same due token at once. The
emulator counts what reaches it, so it must see one token request, and every caller must
come back with the same new access token.
"""

from __future__ import annotations

import asyncio

from keyturn.client import AsyncKeyturn
from keyturn.models import JWT
from keyturn_emulator.demo.report import fingerprint
from keyturn_emulator.demo.tour import Tour

__all__ = ["stampede"]


def stampede(tour: Tour, token: JWT) -> tuple[JWT, int, int]:
    """Let the token fall due, then ``settings.callers`` tasks call ``jwt()`` at once.

    :param tour: the provider's tour.
    :param token: the token from step 2.
    :return: the refreshed token, the callers that overlapped, the refresh requests.
    :raises DemoFailure: other than one refresh request, refresh errors, different or
        unchanged access tokens, or callers that did not overlap.
    """
    tour.wait_until_due(token)
    old_access = fingerprint(token.tokens.access_token)
    with tour.step("concurrent"):
        results, overlapped = asyncio.run(_callers(tour, token))
    delta = tour.meter.take()
    refresh_requests = delta.get("token_requests", 0)
    accesses = {fingerprint(result.tokens.access_token) for result in results}
    errors = sorted({str(result.error) for result in results if result.error})
    failures = sorted({r.refresh_failure.error for r in results if r.refresh_failure is not None})
    new_access = next(iter(accesses))
    plural = "" if refresh_requests == 1 else "s"
    outcome = (
        f"every caller got access {new_access}"
        if len(accesses) == 1
        else f"callers got {len(accesses)} different access tokens"
    )
    tour.record(
        "concurrent",
        f"{len(results)} concurrent jwt() calls on the expired token ({overlapped} in "
        f"flight together) -> {refresh_requests} refresh request{plural}; {outcome}",
        delta=delta,
        callers=len(results),
        overlapped=overlapped,
        refresh_requests=refresh_requests,
        distinct_access_tokens=len(accesses),
        access_before=old_access,
        access_after=new_access,
    )
    if refresh_requests != 1:
        raise tour.fail(
            "concurrent",
            f"{len(results)} concurrent callers caused {refresh_requests} refresh requests "
            "at the emulator, expected 1",
        )
    if errors or failures:
        raise tour.fail(
            "concurrent", f"callers saw refresh errors: {', '.join(failures or errors)}"
        )
    if len(accesses) != 1:
        raise tour.fail("concurrent", f"callers got {len(accesses)} different access tokens")
    if new_access == old_access:
        raise tour.fail("concurrent", "the callers got the expired access token back")
    if overlapped < 2:
        raise tour.fail("concurrent", "the callers did not overlap")
    return results[0], overlapped, refresh_requests


async def _callers(tour: Tour, token: JWT) -> tuple[list[JWT], int]:
    """Run the callers; returns their tokens and how many had started by the first answer."""
    started = 0
    overlapped = 0

    async with AsyncKeyturn(
        {tour.provider: tour.credentials},
        providers=[tour.spec],
        environ={},
        leeway=tour.settings.leeway,
        settings=tour.deployment,
    ) as akt:

        async def one() -> JWT:
            nonlocal started, overlapped
            started += 1
            result = await akt.jwt(token)
            if not overlapped:  # the first answer: how many had asked by then
                overlapped = started
            return result

        results = await asyncio.gather(*(one() for _ in range(tour.settings.callers)))
    return list(results), overlapped
