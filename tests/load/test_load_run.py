"""Acceptance of load mode against real simulators: short headless Locust runs on loopback.

    closed  15 s: the phase table (phases.csv, apart from Locust's HTTP stats) counts the completed
            flows of probes.jsonl, flows in flight at the end finish (no cut_off, no failures),
            the phase medians agree with `probes run` on the same scenario, a target with cleanup = true
            is left no diaries, and the target's presigned flow (presign, object PUT, create) shows in
            Locust's stats, never its URL
    open    15 s against a slowed simulator: the arrival rate holds within 10 %
    workers 15 s, master + 2 workers: the same rows, one probes file per worker, the report
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx

from probes.probe.cadence import APP_FAST_INTERVAL_S
from probes.sim.server import simulator_process

from .conftest import ROOT, LoadRun, run_load, write_targets

SLACK_S = 0.025
PHASES = {"time_to_20", "time_to_32", "time_to_42", "time_to_55", "time_to_58", "time_to_60", "time_to_88",
          "time_to_100", "dwell_20", "dwell_32", "dwell_42", "dwell_55", "dwell_58", "dwell_60", "dwell_88",
          "dwell_100", "longest_stall", "transcription", "total"}


def load_args(tmp_path: Path, fixtures: Path, url: str, *extra: str, **fields: object) -> list[str]:
    targets = write_targets(tmp_path / "targets.toml", "sim", url, allow_load=True, **fields)
    return ["--target", "sim", "--targets", str(targets), "--fixtures", str(fixtures), "--out",
            str(tmp_path / "load"), "--quiet", *extra]


def check_phase_rows(run: LoadRun, distributed: bool = False) -> list[dict]:
    """Every PHASE row counts exactly the completed flows of probes.jsonl; returns the records."""
    assert run.code == 0, run.stderr[-2000:]
    records = run.records()
    completed = sum(1 for r in records if r["outcome"] == "completed")
    assert completed >= 5
    stats = run.stats()
    phase_rows = run.phases()
    assert PHASES <= set(phase_rows)
    for name in PHASES:
        row = phase_rows[name]
        assert int(row["flows"]) - int(row["failures"]) == completed, name
    # Locust's own statistics hold HTTP requests only: the Aggregated row is their sum.
    assert {kind for kind, _ in stats} <= {"POST", "GET", "DELETE", "PUT", ""}, set(stats)
    http = sum(int(row["Request Count"]) for (kind, name), row in stats.items() if name != "Aggregated")
    assert int(stats[("", "Aggregated")]["Request Count"]) == http
    # A flow cut off by the end of the run while its upload was in flight has a record but no upload row.
    presigned = {r["upload"] for r in records} == {"presigned"}  # the target's flow (targets default to it)
    if presigned:
        assert {("POST", "presign"), ("PUT", "object PUT"), ("POST", "create")} <= set(stats), set(stats)
        assert not any("_s3" in name or "X-Amz" in name for _, name in stats), "the PUT is one row, never its URL"
    answered = sum(1 for r in records if (r["create_s"] if presigned else r["upload_status"]) is not None)
    uploads = int(stats[("POST", "create" if presigned else "upload")]["Request Count"])
    # Locust's own CSV is its live view: in a distributed run a worker's last seconds can miss the
    # master's final write (the records and phases.csv are merged after every worker exited).
    assert uploads <= len(records) and (distributed or answered <= uploads), (answered, uploads, len(records))
    assert ("GET", "progress poll") in stats
    assert not any("/diary/voice/progress/" in name for _, name in stats), "polls are grouped under one name"
    return records


def medians(records: list[dict], key: str) -> float:
    values = [r["total_s"] if key == "total" else r["milestones"][key]["t_s"]
              for r in records if r["outcome"] == "completed"]
    return statistics.median(values)


def probes_run(url: str, fixtures: Path, out: Path) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "probes", "run", "--url", url, "-n", "9", "--concurrency", "3",
                           "--fixtures", str(fixtures), "--out", str(out), "--quiet", "--upload", "presigned"],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    return [json.loads(line) for line in (run_dir / "probes.jsonl").read_text().splitlines()]


def test_closed_run_phase_rows_match_records_and_agree_with_probes_run(tmp_path, load_fixtures) -> None:
    # time scale 0.3: a flow lasts ~2.8 s, long enough for 32 % and 88 % to fall between 300 ms polls.
    with simulator_process("fast", time_scale=0.3) as load_url, simulator_process("fast", time_scale=0.3) as run_url:
        with ThreadPoolExecutor(2) as pool:
            loaded = pool.submit(run_load, *load_args(tmp_path, load_fixtures, load_url, "--users", "3",
                                                      "--duration", "15s", "--no-report", cleanup=True), cwd=tmp_path)
            probed = pool.submit(probes_run, run_url, load_fixtures, tmp_path / "runs")
            run, reference = loaded.result(), probed.result()
        left = httpx.get(f"{load_url}/diary/list", timeout=10).json()
    records = check_phase_rows(run)
    # cleanup = true reaches the Locust users: every flow deleted its diary, none is left
    assert left == [] and {r["cleanup"] for r in records} == {"deleted"}, (left[:3], run.stderr[-2000:])
    assert ("DELETE", "cleanup") in run.stats()  # Locust's live view: its last row can miss the final flows
    print(f"closed: {len(records)} flows, {sum(r['outcome'] == 'completed' for r in records)} completed, "
          f"phase total count {run.phases()['total']['flows']}")
    # the end of the run lets flows in flight finish (--stop-timeout): a healthy run shows no failures
    assert Counter(r["outcome"] for r in records) == {"completed": len(records)}
    meta = json.loads((run.run_dir / "run.json").read_text())
    assert meta["n"] == len(records) and meta["ended_at"] and meta["scenario"] == "fast"
    assert meta["load"]["model"] == "closed" and meta["fingerprint"]["signature"]
    assert meta["upload"] == {"flow": "presigned", "base64": True}
    assert all(r["put_s"] is not None and r["shown_held_32_s"] is not None for r in records)
    for path in run.run_dir.rglob("*"):  # Locust's CSV and HTML too: no presigned URL, no signature
        text = path.read_text(errors="replace") if path.is_file() else ""
        assert "X-Amz-" not in text and "SIMULATOR%2F" not in text, path
        assert set(re.findall(r"\b[0-9a-f]{64}\b", text)) <= {meta["fixture"]["sha256"]}, path
    # the bar the user sees, replayed in scenario seconds by both (load mode reads the time scale from run.json)
    for key in ("shown_held_32_s", "shown_lag_max_s"):
        bars = [statistics.median(r[key] for r in rs) for rs in (records, reference)]
        print(f"median {key}: load {bars[0]:.3f} s, probes run {bars[1]:.3f} s")
        assert abs(bars[0] - bars[1]) <= 0.8 * 0.3 + SLACK_S, (key, bars)  # one tick of the app's timer at 0.3
    for key in ("32", "88", "total"):
        load_median, run_median = medians(records, key), medians(reference, key)
        print(f"median {key}: load {load_median:.3f} s, probes run {run_median:.3f} s")
        # total_s is a poll time itself (not a midpoint), so two runs can differ by one interval plus jitter.
        assert abs(load_median - run_median) <= APP_FAST_INTERVAL_S + SLACK_S, (key, load_median, run_median)


def arrival_rate(records: list[dict]) -> float:
    starts = sorted(datetime.fromisoformat(r["started_at"].replace("Z", "+00:00")).timestamp() for r in records)
    return (len(starts) - 1) / (starts[-1] - starts[0])


def test_open_model_holds_the_arrival_rate_while_the_backend_is_slow(tmp_path, load_fixtures) -> None:
    # stale-32 at 0.2: every flow takes ~12.4 s, so ~50 flows are in flight at 4/s; a closed
    # model of the same pool would slow its arrivals down with the backend.
    with simulator_process("stale-32", time_scale=0.2) as url:
        run = run_load(*load_args(tmp_path, load_fixtures, url, "--model", "open", "--rate", "4", "--users", "80",
                                  "--duration", "15s", "--stop-timeout", "0", "--no-report", "--upload", "multipart"),
                       cwd=tmp_path)
    assert run.code == 0, run.stderr[-2000:]
    records = run.records()
    assert {r["upload"] for r in records} == {"multipart"}  # --upload overrides the target's presigned
    assert json.loads((run.run_dir / "run.json").read_text())["upload"] == {"flow": "multipart", "base64": None}
    print(f"open model: {len(records)} flows, arrival rate {arrival_rate(records):.3f}/s (target 4)")
    assert abs(arrival_rate(records) - 4.0) <= 0.4, arrival_rate(records)
    lateness = sorted(r["start_lateness_s"] for r in records)
    assert lateness[int(0.95 * (len(lateness) - 1))] < 0.05, lateness[-5:]
    outcomes = Counter(r["outcome"] for r in records)
    assert outcomes["cut_off"] >= 40, "most flows were still in the slow backend when the run ended"
    assert set(outcomes) <= {"completed", "cut_off"}, outcomes
    phases = run.phases()
    assert int(phases["start_lateness"]["flows"]) == len(records)
    assert int(phases.get("total", {}).get("failures", 0)) == 0, "a flow cut off by the run's end is no failure"


def test_distributed_run_with_two_workers(tmp_path, load_fixtures) -> None:
    with simulator_process("fast", time_scale=0.1) as url:
        run = run_load(*load_args(tmp_path, load_fixtures, url, "--workers", "2", "--users", "12", "--model", "open",
                                  "--rate", "6", "--duration", "15s"), cwd=tmp_path, timeout=90)
    records = check_phase_rows(run, distributed=True)
    files = sorted((run.run_dir / "workers").glob("probes-*.jsonl"))
    assert [f.name for f in files] == ["probes-0.jsonl", "probes-1.jsonl"]
    per_worker = [len(f.read_text().splitlines()) for f in files]
    assert all(n > 0 for n in per_worker) and sum(per_worker) == len(records)
    assert len({r["probe_id"] for r in records}) == len(records)
    print(f"distributed: per worker {per_worker}, arrival rate {arrival_rate(records):.3f}/s (target 6)")
    assert abs(arrival_rate(records) - 6.0) <= 0.6
    meta = json.loads((run.run_dir / "run.json").read_text())
    assert meta["load"]["workers"] == 2 and meta["n"] == len(records)
    assert (run.run_dir / "locust.html").exists() and (run.run_dir / "report" / "report.html").exists()
