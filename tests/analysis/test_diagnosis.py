"""The slow-transcription rule on hand-made samples: where the bar got to, not the longest stall, names the cause."""

from __future__ import annotations

from typing import Any

from probes.analysis.diagnosis import Side, slow_transcription


def record(progress_at: list[tuple[float, int]]) -> dict[str, Any]:
    rows = [[t, 200, p, 1, "处理中", "processing", 0.01] for t, p in progress_at]
    return {"outcome": "completed", "transcription_s": progress_at[-1][0] - progress_at[0][0], "samples": rows,
            "longest_stall": None}


def stalled(rec: dict[str, Any], at: int, s: float) -> dict[str, Any]:
    return {**rec, "longest_stall": {"progress": at, "s": s, "start_s": 0.0}}


def slow_whisper() -> dict[str, Any]:
    """The healthy timer's 2.3 s at 22 %, a climb to 55 % by 18 s, 55 % until Whisper answers at 20 s."""
    climb = [(2.3 + 0.3 * i, 23 + i) for i in range(20)] + [(8.3 + 0.8 * i, 43 + i) for i in range(13)]
    return stalled(record([(0.0, 22), *climb, (20.0, 58)]), 22, 2.3)  # 22 % outlasts the 55 % plateau


def test_a_slow_whisper_is_named_by_its_climb_to_55_even_when_22_is_held_longest() -> None:
    finding = slow_transcription(Side({}, [slow_whisper()] * 3))
    assert finding.verdict == "for"
    assert finding.evidence["longest_stall_at"] == 22 and finding.evidence["climbed_to"] == 55
    assert "climbed to 55 %" in finding.next and "Whisper's latency" in finding.next


def test_a_bar_frozen_at_32_points_at_the_deployed_code() -> None:
    climb = [(0.4 + 0.3 * i, 23 + i) for i in range(10)]
    frozen = stalled(record([(0.0, 22), *climb, *[(4.0 + i, 32) for i in range(56)], (60.0, 58)]), 32, 56.9)
    finding = slow_transcription(Side({}, [frozen] * 3))
    assert finding.verdict == "for" and finding.evidence["climbed_to"] == 32
    assert "froze at 32 %" in finding.next and "stale deploy" in finding.next


def test_a_quick_transcription_is_evidence_against() -> None:
    quick = record([(0.0, 22), *[(0.3 * i, 22 + i) for i in range(1, 11)], (5.0, 58)])
    finding = slow_transcription(Side({}, [quick] * 3))
    assert finding.verdict == "against" and finding.evidence["climbed_to"] == 32
