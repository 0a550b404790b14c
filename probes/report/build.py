"""`probes report`: load runs, compute tables, draw figures, write the report directory.

The only module here that decides file names; everything it calls is either a
pure table function or a writer of one kind of file. Every file is written
under a temporary name and renamed when whole (probes.report.files), and the
documents a reader opens (report.html, report.md, diagnosis.json) are removed
before anything is rewritten, so an interrupted or failed build (Ctrl-C,
SIGTERM, a full disk) never leaves a report that looks complete: report.html
exists only when everything beside it was written by the same build.
"""

from __future__ import annotations

import importlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from probes.report.files import atomic_path, make_dir, write_error, write_text
from probes.report.load import Run, collect_cache_notes, load_runs, write_parquet
from probes.report.plots import write_plots
from probes.report.render import ReportContent, render_html, render_markdown
from probes.report.tables import outcome_table, phase_bands, run_table, summary_table, timing_table
from probes.analysis.diagnosis import to_json
from probes.report.verdict import build_diagnoses, build_verdict
from probes.textsafe import csv_safe_frame

if TYPE_CHECKING:
    import pandas as pd


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
    bg, judge = ThreadPoolExecutor(max_workers=1), ThreadPoolExecutor(max_workers=1)
    try:
        if len(run_dirs) > 1:
            judge.submit(importlib.import_module, "scipy.stats")
        return _build(run_dirs, out, bg, judge)
    finally:  # interrupted or failed: what has not started yet never will
        for pool in (bg, judge):
            pool.shutdown(wait=True, cancel_futures=True)


DOCUMENTS = ("report.html", "report.md", "diagnosis.json")  # what a reader opens: gone until rewritten


def _csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        csv_safe_frame(frame).to_csv(tmp, index=False)


def _build(run_dirs: list[Path], out: Path | None, bg: ThreadPoolExecutor, judge: ThreadPoolExecutor) -> Path:
    runs, probes, samples = load_runs([Path(d) for d in run_dirs], writer=bg)
    out = Path(out) if out is not None else default_out()
    make_dir(out, "the report directory")
    try:
        for name in DOCUMENTS:
            (out / name).unlink(missing_ok=True)
        return _write(runs, probes, samples, out, bg, judge)
    except OSError as exc:  # a full disk (exit 4), a read-only or vanished directory
        raise write_error(exc, f"the report in {out}") from None


def _write(runs: list[Run], probes: pd.DataFrame, samples: pd.DataFrame, out: Path, bg: ThreadPoolExecutor,
           judge: ThreadPoolExecutor) -> Path:
    scaled = any(r.time_scale != 1.0 for r in runs)

    summary = summary_table(probes)
    timings = timing_table(probes)
    outcomes = outcome_table(probes)
    bands = phase_bands(probes)
    # Text cells may be a backend's (a label, an error): no cell may start a spreadsheet formula.
    _csv(summary, out / "summary.csv")
    _csv(timings, out / "timings.csv")
    _csv(outcomes, out / "outcomes.csv")
    _csv(bands.reset_index(), out / "phases.csv")
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
    write_text(out / "diagnosis.json", json.dumps(findings, ensure_ascii=False, indent=1))
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
    write_text(out / "report.md", render_markdown(content))
    return write_text(out / "report.html", render_html(content))  # last: its presence means a whole report
