"""A client-side token bucket per cluster, the same model as client-go's QPS/Burst limiter
(golang.org/x/time/rate): the bucket starts full with ``burst`` tokens, refills at ``qps`` tokens
per second up to ``burst``, and every API request takes one token.

``acquire()`` reserves its token under the lock and sleeps *outside* it, so concurrent callers
queue up in arrival order without holding the lock while they wait (x/time/rate's ``Wait``).
The clock and the sleep are injected so that tests run on a fake clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Thread-safe token bucket: ``qps`` tokens per second, at most ``burst`` saved up."""

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not qps > 0:
            raise ValueError(f"qps must be positive, got {qps!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.qps = float(qps)
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = clock()

    def _refill(self, now: float) -> None:
        # max(): a clock that steps back must not drain the bucket.
        elapsed = max(0.0, now - self._last)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)
        self._last = max(self._last, now)

    def reserve(self) -> float:
        """Take a token now, possibly on credit; return how long the caller must wait (s)."""
        with self._lock:
            self._refill(self._clock())
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def acquire(self) -> float:
        """Block until a token is available; return the seconds waited (0.0 when none)."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def try_acquire(self) -> bool:
        """Take a token only if one is available right now; never blocks."""
        with self._lock:
            self._refill(self._clock())
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True

    @property
    def available(self) -> float:
        """Tokens available now (negative while callers are queued on credit)."""
        with self._lock:
            self._refill(self._clock())
            return self._tokens

    def __repr__(self) -> str:
        return f"TokenBucket(qps={self.qps:g}, burst={self.burst})"
