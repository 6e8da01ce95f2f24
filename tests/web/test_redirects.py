"""keyturn.web.redirects: a callbackUrl is followed only to the app's own origin.

The routes refusing other targets are in ``test_attacks.py``."""

from __future__ import annotations

from keyturn.web.redirects import same_origin_target

from ._site import BASE


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
