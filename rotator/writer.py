"""Observe and write the Secrets of one cluster.

``observe`` costs two requests per cluster whatever the number of namespaces: one LIST of the
Secrets carrying the ownership label across all namespaces, one LIST of namespaces. Writes are a
CREATE, or a REPLACE (PUT) carrying the observed ``resourceVersion`` so a concurrent change
answers 409 instead of being overwritten; never delete-and-recreate, never an unconditional
PATCH.

A PUT replaces the whole object, so the labels, annotations, ownerReferences and finalizers
that others put on a Secret must be sent back. The store keeps them (never the data) from its
last LIST or GET, keyed by Secret and resourceVersion; when the caller's ``Observed`` carries a
resourceVersion the store has not seen, it GETs the Secret once first. Annotations under
``rotator.dev/`` belong to the rotator and are replaced as a set; all other keys are kept.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import kubernetes.client

from rotator.errors import ClusterError, PolicyRefusal
from rotator.kubeapi import (
    DEFAULT_TIMEOUT,
    ApiConflict,
    KubeApi,
    Limiter,
    Request,
    Timeout,
    secret_forms,
    send,
)
from rotator.model import (
    ANNOTATION_PREFIX,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    DesiredSecret,
    Observed,
    Target,
)
from rotator.snapshot import (
    ClusterSnapshot,
    Key,
    NamespaceInfo,
    parse_secret,
    parse_snapshot,
    strings,
)

__all__ = [  # the runner's one import point for cluster I/O
    "ApiConflict",
    "ClusterSnapshot",
    "NamespaceInfo",
    "SecretStore",
    "StoredSecret",
    "secret_path",
]

FIELD_MANAGER = "rotator"
_KEPT_METADATA = ("ownerReferences", "finalizers")
_WRITE_QUERY = (("fieldManager", FIELD_MANAGER),)


def secret_path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets"
    return base if name is None else f"{base}/{quote(name, safe='')}"


@dataclass(frozen=True, kw_only=True)
class StoredSecret:
    """What the API server stored, decoded from its answer to the write."""

    target: Target
    secret_type: str
    data: Mapping[str, bytes] = field(repr=False)
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    resource_version: str
    created: bool


@dataclass(frozen=True)
class _Kept:
    """The parts of an existing Secret's metadata a PUT must send back."""

    resource_version: str
    labels: dict[str, str]
    annotations: dict[str, str]
    extra: dict[str, Any]  # ownerReferences, finalizers, and top-level `immutable`


def _keep(item: Mapping[str, Any]) -> _Kept:
    meta = item.get("metadata") or {}
    extra = {k: meta[k] for k in _KEPT_METADATA if meta.get(k)}
    if item.get("immutable") is not None:
        extra["immutable"] = item["immutable"]
    return _Kept(
        str(meta.get("resourceVersion") or ""),
        strings(meta.get("labels")),
        strings(meta.get("annotations")),
        extra,
    )


def _stored(target: Target, item: Mapping[str, Any], *, created: bool) -> StoredSecret:
    meta = item.get("metadata") or {}
    return StoredSecret(
        target=target,
        secret_type=str(item.get("type") or ""),
        data={k: base64.b64decode(v) for k, v in (item.get("data") or {}).items()},
        labels=strings(meta.get("labels")),
        annotations=strings(meta.get("annotations")),
        resource_version=str(meta.get("resourceVersion") or ""),
        created=created,
    )


class SecretStore:
    """The Secrets of one cluster: observe them all at once, read one, create or replace one.

    Thread-safe: concurrent ``apply`` calls share the client's connection pool and the limiter.
    """

    def __init__(
        self,
        cluster: str,
        client: kubernetes.client.ApiClient,
        limiter: Limiter,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.cluster = cluster
        self.api = KubeApi(cluster, client, limiter, timeout=timeout)
        self._kept: dict[Key, _Kept] = {}

    def _request(self, method: str, namespace: str, name: str) -> Request:
        path = secret_path(namespace, None if method == "POST" else name)
        return Request(
            cluster=self.cluster,
            method=method,
            path=path,
            resource="secrets",
            namespace=namespace,
            name=name,
        )

    def _list(self, path: str, resource: str) -> Request:
        return Request(
            cluster=self.cluster, method="GET", path=path, resource=resource, verb="list"
        )

    def observe(self) -> ClusterSnapshot:
        """Two requests: the managed Secrets of every namespace, and the namespaces."""
        selector = (("labelSelector", f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"),)
        secrets = self.api.call(self._list("/api/v1/secrets", "secrets"), query=selector)
        namespaces = self.api.call(self._list("/api/v1/namespaces", "namespaces"))
        snapshot = parse_snapshot(self.cluster, secrets, namespaces)
        kept: dict[Key, _Kept] = {}
        for item in secrets.get("items") or ():
            meta = item.get("metadata") or {}
            kept[(str(meta.get("namespace")), str(meta.get("name")))] = _keep(item)
        self._kept = kept
        return snapshot

    def get(self, target: Target) -> Observed:
        """One GET of the target, owned or not; a 404 reads as missing."""
        item = self.api.call_optional(self._request("GET", target.namespace, target.secret))
        if item is None:
            return Observed.missing(target)
        self._kept[(target.namespace, target.secret)] = _keep(item)
        return parse_secret(self.cluster, item)

    def _metadata_for(self, target: Target, observed: Observed) -> _Kept:
        key = (target.namespace, target.secret)
        kept = self._kept.get(key)
        if kept is None or kept.resource_version != observed.resource_version:
            request = self._request("GET", target.namespace, target.secret)
            item = self.api.call(request)
            kept = self._kept[key] = _keep(item)
            if kept.resource_version != observed.resource_version:
                raise ApiConflict(
                    f"{request.describe()}: the Secret changed since it was observed",
                    reason="Conflict",
                )
        return kept

    def apply(
        self, target: Target, observed: Observed, desired: DesiredSecret, *, adopt: bool = False
    ) -> StoredSecret:
        """CREATE when ``observed`` says the Secret is missing, else REPLACE with its
        resourceVersion. Returns what the API server stored.

        A Secret that lacks the ownership label is only replaced with ``adopt=True`` (the
        config's explicit adoption); otherwise PolicyRefusal, and nothing is sent.
        """
        if target.cluster != self.cluster:
            raise ValueError(f"{target} is not in cluster {self.cluster!r}")
        encoded = {k: base64.b64encode(v).decode("ascii") for k, v in desired.data.items()}
        labels = {**desired.labels, MANAGED_BY_LABEL: MANAGED_BY_VALUE}
        metadata: dict[str, Any] = {"name": target.secret, "namespace": target.namespace}
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": metadata}
        if observed.exists:
            if not observed.resource_version:
                raise ValueError(f"{target}: a replace needs the observed resourceVersion")
            kept = self._metadata_for(target, observed)
            if not adopt and kept.labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
                raise PolicyRefusal(
                    f"{target}: the Secret exists without label {MANAGED_BY_LABEL}="
                    f"{MANAGED_BY_VALUE}; set adopt: true for it in the config to take it over"
                )
            theirs = {
                k: v for k, v in kept.annotations.items() if not k.startswith(ANNOTATION_PREFIX)
            }
            metadata["resourceVersion"] = observed.resource_version
            metadata["labels"] = {**kept.labels, **labels}
            metadata["annotations"] = {**theirs, **desired.annotations}
            immutable = kept.extra.get("immutable")
            metadata.update({k: v for k, v in kept.extra.items() if k != "immutable"})
            if immutable is not None:
                body["immutable"] = immutable
            request = self._request("PUT", target.namespace, target.secret)
        else:
            metadata["labels"] = labels
            metadata["annotations"] = dict(desired.annotations)
            request = self._request("POST", target.namespace, target.secret)
        body["type"] = desired.secret_type
        body["data"] = encoded
        answer = self.api.call(
            request,
            query=_WRITE_QUERY,
            body=body,
            redact=secret_forms(desired.data, encoded),
        )
        self._kept[(target.namespace, target.secret)] = _keep(answer)
        return _stored(target, answer, created=not observed.exists)

    def read(self, target: Target) -> StoredSecret | None:
        """The target as stored, data included (one GET); None when it does not exist. For a
        write that landed but whose answer was lost: post-verify reads what is there."""
        item = self.api.call_optional(self._request("GET", target.namespace, target.secret))
        if item is None:
            return None
        self._kept[(target.namespace, target.secret)] = _keep(item)
        return _stored(target, item, created=False)

    def read_key(self, *, namespace: str, name: str, key: str) -> bytes:
        """One data key of any Secret (a provider's source credential): one GET."""
        request = self._request("GET", namespace, name)
        data = self.api.call(request).get("data") or {}
        if key not in data:
            raise ClusterError(
                f"{request.describe()}: the Secret has no key {key!r} (keys: "
                f"{', '.join(sorted(data)) or 'none'}); fix the key in the config",
                retryable=False,
            )
        return base64.b64decode(data[key])

    def close(self) -> None:
        """Close the client's connection pool; the store is not used afterwards."""
        self.api.client.close()  # type: ignore[no-untyped-call]  # unannotated in the client

    def bare_replace(self, namespace: str, name: str, body: dict[str, Any]) -> int:
        """The benchmark's floor: the same PUT (client, pool, path, query, timeout) as
        ``apply``, without rate limiting, body building or decoding. Returns the status."""
        path = secret_path(namespace, name)
        status, _ = send(
            self.api.client, "PUT", path, query=_WRITE_QUERY, body=body, timeout=self.api.timeout
        )
        return status
