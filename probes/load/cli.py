"""`probes load` (alias `python -m probes.load`): a headless Locust run, single-process or master + workers.

What `make load` and `make load-distributed` call. In order: resolve the
target and refuse a load it does not allow (exit 2, before any request);
start the target's simulator when it is on loopback and nothing answers;
run Locust with the run directory reports/load/<run_id>/ as the home of its
CSV/HTML files and of the probe records; merge the workers' records; render
the probes report into <run_dir>/report/. Prints the run directory last.

Stopping: Ctrl-C or SIGTERM in any phase is exit 130. While Locust runs it
gets one SIGTERM (its children run in their own session, so a terminal's
Ctrl-C reaches only this process, which passes it on): flows in flight are
recorded as aborted, run.json is finished, the run directory printed, no
report rendered. A run directory that cannot be written (a full disk) is
exit 4 with one line.
"""

from __future__ import annotations

import argparse
import math
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from probes import defaults
from probes.config import Target, resolve_target
from probes.errors import (
    EXIT_INTERRUPTED, EXIT_NOT_RECORDED, EXIT_OK, EXIT_UNREACHABLE, NotRecorded, ProbesError, UsageError, os_reason,
)
from probes.interrupts import ForwardToChildren, sigterm_interrupts
from probes.load.guard import check_load
from probes.load.options import DEFAULT_OUT
from probes.load.phases import phase_lines
from probes.load.rundir import finish_run
from probes.report.files import make_dir
from probes.load.workload import MODELS, max_users, parse_duration, parse_stages, default_stages
from probes.fixtures.manifest import read_fixture
from probes.probe.store import new_run_id

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
SHAPEFILE = Path(__file__).resolve().parent / "shape.py"
WORKER_EXIT_S = 15.0
STOP_TIMEOUT_S = 30.0  # a healthy flow takes ~10 s, the incident's ~62 s: most in-flight flows finish
UNREACHED = frozenset({"upload_error", "auth_error"})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="probes load", description=__doc__.splitlines()[0],
                                epilog="Exit 0 done, 2 refused or bad usage (before any request), 3 no flow got past "
                                       "the upload, 4 the run directory could not be written (a full disk), "
                                       "130 interrupted (Ctrl-C or SIGTERM; flows in flight recorded as aborted).")
    p.add_argument("--target", default="local", help="target name from targets.toml")
    p.add_argument("--users", type=int, default=10, help="closed: users; open: the pool of flows in flight")
    p.add_argument("--rate", type=float, default=0.0, help="open: new flows/s; closed/ramp: a cap (0 = none)")
    p.add_argument("--duration", default="60s", help="run time, e.g. 60s, 5m")
    p.add_argument("--model", default="closed", choices=MODELS)
    p.add_argument("--think-time", type=float, default=0.0, help="closed: seconds between a user's flows")
    p.add_argument("--stages", default="", help="ramp: DURATION:USERS,... (default: up, hold, down)")
    p.add_argument("--workers", type=int, default=0, help="0: one process; N: a master and N workers on loopback")
    p.add_argument("--fixture", default=defaults.FIXTURE)
    p.add_argument("--cadence", default="app", choices=("app", "fine"))
    p.add_argument("--interval", type=float, default=defaults.FINE_INTERVAL_S)
    p.add_argument("--milestones", default=",".join(map(str, defaults.MILESTONES)))
    p.add_argument("--upload", choices=("presigned", "multipart"), default=None,
                   help="presigned (the app's flow: presign, PUT to the URL, create) or multipart (one POST); "
                        "default: the target's upload (presigned)")
    p.add_argument("--timeout", type=float, default=defaults.PROBE_TIMEOUT_S, help="give up on a flow after s")
    p.add_argument("--stop-timeout", type=float, default=STOP_TIMEOUT_S,
                   help="at the end of the run, let flows in flight finish for up to this many seconds; "
                        "flows still running then are recorded as cut_off (not failures)")
    p.add_argument("--label", default="load")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="parent of the run directory")
    p.add_argument("--targets", type=Path, default=defaults.TARGETS_FILE)
    p.add_argument("--fixtures", type=Path, default=defaults.FIXTURES_DIR)
    p.add_argument("--no-report", action="store_true", help="skip the probes report")
    p.add_argument("--quiet", action="store_true", help="only Locust's summary")
    return p.parse_args(argv)


def planned_users(args: argparse.Namespace, run_s: float) -> int:
    if args.model != "ramp":
        return args.users
    return max_users(parse_stages(args.stages) if args.stages else default_stages(args.users, run_s))


def locust_args(args: argparse.Namespace, target: Target, run_dir: Path) -> list[str]:
    """The Locust options shared by the single process and the master."""
    cmd = ["--headless", "-u", str(args.users), "-r", str(max(1, args.users)), "-t", args.duration,
           "--stop-timeout", f"{math.ceil(args.stop_timeout)}s",
           "--host", target.base_url, "--csv", str(run_dir / "locust"), "--html", str(run_dir / "locust.html"),
           "--probes-target", target.name, "--probes-targets-file", str(args.targets.resolve()),
           "--probes-fixture", args.fixture, "--probes-fixtures-dir", str(args.fixtures.resolve()),
           "--probes-cadence", args.cadence, "--probes-interval", repr(args.interval),
           "--probes-milestones", args.milestones, "--probes-model", args.model,
           "--probes-rate", repr(args.rate), "--probes-think-time", repr(args.think_time),
           "--probes-timeout", repr(args.timeout), "--probes-label", args.label,
           "--probes-run-dir", str(run_dir.resolve())]
    if args.upload:
        cmd += ["--probes-upload", args.upload]
    if args.stages:
        cmd += ["--probes-stages", args.stages]
    if args.quiet:
        cmd.append("--only-summary")
    return cmd


def locustfiles(model: str) -> str:
    return f"{LOCUSTFILE},{SHAPEFILE}" if model == "ramp" else str(LOCUSTFILE)


def run_locust(args: argparse.Namespace, target: Target, run_dir: Path) -> tuple[int, bool]:
    """Run Locust to the end: (the master's or single process's exit code, whether a signal stopped it).

    Ctrl-C and SIGTERM are passed on to every Locust process as one SIGTERM (probes.interrupts), and
    this process waits for them to stop their users and write their files.
    """
    base = [sys.executable, "-m", "locust", "-f", locustfiles(args.model)]
    shared = locust_args(args, target, run_dir)
    with ForwardToChildren() as signals:
        if args.workers <= 0:
            proc = subprocess.Popen(base + shared, start_new_session=True)
            signals.add(proc)
            return proc.wait(), signals.signum is not None
        from probes.sim.server import free_port

        port = free_port()
        master = subprocess.Popen(base + shared + ["--master", "--expect-workers", str(args.workers),
                                                   "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)],
                                  start_new_session=True)
        signals.add(master)
        workers = []
        try:
            for _ in range(args.workers):
                workers.append(subprocess.Popen([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
                                                 "--master-host", "127.0.0.1", "--master-port", str(port)]
                                                + (["--only-summary"] if args.quiet else []), start_new_session=True))
                signals.add(workers[-1])
            code = master.wait()
        finally:
            for proc in [master, *workers]:
                _stop(proc)
        return code, signals.signum is not None


def _stop(proc: subprocess.Popen) -> None:
    try:
        proc.wait(timeout=WORKER_EXIT_S)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=5)


def answers(base_url: str) -> bool:
    from probes.probe.local import answers as health_answers

    return health_answers(base_url)


@contextlib.contextmanager
def simulator_if_silent(target: Target) -> Iterator[None]:
    """The target's simulator (targets.toml `simulator`) when it is on loopback and nothing answers."""
    if not target.is_loopback or answers(target.base_url):
        yield
        return
    if not target.simulator:
        raise UsageError(f"nothing answers at {target.base_url} and targets.{target.name} names no simulator")
    from probes.sim.server import simulator_process

    print(f"nothing answers at {target.base_url}: starting simulator {target.simulator!r}", file=sys.stderr)
    with simulator_process(target.simulator, port=urlsplit(target.base_url).port or 80):
        yield


def render_report(run_dir: Path) -> Path | None:
    """The probes report of the load run, in <run_dir>/report/ (a report failure never loses the run)."""
    try:
        from probes.report import build_report
    except ImportError:  # pragma: no cover - probes.report not installed
        print("probes: report skipped (probes.report is not available)", file=sys.stderr)
        return None
    try:
        return build_report([run_dir], run_dir / "report")
    except NotRecorded:  # a full disk: exit 4, not a skipped report
        raise
    except ProbesError as exc:
        print(f"probes: report skipped: {exc}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    sigterm_interrupts()
    args = parse_args(argv)
    try:
        return _main(args)
    except KeyboardInterrupt:  # before Locust started, or while the report was rendered
        print("probes: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


def _main(args: argparse.Namespace) -> int:
    try:
        run_s = parse_duration(args.duration)
        target = resolve_target(args.targets, args.target, None, None, args.upload)
        check_load(target, planned_users(args, run_s), args.rate or None)
        if not 0 <= args.stop_timeout <= 3600:
            raise UsageError("--stop-timeout must be in [0, 3600] seconds")
        if args.workers < 0 or args.workers > 64:
            raise UsageError("--workers must be in 0..64")
        read_fixture(args.fixtures, args.fixture)
        target.token_source().current()  # exit 2 or 3 now, not a 401 per flow later
        with simulator_if_silent(target):
            run_dir = args.out / new_run_id(target.name, args.label)
            make_dir(run_dir, "the run directory")
            code, interrupted = run_locust(args, target, run_dir)
        if not (run_dir / "run.json").exists():  # Locust refused before the run began (its reason is above)
            if interrupted:
                print("probes: interrupted before the load run began", file=sys.stderr)
                return EXIT_INTERRUPTED
            return code or 2
        if code == EXIT_NOT_RECORDED:  # Locust could not write the run directory and said so in one line
            return code
        try:
            meta, phases = finish_run(run_dir)
        except OSError as exc:
            raise NotRecorded(f"could not record the load run in {run_dir}: {os_reason(exc)}") from None
        if interrupted:
            print(f"probes: interrupted: {meta['n']} flow record(s) in the run directory", file=sys.stderr)
            print(run_dir, flush=True)
            return EXIT_INTERRUPTED
        lines = phase_lines(phases)
        if lines:
            print("\n".join(lines), file=sys.stderr, flush=True)
        if not args.no_report:
            try:
                render_report(run_dir)
            except KeyboardInterrupt:  # the run is whole; only its report is missing
                print("probes: interrupted: the report was not written", file=sys.stderr)
                print(run_dir, flush=True)
                return EXIT_INTERRUPTED
    except ProbesError as exc:
        print(f"probes: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(run_dir, flush=True)
    outcomes = meta.get("outcomes") or {}
    if outcomes and set(outcomes) <= UNREACHED:
        return EXIT_UNREACHABLE
    return EXIT_OK if code in (0, 1) else code


if __name__ == "__main__":
    sys.exit(main())
