"""Config loading: every kind of bad config names the exact key path and says how to fix it;
good configs load with the documented defaults."""

from __future__ import annotations

import copy
import re
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from rotator.config import (
    ClusterSpec,
    RegistrySpec,
    RuntimeSpec,
    ScheduleSpec,
    Settings,
    VerifySpec,
    load_settings,
    parse_duration,
    parse_settings,
)
from rotator.errors import ConfigError, ExitCode

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"
CANARY = "Canary-Pa55w0rd-7f3a"

BASE: dict[str, Any] = {
    "clusters": [
        {"name": "prod", "context": "prod-ctx"},
        {"name": "stage", "kubeconfig": "/etc/kube/stage", "context": "stage-ctx"},
    ],
    "registries": [
        {
            "name": "harbor",
            "provider": "generic",
            "host": "harbor.example.com",
            "generic": {"username": "robot", "password_from": {"env": "HARBOR_PASSWORD"}},
        },
        {
            "name": "nexus",
            "provider": "generic",
            "host": "nexus.example.com:8443",
            "generic": {
                "username": "bot",
                "password_from": {
                    "secret": {
                        "cluster": "prod",
                        "namespace": "rotator",
                        "name": "nexus-source",
                        "key": "password",
                    }
                },
            },
        },
    ],
    "secrets": [
        {
            "name": "pull",
            "registries": ["harbor", "nexus"],
            "namespaces": {"include": ["team-*"]},
        }
    ],
}

Mutation = Callable[[dict[str, Any]], object]


def _walk(raw: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        raw = raw[part]
    return raw


def put(*path_and_value: Any) -> Mutation:
    *path, value = path_and_value

    def mutate(raw: dict[str, Any]) -> None:
        _walk(raw, tuple(path[:-1]))[path[-1]] = copy.deepcopy(value)

    return mutate


def drop(*path: Any) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        del _walk(raw, path[:-1])[path[-1]]

    return mutate


def append(*path_and_value: Any) -> Mutation:
    *path, value = path_and_value

    def mutate(raw: dict[str, Any]) -> None:
        _walk(raw, tuple(path)).append(copy.deepcopy(value))

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(raw)

    return mutate


def config_error(mutation: Mutation) -> str:
    raw = copy.deepcopy(BASE)
    mutation(raw)
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    return info.value.message


def test_base_config_is_valid() -> None:
    settings = parse_settings(copy.deepcopy(BASE))
    assert [c.name for c in settings.clusters] == ["prod", "stage"]
    assert [r.name for r in settings.registries] == ["harbor", "nexus"]


# (id, mutation of BASE, exact key path, helpful phrase). Each mutation makes exactly one
# problem, so the message is exactly one line: "<path>: <explanation>".
BAD_CONFIGS = [
    # --- structure and unknown keys
    ("unknown-top-level-key", put("registires", []), "registires", "did you mean 'registries'?"),
    (
        "unknown-top-level-key-capitalised",
        put("Clusters", []),
        "Clusters",
        "did you mean 'clusters'?",
    ),
    (
        "unknown-key-without-close-match",
        put("logging", {}),
        "logging",
        "allowed here: clusters, registries, secrets, schedule, runtime",
    ),
    (
        "unknown-nested-registry-key",
        put("registries", 0, "hots", "x"),
        "registries[0].hots",
        "did you mean 'host'?",
    ),
    (
        "unknown-verify-key",
        put("registries", 0, "verify", {"timout_seconds": 3}),
        "registries[0].verify.timout_seconds",
        "did you mean 'timeout_seconds'?",
    ),
    (
        "unknown-key-in-source-secret",
        put("registries", 1, "generic", "password_from", "secret", "nmae", "x"),
        "registries[1].generic.password_from.secret.nmae",
        "did you mean 'name'?",
    ),
    (
        "unknown-schedule-key",
        put("schedule", {"renew_fracton": 0.5}),
        "schedule.renew_fracton",
        "did you mean 'renew_fraction'?",
    ),
    ("missing-clusters", drop("clusters"), "clusters", "required key is missing"),
    ("empty-clusters", put("clusters", []), "clusters", "must not be empty"),
    ("empty-registries", put("registries", []), "registries", "must not be empty"),
    ("empty-secrets", put("secrets", []), "secrets", "must not be empty"),
    (
        "clusters-as-mapping",
        put("clusters", {"name": "prod"}),
        "clusters",
        "expected a list, got a mapping",
    ),
    (
        "cluster-as-string",
        put("clusters", 0, "prod"),
        "clusters[0]",
        "expected a mapping of keys, got a string",
    ),
    (
        "schedule-null",
        put("schedule", None),
        "schedule",
        "expected a mapping of keys, got nothing (null)",
    ),
    # --- references and uniqueness
    (
        "unknown-registry-reference",
        put("secrets", 0, "registries", 1, "nexsu"),
        "secrets[0].registries[1]",
        "unknown registry 'nexsu'; known: harbor, nexus",
    ),
    (
        "unknown-cluster-in-secret",
        put("secrets", 0, "clusters", ["prod", "prd"]),
        "secrets[0].clusters[1]",
        "unknown cluster 'prd'; known: prod, stage",
    ),
    (
        "unknown-cluster-in-source-secret",
        put("registries", 1, "generic", "password_from", "secret", "cluster", "qa"),
        "registries[1].generic.password_from.secret.cluster",
        "unknown cluster 'qa'; add it under clusters",
    ),
    (
        "duplicate-cluster-name",
        append("clusters", {"name": "prod", "in_cluster": True}),
        "clusters[2].name",
        "'prod' is already used by clusters[0]; names must be unique",
    ),
    (
        "duplicate-registry-name",
        append("registries", BASE["registries"][0]),
        "registries[2].name",
        "'harbor' is already used by registries[0]; names must be unique",
    ),
    (
        "same-host-twice-in-one-secret",
        put("registries", 1, "host", "harbor.example.com"),
        "secrets[0].registries[1]",
        "'nexus' and 'harbor' both write host 'harbor.example.com'",
    ),
    (
        "same-registry-listed-twice-in-one-secret",
        put("secrets", 0, "registries", ["harbor", "harbor"]),
        "secrets[0].registries[1]",
        "'harbor' is already listed at registries[0]",
    ),
    (
        "same-cluster-listed-twice-in-one-secret",
        put("secrets", 0, "clusters", ["prod", "prod"]),
        "secrets[0].clusters[1]",
        "'prod' is already listed at clusters[0]",
    ),
    (
        "empty-cluster-list-in-secret",
        put("secrets", 0, "clusters", []),
        "secrets[0].clusters",
        "must not be empty",
    ),
    (
        "same-secret-name-twice-for-a-cluster",
        append(
            "secrets",
            {"name": "pull", "registries": ["harbor"], "namespaces": {"include": ["ops"]}},
        ),
        "secrets[1].name",
        "secrets[0] already manages 'pull' in clusters 'prod', 'stage'; merge their registries",
    ),
    (
        "same-secret-name-overlapping-in-one-cluster",
        append(
            "secrets",
            {
                "name": "pull",
                "clusters": ["stage"],
                "registries": ["harbor"],
                "namespaces": {"include": ["ops"]},
            },
        ),
        "secrets[1].name",
        "secrets[0] already manages 'pull' in cluster 'stage'",
    ),
    # --- registry hosts
    (
        "host-with-scheme",
        put("registries", 0, "host", "https://harbor.example.com"),
        "registries[0].host",
        "without scheme or path",
    ),
    (
        "host-with-path",
        put("registries", 0, "host", "harbor.example.com/v2"),
        "registries[0].host",
        "without scheme or path",
    ),
    (
        "host-with-port-zero",
        put("registries", 0, "host", "harbor.example.com:0"),
        "registries[0].host",
        "is not a valid registry host[:port]",
    ),
    (
        "host-with-port-too-large",
        put("registries", 0, "host", "harbor.example.com:65536"),
        "registries[0].host",
        "is not a valid registry host[:port]",
    ),
    (
        "host-with-non-numeric-port",
        put("registries", 0, "host", "harbor.example.com:https"),
        "registries[0].host",
        "is not a valid registry host[:port]",
    ),
    (
        "host-not-a-string",
        put("registries", 0, "host", 5000),
        "registries[0].host",
        "expected a string, got a number",
    ),
    # --- namespace selection
    (
        "namespace-glob-upper-case",
        put("secrets", 0, "namespaces", "include", ["Team-*"]),
        "secrets[0].namespaces.include",
        "'Team-*' is not a namespace glob",
    ),
    (
        "namespace-glob-negation-in-include",
        put("secrets", 0, "namespaces", "include", ["!kube-*"]),
        "secrets[0].namespaces.include",
        "to leave namespaces out, list them under exclude",
    ),
    (
        "namespace-glob-unclosed-class",
        put("secrets", 0, "namespaces", "exclude", ["team-[ab"]),
        "secrets[0].namespaces.exclude",
        "'team-[ab' is not a namespace glob",
    ),
    (
        "namespace-include-empty",
        put("secrets", 0, "namespaces", "include", []),
        "secrets[0].namespaces.include",
        "must not be empty",
    ),
    (
        "namespace-include-not-a-list",
        put("secrets", 0, "namespaces", "include", "team-*"),
        "secrets[0].namespaces.include",
        "expected a list, got a string",
    ),
    (
        "label-selector-set-without-parentheses",
        put("secrets", 0, "namespaces", "selector", "env in prod"),
        "secrets[0].namespaces.selector",
        "'env in prod' is not a Kubernetes label selector (e.g. team=payments,env!=dev)",
    ),
    (
        "label-selector-empty-set",
        put("secrets", 0, "namespaces", "selector", "env in ()"),
        "secrets[0].namespaces.selector",
        "is not a Kubernetes label selector",
    ),
    (
        "label-selector-unbalanced",
        put("secrets", 0, "namespaces", "selector", "env in (a,b"),
        "secrets[0].namespaces.selector",
        "is not a Kubernetes label selector",
    ),
    (
        "label-selector-triple-equals",
        put("secrets", 0, "namespaces", "selector", "env===prod"),
        "secrets[0].namespaces.selector",
        "is not a Kubernetes label selector",
    ),
    # --- schedule
    (
        "duration-with-words",
        put("schedule", {"tick": "5 minutes"}),
        "schedule.tick",
        "'5 minutes' is not a duration; write e.g. 90s, 5m or 1h30m",
    ),
    (
        "duration-unknown-unit",
        put("schedule", {"jitter": "5w"}),
        "schedule.jitter",
        "units: ms, s, m, h, d",
    ),
    (
        "duration-boolean",
        put("schedule", {"tick": True}),
        "schedule.tick",
        "expected a duration, got true/false",
    ),
    (
        "duration-too-long",
        put("schedule", {"renew_before": "99999999999d"}),
        "schedule.renew_before",
        "'99999999999d' is too long for a duration",
    ),
    (
        "duration-infinite",
        put("schedule", {"tick": float("inf")}),
        "schedule.tick",
        "a duration must be finite",
    ),
    (
        "renew-before-negative",
        put("schedule", {"renew_before": "-1h"}),
        "schedule.renew_before",
        "a duration cannot be negative",
    ),
    (
        "renew-before-zero",
        put("schedule", {"renew_before": 0}),
        "schedule.renew_before",
        "must be positive",
    ),
    (
        "renew-fraction-one",
        put("schedule", {"renew_fraction": 1}),
        "schedule.renew_fraction",
        "less than 1",
    ),
    (
        "renew-fraction-zero",
        put("schedule", {"renew_fraction": 0}),
        "schedule.renew_fraction",
        "greater than 0",
    ),
    ("tick-below-one-second", put("schedule", {"tick": "500ms"}), "schedule.tick", "at least 1s"),
    (
        "jitter-negative",
        put("schedule", {"jitter": -1}),
        "schedule.jitter",
        "a duration cannot be negative",
    ),
    # --- runtime
    (
        "write-concurrency-zero",
        put("runtime", {"write_concurrency": 0}),
        "runtime.write_concurrency",
        "greater than or equal to 1",
    ),
    (
        "write-concurrency-too-high",
        put("runtime", {"write_concurrency": 65}),
        "runtime.write_concurrency",
        "less than or equal to 64",
    ),
    ("api-qps-zero", put("runtime", {"api_qps": 0}), "runtime.api_qps", "greater than 0"),
    (
        "api-burst-zero",
        put("runtime", {"api_burst": 0}),
        "runtime.api_burst",
        "greater than or equal to 1",
    ),
    (
        "conflict-retries-too-high",
        put("runtime", {"conflict_retries": 11}),
        "runtime.conflict_retries",
        "less than or equal to 10",
    ),
    # --- clusters
    (
        "in-cluster-with-context",
        put("clusters", 0, "in_cluster", True),
        "clusters[0].in_cluster",
        "in_cluster: true cannot be combined with kubeconfig or context",
    ),
    (
        "in-cluster-with-kubeconfig",
        put("clusters", 1, {"name": "stage", "in_cluster": True, "kubeconfig": "/k"}),
        "clusters[1].in_cluster",
        "in_cluster: true cannot be combined with kubeconfig or context",
    ),
    (
        "empty-context",
        put("clusters", 0, "context", ""),
        "clusters[0].context",
        "must not be empty; remove the key to use the default",
    ),
    (
        "cluster-name-upper-case",
        put("clusters", 0, "name", "Prod"),
        "clusters[0].name",
        "'Prod' is not a valid name: use at most 63 lower-case letters",
    ),
    # --- providers and value sources
    (
        "generic-provider-without-generic-block",
        drop("registries", 0, "generic"),
        "registries[0].generic",
        "required when provider is generic",
    ),
    (
        "unknown-provider",
        put("registries", 0, "provider", "quay"),
        "registries[0].provider",
        "'generic'",
    ),
    (
        "password-from-two-sources",
        put("registries", 0, "generic", "password_from", {"env": "A", "file": "/run/pw"}),
        "registries[0].generic.password_from",
        "set exactly one of file, env or secret (found file and env)",
    ),
    (
        "password-from-no-source",
        put("registries", 0, "generic", "password_from", {}),
        "registries[0].generic.password_from",
        "set exactly one of file, env or secret (found none)",
    ),
    (
        "password-from-missing",
        drop("registries", 0, "generic", "password_from"),
        "registries[0].generic.password_from",
        "required key is missing",
    ),
    (
        "username-and-username-from",
        put("registries", 0, "generic", "username_from", {"env": "HARBOR_USER"}),
        "registries[0].generic.username_from",
        "set either username or username_from, not both",
    ),
    (
        "neither-username-nor-username-from",
        drop("registries", 0, "generic", "username"),
        "registries[0].generic.username",
        "required key is missing (or set username_from)",
    ),
    (
        "username-with-colon",
        put("registries", 0, "generic", "username", "robot:ci"),
        "registries[0].generic.username",
        "cannot contain ':'",
    ),
    (
        "env-name-invalid",
        put("registries", 0, "generic", "password_from", "env", "1PASSWORD"),
        "registries[0].generic.password_from.env",
        "not an environment variable name",
    ),
    (
        "source-secret-key-invalid",
        put("registries", 1, "generic", "password_from", "secret", "key", "pass/word"),
        "registries[1].generic.password_from.secret.key",
        "not a Secret data key",
    ),
    (
        "source-secret-name-invalid",
        put("registries", 1, "generic", "password_from", "secret", "name", "Nexus Source"),
        "registries[1].generic.password_from.secret.name",
        "'Nexus Source' is not a valid Secret name",
    ),
    # --- verify
    (
        "probe-repository-upper-case",
        put("registries", 0, "verify", {"probe": {"repository": "Library/Pause"}}),
        "registries[0].verify.probe.repository",
        "'Library/Pause' is not a repository path",
    ),
    (
        "probe-repository-with-host-and-tag",
        put("registries", 0, "verify", {"probe": {"repository": "docker.io/library/pause:3"}}),
        "registries[0].verify.probe.repository",
        "without registry host, tag or digest",
    ),
    (
        "probe-reference-invalid",
        put(
            "registries",
            0,
            "verify",
            {"probe": {"repository": "library/pause", "reference": "sha256:abc"}},
        ),
        "registries[0].verify.probe.reference",
        "'sha256:abc' is not a tag or a sha256:<64 hex digits> digest",
    ),
    (
        "endpoint-plain-http",
        put("registries", 0, "verify", {"endpoint": "http://harbor.example.com"}),
        "registries[0].verify.endpoint",
        "write https://host[:port] without a path",
    ),
    (
        "endpoint-with-path",
        put("registries", 0, "verify", {"endpoint": "https://harbor.example.com/v2/"}),
        "registries[0].verify.endpoint",
        "without a path",
    ),
    (
        "timeout-zero",
        put("registries", 0, "verify", {"timeout_seconds": 0}),
        "registries[0].verify.timeout_seconds",
        "greater than 0",
    ),
    (
        "timeout-too-long",
        put("registries", 0, "verify", {"timeout_seconds": 121}),
        "registries[0].verify.timeout_seconds",
        "less than or equal to 120",
    ),
    (
        "max-response-bytes-too-small",
        put("registries", 0, "verify", {"max_response_bytes": 100}),
        "registries[0].verify.max_response_bytes",
        "greater than or equal to 1024",
    ),
    # --- secrets
    (
        "secret-name-invalid",
        put("secrets", 0, "name", "Pull_Secret"),
        "secrets[0].name",
        "'Pull_Secret' is not a valid Secret name (DNS subdomain)",
    ),
    (
        "secret-without-registries",
        put("secrets", 0, "registries", []),
        "secrets[0].registries",
        "must not be empty",
    ),
    (
        "secret-without-namespaces",
        drop("secrets", 0, "namespaces"),
        "secrets[0].namespaces",
        "required key is missing",
    ),
    (
        "adopt-not-boolean",
        put("secrets", 0, "adopt", "perhaps"),
        "secrets[0].adopt",
        "expected true or false, got a string",
    ),
]


@pytest.mark.parametrize(
    ("mutation", "path", "phrase"),
    [pytest.param(m, p, phrase, id=i) for i, m, p, phrase in BAD_CONFIGS],
)
def test_bad_config_names_the_key_path_and_the_fix(
    mutation: Mutation, path: str, phrase: str
) -> None:
    message = config_error(mutation)
    assert message.count("\n") == 0, message
    assert message.startswith(f"{path}: "), message
    assert phrase in message


def test_bad_config_kinds_are_many_and_distinct() -> None:
    ids = [case[0] for case in BAD_CONFIGS]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 25


def test_config_that_is_not_a_mapping_is_refused_at_the_top_level() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(["clusters"])
    assert info.value.message == (
        "(top level): the config must be a YAML mapping with clusters, registries and "
        "secrets; got a list"
    )
    assert info.value.exit_code is ExitCode.CONFIG


def test_empty_config_file_is_refused_as_an_empty_document(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.message.startswith("(top level): ")
    assert info.value.message.endswith("got an empty document")


def test_yaml_syntax_error_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("clusters:\n  - name: prod\n    context: [prod\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.message.startswith(f"{path}: not valid YAML at line 4, column 1: ")


def test_yaml_duplicate_key_is_refused_instead_of_silently_keeping_the_last(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("schedule:\n  tick: 30s\nschedule:\n  jitter: 5s\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.message == (
        f"{path}: not valid YAML at line 3, column 1: found duplicate key 'schedule'"
    )


def test_yaml_merge_keys_are_not_mistaken_for_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(
        "clusters:\n"
        "  - &base {name: prod, kubeconfig: /etc/kube/config, context: prod-ctx}\n"
        "  - <<: *base\n"
        "    name: stage\n"
        "    context: stage-ctx\n"
        "registries:\n"
        "  - {name: harbor, provider: generic, host: harbor.example.com,\n"
        "     generic: {username: robot, password_from: {env: HARBOR_PASSWORD}}}\n"
        "secrets:\n"
        "  - {name: pull, registries: [harbor], namespaces: {include: ['*']}}\n"
    )
    stage = load_settings(path).clusters[1]
    assert (stage.name, stage.kubeconfig, stage.context) == (
        "stage",
        Path("/etc/kube/config"),
        "stage-ctx",
    )


def test_unreadable_config_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.message == f"cannot read config file {path}: No such file or directory"


def test_non_utf8_config_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfeclusters")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.message == f"{path}: not a UTF-8 text file"


def test_several_problems_are_reported_together_one_per_line() -> None:
    message = config_error(both(put("schedule", {"tick": "0s"}), put("runtime", {"api_burst": 0})))
    assert message.splitlines() == [
        "schedule.tick: must be at least 1s",
        "runtime.api_burst: Input should be greater than or equal to 1",
    ]


def test_a_failing_item_is_not_also_reported_as_an_empty_list() -> None:
    message = config_error(put("clusters", 1, "name", "Stage"))
    assert message.splitlines() == [
        "clusters[1].name: 'Stage' is not a valid name: use at most 63 lower-case letters, "
        "digits and '-', starting and ending with a letter or digit"
    ]


@pytest.mark.parametrize(
    "mutation",
    [
        pytest.param(put("registries", 0, "generic", "password", CANARY), id="password-key"),
        pytest.param(
            put("registries", 0, "generic", "password_from", CANARY), id="password-from-string"
        ),
        pytest.param(
            put("registries", 0, "generic", "password_from", {"env": CANARY}),
            id="password-as-env-name",
        ),
        pytest.param(
            put("registries", 1, "generic", "password_from", "secret", "key", CANARY + "!"),
            id="password-as-secret-key",
        ),
        pytest.param(
            put("registries", 0, "generic", "username", {"password": CANARY}),
            id="password-in-wrong-type",
        ),
        pytest.param(put("runtime", {"api_qps": CANARY}), id="password-as-number"),
    ],
)
def test_config_errors_never_quote_a_pasted_password(mutation: Mutation) -> None:
    raw = copy.deepcopy(BASE)
    mutation(raw)
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    formatted = "".join(traceback.format_exception(info.value))
    assert CANARY not in formatted
    # Not chained: pydantic's own text would quote the input.
    assert info.value.__cause__ is None


# --- good configs


def test_example_config_loads() -> None:
    settings = load_settings(EXAMPLE)
    assert [c.name for c in settings.clusters] == ["prod-eu", "staging"]
    assert [r.name for r in settings.registries] == ["harbor", "nexus", "quay-mirror"]
    assert {r.provider for r in settings.registries} == {"generic"}
    harbor = settings.registry("harbor")
    assert harbor.generic is not None
    assert harbor.generic.password_from.file == Path("/var/run/secrets/harbor/password")
    assert harbor.verify.probe is not None
    assert harbor.verify.probe.repository == "library/pause"
    assert harbor.verify.endpoint == "https://harbor-internal.example.com"
    nexus = settings.registry("nexus")
    assert nexus.generic is not None
    assert nexus.generic.password_from.env == "NEXUS_PASSWORD"
    quay = settings.registry("quay-mirror")
    assert quay.generic is not None
    assert quay.generic.password_from.secret is not None
    assert quay.generic.password_from.secret.cluster == "prod-eu"
    assert [s.name for s in settings.secrets] == ["registry-pull", "mirror-pull"]
    assert settings.clusters_of(settings.secrets[1]) == ("prod-eu", "staging")
    assert settings.schedule.renew_fraction == ScheduleSpec().renew_fraction
    assert settings.schedule.renew_before == timedelta(hours=1, minutes=30)


def _fields(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    names: set[str] = set()
    if model in seen:
        return names
    seen.add(model)
    for name, field in model.model_fields.items():
        names.add(name)
        annotation: Any = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        for arg in list(candidates):
            candidates.extend(getattr(arg, "__args__", ()))
        for candidate in candidates:
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                names |= _fields(candidate, seen)
    return names


def test_example_config_mentions_every_key() -> None:
    text = EXAMPLE.read_text()
    keys = _fields(Settings, set())
    undocumented = sorted(k for k in keys if not re.search(rf"(?m)^\s*(?:- )?#?\s*{k}:", text))
    assert undocumented == []
    # ... and documents each one in a comment, not only by using it.
    uncommented = sorted(k for k in keys if not re.search(rf"(?m)^\s*#.*\b{k}\b", text))
    assert uncommented == []


def test_example_config_shows_the_in_cluster_variant_commented_out() -> None:
    text = EXAMPLE.read_text()
    assert re.search(r"(?m)^\s*#\s*in_cluster: true$", text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1h30m", timedelta(hours=1, minutes=30), id="hours-and-minutes"),
        pytest.param(90, timedelta(seconds=90), id="bare-int-seconds"),
        pytest.param(2.5, timedelta(seconds=2.5), id="bare-float-seconds"),
        pytest.param("90", timedelta(seconds=90), id="quoted-number-seconds"),
        pytest.param("500ms", timedelta(milliseconds=500), id="milliseconds"),
        pytest.param("1d", timedelta(days=1), id="days"),
        pytest.param("1.5h", timedelta(minutes=90), id="fractional-hours"),
        pytest.param(" 5m ", timedelta(minutes=5), id="surrounding-space"),
        pytest.param("0s", timedelta(0), id="zero"),
    ],
)
def test_parse_duration_accepts_the_documented_forms(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_durations_in_a_config() -> None:
    raw = copy.deepcopy(BASE)
    raw["schedule"] = {"renew_before": "1h30m", "tick": 90, "jitter": "500ms"}
    schedule = parse_settings(raw).schedule
    assert schedule.renew_before == timedelta(seconds=5400)
    assert schedule.tick == timedelta(seconds=90)
    assert schedule.jitter == timedelta(milliseconds=500)


def test_defaults() -> None:
    settings = parse_settings(copy.deepcopy(BASE))
    assert settings.schedule == ScheduleSpec(
        renew_fraction=2 / 3,
        renew_before=None,
        tick=timedelta(seconds=60),
        jitter=timedelta(seconds=10),
    )
    assert settings.runtime == RuntimeSpec(
        write_concurrency=8, api_qps=100.0, api_burst=200, conflict_retries=3
    )
    harbor = settings.registries[0]
    assert harbor.verify == VerifySpec(
        probe=None,
        ca_bundle=None,
        timeout_seconds=10.0,
        max_response_bytes=1024 * 1024,
        endpoint=None,
    )
    assert settings.clusters[0] == ClusterSpec(
        name="prod", kubeconfig=None, context="prod-ctx", in_cluster=False
    )
    spec = settings.secrets[0]
    assert spec.adopt is False
    assert spec.clusters is None
    assert spec.namespaces.exclude == ()
    assert spec.namespaces.selector is None
    assert settings.clusters_of(spec) == ("prod", "stage")


def test_probe_reference_defaults_to_latest() -> None:
    raw = copy.deepcopy(BASE)
    raw["registries"][0]["verify"] = {"probe": {"repository": "team/app"}}
    probe = parse_settings(raw).registries[0].verify.probe
    assert probe is not None
    assert (probe.repository, probe.reference) == ("team/app", "latest")


def test_in_cluster_without_kubeconfig_or_context_is_valid() -> None:
    raw = copy.deepcopy(BASE)
    raw["clusters"][1] = {"name": "stage", "in_cluster": True}
    assert parse_settings(raw).clusters[1].in_cluster is True


def test_same_secret_name_in_disjoint_clusters_is_allowed() -> None:
    raw = copy.deepcopy(BASE)
    raw["secrets"][0]["clusters"] = ["prod"]
    raw["secrets"].append(
        {
            "name": "pull",
            "clusters": ["stage"],
            "registries": ["harbor"],
            "namespaces": {"include": ["*"]},
        }
    )
    settings = parse_settings(raw)
    assert [settings.clusters_of(s) for s in settings.secrets] == [("prod",), ("stage",)]


@pytest.mark.parametrize(
    "host",
    ["harbor.example.com", "localhost:5000", "[::1]:5000", "registry-1.docker.io", "10.0.0.1:443"],
)
def test_valid_registry_hosts(host: str) -> None:
    raw = copy.deepcopy(BASE)
    raw["registries"][0]["host"] = host
    assert parse_settings(raw).registries[0].host == host


def test_whitespace_around_values_is_stripped() -> None:
    raw = copy.deepcopy(BASE)
    raw["registries"][0]["host"] = "  harbor.example.com  "
    assert parse_settings(raw).registries[0].host == "harbor.example.com"


@pytest.mark.parametrize(
    "selector",
    ["team=payments,env!=dev", "env in (prod, staging)", "tier notin (a),!legacy", "example.com/x"],
)
def test_valid_label_selectors(selector: str) -> None:
    raw = copy.deepcopy(BASE)
    raw["secrets"][0]["namespaces"]["selector"] = selector
    assert parse_settings(raw).secrets[0].namespaces.selector == selector


def test_settings_are_frozen() -> None:
    settings = parse_settings(copy.deepcopy(BASE))
    with pytest.raises(ValueError, match="frozen"):
        settings.registries[0].host = "evil.example.com"  # type: ignore[misc]
    assert isinstance(settings.registries[0], RegistrySpec)
