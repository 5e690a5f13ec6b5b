"""``dms-simulator``: serve the fake cloud from the command line until SIGTERM or SIGINT.

End-to-end tests run the operator as a process against the simulator as a process, and a newcomer
wants to poke at it with curl; both need one command that prints where it listens (one line,
``listening on http://HOST:PORT``, flushed) and exits cleanly with 0 when told to stop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from dms_simulator.auth import ACCOUNT_FORM, Account, TokenGrant, parse_rate_limit, split_projects
from dms_simulator.config import UNDELETABLE_BATCH_ID_MODES, UNKNOWN_BATCH_ID_MODES, SimulatorConfig
from dms_simulator.server import SimulatorServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dms-simulator",
        description="A fake Huawei Cloud DMS for RocketMQ management API (with an admin API under /_sim/).",
    )
    listen = parser.add_argument_group("listening")
    listen.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    listen.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    listen.add_argument("--tls", action="store_true", help="serve HTTPS with a fresh self-signed CA")
    listen.add_argument("--ca-file", help="with --tls: write the CA certificate (PEM) here")
    listen.add_argument("--access-log", action="store_true", help="log every request to stderr")

    creds = parser.add_argument_group(
        "credentials",
        "Give at least one account or token. --access-key/--secret-key/--project-id are paired by "
        "position (the Nth of each form one account).",
    )
    creds.add_argument(
        "--account",
        action="append",
        default=[],
        metavar=ACCOUNT_FORM.replace("PROJECT_ID", "PID"),
        help="an AK/SK account; RPS[:BURST] gives it its own rate limit instead of --rate-limit-rps/-burst",
    )
    creds.add_argument("--access-key", action="append", default=[], metavar="AK")
    creds.add_argument("--secret-key", action="append", default=[], metavar="SK")
    creds.add_argument("--project-id", action="append", default=[], metavar="PID[,PID...]")
    creds.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TOKEN[:PID[,PID...][:RPS[:BURST]]]",
        help="an X-Auth-Token value; without projects (TOKEN or TOKEN::RPS) it may use every project of "
        "the accounts; RPS[:BURST] gives it its own rate limit",
    )

    behaviour = parser.add_argument_group("behaviour (all changeable later with PUT /_sim/config)")
    defaults = SimulatorConfig()
    for name in ("create_seconds", "delete_seconds", "extend_seconds", "restart_seconds"):
        behaviour.add_argument(
            "--" + name.replace("_", "-"), type=float, default=getattr(defaults, name), metavar="SECONDS"
        )
    behaviour.add_argument("--create-fail-share", type=float, default=0.0, metavar="0..1")
    behaviour.add_argument(
        "--create-fail-name", action="append", default=[], metavar="NAME", help="creates of this name fail"
    )
    behaviour.add_argument("--batch-max-size", type=int, default=None, metavar="N")
    behaviour.add_argument("--rate-limit-rps", type=float, default=None, metavar="RPS")
    behaviour.add_argument("--rate-limit-burst", type=int, default=None, metavar="N")
    behaviour.add_argument("--recycle-bin", action="store_true", help="projects use the recycle bin by default")
    behaviour.add_argument("--recycle-retention-days", type=float, default=1.0, metavar="DAYS")
    behaviour.add_argument("--quota", type=int, default=defaults.quota, metavar="N")
    behaviour.add_argument(
        "--lenient",
        action="store_true",
        help="accept the seed page's camelCase allFailure and a list call without engine",
    )
    behaviour.add_argument("--unknown-batch-ids", choices=UNKNOWN_BATCH_ID_MODES, default="failed")
    behaviour.add_argument("--undeletable-batch-ids", choices=UNDELETABLE_BATCH_ID_MODES, default="failed")
    behaviour.add_argument("--restart-nodes-as-objects", action="store_true")
    behaviour.add_argument(
        "--list-shows-deleting",
        action="store_true",
        help="for comparison only: list DELETING instances too (the real cloud's list hides them)",
    )
    for name in ("topic_delete_seconds", "group_delete_seconds"):
        behaviour.add_argument(
            "--" + name.replace("_", "-"),
            type=float,
            default=getattr(defaults, name),
            metavar="SECONDS",
            help="how long a batch deletion takes (0 = at once)",
        )
    behaviour.add_argument("--topic-quota", type=int, default=defaults.topic_quota, metavar="N")
    behaviour.add_argument("--group-quota", type=int, default=defaults.group_quota, metavar="N")
    behaviour.add_argument("--user-quota", type=int, default=defaults.user_quota, metavar="N")
    behaviour.add_argument("--seed", type=int, default=None, help="seed for random choices")
    return parser


def accounts_from(args: argparse.Namespace) -> tuple[list[Account], list[TokenGrant]]:
    accounts = [Account.parse(spec) for spec in args.account]
    pieces = (args.access_key, args.secret_key, args.project_id)
    if len({len(p) for p in pieces}) != 1:
        raise ValueError("--access-key, --secret-key and --project-id must be given the same number of times")
    for access_key, secret_key, projects in zip(*pieces, strict=True):
        accounts.append(Account(access_key, secret_key, split_projects(projects)))
    seen: set[str] = set()
    for account in accounts:
        if account.access_key in seen:
            # The second would silently replace the first: surely not what the command line meant.
            raise ValueError(f"access key {account.access_key!r} is given more than once")
        seen.add(account.access_key)
    all_projects = frozenset().union(*(account.project_ids for account in accounts))
    tokens: list[TokenGrant] = []
    for spec in args.token:
        token, *rest = spec.split(":")
        scope = split_projects(rest[0] if rest else "") or all_projects
        if not token or not scope:
            raise ValueError(f"--token {spec!r}: give TOKEN:PID, or an account whose projects it may use")
        tokens.append(TokenGrant(token, scope, parse_rate_limit(rest[1:], f"--token {spec!r}")))
    if not accounts and not tokens:
        raise ValueError("give at least one --account (or --access-key/--secret-key/--project-id) or --token")
    return accounts, tokens


def config_from(args: argparse.Namespace) -> SimulatorConfig:
    values: dict[str, Any] = {
        "create_seconds": args.create_seconds,
        "delete_seconds": args.delete_seconds,
        "extend_seconds": args.extend_seconds,
        "restart_seconds": args.restart_seconds,
        "create_fail_share": args.create_fail_share,
        "create_fail_names": args.create_fail_name,
        "batch_max_size": args.batch_max_size,
        "rate_limit_rps": args.rate_limit_rps,
        "rate_limit_burst": args.rate_limit_burst,
        "recycle_bin_enabled": args.recycle_bin,
        "recycle_retention_days": args.recycle_retention_days,
        "quota": args.quota,
        "strict": not args.lenient,
        "unknown_batch_ids": args.unknown_batch_ids,
        "undeletable_batch_ids": args.undeletable_batch_ids,
        "restart_nodes_as_objects": args.restart_nodes_as_objects,
        "seed": args.seed,
        "list_shows_deleting": args.list_shows_deleting,
        "topic_delete_seconds": args.topic_delete_seconds,
        "group_delete_seconds": args.group_delete_seconds,
        "topic_quota": args.topic_quota,
        "group_quota": args.group_quota,
        "user_quota": args.user_quota,
    }
    config = SimulatorConfig()
    config.update(values)
    return config


async def serve(server: SimulatorServer, ca_file: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    try:
        if ca_file:
            server.write_ca(ca_file)
        print(f"listening on {server.url}", flush=True)
        await stop.wait()
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.ca_file and not args.tls:
        parser.error("--ca-file needs --tls")
    try:
        accounts, tokens = accounts_from(args)
        config = config_from(args)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO if args.access_log else logging.WARNING, stream=sys.stderr)
    server = SimulatorServer(
        config,
        accounts=accounts,
        tokens=tokens,
        host=args.host,
        port=args.port,
        use_tls=args.tls,
        access_log=args.access_log,
    )
    asyncio.run(serve(server, args.ca_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
