"""probes compare: verdicts, too few probes, signature check, output files."""

import json

import pytest

from probes.analysis.compare import signature_diff
from probes.report.compare import build_comparison, run_compare
from probes.errors import UsageError
from probes.analysis.stats import Thresholds

TH = Thresholds()


def test_same_profile_twice_is_no_change(fast_run, fast_run_2, capsys):
    assert run_compare(fast_run, fast_run_2) is False
    out = capsys.readouterr().out
    assert "no change" in out and "different code" not in out


def test_fast_vs_stale_is_a_regression(fast_run, stale_run, tmp_path, capsys):
    assert run_compare(fast_run, stale_run, out=tmp_path) is True
    out = capsys.readouterr().out
    assert "regression" in out
    data = json.loads((tmp_path / "comparison.json").read_text(encoding="utf-8"))
    assert data["regression"] is True
    verdicts = {m["metric"]: m["verdict"] for m in data["metrics"]}
    assert verdicts["dwell_32"] == "regression" and verdicts["total_s"] == "regression"
    assert "regression" in (tmp_path / "comparison.md").read_text(encoding="utf-8")


def test_stale_vs_fast_is_an_improvement(fast_run, stale_run):
    c = build_comparison(stale_run, fast_run, TH)
    assert c.verdict == "improvement" and not c.regression


def test_thresholds_can_silence_a_regression(fast_run, stale_run):
    assert run_compare(fast_run, stale_run, max_abs=1000.0) is False


def test_too_few_probes_gives_no_verdict(fast_run, make_run, tmp_path, capsys):
    two = make_run(tmp_path, probes=2, seed=11)
    assert run_compare(fast_run, two) is False
    out = " ".join(capsys.readouterr().out.split())
    assert "no verdict: too few probes (baseline 20, candidate 2 completed; need ≥ 3)" in out


def test_a_candidate_that_always_fails_is_a_regression(fast_run, make_run, tmp_path):
    broken = make_run(tmp_path, probes=10, seed=12, fail_rate=1.0)
    c = build_comparison(fast_run, broken, TH)
    assert c.completed[1] == 0 and c.regression
    assert "failure rate" in c.reason


def test_signature_fires_on_other_step_names(fast_run, make_run, tmp_path, capsys):
    other = make_run(tmp_path, seed=13, lang="en")
    run_compare(fast_run, other)
    out = " ".join(capsys.readouterr().out.split())
    assert "candidate reports progress states that baseline never does; it is probably running different code:" in out
    assert "Transcribing / Listening to your voice..." in out


def test_signature_quiet_for_the_same_scenario(fast_run, fast_run_2):
    c = build_comparison(fast_run, fast_run_2, TH)
    assert not c.signature.fires


def test_signature_diff_rules():
    a = [["20-29", "处理中", "准备"], ["20-29", "转录中", "识别"], ["100", "完成", "成功"]]
    timing = [["20-29", "处理中", "准备"], ["30-39", "转录中", "识别"], ["100", "完成", "成功"]]
    d = signature_diff(a, timing)
    assert not d.fires and d.band_only  # same states, other bands: a side note only
    renamed = [["20-29", "处理中", "准备"], ["20-29", "Transcribing", "识别"], ["100", "完成", "成功"]]
    d = signature_diff(a, renamed)
    assert d.fires and d.only_candidate == [("Transcribing", "识别")] and d.only_baseline == [("转录中", "识别")]
    assert signature_diff(None, a).missing == ["baseline"]


def test_bad_thresholds_are_usage_errors(fast_run):
    with pytest.raises(UsageError):
        run_compare(fast_run, fast_run, alpha=2.0)


def test_time_scaled_runs_compare_in_scenario_seconds(make_run, tmp_path):
    real = make_run(tmp_path / "a", seed=21)
    scaled = make_run(tmp_path / "b", seed=21, time_scale=0.1)
    c = build_comparison(real, scaled, TH)
    assert c.verdict == "no change"
    total = next(m for m in c.metrics if m.metric == "total_s")
    assert total.change == pytest.approx(0, abs=0.05)
    assert any("only the candidate is time-scaled" in n for n in c.notes)


def test_signature_quiet_when_the_candidate_never_got_that_far(fast_run, make_run, tmp_path):
    stuck = make_run(tmp_path, seed=14, fail_rate=1.0)  # every job fails during transcription
    c = build_comparison(fast_run, stuck, TH)
    assert not c.signature.fires
    assert any(who == "candidate" and step == "AI润色" for who, step, _ in c.signature.unreached)


def test_signature_fires_for_new_states_within_reach():
    a = [["20-29", "处理中", "准备"], ["20-29", "转录中", "识别"]]
    b = [["20-29", "处理中", "准备"], ["20-29", "转录中", "识别"], ["20-29", "排队中", "请稍候"]]
    assert signature_diff(a, b).only_candidate == [("排队中", "请稍候")]


def test_a_missed_brief_state_is_a_note_but_a_changed_message_fires():
    base = [["20-29", "转录中", "识别"], ["90-99", "保存中", "准备保存"], ["90-99", "保存中", "保存成功"],
            ["100", "完成", "成功"]]
    missed = [s for s in base if s[2] != "保存成功"]  # polled past the 0.1 s "saved" state
    d = signature_diff(base, missed)
    assert not d.fires and d.brief == [("candidate", "保存中", "保存成功")]
    reworded = missed + [["90-99", "保存中", "已保存"]]  # the same step now says something else
    d = signature_diff(base, reworded)
    assert d.fires and d.only_candidate == [("保存中", "已保存")] and d.only_baseline == [("保存中", "保存成功")]


def test_compare_names_each_sides_diagnosis_and_what_changed(fast_run, stale_run, tmp_path, capsys):
    run_compare(fast_run, stale_run, out=tmp_path)
    out = capsys.readouterr().out
    assert "diagnosis of the baseline: no suspect has evidence" in out
    assert "diagnosis of the candidate: evidence for slow_transcription" in out
    assert "changed: slow_transcription against -> for" in out
    saved = json.loads((tmp_path / "comparison.json").read_text())["diagnosis"]
    assert ["slow_transcription", "against", "for"] in saved["changed"]
