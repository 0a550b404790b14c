"""Every branch of the seven rules on hand-built records: for, against, and none when the evidence could not tell.

Records go through the timeline (`analyse`) like the probe machine's, from polls of a
hand-written thankly curve (the 22 % validation, the transcription timer, 58 %, the LLM
timer, saving, completed at 9.07 s).
"""

from __future__ import annotations

from typing import Any

import pytest

from probes.analysis import diagnosis
from probes.analysis.diagnosis import (
    MIN_POLLS_AFTER_SEEN,
    MIN_REQUESTS,
    Side,
    backend_errors,
    cold_start,
    diagnose,
    frontend_polling,
    lost_state,
    rate_limiting,
    slow_transcription,
    stale_deploy,
)
from probes.analysis.timeline import analyse, progress_band

LAT = 0.002
MESSAGES = {"处理中": "准备正式开始处理...", "转录中": "正在努力识别你的声音...", "AI润色": "正在美化文字...",
            "保存中": "准备保存日记...", "完成": "日记创建成功"}


def curve(t: float) -> tuple[int, str, str]:
    """(progress, step name, status) of a healthy ~9 s job at t scenario seconds after upload."""
    if t < 0.35:
        return 22, "处理中", "processing"
    if t < 4.85:
        return max(22, 18 + int((t - 0.35) / 0.3)), "转录中", "processing"
    if t < 4.87:
        return 58, "转录中", "processing"
    if t < 8.37:
        return 60 + int((t - 4.87) / 0.35), "AI润色", "processing"
    if t < 9.07:
        return (88 if t < 8.97 else 96), "保存中", "processing"
    return 100, "完成", "completed"


def row(t: float, progress: Any, name: str = "转录中", status: str = "processing", http: int | None = 200,
        lat: float = LAT) -> list[Any]:
    return [round(t, 6), http, progress, 1, name, status, lat]


def polls(every: float, start: float = 0.0, until: float = 60.0, shape=curve) -> list[list[Any]]:
    """Polls of `shape` every `every` s from `start` until the job ends (or `until`)."""
    rows, t = [], start
    while t <= until:
        progress, name, status = shape(t)
        rows.append(row(t, progress, name, status))
        if status != "processing":
            break
        t += every
    return rows


def record(rows: list[list[Any]], probe_id: str = "0001", *, outcome: str | None = None, error: str | None = None,
           upload_s: float = 0.01, upload_status: int | None = 200, instances: dict[str, int] | None = None,
           messages: dict[str, str] = MESSAGES) -> dict[str, Any]:
    tl = analyse(rows)
    states = {(progress_band(r[2]), r[4], messages.get(r[4], "")): None for r in rows
              if r[1] == 200 and isinstance(r[2], (int, float))}
    if outcome is None:
        outcome = "completed" if tl.total_s is not None else "timeout"
    return {"probe_id": probe_id, "outcome": outcome, "error": error, "upload_s": upload_s,
            "upload_status": upload_status, "instances": {"sim-0": len(rows)} if instances is None else instances,
            "states": [list(s) for s in states], **tl.to_record(), "samples": rows}


def side(records: list[dict[str, Any]], cadence: str = "app", **meta: Any) -> Side:
    described = {"name": "fine", "interval_s": 0.05} if cadence == "fine" else {"name": "app"}
    return Side({"cadence": described, **meta}, records)


def probes(n: int, rows: list[list[Any]], **kw: Any) -> list[dict[str, Any]]:
    return [record(rows, f"{i:04d}", **kw) for i in range(1, n + 1)]


# -- slow transcription -----------------------------------------------------------------------

def slow_whisper() -> dict[str, Any]:
    """The healthy timer's 2.3 s at 22 %, a climb to 55 % by 18 s, 55 % until Whisper answers at 20 s."""
    climb = [(2.3 + 0.3 * i, 23 + i) for i in range(20)] + [(8.3 + 0.8 * i, 43 + i) for i in range(13)]
    return record([row(t, p) for t, p in [(0.0, 22), *climb, (20.0, 58)]])


def test_a_slow_whisper_is_named_by_its_climb_to_55_even_when_22_is_held_longest() -> None:
    finding = slow_transcription(side([slow_whisper()] * 3))
    assert finding.verdict == "for"
    assert finding.evidence["longest_stall_at"] == 22 and finding.evidence["climbed_to"] == 55
    assert "climbed to 55 %" in finding.next and "Whisper's latency" in finding.next


def test_a_bar_frozen_at_32_points_at_the_deployed_code() -> None:
    climb = [(0.4 + 0.3 * i, 23 + i) for i in range(10)]
    frozen = record([row(t, p) for t, p in [(0.0, 22), *climb, *[(4.0 + i, 32) for i in range(56)], (60.0, 58)]])
    finding = slow_transcription(side([frozen] * 3))
    assert finding.verdict == "for" and finding.evidence["climbed_to"] == 32
    assert "froze at 32 %" in finding.next and "stale deploy" in finding.next


def test_a_bar_held_at_55_until_whisper_answers_is_slow() -> None:
    """The phase ends past 55 %, not at 55: 55 % is where the timer waits for Whisper (TRANSCRIPTION_PAST)."""
    held = record([row(0.0, 22), row(0.5, 55), *[row(1.0 + i, 55) for i in range(19)], row(20.0, 58)])
    finding = slow_transcription(side([held] * 3))
    assert finding.verdict == "for" and finding.evidence["surely_p90_s"] == 19.0
    assert finding.evidence["climbed_to"] == 55


def test_a_probe_that_ended_transcribing_is_evidence_for() -> None:
    stuck = record([row(0.0, 22), row(0.5, 30), *[row(1.0 + i, 55) for i in range(29)]], outcome="timeout")
    finding = slow_transcription(side([stuck] * 3))
    assert finding.verdict == "for" and finding.evidence["unfinished"] == 3
    assert finding.evidence["unfinished_at_least_s"] == 29.0


def test_a_quick_transcription_bounded_by_the_polls_is_evidence_against() -> None:
    finding = slow_transcription(side(probes(3, polls(0.3))))
    assert finding.verdict == "against"
    assert finding.evidence["at_most_p90_s"] <= 8 and finding.evidence["bounded"] == 3


def test_polls_too_sparse_to_bound_the_phase_are_no_evidence() -> None:
    """Polls 9 s apart: the phase lasted between 0 and 9 s, which says nothing about an 8 s goal."""
    finding = slow_transcription(side(probes(3, polls(9.0))))
    assert finding.verdict == "none" and finding.evidence["at_most_p90_s"] == 9.0
    assert "--cadence fine" in finding.next


def test_a_plateau_at_55_is_still_transcribing_for_the_bound() -> None:
    """Polls at 0, 3 and 12 s saw 22, 55 and 58 %: Whisper answered somewhere in 3-12 s, not by 3 s."""
    finding = slow_transcription(side(probes(3, [row(0.0, 22), row(3.0, 55), row(12.0, 58)])))
    assert finding.verdict == "none" and finding.evidence["at_most_p90_s"] == 12.0


def test_the_bound_starts_at_the_last_poll_below_20() -> None:
    """Polls at 0, 6 and 9 s saw 5, 22 and 60 %: the phase may have begun just after 0 s."""
    finding = slow_transcription(side(probes(3, [row(0.0, 5), row(6.0, 22), row(9.0, 60)])))
    assert finding.verdict == "none" and finding.evidence["at_most_p90_s"] == 9.0


def test_a_probe_that_ended_inside_the_phase_leaves_it_unbounded() -> None:
    failed = record(polls(0.3, until=2.0) + [row(2.3, 24, status="failed")], "0004", outcome="failed")
    finding = slow_transcription(side(probes(3, polls(0.3)) + [failed]))
    assert finding.verdict == "none" and finding.evidence["at_most_p90_s"] is None
    assert finding.evidence["bounded"] == 4


def test_fewer_probes_than_the_minimum_are_no_evidence() -> None:
    finding = slow_transcription(side(probes(diagnosis.MIN_PROBES - 1, polls(0.3))))
    assert finding.verdict == "none" and finding.evidence["bounded"] == diagnosis.MIN_PROBES - 1


def test_no_probe_that_saw_the_phase_is_no_evidence() -> None:
    gone = record([row(0.3 * i, None, http=404) for i in range(5)], outcome="poll_error")
    assert slow_transcription(side([gone] * 3)).verdict == "none"


# -- stale deploy -----------------------------------------------------------------------------

def fingerprinted(records: list[dict[str, Any]], version: str | None, **meta: Any) -> Side:
    headers = {"x-app-version": version} if version else {}
    return side(records, fingerprint={"headers": headers}, **meta)


RENAMED = {"转录中": "语音识别", "处理中": "准备中", "AI润色": "智能整理", "保存中": "保存", "完成": "已完成"}


def renamed(t: float) -> tuple[int, str, str]:
    progress, name, status = curve(t)
    return progress, RENAMED[name], status


def test_no_baseline_is_no_evidence() -> None:
    assert stale_deploy(fingerprinted(probes(3, polls(0.3)), "1.5.0"), None, None, None).verdict == "none"


def test_another_version_is_evidence_for_even_with_the_same_states() -> None:
    rows = polls(0.3)
    finding = stale_deploy(fingerprinted(probes(3, rows), "1.2.0"), fingerprinted(probes(3, rows), "1.5.0"),
                           None, None)
    assert finding.verdict == "for" and "version 1.5.0 -> 1.2.0" in finding.next
    assert finding.evidence["states_differ_at"] == []


def test_other_step_names_at_the_same_progress_are_evidence_for() -> None:
    finding = stale_deploy(fingerprinted(probes(3, polls(0.3, shape=renamed)), "1.5.0"),
                           fingerprinted(probes(3, polls(0.3)), "1.5.0"), None, None)
    assert finding.verdict == "for" and finding.evidence["states_differ_at"]


def test_other_messages_under_the_same_step_names_are_evidence_for() -> None:
    other = {**MESSAGES, "AI润色": "正在优化文字表达..."}
    finding = stale_deploy(fingerprinted(probes(3, polls(0.3), messages=other), "1.5.0"),
                           fingerprinted(probes(3, polls(0.3)), "1.5.0"), None, None)
    assert finding.verdict == "for"
    assert all(here[0][0] == "AI润色" for _, here, _ in finding.evidence["states_differ_at"])


def test_a_state_hidden_by_a_404_window_is_not_another_build() -> None:
    """The baseline saw 22 % as "处理中" (validating) and "转录中"; the run, its first 1 s answered 404, saw only
    "转录中" at 22 %. The same band, even the same value, held two states one after the other."""
    late = [row(0.3 * i, None, http=404) for i in range(4)] + polls(0.3, start=1.2)
    finding = stale_deploy(fingerprinted(probes(3, late), "1.5.0"), fingerprinted(probes(3, polls(0.3)), "1.5.0"),
                           None, None)
    assert finding.verdict == "against" and finding.evidence["values_compared"] >= diagnosis.STALE_MIN_VALUES


def test_the_same_states_and_version_are_evidence_against() -> None:
    finding = stale_deploy(fingerprinted(probes(3, polls(0.3)), "1.5.0"), fingerprinted(probes(3, polls(0.3)), "1.5.0"),
                           None, None)
    assert finding.verdict == "against" and "same version" in finding.next


def test_the_same_states_without_a_version_are_evidence_against_that_says_so() -> None:
    finding = stale_deploy(fingerprinted(probes(3, polls(0.3)), None), fingerprinted(probes(3, polls(0.3)), None),
                           None, None)
    assert finding.verdict == "against" and "version_header" in finding.next


def test_too_few_progress_values_polled_on_both_sides_are_no_evidence() -> None:
    """One probe each, polled every 3 s: no progress value was polled twice on both sides."""
    finding = stale_deploy(fingerprinted([record(polls(3.0))], "1.5.0"), fingerprinted([record(polls(3.0))], "1.5.0"),
                           None, None)
    assert finding.verdict == "none" and finding.evidence["values_compared"] < diagnosis.STALE_MIN_VALUES


# -- cold start -------------------------------------------------------------------------------

def test_a_slow_first_upload_is_evidence_for() -> None:
    records = [record(polls(0.3), "0001", upload_s=6.0)] + probes(3, polls(0.3))[1:]
    finding = cold_start(side(records))
    assert finding.verdict == "for" and finding.evidence["first_upload_s"] == 6.0


def test_a_slow_first_answer_is_evidence_for() -> None:
    slow = polls(0.3)
    slow[0] = [*slow[0][:6], 3.0]  # the first poll waited 3 s for its answer
    finding = cold_start(side([record(slow, "0001")] + probes(3, polls(0.3))[1:], idle_before_s=60))
    assert finding.verdict == "for" and finding.evidence["first_first_answer_s"] == pytest.approx(3.01)


def test_a_429_on_the_first_poll_is_an_answer_not_a_cold_start() -> None:
    """Issue 18: the first probe's first poll got a 429 and waited its Retry-After before any progress."""
    limited = [row(0.01, None, http=429)] + polls(0.3, start=3.01)
    finding = cold_start(side([record(limited, "0001")] + probes(3, polls(0.3))[1:], idle_before_s=60))
    assert finding.verdict == "against"
    assert finding.evidence["first_first_answer_s"] == finding.evidence["warm_first_answer_s_p50"]


def test_without_idle_before_a_quick_first_probe_is_no_evidence() -> None:
    finding = cold_start(side(probes(3, polls(0.3))))
    assert finding.verdict == "none" and "--idle-before" in finding.next


def test_after_idle_a_quick_first_probe_is_evidence_against() -> None:
    finding = cold_start(side(probes(3, polls(0.3)), idle_before_s=60))
    assert finding.verdict == "against" and "60 s idle" in finding.next


def test_a_first_probe_not_twice_as_slow_is_no_cold_start() -> None:
    """1.5 s slower than warm uploads of 3 s: more than COLD_MIN_EXTRA_S, less than COLD_MIN_RATIO times."""
    records = [record(polls(0.3), "0001", upload_s=4.5)] + [record(polls(0.3), f"000{i}", upload_s=3.0)
                                                           for i in (2, 3)]
    finding = cold_start(side(records, idle_before_s=60))
    assert finding.verdict == "against" and finding.evidence["first_upload_s"] == 4.5


def test_too_few_warm_probes_are_no_evidence() -> None:
    assert cold_start(side(probes(1, polls(0.3)), idle_before_s=60)).verdict == "none"
    assert cold_start(side(probes(2, polls(0.3)), idle_before_s=60)).verdict == "none"  # one warm probe


# -- rate limiting ----------------------------------------------------------------------------

def test_a_poll_answered_429_is_evidence_for() -> None:
    rows = polls(0.3)
    rows.insert(3, row(0.95, None, http=429))
    assert rate_limiting(side([record(rows)])).verdict == "for"


def test_an_upload_answered_429_is_evidence_for() -> None:
    refused = record([], outcome="upload_error", error="upload refused", upload_status=429)
    finding = rate_limiting(side([refused]))
    assert finding.verdict == "for" and finding.evidence["uploads_429"] == 1


def test_a_job_failed_with_a_rate_limit_code_is_evidence_for() -> None:
    failed = record(polls(0.3, until=2.0) + [row(2.3, 24, status="failed")], outcome="failed",
                    error="OPENAI_RATE_LIMIT_EXCEEDED")
    assert rate_limiting(side([failed])).verdict == "for"


def test_no_429_in_too_few_requests_is_no_evidence() -> None:
    finding = rate_limiting(side(probes(3, polls(3.0))))
    assert finding.verdict == "none" and finding.evidence["requests"] < MIN_REQUESTS


def test_no_429_in_enough_requests_is_evidence_against() -> None:
    finding = rate_limiting(side(probes(3, polls(0.3))))
    assert finding.verdict == "against" and finding.evidence["requests"] >= MIN_REQUESTS


# -- lost state -------------------------------------------------------------------------------

def test_progress_going_backwards_is_evidence_for() -> None:
    rows = polls(0.3)
    rows[8] = row(rows[8][0], 20)
    finding = lost_state(side([record(rows)]))
    assert finding.verdict == "for" and finding.evidence["regressions"] == 1


def test_a_404_for_a_task_already_seen_is_evidence_for() -> None:
    rows = polls(0.3)
    rows[8] = row(rows[8][0], None, http=404)
    finding = lost_state(side([record(rows)]))
    assert finding.verdict == "for" and finding.evidence["not_found_after_seen"] == 1


def test_a_404_before_the_task_was_seen_is_not_lost_state() -> None:
    rows = [row(0.0, None, http=404)] + polls(0.3, start=1.5)
    assert lost_state(side(probes(3, rows))).verdict == "against"


def test_too_few_reads_of_a_seen_task_are_no_evidence() -> None:
    """Issue 18: multi-instance at time scale 0.1, the app cadence: a 404, then the finished job."""
    rows = [row(0.0, None, http=404), row(1.5, 100, "完成", "completed")]
    finding = lost_state(side(probes(4, rows, instances={"sim-0": 1, "sim-1": 1})))
    assert finding.verdict == "none" and finding.evidence["polls_after_seen"] == 0


def test_reads_all_from_one_of_several_instances_are_no_evidence() -> None:
    rows = polls(0.1)
    records = [record(rows, f"{i:04d}", instances={f"sim-{i}": len(rows) - 1, f"sim-{i + 1}": 1}) for i in range(3)]
    finding = lost_state(side(records))
    assert finding.verdict == "none" and finding.evidence["polls_after_seen"] >= MIN_POLLS_AFTER_SEEN
    assert finding.evidence["telling_polls"] == 3


def test_enough_reads_of_seen_tasks_are_evidence_against() -> None:
    finding = lost_state(side(probes(3, polls(0.3))))
    assert finding.verdict == "against" and finding.evidence["telling_polls"] >= MIN_POLLS_AFTER_SEEN
    rows = polls(0.1)
    spread = side([record(rows, f"{i:04d}", instances={"sim-0": 40, "sim-1": 30, "sim-2": 21}) for i in range(3)])
    assert lost_state(spread).verdict == "against"


# -- backend errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["503", "connection", "failed", "upload"])
def test_each_kind_of_error_is_evidence_for(fault: str) -> None:
    rows = polls(0.3)
    kw: dict[str, Any] = {}
    if fault == "503":
        rows.insert(3, row(0.95, None, http=503))
    elif fault == "connection":
        rows.insert(3, row(0.95, None, http=None))
    elif fault == "failed":
        rows = polls(0.3, until=2.0) + [row(2.3, 24, status="failed")]
        kw = {"outcome": "failed", "error": "TRANSCRIPTION_SERVICE_UNAVAILABLE"}
    else:
        rows, kw = [], {"outcome": "upload_error", "error": "ConnectError: refused", "upload_status": None}
    records = probes(3, polls(0.3)) + [record(rows, "0004", **kw)]
    assert backend_errors(side(records)).verdict == "for"


def test_no_error_in_too_few_requests_is_no_evidence() -> None:
    assert backend_errors(side(probes(3, polls(3.0)))).verdict == "none"
    assert backend_errors(side(probes(diagnosis.MIN_PROBES - 1, polls(0.1)))).verdict == "none"


def test_no_error_in_enough_requests_is_evidence_against() -> None:
    assert backend_errors(side(probes(3, polls(0.3)))).verdict == "against"


# -- frontend polling -------------------------------------------------------------------------

def test_app_cadence_probes_that_gave_up_need_a_fine_run() -> None:
    gone = record([row(0.0, None, http=404), row(1.5, None, http=404), row(10.5, None, http=404)],
                  outcome="poll_error", error="task not found after 10 s")
    finding = frontend_polling(side([gone] * 3))
    assert finding.verdict == "none" and "--cadence fine" in finding.next


def test_app_cadence_on_a_time_scaled_backend_is_no_evidence() -> None:
    """Issue 18: at time scale 0.1 the app's 10 s 404 window is 100 scenario seconds."""
    finding = frontend_polling(side(probes(3, polls(3.0)), time_scale=0.1))
    assert finding.verdict == "none" and "time scale 0.1" in finding.next


def test_app_cadence_with_too_few_probes_is_no_evidence() -> None:
    assert frontend_polling(side(probes(diagnosis.MIN_PROBES - 1, polls(0.3)))).verdict == "none"


def test_app_cadence_probes_that_saw_every_job_end_are_evidence_against() -> None:
    assert frontend_polling(side(probes(3, polls(0.3)))).verdict == "against"


def test_a_job_invisible_past_the_apps_404_window_is_evidence_for() -> None:
    late = [row(0.05 * i, None, http=404) for i in range(240)] + polls(0.05, start=12.0, shape=lambda t: curve(t - 12))
    finding = frontend_polling(side(probes(3, late), cadence="fine"))
    assert finding.verdict == "for" and finding.evidence["app_would_give_up"] == 3


def test_the_apps_back_off_on_unreadable_answers_is_a_lag_for_it() -> None:
    """200s without a progress value until 7.5 s: the app backs off 1, 2, 4, 8 s and sees the end 6 s late."""
    def garbled(t: float) -> tuple[Any, str, str]:
        return (None, "", "processing") if t < 7.5 else curve(t)

    finding = frontend_polling(side(probes(3, polls(0.05, shape=garbled)), cadence="fine"))
    assert finding.verdict == "for"
    assert diagnosis.APP_LAG_FOR_S < finding.evidence["app_lag_max_s"] < 2 * diagnosis.APP_LAG_FOR_S


def test_a_404_for_a_task_the_app_had_seen_belongs_to_lost_state() -> None:
    def lost(t: float) -> tuple[Any, str, str]:
        return curve(t / 2)

    rows = polls(0.05, shape=lost)
    rows = [r if not 10.4 <= r[0] <= 10.6 else row(r[0], None, http=404) for r in rows]
    finding = frontend_polling(side(probes(3, rows), cadence="fine"))
    assert finding.verdict == "none" and finding.evidence["app_would_lose_seen_task"] == 3
    assert finding.evidence["app_would_give_up"] == 0


def test_no_completed_job_is_nothing_to_replay() -> None:
    stuck = record([row(0.05 * i, 55) for i in range(100)], outcome="timeout")
    assert frontend_polling(side([stuck] * 3, cadence="fine")).verdict == "none"


def test_lags_after_429s_belong_to_rate_limiting() -> None:
    rows = polls(0.05)
    rows = [r if not 1.0 <= r[0] <= 8.5 else row(r[0], None, http=429) for r in rows]
    finding = frontend_polling(side(probes(3, rows), cadence="fine"))
    assert finding.verdict == "none" and finding.evidence["app_lag_max_s"] > diagnosis.APP_LAG_FOR_S


def test_too_few_replayed_jobs_are_no_evidence() -> None:
    finding = frontend_polling(side(probes(diagnosis.MIN_PROBES - 1, polls(0.05)), cadence="fine"))
    assert finding.verdict == "none"


def test_the_app_seeing_each_result_at_once_is_evidence_against() -> None:
    finding = frontend_polling(side(probes(3, polls(0.05)), cadence="fine"))
    assert finding.verdict == "against" and finding.evidence["app_lag_max_s"] <= diagnosis.APP_LAG_AGAINST_S


def test_a_healthy_fine_run_is_against_every_cause_it_can_judge() -> None:
    run = fingerprinted(probes(3, polls(0.05)), "1.5.0", cadence="fine", idle_before_s=60)
    verdicts = {f.cause: f.verdict for f in diagnose(run, run)}
    assert set(verdicts.values()) == {"against"}, verdicts
