"""`probes trend`: canary runs over time from the history store, as trend.html (self-contained) + PNGs.

    build_trend(store, target, since_s, out) -> out/trend.html

The page shows, per target, p50/p90 of the total, of the time held at 32 %
and of the transcription phase per run, the SLO thresholds (from the newest
judged run) as lines, failed runs marked, deploys as vertical lines, and the
last 20 runs. A deploy is a run labelled after-deploy that follows one that
was not, or a run whose fingerprint (health body + progress-state signature)
differs from the previous fingerprinted run of its target. Every string from
the history is HTML-escaped; the PNGs are inlined as data URIs.

Why numpy and not pandas here: a year of 5-minute runs must render within 2 s
in a fresh process, and importing pandas alone costs 0.3-0.7 s on a small
machine. For the same reason the page has its own small table writer instead
of probes.report.render's (which is built on DataFrames).
"""

from __future__ import annotations

import base64
import html
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from probes.errors import UsageError
from probes.report.style import CSS

LAST_RUNS = 20
DEPLOY_LABEL = "after-deploy"
FIGURES = {
    "total_s": "Total time per canary run (completed probes)",
    "dwell_32": "Time held at 32 % per canary run",
    "transcription_s": "Transcription phase per canary run (first poll >= 20 % to first poll past 55 %)",
}
# --- pure: columns, deploys, tables -------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendRuns:
    """The window's runs as columns, by target then oldest first; numbers are float arrays (NaN: not observed)."""

    target: np.ndarray  # object array of str
    started_ts: np.ndarray
    ok: np.ndarray  # bool
    values: dict[str, np.ndarray]  # "total_s_p90" -> one value per run
    label: list[Any]
    fingerprint_hash: list[Any]
    signature_hash: list[Any]

    def __len__(self) -> int:
        return len(self.started_ts)

    def targets(self) -> list[str]:
        return sorted(set(self.target.tolist()))


def trend_runs(columns: list[str], rows: list[tuple[Any, ...]]) -> TrendRuns:
    """The history's trend rows (see HistoryStore.trend_table) as columns.

    One 2-D object array sliced per column: half the time of transposing 105,120 tuples in Python.
    """
    table = np.array(rows, dtype=object).reshape(len(rows), len(columns))
    col = {name: table[:, i] for i, name in enumerate(columns)}
    numbers = [c for c in columns if c.endswith(("_p50", "_p90", "_max"))]
    return TrendRuns(
        target=col["target"], started_ts=col["started_ts"].astype(float), ok=col["ok"].astype(bool),
        values={c: col[c].astype(float) for c in numbers},  # None (not observed) becomes NaN
        label=col["label"].tolist(), fingerprint_hash=col["fingerprint_hash"].tolist(),
        signature_hash=col["signature_hash"].tolist(),
    )


@dataclass(frozen=True)
class Deploy:
    target: str
    started_ts: float
    reason: str


def deploy_marks(runs: Iterable[tuple[str, float, str | None, str | None, str | None]]) -> list[Deploy]:
    """The runs that start a new deploy, from (target, started_ts, label, fingerprint_hash, signature_hash)
    in time order per target.

    >>> [d.reason for d in deploy_marks([("t", 1, "canary", "f1", "s1"), ("t", 2, "after-deploy", "f1", "s1"),
    ...                                  ("t", 3, "canary", None, None), ("t", 4, "canary", "f2", "s1")])]
    ['labelled after-deploy', 'new fingerprint (health)']
    """
    last: dict[str, tuple[str, str | None, str | None]] = {}  # target -> (label, last fingerprint, last signature)
    marks = []
    for target, started_ts, label, fingerprint, signature in runs:
        label = label or ""
        reasons = []
        if target in last:
            prev_label, prev_fp, prev_sig = last[target]
            if label.startswith(DEPLOY_LABEL) and not prev_label.startswith(DEPLOY_LABEL):
                reasons.append("labelled after-deploy")
            # a run without a fingerprint (unreachable) is skipped: compare with the last run that had one
            new_sig = signature is not None and prev_sig is not None and signature != prev_sig
            if new_sig:
                reasons.append("new progress-state signature")
            elif fingerprint is not None and prev_fp is not None and fingerprint != prev_fp:
                reasons.append("new fingerprint (health)")  # the fingerprint holds the signature: say which moved
        prev = last.get(target, ("", None, None))
        last[target] = (label, fingerprint if fingerprint is not None else prev[1],
                        signature if signature is not None else prev[2])
        if reasons:
            marks.append(Deploy(target, float(started_ts), "; ".join(reasons)))
    return marks


def deploys_of(runs: TrendRuns) -> list[Deploy]:
    return deploy_marks(zip(runs.target.tolist(), runs.started_ts.tolist(), runs.label, runs.fingerprint_hash,
                            runs.signature_hash))


def slo_lines(slo_results: list[dict[str, Any]]) -> dict[str, list[tuple[str, float]]]:
    """{metric: [(stat, threshold), ...]} of a run's percentile SLOs (the `completed` rate is not a line)."""
    out: dict[str, list[tuple[str, float]]] = {}
    for r in slo_results:
        if r.get("stat") in ("p50", "p90", "p99", "max") and isinstance(r.get("threshold"), (int, float)):
            out.setdefault(str(r.get("metric")), []).append((str(r["stat"]), float(r["threshold"])))
    return out


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def cell(value: Any) -> str:
    """One table cell as text: seconds with 2 decimals, missing as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


LAST_RUNS_HEADER = ["started (UTC)", "target", "label", "n", "outcomes", "total p50", "total p90", "at 32 % p90",
                    "transcription p90", "SLO", "run", "exit", "fingerprint", "deploy", "run directory"]


def last_runs_rows(rows: list[dict[str, Any]], deploys: list[Deploy]) -> list[list[Any]]:
    """The newest runs as the page's table rows (newest first)."""
    reason = {(d.target, d.started_ts): d.reason for d in deploys}
    table = []
    for r in rows:
        outcomes = r.get("outcomes") or {}
        run_dir = Path(r["run_dir"]).name + (" (pruned)" if r.get("pruned_at") else "") if r.get("run_dir") else "–"
        table.append([
            utc(r["started_ts"]), r["target"], r.get("label") or "", r["n"],
            ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "none",
            r.get("total_s_p50"), r.get("total_s_p90"), r.get("dwell_32_p90"), r.get("transcription_s_p90"),
            {True: "kept", False: "broken", None: "–"}[r.get("slo_ok")], "ok" if r.get("ok") else "FAILED",
            r.get("exit_code"), (r.get("fingerprint_hash") or "")[:8],
            reason.get((r["target"], float(r["started_ts"])), ""), run_dir,
        ])
    return table


SUMMARY_HEADER = ["target", "runs", "failed", "healthy", "deploys", "median total p90", "SLO lines"]


def target_rows(runs: TrendRuns, deploys: list[Deploy], slo: dict[str, dict[str, list]]) -> list[list[Any]]:
    """Per target: runs, failed runs, deploys, the median of the per-run p90 total, the SLO thresholds."""
    out = []
    for target in runs.targets():
        mine = runs.target == target
        count, failed = int(mine.sum()), int((~runs.ok[mine]).sum())
        totals = runs.values["total_s_p90"][mine]
        median = float(np.median(totals[~np.isnan(totals)])) if (~np.isnan(totals)).any() else None
        lines = "; ".join(f"{m} {s} <= {t:g}" for m, ls in slo.get(target, {}).items() for s, t in ls) or "–"
        out.append([target, count, failed, f"{1 - failed / count:.0%}",
                    sum(1 for d in deploys if d.target == target), median, lines])
    return out


def undelivered_notes(events: list[dict[str, Any]]) -> list[str]:
    """A line per alert the webhook never got (failed for good) or has not got yet (pending), newest first."""
    out = []
    for e in events:
        how = ("NOT DELIVERED, given up" if e["delivery"] == "failed" else "not delivered yet, retried by later runs")
        problem = f"; last problem: {e['last_problem']}" if e.get("last_problem") else ""
        out.append(f"Alert {e['event']} of {e['target']} (run {e['run_id']}, {e['at']}): {how} after "
                   f"{e['attempts']} attempt(s){problem}.")
    return out


def html_table(header: list[str], rows: list[list[Any]], text_cols: int) -> str:
    """An escaped HTML table; the first text_cols columns align left; a FAILED/broken cell is shaded."""
    cls = lambda i: ' class="t"' if i < text_cols else ""  # noqa: E731
    head = "".join(f"<th{cls(i)}>{html.escape(h)}</th>" for i, h in enumerate(header))
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            text = cell(value)
            shade = ' class="bad"' if text in ("FAILED", "broken") else cls(i)
            cells.append(f"<td{shade}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


# --- I/O: query, draw, write --------------------------------------------------------------------------------


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render(title: str, window: str, summary: list[list[Any]], figures: dict[str, Path], last: list[list[Any]],
           notes: list[str]) -> str:
    figs = "".join(f"<h3>{html.escape(FIGURES[k])}</h3><img alt=\"{html.escape(FIGURES[k])}\" src=\"{data_uri(p)}\">"
                   for k, p in figures.items())
    note_html = "".join(f'<div class="note">{html.escape(n)}</div>' for n in notes)
    targets = html_table(SUMMARY_HEADER, summary, 1) if summary else "<p>No runs in this window.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(window)}</p>
{note_html}
<h2>Targets</h2>{targets}
<p>Times are per-run statistics of the run's probes, in seconds (a time-scaled simulator's in scenario seconds);
dotted lines are SLO thresholds, red crosses and top ticks failed runs (SLO broken or target unreachable), dashed
vertical lines deploys: a run labelled after-deploy, or a new fingerprint (health body or progress-state
signature).</p>
<h2>Figures</h2>{figs or "<p>No figures: no runs in this window.</p>"}
<h2>Last {LAST_RUNS} runs</h2>{html_table(LAST_RUNS_HEADER, last, 3) if last else "<p>None.</p>"}
</body></html>
"""


def build_trend(store: Any, target: str | None, since_s: float, out: Path, now: float | None = None) -> Path:
    """Query the history for runs started within since_s seconds, draw, write out/trend.html; return its path."""
    from probes.report.trend_plots import plot_metric, target_colours

    now = time.time() if now is None else now
    since_ts = now - since_s
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create trend directory {out}: {exc.strerror or exc}") from None
    runs = trend_runs(*store.trend_table(target, since_ts))
    deploys = deploys_of(runs)
    targets = runs.targets()
    slo = {t: slo_lines(store.latest_slo(t)) for t in targets}
    colours = target_colours(targets)
    figures: dict[str, Path] = {}
    for metric in FIGURES if len(runs) else ():
        lines = {t: slo[t].get(metric, []) for t in targets}
        figures[metric] = plot_metric(runs, deploys, lines, metric, FIGURES[metric], colours,
                                      out / f"trend-{metric}.png")
    last = last_runs_rows(store.last_runs(target, LAST_RUNS, since_ts), deploys)
    title = f"Canary trend: {target}" if target else "Canary trend: all targets"
    window = (f"Runs started {utc(since_ts)} to {utc(now)} UTC ({len(runs)} runs) from {store.display}; "
              f"generated {utc(now)} UTC.")
    notes = [] if len(runs) else [f"No canary runs{' of ' + target if target else ''} in this window."]
    notes += undelivered_notes(store.undelivered_alerts(target))
    path = out / "trend.html"
    path.write_text(render(title, window, target_rows(runs, deploys, slo), figures, last, notes), encoding="utf-8")
    return path
