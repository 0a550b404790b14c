"""Write synthetic run directories in the exact docs/run-format.md format.

Why: the report, compare and benchmark code must be tested without a live probe
engine or simulator. The probes follow DESIGN.md's progress curve (22 % on
creation, +1 % every 0.3 s to 42 %, +1 % every 0.8 s to 55 % while
transcription runs, 58 % when it ends, +1 % every 0.35 s from 60 % while the
LLM works, 88-98 % saving, 100 % completed) polled at the app's cadence
(every 300 ms for 15 s, then every 500 ms). Profiles:

    fast      transcription ~3 s, LLM ~3 s: total ~7-8 s, no plateau
    stale-32  the timer freezes at 32 % for ~52 s before transcription ends

Milestones, dwell, stalls and the transcription phase are derived from the
samples written by probes.analysis.timeline.analyse, the same code the probe
engine records them with, so the report and compare tests run on what a real
run would hold.

    python scripts/synth_runs.py --out DIR --probes 20 --profile stale-32 --seed 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from probes.analysis.timeline import analyse

try:
    import orjson

    def _dumps(obj: object) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover - orjson is in requirements.lock
    def _dumps(obj: object) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


MILESTONES = [20, 32, 42, 55, 58, 60, 88, 100]
PROFILES = ("fast", "stale-32")

# (step, step_name, message) per phase; "en" mimics a backend running other code.
STATES = {
    "zh": {
        "prepare": (1, "处理中", "准备正式开始处理..."),
        "transcribe": (1, "转录中", "正在努力识别你的声音..."),
        "polish": (2, "AI润色", "正在美化文字..."),
        "save": (3, "保存中", "准备保存日记..."),
        "saved": (3, "保存中", "数据保存成功..."),
        "done": (4, "完成", "日记创建成功"),
    },
    "en": {
        "prepare": (1, "Preparing", "Getting ready..."),
        "transcribe": (1, "Transcribing", "Listening to your voice..."),
        "polish": (2, "Polishing", "Polishing the text..."),
        "save": (3, "Saving", "Saving your diary..."),
        "saved": (3, "Saving", "Saved..."),
        "done": (4, "Done", "Diary created"),
    },
}
PHASES = ["prepare", "transcribe", "polish", "save", "saved", "done"]


@dataclass(frozen=True)
class ProbeParams:
    """Server-side durations of one job, in scenario seconds."""

    upload_s: float
    transcribe_s: float
    stall_s: float  # extra freeze at 32 % (stale profile), 0 otherwise
    llm_s: float
    save_s: float
    fail_at_s: float | None  # job fails at this server time (None = completes)


def draw_params(rng: np.random.Generator, profile: str, fail_rate: float) -> ProbeParams:
    """Random durations for one probe of a profile."""
    fail = rng.random() < fail_rate
    if profile == "fast":
        upload = float(rng.lognormal(np.log(0.05), 0.3))
        transcribe, stall = float(rng.normal(3.0, 0.4)), 0.0
        llm = float(rng.normal(3.0, 0.5))
    else:
        upload = float(rng.lognormal(np.log(0.25), 0.3))
        stall = float(rng.normal(52.0, 4.0))
        transcribe = 4.2 + stall + float(rng.uniform(0.5, 2.0))
        llm = float(rng.normal(4.0, 0.8))
    transcribe = max(transcribe, 1.0)
    llm = max(llm, 0.5)
    save = float(rng.uniform(0.4, 0.9))
    fail_at = float(rng.uniform(1.0, transcribe)) if fail else None
    return ProbeParams(upload, transcribe, stall, llm, save, fail_at)


def server_progress(s: np.ndarray, p: ProbeParams) -> tuple[np.ndarray, np.ndarray]:
    """Progress and phase index at server times s (seconds since upload received)."""
    # the transcription timer, with the stale profile's freeze at 32 %
    freeze_at = 4.2  # 18 + 4.2 / 0.3 = 32
    eff = np.where(s < freeze_at, s, np.maximum(freeze_at, s - p.stall_s))
    timer = np.where(eff < 7.2, 18 + np.floor(eff / 0.3), 42 + np.floor((eff - 7.2) / 0.8))
    timer = np.clip(timer, 22, 55)
    llm_start = p.transcribe_s + 0.3
    save_start = llm_start + p.llm_s
    done_at = save_start + p.save_s
    prog = np.select(
        [s < p.transcribe_s, s < llm_start, s < save_start, s < save_start + p.save_s / 2, s < done_at],
        [timer, 58, np.minimum(60 + np.floor((s - llm_start) / 0.35), 87), 88, 96],
        100,
    )
    phase = np.select(
        [s < 0.35, s < llm_start, s < save_start, s < save_start + p.save_s / 2, s < done_at],
        [0, 1, 2, 3, 4],
        5,
    )
    return prog.astype(int), phase.astype(int)


def app_poll_times(start: float, limit: float) -> np.ndarray:
    """The app's cadence: every 0.3 s for the first 15 s, then every 0.5 s."""
    first = start + np.arange(0, 15, 0.3)
    later = start + 15 + np.arange(0, max(limit - 15, 0), 0.5)
    return np.concatenate([first, later])


def band(progress: int) -> str:
    """Signature band of a progress value: "30-39", or "100"."""
    if progress >= 100:
        return "100"
    lo = progress // 10 * 10
    return f"{lo}-{lo + 9}"


def make_probe(i: int, rng: np.random.Generator, args: argparse.Namespace, run_id: str,
               started: datetime, signature: dict) -> dict:
    """One probes.jsonl record (times already multiplied by the time scale)."""
    p = draw_params(rng, args.profile, args.fail_rate)
    scale = args.time_scale or 1.0
    states = STATES[args.lang]
    end_server = p.fail_at_s if p.fail_at_s is not None else (
        p.transcribe_s + 0.3 + p.llm_s + p.save_s)
    timeout = 300.0
    t = app_poll_times(p.upload_s, min(p.upload_s + end_server + 0.5, timeout) + 1e-9)
    t = t[t <= timeout]
    t = t + rng.uniform(0, 0.004, t.size)  # scheduling jitter
    prog, phase = server_progress(t - p.upload_s, p)
    status = np.where(prog >= 100, "completed", "processing").astype(object)
    outcome, error = "completed", None
    if p.fail_at_s is not None:
        frozen = prog[t - p.upload_s < p.fail_at_s]
        last = int(frozen[-1]) if frozen.size else 22
        after = (t - p.upload_s) >= p.fail_at_s
        prog = np.where(after, last, prog)
        status = np.where(after, "failed", status)
        stop = int(np.argmax(after)) if after.any() else len(t) - 1
        outcome, error = "failed", "TRANSCRIPTION_SERVICE_UNAVAILABLE"
    else:
        stop = int(np.argmax(prog >= 100)) if (prog >= 100).any() else len(t) - 1
        if not (prog >= 100).any():
            outcome, error = "timeout", "Timeout"
    t, prog, phase, status = t[: stop + 1], prog[: stop + 1], phase[: stop + 1], status[: stop + 1]
    if args.samples and t.size > args.samples:  # keep K polls, evenly spread, always the last
        keep = np.unique(np.linspace(0, t.size - 1, args.samples).round().astype(int))
        t, prog, phase, status = t[keep], prog[keep], phase[keep], status[keep]
    latency = rng.lognormal(np.log(0.01 if args.profile == "fast" else 0.08), 0.4, t.size)
    samples, seen = [], {}
    for j in range(t.size):
        step, name, msg = states[PHASES[phase[j]]]
        signature.setdefault((band(int(prog[j])), name, msg), None)
        seen.setdefault((band(int(prog[j])), name, msg), None)
        samples.append([round(float(t[j]) * scale, 4), 200, int(prog[j]), step, name, str(status[j]),
                        round(float(latency[j]) * scale, 4)])

    def sc(x: float | None) -> float | None:
        return None if x is None else round(x * scale, 4)

    timeline = analyse(samples, MILESTONES).to_record()
    return {
        "schema": 1, "run_id": run_id, "probe_id": f"{i:04d}", "target": args.target, "label": args.label,
        "started_at": _iso(started + timedelta(seconds=i * 0.01)),
        "outcome": outcome, "error": error,
        "task_id": f"task-{run_id}-{i}", "diary_id": f"diary-{i}" if outcome == "completed" else None,
        "cleanup": "deleted" if outcome == "completed" else None,
        "upload_status": 200, "upload_s": sc(p.upload_s),
        **timeline,
        "instances": {"sim-0": int(t.size)},
        "states": [list(s) for s in seen],
        "samples": samples,
    }


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_run(args: argparse.Namespace) -> Path:
    """Write one run directory (run.json + probes.jsonl) and return its path."""
    rng = np.random.default_rng(args.seed)
    started = datetime(2026, 11, 26, 9, 0, 0, tzinfo=timezone.utc)
    run_id = args.run_id or f"20261126T090000Z-{args.target}-{args.label}-{args.seed:04x}"
    run_dir = Path(args.out) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    signature: dict = {}
    outcomes: dict[str, int] = {}
    with open(run_dir / "probes.jsonl", "wb") as fh:
        for i in range(args.probes):
            rec = make_probe(i, rng, args, run_id, started, signature)
            outcomes[rec["outcome"]] = outcomes.get(rec["outcome"], 0) + 1
            fh.write(_dumps(rec) + b"\n")
    run = {
        "schema": 1, "run_id": run_id, "target": args.target,
        "base_url": "http://127.0.0.1:8765" if args.target == "local" else f"https://{args.target}.example",
        "label": args.label, "scenario": args.profile if args.time_scale else None,
        "time_scale": args.time_scale, "harness_version": "0.1.0",
        "started_at": _iso(started), "ended_at": _iso(started + timedelta(minutes=5)),
        "fixture": {"name": "speech-en-5s.m4a", "duration_s": 5.0, "form_duration": 5, "bytes": 46123,
                    "sha256": hashlib.sha256(b"synthetic").hexdigest(), "content_type": "audio/m4a"},
        "cadence": {"name": "app"}, "milestones": MILESTONES,
        "n": args.probes, "concurrency": 4, "timeout_s": 300.0,
        "fingerprint": {"health_status": 200, "health": {"status": "healthy"},
                        "headers": {"server": "uvicorn", "content-type": "application/json"},
                        "signature": [list(k) for k in signature]},
        "outcomes": outcomes,
    }
    (run_dir / "run.json").write_text(json.dumps(run, ensure_ascii=False, indent=1), encoding="utf-8")
    return run_dir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="parent directory for the run directory")
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--samples", type=int, default=0, help="keep at most K polls per probe (0 = all)")
    ap.add_argument("--profile", choices=PROFILES, default="fast")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", default="local")
    ap.add_argument("--label", default="manual")
    ap.add_argument("--run-id", default=None)
    ap.add_argument("--time-scale", type=float, default=None, help="write a simulator run at this scale")
    ap.add_argument("--fail-rate", type=float, default=0.0)
    ap.add_argument("--lang", choices=sorted(STATES), default="zh", help="en = other step names (other code)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    run_dir = write_run(parse_args(argv))
    print(run_dir)
    return run_dir


if __name__ == "__main__":
    main(sys.argv[1:])
