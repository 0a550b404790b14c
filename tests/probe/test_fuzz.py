"""Property-based fuzzing of everything a backend's answers flow through: the parser, the machine, the timeline.

Whatever JSON (or bytes) comes back, in whatever order and timing: no exception, one record per
probe, and the record's invariants hold (every milestone estimate inside its bracket, 0 <= dwell
<= the span polled, a JSON line that reads back as itself).
"""

from __future__ import annotations

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.probe import wire
from probes.probe.cadence import Cadence
from probes.probe.machine import Answer, Done, MachineConfig, ProbeMachine, Refreshed, RefreshToken, TransportError

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
progress_values = st.one_of(st.integers(-5, 120), st.floats(-5, 120, allow_nan=False), st.none(),
                            st.text(max_size=4), st.booleans())
statuses = st.sampled_from(["processing", "completed", "failed", "", "COMPLETED", None, 7])
answers = st.fixed_dictionaries(
    {"progress": progress_values, "status": statuses},
    optional={"step": json_scalars, "step_name": st.text(max_size=300), "message": st.text(max_size=50),
              "error": json_values, "diary": json_values | st.fixed_dictionaries({"diary_id": json_scalars}),
              "task_id": json_scalars})
bodies = st.one_of(answers.map(lambda d: orjson.dumps(d, option=orjson.OPT_NON_STR_KEYS)),
                   json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200))
http_statuses = st.sampled_from([200, 200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503])
headers = st.fixed_dictionaries({}, optional={"retry-after": st.sampled_from(["0.2", "1e9", "-1", "nan", "soon", "",
                                                                              "Sun, 06 Nov 1994 08:49:37 GMT"]),
                                              "x-instance": st.text(max_size=100)})


@SETTINGS
@given(status=http_statuses, body=bodies)
def test_the_parsers_never_raise_and_bound_what_they_keep(status, body):
    upload = wire.parse_upload(status, body)
    assert upload.outcome is not None or wire.safe_id(upload.task_id) is not None
    progress = wire.parse_progress(status, body)
    for text, limit in ((progress.step_name, wire.MAX_TEXT), (progress.message, wire.MAX_TEXT),
                        (progress.status, wire.MAX_STATUS), (progress.error, wire.MAX_ERROR)):
        assert text is None or len(text) <= limit
    assert progress.error is None or "\n" not in progress.error


events = st.lists(st.tuples(st.floats(0.0, 2.0), st.floats(0.0, 0.5), http_statuses, bodies, headers,
                            st.booleans()), min_size=1, max_size=40)


@SETTINGS
@given(steps=events, cadence=st.sampled_from(["app", "fine"]), timeout=st.floats(1.0, 30.0),
       cleanup=st.booleans(), refresh_ok=st.booleans())
def test_the_machine_ends_every_flow_with_one_classified_record(steps, cadence, timeout, cleanup, refresh_ok):
    config = MachineConfig(cadence=Cadence(cadence, 0.05), timeout_s=timeout, cleanup=cleanup)
    machine = ProbeMachine(config)
    action = machine.start()
    now = 0.0
    for gap, latency, status, body, hdrs, fail in steps:
        if isinstance(action, Done):
            break
        if isinstance(action, RefreshToken):
            action = machine.receive(Refreshed(now, refresh_ok, None if refresh_ok else "no"))
            continue
        start = max(now, action.not_before_s) + gap / 10
        assert action.timeout_s > 0 and action.not_before_s <= config.timeout_s + 5.0
        now = start + min(latency, action.timeout_s)
        if action.kind == "upload" and status == 200 and not fail:
            body = orjson.dumps({"task_id": "t-1"})  # most flows get past the upload
        event = TransportError(start, now, "ReadError") if fail else Answer(start, now, status, hdrs, body)
        action = machine.receive(event)
    if not isinstance(action, Done):
        machine.abort(now)
    record = machine.record(run_id="r", probe_id="1", target="t", label="l")
    assert record["outcome"] in ("completed", "failed", "timeout", "rejected", "upload_error", "poll_error",
                                 "auth_error", "aborted")
    assert json.loads(orjson.dumps(record)) == json.loads(json.dumps(record))
    span = max((s[0] for s in record["samples"]), default=0.0)
    for key, m in record["milestones"].items():
        assert m["lo_s"] <= m["t_s"] <= m["hi_s"], (key, m)
    for key, d in record["dwell"].items():
        assert 0.0 <= d <= span + 1e-9, (key, d, span)
        assert key in record["milestones"]  # dwell only where the probe got to the milestone
    if record["outcome"] == "completed":
        assert record["total_s"] is not None and record["error"] is None
    if record["cleanup"] == "deleted":
        assert cleanup and record["outcome"] == "completed"
    assert len(record["states"]) <= 64
