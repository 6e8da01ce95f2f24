"""keyturn: OAuth 2.0 sign-in and token refresh for Python apps.

Apps use :class:`Keyturn` (blocking) or :class:`AsyncKeyturn`; provider plugins implement
the hooks in :mod:`keyturn.hookspecs` with :data:`hookimpl`.

Names are imported on first use: ``import keyturn`` alone loads only the hook markers
(pluggy), so a plugin module that needs ``keyturn.hookimpl``, and the pytest plugin that
keyturn registers in every environment it is installed in, stay cheap to import. The first
use of any other name (``keyturn.Keyturn``) loads httpx and pydantic as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .hookspecs import NAME, JwtTrigger, hookimpl, hookspec

if TYPE_CHECKING:
    from .client import (
        AsyncKeyturn,
        Keyturn,
    )
    from .errors import (
        AuthorizationDenied,
        CallbackError,
        ConfigurationError,
        InvalidResponseError,
        IssuerMismatchError,
        KeyturnError,
        LockTimeoutError,
        MissingCodeError,
        OAuthError,
        PluginError,
        ProviderError,
        RefreshTokenUnusable,
        StateMismatchError,
        TokenNotFoundError,
        TransportError,
        UnknownProviderError,
    )
    from .http import (
        Flow,
        HttpRequest,
        HttpResponse,
    )
    from .idtoken import (
        IdTokenError,
    )
    from .models import (
        JWT,
        REFRESH_ACCESS_TOKEN_ERROR,
        REVEAL,
        AuthorizationRequest,
        ClientCredentials,
        Profile,
        ProviderSpec,
        RefreshFailure,
        Session,
        TokenSet,
    )
    from .plugins import (
        check_pending,
        for_provider,
        get_plugin_manager,
    )

__version__ = "0.1.0"

#: Where each lazily imported name lives.
_LAZY: dict[str, str] = {
    "AsyncKeyturn": "client",
    "Keyturn": "client",
    "AuthorizationDenied": "errors",
    "CallbackError": "errors",
    "ConfigurationError": "errors",
    "InvalidResponseError": "errors",
    "IssuerMismatchError": "errors",
    "KeyturnError": "errors",
    "LockTimeoutError": "errors",
    "MissingCodeError": "errors",
    "OAuthError": "errors",
    "PluginError": "errors",
    "ProviderError": "errors",
    "RefreshTokenUnusable": "errors",
    "StateMismatchError": "errors",
    "TokenNotFoundError": "errors",
    "TransportError": "errors",
    "UnknownProviderError": "errors",
    "Flow": "http",
    "HttpRequest": "http",
    "HttpResponse": "http",
    "IdTokenError": "idtoken",
    "AuthorizationRequest": "models",
    "ClientCredentials": "models",
    "JWT": "models",
    "Profile": "models",
    "ProviderSpec": "models",
    "REFRESH_ACCESS_TOKEN_ERROR": "models",
    "REVEAL": "models",
    "RefreshFailure": "models",
    "Session": "models",
    "TokenSet": "models",
    "check_pending": "plugins",
    "for_provider": "plugins",
    "get_plugin_manager": "plugins",
}

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
    "ConfigurationError",
    "Flow",
    "HttpRequest",
    "HttpResponse",
    "IdTokenError",
    "InvalidResponseError",
    "IssuerMismatchError",
    "JwtTrigger",
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
    "RefreshTokenUnusable",
    "Session",
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
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'keyturn' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
