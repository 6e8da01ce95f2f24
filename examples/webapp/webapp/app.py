"""The example app: keyturn's routes at ``/auth``, one page, and one protected API endpoint.

==========================  ==================================================================
``GET /``                   the page (``static/index.html``): signed out, a button per
                            provider; signed in, the user, the access token's remaining
                            lifetime, a button that calls the API, and Sign out
``GET /static/...``         the page's script and style sheet
``GET /api/profile``        the user's profile as the provider's userinfo endpoint answers
                            it, fetched with the session's access token (refreshed first when
                            due); 401 when signed out or when the refresh failed for good
``/auth/...``               keyturn's routes (:class:`keyturn.starlette.KeyturnAuth`)
==========================  ==================================================================

The page is plain HTML and JavaScript: it loads ``/auth/client.js`` and lets
``keyturn.watchSession`` keep it up to date.
"""

# No "from __future__ import annotations" here: FastAPI reads the endpoints' annotations at
# run time, and the dependency below names ``auth``, a local of create_app().

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from keyturn import AsyncKeyturn, Session
from keyturn.starlette import KeyturnAuth
from keyturn.stores.base import TokenStore
from keyturn.web import DEFAULT_SESSION_MAX_AGE
from keyturn.web.settings import StrategyName

__all__ = ["STATIC", "create_app"]

#: The page, its script and its style sheet.
STATIC = Path(__file__).resolve().parent / "static"

#: Sent with the page: scripts and requests only from this origin; pictures from anywhere
#: (the providers serve avatars from their own hosts).
_PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: http: https:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}

#: Seconds to wait for the provider's userinfo endpoint.
USERINFO_TIMEOUT = 10.0


def create_app(
    client: AsyncKeyturn,
    *,
    secret: str | Sequence[str],
    strategy: StrategyName = "jwt",
    store: TokenStore | None = None,
    secure_cookies: bool | None = None,
    session_max_age: int = DEFAULT_SESSION_MAX_AGE,
) -> FastAPI:
    """Build the app.

    :param client: the keyturn client with the providers to sign in with; the app closes it
        when it shuts down.
    :param secret: the key material for keyturn's cookies (at least 32 random characters).
    :param strategy: ``"jwt"`` keeps the session sealed in its cookie; ``"database"`` keeps
        it in ``store``, the cookie holding only a random id.
    :param store: the token store of the ``database`` strategy (required with it: the example
        never writes a SQLite file into the current directory on its own). The caller
        closes it.
    :param secure_cookies: see :class:`keyturn.starlette.KeyturnAuth`: ``None`` makes cookies
        ``Secure`` when the page is reached over HTTPS; ``False`` is only for plain HTTP on
        loopback.
    :param session_max_age: seconds a session lasts from sign-in (30 days).
    :raises ValueError: ``database`` without a store.

    The :class:`~keyturn.starlette.KeyturnAuth` is kept as ``app.state.auth``.
    """
    if strategy == "database" and store is None:
        raise ValueError("the database strategy needs a token store (store=...)")
    auth = KeyturnAuth(
        client,
        secret=secret,
        strategy=strategy,
        store=store,
        secure_cookies=secure_cookies,
        session_max_age=session_max_age,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(title="keyturn example", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.auth = auth
    app.mount("/auth", auth)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        page = (STATIC / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(page, headers=_PAGE_HEADERS)

    @app.get("/api/profile")
    async def profile(
        response: Response, session: Annotated[Session, Depends(auth.session)]
    ) -> dict[str, Any]:
        """The provider's own answer about the signed-in user, proving the token works.

        ``auth.session`` gives a session whose access token was refreshed first if it was due
        (and adds the refreshed cookie to this response); it answers 401 for a visitor who
        is signed out or whose refresh failed for good. ``Depends(auth.access_token)`` gives
        the token alone; the session is needed here to know whose userinfo endpoint to call.
        """
        spec = auth.client.provider(session.provider)
        token = session.access_token
        if spec.userinfo_endpoint is None or token is None:
            response.status_code = 404
            return {"provider": session.provider, "error": "no userinfo endpoint or token"}
        headers = {
            "authorization": f"Bearer {token.get_secret_value()}",
            "accept": "application/json",
        }
        async with httpx.AsyncClient(timeout=USERINFO_TIMEOUT) as http:
            try:
                answer = await http.get(spec.userinfo_endpoint, headers=headers)
            except httpx.HTTPError as exc:
                response.status_code = 502
                return {"provider": session.provider, "error": type(exc).__name__}
        if answer.status_code != 200:
            response.status_code = 502
            return {
                "provider": session.provider,
                "error": "the provider refused the access token",
                "status": answer.status_code,
            }
        return {"provider": session.provider, "status": 200, "userinfo": answer.json()}

    return app
