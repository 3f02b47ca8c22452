"""Small statistics on samples: medians, percentiles, steady-state rates."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    if not values:
        return math.nan
    return float(statistics.median(values))


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max of latencies given in seconds, in milliseconds."""
    return {
        "n": float(len(seconds)),
        "p50_ms": round(percentile(seconds, 0.50) * 1000, 2),
        "p90_ms": round(percentile(seconds, 0.90) * 1000, 2),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2) if seconds else math.nan,
    }


def steady_rate(timestamps: Sequence[float], trim: float = 0.1) -> float:
    """Events per second over the middle of a run: the events between the ``trim`` and ``1 - trim``
    quantiles of their timestamps, so that ramp-up and drain do not count."""
    if len(timestamps) < 10:
        return math.nan
    ordered = sorted(timestamps)
    first = int(len(ordered) * trim)
    last = int(len(ordered) * (1 - trim)) - 1
    span = ordered[last] - ordered[first]
    if span <= 0:
        return math.nan
    return (last - first) / span


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or baseline == 0 or math.isnan(value) or math.isnan(baseline):
        return None
    return value / baseline
