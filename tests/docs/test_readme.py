"""The README's promises: two quick-start commands, CI runs the same test command, real names."""

from __future__ import annotations

import ast
import importlib
import re

import keyturn
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
CI = (ROOT / ".ci" / "run").read_text()


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None, "the quick start has no sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_exactly_two_commands() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2
    assert "keyturn demo" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    test_command = quick_start_commands()[1]
    ci_commands = [line.strip() for line in CI.splitlines() if line.strip()]
    assert test_command in ci_commands


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
