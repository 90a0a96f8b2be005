"""A generic registry whose username and password come from a source Secret in a cluster: the
rotation works end to end, and a change of the source Secret reaches every target on the next
run. Runs through the CLI in-process, checked for the canary password like every scenario."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.rotate_env import (
    SECRET,
    RegistryUser,
    RotateEnv,
    assert_managed_secret,
    canary_password,
    rotate_env,
)

pytestmark = pytest.mark.integration

SOURCE = "mirror-source"


@pytest.fixture
def env(request: pytest.FixtureRequest) -> Iterator[RotateEnv]:
    with rotate_env(request) as environment:
        yield environment


def _source(namespace: str, key: str) -> dict[str, Any]:
    return {"secret": {"cluster": "alpha", "namespace": namespace, "name": SOURCE, "key": key}}


def _set_source_password(env: RotateEnv, namespace: str, user: RegistryUser) -> None:
    encoded = base64.b64encode(user.password.encode()).decode()
    env.core("alpha").patch_namespaced_secret(SOURCE, namespace, {"data": {"password": encoded}})


def test_a_source_secret_feeds_the_rotation_and_its_changes_propagate(env: RotateEnv) -> None:
    user = env.token_user("mirror")
    # The source lives outside the selected namespaces, in one cluster; targets are in both.
    source_ns = env.foreign_namespace("alpha")
    env.create_secret(
        "alpha",
        source_ns,
        name=SOURCE,
        secret_type="Opaque",
        data={"username": user.username.encode(), "password": user.password.encode()},
    )
    targets = [("alpha", env.namespace("app")), ("beta", env.namespace("app", "beta"))]
    config = env.write_config(
        clusters=[env.cluster_entry("alpha"), env.cluster_entry("beta")],
        registries=[
            env.registry_entry(
                user,
                username_from=_source(source_ns, "username"),
                password_from=_source(source_ns, "password"),
            )
        ],
        secrets=[env.secret_entry([user])],
    )
    started = datetime.now(UTC)

    run = env.rotate(config)

    assert run.code == 0, run.err
    assert {t: (r["outcome"], r["reason"]) for t, r in run.results().items()} == dict.fromkeys(
        targets, ("rotated", "missing")
    )
    for target in targets:
        secret = env.existing(*target)
        assert_managed_secret(secret, [user], canaries=env.canaries, since=started)
    env.skopeo_inspect(env.existing(*targets[1]), env.token_world)
    assert env.secret("alpha", source_ns) is None  # the source's namespace is not a target

    # A new password, on the registry and in the source Secret: the next run carries it over.
    user.password = canary_password()
    env.canaries.add(user.username, user.password)
    env.token_world.registry.add_user(user.username, user.password, {"team/*": ["pull"]})
    _set_source_password(env, source_ns, user)
    started = datetime.now(UTC)

    run = env.rotate(config)

    assert run.code == 0, run.err
    assert {t: (r["outcome"], r["reason"]) for t, r in run.results().items()} == dict.fromkeys(
        targets, ("rotated", "source-changed")
    )
    for target in targets:
        assert_managed_secret(env.existing(*target), [user], canaries=env.canaries, since=started)
    env.skopeo_inspect(env.existing(*targets[0]), env.token_world)

    settled = env.rotate(config)
    assert settled.code == 0
    assert {r["outcome"] for r in settled.results().values()} == {"fresh"}


def test_an_unreadable_source_secret_fails_the_mint_and_writes_nothing(env: RotateEnv) -> None:
    user = env.basic_user("mirror")
    source_ns = env.foreign_namespace("alpha")
    target = env.namespace("app")
    config = env.write_config(
        clusters=[env.cluster_entry("alpha")],
        registries=[
            env.registry_entry(
                user, username=user.username, password_from=_source(source_ns, "password")
            )
        ],
        secrets=[env.secret_entry([user])],
    )

    run = env.rotate(config)  # the source Secret does not exist yet

    assert run.code == 4
    item = run.results()[("alpha", target)]
    assert (item["outcome"], item["reason"], item["exit_code"]) == ("failed-mint", "missing", 4)
    assert f"Secret {source_ns}/{SOURCE}" in item["message"]
    assert env.secret("alpha", target) is None

    env.create_secret(
        "alpha",
        source_ns,
        name=SOURCE,
        secret_type="Opaque",
        data={"password": user.password.encode()},
    )
    run = env.rotate(config)
    assert run.code == 0, run.err
    assert run.results()[("alpha", target)]["outcome"] == "rotated"
    assert env.existing("alpha", target)["metadata"]["name"] == SECRET

    # The source disappears while the target is fresh: whether it changed is now unknown, so
    # the target is reported failed (not fresh) and is left exactly as it was.
    before = env.existing("alpha", target)
    env.core("alpha").delete_namespaced_secret(SOURCE, source_ns)

    run = env.rotate(config)

    assert run.code == 4
    item = run.results()[("alpha", target)]
    assert (item["outcome"], item["reason"], item["exit_code"]) == ("failed-mint", "fresh", 4)
    assert f"Secret {source_ns}/{SOURCE}" in item["message"]
    assert env.existing("alpha", target) == before
