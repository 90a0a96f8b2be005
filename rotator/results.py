"""One RotationResult per target: the outcome, the reason and the exit code it maps to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from rotator.errors import ExitCode, RotatorError
from rotator.model import Decision, Outcome, Reason, RotationResult


def result_for(
    decision: Decision,
    outcome: Outcome | None,
    *,
    error: RotatorError | None = None,
    expires_at: datetime | None = None,
    verified: bool = False,
) -> RotationResult:
    """A result for a decision; ``outcome=None`` means "not rotated": fresh or refused."""
    if outcome is None:
        outcome = Outcome.REFUSED_UNOWNED if decision.refused else Outcome.FRESH
    if outcome is Outcome.FRESH and decision.reason is Reason.WRONG_TYPE:
        outcome = Outcome.FAILED_WRITE
    code = ExitCode.OK
    if error is not None:
        code = error.exit_code
    elif outcome is Outcome.REFUSED_UNOWNED or decision.reason is Reason.WRONG_TYPE:
        code = ExitCode.REFUSED
    message = error.message if error is not None else None
    if message is None and (outcome is not Outcome.ROTATED):
        message = decision.message
    return RotationResult(
        target=decision.target,
        outcome=outcome,
        reason=decision.reason,
        expires_at=expires_at if outcome is Outcome.ROTATED else decision.observed.expires_at,
        verified=verified,
        error=message,
        exit_code=int(code),
    )


def source_failure(decision: Decision, failures: Mapping[str, RotatorError]) -> RotatorError | None:
    """The error of an unreadable static source this Secret uses, unless the Secret is refused
    anyway (then the refusal is the news)."""
    if decision.refused or decision.reason is Reason.WRONG_TYPE:
        return None
    return next((failures[r] for r in decision.registries if r in failures), None)


def with_exit(result: RotationResult, code: ExitCode) -> RotationResult:
    return replace(result, exit_code=int(code))
