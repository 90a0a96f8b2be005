"""run_once: observe → plan → mint → verify → write → verify, for every configured cluster.

The daemon and ``rotate --now`` both call this. Safety rules kept here: a credential that
fails the handshake is never written; every write carries a resourceVersion and a 409 is
re-read and re-planned a bounded number of times; one failing registry, namespace or cluster
never stops the others.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from rotator.errors import ExitCode, RotatorError
from rotator.logs import REDACTOR, fields
from rotator.model import (
    Credential,
    Decision,
    Observed,
    Outcome,
    Plan,
    Reason,
    RotationResult,
    Target,
)
from rotator.plan import Scope, build_plan
from rotator.results import result_for, source_failure
from rotator.rotation import Rotation
from rotator.runtime import Runtime
from rotator.writer import ClusterSnapshot

log = logging.getLogger("rotator.runner")

# When several things failed, the exit code names the one an operator must act on first.
_EXIT_PRIORITY = (
    ExitCode.INTERNAL,
    ExitCode.REGISTRY_REJECTED,
    ExitCode.PROVIDER_REJECTED,
    ExitCode.TRANSIENT,
    ExitCode.REFUSED,
)


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    dry_run: bool = False
    force: bool = False
    scope: Scope = field(default_factory=Scope)


@dataclass(frozen=True, kw_only=True)
class ClusterFailure:
    cluster: str
    message: str
    exit_code: int


@dataclass(frozen=True, kw_only=True)
class RunReport:
    plan: Plan
    results: tuple[RotationResult, ...]
    cluster_failures: tuple[ClusterFailure, ...]
    dry_run: bool

    @property
    def exit_code(self) -> ExitCode:
        codes = {r.exit_code for r in self.results} | {f.exit_code for f in self.cluster_failures}
        return next((c for c in _EXIT_PRIORITY if c in codes), ExitCode.OK)


OnResult = Callable[[RotationResult], None]


def observe(
    runtime: Runtime, clusters: Iterable[str]
) -> tuple[dict[str, ClusterSnapshot], list[ClusterFailure]]:
    """One Secret LIST and one namespace LIST per cluster, clusters in parallel."""
    wanted = list(clusters)
    failures = [
        ClusterFailure(cluster=name, message=err.message, exit_code=err.exit_code)
        for name, err in runtime.broken_clusters.items()
        if name in wanted
    ]
    stores = [runtime.stores[name] for name in wanted if name in runtime.stores]
    snapshots: dict[str, ClusterSnapshot] = {}
    if not stores:
        return snapshots, failures
    with ThreadPoolExecutor(max_workers=len(stores), thread_name_prefix="observe") as pool:
        futures = {store.cluster: pool.submit(store.observe) for store in stores}
    for name, future in futures.items():
        try:
            snapshots[name] = future.result()
        except RotatorError as exc:
            log.error("cannot observe cluster", extra=fields(cluster=name, error=exc.message))
            failures.append(
                ClusterFailure(cluster=name, message=exc.message, exit_code=exc.exit_code)
            )
    return snapshots, failures


@dataclass(frozen=True)
class StaticSources:
    """Static credentials read before planning, and the sources that could not be read."""

    credentials: dict[str, Credential]
    failures: dict[str, RotatorError]


def _read_static(runtime: Runtime, names: Iterable[str], now: datetime) -> StaticSources:
    """Static sources cost nothing to read, so they are read before planning: a changed source
    then shows up as a reason to rotate. One that cannot be read fails its Secrets even when
    they look fresh: whether the source changed is then unknown."""
    sources = StaticSources(credentials={}, failures={})
    for name in names:
        provider = runtime.providers[name]
        if not provider.static:
            continue
        try:
            credentials = provider.mint(now)
        except RotatorError as exc:
            log.warning("cannot read static source", extra=fields(registry=name, error=exc.message))
            sources.failures[name] = exc
            continue
        for cred in credentials:
            REDACTOR.add(cred.password, username=cred.username)
        sources.credentials[name] = credentials[0]
    return sources


def plan_run(
    runtime: Runtime,
    snapshots: Mapping[str, ClusterSnapshot],
    *,
    now: datetime,
    options: RunOptions,
) -> tuple[Plan, StaticSources]:
    settings = runtime.settings
    used = {r for spec in settings.secrets for r in spec.registries}
    if options.scope.registries:
        used &= set(options.scope.registries)
    static = _read_static(runtime, sorted(used), now)
    observed: dict[Target, Observed] = {}
    for snapshot in snapshots.values():
        observed.update({o.target: o for o in snapshot.secrets.values()})
    plan = build_plan(
        settings=settings,
        namespaces={name: tuple(s.namespaces.values()) for name, s in snapshots.items()},
        observed=observed,
        now=now,
        force=options.force,
        static=static.credentials,
        static_registries=runtime.static_registries,
        scope=options.scope,
    )
    return plan, static


def run_once(
    runtime: Runtime,
    *,
    now: datetime,
    options: RunOptions | None = None,
    on_result: OnResult | None = None,
) -> RunReport:
    """One full cycle over every cluster in scope. Never raises for a per-target failure: each
    becomes a RotationResult, and the report's exit code summarises them."""
    options = options or RunOptions()
    settings = runtime.settings
    clusters = [c.name for c in settings.clusters if options.scope.admits_cluster(c.name)]
    snapshots, failures = observe(runtime, clusters)
    plan, static = plan_run(runtime, snapshots, now=now, options=options)
    log.info(
        "planned",
        extra=fields(targets=len(plan.decisions), due=len(plan.due), dry_run=options.dry_run),
    )
    notify = on_result or (lambda _result: None)
    if options.dry_run:
        results = [
            _dry_run(runtime, d, now=now, options=options, notify=notify, static=static)
            for d in plan.decisions
        ]
    else:
        rotation = Rotation(
            runtime,
            now=now,
            salt=secrets.token_bytes(16),
            static=static.credentials,
            static_failures=static.failures,
        )
        results = rotation.run(plan, force=options.force, on_result=notify)
    for result in results:
        _log_result(result)
    return RunReport(
        plan=plan,
        results=tuple(sorted(results, key=lambda r: r.target)),
        cluster_failures=tuple(failures),
        dry_run=options.dry_run,
    )


def _dry_run(
    runtime: Runtime,
    decision: Decision,
    *,
    now: datetime,
    options: RunOptions,
    notify: OnResult,
    static: StaticSources,
) -> RotationResult:
    """What a real run would do. A target missing from the managed-Secret LIST is read once:
    a same-name Secret without our label would be refused, and the plan should say so."""
    if decision.reason is Reason.MISSING:
        store = runtime.stores[decision.target.cluster]
        try:
            seen = store.get(decision.target)
        except RotatorError as exc:
            result = result_for(decision, Outcome.FAILED_WRITE, error=exc)
            notify(result)
            return result
        if seen.exists:
            decision = Rotation.redecide(
                runtime, decision, observed=seen, now=now, force=options.force
            )
    unreadable = source_failure(decision, static.failures)
    if unreadable is not None:
        result = result_for(decision, Outcome.FAILED_MINT, error=unreadable)
    else:
        result = result_for(decision, Outcome.DRY_RUN if decision.rotate else None)
    notify(result)
    return result


def _log_result(result: RotationResult) -> None:
    level = logging.WARNING if result.outcome.failed else logging.INFO
    log.log(
        level,
        str(result.outcome),
        extra=fields(
            target=str(result.target),
            reason=str(result.reason),
            verified=result.verified,
            expires_at=result.expires_at,
            error=result.error,
        ),
    )
