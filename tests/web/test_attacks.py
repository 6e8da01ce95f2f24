"""keyturn.web under attack: bad cookies, forged callbacks, open redirects, CSRF, leaks.

Every case ends the same way: the visitor is treated as signed out or the request is refused
with a clear answer; never a 500 (the ASGI transport would raise it), and no session cookie
is handed out. The app, the emulator and the helpers are those of ``_site.py`` and
``conftest.py``.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc import jwe
from joserfc.jwk import OctKey
from pydantic import SecretStr

from keyturn import Flow, Profile, TokenSet, hookimpl
from keyturn.starlette import MAX_BODY
from keyturn.web import Keyring
from keyturn.web.sealing import Sealer
from keyturn_emulator import Emulator
from keyturn_google import GOOGLE

from ._site import (
    BASE,
    FLOW,
    LIFETIME,
    OTHER_SECRET,
    PUBLIC,
    SECRET,
    SECURE,
    SESSION,
    BigClaims,
    MakeSite,
    Site,
    World,
    b64decode,
    b64encode,
    counters,
    csrf_token,
    expired,
    jar,
    message_of,
    set_cookies,
    sign_out,
    written,
)


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    """A raw ``Cookie`` header: sends values a cookie jar would not keep as they are."""
    return {"cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


def change_one_character(value: str) -> str:
    middle = len(value) // 2
    return value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]


async def assert_signed_out(site: Site, cookies: dict[str, str]) -> httpx.Response:
    """``/auth/session`` with exactly ``cookies``: ``null``, and the bad cookies expired."""
    browser = await site.browser()
    answer = await browser.get("/auth/session", headers=cookie_header(cookies))
    assert answer.status_code == 200 and answer.json() is None
    assert not written(answer)
    assert {name for name in cookies if name.startswith(SESSION)} <= expired(answer)
    return answer


def assert_refused_page(answer: httpx.Response, *statuses: int) -> str:
    """A clear HTML page with one of ``statuses``, and no session cookie; its message."""
    assert answer.status_code in statuses, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "no-store"
    assert not written(answer)
    message = message_of(answer)
    assert len(message) > 20
    return message


# == bad session cookies ====================================================================


JWT_CASES = [
    "tampered",
    "truncated",
    "expired",
    "foreign-key",
    "garbage",
    "empty",
    "huge",
    "flow-cookie-as-session",
    "secure-name-on-http",
]


@pytest.mark.parametrize("case", JWT_CASES)
async def test_a_bad_jwt_session_cookie_is_a_signed_out_visitor(
    make_site: MakeSite, case: str
) -> None:
    site = await make_site(session_max_age=600)
    browser = await site.browser()
    started, query = await site.start(browser)
    await browser.get("/auth/callback/github", params=query)
    value = jar(browser)[SESSION]
    name = SESSION
    if case == "tampered":
        value = change_one_character(value)
    elif case == "truncated":
        value = value[: len(value) - 7]
    elif case == "expired":
        site.clock.advance(601)
    elif case == "foreign-key":
        other = await make_site(secret=OTHER_SECRET)
        other_browser = await other.browser()
        await other.sign_in(other_browser)
        value = jar(other_browser)[SESSION]
    elif case == "garbage":
        value = "not.a.session.cookie.at-all"
    elif case == "empty":
        value = ""
    elif case == "huge":
        value = "A" * 100_000
    elif case == "flow-cookie-as-session":
        value = set_cookies(started)[0].value  # the same app's key, for another purpose
    elif case == "secure-name-on-http":
        name = SECURE + SESSION  # only https reads the prefixed name
    answer = await assert_signed_out(site, {name: value})
    if case == "secure-name-on-http":
        assert not expired(answer)  # not ours on http: left alone


async def test_a_session_cookie_split_wrongly_is_a_signed_out_visitor(
    make_site: MakeSite,
) -> None:
    site = await make_site(plugins=[BigClaims()])
    browser = await site.browser()
    chunks = written(await site.sign_in(browser))
    assert len(chunks) >= 2
    names = sorted(chunks)
    missing = {name: chunks[name] for name in names if name != f"{SESSION}.0"}
    await assert_signed_out(site, missing)
    await assert_signed_out(site, {**chunks, f"{SESSION}.{len(chunks)}": chunks[names[0]]})
    swapped = dict(chunks)
    swapped[names[0]], swapped[names[1]] = chunks[names[1]], chunks[names[0]]
    await assert_signed_out(site, swapped)
    await assert_signed_out(site, {names[0]: chunks[names[0]]})
    # The right chunks under the unsplit name, concatenated in the wrong order: still refused.
    await assert_signed_out(site, {SESSION: "".join(chunks[n] for n in reversed(names))})


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize(
    "value",
    [
        "unknown",
        "signed-out",
        "short",
        "x" * 43 + "x",
        "!" * 43,
        "../../etc/passwd-0123456789012345678901234",
        "",
        "jwe",
    ],
)
async def test_a_bad_database_session_id_is_a_signed_out_visitor(
    make_site: MakeSite, kind: str, value: str
) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    await site.sign_in(browser)
    if value == "unknown":
        value = secrets.token_urlsafe(32)  # well formed, never issued
    elif value == "signed-out":  # a copied cookie dies with the session
        value = jar(browser)[SESSION]
        assert (await sign_out(browser)).status_code == 303
    elif value == "jwe":
        jwt_site = await make_site()
        jwt_browser = await jwt_site.browser()
        await jwt_site.sign_in(jwt_browser)
        value = jar(jwt_browser)[SESSION]
    await assert_signed_out(site, {SESSION: value})


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_planted_session_id_is_not_kept_at_sign_in(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind)
    planted = secrets.token_urlsafe(32)
    browser = await site.browser(cookies={SESSION: planted})
    await site.sign_in(browser)
    assert jar(browser)[SESSION] != planted
    assert (await assert_signed_out(site, {SESSION: planted})).json() is None


# == deeply nested JSON =====================================================================

#: Deeper than any JSON parser's recursion allows (the standard library's, pydantic-core's).
DEPTH = 20_000


def sealed_text(site: Site, purpose: str, plaintext: bytes) -> str:
    """A value sealed with the app's own key for ``purpose``, with any plaintext at all."""
    [key, *_] = Keyring(SECRET).keys(purpose)
    header = {"alg": "dir", "enc": "A256GCM", "kid": key.kid}
    return jwe.encrypt_compact(header, plaintext, OctKey.import_key(key.material))


DEEP_PAYLOADS = {
    "array": b"[" * DEPTH + b"]" * DEPTH,
    "object": b'{"a":' * (DEPTH // 3) + b"1" + b"}" * (DEPTH // 3),
    "in-the-session": b'{"exp":9999999999,"jwt":{"tokens":{"provider":"github","access_token":'
    + b'"gho_fake"},"claims":{"d":'
    + b"[" * DEPTH
    + b"]" * DEPTH
    + b"}}}",
    "unclosed": b'{"exp":9999999999,"jwt":' + b"[" * DEPTH,
}


@pytest.mark.parametrize("header", ["[" * DEPTH, "[" * 700, '{"a":' * 150 + "1" + "}" * 150])
async def test_a_deeply_nested_jwe_header_is_a_signed_out_visitor(
    make_site: MakeSite, header: str
) -> None:
    site = await make_site()
    browser = await site.browser()
    await site.sign_in(browser)
    parts = jar(browser)[SESSION].split(".")
    parts[0] = b64encode(header.encode())
    await assert_signed_out(site, {SESSION: ".".join(parts)})


@pytest.mark.parametrize("payload", list(DEEP_PAYLOADS), ids=list(DEEP_PAYLOADS))
async def test_a_deeply_nested_session_payload_is_a_signed_out_visitor(
    make_site: MakeSite, payload: str
) -> None:
    site = await make_site()
    value = sealed_text(site, SESSION, DEEP_PAYLOADS[payload])
    assert len(value) < 64 * 1024  # within what the reader reads at all
    await assert_signed_out(site, {SESSION: value})


@pytest.mark.parametrize("payload", list(DEEP_PAYLOADS), ids=list(DEEP_PAYLOADS))
async def test_a_deeply_nested_flow_cookie_is_refused_at_the_callback(
    make_site: MakeSite, payload: str
) -> None:
    site = await make_site()
    browser = await site.browser()
    _, query = await site.start(browser)
    browser.cookies.set(FLOW, sealed_text(site, FLOW, DEEP_PAYLOADS[payload]), domain="127.0.0.1")
    answer = await browser.get("/auth/callback/github", params=query)
    assert "already used" in assert_refused_page(answer, 400)
    assert counters(site)["token_requests"] == 0


@pytest.mark.parametrize("with_header", [True, False], ids=["token-in-header", "token-in-body"])
async def test_a_deeply_nested_signout_body_is_bad_input_not_a_crash(
    make_site: MakeSite, with_header: bool
) -> None:
    site = await make_site()
    browser = await site.browser()
    await site.sign_in(browser)
    token = await csrf_token(browser)
    body = b"[" * (MAX_BODY // 2) + b"]" * (MAX_BODY // 2)
    assert len(body) <= MAX_BODY
    headers = {"content-type": "application/json", "accept": "application/json"}
    if with_header:
        headers["x-csrf-token"] = token
    answer = await browser.post("/auth/signout", content=body, headers=headers)
    if with_header:  # the body holds no field: the defaults apply
        assert answer.status_code == 200 and answer.json() == {"url": "/"}
    else:
        assert answer.status_code == 403 and answer.json() == {"error": "csrf_token_invalid"}
    deep_object = b'{"csrfToken":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    answer = await browser.post("/auth/signout", content=deep_object, headers=headers)
    assert answer.status_code == (200 if with_header else 403)


class DeepIdToken:
    """A provider whose ID token's payload nests deeper than any parser follows, signed with
    the emulator's active key, so that the depth is what the callback meets, not a signature
    its key set does not verify."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    @hookimpl(wrapper=True)
    def keyturn_exchange_code(self) -> Any:
        flow = yield
        return None if flow is None else self._deepen(flow)

    def _deepen(self, flow: Flow[TokenSet]) -> Flow[TokenSet]:
        tokens = yield from flow
        assert tokens.id_token is not None
        payload = tokens.id_token.get_secret_value().split(".")[1]
        claims = json.loads(b64decode(payload))
        text = json.dumps(claims)[:-1] + ',"deep":' + "[" * DEPTH + "]" * DEPTH + "}"
        deep = self.emu.sign_id_token(text.encode(), "google")
        return tokens.model_copy(update={"id_token": SecretStr(deep)})


async def test_a_deeply_nested_id_token_is_refused_at_the_callback(
    make_site: MakeSite, world: World
) -> None:
    site = await make_site(plugins=[DeepIdToken(world.emu)])
    browser = await site.browser()
    _, query = await site.start(browser, "google")
    answer = await browser.get("/auth/callback/google", params=query)
    assert_refused_page(answer, 400, 502)
    assert SESSION not in jar(browser)


class DeepProfile:
    """A provider whose userinfo answer holds a field nested 300 deep: readable JSON, but
    deeper than a session can be written back (pydantic stops serialising near 255)."""

    @hookimpl(wrapper=True)
    def keyturn_userinfo(self) -> Any:
        flow = yield
        return None if flow is None else self._deepen(flow)

    def _deepen(self, flow: Flow[Profile]) -> Flow[Profile]:
        profile = yield from flow
        deep: Any = "x"
        for _ in range(300):
            deep = {"a": deep}
        return Profile.model_validate({**profile.model_dump(), "raw": {**profile.raw, "d": deep}})


@pytest.mark.parametrize(
    ("kind", "keeps"), [("jwt", ["raw_profile"]), ("sqlite", []), ("memory", [])]
)
async def test_a_profile_nested_deeper_than_a_session_can_hold_still_signs_in(
    make_site: MakeSite, kind: str, keeps: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    site = await make_site(kind, plugins=[DeepProfile()], session_cookie_keeps=keeps)
    browser = await site.browser()
    await site.sign_in(browser, "github")
    session = (await browser.get("/auth/session")).json()
    assert session["user"]["name"] and "error" not in session
    user = site.jwt_of(jar(browser)).user
    assert user is not None and "d" not in user.raw and user.raw  # the rest of it is kept
    assert any("'d'" in record.getMessage() for record in caplog.records)


# == forged, replayed and failed callbacks ==================================================


async def test_a_callback_with_another_state_is_refused(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    _, query = await site.start(browser)
    answer = await browser.get("/auth/callback/github", params={**query, "state": "forged"})
    assert "does not match" in assert_refused_page(answer, 400)
    assert FLOW in expired(answer)
    # Nor can an error be planted without the state.
    browser = await site.browser()
    _, query = await site.start(browser)
    forged = {"error": "access_denied", "state": "forged"}
    answer = await browser.get("/auth/callback/github", params=forged)
    assert "does not match" in assert_refused_page(answer, 400)
    assert counters(site)["authorization_code"] == 0


async def test_a_replayed_callback_is_refused(make_site: MakeSite, kind: str) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    started, query = await site.start(browser)
    flow = set_cookies(started)[0].value
    url = "/auth/callback/github"
    assert (await browser.get(url, params=query)).status_code == 303
    signed_in = jar(browser)[SESSION]

    # Again, with the flow cookie gone (as a browser has it after the first callback).
    again = await browser.get(url, params=query)
    assert "already used" in assert_refused_page(again, 400)
    # Again, with the old flow cookie put back: the provider refuses the used code.
    browser.cookies.set(FLOW, flow, domain="127.0.0.1")
    again = await browser.get(url, params=query)
    assert "could not complete" in assert_refused_page(again, 502)
    assert FLOW in expired(again) and SESSION not in expired(again)
    assert jar(browser)[SESSION] == signed_in
    # From another browser, with and without that flow cookie.
    stranger = await site.browser()
    assert_refused_page(await stranger.get(url, params=query), 400)
    stranger = await site.browser(cookies={FLOW: flow})
    assert_refused_page(await stranger.get(url, params=query), 400, 502)
    assert SESSION not in jar(stranger)
    assert counters(site)["authorization_code"] == 1


async def test_a_callback_without_a_code_is_refused(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    _, query = await site.start(browser)
    query.pop("code")
    answer = await browser.get("/auth/callback/github", params=query)
    assert "no authorization code" in assert_refused_page(answer, 400)


async def test_a_forged_code_is_refused_by_the_provider(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    _, query = await site.start(browser)
    answer = await browser.get("/auth/callback/github", params={**query, "code": "forged"})
    message = assert_refused_page(answer, 502)
    assert "github could not complete the sign-in" in message and "forged" not in message


async def test_a_denied_sign_in_says_it_was_not_completed(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    started = await browser.get("/auth/signin/github")
    query = site.emu.authorize(started.headers["location"], deny=True)
    assert query["error"] == "access_denied"
    answer = await browser.get("/auth/callback/github", params=query)
    message = assert_refused_page(answer, 400)
    assert "not completed" in message and "access_denied" in message
    assert 'href="/auth/signin/github"' in answer.text  # a way to try again


async def test_a_callback_from_another_issuer_is_refused(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    _, query = await site.start(browser, "google")
    query["iss"] = "https://evil.example"
    answer = await browser.get("/auth/callback/google", params=query)
    assert "could not be verified" in assert_refused_page(answer, 400)


async def test_a_callback_without_iss_is_refused_from_a_provider_that_sends_it(
    make_site: MakeSite, world: World
) -> None:
    # A provider whose metadata says it names itself on every callback (RFC 9207 section
    # 2.4): Google's spec as it would be if its discovery document set the flag.
    declared = world.emu.point(GOOGLE).model_copy(update={"authorization_response_iss": True})
    site = await make_site(providers=[declared])
    browser = await site.browser()
    _, query = await site.start(browser, "google")
    assert query.pop("iss")
    answer = await browser.get("/auth/callback/google", params=query)
    assert "could not be verified" in assert_refused_page(answer, 400)
    assert counters(site)["token_requests"] == 0
    # A provider that does not send it (GitHub) is not asked for it.
    _, query = await site.start(browser, "github")
    assert "iss" not in query
    assert (await browser.get("/auth/callback/github", params=query)).status_code == 303
    assert site.client.provider("google").authorization_response_iss
    assert not site.client.provider("github").authorization_response_iss


async def test_google_names_itself_and_a_wrong_iss_is_refused_but_none_is_not_required(
    make_site: MakeSite,
) -> None:
    """Google's own document does not set authorization_response_iss_parameter_supported,
    so its spec compares iss when it is there and does not require it."""
    site = await make_site()
    browser = await site.browser()
    _, query = await site.start(browser, "google")
    assert query["iss"]
    forged = {**query, "iss": "https://attacker.example"}
    answer = await browser.get("/auth/callback/google", params=forged)
    assert "could not be verified" in assert_refused_page(answer, 400)
    _, query = await site.start(browser, "google")
    query.pop("iss")
    assert (await browser.get("/auth/callback/google", params=query)).status_code == 303
    assert not site.client.provider("google").authorization_response_iss


async def test_a_flow_cookie_of_another_provider_is_refused(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    _, query = await site.start(browser, "github")
    answer = await browser.get("/auth/callback/google", params=query)
    assert "already used" in assert_refused_page(answer, 400)
    assert counters(site)["token_requests"] == 0


async def test_an_expired_flow_cookie_is_refused(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    _, query = await site.start(browser)
    site.clock.advance(16 * 60)
    answer = await browser.get("/auth/callback/github", params=query)
    assert "expired" in assert_refused_page(answer, 400)
    assert FLOW in expired(answer)
    assert counters(site)["token_requests"] == 0


async def test_a_session_cookie_is_no_flow_cookie(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    await site.sign_in(browser)
    _, query = await site.start(browser)
    browser.cookies.set(FLOW, jar(browser)[SESSION], domain="127.0.0.1")
    answer = await browser.get("/auth/callback/github", params=query)
    assert_refused_page(answer, 400)


async def test_a_failing_provider_gives_a_502_page(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    _, query = await site.start(browser)
    site.emu.configure(fault_rate=1.0)
    answer = await browser.get("/auth/callback/github", params=query)
    assert "Please try again" in assert_refused_page(answer, 502)


# == open redirects =========================================================================


EVIL_TARGETS = [
    "https://evil.example/",
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "http://127.0.0.1:9000/home",
    "https://127.0.0.1:8000/home",
    f"{BASE}//evil.example",
    f"{BASE}@evil.example/",
    "http:evil.example",
    "evil.example",
    " //evil.example",
    "/\t/evil.example",
    "/home\r\nSet-Cookie: a=b",
]


@pytest.mark.parametrize("target", EVIL_TARGETS)
async def test_signin_refuses_a_callback_url_elsewhere(make_site: MakeSite, target: str) -> None:
    site = await make_site()
    browser = await site.browser()
    answer = await browser.get("/auth/signin/github", params={"callbackUrl": target})
    assert "callbackUrl" in assert_refused_page(answer, 400)
    assert answer.headers.get("set-cookie") is None and "location" not in answer.headers


@pytest.mark.parametrize("target", EVIL_TARGETS)
async def test_signout_refuses_a_callback_url_elsewhere(make_site: MakeSite, target: str) -> None:
    site = await make_site()
    browser = await site.browser()
    await site.sign_in(browser)
    answer = await sign_out(browser, callbackUrl=target)
    assert_refused_page(answer, 400)
    assert not expired(answer) and counters(site)["revoke"] == 0
    assert (await browser.get("/auth/session")).json() is not None


@pytest.mark.parametrize(
    ("target", "location"),
    [
        (f"{BASE}/dash?x=1#y", "/dash?x=1#y"),
        ("/dash/board?x=%2F%2Fevil.example", "/dash/board?x=%2F%2Fevil.example"),
        ("/café?q=日本", "/caf%C3%A9?q=%E6%97%A5%E6%9C%AC"),
    ],
)
async def test_same_site_callback_urls_are_followed(
    make_site: MakeSite, target: str, location: str
) -> None:
    site = await make_site()
    browser = await site.browser()
    done = await site.sign_in(browser, callback_url=target)
    assert done.headers["location"] == location
    out = await sign_out(browser, callbackUrl=target)
    assert out.status_code == 303 and out.headers["location"] == location


@pytest.mark.parametrize(
    ("origin", "target", "location"),
    [
        (PUBLIC, "https://app.example:443/dash?x=1", "/dash?x=1"),
        (PUBLIC, "https://APP.example:443/dash", "/dash"),
        ("http://app.example", "http://app.example:80/dash", "/dash"),
        ("https://app.example:443", "https://app.example/dash", "/dash"),
    ],
)
async def test_a_callback_url_that_writes_the_default_port_is_the_same_site(
    make_site: MakeSite, origin: str, target: str, location: str
) -> None:
    site = await make_site(url=origin)
    started = await (await site.browser()).get(
        "/auth/signin/github", params={"callbackUrl": target}
    )
    assert started.status_code == 302
    state = Sealer(Keyring(SECRET), FLOW, site.clock).unseal(set_cookies(started)[0].value)
    assert state is not None and state["callbackUrl"] == location


@pytest.mark.parametrize(
    "target",
    [
        "https://app.example:8443/dash",
        "http://app.example:443/dash",
        "https://app.example:80/dash",
        "https://app.example:443@evil.example/",
        "https://user@app.example/",
        "https://app.example:0/",
        "https://app.example:99999/",
        "https://app.example:44x/",
        "https://evil.example:443/",
    ],
)
async def test_other_ports_and_hosts_are_still_another_site(
    make_site: MakeSite, target: str
) -> None:
    site = await make_site(url=PUBLIC)
    answer = await (await site.browser()).get("/auth/signin/github", params={"callbackUrl": target})
    assert "callbackUrl" in assert_refused_page(answer, 400)


# == CSRF on sign-out =======================================================================


CSRF_CASES = [
    "no-token",
    "wrong-token",
    "token-without-cookie",
    "cookie-of-another-secret",
    "token-of-another-browser",
    "evil-origin",
    "null-origin",
    "cross-site",
    "same-site",
    "json-without-token",
]


@pytest.mark.parametrize("case", CSRF_CASES)
async def test_signout_without_a_valid_csrf_token_is_refused(
    make_site: MakeSite, kind: str, case: str
) -> None:
    site = await make_site(kind)
    browser = await site.browser()
    await site.sign_in(browser)
    token = await csrf_token(browser)
    data: dict[str, str] = {"csrfToken": token}
    headers: dict[str, str] = {}
    if case == "no-token":
        data = {}
    elif case == "wrong-token":
        data = {"csrfToken": token[:-2] + "xx"}
    elif case == "token-without-cookie":
        headers = cookie_header({SESSION: jar(browser)[SESSION]})
    elif case == "cookie-of-another-secret":
        other = await make_site(secret=OTHER_SECRET)
        other_browser = await other.browser()
        data = {"csrfToken": await csrf_token(other_browser)}
        headers = cookie_header({**jar(browser), **jar(other_browser)})
    elif case == "token-of-another-browser":
        data = {"csrfToken": await csrf_token(await site.browser())}
    elif case == "evil-origin":
        headers = {"origin": "https://evil.example"}
    elif case == "null-origin":
        headers = {"origin": "null"}
    elif case == "cross-site":
        headers = {"sec-fetch-site": "cross-site"}
    elif case == "same-site":
        headers = {"sec-fetch-site": "same-site"}
    if case == "json-without-token":
        answer = await browser.post(
            "/auth/signout", json={}, headers={"accept": "application/json"}
        )
        assert answer.status_code == 403 and answer.json() == {"error": "csrf_token_invalid"}
    else:
        answer = await browser.post("/auth/signout", data=data, headers=headers)
        assert "not sent by this site" in assert_refused_page(answer, 403)
    assert answer.headers.get("set-cookie") is None
    assert counters(site)["revoke"] == 0
    session = await browser.get("/auth/session")
    assert session.json()["user"]["name"] == "Ada Example"
    # The real sign-out still works afterwards.
    out = await sign_out(browser)
    assert out.status_code == 303 and counters(site)["revoke"] == 1


async def test_signout_with_the_right_origin_headers_is_accepted(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    await site.sign_in(browser)
    token = await csrf_token(browser)
    headers = {"origin": BASE, "sec-fetch-site": "same-origin"}
    answer = await browser.post("/auth/signout", data={"csrfToken": token}, headers=headers)
    assert answer.status_code == 303 and SESSION in expired(answer)


async def test_an_oversized_body_is_refused_with_413(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    await site.sign_in(browser)
    form = {"content-type": "application/x-www-form-urlencoded"}
    answer = await browser.post("/auth/signout", content=b"a" * (MAX_BODY + 1), headers=form)
    assert answer.status_code == 413 and answer.headers.get("set-cookie") is None

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 1024 + 2):
            yield b"b" * 1024

    answer = await browser.post("/auth/signout", content=stream(), headers=form)
    assert answer.status_code == 413
    answer = await browser.post("/auth/signout", content=b"a" * MAX_BODY, headers=form)
    assert answer.status_code == 403  # read whole, then refused for its missing token
    assert (await browser.get("/auth/session")).json() is not None


async def test_malformed_bodies_are_refused_not_crashed(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    await site.sign_in(browser)
    token = await csrf_token(browser)
    for content_type, body in (
        ("application/json", b"{not json"),
        ("application/json", b"[1, 2]"),
        ("application/json", b'{"csrfToken": 1}'),
        ("application/x-www-form-urlencoded", b"\xff\xfe"),
        ("multipart/form-data; boundary=x", b"--x--"),
    ):
        headers = {"content-type": content_type}
        answer = await browser.post("/auth/signout", content=body, headers=headers)
        assert answer.status_code == 403, (content_type, body)
    answer = await browser.post(
        "/auth/signout", json={"csrfToken": token}, headers={"accept": "application/json"}
    )
    assert answer.status_code == 200


# == nothing for scripts, nothing in logs ===================================================


async def test_every_cookie_of_every_route_is_httponly(make_site: MakeSite, kind: str) -> None:
    responses: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        responses.append(response)

    hooks = {"response": [keep]}
    site = await make_site(kind, plugins=[BigClaims()])
    for base_url in (BASE, "https://127.0.0.1:8000"):
        browser = await site.browser(base_url, event_hooks=hooks)
        _, query = await site.start(browser)
        await browser.get("/auth/callback/github", params={**query, "state": "x"})  # a failure
        await site.sign_in(browser)
        await browser.get("/auth/session")
        site.clock.advance(LIFETIME)
        await browser.get("/auth/session")  # refreshed (jwt: cookies rewritten)
        await browser.get("/auth/providers")
        await browser.get("/auth/client.js")
        await browser.get("/auth/session", headers=cookie_header({SESSION: "bad"}))
        await sign_out(browser)
    headers = [c for response in responses for c in set_cookies(response)]
    assert len(headers) >= 12
    for cookie in headers:
        assert "httponly" in cookie.attrs, cookie.header
        assert cookie.attrs["samesite"] == "Lax" and cookie.attrs["path"] == "/"


async def test_no_secret_reaches_the_logs_or_the_pages(
    make_site: MakeSite, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="keyturn")
    caplog.set_level(logging.DEBUG, logger="keyturn.web")
    responses: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        responses.append(response)

    site = await make_site(kind)
    browser = await site.browser(event_hooks={"response": [keep]})
    found: set[str] = set()
    client_secret = site.emu.credentials.client_secret
    assert client_secret is not None
    found.add(client_secret.get_secret_value())

    def remember(query: dict[str, str], flow: str) -> None:
        found.update(v for k, v in query.items() if k in ("code", "state"))
        state = Sealer(Keyring(SECRET), FLOW, site.clock).unseal(flow)
        assert state is not None
        found.add(state["request"]["state"])
        found.add(state["request"]["code_verifier"])

    def remember_tokens() -> None:
        tokens = site.tokens_of(browser)
        found.add(tokens.access_token.get_secret_value())
        assert tokens.refresh_token is not None
        found.add(tokens.refresh_token.get_secret_value())

    # A sign-in, a refresh, a transient failure, a forged state, a replayed callback (the
    # provider then revokes the grant), a failed refresh, and a sign-out whose revocation
    # finds nothing left to revoke.
    started, query = await site.start(browser)
    flow = set_cookies(started)[0].value
    remember(query, flow)
    assert (await browser.get("/auth/callback/github", params=query)).status_code == 303
    remember_tokens()
    if site.store is not None:
        found.add(jar(browser)[SESSION])
    site.clock.advance(LIFETIME)
    assert "error" not in (await browser.get("/auth/session")).json()
    remember_tokens()
    site.emu.configure(fault_rate=1.0)
    site.clock.advance(LIFETIME - 30)
    assert "error" not in (await browser.get("/auth/session")).json()
    site.emu.configure(fault_rate=0.0)
    forged, forged_query = await site.start(browser)
    remember(forged_query, set_cookies(forged)[0].value)
    await browser.get("/auth/callback/github", params={**forged_query, "state": "forged"})
    started, query = await site.start(browser)
    flow = set_cookies(started)[0].value
    remember(query, flow)
    assert (await browser.get("/auth/callback/github", params=query)).status_code == 303
    remember_tokens()
    if site.store is not None:
        found.add(jar(browser)[SESSION])
    browser.cookies.set(FLOW, flow, domain="127.0.0.1")
    assert (await browser.get("/auth/callback/github", params=query)).status_code == 502
    site.emu.revoke_grants("github")
    site.clock.advance(LIFETIME)
    assert (await browser.get("/auth/session")).json()["error"] == "RefreshAccessTokenError"
    token = await csrf_token(browser)
    assert (await browser.post("/auth/signout", data={"csrfToken": token})).status_code == 303

    assert len(found) >= 14 and all(len(value) >= 8 for value in found)
    texts = [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    texts += [caplog.text]
    assert any(record.name.startswith("keyturn") for record in caplog.records)
    pages = [response.text for response in responses]
    pages += [  # the redirect to the provider carries the state, and only that one
        response.headers.get("location", "")
        for response in responses
        if not response.url.path.startswith("/auth/signin/")
    ]
    for value in found:
        for text in texts:
            assert value not in text
        for page in pages:
            assert value not in page
