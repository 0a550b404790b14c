"""`probes compare BASELINE CANDIDATE`: metric deltas, statistics, a verdict, and a code check.

I/O and printing live here; the statistics are in probes.stats and the
signature check below is a pure function. Decisions (documented in the output):

- Timing metrics: upload_s, t_<m> for milestones both runs share, dwell_32,
  stall_s, total_s (completed probes only). A metric regresses when its
  candidate p50 is worse by > max_rel AND > max_abs seconds AND its Mann-Whitney
  p, Benjamini-Hochberg-adjusted across the metrics, is < alpha; improvement is
  the mirror image. Fewer than 5 values a side: "too few".
- Failure rate (non-completed share): regression when the candidate's is >= 20
  points higher with a Fisher exact p < alpha (n >= 5 a side). It is judged
  even when too few probes completed for timings: a candidate that fails every
  probe must fail the gate.
- Overall: regression if any metric or the failure rate regresses. When fewer
  than 5 probes completed on either side and the failure rate does not decide,
  the verdict is "no verdict: too few probes" and the exit code is 0.
- Progress-state signatures: compared on (step_name, message) pairs, which
  only change when the code (or its texts) change. The progress band a state
  was first seen in depends on timing luck, so band-only differences are a
  side note, never the warning. A state one side lacks only counts when that
  side's polls reached the band where the other side showed it (a run stuck
  at 32 % never sees the LLM's states): otherwise it is a side note.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from probes import stats
from probes.errors import UsageError
from probes.report.load import Run, load_runs
from probes.report.tables import milestone_columns

EXTRA_METRICS = ["dwell_32", "stall_s", "total_s"]


@dataclass
class SignatureDiff:
    """States (step_name, message) seen by one side only, split by whether the other side got that far."""

    only_candidate: list[tuple[str, str]] = field(default_factory=list)
    only_baseline: list[tuple[str, str]] = field(default_factory=list)
    unreached: list[tuple[str, str, str]] = field(default_factory=list)  # (side that lacks it, step, msg)
    brief: list[tuple[str, str, str]] = field(default_factory=list)  # (side that lacks it, step, msg)
    band_only: list[tuple[str, str, str, str]] = field(default_factory=list)  # (side, band, step, msg)
    missing: list[str] = field(default_factory=list)  # sides without a signature

    @property
    def fires(self) -> bool:
        return bool(self.only_candidate or self.only_baseline)


def _states(sig: Any) -> list[tuple[str, str, str]]:
    out = []
    for s in sig or []:
        if isinstance(s, (list, tuple)) and len(s) == 3:
            out.append(tuple("" if v is None else str(v) for v in s))
    return out


def band_floor(band: str) -> int:
    """Lowest progress of a signature band ("30-39" -> 30, "100" -> 100; unknown -> 0)."""
    try:
        return int(band.split("-")[0])
    except ValueError:
        return 0


def signature_diff(baseline_sig: Any, candidate_sig: Any) -> SignatureDiff:
    """Compare two run.json fingerprint signatures (lists of [band, step_name, message]).

    A state counts as "never shown" by a side only if that side's polls got at
    least as far (progress band) as where the other side first showed it; a run
    whose probes all stalled at 32 % simply never reached the later states.
    """
    d = SignatureDiff()
    if not baseline_sig:
        d.missing.append("baseline")
    if not candidate_sig:
        d.missing.append("candidate")
    if d.missing:
        return d
    a, b = _states(baseline_sig), _states(candidate_sig)
    reach_a = max((band_floor(x[0]) for x in a), default=0)
    reach_b = max((band_floor(x[0]) for x in b), default=0)

    def first_band(states: list[tuple[str, str, str]]) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for band, step, msg in states:
            out[(step, msg)] = min(out.get((step, msg), 1000), band_floor(band))
        return out

    fa, fb = first_band(a), first_band(b)
    for pair, floor in fb.items():
        if pair not in fa:
            (d.only_candidate.append(pair) if floor <= reach_a else d.unreached.append(("baseline", *pair)))
    for pair, floor in fa.items():
        if pair not in fb:
            (d.only_baseline.append(pair) if floor <= reach_b else d.unreached.append(("candidate", *pair)))
    # A side that shows nothing new but lacks a message of a step it does show may just have
    # polled past a brief state (e.g. 96 % "saved" lasts 0.1 s): timing, not code.
    steps_a, steps_b = {step for step, _ in fa}, {step for step, _ in fb}
    if not d.only_candidate:
        d.brief += [("candidate", *p) for p in d.only_baseline if p[0] in steps_b]
        d.only_baseline = [p for p in d.only_baseline if p[0] not in steps_b]
    if not d.only_baseline:
        d.brief += [("baseline", *p) for p in d.only_candidate if p[0] in steps_a]
        d.only_candidate = [p for p in d.only_candidate if p[0] not in steps_a]
    shared = set(fa) & set(fb)
    full_a, full_b = set(a), set(b)
    d.band_only = ([("candidate", *s) for s in b if s not in full_a and (s[1], s[2]) in shared]
                   + [("baseline", *s) for s in a if s not in full_b and (s[1], s[2]) in shared])
    return d


def signature_lines(d: SignatureDiff) -> list[str]:
    """The plain-words warning (and side notes) for a signature difference."""
    lines = []
    if d.only_candidate:
        lines.append("candidate reports progress states that baseline never does; it is probably running "
                     "different code:")
        lines += [f"  - {s} / {m}" for s, m in d.only_candidate]
    if d.only_baseline:
        lines.append("baseline reports progress states that candidate never does; the candidate is probably "
                     "running different code:")
        lines += [f"  - {s} / {m}" for s, m in d.only_baseline]
    if d.missing:
        lines.append(f"no progress-state signature in the {' and '.join(d.missing)} run.json; states not compared")
    for side in ("baseline", "candidate"):
        states = [f"{s} / {m}" for who, s, m in d.unreached if who == side]
        if states:
            lines.append(f"note: the {side}'s probes never got as far as these states (not a code signal): "
                         + "; ".join(states))
    for side in ("baseline", "candidate"):
        states = [f"{s} / {m}" for who, s, m in d.brief if who == side]
        if states:
            lines.append(f"note: the {side}'s polls never caught these states, perhaps too brief to be polled "
                         "(not a code signal): " + "; ".join(states))
    if d.band_only:
        lines.append(f"note: {len(d.band_only)} state(s) first seen at other progress bands on one side only "
                     "(timing, not code; ignored)")
    return lines


@dataclass
class Comparison:
    """Everything `probes compare` prints and writes."""

    baseline: str
    candidate: str
    thresholds: stats.Thresholds
    metrics: list[stats.MetricResult]
    failure: stats.FailureResult
    signature: SignatureDiff
    completed: tuple[int, int]
    notes: list[str]
    verdict: str  # regression | improvement | no change | no verdict
    reason: str

    @property
    def regression(self) -> bool:
        return self.verdict == stats.REGRESSION


def metric_values(probes: pd.DataFrame, metric: str) -> np.ndarray:
    """The values a metric compares: total_s only from completed probes."""
    col = probes[metric]
    if metric == "total_s":
        col = col[probes["outcome"] == "completed"]
    return col.to_numpy(dtype=float, na_value=np.nan)


def compare_tables(base: pd.DataFrame, cand: pd.DataFrame, th: stats.Thresholds) -> tuple[
        list[stats.MetricResult], stats.FailureResult]:
    """Pure: per-metric results and the failure-rate result for two probes tables."""
    shared_ms = [c for c in milestone_columns(base) if c in set(milestone_columns(cand))]
    metrics = ["upload_s", *shared_ms, *[m for m in EXTRA_METRICS if m in base.columns and m in cand.columns]]
    results = stats.adjust_for_many(
        [stats.compare_metric(m, metric_values(base, m), metric_values(cand, m), th) for m in metrics], th)
    fa = int((base["outcome"] != "completed").sum())
    fb = int((cand["outcome"] != "completed").sum())
    failure = stats.compare_failure_rate(fa, len(base), fb, len(cand), th)
    return results, failure


def overall(metrics: list[stats.MetricResult], failure: stats.FailureResult, completed: tuple[int, int],
            th: stats.Thresholds) -> tuple[str, str]:
    """Overall verdict and a one-line reason."""
    worse = [m.metric for m in metrics if m.verdict == stats.REGRESSION]
    better = [m.metric for m in metrics if m.verdict == stats.IMPROVEMENT]
    if failure.verdict == stats.REGRESSION:
        worse.insert(0, f"failure rate {failure.rate_baseline:.0%} -> {failure.rate_candidate:.0%}")
    if worse:
        return stats.REGRESSION, "regression: " + ", ".join(worse)
    if min(completed) < th.min_n:
        return "no verdict", (f"no verdict: too few probes (baseline {completed[0]}, candidate {completed[1]} "
                              f"completed; need ≥ {th.min_n})")
    if failure.verdict == stats.IMPROVEMENT:
        better.insert(0, "failure rate")
    if better:
        return stats.IMPROVEMENT, "improvement: " + ", ".join(better)
    return stats.NO_CHANGE, "no change beyond the thresholds"


def _side(path: Path) -> tuple[Run, pd.DataFrame]:
    runs, probes, _ = load_runs([path])
    return runs[0], probes


def scale_notes(a: Run, b: Run) -> list[str]:
    if a.time_scale != 1.0 and b.time_scale != 1.0:
        return [f"both runs time-scaled (×{a.time_scale:g}, ×{b.time_scale:g}); compared in scenario seconds"]
    if a.time_scale != 1.0 or b.time_scale != 1.0:
        which, r = ("baseline", a) if a.time_scale != 1.0 else ("candidate", b)
        return [f"only the {which} is time-scaled (×{r.time_scale:g}); its scenario seconds are compared with "
                "the other run's real seconds"]
    return []


def build_comparison(baseline: Path, candidate: Path, th: stats.Thresholds) -> Comparison:
    """Load both runs and compare them (no printing)."""
    ra, base = _side(baseline)
    rb, cand = _side(candidate)
    metrics, failure = compare_tables(base, cand, th)
    completed = (int((base["outcome"] == "completed").sum()), int((cand["outcome"] == "completed").sum()))
    sig = signature_diff(_fp_sig(ra), _fp_sig(rb))
    verdict, reason = overall(metrics, failure, completed, th)
    notes = [f"baseline: {n}" for n in ra.notes] + [f"candidate: {n}" for n in rb.notes] + scale_notes(ra, rb)
    return Comparison(str(ra.meta.get("run_id", ra.path.name)), str(rb.meta.get("run_id", rb.path.name)),
                      th, metrics, failure, sig, completed, notes, verdict, reason)


def _fp_sig(run: Run) -> Any:
    fp = run.meta.get("fingerprint")
    return fp.get("signature") if isinstance(fp, dict) else None


def _f(x: float, digits: int = 2) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _rel(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "+∞" if x > 0 else "-∞"
    return f"{x:+.0%}"


def _p(x: float) -> str:
    return "–" if not math.isfinite(x) else ("<0.001" if x < 0.001 else f"{x:.3f}")


COLOURS = {stats.REGRESSION: "bold red", stats.IMPROVEMENT: "bold green", stats.NO_CHANGE: "dim",
           stats.TOO_FEW: "yellow", "no verdict": "yellow"}
HEADER = ["metric", "n base/cand", "p50 base → cand", "p90 base → cand", "Δp50", "95% CI of Δp50", "p (BH)",
          "verdict"]


def metric_rows(c: Comparison) -> list[list[str]]:
    """One row of text cells per metric, plus the failure rate."""
    rows = [[m.metric, f"{m.n_baseline}/{m.n_candidate}", f"{_f(m.p50_baseline)} → {_f(m.p50_candidate)}",
             f"{_f(m.p90_baseline)} → {_f(m.p90_candidate)}", f"{_signed(m.change)} s ({_rel(m.rel_change)})",
             f"[{_f(m.ci_low)}, {_f(m.ci_high)}]" if math.isfinite(m.ci_low) else "–", _p(m.p_value), m.verdict]
            for m in c.metrics]
    f = c.failure
    rows.append(["failure rate", f"{f.n_baseline}/{f.n_candidate}",
                 f"{_pct(f.rate_baseline)} → {_pct(f.rate_candidate)}", "", _points(f), "",
                 _p(f.p_value) + " Fisher", f.verdict])
    return rows


def _signed(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:+.2f}"


def _pct(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:.0%}"


def _points(f: stats.FailureResult) -> str:
    if not (math.isfinite(f.rate_baseline) and math.isfinite(f.rate_candidate)):
        return "–"
    return f"{(f.rate_candidate - f.rate_baseline) * 100:+.0f} pts"


def print_comparison(c: Comparison, console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:  # CI logs and pipes: do not squeeze the table into 80 columns
            console = Console(width=140)
    th = c.thresholds
    table = Table(title=f"baseline {c.baseline}  vs  candidate {c.candidate}", title_justify="left")
    for i, h in enumerate(HEADER):
        table.add_column(h, justify="left" if i in (0, len(HEADER) - 1) else "right")
    for row in metric_rows(c):
        table.add_row(*row[:-1], f"[{COLOURS.get(row[-1], '')}]{row[-1]}[/]")
    console.print(table)
    console.print(f"[dim]seconds; regression = p50 worse by > {th.max_rel:.0%} and > {th.max_abs:g} s with "
                  f"Mann-Whitney p (Benjamini-Hochberg-adjusted across metrics) < {th.alpha:g}; failure rate: ≥ {th.max_fail_points * 100:.0f} pts with Fisher p < "
                  f"{th.alpha:g}[/]")
    for n in c.notes:
        console.print(f"[yellow]note:[/] {n}", highlight=False)
    for line in signature_lines(c.signature):
        style = "bold yellow" if c.signature.fires and not line.startswith(("note:", "no progress")) else "dim"
        console.print(f"[{style}]{escape(line)}[/]", highlight=False)
    console.print(f"[{COLOURS.get(c.verdict, '')}]{escape(c.reason)}[/]", highlight=False)


def comparison_markdown(c: Comparison) -> str:
    rows = metric_rows(c)
    md = [f"# Comparison: {c.baseline} vs {c.candidate}", "",
          "| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    md += [""] + [f"> note: {n}" for n in c.notes]
    sig = signature_lines(c.signature)
    if sig:
        md += ["", "## Progress states", ""] + sig
    md += ["", f"**{c.reason}**", ""]
    return "\n".join(md)


def comparison_json(c: Comparison) -> dict:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return v

    return {
        "baseline": c.baseline, "candidate": c.candidate, "verdict": c.verdict, "reason": c.reason,
        "regression": c.regression, "thresholds": asdict(c.thresholds),
        "completed": {"baseline": c.completed[0], "candidate": c.completed[1]},
        "metrics": [{k: clean(v) for k, v in asdict(m).items()} for m in c.metrics],
        "failure_rate": {k: clean(v) for k, v in asdict(c.failure).items()},
        "signature": {"fires": c.signature.fires, "only_candidate": c.signature.only_candidate,
                      "only_baseline": c.signature.only_baseline, "unreached": c.signature.unreached,
                      "band_only": c.signature.band_only,
                      "missing": c.signature.missing},
        "notes": c.notes,
    }


def run_compare(baseline: Path, candidate: Path, *, max_rel: float = 0.10, max_abs: float = 0.5,
                alpha: float = 0.05, out: Path | None = None) -> bool:
    """Compare two run directories, print the result; True when the candidate regressed."""
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must be between 0 and 1, got {alpha:g}")
    if max_rel < 0 or max_abs < 0:
        raise UsageError("--max-rel and --max-abs must be >= 0")
    th = stats.Thresholds(max_rel=max_rel, max_abs=max_abs, alpha=alpha)
    c = build_comparison(Path(baseline), Path(candidate), th)
    print_comparison(c)
    if out is not None:
        out = Path(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "comparison.md").write_text(comparison_markdown(c), encoding="utf-8")
            (out / "comparison.json").write_text(json.dumps(comparison_json(c), ensure_ascii=False, indent=1),
                                                 encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the comparison into {out}: {exc.strerror or exc}") from None
    return c.regression
