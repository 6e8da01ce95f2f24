"""Fixtures shared by keyturn's tests.

The fake clock, a fresh plugin manager and test credentials; two stand-ins for a provider's
token endpoint: ``http`` (a recorder answering queued responses) and ``provider`` (a strict fake
that rotates refresh tokens and detects reuse); and the clients over the recorder: ``kt``,
``akt``, and ``client`` for both in turn.

Google's spec has a ``jwks_uri``, so keyturn verifies every Google ID token with the keys
found there. Tests sign their Google ID tokens with :func:`google_test_key`
(:func:`sign_google_id_token`), and both stand-ins answer a ``GET`` of
:data:`GOOGLE_JWKS_URI` with that key's public half, whatever they have queued.
"""

from __future__ import annotations

import base64
import functools
import inspect
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from joserfc.jwk import RSAKey
from joserfc.jws import JWSRegistry

import keyturn
from keyturn.plugins import KeyturnPluginManager
from pytest_keyturn.plugin import START, FakeClock

__all__ = ["START", "FakeClock"]  # re-exported for the test modules

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"

#: Credentials used by every test; never real.
CLIENT_ID = "test-client-id.apps.googleusercontent.com"
CLIENT_SECRET = "test-client-secret-not-real"
#: The credentials of a client that knows Google only.
CREDENTIALS = {"google": (CLIENT_ID, CLIENT_SECRET)}

#: Where Google publishes its ID-token keys (the spec's ``jwks_uri``).
GOOGLE_JWKS_URI = "https://www.googleapis.com/oauth2/v3/certs"
#: The ``kid`` of the key the tests sign Google ID tokens with.
GOOGLE_TEST_KID = "google-test-key-1"


@functools.cache
def google_test_key() -> RSAKey:
    """The RSA key (private) that signs the tests' Google ID tokens; made once per run."""
    return RSAKey.generate_key(2048, parameters={"kid": GOOGLE_TEST_KID}, private=True)


def google_test_jwks() -> dict[str, Any]:
    """The JWK Set served at :data:`GOOGLE_JWKS_URI` in tests: the test key's public half."""
    return {"keys": [{**google_test_key().as_dict(private=False), "use": "sig", "alg": "RS256"}]}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_google_id_token(
    claims: dict[str, Any], *, key: RSAKey | None = None, kid: str = GOOGLE_TEST_KID
) -> str:
    """A Google-style ID token of ``claims``: RS256 with ``kid``, signed with ``key`` (the
    test key by default; pass another key to make a token Google's set does not verify)."""
    header = {"alg": "RS256", "kid": kid, "typ": "JWT"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signer = key if key is not None else google_test_key()
    signature = JWSRegistry.algorithms["RS256"].sign(signing_input.encode(), signer)
    return f"{signing_input}.{_b64(signature)}"


def google_key_set_response(request: httpx.Request) -> httpx.Response | None:
    """The test key set when ``request`` is a ``GET`` of Google's ``jwks_uri``, else ``None``."""
    if request.method == "GET" and str(request.url) == GOOGLE_JWKS_URI:
        return httpx.Response(200, json=google_test_jwks())
    return None


#: Fixtures that need a program besides Python, and the marker a test using them must carry:
#: the Redis server of tests/stores/_redis_server.py and the Chromium of tests/e2e/test_browser.py.
NEEDS_MARKER = {
    "redis_server": "redis",
    "redis_url": "redis",
    "redis_client": "redis",
    "browser": "browser",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse to run when a test uses one of :data:`NEEDS_MARKER` without its marker.

    The markers are what ``-m "not browser and not redis"`` selects by, so a missing one would
    let a test that needs redis-server or Chromium into a run on a machine without them.
    """
    unmarked = [
        f"{item.nodeid} uses the {fixture} fixture without the {marker} marker"
        for item in items
        for fixture, marker in NEEDS_MARKER.items()
        if fixture in getattr(item, "fixturenames", ()) and item.get_closest_marker(marker) is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests without the marker their fixtures need:\n" + "\n".join(unmarked)
        )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pm() -> KeyturnPluginManager:
    """A fresh plugin manager with the installed entry-point plugins."""
    return keyturn.get_plugin_manager()


@pytest.fixture
def credentials() -> dict[str, tuple[str, str]]:
    return {"google": (CLIENT_ID, CLIENT_SECRET)}


class Both:
    """Runs a client method the same way for Keyturn and AsyncKeyturn."""

    def __init__(self, client: keyturn.Keyturn | keyturn.AsyncKeyturn) -> None:
        self.client = client

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, method)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest, kt: keyturn.Keyturn, akt: keyturn.AsyncKeyturn) -> Both:
    """The sync and the async client in turn, both talking to the ``http`` recorder."""
    return Both(kt if request.param == "sync" else akt)


class Recorder:
    """An httpx MockTransport that answers with queued responses and remembers requests.

    A ``GET`` of Google's ``jwks_uri`` is answered with :func:`google_test_jwks` without
    taking a queued response, and kept in :attr:`key_set_requests` rather than
    :attr:`requests`, so a test about token requests sees those alone.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response | Exception] = []
        self.key_set_requests: list[httpx.Request] = []

    def queue(
        self,
        status: int = 200,
        body: Any = None,
        *,
        content_type: str = "application/json",
        raw: bytes | None = None,
    ) -> None:
        content = raw if raw is not None else json.dumps(body).encode()
        self.responses.append(
            httpx.Response(status, content=content, headers={"content-type": content_type})
        )

    def fail(self, exc: Exception) -> None:
        self.responses.append(exc)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key_set = google_key_set_response(request)
        if key_set is not None:
            self.key_set_requests.append(request)
            return key_set
        self.requests.append(request)
        if not self.responses:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        item = self.responses.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def form(self, index: int = -1) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.requests[index].content.decode()))


@pytest.fixture
def http() -> Recorder:
    return Recorder()


class StrictFake:
    """A token endpoint that rotates refresh tokens and refuses a spent one, as strict
    providers do (a spent token presented again also revokes the live one: reuse detection).

    ``rotate=False`` behaves like Google instead: the refresh token stays valid.
    """

    def __init__(self, first: str = "fake-rt-0", *, rotate: bool = True) -> None:
        self.lock = threading.Lock()
        self.live = {first}
        self.spent: set[str] = set()
        self.rotate = rotate
        self.refreshes = 0
        self.reuse_detected = 0
        self.issued = 0
        #: Answers to give before any real one: (status, JSON body).
        self.failures: list[tuple[int, dict[str, Any]]] = []

    def answer(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.refreshes += 1
            if self.failures:
                return self.failures.pop(0)
            token = form.get("refresh_token", "")
            if form.get("grant_type") != "refresh_token" or token not in self.live:
                if token in self.spent:
                    self.reuse_detected += 1
                    self.live.clear()
                return 400, {"error": "invalid_grant", "error_description": "token not valid"}
            self.issued += 1
            body: dict[str, Any] = {
                "access_token": f"fake-at-{self.issued}",
                "expires_in": 3600,
                "token_type": "Bearer",
            }
            if self.rotate:
                self.live.discard(token)
                self.spent.add(token)
                body["refresh_token"] = f"fake-rt-{self.issued}"
                self.live.add(body["refresh_token"])
            return 200, body

    @staticmethod
    def form(request: httpx.Request) -> dict[str, str]:
        return dict(parse_qsl(request.content.decode()))

    def handler(self, hold: Callable[[], None] = lambda: None) -> httpx.MockTransport:
        """A sync transport; ``hold`` runs before each answer (to make callers overlap)."""

        def handle(request: httpx.Request) -> httpx.Response:
            key_set = google_key_set_response(request)
            if key_set is not None:
                return key_set
            hold()
            status, body = self.answer(self.form(request))
            return httpx.Response(status, json=body)

        return httpx.MockTransport(handle)

    def async_handler(
        self, hold: Callable[[], Awaitable[None]] | None = None
    ) -> httpx.MockTransport:
        """An async transport; ``hold`` is awaited before each answer."""

        async def handle(request: httpx.Request) -> httpx.Response:
            key_set = google_key_set_response(request)
            if key_set is not None:
                return key_set
            if hold is not None:
                await hold()
            status, body = self.answer(self.form(request))
            return httpx.Response(status, json=body)

        return httpx.MockTransport(handle)


def due_tokens(refresh_token: str = "fake-rt-0") -> keyturn.TokenSet:
    return keyturn.TokenSet(
        provider="google",
        access_token="fake-at-0",
        refresh_token=refresh_token,
        expires_at=START - 1,
    )


@pytest.fixture
def provider() -> StrictFake:
    return StrictFake()


@pytest.fixture
def kt(
    http: Recorder,
    clock: FakeClock,
    pm: KeyturnPluginManager,
    credentials: dict[str, tuple[str, str]],
) -> Iterator[keyturn.Keyturn]:
    """A sync client whose HTTP goes to the ``http`` recorder."""
    client = httpx.Client(transport=httpx.MockTransport(http))
    with keyturn.Keyturn(
        credentials, http_client=client, clock=clock, plugin_manager=pm, environ={}
    ) as k:
        yield k
    client.close()


@pytest.fixture
async def akt(
    http: Recorder,
    clock: FakeClock,
    pm: KeyturnPluginManager,
    credentials: dict[str, tuple[str, str]],
) -> Any:
    """An async client whose HTTP goes to the ``http`` recorder."""
    client = httpx.AsyncClient(transport=httpx.MockTransport(http))
    async with keyturn.AsyncKeyturn(
        credentials, http_client=client, clock=clock, plugin_manager=pm, environ={}
    ) as k:
        yield k
    await client.aclose()
