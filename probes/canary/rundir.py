"""Read a run directory (run.json + probes.jsonl) as the history needs it, tolerating a killed run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from probes.errors import UsageError
from probes.probe.store import read_records


def read_run_json(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "run.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{run_dir}: not a run directory (no run.json)") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UsageError(f"{path}: cannot read: {type(exc).__name__}") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{path}: not a JSON object")
    return meta


def read_probes_jsonl(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete record; a torn last line (a killed run) is skipped, as the report does."""
    try:
        return read_records(run_dir / "probes.jsonl")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UsageError(f"{run_dir / 'probes.jsonl'}: cannot read: {exc.strerror or exc}") from None
