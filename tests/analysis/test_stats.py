import math

import numpy as np
import pytest

from probes.analysis import stats


def test_bootstrap_ci_covers_a_known_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(10, 1, 200)
    b = rng.normal(12, 1, 200)
    lo, hi = stats.bootstrap_median_diff_ci(a, b, seed=1)
    assert lo < 2 < hi and lo > 1
    assert stats.bootstrap_median_diff_ci(a, b, seed=1) == (lo, hi)  # seeded


def test_large_sample_bootstrap_agrees_with_direct_resampling(monkeypatch):
    x = np.random.default_rng(3).lognormal(0, 0.5, 1501)  # odd n: exact
    direct = stats.bootstrap_medians(x, 4000, np.random.default_rng(1))
    monkeypatch.setattr(stats, "EXACT_BOOTSTRAP_MAX_N", 10)
    binomial = stats.bootstrap_medians(x, 4000, np.random.default_rng(1))
    assert np.std(binomial) == pytest.approx(np.std(direct), rel=0.1)
    assert np.percentile(binomial, 97.5) == pytest.approx(np.percentile(direct, 97.5), rel=0.02)


def test_mann_whitney_ties_and_empty():
    assert stats.mann_whitney_p(np.zeros(10), np.zeros(10)) == 1.0
    assert math.isnan(stats.mann_whitney_p(np.array([]), np.ones(3)))
    assert stats.mann_whitney_p(np.arange(10.0), np.arange(10.0) + 100) < 0.001


@pytest.mark.parametrize("change,rel,p,verdict", [
    (1.0, 0.2, 0.01, stats.REGRESSION),
    (0.4, 0.2, 0.01, stats.NO_CHANGE),  # under max_abs
    (1.0, 0.05, 0.01, stats.NO_CHANGE),  # under max_rel
    (1.0, 0.2, 0.2, stats.NO_CHANGE),  # not significant
    (-1.0, -0.2, 0.01, stats.IMPROVEMENT),
    (52.0, math.inf, 0.001, stats.REGRESSION),  # from a zero baseline
])
def test_decide(change, rel, p, verdict):
    assert stats.decide(change, rel, p, stats.Thresholds()) == verdict


def test_compare_metric_too_few():
    r = stats.compare_metric("t", np.ones(2), np.ones(10))
    assert r.verdict == stats.TOO_FEW and r.n_baseline == 2 and r.method == "too few"


@pytest.mark.parametrize("base, cand, verdict", [
    ([9.8, 10.2, 10.5], [60.1, 62.5, 63.0], stats.REGRESSION),   # fast vs stale-32: clean separation
    ([9.8, 10.2, 10.5], [20.1, 19.6, 21.0], stats.REGRESSION),   # a 2x slowdown
    ([9.8, 10.2, 10.5], [10.6, 10.9, 11.1], stats.NO_CHANGE),    # separated but by less than 10 % and 0.5 s
    ([9.8, 10.2, 12.5], [20.1, 11.0, 21.0], stats.NO_CHANGE),    # overlap: no verdict from 3 probes
    ([60.1, 62.5, 63.0], [9.8, 10.2, 10.5], stats.IMPROVEMENT),
    # each margin alone is not enough: both must hold (README "Deploy check")
    ([20.0, 20.2, 20.5], [21.2, 21.5, 21.8], stats.NO_CHANGE),    # 0.7 s apart but only 3.4 % of 20.5 s
    ([1.0, 1.1, 1.2], [1.5, 1.6, 1.65], stats.NO_CHANGE),         # 25 % apart but only 0.3 s
    ([21.2, 21.5, 21.8], [20.0, 20.2, 20.5], stats.NO_CHANGE),    # the same, faster: no improvement either
    ([1.5, 1.6, 1.65], [1.0, 1.1, 1.2], stats.NO_CHANGE),
    ([4.0, 4.2, 4.4], [5.0, 5.3, 5.5], stats.REGRESSION),         # 0.6 s and 13.6 %: both margins
    ([5.0, 5.3, 5.5], [4.0, 4.2, 4.4], stats.IMPROVEMENT),
])
def test_few_probes_a_side_use_the_separation_rule(base, cand, verdict):
    r = stats.compare_metric("total_s", np.array(base), np.array(cand))
    assert (r.method, r.verdict) == ("separation", verdict)
    if verdict != stats.NO_CHANGE:
        assert r.p_value == pytest.approx(1 / 20)  # the exact one-sided permutation p of 3 against 3


def test_few_probes_failure_rate_only_all_against_none():
    assert stats.compare_failure_rate(0, 3, 3, 3).verdict == stats.REGRESSION
    assert stats.compare_failure_rate(0, 3, 2, 3).verdict == stats.NO_CHANGE
    assert stats.compare_failure_rate(3, 3, 0, 3).verdict == stats.IMPROVEMENT


def test_failure_rate_rule():
    th = stats.Thresholds()
    assert stats.compare_failure_rate(0, 20, 8, 20, th).verdict == stats.REGRESSION
    assert stats.compare_failure_rate(0, 5, 1, 5, th).verdict == stats.NO_CHANGE  # 20 pts but p = 1
    assert stats.compare_failure_rate(0, 5, 5, 5, th).verdict == stats.REGRESSION
    assert stats.compare_failure_rate(8, 20, 0, 20, th).verdict == stats.IMPROVEMENT
    assert stats.compare_failure_rate(0, 2, 2, 2, th).verdict == stats.TOO_FEW


def test_adjust_for_many_keeps_a_real_shift_and_drops_a_lone_chance_hit():
    from probes.analysis.stats import adjust_for_many, compare_metric

    rng = np.random.default_rng(3)
    base = rng.normal(10, 0.3, 6)
    lone = compare_metric("t_88", base, base + 1.2)            # p = 0.0022 on its own
    noise = [compare_metric(f"m{i}", base, rng.permutation(base)) for i in range(11)]  # p = 1
    adjusted = adjust_for_many([lone, *noise])
    assert lone.verdict == "regression" and adjusted[0].p_value > 0.02  # 0.0022 x 12
    assert adjusted[0].verdict == "no change"
    shifted = [compare_metric(f"m{i}", base, base + 1.2 + 0.01 * i) for i in range(12)]
    assert all(r.verdict == "regression" for r in adjust_for_many(shifted))
