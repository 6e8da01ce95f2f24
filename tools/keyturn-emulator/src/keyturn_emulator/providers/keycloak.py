"""Keycloak's profile: a realm with Keycloak's defaults.

Built from Keycloak's documentation and answers quoted in its issue tracker (the same sources
as ``docs/providers/keycloak.md``):

* endpoints below ``/protocol/openid-connect/`` (``auth``, ``token``, ``userinfo``,
  ``revoke``, ``logout``, ``certs``), https://www.keycloak.org/securing-apps/oidc-layers;
* a new refresh token on every refresh while the old one stays usable: "Revoke Refresh Token"
  is off by default (``keep_old``),
  https://www.keycloak.org/docs/latest/server_admin/index.html#_timeouts;
* the refresh token's lifetime as ``refresh_expires_in``, 1800 s ("SSO Session Idle") unless
  the ``refresh_token_lifetime`` knob says otherwise; offline tokens (``offline_access``)
  report ``refresh_expires_in: 0`` and have no fixed expiry,
  https://github.com/keycloak/keycloak/issues/8919;
* refusals as Keycloak words them: 400 ``invalid_grant`` with "Token is not active" for a dead
  refresh token, "Stale token" for a retired one, "Code not valid" for a bad code,
  https://github.com/keycloak/keycloak/issues/48063,
  https://qiita.com/KWS_0901/items/729e1d36bea81c5e3b92 and Keycloak's ``TokenManager``,
  https://github.com/keycloak/keycloak/blob/main/services/src/main/java/org/keycloak/protocol/oidc/TokenManager.java;
* ID tokens signed RS256, SSO sessions with RP-Initiated Logout.

Where Keycloak's wording is not published (a wrong PKCE verifier, a missing parameter), the
profile uses Keycloak-like text and says so here.
"""

from __future__ import annotations

from keyturn_emulator.profiles import CLIENT_SECRET_METHODS, JWT_METHODS, Behaviour, Failure

__all__ = ["behaviour"]


def behaviour() -> Behaviour:
    """The ``keycloak`` profile."""
    bad_client = Failure(401, "invalid_client", "Invalid client or Invalid client credentials")
    not_active = Failure(400, "invalid_grant", "Token is not active")
    return Behaviour(
        name="keycloak",
        display_name="Keycloak",
        paths={
            "authorize": "/protocol/openid-connect/auth",
            "token": "/protocol/openid-connect/token",
            "userinfo": "/protocol/openid-connect/userinfo",
            "revoke": "/protocol/openid-connect/revoke",
            "jwks": "/protocol/openid-connect/certs",
            "end_session": "/protocol/openid-connect/logout",
        },
        has_issuer=True,
        access_prefix="kc_at_",
        refresh_prefix="kc_rt_",
        rotation="keep_old",
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
            "missing_client": bad_client,
            "missing_secret": Failure(
                401, "unauthorized_client", "Client secret not provided in request"
            ),
            "unknown_client": bad_client,
            "bad_secret": bad_client,
            "two_auth_methods": bad_client,
            "unsupported_grant_type": Failure(
                400, "unsupported_grant_type", "Unsupported grant_type"
            ),
            # Keycloak-like wording, not a quoted answer.
            "invalid_request": Failure(400, "invalid_request", "Missing form parameter"),
            "bad_code": Failure(400, "invalid_grant", "Code not valid"),
            "redirect_mismatch": Failure(400, "invalid_grant", "Incorrect redirect_uri"),
            # Keycloak-like wording, not a quoted answer.
            "bad_verifier": Failure(400, "invalid_grant", "PKCE verification failed"),
            "unknown_refresh": Failure(400, "invalid_grant", "Invalid refresh token"),
            "dead_refresh": not_active,
            # Only with "Revoke Refresh Token" on; this profile keeps old tokens.
            "rotated_refresh": Failure(400, "invalid_grant", "Stale token"),
            "reuse_detected": Failure(400, "invalid_grant", "Stale token"),
            "invalid_scope": Failure(400, "invalid_scope", "Invalid scopes"),
            "bad_assertion": bad_client,
        },
        scopes=frozenset({"openid", "email", "profile", "offline_access", "roles"}),
        id_token_algs=("RS256",),
        client_auth_methods=CLIENT_SECRET_METHODS | JWT_METHODS,
        sessions=True,
        refresh_expires_field="refresh_expires_in",
        refresh_lifetime_default=1800,
        offline_token_scope="offline_access",
    )
