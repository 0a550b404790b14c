"""The load run directory (reports/load/<run_id>/): run.json, the probe records, Locust's files.

The records follow docs/run-format.md, so `probes report` and `probes
compare` read a load run like any other. A single-process run appends to
probes.jsonl itself. In a distributed run every worker appends to its own
file, workers/probes-<index>.jsonl (no two processes share a file, and each
is flushed per record, so a killed worker keeps what it finished); when the
run ends they are merged into probes.jsonl, which is what the report reads.

A record that the disk cannot take is cut back off the file (probes.jsonl
holds whole lines only) and raised as OSError; the files rewritten at the
end (probes.jsonl from the workers', phases.csv, run.json) are replaced
whole or not at all.
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
from probes.report.files import atomic_path

RECORDS = "probes.jsonl"
PHASES = "phases.csv"
WORKERS_DIR = "workers"


def records_path(run_dir: Path, worker_index: int | None) -> Path:
    """Where this process appends: probes.jsonl alone, workers/probes-<index>.jsonl as a worker."""
    if worker_index is None:
        return run_dir / RECORDS
    return run_dir / WORKERS_DIR / f"probes-{worker_index}.jsonl"


class RecordFile:
    """Appends one probe record per line, written through at once (a crash loses nothing finished).

    Unbuffered, so a line the disk refused is never flushed later by a close: it is cut back to the
    last whole line and the OSError raised.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.count = 0
        self._file = open(path, "ab", buffering=0)
        self._whole = self._file.seek(0, os.SEEK_END)  # bytes of whole lines so far

    def append(self, record: dict[str, Any]) -> None:
        line = memoryview(record_line(record))
        try:
            written = 0
            while written < len(line):
                written += self._file.write(line[written:]) or 0
        except OSError:
            try:
                os.ftruncate(self._file.fileno(), self._whole)
            except OSError:
                pass
            raise
        self._whole += len(line)
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
    with atomic_path(run_dir / RECORDS) as tmp, open(tmp, "wb") as out:
        for path in files:
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                data = data[: data.rfind(b"\n") + 1]  # drop a line cut by a kill
            out.write(data)
    return len(files)


def write_phases(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(run_dir / PHASES) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
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
