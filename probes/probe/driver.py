"""One probe over httpx: execute what the ProbeMachine asks, hand back what came back.

The only I/O seam of `probes run`. No decision is taken here: when to send,
with which timeout, what an answer means, when to stop -- all of that is
probes.probe.machine's. This module waits, sends, reads bodies within their
cap (probes.probe.body) and bounds each request's whole life with its timeout
(a server that answers one byte a second cannot hold a probe past it).

Requests go through the httpx client (cookies, proxy settings from the
environment) unless the run is big enough for the keep-alive fast transport
(FAST_FROM probes in flight): then every request of the run goes there (httpx's
own pool costs quadratic time with hundreds of uploads at once), and the
cookies answers set are kept all the same.

The presigned flow's object PUT goes to wherever the backend said (S3), never
through the target's client: a request of its own with only what S3 needs
(Host, Content-Type, Content-Length; no token, no cookie, none of the app's
headers), over a client of its own that verifies TLS (the target's does not
when it is plain http), or over the fast transport in a big run.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import httpx

from probes.probe import wire
from probes.auth import TokenSource
from probes.probe.body import BodyError, BodyReader
from probes.probe.fingerprint import health_value
from probes.probe.machine import (
    Answer, Done, ProbeMachine, Refreshed, RefreshToken, Send, TransportError,
)
from probes.probe.plan import ProbePlan, ProbeState, utc_now
from probes.probe.fast_transport import FastTransport, origin_of, serialize

# From this many probes in flight, requests skip the client's per-request machinery (URL and header
# merge, cookie handling, pool) and go to the keep-alive FastTransport (BENCHMARKS.md, "poll path").
FAST_FROM = 64
HEALTH_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 15.0


class HttpSide:
    """What every probe of a run shares: the httpx client, the fast transport (or None), the token."""

    def __init__(self, base_url: str, concurrency: int, headers: dict[str, str],
                 tokens: TokenSource | None = None, fast: bool | None = None) -> None:
        size = max(10, concurrency * 2)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        # No TLS context for a plain-http target: loading the CA bundle costs ~60 ms of start-up, and no
        # redirect is ever followed to where it could be needed.
        tls: dict[str, Any] = {} if base_url.startswith("https://") else {"verify": False}
        self.client = httpx.AsyncClient(
            base_url=base_url, headers=headers, limits=limits, trust_env=True, follow_redirects=False,
            timeout=httpx.Timeout(CONNECT_TIMEOUT_S), **tls,
        )
        fast = concurrency >= FAST_FROM if fast is None else fast
        self.fast: FastTransport | None = FastTransport() if fast else None
        self.origin = origin_of(self.client.base_url)
        self.upload: tuple[str, str | None, int, bytes] | None = None  # the form every probe sends, as bytes
        self.presign: tuple[str, str | None, int, bytes] | None = None  # the same for the presign form
        self._objects: dict[bool, httpx.AsyncClient] = {}  # by "the object URL is https"
        self._size = size
        self.tokens = tokens
        self.cookie_version = 0  # bumped when an answer on the fast path sets a cookie
        self._token: str | None = None
        self._token_ready = False
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> "HttpSide":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        for objects in self._objects.values():
            await objects.aclose()
        if self.fast is not None:
            await self.fast.aclose()

    def objects(self, https: bool) -> httpx.AsyncClient:
        """The client of the object PUTs (made on first use): TLS verified for https (a plain-http one
        skips loading the CA bundle, as the target's client does), proxies from the environment, no
        redirects; its requests are built whole by the caller, so none of its default headers are sent."""
        if https not in self._objects:
            limits = httpx.Limits(max_connections=self._size, max_keepalive_connections=self._size)
            tls: dict[str, Any] = {} if https else {"verify": False}
            self._objects[https] = httpx.AsyncClient(limits=limits, trust_env=True, follow_redirects=False,
                                                     timeout=httpx.Timeout(CONNECT_TIMEOUT_S), **tls)
        return self._objects[https]

    async def token(self) -> str | None:
        if self._token_ready or self.tokens is None:  # the common case, without a lock or a thread
            return self._token
        if not self._token_ready and self.tokens is not None:
            async with self._lock:
                if not self._token_ready:
                    self._token = await asyncio.to_thread(self.tokens.current)
                    self._token_ready = True
        return self._token

    async def refresh(self, stale: str | None) -> None:
        """A new token unless another probe already replaced `stale`; errors propagate as one line."""
        if self.tokens is None:
            raise RuntimeError("no token source can refresh this target's token")
        async with self._lock:
            if self._token == stale:
                self._token = await asyncio.to_thread(self.tokens.refresh, stale)
                self._token_ready = True


def _timeouts(timeout_s: float) -> dict[str, float]:
    return {"connect": timeout_s, "read": timeout_s, "write": timeout_s, "pool": timeout_s}


async def exchange(http: HttpSide, request: httpx.Request, timeout_s: float, *,
                   clock: Callable[[], float], start: float,
                   client: httpx.AsyncClient | None = None) -> Answer | TransportError:
    """Send one request through the httpx client (the target's, unless another is given) and read its
    whole answer within `timeout_s`; every failure is a TransportError."""
    request.extensions["timeout"] = _timeouts(timeout_s)
    try:
        async with asyncio.timeout(timeout_s):
            response = await (client or http.client).send(request, stream=True)
            try:
                reader = BodyReader(response.headers.get("content-encoding"))
                async for chunk in response.aiter_raw():
                    reader.feed(chunk)
                body = reader.finish()
            finally:
                await response.aclose()
    except TimeoutError:
        return TransportError(start, clock(), f"Timeout: no whole answer in {timeout_s:g} s")
    except (httpx.HTTPError, httpx.InvalidURL, BodyError, OSError, ValueError) as exc:
        return TransportError(start, clock(), f"{type(exc).__name__}: {exc}")
    return Answer(start, clock(), response.status_code, response.headers, body, epoch_s=time.time())


def _answer(http: HttpSide, status: int, raw: list[tuple[bytes, bytes]], wire_body: bytes, start: float,
            end: float, keep_cookies: bool = True) -> Answer:
    """An answer from the fast transport as the machine reads it; raises BodyError on a bad body.

    keep_cookies: False for the object PUT's answer (S3's cookies are not the target's)."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
    if keep_cookies and "set-cookie" in headers:  # a sticky-session cookie: kept for the next requests, as httpx would
        http.client.cookies.extract_cookies(
            httpx.Response(status, headers=raw, request=http.client.build_request("GET", "/")))
        http.cookie_version += 1
    encoding = headers.get("content-encoding")
    if encoding is None:
        body = wire_body  # the transport already capped it on the wire; nothing to decode
    else:
        reader = BodyReader(encoding)
        reader.feed(wire_body)
        body = reader.finish()
    return Answer(start, end, status, headers, body, epoch_s=time.time())


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Probe:
    """A single upload-and-poll flow. `run()` returns its probes.jsonl record."""

    def __init__(self, http: HttpSide, plan: ProbePlan, probe_id: str,
                 on_update: Callable[[ProbeState], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.http = http
        self.plan = plan
        self.state = ProbeState(probe_id)
        self.on_update = on_update or (lambda state: None)
        self.clock = clock
        self.machine = ProbeMachine(plan.config, started_at=utc_now())
        self.t0 = 0.0
        self._poll: tuple[str, str | None, int, bytes] | None = None  # (path, token, cookies, request bytes)

    def now(self) -> float:
        return self.clock() - self.t0

    async def run(self) -> dict[str, Any]:
        self.t0 = self.clock()
        self.machine.started_at = utc_now()  # the wall-clock twin of t0: the upload request starts now
        try:
            action = self.machine.start()
            token: str | None = None
            http, machine, state, clock, t0 = self.http, self.machine, self.state, self.clock, self.t0
            loop = asyncio.get_running_loop()  # once: each get_running_loop() (asyncio.sleep's too) is a getpid()
            send = self._send_fast if http.fast is not None else self._send
            while not isinstance(action, Done):
                if isinstance(action, RefreshToken):
                    action = machine.receive(await self._refresh(token))
                    continue
                wait = action.not_before_s - (clock() - t0)
                if wait > 0:
                    waiter = loop.create_future()
                    timer = loop.call_at(loop.time() + wait, _wake, waiter)
                    try:
                        await waiter
                    finally:  # cancelled while waiting
                        timer.cancel()
                token = http._token if http._token_ready else await http.token()
                action = machine.receive(await send(action, token))
                if machine.last_progress != state.progress or machine.last_step_name != state.step_name:
                    state.progress, state.step_name = machine.last_progress, machine.last_step_name
                    self.on_update(state)
        except asyncio.CancelledError:
            self.machine.abort(self.now())
            raise
        finally:
            self.state.done = True
            self.on_update(self.state)
        return self.record()

    async def _refresh(self, stale: str | None) -> Refreshed:
        try:
            await self.http.refresh(stale)
        except Exception as exc:  # noqa: BLE001 - any failure to get a token is the probe's auth_error
            return Refreshed(self.now(), False, f"{type(exc).__name__}: {exc}")
        return Refreshed(self.now(), True)

    async def _send(self, send: Send, token: str | None) -> Answer | TransportError:
        start = self.now()
        if send.kind == "put":
            return await self._put(send, start)
        try:
            request = self._request(send, token)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            return TransportError(start, self.now(), f"{type(exc).__name__}: {exc}")
        return await exchange(self.http, request, send.timeout_s, clock=self.now, start=start)

    def _request(self, send: Send, token: str | None) -> httpx.Request:
        client = self.http.client
        headers = wire.auth_header(token)
        if send.kind == "upload":
            files, data = wire.upload_form(self.plan.fixture, self.plan.audio)
            return client.build_request("POST", send.path, files=files, data=data, headers=headers)
        if send.kind in ("presign", "create"):
            forms = self.plan.forms
            body = forms.presign if send.kind == "presign" else forms.create(send.object_url)
            return client.build_request("POST", send.path, content=body,
                                        headers={**headers, "Content-Type": forms.content_type})
        return client.build_request(send.method, send.path, headers=headers)

    async def _put(self, send: Send, start: float) -> Answer | TransportError:
        """The object PUT to the presigned URL: its own request, only what S3 needs (Host, Content-Type,
        Content-Length), through the object client or the fast transport."""
        http = self.http
        try:
            request = httpx.Request("PUT", send.object_url, content=self.plan.audio,
                                    headers={"Content-Type": str(self.plan.fixture["content_type"])})
            if http.fast is None:
                return await exchange(http, request, send.timeout_s, clock=self.now, start=start,
                                      client=http.objects(request.url.scheme == "https"))
            status, raw, wire_body = await http.fast.send_raw(origin_of(request.url), False,
                                                              serialize(request, self.plan.audio), send.timeout_s,
                                                              send.timeout_s)
            return _answer(http, status, raw, wire_body, start, self.now(), keep_cookies=False)
        except (httpx.HTTPError, httpx.InvalidURL, BodyError, OSError, ValueError) as exc:
            return TransportError(start, self.now(), f"{type(exc).__name__}: {exc}")

    def _bytes(self, send: Send, token: str | None) -> bytes:
        """The request as bytes for the fast transport, built again only when something in it changed.

        A poll is the same request every time, and every probe uploads the same form: the bytes carry
        the client's headers and cookies (such as a load balancer's sticky-session cookie) and are
        rebuilt when the path, the token or the cookies change. Building an httpx request per poll cost
        more CPU than sending it, and encoding the multipart form per probe ~0.3 ms.
        """
        http = self.http
        key = (send.path, token, http.cookie_version)
        if send.kind == "poll":
            if self._poll is None or self._poll[:3] != key:
                self._poll = (*key, serialize(self._request(send, token)))
            return self._poll[3]
        if send.kind == "upload":
            if http.upload is None or http.upload[:3] != key:
                request = self._request(send, token)
                http.upload = (*key, serialize(request, request.read()))
            return http.upload[3]
        if send.kind == "presign":
            if http.presign is None or http.presign[:3] != key:
                request = self._request(send, token)
                http.presign = (*key, serialize(request, request.read()))
            return http.presign[3]
        request = self._request(send, token)
        return serialize(request, request.read()) if send.kind == "create" else serialize(request)

    async def _send_fast(self, send: Send, token: str | None) -> Answer | TransportError:
        """One request through the fast transport: the hot path of big runs (it bounds connect and the
        whole answer, and caps the body on the wire)."""
        start = self.now()
        if send.kind == "put":  # to the presigned URL's own origin, with only what S3 needs
            return await self._put(send, start)
        http = self.http
        assert http.fast is not None
        try:
            status, raw, wire_body = await http.fast.send_raw(http.origin, send.method == "GET",
                                                              self._bytes(send, token), send.timeout_s,
                                                              send.timeout_s)
            return _answer(http, status, raw, wire_body, start, self.now())
        except (httpx.HTTPError, httpx.InvalidURL, BodyError, OSError, ValueError) as exc:
            return TransportError(start, self.now(), f"{type(exc).__name__}: {exc}")

    def record(self) -> dict[str, Any]:
        """The probes.jsonl line (docs/run-format.md)."""
        return self.machine.record(run_id=self.plan.run_id, probe_id=self.state.probe_id, target=self.plan.target,
                                   label=self.plan.label)


async def fetch_health(http: HttpSide, with_token: bool) -> dict[str, Any]:
    """The fingerprint's /health part: status, body (bounded) and headers; never raises."""
    headers = wire.auth_header(await http.token()) if with_token else {}
    start = time.monotonic()
    clock = lambda: time.monotonic() - start  # noqa: E731
    try:
        request = http.client.build_request("GET", wire.HEALTH_PATH, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        return {"health_status": None, "health": None, "health_error": type(exc).__name__, "headers": {}}
    event = await exchange(http, request, HEALTH_TIMEOUT_S, clock=clock, start=0.0)
    if isinstance(event, TransportError):
        return {"health_status": None, "health": None, "health_error": wire.one_line(event.error, 120),
                "headers": {}}
    return {"health_status": event.status, "health": health_value(event.body),
            "headers": wire.safe_headers(event.headers)}
