"""Integer helpers the layout rules and the search use to name legal parallel sizes."""

from __future__ import annotations


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def nearest(value: int, legal: list[int]) -> str:
    """The legal values just below and above `value`, for a hint ("4 or 8")."""
    below = [v for v in legal if v <= value]
    above = [v for v in legal if v >= value]
    picks = sorted(set(([max(below)] if below else []) + ([min(above)] if above else [])))
    return " or ".join(map(str, picks)) if picks else "none"
