"""``ivr users``: console users (add, remove, list). Passwords never come from the command line
(shell history, ``ps``): from ``IVR_CONSOLE_PASSWORD``, from standard input with
``--password-stdin``, or typed twice at a prompt. Stored as argon2 hashes in Redis."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from ivr.cli import UsageError, config_dir
from ivr.config import Settings, load_config

HELP = "web console users: add NAME --role admin|supervisor|agent [--agent SEAT], remove, list"
PASSWORD_VARIABLE = "IVR_CONSOLE_PASSWORD"


def register(parser: argparse.ArgumentParser) -> None:
    from console.users import ROLES

    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    add = actions.add_parser("add", help="add a user, or set the role and password of an existing one")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--agent", default=None, help="an agent user's seat (config/queues.yaml agents:)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    remove = actions.add_parser("remove", help="remove a user (their sessions and open live pages end)")
    remove.add_argument("name")
    actions.add_parser("list", help="users and their roles (the default)")


def run(args: argparse.Namespace) -> int:
    settings = load_config(config_dir(args)).settings
    action = args.action or "list"
    password = read_password(args) if action == "add" else ""
    return asyncio.run(_run(args, action, settings, password))


def read_password(args: argparse.Namespace) -> str:
    if os.environ.get(PASSWORD_VARIABLE):
        return os.environ[PASSWORD_VARIABLE]
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise UsageError(f"no password: set {PASSWORD_VARIABLE}, use --password-stdin, or run on a terminal")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise UsageError("the two passwords differ; nothing changed")
    return first


async def _run(args: argparse.Namespace, action: str, settings: Settings, password: str) -> int:
    from console.users import UserError, UserStore, check_user
    from ivr.commands.common import os_reader
    from ivr.store import redis_client

    client = redis_client(settings.redis, timeout=5)
    store = UserStore(client)
    try:
        if action == "add":
            try:
                check_user(args.name, args.role, args.agent, set(settings.agents))
                await store.add(args.name, args.role, password, agent=args.agent, by=os_reader().user)
            except UserError as exc:
                raise UsageError(str(exc)) from None
            print(f"user {args.name} ({args.role}{', seat ' + args.agent if args.agent else ''}) saved")
        elif action == "remove":
            if not await store.remove(args.name):
                raise UsageError(f"no user {args.name!r}")
            print(f"user {args.name} removed")
        else:
            for user in await store.all():
                print(f"{user.name:20} {user.role:11} {user.agent or '':12} {user.created}  by {user.created_by}")
    finally:
        await client.aclose()
    return 0
