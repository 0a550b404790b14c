"""Fixtures for the canary tests: a history on SQLite and on a real PostgreSQL, a Pushgateway, a webhook.

    def test_x(history_url):        # runs twice: "sqlite" and "postgresql", a fresh store each time
        store = open_history(history_url)

`write_run(parent, run_id, ...)` writes a run directory in the docs/run-format.md
format with chosen numbers, so a test knows exactly what the history must hold.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.canary.services import (
    LOUD_SKIPS, Postgres, Webhook, create_database, drop_database, postgres_server, pushgateway_server,
    webhook_receiver,
)

SIGNATURE = [["20-29", "处理中", "准备正式开始处理..."], ["30-39", "转录中", "正在努力识别你的声音..."]]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """A skipped service test is said at the very end, in red, where nobody misses it."""
    for reason in LOUD_SKIPS:
        terminalreporter.write_line(f"SKIPPED canary service tests: {reason}", red=True, bold=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database on the session's server."""
    server: Postgres = request.getfixturevalue("postgres")
    name = f"probes_t_{secrets.token_hex(4)}"
    yield create_database(server, name)
    drop_database(server, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty history: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def pushgateway() -> Iterator[str]:
    with pushgateway_server() as url:
        yield url


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with webhook_receiver() as hook:
        yield hook


def probe_record(run_id: str, probe_id: str, *, target: str = "prod", label: str = "canary",
                 outcome: str = "completed", total: float | None = 10.0, dwell_32: float = 0.5, t_32: float = 3.0,
                 transcription: float | None = 4.0, stall: float = 1.0, upload: float = 0.02) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema": 1, "run_id": run_id, "probe_id": probe_id, "target": target, "label": label,
        "started_at": "2026-11-26T09:00:00.100000Z", "outcome": outcome, "error": None, "task_id": "t-" + probe_id,
        "upload_status": 200, "upload_s": upload, "total_s": total if outcome == "completed" else None,
        "end_s": total, "poll_count": 20, "poll_errors": 0, "regressions": 0,
        "milestones": {"32": {"t_s": t_32, "lo_s": t_32 - 0.1, "hi_s": t_32 + 0.1}},
        "dwell": {"32": dwell_32}, "longest_stall": {"progress": 32, "s": stall, "start_s": t_32},
        "instances": {}, "states": SIGNATURE, "samples": [[0.01, 200, 22, 1, "处理中", "processing", 0.002]],
    }
    if transcription is not None:
        record["transcription_s"] = transcription
    return record


def write_run(parent: Path, run_id: str, *, target: str = "prod", label: str = "canary",
              started_at: str = "2026-11-26T09:00:00.000000Z", ended_at: str | None = "2026-11-26T09:00:30.000000Z",
              time_scale: float | None = None, records: list[dict[str, Any]] | None = None,
              slo: dict[str, Any] | None = None, health: Any = None, signature: list | None = None,
              torn_tail: bool = False) -> Path:
    """A run directory with run.json and probes.jsonl (three completed probes unless records are given)."""
    run_dir = parent / run_id
    run_dir.mkdir(parents=True)
    if records is None:
        records = [probe_record(run_id, f"{i:04d}", target=target, label=label, total=t)
                   for i, t in enumerate((9.0, 10.0, 62.0), 1)]
    meta: dict[str, Any] = {
        "schema": 1, "run_id": run_id, "target": target, "base_url": "https://api.example.test", "label": label,
        "scenario": None, "time_scale": time_scale, "harness_version": "0.1.0", "started_at": started_at,
        "ended_at": ended_at, "fixture": {"name": "speech-en-5s.m4a"}, "cadence": {"name": "app"},
        "milestones": [20, 32, 42, 55, 58, 60, 88, 100], "n": len(records), "concurrency": 1, "timeout_s": 300.0,
        "fingerprint": {"health_status": 200, "health": health if health is not None else {"status": "healthy"},
                        "headers": {"server": "uvicorn"}, "signature": signature if signature is not None else SIGNATURE},
        "outcomes": {},
    }
    if slo is not None:
        meta["slo"] = slo
    (run_dir / "run.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if torn_tail:
        lines += '{"schema": 1, "run_id": "' + run_id + '", "probe_id": "99'  # a run killed mid-write
    (run_dir / "probes.jsonl").write_text(lines)
    return run_dir
