"""``keyturn sessions sweep``: delete the rows of ended sessions from a token store."""

from __future__ import annotations

import importlib.metadata
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from keyturn.cli import main
from keyturn.stores import SQLiteTokenStore
from tests.stores.test_stores import fresh_tokens

pytest_plugins = ["tests.stores._redis_server"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fill(store: object) -> None:
    """Two rows that ended, one that has not, one that never ends (on the real clock)."""
    now = time.time()
    save = store.save  # type: ignore[attr-defined]
    save("keyturn-session:ended-1", fresh_tokens(), expires_at=now - 3600)
    save("keyturn-session:ended-2", fresh_tokens(), expires_at=now - 1)
    save("keyturn-session:live", fresh_tokens(), expires_at=now + 3600)
    save("user-42", fresh_tokens())


def test_the_command_is_installed() -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group="keyturn.commands")}
    assert "sessions" in names


def test_sweep_deletes_the_ended_rows_of_a_sqlite_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "sessions.db"
    with SQLiteTokenStore(path) as store:
        fill(store)
    code, out, err = run(capsys, "sessions", "sweep", "--sqlite", str(path))
    assert (code, err) == (0, "")
    assert out == f"deleted 2 ended rows from {path}\n"
    with SQLiteTokenStore(path) as store:
        assert store.load("keyturn-session:ended-1") is None
        assert store.load("keyturn-session:ended-2") is None
        assert store.load("keyturn-session:live") is not None
        assert store.load("user-42") is not None
    code, out, _ = run(capsys, "sessions", "sweep", "--sqlite", str(path))
    assert (code, out) == (0, f"deleted 0 ended rows from {path}\n")


def test_sweep_refuses_a_file_that_does_not_exist_and_does_not_create_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.db"
    code, out, err = run(capsys, "sessions", "sweep", "--sqlite", str(missing))
    assert code == 1 and out == ""
    assert err == f"keyturn: error: {missing}: no such file\n"
    assert not missing.exists()


def test_sweep_refuses_a_file_that_is_not_a_token_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database, but long enough to be looked at by SQLite " * 20)
    code, _, err = run(capsys, "sessions", "sweep", "--sqlite", str(text))
    assert code == 1
    assert err.startswith(f"keyturn: error: {text}: ")
    assert "Traceback" not in err
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    code, _, err = run(capsys, "sessions", "sweep", "--sqlite", str(other))
    assert code == 1
    assert err == f"keyturn: error: {other}: not a keyturn token store\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["sessions", "sweep"],
        ["sessions", "sweep", "--sqlite", "a.db", "--redis", "redis://127.0.0.1:9/0"],
        ["sessions"],
    ],
    ids=["no-store", "two-stores", "no-action"],
)
def test_sweep_needs_exactly_one_store(
    capsys: pytest.CaptureFixture[str], argv: list[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    _, err = capsys.readouterr()
    assert exited.value.code == 2
    assert err.startswith("keyturn: error: ")
    assert err.count("\n") == 1


@pytest.mark.redis
def test_sweep_deletes_the_ended_rows_of_a_redis_database(
    capsys: pytest.CaptureFixture[str], redis_url: str, redis_client: redis.Redis
) -> None:
    from keyturn.stores.redis import RedisTokenStore

    # Written by a host whose clock is two hours behind: Redis has not dropped them yet.
    fill(RedisTokenStore(redis_client, prefix="app:", clock=lambda: time.time() - 7200))
    assert redis_client.exists("app:tokens:keyturn-session:ended-1") == 1
    code, out, err = run(capsys, "sessions", "sweep", "--redis", redis_url, "--prefix", "app:")
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    assert (code, err) == (0, "")
    assert out == f"deleted 2 ended rows from RedisTokenStore(127.0.0.1:{port}/0, prefix='app:')\n"
    store = RedisTokenStore(redis_client, prefix="app:")
    assert store.load("keyturn-session:ended-1") is None
    assert store.load("keyturn-session:live") is not None
    assert store.load("user-42") is not None


@pytest.mark.redis
def test_sweep_never_shows_a_redis_password(
    capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    url = f"redis://:fake-password@127.0.0.1:{port}/0"
    code, out, err = run(capsys, "sessions", "sweep", "--redis", url)
    assert "fake-password" not in out + err
    assert code in (0, 1)


def test_the_command_runs_as_a_program(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    with SQLiteTokenStore(path) as store:
        fill(store)
    done = subprocess.run(
        [sys.executable, "-m", "keyturn", "sessions", "sweep", "--sqlite", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"deleted 2 ended rows from {path}\n",
        "",
    )
