"""`schoolnet-collector user …`: the accounts of people who sign in to the collector's pages
(collector/accounts/users.py; roles in collector/accounts/roles.py, docs/accounts.md).

A password never goes on the command line, where `ps` and the shell's history would show it:
it comes from a file (`--password-file`), is asked twice on a terminal, or is read as one
line from standard input (for scripts: `printf '%s\\n' "$pw" | … user add …`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path
from typing import Any

from agent.cli import OneLineParser

ROLE_HELP = "admin, board-admin, board-viewer or analyst"


def register(commands: Any, imports: Any, exports: Any) -> None:
    user = commands.add_parser("user", help="accounts of people who sign in to the web pages")
    actions = user.add_subparsers(metavar="ACTION", required=True, parser_class=OneLineParser)

    add = actions.add_parser("add", help="add an account (the password from --password-file, a "
                             "terminal prompt, or one line on stdin)")
    add.add_argument("username", help="lowercase letters, digits and . _ - @ (1-100)")
    add.add_argument("--role", required=True, help=ROLE_HELP)
    add.add_argument("--board", help="the board's id: required for board-admin and board-viewer; an "
                     "analyst's home board (seen in full)")
    add.add_argument("--name", help="the name shown on pages (default: the username)")
    add.add_argument("--email", help="e-mail address")
    add.add_argument("--password-file", type=Path, metavar="FILE", help="read the password from "
                     "the first line of FILE")
    add.set_defaults(run=cmd_user_add)

    listing = actions.add_parser("list", help="list accounts: username, role, board, name, state, "
                                 "last sign-in")
    listing.add_argument("--json", action="store_true", help="one JSON array of accounts")
    listing.set_defaults(run=cmd_user_list)

    passwd = actions.add_parser("passwd", help="set a new password; every session of the account ends")
    passwd.add_argument("username")
    passwd.add_argument("--password-file", type=Path, metavar="FILE",
                        help="read the password from the first line of FILE")
    passwd.set_defaults(run=cmd_user_passwd)

    disable = actions.add_parser("disable", help="disable an account; its sessions end at once")
    disable.add_argument("username")
    disable.set_defaults(run=cmd_user_disable)
    enable = actions.add_parser("enable", help="enable a disabled account again (and lift its throttling)")
    enable.add_argument("username")
    enable.set_defaults(run=cmd_user_enable)

    role = actions.add_parser("role", help="change an account's role (applies at its next request)")
    role.add_argument("username")
    role.add_argument("role", help=ROLE_HELP)
    role.add_argument("--board", help="the board's id (as for user add)")
    role.set_defaults(run=cmd_user_role)


def read_password(path: Path | None) -> str:
    """The new password from a file, a terminal (asked twice) or one line of stdin."""
    from collector.cli import UsageError

    if path is not None:
        try:
            with path.open(encoding="utf-8") as handle:
                password = handle.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--password-file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    elif sys.stdin.isatty():
        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            raise UsageError("the two passwords differ; nothing changed")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("no password given (--password-file, a terminal, or one line on stdin)")
    return password


def cmd_user_add(args: argparse.Namespace) -> int:
    from collector.accounts.roles import check_role
    from collector.accounts.users import add_user, check_username
    from collector.cli import open_store

    # What can be checked without the store, before anyone is asked for a password.
    check_username(args.username)
    check_role(args.role, args.board)
    engine = open_store(args)
    user = add_user(engine, args.username, args.role, args.board, args.name, args.email,
                    read_password(args.password_file))
    print(user.username)
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from collector.accounts.users import list_users
    from collector.cli import open_store

    accounts = list_users(open_store(args))
    if args.json:
        print(json.dumps([user.as_document() for user in accounts], indent=2))
        return 0
    now = time.time()
    print("username\trole\tboard\tname\temail\tstate\tlast sign-in")
    for user in accounts:
        state = ("disabled" if user.disabled_at is not None
                 else f"locked until {_utc(user.locked_until)}" if user.locked(now) and user.locked_until
                 else "active")
        print("\t".join((user.username, user.role.replace("_", "-"), user.board or "-", user.display_name,
                         user.email or "-", state,
                         _utc(user.last_login_at) if user.last_login_at else "never")))
    return 0


def cmd_user_passwd(args: argparse.Namespace) -> int:
    from collector.accounts.users import get_user, set_password
    from collector.cli import open_store

    engine = open_store(args)
    user = get_user(engine, args.username)  # an unknown name fails before the prompt
    ended = set_password(engine, user.username, read_password(args.password_file))
    print(f"password of {user.username} changed; {ended} session(s) ended", file=sys.stderr)
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    from collector.accounts.users import disable_user
    from collector.cli import open_store

    ended = disable_user(open_store(args), args.username)
    print(f"disabled {args.username.strip().lower()}; {ended} session(s) ended", file=sys.stderr)
    return 0


def cmd_user_enable(args: argparse.Namespace) -> int:
    from collector.accounts.users import enable_user
    from collector.cli import open_store

    enable_user(open_store(args), args.username)
    print(f"enabled {args.username.strip().lower()}", file=sys.stderr)
    return 0


def cmd_user_role(args: argparse.Namespace) -> int:
    from collector.accounts.users import set_role
    from collector.cli import open_store

    user = set_role(open_store(args), args.username, args.role, args.board)
    where = f" of {user.board}" if user.board else ""
    print(f"{user.username} is now {user.role.replace('_', '-')}{where}", file=sys.stderr)
    return 0


def _utc(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds or 0))
