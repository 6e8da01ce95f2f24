"""Discord's profile: the web authorization code grant of a Discord application.

Built from Discord's developer documentation (the same sources as
``docs/providers/discord.md``):

* ``/oauth2/authorize``, ``/api/oauth2/token``, ``/api/oauth2/token/revoke`` and
  ``/api/users/@me``; scopes ``identify`` and ``email``; client authentication in Basic or
  the form (access tokens live as the emulator's knob says; Discord's own last 604800 s),
  https://discord.com/developers/docs/topics/oauth2;
* refresh tokens that rotate (the safe reading where sources disagree: the old one dies);
* the user object with ``id``, ``username``, ``global_name``, ``avatar``, and ``email`` with
  ``verified`` only for the ``email`` scope,
  https://discord.com/developers/docs/resources/user#user-object;
* injected token-endpoint faults answered as Discord's rate limit: 429, ``Retry-After`` and
  ``{"message", "retry_after", "global"}``,
  https://discord.com/developers/docs/topics/rate-limits#exceeding-a-rate-limit.

Discord does not document its error texts for the token endpoint; the profile answers with
RFC 6749's codes and says so here.
"""

from __future__ import annotations

from keyturn_emulator.profiles import Behaviour, Failure

__all__ = ["behaviour"]


def behaviour() -> Behaviour:
    """The ``discord`` profile."""
    bad_client = Failure(401, "invalid_client", "Invalid client")
    bad_grant = Failure(400, "invalid_grant", 'Invalid "refresh_token" in request.')
    return Behaviour(
        name="discord",
        display_name="Discord",
        paths={
            "authorize": "/oauth2/authorize",
            "token": "/api/oauth2/token",
            "userinfo": "/api/users/@me",
            "revoke": "/api/oauth2/token/revoke",
        },
        has_issuer=False,
        access_prefix="dc_at_",
        refresh_prefix="dc_rt_",
        rotation="rotate",
        pkce_required=False,
        pkce_methods=frozenset({"S256"}),
        scope_separator=" ",
        token_type="Bearer",
        form_unless_json=False,
        id_tokens=False,
        offline_param=False,
        grant_type_optional=False,
        scope_required=True,
        login_param="login_hint",
        failures={
            "missing_client": bad_client,
            "missing_secret": bad_client,
            "unknown_client": bad_client,
            "bad_secret": bad_client,
            "two_auth_methods": bad_client,
            "unsupported_grant_type": Failure(
                400, "unsupported_grant_type", "Unsupported grant type"
            ),
            "invalid_request": Failure(400, "invalid_request", "Missing parameter"),
            "bad_code": Failure(400, "invalid_grant", 'Invalid "code" in request.'),
            "redirect_mismatch": Failure(
                400, "invalid_grant", 'Invalid "redirect_uri" in request.'
            ),
            "bad_verifier": Failure(400, "invalid_grant", 'Invalid "code_verifier" in request.'),
            "unknown_refresh": bad_grant,
            "dead_refresh": bad_grant,
            "rotated_refresh": bad_grant,
            "reuse_detected": bad_grant,
            "invalid_scope": Failure(400, "invalid_scope", "Invalid scope"),
            "bad_assertion": bad_client,  # Discord takes no client assertions; never answered
        },
        scopes=frozenset({"identify", "email", "guilds", "connections"}),
        user_api="discord",
        fault_answer="rate_limit",
    )
