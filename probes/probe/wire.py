"""The thankly API on the wire: build requests, parse answers. No I/O, no clock.

Shared by the httpx driver and the Locust user, so both read the server the
same way. Every parser accepts whatever bytes came back and never raises:
a bad answer becomes a classified value, not an exception.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Mapping

import orjson

from probes import __version__
from probes.probe.body import ACCEPT_ENCODING

UPLOAD_PATH = "/diary/voice/async"
HEALTH_PATH = "/health"
REJECTED_STATUSES = frozenset({400, 413, 415, 422})
AUTH_STATUSES = frozenset({401, 403})
TERMINAL_STATUSES = frozenset({"completed", "failed"})
# Response headers that say which instance answered, in order of preference.
INSTANCE_HEADERS = ("x-instance", "x-served-by", "x-backend-server")
USER_AGENT = f"probes/{__version__}"  # backend logs can filter synthetic traffic by it
DEFAULT_USER_NAME = "Probe"  # the app sends the user's display name in X-User-Name

# Caps on what a backend's strings may take in a record (the real ones are < 40 characters):
# a hostile 1 MB step name on every poll would otherwise cost ~600 MB per probe over 5 minutes.
MAX_TEXT = 200      # step_name, message
MAX_ERROR = 300     # error codes, rejection details: one line
MAX_STATUS = 32     # "processing" | "completed" | "failed"
MAX_INSTANCE = 80   # an instance id header
# An id becomes a URL path segment: only RFC 3986 unreserved characters, never "." or "..", so an
# answer cannot steer an authenticated request elsewhere (`../../account?confirm=yes`). thankly's are UUIDs.
MAX_ID = 128
_SAFE_ID = re.compile(r"[A-Za-z0-9_~.-]{1,%d}" % MAX_ID)


def safe_id(value: Any) -> str | None:
    """The id when it is safe to put in a URL path, else None."""
    if isinstance(value, str) and _SAFE_ID.fullmatch(value) and value.strip(".") != "":
        return value
    return None


def one_line(text: Any, limit: int = MAX_ERROR) -> str:
    """A server string as one bounded line: whitespace runs (newlines included) become one space."""
    text = str(text)[: limit * 4]
    return " ".join(text.split())[:limit]


def progress_path(task_id: str) -> str:
    if safe_id(task_id) is None:
        raise ValueError("unsafe task id")
    return f"/diary/voice/progress/{task_id}"


def diary_path(diary_id: str) -> str:
    if safe_id(diary_id) is None:
        raise ValueError("unsafe diary id")
    return f"/diary/{diary_id}"


def request_headers(user_name: str | None = DEFAULT_USER_NAME) -> dict[str, str]:
    """Headers every request carries; the Authorization header is added per request (it may be refreshed)."""
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING}
    if user_name:
        headers["X-User-Name"] = user_name
    return headers


def auth_header(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def upload_form(fixture: Mapping[str, Any], data: bytes) -> tuple[dict, dict]:
    """(files, data) for the multipart upload, exactly as the app sends it."""
    files = {"audio": (fixture["name"], data, fixture["content_type"])}
    return files, {"duration": str(fixture["form_duration"])}


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:  # a ValueError: also raised for invalid UTF-8
        return None


def _detail(payload: Any, status: int) -> str:
    """A one-line reason from a FastAPI-style error answer."""
    detail = payload.get("detail") if isinstance(payload, dict) else None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        loc = detail[0].get("loc", [])
        loc = ".".join(str(p)[:40] for p in loc[:5]) if isinstance(loc, list) else ""
        detail = f"{loc}: {str(detail[0].get('msg', ''))[:MAX_ERROR]}".strip(": ")
    elif detail is not None and not isinstance(detail, str):
        detail = None  # a nested structure is not a reason a person can read in one line
    return one_line(detail) if detail else f"HTTP {status}"


@dataclass(frozen=True)
class UploadAnswer:
    """outcome is None when the job was accepted and polling should start."""

    outcome: str | None
    task_id: str | None
    error: str | None


def parse_upload(status: int, body: bytes) -> UploadAnswer:
    payload = _json(body)
    if status in AUTH_STATUSES:
        return UploadAnswer("auth_error", None, _detail(payload, status))
    if status in REJECTED_STATUSES:
        return UploadAnswer("rejected", None, _detail(payload, status))
    if not 200 <= status < 300:
        return UploadAnswer("upload_error", None, f"HTTP {status}")
    task_id = payload.get("task_id") if isinstance(payload, dict) else None
    if not isinstance(task_id, str) or not task_id:
        return UploadAnswer("upload_error", None, f"HTTP {status} without a task_id")
    if safe_id(task_id) is None:
        return UploadAnswer("upload_error", None, f"HTTP {status} with a task_id that is not a safe id "
                                                  f"({len(task_id)} characters; allowed: A-Z a-z 0-9 _ ~ . -)")
    return UploadAnswer(None, task_id, None)


@dataclass(frozen=True)
class ProgressAnswer:
    """One poll as the app reads it; fields are None when the answer lacked them."""

    progress: int | float | None
    step: int | None
    step_name: str | None
    status: str | None
    message: str | None
    error: str | None
    diary_id: str | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


EMPTY_ANSWER = ProgressAnswer(None, None, None, None, None, None, None)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**31) <= value < 2**31 else None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**31:
        return int(value)
    return None


def _progress(value: Any) -> int | float | None:
    """A progress value: an int, or a finite float kept as it is (99.5 is data, not an error)."""
    if (whole := _int(value)) is not None:
        return whole
    if isinstance(value, float) and math.isfinite(value) and abs(value) < 2**31:
        return value
    return None


def _str(value: Any, limit: int = MAX_TEXT) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def parse_progress(status: int, body: bytes) -> ProgressAnswer:
    if status != 200:
        return EMPTY_ANSWER
    payload = _json(body)
    if not isinstance(payload, dict):
        return EMPTY_ANSWER
    diary = payload.get("diary")
    diary_id = diary.get("diary_id") if isinstance(diary, dict) else None
    error = payload.get("error")
    return ProgressAnswer(
        progress=_progress(payload.get("progress")),
        step=_int(payload.get("step")),
        step_name=_str(payload.get("step_name")),
        status=_str(payload.get("status"), MAX_STATUS),
        message=_str(payload.get("message")),
        error=None if error is None else one_line(error if isinstance(error, str) else orjson.dumps(error)[:1000]),
        diary_id=diary_id if isinstance(diary_id, str) else None,  # checked with safe_id before any use
    )


def retry_after_s(value: str | None, now_epoch: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds (decimals accepted) or an HTTP date.

    Not capped here: how long a probe may wait is the flow's decision (its deadline), and the
    record should say what the server really asked for.
    """
    if not value or len(value) > 64:
        return None
    try:
        seconds = float(value)
    except ValueError:
        if now_epoch is None:
            return None
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now_epoch
        except (TypeError, ValueError, OverflowError, IndexError):
            return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def safe_headers(headers: Mapping[str, str], secrets: tuple[str, ...] = ()) -> dict[str, str]:
    """Response headers fit for a run directory: credentials redacted by name, by shape and by known value."""
    from probes.redact import redact_headers
    from probes.textsafe import MAX_HEADER_VALUE, clip

    return {k: clip(v, MAX_HEADER_VALUE) for k, v in redact_headers(headers, secrets).items()}


def instance_of(header: Callable[[str], str | None]) -> str | None:
    """Which instance answered, from a header getter (httpx and Locust responses differ)."""
    for name in INSTANCE_HEADERS:
        value = header(name)
        if value:
            return value[:MAX_INSTANCE]
    return None
