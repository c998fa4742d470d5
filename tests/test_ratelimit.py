from __future__ import annotations

from carpctl.ratelimit import RateLimiter


def test_a_burst_then_silence_then_the_count_of_what_was_suppressed() -> None:
    limiter = RateLimiter(burst=2, period=10.0)
    results = [limiter.allow("k", now) for now in (0.0, 1.0, 2.0, 3.0, 4.0)]
    assert results == [(True, 0), (True, 0), (False, 0), (False, 0), (False, 0)]
    assert limiter.allow("k", 10.5) == (True, 3)  # a new window reports the three dropped
    assert limiter.allow("other", 10.5) == (True, 0)  # keys are independent
