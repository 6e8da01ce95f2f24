"""The ``gitlab`` profile: GitLab's OAuth 2.0 server (Doorkeeper), as GitLab documents it.

* Endpoints under ``/oauth/`` (``authorize``, ``token``, ``revoke``, ``userinfo``): GitLab,
  "OAuth 2.0 identity provider API" (https://docs.gitlab.com/api/oauth2/) and "GitLab as
  OpenID Connect identity provider"
  (https://docs.gitlab.com/integration/openid_connect_provider/); the key set at
  ``/oauth/discovery/keys``, the route of the doorkeeper-openid_connect gem GitLab runs
  (https://github.com/doorkeeper-gem/doorkeeper-openid_connect).
* Rotation: a refresh "invalidates the existing ``access_token`` and ``refresh_token``" and
  sends new ones (API page), so the old refresh token and the old access token die at once.
* Token responses carry ``created_at``, the issue time in epoch seconds, beside ``expires_in``
  (the API page's example responses; Doorkeeper's ``TokenResponse``,
  https://github.com/doorkeeper-gem/doorkeeper/blob/main/lib/doorkeeper/oauth/token_response.rb).
  Some GitLab versions left ``expires_in`` out
  (https://gitlab.com/gitlab-org/gitlab/-/issues/360729): the emulator's ``omit_expires_in``
  knob does the same, while its tokens still expire after the access-token lifetime.
* Errors with Doorkeeper's statuses: 401 for ``invalid_client``, 400 otherwise, with the
  descriptions of Doorkeeper's ``config/locales/en.yml``
  (https://github.com/doorkeeper-gem/doorkeeper/blob/main/config/locales/en.yml).
* PKCE ``S256`` and ``plain`` accepted, not required (RFC 7636 as Doorkeeper implements it);
  ``bearer`` token type as in the API page's examples; ID tokens signed RS256 when ``openid``
  is granted.

Where GitLab documents nothing (the answer to a wrong PKCE verifier, an unknown scope), the
profile answers as Doorkeeper's locale file words the nearest error.
"""

from __future__ import annotations

from keyturn_emulator.profiles import Behaviour, Failure

__all__ = ["behaviour"]

#: Doorkeeper's descriptions (config/locales/en.yml, cited in the module docstring).
_INVALID_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication "
    "included, or unsupported authentication method."
)
_INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client."
)
_INVALID_REQUEST = (
    "The request is missing a required parameter, includes an unsupported parameter "
    "value, or is otherwise malformed."
)


def behaviour() -> Behaviour:
    """GitLab's profile."""
    invalid_client = Failure(401, "invalid_client", _INVALID_CLIENT)
    invalid_grant = Failure(400, "invalid_grant", _INVALID_GRANT)
    return Behaviour(
        name="gitlab",
        display_name="GitLab",
        paths={
            "authorize": "/oauth/authorize",
            "token": "/oauth/token",
            "userinfo": "/oauth/userinfo",
            "revoke": "/oauth/revoke",
            "jwks": "/oauth/discovery/keys",
        },
        has_issuer=True,
        # The emulator's own markers, so that its tokens can be told apart in tests: GitLab
        # documents no prefix for OAuth tokens (glpat- and glrt- are personal access and
        # runner tokens, https://docs.gitlab.com/security/tokens/).
        access_prefix="gloat_",
        refresh_prefix="glort_",
        rotation="rotate",
        pkce_required=False,
        pkce_methods=frozenset({"S256", "plain"}),
        scope_separator=" ",
        token_type="bearer",
        form_unless_json=False,
        id_tokens=True,
        offline_param=False,
        grant_type_optional=False,
        scope_required=False,
        login_param="login_hint",
        failures={
            "missing_client": invalid_client,
            "missing_secret": invalid_client,
            "unknown_client": invalid_client,
            "bad_secret": invalid_client,
            "two_auth_methods": invalid_client,
            "unsupported_grant_type": Failure(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            ),
            "invalid_request": Failure(400, "invalid_request", _INVALID_REQUEST),
            "bad_code": invalid_grant,
            "redirect_mismatch": invalid_grant,
            "bad_verifier": invalid_grant,
            "unknown_refresh": invalid_grant,
            "dead_refresh": invalid_grant,
            "rotated_refresh": invalid_grant,
            "reuse_detected": invalid_grant,
            "invalid_scope": Failure(
                400,
                "invalid_scope",
                "The requested scope is invalid, unknown, or malformed.",
            ),
            "bad_assertion": invalid_client,  # GitLab takes no client assertions
        },
        rotation_revokes_access=True,
        # The OpenID Connect scopes and the API scopes of "Configure GitLab as an OAuth 2.0
        # authentication identity provider" (https://docs.gitlab.com/integration/oauth_provider/).
        scopes=frozenset(
            {"openid", "profile", "email", "read_user", "read_api", "api", "read_repository"}
        ),
        id_token_algs=("RS256",),
        created_at=True,
    )
