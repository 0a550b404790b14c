"""`probes run`: resolve the target and fixture, run the probes, write the run directory, print the table.

Exit codes (DESIGN.md, probes.errors): 0 ok; 2 bad usage or configuration;
3 the target could not be reached or authenticated (no probe got past the
upload); 4 the run directory could not be written (a full disk: one line,
run.json left unfinished); 130 interrupted (Ctrl-C or SIGTERM, in any phase:
the run directory exists from the start, every finished probe is on disk,
in-flight ones as `aborted`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import signal

import orjson
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from probes import __version__
from probes.analysis.diagnosis import Finding, Side, diagnose, to_json
from probes.analysis.slo import Slo, SloReport, evaluate
from probes.config import Target, load_slo_file, resolve_target
from probes.errors import (
    EXIT_INTERRUPTED, EXIT_OK, EXIT_REGRESSION, EXIT_UNREACHABLE, NotRecorded, UsageError,
)
from probes.fixtures.manifest import read_fixture
from probes.probe import wire
from probes.probe.cadence import APP_FAST_INTERVAL_S
from probes.probe.options import RunOptions
from probes.probe.collector import collect_if_due, collector_off
from probes.probe.driver import HttpSide, Probe, fetch_health
from probes.probe.fingerprint import simulator_info
from probes.probe.live import LiveBars
from probes.probe.machine import MachineConfig, redact_record
from probes.probe.plan import ProbePlan, ProbeState
from probes.probe.store import RunWriter, new_run_id, utc_iso
from probes.auth import TokenSource
from probes.probe.store import MAX_DIAGNOSED, read_records
from probes.probe.summary import print_diagnosis, print_slo, print_summary
from probes.redact import redact_headers, redact_json

UNREACHED = frozenset({"upload_error", "auth_error"})
STAGGER_S = APP_FAST_INTERVAL_S
STAGGER_PER_PROBE_S = 0.003  # an upload costs the harness ~1.4 ms of CPU: keep the ramp-up under half a core
# The fingerprint (/health, headers) is redacted with the presigned-URL secrets of the run's first probes too.
# A signature differs per URL, so only a static one (a key id, a fixed signature) could be echoed anywhere
# but in its own probe's answers, and the first probe shows it; a bound keeps 100,000 probes' worth out of memory.
MAX_RUN_URL_SECRETS = 1000


@dataclass(frozen=True)
class RunResult:
    code: int
    run_dir: Path
    # Not in the repr: asyncio's runner formats the main task's result when it restores the SIGINT
    # handler, and 3,000 records with their samples took seconds to format.
    records: list[dict] = field(repr=False)
    time_scale: float | None


def run_probes(options: RunOptions) -> RunResult:
    """One `probes run` (options validated when they were made): probes, SLOs, diagnosis, run directory."""
    o = options
    chosen = resolve_target(o.targets_file, o.target, o.url, o.token_env, o.upload)
    objectives = None if o.no_slo else _objectives(chosen, o.slo_file)
    baseline_dir = find_baseline(o.baseline, o.out, chosen.name) if o.baseline else None
    entry, audio = read_fixture(o.fixtures_dir, o.fixture)
    tokens = chosen.token_source()
    tokens.current()  # no token, or none to be had: exit 2 or 3 now, before anything is written
    run_id = new_run_id(chosen.name, o.label)
    config = MachineConfig(cadence=o.cadence_policy, timeout_s=o.timeout_s, cleanup=chosen.cleanup,
                           milestones=o.milestones, upload=chosen.upload,
                           presigned_base64=chosen.presigned_base64, plain_http_hosts=chosen.plain_http_hosts)
    plan = ProbePlan(run_id=run_id, target=chosen.name, label=o.label, fixture=entry, audio=audio, config=config)
    headers = wire.request_headers(chosen.user_name or wire.DEFAULT_USER_NAME)
    writer = RunWriter(o.out, {**run_meta(chosen, plan, o.n, o.concurrency), "idle_before_s": o.idle_before_s or None})
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        probed = runner.run(_probe_phase(chosen, plan, headers, tokens, o.n, o.concurrency, writer, o.quiet, o.fast,
                                         o.idle_before_s))
    result = _finish(chosen, tokens, writer, probed, objectives, baseline_dir)
    if o.baseline is not None and result.code not in (EXIT_INTERRUPTED, EXIT_UNREACHABLE):
        result = _against_baseline(result, o.baseline, baseline_dir)
    return result


def _objectives(target: Target, slo_file: Path | None) -> tuple[tuple[Slo, ...], str]:
    if slo_file is not None:
        return load_slo_file(slo_file), str(slo_file)
    return target.slos, f"targets.{target.name}.slo" if target.slo is not None else "defaults"


def find_baseline(spec: str, runs_dir: Path, target: str) -> Path | None:
    """`latest:LABEL` (the newest run of this target with that label in runs_dir) or a run directory.

    None when no such run exists yet (the first before/after pair): the run goes on without a comparison.
    """
    if not spec.startswith("latest:"):
        path = Path(spec)
        if not (path / "probes.jsonl").is_file():
            raise UsageError(f"--baseline {spec}: not a run directory (no probes.jsonl); use a run directory "
                             "or latest:LABEL")
        return path
    label = spec.removeprefix("latest:")
    if not label:
        raise UsageError("--baseline latest:LABEL needs a label, e.g. latest:before-deploy")
    best: tuple[str, Path] | None = None
    for meta_path in runs_dir.glob("*/run.json") if runs_dir.is_dir() else []:
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        if not isinstance(meta, dict) or meta.get("target") != target or meta.get("label") != label:
            continue
        started = meta.get("started_at")
        if isinstance(started, str) and (best is None or started > best[0]):
            best = (started, meta_path.parent)
    return best[1] if best else None


def _against_baseline(result: RunResult, spec: str, baseline_dir: Path | None) -> RunResult:
    """Compare this run with its baseline and print the verdict; exit 1 on a regression."""
    if baseline_dir is None:
        print(f"probes: no baseline run ({spec}) of this target yet: no comparison", file=sys.stderr)
        return result
    from probes.report.compare import run_compare

    print(f"baseline: {baseline_dir}", file=sys.stderr)
    regression = run_compare(baseline_dir, result.run_dir, out=result.run_dir, console_stderr=True)
    code = EXIT_REGRESSION if regression and result.code == EXIT_OK else result.code
    return RunResult(code, result.run_dir, result.records, result.time_scale)


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
        "timeout_s": plan.config.timeout_s, "upload": upload_meta(plan),
    }


def upload_meta(plan: ProbePlan) -> dict[str, Any]:
    """run.json's `upload`: the flow, and whether the presigned create carried the audio as base64."""
    if plan.config.upload != "presigned":
        return {"flow": plan.config.upload, "base64": None}
    return {"flow": "presigned", "base64": wire.sends_base64(plan.config.presigned_base64, len(plan.audio))}


@dataclass(frozen=True)
class Probed:
    """What the probe phase leaves for the end phase."""

    health: dict[str, Any]
    upload_headers: dict[str, str] | None
    time_scale: float | None
    interrupted: bool
    url_secrets: tuple[str, ...] = ()  # the first probes' presigned-URL secrets (MAX_RUN_URL_SECRETS)


async def _probe_phase(target: Target, plan: ProbePlan, headers: dict[str, str], tokens: TokenSource, n: int,
                       concurrency: int, writer: RunWriter, quiet: bool, fast: bool | None,
                       idle_before_s: float) -> Probed:
    """Health, then the probes. SIGTERM (a cancelled CI job, `timeout`) cancels it as Ctrl-C does; the
    end phase runs after the loop, where both raise KeyboardInterrupt (probes.cli: exit 130)."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    previous = signal.getsignal(signal.SIGTERM)
    loop.add_signal_handler(signal.SIGTERM, main.cancel)
    interrupted = False
    health: dict[str, Any] = {"health_status": None, "health": None, "headers": {}}
    upload_headers: dict[str, str] | None = None
    time_scale: float | None = None
    url_secrets: dict[str, None] = {}
    try:
        async with HttpSide(target.base_url, concurrency, headers, tokens, fast) as http:
            health = await fetch_health(http, with_token=target.health_auth)
            scenario, time_scale = simulator_info(health["health"], target.is_loopback)
            writer.meta.update(scenario=scenario, time_scale=time_scale)
            if time_scale:  # the shown bar is replayed in the app's (scenario) seconds
                plan = dataclasses.replace(plan, config=dataclasses.replace(plan.config, time_scale=time_scale))
            with LiveBars(n, concurrency, target.name, enabled=not quiet) as bars, collector_off():
                upload_headers = await run_workers(http, plan, n, concurrency, writer, bars.update, idle_before_s,
                                                   url_secrets)
    except asyncio.CancelledError:
        interrupted = True
    finally:
        # The loop's handler would outlive the loop and swallow SIGTERM in the phases after it.
        loop.remove_signal_handler(signal.SIGTERM)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return Probed(health, upload_headers, time_scale, interrupted, tuple(url_secrets))


def _finish(target: Target, tokens: TokenSource, writer: RunWriter, probed: Probed,
            objectives: tuple[tuple[Slo, ...], str] | None, baseline_dir: Path | None) -> RunResult:
    """SLOs, diagnosis, run.json and the summary: everything after the probes."""
    secrets = (*tokens.secrets(), *probed.url_secrets)
    health = probed.health
    fingerprint = {**health, "health": redact_json(health.get("health"), secrets),
                   "headers": redact_headers(health.get("headers") or {}, secrets),
                   "upload_headers": redact_headers(probed.upload_headers or {}, secrets)}
    report = None
    if objectives is not None:
        report = evaluate(objectives[0], writer.records, probed.time_scale or 1.0, source=objectives[1])
        writer.meta["slo"] = report.to_json()
    writer.meta["fingerprint"] = fingerprint
    findings = _diagnose(writer, target, probed.time_scale, baseline_dir)
    writer.finish(fingerprint)
    print_summary(writer.records, probed.time_scale)
    if report is not None:
        print_slo(report)
    print_diagnosis(findings)
    if probed.interrupted:
        print(f"interrupted: {len(writer.records)} probe(s) on disk", file=sys.stderr)
    sys.stderr.flush()
    print(writer.dir, flush=True)
    return RunResult(exit_code(writer.records, report, probed.interrupted), writer.dir, writer.records,
                     probed.time_scale)


def exit_code(records: list[dict], report: SloReport | None, interrupted: bool) -> int:
    """130 interrupted; 3 no probe got past the upload; 1 an SLO broken or nothing completed; else 0."""
    if interrupted:
        return EXIT_INTERRUPTED
    if records and all(r["outcome"] in UNREACHED for r in records):
        return EXIT_UNREACHABLE
    if report is not None and not report.ok:
        return EXIT_REGRESSION
    if not any(r["outcome"] == "completed" for r in records):
        return EXIT_REGRESSION  # an all-rejected or all-failed run is never a pass, SLOs or not
    return EXIT_OK


def _diagnose(writer: RunWriter, target: Target, time_scale: float | None,
              baseline_dir: Path | None) -> list[Finding]:
    """The run's findings into run.json; a bug in a rule costs the diagnosis, never the run directory."""
    try:
        findings = diagnose(Side({**writer.meta, "time_scale": time_scale}, writer.records[:MAX_DIAGNOSED]),
                            _baseline_side(baseline_dir), version_header=target.version_header,
                            version_field=target.version_field)
    except Exception as exc:  # noqa: BLE001 - what was measured is on disk either way
        print(f"probes: warning: no diagnosis ({type(exc).__name__}: {exc})", file=sys.stderr)
        return []
    writer.meta["diagnosis"] = to_json(findings)
    return findings


def _baseline_side(baseline_dir: Path | None) -> Side | None:
    """The baseline run as the diagnosis reads it (its first MAX_DIAGNOSED probes)."""
    if baseline_dir is None:
        return None
    try:
        meta = orjson.loads((baseline_dir / "run.json").read_bytes())
        records = read_records(baseline_dir / "probes.jsonl", MAX_DIAGNOSED)
    except (OSError, ValueError):
        return None
    return Side(meta if isinstance(meta, dict) else {}, records)


async def run_workers(http: HttpSide, plan: ProbePlan, n: int, concurrency: int, writer: RunWriter,
                      on_update: Callable[[ProbeState], None] | None = None,
                      idle_before_s: float = 0.0, url_secrets: dict[str, None] | None = None) -> dict[str, str] | None:
    """Run N probes, C at a time; returns the first accepted upload's headers for the fingerprint.

    With idle_before_s the run first waits that long, then runs the first probe alone (the one a
    cold backend meets), then the rest as usual. Every finished probe goes to the writer at once;
    on cancellation the probes in flight are written as `aborted` with the samples they have.
    `url_secrets` collects the first probes' presigned-URL secrets for the run's own redaction.
    """
    ids = itertools.count(1)
    width = max(4, len(str(n)))
    secrets = http.tokens.secrets if http.tokens is not None else tuple
    first_headers: list[dict[str, str]] = []

    async def worker(delay: float) -> None:
        await asyncio.sleep(delay)
        while (index := next(ids)) <= n:
            await run_one(index)

    async def run_one(index: int) -> None:
        if index > n:
            return
        probe = Probe(http, plan, f"{index:0{width}d}", on_update)
        try:
            record = await probe.run()
        except asyncio.CancelledError:
            writer.append(redact_record(probe.record(), (*secrets(), *probe.machine.secrets)))
            raise
        except Exception as exc:  # noqa: BLE001 - a harness bug must not lose the probe or the run
            probe.machine.abort(probe.now(), "aborted", f"harness error: {type(exc).__name__}: {exc}")
            record = probe.record()
        if not first_headers and probe.machine.first_headers is not None:
            first_headers.append(probe.machine.first_headers)
        if url_secrets is not None and len(url_secrets) < MAX_RUN_URL_SECRETS:
            url_secrets.update(dict.fromkeys(probe.machine.secrets))
        # the token(s), and this probe's presigned URL: its query is a secret like a token
        writer.append(redact_record(record, (*secrets(), *probe.machine.secrets)))
        collect_if_due()

    if idle_before_s > 0:
        await asyncio.sleep(idle_before_s)
        await run_one(next(ids))
    workers = min(concurrency, n)
    # Spread the first uploads over one poll interval (longer for hundreds of probes), as users
    # would arrive: started together, C probes would poll in lock-step bursts and measure their
    # own queueing, and 500 uploads in 300 ms made the first polls of every probe late.
    stagger = max(STAGGER_S, STAGGER_PER_PROBE_S * workers)
    try:
        async with asyncio.TaskGroup() as group:
            for i in range(workers):
                group.create_task(worker(i * stagger / workers))
    except* NotRecorded as failed:  # the disk is full: stop probing, nothing more can be kept
        raise failed.exceptions[0] from None
    return first_headers[0] if first_headers else None
