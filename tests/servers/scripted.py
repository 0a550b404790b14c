"""A loopback HTTP/1.1 server that plays a script per thankly route and records every request.

    from tests.servers import SCRIPTS, Step, scripted_server

    with scripted_server(SCRIPTS["404-then-ok"]) as base:      # base is the URL, a str
        httpx.post(f"{base}/diary/voice/async", ...)
        base.requests[-1].authorization                         # what the server received

A script maps a route name to a list of `Step`s, consumed in order; the last
one repeats. Routes: ``upload`` (POST /diary/voice/async), ``poll`` (GET
/diary/voice/progress/{task_id}), ``delete`` (DELETE /diary/{id}), ``health``
(GET /health), ``list`` (GET /diary/list); the presigned flow's ``presign``
(POST /diary/audio/presigned-url: a URL on this server signed with the known
`SIGNATURE`), ``put`` (PUT /_s3/...) and ``create`` (POST
/diary/voice/async-with-url, counted as an upload); ``/diaries/...`` is the
same route. A route the script leaves out answers like a healthy thankly would
(`DEFAULT_STEPS`); any other path answers 404.

Steps are counted per route *and key*: the Nth poll of a task gets step N of
``poll`` whoever sends it and whenever, so two clients with their own tasks
see identical answers. The key is the task id for ``poll``, the diary id for
``delete`` and nothing for the others (the Nth upload gets step N).

Strings in a dict/list body and in header values may hold placeholders, filled
per request: ``$TASK_ID`` (a fresh uuid-shaped id on upload, the path's on a
poll), ``$DIARY_ID`` (derived from the task id; the path's on delete),
``$TOKEN`` (the bearer token received), ``$AUTHORIZATION`` (the whole header) and
``$ORIGIN`` (this server's ``http://127.0.0.1:PORT``).
A body or a header value may also be a callable of the `Recorded` request.

How a step is sent is its ``mode`` (see `Mode`); the payloads that make a
step hostile (gzip bomb, deep nesting, huge strings, odd ids, ...) are in
`tests.servers.hostile`. Dependency-free: asyncio streams in a daemon thread.
"""

from __future__ import annotations

import asyncio
import http
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

Route = Literal["upload", "poll", "delete", "health", "list", "presign", "put", "create"]
ROUTES: tuple[Route, ...] = ("upload", "poll", "delete", "health", "list", "presign", "put", "create")

Mode = Literal["normal", "trickle", "endless", "close_mid", "hang", "raw"]
"""How a step's answer goes on the wire.

normal     status line, headers, Content-Length, body
trickle    the same bytes at ``rate_bps`` bytes per second
endless    ``Transfer-Encoding: chunked``; the body, then filler chunks that never end
close_mid  Content-Length of the whole body, half of it, then the connection closes
hang       nothing at all: the request is read and never answered (until the client hangs up)
raw        the body bytes verbatim as the whole answer (malformed HTTP), then close
"""

Body = bytes | dict | list | str | None
BodySource = Body | Callable[["Recorded"], Body]
HeaderValue = str | Callable[["Recorded"], str]

# A 200 KB hostile id percent-encodes to ~600 KB in a request line; requests
# carry it back, so the head limit is above that (h11's default is 16 KiB,
# a limit for a production server, not for a test double that must record).
MAX_HEAD_BYTES = 4 * 1024 * 1024
# Uploads are the fixtures (~100 KB; the 601 s negative one a few MB).
MAX_BODY_BYTES = 64 * 1024 * 1024
# Bodies are written in slices of this size so a 50 MB answer streams.
WRITE_SLICE = 256 * 1024
# An endless body stops by itself after this long, so a client that never
# hangs up cannot keep a test server busy beyond pytest's 120 s timeout.
ENDLESS_MAX_S = 120.0
ENDLESS_CHUNK = b"0" * 65536
# How many bytes of each request body the recorder keeps.
RECORDED_BODY_BYTES = 1024 * 1024
STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Step:
    """One answer. ``body``: a dict/list is JSON-encoded, a str goes as UTF-8 text, bytes as they are.

    ``delay_s``: wait this long before answering (a slow backend).
    ``until_token_changes``: repeat this step while requests carry the same
    Authorization as the one that got it; the first request with another
    Authorization gets the next step (a 401 that only a refreshed token passes).
    """

    status: int = 200
    body: BodySource = None
    headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    delay_s: float = 0.0
    mode: Mode = "normal"
    rate_bps: int = 200
    until_token_changes: bool = False


Script = Mapping[str, Sequence[Step]]


@dataclass
class Recorded:
    """One request as the server received it. ``received_at`` is `time.monotonic()` when its head was complete."""

    index: int
    method: str
    target: str  # the request target exactly as sent (undecoded path and query)
    path: str  # percent-decoded, without the query
    headers: list[tuple[str, str]]  # in order, names as sent
    body: bytes  # the first RECORDED_BODY_BYTES
    body_size: int
    received_at: float
    route: str | None = None
    key: str = ""
    step_index: int = -1  # which step of the route answered; -1 when none did

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    @property
    def authorization(self) -> str | None:
        return self.header("authorization")

    @property
    def token(self) -> str | None:
        """The bearer token, or None."""
        auth = self.authorization or ""
        scheme, _, token = auth.partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None


class BaseURL(str):
    """The server's base URL (``http://127.0.0.1:PORT``) that also holds its log of requests."""

    requests: list[Recorded]
    server: ScriptedServer

    def of(self, route: str) -> list[Recorded]:
        """The requests that hit ``route``, in order of arrival."""
        return [r for r in list(self.requests) if r.route == route]


# The signature every default presigned URL carries: a test knows what must never reach a record or a log.
SIGNATURE = "c0ffee" + "5ec2e7" * 9 + "d00d"  # 64 hex characters, as SigV4's, starting with a letter
CREDENTIAL = "AKIAPROBESSCRIPTED01/20261126/us-east-1/s3/aws4_request"
PRESIGNED_QUERY = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + CREDENTIAL.replace("/", "%2F")
                   + "&X-Amz-Date=20261126T090102Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=content-type%3Bhost"
                   + "&X-Amz-Signature=" + SIGNATURE)
OBJECT_PATH = "/_s3/thankly-scripted/audio/$TASK_ID-recording.m4a"

DEFAULT_STEPS: dict[str, Step] = {
    "health": Step(200, {"status": "healthy", "config": "ok", "timestamp": "2026-01-31T00:00:00+00:00"}),
    "list": Step(200, []),
    "delete": Step(200, {"message": "Diary deleted successfully", "diary_id": "$DIARY_ID"}),
    "upload": Step(200, {"task_id": "$TASK_ID", "status": "processing", "message": "任务已创建，请使用task_id查询进度"}),
    "poll": Step(404, {"detail": "任务不存在或已过期"}),
    "presign": Step(200, {"presigned_url": f"$ORIGIN{OBJECT_PATH}?{PRESIGNED_QUERY}", "s3_key": "audio/x",
                          "final_url": f"$ORIGIN{OBJECT_PATH}"}),
    "put": Step(200, None, headers={"ETag": '"0"'}),
    "create": Step(200, {"task_id": "$TASK_ID", "status": "processing", "message": "任务已创建，请使用task_id查询进度"}),
}


def task_id_for(n: int) -> str:
    """The id of the nth upload (1-based): uuid4-shaped and deterministic."""
    return f"00000000-0000-4000-8000-{n:012d}"


def diary_id_for(task_id: str) -> str:
    """The diary a task's completed answer names: a stable uuid derived from the task id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"diary:{task_id}"))


def match_route(method: str, path: str) -> tuple[str | None, str]:
    """(route, key) for a decoded path; (None, "") when no thankly route matches."""
    if method == "PUT" and path.startswith("/_s3/"):
        return "put", ""
    for prefix in ("/diary/", "/diaries/"):
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix):]
        if method == "POST" and rest == "voice/async":
            return "upload", ""
        if method == "POST" and rest == "voice/async-with-url":
            return "create", ""
        if method == "POST" and rest == "audio/presigned-url":
            return "presign", ""
        if method == "GET" and rest.startswith("voice/progress/") and len(rest) > len("voice/progress/"):
            return "poll", rest[len("voice/progress/"):]
        if method == "GET" and rest == "list":
            return "list", ""
        if method == "DELETE" and rest:
            return "delete", rest
        return None, ""
    if method == "GET" and path == "/health":
        return "health", ""
    return None, ""


def _fill(value: Any, subs: Mapping[str, str]) -> Any:
    """Placeholders replaced in every string of a JSON-like value."""
    if isinstance(value, str):
        if "$" in value:
            for name, text in subs.items():
                value = value.replace(name, text)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, subs) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, subs) for v in value]
    return value


def _encode(body: Body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8", errors="surrogateescape")
    return json.dumps(body, ensure_ascii=False).encode()


class _Cursor:
    """Where one (route, key) is in its list of steps."""

    __slots__ = ("held_auth", "next")

    def __init__(self) -> None:
        self.next = 0
        self.held_auth: str | None = None


class ScriptedServer:
    """The server; use `scripted_server` (a context manager) rather than this directly."""

    def __init__(self, script: Script, host: str = "127.0.0.1", port: int = 0,
                 on_request: Callable[[Recorded], None] | None = None) -> None:
        unknown = set(script) - set(ROUTES)
        if unknown:
            raise ValueError(f"unknown routes in script: {sorted(unknown)}; known: {list(ROUTES)}")
        if any(not steps for steps in script.values()):
            raise ValueError("every route in a script needs at least one step")
        self.script = {route: list(script.get(route) or [DEFAULT_STEPS[route]]) for route in ROUTES}
        self.host, self.port = host, port
        self.on_request = on_request
        self.requests: list[Recorded] = []
        self.uploads = 0
        self.cursors: dict[tuple[str, str], _Cursor] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> str:
        self.thread = threading.Thread(target=self._run, name=f"scripted-server-{id(self):x}", daemon=True)
        self.thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT_S):
            raise RuntimeError("scripted server did not start")
        if self._error is not None:
            raise RuntimeError(f"scripted server failed to start: {self._error}")
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.loop is not None and self.thread is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self._begin_shutdown)
            self.thread.join(STOP_TIMEOUT_S)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port, limit=MAX_HEAD_BYTES))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _begin_shutdown(self) -> None:
        assert self.loop is not None
        if self._server is not None:
            self._server.close()
        pending = list(self.handlers)  # a handler leaves the set before it has finished closing
        for task in pending:
            task.cancel()

        async def finish() -> None:
            if pending:
                await asyncio.wait(pending, timeout=STOP_TIMEOUT_S / 2)
            if self._server is not None:
                await self._server.wait_closed()
            self.loop.stop()  # type: ignore[union-attr]

        self.loop.create_task(finish())

    # -- one connection -----------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                keep_alive = await self._answer(request, reader, writer)
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self.handlers.discard(task)
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except (TimeoutError, ConnectionError, asyncio.CancelledError):
                pass

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[Recorded, bool] | None:
        """The next request and whether the client wants the connection kept; None at EOF or on garbage."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            return None
        received_at = time.monotonic()
        lines = head[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return None
        method, target, version = parts
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers.append((name.strip(), value.strip()))
        lower = {k.lower(): v for k, v in headers}
        body = b""
        if "chunked" in lower.get("transfer-encoding", "").lower():
            body = await self._read_chunked(reader)
        elif lower.get("content-length", "").strip().isdigit():
            length = int(lower["content-length"])
            if length > MAX_BODY_BYTES:
                return None
            body = await reader.readexactly(length)
        path = unquote(target.split("?", 1)[0], errors="surrogateescape")
        recorded = Recorded(index=len(self.requests), method=method, target=target, path=path, headers=headers,
                            body=body[:RECORDED_BODY_BYTES], body_size=len(body), received_at=received_at)
        connection = lower.get("connection", "").lower()
        keep = version == "HTTP/1.1" and connection != "close" or connection == "keep-alive"
        return recorded, keep

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        out = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return bytes(out)
            if len(out) + size > MAX_BODY_BYTES:
                raise ConnectionError("request body too large")
            out += await reader.readexactly(size)
            await reader.readexactly(2)

    # -- one answer ---------------------------------------------------------

    def _pick(self, recorded: Recorded) -> Step | None:
        """The step for this request (advancing its cursor), or None for an unknown path."""
        route, key = match_route(recorded.method, recorded.path)
        recorded.route, recorded.key = route, key
        if route is None:
            return None
        steps = self.script[route]
        cursor = self.cursors.setdefault((route, key), _Cursor())
        auth = recorded.authorization or ""
        if cursor.held_auth is not None:
            if auth == cursor.held_auth:
                recorded.step_index = cursor.next
                return steps[min(cursor.next, len(steps) - 1)]
            cursor.held_auth = None
            cursor.next += 1
        index = min(cursor.next, len(steps) - 1)
        step = steps[index]
        recorded.step_index = index
        if step.until_token_changes:
            cursor.held_auth = auth
        else:
            cursor.next += 1
        return step

    def _substitutions(self, recorded: Recorded) -> dict[str, str]:
        if recorded.route in ("upload", "create", "presign"):  # a presign names the task its create will get
            if recorded.route != "presign":
                self.uploads += 1
            task_id = task_id_for(self.uploads + (recorded.route == "presign"))
            diary_id = diary_id_for(task_id)
        elif recorded.route == "delete":
            task_id, diary_id = "", recorded.key
        else:
            task_id = recorded.key
            diary_id = diary_id_for(task_id) if task_id else ""
        return {"$TASK_ID": task_id, "$DIARY_ID": diary_id, "$TOKEN": recorded.token or "",
                "$AUTHORIZATION": recorded.authorization or "", "$ORIGIN": f"http://{self.host}:{self.port}"}

    async def _answer(self, request: tuple[Recorded, bool], reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> bool:
        recorded, keep_alive = request
        step = self._pick(recorded)
        self.requests.append(recorded)
        if self.on_request is not None:
            self.on_request(recorded)
        if step is None:
            step = Step(404, {"detail": "Not Found"})
        subs = self._substitutions(recorded)
        if step.delay_s > 0:
            await asyncio.sleep(step.delay_s)
        raw = step.body(recorded) if callable(step.body) else step.body
        body = _encode(_fill(raw, subs) if isinstance(raw, (dict, list, str)) else raw)
        if step.mode == "hang":
            while await reader.read(65536):  # until the client hangs up or the server stops
                pass
            return False
        if step.mode == "raw":
            writer.write(body)
            await writer.drain()
            return False
        headers = {k: (v(recorded) if callable(v) else _fill(v, subs)) for k, v in step.headers.items()}
        lower = {k.lower() for k in headers}
        if "content-type" not in lower and (raw is not None or step.mode == "endless"):
            headers["Content-Type"] = "text/plain; charset=utf-8" if isinstance(raw, str) else "application/json"
        if step.mode == "endless":
            headers["Transfer-Encoding"] = "chunked"
        elif "content-length" not in lower:
            headers["Content-Length"] = str(len(body))
        if not keep_alive:
            headers["Connection"] = "close"
        head = _status_line(step.status) + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        head_bytes = head.encode("utf-8", errors="surrogateescape")
        if step.mode == "trickle":
            await _trickle(writer, head_bytes + body, step.rate_bps)
            return keep_alive
        writer.write(head_bytes)
        if step.mode == "endless":
            await _endless(writer, body)
            return False
        if step.mode == "close_mid":
            writer.write(body[: len(body) // 2])
            await writer.drain()
            return False
        await _write_all(writer, body)
        return keep_alive


def _status_line(status: int) -> str:
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return f"HTTP/1.1 {status} {reason}\r\n"


async def _write_all(writer: asyncio.StreamWriter, data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(view), WRITE_SLICE):
        writer.write(view[start:start + WRITE_SLICE])
        await writer.drain()
    await writer.drain()


async def _trickle(writer: asyncio.StreamWriter, data: bytes, rate_bps: int) -> None:
    """``data`` at about ``rate_bps`` bytes per second, in ten writes a second."""
    per_tick = max(1, rate_bps // 10)
    interval = per_tick / rate_bps
    for start in range(0, len(data), per_tick):
        writer.write(data[start:start + per_tick])
        await writer.drain()
        if start + per_tick < len(data):
            await asyncio.sleep(interval)


async def _endless(writer: asyncio.StreamWriter, first: bytes) -> None:
    """Chunked: ``first``, then filler chunks until the client hangs up (or ENDLESS_MAX_S)."""
    if first:
        writer.write(b"%x\r\n%s\r\n" % (len(first), first))
    chunk = b"%x\r\n%s\r\n" % (len(ENDLESS_CHUNK), ENDLESS_CHUNK)
    deadline = time.monotonic() + ENDLESS_MAX_S
    while time.monotonic() < deadline:
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(0)


@contextmanager
def scripted_server(script: Script, port: int = 0,
                    on_request: Callable[[Recorded], None] | None = None) -> Iterator[BaseURL]:
    """A `ScriptedServer` on a free 127.0.0.1 port (or ``port``); yields its `BaseURL`, stops it on exit."""
    server = ScriptedServer(script, port=port, on_request=on_request)
    url = BaseURL(server.start())
    url.requests = server.requests
    url.server = server
    try:
        yield url
    finally:
        server.stop()
