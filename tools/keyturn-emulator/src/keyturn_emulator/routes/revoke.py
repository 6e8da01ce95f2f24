"""Revocation: RFC 7009 ``POST token=...`` (Google, strict), Slack's ``auth.revoke`` and GitHub's
two ``DELETE``s.

* Google: revoking either token of a grant revokes the whole grant
  (https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke); ``GET`` is
  a 404 (https://github.com/googleapis/oauth2client/issues/750); a token it does not know is a
  400 ``invalid_token`` (a reported answer; the page above promises only "400 ... along with
  an error code").
* strict (RFC 7009 §2.1): the client authenticates; revoking an access token leaves the grant;
  an unknown token still gets 200.
* GitHub: ``DELETE /applications/{client_id}/grant`` (the whole grant) and ``.../token``
  (one access token), served under ``/github/api``, with Basic auth and a JSON body
  ``{"access_token": ...}``; 204 on success
  (https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-authorization).
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from keyturn_emulator.profiles import Behaviour
from keyturn_emulator.state import Refusal

from .answers import NO_STORE, refuse, unauthorized
from .clients import authenticate, basic
from .forms import params
from .site import Handler, Site

__all__ = ["routes"]


def routes(site: Site, b: Behaviour) -> list[Route]:
    """The profile's revocation routes.

    :param site: the emulated provider.
    :param b: the profile: GitHub's two ``DELETE`` routes, or one RFC 7009 route.
    """
    root = f"/{b.name}"
    if b.form_unless_json:
        return [
            Route(root + b.paths["revoke"], _github_revoke(site, b, True), methods=["DELETE"]),
            Route(
                root + b.paths["revoke_token"],
                _github_revoke(site, b, False),
                methods=["DELETE"],
            ),
        ]
    return [Route(root + b.paths["revoke"], _revoke(site, b), methods=["GET", "POST"])]


def _revoke(site: Site, b: Behaviour) -> Handler:
    async def revoke(request: Request) -> Response:
        if request.method == "GET":
            # GET /revoke is a 404: https://github.com/googleapis/oauth2client/issues/750
            return PlainTextResponse("Not Found", 404)
        body = await params(request)
        if b.single_auth_method:
            # RFC 7009 §2.1: the client authenticates; unknown tokens still get 200.
            used_basic = basic(request.headers.get("authorization")) is not None
            try:
                authenticate(site, b, request, body)
            except Refusal as refusal:
                return refuse(site, b, request, refusal.situation, used_basic, refusal.detail)
        token = body.get("token") or request.query_params.get("token")
        if b.envelope:
            return _envelope_revoke(site, b, token)
        if not token:
            site.store.count_error(b.name, "invalid_request")
            return JSONResponse(
                {"error": "invalid_request", "error_description": "Missing parameter: token"},
                400,
            )
        found = site.store.lookup(b.name, token)
        if found is None:
            if b.single_auth_method:
                site.store.count(b.name, "revoke")
                return Response(status_code=200, headers=NO_STORE)
            site.store.count_error(b.name, "invalid_token")
            return JSONResponse(
                {"error": "invalid_token", "error_description": "Token expired or revoked"},
                400,
            )
        kind, grant = found[0].kind, found[1]
        if kind == "access" and b.single_auth_method:
            site.store.revoke_token(token)  # RFC 7009 §2.1: the grant may stay
        else:
            # Revoking either token of a Google grant revokes the grant:
            # https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke
            site.store.revoke_grant(grant.id)
        site.store.count(b.name, "revoke")
        return JSONResponse({}, 200, NO_STORE)

    return revoke


def _envelope_revoke(site: Site, b: Behaviour, token: str | None) -> Response:
    """Slack's ``auth.revoke``: ``{"ok": true, "revoked": true}``, or a 200 ``ok: false``
    ``invalid_auth`` for a token it does not know
    (https://docs.slack.dev/reference/methods/auth.revoke). Revoking either token of a grant
    revokes the grant: Slack does not say what revoking one token does to the other, and
    ending both is the emulator's choice."""
    found = site.store.lookup(b.name, token) if token else None
    if found is None:
        return unauthorized(site, b)
    site.store.revoke_grant(found[1].id)
    site.store.count(b.name, "revoke")
    return JSONResponse({"ok": True, "revoked": True}, 200, NO_STORE)


def _github_revoke(site: Site, b: Behaviour, whole_grant: bool) -> Handler:
    async def revoke(request: Request) -> Response:
        credentials = basic(request.headers.get("authorization"))
        if (
            credentials is None
            or not hmac.compare_digest(credentials[0].encode(), site.client_id.encode())
            or not hmac.compare_digest(credentials[1].encode(), site.client_secret.encode())
        ):
            site.store.count_error(b.name, "bad_credentials")
            return JSONResponse(
                {
                    "message": "Bad credentials",
                    "documentation_url": "https://docs.github.com/rest",
                },
                401,
            )
        not_found = JSONResponse(
            {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, 404
        )
        if request.path_params.get("client_id") != site.client_id:
            site.store.count_error(b.name, "not_found")
            return not_found
        access_token = (await params(request)).get("access_token")
        if not access_token:
            site.store.count_error(b.name, "validation_failed")
            return JSONResponse({"message": "Validation Failed"}, 422)
        found = site.store.lookup(b.name, access_token)
        if found is None or found[0].kind != "access":
            site.store.count_error(b.name, "not_found")
            return not_found
        if whole_grant:
            # "Deleting an application's grant will also delete all OAuth tokens":
            # https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-authorization
            site.store.revoke_grant(found[1].id)
        else:
            site.store.revoke_token(access_token)
        site.store.count(b.name, "revoke")
        return Response(status_code=204)

    return revoke
