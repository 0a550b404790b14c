"""`probes canary`: one canary run = N probes + the target's SLOs + a history row + alerts + metrics.

    jitter -> lock -> probes run (quiet) -> record in history -> alert state -> webhook -> metrics -> prune

Exit 0 healthy, 1 an SLO broke (run.json `slo.ok` false, or `probes run`
exited 1), 3 the target could not be reached or authenticated, 2 bad usage
or another canary of the target holds the lock. Alerting and metrics are
best effort: a webhook or Pushgateway that is down is a warning line, never
a different exit code, because the exit code is about the target.
"""

from __future__ import annotations

import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from probes import defaults
from probes.canary import alerts
from probes.canary.history import HistoryStore, open_history
from probes.canary.lock import canary_lock
from probes.canary.summary import RunSummary
from probes.errors import EXIT_OK, EXIT_REGRESSION, EXIT_UNREACHABLE, UnreachableError, UsageError

DEFAULT_N = 3
DEFAULT_LABEL = "canary"
MAX_PROBES = 100  # a canary is a handful of probes on a schedule; more is a load test (`probes load`)
MAX_STREAK = 1000  # K and M: beyond this an alert would never fire or never resolve in practice
# Jitter spreads the starts of many canaries on one schedule; past a quarter hour it is a different schedule.
MAX_JITTER_S = 900.0
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class CanaryResult:
    """What one canary did; `code` is the process exit code."""

    code: int
    row: RunSummary | None
    alert: alerts.AlertState | None = None
    event: alerts.Event | None = None
    notified: bool | None = None
    pruned: list[str] = field(default_factory=list)


def check_webhook(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        host = parts.hostname if parts is not None and parts.hostname else "?"
        # the path of a webhook URL is usually its secret: name the host only
        raise UsageError(f"--webhook must be an http(s) URL (host {host!r}); the rest of it is not shown")


def validate(*, n: int, alert_after: int, resolve_after: int, jitter_s: float, keep_s: float | None,
             webhook: str | None, pushgateway: str | None, textfile: Path | None) -> None:
    """Every option checked before anything runs: a bad flag never costs a probe."""
    from probes.canary import metrics

    if not 1 <= n <= MAX_PROBES:
        raise UsageError(f"-n must be between 1 and {MAX_PROBES} for a canary")
    for name, value in (("--alert-after", alert_after), ("--resolve-after", resolve_after)):
        if not 1 <= value <= MAX_STREAK:
            raise UsageError(f"{name} must be a whole number in 1..{MAX_STREAK}")
    if not 0 <= jitter_s <= MAX_JITTER_S:
        raise UsageError(f"--jitter must be seconds in 0..{MAX_JITTER_S:g}")
    if keep_s is not None and keep_s <= 0:
        raise UsageError("--keep must be an age like 30d")
    if webhook:
        check_webhook(webhook)
    if pushgateway:
        metrics.check_gateway_url(pushgateway)
    if textfile is not None:
        metrics.check_textfile(textfile)


def reasons(row: RunSummary) -> list[str]:
    """Why a run failed, in a line each: the broken SLOs, or that the target was not reached."""
    out = []
    for r in row.slo_results:
        if r.get("ok") is False:
            metric, stat, value, threshold, n = (r.get(k) for k in ("metric", "stat", "value", "threshold", "n"))
            if value is None:
                out.append(f"SLO {metric} {stat}: not measured (no probe observed it)")
            elif stat == "rate":
                out.append(f"SLO {metric} rate {_num(value)} < {_num(threshold)} (n={n})")
            else:
                out.append(f"SLO {metric} {stat} {_num(value)} s > {_num(threshold)} s (n={n})")
    if row.exit_code == EXIT_UNREACHABLE:
        out.append(f"target not reached or not authenticated: outcomes {row.outcomes or 'none'}")
    elif not row.ok and not out:
        out.append(f"probes run exited {row.exit_code}; outcomes {row.outcomes}")
    return out


def exit_code(run_code: int, row: RunSummary) -> int:
    """The canary's exit code from `probes run`'s and the recorded run: 3 unreachable, 1 unhealthy, else 0."""
    if run_code == EXIT_UNREACHABLE:
        return EXIT_UNREACHABLE
    return EXIT_OK if row.ok else EXIT_REGRESSION


def _num(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _unreached_row(target: str, label: str) -> RunSummary:
    """A history row for a run that ended before any probe (the target refused us up front)."""
    moment = datetime.now(timezone.utc)
    return RunSummary(
        run_id=f"{moment:%Y%m%dT%H%M%S%fZ}-{target}-unreached"[:120], target=target, label=label,
        started_at=moment.isoformat().replace("+00:00", "Z"), started_ts=moment.timestamp(),
        ended_at=None, ended_ts=None, n=0, n_planned=None, outcomes={}, scenario=None, time_scale=None,
        metrics={}, slo_ok=None, slo_results=[], ok=False, exit_code=EXIT_UNREACHABLE, fingerprint_hash=None,
        signature=[], signature_hash=None, run_dir=None, probes=[],
    )


def _alert(store: HistoryStore, row: RunSummary, webhook: str | None, alert_after: int, resolve_after: int,
           why: list[str] | None = None) -> tuple[alerts.AlertState, alerts.Event | None, bool | None]:
    state, event = store.evaluate_alert(row.target, row.run_id, row.ok, alert_after, resolve_after)
    notified = None
    if event:
        print(f"canary {row.target}: alert {event} ({state.failing} failing / {state.passing} passing in a row)",
              file=sys.stderr)
        if webhook:
            text = alerts.alert_text(event, row.target, state, row.run_id, (why or []) + reasons(row))
            payload = {"probes": {"event": event, "target": row.target, "run_id": row.run_id, "ok": row.ok,
                                  "failing": state.failing, "passing": state.passing}}
            notified = alerts.notify(webhook, text, payload)
            store.mark_notified(row.target, row.run_id, event, notified)
    return state, event, notified


def _export(row: RunSummary, state: alerts.AlertState | None, pushgateway: str | None, textfile: Path | None) -> None:
    if not pushgateway and textfile is None:
        return
    from probes.canary import metrics

    registry = metrics.build_registry(row, state)
    if textfile is not None:
        metrics.write_textfile(textfile, registry)
    if pushgateway:
        metrics.push(pushgateway, registry, row.target)


def prune(store: HistoryStore, target: str, keep_s: float, runs_dir: Path, keep_run_id: str | None,
          now: float) -> list[str]:
    """Delete the target's run directories older than keep_s; their history rows stay.

    Only directories the history recorded under `runs_dir`, named by their run_id and holding a
    run.json are removed: a path in the database never makes this delete anything else. A
    directory already gone (an ephemeral runner's) is marked pruned too, so it is not asked again.
    """
    root = runs_dir.resolve()
    pruned, gone = [], []
    for run_id, run_dir in store.prunable_runs(target, now - keep_s, str(root)):
        path = Path(run_dir)
        if run_id == keep_run_id or path.name != run_id or path.parent != root:
            continue
        if not path.exists():
            gone.append(run_id)
            continue
        if not (path / "run.json").is_file() or path.is_symlink():
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            pruned.append(run_id)
    store.mark_pruned(pruned + gone)
    return pruned


def run_canary(
    *, target: str, n: int = DEFAULT_N, label: str = DEFAULT_LABEL, history: str | None = None,
    webhook: str | None = None, alert_after: int = alerts.DEFAULT_ALERT_AFTER,
    resolve_after: int = alerts.DEFAULT_RESOLVE_AFTER, pushgateway: str | None = None, textfile: Path | None = None,
    jitter_s: float = 0.0, keep_s: float | None = None, concurrency: int = 1, cadence: str = "app",
    interval: float = defaults.FINE_INTERVAL_S, timeout_s: float = defaults.PROBE_TIMEOUT_S,
    out: Path = defaults.RUNS_DIR, targets_file: Path = defaults.TARGETS_FILE,
    fixtures_dir: Path = defaults.FIXTURES_DIR, slo_file: Path | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random, clock: Callable[[], float] = time.time,
    probe_runner: Callable[..., Any] | None = None,
) -> CanaryResult:
    """One canary run of `target`; see the module docstring for the order of things and the exit codes.

    `probe_runner` is `probes.probe.run.run_probes` unless given (a test's seam); it is imported only
    once the lock is held, so a refused canary never pays for the probe engine's imports.
    """
    validate(n=n, alert_after=alert_after, resolve_after=resolve_after, jitter_s=jitter_s, keep_s=keep_s,
             webhook=webhook, pushgateway=pushgateway, textfile=textfile)
    with open_history(history) as store:  # a wrong --history fails before the jitter and before any probe
        delay = jitter_s * rand()
        if delay > 0:
            print(f"canary {target}: jitter: starting in {delay:.1f} s", file=sys.stderr, flush=True)
            sleep(delay)
        with canary_lock(store.location, target):
            if probe_runner is None:
                from probes.probe.run import run_probes as probe_runner

            try:
                result = probe_runner(target=target, n=n, concurrency=concurrency, label=label, cadence=cadence,
                                    interval=interval, timeout_s=timeout_s, out=out, targets_file=targets_file,
                                    fixtures_dir=fixtures_dir, quiet=True, slo_file=slo_file)
            except UnreachableError as exc:
                row = store.record_summary(_unreached_row(target, label))
                print(f"canary {target}: unreachable: {exc}", file=sys.stderr)
                state, event, notified = _alert(store, row, webhook, alert_after, resolve_after, [str(exc)])
                _export(row, state, pushgateway, textfile)
                return CanaryResult(EXIT_UNREACHABLE, row, state, event, notified)
            row = store.record_run(result.run_dir, exit_code=result.code)
            if result.code == EXIT_INTERRUPTED:  # what finished is on disk and in the history; no verdict
                return CanaryResult(EXIT_INTERRUPTED, row)
            state, event, notified = _alert(store, row, webhook, alert_after, resolve_after)
            _export(row, state, pushgateway, textfile)
            pruned = prune(store, target, keep_s, out, row.run_id, clock()) if keep_s else []
    code = exit_code(result.code, row)
    verdict = {EXIT_OK: "healthy", EXIT_REGRESSION: "SLO broken", EXIT_UNREACHABLE: "unreachable"}[code]
    detail = "; ".join(reasons(row))
    print(f"canary {target}: {verdict}{': ' + detail if detail else ''}; alert "
          f"{'firing' if state.firing else 'ok'}" + (f"; pruned {len(pruned)} run directories" if pruned else ""))
    return CanaryResult(code, row, state, event, notified, pruned)
