"""YAML → frozen, validated settings. Every error names the key path (``secrets[0].registries[1]``)
and says how to fix it; loading contacts nothing."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rotator.errors import ConfigError

# Kubernetes object names: DNS-1123 labels for namespaces and clusters, subdomains for Secrets.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# fnmatch globs over namespace names: name characters, * and ?, and [...] / [!...] classes.
_GLOB = re.compile(r"^(?:[a-z0-9*?-]|\[!?[a-z0-9-]+\])+$")
# host[:port] as written in .dockerconfigjson; no scheme, no path.
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?$"
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# The label selector grammar of Kubernetes (equality- and set-based), checked before use so a
# typo is a config error rather than a 400 from every API server.
_LABEL_KEY = r"(?:[a-z0-9A-Z.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_LABEL_VALUE = r"(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SELECTOR_TERM = re.compile(
    rf"^\s*(?:!?{_LABEL_KEY}|{_LABEL_KEY}\s*(?:=|==|!=)\s*{_LABEL_VALUE}"
    # The lookahead refuses an empty set, "in ()", which Kubernetes rejects as well.
    rf"|{_LABEL_KEY}\s+(?:in|notin)\s+\((?!\s*\))\s*{_LABEL_VALUE}(?:\s*,\s*{_LABEL_VALUE})*\s*\))"
    r"\s*$"
)
# A key of a Secret's data, as the API server accepts it.
_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# OCI distribution spec: repository name components and a tag or digest reference.
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_REFERENCE = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|sha256:[a-f0-9]{64})$")
_ENDPOINT = re.compile(r"^https://[^/\s]+/?$")
_DURATION_HINT = "write e.g. 90s, 5m or 1h30m"


class _KeyProblem(ValueError):
    """A model-level check that is about one key: reported at ``<model path>.<key>`` rather
    than at the model, so the message points at the line to change."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def parse_duration(value: object) -> timedelta:
    """``90``, ``"90"``, ``"90s"``, ``"500ms"``, ``"1h30m"`` → timedelta. Bare numbers are
    seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got true/false; {_DURATION_HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        seconds = _duration_text(value.strip())
    else:
        raise ValueError(f"expected a duration; {_DURATION_HINT}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be finite; {_DURATION_HINT}")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{value!r} is too long for a duration") from None


def _duration_text(text: str) -> float:
    if text.startswith("-"):
        raise ValueError("a duration cannot be negative")
    if _NUMBER.match(text):
        return float(text)
    pos, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"{text!r} is not a duration; {_DURATION_HINT} (units: ms, s, m, h, d)")
    return seconds


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use at most 63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


DnsLabel = Annotated[str, BeforeValidator(lambda v: _dns_label(v) if isinstance(v, str) else v)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class ClusterSpec(_Spec):
    """A cluster to write to: a kubeconfig context, or the cluster the rotator runs in."""

    name: DnsLabel
    kubeconfig: Path | None = None  # default: $KUBECONFIG or ~/.kube/config
    # default: the kubeconfig's current context
    context: Annotated[str, Field(min_length=1)] | None = None
    in_cluster: bool = False

    @model_validator(mode="after")
    def _one_way_in(self) -> ClusterSpec:
        if self.in_cluster and (self.kubeconfig is not None or self.context is not None):
            raise _KeyProblem(
                "in_cluster",
                "in_cluster: true cannot be combined with kubeconfig or context; "
                "remove those or set in_cluster: false",
            )
        return self


class SecretRef(_Spec):
    cluster: DnsLabel
    namespace: DnsLabel
    name: str
    key: str

    @field_validator("name")
    @classmethod
    def _secret_name(cls, value: str) -> str:
        if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
            raise ValueError(f"{value!r} is not a valid Secret name (DNS subdomain)")
        return value

    @field_validator("key")
    @classmethod
    def _data_key(cls, value: str) -> str:
        if not _DATA_KEY.match(value):
            # The value is not quoted: a pasted password would otherwise end up in the logs.
            raise ValueError("not a Secret data key: use 1 to 253 letters, digits, '-', '_' or '.'")
        return value


class ValueSource(_Spec):
    """Where a value is read from at mint time: exactly one of a file, an environment variable,
    or a key of a Secret in one of the configured clusters."""

    file: Path | None = None
    env: str | None = None
    secret: SecretRef | None = None

    @field_validator("env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            # Not quoted: someone may have pasted the password itself here.
            raise ValueError(
                "not an environment variable name: letters, digits and '_', "
                "not starting with a digit"
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> ValueSource:
        given = [k for k in ("file", "env", "secret") if getattr(self, k) is not None]
        if len(given) != 1:
            found = " and ".join(given) if given else "none"
            raise ValueError(f"set exactly one of file, env or secret (found {found})")
        return self


class GenericOptions(_Spec):
    """A static username/password from a file, an environment variable or a source Secret."""

    username: str | None = None  # a literal; usernames are not secret
    username_from: ValueSource | None = None
    password_from: ValueSource

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is not None and (not value or ":" in value):
            # Basic auth and the .dockerconfigjson "auth" field split user:password on the
            # first colon (RFC 7617), so such a username cannot be represented.
            raise ValueError("must be non-empty and cannot contain ':'")
        return value

    @model_validator(mode="after")
    def _one_username(self) -> GenericOptions:
        if self.username is not None and self.username_from is not None:
            raise _KeyProblem("username_from", "set either username or username_from, not both")
        if self.username is None and self.username_from is None:
            raise _KeyProblem("username", "required key is missing (or set username_from)")
        return self


class ProbeSpec(_Spec):
    """An image the credential must be able to pull: proves pull rights, not only a token."""

    repository: str  # path inside the registry, e.g. library/pause
    reference: str = "latest"  # a tag or sha256:<digest>

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not _REPOSITORY.match(value):
            raise ValueError(
                f"{value!r} is not a repository path: lower-case components separated by '/', "
                "without registry host, tag or digest (e.g. library/pause)"
            )
        return value

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: str) -> str:
        if not _REFERENCE.match(value):
            raise ValueError(f"{value!r} is not a tag or a sha256:<64 hex digits> digest")
        return value


class VerifySpec(_Spec):
    probe: ProbeSpec | None = None
    ca_bundle: Path | None = None  # PEM; default: the system trust store
    # Seconds per HTTP request. A registry that needs longer is failing for kubelet as well.
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    # Registry answers are a few hundred bytes; a larger body is refused rather than buffered.
    max_response_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 1024 * 1024
    # Where to run the handshake when it is not https://<host> (a mirror or a test registry).
    endpoint: str | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not _ENDPOINT.match(value):
            raise ValueError(
                f"{value!r}: write https://host[:port] without a path; "
                "the handshake always uses TLS"
            )
        return value


class RegistrySpec(_Spec):
    name: DnsLabel
    provider: Literal["generic"]
    host: str
    generic: GenericOptions | None = None
    verify: VerifySpec = VerifySpec()

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if "://" in value or "/" in value:
            raise ValueError(
                f"{value!r}: write the host as in .dockerconfigjson, host[:port], "
                "without scheme or path"
            )
        match = _HOST.match(value)
        if not match or (match.group(1) and not 0 < int(match.group(1)) < 65536):
            raise ValueError(f"{value!r} is not a valid registry host[:port]")
        return value

    @model_validator(mode="after")
    def _options_match_provider(self) -> RegistrySpec:
        if self.provider == "generic" and self.generic is None:
            raise _KeyProblem(
                "generic",
                "required when provider is generic (username or username_from, and password_from)",
            )
        return self


class NamespaceSelector(_Spec):
    include: Annotated[tuple[str, ...], Field(min_length=1)]
    exclude: tuple[str, ...] = ()
    selector: str | None = None  # a Kubernetes label selector on the namespaces

    @field_validator("include", "exclude")
    @classmethod
    def _globs(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if not _GLOB.match(value):
                hint = (
                    "; to leave namespaces out, list them under exclude"
                    if value.startswith("!")
                    else ""
                )
                raise ValueError(
                    f"{value!r} is not a namespace glob (lower-case letters, digits, '-', "
                    f"* ? and [...] classes){hint}"
                )
        return values

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        if value is not None:
            terms = split_selector(value)
            if not terms or not all(_SELECTOR_TERM.match(t) for t in terms):
                raise ValueError(
                    f"{value!r} is not a Kubernetes label selector (e.g. team=payments,env!=dev)"
                )
        return value


def split_selector(selector: str) -> list[str]:
    """Split on the commas that separate terms, not those inside ``in (a, b)``."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()] if depth == 0 else []


class SecretSpec(_Spec):
    name: str
    registries: Annotated[tuple[str, ...], Field(min_length=1)]
    # default: every configured cluster. An empty list is refused: it would write nothing.
    clusters: Annotated[tuple[str, ...], Field(min_length=1)] | None = None
    namespaces: NamespaceSelector
    adopt: bool = False  # take over a same-name Secret that the rotator does not own

    @field_validator("name")
    @classmethod
    def _secret_name(cls, value: str) -> str:
        if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
            raise ValueError(f"{value!r} is not a valid Secret name (DNS subdomain)")
        return value


class ScheduleSpec(_Spec):
    # Renew when this fraction of the credential's real lifetime has passed (cert-manager's
    # default of 2/3), unless renew_before is set.
    renew_fraction: Annotated[float, Field(gt=0, lt=1)] = 2 / 3
    renew_before: Duration | None = None
    # How often the daemon looks for due Secrets. Tokens live for hours; a minute is plenty.
    tick: Duration = timedelta(seconds=60)
    # Random delay added per tick so replicas and clusters do not hit a registry in lockstep.
    jitter: Duration = timedelta(seconds=10)

    @field_validator("renew_before")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be positive; remove the key to use renew_fraction alone")
        return value

    @field_validator("tick")
    @classmethod
    def _tick(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("must be at least 1s")
        return value


class RuntimeSpec(_Spec):
    # Concurrent Secret writes per cluster; the API server's own flow control does the rest.
    write_concurrency: Annotated[int, Field(ge=1, le=64)] = 8
    # Client-side request rate per cluster (requests/s and burst), like client-go's QPS/Burst.
    api_qps: Annotated[float, Field(gt=0, le=10_000)] = 100.0
    api_burst: Annotated[int, Field(ge=1, le=10_000)] = 200
    # Re-read and retry a Secret this many times when its resourceVersion moved under us (409).
    conflict_retries: Annotated[int, Field(ge=0, le=10)] = 3


class Settings(_Spec):
    clusters: Annotated[tuple[ClusterSpec, ...], Field(min_length=1)]
    registries: Annotated[tuple[RegistrySpec, ...], Field(min_length=1)]
    secrets: Annotated[tuple[SecretSpec, ...], Field(min_length=1)]
    schedule: ScheduleSpec = ScheduleSpec()
    runtime: RuntimeSpec = RuntimeSpec()

    def registry(self, name: str) -> RegistrySpec:
        return next(r for r in self.registries if r.name == name)

    def clusters_of(self, spec: SecretSpec) -> tuple[str, ...]:
        return spec.clusters if spec.clusters is not None else tuple(c.name for c in self.clusters)


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
    if isinstance(problem, _KeyProblem):
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
