"""Confidence intervals for means, proportions and their differences (fidelity, and the
comparisons to come). Checked against scipy and published worked examples in the tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its confidence interval."""

    value: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Student-t interval for a mean; a sample without spread gives a zero-width interval."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        raise ValueError(f"mean_ci: need at least 2 values, got {x.size}")
    mean = float(x.mean())
    half = float(stats.t.ppf((1 + confidence) / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Estimate(mean, mean - half, mean + half)


def wilson_ci(successes: int, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """Wilson score interval for a proportion (sound at 0 and 1, unlike the Wald interval)."""
    if n < 1:
        raise ValueError(f"wilson_ci: need at least 1 trial, got {n}")
    interval = stats.binomtest(int(successes), int(n)).proportion_ci(confidence, method="wilson")
    return Estimate(successes / n, float(interval.low), float(interval.high))


def welch_diff_ci(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Welch t-interval for ``mean(a) - mean(b)`` (unequal variances, Welch-Satterthwaite df)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or y.size < 2:
        raise ValueError(f"welch_diff_ci: need at least 2 values per sample, got {x.size} and {y.size}")
    diff = float(x.mean() - y.mean())
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    if vx + vy == 0.0:
        return Estimate(diff, diff, diff)
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, df) * math.sqrt(vx + vy))
    return Estimate(diff, diff - half, diff + half)


def newcombe_diff_ci(k1: int, n1: int, k2: int, n2: int, confidence: float = CONFIDENCE) -> Estimate:
    """Newcombe's hybrid score interval for ``k1/n1 - k2/n2`` (method 10, Newcombe 1998)."""
    p1, p2 = wilson_ci(k1, n1, confidence), wilson_ci(k2, n2, confidence)
    diff = p1.value - p2.value
    low = diff - math.hypot(p1.value - p1.low, p2.high - p2.value)
    high = diff + math.hypot(p1.high - p1.value, p2.value - p2.low)
    return Estimate(diff, low, high)
