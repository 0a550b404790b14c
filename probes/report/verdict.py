"""The verdict a report opens with: SLOs per run and, with two or more runs, the comparison.

The first run given is the baseline; every other run is compared with it,
exactly as `probes compare BASELINE CANDIDATE` would. A run's SLOs are the
ones `probes run` judged it by (run.json "slo"); a run without them (older
runs, load runs) is judged here by the default objectives, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from probes.analysis import stats
from probes.analysis.compare import Comparison, build_from_tables
from probes.analysis.diagnosis import Finding, Side, diagnose
from probes.probe.store import MAX_DIAGNOSED, read_records
from probes.analysis.slo import DEFAULT_SLOS, SloReport, evaluate_table, slo_from_json
from probes.report.load import Run


@dataclass
class RunVerdict:
    run_id: str
    group: str  # target/label
    slo: SloReport


@dataclass
class Verdict:
    runs: list[RunVerdict] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.slo.ok for r in self.runs) and not any(c.regression for c in self.comparisons)

    def headline(self) -> str:
        """One line: what a person needs first."""
        broken = [r.group for r in self.runs if not r.slo.ok]
        worse = [c.candidate for c in self.comparisons if c.regression]
        parts = []
        if worse:
            parts.append(f"regression against the baseline in {len(worse)} run(s)")
        if broken:
            parts.append(f"SLO broken in {', '.join(broken)}")
        return "; ".join(parts) if parts else "SLOs hold" + (" and no regression" if self.comparisons else "")


def run_verdict(run: Run, probes: pd.DataFrame) -> RunVerdict:
    """The SLOs of one run: as `probes run` judged them, else the defaults judged on its table."""
    run_id = str(run.meta.get("run_id") or run.path.name)
    own = probes[probes["run_id"].astype(str) == run_id]
    group = str(own["group"].iloc[0]) if len(own) else run_id
    report = slo_from_json(run.meta.get("slo"))
    if report is None:
        report = evaluate_table(DEFAULT_SLOS, own, source="defaults (not judged when it ran)")
    return RunVerdict(run_id, group, report)


def build_verdict(runs: list[Run], probes: pd.DataFrame,
                  thresholds: stats.Thresholds = stats.Thresholds()) -> Verdict:
    verdict = Verdict(runs=[run_verdict(r, probes) for r in runs])
    if len(runs) < 2:
        return verdict
    base = runs[0]
    base_id = str(base.meta.get("run_id") or base.path.name)
    base_probes = probes[probes["run_id"].astype(str) == base_id]
    for run in runs[1:]:
        run_id = str(run.meta.get("run_id") or run.path.name)
        cand = probes[probes["run_id"].astype(str) == run_id]
        # The table's times are already in scenario seconds: compare them as they are.
        verdict.comparisons.append(build_from_tables(base.meta, base_probes, base.notes, 1.0,
                                                     run.meta, cand, run.notes, 1.0, thresholds))
    return verdict


@dataclass
class RunDiagnosis:
    run_id: str
    group: str
    baseline: str | None  # the run it was compared with, if any
    findings: list[Finding]


def build_diagnoses(runs: list[Run], probes: pd.DataFrame) -> list[RunDiagnosis]:
    """Every run diagnosed (on its first MAX_DIAGNOSED probes); runs after the first against the first.

    Candidates come first: the last run given is the one the report is about.
    """
    sides = []
    for run in runs:
        try:
            records = read_records(run.path / "probes.jsonl", MAX_DIAGNOSED)
        except OSError:
            records = []
        sides.append(Side(run.meta, records))
    out = []
    for i, (run, side) in enumerate(zip(runs, sides)):
        run_id = str(run.meta.get("run_id") or run.path.name)
        own = probes[probes["run_id"].astype(str) == run_id]
        group = str(own["group"].iloc[0]) if len(own) else run_id
        base = sides[0] if i > 0 else None
        base_id = str(runs[0].meta.get("run_id") or runs[0].path.name) if i > 0 else None
        out.append(RunDiagnosis(run_id, group, base_id, diagnose(side, base)))
    return out[::-1]
