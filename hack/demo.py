"""``make run``: the local world and a real demo rotation.

Starts two clusters and two registries (htpasswd and token auth) on 127.0.0.1, writes a demo
config, then runs the rotator as a user would: check-config, a dry run, ``rotate --now`` and
``status``. On a terminal the world stays up for you to explore until Ctrl-C.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import kubernetes.client
import yaml

from tests.world.local import LocalWorld, local_world
from tests.world.pytest_registry import skopeo_inspect

NAMESPACES = {"alpha": ("team-a", "team-b", "sandbox"), "beta": ("team-a", "team-c")}


def _config(world: LocalWorld) -> dict[str, object]:
    if world.basic is None or world.token is None:
        raise RuntimeError("the demo needs both registries")
    registries = []
    for name, label, registry in (
        ("demo-basic", "htpasswd", world.basic),
        ("demo-token", "token", world.token),
    ):
        registries.append(
            {
                "name": name,
                "provider": "generic",
                "host": registry.host,
                "generic": {
                    "username": registry.puller.username,
                    "password_from": {"file": str(world.password_file(label))},
                },
                "verify": {
                    "ca_bundle": str(world.ca.ca_path),
                    "probe": {"repository": registry.repo, "reference": registry.tag},
                },
            }
        )
    kubeconfig = str(world.kube.kubeconfig_path)
    return {
        "clusters": [
            {"name": name, "kubeconfig": kubeconfig, "context": name} for name in NAMESPACES
        ],
        "registries": registries,
        "secrets": [
            {
                "name": "regcred",
                "registries": ["demo-basic", "demo-token"],
                "namespaces": {"include": ["team-*"]},
            }
        ],
    }


def _rotator(*args: str) -> int:
    command = [str(Path(sys.executable).with_name("rotator")), *args]
    print(f"\n$ rotator {' '.join(args)}", flush=True)
    return subprocess.run(command, check=False).returncode


def main() -> int:
    directory = Path(tempfile.mkdtemp(prefix="rotator-demo-"))
    try:
        with local_world(directory) as world:
            for cluster, namespaces in NAMESPACES.items():
                with world.kube.cluster(cluster).admin_client() as client:
                    api = kubernetes.client.CoreV1Api(client)
                    for namespace in namespaces:
                        api.create_namespace({"metadata": {"name": namespace}})
            config = directory / "rotator.yaml"
            config.write_text(yaml.safe_dump(_config(world), sort_keys=False))
            print(world.describe())
            print(f"  demo config: {config}", flush=True)
            env_log = ["--log-format", "text", "--log-level", "warning"]
            codes = [
                _rotator("check-config", "--config", str(config)),
                _rotator("rotate", "--now", "--dry-run", "--config", str(config), *env_log),
                _rotator("rotate", "--now", "--config", str(config), *env_log),
                _rotator("status", "--config", str(config), *env_log),
            ]
            codes.append(_pull_with_stored_secret(world, directory))
            _change_source_password(world)
            codes.append(
                _rotator("rotate", "--now", "--config", str(config), *env_log),
            )
            if sys.stdin.isatty():
                print(
                    f"\nKUBECONFIG={world.kube.kubeconfig_path} kubectl --context alpha "
                    "get secret regcred -n team-a -o yaml"
                )
                print("the world keeps running; Ctrl-C stops it", flush=True)
                _wait_for_interrupt()
            return max(codes)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _pull_with_stored_secret(world: LocalWorld, directory: Path) -> int:
    """What kubelet would do: use the stored .dockerconfigjson. skopeo shares CRI-O's auth code."""
    with world.kube.cluster("alpha").admin_client() as client:
        secret = kubernetes.client.CoreV1Api(client).read_namespaced_secret("regcred", "team-a")
    authfile = directory / "authfile.json"
    authfile.touch(mode=0o600)
    authfile.write_bytes(base64.b64decode(secret.data[".dockerconfigjson"]))
    code = 0
    for registry in (world.basic, world.token):
        if registry is None:
            continue
        print(f"\n$ skopeo inspect --authfile <alpha/team-a/regcred> docker://{registry.reference}")
        result = skopeo_inspect(registry, authfile, "--format", "{{.Name}} {{.Digest}}")
        print((result.stdout or result.stderr).strip(), flush=True)
        code = max(code, result.returncode)
    authfile.unlink()
    return code


def _change_source_password(world: LocalWorld) -> None:
    """The registry admin changes the robot's password; the next run notices the source."""
    if world.basic is None:
        return
    password = secrets.token_urlsafe(16)
    world.basic.registry.add_user(world.basic.puller.username, password)
    world.password_file("htpasswd").write_text(password + "\n")
    print("\n# the htpasswd registry's password changed; the source file was updated", flush=True)


def _wait_for_interrupt() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    os.environ.setdefault("COLUMNS", "140")
    sys.exit(main())
