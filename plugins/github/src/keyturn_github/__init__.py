"""GitHub for keyturn.

Facts encoded here come from the project's provider reference (providers.md, sections B and
D), which quotes GitHub's documentation (github/docs), its changelog, PyGithub's recordings and
responses reported in public issues:

* Authorize at ``github.com/login/oauth/authorize`` (B1). Per call an app may pass ``login``,
  ``allow_signup`` and ``prompt``; ``select_account`` is the only ``prompt`` value GitHub
  documents, so any other is refused before the user is sent anywhere. PKCE with ``S256``
  only ("the plain code challenge method is not supported"). GitHub is not an OpenID
  provider: no issuer, no ID token, no nonce.
* Tokens at ``github.com/login/oauth/access_token`` with ``client_secret_post`` (B2, B3).
  Without ``Accept: application/json`` GitHub answers form-encoded, errors included; the spec
  asks for JSON, and keyturn's parser reads either body by its content type.
* Errors come with HTTP 200 and an ``error`` field (B4, D). keyturn's parser treats an
  ``error`` field as a failure whatever the status, so the core flows serve exchange and
  refresh unchanged; the spec lists GitHub's codes as permanent.
* Expiring user tokens (B3): ``expires_in`` 28800, a ``ghr_`` refresh token and
  ``refresh_token_expires_in`` (15897600 in today's docs, 15811200 in older docs and in
  recordings: read from each response, never assumed). Every refresh returns a new refresh
  token and kills the old one. Without expiry the response has neither ``expires_in`` nor
  ``refresh_token``: such a token never expires and is never refreshed.
* ``scope`` comes back comma-separated (``repo,gist``), and as ``""`` for GitHub App user
  tokens; ``token_type`` is lower-case ``bearer`` (B2, B3, D).
* Userinfo (B5): ``GET api.github.com/user``; when its ``email`` is null, ``GET /user/emails``
  (the ``user:email`` scope, hence the default scopes) for the primary verified address.
* Revoke (B5): ``DELETE api.github.com/applications/{client_id}/grant`` with a JSON body and
  HTTP Basic client authentication; 204 No Content.

Every URL is read from the spec the hooks receive, so
``Keyturn(providers=[GITHUB.model_copy(update={...})])`` points the whole plugin at another
server (a local emulator, a GitHub Enterprise Server) and the hooks follow.
"""

from __future__ import annotations

from collections.abc import Callable

import keyturn
from keyturn.errors import ConfigurationError
from keyturn.http import Flow
from keyturn.models import ClientCredentials, Profile, ProviderSpec, TokenSet

from .revoke import revoke_flow
from .userinfo import userinfo_flow

__all__ = ["GITHUB", "PROMPTS"]

#: ``prompt`` values GitHub documents (B1: "Forces the account picker to appear if set to
#: select_account").
PROMPTS = frozenset({"select_account"})

GITHUB = ProviderSpec(
    id="github",
    name="GitHub",
    authorization_endpoint="https://github.com/login/oauth/authorize",
    token_endpoint="https://github.com/login/oauth/access_token",
    userinfo_endpoint="https://api.github.com/user",
    # A template: the revoke hook fills in the app's client id.
    revocation_endpoint="https://api.github.com/applications/{client_id}/grant",
    # user:email lets the profile fall back to /user/emails when the address is private.
    default_scopes=("read:user", "user:email"),
    extra_authorize_params=frozenset({"login", "allow_signup", "prompt"}),
    client_auth="client_secret_post",
    pkce_method="S256",
    rotates_refresh_tokens=True,
    scope_separator=",",
    # Without it GitHub answers form-encoded; a REST media type here gets 406 (B2).
    token_request_headers={"Accept": "application/json"},
    permanent_errors=frozenset(
        {
            # B4, GitHub's token-request error catalogue and the GitHub App token guide.
            "bad_refresh_token",
            "bad_verification_code",
            "incorrect_client_credentials",
            "redirect_uri_mismatch",
            "unverified_user_email",
            "unsupported_grant_type",
            # B4, authorization-request errors: an app suspended by GitHub stays suspended
            # until its owner acts, whichever endpoint reports it.
            "application_suspended",
            # B4: a 2020 recording shows the token endpoint answering 404 {"error": "Not
            # Found"}, cause unstated; the likely one is a client id GitHub does not know
            # (deleted or mistyped app). No retry mends a registration, so it is permanent,
            # listed here so that it stays so even if GitHub sent it with another status.
            "Not Found",
        }
    ),
)


@keyturn.hookimpl
def keyturn_register_providers(register: Callable[[ProviderSpec], None]) -> None:
    register(GITHUB)


@keyturn.hookimpl
@keyturn.for_provider("github")
def keyturn_authorize_url(
    provider: ProviderSpec, credentials: ClientCredentials, params: dict[str, str]
) -> str | None:
    # Only a check: keyturn's default builds the URL.
    prompt = params.get("prompt")
    if prompt is not None and prompt not in PROMPTS:
        raise ConfigurationError(
            f"{provider.id} accepts prompt={'|'.join(sorted(PROMPTS))} only, not {prompt!r}"
        )
    return None


@keyturn.hookimpl
@keyturn.for_provider("github")
def keyturn_userinfo(provider: ProviderSpec, tokens: TokenSet) -> Flow[Profile] | None:
    return userinfo_flow(provider, tokens)


@keyturn.hookimpl
@keyturn.for_provider("github")
def keyturn_revoke(
    provider: ProviderSpec, credentials: ClientCredentials, tokens: TokenSet
) -> Flow[None] | None:
    return revoke_flow(provider, credentials, tokens)
