"""The tools' commands (``keyturn emulator``, ``demo``, ``record``, ``new-provider``) given bad
input: one line on stderr in command-line terms, status 2 when the command line is wrong and
1 when a well-formed command fails, and never a traceback."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keyturn import cli
from keyturn_emulator import Emulator
from pytest_keyturn.commands import record as record_cli


def console(*argv: str) -> list[str]:
    return [str(Path(sys.executable).parent / "keyturn"), *argv]


def outcome(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``keyturn ARGV`` run in this process."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage(code: int, err: str, command: str, *messages: str) -> None:
    assert code == 2, err
    assert err.startswith("keyturn: error: "), err
    assert err.count("\n") == 1, err
    assert f"(see 'keyturn {command} --help')" in err, err
    for message in messages:
        assert message in err, err
    assert "Traceback" not in err


# -- keyturn emulator ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "99999"], "argument --port: must be a port number from 0 to 65535"),
        (["--access-token-lifetime", "abc"], "argument --access-token-lifetime: must be a whole"),
    ],
)
def test_the_emulator_command_refuses_a_bad_value_as_a_subprocess(
    argv: list[str], message: str
) -> None:
    result = subprocess.run(
        console("emulator", *argv), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout == ""
    assert_usage(result.returncode, result.stderr, "emulator", message)
    assert "_seconds" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "-1"], "argument --port: must be a port number from 0 to 65535, got '-1'"),
        (["--port", "http"], "argument --port: must be a port number"),
        (["--refresh-token-lifetime", "1.5"], "argument --refresh-token-lifetime: must be a whole"),
        (["--access-token-lifetime", "-5"], "argument --access-token-lifetime: must be a whole"),
        (["--fault-rate", "abc"], "argument --fault-rate: must be a number from 0 to 1"),
        (["--drop-rate", "nan"], "argument --drop-rate: must be a number from 0 to 1"),
        (["--lost-answer-rate", "2"], "argument --lost-answer-rate: must be a number from 0 to 1"),
        (["--latency", "-1"], "argument --latency: must be a number of seconds"),
        (["--latency", "inf"], "argument --latency: must be a number of seconds"),
        (["--latency", "nan"], "argument --latency: must be a number of seconds"),
        (["--seed", "abc"], "argument --seed: must be a whole number, got 'abc'"),
        (
            ["--drop-rate", "0.6", "--lost-answer-rate", "0.5"],
            "--drop-rate and --lost-answer-rate add up to more than 1",
        ),
    ],
)
def test_the_emulator_command_refuses_a_bad_value_in_its_own_terms(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    def never(self: Emulator) -> Emulator:
        # Accepting the value would serve until Ctrl-C: fail instead of hanging.
        raise AssertionError(f"the emulator started with {argv}")

    monkeypatch.setattr(Emulator, "start", never)
    code, out, err = outcome(capsys, "emulator", *argv)
    assert out == ""
    assert_usage(code, err, "emulator", message)
    assert "_rate" not in err and "lost_answer_rate" not in err and "float" not in err


def test_the_emulator_refuses_a_port_or_latency_it_cannot_use() -> None:
    with pytest.raises(ValueError, match="port must be from 0 to 65535"):
        Emulator(port=99999)
    with pytest.raises(ValueError, match="latency must be a finite number"):
        Emulator(latency=math.inf)
    with pytest.raises(ValueError, match="latency"):
        Emulator(latency=math.nan)


def test_a_port_in_use_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with Emulator() as emu:
        port = emu.base_url.rsplit(":", 1)[1]
        code, out, err = outcome(capsys, "emulator", "--port", port)
    assert (code, out) == (1, "")
    assert err.startswith(f"keyturn: error: emulator: cannot listen on port {port}: ")
    assert err.count("\n") == 1


# -- keyturn demo -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "1", "2.5", "", "10001", "100000000000000"])
def test_the_demo_refuses_a_bad_number_of_callers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    import keyturn_emulator.demo.scenario

    def never(*args: object, **kwargs: object) -> None:
        # Accepting the value would start a demo with that many tasks: fail instead.
        raise AssertionError(f"the demo started with --callers {value}")

    monkeypatch.setattr(keyturn_emulator.demo.scenario, "run_demo", never)
    code, out, err = outcome(capsys, "demo", "--callers", value)
    assert out == ""
    assert_usage(code, err, "demo", "argument --callers: must be a whole number from 2 to 10000")
    assert "_callers" not in err


# -- keyturn record -----------------------------------------------------------------------


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYTURN_GOOGLE_CLIENT_ID", "fake-client-id")
    monkeypatch.setenv("KEYTURN_GOOGLE_CLIENT_SECRET", "fake-client-secret")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["exchange_code", "--port", "99999"], "argument --port: must be a port number"),
        (["exchange_code", "--port", "abc"], "argument --port: must be a port number"),
        (["exchange_code", "--timeout", "0"], "argument --timeout: must be a number of seconds"),
        (["exchange_code", "--timeout", "-5"], "argument --timeout: must be a number of seconds"),
        (["exchange_code", "--timeout", "nan"], "argument --timeout: must be a number of seconds"),
        (["exchange_code", "--timeout", "inf"], "argument --timeout: must be a number of seconds"),
        (
            ["weird"],
            "scenario 'weird' must start with exchange_, refresh_, userinfo, revoke or discovery",
        ),
        (["../../x"], "scenario '../../x' must be lowercase letters, digits and '_'"),
        (["exchange_code", "--param", "x"], "--param takes NAME=VALUE, got 'x'"),
        (["exchange_code", "--param", "scope=x"], "--param scope: use --scope"),
        (["exchange_code", "--param", "provider=x"], "--param provider: keyturn sets provider"),
        (["exchange_code", "--param", "redirect_uri=x"], "--param redirect_uri: use --port"),
        (["exchange_code", "--scope", ""], "argument --scope: must not be empty"),
    ],
)
def test_the_record_command_refuses_a_wrong_command_line_before_doing_anything(
    capsys: pytest.CaptureFixture[str],
    credentials: None,
    tmp_path: Path,
    argv: list[str],
    message: str,
) -> None:
    code, out, err = outcome(capsys, "record", "google", *argv, "--cassette-dir", str(tmp_path))
    assert out == ""
    assert_usage(code, err, "record", message)
    assert "authorize_url()" not in err
    assert not any(tmp_path.iterdir())


def test_a_cassette_folder_that_cannot_be_made_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], credentials: None, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, out, err = outcome(
        capsys, "record", "google", "exchange_code", "--cassette-dir", str(blocker / "sub")
    )
    assert (code, out) == (1, "")
    assert err.startswith("keyturn: error: ") and str(blocker) in err
    assert "Not a directory" in err
    assert err.count("\n") == 1


@pytest.mark.slow
def test_a_token_on_stdin_that_is_not_text_is_one_line_and_never_echoed() -> None:
    environ = {
        **os.environ,
        "KEYTURN_GOOGLE_CLIENT_ID": "fake-client-id",
        "KEYTURN_GOOGLE_CLIENT_SECRET": "fake-client-secret",
    }
    result = subprocess.run(
        console("record", "google", "refresh_ok", "--refresh-token", "-"),
        input=b"fake\xff\xfetoken\n",
        capture_output=True,
        env=environ,
        timeout=60,
        check=False,
    )
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert err == (
        "keyturn: error: the token read from stdin is not printable ASCII (as OAuth tokens are)\n"
    )


def test_read_tokens_refuses_a_line_with_spaces_or_controls() -> None:
    import io

    import keyturn

    args = cli.build_parser().parse_args(["record", "x", "refresh_ok", "--refresh-token", "-"])
    for line in ("two words", "tab\there", "caf\u00e9"):
        with pytest.raises(keyturn.KeyturnError, match="not printable ASCII") as refused:
            record_cli.read_tokens(args, {}, io.StringIO(line + "\n"))
        assert line not in str(refused.value)


# -- keyturn new-provider -----------------------------------------------------------------


@pytest.mark.parametrize("display_name", ['Acme "ID"', "Acme\\ID", "Acme\nID", "Acme\tID"])
def test_a_display_name_that_would_break_the_written_files_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, display_name: str
) -> None:
    target = tmp_path / "acme"
    code, out, err = outcome(
        capsys, "new-provider", "acme", "--display-name", display_name, "--output", str(target)
    )
    assert out == ""
    assert_usage(code, err, "new-provider", "holds a quote, a backslash or a control character")
    assert not target.exists()


def test_a_folder_that_cannot_be_written_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, out, err = outcome(capsys, "new-provider", "acme", "--output", str(blocker / "acme"))
    assert (code, out) == (1, "")
    assert err.startswith("keyturn: error: ") and str(blocker) in err
    assert err.count("\n") == 1
