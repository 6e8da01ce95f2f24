"""The tour ``keyturn demo`` takes, provider by provider, checking every claim it shows.

For each provider, against keyturn's emulator on 127.0.0.1 and with the installed plugin's
own hooks (``Keyturn(providers=[emu.point(spec)])``); ``oidc`` is declared as an app declares
any OpenID Provider, ``keyturn_oidc.provider("oidc", issuer)``, and everything else comes from
the emulator's discovery document. Wherever the provider publishes keys, every ID token is
verified with them, and the event says with which key:

1. sign in: the real authorize URL, the browser played by :meth:`Emulator.authorize`, then
   ``sign_in()`` (state check, code exchange with PKCE, profile, ``jwt`` on ``signIn``);
2. let the access token fall due and ``jwt()`` refreshes it: a rotating provider returns a
   new refresh token and refuses the old one, Google's is kept. For ``oidc`` the provider
   rotates its signing keys first, and the new ID token must verify with the new key;
3. let it fall due again and send many concurrent callers at it (``AsyncKeyturn`` tasks):
   the emulator must count one refresh request, and every caller must get the same tokens;
4. revoke the grant at the provider (the user removes the app in their account settings),
   let the token fall due: the session turns to ``error="RefreshAccessTokenError"`` with the
   old tokens kept, no further request is made, and signing in again (a new grant) works.

Each step is a module of :mod:`keyturn_emulator.demo.steps`; this one runs them in order and starts
the emulator. Any step that does not behave as described raises :class:`DemoFailure` with a
one-line reason, so the demo doubles as an end-to-end test. Tokens never leave the steps
except as fingerprints (:func:`~keyturn_emulator.demo.report.fingerprint`).

The settings, the failure and the observer live in their own modules and are importable
from here too.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import time

from keyturn.client import Keyturn
from keyturn.models import ProviderSpec
from keyturn_emulator import Emulator

from .failure import DemoFailure
from .meter import RequestMeter
from .observer import Observer
from .report import DemoReport, ProviderSummary, fingerprint
from .settings import DEFAULT_PROVIDERS, PROVIDERS, DemoSettings
from .steps.concurrent import stampede
from .steps.keys import ROTATING_KEYS, rotate_signing_keys, verified_kid
from .steps.refresh import refresh
from .steps.revocation import revoke
from .steps.sign_in import REDIRECT_URI, sign_in
from .tour import Stopwatch, Tour

__all__ = [
    "DEFAULT_PROVIDERS",
    "PROVIDERS",
    "REDIRECT_URI",
    "DemoFailure",
    "DemoSettings",
    "Observer",
    "run_demo",
]


def _tour_provider(tour: Tour, name: str, origin: str) -> ProviderSummary:
    """Run the steps in order for one provider and sum them up."""
    began = time.monotonic()
    first = sign_in(tour)
    new_kid = None
    if tour.provider in ROTATING_KEYS:
        new_kid = rotate_signing_keys(tour, verified_kid(tour, first.tokens))
    refreshed = refresh(tour, first, new_kid=new_kid)
    shared, overlapped, refresh_requests = stampede(tour, refreshed)
    refused = revoke(tour, shared)
    again = sign_in(tour, again=True)
    if fingerprint(again.tokens.access_token) == fingerprint(refused.tokens.access_token):
        raise tour.fail("sign_in_again", "the new sign-in returned the revoked token")
    total = tour.meter.total()
    return ProviderSummary(
        provider=tour.provider,
        name=name,
        origin=origin,
        sign_in=True,
        refreshes=total.get("refresh_token", 0),
        rotation=fingerprint(refreshed.tokens.refresh_token)
        != fingerprint(first.tokens.refresh_token),
        refresh_token_before=fingerprint(first.tokens.refresh_token),
        refresh_token_after=fingerprint(refreshed.tokens.refresh_token),
        concurrent_callers=overlapped,
        concurrent_refresh_requests=refresh_requests,
        same_access_token=True,
        revocation_detected=True,
        error=refused.error,
        old_tokens_kept=True,
        re_sign_in=True,
        requests=sum(RequestMeter.requests(total).values()),
        elapsed=round(time.monotonic() - began, 3),
        signing_key_rotated=new_kid is not None,
    )


def _provider_spec(emu: Emulator, provider: str) -> tuple[ProviderSpec, str, str]:
    """The spec to tour with, its display name and where its behaviour comes from."""
    if provider == "strict":
        spec = emu.spec("strict")
        return spec, "Strict RFC 6749 provider", "keyturn's RFC 6749 defaults, no plugin"
    if provider == "oidc":
        return _oidc_spec(emu)
    with Keyturn(environ={}) as probe:
        registered = probe.registered_providers.get(provider)
    if registered is None:
        raise DemoFailure(
            f"{provider}: no plugin registers it (pip install keyturn-{provider}, "
            "and check KEYTURN_DISABLE_PLUGINS)"
        )
    origin = (
        f"{registered.distribution} {registered.version}"
        if registered.distribution
        else registered.plugin
    )
    return emu.point(registered.spec), registered.spec.name, origin


def _oidc_spec(emu: Emulator) -> tuple[ProviderSpec, str, str]:
    """The emulator's ``oidc`` profile declared by its issuer alone, through keyturn-oidc."""
    try:
        import keyturn_oidc
    except ImportError:
        raise DemoFailure(
            "oidc: keyturn-oidc is not installed (pip install keyturn-oidc)"
        ) from None
    issuer = emu.issuer("oidc")
    assert issuer is not None  # the oidc profile has an issuer
    name = "OpenID Provider"
    spec = keyturn_oidc.provider("oidc", issuer, name=name)
    try:
        version = importlib.metadata.version("keyturn-oidc")
    except importlib.metadata.PackageNotFoundError:
        version = "(not installed as a distribution)"
    return spec, name, f"keyturn-oidc {version}, from the issuer's discovery document"


def run_demo(
    settings: DemoSettings,
    observer: Observer | None = None,
    *,
    emulator: Emulator | None = None,
) -> DemoReport:
    """Run the tour for every provider in ``settings`` and return the report.

    :param settings: providers, lifetimes, leeway and callers.
    :param observer: shown each step as it happens; nothing is shown by default.
    :param emulator: a running emulator to use (its access-token lifetime is set from
        ``settings``, its other knobs are left alone); by default one is started on a free
        port and stopped at the end, also on Ctrl-C.
    :return: the complete report, ``ok`` set.
    :raises DemoFailure: a step did not behave as it should; its ``report`` holds the
        timeline up to that step.
    """
    observer = observer or Observer()
    stopwatch = Stopwatch()
    report = DemoReport(settings=settings.as_dict())
    try:
        with contextlib.ExitStack() as stack:
            if emulator is None:
                emulator = stack.enter_context(
                    Emulator(access_token_lifetime=settings.access_token_lifetime)
                )
            else:
                emulator.configure(access_token_lifetime=settings.access_token_lifetime)
            report.emulator = emulator.base_url
            observer.begin(report)
            for provider in settings.providers:
                spec, name, origin = _provider_spec(emulator, provider)
                observer.provider(provider, name, origin)
                tour = Tour(emulator, provider, spec, settings, observer, report, stopwatch)
                try:
                    report.summaries.append(_tour_provider(tour, name, origin))
                finally:
                    tour.close()
    except DemoFailure as exc:
        report.error = str(exc)
        report.elapsed = stopwatch.elapsed()
        exc.report = report
        raise
    report.ok = True
    report.elapsed = stopwatch.elapsed()
    observer.end(report)
    return report
