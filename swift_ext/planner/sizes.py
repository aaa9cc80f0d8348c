"""Integer helpers the layout rules and the search use to name legal parallel sizes."""

from __future__ import annotations

import math


def divisors(n: int) -> list[int]:
    # pairs up to sqrt(n): a hostile size (a config's 1e26 experts, a huge world) must not walk every integer
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0] if n > 0 else []
    return sorted(set(small + [n // d for d in small]))


def nearest(value: int, legal: list[int]) -> str:
    """The legal values just below and above `value`, for a hint ("4 or 8")."""
    below = [v for v in legal if v <= value]
    above = [v for v in legal if v >= value]
    picks = sorted(set(([max(below)] if below else []) + ([min(above)] if above else [])))
    return " or ".join(map(str, picks)) if picks else "none"
