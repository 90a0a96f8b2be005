"""build_plan: which targets are due, and why. Pure: everything it needs is passed in."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rotator.config import Settings
from rotator.model import Credential, Observed, Plan, Target
from rotator.policy import CheckInput, decide
from rotator.selection import NamespaceInfo, selects


@dataclass(frozen=True, kw_only=True)
class Scope:
    """Narrowing from the command line; empty means everything the config selects."""

    clusters: Collection[str] = ()
    namespaces: Collection[str] = ()
    registries: Collection[str] = ()

    def admits_cluster(self, cluster: str) -> bool:
        return not self.clusters or cluster in self.clusters

    def admits(self, target: Target, registries: Sequence[str]) -> bool:
        return (
            (not self.clusters or target.cluster in self.clusters)
            and (not self.namespaces or target.namespace in self.namespaces)
            and (not self.registries or any(r in self.registries for r in registries))
        )


def build_plan(
    *,
    settings: Settings,
    namespaces: Mapping[str, Sequence[NamespaceInfo]],
    observed: Mapping[Target, Observed],
    now: datetime,
    force: bool = False,
    static: Mapping[str, Credential] | None = None,
    static_registries: Collection[str] = (),
    scope: Scope | None = None,
) -> Plan:
    """One decision per selected target, sorted by target.

    ``namespaces`` holds each observed cluster's namespace list; a cluster missing from it
    (unreachable) gets no decisions here — the runner reports it. Terminating namespaces are
    skipped: the API server refuses writes into them.
    """
    scope = scope or Scope()
    decisions = []
    for spec in settings.secrets:
        for cluster in settings.clusters_of(spec):
            for namespace in namespaces.get(cluster, ()):
                if namespace.terminating or not selects(spec.namespaces, namespace):
                    continue
                target = Target(cluster=cluster, namespace=namespace.name, secret=spec.name)
                if not scope.admits(target, spec.registries):
                    continue
                check = CheckInput(
                    target=target,
                    observed=observed.get(target) or Observed.missing(target),
                    registries=spec.registries,
                    adopt=spec.adopt,
                    force=force,
                    now=now,
                    static=static or {},
                    static_registries=frozenset(static_registries),
                )
                decisions.append(decide(check))
    decisions.sort(key=lambda d: d.target)
    return Plan(decisions=tuple(decisions))
