"""`probes canary`: one canary run = N probes + the target's SLOs + a history row + alerts + metrics.

    jitter -> lock -> probes run (quiet) -> record in history + alert state + outbox (one transaction each)
           -> deliver the outbox (webhook) -> metrics -> prune

Exit 0 healthy, 1 an SLO broke (run.json `slo.ok` false, or `probes run`
exited 1), 3 the target could not be reached or authenticated, 2 bad usage
or another canary of the target holds the lock, 4 something could not be
recorded (history, lock, textfile, run directory: a full disk), 130
interrupted (SIGTERM or Ctrl-C, in any phase; what was measured is recorded
when it can be, the lock is released). 4 wins over every other code: without
a record nothing downstream (alerts, trend) can know.

Alerting is at-least-once: an event is committed with its body in the outbox,
and each run delivers what is due, oldest first, within one total deadline.
A webhook or Pushgateway that is down is a warning line, never a different
exit code: the exit code is about the target.
"""

from __future__ import annotations

import random
import shutil
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from probes import defaults
from probes.canary import alerts
from probes.errors import EXIT_INTERRUPTED, NotRecorded
from probes.canary.history import HistoryStore, PendingAlert, open_history
from probes.canary.lock import canary_lock
from probes.canary.signals import Interrupts
from probes.canary.summary import RunSummary
from probes.probe.options import RunOptions
from probes.errors import EXIT_OK, EXIT_REGRESSION, EXIT_UNREACHABLE, UnreachableError, UsageError

DEFAULT_N = 3
DEFAULT_LABEL = "canary"
MAX_PROBES = 100  # a canary is a handful of probes on a schedule; more is a load test (`probes load`)
MAX_STREAK = 1000  # K and M: beyond this an alert would never fire or never resolve in practice
# Jitter spreads the starts of many canaries on one schedule; past a quarter hour it is a different schedule.
MAX_JITTER_S = 900.0


@dataclass(frozen=True)
class CanaryResult:
    """What one canary did; `code` is the process exit code. `notified`: this run's event reached the webhook."""

    code: int
    row: RunSummary | None
    alert: alerts.AlertState | None = None
    event: alerts.Event | None = None
    notified: bool | None = None
    pruned: list[str] = field(default_factory=list)
    deliveries: list[tuple[str, str, str]] = field(default_factory=list)  # (run_id, event, sent|pending|failed)


def check_webhook(url: str) -> None:
    """Scheme, host and port checked up front; the rest of a webhook URL (usually its secret) is never shown."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    host = parts.hostname if parts is not None and parts.hostname else "?"
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise UsageError(f"--webhook must be an http(s) URL with a host and a port in 1..65535 (host {host!r}); "
                         "the rest of it is not shown")


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


def deliver(store: HistoryStore, target: str, webhook: str, now: float, *, deadline_s: float = alerts.NOTIFY_DEADLINE_S,
            held: Callable[[], Any] = nullcontext, clock: Callable[[], float] = time.monotonic,
            ) -> list[tuple[PendingAlert, str]]:
    """Send the target's due alerts, oldest first, all within `deadline_s`; returns each one's new state.

    Stops at the first that fails (the receiver is down: the rest keep their place and their attempts for the
    next run). Only the bookkeeping after each send is `held` against signals; a send can be interrupted, and
    its event then stays pending: at least once, never lost.
    """
    end = clock() + deadline_s
    done: list[tuple[PendingAlert, str]] = []
    for item in store.due_alerts(target, now):
        left = end - clock()
        if left <= 0:
            break
        result = alerts.notify(webhook, item.body, deadline_s=left)
        with held():
            state = store.record_delivery(item, result.ok, result.problem, now)
        done.append((item, state))
        if not result.ok:
            if state == "failed":
                print(f"canary {target}: alert {item.event} of run {item.run_id} not delivered after "
                      f"{item.attempts + 1} runs: given up", file=sys.stderr)
            break
    return done


def _export(row: RunSummary, state: alerts.AlertState | None, counts: dict[str, int] | None,
            pushgateway: str | None, textfile: Path | None) -> NotRecorded | None:
    """Write the textfile, then push; a textfile that cannot be written is returned (exit 4), after the push."""
    if not pushgateway and textfile is None:
        return None
    from probes.canary import metrics

    registry = metrics.build_registry(row, state, counts)
    failure = None
    if textfile is not None:
        try:
            metrics.write_textfile(textfile, registry)
        except NotRecorded as exc:
            failure = exc
    if pushgateway:
        metrics.push(pushgateway, registry, row.target)
    return failure


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
    probe_runner: Callable[..., Any] | None = None, notify_deadline_s: float = alerts.NOTIFY_DEADLINE_S,
) -> CanaryResult:
    """One canary run of `target`; see the module docstring for the order of things and the exit codes.

    `probe_runner` is `probes.probe.run.run_probes` unless given (a test's seam); it is imported only
    once the lock is held, so a refused canary never pays for the probe engine's imports. Raises UsageError
    (exit 2) and NotRecorded (exit 4); an interruption is returned as code 130.
    """
    validate(n=n, alert_after=alert_after, resolve_after=resolve_after, jitter_s=jitter_s, keep_s=keep_s,
             webhook=webhook, pushgateway=pushgateway, textfile=textfile)
    canary = _Canary(target=target, webhook=webhook, alert_after=alert_after, resolve_after=resolve_after,
                     pushgateway=pushgateway, textfile=textfile, keep_s=keep_s, out=out, clock=clock,
                     notify_deadline_s=notify_deadline_s)
    options = RunOptions(target=target, n=n, concurrency=concurrency, label=label, cadence=cadence,
                            interval=interval, timeout_s=timeout_s, out=out, targets_file=targets_file,
                            fixtures_dir=fixtures_dir, quiet=True, slo_file=slo_file)
    with Interrupts() as interrupts:
        canary.interrupts = interrupts
        try:
            return canary.run(history, label, jitter_s, sleep, rand, probe_runner, options)
        except KeyboardInterrupt:  # SIGTERM (Terminated) or Ctrl-C, in any phase but the probes' own
            return canary.interrupted()


class _Canary:
    """One run's steps and what they got to, so an interruption can say what was kept."""

    def __init__(self, *, target: str, webhook: str | None, alert_after: int, resolve_after: int,
                 pushgateway: str | None, textfile: Path | None, keep_s: float | None, out: Path,
                 clock: Callable[[], float], notify_deadline_s: float) -> None:
        self.target, self.webhook, self.pushgateway, self.textfile = target, webhook, pushgateway, textfile
        self.alert_after, self.resolve_after, self.keep_s, self.out = alert_after, resolve_after, keep_s, out
        self.clock, self.notify_deadline_s = clock, notify_deadline_s
        self.interrupts = Interrupts()
        self.phase = "starting"
        self.row: RunSummary | None = None
        self.state: alerts.AlertState | None = None
        self.event: alerts.Event | None = None
        self.deliveries: list[tuple[PendingAlert, str]] = []

    def run(self, history: str | None, label: str, jitter_s: float, sleep: Callable[[float], None],
            rand: Callable[[], float], probe_runner: Callable[..., Any] | None, options: RunOptions,
            ) -> CanaryResult:
        with open_history(history) as store:  # a wrong --history fails before the jitter and before any probe
            delay = jitter_s * rand()
            if delay > 0:
                self.phase = "waiting (jitter)"
                print(f"canary {self.target}: jitter: starting in {delay:.1f} s", file=sys.stderr, flush=True)
                sleep(delay)
            self.phase = "taking the lock"
            with canary_lock(store.location, self.target):
                result, why = self._probe(probe_runner, options)
                code = EXIT_UNREACHABLE if result is None else result.code
                self._record(store, result, label, why)
                if code == EXIT_INTERRUPTED:  # what finished is on disk and in the history; no verdict
                    assert self.row is not None
                    print(f"canary {self.target}: interrupted while probing: {self.row.n} probe(s) recorded; "
                          "no verdict, no alert", file=sys.stderr)
                    return CanaryResult(EXIT_INTERRUPTED, self.row)
                counts, failure, pruned = self._after(store)
        assert self.row is not None and self.state is not None
        code = EXIT_UNREACHABLE if result is None else exit_code(result.code, self.row)
        verdict = {EXIT_OK: "healthy", EXIT_REGRESSION: "SLO broken", EXIT_UNREACHABLE: "unreachable"}[code]
        detail = "; ".join(why + reasons(self.row))
        undelivered = f"; {counts['pending']} alert(s) pending delivery" if counts["pending"] else ""
        print(f"canary {self.target}: {verdict}{': ' + detail if detail else ''}; alert "
              f"{'firing' if self.state.firing else 'ok'}{undelivered}"
              + (f"; pruned {len(pruned)} run directories" if pruned else ""))
        if failure is not None:
            raise failure
        return CanaryResult(code, self.row, self.state, self.event, self._notified(), pruned, self._delivered())

    def _probe(self, probe_runner: Callable[..., Any] | None, options: RunOptions) -> tuple[Any, list[str]]:
        """`probes run`; (None, why) when the target refused before any probe. Its own loop handles signals."""
        self.phase = "probing"
        if probe_runner is None:
            from probes.probe.run import run_probes as probe_runner
        try:
            result = probe_runner(options)
        except UnreachableError as exc:
            print(f"canary {self.target}: unreachable: {exc}", file=sys.stderr)  # the log gets the detail
            return None, [alerts.unreachable_reason(exc)]  # the alert gets words safe for a chat channel
        finally:
            self.interrupts.restore()  # the probe phase's event loop may have left its SIGTERM handler behind
        return result, []  # a run directory that cannot be written is run_probes' NotRecorded (exit 4)

    def _record(self, store: HistoryStore, result: Any, label: str, why: list[str]) -> None:
        """The run, then the alert state and its outbox entry: each one transaction, held against a signal."""
        self.phase = "recording"
        with self.interrupts.held():
            if result is None:
                self.row = store.record_summary(_unreached_row(self.target, label))
            else:
                self.row = store.record_run(result.run_dir, exit_code=result.code)
            if result is not None and result.code == EXIT_INTERRUPTED:
                return
            message = self._message_factory(why) if self.webhook else None
            self.state, self.event = store.evaluate_alert(self.target, self.row.run_id, self.row.ok,
                                                          self.alert_after, self.resolve_after, message)
        if self.event:
            print(f"canary {self.target}: alert {self.event} ({self.state.failing} failing / "
                  f"{self.state.passing} passing in a row)", file=sys.stderr)

    def _after(self, store: HistoryStore) -> tuple[dict[str, int], NotRecorded | None, list[str]]:
        """Deliver the outbox, export the metrics, prune: (undelivered counts, a textfile failure, pruned)."""
        assert self.row is not None
        if self.webhook:
            self.phase = "alerting"
            self.deliveries = deliver(store, self.target, self.webhook, self.clock(),
                                      deadline_s=self.notify_deadline_s, held=self.interrupts.held)
        counts = store.delivery_counts(self.target)
        self.phase = "exporting metrics"
        failure = _export(self.row, self.state, counts, self.pushgateway, self.textfile)
        pruned: list[str] = []
        if self.keep_s:
            self.phase = "pruning"
            with self.interrupts.held():
                pruned = prune(store, self.target, self.keep_s, self.out, self.row.run_id, self.clock())
        return counts, failure, pruned

    def _message_factory(self, why: list[str]) -> Callable[[alerts.AlertState, alerts.Event], dict[str, Any]]:
        row = self.row
        assert row is not None

        def message(state: alerts.AlertState, event: alerts.Event) -> dict[str, Any]:
            return alerts.message(event, row.target, state, row.run_id, row.ok, why + reasons(row))

        return message

    def _notified(self) -> bool | None:
        """Whether this run's own event reached the webhook (None: no event, or no webhook)."""
        if not self.event or not self.webhook or self.row is None:
            return None
        return any(item.run_id == self.row.run_id and item.event == self.event and state == "sent"
                   for item, state in self.deliveries)

    def _delivered(self) -> list[tuple[str, str, str]]:
        return [(item.run_id, item.event, state) for item, state in self.deliveries]

    def interrupted(self) -> CanaryResult:
        """One line saying what was kept; the lock was released on the way out."""
        name = "SIGTERM" if self.interrupts.received == signal.SIGTERM else "SIGINT"
        if self.row is None:
            kept = "nothing recorded"
        else:
            kept = f"run {self.row.run_id} recorded"
            if self.webhook and self.event and not self._notified():
                kept += f"; alert {self.event} kept in the outbox for the next run"
        print(f"canary {self.target}: interrupted by {name} while {self.phase}: {kept}; lock released",
              file=sys.stderr)
        return CanaryResult(EXIT_INTERRUPTED, self.row, self.state, self.event, self._notified(),
                            deliveries=self._delivered())
