"""What the web tests share: the emulator they sign in at, the app under test, its browsers,
and readers of what the app answers.

The routes run in-process (httpx's ASGI transport) and talk to a real emulator on loopback,
whose clock is the same :class:`FakeClock` as the client's: tokens and sessions expire when a
test moves the clock, never by waiting. Behaviour that should hold for both session strategies
runs three times (conftest's ``kind``): ``jwt`` (sealed cookie), and ``database`` with a memory
and a SQLite store.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import Mount

from keyturn import JWT, AsyncKeyturn, Flow, Keyturn, Profile, ProviderSpec, TokenSet, hookimpl
from keyturn.plugins import get_plugin_manager
from keyturn.starlette import KeyturnAuth
from keyturn.stores.base import TokenStore
from keyturn.stores.memory import MemoryTokenStore
from keyturn.stores.sqlite import SQLiteTokenStore
from keyturn.web import Keyring, WebResponse
from keyturn.web.cookies import read_chunked
from keyturn.web.sealing import Sealer
from keyturn.web.settings import StrategyName
from keyturn.web.strategies import DatabaseStrategy
from keyturn_emulator import Emulator
from keyturn_emulator.keys import KeyRing
from keyturn_github import GITHUB
from keyturn_google import GOOGLE
from tests.conftest import FakeClock

SECRET = "web-tests-secret-" + "0123456789abcdef" * 2
OLD_SECRET = "web-tests-old-secret-" + "fedcba9876543210" * 2
OTHER_SECRET = "web-tests-other-app-" + "a1b2c3d4e5f6a7b8" * 2
BASE = "http://127.0.0.1:8000"
PUBLIC = "https://app.example"
SESSION = "keyturn.session-token"
FLOW = "keyturn.flow"
CSRF = "keyturn.csrf-token"
SECURE = "__Secure-"
HOST = "__Host-"
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
        redirect_uris=[f"{PUBLIC}/auth/callback/github", f"{PUBLIC}/auth/callback/google"],
    ) as emu:
        yield World(emu, clock)


def fresh(world: World) -> World:
    """The shared world with its knobs back to normal and its counters at zero.

    The clock only ever moves forward, so a test reads times relative to ``clock()``.
    """
    world.emu.configure(fault_rate=0.0, access_token_lifetime=LIFETIME)
    world.emu.reset_counters()
    return world


def make_client(
    world: World,
    plugins: Sequence[object] = (),
    *,
    blocking: bool = False,
    providers: Sequence[ProviderSpec] = (),
) -> Any:
    """A client with github and google at the emulator, and ``strict`` without credentials.

    :param providers: more specs (or ones replacing those above by id), with the emulator's
        credentials.
    """
    emu = world.emu
    specs = {spec.id: spec for spec in (emu.point(GITHUB), emu.point(GOOGLE), emu.spec("strict"))}
    specs.update((spec.id, spec) for spec in providers)
    kwargs: dict[str, Any] = {
        "providers": list(specs.values()),
        "clock": world.clock,
        "plugin_manager": get_plugin_manager(plugins=plugins, environ={}),
        "environ": {},
    }
    credentials = {"github": emu.credentials, "google": emu.credentials}
    credentials.update((spec.id, emu.credentials) for spec in providers)
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
        user = row.data.get("user")
        return JWT(tokens=row.tokens, user=None if user is None else Profile.model_validate(user))

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
            providers: Sequence[ProviderSpec] = (),
            **settings: Any,
        ) -> Site:
            nonlocal made
            made += 1
            client = await stack.enter_async_context(
                make_client(world, plugins, providers=providers)
            )
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
    name = name.removeprefix(SECURE).removeprefix(HOST)
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

    def __init__(self, big: str = "signIn", size: int = 5000) -> None:
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


def cookie_header_size(cookies: Mapping[str, str]) -> int:
    """Bytes of the ``Cookie`` header value a browser sends for ``cookies``."""
    return len("; ".join(f"{name}={value}" for name, value in cookies.items()))


def groups(count: int, seed: int = 0) -> list[str]:
    """``count`` group ids as Entra ID writes them (GUIDs: random, so they barely compress)."""
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(count)]


class Groups:
    """A provider whose ID token, and profile, list the user's groups (Entra ID, Okta and
    Keycloak can put thousands there).

    The emulator's ID token is re-signed with a ``groups`` claim added, at sign-in and, with
    ``at`` holding ``"refresh"``, in every refresh response (which then carries an ID token
    even where the emulator sends none). The profile's ``raw`` gets the same list.

    :param count: how many groups.
    :param at: when the ID token carries them: ``"signIn"``, ``"refresh"`` or both.
    :param keys: the emulator's signing keys, which sign its ID tokens.
    :param claims: other claims to change in the grown ID tokens (``{"sub": ...}`` makes a
        provider that answers a refresh with another user's ID token).
    """

    def __init__(
        self,
        count: int,
        keys: KeyRing,
        at: Sequence[str] = ("signIn",),
        claims: dict[str, Any] | None = None,
    ) -> None:
        self.groups = groups(count)
        self.keys = keys
        self.at = tuple(at)
        self.claims = dict(claims or {})
        #: How many ID tokens were grown.
        self.grown = 0

    def _grown(self, tokens: TokenSet) -> TokenSet:
        if tokens.id_token is None:  # GitHub: no ID token to grow
            return tokens
        self.grown += 1
        header, payload = tokens.id_token.get_secret_value().split(".")[:2]
        alg = json.loads(b64decode(header))["alg"]
        claims = json.loads(b64decode(payload))
        id_token = self.keys.sign({**claims, "groups": self.groups, **self.claims}, alg)
        return tokens.model_copy(update={"id_token": SecretStr(id_token)})

    def _grow(self, flow: Flow[TokenSet], when: str) -> Flow[TokenSet]:
        tokens = yield from flow
        return self._grown(tokens) if when in self.at else tokens

    @hookimpl(wrapper=True)
    def keyturn_exchange_code(self) -> Any:
        flow = yield
        return None if flow is None else self._grow(flow, "signIn")

    @hookimpl(wrapper=True)
    def keyturn_refresh(self) -> Any:
        flow = yield
        return None if flow is None else self._grow(flow, "refresh")

    def _with_groups(self, flow: Flow[Profile]) -> Flow[Profile]:
        profile = yield from flow
        return profile.model_copy(update={"raw": {**profile.raw, "groups": self.groups}})

    @hookimpl(wrapper=True)
    def keyturn_userinfo(self) -> Any:
        flow = yield
        return None if flow is None else self._with_groups(flow)
