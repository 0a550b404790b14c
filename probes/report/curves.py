"""Progress-versus-time curves: pure numpy over the samples table.

Why not a pivot: the exact median progress of 100,000 probes at 400 times would
need a 40 M cell matrix. A probe's progress is a step function, so each poll
adds "+1 probe at value v" where its step starts on the grid and "-1" where the
next poll takes over; a cumulative sum gives, per grid time, how many probes
show each value 0..100, and the median is read off those counts exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

VALUES = 101  # progress 0..100


def probe_keys(samples: pd.DataFrame, probes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per sample: index of its probe row in `probes` (-1 if none); per probe row: its group index; group names.

    Works on integer codes: each probe's (run_id, probe_id) is looked up once in
    the samples' categories, and the 4 M polls are mapped through an array.
    A repeated (run_id, probe_id) (bad data) maps to its first probe row.
    """
    run_codes, run_cats = _codes(samples["run_id"])
    probe_codes, probe_cats = _codes(samples["probe_id"])
    width = len(probe_cats) + 1  # codes are -1 for a missing id: shifted by one
    p_run = pd.Categorical(probes["run_id"].astype(str), categories=run_cats).codes.astype(np.int64)
    p_probe = pd.Categorical(probes["probe_id"].astype(str), categories=probe_cats).codes.astype(np.int64)
    found = (p_run >= 0) & (p_probe >= 0)
    p_key = (p_run + 1) * width + p_probe + 1
    s_key = (run_codes.astype(np.int64) + 1) * width + probe_codes + 1
    lookup = np.full((len(run_cats) + 1) * width, -1, dtype=np.int64)
    rows = np.flatnonzero(found)
    lookup[p_key[rows][::-1]] = rows[::-1]  # reversed: the first of repeated ids wins
    row = lookup[s_key]
    groups = sorted(probes["group"].unique())
    group_of_row = pd.Categorical(probes["group"], categories=groups).codes.astype(np.int64)
    return row, group_of_row, groups


def _codes(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and their (text) categories for a column, categorical or not."""
    cat = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
    return cat.cat.codes.to_numpy(), pd.Index(cat.cat.categories.astype(str))


def median_curves(t: np.ndarray, progress: np.ndarray, row: np.ndarray, group_of_row: np.ndarray,
                  n_groups: int, grid: np.ndarray) -> np.ndarray:
    """Exact median progress per group at each grid time, shape (n_groups, len(grid)).

    t, progress, row: one entry per poll (row = probe index, -1 = unknown probe).
    Before its first poll a probe counts as 0 %; after its last it keeps its last
    value (a completed probe stays at 100). Polls without a progress are skipped.
    Groups without probes give NaN.
    """
    ok = (row >= 0) & np.isfinite(t) & (progress >= 0) & (progress <= 100)
    if not ok.all():
        t, progress, row = t[ok], progress[ok], row[ok]
    v = progress.astype(np.int64)
    order = np.lexsort((t, row)) if not _sorted(row, t) else slice(None)
    t, v, row = t[order], v[order], row[order]
    n_grid = grid.size
    size = n_groups * (n_grid + 1) * VALUES
    if row.size == 0:
        return np.full((n_groups, n_grid), np.nan)
    first = np.empty(row.size, dtype=bool)
    first[0] = True
    np.not_equal(row[1:], row[:-1], out=first[1:])
    # a poll that repeats the previous value only extends its step: drop it, the counts are the same
    keep = first.copy()
    keep[1:] |= v[1:] != v[:-1]
    t, v, row, first = t[keep], v[keep], row[keep], first[keep]
    start = np.searchsorted(grid, t, side="left")
    end = np.empty_like(start)
    end[:-1] = start[1:]
    end[np.r_[first[1:], True]] = n_grid  # a probe's last value holds to the end
    base = group_of_row[row] * (n_grid + 1)
    # +1 where a step starts, -1 where the next takes over (empty steps cancel out)
    diff = np.bincount((base + start) * VALUES + v, minlength=size)
    diff -= np.bincount((base + end) * VALUES + v, minlength=size)
    # the 0 % stretch before each probe's first poll
    fb = base[first]
    diff += np.bincount(fb * VALUES, minlength=size)
    diff -= np.bincount((fb + start[first]) * VALUES, minlength=size)
    counts = np.cumsum(diff.reshape(n_groups, n_grid + 1, VALUES), axis=1)[:, :n_grid, :]
    return median_from_counts(counts)


def median_from_counts(counts: np.ndarray) -> np.ndarray:
    """Median value from per-value counts along the last axis (mean of the two middle ones)."""
    cum = np.cumsum(counts, axis=-1)
    n = cum[..., -1]
    lo_rank, hi_rank = (n + 1) // 2, n // 2 + 1
    lo = (cum < lo_rank[..., None]).sum(axis=-1)
    hi = (cum < hi_rank[..., None]).sum(axis=-1)
    med = (lo + hi) / 2.0
    return np.where(n > 0, med, np.nan)


def _sorted(row: np.ndarray, t: np.ndarray) -> bool:
    if row.size < 2:
        return True
    d_row = np.diff(row)
    return bool((d_row >= 0).all() and ((d_row > 0) | (np.diff(t) >= 0)).all())


def time_grid(probes: pd.DataFrame, points: int = 400) -> np.ndarray:
    """0 .. a bit past the slowest group's 99th-percentile end time."""
    end = probes["end_s"].where(probes["end_s"].notna(), probes.get("total_s"))
    per_group = end.groupby(probes["group"]).quantile(0.99)
    top = float(np.nanmax(per_group.to_numpy())) if per_group.notna().any() else 1.0
    return np.linspace(0.0, max(top * 1.05, 1e-3), points)
