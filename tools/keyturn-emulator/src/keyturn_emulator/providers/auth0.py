"""The ``auth0`` profile: an Auth0 tenant with refresh-token rotation.

Paths are Auth0's (``/authorize``, ``/oauth/token``, ``/userinfo``, ``/oauth/revoke``,
``/.well-known/jwks.json``, ``/oidc/logout``), the profile's issuer standing for the tenant's
``https://<domain>/``
(https://auth0.com/docs/get-started/applications/configure-applications-with-oidc-discovery).
What it does, and where Auth0 says so:

* A refresh token only for ``offline_access``
  (https://auth0.com/docs/secure/tokens/refresh-tokens/get-refresh-tokens).
* Rotation with reuse detection and a reuse interval: "During the leeway window the breach
  detection features don't apply and a new rotating refresh token is issued. Only the
  previous token can be reused; if the second-to-last one is exchanged, breach detection will
  be triggered"
  (https://auth0.com/docs/secure/tokens/refresh-tokens/configure-refresh-token-rotation). The
  interval is 0 unless the application sets one (``refresh_token.leeway``, default 0:
  https://auth0.com/docs/api/management/v2/clients/patch-clients-by-id); this profile uses
  10 seconds so that the window can be shown, and a test sets its own with
  :func:`dataclasses.replace` where it needs another.
* A dead, unknown, reused or rotated refresh token: **403** ``invalid_grant`` "Unknown or
  invalid refresh token." (quoted in https://github.com/auth0/Auth0.swift/issues/819 and
  https://github.com/auth0/nextjs-auth0/issues/498); a bad code 403 ``invalid_grant`` too.
* A wrong client secret: 401 ``access_denied`` "Unauthorized" (Auth0's answer as commonly
  reported; not on a documentation page). The descriptions of the other refusals are the
  emulator's wording.
* Rate limits: the ``rate_limit_rate`` knob answers 429 with ``Retry-After`` and the
  ``x-ratelimit-*`` headers Auth0 documents (:mod:`keyturn_emulator.faults`).
"""

from __future__ import annotations

from keyturn_emulator.profiles import CLIENT_SECRET_METHODS, Behaviour, Failure

__all__ = ["REUSE_GRACE", "behaviour"]

#: The reuse interval of the profile, in seconds.
REUSE_GRACE = 10
#: Auth0's answer to a refresh token it does not accept, whatever the reason.
DEAD_REFRESH = Failure(403, "invalid_grant", "Unknown or invalid refresh token.")


def behaviour() -> Behaviour:
    """The ``auth0`` profile."""
    unauthorized = Failure(401, "access_denied", "Unauthorized")
    return Behaviour(
        name="auth0",
        display_name="Auth0",
        paths={
            "authorize": "/authorize",
            "token": "/oauth/token",
            "userinfo": "/userinfo",
            "revoke": "/oauth/revoke",
            "jwks": "/.well-known/jwks.json",
            "end_session": "/oidc/logout",
        },
        has_issuer=True,
        access_prefix="auth0-at-",
        refresh_prefix="v1.",
        rotation="detect_reuse",
        reuse_grace=REUSE_GRACE,
        offline_scope="offline_access",
        pkce_required=False,
        pkce_methods=frozenset({"S256", "plain"}),
        scope_separator=" ",
        token_type="Bearer",
        form_unless_json=False,
        id_tokens=True,
        offline_param=False,
        grant_type_optional=False,
        scope_required=False,
        login_param="login_hint",
        failures={
            "missing_client": unauthorized,
            "missing_secret": unauthorized,
            "unknown_client": unauthorized,
            "bad_secret": unauthorized,
            "two_auth_methods": Failure(
                400, "invalid_request", "Use one client authentication method per request."
            ),
            "unsupported_grant_type": Failure(
                403, "unauthorized_client", "Grant type not allowed for the client."
            ),
            "invalid_request": Failure(400, "invalid_request", "A required parameter is missing."),
            "bad_code": Failure(403, "invalid_grant", "Invalid authorization code"),
            "redirect_mismatch": Failure(
                403, "invalid_grant", "Invalid redirect_uri for this authorization code."
            ),
            "bad_verifier": Failure(403, "invalid_grant", "Failed to verify code verifier"),
            "unknown_refresh": DEAD_REFRESH,
            "dead_refresh": DEAD_REFRESH,
            "rotated_refresh": DEAD_REFRESH,
            "reuse_detected": DEAD_REFRESH,
            "invalid_scope": Failure(403, "invalid_scope", "The requested scope is not allowed."),
            "bad_assertion": unauthorized,
        },
        single_auth_method=True,
        scopes=None,
        id_token_algs=("RS256",),
        client_auth_methods=CLIENT_SECRET_METHODS,
        sessions=True,
    )
