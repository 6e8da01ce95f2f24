"""keyturn.web.keys: the app's secret, the keys derived from it per purpose, and their
rotation."""

from __future__ import annotations

import pytest

from keyturn import ConfigurationError
from keyturn.starlette import KeyturnAuth
from keyturn.web import Keyring
from keyturn.web.sealing import Sealer
from tests.conftest import FakeClock

from ._site import (
    ADA,
    CSRF,
    FLOW,
    LIFETIME,
    OLD_SECRET,
    OTHER_SECRET,
    SECRET,
    SESSION,
    MakeSite,
    World,
    csrf_token,
    jar,
    make_client,
    written,
)


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
