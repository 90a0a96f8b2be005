"""The Kubernetes part of the local world is a real control plane, not a fake.

Each test pins one behaviour the rotator relies on and that only a real API server gives:
validation, optimistic concurrency, RBAC, separate clusters, namespace deletion, kubeconfig.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import kubernetes.client
import kubernetes.config
import pytest
import urllib3
from kubernetes.client import ApiClient, ApiException, CoreV1Api, V1ObjectMeta, V1Secret

from tests.world.kube import KubeCluster, KubeWorld
from tests.world.pytest_kube import NamespaceFactory


def _status(call: Callable[[], object]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and decoded Status body of a call that must fail."""
    with pytest.raises(ApiException) as info:
        call()
    return int(info.value.status), json.loads(info.value.body or "{}")


def _secret(name: str, **string_data: str) -> V1Secret:
    return V1Secret(metadata=V1ObjectMeta(name=name), string_data=string_data)


def _dockerconfig_secret(name: str, payload: bytes) -> V1Secret:
    return V1Secret(
        metadata=V1ObjectMeta(name=name),
        type="kubernetes.io/dockerconfigjson",
        data={".dockerconfigjson": base64.b64encode(payload).decode()},
    )


def _value(secret: V1Secret, key: str) -> bytes:
    assert secret.data is not None
    return base64.b64decode(secret.data[key])


def _whoami(client: ApiClient) -> str:
    review = kubernetes.client.AuthenticationV1Api(client).create_self_subject_review(
        kubernetes.client.V1SelfSubjectReview(
            api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"
        )
    )
    assert review.status is not None
    assert review.status.user_info is not None
    return str(review.status.user_info.username)


@pytest.mark.integration
def test_dockerconfigjson_secret_with_invalid_json_is_rejected_with_422(
    kube_world: KubeWorld, kube_namespace: NamespaceFactory
) -> None:
    namespace = kube_namespace("alpha")
    with kube_world["alpha"].admin_client() as client:
        api = CoreV1Api(client)
        status, body = _status(
            lambda: api.create_namespaced_secret(
                namespace, _dockerconfig_secret("broken", b"{not json")
            )
        )
        good = json.dumps({"auths": {"registry.test": {"auth": "dTpw"}}}).encode()
        created = api.create_namespaced_secret(namespace, _dockerconfig_secret("good", good))

    assert status == 422
    assert body["reason"] == "Invalid"
    assert [c["field"] for c in body["details"]["causes"]] == ["data[.dockerconfigjson]"]
    # The same Secret with valid JSON is accepted: the 422 came from the content check.
    assert created.type == "kubernetes.io/dockerconfigjson"


@pytest.mark.integration
def test_replace_with_stale_resource_version_conflicts_with_409(
    kube_world: KubeWorld, kube_namespace: NamespaceFactory
) -> None:
    namespace = kube_namespace("alpha")
    with kube_world["alpha"].admin_client() as client:
        api = CoreV1Api(client)
        stale = api.create_namespaced_secret(namespace, _secret("pull", v="1"))
        fresh = api.read_namespaced_secret("pull", namespace)
        fresh.string_data = {"v": "2"}
        api.replace_namespaced_secret("pull", namespace, fresh)
        stale.string_data = {"v": "3"}
        status, body = _status(lambda: api.replace_namespaced_secret("pull", namespace, stale))
        stored = api.read_namespaced_secret("pull", namespace)

    assert status == 409
    assert body["reason"] == "Conflict"
    assert _value(stored, "v") == b"2"


@pytest.mark.integration
def test_limited_user_is_authenticated_but_forbidden_to_list_secrets(
    kube_world: KubeWorld,
) -> None:
    cluster = kube_world["alpha"]
    with cluster.limited_client() as client:
        status, body = _status(lambda: CoreV1Api(client).list_namespaced_secret("default"))
        username = _whoami(client)
    with cluster.api_client("not-a-token") as client:
        unknown_status, _ = _status(lambda: CoreV1Api(client).list_namespaced_secret("default"))

    assert username == "limited"
    assert status == 403
    assert body["reason"] == "Forbidden"
    assert 'User "limited" cannot list resource "secrets"' in body["message"]
    assert unknown_status == 401


@pytest.mark.integration
def test_clusters_are_separate(kube_world: KubeWorld, kube_namespace: NamespaceFactory) -> None:
    alpha, beta = kube_world["alpha"], kube_world["beta"]
    namespace = kube_namespace("alpha")
    with alpha.admin_client() as client:
        CoreV1Api(client).create_namespaced_secret(namespace, _secret("only-in-alpha", k="v"))
    with beta.admin_client() as client:
        api = CoreV1Api(client)
        secret_status, _ = _status(lambda: api.read_namespaced_secret("only-in-alpha", namespace))
        namespace_status, _ = _status(lambda: api.read_namespace(namespace))
    # Tokens are per cluster too: alpha's admin is nobody on beta.
    with beta.api_client(alpha.admin_token) as client:
        foreign_status, _ = _status(lambda: CoreV1Api(client).list_namespace())

    assert alpha.server != beta.server
    assert secret_status == 404
    assert namespace_status == 404
    assert foreign_status == 401


@pytest.mark.integration
def test_deleted_namespace_disappears_within_bounded_time(
    kube_world: KubeWorld, kube_namespace: NamespaceFactory
) -> None:
    namespace = kube_namespace("alpha")
    with kube_world["alpha"].admin_client() as client:
        api = CoreV1Api(client)
        api.create_namespaced_secret(namespace, _secret("s", k="v"))
        api.delete_namespace(namespace)
        terminating = api.read_namespace(namespace)
        began = time.monotonic()
        # kube-controller-manager waits a fixed 5 s before it empties a namespace.
        deadline = began + 30
        gone_status = 0
        while time.monotonic() < deadline:
            try:
                api.read_namespace(namespace)
            except ApiException as exc:
                gone_status = exc.status
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - began

    assert terminating.status is not None
    assert terminating.status.phase == "Terminating"
    assert gone_status == 404, f"namespace still there after {elapsed:.1f}s"


def _contexts(world: KubeWorld) -> list[tuple[str, KubeCluster, str]]:
    """(kubeconfig context, the cluster it must reach, the user it must authenticate as)."""
    names = world.cluster_names
    return [(name, world[name], "admin") for name in names] + [
        (f"{name}-limited", world[name], "limited") for name in names
    ]


@pytest.mark.integration
def test_kubeconfig_contexts_reach_their_cluster_as_their_user(kube_world: KubeWorld) -> None:
    seen: dict[str, tuple[str, str, int | None]] = {}
    for context, cluster, user in _contexts(kube_world):
        client: ApiClient = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kube_world.kubeconfig_path), context=context
        )
        with client:
            secrets_status: int | None = None
            try:
                CoreV1Api(client).list_namespaced_secret("kube-system")
            except ApiException as exc:
                secrets_status = exc.status
            seen[context] = (client.configuration.host, _whoami(client), secrets_status)
        expected_status = None if user == "admin" else 403
        assert seen[context] == (cluster.server, user, expected_status)

    assert set(seen) == {"alpha", "beta", "alpha-limited", "beta-limited"}


@pytest.mark.integration
def test_client_without_the_world_ca_fails_tls_verification(kube_world: KubeWorld) -> None:
    alpha = kube_world["alpha"]
    config = alpha.configuration(alpha.admin_token)
    config.ssl_ca_cert = None  # falls back to the public roots, which never signed the world CA
    config.retries = 0
    with (
        ApiClient(config) as client,
        pytest.raises(urllib3.exceptions.MaxRetryError) as info,
    ):
        CoreV1Api(client).list_namespace()

    assert isinstance(info.value.reason, urllib3.exceptions.SSLError)


@pytest.mark.integration
def test_one_cluster_down_leaves_the_other_serving_and_comes_back_with_its_data(
    kube_world: KubeWorld, kube_namespace: NamespaceFactory
) -> None:
    namespace = kube_namespace("beta")
    beta = kube_world["beta"]
    server_before = beta.server
    with beta.admin_client() as client:
        CoreV1Api(client).create_namespaced_secret(namespace, _secret("kept", k="v"))

    with kube_world.cluster_down("beta"):
        with kube_world["alpha"].admin_client() as client:
            alpha_namespaces = CoreV1Api(client).list_namespace().items
        config = beta.configuration(beta.admin_token)
        config.retries = 0
        with (
            ApiClient(config) as down,
            pytest.raises(urllib3.exceptions.MaxRetryError) as info,
        ):
            CoreV1Api(down).list_namespace()

    with beta.admin_client() as client:
        kept = CoreV1Api(client).read_namespaced_secret("kept", namespace)

    assert "default" in {n.metadata.name for n in alpha_namespaces if n.metadata}
    assert isinstance(info.value.reason, urllib3.exceptions.NewConnectionError)
    assert beta.server == server_before
    assert _value(kept, "k") == b"v"
