"""The plugin author's contract: every hook keyturn calls, with its exact signature.

A provider plugin is a module with ``@keyturn.hookimpl`` functions, published under the
``keyturn`` entry-point group. It always implements :func:`keyturn_register_providers`; it
implements the others only where its provider departs from RFC 6749, because keyturn's own
default implementations (registered first, so they run last) already speak the RFC.

Rules that hold for every hook:

* Hooks are plain synchronous functions. They never do I/O: a hook that needs the provider
  returns a *flow* (a generator yielding :class:`~keyturn.http.HttpRequest` and receiving
  :class:`~keyturn.http.HttpResponse`, see :mod:`keyturn.http`). Do not write ``async def``
  hooks or generator-function hooks: pluggy would take the coroutine or generator object as a
  result and never fall through to the next implementation. Instead, return a generator
  object from a plain function, or ``None``.
* "firstresult" hooks stop at the first implementation that returns something other than
  ``None``. Plugins run before keyturn's defaults. A provider plugin returns ``None`` for
  providers that are not its own; :func:`keyturn.for_provider` does that check for you.
* pluggy passes arguments by name, and an implementation may accept any subset of them.
* ``keyturn_jwt`` and ``keyturn_session`` are meant to be wrapped by apps
  (``@keyturn.hookimpl(wrapper=True)``: ``result = yield``, then return a changed copy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal

import pluggy

if TYPE_CHECKING:
    from .errors import ProviderError
    from .http import Flow
    from .models import JWT, ClientCredentials, Profile, ProviderSpec, Session, TokenSet

__all__ = ["NAME", "JwtTrigger", "hookimpl", "hookspec"]

#: One name for the entry-point group, the hook markers and the plugin manager's project.
NAME = "keyturn"

hookspec = pluggy.HookspecMarker(NAME)
hookimpl = pluggy.HookimplMarker(NAME)

#: Why ``keyturn_jwt`` is being called.
#:
#: * ``signIn``: first sign-in; ``tokens`` (and maybe ``profile``) are fresh from the exchange.
#: * ``read``: the access token is still valid; nothing changed.
#: * ``refresh``: the access token was due and was refreshed; ``tokens`` holds the new set.
#: * ``refreshError``: the refresh failed; ``error`` says how; ``token`` keeps the old tokens.
JwtTrigger = Literal["signIn", "read", "refresh", "refreshError"]


@hookspec
def keyturn_register_providers(
    register: Callable[[ProviderSpec], None], environ: Mapping[str, str]
) -> None:
    """Register the providers this plugin supplies.

    Call ``register(spec)`` once for each :class:`~keyturn.ProviderSpec`. Registering an id
    that another plugin already registered raises :class:`~keyturn.PluginError`. Called
    each time a client is built.

    :param register: the function that records one provider spec.
    :param environ: the environment of the client being built (its ``environ=`` option,
        ``os.environ`` by default), for a plugin whose providers are declared there (as
        keyturn-oidc's are). Take it only if you need it: pluggy passes an implementation
        just the arguments it names.
    :return: nothing.
    """


@hookspec(firstresult=True)
def keyturn_deploy(provider: ProviderSpec, settings: Mapping[str, str]) -> ProviderSpec | None:
    """The provider's spec for the app's deployment: its tenant, domain, realm or team.
    First result wins.

    Called once per client, the first time a provider whose spec lists ``settings`` is
    used, with the values the app gave (in code or as ``KEYTURN_<ID>_<NAME>``), each already
    checked for its kind (see :mod:`keyturn.deployment`). keyturn's default fills the
    ``{name}`` placeholders of the URL fields and applies ``rotation`` and
    ``refresh_reuse_grace``. Implement it only when the values change the spec in a way
    placeholders cannot say; start from the default's result and adjust it::

        from keyturn.flows import deploy


        @keyturn.hookimpl
        @keyturn.for_provider("microsoft")
        def keyturn_deploy(provider, settings):
            spec = deploy(provider, settings)
            if settings["tenant"] in {"common", "organizations", "consumers"}:
                return spec  # the issuer stays a template filled from each token's tid
            # one tenant: only its own users' tokens are accepted
            return ProviderSpec.model_validate(
                {**spec.model_dump(), "issuer_claim_values": {"tenantid": [settings["tenant"]]}}
            )

    :param provider: the spec the plugin registered (or the app's replacement of it).
    :param settings: each setting's value, by name.
    :return: the spec to use, with no placeholder left but those of ``issuer_claims``;
        ``None`` for the next implementation.
    """


@hookspec(firstresult=True)
def keyturn_authorize_url(
    provider: ProviderSpec, credentials: ClientCredentials, params: dict[str, str]
) -> str | None:
    """Build the URL that sends the user to the provider's consent screen. First result wins.

    keyturn has already assembled and checked ``params``: ``response_type``, ``client_id``,
    ``redirect_uri``, ``scope`` (space-delimited), ``state``, the PKCE challenge when the spec
    declares PKCE, ``nonce`` when ``openid`` is requested, the spec's ``authorize_params`` and
    the caller's extras. The default joins them onto ``authorization_endpoint``. Override to
    rename, drop or add parameters your provider treats differently.

    :param provider: the spec of the provider the user signs in with.
    :param credentials: the app's client credentials at that provider.
    :param params: the query parameters, ready to encode; change a copy, not this dict.
    :return: the full URL, or ``None`` to leave it to the next implementation.
    """


@hookspec(firstresult=True)
def keyturn_exchange_code(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    clock: Callable[[], float],
) -> Flow[TokenSet] | None:
    """Exchange an authorization code for tokens (RFC 6749 §4.1.3). First result wins.

    :param provider: the provider's spec.
    :param credentials: the app's client credentials.
    :param code: the code from the callback.
    :param redirect_uri: the same redirect URI the authorize URL carried.
    :param code_verifier: the PKCE verifier, or ``None`` when PKCE was not used.
    :param clock: returns the current time in epoch seconds; use it to turn ``expires_in``
        into ``expires_at`` when the response arrives.
    :return: a flow returning the new :class:`~keyturn.TokenSet` (raising a
        :class:`~keyturn.ProviderError` on failure), or ``None`` for the next implementation.
    """


@hookspec(firstresult=True)
def keyturn_refresh(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    tokens: TokenSet,
    clock: Callable[[], float],
) -> Flow[TokenSet] | None:
    """Refresh an access token (RFC 6749 §6). First result wins.

    keyturn calls this only with a refresh token that exists and has not expired. The flow
    must return a complete :class:`~keyturn.TokenSet`: when the provider sends no new refresh
    token, keep the old one (``tokens.refresh_token``); when it rotates, use the new one.
    Failures raise :class:`~keyturn.ProviderError` with ``permanent`` set truthfully.

    :param provider: the provider's spec.
    :param credentials: the app's client credentials.
    :param tokens: the current tokens, refresh token included.
    :param clock: returns the current time in epoch seconds.
    :return: a flow returning the refreshed tokens, or ``None`` for the next implementation.
    """


@hookspec(firstresult=True)
def keyturn_userinfo(provider: ProviderSpec, tokens: TokenSet) -> Flow[Profile] | None:
    """Fetch the signed-in user's profile and normalise it. First result wins.

    The default GETs ``userinfo_endpoint`` with the access token and reads the OpenID
    Connect claims (``sub``, ``name``, ``email``, ``email_verified``, ``picture``); for a
    spec without a ``userinfo_endpoint`` (Apple) it reads the same claims from the ID token
    keyturn verified when it arrived, and sends no request. A
    provider with its own user API returns a flow that fills a :class:`~keyturn.Profile`
    (``id``, ``name``, ``email``, ``email_verified``, ``image``, and the whole answer in
    ``raw``). At sign-in, when ``raw`` holds a ``sub`` and the tokens an ID token, a ``sub``
    other than the ID token's refuses the sign-in (OpenID Connect Core 5.3.2); a user API
    whose answer has no ``sub`` is not compared.

    :param provider: the provider's spec.
    :param tokens: the user's tokens.
    :return: a flow returning a :class:`~keyturn.Profile`, or ``None`` for the next
        implementation.
    """


@hookspec(firstresult=True)
def keyturn_revoke(
    provider: ProviderSpec, credentials: ClientCredentials, tokens: TokenSet
) -> Flow[None] | None:
    """Revoke the user's grant. First result wins.

    The default follows RFC 7009: it POSTs the refresh token (or, without one, the access
    token) with its ``token_type_hint`` to ``revocation_endpoint``, authenticating the client
    as the spec says. Revoking a token the provider already considers dead is success: the
    goal is reached.

    :param provider: the provider's spec.
    :param credentials: the app's client credentials.
    :param tokens: the tokens to revoke; revoke the refresh token where there is one.
    :return: a flow returning ``None``, or ``None`` for the next implementation.
    """


@hookspec(firstresult=True)
def keyturn_client_secret(
    provider: ProviderSpec, credentials: ClientCredentials, now: int
) -> str | None:
    """The client secret to authenticate one request with. First result wins.

    keyturn calls it each time it sends a request to the token endpoint (code exchange,
    refresh) or the revocation endpoint, for a spec whose ``client_auth`` uses a secret
    (``client_secret_post``, ``client_secret_basic``, ``client_secret_jwt``), and hands the
    hooks of that request credentials holding its result. The default returns the configured
    secret. Implement it for a provider whose secret is a JWT the app signs: return a new one,
    so it never goes stale, signed with :func:`keyturn.sign_jwt`. Apple's is an ES256 JWT,
    signed with the key Apple issues (its key id as ``kid``), with ``iss`` the team id,
    ``sub`` the client id (the Services ID), ``aud`` ``https://appleid.apple.com`` and a
    lifetime of at most six months
    (https://developer.apple.com/documentation/signinwithapplerestapi/generate-and-validate-tokens)::

        @keyturn.hookimpl
        @keyturn.for_provider("apple")
        def keyturn_client_secret(provider, credentials, now):
            # credentials.signing_key: the .p8 key from KEYTURN_APPLE_PRIVATE_KEY_FILE,
            # with KEYTURN_APPLE_PRIVATE_KEY_ID as its kid; ES256 for its P-256 curve. The
            # team id is a deployment setting of the spec (KEYTURN_APPLE_TEAM_ID).
            return keyturn.sign_jwt(
                credentials.signing_key,
                {
                    "iss": provider.deployment["team_id"],
                    "sub": credentials.client_id,
                    "aud": "https://appleid.apple.com",
                    "iat": now,
                    "exp": now + 300,
                },
            )

    keyturn-apple (``plugins/apple``) is this hook in full, with the checks and messages a
    missing key, key id or team id gets. The key is parsed once, however often it signs.
    Return a plain ``str`` from a plain
    function: a coroutine (an ``async def`` implementation) or an empty string is refused
    with :class:`~keyturn.PluginError`.

    :param provider: the provider's spec.
    :param credentials: the app's configured credentials (``client_secret``, ``private_key``
        and ``signing_key``, ``private_key_id``).
    :param now: the client's clock (epoch seconds, whole): use it for ``iat`` and ``exp``,
        so that tests with a fake clock see the times they expect.
    :return: the secret for this request, or ``None`` for the next implementation (after
        the default, ``None`` means no secret).
    """


@hookspec(firstresult=True)
def keyturn_jwt(
    token: JWT | None,
    trigger: JwtTrigger,
    tokens: TokenSet | None,
    profile: Profile | None,
    error: ProviderError | None,
    now: int,
) -> JWT | None:
    """Compute the JWT state after a sign-in, a read, a refresh or a failed refresh.

    NextAuth's ``callbacks.jwt``. keyturn's default implements the refresh-token-rotation
    logic: on ``signIn`` it stores ``tokens`` and ``profile``; on ``read`` it returns
    ``token`` as is; on ``refresh`` it stores the new tokens and clears any error; on
    ``refreshError`` it keeps every old token, records the failure, and sets
    ``error = "RefreshAccessTokenError"`` when the failure is permanent. The client, not this
    hook, decides when a refresh is due and performs it.

    Apps wrap it to add ``claims``, as NextAuth apps do in ``callbacks.jwt``::

        @keyturn.hookimpl(wrapper=True)
        def keyturn_jwt(trigger, profile):
            token = yield  # the default's result
            if trigger == "signIn" and profile is not None:
                claims = {**token.claims, "login": profile.raw.get("login")}
                token = token.model_copy(update={"claims": claims})
            return token

    :param token: the current state; ``None`` on ``signIn``.
    :param trigger: why the hook is called, see :data:`JwtTrigger`.
    :param tokens: fresh tokens on ``signIn`` and ``refresh``, else ``None``.
    :param profile: the user's profile on ``signIn`` when it was fetched, else ``None``.
    :param error: the refresh failure on ``refreshError``, else ``None``.
    :param now: the current time in epoch seconds.
    :return: the new :class:`~keyturn.JWT` (first result wins).
    """


@hookspec(firstresult=True)
def keyturn_session(token: JWT) -> Session | None:
    """Compute what the app shows from the JWT state: NextAuth's ``callbacks.session``.

    The default copies the provider, user, access token, its expiry, ``error`` and ``claims``,
    and never the refresh token or the id token. Wrap it, as ``keyturn_jwt`` is wrapped, to
    expose more, or less.

    :param token: the JWT state after ``keyturn_jwt``.
    :return: the :class:`~keyturn.Session` (first result wins).
    """
