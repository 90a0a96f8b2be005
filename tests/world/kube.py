"""A real Kubernetes control plane on loopback: one etcd, two kube-apiservers, two controllers.

The two API servers share one etcd under different `--etcd-prefix` values, which gives two
independent clusters ("alpha" and "beta") for the price of one etcd. Each serves TLS with a
certificate from the world's LocalCA, so clients verify the server exactly as they would in
production. Authentication is static bearer tokens (an admin in `system:masters` and a user
"limited" with no RBAC bindings), authorization is RBAC, so 401/403 answers are the real ones.

A kube-controller-manager per cluster runs only the namespace controller (and the service-account
controller, so each namespace gets its `default` ServiceAccount like a real cluster): without it a
deleted namespace stays Terminating forever.

Usable from pytest (see tests/world/pytest_kube.py) and from a hand-run launcher:

    world = KubeWorld(Path("/tmp/w"), LocalCA.create(Path("/tmp/w/ca"))).start()
    ...
    world.stop()
"""

from __future__ import annotations

import http.client
import os
import secrets
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes.client
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.world.procs import Process, free_port
from tests.world.tls import LocalCA

CLUSTER_NAMES = ("alpha", "beta")
ADMIN_USER = "admin"
LIMITED_USER = "limited"
CONTROLLER_MANAGER_USER = "kube-controller-manager"
BINARIES = ("kube-apiserver", "kube-controller-manager", "etcd")

_REPO_ROOT = Path(__file__).resolve().parents[2]
_LOOPBACK = "127.0.0.1"

# The namespace controller issues a LIST and a DELETECOLLECTION per resource type for every
# namespace it empties (about 100 requests); the client-go default of 20 QPS would make each
# namespace deletion take seconds.
_CONTROLLER_QPS = "500"
_CONTROLLER_BURST = "1000"


def find_kube_binaries() -> Path:
    """The folder holding kube-apiserver, kube-controller-manager and etcd.

    KUBEBUILDER_ASSETS wins (the envtest convention); otherwise hack/build-kube.sh builds the
    binaries once into the ignored cache and prints their folder as its last stdout line.
    """
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        folder = Path(assets)
    else:
        script = _REPO_ROOT / "hack" / "build-kube.sh"
        result = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, check=False, cwd=_REPO_ROOT
        )
        if result.returncode != 0:
            tail = "\n".join(result.stderr.splitlines()[-30:])
            raise RuntimeError(f"{script} failed with exit code {result.returncode}:\n{tail}")
        lines = result.stdout.strip().splitlines()
        if not lines:
            raise RuntimeError(f"{script} printed no binary folder")
        folder = Path(lines[-1])
    missing = [name for name in BINARIES if not os.access(folder / name, os.X_OK)]
    if missing:
        raise RuntimeError(f"{folder} lacks executable {', '.join(missing)}")
    return folder


def _get_status(port: int, path: str, context: ssl.SSLContext | None) -> tuple[int, str]:
    """GET over HTTPS with ``context``, or plain HTTP without one.

    http.client rather than urllib: urllib honours *_PROXY variables, which must never see
    loopback traffic of the test world.
    """
    conn = (
        http.client.HTTPConnection(_LOOPBACK, port, timeout=2)
        if context is None
        else http.client.HTTPSConnection(_LOOPBACK, port, context=context, timeout=2)
    )
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def _wait_healthy(
    procs: Sequence[tuple[Process, int, str]],
    *,
    context: ssl.SSLContext | None,
    timeout: float,
) -> None:
    """Poll several servers at once until each answers 200 on its health path.

    Polling them together is what makes concurrent start-up pay off: the slowest server sets
    the wait, not the sum of all of them.
    """
    pending = list(procs)
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    while pending:
        for item in list(pending):
            proc, port, path = item
            if not proc.running():
                code = proc.popen.returncode if proc.popen else None
                raise RuntimeError(
                    f"{proc.name} exited with {code} before it was healthy; log tail "
                    f"({proc.log_path}):\n{proc.log_tail(40)}"
                )
            try:
                status, body = _get_status(port, path, context)
            except (OSError, http.client.HTTPException) as exc:
                last[proc.name] = repr(exc)
                continue
            if status == 200:
                pending.remove(item)
            else:
                last[proc.name] = f"HTTP {status}: {body[-500:]}"
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(p.name for p, _, _ in pending)
            details = "\n".join(
                f"--- {p.name}: {last.get(p.name, '')}\n{p.log_tail(20)}" for p, _, _ in pending
            )
            raise TimeoutError(f"{names} not healthy within {timeout}s:\n{details}")
        time.sleep(0.1)


def _write_token_file(path: Path, rows: Sequence[tuple[str, str, str]]) -> None:
    # Format of --token-auth-file: token,user,uid[,"group1,group2"]. An empty groups column
    # would give the user a group named "", so it is left out instead.
    lines = [
        f'{token},{user},{user},"{groups}"' if groups else f"{token},{user},{user}"
        for token, user, groups in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def _write_service_account_keys(directory: Path) -> tuple[Path, Path]:
    # P-256 rather than RSA: generated in microseconds, and the API server signs ES256 tokens.
    key = ec.generate_private_key(ec.SECP256R1())
    private_path = directory / "sa.key"
    public_path = directory / "sa.pub"
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    private_path.chmod(0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def _kubeconfig(
    clusters: Sequence[tuple[str, str, Path]], users: Sequence[tuple[str, str, str, str]]
) -> dict[str, Any]:
    """clusters: (name, server, ca); users: (context, cluster, user name, token)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority": str(ca)}}
            for name, server, ca in clusters
        ],
        "users": [{"name": user, "user": {"token": token}} for _, _, user, token in users],
        "contexts": [
            {"name": context, "context": {"cluster": cluster, "user": user}}
            for context, cluster, user, _ in users
        ],
        "current-context": users[0][0] if users else "",
    }


@dataclass(kw_only=True)
class KubeCluster:
    """One API server (and its controller manager) of the world, with what clients need."""

    name: str
    port: int
    ca_path: Path
    admin_token: str = field(repr=False)
    limited_token: str = field(repr=False)
    directory: Path
    controller_token: str = field(repr=False)
    controller_port: int = field(repr=False)
    apiserver: Process = field(repr=False)
    controller_manager: Process = field(repr=False)

    @property
    def server(self) -> str:
        return f"https://{_LOOPBACK}:{self.port}"

    @property
    def etcd_prefix(self) -> str:
        return f"/{self.name}"

    def running(self) -> bool:
        return self.apiserver.running()

    def configuration(self, token: str) -> kubernetes.client.Configuration:
        """Client settings that verify the server against the world's CA and send `token`.

        Returned separately so a test can adjust them (retries, timeouts) before building a
        client: an ApiClient reads them once, when it creates its connection pool.
        """
        config = kubernetes.client.Configuration()
        config.host = self.server
        config.ssl_ca_cert = str(self.ca_path)
        config.verify_ssl = True
        config.api_key = {"authorization": token}
        config.api_key_prefix = {"authorization": "Bearer"}
        return config

    def api_client(self, token: str) -> kubernetes.client.ApiClient:
        return kubernetes.client.ApiClient(self.configuration(token))

    def admin_client(self) -> kubernetes.client.ApiClient:
        return self.api_client(self.admin_token)

    def limited_client(self) -> kubernetes.client.ApiClient:
        return self.api_client(self.limited_token)


class KubeWorld:
    """etcd + one API server and controller manager per cluster, all on 127.0.0.1.

    `start()` returns once every API server answers /readyz and every controller manager
    /healthz; `stop()` tears everything down by PID and is safe to call more than once.
    """

    def __init__(
        self,
        directory: Path,
        ca: LocalCA,
        *,
        cluster_names: Sequence[str] = CLUSTER_NAMES,
        bin_dir: Path | None = None,
        ready_timeout: float = 60.0,
    ) -> None:
        if len(set(cluster_names)) != len(cluster_names) or not cluster_names:
            raise ValueError(f"cluster names must be distinct and non-empty: {cluster_names!r}")
        self.directory = directory
        self.ca = ca
        self.cluster_names = tuple(cluster_names)
        self.ready_timeout = ready_timeout
        self._bin_dir = bin_dir
        self._clusters: dict[str, KubeCluster] = {}
        self._etcd: Process | None = None
        self._etcd_port = 0
        self.startup_seconds: float | None = None

    # -- public surface ----------------------------------------------------------------------

    @property
    def ca_path(self) -> Path:
        return self.ca.ca_path

    @property
    def kubeconfig_path(self) -> Path:
        """Contexts "<cluster>" (admin) and "<cluster>-limited" for every cluster."""
        return self.directory / "kubeconfig"

    @property
    def etcd_url(self) -> str:
        return f"http://{_LOOPBACK}:{self._etcd_port}"

    @property
    def clusters(self) -> dict[str, KubeCluster]:
        return dict(self._clusters)

    def cluster(self, name: str) -> KubeCluster:
        try:
            return self._clusters[name]
        except KeyError:
            raise KeyError(f"no cluster {name!r}; known: {', '.join(self._clusters)}") from None

    def __getitem__(self, name: str) -> KubeCluster:
        return self.cluster(name)

    def api_client(self, name: str, token: str) -> kubernetes.client.ApiClient:
        return self.cluster(name).api_client(token)

    def start(self) -> KubeWorld:
        began = time.monotonic()
        try:
            bin_dir = self._bin_dir or find_kube_binaries()
            self.directory.mkdir(parents=True, exist_ok=True)
            self._start_etcd(bin_dir)
            for name in self.cluster_names:
                self._clusters[name] = self._prepare_cluster(name, bin_dir)
            self._write_kubeconfig()
            for cluster in self._clusters.values():
                cluster.apiserver.start()
            self._wait_apiservers(list(self._clusters.values()))
            for cluster in self._clusters.values():
                cluster.controller_manager.start()
            self._wait_controller_managers(list(self._clusters.values()))
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        # Controller managers first: an API server that still has their watches open waits for
        # them during graceful shutdown instead of exiting.
        clusters = list(self._clusters.values())
        _stop_all([c.controller_manager for c in clusters])
        _stop_all([c.apiserver for c in clusters])
        if self._etcd is not None:
            self._etcd.stop()

    def stop_cluster(self, name: str) -> None:
        """Take one cluster's API server down (its port stops answering); etcd keeps its data."""
        cluster = self.cluster(name)
        cluster.controller_manager.stop()
        cluster.apiserver.stop()

    def start_cluster(self, name: str) -> None:
        """Bring a stopped cluster back on the same port, with the same tokens and data."""
        cluster = self.cluster(name)
        if cluster.running():
            return
        cluster.apiserver.start()
        self._wait_apiservers([cluster])
        cluster.controller_manager.start()
        self._wait_controller_managers([cluster])

    @contextmanager
    def cluster_down(self, name: str) -> Iterator[KubeCluster]:
        """Within the block the cluster is down; afterwards it is back, even on failure."""
        self.stop_cluster(name)
        try:
            yield self.cluster(name)
        finally:
            self.start_cluster(name)

    def __enter__(self) -> KubeWorld:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- start-up ----------------------------------------------------------------------------

    def _start_etcd(self, bin_dir: Path) -> None:
        self._etcd_port = free_port()
        peer_url = f"http://{_LOOPBACK}:{free_port()}"
        folder = self.directory / "etcd"
        folder.mkdir(parents=True, exist_ok=True)
        self._etcd = Process(
            name="etcd",
            argv=[
                str(bin_dir / "etcd"),
                "--name=world",
                f"--data-dir={folder / 'data'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=world={peer_url}",
                # Throw-away data: skipping fsync makes every write the API server does cheap.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            log_path=folder / "etcd.log",
        ).start()
        _wait_healthy([(self._etcd, self._etcd_port, "/health")], context=None, timeout=30)

    def _prepare_cluster(self, name: str, bin_dir: Path) -> KubeCluster:
        folder = self.directory / name
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        controller_port = free_port()
        serving = self.ca.issue(f"kube-apiserver-{name}")
        controller_serving = self.ca.issue(f"kube-controller-manager-{name}")
        sa_private, sa_public = _write_service_account_keys(folder)
        # Tokens differ per cluster, so a token of one cluster is a 401 on the other.
        admin_token = secrets.token_hex(16)
        limited_token = secrets.token_hex(16)
        controller_token = secrets.token_hex(16)
        tokens = folder / "tokens.csv"
        _write_token_file(
            tokens,
            [
                (admin_token, ADMIN_USER, "system:masters"),
                (limited_token, LIMITED_USER, ""),
                (controller_token, CONTROLLER_MANAGER_USER, "system:masters"),
            ],
        )
        apiserver = Process(
            name=f"kube-apiserver[{name}]",
            argv=[
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                f"--etcd-prefix=/{name}",
                f"--bind-address={_LOOPBACK}",
                f"--advertise-address={_LOOPBACK}",
                f"--secure-port={port}",
                f"--tls-cert-file={serving.cert_path}",
                f"--tls-private-key-file={serving.key_path}",
                # Never used while the TLS files are given, but keeps the default
                # /var/run/kubernetes out of the picture.
                f"--cert-dir={folder / 'certs'}",
                f"--service-account-key-file={sa_public}",
                f"--service-account-signing-key-file={sa_private}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.0.0.0/24",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                # APF adds a config controller writing FlowSchemas at start-up; the plain
                # max-in-flight limits are enough here. Measured: start-up ~0.1 s faster.
                "--enable-priority-and-fairness=false",
                # Without it an open watch (the rotator daemon's, a test's) holds graceful
                # shutdown until the stop grace runs out and the process is killed.
                "--shutdown-watch-termination-grace-period=1s",
                "--profiling=false",
            ],
            log_path=folder / "kube-apiserver.log",
        )
        server = f"https://{_LOOPBACK}:{port}"
        controller_kubeconfig = folder / "controller-manager.kubeconfig"
        controller_kubeconfig.write_text(
            yaml.safe_dump(
                _kubeconfig(
                    [(name, server, self.ca.ca_path)],
                    [(name, name, CONTROLLER_MANAGER_USER, controller_token)],
                )
            )
        )
        controller_kubeconfig.chmod(0o600)
        controller_manager = Process(
            name=f"kube-controller-manager[{name}]",
            argv=[
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={controller_kubeconfig}",
                "--controllers=namespace,serviceaccount",
                "--leader-elect=false",
                f"--bind-address={_LOOPBACK}",
                f"--secure-port={controller_port}",
                # Served with a world certificate so its /healthz is probed with TLS verified.
                f"--tls-cert-file={controller_serving.cert_path}",
                f"--tls-private-key-file={controller_serving.key_path}",
                f"--cert-dir={folder / 'controller-certs'}",
                f"--kube-api-qps={_CONTROLLER_QPS}",
                f"--kube-api-burst={_CONTROLLER_BURST}",
                "--profiling=false",
            ],
            log_path=folder / "kube-controller-manager.log",
        )
        return KubeCluster(
            name=name,
            port=port,
            ca_path=self.ca.ca_path,
            admin_token=admin_token,
            limited_token=limited_token,
            directory=folder,
            controller_token=controller_token,
            controller_port=controller_port,
            apiserver=apiserver,
            controller_manager=controller_manager,
        )

    def _write_kubeconfig(self) -> None:
        clusters = [(c.name, c.server, c.ca_path) for c in self._clusters.values()]
        users: list[tuple[str, str, str, str]] = []
        for c in self._clusters.values():
            users.append((c.name, c.name, f"{c.name}-{ADMIN_USER}", c.admin_token))
        for c in self._clusters.values():
            users.append((f"{c.name}-limited", c.name, f"{c.name}-{LIMITED_USER}", c.limited_token))
        self.kubeconfig_path.write_text(yaml.safe_dump(_kubeconfig(clusters, users)))
        self.kubeconfig_path.chmod(0o600)

    def _wait_apiservers(self, clusters: Sequence[KubeCluster]) -> None:
        # /readyz includes the RBAC bootstrap post-start hook, so once it is 200 the default
        # roles exist and 403s are the ones a real cluster gives.
        _wait_healthy(
            [(c.apiserver, c.port, "/readyz") for c in clusters],
            context=self.ca.client_context(),
            timeout=self.ready_timeout,
        )

    def _wait_controller_managers(self, clusters: Sequence[KubeCluster]) -> None:
        _wait_healthy(
            [(c.controller_manager, c.controller_port, "/healthz") for c in clusters],
            context=self.ca.client_context(),
            timeout=self.ready_timeout,
        )


def _stop_all(procs: Sequence[Process]) -> None:
    """Stop processes in parallel: each API server takes about a second to shut down."""
    threads = [threading.Thread(target=p.stop, name=f"stop {p.name}") for p in procs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
