"""`make bench`: every benchmark, one after the other, each printing JSON lines.

Benchmarks are never part of `make test`. Run on an otherwise idle machine; the
figures that go into BENCHMARKS.md are the ratios measured side by side in one
run. Pass names to run a subset: `python bench/run_all.py sim probe`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHES = {
    "fixtures": ["bench/bench_fixtures.py"],
    "sim": ["bench/bench_sim.py"],
    "probe": ["bench/bench_probe.py"],
    "report": ["bench/bench_report.py"],
    "accuracy": ["bench/bench_accuracy.py"],
    "load": ["bench/bench_load.py"],
    "history": ["bench/bench_history.py"],
    "gate": ["bench/bench_gate.py"],
    "paths": ["bench/bench_paths.py"],
}


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names or list(BENCHES):
        print(f"== {name}", flush=True)
        failed |= subprocess.run([sys.executable, *BENCHES[name]], cwd=ROOT).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
