"""Where the fast transport starts to pay: CPU per poll and lateness of both request paths by concurrency.

    .venv/bin/python bench/bench_paths.py [--steps 8,32,64,128,256] [--seconds 12]

Each step runs `probes run` twice against the `stuck` simulator (every probe stays in flight until
its timeout), once with every request through the regular httpx client (proxies, cookies) and once
through FastTransport, in one process each, alternating. FAST_FROM in probes/probe/driver.py is the
smallest concurrency from which the fast path saves >= 10 % CPU per poll or the regular path's
polls start late.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probes.sim.server import free_port, simulator_process  # noqa: E402

CHILD = """
import sys
from pathlib import Path
from probes.probe.run import run_probes
from probes.probe.options import RunOptions
url, flows, seconds, fast, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
run_probes(RunOptions(target=None, url=url, n=flows, concurrency=flows, timeout_s=seconds, out=Path(out),
           fixtures_dir=Path(sys.argv[6]), quiet=True, no_slo=True, fast=fast))
"""


def step(url: str, flows: int, seconds: float, fast: bool, fixtures: Path) -> dict:
    with tempfile.TemporaryDirectory() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run([sys.executable, "-c", CHILD, url, str(flows), str(seconds), "1" if fast else "0", out,
                               str(fixtures)], cwd=ROOT, capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode not in (0, 1):
            sys.exit(proc.stderr[-2000:])
        run_dir = Path(proc.stdout.strip().splitlines()[-1])
        records = [json.loads(line) for line in (run_dir / "probes.jsonl").read_text().splitlines()]
    polls = sum(r["poll_count"] for r in records)
    late = sum((r["lateness"] or {}).get("over_ms", {}).get("20", 0) for r in records)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"flows": flows, "path": "fast" if fast else "httpx", "polls": polls,
            "cpu_ms_per_poll": round(1000 * cpu / max(polls, 1), 3), "late_over_20ms": round(late / max(polls, 1), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", default="8,32,64,128,256")
    p.add_argument("--seconds", type=float, default=12.0)
    p.add_argument("--fixtures", type=Path, default=ROOT / "fixtures")
    args = p.parse_args()
    with simulator_process("stuck", port=free_port()) as url:
        for flows in (int(s) for s in args.steps.split(",")):
            rows = [step(url, flows, args.seconds, fast, args.fixtures) for fast in (False, True)]
            for row in rows:
                print(json.dumps({"bench": "request paths", **row}), flush=True)
            saving = 1 - rows[1]["cpu_ms_per_poll"] / rows[0]["cpu_ms_per_poll"]
            print(json.dumps({"bench": "request paths", "flows": flows, "fast_saves_cpu": round(saving, 3)}),
                  flush=True)


if __name__ == "__main__":
    main()
