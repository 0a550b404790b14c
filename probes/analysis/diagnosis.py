"""Diagnosis: what a run's evidence says about each cause the incident suspected. Pure: records in, findings out.

The thankly incident (a 5 s clip taking over a minute, the bar frozen at
32 %) had seven suspects. For each, one finding (DESIGN "Diagnosis"):

    {"cause": id, "verdict": "for" | "against" | "none", "evidence": {numbers}, "next": "what to check"}

The rules follow how the real backend behaves (shared/reference): progress is
a timer that climbs while the backend waits, so a slow Whisper shows as a slow
climb to 55 % and a plateau there; a freeze at 32 % means the timer itself is
not running (code that predates it, or a stage that blocks it). All times are
in the run's scenario seconds (a time-scaled simulator's divided back).

    slow_transcription  the transcription phase (first poll >= 20 % -> first past 55 %) against the
                        8 s goal; where the longest stall sits (inside 22-58 % or not)
    stale_deploy        against a baseline: a version header or /health field differs, or a state
                        (step name, message) one side shows in a band the other side polled at least
                        twice without ever showing it (a state a fine baseline could have seen)
    cold_start          the first probe (after --idle-before S) against the warm ones: upload time and
                        time to the first progress answer
    rate_limiting       429s, and failed jobs whose error names a rate limit
    lost_state          progress going backwards, 404s for a task already seen, several instances
                        answering, stalls on the running maximum; 5xx per endpoint as context
    backend_errors      5xx answers, connection failures, failed jobs
    frontend_polling    what the app, with its own cadence and 404/back-off rules, would have shown
                        against when the backend finished (replayed over a fine-cadence run), and the
                        app's 5-minute give-up
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Any, Iterable, Mapping, Sequence

from probes.analysis.metrics import nearest_rank
from probes.analysis.timeline import TRANSCRIPTION_FROM, TRANSCRIPTION_PAST

CAUSES = ("stale_deploy", "slow_transcription", "cold_start", "rate_limiting", "lost_state", "backend_errors",
          "frontend_polling")
FOR, AGAINST, NONE = "for", "against", "none"

TRANSCRIPTION_GOAL_S = 8.0      # the incident's own criterion: Whisper answers within 8 s
TRANSCRIPTION_BAND = (22, 58)   # progress while transcription runs: 22 % validating .. 58 % done
COLD_MIN_EXTRA_S = 1.0          # a cold first probe waits this much longer than the warm ones ...
COLD_MIN_RATIO = 2.0            # ... and at least twice as long
APP_LAG_FOR_S = 5.0             # the app shows the result this much later than the backend finished
APP_LAG_AGAINST_S = 1.5         # within the app's own 404 wait: its cadence costs no more than this
RATE_LIMIT_WORDS = ("RATE", "THROTTL", "TOO_MANY", "429", "QUOTA")
VERSION_HEADERS = ("x-app-version", "x-version", "x-commit", "x-git-sha", "x-build")
VERSION_FIELDS = ("version", "commit", "git_sha", "build")
NOT_JUDGED = frozenset({"aborted", "cut_off"})


@dataclass
class Finding:
    cause: str
    verdict: str
    evidence: dict[str, Any] = field(default_factory=dict)
    next: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"cause": self.cause, "verdict": self.verdict, "evidence": self.evidence, "next": self.next}


@dataclass(frozen=True)
class Side:
    """One run as the diagnosis reads it: run.json and its probe records."""

    meta: Mapping[str, Any]
    records: Sequence[Mapping[str, Any]]
    _rows: dict[int, tuple[list[Sequence[Any]], list[Sequence[Any]]]] = field(
        default_factory=dict, repr=False, compare=False)

    def rows(self, record: Mapping[str, Any]) -> list[Sequence[Any]]:
        """The record's well-formed sample rows (parsed once per record)."""
        return self._parsed(record)[0]

    def valid(self, record: Mapping[str, Any]) -> list[Sequence[Any]]:
        """Its valid polls: HTTP 200 with a numeric progress."""
        return self._parsed(record)[1]

    def _parsed(self, record: Mapping[str, Any]) -> tuple[list[Sequence[Any]], list[Sequence[Any]]]:
        key = id(record)
        if key not in self._rows:
            rows = _rows(record)
            self._rows[key] = (rows, [row for row in rows if _valid(row)])
        return self._rows[key]

    @property
    def scale(self) -> float:
        ts = self.meta.get("time_scale")
        return float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) and 0.001 <= ts <= 1000 else 1.0

    @property
    def judged(self) -> list[Mapping[str, Any]]:
        return [r for r in self.records if r.get("outcome") not in NOT_JUDGED]

    @property
    def cadence(self) -> str:
        cadence = self.meta.get("cadence")
        return str(cadence.get("name")) if isinstance(cadence, Mapping) else "app"


def diagnose(run: Side, baseline: Side | None = None, *, version_header: str | None = None,
             version_field: str | None = None) -> list[Finding]:
    """One finding per cause, in CAUSES order."""
    return [
        stale_deploy(run, baseline, version_header, version_field),
        slow_transcription(run),
        cold_start(run),
        rate_limiting(run),
        lost_state(run),
        backend_errors(run),
        frontend_polling(run),
    ]


# -- helpers ----------------------------------------------------------------------------------

def _rows(record: Mapping[str, Any]) -> list[Sequence[Any]]:
    rows = record.get("samples")
    return [r for r in rows if isinstance(r, (list, tuple)) and len(r) == 7] if isinstance(rows, list) else []


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _valid(row: Sequence[Any]) -> bool:
    return row[1] == 200 and _num(row[2]) is not None


def _r(x: float | None, digits: int = 2) -> float | None:
    return None if x is None else round(x, digits)


# -- slow transcription -----------------------------------------------------------------------

def slow_transcription(run: Side) -> Finding:
    measured = [v / run.scale for r in run.judged if (v := _num(r.get("transcription_s"))) is not None]
    # A poll gap (a 429's Retry-After, a back-off) stretches the measured phase; the phase surely lasted
    # from the first poll at >= 20 % to the last poll still at <= 55 %. Only that bound can be evidence.
    surely = [s / run.scale for r in run.judged if (s := _surely_transcribing(run.valid(r))) is not None]
    # probes still transcribing when they ended: the phase lasted at least from 20 % to their end
    unfinished = []
    for r in run.judged:
        if _num(r.get("transcription_s")) is not None or r.get("outcome") == "completed":
            continue
        rows = run.valid(r)
        start = next((row[0] for row in rows if row[2] >= TRANSCRIPTION_FROM), None)
        peak = max((row[2] for row in rows), default=None)
        if start is not None and peak is not None and peak <= TRANSCRIPTION_PAST:
            unfinished.append((rows[-1][0] - start) / run.scale)
    stalls = [r.get("longest_stall") for r in run.judged if isinstance(r.get("longest_stall"), Mapping)]
    at = [_num(s.get("progress")) for s in stalls]
    held = [(_num(s.get("s")) or 0.0) / run.scale for s in stalls]
    typical = statistics.mode([a for a in at if a is not None]) if any(a is not None for a in at) else None
    held_there = [h for a, h in zip(at, held) if a == typical]
    # Where the bar got to while Whisper worked tells a frozen bar (code without the timer) from a slow Whisper.
    # The longest stall cannot: the healthy timer holds 22 % for ~2 s, as long as a slow Whisper's 55 % plateau.
    peaks = [p for r in run.judged if (p := _transcribing_peak(run.valid(r))) is not None]
    climbed_to = statistics.median_low(peaks) if peaks else None
    evidence: dict[str, Any] = {
        "goal_s": TRANSCRIPTION_GOAL_S, "n": len(measured), "p50_s": _r(nearest_rank(measured, "p50")),
        "p90_s": _r(nearest_rank(measured, "p90")), "max_s": _r(nearest_rank(measured, "max")),
        "unfinished": len(unfinished), "unfinished_at_least_s": _r(max(unfinished, default=None)),
        "longest_stall_at": typical, "longest_stall_p50_s": _r(statistics.median(held_there) if held_there else None),
        "stall_in_transcription_band": typical is not None and TRANSCRIPTION_BAND[0] <= typical <= TRANSCRIPTION_BAND[1],
        "climbed_to": climbed_to,
    }
    evidence["surely_p90_s"] = _r(nearest_rank(surely, "p90"))
    slow = (evidence["surely_p90_s"] or 0) > TRANSCRIPTION_GOAL_S or \
        (evidence["unfinished_at_least_s"] or 0) > TRANSCRIPTION_GOAL_S
    if slow:
        if climbed_to is not None and climbed_to < 42:
            hint = (f"the bar froze at {climbed_to:g} %, not in a slow climb to 55 %: the timer that climbs while "
                    "Whisper works was not running, so check that the deployed code has it (stale deploy) or what "
                    "blocks before it")
        else:
            where = f"the bar climbed to {climbed_to:g} %" if climbed_to is not None else "the bar stood still"
            hint = f"{where} while transcription ran: check Whisper's latency in the backend logs and OpenAI's status"
        return Finding("slow_transcription", FOR, evidence, hint)
    if measured:
        return Finding("slow_transcription", AGAINST, evidence, "transcription met its 8 s goal in every probe")
    return Finding("slow_transcription", NONE, evidence,
                   "no probe saw the transcription phase (20-55 %) under way; nothing to judge")


def _transcribing_peak(rows: list[Sequence[Any]]) -> float | None:
    """The highest progress a probe saw at 20-55 % before any poll past 55 % (valid polls)."""
    before_answer = takewhile(lambda row: row[2] <= TRANSCRIPTION_PAST, rows)
    return max((row[2] for row in before_answer if row[2] >= TRANSCRIPTION_FROM), default=None)


def _surely_transcribing(rows: list[Sequence[Any]]) -> float | None:
    """From the first poll at >= 20 % to the last poll still at <= 55 % before one past 55 % (valid polls)."""
    start = next((i for i, row in enumerate(rows) if row[2] >= TRANSCRIPTION_FROM), None)
    end = next((i for i, row in enumerate(rows) if row[2] > TRANSCRIPTION_PAST), None)
    if start is None or end is None or end <= start or rows[start][2] > TRANSCRIPTION_PAST:
        return None
    return rows[end - 1][0] - rows[start][0]


# -- stale deploy -----------------------------------------------------------------------------

def _version(side: Side, header: str | None, field_name: str | None) -> tuple[str | None, str | None]:
    """(where, value) of the deployed version: the target's named header/field, else common ones."""
    fp = side.meta.get("fingerprint")
    fp = fp if isinstance(fp, Mapping) else {}
    headers: dict[str, str] = {}
    for key in ("headers", "upload_headers"):
        if isinstance(fp.get(key), Mapping):
            headers.update({str(k).lower(): str(v) for k, v in fp[key].items()})
    for name in ([header.lower()] if header else []) + list(VERSION_HEADERS):
        if name in headers:
            return f"header {name}", headers[name][:80]
    health = fp.get("health")
    if isinstance(health, Mapping):
        for name in ([field_name] if field_name else []) + list(VERSION_FIELDS):
            value = health.get(name)
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                return f"/health {name}", str(value)[:80]
    return None, None


def _states_by_band(side: Side) -> tuple[dict[tuple[str, str], set[str]], dict[str, int]]:
    """(step, message) -> bands it was seen in; band -> polls that saw that band."""
    from probes.analysis.timeline import progress_band

    seen: dict[tuple[str, str], set[str]] = {}
    polls: dict[str, int] = {}
    bands: dict[Any, str] = {}
    for r in side.judged:
        for row in side.valid(r):
            band = bands.get(row[2])
            if band is None:
                band = bands[row[2]] = progress_band(row[2])
            polls[band] = polls.get(band, 0) + 1
            key = ("" if row[4] is None else str(row[4]), "")
            seen.setdefault(key, set()).add(band)
        for state in r.get("states") or []:
            if isinstance(state, list) and len(state) == 3:
                seen.setdefault((str(state[1]), str(state[2])), set()).add(str(state[0]))
    return seen, polls


def _code_signals(a: Side, b: Side) -> list[list[str]]:
    """States b shows in a band a polled at least twice without ever showing them: [step, message, band]."""
    seen_a, polls_a = _states_by_band(a)
    seen_b, _ = _states_by_band(b)
    signals = []
    for (step, message), bands in seen_b.items():
        if not message and any(k[0] == step for k in seen_a):
            continue  # a step-name-only key: the step itself exists on both sides
        if (step, message) in seen_a:
            continue
        covered = sorted(band for band in bands if polls_a.get(band, 0) >= 2)
        if covered:
            signals.append([step, message, covered[0]])
    return signals


def stale_deploy(run: Side, baseline: Side | None, header: str | None, field_name: str | None) -> Finding:
    where, version = _version(run, header, field_name)
    evidence: dict[str, Any] = {"version": version, "version_from": where}
    if baseline is None:
        return Finding("stale_deploy", NONE, evidence,
                       "no baseline to compare with: run with --baseline latest:before-deploy (or a local run)")
    base_where, base_version = _version(baseline, header, field_name)
    evidence.update(baseline_version=base_version, baseline_run=str(baseline.meta.get("run_id", ""))[:100])
    only_run, only_base = _code_signals(baseline, run), _code_signals(run, baseline)
    evidence.update(states_only_here=only_run[:10], states_only_in_baseline=only_base[:10],
                    baseline_cadence=baseline.cadence)
    differs = version is not None and base_version is not None and version != base_version
    if differs or only_run or only_base:
        why = []
        if differs:
            why.append(f"version {base_version} -> {version}")
        if only_run or only_base:
            why.append("progress states that the other side polled past without ever showing")
        return Finding("stale_deploy", FOR, evidence,
                       f"{'; '.join(why)}: check which release each backend runs (the deploy tag, the image "
                       "the function runs) before reading any timing")
    if version is None and base_version is None:
        return Finding("stale_deploy", AGAINST, evidence,
                       "same progress states as the baseline; no version header or /health field to confirm "
                       "(set version_header or version_field for the target)")
    return Finding("stale_deploy", AGAINST, evidence, "same version and the same progress states as the baseline")


# -- cold start -------------------------------------------------------------------------------

def cold_start(run: Side) -> Finding:
    probes = sorted(run.judged, key=lambda r: str(r.get("probe_id", "")))
    idle = _num(run.meta.get("idle_before_s"))
    evidence: dict[str, Any] = {"idle_before_s": idle, "n": len(probes)}
    if len(probes) < 2:
        return Finding("cold_start", NONE, evidence,
                       "needs at least two probes: run with -n 3 --idle-before S (S past the platform's idle time)")
    first, warm = probes[0], probes[1:]
    metrics = {"upload_s": lambda r: _num(r.get("upload_s")),
               "first_progress_s": lambda r: next((row[0] for row in run.valid(r)), None)}
    cold_signs = []
    for name, get in metrics.items():
        value = get(first)
        warm_values = [v for r in warm if (v := get(r)) is not None]
        if value is None or not warm_values:
            continue
        value /= run.scale
        typical = statistics.median(warm_values) / run.scale
        evidence[f"first_{name}"], evidence[f"warm_{name}_p50"] = _r(value, 3), _r(typical, 3)
        if value - typical > COLD_MIN_EXTRA_S and value > COLD_MIN_RATIO * typical:
            cold_signs.append(f"{name} {value:.2f} s against {typical:.2f} s warm")
    if cold_signs:
        return Finding("cold_start", FOR, evidence,
                       f"the first probe waited longer ({'; '.join(cold_signs)}): check the platform's cold "
                       "starts (Lambda init duration, provisioned concurrency) and keep-warm settings")
    if "first_upload_s" not in evidence:
        return Finding("cold_start", NONE, evidence, "no probe got an upload answer to compare")
    if idle is None:
        return Finding("cold_start", AGAINST, evidence,
                       "the first probe was as quick as the rest; to test a real cold start add --idle-before S")
    return Finding("cold_start", AGAINST, evidence, f"after {idle:g} s idle the first probe was as quick as the rest")


# -- rate limiting ----------------------------------------------------------------------------

def rate_limiting(run: Side) -> Finding:
    polls = sum(len(run.rows(r)) for r in run.judged)
    limited = sum(1 for r in run.judged for row in run.rows(r) if row[1] == 429)
    uploads = sum(1 for r in run.judged if r.get("upload_status") == 429)
    coded = sum(1 for r in run.judged if r.get("outcome") in ("failed", "upload_error", "rejected")
                and any(w in str(r.get("error") or "").upper() for w in RATE_LIMIT_WORDS))
    evidence = {"polls": polls, "polls_429": limited, "uploads_429": uploads, "failed_with_rate_limit_code": coded}
    if limited or uploads or coded:
        return Finding("rate_limiting", FOR, evidence,
                       "the backend is throttling: check API Gateway/Lambda concurrency and OpenAI's rate limits "
                       "for this account, and whether the app honours Retry-After")
    return Finding("rate_limiting", AGAINST, evidence, "no 429 and no rate-limit error code in any answer")


# -- lost state -------------------------------------------------------------------------------

def lost_state(run: Side) -> Finding:
    regressions = 0
    late_404 = 0
    instances: set[str] = set()
    errors: dict[str, int] = {"upload": 0, "progress": 0}
    for r in run.judged:
        rows = run.rows(r)
        seen = False
        last = None
        for row in rows:
            if row[1] == 404 and seen:
                late_404 += 1
            if isinstance(row[1], int) and row[1] >= 500:
                errors["progress"] += 1
            if _valid(row):
                seen = True
                if last is not None and row[2] < last:
                    regressions += 1
                last = row[2] if last is None else max(last, row[2])
        if isinstance(r.get("upload_status"), int) and r["upload_status"] >= 500:
            errors["upload"] += 1
        inst = r.get("instances")
        if isinstance(inst, Mapping):
            instances.update(str(k) for k in inst)
    evidence = {"regressions": regressions, "not_found_after_seen": late_404, "instances": len(instances),
                "instance_ids": sorted(instances)[:10], "server_errors_by_endpoint": errors}
    if regressions or late_404:
        parts = []
        if regressions:
            parts.append(f"progress went backwards {regressions} time(s)")
        if late_404:
            parts.append(f"{late_404} poll(s) found no task that had been seen before")
        return Finding("lost_state", FOR, evidence,
                       f"{' and '.join(parts)} across {len(instances) or 'unknown'} instance(s): the task's state "
                       "is not shared (in-memory progress on one instance) or its store drops writes and reads "
                       "(DynamoDB throttling: check ThrottledRequests and the table's capacity)")
    return Finding("lost_state", AGAINST, evidence, "progress never went backwards and no seen task went missing")


# -- backend errors ---------------------------------------------------------------------------

def backend_errors(run: Side) -> Finding:
    server = sum(1 for r in run.judged for row in run.rows(r) if isinstance(row[1], int) and row[1] >= 500)
    upload = sum(1 for r in run.judged if isinstance(r.get("upload_status"), int) and r["upload_status"] >= 500)
    transport = sum(1 for r in run.judged for row in run.rows(r) if row[1] is None)
    upload_failed = sum(1 for r in run.judged if r.get("outcome") == "upload_error")
    failed = [r for r in run.judged if r.get("outcome") == "failed"
              and not any(w in str(r.get("error") or "").upper() for w in RATE_LIMIT_WORDS)]
    codes: dict[str, int] = {}
    for r in failed:
        code = str(r.get("error") or "no error code")[:60]
        codes[code] = codes.get(code, 0) + 1
    top = dict(sorted(codes.items(), key=lambda kv: -kv[1])[:10])  # a backend's codes: the ten most common
    evidence = {"polls_5xx": server, "uploads_5xx": upload, "connection_failures": transport,
                "upload_errors": upload_failed, "failed_jobs": len(failed), "error_codes": top}
    if server or upload or transport or upload_failed or failed:
        return Finding("backend_errors", FOR, evidence,
                       "the backend answered with errors: read its logs for these codes and times (the run's "
                       "started_at and each sample's t_s place them)")
    return Finding("backend_errors", AGAINST, evidence, "no 5xx, no connection failure and no failed job")


# -- frontend polling -------------------------------------------------------------------------

def app_view(record: Mapping[str, Any], scale: float = 1.0) -> tuple[str, float | None]:
    """(outcome, seconds) the thankly app would have shown, replaying its polling rules over a fine timeline.

    Each app poll gets the answer our last poll at or before that moment got (the backend's
    state then), and the probe machine itself decides what the app does next: its cadence, its
    1.5 s wait after an early 404, its back-off, its give-ups. Seconds are when the app would
    have seen the end, in scenario seconds (times divided by `scale`, so a time-scaled run meets
    the app's real 300 ms, 1.5 s and 10 s). ("unknown", None) when the app would poll past what we observed.
    """
    import orjson

    from probes.probe.cadence import Cadence
    from probes.probe.machine import Answer, MachineConfig, ProbeMachine, Send, TransportError

    rows = sorted(([row[0] / scale, *row[1:]] for row in _rows(record) if _num(row[0]) is not None),
                  key=lambda row: row[0])
    if not rows:
        return str(record.get("outcome")), None
    final = rows[-1][5] in ("completed", "failed") and rows[-1][1] == 200
    machine = ProbeMachine(MachineConfig(cadence=Cadence("app"), timeout_s=300.0))
    machine.start()
    upload_s = (_num(record.get("upload_s")) or 0.0) / scale
    action = machine.receive(Answer(0.0, upload_s, 200, {}, b'{"task_id": "replay"}'))
    index = 0
    while isinstance(action, Send):
        at = action.not_before_s
        if at > rows[-1][0] and not final:
            return "unknown", None
        while index + 1 < len(rows) and rows[index + 1][0] <= at:
            index += 1
        row = rows[index]
        if row[1] is None:
            action = machine.receive(TransportError(at, at, "replayed connection failure"))
            continue
        body = orjson.dumps({"progress": row[2], "step": row[3], "step_name": row[4], "status": row[5]})
        action = machine.receive(Answer(at, at, row[1], {}, body))
    if machine.outcome == "completed":
        return "completed", next((s[0] for s in machine.samples if s[5] == "completed"), None)
    return machine.outcome, machine.end_s


def frontend_polling(run: Side) -> Finding:
    evidence: dict[str, Any] = {"cadence": run.cadence}
    noisy = any(row[1] == 429 or (isinstance(row[1], int) and row[1] >= 500) for r in run.judged
                for row in run.rows(r))
    if run.cadence != "fine":
        gave_up = [r for r in run.judged if r.get("outcome") in ("poll_error", "timeout")
                   and str(r.get("error") or "").startswith(("task not found", "not done after"))]
        evidence["app_gave_up"] = len(gave_up)
        if gave_up:
            return Finding("frontend_polling", NONE, evidence,
                           f"{len(gave_up)} probe(s) gave up as the app does; whether the backend finished later "
                           "needs a fine-cadence run: probes run --cadence fine")
        return Finding("frontend_polling", AGAINST if run.judged else NONE, evidence,
                       "probed at the app's own cadence and the app's rules saw every job end")
    lags, gave_up, five_min = [], 0, 0
    for r in run.judged:
        backend_done = _num(r.get("total_s"))
        if backend_done is None:
            continue
        outcome, seen = app_view(r, run.scale)
        if outcome != "completed":
            gave_up += outcome != "unknown"
            five_min += outcome == "timeout"
        elif seen is not None:
            lags.append(seen - backend_done / run.scale)
    evidence.update(backend_completed=sum(1 for r in run.judged if r.get("outcome") == "completed"),
                    app_would_give_up=gave_up, app_gave_up_at_5_min=five_min,
                    app_lag_p50_s=_r(nearest_rank(lags, "p50")), app_lag_max_s=_r(nearest_rank(lags, "max")))
    if gave_up:
        return Finding("frontend_polling", FOR, evidence,
                       f"the app would have given up on {gave_up} job(s) the backend completed (its 404 window is "
                       "10 s, its patience 5 minutes): change the app's polling rules, not the backend")
    worst = nearest_rank(lags, "max")
    if worst is not None and worst > APP_LAG_FOR_S and not noisy:
        return Finding("frontend_polling", FOR, evidence,
                       f"the app would have shown the result up to {worst:.1f} s after the backend finished: "
                       "its cadence or back-off is the delay")
    if worst is None:
        return Finding("frontend_polling", NONE, evidence, "no completed job to replay the app's polling against")
    if worst <= APP_LAG_AGAINST_S or noisy:
        note = "" if not noisy else " (lags after 429/5xx answers belong to those causes)"
        return Finding("frontend_polling", AGAINST, evidence,
                       f"the app would have seen each result within {worst:.1f} s of the backend{note}")
    return Finding("frontend_polling", NONE, evidence,
                   f"the app would have lagged the backend by up to {worst:.1f} s: small, but check the app's cadence")


def to_json(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    return [f.to_json() for f in findings]


def changed(before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(cause, verdict before, verdict after) for every cause that gained or lost evidence for it."""
    old = {f.get("cause"): f.get("verdict") for f in before}
    out = []
    for f in after:
        was, now = old.get(f.get("cause"), NONE), f.get("verdict")
        if was != now and FOR in (was, now):
            out.append((str(f.get("cause")), str(was), str(now)))
    return out
