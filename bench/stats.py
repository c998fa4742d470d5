"""Small statistics for the benchmark tables: median, quartiles, extremes."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between order statistics."""
    if not values:
        raise ValueError("quantile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Summary:
    """Median and spread of some samples (same unit as the samples)."""

    n: int
    median: float
    p25: float
    p75: float
    min: float
    max: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self, digits: int = 0) -> str:
        """``median [min..max]``, e.g. ``3412 [3108..3790]``."""
        f = f"{{:.{digits}f}}"
        return f"{f.format(self.median)} [{f.format(self.min)}..{f.format(self.max)}]"


def summarize(values: Sequence[float]) -> Summary | None:
    if not values:
        return None
    return Summary(
        n=len(values),
        median=quantile(values, 0.5),
        p25=quantile(values, 0.25),
        p75=quantile(values, 0.75),
        min=min(values),
        max=max(values),
    )


@dataclass(frozen=True)
class Jitter:
    """Deviation of advertisement intervals from the nominal period, milliseconds."""

    intervals: int
    nominal_ms: float
    mean_ms: float  # signed mean of interval - nominal: a steady drift
    median_abs_ms: float
    p99_abs_ms: float
    max_abs_ms: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def jitter(series: Sequence[Sequence[float]], nominal: float) -> Jitter | None:
    """Jitter over several time series (one per vhid) of send instants, in seconds."""
    deviations = [
        (later - earlier - nominal) * 1000
        for times in series
        for earlier, later in itertools.pairwise(times)
    ]
    if not deviations:
        return None
    absolute = [abs(d) for d in deviations]
    return Jitter(
        intervals=len(deviations),
        nominal_ms=nominal * 1000,
        mean_ms=sum(deviations) / len(deviations),
        median_abs_ms=quantile(absolute, 0.5),
        p99_abs_ms=quantile(absolute, 0.99),
        max_abs_ms=max(absolute),
    )
