"""The alert state machine (pure) and the webhook notification against a real receiver on loopback."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from probes.canary.alerts import (
    AlertState, alert_text, as_data, idempotency_key, message, notify, step, unreachable_reason,
)
from tests.canary.services import free_port, hostile_receiver


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


def test_unreachable_reasons_never_carry_the_exception_text() -> None:
    """A token command's stderr (and a Cognito or server message) stays in the log, out of the chat channel."""
    from probes.auth import AuthError

    stderr = "password=" + "Zq9" * 5
    assert unreachable_reason(AuthError(f"token_command get-token exited with status 3: {stderr}")) == \
        "the token command failed (exited with status 3)"
    assert unreachable_reason(AuthError(f"token_command get-token timed out after 30 s: {stderr}")) == \
        "the token command failed (timed out after 30 s)"
    assert unreachable_reason(AuthError(f"Cognito refused USER_PASSWORD_AUTH (x): NotAuthorizedException: "
                                        f"{stderr}")) == "Cognito sign-in failed (NotAuthorizedException)"
    assert unreachable_reason(AuthError(stderr)) == "no token could be had for the target"
    assert unreachable_reason(RuntimeError(stderr)) == "the target could not be reached before any probe"


def test_text_treats_strings_as_data() -> None:
    state = AlertState(firing=True, failing=2)
    text = alert_text("fired", "<!channel> prod\n*bold*", state, "run-1", ["SLO total_s p90 62.00 s > 15 s (n=3)"])
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "\n*bold*" not in text  # a newline in a target cannot start a line of its own
    assert text.startswith("probes canary FIRING: target `&lt;!channel&gt; prod *bold*` failed 2 run(s) in a row")
    assert len(as_data("x" * 5000)) <= 120


def body(event: str = "fired") -> dict:
    return message(event, "prod", AlertState(firing=True, failing=2), "run-1", False, ["SLO total_s p90 62 s"])


def test_notify_posts_json_with_text_and_idempotency_key(webhook) -> None:
    sent = body()
    assert notify(webhook.url, sent).ok
    [got] = webhook.received
    assert got["json"] == sent and got["json"]["text"].startswith("probes canary FIRING: target `prod`")
    assert got["content_type"] == "application/json"
    key = sent["probes"]["idempotency_key"]
    assert got["idempotency_key"] == key == idempotency_key("prod", "run-1", "fired")
    assert key != idempotency_key("prod", "run-1", "resolved") != idempotency_key("prod", "run-2", "fired")


def test_notify_retries_server_errors_with_backoff(webhook) -> None:
    webhook.statuses = [503, 500]
    slept: list[float] = []
    result = notify(webhook.url, body(), sleep=slept.append)
    assert result.ok and result.tries == 3
    assert webhook.attempts == 3 and slept == [1.0, 4.0]


def test_failed_notification_never_raises_and_keeps_the_secret(webhook, capsys) -> None:
    webhook.statuses = [500, 500, 500]
    result = notify(webhook.url, body(), backoff_s=(0.0,))
    assert not result.ok and result.problem == "HTTP 500" and webhook.attempts == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "failed after 3 tries: HTTP 500" in err
    assert "secret-token" not in err and "127.0.0.1" in err
    webhook.statuses = [404]
    assert not notify(webhook.url, body(), backoff_s=(0.0,)).ok  # a 4xx will not get better: one try
    assert webhook.attempts == 4


def test_unreachable_webhook_is_a_warning(capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/secret-token"
    started = time.monotonic()
    result = notify(url, body(), backoff_s=(0.0,))
    assert not result.ok and result.problem == "ConnectError"
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert "ConnectError" in err and "secret-token" not in err
    assert not notify("ftp://example.invalid/secret-token", body()).ok


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["trickle", "hang"])
def test_a_trickling_or_hanging_webhook_is_cut_at_the_total_deadline(mode: str, capsys) -> None:
    """httpx's timeout bounds each read: a byte every 0.2 s never trips it. The deadline bounds the call."""
    with hostile_receiver(mode) as hostile:
        started = time.monotonic()
        result = notify(hostile.url, body(), deadline_s=1.5, try_s=1.0, backoff_s=(0.2,))
        took = time.monotonic() - started
    assert not result.ok and result.problem.startswith("no answer within")
    assert took < 1.5 + 0.5, took
    assert hostile.requests == 2  # 1.0 s, a 0.2 s pause, then the 0.3 s left
    assert "secret-token" not in capsys.readouterr().err


@pytest.mark.timeout(30)
def test_an_endless_answer_is_read_only_up_to_the_cap() -> None:
    """A 200 with an endless chunked body: delivered, and at most MAX_ANSWER_BYTES of it read (not 2.8 GB)."""
    from probes.canary.bounded import MAX_ANSWER_BYTES, exchange

    with hostile_receiver("endless") as hostile:
        tracemalloc.start()
        try:
            started = time.monotonic()
            answer = exchange("POST", hostile.url, content=b"{}", deadline_s=5)
            took = time.monotonic() - started
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert notify(hostile.url, body(), deadline_s=5).ok
    assert answer.status == 200 and answer.truncated and len(answer.body) == MAX_ANSWER_BYTES
    assert took < 2 and peak < 5_000_000, (took, peak)
