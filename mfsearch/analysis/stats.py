"""The statistics behind a verdict (pure functions on lists of numbers).

- ``mean_interval``: mean and the two-sided 95 % Student-t interval over seeds. With 3 seeds the
  t quantile is 4.30, so an interval is honest about how little 3 numbers say.
- ``paired_comparison``: "A beats X" across the seeds both were trained with. The seeds are shared
  (same initialisation seed, same data order and augmentation draws for every architecture), so the
  per-seed differences remove what the seed does to both; the test is the paired t-test on those
  differences, two-sided at 5 %, reported as the 95 % interval of the mean difference. Why t and
  not Wilcoxon's signed-rank test: with 3 to 5 seeds the signed-rank test cannot reach p < 0.05 at
  all (its smallest two-sided p with n = 5 is 0.0625), so it could never confirm anything.
- ``kendall_tau``: rank agreement (tau-b, ties allowed) between two orderings of the same items.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

LEVEL = 0.95
CONFIRMED, REFUTED, UNCONFIRMED = "confirmed", "refuted", "unconfirmed"


@dataclasses.dataclass(frozen=True)
class Interval:
    mean: float
    low: float          # nan with fewer than 2 values
    high: float
    sd: float           # sample standard deviation (ddof 1); nan with fewer than 2 values
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def text(self, digits: int = 2) -> str:
        if self.n < 2 or math.isnan(self.low):
            return f"{self.mean:.{digits}f} (1 seed)"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"


def _t_quantile(df: int, level: float = LEVEL) -> float:
    from scipy.stats import t
    return float(t.ppf(0.5 + level / 2, df))


def mean_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean and Student-t ``level`` interval of ``values`` (independent draws, e.g. seeds)."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("no values")
    n = len(xs)
    mean = sum(xs) / n
    if n < 2:
        return Interval(mean, math.nan, math.nan, math.nan, n)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = _t_quantile(n - 1, level) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, sd, n)


@dataclasses.dataclass(frozen=True)
class Comparison:
    difference: Interval   # of a - b over the shared seeds
    p_value: float         # two-sided paired t-test; nan with fewer than 2 seeds
    verdict: str           # confirmed (a better), refuted (b better), unconfirmed (cannot tell)


def paired_comparison(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Comparison:
    """Is ``a`` larger than ``b``? ``a[i]`` and ``b[i]`` were trained with the same seed.

    confirmed: the whole interval of the mean difference lies above 0; refuted: below 0;
    unconfirmed: it contains 0 (or there are fewer than 2 seeds).
    """
    if len(a) != len(b):
        raise ValueError(f"paired values need the same seeds: {len(a)} vs {len(b)}")
    diffs = [float(x) - float(y) for x, y in zip(a, b)]
    interval = mean_interval(diffs, level)
    p = math.nan
    if interval.n >= 2:
        if interval.sd == 0:
            p = 0.0 if interval.mean != 0 else 1.0
        else:
            from scipy.stats import t
            stat = interval.mean / (interval.sd / math.sqrt(interval.n))
            p = float(2 * t.sf(abs(stat), interval.n - 1))
    if interval.n >= 2 and interval.low > 0:
        verdict = CONFIRMED
    elif interval.n >= 2 and interval.high < 0:
        verdict = REFUTED
    else:
        verdict = UNCONFIRMED
    return Comparison(interval, p, verdict)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b between two scorings of the same items (nan with fewer than 2 items)."""
    if len(x) != len(y):
        raise ValueError("kendall_tau needs two scorings of the same items")
    if len(x) < 2:
        return math.nan
    from scipy.stats import kendalltau
    return float(kendalltau(list(x), list(y)).statistic)


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    if len(x) != len(y):
        raise ValueError("spearman_rho needs two scorings of the same items")
    if len(x) < 2:
        return math.nan
    from scipy.stats import spearmanr
    return float(spearmanr(list(x), list(y)).statistic)
