"""``Keyturn`` and ``AsyncKeyturn``: the app's entry points.

Every operation is written once, in :class:`BaseKeyturn`, as a generator of effects (see
:mod:`keyturn.effects`): ``exchange_code_op``, ``refresh_op``, ``jwt_op``... The two classes
differ only in how they drive them: :class:`Keyturn` with :func:`~keyturn.effects.run` and a
blocking HTTP client, :class:`AsyncKeyturn` with :func:`~keyturn.effects.arun` and an async
one. This mirrors ``httpx.Client`` / ``httpx.AsyncClient``. Other operations (the token
manager's, the web routes') compose these with ``yield from``.

Refreshes go through a :class:`~keyturn.singleflight.SingleFlight` keyed by a digest of the
provider id and the refresh token: however many threads (``Keyturn``) or tasks
(``AsyncKeyturn``) refresh the same token at once, one request is sent and all of them get
its outcome. For ``refresh_reuse_window`` seconds afterwards (30 by default, on the client's
clock) a caller that still holds the old refresh token gets the same new tokens, and a
refresh the provider refused as permanent (``invalid_grant``...) gets the same error, with
no second request: resending a refused or already-rotated token gains nothing and makes
strict providers revoke the whole token family. Transient failures are shared by the
callers who waited for them but never cached, so the next call tries again. ``jwt()``
refreshes through the same path. The coordination covers one client object; share one
client across the app (as with an ``httpx.Client``), and use :mod:`keyturn.stores` to
coordinate processes.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypedDict, TypeVar, Unpack, cast
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError

from . import callbacks, client_auth, defaults
from . import pkce as pkce_module
from .effects import Operation, Shared, arun, run
from .errors import (
    ConfigurationError,
    PluginError,
    ProviderError,
    RefreshIdTokenError,
    RefreshTokenUnusable,
    TransportError,
    UnknownProviderError,
)
from .hookspecs import JwtTrigger
from .http import Flow
from .idtoken import (
    IdTokenError,
    check_id_token,
    check_same_session,
    check_same_subject,
    unverified_claims,
)
from .models import (
    JWT,
    REFRESH_ACCESS_TOKEN_ERROR,
    AuthorizationRequest,
    ClientCredentials,
    Profile,
    ProviderSpec,
    Session,
    TokenSet,
)
from .plugins import KeyturnPluginManager, RegisteredProvider, collect_providers
from .plugins import default_plugin_manager as _default_pm
from .singleflight import SingleFlight
from .transport import (
    AsyncClosedHttpClient,
    AsyncHttpClient,
    ClosedHttpClient,
    NetworkFailure,
    SyncHttpClient,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncKeyturn", "BaseKeyturn", "ClientOptions", "Keyturn"]

log = logging.getLogger("keyturn")

T = TypeVar("T")
H = TypeVar("H")
CredentialsArg = ClientCredentials | tuple[str, str | None] | Mapping[str, str]

#: Parameters keyturn sets itself; callers cannot pass them as extras.
_RESERVED_PARAMS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "nonce",
    }
)
DEFAULT_TIMEOUT = 10.0
#: Seconds a refresh outcome is reused for callers holding the same refresh token.
DEFAULT_REFRESH_REUSE_WINDOW = 30.0


class ClientOptions(TypedDict, total=False):
    """The keyword arguments :class:`Keyturn` and :class:`AsyncKeyturn` share; all optional.

    :param leeway: seconds before ``expires_at`` at which a token counts as expired (60).
    :param clock: returns epoch seconds; inject a fake one in tests (``time.time``).
    :param plugin_manager: a manager from :func:`keyturn.get_plugin_manager`; the
        process-wide default otherwise.
    :param environ: where to read ``KEYTURN_<PROVIDER>_CLIENT_ID`` / ``_CLIENT_SECRET``
        (``os.environ``).
    :param providers: provider specs of the app's own. A spec whose id is installed
        replaces that provider's spec and keeps its plugin's hooks: the supported way to
        point a provider at other endpoints (the emulator, a staging server). Any other id
        adds a provider served by keyturn's RFC 6749 defaults.
    :param refresh_reuse_window: seconds (on ``clock``) during which the outcome of a
        refresh is handed to callers that present the same refresh token again (30);
        0 turns the reuse off, though concurrent callers still share one request. Every
        refresh of the window is kept, whatever their number: memory grows with the
        refreshes a window sees (about 2.7 KB each) and is given back when it ends.
    """

    leeway: float
    clock: Callable[[], float]
    plugin_manager: KeyturnPluginManager | None
    environ: Mapping[str, str] | None
    providers: Sequence[ProviderSpec]
    refresh_reuse_window: float


def _log_refresh_failure(error: ProviderError) -> None:
    """Tell the operator why a refresh failed: once per failure, never a secret.

    Called where the refresh runs, so callers sharing its outcome add no lines. The
    provider's description is its own text; it is cut short and kept on one line.
    """
    reason = error.error
    if error.status is not None:
        reason += f", HTTP {error.status}"
    if error.description:
        reason += ": " + " ".join(error.description.split())[:200]
    if error.permanent:
        log.warning(
            "refresh of %s tokens refused (%s); the user must sign in again",
            error.provider,
            reason,
        )
    else:
        log.info(
            "refresh of %s tokens failed (%s); the tokens are kept and the next call tries again",
            error.provider,
            reason,
        )


def _remember_refresh_error(error: Exception) -> bool:
    """Permanent refresh failures are reused for the window; transient ones never are."""
    return isinstance(error, ProviderError) and error.permanent


def _readable_claims(id_token: SecretStr | None) -> dict[str, Any] | None:
    """The claims of an ID token the tokens already hold, or ``None`` if it cannot be read."""
    if id_token is None:
        return None
    try:
        return unverified_claims(id_token.get_secret_value())
    except IdTokenError:
        return None


def _coerce_credentials(provider: str, value: CredentialsArg) -> ClientCredentials:
    if isinstance(value, ClientCredentials):
        return value
    try:
        if isinstance(value, tuple) and len(value) == 2:
            return ClientCredentials(client_id=value[0], client_secret=value[1])
        if isinstance(value, Mapping):
            return ClientCredentials.model_validate(dict(value))
    except ConfigurationError as exc:  # an unusable private key, named but never quoted
        raise ConfigurationError(f"credentials for {provider!r}: {exc}") from None
    except ValidationError as exc:
        fields = ", ".join(str(err["loc"][0]) for err in exc.errors() if err["loc"])
        raise ConfigurationError(
            f"credentials for {provider!r} are not usable (check {fields or 'their values'})"
        ) from None
    raise ConfigurationError(
        f"credentials for {provider!r} must be ClientCredentials, (client_id, client_secret) "
        "or a mapping"
    )


def _local_providers(
    specs: Sequence[ProviderSpec], installed: Mapping[str, RegisteredProvider]
) -> dict[str, RegisteredProvider]:
    """Specs given to the constructor: new providers, or replacements for installed ones.

    A replacement keeps the installed plugin's hooks (they match on the provider id), so
    ``providers=[spec.model_copy(update={"token_endpoint": ...})]`` points a shipped plugin
    at another server (the emulator, a staging tenant) and changes nothing else.
    """
    local: dict[str, RegisteredProvider] = {}
    for spec in specs:
        if not isinstance(spec, ProviderSpec):
            raise ConfigurationError(f"providers= takes ProviderSpec objects, not {spec!r}")
        if spec.id in local:
            raise ConfigurationError(f"providers= lists {spec.id!r} twice")
        base = installed.get(spec.id)
        local[spec.id] = (
            RegisteredProvider(spec, base.plugin, base.distribution, base.version, base.hooks)
            if base is not None
            else RegisteredProvider(spec, "app", None, None)
        )
    return local


class BaseKeyturn(Generic[H]):
    """What both clients share: providers, credentials, and every operation, written once.

    ``H`` is the type of HTTP client the subclass drives its operations with.

    The ``*_op`` methods return operations (generators of effects, see
    :mod:`keyturn.effects`) that :class:`Keyturn` drives with :func:`~keyturn.effects.run`
    and :class:`AsyncKeyturn` with :func:`~keyturn.effects.arun`. Compose them into
    operations of your own with ``yield from``, as :mod:`keyturn.stores` and
    :mod:`keyturn.web` do; each does what the client method of the same name does.
    """

    def __init__(
        self,
        credentials: Mapping[str, CredentialsArg] | None = None,
        *,
        http_client: H | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        unknown = sorted(set(options) - set(ClientOptions.__annotations__))
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(unknown)}")
        leeway = options.get("leeway", 60)
        clock = options.get("clock", time.time)
        refresh_reuse_window = options.get("refresh_reuse_window", DEFAULT_REFRESH_REUSE_WINDOW)
        environ = options.get("environ")
        if leeway < 0:
            raise ConfigurationError("leeway must be zero or more seconds")
        if refresh_reuse_window < 0:
            raise ConfigurationError("refresh_reuse_window must be zero or more seconds")
        self.leeway = leeway
        self.clock = clock
        #: Coordinates refreshes: one request per refresh token at a time, outcomes reused
        #: for ``refresh_reuse_window`` seconds. ``single_flight.stats()`` feeds metrics.
        #: No count caps the reuse: a late caller turned away would send a spent refresh
        #: token, so every outcome of the window is kept (about 2.7 KB each, see
        #: :class:`~keyturn.singleflight.SingleFlight`) and dropped when the window ends.
        self.single_flight: SingleFlight[TokenSet] = SingleFlight(
            window=refresh_reuse_window,
            clock=clock,
            remember_error=_remember_refresh_error,
            max_results=None,
            reusable=self._still_fresh,
        )
        self.plugin_manager = options.get("plugin_manager") or _default_pm()
        pm = self.plugin_manager
        #: hook name -> how to call it (see keyturn.dispatch); pluggy's caller for a plain
        #: pluggy manager, which keeps no plans.
        self._hook: Callable[[str], Callable[..., Any]] = (
            pm.caller
            if isinstance(pm, KeyturnPluginManager)
            else lambda name: cast(Callable[..., Any], getattr(pm.hook, name))
        )
        self._registered = collect_providers(self.plugin_manager)
        self._registered.update(_local_providers(options.get("providers", ()), self._registered))
        self._environ = os.environ if environ is None else environ
        self._credentials = {
            name: _coerce_credentials(name, value) for name, value in (credentials or {}).items()
        }
        self._owns_client = http_client is None
        # keyturn's own client is made on first use (see http_client): building one loads
        # httpcore and a TLS context with the system's certificates, which costs more than
        # importing keyturn, and a client that only reads tokens never needs it.
        self._http_client: H | None = http_client
        self._http_client_lock = threading.Lock()

    @property
    def http_client(self) -> H:
        """The HTTP client operations are driven with: the app's, or keyturn's own.

        keyturn's own is made on first access (the first operation that is run, or reading
        this attribute), once however many threads ask at the same moment. After
        :meth:`Keyturn.close` / :meth:`AsyncKeyturn.aclose` this stays the closed client, so
        a request raises ``RuntimeError`` as a closed httpx client does; if none was ever
        made, a stand-in that refuses requests the same way takes its place.
        """
        client = self._http_client
        if client is None:
            with self._http_client_lock:
                client = self._http_client
                if client is None:
                    client = self._http_client = self._new_http_client()
        return client

    def _new_http_client(self) -> H:
        """The HTTP client keyturn makes (and closes) when the app passes none."""
        raise NotImplementedError

    def _client_to_close(self, closed: H) -> H | None:
        """keyturn's own client, to be closed by the caller; ``None`` if there is nothing to close.

        The app's client is never closed. When keyturn made none, none is made now:
        ``closed`` (a stand-in refusing requests) takes its place, so using the client after
        closing it fails as it would have had a client been made and closed.
        """
        if not self._owns_client:
            return None
        with self._http_client_lock:
            client = self._http_client
            if client is None:
                self._http_client = closed
        return client

    # -- providers and credentials -------------------------------------------------------

    @property
    def providers(self) -> dict[str, ProviderSpec]:
        """The installed providers by id."""
        return {pid: reg.spec for pid, reg in self._registered.items()}

    @property
    def registered_providers(self) -> dict[str, RegisteredProvider]:
        """The installed providers by id, with the plugin and distribution of each."""
        return dict(self._registered)

    def provider(self, provider: str | ProviderSpec) -> ProviderSpec:
        """The spec of an installed provider.

        :raises UnknownProviderError: no plugin registers that id.
        """
        if isinstance(provider, ProviderSpec):
            return provider
        registered = self._registered.get(provider)
        if registered is None:
            raise UnknownProviderError(provider, list(self._registered))
        return registered.spec

    def credentials(self, provider: str | ProviderSpec) -> ClientCredentials:
        """The app's credentials at ``provider``: given to the constructor, or from the env.

        From the environment: ``KEYTURN_<ID>_CLIENT_ID``, ``_CLIENT_SECRET``, and for signed
        client assertions ``_PRIVATE_KEY`` (PEM text) or ``_PRIVATE_KEY_FILE`` (its path),
        ``_PRIVATE_KEY_ID`` and ``_SIGNING_ALG`` (see :mod:`keyturn.client_auth`).

        :raises ConfigurationError: neither is set, the private key is unusable, or the
            spec's ``client_auth`` needs a key the credentials lack.
        """
        spec = self.provider(provider)
        given = self._credentials.get(spec.id)
        if given is None:
            given = self._environ_credentials(spec)
        client_auth.check_credentials(spec, given)
        return given

    def _environ_credentials(self, spec: ProviderSpec) -> ClientCredentials:
        client_id = self._environ.get(spec.env_prefix + "CLIENT_ID")
        if not client_id:
            raise ConfigurationError(
                f"no client credentials for {spec.id!r}: pass credentials={{{spec.id!r}: "
                f"(client_id, client_secret)}} or set {spec.env_prefix}CLIENT_ID and "
                f"{spec.env_prefix}CLIENT_SECRET"
            )
        secret = self._environ.get(spec.env_prefix + "CLIENT_SECRET") or None
        keys = client_auth.environ_key_settings(spec.env_prefix, self._environ)
        if not keys:
            return ClientCredentials(client_id=client_id, client_secret=secret)
        try:
            return ClientCredentials.model_validate(
                {"client_id": client_id, "client_secret": secret, **keys}
            )
        except ConfigurationError as exc:  # an unusable private key, named but never quoted
            from_file = bool(self._environ.get(spec.env_prefix + "PRIVATE_KEY_FILE"))
            variable = "PRIVATE_KEY_FILE" if from_file else "PRIVATE_KEY"
            raise ConfigurationError(f"{spec.env_prefix}{variable}: {exc}") from None
        except ValidationError as exc:
            fields = ", ".join(str(err["loc"][0]) for err in exc.errors() if err["loc"])
            raise ConfigurationError(
                f"the environment's credentials for {spec.id!r} are not usable (check "
                f"{fields or 'their values'})"
            ) from None

    def _request_credentials(self, spec: ProviderSpec) -> ClientCredentials:
        """The credentials for one request to the token or revocation endpoint: the secret
        ``keyturn_client_secret`` gives, and a new client assertion for the JWT methods."""
        credentials = self.credentials(spec)
        if spec.client_auth == "none":
            return credentials
        secret_hook = self._hook("keyturn_client_secret")
        return client_auth.request_credentials(
            spec,
            credentials,
            self.clock(),
            None if secret_hook is defaults.keyturn_client_secret else secret_hook,
        )

    # -- authorize (no I/O) ---------------------------------------------------------------

    def authorize_url(
        self,
        provider: str | ProviderSpec,
        redirect_uri: str,
        *,
        scopes: Sequence[str] | None = None,
        state: str | None = None,
        pkce: bool = True,
        nonce: str | None = None,
        **params: str,
    ) -> AuthorizationRequest:
        """Build the URL that sends the user to the provider, and what to check on return.

        :param provider: provider id or spec.
        :param redirect_uri: where the provider sends the user back; the same value is sent
            again with the code exchange.
        :param scopes: scopes to request; the provider's ``default_scopes`` when omitted.
        :param state: your own ``state``; a 256-bit random value by default.
        :param pkce: use PKCE when the provider supports it (default on).
        :param nonce: your own OpenID Connect nonce; random by default when ``openid`` is
            among the scopes.
        :param params: provider-specific parameters (``login_hint``, ``prompt``...): only
            names the provider's spec lists in ``authorize_params`` or
            ``extra_authorize_params``; each overrides the spec's default.
        :raises ConfigurationError: an unknown or reserved parameter, or a bad redirect URI.
        """
        spec = self.provider(provider)
        credentials = self.credentials(spec)
        target = urlsplit(redirect_uri)
        if target.scheme not in ("https", "http") or not target.hostname or "#" in redirect_uri:
            raise ConfigurationError(
                f"redirect_uri must be an absolute http(s) URL without a fragment: {redirect_uri!r}"
            )
        allowed = spec.extra_authorize_params | set(spec.authorize_params)
        for name in params:
            if name in _RESERVED_PARAMS:
                raise ConfigurationError(
                    f"{name!r} is set by keyturn; use the authorize_url() argument instead"
                )
            if name not in allowed:
                shown = ", ".join(sorted(allowed)) or "none"
                raise ConfigurationError(
                    f"{spec.id} does not accept the authorize parameter {name!r} "
                    f"(accepted: {shown})"
                )
        chosen = tuple(spec.default_scopes if scopes is None else scopes)
        state_value = state or pkce_module.random_token()
        query: dict[str, str] = {
            "response_type": "code",
            "client_id": credentials.client_id,
            "redirect_uri": redirect_uri,
        }
        if chosen:
            query["scope"] = " ".join(chosen)
        query["state"] = state_value
        verifier = None
        if pkce and spec.pkce_method is not None:
            verifier = pkce_module.new_code_verifier()
            query["code_challenge"] = pkce_module.code_challenge(verifier, spec.pkce_method)
            query["code_challenge_method"] = spec.pkce_method
        nonce_value = nonce
        if nonce_value is None and "openid" in chosen:
            nonce_value = pkce_module.random_token()
        if nonce_value is not None:
            query["nonce"] = nonce_value
        query.update(spec.authorize_params)
        query.update(params)
        url = self._hook("keyturn_authorize_url")(
            provider=spec, credentials=credentials, params=dict(query)
        )
        return AuthorizationRequest.model_validate(
            {
                "provider": spec.id,
                "url": url,
                "redirect_uri": redirect_uri,
                "state": state_value,
                "code_verifier": verifier,
                "nonce": nonce_value,
                "scopes": chosen,
                "issuer": spec.issuer,
                "issuer_required": spec.authorization_response_iss,
                "created_at": int(self.clock()),
            }
        )

    # -- operations: everything that does I/O, written once ---------------------------------

    def _hook_flow(self, hook: str, spec: ProviderSpec, operation: str, **kwargs: Any) -> Flow[Any]:
        flow = self._hook(hook)(provider=spec, **kwargs)
        if not inspect.isgenerator(flow):
            close = getattr(flow, "close", None)
            if callable(close):  # a coroutine from an async def hook: silence "never awaited"
                close()
            raise PluginError(
                f"{hook} for {spec.id!r} returned {type(flow).__name__}, not a flow "
                "(return a generator object from a plain function; no async def hooks)"
            )
        try:
            return (yield from flow)
        except NetworkFailure as exc:
            failure = exc
        # Raised outside the except block: the HTTP library's exception (which holds the
        # request, form body included) must not ride along as __context__.
        raise TransportError(
            provider=spec.id,
            operation=operation,
            error=failure.code,
            description=failure.detail,
            permanent=False,
        )

    def exchange_code_op(
        self,
        provider: str | ProviderSpec | AuthorizationRequest,
        code: str,
        *,
        redirect_uri: str | None = None,
        code_verifier: str | None = None,
    ) -> Operation[TokenSet]:
        """The operation behind :meth:`Keyturn.exchange_code`."""
        request = provider if isinstance(provider, AuthorizationRequest) else None
        if request is not None:
            if redirect_uri is not None and redirect_uri != request.redirect_uri:
                raise ConfigurationError(
                    "redirect_uri differs from the one in the authorization request"
                )
            redirect_uri = request.redirect_uri
            if request.code_verifier is not None:
                stored = request.code_verifier.get_secret_value()
                if code_verifier is not None and code_verifier != stored:
                    raise ConfigurationError(
                        "code_verifier differs from the one in the authorization request"
                    )
                code_verifier = stored
            spec = self.provider(request.provider)
        else:
            spec = self.provider(cast(str | ProviderSpec, provider))
        if not redirect_uri:
            raise ConfigurationError("exchange_code needs the redirect_uri of the authorize URL")
        if not code:
            raise ConfigurationError("exchange_code needs a non-empty code")
        credentials = self._request_credentials(spec)
        tokens: TokenSet = yield from self._hook_flow(
            "keyturn_exchange_code",
            spec,
            "exchange_code",
            credentials=credentials,
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
            clock=self.clock,
        )
        if request is not None and tokens.id_token is not None:
            self._check_id_token(
                spec,
                credentials,
                tokens.id_token.get_secret_value(),
                request.nonce.get_secret_value() if request.nonce else None,
            )
        return tokens

    def _check_id_token(
        self,
        spec: ProviderSpec,
        credentials: ClientCredentials,
        id_token: str,
        nonce: str | None,
    ) -> dict[str, Any]:
        """OpenID Connect Core §3.1.3.7 on the client's clock and leeway; the claims."""
        return check_id_token(
            id_token,
            nonce=nonce,
            client_id=credentials.client_id,
            issuer=spec.issuer,
            issuer_aliases=spec.issuer_aliases,
            trusted_audiences=spec.trusted_audiences,
            now=self.clock(),
            leeway=self.leeway,
        )

    def refresh_op(self, tokens: TokenSet) -> Operation[TokenSet]:
        """The operation behind :meth:`Keyturn.refresh`: one request per refresh token."""
        key = self._refresh_key(tokens)
        if key is None:
            return (yield from self._refresh_flow(tokens))
        return (yield from Shared(self.single_flight, key, lambda: self._refresh_flow(tokens)))

    def _refresh_flow(self, tokens: TokenSet) -> Flow[TokenSet]:
        try:
            return (yield from self._refresh_flow_unlogged(tokens))
        except ProviderError as exc:
            _log_refresh_failure(exc)
            raise

    def _refresh_flow_unlogged(self, tokens: TokenSet) -> Flow[TokenSet]:
        spec = self.provider(tokens.provider)
        if tokens.refresh_token is None:
            raise RefreshTokenUnusable(
                provider=spec.id,
                operation="refresh",
                error="no_refresh_token",
                description="the tokens carry no refresh token",
                permanent=True,
            )
        if tokens.refresh_token_expired(self.clock()):
            raise RefreshTokenUnusable(
                provider=spec.id,
                operation="refresh",
                error="refresh_token_expired",
                description="the refresh token is past its own expiry",
                permanent=True,
            )
        credentials = self._request_credentials(spec)
        result: TokenSet = yield from self._hook_flow(
            "keyturn_refresh",
            spec,
            "refresh",
            credentials=credentials,
            tokens=tokens,
            clock=self.clock,
        )
        if result.id_token is not None and result.id_token != tokens.id_token:
            self._check_refreshed_id_token(spec, credentials, tokens, result.id_token)
        elif tokens.id_token_identity is not None and result.id_token_identity is None:
            # No new ID token: whom the session's was about still holds for the next one.
            result = result.model_copy(update={"id_token_identity": tokens.id_token_identity})
        return result

    def _check_refreshed_id_token(
        self,
        spec: ProviderSpec,
        credentials: ClientCredentials,
        tokens: TokenSet,
        id_token: SecretStr,
    ) -> None:
        """OpenID Connect Core §12.2: a new ID token passes the sign-in checks (no nonce) and
        names the same issuer, subject and audience as the one it replaces (or as the identity
        kept in its place, ``tokens.id_token_identity``), if that one can be read; else the
        refresh fails for good and the old tokens stay.

        :raises RefreshIdTokenError: ``invalid_id_token`` or ``id_token_mismatch``.
        """
        code = "invalid_id_token"
        try:
            claims = self._check_id_token(spec, credentials, id_token.get_secret_value(), None)
            previous = _readable_claims(tokens.id_token)
            if previous is None and tokens.id_token_identity is not None:
                previous = tokens.id_token_identity.claims()
            if previous is not None:
                code = "id_token_mismatch"
                check_same_session(claims, previous)
        except IdTokenError as exc:
            raise RefreshIdTokenError(
                provider=spec.id,
                operation="refresh",
                error=code,
                description=str(exc),
                permanent=True,
            ) from None

    def userinfo_op(self, tokens: TokenSet) -> Operation[Profile]:
        """The operation behind :meth:`Keyturn.userinfo`."""
        spec = self.provider(tokens.provider)
        result: Profile = yield from self._hook_flow(
            "keyturn_userinfo", spec, "userinfo", tokens=tokens
        )
        return result

    def revoke_op(self, tokens: TokenSet) -> Operation[None]:
        """The operation behind :meth:`Keyturn.revoke`."""
        spec = self.provider(tokens.provider)
        yield from self._hook_flow(
            "keyturn_revoke",
            spec,
            "revoke",
            credentials=self._request_credentials(spec),
            tokens=tokens,
        )

    def jwt_op(
        self,
        token: JWT | None = None,
        *,
        tokens: TokenSet | None = None,
        profile: Profile | None = None,
    ) -> Operation[JWT]:
        """The operation behind :meth:`Keyturn.jwt`; no effect unless a refresh is due."""
        done = self._jwt_start(token, tokens, profile)
        if done is not None:
            return done
        assert token is not None
        return (yield from self._jwt_refresh_op(token))

    def _jwt_refresh_op(self, token: JWT) -> Operation[JWT]:
        """Refresh ``token``'s tokens and run the callback with the outcome, never raising it."""
        try:
            refreshed = yield from self.refresh_op(token.tokens)
        except ProviderError as exc:
            return self._call_jwt(token, "refreshError", error=exc)
        return self._call_jwt(token, "refresh", tokens=refreshed)

    def sign_in_op(
        self,
        request: AuthorizationRequest,
        query: Mapping[str, str],
        *,
        fetch_profile: bool = True,
    ) -> Operation[JWT]:
        """The operation behind :meth:`Keyturn.sign_in`."""
        code = request.verify_callback(query)
        tokens = yield from self.exchange_code_op(request, code)
        profile = None
        if fetch_profile and self.provider(request.provider).userinfo_endpoint is not None:
            profile = yield from self.userinfo_op(tokens)
            userinfo_sub = profile.raw.get("sub")
            if tokens.id_token is not None and userinfo_sub is not None:
                # OpenID Connect Core §5.3.2: never sign in as another subject than the ID
                # token's (the exchange has checked the ID token already).
                claims = unverified_claims(tokens.id_token.get_secret_value())
                check_same_subject(claims, userinfo_sub)
        return self._call_jwt(None, "signIn", tokens=tokens, profile=profile)

    # -- the jwt callback ------------------------------------------------------------------

    def _call_jwt(
        self,
        token: JWT | None,
        trigger: JwtTrigger,
        *,
        tokens: TokenSet | None = None,
        profile: Profile | None = None,
        error: ProviderError | None = None,
    ) -> JWT:
        result: JWT = self._hook("keyturn_jwt")(
            token=token,
            trigger=trigger,
            tokens=tokens,
            profile=profile,
            error=error,
            now=int(self.clock()),
        )
        return result

    def _still_fresh(self, tokens: TokenSet) -> bool:
        """Whether reused tokens are worth handing out: not due themselves."""
        return not tokens.expires_within(self.leeway, self.clock())

    @staticmethod
    def _refresh_key(tokens: TokenSet) -> str | None:
        """What identifies a refresh for single-flight (hashed there), or ``None``."""
        if tokens.refresh_token is None:
            return None  # nothing to share: the flow raises RefreshTokenUnusable at once
        return tokens.provider + "\0" + tokens.refresh_token.get_secret_value()

    def _jwt_start(
        self, token: JWT | None, tokens: TokenSet | None, profile: Profile | None
    ) -> JWT | None:
        """``jwt()``'s result when no refresh is due (sign-in, a valid token); else ``None``."""
        if tokens is not None:
            return self._call_jwt(token, "signIn", tokens=tokens, profile=profile)
        if token is None:
            raise ConfigurationError("jwt() needs the current token, or tokens on sign-in")
        now = self.clock()
        expires_at = token.tokens.expires_at  # TokenSet.expires_within, inlined: every request
        due = expires_at is not None and expires_at - self.leeway <= now
        if not due or token.error == REFRESH_ACCESS_TOKEN_ERROR:
            call = self._hook("keyturn_jwt")
            if call is callbacks.keyturn_jwt:
                return token  # what keyturn's default returns on a read, without the call
            result: JWT = call(
                token=token, trigger="read", tokens=None, profile=None, error=None, now=int(now)
            )
            return result
        return None

    # -- no I/O ---------------------------------------------------------------------------

    def session(self, token: JWT) -> Session:
        """What the app shows: runs the ``keyturn_session`` callback. No I/O."""
        call = self._hook("keyturn_session")
        if call is callbacks.keyturn_session:
            return Session.from_jwt(token)  # keyturn's default, one call shorter
        session: Session = call(token=token)
        return session


class Keyturn(BaseKeyturn[SyncHttpClient]):
    """The blocking client.

    :param credentials: ``{"google": (client_id, client_secret)}``; providers not given here
        are read from ``KEYTURN_<PROVIDER>_CLIENT_ID`` / ``KEYTURN_<PROVIDER>_CLIENT_SECRET``.
    :param http_client: an ``httpx.Client`` or ``httpx2.Client`` (keyturn makes its own
        with a 10 s timeout otherwise, when it first needs one, and closes only that one).
    :param options: ``leeway``, ``clock``, ``plugin_manager``, ``environ``, ``providers``,
        ``refresh_reuse_window``: see :class:`ClientOptions`.
    """

    def _new_http_client(self) -> SyncHttpClient:
        import httpx  # here: an app that never sends a request never loads httpx

        return httpx.Client(timeout=DEFAULT_TIMEOUT)

    def close(self) -> None:
        """Close the HTTP client if keyturn created it (and make none if it has not yet).

        Requests sent afterwards raise ``RuntimeError``, as with a closed ``httpx.Client``;
        operations that need no request (``jwt()`` on a valid token) still work.
        """
        client = self._client_to_close(ClosedHttpClient())
        if client is not None:
            cast("httpx.Client", client).close()

    def __enter__(self) -> Keyturn:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, operation: Operation[T]) -> T:
        return run(operation, self.http_client)

    def exchange_code(
        self,
        provider: str | ProviderSpec | AuthorizationRequest,
        code: str,
        *,
        redirect_uri: str | None = None,
        code_verifier: str | None = None,
    ) -> TokenSet:
        """Exchange the callback's code for tokens.

        Pass the stored :class:`AuthorizationRequest` as ``provider`` and keyturn sends its
        redirect URI and PKCE verifier, and checks the ID token (OpenID Connect Core
        §3.1.3.7: nonce, audience, ``azp``, issuer, subject, and ``exp`` and ``iat`` on
        ``clock`` with ``leeway``; see :mod:`keyturn.idtoken`).

        :raises IdTokenError: the ID token fails a check.
        :raises ProviderError: the provider refused or could not be reached.
        """
        return self._run(
            self.exchange_code_op(
                provider, code, redirect_uri=redirect_uri, code_verifier=code_verifier
            )
        )

    def refresh(self, tokens: TokenSet) -> TokenSet:
        """Refresh the access token; the result keeps the old refresh token unless rotated.

        Threads refreshing the same refresh token at once share one request, and within
        ``refresh_reuse_window`` seconds a caller with the old refresh token gets the same
        result (see the module docs).

        :raises RefreshTokenUnusable: no refresh token, or it has expired (nothing is sent).
        :raises RefreshIdTokenError: the response carries a new ID token that fails the
            sign-in checks or names another issuer, subject or audience than the old one
            (OpenID Connect Core §12.2); permanent, and the response is not used.
        :raises ProviderError: the refresh failed; see ``permanent``.
        """
        return self._run(self.refresh_op(tokens))

    def userinfo(self, tokens: TokenSet) -> Profile:
        """Fetch the user's normalised profile."""
        return self._run(self.userinfo_op(tokens))

    def revoke(self, tokens: TokenSet) -> None:
        """Revoke the grant at the provider (already-dead tokens count as revoked)."""
        self._run(self.revoke_op(tokens))

    def jwt(
        self,
        token: JWT | None = None,
        *,
        tokens: TokenSet | None = None,
        profile: Profile | None = None,
    ) -> JWT:
        """Run the ``jwt`` callback: sign-in when ``tokens`` is given, else read or refresh.

        Refresh failures never raise here: they are recorded in the returned JWT. A due
        token is refreshed through :meth:`refresh`, so concurrent requests carrying the same
        token refresh it once.
        """
        done = self._jwt_start(token, tokens, profile)
        if done is not None:
            return done
        assert token is not None
        return self._run(self._jwt_refresh_op(token))

    def sign_in(
        self,
        request: AuthorizationRequest,
        query: Mapping[str, str],
        *,
        fetch_profile: bool = True,
    ) -> JWT:
        """Finish a sign-in: verify the callback, exchange the code, fetch the profile, run jwt.

        :raises CallbackError: the callback is forged, stale or carries an error; or
            (:class:`IdTokenError`) the ID token fails a check, or the profile's ``sub`` is
            not the ID token's (OpenID Connect Core §5.3.2).
        :raises ProviderError: the exchange or the profile request failed.
        """
        return self._run(self.sign_in_op(request, query, fetch_profile=fetch_profile))


class AsyncKeyturn(BaseKeyturn[AsyncHttpClient]):
    """The async client: the same methods as :class:`Keyturn`, as coroutines.

    :param http_client: an ``httpx.AsyncClient`` or ``httpx2.AsyncClient``.

    Other parameters as for :class:`Keyturn`.
    """

    def _new_http_client(self) -> AsyncHttpClient:
        import httpx

        return httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)

    async def aclose(self) -> None:
        """Close the HTTP client if keyturn created it; as :meth:`Keyturn.close`."""
        client = self._client_to_close(AsyncClosedHttpClient())
        if client is not None:
            await cast("httpx.AsyncClient", client).aclose()

    async def __aenter__(self) -> AsyncKeyturn:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _run(self, operation: Operation[T]) -> T:
        return await arun(operation, self.http_client)

    async def exchange_code(
        self,
        provider: str | ProviderSpec | AuthorizationRequest,
        code: str,
        *,
        redirect_uri: str | None = None,
        code_verifier: str | None = None,
    ) -> TokenSet:
        """See :meth:`Keyturn.exchange_code`."""
        return await self._run(
            self.exchange_code_op(
                provider, code, redirect_uri=redirect_uri, code_verifier=code_verifier
            )
        )

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        """See :meth:`Keyturn.refresh`; tasks (of any event loop) share one request.

        A caller cancelled while the request is out does not cancel the request: its
        outcome still reaches the other callers and the reuse window.
        """
        return await self._run(self.refresh_op(tokens))

    async def userinfo(self, tokens: TokenSet) -> Profile:
        """See :meth:`Keyturn.userinfo`."""
        return await self._run(self.userinfo_op(tokens))

    async def revoke(self, tokens: TokenSet) -> None:
        """See :meth:`Keyturn.revoke`."""
        await self._run(self.revoke_op(tokens))

    async def jwt(
        self,
        token: JWT | None = None,
        *,
        tokens: TokenSet | None = None,
        profile: Profile | None = None,
    ) -> JWT:
        """See :meth:`Keyturn.jwt`."""
        done = self._jwt_start(token, tokens, profile)
        if done is not None:
            return done
        assert token is not None
        return await self._run(self._jwt_refresh_op(token))

    async def sign_in(
        self,
        request: AuthorizationRequest,
        query: Mapping[str, str],
        *,
        fetch_profile: bool = True,
    ) -> JWT:
        """See :meth:`Keyturn.sign_in`."""
        return await self._run(self.sign_in_op(request, query, fetch_profile=fetch_profile))
