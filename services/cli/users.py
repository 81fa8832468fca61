"""``seymour user create|list|delete|passwd``: manage UI logins straight in the database (no API token
needed, so the first admin can be made before anything else exists)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from services.common.db.sessions import Sessions
from services.common.settings import Settings


def register(subparsers: Any) -> None:
    """Add ``user`` with its four actions."""
    user = subparsers.add_parser("user", help="manage the people who can log in to the web UI")
    actions = user.add_subparsers(dest="action", required=True)

    create = actions.add_parser("create", help="add a user (asks for the password)")
    create.add_argument("username")
    create.add_argument("--admin", action="store_true", help="may manage users (same as --role admin)")
    create.add_argument(
        "--role",
        choices=("admin", "editor", "viewer"),
        default=None,
        help="admin: everything; editor: checks and alerting; viewer: read only (default editor)",
    )
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    create.set_defaults(func=_create)

    listing = actions.add_parser("list", help="list users")
    listing.set_defaults(func=_list)

    remove = actions.add_parser("delete", help="remove a user")
    remove.add_argument("username")
    remove.set_defaults(func=_delete)

    passwd = actions.add_parser("passwd", help="set a user's password (ends their sessions)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    passwd.set_defaults(func=_passwd)


def read_password(from_stdin: bool) -> str:
    """The new password: one line of stdin, or typed twice at a prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise SystemExit("passwords do not match")
    return first


def _with_db(action: Callable[[Any], Awaitable[str]]) -> int:
    """Run ``action(sessions)`` against the configured (migrated) database; print its result."""
    from services.common.db.engine import make_engine, make_sessionmaker, upgrade
    from services.common.errors import DomainError

    settings = Settings()

    async def main() -> int:
        url = settings.resolved_database_url()
        await upgrade(url)
        engine = make_engine(url)
        try:
            print(await action(make_sessionmaker(engine)))
            return 0
        except DomainError as exc:
            details = "; ".join(f"{item['field']}: {item['message']}" for item in exc.errors)
            print(f"error: {exc.detail}" + (f" ({details})" if details else ""), file=sys.stderr)
            return 1
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _create(args: argparse.Namespace) -> int:
    from services.api.accounts import create_user

    password = read_password(args.password_stdin)

    async def action(sessions: Sessions) -> str:
        row = await create_user(sessions, args.username, password, is_admin=args.admin, role=args.role)
        return f"created {row.role} {row.username}"

    return _with_db(action)


def _list(args: argparse.Namespace) -> int:
    from services.api.accounts import list_users

    async def action(sessions: Sessions) -> str:
        rows = await list_users(sessions)
        if not rows:
            return "no users yet: seymour user create <name> --admin"
        width = max(len(row.username) for row in rows)
        return "\n".join(
            f"{row.username:<{width}}  {row.role:<6}  created {row.created_at:%Y-%m-%d %H:%M} UTC"
            for row in rows
        )

    return _with_db(action)


def _delete(args: argparse.Namespace) -> int:
    from services.api.accounts import delete_user, find_user

    async def action(sessions: Sessions) -> str:
        row = await find_user(sessions, username=args.username)
        await delete_user(sessions, row.id)
        return f"deleted {row.username}"

    return _with_db(action)


def _passwd(args: argparse.Namespace) -> int:
    from services.api.accounts import find_user, set_password

    password = read_password(args.password_stdin)

    async def action(sessions: Sessions) -> str:
        row = await find_user(sessions, username=args.username)
        await set_password(sessions, row.id, password)
        return f"password changed for {row.username}"

    return _with_db(action)
