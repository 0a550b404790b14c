"""One probe as a sans-I/O state machine: events in, actions out. No sockets, no clock, no sleeping.

Every rule of the probe flow lives here, so the httpx driver and the Locust
user only execute what it asks and every rule is tested without a network:

    upload      multipart: POST the fixture; 401 -> refresh the token once and repeat;
                403 -> auth_error; 400/413/415/422 -> rejected; other -> upload_error;
                an accepted answer must carry a safe task_id
                presigned (the app's flow): presign (classified like the upload; the URLs it
                answers must pass wire.object_url_problem), PUT the bytes to the presigned
                URL (no token: anything but 200 is upload_error with S3's error code), then
                create (POST async-with-url, classified like the upload)
    polls       cadence (app or fine), 404 window, back-off, Retry-After from the
                answer's arrival, per-request timeouts within the deadline;
                final answers decided by `status` (completed / failed)
    cleanup     DELETE the diary of a completed probe (retried once) when asked
    deadline    the whole probe, upload included, ends by `timeout_s`; cleanup may
                use CLEANUP_MARGIN_S more

The driver loop, whatever its I/O:

    machine = ProbeMachine(config)
    action = machine.start()
    while not isinstance(action, Done):
        if isinstance(action, Send):      # wait until action.not_before_s, send with action.timeout_s
            action = machine.receive(Answer(...) or TransportError(...))
        elif isinstance(action, RefreshToken):
            action = machine.receive(Refreshed(...))
    record = machine.record(run_id=..., probe_id=..., target=..., label=...)

Times are seconds since the upload request started (the driver's monotonic
clock); every event carries the times it happened at.

    start ──> UPLOAD ─────────────────────accepted──> POLL ──final──> CLEANUP ──> DONE
      └────> PRESIGN ──> PUT ──200──> CREATE ─┘
                │ 401                │ 401            │ 401
                └─> REFRESH ─────────┴────────────────┘ (the same request again, once; never for the PUT)

The presigned URL (and the final URL) are secrets by value once the presign
answered (`secrets`): the drivers redact the record with them, and the Send
for the PUT keeps the URL out of its repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Iterable, Mapping

from probes.analysis.timeline import analyse, progress_band, shown_bar_fields
from probes.probe import wire
from probes.probe.cadence import APP_NOT_FOUND_WINDOW_S, Cadence, PollResult

RECORD_SCHEMA = 1
UPLOAD_TIMEOUT_S = 60.0   # one upload request (each of presign, PUT and create); the deadline may cut it shorter
POLL_TIMEOUT_S = 15.0     # one poll request
CLEANUP_TIMEOUT_S = 10.0  # one DELETE
CLEANUP_MARGIN_S = 5.0    # cleanup may run this far past the deadline: the probe is over, its diary is not
MIN_REQUEST_S = 0.5       # no request is sent with less time than this left
MAX_STATES = 64           # distinct (band, step_name, message) kept per probe; the real backend has ~10
MAX_INSTANCES = 64        # distinct instance ids counted per probe
LATENESS_THRESHOLDS_MS = (5, 10, 20, 50, 100)
OUTCOMES = ("completed", "failed", "timeout", "rejected", "upload_error", "poll_error", "auth_error", "aborted",
            "cut_off")
UPLOAD_KINDS = frozenset({"upload", "presign", "put", "create"})  # the requests before the task exists
# What an upload step's error starts with: which request failed. The multipart POST's stay as they were.
STEP_PREFIX = {"upload": "", "presign": "presign: ", "put": "object PUT: ", "create": "create: "}


# -- events: what the driver hands in ---------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """An HTTP answer arrived whole. `headers` answers `.get(lowercase name)` (httpx.Headers or a dict)."""

    start_s: float
    end_s: float
    status: int
    headers: Mapping[str, str]
    body: bytes
    epoch_s: float | None = None  # wall-clock arrival (Unix time): only to read a Retry-After HTTP date


@dataclass(frozen=True)
class TransportError:
    """No usable answer: connection refused or cut, timeout, a body over the cap, a bad encoding."""

    start_s: float
    end_s: float
    error: str


@dataclass(frozen=True)
class Refreshed:
    """The outcome of a RefreshToken action."""

    at_s: float
    ok: bool
    error: str | None = None


# -- actions: what the machine asks for -------------------------------------------------------

@dataclass(frozen=True)
class Send:
    """Send this request no earlier than `not_before_s`, giving up after `timeout_s`.

    `kind` is upload (a multipart POST of the fixture, built by the driver), presign, put,
    create (the presigned flow's three requests, their forms built by the driver), poll or
    cleanup. `object_url` is the presigned URL for put (absolute, on another origin; a secret:
    never in a repr, a log or a record, and the request carries no token) and the object's
    final URL for create (its audio_url).
    """

    kind: str
    method: str
    path: str
    not_before_s: float
    timeout_s: float
    object_url: str = field(default="", repr=False)


@dataclass(frozen=True)
class RefreshToken:
    """Get a fresh bearer token (the last one was refused), then feed back `Refreshed`."""

    reason: str


@dataclass(frozen=True)
class Done:
    outcome: str


Action = Send | RefreshToken | Done
Event = Answer | TransportError | Refreshed


@dataclass(frozen=True)
class MachineConfig:
    cadence: Cadence = field(default_factory=Cadence)
    timeout_s: float = 300.0
    cleanup: bool = False
    milestones: tuple[int, ...] = (20, 32, 42, 55, 58, 60, 88, 100)
    upload: str = "multipart"  # wire.UPLOADS: "presigned" (the app's flow) or "multipart"
    presigned_base64: bool = True  # the create form also carries the audio as base64 (files <= 5 MB), as the app does
    # hosts a presigned URL may name over plain http (a loopback target's): wire.object_url_problem
    plain_http_hosts: frozenset[str] = frozenset()
    # the simulator's time scale (known after /health): the shown bar is replayed in the app's seconds
    time_scale: float = 1.0


def lateness_summary(lateness: list[float]) -> dict[str, Any]:
    """How late the polls started against the plan: the harness's own measurement quality.

    `over_ms` counts polls later than each threshold, so probes add up to a run-wide share.
    """
    ordered = sorted(lateness)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 6)  # noqa: E731
    return {
        "n": len(ordered), "p50": pick(0.5), "p99": pick(0.99), "max": round(ordered[-1], 6),
        "over_ms": {str(ms): sum(1 for x in ordered if x > ms / 1000) for ms in LATENESS_THRESHOLDS_MS},
    }


class ProbeMachine:
    """The rules of one upload-poll-cleanup flow. Feed it events; it answers with the next action."""

    def __init__(self, config: MachineConfig, started_at: str = "") -> None:
        self.config = config
        self.started_at = started_at
        self.outcome = "aborted"
        self.error: str | None = None
        self.task_id: str | None = None
        self.diary_id: str | None = None
        self.cleanup: str | None = None
        self.cleanup_error: str | None = None
        self.upload_status: int | None = None
        self.upload_s: float | None = None
        self.presign_s: float | None = None
        self.put_s: float | None = None
        self.create_s: float | None = None
        self.failed_step: str | None = None
        self.created_s: float | None = None  # when the task was created: the end of the multipart POST or the create
        self.put_end_s: float | None = None
        # The presigned and final URLs' secrets (query, signature, credential), for redaction by value.
        self.secrets: tuple[str, ...] = ()
        self._object_urls: tuple[str, str] | None = None  # (presigned_url, final_url)
        self._upload_headers: Mapping[str, str] | None = None
        # Tuples of atoms: the garbage collector stops tracking them, which keeps its passes short
        # with hundreds of flows holding thousands of samples (lists would stay tracked).
        self.samples: list[tuple[Any, ...]] = []
        self.states: dict[tuple[Any, ...], None] = {}
        self.instances: dict[str, int] = {}
        self.lateness: list[float] = []
        self.refreshes = 0
        self.last_progress: int | float | None = None
        self.last_step_name: str | None = None
        self.end_s = 0.0
        self._pending: Send | None = None
        self._refreshed_for_pending = False
        self._due = 0.0
        self._errors_in_row = 0
        self._cleanup_tries = 0
        self._done: Done | None = None

    # -- the driver's interface ---------------------------------------------------------------

    @property
    def first_headers(self) -> dict[str, str] | None:
        """The accepted upload's headers fit for the fingerprint (redacted). Redacted when asked, not
        at every upload: a run fingerprints one, and the redaction's patterns cost ~0.1 ms a probe."""
        return None if self._upload_headers is None else wire.safe_headers(self._upload_headers, self.secrets)

    def start(self) -> Action:
        if self.config.upload == "presigned":
            return self._send("presign", "POST", wire.PRESIGN_PATH, 0.0, UPLOAD_TIMEOUT_S)
        return self._send("upload", "POST", wire.UPLOAD_PATH, 0.0, UPLOAD_TIMEOUT_S)

    def receive(self, event: Event) -> Action:
        """The next action after `event` (which must answer the last action)."""
        if self._done is not None:
            return self._done
        if isinstance(event, Refreshed):
            return self._on_refreshed(event)
        pending = self._pending
        if pending is None:
            raise RuntimeError("no request is pending")
        self.end_s = max(self.end_s, event.end_s)
        kind = pending.kind
        if kind == "poll":
            return self._on_poll(pending, event)
        if kind == "upload" or kind == "create":
            return self._on_upload(pending, event)
        if kind == "presign":
            return self._on_presign(pending, event)
        if kind == "put":
            return self._on_put(pending, event)
        return self._on_cleanup(pending, event)

    def abort(self, at_s: float, outcome: str = "aborted", error: str = "interrupted") -> None:
        """The flow was stopped from outside (Ctrl-C, the end of a load run) before it finished."""
        if self._done is None:
            self.end_s = max(self.end_s, at_s)
            self._finish(outcome, error)

    # -- requests ------------------------------------------------------------------------------

    def _send(self, kind: str, method: str, path: str, not_before: float, limit: float,
              object_url: str = "") -> Action:
        end = self.config.timeout_s + (CLEANUP_MARGIN_S if kind == "cleanup" else 0.0)
        room = end - not_before
        if room < MIN_REQUEST_S:
            return self._out_of_time(kind, not_before)
        self._pending = Send(kind, method, path, not_before, round(min(limit, room), 6), object_url)
        self._refreshed_for_pending = False
        return self._pending

    def _resend(self, at_s: float) -> Action:
        """The pending request again, at once (after a token refresh)."""
        assert self._pending is not None
        p = self._pending
        limit = UPLOAD_TIMEOUT_S if p.kind in UPLOAD_KINDS else POLL_TIMEOUT_S if p.kind == "poll" else CLEANUP_TIMEOUT_S
        if p.kind == "poll":
            self._due = at_s
        action = self._send(p.kind, p.method, p.path, max(at_s, p.not_before_s), limit, p.object_url)
        self._refreshed_for_pending = True
        return action

    def _out_of_time(self, kind: str, at_s: float) -> Action:
        if kind == "cleanup":
            self.cleanup, self.cleanup_error = "failed", "no time left before the deadline"
            return self._finish(self.outcome, self.error)
        if kind in UPLOAD_KINDS:
            self.failed_step = kind
        self.end_s = max(self.end_s, min(at_s, self.config.timeout_s))
        error = f"not done after {self.config.timeout_s:g} s"
        if kind == "poll" and self.error:
            error += f" (last poll: {self.error})"
        return self._finish("timeout", error)

    def _finish(self, outcome: str, error: str | None) -> Done:
        self.outcome, self.error = outcome, error
        self._pending = None
        self._done = Done(outcome)
        return self._done

    # -- token refresh -------------------------------------------------------------------------

    def _unauthorized(self, event: Answer, what: str) -> Action | None:
        """A 401: refresh once and repeat; None when it was already repeated (the caller gives up)."""
        if event.status != 401 or self._refreshed_for_pending:
            return None
        return RefreshToken(f"HTTP 401 on {what}")

    def _on_refreshed(self, event: Refreshed) -> Action:
        self.end_s = max(self.end_s, event.at_s)
        if not event.ok:
            return self._auth_failed(f"token refresh failed: {wire.one_line(event.error or 'no reason given')}")
        self.refreshes += 1
        return self._resend(event.at_s)

    def _auth_failed(self, error: str) -> Action:
        if self._pending is not None and self._pending.kind == "cleanup":
            self.cleanup, self.cleanup_error = "failed", error
            return self._finish(self.outcome, self.error)
        if self._pending is not None and self._pending.kind in UPLOAD_KINDS:
            return self._upload_failed(self._pending.kind, "auth_error", error)
        return self._finish("auth_error", error)

    # -- upload --------------------------------------------------------------------------------

    def _upload_failed(self, kind: str, outcome: str, error: str | None) -> Done:
        """An upload step ended the probe: the record says which, and so does the error."""
        self.failed_step = kind
        return self._finish(outcome, f"{STEP_PREFIX[kind]}{error}")

    def _answered(self, event: Answer | TransportError) -> None:
        """Every upload step's answer: upload_s runs from t = 0 to the end of the last one (the create's
        end once the task exists: what the multipart POST's was), upload_status is its status."""
        self.upload_s = round(event.end_s, 6)
        self.upload_status = event.status if isinstance(event, Answer) else None

    def _on_upload(self, pending: Send, event: Answer | TransportError) -> Action:
        """The request that creates the task: the multipart POST, or the presigned flow's create."""
        self._answered(event)
        if isinstance(event, TransportError):
            return self._upload_failed(pending.kind, "upload_error", wire.one_line(event.error))
        if pending.kind == "create":
            self.create_s = round(event.end_s - event.start_s, 6)
        if (refresh := self._unauthorized(event, pending.kind)) is not None:
            return refresh
        answer = wire.parse_upload(event.status, event.body)
        if answer.outcome is not None:
            return self._upload_failed(pending.kind, answer.outcome, answer.error)
        self._upload_headers = event.headers
        self.task_id = answer.task_id
        self.created_s = event.end_s
        self._due = event.end_s
        return self._send("poll", "GET", wire.progress_path(answer.task_id), event.end_s, POLL_TIMEOUT_S)

    def _on_presign(self, pending: Send, event: Answer | TransportError) -> Action:
        self._answered(event)
        if isinstance(event, TransportError):
            return self._upload_failed("presign", "upload_error", wire.one_line(event.error))
        self.presign_s = round(event.end_s - event.start_s, 6)
        if (refresh := self._unauthorized(event, "presign")) is not None:
            return refresh
        answer = wire.parse_presign(event.status, event.body, self.config.plain_http_hosts)
        if answer.outcome is not None:
            return self._upload_failed("presign", answer.outcome, answer.error)
        assert answer.presigned_url is not None and answer.final_url is not None
        self._object_urls = (answer.presigned_url, answer.final_url)
        self.secrets = (*wire.url_secrets(answer.presigned_url), *wire.url_secrets(answer.final_url))
        return self._send("put", "PUT", "", event.end_s, UPLOAD_TIMEOUT_S, answer.presigned_url)

    def _on_put(self, pending: Send, event: Answer | TransportError) -> Action:
        """S3's answer: only 200 lets the app go on (audioUploadService.ts L365 `xhr.status === 200`);
        the PUT carries no token, so a 401 or 403 is S3 refusing the signature, not ours to refresh."""
        self._answered(event)
        if isinstance(event, TransportError):
            return self._upload_failed("put", "upload_error", wire.one_line(event.error))
        self.put_s = round(event.end_s - event.start_s, 6)
        self.put_end_s = event.end_s
        if event.status != 200:
            return self._upload_failed("put", "upload_error", wire.object_put_error(event.status, event.body))
        assert self._object_urls is not None
        return self._send("create", "POST", wire.CREATE_PATH, event.end_s, UPLOAD_TIMEOUT_S, self._object_urls[1])

    # -- polls ---------------------------------------------------------------------------------

    def _on_poll(self, pending: Send, event: Answer | TransportError) -> Action:
        start, latency = event.start_s, max(0.0, event.end_s - event.start_s)
        self.lateness.append(max(0.0, start - pending.not_before_s))
        if isinstance(event, TransportError):
            self.error = wire.one_line(event.error)
            self.samples.append((round(start, 6), None, None, None, None, None, round(latency, 6)))
            return self._next_poll(PollResult.ERROR, None, event)
        answer = wire.parse_progress(event.status, event.body)
        self.samples.append((round(start, 6), event.status, answer.progress, answer.step, answer.step_name,
                             answer.status, round(latency, 6)))
        instance = wire.instance_of(event.headers.get)
        if instance and (instance in self.instances or len(self.instances) < MAX_INSTANCES):
            self.instances[instance] = self.instances.get(instance, 0) + 1
        if (refresh := self._unauthorized(event, "progress")) is not None:
            return refresh
        if event.status in wire.AUTH_STATUSES:
            return self._finish("auth_error", f"HTTP {event.status} on progress")
        if event.status == 200 and answer.status in wire.TERMINAL_STATUSES:
            self._note_state(answer)
            if answer.status == "failed":
                return self._finish("failed", answer.error or "failed without an error code")
            self.diary_id = answer.diary_id
            self.outcome, self.error = "completed", None
            return self._start_cleanup(event.end_s)
        if event.status == 200 and answer.progress is not None:
            self._note_state(answer)
            return self._next_poll(PollResult.OK, None, event)
        if event.status == 404:
            return self._next_poll(PollResult.NOT_FOUND, None, event)
        if event.status == 429:
            self.error = "HTTP 429"
            retry = wire.retry_after_s(event.headers.get("retry-after"), _epoch_hint(event))
            return self._next_poll(PollResult.RATE_LIMITED, retry, event)
        self.error = f"HTTP {event.status}" if event.status != 200 else "answer without a progress value"
        return self._next_poll(PollResult.ERROR, None, event)

    def _note_state(self, answer: wire.ProgressAnswer) -> None:
        self.last_progress, self.last_step_name = answer.progress, answer.step_name
        if self.secrets and answer.step_name:  # the live bars print it: no signature a backend echoes
            from probes.redact import redact_known

            self.last_step_name = redact_known(answer.step_name, self.secrets)
        if answer.progress is None:
            return
        state = (progress_band(answer.progress), answer.step_name, answer.message)
        if state not in self.states and len(self.states) < MAX_STATES:
            self.states[state] = None

    def _next_poll(self, result: PollResult, retry_after: float | None, event: Answer | TransportError) -> Action:
        cadence = self.config.cadence
        if result is PollResult.NOT_FOUND and cadence.gives_up_on_late_404 and event.start_s >= APP_NOT_FOUND_WINDOW_S:
            return self._finish("poll_error", f"task not found after {APP_NOT_FOUND_WINDOW_S:g} s")
        self._errors_in_row = 0 if result is PollResult.OK else self._errors_in_row + 1
        due = max(cadence.next_due(self._due, result, self._errors_in_row, retry_after, answered_s=event.end_s),
                  event.end_s)
        deadline = self.config.timeout_s
        if due >= deadline:
            if result is PollResult.RATE_LIMITED and retry_after is not None:
                # Capped at the deadline: wait no longer than the probe may live, and say why it ended.
                self.end_s = max(self.end_s, deadline)
                return self._finish("timeout", f"rate limited: Retry-After {retry_after:g} s reaches past the "
                                               f"{deadline:g} s deadline")
            return self._out_of_time("poll", due)
        self._due = due
        return self._send("poll", "GET", self._pending.path if self._pending else "", due, POLL_TIMEOUT_S)

    # -- cleanup -------------------------------------------------------------------------------

    def _start_cleanup(self, at_s: float) -> Action:
        if not self.config.cleanup:
            return self._finish("completed", None)
        diary_id = wire.safe_id(self.diary_id)
        if diary_id is None:
            self.cleanup = "failed"
            self.cleanup_error = "no diary id" if self.diary_id is None else "diary id is not a safe id"
            return self._finish("completed", None)
        self._cleanup_tries = 1
        return self._send("cleanup", "DELETE", wire.diary_path(diary_id), at_s, CLEANUP_TIMEOUT_S)

    def _on_cleanup(self, pending: Send, event: Answer | TransportError) -> Action:
        if isinstance(event, Answer):
            if 200 <= event.status < 300:
                self.cleanup, self.cleanup_error = "deleted", None
                return self._finish("completed", None)
            if (refresh := self._unauthorized(event, "cleanup")) is not None:
                return refresh
            self.cleanup_error = f"HTTP {event.status}"
        else:
            self.cleanup_error = wire.one_line(event.error)
        if self._cleanup_tries < 2:
            self._cleanup_tries += 1
            return self._send("cleanup", "DELETE", pending.path, event.end_s, CLEANUP_TIMEOUT_S)
        self.cleanup = "failed"
        return self._finish("completed", None)

    # -- the record ----------------------------------------------------------------------------

    def record(self, *, run_id: str, probe_id: str, target: str, label: str) -> dict[str, Any]:
        """The probes.jsonl line (docs/run-format.md)."""
        timeline = analyse(self.samples, self.config.milestones)
        record: dict[str, Any] = {
            "schema": RECORD_SCHEMA, "run_id": run_id, "probe_id": probe_id, "target": target, "label": label,
            "started_at": self.started_at, "outcome": self.outcome,
            "error": self.error if self.outcome != "completed" else None,
            "task_id": self.task_id, "diary_id": self.diary_id, "cleanup": self.cleanup,
            "cleanup_error": self.cleanup_error, "refreshes": self.refreshes,
            "upload": self.config.upload, "upload_status": self.upload_status, "upload_s": self.upload_s,
            "presign_s": self.presign_s, "put_s": self.put_s, "create_s": self.create_s,
            "put_end_s": None if self.put_end_s is None else round(self.put_end_s, 6), "failed_step": self.failed_step,
        }
        record.update(timeline.to_record())
        if not self.samples:
            record["end_s"] = round(self.end_s, 6)
        record.update(shown_bar_fields(self.samples, created_s=self.created_s if self.task_id else None,
                                       put_end_s=self.put_end_s, time_scale=self.config.time_scale))
        record["lateness"] = lateness_summary(self.lateness) if self.lateness else None
        record["instances"] = self.instances
        record["states"] = [list(s) for s in self.states]
        record["samples"] = [list(row) for row in self.samples]
        return record


def _epoch_hint(event: Answer) -> float | None:
    """Now as a Unix time, for a Retry-After given as an HTTP date: the driver's, else the answer's Date."""
    if event.epoch_s is not None:
        return event.epoch_s
    date = event.headers.get("date")
    if not date or len(date) > 64:
        return None
    try:
        return parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def redact_record(record: dict[str, Any], secrets: Iterable[str]) -> dict[str, Any]:
    """The record with every known secret (the bearer token a backend might echo) removed from its strings."""
    known = tuple(s for s in secrets if s)
    if not known:
        return record
    from probes.redact import redact_known

    memo: dict[str, str] = {}

    def clean(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value not in memo:
            memo[value] = redact_known(value, known)
        return memo[value]

    for key in ("error", "cleanup_error", "task_id", "diary_id"):
        record[key] = clean(record.get(key))
    record["states"] = [[clean(x) for x in state] for state in record.get("states") or []]
    record["instances"] = {clean(k): v for k, v in (record.get("instances") or {}).items()}
    record["samples"] = [row[:4] + [clean(row[4]), clean(row[5])] + row[6:] for row in record.get("samples") or []]
    return record
