"""When a Secret is rotated: the renew-at math and the ordered chain of checks. Pure: ``now``
is passed in and nothing here reads a clock, a file or the network."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from rotator.dockerconfig import Fingerprint
from rotator.model import (
    DOCKERCONFIGJSON_TYPE,
    Credential,
    Decision,
    Observed,
    Reason,
    Target,
    format_time,
)


def renew_at(
    *,
    issued_at: datetime,
    expires_at: datetime,
    renew_fraction: float,
    renew_before: timedelta | None = None,
) -> datetime:
    """cert-manager's rule: renew ``renew_before`` ahead of expiry, or once ``renew_fraction``
    of the real lifetime has passed when renew_before is unset or not shorter than the
    lifetime. Truncated to whole seconds, as stored in the annotation."""
    lifetime = max(expires_at - issued_at, timedelta(0))
    if renew_before is not None and renew_before < lifetime:
        moment = expires_at - renew_before
    else:
        moment = issued_at + lifetime * renew_fraction
    # A clock-skewed credential can expire before it was issued; never schedule past expiry.
    return min(moment, expires_at).replace(microsecond=0)


@dataclass(frozen=True, kw_only=True)
class CheckInput:
    target: Target
    observed: Observed
    registries: tuple[str, ...]
    adopt: bool
    force: bool
    now: datetime
    # Credentials of static registries (read before planning, as it costs nothing); a cloud
    # registry is minted only once something is due, so its source cannot be compared.
    static: Mapping[str, Credential]
    # Registries whose credentials never expire, read or not: they need no renew-at.
    static_registries: frozenset[str] = frozenset()


Check = Callable[[CheckInput], tuple[Reason, bool, str] | None]


def _missing(c: CheckInput) -> tuple[Reason, bool, str] | None:
    return (Reason.MISSING, True, "Secret does not exist") if not c.observed.exists else None


def _wrong_type(c: CheckInput) -> tuple[Reason, bool, str] | None:
    kind = c.observed.secret_type
    if (c.observed.owned or c.adopt) and kind not in (None, DOCKERCONFIGJSON_TYPE):
        # A Secret's type is immutable and the rotator never deletes: a human must decide.
        return (
            Reason.WRONG_TYPE,
            False,
            f"Secret has type {kind}, not {DOCKERCONFIGJSON_TYPE}; delete it to let the "
            "rotator recreate it",
        )
    return None


def _not_owned(c: CheckInput) -> tuple[Reason, bool, str] | None:
    if c.observed.owned:
        return None
    if c.adopt:
        return Reason.ADOPTED, True, "adopting a Secret the rotator did not create (adopt: true)"
    return (
        Reason.NOT_OWNED,
        False,
        "a Secret of this name exists without the rotator's label; left untouched "
        "(set adopt: true on the secrets entry to take it over)",
    )


def _registries_changed(c: CheckInput) -> tuple[Reason, bool, str] | None:
    if set(c.observed.registries) != set(c.registries):
        was = ",".join(c.observed.registries) or "none"
        return Reason.REGISTRIES_CHANGED, True, f"registries changed (was {was})"
    return None


def _source_changed(c: CheckInput) -> tuple[Reason, bool, str] | None:
    static = [c.static[r] for r in c.registries if r in c.static]
    if not static:
        return None
    stored = Fingerprint.parse(c.observed.fingerprint)
    changed = [cred.registry for cred in static if stored is None or not stored.matches(cred)]
    if changed:
        return Reason.SOURCE_CHANGED, True, f"source credential changed for {', '.join(changed)}"
    return None


def _expired(c: CheckInput) -> tuple[Reason, bool, str] | None:
    expires = c.observed.expires_at
    if expires is not None and c.now >= expires:
        return Reason.EXPIRED, True, f"expired at {format_time(expires)}"
    return None


def _renew_due(c: CheckInput) -> tuple[Reason, bool, str] | None:
    minted = [r for r in c.registries if r not in c.static and r not in c.static_registries]
    if minted and c.observed.renew_at is None:
        return Reason.RENEW_DUE, True, "no renew-at annotation; renewing to restore it"
    if c.observed.renew_at is not None and c.now >= c.observed.renew_at:
        return Reason.RENEW_DUE, True, f"renew-at {format_time(c.observed.renew_at)} has passed"
    return None


def _forced(c: CheckInput) -> tuple[Reason, bool, str] | None:
    return (Reason.FORCED, True, "rotation forced") if c.force else None


# Order matters: safety refusals come before anything that would write, and the most
# specific reason wins so the message tells the operator what really happened.
CHECKS: tuple[Check, ...] = (
    _missing,
    _wrong_type,
    _not_owned,
    _registries_changed,
    _source_changed,
    _expired,
    _renew_due,
    _forced,
)


def decide(c: CheckInput) -> Decision:
    for check in CHECKS:
        verdict = check(c)
        if verdict is not None:
            reason, rotate, message = verdict
            break
    else:
        until = c.observed.renew_at
        reason, rotate = Reason.FRESH, False
        message = f"fresh until {format_time(until)}" if until else "fresh (static credential)"
    return Decision(
        target=c.target,
        observed=c.observed,
        registries=c.registries,
        rotate=rotate,
        reason=reason,
        message=message,
    )
