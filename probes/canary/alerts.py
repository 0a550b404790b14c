"""Alerts: a pure state machine per target, and the webhook that tells people.

    state + (run healthy?) + K + M  ->  new state + event ("fired" | "resolved" | None)

An alert fires after K consecutive failing runs, resolves after M consecutive
passing runs and never repeats while it is firing. The state lives in the
history store (an ephemeral runner must see the last run's state); this module
has no I/O except `notify`, which never raises: a broken webhook must not turn
a healthy canary into a failed one.
"""

from __future__ import annotations

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
NOTIFY_TIMEOUT_S = 10.0  # per try: a webhook that takes longer is down, and the canary has a schedule to keep
NOTIFY_TRIES = 3
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


def notify(url: str, text: str, payload: dict[str, Any] | None = None, *, timeout_s: float = NOTIFY_TIMEOUT_S,
           tries: int = NOTIFY_TRIES, backoff_s: tuple[float, ...] = NOTIFY_BACKOFF_S,
           sleep: Callable[[float], None] = time.sleep) -> bool:
    """POST {"text": text, **payload} as JSON; True when the receiver answered 2xx. Never raises.

    Retries network errors, 429 and 5xx; a 4xx other than 429 will not get better and is not retried.
    A failure is one line on stderr naming only the webhook's host.
    """
    import httpx

    body = json.dumps({**(payload or {}), "text": text}, ensure_ascii=False).encode("utf-8")
    problem = "not sent"
    for attempt in range(tries):
        if attempt:
            sleep(backoff_s[min(attempt - 1, len(backoff_s) - 1)] if backoff_s else 0.0)
        try:
            response = httpx.post(url, content=body, headers={"content-type": "application/json"},
                                  timeout=timeout_s, follow_redirects=False)
        except httpx.UnsupportedProtocol as exc:
            problem = type(exc).__name__
            break
        except httpx.HTTPError as exc:
            problem = type(exc).__name__
            continue
        except Exception as exc:  # an invalid URL and the like: still never fail the canary
            problem = type(exc).__name__
            break
        if 200 <= response.status_code < 300:
            return True
        problem = f"HTTP {response.status_code}"
        if response.status_code < 500 and response.status_code != 429:
            break
    print(f"probes: warning: alert notification to {_where(url)} failed after {attempt + 1} "
          f"tr{'y' if attempt == 0 else 'ies'}: {problem}", file=sys.stderr)
    return False
