"""The whole local world in one context manager, for people and scripts rather than pytest:
``python -m tests.world`` (prints where everything is), the ``make run`` demo and the
benchmark use it; the pytest fixtures start the same pieces one by one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.world.kube import KubeWorld
from tests.world.pytest_registry import RegistryWorld, registry_world
from tests.world.tls import LocalCA


@dataclass(frozen=True)
class LocalWorld:
    directory: Path
    ca: LocalCA
    kube: KubeWorld
    basic: RegistryWorld | None
    token: RegistryWorld | None

    def password_file(self, label: str) -> Path:
        return self.directory / "registries" / f"{label}-puller.password"

    def describe(self) -> str:
        lines = [f"local world in {self.directory}", f"  CA: {self.ca.ca_path}"]
        for name, cluster in self.kube.clusters.items():
            lines.append(f"  cluster {name}: {cluster.server} (kubeconfig context {name!r})")
        lines.append(f"  kubeconfig: {self.kube.kubeconfig_path}")
        for label, world in (("htpasswd", self.basic), ("token", self.token)):
            if world is not None:
                lines.append(
                    f"  registry ({label}): https://{world.host}  image {world.reference}  "
                    f"user {world.puller.username}, password in {self.password_file(label)}"
                )
        return "\n".join(lines)


@contextmanager
def local_world(directory: Path, *, registries: bool = True) -> Iterator[LocalWorld]:
    directory.mkdir(parents=True, exist_ok=True)
    ca = LocalCA.create(directory / "ca")
    with ExitStack() as stack:
        kube = KubeWorld(directory / "kube", ca).start()
        stack.callback(kube.stop)
        basic = token = None
        if registries:
            basic = stack.enter_context(registry_world(ca, directory / "registries", "htpasswd"))
            token = stack.enter_context(registry_world(ca, directory / "registries", "token"))
        world = LocalWorld(directory=directory, ca=ca, kube=kube, basic=basic, token=token)
        for label, registry in (("htpasswd", basic), ("token", token)):
            if registry is not None:
                # The puller's password, for a person or a demo config to read (owner-only).
                path = world.password_file(label)
                path.touch(mode=0o600)
                path.write_text(registry.puller.password + "\n")
        yield world
