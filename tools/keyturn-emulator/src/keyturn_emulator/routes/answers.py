"""The answers several routes share: token-endpoint bodies, refusals, 401s and HTML pages."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from keyturn_emulator.profiles import Behaviour, Failure

from .site import Site

__all__ = ["NO_STORE", "answer", "page", "refuse", "unauthorized"]

#: Headers on every answer that carries a token or a one-time value (RFC 6749 §5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _accepts_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "").lower()


def answer(
    b: Behaviour,
    request: Request,
    status: int,
    data: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> Response:
    """JSON, or for GitHub without ``Accept: application/json`` form-encoded ("By default, the
    response takes the following form",
    https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps).

    :param b: the profile.
    :param request: the request, for its ``Accept`` header.
    :param status: the HTTP status.
    :param data: the fields; ``None`` becomes an empty form value.
    :param headers: extra headers, on top of :data:`NO_STORE`.
    """
    merged = {**NO_STORE, **(headers or {})}
    if b.form_unless_json and not _accepts_json(request):
        body = urlencode({k: "" if v is None else str(v) for k, v in data.items()})
        return Response(body, status, merged, media_type="application/x-www-form-urlencoded")
    return JSONResponse(dict(data), status, merged)


def refuse(
    site: Site,
    b: Behaviour,
    request: Request,
    situation: str,
    basic: bool,
    detail: str | None = None,
) -> Response:
    """The profile's answer to a refused request, counted as an error.

    :param site: holds the store that counts the error.
    :param b: the profile, whose failures table names status and body.
    :param request: the request, for its ``Accept`` header.
    :param situation: the key in the failures table.
    :param basic: whether the client sent HTTP Basic (a 401 then names the scheme).
    :param detail: an ``error_description`` in place of the table's.
    """
    failure: Failure = b.failure(situation)
    if detail is not None:
        failure = replace(failure, description=detail)
    site.store.count_error(b.name, failure.error)
    headers = {}
    if failure.status == 401 and basic:
        # RFC 6749 §5.2: a 401 to a client that used Basic names the scheme.
        headers["WWW-Authenticate"] = 'Basic realm="keyturn-emulator"'
    return answer(b, request, failure.status, failure.body(), headers)


def unauthorized(site: Site, b: Behaviour) -> Response:
    """The 401 for a missing, revoked or expired access token, counted as an error.

    :param site: holds the store that counts the error.
    :param b: the profile: GitHub's REST shape, Slack's envelope, or RFC 6750 §3.1.
    """
    if b.envelope:
        # Slack: HTTP 200 and ok:false, "invalid_auth" for a token that is not valid
        # (https://docs.slack.dev/reference/methods/auth.revoke, its errors).
        site.store.count_error(b.name, "invalid_auth")
        return JSONResponse({"ok": False, "error": "invalid_auth"}, 200)
    if b.form_unless_json:
        # A revoked or expired access token on the REST API gets 401: "Authenticating with
        # invalid credentials will initially return a 401 Unauthorized response",
        # https://docs.github.com/en/rest/authentication/authenticating-to-the-rest-api
        site.store.count_error(b.name, "bad_credentials")
        return JSONResponse(
            {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            401,
        )
    # RFC 6750 §3.1.
    site.store.count_error(b.name, "invalid_token")
    return JSONResponse(
        {"error": "invalid_token", "error_description": "The access token is not valid."},
        401,
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A small HTML page, never cached.

    :param title: the page title (escaped here).
    :param body: the body's HTML, already escaped by the caller.
    :param status: the HTTP status.
    """
    document = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;"
        "padding:0 1rem}button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}"
        "</style></head>"
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=NO_STORE)
