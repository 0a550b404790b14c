"""Benchmark of the probe engine: how many flows one `probes run` process holds on time.

One `probes run` process against the simulator in another process, at the
`app` cadence, with C probes in flight: the share of polls that started more
than 5/10/20/50/100 ms after they were due (every record counts them), CPU
seconds per 1,000 polls (process CPU including start-up), and the largest C
whose lateness p99 is <= 20 ms (at most 1 % of polls later than 20 ms) — side
by side with a bare aiohttp loop of the same flow (bench/bare_aiohttp_flow.py)
against the same simulator in the same run. The simulator runs the `stuck`
scenario so every probe stays in flight until its timeout.

With --against REV[,REV...] the same steps also run the probe engine of other
commits (checked out into bench/out/trees/, run by this venv's Python), in turn
with this tree's, so a change is measured beside the commit before it in one
run on the same machine weather (`make bench-quick` does it for HEAD~1); with
several revisions it is a bisect. --rounds repeats every step, in turn again.

    .venv/bin/python bench/bench_probe.py [--steps 375,500,625,750] [--seconds 10] [--against REV,...] [--rounds N]
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


def checkout(rev: str) -> Path:
    """REV's tree in bench/out/trees/<sha> (made once, detached, no venv of its own)."""
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    tree = OUT / "trees" / sha[:12]
    if not (tree / "probes").is_dir():
        tree.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "worktree", "add", "--detach", "--force", str(tree), sha], cwd=ROOT, check=True,
                       capture_output=True)
    return tree


def probes_step(url: str, flows: int, seconds: float, tree: Path = ROOT) -> dict:
    runs = OUT / "probe-runs"
    cpu0, wall0 = _child_cpu(), time.monotonic()
    done = subprocess.run(  # cwd first on sys.path: `-m probes` is the tree's own package
        [sys.executable, "-m", "probes", "run", "--url", url, "-n", str(flows), "--concurrency", str(flows),
         "--timeout", str(seconds), "-q", "--out", str(runs), "--fixtures", str(ROOT / "fixtures")],
        capture_output=True, text=True, cwd=tree, timeout=seconds * 6 + 60,
    )
    cpu, wall = _child_cpu() - cpu0, time.monotonic() - wall0
    lines = done.stdout.strip().splitlines()
    if not lines or not (Path(lines[-1]) / "probes.jsonl").is_file():
        raise SystemExit(f"probes run in {tree} failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    run_dir = Path(lines[-1])
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
    parser.add_argument("--against", metavar="REV,...", help="also run the probe engine of these commits, in turn")
    parser.add_argument("--rounds", type=int, default=1, help="run every step this many times, in turn")
    parser.add_argument("--no-bare", action="store_true", help="leave out the bare aiohttp loop")
    args = parser.parse_args()
    steps = [int(x) for x in args.steps.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    kinds = {"probes": lambda url, flows: probes_step(url, flows, args.seconds)}
    for rev in (args.against or "").split(","):
        if rev:
            tree = checkout(rev)
            kinds[f"probes@{rev}"] = lambda url, flows, tree=tree: probes_step(url, flows, args.seconds, tree)
    if not args.no_bare:
        kinds["bare-aiohttp"] = lambda url, flows: bare_step(url, flows, args.seconds)
    rows = []
    with simulator_process("stuck", port=free_port()) as url:
        for round_ in range(args.rounds):
            for flows in steps:
                for kind, step in kinds.items():
                    row = {"kind": kind, "round": round_, **step(url, flows)}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    best = {kind: max((r["flows"] for r in rows if r["kind"] == kind and r["lateness_p99"] <= GOAL_P99_S), default=0)
            for kind in kinds}
    print(json.dumps({"max_flows_p99_le_20ms": best}))
    for flows in steps:  # the figure a closing note quotes: share of polls > 20 ms late, per engine and round
        late: dict[str, list[str]] = {}
        for r in rows:
            if r["flows"] == flows:
                late.setdefault(r["kind"], []).append(f"{r['share_late_by_ms']['20']:.2%}" if "share_late_by_ms" in r
                                                      else f"p99 {r['lateness_p99'] * 1000:.1f} ms")
        print(f"{flows} flows: " + "; ".join(f"{k} {', '.join(v)}" for k, v in late.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
