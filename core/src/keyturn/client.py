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
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypedDict, TypeVar, Unpack, cast
from urllib.parse import urlsplit

import pluggy
from pydantic import SecretStr, ValidationError

from . import callbacks, client_auth, defaults
from . import pkce as pkce_module
from .callback_user import USER_FIELD, asks_form_post, read_user_field, with_user_field
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
    UnknownSigningKeyError,
    VerifiedIdToken,
    check_id_token,
    check_same_session,
    check_same_subject,
    check_token_hashes,
    unverified_claims,
    verify_signature,
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

    from .documents import Document, DocumentCache, Documents
    from .jwks import KeySet, KeySets

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
    :param settings: the app's deployment at providers that serve each customer apart
        (tenant, domain, realm, team), by provider id:
        ``{"auth0": {"domain": "acme.eu.auth0.com"}}``. Missing values are read from
        ``KEYTURN_<ID>_<NAME>`` in ``environ``; see :mod:`keyturn.deployment`.
    :param document_cache: where discovery documents and key sets are kept (a
        :class:`~keyturn.documents.DocumentCache`); one per client in memory by default.
        Pass one shared by processes to fetch each document once between them.
    """

    leeway: float
    clock: Callable[[], float]
    plugin_manager: KeyturnPluginManager | None
    environ: Mapping[str, str] | None
    providers: Sequence[ProviderSpec]
    refresh_reuse_window: float
    settings: Mapping[str, Mapping[str, Any]]
    document_cache: DocumentCache | None


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


def _check_settings(
    settings: Mapping[str, Mapping[str, Any]], registered: Mapping[str, RegisteredProvider]
) -> dict[str, dict[str, Any]]:
    """The ``settings=`` option, refused early when it names what cannot take settings."""
    checked: dict[str, dict[str, Any]] = {}
    for provider, values in settings.items():
        found = registered.get(provider)
        if found is None:
            raise UnknownProviderError(provider, list(registered))
        if not isinstance(values, Mapping):
            raise ConfigurationError(f"settings[{provider!r}] must be a mapping of name to value")
        if not found.spec.settings and values:
            raise ConfigurationError(f"{provider!r} has no deployment settings")
        checked[provider] = dict(values)
    return checked


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


class _OnDemand:
    """Stands for a client's HTTP client and takes it (making keyturn's own the first time)
    only when a request is sent."""

    __slots__ = ("_owner",)

    def __init__(self, owner: BaseKeyturn[Any]) -> None:
        self._owner = owner

    def request(self, method: str, url: str, **options: Any) -> Any:
        return self._owner.http_client.request(method, url, **options)

    def __repr__(self) -> str:
        return f"<the HTTP client of {type(self._owner).__name__}, taken on demand>"


class _Hooks(Protocol):
    """Hook name -> how to call it."""

    def __getitem__(self, name: str, /) -> Callable[..., Any]: ...


class _PluggyHooks:
    """A plain pluggy manager's hook callers by name (it keeps no plans)."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._relay = pm.hook

    def __getitem__(self, name: str) -> Callable[..., Any]:
        return cast(Callable[..., Any], getattr(self._relay, name))


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
        self._hooks: _Hooks = pm.plans if isinstance(pm, KeyturnPluginManager) else _PluggyHooks(pm)
        self._environ = os.environ if environ is None else environ
        self._registered = collect_providers(self.plugin_manager, self._environ)
        self._registered.update(_local_providers(options.get("providers", ()), self._registered))
        self._settings = _check_settings(options.get("settings") or {}, self._registered)
        #: provider id -> (the registered spec, the spec made for this deployment from it)
        self._deployed: dict[str, tuple[ProviderSpec, ProviderSpec]] = {}
        self._credentials = {
            name: _coerce_credentials(name, value) for name, value in (credentials or {}).items()
        }
        self._owns_client = http_client is None
        # keyturn's own client is made on first use (see http_client): building one loads
        # httpcore and a TLS context with the system's certificates, which costs more than
        # importing keyturn, and a client that only reads tokens never needs it.
        self._http_client: H | None = http_client
        self._http_client_lock = threading.Lock()
        self._sender = cast(H, _OnDemand(self))
        self._document_cache = options.get("document_cache")
        # Made on first use (keyturn.documents, keyturn.jwks): a client of providers without
        # discovery or keys never loads them.
        self._documents: Documents | None = None
        self._key_sets: KeySets | None = None
        #: provider id -> (the spec, the discovery document's text, the spec resolved from
        #: it): a spec is resolved once per document text.
        self._resolved: dict[str, tuple[ProviderSpec, str, ProviderSpec]] = {}

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

    @property
    def sender(self) -> H:
        """What operations of this client are driven with: :attr:`http_client`, taken only
        when a request is sent.

        An operation that sends nothing (a valid session read, a refresh answered from the
        reuse window) then never makes keyturn's own HTTP client. For the drivers of code
        built on the client (:mod:`keyturn.web`, :mod:`keyturn.stores`):
        ``run(operation, client.sender)``.
        """
        return self._sender

    @property
    def documents(self) -> Documents:
        """Where this client fetches and keeps discovery documents and key sets.

        Made on first use; see :mod:`keyturn.documents` for lifetimes and sharing.
        """
        documents = self._documents
        if documents is None:
            with self._http_client_lock:
                documents = self._documents
                if documents is None:
                    from .documents import Documents
                    from .jwks import KeySets

                    documents = Documents(self._document_cache, self.clock)
                    self._key_sets = KeySets(documents, self.clock)
                    self._documents = documents
        return documents

    @property
    def key_sets(self) -> KeySets:
        """This client's key sets (:class:`~keyturn.jwks.KeySets`): fetched, kept, refetched."""
        _ = self.documents  # makes both
        assert self._key_sets is not None
        return self._key_sets

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

    def provider(self, provider: str | ProviderSpec, *, deployed: bool = True) -> ProviderSpec:
        """The spec of an installed provider, made for this app's deployment.

        A provider whose spec lists ``settings`` (tenant, domain, realm...) is returned with
        the app's values filled in (see :mod:`keyturn.deployment`), made once per client.

        :param deployed: ``False`` for the spec as its plugin registered it, placeholders
            and all (to point it at a test server before any setting is known).
        :raises UnknownProviderError: no plugin registers that id.
        :raises ConfigurationError: a setting the provider needs has no value, or a value
            is not usable.
        """
        if isinstance(provider, ProviderSpec):
            return self._deploy(provider) if provider.settings and deployed else provider
        registered = self._registered.get(provider)
        if registered is None:
            raise UnknownProviderError(provider, list(self._registered))
        spec = registered.spec
        if not spec.settings or not deployed:
            return spec
        memo = self._deployed.get(spec.id)
        if memo is not None and memo[0] is spec:
            return memo[1]
        made = self._deploy(spec)
        self._deployed[spec.id] = (spec, made)
        return made

    def _deploy(self, spec: ProviderSpec) -> ProviderSpec:
        """``spec`` for this app's deployment (see :mod:`keyturn.deployment`)."""
        from .deployment import setting_values

        values = setting_values(spec, self._settings.get(spec.id), self._environ)
        deployed = self._hooks["keyturn_deploy"](provider=spec, settings=values)
        if not isinstance(deployed, ProviderSpec) or deployed.id != spec.id:
            raise PluginError(
                f"keyturn_deploy for {spec.id!r} must return a ProviderSpec with the same id"
            )
        if deployed.needs_deployment:
            raise PluginError(f"keyturn_deploy for {spec.id!r} left a {{setting}} in a URL")
        return deployed

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
        secret_hook = self._hooks["keyturn_client_secret"]
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

        No I/O. A provider with a ``discovery_url`` needs its document: :class:`Keyturn`
        fetches it here when it has none yet; :class:`AsyncKeyturn` cannot, so ``await
        discover(provider)`` first (at start-up, say), or use :meth:`authorize_url_op`.
        The last document read serves until an operation with I/O reads it again.

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
        :raises ConfigurationError: an unknown or reserved parameter, a bad redirect URI, or
            (async client) a discovery document not read yet.
        """
        spec = self._resolved_now(self.provider(provider))
        return self._authorization(
            spec, redirect_uri, scopes=scopes, state=state, pkce=pkce, nonce=nonce, **params
        )

    def authorize_url_op(
        self,
        provider: str | ProviderSpec,
        redirect_uri: str,
        *,
        scopes: Sequence[str] | None = None,
        state: str | None = None,
        pkce: bool = True,
        nonce: str | None = None,
        **params: str,
    ) -> Operation[AuthorizationRequest]:
        """:meth:`authorize_url` as an operation: resolves the provider's spec first
        (:meth:`resolve_op`, which may fetch its discovery document), then builds the URL."""
        spec = yield from self.resolve_op(provider)
        return self._authorization(
            spec, redirect_uri, scopes=scopes, state=state, pkce=pkce, nonce=nonce, **params
        )

    def _resolved_now(self, spec: ProviderSpec) -> ProviderSpec:
        """``spec`` resolved from the discovery document read last, without I/O.

        :raises ConfigurationError: the spec has a ``discovery_url`` and no document was
            read for it yet.
        """
        if spec.discovery_url is None:
            return spec
        memo = self._resolved.get(spec.id)
        if memo is None or not (memo[0] is spec or memo[0] == spec):
            raise ConfigurationError(
                f"{spec.id}: its discovery document has not been read yet: await "
                f"discover({spec.id!r}) first (or use authorize_url_op())"
            )
        return memo[2]

    def _authorization(
        self,
        spec: ProviderSpec,
        redirect_uri: str,
        *,
        scopes: Sequence[str] | None,
        state: str | None,
        pkce: bool,
        nonce: str | None,
        **params: str,
    ) -> AuthorizationRequest:
        """:meth:`authorize_url` for a resolved spec."""
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
        url = self._hooks["keyturn_authorize_url"](
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
                # A templated issuer names no one issuer a callback's iss could be
                # compared with; the ID token's iss is checked against it instead.
                "issuer": None if spec.issuer_claims else spec.issuer,
                "issuer_required": spec.authorization_response_iss,
                "created_at": int(self.clock()),
            }
        )

    # -- operations: everything that does I/O, written once ---------------------------------

    def _hook_flow(self, hook: str, spec: ProviderSpec, operation: str, **kwargs: Any) -> Flow[Any]:
        flow = self._hooks[hook](provider=spec, **kwargs)
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

    # -- discovery and keys ---------------------------------------------------------------

    def resolve_op(self, provider: str | ProviderSpec) -> Operation[ProviderSpec]:
        """The provider's spec, completed from its discovery document when it has a
        ``discovery_url`` (see :func:`keyturn.discovery.resolve_spec`); else the spec as it is,
        with no effect.

        The document is fetched through :attr:`documents` (cached, one request for
        concurrent callers). Every operation resolves before it calls a hook, so hooks always
        receive a resolved spec.

        :raises UnknownProviderError: no such provider.
        :raises ConfigurationError: the document cannot be used (naming the field), or names
            another issuer than the spec's.
        :raises ProviderError: it cannot be fetched (``TransportError``, or a transient HTTP
            status), and no stale copy stands in.
        """
        spec = self.provider(provider)
        if spec.discovery_url is None:
            return spec
        from .discovery import (
            DISCOVERY,
            check_issuer,
            check_url,
            expected_issuers,
            parse_metadata,
            resolve_spec,
        )

        url = spec.discovery_url
        check_url(spec.id, "discovery_url", url)
        expected_issuers(spec)  # a spec that cannot name its issuer fails before any request
        document = yield from self.documents.get_op(url, DISCOVERY, spec.id, parse_metadata)
        memo = self._resolved.get(spec.id)
        if (
            memo is not None
            and (memo[1] is document.text or memo[1] == document.text)
            and (memo[0] is spec or memo[0] == spec)
        ):
            return memo[2]
        check_issuer(spec, document.value)
        resolved = resolve_spec(spec, document.value)
        self._resolved[spec.id] = (spec, document.text, resolved)
        return resolved

    def discover_op(self, provider: str | ProviderSpec) -> Operation[ProviderSpec]:
        """The operation behind :meth:`Keyturn.discover`: :meth:`resolve_op`, then the key set
        read (when the resolved spec has a ``jwks_uri``) and checked to hold a usable key."""
        spec = yield from self.resolve_op(provider)
        if spec.jwks_uri is not None:
            yield from self._key_set_op(spec)
        return spec

    def _key_set_op(self, spec: ProviderSpec) -> Operation[Document[KeySet]]:
        """The provider's key set (cached; fetched once for concurrent callers).

        :raises ConfigurationError: ``jwks_uri`` is not an https URL.
        :raises KeySetError: the set holds no usable key.
        :raises ProviderError: it cannot be fetched.
        """
        from .discovery import check_url

        uri = spec.jwks_uri
        assert uri is not None
        check_url(spec.id, "jwks_uri", uri)
        return (yield from self.key_sets.get_op(spec.id, uri))

    def _verify_op(
        self,
        spec: ProviderSpec,
        id_token: str,
        *,
        access_token: str | None,
        code: str | None,
        keys: Document[KeySet] | None = None,
    ) -> Operation[VerifiedIdToken]:
        """Verify the ID token's signature with the provider's keys, and its token hashes.

        An unknown ``kid`` fetches the key set again, once, unless this operation fetched
        it already or the cooldown holds (see :mod:`keyturn.jwks`).

        :param keys: the key set as this operation read it before (to send nothing twice).

        :raises IdTokenError: the signature or a hash does not verify.
        :raises KeySetError: the key set holds no usable key.
        :raises ProviderError: the key set cannot be fetched.
        """
        uri = spec.jwks_uri
        assert uri is not None
        document = keys if keys is not None else (yield from self._key_set_op(spec))
        algorithms = spec.id_token_signing_algs
        try:
            verified = verify_signature(id_token, document.value, algorithms)
        except UnknownSigningKeyError:
            if document.fetched:
                raise
            document = yield from self.key_sets.refetch_op(spec.id, uri)
            verified = verify_signature(id_token, document.value, algorithms)
        check_token_hashes(verified, access_token=access_token, code=code)
        return verified

    # -- code exchange, refresh, userinfo, revocation -----------------------------------------

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
            named: str | ProviderSpec = request.provider
        else:
            named = cast(str | ProviderSpec, provider)
        if not redirect_uri:
            raise ConfigurationError("exchange_code needs the redirect_uri of the authorize URL")
        if not code:
            raise ConfigurationError("exchange_code needs a non-empty code")
        spec = yield from self.resolve_op(named)
        return (yield from self._exchange_op(spec, request, code, redirect_uri, code_verifier))

    def _exchange_op(
        self,
        spec: ProviderSpec,
        request: AuthorizationRequest | None,
        code: str,
        redirect_uri: str,
        code_verifier: str | None,
    ) -> Operation[TokenSet]:
        """The code exchange with a resolved spec, and the checks of the ID token it brings.

        The key set is read before the code is sent: a code is single-use, so a key set that
        cannot be fetched is found out while the code is still good.
        """
        credentials = self._request_credentials(spec)
        keys = None if spec.jwks_uri is None else (yield from self._key_set_op(spec))
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
        if tokens.id_token is not None:
            id_token = tokens.id_token.get_secret_value()
            if spec.jwks_uri is not None:
                yield from self._verify_op(
                    spec,
                    id_token,
                    access_token=tokens.access_token.get_secret_value(),
                    code=code,
                    keys=keys,
                )
            if request is not None:
                self._check_id_token(
                    spec,
                    credentials,
                    id_token,
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
            issuer_claims=spec.issuer_claims,
            issuer_claim_values=spec.issuer_claim_values,
        )

    def refresh_op(self, tokens: TokenSet) -> Operation[TokenSet]:
        """The operation behind :meth:`Keyturn.refresh`: one request per refresh token."""
        key = self._refresh_key(tokens)
        if key is None:
            return (yield from self._refresh_flow(tokens))
        return (yield from Shared(self.single_flight, key, lambda: self._refresh_flow(tokens)))

    def _refresh_flow(self, tokens: TokenSet) -> Operation[TokenSet]:
        try:
            return (yield from self._refresh_flow_unlogged(tokens))
        except ProviderError as exc:
            _log_refresh_failure(exc)
            raise

    def _refresh_flow_unlogged(self, tokens: TokenSet) -> Operation[TokenSet]:
        if tokens.refresh_token is None:
            raise RefreshTokenUnusable(
                provider=tokens.provider,
                operation="refresh",
                error="no_refresh_token",
                description="the tokens carry no refresh token",
                permanent=True,
            )
        if tokens.refresh_token_expired(self.clock()):
            raise RefreshTokenUnusable(
                provider=tokens.provider,
                operation="refresh",
                error="refresh_token_expired",
                description="the refresh token is past its own expiry",
                permanent=True,
            )
        spec = yield from self.resolve_op(tokens.provider)
        credentials = self._request_credentials(spec)
        # Before the refresh token is sent: a rotated one must not be lost to a key set that
        # cannot be fetched afterwards.
        keys = None if spec.jwks_uri is None else (yield from self._key_set_op(spec))
        result: TokenSet = yield from self._hook_flow(
            "keyturn_refresh",
            spec,
            "refresh",
            credentials=credentials,
            tokens=tokens,
            clock=self.clock,
        )
        if result.id_token is not None and result.id_token != tokens.id_token:
            yield from self._check_refreshed_id_token(spec, credentials, tokens, result, keys)
        elif tokens.id_token_identity is not None and result.id_token_identity is None:
            # No new ID token: whom the session's was about still holds for the next one.
            result = result.model_copy(update={"id_token_identity": tokens.id_token_identity})
        return result

    def _check_refreshed_id_token(
        self,
        spec: ProviderSpec,
        credentials: ClientCredentials,
        tokens: TokenSet,
        result: TokenSet,
        keys: Document[KeySet] | None,
    ) -> Operation[None]:
        """OpenID Connect Core §12.2: a new ID token passes the sign-in checks (its signature
        when the spec has a ``jwks_uri``, no nonce) and names the same issuer, subject and
        audience as the one it replaces (or as the identity kept in its place,
        ``tokens.id_token_identity``), if that one can be read; else the refresh fails for
        good and the old tokens stay.

        :raises RefreshIdTokenError: ``invalid_id_token`` or ``id_token_mismatch``.
        :raises ProviderError: the key set cannot be fetched or used (transient).
        """
        assert result.id_token is not None
        id_token = result.id_token.get_secret_value()
        code = "invalid_id_token"
        try:
            if spec.jwks_uri is not None:
                yield from self._verify_op(
                    spec,
                    id_token,
                    access_token=result.access_token.get_secret_value(),
                    code=None,
                    keys=keys,
                )
            claims = self._check_id_token(spec, credentials, id_token, None)
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
        spec = yield from self.resolve_op(tokens.provider)
        return (yield from self._userinfo_op(spec, tokens))

    def _userinfo_op(self, spec: ProviderSpec, tokens: TokenSet) -> Operation[Profile]:
        result: Profile = yield from self._hook_flow(
            "keyturn_userinfo", spec, "userinfo", tokens=tokens
        )
        return result

    def revoke_op(self, tokens: TokenSet) -> Operation[None]:
        """The operation behind :meth:`Keyturn.revoke`."""
        spec = yield from self.resolve_op(tokens.provider)
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
        spec = yield from self.resolve_op(request.provider)
        tokens = yield from self._exchange_op(
            spec,
            request,
            code,
            request.redirect_uri,
            request.code_verifier.get_secret_value() if request.code_verifier else None,
        )
        profile = None
        if fetch_profile and spec.userinfo_endpoint is not None:
            profile = yield from self._userinfo_op(spec, tokens)
            userinfo_sub = profile.raw.get("sub")
            if tokens.id_token is not None and userinfo_sub is not None:
                # OpenID Connect Core §5.3.2: never sign in as another subject than the ID
                # token's (the exchange has checked the ID token already).
                claims = unverified_claims(tokens.id_token.get_secret_value())
                check_same_subject(claims, userinfo_sub)
        elif fetch_profile and tokens.id_token is not None:
            # No userinfo endpoint (Apple): the profile comes from the ID token the exchange
            # has just verified; keyturn's default keyturn_userinfo reads its claims.
            profile = yield from self._userinfo_op(spec, tokens)
        if profile is not None and asks_form_post(spec):
            # The name a form_post provider (Apple) sends once, beside the code: display
            # only, never identity (see keyturn.callback_user).
            user = read_user_field(spec.id, query.get(USER_FIELD))
            profile = with_user_field(profile, user)
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
        result: JWT = self._hooks["keyturn_jwt"](
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
            call = self._hooks["keyturn_jwt"]
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
        call = self._hooks["keyturn_session"]
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
        return run(operation, self._sender)

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

        A provider with a ``discovery_url`` is resolved first (:meth:`discover`): its
        document is fetched when none is cached; any other provider needs no I/O. The rest
        is :meth:`BaseKeyturn.authorize_url`.

        :raises ConfigurationError: an unknown or reserved parameter, a bad redirect URI, or
            a discovery document that cannot be used.
        :raises ProviderError: the discovery document cannot be fetched.
        """
        spec = self.provider(provider)
        if spec.discovery_url is None:  # no I/O: keyturn's own HTTP client is not even made
            return self._authorization(
                spec, redirect_uri, scopes=scopes, state=state, pkce=pkce, nonce=nonce, **params
            )
        return self._run(
            self.authorize_url_op(
                spec, redirect_uri, scopes=scopes, state=state, pkce=pkce, nonce=nonce, **params
            )
        )

    def discover(self, provider: str | ProviderSpec) -> ProviderSpec:
        """Read the provider's discovery document and key set now, and return its resolved spec.

        For a spec without ``discovery_url`` or ``jwks_uri``, no I/O. Call it at start-up to
        find a misconfigured provider before the first user does, and to warm the caches.

        :raises ConfigurationError: the document cannot be used (the field is named).
        :raises KeySetError: the key set holds no usable key.
        :raises ProviderError: a document cannot be fetched.
        """
        spec = self.provider(provider)
        if spec.discovery_url is None and spec.jwks_uri is None:
            return spec
        return self._run(self.discover_op(spec))

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

        :param request: the authorization request the sign-in started with.
        :param query: the callback's parameters: its query string, or for a provider that
            posts its callback (``response_mode=form_post``, Apple) the posted form fields.
            A provider without a userinfo endpoint gets its profile from the verified ID
            token; a ``form_post`` provider's ``user`` field fills the profile's name (see
            :mod:`keyturn.callback_user`; never identity).
        :param fetch_profile: read the user's profile (userinfo, or the ID token's claims).
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
        return await arun(operation, self._sender)

    async def discover(self, provider: str | ProviderSpec) -> ProviderSpec:
        """See :meth:`Keyturn.discover`. Afterwards :meth:`authorize_url` (which cannot await)
        builds URLs for this provider."""
        spec = self.provider(provider)
        if spec.discovery_url is None and spec.jwks_uri is None:
            return spec
        return await self._run(self.discover_op(spec))

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
