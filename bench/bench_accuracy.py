"""How close a probe's milestones come to the simulator's ground truth (issue: probe engine, acceptance 1).

For each scenario and cadence: N probes against the simulator in its own
process; for every reached milestone, whether its [lo_s, hi_s] bracket holds
the true crossing and |t_s - truth|; and the error of the dwell at 32 %.
The simulator's clock starts when its upload handler starts, the probe's
when it starts sending the upload: a truth at server time T is at T + d on
the probe's clock, with d measured per probe from the two wall clocks (the
record's started_at and the simulator's t0_wall, same machine). Prints JSON
lines (the runs' own tables go to stderr).

    .venv/bin/python bench/bench_accuracy.py [-n 8]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import json
import tempfile
from datetime import datetime
from pathlib import Path

import httpx

from probes.probe.run import run_probes

from probes.probe.options import RunOptions
from probes.sim.server import free_port, simulator_process

ROOT = Path(__file__).resolve().parents[1]
CASES = [("fast", 0.25, "app", 0.3), ("stale-32", 0.1, "app", 0.3), ("fast", 0.25, "fine", 0.05),
         ("stale-32", 0.1, "fine", 0.05)]


def clock_offset(url: str, record: dict) -> float:
    """Seconds from the probe's t0 (upload request start) to the simulator's (its handler start)."""
    task = httpx.get(f"{url}/_sim/tasks/{record['task_id']}", trust_env=False).json()
    return task["t0_wall"] - datetime.fromisoformat(record["started_at"]).timestamp()


def measure(scenario: str, scale: float, cadence: str, interval: float, n: int, out: Path) -> dict:
    with simulator_process(scenario, port=free_port(), time_scale=scale) as url:
        with contextlib.redirect_stdout(sys.stderr):
            result = run_probes(RunOptions(target=None, url=url, n=n, concurrency=n, cadence=cadence, interval=interval,
                                out=out, fixtures_dir=ROOT / "fixtures", quiet=True))
        errors, dwell_errors, inside, total = [], [], 0, 0
        for record in result.records:
            events = httpx.get(f"{url}/_sim/tasks/{record['task_id']}/events", trust_env=False).json()
            d = clock_offset(url, record)
            for key, m in record["milestones"].items():
                truth = next(t for t, p, _ in events if p >= int(key)) + d
                total += 1
                inside += m["lo_s"] <= truth <= m["hi_s"]
                errors.append(abs(m["t_s"] - truth))
            start = next((t for t, p, _ in events if p == 32), None)
            true_dwell = 0.0 if start is None else next(t for t, p, _ in events if p > 32) - start
            dwell_errors.append(abs(record["dwell"]["32"] - true_dwell))
    errors.sort()
    return {"scenario": scenario, "time_scale": scale, "cadence": cadence, "interval_s": interval,
            "probes": len(result.records), "milestones": total, "bracket_holds_truth": f"{inside}/{total}",
            "abs_error_ms": {"p50": round(errors[len(errors) // 2] * 1e3, 1), "max": round(errors[-1] * 1e3, 1)},
            "dwell_32_abs_error_ms_max": round(max(dwell_errors) * 1e3, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            print(json.dumps(measure(*case, n=args.n, out=Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
