"""Callbacks a provider POSTs (``response_mode=form_post``, as Sign in with Apple requires).

https://openid.net/specs/oauth-v2-form-post-response-mode-1_0.html: the provider answers with a
page that posts ``code`` and ``state`` to the redirect URI, a cross-site ``POST`` that a
``SameSite=Lax`` cookie does not go with. The sign-in must stay bound to the browser that
started it: the flow cookie of such a provider is ``SameSite=None; Secure``, and the posted
``state`` must match it. The emulator's Google profile stands in for the provider here (a copy
of its spec asks for ``form_post``); the tests post what its redirect carries, as the
provider's page would. ``tests/e2e/test_apple_browser.py`` does it in Chromium.
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from keyturn.callback_user import MAX_USER_FIELD
from keyturn_google import GOOGLE

from ._site import ADA, FLOW, HOST, PUBLIC, SESSION, MakeSite, Site, message_of, set_cookies

FORM = {"content-type": "application/x-www-form-urlencoded"}


async def _site(make_site: MakeSite, kind: str = "memory") -> Site:
    probe = await make_site(kind)
    posting = probe.emu.point(GOOGLE).model_copy(
        update={"authorize_params": {**GOOGLE.authorize_params, "response_mode": "form_post"}}
    )
    return await make_site(kind, providers=[posting])


async def _post(
    browser: httpx.AsyncClient, fields: dict[str, str], origin: str | None = None
) -> httpx.Response:
    headers = dict(FORM)
    if origin is not None:
        headers["origin"] = origin
    return await browser.post("/auth/callback/google", data=fields, headers=headers)


async def test_the_flow_cookie_goes_with_a_cross_site_post(make_site: MakeSite) -> None:
    site = await _site(make_site)
    browser = await site.browser(PUBLIC)
    started, _ = await site.start(browser, "google")
    (flow,) = [c for c in set_cookies(started) if c.name == HOST + FLOW]
    assert flow.attrs["samesite"] == "None"
    assert "secure" in flow.attrs and "httponly" in flow.attrs


async def test_other_providers_keep_a_lax_flow_cookie(make_site: MakeSite) -> None:
    site = await _site(make_site)
    browser = await site.browser(PUBLIC)
    started, _ = await site.start(browser, "github")
    (flow,) = [c for c in set_cookies(started) if c.name == HOST + FLOW]
    assert flow.attrs["samesite"] == "Lax"


async def test_a_posted_callback_signs_in_and_reads_the_user_field(make_site: MakeSite) -> None:
    site = await _site(make_site)
    browser = await site.browser(PUBLIC)
    _, query = await site.start(browser, "google")
    user = {"name": {"firstName": "Grace", "lastName": "Hopper"}, "email": "g@evil.example"}
    done = await _post(browser, {**query, "user": json.dumps(user)}, origin=site.emu.base_url)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/home"
    assert any(c.name == HOST + SESSION for c in set_cookies(done))
    signed_in = site.jwt_of({k.removeprefix(HOST): v for k, v in browser.cookies.items()})
    assert signed_in.user is not None
    assert signed_in.user.email == ADA["email"]  # the provider's, never the form's
    assert signed_in.user.name == ADA["name"]  # userinfo named the user: kept
    assert signed_in.user.raw["user"] == user


async def test_a_get_callback_is_refused_for_a_posting_provider(make_site: MakeSite) -> None:
    site = await _site(make_site)
    browser = await site.browser(PUBLIC)
    _, query = await site.start(browser, "google")
    got = await browser.get("/auth/callback/google", params=query)
    assert got.status_code == 405
    assert got.headers["allow"] == "POST"


async def test_a_post_callback_is_refused_for_other_providers(make_site: MakeSite) -> None:
    site = await _site(make_site)
    browser = await site.browser(PUBLIC)
    _, query = await site.start(browser, "github")
    posted = await browser.post("/auth/callback/github", data=query, headers=FORM)
    assert posted.status_code == 405


async def test_another_browsers_state_fails(make_site: MakeSite) -> None:
    site = await _site(make_site)
    victim = await site.browser(PUBLIC)
    attacker = await site.browser(PUBLIC)
    await site.start(victim, "google")
    _, attackers = await site.start(attacker, "google")
    # The attacker makes the victim's browser post the attacker's own code and state.
    done = await _post(victim, attackers, origin=site.emu.base_url)
    assert done.status_code == 400
    assert "does not match" in message_of(done)
    assert not any(c.name == HOST + SESSION and c.value for c in set_cookies(done))


async def test_a_post_without_the_flow_cookie_fails(make_site: MakeSite) -> None:
    site = await _site(make_site)
    browser = await site.browser(PUBLIC)
    _, query = await site.start(browser, "google")
    browser.cookies.clear()
    done = await _post(browser, query, origin=site.emu.base_url)
    assert done.status_code == 400
    assert "started in another browser" in message_of(done)


async def test_a_post_from_another_site_is_refused(make_site: MakeSite) -> None:
    site = await _site(make_site)
    browser = await site.browser(PUBLIC)
    _, query = await site.start(browser, "google")
    done = await _post(browser, query, origin="https://evil.example")
    assert done.status_code == 403
    assert not any(c.name == HOST + SESSION and c.value for c in set_cookies(done))
    # The sign-in itself stays unspent for the real provider's post.
    again = await _post(browser, query, origin=site.emu.base_url)
    assert again.status_code == 400  # the flow cookie was cleared with the refusal


async def test_a_post_that_is_not_a_form_is_refused(make_site: MakeSite) -> None:
    site = await _site(make_site)
    browser = await site.browser(PUBLIC)
    _, query = await site.start(browser, "google")
    done = await browser.post("/auth/callback/google", json=query)
    assert done.status_code == 403


@pytest.mark.parametrize(
    "field",
    ["{not json", '"a string"', json.dumps({"name": {"firstName": "x" * MAX_USER_FIELD}})],
    ids=["not-json", "not-object", "too-big"],
)
async def test_a_bad_user_field_is_ignored_with_a_log_line(
    make_site: MakeSite, caplog: pytest.LogCaptureFixture, field: str
) -> None:
    site = await _site(make_site)
    browser = await site.browser(PUBLIC)
    _, query = await site.start(browser, "google")
    with caplog.at_level(logging.WARNING, "keyturn.callback_user"):
        done = await _post(browser, {**query, "user": field}, origin=site.emu.base_url)
    assert done.status_code == 303, done.text
    signed_in = site.jwt_of({k.removeprefix(HOST): v for k, v in browser.cookies.items()})
    assert signed_in.user is not None and "user" not in signed_in.user.raw
    logged = [r.getMessage() for r in caplog.records if r.name == "keyturn.callback_user"]
    assert logged and all(field not in line for line in logged)
