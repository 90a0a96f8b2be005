"""SecretStore and the cluster clients against the real local kube-apiserver (and the fault proxy
in front of it for the answers a real server will not give on demand)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import kubernetes.client
import pytest

from rotator.clusters import api_client
from rotator.config import ClusterSpec
from rotator.errors import (
    ClusterError,
    ConfigError,
    PermissionDenied,
    PolicyRefusal,
    WriteConflict,
)
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
    DesiredSecret,
    Observed,
    Target,
    format_time,
)
from rotator.ratelimit import TokenBucket
from rotator.writer import ApiConflict, SecretStore
from tests.world.faultproxy import FaultProxy, delay, server_error, throttle
from tests.world.kube import KubeWorld
from tests.world.procs import wait_until
from tests.world.pytest_kube import NamespaceFactory
from tests.world.tls import LocalCA

pytestmark = pytest.mark.integration

OWNED = {MANAGED_BY_LABEL: "rotator"}
EXPIRES = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
RENEW = datetime(2031, 5, 6, 3, 8, 9, tzinfo=UTC)


class RecordingApiClient(kubernetes.client.ApiClient):
    """The real client, recording (method, path?query) of every request it sends."""

    def __init__(self, configuration: kubernetes.client.Configuration) -> None:
        super().__init__(configuration)
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        with self._lock:
            self.calls.append(
                (method, unquote(parts.path + ("?" + parts.query if parts.query else "")))
            )
        return super().call_api(method, url, *args, **kwargs)


class CountingBucket(TokenBucket):
    def __init__(self) -> None:
        super().__init__(1000, 1000)
        self.acquired = 0

    def acquire(self) -> float:
        self.acquired += 1
        return super().acquire()


def _missing(namespace: str, secret: str = "pull") -> Observed:
    return Observed.missing(Target(cluster="alpha", namespace=namespace, secret=secret))


def spec(world: KubeWorld, context: str, name: str = "alpha") -> ClusterSpec:
    return ClusterSpec(name=name, kubeconfig=world.kubeconfig_path, context=context)


def recording_client(world: KubeWorld, context: str) -> RecordingApiClient:
    built = api_client(spec(world, context), pool_maxsize=9)
    return RecordingApiClient(built.configuration)


@pytest.fixture
def client(kube_world: KubeWorld) -> Iterator[RecordingApiClient]:
    with recording_client(kube_world, "alpha") as recording:
        yield recording


@pytest.fixture
def bucket() -> CountingBucket:
    return CountingBucket()


@pytest.fixture
def store(client: RecordingApiClient, bucket: CountingBucket) -> SecretStore:
    return SecretStore("alpha", client, bucket)


@pytest.fixture
def human(kube_world: KubeWorld) -> Iterator[kubernetes.client.CoreV1Api]:
    """Someone else with admin rights, editing Secrets by hand."""
    with kube_world["alpha"].admin_client() as admin:
        yield kubernetes.client.CoreV1Api(admin)


def dockerconfig(user: str, password: str, host: str = "registry.test:5000") -> bytes:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    entry = {"username": user, "password": password, "auth": auth}
    return json.dumps({"auths": {host: entry}}, separators=(",", ":")).encode()


def desired(password: str = "pw-one", **annotations: str) -> DesiredSecret:
    notes = {
        ANN_REGISTRIES: "ecr-main,harbor",
        ANN_EXPIRES_AT: format_time(EXPIRES),
        ANN_RENEW_AT: format_time(RENEW),
        ANN_FINGERPRINT: "sha256:abc123",
        **annotations,
    }
    return DesiredSecret(
        data={DOCKERCONFIGJSON_KEY: dockerconfig("bot", password)}, annotations=notes
    )


def raw_secret(human: kubernetes.client.CoreV1Api, namespace: str, name: str) -> dict[str, Any]:
    """The Secret as stored, straight from the API server's JSON."""
    response = human.read_namespaced_secret(name, namespace, _preload_content=False)
    return dict(json.loads(response.data))


def create_by_hand(
    human: kubernetes.client.CoreV1Api,
    namespace: str,
    name: str,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    secret_type: str = "Opaque",
    data: dict[str, bytes] | None = None,
) -> None:
    human.create_namespaced_secret(
        namespace,
        kubernetes.client.V1Secret(
            metadata=kubernetes.client.V1ObjectMeta(
                name=name, labels=labels or {}, annotations=annotations or {}
            ),
            type=secret_type,
            data={k: base64.b64encode(v).decode() for k, v in (data or {"k": b"v"}).items()},
        ),
    )


# -- observe ---------------------------------------------------------------------------------


def test_observe_is_one_secret_list_and_one_namespace_list_whatever_the_namespace_count(
    kube_namespace: NamespaceFactory,
    human: kubernetes.client.CoreV1Api,
    store: SecretStore,
    client: RecordingApiClient,
    bucket: CountingBucket,
) -> None:
    namespaces = [kube_namespace(labels={"team": f"t{i}"}) for i in range(4)]
    for ns in namespaces:
        store.apply(Target(cluster="alpha", namespace=ns, secret="pull"), _missing(ns), desired())
        create_by_hand(human, ns, "not-ours")
    fresh = SecretStore("alpha", client, bucket)
    client.calls.clear()
    bucket.acquired = 0

    snapshot = fresh.observe()

    assert client.calls == [
        ("GET", f"/api/v1/secrets?labelSelector={MANAGED_BY_LABEL}=rotator"),
        ("GET", "/api/v1/namespaces"),
    ]
    assert bucket.acquired == 2
    for i, ns in enumerate(namespaces):
        observed = snapshot.secrets[(ns, "pull")]
        assert observed.exists
        assert observed.owned
        assert observed.secret_type == DOCKERCONFIGJSON_TYPE
        assert observed.registries == ("ecr-main", "harbor")
        assert observed.expires_at == EXPIRES
        assert observed.renew_at == RENEW
        assert observed.rotated_at is None
        assert observed.verified_at is None
        assert observed.fingerprint == "sha256:abc123"
        assert (
            observed.resource_version
            == raw_secret(human, ns, "pull")["metadata"]["resourceVersion"]
        )
        assert (ns, "not-ours") not in snapshot.secrets
        info = snapshot.namespaces[ns]
        assert info.labels["team"] == f"t{i}"
        assert info.terminating is False
    assert (
        snapshot.observed(
            Target(cluster="alpha", namespace=namespaces[0], secret="not-ours")
        ).exists
        is False
    )


def test_observe_treats_unparseable_annotations_as_absent(
    kube_namespace: NamespaceFactory, human: kubernetes.client.CoreV1Api, store: SecretStore
) -> None:
    ns = kube_namespace()
    create_by_hand(
        human,
        ns,
        "hand-edited",
        labels=OWNED,
        annotations={
            ANN_EXPIRES_AT: "tomorrow",
            ANN_RENEW_AT: "2031-02-30T10:00:00Z",  # right shape, no such day
            ANN_ROTATED_AT: "2031-05-06T07:08:09+00:00",  # RFC 3339 but not our form
            ANN_VERIFIED_AT: "",
            ANN_REGISTRIES: " a, ,b ,",
            ANN_FINGERPRINT: "",
        },
    )

    observed = store.observe().secrets[(ns, "hand-edited")]

    assert observed.owned
    assert observed.secret_type == "Opaque"
    assert (observed.expires_at, observed.renew_at, observed.rotated_at) == (None, None, None)
    assert observed.verified_at is None
    assert observed.fingerprint is None
    assert observed.registries == ("a", "b")


def test_a_terminating_namespace_is_reported_and_refuses_creates(
    kube_namespace: NamespaceFactory, human: kubernetes.client.CoreV1Api, store: SecretStore
) -> None:
    ns = kube_namespace()
    # A finalizer nobody removes keeps the namespace in Terminating until the test lets go.
    human.create_namespaced_config_map(
        ns,
        kubernetes.client.V1ConfigMap(
            metadata=kubernetes.client.V1ObjectMeta(
                name="hold", finalizers=["rotator.dev/test-hold"]
            )
        ),
    )
    human.delete_namespace(ns)
    try:
        assert store.observe().namespaces[ns].terminating is True
        with pytest.raises(ClusterError) as caught:
            store.apply(
                Target(cluster="alpha", namespace=ns, secret="pull"), _missing(ns), desired()
            )
        assert not isinstance(caught.value, PermissionDenied)
        assert caught.value.retryable is False
        assert f"namespace {ns!r} is being deleted" in caught.value.message
    finally:
        human.patch_namespaced_config_map("hold", ns, {"metadata": {"finalizers": None}})


# -- create ----------------------------------------------------------------------------------


def test_create_stores_exactly_the_bytes_type_labels_and_annotations(
    kube_namespace: NamespaceFactory,
    human: kubernetes.client.CoreV1Api,
    store: SecretStore,
    client: RecordingApiClient,
    bucket: CountingBucket,
) -> None:
    ns = kube_namespace()
    target = Target(cluster="alpha", namespace=ns, secret="pull")
    want = desired()
    client.calls.clear()

    stored = store.apply(target, _missing(ns), want)

    assert client.calls == [("POST", f"/api/v1/namespaces/{ns}/secrets?fieldManager=rotator")]
    assert bucket.acquired == 1
    assert stored.created is True
    assert stored.target == target
    assert stored.secret_type == DOCKERCONFIGJSON_TYPE
    assert stored.data == {DOCKERCONFIGJSON_KEY: dockerconfig("bot", "pw-one")}
    assert stored.labels == OWNED
    assert stored.annotations == dict(want.annotations)
    raw = raw_secret(human, ns, "pull")
    assert raw["type"] == DOCKERCONFIGJSON_TYPE
    assert raw["data"] == {
        DOCKERCONFIGJSON_KEY: base64.b64encode(dockerconfig("bot", "pw-one")).decode()
    }
    assert raw["metadata"]["labels"] == OWNED
    assert raw["metadata"]["annotations"] == dict(want.annotations)
    assert stored.resource_version == raw["metadata"]["resourceVersion"]
    assert "pw-one" not in repr(stored)


def test_create_over_an_unowned_same_name_secret_is_an_already_exists_conflict_and_changes_nothing(
    kube_namespace: NamespaceFactory, human: kubernetes.client.CoreV1Api, store: SecretStore
) -> None:
    ns = kube_namespace()
    create_by_hand(
        human,
        ns,
        "pull",
        secret_type=DOCKERCONFIGJSON_TYPE,
        data={DOCKERCONFIGJSON_KEY: dockerconfig("human", "theirs")},
        labels={"owner": "someone-else"},
        annotations={"note": "hand-made"},
    )
    before = raw_secret(human, ns, "pull")
    target = Target(cluster="alpha", namespace=ns, secret="pull")
    observed = store.observe().observed(target)
    assert observed.exists is False  # without our label, the LIST does not see it

    with pytest.raises(ApiConflict) as caught:
        store.apply(target, observed, desired())

    assert isinstance(caught.value, WriteConflict)
    assert caught.value.already_exists is True
    assert caught.value.reason == "AlreadyExists"
    assert raw_secret(human, ns, "pull") == before
    truth = store.get(target)
    assert truth.exists is True
    assert truth.owned is False
    assert truth.secret_type == DOCKERCONFIGJSON_TYPE
    assert truth.resource_version == before["metadata"]["resourceVersion"]


def test_get_of_an_absent_secret_reads_as_missing(
    kube_namespace: NamespaceFactory, store: SecretStore, client: RecordingApiClient
) -> None:
    ns = kube_namespace()
    client.calls.clear()
    observed = store.get(Target(cluster="alpha", namespace=ns, secret="nothing-here"))
    assert observed.exists is False
    assert client.calls == [("GET", f"/api/v1/namespaces/{ns}/secrets/nothing-here")]


# -- replace ---------------------------------------------------------------------------------


def test_replace_keeps_what_humans_added_and_replaces_the_rotator_annotations(
    kube_namespace: NamespaceFactory,
    human: kubernetes.client.CoreV1Api,
    store: SecretStore,
    client: RecordingApiClient,
) -> None:
    ns = kube_namespace()
    target = Target(cluster="alpha", namespace=ns, secret="pull")
    store.apply(target, _missing(ns), desired(**{ANN_VERIFIED_AT: format_time(RENEW)}))
    human.patch_namespaced_secret(
        "pull",
        ns,
        {"metadata": {"labels": {"team": "payments"}, "annotations": {"note": "keep me"}}},
    )
    observed = store.observe().observed(target)
    client.calls.clear()

    stored = store.apply(target, observed, desired(password="pw-two"))

    assert client.calls == [("PUT", f"/api/v1/namespaces/{ns}/secrets/pull?fieldManager=rotator")]
    assert stored.created is False
    assert stored.data == {DOCKERCONFIGJSON_KEY: dockerconfig("bot", "pw-two")}
    assert stored.labels == {**OWNED, "team": "payments"}
    assert stored.annotations == {**desired().annotations, "note": "keep me"}
    assert ANN_VERIFIED_AT not in stored.annotations  # not in this write: a stale claim
    assert stored.resource_version != observed.resource_version
    raw = raw_secret(human, ns, "pull")
    assert raw["metadata"]["labels"] == {**OWNED, "team": "payments"}
    assert raw["metadata"]["resourceVersion"] == stored.resource_version


def test_replace_with_a_stale_resource_version_is_a_conflict_and_writes_nothing(
    kube_namespace: NamespaceFactory, human: kubernetes.client.CoreV1Api, store: SecretStore
) -> None:
    ns = kube_namespace()
    target = Target(cluster="alpha", namespace=ns, secret="pull")
    store.apply(target, _missing(ns), desired())
    stale = store.observe().observed(target)
    human.patch_namespaced_secret("pull", ns, {"metadata": {"labels": {"moved": "yes"}}})
    after_human = raw_secret(human, ns, "pull")

    with pytest.raises(WriteConflict) as caught:
        store.apply(target, stale, desired(password="pw-two"))

    assert isinstance(caught.value, ApiConflict)
    assert caught.value.reason == "Conflict"
    assert caught.value.already_exists is False
    assert caught.value.retryable is True
    assert raw_secret(human, ns, "pull") == after_human


def test_replace_from_a_get_it_did_not_list_reads_the_metadata_first(
    kube_namespace: NamespaceFactory,
    human: kubernetes.client.CoreV1Api,
    client: RecordingApiClient,
    bucket: CountingBucket,
) -> None:
    """An adopted Secret, or an Observed from another store: one GET, then the PUT."""
    ns = kube_namespace()
    create_by_hand(
        human,
        ns,
        "pull",
        labels={"owner": "someone-else"},
        annotations={"n": "1"},
        secret_type=DOCKERCONFIGJSON_TYPE,
        data={DOCKERCONFIGJSON_KEY: dockerconfig("h", "x")},
    )
    target = Target(cluster="alpha", namespace=ns, secret="pull")
    observed = SecretStore("alpha", client, bucket).get(target)
    store = SecretStore("alpha", client, bucket)
    client.calls.clear()

    stored = store.apply(target, observed, desired(), adopt=True)

    assert [m for m, _ in client.calls] == ["GET", "PUT"]
    assert stored.labels == {"owner": "someone-else", **OWNED}
    assert stored.annotations["n"] == "1"


def test_replace_of_an_unowned_secret_without_adopt_is_refused_and_sends_nothing(
    kube_namespace: NamespaceFactory,
    human: kubernetes.client.CoreV1Api,
    store: SecretStore,
    client: RecordingApiClient,
) -> None:
    ns = kube_namespace()
    create_by_hand(
        human,
        ns,
        "pull",
        secret_type=DOCKERCONFIGJSON_TYPE,
        data={DOCKERCONFIGJSON_KEY: dockerconfig("h", "x")},
    )
    before = raw_secret(human, ns, "pull")
    target = Target(cluster="alpha", namespace=ns, secret="pull")
    observed = store.get(target)
    client.calls.clear()

    with pytest.raises(PolicyRefusal, match="adopt"):
        store.apply(target, observed, desired())

    assert client.calls == []
    assert raw_secret(human, ns, "pull") == before


def test_replace_of_a_secret_deleted_meanwhile_is_not_retryable(
    kube_namespace: NamespaceFactory, human: kubernetes.client.CoreV1Api, store: SecretStore
) -> None:
    ns = kube_namespace()
    target = Target(cluster="alpha", namespace=ns, secret="pull")
    store.apply(target, _missing(ns), desired())
    observed = store.observe().observed(target)
    human.delete_namespaced_secret("pull", ns)

    with pytest.raises(ClusterError) as caught:
        store.apply(target, observed, desired())

    assert type(caught.value) is ClusterError
    assert caught.value.retryable is False
    assert "404" in caught.value.message


def test_an_invalid_secret_is_rejected_without_quoting_its_content(
    kube_namespace: NamespaceFactory, store: SecretStore
) -> None:
    ns = kube_namespace()
    bad = DesiredSecret(data={DOCKERCONFIGJSON_KEY: b"{not json SUPERSECRET-4242"})

    with pytest.raises(ClusterError) as caught:
        store.apply(Target(cluster="alpha", namespace=ns, secret="pull"), _missing(ns), bad)

    assert caught.value.retryable is False
    assert "422" in caught.value.message
    assert "data[.dockerconfigjson]" in caught.value.message
    assert "SUPERSECRET" not in caught.value.message
    assert base64.b64encode(b"{not json SUPERSECRET-4242").decode() not in caught.value.message


# -- permissions -----------------------------------------------------------------------------


def test_an_identity_without_rbac_gets_permission_denied_naming_verb_and_scope(
    kube_world: KubeWorld, kube_namespace: NamespaceFactory
) -> None:
    ns = kube_namespace()
    with recording_client(kube_world, "alpha-limited") as limited:
        store = SecretStore("alpha", limited, TokenBucket(100, 10))
        with pytest.raises(PermissionDenied) as listing:
            store.observe()
        with pytest.raises(PermissionDenied) as creating:
            store.apply(
                Target(cluster="alpha", namespace=ns, secret="pull"), _missing(ns), desired()
            )

    assert listing.value.retryable is False
    assert listing.value.message.startswith("cluster 'alpha': list secrets in all namespaces:")
    assert "verbs ['list']" in listing.value.message
    assert "ClusterRole and ClusterRoleBinding" in listing.value.message
    assert creating.value.message.startswith(
        f"cluster 'alpha': create secrets/pull in namespace '{ns}': forbidden (403)"
    )
    assert "resources ['secrets'], verbs ['create']" in creating.value.message
    assert f"Role and RoleBinding in namespace '{ns}'" in creating.value.message


# -- transport faults ------------------------------------------------------------------------


@pytest.fixture
def proxied(
    kube_world: KubeWorld, test_ca: LocalCA
) -> Iterator[tuple[FaultProxy, kubernetes.client.ApiClient]]:
    alpha = kube_world["alpha"]
    proxy = FaultProxy(
        alpha.server, cert=test_ca.issue("writer-faults"), upstream_ca=test_ca.ca_path
    )
    proxy.start()
    try:
        with alpha.admin_client() as through:
            through.configuration.host = proxy.url
            yield proxy, through
    finally:
        proxy.stop()


@pytest.mark.parametrize(
    ("action", "status"), [(throttle(), 429), (server_error(500), 500), (server_error(503), 503)]
)
def test_throttling_and_server_errors_are_retryable(
    proxied: tuple[FaultProxy, kubernetes.client.ApiClient],
    kube_namespace: NamespaceFactory,
    action: Any,
    status: int,
) -> None:
    proxy, through = proxied
    ns = kube_namespace()
    proxy.add_rule("POST", f"/api/v1/namespaces/{ns}/secrets", action)
    store = SecretStore("alpha", through, TokenBucket(100, 10))

    with pytest.raises(ClusterError) as caught:
        store.apply(Target(cluster="alpha", namespace=ns, secret="pull"), _missing(ns), desired())

    assert type(caught.value) is ClusterError
    assert caught.value.retryable is True
    assert f"answered {status}" in caught.value.message


def test_a_slow_api_server_times_out_as_a_retryable_error(
    proxied: tuple[FaultProxy, kubernetes.client.ApiClient],
    kube_namespace: NamespaceFactory,
    human: kubernetes.client.CoreV1Api,
) -> None:
    proxy, through = proxied
    ns = kube_namespace()
    proxy.add_rule("POST", f"/api/v1/namespaces/{ns}/secrets", delay(1.0))
    store = SecretStore("alpha", through, TokenBucket(100, 10), timeout=(2.0, 0.3))

    with pytest.raises(ClusterError) as caught:
        store.apply(Target(cluster="alpha", namespace=ns, secret="pull"), _missing(ns), desired())

    assert caught.value.retryable is True
    assert "unreachable or too slow" in caught.value.message
    assert caught.value.__cause__ is not None
    # The proxy still forwards the create after the client gave up: a timed-out write may have
    # happened, which is why the retry path re-reads before it writes again.
    wait_until(lambda: _exists(human, ns, "pull"), timeout=10, what="the late create")


def _exists(human: kubernetes.client.CoreV1Api, namespace: str, name: str) -> bool:
    try:
        human.read_namespaced_secret(name, namespace)
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_an_unreachable_api_server_is_a_retryable_error(kube_world: KubeWorld) -> None:
    with kube_world["alpha"].admin_client() as client:
        client.configuration.host = "https://127.0.0.1:9"  # discard port: nothing listens
        store = SecretStore("alpha", client, TokenBucket(100, 10), timeout=(0.5, 0.5))
        with pytest.raises(ClusterError) as caught:
            store.observe()
    assert caught.value.retryable is True
    assert caught.value.message.startswith("cluster 'alpha': list secrets in all namespaces:")


# -- clients from the config -----------------------------------------------------------------


def test_a_client_per_context_reaches_its_own_cluster(kube_world: KubeWorld) -> None:
    with api_client(spec(kube_world, "beta", name="beta"), pool_maxsize=12) as beta:
        assert beta.configuration.host == kube_world["beta"].server
        assert beta.configuration.connection_pool_maxsize == 12
        store = SecretStore("beta", beta, TokenBucket(100, 10))
        assert "kube-system" in store.observe().namespaces


def test_kubeconfig_defaults_to_the_kubeconfig_environment_variable(kube_world: KubeWorld) -> None:
    bare = ClusterSpec(name="alpha", context="alpha")
    with api_client(bare, environ={"KUBECONFIG": str(kube_world.kubeconfig_path)}) as alpha:
        assert alpha.configuration.host == kube_world["alpha"].server


def test_unusable_cluster_settings_are_config_errors(
    kube_world: KubeWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="does not exist"):
        api_client(ClusterSpec(name="alpha", kubeconfig=tmp_path / "missing"))
    with pytest.raises(ConfigError, match="context 'gamma'") as unknown:
        api_client(spec(kube_world, "gamma"))
    assert unknown.value.__cause__ is not None
    with pytest.raises(ConfigError, match="in_cluster"):
        api_client(ClusterSpec(name="alpha", in_cluster=True), environ={})


# -- source Secrets --------------------------------------------------------------------------


def test_read_key_returns_one_decoded_value_and_names_a_missing_key_without_values(
    kube_namespace: NamespaceFactory, human: kubernetes.client.CoreV1Api, store: SecretStore
) -> None:
    ns = kube_namespace()
    create_by_hand(human, ns, "source", data={"password": b"s3cr3t-\x00-bytes", "user": b"bot"})

    assert store.read_key(namespace=ns, name="source", key="password") == b"s3cr3t-\x00-bytes"
    with pytest.raises(ClusterError) as no_key:
        store.read_key(namespace=ns, name="source", key="token")
    with pytest.raises(ClusterError) as no_secret:
        store.read_key(namespace=ns, name="absent", key="password")

    assert no_key.value.retryable is False
    assert "no key 'token' (keys: password, user)" in no_key.value.message
    assert "s3cr3t" not in no_key.value.message
    assert no_secret.value.retryable is False
    assert "404" in no_secret.value.message


def test_the_credential_refresh_hook_stays_throttled_across_requests(kube_world: KubeWorld) -> None:
    """The kubeconfig loader re-registers its hook on every run; ours must stay in front, or
    every request pays for re-reading the proxy variables of the environment."""
    from rotator.clusters import _ThrottledRefresh  # noqa: PLC0415 - private, this test only

    with api_client(spec(kube_world, "alpha")) as alpha:
        store = SecretStore("alpha", alpha, TokenBucket(100, 10))
        for _ in range(3):
            store.observe()
        assert isinstance(alpha.configuration.refresh_api_key_hook, _ThrottledRefresh)
