"""`probes compare BASELINE CANDIDATE`: load two runs, compare them, print and write the result.

The comparison itself (statistics, verdict, signature check) is
probes.analysis.compare; this module loads, renders (terminal, Markdown,
JSON) and writes files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from probes.analysis import stats
from probes.analysis.compare import (
    Comparison, build_from_tables, comparison_json, signature_lines,
)
from probes.analysis.diagnosis import Finding, Side, changed, diagnose, to_json
from probes.errors import UsageError
from probes.probe.store import MAX_DIAGNOSED, read_records
from probes.report.files import make_dir, write_error, write_text
from probes.report.load import Run, load_runs, read_meta
from probes.textsafe import for_markdown_cell, for_markdown_text, terminal_text


def _side(path: Path) -> tuple[Run, pd.DataFrame]:
    runs, probes, _ = load_runs([path])
    return runs[0], probes


def build_comparison(baseline: Path, candidate: Path, th: stats.Thresholds) -> Comparison:
    """Load both runs and compare them (no printing)."""
    ra, base = _side(baseline)
    rb, cand = _side(candidate)
    return build_from_tables(ra.meta, base, ra.notes, ra.time_scale, rb.meta, cand, rb.notes, rb.time_scale, th)


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
             f"[{_f(m.ci_low)}, {_f(m.ci_high)}]" if math.isfinite(m.ci_low) else "–",
             _p(m.p_value) + (" sep." if m.method == "separation" else ""), m.verdict]
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


def print_comparison(c: Comparison, console: Console | None = None, stderr: bool = False) -> None:
    """The comparison on the terminal. Run ids, notes and states are data: Text, never markup."""
    if console is None:
        console = Console(stderr=stderr)
        if not console.is_terminal:  # CI logs and pipes: do not squeeze the table into 80 columns
            console = Console(width=140, stderr=stderr)
    th = c.thresholds
    table = Table(title=terminal_text(f"baseline {c.baseline}  vs  candidate {c.candidate}"), title_justify="left")
    for i, h in enumerate(HEADER):
        table.add_column(h, justify="left" if i in (0, len(HEADER) - 1) else "right")
    for row in metric_rows(c):
        table.add_row(*(terminal_text(cell) for cell in row[:-1]), terminal_text(row[-1], COLOURS.get(row[-1], "")))
    console.print(table)
    console.print(terminal_text(method_line(th), "dim"))
    for n in c.notes:
        console.print(terminal_text(f"note: {n}", "yellow"))
    for line in signature_lines(c.signature):
        style = "bold yellow" if c.signature.fires and not line.startswith(("note:", "no progress")) else "dim"
        console.print(terminal_text(line, style))
    console.print(terminal_text(c.reason, COLOURS.get(c.verdict, "")))


def diagnose_pair(baseline: Path, candidate: Path) -> tuple[list[Finding], list[Finding]]:
    """The baseline diagnosed alone, the candidate against it (each on its first MAX_DIAGNOSED probes)."""
    sides = []
    for run_dir in (baseline, candidate):
        meta, _notes = read_meta(run_dir)
        sides.append(Side(meta, read_records(run_dir / "probes.jsonl", MAX_DIAGNOSED)))
    return diagnose(sides[0]), diagnose(sides[1], sides[0])


def print_diagnosis_change(before: list[Finding], after: list[Finding], stderr: bool = False) -> None:
    """Each side's suspects with evidence for them, and which verdicts changed from baseline to candidate."""
    console = Console(stderr=stderr, emoji=False, highlight=False)
    for name, findings in (("baseline", before), ("candidate", after)):
        named = [f.cause for f in findings if f.verdict == "for"]
        console.print(terminal_text(f"diagnosis of the {name}: " +
                                    (f"evidence for {', '.join(named)}" if named else "no suspect has evidence")))
    moved = changed(to_json(before), to_json(after))
    for cause, old, new in moved:
        console.print(terminal_text(f"  changed: {cause} {old} -> {new}", "bold yellow" if new == "for" else ""))
    if not moved:
        console.print(terminal_text("  no diagnosis verdict changed", "dim"))


def method_line(th: stats.Thresholds) -> str:
    """How the verdict was reached, in one line under the table."""
    return (f"seconds; regression = p50 worse by > {th.max_rel:.0%} and > {th.max_abs:g} s with Mann-Whitney p "
            f"(Benjamini-Hochberg-adjusted across metrics) < {th.alpha:g} at >= {th.min_n} probes a side; at "
            f"{th.min_separation_n}-{th.min_n - 1}, every candidate probe worse than every baseline probe by both "
            f"margins; failure rate: >= {th.max_fail_points * 100:.0f} pts with Fisher p < {th.alpha:g} "
            f"(at {th.min_separation_n}-{th.min_n - 1}: all failed against none)")


def comparison_markdown(c: Comparison) -> str:
    """comparison.md; every string that came from a run is escaped for Markdown."""
    rows = metric_rows(c)
    cell = for_markdown_cell
    md = [f"# Comparison: {for_markdown_text(c.baseline)} vs {for_markdown_text(c.candidate)}", "",
          "| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    md += ["| " + " | ".join(cell(x) for x in r) + " |" for r in rows]
    md += ["", for_markdown_text(method_line(c.thresholds)), ""]
    md += [f"> note: {for_markdown_text(n)}" for n in c.notes]
    sig = signature_lines(c.signature)
    if sig:
        md += ["", "## Progress states", ""] + [for_markdown_text(line) + "  " for line in sig]
    md += ["", f"**{for_markdown_text(c.reason)}**", ""]
    return "\n".join(md)


def run_compare(baseline: Path, candidate: Path, *, max_rel: float = 0.10, max_abs: float = 0.5,
                alpha: float = 0.05, out: Path | None = None, console_stderr: bool = False) -> bool:
    """Compare two run directories, print the result; True when the candidate regressed."""
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must be between 0 and 1, got {alpha:g}")
    if max_rel < 0 or max_abs < 0:
        raise UsageError("--max-rel and --max-abs must be >= 0")
    th = stats.Thresholds(max_rel=max_rel, max_abs=max_abs, alpha=alpha)
    c = build_comparison(Path(baseline), Path(candidate), th)
    print_comparison(c, stderr=console_stderr)
    before, after = diagnose_pair(Path(baseline), Path(candidate))
    print_diagnosis_change(before, after, stderr=console_stderr)
    if out is not None:
        out = Path(out)
        make_dir(out, "the comparison directory")
        try:  # each file whole or not at all; a full disk is exit 4
            write_text(out / "comparison.md", comparison_markdown(c))
            write_text(out / "comparison.json", json.dumps(
                {**comparison_json(c), "diagnosis": {"baseline": to_json(before), "candidate": to_json(after),
                                                     "changed": [list(x) for x in changed(to_json(before),
                                                                                          to_json(after))]}},
                ensure_ascii=False, indent=1))
        except OSError as exc:
            raise write_error(exc, f"the comparison in {out}") from None
    return c.regression
