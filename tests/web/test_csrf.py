"""keyturn.web.csrf: what the signed double submit accepts on sign-out: the token in a
header from a script, and the public origin of an app behind a proxy.

What it refuses is in ``test_attacks.py``."""

from __future__ import annotations

import pytest

from ._site import BASE, CSRF, HOST, PUBLIC, SESSION, MakeSite, csrf_token, expired, written


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


@pytest.mark.parametrize("url", [PUBLIC, PUBLIC + ":443"])
async def test_signout_behind_a_proxy_accepts_the_public_origin(
    make_site: MakeSite, url: str
) -> None:
    # The browser's Origin never writes the default port; the app's url may.
    site = await make_site(url=url)
    browser = await site.browser()  # the app sees http://127.0.0.1:8000, the browser PUBLIC
    answer = await browser.get("/auth/csrf")
    cookie = written(answer, CSRF)[HOST + CSRF]
    out = await browser.post(
        "/auth/signout",
        data={"csrfToken": answer.json()["csrfToken"], "callbackUrl": f"{PUBLIC}/bye"},
        headers={"origin": PUBLIC, "cookie": f"{HOST}{CSRF}={cookie}"},
    )
    assert out.status_code == 303 and out.headers["location"] == "/bye"
