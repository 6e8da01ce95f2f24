"""How each emulated provider behaves: paths, token shapes, rotation and error answers.

Four profiles, each one a :class:`Behaviour` (plain data; the server reads it):

* ``google``: Google's web-server flow. Errors at 400/401 with JSON bodies (responses
  reported in public issues, listed with the failures below in ``docs/providers/google.md``),
  refresh tokens that never rotate (the refresh sample of the web-server page has no
  ``refresh_token``), a refresh token only for ``access_type=offline`` on a first or
  ``prompt=consent`` authorization (the web-server page; the Google Health codelab),
  ``ya29.`` / ``1//`` token prefixes (the codelab's sample response), space-separated scope,
  ``Bearer``, an ID token when ``openid`` is asked for, revocation as a POST of ``token=...``
  (the web-server page, "Revoking a token"). The pages:

  - Google Identity, "Using OAuth 2.0 for Web Server Applications",
    https://developers.google.com/identity/protocols/oauth2/web-server
  - Google Health API codelab, "Make your first Google Health API call",
    https://developers.google.com/health/codelabs/make-your-first-api-call

* ``github``: GitHub's OAuth and GitHub App flow. Every token-endpoint error at HTTP 200
  (https://github.com/octokit/auth-oauth-app.js/issues/13); form-encoded answers unless
  ``Accept: application/json``, comma-separated scope and lower-case ``bearer`` ("Authorizing
  OAuth apps"); rotation where the old refresh token and the old access token die at once
  ("Refreshing user access tokens"); ``ghu_`` / ``ghr_`` prefixes (the changelog entry on
  token formats); revocation as a ``DELETE`` with Basic auth and a JSON body answering 204
  ("Delete an app authorization"). The pages:

  - https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps
  - https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens
  - https://github.blog/changelog/2021-03-31-authentication-token-format-updates-are-generally-available
  - https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-authorization

* ``strict``: plain RFC 6749 / 7009 / 7636 with the strictest common choices: PKCE ``S256``
  required, one client authentication method per request, and refresh-token rotation with
  reuse detection as Auth0 and Okta do it: presenting an already-rotated refresh token
  revokes the whole token family and answers 400 ``invalid_grant``. Its ID tokens are signed
  with ES256 unless told otherwise (it advertises RS256 too), so that the default profiles
  exercise both algorithms; ES256 is also the cheaper signature, which counts in load tests
  that refresh thousands of tokens against this profile.

* ``oidc``: a plain OpenID Provider that follows the standards and nothing else: the code flow
  with PKCE ``S256`` required, ``iss`` on every redirect (RFC 9207), refresh tokens that rotate
  (the old one dies, without reuse detection), an ID token at sign-in and on every refresh,
  userinfo, RFC 7009 revocation, RP-Initiated Logout at its ``end_session_endpoint``, a
  session per user at the provider (``prompt=none`` answers ``login_required`` once it has
  ended), and client authentication by ``client_secret_basic``, ``client_secret_post``,
  ``private_key_jwt`` and ``client_secret_jwt`` (one method per request). It signs with RS256
  by default and advertises ES256 too. The specifications:

  - OpenID Connect Core 1.0, https://openid.net/specs/openid-connect-core-1_0.html
  - OpenID Connect Discovery 1.0,
    https://openid.net/specs/openid-connect-discovery-1_0.html
  - OpenID Connect RP-Initiated Logout 1.0,
    https://openid.net/specs/openid-connect-rpinitiated-1_0.html
  - RFC 7523 (JWT client authentication), https://www.rfc-editor.org/rfc/rfc7523
  - RFC 7517 (JSON Web Key), https://www.rfc-editor.org/rfc/rfc7517
  - RFC 9207 (``iss`` on the authorization response), https://www.rfc-editor.org/rfc/rfc9207

Every profile with an issuer serves a discovery document at
``<issuer>/.well-known/openid-configuration``, and every profile that issues ID tokens a
JWKS (:mod:`keyturn_emulator.routes.discovery`); ID tokens are signed with the server's keys
(:mod:`keyturn_emulator.keys`).

Where the providers' documentation is silent (GitHub's answer to a wrong PKCE verifier,
Google's scope checks), the emulator makes a choice and says so next to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "CLIENT_SECRET_METHODS",
    "JWT_METHODS",
    "PROFILES",
    "Algorithm",
    "Behaviour",
    "Failure",
    "Rotation",
]

#: ``none``: the refresh token stays valid and is not re-sent; ``rotate``: each refresh
#: returns a new one and the old one dies; ``keep_old``: each refresh returns a new one and
#: the old one stays valid (Microsoft; Keycloak's default); ``detect_reuse``: ``rotate``, and
#: presenting a dead rotated token revokes every token of its grant.
Rotation = Literal["none", "rotate", "keep_old", "detect_reuse"]

#: The JWS algorithms the emulator signs ID tokens with: RS256 (RSA 2048) and ES256 (P-256).
Algorithm = Literal["RS256", "ES256"]

#: Client authentication with the secret itself (RFC 6749 §2.3.1).
CLIENT_SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
#: Client authentication with a signed JWT (RFC 7523 §2.2, OpenID Connect Core §9).
JWT_METHODS = frozenset({"private_key_jwt", "client_secret_jwt"})


@dataclass(frozen=True)
class Failure:
    """One refusal as a profile answers it.

    :ivar status: the HTTP status.
    :ivar error: the OAuth ``error`` code.
    :ivar description: the ``error_description``.
    :ivar error_uri: the ``error_uri``, where the provider sends one.
    :ivar envelope: answer as Slack's Web API does, ``{"ok": false, "error": ...}`` without a
        description (https://docs.slack.dev/reference/methods/openid.connect.token);
        ``description`` then only documents the refusal.
    """

    status: int
    error: str
    description: str
    error_uri: str | None = None
    envelope: bool = False

    def body(self) -> dict[str, Any]:
        """The error as a mapping, ready to encode."""
        if self.envelope:
            return {"ok": False, "error": self.error}
        data: dict[str, Any] = {"error": self.error, "error_description": self.description}
        if self.error_uri is not None:
            data["error_uri"] = self.error_uri
        return data


#: The situations a token or revocation request can be refused for. Every profile maps each.
SITUATIONS = (
    "missing_client",  # no client_id at all
    "missing_secret",  # client_id but no secret
    "unknown_client",  # client_id not registered
    "bad_secret",  # wrong secret
    "two_auth_methods",  # Basic and body credentials together
    "unsupported_grant_type",
    "invalid_request",  # a required parameter is missing
    "bad_code",  # unknown, used, expired or another client's code
    "redirect_mismatch",  # redirect_uri differs from the authorize request's
    "bad_verifier",  # PKCE verifier missing or wrong
    "unknown_refresh",  # a refresh token the provider never issued
    "dead_refresh",  # expired, revoked, or its grant revoked
    "rotated_refresh",  # already exchanged for a new one (profiles that rotate)
    "reuse_detected",  # strict: a rotated token came back; the family is now revoked
    "invalid_scope",
    "bad_assertion",  # a client assertion (RFC 7523) that fails a check; the answer names it
)


@dataclass(frozen=True)
class Behaviour:
    """Everything that differs between emulated providers.

    :ivar name: the profile name, also the first path segment of its endpoints.
    :ivar paths: endpoint paths below the profile's prefix: ``authorize``, ``token``,
        ``userinfo``, ``revoke``; ``jwks`` for profiles that issue ID tokens (their public
        keys, RFC 7517); ``end_session`` where the profile has RP-Initiated Logout
        (https://openid.net/specs/openid-connect-rpinitiated-1_0.html); and, for GitHub,
        ``emails`` and ``revoke_token``. The discovery document's path is not among them: it is
        ``/.well-known/openid-configuration`` below the issuer, as OpenID Connect Discovery
        §4 fixes it (https://openid.net/specs/openid-connect-discovery-1_0.html).
    :ivar has_issuer: whether it has an issuer URL (``iss`` on the callback, RFC 9207), and
        with it a discovery document.
    :ivar access_prefix: prefix of access tokens.
    :ivar refresh_prefix: prefix of refresh tokens.
    :ivar rotation: see :data:`Rotation`.
    :ivar pkce_required: refuse authorize requests without ``code_challenge``.
    :ivar pkce_methods: accepted ``code_challenge_method`` values.
    :ivar scope_separator: how ``scope`` is joined in token responses.
    :ivar token_type: ``token_type`` in token responses.
    :ivar form_unless_json: answer form-encoded unless the request accepts JSON (GitHub).
    :ivar id_tokens: send an ID token when ``openid`` is among the scopes.
    :ivar offline_param: a refresh token only when the authorize request carried
        ``access_type=offline`` (Google).
    :ivar grant_type_optional: a token request with a ``code`` and no ``grant_type`` is a
        code exchange (GitHub's documented exchange sends no ``grant_type``).
    :ivar scope_required: refuse authorize requests without ``scope``.
    :ivar failures: the answer to each situation in :data:`SITUATIONS`.
    :ivar login_param: the authorize parameter that picks the user (``login_hint``/``login``).
    :ivar response_type_required: refuse authorize requests without ``response_type=code``
        (GitHub's authorize parameters have no ``response_type``: "Authorizing OAuth apps",
        https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps).
    :ivar single_auth_method: refuse requests that authenticate the client two ways (RFC 6749
        §2.3); such profiles also authenticate the client at revocation and answer it as
        RFC 7009 §2.1 does (an access token alone is revoked, an unknown token is a 200).
    :ivar code_prefix: prefix of authorization codes.
    :ivar refresh_needs_expiry: no refresh token when access tokens never expire (GitHub: "If
        you disabled expiration of user access tokens, this parameter will be omitted",
        https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app).
    :ivar rotation_revokes_access: a rotation also kills the grant's older access tokens.
    :ivar scopes: the scopes the profile knows, or ``None`` to accept any.
    :ivar scope_prefixes: prefixes of further accepted scopes (Google's API scope URLs).
    :ivar id_token_algs: the JWS algorithms its ID tokens may be signed with, as its discovery
        document advertises them (``id_token_signing_alg_values_supported``); the first is
        the one it signs with unless the ``id_token_alg`` knob names another of them
        (OpenID Connect Core §3.1.3.7 and §10.1,
        https://openid.net/specs/openid-connect-core-1_0.html).
    :ivar client_auth_methods: how clients may authenticate at the token endpoint (and at
        revocation, for profiles that authenticate there): ``client_secret_basic``,
        ``client_secret_post``, and for JWT assertions ``private_key_jwt`` and
        ``client_secret_jwt`` (RFC 7523 §2.2, https://www.rfc-editor.org/rfc/rfc7523, and
        OpenID Connect Core §9).
    :ivar form_post: ``response_mode=form_post`` is honoured: the authorize endpoint answers
        with a page whose form posts the response to the redirect URI (OAuth 2.0 Form Post
        Response Mode, https://openid.net/specs/oauth-v2-form-post-response-mode-1_0.html).
    :ivar user_field: with ``form_post``, the first authorization of a user for the client
        also posts ``user``, the JSON of the user's name and email, as Apple does.
    :ivar secret_jwt_audience: the client secret is a JWT the client signs (Apple): ES256
        with a registered key (its ``kid``), ``sub`` the client id, ``iss`` a team id,
        ``aud`` this value or the profile's issuer, ``exp`` in the future and at most
        :data:`keyturn_emulator.routes.clients.SECRET_JWT_MAX_LIFETIME` after ``iat``.
    :ivar sessions: the provider keeps a session per user: ID tokens carry ``sid`` and
        ``auth_time``, ``prompt=none`` without a session answers ``login_required``
        (OpenID Connect Core §3.1.2.6), and logging out at ``end_session`` ends it.
    :ivar created_at: token answers carry ``created_at``, the issue time in epoch seconds
        (GitLab's Doorkeeper).
    :ivar id_token_claims: claims every ID token of the profile carries besides the standard
        ones (Microsoft's ``tid`` and ``ver``).
    :ivar offline_scope: a refresh token only when the grant's scopes include this one
        (Microsoft's ``offline_access``); ``None``: no such rule.
    :ivar envelope: successes carry ``"ok": true`` (token, userinfo and revocation answers),
        and a missing or dead access token at userinfo or revocation is an HTTP 200
        ``{"ok": false, "error": "invalid_auth"}``, as Slack's Web API answers; pair it with
        failures made with ``envelope=True``.
    :ivar access_token_lifetime: the provider's own access-token lifetime, used while the
        ``access_token_lifetime`` knob is at its default (3600); a lifetime set with
        ``configure`` wins.
    :ivar reuse_grace: with ``detect_reuse``, seconds after its rotation during which the
        refresh token rotated last in a grant is still exchanged (for new tokens) rather
        than taken as reuse: Okta's grace period, Auth0's reuse interval. 0: none.
    :ivar refresh_expires_field: the token answer's name for the refresh token's lifetime:
        ``refresh_token_expires_in`` (GitHub) or Keycloak's ``refresh_expires_in``.
    :ivar refresh_lifetime_default: seconds a refresh token lives when the
        ``refresh_token_lifetime`` knob gives none (Keycloak's "SSO Session Idle", 1800);
        ``None``: no expiry.
    :ivar offline_token_scope: the scope whose refresh tokens are offline tokens: no fixed expiry,
        reported as a lifetime of 0 (Keycloak's ``offline_access``); ``None``: no such scope.
    :ivar user_api: the shape of the userinfo answer: OpenID claims (``oidc``, the default;
        GitHub's own is chosen by ``form_unless_json``) or Discord's user object (``discord``).
    :ivar fault_answer: how an injected token-endpoint fault is answered: a 503 HTML page
        (``unavailable``) or Discord's rate limit (``rate_limit``: 429 with ``Retry-After``
        and a JSON body ``{"message", "retry_after", "global"}``).
    """

    name: str
    display_name: str
    paths: dict[str, str]
    has_issuer: bool
    access_prefix: str
    refresh_prefix: str
    rotation: Rotation
    pkce_required: bool
    pkce_methods: frozenset[str]
    scope_separator: str
    token_type: str
    form_unless_json: bool
    id_tokens: bool
    offline_param: bool
    grant_type_optional: bool
    scope_required: bool
    login_param: str
    failures: dict[str, Failure] = field(default_factory=dict)
    response_type_required: bool = True
    single_auth_method: bool = False
    code_prefix: str = ""
    refresh_needs_expiry: bool = False
    rotation_revokes_access: bool = False
    scopes: frozenset[str] | None = None
    scope_prefixes: tuple[str, ...] = ()
    access_denied_description: str = "The user denied the request."
    access_denied_uri: str | None = None
    id_token_algs: tuple[Algorithm, ...] = ("RS256",)
    client_auth_methods: frozenset[str] = CLIENT_SECRET_METHODS
    sessions: bool = False
    created_at: bool = False
    id_token_claims: dict[str, str] = field(default_factory=dict)
    offline_scope: str | None = None
    envelope: bool = False
    access_token_lifetime: int | None = None
    reuse_grace: float = 0
    refresh_expires_field: str = "refresh_token_expires_in"
    refresh_lifetime_default: int | None = None
    offline_token_scope: str | None = None
    user_api: Literal["oidc", "discord"] = "oidc"
    fault_answer: Literal["unavailable", "rate_limit"] = "unavailable"
    form_post: bool = False
    user_field: bool = False
    secret_jwt_audience: str | None = None

    @property
    def jwt_client_auth(self) -> bool:
        """Whether clients may authenticate with a JWT assertion here."""
        return bool(self.client_auth_methods & JWT_METHODS)

    def failure(self, situation: str) -> Failure:
        """The answer to ``situation``."""
        return self.failures[situation]

    def knows_scope(self, scope: str) -> bool:
        """Whether an authorize request may ask for ``scope``."""
        if self.scopes is None:
            return True
        return scope in self.scopes or scope.startswith(self.scope_prefixes)


def _google() -> Behaviour:
    # 400 for grant and request errors, 401 for client errors, JSON always, no error_uri: the
    # responses reported in public issues, e.g. https://github.com/apache/opendal/issues/3901
    # (400 invalid_grant) and https://github.com/SocialiteProviders/Providers/issues/564 (401
    # invalid_client); docs/providers/google.md gives the source of each row below.
    bad_grant = Failure(400, "invalid_grant", "Token has been expired or revoked.")
    return Behaviour(
        name="google",
        display_name="Google",
        paths={
            "authorize": "/o/oauth2/v2/auth",
            "token": "/token",
            "userinfo": "/v1/userinfo",
            "revoke": "/revoke",
            # jwks_uri https://www.googleapis.com/oauth2/v3/certs in Google's discovery
            # document: https://accounts.google.com/.well-known/openid-configuration
            "jwks": "/oauth2/v3/certs",
        },
        has_issuer=True,
        access_prefix="ya29.",
        refresh_prefix="1//",
        rotation="none",
        pkce_required=False,
        pkce_methods=frozenset({"S256", "plain"}),
        scope_separator=" ",
        token_type="Bearer",
        form_unless_json=False,
        id_tokens=True,
        offline_param=True,
        grant_type_optional=False,
        scope_required=True,
        login_param="login_hint",
        failures={
            "missing_client": Failure(
                400, "invalid_request", "Could not determine client ID from request."
            ),
            "missing_secret": Failure(400, "invalid_request", "client_secret is missing."),
            "unknown_client": Failure(401, "invalid_client", "The OAuth client was not found."),
            "bad_secret": Failure(401, "invalid_client", "Unauthorized"),
            "two_auth_methods": Failure(401, "invalid_client", "Unauthorized"),
            "unsupported_grant_type": Failure(400, "unsupported_grant_type", "Invalid grant_type"),
            "invalid_request": Failure(400, "invalid_request", "Missing required parameter"),
            "bad_code": Failure(400, "invalid_grant", "Malformed auth code."),
            "redirect_mismatch": Failure(400, "redirect_uri_mismatch", "Bad Request"),
            # Not documented by Google and not seen reported: the wording for a wrong verifier
            # is unknown.
            "bad_verifier": Failure(400, "invalid_grant", "Bad Request"),
            "unknown_refresh": Failure(400, "invalid_grant", "Bad Request"),
            "dead_refresh": bad_grant,
            "rotated_refresh": bad_grant,
            "reuse_detected": bad_grant,
            "invalid_scope": Failure(400, "invalid_scope", "Some requested scopes were invalid."),
            # Google takes no client assertions (its discovery document lists
            # client_secret_post and client_secret_basic); never answered.
            "bad_assertion": Failure(401, "invalid_client", "Unauthorized"),
        },
        code_prefix="4/0",  # "?code=4/P7q7W91a-..." (web-server page; the codelab's 4/0A...)
        # The emulator's choice: OpenID scopes and Google API scope URLs, nothing else.
        scopes=frozenset({"openid", "email", "profile"}),
        scope_prefixes=("https://www.googleapis.com/auth/",),
        # "id_token_signing_alg_values_supported": ["RS256"] in Google's discovery document.
        id_token_algs=("RS256",),
    )


_GITHUB_DOCS = "https://docs.github.com/apps/managing-oauth-apps/"


def _github_failure(error: str, description: str, anchor: str, page: str) -> Failure:
    return Failure(200, error, description, f"{_GITHUB_DOCS}{page}/#{anchor}")


def _github() -> Behaviour:
    token_errors = "troubleshooting-oauth-app-access-token-request-errors"
    bad_client = _github_failure(
        "incorrect_client_credentials",
        "The client_id and/or client_secret passed are incorrect.",
        "incorrect-client-credentials",
        token_errors,
    )
    bad_code = _github_failure(
        "bad_verification_code",
        "The code passed is incorrect or expired.",
        "bad-verification-code",
        token_errors,
    )
    # The real error_uri of bad_refresh_token points at #bad-verification-code:
    # https://github.com/interlink-hq/interLink/pull/262
    bad_refresh = _github_failure(
        "bad_refresh_token",
        "The refresh token passed is incorrect or expired.",
        "bad-verification-code",
        token_errors,
    )
    return Behaviour(
        name="github",
        display_name="GitHub",
        paths={
            "authorize": "/login/oauth/authorize",
            "token": "/login/oauth/access_token",
            "userinfo": "/api/user",
            "emails": "/api/user/emails",
            "revoke": "/api/applications/{client_id}/grant",
            "revoke_token": "/api/applications/{client_id}/token",
        },
        has_issuer=False,
        access_prefix="ghu_",
        refresh_prefix="ghr_",
        rotation="rotate",
        # "GitHub is not requiring PKCE", "Only the S256 code challenge method is accepted":
        # https://github.blog/changelog/2025-07-14-pkce-support-for-oauth-and-github-app-authentication
        pkce_required=False,
        pkce_methods=frozenset({"S256"}),  # "the plain code challenge method is not supported"
        scope_separator=",",
        token_type="bearer",
        form_unless_json=True,
        id_tokens=False,
        offline_param=False,
        grant_type_optional=True,
        scope_required=False,
        login_param="login",
        failures={
            "missing_client": bad_client,
            "missing_secret": bad_client,
            "unknown_client": bad_client,
            "bad_secret": bad_client,
            "two_auth_methods": bad_client,
            "unsupported_grant_type": _github_failure(
                "unsupported_grant_type",
                "The grant type is not supported.",
                "unsupported-grant-type",
                token_errors,
            ),
            "invalid_request": bad_code,
            "bad_code": bad_code,
            "redirect_mismatch": _github_failure(
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
                "redirect-uri-mismatch2",
                "troubleshooting-authorization-request-errors",
            ),
            # Not documented by GitHub: a wrong PKCE verifier is answered like a bad code.
            "bad_verifier": bad_code,
            "unknown_refresh": bad_refresh,
            "dead_refresh": bad_refresh,
            "rotated_refresh": bad_refresh,
            "reuse_detected": bad_refresh,
            "invalid_scope": bad_code,
            "bad_assertion": bad_client,  # GitHub takes no client assertions; never answered
        },
        # "If you disabled expiration ... this parameter will be omitted" (GitHub Docs,
        # "Generating a user access token for a GitHub App", cited in Behaviour's docstring);
        # "Once you use a refresh token, that refresh token and the old user access token will
        # no longer work" (GitHub Docs, "Refreshing user access tokens", cited in the module
        # docstring).
        refresh_needs_expiry=True,
        response_type_required=False,
        rotation_revokes_access=True,
        access_denied_description="The user has denied your application access.",
        access_denied_uri=(
            f"{_GITHUB_DOCS}troubleshooting-authorization-request-errors/#access-denied"
        ),
    )


def _standard_failures(reuse_detected: Failure) -> dict[str, Failure]:
    """The refusals of a provider that follows the standards and nothing else (``strict``,
    ``oidc``): RFC 6749 §5.2's statuses and codes, with ``reuse_detected`` as given."""
    # RFC 6749 §5.2: invalid_client is 401; everything about the grant is invalid_grant.
    invalid_client = Failure(401, "invalid_client", "Client authentication failed.")
    return {
        "missing_client": invalid_client,
        "missing_secret": invalid_client,
        "unknown_client": invalid_client,
        "bad_secret": invalid_client,
        "two_auth_methods": Failure(
            400, "invalid_request", "Use one client authentication method per request."
        ),
        "unsupported_grant_type": Failure(
            400, "unsupported_grant_type", "Only authorization_code and refresh_token."
        ),
        "invalid_request": Failure(400, "invalid_request", "A required parameter is missing."),
        "bad_code": Failure(
            400, "invalid_grant", "The authorization code is invalid, used or expired."
        ),
        "redirect_mismatch": Failure(
            400, "invalid_grant", "redirect_uri differs from the authorization request's."
        ),
        "bad_verifier": Failure(400, "invalid_grant", "PKCE verification failed."),
        "unknown_refresh": Failure(400, "invalid_grant", "Unknown refresh token."),
        "dead_refresh": Failure(400, "invalid_grant", "The refresh token is expired or revoked."),
        "rotated_refresh": Failure(400, "invalid_grant", "The refresh token was already used."),
        "reuse_detected": reuse_detected,
        "invalid_scope": Failure(400, "invalid_scope", "The requested scope is not allowed."),
        # RFC 7523 §3.2 and OpenID Connect Core §9: a bad assertion is invalid_client.
        "bad_assertion": invalid_client,
    }


def _strict() -> Behaviour:
    return Behaviour(
        name="strict",
        display_name="Strict OAuth 2.0",
        paths={
            "authorize": "/authorize",
            "token": "/token",
            "userinfo": "/userinfo",
            "revoke": "/revoke",
            "jwks": "/jwks",
        },
        has_issuer=True,
        access_prefix="at_",
        refresh_prefix="rt_",
        rotation="detect_reuse",
        pkce_required=True,
        pkce_methods=frozenset({"S256"}),
        scope_separator=" ",
        token_type="Bearer",
        form_unless_json=False,
        id_tokens=True,
        offline_param=False,
        grant_type_optional=False,
        scope_required=False,
        login_param="login_hint",
        failures=_standard_failures(
            Failure(
                400,
                "invalid_grant",
                "Refresh token reuse detected; every token of this grant is revoked.",
            )
        ),
        single_auth_method=True,  # RFC 6749 §2.3: "MUST NOT use more than one"
        scopes=frozenset({"openid", "email", "profile", "offline_access", "read", "write"}),
        id_token_algs=("ES256", "RS256"),
        client_auth_methods=CLIENT_SECRET_METHODS | JWT_METHODS,
    )


def _oidc() -> Behaviour:
    return Behaviour(
        name="oidc",
        display_name="OpenID Provider",
        paths={
            "authorize": "/authorize",
            "token": "/token",
            "userinfo": "/userinfo",
            "revoke": "/revoke",
            "jwks": "/jwks",
            "end_session": "/logout",
        },
        has_issuer=True,
        access_prefix="oat_",
        refresh_prefix="ort_",
        rotation="rotate",
        pkce_required=True,
        pkce_methods=frozenset({"S256"}),
        scope_separator=" ",
        token_type="Bearer",
        form_unless_json=False,
        id_tokens=True,
        offline_param=False,
        grant_type_optional=False,
        scope_required=True,
        login_param="login_hint",
        # No reuse detection: a rotated token is refused like any used one.
        failures=_standard_failures(
            Failure(400, "invalid_grant", "The refresh token was already used.")
        ),
        single_auth_method=True,
        scopes=frozenset({"openid", "email", "profile", "offline_access"}),
        id_token_algs=("RS256", "ES256"),
        client_auth_methods=CLIENT_SECRET_METHODS | JWT_METHODS,
        sessions=True,
    )


def _providers() -> tuple[Behaviour, ...]:
    # keyturn_emulator.providers builds on Behaviour and Failure, defined above.
    from .providers import behaviours

    return behaviours()


#: The profiles by name.
PROFILES: dict[str, Behaviour] = {
    b.name: b for b in (_google(), _github(), _strict(), _oidc(), *_providers())
}

for _behaviour in PROFILES.values():
    _missing = set(SITUATIONS) - set(_behaviour.failures)
    assert not _missing, f"{_behaviour.name} lacks answers for {_missing}"
