"""keyturn for Starlette and FastAPI: the routes as an ASGI app, and session dependencies.

::

    from fastapi import Depends, FastAPI
    from keyturn import Session
    from keyturn.starlette import KeyturnAuth

    auth = KeyturnAuth()                 # KEYTURN_SECRET, KEYTURN_<PROVIDER>_CLIENT_ID/_SECRET
    app = FastAPI()
    app.mount("/auth", auth)

    @app.get("/api/me")
    async def me(session: Session = Depends(auth.session)):
        return {"name": session.user.name if session.user else None}

``auth.session``, ``auth.optional_session`` and ``auth.access_token`` take Starlette's
``Request`` and ``Response``, so FastAPI injects them and copies the cookies a refresh sets
onto whatever the endpoint returns. A plain Starlette endpoint calls
``await auth.current(request)`` and adds ``current.cookies`` to its response
(:meth:`KeyturnAuth.apply`). Needs ``keyturn[starlette]``.
"""

from __future__ import annotations

from typing import Any, Unpack
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from keyturn.client import AsyncKeyturn
from keyturn.models import Session
from keyturn.web import AsyncWebAuth, CurrentSession, WebOptions, WebRequest, WebResponse
from keyturn.web.auth import checked_client

__all__ = ["MAX_BODY", "KeyturnAuth"]

#: Bytes of request body read at most (sign-out forms are tiny).
MAX_BODY = 64 * 1024


class KeyturnAuth:
    """The keyturn routes as an ASGI app, plus dependencies that give endpoints the session.

    Mount it at ``base_path``: ``app.mount("/auth", auth)``.

    :param client: ``AsyncKeyturn()`` when omitted.
    :param options: the settings, all optional: see :class:`keyturn.web.WebOptions`.
    :param sign_in_page: where a signed-out visitor of a page that needs a session is sent
        (``?callbackUrl=`` is added); without it such a visit gets a 401. A session whose
        refresh failed for good is sent straight to its provider's sign-in.
    """

    def __init__(
        self,
        client: AsyncKeyturn | None = None,
        *,
        sign_in_page: str | None = None,
        **options: Unpack[WebOptions],
    ) -> None:
        checked_client(client, AsyncKeyturn, "KeyturnAuth", "keyturn.web.WebAuth")
        self.web = AsyncWebAuth(client, **options)
        self.client = self.web.client
        self.sign_in_page = sign_in_page

    def __repr__(self) -> str:
        return f"KeyturnAuth(base_path={self.web.base_path!r})"

    # -- the ASGI app ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise HTTPException(404)
        request = Request(scope, receive)
        try:
            web_request = await _web_request(request)
        except _BodyTooLarge:
            response: Response = Response("request body too large", 413)
        else:
            response = _starlette_response(await self.web.handle(web_request))
        await response(scope, receive, send)

    # -- for endpoints --------------------------------------------------------------------

    async def current(self, request: Request) -> CurrentSession:
        """The request's session, refreshed first when due; add its cookies to the response."""
        return await self.web.current(await _web_request(request, read_body=False))

    @staticmethod
    def apply(current: CurrentSession, response: Response) -> Response:
        """Add the cookies of ``current`` (a refreshed session) to ``response``; returns it."""
        for cookie in current.cookies:
            response.headers.append("set-cookie", cookie)
        return response

    async def optional_session(self, request: Request, response: Response) -> Session | None:
        """Dependency: the session, or ``None`` when signed out. Never redirects."""
        current = await self.current(request)
        self.apply(current, response)
        return current.session

    async def session(self, request: Request, response: Response) -> Session:
        """Dependency: the session of a signed-in user.

        :raises HTTPException: signed out, or the refresh failed for good: a ``303`` to
            sign-in for a page, a ``401`` for an API call (JSON, or no HTML ``Accept``).
        """
        current = await self.current(request)
        self.apply(current, response)
        if current.session is None or current.needs_sign_in:
            raise self._sign_in_required(request, current)
        return current.session

    async def access_token(self, request: Request, response: Response) -> str:
        """Dependency: a valid access token of the signed-in user (see :meth:`session`)."""
        current = await self.current(request)
        self.apply(current, response)
        token = current.access_token
        if token is None or current.needs_sign_in:
            raise self._sign_in_required(request, current)
        return token

    def _sign_in_required(self, request: Request, current: CurrentSession) -> HTTPException:
        session = current.session
        error = "RefreshAccessTokenError" if session is not None else "signed_out"
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target: str | None = None
        if session is not None:
            target = self.web.sign_in_url(session.provider, here)
        elif self.sign_in_page is not None:
            joiner = "&" if "?" in self.sign_in_page else "?"
            target = f"{self.sign_in_page}{joiner}callbackUrl={quote(here, safe='')}"
        accept = request.headers.get("accept", "")
        headers = {"cache-control": "no-store"}
        if target is not None and request.method == "GET" and "text/html" in accept:
            return HTTPException(303, headers={**headers, "location": target})
        return HTTPException(401, detail=error, headers=headers)


class _BodyTooLarge(Exception):
    pass


async def _web_request(request: Request, *, read_body: bool = True) -> WebRequest:
    """A :class:`~keyturn.web.WebRequest` from a Starlette request.

    :raises _BodyTooLarge: the body passed :data:`MAX_BODY` (answered 413).
    """
    body = b""
    if read_body and request.method == "POST":
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise _BodyTooLarge
            chunks.append(chunk)
        body = b"".join(chunks)
    headers: dict[str, Any] = {k.lower(): v for k, v in request.headers.items()}
    return WebRequest(
        method=request.method,
        url=str(request.url),
        headers=headers,
        cookies=dict(request.cookies),
        body=body,
    )


def _starlette_response(response: WebResponse) -> Response:
    """A Starlette response from a :class:`~keyturn.web.WebResponse`."""
    result = Response(content=response.body, status_code=response.status)
    for name, value in response.headers:
        result.headers.append(name, value)
    return result
