"""Benchmark of the probe engine (issue: probe engine, acceptance 3).

One `probes run` process against the simulator in another process, at the
`app` cadence, with C probes in flight: the poll lateness p99 (as an upper
bound from the run-wide share of polls later than 5/10/20/50/100 ms; every
record counts them), CPU seconds per 1,000 polls (process CPU including start-up),
and the largest C that keeps lateness p99 <= 20 ms — side by side with a bare
aiohttp loop of the same flow (bench/bare_aiohttp_flow.py) against the same
simulator in the same run. The simulator runs the `stuck` scenario so every
probe stays in flight until its timeout.

    .venv/bin/python bench/bench_probe.py [--steps 375,500,625,750] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from probes.probe.run import STAGGER_PER_PROBE_S, STAGGER_S
from probes.sim.server import free_port, simulator_process

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
GOAL_P99_S = 0.020


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def probes_step(url: str, flows: int, seconds: float) -> dict:
    runs = OUT / "probe-runs"
    cpu0, wall0 = _child_cpu(), time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "probes", "run", "--url", url, "-n", str(flows), "--concurrency", str(flows),
         "--timeout", str(seconds), "-q", "--out", str(runs), "--fixtures", str(ROOT / "fixtures")],
        capture_output=True, text=True, cwd=ROOT, timeout=seconds * 6 + 60,
    )
    cpu, wall = _child_cpu() - cpu0, time.monotonic() - wall0
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    records = [json.loads(line) for line in (run_dir / "probes.jsonl").open()]
    lateness = [r["lateness"] for r in records if r.get("lateness")]
    polls = sum(r["poll_count"] for r in records)
    planned = sum(x["n"] for x in lateness)
    over = {ms: sum(x["over_ms"][ms] for x in lateness) / planned for ms in lateness[0]["over_ms"]}
    # p99 <= 20 ms exactly when at most 1 % of all polls started more than 20 ms late
    p99_bound = next((int(ms) / 1000 for ms, share in over.items() if share <= 0.01), float("inf"))
    return {"flows": flows, "polls": polls, "share_late_by_ms": {k: round(v, 4) for k, v in over.items()},
            "lateness_p99": p99_bound,
            "cpu_s_per_1000_polls": round(cpu / polls * 1000, 3), "wall_s": round(wall, 1),
            "outcomes": sorted({r["outcome"] for r in records})}


def bare_step(url: str, flows: int, seconds: float) -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bare_aiohttp_flow.py"), "--url", url, "--flows", str(flows),
         "--seconds", str(seconds), "--fixture", str(ROOT / "fixtures" / "speech-en-5s.m4a"),
         "--stagger", str(max(STAGGER_S, STAGGER_PER_PROBE_S * flows))],
        capture_output=True, text=True, timeout=seconds * 6 + 60, check=True,
    )
    result = json.loads(done.stdout)
    return {"flows": flows, "polls": result["polls"], "lateness_p50": result["lateness_p50"],
            "lateness_p99": result["lateness_p99"],
            "cpu_s_per_1000_polls": round(result["cpu_s"] / result["polls"] * 1000, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", default="375,500,625,750")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    steps = [int(x) for x in args.steps.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    with simulator_process("stuck", port=free_port()) as url:
        for flows in steps:
            for kind, step in (("probes", probes_step), ("bare-aiohttp", bare_step)):
                row = {"kind": kind, **step(url, flows, args.seconds)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    best = {kind: max((r["flows"] for r in rows if r["kind"] == kind and r["lateness_p99"] <= GOAL_P99_S), default=0)
            for kind in ("probes", "bare-aiohttp")}
    ratio = best["probes"] / best["bare-aiohttp"] if best["bare-aiohttp"] else None
    print(json.dumps({"max_flows_p99_le_20ms": best, "ratio": ratio}))


if __name__ == "__main__":
    main()
