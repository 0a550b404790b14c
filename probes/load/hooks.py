"""Locust's events, wired for load mode. `register(events)` is what locustfile.py calls.

    init_command_line_parser  the --probes-* options
    init                      finer percentile buckets and the phase table (every process); on the
                              master or the single process: the guard (exit 2, one line, before any
                              request), the host, the run directory and run.json
    test_start                the guard again with the host in use (the web UI can change it); on
                              the process that runs users: the shared LoadContext
    quitting                  Locust quits while users still run (a SIGTERM, which `probes load`
                              also sends for Ctrl-C): flows in flight stop now, recorded as aborted
    quit                      on the master or the single process: phases.csv, the phase table on
                              the console, finish run.json

A run directory that cannot be written (a full disk) stops the process with exit 4 and one line.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path
from typing import Any

import locust.stats
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING, MasterRunner, WorkerRunner

from probes import __version__
from probes.config import Target, resolve_target
from probes.errors import NotRecorded, ProbesError, UsageError, os_reason
from probes.fixtures.manifest import read_fixture
from probes.load import options as load_options
from probes.load.guard import check_host, check_load, rate_cap
from probes.load.phase_stats import PhaseTable, attach
from probes.load.phases import bucket_3sf
from probes.load.rundir import RecordFile, finish_run, read_meta, records_path, write_meta
from probes.load.user import INTERRUPTED, LoadContext, unrecorded
from probes.load.workload import ArrivalSlots, StartSpacing, max_users, process_share
from probes.probe import wire
from probes.probe.fingerprint import simulator_info
from probes.probe.machine import MachineConfig
from probes.probe.plan import ProbePlan
from probes.probe.store import new_run_id, utc_iso
from probes.redact import redact_headers, redact_json

FIXTURE_KEYS = ("name", "duration_s", "form_duration", "bytes", "sha256", "content_type")


def _refuse(exc: ProbesError) -> None:
    print(f"probes: error: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(exc.exit_code)


def planned_load(opts: Any, load: load_options.LoadOptions) -> tuple[int, float | None]:
    """(most users at once, arrival rate or cap) this run asks for, for the guard."""
    users = int(getattr(opts, "num_users", None) or 1)
    if load.model == "ramp":
        users = max_users(load.stages(users, load_options.run_time_s(opts)))
    return users, load.rate


def _fingerprint(target: Target, base_url: str) -> dict[str, Any]:
    """The /health fingerprint as `probes run` takes it, on a short-lived client (before any user starts)."""
    from probes.probe.driver import HttpSide, fetch_health

    async def fetch() -> dict[str, Any]:
        tokens = target.token_source()
        async with HttpSide(base_url, 1, wire.request_headers(target.user_name or wire.DEFAULT_USER_NAME),
                            tokens) as http:
            health = await fetch_health(http, with_token=target.health_auth)
        secrets = tokens.secrets()
        return {**health, "health": redact_json(health.get("health"), secrets),
                "headers": redact_headers(health.get("headers") or {}, secrets)}

    try:
        return asyncio.run(fetch())
    except Exception as exc:  # noqa: BLE001 - a fingerprint must never stop a run
        return {"health_status": None, "health": None, "health_error": type(exc).__name__, "headers": {}}


def start_run(environment: Any) -> None:
    """Guard, host, run directory and run.json; on the master or the single process only."""
    opts = environment.parsed_options
    load = load_options.from_namespace(opts)
    target = resolve_target(load.targets_file, load.target, None, None, load.upload)
    users, rate = planned_load(opts, load)
    check_load(target, users, rate, environment.host)
    entry, audio = read_fixture(load.fixtures_dir, load.fixture)
    target.token_source().current()  # a missing token is a usage error now, not a 401 per flow later
    if not environment.host:
        environment.host = target.base_url
    run_dir = load.run_dir or load.out / new_run_id(target.name, load.label)
    opts.probes_run_dir = str(run_dir)  # workers receive it with the spawn message
    print_fp = _fingerprint(target, target.base_url)
    scenario, time_scale = simulator_info(print_fp.get("health"), target.is_loopback)
    meta = {
        "run_id": run_dir.name, "target": target.name, "base_url": environment.host, "label": load.label,
        "scenario": scenario, "time_scale": time_scale, "harness_version": __version__, "started_at": utc_iso(),
        "ended_at": None, "fixture": {k: entry.get(k) for k in FIXTURE_KEYS}, "cadence": load.cadence.describe(),
        "milestones": list(load.milestones), "n": None, "concurrency": users, "timeout_s": load.timeout_s,
        "upload": {"flow": target.upload,
                   "base64": wire.sends_base64(target.presigned_base64, len(audio)) if target.upload == "presigned"
                   else None},
        "load": {"engine": "locust", "model": load.model, "users": users, "rate": rate_cap(target, rate),
                 "think_time_s": load.think_time_s, "run_time_s": load_options.run_time_s(opts),
                 "stages": load.stages_text or None,
                 "workers": int(getattr(opts, "expect_workers", 1) or 1) if getattr(opts, "master", False) else 0},
        "fingerprint": print_fp,
    }
    try:
        write_meta(run_dir, meta)
    except OSError as exc:  # exit 4 before any request: a run that cannot be recorded is not started
        raise NotRecorded(f"could not record {run_dir / 'run.json'}: {os_reason(exc)}") from None


def build_context(environment: Any) -> LoadContext:
    """The process's shared plan, schedule and records file (local runner or worker)."""
    opts = environment.parsed_options
    load = load_options.from_namespace(opts)
    target: Target = resolve_target(load.targets_file, load.target, None, None, load.upload)
    entry, audio = read_fixture(load.fixtures_dir, load.fixture)
    run_dir = Path(opts.probes_run_dir)
    runner = environment.runner
    worker = isinstance(runner, WorkerRunner)
    index = runner.worker_index if worker else None
    workers = int(getattr(opts, "expect_workers", 1) or 1) if worker else 1
    time_scale = read_meta(run_dir).get("time_scale")  # the master's /health said it (loopback simulators only)
    config = MachineConfig(cadence=load.cadence, timeout_s=load.timeout_s, cleanup=target.cleanup,
                           milestones=load.milestones, upload=target.upload,
                           presigned_base64=target.presigned_base64, plain_http_hosts=target.plain_http_hosts,
                           time_scale=float(time_scale) if isinstance(time_scale, (int, float)) and time_scale > 0
                           else 1.0)
    plan = ProbePlan(run_id=run_dir.name, target=target.name, label=load.label, fixture=entry, audio=audio,
                     config=config)
    share = None
    if target.max_users is not None:  # each process holds its share, so the sum never exceeds the bound
        share = max(1, target.max_users // workers) if workers > 1 else target.max_users
    try:
        records = RecordFile(records_path(run_dir, index))
    except OSError as exc:
        raise NotRecorded(f"could not record {records_path(run_dir, index)}: {os_reason(exc)}") from None
    context = LoadContext(plan=plan, headers=wire.request_headers(target.user_name or wire.DEFAULT_USER_NAME),
                          model=load.model, think_time_s=load.think_time_s,
                          records=records, base_url=target.base_url,
                          tokens=target.token_source(), max_users=share,
                          id_prefix="" if index is None else f"w{index}-",
                          on_record=environment.probes_phases.add)
    rate = rate_cap(target, load.rate)
    if rate is not None:
        share, offset = process_share(rate, workers, index or 0)
        if load.model == "open":
            context.slots = ArrivalSlots(share, context.clock() + offset)
        else:
            context.spacing = StartSpacing(share)
    return context


def register(events: Any) -> None:
    """Attach load mode to a Locust event set (the locustfile's `events`)."""
    seen: dict[str, Any] = {}

    @events.init_command_line_parser.add_listener
    def _add_arguments(parser: Any) -> None:
        load_options.add_arguments(parser)

    @events.init.add_listener
    def _on_init(environment: Any, **_kw: Any) -> None:
        # Locust documents bucket_response_time as replaceable; set in every process, master included.
        locust.stats.bucket_response_time = bucket_3sf
        seen["environment"] = environment
        worker = isinstance(environment.runner, WorkerRunner)
        environment.probes_phases = PhaseTable()
        attach(environment, environment.probes_phases, is_master_or_local=not worker, is_worker=worker)
        if environment.parsed_options is None or worker:
            return
        try:
            start_run(environment)
        except ProbesError as exc:
            _refuse(exc)

    @events.test_start.add_listener
    def _on_test_start(environment: Any, **_kw: Any) -> None:
        if environment.parsed_options is not None and not isinstance(environment.runner, WorkerRunner):
            try:  # the web UI may have changed the host since init
                load = load_options.from_namespace(environment.parsed_options)
                check_host(resolve_target(load.targets_file, load.target, None, None), environment.host)
            except UsageError as exc:
                print(f"probes: error: {exc}", file=sys.stderr, flush=True)
                environment.runner.quit()
                return
        if isinstance(environment.runner, MasterRunner):
            return
        previous = getattr(environment, "probes_load", None)
        if previous is not None:
            previous.records.close()
        try:
            environment.probes_load = build_context(environment)
        except ProbesError as exc:
            _refuse(exc)
        gc.freeze()  # as in `probes run`: what is loaded now lives all run; keep it out of full collections

    @events.quitting.add_listener
    def _on_quitting(environment: Any, **_kw: Any) -> None:
        runner = environment.runner
        if runner is None or runner.state in (STATE_STOPPED, STATE_STOPPING, STATE_CLEANUP):
            return  # the end of --run-time: the users were stopped already, in flows' own time
        environment.stop_timeout = 0  # a signal: stop the flows now, as `probes run` does
        context = getattr(environment, "probes_load", None)
        if context is not None:
            context.stopped_as = INTERRUPTED

    @events.quit.add_listener
    def _on_quit(**_kw: Any) -> None:
        environment = seen.get("environment")
        if environment is None or environment.parsed_options is None:
            return
        context = getattr(environment, "probes_load", None)
        if context is not None:
            context.records.close()
        run_dir = environment.parsed_options.probes_run_dir
        if not isinstance(environment.runner, WorkerRunner) and run_dir:
            try:
                finish_run(Path(run_dir))
            except OSError as exc:
                unrecorded(f"could not record the load run in {run_dir}: {os_reason(exc)}")
