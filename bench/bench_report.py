"""Benchmark `build_report` at scale: 100,000 probes x 40 polls, cold (JSONL) and warm (Parquet).

Why subprocesses: each measurement gets a fresh interpreter, so the wall time
includes imports and the peak RSS (getrusage RUSAGE_CHILDREN ru_maxrss, the
largest child, parse workers included) is that run's alone. Generated runs are
cached in bench/out/ (git-ignored); delete it to regenerate.

    .venv/bin/python bench/bench_report.py [--probes 100000] [--samples 40]

Prints one JSON object. Goal: <= 10 s wall and <= 1.5 GB peak RSS. cpu_s (user +
system, workers included) and the load average are printed too: on a shared
machine the wall time varies with other load, the CPU time much less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PY = sys.executable

CHILD = """
import sys, time
from pathlib import Path
t = time.perf_counter()
from probes.report import build_report
build_report([Path(p) for p in sys.argv[2:]], Path(sys.argv[1]))
print(time.perf_counter() - t)
"""

PARSE_PATHS = """
import gc, json, statistics, sys, time
from pathlib import Path
from probes.report.jsonl import parse_block, parse_general
from probes.report.load import CHUNK_BYTES, line_ranges
path = Path(sys.argv[1])
data = path.read_bytes()
blocks = [data[a:b] for a, b in line_ranges(path, CHUNK_BYTES)]
milestones = [str(m) for m in json.loads((path.parent / "run.json").read_text())["milestones"]]
gc.disable()
times = {"fast": [], "general": []}
for _ in range(3):  # alternating, one process: the ratio is what survives a noisy machine
    for name, parse in (("fast", parse_block), ("general", parse_general)):
        t = time.perf_counter()
        for block in blocks:
            parse(block, is_last=False, milestones=milestones)
        times[name].append(time.perf_counter() - t)
fast, general = statistics.median(times["fast"]), statistics.median(times["general"])
print(json.dumps({"mb": round(len(data) / 1e6, 1), "fast_s": round(fast, 2), "general_s": round(general, 2),
                  "speedup": round(general / fast, 2)}))
"""

LOAD_ONLY = """
import sys, time
from pathlib import Path
t = time.perf_counter()
from probes.report.load import load_runs
load_runs([Path(p) for p in sys.argv[2:]], cache=False)
print(time.perf_counter() - t)
"""


def generate(probes: int, samples: int) -> list[Path]:
    """Two stale-32 runs of probes/2 each (cached; regenerated when the parameters change)."""
    runs_dir = OUT / f"runs-{probes}x{samples}"
    stamp = runs_dir / ".complete"
    if not stamp.exists():
        shutil.rmtree(runs_dir, ignore_errors=True)
        runs_dir.mkdir(parents=True)
        half = probes // 2
        procs = [subprocess.Popen([PY, str(ROOT / "scripts" / "synth_runs.py"), "--out", str(runs_dir),
                                   "--probes", str(n), "--samples", str(samples), "--profile", "stale-32",
                                   "--seed", str(seed), "--target", "bench", "--label", f"run{seed}",
                                   "--fail-rate", "0.02"], stdout=subprocess.DEVNULL)
                 for seed, n in ((1, half), (2, probes - half))]
        if any(p.wait() for p in procs):
            sys.exit("bench: generating runs failed")
        stamp.touch()
    return sorted(p for p in runs_dir.iterdir() if p.is_dir())


def drop_cache(runs: list[Path]) -> None:
    for r in runs:
        for name in ("probes.parquet", "samples.parquet"):
            (r / name).unlink(missing_ok=True)


def measure(mode: str, args: list[str]) -> dict:
    """Wall seconds and peak RSS (MB) of one fresh child, measured by a wrapper process.

    RUSAGE_CHILDREN's ru_maxrss is a running maximum over every child a process
    ever waited for, so each measurement gets its own wrapper to read it from.
    """
    proc = subprocess.run([PY, __file__, "--child", mode, *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"bench: {mode} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child(mode: str, args: list[str]) -> None:
    """Inside the wrapper: run the measured interpreter and report its figures as JSON."""
    code = {"load": LOAD_ONLY, "report": CHILD}[mode]
    t = time.perf_counter()
    proc = subprocess.run([PY, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(proc.stderr)
    use = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child and the parse workers it waited for
    print(json.dumps({"wall_s": round(wall, 2), "inner_s": round(float(proc.stdout.strip().splitlines()[-1]), 2),
                      "cpu_s": round(use.ru_utime + use.ru_stime, 2), "peak_rss_mb": round(use.ru_maxrss / 1024),
                      "load_avg_1m": round(os.getloadavg()[0], 2)}))


def summarise(rows: list[dict]) -> dict:
    """Each figure's median over the repeats, and every run's wall time."""
    out = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    out["wall_s_runs"] = [r["wall_s"] for r in rows]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probes", type=int, default=100_000)
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3, help="cold and warm reports to time (the machine is noisy)")
    ap.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], args.child[1:])
    runs = generate(args.probes, args.samples)
    run_args = [str(r) for r in runs]
    jsonl_mb = sum((r / "probes.jsonl").stat().st_size for r in runs) / 1e6
    paths = subprocess.run([PY, "-c", PARSE_PATHS, str(runs[0] / "probes.jsonl")], cwd=ROOT, capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    drop_cache(runs)
    cold_load = measure("load", run_args)  # parse only, no cache written
    cold, warm = [], []
    for _ in range(args.repeat):  # cold and warm alternate, so both see the same stretch of machine weather
        drop_cache(runs)
        cold.append(measure("report", [str(OUT / "report-cold"), *run_args]))  # parse + write cache + report
        warm.append(measure("report", [str(OUT / "report-warm"), *run_args]))  # Parquet cache hit
    print(json.dumps({
        "probes": args.probes, "samples_per_probe": args.samples, "jsonl_mb": round(jsonl_mb, 1),
        "cpus": len(os.sched_getaffinity(0)),
        "parse_one_file_serial": json.loads(paths.stdout.strip().splitlines()[-1]),
        "load_only_cold": cold_load, "build_report_cold": summarise(cold), "build_report_warm": summarise(warm),
        "goal": {"wall_s": 10, "peak_rss_mb": 1536},
    }, indent=1))


if __name__ == "__main__":
    main()
