"""Tests for probes.analysis.timeline: hand-written timelines plus properties over generated samples."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.analysis.timeline import (
    DEFAULT_MILESTONES,
    Milestone,
    Plateau,
    Timeline,
    analyse,
    progress_band,
)

LAT = 0.01


def row(t, progress, status="processing", http=200, lat=LAT):
    """A sample row as the driver writes it (step/step_name are irrelevant to the analysis)."""
    return [t, http, progress, None, None, status, lat]


def err(t, http=None):
    return [t, http, None, None, None, None, 0.0 if http is None else LAT]


def assert_milestone(ms, t_s, lo_s, hi_s):
    """Bracket exact; the estimate to float noise (it is a sum of halves, computed by hand here)."""
    assert ms.lo_s == lo_s
    assert ms.hi_s == hi_s
    assert ms.t_s == pytest.approx(t_s, rel=1e-12, abs=1e-12)


# --- hand-written timelines ------------------------------------------------


def stale_32():
    """Production-like: reaches 32 at 1.2 s and sits there until 30.5 s."""
    rows = [row(0.0, 22), row(0.3, 22), row(0.6, 25), row(0.9, 28), row(1.2, 32)]
    rows += [row(1.5 + 0.5 * i, 32) for i in range(58)]  # 1.5 .. 30.0
    rows += [
        row(30.5, 42),
        row(31.0, 55),
        row(31.5, 58),
        row(32.0, 60),
        row(33.0, 88),
        row(33.5, 100, "completed"),
    ]
    return rows


def test_stale_32_long_plateau():
    tl = analyse(stale_32())
    assert tl.poll_count == 69 and tl.poll_errors == 0 and tl.regressions == 0
    assert tl.total_s == 33.5 and tl.end_s == 33.5
    # reads at 0.9 + 0.005 and 1.2 + 0.005: midpoint 1.055
    assert_milestone(tl.milestones[32], t_s=1.055, lo_s=0.9, hi_s=1.2 + LAT)
    # first valid poll: midpoint of upload start and its read at 0.005
    assert_milestone(tl.milestones[20], t_s=0.0025, lo_s=0.0, hi_s=LAT)
    assert tl.dwell[32] == pytest.approx(30.5 - 1.2)
    assert tl.dwell[20] == 0.0 and tl.dwell[42] == pytest.approx(0.5)
    assert tl.longest_stall == Plateau(progress=32, start_s=1.2, end_s=30.5, polls=59)
    assert tl.longest_stall.s == pytest.approx(29.3)
    rec = tl.to_record()
    assert rec["longest_stall"] == {"progress": 32, "s": 29.3, "start_s": 1.2}
    assert rec["milestones"]["32"] == {"t_s": 1.055, "lo_s": 0.9, "hi_s": 1.21}
    assert rec["milestones"]["20"] == {"t_s": 0.0025, "lo_s": 0.0, "hi_s": 0.01}
    assert set(rec["milestones"]) == {str(m) for m in DEFAULT_MILESTONES}


def test_fast_every_milestone_and_tie_goes_to_earliest():
    values = [22, 32, 42, 55, 58, 60, 88]
    rows = [row(round(0.3 * i, 1), p) for i, p in enumerate(values)] + [row(2.1, 100, "completed")]
    tl = analyse(rows)
    assert tl.total_s == 2.1 and tl.poll_errors == 0
    assert list(tl.milestones) == list(DEFAULT_MILESTONES)
    assert_milestone(tl.milestones[42], t_s=(0.305 + 0.605) / 2, lo_s=0.3, hi_s=0.6 + LAT)  # 0.455
    assert_milestone(tl.milestones[100], t_s=(1.805 + 2.105) / 2, lo_s=1.8, hi_s=2.1 + LAT)  # 1.955
    assert tl.dwell[20] == 0.0  # 20 never seen exactly
    assert tl.dwell[32] == pytest.approx(0.3)
    assert tl.dwell[100] == 0.0  # seen at the last poll: lower bound 0
    # every plateau lasts 0.3 s (give or take float noise); the earliest wins a tie
    assert tl.longest_stall is not None and tl.longest_stall.start_s in (0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 1.8)
    longest = max(p.s for p in tl.plateaus)
    assert tl.longest_stall == next(p for p in tl.plateaus if p.s == longest)


def test_exact_tie_goes_to_earliest():
    tl = analyse([row(0.0, 10), row(1.0, 20), row(2.0, 30), row(2.5, 40)])
    assert tl.longest_stall == Plateau(progress=10, start_s=0.0, end_s=1.0, polls=1)


def test_404s_first_are_errors_and_do_not_bracket():
    rows = [err(0.0, 404), err(1.5, 404), err(3.0, None)]
    rows += [row(4.0, 22), row(4.3, 32), row(4.6, 100, "completed")]
    tl = analyse(rows)
    assert tl.poll_count == 6 and tl.poll_errors == 3
    # the 404s are no previous valid poll: midpoint of upload start and the read at 4.005
    assert_milestone(tl.milestones[20], t_s=2.0025, lo_s=0.0, hi_s=4.0 + LAT)
    assert_milestone(tl.milestones[32], t_s=(4.005 + 4.305) / 2, lo_s=4.0, hi_s=4.3 + LAT)  # 4.155
    assert tl.plateaus[0].start_s == 4.0
    assert tl.total_s == 4.6


def test_regression_counts_and_no_second_crossing():
    rows = [
        row(0.0, 30),
        row(0.5, 35),
        row(1.0, 40),
        row(1.5, 35),  # stale instance
        row(2.0, 45),
        row(2.5, 30),  # stale again: 32 and 42 must not be crossed twice
        row(3.0, 60),
        row(3.5, 100, "completed"),
    ]
    tl = analyse(rows)
    assert tl.regressions == 2
    assert_milestone(tl.milestones[32], t_s=(0.005 + 0.505) / 2, lo_s=0.0, hi_s=0.5 + LAT)  # 0.255
    # 40 at 1.0 then 35 at 1.5: the bracket starts at the stale 35, not at 40
    assert_milestone(tl.milestones[42], t_s=(1.505 + 2.005) / 2, lo_s=1.5, hi_s=2.0 + LAT)  # 1.755
    assert_milestone(tl.milestones[55], t_s=(2.505 + 3.005) / 2, lo_s=2.5, hi_s=3.0 + LAT)  # 2.755
    # plateaus of the running maximum: 30, 35, 40 (through the stale 35), 45 (through the stale 30), 60, 100
    assert [p.progress for p in tl.plateaus] == [30, 35, 40, 45, 60, 100]
    assert tl.transcription_s == 3.0  # first poll >= 20 at 0.0, first past 55 at 3.0


def test_dwell_is_measured_on_the_running_maximum():
    rows = [row(0.0, 22), row(1.0, 32), row(2.0, 33), row(3.0, 32), row(4.0, 50)]
    tl = analyse(rows, milestones=(32, 40, 60))
    assert tl.dwell[32] == 1.0  # from 1.0 (first at 32) to 2.0 (first higher); the stale 32 at 3.0 is no dwell
    assert tl.dwell[40] == 0.0  # passed without a poll seeing it exactly
    assert 60 not in tl.dwell  # never reached: not observed, not 0


def test_stale_instances_do_not_shorten_a_freeze():
    """Issue 11: instances answering 32/30/30 during a 50 s freeze: the stall is the freeze, not 1 s."""
    rows = [row(0.0, 22), row(0.3, 32)] + [row(0.3 + i, 30 if i % 3 else 32) for i in range(1, 51)]
    rows += [row(51.0, 60), row(52.0, 100, "completed")]
    tl = analyse(rows)
    assert tl.longest_stall == Plateau(progress=32, start_s=0.3, end_s=51.0, polls=51)
    assert tl.dwell[32] == pytest.approx(50.7)
    assert tl.regressions > 0


def test_float_progress_compares_as_a_number():
    tl = analyse([row(0.0, 31.5), row(1.0, 32.0), row(2.0, 32.5), row(3.0, 42)], milestones=(32,))
    assert_milestone(tl.milestones[32], t_s=(0.005 + 1.005) / 2, lo_s=0.0, hi_s=1.0 + LAT)  # 0.505
    assert tl.dwell[32] == 1.0  # 32.5 is more than 32


def test_completed_status_decides_even_without_an_integer_progress():
    rows = [row(0.0, 22), row(1.0, 60), [2.0, 200, None, 4, "完成", "completed", LAT]]
    tl = analyse(rows)
    assert tl.total_s == 2.0 and tl.transcription_s == 1.0


def test_transcription_ends_past_55_not_at_it():
    """The timer stops at 55 % until Whisper answers: 55 % is still transcribing, 58 % is the answer."""
    rows = [row(0.0, 22), row(0.5, 55)] + [row(1.0 + i, 55) for i in range(19)] + [row(20.0, 58)]
    assert analyse(rows).transcription_s == 20.0


def test_never_completing_ends_with_lower_bounds():
    rows = [row(0.0, 22), row(0.5, 32)] + [row(1.0 + i, 32) for i in range(10)] + [err(11.5), err(13.5)]
    tl = analyse(rows)
    assert tl.total_s is None
    assert tl.end_s == 13.5
    assert set(tl.milestones) == {20, 32}
    assert tl.dwell[32] == pytest.approx(10.0 - 0.5)  # last valid poll, not last sample
    assert tl.longest_stall == Plateau(progress=32, start_s=0.5, end_s=10.0, polls=11)
    assert tl.poll_errors == 2
    assert tl.to_record()["total_s"] is None


def test_failed_job_keeps_its_stall():
    rows = [row(0.0, 22), row(0.5, 55), row(5.0, 55), row(9.0, 55, "failed")]
    tl = analyse(rows)
    assert tl.total_s is None
    assert tl.longest_stall == Plateau(progress=55, start_s=0.5, end_s=9.0, polls=3)


def test_completed_job_is_not_a_stall_but_100_while_processing_is():
    polled_on = [row(0.0, 88), row(1.0, 100, "completed"), row(9.0, 100, "completed")]
    tl = analyse(polled_on)
    assert tl.plateaus[-1].s == 8.0
    assert tl.longest_stall == Plateau(progress=88, start_s=0.0, end_s=1.0, polls=1)
    assert tl.total_s == 1.0

    stuck_at_100 = [row(0.0, 88), row(1.0, 100), row(9.0, 100, "completed")]
    tl = analyse(stuck_at_100)
    assert tl.longest_stall == Plateau(progress=100, start_s=1.0, end_s=9.0, polls=2)
    assert tl.total_s == 9.0


def test_empty():
    tl = analyse([])
    assert tl == Timeline(
        total_s=None,
        end_s=0.0,
        milestones={},
        dwell={},
        plateaus=(),
        longest_stall=None,
        poll_count=0,
        poll_errors=0,
        regressions=0,
    )
    assert tl.to_record() == {
        "total_s": None,
        "end_s": 0.0,
        "poll_count": 0,
        "poll_errors": 0,
        "regressions": 0,
        "transcription_s": None,
        "milestones": {},
        "dwell": {},
        "longest_stall": None,
    }


def test_only_errors():
    tl = analyse([err(0.0, 500), err(0.5, 429), err(1.0)])
    assert tl.poll_errors == tl.poll_count == 3
    assert tl.end_s == 1.0 and tl.plateaus == () and tl.milestones == {}


def test_single_valid_poll_is_a_zero_length_plateau_and_no_stall():
    tl = analyse([row(0.7, 32)])
    assert tl.plateaus == (Plateau(progress=32, start_s=0.7, end_s=0.7, polls=1),)
    assert tl.longest_stall is None
    assert_milestone(tl.milestones[32], t_s=0.705 / 2, lo_s=0.0, hi_s=0.7 + LAT)  # 0.3525


def test_garbage_rows_are_poll_errors_never_exceptions():
    rows = [
        None,
        "0.1,200,32",
        [0.1, 200, 32],  # wrong length
        [0.2, 200, "32", None, None, "processing", LAT],  # str progress
        [0.3, 200, True, None, None, "processing", LAT],  # bool progress
        [0.4, 200, float("nan"), None, None, "processing", LAT],
        [0.5, True, 32, None, None, "processing", LAT],  # bool http status
        [float("inf"), 200, 32, None, None, "processing", LAT],
        [10**400, 200, 32, None, None, "processing", LAT],  # overflows float
        [-1.0, 200, 32, None, None, "processing", LAT],  # before the upload started
        ["1.0", 200, 32, None, None, "processing", LAT],
        [0.6, 200, None, None, None, "processing", LAT],  # 200 without progress
        [0.7, 200, 32.0, None, None, ["weird"], -5.0],  # float progress, odd status, bad latency: valid
        [0.8, 200, 33, None, None, {"x": 1}, None],  # missing latency: valid, hi_s = t_s
    ]
    tl = analyse(rows, milestones=(32, 33))
    assert tl.poll_count == len(rows)
    assert tl.poll_errors == len(rows) - 2
    # bad/missing latency counts as 0 in the estimate too: reads at 0.7 and 0.8
    assert_milestone(tl.milestones[32], t_s=0.35, lo_s=0.0, hi_s=0.7)
    assert_milestone(tl.milestones[33], t_s=0.75, lo_s=0.7, hi_s=0.8)
    assert tl.dwell[32] == pytest.approx(0.1)  # 32.0 == 32
    assert tl.end_s == 0.8  # rows with a time: the malformed time rows do not count
    assert tl.longest_stall == Plateau(progress=32.0, start_s=0.7, end_s=0.8, polls=1)
    json.dumps(tl.to_record(), allow_nan=False)


def test_unsorted_input_is_sorted_stably():
    rows = stale_32()
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    assert analyse(shuffled) == analyse(rows)


def test_to_record_rounds_to_microseconds_only_there():
    tl = analyse([row(1.23456789, 10, lat=0.0000004), row(2.0000004, 40)])
    # reads at 1.23456789 + 0.0000002 = 1.23456809 and 2.0000004 + 0.005 = 2.0050004
    assert_milestone(tl.milestones[20], t_s=1.619784245, lo_s=1.23456789, hi_s=2.0000004 + LAT)
    rec = tl.to_record()
    assert rec["milestones"]["20"] == {"t_s": 1.619784, "lo_s": 1.234568, "hi_s": 2.01}
    assert rec["longest_stall"] == {"progress": 10, "s": 0.765433, "start_s": 1.234568}


def test_custom_and_duplicate_milestones():
    tl = analyse([row(0.0, 5), row(1.0, 50)], milestones=[50, 10, 50])
    assert list(tl.dwell) == [50, 10]
    assert tl.to_record()["milestones"] == {  # reads at 0.005 and 1.005
        "50": {"t_s": 0.505, "lo_s": 0.0, "hi_s": 1.01},
        "10": {"t_s": 0.505, "lo_s": 0.0, "hi_s": 1.01},
    }


@pytest.mark.parametrize("bad", [[32.0], [True], ["32"]])
def test_non_int_milestones_are_a_caller_bug(bad):
    with pytest.raises(TypeError):
        analyse([], milestones=bad)


@pytest.mark.parametrize(
    ("progress", "band"),
    [(0, "0-9"), (9, "0-9"), (10, "10-19"), (30, "30-39"), (39, "30-39"), (99, "90-99"),
     (100, "100"), (32.5, "30-39"), (99.9, "90-99"), (100.0, "100"), (-1, "<0"), (101, ">100")],
)
def test_progress_band(progress, band):
    assert progress_band(progress) == band


@pytest.mark.parametrize(("bad", "exc"), [(None, TypeError), ("32", TypeError), (True, TypeError),
                                          (float("nan"), ValueError)])
def test_progress_band_rejects_non_numbers(bad, exc):
    with pytest.raises(exc):
        progress_band(bad)


# --- properties over generated samples --------------------------------------

_STATUS = st.sampled_from(["processing", "processing", "processing", "completed", "failed", None])
_LATENCY = st.floats(min_value=0.0, max_value=3.0, allow_nan=False)
_INT_PROGRESS = st.integers(min_value=0, max_value=100)
_PROGRESS = st.one_of(  # mostly ints, as the API sends; some floats, which must work too
    _INT_PROGRESS,
    _INT_PROGRESS,
    _INT_PROGRESS.map(float),
    st.floats(min_value=0.0, max_value=100.0, allow_nan=False, allow_infinity=False),
)


_ERROR_ROWS = st.one_of(
    st.builds(lambda lat: [0.0, None, None, None, None, None, lat], _LATENCY),  # network error
    st.builds(
        lambda code, p, status, lat: [0.0, code, p, None, None, status, lat],
        st.sampled_from([403, 404, 429, 500, 502, 503]),
        st.none() | _PROGRESS,
        _STATUS,
        _LATENCY,
    ),
    st.builds(lambda status, lat: [0.0, 200, None, 1, "x", status, lat], _STATUS, _LATENCY),  # no progress
    st.builds(
        lambda p, lat: [0.0, 200, p, 1, "x", "processing", lat],
        st.sampled_from(["32", True, False, float("nan"), [], {}]),
        _LATENCY,
    ),
)
_VALID_ROWS = st.builds(
    lambda p, status, lat: [0.0, 200, p, 1, "step", status, lat], _PROGRESS, _STATUS, _LATENCY
)
_ROWS = st.one_of(_VALID_ROWS, _VALID_ROWS, _VALID_ROWS, _ERROR_ROWS)


@st.composite
def sample_lists(draw, monotone=False, sequential=False):
    """Rows with strictly increasing t_s; a mix of valid polls, poll errors and the odd malformed row.

    Requests may overlap (a latency longer than the gap to the next poll) unless
    ``sequential``: then each answer arrives by the next request's start, as
    the driver polls (one request in flight per probe).
    """
    pairs = draw(st.lists(st.tuples(st.floats(min_value=0.001, max_value=5.0), _ROWS), max_size=40))
    t = draw(st.floats(min_value=0.0, max_value=2.0))
    rows = []
    for gap, r in pairs:
        t += gap
        rows.append([t, *r[1:]])
    if sequential:
        for r, nxt in zip(rows, rows[1:]):
            r[6] = min(r[6], nxt[0] - r[0])
    if monotone:
        valid = [r for r in rows if r[1] == 200 and _is_progress(r[2])]
        for r, p in zip(valid, sorted(r[2] for r in valid)):
            r[2] = p
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        rows.insert(draw(st.integers(min_value=0, max_value=len(rows))), [t, 200, 1])
    return rows


def _is_progress(p):
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        return False
    return not (isinstance(p, float) and math.isnan(p))


def _latency(r):
    """Independent oracle for the latency the analysis uses: unusable (non-number, negative, NaN) is 0."""
    lat = r[6]
    if isinstance(lat, bool) or not isinstance(lat, (int, float)) or not lat >= 0.0:
        return 0.0
    return float(lat)


def _valid(rows):
    """Independent oracle for which rows are valid polls."""
    out = []
    for r in rows:
        if not isinstance(r, list) or len(r) != 7 or r[1] != 200 or isinstance(r[1], bool):
            continue
        if not _is_progress(r[2]):
            continue
        out.append(r)
    return out


_SETTINGS = settings(max_examples=100, deadline=None)


@_SETTINGS
@given(sample_lists())
def test_prop_counts(rows):
    tl = analyse(rows)
    valid = _valid(rows)
    assert tl.poll_count == len(rows)
    assert tl.poll_errors + len(valid) == tl.poll_count
    assert sum(p.polls for p in tl.plateaus) == len(valid)
    assert tl.regressions == sum(1 for a, b in zip(valid, valid[1:]) if b[2] < a[2])
    timed = [r[0] for r in rows if len(r) == 7]
    assert tl.end_s == (timed[-1] if timed else 0.0)
    # final answers are decided by status, with or without a usable progress value
    completed = sorted(r[0] for r in rows if len(r) == 7 and r[1] == 200 and r[1] is not True and r[5] == "completed"
                       and isinstance(r[0], (int, float)) and math.isfinite(r[0]) and r[0] >= 0)
    assert tl.total_s == (completed[0] if completed else None)


def _check_milestones(rows, *, sequential):
    tl = analyse(rows)
    valid = _valid(rows)
    top = max((r[2] for r in valid), default=None)
    assert set(tl.milestones) == {m for m in DEFAULT_MILESTONES if top is not None and top >= m}
    for m, ms in tl.milestones.items():
        assert isinstance(ms, Milestone)
        # the crossing poll: the first valid poll (in time order) that saw >= m
        i = next(i for i, r in enumerate(valid) if r[2] >= m)
        cur = valid[i]
        read = cur[0] + _latency(cur) / 2  # server-side read: middle of the request
        assert ms.hi_s == cur[0] + _latency(cur)
        if i:
            prev = valid[i - 1]
            assert prev[2] < m
            assert ms.lo_s == prev[0]
            expected = (prev[0] + _latency(prev) / 2 + read) / 2
        else:
            assert ms.lo_s == 0.0
            expected = read / 2
        # the midpoint, clamped into the bracket (only overlapping requests ever need the clamp)
        assert ms.t_s == pytest.approx(min(max(expected, ms.lo_s), ms.hi_s), rel=1e-12, abs=1e-12)
        if sequential:
            assert ms.t_s == pytest.approx(expected, rel=1e-12, abs=1e-12)
        # t_s > 0 in the generator and strictly after the previous poll's start
        assert ms.lo_s < ms.t_s <= ms.hi_s


@_SETTINGS
@given(sample_lists())
def test_prop_milestones_bracket_the_crossing(rows):
    _check_milestones(rows, sequential=False)


@_SETTINGS
@given(sample_lists(sequential=True))
def test_prop_milestone_estimate_inside_bracket_for_sequential_polls(rows):
    _check_milestones(rows, sequential=True)


def test_overlapping_polls_estimate_stays_in_bracket():
    # previous poll: 0.0 .. 3.0 saw 10; next poll: 0.5 .. 0.51 saw 40, so the crossing is in [0.0, 0.51]
    tl = analyse([row(0.0, 10, lat=3.0), row(0.5, 40)], milestones=(20,))
    ms = tl.milestones[20]
    assert (ms.lo_s, ms.hi_s) == (0.0, 0.5 + LAT)
    assert ms.t_s == ms.hi_s  # the midpoint (1.5 + 0.505) / 2 = 1.0025 is clamped into the bracket


@_SETTINGS
@given(sample_lists())
def test_prop_dwell_bounds(rows):
    tl = analyse(rows)
    valid = _valid(rows)
    assert list(tl.dwell) == list(tl.milestones)  # dwell only where progress got to the milestone
    peaks, top = [], None  # the running maximum, which dwell is measured on
    for r in valid:
        top = r[2] if top is None or r[2] > top else top
        peaks.append((r[0], top))
    for m, d in tl.dwell.items():
        assert d >= 0.0
        if valid:
            assert d <= tl.end_s - valid[0][0]
        seen = [i for i, (_, p) in enumerate(peaks) if p == m]
        if not seen:
            assert d == 0.0
            continue
        higher = [t for t, p in peaks[seen[0] + 1 :] if p > m]
        assert d == (higher[0] if higher else peaks[-1][0]) - peaks[seen[0]][0]


@_SETTINGS
@given(sample_lists())
def test_prop_plateaus_tile_the_valid_span(rows):
    tl = analyse(rows)
    valid = _valid(rows)
    if not valid:
        assert tl.plateaus == () and tl.longest_stall is None
        return
    ps = tl.plateaus
    assert ps[0].start_s == valid[0][0]
    assert ps[-1].end_s == valid[-1][0]
    for a, b in zip(ps, ps[1:]):
        assert a.end_s == b.start_s
        assert a.progress != b.progress
    assert all(p.s >= 0.0 and p.polls >= 1 for p in ps)
    assert math.isclose(math.fsum(p.s for p in ps), valid[-1][0] - valid[0][0], rel_tol=1e-9, abs_tol=1e-9)
    first_status = {r[0]: r[5] for r in valid}
    eligible = [p for p in ps if p.s > 0.0 and first_status[p.start_s] not in ("completed", "failed")]
    if not eligible:
        assert tl.longest_stall is None
    else:
        longest = max(p.s for p in eligible)
        assert tl.longest_stall == next(p for p in eligible if p.s == longest)


@_SETTINGS
@given(sample_lists(monotone=True))
def test_prop_monotone_input_never_regresses(rows):
    assert analyse(rows).regressions == 0


@_SETTINGS
@given(sample_lists(), st.randoms(use_true_random=False))
def test_prop_order_of_input_does_not_matter(rows, rnd):
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    assert analyse(shuffled) == analyse(rows)


@_SETTINGS
@given(sample_lists())
def test_prop_record_is_strict_json(rows):
    rec = analyse(rows).to_record()
    text = json.dumps(rec, allow_nan=False)
    assert json.loads(text) == rec
    assert list(rec) == [
        "total_s", "end_s", "poll_count", "poll_errors", "regressions", "transcription_s", "milestones", "dwell",
        "longest_stall"
    ]
    for ms in rec["milestones"].values():
        assert set(ms) == {"t_s", "lo_s", "hi_s"}
    if rec["longest_stall"] is not None:
        assert set(rec["longest_stall"]) == {"progress", "s", "start_s"}
