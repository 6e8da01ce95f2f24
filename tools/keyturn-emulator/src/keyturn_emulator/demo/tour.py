"""One provider's tour: the client, the request meter and the timeline every step writes to.

A :class:`Tour` is what each step in :mod:`keyturn_emulator.demo.steps` works on. It holds the
emulator, the provider's spec and a :class:`~keyturn.client.Keyturn` client, and gives a step
what it needs to write an event (:meth:`Tour.record`), to fail with a one-line reason
(:meth:`Tour.fail`, :meth:`Tour.step`) and to wait for a token to fall due
(:meth:`Tour.wait_until_due`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keyturn.client import Keyturn
from keyturn.errors import KeyturnError
from keyturn.models import JWT, ClientCredentials, ProviderSpec
from keyturn_emulator import Emulator
from keyturn_emulator.profiles import PROFILES

from .failure import DemoFailure
from .meter import RequestMeter
from .observer import Observer
from .report import DemoReport, Event
from .settings import DemoSettings

__all__ = ["Stopwatch", "Tour"]

#: How long past the due time a wait lasts, so the token is due when it ends.
_MARGIN = 0.02


class Stopwatch:
    """Seconds since the demo started, the time stamp of every event."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the stopwatch was made, to the millisecond."""
        return round(time.monotonic() - self.start, 3)


#: The key id the demo registers for a provider whose client secret is a signed JWT (Apple).
DEMO_KEY_ID = "keyturn-demo-key"


def client_setup(
    emu: Emulator, provider: str, spec: ProviderSpec
) -> tuple[ClientCredentials, dict[str, dict[str, str]]]:
    """The tour's credentials and deployment settings for ``provider``.

    The emulator's client id and secret, as a registered app has them; for a profile whose
    client secret is a JWT the app signs (Apple), a new P-256 key instead, its public half
    registered with the emulator as the provider's console would hold it. Every ``text``
    setting without a default (Apple's ``team_id``) gets a demo value.
    """
    settings = {
        setting.name: f"demo-{setting.name}".replace("_", "-")
        for setting in spec.settings
        if setting.kind == "text" and setting.default is None
    }
    deployment = {provider: settings} if settings else {}
    behaviour = PROFILES.get(provider)
    if behaviour is None or behaviour.secret_jwt_audience is None:
        return emu.credentials, deployment
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    credentials = ClientCredentials(
        client_id=emu.credentials.client_id, private_key=pem, private_key_id=DEMO_KEY_ID
    )
    assert credentials.signing_key is not None
    emu.register_client_keys(
        {"keys": [{**credentials.signing_key.public_jwk(), "kid": DEMO_KEY_ID}]}
    )
    return credentials, deployment


class Tour:
    """What the steps of one provider's tour share.

    :param emu: the running emulator.
    :param provider: the provider id (also the emulator profile).
    :param spec: the spec to tour with, pointed at the emulator.
    :param settings: leeway and callers.
    :param observer: told of every event.
    :param report: the report the events go to.
    :param stopwatch: stamps the events.
    """

    def __init__(
        self,
        emu: Emulator,
        provider: str,
        spec: ProviderSpec,
        settings: DemoSettings,
        observer: Observer,
        report: DemoReport,
        stopwatch: Stopwatch,
    ) -> None:
        self.emu = emu
        self.provider = provider
        self.spec = spec
        self.settings = settings
        self.observer = observer
        self.report = report
        self.stopwatch = stopwatch
        self.credentials, self.deployment = client_setup(emu, provider, spec)
        self.meter = RequestMeter(emu, provider)
        self.kt = Keyturn(
            {provider: self.credentials},
            providers=[spec],
            environ={},
            leeway=settings.leeway,
            settings=self.deployment,
        )

    def close(self) -> None:
        """Close the tour's client."""
        self.kt.close()

    def fail(self, step: str, message: str) -> DemoFailure:
        """The failure to raise for ``step``, naming the provider and the step.

        :param step: the step's name, as in the events.
        :param message: what went wrong.
        :return: the failure, for the caller to raise.
        """
        return DemoFailure(f"{self.provider}, {step}: {message}")

    @contextlib.contextmanager
    def step(self, step: str) -> Iterator[None]:
        """Turn a keyturn error inside a step into a :class:`DemoFailure` naming the step.

        :param step: the step's name, as in the events.
        :raises DemoFailure: a :class:`~keyturn.errors.KeyturnError` was raised inside.
        """
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

        :param step: the step's name.
        :param text: the event's line, tokens shown by fingerprint only.
        :param delta: a counter change already taken from the meter, if the step needed it.
        :param facts: the event's facts, JSON-ready.
        :return: the HTTP requests by endpoint, zeros left out.
        """
        requests = RequestMeter.requests(self.meter.take() if delta is None else delta)
        event = Event(self.provider, step, self.stopwatch.elapsed(), text, requests, facts)
        self.report.events.append(event)
        self.observer.event(event)
        return requests

    def wait_until_due(self, token: JWT) -> None:
        """Wait until the client counts the access token as due (expiry minus leeway).

        :param token: the token to wait for.
        :raises DemoFailure: the access token has no expiry.
        """
        tokens = token.tokens
        if tokens.expires_at is None:
            raise self.fail("wait", "the access token has no expiry, so it is never refreshed")
        remaining = tokens.expires_at - self.settings.leeway - time.time()
        if remaining > 0:
            self.observer.wait(remaining + _MARGIN, "the access token to expire")
        while not tokens.expires_within(self.settings.leeway, time.time()):
            time.sleep(_MARGIN)

    def expires_in(self, token: JWT) -> float | None:
        """Seconds until the access token expires, to a tenth, or ``None`` for no expiry."""
        expires_at = token.tokens.expires_at
        return None if expires_at is None else round(expires_at - time.time(), 1)
