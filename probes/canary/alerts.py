"""Alerts: a pure state machine per target, and the webhook that tells people.

    state + (run healthy?) + K + M  ->  new state + event ("fired" | "resolved" | None)

An alert fires after K consecutive failing runs, resolves after M consecutive
passing runs and never repeats while it is firing. The state lives in the
history store (an ephemeral runner must see the last run's state), and so
does the outbox of events still to be delivered: `message` builds an event's
body once, with its idempotency key, and every delivery sends those bytes. This
module has no I/O except `notify`, which never raises and never outlives its
deadline: a broken webhook must not turn a healthy canary into a failed one,
nor hold it past its schedule.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Literal
from urllib.parse import urlsplit

Event = Literal["fired", "resolved"]

DEFAULT_ALERT_AFTER = 2
DEFAULT_RESOLVE_AFTER = 2
# The whole delivery of one run (every pending alert, every try, the back-off between them) ends within this:
# a webhook that trickles or hangs must not hold the canary and its lock past its schedule (a 5-minute one here);
# what is not delivered stays in the outbox for the next run.
NOTIFY_DEADLINE_S = 20.0
NOTIFY_TRY_S = 10.0  # one try: a webhook slower than this is down
NOTIFY_TRIES = 3  # in one run; the outbox retries over runs (history.DELIVERY_BACKOFF_S)
NOTIFY_BACKOFF_S = (1.0, 4.0)  # sleep before the 2nd and 3rd try: rides out a restart without stalling the run
# Slack shows 40,000 characters at most; a notification is a few lines, so anything longer is a bug or an attack.
MAX_TEXT_CHARS = 2000
MAX_FIELD_CHARS = 120  # a target, label or run id in the text


@dataclass(frozen=True)
class AlertState:
    """One target's alert: firing or not, and the current streak of failing or passing runs."""

    firing: bool = False
    failing: int = 0
    passing: int = 0
    last_run_id: str | None = None


def step(state: AlertState, healthy: bool, alert_after: int = DEFAULT_ALERT_AFTER,
         resolve_after: int = DEFAULT_RESOLVE_AFTER) -> tuple[AlertState, Event | None]:
    """The state after one more run, and the event it causes.

    >>> s, e = step(AlertState(failing=1), healthy=False)
    >>> s.firing, e
    (True, 'fired')
    >>> step(s, healthy=False)[1] is None   # never repeats while firing
    True
    """
    if alert_after < 1 or resolve_after < 1:
        raise ValueError("alert_after and resolve_after must be >= 1")
    if healthy:
        new = replace(state, failing=0, passing=state.passing + 1)
        if state.firing and new.passing >= resolve_after:
            return replace(new, firing=False), "resolved"
        return new, None
    new = replace(state, failing=state.failing + 1, passing=0)
    if not state.firing and new.failing >= alert_after:
        return replace(new, firing=True), "fired"
    return new, None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def as_data(value: Any, limit: int = MAX_FIELD_CHARS) -> str:
    """A string from a config or a server, made inert for Slack: no links, mentions or control characters.

    >>> as_data("<!channel> & <https://x|y>")
    '&lt;!channel&gt; &amp; &lt;https://x|y&gt;'
    """
    text = _CONTROL.sub(" ", str(value))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# A token command's failure as probes.auth words it; only the part before its stderr is kept.
_TOKEN_COMMAND_FAILURE = re.compile(
    r"token_command\b.*?\b(exited with status -?\d+|was killed by signal \d+|timed out after [\d.]+ s|"
    r"printed no token on stdout|not found|is not executable|cannot start)")
_AWS_CODE = re.compile(r"\b([A-Z][A-Za-z]{2,60}(?:Exception|Error))\b")


def unreachable_reason(exc: BaseException) -> str:
    """Why no probe could start, in words safe for a chat channel.

    The exception's text is not passed on: a token command's stderr, a Cognito message or a server's
    words stay in the canary's own log. A token command is named with its exit status only.

    >>> class AuthError(Exception): pass
    >>> unreachable_reason(AuthError("token_command get-token exited with status 1: secret=abc"))
    'the token command failed (exited with status 1)'
    """
    text = str(exc)
    if type(exc).__name__ == "AuthError":
        failure = _TOKEN_COMMAND_FAILURE.match(text)
        if failure:
            return f"the token command failed ({failure.group(1)})"
        if text.startswith(("Cognito", "cannot reach Cognito")):
            code = _AWS_CODE.search(text)
            return f"Cognito sign-in failed ({code.group(1)})" if code else "Cognito sign-in failed"
        return "no token could be had for the target"
    return "the target could not be reached before any probe"


def alert_text(event: Event, target: str, state: AlertState, run_id: str, reasons: list[str]) -> str:
    """The Slack-compatible message. Holds names, counts and numbers only: never a URL or a token."""
    if event == "fired":
        head = f"probes canary FIRING: target `{as_data(target)}` failed {state.failing} run(s) in a row"
    else:
        head = f"probes canary RESOLVED: target `{as_data(target)}` passed {state.passing} run(s) in a row"
    lines = [head, f"last run: {as_data(run_id)}"]
    lines += [f"• {as_data(r)}" for r in reasons[:10]]
    return "\n".join(lines)[:MAX_TEXT_CHARS]


def _where(url: str) -> str:
    """scheme://host of a webhook for a log line: its path usually is the secret (Slack, Teams)."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}" if parts.hostname else "the webhook"
    except ValueError:
        return "the webhook"


def idempotency_key(target: str, run_id: str, event: str) -> str:
    """The same key for every delivery of one event, so a receiver can drop the repeat of an at-least-once send.

    >>> idempotency_key("prod", "r1", "fired") == idempotency_key("prod", "r1", "fired")
    True
    """
    digest = hashlib.sha256(f"probes-canary\0{target}\0{run_id}\0{event}".encode("utf-8")).hexdigest()
    return f"probes-{digest[:32]}"


def message(event: Event, target: str, state: AlertState, run_id: str, ok: bool, reasons: list[str]) -> dict[str, Any]:
    """The webhook's JSON body: Slack's `text` plus the facts, and the event's idempotency key."""
    return {"probes": {"event": event, "target": target, "run_id": run_id, "ok": ok, "failing": state.failing,
                       "passing": state.passing, "idempotency_key": idempotency_key(target, run_id, event)},
            "text": alert_text(event, target, state, run_id, reasons)}


@dataclass(frozen=True)
class Delivery:
    """What one delivery attempt came to; `problem` is safe to store and print (a status or a class name)."""

    ok: bool
    problem: str | None = None
    tries: int = 0


def notify(url: str, body: dict[str, Any], *, deadline_s: float = NOTIFY_DEADLINE_S,
           try_s: float = NOTIFY_TRY_S, tries: int = NOTIFY_TRIES, backoff_s: tuple[float, ...] = NOTIFY_BACKOFF_S,
           sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> Delivery:
    """POST `body` as JSON (with its idempotency key as a header too); ok when the receiver answered 2xx.

    Never raises and never takes longer than `deadline_s` in all: each try gets at most `try_s` of what is left,
    a back-off that would reach past the deadline is not slept. Retries network errors, 429 and 5xx; a 4xx
    other than 429 will not get better and is not retried. A failure is one line on stderr naming the
    webhook's host only.
    """
    from probes.canary.bounded import ExchangeFailed, exchange

    end = clock() + deadline_s
    content = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = {"content-type": "application/json"}
    key = (body.get("probes") or {}).get("idempotency_key") if isinstance(body.get("probes"), dict) else None
    if isinstance(key, str):
        headers["idempotency-key"] = key
    problem, attempt = "not sent", 0
    for attempt in range(1, tries + 1):
        if attempt > 1:
            pause = backoff_s[min(attempt - 2, len(backoff_s) - 1)] if backoff_s else 0.0
            if clock() + pause >= end:
                attempt -= 1
                break
            sleep(pause)
        left = end - clock()
        if left <= 0:
            attempt -= 1
            problem = f"deadline of {deadline_s:g} s reached"
            break
        try:
            answer = exchange("POST", url, content=content, headers=headers, deadline_s=min(try_s, left))
        except ExchangeFailed as exc:
            problem = str(exc)
            if exc.permanent:
                break
            continue
        if 200 <= answer.status < 300:
            return Delivery(True, None, attempt)
        problem = f"HTTP {answer.status}"
        if answer.status < 500 and answer.status != 429:
            break
    print(f"probes: warning: alert notification to {_where(url)} failed after {attempt} "
          f"tr{'y' if attempt == 1 else 'ies'}: {problem}", file=sys.stderr)
    return Delivery(False, problem, attempt)
