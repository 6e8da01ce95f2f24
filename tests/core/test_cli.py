"""The ``keyturn`` command line."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import keyturn
from keyturn.cli import build_parser, main
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
    # keyturn-gitlab wraps the two token requests to read responses without expires_in.
    assert hooks["gitlab"] == ["keyturn_exchange_code", "keyturn_refresh"]
    # The tutorial's example plugin is only a ProviderSpec: keyturn's defaults serve every hook.
    assert hooks["spotify"] == []


#: The first-party provider plugins of this repository.
SHIPPED = {
    "apple",
    "auth0",
    "discord",
    "github",
    "gitlab",
    "google",
    "keycloak",
    "microsoft",
    "okta",
    "slack",
}


def test_providers_lists_the_ten_shipped_providers_with_their_rotation_and_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "providers", "--json")
    rows = {row["id"]: row for row in json.loads(out)}
    assert code == 0
    assert set(rows) >= SHIPPED
    shipped = {pid: rows[pid] for pid in SHIPPED}
    assert all(row["distribution"] == f"keyturn-{pid}" for pid, row in shipped.items())
    kinds = {pid: row["rotation"] for pid, row in shipped.items()}
    assert kinds == {
        "apple": "none",
        "google": "none",
        "github": "rotate",
        "gitlab": "rotate",
        "slack": "rotate",
        "discord": "rotate",
        "microsoft": "keep_old",
        "keycloak": "keep_old",
        "okta": "detect_reuse",
        "auth0": "detect_reuse",
    }
    settings = {pid: [s["name"] for s in row["settings"]] for pid, row in shipped.items()}
    assert "domain" in settings["okta"] and "rotation" in settings["okta"]
    assert settings["keycloak"][:2] == ["server_url", "realm"]
    assert settings["google"] == [] and settings["github"] == []
    okta_domain = next(s for s in rows["okta"]["settings"] if s["name"] == "domain")
    assert okta_domain == {
        "name": "domain",
        "kind": "host",
        "default": None,
        "variable": "KEYTURN_OKTA_DOMAIN",
    }
    code, text, _ = run(capsys, "providers")
    assert "  setting       domain (KEYTURN_OKTA_DOMAIN, required)" in text
    assert "rotates refresh tokens (the old one stays valid)" in text  # microsoft, keycloak
    assert "with reuse detection after a 30 s grace, unless the deployment says" in text


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


# -- providers declared by issuer (keyturn-oidc) -------------------------------------------------


#: Installed plugins whose specs read a discovery document on the internet
#: (keyturn-microsoft's, at login.microsoftonline.com), kept out of ``providers --discover``
#: in these offline tests.
ONLINE_PLUGINS = "microsoft"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's clients load every installed plugin but :data:`ONLINE_PLUGINS`."""
    environ = {"KEYTURN_DISABLE_PLUGINS": ONLINE_PLUGINS}
    monkeypatch.setattr(
        "keyturn.client._default_pm", lambda: keyturn.get_plugin_manager(environ=environ)
    )


@pytest.fixture
def declared(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Declare OpenID Connect providers in the environment, as ``KEYTURN_<NAME>=value``."""

    def declare(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(f"KEYTURN_{name}", value)

    return declare


def test_providers_lists_declared_providers_with_their_issuers(
    capsys: pytest.CaptureFixture[str], declared: Callable[..., None]
) -> None:
    declared(
        OIDC_PROVIDERS="corp tenant",
        CORP_ISSUER="https://id.corp.example",
        TENANT_ISSUER="https://dev-abc123.us.auth0.com/",
        TENANT_NAME="Auth0",
    )
    code, out, err = run(capsys, "providers")
    assert (code, err) == (0, "")
    corp = out.split("\ncorp: ", 1)[1].split("\n\n", 1)[0].split("\n")
    assert corp[:5] == [
        "id.corp.example (keyturn-oidc 0.1.0)",
        "  issuer        https://id.corp.example",
        "  endpoints     from https://id.corp.example/.well-known/openid-configuration",
        "  behaviour     PKCE S256, refresh tokens kept or rotated, as each answer says",
        "  overrides     none (keyturn's RFC 6749 defaults)",
    ]
    tenant = (
        "\ntenant: Auth0 (keyturn-oidc 0.1.0)\n  issuer        https://dev-abc123.us.auth0.com/\n"
    )
    assert tenant in "\n" + out


def test_providers_json_carries_the_issuer_and_the_discovery_url(
    capsys: pytest.CaptureFixture[str], declared: Callable[..., None]
) -> None:
    declared(OIDC_PROVIDERS="corp", CORP_ISSUER="https://id.corp.example")
    code, out, _ = run(capsys, "providers", "--json")
    rows = {row["id"]: row for row in json.loads(out)}
    assert code == 0
    corp = rows["corp"]
    assert corp["issuer"] == "https://id.corp.example"
    assert corp["discovery_url"] == "https://id.corp.example/.well-known/openid-configuration"
    assert (corp["plugin"], corp["distribution"], corp["hooks"]) == ("oidc", "keyturn-oidc", [])
    assert corp["authorization_endpoint"] is None and corp["token_endpoint"] is None
    assert "discovered" not in corp and "error" not in corp
    assert corp["rotates_refresh_tokens"] is None  # the document cannot say; each answer does
    assert rows["google"]["issuer"] == "https://accounts.google.com"
    assert rows["google"]["discovery_url"] is None


def test_rotation_is_shown_as_declared_or_as_unknown_for_a_discovered_spec(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyturn
    import keyturn.cli.providers
    import keyturn_oidc

    specs = [
        keyturn_oidc.provider("declared", "https://a.example", rotates_refresh_tokens=True),
        keyturn_oidc.provider("kept", "https://b.example", rotates_refresh_tokens=False),
        keyturn_oidc.provider("unsaid", "https://c.example"),
    ]
    monkeypatch.setattr(
        keyturn.cli.providers, "Keyturn", lambda: keyturn.Keyturn(providers=specs, environ={})
    )
    code, out, _ = run(capsys, "providers", "--json")
    rows = {row["id"]: row for row in json.loads(out)}
    assert code == 0
    assert [rows[pid]["rotates_refresh_tokens"] for pid in ("declared", "kept", "unsaid")] == [
        True,
        False,
        None,
    ]
    assert rows["google"]["rotates_refresh_tokens"] is False  # no discovery: as the spec says


def test_a_bad_declaration_is_one_line_naming_the_variable(
    capsys: pytest.CaptureFixture[str], declared: Callable[..., None]
) -> None:
    declared(OIDC_PROVIDERS="corp", CORP_ISSUER="http://id.corp.example")
    code, out, err = run(capsys, "providers")
    assert (code, out) == (1, "")
    assert err.startswith("keyturn: error: KEYTURN_CORP_ISSUER is not https")
    assert err.count("\n") == 1


class Published:
    """Discovery documents and key sets served on 127.0.0.1, by path."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        served = self.documents

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = served.get(self.path)
                data = json.dumps(body).encode() if body is not None else b"{}"
                self.send_response(200 if body is not None else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, realm: str, **changes: Any) -> str:
        """Serve a realm's document and key set; return its issuer."""
        from tests.core._oidc import public_jwk, rsa_key

        issuer = f"{self.base}/realms/{realm}"
        oidc = f"{issuer}/protocol/openid-connect"
        document = {
            "issuer": issuer,
            "authorization_endpoint": f"{oidc}/auth",
            "token_endpoint": f"{oidc}/token",
            "userinfo_endpoint": f"{oidc}/userinfo",
            "jwks_uri": f"{oidc}/certs",
            "end_session_endpoint": f"{oidc}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "HS256"],
            **changes,
        }
        self.documents[f"/realms/{realm}/.well-known/openid-configuration"] = document
        self.documents[f"/realms/{realm}/protocol/openid-connect/certs"] = {
            "keys": [public_jwk(rsa_key(), "k1")]
        }
        return issuer


@pytest.fixture
def published() -> Iterator[Published]:
    site = Published()
    yield site
    site.server.shutdown()
    site.server.server_close()


def test_providers_discover_shows_the_endpoints_of_each_document(
    capsys: pytest.CaptureFixture[str],
    declared: Callable[..., None],
    published: Published,
    offline: None,
) -> None:
    issuer = published.publish("apps")
    declared(OIDC_PROVIDERS="sso", SSO_ISSUER=issuer)
    code, out, err = run(capsys, "providers", "--discover")
    assert (code, err) == (0, "")
    oidc = f"{issuer}/protocol/openid-connect"
    sso = out.split("\nsso: ", 1)[1].split("\n")
    assert sso[:11] == [
        "127.0.0.1 (keyturn-oidc 0.1.0)",
        f"  issuer        {issuer}",
        f"  discovery     {issuer}/.well-known/openid-configuration",
        f"  authorization {oidc}/auth",
        f"  token         {oidc}/token",
        f"  userinfo      {oidc}/userinfo",
        f"  end_session   {oidc}/logout",
        f"  jwks_uri      {oidc}/certs",
        "  signatures    ES256, RS256",
        "  behaviour     PKCE S256, refresh tokens kept or rotated, as each answer says",
        "  overrides     none (keyturn's RFC 6749 defaults)",
    ]
    code, out, _ = run(capsys, "providers", "--discover", "--json")
    row = {row["id"]: row for row in json.loads(out)}["sso"]
    assert code == 0
    assert row["discovered"] is True
    assert row["token_endpoint"] == f"{oidc}/token"
    assert row["revocation_endpoint"] is None
    assert row["id_token_signing_algs"] == ["ES256", "RS256"]


def test_providers_discover_reports_each_failure_on_one_line_and_exits_1(
    capsys: pytest.CaptureFixture[str],
    declared: Callable[..., None],
    published: Published,
    offline: None,
) -> None:
    good = published.publish("good")
    other = published.publish("other")
    declared(
        OIDC_PROVIDERS="good mixed gone",
        GOOD_ISSUER=good,
        MIXED_ISSUER=f"{published.base}/realms/mixed",
        MIXED_DISCOVERY_URL=f"{other}/.well-known/openid-configuration",
        GONE_ISSUER=f"{published.base}/realms/gone",
    )
    code, out, err = run(capsys, "providers", "--discover")
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"keyturn: error: gone: the discovery document at {published.base}")
    assert "HTTP 404" in lines[0]
    assert lines[1].startswith("keyturn: error: mixed: the discovery document at")
    assert f"names the issuer '{other}'" in lines[1] and "(issuer;" in lines[1]
    # The others are listed all the same, the failed ones as declared.
    assert f"\ngood: 127.0.0.1 (keyturn-oidc 0.1.0)\n  issuer        {good}\n  discovery" in out
    assert f"\n  endpoints     from {published.base}/realms/gone/.well-known/" in out
    code, out, err = run(capsys, "providers", "--discover", "--json")
    rows = {row["id"]: row for row in json.loads(out)}
    assert code == 1
    assert rows["good"]["discovered"] is True
    assert rows["gone"]["discovered"] is False
    assert "HTTP 404" in rows["gone"]["error"]
    assert err.count("\n") == 2


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
        (
            ["authorize-url", "google", "--redirect-uri", "http://l/cb"],
            "no client id for google: pass --client-id or set KEYTURN_GOOGLE_CLIENT_ID",
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
                "allow_signup=false",
            ],
            "does not accept the authorize parameter",
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


# -- usage errors, in command-line terms; no traceback, whatever the input ---------------------


def outcome(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``keyturn ARGV``, whether argparse exits or main
    returns."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


GOOGLE = ["authorize-url", "google", "--client-id", "x", "--redirect-uri", "http://l/cb"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*GOOGLE, "--param", "novalue"], "--param takes NAME=VALUE, got 'novalue'"),
        ([*GOOGLE, "--param", "=x"], "--param takes NAME=VALUE"),
        ([*GOOGLE, "--param", "scope=email"], "--param scope: use --scope"),
        (
            [*GOOGLE, "--param", "redirect_uri=http://l/x"],
            "--param redirect_uri: use --redirect-uri",
        ),
        ([*GOOGLE, "--param", "client_id=y"], "--param client_id: use --client-id"),
        ([*GOOGLE, "--param", "state=x"], "--param state: keyturn sets state itself"),
        ([*GOOGLE, "--param", "nonce=x"], "--param nonce: keyturn sets nonce itself"),
        ([*GOOGLE, "--param", "provider=x"], "--param provider: keyturn sets provider itself"),
        ([*GOOGLE, "--param", "pkce=x"], "--param pkce"),
        ([*GOOGLE, "--param", "scopes=x"], "--param scopes"),
        ([*GOOGLE, "--param", "code_challenge=x"], "--param code_challenge"),
        ([*GOOGLE, "--scope", ""], "argument --scope: must not be empty"),
        ([*GOOGLE, "--client-id", ""], "argument --client-id: must not be empty"),
        (
            ["authorize-url", "google", "--client-id", "x", "--redirect-uri", "relative"],
            "--redirect-uri must be an absolute http(s) URL without a fragment, got 'relative'",
        ),
        (
            ["authorize-url", "google", "--client-id", "x", "--redirect-uri", "http://l/cb#f"],
            "--redirect-uri must be an absolute http(s) URL",
        ),
        (
            ["authorize-url", "google", "--client-id", "x", "--redirect-uri", "http://l:99999/"],
            "--redirect-uri must be an absolute http(s) URL",
        ),
        (
            ["authorize-url", "google", "--client-id", "x", "--redirect-uri", "http://[::1/cb"],
            "--redirect-uri must be an absolute http(s) URL",
        ),
    ],
)
def test_a_wrong_command_line_exits_2_with_one_line_in_its_own_terms(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = outcome(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("keyturn: error: ") and message in err, err
    assert err.count("\n") == 1
    assert "(see 'keyturn authorize-url --help')" in err
    for python in ("authorize_url()", "credentials=", "Traceback", "TypeError"):
        assert python not in err


def test_missing_credentials_name_the_option_and_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEYTURN_GOOGLE_CLIENT_ID", raising=False)
    code, out, err = outcome(capsys, "authorize-url", "google", "--redirect-uri", "http://l/cb")
    assert (code, out) == (1, "")
    assert err == (
        "keyturn: error: no client id for google: pass --client-id or set "
        "KEYTURN_GOOGLE_CLIENT_ID\n"
    )


def typed_options() -> list[tuple[str, str]]:
    """Every ``(command, option)`` whose value argparse converts, over every command."""
    import argparse

    found: list[tuple[str, str]] = []
    parser = build_parser()
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for command, sub in action.choices.items():
            for option in sub._actions:
                if option.type is not None and option.option_strings:
                    found.append((command, option.option_strings[-1]))
    return found


def test_every_typed_option_is_found() -> None:
    options = typed_options()
    for expected in [
        ("emulator", "--port"),
        ("emulator", "--access-token-lifetime"),
        ("emulator", "--latency"),
        ("demo", "--callers"),
        ("record", "--port"),
        ("record", "--timeout"),
    ]:
        assert expected in options


@pytest.mark.parametrize("value", ["not-a-value", "", "1e999", "nan", "-1"])
def test_no_option_value_is_refused_in_python_terms(
    capsys: pytest.CaptureFixture[str], value: str
) -> None:
    for command, option in typed_options():
        code, _, err = outcome(capsys, command, f"{option}={value}", "--help")
        if code == 0:  # the value was accepted: --help printed the usage
            continue
        assert code == 2, (command, option, err)
        assert err.startswith(f"keyturn: error: argument {option}: "), err
        assert err.count("\n") == 1, err
        # argparse names the converter ("invalid _seconds value", "invalid int value").
        assert re.search(r"invalid \S+ value", err) is None, err
        assert "Traceback" not in err


def test_an_unexpected_error_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyturn.cli.providers

    def broken() -> list[dict[str, Any]]:
        raise RuntimeError("something keyturn did not expect")

    monkeypatch.setattr(keyturn.cli.providers, "rows", broken)
    monkeypatch.delenv("KEYTURN_TRACEBACK", raising=False)
    code, out, err = outcome(capsys, "providers")
    assert (code, out) == (1, "")
    assert err.startswith("keyturn: error: unexpected RuntimeError: something keyturn did not")
    assert "KEYTURN_TRACEBACK=1" in err
    assert err.count("\n") == 1
    monkeypatch.setenv("KEYTURN_TRACEBACK", "1")
    with pytest.raises(RuntimeError):
        main(["providers"])


def test_a_file_error_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyturn.cli.providers

    def unreadable() -> list[dict[str, Any]]:
        raise PermissionError(13, "Permission denied", "/etc/keyturn")

    monkeypatch.setattr(keyturn.cli.providers, "rows", unreadable)
    code, out, err = outcome(capsys, "providers")
    assert (code, out) == (1, "")
    assert err == "keyturn: error: /etc/keyturn: Permission denied\n"


def test_ctrl_c_is_one_line_and_exit_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyturn.cli.providers

    def interrupted() -> list[dict[str, Any]]:
        raise KeyboardInterrupt

    monkeypatch.setattr(keyturn.cli.providers, "rows", interrupted)
    code, out, err = outcome(capsys, "providers")
    assert (code, out, err) == (130, "", "keyturn: interrupted\n")


def console(*argv: str) -> list[str]:
    return [str(Path(sys.executable).parent / "keyturn"), *argv]


@pytest.mark.slow
@pytest.mark.parametrize("unbuffered", [True, False], ids=["unbuffered", "buffered"])
@pytest.mark.parametrize("argv", [["providers"], ["providers", "--json"], ["--help"]], ids=" ".join)
def test_a_reader_that_went_away_ends_the_command_quietly(
    argv: list[str], unbuffered: bool
) -> None:
    # A real pipe whose reading end is closed before keyturn writes: every write fails.
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    try:
        result = subprocess.run(
            console(*argv), stdout=write_end, stderr=subprocess.PIPE, env=env, timeout=60
        )
    finally:
        os.close(write_end)
    assert result.stderr == b""
    assert result.returncode == 141  # 128 + SIGPIPE, as a shell reports `yes | head -1`


@pytest.mark.slow
def test_providers_piped_into_head_prints_one_line_and_no_traceback() -> None:
    keyturn_script = " ".join(console("providers"))
    result = subprocess.run(
        ["sh", "-c", f"{keyturn_script} | head -n 1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 1
    assert result.stdout.startswith("apple: ")  # the first id in order


def test_an_argument_that_is_not_utf8_text_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Bytes the locale cannot decode reach sys.argv as lone surrogates (PEP 383).
    undecodable = os.fsdecode(b"http://l/\xff")
    code, out, err = outcome(
        capsys, "authorize-url", "google", "--client-id", "x", "--redirect-uri", undecodable
    )
    assert (code, out) == (2, "")
    assert err == (
        "keyturn: error: the argument 'http://l/\\xff' is not UTF-8 text (see 'keyturn --help')\n"
    )
