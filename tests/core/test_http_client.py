"""keyturn's own HTTP client is made on first use, once, and closing it behaves as before.

``Keyturn()`` and ``AsyncKeyturn()`` make no HTTP client: building one loads httpcore and a
TLS context with the system's certificates, which an app that only reads tokens never needs.
The client is made by the first request an operation sends (or the first read of
``http_client``), once even when several threads or tasks get there together; a session read
through the web routes or a stored token read through a token manager sends none and makes
none. ``close()`` / ``aclose()`` before
that makes none, and requests sent after closing fail as they do on a closed httpx client,
whether or not a client had been made. A client the app passes in is used as it is.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import keyturn
from keyturn.plugins import KeyturnPluginManager
from keyturn.transport import AsyncClosedHttpClient, ClosedHttpClient
from tests.conftest import CREDENTIALS, START, FakeClock, Recorder, due_tokens

#: What httpx says when a closed client is asked to send.
CLOSED = "Cannot send a request, as the client has been closed."

REFRESHED = {"access_token": "fake-at-1", "expires_in": 3600, "token_type": "Bearer"}


class Factory:
    """Stands for ``httpx.Client`` / ``httpx.AsyncClient``: counts the clients made.

    Each one is real, with the given keyword arguments (keyturn's timeout), talking to the
    ``http`` recorder instead of the network.
    """

    def __init__(self, real: type[Any], http: Recorder) -> None:
        self.real = real
        self.http = http
        self.made: list[Any] = []
        self.kwargs: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Any:
        self.kwargs.append(kwargs)
        client = self.real(transport=httpx.MockTransport(self.http), **kwargs)
        self.made.append(client)
        return client


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch, http: Recorder) -> Iterator[dict[str, Factory]]:
    """``httpx.Client`` and ``httpx.AsyncClient`` replaced by counting factories."""
    factories = {
        "sync": Factory(httpx.Client, http),
        "async": Factory(httpx.AsyncClient, http),
    }
    monkeypatch.setattr(httpx, "Client", factories["sync"])
    monkeypatch.setattr(httpx, "AsyncClient", factories["async"])
    yield factories
    for factory in factories.values():
        for client in factory.made:
            if isinstance(client, factories["sync"].real):
                client.close()


def new_sync(pm: KeyturnPluginManager, clock: FakeClock, **options: Any) -> keyturn.Keyturn:
    return keyturn.Keyturn(CREDENTIALS, clock=clock, plugin_manager=pm, environ={}, **options)


def new_async(pm: KeyturnPluginManager, clock: FakeClock, **options: Any) -> keyturn.AsyncKeyturn:
    return keyturn.AsyncKeyturn(CREDENTIALS, clock=clock, plugin_manager=pm, environ={}, **options)


def valid_jwt() -> keyturn.JWT:
    tokens = keyturn.TokenSet(
        provider="google",
        access_token="fake-at-0",
        refresh_token="fake-rt-0",
        expires_at=START + 3600,
    )
    return keyturn.JWT(tokens=tokens)


# -- no client in the constructor ---------------------------------------------------------


def test_the_constructors_make_no_http_client(
    made: dict[str, Factory], pm: KeyturnPluginManager, clock: FakeClock
) -> None:
    new_sync(pm, clock)
    new_async(pm, clock)
    assert made["sync"].made == [] and made["async"].made == []


def test_reading_http_client_makes_it_once_with_keyturns_timeout(
    made: dict[str, Factory], pm: KeyturnPluginManager, clock: FakeClock
) -> None:
    kt = new_sync(pm, clock)
    first = kt.http_client
    assert kt.http_client is first
    assert made["sync"].made == [first]
    assert made["sync"].kwargs == [{"timeout": keyturn.client.DEFAULT_TIMEOUT}]
    akt = new_async(pm, clock)
    assert akt.http_client is akt.http_client
    assert made["async"].made == [akt.http_client]
    assert made["async"].kwargs == [{"timeout": keyturn.client.DEFAULT_TIMEOUT}]
    kt.close()


async def test_a_token_read_makes_no_client_and_a_refresh_makes_one(
    made: dict[str, Factory], http: Recorder, pm: KeyturnPluginManager, clock: FakeClock
) -> None:
    kt, akt = new_sync(pm, clock), new_async(pm, clock)
    assert kt.jwt(valid_jwt()).tokens.access_token.get_secret_value() == "fake-at-0"
    assert (await akt.jwt(valid_jwt())).error is None
    kt.session(valid_jwt())
    assert made["sync"].made == [] and made["async"].made == []

    http.queue(200, REFRESHED)
    assert kt.refresh(due_tokens()).access_token.get_secret_value() == "fake-at-1"
    assert len(made["sync"].made) == 1 and kt.http_client is made["sync"].made[0]
    http.queue(200, REFRESHED)
    await akt.refresh(due_tokens("fake-rt-other"))
    assert len(made["async"].made) == 1 and akt.http_client is made["async"].made[0]
    assert len(http.requests) == 2
    kt.close()
    await akt.aclose()


def test_threads_that_first_use_the_client_together_share_one(
    pm: KeyturnPluginManager, clock: FakeClock
) -> None:
    threads = 8
    gate = threading.Barrier(threads)
    made: list[httpx.Client] = []

    class Slow(keyturn.Keyturn):
        def _new_http_client(self) -> Any:
            client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
            made.append(client)
            threading.Event().wait(0.05)  # widen the window in which a second could be made
            return client

    kt = Slow(CREDENTIALS, clock=clock, plugin_manager=pm, environ={})
    seen: list[Any] = []

    def first_use() -> None:
        gate.wait()
        seen.append(kt.http_client)

    workers = [threading.Thread(target=first_use) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(made) == 1
    assert len(seen) == threads and all(client is made[0] for client in seen)
    kt.close()
    assert made[0].is_closed


async def test_tasks_that_first_use_the_async_client_together_share_one(
    made: dict[str, Factory], http: Recorder, pm: KeyturnPluginManager, clock: FakeClock
) -> None:
    akt = new_async(pm, clock, refresh_reuse_window=0)
    for _ in range(3):
        http.queue(200, REFRESHED)
    await asyncio.gather(*(akt.refresh(due_tokens(f"fake-rt-{n}")) for n in range(3)))
    assert len(made["async"].made) == 1
    assert len(http.requests) == 3
    await akt.aclose()
    assert made["async"].made[0].is_closed


# -- closing --------------------------------------------------------------------------------


def test_closing_before_any_use_makes_no_client(
    made: dict[str, Factory], pm: KeyturnPluginManager, clock: FakeClock
) -> None:
    kt = new_sync(pm, clock)
    kt.close()
    kt.close()
    with new_sync(pm, clock):
        pass
    assert made["sync"].made == []
    assert isinstance(kt.http_client, ClosedHttpClient)
    assert made["sync"].made == []  # nor does reading http_client after closing


async def test_aclosing_before_any_use_makes_no_client(
    made: dict[str, Factory], pm: KeyturnPluginManager, clock: FakeClock
) -> None:
    akt = new_async(pm, clock)
    await akt.aclose()
    await akt.aclose()
    async with new_async(pm, clock):
        pass
    assert made["async"].made == []
    assert isinstance(akt.http_client, AsyncClosedHttpClient)
    assert made["async"].made == []


@pytest.mark.parametrize("used", [False, True], ids=["never-used", "used"])
def test_after_close_a_request_fails_as_on_a_closed_httpx_client(
    made: dict[str, Factory], http: Recorder, pm: KeyturnPluginManager, clock: FakeClock, used: bool
) -> None:
    # What keyturn did before the client was made lazily, and still does once one is made:
    # the closed httpx client raises RuntimeError and keyturn lets it through. A client
    # closed before it was ever made fails the same way.
    kt = new_sync(pm, clock)
    if used:
        assert kt.http_client is made["sync"].made[0]
    kt.close()
    with pytest.raises(RuntimeError) as raised:
        kt.refresh(due_tokens())
    assert str(raised.value) == CLOSED
    assert http.requests == []
    if used:
        assert made["sync"].made[0].is_closed
    else:
        assert made["sync"].made == []
    # Operations that send nothing still work, as they did.
    assert kt.jwt(valid_jwt()).error is None
    assert kt.session(valid_jwt()).provider == "google"
    kt.close()  # closing again is harmless


@pytest.mark.parametrize("used", [False, True], ids=["never-used", "used"])
async def test_after_aclose_a_request_fails_as_on_a_closed_httpx_client(
    made: dict[str, Factory], http: Recorder, pm: KeyturnPluginManager, clock: FakeClock, used: bool
) -> None:
    akt = new_async(pm, clock)
    if used:
        assert akt.http_client is made["async"].made[0]
    await akt.aclose()
    with pytest.raises(RuntimeError) as raised:
        await akt.refresh(due_tokens())
    assert str(raised.value) == CLOSED
    assert http.requests == []
    assert len(made["async"].made) == (1 if used else 0)
    assert (await akt.jwt(valid_jwt())).error is None
    await akt.aclose()


def test_a_closed_httpx_client_fails_with_the_message_the_stand_in_copies() -> None:
    # The stand-in copies httpx's words; this keeps the copy honest if httpx changes them.
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    client.close()
    with pytest.raises(RuntimeError) as raised:
        client.get("https://example.invalid/")
    assert str(raised.value) == CLOSED


# -- the app's client -------------------------------------------------------------------------


@pytest.mark.parametrize("make", [new_sync, new_async], ids=["sync", "async"])
async def test_the_apps_client_is_used_as_is_and_never_closed(
    make: Callable[..., Any],
    made: dict[str, Factory],
    http: Recorder,
    pm: KeyturnPluginManager,
    clock: FakeClock,
) -> None:
    is_sync = make is new_sync
    real = made["sync" if is_sync else "async"].real
    given = real(transport=httpx.MockTransport(http))
    client = make(pm, clock, http_client=given)
    assert client.http_client is given
    http.queue(200, REFRESHED)
    result = client.refresh(due_tokens())
    if not is_sync:
        result = await result
        await client.aclose()
    else:
        client.close()
    assert result.access_token.get_secret_value() == "fake-at-1"
    assert client.http_client is given and not given.is_closed
    assert made["sync"].made == [] and made["async"].made == []
    if is_sync:
        given.close()
    else:
        await given.aclose()


# -- code built on the client takes it only to send ------------------------------------------


def _session_request(clock: FakeClock) -> Any:
    """A request for the session, and a valid session to write into its cookie."""
    from keyturn.web import WebRequest

    blank = WebRequest("GET", "http://127.0.0.1/auth/session")
    jwt = keyturn.JWT(
        tokens=keyturn.TokenSet(
            provider="google", access_token="fake-at-0", expires_at=int(clock()) + 3600
        ),
        user=keyturn.Profile(id="1", name="Ada"),
    )
    return blank, jwt


def test_a_web_session_read_makes_no_client(
    made: dict[str, Factory], pm: KeyturnPluginManager, clock: FakeClock
) -> None:
    from keyturn.effects import run
    from keyturn.web import WebAuth, WebRequest
    from tests.web._site import SECRET, SESSION

    kt = new_sync(pm, clock)
    web = WebAuth(kt, secret=SECRET)
    blank, jwt = _session_request(clock)
    [cookie] = run(web.settings.strategy.create(blank, web.settings.policy(blank), jwt), kt.sender)
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    request = WebRequest("GET", blank.url, cookies={SESSION: value})

    answer = web.handle(request)
    assert answer.status == 200 and b'"Ada"' in answer.body
    assert web.current(request).session is not None
    assert made["sync"].made == []


async def test_an_async_web_session_read_makes_no_client(
    made: dict[str, Factory], pm: KeyturnPluginManager, clock: FakeClock
) -> None:
    from keyturn.effects import arun
    from keyturn.web import AsyncWebAuth, WebRequest
    from tests.web._site import SECRET, SESSION

    akt = new_async(pm, clock)
    web = AsyncWebAuth(akt, secret=SECRET)
    blank, jwt = _session_request(clock)
    [cookie] = await arun(
        web.settings.strategy.create(blank, web.settings.policy(blank), jwt), akt.sender
    )
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    request = WebRequest("GET", blank.url, cookies={SESSION: value})

    answer = await web.handle(request)
    assert answer.status == 200 and b'"Ada"' in answer.body
    assert (await web.current(request)).session is not None
    assert made["async"].made == []


async def test_a_stored_token_read_makes_no_client_and_its_refresh_makes_one(
    made: dict[str, Factory], http: Recorder, pm: KeyturnPluginManager, clock: FakeClock
) -> None:
    from keyturn.stores import AsyncTokenManager, MemoryTokenStore, TokenManager

    kt, akt = new_sync(pm, clock), new_async(pm, clock)
    manager = TokenManager(kt, MemoryTokenStore())
    amanager = AsyncTokenManager(akt, MemoryTokenStore())
    manager.save("ada", valid_jwt().tokens)
    await amanager.save("ada", valid_jwt().tokens)
    assert manager.get_access_token("ada") == "fake-at-0"
    assert await amanager.get_access_token("ada") == "fake-at-0"
    assert made["sync"].made == [] and made["async"].made == []

    manager.save("bob", due_tokens())
    await amanager.save("bob", due_tokens("fake-rt-other"))
    http.queue(200, REFRESHED)
    assert manager.get_access_token("bob") == "fake-at-1"
    http.queue(200, REFRESHED)
    assert await amanager.get_access_token("bob") == "fake-at-1"
    assert len(made["sync"].made) == 1 and len(made["async"].made) == 1
    assert len(http.requests) == 2
    kt.close()
    await akt.aclose()


def test_the_stand_in_says_whose_client_it_takes(
    pm: KeyturnPluginManager, clock: FakeClock
) -> None:
    kt = new_sync(pm, clock)
    assert repr(kt.sender) == "<the HTTP client of Keyturn, taken on demand>"
    kt.close()
    with pytest.raises(RuntimeError, match="client has been closed"):
        kt.sender.request("POST", "https://oauth2.googleapis.com/token")
