"""`probes trend`: canary runs over time from the history store, as trend.html (self-contained) + PNGs.

    build_trend(store, target, since_s, out) -> out/trend.html

The page shows, per target, p50/p90 of the total, of the time held at 32 %
and of the transcription phase per run, the SLO thresholds (from the newest
judged run) as lines, failed runs marked, deploys as vertical lines, and the
last 20 runs. A deploy is a run labelled after-deploy that follows one that
was not, or a run whose fingerprint (health body + progress-state signature)
differs from the previous run of its target. Every string from the history is
HTML-escaped; the PNGs are inlined as data URIs, so the file can be mailed.
"""

from __future__ import annotations

import html
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from probes.errors import UsageError
from probes.report.render import CSS, data_uri, fmt, html_table
from probes.report.trend_plots import FIGURES, plot_metric, target_colours

LAST_RUNS = 20
DEPLOY_LABEL = "after-deploy"


# --- pure: tables from history rows -------------------------------------------------------------------------


def runs_frame(columns: list[str], rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """The history's trend rows as a DataFrame, oldest first."""
    df = pd.DataFrame.from_records(rows, columns=columns)
    if not df.empty:
        df["started_ts"] = df["started_ts"].astype(float)
    return df


def deploy_marks(runs: pd.DataFrame) -> pd.DataFrame:
    """One row (run_id, target, started_ts, reason) per run that starts a new deploy, per target.

    >>> df = pd.DataFrame({"run_id": list("abcd"), "target": ["t"] * 4, "started_ts": [1.0, 2.0, 3.0, 4.0],
    ...     "label": ["canary", "before-deploy", "after-deploy", "canary"],
    ...     "fingerprint_hash": ["f1", "f1", "f1", "f2"], "signature_hash": ["s1", "s1", "s1", "s1"]})
    >>> deploy_marks(df)[["run_id", "reason"]].values.tolist()
    [['c', 'labelled after-deploy'], ['d', 'new fingerprint (health)']]
    """
    cols = ["run_id", "target", "started_ts", "reason"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    df = runs.sort_values(["target", "started_ts", "run_id"], kind="stable")
    by_target = df.groupby("target", sort=False)

    def changed(col: str) -> pd.Series:
        # a run without a fingerprint (unreachable) is skipped: compare with the last run that had one
        prev = by_target[col].ffill().groupby(df["target"], sort=False).shift()
        return df[col].notna() & prev.notna() & (df[col] != prev)

    label = df["label"].fillna("").astype(str)
    prev_label = by_target["label"].shift().fillna("").astype(str)
    after = label.str.startswith(DEPLOY_LABEL) & ~prev_label.str.startswith(DEPLOY_LABEL) & by_target.cumcount().gt(0)
    signature = changed("signature_hash")
    health = changed("fingerprint_hash") & ~signature  # the fingerprint holds the signature: say which part moved
    flags = {"labelled after-deploy": after, "new progress-state signature": signature,
             "new fingerprint (health)": health}
    marked = after | signature | health
    picked = df.loc[marked, cols[:3]].copy()
    picked["reason"] = ["; ".join(text for text, flag in zip(flags, row) if flag)
                        for row in zip(*(mask[marked] for mask in flags.values()))]
    return picked.reset_index(drop=True)


def slo_lines(slo_results: list[dict[str, Any]]) -> dict[str, list[tuple[str, float]]]:
    """{metric: [(stat, threshold), ...]} of a run's percentile SLOs (the `completed` rate is not a line)."""
    out: dict[str, list[tuple[str, float]]] = {}
    for r in slo_results:
        if r.get("stat") in ("p50", "p90", "p99", "max") and isinstance(r.get("threshold"), (int, float)):
            out.setdefault(str(r.get("metric")), []).append((str(r["stat"]), float(r["threshold"])))
    return out


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def last_runs_table(rows: list[dict[str, Any]], deploys: pd.DataFrame) -> pd.DataFrame:
    """The newest runs as the page's table (newest first)."""
    reason = dict(zip(deploys["run_id"], deploys["reason"])) if not deploys.empty else {}
    table = []
    for r in rows:
        outcomes = r.get("outcomes") or {}
        table.append({
            "started (UTC)": _utc(r["started_ts"]), "target": r["target"], "label": r.get("label") or "",
            "n": r["n"], "outcomes": ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "none",
            "total p50": r.get("total_s_p50"), "total p90": r.get("total_s_p90"),
            "at 32 % p90": r.get("dwell_32_p90"), "transcription p90": r.get("transcription_s_p90"),
            "SLO": {True: "kept", False: "broken", None: "–"}[r.get("slo_ok")],
            "run": "ok" if r.get("ok") else "FAILED", "exit": r.get("exit_code"),
            "fingerprint": (r.get("fingerprint_hash") or "")[:8], "deploy": reason.get(r["run_id"], ""),
            "run directory": Path(r["run_dir"]).name + (" (pruned)" if r.get("pruned_at") else "")
            if r.get("run_dir") else "–",
        })
    return pd.DataFrame(table)


def target_summary(runs: pd.DataFrame, deploys: pd.DataFrame, slo: dict[str, dict[str, list]]) -> pd.DataFrame:
    """Per target: runs, failed runs, deploys, the median of the per-run p90 total, the SLO thresholds."""
    rows = []
    for target, group in runs.groupby("target", sort=True):
        failed = int((~group["ok"].astype(bool)).sum())
        thresholds = "; ".join(f"{m} {s} <= {t:g}" for m, lines in slo.get(target, {}).items() for s, t in lines)
        rows.append({"target": target, "runs": len(group), "failed": failed,
                     "healthy": f"{1 - failed / len(group):.0%}", "deploys": int((deploys["target"] == target).sum()),
                     "median total p90": group["total_s_p90"].median(), "SLO lines": thresholds or "–"})
    return pd.DataFrame(rows)


# --- I/O: query, draw, write --------------------------------------------------------------------------------


def render(title: str, window: str, summary: pd.DataFrame, figures: dict[str, Path], last: pd.DataFrame,
           notes: list[str]) -> str:
    figs = "".join(f"<h3>{html.escape(FIGURES[k])}</h3><img alt=\"{html.escape(FIGURES[k])}\" src=\"{data_uri(p)}\">"
                   for k, p in figures.items())
    note_html = "".join(f'<div class="note">{html.escape(n)}</div>' for n in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(window)}</p>
{note_html}
<h2>Targets</h2>{html_table(summary, text_cols=1) if not summary.empty else "<p>No runs in this window.</p>"}
<p>Times are per-run statistics of the run's probes, in seconds (a time-scaled simulator's in scenario seconds);
dotted lines are SLO thresholds, red crosses failed runs (SLO broken or target unreachable), dashed vertical lines
deploys: a run labelled after-deploy, or a new fingerprint (health body or progress-state signature).</p>
<h2>Figures</h2>{figs or "<p>No figures: no runs in this window.</p>"}
<h2>Last {LAST_RUNS} runs</h2>{html_table(last, text_cols=3) if not last.empty else "<p>None.</p>"}
</body></html>
"""


def build_trend(store: Any, target: str | None, since_s: float, out: Path, now: float | None = None) -> Path:
    """Query the history for runs started within since_s seconds, draw, write out/trend.html; return its path."""
    now = time.time() if now is None else now
    since_ts = now - since_s
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create trend directory {out}: {exc.strerror or exc}") from None
    runs = runs_frame(*store.trend_table(target, since_ts))
    deploys = deploy_marks(runs)
    targets = sorted(runs["target"].unique()) if not runs.empty else []
    slo = {t: slo_lines(store.latest_slo(t)) for t in targets}
    colours = target_colours(targets)
    figures: dict[str, Path] = {}
    for metric in FIGURES if not runs.empty else ():
        lines = {t: slo[t].get(metric, []) for t in targets}
        figures[metric] = plot_metric(runs, deploys, lines, metric, colours, out / f"trend-{metric}.png")
    last = last_runs_table(store.last_runs(target, LAST_RUNS, since_ts), deploys)
    title = f"Canary trend: {target}" if target else "Canary trend: all targets"
    window = (f"Runs started {_utc(since_ts)} to {_utc(now)} UTC ({len(runs)} runs) from {store.display}; "
              f"generated {_utc(now)} UTC.")
    notes = [] if not runs.empty else [f"No canary runs{' of ' + target if target else ''} in this window."]
    path = out / "trend.html"
    path.write_text(render(title, window, target_summary(runs, deploys, slo), figures, last, notes), encoding="utf-8")
    return path
