"""The README's promises, and the package pages'.

* the quick start is two commands, the second is ``script/test``, and CI runs it too;
* ``script/bootstrap`` and ``script/test`` exist, are executable bash, and the README says what
  bootstrap installs;
* every ``pip install`` of a distribution that is not on PyPI yet comes with the from-a-clone
  form beside it, in the README, the docs, the examples and the package pages;
* the layout names real folders and the real distributions;
* the Python examples name only real API, and they run: against keyturn's provider emulator
  where they sign someone in.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import keyturn
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
CI = (ROOT / ".ci" / "run").read_text()
BOOTSTRAP = ROOT / "script" / "bootstrap"
TEST_SCRIPT = ROOT / "script" / "test"


def section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section of a Markdown text."""
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


# -- the quick start and the scripts -------------------------------------------------------


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
    run = 'python3 -m uv run pytest "${workers[@]}" "$@"'
    assert text.index("script/bootstrap") < text.index(run)
    # One worker per CPU unless told otherwise (pytest-xdist, a dev dependency).
    assert '-n "${KEYTURN_TEST_WORKERS:-auto}"' in text


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


# -- installing what is not on PyPI yet ----------------------------------------------------


def distribution_folders() -> dict[str, str]:
    """Each workspace member's distribution name and folder."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found: dict[str, str] = {}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for folder in sorted(ROOT.glob(pattern)):
            project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
            found[project["name"]] = folder.relative_to(ROOT).as_posix()
    return found


FOLDERS = distribution_folders()


def package_pages() -> list[Path]:
    """The README of each distribution: its page on the package index."""
    pages = []
    for folder in FOLDERS.values():
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
        pages.append(ROOT / folder / project["readme"])
    return pages


def pages_with_installs() -> list[Path]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    pages += sorted((ROOT / "examples").glob("*/README.md"))
    return sorted(set(pages) | set(PACKAGE_PAGES))


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


PACKAGE_PAGES = package_pages()


def published_installs(text: str) -> Iterator[tuple[int, set[str]]]:
    """(line index, distributions) of each ``pip install`` of the project's by name."""
    for index, line in enumerate(text.splitlines()):
        for match in re.finditer(r"pip install ([^`#\n;&|)]*)", line):
            names = set()
            for argument in match.group(1).split():
                requirement = argument.strip("\"'")
                if requirement.startswith((".", "/", "-")) or "/" in requirement:
                    continue  # a folder, a file or an option
                name = re.sub(r"\[.*", "", requirement)
                if name in FOLDERS:
                    names.add(name)
            if names:
                yield index, names


def test_the_rule_sees_install_lines() -> None:
    found = dict(published_installs('x\n`pip install "keyturn[web]" keyturn-github flask`\n'))
    assert found == {1: {"keyturn", "keyturn-github"}}
    assert not list(published_installs("pip install ./core ./plugins/github -e .\n"))


@pytest.mark.parametrize("page", pages_with_installs(), ids=page_id)
def test_every_install_by_name_says_how_to_install_from_a_clone(page: Path) -> None:
    """keyturn is not on PyPI yet: beside ``pip install keyturn-x``, the folder to install."""
    lines = page.read_text().splitlines()
    for index, names in published_installs(page.read_text()):
        nearby = "\n".join(lines[max(0, index - 5) : index + 6])
        for name in names:
            assert f"./{FOLDERS[name]}" in nearby, (
                f"{page.relative_to(ROOT)}:{index + 1} installs {name} by name; say beside it "
                f"how to install it from a clone (./{FOLDERS[name]})"
            )


@pytest.mark.parametrize("page", PACKAGE_PAGES, ids=page_id)
def test_each_package_page_installs_itself_and_shows_python(page: Path) -> None:
    text = page.read_text()
    name = next(name for name, folder in FOLDERS.items() if ROOT / folder == page.parent)
    assert any(name in names for _, names in published_installs(text)), f"{page}: no install"
    assert "not on pypi yet" in text.lower()
    assert blocks(text, "python"), f"{page} shows no Python"


@pytest.mark.parametrize("page", PACKAGE_PAGES, ids=page_id)
def test_package_pages_have_no_relative_links(page: Path) -> None:
    """The package index shows the page outside the repository: a relative link goes nowhere."""
    relative = re.findall(r"\]\((?!https?://)([^)]+)\)", page.read_text())
    assert not relative, f"{page.relative_to(ROOT)} links {relative}; name repository paths"


# -- the layout ----------------------------------------------------------------------------


def layout_blocks() -> list[str]:
    found = blocks(section(README, "Layout"), "text")
    assert len(found) == 3, "the layout is the library, the tools, and the rest"
    return found


def first_column(block: str) -> list[str]:
    return [line.split()[0] for line in block.splitlines() if line and not line[0].isspace()]


def test_the_layout_lists_every_distribution_by_its_folder() -> None:
    _, tools, _ = layout_blocks()
    listed = {}
    for line in tools.splitlines():
        if line and not line[0].isspace():
            folder, name = line.split()[:2]
            listed[name.rstrip(":")] = folder.rstrip("/")
    assert listed == {name: folder for name, folder in FOLDERS.items() if name != "keyturn"}
    assert FOLDERS["keyturn"] == "core"


def test_the_layout_names_paths_that_exist() -> None:
    _, _, rest = layout_blocks()
    for path in first_column(rest):
        assert (ROOT / path).exists(), path


# -- the Python examples -------------------------------------------------------------------


def python_blocks() -> list[str]:
    return blocks(README, "python")


def test_readme_python_parses_and_names_only_real_public_api() -> None:
    names: set[str] = set()
    for block in python_blocks():
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


SIGN_IN_PAGES = [
    "core/README.md",
    "plugins/google/README.md",
    "plugins/github/README.md",
    "plugins/gitlab/README.md",
]


def example_redirect_uris() -> set[str]:
    """The callback URLs the examples send users back to (the emulator accepts only these)."""
    pages = [README, *((ROOT / page).read_text() for page in SIGN_IN_PAGES)]
    pattern = r"https://app\.example(?:\.com)?/auth/callback/[a-z]+"
    return {uri for text in pages for uri in re.findall(pattern, text)}


@pytest.fixture
def emulated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A namespace for running examples against keyturn's provider emulator.

    ``Keyturn`` and ``AsyncKeyturn``, as imported from ``keyturn``, build clients whose
    installed providers all answer from the emulator (each from the profile of its name, else
    ``strict``) with the emulator's credentials, unless the example passes ``providers=``
    itself. ``redirect_to(url)`` plays the user's browser at the emulator and leaves the
    callback's query in ``callback_query_params``. The working directory is a fresh folder.
    """
    from keyturn.plugins import collect_providers
    from keyturn_emulator import Emulator

    sync_client = keyturn.Keyturn
    made: list[Any] = []
    with Emulator(redirect_uris=example_redirect_uris()) as emu:

        def at_the_emulator(client_class: Callable[..., Any]) -> Callable[..., Any]:
            def make(credentials: Any = None, **options: Any) -> Any:
                if "providers" not in options:
                    manager = options.get("plugin_manager") or keyturn.get_plugin_manager()
                    installed = [found.spec for found in collect_providers(manager).values()]
                    options["providers"] = [
                        emu.point(spec, spec.id if spec.id in emu.profiles else "strict")
                        for spec in installed
                    ]
                    credentials = {spec.id: emu.credentials for spec in installed}
                client = client_class(credentials, **options)
                made.append(client)
                return client

            return make

        monkeypatch.setattr(keyturn, "Keyturn", at_the_emulator(keyturn.Keyturn))
        monkeypatch.setattr(keyturn, "AsyncKeyturn", at_the_emulator(keyturn.AsyncKeyturn))
        monkeypatch.chdir(tmp_path)
        namespace: dict[str, Any] = {}

        def redirect_to(url: str) -> None:
            if url.startswith(emu.base_url):
                namespace["callback_query_params"] = emu.authorize(url)

        namespace["redirect_to"] = redirect_to
        yield namespace
    for client in made:
        if isinstance(client, sync_client):
            client.close()


def run_blocks(page: str, code: list[str], namespace: dict[str, Any]) -> None:
    for block in code:
        exec(compile(block, page, "exec"), namespace)


def test_the_readme_examples_run_against_the_emulator(emulated: dict[str, Any]) -> None:
    """Every Python block but the web one (run below), in order, as one program."""
    web = blocks(section(README, "In a web app"), "python")
    code = [block for block in python_blocks() if block not in web]
    emulated["user_id"] = "user-42"
    emulated["lookup_role"] = lambda email: "reader"
    run_blocks("README.md", code, emulated)
    token = emulated["token"]
    assert token.user is not None
    assert token.error is None
    assert emulated["access_token"] == token.tokens.access_token.get_secret_value()
    # The callbacks example's client puts the role in on sign-in.
    kt = emulated["kt"]
    request = kt.authorize_url("google", "https://app.example/auth/callback/google")
    emulated["redirect_to"](request.url)
    signed_in = kt.sign_in(request, emulated["callback_query_params"])
    assert signed_in.claims == {"role": "reader"}


@pytest.mark.parametrize("page", SIGN_IN_PAGES)
def test_the_package_page_examples_run_against_the_emulator(
    page: str, emulated: dict[str, Any]
) -> None:
    run_blocks(page, blocks((ROOT / page).read_text(), "python"), emulated)
    token = emulated["token"]
    assert token.user is not None
    assert token.error is None


def test_the_emulator_page_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """As written: the page starts its own emulator. The clients it makes are closed after."""
    made: list[keyturn.Keyturn] = []
    real = keyturn.Keyturn

    def recorded(*args: Any, **options: Any) -> keyturn.Keyturn:
        made.append(real(*args, **options))
        return made[-1]

    monkeypatch.setattr(keyturn, "Keyturn", recorded)
    page = "tools/keyturn-emulator/README.md"
    try:
        run_blocks(page, blocks((ROOT / page).read_text(), "python"), {})
    finally:
        for client in made:
            client.close()


@pytest.mark.slow
def test_the_conformance_example_passes_on_the_spotify_cassettes(tmp_path: Path) -> None:
    """pytest-keyturn's page shows the Spotify example's conformance test: run it, in a fresh
    folder with a copy of that plugin's cassettes, as a pytest run of its own."""
    (code,) = blocks((ROOT / "tools/pytest-keyturn/README.md").read_text(), "python")
    (tmp_path / "test_conformance.py").write_text(code)
    shutil.copytree(ROOT / "examples/keyturn-spotify/cassettes", tmp_path / "cassettes")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_conformance.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout


# -- the web example -----------------------------------------------------------------------


def fastapi_block() -> str:
    found = blocks(section(README, "In a web app"), "python")
    assert len(found) == 1
    return str(found[0])


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
