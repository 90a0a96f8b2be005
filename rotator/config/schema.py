"""The settings models: frozen, keyword-only, unknown keys refused. Field comments give the
unit and the reason for each default."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rotator.config.values import (
    DATA_KEY,
    DNS_SUBDOMAIN,
    ENDPOINT,
    ENV_NAME,
    GLOB,
    HOST,
    REFERENCE,
    REPOSITORY,
    SELECTOR_TERM,
    DnsLabel,
    Duration,
    KeyProblem,
    split_selector,
)


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
            raise KeyProblem(
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
        if len(value) > 253 or not DNS_SUBDOMAIN.match(value):
            raise ValueError(f"{value!r} is not a valid Secret name (DNS subdomain)")
        return value

    @field_validator("key")
    @classmethod
    def _data_key(cls, value: str) -> str:
        if not DATA_KEY.match(value):
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
        if value is not None and not ENV_NAME.match(value):
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
            raise KeyProblem("username_from", "set either username or username_from, not both")
        if self.username is None and self.username_from is None:
            raise KeyProblem("username", "required key is missing (or set username_from)")
        return self


class ProbeSpec(_Spec):
    """An image the credential must be able to pull: proves pull rights, not only a token."""

    repository: str  # path inside the registry, e.g. library/pause
    reference: str = "latest"  # a tag or sha256:<digest>

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not REPOSITORY.match(value):
            raise ValueError(
                f"{value!r} is not a repository path: lower-case components separated by '/', "
                "without registry host, tag or digest (e.g. library/pause)"
            )
        return value

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: str) -> str:
        if not REFERENCE.match(value):
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
        if value is not None and not ENDPOINT.match(value):
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
        match = HOST.match(value)
        if not match or (match.group(1) and not 0 < int(match.group(1)) < 65536):
            raise ValueError(f"{value!r} is not a valid registry host[:port]")
        return value

    @model_validator(mode="after")
    def _options_match_provider(self) -> RegistrySpec:
        if self.provider == "generic" and self.generic is None:
            raise KeyProblem(
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
            if not GLOB.match(value):
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
            if not terms or not all(SELECTOR_TERM.match(t) for t in terms):
                raise ValueError(
                    f"{value!r} is not a Kubernetes label selector (e.g. team=payments,env!=dev)"
                )
        return value


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
        if len(value) > 253 or not DNS_SUBDOMAIN.match(value):
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
