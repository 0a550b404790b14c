"""Reports from run directories: tables, plots, report.html and report.md.

    build_report(run_dirs, out) -> Path      the CLI's `probes report`
    summary_table(probes) -> DataFrame        per target/label percentiles (also `probes run`)
    load_runs(run_dirs) -> (runs, probes, samples)

Attributes load lazily so that worker processes importing `probes.report.jsonl`
do not pay for pandas and matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probes.report.build import build_report
    from probes.report.load import load_runs
    from probes.report.tables import summary_table

__all__ = ["build_report", "load_runs", "summary_table"]

_HOMES = {"build_report": "probes.report.build", "load_runs": "probes.report.load",
          "summary_table": "probes.report.tables"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'probes.report' has no attribute {name!r}")
