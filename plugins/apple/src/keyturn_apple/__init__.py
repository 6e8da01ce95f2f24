"""Sign in with Apple for keyturn.

What the spec and the hooks encode, each fact with its source in brackets (the sources are
listed with their URLs at the end; ``docs/providers/apple.md`` gathers the same facts, the
doubts, and the cassettes that show them):

* Endpoints: authorize at ``appleid.apple.com/auth/authorize``, tokens at ``/auth/token``,
  revocation at ``/auth/revoke``, Apple's public keys at ``/auth/keys``; issuer
  ``https://appleid.apple.com`` [REST API; discovery]. There is no userinfo endpoint: the
  profile is read from the ID token's claims (``sub``, ``email``, ``email_verified``,
  ``is_private_email``) [ID token], and the user's name arrives once, in the ``user`` field
  of the first authorization's callback [authorize]: keyturn reads it there (see
  ``keyturn.callback_user``), never as proof of who signed in.
* ID tokens are signed RS256 with the keys at ``/auth/keys`` [discovery]. Apple's page on
  verifying a user says "JWS E256"; the key set holds RSA keys and the discovery document
  lists RS256 only, so RS256 is what keyturn accepts (see the provider page).
* ``response_mode=form_post``: Apple requires it when ``name`` or ``email`` is asked for
  [authorize], so the callback is a cross-site ``POST``. keyturn's web routes accept a
  ``POST`` callback for a provider whose spec asks for ``form_post``, with the sign-in
  still bound to the browser (``docs/web.md``, "form_post callbacks").
* The client secret is an ES256 JWT the app signs with the key Apple issues: header ``kid``
  the key id; claims ``iss`` the team id, ``iat``, ``exp`` (at most 15777000 seconds, six
  months, after ``iat``), ``aud`` ``https://appleid.apple.com``, ``sub`` the client id (the
  Services ID) [secret]. keyturn mints a new one for every request with a lifetime of
  :data:`CLIENT_SECRET_LIFETIME` (five minutes), so none is stored and none goes stale. The
  team id is the deployment setting ``team_id`` (``KEYTURN_APPLE_TEAM_ID``); the key comes
  from ``KEYTURN_APPLE_PRIVATE_KEY_FILE`` (or ``_PRIVATE_KEY``) with its id in
  ``KEYTURN_APPLE_PRIVATE_KEY_ID``. A static ``client_secret`` is refused: it would expire
  within six months and fail every sign-in and refresh from then on.
* Refresh tokens never rotate: a refresh answers an access token (``access_token``,
  ``token_type``, ``expires_in``) and the refresh token stays valid until revoked [forum
  123909; forum 656845]. Should a refresh bring an ID token, keyturn verifies it and holds it
  to the same user. Apple asks that a refresh token be used to check a user's standing at
  most once a day, and may throttle more frequent calls [verifying].
* Errors [errors]: ``invalid_grant`` (an expired, revoked or used code or refresh token) means
  sign in again; ``invalid_client`` means the client secret JWT or the Services ID is wrong,
  which is a configuration problem of the app, and the error says so.
* Revocation posts ``client_id``, ``client_secret``, ``token`` and ``token_type_hint`` to
  ``/auth/revoke`` [revoke]: keyturn's RFC 7009 default does exactly that.
* No PKCE: Apple's discovery document lists no ``code_challenge_methods_supported``
  [discovery], so none is sent; ``state`` and the ID token's ``nonce`` bind the sign-in.

Sources:

* REST API: Apple, "Sign in with Apple REST API",
  https://developer.apple.com/documentation/signinwithapplerestapi
* discovery: https://appleid.apple.com/.well-known/openid-configuration
* authorize: Apple, "Incorporating Sign in with Apple into other platforms",
  https://developer.apple.com/documentation/signinwithapple/incorporating-sign-in-with-apple-into-other-platforms
* ID token: Apple, "Authenticating users with Sign in with Apple",
  https://developer.apple.com/documentation/signinwithapple/authenticating-users-with-sign-in-with-apple
* secret: Apple, "Generate and validate tokens" (token validation),
  https://developer.apple.com/documentation/signinwithapplerestapi/generate-and-validate-tokens
* verifying: Apple, "Verifying a user",
  https://developer.apple.com/documentation/signinwithapple/verifying-a-user
* errors: Apple, "ErrorResponse",
  https://developer.apple.com/documentation/signinwithapplerestapi/errorresponse
* revoke: Apple, "Revoke tokens",
  https://developer.apple.com/documentation/signinwithapplerestapi/revoke-tokens
* forum 123909: https://developer.apple.com/forums/thread/123909 (a refresh answers
  ``access_token``, ``token_type`` and ``expires_in`` only)
* forum 656845: https://developer.apple.com/forums/thread/656845
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import keyturn
from keyturn import (
    ClientCredentials,
    ConfigurationError,
    DeploymentSetting,
    Flow,
    OAuthError,
    ProviderSpec,
    TokenSet,
    flows,
)

__all__ = [
    "APPLE",
    "AUDIENCE",
    "CLIENT_SECRET_LIFETIME",
    "MAX_CLIENT_SECRET_LIFETIME",
    "client_secret_claims",
]

T = TypeVar("T")

#: ``aud`` of every client secret JWT [secret].
AUDIENCE = "https://appleid.apple.com"
#: The longest lifetime Apple accepts for a client secret JWT: 15777000 s, six months [secret].
MAX_CLIENT_SECRET_LIFETIME = 15_777_000
#: The lifetime keyturn gives each client secret JWT: it is minted for one request.
CLIENT_SECRET_LIFETIME = 300

APPLE = ProviderSpec(
    id="apple",
    name="Apple",
    authorization_endpoint="https://appleid.apple.com/auth/authorize",
    token_endpoint="https://appleid.apple.com/auth/token",
    revocation_endpoint="https://appleid.apple.com/auth/revoke",
    issuer="https://appleid.apple.com",
    jwks_uri="https://appleid.apple.com/auth/keys",
    # "id_token_signing_alg_values_supported": ["RS256"] in the discovery document.
    id_token_signing_algs=frozenset({"RS256"}),
    # Apple's discovery document lists "scopes_supported": ["openid", "email", "name"]; with
    # openid keyturn sends a nonce, which Apple puts in the ID token.
    default_scopes=("openid", "name", "email"),
    # "If you requested any scopes, the value must be form_post" [authorize]; form_post works
    # without scopes too, so it is always asked for.
    authorize_params={"response_mode": "form_post"},
    client_auth="client_secret_post",
    pkce_method=None,
    rotation="none",
    settings=(
        DeploymentSetting(
            name="team_id",
            kind="text",
            description=(
                "the Apple developer team id that owns the Sign in with Apple key: the iss "
                "of every client secret JWT"
            ),
        ),
    ),
)


@keyturn.hookimpl
def keyturn_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(APPLE)


def client_secret_claims(
    provider: ProviderSpec, credentials: ClientCredentials, now: int
) -> dict[str, Any]:
    """The claims of the client secret JWT for one request [secret].

    :param provider: the deployed spec: its ``deployment["team_id"]`` is the ``iss``; its
        issuer the ``aud`` (``https://appleid.apple.com``, or a test server's issuer).
    :param credentials: the app's credentials; the client id (Services ID) is the ``sub``.
    :param now: the client's clock, epoch seconds.
    :raises ConfigurationError: no team id (naming ``KEYTURN_APPLE_TEAM_ID``).
    """
    team_id = provider.deployment.get("team_id")
    if not team_id:
        raise ConfigurationError(
            f"{provider.name} needs its team_id (the iss of the client secret JWT): set "
            f"{provider.env_prefix}TEAM_ID or pass settings={{{provider.id!r}: "
            "{'team_id': ...}}"
        )
    return {
        "iss": team_id,
        "iat": now,
        "exp": now + CLIENT_SECRET_LIFETIME,
        "aud": provider.issuer or AUDIENCE,
        "sub": credentials.client_id,
    }


@keyturn.hookimpl
@keyturn.for_provider("apple")
def keyturn_client_secret(
    provider: ProviderSpec, credentials: ClientCredentials, now: int
) -> str | None:
    """A new ES256 client secret JWT for this request, signed with Apple's key [secret]."""
    prefix = provider.env_prefix
    if credentials.client_secret is not None:
        raise ConfigurationError(
            f"{provider.name}'s client secret is a JWT keyturn signs for every request; a "
            f"static client secret is not used (it expires within six months). Unset "
            f"{prefix}CLIENT_SECRET and set {prefix}PRIVATE_KEY_FILE (the .p8 key), "
            f"{prefix}PRIVATE_KEY_ID and {prefix}TEAM_ID"
        )
    key = credentials.signing_key
    if key is None:
        raise ConfigurationError(
            f"{provider.name} needs the Sign in with Apple private key to sign its client "
            f"secret: set {prefix}PRIVATE_KEY_FILE (the .p8 file) or {prefix}PRIVATE_KEY"
        )
    if not credentials.private_key_id:
        raise ConfigurationError(
            f"{provider.name} needs the id of its private key (the kid of the client secret "
            f"JWT): set {prefix}PRIVATE_KEY_ID"
        )
    claims = client_secret_claims(provider, credentials, now)
    return keyturn.sign_jwt(key, claims, kid=credentials.private_key_id, alg="ES256")


#: What an ``invalid_client`` from Apple means, in the error's message.
INVALID_CLIENT_HINT = (
    "Apple refused the app's client authentication: a configuration problem, not the "
    "user's. Check the team id (KEYTURN_APPLE_TEAM_ID), the key id (KEYTURN_APPLE_PRIVATE_KEY_ID), "
    "the private key and the Services ID (the client id)"
)


def _explained(flow: Flow[T]) -> Flow[T]:
    """``flow``, with Apple's ``invalid_client`` named as the configuration problem it is."""
    try:
        return (yield from flow)
    except OAuthError as exc:
        if exc.error != "invalid_client":
            raise
        said = f" (Apple: {exc.description})" if exc.description else ""
        raise OAuthError(
            provider=exc.provider,
            operation=exc.operation,
            error=exc.error,
            status=exc.status,
            description=INVALID_CLIENT_HINT + said,
            permanent=True,
            details=exc.details,
            retry_after=exc.retry_after,
        ) from None


@keyturn.hookimpl
@keyturn.for_provider("apple")
def keyturn_exchange_code(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    clock: Callable[[], float],
) -> Flow[TokenSet] | None:
    return _explained(
        flows.exchange_code_flow(provider, credentials, code, redirect_uri, code_verifier, clock)
    )


@keyturn.hookimpl
@keyturn.for_provider("apple")
def keyturn_refresh(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    tokens: TokenSet,
    clock: Callable[[], float],
) -> Flow[TokenSet] | None:
    return _explained(flows.refresh_flow(provider, credentials, tokens, clock))


@keyturn.hookimpl
@keyturn.for_provider("apple")
def keyturn_revoke(
    provider: ProviderSpec, credentials: ClientCredentials, tokens: TokenSet
) -> Flow[None] | None:
    return _explained(flows.revoke_flow(provider, credentials, tokens))
