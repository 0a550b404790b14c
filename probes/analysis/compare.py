"""Comparing two runs: metric deltas, the verdict and the progress-state check. Pure: tables in, a Comparison out.

The statistics are in probes.analysis.stats; loading, printing and files are
probes.report.compare's. Decisions (documented in the output):

- Timing metrics: upload_s, the presigned flow's presign_s, put_s and
  create_s (when both runs measured them), t_<m> for milestones both runs
  share, dwell_32, shown_held_32_s (the bar the user sees), stall_s,
  transcription_s, total_s (completed probes only). With >= 5 values
  a side a metric regresses when its candidate p50 is worse by > max_rel AND
  > max_abs seconds AND its Mann-Whitney p, Benjamini-Hochberg-adjusted across
  the metrics, is < alpha. With 3-4 a side (a deploy check), only when every
  candidate value is worse than every baseline value by > max_rel AND
  > max_abs (the separation rule, probes.analysis.stats). Improvement is the
  mirror image. Fewer than 3 a side: "too few".
- Failure rate (non-completed share): with >= 5 a side, a regression when the
  candidate's is >= 20 points higher with a Fisher exact p < alpha; with 3-4,
  when every candidate probe failed and no baseline probe did. It is judged
  even when too few probes completed for timings: a candidate that fails every
  probe must fail the gate.
- Overall: regression if any metric or the failure rate regresses. When fewer
  than 3 probes completed on either side and the failure rate does not decide,
  the verdict is "no verdict: too few probes" and the exit code is 0.
- Progress-state signatures: compared on (step_name, message) pairs, which
  only change when the code (or its texts) change. The progress band a state
  was first seen in depends on timing luck, so band-only differences are a
  side note, never the warning. A state one side lacks only counts when that
  side's polls reached the band where the other side showed it (a run stuck
  at 32 % never sees the LLM's states): otherwise it is a side note.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from probes.analysis import stats
from probes.analysis.metrics import UPLOAD_PHASES, milestone_columns

EXTRA_METRICS = ["dwell_32", "shown_held_32_s", "stall_s", "transcription_s", "total_s"]


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
    phases = [m for m in UPLOAD_PHASES if _measured(base, m) and _measured(cand, m)]  # a multipart run has none
    metrics = ["upload_s", *phases, *shared_ms,
               *[m for m in EXTRA_METRICS if m in base.columns and m in cand.columns]]
    results = stats.adjust_for_many(
        [stats.compare_metric(m, metric_values(base, m), metric_values(cand, m), th) for m in metrics], th)
    fa = int((base["outcome"] != "completed").sum())
    fb = int((cand["outcome"] != "completed").sum())
    failure = stats.compare_failure_rate(fa, len(base), fb, len(cand), th)
    return results, failure


def _measured(probes: pd.DataFrame, metric: str) -> bool:
    return metric in probes.columns and bool(probes[metric].notna().any())


def overall(metrics: list[stats.MetricResult], failure: stats.FailureResult, completed: tuple[int, int],
            th: stats.Thresholds) -> tuple[str, str]:
    """Overall verdict and a one-line reason."""
    worse = [m.metric for m in metrics if m.verdict == stats.REGRESSION]
    better = [m.metric for m in metrics if m.verdict == stats.IMPROVEMENT]
    if failure.verdict == stats.REGRESSION:
        worse.insert(0, f"failure rate {failure.rate_baseline:.0%} -> {failure.rate_candidate:.0%}")
    if worse:
        return stats.REGRESSION, "regression: " + ", ".join(worse)
    if min(completed) < th.min_separation_n:
        return "no verdict", (f"no verdict: too few probes (baseline {completed[0]}, candidate {completed[1]} "
                              f"completed; need ≥ {th.min_separation_n})")
    if failure.verdict == stats.IMPROVEMENT:
        better.insert(0, "failure rate")
    if better:
        return stats.IMPROVEMENT, "improvement: " + ", ".join(better)
    return stats.NO_CHANGE, "no change beyond the thresholds"


def scale_notes(scale_a: float, scale_b: float) -> list[str]:
    """What the reader must know when either side was a time-scaled simulator."""
    if scale_a != 1.0 and scale_b != 1.0:
        return [f"both runs time-scaled (×{scale_a:g}, ×{scale_b:g}); compared in scenario seconds"]
    if scale_a != 1.0 or scale_b != 1.0:
        which, s = ("baseline", scale_a) if scale_a != 1.0 else ("candidate", scale_b)
        return [f"only the {which} is time-scaled (×{s:g}); its scenario seconds are compared with "
                "the other run's real seconds"]
    return []


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


def _fp_sig(meta: dict[str, Any]) -> Any:
    fp = meta.get("fingerprint")
    return fp.get("signature") if isinstance(fp, dict) else None


def build_from_tables(meta_a: dict[str, Any], base: pd.DataFrame, notes_a: list[str], scale_a: float,
                      meta_b: dict[str, Any], cand: pd.DataFrame, notes_b: list[str], scale_b: float,
                      th: stats.Thresholds) -> Comparison:
    """Compare two loaded runs (run.json, probes table, load notes, time scale each)."""
    metrics, failure = compare_tables(base, cand, th)
    completed = (int((base["outcome"] == "completed").sum()), int((cand["outcome"] == "completed").sum()))
    sig = signature_diff(_fp_sig(meta_a), _fp_sig(meta_b))
    verdict, reason = overall(metrics, failure, completed, th)
    notes = [f"baseline: {n}" for n in notes_a] + [f"candidate: {n}" for n in notes_b] + scale_notes(scale_a, scale_b)
    return Comparison(str(meta_a.get("run_id")), str(meta_b.get("run_id")),
                      th, metrics, failure, sig, completed, notes, verdict, reason)
