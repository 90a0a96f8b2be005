"""What the ``rotate --now`` scenarios share: configs built per test, the CLI run in-process and
as a subprocess, Secret reads, skopeo, and the canary check every run passes through.

Every registry password a scenario uses is a fresh canary (``canary-<hex>``), added to the
registry as a real user at run time. Every CLI run, in-process or not, is checked for the
canaries in all the forms they could leak in (plain, base64 at any alignment, base64 of
``user:password``), so the whole scenario suite doubles as the secrets-hygiene test.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml

from rotator import cli, dockerconfig
from rotator.logs import REDACTED
from rotator.model import (
    ANN_EXPIRES_AT,
    ANN_FINGERPRINT,
    ANN_REGISTRIES,
    ANN_RENEW_AT,
    ANN_ROTATED_AT,
    ANN_VERIFIED_AT,
    DOCKERCONFIGJSON_KEY,
    DOCKERCONFIGJSON_TYPE,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    Credential,
)
from tests.world.kube import KubeWorld
from tests.world.pytest_kube import NamespaceFactory
from tests.world.pytest_registry import RegistryWorld, skopeo_inspect
from tests.world.tls import LocalCA

SECRET = "regcred"
TIME_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
ROTATOR_BIN = Path(sys.executable).with_name("rotator")

# -- canaries -------------------------------------------------------------------------------


def _base64_infixes(data: bytes) -> set[str]:
    """The base64 text ``data`` produces inside ANY larger base64 blob, at each of the three
    alignments (standard and URL-safe alphabets): only the characters that depend on ``data``
    alone are kept. Catches e.g. a whole base64 ``.dockerconfigjson`` echoed somewhere."""
    forms: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode()
        start = -(-8 * shift // 6)  # first character made of data bits only
        end = 8 * (shift + len(data)) // 6  # one past the last such character
        infix = encoded[start:end]
        forms.add(infix)
        forms.add(infix.translate(str.maketrans("+/", "-_")))
    return forms


@dataclass
class Canaries:
    """Secret values that must never appear in any output, in every form they could take."""

    forms: set[str] = field(default_factory=set)

    def add(self, username: str, password: str) -> None:
        self.forms.add(password)
        self.forms.add(password.removeprefix("canary-"))  # the random part alone
        self.forms |= _base64_infixes(password.encode())
        self.forms |= _base64_infixes(f"{username}:{password}".encode())
        auth = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.forms.add(base64.b64encode(password.encode()).decode())
        self.forms.add(auth)
        # The "auth" field inside a base64 blob (a Secret's data echoed whole).
        self.forms |= _base64_infixes(auth.encode())

    def found_in(self, text: str) -> list[str]:
        return sorted(form for form in self.forms if form in text)

    def assert_clean(self, text: str, where: str) -> None:
        leaked = self.found_in(text)
        assert not leaked, f"{where}: secret material in the output ({len(leaked)} forms)"


def canary_password() -> str:
    return f"canary-{secrets.token_hex(12)}"


# -- registry users -------------------------------------------------------------------------


@dataclass
class RegistryUser:
    """A user added to a world registry with a canary password, and its config entry."""

    name: str  # the config's registry name
    world: RegistryWorld
    username: str
    password: str
    password_file: Path

    @property
    def host(self) -> str:
        return self.world.host

    def credential(self) -> Credential:
        now = datetime.now(UTC)
        return Credential(
            registry=self.name,
            host=self.host,
            username=self.username,
            password=self.password,
            issued_at=now,
            expires_at=None,
        )


def expected_dockerconfig(users: Iterable[RegistryUser]) -> bytes:
    return dockerconfig.render(u.credential() for u in users)


# -- CLI results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def document(self) -> Any:
        return json.loads(self.out)

    def results(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(cluster, namespace) → the JSON result of ``rotate --output json``."""
        return {(r["cluster"], r["namespace"]): r for r in self.document["results"]}

    def log_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.err.splitlines() if line.startswith("{")]


# -- the environment of one scenario --------------------------------------------------------


class RotateEnv:
    """One scenario's world view: its namespaces (unique prefix), users, config files and runs."""

    def __init__(
        self,
        *,
        tmp_path: Path,
        kube_world: KubeWorld,
        namespaces: NamespaceFactory,
        basic: RegistryWorld,
        token: RegistryWorld,
        test_ca: LocalCA,
        capsys: pytest.CaptureFixture[str],
        label: str,
    ) -> None:
        self.tmp_path = tmp_path
        self.kube = kube_world
        self._namespaces = namespaces
        self.basic_world = basic
        self.token_world = token
        self.ca = test_ca
        self._capsys = capsys
        self.prefix = f"{label[:30].strip('-')}-{secrets.token_hex(3)}"
        self.canaries = Canaries()
        self._clients: dict[str, kubernetes.client.ApiClient] = {}
        self._configs = 0

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    # -- namespaces and users ------------------------------------------------------------

    def namespace(self, suffix: str, cluster: str = "alpha", **labels: str) -> str:
        """``<prefix>-<suffix>`` in ``cluster``; the same suffix in two clusters is one name."""
        name = f"{self.prefix}-{suffix}"
        self._namespaces(cluster, name=name, labels=labels)
        return name

    def foreign_namespace(self, cluster: str = "alpha") -> str:
        """A namespace whose name does not match the scenario's include glob."""
        return self._namespaces(cluster)

    @property
    def include(self) -> list[str]:
        return [f"{self.prefix}-*"]

    def user(self, name: str, world: RegistryWorld) -> RegistryUser:
        """A new registry user with a canary password, readable from a file."""
        username = f"pull-{secrets.token_hex(4)}"
        password = canary_password()
        self.canaries.add(username, password)
        access = {"team/*": ["pull"]} if world.mode == "token" else None
        world.registry.add_user(username, password, access)
        path = self.tmp_path / f"{name}-{username}.password"
        path.write_text(password + "\n")
        return RegistryUser(
            name=name, world=world, username=username, password=password, password_file=path
        )

    def basic_user(self, name: str = "basic") -> RegistryUser:
        return self.user(name, self.basic_world)

    def token_user(self, name: str = "token") -> RegistryUser:
        return self.user(name, self.token_world)

    def change_password(
        self, user: RegistryUser, *, on_registry: bool = True, in_file: bool = True
    ) -> str:
        """A new canary password: on the registry, in the source file, or both."""
        password = canary_password()
        self.canaries.add(user.username, password)
        if on_registry:
            access = {"team/*": ["pull"]} if user.world.mode == "token" else None
            user.world.registry.add_user(user.username, password, access)
        if in_file:
            user.password_file.write_text(password + "\n")
            user.password = password
        return password

    # -- config ----------------------------------------------------------------------------

    def cluster_entry(
        self, name: str, *, context: str | None = None, kubeconfig: Path | None = None
    ) -> dict[str, Any]:
        return {
            "name": name,
            "kubeconfig": str(kubeconfig or self.kube.kubeconfig_path),
            "context": context or name,
        }

    def registry_entry(self, user: RegistryUser, **generic: Any) -> dict[str, Any]:
        options: dict[str, Any] = generic or {
            "username": user.username,
            "password_from": {"file": str(user.password_file)},
        }
        return {
            "name": user.name,
            "provider": "generic",
            "host": user.host,
            "generic": options,
            "verify": {
                "ca_bundle": str(self.ca.ca_path),
                "probe": {"repository": user.world.repo, "reference": user.world.tag},
                "timeout_seconds": 10,
            },
        }

    def secret_entry(
        self,
        registries: Sequence[RegistryUser | str],
        *,
        name: str = SECRET,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        clusters: Sequence[str] | None = None,
        adopt: bool = False,
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": name,
            "registries": [r if isinstance(r, str) else r.name for r in registries],
            "namespaces": {"include": list(include or self.include)},
            "adopt": adopt,
        }
        if exclude:
            entry["namespaces"]["exclude"] = list(exclude)
        if clusters is not None:
            entry["clusters"] = list(clusters)
        return entry

    def write_config(
        self,
        *,
        clusters: Sequence[dict[str, Any]],
        registries: Sequence[dict[str, Any]],
        secrets: Sequence[dict[str, Any]],
        **extra: Any,
    ) -> Path:
        self._configs += 1
        path = self.tmp_path / f"rotator-{self._configs}.yaml"
        document = {
            "clusters": list(clusters),
            "registries": list(registries),
            "secrets": list(secrets),
            **extra,
        }
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def simple_config(
        self,
        users: Sequence[RegistryUser],
        *,
        clusters: Sequence[str] = ("alpha",),
        **secret: Any,
    ) -> Path:
        """Clusters by admin context, the users' registries, one Secret holding all of them."""
        return self.write_config(
            clusters=[self.cluster_entry(c) for c in clusters],
            registries=[self.registry_entry(u) for u in users],
            secrets=[self.secret_entry(users, **secret)],
        )

    def proxy_kubeconfig(self, server: str, cluster: str = "alpha") -> Path:
        """A kubeconfig whose only context talks to ``server`` (the fault proxy) as admin."""
        self._configs += 1
        path = self.tmp_path / f"proxy-{self._configs}.kubeconfig"
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster,
                    "cluster": {"server": server, "certificate-authority": str(self.ca.ca_path)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.kube.cluster(cluster).admin_token}}],
            "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": "admin"}}],
            "current-context": cluster,
        }
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)
        return path

    # -- running the CLI -------------------------------------------------------------------

    def run(self, *args: str) -> CliResult:
        """``rotator.cli.main(args)`` in this process, stdout and stderr captured; checked for
        canaries. The root logger is restored afterwards (main replaces its handlers)."""
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        self._capsys.readouterr()
        try:
            code = cli.main(list(args))
        finally:
            captured = self._capsys.readouterr()
            root.handlers[:] = handlers
            root.setLevel(level)
        result = CliResult(code=code, out=captured.out, err=captured.err)
        self.check_output(result, f"rotator {' '.join(args)}")
        return result

    def rotate(self, config: Path, *flags: str) -> CliResult:
        return self.run(
            "rotate",
            "--now",
            "--config",
            str(config),
            "--log-level",
            "debug",
            "--log-format",
            "json",
            "--output",
            "json",
            *flags,
        )

    def run_subprocess(
        self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 120
    ) -> CliResult:
        """The installed ``rotator`` console script, as a user runs it; checked for canaries."""
        done = subprocess.run(
            [str(ROTATOR_BIN), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.tmp_path,
            env={**os.environ, **(extra_env or {})},
        )
        result = CliResult(code=done.returncode, out=done.stdout, err=done.stderr)
        self.check_output(result, f"rotator {' '.join(args)} (subprocess)")
        return result

    def check_output(self, result: CliResult, where: str) -> None:
        self.canaries.assert_clean(result.out, f"{where}: stdout")
        self.canaries.assert_clean(result.err, f"{where}: stderr")
        assert "Traceback" not in result.out + result.err, f"{where}: a traceback\n{result.err}"
        # Redaction is the second line of defence: nothing should even need it.
        assert REDACTED not in result.out + result.err, f"{where}: the redactor had to step in"

    # -- reading and changing Secrets ------------------------------------------------------

    def client(self, cluster: str) -> kubernetes.client.ApiClient:
        if cluster not in self._clients:
            self._clients[cluster] = self.kube.cluster(cluster).admin_client()
        return self._clients[cluster]

    def core(self, cluster: str) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.client(cluster))

    def secret(self, cluster: str, namespace: str, name: str = SECRET) -> dict[str, Any] | None:
        """The Secret as the API server serves it (full JSON), or None when absent."""
        try:
            item = self.core(cluster).read_namespaced_secret(name, namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        document: dict[str, Any] = self.client(cluster).sanitize_for_serialization(item)
        return document

    def existing(self, cluster: str, namespace: str, name: str = SECRET) -> dict[str, Any]:
        found = self.secret(cluster, namespace, name)
        assert found is not None, f"no Secret {cluster}/{namespace}/{name}"
        return found

    def create_secret(
        self,
        cluster: str,
        namespace: str,
        *,
        data: dict[str, bytes],
        secret_type: str = DOCKERCONFIGJSON_TYPE,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        name: str = SECRET,
    ) -> dict[str, Any]:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels or {},
                "annotations": annotations or {},
            },
            "type": secret_type,
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }
        self.core(cluster).create_namespaced_secret(namespace, body)
        return self.existing(cluster, namespace, name)

    def patch_annotations(
        self, cluster: str, namespace: str, annotations: dict[str, str], name: str = SECRET
    ) -> dict[str, Any]:
        body = {"metadata": {"annotations": annotations}}
        self.core(cluster).patch_namespaced_secret(name, namespace, body)
        return self.existing(cluster, namespace, name)

    # -- skopeo ----------------------------------------------------------------------------

    def skopeo_inspect(self, secret: dict[str, Any], world: RegistryWorld) -> dict[str, Any]:
        """``skopeo inspect`` of the world's test image with the Secret's .dockerconfigjson as
        the auth file: an independent client (containers/image, as CRI-O) proving it pulls."""
        authfile = self.tmp_path / f"auth-{secrets.token_hex(4)}.json"
        authfile.write_bytes(base64.b64decode(secret["data"][DOCKERCONFIGJSON_KEY]))
        authfile.chmod(0o600)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.tmp_path),  # no ~/.docker/config.json or containers auth of ours
        }
        done = skopeo_inspect(world, authfile, env=env)
        authfile.unlink()
        assert done.returncode == 0, f"skopeo inspect {world.reference} failed: {done.stderr}"
        document: dict[str, Any] = json.loads(done.stdout)
        return document


@contextmanager
def rotate_env(request: pytest.FixtureRequest) -> Iterator[RotateEnv]:
    """A scenario's RotateEnv, built from the world fixtures of the requesting test."""
    label = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).removeprefix("test-")
    env = RotateEnv(
        tmp_path=request.getfixturevalue("tmp_path"),
        kube_world=request.getfixturevalue("kube_world"),
        namespaces=request.getfixturevalue("kube_namespace"),
        basic=request.getfixturevalue("basic_registry"),
        token=request.getfixturevalue("token_registry"),
        test_ca=request.getfixturevalue("test_ca"),
        capsys=request.getfixturevalue("capsys"),
        label=label.strip("-")[:30] or "rot",
    )
    try:
        yield env
    finally:
        env.close()


# -- assertions on written Secrets ----------------------------------------------------------


def parse_time(text: str) -> datetime:
    assert TIME_SHAPE.fullmatch(text), f"{text!r} is not YYYY-MM-DDTHH:MM:SSZ"
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def fingerprint_shape(registries: Sequence[str]) -> re.Pattern[str]:
    digests = ",".join(f"{re.escape(r)}=[0-9a-f]{{24}}" for r in sorted(registries))
    return re.compile(rf"v1:[A-Za-z0-9_-]+=*:{digests}")


def assert_managed_secret(
    secret: dict[str, Any],
    users: Sequence[RegistryUser],
    *,
    canaries: Canaries,
    since: datetime,
    until: datetime | None = None,
    extra_labels: dict[str, str] | None = None,
) -> None:
    """Exactly what the rotator must write for ``users``' static credentials."""
    until = until or datetime.now(UTC)
    meta = secret["metadata"]
    assert secret["type"] == DOCKERCONFIGJSON_TYPE
    assert set(secret["data"]) == {DOCKERCONFIGJSON_KEY}
    stored = base64.b64decode(secret["data"][DOCKERCONFIGJSON_KEY])
    assert stored == expected_dockerconfig(users)
    assert json.loads(stored) == {
        "auths": {
            u.host: {
                "username": u.username,
                "password": u.password,
                "auth": base64.b64encode(f"{u.username}:{u.password}".encode()).decode(),
            }
            for u in users
        }
    }
    assert meta.get("labels") == {MANAGED_BY_LABEL: MANAGED_BY_VALUE, **(extra_labels or {})}
    notes = {k: v for k, v in meta["annotations"].items() if k.startswith("rotator.dev/")}
    assert set(notes) == {ANN_REGISTRIES, ANN_ROTATED_AT, ANN_VERIFIED_AT, ANN_FINGERPRINT}
    assert ANN_EXPIRES_AT not in notes  # static credentials: no expiry, no renew-at
    assert ANN_RENEW_AT not in notes
    assert notes[ANN_REGISTRIES] == ",".join(u.name for u in users)
    window = (since.replace(microsecond=0) - timedelta(seconds=1), until + timedelta(seconds=1))
    for key in (ANN_ROTATED_AT, ANN_VERIFIED_AT):
        assert window[0] <= parse_time(notes[key]) <= window[1], (key, notes[key])
    assert fingerprint_shape([u.name for u in users]).fullmatch(notes[ANN_FINGERPRINT])
    canaries.assert_clean(json.dumps(meta), "the Secret's metadata")
