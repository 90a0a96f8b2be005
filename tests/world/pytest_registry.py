"""Session fixtures: one htpasswd (Basic) and one token (Bearer) registry, each with `team/app:v1`.

Tests that change users should add their own with unique names rather than touch the users
below: both registries live for the whole session.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.world.image import push_image
from tests.world.registry import Credentials, Mode, Registry
from tests.world.tls import LocalCA

REPO = "team/app"
TAG = "v1"


@dataclass(frozen=True)
class RegistryWorld:
    """A running registry, the image pushed to it, and users with known rights."""

    registry: Registry
    repo: str
    tag: str
    digest: str  # manifest digest of repo:tag, as Docker-Content-Digest reports it
    pusher: Credentials  # pull and push everywhere
    puller: Credentials  # token mode: pull only, on team/*; htpasswd mode: any valid user
    # Token mode: a valid password but rights only on other/*; None in htpasswd mode, where
    # every user that authenticates may do everything.
    outsider: Credentials | None

    @property
    def mode(self) -> Mode:
        return self.registry.mode

    @property
    def host(self) -> str:
        return self.registry.host

    @property
    def url(self) -> str:
        return self.registry.url

    @property
    def ca_path(self) -> Path:
        return self.registry.ca_path

    @property
    def cert_dir(self) -> Path:
        return self.registry.cert_dir

    @property
    def reference(self) -> str:
        """`127.0.0.1:<port>/team/app:v1`"""
        return f"{self.host}/{self.repo}:{self.tag}"


def _password() -> str:
    return secrets.token_urlsafe(12)


@contextmanager
def registry_world(ca: LocalCA, directory: Path, mode: Mode) -> Iterator[RegistryWorld]:
    """A started registry with `team/app:v1` pushed and the users above; stopped on exit."""
    registry = Registry(ca=ca, directory=directory, mode=mode).start()
    try:
        if mode == "token":
            pusher = registry.add_user("pusher", _password())
            puller = registry.add_user("puller", _password(), {"team/*": ["pull"]})
            outsider: Credentials | None = registry.add_user(
                "outsider", _password(), {"other/*": ["pull", "push"]}
            )
        else:
            pusher = registry.add_user("pusher", _password())
            puller = registry.add_user("puller", _password())
            outsider = None
        digest = push_image(registry, REPO, TAG, pusher.username, pusher.password)
        yield RegistryWorld(
            registry=registry,
            repo=REPO,
            tag=TAG,
            digest=digest,
            pusher=pusher,
            puller=puller,
            outsider=outsider,
        )
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def basic_registry(world_dir: Path, test_ca: LocalCA) -> Iterator[RegistryWorld]:
    with registry_world(test_ca, world_dir, "htpasswd") as world:
        yield world


@pytest.fixture(scope="session")
def token_registry(world_dir: Path, test_ca: LocalCA) -> Iterator[RegistryWorld]:
    with registry_world(test_ca, world_dir, "token") as world:
        yield world


def skopeo_inspect(
    world: RegistryWorld, authfile: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``skopeo inspect`` of the world's image with a docker config file: an independent
    client that shares CRI-O's and podman's auth code, so it pulls as a node would."""
    command = ["skopeo", "inspect", "--authfile", str(authfile), "--cert-dir", str(world.cert_dir)]
    return subprocess.run(
        [*command, *args, f"docker://{world.reference}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
