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
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.waiter: asyncio.Future | None = None
        self.answered = False  # any byte of the current answer arrived
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.headers_done = False
        self.framed = False  # Content-Length or chunked: the parser knows where the answer ends
        self.size = 0  # body bytes of the current answer: an endless body stops at MAX_BODY_BYTES

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is None or self.waiter.done():
            return
        if self.headers_done and not self.framed:  # the answer ends where the connection does
            self.waiter.set_result(self._answer())
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
    def _answer(self) -> Answer:
        keep = not self.closed and self.framed and self.parser.should_keep_alive()
        return self.parser.get_status_code(), self.headers, b"".join(self.body), keep

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, raw: bytes, timeout: float | None) -> Answer:
        """Send one request and wait for its whole answer."""
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        self.answered, self.headers, self.body, self.headers_done, self.framed = False, [], [], False, False
        self.size = 0
        assert self.transport is not None
        self.transport.write(raw)
        timer = loop.call_later(timeout, self._fail, httpx.ReadTimeout("no answer in time")) if timeout else None
        try:
            return await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()


class FastTransport(httpx.AsyncBaseTransport):
    """Requests over pooled keep-alive connections (one per concurrent prober, reused LIFO)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._all: set[_Connection] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        status, headers, body = await self.send(request)
        # a stream, not content=: httpx would run the body through its decoders at once
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body), request=request,
                              extensions={"http_version": b"HTTP/1.1"})

    async def send(self, request: httpx.Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """(status, raw headers, raw body) of the answer: what the driver reads, without an httpx.Response."""
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        if request.method == "GET" and request.headers.get("content-length") not in (None, "0"):
            raise ValueError("FastTransport sends a GET without a body")
        body = await request.aread() if request.method != "GET" else b""
        head = [request.method.encode("ascii") + b" " + url.raw_path + b" HTTP/1.1",
                *(k + b": " + v for k, v in request.headers.raw)]
        if body and "content-length" not in request.headers:
            head.append(b"Content-Length: " + str(len(body)).encode())
        raw = b"\r\n".join([*head, b"", body])
        idempotent = request.method in ("GET", "HEAD")
        for attempt in (0, 1):
            conn = self._take(origin) if idempotent else None
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin, timeouts.get("connect", DEFAULT_TIMEOUT_S))
            try:
                status, headers, body, keep = await conn.exchange(raw, timeouts.get("read", DEFAULT_TIMEOUT_S))
            except _Stale:
                self._drop(conn)
                if reused and attempt == 0:
                    continue
                raise httpx.RemoteProtocolError("server closed the connection without answering") from None
            except BaseException:  # a timeout, a bad answer, or the probe cancelled mid-request
                self._drop(conn)
                raise
            if keep:
                self._idle.setdefault(origin, []).append(conn)
            else:
                self._drop(conn)
            return status, headers, body
        raise AssertionError("unreachable")  # pragma: no cover


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
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()
