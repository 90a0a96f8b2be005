"""Namespace selection: include/exclude globs and Kubernetes label selector semantics."""

from __future__ import annotations

import pytest

from rotator.config import NamespaceSelector
from rotator.selection import NamespaceInfo, label_selector_matches, selects

LABELS = {"env": "prod", "team": "payments", "example.com/tier": "web"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        # equality
        pytest.param("env=prod", True, id="equals"),
        pytest.param("env=dev", False, id="equals-other-value"),
        pytest.param("env==prod", True, id="double-equals"),
        pytest.param("env == prod", True, id="spaces-around-operator"),
        pytest.param("env!=dev", True, id="not-equals"),
        pytest.param("env!=prod", False, id="not-equals-same-value"),
        pytest.param("region=eu", False, id="equals-missing-key"),
        pytest.param("region!=eu", True, id="not-equals-missing-key-matches"),
        pytest.param("example.com/tier=web", True, id="prefixed-key"),
        # sets
        pytest.param("env in (prod, staging)", True, id="in"),
        pytest.param("env in (dev,staging)", False, id="in-no-match"),
        pytest.param("region in (eu)", False, id="in-missing-key"),
        pytest.param("env notin (dev, staging)", True, id="notin"),
        pytest.param("env notin (prod)", False, id="notin-match"),
        pytest.param("region notin (eu)", True, id="notin-missing-key-matches"),
        # existence
        pytest.param("team", True, id="exists"),
        pytest.param("region", False, id="exists-missing"),
        pytest.param("!region", True, id="not-exists"),
        pytest.param("!team", False, id="not-exists-present"),
        # conjunction
        pytest.param("env=prod,team", True, id="all-terms-match"),
        pytest.param("env=prod,!team", False, id="one-term-fails"),
        pytest.param("env in (prod, dev),team!=ops,!legacy", True, id="mixed-terms"),
        pytest.param("env in (dev, prod),team in (ops)", False, id="comma-inside-set"),
    ],
)
def test_label_selector_semantics(selector: str, expected: bool) -> None:
    assert label_selector_matches(selector, LABELS) is expected


def test_equality_with_an_empty_value_matches_an_empty_label() -> None:
    assert label_selector_matches("flag=", {"flag": ""}) is True
    assert label_selector_matches("flag=", {}) is False


def test_every_selector_here_is_accepted_by_the_config() -> None:
    for selector in ["env=prod,team", "env in (prod, dev),team!=ops,!legacy", "region!=eu"]:
        spec = NamespaceSelector(include=("*",), selector=selector)
        assert spec.selector == selector


def selector(
    include: tuple[str, ...] = ("*",), exclude: tuple[str, ...] = (), labels: str | None = None
) -> NamespaceSelector:
    return NamespaceSelector(include=include, exclude=exclude, selector=labels)


def namespace(name: str, **labels: str) -> NamespaceInfo:
    return NamespaceInfo(name=name, labels=labels)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("team-a", True),
        ("team-", True),
        ("payments", True),
        ("team-sandbox-1", False),
        ("kube-system", False),
        ("my-team-a", False),
    ],
)
def test_include_and_exclude_globs(name: str, expected: bool) -> None:
    spec = selector(include=("team-*", "payments"), exclude=("team-sandbox-*",))
    assert selects(spec, namespace(name)) is expected


def test_glob_character_classes_and_single_character_wildcard() -> None:
    spec = selector(include=("app-[ab]", "svc-?"), exclude=("app-[!a]",))
    assert [
        n for n in ("app-a", "app-b", "app-c", "svc-1", "svc-12") if selects(spec, namespace(n))
    ] == [
        "app-a",
        "svc-1",
    ]


def test_exclude_wins_over_include() -> None:
    assert selects(selector(include=("a",), exclude=("a",)), namespace("a")) is False


def test_label_selector_applies_after_the_globs() -> None:
    spec = selector(include=("team-*",), labels="env=prod")
    assert selects(spec, namespace("team-a", env="prod")) is True
    assert selects(spec, namespace("team-a", env="dev")) is False
    assert selects(spec, namespace("other", env="prod")) is False


def test_no_label_selector_ignores_labels() -> None:
    assert selects(selector(), namespace("anything", env="dev")) is True
