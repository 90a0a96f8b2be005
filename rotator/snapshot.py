"""What one observe of a cluster saw, parsed from the API server's JSON. Pure: no I/O.

Only labels and annotations are kept, never Secret data. An annotation that does not parse
(a hand edit, another tool's format) reads as absent, so the planner rotates instead of trusting
it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rotator.model import (
    ANN_EXPIRES_AT,
    ANN_FINGERPRINT,
    ANN_REGISTRIES,
    ANN_RENEW_AT,
    ANN_ROTATED_AT,
    ANN_VERIFIED_AT,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    Observed,
    Target,
    parse_time,
)
from rotator.selection import NamespaceInfo  # name, labels, terminating: what selection needs

__all__ = [
    "ClusterSnapshot",
    "Key",
    "NamespaceInfo",
    "parse_namespace",
    "parse_secret",
    "parse_snapshot",
    "strings",
]

Key = tuple[str, str]  # (namespace, secret name)


def strings(value: object) -> dict[str, str]:
    """A JSON labels/annotations map (or null) as a str → str dict."""
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _metadata(item: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = item.get("metadata")
    return meta if isinstance(meta, dict) else {}


@dataclass(frozen=True, kw_only=True)
class ClusterSnapshot:
    """Every namespace of a cluster and every Secret carrying the ownership label."""

    cluster: str
    namespaces: Mapping[str, NamespaceInfo]
    secrets: Mapping[Key, Observed]

    def observed(self, target: Target) -> Observed:
        """The target as observed. A same-name Secret without our label reads as missing here;
        creating it then answers 409 AlreadyExists, and a GET tells the truth."""
        found = self.secrets.get((target.namespace, target.secret))
        return found if found is not None else Observed.missing(target)


def parse_secret(cluster: str, item: Mapping[str, Any]) -> Observed:
    """A Secret's JSON → Observed (labels, annotations, type and resourceVersion only)."""
    meta = _metadata(item)
    target = Target(
        cluster=cluster, namespace=str(meta.get("namespace")), secret=str(meta.get("name"))
    )
    labels = strings(meta.get("labels"))
    notes = strings(meta.get("annotations"))
    registries = tuple(r.strip() for r in notes.get(ANN_REGISTRIES, "").split(",") if r.strip())
    return Observed(
        target=target,
        exists=True,
        owned=labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE,
        secret_type=str(item.get("type") or "") or None,
        registries=registries,
        expires_at=parse_time(notes.get(ANN_EXPIRES_AT)),
        renew_at=parse_time(notes.get(ANN_RENEW_AT)),
        rotated_at=parse_time(notes.get(ANN_ROTATED_AT)),
        verified_at=parse_time(notes.get(ANN_VERIFIED_AT)),
        fingerprint=notes.get(ANN_FINGERPRINT) or None,
        resource_version=str(meta.get("resourceVersion") or "") or None,
    )


def parse_namespace(item: Mapping[str, Any]) -> NamespaceInfo:
    meta = _metadata(item)
    status = item.get("status")
    phase = status.get("phase") if isinstance(status, dict) else None
    return NamespaceInfo(
        name=str(meta.get("name")),
        labels=strings(meta.get("labels")),
        terminating=phase == "Terminating" or bool(meta.get("deletionTimestamp")),
    )


def parse_snapshot(
    cluster: str, secret_list: Mapping[str, Any], namespace_list: Mapping[str, Any]
) -> ClusterSnapshot:
    """Two LIST answers (SecretList, NamespaceList) → ClusterSnapshot."""
    observed = (parse_secret(cluster, item) for item in secret_list.get("items") or ())
    infos = (parse_namespace(item) for item in namespace_list.get("items") or ())
    return ClusterSnapshot(
        cluster=cluster,
        namespaces={info.name: info for info in infos},
        secrets={(o.target.namespace, o.target.secret): o for o in observed},
    )
