"""`probes report`: load runs, compute tables, draw figures, write the report directory.

The only module here that decides file names; everything it calls is either a
pure table function or a writer of one kind of file.
"""

from __future__ import annotations

import importlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from probes.errors import UsageError
from probes.report.load import Run, collect_cache_notes, load_runs, write_parquet
from probes.report.plots import write_plots
from probes.report.render import ReportContent, render_html, render_markdown
from probes.report.tables import outcome_table, phase_bands, run_table, summary_table, timing_table
from probes.analysis.diagnosis import to_json
from probes.report.verdict import build_diagnoses, build_verdict
from probes.textsafe import csv_safe_frame


def default_out(now: datetime | None = None) -> Path:
    now = now or datetime.now(timezone.utc)
    return Path("reports") / f"report-{now:%Y%m%dT%H%M%S}"


def scale_note(runs: list[Run]) -> str | None:
    """The sentence that says times were divided by a simulator's time scale."""
    scaled = [(r.meta.get("run_id"), r.time_scale) for r in runs if r.time_scale != 1.0]
    if not scaled:
        return None
    scales = sorted({s for _, s in scaled})
    if len(scaled) == len(runs) and len(scales) == 1:
        return f"time-scaled run ×{scales[0]:g}; times shown in scenario seconds"
    parts = ", ".join(f"{rid} ×{s:g}" for rid, s in scaled)
    return f"time-scaled runs ({parts}); their times are shown in scenario seconds, other runs in real seconds"


def build_report(run_dirs: list[Path], out: Path | None = None) -> Path:
    """Write tables, figures, report.html and report.md for the runs; return report.html's path."""
    # Parquet writes and the verdict's sorting release the GIL: overlap them with the figures. The
    # verdict's statistics (scipy.stats, ~0.6 s to import) load while the runs' Arrow tables are read.
    with ThreadPoolExecutor(max_workers=1) as bg, ThreadPoolExecutor(max_workers=1) as judge:
        if len(run_dirs) > 1:
            judge.submit(importlib.import_module, "scipy.stats")
        return _build(run_dirs, out, bg, judge)


def _build(run_dirs: list[Path], out: Path | None, bg: ThreadPoolExecutor, judge: ThreadPoolExecutor) -> Path:
    runs, probes, samples = load_runs([Path(d) for d in run_dirs], writer=bg)
    out = Path(out) if out is not None else default_out()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create report directory {out}: {exc.strerror or exc}") from None
    scaled = any(r.time_scale != 1.0 for r in runs)

    summary = summary_table(probes)
    timings = timing_table(probes)
    outcomes = outcome_table(probes)
    bands = phase_bands(probes)
    # Text cells may be a backend's (a label, an error): no cell may start a spreadsheet formula.
    csv_safe_frame(summary).to_csv(out / "summary.csv", index=False)
    csv_safe_frame(timings).to_csv(out / "timings.csv", index=False)
    csv_safe_frame(outcomes).to_csv(out / "outcomes.csv", index=False)
    csv_safe_frame(bands.reset_index()).to_csv(out / "phases.csv", index=False)
    pending = [bg.submit(write_parquet, df, out / f"{name}.parquet")
               for name, df in (("probes", probes), ("samples", samples))]
    verdict = judge.submit(build_verdict, runs, probes)
    diagnosed = judge.submit(build_diagnoses, runs, probes)
    figures = write_plots(probes, samples, out, scaled=scaled)
    for f in pending:
        f.result()
    collect_cache_notes(runs)
    notes = [n for r in runs for n in r.notes]
    for n in notes:
        print(f"probes: warning: {n}", file=sys.stderr)
    if (s := scale_note(runs)) is not None:
        notes.insert(0, s)
    counts = probes["run_id"].astype(str).value_counts().to_dict()
    diagnoses = diagnosed.result()
    # diagnosis.json (DESIGN "Diagnosis"): the findings of the run the report is about, the last one given
    findings = to_json(diagnoses[0].findings) if diagnoses else []
    (out / "diagnosis.json").write_text(json.dumps(findings, ensure_ascii=False, indent=1), encoding="utf-8")
    content = ReportContent(
        title="probes report: " + ", ".join(sorted(probes["group"].unique())),
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        notes=notes,
        runs=run_table([r.meta for r in runs], counts),
        outcomes=outcomes, timings=timings, bands=bands, figures=figures,
        fingerprints=[{"run_id": r.meta.get("run_id", r.path.name), **(r.meta.get("fingerprint") or {})}
                      for r in runs],
        data_files=["summary.csv", "timings.csv", "outcomes.csv", "phases.csv", "probes.parquet",
                    "samples.parquet"],
        verdict=verdict.result(),
        diagnoses=diagnoses,
    )
    (out / "report.md").write_text(render_markdown(content), encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(render_html(content), encoding="utf-8")
    return html_path
