"""Parse probes.jsonl bytes into Arrow tables (no pandas, no file system).

Why Arrow and not pandas here: this runs in worker processes that parse byte
ranges of a large file in parallel; importing only orjson, numpy and pyarrow
keeps a worker's start-up short and its results cheap to send back.

Two paths. The fast one takes blocks as this tool writes them (orjson, compact,
`samples` last) and makes no Python object per field or poll: each line is cut
at `,"samples":[`, Arrow's JSON reader reads the probe fields, and the poll rows,
which read as CSV once their brackets go, go to Arrow's CSV reader. Its guards
send a block to the general path whenever CSV could read its polls differently
from JSON (an escape, space beside a string, a bare word, a number JSON
forbids) or a line has another shape. The general path parses every line with orjson and skips and
counts what is malformed. On 150 MB of JSONL: 2.1 s against 4.9 s (BENCHMARKS.md).
"""

from __future__ import annotations

import functools
import gc
import json
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson

from probes.analysis.metrics import RECORD_TIMES

try:
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is in requirements.lock
    _loads = json.loads

SAMPLE_FIELDS = ["t_s", "http_status", "progress", "step", "step_name", "status", "latency_s"]
SAMPLE_TYPES = [pa.float64(), pa.int16(), pa.int16(), pa.int16(), pa.string(), pa.string(), pa.float64()]
TEXT_FIELDS = ("run_id", "probe_id", "target", "label", "outcome", "error")
NUMBER_FIELDS = ("upload_s", "total_s", "end_s", "poll_count", "poll_errors", "regressions", "transcription_s",
                 *RECORD_TIMES[1:])  # the presigned flow's phases and the bar the user sees (analysis.metrics)


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
    enabled = gc.isenabled()
    gc.disable()  # millions of small containers: the cyclic GC would triple the parse time
    try:
        fast = _parse_fast(data, milestones) if milestones else None
        return fast or parse_general(data, is_last=is_last, milestones=milestones)
    finally:
        if enabled:
            gc.enable()


def parse_general(data: bytes, *, is_last: bool, milestones: list[str] | None) -> Parsed:
    """The path for any block: orjson per line, malformed lines and poll rows skipped and counted."""
    lines = data.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    records, bad, truncated = _parse_lines(lines, is_last and not data.endswith(b"\n"))
    probes = probe_table(records, milestones or _milestone_keys(records))
    samples, bad_samples = sample_table(records)
    return Parsed(probes, samples, bad, truncated, bad_samples)


def _milestone_keys(records: list[dict]) -> list[str]:
    keys = {k for r in records if isinstance(r.get("milestones"), dict) for k in r["milestones"]}
    keys |= {k for r in records if isinstance(r.get("dwell"), dict) for k in r["dwell"]}
    return sorted(keys, key=_num)


SAMPLES_KEY = b',"samples":['
_ONE_BLOCK = 1 << 30  # the readers get a whole block at once: one chunk per column, no threads in a worker
_CSV_READ = pcsv.ReadOptions(column_names=SAMPLE_FIELDS, use_threads=False, block_size=_ONE_BLOCK)
_CSV_PARSE = pcsv.ParseOptions(newlines_in_values=False)
_CSV_CONVERT = pcsv.ConvertOptions(column_types=dict(zip(SAMPLE_FIELDS, SAMPLE_TYPES)), null_values=["null"],
                                   strings_can_be_null=True, quoted_strings_can_be_null=False)
_JSON_READ = pjson.ReadOptions(use_threads=False, block_size=_ONE_BLOCK)


def _parse_fast(data: bytes, milestones: list[str]) -> Parsed | None:
    """The block parsed without a Python object per field or poll, or None when it is not in the writer's form."""
    n_lines = data.count(b"\n")
    if not data.endswith(b"\n") or data.count(SAMPLES_KEY) != n_lines:  # the key cannot sit inside a string
        return None
    parts = data.replace(SAMPLES_KEY, b"}\n").split(b"\n")  # a line is head + SAMPLES_KEY + body
    heads, bodies = parts[0:-1:2], parts[1::2]
    # a body is `]}` (no polls) or `[row],...,[row]]}`; a row is 7 comma-separated JSON scalars
    polled_at = [i for i, b in enumerate(bodies) if b != b"]}"]
    if not all(bodies[i][:1] == b"[" and bodies[i][-3:] == b"]]}" for i in polled_at):
        return None
    polled = [bodies[i][1:-3] for i in polled_at]
    # polls of one probe end in \n, the last poll of a probe in \r\n: CSV reads both as a row's end
    text = b"\r\n".join(polled).replace(b"],[", b"\n")
    if b"\\" in text:  # an escape in a poll's text: JSON and CSV escape differently
        return None
    try:
        heads_tbl = pjson.read_json(pa.py_buffer(b"\n".join(heads)), read_options=_JSON_READ,
                                    parse_options=_head_options(tuple(milestones)))
        rows = pcsv.read_csv(pa.py_buffer(text), read_options=_CSV_READ, parse_options=_CSV_PARSE,
                             convert_options=_CSV_CONVERT) if polled else None
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if heads_tbl.num_rows != n_lines or heads_tbl.column("probe_id").null_count:
        return None
    counts = np.zeros(n_lines, dtype=np.int64)
    if rows is None:
        rows = pa.table([pa.array([], type=t) for t in SAMPLE_TYPES], names=SAMPLE_FIELDS)
    else:
        chars = np.frombuffer(text, dtype=np.uint8)
        ends = np.flatnonzero(chars == ord("\n"))  # where each row but the last ends
        last = np.append(np.searchsorted(ends, np.flatnonzero(chars == ord("\r"))), len(ends))  # each probe's
        if len(last) != len(polled) or rows.num_rows != len(ends) + 1:
            return None
        counts[polled_at] = np.diff(last, prepend=-1)
        if not _csv_read_as_json(text, rows):
            return None
    cols = {name: heads_tbl.column(name).combine_chunks() for name in (*TEXT_FIELDS, *NUMBER_FIELDS)}
    stall = heads_tbl.column("longest_stall").combine_chunks()
    cols["stall_progress"] = pc.struct_field(stall, "progress")
    cols["stall_s"] = pc.struct_field(stall, "s")
    ms, dw = heads_tbl.column("milestones").combine_chunks(), heads_tbl.column("dwell").combine_chunks()
    for m in milestones:
        cols[f"t_{m}"] = pc.struct_field(ms, [m, "t_s"])
    for m in milestones:
        cols[f"dwell_{m}"] = pc.struct_field(dw, m)
    samples = _poll_table(cols["run_id"], cols["probe_id"], counts,
                          [rows.column(i).combine_chunks() for i in range(7)])
    return Parsed(pa.table(cols), samples)


@functools.lru_cache(maxsize=8)
def _head_options(milestones: tuple[str, ...]) -> pjson.ParseOptions:
    """The probe fields the report reads, typed as probe_table types them; other keys are skipped."""
    f64 = pa.float64()
    schema = pa.schema([
        *(pa.field(n, pa.string()) for n in TEXT_FIELDS), *(pa.field(n, f64) for n in NUMBER_FIELDS),
        pa.field("longest_stall", pa.struct([("progress", f64), ("s", f64)])),
        pa.field("milestones", pa.struct([(m, pa.struct([("t_s", f64)])) for m in milestones])),
        pa.field("dwell", pa.struct([(m, f64) for m in milestones])),
    ])
    return pjson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")


# a number JSON forbids but CSV reads, at the start of a field: a leading + . or 0 ("+1", ".5", "05"), a dot
# with no digit after it ("1.", "1.e5"), or an exponent with no digits ("1e", "2E+")
_NOT_JSON_NUMBER = r"(?:^|[,\n])-?(?:[+.]|0[0-9]|[0-9]+\.(?:[eE,\r\n]|$)|[0-9.]+[eE][+-]?(?:[,\r\n]|$))"


def _csv_read_as_json(text: bytes, rows: pa.Table) -> bool:
    """Whether CSV read the rows as JSON would (a text that merely looks odd also says no).

    Without backslashes a JSON string holds no quote, so the text has two quotes
    per string. CSV reads a bare word as text, keeps a quote that follows a space,
    and keeps a space that follows a closing quote; each shows as a quote count
    that is not twice the texts read, or as a text with a quote or outer space.
    CSV also reads numbers JSON forbids: NaN and inf, and the forms above.
    """
    texts = 0
    for name in ("step_name", "status"):
        col = rows.column(name)
        texts += len(col) - col.null_count
        values = pc.unique(col)
        if len(values) and (pc.any(pc.match_substring(values, '"')).as_py()
                            or pc.any(pc.not_equal(values, pc.utf8_trim_whitespace(values))).as_py()):
            return False
    if text.count(b'"') != 2 * texts:
        return False
    if not all(pc.all(pc.is_finite(rows.column(name))).as_py() is not False for name in ("t_s", "latency_s")):
        return False
    whole = pa.Array.from_buffers(pa.binary(), 1, [None, pa.py_buffer(np.array([0, len(text)], np.int32)),
                                                   pa.py_buffer(text)])
    return not pc.match_substring_regex(whole, _NOT_JSON_NUMBER)[0].as_py()


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
    return _poll_table(_texts(_field(records, "run_id")), _texts(_field(records, "probe_id")), counts,
                       [_typed(col, typ) for col, typ in zip(columns, SAMPLE_TYPES)]), n_bad


def _poll_table(run_ids: pa.Array, probe_ids: pa.Array, counts: np.ndarray, columns: list[pa.Array]) -> pa.Table:
    """The samples table: each probe's run_id and probe_id repeated over its `counts` polls, then the columns."""
    owner_idx = pa.array(np.repeat(np.arange(len(probe_ids), dtype=np.int32), counts))
    # ids as dictionary arrays: one string per probe, an index per poll (free, and categorical in pandas)
    arrays = [_repeat(run_ids, owner_idx), _repeat(probe_ids, owner_idx), *columns]
    arrays[6] = arrays[6].dictionary_encode()  # step_name
    arrays[7] = arrays[7].dictionary_encode()  # status
    return pa.table(arrays, names=["run_id", "probe_id", *SAMPLE_FIELDS])


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
