"""Diagnosis: what a run's evidence says about each cause the incident suspected. Pure: records in, findings out.

The thankly incident (a 5 s clip taking over a minute, the bar frozen at
32 %) had seven suspects. For each, one finding (DESIGN "Diagnosis"):

    {"cause": id, "verdict": "for" | "against" | "none", "evidence": {numbers}, "next": "what to check"}

"for": the run shows the cause's signal. "against": the run could have shown
it -- at least the minimum of evidence named below for that cause -- and did
not. "none": too little evidence either way, and `next` says what to run
instead. Absence of evidence is never reported as evidence of absence.

The rules follow how the real backend behaves (shared/reference): progress is
a timer that climbs while the backend waits, so a slow Whisper shows as a slow
climb to 55 % and a plateau there; a freeze at 32 % means the timer itself is
not running (code that predates it, or a stage that blocks it). All times are
in the run's scenario seconds (a time-scaled simulator's divided back).

    cause               for                                        against needs
    slow_transcription  the phase (first poll >= 20 % -> last      MIN_PROBES probes whose polls bound the phase
                        poll <= 55 %) over 8 s at p90, or still    from above (last poll < 20 % -> first past 55 %)
                        running when a probe ended                 within 8 s at p90
    stale_deploy        a version differs, or at a progress value  a baseline, and STALE_MIN_VALUES progress values
                        both sides polled STALE_MIN_POLLS_AT       each side polled STALE_MIN_POLLS_AT times
                        times they never showed the same state
    cold_start          the first probe waited > 1 s and twice as  --idle-before (the first probe met an idle
                        long as the warm ones for its upload or    backend) and COLD_MIN_WARM warm probes
                        its first answer of any kind
    rate_limiting       any 429, a failed job naming a rate limit  MIN_REQUESTS requests
    lost_state          progress went backwards, or a task already MIN_POLLS_AFTER_SEEN polls of tasks already seen
                        seen answered 404                          (with several instances: by another instance than
                                                                   the one answering that probe most)
    backend_errors      5xx, connection failures, failed jobs      MIN_REQUESTS requests and MIN_PROBES probes
    frontend_polling    the app's rules replayed over a fine run:  at the app cadence: time scale 1 and MIN_PROBES
                        a give-up on a job the backend completed,  probes that all ended; at the fine cadence:
                        or a lag over 5 s not due to 429/5xx       MIN_PROBES replayed jobs, each within 1.5 s
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from probes.analysis.metrics import nearest_rank
from probes.analysis.timeline import TRANSCRIPTION_FROM, TRANSCRIPTION_PAST, progress_band

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

# What "against" rests on at least; below it a finding is "none". Each is the least evidence that
# could have shown its cause.
MIN_PROBES = 3             # the deploy check's default; with fewer, one probe's luck is the whole verdict
MIN_REQUESTS = 30          # no 429 (or 5xx) in 30 requests puts its share under 10 % at 95 % confidence (the
                           # rule of three: 3/n); the simulator's rate-limited and flaky scenarios answer 30 % and 15 %
MIN_POLLS_AFTER_SEEN = 30  # the same bound for reads of a task already seen: only those can go backwards or miss it
STALE_MIN_POLLS_AT = 2     # polls each side needs at one progress value before their states there are compared
STALE_MIN_VALUES = 3       # progress values compared before "the same states" means the same code
COLD_MIN_WARM = 2          # warm probes the first one is compared with (their median)
APP_TIME_SCALE = 1.0       # the app cadence waits real seconds: its rules meet the backend's only unscaled
NEXT_FINE = "probes run --cadence fine -n 8"  # the run that gives every rule its minimum on a ~10 s job
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
    # from the first poll at >= 20 % to the last poll still at <= 55 %. Only that bound can be evidence for.
    surely = [s / run.scale for r in run.judged if (s := _surely_transcribing(run.valid(r))) is not None]
    # ... and it lasted at most from the last poll below 20 % to the first past 55 % (unbounded for a probe
    # that ended inside it). Only that bound can be evidence against: it holds however sparse the polls.
    at_most = [s / run.scale for r in run.judged if (s := _at_most_transcribing(run.valid(r))) is not None]
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
    bound = nearest_rank(at_most, "p90")
    evidence: dict[str, Any] = {
        "goal_s": TRANSCRIPTION_GOAL_S, "n": len(measured), "p50_s": _r(nearest_rank(measured, "p50")),
        "p90_s": _r(nearest_rank(measured, "p90")), "max_s": _r(nearest_rank(measured, "max")),
        "unfinished": len(unfinished), "unfinished_at_least_s": _r(max(unfinished, default=None)),
        "longest_stall_at": typical, "longest_stall_p50_s": _r(statistics.median(held_there) if held_there else None),
        "stall_in_transcription_band": typical is not None and TRANSCRIPTION_BAND[0] <= typical <= TRANSCRIPTION_BAND[1],
        "climbed_to": climbed_to, "surely_p90_s": _r(nearest_rank(surely, "p90")),
        "bounded": len(at_most), "at_most_p90_s": _r(bound) if bound is not None and math.isfinite(bound) else None,
        "min_probes": MIN_PROBES,
    }
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
    if len(at_most) >= MIN_PROBES and bound is not None and bound <= TRANSCRIPTION_GOAL_S:
        return Finding("slow_transcription", AGAINST, evidence,
                       f"transcription met its 8 s goal: at most {bound:.1f} s at p90 of {len(at_most)} probes")
    if not at_most:
        return Finding("slow_transcription", NONE, evidence,
                       f"no probe saw the transcription phase (20-55 %); nothing to judge: run {NEXT_FINE}")
    if len(at_most) < MIN_PROBES:
        return Finding("slow_transcription", NONE, evidence,
                       f"{len(at_most)} probe(s) saw the transcription phase, {MIN_PROBES} are needed: run {NEXT_FINE}")
    low = f"{evidence['surely_p90_s']:g}" if evidence["surely_p90_s"] is not None else "0"
    high = "unbounded" if evidence["at_most_p90_s"] is None else f"{evidence['at_most_p90_s']:g} s"
    return Finding("slow_transcription", NONE, evidence,
                   f"the polls bound the phase only between {low} s and {high} at p90, which straddles the 8 s "
                   f"goal: run {NEXT_FINE}")


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


def _at_most_transcribing(rows: list[Sequence[Any]]) -> float | None:
    """From the last poll below 20 % (else the upload) to the first past 55 % (valid polls).

    inf for a probe that ended inside the phase; None for one that never saw it begin.
    """
    start = next((i for i, row in enumerate(rows) if row[2] >= TRANSCRIPTION_FROM), None)
    if start is None:
        return None
    end = next((i for i in range(start, len(rows)) if rows[i][2] > TRANSCRIPTION_PAST), None)
    if end is None:
        return math.inf
    return rows[end][0] - (rows[start - 1][0] if start else 0.0)


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


Label = tuple[str, str | None]  # (step name, message; None where the probe's states leave it open)


def _labels_by_value(side: Side) -> dict[float, tuple[int, set[Label]]]:
    """Progress value -> (valid polls at it, the (step name, message) labels seen there).

    A poll carries its step name; its message is known only through the probe's states, which
    are kept per ten-percent band, so a label's message is None (unknown) where one band showed
    that step name with several messages.
    """
    messages: dict[tuple[str, str], set[str]] = {}
    for r in side.judged:
        for state in r.get("states") or []:
            if isinstance(state, (list, tuple)) and len(state) == 3:
                key = (str(state[0]), "" if state[1] is None else str(state[1]))
                messages.setdefault(key, set()).add("" if state[2] is None else str(state[2]))
    out: dict[float, tuple[int, set[Label]]] = {}
    bands: dict[Any, str] = {}
    for r in side.judged:
        for row in side.valid(r):
            value = row[2]
            band = bands.get(value)
            if band is None:
                band = bands[value] = progress_band(value)
            name = "" if row[4] is None else str(row[4])
            known = messages.get((band, name), set())
            label = (name, next(iter(known)) if len(known) == 1 else None)
            polls, labels = out.get(value, (0, set()))
            labels.add(label)
            out[value] = (polls + 1, labels)
    return out


def _same_state(a: Label, b: Label) -> bool:
    return a[0] == b[0] and (a[1] is None or b[1] is None or a[1] == b[1])


def _code_signals(run: Side, baseline: Side) -> tuple[int, list[list[Any]]]:
    """(progress values both sides polled STALE_MIN_POLLS_AT times, those where they never showed the same state).

    Compared at one progress value, not in a band: a band holds several states one after another
    (22 % is "validating", then "transcribing"), and a backend whose 404 window hides the first is
    not another build. At one value the same code shows the same states.
    """
    here, there = _labels_by_value(run), _labels_by_value(baseline)
    compared, signals = 0, []
    for value in sorted(set(here) & set(there)):
        (n_here, labels_here), (n_there, labels_there) = here[value], there[value]
        if n_here < STALE_MIN_POLLS_AT or n_there < STALE_MIN_POLLS_AT:
            continue
        compared += 1
        if not any(_same_state(a, b) for a in labels_here for b in labels_there):
            signals.append([value, sorted(map(list, labels_here), key=str)[:5],
                            sorted(map(list, labels_there), key=str)[:5]])
    return compared, signals


def stale_deploy(run: Side, baseline: Side | None, header: str | None, field_name: str | None) -> Finding:
    where, version = _version(run, header, field_name)
    evidence: dict[str, Any] = {"version": version, "version_from": where}
    if baseline is None:
        return Finding("stale_deploy", NONE, evidence,
                       "no baseline to compare with: run with --baseline latest:before-deploy (or a local run)")
    _, base_version = _version(baseline, header, field_name)
    compared, signals = _code_signals(run, baseline)
    evidence.update(baseline_version=base_version, baseline_run=str(baseline.meta.get("run_id", ""))[:100],
                    baseline_cadence=baseline.cadence, values_compared=compared, min_values=STALE_MIN_VALUES,
                    states_differ_at=signals[:10])
    differs = version is not None and base_version is not None and version != base_version
    if differs or signals:
        why = []
        if differs:
            why.append(f"version {base_version} -> {version}")
        if signals:
            why.append(f"other progress states at {len(signals)} progress value(s) both sides polled")
        return Finding("stale_deploy", FOR, evidence,
                       f"{'; '.join(why)}: check which release each backend runs (the deploy tag, the image "
                       "the function runs) before reading any timing")
    if compared < STALE_MIN_VALUES:
        return Finding("stale_deploy", NONE, evidence,
                       f"the two runs polled only {compared} progress value(s) {STALE_MIN_POLLS_AT} times each, "
                       f"{STALE_MIN_VALUES} are needed to compare their states: run both with {NEXT_FINE}")
    if version is None or base_version is None:
        return Finding("stale_deploy", AGAINST, evidence,
                       f"the same progress states as the baseline at {compared} progress values; no version header "
                       "or /health field on both sides to confirm (set version_header or version_field for the "
                       "target)")
    return Finding("stale_deploy", AGAINST, evidence,
                   f"the same version and the same progress states as the baseline at {compared} progress values")


# -- cold start -------------------------------------------------------------------------------

def cold_start(run: Side) -> Finding:
    probes = sorted(run.judged, key=lambda r: str(r.get("probe_id", "")))
    idle = _num(run.meta.get("idle_before_s"))
    evidence: dict[str, Any] = {"idle_before_s": idle, "n": len(probes), "min_warm": COLD_MIN_WARM}
    if len(probes) < 2:
        return Finding("cold_start", NONE, evidence,
                       "needs at least two probes: run with -n 3 --idle-before S (S past the platform's idle time)")
    first, warm = probes[0], probes[1:]
    metrics = {"upload_s": lambda r: _num(r.get("upload_s")),
               "first_answer_s": lambda r: _first_answer_s(run.rows(r), _num(r.get("upload_s")))}
    cold_signs, compared = [], 0
    for name, get in metrics.items():
        value = get(first)
        warm_values = [v for r in warm if (v := get(r)) is not None]
        if value is None or not warm_values:
            continue
        compared = max(compared, len(warm_values))
        value /= run.scale
        typical = statistics.median(warm_values) / run.scale
        evidence[f"first_{name}"], evidence[f"warm_{name}_p50"] = _r(value, 3), _r(typical, 3)
        if value - typical > COLD_MIN_EXTRA_S and value > COLD_MIN_RATIO * typical:
            cold_signs.append(f"{name} {value:.2f} s against {typical:.2f} s warm")
    evidence["warm_compared"] = compared
    if cold_signs:
        return Finding("cold_start", FOR, evidence,
                       f"the first probe waited longer ({'; '.join(cold_signs)}): check the platform's cold "
                       "starts (Lambda init duration, provisioned concurrency) and keep-warm settings")
    if compared < COLD_MIN_WARM:
        return Finding("cold_start", NONE, evidence,
                       f"{compared} warm probe(s) got an answer to compare with the first, {COLD_MIN_WARM} are needed: "
                       "run with -n 3 --idle-before S (S past the platform's idle time)")
    if idle is None:
        return Finding("cold_start", NONE, evidence,
                       "the first probe was as quick as the rest, but nothing says the backend was idle before it: "
                       "run with -n 3 --idle-before S (S past the platform's idle time)")
    return Finding("cold_start", AGAINST, evidence, f"after {idle:g} s idle the first probe was as quick as the rest")


def _first_answer_s(rows: list[Sequence[Any]], upload_s: float | None) -> float | None:
    """How long the backend took to first answer about the task: the upload, then the polls up to the first
    answered with any HTTP status (a 404 or a 429 is an answer), counting only the time requests were in flight.

    The waits between requests are not the backend's answering time: a 429's Retry-After and the app's
    1.5 s after an early 404 are waits the backend asked for, a back-off the cadence's choice.
    """
    if upload_s is None:
        return None
    waited = upload_s
    for row in rows:
        waited += _num(row[6]) or 0.0
        if isinstance(row[1], int) and not isinstance(row[1], bool):
            return waited
    return None


# -- rate limiting ----------------------------------------------------------------------------

def _requests(run: Side) -> int:
    """Requests the run sent: each judged probe's upload and its polls."""
    return sum(1 + len(run.rows(r)) for r in run.judged)


def rate_limiting(run: Side) -> Finding:
    polls = sum(len(run.rows(r)) for r in run.judged)
    limited = sum(1 for r in run.judged for row in run.rows(r) if row[1] == 429)
    uploads = sum(1 for r in run.judged if r.get("upload_status") == 429)
    coded = sum(1 for r in run.judged if r.get("outcome") in ("failed", "upload_error", "rejected")
                and any(w in str(r.get("error") or "").upper() for w in RATE_LIMIT_WORDS))
    requests = _requests(run)
    evidence = {"requests": requests, "polls": polls, "polls_429": limited, "uploads_429": uploads,
                "failed_with_rate_limit_code": coded, "min_requests": MIN_REQUESTS}
    if limited or uploads or coded:
        return Finding("rate_limiting", FOR, evidence,
                       "the backend is throttling: check API Gateway/Lambda concurrency and OpenAI's rate limits "
                       "for this account, and whether the app honours Retry-After")
    if requests < MIN_REQUESTS:
        return Finding("rate_limiting", NONE, evidence,
                       f"no 429 in {requests} request(s), too few to rule out a rate limit ({MIN_REQUESTS} are "
                       f"needed): run {NEXT_FINE}")
    return Finding("rate_limiting", AGAINST, evidence,
                   f"no 429 and no rate-limit error code in {requests} requests")


# -- lost state -------------------------------------------------------------------------------

def lost_state(run: Side) -> Finding:
    regressions = 0
    late_404 = 0
    after_seen: list[int] = []  # per probe: its reads of a task already seen, the only ones that can go
    instances: set[str] = set()  # backwards or miss it
    minority: list[int] = []  # per probe: polls answered by another instance than the one that answered most
    errors: dict[str, int] = {"upload": 0, "progress": 0}
    for r in run.judged:
        rows = run.rows(r)
        seen = False
        last = None
        reads = 0
        for row in rows:
            reads += seen
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
        counts = [c for c in inst.values() if isinstance(c, int)] if isinstance(inst, Mapping) else []
        instances.update(str(k) for k in (inst if isinstance(inst, Mapping) else ()))
        after_seen.append(reads)
        minority.append(sum(counts) - max(counts, default=0))
    # State that one instance holds and another lacks shows only when a probe's polls switch instance: a
    # sticky connection, or round robin in step with the probes, keeps each probe on one (mostly). A
    # store that drops reads shows in any read.
    several = len(instances) > 1
    telling = sum(min(n, m) for n, m in zip(after_seen, minority)) if several else sum(after_seen)
    evidence = {"regressions": regressions, "not_found_after_seen": late_404, "polls_after_seen": sum(after_seen),
                "telling_polls": telling, "min_polls_after_seen": MIN_POLLS_AFTER_SEEN, "instances": len(instances),
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
    if telling < MIN_POLLS_AFTER_SEEN:
        where, hint = "", ""
        if several:
            where = f" on another instance than the one answering that probe most (of {len(instances)})"
            hint = " --concurrency 1 (probes in step with a round robin keep to one instance)"
        return Finding("lost_state", NONE, evidence,
                       f"only {telling} poll(s) read a task already seen{where}, {MIN_POLLS_AFTER_SEEN} are needed "
                       f"to rule out lost or stale reads: run {NEXT_FINE}{hint}")
    return Finding("lost_state", AGAINST, evidence,
                   f"in {telling} reads of tasks already seen, progress never went backwards and no task went "
                   "missing")


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
    requests = _requests(run)
    evidence = {"polls_5xx": server, "uploads_5xx": upload, "connection_failures": transport,
                "upload_errors": upload_failed, "failed_jobs": len(failed), "error_codes": top,
                "requests": requests, "probes": len(run.judged), "min_requests": MIN_REQUESTS,
                "min_probes": MIN_PROBES}
    if server or upload or transport or upload_failed or failed:
        return Finding("backend_errors", FOR, evidence,
                       "the backend answered with errors: read its logs for these codes and times (the run's "
                       "started_at and each sample's t_s place them)")
    if requests < MIN_REQUESTS or len(run.judged) < MIN_PROBES:
        return Finding("backend_errors", NONE, evidence,
                       f"no error in {requests} request(s) of {len(run.judged)} probe(s), too few to rule errors out "
                       f"({MIN_REQUESTS} requests of {MIN_PROBES} probes are needed): run {NEXT_FINE}")
    return Finding("backend_errors", AGAINST, evidence,
                   f"no 5xx, no connection failure and no failed job in {requests} requests of {len(run.judged)} "
                   "probes")


# -- frontend polling -------------------------------------------------------------------------

class AppView(NamedTuple):
    """What the thankly app would have shown for one probe (see `app_view`)."""

    outcome: str
    seen_s: float | None
    lost_seen_task: bool = False  # it gave up on a 404 for a task it had already seen: lost state, not its rules


def app_view(record: Mapping[str, Any], scale: float = 1.0) -> AppView:
    """(outcome, seconds, lost) the thankly app would have shown, replaying its polling rules over a fine timeline.

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
        return AppView(str(record.get("outcome")), None)
    final = rows[-1][5] in ("completed", "failed") and rows[-1][1] == 200
    machine = ProbeMachine(MachineConfig(cadence=Cadence("app"), timeout_s=300.0))
    machine.start()
    upload_s = (_num(record.get("upload_s")) or 0.0) / scale
    action = machine.receive(Answer(0.0, upload_s, 200, {}, b'{"task_id": "replay"}'))
    index = 0
    while isinstance(action, Send):
        at = action.not_before_s
        if at > rows[-1][0] and not final:
            return AppView("unknown", None)
        while index + 1 < len(rows) and rows[index + 1][0] <= at:
            index += 1
        row = rows[index]
        if row[1] is None:
            action = machine.receive(TransportError(at, at, "replayed connection failure"))
            continue
        body = orjson.dumps({"progress": row[2], "step": row[3], "step_name": row[4], "status": row[5]})
        action = machine.receive(Answer(at, at, row[1], {}, body))
    if machine.outcome == "completed":
        return AppView("completed", next((s[0] for s in machine.samples if s[5] == "completed"), None))
    lost = machine.samples[-1][1] == 404 and any(_valid(s) for s in machine.samples)
    return AppView(machine.outcome, machine.end_s, lost)


def frontend_polling(run: Side) -> Finding:
    evidence: dict[str, Any] = {"cadence": run.cadence, "time_scale": run.scale, "probes": len(run.judged),
                                "min_probes": MIN_PROBES}
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
        if run.scale != APP_TIME_SCALE:
            return Finding("frontend_polling", NONE, evidence,
                           f"the app's cadence ran in real seconds against a backend at time scale {run.scale:g}, so "
                           "its 300 ms, 1.5 s and 10 s were not the app's: run --cadence fine (the replay scales "
                           "them) or at time scale 1")
        if len(run.judged) < MIN_PROBES:
            return Finding("frontend_polling", NONE, evidence,
                           f"{len(run.judged)} probe(s), {MIN_PROBES} are needed: run {NEXT_FINE}")
        return Finding("frontend_polling", AGAINST, evidence,
                       f"probed at the app's own cadence and the app's rules saw all {len(run.judged)} jobs end")
    lags, gave_up, five_min, lost = [], 0, 0, 0
    for r in run.judged:
        backend_done = _num(r.get("total_s"))
        if backend_done is None:
            continue
        view = app_view(r, run.scale)
        if view.outcome != "completed":
            lost += view.lost_seen_task
            gave_up += view.outcome != "unknown" and not view.lost_seen_task
            five_min += view.outcome == "timeout"
        elif view.seen_s is not None:
            lags.append(view.seen_s - backend_done / run.scale)
    evidence.update(backend_completed=sum(1 for r in run.judged if r.get("outcome") == "completed"),
                    app_would_give_up=gave_up, app_gave_up_at_5_min=five_min, app_would_lose_seen_task=lost,
                    replayed=len(lags), app_lag_p50_s=_r(nearest_rank(lags, "p50")),
                    app_lag_max_s=_r(nearest_rank(lags, "max")))
    if gave_up:
        return Finding("frontend_polling", FOR, evidence,
                       f"the app would have given up on {gave_up} job(s) the backend completed (its 404 window is "
                       "10 s, its patience 5 minutes): change the app's polling rules, not the backend")
    worst = nearest_rank(lags, "max")
    if worst is not None and worst > APP_LAG_FOR_S and not noisy:
        return Finding("frontend_polling", FOR, evidence,
                       f"the app would have shown the result up to {worst:.1f} s after the backend finished: "
                       "its cadence or back-off is the delay")
    if lost:
        return Finding("frontend_polling", NONE, evidence,
                       f"the app would have given up on {lost} job(s) after a 404 for a task it had already seen: "
                       "that is lost state (see lost_state), not the app's rules")
    if worst is None:
        return Finding("frontend_polling", NONE, evidence, "no completed job to replay the app's polling against")
    if worst > APP_LAG_AGAINST_S:
        why = ("the lags follow 429/5xx answers, which belong to those causes" if noisy
               else "small, but check the app's cadence")
        return Finding("frontend_polling", NONE, evidence,
                       f"the app would have lagged the backend by up to {worst:.1f} s: {why}")
    if len(lags) < MIN_PROBES:
        return Finding("frontend_polling", NONE, evidence,
                       f"{len(lags)} completed job(s) to replay the app's polling against, {MIN_PROBES} are needed: "
                       f"run {NEXT_FINE}")
    return Finding("frontend_polling", AGAINST, evidence,
                   f"the app would have seen each of {len(lags)} results within {worst:.1f} s of the backend")


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
