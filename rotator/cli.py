"""Command line: parse and validate arguments, then call the runner. Nothing else lives here.

Exit codes (also in the README):
  0  every selected Secret is fresh, or was rotated and verified
  1  internal error (a bug: please report it)
  2  bad config or usage
  3  transient failure (API server, registry or identity provider unreachable, throttled,
     or forbidden by RBAC) — retrying later may help
  4  the identity provider rejected the rotator's own credentials
  5  the registry rejected a freshly minted credential (nothing was written for it)
  6  refused by policy (a same-name Secret the rotator does not own; set adopt: true)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from rotator import __version__
from rotator.config import Settings, load_settings
from rotator.errors import ExitCode, RotatorError
from rotator.logs import setup_logging
from rotator.plan import Scope
from rotator.report import print_status, print_table, report_json, status_json
from rotator.runner import RunOptions, observe, run_once
from rotator.runtime import Runtime

log = logging.getLogger("rotator.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rotator",
        description="Keeps Kubernetes image-pull Secrets alive.",
        epilog="exit codes: 0 ok, 1 internal, 2 config/usage, 3 transient, "
        "4 provider rejected us, 5 registry rejected the new credential, 6 refused by policy",
    )
    parser.add_argument("--version", action="version", version=f"rotator {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=os.environ.get("ROTATOR_CONFIG"),
        help="config file (default: $ROTATOR_CONFIG)",
    )
    common.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    common.add_argument(
        "--log-format",
        default="auto",
        choices=["auto", "json", "text"],
        help="auto: JSON unless stderr is a terminal",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser(
        "check-config", parents=[common], help="validate the config; contacts nothing"
    )

    rotate = commands.add_parser("rotate", parents=[common], help="rotate due Secrets now")
    rotate.add_argument("--now", action="store_true", required=True, help="run one cycle now")
    rotate.add_argument("--force", action="store_true", help="rotate even Secrets that are fresh")
    rotate.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    _scope_arguments(rotate)
    rotate.add_argument("--output", choices=["table", "json"], default="table")

    status = commands.add_parser("status", parents=[common], help="list managed Secrets")
    status.add_argument("--cluster", action="append", default=[], metavar="NAME")
    status.add_argument("--output", choices=["table", "json"], default="table")
    return parser


def _scope_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, what in (
        ("cluster", "cluster"),
        ("namespace", "namespace"),
        ("registry", "registry"),
    ):
        parser.add_argument(
            f"--{flag}",
            action="append",
            default=[],
            metavar="NAME",
            help=f"only this {what} (repeatable)",
        )


def _check_scope(settings: Settings, args: argparse.Namespace) -> None:
    known = {
        "cluster": {c.name for c in settings.clusters},
        "registry": {r.name for r in settings.registries},
    }
    for flag, names in known.items():
        for value in getattr(args, flag, []):
            if value not in names:
                raise _Usage(
                    f"--{flag} {value}: not in the config (known: {', '.join(sorted(names))})"
                )


class _Usage(Exception):
    pass


def _rotate(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    scope = Scope(clusters=args.cluster, namespaces=args.namespace, registries=args.registry)
    options = RunOptions(dry_run=args.dry_run, force=args.force, scope=scope)
    show_progress = console.is_terminal and args.output == "table"
    progress = (
        Progress(
            TextColumn("rotating"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        )
        if show_progress
        else None
    )
    with Runtime.open(settings) as runtime, progress or nullcontext():
        task = progress.add_task("rotate", total=None) if progress else None

        def advance(_result: object) -> None:
            if progress is not None and task is not None:
                progress.advance(task)

        report = run_once(runtime, now=datetime.now(UTC), options=options, on_result=advance)
    if args.output == "json":
        print(report_json(report))
    else:
        print_table(report, console)
    return int(report.exit_code)


def _status(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    clusters = [c.name for c in settings.clusters if not args.cluster or c.name in args.cluster]
    with Runtime.open(settings) as runtime:
        snapshots, failures = observe(runtime, clusters)
    rows = sorted(
        (o for s in snapshots.values() for o in s.secrets.values() if o.owned),
        key=lambda o: o.target,
    )
    now = datetime.now(UTC)
    if args.output == "json":
        print(status_json(rows, now))
    else:
        print_status(rows, now, console)
    for failure in failures:
        print(f"cluster {failure.cluster}: {failure.message}", file=sys.stderr)
    return int(ExitCode.TRANSIENT) if failures else 0


def _dispatch(args: argparse.Namespace, console: Console) -> int:
    settings = load_settings(args.config)
    if args.command == "check-config":
        print(
            f"{args.config}: ok ({len(settings.clusters)} clusters, "
            f"{len(settings.registries)} registries, {len(settings.secrets)} secrets)"
        )
        return 0
    _check_scope(settings, args)
    if args.command == "rotate":
        return _rotate(settings, args, console)
    return _status(settings, args, console)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    json_logs = {"auto": None, "json": True, "text": False}[args.log_format]
    setup_logging(level=args.log_level, json_output=json_logs)
    console = Console()
    if args.config is None:
        print("rotator: --config is required (or set ROTATOR_CONFIG)", file=sys.stderr)
        return int(ExitCode.CONFIG)
    try:
        return _dispatch(args, console)
    except _Usage as exc:
        print(f"rotator: {exc}", file=sys.stderr)
        return int(ExitCode.CONFIG)
    except RotatorError as exc:
        print(f"rotator: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    except Exception:  # the last line of defence: a bug gets exit 1 and a redacted traceback
        log.exception("internal error")
        return int(ExitCode.INTERNAL)
