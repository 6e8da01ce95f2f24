"""The token endpoint: the ``authorization_code`` and ``refresh_token`` grants (RFC 6749 §4.1.3,
§6), with the profile's client authentication, token shapes, ID tokens and error answers.

GitHub's profile also takes a code without ``grant_type`` (the exchange parameters of
https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps have
none) and answers ``406`` to the REST media type
(https://github.com/octokit/request.js/issues/83). Faults (503s, dropped connections,
latency) are not injected here but in front of this route, by :mod:`keyturn_emulator.gate`.

ID tokens (profiles that issue them, when ``openid`` was granted) come with the code exchange
and with every refresh, signed as :mod:`keyturn_emulator.idtoken` says, with ``at_hash`` over
the access token beside them; on a refresh they keep ``iss``, ``sub``, ``aud`` and, with
sessions, ``auth_time`` and ``sid``, and carry no ``nonce`` (OpenID Connect Core §12.2,
https://openid.net/specs/openid-connect-core-1_0.html#RefreshTokenResponse).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from keyturn_emulator.faults import Knobs
from keyturn_emulator.idtoken import sign_id_token, signing_alg
from keyturn_emulator.pkce import verify_pkce
from keyturn_emulator.profiles import Behaviour
from keyturn_emulator.state import Grant, Issued, Refusal

from .answers import answer, refuse
from .claims import claims
from .clients import authenticate, basic
from .forms import params
from .site import Handler, Site

__all__ = ["access_token_lifetime", "path", "routes"]


def path(b: Behaviour) -> str:
    """The profile's token-endpoint path on the server (``/<profile>/...``).

    :param b: the profile.
    """
    return f"/{b.name}" + b.paths["token"]


def routes(site: Site, b: Behaviour) -> list[Route]:
    """The profile's token route (``POST``).

    :param site: the emulated provider.
    :param b: the profile.
    """
    return [Route(path(b), _token(site, b), methods=["POST"])]


def _token(site: Site, b: Behaviour) -> Handler:
    async def token(request: Request) -> Response:
        if "application/vnd.github" in request.headers.get("accept", "") and (b.form_unless_json):
            # GitHub answers 406 to the REST media type here:
            # https://github.com/octokit/request.js/issues/83
            site.store.count_error(b.name, "not_acceptable")
            return PlainTextResponse("Not Acceptable", 406)
        body = await params(request)
        used_basic = basic(request.headers.get("authorization")) is not None
        try:
            client_id = authenticate(site, b, request, body)
            grant_type = body.get("grant_type")
            if grant_type is None and b.grant_type_optional and "code" in body:
                grant_type = "authorization_code"
            knobs = site.knobs()
            access_lifetime = access_token_lifetime(b, knobs.access_token_lifetime)
            if grant_type == "authorization_code":
                code = body.get("code")
                if not code:
                    raise Refusal("invalid_request")
                issued = site.store.exchange(
                    b,
                    client_id,
                    code,
                    body.get("redirect_uri"),
                    body.get("code_verifier"),
                    access_lifetime,
                    knobs.refresh_token_lifetime,
                    verify_pkce,
                )
            elif grant_type == "refresh_token":
                refresh_token = body.get("refresh_token")
                if not refresh_token:
                    raise Refusal("invalid_request")
                issued = site.store.refresh(
                    b,
                    client_id,
                    refresh_token,
                    access_lifetime,
                    knobs.refresh_token_lifetime,
                )
            else:
                raise Refusal("unsupported_grant_type")
        except Refusal as refusal:
            return refuse(site, b, request, refusal.situation, used_basic, refusal.detail)
        return answer(b, request, 200, _token_body(site, b, issued))

    return token


def access_token_lifetime(b: Behaviour, knob: int | None) -> int | None:
    """Seconds the profile's access tokens live: the knob, or while the knob is at its
    default, the profile's own lifetime (Slack's 12 hours) where it has one.

    :param b: the profile.
    :param knob: the ``access_token_lifetime`` knob.
    """
    if b.access_token_lifetime is not None and knob == Knobs.access_token_lifetime:
        return b.access_token_lifetime
    return knob


def _token_body(site: Site, b: Behaviour, issued: Issued) -> dict[str, Any]:
    grant = issued.grant
    data: dict[str, Any] = {"ok": True} if b.envelope else {}
    data["access_token"] = issued.access_token
    if issued.access_expires_in is not None and not site.knobs().omit_expires_in:
        data["expires_in"] = issued.access_expires_in
    if b.created_at:
        data["created_at"] = int(site.store.clock())
    if issued.refresh_token is not None:
        data["refresh_token"] = issued.refresh_token
        if issued.refresh_expires_in is not None:
            data[b.refresh_expires_field] = issued.refresh_expires_in
    data["scope"] = b.scope_separator.join(grant.scopes)
    data["token_type"] = b.token_type
    if b.id_tokens and "openid" in grant.scopes:
        data["id_token"] = _id_token(site, b, grant, issued.nonce, issued.access_token)
    return data


def _id_token(site: Site, b: Behaviour, grant: Grant, nonce: str | None, access_token: str) -> str:
    now = int(site.store.clock())
    payload: dict[str, Any] = {
        "iss": site.issuer(b),
        "azp": site.client_id,
        "aud": site.client_id,
        "sub": grant.user.sub,
        "iat": now,
        "exp": now + 3600,
    }
    payload.update(claims(site, grant.user, grant.scopes, include_picture=False))
    payload.update(b.id_token_claims)
    if nonce is not None:
        payload["nonce"] = nonce
    if grant.auth_time is not None:
        payload["auth_time"] = grant.auth_time
    if grant.sid is not None:
        payload["sid"] = grant.sid
    alg = signing_alg(b, site.knobs())
    return sign_id_token(site.keys, alg, payload, access_token)
