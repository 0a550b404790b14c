"""`make demo`: the incident, reproduced on loopback and reported.

Two simulators in their own processes on free loopback ports — `local` runs
`fast` (v1.4 on a laptop), `prod` runs `stale-32` (progress frozen at 32 %
for most of a minute) — both time-scaled so the demo takes well under two
minutes. Each is probed at the app's own resolution (the poll interval is
scaled with the time), the runs are compared, and the report is written to
reports/demo/. Figures are shown in the scenarios' unscaled seconds.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from probes.probe.cadence import APP_FAST_INTERVAL_S
from probes.errors import EXIT_OK, EXIT_REGRESSION, ProbesError
from probes.probe.run import RunResult, run_probes
from probes.probe.options import RunOptions
from probes.probe.summary import summary_rows
from probes.sim.server import free_port, simulator_process

TIME_SCALE = 0.1
PROBES_PER_TARGET = 10


def _write_targets(path: Path, urls: dict[str, str]) -> None:
    lines = ["# Written by make demo: two embedded simulators on loopback.\n"]
    for name, url in urls.items():
        lines.append(f'[targets.{name}]\nbase_url = "{url}"\nallow_load = true\n\n')
    path.write_text("".join(lines), encoding="utf-8")


def _probe(name: str, targets_file: Path, runs_dir: Path, n: int, scale: float) -> RunResult:
    result = run_probes(RunOptions(
        target=name, n=n, concurrency=n, label="demo", cadence="fine", interval=APP_FAST_INTERVAL_S * scale,
        targets_file=targets_file, out=runs_dir, quiet=True,
    ))
    if result.code not in (EXIT_OK, EXIT_REGRESSION):  # a broken SLO is what the demo shows, not a failure
        raise SystemExit(f"probes: demo: probing {name} failed with exit code {result.code}")
    return result


def summary_lines(local: RunResult, prod: RunResult, regression: bool) -> list[str]:
    """Three lines a person reads first, in the scenarios' unscaled seconds."""
    (lo,) = summary_rows(local.records, local.time_scale)
    (pr,) = summary_rows(prod.records, prod.time_scale)
    return [
        f"prod: total p50 {pr['total_s']['p50']:.1f} s vs local {lo['total_s']['p50']:.1f} s"
        f" (time-scaled x{prod.time_scale:g}, shown in scenario seconds)",
        f"prod stalls at 32 % for {pr['dwell_32']['p50']:.1f} s (p50); local {lo['dwell_32']['p50']:.1f} s",
        f"verdict: {'regression' if regression else 'no regression'}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("reports/demo"))
    parser.add_argument("-n", type=int, default=PROBES_PER_TARGET)
    parser.add_argument("--time-scale", type=float, default=TIME_SCALE)
    args = parser.parse_args(argv)
    from probes.report.compare import run_compare
    from probes.report import build_report

    out: Path = args.out
    shutil.rmtree(out, ignore_errors=True)
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True)
    targets_file = out / "targets.toml"
    try:
        with simulator_process("fast", port=free_port(), time_scale=args.time_scale) as local_url, \
                simulator_process("stale-32", port=free_port(), time_scale=args.time_scale) as prod_url:
            _write_targets(targets_file, {"local": local_url, "prod": prod_url})
            print(f"demo: local = fast at {local_url}, prod = stale-32 at {prod_url}, time scale x{args.time_scale:g}",
                  file=sys.stderr)
            local = _probe("local", targets_file, runs_dir, args.n, args.time_scale)
            prod = _probe("prod", targets_file, runs_dir, args.n, args.time_scale)
        regression = run_compare(local.run_dir, prod.run_dir, max_rel=0.10, max_abs=0.5, alpha=0.05, out=out)
        report = build_report([local.run_dir, prod.run_dir], out)
    except ProbesError as exc:
        print(f"probes: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print()
    for line in summary_lines(local, prod, regression):
        print(line)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
