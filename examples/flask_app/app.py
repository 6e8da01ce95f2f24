"""A Flask app that signs people in with keyturn and keeps their access tokens fresh.

Run it::

    export KEYTURN_SECRET="$(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
    export KEYTURN_GITHUB_CLIENT_ID=... KEYTURN_GITHUB_CLIENT_SECRET=...
    flask --app examples/flask_app/app.py run --host 127.0.0.1 --port 5000

The whole integration is the adapter below: :func:`web_request` turns Flask's request into a
:class:`~keyturn.web.WebRequest`, :func:`flask_response` turns keyturn's
:class:`~keyturn.web.WebResponse` into a Flask response, and :func:`apply` copies the cookies
of a refreshed session onto a page the app renders itself.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode

from flask import Flask, Response, current_app, jsonify, request

from keyturn import REFRESH_ACCESS_TOKEN_ERROR, KeyturnError, TokenSet
from keyturn.web import CurrentSession, WebAuth, WebRequest, WebResponse

__all__ = ["apply", "create_app", "flask_response", "web_request"]

#: Bytes of request body Flask accepts (keyturn's sign-out form is tiny; this app takes no
#: uploads). A larger body is answered 413 before keyturn sees it.
MAX_BODY = 64 * 1024


# -- the adapter --------------------------------------------------------------------------


def web_request() -> WebRequest:
    """The current Flask request as keyturn's neutral request."""
    return WebRequest(
        method=request.method,
        url=request.url,
        headers={name.lower(): value for name, value in request.headers.items()},
        cookies=dict(request.cookies),
        body=request.get_data() if request.method == "POST" else b"",
    )


def flask_response(answer: WebResponse) -> Response:
    """keyturn's response as a Flask response (repeated ``Set-Cookie`` headers kept)."""
    return Response(answer.body, status=answer.status, headers=answer.headers)


def apply(current: CurrentSession, response: Response) -> Response:
    """Add the cookies a refresh wrote (``current.cookies``) to ``response``; returns it."""
    for cookie in current.cookies:
        response.headers.add("Set-Cookie", cookie)
    return response


def auth() -> WebAuth:
    """The app's :class:`~keyturn.web.WebAuth`."""
    found: WebAuth = current_app.extensions["keyturn"]
    return found


# -- the app ------------------------------------------------------------------------------


def create_app(web_auth: WebAuth | None = None) -> Flask:
    """The example app.

    :param web_auth: keyturn's routes and settings; by default ``WebAuth()``: a blocking
        :class:`~keyturn.Keyturn` reading ``KEYTURN_<PROVIDER>_CLIENT_ID`` and
        ``KEYTURN_<PROVIDER>_CLIENT_SECRET``, cookies sealed with ``KEYTURN_SECRET``, the
        ``jwt`` strategy. The routes live under its ``base_path``.
    """
    if web_auth is None:
        web_auth = WebAuth()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["keyturn"] = web_auth
    base = web_auth.base_path

    @app.route(f"{base}/<path:rest>", methods=["GET", "POST"])
    def keyturn_routes(rest: str) -> Response:
        """Every keyturn route: sign-in, callback, session, csrf, sign-out, client.js."""
        return flask_response(auth().handle(web_request()))

    @app.get("/")
    def home() -> Response:
        """Who is signed in, or a sign-in link per provider."""
        current = auth().current(web_request())
        session = current.session
        if session is None:
            back = request.args.get("callbackUrl", "/")
            links = "".join(
                f'<li><a href="{html.escape(auth().sign_in_url(pid, back))}">'
                f"Sign in with {html.escape(spec.name)}</a></li>"
                for pid, spec in sorted(auth().client.providers.items())
            )
            body = f"<h1>Signed out</h1><ul>{links}</ul>"
        else:
            name = session.user.name if session.user else None
            again = html.escape(auth().sign_in_url(session.provider, "/"))
            note = (
                f"<p id='error'>Your sign-in has expired: <a href=\"{again}\">sign in again</a>."
                "</p>"
                if current.needs_sign_in
                else ""
            )
            body = (
                f"<h1>Signed in as <span id='user'>{html.escape(name or '?')}</span></h1>"
                f"<p>with {html.escape(session.provider)}</p>{note}"
                "<button onclick='keyturn.signOut()'>Sign out</button>"
                f"<script src='{base}/client.js'></script>"
                "<script>keyturn.watchSession();</script>"
            )
        page = f"<!doctype html><html><head><meta charset='utf-8'></head><body>{body}</body></html>"
        response = Response(page, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return apply(current, response)

    @app.get("/api/profile")
    def profile() -> Response:
        """The user's profile, fetched from the provider with a valid access token.

        A visitor who must sign in (signed out, or the refresh failed for good) is sent to
        sign-in when a browser asked for a page, and gets a 401 otherwise.
        """
        current = auth().current(web_request())
        token = current.access_token
        if current.session is None or token is None or current.needs_sign_in:
            return apply(current, sign_in_required(current))
        tokens = TokenSet(provider=current.session.provider, access_token=token)
        try:
            fetched = auth().client.userinfo(tokens)
        except KeyturnError as exc:  # the message never holds the token
            current_app.logger.warning("the provider refused the profile request: %s", exc)
            answer = jsonify(error="provider_error")
            answer.status_code = 502
            return apply(current, answer)
        answer = jsonify(
            provider=current.session.provider,
            id=fetched.id,
            name=fetched.name,
            email=fetched.email,
        )
        answer.headers["Cache-Control"] = "no-store"
        return apply(current, answer)

    return app


def sign_in_required(current: CurrentSession) -> Response:
    """A 303 to sign-in for a browser's page request, else a 401 JSON answer.

    A session whose refresh failed for good goes straight to its provider's sign-in; a
    signed-out visitor goes to the home page's sign-in links. Either way the visitor comes
    back here afterwards.
    """
    session = current.session
    here = request.full_path.rstrip("?")
    if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
        if session is not None:
            target = auth().sign_in_url(session.provider, here)
        else:
            target = "/?" + urlencode({"callbackUrl": here})
        response = Response(status=303, headers={"Location": target})
    else:
        error = "signed_out" if session is None else REFRESH_ACCESS_TOKEN_ERROR
        response = jsonify(error=error)
        response.status_code = 401
    response.headers["Cache-Control"] = "no-store"
    return response


if __name__ == "__main__":  # python examples/flask_app/app.py
    create_app().run(host="127.0.0.1", port=5000)
