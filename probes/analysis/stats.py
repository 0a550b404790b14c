"""Pure statistics for comparing two runs: arrays in, numbers and verdicts out.

Why these tests: probe timings are skewed and often bimodal (a plateau either
happens or not), so the comparison uses medians, a bootstrap interval for the
change in median and the rank-based Mann-Whitney U test, never means and t.

With 5 or more probes a side a metric is judged by the rank test; with 3 or 4
(a deploy check's size, where no rank test can reach p < 0.05 two-sided) only
a clean separation counts: every candidate probe slower than every baseline
probe by more than both thresholds. That is the exact one-sided permutation
test at its smallest p (1/20 for 3 against 3) with a practical margin on top.

    compare_metric(name, baseline, candidate, thresholds)  -> MetricResult
    compare_failure_rate(b_failed, b_n, c_failed, c_n, thresholds) -> FailureResult
    bootstrap_median_diff_ci(a, b)   95 % interval of median(b) - median(a)
    mann_whitney_p(a, b)             two-sided p-value
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np


def _scipy_stats():
    """scipy.stats, imported on first use: it costs ~0.6 s, which a report of one run or `probes run`
    without a baseline never needs (probes.report.build starts it early, in its judging thread)."""
    from scipy import stats

    return stats

REGRESSION, IMPROVEMENT, NO_CHANGE, TOO_FEW = "regression", "improvement", "no change", "too few"
EXACT_BOOTSTRAP_MAX_N = 1000  # above this, draw the resample median's rank from its binomial law
BATCH_CELLS = 4_000_000  # resample values held at once (~32 MB)


@dataclass(frozen=True)
class Thresholds:
    """When a change counts: worse p50 by > max_rel AND > max_abs seconds AND p < alpha.

    Failure rate: candidate's non-completed share higher by >= max_fail_points
    (0.20 = 20 points) with a Fisher exact p < alpha; min_n probes a side.
    """

    max_rel: float = 0.10
    max_abs: float = 0.5
    alpha: float = 0.05
    min_n: int = 5
    min_separation_n: int = 3  # below min_n, from this many a side: the separation rule
    max_fail_points: float = 0.20
    resamples: int = 2000
    seed: int = 0


@dataclass(frozen=True)
class MetricResult:
    metric: str
    n_baseline: int
    n_candidate: int
    p50_baseline: float
    p50_candidate: float
    p90_baseline: float
    p90_candidate: float
    change: float  # p50 candidate - p50 baseline, seconds (positive = slower)
    rel_change: float  # change / p50 baseline (inf when the baseline p50 is 0)
    ci_low: float
    ci_high: float
    p_value: float
    verdict: str
    method: str = "rank test"  # or "separation" (3-4 probes a side), "too few"


@dataclass(frozen=True)
class FailureResult:
    n_baseline: int
    n_candidate: int
    failed_baseline: int
    failed_candidate: int
    rate_baseline: float
    rate_candidate: float
    p_value: float
    verdict: str


def _clean(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x[np.isfinite(x)]


def quantile(x: np.ndarray, q: float) -> float:
    x = _clean(x)
    return float(np.quantile(x, q)) if x.size else float("nan")


def mann_whitney_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value; 1.0 when it is undefined (all values tied, empty side)."""
    a, b = _clean(a), _clean(b)
    if not a.size or not b.size:
        return float("nan")
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0
    p = float(_scipy_stats().mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return p if math.isfinite(p) else 1.0


def bootstrap_medians(x: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of `resamples` bootstrap resamples of x, vectorised.

    Small samples are resampled directly, in batches that bound memory. For
    large ones the resample median is the order statistic x_(k) of the sorted
    data, whose rank has a known law: P(rank <= j) = P(Binomial(n, (j+1)/n) >= k+1);
    drawing the rank from it is exact for odd n (lower median for even n, a
    negligible difference at n > 1000) and costs O(n + resamples).
    """
    x = np.sort(_clean(x))
    n = x.size
    if n == 0:
        return np.full(resamples, np.nan)
    if n <= EXACT_BOOTSTRAP_MAX_N:
        out = np.empty(resamples)
        batch = max(1, BATCH_CELLS // n)
        for start in range(0, resamples, batch):
            stop = min(start + batch, resamples)
            idx = rng.integers(0, n, size=(stop - start, n))
            out[start:stop] = np.median(x[idx], axis=1)
        return out
    k = (n - 1) // 2
    # P(at least k+1 draws <= x_(j)) rises from 0 to 1 within a few sqrt(n) of the middle: evaluate it
    # there only (scipy's binomial tail costs ~1 us a point; 50,000 of them per side added up).
    half = int(12 * math.sqrt(n)) + 1
    lo, hi = max(0, k - half), min(n, k + half)
    cdf = np.zeros(n)
    cdf[lo:hi] = _scipy_stats().binom.sf(k, n, np.arange(lo + 1, hi + 1) / n)
    cdf[hi:] = 1.0
    ranks = np.searchsorted(cdf, rng.random(resamples), side="left")
    return x[np.minimum(ranks, n - 1)]


def bootstrap_median_diff_ci(a: np.ndarray, b: np.ndarray, *, resamples: int = 2000, level: float = 0.95,
                             seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of median(b) - median(a), seeded so reruns agree."""
    a, b = _clean(a), _clean(b)
    if not a.size or not b.size:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    diff = bootstrap_medians(b, resamples, rng) - bootstrap_medians(a, resamples, rng)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(diff, [tail, 100 - tail])
    return float(lo), float(hi)


def relative_change(base: float, change: float) -> float:
    if base == 0:
        return 0.0 if change == 0 else math.copysign(math.inf, change)
    return change / abs(base)


def decide(change: float, rel: float, p: float, th: Thresholds) -> str:
    """Regression/improvement only when the p50 moved by more than both thresholds and p < alpha."""
    significant = math.isfinite(p) and p < th.alpha
    if significant and change > th.max_abs and rel > th.max_rel:
        return REGRESSION
    if significant and -change > th.max_abs and -rel > th.max_rel:
        return IMPROVEMENT
    return NO_CHANGE


def compare_metric(metric: str, baseline: np.ndarray, candidate: np.ndarray, th: Thresholds = Thresholds()
                   ) -> MetricResult:
    """All figures and the verdict for one timing metric (seconds, lower is better)."""
    a, b = _clean(baseline), _clean(candidate)
    p50a, p50b = quantile(a, 0.5), quantile(b, 0.5)
    change = p50b - p50a
    rel = relative_change(p50a, change) if a.size and b.size else float("nan")
    method = "rank test"
    if min(a.size, b.size) >= th.min_n:
        ci = bootstrap_median_diff_ci(a, b, resamples=th.resamples, seed=th.seed)
        p = mann_whitney_p(a, b)
        verdict = decide(change, rel, p, th)
    elif min(a.size, b.size) >= th.min_separation_n:
        ci, method = (float("nan"), float("nan")), "separation"
        p, verdict = separation(a, b, th)
    else:
        ci, p, verdict, method = (float("nan"), float("nan")), float("nan"), TOO_FEW, "too few"
    return MetricResult(metric, int(a.size), int(b.size), p50a, p50b, quantile(a, 0.9), quantile(b, 0.9),
                        change, rel, ci[0], ci[1], p, verdict, method)


def separation(a: np.ndarray, b: np.ndarray, th: Thresholds) -> tuple[float, str]:
    """(p, verdict) of the few-probes rule: a verdict only when the two samples do not overlap by a margin.

    p is the exact one-sided permutation p-value of a complete separation, 1 / C(na + nb, na)
    (0.05 for 3 against 3), or nan when the samples overlap.
    """
    gap_up = float(b.min() - a.max())  # every candidate slower than every baseline probe, by this much
    gap_down = float(a.min() - b.max())
    p = 1.0 / math.comb(a.size + b.size, a.size)
    if gap_up > th.max_abs and relative_change(float(a.max()), gap_up) > th.max_rel:
        return p, REGRESSION
    if gap_down > th.max_abs and relative_change(float(a.min()), -gap_down) < -th.max_rel:
        return p, IMPROVEMENT
    return (p if gap_up > 0 or gap_down > 0 else float("nan")), NO_CHANGE


def adjust_for_many(results: list[MetricResult], th: Thresholds = Thresholds()) -> list[MetricResult]:
    """Benjamini-Hochberg-adjust the metrics' p-values together, and decide on the adjusted ones.

    A dozen correlated metrics each tested at alpha would call two runs of the same build
    different far more often than alpha (two runs of `fast`, 6 probes each, did).
    """
    tested = [i for i, r in enumerate(results) if math.isfinite(r.p_value) and r.method == "rank test"]
    if len(tested) < 2:
        return results
    adjusted = _scipy_stats().false_discovery_control([results[i].p_value for i in tested], method="bh")
    out = list(results)
    for i, p in zip(tested, adjusted):
        r = results[i]
        out[i] = replace(r, p_value=float(p), verdict=decide(r.change, r.rel_change, float(p), th))
    return out


def compare_failure_rate(failed_a: int, n_a: int, failed_b: int, n_b: int, th: Thresholds = Thresholds()
                         ) -> FailureResult:
    """Failure share each side; a verdict when it moved >= max_fail_points with Fisher p < alpha."""
    ra = failed_a / n_a if n_a else float("nan")
    rb = failed_b / n_b if n_b else float("nan")
    if min(n_a, n_b) < th.min_separation_n:
        return FailureResult(n_a, n_b, failed_a, failed_b, ra, rb, float("nan"), TOO_FEW)
    if min(n_a, n_b) < th.min_n:  # few probes: only all-failed against none-failed counts
        p = 1.0 / math.comb(n_a + n_b, n_a)
        if failed_b == n_b and failed_a == 0:
            return FailureResult(n_a, n_b, failed_a, failed_b, ra, rb, p, REGRESSION)
        if failed_a == n_a and failed_b == 0:
            return FailureResult(n_a, n_b, failed_a, failed_b, ra, rb, p, IMPROVEMENT)
        return FailureResult(n_a, n_b, failed_a, failed_b, ra, rb, float("nan"), NO_CHANGE)
    table = [[failed_a, n_a - failed_a], [failed_b, n_b - failed_b]]
    p = float(_scipy_stats().fisher_exact(table, alternative="two-sided").pvalue)
    verdict = NO_CHANGE
    if p < th.alpha and rb - ra >= th.max_fail_points - 1e-12:
        verdict = REGRESSION
    elif p < th.alpha and ra - rb >= th.max_fail_points - 1e-12:
        verdict = IMPROVEMENT
    return FailureResult(n_a, n_b, failed_a, failed_b, ra, rb, p, verdict)
