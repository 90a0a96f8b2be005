"""Fixtures for the Kubernetes part of the local world: the clusters and throw-away namespaces."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path

import kubernetes.client
import pytest

from tests.world.kube import KubeWorld
from tests.world.tls import LocalCA


@pytest.fixture(scope="session")
def kube_world(world_dir: Path, test_ca: LocalCA) -> Iterator[KubeWorld]:
    """etcd, and clusters "alpha" and "beta", each with an API server and namespace controller."""
    world = KubeWorld(world_dir / "kube", test_ca).start()
    try:
        yield world
    finally:
        world.stop()


class NamespaceFactory:
    """Creates uniquely named namespaces and deletes them when the test ends.

    Deletion is not awaited: the namespace controller needs at least 5 s per namespace (a fixed
    grace period in kube-controller-manager), and unique names mean no test waits on another's
    leftovers.
    """

    def __init__(self, world: KubeWorld, prefix: str) -> None:
        self._world = world
        self._prefix = prefix
        self.created: list[tuple[str, str]] = []

    def __call__(
        self,
        cluster: str = "alpha",
        *,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        namespace = name or f"{self._prefix}-{secrets.token_hex(3)}"
        body = kubernetes.client.V1Namespace(
            metadata=kubernetes.client.V1ObjectMeta(name=namespace, labels=dict(labels or {}))
        )
        with self._world.cluster(cluster).admin_client() as client:
            kubernetes.client.CoreV1Api(client).create_namespace(body)
        self.created.append((cluster, namespace))
        return namespace

    def cleanup(self) -> None:
        for cluster_name, namespace in reversed(self.created):
            cluster = self._world.cluster(cluster_name)
            if not cluster.running():
                continue
            with cluster.admin_client() as client:
                try:
                    kubernetes.client.CoreV1Api(client).delete_namespace(namespace)
                except kubernetes.client.ApiException as exc:
                    # Already gone (the test deleted it) or already terminating.
                    if exc.status not in (404, 409):
                        raise
        self.created.clear()


def _prefix_for(node_name: str) -> str:
    # Namespace names are DNS labels (63 characters); the test's name keeps leftovers traceable.
    label = re.sub(r"[^a-z0-9-]+", "-", node_name.lower()).strip("-")
    label = label.removeprefix("test-")[:50].strip("-")
    return label or "ns"


@pytest.fixture
def kube_namespace(
    kube_world: KubeWorld, request: pytest.FixtureRequest
) -> Iterator[NamespaceFactory]:
    """Call it (optionally with a cluster name and labels) to get a fresh namespace's name."""
    factory = NamespaceFactory(kube_world, _prefix_for(request.node.name))
    try:
        yield factory
    finally:
        factory.cleanup()
