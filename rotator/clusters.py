"""One ``kubernetes.client.ApiClient`` per configured cluster.

A cluster is reached either through a kubeconfig context or through the pod's own service
account (in-cluster). Each client gets its own ``Configuration`` object, never the library's
process-wide default, so several clusters can be talked to at once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import yaml
from kubernetes.config.config_exception import ConfigException

from rotator.config import ClusterSpec, RuntimeSpec
from rotator.errors import ConfigError, truncate_body

USER_AGENT = "rotator/0.1"
_DEFAULT_KUBECONFIG = "~/.kube/config"
# How often the loaders' credential refresh hook may run. The client calls it before *every*
# request, and it re-assigns `host`, which re-reads every proxy variable of the environment:
# measured at ~40% of the client-side CPU of a Secret replace. Tokens are refreshed 5 minutes
# before they expire (kubeconfig) or re-read every minute (in-cluster), so 1 s loses nothing.
REFRESH_INTERVAL = 1.0


def kubeconfig_path(spec: ClusterSpec, environ: Mapping[str, str] | None = None) -> str:
    """The kubeconfig to read: the spec's, else $KUBECONFIG (may list several files, joined by
    ``os.pathsep``, which the client merges), else ~/.kube/config."""
    env = os.environ if environ is None else environ
    if spec.kubeconfig is not None:
        return str(spec.kubeconfig.expanduser())
    return env.get("KUBECONFIG") or str(Path(_DEFAULT_KUBECONFIG).expanduser())


def _configuration(pool_maxsize: int) -> kubernetes.client.Configuration:
    config = kubernetes.client.Configuration()
    # urllib3 keeps one connection per host by default; every concurrent writer needs its own,
    # or the extra ones are opened and thrown away per request.
    config.connection_pool_maxsize = pool_maxsize
    return config


class _ThrottledRefresh:
    """Runs a loader's refresh hook at most once per ``every`` seconds."""

    def __init__(
        self, hook: Callable[[Any], None], every: float, clock: Callable[[], float]
    ) -> None:
        self._hook = hook
        self._every = every
        self._clock = clock
        self._last = float("-inf")
        self._lock = threading.Lock()

    def __call__(self, configuration: Any) -> None:
        with self._lock:
            now = self._clock()
            if now - self._last < self._every:
                return
            self._last = now
            self._hook(configuration)
            # The loaders' hooks re-register themselves each time they run: stay in front.
            installed = configuration.refresh_api_key_hook
            if installed is not self:
                self._hook = installed
                configuration.refresh_api_key_hook = self


def _throttle_refresh(
    config: Any, *, every: float = REFRESH_INTERVAL, clock: Callable[[], float] = time.monotonic
) -> None:
    if config.refresh_api_key_hook is not None:
        config.refresh_api_key_hook = _ThrottledRefresh(config.refresh_api_key_hook, every, clock)


def api_client(
    spec: ClusterSpec,
    *,
    pool_maxsize: int = 8,
    environ: Mapping[str, str] | None = None,
) -> kubernetes.client.ApiClient:
    """Build the client for one cluster. Raises ConfigError when the kubeconfig, its context or
    the in-cluster service account cannot be used; contacts no server."""
    config = _configuration(pool_maxsize)
    where = f"clusters[name={spec.name}]"
    if spec.in_cluster:
        try:
            # kubernetes.config ships py.typed but leaves these functions unannotated.
            kubernetes.config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
        except ConfigException as exc:
            raise ConfigError(
                "in_cluster is set but no service account is mounted "
                f"({truncate_body(str(exc))}); run inside a pod or use kubeconfig/context",
                path=where,
            ) from exc
        client = kubernetes.client.ApiClient(config)
    else:
        path = kubeconfig_path(spec, environ)
        files = [p for p in path.split(os.pathsep) if p]
        if not any(Path(p).expanduser().is_file() for p in files):
            raise ConfigError(
                f"kubeconfig {path} does not exist; set kubeconfig, $KUBECONFIG or in_cluster",
                path=where,
            )
        try:
            # persist_config=False: refreshed credentials are never written back into the
            # user's kubeconfig file.
            client = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=path,
                context=spec.context,
                persist_config=False,
                client_configuration=config,
            )
        except ConfigException as exc:
            wanted = f"context {spec.context!r}" if spec.context else "the current context"
            raise ConfigError(
                f"cannot use {wanted} of kubeconfig {path}: {truncate_body(str(exc))}",
                path=where,
            ) from exc
        except yaml.YAMLError as exc:
            # Not quoted: YAML errors show the offending line, which may hold a token.
            mark = getattr(exc, "problem_mark", None)
            line = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"kubeconfig {path} is not valid YAML{line}", path=where) from exc
        except OSError as exc:
            raise ConfigError(f"cannot read kubeconfig {path}: {exc.strerror}", path=where) from exc
    _throttle_refresh(client.configuration)
    client.user_agent = USER_AGENT
    return client


def api_clients(
    specs: tuple[ClusterSpec, ...],
    runtime: RuntimeSpec,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, kubernetes.client.ApiClient]:
    """A client per configured cluster, keyed by cluster name; the pool fits the writers plus
    the observer running next to them."""
    return {
        spec.name: api_client(spec, pool_maxsize=runtime.write_concurrency + 1, environ=environ)
        for spec in specs
    }
