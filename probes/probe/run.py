"""`probes run`: resolve the target and fixture, run the probes, write the run directory, print the table.

Exit codes (DESIGN.md): 0 ok; 2 bad usage or configuration; 3 the target
could not be reached or authenticated (no probe got past the upload); 130
interrupted (Ctrl-C or SIGTERM, in any phase: the run directory exists from
the start, every finished probe is on disk, in-flight ones as `aborted`).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from probes import __version__, defaults
from probes.config import Target, resolve_target
from probes.errors import EXIT_OK, EXIT_UNREACHABLE, UsageError
from probes.fixtures.manifest import read_fixture
from probes.probe import wire
from probes.probe.cadence import APP_FAST_INTERVAL_S, Cadence
from probes.probe.driver import HttpSide, Probe, TokenSource, fetch_health
from probes.probe.fingerprint import simulator_info
from probes.probe.live import LiveBars
from probes.probe.machine import MachineConfig
from probes.probe.plan import ProbePlan, ProbeState
from probes.probe.store import RunWriter, new_run_id, utc_iso
from probes.probe.summary import print_summary

UNREACHED = frozenset({"upload_error", "auth_error"})
EXIT_INTERRUPTED = 130
STAGGER_S = APP_FAST_INTERVAL_S
STAGGER_PER_PROBE_S = 0.003  # an upload costs the harness ~1.4 ms of CPU: keep the ramp-up under half a core


@dataclass(frozen=True)
class RunResult:
    code: int
    run_dir: Path
    records: list[dict]
    time_scale: float | None


def _validate(n: int, concurrency: int, timeout_s: float, milestones: list[int]) -> None:
    if n < 1 or n > 100_000:
        raise UsageError("-n must be between 1 and 100000")
    if concurrency < 1 or concurrency > 5_000:
        raise UsageError("--concurrency must be between 1 and 5000")
    if not 0 < timeout_s <= 3600:
        raise UsageError("--timeout must be in (0, 3600] seconds")
    if not milestones or any(not 0 < m <= 100 for m in milestones):
        raise UsageError("--milestones must be whole numbers in 1..100")


class EnvToken:
    """The target's token from its environment variable; a refresh reads the variable again."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def current(self) -> str | None:
        return self.target.token()

    def refresh(self, stale: str | None) -> str:
        token = self.target.token()
        if not token:
            raise RuntimeError("the target has no token to refresh")
        return token


def run_probes(
    *, target: str | None, url: str | None = None, token_env: str | None = None, n: int, concurrency: int = 1,
    label: str = "manual", fixture: str = defaults.FIXTURE, cadence: str = "app",
    interval: float = defaults.FINE_INTERVAL_S, milestones: list[int] = list(defaults.MILESTONES),
    timeout_s: float = defaults.PROBE_TIMEOUT_S, out: Path = defaults.RUNS_DIR,
    targets_file: Path = defaults.TARGETS_FILE, fixtures_dir: Path = defaults.FIXTURES_DIR, quiet: bool = False,
    fast_polls: bool | None = None,
) -> RunResult:
    _validate(n, concurrency, timeout_s, milestones)
    try:
        poll_cadence = Cadence(cadence, interval)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    chosen = resolve_target(targets_file, target, url, token_env)
    tokens = EnvToken(chosen) if chosen.token_env else None
    if tokens is not None:
        tokens.current()  # a missing token is a usage error now, before anything is written
    entry, audio = read_fixture(fixtures_dir, fixture)
    run_id = new_run_id(chosen.name, label)
    config = MachineConfig(cadence=poll_cadence, timeout_s=timeout_s, cleanup=chosen.cleanup,
                           milestones=tuple(sorted(set(milestones))))
    plan = ProbePlan(run_id=run_id, target=chosen.name, label=label, fixture=entry, audio=audio, config=config)
    headers = wire.request_headers(chosen.user_name or wire.DEFAULT_USER_NAME)
    # Everything loaded so far lives for the whole run: keep it out of the collector's full
    # passes, which otherwise stall the event loop for tens of ms with hundreds of probes.
    gc.freeze()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_run(chosen, plan, headers, tokens, n, concurrency, out, quiet, fast_polls))


def _loop_factory():
    """uvloop when installed: it keeps poll lateness low with hundreds of probes in flight."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return None
    return uvloop.new_event_loop


def run_meta(target: Target, plan: ProbePlan, n: int, concurrency: int) -> dict[str, Any]:
    """run.json as it is written at the start (fingerprint, scenario and outcomes come later)."""
    fixture = {k: plan.fixture.get(k) for k in ("name", "duration_s", "form_duration", "bytes", "sha256",
                                                  "content_type")}
    return {
        "run_id": plan.run_id, "target": target.name, "base_url": target.base_url, "label": plan.label,
        "scenario": None, "time_scale": None, "harness_version": __version__,
        "started_at": utc_iso(), "fixture": fixture, "cadence": plan.config.cadence.describe(),
        "milestones": list(plan.config.milestones), "n": n, "concurrency": concurrency,
        "timeout_s": plan.config.timeout_s,
    }


async def _run(target: Target, plan: ProbePlan, headers: dict[str, str], tokens: TokenSource | None, n: int,
               concurrency: int, out: Path, quiet: bool, fast_polls: bool | None) -> RunResult:
    # SIGTERM (a CI job cancelled, `timeout`) ends the run like Ctrl-C, in every phase.
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    writer = RunWriter(out, run_meta(target, plan, n, concurrency))
    interrupted = False
    health: dict[str, Any] = {"health_status": None, "health": None, "headers": {}}
    upload_headers: dict[str, str] | None = None
    time_scale: float | None = None
    try:
        async with HttpSide(target.base_url, concurrency, headers, tokens, fast_polls) as http:
            health = await fetch_health(http, with_token=target.health_auth)
            scenario, time_scale = simulator_info(health["health"], target.is_loopback)
            writer.meta.update(scenario=scenario, time_scale=time_scale)
            with LiveBars(n, concurrency, target.name, enabled=not quiet) as bars:
                upload_headers = await run_workers(http, plan, n, concurrency, writer, bars.update)
    except asyncio.CancelledError:
        interrupted = True
    finally:
        writer.finish({**health, "upload_headers": upload_headers or {}})
    print_summary(writer.records, time_scale)
    if interrupted:
        print(f"interrupted: {len(writer.records)} probe(s) on disk", file=sys.stderr)
    sys.stderr.flush()
    print(writer.dir, flush=True)
    code = EXIT_OK
    if interrupted:
        code = EXIT_INTERRUPTED
    elif writer.records and all(r["outcome"] in UNREACHED for r in writer.records):
        code = EXIT_UNREACHABLE
    return RunResult(code, writer.dir, writer.records, time_scale)


async def run_workers(http: HttpSide, plan: ProbePlan, n: int, concurrency: int, writer: RunWriter,
                      on_update: Callable[[ProbeState], None] | None = None) -> dict[str, str] | None:
    """Run N probes, C at a time; returns the first accepted upload's headers for the fingerprint.

    Every finished probe goes to the writer at once; on cancellation the probes in flight are
    written as `aborted` with the samples they have.
    """
    ids = itertools.count(1)
    width = max(4, len(str(n)))
    first_headers: list[dict[str, str]] = []

    async def worker(delay: float) -> None:
        await asyncio.sleep(delay)
        while (index := next(ids)) <= n:
            probe = Probe(http, plan, f"{index:0{width}d}", on_update)
            try:
                record = await probe.run()
            except asyncio.CancelledError:
                writer.append(probe.record())
                raise
            except Exception as exc:  # noqa: BLE001 - a harness bug must not lose the probe or the run
                probe.machine.abort(probe.now(), "aborted", f"harness error: {type(exc).__name__}: {exc}")
                record = probe.record()
            if not first_headers and probe.machine.first_headers is not None:
                first_headers.append(probe.machine.first_headers)
            writer.append(record)

    workers = min(concurrency, n)
    # Spread the first uploads over one poll interval (longer for hundreds of probes), as users
    # would arrive: started together, C probes would poll in lock-step bursts and measure their
    # own queueing, and 500 uploads in 300 ms made the first polls of every probe late.
    stagger = max(STAGGER_S, STAGGER_PER_PROBE_S * workers)
    async with asyncio.TaskGroup() as group:
        for i in range(workers):
            group.create_task(worker(i * stagger / workers))
    return first_headers[0] if first_headers else None
