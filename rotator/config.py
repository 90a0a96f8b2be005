"""YAML → frozen, validated settings. Every error names the key path (``secrets[0].registries[1]``)
and says how to fix it; loading contacts nothing."""

from __future__ import annotations

import difflib
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
_GLOB = re.compile(r"^[a-z0-9*?\[\]!-]+$")
# host[:port] as written in .dockerconfigjson; no scheme, no path.
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?$"
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# The label selector grammar of Kubernetes (equality- and set-based), checked before use so a
# typo is a config error rather than a 400 from every API server.
_LABEL_KEY = r"(?:[a-z0-9A-Z.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_LABEL_VALUE = r"(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SELECTOR_TERM = re.compile(
    rf"^\s*(?:!?{_LABEL_KEY}|{_LABEL_KEY}\s*(?:=|==|!=)\s*{_LABEL_VALUE}"
    rf"|{_LABEL_KEY}\s+(?:in|notin)\s+\(\s*{_LABEL_VALUE}(?:\s*,\s*{_LABEL_VALUE})*\s*\))\s*$"
)


def parse_duration(value: object) -> timedelta:
    """``90``, ``"90s"``, ``"5m"``, ``"1h30m"`` → timedelta. Bare numbers are seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 5m or 1h30m")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text):
            raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 5m or 1h30m")
    else:
        raise ValueError("expected a duration such as 90s, 5m or 1h30m")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return timedelta(seconds=seconds)


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
    context: str | None = None  # default: the kubeconfig's current context
    in_cluster: bool = False

    @model_validator(mode="after")
    def _one_way_in(self) -> ClusterSpec:
        if self.in_cluster and (self.kubeconfig or self.context):
            raise ValueError("set either in_cluster: true or kubeconfig/context, not both")
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
            raise ValueError(f"{value!r} is not a valid Secret name")
        return value


class ValueSource(_Spec):
    """Where a value is read from at mint time: exactly one of a file, an environment variable,
    or a key of a Secret in one of the configured clusters."""

    file: Path | None = None
    env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    secret: SecretRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ValueSource:
        if sum(v is not None for v in (self.file, self.env, self.secret)) != 1:
            raise ValueError("set exactly one of file, env or secret")
        return self


class GenericOptions(_Spec):
    """A static username/password from a file, an environment variable or a source Secret."""

    username: str | None = None  # a literal; usernames are not secret
    username_from: ValueSource | None = None
    password_from: ValueSource

    @model_validator(mode="after")
    def _one_username(self) -> GenericOptions:
        if (self.username is None) == (self.username_from is None):
            raise ValueError("set exactly one of username or username_from")
        return self


class ProbeSpec(_Spec):
    """An image the credential must be able to pull: proves pull rights, not only a token."""

    repository: Annotated[
        str, Field(pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
    ]
    reference: Annotated[
        str, Field(pattern=r"^(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|sha256:[a-f0-9]{64})$")
    ] = "latest"


class VerifySpec(_Spec):
    probe: ProbeSpec | None = None
    ca_bundle: Path | None = None  # PEM; default: the system trust store
    # Seconds per HTTP request. A registry that needs longer is failing for kubelet as well.
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    # Registry answers are a few hundred bytes; a larger body is refused rather than buffered.
    max_response_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 1024 * 1024
    # Where to run the handshake when it is not https://<host> (a mirror or a test registry).
    endpoint: Annotated[str, Field(pattern=r"^https://[^/\s]+/?$")] | None = None


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
            raise ValueError("provider generic needs a generic: block (username, password_from)")
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
                raise ValueError(
                    f"{value!r} is not a namespace glob (lower-case letters, digits, '-', * ? [])"
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
    clusters: tuple[str, ...] | None = None  # default: every configured cluster
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

    @model_validator(mode="after")
    def _sane(self) -> ScheduleSpec:
        if self.renew_before is not None and self.renew_before <= timedelta(0):
            raise ValueError("renew_before must be positive")
        if self.tick < timedelta(seconds=1):
            raise ValueError("tick must be at least 1s")
        return self


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


def _known_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys allowed where an unknown key was found, for a did-you-mean hint."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(part)
        if field is None:
            current = None
            break
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        for arg in list(candidates):
            candidates.extend(getattr(arg, "__args__", ()))
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return list(current.model_fields) if current is not None else []


def _explain(error: Mapping[str, Any]) -> str:
    loc = [p for p in error["loc"] if not (isinstance(p, str) and p[:1].isupper())]
    path = _path(loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        hint = difflib.get_close_matches(str(loc[-1]), _known_keys(Settings, loc), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"{path}: unknown key{suggestion}"
    if kind == "missing":
        return f"{path}: required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{path}: {message}"


def _duplicate_names(settings: Settings) -> list[str]:
    problems: list[str] = []
    for section in ("clusters", "registries", "secrets"):
        seen: set[str] = set()
        for index, item in enumerate(getattr(settings, section)):
            if item.name in seen:
                problems.append(
                    f"{section}[{index}].name: {item.name!r} is used twice; names must be unique"
                )
            seen.add(item.name)
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
                    f"{source.secret.cluster!r}; add it under clusters"
                )
    return problems


def _secret_references(settings: Settings, clusters: set[str]) -> list[str]:
    problems: list[str] = []
    registries = {r.name: r for r in settings.registries}
    for index, spec in enumerate(settings.secrets):
        hosts: dict[str, str] = {}
        for r_index, name in enumerate(spec.registries):
            where = f"secrets[{index}].registries[{r_index}]"
            if name not in registries:
                known = ", ".join(sorted(registries))
                problems.append(f"{where}: unknown registry {name!r}; known: {known}")
                continue
            host = registries[name].host
            if host in hosts:
                problems.append(f"{where}: {name!r} and {hosts[host]!r} both write host {host!r}")
            hosts[host] = name
        for c_index, cluster in enumerate(spec.clusters or ()):
            if cluster not in clusters:
                problems.append(
                    f"secrets[{index}].clusters[{c_index}]: unknown cluster {cluster!r}; "
                    f"known: {', '.join(sorted(clusters))}"
                )
    return problems


def _overlapping_secrets(settings: Settings) -> list[str]:
    problems: list[str] = []
    first_entry: dict[tuple[str, str], int] = {}
    for index, spec in enumerate(settings.secrets):
        for cluster in settings.clusters_of(spec):
            other = first_entry.setdefault((cluster, spec.name), index)
            if other != index:
                problems.append(
                    f"secrets[{index}].name: secrets[{other}] already manages {spec.name!r} in "
                    f"cluster {cluster!r}; merge their registries into one entry"
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
        raise ConfigError("the config must be a YAML mapping with clusters, registries and secrets")
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


def load_settings(path: Path) -> Settings:
    """Read and validate a config file. Raises ConfigError; never contacts anything."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from exc
    return parse_settings(raw)
