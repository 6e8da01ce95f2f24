"""The ``keyturn`` command line."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from keyturn.cli import main
from keyturn.pkce import code_challenge


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_providers_lists_google_with_its_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "providers")
    assert code == 0
    assert "\ngoogle: Google (keyturn-google " in "\n" + out
    assert "https://oauth2.googleapis.com/token" in out
    assert "  overrides     keyturn_revoke" in out


def test_providers_lists_every_installed_plugin_in_id_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "providers")
    heads = [line.split(":", 1)[0] for line in out.splitlines() if not line.startswith(" ")]
    assert code == 0
    assert heads == sorted(heads)
    assert {"google", "github", "gitlab"} <= set(heads)


def test_providers_shows_the_hooks_each_plugin_overrides(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "providers", "--json")
    hooks = {row["id"]: row["hooks"] for row in json.loads(out)}
    assert code == 0
    assert hooks["google"] == ["keyturn_revoke"]
    assert hooks["github"] == ["keyturn_authorize_url", "keyturn_revoke", "keyturn_userinfo"]
    # The example plugin is only a ProviderSpec: keyturn's defaults serve every hook.
    assert hooks["gitlab"] == []


def test_providers_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "providers", "--json")
    rows = {row["id"]: row for row in json.loads(out)}
    assert code == 0
    assert rows["google"]["distribution"] == "keyturn-google"
    assert rows["google"]["rotates_refresh_tokens"] is False


def test_providers_with_plugins_disabled(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYTURN_DISABLE_PLUGINS", "*")
    from keyturn.plugins import default_plugin_manager

    default_plugin_manager.cache_clear()
    try:
        code, out, _ = run(capsys, "providers")
    finally:
        default_plugin_manager.cache_clear()
    assert code == 0
    assert "no provider plugins installed" in out


def test_authorize_url_prints_url_state_and_verifier(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYTURN_GOOGLE_CLIENT_ID", "cli-client")
    code, out, _ = run(
        capsys,
        "authorize-url",
        "google",
        "--redirect-uri",
        "http://127.0.0.1:8000/cb",
        "--param",
        "login_hint=a@example.com",
        "--json",
    )
    data = json.loads(out)
    query = {k: v[0] for k, v in parse_qs(urlsplit(data["url"]).query).items()}
    assert code == 0
    assert query["client_id"] == "cli-client"
    assert query["state"] == data["state"]
    assert query["login_hint"] == "a@example.com"
    assert query["code_challenge"] == code_challenge(data["code_verifier"])


def test_authorize_url_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "authorize-url",
        "google",
        "--client-id",
        "x",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--scope",
        "openid",
    )
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    assert lines[1].startswith("state:")
    assert lines[2].startswith("code_verifier:")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["authorize-url", "nope", "--redirect-uri", "http://l/cb", "--client-id", "x"],
            "unknown provider 'nope'",
        ),
        (["authorize-url", "google", "--redirect-uri", "http://l/cb"], "KEYTURN_GOOGLE_CLIENT_ID"),
        (
            [
                "authorize-url",
                "google",
                "--redirect-uri",
                "http://l/cb",
                "--client-id",
                "x",
                "--param",
                "allow_signup=false",
            ],
            "does not accept the authorize parameter",
        ),
        (
            [
                "authorize-url",
                "google",
                "--redirect-uri",
                "http://l/cb",
                "--client-id",
                "x",
                "--param",
                "novalue",
            ],
            "NAME=VALUE",
        ),
        (
            ["authorize-url", "google", "--redirect-uri", "relative", "--client-id", "x"],
            "redirect_uri",
        ),
    ],
)
def test_errors_are_one_line_and_non_zero(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("KEYTURN_GOOGLE_CLIENT_ID", raising=False)
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert out == ""
    assert err.startswith("keyturn: error: ") and message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.slow
def test_the_installed_console_script_runs() -> None:
    script = Path(sys.executable).parent / "keyturn"
    result = subprocess.run(
        [str(script), "providers"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "\ngoogle: Google (keyturn-google " in "\n" + result.stdout
    bad = subprocess.run(
        [str(script), "authorize-url", "nope", "--redirect-uri", "http://l/cb", "--client-id", "x"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr and "unknown provider" in bad.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["authorize-url", "google"], "--redirect-uri"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    out, err = capsys.readouterr()
    assert caught.value.code == 2
    assert out == ""
    assert err.startswith("keyturn") and "error: " in err and message in err
    assert err.count("\n") == 1
    assert "--help" in err


class _OnlyKeyturnsCommands:
    """``importlib.metadata.entry_points`` as in an environment with the keyturn wheel alone."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __call__(self, **params: Any) -> Any:
        found = self.real(**params)
        if params.get("group") != "keyturn.commands":
            return found
        return [ep for ep in found if ep.dist is not None and ep.dist.name == "keyturn"]


@pytest.mark.parametrize(
    ("command", "distribution"),
    [
        ("demo", "keyturn-emulator"),
        ("emulator", "keyturn-emulator"),
        ("record", "pytest-keyturn"),
        ("new-provider", "pytest-keyturn"),
    ],
)
def test_a_command_of_a_missing_tool_names_the_distribution_to_install(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    distribution: str,
) -> None:
    monkeypatch.setattr(
        importlib.metadata, "entry_points", _OnlyKeyturnsCommands(importlib.metadata.entry_points)
    )
    code, out, err = run(capsys, command, "--help")
    assert code == 2
    assert out == ""
    assert err == (
        f"keyturn: error: 'keyturn {command}' comes with the {distribution} distribution, "
        f"which is not installed: pip install {distribution} "
        f"(from a clone of keyturn: pip install ./tools/{distribution})\n"
    )


def test_help_lists_the_missing_tools_with_their_distributions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        importlib.metadata, "entry_points", _OnlyKeyturnsCommands(importlib.metadata.entry_points)
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert exit_info.value.code == 0
    assert "providers" in out
    assert "demo, emulator (pip install keyturn-emulator)" in out
    assert "record, new-provider (pip install pytest-keyturn)" in out


def test_every_installed_tool_command_is_listed_in_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "providers", "authorize-url", "emulator", "record", "new-provider"):
        assert f"\n    {command}" in out
    assert "more commands" not in out


def test_a_command_entry_point_that_fails_to_import_is_one_line_naming_its_distribution(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.metadata.entry_points

    def broken(**params: Any) -> Any:
        found: list[Any] = list(real(**params))
        if params.get("group") == "keyturn.commands":
            found.append(
                importlib.metadata.EntryPoint(
                    "broken", "keyturn_no_such_module.cmd", "keyturn.commands"
                )
            )
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", broken)
    code, out, err = run(capsys, "providers")
    assert code == 1
    assert out == ""
    assert err.startswith("keyturn: error: the 'broken' command from an unknown distribution")
    assert "ModuleNotFoundError" in err
    assert "Traceback" not in err
