"""Benchmark of load mode (issue 5, acceptance 3): flows one Locust process sustains.

Side by side in one run, against one simulator (`stuck`, time scale 1: every
flow keeps polling until the run ends) in its own process:

  probe    the real ProbeUser (locustfile.py) at `--probes-cadence fine
           --probes-interval 0.3`: the probe machine, records, the phase table
  minimal  MinimalFlowUser below: POST the fixture, then GET the progress URL
           on a fixed 300 ms schedule; no parsing, no records, no events
           (it only keeps the poll start times, to measure them)

For each step of concurrent flows, one Locust process runs for --seconds; the
figure is the p99 of the interval between consecutive polls of a flow (after
a warm-up), and a step is sustained when that p99 <= 310 ms. The result is the
largest sustained step of each user and their ratio (goal >= 0.8).

    .venv/bin/python bench/bench_load.py [--steps 100,250,500,750,1000] [--seconds 15]

This file is also the locustfile of the minimal user (`locust -f bench/bench_load.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gevent
from locust import events, task
from locust.contrib.fasthttp import FastHttpUser

ROOT = Path(__file__).resolve().parents[1]
GOAL_P99_S = 0.310
INTERVAL_S = 0.3
WARMUP_S = 3.0
_POLL_STARTS: list[list[float]] = []


class MinimalFlowUser(FastHttpUser):
    """The floor: the same requests with nothing of the harness around them."""

    concurrency = 2

    @task
    def flow(self) -> None:
        audio = Path(os.environ["BENCH_FIXTURE"]).read_bytes()
        answer = self.client.post("/diary/voice/async", files={"audio": ("recording.m4a", audio, "audio/m4a")},
                                  data={"duration": "5"}, name="upload")
        path = f"/diary/voice/progress/{json.loads(answer.content)['task_id']}"
        starts: list[float] = []
        _POLL_STARTS.append(starts)
        due = time.monotonic()
        while True:
            wait = due - time.monotonic()
            if wait > 0:
                gevent.sleep(wait)
            starts.append(time.monotonic())
            self.client.get(path, name="progress poll")
            due = max(due + INTERVAL_S, time.monotonic())


@events.quitting.add_listener
def _dump(**_kw) -> None:
    out = os.environ.get("BENCH_INTERVALS_OUT")
    if out and _POLL_STARTS:
        Path(out).write_text(json.dumps(_POLL_STARTS))


# -- the driver -----------------------------------------------------------------------------


def p99_interval(flows: list[list[float]], warmup_until: float) -> tuple[float, int]:
    """p99 of the gaps between consecutive poll starts after the warm-up, and how many gaps."""
    gaps = sorted(b - a for starts in flows for a, b in zip(starts, starts[1:]) if a >= warmup_until)
    if not gaps:
        return float("inf"), 0
    return gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))], len(gaps)


def locust(cmd: list[str], env: dict[str, str], seconds: float) -> None:
    subprocess.run([sys.executable, "-m", "locust", *cmd, "--headless", "--only-summary", "-t", f"{seconds:g}s",
                    "--loglevel", "ERROR"], env=env, cwd=ROOT, check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=seconds + 120)


def minimal_step(url: str, users: int, seconds: float, fixture: Path, tmp: Path) -> dict:
    out = tmp / f"minimal-{users}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_FIXTURE": str(fixture), "BENCH_INTERVALS_OUT": str(out)}
    locust(["-f", str(Path(__file__).resolve()), "MinimalFlowUser", "-u", str(users), "-r", str(users),
            "--host", url], env, seconds)
    flows = json.loads(out.read_text()) if out.exists() else []
    first = min((s[0] for s in flows if s), default=0.0)
    p99, n = p99_interval(flows, first + WARMUP_S)
    return {"user": "minimal", "flows": users, "p99_interval_s": round(p99, 4), "gaps": n}


def probe_step(url: str, users: int, seconds: float, fixtures: Path, tmp: Path) -> dict:
    targets = tmp / "targets.toml"
    targets.write_text(f'[targets.bench]\nbase_url = "{url}"\nallow_load = true\n')
    run_dir = tmp / f"probe-{users}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    locust(["-f", str(ROOT / "locustfile.py"), "-u", str(users), "-r", str(users), "--host", url,
            "--probes-target", "bench", "--probes-targets-file", str(targets), "--probes-fixtures-dir", str(fixtures),
            "--probes-cadence", "fine", "--probes-interval", str(INTERVAL_S), "--probes-run-dir", str(run_dir)],
           env, seconds)
    records = [json.loads(line) for line in (run_dir / "probes.jsonl").read_text().splitlines()]
    flows = [[row[0] for row in r["samples"]] for r in records]
    # Sample times are per flow (since its upload): the warm-up is measured on the flow's own clock.
    p99, n = p99_interval([[t for t in f if t >= WARMUP_S] for f in flows], 0.0)
    return {"user": "probe", "flows": users, "p99_interval_s": round(p99, 4), "gaps": n}


def largest(rows: list[dict], user: str) -> int:
    ok = [r["flows"] for r in rows if r["user"] == user and r["p99_interval_s"] <= GOAL_P99_S]
    return max(ok, default=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="100,250,500,750,1000")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--fixtures", type=Path, default=ROOT / "fixtures")
    args = parser.parse_args()
    from probes import defaults
    from probes.sim.server import simulator_process

    fixture = args.fixtures / defaults.FIXTURE
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, simulator_process("stuck", time_scale=1.0) as url:
        for users in (int(s) for s in args.steps.split(",")):
            for step in (minimal_step(url, users, args.seconds, fixture, Path(tmp)),
                         probe_step(url, users, args.seconds, args.fixtures, Path(tmp))):
                rows.append(step)
                print(json.dumps(step), flush=True)
    probe, minimal = largest(rows, "probe"), largest(rows, "minimal")
    print(json.dumps({"bench": "load", "goal_p99_interval_s": GOAL_P99_S, "probe_max_flows": probe,
                      "minimal_max_flows": minimal, "ratio": round(probe / minimal, 3) if minimal else None,
                      "goal_ratio": 0.8}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
