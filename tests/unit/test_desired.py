"""What a rotated Secret holds: bytes, label and the annotations the next run plans from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rotator import dockerconfig
from rotator.config import ScheduleSpec
from rotator.desired import prepare
from rotator.model import Credential

NOW = datetime(2026, 11, 26, 12, 0, 30, 250_000, tzinfo=UTC)
SALT = b"0123456789abcdef"


def _cred(registry: str, host: str, lifetime: timedelta | None) -> Credential:
    return Credential(
        registry=registry,
        host=host,
        username="AWS" if lifetime else "robot",
        password=f"pw-{registry}",
        issued_at=NOW,
        expires_at=NOW + lifetime if lifetime else None,
    )


def test_the_earliest_expiry_sets_expires_at_and_renew_at() -> None:
    ecr = _cred("ecr", "1.dkr.ecr.eu-west-1.amazonaws.com", timedelta(hours=12))
    gar = _cred("gar", "europe-docker.pkg.dev", timedelta(hours=1))
    static = _cred("harbor", "harbor.example.com", None)

    prepared = prepare(
        ("ecr", "gar", "harbor"), [ecr, gar, static], now=NOW, salt=SALT, schedule=ScheduleSpec()
    )

    assert prepared.expires_at == NOW + timedelta(hours=1)
    desired = prepared.desired
    assert desired.data == {".dockerconfigjson": dockerconfig.render([ecr, gar, static])}
    assert desired.labels == {"app.kubernetes.io/managed-by": "rotator"}
    assert desired.annotations == {
        "rotator.dev/registries": "ecr,gar,harbor",
        "rotator.dev/rotated-at": "2026-11-26T12:00:30Z",
        "rotator.dev/verified-at": "2026-11-26T12:00:30Z",
        "rotator.dev/fingerprint": dockerconfig.fingerprint([ecr, gar, static], SALT),
        "rotator.dev/expires-at": "2026-11-26T13:00:30Z",
        # 2/3 of the one-hour token: 40 minutes after issue, truncated to the second.
        "rotator.dev/renew-at": "2026-11-26T12:40:30Z",
    }


def test_renew_before_wins_over_the_fraction() -> None:
    ecr = _cred("ecr", "1.dkr.ecr.eu-west-1.amazonaws.com", timedelta(hours=12))
    schedule = ScheduleSpec(renew_before=timedelta(hours=2))

    prepared = prepare(("ecr",), [ecr], now=NOW, salt=SALT, schedule=schedule)

    assert prepared.desired.annotations["rotator.dev/renew-at"] == "2026-11-26T22:00:30Z"


def test_static_credentials_carry_no_expiry_annotations() -> None:
    static = _cred("harbor", "harbor.example.com", None)

    prepared = prepare(("harbor",), [static], now=NOW, salt=SALT, schedule=ScheduleSpec())

    assert prepared.expires_at is None
    assert set(prepared.desired.annotations) == {
        "rotator.dev/registries",
        "rotator.dev/rotated-at",
        "rotator.dev/verified-at",
        "rotator.dev/fingerprint",
    }
    assert "pw-harbor" not in str(prepared.desired)
