"""What a Secret should hold after rotation: the rendered ``.dockerconfigjson``, the ownership
label and the annotations the next run plans from. Pure: time and salt are passed in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rotator import dockerconfig
from rotator.config import ScheduleSpec
from rotator.model import (
    ANN_EXPIRES_AT,
    ANN_FINGERPRINT,
    ANN_REGISTRIES,
    ANN_RENEW_AT,
    ANN_ROTATED_AT,
    ANN_VERIFIED_AT,
    DOCKERCONFIGJSON_KEY,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    Credential,
    DesiredSecret,
    format_time,
)
from rotator.policy import renew_at


@dataclass(frozen=True)
class Prepared:
    desired: DesiredSecret
    expires_at: datetime | None  # the earliest expiry among the Secret's credentials


def prepare(
    registries: tuple[str, ...],
    credentials: Sequence[Credential],
    *,
    now: datetime,
    salt: bytes,
    schedule: ScheduleSpec,
) -> Prepared:
    """``verified-at`` is ``now``: the credentials were handshaken before this is written."""
    annotations = {
        ANN_REGISTRIES: ",".join(registries),
        ANN_ROTATED_AT: format_time(now),
        ANN_VERIFIED_AT: format_time(now),
        ANN_FINGERPRINT: dockerconfig.fingerprint(credentials, salt),
    }
    expiries: list[datetime] = []
    renewals: list[datetime] = []
    for cred in credentials:
        if cred.expires_at is None:
            continue
        expiries.append(cred.expires_at)
        renewals.append(
            renew_at(
                issued_at=cred.issued_at,
                expires_at=cred.expires_at,
                renew_fraction=schedule.renew_fraction,
                renew_before=schedule.renew_before,
            )
        )
    expires_at = min(expiries, default=None)
    if expires_at is not None:
        # The Secret is as good as its first credential to expire.
        annotations[ANN_EXPIRES_AT] = format_time(expires_at)
        annotations[ANN_RENEW_AT] = format_time(min(renewals))
    desired = DesiredSecret(
        data={DOCKERCONFIGJSON_KEY: dockerconfig.render(credentials)},
        annotations=annotations,
        labels={MANAGED_BY_LABEL: MANAGED_BY_VALUE},
    )
    return Prepared(desired=desired, expires_at=expires_at)
