"""``keyturn demo``: the README's first command, run the way users run it, checking itself."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from keyturn import cli
from keyturn_emulator import DEFAULT_CLIENT_SECRET, PROFILES, Emulator
from keyturn_emulator import state as emulator_state
from keyturn_emulator.demo import DemoFailure, DemoSettings, Event, Observer, fingerprint, run_demo
from keyturn_emulator.demo import scenario as scenario_module
from keyturn_emulator.demo.display import Display
from tests.conftest import ROOT

#: Anything that looks like a token the emulator issues: a profile prefix and a long tail.
TOKEN_SHAPE = re.compile(
    "(?:"
    + "|".join(
        re.escape(prefix)
        for behaviour in PROFILES.values()
        for prefix in (behaviour.access_prefix, behaviour.refresh_prefix)
    )
    + r")[A-Za-z0-9_\-]{20,}"
)
ANSI = re.compile(r"\x1b\[")


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token and authorization code the emulator hands out during the test."""
    values: list[str] = []
    original_token = emulator_state.new_token
    original_code = emulator_state.Store.issue_code

    def new_token(prefix: str) -> str:
        value = original_token(prefix)
        values.append(value)
        return value

    def issue_code(self: emulator_state.Store, *args: Any, **kwargs: Any) -> str:
        value = original_code(self, *args, **kwargs)
        values.append(value)
        return value

    monkeypatch.setattr(emulator_state, "new_token", new_token)
    monkeypatch.setattr(emulator_state.Store, "issue_code", issue_code)
    return values


@pytest.fixture
def plain_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    """No environment variable may force rich into terminal mode."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


def events(document: dict[str, Any], provider: str, step: str) -> list[dict[str, Any]]:
    return [e for e in document["events"] if e["provider"] == provider and e["step"] == step]


def one(document: dict[str, Any], provider: str, step: str) -> dict[str, Any]:
    found = events(document, provider, step)
    assert len(found) == 1, (provider, step, found)
    return found[0]


def check_tour(document: dict[str, Any], provider: str, *, rotates: bool) -> None:
    """What every provider's tour must have shown, read from the JSON document.

    A provider whose profile keeps used refresh tokens (``keep_old``: Microsoft, Keycloak by
    default) must show the old one still accepted.
    """
    summary = document["summary"][provider]
    sign_in = one(document, provider, "sign_in")
    assert sign_in["facts"]["user"]["email"] == "ada@example.com"
    assert sign_in["requests"]["token"] == 1
    assert re.fullmatch(r"[0-9a-f]{8}", sign_in["facts"]["access_token"])
    assert summary["sign_in"] is True

    refresh = one(document, provider, "refresh")
    assert refresh["facts"]["access_before"] == sign_in["facts"]["access_token"]
    assert refresh["facts"]["access_after"] != refresh["facts"]["access_before"]
    assert refresh["facts"]["refresh_before"] == sign_in["facts"]["refresh_token"]
    if rotates:
        assert refresh["facts"]["refresh_after"] != refresh["facts"]["refresh_before"]
        # keep_old (Microsoft; Keycloak by default): the used refresh token stays valid.
        old_refused = PROFILES[provider].rotation != "keep_old"
        assert one(document, provider, "rotation_check")["facts"]["refused"] is old_refused
    else:
        assert refresh["facts"]["refresh_after"] == refresh["facts"]["refresh_before"]
        assert events(document, provider, "rotation_check") == []
    assert summary["rotation"] is rotates

    concurrent = one(document, provider, "concurrent")["facts"]
    assert concurrent["callers"] == 200
    assert concurrent["overlapped"] > 1
    assert concurrent["refresh_requests"] == 1
    assert concurrent["distinct_access_tokens"] == 1
    assert concurrent["access_after"] != concurrent["access_before"]
    assert (summary["concurrent_callers"], summary["concurrent_refresh_requests"]) == (
        concurrent["overlapped"],
        1,
    )

    refused = one(document, provider, "refresh_refused")
    assert refused["facts"]["error"] == "RefreshAccessTokenError"
    assert refused["facts"]["permanent"] is True
    assert refused["facts"]["old_tokens_kept"] is True
    assert refused["requests"] == {"token": 1}
    assert one(document, provider, "no_retry")["requests"] == {}
    assert summary["error"] == "RefreshAccessTokenError"

    again = one(document, provider, "sign_in_again")
    assert again["facts"]["error"] is None
    assert again["facts"]["access_token"] not in (
        sign_in["facts"]["access_token"],
        concurrent["access_after"],
    )
    assert summary["re_sign_in"] is True
    # Two successful refreshes: step 2 and the one shared by every concurrent caller.
    assert summary["refreshes"] == 2


@pytest.mark.slow
def test_json_in_process_for_every_provider_shows_no_token(
    issued: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["demo", "--fast", "--json", "--provider", "all"])
    out, err = capsys.readouterr()
    assert status == 0, err
    document = json.loads(out)
    assert document["ok"] is True and document["error"] is None
    every = [
        "google",
        "github",
        "strict",
        "oidc",
        "gitlab",
        "microsoft",
        "slack",
        "okta",
        "auth0",
        "keycloak",
        "discord",
        "apple",
    ]
    assert document["settings"]["providers"] == every
    assert list(document["summary"]) == every
    for provider in every:
        check_tour(document, provider, rotates=provider not in {"google", "apple"})
    # GitHub's old refresh token was really sent, and refused; strict's was not resent.
    github_check = one(document, "github", "rotation_check")
    assert (github_check["facts"]["error"], github_check["facts"]["sent"]) == (
        "bad_refresh_token",
        True,
    )
    assert one(document, "strict", "rotation_check")["facts"]["sent"] is False
    # The capture saw the demo's tokens (their fingerprints are in the output) ...
    shown = {fingerprint(value) for value in issued}
    assert one(document, "google", "sign_in")["facts"]["access_token"] in shown
    assert len(issued) > 20
    # ... and not one of them, nor the client secret, appears in the output.
    for value in [*issued, DEFAULT_CLIENT_SECRET]:
        assert value not in out and value not in err
    assert TOKEN_SHAPE.search(out) is None
    assert ANSI.search(out) is None


@pytest.mark.slow
def test_json_as_a_subprocess_with_the_default_providers() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "keyturn", "demo", "--fast", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert list(document["summary"]) == ["google", "github"]
    check_tour(document, "google", rotates=False)
    check_tour(document, "github", rotates=True)
    assert TOKEN_SHAPE.search(result.stdout) is None
    assert DEFAULT_CLIENT_SECRET not in result.stdout


@pytest.mark.slow
def test_plain_display_when_stdout_is_not_a_terminal(
    plain_stdout: None, issued: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["demo", "--fast", "--provider", "google"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert ANSI.search(out) is None
    assert "\r" not in out  # no progress bar redrawing itself
    lines = out.splitlines()
    timeline = [line for line in lines if re.match(r"^\s*\d+\.\d\ds  \S", line)]
    steps = [line.split()[1] for line in timeline]
    assert steps == [
        "authorize",
        "sign-in",
        "refresh",
        "concurrent",
        "revoke",
        "refresh",
        "jwt()",
        "authorize",
        "sign-in",
    ]
    # One line per step, never wrapped: each ends with the requests it cost.
    assert all(re.search(r"\[(no request|[a-z]+ \d+(, [a-z]+ \d+)*)\]$", line) for line in timeline)
    refresh = next(line for line in timeline if "jwt() refreshed it" in line)
    assert "kept (Google does not rotate)" in refresh and refresh.endswith("[token 1]")
    assert any("RefreshAccessTokenError" in line for line in timeline)
    assert any("waiting" in line and "for the access token to expire" in line for line in lines)
    assert any(line.startswith("  google: sign-in ok;") for line in lines)
    assert lines[-1].startswith("every check passed in ")
    for value in issued:
        assert value not in out


def test_oidc_tours_a_provider_declared_by_its_issuer_with_verified_id_tokens(
    issued: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["demo", "--fast", "--json", "--provider", "oidc"])
    out, err = capsys.readouterr()
    assert status == 0, err
    document = json.loads(out)
    assert document["ok"] is True and list(document["summary"]) == ["oidc"]
    check_tour(document, "oidc", rotates=True)
    summary = document["summary"]["oidc"]
    assert summary["origin"].startswith("keyturn-oidc ")
    assert summary["signing_key_rotated"] is True
    # Sign-in: the discovery document is read for the authorize URL, the key set for the ID
    # token, which is verified with the active key.
    authorize = events(document, "oidc", "authorize")
    assert [event["requests"].get("discovery") for event in authorize] == [1, None]
    sign_in = one(document, "oidc", "sign_in")
    assert sign_in["requests"]["jwks"] == 1 and "discovery" not in sign_in["requests"]
    assert sign_in["facts"]["id_token"] is True
    # The provider rotates its key; the refreshed ID token names the new one, which the
    # client verifies after one more read of the key set (and no second read of the document).
    keys = one(document, "oidc", "keys")
    assert keys["requests"] == {}
    assert keys["facts"]["kid_before"] == sign_in["facts"]["id_token_kid"]
    assert keys["facts"]["kid_after"] != keys["facts"]["kid_before"]
    refresh = one(document, "oidc", "refresh")
    assert refresh["facts"]["id_token_kid"] == keys["facts"]["kid_after"]
    assert refresh["requests"] == {"token": 1, "jwks": 1}
    assert "verified with the new key" in refresh["text"]
    again = one(document, "oidc", "sign_in_again")
    assert again["facts"]["id_token_kid"] == keys["facts"]["kid_after"]
    assert "jwks" not in again["requests"]
    # The old refresh token was really sent (no reuse detection at oidc), and refused.
    check = one(document, "oidc", "rotation_check")
    assert (check["facts"]["error"], check["facts"]["sent"]) == ("invalid_grant", True)
    for value in [*issued, DEFAULT_CLIENT_SECRET]:
        assert value not in out and value not in err
    assert TOKEN_SHAPE.search(out) is None


def test_microsoft_tours_keyturn_microsoft_and_keeps_the_used_refresh_token_valid(
    issued: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["demo", "--fast", "--json", "--provider", "microsoft"])
    out, err = capsys.readouterr()
    assert status == 0, err
    document = json.loads(out)
    assert document["ok"] is True and list(document["summary"]) == ["microsoft"]
    check_tour(document, "microsoft", rotates=True)
    summary = document["summary"]["microsoft"]
    assert summary["origin"].startswith("keyturn-microsoft ")
    # The tenant is in the authorize URL's path, as at login.microsoftonline.com.
    authorize = events(document, "microsoft", "authorize")[0]
    assert "/microsoft/common/oauth2/v2.0/authorize?" in authorize["text"]
    assert "offline_access" in authorize["text"]
    assert one(document, "microsoft", "sign_in")["facts"]["id_token"] is True
    # A new refresh token each time; the used one is not sent again, and still works.
    check = one(document, "microsoft", "rotation_check")
    assert (check["facts"]["refused"], check["facts"]["sent"]) == (False, False)
    assert "still works" in check["text"]
    refused = one(document, "microsoft", "refresh_refused")
    assert (refused["facts"]["refresh_error"], refused["facts"]["status"]) == ("invalid_grant", 400)


def test_slack_tours_keyturn_slack_against_its_profile(
    issued: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["demo", "--fast", "--json", "--provider", "slack"])
    out, err = capsys.readouterr()
    assert status == 0, err
    document = json.loads(out)
    assert document["ok"] is True and list(document["summary"]) == ["slack"]
    check_tour(document, "slack", rotates=True)
    assert document["summary"]["slack"]["origin"].startswith("keyturn-slack ")
    assert one(document, "slack", "sign_in")["facts"]["id_token"] is True
    # Slack refuses a spent refresh token, and a revoked grant's, with HTTP 200 and
    # ok:false: keyturn-slack reads them as permanent errors, never as tokens.
    check = one(document, "slack", "rotation_check")
    assert (check["facts"]["error"], check["facts"]["sent"]) == ("invalid_refresh_token", True)
    refused = one(document, "slack", "refresh_refused")["facts"]
    assert (refused["refresh_error"], refused["status"]) == ("invalid_refresh_token", 200)


@pytest.mark.parametrize(("provider", "grace", "status"), [("okta", 30, 400), ("auth0", 10, 403)])
def test_okta_and_auth0_tour_their_plugins_against_their_profiles(
    issued: list[str], capsys: pytest.CaptureFixture[str], provider: str, grace: int, status: int
) -> None:
    status_code = cli.main(["demo", "--fast", "--json", "--callers", "20", "--provider", provider])
    out, err = capsys.readouterr()
    assert status_code == 0, err
    document = json.loads(out)
    assert document["ok"] is True and list(document["summary"]) == [provider]
    summary = document["summary"][provider]
    assert summary["origin"].startswith(f"keyturn-{provider} ")
    assert summary["rotation"] is True
    assert summary["error"] == "RefreshAccessTokenError"
    assert one(document, provider, "sign_in")["facts"]["id_token"] is True
    # Reuse detection with a grace period: the old refresh token is never sent again.
    check = one(document, provider, "rotation_check")
    assert (check["facts"]["refused"], check["facts"]["sent"]) == (True, False)
    assert f"accepted again for {grace} s only" in check["text"]
    # The revoked grant's refresh is refused with the provider's own status.
    assert (
        f"invalid_grant (HTTP {status}, permanent)"
        in one(document, provider, "refresh_refused")["text"]
    )


def test_keycloak_tours_its_plugin_with_the_old_refresh_token_kept(
    issued: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["demo", "--fast", "--json", "--provider", "keycloak"])
    out, err = capsys.readouterr()
    assert status == 0, err
    document = json.loads(out)
    assert document["ok"] is True and list(document["summary"]) == ["keycloak"]
    check_tour(document, "keycloak", rotates=True)
    assert document["summary"]["keycloak"]["origin"].startswith("keyturn-keycloak ")
    sign_in = one(document, "keycloak", "sign_in")
    assert sign_in["facts"]["id_token"] is True
    # A new refresh token on refresh, and the old one still good at Keycloak: not resent.
    check = one(document, "keycloak", "rotation_check")
    assert (check["facts"]["refused"], check["facts"]["sent"]) == (False, False)
    assert check["requests"] == {}
    for value in [*issued, DEFAULT_CLIENT_SECRET]:
        assert value not in out and value not in err
    assert TOKEN_SHAPE.search(out) is None


def test_discord_tours_its_plugin_with_rotating_refresh_tokens(
    issued: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["demo", "--fast", "--json", "--provider", "discord"])
    out, err = capsys.readouterr()
    assert status == 0, err
    document = json.loads(out)
    assert document["ok"] is True and list(document["summary"]) == ["discord"]
    check_tour(document, "discord", rotates=True)
    assert document["summary"]["discord"]["origin"].startswith("keyturn-discord ")
    assert one(document, "discord", "sign_in")["facts"]["id_token"] is False
    check = one(document, "discord", "rotation_check")
    assert (check["facts"]["error"], check["facts"]["sent"]) == ("invalid_grant", True)


def test_apple_tours_a_form_post_sign_in_with_a_minted_client_secret(
    issued: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["demo", "--fast", "--json", "--provider", "apple"])
    out, err = capsys.readouterr()
    assert status == 0, err
    document = json.loads(out)
    assert document["ok"] is True and list(document["summary"]) == ["apple"]
    check_tour(document, "apple", rotates=False)
    authorize = events(document, "apple", "authorize")
    assert authorize[0]["facts"]["params"]["response_mode"] == "form_post"
    sign_in = one(document, "apple", "sign_in")
    # The name came from the form's user field, on the first authorization only.
    assert sign_in["facts"]["user"]["name"] == "Ada Example"
    assert one(document, "apple", "sign_in_again")["facts"]["user"]["name"] is None
    assert sign_in["facts"]["id_token"] is True and "userinfo" not in sign_in["requests"]
    for value in [*issued, DEFAULT_CLIENT_SECRET]:
        assert value not in out and value not in err
    assert TOKEN_SHAPE.search(out) is None


class EmptyKeySetAfterRotation(Observer):
    """Serves an empty key set once the provider has rotated its keys."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def event(self, event: Event) -> None:
        if event.step == "keys":
            self.emu.configure(jwks_fault="empty")


def test_oidc_fails_when_the_new_key_cannot_be_read() -> None:
    # The refreshed ID token names a key the client cannot find: the refresh is refused, so
    # the demo stops there, which shows the ID token is really verified.
    with Emulator() as emu:
        settings = DemoSettings.choose(["oidc"], fast=True)
        with pytest.raises(DemoFailure) as failure:
            run_demo(settings, EmptyKeySetAfterRotation(emu), emulator=emu)
    message = str(failure.value)
    assert message.startswith("oidc, refresh: the refresh failed:")
    assert "\n" not in message
    report = failure.value.report
    assert report is not None
    assert [event.step for event in report.events] == ["authorize", "sign_in", "keys"]


def test_oidc_without_keyturn_oidc_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "keyturn_oidc", None)  # import keyturn_oidc fails
    status = cli.main(["demo", "--fast", "--provider", "oidc"])
    err = capsys.readouterr().err
    assert status == 1
    assert err == "keyturn: error: oidc: keyturn-oidc is not installed (pip install keyturn-oidc)\n"


def test_a_failing_refresh_exits_1_with_one_line(
    plain_stdout: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refresh tokens that expire at once (an emulator knob) break step 2."""

    def short_lived(**knobs: Any) -> Emulator:
        return Emulator(refresh_token_lifetime=0, **knobs)

    monkeypatch.setattr(scenario_module, "Emulator", short_lived)
    status = cli.main(["demo", "--fast"])
    out, err = capsys.readouterr()
    assert status == 1
    assert err.count("\n") == 1
    assert err.startswith("keyturn: error: google, refresh: the refresh failed:")
    assert "refresh_token_expired" in err
    assert "signed in" in out  # the steps before the broken one were shown
    assert "every check passed" not in out


class BreakRefreshAfterSignIn(Observer):
    """Turns every token request into a 503 once the sign-in is done."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.seen: list[Event] = []

    def event(self, event: Event) -> None:
        self.seen.append(event)
        if event.step == "sign_in":
            self.emu.configure(fault_rate=1.0)


def test_a_transient_refresh_failure_is_reported_not_hidden() -> None:
    with Emulator() as emu:
        observer = BreakRefreshAfterSignIn(emu)
        settings = DemoSettings.choose(["github"], fast=True)
        with pytest.raises(DemoFailure) as failure:
            run_demo(settings, observer, emulator=emu)
        assert emu.running  # an emulator the caller owns is left to the caller
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("github, refresh: the refresh failed:")
    assert "HTTP 503" in message
    report = failure.value.report
    assert report is not None and report.ok is False and report.error == message
    assert [event.step for event in report.events] == ["authorize", "sign_in"]
    assert [event.step for event in observer.seen] == ["authorize", "sign_in"]
    assert report.summaries == []


def test_failure_with_json_still_prints_the_partial_document(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def short_lived(**knobs: Any) -> Emulator:
        return Emulator(refresh_token_lifetime=0, **knobs)

    monkeypatch.setattr(scenario_module, "Emulator", short_lived)
    status = cli.main(["demo", "--fast", "--json", "--provider", "strict"])
    out, err = capsys.readouterr()
    assert status == 1
    document = json.loads(out)
    assert document["ok"] is False
    assert document["error"].startswith("strict, refresh:")
    assert err == f"keyturn: error: {document['error']}\n"
    assert [e["step"] for e in document["events"]] == ["authorize", "sign_in"]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Emulator]]:
    """The emulators the demo starts, to check they are stopped afterwards."""
    made: list[Emulator] = []

    def tracked(**knobs: Any) -> Emulator:
        emu = Emulator(**knobs)
        made.append(emu)
        return emu

    monkeypatch.setattr(scenario_module, "Emulator", tracked)
    yield made
    for emu in made:
        emu.stop()


def test_ctrl_c_stops_the_emulator_and_exits_130(
    plain_stdout: None,
    started: list[Emulator],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def interrupted(self: Display, seconds: float, reason: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Display, "wait", interrupted)
    status = cli.main(["demo", "--fast"])
    out, err = capsys.readouterr()
    assert status == 130
    assert err == "keyturn: demo interrupted; the emulator is stopped\n"
    assert "signed in" in out
    assert len(started) == 1 and not started[0].running


@pytest.mark.slow
def test_sigint_to_the_command_exits_130() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # As from a terminal: a shell that starts a job in the background (CI may) makes it
    # ignore SIGINT, and Python then leaves Ctrl-C ignored; give the command the handler a
    # terminal session would have.
    command = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv = ['keyturn', 'demo']; runpy.run_module('keyturn', run_name='__main__')"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", command],  # `keyturn demo` at normal speed: waits of seconds
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    # Should the command hang without output, the read below still ends: kill it then.
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "waiting" in line:  # signed in, now waiting for the token to expire
                break
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "demo interrupted" in err
    assert "Traceback" not in err


def test_demo_is_listed_first_and_providers_are_chosen_in_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    listed = re.findall(r"^    ([a-z-]+)", cli.build_parser().format_help(), re.MULTILINE)
    assert listed[0] == "demo"
    assert "providers" in listed
    from keyturn_emulator.commands.demo import chosen_providers

    assert chosen_providers(None) == ("google", "github")
    assert chosen_providers(["github", "all", "google"]) == (
        "github",
        "google",
        "strict",
        "oidc",
        "gitlab",
        "microsoft",
        "slack",
        "okta",
        "auth0",
        "keycloak",
        "discord",
        "apple",
    )
    assert chosen_providers(["oidc"]) == ("oidc",)
    assert chosen_providers(["slack"]) == ("slack",)
    with pytest.raises(SystemExit) as usage:
        cli.main(["demo", "--callers", "1"])
    assert usage.value.code == 2
    assert "--callers: must be a whole number from 2 to 10000" in capsys.readouterr().err


def test_settings_keep_leeway_under_the_lifetime() -> None:
    fast = DemoSettings.choose(["google"], fast=True)
    assert (fast.access_token_lifetime, fast.leeway) == (1, 0.0)
    normal = DemoSettings.choose()
    assert normal.providers == ("google", "github")
    assert 0 <= normal.leeway < normal.access_token_lifetime
    with pytest.raises(ValueError, match="leeway"):
        DemoSettings(access_token_lifetime=3, leeway=60)
    with pytest.raises(ValueError, match="providers"):
        DemoSettings(providers=("bitbucket",))
    assert DemoSettings(providers=("oidc",)).providers == ("oidc",)
