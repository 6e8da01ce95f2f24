"""Every error keyturn raises, under one base class.

The tree::

    KeyturnError
    ├── ConfigurationError          bad arguments or missing settings (fix the code or env)
    │   └── UnknownProviderError    no installed plugin registers that provider id
    ├── PluginError                 a plugin broke the contract (duplicate id, unknown hook)
    ├── TokenNotFoundError          a token store holds nothing for that key (sign in first)
    ├── LockTimeoutError            another caller held a key's refresh lease too long
    ├── CallbackError               the redirect back from the provider is unusable
    │   ├── StateMismatchError      `state` missing or not the one we sent (possible CSRF)
    │   ├── IssuerMismatchError     `iss` names another issuer (RFC 9207 mix-up defence)
    │   ├── MissingCodeError        no `code` and no `error` in the callback
    │   ├── AuthorizationDenied     the provider sent `error=...` (access_denied and friends)
    │   └── IdTokenError*           the ID token fails the sign-in checks (signature, nonce,
    │                               aud, azp, iss, sub, exp, iat, at_hash, c_hash), or
    │                               userinfo names another `sub`
    └── ProviderError               talking to the provider's endpoints failed
        ├── TransportError          no usable HTTP answer: DNS, connect, timeout, reset
        ├── InvalidResponseError    an answer, but not a usable one: HTML 502, no access_token
        │   └── KeySetError         the provider's key set (`jwks_uri`) has no usable key
        ├── OAuthError              the provider answered with an OAuth `error` code
        ├── RefreshTokenUnusable    refresh not attempted: no refresh token, or it has expired
        └── RefreshIdTokenError     a refresh returned an ID token of another session (iss,
                                    sub, aud) or one that fails the checks; permanent

``*``: defined next to the code that raises it (:mod:`keyturn.idtoken`).

keyturn's tools, which are distributions of their own, derive their errors from
:class:`KeyturnError` too: ``RecordingError`` and ``ScaffoldError`` in pytest-keyturn
(``keyturn record``, ``keyturn new-provider``); ``AuthorizeRefused`` and ``DemoFailure`` in
keyturn-emulator. The library never imports them.

Every :class:`ProviderError` says whether it is ``permanent``. A permanent failure will not go
away by retrying (the grant is revoked, the client is misconfigured): the user has to sign in
again. A transient one (network trouble, 5xx, 429) may succeed on the next try, and the
session stays usable until the access token expires.

A discovery document that cannot be used (issuer mismatch, a required field missing, an
endpoint over plain http, HTML instead of JSON) is a :class:`ConfigurationError` naming the
field: the provider's settings, or the app's, must change.

No message here ever contains a token, a code or a client secret: errors carry the provider
id, the operation, the HTTP status and the provider's own error code and description.
"""

from __future__ import annotations

__all__ = [
    "AuthorizationDenied",
    "CallbackError",
    "ConfigurationError",
    "InvalidResponseError",
    "IssuerMismatchError",
    "KeySetError",
    "KeyturnError",
    "LockTimeoutError",
    "MissingCodeError",
    "OAuthError",
    "PluginError",
    "ProviderError",
    "RefreshIdTokenError",
    "RefreshTokenUnusable",
    "StateMismatchError",
    "TokenNotFoundError",
    "TransportError",
    "UnknownProviderError",
]


class KeyturnError(Exception):
    """Base class of every error keyturn raises."""

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take other arguments than their message; pickle (multiprocessing,
        # caches) rebuilds them from their attributes instead of calling __init__ again.
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))


def _rebuild(
    cls: type[KeyturnError], args: tuple[object, ...], state: dict[str, object]
) -> KeyturnError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class TokenNotFoundError(KeyturnError, LookupError):
    """A token store holds no tokens for this key: the user has to sign in first."""


class LockTimeoutError(KeyturnError, TimeoutError):
    """Another caller held the refresh lease on a key for longer than the manager waits."""


class ConfigurationError(KeyturnError):
    """Bad arguments or missing settings: the calling code or its environment must change."""


class UnknownProviderError(ConfigurationError):
    """No installed plugin registers a provider with this id."""

    def __init__(self, provider: str, known: list[str]) -> None:
        self.provider = provider
        self.known = sorted(known)
        shown = ", ".join(self.known) or "none"
        super().__init__(
            f"unknown provider {provider!r}; installed providers: {shown} "
            f"(install keyturn-{provider} or check KEYTURN_DISABLE_PLUGINS)"
        )


class PluginError(KeyturnError):
    """A plugin broke the contract: a duplicate provider id, a hook that is not in the spec."""


class CallbackError(KeyturnError):
    """The redirect back from the provider cannot be turned into an authorization code."""


class StateMismatchError(CallbackError):
    """The callback's ``state`` is missing or differs from the one sent: a possible CSRF."""


class IssuerMismatchError(CallbackError):
    """The callback's ``iss`` names another issuer than the provider's (RFC 9207)."""


class MissingCodeError(CallbackError):
    """The callback carries neither ``code`` nor ``error``."""


class AuthorizationDenied(CallbackError):
    """The provider redirected back with ``error=...`` instead of a code.

    :ivar error: the OAuth error code, e.g. ``access_denied``.
    :ivar description: the provider's ``error_description``, if any.
    """

    def __init__(self, provider: str, error: str, description: str | None = None) -> None:
        self.provider = provider
        self.error = error
        self.description = description
        detail = f": {description}" if description else ""
        super().__init__(f"{provider}: authorization failed with {error!r}{detail}")


class ProviderError(KeyturnError):
    """A call to one of the provider's endpoints failed.

    :ivar provider: the provider id, e.g. ``"google"``.
    :ivar operation: ``exchange_code``, ``refresh``, ``userinfo`` or ``revoke``.
    :ivar status: the HTTP status, or ``None`` when no response arrived.
    :ivar error: the OAuth error code (``invalid_grant``...) or a keyturn code
        (``network_error``, ``invalid_response``, ``refresh_token_expired``...).
    :ivar description: the provider's ``error_description``, if any.
    :ivar permanent: ``True`` when retrying cannot help and the user must sign in again.
    :ivar details: other short text fields of the error body (``error_uri``, Google's
        ``error_subtype`` such as ``rapt_required``); never part of the message.
    :ivar retry_after: seconds the provider asked to wait before the next request (its
        ``Retry-After`` header on a rate limit or an outage, at most an hour), or ``None``.
    """

    def __init__(
        self,
        *,
        provider: str,
        operation: str,
        error: str,
        permanent: bool,
        status: int | None = None,
        description: str | None = None,
        details: dict[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.provider = provider
        self.retry_after = retry_after
        self.operation = operation
        self.error = error
        self.permanent = permanent
        self.status = status
        self.description = description
        self.details = dict(details or {})
        super().__init__(self._message())

    def _message(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        detail = f": {self.description}" if self.description else ""
        kind = "permanent" if self.permanent else "transient"
        return f"{self.provider} {self.operation} failed{status}, {kind}: {self.error}{detail}"


class TransportError(ProviderError):
    """No usable HTTP answer arrived: DNS failure, refused connection, timeout, reset.

    Always transient.
    """


class InvalidResponseError(ProviderError):
    """An HTTP answer arrived but cannot be used: not JSON, HTML error page, no access token.

    Transient for 5xx, 429 and 408 and for 2xx bodies that cannot be read (a proxy in the way);
    permanent for other 4xx.
    """


class KeySetError(InvalidResponseError):
    """The provider's JSON Web Key Set cannot verify ID tokens.

    It is not a JWK Set (``{"keys": [...]}``), or none of its keys can verify a signature:
    every key is for encryption, of an unknown type, symmetric, too weak, or unreadable (see
    :mod:`keyturn.jwks`). ``operation`` is ``jwks`` and ``error`` is ``invalid_jwks``.
    Transient: the provider may be in the middle of a key rotation, so the next sign-in or
    refresh fetches the set again (an unusable set is never cached). The description says
    why the keys were skipped, never a key.
    """


class OAuthError(ProviderError):
    """The provider answered with an OAuth ``error`` code (RFC 6749 §5.2).

    Whether it is permanent comes from the provider's :class:`~keyturn.ProviderSpec`
    (``permanent_errors`` / ``transient_errors``) and, for codes it does not list, from the
    HTTP status.
    """


class RefreshTokenUnusable(ProviderError):
    """A refresh was not attempted: there is no refresh token, or it is past its own expiry.

    Always permanent; no request is sent. ``error`` is ``no_refresh_token`` or
    ``refresh_token_expired``.
    """


class RefreshIdTokenError(ProviderError):
    """A refresh answered with an ID token keyturn refuses (OpenID Connect Core §12.2).

    ``error`` is ``id_token_mismatch`` when the new ID token names another issuer, subject or
    audience than the one it would replace (another user's session), and ``invalid_id_token``
    when it fails the checks of a sign-in (expired, issued in the future, another client...).
    Always permanent: the response is not used, the old tokens are kept, and the user signs in
    again. ``status`` is ``None``: the check runs on the parsed tokens. The description names
    the claim, never its value.
    """
