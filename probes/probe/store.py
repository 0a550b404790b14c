"""The run directory: run.json plus probes.jsonl, written so a crash loses nothing finished.

Each probe record is appended and flushed the moment the probe ends; run.json
is rewritten atomically (temp file + rename) at the start and at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import orjson

from probes.errors import NotRecorded, os_reason

SCHEMA = 1


def utc_iso(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def new_run_id(target: str, label: str, moment: datetime | None = None) -> str:
    moment = moment or datetime.now(timezone.utc)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{target}-{label}").strip("-")[:60]
    return f"{moment:%Y%m%dT%H%M%SZ}-{slug}-{secrets.token_hex(2)}"


MAX_DIAGNOSED = 500  # records a diagnosis reads per run: its rules count and compare; a sample this size is plenty
MAX_SIGNATURE = 200  # distinct states kept per run; the real backend shows ~10, a hostile one any number


def signature(records: Iterable[dict[str, Any]]) -> list[list[Any]]:
    """Ordered distinct (band, step_name, message) states over all probes of a run (linear, capped)."""
    seen: dict[tuple[Any, ...], None] = {}
    for record in records:
        states = record.get("states")
        for state in states if isinstance(states, list) else []:
            if len(seen) >= MAX_SIGNATURE:
                return [list(s) for s in seen]
            if isinstance(state, list) and len(state) == 3 and all(x is None or isinstance(x, str) for x in state):
                seen.setdefault(tuple(state), None)
    return [list(s) for s in seen]


def record_line(record: dict[str, Any]) -> bytes:
    """One probes.jsonl line (UTF-8). orjson: probes ending together must not stall the event loop."""
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def write_run_json(run_dir: Path, meta: dict[str, Any]) -> None:
    """run.json, atomically (temp file + rename): a reader never sees half a file."""
    tmp = run_dir / "run.json.tmp"
    tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, run_dir / "run.json")


class RunWriter:
    """Creates reports/runs/<run_id>/ and keeps it consistent while a run goes on.

    A write that fails (ENOSPC, EIO, a directory made read-only) raises NotRecorded (exit 4) and
    leaves the writer broken: nothing more is written, so run.json keeps `ended_at: null` (a run
    that did not finish) and a probes.jsonl line cut short is skipped by every reader.
    """

    def __init__(self, parent: Path, meta: dict[str, Any]) -> None:
        self.meta = {"schema": SCHEMA, **meta, "ended_at": None}
        self.dir = parent / meta["run_id"]
        self.records: list[dict[str, Any]] = []
        self.broken = False
        try:
            self.dir.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            raise NotRecorded(f"could not record {self.dir}: {os_reason(exc)}") from None
        try:
            self._jsonl = open(self.dir / "probes.jsonl", "ab")
        except OSError as exc:
            raise self._failed("probes.jsonl", exc) from None
        self._write_meta()

    def append(self, record: dict[str, Any]) -> None:
        """On disk at once; in memory whole for the first MAX_DIAGNOSED (the diagnosis reads their
        samples), without samples after that: summaries and SLOs need only the derived fields, and a
        100,000-probe run would otherwise hold every poll of every probe until it ends."""
        if self.broken:
            return
        try:
            self._jsonl.write(record_line(record))
            self._jsonl.flush()
        except OSError as exc:
            raise self._failed("probes.jsonl", exc) from None
        if len(self.records) >= MAX_DIAGNOSED:
            record = {k: v for k, v in record.items() if k != "samples"}
        self.records.append(record)

    def finish(self, fingerprint: dict[str, Any]) -> None:
        if self.broken:
            return
        try:
            self._jsonl.close()
        except OSError as exc:
            raise self._failed("probes.jsonl", exc) from None
        self.meta["ended_at"] = utc_iso()
        self.meta["fingerprint"] = {**fingerprint, "signature": signature(self.records)}
        self.meta["outcomes"] = dict(Counter(r["outcome"] for r in self.records))
        self._write_meta()

    def _failed(self, name: str, exc: OSError) -> NotRecorded:
        self.broken = True
        return NotRecorded(f"could not record {self.dir / name}: {os_reason(exc)}")

    def _write_meta(self) -> None:
        try:
            write_run_json(self.dir, self.meta)
        except OSError as exc:
            with contextlib.suppress(OSError):
                (self.dir / "run.json.tmp").unlink(missing_ok=True)
            raise self._failed("run.json", exc) from None


def read_records(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The well-formed records of a probes.jsonl (the first `limit`); a line cut by a kill is skipped."""
    out: list[dict[str, Any]] = []
    with open(path, "rb") as fh:
        for line in fh:
            if limit is not None and len(out) >= limit:
                break
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                out.append(record)
    return out
