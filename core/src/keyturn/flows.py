"""RFC 6749 as sans-IO building blocks: request builders, response parsers, error rules.

keyturn's default hook implementations are made of these, and provider plugins reuse them to
override one quirk without rewriting the rest. Nothing here sends a request.
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from .client_auth import JWT_BEARER, JWT_METHODS
from .errors import ConfigurationError, InvalidResponseError, OAuthError, ProviderError
from .http import Flow, HttpRequest, HttpResponse
from .models import (
    _PLACEHOLDER,
    DEPLOYMENT_URL_FIELDS,
    ClientCredentials,
    Profile,
    ProviderSpec,
    TokenSet,
    storable_extra,
)

__all__ = [
    "LOOPBACK_HOSTS",
    "MAX_LIFETIME",
    "MAX_RETRY_AFTER",
    "PERMANENT_ERRORS",
    "TRANSIENT_ERRORS",
    "TRANSIENT_STATUSES",
    "authorize_url",
    "basic_auth",
    "bearer_request",
    "check_revoke_response",
    "deploy",
    "error_from_response",
    "exchange_code_flow",
    "http_error",
    "is_permanent",
    "parse_expires_in",
    "parse_token_response",
    "profile_from_oidc",
    "read_json",
    "refresh_flow",
    "retry_after",
    "revoke_flow",
    "text",
    "token_request",
    "unusable_response",
    "url_problem",
    "userinfo_flow",
]

log = logging.getLogger("keyturn")

#: The hosts where a provider URL may be plain http: a provider running on this machine.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

#: OAuth error codes after which retrying cannot help (RFC 6749 §5.2 and §4.1.2.1).
PERMANENT_ERRORS = frozenset(
    {
        "invalid_grant",
        "invalid_client",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_request",
        "invalid_scope",
        "access_denied",
        "invalid_token",
    }
)
#: OAuth error codes that describe a passing condition.
TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error", "slow_down"})
#: HTTP statuses that describe a passing condition.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

#: The longest lifetime keyturn reads from ``expires_in`` or ``refresh_token_expires_in``, in
#: seconds: ten years. Longer values are capped to it, so that every expiry computed from a
#: token stays a number each store can write (Redis refuses an EXPIRE past 64-bit
#: milliseconds, which a lifetime of 1e300 asks for). Ten years is far beyond any documented
#: lifetime, so the cap never shortens a real one:
#:
#: * GitHub's refresh tokens, 15897600 s (six months):
#:   https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens
#: * Microsoft's, 90 days:
#:   https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens
#: * Google's for an app in Testing status, 7 days:
#:   https://developers.google.com/identity/protocols/oauth2#expiration
MAX_LIFETIME = 10 * 365 * 86400

_KNOWN_TOKEN_FIELDS = frozenset(
    {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_token_expires_in",
        "scope",
        "id_token",
    }
)


def is_permanent(provider: ProviderSpec, status: int | None, error: str | None) -> bool:
    """Decide whether a failure is permanent (sign in again) or transient (retry later).

    The provider's own lists win, then RFC 6749's codes, then the HTTP status: 5xx, 429,
    425 and 408 are transient, any other status is permanent.
    """
    if error is not None:
        if error in provider.transient_errors:
            return False
        if error in provider.permanent_errors:
            return True
        if error in TRANSIENT_ERRORS:
            return False
        if error in PERMANENT_ERRORS:
            return True
    if status is None:
        return False
    return not (status in TRANSIENT_STATUSES or status >= 500)


def text(value: Any) -> str | None:
    """``value`` if it is a non-empty string, else ``None``: for optional text fields of a body.

    :param value: a field read from a decoded body (``data.get("email")``).
    :return: the text, or ``None`` for a missing, empty or non-string value.
    """
    return value if isinstance(value, str) and value else None


def unusable_response(
    provider: ProviderSpec, operation: str, response: HttpResponse, description: str
) -> InvalidResponseError:
    """The error for a response that arrived but cannot be used (no token, not JSON, no id).

    Always transient: a body that cannot be read is most often a proxy or a passing fault in
    the way, and retrying costs nothing. ``error`` is ``invalid_response``.

    :param provider: the provider's spec.
    :param operation: ``exchange_code``, ``refresh``, ``userinfo`` or ``revoke``.
    :param response: the response, for its status.
    :param description: what is wrong with it, without any value from the body.
    :return: the error, to raise.
    """
    return InvalidResponseError(
        provider=provider.id,
        operation=operation,
        error="invalid_response",
        status=response.status,
        description=description,
        permanent=False,
    )


def http_error(
    provider: ProviderSpec,
    operation: str,
    response: HttpResponse,
    description: str,
    *,
    permanent: bool | None = None,
    details: Mapping[str, str] | None = None,
) -> InvalidResponseError:
    """The error for a failed HTTP status that carries no OAuth ``error`` field.

    ``error`` is ``http_error``. By default the status decides whether it is permanent, as
    for any provider (:func:`is_permanent`: 5xx, 429, 425 and 408 transient, any other status
    permanent); an API with its own rules passes ``permanent``.

    :param provider: the provider's spec (its id names the error; its lists classify it).
    :param operation: the operation, for the error.
    :param response: the failed response.
    :param description: what went wrong, from the API's own message where it has one; never a
        token or a secret.
    :param permanent: force the classification.
    :param details: short text fields worth keeping (a documentation URL).
    :return: the error, to raise.
    """
    return InvalidResponseError(
        provider=provider.id,
        operation=operation,
        error="http_error",
        status=response.status,
        description=description,
        permanent=is_permanent(provider, response.status, None) if permanent is None else permanent,
        details=dict(details or {}),
        retry_after=retry_after(response),
    )


def error_from_response(
    provider: ProviderSpec,
    operation: str,
    response: HttpResponse,
    data: Mapping[str, Any] | None,
) -> ProviderError | None:
    """The error a response carries, or ``None`` if it is a success.

    An ``error`` field is an OAuth error whatever the status (some providers send errors
    with HTTP 200). A non-2xx response without one is an :class:`InvalidResponseError`.
    """
    if data is not None and text(data.get("error")):
        code = str(data["error"])
        return OAuthError(
            provider=provider.id,
            operation=operation,
            error=code,
            status=response.status,
            description=text(data.get("error_description")),
            permanent=is_permanent(provider, response.status, code),
            details=_error_details(data),
            retry_after=retry_after(response),
        )
    if not response.ok:
        kind = response.content_type or "typeless"
        return http_error(
            provider,
            operation,
            response,
            f"HTTP {response.status} with a {kind} body and no OAuth error",
        )
    return None


#: The longest wait read from a ``Retry-After`` header; longer ones are capped.
MAX_RETRY_AFTER = 3600.0


def retry_after(response: HttpResponse) -> float | None:
    """The seconds a response's ``Retry-After`` header asks to wait (RFC 9110 §10.2.3).

    Both forms are read: a number of seconds, and an HTTP date, measured from the response's
    own ``Date`` header (a flow has no clock; without ``Date`` a date gives ``None``). The
    result is capped at :data:`MAX_RETRY_AFTER`; an unreadable header gives ``None``.

    :param response: any response; most often a 429 or a 503.
    :return: the seconds to wait, or ``None``.
    """
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
        now = parsedate_to_datetime(response.headers.get("date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None or now.tzinfo is None:
        return None
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


_SECRET_FIELDS = frozenset(
    {"access_token", "refresh_token", "id_token", "code", "client_secret", "client_assertion"}
)


def _error_details(data: Mapping[str, Any]) -> dict[str, str]:
    """Short text fields of an error body besides ``error`` and its description."""
    return {
        key: value
        for key, value in data.items()
        if key not in {"error", "error_description"}
        and key not in _SECRET_FIELDS
        and isinstance(value, str)
        and len(value) <= 200
    }


def parse_expires_in(value: Any) -> int | None:
    """Read a lifetime in seconds as providers really send it.

    Integers, floats and numeric strings are accepted (some servers send strings); a negative
    value means "already expired" and reads as 0, and one longer than :data:`MAX_LIFETIME`
    reads as :data:`MAX_LIFETIME`. ``None`` means the field was absent. Any other value
    raises :class:`ValueError` (:class:`OverflowError` for an integer too large for a float).
    """
    seconds = _seconds(value)
    return None if seconds is None else min(seconds, MAX_LIFETIME)


def _seconds(value: Any) -> int | None:
    """:func:`parse_expires_in` without the cap."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not a lifetime")
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("an empty string is not a lifetime")
        number = float(value)
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise ValueError(f"a {type(value).__name__} is not a lifetime")
    if math.isnan(number) or math.isinf(number):
        raise ValueError("a lifetime must be finite")
    return max(0, int(number))


def _lifetime(provider: ProviderSpec, name: str, value: Any, unreadable: int | None) -> int | None:
    """Seconds from ``value``; an unreadable value gives ``unreadable`` and is logged, and one
    past :data:`MAX_LIFETIME` is capped and logged."""
    try:
        seconds = _seconds(value)
    except (ValueError, OverflowError):
        log.warning("%s sent an unreadable %s; ignoring it", provider.id, name)
        return unreadable
    if seconds is not None and seconds > MAX_LIFETIME:
        log.warning(
            "%s sent a %s longer than %d seconds (ten years); capping it",
            provider.id,
            name,
            MAX_LIFETIME,
        )
        return MAX_LIFETIME
    return seconds


def parse_token_response(
    provider: ProviderSpec,
    operation: str,
    response: HttpResponse,
    now: float,
    previous: TokenSet | None = None,
) -> TokenSet:
    """Turn a token endpoint's response into a :class:`TokenSet`, or raise.

    * JSON and form-encoded bodies are read by their content type (:func:`read_json`).
    * An ``error`` field raises :class:`OAuthError`, whatever the status.
    * No ``access_token`` raises :class:`InvalidResponseError`.
    * ``expires_in`` becomes ``expires_at = now + expires_in``; an unreadable value makes the
      token due at once instead of discarding the response (it may carry a rotated refresh
      token that must not be lost); an unreadable ``refresh_token_expires_in`` is ignored.
      Either lifetime is capped at :data:`MAX_LIFETIME` (logged).
    * With ``previous`` (a refresh): the refresh token, its expiry, the scope and the id token
      are kept when the response does not replace them.
    * ``token_type`` is case-insensitive (RFC 6749 §5.1): ``bearer`` reads as ``Bearer``.
    * Fields keyturn does not know go to ``extra``, as far as they can be stored: fields
      nested too deep, that are not JSON data, or past the size budget are dropped and named
      in a warning (:func:`keyturn.models.storable_extra`). Whatever this returns, every
      token store can save.
    """
    data = read_json(provider, operation, response)
    access_token = text(data.get("access_token"))
    if access_token is None:
        raise unusable_response(
            provider, operation, response, "the token response has no access_token"
        )
    issued = int(now)
    # An unreadable access-token lifetime makes the token due now (refreshed early, never
    # used stale); an unreadable refresh-token lifetime counts as unknown, so the refresh
    # token is still tried rather than thrown away.
    expires_in = _lifetime(provider, "expires_in", data.get("expires_in"), 0)
    refresh_token = text(data.get("refresh_token"))
    refresh_expires_in = _lifetime(
        provider, "refresh_token_expires_in", data.get("refresh_token_expires_in"), None
    )
    refresh_expires_at = None if refresh_expires_in is None else issued + refresh_expires_in

    scope: tuple[str, ...] | None = None
    raw_scope = data.get("scope")
    if isinstance(raw_scope, str):
        scope = tuple(s.strip() for s in raw_scope.split(provider.scope_separator) if s.strip())

    token_type = text(data.get("token_type")) or "Bearer"
    if token_type.lower() == "bearer":
        token_type = "Bearer"

    id_token = text(data.get("id_token"))
    extra = storable_extra(
        {k: v for k, v in data.items() if k not in _KNOWN_TOKEN_FIELDS}, provider.id
    )

    if previous is not None:
        if refresh_token is None:
            # Not rotated: the old refresh token stays valid, and so does its expiry.
            refresh_token = _secret(previous.refresh_token)
            refresh_expires_at = (
                previous.refresh_token_expires_at
                if refresh_expires_at is None
                else refresh_expires_at
            )
        if scope is None:
            scope = previous.scope
        if id_token is None:
            id_token = _secret(previous.id_token)

    return TokenSet.model_validate(
        {
            "provider": provider.id,
            "access_token": access_token,
            "token_type": token_type,
            "expires_at": None if expires_in is None else issued + expires_in,
            "refresh_token": refresh_token,
            "refresh_token_expires_at": refresh_expires_at,
            "scope": scope,
            "id_token": id_token,
            "extra": extra,
        }
    )


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value())


def basic_auth(credentials: ClientCredentials) -> str:
    """The ``Authorization: Basic`` value for the client at a token endpoint.

    RFC 6749 §2.3.1 form-encodes the client id and secret before joining them; an API that
    takes plain HTTP Basic (RFC 7617) needs the pair as it is instead.

    :param credentials: the app's client id and secret (an empty secret without one).
    :return: ``Basic <base64>``.
    """
    secret = _secret(credentials.client_secret) or ""
    pair = f"{quote(credentials.client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def token_request(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    form: Mapping[str, str],
    url: str | None = None,
) -> HttpRequest:
    """A POST to the token endpoint (or ``url``), authenticating the client as the spec says.

    ``client_secret_basic`` puts the id and secret in ``Authorization``; ``client_secret_post``
    and ``none`` put the ``client_id`` (and the secret, if any) in the form;
    ``private_key_jwt`` and ``client_secret_jwt`` put the ``client_id``,
    ``client_assertion_type`` and the credentials' ``client_assertion`` in the form, and no
    secret (RFC 7523 section 2.2). keyturn sets a new assertion on the credentials it hands a
    hook for each request; a flow that sends more than one request with them sends the same
    assertion each time, which a provider checking ``jti`` refuses.

    :raises ConfigurationError: a JWT method and credentials without a client assertion.
    """
    body = dict(form)
    headers = dict(provider.token_request_headers)
    if provider.client_auth in JWT_METHODS:
        assertion = _secret(credentials.client_assertion)
        if not assertion:
            raise ConfigurationError(
                f"{provider.id} authenticates with {provider.client_auth} and the credentials "
                "carry no client assertion (keyturn adds one to the credentials it passes a "
                "hook for each request)"
            )
        body["client_id"] = credentials.client_id
        body["client_assertion_type"] = JWT_BEARER
        body["client_assertion"] = assertion
    elif provider.client_auth == "client_secret_basic" and credentials.client_secret is not None:
        headers["Authorization"] = basic_auth(credentials)
    else:
        body["client_id"] = credentials.client_id
        secret = _secret(credentials.client_secret)
        if provider.client_auth == "client_secret_post" and secret:
            body["client_secret"] = secret
    return HttpRequest.form("POST", url or provider.token_endpoint, body, headers)


def authorize_url(provider: ProviderSpec, params: Mapping[str, str]) -> str:
    """Join ``params`` onto the authorization endpoint, keeping any query it already has."""
    joiner = "&" if "?" in provider.authorization_endpoint else "?"
    return provider.authorization_endpoint + joiner + urlencode(dict(params), quote_via=quote)


def exchange_code_flow(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    clock: Callable[[], float],
) -> Flow[TokenSet]:
    """RFC 6749 §4.1.3: ``grant_type=authorization_code``."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier is not None:
        form["code_verifier"] = code_verifier
    response = yield token_request(provider, credentials, form)
    return parse_token_response(provider, "exchange_code", response, clock())


def refresh_flow(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    tokens: TokenSet,
    clock: Callable[[], float],
) -> Flow[TokenSet]:
    """RFC 6749 §6: ``grant_type=refresh_token``, keeping what the response does not replace."""
    assert tokens.refresh_token is not None, "keyturn checks this before calling the hook"
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token.get_secret_value()}
    response = yield token_request(provider, credentials, form)
    return parse_token_response(provider, "refresh", response, clock(), previous=tokens)


def bearer_request(
    method: str, url: str, tokens: TokenSet, *, accept: str = "application/json"
) -> HttpRequest:
    """A request authorised with the user's access token (RFC 6750 §2.1).

    :param method: ``GET``, ``DELETE``...
    :param url: the full URL.
    :param tokens: the user's tokens; the access token goes into ``Authorization``.
    :param accept: the ``Accept`` header (an API's own media type, say).
    :return: the request, with no body.
    """
    headers = {
        "Accept": accept,
        "Authorization": f"Bearer {tokens.access_token.get_secret_value()}",
    }
    return HttpRequest(method, url, headers)


def read_json(provider: ProviderSpec, operation: str, response: HttpResponse) -> dict[str, Any]:
    """The object of a successful response (JSON, or form-encoded), or the error it carries.

    :param provider: the provider's spec.
    :param operation: the operation, for the error.
    :param response: the response.
    :return: the decoded object.
    :raises ProviderError: an OAuth error in the body, a non-2xx status, or a body that is
        not a JSON object (:func:`unusable_response`).
    """
    data = response.data()
    error = error_from_response(provider, operation, response, data)
    if error is not None:
        raise error
    if data is None:
        kind = response.content_type or "no content type"
        raise unusable_response(
            provider, operation, response, f"expected a JSON or form-encoded object, got {kind}"
        )
    return data


def profile_from_oidc(data: Mapping[str, Any]) -> Profile:
    """A :class:`Profile` from OpenID Connect standard claims."""
    verified = data.get("email_verified")
    if isinstance(verified, str):  # some servers send "true"/"false"
        verified = verified.lower() == "true"
    return Profile(
        id=data["sub"],
        name=text(data.get("name")),
        email=text(data.get("email")),
        email_verified=verified if isinstance(verified, bool) else None,
        image=text(data.get("picture")),
        raw=dict(data),
    )


def userinfo_flow(provider: ProviderSpec, tokens: TokenSet) -> Flow[Profile]:
    """GET the OpenID Connect userinfo endpoint and read the standard claims."""
    if provider.userinfo_endpoint is None:
        raise _unsupported(provider, "userinfo")
    response = yield bearer_request("GET", provider.userinfo_endpoint, tokens)
    data = read_json(provider, "userinfo", response)
    if not isinstance(data.get("sub"), str | int):
        raise unusable_response(
            provider, "userinfo", response, "the userinfo response has no 'sub'"
        )
    return profile_from_oidc(data)


def revoke_flow(
    provider: ProviderSpec, credentials: ClientCredentials, tokens: TokenSet
) -> Flow[None]:
    """RFC 7009: POST the refresh token (or the access token) to the revocation endpoint."""
    if provider.revocation_endpoint is None:
        raise _unsupported(provider, "revoke")
    if tokens.refresh_token is not None:
        form = {
            "token": tokens.refresh_token.get_secret_value(),
            "token_type_hint": "refresh_token",
        }
    else:
        form = {"token": tokens.access_token.get_secret_value(), "token_type_hint": "access_token"}
    response = yield token_request(provider, credentials, form, provider.revocation_endpoint)
    check_revoke_response(provider, response)


def check_revoke_response(provider: ProviderSpec, response: HttpResponse) -> None:
    """Raise the error a revocation response carries; ``invalid_token`` counts as revoked.

    RFC 7009 answers 200 for a token that is already invalid; some providers answer
    ``invalid_token`` instead. Either way the token no longer works, which was the goal.
    """
    error = error_from_response(provider, "revoke", response, response.data())
    if error is not None and not (isinstance(error, OAuthError) and error.error == "invalid_token"):
        raise error


def _unsupported(provider: ProviderSpec, operation: str) -> ConfigurationError:
    return ConfigurationError(f"{provider.id} declares no {operation} endpoint")


def url_problem(value: str, *, query: bool = True) -> str | None:
    """What is wrong with ``value`` as a provider's URL, or ``None``.

    :param value: the URL.
    :param query: whether a query is allowed (not for an issuer).
    :return: a phrase such as ``"is not https"``, or ``None`` for a usable URL.
    """
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return "is not a URL"
    if parts.scheme == "http":
        if host not in LOOPBACK_HOSTS:
            return "is not https (http only on 127.0.0.1, localhost or ::1)"
    elif parts.scheme != "https":
        return "is not an https URL"
    if not host:
        return "has no host"
    if "#" in value:
        return "has a fragment"
    if not query and parts.query:
        return "has a query"
    return None


def deploy(spec: ProviderSpec, values: Mapping[str, str]) -> ProviderSpec:
    """keyturn's default of the ``keyturn_deploy`` hook: ``spec`` with ``values`` filled in.

    Each ``{name}`` of a URL field is replaced by its value; a ``rotation`` value sets
    ``rotation`` (and ``rotates_refresh_tokens``), a ``refresh_reuse_grace`` value sets the
    grace (kept only with ``detect_reuse``); ``deployment`` records the values. Placeholders
    of ``issuer_claims`` are left for each ID token to fill.
    """
    update: dict[str, Any] = {"deployment": dict(values)}
    for field in DEPLOYMENT_URL_FIELDS:
        value = getattr(spec, field)
        if value:
            update[field] = _PLACEHOLDER.sub(
                lambda match: values.get(match.group(1), match.group(0)), value
            )
    if "rotation" in values:
        update["rotation"] = values["rotation"]
        update["rotates_refresh_tokens"] = values["rotation"] != "none"
    rotation = update.get("rotation", spec.rotation)
    if "refresh_reuse_grace" in values:
        update["refresh_reuse_grace"] = float(values["refresh_reuse_grace"])
    if rotation != "detect_reuse":
        update["refresh_reuse_grace"] = 0.0
    # Only the fields the plugin gave, so that what it left to discovery stays unset.
    data = {name: getattr(spec, name) for name in spec.model_fields_set}
    data.update(update)
    try:
        return ProviderSpec.model_validate(data)
    except ValueError as exc:
        raise ConfigurationError(
            f"the settings of {spec.id!r} do not make a usable spec: {exc}"
        ) from None
