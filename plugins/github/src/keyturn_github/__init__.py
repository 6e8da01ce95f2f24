"""GitHub for keyturn.

What the spec and the hooks encode, each fact with its source in brackets (the sources are
listed with their URLs at the end; ``docs/providers/github.md`` gathers the same facts with
the cassettes that show them):

* Authorize at ``github.com/login/oauth/authorize`` [authorizing]. Per call an app may pass
  ``login``, ``allow_signup`` and ``prompt``; ``select_account`` is the only ``prompt`` value
  GitHub documents [authorizing, account picker], so any other is refused before the user is
  sent anywhere. PKCE with ``S256`` only ("the plain code challenge method is not supported"
  [authorizing]; "Only the S256 code challenge method is accepted" [PKCE]). GitHub is not an
  OpenID provider: no issuer, no ID token, no nonce.
* Tokens at ``github.com/login/oauth/access_token`` with ``client_secret_post``: exchange and
  refresh carry ``client_id`` and ``client_secret`` as parameters [authorizing, refreshing].
  Without ``Accept: application/json`` GitHub answers form-encoded, errors included ("By
  default, the response takes the following form" [authorizing]); the spec asks for JSON, and
  keyturn's parser reads either body by its content type.
* Errors come with HTTP 200 and an ``error`` field [PyGithub bad code, octokit 13]. keyturn's
  parser treats an ``error`` field as a failure whatever the status, so the core flows serve
  exchange and refresh unchanged; the spec lists GitHub's codes as permanent [token errors,
  app tokens].
* Expiring user tokens: ``expires_in`` 28800, a ``ghr_`` refresh token and
  ``refresh_token_expires_in`` (15897600 in today's docs, 15811200 in older docs and in
  recordings: read from each response, never assumed) [app tokens, docs 32084, PyGithub
  refresh]. Every refresh returns a new refresh token and kills the old one ("Once you use a
  refresh token, that refresh token and the old user access token will no longer work"
  [refreshing]). Without expiry the response has neither ``expires_in`` nor
  ``refresh_token`` ("If you disabled expiration of user access tokens, this parameter will
  be omitted" [app tokens]): such a token never expires and is never refreshed.
* ``scope`` comes back comma-separated (``repo,gist`` [authorizing]), and as ``""`` for
  GitHub App user tokens ("This value will always be an empty string" [app tokens]);
  ``token_type`` is lower-case ``bearer`` [authorizing, app tokens].
* Userinfo: ``GET api.github.com/user`` [REST user]; when its ``email`` is null,
  ``GET /user/emails`` (the ``user:email`` scope, hence the default scopes) for the primary
  verified address [REST emails].
* Revoke: ``DELETE api.github.com/applications/{client_id}/grant`` with a JSON body and
  HTTP Basic client authentication; 204 No Content [REST grant].

Every URL is read from the spec the hooks receive, so
``Keyturn(providers=[GITHUB.model_copy(update={...})])`` points the whole plugin at another
server (a local emulator, a GitHub Enterprise Server) and the hooks follow.

Sources:

* authorizing: GitHub Docs, "Authorizing OAuth apps",
  https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps
* app tokens: GitHub Docs, "Generating a user access token for a GitHub App",
  https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app
* refreshing: GitHub Docs, "Refreshing user access tokens",
  https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens
* token errors: GitHub Docs, "Troubleshooting OAuth app access token request errors",
  https://docs.github.com/en/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors
* PKCE: GitHub changelog, "PKCE support for OAuth and GitHub App authentication" (2025-07-14),
  https://github.blog/changelog/2025-07-14-pkce-support-for-oauth-and-github-app-authentication
* account picker: GitHub changelog entry adding ``prompt=select_account``, listed at
  https://github.blog/changelog/label/apps/
* REST user: https://docs.github.com/en/rest/users/users#get-the-authenticated-user
* REST emails: https://docs.github.com/en/rest/users/emails#list-email-addresses-for-the-authenticated-user
* REST grant: https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-authorization
* docs 32084: the value 15897600 reported in https://github.com/github/docs/issues/32084 and
  corrected in the docs by https://github.com/github/docs/pull/32165
* PyGithub bad code: a recorded exchange answering 200 with ``bad_verification_code``,
  https://github.com/PyGithub/PyGithub/blob/main/tests/ReplayData/ApplicationOAuth.testGetAccessTokenBadCode.txt
* PyGithub refresh: a recorded refresh (2023) with 15811200,
  https://github.com/PyGithub/PyGithub/blob/main/tests/ReplayData/ApplicationOAuth.testRefreshAccessToken.txt
* octokit 13: "The server returns a 200 status, not a 4xx as expected",
  https://github.com/octokit/auth-oauth-app.js/issues/13
"""

from __future__ import annotations

from collections.abc import Callable

import keyturn
from keyturn import ClientCredentials, ConfigurationError, Flow, Profile, ProviderSpec, TokenSet

from .revoke import revoke_flow
from .userinfo import userinfo_flow

__all__ = ["GITHUB", "PROMPTS"]

#: ``prompt`` values GitHub documents: "Forces the account picker to appear if set to
#: select_account". Sources: GitHub Docs, "Authorizing OAuth apps",
#: https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps
#: and the changelog entry on the account picker, https://github.blog/changelog/label/apps/
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
    # Without it GitHub answers form-encoded ("By default, the response takes the following
    # form", "Authorizing OAuth apps", cited above PROMPTS); a REST media type here gets 406:
    # https://github.com/octokit/request.js/issues/83
    token_request_headers={"Accept": "application/json"},
    permanent_errors=frozenset(
        {
            # GitHub's token-request error catalogue:
            # https://docs.github.com/en/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors
            # and the GitHub App token guide (bad_refresh_token, unsupported_grant_type):
            # https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app
            "bad_refresh_token",
            "bad_verification_code",
            "incorrect_client_credentials",
            "redirect_uri_mismatch",
            "unverified_user_email",
            "unsupported_grant_type",
            # Authorization-request errors: an app suspended by GitHub stays suspended until
            # its owner acts, whichever endpoint reports it. Source:
            # https://docs.github.com/en/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-authorization-request-errors
            "application_suspended",
            # A 2020 recording in PyGithub's test data shows the token endpoint answering 404
            # {"error": "Not Found"}, cause unstated and not in GitHub's documentation:
            # https://github.com/PyGithub/PyGithub/blob/03800c0/tests/ReplayData/ApplicationOAuth.testGetAccessToken.txt
            # The likely cause is a client id GitHub does not know
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
