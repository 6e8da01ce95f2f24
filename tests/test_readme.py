"""The README's promises: two quick-start commands, the second is script/test and CI runs it
too; the scripts exist and the README says what bootstrap installs; real names."""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
from pathlib import Path

import pytest

import keyturn

from .conftest import ROOT

README = (ROOT / "README.md").read_text()
CI = (ROOT / ".ci" / "run").read_text()
BOOTSTRAP = ROOT / "script" / "bootstrap"
TEST_SCRIPT = ROOT / "script" / "test"


def section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section of a Markdown text."""
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def quick_start_commands() -> list[str]:
    found = blocks(section(README, "Quick start"), "sh")
    assert found, "the quick start has no sh block"
    return [line for line in found[0].splitlines() if line.strip()]


def test_quick_start_is_exactly_two_commands() -> None:
    assert quick_start_commands() == [
        "python3 -m pip install uv && python3 -m uv run keyturn demo",
        "script/test",
    ]


def test_ci_runs_the_readme_test_command() -> None:
    test_command = quick_start_commands()[1]
    ci_commands = [line.strip() for line in CI.splitlines() if line.strip()]
    assert test_command in ci_commands


def test_ci_leaves_the_system_packages_to_bootstrap() -> None:
    ci_commands = [line.strip() for line in CI.splitlines() if line.strip()]
    assert "script/bootstrap" in ci_commands
    assert not [line for line in ci_commands if "apt-get" in line and not line.startswith("#")]


@pytest.mark.parametrize("script", [BOOTSTRAP, TEST_SCRIPT], ids=lambda path: path.name)
def test_scripts_are_executable_bash(script: Path) -> None:
    assert script.is_file()
    assert os.access(script, os.X_OK), f"{script} is not executable"
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_script_test_bootstraps_then_hands_its_arguments_to_pytest() -> None:
    text = TEST_SCRIPT.read_text()
    assert text.index("script/bootstrap") < text.index('python3 -m uv run pytest "$@"')


def bootstrap_packages() -> set[str]:
    """The system packages script/bootstrap looks for and installs."""
    return set(re.findall(r'packages="\$packages ([a-z0-9-]+)"', BOOTSTRAP.read_text()))


def test_bootstrap_installs_with_apt_get_and_syncs_from_the_lock() -> None:
    text = BOOTSTRAP.read_text()
    assert bootstrap_packages() == {"redis-server", "chromium"}
    assert "apt-get update" in text
    assert "apt-get install -y -qq --no-install-recommends" in text
    assert "python3 -m pip install" in text
    assert "export UV_PYTHON_DOWNLOADS=never" in text
    assert text.rstrip().endswith("sync --locked")


def test_the_readme_says_what_bootstrap_installs() -> None:
    quick_start = section(README, "Quick start")
    for package in bootstrap_packages():
        assert f"`{package}`" in quick_start
    for word in ("script/bootstrap", "apt-get", "sudo", "uv.lock"):
        assert word in quick_start


def test_the_readme_shows_the_run_that_needs_only_python() -> None:
    found = blocks(section(README, "Quick start"), "sh")
    assert found[1].strip() == 'python3 -m uv run pytest -m "not browser and not redis"'


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_readme_python_parses_and_names_only_real_public_api() -> None:
    blocks = python_blocks()
    assert blocks
    names: set[str] = set()
    for block in blocks:
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "keyturn":
                names.update(alias.name for alias in node.names)
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "keyturn"
            ):
                names.add(node.attr)
    assert names
    missing = sorted(name for name in names if not hasattr(keyturn, name))
    assert not missing, f"README uses names keyturn does not export: {missing}"


def test_readme_method_calls_exist_on_both_clients() -> None:
    methods = set(re.findall(r"\bkt\.(\w+)\(", README))
    assert {"authorize_url", "sign_in", "jwt", "session"} <= methods
    for method in methods:
        assert hasattr(keyturn.Keyturn, method), method
        assert hasattr(keyturn.AsyncKeyturn, method), method


def test_readme_imports_from_keyturn_modules_exist() -> None:
    imported: list[tuple[str, str]] = []
    for block in python_blocks():
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keyturn."):
                imported.extend((node.module or "", alias.name) for alias in node.names)
    assert ("keyturn.stores", "TokenManager") in imported
    missing = [
        f"{module}.{name}"
        for module, name in imported
        if not hasattr(importlib.import_module(module), name)
    ]
    assert not missing, f"README imports names that do not exist: {missing}"


def fastapi_block() -> str:
    section = README.split("## In a web app", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


def test_the_fastapi_example_is_under_twenty_lines() -> None:
    lines = [line for line in fastapi_block().splitlines() if line.strip()]
    assert len(lines) < 20


async def test_the_fastapi_example_signs_in_against_the_emulator(monkeypatch) -> None:
    """The README's block, run as written, with the environment pointing GitHub at the emulator."""
    import httpx

    import keyturn.web.auth
    from keyturn_emulator import Emulator

    with Emulator() as emu:
        real = keyturn.AsyncKeyturn

        def at_the_emulator() -> keyturn.AsyncKeyturn:
            github = emu.point(real().provider("github"))
            return real(providers=[github])

        monkeypatch.setattr(keyturn.web.auth, "AsyncKeyturn", at_the_emulator)
        monkeypatch.setenv("KEYTURN_SECRET", "s" * 43)
        monkeypatch.setenv("KEYTURN_GITHUB_CLIENT_ID", emu.credentials.client_id)
        secret = emu.credentials.client_secret
        assert secret is not None
        monkeypatch.setenv("KEYTURN_GITHUB_CLIENT_SECRET", secret.get_secret_value())
        namespace: dict[str, object] = {}
        exec(compile(fastapi_block(), "README.md", "exec"), namespace)
        transport = httpx.ASGITransport(app=namespace["app"])  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as web:
            assert (await web.get("/api/me")).status_code == 401
            start = await web.get("/auth/signin/github", params={"callbackUrl": "/api/me"})
            query = emu.authorize(start.headers["location"])
            back = await web.get("/auth/callback/github", params=query)
            assert back.headers["location"] == "/api/me"
            me = (await web.get("/api/me")).json()
    assert me["name"] == "Ada Example"
    assert me["access_token_expires_at"] > 0
