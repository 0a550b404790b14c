"""build_report end to end on synthetic runs: files, images, HTML, Markdown."""

import base64
import json
import io
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from probes.report import build_report

FIGURES = ["progress", "milestones", "phases", "totals", "outcomes"]


@pytest.fixture(scope="module")
def report(fast_run, stale_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return build_report([fast_run, stale_run], out)


def test_returns_report_html(report):
    assert report.name == "report.html" and report.is_file()


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_is_a_real_png(report, name):
    path = report.parent / f"{name}.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(path)
    assert img.width >= 400 and img.height >= 300
    pixels = np.asarray(img.convert("L"), dtype=float)
    assert pixels.std() > 5  # not blank


def test_html_is_self_contained_with_every_figure_and_table(report):
    html = report.read_text(encoding="utf-8")
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(uris) == len(FIGURES)
    for uri in uris:
        Image.open(io.BytesIO(base64.b64decode(uri))).verify()
    assert 'src="http' not in html and ".png\"" not in html
    for text in ("Outcomes", "Timings", "dwell_32", "t_32", "Where the time goes", "Fingerprints",
                 "转录中", "http://127.0.0.1:8765", "local/local", "prod/prod", "concurrency"):
        assert text in html


def test_markdown_has_tables_and_links(report):
    md = (report.parent / "report.md").read_text(encoding="utf-8")
    for name in FIGURES:
        assert f"]({name}.png)" in md
    assert "| target | label | metric | n | p50 | p90 | p99 | max |" in md


def test_data_files_beside_the_report(report):
    out = report.parent
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["label"]) == {"local", "prod"}
    probes = pd.read_parquet(out / "probes.parquet")
    samples = pd.read_parquet(out / "samples.parquet")
    assert len(probes) == 40 and {"group", "time_scale", "t_32"} <= set(probes.columns)
    assert samples["run_id"].nunique() == 2


def test_time_scaled_run_says_so(make_run, tmp_path):
    run = make_run(tmp_path / "runs", seed=9, time_scale=0.1, probes=8)
    html = build_report([run], tmp_path / "out").read_text(encoding="utf-8")
    assert "time-scaled run ×0.1; times shown in scenario seconds" in html
    assert "scenario seconds" in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")


def test_default_out_dir_is_timestamped(fast_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = build_report([fast_run], None)
    assert re.fullmatch(r"report-\d{8}T\d{6}", path.parent.name)
    assert path.parent.parent.name == "reports"


def test_the_report_opens_with_the_verdict_then_the_diagnosis(fast_run, stale_run, tmp_path):
    """Issues 9 and 13: report.html and report.md open with the verdict box (SLOs, the comparison with the
    first run) and then the diagnosis, which names slow transcription for the stale run."""
    html_path = build_report([fast_run, stale_run], tmp_path / "report")
    html = html_path.read_text()
    verdict, diagnosis, timings = (html.index('class="verdict'), html.index("<h2>Diagnosis"),
                                   html.index("<h2>Timings"))
    assert verdict < diagnosis < timings
    assert "Verdict: regression against the baseline" in html and "FAIL" in html
    assert "baseline " in html[verdict:diagnosis] and "total_s" in html[verdict:diagnosis]
    assert "evidence for slow_transcription" in html[diagnosis:timings]
    md = (tmp_path / "report" / "report.md").read_text()
    assert md.index("## Verdict") < md.index("## Diagnosis") < md.index("## Runs")
    findings = json.loads((tmp_path / "report" / "diagnosis.json").read_text())
    # the synthetic stale run also fails 10 % of its jobs: backend errors are evidence too
    assert [f["cause"] for f in findings if f["verdict"] == "for"] == ["slow_transcription", "backend_errors"]


def test_synthetic_runs_derive_their_timings_through_the_timeline(stale_run):
    """scripts/synth_runs.py builds records with probes.analysis.timeline, like the probe engine."""
    from probes.analysis.timeline import analyse

    for line in (stale_run / "probes.jsonl").read_text().splitlines()[:5]:
        record = json.loads(line)
        derived = analyse(record["samples"], [20, 32, 42, 55, 58, 60, 88, 100]).to_record()
        assert {k: record[k] for k in derived} == derived
