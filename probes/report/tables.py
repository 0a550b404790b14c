"""Summary tables from the probes table: pure functions, frames in, frames out.

Why grouped by (target, label): a report usually sets local against prod or
before-deploy against after-deploy, and each side may hold several runs.
Percentiles are computed over the probes that have a value (a probe that never
reached 88 % has no t_88); total_s only over completed probes.
"""

from __future__ import annotations

import pandas as pd

from probes.analysis.metrics import milestone_columns

KEYS = ["target", "label"]
OUTCOMES = ["completed", "failed", "timeout", "rejected", "upload_error", "poll_error", "auth_error", "aborted"]
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
# where the time goes: band name -> (start column, end column)
BAND_EDGES = ["upload_s", "t_32", "t_42", "t_58", "t_88", "t_100"]


def timing_metrics(probes: pd.DataFrame) -> list[str]:
    """The time columns a summary reports, in reading order."""
    metrics = ["upload_s", *milestone_columns(probes)]
    metrics += [c for c in ("dwell_32", "stall_s", "transcription_s", "total_s") if c in probes.columns]
    return metrics


def _timing_values(probes: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    vals = probes[KEYS + metrics].copy()
    if "total_s" in metrics:
        vals.loc[probes["outcome"] != "completed", "total_s"] = float("nan")
    return vals


def timing_table(probes: pd.DataFrame) -> pd.DataFrame:
    """Long table, one row per (target, label, metric): n, p50, p90, p99, max (seconds)."""
    metrics = timing_metrics(probes)
    vals = _timing_values(probes, metrics)
    g = vals.groupby(KEYS, sort=True, dropna=False)[metrics]
    parts = {"n": g.count().stack(future_stack=True)}
    q = g.quantile(list(QUANTILES.values()))  # one cythonised pass for all quantiles
    for name, qv in QUANTILES.items():
        parts[name] = q.xs(qv, level=-1).stack(future_stack=True)
    parts["max"] = g.max().stack(future_stack=True)
    out = pd.DataFrame(parts)
    out.index.names = [*KEYS, "metric"]
    out = out.reset_index()
    out["n"] = out["n"].astype(int)
    order = {m: i for i, m in enumerate(metrics)}
    return out.sort_values(KEYS + ["metric"], key=lambda s: s.map(order) if s.name == "metric" else s,
                           kind="stable").reset_index(drop=True)


def outcome_table(probes: pd.DataFrame) -> pd.DataFrame:
    """Per (target, label): n, a count per outcome, failure share, poll errors, regressions."""
    g = probes.groupby(KEYS, sort=True, dropna=False)
    counts = pd.crosstab([probes[k] for k in KEYS], probes["outcome"].fillna("unknown"))
    known = [o for o in OUTCOMES if o in counts.columns] or ["completed"]
    extra = sorted(c for c in counts.columns if c not in OUTCOMES)
    counts = counts.reindex(columns=["completed", *[o for o in known + extra if o != "completed"]], fill_value=0)
    out = pd.DataFrame({"n": g.size()}).join(counts)
    out["failure_rate"] = 1 - out["completed"] / out["n"]
    out["poll_errors"] = g["poll_errors"].sum().astype(int)
    if "regressions" in probes.columns:
        out["regressions"] = g["regressions"].sum().astype(int)
    if "stall_progress" in probes.columns:
        out["stall_at_%"] = g["stall_progress"].agg(_mode)
    return out.reset_index()


def _mode(s: pd.Series) -> float:
    m = s.dropna().mode()
    return float(m.iloc[0]) if len(m) else float("nan")


def summary_table(probes: pd.DataFrame) -> pd.DataFrame:
    """One row per (target, label): outcome counts plus '<metric> p50|p90|p99|max|n' columns.

    The wide form, for CSV and for `probes run`'s terminal table; `timing_table`
    holds the same numbers one metric per row.
    """
    timing = timing_table(probes)
    wide = timing.pivot_table(index=KEYS, columns="metric", values=["n", *QUANTILES, "max"],
                              sort=False, dropna=False)
    metrics = list(dict.fromkeys(timing["metric"]))
    stats = ["n", *QUANTILES, "max"]
    wide = wide.reindex(columns=pd.MultiIndex.from_product([stats, metrics]))
    wide.columns = [f"{m} {s}" for s, m in wide.columns]
    wide = wide[[f"{m} {s}" for m in metrics for s in stats]].reset_index()
    return outcome_table(probes).merge(wide, on=KEYS, how="left")


def phase_bands(probes: pd.DataFrame) -> pd.DataFrame:
    """Median seconds per progress band per group, completed probes only.

    Band = t_next - t_prev between consecutive milestones (upload from upload_s);
    the medians of bands need not add up to the median total.
    """
    edges = [c for c in BAND_EDGES if c in probes.columns]
    done = probes[probes["outcome"] == "completed"]
    bands = pd.DataFrame({"group": done["group"]})
    if "upload_s" in edges:
        bands["upload"] = done["upload_s"]
    prev_name = "0"
    for a, b in zip(edges, edges[1:]):
        name = b[2:]
        bands[f"{prev_name}-{name} %"] = (done[b] - done[a]).clip(lower=0)
        prev_name = name
    out = bands.groupby("group", sort=True).median()
    out.insert(0, "n", bands.groupby("group", sort=True).size())
    return out


def run_table(runs_meta: list[dict], counts: dict[str, int]) -> pd.DataFrame:
    """Run metadata, one row per run, for the report's header."""
    rows = []
    for m in runs_meta:
        fx, cad = m.get("fixture") or {}, m.get("cadence") or {}
        cadence = cad.get("name", "") + (f" {cad['interval_s']} s" if cad.get("interval_s") else "")
        rows.append({
            "run_id": m.get("run_id"), "target": m.get("target"), "base_url": m.get("base_url"),
            "label": m.get("label"), "scenario": m.get("scenario"), "time_scale": m.get("time_scale"),
            "started_at": m.get("started_at"), "ended_at": m.get("ended_at") or "(not ended)",
            "fixture": fx.get("name"), "cadence": cadence, "n": m.get("n"),
            "probes read": counts.get(str(m.get("run_id")), 0), "concurrency": m.get("concurrency"),
        })
    return pd.DataFrame(rows)
