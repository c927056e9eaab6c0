"""Token buckets and the failed-login throttle, on a fake clock."""

from __future__ import annotations

from gateway.limits import FailureThrottle, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=20, clock=clock)
    assert all(bucket.take() for _ in range(20))
    assert not bucket.take()
    assert bucket.wait_for() == 0.1
    clock.now += 0.5
    assert sum(bucket.take() for _ in range(10)) == 5
    clock.now += 100
    assert sum(bucket.take() for _ in range(50)) == 20  # never more than the burst saved up


def test_bucket_takes_many_at_once_or_none() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=100, burst=1000, clock=clock)
    assert bucket.take(1000)
    assert not bucket.take(1)
    clock.now += 2
    assert not bucket.take(1000)  # 200 there: nothing is taken
    assert bucket.take(200)


def test_zero_rate_means_no_bound() -> None:
    bucket = TokenBucket(rate=0, burst=0, clock=Clock())
    assert all(bucket.take(10**6) for _ in range(100))
    assert bucket.wait_for(10**6) == 0


def test_throttle_blocks_a_peer_after_the_limit_for_the_rest_of_its_minute() -> None:
    clock = Clock()
    throttle = FailureThrottle(per_minute=3, clock=clock)
    for expected in (1, 2, 3):
        assert throttle.blocked_for("10.0.0.1") == 0
        assert throttle.record_failure("10.0.0.1") == expected
    assert throttle.blocked_for("10.0.0.1") == 60
    assert throttle.blocked_for("10.0.0.2") == 0  # other peers are not affected
    clock.now += 45
    assert throttle.blocked_for("10.0.0.1") == 15
    clock.now += 15
    assert throttle.blocked_for("10.0.0.1") == 0
    assert throttle.record_failure("10.0.0.1") == 1  # a new window


def test_throttle_memory_is_bounded() -> None:
    throttle = FailureThrottle(per_minute=1, max_peers=100, clock=Clock())
    for peer in range(10_000):
        throttle.record_failure(f"10.0.{peer // 256}.{peer % 256}")
    assert len(throttle._windows) == 100
    assert throttle.blocked_for("10.0.39.15")  # the newest are remembered


def test_throttle_zero_means_off() -> None:
    throttle = FailureThrottle(per_minute=0, clock=Clock())
    for _ in range(1000):
        throttle.record_failure("p")
    assert throttle.blocked_for("p") == 0
