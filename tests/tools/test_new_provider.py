"""``keyturn new-provider NAME``: the generated plugin distribution.

The generated package is loaded straight from the folder it was written to and run through
keyturn's own conformance suite over its starter cassettes; installing it the way users do is
tests/packaging/test_packaging.py's job.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs

import pytest
import yaml

import keyturn
from keyturn import cli
from keyturn.plugins import KeyturnPluginManager, collect_providers
from pytest_keyturn import ProviderConformance
from pytest_keyturn.cassettes import find_secrets
from pytest_keyturn.scaffold import ScaffoldError, generate

from .test_cassette_hygiene import check_cassette

EXPECTED_FILES = {
    "pyproject.toml",
    "README.md",
    ".gitignore",
    "src/keyturn_acme/__init__.py",
    "src/keyturn_acme/py.typed",
    "tests/test_conformance.py",
    "cassettes/README.md",
    "cassettes/exchange_code.yaml",
    "cassettes/refresh_ok.yaml",
    "cassettes/refresh_invalid_grant.yaml",
    "cassettes/refresh_transient.yaml",
}


@functools.cache
def generated(name: str, rotating: bool) -> Path:
    """A plugin generated once per test run (shared by the conformance classes below)."""
    root = Path(tempfile.mkdtemp(prefix="keyturn-new-provider-"))
    atexit.register(shutil.rmtree, root, True)
    target = root / f"keyturn-{name}"
    generate(name, target, rotating=rotating)
    return target


def load_plugin(folder: Path) -> ModuleType:
    """Import the generated package from its folder, without installing it."""
    (init,) = folder.glob("src/keyturn_*/__init__.py")
    spec = importlib.util.spec_from_file_location(init.parent.name, init)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manager_for(name: str, rotating: bool) -> KeyturnPluginManager:
    return keyturn.get_plugin_manager(
        entry_points=False, plugins=[load_plugin(generated(name, rotating))]
    )


class TestStartersConform(ProviderConformance):
    """The starters of a plugin that keeps its refresh tokens pass the conformance suite."""

    provider = "acme"
    cassettes = generated("acme", False) / "cassettes"
    plugin_manager_factory = staticmethod(lambda: manager_for("acme", False))


class TestRotatingStartersConform(ProviderConformance):
    """With --rotating, the spec says so and refresh_rotated.yaml proves it."""

    provider = "acme_rotor"
    cassettes = generated("acme_rotor", True) / "cassettes"
    plugin_manager_factory = staticmethod(lambda: manager_for("acme_rotor", True))


def test_the_distribution_has_every_file(tmp_path: Path) -> None:
    target = tmp_path / "out"
    written = generate("acme", target)
    assert {p.as_posix() for p in written} == EXPECTED_FILES
    assert {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()} == (
        EXPECTED_FILES
    )
    assert (target / "src/keyturn_acme/py.typed").read_text() == ""


def test_pyproject_declares_the_entry_point_and_the_test_extra(tmp_path: Path) -> None:
    generate("my-idp", tmp_path / "p")
    project = tomllib.loads((tmp_path / "p/pyproject.toml").read_text())
    assert project["build-system"]["build-backend"] == "hatchling.build"
    meta = project["project"]
    assert meta["name"] == "keyturn-my-idp"
    assert meta["dependencies"] == ["keyturn>=0.1"]
    assert meta["entry-points"]["keyturn"] == {"my-idp": "keyturn_my_idp"}
    test_extra = meta["optional-dependencies"]["test"]
    assert test_extra == ["pytest-keyturn>=0.1"]
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [
        "src/keyturn_my_idp"
    ]


def test_the_spec_has_placeholder_https_endpoints_and_the_options(tmp_path: Path) -> None:
    generate("acme", tmp_path / "p", display_name="Acme ID", rotating=True)
    module = load_plugin(tmp_path / "p")
    registered = collect_providers(keyturn.get_plugin_manager(entry_points=False, plugins=[module]))
    spec = registered["acme"].spec
    assert spec is module.ACME
    assert (spec.id, spec.name, spec.rotates_refresh_tokens) == ("acme", "Acme ID", True)
    for url in (
        spec.authorization_endpoint,
        spec.token_endpoint,
        spec.userinfo_endpoint,
        spec.revocation_endpoint,
    ):
        assert url is not None and url.startswith("https://acme.example.com/")
    source = (tmp_path / "p/src/keyturn_acme/__init__.py").read_text()
    assert "@keyturn.hookimpl" in source and '@keyturn.for_provider("acme")' in source
    assert registered["acme"].hooks == ()  # only the spec: keyturn's defaults do the rest


def test_the_conformance_test_is_the_documented_one(tmp_path: Path) -> None:
    generate("acme", tmp_path / "p")
    text = (tmp_path / "p/tests/test_conformance.py").read_text()
    assert "from pytest_keyturn import ProviderConformance" in text
    assert 'provider = "acme"' in text
    assert 'cassettes = Path(__file__).parent.parent / "cassettes"' in text


@pytest.mark.parametrize("rotating", [False, True])
def test_starters_are_scrubbed_vcrpy_cassettes_marked_as_generated(
    tmp_path: Path, rotating: bool
) -> None:
    generate("acme", tmp_path / "p", rotating=rotating)
    folder = tmp_path / "p/cassettes"
    files = sorted(folder.glob("*.yaml"))
    expected = {"exchange_code", "refresh_ok", "refresh_invalid_grant", "refresh_transient"}
    assert {p.stem for p in files} == expected | ({"refresh_rotated"} if rotating else set())
    readme = (folder / "README.md").read_text()
    for path in files:
        check_cassette(path)  # the project's own hygiene check: as the scrubber writes them
        text = path.read_text()
        assert text.startswith("# Generated starter written from RFC 6749, NOT recorded")
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{path.name}`"))
        assert "Generated starter written from RFC 6749" in row
        if path.stem == "refresh_transient":
            # A passing failure cannot be provoked on demand: the tutorial has it written by
            # hand, and so do the starter and its row.
            assert "keyturn record" not in text and "keyturn record" not in row
            assert "by hand" in text and "by hand" in row
        else:
            assert f"keyturn record acme {path.stem}" in text
            assert "keyturn record" in row
        data = yaml.safe_load(text)["interactions"][0]
        assert data["request"]["uri"] == "https://acme.example.com/oauth/token"
    ok = yaml.safe_load((folder / "refresh_ok.yaml").read_text())["interactions"][0]
    assert ("refresh_token" in ok["response"]["body"]["string"]) is rotating


def test_the_generated_code_passes_ruff(tmp_path: Path) -> None:
    generate("my-idp", tmp_path / "p")
    ruff = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--isolated",
            "--select",
            "E,F,W,I,B,UP,RUF",
            "--line-length",
            "100",
            str(tmp_path / "p"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr


@pytest.mark.slow
def test_the_generated_code_passes_strict_mypy(tmp_path: Path) -> None:
    # The tutorial promises that mypy checks a plugin's hooks against keyturn's signatures.
    generate("my-idp", tmp_path / "p")
    package = tmp_path / "p"
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(package / "src"),
            str(package / "tests"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Success: no issues found in 2 source files" in checked.stdout


@pytest.mark.parametrize("name", ["Acme", "1acme", "acme!", "ac me", "acme.", "acmé", "_acme"])
def test_a_bad_name_is_one_line_error(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["new-provider", name, "--output", str(tmp_path / "p")])
    assert status == 2  # a usage error: the command line itself is wrong
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a provider id" in err
    assert "(see 'keyturn new-provider --help')" in err
    assert not (tmp_path / "p").exists()


def test_a_folder_in_use_is_refused_and_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "p"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ScaffoldError, match="not an empty folder"):
        generate("acme", target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert generate("acme", empty)  # an empty folder is fine


def test_the_command_writes_keyturn_name_here_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["new-provider", "acme", "--display-name", "Acme ID"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("wrote keyturn-acme/")
    assert "src/keyturn_acme/__init__.py" in out
    assert 'name="Acme ID"' in (tmp_path / "keyturn-acme/src/keyturn_acme/__init__.py").read_text()
    assert cli.main(["new-provider", "acme"]) == 1  # now in use
    assert "not an empty folder" in capsys.readouterr().err


def test_no_starter_looks_like_a_secret(tmp_path: Path) -> None:
    generate("acme", tmp_path / "p", rotating=True)
    for path in (tmp_path / "p").rglob("*"):
        if path.is_file():
            assert find_secrets(path.read_text()) == [], path.name


def _refresh_sent_and_returned(folder: Path, scenario: str) -> tuple[str, str | None]:
    """The refresh token a starter's request sends, and the one its answer returns."""
    interaction = yaml.safe_load((folder / f"{scenario}.yaml").read_text())["interactions"][0]
    sent = parse_qs(interaction["request"]["body"])["refresh_token"][0]
    answer = json.loads(interaction["response"]["body"]["string"])
    return sent, answer.get("refresh_token")


def test_the_rotating_starters_follow_one_rotation_chain(tmp_path: Path) -> None:
    """refresh_rotated is the next refresh: it spends what refresh_ok returned and gets a
    token of its own; refresh_invalid_grant presents a token the chain has already spent."""
    generate("acme", tmp_path / "p", rotating=True)
    folder = tmp_path / "p/cassettes"
    exchange = yaml.safe_load((folder / "exchange_code.yaml").read_text())["interactions"][0]
    issued = json.loads(exchange["response"]["body"]["string"])["refresh_token"]
    ok_sent, ok_returned = _refresh_sent_and_returned(folder, "refresh_ok")
    rotated_sent, rotated_returned = _refresh_sent_and_returned(folder, "refresh_rotated")
    dead_sent, _ = _refresh_sent_and_returned(folder, "refresh_invalid_grant")
    assert ok_sent == issued
    assert ok_returned is not None and ok_returned != ok_sent
    assert rotated_sent == ok_returned
    assert rotated_returned is not None
    assert rotated_returned not in (ok_sent, ok_returned)
    assert dead_sent == issued  # spent by refresh_ok
    assert (folder / "refresh_ok.yaml").read_text().split("interactions:")[1] != (
        folder / "refresh_rotated.yaml"
    ).read_text().split("interactions:")[1]


def test_the_keeping_starters_refresh_with_the_one_refresh_token(tmp_path: Path) -> None:
    generate("acme", tmp_path / "p", rotating=False)
    folder = tmp_path / "p/cassettes"
    sent, returned = _refresh_sent_and_returned(folder, "refresh_ok")
    assert returned is None
    assert sent == _refresh_sent_and_returned(folder, "refresh_invalid_grant")[0]
    assert not (folder / "refresh_rotated.yaml").exists()
