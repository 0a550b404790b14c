"""Payloads and steps that misbehave on purpose, for any route of a script.

Bodies (use as ``Step(body=...)`` or through the ``*_step`` helpers):

    gzip_bomb()              ~0.5 MB on the wire, ~500 MB once decoded (Content-Encoding: gzip)
    huge_json()              a 50 MB JSON progress answer
    deeply_nested_json()     ``[`` x 100,000 then ``]`` x 100,000
    huge_string_progress()   a progress answer whose step_name is 1 MB
    WEIRD_IDS                task/diary ids with CR LF, tab, NUL, ``../../admin?x=1``, 200 KB
    MALFORMED                byte strings that are not an HTTP answer
    odd_final_progress()     a completed answer with progress 99.5, "50" or none

Transport behaviours are a step's ``mode`` (see `tests.servers.scripted.Mode`):
``endless_step``, ``trickle_step``, ``close_mid_step``, ``hang_step``,
``malformed_step``. Secrets echoed back: ``echo_token_step``. Retry-After far
away: ``retry_after_step("1000000000")``, ``retry_after_date_step(3600)``.
"""

from __future__ import annotations

import struct
import time
import zlib
from email.utils import formatdate
from functools import lru_cache
from typing import Any

from tests.servers.scripted import Recorded, Step

# The bomb: what a client that inflates without a bound would hold in memory.
GZIP_BOMB_DECODED_BYTES = 500 * 1024 * 1024
_BOMB_BLOCK = 1024 * 1024  # deflated once, then repeated (see gzip_bomb)
HUGE_BODY_BYTES = 50 * 1024 * 1024
NESTING_DEPTH = 100_000
HUGE_STRING_BYTES = 1024 * 1024
LONG_ID_CHARS = 200_000

WEIRD_IDS: dict[str, str] = {
    "crlf": "7f1c\r\nX-Injected: 1",
    "tab": "7f1c\tadmin",
    "nul": "7f1c\x00admin",
    "traversal": "../../admin?x=1",
    "long": "7" * LONG_ID_CHARS,
}

MALFORMED: dict[str, bytes] = {
    "garbage": b"\x00\xff this is not HTTP at all \r\n\r\n",
    "bad-status-line": b"HTTP/1.1 OK\r\nContent-Length: 2\r\n\r\n{}",
    "bad-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: banana\r\n\r\n{}",
    "header-without-colon": b"HTTP/1.1 200 OK\r\nthis line has no colon\r\nContent-Length: 2\r\n\r\n{}",
    "short-body": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}",
}


@lru_cache(maxsize=4)
def gzip_bomb(decoded_bytes: int = GZIP_BOMB_DECODED_BYTES) -> bytes:
    """A gzip member that inflates to ``decoded_bytes`` of ASCII zeros after a JSON opening.

    Built in ~0.2 s instead of deflating 500 MB: after a full flush the
    deflate output for another block of zeros is the same bytes every time, so
    the middle is one compressed block repeated. Cached per size.
    """
    prefix = b'{"task_id": "bomb", "pad": "'
    block = b"0" * _BOMB_BLOCK
    blocks, tail = divmod(decoded_bytes - len(prefix), _BOMB_BLOCK)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH)
    a = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    b = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    c = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    if b != c:  # a zlib that does not repeat itself: deflate it all (slower, same result)
        return _gzip_streaming(prefix, decoded_bytes)
    rest = comp.compress(b"0" * tail) + comp.flush(zlib.Z_FINISH)
    deflated = b"".join([first, a, b * (blocks - 1), rest]) if blocks >= 1 else first + rest
    crc = zlib.crc32(prefix)
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(b"0" * tail, crc)
    header = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x02\xff"  # deflate, no mtime, max compression, OS unknown
    return header + deflated + struct.pack("<II", crc & 0xFFFFFFFF, decoded_bytes & 0xFFFFFFFF)


def _gzip_streaming(prefix: bytes, decoded_bytes: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [comp.compress(prefix)]
    left = decoded_bytes - len(prefix)
    while left > 0:
        n = min(left, _BOMB_BLOCK)
        out.append(comp.compress(b"0" * n))
        left -= n
    out.append(comp.flush())
    return b"".join(out)


def gzip_bomb_step(status: int = 200) -> Step:
    """The bomb as an answer; built on first use (scripts that hold it cost nothing until then)."""
    return Step(status, lambda _: gzip_bomb(), headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})


def progress_answer(progress: Any = 32, status: str = "processing", step: int = 1, step_name: str = "转录中",
                    message: str = "正在努力识别你的声音...", diary: Any = None, error: Any = None,
                    task_id: str = "$TASK_ID") -> dict[str, Any]:
    """A progress answer in thankly's shape (placeholders filled by the server)."""
    return {"task_id": task_id, "status": status, "progress": progress, "step": step, "step_name": step_name,
            "message": message, "diary": diary, "error": error}


@lru_cache(maxsize=2)
def huge_json(size: int = HUGE_BODY_BYTES) -> bytes:
    """A valid JSON progress answer of exactly ``size`` bytes (a padding field)."""
    head = b'{"task_id": "huge", "status": "processing", "progress": 40, "step": 1, "step_name": "\xe8\xbd\xac\xe5\xbd\x95\xe4\xb8\xad", "message": "", "diary": null, "error": null, "pad": "'
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def huge_body_step() -> Step:
    return Step(200, lambda _: huge_json())


def deeply_nested_json(depth: int = NESTING_DEPTH) -> bytes:
    """Valid JSON that a recursive parser cannot reach the end of."""
    return b"[" * depth + b"]" * depth


def nested_json_step() -> Step:
    return Step(200, deeply_nested_json())


def huge_string_progress(field: str = "step_name", size: int = HUGE_STRING_BYTES) -> dict[str, Any]:
    """A progress answer with one string field of ``size`` characters."""
    answer = progress_answer(progress=40)
    answer[field] = "x" * size
    return answer


def odd_final_progress(kind: str) -> dict[str, Any]:
    """A completed answer whose progress is 99.5 (``"float"``), "50" (``"string"``) or absent (``"missing"``)."""
    answer = progress_answer(progress=100, status="completed", step=4, step_name="完成", message="日记创建成功",
                             diary={"diary_id": "$DIARY_ID", "user_id": "probe", "title": "t"})
    if kind == "float":
        answer["progress"] = 99.5
    elif kind == "string":
        answer["progress"] = "50"
    elif kind == "missing":
        del answer["progress"]
    else:
        raise ValueError(f"unknown kind {kind!r}: float, string or missing")
    return answer


def endless_step() -> Step:
    """A chunked answer that starts like a progress answer and never ends."""
    return Step(200, b'{"task_id": "endless", "status": "processing", "pad": "', mode="endless")


def trickle_step(rate_bps: int = 200, body: Any = None) -> Step:
    """A normal progress answer sent at ``rate_bps`` bytes per second."""
    return Step(200, body if body is not None else progress_answer(progress=33), mode="trickle", rate_bps=rate_bps)


def close_mid_step() -> Step:
    """Headers and half the body of a progress answer, then the connection closes."""
    return Step(200, progress_answer(progress=33), mode="close_mid")


def hang_step() -> Step:
    return Step(200, mode="hang")


def malformed_step(kind: str = "garbage") -> Step:
    return Step(200, MALFORMED[kind], mode="raw")


def echo_token_step(body: dict[str, Any] | None = None) -> Step:
    """An answer that hands the caller's credentials back in the body and in headers."""
    echoed = dict(body) if body is not None else {"status": "healthy", "config": "ok"}
    echoed.update({"authorization": "$AUTHORIZATION", "token": "$TOKEN"})
    return Step(200, echoed, headers={"X-Echo-Authorization": "$AUTHORIZATION", "X-Debug-Token": "$TOKEN"})


def http_date(seconds_from_now: float) -> str:
    return formatdate(time.time() + seconds_from_now, usegmt=True)


def retry_after_step(value: str, status: int = 429) -> Step:
    """A 429 (or 503) whose Retry-After is ``value`` verbatim, e.g. "1000000000", "1e9", "-1"."""
    return Step(status, {"detail": "请求过于频繁，请稍后重试"}, headers={"Retry-After": value})


def retry_after_date_step(seconds_ahead: float = 3600, status: int = 429) -> Step:
    """Retry-After as an HTTP-date ``seconds_ahead`` in the future, computed when the answer is sent."""

    def date(_: Recorded) -> str:
        return http_date(seconds_ahead)

    return Step(status, {"detail": "请求过于频繁，请稍后重试"}, headers={"Retry-After": date})
