"""What ``keyturn demo`` reports: timeline events, per-provider summaries, token fingerprints.

Everything here is plain data that serialises to JSON as it is; none of it ever holds a
token. A token is shown by its *fingerprint*, the first 8 hex digits of its SHA-256 (the
same digest the cassette scrubber writes as ``REDACTED-<8 hex>``): enough to see that a
refresh token was kept or rotated, useless to anyone who reads it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import SecretStr

__all__ = ["DemoReport", "Event", "ProviderSummary", "fingerprint"]


def fingerprint(secret: SecretStr | str | None) -> str | None:
    """The first 8 hex digits of the SHA-256 of a token, or ``None`` for no token.

    :param secret: the token, as the models hold it or as text.
    :return: e.g. ``"3f9a02c1"``.
    """
    if secret is None:
        return None
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class Event:
    """One step of the timeline.

    :ivar provider: the provider id the step belongs to.
    :ivar step: what kind of step: ``authorize``, ``sign_in``, ``keys``, ``refresh``,
        ``rotation_check``, ``concurrent``, ``revoke``, ``refresh_refused``, ``no_retry``,
        ``sign_in_again``.
    :ivar at: seconds since the demo started.
    :ivar text: one line saying what happened, for people.
    :ivar requests: HTTP requests the step cost, by endpoint (``authorize``, ``token``,
        ``userinfo``, ``revoke``, ``discovery``, ``jwks``), as the emulator counted them;
        zeros left out.
    :ivar facts: the same in machine-readable form (fingerprints, error codes, counts).
    """

    provider: str
    step: str
    at: float
    text: str
    requests: dict[str, int] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready mapping."""
        return asdict(self)


@dataclass(frozen=True)
class ProviderSummary:
    """The outcome of the whole tour for one provider (every check passed to get here).

    :ivar provider: the provider id.
    :ivar name: its display name.
    :ivar origin: which plugin served it (``keyturn-google 0.1.0``) or keyturn's defaults.
    :ivar sign_in: the first sign-in worked.
    :ivar refreshes: refresh requests the emulator answered with new tokens.
    :ivar rotation: the refresh token changed on refresh.
    :ivar refresh_token_before: fingerprint of the refresh token before the first refresh.
    :ivar refresh_token_after: fingerprint of the refresh token after it.
    :ivar concurrent_callers: callers that asked for the expired token at the same moment.
    :ivar concurrent_refresh_requests: refresh requests those callers caused.
    :ivar same_access_token: every one of those callers got the same new access token.
    :ivar revocation_detected: after the grant was revoked, the refresh failed permanently.
    :ivar error: the session's ``error`` then (``RefreshAccessTokenError``).
    :ivar old_tokens_kept: the failed refresh kept the tokens it had.
    :ivar re_sign_in: signing in again (a new grant) worked.
    :ivar requests: HTTP requests the provider's tour cost in all.
    :ivar elapsed: seconds the provider's tour took.
    :ivar signing_key_rotated: the provider rotated its signing key before the refresh, and
        the refreshed ID token verified with the new key.
    """

    provider: str
    name: str
    origin: str
    sign_in: bool
    refreshes: int
    rotation: bool
    refresh_token_before: str | None
    refresh_token_after: str | None
    concurrent_callers: int
    concurrent_refresh_requests: int
    same_access_token: bool
    revocation_detected: bool
    error: str | None
    old_tokens_kept: bool
    re_sign_in: bool
    requests: int
    elapsed: float
    signing_key_rotated: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready mapping."""
        return asdict(self)


@dataclass
class DemoReport:
    """The whole run: settings, the timeline so far, and a summary per finished provider.

    :ivar settings: the run's settings, JSON-ready.
    :ivar emulator: the emulator's base URL, once it runs.
    :ivar events: the timeline, in order.
    :ivar summaries: one per provider whose tour completed, in order.
    :ivar ok: every check passed.
    :ivar error: the one-line reason when a check failed.
    :ivar elapsed: seconds the run took.
    """

    settings: dict[str, Any]
    emulator: str | None = None
    events: list[Event] = field(default_factory=list)
    summaries: list[ProviderSummary] = field(default_factory=list)
    ok: bool = False
    error: str | None = None
    elapsed: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The report as one JSON-ready mapping; ``summary`` is keyed by provider id."""
        return {
            "ok": self.ok,
            "error": self.error,
            "elapsed": self.elapsed,
            "emulator": self.emulator,
            "settings": dict(self.settings),
            "events": [event.as_dict() for event in self.events],
            "summary": {item.provider: item.as_dict() for item in self.summaries},
        }
