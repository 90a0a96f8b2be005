"""The writing half of a run: mint once per registry, verify before writing, write with
bounded concurrency per cluster, then check what the API server stored and handshake each
distinct stored credential once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from rotator import dockerconfig
from rotator.desired import Prepared, prepare
from rotator.errors import ExitCode, RotatorError, VerificationError, WriteConflict
from rotator.logs import REDACTOR
from rotator.model import (
    ANN_FINGERPRINT,
    DOCKERCONFIGJSON_KEY,
    DOCKERCONFIGJSON_TYPE,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    Credential,
    Decision,
    DesiredSecret,
    Observed,
    Outcome,
    Plan,
    Reason,
    RotationResult,
)
from rotator.policy import CheckInput, decide
from rotator.results import result_for, source_failure, with_exit
from rotator.runtime import Runtime
from rotator.writer import StoredSecret

log = logging.getLogger("rotator.rotation")


class Rotation:
    def __init__(
        self,
        runtime: Runtime,
        *,
        now: datetime,
        salt: bytes,
        static: dict[str, Credential],
        static_failures: dict[str, RotatorError] | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.now = now
        self.salt = salt
        self.static = static
        self.credentials: dict[str, list[Credential]] = {}
        self.failures: dict[str, tuple[Outcome, RotatorError]] = {
            name: (Outcome.FAILED_MINT, error) for name, error in (static_failures or {}).items()
        }
        self.static_failures = static_failures or {}
        self._prepared: dict[tuple[str, ...], Prepared] = {}

    @staticmethod
    def redecide(
        runtime: Runtime,
        decision: Decision,
        *,
        observed: Observed,
        now: datetime,
        force: bool,
        static: dict[str, Credential] | None = None,
    ) -> Decision:
        """Decide again for one target from a fresh read (after a 409, or in a dry run)."""
        spec = next(s for s in runtime.settings.secrets if s.name == decision.target.secret)
        check = CheckInput(
            target=decision.target,
            observed=observed,
            registries=decision.registries,
            adopt=spec.adopt,
            force=force,
            now=now,
            static=static or {},
            static_registries=runtime.static_registries,
        )
        return decide(check)

    def run(
        self, plan: Plan, *, force: bool, on_result: Callable[[RotationResult], None]
    ) -> list[RotationResult]:
        self._mint_and_verify(sorted(plan.registries_needed))
        results: list[RotationResult] = []
        for decision in plan.decisions:
            if not decision.rotate:
                unreadable = source_failure(decision, self.static_failures)
                if unreadable is None:
                    results.append(result_for(decision, None))
                else:
                    results.append(result_for(decision, Outcome.FAILED_MINT, error=unreadable))
                on_result(results[-1])
        written = self._write_all(plan.due, force=force, on_result=on_result, results=results)
        for result in self._post_verify(written):
            results.append(result)
            on_result(result)
        return results

    # -- mint and pre-verify -----------------------------------------------------------------

    def _mint_and_verify(self, names: Sequence[str]) -> None:
        if not names:
            return
        with ThreadPoolExecutor(max_workers=min(8, len(names)), thread_name_prefix="mint") as pool:
            # A static source that could not be read before planning stays failed this run.
            list(pool.map(self._mint_and_verify_one, [n for n in names if n not in self.failures]))

    def _mint_and_verify_one(self, name: str) -> None:
        try:
            if name in self.static:
                credentials = [self.static[name]]
            else:
                credentials = self.runtime.providers[name].mint(self.now)
                for cred in credentials:
                    REDACTOR.add(cred.password, username=cred.username)
        except RotatorError as exc:
            self.failures[name] = (Outcome.FAILED_MINT, exc)
            return
        try:
            for cred in credentials:
                # Safety rule 1: a credential the registry rejects is never written.
                self.runtime.verifiers[name].verify_credential(cred)
        except RotatorError as exc:
            self.failures[name] = (Outcome.FAILED_VERIFY, exc)
            return
        self.credentials[name] = credentials

    # -- write -------------------------------------------------------------------------------

    def _prepare(self, registries: tuple[str, ...]) -> Prepared:
        prepared = self._prepared.get(registries)
        if prepared is None:
            creds = [c for name in registries for c in self.credentials[name]]
            prepared = prepare(
                registries, creds, now=self.now, salt=self.salt, schedule=self.settings.schedule
            )
            self._prepared[registries] = prepared
        return prepared

    def _write_all(
        self,
        due: Sequence[Decision],
        *,
        force: bool,
        on_result: Callable[[RotationResult], None],
        results: list[RotationResult],
    ) -> list[tuple[Decision, StoredSecret]]:
        written: list[tuple[Decision, StoredSecret]] = []
        ready: list[Decision] = []
        for decision in due:
            failed = next(
                (self.failures[r] for r in decision.registries if r in self.failures), None
            )
            if failed is not None:
                results.append(result_for(decision, failed[0], error=failed[1]))
                on_result(results[-1])
            else:
                self._prepare(decision.registries)
                ready.append(decision)
        by_cluster: dict[str, list[Decision]] = {}
        for decision in ready:
            by_cluster.setdefault(decision.target.cluster, []).append(decision)
        workers = self.settings.runtime.write_concurrency
        pools = {
            c: ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"write-{c}")
            for c in by_cluster
        }
        try:
            futures = [
                pools[cluster].submit(self._write_one, d, force)
                for cluster, decisions in by_cluster.items()
                for d in decisions
            ]
            for future in futures:
                decision, stored, result = future.result()
                if stored is not None:
                    written.append((decision, stored))
                elif result is not None:
                    results.append(result)
                    on_result(result)
        finally:
            for pool in pools.values():
                pool.shutdown(wait=True)
        return written

    def _write_one(
        self, decision: Decision, force: bool
    ) -> tuple[Decision, StoredSecret | None, RotationResult | None]:
        store = self.runtime.stores[decision.target.cluster]
        desired = self._prepare(decision.registries).desired
        observed = decision.observed
        retries = self.settings.runtime.conflict_retries
        try:
            for attempt in range(retries + 1):
                try:
                    adopt = decision.reason is Reason.ADOPTED
                    stored = store.apply(decision.target, observed, desired, adopt=adopt)
                    return decision, stored, None
                except WriteConflict:
                    if attempt == retries:
                        raise
                    # Someone else wrote the Secret (or one already exists without our
                    # label): read it again and decide afresh from what is there now.
                    observed = store.get(decision.target)
                    if observed.fingerprint == desired.annotations[ANN_FINGERPRINT]:
                        # This run's own write (the fingerprint carries the run's random
                        # salt): it landed, its answer was lost and the HTTP client's retry
                        # met it. It is rotated; post-verify checks what is stored.
                        landed = store.read(decision.target)
                        if landed is not None:
                            return decision, landed, None
                    decision = self.redecide(
                        self.runtime,
                        decision,
                        observed=observed,
                        now=self.now,
                        force=force,
                        static=self.static,
                    )
                    if not decision.rotate:
                        return decision, None, result_for(decision, None)
        except RotatorError as exc:
            return decision, None, result_for(decision, Outcome.FAILED_WRITE, error=exc)
        except Exception as exc:  # one target's bug must not stop the others (rule 6)
            log.exception("internal error while writing %s", decision.target)
            error = RotatorError(f"internal error: {type(exc).__name__}")
            result = result_for(decision, Outcome.FAILED_WRITE, error=error)
            return decision, None, with_exit(result, ExitCode.INTERNAL)
        raise AssertionError("unreachable: the retry loop returns or raises")

    # -- post-verify -------------------------------------------------------------------------

    def _post_verify(self, written: list[tuple[Decision, StoredSecret]]) -> list[RotationResult]:
        """Check each stored Secret is exactly what was meant, then handshake each distinct
        stored credential once — not once per namespace."""
        hosts = {r.host: r.name for r in self.settings.registries}
        problems: dict[int, RotatorError] = {}
        distinct: dict[tuple[str, str, str], RotatorError | None] = {}
        parsed: dict[int, list[tuple[str, str, str]]] = {}
        for index, (decision, stored) in enumerate(written):
            desired = self._prepare(decision.registries).desired
            mismatch = _mismatch(stored, desired)
            if mismatch:
                problems[index] = VerificationError(
                    f"the API server stored {mismatch}, not what was written; "
                    "a mutating admission webhook may be rewriting Secrets",
                    retryable=False,
                )
                continue
            auths = dockerconfig.parse(stored.data[DOCKERCONFIGJSON_KEY])
            parsed[index] = [(h, a.username, a.password) for h, a in auths.items()]
            for key in parsed[index]:
                distinct.setdefault(key, None)
        keys = list(distinct)
        if keys:
            with ThreadPoolExecutor(max_workers=min(8, len(keys))) as pool:
                outcomes = pool.map(lambda k: self._handshake(hosts[k[0]], *k), keys)
                distinct.update(zip(keys, outcomes, strict=True))
        results = []
        for index, (decision, _stored) in enumerate(written):
            expires_at = self._prepare(decision.registries).expires_at
            error = problems.get(index) or next(
                (e for k in parsed.get(index, ()) if (e := distinct[k]) is not None), None
            )
            if error is None:
                results.append(
                    result_for(decision, Outcome.ROTATED, expires_at=expires_at, verified=True)
                )
            else:
                results.append(result_for(decision, Outcome.FAILED_VERIFY, error=error))
        return results

    def _handshake(
        self, registry: str, host: str, username: str, password: str
    ) -> RotatorError | None:
        try:
            self.runtime.verifiers[registry].verify(username, password, host)
        except RotatorError as exc:
            return exc
        return None


def _mismatch(stored: StoredSecret, desired: DesiredSecret) -> str | None:
    if stored.secret_type != DOCKERCONFIGJSON_TYPE:
        return f"type {stored.secret_type}"
    if stored.data.get(DOCKERCONFIGJSON_KEY) != desired.data[DOCKERCONFIGJSON_KEY]:
        return "different .dockerconfigjson bytes"
    if stored.labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return "no ownership label"
    changed = sorted(k for k, v in desired.annotations.items() if stored.annotations.get(k) != v)
    return f"different annotations ({', '.join(changed)})" if changed else None
