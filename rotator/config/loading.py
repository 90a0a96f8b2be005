"""Loading: YAML → Settings, with every error reported at its key path in plain words."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from rotator.config.schema import Settings, ValueSource
from rotator.config.values import KeyProblem
from rotator.errors import ConfigError


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings model inside a field's annotation (``X``, ``X | None``, ``tuple[X, ...]``)."""
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for arg in list(candidates):
        candidates.extend(getattr(arg, "__args__", ()))
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _clean_loc(loc: Sequence[int | str]) -> tuple[list[int | str], type[BaseModel] | None]:
    """The key path of an error without pydantic's internal union tags, and the model that
    holds its last key (for a did-you-mean hint). A part that is no field of the model at that
    point is a tag, unless it is the last part: an unknown key the user wrote."""
    current: type[BaseModel] | None = Settings
    holder: type[BaseModel] | None = None
    out: list[int | str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int) or current is None:
            out.append(part)
            continue
        field = current.model_fields.get(part)
        if field is not None or index == len(loc) - 1:
            out.append(part)
            holder = current
            current = _model_of(field.annotation) if field is not None else None
    return out, holder


# Messages that replace pydantic's wording, which speaks of tuples and model classes.
_MESSAGES = {
    "missing": "required key is missing",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty; remove the key to use the default",
}
_EXPECTED = {
    "tuple_type": "a list",
    "list_type": "a list",
    "model_type": "a mapping of keys",
    "dict_type": "a mapping of keys",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "path_type": "a file path",
}
_SHAPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "nothing (null)"),
    (bool, "true/false"),
    ((int, float), "a number"),
    (str, "a string"),
    (Mapping, "a mapping"),
    ((list, tuple), "a list"),
)


def _shape(value: object) -> str:
    """What kind of value the user wrote, never the value itself (it may be a secret)."""
    return next((text for kind, text in _SHAPES if isinstance(value, kind)), "something else")


def _explain(error: Mapping[str, Any]) -> str:
    loc, holder = _clean_loc(error["loc"])
    path = _path(loc) or "(top level)"
    kind = error["type"]
    problem = (error.get("ctx") or {}).get("error")
    if isinstance(problem, KeyProblem):
        return f"{_path([*loc, problem.key])}: {problem}"
    if kind == "extra_forbidden":
        known = list(holder.model_fields) if holder is not None else []
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        if hint:
            return f"{path}: unknown key; did you mean {hint[0]!r}?"
        return f"{path}: unknown key; allowed here: {', '.join(known)}"
    if kind in _EXPECTED:
        message = f"expected {_EXPECTED[kind]}, got {_shape(error.get('input'))}"
    else:
        message = _MESSAGES.get(kind) or str(error["msg"]).removeprefix("Value error, ")
    return f"{path}: {message}"


def _duplicate_names(settings: Settings) -> list[str]:
    """Clusters and registries are referred to by name, so their names must be unique. Secret
    names may repeat across entries for different clusters (see _overlapping_secrets)."""
    problems: list[str] = []
    for section in ("clusters", "registries"):
        seen: dict[str, int] = {}
        for index, item in enumerate(getattr(settings, section)):
            if item.name in seen:
                problems.append(
                    f"{section}[{index}].name: {item.name!r} is already used by "
                    f"{section}[{seen[item.name]}]; names must be unique"
                )
            seen.setdefault(item.name, index)
    return problems


def _source_clusters(settings: Settings, clusters: set[str]) -> list[str]:
    problems: list[str] = []
    for index, reg in enumerate(settings.registries):
        if reg.generic is None:
            continue
        for key in ("username_from", "password_from"):
            source: ValueSource | None = getattr(reg.generic, key)
            if source is not None and source.secret and source.secret.cluster not in clusters:
                problems.append(
                    f"registries[{index}].generic.{key}.secret.cluster: unknown cluster "
                    f"{source.secret.cluster!r}; add it under clusters "
                    f"(known: {', '.join(sorted(clusters))})"
                )
    return problems


def _secret_references(settings: Settings, clusters: set[str]) -> list[str]:
    problems: list[str] = []
    registries = {r.name: r for r in settings.registries}
    for index, spec in enumerate(settings.secrets):
        hosts: dict[str, str] = {}
        listed: dict[str, int] = {}
        for r_index, name in enumerate(spec.registries):
            where = f"secrets[{index}].registries[{r_index}]"
            if name in listed:
                problems.append(
                    f"{where}: {name!r} is already listed at registries[{listed[name]}]"
                )
                continue
            listed[name] = r_index
            if name not in registries:
                known = ", ".join(sorted(registries))
                problems.append(f"{where}: unknown registry {name!r}; known: {known}")
                continue
            host = registries[name].host
            if host in hosts:
                problems.append(
                    f"{where}: {name!r} and {hosts[host]!r} both write host {host!r}; "
                    "a Secret holds one credential per host"
                )
            hosts[host] = name
        seen: dict[str, int] = {}
        for c_index, cluster in enumerate(spec.clusters or ()):
            where = f"secrets[{index}].clusters[{c_index}]"
            if cluster in seen:
                problems.append(
                    f"{where}: {cluster!r} is already listed at clusters[{seen[cluster]}]"
                )
            elif cluster not in clusters:
                problems.append(
                    f"{where}: unknown cluster {cluster!r}; known: {', '.join(sorted(clusters))}"
                )
            seen.setdefault(cluster, c_index)
    return problems


def _overlapping_secrets(settings: Settings) -> list[str]:
    """Two entries may not manage the same Secret name in one cluster: they would overwrite
    each other on every cycle."""
    problems: list[str] = []
    first_entry: dict[tuple[str, str], int] = {}
    for index, spec in enumerate(settings.secrets):
        clashes: dict[int, list[str]] = {}
        for cluster in dict.fromkeys(settings.clusters_of(spec)):
            other = first_entry.setdefault((cluster, spec.name), index)
            if other != index:
                clashes.setdefault(other, []).append(repr(cluster))
        for other, where in clashes.items():
            noun = "cluster" if len(where) == 1 else "clusters"
            problems.append(
                f"secrets[{index}].name: secrets[{other}] already manages {spec.name!r} in "
                f"{noun} {', '.join(where)}; merge their registries into one entry"
            )
    return problems


def _check_references(settings: Settings) -> list[str]:
    """What pydantic cannot see: names must be unique and references must resolve."""
    clusters = {c.name for c in settings.clusters}
    return [
        *_duplicate_names(settings),
        *_source_clusters(settings, clusters),
        *_secret_references(settings, clusters),
        *_overlapping_secrets(settings),
    ]


def _drop_echoes(errors: list[Any]) -> list[Any]:
    """A failed item also fails its list's length check; report only the item."""
    locs = [tuple(e["loc"]) for e in errors]

    def echoed(error: Any) -> bool:
        loc = tuple(error["loc"])
        return error["type"] == "too_short" and any(
            other[: len(loc)] == loc and other != loc for other in locs
        )

    return [e for e in errors if not echoed(e)]


def parse_settings(raw: object) -> Settings:
    if not isinstance(raw, Mapping):
        got = "an empty document" if raw is None else _shape(raw)
        raise ConfigError(
            "(top level): the config must be a YAML mapping with clusters, registries and "
            f"secrets; got {got}"
        )
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        # Not chained: pydantic's own text quotes input values, which may be secrets.
        errors = _drop_echoes(exc.errors())
        raise ConfigError("\n".join(_explain(e) for e in errors)) from None
    problems = _check_references(settings)
    if problems:
        raise ConfigError("\n".join(problems))
    return settings


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a repeated ``schedule:`` would silently drop
    the first block, so a repeated key is an error here."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key; the constructor reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_settings(path: Path) -> Settings:
    """Read and validate a config file. Raises ConfigError; never contacts anything."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        detail = f": {problem}" if problem else ""
        # Not chained: the YAML error's text quotes the lines around the problem.
        raise ConfigError(f"{path}: not valid YAML{where}{detail}") from None
    return parse_settings(raw)
