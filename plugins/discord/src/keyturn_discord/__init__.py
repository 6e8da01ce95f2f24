"""Discord for keyturn.

What the spec and the hooks encode, each fact with its source in brackets (the sources are
listed with their URLs at the end; ``docs/providers/discord.md`` gathers the same facts with
the cassettes that show them, and the points where sources disagree):

* Authorize at ``discord.com/oauth2/authorize``; tokens at ``discord.com/api/oauth2/token``;
  revocation at ``discord.com/api/oauth2/token/revoke`` with ``token`` and
  ``token_type_hint`` [oauth2]. Discord is not an OpenID provider for web sign-in: no issuer,
  no ID token, no nonce.
* Client authentication with HTTP Basic (``client_secret_basic``), as the token and
  revocation examples of the OAuth2 page do (``auth=(CLIENT_ID, CLIENT_SECRET)``) [oauth2].
  Older versions of the page put ``client_id`` and ``client_secret`` in the form body, which
  Discord still takes; either way the secret leaves only for Discord.
* Scopes ``identify`` (the user without email) and ``email`` (adds ``email`` and
  ``verified``) [oauth2, scopes]; space-separated in the answer.
* Access tokens live 604800 seconds (seven days) [oauth2, the exchange example]; every
  answer carries ``expires_in``, so nothing is assumed.
* Refresh tokens: sources disagree on whether a refresh retires the old refresh token and
  how long one lives (see ``docs/providers/discord.md``). The safe reading is taken:
  ``rotation = "rotate"``. The answer carries a refresh token, and keyturn keeps whichever
  one the answer carries (the old one only if it carries none) and never sends a refresh
  token twice.
* Userinfo: ``GET discord.com/api/users/@me`` with the access token [user]. The profile's
  id is the snowflake ``id``, its name ``global_name`` (the display name) or else
  ``username``, its email ``email`` with ``verified`` (only with the ``email`` scope), and
  its image the avatar on Discord's CDN, or the default avatar when the user has none
  [image formatting].
* Rate limits: HTTP 429 with a ``Retry-After`` header and a JSON body ``{"message",
  "retry_after", "global"}`` [rate limits]. keyturn raises a transient
  :class:`keyturn.InvalidResponseError` (``error`` ``rate_limited``) whose ``retry_after``
  is the header's seconds; without the header, the body's ``retry_after`` (a float of
  seconds) is used. The header wins because it is whole seconds rounded up, and because the
  body's value was reported in milliseconds on some routes [docs 4722].

Every URL is read from the spec the hooks receive, so
``Keyturn(providers=[DISCORD.model_copy(update={...})])`` points the plugin at another server
(the emulator) and the hooks follow.

Sources:

* oauth2: Discord Developer Documentation, "OAuth2",
  https://discord.com/developers/docs/topics/oauth2
* scopes: the same page, "OAuth2 Scopes",
  https://discord.com/developers/docs/topics/oauth2#shared-resources-oauth2-scopes
* user: "Get Current User" and the User object,
  https://discord.com/developers/docs/resources/user#get-current-user
* image formatting: "Image Formatting", CDN endpoints for user and default avatars,
  https://discord.com/developers/docs/reference#image-formatting
* rate limits: "Rate Limits", exceeding a rate limit,
  https://discord.com/developers/docs/topics/rate-limits#exceeding-a-rate-limit
* docs 4722: ``retry_after`` seen in milliseconds,
  https://github.com/discord/discord-api-docs/issues/4722
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import keyturn
from keyturn import (
    ClientCredentials,
    Flow,
    HttpResponse,
    InvalidResponseError,
    Profile,
    ProviderSpec,
    TokenSet,
    flows,
)

__all__ = ["CDN", "DISCORD", "avatar_url", "body_retry_after", "profile", "rate_limited"]

#: Discord's CDN, where avatars are served (Image Formatting).
CDN = "https://cdn.discordapp.com"

DISCORD = ProviderSpec(
    id="discord",
    name="Discord",
    authorization_endpoint="https://discord.com/oauth2/authorize",
    token_endpoint="https://discord.com/api/oauth2/token",
    userinfo_endpoint="https://discord.com/api/users/@me",
    revocation_endpoint="https://discord.com/api/oauth2/token/revoke",
    default_scopes=("identify", "email"),
    # prompt=consent asks again, prompt=none skips the screen for an app already authorised
    # (the authorization URL's parameters, https://discord.com/developers/docs/topics/oauth2).
    extra_authorize_params=frozenset({"prompt"}),
    client_auth="client_secret_basic",
    pkce_method="S256",
    rotation="rotate",
)


@keyturn.hookimpl
def keyturn_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    """Register Discord."""
    register(DISCORD)


def body_retry_after(data: Mapping[str, Any]) -> float | None:
    """The seconds a 429 body's ``retry_after`` asks to wait, or ``None``.

    Only a finite, non-negative number counts (Discord sends a float); it is capped at
    :data:`keyturn.flows.MAX_RETRY_AFTER`, as a header is.
    """
    value = data.get("retry_after")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        return None
    return min(seconds, flows.MAX_RETRY_AFTER)


def rate_limited(
    provider: ProviderSpec, operation: str, response: HttpResponse
) -> InvalidResponseError:
    """The transient error for Discord's 429, with the wait it asks for.

    ``retry_after`` comes from the ``Retry-After`` header, else from the body's
    ``retry_after``; ``details`` says whether the limit is ``global``. The description holds
    Discord's ``message`` (a sentence such as "You are being rate limited."), never more
    than its first 200 characters.

    :param provider: the spec.
    :param operation: ``exchange_code``, ``refresh`` or ``userinfo``.
    :param response: the 429 answer.
    :return: the error, to raise.
    """
    data = response.data() or {}
    wait = flows.retry_after(response)
    if wait is None:
        wait = body_retry_after(data)
    message = flows.text(data.get("message"))
    details: dict[str, str] = {}
    if isinstance(data.get("global"), bool):
        details["global"] = "true" if data["global"] else "false"
    return InvalidResponseError(
        provider=provider.id,
        operation=operation,
        error="rate_limited",
        status=response.status,
        description=f"rate limited: {message[:200]}" if message else "rate limited",
        permanent=False,
        details=details,
        retry_after=wait,
    )


def _token(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    form: dict[str, str],
    operation: str,
    clock: Callable[[], float],
    previous: TokenSet | None,
) -> Flow[TokenSet]:
    response = yield flows.token_request(provider, credentials, form)
    if response.status == 429:
        raise rate_limited(provider, operation, response)
    return flows.parse_token_response(provider, operation, response, clock(), previous=previous)


def avatar_url(user: Mapping[str, Any]) -> str | None:
    """The user's avatar on Discord's CDN (Image Formatting), or their default avatar.

    An avatar hash starting ``a_`` is animated and served as GIF, any other as PNG. Without
    an avatar, the default one: index ``(id >> 22) % 6`` for a user on the new username
    system (discriminator ``"0"`` or none), ``discriminator % 5`` for a legacy one.

    :return: the URL, or ``None`` when ``id`` is not a snowflake.
    """
    user_id = flows.text(user.get("id"))
    if user_id is None or not user_id.isdigit():
        return None
    avatar = flows.text(user.get("avatar"))
    if avatar is not None:
        if not all(c.isalnum() or c == "_" for c in avatar):
            return None
        extension = "gif" if avatar.startswith("a_") else "png"
        return f"{CDN}/avatars/{user_id}/{avatar}.{extension}"
    discriminator = flows.text(user.get("discriminator"))
    if discriminator is None or discriminator == "0" or not discriminator.isdigit():
        index = (int(user_id) >> 22) % 6
    else:
        index = int(discriminator) % 5
    return f"{CDN}/embed/avatars/{index}.png"


def profile(provider: ProviderSpec, response: HttpResponse, data: Mapping[str, Any]) -> Profile:
    """A :class:`keyturn.Profile` from ``GET /users/@me``.

    :raises keyturn.InvalidResponseError: the answer has no ``id``.
    """
    user_id = flows.text(data.get("id"))
    if user_id is None:
        raise flows.unusable_response(provider, "userinfo", response, "the user has no id")
    email = flows.text(data.get("email"))
    verified = data.get("verified")
    return Profile(
        id=user_id,
        name=flows.text(data.get("global_name")) or flows.text(data.get("username")),
        email=email,
        email_verified=verified if email is not None and isinstance(verified, bool) else None,
        image=avatar_url(data),
        raw=dict(data),
    )


def _userinfo(provider: ProviderSpec, tokens: TokenSet) -> Flow[Profile]:
    endpoint = provider.userinfo_endpoint or DISCORD.userinfo_endpoint or ""
    response = yield flows.bearer_request("GET", endpoint, tokens)
    if response.status == 429:
        raise rate_limited(provider, "userinfo", response)
    data = flows.read_json(provider, "userinfo", response)
    return profile(provider, response, data)


@keyturn.hookimpl
@keyturn.for_provider("discord")
def keyturn_exchange_code(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    clock: Callable[[], float],
) -> Flow[TokenSet] | None:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier is not None:
        form["code_verifier"] = code_verifier
    return _token(provider, credentials, form, "exchange_code", clock, None)


@keyturn.hookimpl
@keyturn.for_provider("discord")
def keyturn_refresh(
    provider: ProviderSpec,
    credentials: ClientCredentials,
    tokens: TokenSet,
    clock: Callable[[], float],
) -> Flow[TokenSet] | None:
    assert tokens.refresh_token is not None, "keyturn checks this before calling the hook"
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token.get_secret_value()}
    return _token(provider, credentials, form, "refresh", clock, tokens)


@keyturn.hookimpl
@keyturn.for_provider("discord")
def keyturn_userinfo(provider: ProviderSpec, tokens: TokenSet) -> Flow[Profile] | None:
    return _userinfo(provider, tokens)
