"""report.html (self-contained) and report.md from tables, figures and run metadata.

Why no template engine: the page is a handful of sections; f-strings with
html.escape keep it dependency-free, and every PNG is inlined as a base64 data
URI so the single file can be mailed or attached to a ticket.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from probes.analysis.compare import Comparison, signature_lines
from probes.analysis.slo import Slo, SloReport
from probes.report.compare import HEADER as COMPARE_HEADER, method_line, metric_rows
from probes.probe.summary import VERDICT_WORDS, evidence_line
from probes.report.verdict import RunDiagnosis, Verdict
from probes.textsafe import for_markdown_cell, for_markdown_text
from probes.report.style import CSS

FIGURE_TITLES = {
    "progress": "Progress vs time",
    "milestones": "Time to each milestone",
    "phases": "Where the time goes",
    "totals": "Total time distribution",
    "outcomes": "Outcomes",
}

@dataclass
class ReportContent:
    """Everything a rendered report shows; built by build.py, rendered here."""

    title: str
    generated_at: str
    notes: list[str]
    runs: pd.DataFrame
    outcomes: pd.DataFrame
    timings: pd.DataFrame
    bands: pd.DataFrame
    figures: dict[str, Path]
    fingerprints: list[dict[str, Any]]
    data_files: list[str]
    verdict: Verdict | None = None
    diagnoses: list[RunDiagnosis] | None = None


def fmt(value: Any) -> str:
    """One cell as text: seconds with 2 decimals, shares as %, missing as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.2f}"
    return str(value)


def _cells(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    header = [str(c) for c in df.columns]
    rows = []
    for rec in df.itertuples(index=False):
        rows.append([fmt(v.item() if hasattr(v, "item") else v) for v in rec])
    return header, rows


def _percent_cols(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    if "failure_rate" in df.columns:
        df["failure_rate"] = df["failure_rate"].map(lambda x: f"{x:.0%}" if pd.notna(x) else "–")
    return df


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no tabulate dependency)."""
    header, rows = _cells(df)
    return md_table(header, rows)


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """Every cell escaped: a run id, step name or label is data, never Markdown or HTML."""
    lines = ["| " + " | ".join(map(for_markdown_cell, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(for_markdown_cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def html_table(df: pd.DataFrame, text_cols: int = 0) -> str:
    """An escaped HTML table; the first text_cols columns align left."""
    header, rows = _cells(df)
    cls = lambda i: ' class="t"' if i < text_cols else ""  # noqa: E731
    head = "".join(f"<th{cls(i)}>{html.escape(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{html.escape(c)}</td>" for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _json(value: Any) -> str:
    return html.escape(json.dumps(value, ensure_ascii=False, indent=1, default=str))


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)[:2000]


def _fingerprint_html(fp: dict[str, Any]) -> str:
    sig = fp.get("signature") or []
    sig_df = pd.DataFrame([s if isinstance(s, list) else [s] for s in sig]) if sig else pd.DataFrame()
    if not sig_df.empty and sig_df.shape[1] == 3:
        sig_df.columns = ["band", "step_name", "message"]
    parts = [f"<h3>{html.escape(str(fp.get('run_id')))}</h3>"]
    parts.append(f"<p>health (HTTP {html.escape(fmt(fp.get('health_status')))}):</p><pre>{_json(fp.get('health'))}</pre>")
    parts.append(f"<p>response headers:</p><pre>{_json(fp.get('headers'))}</pre>")
    parts.append("<p>progress-state signature (first-seen order):</p>"
                 + (html_table(sig_df, text_cols=3) if not sig_df.empty else "<p>(none recorded)</p>"))
    return "\n".join(parts)


def _slo_rows(report: SloReport) -> list[list[str]]:
    rows = []
    for r in report.results:
        value = "–" if r.value is None else (f"{r.value:.0%}" if r.stat == "rate" else f"{r.value:.2f}")
        rows.append([Slo(r.metric, r.stat, r.threshold).describe(), value, str(r.n), "pass" if r.ok else "FAIL",
                     r.note or ""])
    return rows


SLO_HEADER = ["objective", "value", "n", "result", "note"]


def _html_rows(header: list[str], rows: list[list[str]], text_cols: int = 1) -> str:
    def cell(i: int, value: str) -> str:
        cls = ' class="t"' if i < text_cols else ""
        if value in ("pass", "FAIL", "regression", "improvement"):
            cls = ' class="pass"' if value in ("pass", "improvement") else ' class="fail"'
        return f"<td{cls}>{html.escape(value)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _comparison_html(cmp: Comparison) -> str:
    lines = "".join(f"<p>{html.escape(line)}</p>" for line in signature_lines(cmp.signature))
    notes = "".join(f'<div class="note">{html.escape(n)}</div>' for n in cmp.notes)
    cls = "fail" if cmp.regression else "pass"
    return (f"<h3>baseline {html.escape(cmp.baseline)} vs candidate {html.escape(cmp.candidate)}</h3>"
            f"{_html_rows(COMPARE_HEADER, metric_rows(cmp))}<p><small>{html.escape(method_line(cmp.thresholds))}"
            f"</small></p>{notes}{lines}<p class=\"{cls}\">{html.escape(cmp.reason)}</p>")


def verdict_html(v: Verdict) -> str:
    runs = "".join(f"<h3>SLOs of {html.escape(r.group)} ({html.escape(r.run_id)}): "
                   f"<span class=\"{'pass' if r.slo.ok else 'fail'}\">{'pass' if r.slo.ok else 'BROKEN'}</span> "
                   f"<small>({html.escape(r.slo.source)})</small></h3>{_html_rows(SLO_HEADER, _slo_rows(r.slo))}"
                   for r in v.runs)
    comparisons = "".join(_comparison_html(cmp) for cmp in v.comparisons)
    return (f'<div class="verdict{"" if v.ok else " bad"}"><h2>Verdict: {html.escape(v.headline())}</h2>'
            f"{runs}{comparisons}</div>")


def verdict_markdown(v: Verdict) -> str:
    parts = [f"## Verdict: {for_markdown_text(v.headline())}"]
    for r in v.runs:
        parts.append(f"### SLOs of {for_markdown_text(r.group)} ({for_markdown_text(r.run_id)}): "
                     f"{'pass' if r.slo.ok else 'BROKEN'} ({for_markdown_text(r.slo.source)})")
        parts.append(md_table(SLO_HEADER, _slo_rows(r.slo)))
    for cmp in v.comparisons:
        parts.append(f"### Baseline {for_markdown_text(cmp.baseline)} vs candidate {for_markdown_text(cmp.candidate)}")
        parts.append(md_table(COMPARE_HEADER, metric_rows(cmp)))
        parts.append(for_markdown_text(method_line(cmp.thresholds)))
        parts += [f"> note: {for_markdown_text(n)}" for n in cmp.notes]
        parts += [for_markdown_text(line) for line in signature_lines(cmp.signature)]
        parts.append(f"**{for_markdown_text(cmp.reason)}**")
    return "\n\n".join(parts)


DIAGNOSIS_HEADER = ["cause", "verdict", "evidence", "next"]


def _diagnosis_rows(d: RunDiagnosis) -> list[list[str]]:
    order = ("for", "none", "against")
    return [[f.cause, VERDICT_WORDS[f.verdict], evidence_line(f.evidence), f.next]
            for f in sorted(d.findings, key=lambda f: order.index(f.verdict))]


def _diagnosis_title(d: RunDiagnosis) -> str:
    against = f" (against baseline {d.baseline})" if d.baseline else ""
    named = [f.cause for f in d.findings if f.verdict == "for"]
    return (f"{d.group} {d.run_id}{against}: " +
            (f"evidence for {', '.join(named)}" if named else "no suspect has evidence for it"))


def diagnosis_html(diagnoses: list[RunDiagnosis]) -> str:
    parts = ["<h2>Diagnosis</h2><p>The incident's suspects, one row each: evidence for, evidence against, or "
             "none, the numbers behind it and what to check next (rules in the README).</p>"]
    for d in diagnoses:
        rows = _diagnosis_rows(d)
        head = "".join(f"<th class=\"t\">{html.escape(h)}</th>" for h in DIAGNOSIS_HEADER)
        body = "".join("<tr>" + "".join(
            f"<td class=\"t{' fail' if i == 1 and r[1] == 'evidence for' else ''}\" style=\"white-space:normal\">"
            f"{html.escape(c)}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows)
        parts.append(f"<h3>{html.escape(_diagnosis_title(d))}</h3><div class=\"scroll\"><table><thead><tr>{head}"
                     f"</tr></thead><tbody>{body}</tbody></table></div>")
    return "".join(parts)


def diagnosis_markdown(diagnoses: list[RunDiagnosis]) -> str:
    parts = ["## Diagnosis"]
    for d in diagnoses:
        parts.append(f"### {for_markdown_text(_diagnosis_title(d))}")
        parts.append(md_table(DIAGNOSIS_HEADER, _diagnosis_rows(d)))
    return "\n\n".join(parts)


def render_html(c: ReportContent) -> str:
    notes = "".join(f'<div class="note">{html.escape(n)}</div>' for n in c.notes)
    figs = "".join(f"<h3>{html.escape(FIGURE_TITLES.get(k, k))}</h3>"
                   f'<img alt="{html.escape(FIGURE_TITLES.get(k, k))}" src="{data_uri(p)}">'
                   for k, p in c.figures.items())
    fps = "".join(_fingerprint_html(fp) for fp in c.fingerprints)
    files = ", ".join(html.escape(f) for f in c.data_files)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(c.title)}</title>
<style>{CSS}</style></head><body>
<h1>{html.escape(c.title)}</h1>
{verdict_html(c.verdict) if c.verdict is not None else ""}
{diagnosis_html(c.diagnoses) if c.diagnoses else ""}
<p>Generated {html.escape(c.generated_at)}. Data beside this file: {files}.</p>
{notes}
<h2>Runs</h2>{html_table(c.runs, text_cols=len(c.runs.columns))}
<h2>Outcomes</h2>{html_table(_percent_cols(c.outcomes), text_cols=2)}
<h2>Timings (seconds)</h2>
<p>Per target/label and metric: probes with a value, percentiles and max. t_N = first poll at or above N %;
dwell_32 = time seen exactly at 32 %; stall_s = longest time progress stood still; total_s = completed probes.</p>
{html_table(c.timings, text_cols=3)}
<h2>Where the time goes (median seconds per band, completed probes)</h2>
{html_table(c.bands.reset_index(), text_cols=1)}
<h2>Figures</h2>{figs}
<h2>Fingerprints</h2>{fps}
</body></html>
"""


def render_markdown(c: ReportContent) -> str:
    notes = "\n".join(f"> {for_markdown_text(n)}" for n in c.notes)
    figs = "\n".join(f"![{FIGURE_TITLES.get(k, k)}]({p.name})" for k, p in c.figures.items())
    sigs = []
    for fp in c.fingerprints:
        rows = [s for s in (fp.get("signature") or []) if isinstance(s, list) and len(s) == 3]
        sig_df = pd.DataFrame(rows, columns=["band", "step_name", "message"]) if rows else None
        sigs.append(f"### {for_markdown_text(str(fp.get('run_id')))}\n\n"
                    f"health: {for_markdown_text(_compact(fp.get('health')))}  \n"
                    f"headers: {for_markdown_text(_compact(fp.get('headers')))}\n\n"
                    + (markdown_table(sig_df) if sig_df is not None else "(no signature recorded)"))
    return "\n\n".join([
        f"# {for_markdown_text(c.title)}",
        *([verdict_markdown(c.verdict)] if c.verdict is not None else []),
        *([diagnosis_markdown(c.diagnoses)] if c.diagnoses else []),
        f"Generated {c.generated_at}. Data: {', '.join(c.data_files)}.", notes,
        "## Runs", markdown_table(c.runs),
        "## Outcomes", markdown_table(_percent_cols(c.outcomes)),
        "## Timings (seconds)", markdown_table(c.timings),
        "## Where the time goes (median seconds per band, completed probes)", markdown_table(c.bands.reset_index()),
        "## Figures", figs,
        "## Fingerprints", *sigs,
    ]) + "\n"
