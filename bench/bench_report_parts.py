"""What the report's verdict and diagnosis cost: warm reports in one process, with and without them.

    .venv/bin/python bench/bench_report_parts.py RUN_DIR RUN_DIR [--repeat 5]

Alternates full reports and reports whose verdict and diagnosis are left empty (patched out in this
process only), after one warm-up report and after scipy.stats is imported, so the difference is the
work those two sections do. Used to separate new report sections from the layout move when comparing
with an older commit (BENCHMARKS.md, "Layout move").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import scipy.stats  # noqa: E402,F401  - imported up front: its import is counted apart

import probes.report.build as build  # noqa: E402
from probes.report.verdict import Verdict  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    real = (build.build_verdict, build.build_diagnoses)
    out = Path("/tmp/bench-report-parts")
    build.build_report(args.runs, out)  # warm-up: caches, fonts
    times: dict[str, list[float]] = {"full": [], "without": []}
    for _ in range(args.repeat):
        for kind in ("full", "without"):
            if kind == "without":
                build.build_verdict, build.build_diagnoses = (lambda runs, probes: Verdict()), (lambda r, p: [])
            t = time.perf_counter()
            build.build_report(args.runs, out)
            times[kind].append(time.perf_counter() - t)
            build.build_verdict, build.build_diagnoses = real
    full, without = statistics.median(times["full"]), statistics.median(times["without"])
    print(json.dumps({"bench": "report parts", "warm_full_s": round(full, 2), "warm_without_s": round(without, 2),
                      "verdict_and_diagnosis_s": round(full - without, 2)}))


if __name__ == "__main__":
    main()
