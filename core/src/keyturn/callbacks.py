"""The default ``jwt`` and ``session`` callbacks: the NextAuth refresh-token-rotation guide.

Sign-in stores the tokens; a valid token passes through untouched; a refreshed token replaces
the old ones (keeping the refresh token when the provider sent none, which the parser has
already done); a failed refresh keeps every old token and records the failure, and a
permanent failure sets ``error = "RefreshAccessTokenError"`` so the app sends the user to
sign in again. The session never carries the refresh token.
"""

from __future__ import annotations

from .dispatch import Passthrough
from .errors import ConfigurationError, ProviderError
from .hookspecs import JwtTrigger, hookimpl
from .models import (
    JWT,
    REFRESH_ACCESS_TOKEN_ERROR,
    Profile,
    RefreshFailure,
    Session,
    TokenSet,
)


@hookimpl
def keyturn_jwt(
    token: JWT | None,
    trigger: JwtTrigger,
    tokens: TokenSet | None,
    profile: Profile | None,
    error: ProviderError | None,
    now: int,
) -> JWT:
    if trigger == "signIn":
        if tokens is None:
            raise ConfigurationError("keyturn_jwt: signIn needs tokens")
        return JWT(tokens=tokens, user=profile)
    if token is None:
        raise ConfigurationError(f"keyturn_jwt: {trigger} needs the current token")
    # On "read" the token comes back as it is; the client relies on this and skips the call
    # (see PASSTHROUGH below).
    if trigger == "refresh" and tokens is not None:
        return token.model_copy(update={"tokens": tokens, "error": None, "refresh_failure": None})
    if trigger == "refreshError" and error is not None:
        failure = RefreshFailure(
            error=error.error,
            status=error.status,
            description=error.description,
            details=error.details,
            permanent=error.permanent,
            at=now,
        )
        update: dict[str, object] = {"refresh_failure": failure}
        if error.permanent:
            update["error"] = REFRESH_ACCESS_TOKEN_ERROR
        return token.model_copy(update=update)
    return token


@hookimpl
def keyturn_session(token: JWT) -> Session:
    return Session.from_jwt(token)


#: What keyturn may skip calling: on a ``read``, :func:`keyturn_jwt` returns the token it
#: was given and does nothing else, so a planned call hands the token straight on (to an
#: app's wrapper, say) instead of calling it (see :mod:`keyturn.dispatch`).
PASSTHROUGH = {keyturn_jwt: Passthrough(when="trigger", equals="read", returns="token")}
