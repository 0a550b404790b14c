"""`probes trend`: deploy detection (pure) and trend.html + PNGs built from a real history store."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from probes.canary.history import open_history
from probes.report.trend import LAST_RUNS, build_trend, deploy_marks
from tests.canary.conftest import probe_record, write_run

ROOT = Path(__file__).resolve().parents[2]
T0 = 1795683600.0  # 2026-11-26T09:00:00Z
SLO_OK = {"ok": True, "results": [
    {"metric": "total_s", "stat": "p90", "threshold": 15, "value": 10.0, "n": 3, "ok": True},
    {"metric": "dwell_32", "stat": "p90", "threshold": 3, "value": 0.5, "n": 3, "ok": True}]}
SLO_BROKEN = {"ok": False, "results": [{**SLO_OK["results"][0], "value": 62.0, "ok": False}, SLO_OK["results"][1]]}


def test_deploy_marks_per_target() -> None:
    runs = [
        ("a", 1, "canary", "f1", "s1"), ("b", 2, "canary", "g1", "t1"),
        ("a", 3, "before-deploy", "f1", "s1"), ("b", 4, "after-deploy", "g1", "t1"),
        ("a", 5, "after-deploy", "f2", "s2"), ("a", 6, "after-deploy", "f2", "s2"),
        ("a", 7, "canary", None, None), ("a", 8, "canary", "f3", "s2"), ("a", 9, None, "f3", "s3"),
    ]
    assert [(d.target, d.started_ts, d.reason) for d in deploy_marks(runs)] == [
        ("b", 4.0, "labelled after-deploy"),
        ("a", 5.0, "labelled after-deploy; new progress-state signature"),
        ("a", 8.0, "new fingerprint (health)"),  # compared with run 6: a run without a fingerprint changes nothing
        ("a", 9.0, "new progress-state signature"),
    ]
    assert deploy_marks([("a", 1, "after-deploy", "f", "s")]) == []  # the first run is no deploy


def fill(store, tmp_path: Path, target: str, count: int, start: float = T0) -> None:
    """count runs 5 minutes apart: run 10-12 stale (SLO broken), a deploy (new health) at run 15."""
    from datetime import datetime, timezone

    for i in range(count):
        stale = 10 <= i <= 12
        run_id = f"{target[:8].replace('<', '_')}-{i:03d}"
        moment = datetime.fromtimestamp(start + 300 * i, timezone.utc).isoformat().replace("+00:00", "Z")
        records = [probe_record(run_id, f"{p:04d}", total=62.0 if stale else 9.0 + p, dwell_32=52 if stale else 0.2)
                   for p in range(1, 4)]
        run_dir = write_run(tmp_path, run_id, target=target, started_at=moment, records=records,
                            slo=SLO_BROKEN if stale else SLO_OK, label="after-deploy" if i == 15 else "canary",
                            health={"status": "healthy", "version": "1.5" if i >= 15 else "1.4"})
        store.record_run(run_dir, exit_code=1 if stale else 0)


def test_trend_page_and_figures(history_url: str, tmp_path: Path) -> None:
    nasty = "<script>alert(1)</script> $\\frac{a}{"  # HTML and mathtext in a target name are data
    with open_history(history_url) as store:
        fill(store, tmp_path / "runs", "prod", 25)
        fill(store, tmp_path / "runs", nasty, 3)
        path = build_trend(store, None, 30 * 86400, tmp_path / "trend", now=T0 + 86400)
    page = path.read_text()
    assert path == tmp_path / "trend" / "trend.html"
    for metric in ("total_s", "dwell_32", "transcription_s"):
        png = tmp_path / "trend" / f"trend-{metric}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000
    assert page.count('src="data:image/png;base64,') == 3
    assert not re.search(r'(src|href)="(?!data:)', page)  # self-contained: nothing fetched from anywhere
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    table = page.split(f"Last {LAST_RUNS} runs")[1]
    assert table.count("<tr>") == LAST_RUNS + 1  # header + 20 newest runs
    assert "labelled after-deploy; new fingerprint (health)" in page  # health moved, the signature did not
    assert "labelled after-deploy" in page and "total_s p90 &lt;= 15" in page
    assert "28 runs" in page


def test_trend_of_one_target_marks_failures_and_the_deploy(history_url: str, tmp_path: Path) -> None:
    with open_history(history_url) as store:
        fill(store, tmp_path / "runs", "prod", 16)
        fill(store, tmp_path / "runs", "local", 2)
        path = build_trend(store, "prod", 86400, tmp_path / "trend", now=T0 + 16 * 300)
    page = path.read_text()
    assert "Canary trend: prod" in page and "local-000" not in page
    rows = page.split("Last 20 runs")[1].split("<tr>")[2:]
    assert len(rows) == 16
    failed = [r for r in rows if "FAILED" in r]
    assert len(failed) == 3 and all("broken" in r for r in failed)
    [deploy] = [r for r in rows if "labelled after-deploy" in r]
    assert "prod-015" in deploy


def test_empty_window_still_writes_a_page(tmp_path: Path) -> None:
    with open_history(str(tmp_path / "h.sqlite")) as store:
        path = build_trend(store, "prod", 3600, tmp_path / "trend")
    assert "No canary runs of prod in this window." in path.read_text()
    assert not list((tmp_path / "trend").glob("*.png"))


def test_cli_trend_and_bad_since(tmp_path: Path) -> None:
    history = tmp_path / "h.sqlite"
    with open_history(str(history)) as store:
        fill(store, tmp_path / "runs", "prod", 3, start=__import__("time").time() - 3600)
    ok = subprocess.run([sys.executable, "-m", "probes", "trend", "--history", str(history), "--since", "2h",
                         "--out", str(tmp_path / "t")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == str(tmp_path / "t" / "trend.html") and "3 runs" in Path(ok.stdout.strip()).read_text()
    bad = subprocess.run([sys.executable, "-m", "probes", "trend", "--history", str(history), "--since", "2 weeks"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--since must be" in bad.stderr


def test_undelivered_alerts_are_shown_by_the_trend(tmp_path: Path) -> None:
    """An alert the webhook never got is on the trend page and a warning of `probes trend`, not only in a table."""
    from probes.canary.history import MAX_DELIVERY_ATTEMPTS

    history = tmp_path / "h.sqlite"
    message = lambda state, event: {"probes": {"event": event}, "text": event}  # noqa: E731
    with open_history(str(history)) as store:
        fill(store, tmp_path / "runs", "prod", 3, start=__import__("time").time() - 3600)
        store.evaluate_alert("<b>prod</b>", "run-1", False, 1, 1, message)
        [due] = store.due_alerts("<b>prod</b>", 0)
        for attempt in range(MAX_DELIVERY_ATTEMPTS):
            store.record_delivery(due, False, "HTTP 500", 0)
            due = type(due)(due.target, due.run_id, due.event, attempt + 1, due.body)
        store.evaluate_alert("prod", "run-2", False, 1, 1, message)  # pending: not tried yet
    proc = subprocess.run([sys.executable, "-m", "probes", "trend", "--history", str(history), "--since", "2h",
                           "--out", str(tmp_path / "t")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "probes: warning: 2 alert(s) not delivered to the webhook, 1 of them given up" in proc.stderr
    page = (tmp_path / "t" / "trend.html").read_text()
    assert ("Alert fired of &lt;b&gt;prod&lt;/b&gt; (run run-1, " in page
            and f"NOT DELIVERED, given up after {MAX_DELIVERY_ATTEMPTS} attempt(s); last problem: HTTP 500." in page)
    assert "Alert fired of prod (run run-2, " in page and "not delivered yet, retried by later runs" in page


def test_envelope_keeps_every_column_extreme() -> None:
    """Drawing the envelope is drawing the line: per bin, the first, last, min and max points survive."""
    from probes.report.trend_plots import envelope

    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(0, 365, 105_120))
    y = rng.normal(10, 1, x.size)
    y[rng.random(x.size) < 0.01] = np.nan
    ex, ey = envelope(x, y, bins=1000)
    assert ex.size <= 4000 and np.all(np.diff(ex) >= 0)
    keep = ~np.isnan(y)
    assert ey.max() == y[keep].max() and ey.min() == y[keep].min()
    assert (ex[0], ey[0], ex[-1], ey[-1]) == (x[keep][0], y[keep][0], x[keep][-1], y[keep][-1])
    bins = np.minimum((ex / 365 * 1000).astype(int), 999)
    for b in (0, 123, 999):  # any bin: its extremes are there
        inside = keep & (np.minimum((x / 365 * 1000).astype(int), 999) == b)
        assert ey[bins == b].max() == y[inside].max() and ey[bins == b].min() == y[inside].min()
    small_x, small_y = envelope(x[:100], y[:100], bins=1000)
    assert small_x.size == np.count_nonzero(keep[:100])  # few points: drawn as they are
