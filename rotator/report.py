"""What the CLI shows: the summary table or JSON of a run, and the status of managed Secrets.
Everything printed here comes from results and annotations, never from Secret data."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from rotator.model import Observed, Outcome, RotationResult, format_time
from rotator.runner import RunReport

_STYLE = {
    Outcome.ROTATED: "green",
    Outcome.FRESH: "cyan",
    Outcome.DRY_RUN: "yellow",
    Outcome.REFUSED_UNOWNED: "magenta",
}


def _when(moment: datetime | None) -> str:
    return format_time(moment) if moment else "-"


def result_json(result: RotationResult) -> dict[str, Any]:
    return {
        "cluster": result.target.cluster,
        "namespace": result.target.namespace,
        "secret": result.target.secret,
        "outcome": str(result.outcome),
        "reason": str(result.reason),
        "expires_at": format_time(result.expires_at) if result.expires_at else None,
        "verified": result.verified,
        "message": result.error,
        "exit_code": result.exit_code,
    }


def report_json(report: RunReport) -> str:
    document = {
        "dry_run": report.dry_run,
        "exit_code": int(report.exit_code),
        "summary": summary_counts(report),
        "results": [result_json(r) for r in report.results],
        "cluster_failures": [
            {"cluster": f.cluster, "message": f.message, "exit_code": f.exit_code}
            for f in report.cluster_failures
        ],
    }
    return json.dumps(document, indent=2)


def summary_counts(report: RunReport) -> dict[str, int]:
    counts = Counter(str(r.outcome) for r in report.results)
    return dict(sorted(counts.items()))


def print_table(report: RunReport, console: Console) -> None:
    table = Table(title="rotator: dry run (nothing written)" if report.dry_run else "rotator")
    for column in ("cluster", "namespace", "secret", "outcome", "reason", "expires", "verified"):
        table.add_column(column)
    table.add_column("message", overflow="fold")
    for r in report.results:
        style = _STYLE.get(r.outcome, "red")
        table.add_row(
            r.target.cluster,
            r.target.namespace,
            r.target.secret,
            f"[{style}]{r.outcome}[/]",
            str(r.reason),
            _when(r.expires_at),
            "yes" if r.verified else "-",
            r.error or "",
        )
    console.print(table)
    for failure in report.cluster_failures:
        console.print(f"[red]cluster {failure.cluster} failed:[/] {failure.message}")
    counts = ", ".join(f"{n} {outcome}" for outcome, n in summary_counts(report).items())
    console.print(f"{counts or 'nothing selected'}; exit code {int(report.exit_code)}")


def _remaining(expires_at: datetime | None, now: datetime) -> str:
    if expires_at is None:
        return "static"
    left = expires_at - now
    if left <= timedelta(0):
        return "expired"
    hours, rest = divmod(int(left.total_seconds()), 3600)
    return f"{hours}h{rest // 60:02d}m"


def status_json(rows: Sequence[Observed], now: datetime) -> str:
    return json.dumps(
        [
            {
                "cluster": o.target.cluster,
                "namespace": o.target.namespace,
                "secret": o.target.secret,
                "registries": list(o.registries),
                "expires_at": format_time(o.expires_at) if o.expires_at else None,
                "expires_in": _remaining(o.expires_at, now),
                "renew_at": format_time(o.renew_at) if o.renew_at else None,
                "verified_at": format_time(o.verified_at) if o.verified_at else None,
            }
            for o in rows
        ],
        indent=2,
    )


def print_status(rows: Sequence[Observed], now: datetime, console: Console) -> None:
    table = Table(title="managed Secrets")
    for column in ("cluster", "namespace", "secret", "registries", "expires in", "renew at"):
        table.add_column(column)
    table.add_column("last verified")
    for o in rows:
        table.add_row(
            o.target.cluster,
            o.target.namespace,
            o.target.secret,
            ",".join(o.registries),
            _remaining(o.expires_at, now),
            _when(o.renew_at),
            _when(o.verified_at),
        )
    console.print(table)
