"""The ``apple`` profile: Sign in with Apple as its documentation describes it.

* Paths ``/auth/authorize``, ``/auth/token``, ``/auth/revoke`` and the key set at
  ``/auth/keys``; ID tokens signed RS256 (Apple's discovery document,
  https://appleid.apple.com/.well-known/openid-configuration).
* ``response_mode=form_post``: the authorize endpoint answers with a page that posts ``code``
  and ``state`` to the redirect URI, and on a user's first authorization of the client also
  ``user``, the JSON of the name and email
  (https://developer.apple.com/documentation/signinwithapple/incorporating-sign-in-with-apple-into-other-platforms).
* The client secret is an ES256 JWT signed with a key registered with the emulator (as for
  ``private_key_jwt``: ``Emulator(client_jwks=...)`` or ``register_client_keys``), checked as
  :func:`keyturn_emulator.routes.clients._check_secret_jwt` says
  (https://developer.apple.com/documentation/signinwithapplerestapi/generate-and-validate-tokens).
* Refresh tokens never rotate: a refresh answers an access token and an ID token, no refresh
  token (https://developer.apple.com/forums/thread/123909). Revocation authenticates the
  client (https://developer.apple.com/documentation/signinwithapplerestapi/revoke-tokens).
* Errors at 400 with ``{"error": ...}`` alone: ``invalid_client`` for anything about the
  client, ``invalid_grant`` for codes and refresh tokens, ``invalid_request`` and
  ``unsupported_grant_type`` (https://developer.apple.com/documentation/signinwithapplerestapi/errorresponse).
  Apple sends no ``error_description``; the emulator adds a short one, which names the
  failed check of a client secret.
"""

from __future__ import annotations

from keyturn_emulator.profiles import Behaviour, Failure

__all__ = ["behaviour"]


def behaviour() -> Behaviour:
    """The ``apple`` profile."""
    invalid_client = Failure(400, "invalid_client", "Client authentication failed.")
    invalid_grant = Failure(400, "invalid_grant", "The code or refresh token is invalid.")
    return Behaviour(
        name="apple",
        display_name="Apple",
        paths={
            "authorize": "/auth/authorize",
            "token": "/auth/token",
            "revoke": "/auth/revoke",
            "jwks": "/auth/keys",
        },
        has_issuer=True,
        # Apple documents no token shapes: the emulator's own prefixes, distinct from the
        # other profiles' so that a leaked token is recognised.
        access_prefix="aat_",
        refresh_prefix="art_",
        rotation="none",
        pkce_required=False,
        pkce_methods=frozenset({"S256"}),
        scope_separator=" ",
        token_type="Bearer",
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
                400, "unsupported_grant_type", "The grant type is not supported."
            ),
            "invalid_request": Failure(400, "invalid_request", "A parameter is missing."),
            "bad_code": invalid_grant,
            "redirect_mismatch": invalid_grant,
            "bad_verifier": invalid_grant,
            "unknown_refresh": invalid_grant,
            "dead_refresh": invalid_grant,
            "rotated_refresh": invalid_grant,
            "reuse_detected": invalid_grant,
            "invalid_scope": Failure(400, "invalid_scope", "The requested scope is invalid."),
            "bad_assertion": invalid_client,
        },
        single_auth_method=True,  # revocation authenticates the client too
        scopes=frozenset({"openid", "name", "email"}),
        id_token_algs=("RS256",),
        client_auth_methods=frozenset({"client_secret_post"}),
        form_post=True,
        user_field=True,
        secret_jwt_audience="https://appleid.apple.com",
    )
