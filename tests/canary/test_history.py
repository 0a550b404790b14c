"""The history store on SQLite and on a real PostgreSQL: schema migrations, runs, probes, alert state, queries."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from probes.canary.history import HistoryStore, open_history
from probes.canary.location import parse_history_url, redact_url
from probes.canary.migrations import LATEST
from probes.errors import UsageError
from tests.canary.conftest import probe_record, write_run
from tests.canary.services import PG_PASSWORD, free_port

SLO_BROKEN = {"ok": False, "results": [
    {"metric": "total_s", "stat": "p90", "threshold": 15, "value": 62.0, "n": 3, "ok": False},
    {"metric": "completed", "stat": "rate", "threshold": 1.0, "value": 1.0, "n": 3, "ok": True}]}


# --- URLs (pure) --------------------------------------------------------------------------------------------


def test_history_urls() -> None:
    assert parse_history_url(None).path == Path("reports/history.sqlite")
    assert parse_history_url("sqlite:///reports/h.sqlite").path == Path("reports/h.sqlite")
    assert parse_history_url("sqlite:////var/lib/h.sqlite").path == Path("/var/lib/h.sqlite")
    assert parse_history_url("/tmp/h.sqlite").path == Path("/tmp/h.sqlite")
    pg = parse_history_url("postgresql://probes:pa%40ss@db:5432/probes")
    assert pg.kind == "postgresql" and pg.display == "postgresql://probes:[redacted]@db:5432/probes"
    assert "pa%40ss" not in repr(pg)
    assert parse_history_url("postgres://u@db/h").kind == "postgresql"


@pytest.mark.parametrize("url, message", [
    ("mysql://u:hunter2@db/h", "unknown scheme 'mysql'"),
    ("sqlite://host/h.sqlite", "three slashes"),
    ("postgresql://u:hunter2@db:99999/h", "--history postgresql://u:[redacted]@db:99999/h: the port must be"),
    ("postgresql://u:hunter2@db:5432", "name the database"),
])
def test_bad_urls_are_one_line_without_the_password(url: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_history_url(url)
    assert message in str(err.value) and "hunter2" not in str(err.value) and "\n" not in str(err.value)


def test_redaction_covers_unencoded_at_and_query_passwords() -> None:
    assert redact_url("postgresql://u:p@ss@h/d") == "postgresql://u:[redacted]@h/d"
    assert redact_url("postgresql://h/d?user=u&password=hunter2") == "postgresql://h/d?user=[redacted]&password=[redacted]"


def test_unreachable_postgresql_is_a_usage_error_without_the_password() -> None:
    with pytest.raises(UsageError) as err:
        open_history(f"postgresql://probes:hunter2@127.0.0.1:{free_port()}/h")
    text = str(err.value)
    assert text.startswith("history postgresql://probes:[redacted]@127.0.0.1:") and "cannot connect" in text
    assert "hunter2" not in text and "\n" not in text


def test_wrong_password_is_a_usage_error_without_either_password(postgres) -> None:
    url = postgres.url.replace(PG_PASSWORD, "not-the-password")
    with pytest.raises(UsageError) as err:
        open_history(url)
    assert "password authentication failed" in str(err.value)
    assert "not-the-password" not in str(err.value) and PG_PASSWORD not in str(err.value)


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    bogus = tmp_path / "h.sqlite"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UsageError, match="file is not a database"):
        open_history(str(bogus))


# --- schema -------------------------------------------------------------------------------------------------


def _raw_store(url: str) -> HistoryStore:
    from probes.canary.history import _open_postgresql, _open_sqlite

    location = parse_history_url(url)
    return _open_sqlite(location) if location.kind == "sqlite" else _open_postgresql(location)


def test_fresh_store_is_migrated_once(history_url: str) -> None:
    with open_history(history_url) as store:
        assert store.schema_version() == LATEST
    with open_history(history_url) as store:  # reopening applies nothing twice
        assert store.schema_version() == LATEST
        rows = store._dicts("SELECT version, description FROM schema_version ORDER BY version")
        assert [r["version"] for r in rows] == list(range(1, LATEST + 1))


def test_an_old_schema_is_upgraded_in_order_and_keeps_its_rows(history_url: str, tmp_path: Path) -> None:
    with _raw_store(history_url) as store:
        assert store.migrate(upto=1) == 1
        store.record_run(write_run(tmp_path, "r-old"))
        assert store._version() == 1
    with open_history(history_url) as store:
        assert store.schema_version() == LATEST
        assert store.run("r-old")["completed"] == 3
        assert store.alert_state("prod").failing == 0  # table from migration 2


def test_events_from_before_the_outbox_are_never_sent(history_url: str) -> None:
    """Migration 4 reads the old `notified` (1 sent, 0 failed, NULL unsent) and queues nothing: an alert from
    before the upgrade has no body to send and is history, not news."""
    with _raw_store(history_url) as store:
        store.migrate(upto=3)
        for run_id, notified in (("r1", 1), ("r2", 0), ("r3", None)):
            store._execute("INSERT INTO alert_events (target, run_id, event, at, failing, passing, notified) "
                           "VALUES ('prod', ?, 'fired', ?, 2, 0, ?)", (run_id, f"2026-01-0{run_id[1]}T00:00:00Z",
                                                                      notified))
    with open_history(history_url) as store:
        assert [(e["run_id"], e["delivery"], e["attempts"]) for e in store.alert_events("prod")] == \
            [("r1", "sent", 0), ("r2", "failed", 0), ("r3", "unsent", 0)]
        assert store.due_alerts("prod", 1e12) == [] and store.delivery_counts("prod") == {"pending": 0, "failed": 1}


def test_a_newer_schema_is_refused(history_url: str) -> None:
    with open_history(history_url) as store:
        store._execute("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                       (LATEST + 1, "from the future", "2030-01-01T00:00:00Z"))
    with pytest.raises(UsageError, match=f"schema version {LATEST + 1} is newer"):
        open_history(history_url)


def test_several_openers_of_a_fresh_store_at_once(history_url: str, tmp_path: Path) -> None:
    # SQLite lost this race on about 1 fresh file in 12 (the switch to WAL); 40 files make a regression show.
    urls = [f"sqlite:///{tmp_path / f'h{i}.sqlite'}" for i in range(40)] if history_url.startswith("sqlite") \
        else [history_url]
    errors: list[BaseException] = []

    def open_one(url: str) -> None:
        try:
            open_history(url).close()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    for url in urls:
        threads = [threading.Thread(target=open_one, args=(url,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with open_history(url) as store:
            assert store.schema_version() == LATEST


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    open_history(str(tmp_path / "h.sqlite")).close()
    with sqlite3.connect(tmp_path / "h.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --- runs and probes ----------------------------------------------------------------------------------------


def test_record_run_holds_the_summary(history_url: str, tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "r1", slo=SLO_BROKEN, time_scale=0.5,
                        records=[probe_record("r1", f"{i:04d}", total=t) for i, t in enumerate((4.5, 5.0, 31.0), 1)])
    with open_history(history_url) as store:
        row = store.record_run(run_dir, exit_code=1)
        assert row.metrics["total_s"] == {"n": 3, "p50": 10.0, "p90": 62.0, "max": 62.0}
        stored = store.run("r1")
        assert (stored["total_s_n"], stored["total_s_p50"], stored["total_s_p90"], stored["total_s_max"]) == \
            (3, 10.0, 62.0, 62.0)
        assert stored["dwell_32_p90"] == 1.0  # 0.5 real seconds at scale 0.5
        assert stored["outcomes"] == {"completed": 3} and stored["n"] == 3 and stored["completed"] == 3
        assert stored["slo_ok"] is False and stored["ok"] is False and stored["exit_code"] == 1
        assert stored["slo"][0]["metric"] == "total_s" and stored["signature"][0][1] == "处理中"
        assert stored["fingerprint_hash"] == row.fingerprint_hash and stored["run_dir"] == str(run_dir.resolve())
        probes = store.probes("r1")
        assert [p["total_s"] for p in probes] == [9.0, 10.0, 62.0]
        assert probes[0]["outcome"] == "completed" and probes[0]["poll_count"] == 20


def test_every_per_probe_column_holds_its_probe(history_url: str, tmp_path: Path) -> None:
    """Each probe's row: all six metrics (scenario seconds), when it started, its error and its polls.

    Distinct numbers per probe and per metric, so a column stored as NULL, swapped with another or taken
    from the wrong probe fails here.
    """
    records = []
    for i in range(1, 4):
        record = probe_record("r1", f"{i:04d}", upload=0.01 * i, t_32=1.0 + i, dwell_32=0.1 * i, stall=0.2 + i,
                              transcription=2.0 + i, total=10.0 + i)
        record.update(started_at=f"2026-11-26T09:00:0{i}.000000Z", poll_count=20 + i, poll_errors=i)
        records.append(record)
    failed = probe_record("r1", "0004", outcome="failed", total=None, transcription=None)
    failed.update(error="BACKEND_DOWN", poll_count=7, poll_errors=3)
    run_dir = write_run(tmp_path, "r1", time_scale=0.5, records=[*records, failed])
    with open_history(history_url) as store:
        store.record_run(run_dir, exit_code=1)
        rows = store.probes("r1")
    assert [r["probe_id"] for r in rows] == ["0001", "0002", "0003", "0004"]
    for i, row in enumerate(rows[:3], 1):
        expected = {"upload_s": 0.02 * i, "t_32": 2.0 + 2 * i, "dwell_32": 0.2 * i, "stall_s": 0.4 + 2 * i,
                    "transcription_s": 4.0 + 2 * i, "total_s": 20.0 + 2 * i}  # real seconds / 0.5
        assert {m: row[m] for m in expected} == pytest.approx(expected), i
        assert (row["run_id"], row["target"], row["outcome"], row["error"]) == ("r1", "prod", "completed", None)
        assert (row["started_at"], row["poll_count"], row["poll_errors"]) == \
            (f"2026-11-26T09:00:0{i}.000000Z", 20 + i, i)
    last = rows[3]
    assert (last["outcome"], last["error"], last["poll_count"], last["poll_errors"]) == ("failed", "BACKEND_DOWN", 7, 3)
    assert last["total_s"] is None and last["transcription_s"] is None and last["t_32"] == 6.0


def test_record_run_is_idempotent_and_keeps_the_canary_exit_code(history_url: str, tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "r1")
    with open_history(history_url) as store:
        store.record_run(run_dir, exit_code=3)
        again = store.record_run(run_dir)  # a back-fill of the same directory
        assert again.exit_code == 3 and not again.ok
        assert store.count_runs() == 1 and len(store.probes("r1")) == 3


def test_import_skips_what_is_not_a_run(history_url: str, tmp_path: Path) -> None:
    good = write_run(tmp_path, "r1", torn_tail=True)
    other = write_run(tmp_path, "r2", target="local", started_at="2026-11-26T10:00:00Z")
    (tmp_path / "empty").mkdir()
    with open_history(history_url) as store:
        result = store.import_runs([good, tmp_path / "empty", other])
        assert [r.run_id for r in result.recorded] == ["r1", "r2"]
        assert result.skipped == [(str(tmp_path / "empty"), f"{tmp_path / 'empty'}: not a run directory (no run.json)")]
        assert store.run("r1")["n"] == 3  # the torn last line is skipped, the rest kept
        assert store.count_runs("local") == 1


def test_queries_for_the_trend(history_url: str, tmp_path: Path) -> None:
    with open_history(history_url) as store:
        for i, (target, hour) in enumerate([("prod", 9), ("prod", 10), ("local", 11), ("prod", 12)]):
            slo = SLO_BROKEN if i == 1 else None
            store.record_run(write_run(tmp_path, f"r{i}", target=target, slo=slo,
                                       started_at=f"2026-11-26T{hour:02d}:00:00Z"))
        since = 1795683600.0 + 1800  # 09:30
        columns, rows = store.trend_table("prod", since)
        assert [r[columns.index("started_ts")] for r in rows] == [1795683600.0 + 3600, 1795683600.0 + 3 * 3600]
        columns, rows = store.trend_table(None, 0)
        assert [r[columns.index("target")] for r in rows] == ["local", "prod", "prod", "prod"]  # by target, in time
        assert rows[1][columns.index("fingerprint_hash")] is not None
        assert [r["run_id"] for r in store.last_runs("prod", 2)] == ["r3", "r1"]
        assert [r["run_id"] for r in store.last_runs(None, 10, since)] == ["r3", "r2", "r1"]
        assert store.latest_slo("prod")[0]["threshold"] == 15  # from the newest run that was judged
        assert store.latest_slo("local") == []


def test_nul_in_a_server_string_is_stored(history_url: str, tmp_path: Path) -> None:
    record = probe_record("r1", "0001", outcome="failed", total=None)
    record["error"] = "BAD\x00CODE " + "x" * 500
    with open_history(history_url) as store:
        store.record_run(write_run(tmp_path, "r1", records=[record]))
        error = store.probes("r1")[0]["error"]
        assert error.startswith("BAD\ufffdCODE") and len(error) == 200


# --- alert state --------------------------------------------------------------------------------------------


def test_alert_state_survives_a_new_process(history_url: str) -> None:
    sequence = [True, True, False, False, False, True, True]
    events = []
    for i, healthy in enumerate(sequence):
        with open_history(history_url) as store:  # an ephemeral runner: nothing but the store carries over
            state, event = store.evaluate_alert("prod", f"run-{i}", healthy, 2, 2)
            events.append(event)
            again = store.evaluate_alert("prod", f"run-{i}", healthy, 2, 2)  # the same run counted once
            assert again == (state, None)
    assert events == [None, None, None, "fired", None, None, "resolved"]
    with open_history(history_url) as store:
        assert [(e["run_id"], e["event"]) for e in store.alert_events("prod")] == [("run-3", "fired"),
                                                                                  ("run-6", "resolved")]
        assert [e["delivery"] for e in store.alert_events("prod")] == ["unsent", "unsent"]  # no webhook given
        assert store.alert_state("prod").passing == 2 and not store.alert_state("prod").firing
        assert store.alert_state("other").failing == 0


def _message(state, event):
    return {"probes": {"event": event, "failing": state.failing}, "text": f"{event} after {state.failing}"}


def test_an_event_and_its_outbox_entry_commit_together(history_url: str) -> None:
    """A webhook that fails, or a process killed before it sends, leaves the event pending, never lost."""
    with open_history(history_url) as store:
        store.evaluate_alert("prod", "run-0", False, 2, 2, _message)
        _, event = store.evaluate_alert("prod", "run-1", False, 2, 2, _message)
    assert event == "fired"
    with open_history(history_url) as store:  # the next process finds it due, with the body to send
        [due] = store.due_alerts("prod", now_ts=1000.0)
        assert (due.run_id, due.event, due.attempts) == ("run-1", "fired", 0)
        assert due.body == {"probes": {"event": "fired", "failing": 2}, "text": "fired after 2"}
        [row] = store.alert_events("prod")
        assert row["delivery"] == "pending" and row["idempotency_key"].startswith("probes-")


def test_delivery_backs_off_over_runs_then_gives_up(history_url: str) -> None:
    from probes.canary.history import DELIVERY_BACKOFF_S, MAX_DELIVERY_ATTEMPTS

    with open_history(history_url) as store:
        store.evaluate_alert("prod", "run-1", False, 1, 1, _message)
        now = 1000.0
        for attempt in range(1, MAX_DELIVERY_ATTEMPTS + 1):
            [due] = store.due_alerts("prod", now)
            assert due.attempts == attempt - 1
            state = store.record_delivery(due, False, "HTTP 500", now)
            if attempt == MAX_DELIVERY_ATTEMPTS:
                assert state == "failed"
                break
            wait = DELIVERY_BACKOFF_S[attempt - 1]
            assert state == "pending" and store.delivery_counts("prod") == {"pending": 1, "failed": 0}
            if wait:
                assert store.due_alerts("prod", now + wait - 1) == []  # a run within the back-off leaves it
            now += wait
        assert store.due_alerts("prod", now + 1e6) == []
        assert store.delivery_counts("prod") == {"pending": 0, "failed": 1}
        [row] = store.alert_events("prod")
        assert (row["delivery"], row["attempts"], row["last_problem"], row["notified"]) == \
            ("failed", MAX_DELIVERY_ATTEMPTS, "HTTP 500", 0)
        assert [(u["run_id"], u["delivery"]) for u in store.undelivered_alerts(None)] == [("run-1", "failed")]
        store.evaluate_alert("prod", "run-2", True, 1, 1, _message)  # resolved: sent at once
        [due] = store.due_alerts("prod", now)
        assert store.record_delivery(due, True, None, now) == "sent"
        assert store.alert_events("prod")[-1]["notified"] == 1 and store.due_alerts("prod", now + 1e6) == []


def test_bulk_record_summaries(history_url: str) -> None:
    from probes.canary.summary import summarise_run

    def summary(i: int):
        meta = {"run_id": f"bulk-{i}", "target": "prod", "started_at": f"2026-11-26T09:{i:02d}:00Z"}
        return summarise_run(meta, [probe_record(f"bulk-{i}", "0001", total=float(i))], exit_code=0)

    with open_history(history_url) as store:
        assert store.record_summaries((summary(i) for i in range(5)), batch=2) == 5
        assert store.count_runs("prod") == 5 and store.run("bulk-4")["total_s_p50"] == 4.0
        assert len(store.probes("bulk-3")) == 1


def test_cli_history_import(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    runs = [write_run(tmp_path / "runs", f"r{i}", started_at=f"2026-11-26T0{i}:00:00Z") for i in range(2)]
    history = tmp_path / "h.sqlite"
    cmd = [sys.executable, "-m", "probes", "history", "import", *map(str, runs), "--history", str(history)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=root)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"imported 2 run(s) into {history}"
    bad = subprocess.run([*cmd, str(tmp_path)], capture_output=True, text=True, timeout=60, cwd=root)
    assert bad.returncode == 2 and "skipped 1" in bad.stdout
    assert f"probes: skipped {tmp_path}: {tmp_path}: not a run directory (no run.json)" in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == "probes: error: 1 of 3 directories were not run directories"
    with open_history(str(history)) as store:
        assert store.count_runs() == 2
