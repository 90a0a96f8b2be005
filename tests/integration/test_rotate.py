"""``rotator rotate --now`` end to end against the local world: two real API servers, the real
distribution registry (Basic and token auth), the fault proxy, and skopeo as an independent
client. The "Done when" list of issue 3.

Every registry password here is a canary, and every CLI run (in-process with ``--log-level
debug``, or as a subprocess) is checked for it in every form it could leak in: the scenario
suite is also the secrets-hygiene test.
"""

from __future__ import annotations

import copy
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from rotator.model import ANN_EXPIRES_AT, ANN_RENEW_AT, ANN_ROTATED_AT
from tests.integration.rotate_env import (
    SECRET,
    TIME_SHAPE,
    CliResult,
    RotateEnv,
    assert_managed_secret,
    canary_password,
    rotate_env,
)
from tests.world.faultproxy import conflict, delay, drop_response, server_error
from tests.world.procs import wait_until
from tests.world.pytest_doubles import FaultProxyFactory

pytestmark = pytest.mark.integration


@pytest.fixture
def env(request: pytest.FixtureRequest) -> Iterator[RotateEnv]:
    with rotate_env(request) as environment:
        yield environment


def result(
    cluster: str,
    namespace: str,
    outcome: str,
    reason: str,
    *,
    message: str | None = None,
    exit_code: int = 0,
) -> dict[str, Any]:
    """The exact JSON result of a target whose credentials are static (no expiry)."""
    return {
        "cluster": cluster,
        "namespace": namespace,
        "secret": SECRET,
        "outcome": outcome,
        "reason": reason,
        "expires_at": None,
        "verified": outcome == "rotated",
        "message": message,
        "exit_code": exit_code,
    }


FRESH = "fresh (static credential)"


def fresh(cluster: str, namespace: str) -> dict[str, Any]:
    return result(cluster, namespace, "fresh", "fresh", message=FRESH)


def rotated(cluster: str, namespace: str, reason: str) -> dict[str, Any]:
    return result(cluster, namespace, "rotated", reason)


def assert_report(
    run: CliResult,
    *,
    code: int,
    results: dict[tuple[str, str], dict[str, Any]],
    dry_run: bool = False,
    cluster_failures: list[dict[str, Any]] | None = None,
) -> None:
    assert run.code == code, run.err
    document = run.document
    assert document["exit_code"] == code
    assert document["dry_run"] is dry_run
    assert run.results() == results
    summary: dict[str, int] = {}
    for item in results.values():
        summary[item["outcome"]] = summary.get(item["outcome"], 0) + 1
    assert document["summary"] == dict(sorted(summary.items()))
    assert document["cluster_failures"] == (cluster_failures or [])


def failed_message(run: CliResult, cluster: str, namespace: str) -> str:
    message = run.results()[(cluster, namespace)]["message"]
    assert isinstance(message, str)
    return message


# -- 1. a full rotation ------------------------------------------------------------------------


def test_full_rotation_writes_exact_secrets_in_the_selected_namespaces_of_both_clusters(
    env: RotateEnv,
) -> None:
    basic, token = env.basic_user(), env.token_user()
    a1, a2 = env.namespace("a1"), env.namespace("a2")
    b1 = env.namespace("b1", "beta")
    excluded = [env.namespace("skip"), env.namespace("skip", "beta")]
    foreign = [env.foreign_namespace("alpha"), env.foreign_namespace("beta")]
    config = env.simple_config(
        [basic, token], clusters=("alpha", "beta"), exclude=[f"{env.prefix}-skip"]
    )
    targets = [("alpha", a1), ("alpha", a2), ("beta", b1)]

    started = datetime.now(UTC)
    run = env.rotate(config)
    finished = datetime.now(UTC)

    assert_report(run, code=0, results={t: rotated(*t, "missing") for t in targets})
    # Structured logs: every stderr line is one JSON object (--log-format json).
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert lines
    assert len(run.log_records()) == len(lines)
    written = {}
    for cluster, namespace in targets:
        secret = env.existing(cluster, namespace)
        assert_managed_secret(
            secret, [basic, token], canaries=env.canaries, since=started, until=finished
        )
        written[(cluster, namespace)] = secret
    for namespace in excluded[:1] + foreign[:1]:
        assert env.secret("alpha", namespace) is None
    for namespace in excluded[1:] + foreign[1:]:
        assert env.secret("beta", namespace) is None

    # An independent client (containers/image, as CRI-O uses) pulls with each written Secret.
    for secret in written.values():
        for world in (env.basic_world, env.token_world):
            inspected = env.skopeo_inspect(secret, world)
            assert inspected["Digest"] == world.digest

    again = env.rotate(config)
    assert_report(again, code=0, results={t: fresh(*t) for t in targets})
    for (cluster, namespace), secret in written.items():
        assert env.existing(cluster, namespace) == secret  # not even a resourceVersion bump


# -- 2. dry run ----------------------------------------------------------------------------------


def test_dry_run_writes_nothing_and_reports_what_it_would_do(env: RotateEnv) -> None:
    basic = env.basic_user()
    old = env.namespace("old")
    config = env.simple_config([basic])
    assert env.rotate(config).code == 0
    before = env.existing("alpha", old)
    new = env.namespace("new")
    env.change_password(basic)

    run = env.rotate(config, "--dry-run")

    assert_report(
        run,
        code=0,
        dry_run=True,
        results={
            ("alpha", new): result(
                "alpha", new, "dry-run", "missing", message="Secret does not exist"
            ),
            ("alpha", old): result(
                "alpha",
                old,
                "dry-run",
                "source-changed",
                message="source credential changed for basic",
            ),
        },
    )
    assert env.secret("alpha", new) is None
    assert env.existing("alpha", old) == before

    forced = env.rotate(config, "--dry-run", "--force")
    assert {k: v["outcome"] for k, v in forced.results().items()} == {
        ("alpha", new): "dry-run",
        ("alpha", old): "dry-run",
    }
    table = env.run("rotate", "--now", "--dry-run", "--config", str(config), "--output", "table")
    assert table.code == 0
    assert "dry run (nothing written)" in table.out
    assert env.secret("alpha", new) is None
    assert env.existing("alpha", old) == before


# -- 3. a Secret the rotator does not own --------------------------------------------------------


def test_unmanaged_secret_is_left_byte_identical_and_refused_unless_adopted(
    env: RotateEnv,
) -> None:
    basic = env.basic_user()
    theirs, ours = env.namespace("theirs"), env.namespace("ours")
    human_config = b'{"auths":{"registry.example.com":{"auth":"aHVtYW46aHVtYW4tcGFzcw=="}}}'
    before = env.create_secret(
        "alpha",
        theirs,
        data={".dockerconfigjson": human_config},
        labels={"team": "payments"},
        annotations={"owner": "a-human"},
    )
    config = env.simple_config([basic])
    refused = {
        "outcome": "refused-unowned",
        "reason": "not-owned",
        "verified": False,
        "exit_code": 6,
    }

    dry = env.rotate(config, "--dry-run")
    assert dry.code == 6
    assert dry.results()[("alpha", theirs)].items() >= refused.items()
    assert dry.results()[("alpha", ours)]["outcome"] == "dry-run"

    run = env.rotate(config)
    assert run.code == 6
    assert run.document["summary"] == {"refused-unowned": 1, "rotated": 1}
    assert run.results()[("alpha", theirs)].items() >= refused.items()
    assert "adopt: true" in failed_message(run, "alpha", theirs)
    assert run.results()[("alpha", ours)] == rotated("alpha", ours, "missing")
    assert env.existing("alpha", theirs) == before  # data, labels, resourceVersion: all of it

    started = datetime.now(UTC)
    adopting = env.simple_config([basic], adopt=True)
    run = env.rotate(adopting)
    assert_report(
        run,
        code=0,
        results={
            ("alpha", theirs): rotated("alpha", theirs, "adopted"),
            ("alpha", ours): fresh("alpha", ours),
        },
    )
    after = env.existing("alpha", theirs)
    assert_managed_secret(
        after, [basic], canaries=env.canaries, since=started, extra_labels={"team": "payments"}
    )
    assert after["metadata"]["annotations"]["owner"] == "a-human"
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # replaced, never recreated


# -- 4. pre-verification failure -----------------------------------------------------------------


def test_credential_failing_pre_verification_leaves_the_old_secret_byte_identical(
    env: RotateEnv,
) -> None:
    basic, token = env.basic_user(), env.token_user()
    old = env.namespace("old")
    config = env.simple_config([basic, token])
    assert env.rotate(config).code == 0
    before = env.existing("alpha", old)
    new = env.namespace("new")
    # The source file now holds a password the registry does not know.
    env.change_password(basic, on_registry=False)

    run = env.rotate(config)

    assert run.code == 5
    assert run.document["summary"] == {"failed-verify": 2}
    for namespace, reason in ((old, "source-changed"), (new, "missing")):
        item = run.results()[("alpha", namespace)]
        assert (
            item.items()
            >= {
                "outcome": "failed-verify",
                "reason": reason,
                "verified": False,
                "exit_code": 5,
            }.items()
        )
        assert "rejected the credential" in item["message"]
        assert basic.username in item["message"]
    assert env.existing("alpha", old) == before
    assert env.secret("alpha", new) is None


# -- 5 and 6. faults injected in front of the API server -----------------------------------------


def _proxied_config(env: RotateEnv, proxy_url: str, users: list[Any]) -> Path:
    kubeconfig = env.proxy_kubeconfig(proxy_url)
    return env.write_config(
        clusters=[env.cluster_entry("alpha", kubeconfig=kubeconfig)],
        registries=[env.registry_entry(u) for u in users],
        secrets=[env.secret_entry(users)],
    )


def test_a_409_on_replace_is_re_read_retried_and_succeeds(
    env: RotateEnv, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(env.kube.cluster("alpha").server)
    basic = env.basic_user()
    namespace = env.namespace("target")
    config = _proxied_config(env, proxy.url, [basic])
    assert env.rotate(config).code == 0
    before = env.existing("alpha", namespace)
    env.change_password(basic)
    path = f"/api/v1/namespaces/{namespace}/secrets/{SECRET}"
    rule = proxy.add_rule("PUT", re.escape(path), conflict(), nth=1)
    proxy.reset_counts()
    started = datetime.now(UTC)

    run = env.rotate(config)

    assert_report(
        run, code=0, results={("alpha", namespace): rotated("alpha", namespace, "source-changed")}
    )
    assert rule.fired == 1
    assert proxy.count("PUT", path) == 2
    assert proxy.count("GET", path) == 1  # the re-read after the conflict
    assert proxy.count("DELETE", path) == 0
    after = env.existing("alpha", namespace)
    assert after["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert_managed_secret(after, [basic], canaries=env.canaries, since=started)

    # A real conflict: someone edits the Secret while the rotator's PUT is on its way (held
    # back by the proxy), so the API server itself answers 409. The edit survives the retry.
    proxy.clear_rules()
    env.change_password(basic)
    held = proxy.add_rule("PUT", re.escape(path), delay(1.0), nth=1)
    proxy.reset_counts()

    def human_edit() -> None:
        wait_until(lambda: proxy.count("PUT", path) >= 1, timeout=30, what="the rotator's PUT")
        edit = {"metadata": {"labels": {"edited-by": "human"}}}
        env.core("alpha").patch_namespaced_secret(SECRET, namespace, edit)

    editor = threading.Thread(target=human_edit)
    editor.start()
    started = datetime.now(UTC)
    try:
        run = env.rotate(config)
    finally:
        editor.join()

    assert_report(
        run, code=0, results={("alpha", namespace): rotated("alpha", namespace, "source-changed")}
    )
    assert held.fired == 1
    assert proxy.count("PUT", path) == 2
    assert_managed_secret(
        env.existing("alpha", namespace),
        [basic],
        canaries=env.canaries,
        since=started,
        extra_labels={"edited-by": "human"},
    )


def test_a_replace_whose_answer_is_lost_is_recognised_as_ours_and_post_verified(
    env: RotateEnv, fault_proxy: FaultProxyFactory
) -> None:
    """The PUT lands but its answer never comes back; the HTTP client retries it, and the retry
    meets the rotator's own write (409). That is a rotation, verified: not "fresh"."""
    proxy = fault_proxy(env.kube.cluster("alpha").server)
    basic = env.basic_user()
    namespace = env.namespace("target")
    config = _proxied_config(env, proxy.url, [basic])
    assert env.rotate(config).code == 0
    env.change_password(basic)
    path = f"/api/v1/namespaces/{namespace}/secrets/{SECRET}"
    lost = proxy.add_rule("PUT", re.escape(path), drop_response(), nth=1)
    proxy.reset_counts()
    started = datetime.now(UTC)

    run = env.rotate(config)

    assert_report(
        run, code=0, results={("alpha", namespace): rotated("alpha", namespace, "source-changed")}
    )
    assert lost.fired == 1
    assert proxy.count("PUT", path) == 2  # the client's own retry, answered 409 by the server
    assert_managed_secret(
        env.existing("alpha", namespace), [basic], canaries=env.canaries, since=started
    )


def test_a_500_on_one_namespace_leaves_the_others_rotated(
    env: RotateEnv, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(env.kube.cluster("alpha").server)
    basic = env.basic_user()
    first, bad, last = env.namespace("a"), env.namespace("b"), env.namespace("c")
    config = _proxied_config(env, proxy.url, [basic])
    create = proxy.add_rule("POST", rf"/api/v1/namespaces/{bad}/secrets", server_error())
    started = datetime.now(UTC)

    run = env.rotate(config)

    assert run.code == 3
    assert run.document["summary"] == {"failed-write": 1, "rotated": 2}
    assert (
        run.results()[("alpha", bad)].items()
        >= {
            "outcome": "failed-write",
            "reason": "missing",
            "verified": False,
            "exit_code": 3,
        }.items()
    )
    message = failed_message(run, "alpha", bad)
    assert "500" in message
    assert f"create secrets/{SECRET} in namespace '{bad}'" in message
    assert create.fired == 1
    assert env.secret("alpha", bad) is None
    for namespace in (first, last):
        assert run.results()[("alpha", namespace)] == rotated("alpha", namespace, "missing")
        assert_managed_secret(
            env.existing("alpha", namespace), [basic], canaries=env.canaries, since=started
        )

    # The same on a replace: the failing namespace keeps its old Secret, the others move on.
    proxy.clear_rules()
    assert env.rotate(config).code == 0
    before = env.existing("alpha", bad)
    env.change_password(basic)
    replace = proxy.add_rule("PUT", rf"/api/v1/namespaces/{bad}/secrets/{SECRET}", server_error())
    run = env.rotate(config)
    assert run.code == 3
    assert replace.fired == 1
    assert run.results()[("alpha", bad)]["outcome"] == "failed-write"
    assert run.results()[("alpha", bad)]["reason"] == "source-changed"
    assert f"update secrets/{SECRET} in namespace '{bad}'" in failed_message(run, "alpha", bad)
    assert env.existing("alpha", bad) == before
    for namespace in (first, last):
        assert run.results()[("alpha", namespace)] == rotated("alpha", namespace, "source-changed")
        assert_managed_secret(
            env.existing("alpha", namespace), [basic], canaries=env.canaries, since=started
        )


# -- 7. RBAC -------------------------------------------------------------------------------------


def test_the_limited_identity_gets_a_clear_permission_error_not_a_traceback(
    env: RotateEnv,
) -> None:
    basic = env.basic_user()
    limited = env.namespace("x")
    other = env.namespace("x", "beta")
    config = env.write_config(
        clusters=[
            env.cluster_entry("alpha", context="alpha-limited"),
            env.cluster_entry("beta"),
        ],
        registries=[env.registry_entry(basic)],
        secrets=[env.secret_entry([basic])],
    )

    run = env.rotate(config)

    assert run.code == 3
    failures = run.document["cluster_failures"]
    assert [(f["cluster"], f["exit_code"]) for f in failures] == [("alpha", 3)]
    message = failures[0]["message"]
    assert "forbidden (403)" in message
    assert "list secrets in all namespaces" in message
    assert "missing RBAC rule" in message
    assert "resources ['secrets']" in message
    assert "verbs ['list']" in message
    # The other cluster is served all the same.
    assert run.results() == {("beta", other): rotated("beta", other, "missing")}
    assert env.secret("alpha", limited) is None

    table = env.run("rotate", "--now", "--config", str(config), "--output", "table")
    assert table.code == 3
    assert "forbidden (403)" in " ".join(table.out.split())
    status = env.run("status", "--config", str(config), "--output", "json")
    assert status.code == 3
    assert "forbidden (403)" in status.err


# -- 8. a cluster down ---------------------------------------------------------------------------


def test_one_cluster_down_leaves_the_other_rotated(env: RotateEnv) -> None:
    basic = env.basic_user()
    up, down = env.namespace("a"), env.namespace("b", "beta")
    config = env.simple_config([basic], clusters=("alpha", "beta"))

    with env.kube.cluster_down("beta"):
        run = env.rotate(config)

    assert run.code == 3
    assert run.results() == {("alpha", up): rotated("alpha", up, "missing")}
    failures = run.document["cluster_failures"]
    assert [(f["cluster"], f["exit_code"]) for f in failures] == [("beta", 3)]
    assert "unreachable" in failures[0]["message"]
    assert env.secret("alpha", up) is not None
    assert env.secret("beta", down) is None

    back = env.rotate(config)
    assert_report(
        back,
        code=0,
        results={
            ("alpha", up): fresh("alpha", up),
            ("beta", down): rotated("beta", down, "missing"),
        },
    )


# -- 9. changes of source and registries ---------------------------------------------------------


def test_source_and_registries_changes_propagate_on_the_next_run(env: RotateEnv) -> None:
    basic, token = env.basic_user(), env.token_user()
    namespace = env.namespace("app")
    config = env.simple_config([basic])
    target = ("alpha", namespace)
    assert_report(env.rotate(config), code=0, results={target: rotated(*target, "missing")})
    first = env.existing(*target)

    env.change_password(basic)
    started = datetime.now(UTC)
    assert_report(env.rotate(config), code=0, results={target: rotated(*target, "source-changed")})
    second = env.existing(*target)
    assert_managed_secret(second, [basic], canaries=env.canaries, since=started)
    assert second["data"] != first["data"]
    env.skopeo_inspect(second, env.basic_world)

    both = env.write_config(
        clusters=[env.cluster_entry("alpha")],
        registries=[env.registry_entry(basic), env.registry_entry(token)],
        secrets=[env.secret_entry([basic, token])],
    )
    started = datetime.now(UTC)
    assert_report(
        env.rotate(both), code=0, results={target: rotated(*target, "registries-changed")}
    )
    third = env.existing(*target)
    assert_managed_secret(third, [basic, token], canaries=env.canaries, since=started)
    env.skopeo_inspect(third, env.token_world)

    assert_report(env.rotate(both), code=0, results={target: fresh(*target)})
    assert env.existing(*target) == third


# -- 10. --force and the scope flags -------------------------------------------------------------


def test_force_rotates_fresh_secrets_and_scope_flags_narrow_the_run(env: RotateEnv) -> None:
    basic = env.basic_user()
    one, two = env.namespace("one"), env.namespace("two")
    env.namespace("one", "beta")
    config = env.simple_config([basic], clusters=("alpha", "beta"))

    run = env.rotate(config, "--cluster", "alpha", "--namespace", one)
    assert_report(run, code=0, results={("alpha", one): rotated("alpha", one, "missing")})
    assert env.secret("alpha", two) is None
    assert env.secret("beta", one) is None

    run = env.rotate(config, "--cluster", "beta")
    assert_report(run, code=0, results={("beta", one): rotated("beta", one, "missing")})
    assert env.secret("alpha", two) is None

    run = env.rotate(config)
    assert_report(
        run,
        code=0,
        results={
            ("alpha", one): fresh("alpha", one),
            ("alpha", two): rotated("alpha", two, "missing"),
            ("beta", one): fresh("beta", one),
        },
    )
    before = {t: env.existing(*t) for t in (("alpha", one), ("alpha", two), ("beta", one))}

    run = env.rotate(config, "--force", "--namespace", one)
    assert_report(
        run,
        code=0,
        results={
            ("alpha", one): rotated("alpha", one, "forced"),
            ("beta", one): rotated("beta", one, "forced"),
        },
    )
    assert env.existing("alpha", two) == before[("alpha", two)]
    for target in (("alpha", one), ("beta", one)):
        after = env.existing(*target)
        assert after["metadata"]["resourceVersion"] != before[target]["metadata"]["resourceVersion"]
        assert after["data"] == before[target]["data"]  # the same credential, written again

    run = env.rotate(config, "--force", "--registry", "basic", "--cluster", "alpha")
    assert {k: v["reason"] for k, v in run.results().items()} == {
        ("alpha", one): "forced",
        ("alpha", two): "forced",
    }

    # --namespace narrows; it never widens the config's selection (safety rule 4).
    outside = env.foreign_namespace()
    run = env.rotate(config, "--force", "--namespace", outside)
    assert_report(run, code=0, results={})
    assert env.secret("alpha", outside) is None

    unknown = env.rotate(config, "--cluster", "gamma")
    assert unknown.code == 2
    assert "--cluster gamma: not in the config" in unknown.err


# -- 11. renew-at, expires-at and status ---------------------------------------------------------


def test_passed_renew_at_or_expires_at_rotates_and_status_lists_managed_secrets(
    env: RotateEnv,
) -> None:
    basic, token = env.basic_user(), env.token_user()
    renew, expire, calm = env.namespace("renew"), env.namespace("expire"), env.namespace("calm")
    config = env.simple_config([basic, token], clusters=("alpha", "beta"))
    assert env.rotate(config).code == 0
    env.patch_annotations("alpha", renew, {ANN_RENEW_AT: "2020-01-01T00:00:00Z"})
    env.patch_annotations("alpha", expire, {ANN_EXPIRES_AT: "2020-01-01T00:00:00Z"})
    started = datetime.now(UTC)

    run = env.rotate(config)

    assert_report(
        run,
        code=0,
        results={
            ("alpha", calm): fresh("alpha", calm),
            ("alpha", expire): rotated("alpha", expire, "expired"),
            ("alpha", renew): rotated("alpha", renew, "renew-due"),
        },
    )
    for namespace in (renew, expire):
        # Static credentials: the stale schedule annotations are gone, not carried over.
        assert_managed_secret(
            env.existing("alpha", namespace), [basic, token], canaries=env.canaries, since=started
        )

    status = env.run("status", "--config", str(config), "--output", "json", "--log-level", "debug")
    assert status.code == 0
    rows = [r for r in status.document if r["namespace"].startswith(env.prefix)]
    assert [(r["cluster"], r["namespace"], r["secret"]) for r in rows] == [
        ("alpha", n, SECRET) for n in sorted((renew, expire, calm))
    ]
    for row in rows:
        verified_at = row.pop("verified_at")
        assert TIME_SHAPE.fullmatch(verified_at)
        assert (
            row.items()
            >= {
                "registries": ["basic", "token"],
                "expires_at": None,
                "expires_in": "static",
                "renew_at": None,
            }.items()
        )
        secret = env.existing("alpha", row["namespace"])
        assert verified_at == secret["metadata"]["annotations"]["rotator.dev/verified-at"]
        assert secret["metadata"]["annotations"][ANN_ROTATED_AT] <= verified_at

    beta_only = env.run("status", "--config", str(config), "--output", "json", "--cluster", "beta")
    assert beta_only.code == 0
    assert not [r for r in beta_only.document if r["namespace"].startswith(env.prefix)]
    table = env.run("status", "--config", str(config))
    assert table.code == 0
    assert "managed Secrets" in table.out


# -- 12. check-config ----------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A port that records connection attempts: nothing may connect while a config is checked."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock


def _assert_nothing_connected(sock: socket.socket) -> None:
    sock.settimeout(0.05)
    with pytest.raises(TimeoutError):
        sock.accept()


def _watched_config(env: RotateEnv, port: int) -> dict[str, Any]:
    """A valid config whose every cluster and registry address is the listener."""
    kubeconfig = env.proxy_kubeconfig(f"https://127.0.0.1:{port}")
    password = env.tmp_path / "password"
    password.write_text(canary_password() + "\n")
    return {
        "clusters": [{"name": "alpha", "kubeconfig": str(kubeconfig), "context": "alpha"}],
        "registries": [
            {
                "name": "watched",
                "provider": "generic",
                "host": f"127.0.0.1:{port}",
                "generic": {"username": "someone", "password_from": {"file": str(password)}},
                "verify": {"ca_bundle": str(env.ca.ca_path)},
            }
        ],
        "secrets": [
            {"name": SECRET, "registries": ["watched"], "namespaces": {"include": ["team-*"]}}
        ],
    }


BAD_CONFIGS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unknown-top-level-key": (lambda d: d.update(schedul={}), "schedul: unknown key"),
    "unknown-nested-key": (
        lambda d: d["registries"][0].update(verfy={}),
        "registries[0].verfy: unknown key",
    ),
    "host-with-scheme": (
        lambda d: d["registries"][0].update(host="https://registry.example.com/x"),
        "registries[0].host",
    ),
    "unknown-registry": (
        lambda d: d["secrets"][0].update(registries=["nope"]),
        "secrets[0].registries[0]: unknown registry 'nope'",
    ),
    "unknown-cluster": (
        lambda d: d["secrets"][0].update(clusters=["gamma"]),
        "secrets[0].clusters[0]: unknown cluster 'gamma'",
    ),
    "negated-glob": (
        lambda d: d["secrets"][0]["namespaces"].update(include=["!team-a"]),
        "secrets[0].namespaces.include",
    ),
    "bad-duration": (lambda d: d.update(schedule={"tick": "soon"}), "schedule.tick"),
    "no-registries": (lambda d: d.pop("registries"), "registries"),
}


@pytest.mark.parametrize("kind", sorted(BAD_CONFIGS))
def test_check_config_rejects_a_bad_config_with_its_key_path_and_contacts_nothing(
    env: RotateEnv, listener: socket.socket, kind: str
) -> None:
    mutate, expected = BAD_CONFIGS[kind]
    document = _watched_config(env, listener.getsockname()[1])
    valid = env.tmp_path / "valid.yaml"
    valid.write_text(yaml.safe_dump(document))
    assert env.run("check-config", "--config", str(valid)).code == 0
    broken = copy.deepcopy(document)
    mutate(broken)
    config = env.tmp_path / "broken.yaml"
    config.write_text(yaml.safe_dump(broken))

    began = time.monotonic()
    checked = env.run("check-config", "--config", str(config))
    rotated_ = env.run("rotate", "--now", "--config", str(config), "--output", "json")
    elapsed = time.monotonic() - began

    for run in (checked, rotated_):
        assert run.code == 2
        assert expected in run.err
        assert run.out == ""
    assert elapsed < 5
    _assert_nothing_connected(listener)


def test_check_config_exits_2_for_yaml_errors_and_missing_files(
    env: RotateEnv, listener: socket.socket
) -> None:
    config = env.tmp_path / "broken.yaml"
    config.write_text("clusters: [\n")
    run = env.run("check-config", "--config", str(config))
    assert run.code == 2
    assert "not valid YAML at line" in run.err
    missing = env.run("check-config", "--config", str(env.tmp_path / "absent.yaml"))
    assert missing.code == 2
    assert "absent.yaml" in missing.err
    _assert_nothing_connected(listener)


# -- the hygiene test, out of process ------------------------------------------------------------


def test_the_cli_process_prints_no_secret_on_success_or_failure(env: RotateEnv) -> None:
    """The console script as a user runs it (logs JSON because stderr is not a terminal, and
    text), on success and on every failure path: no canary in stdout or stderr. One password
    comes from a file, the other from the process environment."""
    basic, token = env.basic_user(), env.token_user()
    namespace = env.namespace("app")
    env.namespace("app", "beta")
    variable = "ROTATOR_TEST_TOKEN_PASSWORD"
    environment = {variable: token.password}
    config = env.write_config(
        clusters=[env.cluster_entry("alpha"), env.cluster_entry("beta")],
        registries=[
            env.registry_entry(basic),
            env.registry_entry(token, username=token.username, password_from={"env": variable}),
        ],
        secrets=[env.secret_entry([basic, token])],
    )
    common = ["--config", str(config), "--log-level", "debug"]

    def rotator(*args: str) -> CliResult:
        return env.run_subprocess(*args, extra_env=environment)

    started = datetime.now(UTC)
    done = rotator("rotate", "--now", *common, "--output", "json")
    assert done.code == 0, done.err
    assert done.document["summary"] == {"rotated": 2}
    assert done.log_records()  # auto: JSON lines, as stderr is not a terminal
    assert_managed_secret(
        env.existing("alpha", namespace), [basic, token], canaries=env.canaries, since=started
    )
    assert rotator("rotate", "--now", "--force", *common, "--log-format", "text").code == 0
    assert rotator("status", *common).code == 0

    # The registry rejects the new credential (exit 5), in both log formats and outputs.
    before = env.existing("alpha", namespace)
    env.change_password(basic, on_registry=False)
    for log_format, output in (("json", "table"), ("text", "json")):
        failed = rotator("rotate", "--now", *common, "--log-format", log_format, "--output", output)
        assert failed.code == 5
    assert env.existing("alpha", namespace) == before

    # The environment variable is unset: the provider's error names it, never a value.
    env.change_password(basic)
    unset = env.run_subprocess("rotate", "--now", "--force", *common, "--output", "json")
    assert unset.code == 4
    assert unset.document["summary"] == {"failed-mint": 2}
    assert variable in unset.out

    # RBAC forbids (exit 3; a cluster down is the same path in-process), a bad config (2).
    limited = env.write_config(
        clusters=[env.cluster_entry("alpha", context="alpha-limited")],
        registries=[env.registry_entry(basic)],
        secrets=[env.secret_entry([basic])],
    )
    forbidden = rotator("rotate", "--now", "--config", str(limited), "--log-level", "debug")
    assert forbidden.code == 3
    assert "forbidden (403)" in " ".join(forbidden.out.split())
    bad = env.tmp_path / "bad.yaml"
    bad.write_text(config.read_text().replace("registries:", "registrys:", 1))
    assert rotator("check-config", "--config", str(bad)).code == 2
