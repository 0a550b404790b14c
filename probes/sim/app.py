"""The simulator's ASGI app: thankly's HTTP API over the analytic progress model.

At upload a task draws its latencies (seeded: scenario seed + task counter)
and gets its whole schedule from `progress.build_schedule`. A poll bisects
that schedule at ``now - t0`` and answers a cached, pre-serialised body, so
the hot path is a dict lookup, a bisect and a write; there is no per-task
timer and the ground truth (``/_sim/...``) is exact by construction.

Every response carries ``X-Instance`` and ``X-App-Version`` (the scenario's
``version``, also in ``/health`` and ``/``). With ``instances > 1`` polls are
spread round-robin; an instance that does not own a task answers from the last
persisted state (every 5 %), like a multi-instance deployment would. With a
scenario's ``[db]`` rates, a share of reads on the one instance answer that
persisted state or 404, like thankly's swallowed DynamoDB errors.

Every ``/diary/...`` route is also served under ``/diaries/...``, as thankly
mounts its diary router twice.

Besides the multipart upload it serves the app's presigned flow: ``POST
/diary/audio/presigned-url`` signs a PUT to the S3 stand-in (`probes.sim.s3`,
under ``/_s3/...`` on the same port), and ``POST /diary/voice/async-with-url``
creates the task from ``final_url``, with the audio as base64 or fetched from
the stand-in by the job. ``/_sim/tasks/{id}/upload`` times each step.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import random
import re
import time
import uuid
from bisect import bisect_right
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from probes import __version__
from probes.sim.i18n import MESSAGES, language_of
from probes.sim.progress import Intake, Phase, State, build_schedule, persisted_indices, progress_events
from probes.sim.s3 import PREFIX as S3_PREFIX, S3StandIn, sleep_until
from probes.sim.scenarios import Faults, Scenario

MIN_DURATION_S = 5
MAX_DURATION_S = 600
MIN_AUDIO_BYTES = 1000
# Oldest tasks are forgotten beyond this, so a long load run cannot exhaust memory: ~15 KB a task once every
# state was answered (schedule, diary, cached answers; tests/sim/test_sim_memory.py), so ~750 MB at most; a load run of 10 minutes at
# 50 new flows a second makes 30,000, and a task older than the app's 5-minute give-up is never polled.
MAX_TASKS = 50_000
# A form field of async-with-url: the app sends base64 only for files <= 5 MiB, 6.7 MiB of text;
# Starlette's default (1 MiB) would refuse what the app sends, anything larger is not the app.
MAX_FORM_PART_BYTES = 7 * 1024 * 1024
# An audio_url the backend handed out is origin + bucket + a key of at most 1024 bytes, at most 3
# characters a byte once quoted; a longer one is refused before it is kept (it goes into errors).
MAX_AUDIO_URL_CHARS = 4096
_BEARER = re.compile(r"^Bearer\s+(\S+)\s*$")
_INT = TypeAdapter(int)
_JSON = "application/json"
VERSION_HEADER = "x-app-version"
DIARY_PREFIXES = ("/diary", "/diaries")  # thankly includes its diary router under both


def format_seconds(value: float) -> str:
    """Retry-After text: an integer when integral, else a short decimal ("0.1")."""
    if value == int(value):
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0.001"


class Task:
    """One upload: who owns it, when it started, and its precomputed schedule."""

    __slots__ = ("task_id", "user", "t0", "t0_wall", "schedule", "times", "persisted", "owner", "visible_at",
                 "diary", "diary_id", "cache", "plan", "done_at", "answered", "key", "fetch")

    def __init__(self, task_id: str, user: str, t0: float, schedule: list[State], owner: int,
                 visible_at: float, diary: dict[str, Any], plan: Any, persisted: bool, t0_wall: float = 0.0) -> None:
        self.task_id = task_id
        self.user = user
        self.t0 = t0
        self.t0_wall = t0_wall
        self.schedule = schedule
        self.times = [s.t for s in schedule]
        self.persisted = persisted_indices(schedule) if persisted else None
        self.owner = owner
        self.visible_at = visible_at
        self.diary = diary
        self.diary_id = diary["diary_id"]
        self.cache: dict[tuple[int, str], bytes] = {}
        self.plan = plan
        # when the diary exists (monotonic); None for a job that fails or never ends
        self.done_at = t0 + schedule[-1].t if schedule[-1].status == "completed" else None
        self.answered: float | None = None  # when the create request was answered (monotonic)
        self.key: str | None = None  # the S3 stand-in's object key its audio_url names (async-with-url)
        self.fetch: dict[str, Any] | None = None  # the job's GET of audio_url: start_s, end_s, ok (URL only)

    def index_at(self, now: float) -> int:
        return bisect_right(self.times, now - self.t0) - 1


class Simulator:
    """State of one simulated backend: its tasks, diaries, clocks and random streams."""

    def __init__(self, scenario: Scenario, time_scale: float = 1.0, require_auth: bool = False,
                 seed: int | None = None) -> None:
        self.scenario = scenario
        self.scale = time_scale
        self.require_auth = require_auth
        self.seed = scenario.seed if seed is None else seed
        self.tasks: dict[str, Task] = {}
        self.diaries: dict[str, Task] = {}
        self.user_diaries: dict[str, dict[str, Task]] = {}  # user -> diary_id -> task, for /diary/list
        self.deleted: set[str] = set()
        self.counter = itertools.count()
        self.rr = itertools.count()
        self.fault_rng = random.Random(f"{self.seed}:faults")
        self.store_rng = random.Random(f"{self.seed}:db")
        self.last_activity = float("-inf")  # a fresh server is cold
        self.cold_until = float("-inf")
        self.labels = {lang: scenario.label_table(lang) for lang in ("zh", "en")}
        self.instance_names = [f"sim-{i}" for i in range(scenario.instances)]
        # built once: the hot path hands Starlette a ready dict
        self.instance_headers = [{"x-instance": name, VERSION_HEADER: scenario.version}
                                 for name in self.instance_names]
        self.s3 = S3StandIn(scenario.presigned, time_scale, self.seed)
        self.presign_rng = random.Random(f"{self.seed}:presign")

    # -- helpers -------------------------------------------------------------

    def pick_instance(self) -> int:
        n = self.scenario.instances
        return 0 if n == 1 else next(self.rr) % n

    def json(self, body: Any, status: int, instance: int, headers: dict[str, str] | None = None) -> Response:
        h = dict(self.instance_headers[instance])
        if headers:
            h.update(headers)
        return Response(orjson.dumps(body), status_code=status, headers=h, media_type=_JSON)

    def user_of(self, request: Request) -> str | None:
        """The bearer token is the user; None when auth is required and missing or malformed."""
        header = request.headers.get("authorization")
        match = _BEARER.match(header) if header else None
        if match:
            return match.group(1)
        return None if self.require_auth else "anonymous"

    def touch(self, t0: float) -> float:
        """Count a request as API activity (a cold instance wakes); how long it must wait for the instance."""
        cold = self.scenario.cold_start
        if cold.delay_s > 0 and t0 - self.last_activity >= cold.idle_s * self.scale:
            self.cold_until = t0 + cold.delay_s * self.scale
        self.last_activity = t0
        return max(0.0, self.cold_until - t0)

    def fault(self, faults: Faults, lang: str, instance: int) -> Response | None:
        """An injected 5xx or 429 for this request, or None."""
        if not faults.active:
            return None
        r = self.fault_rng.random()
        if r < faults.error_rate:
            return self.json({"detail": MESSAGES[lang]["unavailable"]}, faults.error_status, instance)
        if r < faults.error_rate + faults.rate_limit_rate:
            retry = format_seconds(faults.retry_after_s * self.scale)
            return self.json({"detail": MESSAGES[lang]["rate_limited"]}, 429, instance, {"retry-after": retry})
        return None

    def render(self, task: Task, index: int, lang: str) -> bytes:
        """A progress answer's body, kept in the task's cache: copied to its own size, because orjson's
        bytes keep the 4 KB buffer they were written into (3.13: 4,098 B held for a 300 B answer, ~100 KB
        a task, 7.8 GB after a few benchmark runs)."""
        state = task.schedule[index]
        step_name, message = self.labels[lang][state.label]
        return memoryview(orjson.dumps({
            "task_id": task.task_id,
            "status": state.status,
            "progress": state.progress,
            "step": state.step,
            "step_name": step_name,
            "message": message,
            "diary": task.diary if state.status == "completed" else None,
            "error": state.error,
        })).tobytes()

    def make_diary(self, user: str, lang: str, duration: int, image_urls: list[str], completes_at_wall: float,
                   audio_url: str | None = None) -> dict[str, Any]:
        created = datetime.fromtimestamp(completes_at_wall, tz=timezone.utc)
        diary_id = str(uuid.uuid4())
        title = "A Grateful Walk in the Park"
        text = ("Today I am grateful for a long walk in the park with my sister, "
                "and for the warm cup of tea we shared afterwards.")
        reply = "What a lovely way to spend the day. Moments like that walk are worth holding on to."
        rationale = "The writer expresses thankfulness for time shared with family."
        return {
            "diary_id": diary_id,
            "user_id": user,
            "created_at": created.isoformat(),
            "date": created.date().isoformat(),
            "language": lang,
            "title": title,
            "original_content": text,
            "polished_content": text,
            "ai_feedback": reply,
            "audio_url": audio_url or f"https://thankly-sim-audio.invalid/audio/{diary_id}.m4a",
            "audio_duration": duration,
            "image_urls": image_urls,
            "emotion_data": {
                "emotion": "Grateful",
                "confidence": 0.9,
                "rationale": rationale,
                "source": "text_only",
                "meta": {"text": {"title": title, "polished_content": text, "emotion": "Grateful",
                                  "confidence": 0.9, "rationale": rationale, "reply": reply}},
            },
        }

    def store(self, task: Task) -> None:
        if len(self.tasks) >= MAX_TASKS:
            old = self.tasks.pop(next(iter(self.tasks)))
            self.forget_diary(old)
        self.tasks[task.task_id] = task
        self.diaries[task.diary_id] = task
        self.user_diaries.setdefault(task.user, {})[task.diary_id] = task

    def forget_diary(self, task: Task) -> None:
        self.diaries.pop(task.diary_id, None)
        own = self.user_diaries.get(task.user)
        if own is not None:
            own.pop(task.diary_id, None)
            if not own:
                del self.user_diaries[task.user]

    def diary_of(self, diary_id: str, now: float) -> Task | None:
        """The task whose diary this is, once the job has completed (before that it does not exist)."""
        task = self.diaries.get(diary_id)
        if task is None or task.done_at is None or now < task.done_at:
            return None
        return task

    # -- endpoints -----------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        t0 = time.monotonic()  # ground-truth zero: the handler received the upload
        wall0 = time.time()
        instance = self.pick_instance()
        lang = language_of(request.headers.get("accept-language"))
        user = self.user_of(request)
        if user is None:
            return self.json({"detail": MESSAGES[lang]["unauthorized"]}, 401, instance)
        self.touch(t0)
        if (resp := self.fault(self.scenario.faults.upload, lang, instance)) is not None:
            return resp

        form = await request.form(max_files=4, max_fields=32)
        try:
            errors: list[dict[str, Any]] = []
            audio = form.get("audio")
            if audio is None:
                errors.append({"type": "missing", "loc": ["body", "audio"], "msg": "Field required", "input": None})
            elif not isinstance(audio, UploadFile):
                errors.append({"type": "value_error", "loc": ["body", "audio"],
                               "msg": "Value error, Expected UploadFile, received: <class 'str'>",
                               "input": audio, "ctx": {"error": {}}})
            duration = _int_field(form, "duration", errors)
            if errors:
                return self.json({"detail": errors}, 422, instance)
            assert isinstance(audio, UploadFile)
            problem = None
            if duration < MIN_DURATION_S:
                problem = "too_short"
            elif duration > MAX_DURATION_S:
                problem = "too_long"
            elif not (audio.content_type or "").startswith("audio/"):
                problem = "bad_type"
            elif (audio.size or 0) < MIN_AUDIO_BYTES:
                problem = "too_small"
            if problem:
                return self.json({"detail": MESSAGES[lang][problem]}, 400, instance)
            image_urls = _image_urls(form.get("image_urls"))
        finally:
            await form.close()

        wait = max(0.0, self.cold_until - t0)
        n = next(self.counter)
        plan = self.scenario.plan(random.Random(f"{self.seed}:{n}"))
        schedule = build_schedule(plan, scale=self.scale, offset=wait)
        completes_at = wall0 + schedule[-1].t
        task = Task(
            task_id=str(uuid.uuid4()), user=user, t0=t0, schedule=schedule, owner=instance,
            visible_at=t0 + wait + self.scenario.not_found_window_s * self.scale,
            diary=self.make_diary(user, lang, duration, image_urls, completes_at), plan=plan,
            persisted=self.scenario.instances > 1 or self.scenario.db.active, t0_wall=wall0,
        )
        self.store(task)
        if wait > 0:
            await asyncio.sleep(max(0.0, t0 + wait - time.monotonic()))
        task.answered = time.monotonic()
        return self.json({"task_id": task.task_id, "status": "processing", "message": MESSAGES[lang]["accepted"]},
                         200, instance)

    async def presign(self, request: Request) -> Response:
        """thankly's ``get_audio_presigned_url``: a PUT URL for ``audio/{8 hex}-{file_name}``, signed for the
        content type, with the object's plain URL beside it (the scenario's ``[presigned]`` says how)."""
        t0 = time.monotonic()
        instance = self.pick_instance()
        lang = language_of(request.headers.get("accept-language"))
        user = self.user_of(request)
        if user is None:
            return self.json({"detail": MESSAGES[lang]["unauthorized"]}, 401, instance)
        wait = self.touch(t0)
        if (resp := self.fault(self.scenario.faults.presign, lang, instance)) is not None:
            return resp
        form = await request.form(max_files=4, max_fields=32)
        try:
            errors: list[dict[str, Any]] = []
            file_name = _str_field(form, "file_name", errors, "recording.m4a")
            content_type = _str_field(form, "content_type", errors, "audio/m4a")
            if errors:
                return self.json({"detail": errors}, 422, instance)
        finally:
            await form.close()
        if not content_type.startswith("audio/"):
            return self.json({"detail": f"Invalid content type: {content_type}. Must be audio/*"}, 400, instance)
        key = f"audio/{uuid.uuid4().hex[:8]}-{file_name}"
        presigned_url, final_url = self.s3.presign(_origin(request), key, content_type)
        latency = self.scenario.presigned.presign.draw(self.presign_rng) * self.scale
        await sleep_until(t0 + wait + latency)
        self.s3.note_presign(key, t0, time.monotonic())
        return self.json({"presigned_url": presigned_url, "s3_key": key, "final_url": final_url}, 200, instance)

    async def upload_with_url(self, request: Request) -> Response:
        """thankly's ``create_voice_diary_async_with_url``: the task starts at 15 % "音频已上传".

        With ``audio_content_base64`` that decodes and passes validation the job runs on it at once; otherwise
        (none, bad base64, too small, a bad duration: thankly falls back on any error) the job first GETs
        ``audio_url`` from the S3 stand-in, for the scenario's fetch time, and fails like thankly when that
        GET fails. ``audio_url`` must start with https:// as in production, or be this simulator's own http
        origin, since it serves plain http on loopback; it never fetches from another host.
        """
        t0 = time.monotonic()  # ground-truth zero, as for the multipart upload
        wall0 = time.time()
        instance = self.pick_instance()
        lang = language_of(request.headers.get("accept-language"))
        user = self.user_of(request)
        if user is None:
            return self.json({"detail": MESSAGES[lang]["unauthorized"]}, 401, instance)
        self.touch(t0)
        if (resp := self.fault(self.scenario.faults.upload, lang, instance)) is not None:
            return resp
        origin = _origin(request)
        form = await request.form(max_files=4, max_fields=32, max_part_size=MAX_FORM_PART_BYTES)
        try:
            errors: list[dict[str, Any]] = []
            audio_url = _str_field(form, "audio_url", errors)
            duration = _int_field(form, "duration", errors)
            encoded = _str_field(form, "audio_content_base64", errors, "")
            if errors:
                return self.json({"detail": errors}, 422, instance)
            if (len(audio_url) > MAX_AUDIO_URL_CHARS
                    or not audio_url.startswith(("https://", origin + "/"))):
                return self.json({"detail": MESSAGES[lang]["bad_audio_url"]}, 400, instance)
            image_urls = _image_urls(form.get("image_urls"))
        finally:
            await form.close()

        audio = _decode_base64(encoded) if encoded else None
        if audio is not None and _audio_problem(duration, len(audio)):
            audio = None  # thankly validates the decoded audio inside its try, and falls back to the URL
        intake: Intake = "base64" if audio is not None else "url"
        failure: tuple[Phase, str] | None = None
        if intake == "url":
            obj, fetch_error = self.s3.fetch(origin, audio_url)
            if obj is None:
                failure = ("fetch", fetch_error or "")  # thankly: progress stays 15 %, error = str(exception)
            elif problem := _audio_problem(duration, len(obj.body)):
                failure = ("validation", MESSAGES[lang][problem])  # the job's validate_audio_quality
        wait = max(0.0, self.cold_until - t0)
        n = next(self.counter)
        plan = self.scenario.plan(random.Random(f"{self.seed}:{n}"), intake)
        if failure is not None:
            plan = replace(plan, fail_phase=failure[0], error=failure[1], stuck_phase=None)
        schedule = build_schedule(plan, scale=self.scale, offset=wait)
        task = Task(
            task_id=str(uuid.uuid4()), user=user, t0=t0, schedule=schedule, owner=instance,
            visible_at=t0 + wait + self.scenario.not_found_window_s * self.scale,
            diary=self.make_diary(user, lang, duration, image_urls, wall0 + schedule[-1].t, audio_url), plan=plan,
            persisted=self.scenario.instances > 1 or self.scenario.db.active, t0_wall=wall0,
        )
        target = self.s3.key_of(origin, audio_url)
        task.key = target[1] if target is not None else None
        if intake == "url":
            task.fetch = {"start_s": round(wait, 6), "end_s": round(wait + plan.fetch_s * self.scale, 6),
                          "ok": failure is None or failure[0] != "fetch"}
        self.store(task)
        if wait > 0:
            await asyncio.sleep(max(0.0, t0 + wait - time.monotonic()))
        task.answered = time.monotonic()
        return self.json({"task_id": task.task_id, "status": "processing", "message": MESSAGES[lang]["accepted"]},
                         200, instance)

    async def progress(self, request: Request) -> Response:
        """The hot path: keep it to lookups."""
        now = time.monotonic()
        instance = self.pick_instance()
        headers = request.headers
        lang = language_of(headers.get("accept-language"))
        user = self.user_of(request)
        if user is None:
            return self.json({"detail": MESSAGES[lang]["unauthorized"]}, 401, instance)
        self.last_activity = now
        faults = self.scenario.faults.progress
        if faults.active and (resp := self.fault(faults, lang, instance)) is not None:
            return resp
        task = self.tasks.get(request.path_params["task_id"])
        if task is None or now < task.visible_at:
            return self.json({"detail": MESSAGES[lang]["task_not_found"]}, 404, instance)
        stale = instance != task.owner
        store = self.scenario.db
        if store.active:
            r = self.store_rng.random()
            if r < store.lost_read_rate:  # a throttled read, swallowed: "not found"
                return self.json({"detail": MESSAGES[lang]["task_not_found"]}, 404, instance)
            stale = stale or r < store.lost_read_rate + store.stale_read_rate
        if task.user != user:
            return self.json({"detail": MESSAGES[lang]["forbidden"]}, 403, instance)
        index = task.index_at(now)
        if stale and task.persisted is not None:
            index = task.persisted[index]
        key = (index, lang)
        body = task.cache.get(key)
        if body is None:
            body = task.cache[key] = self.render(task, index, lang)
        return Response(body, headers=self.instance_headers[instance], media_type=_JSON)

    def caller(self, request: Request) -> tuple[float, int, str, str] | Response:
        """(now, instance, language, user) of a diary request, or its 401; the request counts as activity."""
        now = time.monotonic()
        instance = self.pick_instance()
        lang = language_of(request.headers.get("accept-language"))
        user = self.user_of(request)
        if user is None:
            return self.json({"detail": MESSAGES[lang]["unauthorized"]}, 401, instance)
        self.last_activity = now
        return now, instance, lang, user

    async def delete_diary(self, request: Request) -> Response:
        caller = self.caller(request)
        if isinstance(caller, Response):
            return caller
        now, instance, lang, user = caller
        if (resp := self.fault(self.scenario.faults.delete, lang, instance)) is not None:
            return resp
        diary_id = request.path_params["diary_id"]
        task = self.diary_of(diary_id, now)
        if task is None:
            return self.json({"detail": MESSAGES[lang]["diary_not_found"]}, 404, instance)
        if task.user != user:
            return self.json({"detail": MESSAGES[lang]["diary_forbidden"]}, 403, instance)
        self.forget_diary(task)
        return self.json({"status": "deleted", "diary_id": diary_id, "message": MESSAGES[lang]["deleted"]},
                         200, instance)

    async def list_diaries(self, request: Request) -> Response:
        """The caller's diaries, newest first (thankly queries its table by user, descending)."""
        caller = self.caller(request)
        if isinstance(caller, Response):
            return caller
        now, instance, lang, user = caller
        done = [t for t in self.user_diaries.get(user, {}).values() if t.done_at is not None and t.done_at <= now]
        done.sort(key=lambda t: t.done_at or 0.0, reverse=True)
        return self.json([t.diary for t in done], 200, instance)

    async def get_diary(self, request: Request) -> Response:
        """One diary; another user's answers 404 like thankly's (it looks diaries up by user)."""
        caller = self.caller(request)
        if isinstance(caller, Response):
            return caller
        now, instance, lang, user = caller
        task = self.diary_of(request.path_params["diary_id"], now)
        if task is None or task.user != user:
            return self.json({"detail": MESSAGES[lang]["diary_not_found"]}, 404, instance)
        return self.json(task.diary, 200, instance)

    async def health(self, request: Request) -> Response:
        """thankly's ``{"status", "config", "timestamp"}``, plus the version and the simulator's own facts."""
        return self.json({
            "status": "healthy",
            "config": "ok",
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "service": "thankly-sim",
            "version": self.scenario.version,
            "harness_version": __version__,
            "simulator": {"scenario": self.scenario.name, "time_scale": self.scale,
                          "instances": self.scenario.instances, "seed": self.seed},
        }, 200, self.pick_instance())

    async def root(self, request: Request) -> Response:
        """thankly's ``/`` (its only version field, a constant there; the scenario's version here)."""
        return self.json({"message": "欢迎使用感恩日记API", "version": self.scenario.version, "docs": "/docs"},
                         200, self.pick_instance())

    async def events(self, request: Request) -> Response:
        """Ground truth: ``[[t_s, progress, status], ...]`` with ``t_s <= now``."""
        now = time.monotonic()
        task = self.tasks.get(request.path_params["task_id"])
        if task is None:
            return self.json({"detail": "unknown task"}, 404, 0)
        return self.json(progress_events(task.schedule, now - task.t0), 200, 0)

    async def task_upload(self, request: Request) -> Response:
        """Ground truth of how the audio came, on the events' clock (0 = create received; earlier steps < 0).

        ``presign`` (request received -> answered), ``put`` (the key's last PUT: request received ->
        answered, with its status), ``create`` and, when the job fetched the object, ``fetch``; ``presign``
        and ``put`` are linked to the task through the object key in its ``audio_url``; null when absent.
        """
        task = self.tasks.get(request.path_params["task_id"])
        if task is None:
            return self.json({"detail": "unknown task"}, 404, 0)

        def span(start: float, end: float | None) -> dict[str, float | None]:
            return {"start_s": round(start - task.t0, 6), "end_s": None if end is None else round(end - task.t0, 6)}

        record = self.s3.ledger.get(task.key) if task.key is not None else None
        put = None
        if record is not None and record.put is not None:
            put = {**span(*record.put), "status": record.put_status, "bytes": record.put_bytes,
                   "attempts": record.put_attempts}
        return self.json({
            "task_id": task.task_id,
            "variant": task.plan.intake,
            "key": task.key,
            "presign": span(*record.presign) if record is not None and record.presign is not None else None,
            "put": put,
            "create": span(task.t0, task.answered),
            "fetch": task.fetch,
        }, 200, 0)

    async def task_detail(self, request: Request) -> Response:
        """Ground truth with steps, labels, the drawn plan and ``t0`` on the server's monotonic clock."""
        now = time.monotonic()
        task = self.tasks.get(request.path_params["task_id"])
        if task is None:
            return self.json({"detail": "unknown task"}, 404, 0)
        labels = self.labels["zh"]
        states = [
            {"t_s": round(s.t, 6), "progress": s.progress, "step": s.step, "step_name": labels[s.label][0],
             "message": labels[s.label][1], "status": s.status, "error": s.error}
            for s in task.schedule if s.t <= now - task.t0
        ]
        return self.json({
            "task_id": task.task_id, "user": task.user, "owner": self.instance_names[task.owner],
            "t0_monotonic": task.t0, "t0_wall": task.t0_wall, "elapsed_s": now - task.t0,
            "visible_after_s": task.visible_at - task.t0,
            "plan": {"validation_s": task.plan.validation_s, "transcription_s": task.plan.transcription_s,
                     "llm_s": task.plan.llm_s, "saving_s": task.plan.saving_s,
                     "fail_phase": task.plan.fail_phase, "stuck_phase": task.plan.stuck_phase,
                     "intake": task.plan.intake, "fetch_s": task.plan.fetch_s},
            "states": states,
        }, 200, 0)


def _origin(request: Request) -> str:
    """``http://host:port`` of the socket the request came in on: the simulator's own origin, whatever Host says."""
    server = request.scope.get("server")
    if not server or server[1] is None:
        return str(request.base_url).rstrip("/")
    host = f"[{server[0]}]" if ":" in server[0] else server[0]
    return f"http://{host}:{server[1]}"


def _missing(name: str) -> dict[str, Any]:
    return {"type": "missing", "loc": ["body", name], "msg": "Field required", "input": None}


def _str_field(form: Any, name: str, errors: list[dict[str, Any]], default: str | None = None) -> str:
    """A text form field as FastAPI's ``str = Form(...)`` reads it (``default`` None: required); 422s go to errors."""
    value = form.get(name)
    if value is None:
        if default is None:
            errors.append(_missing(name))
        return default or ""
    if not isinstance(value, str):
        errors.append({"type": "string_type", "loc": ["body", name], "msg": "Input should be a valid string",
                       "input": None})
        return ""
    return value


def _int_field(form: Any, name: str, errors: list[dict[str, Any]]) -> int:
    """A required integer form field as FastAPI's ``int = Form(...)`` reads it; 422s go to errors."""
    raw = form.get(name)
    if raw is None:
        errors.append(_missing(name))
        return 0
    try:
        return _INT.validate_python(raw if isinstance(raw, str) else None)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        errors.append({"type": err["type"], "loc": ["body", name], "msg": err["msg"],
                       "input": raw if isinstance(raw, str) else None})
        return 0


def _decode_base64(text: str) -> bytes | None:
    """``base64.b64decode`` as thankly calls it (characters outside the alphabet dropped); None when it raises."""
    try:
        return base64.b64decode(text)
    except ValueError:  # binascii.Error (padding), or non-ASCII text
        return None


def _audio_problem(duration: int, size: int) -> str | None:
    """thankly's validate_audio_quality: which message key refuses this audio, or None."""
    if duration < MIN_DURATION_S:
        return "too_short"
    if duration > MAX_DURATION_S:
        return "too_long"
    if size < MIN_AUDIO_BYTES:
        return "too_small"
    return None


def _image_urls(value: Any) -> list[str]:
    """The optional ``image_urls`` form field: a JSON list or comma-separated URLs."""
    if not isinstance(value, str) or not value.strip():
        return []
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value.split(",")
    if isinstance(parsed, str):
        parsed = [parsed]
    if not isinstance(parsed, list):
        return []
    return [str(u).strip() for u in parsed if str(u).strip()]


def create_app(scenario: Scenario, time_scale: float = 1.0, require_auth: bool = False,
               seed: int | None = None) -> Starlette:
    """The ASGI app for one simulated backend; ``app.state.sim`` is its `Simulator`."""
    sim = Simulator(scenario, time_scale=time_scale, require_auth=require_auth, seed=seed)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return sim.json({"detail": exc.detail}, exc.status_code, 0, dict(exc.headers or {}))

    diary_routes = [
        Route(f"{prefix}{path}", endpoint, methods=[method])
        for prefix in DIARY_PREFIXES
        for path, endpoint, method in (
            ("/voice/progress/{task_id}", sim.progress, "GET"),
            ("/voice/async", sim.upload, "POST"),
            ("/voice/async-with-url", sim.upload_with_url, "POST"),
            ("/audio/presigned-url", sim.presign, "POST"),
            ("/list", sim.list_diaries, "GET"),  # before /{diary_id}, which would match "list"
            ("/{diary_id}", sim.get_diary, "GET"),
            ("/{diary_id}", sim.delete_diary, "DELETE"),
        )
    ]
    app = Starlette(
        routes=[
            *diary_routes,
            Route("/health", sim.health, methods=["GET"]),
            Route("/", sim.root, methods=["GET"]),
            Route("/_sim/tasks/{task_id}/events", sim.events, methods=["GET"]),
            Route("/_sim/tasks/{task_id}/upload", sim.task_upload, methods=["GET"]),
            Route(S3_PREFIX + "/{bucket}/{key:path}", sim.s3.put_object, methods=["PUT"]),
            Route(S3_PREFIX + "/{bucket}/{key:path}", sim.s3.get_object, methods=["GET"]),
            Route("/_sim/tasks/{task_id}", sim.task_detail, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.state.sim = sim
    return app
