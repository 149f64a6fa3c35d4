"""`schoolnet-collector user …` and `board share|unshare`: what they store, and one line and
exit 2 (with nothing changed) for every bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from support.tools import console_script

from collector.accounts.sessions import create_session, viewer_for_session
from collector.accounts.users import Refused, User, authenticate, list_users
from collector.cli import main
from collector.db.engine import open_engine
from collector.db.schema import boards

PASSWORD = "correct horse battery"


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["--db", url, "board", "add", "Stichting Voorbeeld"]) == 0
    return url


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "pw"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    return path


def run(db: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """The command in this process, its stdin given; (exit code, stdout, stderr)."""
    import contextlib
    import sys

    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([*args, "--db", db])
            except SystemExit as exc:  # argparse's own usage errors
                code = int(exc.code or 0)
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


def users_of(db: str) -> list[User]:
    engine = open_engine(db)
    try:
        return list_users(engine)
    finally:
        engine.dispose()


def test_user_add_from_a_file_and_from_stdin_then_list(db: str, password_file: Path) -> None:
    code, out, _ = run(db, "user", "add", "Anne", "--role", "board-admin", "--board", "stichting-voorbeeld",
                       "--name", "Anne de Vries", "--email", "anne@voorbeeld.nl",
                       "--password-file", str(password_file))
    assert (code, out) == (0, "anne\n")
    code, out, _ = run(db, "user", "add", "ana", "--role", "analyst", stdin="another long secret\n")
    assert (code, out) == (0, "ana\n")
    code, out, _ = run(db, "user", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("username\trole")
    assert lines[1].split("\t")[:6] == ["ana", "analyst", "-", "ana", "-", "active"]
    assert lines[2].split("\t")[:6] == ["anne", "board-admin", "stichting-voorbeeld", "Anne de Vries",
                                        "anne@voorbeeld.nl", "active"]
    code, out, _ = run(db, "user", "list", "--json")
    documents = json.loads(out)
    assert [d["username"] for d in documents] == ["ana", "anne"] and "password_hash" not in out
    engine = open_engine(db)
    assert isinstance(authenticate(engine, "anne", PASSWORD, "127.0.0.1"), User)
    assert isinstance(authenticate(engine, "ana", "another long secret", "127.0.0.1"), User)
    engine.dispose()


def test_passwd_disable_enable_and_role(db: str, password_file: Path) -> None:
    run(db, "user", "add", "anne", "--role", "board-viewer", "--board", "stichting-voorbeeld",
        "--password-file", str(password_file))
    engine = open_engine(db)
    secret = create_session(engine, users_of(db)[0].id, 3600)
    code, _, err = run(db, "user", "passwd", "anne", stdin="a newer long secret\n")
    assert code == 0 and "1 session(s) ended" in err
    assert viewer_for_session(engine, secret, 3600) is None
    assert authenticate(engine, "anne", PASSWORD, "127.0.0.1") == Refused("wrong_password")
    assert isinstance(authenticate(engine, "anne", "a newer long secret", "127.0.0.1"), User)

    secret = create_session(engine, users_of(db)[0].id, 3600)
    code, _, err = run(db, "user", "disable", "anne")
    assert code == 0 and "1 session(s) ended" in err and viewer_for_session(engine, secret, 3600) is None
    assert authenticate(engine, "anne", "a newer long secret", "127.0.0.1") == Refused("disabled")
    assert "disabled" in run(db, "user", "list")[1]
    assert run(db, "user", "enable", "anne")[0] == 0
    assert isinstance(authenticate(engine, "anne", "a newer long secret", "127.0.0.1"), User)

    code, _, err = run(db, "user", "role", "anne", "analyst")
    assert code == 0 and "anne is now analyst" in err
    assert users_of(db)[0].role == "analyst" and users_of(db)[0].board is None
    engine.dispose()


def test_board_share_and_unshare(db: str) -> None:
    engine = open_engine(db)

    def shared_at() -> object:
        with engine.connect() as conn:
            return conn.scalar(select(boards.c.shared_at))

    code, _, err = run(db, "board", "share", "stichting-voorbeeld")
    assert code == 0 and "stichting-voorbeeld: shared since 20" in err and shared_at() is not None
    code, _, err = run(db, "board", "unshare", "stichting-voorbeeld")
    assert code == 0 and err == "stichting-voorbeeld: not shared\n" and shared_at() is None
    code, _, err = run(db, "board", "share", "nope")
    assert code == 2 and err == "schoolnet-collector: error: no board with id 'nope' (see: board list)\n"
    engine.dispose()


@pytest.mark.parametrize("args, stdin, message", [
    (["user", "add", "Bad Name", "--role", "admin"], PASSWORD, "must be 1-100 lowercase"),
    (["user", "add", "x", "--role", "emperor"], PASSWORD, "unknown role 'emperor'"),
    (["user", "add", "x", "--role", "board-viewer"], PASSWORD, "belongs to a board"),
    (["user", "add", "x", "--role", "admin", "--board", "stichting-voorbeeld"], PASSWORD,
     "belongs to no board"),
    (["user", "add", "x", "--role", "board-admin", "--board", "nope"], PASSWORD, "no board with id 'nope'"),
    (["user", "add", "x", "--role", "admin"], "short\n", "at least 12 characters"),
    (["user", "add", "x", "--role", "admin"], "", "no password given"),
    (["user", "add", "x", "--role", "admin", "--password-file", "/no/such/file"], "", "No such file"),
    (["user", "add", "x", "--role", "admin", "--email", "not-an-address"], PASSWORD, "not an e-mail"),
    (["user", "add", "x"], PASSWORD, "--role"),
    (["user", "passwd", "nobody"], PASSWORD, "no account 'nobody'"),
    (["user", "passwd", "anne"], "short\n", "at least 12 characters"),
    (["user", "disable", "nobody"], "", "no account 'nobody'"),
    (["user", "enable", "nobody"], "", "no account 'nobody'"),
    (["user", "role", "anne", "board-admin"], "", "belongs to a board"),
    (["user", "role", "anne", "chief"], "", "unknown role"),
    (["user", "frobnicate"], "", "invalid choice"),
    (["board", "unshare"], "", "required"),
])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(db: str, password_file: Path, args: list[str],
                                                         stdin: str, message: str) -> None:
    run(db, "user", "add", "anne", "--role", "analyst", "--password-file", str(password_file))
    before = users_of(db)
    code, out, err = run(db, *args, stdin=stdin)
    assert code == 2, (code, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("schoolnet-collector"), err
    assert message in err and out == ""
    assert users_of(db) == before


def test_the_installed_command_reads_the_password_from_stdin(tmp_path: Path) -> None:
    env = dict(os.environ, SCHOOLNET_DB=f"sqlite:///{tmp_path / 'c.db'}")
    command = console_script("schoolnet-collector")
    added = subprocess.run([command, "user", "add", "root", "--role", "admin"], input=PASSWORD + "\n",
                           env=env, capture_output=True, text=True, timeout=60, check=False)
    assert (added.returncode, added.stdout, added.stderr) == (0, "root\n", "")
    again = subprocess.run([command, "user", "add", "root", "--role", "admin"], input=PASSWORD + "\n",
                           env=env, capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 2
    assert again.stderr == "schoolnet-collector: error: an account 'root' exists already\n"


def on_a_terminal(tmp_path: Path, args: list[str], answers: list[str]) -> tuple[int, str]:
    """Runs the installed command with a pseudo-terminal as its controlling terminal (where
    getpass asks), typing each answer after its prompt; (exit code, everything it printed)."""
    import pty
    import select as wait
    import time

    env = dict(os.environ, SCHOOLNET_DB=f"sqlite:///{tmp_path / 'c.db'}")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command itself
        os.execve(console_script("schoolnet-collector"), ["schoolnet-collector", *args], env)
    seen, pending, deadline = b"", list(answers), time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = wait.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if pending and seen.count(b":") > len(answers) - len(pending) and seen.rstrip().endswith(b":"):
            os.write(fd, pending.pop(0).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


def test_on_a_terminal_the_password_is_asked_twice(tmp_path: Path) -> None:
    code, shown = on_a_terminal(tmp_path, ["user", "add", "root", "--role", "admin"],
                                [PASSWORD, PASSWORD + " typo"])
    assert code == 2 and "the two passwords differ; nothing changed" in shown
    assert PASSWORD not in shown  # not echoed
    code, shown = on_a_terminal(tmp_path, ["user", "add", "root", "--role", "admin"], [PASSWORD, PASSWORD])
    assert code == 0 and "New password:" in shown and "Again:" in shown and "root" in shown
    engine = open_engine(f"sqlite:///{tmp_path / 'c.db'}")
    assert isinstance(authenticate(engine, "root", PASSWORD, "127.0.0.1"), User)
    engine.dispose()
