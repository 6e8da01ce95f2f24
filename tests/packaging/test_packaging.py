"""keyturn as users get it: wheels installed into a fresh virtual environment.

One session fixture builds the wheels of every distribution (keyturn, keyturn-google,
keyturn-github, keyturn-oidc, keyturn-emulator, pytest-keyturn); others make virtual environments in
temporary folders and install wheels there: no editable install, and every command runs from
the temporary folder with a clean environment, so the source tree is not on ``sys.path``.

* the full set: entry points, the console script, a cassette replay, and
  ``keyturn new-provider`` end to end;
* the ``keyturn`` wheel alone: the library without any of its tools, and no pytest plugin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CASSETTES, CLIENT_ID, ROOT

pytestmark = [pytest.mark.packaging, pytest.mark.slow]

DISTRIBUTIONS = {
    "keyturn": ROOT / "core",
    "keyturn-google": ROOT / "plugins/google",
    "keyturn-github": ROOT / "plugins/github",
    "keyturn-oidc": ROOT / "plugins/oidc",
    "keyturn-emulator": ROOT / "tools/keyturn-emulator",
    "pytest-keyturn": ROOT / "tools/pytest-keyturn",
}
#: A guard against a hung subprocess, not a speed check.
GUARD = 600


def _environment() -> dict[str, str]:
    """This process's environment without anything that points into the workspace."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}
        and not key.startswith(("KEYTURN_", "PYTEST_"))
    }
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def _uv() -> list[str]:
    """How to run uv on this machine."""
    found = shutil.which("uv")
    if found:
        return [found]
    for python in (sys.executable, "python3"):
        probe = subprocess.run(
            [python, "-m", "uv", "--version"], capture_output=True, check=False, env=_environment()
        )
        if probe.returncode == 0:
            return [python, "-m", "uv"]
    pytest.fail("uv is needed to build and install the wheels (python3 -m pip install uv)")


@dataclass(frozen=True)
class Venv:
    """The virtual environment with keyturn's wheels installed."""

    root: Path
    work: Path
    uv: list[str]

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def run(
        self,
        args: Sequence[str | Path],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command from the temporary folder; fail with its output if it fails.

        :param env: variables to set besides the clean environment.
        """
        done = subprocess.run(
            [str(arg) for arg in args],
            cwd=cwd or self.work,
            env={**_environment(), **(env or {})},
            capture_output=True,
            text=True,
            check=False,
            timeout=GUARD,
        )
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
        return done

    def keyturn(
        self, *args: str | Path, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run([self.root / "bin" / "keyturn", *args], env=env)

    def install(self, *requirements: str | Path) -> None:
        self.run([*self.uv, "pip", "install", "--quiet", "--python", self.python, *requirements])


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every distribution built as a wheel, by package name (``keyturn_google``...)."""
    folder = tmp_path_factory.mktemp("wheels")
    uv = _uv()
    builder = Venv(folder, folder, uv)
    for source in DISTRIBUTIONS.values():
        builder.run([*uv, "build", "--wheel", "--quiet", "--out-dir", folder, source])
    built = {path.name.split("-")[0]: path for path in folder.glob("*.whl")}
    assert set(built) == {name.replace("-", "_") for name in DISTRIBUTIONS}
    return built


def _new_venv(tmp_path_factory: pytest.TempPathFactory, name: str) -> Venv:
    work = tmp_path_factory.mktemp(name)
    env = Venv(work / "venv", work, _uv())
    env.run([*env.uv, "venv", "--quiet", "--python", sys.executable, env.root])
    return env


@pytest.fixture(scope="session")
def venv(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> Venv:
    """keyturn with its web extra, the three plugins and both tools."""
    env = _new_venv(tmp_path_factory, "packaging")
    env.install(
        f"keyturn[web] @ {wheels['keyturn'].as_uri()}",
        wheels["keyturn_google"],
        wheels["keyturn_github"],
        wheels["keyturn_oidc"],
        wheels["keyturn_emulator"],
        wheels["pytest_keyturn"],
    )
    return env


@pytest.fixture(scope="session")
def library_alone(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> Venv:
    """The keyturn wheel alone, with its dependencies and nothing of the project besides."""
    env = _new_venv(tmp_path_factory, "library-alone")
    env.install(wheels["keyturn"])
    return env


LIBRARY_PROBE = """
import importlib.metadata, importlib.util, json, pkgutil
import keyturn

modules = sorted(
    info.name for info in pkgutil.walk_packages(keyturn.__path__, "keyturn.")
)
entry_points = {
    group: sorted(
        f"{ep.dist.metadata['Name']}:{ep.name}"
        for ep in importlib.metadata.entry_points(group=group)
        if ep.dist is not None and "keyturn" in ep.dist.metadata["Name"]
    )
    for group in ("pytest11", "keyturn", "keyturn.commands")
}
tools = {
    name: importlib.util.find_spec(name) is not None
    for name in ("keyturn_emulator", "pytest_keyturn", "vcr", "uvicorn", "pytest")
}
dists = sorted(d.metadata["Name"] for d in importlib.metadata.distributions())
print(json.dumps({"modules": modules, "entry_points": entry_points, "tools": tools,
                  "dists": dists}))
"""


def test_the_keyturn_wheel_alone_installs_the_library_and_none_of_the_tools(
    library_alone: Venv,
) -> None:
    found = json.loads(library_alone.run([library_alone.python, "-I", "-c", LIBRARY_PROBE]).stdout)
    top = {name.split(".")[1] for name in found["modules"]}
    assert top >= {"client", "flows", "hookspecs", "models", "stores", "web", "starlette"}
    for tool in ("emulator", "demo", "testing", "scaffold", "recording"):
        assert tool not in top, f"keyturn.{tool} is in the library's wheel"
    assert not any(found["tools"].values()), found["tools"]
    assert found["entry_points"] == {
        "pytest11": [],
        "keyturn": [],
        "keyturn.commands": ["keyturn:authorize-url", "keyturn:providers", "keyturn:sessions"],
    }
    assert "pytest" not in found["dists"] and "vcrpy" not in found["dists"]


def test_with_the_library_alone_the_tools_commands_name_their_distribution(
    library_alone: Venv,
) -> None:
    command = [str(library_alone.root / "bin" / "keyturn"), "demo"]
    done = subprocess.run(
        command,
        cwd=library_alone.work,
        env=_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=GUARD,
    )
    assert done.returncode == 2
    assert "pip install keyturn-emulator" in done.stderr
    assert "Traceback" not in done.stderr
    listed = library_alone.keyturn("--help").stdout
    assert "record, new-provider (pip install pytest-keyturn)" in listed


def test_keyturn_is_imported_from_the_venv_not_the_source_tree(venv: Venv) -> None:
    probe = venv.run(
        [
            venv.python,
            "-I",
            "-c",
            "import json, sys, keyturn, keyturn_google, keyturn_github; "
            "print(json.dumps([m.__file__ for m in (keyturn, keyturn_google, keyturn_github)]"
            " + [sys.path]))",
        ]
    )
    *files, path = json.loads(probe.stdout)
    for file in files:
        assert Path(file).is_relative_to(venv.root), file
    assert not any(str(entry).startswith(str(ROOT)) for entry in path)


def test_the_wheel_carries_client_js_and_serves_it(venv: Venv) -> None:
    probe = venv.run(
        [
            venv.python,
            "-I",
            "-c",
            "from keyturn import Keyturn; from keyturn.web import WebAuth, WebRequest; "
            "auth = WebAuth(Keyturn(), secret='p' * 40); "
            "r = auth.handle(WebRequest('GET', 'http://127.0.0.1/auth/client.js')); "
            "print(r.status, r.header('content-type')); print(r.body.decode())",
        ]
    )
    status, script = probe.stdout.split("\n", 1)
    assert status == "200 text/javascript; charset=utf-8"
    assert "watchSession" in script and "RefreshAccessTokenError" in script


def test_both_providers_are_found_through_their_entry_points(venv: Venv) -> None:
    rows = {row["id"]: row for row in json.loads(venv.keyturn("providers", "--json").stdout)}
    assert {"google", "github"} <= set(rows)
    assert rows["google"]["distribution"] == "keyturn-google"
    assert rows["github"]["distribution"] == "keyturn-github"
    assert rows["google"]["token_endpoint"] == "https://oauth2.googleapis.com/token"


def test_providers_declared_in_the_environment_are_listed_with_their_issuers(venv: Venv) -> None:
    declared = {
        "KEYTURN_OIDC_PROVIDERS": "corp",
        "KEYTURN_CORP_ISSUER": "https://id.corp.example",
    }
    rows = {
        row["id"]: row
        for row in json.loads(venv.keyturn("providers", "--json", env=declared).stdout)
    }
    corp = rows["corp"]
    assert (corp["distribution"], corp["plugin"], corp["hooks"]) == ("keyturn-oidc", "oidc", [])
    assert corp["issuer"] == "https://id.corp.example"
    assert corp["discovery_url"] == "https://id.corp.example/.well-known/openid-configuration"
    assert "corp" not in {
        row["id"] for row in json.loads(venv.keyturn("providers", "--json").stdout)
    }


REPLAY = """
import json, sys
from pathlib import Path

import keyturn
from pytest_keyturn.cassettes import make_vcr

folder = Path(sys.argv[1])
old = keyturn.TokenSet(
    provider="google", access_token="fake-old-access", refresh_token="fake-old-refresh"
)
credentials = {"google": (sys.argv[2], "fake-client-secret")}
with (
    keyturn.Keyturn(credentials, environ={}, clock=lambda: 1_800_000_000) as kt,
    make_vcr(folder).use_cassette("refresh_ok.yaml") as cassette,
):
    new = kt.refresh(old)
print(json.dumps({
    "played": cassette.all_played,
    "access": new.access_token.get_secret_value(),
    "refresh": new.refresh_token.get_secret_value(),
    "expires_at": new.expires_at,
    "keyturn": keyturn.__file__,
}))
"""


def test_a_google_cassette_replays_in_the_venv(venv: Venv, tmp_path: Path) -> None:
    shutil.copy(CASSETTES / "google" / "refresh_ok.yaml", tmp_path / "refresh_ok.yaml")
    script = tmp_path / "replay.py"
    script.write_text(REPLAY, encoding="utf-8")
    result = json.loads(venv.run([venv.python, "-I", script, tmp_path, CLIENT_ID]).stdout)
    assert result["played"] is True
    assert result["access"] == "REDACTED-328fda98"  # what the cassette holds
    assert result["refresh"] == "fake-old-refresh"  # Google does not rotate: kept
    assert result["expires_at"] == 1_800_000_000 + 3599
    assert Path(result["keyturn"]).is_relative_to(venv.root)


def test_a_new_provider_installs_lists_and_passes_its_own_tests(venv: Venv) -> None:
    plugin = venv.work / "keyturn-acme"
    venv.keyturn("new-provider", "acme", "--output", plugin)
    venv.install(plugin)
    rows = {row["id"]: row for row in json.loads(venv.keyturn("providers", "--json").stdout)}
    assert rows["acme"]["distribution"] == "keyturn-acme"
    assert rows["acme"]["token_endpoint"] == "https://acme.example.com/oauth/token"
    tests = venv.run([venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=plugin)
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    assert "error" not in tests.stdout.lower()
