"""Step 1 (and the last): sign in through the real authorize URL and check the session."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from keyturn.models import JWT
from keyturn_emulator.demo.report import fingerprint
from keyturn_emulator.demo.steps.keys import verified_kid
from keyturn_emulator.demo.tour import Tour

__all__ = ["REDIRECT_URI", "sign_in"]

#: The app's callback. The emulator accepts any loopback redirect URI; nothing listens here,
#: since the played browser stops at the redirect and hands its query to ``sign_in()``.
REDIRECT_URI = "http://127.0.0.1:8000/auth/callback"

#: Authorize parameters shown by value; the rest are shown by name only.
_SHOWN_PARAMS = ("scope", "response_mode", "access_type", "prompt", "code_challenge_method")
#: Authorize parameters that change on every sign-in; named, never shown.
_UNSHOWN_PARAMS = ("state", "nonce", "code_challenge")


def _authorize_facts(url: str) -> dict[str, Any]:
    """What the authorize URL asks for, with state, nonce and challenge named, not shown."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return {
        "endpoint": f"{parts.scheme}://{parts.netloc}{parts.path}",
        "params": {name: query[name] for name in _SHOWN_PARAMS if name in query},
        "hidden": [name for name in _UNSHOWN_PARAMS if name in query],
    }


def sign_in(tour: Tour, *, again: bool = False) -> JWT:
    """Authorize (the browser played), then ``sign_in()``; checks the session.

    :param tour: the provider's tour.
    :param again: this is the sign-in after revocation (a new grant).
    :return: the signed-in token.
    :raises DemoFailure: no code, no refresh token, no profile, or an unusable session.
    """
    step = "sign_in_again" if again else "sign_in"
    with tour.step("authorize"):
        request = tour.kt.authorize_url(tour.provider, REDIRECT_URI)
        callback = tour.emu.authorize(request.url)
    if "code" not in callback:
        raise tour.fail("authorize", f"the callback carries no code ({callback.get('error')})")
    facts = _authorize_facts(request.url)
    shown = "&".join(f"{name}={value}" for name, value in facts["params"].items())
    tour.record(
        "authorize",
        f"GET {facts['endpoint']}?{shown} (and {', '.join(facts['hidden'])}) -> the "
        "browser comes back to the app's callback with a code",
        again=again,
        **facts,
    )
    with tour.step(step):
        token = tour.kt.sign_in(request, callback)
        session = tour.kt.session(token)
    tokens = token.tokens
    if tokens.refresh_token is None:
        raise tour.fail(step, "the provider issued no refresh token")
    if token.user is None or session.user is None:
        raise tour.fail(step, "no profile came back with the sign-in")
    if session.error is not None or session.access_token is None:
        raise tour.fail(step, f"the new session is not usable (error {session.error})")
    user = session.user
    who = f"{user.name} <{user.email}>" if user.name else str(user.email or user.id)
    access = fingerprint(session.access_token)
    refresh = fingerprint(tokens.refresh_token)
    expires_in = tour.expires_in(token)
    lead = "signed in again with a new grant" if again else "signed in"
    kid = verified_kid(tour, tokens)
    verified = f", ID token verified with key {kid}" if kid is not None else ""
    pkce = " with PKCE" if "code_challenge" in facts["hidden"] else ""
    tour.record(
        step,
        f"{who} {lead}: state checked, code exchanged{pkce}{verified}, profile read; "
        f"session: access token {access}, expires in {expires_in} s; refresh token {refresh}",
        user={"id": user.id, "name": user.name, "email": user.email},
        access_token=access,
        refresh_token=refresh,
        id_token=tokens.id_token is not None,
        id_token_kid=kid,
        expires_at=session.expires_at,
        expires_in=expires_in,
        error=session.error,
    )
    return token
