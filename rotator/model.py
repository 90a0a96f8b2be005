"""Value types of the rotation path. No I/O, no SDK, no HTTP: these are what flows between the
stages of ``observe → plan → mint → verify → write → verify``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

# The ownership label and the annotations the rotator keeps on every Secret it manages. The
# schedule is rebuilt from these alone, so a restarted rotator keeps no state of its own.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "rotator"
ANNOTATION_PREFIX = "rotator.dev/"
ANN_REGISTRIES = ANNOTATION_PREFIX + "registries"
ANN_EXPIRES_AT = ANNOTATION_PREFIX + "expires-at"
ANN_RENEW_AT = ANNOTATION_PREFIX + "renew-at"
ANN_ROTATED_AT = ANNOTATION_PREFIX + "rotated-at"
ANN_VERIFIED_AT = ANNOTATION_PREFIX + "verified-at"
ANN_FINGERPRINT = ANNOTATION_PREFIX + "fingerprint"
DOCKERCONFIGJSON_TYPE = "kubernetes.io/dockerconfigjson"
DOCKERCONFIGJSON_KEY = ".dockerconfigjson"
# Times in annotations: RFC 3339, UTC, whole seconds, so they sort and compare as text too.
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_TIME_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def format_time(moment: datetime) -> str:
    """A timezone-aware datetime as the annotations store it: RFC 3339, UTC, whole seconds."""
    if moment.tzinfo is None:
        raise ValueError("format_time needs a timezone-aware datetime")
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(value: object) -> datetime | None:
    """``YYYY-MM-DDTHH:MM:SSZ`` → aware UTC datetime; anything else → None."""
    if not isinstance(value, str) or not _TIME_SHAPE.fullmatch(value):
        return None
    try:
        return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:  # right shape, impossible date: 2024-02-30T25:00:00Z
        return None


@dataclass(frozen=True, kw_only=True)
class Credential:
    """A pull credential for one registry host. ``password`` never appears in ``repr``."""

    registry: str  # the config's name for the registry this credential belongs to
    host: str  # as written in .dockerconfigjson: "host[:port]"
    username: str
    password: str = field(repr=False)
    issued_at: datetime
    expires_at: datetime | None  # timezone-aware UTC; None for static credentials


@dataclass(frozen=True, kw_only=True, order=True)
class Target:
    """One Secret the config asks for: (cluster, namespace, secret name)."""

    cluster: str
    namespace: str
    secret: str

    def __str__(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.secret}"


@dataclass(frozen=True, kw_only=True)
class Observed:
    """What the cluster says about a target, read from the Secret's labels and annotations."""

    target: Target
    exists: bool
    owned: bool = False
    secret_type: str | None = None
    registries: tuple[str, ...] = ()
    expires_at: datetime | None = None
    renew_at: datetime | None = None
    rotated_at: datetime | None = None
    verified_at: datetime | None = None
    fingerprint: str | None = None
    resource_version: str | None = None

    @classmethod
    def missing(cls, target: Target) -> Observed:
        return cls(target=target, exists=False)


class Reason(StrEnum):
    """Why a target is (or is not) rotated; the first matching check of the policy chain wins."""

    MISSING = "missing"
    NOT_OWNED = "not-owned"
    ADOPTED = "adopted"
    WRONG_TYPE = "wrong-type"
    REGISTRIES_CHANGED = "registries-changed"
    SOURCE_CHANGED = "source-changed"
    EXPIRED = "expired"
    RENEW_DUE = "renew-due"
    FORCED = "forced"
    FRESH = "fresh"


@dataclass(frozen=True, kw_only=True)
class Decision:
    target: Target
    observed: Observed
    registries: tuple[str, ...]  # what the config wants in this Secret, in config order
    rotate: bool
    reason: Reason
    message: str  # for humans; never contains secret material

    @property
    def refused(self) -> bool:
        return self.reason is Reason.NOT_OWNED


@dataclass(frozen=True, kw_only=True)
class Plan:
    decisions: tuple[Decision, ...]

    @property
    def due(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.rotate)

    @property
    def registries_needed(self) -> frozenset[str]:
        """Registry names to mint this cycle: those of the Secrets that are due."""
        return frozenset(r for d in self.due for r in d.registries)


class Outcome(StrEnum):
    ROTATED = "rotated"
    FRESH = "fresh"
    DRY_RUN = "dry-run"
    FAILED_MINT = "failed-mint"
    FAILED_VERIFY = "failed-verify"
    FAILED_WRITE = "failed-write"
    REFUSED_UNOWNED = "refused-unowned"

    @property
    def failed(self) -> bool:
        return self not in (Outcome.ROTATED, Outcome.FRESH, Outcome.DRY_RUN)


@dataclass(frozen=True, kw_only=True)
class RotationResult:
    """The outcome for one target. ``error`` is a human message that never holds a token."""

    target: Target
    outcome: Outcome
    reason: Reason
    expires_at: datetime | None = None
    verified: bool = False
    error: str | None = None
    exit_code: int = 0


@dataclass(frozen=True, kw_only=True)
class DesiredSecret:
    """What to write. The ownership label is always added; ``rotator.dev/`` annotations not
    listed here are removed from an existing Secret."""

    data: Mapping[str, bytes] = field(repr=False)
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    secret_type: str = DOCKERCONFIGJSON_TYPE
