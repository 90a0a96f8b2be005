"""The collaborators of a run, built once from the settings: a Secret store per cluster, a
provider and a verifier per registry. The daemon keeps one Runtime for its whole life, so
connection pools, rate limiters and provider sessions are reused from cycle to cycle."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from types import TracebackType

from rotator.clusters import api_client
from rotator.config import Settings
from rotator.errors import ClusterError, ConfigError, RotatorError
from rotator.providers import Provider, create_provider
from rotator.ratelimit import TokenBucket
from rotator.verifier import Verifier
from rotator.writer import SecretStore


def _freeze_startup_objects() -> None:
    """Move what start-up built (modules, SDK clients, settings: some 60,000 objects that
    live as long as the process) out of the garbage collector's reach, once per process.

    A rotation of 1,000 Secrets allocates enough to trigger a full collection, which scanned
    all of them again: 40-50 ms with the GIL held, every writer thread stalled meanwhile
    (docs/benchmarks.md). Frozen objects are still freed by reference counting; only a cycle
    among them that became garbage later would stay, a bounded one-time cost.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()


@dataclass
class Runtime:
    settings: Settings
    stores: dict[str, SecretStore] = field(default_factory=dict)
    # Clusters whose client could not be built (bad kubeconfig, no service account): reported
    # per run as failed clusters, while the other clusters are still served.
    broken_clusters: dict[str, RotatorError] = field(default_factory=dict)
    providers: dict[str, Provider] = field(default_factory=dict)
    verifiers: dict[str, Verifier] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        """Build everything; contacts no server."""
        runtime = cls(settings=settings)
        limits = settings.runtime
        for spec in settings.clusters:
            try:
                client = api_client(spec, pool_maxsize=limits.write_concurrency + 1)
            except ConfigError as exc:
                runtime.broken_clusters[spec.name] = exc
                continue
            bucket = TokenBucket(limits.api_qps, limits.api_burst)
            runtime.stores[spec.name] = SecretStore(spec.name, client, bucket)
        for registry in settings.registries:
            runtime.providers[registry.name] = create_provider(registry, runtime.read_secret)
            runtime.verifiers[registry.name] = Verifier(registry.verify)
        _freeze_startup_objects()
        return runtime

    @property
    def static_registries(self) -> frozenset[str]:
        """Registries whose credentials are read, not minted, and never expire."""
        return frozenset(name for name, p in self.providers.items() if p.static)

    def read_secret(self, *, cluster: str, namespace: str, name: str, key: str) -> bytes:
        """The SecretReader given to providers whose source is a Secret in a cluster."""
        store = self.stores.get(cluster)
        if store is None:
            broken = self.broken_clusters.get(cluster)
            reason = broken.message if broken else "not configured"
            raise ClusterError(f"cluster {cluster!r} is unavailable: {reason}", retryable=False)
        return store.read_key(namespace=namespace, name=name, key=key)

    def close(self) -> None:
        for verifier in self.verifiers.values():
            verifier.close()
        for store in self.stores.values():
            store.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
