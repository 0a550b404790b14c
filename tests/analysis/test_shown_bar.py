"""Tests for probes.analysis.shown_bar: the app's progress bar, replayed.

Two kinds. Hand-computed timelines: each expected value is worked out from the
app's rules in a comment (times in frames x = 60 t; eased(f) = from + jump *
(1 - (1 - (f - x0) / D)^3) for an animation started at frame x0 over D frames;
the label is Math.round, so it reads k from the value k - 0.5 up). And an
equivalence check: the analytic replay against a literal frame-by-frame
replay of the app's JavaScript (timers, requestAnimationFrame, the callback),
on generated probes.
"""

from __future__ import annotations

import heapq
import math
import random

import pytest

from probes.analysis.shown_bar import (
    MODEL,
    ShownBar,
    js_round,
    record_metrics,
    shown_done_s,
    shown_held_32_s,
    shown_lag_max_s,
    shown_metrics,
    shown_timeline,
)

LAT = 0.01


def row(t, progress, status="processing", http=200, lat=LAT):
    """A probes.jsonl sample row: the answer arrives at t + lat."""
    return [t, http, progress, 1, "转录中", status, lat]


def err(t, http=None, lat=LAT):
    """An error row: a network failure (http None), a 404, a 5xx, ..."""
    return [t, http, None, None, None, None, None if http is None else lat]


def labels_from(bar: ShownBar, t_s: float) -> list[tuple[float, int]]:
    """The change points from t_s on, times rounded to the microsecond for comparison."""
    return [(round(t, 6), label) for t, label in bar.points if t >= t_s - 1e-9]


# --- (d) the upload phase -----------------------------------------------------


def test_upload_timer_adds_2_every_800_ms_up_to_15():
    # Created at 6.0 s: the bar starts at 5 and the upload interval runs from 0:
    # 0.8: 5+2=7, 1.6: 9, 2.4: 11, 3.2: 13, 4.0: 15, 4.8: min(17, 15)=15 (no change), 5.6: 15.
    bar = shown_timeline([], created_s=6.0, until_s=6.0)
    assert bar.points == ((0.0, 5), (0.8, 7), (1.6, 9), (2.4, 11), (3.2, 13), (4.0, 15))
    assert (bar.end_s, bar.ended) == (6.0, "open")


def test_task_creation_animates_to_20_and_starts_the_transition_timer():
    # Multipart: created at 2.0 s (frame 120), no PUT of its own. Upload ticks 0.8: 7, 1.6: 9;
    # none at 2.4 (the creation cleared the interval).
    # 2.0: animate 9 -> 20, jump 11 -> 1500 ms = 90 frames, last frame 210 (3.5 s) sets 20.
    #   label 10 from 9.5: share 0.5/11 = .04545, 1 - cbrt(.95455) = .015387, x 90 = 1.385 -> frame 122.
    #   label 19 from 18.5: share 9.5/11 = .86364, 1 - cbrt(.13636) = .48513, x 90 = 43.66 -> frame 164.
    # 2.8 (frame 168) first transition tick: eased(167) = 9 + 11 (1 - (1 - 47/90)^3) = 9 + 11 x .89094
    #   = 18.800; + 1.2 = 20.000 -> label 20 (the animation alone would show eased(168) = 18.882: 19).
    # 3.5 last frame sets 20. Then min(v + 1.2, 32) every 0.8 s: 3.6: 21.2, 4.4: 22.4, 5.2: 23.6 -> 24
    # (Math.round: 23 is never shown), 6.0: 24.8 -> 25, 6.8: 26, 7.6: 27.2 -> 27, 8.4: 28.4 -> 28,
    # 9.2: 29.6 -> 30, 10.0: 30.8 -> 31, 10.8: 32.0 -> 32, then 32 (the cap).
    bar = shown_timeline([], created_s=2.0, until_s=12.0)
    assert labels_from(bar, 0.0)[:4] == [(0.0, 5), (0.8, 7), (1.6, 9), (round(122 / 60, 6), 10)]
    assert (round(164 / 60, 6), 19) in labels_from(bar, 2.0)
    assert labels_from(bar, 2.75) == [
        (2.8, 20), (3.6, 21), (4.4, 22), (5.2, 24), (6.0, 25), (6.8, 26),
        (7.6, 27), (8.4, 28), (9.2, 30), (10.0, 31), (10.8, 32),
    ]  # fmt: skip
    # The label read 32 from 10.8 s to the end at 12.0 s.
    assert shown_held_32_s(bar) == pytest.approx(1.2, abs=1e-9)


def test_put_end_animates_to_20_then_the_upload_timer_sets_the_bar_down_to_15():
    # Presigned: the PUT ends at 0.05 s (frame 3), the task is created at 3.0 s (frame 180).
    # 0.05: upload progress 100 -> round(100 x 0.2) = 20: animate 5 -> 20, jump 15 -> 1500 ms = 90 frames,
    #   last frame 93 (1.55 s). Label 20 from 19.5: share 14.5/15, 1 - cbrt(1/30) = .67817, x 90 = 61.04
    #   -> frame 3 + 61.04 -> 65 (1.0833 s).
    # 0.8 (frame 48) tick: min(eased(47) + 2, 15) = min(17.997 + 2, 15) = 15, but the frame of that same
    #   instant draws max(15, eased(48) = 5 + 15 x .875 = 18.125): nothing visible.
    # 1.6 tick: no animation any more: min(20 + 2, 15) = 15: the bar goes DOWN to 15; 2.4: 15 again.
    # 3.0: animate 15 -> 20: jump 5 is not < 5 -> 1000 ms = 60 frames. Label 16 from 15.5: share .1,
    #   1 - cbrt(.9) = .034511, x 60 = 2.07 -> frame 183 (3.05 s); at 600 ms it would be frame 182.
    bar = shown_timeline([], created_s=3.0, put_end_s=0.05, until_s=3.1)
    assert bar.label_at(64 / 60) == 19
    assert bar.label_at(65 / 60) == 20
    assert labels_from(bar, 1.1) == [(1.6, 15), (3.05, 16)]
    assert bar.label_at(182 / 60) == 15


# --- (a) the real backend at HEAD ----------------------------------------------


def head_backend(created: float) -> list[list]:
    """The real backend at 3ad9b47 (thankly-observed.md) with a slow transcription, at the app's cadence.

    Polls every 0.3 s for 15 s, then every 0.5 s, from the creation; by request time d after it:
    22 % (d 0-1.2), 23 % (1.5), 24 % (1.8-17.5: Whisper still working), 60 % (18.0, 18.5), 88 % (19.0,
    19.5), completed (20.0).
    """
    rows = [row(round(created + 0.3 * k, 6), 22 if k < 5 else 23 if k == 5 else 24) for k in range(50)]
    rows += [row(round(created + 15 + 0.5 * m, 6), 24 if m < 6 else 60 if m < 8 else 88) for m in range(10)]
    rows.append(row(round(created + 20.0, 6), 100, status="completed"))
    return rows


def test_head_backend_the_bar_holds_32_for_most_of_the_transcription():
    # Presigned: PUT ends at 0.5 s, created at 2.2 s (frame 132). The PUT's animation 5 -> 20 (90 frames
    # from frame 30) ends at frame 120 with exactly 20, so smoothUpdateProgress(20) at creation is a no-op.
    # Answers arrive 10 ms after each request:
    # 2.21 (x 132.6): 22 > 20 + 2? no: the timer runs. Animate 20 -> 22 (600 ms = 36 frames).
    # 2.51 (x 150.6): v = eased(150) = 20 + 2 (1 - (1 - 17.4/36)^3) = 21.724; animate -> 22 (end frame 187).
    # 2.81 (x 168.6): v = 21.724 + .276 x .86208 = 21.962; animate -> 22 (end frame 205 = 3.4167 s).
    # 3.0 (x 180) tick: eased(179) = 21.962 + .038 (1 - (1 - 10.4/36)^3) = 21.986; + 1.2 = 23.186 -> 23.
    #   Frames draw max(23.186, eased < 22); the last frame (205, 3.4167 s) sets exactly 22: DOWN to 22.
    # 3.71 (x 222.6): 23 > 24? no. Animate 22 -> 23 (end frame 259).
    # 3.8 (x 228) tick: eased(227) = 22 + (1 - (1 - 4.4/36)^3) = 22.324; + 1.2 = 23.524 -> 24.
    # 4.01 (x 240.6): 24 > 25.524? no. Animate 23.524 -> 24 (end 277); 4.31 (x 258.6): v = eased(258)
    #   = 23.934, animate -> 24 (end frame 295 = 4.9167 s).
    # 4.6 (x 276) tick: eased(275) = 23.989; + 1.2 = 25.189 -> 25; 4.9167 the last frame sets 24.
    # From then on the 24s are below the bar (no-ops) and the ticks climb from 24: 5.4: 25.2 -> 25,
    # 6.2: 26.4 -> 26, 7.0: 27.6 -> 28, 7.8: 28.8 -> 29, 8.6: 30.0 -> 30, 9.4: 31.2 -> 31,
    # 10.2: min(32.4, 32) = 32 -> 32 ... while the backend says 24, until 60 arrives at 20.21 s.
    bar = shown_timeline(head_backend(2.2), created_s=2.2, put_end_s=0.5)
    assert labels_from(bar, 2.95)[:12] == [
        (3.0, 23), (round(205 / 60, 6), 22), (3.8, 24), (4.6, 25), (round(295 / 60, 6), 24), (5.4, 25),
        (6.2, 26), (7.0, 28), (7.8, 29), (8.6, 30), (9.4, 31), (10.2, 32),
    ]  # fmt: skip
    # 20.21 (x 1212.6): 60 > 34: the timer stops; animate 32 -> 60, jump 28 -> 2000 ms = 120 frames.
    #   Label 33 from 32.5: share .5/28 = .017857, 1 - cbrt(.98214) = .0059880, x 120 = .719
    #   -> frame 1214 (20.2333 s). Held at 32: 20.2333 - 10.2 = 10.0333 s of the 18 s transcription.
    assert bar.label_at(20.2) == 32
    assert (round(1214 / 60, 6), 33) in labels_from(bar, 20.2)
    assert shown_held_32_s(bar) == pytest.approx(1214 / 60 - 10.2, abs=1e-9)
    # The completed answer arrives at 22.21 s: the result screen.
    assert (bar.ended, shown_done_s(bar)) == ("completed", pytest.approx(22.21, abs=1e-9))
    # Lag: 60 arrived at 20.21 (x 1212.6); 20.71 (x 1242.6): 60 again from v = eased(1242)
    #   = 32 + 28 (1 - (1 - 29.4/120)^3) = 47.95 -> 60, jump 12.05 -> 1500 ms = 90 frames;
    # 21.21 (x 1272.6): 88 from v = 47.95 + 12.05 (1 - (1 - 29.4/90)^3) = 56.32, jump 31.68 -> 2500 ms.
    #   Label 60 from 59.5: share (59.5 - 56.32)/31.68 = .1004, 1 - cbrt(.8996) = .03467, x 150 = 5.2
    #   -> frame 1278 (21.3 s): the first 60 waited 21.3 - 20.21 = 1.09 s.
    # 88 (21.21, 21.71) is never reached before the result at 22.21: 1.0 s and 0.5 s, lower bounds.
    assert shown_lag_max_s(bar) == pytest.approx(21.3 - 20.21, abs=1e-9)


def test_head_backend_on_a_multipart_timeline_the_first_answer_stops_the_timer():
    # The same backend, created at the end of a 0.5 s multipart upload: no PUT animation first, so at
    # the first answer (0.51 s, x 30.6) the bar is still 5 (the animation 5 -> 20 started at frame 30
    # has drawn frame 30 only: eased = 5). 22 > 5 + 2: the transition timer stops at once, and the
    # bar follows the answers: 22, 23, then exactly 24 (each animation's last frame) until 60 arrives
    # at 18.51 s (x 1110.6): animate 24 -> 60, jump 36 -> 2500 ms = 150 frames.
    #   31.5: share 7.5/36, 1 - cbrt(.79167) = .074913, x 150 = 11.24 -> frame 1122;
    #   32.5: share 8.5/36, 1 - cbrt(.76389) = .085962, x 150 = 12.89 -> frame 1124.
    # The label read 32 for frames 1122-1123: 2/60 s. The user saw 24 %, not 32 %.
    bar = shown_timeline(head_backend(0.5), created_s=0.5)
    assert bar.label_at(15.0) == 24
    assert shown_held_32_s(bar) == pytest.approx(2 / 60, abs=1e-9)
    assert (round(1122 / 60, 6), 32) in labels_from(bar, 18.0)


# --- (b) the simulator's healthy virtual climb ---------------------------------


def test_sim_climb_timer_stops_when_the_backend_is_more_than_2_ahead():
    # Multipart, created at 0.5 s (frame 30): animate 5 -> 20 (90 frames). Answers 22 x 4, then
    # +1 every poll (the simulator: 22 % for 1.2 s, then 1 % every 0.3 s), arriving at 0.51 + 0.3 k.
    # 0.51 (x 30.6): v = eased(30) = 5; 22 > 5 + 2: the timer stops. Animate 5 -> 22 (jump 17: 90 frames).
    # 0.81 (x 48.6): v = 5 + 17 (1 - (1 - 17.4/90)^3) = 13.076; animate -> 22 (jump 8.924: 60 frames).
    # 1.11 (x 66.6): v = 13.076 + 8.924 (1 - (1 - 17.4/60)^3) = 18.806; animate -> 22 (36 frames).
    # 1.3 (x 78): the first tick of the timer would have been here: eased(77) = 18.806 + 3.194
    #   (1 - (1 - 10.4/36)^3) = 20.851, + 1.2 = 22.05 -> 22. Stopped, the frame draws eased(78)
    #   = 18.806 + 3.194 (1 - (1 - 11.4/36)^3) = 20.981 -> 21.
    # 1.41 (x 84.6): v = eased(84) = 18.806 + 3.194 x .86208 = 21.559 -> 22 (36 frames to 22).
    # 1.71 (x 102.6): 23: v = 21.559 + .441 x .86208 = 21.939; animate -> 23, jump 1.061 (36 frames).
    #   Label 23 from 22.5: share .561/1.061 = .5287, 1 - cbrt(.4713) = .2218, x 36 = 7.98
    #   -> frame 111 (1.85 s).
    progress = [22, 22, 22, 22] + list(range(23, 60))
    samples = [row(round(0.5 + 0.3 * k, 6), p) for k, p in enumerate(progress)]
    bar = shown_timeline(samples, created_s=0.5)
    assert bar.label_at(78 / 60) == 21
    assert bar.label_at(110 / 60) == 22
    assert bar.label_at(111 / 60) == 23
    # With no timer the bar only follows the answers (each within ~1 point of the backend): 32 is
    # read only while the climb passes it, far under the 3 s criterion.
    assert shown_held_32_s(bar) < 0.5


# --- (c) the timer sets the bar down -------------------------------------------


def c_samples() -> list[list]:
    """Answers of 30.3 % (request 8.64 s) and 33 % (request 9.44 s) on a presigned timeline."""
    return [row(8.64, 30.3), row(9.44, 33)]


def test_transition_timer_sets_the_bar_down_to_32():
    # PUT ends 0.5 s, created 2.2 s: v = 20 at creation (as above); the ticks 3.0, 3.8, ..., 8.6 add
    # 1.2 eight times: 29.6 at 8.6 s (label 30).
    # 8.65 (x 519): 30.3 > 29.6 + 2? no. Animate 29.6 -> 30.3 (600 ms, last frame 555: exactly 30.3).
    # 9.4 (x 564) tick: min(30.3 + 1.2, 32) = 31.5 -> Math.round: 32.
    # 9.45 (x 567): 33 > 31.5 + 2 = 33.5? no: the timer keeps running. Animate 31.5 -> 33 (jump 1.5,
    #   600 ms = 36 frames, last frame 603 = 10.05 s sets 33). Label 33 from 32.5: share 1/1.5,
    #   1 - cbrt(1/3) = .30664, x 36 = 11.04 -> frame 579 (9.65 s).
    # 10.2 (x 612) tick: min(33 + 1.2, 32) = 32: DOWN to 32, and it stays there (no answer follows).
    bar = shown_timeline(c_samples(), created_s=2.2, put_end_s=0.5, until_s=10.5)
    assert labels_from(bar, 8.5) == [(8.6, 30), (9.4, 32), (9.65, 33), (10.2, 32)]
    # Held at 32: (9.65 - 9.4) + (10.5 - 10.2) = 0.25 + 0.3 = 0.55 s.
    assert shown_held_32_s(bar) == pytest.approx(0.55, abs=1e-9)
    # Lag: 30.3 -> label 30, already shown at 8.65: 0; 33 at 9.45 -> shown from 9.65: 0.2 s.
    assert shown_lag_max_s(bar) == pytest.approx(0.2, abs=1e-9)


def test_label_is_javascript_math_round():
    # Math.round rounds halves up: 30.5 -> 31, 31.5 -> 32, 32.5 -> 33 (Python's round gives 30, 32, 32).
    assert [js_round(x) for x in (30.5, 31.5, 32.5, 31.49, 0.0)] == [31, 32, 33, 31, 0]


# --- (e) a failed job, a probe that never completed ---------------------------------


def test_failed_job_ends_the_bar_at_the_failed_answer():
    # Multipart, created 0.5: 22 at 0.51 (stops the timer), then "failed" (progress 100 in the body)
    # at 2.01: the app's callback gets 100 but throws at once; the bar leaves at 2.01, no result.
    samples = [row(0.5, 22), row(2.0, 100, status="failed")]
    bar = shown_timeline(samples, created_s=0.5)
    assert (bar.ended, bar.end_s) == ("failed", pytest.approx(2.01, abs=1e-9))
    assert shown_done_s(bar) is None
    assert bar.answers == ((pytest.approx(0.51), 22.0),)  # the failed answer's 100 is never drawn
    assert max(label for _, label in bar.points) == 22
    assert all(t < 2.01 for t, _ in bar.points)


def test_never_completed_probe_is_open_until_the_last_answer():
    # The (a) timeline cut at 15 s: the bar has read 32 since 10.2 s: 15 - 10.2 = 4.8 s, no result.
    bar = shown_timeline(head_backend(2.2), created_s=2.2, put_end_s=0.5, until_s=15.0)
    assert (bar.ended, bar.end_s, shown_done_s(bar)) == ("open", 15.0, None)
    assert shown_held_32_s(bar) == pytest.approx(15.0 - 10.2, abs=1e-9)
    # Cut at 20.6 s: the 60 that arrived at 20.21 is not shown yet (label 60 only at 21.3 s): its lag
    # runs to the end, 20.6 - 20.21 = 0.39 s, a lower bound and the longest (the first 22, at 2.21,
    # waited until frame 146: label 22 from 21.5, share 1.5/2, 1 - cbrt(.25) = .37004, x 36 = 13.3
    # -> 132.6 + 13.3 -> 146 (2.4333 s): 0.2233 s).
    cut = shown_timeline(head_backend(2.2), created_s=2.2, put_end_s=0.5, until_s=20.6)
    assert shown_lag_max_s(cut) == pytest.approx(20.6 - 20.21, abs=1e-9)
    # Without until_s an open timeline ends at the last sample's arrival (a 404 too): 12.0 + 0.01.
    open_bar = shown_timeline([*c_samples(), err(12.0, 404)], created_s=2.2, put_end_s=0.5)
    assert (open_bar.ended, open_bar.end_s) == ("open", pytest.approx(12.01, abs=1e-9))


# --- (f) 404s and errors reach no callback -------------------------------------------


def test_errors_and_early_404s_do_not_move_the_bar():
    # The (c) timeline with a network error, an early 404 (arrives 9.0 - 2.2 = 6.8 s after polling
    # began: < 10 s), a 500, a 429, a 401 and a 200 without progress interleaved: the same bar.
    noisy = [
        err(3.5, 500), err(4.0, 404), err(8.0), err(9.0, 404), err(9.2, 500), err(9.3, 429), row(9.35, None),
        c_samples()[0], err(9.5, 401), c_samples()[1], err(10.0, 503),
    ]  # fmt: skip
    quiet = shown_timeline(c_samples(), created_s=2.2, put_end_s=0.5, until_s=10.5)
    bar = shown_timeline(noisy, created_s=2.2, put_end_s=0.5, until_s=10.5)
    assert bar.points == quiet.points
    assert shown_metrics(bar) == shown_metrics(quiet)
    # Any 2xx is response.ok: a 202 carrying 60 % arrives at 3.5 s (x 210) while the bar is 21.2 (the
    # 3.0 s tick): 60 > 23.2 stops the timer; animate 21.2 -> 60 over 2500 ms = 150 frames; at frame 239
    # (3.9833 s): 21.2 + 38.8 (1 - (1 - 29/150)^3) = 21.2 + 38.8 x .47508 = 39.63 -> 40.
    accepted = shown_timeline([row(3.49, 60, http=202)], created_s=2.2, put_end_s=0.5, until_s=4.0)
    assert accepted.answers == ((pytest.approx(3.5), 60.0),)
    assert accepted.label_at(239 / 60) == 40


def test_a_404_after_10_s_of_polling_ends_the_bar():
    # Polling began at the creation, 2.2 s. A 404 arriving at 12.19 (9.99 s later) waits and retries;
    # one arriving at 12.2 (10.0 s later: elapsed < 10000 ms is false) ends it: TASK_COMPLETED_OR_EXPIRED.
    early = shown_timeline([err(12.18, 404), row(12.5, 24)], created_s=2.2, put_end_s=0.5)
    assert early.ended == "open"
    late = shown_timeline([err(12.19, 404), row(12.5, 24)], created_s=2.2, put_end_s=0.5)
    assert (late.ended, late.end_s, shown_done_s(late)) == ("expired", pytest.approx(12.2, abs=1e-9), None)


def test_polling_gives_up_after_5_minutes():
    # pollTaskProgress loops while Date.now() - startTime < 5 min: a request 300 s after the creation
    # (0.5 + 300 = 300.5) is never sent; the app throws and the bar leaves then. One at 300.4 still runs.
    bar = shown_timeline([row(0.5, 22), row(300.4, 30), row(300.5, 31)], created_s=0.5)
    assert (bar.ended, bar.end_s, shown_done_s(bar)) == ("gave_up", 300.5, None)
    assert bar.answers[-1] == (pytest.approx(300.41), 30.0)


# --- records, bad input -------------------------------------------------------------


def test_record_metrics_from_a_probes_jsonl_record():
    samples = head_backend(0.5)
    record = {"task_id": "t-1", "upload_s": 0.5, "samples": samples}
    expected = shown_metrics(shown_timeline(samples, created_s=0.5))
    got = record_metrics(record)
    assert got == {k: round(v, 6) for k, v in expected.items()}
    assert got["shown_done_s"] == 20.51 and got["shown_held_32_s"] == round(2 / 60, 6)
    # Presigned: the caller passes the create request's end and the PUT's end.
    presigned = record_metrics({"task_id": "t-2", "samples": head_backend(2.2)}, created_s=2.2, put_end_s=0.5)
    assert presigned["shown_held_32_s"] == round(1214 / 60 - 10.2, 6)
    none = dict.fromkeys(("shown_held_32_s", "shown_done_s", "shown_lag_max_s"))
    assert record_metrics({"task_id": None, "upload_s": 0.5, "samples": []}) == none  # upload failed
    assert record_metrics({"task_id": "t", "upload_s": "soon", "samples": []}) == none


def test_bad_rows_are_skipped_and_a_bad_creation_time_is_an_error():
    junk = [None, "x", [1, 2], [float("nan"), 200, 50, 1, "", "processing", 0.0],
            [-1.0, 200, 50, 1, "", "processing", 0.0], [9.0, True, 50, 1, "", "processing", 0.0],
            [9.1, "200", 50, 1, "", "processing", 0.0]]  # fmt: skip
    quiet = shown_timeline(c_samples(), created_s=2.2, put_end_s=0.5, until_s=10.5)
    assert shown_timeline(junk + c_samples(), created_s=2.2, put_end_s=0.5, until_s=10.5).points == quiet.points
    for bad in (float("nan"), -1.0, None, "2.2"):
        with pytest.raises(ValueError, match="created_s"):
            shown_timeline([], created_s=bad)  # type: ignore[arg-type]
    assert quiet.model == MODEL == "thankly-app@3ad9b47"


# --- the analytic replay against a literal frame-by-frame replay --------------------------


def frame_by_frame(samples, created_s, put_end_s=None):
    """The app's JavaScript, literally: timers, requestAnimationFrame at 60 fps, the poll callback.

    A queue of (frame, class, seq, job): at one instant events (class 0) run first, then timer ticks
    (1), then animation frames (2). Returns (points, end_s, ended, answers) like ShownBar.
    """
    queue: list = []
    seq = [0]
    st = {"cur": 5.0, "anim": 0, "live": set(), "end": None, "now": 0.0}

    def at(x, cls, job):
        seq[0] += 1
        heapq.heappush(queue, (x, cls, seq[0], job))

    def snap(t):
        return round(t * 60, 9)

    def set_interval(start, fn):
        handle = object()
        st["live"].add(handle)

        def tick(k):
            def run():
                if handle in st["live"]:
                    fn()
                    at(round(start + 48 * (k + 1), 9), 1, tick(k + 1))

            return run

        at(round(start + 48, 9), 1, tick(1))
        return handle

    def smooth(target):  # RecordingModal.tsx smoothUpdateProgress
        cur = st["cur"]
        safe = max(min(target, 100), cur)
        diff = safe - cur
        if diff <= 0.01:
            return
        ms = 600 if diff < 5 else 1000 if diff < 10 else 1500 if diff < 20 else 2000 if diff < 30 else 2500
        frames = ms * 60 / 1000
        st["anim"] += 1
        token, start = st["anim"], st["now"]

        def animate():
            if st["anim"] != token:
                return  # cancelled
            p = min((st["now"] - start) / frames, 1)
            st["cur"] = max(st["cur"], cur + (safe - cur) * (1 - (1 - p) ** 3))
            if p < 1:
                at(st["now"] + 1, 2, animate)
            else:
                st["cur"] = safe

        at(float(math.ceil(start)), 2, animate)

    def upload_tick():
        st["cur"] = min(st["cur"] + 2, 15)

    upload = set_interval(0.0, upload_tick)
    transition = {}

    def created():
        st["live"].discard(upload)
        smooth(20)

        def tick():
            st["cur"] = min(st["cur"] + 1.2, 32)

        transition["h"] = set_interval(snap(created_s), tick)

    at(snap(created_s), 0, created)
    if put_end_s is not None:
        at(snap(min(put_end_s, created_s)), 0, lambda: smooth(max(20, st["cur"])))

    def end(kind, t):
        return lambda: st.update(end=(kind, t))

    answers = []
    last = created_s
    for t, http, progress, _, _, status, lat in samples:
        arrival = max(t + (lat or 0), created_s)
        last = max(last, arrival)
        if http == 404 and arrival - created_s >= 10:  # diaryService.ts L1138-1153
            at(snap(arrival), 0, end("expired", arrival))
        elif http is None or not 200 <= http <= 299:  # L1155-1157, L1262-1298: back-off, no callback
            continue
        elif status in ("completed", "failed"):  # L1166-1199
            at(snap(arrival), 0, end(status, arrival))
        else:  # L1201-1252

            def callback(p=progress, a=arrival):
                def run():
                    if p is not None:
                        answers.append((a, p))
                    value = p or 0
                    if value > st["cur"] + 2:
                        st["live"].discard(transition.get("h"))
                    smooth(value)

                return run

            at(snap(arrival), 0, callback())
    points = [(0.0, 5)]
    while queue and st["end"] is None and queue[0][0] <= snap(last):
        st["now"] = x = queue[0][0]
        while queue and queue[0][0] == x and st["end"] is None:
            heapq.heappop(queue)[3]()
        label = math.floor(st["cur"] + 0.5)
        if st["end"] is None and label != points[-1][1]:
            points.append((x / 60, label))
    kind, t_end = st["end"] or ("open", last)
    return [p for p in points if p[0] < t_end], t_end, kind, answers


def generated_probe(seed: int) -> tuple[list[list], float, float | None]:
    """A random probe: times on a grid (0.05 s, 1/60 s, 0.1 s or 1 ms, so ties happen), answers that
    climb, stall, go back and jump, 404s and 5xx among them, sometimes a completed or failed end."""
    r = random.Random(seed)
    grid = r.choice([0.05, 1 / 60, 0.1, 0.001])

    def on_grid(v):
        return round(round(v / grid) * grid, 6)

    created = on_grid(r.uniform(0.05, 3.0))
    put_end = on_grid(r.uniform(0.0, created)) if r.random() < 0.6 else None
    t, progress, samples = created, r.choice([15, 22, 30, 31, 33]), []
    for _ in range(r.randint(0, 70)):
        lat = on_grid(r.uniform(0.0, 0.3))
        kind = r.random()
        if kind < 0.04:
            samples.append(err(t, r.choice([None, 404, 500, 429]), lat))
        elif kind < 0.06:
            samples.append(row(t, None, lat=lat))
        else:
            progress = max(0, min(105, progress + r.choice([0, 0, 0, 1, 1, 2, 3, 10, 30, -1, -3])))
            samples.append(row(t, progress, lat=lat))
        t = on_grid(t + lat + r.choice([0.3, 0.3, 0.5, 0.8, 1.6]))
    end = r.random()
    if end < 0.4:
        samples.append(row(t, 100, status="completed", lat=0.0))
    elif end < 0.5:
        samples.append(row(t, progress, status="failed", lat=0.0))
    return samples, created, put_end


def test_analytic_replay_equals_the_frame_by_frame_replay():
    endings = set()
    for seed in range(200):
        samples, created, put_end = generated_probe(seed)
        bar = shown_timeline(samples, created_s=created, put_end_s=put_end)
        points, end_s, ended, answers = frame_by_frame(samples, created, put_end)
        assert list(bar.points) == points, seed
        assert (bar.end_s, bar.ended, list(bar.answers)) == (pytest.approx(end_s, abs=1e-12), ended, answers), seed
        endings.add(ended)
    assert endings == {"open", "completed", "failed", "expired"}
