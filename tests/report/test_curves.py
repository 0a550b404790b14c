"""The exact median progress curve against a brute-force evaluation."""

import numpy as np

from probes.report.curves import median_curves, median_from_counts


def brute(t, prog, row, group_of_row, n_groups, grid):
    out = np.full((n_groups, grid.size), np.nan)
    for g in range(n_groups):
        probes = np.flatnonzero(group_of_row == g)
        values = np.zeros((probes.size, grid.size))
        for i, p in enumerate(probes):
            m = (row == p) & (prog >= 0)
            tp, vp = t[m], prog[m]
            order = np.argsort(tp, kind="stable")
            tp, vp = tp[order], vp[order]
            for j, x in enumerate(grid):
                seen = np.flatnonzero(tp <= x)
                values[i, j] = vp[seen[-1]] if seen.size else 0
        if probes.size:
            out[g] = np.median(values, axis=0)
    return out


def test_median_curve_is_exact():
    rng = np.random.default_rng(7)
    n_probes, n_groups = 25, 3
    rows, ts, ps = [], [], []
    for p in range(n_probes):
        k = rng.integers(1, 12)
        t = np.sort(rng.uniform(0, 10, k))
        v = np.maximum.accumulate(rng.integers(0, 101, k))
        v[rng.random(k) < 0.1] = -1  # polls without a progress value
        rows += [p] * k
        ts += list(t)
        ps += list(v)
    row, t, prog = np.array(rows), np.array(ts), np.array(ps, dtype=float)
    shuffle = rng.permutation(row.size)  # input order must not matter
    group_of_row = rng.integers(0, n_groups, n_probes)
    grid = np.linspace(0, 11, 60)
    got = median_curves(t[shuffle], prog[shuffle], row[shuffle], group_of_row, n_groups, grid)
    want = brute(t, prog, row, group_of_row, n_groups, grid)
    np.testing.assert_array_equal(got, want)


def test_median_from_counts_even_and_empty():
    counts = np.zeros((3, 101), dtype=int)
    counts[0, [10, 20]] = 1  # even n: mean of the two middle values
    counts[1, 32] = 5
    got = median_from_counts(counts)
    assert got[0] == 15 and got[1] == 32 and np.isnan(got[2])


def test_probe_keys_map_every_poll_to_its_probe(fast_run, stale_run):
    from probes.report.curves import probe_keys
    from probes.report.load import load_runs

    _, probes, samples = load_runs([fast_run, stale_run])
    shuffled = probes.sample(frac=1, random_state=0).reset_index(drop=True)
    row, group_of_row, groups = probe_keys(samples, shuffled)
    assert (row >= 0).all()
    assert (shuffled["probe_id"].to_numpy()[row] == samples["probe_id"].astype(str).to_numpy()).all()
    assert (shuffled["run_id"].to_numpy()[row] == samples["run_id"].astype(str).to_numpy()).all()
    assert [groups[g] for g in group_of_row] == shuffled["group"].tolist()
