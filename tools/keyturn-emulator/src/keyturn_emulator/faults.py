"""The emulator's knobs, and the dice that decide which token requests fail.

Faults hit the token endpoint only (exchange and refresh), where a client's retry logic
lives:

* ``fault_rate``: that fraction of token requests is answered ``503`` with an HTML body, as a
  load balancer in front of a real provider does. keyturn reads it as a transient
  :class:`~keyturn.InvalidResponseError`. A profile whose ``fault_answer`` is ``rate_limit``
  (Discord) answers these requests ``429`` with ``Retry-After`` and a JSON body instead.
* ``drop_rate``: that fraction has its connection closed in the middle of the response: the
  client sees a network error (:class:`~keyturn.TransportError`). The emulator decides to drop
  a request *before* looking at it, so a dropped refresh is never processed: the refresh token
  is not rotated behind the client's back and stays valid.
* ``lost_answer_rate``: that fraction is processed in full (a code is spent, a refresh token
  rotates, counters move) and then its connection is closed before a single byte of the
  answer is sent. The client sees the same network error as for a drop, but the provider's
  state has changed: this is the case of a real provider whose answer is lost on the way
  back, where the client still holds a refresh token the provider has already spent.
* ``rate_limit_rate``: that fraction is answered ``429`` with a ``Retry-After`` header and
  Auth0's rate-limit headers (``x-ratelimit-limit``, ``x-ratelimit-remaining``,
  ``x-ratelimit-reset``) and a JSON ``too_many_requests`` error, unprocessed: a provider's
  rate limit. keyturn reads it as transient, with the wait on the error's ``retry_after``.
* ``latency``: seconds added to every provider request (an ``asyncio`` sleep, so other
  requests proceed meanwhile).

Beside the token endpoint, the OpenID Connect documents can be served broken, for the
client's tests of bad provider metadata (:mod:`keyturn_emulator.routes.discovery`):

* ``discovery_fault``: the discovery document is ``html`` (a 200 HTML page), ``truncated``
  JSON, names the ``wrong_issuer``, lacks its ``jwks_uri`` (``missing_jwks_uri``), sends the
  token endpoint to another host (``foreign_host``), or is ``huge`` (valid, over 2 MiB);
* ``jwks_fault``: the JWKS is ``html``, ``truncated`` JSON, ``empty`` (no key), has two keys
  under one ``kid`` (``duplicate_kid``), or holds symmetric ``oct`` keys in place of the
  real ones, under their ``kid`` (``oct_keys``), which no verifier may use for RS256 or
  ES256.

``id_token_alg`` picks the algorithm ID tokens are signed with, for every profile that
advertises it; ``discovery_max_age`` and ``jwks_max_age`` are the ``max-age`` of the two
documents' ``Cache-Control`` (``None``: no such header).

Each request draws two numbers from one random generator seeded with ``seed``, so a seeded
run fails the same requests in the same order. The first decides the connection's fate: below
``drop_rate`` a drop, then up to ``drop_rate + lost_answer_rate`` a lost answer (so the two
rates add up to at most 1, and turning lost answers on leaves a seeded run's drops where they
were); the second decides a 503 for the requests left, then up to ``fault_rate +
rate_limit_rate`` a 429.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

__all__ = ["DISCOVERY_FAULTS", "JWKS_FAULTS", "Dice", "Knobs"]

Consent = Literal["auto", "page"]

#: The ways the discovery document can be served broken (the ``discovery_fault`` knob).
DISCOVERY_FAULTS = frozenset(
    {"html", "truncated", "wrong_issuer", "missing_jwks_uri", "foreign_host", "huge"}
)
#: The ways the JWKS can be served broken (the ``jwks_fault`` knob).
JWKS_FAULTS = frozenset({"html", "truncated", "empty", "duplicate_kid", "oct_keys"})


@dataclass(frozen=True)
class Knobs:
    """Run-time settings of the emulator; change them with ``Emulator.configure``.

    :ivar access_token_lifetime: seconds an access token lives (``expires_in``); ``None``
        for tokens that never expire (no ``expires_in``; GitHub then issues no refresh token).
    :ivar refresh_token_lifetime: seconds a refresh token lives, sent as
        ``refresh_token_expires_in``; ``None`` for refresh tokens without expiry.
    :ivar code_lifetime: seconds an authorization code stays usable (GitHub: 10 minutes).
    :ivar fault_rate: fraction of token requests answered 503.
    :ivar drop_rate: fraction of token requests whose connection is closed unprocessed.
    :ivar lost_answer_rate: fraction of token requests processed and then closed without an
        answer; ``drop_rate + lost_answer_rate`` is at most 1.
    :ivar rate_limit_rate: fraction of token requests answered 429 (after the 503s);
        ``fault_rate + rate_limit_rate`` is at most 1.
    :ivar latency: seconds added to every provider request.
    :ivar seed: seed of the fault dice; ``None`` for a random one.
    :ivar consent: ``auto`` approves at once; ``page`` shows an Allow/Deny page.
    :ivar id_token_alg: ``RS256`` or ``ES256``: the algorithm of ID tokens, for every
        profile that advertises it (Google advertises RS256 only); ``None``: each profile's
        own (Google and ``oidc`` RS256, ``strict`` ES256).
    :ivar discovery_max_age: seconds in the discovery document's ``Cache-Control: max-age``;
        ``None`` for no ``Cache-Control``.
    :ivar jwks_max_age: the same for the JWKS.
    :ivar discovery_fault: serve the discovery document broken, one of
        :data:`DISCOVERY_FAULTS`; ``None`` serves it right.
    :ivar jwks_fault: serve the JWKS broken, one of :data:`JWKS_FAULTS`; ``None`` serves it
        right.
    :ivar omit_expires_in: leave ``expires_in`` out of token answers, as some GitLab versions
        did (https://gitlab.com/gitlab-org/gitlab/-/issues/360729); the tokens still expire
        after ``access_token_lifetime``.
    """

    access_token_lifetime: int | None = 3600
    refresh_token_lifetime: int | None = None
    code_lifetime: int = 600
    fault_rate: float = 0.0
    drop_rate: float = 0.0
    lost_answer_rate: float = 0.0
    latency: float = 0.0
    seed: int | None = None
    consent: Consent = "auto"
    id_token_alg: Literal["RS256", "ES256"] | None = None
    discovery_max_age: int | None = 3600
    jwks_max_age: int | None = 3600
    discovery_fault: str | None = None
    jwks_fault: str | None = None
    omit_expires_in: bool = False
    rate_limit_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("fault_rate", "drop_rate", "lost_answer_rate", "rate_limit_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if self.drop_rate + self.lost_answer_rate > 1.0:
            raise ValueError(
                "drop_rate + lost_answer_rate must be at most 1, got "
                f"{self.drop_rate!r} + {self.lost_answer_rate!r}"
            )
        if self.fault_rate + self.rate_limit_rate > 1.0:
            raise ValueError(
                "fault_rate + rate_limit_rate must be at most 1, got "
                f"{self.fault_rate!r} + {self.rate_limit_rate!r}"
            )
        if not 0.0 <= self.latency < math.inf:
            raise ValueError(
                f"latency must be a finite number of seconds, zero or more, got {self.latency!r}"
            )
        for name in ("access_token_lifetime", "refresh_token_lifetime"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be zero or more seconds, or None")
        if self.code_lifetime <= 0:
            raise ValueError("code_lifetime must be positive")
        if self.consent not in ("auto", "page"):
            raise ValueError(f"consent must be 'auto' or 'page', got {self.consent!r}")
        if self.id_token_alg not in (None, "RS256", "ES256"):
            raise ValueError(
                f"id_token_alg must be 'RS256', 'ES256' or None, got {self.id_token_alg!r}"
            )
        for name in ("discovery_max_age", "jwks_max_age"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"{name} must be a whole number of seconds, zero or more, or None")
        if not isinstance(self.omit_expires_in, bool):
            raise ValueError(f"omit_expires_in must be True or False, got {self.omit_expires_in!r}")
        for name, allowed in (("discovery_fault", DISCOVERY_FAULTS), ("jwks_fault", JWKS_FAULTS)):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ValueError(
                    f"{name} must be None or one of {', '.join(sorted(allowed))}; got {value!r}"
                )

    def changed(self, **knobs: Any) -> Knobs:
        """A copy with ``knobs`` changed.

        :raises TypeError: an unknown knob name.
        :raises ValueError: a value out of range.
        """
        unknown = set(knobs) - set(asdict(self))
        if unknown:
            raise TypeError(f"unknown emulator knob(s): {', '.join(sorted(unknown))}")
        return replace(self, **knobs)

    def as_dict(self) -> dict[str, Any]:
        """The knobs as a JSON-ready mapping."""
        return asdict(self)


Verdict = Literal["pass", "fault", "drop", "lose", "limit"]


class Dice:
    """Thread-safe, seedable fault decisions."""

    def __init__(self, seed: int | None) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # noqa: S311 - fault injection, not cryptography

    def reseed(self, seed: int | None) -> None:
        """Start the sequence of decisions again from ``seed``."""
        with self._lock:
            self._random = random.Random(seed)  # noqa: S311

    def roll(self, knobs: Knobs) -> Verdict:
        """The fate of one token request.

        Always draws two numbers, so the sequence of decisions for a seed does not depend on
        which rates are zero.
        """
        with self._lock:
            drop = self._random.random()
            fault = self._random.random()
        if drop < knobs.drop_rate:
            return "drop"
        if drop < knobs.drop_rate + knobs.lost_answer_rate:
            return "lose"
        if fault < knobs.fault_rate:
            return "fault"
        if fault < knobs.fault_rate + knobs.rate_limit_rate:
            return "limit"
        return "pass"
