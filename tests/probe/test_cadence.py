"""The app's polling cadence, as planned times."""

import pytest

from probes.probe.cadence import Cadence, PollResult


def plan(cadence, results, start=0.0):
    due, errors, out = start, 0, []
    for result in results:
        errors = 0 if result is PollResult.OK else errors + 1
        due = cadence.next_due(due, result, errors)
        out.append(round(due, 6))
    return out


def test_app_polls_every_300ms_then_500ms_after_15s():
    app = Cadence("app")
    assert plan(app, [PollResult.OK] * 3) == [0.3, 0.6, 0.9]
    assert app.next_due(14.9, PollResult.OK, 0) == pytest.approx(15.2)
    assert app.next_due(15.0, PollResult.OK, 0) == pytest.approx(15.5)


def test_app_not_found_early_waits_1_5s_then_backs_off():
    app = Cadence("app")
    assert app.next_due(0.1, PollResult.NOT_FOUND, 1) == pytest.approx(1.6)
    assert app.next_due(10.5, PollResult.NOT_FOUND, 1) == pytest.approx(11.5)


def test_app_errors_back_off_1_2_4_8_16_and_stay_at_16():
    assert plan(Cadence("app"), [PollResult.ERROR] * 7) == [1, 3, 7, 15, 31, 47, 63]


def test_success_resets_backoff():
    assert plan(Cadence("app"), [PollResult.ERROR, PollResult.ERROR, PollResult.OK, PollResult.ERROR]) == [
        1, 3, 3.3, 4.3]


def test_rate_limited_honours_retry_after():
    assert Cadence("app").next_due(1.0, PollResult.RATE_LIMITED, 1, retry_after_s=2.5) == 3.5
    assert Cadence("fine", 0.05).next_due(1.0, PollResult.RATE_LIMITED, 1, retry_after_s=0.01) == 1.05


def test_fine_is_fixed_interval_whatever_happens():
    fine = Cadence("fine", 0.05)
    assert plan(fine, [PollResult.OK, PollResult.ERROR, PollResult.NOT_FOUND]) == [0.05, 0.1, 0.15]


@pytest.mark.parametrize(("name", "interval"), [("slow", 0.1), ("fine", 0.0)])
def test_bad_cadence(name, interval):
    with pytest.raises(ValueError):
        Cadence(name, interval)
