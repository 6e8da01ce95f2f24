"""keyturn.web.redirects: a callbackUrl is followed only to the app's own origin (the default
port written out or not), and kept short enough for the flow cookie to stay under the 4 KB a
browser keeps.

The routes refusing other targets are in ``test_attacks.py``."""

from __future__ import annotations

import pytest

from keyturn.web.redirects import MAX_CALLBACK_URL, same_origin, same_origin_target

from ._site import BASE, MakeSite, message_of, set_cookies, sign_out

#: What a browser keeps of one cookie: name, value and attributes.
BROWSER_LIMIT = 4096


def test_same_origin_targets() -> None:
    origin = BASE
    assert same_origin_target(None, origin) == "/"
    assert same_origin_target("", origin) == "/"
    assert same_origin_target("/a?b=1#c", origin) == "/a?b=1#c"
    assert same_origin_target(f"{BASE}/a?b=1", origin) == "/a?b=1"
    assert same_origin_target(BASE, origin) == "/"
    assert same_origin_target("/café?q=日本", origin) == "/caf%C3%A9?q=%E6%97%A5%E6%9C%AC"
    assert same_origin_target("/a b", origin) == "/a%20b"
    assert same_origin_target('/a?q="x"', origin) == "/a?q=%22x%22"  # no JSON escape needed
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


def test_a_long_target_keeps_its_path_within_the_limit() -> None:
    origin = BASE
    assert MAX_CALLBACK_URL == 1024
    at_limit = "/a?" + "q" * (MAX_CALLBACK_URL - 3)
    assert same_origin_target(at_limit, origin) == at_limit
    assert same_origin_target(at_limit + "#x", origin) == at_limit  # the fragment goes first
    assert same_origin_target(at_limit + "q", origin) == "/a"  # then the query
    assert same_origin_target("/a?q=1#" + "f" * 2000, origin) == "/a?q=1"
    assert same_origin_target("/" + "p" * 2000 + "?q=1", origin) == "/"  # then the path
    # The limit counts the percent-encoded text, which is what the cookie carries.
    assert same_origin_target("/a?q=" + "é" * 200, origin, max_length=500) == "/a"
    assert same_origin_target("/a?q=" + "é" * 80, origin, max_length=500) is not None
    assert same_origin_target(f"{BASE}/b?" + "q" * 3000, origin) == "/b"
    assert same_origin_target("/x", origin, max_length=1) == "/"


def test_the_default_port_is_the_same_origin() -> None:
    assert same_origin_target("https://app.example:443/x?y=1", "https://app.example") == "/x?y=1"
    assert same_origin_target("https://app.example/x", "https://app.example:443") == "/x"
    assert same_origin_target("http://app.example:80/x", "http://app.example") == "/x"
    assert same_origin_target("HTTPS://App.Example/x", "https://app.example") == "/x"
    assert same_origin_target("http://[::1]:80/x", "http://[::1]") == "/x"
    for value, origin in (
        ("https://app.example:8443/x", "https://app.example"),
        ("https://app.example:80/x", "https://app.example"),
        ("http://app.example:443/x", "https://app.example"),
        ("http://app.example/x", "https://app.example"),
        ("https://app.example:443@evil.example/x", "https://app.example"),
        ("https://app.example@app.example/x", "https://app.example"),
        ("https://app.example:0/x", "https://app.example"),
        ("https://app.example:65536/x", "https://app.example"),
        ("https://app.example:-1/x", "https://app.example"),
        ("https://app.example: 443/x", "https://app.example"),
        ("https://app.example:443/x", "https://app.example:8443"),
        ("https://:443/x", "https://app.example"),
    ):
        assert same_origin_target(value, origin) is None, value


def test_same_origin() -> None:
    assert same_origin("https://app.example:443", "https://APP.example")
    assert same_origin("http://127.0.0.1:8000", "http://127.0.0.1:8000")
    assert not same_origin("http://127.0.0.1:8000", "http://127.0.0.1")
    assert not same_origin("null", "null")
    assert not same_origin("https://app.example/path", "https://app.example")
    assert not same_origin("https://u@app.example", "https://app.example")
    assert not same_origin("", "")


# == the flow cookie ===========================================================================


@pytest.mark.parametrize("base_url", [BASE, "https://127.0.0.1:8000"])
@pytest.mark.parametrize(
    ("callback_url", "location"),
    [
        ("/search?q=" + "x" * 2500, "/search"),  # a long query: the path is kept
        ("/" + "p" * 2500 + "?q=1", "/"),  # a path too long to keep
        ("{base}/report?q=" + "%E6%97%A5" * 900 + "#top", "/report"),
        ("/a?q=" + "x" * (MAX_CALLBACK_URL - 5), "/a?q=" + "x" * (MAX_CALLBACK_URL - 5)),
        ("/a?q=" + '"' * 300, "/a?q=" + "%22" * 300),
    ],
    ids=["long-query", "long-path", "absolute-non-ascii", "at-the-limit", "quotes"],
)
async def test_a_long_callback_url_keeps_the_flow_cookie_under_4_kb(
    make_site: MakeSite, base_url: str, callback_url: str, location: str
) -> None:
    site = await make_site()
    browser = await site.browser(base_url)
    callback_url = callback_url.format(base=base_url)
    started, query = await site.start(browser, "google", callback_url)
    [flow] = set_cookies(started)
    assert len(flow.header) < BROWSER_LIMIT
    assert len(flow.header) < 2200  # what docs/web.md promises, with the longest target
    assert len(flow.header.encode()) == len(flow.header)
    done = await browser.get("/auth/callback/google", params=query)
    assert done.status_code == 303 and done.headers["location"] == location
    assert len(location) <= MAX_CALLBACK_URL


async def test_a_long_sign_out_callback_url_is_bounded_too(make_site: MakeSite) -> None:
    site = await make_site()
    browser = await site.browser()
    await site.sign_in(browser)
    out = await sign_out(browser, callbackUrl="/bye?q=" + "x" * 5000)
    assert out.status_code == 303 and out.headers["location"] == "/bye"


async def test_a_flow_cookie_that_would_pass_4_kb_is_refused_not_dropped(
    make_site: MakeSite, caplog: pytest.LogCaptureFixture
) -> None:
    # Only an app's own settings can do this (scopes by the hundred): it is told so.
    site = await make_site(scopes={"github": [f"scope-{i}" for i in range(400)]})
    answer = await (await site.browser()).get("/auth/signin/github")
    assert answer.status_code == 500 and "location" not in answer.headers
    assert "not configured" in message_of(answer) and not set_cookies(answer)
    assert any("flow cookie would take" in r.getMessage() for r in caplog.records)
