"""keyturn: OAuth 2.0 sign-in and token refresh for Python apps.

Apps use :class:`Keyturn` (blocking) or :class:`AsyncKeyturn`; provider plugins implement
the hooks in :mod:`keyturn.hookspecs` with :data:`hookimpl` and build their flows from
:mod:`keyturn.flows` (``docs/hooks.md`` lists what a plugin may rely on).
"""

from __future__ import annotations

from .client import AsyncKeyturn, ClientOptions, Keyturn
from .client_auth import SigningKey, sign_jwt
from .errors import (
    AuthorizationDenied,
    CallbackError,
    ConfigurationError,
    InvalidResponseError,
    IssuerMismatchError,
    KeySetError,
    KeyturnError,
    LockTimeoutError,
    MissingCodeError,
    OAuthError,
    PluginError,
    ProviderError,
    RefreshIdTokenError,
    RefreshTokenUnusable,
    StateMismatchError,
    TokenNotFoundError,
    TransportError,
    UnknownProviderError,
)
from .hookspecs import NAME, JwtTrigger, hookimpl, hookspec
from .http import Flow, HttpRequest, HttpResponse
from .idtoken import IdTokenError
from .models import (
    JWT,
    REFRESH_ACCESS_TOKEN_ERROR,
    REVEAL,
    AuthorizationRequest,
    ClientCredentials,
    DeploymentSetting,
    IdTokenIdentity,
    Profile,
    ProviderSpec,
    RefreshFailure,
    RefreshRotation,
    Session,
    TokenSet,
)
from .plugins import check_pending, for_provider, get_plugin_manager

__version__ = "0.1.0"

__all__ = [
    "JWT",
    "NAME",
    "REFRESH_ACCESS_TOKEN_ERROR",
    "REVEAL",
    "AsyncKeyturn",
    "AuthorizationDenied",
    "AuthorizationRequest",
    "CallbackError",
    "ClientCredentials",
    "ClientOptions",
    "ConfigurationError",
    "DeploymentSetting",
    "Flow",
    "HttpRequest",
    "HttpResponse",
    "IdTokenError",
    "IdTokenIdentity",
    "InvalidResponseError",
    "IssuerMismatchError",
    "JwtTrigger",
    "KeySetError",
    "Keyturn",
    "KeyturnError",
    "LockTimeoutError",
    "MissingCodeError",
    "OAuthError",
    "PluginError",
    "Profile",
    "ProviderError",
    "ProviderSpec",
    "RefreshFailure",
    "RefreshIdTokenError",
    "RefreshRotation",
    "RefreshTokenUnusable",
    "Session",
    "SigningKey",
    "StateMismatchError",
    "TokenNotFoundError",
    "TokenSet",
    "TransportError",
    "UnknownProviderError",
    "check_pending",
    "for_provider",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "sign_jwt",
]
