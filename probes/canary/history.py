"""The history store: one row per canary run and one per probe, in SQLite (default) or PostgreSQL.

    store = open_history(None)                        # reports/history.sqlite
    store = open_history("sqlite:///var/lib/probes/history.sqlite")
    store = open_history("postgresql://probes:secret@db:5432/probes")
    row = store.record_run(Path("reports/runs/<run_id>"))

SQLite (stdlib sqlite3, WAL) suits one machine; PostgreSQL (psycopg 3) suits
teams and ephemeral CI runners whose disk disappears after each job, which is
why the alert state lives here too, and the outbox of alert events still to be
delivered (an event and its delivery state commit in one transaction). The
schema is versioned (`schema_version` plus the ordered migrations in
migrations.py), applied when a store is opened. A URL's password never appears
in an error, a log line or the database. A write that fails (a full disk, a
database that refuses it) is NotRecorded, exit 4; any other database error is
a UsageError, exit 2: one line either way.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from probes.canary import alerts
from probes.errors import NotRecorded, os_reason
from probes.canary.location import HistoryLocation, parse_history_url, scrub
from probes.canary.migrations import LATEST, MIGRATIONS
from probes.canary.rundir import read_probes_jsonl, read_run_json
from probes.canary.summary import METRICS, ProbeRow, RunSummary, summarise_run
from probes.errors import ProbesError, UsageError

CONNECT_TIMEOUT_S = 10  # a database that does not answer within 10 s will not answer a canary either
# A canary prunes at most this many run directories; a first `--keep` on a long history catches up over runs.
PRUNE_BATCH = 1000
# A second writer (`history import` beside a running canary) waits this long for SQLite's write lock.
SQLITE_BUSY_TIMEOUT_S = 30.0
# Alert delivery over runs: after the k-th run that failed to deliver an event, the next try waits
# DELIVERY_BACKOFF_S[k-1] (the next run at once, then 1, 5, 15, 30 minutes: a receiver that is restarting gets
# the alert on the next run, one that is down is not hammered); after MAX_DELIVERY_ATTEMPTS runs, about an hour,
# the event is `failed` for good: an alert that late is history rather than news, and the trend and the
# probes_alert_undelivered metric say so.
DELIVERY_BACKOFF_S = (0.0, 60.0, 300.0, 900.0, 1800.0)
MAX_DELIVERY_ATTEMPTS = 6
MAX_DUE_ALERTS = 20  # per run: a target fires and resolves at most once per run, so more is a backlog of failures
# What `probes trend` reads for every run in its window; the covering index of migration 3 holds exactly these.
TREND_COLUMNS = (
    "target", "started_ts", "ok", "total_s_p50", "total_s_p90", "dwell_32_p50", "dwell_32_p90",
    "transcription_s_p50", "transcription_s_p90", "label", "fingerprint_hash", "signature_hash",
)
_JSON_COLUMNS = ("outcomes", "slo", "signature")
_BOOL_COLUMNS = ("ok", "slo_ok")


def _key(text: str) -> int:
    """A signed 64-bit PostgreSQL advisory-lock key from a name."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big", signed=True)


MIGRATION_LOCK_KEY = _key("probes-history-migrate")


# --- the store ----------------------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


# SQLite's primary result codes that mean "the write did not happen": the disk is full, the file system failed
# or is read-only. PostgreSQL's SQLSTATE classes 53 (insufficient resources: disk_full, out_of_memory) and 58
# (system error: io_error) mean the same on the server.
_SQLITE_NOT_WRITTEN = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY})
_PG_NOT_WRITTEN = ("53", "58")
# Creating the store's directory: these say the disk, not the path, is the problem (the path is configuration).
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def not_written(exc: BaseException) -> bool:
    """True when a database error says the disk (or the server's) could not take the write."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_NOT_WRITTEN
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _PG_NOT_WRITTEN


def _guarded(method: F | None = None, *, write: bool = False) -> Any:
    """Database errors become one line naming the (redacted) store, never a traceback.

    Exit 4 (NotRecorded) when a write failed (`write=True`: whatever the database said, the run is not
    recorded) or the disk could not take it; exit 2 (UsageError) for any other error, a configuration one.
    """

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: HistoryStore, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except ProbesError:
                raise
            except self._errors as exc:
                reason = scrub(str(exc), self._secret_url)
                if write or not_written(exc):
                    raise NotRecorded(f"could not record in history {self.display}: {reason}") from None
                raise UsageError(f"history {self.display}: {reason}") from None

        return wrapper  # type: ignore[return-value]

    return decorate(method) if method is not None else decorate


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _clean(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL; a server's string might."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _run_values(s: RunSummary) -> dict[str, Any]:
    values: dict[str, Any] = {
        "run_id": s.run_id, "target": s.target, "label": s.label, "started_at": s.started_at,
        "started_ts": s.started_ts, "ended_at": s.ended_at, "ended_ts": s.ended_ts, "n": s.n,
        "n_planned": s.n_planned, "completed": s.completed, "outcomes": _dumps(s.outcomes),
        "scenario": s.scenario, "time_scale": s.time_scale,
    }
    for metric in METRICS:
        stats = s.metrics.get(metric) or {}
        for stat in ("n", "p50", "p90", "max"):
            values[f"{metric}_{stat}"] = stats.get(stat, 0 if stat == "n" else None)
    values.update({
        "slo_ok": None if s.slo_ok is None else int(s.slo_ok), "slo": _dumps(s.slo_results), "ok": int(s.ok),
        "exit_code": s.exit_code, "fingerprint_hash": s.fingerprint_hash, "signature": _dumps(s.signature),
        "signature_hash": s.signature_hash, "run_dir": s.run_dir, "recorded_at": _utc_now(),
    })
    return {k: _clean(v) for k, v in values.items()}


def _probe_values(p: ProbeRow) -> tuple[Any, ...]:
    return tuple(_clean(v) for v in (p.run_id, p.probe_id, p.target, p.started_at, p.outcome, p.error,
                                      *(p.metrics.get(m) for m in METRICS), p.poll_count, p.poll_errors))


_RUN_COLUMNS = tuple(_run_values(RunSummary(
    run_id="", target="", label=None, started_at="", started_ts=0.0, ended_at=None, ended_ts=None, n=0,
    n_planned=None, outcomes={}, scenario=None, time_scale=None, metrics={}, slo_ok=None, slo_results=[], ok=True,
    exit_code=None, fingerprint_hash=None, signature=[], signature_hash=None, run_dir=None)))
_UPSERT_RUN = (
    f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' for _ in _RUN_COLUMNS)}) "
    f"ON CONFLICT (run_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _RUN_COLUMNS if c != "run_id")
    + ", pruned_at = NULL"
)
_PROBE_COLUMNS = ("run_id", "probe_id", "target", "started_at", "outcome", "error", *METRICS,
                  "poll_count", "poll_errors")
_INSERT_PROBE = (f"INSERT INTO probes ({', '.join(_PROBE_COLUMNS)}) "
                 f"VALUES ({', '.join('?' for _ in _PROBE_COLUMNS)})")


@dataclass(frozen=True)
class PendingAlert:
    """An alert event in the outbox: its body is sent as stored, on every attempt."""

    target: str
    run_id: str
    event: str
    attempts: int
    body: dict[str, Any]


@dataclass
class ImportResult:
    recorded: list[RunSummary]
    skipped: list[tuple[str, str]]  # (run directory, reason)


class HistoryStore:
    """An open history: SQLite or PostgreSQL behind one set of methods. Use as a context manager."""

    def __init__(self, location: HistoryLocation, conn: Any, errors: tuple[type[BaseException], ...]) -> None:
        self.location = location
        self.kind = location.kind
        self.display = location.display
        self._conn = conn
        self._errors = errors
        self._secret_url = location.conninfo or ""

    # -- plumbing

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.kind == "postgresql" else sql

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> Any:
        return self._conn.execute(self._sql(sql), tuple(params))

    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if self.kind == "postgresql":
            with self._conn.cursor() as cur:
                cur.executemany(self._sql(sql), rows)
        else:
            self._conn.executemany(sql, rows)

    def _dicts(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        cur = self._execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction; SQLite takes its write lock at the start so read-modify-write is safe."""
        if self.kind == "postgresql":
            with self._conn.transaction():
                yield
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # -- schema

    def _has_version_table(self) -> bool:
        if self.kind == "postgresql":
            return self._execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
        return self._execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone() is not None

    def _version(self) -> int:
        if not self._has_version_table():
            return 0
        return self._execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0

    @_guarded
    def schema_version(self) -> int:
        return self._version()

    @_guarded(write=True)
    def migrate(self, upto: int = LATEST) -> int:
        """Apply the migrations newer than the database's version, in order; returns the version."""
        current = self._version()
        if current > LATEST:
            raise UsageError(f"history {self.display}: schema version {current} is newer than this probes "
                             f"understands ({LATEST}); upgrade probes")
        if current >= upto:
            return current
        with self._transaction():
            if self.kind == "postgresql":  # two runners opening a fresh database at once migrate it once
                self._execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK_KEY,))
            self._execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                          "description TEXT NOT NULL, applied_at TEXT NOT NULL)")
            current = self._version()
            for migration in MIGRATIONS:
                if current < migration.version <= upto:
                    for statement in migration.statements:
                        self._execute(statement if isinstance(statement, str) else statement[self.kind])
                    self._execute("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                                  (migration.version, migration.description, _utc_now()))
                    current = migration.version
        return current

    # -- recording runs

    @_guarded(write=True)
    def record_summary(self, summary: RunSummary) -> RunSummary:
        """Insert or replace one run and its probes (idempotent per run_id)."""
        values = _run_values(summary)
        probe_rows = [_probe_values(p) for p in summary.probes]
        with self._transaction():
            self._execute(_UPSERT_RUN, [values[c] for c in _RUN_COLUMNS])
            self._execute("DELETE FROM probes WHERE run_id = ?", (summary.run_id,))
            if probe_rows:
                self._executemany(_INSERT_PROBE, probe_rows)
        return summary

    @_guarded(write=True)
    def record_summaries(self, summaries: Iterable[RunSummary], batch: int = 5000) -> int:
        """Insert many new runs, `batch` per transaction (a back-fill or a benchmark); not for re-recording."""
        count, runs, probes = 0, [], []

        def flush() -> None:
            with self._transaction():
                self._executemany(_UPSERT_RUN, runs)
                if probes:
                    self._executemany(_INSERT_PROBE, probes)
            runs.clear()
            probes.clear()

        for summary in summaries:
            values = _run_values(summary)
            runs.append(tuple(values[c] for c in _RUN_COLUMNS))
            probes.extend(_probe_values(p) for p in summary.probes)
            count += 1
            if len(runs) >= batch:
                flush()
        if runs:
            flush()
        return count

    def load_run(self, run_dir: Path, exit_code: int | None = None) -> RunSummary:
        """The summary of a run directory, keeping the exit code a canary recorded before (for re-imports)."""
        run_dir = Path(run_dir)
        meta = read_run_json(run_dir)
        if exit_code is None and isinstance(meta.get("run_id"), str):
            exit_code = self._recorded_exit_code(meta["run_id"])
        return summarise_run(meta, read_probes_jsonl(run_dir), str(run_dir.resolve()), exit_code)

    @_guarded
    def _recorded_exit_code(self, run_id: str) -> int | None:
        row = self._execute("SELECT exit_code FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return row[0] if row else None

    def record_run(self, run_dir: Path, exit_code: int | None = None) -> RunSummary:
        """Read run.json + probes.jsonl and record them; `exit_code` is `probes run`'s, when known."""
        return self.record_summary(self.load_run(run_dir, exit_code))

    def import_runs(self, run_dirs: Iterable[Path]) -> ImportResult:
        """Back-fill from run directories; a directory that is not a run is skipped with its reason."""
        result = ImportResult([], [])
        for run_dir in run_dirs:
            try:
                summary = self.load_run(Path(run_dir))
            except UsageError as exc:
                result.skipped.append((str(run_dir), str(exc)))
                continue
            result.recorded.append(self.record_summary(summary))
        return result

    # -- queries

    def _decode(self, row: dict[str, Any]) -> dict[str, Any]:
        for col in _JSON_COLUMNS:
            if isinstance(row.get(col), str):
                row[col] = json.loads(row[col])
        for col in _BOOL_COLUMNS:
            if row.get(col) is not None:
                row[col] = bool(row[col])
        return row

    @_guarded
    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._dicts("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        return self._decode(rows[0]) if rows else None

    @_guarded
    def probes(self, run_id: str) -> list[dict[str, Any]]:
        return self._dicts("SELECT * FROM probes WHERE run_id = ? ORDER BY probe_id", (run_id,))

    @_guarded
    def count_runs(self, target: str | None = None) -> int:
        if target is None:
            return self._execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        return self._execute("SELECT COUNT(*) FROM runs WHERE target = ?", (target,)).fetchone()[0]

    @_guarded
    def trend_table(self, target: str | None, since_ts: float) -> tuple[list[str], list[tuple[Any, ...]]]:
        """(TREND_COLUMNS, rows) of the runs started at or after since_ts: by target, then oldest first.

        One range query per target, each answered from the covering index alone.
        """
        if target is None:
            targets = [r[0] for r in self._execute("SELECT DISTINCT target FROM runs ORDER BY target").fetchall()]
        else:
            targets = [target]
        sql = f"SELECT {', '.join(TREND_COLUMNS)} FROM runs WHERE target = ? AND started_ts >= ? ORDER BY started_ts"
        rows: list[tuple[Any, ...]] = []
        for name in targets:
            rows += self._execute(sql, (name, since_ts)).fetchall()
        return list(TREND_COLUMNS), rows

    @_guarded
    def last_runs(self, target: str | None, limit: int, since_ts: float | None = None) -> list[dict[str, Any]]:
        """The newest runs, newest first, every column decoded."""
        clauses, params = [], []
        if target is not None:
            clauses.append("target = ?")
            params.append(target)
        if since_ts is not None:
            clauses.append("started_ts >= ?")
            params.append(since_ts)
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        # by start time alone: an index gives that order, so LIMIT stops early (a run_id tie-break would sort all)
        rows = self._dicts(f"SELECT * FROM runs {where}ORDER BY started_ts DESC LIMIT ?", [*params, int(limit)])
        return [self._decode(r) for r in rows]

    @_guarded
    def latest_slo(self, target: str) -> list[dict[str, Any]]:
        """The SLO results of the target's newest judged run: the thresholds the trend draws."""
        row = self._execute("SELECT slo FROM runs WHERE target = ? AND slo_ok IS NOT NULL "
                            "ORDER BY started_ts DESC LIMIT 1", (target,)).fetchone()
        return json.loads(row[0]) if row else []

    # -- alerts

    @_guarded
    def alert_state(self, target: str) -> alerts.AlertState:
        row = self._execute("SELECT firing, failing, passing, last_run_id FROM alert_state WHERE target = ?",
                            (target,)).fetchone()
        if row is None:
            return alerts.AlertState()
        return alerts.AlertState(bool(row[0]), row[1], row[2], row[3])

    @_guarded(write=True)
    def evaluate_alert(self, target: str, run_id: str, healthy: bool, alert_after: int, resolve_after: int,
                       message: Callable[[alerts.AlertState, alerts.Event], dict[str, Any]] | None = None,
                       ) -> tuple[alerts.AlertState, alerts.Event | None]:
        """Advance the target's alert by one run and store it; a run already counted changes nothing.

        An event and its place in the outbox commit together: with `message` (a webhook is configured) the
        event is `pending` with that body, to be sent by `due_alerts`/`record_delivery`; without, `unsent`.
        """
        with self._transaction():
            now = _utc_now()
            self._execute("INSERT INTO alert_state (target, firing, failing, passing, last_run_id, updated_at) "
                          "VALUES (?, 0, 0, 0, NULL, ?) ON CONFLICT (target) DO NOTHING", (target, now))
            lock = " FOR UPDATE" if self.kind == "postgresql" else ""
            row = self._execute("SELECT firing, failing, passing, last_run_id FROM alert_state WHERE target = ?"
                                + lock, (target,)).fetchone()
            state = alerts.AlertState(bool(row[0]), row[1], row[2], row[3])
            if state.last_run_id == run_id:
                return state, None
            new, event = alerts.step(state, healthy, alert_after, resolve_after)
            new = alerts.AlertState(new.firing, new.failing, new.passing, run_id)
            self._execute("UPDATE alert_state SET firing = ?, failing = ?, passing = ?, last_run_id = ?, "
                          "updated_at = ? WHERE target = ?",
                          (int(new.firing), new.failing, new.passing, run_id, now, target))
            if event:
                body = message(new, event) if message is not None else None
                self._execute(
                    "INSERT INTO alert_events (target, run_id, event, at, failing, passing, delivery, "
                    "idempotency_key, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (target, run_id, event, now, new.failing, new.passing, "pending" if body else "unsent",
                     alerts.idempotency_key(target, run_id, event), _clean(_dumps(body)) if body else None))
        return new, event

    @_guarded
    def due_alerts(self, target: str, now_ts: float) -> list[PendingAlert]:
        """The target's pending events whose back-off has passed, oldest first: what this run delivers."""
        cur = self._execute("SELECT run_id, event, attempts, body FROM alert_events WHERE target = ? "
                            "AND delivery = 'pending' AND body IS NOT NULL AND (next_attempt_ts IS NULL OR next_attempt_ts <= ?) "
                            "ORDER BY at, run_id LIMIT ?", (target, now_ts, MAX_DUE_ALERTS))
        return [PendingAlert(target, r[0], r[1], r[2], json.loads(r[3])) for r in cur.fetchall()]

    @_guarded(write=True)
    def record_delivery(self, item: PendingAlert, ok: bool, problem: str | None, now_ts: float) -> str:
        """Store how one run's attempt went; returns the event's delivery state (sent, pending or failed).

        A failed attempt backs off over runs (DELIVERY_BACKOFF_S); after MAX_DELIVERY_ATTEMPTS it is `failed`.
        """
        attempts = item.attempts + 1
        if ok:
            state, next_ts = "sent", None
        elif attempts >= MAX_DELIVERY_ATTEMPTS:
            state, next_ts = "failed", None
        else:
            state, next_ts = "pending", now_ts + DELIVERY_BACKOFF_S[min(attempts, len(DELIVERY_BACKOFF_S)) - 1]
        notified = 1 if ok else 0 if state == "failed" else None
        with self._transaction():
            self._execute("UPDATE alert_events SET delivery = ?, attempts = ?, next_attempt_ts = ?, last_problem = ?, "
                          "delivered_at = ?, notified = ? WHERE target = ? AND run_id = ? AND event = ?",
                          (state, attempts, next_ts, None if ok else _clean(problem), _utc_now() if ok else None,
                           notified, item.target, item.run_id, item.event))
        return state

    @_guarded
    def delivery_counts(self, target: str) -> dict[str, int]:
        """How many of the target's alert events are still `pending` and how many `failed` for good."""
        counts = {"pending": 0, "failed": 0}
        for state, count in self._execute("SELECT delivery, COUNT(*) FROM alert_events WHERE target = ? AND "
                                          "delivery IN ('pending', 'failed') GROUP BY delivery", (target,)).fetchall():
            counts[state] = count
        return counts

    @_guarded
    def undelivered_alerts(self, target: str | None, limit: int = 20) -> list[dict[str, Any]]:
        """The newest alert events not delivered (pending or failed), newest first: what `probes trend` shows."""
        where, params = ("AND target = ? ", [target]) if target is not None else ("", [])
        return self._dicts("SELECT target, run_id, event, at, delivery, attempts, last_problem FROM alert_events "
                           f"WHERE delivery IN ('pending', 'failed') {where}ORDER BY at DESC, run_id LIMIT ?",
                           [*params, int(limit)])

    @_guarded
    def alert_events(self, target: str) -> list[dict[str, Any]]:
        return self._dicts("SELECT target, run_id, event, at, failing, passing, notified, delivery, attempts, "
                           "last_problem, idempotency_key FROM alert_events WHERE target = ? ORDER BY at, run_id",
                           (target,))

    # -- pruning run directories

    @_guarded
    def prunable_runs(self, target: str, before_ts: float, under: str, limit: int = PRUNE_BATCH
                      ) -> list[tuple[str, str]]:
        """(run_id, run_dir) of the target's runs started before before_ts, recorded with a directory
        under `under` (this machine's runs directory) that no canary has pruned yet; oldest first."""
        prefix = under.rstrip("/") + "/"
        cur = self._execute("SELECT run_id, run_dir FROM runs WHERE target = ? AND started_ts < ? "
                            "AND run_dir IS NOT NULL AND pruned_at IS NULL AND substr(run_dir, 1, ?) = ? "
                            "ORDER BY started_ts LIMIT ?", (target, before_ts, len(prefix), prefix, int(limit)))
        return [(r[0], r[1]) for r in cur.fetchall()]

    @_guarded(write=True)
    def mark_pruned(self, run_ids: list[str]) -> None:
        with self._transaction():
            now = _utc_now()
            for run_id in run_ids:
                self._execute("UPDATE runs SET pruned_at = ? WHERE run_id = ?", (now, run_id))


# --- opening ------------------------------------------------------------------------------------------------


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, retrying while another opener holds the file.

    Switching a fresh file needs it alone for a moment, and SQLite's busy timeout does not cover that
    wait: without the retry, one of two canaries starting on a new store fails with "database is locked".
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _open_sqlite(location: HistoryLocation) -> HistoryStore:
    path = location.path
    assert path is not None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
        _use_wal(conn)  # readers (trend) never block the canary's write
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL's recommended level: durable across app crashes
    except OSError as exc:
        if exc.errno in _DISK_ERRNOS:
            raise NotRecorded(f"could not record in history {location.display}: {os_reason(exc)}") from None
        raise UsageError(f"history {location.display}: {os_reason(exc)}") from None
    except sqlite3.Error as exc:
        if not_written(exc):
            raise NotRecorded(f"could not record in history {location.display}: {scrub(str(exc), '')}") from None
        raise UsageError(f"history {location.display}: {scrub(str(exc), '')}") from None
    return HistoryStore(location, conn, (sqlite3.Error,))


def connect_postgresql(location: HistoryLocation) -> Any:
    """A psycopg connection in autocommit mode; an unreachable server or a bad login is a UsageError."""
    import psycopg

    try:
        return psycopg.connect(location.conninfo or "", autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                               application_name="probes")
    except psycopg.Error as exc:
        raise UsageError(f"history {location.display}: cannot connect: "
                         f"{scrub(str(exc), location.conninfo or '')}") from None


def _open_postgresql(location: HistoryLocation) -> HistoryStore:
    import psycopg

    return HistoryStore(location, connect_postgresql(location), (psycopg.Error,))


def open_history(url: str | None) -> HistoryStore:
    """Open (and migrate) the history at a path, sqlite:///PATH or postgresql://... (None: the default)."""
    location = parse_history_url(url)
    store = _open_sqlite(location) if location.kind == "sqlite" else _open_postgresql(location)
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store
