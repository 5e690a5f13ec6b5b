"""rocketmq-operator: run the operator, print the CRDs, report what a sweep would delete.

Settings come from DMS_* environment variables (see docs/settings.md) and are validated before
anything starts, so a bad one stops start-up with a message naming it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import secrets
import sys
from collections.abc import Sequence

import yaml

from rocketmq_operator.core import crdgen
from rocketmq_operator.core.settings import SettingsError, from_env


def _crd(args: argparse.Namespace) -> int:
    kinds = list(crdgen.KINDS.values()) if args.kind == "all" else [crdgen.KINDS[args.kind]]
    # One YAML stream, so that `rocketmq-operator crd --kind all | kubectl apply -f -` works.
    sys.stdout.write("---\n".join(yaml.safe_dump(crdgen.crd(kind), sort_keys=False, width=100) for kind in kinds))
    return 0


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    if args.log_format == "json":
        fmt = '{"time": "%(asctime)s", "level": "%(levelname)s", "logger": "%(name)s", "message": %(message_json)s}'
        handler = logging.StreamHandler()
        handler.setFormatter(_JsonFormatter(fmt))
        logging.basicConfig(level=level, handlers=[handler], force=True)
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", force=True)
    # Our own modules always log at INFO at least: their lines are the operator's story.
    logging.getLogger("rocketmq_operator").setLevel(min(level, logging.INFO))
    # kopf logs every handler invocation at INFO; keep that for --verbose only.
    logging.getLogger("kopf").setLevel(level if args.verbose or args.debug else logging.WARNING)
    # One INFO line per HTTP request is too much at scale; our client records calls as metrics.
    logging.getLogger("httpx").setLevel(logging.DEBUG if args.debug else logging.WARNING)
    for root_handler in logging.getLogger().handlers:
        root_handler.addFilter(_RetriesAreNotErrors(shown_from=level))


class _RetriesAreNotErrors(logging.Filter):
    """kopf logs every handler retry ("failed temporarily") at ERROR. Here a retry is how a handler
    says "continue later" (a batch was accepted, the cloud is still deleting); real failures are
    logged by the operator itself, with their reason, and shown as Events and conditions. So kopf's
    retry lines are INFO: visible with --verbose, not alarming in production logs. Only the plain retry
    line ("<handler> failed temporarily: <reason>"): "failed temporarily but will time out / exceed N
    retries" is kopf giving up, a real failure. tests/unit/test_cli_logging.py pins kopf's wording."""

    def __init__(self, shown_from: int) -> None:
        super().__init__()
        self._shown_from = shown_from

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno == logging.ERROR
            and record.name.startswith("kopf")
            and " failed temporarily: " in str(record.msg)
        ):
            record.levelno, record.levelname = logging.INFO, "INFO"
            return self._shown_from <= logging.INFO
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.message_json = json.dumps(record.getMessage())
        return super().format(record)


GC_YOUNG_THRESHOLD = 10_000
"""Allocations (net of frees) between two collections of the youngest generation; CPython's default
is 700. Each tenth young collection collects the middle generation, and each tenth of those may
collect all of the heap, at 10,000 CRs about 850 MiB resident of small objects. In the
10,000-CR create, 86 full collections took 137.8 s of the operator's 780 s and the young and
middle ones 65.1 s more (bench/calltrace's GC timing). Fourteen times fewer collections at every
level, for at most 10,000 more objects of young cyclic garbage waiting; in the 10,000-CR run with it,
7 full collections took 14.0 s and the others 36.3 s, and the operator's peak RSS fell (849 MiB
against 867)."""


def _tune_gc() -> None:
    """Fewer collections, and none of them walking what was loaded at start.

    Reference counting frees most garbage at once; the cyclic collector is for cycles only, and
    its full collections hold the event loop for as long as they walk the heap. ``gc.freeze``
    moves everything imported so far (modules, classes, kopf and pydantic's machinery, which live
    as long as the process) out of every later collection's walk.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def _run(args: argparse.Namespace) -> int:
    from rocketmq_operator.wiring import handlers  # kopf is imported only when running

    try:
        settings = from_env(os.environ)
    except SettingsError as exc:
        print(f"rocketmq-operator: invalid settings: {exc}", file=sys.stderr)
        return 2
    if settings.ca_file and not os.path.isfile(settings.ca_file):
        print(
            f"rocketmq-operator: invalid settings: DMS_CA_FILE: no such file {settings.ca_file!r}",
            file=sys.stderr,
        )
        return 2
    _configure_logging(args)
    options = handlers.RunOptions(
        settings=settings,
        namespaces=tuple(args.namespace or ()),
        liveness_endpoint=args.liveness,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        peering=args.peering,
        priority=args.priority,
        peering_lifetime=args.peering_lifetime,
    )
    _tune_gc()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(handlers.run(options))
    return 0


def _sweep_report(args: argparse.Namespace) -> int:
    from rocketmq_operator.wiring import report

    try:
        settings = from_env(os.environ)
    except SettingsError as exc:
        print(f"rocketmq-operator: invalid settings: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(
        report.sweep_report(settings, cluster_id=args.cluster_id or settings.cluster_id, as_json=args.json)
    )


def _priority(value: str) -> int:
    if value == "random":
        # Wide enough that two replicas practically never draw the same number.
        return secrets.randbelow(2**31 - 1) + 1
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer or 'random', got {value!r}") from None


def _seconds(value: str) -> int:
    try:
        seconds = int(value)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds, at least 1, got {value!r}")
    return seconds


def parser() -> argparse.ArgumentParser:
    # The module docstring is the help text, so it is written plain (no reStructuredText markup).
    top = argparse.ArgumentParser(prog="rocketmq-operator", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator (settings from DMS_* environment variables)")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", help="serve only this namespace (repeatable, globs ok)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="serve every namespace (the default)")
    run.add_argument(
        "--liveness", metavar="URL", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    run.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    run.add_argument("--metrics-host", default="0.0.0.0")
    run.add_argument("--peering", default=None, help="kopf peering name, for more than one replica")
    run.add_argument(
        "--priority",
        type=_priority,
        default=0,
        help="kopf peering priority, or 'random' (replicas of one Deployment need distinct ones: equal ones all pause)",
    )
    run.add_argument(
        "--peering-lifetime",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="how long a replica that stopped renewing its peering keep-alive counts as alive: how long a "
        "standby waits before taking over from a killed one (kopf's default: 60)",
    )
    run.add_argument("-v", "--verbose", action="store_true")
    run.add_argument("--debug", action="store_true")
    run.add_argument("--log-format", choices=("plain", "json"), default="plain")
    run.set_defaults(func=_run)

    crd = sub.add_parser("crd", help="print a CRD (generated from the models); RocketMQInstance's unless --kind")
    crd.add_argument(
        "--kind",
        choices=(*crdgen.KINDS, "all"),
        default="instance",
        help="instance (RocketMQInstance), topic (RocketMQTopic), group (RocketMQConsumerGroup), user "
        "(RocketMQUser), or all of them as one YAML stream",
    )
    crd.set_defaults(func=_crd)

    sweep = sub.add_parser("sweep-report", help="list failed instances and what each sweep mode would delete")
    sweep.add_argument("--cluster-id", default=None, help="owner-tag cluster id (default: DMS_CLUSTER_ID)")
    sweep.add_argument("--json", action="store_true")
    sweep.set_defaults(func=_sweep_report)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
