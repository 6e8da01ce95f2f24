"""The routes under the base path (``/auth`` by default), as operations (:mod:`keyturn.effects`).

================================  =============================================================
``GET  /auth/signin/{provider}``  build the authorize URL, seal state/PKCE/nonce and the
                                  bounded ``callbackUrl`` in a 15-minute cookie (under 4 KB),
                                  redirect to the provider
``GET  /auth/callback/{provider}`` check the callback against that cookie, exchange the code,
                                  run ``jwt`` for sign-in, start the session, redirect to the
                                  same-origin ``callbackUrl``
``GET  /auth/session``            run ``jwt`` (refreshing when due) then ``session``; JSON like
                                  Auth.js's ``/api/auth/session``, ``null`` when signed out
``GET  /auth/csrf``               ``{"csrfToken": ...}`` for the POST routes
``POST /auth/signout``            CSRF-checked: revoke at the provider where it can, end the
                                  session, clear the cookies; for a provider in
                                  ``logout_at_provider``, send the browser on to its
                                  ``end_session_endpoint`` (RP-Initiated Logout 1.0)
``GET  /auth/signout/callback``   where that provider sends the browser back: check ``state``
                                  against the 15-minute ``keyturn.signout`` cookie, then
                                  redirect to the sign-out's ``callbackUrl``
``GET  /auth/providers``          the providers one can sign in with
``GET  /auth/client.js``          the browser helper: ``getSession``, ``signIn``, ``signOut``,
                                  ``watchSession``
================================  =============================================================
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from keyturn.callback_user import asks_form_post
from keyturn.effects import Operation
from keyturn.errors import (
    AuthorizationDenied,
    CallbackError,
    ConfigurationError,
    KeyturnError,
    MissingCodeError,
    ProviderError,
    StateMismatchError,
    UnknownProviderError,
)
from keyturn.models import JWT, REVEAL, AuthorizationRequest, Session

from .messages import WebRequest, WebResponse
from .redirects import same_origin, same_origin_target
from .settings import WebSettings, end_session_problem
from .strategies import Current, SessionTooLargeError

__all__ = ["Routes", "session_json"]

log = logging.getLogger("keyturn.web")

FLOW_MAX_AGE = 15 * 60
#: Seconds a browser sent to log out at the provider has to come back (the provider may ask
#: the user to confirm first).
SIGNOUT_MAX_AGE = 15 * 60
#: The longest URL a browser is sent to for logging out at the provider. Servers refuse a
#: longer request line (nginx keeps one in an 8 KB buffer, Apache's LimitRequestLine is 8190
#: bytes), so an ID token that would make it longer is left out of it.
MAX_END_SESSION_URL = 8000
#: What a browser keeps of one cookie (name, value and attributes); a longer one is dropped.
MAX_COOKIE = 4096


def session_json(session: Session, expires: int, expose_access_token: bool) -> dict[str, Any]:
    """The ``/auth/session`` answer for a session: camelCase, as Auth.js's."""
    user = session.user
    data: dict[str, Any] = {
        "user": None
        if user is None
        else {"id": user.id, "name": user.name, "email": user.email, "image": user.image},
        "provider": session.provider,
        "expires": datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z"),
        "accessTokenExpires": session.expires_at,
    }
    if session.error is not None:
        data["error"] = session.error
    if session.claims:
        data["claims"] = session.claims
    if expose_access_token and session.access_token is not None:
        data["accessToken"] = session.access_token.get_secret_value()
    return data


class Routes:
    """Dispatches a :class:`WebRequest` to the route flows. No I/O of its own."""

    def __init__(self, settings: WebSettings) -> None:
        self.s = settings
        #: The routes that need no I/O, by the last part of their path.
        self._plain: dict[str, Callable[[WebRequest], WebResponse]] = {
            "csrf": self.csrf,
            "providers": self.providers,
            "client.js": self.client_js,
        }

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, request: WebRequest) -> Operation[WebResponse]:
        """The response to ``request``: a 404 for paths outside the routes above."""
        base = self.s.base_path
        rest = request.path[len(base) :] if request.path.startswith(base + "/") else None
        parts = [] if rest is None else rest.strip("/").split("/")
        name = parts[0] if parts else ""
        if name in ("signin", "callback") and len(parts) == 2 and parts[1]:
            if name == "callback" and self._posts_callback(parts[1]):
                if request.method != "POST":
                    return _method_not_allowed("POST")
                return (yield from self.callback(request, parts[1]))
            if request.method != "GET":
                return _method_not_allowed("GET")
            if name == "signin":
                return (yield from self.signin(request, parts[1]))
            return (yield from self.callback(request, parts[1]))
        if name == "signout" and parts[1:] == ["callback"]:
            if request.method != "GET":
                return _method_not_allowed("GET")
            return self.signout_callback(request)
        if len(parts) != 1 or name not in (*self._plain, "session", "signout"):
            return _not_found()
        expected = "POST" if name == "signout" else "GET"
        if request.method != expected:
            return _method_not_allowed(expected)
        if name == "session":
            return (yield from self.session(request))
        if name == "signout":
            return (yield from self.signout(request))
        return self._plain[name](request)

    # -- sign-in --------------------------------------------------------------------------

    def signin(self, request: WebRequest, provider: str) -> Operation[WebResponse]:
        origin = self.s.origin(request)
        target = same_origin_target(request.query.get("callbackUrl"), origin)
        if target is None:
            return self._refused("callbackUrl must be a page of this site", 400)
        client = self.s.client
        try:
            # Resolves the provider first: its discovery document may have to be fetched.
            auth = yield from client.authorize_url_op(
                provider,
                f"{origin}{self.s.base_path}/callback/{provider}",
                scopes=self.s.scopes.get(provider),
            )
        except UnknownProviderError:
            return self._refused(f"There is no sign-in provider called {provider!r}.", 404)
        except ConfigurationError as exc:
            log.error("sign-in with %s is not configured: %s", provider, exc)
            return self._refused(f"Sign-in with {provider} is not configured on this site.", 500)
        except ProviderError as exc:
            log.warning("sign-in with %s could not start: %s", provider, exc)
            message = f"{provider} could not be reached to start the sign-in. Please try again."
            return self._failed(provider, message, 502)
        # The authorize URL is not kept: the callback never needs it, and it would double the
        # cookie (it repeats the state and nonce, and grows with the scopes).
        started = auth.model_dump(mode="json", context=REVEAL, exclude={"url"})
        sealed = self.s.flow_sealer.seal({"request": started, "callbackUrl": target}, FLOW_MAX_AGE)
        policy = self.s.flow_policy(request, self._posts_callback(provider))
        cookie = policy.set(policy.name(self.s.flow_cookie), sealed, FLOW_MAX_AGE)
        if len(cookie) > MAX_COOKIE:  # browsers would drop it, and the callback would fail
            log.error(
                "sign-in with %s is not possible: its flow cookie would take %d bytes, over the "
                "%d a browser keeps (too many scopes?)",
                provider,
                len(cookie),
                MAX_COOKIE,
            )
            return self._refused(f"Sign-in with {provider} is not configured on this site.", 500)
        return WebResponse.redirect(auth.url, 302).add_cookies([cookie])

    def _posts_callback(self, provider: str) -> bool:
        """Whether ``provider``'s spec asks for ``response_mode=form_post``: its callback is
        then a ``POST`` (and only a ``POST``), and its flow cookie ``SameSite=None``."""
        try:
            return asks_form_post(self.s.client.provider(provider, deployed=False))
        except KeyturnError:
            return False

    def _posted_params(self, request: WebRequest, provider: str) -> dict[str, str] | None:
        """The parameters of a ``form_post`` callback, or ``None`` when the POST is refused.

        The body must be a form; an ``Origin`` header, when the browser sends one that is not
        ``null``, must be this site's or the provider's authorization endpoint's. That the
        sign-in was started in this browser is checked as for a ``GET``: the form's ``state``
        against the flow cookie's.
        """
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            log.warning("a %s callback POST that is not a form was refused", provider)
            return None
        sent_from = request.headers.get("origin")
        if sent_from is not None and sent_from != "null":
            try:
                endpoint = urlsplit(self.s.client.provider(provider).authorization_endpoint)
                provider_origin = f"{endpoint.scheme}://{endpoint.netloc}"
            except (KeyturnError, ValueError):
                provider_origin = ""
            allowed = (self.s.origin(request), provider_origin)
            if not any(same_origin(sent_from, url) for url in allowed if url):
                log.warning("a %s callback POST from another site was refused", provider)
                return None
        return request.form

    def callback(self, request: WebRequest, provider: str) -> Operation[WebResponse]:
        posted = request.method == "POST"
        policy = self.s.flow_policy(request, posted)
        flow_name = policy.name(self.s.flow_cookie)
        clear_flow = [policy.expire(flow_name)] if flow_name in request.cookies else []
        params = request.query
        if posted:
            form = self._posted_params(request, provider)
            if form is None:
                message = (
                    "This sign-in response did not come from the provider. Please sign in again."
                )
                return self._failed(provider, message, 403).add_cookies(clear_flow)
            params = form
        state = self.s.flow_sealer.unseal(request.cookies.get(flow_name, ""))
        started: AuthorizationRequest | None = None
        if state is not None and isinstance(state.get("request"), dict):
            try:
                started = AuthorizationRequest.model_validate({"url": "", **state["request"]})
            except ValueError:
                started = None
        if started is None or started.provider != provider:
            log.warning("a %s callback arrived with no sign-in in progress; refused", provider)
            return self._failed(
                provider,
                "This sign-in link was already used, has expired, or was started in another "
                "browser. Please sign in again.",
                400,
            ).add_cookies(clear_flow)
        assert state is not None
        try:
            jwt = yield from self.s.client.sign_in_op(
                started, params, fetch_profile=self.s.fetch_profile
            )
        except CallbackError as exc:
            return self._failed(provider, _callback_message(provider, exc), 400).add_cookies(
                clear_flow
            )
        except ProviderError as exc:
            log.warning("sign-in with %s failed at the provider: %s", provider, exc.error)
            message = f"{provider} could not complete the sign-in ({exc.error}). Please try again."
            return self._failed(provider, message, 502).add_cookies(clear_flow)
        except ConfigurationError as exc:  # its discovery document, say, cannot be used
            log.error("sign-in with %s is not configured: %s", provider, exc)
            message = f"Sign-in with {provider} is not configured on this site."
            return self._refused(message, 500).add_cookies(clear_flow)
        except RecursionError:  # an answer (the ID token's JSON) nested deeper than parsers go
            log.warning("a %s sign-in answer nested too deeply to read; refused", provider)
            message = f"{provider} sent an answer that could not be read. Please try again."
            return self._failed(provider, message, 502).add_cookies(clear_flow)
        strategy = self.s.strategy
        replaced = yield from strategy.open(request, policy)
        try:
            cookies = yield from strategy.create(request, policy, jwt)
        except SessionTooLargeError as exc:
            return (yield from self._too_large(request, provider, jwt, exc, replaced, clear_flow))
        if replaced is not None:  # a new sign-in ends the session this browser had (its
            yield from strategy.end(request, policy, replaced)  # cookies are replaced)
        log.info("signed in with %s", provider)
        target = str(state.get("callbackUrl") or "/")
        return WebResponse.redirect(target).add_cookies(cookies + clear_flow)

    def _too_large(
        self,
        request: WebRequest,
        provider: str,
        jwt: JWT,
        exc: SessionTooLargeError,
        replaced: Current | None,
        clear_flow: list[str],
    ) -> Operation[WebResponse]:
        """The answer to a sign-in whose session cannot be stored: a page, and a log line."""
        log.error("signing in with %s failed: %s", provider, exc)
        policy = self.s.policy(request)
        ended = yield from self.s.strategy.end(request, policy, replaced)
        if self.s.revoke_on_signout:  # no session holds the grant: give it back
            yield from self._revoke(jwt)
        message = (
            f"Signing in with {provider} worked, but the session it made is too large for this "
            "site to keep, so you are not signed in. This needs a change on the site: please "
            "tell its operator."
        )
        return self._failed(provider, message, 507).add_cookies(ended + clear_flow)

    # -- session --------------------------------------------------------------------------

    def current(self, request: WebRequest) -> Operation[tuple[Session | None, int, list[str]]]:
        """The request's session after any due refresh, when it ends, and cookies to set."""
        policy = self.s.policy(request)
        strategy = self.s.strategy
        opened = yield from strategy.open(request, policy)
        if opened is None:
            stale = yield from strategy.end(request, policy, None)
            return None, 0, stale
        current, cookies = yield from strategy.refresh(request, policy, opened)
        if current is None:  # ended while it was being refreshed
            stale = yield from strategy.end(request, policy, None)
            return None, 0, cookies + stale
        return self.s.client.session(current.jwt), current.expires, cookies

    def session(self, request: WebRequest) -> Operation[WebResponse]:
        session, expires, cookies = yield from self.current(request)
        if session is None:
            return WebResponse.json(None).add_cookies(cookies)
        body = session_json(session, expires, self.s.expose_access_token)
        return WebResponse.json(body).add_cookies(cookies)

    def csrf(self, request: WebRequest) -> WebResponse:
        policy = self.s.policy(request)
        name = policy.name(self.s.csrf_cookie)
        token, cookie = self.s.csrf.issue(request.cookies.get(name))
        response = WebResponse.json({"csrfToken": token})
        if cookie is not None:
            response.add_cookies([policy.set(name, cookie, self.s.session_max_age)])
        strays = policy.strays(self.s.csrf_cookie)
        return response.add_cookies([policy.expire(n) for n in strays if n in request.cookies])

    def signout(self, request: WebRequest) -> Operation[WebResponse]:
        policy = self.s.policy(request)
        csrf_cookie = request.cookies.get(policy.name(self.s.csrf_cookie))
        if not self.s.csrf.check(request, csrf_cookie, self.s.origin(request)):
            log.warning("a sign-out without a valid CSRF token was refused")
            if request.wants_json:
                return WebResponse.json({"error": "csrf_token_invalid"}, 403)
            return self._refused("The sign-out request was not sent by this site.", 403)
        target = same_origin_target(request.form.get("callbackUrl"), self.s.origin(request))
        if target is None:
            return self._refused("callbackUrl must be a page of this site", 400)
        current = yield from self.s.strategy.open(request, policy)
        if current is not None and self.s.revoke_on_signout:
            yield from self._revoke(current.jwt)
        cookies = yield from self.s.strategy.end(request, policy, current)
        log.info("signed out")
        goto = target
        if current is not None and current.jwt.provider in self.s.logout_at_provider:
            at_provider = yield from self._end_session(request, current.jwt, target)
            if at_provider is not None:
                goto, cookie = at_provider
                cookies.append(cookie)
        # goto may carry the ID token (id_token_hint): it goes to the browser, never to a log.
        if request.wants_json:
            return WebResponse.json({"url": goto}).add_cookies(cookies)
        return WebResponse.redirect(goto).add_cookies(cookies)

    def _end_session(
        self, request: WebRequest, jwt: JWT, target: str
    ) -> Operation[tuple[str, str] | None]:
        """Where to send the browser to log out at ``jwt``'s provider, and the cookie that
        brings it back to ``target``; ``None`` (logged) when that cannot be done.

        The URL is the provider's ``end_session_endpoint`` with ``id_token_hint`` (when the
        session still holds its ID token), ``client_id``, ``post_logout_redirect_uri`` and a
        fresh ``state`` (OpenID Connect RP-Initiated Logout 1.0 section 2), its own query kept.
        A spec with a ``discovery_url`` is resolved first (usually from the cache).
        """
        provider = jwt.provider
        try:
            spec = yield from self.s.client.resolve_op(provider)
            client_id = self.s.client.credentials(spec).client_id
        except ConfigurationError as exc:
            log.error("logging out at %s is not possible (%s); signed out here only", provider, exc)
            return None
        except ProviderError as exc:  # the discovery document cannot be fetched just now
            log.warning(
                "logging out at %s is not possible now (%s); signed out here only",
                provider,
                exc.error,
            )
            return None
        endpoint = spec.end_session_endpoint
        if endpoint is None:
            log.error(
                "logout_at_provider names %s, whose end_session_endpoint is not known: signed "
                "out here only",
                provider,
            )
            return None
        problem = end_session_problem(endpoint)
        if problem is not None:
            log.error(
                "logging out at %s is not possible: its end_session_endpoint %s; signed out "
                "here only",
                provider,
                problem,
            )
            return None
        state = secrets.token_urlsafe(32)
        params = {
            "client_id": client_id,
            "post_logout_redirect_uri": (
                f"{self.s.origin(request)}{self.s.base_path}/signout/callback"
            ),
            "state": state,
        }
        url = _with_query(endpoint, params)
        id_token = jwt.tokens.id_token
        if id_token is None:  # left out of a jwt cookie that could not fit it (warned then)
            log.info("logging out at %s without id_token_hint: the session holds none", provider)
        else:
            hinted = _with_query(endpoint, {"id_token_hint": id_token.get_secret_value(), **params})
            if len(hinted) <= MAX_END_SESSION_URL:
                url = hinted
            else:
                log.warning(
                    "logging out at %s without id_token_hint: with it the URL would take %d "
                    "characters, over the %d servers accept",
                    provider,
                    len(hinted),
                    MAX_END_SESSION_URL,
                )
        sealed = self.s.signout_sealer.seal(
            {"state": state, "callbackUrl": target, "provider": provider}, SIGNOUT_MAX_AGE
        )
        policy = self.s.policy(request)
        cookie = policy.set(policy.name(self.s.signout_cookie), sealed, SIGNOUT_MAX_AGE)
        log.info("signed out; sending the browser to log out at %s", provider)
        return url, cookie

    def signout_callback(self, request: WebRequest) -> WebResponse:
        """The browser back from logging out at the provider: on to the sign-out's target.

        Only a ``state`` equal to the one sealed in this browser's ``keyturn.signout`` cookie
        is followed, to the same-origin target sealed with it; anything else is a ``400``
        page whose only link is the app's home. Either way the cookie is cleared, and the
        session, if any, is left as it is: a link to this route signs nobody out.
        """
        policy = self.s.policy(request)
        name = policy.name(self.s.signout_cookie)
        clear = [policy.expire(name)] if name in request.cookies else []
        saved = self.s.signout_sealer.unseal(request.cookies.get(name, ""))
        expected = None if saved is None else saved.get("state")
        sent = request.query.get("state", "")
        if not (
            isinstance(expected, str)
            and expected
            and hmac.compare_digest(expected.encode(), sent.encode())
        ):
            log.warning(
                "a return from logging out at a provider did not match a sign-out started in "
                "this browser; refused"
            )
            message = (
                "This return from signing out at the provider does not match a sign-out "
                "started in this browser: it was already used, has expired, or was started "
                "in another browser."
            )
            return self._refused(message, 400).add_cookies(clear)
        assert saved is not None
        target = same_origin_target(str(saved.get("callbackUrl") or "/"), self.s.origin(request))
        log.info("back from logging out at %s", saved.get("provider"))
        return WebResponse.redirect(target or "/").add_cookies(clear)

    def _revoke(self, jwt: JWT) -> Operation[None]:
        try:
            # The revocation endpoint may come from the provider's discovery document.
            spec = yield from self.s.client.resolve_op(jwt.provider)
        except UnknownProviderError:
            return
        except KeyturnError as exc:
            log.warning("revoking the %s grant at sign-out failed: %s", jwt.provider, exc)
            return
        if spec.revocation_endpoint is None:
            return
        try:
            yield from self.s.client.revoke_op(jwt.tokens)
        except KeyturnError as exc:  # the session ends anyway; the grant may outlive it
            log.warning("revoking the %s grant at sign-out failed: %s", jwt.provider, exc)

    # -- the rest -------------------------------------------------------------------------

    def providers(self, request: WebRequest) -> WebResponse:
        base = self.s.base_path
        listing = {
            pid: {"id": pid, "name": spec.name, "signinUrl": f"{base}/signin/{pid}"}
            for pid, spec in sorted(self.s.client.providers.items())
        }
        return WebResponse.json(listing)

    def client_js(self, request: WebRequest) -> WebResponse:
        script = _client_script()
        headers = [
            ("content-type", "text/javascript; charset=utf-8"),
            ("cache-control", "public, max-age=300"),
            ("x-content-type-options", "nosniff"),
        ]
        return WebResponse(200, headers, script)

    # -- pages ----------------------------------------------------------------------------

    def _refused(self, message: str, status: int) -> WebResponse:
        return WebResponse.page("Request refused", message, status, {"Home": "/"})

    def _failed(self, provider: str, message: str, status: int) -> WebResponse:
        links = {"Try again": f"{self.s.base_path}/signin/{provider}", "Home": "/"}
        return WebResponse.page("Sign-in failed", message, status, links)


@functools.cache
def _client_script() -> bytes:
    """client.js, read from the package once."""
    return resources.files("keyturn.web").joinpath("client.js").read_bytes()


def _with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` added to its query (the query it has is kept)."""
    parts = urlsplit(url)
    added = urlencode(params)
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _not_found() -> WebResponse:
    return WebResponse.json({"error": "not_found"}, 404)


def _method_not_allowed(allowed: str) -> WebResponse:
    response = WebResponse.json({"error": "method_not_allowed"}, 405)
    response.headers.append(("allow", allowed))
    return response


def _callback_message(provider: str, exc: CallbackError) -> str:
    log.warning("a %s callback was refused: %s", provider, type(exc).__name__)
    if isinstance(exc, AuthorizationDenied):
        return f"Sign-in was not completed at {provider} ({exc.error})."
    if isinstance(exc, StateMismatchError):
        return (
            "This sign-in response does not match the sign-in this browser started, so it was "
            "refused. Please sign in again."
        )
    if isinstance(exc, MissingCodeError):
        return f"The response from {provider} carried no authorization code. Please try again."
    return f"The response from {provider} could not be verified, so it was refused."
