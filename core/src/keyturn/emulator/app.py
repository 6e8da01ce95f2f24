"""The emulator's HTTP surface: a Starlette app with every profile's endpoints.

Each profile lives under ``/<profile>`` with the paths of the real provider (see
:mod:`keyturn.emulator.profiles`), so ``point()`` can swap only scheme, host and a prefix.
``/_emulator/...`` holds the controls:

* ``GET /_emulator/state``: counters (per profile and summed), knobs and endpoints, as JSON.
* ``POST /_emulator/revoke``: revoke grants at the provider side; JSON or form fields
  ``profile`` and ``user`` (both optional); answers ``{"revoked": n}``.
* ``POST /_emulator/configure``: change knobs (JSON object); answers the new knobs.
* ``POST /_emulator/reset``: zero the counters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .faults import Knobs
from .idtoken import sign_id_token
from .profiles import PROFILES, Behaviour, Failure
from .state import Issued, Pending, Refusal, Store, User

__all__ = ["LOOPBACK_HOSTS", "EmulatorApp", "verify_pkce"]

Handler = Callable[[Request], Awaitable[Response]]

#: Hosts a redirect URI may name without being registered (RFC 8252 §7.3 loopback).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

_UNRESERVED = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def verify_pkce(verifier: str, challenge: str, method: str) -> bool:
    """RFC 7636 §4.6: does ``verifier`` match the ``challenge`` sent with ``method``?"""
    if not _UNRESERVED.match(verifier):
        return False
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    else:
        computed = verifier
    return hmac.compare_digest(computed, challenge)


def _basic(header: str | None) -> tuple[str, str] | None:
    """``(client_id, secret)`` from ``Authorization: Basic``; each form-decoded (RFC 6749
    §2.3.1). ``None`` when there is no Basic header; ``("", "")`` when it is malformed."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return ("", "")
    return unquote_plus(client_id), unquote_plus(secret)


def _bearer(request: Request, token_scheme: bool) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    accepted = ("bearer", "token") if token_scheme else ("bearer",)
    if scheme.lower() in accepted and value.strip():
        return value.strip()
    return None


def _accepts_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "").lower()


async def _params(request: Request) -> dict[str, str]:
    """The request's parameters: a form body, or a JSON object body (GitHub takes both)."""
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): str(v) for k, v in data.items() if v is not None}
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return {}


def _with_query(url: str, params: Mapping[str, str]) -> str:
    joiner = "&" if urlsplit(url).query else "?"
    return url + joiner + urlencode(dict(params))


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;"
        "padding:0 1rem}button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}"
        "</style></head>"
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_NO_STORE)


class EmulatorApp:
    """Builds the Starlette app over a :class:`~keyturn.emulator.state.Store`.

    :param store: the shared state.
    :param base_url: ``http://127.0.0.1:PORT``, the root of every endpoint and issuer.
    :param client_id: the one registered client.
    :param client_secret: its secret.
    :param knobs: returns the current knobs.
    :param configure: applies new knobs (for ``POST /_emulator/configure``).
    :param redirect_uris: redirect URIs accepted besides loopback ones.
    """

    def __init__(
        self,
        store: Store,
        base_url: str,
        client_id: str,
        client_secret: str,
        knobs: Callable[[], Knobs],
        configure: Callable[..., Knobs],
        redirect_uris: frozenset[str] = frozenset(),
    ) -> None:
        self.store = store
        self.base_url = base_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.knobs = knobs
        self.configure = configure
        self.redirect_uris = redirect_uris

    # -- addresses ----------------------------------------------------------------------

    def issuer(self, behaviour: Behaviour) -> str | None:
        """The profile's issuer URL, or ``None`` for profiles without one."""
        return f"{self.base_url}/{behaviour.name}" if behaviour.has_issuer else None

    def endpoints(self, behaviour: Behaviour) -> dict[str, str]:
        """The profile's endpoint URLs under their ``ProviderSpec`` field names."""
        root = f"{self.base_url}/{behaviour.name}"
        return {
            "authorization_endpoint": root + behaviour.paths["authorize"],
            "token_endpoint": root + behaviour.paths["token"],
            "userinfo_endpoint": root + behaviour.paths["userinfo"],
            "revocation_endpoint": root + behaviour.paths["revoke"],
        }

    def token_paths(self) -> dict[str, str]:
        """Token-endpoint path -> profile name."""
        return {f"/{b.name}{b.paths['token']}": b.name for b in PROFILES.values()}

    # -- the app ------------------------------------------------------------------------

    def build(self) -> Starlette:
        """The Starlette app with every route."""
        routes: list[Route] = []
        for b in PROFILES.values():
            root = f"/{b.name}"
            routes.append(
                Route(root + b.paths["authorize"], self._authorize(b), methods=["GET", "POST"])
            )
            routes.append(Route(root + b.paths["token"], self._token(b), methods=["POST"]))
            routes.append(Route(root + b.paths["userinfo"], self._userinfo(b), methods=["GET"]))
            if "emails" in b.paths:
                routes.append(Route(root + b.paths["emails"], self._emails(b), methods=["GET"]))
            if b.form_unless_json:
                routes.append(
                    Route(
                        root + b.paths["revoke"], self._github_revoke(b, True), methods=["DELETE"]
                    )
                )
                routes.append(
                    Route(
                        root + b.paths["revoke_token"],
                        self._github_revoke(b, False),
                        methods=["DELETE"],
                    )
                )
            else:
                routes.append(
                    Route(root + b.paths["revoke"], self._revoke(b), methods=["GET", "POST"])
                )
        routes += [
            Route("/_emulator/state", self._state, methods=["GET"]),
            Route("/_emulator/revoke", self._control_revoke, methods=["POST"]),
            Route("/_emulator/configure", self._control_configure, methods=["POST"]),
            Route("/_emulator/reset", self._control_reset, methods=["POST"]),
            Route("/_emulator/avatar/{login}.svg", self._avatar, methods=["GET"]),
        ]
        return Starlette(routes=routes)

    # -- shared answers -----------------------------------------------------------------

    def _answer(
        self,
        b: Behaviour,
        request: Request,
        status: int,
        data: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """JSON, or for GitHub without ``Accept: application/json`` form-encoded (B2)."""
        merged = {**_NO_STORE, **(headers or {})}
        if b.form_unless_json and not _accepts_json(request):
            body = urlencode({k: "" if v is None else str(v) for k, v in data.items()})
            return Response(body, status, merged, media_type="application/x-www-form-urlencoded")
        return JSONResponse(dict(data), status, merged)

    def _refuse(self, b: Behaviour, request: Request, situation: str, basic: bool) -> Response:
        failure: Failure = b.failure(situation)
        self.store.count_error(b.name, failure.error)
        headers = {}
        if failure.status == 401 and basic:
            # RFC 6749 §5.2: a 401 to a client that used Basic names the scheme.
            headers["WWW-Authenticate"] = 'Basic realm="keyturn-emulator"'
        return self._answer(b, request, failure.status, failure.body(), headers)

    def _authenticate(self, b: Behaviour, request: Request, params: Mapping[str, str]) -> str:
        """The authenticated client id, or :class:`Refusal` (post or basic, RFC 6749 §2.3)."""
        basic = _basic(request.headers.get("authorization"))
        body_id = params.get("client_id")
        body_secret = params.get("client_secret")
        if basic is not None:
            if b.single_auth_method and body_secret is not None:
                raise Refusal("two_auth_methods")
            client_id, secret = basic
            if body_id is not None and body_id != client_id:
                raise Refusal("bad_secret")
        else:
            client_id, secret = body_id or "", body_secret or ""
        if not client_id:
            raise Refusal("missing_client")
        if not hmac.compare_digest(client_id.encode(), self.client_id.encode()):
            raise Refusal("unknown_client")
        if not secret:
            raise Refusal("missing_secret")
        if not hmac.compare_digest(secret.encode(), self.client_secret.encode()):
            raise Refusal("bad_secret")
        return client_id

    def _unauthorized(self, b: Behaviour) -> Response:
        if b.form_unless_json:
            # B4: "Using a revoked or expired access token on the REST API gives 401".
            self.store.count_error(b.name, "bad_credentials")
            return JSONResponse(
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
                401,
            )
        # RFC 6750 §3.1.
        self.store.count_error(b.name, "invalid_token")
        return JSONResponse(
            {"error": "invalid_token", "error_description": "The access token is not valid."},
            401,
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    # -- authorize ----------------------------------------------------------------------

    def _redirect_ok(self, uri: str) -> bool:
        if uri in self.redirect_uris:
            return True
        parts = urlsplit(uri)
        return (
            parts.scheme in ("http", "https")
            and (parts.hostname or "") in LOOPBACK_HOSTS
            and not parts.fragment
            and "#" not in uri
        )

    def _callback(self, b: Behaviour, pending: Pending, params: dict[str, str]) -> Response:
        if pending.state is not None:
            params["state"] = pending.state
        issuer = self.issuer(b)
        if issuer is not None:
            params["iss"] = issuer  # RFC 9207
        return Response(
            status_code=302,
            headers={"Location": _with_query(pending.redirect_uri, params), **_NO_STORE},
        )

    def _approve(self, b: Behaviour, pending: Pending) -> Response:
        code = self.store.issue_code(b, pending, self.knobs().code_lifetime)
        return self._callback(b, pending, {"code": code})

    def _deny(self, b: Behaviour, pending: Pending) -> Response:
        self.store.count(b.name, "consent_denied")
        params = {"error": "access_denied", "error_description": b.access_denied_description}
        if b.access_denied_uri:
            params["error_uri"] = b.access_denied_uri
        return self._callback(b, pending, params)

    def _error_page(self, b: Behaviour, error: str, detail: str) -> Response:
        # RFC 6749 §4.1.2.1: with a bad client or redirect URI, never redirect.
        self.store.count_error(b.name, error)
        body = (
            f"<h1>{html.escape(b.display_name)}: sign-in error</h1>"
            f"<p data-error='{html.escape(error)}'><strong>{html.escape(error)}</strong>: "
            f"{html.escape(detail)}</p>"
        )
        return _page(f"Error: {error}", body, 400)

    def _consent_page(self, b: Behaviour, path: str, ticket: str, pending: Pending) -> Response:
        scopes = "".join(f"<li>{html.escape(s)}</li>" for s in pending.scopes) or "<li>none</li>"
        body = (
            f"<h1>Sign in with {html.escape(b.display_name)}</h1>"
            f"<p>Signed in as <strong>{html.escape(pending.user.email)}</strong> "
            "(keyturn emulator).</p>"
            f"<p>The application <code>{html.escape(pending.client_id)}</code> asks for:</p>"
            f"<ul>{scopes}</ul>"
            f"<form method='post' action='{html.escape(path)}'>"
            f"<input type='hidden' name='ticket' value='{html.escape(ticket)}'>"
            "<button type='submit' name='decision' value='allow' id='allow'>Allow</button>"
            "<button type='submit' name='decision' value='deny' id='deny'>Deny</button>"
            "</form>"
        )
        return _page(f"Sign in with {b.display_name}", body)

    def _authorize(self, b: Behaviour) -> Handler:
        async def authorize(request: Request) -> Response:
            if request.method == "POST":
                form = await _params(request)
                pending = self.store.release(form.get("ticket", ""))
                if pending is None:
                    return self._error_page(b, "invalid_request", "This consent has expired.")
                if form.get("decision") == "allow":
                    return self._approve(b, pending)
                return self._deny(b, pending)
            return self._authorize_request(b, request)

        return authorize

    def _authorize_request(self, b: Behaviour, request: Request) -> Response:
        query = request.query_params
        client_id = query.get("client_id", "")
        if not client_id or not hmac.compare_digest(client_id.encode(), self.client_id.encode()):
            return self._error_page(b, "invalid_client", "The OAuth client was not found.")
        redirect_uri = query.get("redirect_uri", "")
        if not self._redirect_ok(redirect_uri):
            return self._error_page(
                b,
                "redirect_uri_mismatch",
                "The redirect_uri must be a loopback http(s) URL or a registered one.",
            )
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
            force_consent="consent" in query.get("prompt", "").split(),
        )
        problem = self._authorize_problem(b, query.get("response_type"), scopes, challenge, method)
        if problem is not None:
            error, description = problem
            self.store.count_error(b.name, error)
            return self._callback(b, pending, {"error": error, "error_description": description})
        self.store.count(b.name, "authorize")
        if self.knobs().consent == "page" or query.get("consent") == "page":
            ticket = self.store.hold(pending)
            return self._consent_page(b, request.url.path, ticket, pending)
        return self._approve(b, pending)

    def _authorize_problem(
        self,
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
        if not _UNRESERVED.match(challenge):
            return "invalid_request", "code_challenge must be 43 to 128 unreserved characters"
        return None

    # -- token --------------------------------------------------------------------------

    def _token(self, b: Behaviour) -> Handler:
        async def token(request: Request) -> Response:
            if "application/vnd.github" in request.headers.get("accept", "") and (
                b.form_unless_json
            ):
                # C3: GitHub answers 406 to the REST media type here.
                self.store.count_error(b.name, "not_acceptable")
                return PlainTextResponse("Not Acceptable", 406)
            params = await _params(request)
            basic = _basic(request.headers.get("authorization")) is not None
            try:
                client_id = self._authenticate(b, request, params)
                grant_type = params.get("grant_type")
                if grant_type is None and b.grant_type_optional and "code" in params:
                    grant_type = "authorization_code"
                knobs = self.knobs()
                if grant_type == "authorization_code":
                    code = params.get("code")
                    if not code:
                        raise Refusal("invalid_request")
                    issued = self.store.exchange(
                        b,
                        client_id,
                        code,
                        params.get("redirect_uri"),
                        params.get("code_verifier"),
                        knobs.access_token_lifetime,
                        knobs.refresh_token_lifetime,
                        verify_pkce,
                    )
                elif grant_type == "refresh_token":
                    refresh_token = params.get("refresh_token")
                    if not refresh_token:
                        raise Refusal("invalid_request")
                    issued = self.store.refresh(
                        b,
                        client_id,
                        refresh_token,
                        knobs.access_token_lifetime,
                        knobs.refresh_token_lifetime,
                    )
                else:
                    raise Refusal("unsupported_grant_type")
            except Refusal as refusal:
                return self._refuse(b, request, refusal.situation, basic)
            return self._answer(b, request, 200, self._token_body(b, issued))

        return token

    def _token_body(self, b: Behaviour, issued: Issued) -> dict[str, Any]:
        grant = issued.grant
        data: dict[str, Any] = {"access_token": issued.access_token}
        if issued.access_expires_in is not None:
            data["expires_in"] = issued.access_expires_in
        if issued.refresh_token is not None:
            data["refresh_token"] = issued.refresh_token
            if issued.refresh_expires_in is not None:
                data["refresh_token_expires_in"] = issued.refresh_expires_in
        data["scope"] = b.scope_separator.join(grant.scopes)
        data["token_type"] = b.token_type
        if b.id_tokens and "openid" in grant.scopes:
            data["id_token"] = self._id_token(b, grant.user, grant.scopes, issued.nonce)
        return data

    def _id_token(
        self, b: Behaviour, user: User, scopes: tuple[str, ...], nonce: str | None
    ) -> str:
        now = int(self.store.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer(b),
            "azp": self.client_id,
            "aud": self.client_id,
            "sub": user.sub,
            "iat": now,
            "exp": now + 3600,
        }
        claims.update(self._claims(user, scopes, include_picture=False))
        if nonce is not None:
            claims["nonce"] = nonce
        return sign_id_token(claims, self.client_secret)

    def _claims(
        self, user: User, scopes: tuple[str, ...], include_picture: bool = True
    ) -> dict[str, Any]:
        claims: dict[str, Any] = {}
        if "email" in scopes:
            claims.update(email=user.email, email_verified=True)
        if "profile" in scopes:
            given, _, family = user.name.partition(" ")
            claims.update(name=user.name, given_name=given, locale="en")
            if family:
                claims["family_name"] = family
            if include_picture:
                claims["picture"] = self._avatar_url(user)
        return claims

    def _avatar_url(self, user: User) -> str:
        return f"{self.base_url}/_emulator/avatar/{user.login}.svg"

    # -- userinfo -----------------------------------------------------------------------

    def _userinfo(self, b: Behaviour) -> Handler:
        async def userinfo(request: Request) -> Response:
            token = _bearer(request, token_scheme=b.form_unless_json)
            grant = self.store.bearer(b.name, token) if token else None
            if grant is None:
                return self._unauthorized(b)
            self.store.count(b.name, "userinfo")
            user = grant.user
            if b.form_unless_json:
                # B5: /user has email null when the user shows no public email.
                return JSONResponse(
                    {
                        "login": user.login,
                        "id": user.number,
                        "node_id": f"U_emu{user.number}",
                        "avatar_url": self._avatar_url(user),
                        "type": "User",
                        "name": user.name,
                        "email": None,
                    }
                )
            return JSONResponse({"sub": user.sub, **self._claims(user, grant.scopes)})

        return userinfo

    def _emails(self, b: Behaviour) -> Handler:
        async def emails(request: Request) -> Response:
            token = _bearer(request, token_scheme=True)
            grant = self.store.bearer(b.name, token) if token else None
            if grant is None:
                return self._unauthorized(b)
            self.store.count(b.name, "userinfo")
            entry = {
                "email": grant.user.email,
                "primary": True,
                "verified": True,
                "visibility": "private",
            }
            return JSONResponse([entry])

        return emails

    # -- revocation ---------------------------------------------------------------------

    def _revoke(self, b: Behaviour) -> Handler:
        async def revoke(request: Request) -> Response:
            if request.method == "GET":
                return PlainTextResponse("Not Found", 404)  # A8: GET /revoke is a 404
            params = await _params(request)
            if b.single_auth_method:
                # RFC 7009 §2.1: the client authenticates; unknown tokens still get 200.
                basic = _basic(request.headers.get("authorization")) is not None
                try:
                    self._authenticate(b, request, params)
                except Refusal as refusal:
                    return self._refuse(b, request, refusal.situation, basic)
            token = params.get("token") or request.query_params.get("token")
            if not token:
                self.store.count_error(b.name, "invalid_request")
                return JSONResponse(
                    {"error": "invalid_request", "error_description": "Missing parameter: token"},
                    400,
                )
            found = self.store.lookup(b.name, token)
            if found is None:
                if b.single_auth_method:
                    self.store.count(b.name, "revoke")
                    return Response(status_code=200, headers=_NO_STORE)
                self.store.count_error(b.name, "invalid_token")
                return JSONResponse(
                    {"error": "invalid_token", "error_description": "Token expired or revoked"},
                    400,
                )
            kind, grant = found[0].kind, found[1]
            if kind == "access" and b.single_auth_method:
                self.store.revoke_token(token)  # RFC 7009 §2.1: the grant may stay
            else:
                # A8: revoking either token of a Google grant revokes the grant.
                self.store.revoke_grant(grant.id)
            self.store.count(b.name, "revoke")
            return JSONResponse({}, 200, _NO_STORE)

        return revoke

    def _github_revoke(self, b: Behaviour, whole_grant: bool) -> Handler:
        async def revoke(request: Request) -> Response:
            basic = _basic(request.headers.get("authorization"))
            if (
                basic is None
                or not hmac.compare_digest(basic[0].encode(), self.client_id.encode())
                or not hmac.compare_digest(basic[1].encode(), self.client_secret.encode())
            ):
                self.store.count_error(b.name, "bad_credentials")
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
            if request.path_params.get("client_id") != self.client_id:
                self.store.count_error(b.name, "not_found")
                return not_found
            access_token = (await _params(request)).get("access_token")
            if not access_token:
                self.store.count_error(b.name, "validation_failed")
                return JSONResponse({"message": "Validation Failed"}, 422)
            found = self.store.lookup(b.name, access_token)
            if found is None or found[0].kind != "access":
                self.store.count_error(b.name, "not_found")
                return not_found
            if whole_grant:
                self.store.revoke_grant(found[1].id)  # "also delete all OAuth tokens" (B5)
            else:
                self.store.revoke_token(access_token)
            self.store.count(b.name, "revoke")
            return Response(status_code=204)

        return revoke

    # -- controls -----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What ``GET /_emulator/state`` answers."""
        return {
            "base_url": self.base_url,
            "client_id": self.client_id,
            "counters": self.store.counters(PROFILES),
            "knobs": self.knobs().as_dict(),
            "profiles": {
                name: {
                    "counters": self.store.counters([name]),
                    "endpoints": self.endpoints(b),
                    "issuer": self.issuer(b),
                }
                for name, b in PROFILES.items()
            },
        }

    async def _state(self, request: Request) -> Response:
        return JSONResponse(self.state())

    async def _control_revoke(self, request: Request) -> Response:
        params = await _params(request)
        profile = params.get("profile") or None
        if profile is not None and profile not in PROFILES:
            return JSONResponse({"error": f"unknown profile {profile!r}"}, 400)
        revoked = self.store.revoke_grants(profile, params.get("user") or None)
        return JSONResponse({"revoked": revoked})

    async def _control_configure(self, request: Request) -> Response:
        try:
            knobs = json.loads(await request.body() or b"{}")
            if not isinstance(knobs, dict):
                raise TypeError("expected a JSON object of knobs")
            applied = self.configure(**knobs)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"knobs": applied.as_dict()})

    async def _control_reset(self, request: Request) -> Response:
        self.store.reset_counters()
        return JSONResponse({"counters": self.store.counters(PROFILES)})

    async def _avatar(self, request: Request) -> Response:
        login = str(request.path_params["login"])
        initial = html.escape((login[:1] or "?").upper())
        svg = (
            "<svg xmlns='http://www.w3.org/2000/svg' width='64' height='64'>"
            "<circle cx='32' cy='32' r='32' fill='#4a6fa5'/>"
            "<text x='32' y='42' font-size='30' text-anchor='middle' fill='#fff' "
            f"font-family='sans-serif'>{initial}</text></svg>"
        )
        return Response(svg, media_type="image/svg+xml")
