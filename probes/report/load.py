"""Load run directories into two tables, with a Parquet cache beside each run.

Why a cache: parsing probes.jsonl dominates a report's cost (a 100,000-probe run
is ~150 MB of JSON); the columnar copy loads in a fraction of a second. The cache
is keyed by the jsonl's size and mtime (and this module's CACHE_VERSION) stored in
the Parquet metadata, so a run still being written, or rewritten, is re-parsed.

Tables (times in real seconds as measured; `scale_times` converts them):

    probes   one row per probe: run_id, probe_id, target, label, group, outcome,
             error, upload_s, total_s, end_s, poll_count, poll_errors, regressions,
             t_<m> (first poll at >= m %), dwell_<m>, stall_progress, stall_s,
             time_scale
    samples  one row per poll: run_id, probe_id, t_s, http_status, progress, step,
             step_name, status, latency_s

Malformed lines are skipped and counted in `Run.notes`; a truncated last line
(the run was killed mid-write) is skipped and named as such.
"""

from __future__ import annotations

import functools
import json
import multiprocessing as mp
import os
import signal
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from probes.analysis.metrics import RECORD_TIMES
from probes.errors import UsageError
from probes.probe.fingerprint import TIME_SCALE_RANGE
from probes.probe.store import MAX_SIGNATURE
from probes.redact import redact_json
from probes.report.files import atomic_path
from probes.textsafe import MAX_LABEL, clip
from probes.report.jsonl import parse_file_range

CACHE_VERSION = "3"  # 2: transcription_s, dwell only where reached; 3: presign/put/create_s, shown_*
CACHE_KEY = b"probes.cache_key"
CHUNK_BYTES = 8 << 20  # parse this much JSONL per task: bounds the Python objects alive at once
PARALLEL_MIN_BYTES = 64 << 20  # below this, worker start-up costs more than it saves
MAX_WORKERS = 8
TIME_COLUMNS = ("upload_s", "total_s", "end_s", "stall_s", "transcription_s", *RECORD_TIMES)


@dataclass
class Run:
    """One run directory: its run.json, probes and samples tables (Arrow; pandas on demand), load notes."""

    path: Path
    meta: dict[str, Any]
    probes_table: pa.Table = field(repr=False)
    samples_table: pa.Table = field(repr=False)
    notes: list[str] = field(default_factory=list)
    from_cache: bool = False
    cache_write: Future | None = field(default=None, repr=False)  # a background cache write, if any
    parse_notes: list[str] = field(default_factory=list, repr=False)  # kept in the cache with the tables

    @property
    def time_scale(self) -> float:
        """The simulator's time scale, believed only within fingerprint.TIME_SCALE_RANGE."""
        ts = self.meta.get("time_scale")
        low, high = TIME_SCALE_RANGE
        return float(ts) if isinstance(ts, (int, float)) and low <= ts <= high else 1.0

    @functools.cached_property
    def probes(self) -> pd.DataFrame:
        return probes_frame(self.probes_table)

    @functools.cached_property
    def samples(self) -> pd.DataFrame:
        return samples_frame(self.samples_table)


def load_run(run_dir: Path, *, cache: bool = True, pool: Executor | None = None,
             writer: Executor | None = None) -> Run:
    """Read one run directory (Parquet cache when fresh, else JSONL and refresh the cache).

    pool: worker processes for parsing a big probes.jsonl; writer: a thread that
    writes the cache while the caller goes on (`Run.cache_write` is its future).
    """
    run = read_run(Path(run_dir), cache=cache, pool=pool)
    if cache and not run.from_cache:
        refresh_cache(run, writer)
    return run


def read_run(run_dir: Path, *, cache: bool = True, pool: Executor | None = None) -> Run:
    """A run from its fresh Parquet cache, else parsed from probes.jsonl (the cache is not written)."""
    jsonl = check_run_dir(run_dir)
    meta, notes = read_meta(run_dir)
    if cache:
        cached = read_cache(run_dir, cache_key(jsonl))
        if cached is not None:
            probes, samples, cached_notes = cached
            return Run(run_dir, meta, probes, samples, notes + cached_notes, from_cache=True)
    probes, samples, parse_notes = parse_jsonl_arrow(jsonl, milestones_hint=meta.get("milestones"), pool=pool)
    if probes.num_rows == 0:
        raise UsageError(f"no readable probes in {jsonl}" + (f" ({'; '.join(parse_notes)})" if parse_notes else ""))
    return Run(run_dir, meta, probes, samples, notes + parse_notes, parse_notes=parse_notes)


def refresh_cache(run: Run, writer: Executor | None) -> None:
    """Write the run's Parquet cache: on `writer` (see `collect_cache_notes`), or here and now."""
    key = cache_key(run.path / "probes.jsonl")
    args = (run.path, key, run.probes_table, run.samples_table, run.parse_notes)
    if writer is not None:
        run.cache_write = writer.submit(write_cache, *args)
    else:
        run.notes += write_cache(*args)


def check_run_dir(run_dir: Path) -> Path:
    """The run's probes.jsonl, or a usage error saying what is missing."""
    if not run_dir.is_dir():
        raise UsageError(f"run directory not found: {run_dir}")
    jsonl = run_dir / "probes.jsonl"
    if not jsonl.is_file():
        raise UsageError(f"no probes.jsonl in {run_dir} (is it a run directory?)")
    return jsonl


def read_meta(run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """run.json as a dict; a missing file is tolerated (noted), a malformed one is a usage error."""
    path = run_dir / "run.json"
    if not path.is_file():
        return {"run_id": run_dir.name}, [f"{run_dir.name}: no run.json; metadata taken from probes.jsonl"]
    try:
        meta = orjson.loads(path.read_bytes())  # its own depth limit: a nested bomb is an error, not a crash
    except (OSError, ValueError, RecursionError) as exc:
        raise UsageError(f"{path} is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{path} is not a JSON object")
    return sanitize_meta(meta, run_dir.name)


# run.json keys the reports read, and the types they must have; anything else is left as it is.
META_TYPES: dict[str, tuple[type, ...]] = {
    "run_id": (str,), "target": (str,), "label": (str,), "base_url": (str,), "scenario": (str, type(None)),
    "time_scale": (int, float, type(None)), "started_at": (str,), "ended_at": (str, type(None)),
    "fixture": (dict,), "cadence": (dict,), "milestones": (list,), "n": (int, type(None)),
    "concurrency": (int, type(None)), "timeout_s": (int, float), "fingerprint": (dict,), "outcomes": (dict,),
    "slo": (dict,), "load": (dict,), "diagnosis": (list,),
}


def sanitize_meta(meta: dict[str, Any], name: str) -> tuple[dict[str, Any], list[str]]:
    """run.json with every field of the wrong type dropped (and noted) and the fingerprint bounded.

    A report reads run directories it did not write: a field of the wrong type must cost a
    note, not a traceback.
    """
    notes = []
    for key, types in META_TYPES.items():
        if key in meta and (not isinstance(meta[key], types) or isinstance(meta[key], bool)):
            notes.append(f"{name}: run.json field {key!r} has the wrong type ({type(meta[key]).__name__}); ignored")
            del meta[key]
    for key in ("run_id", "target", "label", "scenario"):
        if isinstance(meta.get(key), str):
            meta[key] = clip(meta[key], MAX_LABEL)
    if isinstance(meta.get("milestones"), list):
        meta["milestones"] = [m for m in meta["milestones"] if isinstance(m, int) and not isinstance(m, bool)]
    fp = meta.get("fingerprint")
    if isinstance(fp, dict):  # what the backend said about itself: bounded depth and size, credentials out
        for key in ("health", "headers", "upload_headers"):
            if key in fp:
                fp[key] = redact_json(fp[key])
        signature = fp.get("signature")
        fp["signature"] = [s for s in signature if isinstance(s, list) and len(s) == 3 and all(
            x is None or isinstance(x, str) for x in s)][:MAX_SIGNATURE] if isinstance(signature, list) else []
    return meta, notes


def cache_key(jsonl: Path) -> bytes:
    st = jsonl.stat()
    return f"v{CACHE_VERSION}:{st.st_size}:{st.st_mtime_ns}".encode()


def read_cache(run_dir: Path, key: bytes) -> tuple[pa.Table, pa.Table, list[str]] | None:
    """Both cached tables when their key matches the jsonl, else None."""
    paths = [run_dir / "probes.parquet", run_dir / "samples.parquet"]
    try:
        metas = [pq.read_schema(p).metadata or {} for p in paths]
    except (OSError, pa.ArrowInvalid):
        return None
    if any(m.get(CACHE_KEY) != key for m in metas):
        return None
    try:
        probes, samples = (pq.read_table(p) for p in paths)
    except (OSError, pa.ArrowInvalid):
        return None
    notes = json.loads(metas[0].get(b"probes.notes", b"[]"))
    return probes, samples, notes


def write_cache(run_dir: Path, key: bytes, probes: pa.Table | pd.DataFrame, samples: pa.Table | pd.DataFrame,
                notes: list[str]) -> list[str]:
    """Write both tables atomically; an unwritable run directory only costs speed."""
    extra = {CACHE_KEY: key, b"probes.notes": json.dumps(notes).encode()}
    try:
        for name, df in (("probes", probes), ("samples", samples)):
            write_parquet(df, run_dir / f"{name}.parquet", extra)
    except OSError as exc:
        return [f"{run_dir.name}: could not write the Parquet cache ({exc.strerror or exc})"]
    return []


def write_parquet(df: pd.DataFrame | pa.Table, path: Path, metadata: dict[bytes, bytes] | None = None) -> None:
    """Write a table to path via a temporary file so a reader never sees half a file."""
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    # dictionary-encode text only: trying it on 4 M distinct floats costs a second and saves nothing
    text = [f.name for f in table.schema if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type)]
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", use_dictionary=text)


def line_ranges(path: Path, block: int) -> list[tuple[int, int]]:
    """Split a file into byte ranges of about `block` bytes that end just after a newline."""
    size = path.stat().st_size
    bounds = [0]
    with open(path, "rb") as fh:
        while bounds[-1] + block < size:
            fh.seek(bounds[-1] + block)
            tail = fh.read(1 << 20)
            while tail and b"\n" not in tail:
                more = fh.read(1 << 20)
                if not more:
                    break
                tail += more
            cut = tail.find(b"\n")
            if cut < 0:
                break
            bounds.append(bounds[-1] + block + cut + 1)
    bounds.append(size)
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def _cpus() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def parse_jsonl(path: Path, milestones_hint: list[Any] | None = None, pool: Executor | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """probes.jsonl to (probes, samples) DataFrames; byte ranges go to `pool` when one is given."""
    probes, samples, notes = parse_jsonl_arrow(path, milestones_hint, pool)
    if probes.num_rows == 0:
        return pd.DataFrame(), pd.DataFrame(), notes
    return probes_frame(probes), samples_frame(samples), notes


def parse_jsonl_arrow(path: Path, milestones_hint: list[Any] | None = None, pool: Executor | None = None
                      ) -> tuple[pa.Table, pa.Table, list[str]]:
    """probes.jsonl to (probes, samples) Arrow tables, the form the cache is written from."""
    milestones = [str(m) for m in milestones_hint] if milestones_hint else None
    ranges = line_ranges(path, CHUNK_BYTES)
    jobs = [(str(path), a, b, i == len(ranges) - 1, milestones) for i, (a, b) in enumerate(ranges)]
    parts = None
    if pool is not None and len(jobs) > 1:
        try:
            parts = list(pool.map(parse_file_range, *zip(*jobs)))
        except (BrokenProcessPool, OSError):
            parts = None  # a worker died (e.g. out of memory): parse in-process instead
    if parts is None:
        parts = [parse_file_range(*job) for job in jobs]
    if not parts:
        return pa.table({}), pa.table({}), ["probes.jsonl is empty"]
    name = path.parent.name
    notes = []
    if bad := sum(p.bad_lines for p in parts):
        notes.append(f"{name}: skipped {bad} malformed line(s) in probes.jsonl")
    if any(p.truncated_last for p in parts):
        notes.append(f"{name}: skipped a truncated last line in probes.jsonl (run killed mid-write?)")
    if bad_samples := sum(p.bad_samples for p in parts):
        notes.append(f"{name}: skipped {bad_samples} malformed poll row(s)")
    ids = pa.chunked_array([p.probes.column("probe_id").cast(pa.string()) for p in parts], type=pa.string())
    if len(ids) and (dupes := len(ids) - pc.count_distinct(ids, mode="all").as_py()) > 0:
        notes.append(f"{name}: {dupes} repeated probe_id(s) in probes.jsonl; their polls are drawn together")
    probes = pa.concat_tables([p.probes for p in parts], promote_options="default")
    samples = pa.concat_tables([p.samples for p in parts])
    return probes, samples, notes


def parse_pool(paths: list[Path]) -> ProcessPoolExecutor | None:
    """Worker processes for parsing, when some file is big enough to pay for them.

    fork, not spawn/forkserver: those re-import the __main__ module (which for
    `python -m probes` would start the CLI again) and pay the imports per worker.
    The workers are started at once, while this process is still small, so they
    do not inherit (and count in their RSS) tables loaded later.
    """
    big = any(p.is_file() and p.stat().st_size >= PARALLEL_MIN_BYTES for p in paths)
    if not big or _cpus() < 2 or "fork" not in mp.get_all_start_methods():
        return None
    pool = ProcessPoolExecutor(max_workers=_cpus(), mp_context=mp.get_context("fork"), initializer=_worker_signals)
    for f in [pool.submit(int, 0) for _ in range(_cpus())]:
        f.result()
    return pool


def _worker_signals() -> None:
    """A parse worker leaves stopping to its parent: Ctrl-C reaches the whole process group, and a worker
    would print its own KeyboardInterrupt traceback; the parent's SIGTERM handler is not for it either."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def probes_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow probes to pandas with milestone columns in numeric order (t_20 before t_100)."""
    df = table.to_pandas()
    fixed = [c for c in df.columns if not c.startswith(("t_", "dwell_"))]
    t_cols = sorted((c for c in df.columns if c.startswith("t_")), key=lambda c: _num(c[2:]))
    d_cols = sorted((c for c in df.columns if c.startswith("dwell_")), key=lambda c: _num(c[6:]))
    return df[fixed + t_cols + d_cols]


def _num(key: str) -> float:
    try:
        return float(key)
    except ValueError:
        return float("inf")


def samples_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow samples to pandas; repeated text is dictionary-encoded (categories) so 4 M polls stay ~100 MB."""
    return table.to_pandas()


def scale_times(probes: pa.Table, samples: pa.Table, scale: float) -> tuple[pa.Table, pa.Table]:
    """Divide every time by the run's time_scale so times read as scenario seconds; add a time_scale column."""
    probes = probes.append_column("time_scale", pa.array(np.full(probes.num_rows, scale)))
    if scale == 1.0:
        return probes, samples
    for name in probes.column_names:
        if name in TIME_COLUMNS or name.startswith(("t_", "dwell_")):
            probes = probes.set_column(probes.schema.get_field_index(name), name,
                                       pc.divide(probes.column(name), scale))
    for name in ("t_s", "latency_s"):
        samples = samples.set_column(samples.schema.get_field_index(name), name,
                                     pc.divide(samples.column(name), scale))
    return probes, samples


def with_meta(probes: pa.Table, meta: dict[str, Any]) -> pa.Table:
    """Records missing run_id, target or label take them from run.json."""
    for name in ("run_id", "target", "label"):
        if meta.get(name) is not None:
            i = probes.schema.get_field_index(name)
            probes = probes.set_column(i, name, pc.fill_null(probes.column(name), str(meta[name])))
    return probes


def load_runs(run_dirs: list[Path], *, cache: bool = True, writer: Executor | None = None
              ) -> tuple[list[Run], pd.DataFrame, pd.DataFrame]:
    """Load several runs; return them and the combined, time-scaled probes and samples tables.

    writer: an executor for cache writes that the caller waits for later (then
    calls `collect_cache_notes`); without one, the writes finish before returning.
    The runs are joined as Arrow tables and made pandas once, so their
    categories are unified without a pass per run.
    """
    if not run_dirs:
        raise UsageError("give at least one run directory")
    run_dirs = [Path(d) for d in run_dirs]
    for d in run_dirs:  # every usage error before any slow parse
        check_run_dir(d)
    resolved = [d.resolve() for d in run_dirs]
    if len(set(resolved)) != len(resolved):
        raise UsageError("the same run was given twice: " + ", ".join(
            sorted({str(d) for d, r in zip(run_dirs, resolved) if resolved.count(r) > 1})))
    pool = parse_pool([d / "probes.jsonl" for d in run_dirs])
    try:
        runs = [read_run(d, cache=cache, pool=pool) for d in run_dirs]
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    ids = [str(r.meta.get("run_id") or r.path.name) for r in runs]
    if len(set(ids)) != len(ids):
        raise UsageError("the same run was given twice: " + ", ".join(sorted({i for i in ids if ids.count(i) > 1})))
    if cache:  # only now: while files were parsing, both cores were busy; what follows leaves one spare
        for r in runs:
            if not r.from_cache:
                refresh_cache(r, writer)
    probes_parts, samples_parts = [], []
    for r in runs:
        p, s = scale_times(with_meta(r.probes_table, r.meta), r.samples_table, r.time_scale)
        probes_parts.append(p)
        samples_parts.append(s)
    probes = probes_frame(pa.concat_tables(probes_parts, promote_options="default"))
    probes["group"] = probes["target"].fillna("?") + "/" + probes["label"].fillna("?")
    samples = samples_frame(pa.concat_tables(samples_parts, promote_options="permissive"))
    return runs, probes, samples


def collect_cache_notes(runs: list[Run]) -> None:
    """Wait for background cache writes and add what they had to say to each run's notes."""
    for r in runs:
        if r.cache_write is not None:
            try:
                r.notes += r.cache_write.result()
            except Exception as exc:  # noqa: BLE001 - a failed cache only costs speed
                r.notes.append(f"{r.path.name}: could not write the Parquet cache ({exc.__class__.__name__})")
            r.cache_write = None
