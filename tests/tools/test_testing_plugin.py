"""The plugin author's kit fails where a plugin is wrong, and says what to fix.

Each test writes a small provider plugin ("acme") and its cassettes into a temporary folder,
runs keyturn's conformance suite on it in a nested pytest session (pytester), and checks which
tests fail and with what message. One plugin is correct and must pass whole. The pytest plugin
itself (fixtures, cheap import, the vcrpy hint) is checked here too.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from pytest_keyturn.conformance import record_command
from pytest_keyturn.plugin import START, FakeClock

pytest_plugins = ["pytester"]

TOKEN_URL = "https://auth.example.com/token"
REDIRECT_URI = "https://app.example.com/auth/callback/acme"
CLIENT_ID = "example-acme-client"
#: Tests each ProviderConformance subclass runs (8 single, 6 run for sync and async).
SUITE_SIZE = 20
#: Of those, what acme skips: it asks for no openid scope and names no issuer, so the sign-in
#: replay (sync and async) and the discovery comparison have nothing to check.
SKIPPED = 3


def assert_outcomes(result: pytest.RunResult, *, failed: int = 0, skipped: int = SKIPPED) -> None:
    """The whole suite ran: ``failed`` tests failed, ``skipped`` skipped, the rest passed."""
    result.assert_outcomes(passed=SUITE_SIZE - failed - skipped, failed=failed, skipped=skipped)


PLUGIN = """
import keyturn

ACME = keyturn.ProviderSpec(
    id="acme",
    name="Acme",
    authorization_endpoint="https://auth.example.com/authorize",
    token_endpoint="{token_url}",
    default_scopes=("read", "write"),
    authorize_params={{"access_type": "offline"}},
    pkce_method="S256",
    rotates_refresh_tokens={rotates},
    transient_errors=frozenset({transient!r}),
)


@keyturn.hookimpl
def keyturn_register_providers(register):
    register(ACME)
"""

TEST_MODULE = """
from pathlib import Path

import keyturn
from pytest_keyturn import ProviderConformance

import acme_plugin


class TestAcme(ProviderConformance):
    provider = "acme"
    cassettes = Path(__file__).parent / "cassettes"
    plugin_manager_factory = staticmethod(
        lambda: keyturn.get_plugin_manager(entry_points=False, plugins=[acme_plugin])
    )
"""


def interaction(
    fields: Mapping[str, str],
    status: int,
    body: Any,
    *,
    request_headers: Mapping[str, list[str]] | None = None,
) -> dict[str, Any]:
    """One vcrpy interaction: a form POST to the token endpoint and its answer."""
    if isinstance(body, str):
        content_type, text = "text/html; charset=utf-8", body
    else:
        content_type, text = "application/json", json.dumps(body)
    headers = {
        "accept": ["application/json"],
        "content-type": ["application/x-www-form-urlencoded"],
        **(request_headers or {}),
    }
    return {
        "request": {
            "body": urlencode(fields),
            "headers": headers,
            "method": "POST",
            "uri": TOKEN_URL,
        },
        "response": {
            "body": {"string": text},
            "headers": {"content-type": [content_type]},
            "status": {"code": status, "message": "Status"},
        },
    }


def refresh_fields(refresh_token: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": CLIENT_ID,
        "client_secret": "REDACTED",
    }


def standard_cassettes(*, rotate: bool) -> dict[str, dict[str, Any]]:
    """A correct set of cassettes for acme, keyed by scenario."""
    exchange = {
        "grant_type": "authorization_code",
        "code": "REDACTED-code",
        "redirect_uri": REDIRECT_URI,
        "code_verifier": "REDACTED-verifier",
        "client_id": CLIENT_ID,
        "client_secret": "REDACTED",
    }
    issued = {
        "access_token": "REDACTED-access-1",
        "token_type": "bearer",
        "expires_in": 3600,
        "refresh_token": "REDACTED-refresh-1",
        "scope": "read write",
    }
    refreshed: dict[str, Any] = {"access_token": "REDACTED-access-2", "expires_in": 3600}
    if rotate:
        refreshed["refresh_token"] = "REDACTED-refresh-2"
    rotated = {
        "access_token": "REDACTED-access-3",
        "expires_in": 3600,
        "refresh_token": "REDACTED-refresh-3",
    }
    dead = {"error": "invalid_grant", "error_description": "The refresh token is revoked."}
    cassettes = {
        "exchange_code": [interaction(exchange, 200, issued)],
        "refresh_ok": [interaction(refresh_fields("REDACTED-refresh-1"), 200, refreshed)],
        "refresh_invalid_grant": [interaction(refresh_fields("REDACTED-refresh-1"), 400, dead)],
        "refresh_transient": [
            interaction(refresh_fields("REDACTED-refresh-1"), 502, "<h1>Bad Gateway</h1>")
        ],
    }
    if rotate:
        cassettes["refresh_rotated"] = [
            interaction(refresh_fields("REDACTED-refresh-2"), 200, rotated)
        ]
    return {name: {"interactions": items, "version": 1} for name, items in cassettes.items()}


def write_plugin(
    pytester: pytest.Pytester,
    cassettes: Mapping[str, Mapping[str, Any]],
    *,
    rotates: bool = False,
    transient: frozenset[str] = frozenset(),
) -> None:
    pytester.syspathinsert()
    pytester.makepyfile(
        acme_plugin=PLUGIN.format(token_url=TOKEN_URL, rotates=rotates, transient=set(transient)),
        test_acme=TEST_MODULE,
    )
    folder = pytester.path / "cassettes"
    folder.mkdir()
    for name, data in cassettes.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")


#: Options of every nested run: no cache files, no asyncio plugin (the suite needs none).
OPTIONS = ("-p", "no:cacheprovider", "-p", "no:asyncio")


def run_suite(pytester: pytest.Pytester) -> pytest.RunResult:
    return pytester.runpytest(*OPTIONS, "-rf")


@pytest.mark.parametrize("rotates", [False, True], ids=["keeps", "rotates"])
def test_a_correct_plugin_passes_the_whole_suite(pytester: pytest.Pytester, rotates: bool) -> None:
    write_plugin(pytester, standard_cassettes(rotate=rotates), rotates=rotates)
    result = run_suite(pytester)
    assert_outcomes(result)


@pytest.mark.parametrize("days", [-30, 30], ids=["recorded-before-start", "recorded-after"])
def test_a_recorded_refresh_with_an_id_token_passes_whatever_day_it_was_recorded(
    pytester: pytest.Pytester, days: int
) -> None:
    """keyturn checks a refreshed ID token's exp and iat on the client's clock; the suite sets
    its fake clock to the recorded iat, as a real provider's ID token is fresh when sent."""
    issued = START + days * 86400

    def part(data: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {
        "iss": "https://auth.example.com",
        "aud": CLIENT_ID,
        "sub": "7",
        "iat": issued,
        "exp": issued + 3600,
    }
    id_token = f"REDACTED-1a2b3c4d.{part(claims)}.REDACTED"
    cassettes = standard_cassettes(rotate=False)
    body = {"access_token": "REDACTED-access-2", "expires_in": 3600, "id_token": id_token}
    cassettes["refresh_ok"]["interactions"][0]["response"]["body"]["string"] = json.dumps(body)
    write_plugin(pytester, cassettes)
    result = run_suite(pytester)
    assert_outcomes(result)


def test_a_live_looking_secret_or_an_authorization_header_fails(
    pytester: pytest.Pytester,
) -> None:
    cassettes = standard_cassettes(rotate=False)
    # Built at run time so that no file of this repository holds the live-looking value.
    leaked = "gho_" + "fakeExample" * 4
    extra = refresh_fields("REDACTED-refresh-1")
    cassettes["refresh_leaked"] = {
        "interactions": [interaction(extra, 200, {"access_token": leaked, "expires_in": 60})],
        "version": 1,
    }
    cassettes["refresh_ok"]["interactions"][0]["request"]["headers"]["authorization"] = [
        "Bearer REDACTED"
    ]
    write_plugin(pytester, cassettes)
    result = run_suite(pytester)
    # The secret check fails alone: the four tests that replay refresh_ok.yaml (refresh_ok
    # and the rotation check, sync and async) skip it until it is clean.
    assert_outcomes(result, failed=1, skipped=SKIPPED + 4)
    result.stdout.fnmatch_lines(
        [
            "*test_cassettes_hold_no_secrets*",
            "*cassettes must be scrubbed*",
            "*refresh_leaked.yaml, interaction 0, response body field access_token: what looks "
            "like a live GitHub token*",
            "*refresh_ok.yaml, interaction 0, request header authorization: redacted, but the "
            "scrubber drops this header: remove it*",
        ]
    )
    assert leaked not in result.stdout.str()


def test_a_spec_claiming_rotation_whose_refresh_keeps_the_token_fails(
    pytester: pytest.Pytester,
) -> None:
    cassettes = standard_cassettes(rotate=True)
    body = {"access_token": "REDACTED-access-3", "expires_in": 3600}  # no new refresh token
    cassettes["refresh_rotated"]["interactions"][0]["response"]["body"]["string"] = json.dumps(body)
    write_plugin(pytester, cassettes, rotates=True)
    result = run_suite(pytester)
    assert_outcomes(result, failed=2)
    result.stdout.fnmatch_lines(
        [
            "FAILED *test_refresh_token_rotation_matches_the_spec?sync?*",
            "FAILED *test_refresh_token_rotation_matches_the_spec?async?*",
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        [
            "*refresh_rotated.yaml: the spec declares rotation='rotate', so each refresh "
            "returns a new refresh token, but the refresh left the refresh token that was "
            "sent in place*"
        ]
    )


def test_a_spec_that_does_not_rotate_but_gets_a_new_refresh_token_fails(
    pytester: pytest.Pytester,
) -> None:
    # The cassettes show rotation, the spec denies it: both refresh replays fail, and the
    # spec check names the refresh_rotated.yaml a provider that never rotates cannot have.
    write_plugin(pytester, standard_cassettes(rotate=True), rotates=False)
    result = run_suite(pytester)
    assert_outcomes(result, failed=3)
    result.stdout.fnmatch_lines(
        ["*refresh_ok.yaml: the spec declares rotation='none', but the TokenSet's*"]
    )
    result.stdout.fnmatch_lines(["*rotation='none', but the folder has refresh_rotated.yaml*"])


def test_invalid_grant_classified_as_transient_fails(pytester: pytest.Pytester) -> None:
    write_plugin(pytester, standard_cassettes(rotate=False), transient=frozenset({"invalid_grant"}))
    result = run_suite(pytester)
    assert_outcomes(result, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*refresh_invalid_grant.yaml: keyturn (sync) classified the failure as transient "
            "(error 'invalid_grant', HTTP 400)*",
            "*refresh_invalid_grant.yaml: keyturn (async) classified the failure as transient*",
        ],
        consecutive=False,
    )


def test_a_missing_standard_cassette_fails_and_says_how_to_record_it(
    pytester: pytest.Pytester,
) -> None:
    cassettes = standard_cassettes(rotate=False)
    del cassettes["exchange_code"]
    write_plugin(pytester, cassettes)
    result = run_suite(pytester)
    # The exchange and the sign-in replay, each sync and async.
    assert_outcomes(result, failed=4, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*exchange_code.yaml is missing. Record it against the real provider with "
            "`keyturn record acme exchange_code --cassette-dir cassettes --flat`*"
        ]
    )


def test_a_request_the_cassette_does_not_hold_fails_with_the_difference(
    pytester: pytest.Pytester,
) -> None:
    cassettes = standard_cassettes(rotate=False)
    request = cassettes["refresh_transient"]["interactions"][0]["request"]
    request["uri"] = "https://auth.example.com/other-token-endpoint"
    write_plugin(pytester, cassettes)
    result = run_suite(pytester)
    assert_outcomes(result, failed=2)
    result.stdout.fnmatch_lines(
        ["*refresh_transient.yaml: keyturn (sync) sent a request the cassette does not hold*"]
    )


# -- the pytest plugin ------------------------------------------------------------------------


def test_keyturn_clock_starts_at_start_and_moves_only_when_told(keyturn_clock: FakeClock) -> None:
    assert keyturn_clock() == START
    keyturn_clock.advance(90)
    assert keyturn_clock() == START + 90
    keyturn_clock.set(5)
    assert keyturn_clock() == 5


def test_the_plugin_defines_only_keyturn_fixtures(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*OPTIONS, "--fixtures")
    lines = result.stdout.lines
    start = next(
        i for i, line in enumerate(lines) if "fixtures defined from pytest_keyturn.plugin" in line
    )
    names = []
    for line in lines[start + 1 :]:
        if line.startswith(("-", "=")):  # the next plugin's section, or the summary
            break
        if line and not line.startswith(" "):
            names.append(line.split()[0])
    assert sorted(names) == ["keyturn_clock", "keyturn_vcr"]


def test_a_cassette_fixture_without_vcrpy_names_the_extra_to_install(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import sys

        sys.modules["vcr"] = None  # as if vcrpy were not installed


        def test_uses_cassettes(keyturn_vcr):
            pass
        """
    )
    result = pytester.runpytest(*OPTIONS)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*need vcrpy, which is not installed*pip install pytest-keyturn*"])


def fresh_python(code: str) -> str:
    """What ``code`` prints in a fresh interpreter (imports there start from nothing)."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.strip()


def test_importing_the_kit_pulls_in_neither_vcrpy_nor_pytest() -> None:
    code = (
        "import sys, pytest_keyturn, pytest_keyturn.cassettes;"
        "print(sorted(m for m in ('vcr', 'pytest', 'yaml') if m in sys.modules))"
    )
    assert fresh_python(code) == "[]"


def test_the_pytest_plugin_loads_neither_keyturn_nor_httpx_nor_pydantic() -> None:
    # pytest loads this plugin in every run of an environment that has pytest-keyturn:
    # importing it must not make every test run pay for keyturn's client stack or vcrpy.
    code = (
        "import sys, pytest_keyturn.plugin;"
        "print(sorted(m for m in ('keyturn', 'httpx', 'pydantic', 'vcr', 'yaml')"
        " if m in sys.modules))"
    )
    assert fresh_python(code) == "[]"


def test_the_library_imports_none_of_the_tools() -> None:
    # (rich is not in the list: httpx imports it for its own command line where it is installed.)
    code = (
        "import sys, keyturn, keyturn.stores, keyturn.web, keyturn.starlette, keyturn.cli;"
        "tools = ('keyturn_emulator', 'pytest_keyturn', 'vcr', 'yaml', 'uvicorn', 'pytest',"
        " '_pytest');"
        "print(sorted(m for m in tools if m in sys.modules))"
    )
    assert fresh_python(code) == "[]"


def test_the_suite_is_reached_through_the_package() -> None:
    import pytest_keyturn
    from pytest_keyturn.conformance import ProviderConformance

    assert pytest_keyturn.ProviderConformance is ProviderConformance
    assert pytest_keyturn.FakeClock is FakeClock
    with pytest.raises(AttributeError):
        _ = pytest_keyturn.NoSuchName


def test_the_record_hint_matches_the_folder_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shared = record_command("google", "exchange_code", tmp_path / "cassettes" / "google")
    assert shared == "`keyturn record google exchange_code --cassette-dir cassettes`"
    flat = record_command("acme", "refresh_ok", tmp_path / "cassettes")
    assert flat == (
        "`keyturn record acme refresh_ok --cassette-dir cassettes --flat` "
        "with --refresh-token - (the refresh token on stdin)"
    )
    elsewhere = record_command("acme", "refresh_ok", Path("/somewhere/else"))
    assert "--cassette-dir /somewhere/else --flat" in elsewhere
