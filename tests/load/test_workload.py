"""Schedule math and PHASE rows: pure, no Locust run."""

from __future__ import annotations

import pytest

from probes.errors import UsageError
from probes.load.phases import bucket_3sf, failure_row, phase_rows
from probes.load.workload import (ArrivalSlots, Stage, StartSpacing, default_stages, parse_duration, parse_stages,
                                  process_share, stage_at)


def test_open_slots_are_fixed_in_advance_whatever_the_backend_does() -> None:
    slots = ArrivalSlots(rate=5.0, start_s=100.0)
    assert [round(slots.claim(), 9) for _ in range(4)] == [100.0, 100.2, 100.4, 100.6]


def test_workers_interleave_to_the_total_rate() -> None:
    shares = [process_share(6.0, 3, i) for i in range(3)]
    assert [rate for rate, _ in shares] == [2.0, 2.0, 2.0]
    starts = sorted(round(off + k / rate, 9) for rate, off in shares for k in range(4))
    assert starts == [round(k / 6.0, 9) for k in range(12)]


def test_closed_cap_spaces_starts_and_never_moves_one_earlier() -> None:
    cap = StartSpacing(rate=4.0)
    assert [cap.claim(t) for t in (0.0, 0.0, 0.1, 3.0)] == [0.0, 0.25, 0.5, 3.0]


def test_durations_and_stages() -> None:
    assert parse_duration("60s") == 60.0 and parse_duration("2m") == 120.0 and parse_duration("1m30s") == 90.0
    assert parse_duration("15") == 15.0
    with pytest.raises(UsageError):
        parse_duration("soon")
    stages = parse_stages("10s:4, 20s:8 ,5s:0")
    assert [(s.until_s, s.users) for s in stages] == [(10.0, 4), (30.0, 8), (35.0, 0)]
    assert stage_at(stages, 0.0)[0] == 4 and stage_at(stages, 29.9)[0] == 8 and stage_at(stages, 35.0) is None
    with pytest.raises(UsageError):
        parse_stages("10s")
    assert [s.users for s in default_stages(20, 60.0)] == [20, 20, 0]
    assert isinstance(default_stages(20, 60.0)[0], Stage)


def completed_record() -> dict:
    return {"outcome": "completed", "total_s": 9.5, "end_s": 9.5,
            "milestones": {"32": {"t_s": 4.25, "lo_s": 4.1, "hi_s": 4.4}, "100": {"t_s": 9.4, "lo_s": 9.2, "hi_s": 9.5}},
            "dwell": {"32": 0.6, "100": 0.0}, "longest_stall": {"progress": 32, "s": 0.9, "start_s": 4.3}}


def test_a_completed_flow_gives_one_row_per_phase_in_ms() -> None:
    rows = dict(phase_rows(completed_record()))
    assert rows == {"time_to_32": 4250.0, "time_to_100": 9400.0, "dwell_32": 600.0, "dwell_100": 0.0,
                    "longest_stall": 900.0, "total": 9500.0}
    assert failure_row(completed_record()) is None


def test_failed_flows_are_one_failed_total_and_aborted_ones_nothing() -> None:
    failed = {"outcome": "failed", "error": "EMPTY_TRANSCRIPT", "end_s": 3.0, "milestones": {}, "dwell": {}}
    assert phase_rows(failed) == []
    assert failure_row(failed) == ("total", 3000.0, "failed: EMPTY_TRANSCRIPT")
    assert failure_row({"outcome": "timeout", "error": None, "end_s": 300.0}) == ("total", 300000.0, "timeout")
    assert failure_row({"outcome": "aborted", "error": "interrupted", "end_s": 1.0}) is None


def test_finer_buckets_keep_three_significant_figures() -> None:
    assert bucket_3sf(58_760) == 58_800      # Locust's default: 59,000
    assert bucket_3sf(123_456) == 123_000
    assert bucket_3sf(9_876) == 9_880
    assert bucket_3sf(999.4) == 999 and bucket_3sf(12.6) == 13
