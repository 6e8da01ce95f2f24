"""GitLab, the example plugin of examples/keyturn-gitlab (a third-party plugin written from the
tutorial).

The class runs the whole of pytest_keyturn.ProviderConformance on the cassettes in the example
plugin's folder, exactly as a plugin's own test suite does. A last test runs the example
plugin's tests the way its author would, in a separate pytest process from the plugin's own
folder.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import pytest

from pytest_keyturn import ProviderConformance
from tests.conftest import ROOT

GITLAB_EXAMPLE = ROOT / "examples" / "keyturn-gitlab"


class TestGitLabConformance(ProviderConformance):
    provider = "gitlab"
    cassettes = GITLAB_EXAMPLE / "cassettes"


def suite_size() -> int:
    """How many tests one ProviderConformance subclass runs (parametrized ones count each)."""
    total = 0
    for name, function in inspect.getmembers(ProviderConformance, inspect.isfunction):
        if name.startswith("test_"):
            marks = getattr(function, "pytestmark", [])
            total += sum(len(mark.args[1]) for mark in marks if mark.name == "parametrize") or 1
    return total


@pytest.mark.slow
def test_the_example_plugin_passes_its_own_test_suite() -> None:
    # The plugin's author runs `pytest tests` in the plugin's folder. Its tests/ is not a
    # package, and this repository's tests/ is one; --rootdir and importlib mode keep the
    # two apart, and no cache is written into the example.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests",
            "--rootdir",
            str(GITLAB_EXAMPLE),
            "-p",
            "no:cacheprovider",
            "--import-mode=importlib",
            "-W",
            "error",
            "-q",
        ],
        cwd=GITLAB_EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # One test skips, saying how to record the document it would compare the spec with:
    # the example has no discovery.yaml.
    assert f"{suite_size() - 1} passed, 1 skipped" in output, output
    assert "failed" not in output and "error" not in output.lower(), output
