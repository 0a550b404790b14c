"""The alert state machine (pure) and the webhook notification against a real receiver on loopback."""

from __future__ import annotations

import time

import pytest

from probes.canary.alerts import AlertState, alert_text, as_data, notify, step
from tests.canary.services import free_port


def run_sequence(healthy: list[bool], k: int = 2, m: int = 2) -> list[str | None]:
    state, events = AlertState(), []
    for ok in healthy:
        state, event = step(state, ok, k, m)
        events.append(event)
    return events


def test_issue_sequence_fires_once_and_resolves_once() -> None:
    # fast, fast, stale-32, stale-32, stale-32, fast, fast
    events = run_sequence([True, True, False, False, False, True, True])
    assert events == [None, None, None, "fired", None, None, "resolved"]


def test_streaks_reset_and_thresholds() -> None:
    assert run_sequence([False, True, False, True, False]) == [None] * 5  # never 2 failing in a row
    assert run_sequence([False], k=1) == ["fired"]
    assert run_sequence([False, False, True, False, True, True], k=2, m=2) == [None, "fired", None, None, None,
                                                                               "resolved"]
    assert run_sequence([False] * 10, k=3) == [None, None, "fired"] + [None] * 7  # never repeats while firing
    assert run_sequence([True] * 5) == [None] * 5  # nothing to resolve
    with pytest.raises(ValueError):
        step(AlertState(), True, 0, 2)


def test_text_treats_strings_as_data() -> None:
    state = AlertState(firing=True, failing=2)
    text = alert_text("fired", "<!channel> prod\n*bold*", state, "run-1", ["SLO total_s p90 62.00 s > 15 s (n=3)"])
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "\n*bold*" not in text  # a newline in a target cannot start a line of its own
    assert text.startswith("probes canary FIRING: target `&lt;!channel&gt; prod *bold*` failed 2 run(s) in a row")
    assert len(as_data("x" * 5000)) <= 120


def test_notify_posts_json_with_text(webhook) -> None:
    assert notify(webhook.url, "hello", {"probes": {"event": "fired"}}) is True
    [got] = webhook.received
    assert got["json"] == {"probes": {"event": "fired"}, "text": "hello"}
    assert got["content_type"] == "application/json"


def test_notify_retries_server_errors_with_backoff(webhook) -> None:
    webhook.statuses = [503, 500]
    slept: list[float] = []
    assert notify(webhook.url, "x", sleep=slept.append) is True
    assert webhook.attempts == 3 and slept == [1.0, 4.0]


def test_failed_notification_never_raises_and_keeps_the_secret(webhook, capsys) -> None:
    webhook.statuses = [500, 500, 500]
    assert notify(webhook.url, "x", backoff_s=(0.0,)) is False
    assert webhook.attempts == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "failed after 3 tries: HTTP 500" in err
    assert "secret-token" not in err and "127.0.0.1" in err
    webhook.statuses = [404]
    assert notify(webhook.url, "x", backoff_s=(0.0,)) is False  # a 4xx will not get better: one try
    assert webhook.attempts == 4


def test_unreachable_webhook_is_a_warning(capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/secret-token"
    started = time.monotonic()
    assert notify(url, "x", backoff_s=(0.0,)) is False
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert "ConnectError" in err and "secret-token" not in err
    assert notify("ftp://example.invalid/secret-token", "x") is False
