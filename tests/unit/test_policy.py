"""The renew-at math (property tests) and the ordered chain of checks (one example per reason)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from rotator.config import ScheduleSpec
from rotator.dockerconfig import fingerprint
from rotator.model import (
    DOCKERCONFIGJSON_TYPE,
    Credential,
    Decision,
    Observed,
    Reason,
    Target,
    format_time,
    parse_time,
)
from rotator.policy import CHECKS, CheckInput, decide, renew_at

FAST = settings(deadline=None, max_examples=200)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TARGET = Target(cluster="prod", namespace="team-a", secret="pull")
SALT = b"0123456789abcdef"

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
lifetimes = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400))
fractions = st.floats(min_value=0, max_value=1, exclude_min=True, exclude_max=True)
renew_befores = st.none() | st.timedeltas(
    min_value=timedelta(microseconds=1), max_value=timedelta(days=800)
)


# --- renew_at


@FAST
@given(issued=instants, lifetime=lifetimes, fraction=fractions, before=renew_befores)
def test_renew_at_lies_between_issue_and_expiry_in_whole_seconds(
    issued: datetime, lifetime: timedelta, fraction: float, before: timedelta | None
) -> None:
    expires = issued + lifetime
    moment = renew_at(
        issued_at=issued, expires_at=expires, renew_fraction=fraction, renew_before=before
    )
    assert moment >= issued.replace(microsecond=0)
    assert moment <= expires
    assert moment.microsecond == 0
    assert moment.tzinfo is not None


@FAST
@given(issued=instants, lifetime=lifetimes, fraction=fractions, before=renew_befores)
def test_renew_before_is_used_exactly_when_shorter_than_the_lifetime(
    issued: datetime, lifetime: timedelta, fraction: float, before: timedelta | None
) -> None:
    expires = issued + lifetime
    moment = renew_at(
        issued_at=issued, expires_at=expires, renew_fraction=fraction, renew_before=before
    )
    if before is not None and before < lifetime:
        assert moment == (expires - before).replace(microsecond=0)
    else:
        assert moment == (issued + lifetime * fraction).replace(microsecond=0)


@FAST
@given(issued=instants, lifetime=lifetimes, low=fractions, high=fractions)
def test_renew_at_is_monotonic_in_the_fraction(
    issued: datetime, lifetime: timedelta, low: float, high: float
) -> None:
    low, high = sorted((low, high))
    expires = issued + lifetime

    def at(fraction: float) -> datetime:
        return renew_at(issued_at=issued, expires_at=expires, renew_fraction=fraction)

    assert at(low) <= at(high)


def test_default_fraction_renews_a_12_hour_token_after_exactly_8_hours() -> None:
    issued = datetime(2024, 5, 1, 0, 0, 7, tzinfo=UTC)
    moment = renew_at(
        issued_at=issued,
        expires_at=issued + timedelta(hours=12),
        renew_fraction=ScheduleSpec().renew_fraction,
    )
    assert moment == datetime(2024, 5, 1, 8, 0, 7, tzinfo=UTC)


def test_renew_before_shorter_than_lifetime_counts_back_from_expiry() -> None:
    issued = datetime(2024, 5, 1, 0, 0, 0, tzinfo=UTC)
    moment = renew_at(
        issued_at=issued,
        expires_at=issued + timedelta(hours=12),
        renew_fraction=2 / 3,
        renew_before=timedelta(hours=1, minutes=30),
    )
    assert moment == datetime(2024, 5, 1, 10, 30, 0, tzinfo=UTC)


def test_renew_before_not_shorter_than_lifetime_falls_back_to_the_fraction() -> None:
    issued = datetime(2024, 5, 1, 0, 0, 0, tzinfo=UTC)
    moment = renew_at(
        issued_at=issued,
        expires_at=issued + timedelta(hours=1),
        renew_fraction=0.5,
        renew_before=timedelta(hours=1),
    )
    assert moment == datetime(2024, 5, 1, 0, 30, 0, tzinfo=UTC)


def test_renew_at_truncates_microseconds_down() -> None:
    issued = datetime(2024, 5, 1, 0, 0, 0, 999_999, tzinfo=UTC)
    moment = renew_at(
        issued_at=issued, expires_at=issued + timedelta(seconds=10), renew_fraction=0.5
    )
    assert moment == datetime(2024, 5, 1, 0, 0, 5, tzinfo=UTC)


# --- the chain of checks


def owned(**overrides: object) -> Observed:
    """A healthy Secret the rotator wrote for registry "ecr", renewing in an hour."""
    fields: dict[str, object] = {
        "target": TARGET,
        "exists": True,
        "owned": True,
        "secret_type": DOCKERCONFIGJSON_TYPE,
        "registries": ("ecr",),
        "expires_at": NOW + timedelta(hours=4),
        "renew_at": NOW + timedelta(hours=1),
        "resource_version": "42",
    }
    fields.update(overrides)
    return Observed(**fields)  # type: ignore[arg-type]


def static_cred(password: str = "static-pw") -> Credential:
    return Credential(
        registry="harbor",
        host="harbor.example.com",
        username="robot",
        password=password,
        issued_at=NOW - timedelta(days=1),
        expires_at=None,
    )


def check(
    observed: Observed,
    *,
    registries: tuple[str, ...] = ("ecr",),
    adopt: bool = False,
    force: bool = False,
    now: datetime = NOW,
    static: Mapping[str, Credential] | None = None,
) -> Decision:
    return decide(
        CheckInput(
            target=TARGET,
            observed=observed,
            registries=registries,
            adopt=adopt,
            force=force,
            now=now,
            static=static or {},
        )
    )


def test_check_chain_order() -> None:
    assert [c.__name__ for c in CHECKS] == [
        "_missing",
        "_wrong_type",
        "_not_owned",
        "_registries_changed",
        "_source_changed",
        "_expired",
        "_renew_due",
        "_forced",
    ]


def test_missing_secret_is_created() -> None:
    decision = check(Observed.missing(TARGET))
    assert (decision.reason, decision.rotate) == (Reason.MISSING, True)
    assert decision.message == "Secret does not exist"
    assert decision.target == TARGET
    assert decision.registries == ("ecr",)


def test_missing_wins_over_force() -> None:
    assert check(Observed.missing(TARGET), force=True).reason is Reason.MISSING


def test_owned_secret_of_the_wrong_type_is_left_for_a_human() -> None:
    decision = check(owned(secret_type="Opaque"), force=True)
    assert (decision.reason, decision.rotate) == (Reason.WRONG_TYPE, False)
    assert decision.message == (
        "Secret has type Opaque, not kubernetes.io/dockerconfigjson; delete it to let the "
        "rotator recreate it"
    )


def test_adopting_a_secret_of_the_wrong_type_is_refused_as_wrong_type() -> None:
    decision = check(owned(owned=False, secret_type="Opaque"), adopt=True)
    assert (decision.reason, decision.rotate) == (Reason.WRONG_TYPE, False)


def test_unowned_secret_is_refused() -> None:
    decision = check(owned(owned=False))
    assert (decision.reason, decision.rotate) == (Reason.NOT_OWNED, False)
    assert decision.refused is True
    assert "set adopt: true" in decision.message


def test_unowned_secret_of_another_type_is_refused_as_not_owned() -> None:
    decision = check(owned(owned=False, secret_type="Opaque"))
    assert decision.reason is Reason.NOT_OWNED


def test_not_owned_wins_over_forced() -> None:
    decision = check(owned(owned=False), force=True)
    assert (decision.reason, decision.rotate, decision.refused) == (Reason.NOT_OWNED, False, True)


def test_not_owned_wins_over_expired() -> None:
    decision = check(owned(owned=False, expires_at=NOW - timedelta(hours=1)))
    assert decision.reason is Reason.NOT_OWNED


def test_unowned_secret_is_adopted_when_the_config_says_so() -> None:
    decision = check(owned(owned=False), adopt=True)
    assert (decision.reason, decision.rotate) == (Reason.ADOPTED, True)
    assert decision.refused is False


def test_changed_registry_list_rotates() -> None:
    decision = check(owned(), registries=("ecr", "gar"))
    assert (decision.reason, decision.rotate) == (Reason.REGISTRIES_CHANGED, True)
    assert decision.message == "registries changed (was ecr)"


def test_registry_list_without_annotation_reads_as_none() -> None:
    decision = check(owned(registries=()))
    assert decision.message == "registries changed (was none)"


def test_registry_order_does_not_count_as_a_change() -> None:
    decision = check(owned(registries=("gar", "ecr")), registries=("ecr", "gar"))
    assert decision.reason is Reason.FRESH


def test_registries_changed_wins_over_expired() -> None:
    decision = check(owned(expires_at=NOW - timedelta(seconds=1)), registries=("gar",))
    assert decision.reason is Reason.REGISTRIES_CHANGED


def test_changed_static_source_rotates_via_the_fingerprint() -> None:
    stored = fingerprint([static_cred("old-pw")], SALT)
    observed = owned(registries=("harbor",), renew_at=None, expires_at=None, fingerprint=stored)
    decision = check(observed, registries=("harbor",), static={"harbor": static_cred("new-pw")})
    assert (decision.reason, decision.rotate) == (Reason.SOURCE_CHANGED, True)
    assert decision.message == "source credential changed for harbor"


def test_unchanged_static_source_is_fresh() -> None:
    stored = fingerprint([static_cred()], SALT)
    observed = owned(registries=("harbor",), renew_at=None, expires_at=None, fingerprint=stored)
    decision = check(observed, registries=("harbor",), static={"harbor": static_cred()})
    assert (decision.reason, decision.rotate) == (Reason.FRESH, False)
    assert decision.message == "fresh (static credential)"


def test_static_source_without_a_fingerprint_rotates() -> None:
    observed = owned(registries=("harbor",), renew_at=None, expires_at=None, fingerprint=None)
    decision = check(observed, registries=("harbor",), static={"harbor": static_cred()})
    assert decision.reason is Reason.SOURCE_CHANGED


def test_source_changed_wins_over_expired() -> None:
    stored = fingerprint([static_cred("old-pw")], SALT)
    observed = owned(
        registries=("harbor", "ecr"), expires_at=NOW - timedelta(hours=1), fingerprint=stored
    )
    decision = check(observed, registries=("harbor", "ecr"), static={"harbor": static_cred()})
    assert decision.reason is Reason.SOURCE_CHANGED


def test_expired_secret_rotates() -> None:
    decision = check(owned(expires_at=NOW - timedelta(seconds=1)))
    assert (decision.reason, decision.rotate) == (Reason.EXPIRED, True)
    assert decision.message == "expired at 2024-05-01T11:59:59Z"


def test_secret_expiring_exactly_now_is_expired() -> None:
    assert check(owned(expires_at=NOW)).reason is Reason.EXPIRED


def test_expired_wins_over_renew_due() -> None:
    decision = check(owned(expires_at=NOW, renew_at=NOW - timedelta(hours=4)))
    assert decision.reason is Reason.EXPIRED


def test_passed_renew_at_rotates() -> None:
    decision = check(owned(renew_at=NOW - timedelta(minutes=1)))
    assert (decision.reason, decision.rotate) == (Reason.RENEW_DUE, True)
    assert decision.message == "renew-at 2024-05-01T11:59:00Z has passed"


def test_renew_at_exactly_now_is_due() -> None:
    assert check(owned(renew_at=NOW)).reason is Reason.RENEW_DUE


def test_minted_registry_without_renew_at_rotates_to_restore_it() -> None:
    decision = check(owned(renew_at=None))
    assert (decision.reason, decision.rotate) == (Reason.RENEW_DUE, True)
    assert decision.message == "no renew-at annotation; renewing to restore it"


def test_renew_due_wins_over_forced() -> None:
    assert check(owned(renew_at=None), force=True).reason is Reason.RENEW_DUE


def test_forced_rotation_of_a_fresh_secret() -> None:
    decision = check(owned(), force=True)
    assert (decision.reason, decision.rotate) == (Reason.FORCED, True)
    assert decision.message == "rotation forced"


def test_fresh_secret_is_left_alone() -> None:
    decision = check(owned())
    assert (decision.reason, decision.rotate) == (Reason.FRESH, False)
    assert decision.message == "fresh until 2024-05-01T13:00:00Z"
    assert decision.refused is False


def test_one_second_before_renew_at_is_still_fresh() -> None:
    decision = check(owned(), now=NOW + timedelta(minutes=59, seconds=59))
    assert decision.reason is Reason.FRESH


# --- annotation time format


def test_format_time_is_rfc3339_utc_whole_seconds() -> None:
    moment = datetime(2024, 5, 1, 14, 30, 15, 123_456, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2024-05-01T12:30:15Z"


offsets = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)


@FAST
@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
    )
)
def test_format_and_parse_round_trip(moment: datetime) -> None:
    assert parse_time(format_time(moment)) == moment.astimezone(UTC).replace(microsecond=0)


def test_parse_time_of_a_known_value() -> None:
    assert parse_time("2024-05-01T12:30:15Z") == datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC)


def test_parse_time_of_junk_is_none() -> None:
    for text in [
        None,
        "",
        "yesterday",
        "2024-05-01",
        "2024-05-01T12:30:15",
        "2024-05-01T12:30:15+00:00",
        "2024-05-01T12:30:15.5Z",
        "2024-13-01T12:30:15Z",
        "2024-05-01T25:30:15Z",
        " 2024-05-01T12:30:15Z",
    ]:
        assert parse_time(text) is None, text


@FAST
@given(text=st.text(max_size=40))
def test_parse_time_never_raises_and_returns_utc(text: str) -> None:
    moment = parse_time(text)
    assert moment is None or moment.tzinfo is UTC


def test_static_registry_needs_no_renew_at_even_when_its_source_was_not_read() -> None:
    decision = decide(
        CheckInput(
            target=TARGET,
            observed=owned(registries=("harbor",), renew_at=None, expires_at=None),
            registries=("harbor",),
            adopt=False,
            force=False,
            now=NOW,
            static={},
            static_registries=frozenset({"harbor"}),
        )
    )
    assert (decision.reason, decision.rotate) == (Reason.FRESH, False)
