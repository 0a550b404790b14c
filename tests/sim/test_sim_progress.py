"""The pure progress model: schedule shape, the 22 % hold, caps, failure, stuck, scale."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from probes.sim.progress import (
    DEFAULT_MODEL, TaskPlan, build_schedule, persisted_indices, plateau, progress_events, state_index, times_of,
)
from probes.sim.scenarios import load_scenario

PLAN = TaskPlan(validation_s=0.35, transcription_s=4.5, llm_s=3.5, saving_s=0.6)


def test_milestones_in_order_and_completed() -> None:
    s = build_schedule(PLAN)
    assert [s[0].progress, s[1].progress] == [5, 22]
    assert s[0].t == 0.0
    assert s[-1].progress == 100 and s[-1].status == "completed" and s[-1].step == 4 and s[-1].label == "done"
    labels = [x.label for x in s]
    firsts = [labels.index(k) for k in ("received", "validating", "transcribing", "transcribed", "polishing",
                                        "saving", "saved", "done")]
    assert firsts == sorted(firsts)
    progresses = {x.label: x.progress for x in s}
    assert progresses["transcribed"] == 58 and progresses["saving"] == 88 and progresses["saved"] == 96
    assert min(x.progress for x in s if x.label == "polishing") == 60


def test_monotone_in_time_and_progress() -> None:
    for seed in range(30):
        plan = load_scenario("fast").plan(random.Random(seed))
        s = build_schedule(plan)
        assert all(a.t <= b.t for a, b in zip(s, s[1:]))
        assert all(a.progress <= b.progress for a, b in zip(s, s[1:]))


def test_holds_at_22_for_1_2_s_after_transcription_starts() -> None:
    s = build_schedule(PLAN)
    start = next(x.t for x in s if x.label == "transcribing")
    first_23 = next(x.t for x in s if x.progress == 23)
    assert first_23 - start == pytest.approx(1.5)  # timer 18 -> 22 takes 1.2 s, 23 one tick later
    assert [x.progress for x in s if start <= x.t < start + 1.49] == [22]
    assert plateau(s, 22) == pytest.approx(0.35 + 1.5)


def test_transcription_timer_rates() -> None:
    plan = TaskPlan(validation_s=0.0, transcription_s=100.0, llm_s=1.0, saving_s=0.1)
    s = build_schedule(plan, model=DEFAULT_MODEL)
    start = next(x.t for x in s if x.label == "transcribing")
    waiting = ("transcribing", "transcribing_wait")
    at = {x.progress: x.t - start for x in s if x.label in waiting}
    assert at[42] == pytest.approx(24 * 0.3)
    assert at[43] == pytest.approx(24 * 0.3 + 0.8)
    assert at[55] == pytest.approx(24 * 0.3 + 13 * 0.8)
    assert max(at) == 55  # the timer stops at 55 however long transcription runs
    # thankly's loop changes its message when it slows down past 42 %
    assert {x.label for x in s if x.label in waiting and x.progress <= 42} == {"transcribing"}
    assert {x.label for x in s if x.label in waiting and x.progress > 42} == {"transcribing_wait"}


def test_llm_timer_rate_and_top() -> None:
    plan = TaskPlan(validation_s=0.0, transcription_s=0.1, llm_s=60.0, saving_s=0.1)
    s = build_schedule(plan)
    start = next(x.t for x in s if x.label == "polishing")
    at = {x.progress: x.t - start for x in s if x.label == "polishing"}
    assert at[61] == pytest.approx(0.35)
    assert at[88] == pytest.approx(28 * 0.35)


def test_cap_respected_while_pending_and_plateau_of_stale_32() -> None:
    plan = load_scenario("stale-32").plan(random.Random(0))
    s = build_schedule(plan)
    assert max(x.progress for x in s if x.label == "transcribing") == 32
    # 32 % at 0.352 + 14 * 0.3 = 4.552 s; transcription returns at 0.352 + 30 + 26 = 56.352 s
    assert plateau(s, 32) == pytest.approx(51.8)
    assert s[-1].t == pytest.approx(62.072)
    assert s[-1].t > 60


def test_llm_cap() -> None:
    plan = TaskPlan(validation_s=0.0, transcription_s=0.1, llm_s=60.0, saving_s=0.1, llm_cap=70)
    assert max(x.progress for x in build_schedule(plan) if x.label == "polishing") == 70


def test_failed_job_freezes_progress() -> None:
    plan = TaskPlan(validation_s=0.3, transcription_s=1.82, llm_s=1, saving_s=1, fail_phase="transcription",
                    error="TRANSCRIPTION_CONTENT_TOO_SHORT")
    s = build_schedule(plan)
    last, before = s[-1], s[-2]
    assert last.status == "failed" and last.error == "TRANSCRIPTION_CONTENT_TOO_SHORT"
    assert last.progress == before.progress == 24  # like the observed silent clip
    assert last.label == "transcribing" and last.step == 1
    assert last.t == pytest.approx(0.002 + 0.3 + 1.82)


def test_stuck_job_freezes_at_cap_forever() -> None:
    plan = TaskPlan(validation_s=0.3, transcription_s=1.0, llm_s=1, saving_s=1, stuck_phase="transcription",
                    transcription_cap=32)
    s = build_schedule(plan)
    assert s[-1].progress == 32 and s[-1].status == "processing"
    assert plateau(s, 32) == float("inf")


def test_time_scale_multiplies_every_duration_and_offset_shifts() -> None:
    base = build_schedule(PLAN)
    scaled = build_schedule(PLAN, scale=0.1, offset=2.0)
    assert [x.progress for x in base] == [x.progress for x in scaled]
    for a, b in zip(base, scaled):
        assert b.t == pytest.approx(2.0 + a.t * 0.1)


def test_state_index_bisects() -> None:
    s = build_schedule(PLAN)
    times = times_of(s)
    assert state_index(times, -0.001) == -1
    assert s[state_index(times, 0.0)].progress == 5
    assert s[state_index(times, 1.0)].progress == 22
    assert s[state_index(times, 1e9)].status == "completed"


def test_progress_events_dedupes_label_only_changes_and_cuts_at_elapsed() -> None:
    s = build_schedule(PLAN)
    ev = progress_events(s)
    assert ev[0] == [0.0, 5, "processing"] and ev[-1][1:] == [100, "completed"]
    assert all(a[1:] != b[1:] for a, b in zip(ev, ev[1:]))
    assert all(e[0] <= 1.0 for e in progress_events(s, 1.0))
    assert progress_events(s, 1.0)[-1][1] == 22


def test_persisted_indices_only_multiples_of_five() -> None:
    s = build_schedule(PLAN)
    idx = persisted_indices(s)
    for i, p in enumerate(idx):
        assert p <= i
        assert s[p].progress % 5 == 0 or s[p].status != "processing"
    assert idx[-1] == len(s) - 1


def test_url_intake_holds_15_percent_while_fetching() -> None:
    s = build_schedule(replace(PLAN, intake="url", fetch_s=0.2), scale=0.5, offset=1.0)
    assert (s[0].t, s[0].progress, s[0].step, s[0].label) == (1.0, 15, 1, "uploaded")
    assert (s[1].t, s[1].progress, s[1].label) == (pytest.approx(1.1), 22, "validating")
    assert s[-1].status == "completed"
    base64 = build_schedule(replace(PLAN, intake="base64", fetch_s=0.2))
    assert base64[0].label == "uploaded" and base64[1].t == pytest.approx(0.002)  # no fetch: at once
    multipart = build_schedule(PLAN)
    assert (multipart[0].progress, multipart[0].label) == (5, "received")


def test_failed_fetch_freezes_at_15_with_the_error() -> None:
    s = build_schedule(replace(PLAN, intake="url", fetch_s=0.2, fail_phase="fetch",
                               error="Client error '403 Forbidden' for url 'x'"))
    assert [(x.t, x.progress, x.label, x.status) for x in s] == [(0.0, 15, "uploaded", "processing"),
                                                                 (0.2, 15, "uploaded", "failed")]
    assert s[-1].error == "Client error '403 Forbidden' for url 'x'"
