"""The emulator's ``gitlab`` profile, with keyturn-gitlab against it, and its demo tour.

GitLab's documented behaviour (https://docs.gitlab.com/api/oauth2/): ``created_at`` beside
``expires_in``, rotation that kills the old refresh and access tokens, Doorkeeper's 400
``invalid_grant``; and the ``omit_expires_in`` knob for the GitLab versions that left
``expires_in`` out (https://gitlab.com/gitlab-org/gitlab/-/issues/360729).
"""

from __future__ import annotations

import json

import pytest

import keyturn
from keyturn import cli
from keyturn_emulator import DEFAULT_CLIENT_SECRET, Emulator
from keyturn_gitlab import DEFAULT_LIFETIME
from tests.conftest import FakeClock

from .test_demo import TOKEN_SHAPE, check_tour, one
from .test_emulator import (
    client,
    installed,
    raw_refresh,
    raw_tokens,
    secret,
    sign_in,
    userinfo_status,
)


def test_gitlab_answers_with_created_at_and_rotates_killing_both_old_tokens() -> None:
    clock = FakeClock()
    with Emulator(access_token_lifetime=7200, clock=clock) as emu:
        data = raw_tokens(emu, "gitlab", scope="openid profile email")
        assert data["created_at"] == int(clock.now)
        assert (data["expires_in"], data["token_type"]) == (7200, "bearer")
        assert "id_token" in data
        clock.advance(100)
        rotated = raw_refresh(emu, "gitlab", data["refresh_token"])
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()
        assert new["created_at"] == int(clock.now)
        assert new["refresh_token"] != data["refresh_token"]
        # "Invalidates the existing access_token and refresh_token" (the API page).
        assert userinfo_status(emu, "gitlab", data["access_token"]) == 401
        assert userinfo_status(emu, "gitlab", new["access_token"]) == 200
        again = raw_refresh(emu, "gitlab", data["refresh_token"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_the_plugin_signs_in_and_refreshes_against_the_profile() -> None:
    with Emulator(access_token_lifetime=7200) as emu:
        template = installed("gitlab")
        spec = emu.point(template)
        assert spec.token_endpoint == emu.base_url + "/gitlab/oauth/token"
        with client(emu, spec) as kt:
            token = sign_in(kt, emu, "gitlab")
            assert token.user is not None and token.user.email == "ada@example.com"
            old = token.tokens
            new = kt.refresh(old)
            assert secret(new.refresh_token) != secret(old.refresh_token)
        with client(emu, spec) as replay, pytest.raises(keyturn.OAuthError) as failure:
            replay.refresh(old)
    assert (failure.value.status, failure.value.error) == (400, "invalid_grant")
    assert failure.value.permanent is True


def test_without_expires_in_the_plugin_counts_two_hours_from_created_at() -> None:
    clock = FakeClock()
    with Emulator(access_token_lifetime=7200, clock=clock) as emu:
        emu.configure(omit_expires_in=True)
        raw = raw_tokens(emu, "gitlab", scope="openid profile email")
        assert "expires_in" not in raw and raw["created_at"] == int(clock.now)
        spec = emu.point(installed("gitlab"))
        with client(emu, spec, clock=clock) as kt:
            token = sign_in(kt, emu, "gitlab")
            assert token.tokens.expires_at == int(clock.now) + DEFAULT_LIFETIME
            clock.advance(DEFAULT_LIFETIME - 30)  # due within keyturn's leeway
            refreshed = kt.jwt(token)
        assert refreshed.error is None
        assert refreshed.tokens.access_token != token.tokens.access_token
        assert refreshed.tokens.expires_at == int(clock.now) + DEFAULT_LIFETIME


def test_the_omit_expires_in_knob_is_checked() -> None:
    with Emulator() as emu:
        with pytest.raises(ValueError, match="omit_expires_in"):
            emu.configure(omit_expires_in="yes")
        assert emu.configure(omit_expires_in=True).omit_expires_in is True
        # Other profiles follow the knob too (it is a knob of the server, not of GitLab).
        raw = raw_tokens(emu, "strict", scope="openid email")
        assert "expires_in" not in raw and "created_at" not in raw


@pytest.mark.slow
def test_the_demo_tours_gitlab(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["demo", "--fast", "--json", "--provider", "gitlab"])
    out, err = capsys.readouterr()
    assert status == 0, err
    document = json.loads(out)
    assert document["ok"] is True and list(document["summary"]) == ["gitlab"]
    check_tour(document, "gitlab", rotates=True)
    summary = document["summary"]["gitlab"]
    assert summary["origin"].startswith("keyturn-gitlab ")
    # The old refresh token was really sent (GitLab has no reuse detection), and refused.
    check = one(document, "gitlab", "rotation_check")
    assert (check["facts"]["error"], check["facts"]["sent"]) == ("invalid_grant", True)
    assert DEFAULT_CLIENT_SECRET not in out and DEFAULT_CLIENT_SECRET not in err
    assert TOKEN_SHAPE.search(out) is None
