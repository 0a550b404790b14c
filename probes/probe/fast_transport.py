"""An httpx transport for big runs: keep-alive HTTP/1.1 connections parsed by httptools.

Why: a poll is the same small GET every 300 ms from hundreds of probes. Through
aiohttp (the httpx-aiohttp transport) one cost ~0.35 ms of CPU before any of our
own work, which held one process near 375 probes; over an asyncio protocol with
httptools (the parser uvicorn uses) it costs ~0.13 ms (BENCHMARKS.md). And
httpx's own pool (httpcore) looks at every connection for every request, so
hundreds of uploads at once cost it quadratic time (encode/httpx#3215). From
FAST_FROM probes in flight (probes.probe.driver) every request of the run comes
here; below that the regular httpx client serves them (proxies, cookies).

Scope, and nothing more: http or https, no proxy; a request body sent whole
with its Content-Length (an upload); responses framed by Content-Length,
chunked, or ended by the server closing, each body capped at MAX_BODY_BYTES.
Only a GET may reuse an idle connection and be sent again when the server had
closed it unseen: a POST goes on a fresh connection, never twice. Failures
surface as httpx exceptions, so a probe records them like any other.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpx
import httptools

from probes.probe.body import MAX_BODY_BYTES

Origin = tuple[str, str, int]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes, bool]  # status, raw headers, body, connection reusable
DEFAULT_TIMEOUT_S = 15.0


class _Stale(Exception):
    """A reused connection closed before answering: the server timed it out; send again on a new one."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()  # kept: each get_running_loop() costs a getpid() on 3.11
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.closed = False
        self.waiter: asyncio.Future | None = None
        self.answered = False  # any byte of the current answer arrived
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.headers_done = False
        self.framed = False  # Content-Length or chunked: the parser knows where the answer ends
        self.size = 0  # body bytes of the current answer: an endless body stops at MAX_BODY_BYTES
        self.deadline = 0.0  # loop time by which the current answer must be whole (FastTransport's sweeper)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.answered = True
        if self.parser is None:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        # The parser and the transport point back at this protocol: cut the cycles so a closed
        # connection is freed by reference counting (the collector is off while probes run).
        self.transport = None
        parser, self.parser = self.parser, None
        if self.waiter is None or self.waiter.done():
            return
        if self.headers_done and not self.framed:  # the answer ends where the connection does
            self.waiter.set_result(self._answer(parser))
        elif not self.answered:
            self.waiter.set_exception(_Stale())
        else:
            self._fail(httpx.RemoteProtocolError("server disconnected mid-answer"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_BODY_BYTES:
            self._fail(httpx.ReadError(f"answer over {MAX_BODY_BYTES // 1024} KB on the wire"))
            self.close()
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self._answer())

    # ours
    def _answer(self, parser: httptools.HttpResponseParser | None = None) -> Answer:
        parser = parser or self.parser
        assert parser is not None
        keep = not self.closed and self.framed and parser.should_keep_alive()
        return parser.get_status_code(), self.headers, b"".join(self.body), keep

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def start(self, raw: bytes, deadline: float) -> asyncio.Future:
        """Send one request; the future answers with the whole answer (or fails by `deadline`, loop time)."""
        self.waiter = waiter = self.loop.create_future()
        self.answered, self.headers, self.body, self.headers_done, self.framed = False, [], [], False, False
        self.size = 0
        self.deadline = deadline
        assert self.transport is not None
        self.transport.write(raw)
        return waiter

    def expire(self) -> None:
        """The deadline passed without a whole answer (called by FastTransport's sweeper)."""
        self._fail(httpx.ReadTimeout("no answer in time"))


def origin_of(url: httpx.URL) -> Origin:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


def serialize(request: httpx.Request, body: bytes = b"") -> bytes:
    """The request as HTTP/1.1 bytes: built once and re-sent as is (a poll is the same bytes each time)."""
    head = [request.method.encode("ascii") + b" " + request.url.raw_path + b" HTTP/1.1",
            *(k + b": " + v for k, v in request.headers.raw)]
    if body and "content-length" not in request.headers:
        head.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join([*head, b"", body])


class FastTransport(httpx.AsyncBaseTransport):
    """Requests over pooled keep-alive connections (one per concurrent prober, reused LIFO).

    Deadlines are checked by one sweeper every SWEEP_S rather than a timer per request: with
    thousands of polls a second, creating and cancelling a timer each was a measurable share of
    the CPU (BENCHMARKS.md, "P2 regression"). A request may so overrun its timeout by up to SWEEP_S.
    """

    SWEEP_S = 0.1

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._all: set[_Connection] = set()
        self._busy: set[_Connection] = set()
        self._sweeper: asyncio.Task | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        status, headers, body = await self.send(request)
        # a stream, not content=: httpx would run the body through its decoders at once
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body), request=request,
                              extensions={"http_version": b"HTTP/1.1"})

    async def send(self, request: httpx.Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """(status, raw headers, raw body) of the answer: what the driver reads, without an httpx.Response."""
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        if request.method == "GET" and request.headers.get("content-length") not in (None, "0"):
            raise ValueError("FastTransport sends a GET without a body")
        body = await request.aread() if request.method != "GET" else b""
        return await self.send_raw(origin_of(request.url), request.method in ("GET", "HEAD"), serialize(request, body),
                                   timeouts.get("connect", DEFAULT_TIMEOUT_S), timeouts.get("read", DEFAULT_TIMEOUT_S))

    async def send_raw(self, origin: Origin, idempotent: bool, raw: bytes, connect_timeout: float | None,
                       timeout: float | None) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send request bytes (see `serialize`); only an idempotent request may reuse an idle connection."""
        for attempt in (0, 1):
            conn = self._take(origin) if idempotent else None
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin, connect_timeout)
            deadline = conn.loop.time() + timeout if timeout else float("inf")
            if self._sweeper is None and timeout:
                self._sweeper = conn.loop.create_task(self._sweep())
            self._busy.add(conn)
            try:
                status, headers, body, keep = await conn.start(raw, deadline)
            except _Stale:
                self._drop(conn)
                if reused and attempt == 0:
                    continue
                raise httpx.RemoteProtocolError("server closed the connection without answering") from None
            except BaseException:  # a timeout, a bad answer, or the probe cancelled mid-request
                self._drop(conn)
                raise
            finally:
                conn.waiter = None
                self._busy.discard(conn)
            if keep:
                self._idle.setdefault(origin, []).append(conn)
            else:
                self._drop(conn)
            return status, headers, body
        raise AssertionError("unreachable")  # pragma: no cover


    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.SWEEP_S)
            now = asyncio.get_running_loop().time()
            for conn in [c for c in self._busy if c.deadline <= now]:
                conn.expire()

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
            self._all.discard(conn)
        return None

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        tls = None
        if scheme == "https":
            tls = self._ssl or httpx.create_ssl_context(trust_env=False)
        elif scheme != "http":
            raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(_Connection, host, port, ssl=tls,
                                                       server_hostname=host if tls else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} in time") from None
        except OSError as exc:
            raise httpx.ConnectError(f"{host}:{port}: {exc.strerror or exc}") from None
        self._all.add(conn)
        return conn

    def _drop(self, conn: _Connection) -> None:
        conn.close()
        self._all.discard(conn)

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()
