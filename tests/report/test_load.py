import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from probes.errors import UsageError
from probes.report import load


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "probes.jsonl").read_text(encoding="utf-8").splitlines()]


def test_tables_match_the_jsonl(fast_run, copy_run):
    run = load.load_run(copy_run(fast_run))
    recs = records(fast_run)
    assert len(run.probes) == len(recs)
    assert len(run.samples) == sum(len(r["samples"]) for r in recs)
    first = recs[0]
    row = run.probes.iloc[0]
    assert row["probe_id"] == first["probe_id"]
    assert row["t_32"] == pytest.approx(first["milestones"]["32"]["t_s"])
    assert row["dwell_32"] == pytest.approx(first["dwell"]["32"])
    assert row["stall_s"] == pytest.approx(first["longest_stall"]["s"])
    s = run.samples[run.samples["probe_id"] == first["probe_id"]]
    assert s["t_s"].tolist() == pytest.approx([x[0] for x in first["samples"]])
    assert s["step_name"].astype(str).tolist() == [x[4] for x in first["samples"]]
    assert list(run.samples.columns) == ["run_id", "probe_id", "t_s", "http_status", "progress", "step",
                                         "step_name", "status", "latency_s"]


def test_parquet_cache_hit_and_invalidation(fast_run, copy_run):
    d = copy_run(fast_run)
    first = load.load_run(d)
    assert not first.from_cache
    assert (d / "probes.parquet").is_file() and (d / "samples.parquet").is_file()
    second = load.load_run(d)
    assert second.from_cache
    pd.testing.assert_frame_equal(first.probes, second.probes)
    pd.testing.assert_frame_equal(first.samples.astype({"run_id": str, "probe_id": str}),
                                  second.samples.astype({"run_id": str, "probe_id": str}))
    with open(d / "probes.jsonl", "ab") as fh:  # the run goes on: one more probe
        fh.write((d / "probes.jsonl").read_bytes().splitlines(keepends=True)[0].replace(b'"0000"', b'"9999"'))
    third = load.load_run(d)
    assert not third.from_cache and len(third.probes) == len(first.probes) + 1


def test_malformed_and_truncated_lines_are_skipped_and_counted(fast_run, copy_run):
    d = copy_run(fast_run)
    lines = (d / "probes.jsonl").read_bytes().splitlines(keepends=True)
    broken = [lines[0], b"{not json\n", b"[1, 2]\n", *lines[1:-1], lines[-1][: len(lines[-1]) // 2]]
    (d / "probes.jsonl").write_bytes(b"".join(broken))
    run = load.load_run(d)
    assert len(run.probes) == len(lines) - 1
    text = " ".join(run.notes)
    assert "skipped 2 malformed line(s)" in text
    assert "truncated last line" in text
    cached = load.load_run(d)  # the notes survive the cache
    assert cached.from_cache and "truncated last line" in " ".join(cached.notes)


def test_malformed_poll_rows_are_dropped(fast_run, copy_run):
    d = copy_run(fast_run)
    recs = records(d)
    recs[0]["samples"][1] = [1.0, 200]
    recs[1]["samples"][0][2] = "lots"
    (d / "probes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    run = load.load_run(d, cache=False)
    assert len(run.samples) == sum(len(r["samples"]) for r in recs) - 1
    assert "1 malformed poll row" in " ".join(run.notes)
    assert run.samples["progress"].isna().sum() == 1


@pytest.mark.parametrize("content", [None, b"", b"garbage\n"])
def test_unusable_run_directories_are_usage_errors(tmp_path, content):
    d = tmp_path / "run"
    d.mkdir()
    if content is not None:
        (d / "probes.jsonl").write_bytes(content)
    with pytest.raises(UsageError):
        load.load_run(d)


def test_missing_directory_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load.load_runs([tmp_path / "nope"])


def test_time_scale_divides_every_time(tmp_path, make_run):
    real = make_run(tmp_path / "a", seed=5)
    scaled = make_run(tmp_path / "b", seed=5, time_scale=0.1)
    _, p_real, s_real = load.load_runs([real])
    _, p_scaled, s_scaled = load.load_runs([scaled])
    for col in ("upload_s", "t_32", "total_s", "dwell_32", "stall_s"):
        np.testing.assert_allclose(p_scaled[col], p_real[col], rtol=1e-3, atol=2e-3)
    np.testing.assert_allclose(s_scaled["t_s"], s_real["t_s"], rtol=1e-3, atol=2e-3)
    assert (p_scaled["time_scale"] == 0.1).all() and (p_real["time_scale"] == 1.0).all()


def test_parallel_parse_equals_serial(fast_run, stale_run, monkeypatch):
    serial = [load.parse_jsonl(r / "probes.jsonl", None) for r in (fast_run, stale_run)]
    monkeypatch.setattr(load, "CHUNK_BYTES", 4096)  # many ranges, cut mid-file
    monkeypatch.setattr(load, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(load, "_cpus", lambda: 2)
    pool = load.parse_pool([fast_run / "probes.jsonl"])
    assert pool is not None
    try:
        parallel = [load.parse_jsonl(r / "probes.jsonl", None, pool=pool) for r in (fast_run, stale_run)]
    finally:
        pool.shutdown()
    for (p1, s1, _), (p2, s2, _) in zip(serial, parallel):
        pd.testing.assert_frame_equal(p1, p2)
        pd.testing.assert_frame_equal(s1.astype({"probe_id": str}), s2.astype({"probe_id": str}))


def test_line_ranges_cover_the_file_on_line_boundaries(fast_run):
    path = fast_run / "probes.jsonl"
    data = path.read_bytes()
    ranges = load.line_ranges(path, 1000)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    assert all(a2 == b1 for (_, b1), (a2, _) in zip(ranges, ranges[1:]))
    assert all(data[b - 1:b] == b"\n" for _, b in ranges)


def test_several_runs_share_categories(fast_run, stale_run):
    _, probes, samples = load.load_runs([fast_run, stale_run])
    assert set(probes["group"]) == {"local/local", "prod/prod"}
    assert isinstance(samples["step_name"].dtype, pd.CategoricalDtype)
    assert samples["run_id"].nunique() == 2


def test_same_run_twice_is_a_usage_error(fast_run):
    with pytest.raises(UsageError, match="twice"):
        load.load_runs([fast_run, fast_run])


def test_repeated_probe_ids_do_not_break_the_report(fast_run, copy_run, tmp_path):
    from probes.report import build_report

    d = copy_run(fast_run)
    lines = (d / "probes.jsonl").read_bytes().splitlines(keepends=True)
    (d / "probes.jsonl").write_bytes(b"".join(lines + lines[:2]))
    run = load.load_run(d)
    assert len(run.probes) == len(lines) + 2
    assert "2 repeated probe_id(s)" in " ".join(run.notes)
    assert build_report([d], tmp_path / "out").is_file()
