"""Slack: Sign in with Slack (OpenID Connect) with token rotation, errors as ``ok: false``.

* Paths as on ``slack.com``: ``/openid/connect/authorize``, ``/api/openid.connect.token``,
  ``/api/openid.connect.userInfo``, ``/api/auth.revoke``, keys at ``/openid/connect/keys``
  (Sign in with Slack and its discovery document,
  https://docs.slack.dev/authentication/sign-in-with-slack/).
* Every answer is Slack's envelope: ``"ok": true`` on success, HTTP 200 and
  ``{"ok": false, "error": ...}`` on failure ("Callers should always check the value of the
  ok params in the response", https://docs.slack.dev/reference/methods/openid.connect.token).
  The codes: ``invalid_code``, ``bad_client_secret``, ``invalid_client_id``,
  ``bad_redirect_uri``, ``invalid_grant_type`` (the error table of ``oauth.v2.access``,
  https://docs.slack.dev/reference/methods/oauth.v2.access), ``invalid_refresh_token`` (as
  ``tooling.tokens.rotate`` names a bad refresh token,
  https://docs.slack.dev/reference/methods/tooling.tokens.rotate). Where Slack documents no
  code (a wrong PKCE verifier, an unknown scope), the emulator answers ``invalid_code`` and
  ``invalid_scope``: its choice.
* Token rotation: each refresh returns a new refresh token and the old one is revoked, and
  access tokens live 12 hours (43200 s) while the lifetime knob is at its default
  (https://docs.slack.dev/authentication/using-token-rotation). With the knob at ``None``
  (tokens that never expire) no refresh token is issued, as for an app without token
  rotation. The old access token stays usable until it expires: Slack does not say
  otherwise.
* ID tokens RS256 when ``openid`` is granted; scopes ``openid``, ``email``, ``profile``; client
  authentication by ``client_secret_post`` or ``client_secret_basic`` (the discovery
  document); PKCE ``S256`` accepted, not required (``openid.connect.token`` takes a
  ``code_verifier``).
"""

from __future__ import annotations

from keyturn_emulator.profiles import Behaviour, Failure

__all__ = ["behaviour"]


def _refusal(error: str, description: str) -> Failure:
    return Failure(200, error, description, envelope=True)


def behaviour() -> Behaviour:
    """The ``slack`` profile."""
    bad_client = _refusal("invalid_client_id", "Value passed for client_id was invalid.")
    bad_secret = _refusal("bad_client_secret", "Value passed for client_secret was invalid.")
    bad_code = _refusal("invalid_code", "Value passed for code was invalid.")
    bad_refresh = _refusal("invalid_refresh_token", "The given refresh token is invalid.")
    bad_arguments = _refusal("invalid_arguments", "The method was called with invalid arguments.")
    return Behaviour(
        name="slack",
        display_name="Slack",
        paths={
            "authorize": "/openid/connect/authorize",
            "token": "/api/openid.connect.token",
            "userinfo": "/api/openid.connect.userInfo",
            "revoke": "/api/auth.revoke",
            "jwks": "/openid/connect/keys",
        },
        has_issuer=True,
        # Slack's token shapes: "xoxp-...", rotated ones "xoxe.xoxp-...", refresh "xoxe-1-..."
        # (the examples of https://docs.slack.dev/reference/methods/openid.connect.token and
        # https://docs.slack.dev/reference/methods/tooling.tokens.rotate).
        access_prefix="xoxe.xoxp-1-",
        refresh_prefix="xoxe-1-",
        rotation="rotate",
        pkce_required=False,
        pkce_methods=frozenset({"S256"}),
        scope_separator=" ",
        token_type="Bearer",
        form_unless_json=False,
        id_tokens=True,
        offline_param=False,
        grant_type_optional=False,
        scope_required=True,
        login_param="login_hint",
        failures={
            "missing_client": bad_client,
            "missing_secret": bad_secret,
            "unknown_client": bad_client,
            "bad_secret": bad_secret,
            "two_auth_methods": bad_arguments,  # never answered: single_auth_method is off
            "unsupported_grant_type": _refusal(
                "invalid_grant_type", "Value passed for grant_type was invalid."
            ),
            "invalid_request": bad_arguments,
            "bad_code": bad_code,
            "redirect_mismatch": _refusal(
                "bad_redirect_uri", "The redirect_uri does not match the authorize request's."
            ),
            "bad_verifier": bad_code,
            "unknown_refresh": bad_refresh,
            "dead_refresh": bad_refresh,
            "rotated_refresh": bad_refresh,
            "reuse_detected": bad_refresh,
            "invalid_scope": _refusal("invalid_scope", "A requested scope is not allowed."),
            "bad_assertion": bad_secret,  # Slack takes no client assertions; never answered
        },
        refresh_needs_expiry=True,
        scopes=frozenset({"openid", "email", "profile"}),
        id_token_algs=("RS256",),
        envelope=True,
        access_token_lifetime=43200,
    )
