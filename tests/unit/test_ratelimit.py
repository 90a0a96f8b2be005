"""The per-cluster token bucket, on a fake clock: no real time passes in these tests."""

from __future__ import annotations

import threading

import pytest

from rotator.ratelimit import TokenBucket


class FakeClock:
    """A monotonic clock that only moves when told to, or when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def bucket(qps: float, burst: int, clock: FakeClock) -> TokenBucket:
    return TokenBucket(qps, burst, clock=clock, sleep=clock.sleep)


def test_a_new_bucket_is_full_so_a_burst_never_waits() -> None:
    clock = FakeClock()
    limiter = bucket(10, 5, clock)
    assert [limiter.acquire() for _ in range(5)] == [0.0] * 5
    assert clock.slept == []


def test_the_request_after_the_burst_waits_one_refill_interval() -> None:
    clock = FakeClock()
    limiter = bucket(10, 2, clock)
    limiter.acquire()
    limiter.acquire()
    assert limiter.acquire() == pytest.approx(0.1)
    assert clock.slept == [pytest.approx(0.1)]


def test_sustained_rate_is_qps_after_the_burst_is_spent() -> None:
    clock = FakeClock()
    limiter = bucket(50, 10, clock)
    start = clock.now
    for _ in range(110):
        limiter.acquire()
    # 10 free from the burst, then 100 at 50/s.
    assert clock.now - start == pytest.approx(2.0)


def test_idle_time_refills_but_never_beyond_burst() -> None:
    clock = FakeClock()
    limiter = bucket(10, 3, clock)
    for _ in range(3):
        limiter.acquire()
    assert limiter.available == pytest.approx(0.0)
    clock.now += 0.2
    assert limiter.available == pytest.approx(2.0)
    clock.now += 3600
    assert limiter.available == pytest.approx(3.0)
    assert [limiter.acquire() for _ in range(3)] == [0.0] * 3
    assert limiter.acquire() == pytest.approx(0.1)


def test_waiting_callers_queue_on_credit_in_arrival_order() -> None:
    clock = FakeClock()
    limiter = bucket(4, 1, clock)
    # Reservations taken at the same instant are spaced by 1/qps each.
    waits = [limiter.reserve() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert limiter.available == pytest.approx(-3.0)


def test_try_acquire_takes_a_token_only_when_one_is_there() -> None:
    clock = FakeClock()
    limiter = bucket(2, 1, clock)
    assert limiter.try_acquire() is True
    assert limiter.try_acquire() is False
    # A refused attempt does not go into credit.
    assert limiter.available == pytest.approx(0.0)
    clock.now += 0.5
    assert limiter.try_acquire() is True
    assert clock.slept == []


def test_a_clock_stepping_back_neither_drains_nor_refills_the_bucket() -> None:
    clock = FakeClock()
    limiter = bucket(10, 2, clock)
    limiter.acquire()
    clock.now -= 100
    assert limiter.available == pytest.approx(1.0)
    clock.now += 100.05
    assert limiter.available == pytest.approx(1.5)


def test_concurrent_callers_get_exactly_one_token_each() -> None:
    clock = FakeClock()
    lock = threading.Lock()
    waits: list[float] = []
    limiter = TokenBucket(100, 20, clock=clock, sleep=lambda _s: None)
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(25):
            wait = limiter.acquire()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The clock never moved: 20 free tokens, then 180 reservations 10 ms apart, none shared.
    assert sorted(waits) == pytest.approx([0.0] * 20 + [k / 100 for k in range(1, 181)])


@pytest.mark.parametrize(("qps", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_nonsense_settings_are_rejected(qps: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"qps|burst"):
        TokenBucket(qps, burst)
