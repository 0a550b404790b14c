"""Parse probes.jsonl bytes into Arrow tables (no pandas, no file system).

Why Arrow and not pandas here: this runs in worker processes that parse byte
ranges of a large file in parallel; importing only orjson, numpy and pyarrow
keeps a worker's start-up short and its results cheap to send back.

The per-probe fields are read once per field over a chunk's records; the polls
of a chunk are transposed in one `zip(*rows)` and converted by Arrow, so there
is no Python loop per poll beyond what the JSON parser itself does.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa

try:
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is in requirements.lock
    _loads = json.loads

SAMPLE_FIELDS = ["t_s", "http_status", "progress", "step", "step_name", "status", "latency_s"]
SAMPLE_TYPES = [pa.float64(), pa.int16(), pa.int16(), pa.int16(), pa.string(), pa.string(), pa.float64()]
TEXT_FIELDS = ("run_id", "probe_id", "target", "label", "outcome", "error")
NUMBER_FIELDS = ("upload_s", "total_s", "end_s", "poll_count", "poll_errors", "regressions")


@dataclass
class Parsed:
    """One parsed block: probes and samples as Arrow tables, plus what was skipped."""

    probes: pa.Table
    samples: pa.Table
    bad_lines: int = 0
    truncated_last: bool = False
    bad_samples: int = 0


def parse_block(data: bytes, *, is_last: bool, milestones: list[str] | None) -> Parsed:
    """Parse whole JSONL lines; a bad final line of the file's last block counts as truncated.

    milestones: keys to make t_<m>/dwell_<m> columns for; None = every key seen.
    """
    lines = data.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    enabled = gc.isenabled()
    gc.disable()  # millions of small containers: the cyclic GC would triple the parse time
    try:
        records, bad, truncated = _parse_lines(lines, is_last and not data.endswith(b"\n"))
        if milestones is None:
            keys = {k for r in records if isinstance(r.get("milestones"), dict) for k in r["milestones"]}
            keys |= {k for r in records if isinstance(r.get("dwell"), dict) for k in r["dwell"]}
            milestones = sorted(keys, key=_num)
        probes = probe_table(records, milestones)
        samples, bad_samples = sample_table(records)
        del records
    finally:
        if enabled:
            gc.enable()
    return Parsed(probes, samples, bad, truncated, bad_samples)


def _parse_lines(lines: list[bytes], last_may_be_cut: bool) -> tuple[list[dict], int, bool]:
    """Records, count of bad lines, whether the last line was cut off.

    The fast path maps the parser over all lines at C speed; any bad line sends
    the block through the careful per-line loop instead.
    """
    try:
        records = list(map(_loads, lines))
        if all(type(r) is dict and r.get("probe_id") is not None for r in records):
            return records, 0, False
    except ValueError:
        pass
    records, bad, truncated = [], 0, False
    last = len(lines) - 1
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = _loads(line)
        except ValueError:
            rec = None
        if not isinstance(rec, dict) or rec.get("probe_id") is None:
            if last_may_be_cut and i == last:
                truncated = True
            else:
                bad += 1
            continue
        records.append(rec)
    return records, bad, truncated


def _num(key: str) -> float:
    try:
        return float(key)
    except ValueError:
        return float("inf")


def _floats(values: list[Any]) -> pa.Array:
    """Numbers to float64; None, text and other junk to null."""
    try:
        return pa.array(values, type=pa.float64(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
                         for v in values], type=pa.float64())


def _texts(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _field(dicts: list[Any], key: str) -> list[Any]:
    """d[key] for each item that is a dict, else None (a comprehension: no call per item)."""
    return [d.get(key) if type(d) is dict else None for d in dicts]


def probe_table(records: list[dict], milestones: list[str]) -> pa.Table:
    """One row per record: scalar fields, t_<m> and dwell_<m> per milestone, the longest stall."""
    cols: dict[str, pa.Array] = {}
    for name in TEXT_FIELDS:
        cols[name] = _texts(_field(records, name))
    for name in NUMBER_FIELDS:
        cols[name] = _floats(_field(records, name))
    stall = _field(records, "longest_stall")
    cols["stall_progress"] = _floats(_field(stall, "progress"))
    cols["stall_s"] = _floats(_field(stall, "s"))
    ms = _field(records, "milestones")
    dw = _field(records, "dwell")
    for m in milestones:
        cols[f"t_{m}"] = _floats(_field(_field(ms, m), "t_s"))
    for m in milestones:
        cols[f"dwell_{m}"] = _floats(_field(dw, m))
    return pa.table(cols)


def sample_table(records: list[dict]) -> tuple[pa.Table, int]:
    """Every poll of the records as columns; malformed poll rows are dropped and counted."""
    per = [s if isinstance(s := r.get("samples"), list) else [] for r in records]
    counts = np.fromiter(map(len, per), dtype=np.int64, count=len(per))
    rows = list(chain.from_iterable(per))
    n_bad = 0
    try:
        regular = set(map(len, rows)) <= {7}  # cheap; odd rows of length 7 are caught by _typed
    except TypeError:  # a number or null where a poll row should be
        regular = False
    if not regular:
        keep = np.fromiter((type(row) is list and len(row) == 7 for row in rows), dtype=bool, count=len(rows))
        owner = np.repeat(np.arange(len(per)), counts)[keep]
        rows = [row for row, k in zip(rows, keep) if k]
        n_bad = int((~keep).sum())
        counts = np.bincount(owner, minlength=len(per))
    columns = list(zip(*rows)) if rows else [()] * 7
    owner_idx = pa.array(np.repeat(np.arange(len(per), dtype=np.int32), counts))
    # ids as dictionary arrays: one string per probe, an index per poll (free, and categorical in pandas)
    arrays = [_repeat(_texts(_field(records, "run_id")), owner_idx),
              _repeat(_texts(_field(records, "probe_id")), owner_idx)]
    arrays += [_typed(col, typ) for col, typ in zip(columns, SAMPLE_TYPES)]
    arrays[6] = arrays[6].dictionary_encode()  # step_name
    arrays[7] = arrays[7].dictionary_encode()  # status
    return pa.table(arrays, names=["run_id", "probe_id", *SAMPLE_FIELDS]), n_bad


def _repeat(per_probe: pa.Array, owner_idx: pa.Array) -> pa.DictionaryArray:
    """One value per poll from one per probe, dictionary-encoded (unique dictionary, as pandas needs)."""
    enc = per_probe.dictionary_encode()
    return pa.DictionaryArray.from_arrays(enc.indices.take(owner_idx), enc.dictionary)


def _typed(col: tuple, typ: pa.DataType) -> pa.Array:
    try:
        return pa.array(col, type=typ, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        if pa.types.is_string(typ):
            return pa.array([None if v is None else str(v) for v in col], type=typ)
        vals = [v if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in col]
        arr = pa.array(vals, type=pa.float64())
        if pa.types.is_integer(typ):  # out-of-range or fractional junk becomes null rather than wrapping
            np_vals = arr.to_numpy(zero_copy_only=False)
            ok = np.isfinite(np_vals) & (np.abs(np_vals) < 2 ** 15) & (np.floor(np_vals) == np_vals)
            return pa.array(np.where(ok, np_vals, 0).astype(np.int16), mask=~ok, type=typ)
        return arr


def parse_file_range(path: str, start: int, end: int, is_last: bool, milestones: list[str] | None) -> Parsed:
    """Parse bytes [start, end) of a JSONL file (whole lines); the worker entry point."""
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    return parse_block(data, is_last=is_last, milestones=milestones)
