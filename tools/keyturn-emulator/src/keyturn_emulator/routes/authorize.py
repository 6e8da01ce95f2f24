"""The authorize endpoint: check the request, then approve at once or show a consent page.

``GET`` reads the authorize request (RFC 6749 §4.1.1). A bad client id or redirect URI gets
an HTML error page, never a redirect (§4.1.2.1); any other problem goes back to the redirect
URI as ``error=...``. With the ``consent`` knob at ``page`` (or ``consent=page`` in the
query) the user sees Allow and Deny buttons, which ``POST`` back here with a one-time ticket.
Every redirect carries ``state`` and, for profiles with an issuer, ``iss`` (RFC 9207).

Profiles with sessions (``oidc``) sign the user in at the provider when they approve, and
read ``prompt`` as OpenID Connect Core §3.1.2.1 defines it
(https://openid.net/specs/openid-connect-core-1_0.html#AuthRequest): ``none`` approves
without any page when the user is signed in already and answers ``login_required`` when not
(or ``invalid_request`` when combined with another value), and ``login`` starts a new
session (a new ``sid`` and ``auth_time``).
"""

from __future__ import annotations

import hmac
import html
import json
import re
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from keyturn_emulator.pkce import valid_challenge
from keyturn_emulator.profiles import Behaviour
from keyturn_emulator.state import Pending, User

from .answers import NO_STORE, page
from .forms import params
from .site import Handler, Site

__all__ = ["LOOPBACK_HOSTS", "routes"]

#: Hosts a redirect URI may name without being registered (RFC 8252 §7.3 loopback).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def routes(site: Site, b: Behaviour) -> list[Route]:
    """The profile's authorize route (``GET`` the request, ``POST`` the consent decision).

    :param site: the emulated provider.
    :param b: the profile.
    """
    return [
        Route(f"/{b.name}" + b.paths["authorize"], _authorize(site, b), methods=["GET", "POST"])
    ]


def _authorize(site: Site, b: Behaviour) -> Handler:
    async def authorize(request: Request) -> Response:
        if request.method == "POST":
            form = await params(request)
            pending = site.store.release(form.get("ticket", ""))
            if pending is None:
                return _error_page(site, b, "invalid_request", "This consent has expired.")
            if form.get("decision") == "allow":
                return _approve(site, b, pending)
            return _deny(site, b, pending)
        return _authorize_request(site, b, request)

    return authorize


def _authorize_request(site: Site, b: Behaviour, request: Request) -> Response:
    query = request.query_params
    client_id = query.get("client_id", "")
    if not client_id or not hmac.compare_digest(client_id.encode(), site.client_id.encode()):
        return _error_page(site, b, "invalid_client", "The OAuth client was not found.")
    redirect_uri = query.get("redirect_uri", "")
    if not _redirect_ok(site, redirect_uri):
        return _error_page(
            site,
            b,
            "redirect_uri_mismatch",
            "The redirect_uri must be a loopback http(s) URL or a registered one.",
        )
    prompts = query.get("prompt", "").split()
    separators = r"[ ,]+" if b.form_unless_json else r" +"
    scopes = tuple(s for s in re.split(separators, query.get("scope", "")) if s)
    challenge = query.get("code_challenge")
    method = query.get("code_challenge_method")
    pending = Pending(
        profile=b.name,
        client_id=client_id,
        redirect_uri=redirect_uri,
        state=query.get("state"),
        scopes=scopes,
        challenge=challenge,
        method=(method or "plain") if challenge else None,
        nonce=query.get("nonce"),
        user=User.from_hint(query.get(b.login_param)),
        offline=query.get("access_type") == "offline",
        force_consent="consent" in prompts,
        force_login="login" in prompts,
        response_mode=query.get("response_mode"),
    )
    problem = _authorize_problem(b, query.get("response_type"), scopes, challenge, method)
    if problem is None and b.sessions and "none" in prompts:
        problem = _silent_problem(site, b, prompts, pending)
    if problem is not None:
        error, description = problem
        site.store.count_error(b.name, error)
        return _callback(site, b, pending, {"error": error, "error_description": description})
    site.store.count(b.name, "authorize")
    silent = b.sessions and "none" in prompts
    if not silent and (site.knobs().consent == "page" or query.get("consent") == "page"):
        ticket = site.store.hold(pending)
        signed_in = not b.sessions or site.store.session(b.name, pending.user) is not None
        return _consent_page(b, request.url.path, ticket, pending, signed_in)
    return _approve(site, b, pending)


def _silent_problem(
    site: Site, b: Behaviour, prompts: list[str], pending: Pending
) -> tuple[str, str] | None:
    """The error for ``prompt=none`` at a profile with sessions, or ``None`` to approve."""
    if prompts != ["none"]:
        return "invalid_request", "prompt=none cannot be combined with other values."
    if site.store.session(b.name, pending.user) is None:
        return "login_required", "The user is not signed in."
    return None


def _authorize_problem(
    b: Behaviour,
    response_type: str | None,
    scopes: tuple[str, ...],
    challenge: str | None,
    method: str | None,
) -> tuple[str, str] | None:
    """The error to send back to the redirect URI, or ``None`` (RFC 6749 §4.1.2.1)."""
    if response_type != "code" and (response_type is not None or b.response_type_required):
        return "unsupported_response_type", "Only response_type=code is supported."
    if b.scope_required and not scopes:
        return "invalid_request", "Missing required parameter: scope"
    unknown = [s for s in scopes if not b.knows_scope(s)]
    if unknown:
        return "invalid_scope", f"Unknown scope: {unknown[0]}"
    if challenge is None:
        if method is not None:
            return "invalid_request", "code_challenge_method without code_challenge"
        if b.pkce_required:
            return "invalid_request", "PKCE is required: send code_challenge (S256)."
        return None
    if (method or "plain") not in b.pkce_methods:
        allowed = ", ".join(sorted(b.pkce_methods))
        return "invalid_request", f"code_challenge_method must be one of: {allowed}"
    if not valid_challenge(challenge):
        return "invalid_request", "code_challenge must be 43 to 128 unreserved characters"
    return None


def _redirect_ok(site: Site, uri: str) -> bool:
    if uri in site.redirect_uris:
        return True
    parts = urlsplit(uri)
    return (
        parts.scheme in ("http", "https")
        and (parts.hostname or "") in LOOPBACK_HOSTS
        and not parts.fragment
        and "#" not in uri
    )


def _with_query(url: str, query: Mapping[str, str]) -> str:
    joiner = "&" if urlsplit(url).query else "?"
    return url + joiner + urlencode(dict(query))


def _callback(site: Site, b: Behaviour, pending: Pending, query: dict[str, str]) -> Response:
    if pending.state is not None:
        query["state"] = pending.state
    issuer = site.issuer(b)
    if issuer is not None and not b.form_post:
        query["iss"] = issuer  # RFC 9207
    if b.form_post and pending.response_mode == "form_post":
        return _form_post(pending.redirect_uri, query)
    return Response(
        status_code=302,
        headers={"Location": _with_query(pending.redirect_uri, query), **NO_STORE},
    )


def _approve(site: Site, b: Behaviour, pending: Pending) -> Response:
    if b.sessions:
        session = site.store.sign_in(b.name, pending.user, pending.force_login)
        pending.sid, pending.auth_time = session.sid, session.auth_time
    code = site.store.issue_code(b, pending, site.knobs().code_lifetime)
    answer = {"code": code}
    if (
        b.user_field
        and pending.response_mode == "form_post"
        and site.store.first_authorization(b.name, pending.client_id, pending.user.key)
    ):
        # Apple posts the user's name on the first authorization only:
        # https://developer.apple.com/documentation/signinwithapple/incorporating-sign-in-with-apple-into-other-platforms
        first, _, last = pending.user.name.partition(" ")
        user = {"name": {"firstName": first, "lastName": last}, "email": pending.user.email}
        answer["user"] = json.dumps(user)
    return _callback(site, b, pending, answer)


def _form_post(redirect_uri: str, fields: Mapping[str, str]) -> Response:
    """A page whose form posts ``fields`` to ``redirect_uri`` as soon as it loads (Form Post
    Response Mode §2: "The form is submitted with the HTTP POST method")."""
    inputs = "".join(
        f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
        for k, v in fields.items()
    )
    body = (
        "<!doctype html><html><head><title>Submit This Form</title></head>"
        "<body onload='document.forms[0].submit()'>"
        f"<form method='post' action='{html.escape(redirect_uri)}'>{inputs}"
        "<noscript><button type='submit'>Continue</button></noscript></form></body></html>"
    )
    return HTMLResponse(body, 200, headers=dict(NO_STORE))


def _deny(site: Site, b: Behaviour, pending: Pending) -> Response:
    site.store.count(b.name, "consent_denied")
    query = {"error": "access_denied", "error_description": b.access_denied_description}
    if b.access_denied_uri:
        query["error_uri"] = b.access_denied_uri
    return _callback(site, b, pending, query)


def _error_page(site: Site, b: Behaviour, error: str, detail: str) -> Response:
    # RFC 6749 §4.1.2.1: with a bad client or redirect URI, never redirect.
    site.store.count_error(b.name, error)
    body = (
        f"<h1>{html.escape(b.display_name)}: sign-in error</h1>"
        f"<p data-error='{html.escape(error)}'><strong>{html.escape(error)}</strong>: "
        f"{html.escape(detail)}</p>"
    )
    return page(f"Error: {error}", body, 400)


def _consent_page(
    b: Behaviour, path: str, ticket: str, pending: Pending, signed_in: bool = True
) -> Response:
    scopes = "".join(f"<li>{html.escape(s)}</li>" for s in pending.scopes) or "<li>none</li>"
    who = "Signed in as" if signed_in else "Signing in as"
    body = (
        f"<h1>Sign in with {html.escape(b.display_name)}</h1>"
        f"<p>{who} <strong>{html.escape(pending.user.email)}</strong> "
        "(keyturn emulator).</p>"
        f"<p>The application <code>{html.escape(pending.client_id)}</code> asks for:</p>"
        f"<ul>{scopes}</ul>"
        f"<form method='post' action='{html.escape(path)}'>"
        f"<input type='hidden' name='ticket' value='{html.escape(ticket)}'>"
        "<button type='submit' name='decision' value='allow' id='allow'>Allow</button>"
        "<button type='submit' name='decision' value='deny' id='deny'>Deny</button>"
        "</form>"
    )
    return page(f"Sign in with {b.display_name}", body)
