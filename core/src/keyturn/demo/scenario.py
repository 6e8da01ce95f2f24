"""The tour ``keyturn demo`` takes, step by step, checking every claim it shows.

For each provider, against keyturn's emulator on 127.0.0.1 and with the installed plugin's
own hooks (``Keyturn(providers=[emu.point(spec)])``):

1. sign in: the real authorize URL, the browser played by :meth:`Emulator.authorize`, then
   ``sign_in()`` (state check, code exchange with PKCE, profile, ``jwt`` on ``signIn``);
2. let the access token fall due and ``jwt()`` refreshes it: a rotating provider returns a
   new refresh token and refuses the old one, Google's is kept;
3. let it fall due again and send many concurrent callers at it (``AsyncKeyturn`` tasks):
   the emulator must count one refresh request, and every caller must get the same tokens;
4. revoke the grant at the provider (the user removes the app in their account settings),
   let the token fall due: the session turns to ``error="RefreshAccessTokenError"`` with the
   old tokens kept, no further request is made, and signing in again (a new grant) works.

Any step that does not behave as described raises :class:`DemoFailure` with a one-line
reason, so the demo doubles as an end-to-end test. Tokens never leave this module except
as fingerprints (:func:`~keyturn.demo.report.fingerprint`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from keyturn.client import AsyncKeyturn, Keyturn
from keyturn.emulator import PROFILES, Emulator
from keyturn.errors import KeyturnError, ProviderError
from keyturn.models import JWT, REFRESH_ACCESS_TOKEN_ERROR, ClientCredentials, ProviderSpec

from .meter import RequestMeter
from .report import DemoReport, Event, ProviderSummary, fingerprint

__all__ = [
    "DEFAULT_PROVIDERS",
    "PROVIDERS",
    "REDIRECT_URI",
    "DemoFailure",
    "DemoSettings",
    "Observer",
    "run_demo",
]

#: Providers the demo knows, in the order ``all`` runs them.
PROVIDERS = ("google", "github", "strict")
#: Providers run when none is chosen.
DEFAULT_PROVIDERS = ("google", "github")
#: The app's callback. The emulator accepts any loopback redirect URI; nothing listens here,
#: since the played browser stops at the redirect and hands its query to ``sign_in()``.
REDIRECT_URI = "http://127.0.0.1:8000/auth/callback"

#: Authorize parameters shown by value; the rest are shown by name only.
_SHOWN_PARAMS = ("scope", "access_type", "prompt", "code_challenge_method")
#: Authorize parameters that change on every sign-in; named, never shown.
_UNSHOWN_PARAMS = ("state", "nonce", "code_challenge")
#: How long past the due time a wait lasts, so the token is due when it ends.
_MARGIN = 0.02


class DemoFailure(KeyturnError):
    """A step of the demo did not behave as it should.

    The message is one line: ``<provider>, <step>: <what went wrong>``.

    :ivar report: the report up to the failure (set by :func:`run_demo`).
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
        self.report: DemoReport | None = None


@dataclass(frozen=True)
class DemoSettings:
    """How the demo runs.

    :ivar providers: provider ids to tour, in order (see :data:`PROVIDERS`).
    :ivar access_token_lifetime: seconds the emulator's access tokens live.
    :ivar leeway: the clients' leeway: a token counts as due this many seconds before it
        expires. Keep it well under the lifetime, or every token is due as soon as it is
        issued (keyturn's default of 60 s would be, with tokens that live seconds).
    :ivar callers: concurrent callers in step 3.
    """

    providers: tuple[str, ...] = DEFAULT_PROVIDERS
    access_token_lifetime: int = 5
    leeway: float = 1.0
    callers: int = 200

    def __post_init__(self) -> None:
        unknown = [name for name in self.providers if name not in PROVIDERS]
        if unknown or not self.providers:
            raise ValueError(f"providers must be among {', '.join(PROVIDERS)}")
        if self.access_token_lifetime < 1:
            raise ValueError("access_token_lifetime must be at least 1 second")
        if not 0 <= self.leeway < self.access_token_lifetime:
            raise ValueError("leeway must be zero or more and less than the token lifetime")
        if self.callers < 2:
            raise ValueError("callers must be at least 2")

    @classmethod
    def choose(
        cls, providers: Sequence[str] = DEFAULT_PROVIDERS, *, fast: bool = False, callers: int = 200
    ) -> DemoSettings:
        """Settings for a normal run (tokens live 5 s, leeway 1 s) or a fast one (1 s, 0).

        :param providers: provider ids, in order.
        :param fast: shorten every wait to about a second.
        :param callers: concurrent callers in step 3.
        :raises ValueError: an unknown provider or too few callers.
        """
        if fast:
            return cls(tuple(providers), access_token_lifetime=1, leeway=0.0, callers=callers)
        return cls(tuple(providers), callers=callers)

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready mapping."""
        data = asdict(self)
        data["providers"] = list(self.providers)
        return data


class Observer:
    """Receives the demo's progress; the display subclasses it. This one shows nothing.

    Every method is called from the thread running :func:`run_demo`.
    """

    def begin(self, report: DemoReport) -> None:
        """The emulator is up (``report.emulator``) and the tour starts."""

    def provider(self, provider: str, name: str, origin: str) -> None:
        """The tour of one provider starts.

        :param provider: its id.
        :param name: its display name.
        :param origin: the plugin that serves it, or keyturn's defaults.
        """

    def event(self, event: Event) -> None:
        """A step happened (it is already in the report)."""

    def wait(self, seconds: float, reason: str) -> None:
        """Block for ``seconds`` while the demo waits for ``reason``; this one sleeps.

        :param seconds: how long to block.
        :param reason: what the wait is for, e.g. ``"the access token to expire"``.
        """
        time.sleep(seconds)

    def end(self, report: DemoReport) -> None:
        """Every check passed; ``report`` is complete."""


class _Stopwatch:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return round(time.monotonic() - self.start, 3)


def _authorize_facts(url: str) -> dict[str, Any]:
    """What the authorize URL asks for, with state, nonce and challenge named, not shown."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return {
        "endpoint": f"{parts.scheme}://{parts.netloc}{parts.path}",
        "params": {name: query[name] for name in _SHOWN_PARAMS if name in query},
        "hidden": [name for name in _UNSHOWN_PARAMS if name in query],
    }


class _Tour:
    """One provider's tour; each public method is one step of the module docs."""

    def __init__(
        self,
        emu: Emulator,
        provider: str,
        spec: ProviderSpec,
        settings: DemoSettings,
        observer: Observer,
        report: DemoReport,
        stopwatch: _Stopwatch,
    ) -> None:
        self.emu = emu
        self.provider = provider
        self.spec = spec
        self.settings = settings
        self.observer = observer
        self.report = report
        self.stopwatch = stopwatch
        self.credentials: ClientCredentials = emu.credentials
        self.meter = RequestMeter(emu, provider)
        self.kt = Keyturn(
            {provider: self.credentials},
            providers=[spec],
            environ={},
            leeway=settings.leeway,
        )

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        self.kt.close()

    def fail(self, step: str, message: str) -> DemoFailure:
        return DemoFailure(f"{self.provider}, {step}: {message}")

    @contextlib.contextmanager
    def step(self, step: str) -> Iterator[None]:
        """Turn a keyturn error inside a step into a :class:`DemoFailure` naming the step."""
        try:
            yield
        except DemoFailure:
            raise
        except KeyturnError as exc:
            raise self.fail(step, str(exc)) from None

    def record(
        self, step: str, text: str, *, delta: dict[str, int] | None = None, **facts: Any
    ) -> dict[str, int]:
        """Add an event with the requests made since the previous one; returns them.

        ``delta`` is a counter change already taken from the meter, if the step needed it.
        """
        requests = RequestMeter.requests(self.meter.take() if delta is None else delta)
        event = Event(self.provider, step, self.stopwatch.elapsed(), text, requests, facts)
        self.report.events.append(event)
        self.observer.event(event)
        return requests

    def wait_until_due(self, token: JWT) -> None:
        """Wait until the client counts the access token as due (expiry minus leeway)."""
        tokens = token.tokens
        if tokens.expires_at is None:
            raise self.fail("wait", "the access token has no expiry, so it is never refreshed")
        remaining = tokens.expires_at - self.settings.leeway - time.time()
        if remaining > 0:
            self.observer.wait(remaining + _MARGIN, "the access token to expire")
        while not tokens.expires_within(self.settings.leeway, time.time()):
            time.sleep(_MARGIN)

    def expires_in(self, token: JWT) -> float | None:
        expires_at = token.tokens.expires_at
        return None if expires_at is None else round(expires_at - time.time(), 1)

    # -- 1. sign in -----------------------------------------------------------------------

    def sign_in(self, again: bool = False) -> JWT:
        """Authorize (the browser played), then ``sign_in()``; checks the session."""
        step = "sign_in_again" if again else "sign_in"
        with self.step("authorize"):
            request = self.kt.authorize_url(self.provider, REDIRECT_URI)
            callback = self.emu.authorize(request.url)
        if "code" not in callback:
            raise self.fail("authorize", f"the callback carries no code ({callback.get('error')})")
        facts = _authorize_facts(request.url)
        shown = "&".join(f"{name}={value}" for name, value in facts["params"].items())
        self.record(
            "authorize",
            f"GET {facts['endpoint']}?{shown} (and {', '.join(facts['hidden'])}) -> the "
            "browser comes back to the app's callback with a code",
            again=again,
            **facts,
        )
        with self.step(step):
            token = self.kt.sign_in(request, callback)
            session = self.kt.session(token)
        tokens = token.tokens
        if tokens.refresh_token is None:
            raise self.fail(step, "the provider issued no refresh token")
        if token.user is None or session.user is None:
            raise self.fail(step, "no profile came back with the sign-in")
        if session.error is not None or session.access_token is None:
            raise self.fail(step, f"the new session is not usable (error {session.error})")
        user = session.user
        who = f"{user.name} <{user.email}>" if user.name else str(user.email or user.id)
        access = fingerprint(session.access_token)
        refresh = fingerprint(tokens.refresh_token)
        expires_in = self.expires_in(token)
        lead = "signed in again with a new grant" if again else "signed in"
        self.record(
            step,
            f"{who} {lead}: state checked, code exchanged with PKCE, profile fetched; "
            f"session: access token {access}, expires in {expires_in} s; refresh token {refresh}",
            user={"id": user.id, "name": user.name, "email": user.email},
            access_token=access,
            refresh_token=refresh,
            id_token=tokens.id_token is not None,
            expires_at=session.expires_at,
            expires_in=expires_in,
            error=session.error,
        )
        return token

    # -- 2. refresh -----------------------------------------------------------------------

    def refresh(self, token: JWT) -> JWT:
        """Let the token fall due, refresh through ``jwt()``, check rotation or keeping."""
        self.wait_until_due(token)
        before = token.tokens
        with self.step("refresh"):
            after = self.kt.jwt(token)
        failure = after.refresh_failure
        if failure is not None or after.error is not None:
            reason = failure.error if failure is not None else after.error
            status = f" (HTTP {failure.status})" if failure and failure.status else ""
            raise self.fail("refresh", f"the refresh failed: {reason}{status}")
        old_access, new_access = (
            fingerprint(before.access_token),
            fingerprint(after.tokens.access_token),
        )
        old_refresh, new_refresh = (
            fingerprint(before.refresh_token),
            fingerprint(after.tokens.refresh_token),
        )
        if new_access == old_access:
            raise self.fail("refresh", "jwt() returned the old access token")
        rotated = new_refresh != old_refresh
        if rotated != self.spec.rotates_refresh_tokens:
            expected = "rotated" if self.spec.rotates_refresh_tokens else "kept"
            raise self.fail("refresh", f"the refresh token should have been {expected}")
        if rotated:
            what = f"refresh token rotated {old_refresh} -> {new_refresh}"
        else:
            what = f"refresh token {old_refresh} kept ({self.spec.name} does not rotate)"
        requests = self.record(
            "refresh",
            f"access token due; jwt() refreshed it: access {old_access} -> {new_access}; {what}",
            access_before=old_access,
            access_after=new_access,
            refresh_before=old_refresh,
            refresh_after=new_refresh,
            rotated=rotated,
        )
        if requests.get("token") != 1:
            raise self.fail("refresh", f"expected 1 token request, the emulator saw {requests}")
        if rotated:
            self.check_old_refresh_token(token, old_refresh)
        return after

    def check_old_refresh_token(self, old: JWT, shown: str | None) -> None:
        """Show that the rotated-away refresh token no longer works at the provider."""
        value = old.tokens.refresh_token
        assert value is not None
        if self.emu.store.lookup(self.provider, value.get_secret_value()) is not None:
            raise self.fail("refresh", "the emulator still accepts the old refresh token")
        if PROFILES[self.provider].rotation == "detect_reuse":
            # Sending it would be taken for token theft and revoke the whole grant.
            self.record(
                "rotation_check",
                f"the old refresh token {shown} is dead at the provider (not sent again: "
                "this provider revokes the whole grant when a rotated token comes back)",
                refresh_token=shown,
                refused=True,
                sent=False,
            )
            return
        # A fresh client: this one's reuse window would answer with the new tokens instead.
        probe = Keyturn(
            {self.provider: self.credentials},
            providers=[self.spec],
            environ={},
            leeway=self.settings.leeway,
        )
        try:
            probe.refresh(old.tokens)
        except ProviderError as exc:
            error = exc
        else:
            raise self.fail("refresh", "the provider accepted the old refresh token again")
        finally:
            probe.close()
        code, status = error.error, error.status
        if not error.permanent:
            raise self.fail(
                "refresh", f"the old refresh token failed, but not permanently ({code})"
            )
        self.record(
            "rotation_check",
            f"the old refresh token {shown} is refused: {code} (HTTP {status}, permanent)",
            refresh_token=shown,
            refused=True,
            sent=True,
            error=code,
            status=status,
        )

    # -- 3. many callers, one refresh -----------------------------------------------------

    def stampede(self, token: JWT) -> tuple[JWT, int, int]:
        """Let the token fall due, then ``settings.callers`` tasks call ``jwt()`` at once.

        :return: the refreshed token, the callers that overlapped, the refresh requests.
        """
        self.wait_until_due(token)
        old_access = fingerprint(token.tokens.access_token)
        with self.step("concurrent"):
            results, overlapped = asyncio.run(self._callers(token))
        delta = self.meter.take()
        refresh_requests = delta.get("token_requests", 0)
        accesses = {fingerprint(result.tokens.access_token) for result in results}
        errors = sorted({str(result.error) for result in results if result.error})
        failures = sorted(
            {r.refresh_failure.error for r in results if r.refresh_failure is not None}
        )
        new_access = next(iter(accesses))
        plural = "" if refresh_requests == 1 else "s"
        outcome = (
            f"every caller got access {new_access}"
            if len(accesses) == 1
            else f"callers got {len(accesses)} different access tokens"
        )
        self.record(
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
            raise self.fail(
                "concurrent",
                f"{len(results)} concurrent callers caused {refresh_requests} refresh requests "
                "at the emulator, expected 1",
            )
        if errors or failures:
            raise self.fail(
                "concurrent", f"callers saw refresh errors: {', '.join(failures or errors)}"
            )
        if len(accesses) != 1:
            raise self.fail("concurrent", f"callers got {len(accesses)} different access tokens")
        if new_access == old_access:
            raise self.fail("concurrent", "the callers got the expired access token back")
        if overlapped < 2:
            raise self.fail("concurrent", "the callers did not overlap")
        return results[0], overlapped, refresh_requests

    async def _callers(self, token: JWT) -> tuple[list[JWT], int]:
        started = 0
        overlapped = 0

        async with AsyncKeyturn(
            {self.provider: self.credentials},
            providers=[self.spec],
            environ={},
            leeway=self.settings.leeway,
        ) as akt:

            async def one() -> JWT:
                nonlocal started, overlapped
                started += 1
                result = await akt.jwt(token)
                if not overlapped:  # the first answer: how many had asked by then
                    overlapped = started
                return result

            results = await asyncio.gather(*(one() for _ in range(self.settings.callers)))
        return list(results), overlapped

    # -- 4. revocation --------------------------------------------------------------------

    def revoke(self, token: JWT) -> JWT:
        """Revoke the grant at the provider, let the token fall due, check the session."""
        revoked = self.emu.revoke_grants(self.provider)
        if revoked < 1:
            raise self.fail("revoke", "the emulator had no grant to revoke")
        self.record(
            "revoke",
            f"the user removes the app in their {self.spec.name} account settings: "
            f"{revoked} grant revoked at the provider; the app is not told",
            grants_revoked=revoked,
        )
        self.wait_until_due(token)
        before = token.tokens
        with self.step("refresh_refused"):
            after = self.kt.jwt(token)
            session = self.kt.session(after)
        failure = after.refresh_failure
        if session.error != REFRESH_ACCESS_TOKEN_ERROR or failure is None:
            raise self.fail(
                "refresh_refused",
                f"expected session.error == {REFRESH_ACCESS_TOKEN_ERROR!r}, got {session.error!r}",
            )
        kept = fingerprint(after.tokens.access_token) == fingerprint(
            before.access_token
        ) and fingerprint(after.tokens.refresh_token) == fingerprint(before.refresh_token)
        if not kept:
            raise self.fail("refresh_refused", "the failed refresh lost the old tokens")
        requests = self.record(
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
            raise self.fail(
                "refresh_refused", f"expected 1 token request, the emulator saw {requests}"
            )
        with self.step("no_retry"):
            again = self.kt.jwt(after)
        requests = self.record(
            "no_retry",
            f"no request: the session keeps {again.error} until the user signs in again",
            error=again.error,
        )
        if requests or again.error != REFRESH_ACCESS_TOKEN_ERROR:
            raise self.fail("no_retry", f"a refused token was tried again ({requests})")
        return after

    # -- the whole tour -------------------------------------------------------------------

    def run(self, name: str, origin: str) -> ProviderSummary:
        began = time.monotonic()
        first = self.sign_in()
        refreshed = self.refresh(first)
        shared, overlapped, refresh_requests = self.stampede(refreshed)
        refused = self.revoke(shared)
        again = self.sign_in(again=True)
        if fingerprint(again.tokens.access_token) == fingerprint(refused.tokens.access_token):
            raise self.fail("sign_in_again", "the new sign-in returned the revoked token")
        total = self.meter.total()
        return ProviderSummary(
            provider=self.provider,
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
        )


def _provider_spec(emu: Emulator, provider: str) -> tuple[ProviderSpec, str, str]:
    """The spec to tour with, its display name and where its behaviour comes from."""
    if provider == "strict":
        spec = emu.spec("strict")
        return spec, "Strict RFC 6749 provider", "keyturn's RFC 6749 defaults, no plugin"
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
    stopwatch = _Stopwatch()
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
                tour = _Tour(emulator, provider, spec, settings, observer, report, stopwatch)
                try:
                    report.summaries.append(tour.run(name, origin))
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
