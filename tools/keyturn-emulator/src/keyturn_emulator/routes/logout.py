"""RP-Initiated Logout 1.0 at the ``end_session_endpoint`` of profiles that have one (``oidc``):
https://openid.net/specs/openid-connect-rpinitiated-1_0.html

``GET`` with the parameters in the query, or ``POST`` with them as a form (§2): every one
optional, as the specification has them.

* ``id_token_hint``: must be an ID token this emulator signed (with any key it ever made,
  published or not), whose ``iss`` is the profile's issuer and whose ``aud`` names the
  client. An expired one is accepted, as §2 allows ("even when the exp time has passed").
* ``client_id``: must be the registered client and, with a hint, one of its audiences (§2).
* ``post_logout_redirect_uri``: needs ``client_id`` or ``id_token_hint`` beside it (§2),
  and must **exactly** match a URI registered for the client, by simple string comparison
  (§3): ``Emulator(post_logout_redirect_uris=...)``,
  :meth:`~keyturn_emulator.Emulator.register_post_logout_redirect_uris` or the
  ``/_emulator/post-logout-redirect-uris`` control. Loopback URIs get no exemption here,
  unlike redirect URIs at the authorize endpoint.
* ``state``: given back on the redirect.
* ``logout_hint``, ``ui_locales``: accepted and not used.

When a check fails the emulator logs nobody out and shows an HTML error page (400) naming
the failure, never a redirect (§4). Otherwise it ends the user's session at the provider
(the hint's ``sub``, provided the session is still the one the hint's ``sid`` names: an old
hint does not end a newer session), so ``prompt=none`` then answers ``login_required``;
counts a ``logout``; and redirects to the ``post_logout_redirect_uri`` with ``state``, or,
without one, shows a "signed out" page. A
logout without a hint ends no session (the emulator keeps no browser cookie to tell whose it
would be) and is counted all the same. Tokens are not revoked: a grant and its refresh tokens
outlive the session at the provider.
"""

from __future__ import annotations

import hmac
import html
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keyturn_emulator.profiles import Behaviour

from .answers import NO_STORE, page
from .forms import params
from .site import Handler, Site

__all__ = ["routes"]


def routes(site: Site, b: Behaviour) -> list[Route]:
    """The profile's end-session route (``GET`` and ``POST``), if it has one.

    :param site: the emulated provider.
    :param b: the profile.
    """
    if "end_session" not in b.paths:
        return []
    path = f"/{b.name}" + b.paths["end_session"]
    return [Route(path, _end_session(site, b), methods=["GET", "POST"])]


class _Refused(Exception):
    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


def _end_session(site: Site, b: Behaviour) -> Handler:
    async def end_session(request: Request) -> Response:
        query: Mapping[str, str]
        query = await params(request) if request.method == "POST" else request.query_params
        try:
            hint, redirect = _check(site, b, query)
        except _Refused as refused:
            site.store.count_error(b.name, refused.error)
            return _error_page(b, refused.error, refused.detail)
        if hint is not None:
            sid = hint.get("sid")
            site.store.end_session(b.name, str(hint["sub"]), sid if isinstance(sid, str) else None)
        site.store.count(b.name, "logout")
        if redirect is None:
            body = (
                f"<h1>{html.escape(b.display_name)}</h1>"
                "<p data-logout='done'>You are signed out (keyturn emulator).</p>"
            )
            return page("Signed out", body)
        state = query.get("state")
        target = redirect
        if state is not None:
            joiner = "&" if urlsplit(redirect).query else "?"
            target = redirect + joiner + urlencode({"state": state})
        return Response(status_code=302, headers={"Location": target, **NO_STORE})

    return end_session


def _check(
    site: Site, b: Behaviour, query: Mapping[str, str]
) -> tuple[dict[str, Any] | None, str | None]:
    """The hint's claims and the URI to go back to, both optional.

    :raises _Refused: a check of the module docstring failed.
    """
    hint: dict[str, Any] | None = None
    audiences: list[Any] = []
    raw_hint = query.get("id_token_hint")
    if raw_hint:
        hint = site.keys.issued_here(raw_hint)
        if hint is None or hint.get("iss") != site.issuer(b):
            raise _Refused("invalid_request", "id_token_hint is not an ID token issued here.")
        audience = hint.get("aud")
        named = [audience] if isinstance(audience, str) else audience
        if not isinstance(named, list) or site.client_id not in named:
            raise _Refused("invalid_request", "id_token_hint was issued to another client.")
        if not isinstance(hint.get("sub"), str):
            raise _Refused("invalid_request", "id_token_hint names no subject.")
        audiences = named
    client_id = query.get("client_id")
    if client_id is not None:
        if not hmac.compare_digest(client_id.encode(), site.client_id.encode()):
            raise _Refused("invalid_client", "The client is not registered.")
        if hint is not None and client_id not in audiences:
            raise _Refused("invalid_request", "client_id is not an audience of id_token_hint.")
    redirect = query.get("post_logout_redirect_uri")
    if redirect is not None:
        if hint is None and client_id is None:
            raise _Refused(
                "invalid_request",
                "post_logout_redirect_uri needs client_id or id_token_hint beside it.",
            )
        if not site.registration.logout_uri_registered(redirect):
            raise _Refused(
                "invalid_request",
                "post_logout_redirect_uri is not registered for this client.",
            )
    return hint, redirect


def _error_page(b: Behaviour, error: str, detail: str) -> Response:
    # RP-Initiated Logout §4: no redirect when validation fails.
    body = (
        f"<h1>{html.escape(b.display_name)}: sign-out error</h1>"
        f"<p data-error='{html.escape(error)}'><strong>{html.escape(error)}</strong>: "
        f"{html.escape(detail)}</p>"
    )
    return page(f"Error: {error}", body, 400)
