"""build_plan: which targets are selected and in which order; Plan.due and registries_needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rotator.config import Settings, parse_settings
from rotator.model import DOCKERCONFIGJSON_TYPE, Credential, Observed, Plan, Reason, Target
from rotator.plan import Scope, build_plan
from rotator.selection import NamespaceInfo

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def _registry(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "generic",
        "host": f"{name}.example.com",
        "generic": {"username": "robot", "password_from": {"env": "PW"}},
    }


def make_settings(*secrets: dict[str, Any]) -> Settings:
    return parse_settings(
        {
            "clusters": [{"name": "prod"}, {"name": "stage"}],
            "registries": [_registry("harbor"), _registry("nexus"), _registry("quay")],
            "secrets": list(secrets),
        }
    )


def secret(name: str = "pull", **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "registries": ["harbor"],
        "namespaces": {"include": ["*"]},
    }
    spec.update(fields)
    return spec


def ns(name: str, terminating: bool = False, **labels: str) -> NamespaceInfo:
    return NamespaceInfo(name=name, labels=labels, terminating=terminating)


def fresh(target: Target, registries: tuple[str, ...] = ("harbor",)) -> Observed:
    return Observed(
        target=target,
        exists=True,
        owned=True,
        secret_type=DOCKERCONFIGJSON_TYPE,
        registries=registries,
        expires_at=NOW + timedelta(hours=4),
        renew_at=NOW + timedelta(hours=1),
    )


def plan(
    settings: Settings,
    namespaces: Mapping[str, Sequence[NamespaceInfo]],
    observed: Mapping[Target, Observed] | None = None,
    **kwargs: Any,
) -> Plan:
    return build_plan(
        settings=settings, namespaces=namespaces, observed=observed or {}, now=NOW, **kwargs
    )


def targets(result: Plan) -> list[str]:
    return [str(d.target) for d in result.decisions]


def test_include_and_exclude_globs_select_namespaces() -> None:
    settings = make_settings(
        secret(namespaces={"include": ["team-*", "payments"], "exclude": ["team-sandbox-*"]})
    )
    result = plan(
        settings,
        {
            "prod": [
                ns("team-a"),
                ns("team-sandbox-1"),
                ns("payments"),
                ns("payments-old"),
                ns("default"),
                ns("team-b"),
            ]
        },
    )
    assert targets(result) == ["prod/payments/pull", "prod/team-a/pull", "prod/team-b/pull"]


def test_label_selector_filters_namespaces() -> None:
    settings = make_settings(
        secret(namespaces={"include": ["*"], "selector": "env in (prod),!legacy"})
    )
    result = plan(
        settings,
        {
            "prod": [
                ns("a", env="prod"),
                ns("b", env="dev"),
                ns("c"),
                ns("d", env="prod", legacy="true"),
            ]
        },
    )
    assert targets(result) == ["prod/a/pull"]


def test_terminating_namespaces_are_skipped() -> None:
    result = plan(make_settings(secret()), {"prod": [ns("a"), ns("b", terminating=True)]})
    assert targets(result) == ["prod/a/pull"]


def test_a_secret_goes_only_to_its_clusters() -> None:
    settings = make_settings(secret("only-prod", clusters=["prod"]), secret("everywhere"))
    result = plan(settings, {"prod": [ns("a")], "stage": [ns("a")]})
    assert targets(result) == ["prod/a/everywhere", "prod/a/only-prod", "stage/a/everywhere"]


def test_a_cluster_missing_from_namespaces_yields_no_decisions() -> None:
    result = plan(make_settings(secret()), {"stage": [ns("a")]})
    assert targets(result) == ["stage/a/pull"]


def test_no_namespaces_at_all_yields_an_empty_plan() -> None:
    result = plan(make_settings(secret()), {})
    assert result.decisions == ()
    assert result.due == ()
    assert result.registries_needed == frozenset()


def test_scope_narrows_by_cluster() -> None:
    result = plan(
        make_settings(secret()),
        {"prod": [ns("a")], "stage": [ns("a")]},
        scope=Scope(clusters={"stage"}),
    )
    assert targets(result) == ["stage/a/pull"]


def test_scope_narrows_by_namespace() -> None:
    result = plan(
        make_settings(secret()),
        {"prod": [ns("a"), ns("b")], "stage": [ns("b"), ns("c")]},
        scope=Scope(namespaces={"b"}),
    )
    assert targets(result) == ["prod/b/pull", "stage/b/pull"]


def test_scope_narrows_by_registry_to_the_secrets_that_hold_it() -> None:
    settings = make_settings(
        secret("one", registries=["harbor"]),
        secret("two", registries=["nexus", "quay"]),
        secret("three", registries=["quay"]),
    )
    result = plan(settings, {"prod": [ns("a")]}, scope=Scope(registries={"nexus"}))
    assert targets(result) == ["prod/a/two"]
    # The whole Secret is rewritten, so every registry in it is still needed.
    assert result.decisions[0].registries == ("nexus", "quay")
    assert result.registries_needed == frozenset({"nexus", "quay"})


def test_scope_cannot_widen_the_config_selection() -> None:
    settings = make_settings(secret(namespaces={"include": ["team-*"]}, clusters=["prod"]))
    result = plan(
        settings,
        {"prod": [ns("team-a"), ns("kube-system")], "stage": [ns("team-a")]},
        scope=Scope(clusters={"prod", "stage"}, namespaces={"kube-system", "team-a"}),
    )
    assert targets(result) == ["prod/team-a/pull"]


def test_empty_scope_admits_everything() -> None:
    result = plan(make_settings(secret()), {"prod": [ns("a")]}, scope=Scope())
    assert targets(result) == ["prod/a/pull"]


def test_decisions_are_sorted_by_cluster_namespace_and_secret() -> None:
    settings = make_settings(secret("zeta"), secret("alpha"))
    result = plan(settings, {"stage": [ns("b"), ns("a")], "prod": [ns("c"), ns("a")]})
    assert targets(result) == [
        "prod/a/alpha",
        "prod/a/zeta",
        "prod/c/alpha",
        "prod/c/zeta",
        "stage/a/alpha",
        "stage/a/zeta",
        "stage/b/alpha",
        "stage/b/zeta",
    ]


def test_observed_state_drives_each_decision() -> None:
    settings = make_settings(secret(registries=["harbor", "nexus"]))
    a = Target(cluster="prod", namespace="a", secret="pull")
    b = Target(cluster="prod", namespace="b", secret="pull")
    c = Target(cluster="prod", namespace="c", secret="pull")
    observed = {
        a: fresh(a, ("harbor", "nexus")),
        b: Observed(target=b, exists=True, owned=False),
    }
    result = plan(settings, {"prod": [ns("a"), ns("b"), ns("c")]}, observed)
    assert [(str(d.target), d.reason, d.rotate) for d in result.decisions] == [
        ("prod/a/pull", Reason.FRESH, False),
        ("prod/b/pull", Reason.NOT_OWNED, False),
        ("prod/c/pull", Reason.MISSING, True),
    ]
    assert result.decisions[0].observed is observed[a]
    assert result.decisions[2].observed == Observed.missing(c)
    assert result.decisions[0].registries == ("harbor", "nexus")


def test_adopt_is_passed_per_secret_entry() -> None:
    settings = make_settings(secret("mine", adopt=True), secret("theirs"))
    observed = {
        Target(cluster="prod", namespace="a", secret=name): Observed(
            target=Target(cluster="prod", namespace="a", secret=name), exists=True, owned=False
        )
        for name in ("mine", "theirs")
    }
    result = plan(settings, {"prod": [ns("a")]}, observed)
    assert [(d.target.secret, d.reason) for d in result.decisions] == [
        ("mine", Reason.ADOPTED),
        ("theirs", Reason.NOT_OWNED),
    ]


def test_force_rotates_fresh_secrets_but_not_unowned_ones() -> None:
    settings = make_settings(secret())
    a = Target(cluster="prod", namespace="a", secret="pull")
    b = Target(cluster="prod", namespace="b", secret="pull")
    observed = {a: fresh(a), b: Observed(target=b, exists=True, owned=False)}
    result = plan(settings, {"prod": [ns("a"), ns("b")]}, observed, force=True)
    assert [(d.reason, d.rotate) for d in result.decisions] == [
        (Reason.FORCED, True),
        (Reason.NOT_OWNED, False),
    ]


def test_plan_due_and_registries_needed_count_only_rotating_decisions() -> None:
    settings = make_settings(
        secret("fresh-one", registries=["harbor"]),
        secret("missing-one", registries=["nexus"]),
        secret("refused-one", registries=["quay"]),
    )
    fresh_target = Target(cluster="prod", namespace="a", secret="fresh-one")
    refused_target = Target(cluster="prod", namespace="a", secret="refused-one")
    observed = {
        fresh_target: fresh(fresh_target),
        refused_target: Observed(target=refused_target, exists=True, owned=False),
    }
    result = plan(settings, {"prod": [ns("a")]}, observed)
    assert [d.target.secret for d in result.due] == ["missing-one"]
    assert result.registries_needed == frozenset({"nexus"})
    assert len(result.decisions) == 3


def test_static_credentials_reach_the_source_check() -> None:
    settings = make_settings(secret())
    a = Target(cluster="prod", namespace="a", secret="pull")
    harbor = Credential(
        registry="harbor",
        host="harbor.example.com",
        username="robot",
        password="pw",
        issued_at=NOW,
        expires_at=None,
    )
    observed = {a: fresh(a)}
    result = plan(settings, {"prod": [ns("a")]}, observed, static={"harbor": harbor})
    assert [(d.reason, d.rotate) for d in result.decisions] == [(Reason.SOURCE_CHANGED, True)]
    assert plan(settings, {"prod": [ns("a")]}, observed).decisions[0].reason is Reason.FRESH
