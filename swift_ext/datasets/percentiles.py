"""The one definition of a percentile in swift-ext (data check, data stats, the planner's data line).

Nearest rank, rounding up: the q-th percentile is the sorted value at index ceil(q/100 * (n - 1)) -
numpy's method="higher". Chosen over numpy's default (linear interpolation) because a percentile is
then a length some row really has (a whole token count, not a fraction between two rows) and never
lower than the interpolated one, so a budget sized from a percentile is not undersized.
Integer arithmetic, no numpy: `data check` does not pay numpy's import for it.
"""

from __future__ import annotations

from typing import Iterable


def percentiles(values: Iterable[int], quantiles: tuple[int, ...] = (50, 90, 99), summary: bool = False
                ) -> dict | None:
    """{"p50": ..., ..., "max": ...} (with summary: also "mean" before "max" and "min" after it); None
    for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    last = len(ordered) - 1
    out: dict = {f"p{q}": ordered[-(-q * last // 100)] for q in quantiles}
    if summary:
        out["mean"] = round(sum(ordered) / len(ordered), 1)
    out["max"] = ordered[-1]
    if summary:
        out["min"] = ordered[0]
    return out
