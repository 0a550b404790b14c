"""The Locust user: the probe machine's actions executed with Locust's client and gevent's sleep.

The only I/O loop of load mode, and no decision lives here: what to send,
when, with which timeout, and what an answer means are
probes.probe.machine's, exactly as for `probes run`. Requests show in
Locust's stats as "upload" (multipart), "presign", "object PUT", "create"
(the presigned flow), "progress poll" and "cleanup" (never one name per task
id, never the presigned URL: its query is a secret, and the PUT reports its
own failure text rather than Locust's, which repeats the URL). A finished
flow's phases go to load mode's own phase table (probes.load.phase_stats),
not into Locust's HTTP statistics.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import gevent
from gevent import GreenletExit
from locust import task
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, FastHttpSession, FastHttpUser
from locust.exception import StopUser

from probes.errors import EXIT_NOT_RECORDED, os_reason
from probes.probe import wire
from probes.probe.body import MAX_BODY_BYTES, BodyError, BodyTooLarge, read_all
from probes.auth import TokenSource
from probes.probe.machine import (
    Answer, Done, ProbeMachine, Refreshed, RefreshToken, Send, TransportError, redact_record,
)
from probes.probe.plan import ProbePlan, utc_now
from probes.load.rundir import RecordFile
from probes.load.workload import ArrivalSlots, StartSpacing

REQUEST_NAMES = {"upload": "upload", "presign": "presign", "put": "object PUT", "create": "create",
                 "poll": "progress poll", "cleanup": "cleanup"}
CHUNK = 64 * 1024
CUT_OFF = ("cut_off", "cut off by the end of the load run")  # the run's time is up: not the backend's fault
INTERRUPTED = ("aborted", "interrupted")                      # Ctrl-C or SIGTERM, as in `probes run`


@dataclass
class LoadContext:
    """What every user of one process shares: the plan, the schedule, the records file, the guard's bounds."""

    plan: ProbePlan
    headers: dict[str, str]
    model: str
    think_time_s: float
    records: RecordFile
    base_url: str = ""
    tokens: TokenSource | None = None
    max_users: int | None = None               # this process's share of targets.NAME.max_users
    id_prefix: str = ""
    slots: ArrivalSlots | None = None          # open model
    spacing: StartSpacing | None = None        # closed/ramp with a rate cap
    on_record: Callable[[dict[str, Any]], None] | None = None
    clock: Callable[[], float] = time.monotonic
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    active: int = 0
    stopped_as: tuple[str, str] = CUT_OFF  # the outcome and error of a flow stopped from outside
    _token: str | None = None
    _token_ready: bool = False

    def next_probe_id(self) -> str:
        return f"{self.id_prefix}{next(self.ids):06d}"

    def wait_for_start(self) -> float | None:
        """Sleep until this flow may start; returns how late it started against its slot (open model)."""
        if self.slots is not None:
            intended = self.slots.claim()
            wait = intended - self.clock()
            if wait > 0:
                gevent.sleep(wait)
            return max(0.0, self.clock() - intended)
        if self.spacing is not None:
            wait = self.spacing.claim(self.clock()) - self.clock()
            if wait > 0:
                gevent.sleep(wait)
        return None

    def token(self) -> str | None:
        if not self._token_ready and self.tokens is not None:
            self._token = self.tokens.current()
            self._token_ready = True
        return self._token

    def refresh(self, stale: str | None) -> None:
        if self.tokens is None:
            raise RuntimeError("no token source can refresh this target's token")
        if self._token == stale:  # gevent: no other greenlet runs between the check and the call's first I/O
            self._token = self.tokens.refresh(stale)


class _Headers:
    """geventhttpclient headers as the machine reads them: `.get(name)` gives one string."""

    def __init__(self, headers: Any) -> None:
        self._headers = headers

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self._headers.get(name) if self._headers is not None else None
        if isinstance(value, list):
            value = value[0] if value else None
        return default if value is None else str(value)

    def items(self) -> list[tuple[str, str]]:
        if self._headers is None:
            return []
        return [(str(k), str(self.get(k))) for k in self._headers.keys()]


def _body(response: Any, content_encoding: str | None) -> bytes:
    """The answer's body within MAX_BODY_BYTES: streamed and decoded step by step, or, for a status
    geventhttpclient calls bad (4xx, 5xx), the body it already read and decoded to log the exchange and
    then released (streaming it again yields nothing): S3's error code and a rejection's reason are there."""
    cached = getattr(response, "_cached_content", None)
    if isinstance(cached, bytes):
        if len(cached) > MAX_BODY_BYTES:
            raise BodyTooLarge(f"answer over {MAX_BODY_BYTES // 1024} KB decoded")
        return cached
    return read_all(response.iter_content(CHUNK, decode_content=False), content_encoding)


class LocustFlow:
    """One upload-and-poll flow over a FastHttpSession; `run()` returns its probes.jsonl record."""

    def __init__(self, client: FastHttpSession, context: LoadContext, probe_id: str) -> None:
        self.client, self.context, self.probe_id = client, context, probe_id
        self.plan = context.plan
        self.clock = context.clock
        self.machine = ProbeMachine(self.plan.config, started_at=utc_now())
        self.t0 = 0.0

    def now(self) -> float:
        return self.clock() - self.t0

    def run(self) -> dict[str, Any]:
        self.t0 = self.clock()
        self.machine.started_at = utc_now()  # the wall-clock twin of t0: the upload request starts now
        action = self.machine.start()
        token: str | None = None
        try:
            while not isinstance(action, Done):
                if isinstance(action, RefreshToken):
                    action = self.machine.receive(self._refresh(token))
                    continue
                wait = action.not_before_s - self.now()
                if wait > 0:
                    gevent.sleep(wait)
                token = self.context.token()
                action = self.machine.receive(self._send(action, token))
        except GreenletExit:
            self.machine.abort(self.now(), *self.context.stopped_as)
            raise
        return self.record()

    def _refresh(self, stale: str | None) -> Refreshed:
        try:
            self.context.refresh(stale)
        except Exception as exc:  # noqa: BLE001 - any failure to get a token is the flow's auth_error
            return Refreshed(self.now(), False, f"{type(exc).__name__}: {exc}")
        return Refreshed(self.now(), True)

    def _send(self, send: Send, token: str | None) -> Answer | TransportError:
        start = self.now()
        if send.kind == "put":
            return self._put(send, start)
        headers = {**self.context.headers, **wire.auth_header(token)}
        name = REQUEST_NAMES[send.kind]
        try:
            with gevent.Timeout(send.timeout_s):
                if send.kind == "upload":
                    files, data = wire.upload_form(self.plan.fixture, self.plan.audio)
                    response = self.client.request("POST", send.path, files=files, data=data, headers=headers,
                                                   name=name, stream=True)
                elif send.kind in ("presign", "create"):
                    forms = self.plan.forms
                    body = forms.presign if send.kind == "presign" else forms.create(send.object_url)
                    response = self.client.request("POST", send.path, data=body, name=name, stream=True,
                                                   headers={**headers, "Content-Type": forms.content_type})
                else:
                    response = self.client.request(send.method, send.path, headers=headers, name=name, stream=True)
                if not response.status_code:  # a network error: Locust hands back an ErrorResponse
                    error = getattr(response, "error", None)
                    return TransportError(start, self.now(), f"{type(error).__name__}: {error}")
                got = _Headers(response.headers)
                body = _body(response, got.get("content-encoding"))
                raw = getattr(response, "_response", None)  # iter_content ends quietly when the server hangs up
                if raw is not None and not getattr(raw, "message_complete", True):
                    return TransportError(start, self.now(), "RemoteProtocolError: server disconnected mid-answer")
        except gevent.Timeout:
            return TransportError(start, self.now(), f"Timeout: no whole answer in {send.timeout_s:g} s")
        except (BodyError, ValueError, *FAILURE_EXCEPTIONS) as exc:  # gevent.Timeout is caught above
            return TransportError(start, self.now(), f"{type(exc).__name__}: {exc}")
        headers: Any = got
        if send.kind == "upload":  # the fingerprint keeps the accepted upload's headers: a plain mapping
            headers = {k.lower(): v for k, v in got.items()}
        return Answer(start, self.now(), response.status_code, headers, body, epoch_s=time.time())

    def _put(self, send: Send, start: float) -> Answer | TransportError:
        """The object PUT: Content-Type and nothing of the app's (no token, no X-User-Name; identity encoding,
        else Locust asks for br, which no bounded decoder reads), no redirect followed, and Locust told the
        outcome in words without the URL."""
        headers = {"Content-Type": str(self.plan.fixture["content_type"]), "Accept-Encoding": "identity"}
        try:
            with gevent.Timeout(send.timeout_s), self.client.request(
                    "PUT", send.object_url, data=self.plan.audio, headers=headers, name=REQUEST_NAMES["put"],
                    stream=True, catch_response=True, allow_redirects=False) as response:
                try:
                    event = self._read_put(response, start)
                except (BodyError, ValueError, *FAILURE_EXCEPTIONS) as exc:
                    event = TransportError(start, self.now(), f"{type(exc).__name__}: {exc}")
                if isinstance(event, Answer) and event.status == 200:
                    response.success()
                else:
                    response.failure(wire.object_put_error(event.status, event.body)
                                     if isinstance(event, Answer) else event.error.split(":", 1)[0])
                return event
        except gevent.Timeout:
            return TransportError(start, self.now(), f"Timeout: no whole answer in {send.timeout_s:g} s")
        except (ValueError, *FAILURE_EXCEPTIONS) as exc:  # the request itself could not be made
            return TransportError(start, self.now(), f"{type(exc).__name__}: {exc}")

    def _read_put(self, response: Any, start: float) -> Answer | TransportError:
        if not response.status_code:
            error = getattr(response, "error", None)
            return TransportError(start, self.now(), f"{type(error).__name__}: {error}")
        got = _Headers(response.headers)
        body = _body(response, got.get("content-encoding"))
        raw = getattr(response, "_response", None)
        if raw is not None and not getattr(raw, "message_complete", True):
            return TransportError(start, self.now(), "RemoteProtocolError: server disconnected mid-answer")
        return Answer(start, self.now(), response.status_code, got, body, epoch_s=time.time())

    def record(self) -> dict[str, Any]:
        return self.machine.record(run_id=self.plan.run_id, probe_id=self.probe_id, target=self.plan.target,
                                   label=self.plan.label)


class ProbeUser(FastHttpUser):
    """A device running the app's flow over and over (closed) or taking arrival slots (open)."""

    # One flow at a time per user, like one phone: two connections cover upload + a poll.
    concurrency = 2
    network_timeout = 60.0
    connection_timeout = 15.0

    def wait_time(self) -> float:
        context: LoadContext | None = getattr(self.environment, "probes_load", None)
        return context.think_time_s if context is not None and context.model != "open" else 0.0

    _counted = False
    _refused = False

    def on_start(self) -> None:
        """The guard at spawn time: the host in use and the user count, whatever started this user (web UI too).

        A refused user stops at its first task (quietly: Locust logs a StopUser raised here as an error).
        """
        context: LoadContext = self.environment.probes_load
        if context.base_url and self.host.rstrip("/") != context.base_url:
            print(f"probes: refusing load on {self.host!r}: the target's base_url is {context.base_url!r}",
                  flush=True)
            self._refused = True
        elif context.max_users is not None and context.active >= context.max_users:
            self._refused = True
        else:
            context.active += 1
            self._counted = True

    def on_stop(self) -> None:
        context: LoadContext | None = getattr(self.environment, "probes_load", None)
        if context is not None and self._counted:
            context.active -= 1
            self._counted = False

    @task
    def flow(self) -> None:
        if self._refused:
            raise StopUser()
        context: LoadContext = self.environment.probes_load
        lateness = context.wait_for_start()
        flow = LocustFlow(self.client, context, context.next_probe_id())
        try:
            record = flow.run()
        except GreenletExit:
            _keep(context, flow.record(), lateness, flow.machine.secrets)  # cut off by the end of the run: kept
            raise
        _keep(context, record, lateness, flow.machine.secrets)


def _keep(context: LoadContext, record: dict[str, Any], lateness: float | None, secrets: tuple[str, ...] = ()
          ) -> None:
    """Write the flow's record; a disk that cannot take it stops the run (see `unrecorded`)."""
    try:
        _write(context, record, lateness, secrets)
    except OSError as exc:
        unrecorded(f"could not record {context.records.path}: {os_reason(exc)}; the load run stopped "
                   f"({context.records.count} flow record(s) kept)")


def unrecorded(message: str) -> None:
    """Stop this Locust process at once with exit 4 and one line: nothing more can be recorded.

    At once, not through Locust's quit: Locust would go on to write its CSV and HTML files to the same
    full disk and fail there with tracebacks. Every record written so far is whole on disk; run.json
    keeps `ended_at: null`, so the run reads as unfinished.
    """
    print(f"probes: error: {message}", file=sys.stderr, flush=True)
    os._exit(EXIT_NOT_RECORDED)


def _write(context: LoadContext, record: dict[str, Any], lateness: float | None, secrets: tuple[str, ...]) -> None:
    """The record on disk, with the token(s) and the flow's presigned URL secrets redacted by value."""
    record = redact_record(record, (*(context.tokens.secrets() if context.tokens is not None else ()), *secrets))
    record["start_lateness_s"] = None if lateness is None else round(lateness, 6)
    context.records.append(record)
    if context.on_record is not None:
        context.on_record(record)
