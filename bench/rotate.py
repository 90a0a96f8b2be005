"""``rotate --now`` at scale: the rotator against its floor and against the kubectl pipeline.

    python -m bench.rotate [--namespaces 1000] [--kubectl-sample 50] [--concurrency 8]
                           [--repeat 7] [--kubectl PATH] [--no-cli]

One run starts the local world (tests/world/local.py) in a temporary folder, creates N
namespaces on cluster alpha, does an initial rotation so that the N Secrets exist, then
measures, all against the same real kube-apiserver + etcd and the real htpasswd registry:

rotator
    ``run_once(force=True)`` on a Runtime built like the CLI's (one generic registry, probe
    team/app:v1): observe (2 LISTs) + mint + pre-verify + N replaces + post-verify. Logging is
    configured as the CLI does (JSON, redacting), into /dev/null. Timed ``--repeat`` times after
    one untimed warm-up round; best and median reported. Then one extra round with each phase
    timed (where the time goes), and one informational run of the whole CLI process
    (``rotator rotate --now --force``: interpreter start, imports, config, TLS, summary output).
floor
    N ``SecretStore.bare_replace`` calls — the same client, connection pool, path, query and
    timeout as the rotator's PUT — from a ThreadPoolExecutor of the same concurrency, with
    pre-rendered bodies and nothing else. Each round's bodies carry a new ``.dockerconfigjson``
    (a PUT of identical content skips the etcd write and would flatter the floor), and the
    current resourceVersion, read by one LIST right before the round, outside the timed part.
    Rounds of rotator and floor alternate (and which goes first alternates), so drift (etcd
    growth, compaction, a neighbour's load) hits both alike; the per-round ratio of adjacent
    pairs is printed next to best/best and median/median.
kubectl
    ``kubectl create secret docker-registry --dry-run=client -o yaml | kubectl apply -f -``
    replacing the same Secret, sequentially in ``--kubectl-sample`` namespaces, scaled to N.
    Its discovery cache is warmed by one untimed pipeline first (this favours kubectl). It runs
    last, because apply leaves a last-applied annotation on the Secrets it touches.

Requests are counted, not mocked: the API client's ``call_api`` (the layer under
``rotator.kubeapi.send``) and the verifier's ``RegistryHTTP.send`` are wrapped with recorders
that pass every call through to the real servers.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import logging
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import httpx
import kubernetes.client
import yaml

from rotator import rotation, runner
from rotator.config import parse_settings
from rotator.kubeapi import send
from rotator.logs import setup_logging
from rotator.model import MANAGED_BY_LABEL, MANAGED_BY_VALUE, Outcome
from rotator.registry_http import Answer
from rotator.runner import RunOptions, RunReport, run_once
from rotator.runtime import Runtime
from rotator.writer import SecretStore
from tests.world.local import LocalWorld, local_world
from tests.world.pytest_registry import RegistryWorld

CLUSTER = "alpha"
REGISTRY = "basic"
SECRET = "regcred"
PREFIX = "bench-"


# -- counting -------------------------------------------------------------------------------


class Recorder:
    """A thread-safe tally of requests by kind; ``take`` returns it and starts a new one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1

    def take(self) -> Counter[str]:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts


def api_kind(method: str, url: str) -> str:
    path = urlsplit(url).path
    if method == "GET" and path == "/api/v1/secrets":
        return "LIST secrets"
    if method == "GET" and path == "/api/v1/namespaces":
        return "LIST namespaces"
    resource = "secret" if "/secrets" in path else path
    return f"{method} {resource}"


def record_api(client: kubernetes.client.ApiClient, recorder: Recorder) -> None:
    """Count every request the client sends (``send`` ends in ``ApiClient.call_api``)."""
    call_api = client.call_api

    def counting(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        recorder.add(api_kind(method, url))
        return call_api(method, url, *args, **kwargs)

    client.call_api = counting  # type: ignore[method-assign]  # a recorder, passes through


def registry_kind(method: str, url: httpx.URL, headers: dict[str, str]) -> str:
    path = url.path
    if path == "/v2/":
        what = "/v2/"
    elif "/manifests/" in path:
        what = "manifest"
    else:
        what = f"{path} (token)"
    auth = headers.get("Authorization", "").split(" ", 1)[0].lower() or "anonymous"
    return f"{method} {what} [{auth}]"


def record_registry(runtime: Runtime, recorder: Recorder) -> None:
    for verifier in runtime.verifiers.values():
        http = verifier.http
        send = http.send

        def counting(
            method: str,
            url: httpx.URL,
            headers: dict[str, str],
            send: Callable[[str, httpx.URL, dict[str, str]], Answer] = send,
        ) -> Answer:
            recorder.add(registry_kind(method, url, headers))
            return send(method, url, headers)

        http.send = counting  # type: ignore[method-assign]  # a recorder, passes through


# -- the world ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    world: LocalWorld
    folder: Path
    namespaces: list[str]
    concurrency: int

    @property
    def registry(self) -> RegistryWorld:
        assert self.world.basic is not None  # noqa: S101  # local_world(registries=True)
        return self.world.basic

    def config(self) -> dict[str, Any]:
        password = self.folder / "puller.password"
        if not password.exists():
            password.touch(mode=0o600)
            password.write_text(self.registry.puller.password)
        return {
            "clusters": [
                {
                    "name": CLUSTER,
                    "kubeconfig": str(self.world.kube.kubeconfig_path),
                    "context": CLUSTER,
                }
            ],
            "registries": [
                {
                    "name": REGISTRY,
                    "provider": "generic",
                    "host": self.registry.host,
                    "generic": {
                        "username": self.registry.puller.username,
                        "password_from": {"file": str(password)},
                    },
                    "verify": {
                        "probe": {
                            "repository": self.registry.repo,
                            "reference": self.registry.tag,
                        },
                        "ca_bundle": str(self.registry.ca_path),
                    },
                }
            ],
            "secrets": [
                {
                    "name": SECRET,
                    "registries": [REGISTRY],
                    "clusters": [CLUSTER],
                    "namespaces": {"include": [f"{PREFIX}*"]},
                }
            ],
            # High enough that the client-side limiter never waits: the benchmark measures the
            # work, not the throttle (defaults: 100 qps, burst 200).
            "runtime": {
                "write_concurrency": self.concurrency,
                "api_qps": 10_000,
                "api_burst": 10_000,
            },
        }

    def open_runtime(self) -> Runtime:
        return Runtime.open(parse_settings(self.config()))

    def admin(self) -> kubernetes.client.ApiClient:
        return self.world.kube.cluster(CLUSTER).admin_client()


def list_items(admin: kubernetes.client.ApiClient, path: str, **query: str) -> list[Any]:
    """A LIST through the same bare ``send`` the rotator uses, decoded as plain JSON."""
    status, raw = send(admin, "GET", path, query=tuple(query.items()))
    if status != 200:
        raise RuntimeError(f"LIST {path} answered {status}")
    items: list[Any] = json.loads(raw).get("items") or []
    return items


def create_namespaces(admin: kubernetes.client.ApiClient, names: Sequence[str]) -> None:
    def create(name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        status, raw = send(admin, "POST", "/api/v1/namespaces", body=body)
        if status != 201:
            raise RuntimeError(f"creating namespace {name} answered {status}: {raw[:200]!r}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, names))
    # The world's service-account controller now writes a `default` ServiceAccount into each
    # new namespace; let it finish so its writes do not land inside a measurement.
    deadline = time.monotonic() + 300
    wanted = set(names)
    while time.monotonic() < deadline:
        accounts = list_items(
            admin, "/api/v1/serviceaccounts", fieldSelector="metadata.name=default"
        )
        if wanted <= {a["metadata"]["namespace"] for a in accounts}:
            return
        time.sleep(0.5)
    raise TimeoutError("the service-account controller did not catch up within 300 s")


# -- measurements ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One timed round: wall time, CPU time of this whole process (every thread), and the
    time spent in the cyclic garbage collector, with how many of its runs were full (gen 2)."""

    wall: float
    cpu: float
    gc: float = 0.0
    full_gcs: int = 0


class GcClock:
    """A ``gc.callbacks`` entry adding up collector pauses (it holds the GIL meanwhile)."""

    def __init__(self) -> None:
        self.spent = 0.0
        self.full = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.spent += time.perf_counter() - self._started
        self.full += info.get("generation") == 2


GC_CLOCK = GcClock()


@contextmanager
def stopwatch(into: list[Sample]) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    spent, full = GC_CLOCK.spent, GC_CLOCK.full
    yield
    into.append(
        Sample(
            wall=time.perf_counter() - wall,
            cpu=time.process_time() - cpu,
            gc=GC_CLOCK.spent - spent,
            full_gcs=GC_CLOCK.full - full,
        )
    )


def rotate(runtime: Runtime, expected: int, into: list[Sample]) -> RunReport:
    now = datetime.now(UTC)
    with stopwatch(into):
        report = run_once(runtime, now=now, options=RunOptions(force=True))
    outcomes = Counter(str(r.outcome) for r in report.results)
    verified = sum(r.verified for r in report.results)
    if outcomes != {str(Outcome.ROTATED): expected} or verified != expected:
        raise RuntimeError(f"rotation did not rotate and verify all {expected}: {outcomes}")
    return report


# Where a rotation's time goes: (module or class, attribute, label). Private names can move
# under refactoring; a missing one is skipped, never an error.
PHASES: tuple[tuple[object, str, str], ...] = (
    (runner, "observe", "observe (2 LISTs + parse)"),
    (runner, "plan_run", "plan (+ read static source)"),
    (rotation.Rotation, "_mint_and_verify", "mint + pre-verify"),
    (rotation.Rotation, "_write_all", "write (N replaces)"),
    (rotation.Rotation, "_post_verify", "post-verify"),
    (runner, "_log_result", "log one line per Secret"),
)


def breakdown(runtime: Runtime, expected: int) -> tuple[Sample, dict[str, Sample]]:
    """One extra, untimed-for-the-ratios rotation with each phase timed by a pass-through
    wrapper (wall and process CPU). The wrappers are removed before returning."""
    spent: dict[str, list[Sample]] = {}
    originals: list[tuple[object, str, Callable[..., Any]]] = [
        (owner, name, getattr(owner, name)) for owner, name, _ in PHASES if hasattr(owner, name)
    ]

    def timed(label: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with stopwatch(spent.setdefault(label, [])):
                return original(*args, **kwargs)

        return wrapper

    labels = {name: label for _, name, label in PHASES}
    total: list[Sample] = []
    try:
        for owner, name, original in originals:
            setattr(owner, name, timed(labels[name], original))
        rotate(runtime, expected, total)
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
    return total[0], {
        label: Sample(
            wall=sum(s.wall for s in samples),
            cpu=sum(s.cpu for s in samples),
            gc=sum(s.gc for s in samples),
            full_gcs=sum(s.full_gcs for s in samples),
        )
        for label, samples in spent.items()
    }


def floor_bodies(
    admin: kubernetes.client.ApiClient, registry: RegistryWorld, expected: int
) -> list[dict[str, Any]]:
    """PUT bodies shaped like the rotator's (name, namespace, resourceVersion, labels,
    annotations, type, data) with a new credential of the same size, and the resourceVersion
    of one LIST made now. Called before each round, outside the timed part."""
    listed = list_items(
        admin,
        "/api/v1/secrets",
        labelSelector=f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}",
        fieldSelector=f"metadata.name={SECRET}",
    )
    if len(listed) != expected:
        raise RuntimeError(f"expected {expected} Secrets, listed {len(listed)}")
    username, real = registry.puller.username, registry.puller.password
    # New each round: a PUT that changes nothing skips the etcd write and flatters the floor.
    password = secrets.token_urlsafe(len(real))[: len(real)]
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = {"auths": {registry.host: {"auth": auth, "password": password, "username": username}}}
    encoded = base64.b64encode(json.dumps(config, separators=(",", ":")).encode()).decode()
    bodies = []
    for item in listed:
        meta = item["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "resourceVersion": meta["resourceVersion"],
                "labels": meta.get("labels") or {},
                "annotations": meta.get("annotations") or {},
            },
            "type": item["type"],
            "data": {".dockerconfigjson": encoded},
        }
        bodies.append(body)
    return bodies


def floor(
    store: SecretStore, bodies: Sequence[dict[str, Any]], concurrency: int, into: list[Sample]
) -> None:
    def put(body: dict[str, Any]) -> int:
        meta = body["metadata"]
        return store.bare_replace(meta["namespace"], meta["name"], body)

    with stopwatch(into), ThreadPoolExecutor(max_workers=concurrency) as pool:
        statuses = list(pool.map(put, bodies))
    bad = Counter(s for s in statuses if s != 200)
    if bad:
        raise RuntimeError(f"floor PUTs failed: {dict(bad)}")


def cli_rotation(bench: Bench) -> float:
    """The whole ``rotator rotate --now --force`` process, cold, output to /dev/null."""
    path = bench.folder / "bench.yaml"
    path.write_text(yaml.safe_dump(bench.config()))
    command = [
        sys.executable,
        "-c",
        "import sys; from rotator.cli import main; sys.exit(main())",
        "rotate",
        "--now",
        "--force",
        "--config",
        str(path),
        "--output",
        "json",
        "--log-format",
        "json",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"rotator rotate --now exited {done.returncode}:\n{tail}")
    return elapsed


def kubectl_pipeline(bench: Bench, kubectl: str, namespace: str, env: dict[str, str]) -> float:
    registry = bench.registry
    common = [kubectl, "--context", CLUSTER, f"--cache-dir={bench.folder / 'kubectl-cache'}"]
    create = [
        *common,
        "create",
        "secret",
        "docker-registry",
        SECRET,
        f"--docker-server={registry.host}",
        f"--docker-username={registry.puller.username}",
        f"--docker-password={registry.puller.password}",
        "-n",
        namespace,
        "--dry-run=client",
        "-o",
        "yaml",
    ]
    apply = [*common, "apply", "-f", "-"]
    started = time.perf_counter()
    producer = subprocess.Popen(create, stdout=subprocess.PIPE, env=env)
    consumer = subprocess.Popen(
        apply, stdin=producer.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    assert producer.stdout is not None  # noqa: S101  # stdout=PIPE
    producer.stdout.close()  # the consumer holds the read end now
    _, errors = consumer.communicate()
    producer.wait()
    elapsed = time.perf_counter() - started
    if producer.returncode or consumer.returncode:
        raise RuntimeError(f"kubectl pipeline failed in {namespace}: {errors.decode()[-1000:]}")
    return elapsed


def kubectl_version(kubectl: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [kubectl, "--context", CLUSTER, "version", "-o", "json"],
        capture_output=True,
        env=env,
        check=False,
    )
    try:
        versions = json.loads(done.stdout)
    except ValueError:
        return "unknown"
    client = versions.get("clientVersion", {}).get("gitVersion", "?")
    server = versions.get("serverVersion", {}).get("gitVersion", "?")
    return f"client {client}, server {server}"


def run_kubectl(bench: Bench, args: argparse.Namespace) -> tuple[list[float], str]:
    if args.kubectl_sample == 0:
        return [], ""
    env = {**os.environ, "KUBECONFIG": str(bench.world.kube.kubeconfig_path)}
    version = kubectl_version(args.kubectl, env)
    # Warm-up, untimed, outside the sample: fills kubectl's discovery cache.
    kubectl_pipeline(bench, args.kubectl, bench.namespaces[-1], env)
    sample = bench.namespaces[: args.kubectl_sample]
    return [kubectl_pipeline(bench, args.kubectl, ns, env) for ns in sample], version


# -- output ---------------------------------------------------------------------------------


@dataclass
class Results:
    n: int
    concurrency: int
    initial: list[Sample]
    rotator: list[Sample]
    floor: list[Sample]
    api: list[Counter[str]]
    registry: list[Counter[str]]
    cli: float | None = None
    kubectl: list[float] | None = None
    kubectl_version: str = ""
    phases: tuple[Sample, dict[str, Sample]] | None = None


def walls(samples: Sequence[Sample]) -> list[float]:
    return [s.wall for s in samples]


def line(name: str, samples: Sequence[Sample], n: int) -> str:
    times = walls(samples)
    best, median = min(times), statistics.median(times)
    cpu = statistics.median(s.cpu for s in samples)
    text = (
        f"{name:<24} best {best:6.3f} s  median {median:6.3f} s  "
        f"({best / n * 1000:5.2f} / {median / n * 1000:5.2f} ms per Secret; "
        f"client CPU {cpu / n * 1000:5.2f} ms per Secret)"
    )
    if len(times) > 1:
        text += f"\n{'':<24} rounds: {', '.join(f'{t:.3f}' for t in times)}"
    pauses = statistics.median(s.gc for s in samples)
    full = sum(s.full_gcs for s in samples)
    text += f"\n{'':<24} GC pauses: median {pauses * 1000:.1f} ms per round, {full} full in all"
    return text


def print_counts(title: str, counts: Counter[str]) -> None:
    print(f"  {title}: {sum(counts.values())}")
    for kind, count in sorted(counts.items()):
        print(f"    {kind:<36} {count:>6}")


def print_results(r: Results, kubectl: str) -> None:
    n = r.n
    rot, flo = walls(r.rotator), walls(r.floor)
    print()
    print(f"N = {n} namespaces, concurrency = {r.concurrency}, {len(rot)} timed rounds each")
    print(line("initial rotation (POST)", r.initial, n))
    print(line("rotator run_once(force)", r.rotator, n))
    print(line("floor (bare PUTs)", r.floor, n))
    if r.cli is not None:
        cold = f"one cold run, {r.cli / n * 1000:.2f} ms per Secret"
        print(f"{'rotator CLI process':<24} {r.cli:6.3f} s ({cold})")
    scaled = None
    if r.kubectl:
        each = statistics.mean(r.kubectl)
        scaled = each * n
        print(
            f"{'kubectl pipeline':<24} {each * 1000:.1f} ms per Secret (mean of {len(r.kubectl)}; "
            f"median {statistics.median(r.kubectl) * 1000:.1f}, min {min(r.kubectl) * 1000:.1f}, "
            f"max {max(r.kubectl) * 1000:.1f}) -> {scaled:.1f} s scaled to {n}"
        )
        print(f"{'':<24} {kubectl}: {r.kubectl_version}")
    print()
    paired = [a / b for a, b in zip(rot, flo, strict=True)]
    median_rot, median_flo = statistics.median(rot), statistics.median(flo)
    print(
        f"rotator / floor    best {min(rot) / min(flo):5.2f}x  "
        f"median {median_rot / median_flo:5.2f}x  "
        f"median of rounds {statistics.median(paired):5.2f}x  (target <= 1.3x)\n"
        f"                   per round (adjacent pairs) {', '.join(f'{x:.2f}' for x in paired)}"
    )
    if scaled is not None:
        text = (
            f"kubectl / rotator  best {scaled / min(rot):5.1f}x  median {scaled / median_rot:5.1f}x"
        )
        if r.cli is not None:
            text += f"  vs the CLI process {scaled / r.cli:.1f}x"
        print(f"{text}   (target >= 25x)")
    print()
    if r.phases is not None:
        total, phases = r.phases
        print(f"where one rotation's time goes (an extra round, {total.wall:.3f} s wall):")
        for label, spent in phases.items():
            print(
                f"  {label:<28} wall {spent.wall * 1000:7.1f} ms ({spent.wall / total.wall:4.0%})"
                f"  process CPU {spent.cpu * 1000:6.1f} ms  GC {spent.gc * 1000:5.1f} ms"
            )
        print()
    same = all(c == r.api[0] for c in r.api) and all(c == r.registry[0] for c in r.registry)
    print(f"requests of one forced rotation ({'same in every round' if same else 'last round'}):")
    print_counts("API server", r.api[-1])
    print_counts("registry, pre-verify + post-verify", r.registry[-1])


def machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for row in cpuinfo.read_text().splitlines():
            if row.startswith("model name"):
                model = row.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} CPUs ({model or platform.processor()}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


@contextmanager
def null_logging() -> Iterator[TextIO]:
    """The CLI's logging (JSON, redacting, level info), written to /dev/null."""
    with open(os.devnull, "w") as sink:
        setup_logging(level="info", json_output=True, stream=sink)
        try:
            yield sink
        finally:
            logging.getLogger().handlers.clear()


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rotate", description="rotate --now against its floor and kubectl"
    )
    parser.add_argument("--namespaces", type=int, default=1000, help="N (default 1000)")
    parser.add_argument(
        "--kubectl-sample", type=int, default=50, help="namespaces timed with kubectl (50)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="write concurrency, rotator and floor (8)"
    )
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds of each (7)")
    parser.add_argument(
        "--kubectl", default=shutil.which("kubectl") or "/usr/bin/kubectl", help="kubectl binary"
    )
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI-process run")
    args = parser.parse_args(argv)
    if args.namespaces < 2 or args.repeat < 1 or not 1 <= args.concurrency <= 64:
        parser.error("need --namespaces >= 2, --repeat >= 1 and 1 <= --concurrency <= 64")
    args.kubectl_sample = max(0, min(args.kubectl_sample, args.namespaces - 1))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = [f"{PREFIX}{i:05d}" for i in range(args.namespaces)]
    print(f"machine: {machine()}", flush=True)
    gc.callbacks.append(GC_CLOCK)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="rotator-bench-") as tmp,
            null_logging(),
        ):
            started = time.perf_counter()
            # The context manager stops every server (and the world's processes) on the way
            # out, whatever happens inside; the temporary folder goes after it.
            with local_world(Path(tmp) / "world") as world:
                bench = Bench(
                    world=world, folder=Path(tmp), namespaces=names, concurrency=args.concurrency
                )
                print(f"world up in {time.perf_counter() - started:.1f} s", flush=True)
                results = measure(bench, args)
    finally:
        gc.callbacks.remove(GC_CLOCK)
    print_results(results, args.kubectl)
    return 0


def measure(bench: Bench, args: argparse.Namespace) -> Results:
    n = len(bench.namespaces)
    results = Results(
        n=n, concurrency=args.concurrency, initial=[], rotator=[], floor=[], api=[], registry=[]
    )
    admin = bench.admin()
    try:
        started = time.perf_counter()
        create_namespaces(admin, bench.namespaces)
        print(f"{n} namespaces created in {time.perf_counter() - started:.1f} s", flush=True)
        api, registry = Recorder(), Recorder()
        with bench.open_runtime() as runtime:
            store = runtime.stores[CLUSTER]
            record_api(store.api.client, api)
            record_registry(runtime, registry)
            rotate(runtime, n, results.initial)  # creates the N Secrets
            if api.take() != {"LIST secrets": 1, "LIST namespaces": 1, "POST secret": n}:
                raise RuntimeError("the initial rotation did not create the Secrets")
            # One untimed round of each first: connection pool, server caches, allocator.
            warm: list[Sample] = []
            rotate(runtime, n, warm)
            floor(store, floor_bodies(admin, bench.registry, n), args.concurrency, warm)
            print(f"warm-up rounds: {', '.join(f'{s.wall:.3f}' for s in warm)} s", flush=True)
            for round_no in range(args.repeat):
                # Alternate which side goes first, so drift hits both alike.
                order = ("floor", "rotator") if round_no % 2 == 0 else ("rotator", "floor")
                for side in order:
                    if side == "floor":
                        bodies = floor_bodies(admin, bench.registry, n)  # untimed LIST + render
                        api.take()
                        floor(store, bodies, args.concurrency, results.floor)
                        sent = api.take()
                        if sent != {"PUT secret": n}:
                            raise RuntimeError(f"the floor sent {dict(sent)}")
                    else:
                        api.take()
                        registry.take()
                        rotate(runtime, n, results.rotator)
                        results.api.append(api.take())
                        results.registry.append(registry.take())
                print(
                    f"round {round_no + 1}: rotator {results.rotator[-1].wall:.3f} s, "
                    f"floor {results.floor[-1].wall:.3f} s",
                    flush=True,
                )
            results.phases = breakdown(runtime, n)
        if not args.no_cli:
            results.cli = cli_rotation(bench)
        results.kubectl, results.kubectl_version = run_kubectl(bench, args)
    finally:
        admin.close()  # type: ignore[no-untyped-call]  # unannotated in the client
    return results


if __name__ == "__main__":
    sys.exit(main())
