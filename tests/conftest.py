"""Fixtures shared by keyturn's tests."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import keyturn
from keyturn.plugins import KeyturnPluginManager
from pytest_keyturn.plugin import START, FakeClock

__all__ = ["START", "FakeClock"]  # re-exported for the test modules

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"

#: Credentials used by every test; never real.
CLIENT_ID = "test-client-id.apps.googleusercontent.com"
CLIENT_SECRET = "test-client-secret-not-real"


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
    """An httpx MockTransport that answers with queued responses and remembers requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response | Exception] = []

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
