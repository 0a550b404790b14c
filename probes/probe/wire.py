"""The thankly API on the wire: build requests, parse answers. No I/O, no clock.

Shared by the httpx driver and the Locust user, so both read the server the
same way. Every parser accepts whatever bytes came back and never raises:
a bad answer becomes a classified value, not an exception.

Two upload flows (a target's `upload`):

    multipart   POST /diary/voice/async (audio + duration): uploads and creates the task at once
    presigned   the app's current flow (mobile/src/services/audioUploadService.ts, thankly 3ad9b47):
                POST /diary/audio/presigned-url (file_name, content_type) -> PUT the bytes to the
                presigned_url it answers -> POST /diary/voice/async-with-url (audio_url = final_url,
                duration, and for files <= 5 MB the audio again as base64)

A presigned URL is data from the backend: bounded, http(s) only, plain http only
to the hosts a loopback target allows (`object_url_problem`), and its query
(signature, credential, session token) is a secret (`url_secrets`).
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import unescape

import orjson

from probes import __version__
from probes.probe.body import ACCEPT_ENCODING

UPLOAD_PATH = "/diary/voice/async"
PRESIGN_PATH = "/diary/audio/presigned-url"
CREATE_PATH = "/diary/voice/async-with-url"
UPLOADS = ("presigned", "multipart")  # a target's `upload`: the app's current flow, or the one-request form
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

# The app sends the recording again as base64 beside its URL when it is at most 5 MB
# (audioUploadService.ts L184 FAST_PATH_MAX_BYTES = 5 * 1024 * 1024, L270), so the backend skips the fetch.
BASE64_MAX_BYTES = 5 * 1024 * 1024
# A presigned or final URL comes from the backend. S3's are 500-1,500 characters (~2.5 KB with an STS
# session token); 8 KiB is the request line most servers accept (Apache LimitRequestLine 8190, nginx's
# 8 KiB header buffers), so a longer one could not be sent anyway and is refused unread.
MAX_OBJECT_URL = 8192
# Query values this long or longer are registered as secrets by value (a signature is 64 hex characters,
# a credential ~50); shorter ones ("3600", "s3") are not capabilities, and redacting them everywhere
# would blank ordinary numbers in a record.
MIN_SECRET_CHARS = 8
# Signing parameters that say how, not with what: never secrets (S3 SigV4 and GCS V4 names).
_PUBLIC_PARAMS = re.compile(r"(?i)x-(amz|goog)-(algorithm|date|expires|signedheaders)")
# S3's error document: <Error><Code>SignatureDoesNotMatch</Code><Message>...</Message>...; read with a
# bounded regex over its first bytes (no XML parser for a stranger's body: entities, depth).
S3_ERROR_BYTES = 4096
_S3_CODE = re.compile(rb"<Code>([A-Za-z][A-Za-z0-9.]{0,63})</Code>")
_S3_MESSAGE = re.compile(rb"<Message>([^<]{1,400})</Message>")
MAX_S3_MESSAGE = 80


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


def sends_base64(enabled: bool, size: int) -> bool:
    """Whether the create form carries the audio as base64, as the app decides (0 < size <= 5 MB)."""
    return enabled and 0 < size <= BASE64_MAX_BYTES


def form_data(fields: Sequence[tuple[str, str]], boundary: str) -> bytes:
    """multipart/form-data of text fields (RFC 7578), as the app's FormData sends them.

    httpx encodes a form as multipart only when it carries a file; the app's presign and
    create forms carry none. Values never hold CR or LF (checked by the callers), and the
    boundary is drawn per run, so no value can end a part.
    """
    out = []
    for name, value in fields:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n')
    out.append(f"--{boundary}--\r\n")
    return "".join(out).encode("utf-8")


@dataclass(frozen=True)
class PresignedForms:
    """The two forms of the presigned flow for one fixture, built once a run.

    Every probe sends the same presign form; the create form differs only in its
    audio_url (the probe's own object), spliced between `create_head` and `create_tail`,
    so the base64 of the audio is encoded once, not per probe.
    """

    content_type: str  # multipart/form-data; boundary=...
    presign: bytes
    create_head: bytes
    create_tail: bytes
    base64: bool  # the create form carries the audio (the app's fast path), not only its URL

    def create(self, final_url: str) -> bytes:
        return self.create_head + final_url.encode("ascii") + self.create_tail


def presigned_forms(fixture: Mapping[str, Any], audio: bytes, *, base64_enabled: bool,
                    boundary: str) -> PresignedForms:
    """The presign and create forms as the app sends them (audioUploadService.ts L200, L258-279)."""
    name, content_type = str(fixture["name"]), str(fixture["content_type"])
    presign = form_data([("file_name", name), ("content_type", content_type)], boundary)
    fields = [("duration", str(fixture["form_duration"]))]
    inline = sends_base64(base64_enabled, len(audio))
    if inline:
        fields += [("audio_content_base64", base64.b64encode(audio).decode("ascii")),
                   ("audio_content_type", content_type), ("audio_filename", name)]
    marker = "\x00audio_url\x00"  # where the probe's audio_url goes; never in a field of ours
    body = form_data([("audio_url", marker), *fields], boundary)
    head, _, tail = body.partition(marker.encode())
    return PresignedForms(f"multipart/form-data; boundary={boundary}", presign, head, tail, inline)


def object_url_problem(url: str, plain_http_hosts: frozenset[str] | None = frozenset()) -> str | None:
    """Why a URL from the backend may not be contacted (None: it may), in words that never repeat it.

    The rule: http(s) only, at most MAX_OBJECT_URL characters of printable ASCII, no user or
    password, no fragment; https to any host (the app PUTs wherever the backend says, S3 in any
    region), plain http only to `plain_http_hosts` (a loopback target's own host and the loopback
    names: a local backend with its object store beside it); None for a URL that is never contacted.
    """
    if len(url) > MAX_OBJECT_URL:
        return f"longer than {MAX_OBJECT_URL} characters"
    if not url.isascii() or any(ord(c) < 33 or ord(c) == 127 for c in url):
        return "spaces, control or non-ASCII characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in 0..65535
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL with a host"
    if parts.username is not None or parts.password is not None:
        return "it carries a user or password"
    if parts.fragment:
        return "it carries a fragment"
    if parts.scheme == "http" and plain_http_hosts is not None and parts.hostname not in plain_http_hosts:
        return "plain http to a host other than the loopback target's (https may go anywhere)"
    return None


def url_secrets(url: str) -> tuple[str, ...]:
    """What of a URL must never be written: its query, and each of its values of MIN_SECRET_CHARS or more,
    raw and decoded (a signature, a credential and its key id, a session token), for redaction by value."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return (url,)
    if not query:
        return ()
    found = {query, unquote(query)}
    for part in query.split("&"):
        name, _, raw = part.partition("=")
        if _PUBLIC_PARAMS.fullmatch(unquote(name)):
            continue
        value = unquote(raw.replace("+", " "))
        for text in (raw, value, quote(value, safe=""), value.split("/", 1)[0]):
            if len(text) >= MIN_SECRET_CHARS:
                found.add(text)
    return tuple(found)


@dataclass(frozen=True)
class PresignAnswer:
    """outcome is None when the backend handed out an object URL the probe may PUT to."""

    outcome: str | None
    error: str | None
    presigned_url: str | None = None
    final_url: str | None = None


def parse_presign(status: int, body: bytes, plain_http_hosts: frozenset[str] = frozenset()) -> PresignAnswer:
    """The presign answer classified as an upload answer is; the URLs only when safe to use."""
    payload = _json(body)
    if status in AUTH_STATUSES:
        return PresignAnswer("auth_error", _detail(payload, status))
    if status in REJECTED_STATUSES:
        return PresignAnswer("rejected", _detail(payload, status))
    if not 200 <= status < 300:
        return PresignAnswer("upload_error", f"HTTP {status}")
    urls = {}
    for key in ("presigned_url", "final_url"):
        value = payload.get(key) if isinstance(payload, dict) else None
        if not isinstance(value, str) or not value:
            return PresignAnswer("upload_error", f"HTTP {status} without a {key}")
        # the final URL is only sent back to the backend, never contacted: any host, no plain-http rule
        problem = object_url_problem(value, plain_http_hosts if key == "presigned_url" else None)
        if problem is not None:
            return PresignAnswer("upload_error", f"HTTP {status} with a {key} refused: {problem}")
        urls[key] = value
    return PresignAnswer(None, None, urls["presigned_url"], urls["final_url"])


def object_put_error(status: int, body: bytes) -> str:
    """S3's refusal in one line: the status and its error code ("HTTP 403 SignatureDoesNotMatch"), with
    the message when the code alone does not say why (AccessDenied: "Request has expired")."""
    head = body[:S3_ERROR_BYTES]
    code = _S3_CODE.search(head)
    if code is None:
        return f"HTTP {status}"
    text = f"HTTP {status} {code.group(1).decode('ascii')}"
    message = _S3_MESSAGE.search(head) if code.group(1) == b"AccessDenied" else None
    if message is not None:
        words = one_line(unescape(message.group(1).decode("utf-8", "replace")), MAX_S3_MESSAGE)
        if words and words != "Access Denied":
            text += f" ({words})"
    return text


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
