"""Reports and verdicts on real runs against the simulator, checked against its ground truth."""

from __future__ import annotations

import base64
import csv
import json
import statistics
from pathlib import Path

import httpx
import pytest
from PIL import Image

from probes.report.compare import build_comparison, run_compare
from probes.report import build_report, jsonl
from probes.probe.run import RunResult, run_probes
from probes.probe.options import RunOptions
from probes.analysis.stats import Thresholds

SCALE = 0.1
INTERVAL = 0.03  # real seconds: 0.3 scenario seconds, the app's resolution
SAME_SCALE = 0.5
TH = Thresholds()


def probe(url: str, out: Path, fixtures_dir: Path, n: int, label: str = "live", scale: float = SCALE) -> RunResult:
    return run_probes(RunOptions(target=None, url=url, n=n, concurrency=n, label=label, cadence="fine",
                      interval=INTERVAL * scale / SCALE, out=out / "runs", fixtures_dir=fixtures_dir, quiet=True))


def truth(url: str, task_id: str) -> tuple[float, float]:
    """(dwell at 32 %, time to completed) in real seconds from the simulator's events."""
    events = httpx.get(f"{url}/_sim/tasks/{task_id}/events", trust_env=False).json()
    at_32 = next(t for t, p, _ in events if p == 32)
    above = next(t for t, p, _ in events if p > 32)
    done = next(t for t, _, status in events if status == "completed")
    return above - at_32, done


def timings(report_dir: Path) -> dict[str, dict[str, float]]:
    with open(report_dir / "timings.csv", newline="") as f:
        return {row["metric"]: {k: float(row[k]) for k in ("n", "p50", "max")} for row in csv.DictReader(f)}


def test_report_numbers_match_the_ground_truth_and_embed_every_plot(sim, tmp_path, fixtures_dir, capsys):
    url = sim("stale-32", time_scale=SCALE)
    run = probe(url, tmp_path, fixtures_dir, n=4)
    truths = [truth(url, r["task_id"]) for r in run.records]
    data = (run.run_dir / "probes.jsonl").read_bytes()  # the engine's own lines take the report's fast path
    milestones = json.loads((run.run_dir / "run.json").read_text(encoding="utf-8"))["milestones"]
    assert jsonl._parse_fast(data, [str(m) for m in milestones]) is not None
    html = build_report([run.run_dir], tmp_path / "report")
    table = timings(html.parent)
    slack = (INTERVAL + 0.025) / SCALE  # one poll interval + 25 ms, in scenario seconds
    upload = max(r["upload_s"] for r in run.records) / SCALE
    assert table["dwell_32"]["p50"] == pytest.approx(statistics.median(d for d, _ in truths) / SCALE, abs=slack)
    assert table["total_s"]["p50"] == pytest.approx(statistics.median(t for _, t in truths) / SCALE,
                                                    abs=slack + upload)
    assert 45 < table["dwell_32"]["p50"] < 60  # the incident, in scenario seconds
    page = html.read_text(encoding="utf-8")
    assert "time-scaled" in page
    for name in ("progress", "milestones", "phases", "totals", "outcomes"):
        png = html.parent / f"{name}.png"
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width >= 400 and image.height >= 300
            assert len(image.convert("L").getcolors(maxcolors=256 * 256) or range(256)) > 10  # drawn on, not blank
        assert base64.b64encode(png.read_bytes()).decode()[:200] in page


def test_compare_on_real_runs(sim, tmp_path, fixtures_dir, capsys):
    # The pair that must not differ is the same backend twice: two simulators with the same seed draw the same
    # latencies. One simulator would give b the next six draws, whose median total is 1.1 s (12 %) below a's,
    # a real difference that the U test finds or misses by chance. Half speed keeps a busy machine's 50 ms
    # between the runs well under the 0.5 s threshold.
    a = probe(sim("fast", time_scale=SAME_SCALE), tmp_path, fixtures_dir, n=6, label="a", scale=SAME_SCALE)
    b = probe(sim("fast", time_scale=SAME_SCALE), tmp_path, fixtures_dir, n=6, label="b", scale=SAME_SCALE)
    same = build_comparison(a.run_dir, b.run_dir, TH)
    assert same.verdict == "no change" and not same.signature.fires

    renamed = probe(sim("renamed-steps", time_scale=SCALE), tmp_path, fixtures_dir, n=6, label="renamed")
    assert build_comparison(a.run_dir, renamed.run_dir, TH).signature.fires

    stale = probe(sim("stale-32", time_scale=SCALE), tmp_path, fixtures_dir, n=6, label="stale")
    assert run_compare(a.run_dir, stale.run_dir, max_rel=TH.max_rel, max_abs=TH.max_abs, alpha=TH.alpha,
                       out=None) is True
    assert "regression" in capsys.readouterr().out

    two = probe(sim("fast", time_scale=SCALE), tmp_path, fixtures_dir, n=2, label="two")
    few = build_comparison(a.run_dir, two.run_dir, TH)
    assert few.verdict == "no verdict" and not few.regression
