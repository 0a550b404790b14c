"""`probes run`: resolve the target and fixture, run the probes, write the run directory, print the table.

Exit codes (DESIGN.md): 0 ok; 2 bad usage or configuration; 3 the target
could not be reached or authenticated (no probe got past the upload); 130
interrupted (Ctrl-C or SIGTERM; every probe is on disk, in-flight ones as
`aborted`).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from probes import __version__, defaults
from probes.probe import wire
from probes.probe.cadence import Cadence
from probes.config import Target, resolve_target
from probes.probe.driver import ProbePlan
from probes.errors import EXIT_OK, EXIT_UNREACHABLE, UsageError
from probes.fixtures.manifest import read_fixture
from probes.probe.live import LiveBars
from probes.probe.runner import fingerprint, make_client, run_probes_async, simulator_info
from probes.probe.store import RunWriter, new_run_id, utc_iso
from probes.probe.summary import print_summary

UNREACHED = frozenset({"upload_error", "auth_error"})


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
        raise UsageError("--milestones must be numbers in 1..100")


def run_probes(
    *, target: str | None, url: str | None = None, token_env: str | None = None, n: int, concurrency: int = 1,
    label: str = "manual", fixture: str = defaults.FIXTURE, cadence: str = "app",
    interval: float = defaults.FINE_INTERVAL_S, milestones: list[int] = list(defaults.MILESTONES),
    timeout_s: float = defaults.PROBE_TIMEOUT_S, out: Path = defaults.RUNS_DIR,
    targets_file: Path = defaults.TARGETS_FILE, fixtures_dir: Path = defaults.FIXTURES_DIR, quiet: bool = False,
) -> RunResult:
    _validate(n, concurrency, timeout_s, milestones)
    try:
        poll_cadence = Cadence(cadence, interval)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    chosen = resolve_target(targets_file, target, url, token_env)
    token = chosen.token()
    entry, audio = read_fixture(fixtures_dir, fixture)
    run_id = new_run_id(chosen.name, label)
    plan = ProbePlan(
        run_id=run_id, target=chosen.name, label=label, fixture=entry, audio=audio, cadence=poll_cadence,
        milestones=tuple(sorted(set(milestones))), timeout_s=timeout_s, cleanup=chosen.cleanup,
    )
    headers = wire.request_headers(token, chosen.user_name)
    # Everything loaded so far lives for the whole run: keep it out of the collector's full
    # passes, which otherwise stall the event loop for tens of ms with hundreds of probes.
    gc.freeze()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_run(chosen, plan, headers, n, concurrency, out, quiet))


def _loop_factory():
    """uvloop when installed: it keeps poll lateness low with hundreds of probes in flight."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return None
    return uvloop.new_event_loop


async def _run(
    target: Target, plan: ProbePlan, headers: dict[str, str], n: int, concurrency: int, out: Path, quiet: bool
) -> RunResult:
    # SIGTERM (a CI job cancelled, `timeout`) ends the run like Ctrl-C: in-flight probes are written as aborted.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)  # type: ignore[union-attr]
    client, transport = make_client(target.base_url, concurrency, headers)
    async with client, transport:
        print_fp = await fingerprint(client)
        scenario, time_scale = simulator_info(print_fp["health"])
        fixture = {k: plan.fixture.get(k) for k in ("name", "duration_s", "form_duration", "bytes", "sha256", "content_type")}
        writer = RunWriter(out, {
            "run_id": plan.run_id, "target": target.name, "base_url": target.base_url, "label": plan.label,
            "scenario": scenario, "time_scale": time_scale, "harness_version": __version__,
            "started_at": utc_iso(), "fixture": fixture, "cadence": plan.cadence.describe(),
            "milestones": list(plan.milestones), "n": n, "concurrency": concurrency, "timeout_s": plan.timeout_s,
        })
        interrupted = False
        upload_headers = None
        try:
            with LiveBars(n, concurrency, target.name, enabled=not quiet) as bars:
                upload_headers = await run_probes_async(client, transport, plan, n, concurrency, writer, bars.update)
        except asyncio.CancelledError:
            interrupted = True
        finally:
            writer.finish({**print_fp, "upload_headers": upload_headers or {}})
    print_summary(writer.records, time_scale)
    if interrupted:
        print(f"interrupted: {len(writer.records)} probe(s) on disk", file=sys.stderr)
    sys.stderr.flush()
    print(writer.dir, flush=True)
    code = EXIT_OK
    if interrupted:
        code = 130
    elif writer.records and all(r["outcome"] in UNREACHED for r in writer.records):
        code = EXIT_UNREACHABLE
    return RunResult(code, writer.dir, writer.records, time_scale)
