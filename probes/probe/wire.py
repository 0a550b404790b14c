"""The thankly API on the wire: build requests, parse answers. No I/O, no clock.

Shared by the httpx driver and the Locust user, so both read the server the
same way. Every parser accepts whatever bytes came back and never raises:
a bad answer becomes a classified value, not an exception.
"""

from __future__ import annotations

import orjson
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Mapping

UPLOAD_PATH = "/diary/voice/async"
HEALTH_PATH = "/health"
REJECTED_STATUSES = frozenset({400, 413, 415, 422})
AUTH_STATUSES = frozenset({401, 403})
TERMINAL_STATUSES = frozenset({"completed", "failed"})
# Response headers that say which instance answered, in order of preference.
INSTANCE_HEADERS = ("x-instance", "x-served-by", "x-backend-server")
_SECRET_HINTS = ("cookie", "auth", "token", "secret", "key", "session", "signature", "credential")


def progress_path(task_id: str) -> str:
    return f"/diary/voice/progress/{task_id}"


def diary_path(diary_id: str) -> str:
    return f"/diary/{diary_id}"


def request_headers(token: str | None, user_name: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if user_name:
        headers["X-User-Name"] = user_name
    return headers


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
        loc = ".".join(str(p) for p in detail[0].get("loc", []))
        detail = f"{loc}: {detail[0].get('msg', '')}".strip(": ")
    text = str(detail) if detail else f"HTTP {status}"
    return " ".join(text.split())[:300]


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
    return UploadAnswer(None, task_id, None)


@dataclass(frozen=True)
class ProgressAnswer:
    """One poll as the app reads it; fields are None when the answer lacked them."""

    progress: int | None
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
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_progress(status: int, body: bytes) -> ProgressAnswer:
    if status != 200:
        return EMPTY_ANSWER
    payload = _json(body)
    if not isinstance(payload, dict):
        return EMPTY_ANSWER
    diary = payload.get("diary")
    diary_id = _str(diary.get("diary_id")) if isinstance(diary, dict) else None
    error = payload.get("error")
    return ProgressAnswer(
        progress=_int(payload.get("progress")),
        step=_int(payload.get("step")),
        step_name=_str(payload.get("step_name")),
        status=_str(payload.get("status")),
        message=_str(payload.get("message")),
        error=None if error is None else " ".join(str(error).split())[:300],
        diary_id=diary_id,
    )


def retry_after_s(value: str | None, now_epoch: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds (decimals accepted) or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        if now_epoch is None:
            return None
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now_epoch
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, 600.0))


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Response headers fit for a run directory: nothing that can carry a credential."""
    return {
        k.lower(): v
        for k, v in headers.items()
        if not any(hint in k.lower() for hint in _SECRET_HINTS)
    }


def instance_of(header: Callable[[str], str | None]) -> str | None:
    """Which instance answered, from a header getter (httpx and Locust responses differ)."""
    for name in INSTANCE_HEADERS:
        value = header(name)
        if value:
            return value[:80]
    return None
