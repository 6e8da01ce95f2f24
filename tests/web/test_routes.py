"""keyturn.web and keyturn.starlette: sign-in routes and the session cookie, end to end.

The routes run in-process (httpx's ASGI transport) and talk to a real emulator on loopback,
whose clock is the same :class:`FakeClock` as the client's: tokens and sessions expire when a
test moves the clock, never by waiting. Behaviour that should hold for both session strategies
runs three times: ``jwt`` (sealed cookie), and ``database`` with a memory and a SQLite store.

Attacks and bad input live in ``test_web_attacks.py``, which reuses the helpers below.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from keyturn import JWT, AsyncKeyturn, ConfigurationError, Keyturn, Session, TokenSet, hookimpl
from keyturn.plugins import get_plugin_manager
from keyturn.starlette import KeyturnAuth
from keyturn.stores.base import TokenStore
from keyturn.stores.memory import MemoryTokenStore
from keyturn.stores.sqlite import SQLiteTokenStore
from keyturn.web import DEFAULT_SESSION_MAX_AGE, Keyring, WebAuth, WebRequest, WebResponse
from keyturn.web.cookies import CHUNK_SIZE, CookiePolicy, read_chunked, write_chunked
from keyturn.web.redirects import same_origin_target
from keyturn.web.sealing import MAX_SEALED_LENGTH, Sealer
from keyturn.web.settings import StrategyName
from keyturn.web.strategies import DatabaseStrategy
from keyturn_emulator import Emulator
from keyturn_github import GITHUB
from keyturn_google import GOOGLE
from tests.conftest import START, FakeClock

SECRET = "web-tests-secret-" + "0123456789abcdef" * 2
OLD_SECRET = "web-tests-old-secret-" + "fedcba9876543210" * 2
OTHER_SECRET = "web-tests-other-app-" + "a1b2c3d4e5f6a7b8" * 2
BASE = "http://127.0.0.1:8000"
PUBLIC = "https://app.example"
SESSION = "keyturn.session-token"
FLOW = "keyturn.flow"
CSRF = "keyturn.csrf-token"
SECURE = "__Secure-"
#: Seconds the emulator's access tokens live.
LIFETIME = 3600
#: The session strategies: ``jwt``, and ``database`` over two stores.
KINDS = ("jwt", "memory", "sqlite")
ADA = {"name": "Ada Example", "email": "ada@example.com"}
_MESSAGE = re.compile(r"<p id='keyturn-message'>(.*?)</p>", re.S)


# -- the provider: one emulator per module, its clock shared with every client ---------------


@dataclass
class World:
    """The emulator and the fake clock it, and every client of the test, run on."""

    emu: Emulator
    clock: FakeClock


def start_world() -> Iterator[World]:
    """Run an emulator on a fake clock (for a module-scoped fixture: starting one takes time)."""
    clock = FakeClock()
    with Emulator(
        access_token_lifetime=LIFETIME,
        clock=clock,
        redirect_uris=[f"{PUBLIC}/auth/callback/github"],
    ) as emu:
        yield World(emu, clock)


def fresh(world: World) -> World:
    """The shared world with its knobs back to normal and its counters at zero.

    The clock only ever moves forward, so a test reads times relative to ``clock()``.
    """
    world.emu.configure(fault_rate=0.0, access_token_lifetime=LIFETIME)
    world.emu.reset_counters()
    return world


@pytest.fixture(scope="module")
def shared_world() -> Iterator[World]:
    yield from start_world()


@pytest.fixture
def world(shared_world: World) -> World:
    return fresh(shared_world)


def make_client(world: World, plugins: Sequence[object] = (), *, blocking: bool = False) -> Any:
    """A client with github and google at the emulator, and ``strict`` without credentials."""
    emu = world.emu
    kwargs: dict[str, Any] = {
        "providers": [emu.point(GITHUB), emu.point(GOOGLE), emu.spec("strict")],
        "clock": world.clock,
        "plugin_manager": get_plugin_manager(plugins=plugins, environ={}),
        "environ": {},
    }
    credentials = {"github": emu.credentials, "google": emu.credentials}
    return Keyturn(credentials, **kwargs) if blocking else AsyncKeyturn(credentials, **kwargs)


def counters(world: World | Site) -> dict[str, int]:
    return world.emu.counters("github")


# -- the app: KeyturnAuth mounted in Starlette, browsers in front of it -----------------------


@dataclass
class Site:
    """One app under test: its client, its routes, its store (database kinds)."""

    world: World
    kind: str
    client: AsyncKeyturn
    auth: KeyturnAuth
    app: Any
    store: TokenStore | None
    stack: AsyncExitStack

    @property
    def emu(self) -> Emulator:
        return self.world.emu

    @property
    def clock(self) -> FakeClock:
        return self.world.clock

    async def browser(
        self,
        base_url: str = BASE,
        *,
        cookies: Mapping[str, str] | None = None,
        app: Any = None,
        **kwargs: Any,
    ) -> httpx.AsyncClient:
        """A browser: a client with a cookie jar, in front of this app (or ``app``)."""
        transport = httpx.ASGITransport(app=self.app if app is None else app)
        client = httpx.AsyncClient(transport=transport, base_url=base_url, **kwargs)
        host = urlsplit(base_url).hostname or ""
        for name, value in (cookies or {}).items():
            client.cookies.set(name, value, domain=host)
        return await self.stack.enter_async_context(client)

    async def start(
        self, browser: httpx.AsyncClient, provider: str = "github", callback_url: str = "/home"
    ) -> tuple[httpx.Response, dict[str, str]]:
        """Begin a sign-in; the redirect and the callback query the emulator sends back."""
        started = await browser.get(
            f"/auth/signin/{provider}", params={"callbackUrl": callback_url}
        )
        assert started.status_code == 302, started.text
        return started, self.emu.authorize(started.headers["location"])

    async def sign_in(
        self, browser: httpx.AsyncClient, provider: str = "github", callback_url: str = "/home"
    ) -> httpx.Response:
        """A whole sign-in; the callback's response (a 303 that sets the session)."""
        _, query = await self.start(browser, provider, callback_url)
        done = await browser.get(f"/auth/callback/{provider}", params=query)
        assert done.status_code == 303, done.text
        return done

    def jwt_of(self, cookies: Mapping[str, str]) -> JWT:
        """What the session behind ``cookies`` holds (tokens included), read as the app does."""
        if self.kind == "jwt":
            sealer = Sealer(Keyring(SECRET), SESSION, self.clock)
            value = read_chunked(SESSION, cookies)
            payload = None if value is None else sealer.unseal(value)
            assert payload is not None
            return JWT.model_validate(payload["jwt"])
        assert self.store is not None
        row = self.store.load(DatabaseStrategy.key_of(cookies[SESSION]))
        assert row is not None
        return JWT(tokens=row.tokens)

    def tokens_of(self, browser: httpx.AsyncClient) -> TokenSet:
        return self.jwt_of(jar(browser)).tokens


MakeSite = Callable[..., Awaitable[Site]]


@asynccontextmanager
async def sites(world: World, tmp_path: Path) -> AsyncIterator[MakeSite]:
    """A factory of :class:`Site` objects; everything they open is closed at the end."""
    async with AsyncExitStack() as stack:
        made = 0

        async def make(
            kind: str = "jwt",
            *,
            plugins: Sequence[object] = (),
            secret: str | Sequence[str] = SECRET,
            store: TokenStore | None = None,
            **settings: Any,
        ) -> Site:
            nonlocal made
            made += 1
            client = await stack.enter_async_context(make_client(world, plugins))
            if store is None and kind == "memory":
                store = MemoryTokenStore()
            elif store is None and kind == "sqlite":
                name = "s.db" if made == 1 else f"s{made}.db"
                sqlite = SQLiteTokenStore(tmp_path / name)
                stack.callback(sqlite.close)
                store = sqlite
            strategy: StrategyName = "jwt" if kind == "jwt" else "database"
            auth = KeyturnAuth(client, secret=secret, strategy=strategy, store=store, **settings)
            app = Starlette(routes=[Mount("/auth", app=auth)])
            return Site(world, kind, client, auth, app, store, stack)

        yield make


@pytest.fixture
async def make_site(world: World, tmp_path: Path) -> AsyncIterator[MakeSite]:
    async with sites(world, tmp_path) as make:
        yield make


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- reading responses -----------------------------------------------------------------------


@dataclass(frozen=True)
class SetCookie:
    """One ``Set-Cookie`` header, parsed; attribute names in lower case."""

    name: str
    value: str
    attrs: dict[str, str]
    header: str

    @property
    def expired(self) -> bool:
        return self.attrs.get("max-age") == "0"


def parse_set_cookie(header: str) -> SetCookie:
    first, *rest = (part.strip() for part in header.split(";"))
    name, _, value = first.partition("=")
    attrs = {}
    for part in rest:
        key, _, attr = part.partition("=")
        attrs[key.lower()] = attr
    return SetCookie(name, value, attrs, header)


def set_cookies(response: httpx.Response | WebResponse) -> list[SetCookie]:
    if isinstance(response, WebResponse):
        return [parse_set_cookie(header) for header in response.cookies]
    return [parse_set_cookie(header) for header in response.headers.get_list("set-cookie")]


def in_family(name: str, base: str) -> bool:
    """Whether cookie ``name`` is ``base`` or one of its chunks, with or without the prefix."""
    name = name.removeprefix(SECURE)
    suffix = name[len(base) + 1 :]
    return name == base or (name.startswith(base + ".") and suffix.isdigit())


def written(response: httpx.Response | WebResponse, base: str = SESSION) -> dict[str, str]:
    """The cookies of ``base``'s family that ``response`` sets to a value."""
    return {
        c.name: c.value
        for c in set_cookies(response)
        if in_family(c.name, base) and not c.expired and c.value
    }


def expired(response: httpx.Response | WebResponse) -> set[str]:
    """The names of the cookies ``response`` deletes."""
    return {c.name for c in set_cookies(response) if c.expired}


def jar(browser: httpx.AsyncClient) -> dict[str, str]:
    return {cookie.name: cookie.value or "" for cookie in browser.cookies.jar}


def message_of(response: httpx.Response | WebResponse) -> str:
    """The text of an error page's ``#keyturn-message``."""
    text = response.text if isinstance(response, httpx.Response) else response.body.decode()
    found = _MESSAGE.search(text)
    assert found is not None, text
    return html.unescape(found[1])


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


async def csrf_token(browser: httpx.AsyncClient) -> str:
    answer = await browser.get("/auth/csrf")
    assert answer.status_code == 200
    return str(answer.json()["csrfToken"])


async def sign_out(browser: httpx.AsyncClient, **fields: str) -> httpx.Response:
    token = await csrf_token(browser)
    return await browser.post("/auth/signout", data={"csrfToken": token, **fields})


async def userinfo_status(world: World | Site, access_token: str) -> int:
    """What the emulator's GitHub ``/user`` says to ``access_token``."""
    url = world.emu.endpoints("github")["userinfo_endpoint"]
    async with httpx.AsyncClient() as http:
        answer = await http.get(url, headers={"authorization": f"Bearer {access_token}"})
    return answer.status_code


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def blob(size: int) -> str:
    """``size`` characters that do not compress or repeat (a profile, a group list...)."""
    out: list[str] = []
    seed = b"keyturn"
    while sum(len(part) for part in out) < size:
        seed = hashlib.sha256(seed).digest()
        out.append(seed.hex())
    return "".join(out)[:size]


class BigClaims:
    """An app's ``jwt`` wrapper: a large claim at sign-in (``big="signIn"``) or refresh."""

    def __init__(self, big: str = "signIn", size: int = 7000) -> None:
        self.big = big
        self.blob = blob(size)

    @hookimpl(wrapper=True)
    def keyturn_jwt(self, trigger: str) -> Any:
        token = yield
        if trigger == self.big:
            return token.model_copy(update={"claims": {"blob": self.blob}})
        if trigger in ("signIn", "refresh"):
            return token.model_copy(update={"claims": {"small": True}})
        return token


# == keys ===================================================================================


def test_a_missing_secret_says_how_to_make_one() -> None:
    for environ in ({}, {"KEYTURN_SECRET": ""}):
        with pytest.raises(ConfigurationError, match="KEYTURN_SECRET") as caught:
            Keyring(environ=environ)
        assert "secrets.token_urlsafe(32)" in str(caught.value)
    with pytest.raises(ConfigurationError, match="at least one"):
        Keyring([])


def test_a_short_secret_is_refused_without_echoing_it() -> None:
    short = "my-password-123"
    with pytest.raises(ConfigurationError, match="at least 32") as caught:
        Keyring(short)
    assert short not in str(caught.value)
    assert f"is {len(short)} characters" in str(caught.value)
    with pytest.raises(ConfigurationError, match="secret 2 ") as caught:
        Keyring([SECRET, short])  # the old one of a rotation
    assert short not in str(caught.value) and SECRET not in str(caught.value)
    with pytest.raises(ConfigurationError, match="at least 32") as caught:
        Keyring(environ={"KEYTURN_SECRET": short})
    assert short not in str(caught.value)


async def test_the_app_refuses_to_start_with_a_short_secret(world: World) -> None:
    async with make_client(world) as client:
        with pytest.raises(ConfigurationError, match="at least 32") as caught:
            KeyturnAuth(client, secret="tiny-secret")
        assert "tiny-secret" not in str(caught.value)
        with pytest.raises(ConfigurationError, match="KEYTURN_SECRET"):
            KeyturnAuth(client, environ={})
        assert KeyturnAuth(client, environ={"KEYTURN_SECRET": SECRET}) is not None


def test_keys_are_per_purpose_and_never_shown() -> None:
    ring = Keyring(SECRET)
    session, flow = ring.keys(SESSION)[0], ring.keys(FLOW)[0]
    assert len(session.material) == 32
    assert session.material != flow.material and session.kid != flow.kid
    assert Keyring(SECRET).keys(SESSION)[0] == session  # derived, not random
    assert Keyring(OTHER_SECRET).keys(SESSION)[0].material != session.material
    assert SECRET not in repr(ring) and session.material.hex() not in repr(session)
    assert [key.kid for key in Keyring([SECRET, OLD_SECRET]).keys(SESSION)] == [
        session.kid,
        Keyring(OLD_SECRET).keys(SESSION)[0].kid,
    ]
    clock = FakeClock()
    sealed_for_flow = Sealer(ring, FLOW, clock).seal({"x": 1}, 60)
    assert Sealer(ring, SESSION, clock).unseal(sealed_for_flow) is None
    assert Sealer(ring, FLOW, clock).unseal(sealed_for_flow) is not None


async def test_rotation_reads_old_cookies_and_reseals_with_the_new_secret(
    make_site: MakeSite,
) -> None:
    old_site = await make_site(secret=OLD_SECRET)
    old_browser = await old_site.browser()
    await old_site.sign_in(old_browser)
    old_value = jar(old_browser)[SESSION]
    old_csrf = await csrf_token(old_browser)

    site = await make_site(secret=[SECRET, OLD_SECRET])
    browser = await site.browser(cookies=jar(old_browser))
    answer = await browser.get("/auth/session")
    assert answer.json()["user"]["name"] == ADA["name"]
    assert not written(answer)  # reading alone writes nothing

    site.clock.advance(LIFETIME)  # the next write is the refresh
    answer = await browser.get("/auth/session")
    assert answer.json()["user"]["name"] == ADA["name"] and "error" not in answer.json()
    resealed = written(answer)[SESSION]
    clock = site.clock
    assert Sealer(Keyring(SECRET), SESSION, clock).unseal(resealed) is not None
    assert Sealer(Keyring(OLD_SECRET), SESSION, clock).unseal(resealed) is None
    assert Sealer(Keyring(SECRET), SESSION, clock).unseal(old_value) is None

    newest = await make_site(secret=SECRET)  # the old secret retired: still signed in
    answer = await (await newest.browser(cookies=jar(browser))).get("/auth/session")
    assert answer.json()["user"]["name"] == ADA["name"]

    # The CSRF cookie too: same token, re-signed with the new secret.
    answer = await browser.get("/auth/csrf")
    assert answer.json()["csrfToken"] == old_csrf
    assert written(answer, CSRF)[CSRF] != jar(old_browser)[CSRF]
    assert (await browser.get("/auth/csrf")).headers.get("set-cookie") is None


# == sealing ================================================================================


@pytest.fixture
def sealer(clock: FakeClock) -> Sealer:
    return Sealer(Keyring(SECRET), SESSION, clock)


def test_sealing_round_trips_with_iat_and_exp(sealer: Sealer) -> None:
    payload = {"jwt": {"user": {"id": "1", "name": "Zoë"}, "claims": [1, 2.5, None, True]}}
    value = sealer.seal(payload, 600)
    assert sealer.unseal(value) == {"iat": START, "exp": START + 600, **payload}
    own_exp = sealer.unseal(sealer.seal({"exp": START + 5}, 600))  # a refresh keeps the end
    assert own_exp is not None and own_exp["exp"] == START + 5


def test_an_expired_seal_reads_as_nothing(sealer: Sealer, clock: FakeClock) -> None:
    value = sealer.seal({"a": 1}, 60)
    clock.advance(59)
    assert sealer.unseal(value) is not None
    clock.advance(1)
    assert sealer.unseal(value) is None


def test_changing_any_byte_of_a_seal_is_detected(sealer: Sealer) -> None:
    value = sealer.seal({"sub": "ada", "role": "user"}, 600)
    parts = value.split(".")
    assert len(parts) == 5 and parts[1] == ""  # dir: no encrypted key
    tried = 0
    for index, part in enumerate(parts):
        raw = b64decode(part)
        for position in range(len(raw)):
            for bit in (0x01, 0x80):
                changed = bytearray(raw)
                changed[position] ^= bit
                forged = [*parts[:index], b64encode(bytes(changed)), *parts[index + 1 :]]
                assert sealer.unseal(".".join(forged)) is None, (index, position, bit)
                tried += 1
    assert tried > 200


def test_a_truncated_or_extended_seal_reads_as_nothing(sealer: Sealer) -> None:
    value = sealer.seal({"sub": "ada"}, 600)
    for cut in range(len(value)):
        assert sealer.unseal(value[:cut]) is None, cut
    for extra in ("A", ".", "==", ".AAAA"):
        assert sealer.unseal(value + extra) is None


def test_a_seal_of_another_key_reads_as_nothing(sealer: Sealer, clock: FakeClock) -> None:
    foreign = Sealer(Keyring(OTHER_SECRET), SESSION, clock).seal({"sub": "mallory"}, 600)
    assert sealer.unseal(foreign) is None
    ours = sealer.seal({"sub": "ada"}, 600)
    # Our key id on the foreign ciphertext: the key is still not the one that sealed it.
    swapped = ".".join([ours.split(".")[0], *foreign.split(".")[1:]])
    assert sealer.unseal(swapped) is None


def test_garbage_and_huge_values_read_as_nothing(sealer: Sealer) -> None:
    header = sealer.seal({}, 60).split(".")[0]
    kid = json.loads(b64decode(header))["kid"]
    headers = [
        {"alg": "none", "enc": "A256GCM", "kid": kid},
        {"alg": "dir", "enc": "A128GCM", "kid": kid},
        {"alg": "dir", "enc": "A256GCM", "kid": [kid]},
        {"alg": "dir", "enc": "A256GCM", "kid": kid, "zip": "DEF"},
        ["dir"],
        "text",
        None,
    ]
    values = [
        "",
        "garbage",
        ".",
        "....",
        "a.b.c.d.e",
        "eyJ.eyJ.sig",
        header,
        header + "....",
        header + ".AAAA.AAAA.AAAA.AAAA",
        "%%%%.%%%%.%%%%.%%%%.%%%%",
        "é" * 40,
        "\x00" * 10,
        "A" * (MAX_SEALED_LENGTH + 1),
        *(b64encode(json.dumps(h).encode()) + ".." + "A" * 16 + ".AAAA.AAAA" for h in headers),
    ]
    for value in values:
        assert sealer.unseal(value) is None, value[:40]
    huge = sealer.seal({"blob": "x" * MAX_SEALED_LENGTH}, 60)
    assert len(huge) > MAX_SEALED_LENGTH and sealer.unseal(huge) is None


def test_a_seal_cannot_be_read_without_the_key(sealer: Sealer) -> None:
    marker = "plain-marker-7f3a"
    value = sealer.seal({"email": "ada@example.com", "note": marker}, 600)
    assert marker not in value and "ada@example.com" not in value
    for part in value.split("."):
        decoded = b64decode(part)
        assert marker.encode() not in decoded and b"ada@example.com" not in decoded
    assert json.loads(b64decode(value.split(".")[0])).keys() == {"alg", "enc", "kid"}


# == cookies ================================================================================

POLICY = CookiePolicy(secure=False)


def test_cookie_attributes() -> None:
    cookie = parse_set_cookie(POLICY.set("n", "v", 60))
    assert (cookie.name, cookie.value) == ("n", "v")
    assert cookie.attrs == {"path": "/", "max-age": "60", "httponly": "", "samesite": "Lax"}
    secure = CookiePolicy(secure=True)
    assert secure.name("n") == "__Secure-n" and POLICY.name("n") == "n"
    assert "secure" in parse_set_cookie(secure.set("__Secure-n", "v", 60)).attrs
    assert parse_set_cookie(POLICY.expire("n")).expired
    with pytest.raises(ValueError, match="URL-safe"):
        POLICY.set("n", "a;b", 60)


def test_a_long_value_is_split_into_chunks_and_joined_on_read() -> None:
    [single] = write_chunked("c", "v" * CHUNK_SIZE, POLICY, 60, {})
    assert parse_set_cookie(single).name == "c"
    value = blob(2 * CHUNK_SIZE + 5)
    headers = write_chunked("c", value, POLICY, 60, {})
    cookies = [parse_set_cookie(header) for header in headers]
    assert [c.name for c in cookies] == ["c.0", "c.1", "c.2"]
    assert all(len(header) < 4096 for header in headers)
    assert read_chunked("c", {c.name: c.value for c in cookies}) == value
    assert read_chunked("c", {}) is None
    assert read_chunked("c", {"c.0": "a", "c.2": "c"}) == "a"  # a gap ends the value
    with pytest.raises(ValueError, match="too large"):
        write_chunked("c", "v" * (16 * CHUNK_SIZE + 1), POLICY, 60, {})


def test_a_rewrite_expires_the_cookies_it_no_longer_needs() -> None:
    present = {"c": "x", "c.0": "x", "c.1": "x", "c.2": "x", "c.x": "x", "cc": "x", "other": "x"}

    def rewrite(value: str) -> tuple[set[str], set[str]]:
        cookies = [parse_set_cookie(h) for h in write_chunked("c", value, POLICY, 60, present)]
        return {c.name for c in cookies if not c.expired}, {c.name for c in cookies if c.expired}

    assert rewrite("v" * (CHUNK_SIZE + 1)) == ({"c.0", "c.1"}, {"c", "c.2"})
    assert rewrite("short") == ({"c"}, {"c.0", "c.1", "c.2"})


async def test_every_cookie_is_httponly_lax_and_host_wide_without_secure_on_http(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    started, query = await site.start(browser)
    done = await browser.get("/auth/callback/github", params=query)
    csrf = await browser.get("/auth/csrf")
    out = await sign_out(browser)
    cookies = [*set_cookies(started), *set_cookies(done), *set_cookies(csrf), *set_cookies(out)]
    assert {c.name for c in cookies} == {FLOW, SESSION, CSRF}
    for cookie in cookies:
        assert {"httponly", "path", "samesite"} <= cookie.attrs.keys(), cookie.header
        assert cookie.attrs["path"] == "/" and cookie.attrs["samesite"] == "Lax"
        assert "secure" not in cookie.attrs and "domain" not in cookie.attrs
    assert set_cookies(started)[0].attrs["max-age"] == "900"  # the flow lasts 15 minutes
    assert written(done)[SESSION] and SESSION in expired(out)


async def test_https_gives_secure_prefixed_cookies(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind)
    browser = await site.browser("https://127.0.0.1:8000")
    started, query = await site.start(browser)
    assert "redirect_uri=https%3A%2F%2F127.0.0.1%3A8000%2Fauth" in started.headers["location"]
    done = await browser.get("/auth/callback/github", params=query)
    assert done.status_code == 303
    answer = await browser.get("/auth/session")
    assert answer.json()["user"]["name"] == ADA["name"]
    csrf = await browser.get("/auth/csrf")
    out = await browser.post("/auth/signout", data={"csrfToken": csrf.json()["csrfToken"]})
    assert out.status_code == 303
    cookies = [c for r in (started, done, csrf, out) for c in set_cookies(r)]
    assert {c.name for c in cookies} == {SECURE + FLOW, SECURE + SESSION, SECURE + CSRF}
    assert all("secure" in c.attrs and "httponly" in c.attrs for c in cookies)
    assert (await browser.get("/auth/session")).json() is None


@pytest.mark.parametrize(
    ("settings", "base_url", "secure"),
    [
        ({}, BASE, False),
        ({"secure_cookies": True}, BASE, True),
        ({"url": PUBLIC}, BASE, True),  # behind a proxy that ends TLS
        ({"secure_cookies": False}, "https://127.0.0.1:8000", False),
    ],
)
async def test_secure_cookies_follow_the_app_url_unless_set(
    make_site: MakeSite, settings: dict[str, Any], base_url: str, secure: bool
) -> None:
    site = await make_site(**settings)
    browser = await site.browser(base_url)
    started = await browser.get("/auth/signin/github")
    [cookie] = set_cookies(started)
    assert cookie.name == (SECURE if secure else "") + FLOW
    assert ("secure" in cookie.attrs) is secure
    redirect_uri = dict(parse_qsl(urlsplit(started.headers["location"]).query))["redirect_uri"]
    origin = settings.get("url", base_url)
    assert redirect_uri == f"{origin}/auth/callback/github"


async def test_a_large_session_is_chunked_and_read_back(make_site: MakeSite) -> None:
    claims = BigClaims("signIn")
    site = await make_site(plugins=[claims])
    browser = await site.browser()
    done = await site.sign_in(browser)
    chunks = written(done)
    assert sorted(chunks) == [f"{SESSION}.{i}" for i in range(len(chunks))] and len(chunks) >= 2
    assert all(len(header) < 4096 for header in done.headers.get_list("set-cookie"))
    answer = await browser.get("/auth/session")
    assert answer.json()["claims"] == {"blob": claims.blob}

    site.clock.advance(LIFETIME)  # the refresh writes a short session: one cookie
    answer = await browser.get("/auth/session")
    assert answer.json()["claims"] == {"small": True}
    assert list(written(answer)) == [SESSION]
    assert set(chunks) <= expired(answer)
    assert SESSION in jar(browser) and not set(chunks) & set(jar(browser))
    answer = await browser.get("/auth/session")
    assert answer.json()["claims"] == {"small": True} and not written(answer)


async def test_a_session_that_outgrows_one_cookie_expires_the_unsplit_one(
    make_site: MakeSite,
) -> None:
    claims = BigClaims("refresh")
    site = await make_site(plugins=[claims])
    browser = await site.browser()
    assert list(written(await site.sign_in(browser))) == [SESSION]
    site.clock.advance(LIFETIME)
    answer = await browser.get("/auth/session")
    assert answer.json()["claims"] == {"blob": claims.blob}
    assert len(written(answer)) >= 2 and SESSION in expired(answer)
    assert SESSION not in jar(browser)
    assert (await browser.get("/auth/session")).json()["claims"] == {"blob": claims.blob}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_database_session_keeps_large_claims_in_the_store(
    make_site: MakeSite, kind: str
) -> None:
    claims = BigClaims("signIn")
    site = await make_site(kind, plugins=[claims])
    browser = await site.browser()
    done = await site.sign_in(browser)
    assert list(written(done)) == [SESSION] and len(written(done)[SESSION]) == 43
    assert (await browser.get("/auth/session")).json()["claims"] == {"blob": claims.blob}


# == sign-in ================================================================================


async def test_signin_redirects_to_the_provider_with_state_and_pkce(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    started = await browser.get("/auth/signin/github", params={"callbackUrl": "/home?tab=2"})
    assert started.status_code == 302 and started.headers["cache-control"] == "no-store"
    location = started.headers["location"]
    endpoint = site.emu.endpoints("github")["authorization_endpoint"]
    assert location.startswith(endpoint + "?")
    query = dict(parse_qsl(urlsplit(location).query))
    assert query["client_id"] == site.emu.credentials.client_id
    assert query["redirect_uri"] == f"{BASE}/auth/callback/github"
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 32

    [flow] = set_cookies(started)
    assert query["state"] not in flow.value
    state = Sealer(Keyring(SECRET), FLOW, site.clock).unseal(flow.value)
    assert state is not None and state["callbackUrl"] == "/home?tab=2"
    verifier = state["request"]["code_verifier"]
    assert query["code_challenge"] == b64encode(hashlib.sha256(verifier.encode()).digest())
    assert state["request"]["state"] == query["state"]

    again = await browser.get("/auth/signin/github")
    assert dict(parse_qsl(urlsplit(again.headers["location"]).query))["state"] != query["state"]


async def test_signin_passes_the_configured_scopes(make_site: MakeSite) -> None:
    site = await make_site(scopes={"github": ["read:user"]})
    started = await (await site.browser()).get("/auth/signin/github")
    assert dict(parse_qsl(urlsplit(started.headers["location"]).query))["scope"] == "read:user"


async def test_the_callback_starts_a_session_and_returns_to_the_page(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    now = int(site.clock())
    done = await site.sign_in(browser, callback_url="/home?tab=2#top")
    assert done.headers["location"] == "/home?tab=2#top"
    assert done.headers["cache-control"] == "no-store"
    assert list(written(done)) == [SESSION] and FLOW in expired(done)
    assert FLOW not in jar(browser)
    assert counters(site)["authorization_code"] == 1

    answer = await browser.get("/auth/session")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body.keys() == {"user", "provider", "expires", "accessTokenExpires"}
    assert {k: body["user"][k] for k in ADA} == ADA
    assert body["user"]["id"] and body["user"]["image"].startswith(site.emu.base_url)
    assert body["provider"] == "github"
    assert body["expires"] == iso(now + DEFAULT_SESSION_MAX_AGE)
    assert body["accessTokenExpires"] == now + LIFETIME
    tokens = site.tokens_of(browser)
    assert tokens.refresh_token is not None
    assert tokens.access_token.get_secret_value() not in answer.text
    assert tokens.refresh_token.get_secret_value() not in answer.text
    assert not written(answer)
    # The cookie itself does not carry the tokens in clear.
    for value in jar(browser).values():
        assert tokens.access_token.get_secret_value() not in value
        assert tokens.refresh_token.get_secret_value() not in value


async def test_expose_access_token_adds_only_the_access_token(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind, expose_access_token=True)
    browser = await site.browser()
    await site.sign_in(browser)
    answer = await browser.get("/auth/session")
    tokens = site.tokens_of(browser)
    assert answer.json()["accessToken"] == tokens.access_token.get_secret_value()
    assert tokens.refresh_token is not None
    assert tokens.refresh_token.get_secret_value() not in answer.text
    assert await userinfo_status(site, answer.json()["accessToken"]) == 200


async def test_without_the_profile_the_session_has_no_user(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind, fetch_profile=False)
    browser = await site.browser()
    await site.sign_in(browser)
    body = (await browser.get("/auth/session")).json()
    assert body["user"] is None and body["provider"] == "github"
    assert counters(site)["userinfo"] == 0


async def test_signed_out_the_session_is_null(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind)
    answer = await (await site.browser()).get("/auth/session")
    assert answer.status_code == 200 and answer.json() is None
    assert answer.headers.get("set-cookie") is None


async def test_a_fresh_sign_in_with_google_and_the_session_claims(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    await site.sign_in(browser, "google")
    body = (await browser.get("/auth/session")).json()
    assert body["provider"] == "google" and body["user"]["email"]
    assert site.tokens_of(browser).id_token is not None


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_signing_in_again_replaces_the_stored_session(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind)
    assert site.store is not None
    browser = await site.browser()
    await site.sign_in(browser)
    first = jar(browser)[SESSION]
    assert site.store.load(DatabaseStrategy.key_of(first)) is not None
    done = await site.sign_in(browser)
    second = jar(browser)[SESSION]
    assert second != first
    assert [c.value for c in set_cookies(done) if c.name == SESSION][-1] == second
    assert site.store.load(DatabaseStrategy.key_of(first)) is None
    assert site.store.load(DatabaseStrategy.key_of(second)) is not None
    assert (await browser.get("/auth/session")).json()["user"]["name"] == ADA["name"]


# == refresh ================================================================================


async def test_a_due_session_is_refreshed_on_read(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    await site.sign_in(browser)
    before = (await browser.get("/auth/session")).json()
    old = site.tokens_of(browser)
    site.clock.advance(LIFETIME - 30)  # inside the client's 60 s leeway
    answer = await browser.get("/auth/session")
    assert counters(site)["refresh_token"] == 1
    body = answer.json()
    assert "error" not in body and body["user"] == before["user"]
    assert body["accessTokenExpires"] == int(site.clock()) + LIFETIME
    assert body["expires"] == before["expires"]  # a refresh does not extend the session
    if kind == "jwt":
        [cookie] = [c for c in set_cookies(answer) if c.name == SESSION]
        assert int(cookie.attrs["max-age"]) == DEFAULT_SESSION_MAX_AGE - (LIFETIME - 30)
    else:
        assert not written(answer)  # the store changed, not the cookie
    new = site.tokens_of(browser)  # jwt: from the cookie the answer set
    assert new.expires_at == body["accessTokenExpires"]
    assert new.access_token != old.access_token
    assert new.refresh_token != old.refresh_token  # GitHub rotates refresh tokens

    answer = await browser.get("/auth/session")
    assert answer.json()["accessTokenExpires"] == body["accessTokenExpires"]
    assert counters(site)["refresh_token"] == 1 and not written(answer)


async def test_concurrent_reads_of_an_expired_session_refresh_once(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind, expose_access_token=True)
    browser = await site.browser()
    await site.sign_in(browser)
    site.clock.advance(LIFETIME + 1)
    tabs = [await site.browser(cookies=jar(browser)) for _ in range(3)]
    answers = await asyncio.gather(*(tab.get("/auth/session") for tab in tabs))
    assert counters(site)["refresh_token"] == 1
    assert counters(site)["token_requests"] == 2  # the sign-in's exchange and one refresh
    bodies = [answer.json() for answer in answers]
    assert all("error" not in body for body in bodies)
    assert {body["accessTokenExpires"] for body in bodies} == {int(site.clock()) + LIFETIME}
    assert len({body["accessToken"] for body in bodies}) == 1

    # The rotated tokens work: at the provider, and for the next refresh.
    assert await userinfo_status(site, bodies[0]["accessToken"]) == 200
    site.clock.advance(LIFETIME + 1)
    answer = await tabs[0].get("/auth/session")
    assert "error" not in answer.json()
    assert counters(site)["refresh_token"] == 2
    assert await userinfo_status(site, answer.json()["accessToken"]) == 200


async def test_a_revoked_grant_ends_in_refresh_access_token_error(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    await site.sign_in(browser)
    stale = jar(browser)
    assert site.emu.revoke_grants("github") >= 1
    site.clock.advance(LIFETIME + 1)
    requests = counters(site)["token_requests"]
    answer = await browser.get("/auth/session")
    assert answer.status_code == 200
    body = answer.json()
    assert body["error"] == "RefreshAccessTokenError"
    assert body["user"]["name"] == ADA["name"]
    assert counters(site)["token_requests"] == requests + 1

    again = await browser.get("/auth/session")
    assert again.json()["error"] == "RefreshAccessTokenError"
    if kind == "jwt":
        # Another tab still holds the cookie from before the failure: within the client's
        # reuse window the provider's answer is reused, not asked for again.
        other = await site.browser(cookies=stale)
        assert (await other.get("/auth/session")).json()["error"] == "RefreshAccessTokenError"
    else:
        site.clock.advance(3 * LIFETIME)  # the row remembers the failure for good
        assert (await browser.get("/auth/session")).json()["error"] == "RefreshAccessTokenError"
    assert counters(site)["token_requests"] == requests + 1


class EndsDuringRefresh(MemoryTokenStore):
    """A store whose rows vanish as a refresh takes its lease: a sign-out in another tab."""

    def acquire(self, key: str, lease: float) -> str | None:
        self.delete(key)
        return super().acquire(key, lease)


async def test_a_session_ended_during_its_refresh_reads_as_signed_out(
    make_site: MakeSite,
) -> None:
    site = await make_site("memory", store=EndsDuringRefresh())
    browser = await site.browser()
    await site.sign_in(browser)
    site.clock.advance(LIFETIME + 1)
    answer = await browser.get("/auth/session")
    assert answer.status_code == 200 and answer.json() is None
    assert SESSION in expired(answer)
    assert counters(site)["refresh_token"] == 0


async def test_a_transient_failure_keeps_the_session_while_the_token_is_valid(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    await site.sign_in(browser)
    expires = (await browser.get("/auth/session")).json()["accessTokenExpires"]
    site.emu.configure(fault_rate=1.0)
    site.clock.advance(LIFETIME - 30)
    answer = await browser.get("/auth/session")
    body = answer.json()
    assert "error" not in body and body["user"]["name"] == ADA["name"]
    assert body["accessTokenExpires"] == expires
    assert counters(site)["fault_5xx"] >= 1 and counters(site)["refresh_token"] == 0

    site.emu.configure(fault_rate=0.0)  # the provider is back: the next read refreshes
    answer = await browser.get("/auth/session")
    assert answer.json()["accessTokenExpires"] == int(site.clock()) + LIFETIME
    assert counters(site)["refresh_token"] == 1


# == sign-out ===============================================================================


async def test_signout_revokes_and_clears_the_session(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    await site.sign_in(browser)
    key = DatabaseStrategy.key_of(jar(browser)[SESSION])
    access_token = site.tokens_of(browser).access_token.get_secret_value()
    assert await userinfo_status(site, access_token) == 200

    out = await sign_out(browser, callbackUrl="/bye")
    assert out.status_code == 303 and out.headers["location"] == "/bye"
    assert counters(site)["revoke"] == 1
    assert SESSION in expired(out) and not written(out)
    assert SESSION not in jar(browser)
    if site.store is not None:
        assert site.store.load(key) is None
    assert await userinfo_status(site, access_token) == 401
    assert (await browser.get("/auth/session")).json() is None


async def test_signout_from_a_script_answers_json(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    await site.sign_in(browser)
    token = await csrf_token(browser)
    out = await browser.post(
        "/auth/signout",
        json={"callbackUrl": f"{BASE}/bye?x=1"},
        headers={"x-csrf-token": token, "accept": "application/json"},
    )
    assert out.status_code == 200 and out.json() == {"url": "/bye?x=1"}
    assert SESSION in expired(out)
    assert (await browser.get("/auth/session")).json() is None


async def test_signout_without_revocation_or_session(make_site: MakeSite) -> None:
    site = await make_site(revoke_on_signout=False)
    browser = await site.browser()
    out = await sign_out(browser)  # signed out already: nothing to do, still fine
    assert out.status_code == 303 and out.headers["location"] == "/"
    assert not expired(out)
    await site.sign_in(browser)
    out = await sign_out(browser)
    assert out.status_code == 303 and SESSION in expired(out)
    assert counters(site)["revoke"] == 0


async def test_signout_behind_a_proxy_accepts_the_public_origin(make_site: MakeSite) -> None:
    site = await make_site(url=PUBLIC)
    browser = await site.browser()  # the app sees http://127.0.0.1:8000, the browser PUBLIC
    answer = await browser.get("/auth/csrf")
    cookie = written(answer, CSRF)[SECURE + CSRF]
    out = await browser.post(
        "/auth/signout",
        data={"csrfToken": answer.json()["csrfToken"], "callbackUrl": f"{PUBLIC}/bye"},
        headers={"origin": PUBLIC, "cookie": f"{SECURE}{CSRF}={cookie}"},
    )
    assert out.status_code == 303 and out.headers["location"] == "/bye"


# == the dependencies (FastAPI) and the plain Starlette helpers ===============================


def fastapi_app(site: Site) -> FastAPI:
    auth = site.auth
    userinfo = site.emu.endpoints("github")["userinfo_endpoint"]
    app = FastAPI()
    app.mount("/auth", auth)
    signed_in, maybe_signed_in = Depends(auth.session), Depends(auth.optional_session)
    access_token = Depends(auth.access_token)

    @app.get("/api/me")
    async def me(session: Session = signed_in) -> dict[str, Any]:
        return {"name": session.user.name if session.user else None, "at": session.expires_at}

    @app.get("/api/maybe")
    async def maybe(session: Session | None = maybe_signed_in) -> dict[str, Any]:
        return {"signed_in": session is not None}

    @app.get("/api/github")
    async def github(token: str = access_token) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            answer = await http.get(userinfo, headers={"authorization": f"Bearer {token}"})
        return {"status": answer.status_code, "login": answer.json().get("login")}

    return app


HTML = {"accept": "text/html,application/xhtml+xml"}
JSON = {"accept": "application/json"}


async def test_the_session_dependency(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind, sign_in_page="/login")
    browser = await site.browser(app=fastapi_app(site))
    answer = await browser.get("/api/me", headers=JSON)
    assert answer.status_code == 401 and answer.json() == {"detail": "signed_out"}
    answer = await browser.get("/api/me?x=1", headers=HTML)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?callbackUrl=%2Fapi%2Fme%3Fx%3D1"
    assert (await browser.post("/api/me", headers=HTML)).status_code == 405
    assert (await browser.get("/api/maybe")).json() == {"signed_in": False}

    await site.sign_in(browser)
    answer = await browser.get("/api/me")
    assert answer.json() == {"name": ADA["name"], "at": int(site.clock()) + LIFETIME}
    assert (await browser.get("/api/maybe")).json() == {"signed_in": True}


async def test_without_a_sign_in_page_a_page_gets_401(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser(app=fastapi_app(site))
    answer = await browser.get("/api/me", headers=HTML)
    assert answer.status_code == 401 and "location" not in answer.headers


async def test_a_failed_refresh_sends_pages_back_to_the_provider(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind, sign_in_page="/login")
    browser = await site.browser(app=fastapi_app(site))
    await site.sign_in(browser)
    site.emu.revoke_grants("github")
    site.clock.advance(LIFETIME + 1)
    answer = await browser.get("/api/me?x=1", headers=HTML)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/auth/signin/github?callbackUrl=%2Fapi%2Fme%3Fx%3D1"
    answer = await browser.get("/api/me", headers=JSON)
    assert answer.status_code == 401 and answer.json() == {"detail": "RefreshAccessTokenError"}
    assert (await browser.get("/api/github", headers=JSON)).status_code == 401
    assert (await browser.get("/api/maybe")).json() == {"signed_in": True}


async def test_the_access_token_dependency_refreshes_and_sets_the_cookie(
    make_site: MakeSite, kind: str
) -> None:
    site = await make_site(kind)
    browser = await site.browser(app=fastapi_app(site))
    await site.sign_in(browser)
    answer = await browser.get("/api/github")
    assert answer.json()["status"] == 200 and answer.json()["login"]
    before = site.tokens_of(browser)

    site.clock.advance(LIFETIME + 1)  # the provider refuses the old token by now
    answer = await browser.get("/api/github")
    assert answer.json()["status"] == 200
    assert counters(site)["refresh_token"] == 1
    if kind == "jwt":
        assert list(written(answer)) == [SESSION]  # the endpoint's response carries it
    after = site.tokens_of(browser)
    assert after.access_token != before.access_token
    assert (await browser.get("/api/github")).json()["status"] == 200
    assert counters(site)["refresh_token"] == 1


async def test_plain_starlette_endpoints_use_current_and_apply(make_site: MakeSite) -> None:
    site = await make_site()

    async def page(request: Request) -> Response:
        current = await site.auth.current(request)
        body = {"signed_in": current.session is not None, "token": current.access_token}
        return KeyturnAuth.apply(current, JSONResponse(body))

    app = Starlette(routes=[Route("/page", page), Mount("/auth", app=site.auth)])
    browser = await site.browser(app=app)
    assert (await browser.get("/page")).json() == {"signed_in": False, "token": None}
    await site.sign_in(browser)
    site.clock.advance(LIFETIME + 1)
    answer = await browser.get("/page")
    assert answer.json()["token"] == site.tokens_of(browser).access_token.get_secret_value()
    assert list(written(answer)) == [SESSION]


# == the blocking WebAuth ===================================================================


class SyncBrowser:
    """A browser for :class:`WebAuth`: builds each :class:`WebRequest` and keeps the cookies."""

    def __init__(self, web: WebAuth, cookies: Mapping[str, str] | None = None) -> None:
        self.web = web
        self.jar = dict(cookies or {})

    def request(
        self,
        method: str,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> WebResponse:
        all_headers = dict(headers or {})
        body = b""
        if form is not None:
            body = urlencode(form).encode()
            all_headers["content-type"] = "application/x-www-form-urlencoded"
        request = WebRequest(method, BASE + path, all_headers, dict(self.jar), body)
        response = self.web.handle(request)
        for cookie in set_cookies(response):
            if cookie.expired:
                self.jar.pop(cookie.name, None)
            else:
                self.jar[cookie.name] = cookie.value
        return response

    def json(self, path: str) -> Any:
        response = self.request("GET", path)
        assert response.status == 200
        return json.loads(response.body)


def sync_store(kind: str, tmp_path: Path) -> TokenStore | None:
    if kind == "memory":
        return MemoryTokenStore()
    if kind == "sqlite":
        return SQLiteTokenStore(tmp_path / "s.db")
    return None


def test_blocking_webauth_signs_in_refreshes_and_signs_out(
    world: World, kind: str, tmp_path: Path
) -> None:
    store = sync_store(kind, tmp_path)
    strategy: StrategyName = "jwt" if kind == "jwt" else "database"
    with make_client(world, blocking=True) as client:
        web = WebAuth(client, secret=SECRET, strategy=strategy, store=store)
        browser = SyncBrowser(web)
        started = browser.request("GET", "/auth/signin/github?callbackUrl=%2Fhome")
        assert started.status == 302
        location = started.header("location")
        assert location is not None
        query = world.emu.authorize(location)
        done = browser.request("GET", "/auth/callback/github?" + urlencode(query))
        assert done.status == 303 and done.header("location") == "/home"
        body = browser.json("/auth/session")
        assert body["user"]["name"] == ADA["name"]

        current = web.current(WebRequest("GET", BASE + "/page", cookies=browser.jar))
        assert current.session is not None and current.access_token is not None
        assert current.access_token not in repr(current) and not current.needs_sign_in

        world.clock.advance(LIFETIME + 1)
        page = web.current(WebRequest("GET", BASE + "/page", cookies=browser.jar))
        assert page.session is not None and page.session.error is None
        assert counters(world)["refresh_token"] == 1
        assert bool(page.cookies) is (kind == "jwt")
        browser.jar.update({c.name: c.value for c in map(parse_set_cookie, page.cookies)})
        assert browser.json("/auth/session")["accessTokenExpires"] == int(world.clock()) + LIFETIME
        assert counters(world)["refresh_token"] == 1

        token = browser.json("/auth/csrf")["csrfToken"]
        refused = browser.request("POST", "/auth/signout", form={"csrfToken": "nope"})
        assert refused.status == 403 and browser.json("/auth/session") is not None
        out = browser.request("POST", "/auth/signout", form={"csrfToken": token})
        assert out.status == 303 and counters(world)["revoke"] == 1
        assert browser.json("/auth/session") is None
    if isinstance(store, SQLiteTokenStore):
        store.close()


def test_blocking_webauth_refreshes_once_across_threads(
    world: World, kind: str, tmp_path: Path
) -> None:
    store = sync_store(kind, tmp_path)
    strategy: StrategyName = "jwt" if kind == "jwt" else "database"
    with make_client(world, blocking=True) as client:
        web = WebAuth(client, secret=SECRET, strategy=strategy, store=store)
        browser = SyncBrowser(web)
        started = browser.request("GET", "/auth/signin/github")
        query = world.emu.authorize(started.header("location") or "")
        browser.request("GET", "/auth/callback/github?" + urlencode(query))
        world.clock.advance(LIFETIME + 1)
        cookies = dict(browser.jar)
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(lambda _: SyncBrowser(web, cookies).json("/auth/session"), range(4))
            )
        assert counters(world)["refresh_token"] == 1
        assert len({body["accessTokenExpires"] for body in results}) == 1
        assert all("error" not in body for body in results)
    if isinstance(store, SQLiteTokenStore):
        store.close()


def test_blocking_webauth_shows_a_revoked_grant(world: World) -> None:
    with make_client(world, blocking=True) as client:
        web = WebAuth(client, secret=SECRET)
        browser = SyncBrowser(web)
        started = browser.request("GET", "/auth/signin/github")
        query = world.emu.authorize(started.header("location") or "")
        browser.request("GET", "/auth/callback/github?" + urlencode(query))
        world.emu.revoke_grants("github")
        world.clock.advance(LIFETIME + 1)
        current = web.current(WebRequest("GET", BASE + "/", cookies=browser.jar))
        assert current.session is not None and current.needs_sign_in
        assert current.session.error == "RefreshAccessTokenError"
        assert web.sign_in_url("github", "/a b") == "/auth/signin/github?callbackUrl=%2Fa%20b"


# == routes, settings, error pages ==========================================================


async def test_unknown_routes_are_404_and_wrong_methods_405(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    for path in (
        "/auth/nope",
        "/auth/signin",
        "/auth/signin/",
        "/auth/signin/github/x",
        "/auth/session/x",
        "/auth/callback",
        "/auth/client.js/x",
    ):
        answer = await browser.get(path)
        assert answer.status_code == 404, path
        assert answer.json() == {"error": "not_found"}
    for method, path, allow in (
        ("GET", "/auth/signout", "POST"),
        ("POST", "/auth/session", "GET"),
        ("POST", "/auth/signin/github", "GET"),
        ("DELETE", "/auth/csrf", "GET"),
        ("PUT", "/auth/callback/github", "GET"),
    ):
        answer = await browser.request(method, path)
        assert answer.status_code == 405, (method, path)
        assert answer.headers["allow"] == allow
        assert answer.headers.get("set-cookie") is None


async def test_an_unknown_provider_gets_a_404_page(make_site: MakeSite) -> None:
    site = await make_site()
    answer = await (await site.browser()).get("/auth/signin/<b>nope<i>")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert "nope" in message_of(answer) and "<b>" not in answer.text
    assert answer.headers.get("set-cookie") is None


async def test_a_provider_without_credentials_gets_a_500_page_that_names_it(
    make_site: MakeSite, caplog: pytest.LogCaptureFixture
) -> None:
    site = await make_site()
    answer = await (await site.browser()).get("/auth/signin/strict")
    assert answer.status_code == 500
    assert "strict" in message_of(answer) and "not configured" in message_of(answer)
    secret = site.emu.credentials.client_secret
    assert secret is not None and secret.get_secret_value() not in answer.text
    assert answer.headers.get("set-cookie") is None
    assert any("strict" in record.getMessage() for record in caplog.records)


async def test_providers_and_the_client_script(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    listing = (await browser.get("/auth/providers")).json()
    assert listing["github"] == {
        "id": "github",
        "name": "GitHub",
        "signinUrl": "/auth/signin/github",
    }
    script = await browser.get("/auth/client.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "getSession" in script.text and "signOut" in script.text


async def test_the_routes_follow_the_base_path(make_site: MakeSite) -> None:
    site = await make_site(base_path="/login/")
    app = Starlette(routes=[Mount("/login", app=site.auth)])
    browser = await site.browser(app=app)
    started = await browser.get("/login/signin/github")
    query = dict(parse_qsl(urlsplit(started.headers["location"]).query))
    assert query["redirect_uri"] == f"{BASE}/login/callback/github"
    query = site.emu.authorize(started.headers["location"])
    done = await browser.get("/login/callback/github", params=query)
    assert done.status_code == 303
    assert (await browser.get("/login/session")).json()["provider"] == "github"
    assert (await browser.get("/auth/session")).status_code == 404
    assert site.auth.web.sign_in_url("github") == "/login/signin/github?callbackUrl=%2F"


async def test_bad_settings_are_configuration_errors(world: World) -> None:
    async with make_client(world) as client:
        for settings in (
            {"base_path": "auth"},
            {"base_path": "/auth?x"},
            {"session_max_age": 0},
            {"strategy": "cookie"},
            {"url": "app.example"},
            {"url": "ftp://app.example"},
        ):
            with pytest.raises(ConfigurationError):
                KeyturnAuth(client, secret=SECRET, **settings)
        misspelt: Any = {"sesion_max_age": 60}
        with pytest.raises(TypeError, match=r"unknown setting\(s\): sesion_max_age"):
            KeyturnAuth(client, secret=SECRET, **misspelt)


def test_same_origin_targets() -> None:
    origin = BASE
    assert same_origin_target(None, origin) == "/"
    assert same_origin_target("", origin) == "/"
    assert same_origin_target("/a?b=1#c", origin) == "/a?b=1#c"
    assert same_origin_target(f"{BASE}/a?b=1", origin) == "/a?b=1"
    assert same_origin_target(BASE, origin) == "/"
    assert same_origin_target("/café?q=日本", origin) == "/caf%C3%A9?q=%E6%97%A5%E6%9C%AC"
    assert same_origin_target("/a b", origin) == "/a%20b"
    for value in (
        "//evil.example",
        f"{BASE}//evil.example",
        "https://evil.example",
        "http://127.0.0.1:9000/",
        "/\\evil.example",
        "/a\r\nx",
        "javascript:alert(1)",
        "a/b",
    ):
        assert same_origin_target(value, origin) is None, value
