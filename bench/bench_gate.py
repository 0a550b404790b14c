"""The deploy gate at deploy-check sizes: false alarms between two runs of one build, misses of a 2x slowdown.

    .venv/bin/python bench/bench_gate.py [--pairs 24] [--n 3] [--scale 0.1]

Every run is a real `probes run` (N probes, concurrency N, fine cadence at the app's 300 ms in
scenario time) against simulators on loopback. Pairs are disjoint: `fast` vs `fast` (a false alarm
is any verdict of "regression"), `fast` vs `fast-2x` (every phase twice as slow: a miss is any
verdict other than "regression") and `fast` vs `stale-32`. The comparison is `probes compare`'s
(probes.analysis.compare) on the loaded runs. Prints one JSON line per pair kind.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probes.analysis import stats  # noqa: E402
from probes.analysis.compare import build_from_tables  # noqa: E402
from probes.probe.run import run_probes  # noqa: E402
from probes.probe.options import RunOptions
from probes.report.load import load_runs  # noqa: E402
from probes.sim.server import free_port, simulator_process  # noqa: E402

FAST_2X = ROOT / "bench" / "scenarios" / "fast-2x.toml"


def probe_runs(scenario: str, count: int, n: int, scale: float, fixtures: Path, out: Path) -> list[Path]:
    dirs = []
    with simulator_process(scenario, port=free_port(), time_scale=scale) as url:
        for i in range(count):
            result = run_probes(RunOptions(target=None, url=url, n=n, concurrency=n, label=f"{Path(scenario).stem}-{i}",
                                cadence="fine", interval=0.3 * scale, out=out, fixtures_dir=fixtures, quiet=True,
                                no_slo=True))
            dirs.append(result.run_dir)
    return dirs


def verdict(a: Path, b: Path) -> str:
    runs, probes, _ = load_runs([a, b], cache=False)
    ra, rb = runs
    side = lambda r: probes[probes["run_id"].astype(str) == str(r.meta["run_id"])]  # noqa: E731
    c = build_from_tables(ra.meta, side(ra), [], 1.0, rb.meta, side(rb), [], 1.0, stats.Thresholds())
    return c.verdict


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=24)
    p.add_argument("--n", type=int, default=3)
    p.add_argument("--scale", type=float, default=0.1)
    p.add_argument("--fixtures", type=Path, default=ROOT / "fixtures")
    args = p.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-gate-"))
    try:
        fast = probe_runs("fast", 2 * args.pairs, args.n, args.scale, args.fixtures, out)
        slow = probe_runs(str(FAST_2X), args.pairs, args.n, args.scale, args.fixtures, out)
        stale = probe_runs("stale-32", min(args.pairs, 5), args.n, args.scale, args.fixtures, out)
        same = [verdict(fast[2 * i], fast[2 * i + 1]) for i in range(args.pairs)]
        twice = [verdict(fast[i], slow[i]) for i in range(args.pairs)]
        incident = [verdict(fast[i], stale[i]) for i in range(len(stale))]
        for kind, verdicts, bad in (("fast vs fast", same, lambda v: v == "regression"),
                                    ("fast vs fast-2x", twice, lambda v: v != "regression"),
                                    ("fast vs stale-32", incident, lambda v: v != "regression")):
            wrong = sum(1 for v in verdicts if bad(v))
            print(json.dumps({"bench": "gate", "pairs": kind, "n_per_side": args.n, "count": len(verdicts),
                              "wrong": wrong, "rate": round(wrong / len(verdicts), 3),
                              "verdicts": {v: verdicts.count(v) for v in sorted(set(verdicts))}}), flush=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
