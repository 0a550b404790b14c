"""The load run directory (reports/load/<run_id>/): run.json, the probe records, Locust's files.

The records follow docs/run-format.md, so `probes report` and `probes
compare` read a load run like any other. A single-process run appends to
probes.jsonl itself. In a distributed run every worker appends to its own
file, workers/probes-<index>.jsonl (no two processes share a file, and each
is flushed per record, so a killed worker keeps what it finished); when the
run ends they are merged into probes.jsonl, which is what the report reads.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from probes.load.phases import SUMMARY_COLUMNS, phase_summary
from probes.probe.store import SCHEMA, read_records, record_line, signature, utc_iso, write_run_json

RECORDS = "probes.jsonl"
PHASES = "phases.csv"
WORKERS_DIR = "workers"


def records_path(run_dir: Path, worker_index: int | None) -> Path:
    """Where this process appends: probes.jsonl alone, workers/probes-<index>.jsonl as a worker."""
    if worker_index is None:
        return run_dir / RECORDS
    return run_dir / WORKERS_DIR / f"probes-{worker_index}.jsonl"


class RecordFile:
    """Appends one probe record per line and flushes it at once (a crash loses nothing finished)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.count = 0
        self._file = open(path, "ab")

    def append(self, record: dict[str, Any]) -> None:
        self._file.write(record_line(record))
        self._file.flush()
        self.count += 1

    def close(self) -> None:
        self._file.close()


def write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_json(run_dir, {"schema": SCHEMA, **meta})


def read_meta(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"run_id": run_dir.name}


def worker_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / WORKERS_DIR).glob("probes-*.jsonl"))


def merge_workers(run_dir: Path) -> int:
    """Rewrite probes.jsonl as the concatenation of the workers' files; returns how many files."""
    files = worker_files(run_dir)
    if not files:
        return 0
    tmp = run_dir / (RECORDS + ".tmp")
    with open(tmp, "wb") as out:
        for path in files:
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                data = data[: data.rfind(b"\n") + 1]  # drop a line cut by a kill
            out.write(data)
    os.replace(tmp, run_dir / RECORDS)
    return len(files)


def write_phases(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    with open(run_dir / PHASES, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def finish_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Merge worker files, then phases.csv and run.json (ended_at, n, outcomes, signature). Idempotent.

    Called when Locust quits and again by `probes load` once every worker has exited: a worker's
    last flows may end after the master quit, and only the second call sees them.
    """
    merge_workers(run_dir)
    records = read_records(run_dir / RECORDS) if (run_dir / RECORDS).is_file() else []
    phases = phase_summary(records)
    write_phases(run_dir, phases)
    meta = read_meta(run_dir)
    meta.pop("schema", None)
    meta["ended_at"] = utc_iso()
    meta["n"] = len(records)
    meta["outcomes"] = dict(Counter(r.get("outcome") for r in records))
    meta["fingerprint"] = {**(meta.get("fingerprint") or {}), "signature": signature(records)}
    write_meta(run_dir, meta)
    return meta, phases
