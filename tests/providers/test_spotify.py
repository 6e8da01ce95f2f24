"""Spotify, the example plugin of examples/keyturn-spotify (a third-party plugin written from the
tutorial, docs/writing-a-provider-plugin.md).

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

from keyturn_spotify import SPOTIFY
from pytest_keyturn import ProviderConformance
from tests.conftest import ROOT

SPOTIFY_EXAMPLE = ROOT / "examples" / "keyturn-spotify"


class TestSpotifyConformance(ProviderConformance):
    provider = "spotify"
    cassettes = SPOTIFY_EXAMPLE / "cassettes"


def test_the_example_is_a_public_client_with_pkce_that_rotates() -> None:
    assert (SPOTIFY.client_auth, SPOTIFY.pkce_method) == ("none", "S256")
    assert SPOTIFY.rotation == "rotate"
    assert SPOTIFY.issuer is None and SPOTIFY.userinfo_endpoint is None


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
            str(SPOTIFY_EXAMPLE),
            "-p",
            "no:cacheprovider",
            "--import-mode=importlib",
            "-W",
            "error",
            "-q",
        ],
        cwd=SPOTIFY_EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Three tests skip, saying why: Spotify is no OpenID Provider (no issuer to look up a
    # discovery document with, no ID token to check at sign-in, blocking and async).
    assert f"{suite_size() - 3} passed, 3 skipped" in output, output
    assert "failed" not in output and "error" not in output.lower(), output
