"""Confidence intervals for a sweep's summary, exact and deterministic (no random draws).

- A rate (success, deadline misses) gets the **Wilson score interval**: unlike the normal
  approximation it stays inside [0, 1] and is not empty at 0 or n successes, which is where
  device allocation lives (0 misses in 200 starts is "below 1.9%", not "exactly 0").
- A percentile (p50, p99) gets the **distribution-free order-statistics interval**: the
  ranks ``l`` and ``u`` such that the sorted sample's ``x[l] <= Q_q <= x[u]`` with probability
  at least 95%, from the binomial distribution of how many draws fall below the true
  quantile. No assumption on the latency distribution (it has long tails and clusters).
  A bound that the sample cannot give (a p99 upper bound needs at least 368 requests at 95%)
  is ``None``: the table shows it open.

Both treat each request as one draw; the seeds are the replications.
"""

from __future__ import annotations

import math
from typing import Optional

Z_95 = 1.959963984540054
"""The standard normal's 97.5th percentile: two-sided 95%."""
ALPHA = 0.05


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of the rate ``successes / n`` (95% by default); (0, 1)
    for an empty sample."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # clamped to hold the rate itself, which rounding can leave a hair outside at 0 and n
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def quantile_interval(
    ordered: list[int], q: float, alpha: float = ALPHA
) -> tuple[Optional[int], Optional[int]]:
    """The order-statistics interval of the ``q`` quantile (0 < q < 1) of the sorted sample
    ``ordered``, with coverage at least ``1 - alpha``; a bound the sample is too small for
    is None."""
    n = len(ordered)
    if n == 0:
        return None, None
    cdf = _binomial_cdf(n, q)
    # lower rank l (1-based): the largest with P(B <= l - 1) <= alpha / 2
    lower = max((k for k in range(1, n + 1) if cdf[k - 1] <= alpha / 2), default=None)
    # upper rank u: the smallest with P(B >= u) = 1 - P(B <= u - 1) <= alpha / 2
    upper = min((k for k in range(1, n + 1) if 1 - cdf[k - 1] <= alpha / 2), default=None)
    return (
        ordered[lower - 1] if lower is not None else None,
        ordered[upper - 1] if upper is not None else None,
    )


def _binomial_cdf(n: int, p: float) -> list[float]:
    """``P(B <= k)`` for k in 0..n, B ~ Binomial(n, p), summed from log-space terms (exact
    enough for any n a sweep makes, and no overflow)."""
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    total = 0.0
    out = []
    for k in range(n + 1):
        log_term = log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p
        total += math.exp(log_term + (n - k) * log_q)
        out.append(min(total, 1.0))
    return out


def nearest_rank(ordered: list[int], q: float) -> Optional[int]:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of a sorted sample; None when empty
    (the same definition as :func:`cmadev.report.comparison.percentile`)."""
    if not ordered:
        return None
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


__all__ = ["ALPHA", "Z_95", "nearest_rank", "quantile_interval", "wilson_interval"]
