"""The ``okta`` profile: an Okta custom authorization server with refresh-token rotation.

Paths are those below a custom authorization server (``/v1/authorize``, ``/v1/token``,
``/v1/userinfo``, ``/v1/revoke``, ``/v1/keys``, ``/v1/logout``), the profile's issuer standing
for ``https://<domain>/oauth2/<server>`` (the ``CustomASOidcMetadata`` example of
https://developer.okta.com/docs/api/openapi/okta-oauth/oauth/customas/getwellknownopenidconfigurationcustomas).
What it does, and where Okta says so:

* A refresh token only for ``offline_access``
  (https://developer.okta.com/docs/guides/refresh-tokens/main/).
* Rotation with reuse detection and a 30-second grace period, Okta's default "leeway"
  (https://developer.okta.com/docs/guides/refresh-tokens/refresh-token-rotation/: "After the
  refresh token is rotated, the previous token remains valid for the configured amount of
  time"; reuse after it "immediately invalidates the most recently issued refresh token and
  all access tokens issued since the user authenticated"). Within the grace period the old
  token gets new tokens, as a fresh refresh does; the page does not say whether the same ones
  come back, and the emulator's choice is new ones.
* A dead, unknown, reused or rotated refresh token: 400 ``invalid_grant`` "The refresh token
  is invalid or expired." (quoted in https://github.com/okta/okta-react-native/issues/287).
* Client authentication fails with 401 ``invalid_client`` (RFC 6749 §5.2); PKCE ``S256``
  only, as the metadata lists. The descriptions of the other refusals are the emulator's
  wording: Okta documents the codes, not each sentence.
"""

from __future__ import annotations

from keyturn_emulator.profiles import CLIENT_SECRET_METHODS, JWT_METHODS, Behaviour, Failure

__all__ = ["behaviour"]

#: Okta's answer to a refresh token it does not accept, whatever the reason.
DEAD_REFRESH = Failure(400, "invalid_grant", "The refresh token is invalid or expired.")


def behaviour() -> Behaviour:
    """The ``okta`` profile."""
    invalid_client = Failure(
        401,
        "invalid_client",
        "Client authentication failed. Either the client or the client credentials are invalid.",
    )
    return Behaviour(
        name="okta",
        display_name="Okta",
        paths={
            "authorize": "/v1/authorize",
            "token": "/v1/token",
            "userinfo": "/v1/userinfo",
            "revoke": "/v1/revoke",
            "jwks": "/v1/keys",
            "end_session": "/v1/logout",
        },
        has_issuer=True,
        access_prefix="okta-at-",
        refresh_prefix="okta-rt-",
        rotation="detect_reuse",
        reuse_grace=30,
        offline_scope="offline_access",
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
            "missing_client": invalid_client,
            "missing_secret": invalid_client,
            "unknown_client": invalid_client,
            "bad_secret": invalid_client,
            "two_auth_methods": Failure(
                400,
                "invalid_request",
                "Cannot supply multiple client credentials. Use one of the following: "
                "credentials in the Authorization header, credentials in the post body, or a "
                "client_assertion in the post body.",
            ),
            "unsupported_grant_type": Failure(
                400, "unsupported_grant_type", "The grant type is not supported."
            ),
            "invalid_request": Failure(400, "invalid_request", "A required parameter is missing."),
            "bad_code": Failure(
                400, "invalid_grant", "The authorization code is invalid or has expired."
            ),
            "redirect_mismatch": Failure(
                400,
                "invalid_grant",
                "The 'redirect_uri' does not match the redirection URI used in the "
                "authorization request.",
            ),
            "bad_verifier": Failure(400, "invalid_grant", "PKCE verification failed."),
            "unknown_refresh": DEAD_REFRESH,
            "dead_refresh": DEAD_REFRESH,
            "rotated_refresh": DEAD_REFRESH,
            "reuse_detected": DEAD_REFRESH,
            "invalid_scope": Failure(
                400, "invalid_scope", "One or more scopes are not configured for the server."
            ),
            "bad_assertion": invalid_client,
        },
        single_auth_method=True,
        scopes=frozenset(
            {"openid", "profile", "email", "offline_access", "address", "phone", "groups"}
        ),
        id_token_algs=("RS256",),
        client_auth_methods=CLIENT_SECRET_METHODS | JWT_METHODS,
        sessions=True,
    )
