"""Benchmark the canary history: a year of 5-minute canary runs in SQLite, `probes trend`, `record_run`,
and `probes canary` from process start to the first upload request.

    .venv/bin/python bench/bench_history.py [--runs 105120] [--repeat 3]

1. history: 105,120 runs x 3 probes (365 days every 5 minutes, ending now) written into
   bench/out/history-year.sqlite with `record_summaries` (cached; delete the file to regenerate).
   The year has a deploy (new health version and signature) every 14 days, a stale-32 incident
   week every quarter (SLO broken) and 0.5 % unreachable runs.
2. trend: `probes trend --since 365d` in a fresh process; wall time and peak RSS (wait4's ru_maxrss of
   that child alone). Goal <= 2 s and <= 500 MB.
3. record: `HistoryStore.record_run` of a 3-probe run directory (scripts/synth_runs.py, app cadence:
   fast ~25 polls a probe, stale-32 ~130) into the year's database; the first call in a process also pays for importing pandas through
   probes.analysis.metrics, so it is reported apart. Goal <= 50 ms.
4. start: `probes canary -n 1` (and `probes run -n 1` beside it) as a fresh process against a
   simulator process on loopback: wall time from just before the process is spawned to the upload
   request, from the probe's `started_at` and from the simulator's ground truth (`t0_wall`, when it
   received the upload). Goal <= 0.5 s. Then `python -X importtime` of the modules imported before
   the upload, summed per top-level package.

Prints JSON lines; the figures go into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PY = sys.executable
sys.path.insert(0, str(ROOT))

from probes.canary.history import open_history  # noqa: E402
from probes.canary.summary import METRICS, ProbeRow, RunSummary, parse_utc  # noqa: E402

YEAR_RUNS = 105_120  # 365 days x 288 runs a day
STEP_S = 300.0
SIG_V1 = [["20-29", "处理中", "准备正式开始处理..."], ["30-39", "转录中", "正在努力识别你的声音..."]]
SLO = [{"metric": "total_s", "stat": "p90", "threshold": 15}, {"metric": "dwell_32", "stat": "p90", "threshold": 3},
       {"metric": "transcription_s", "stat": "p90", "threshold": 8}]


def emit(obj: dict) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def year_of_runs(count: int, end: float, seed: int = 7):
    """RunSummary objects for `count` 5-minute canary runs ending at `end` (generator, oldest first)."""
    from probes.canary.summary import stable_hash

    rng = np.random.default_rng(seed)
    start = end - count * STEP_S
    totals = rng.normal(10.0, 1.2, size=(count, 3)).clip(6.0)
    dwell = rng.exponential(0.3, size=(count, 3))
    trans = rng.normal(3.5, 0.6, size=(count, 3)).clip(1.0)
    upload = rng.normal(0.05, 0.01, size=(count, 3)).clip(0.005)
    unreachable = rng.random(count) < 0.005
    day = (np.arange(count) * STEP_S / 86400.0).astype(int)
    stale = (day % 91) < 7  # an incident week every quarter
    totals[stale] += 52.0
    dwell[stale] += 52.0
    version = day // 14  # a deploy every 14 days
    for i in range(count):
        ts = start + i * STEP_S
        run_id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(ts))}-prod-canary-{i:06x}"
        started_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + "Z"
        signature = SIG_V1 if version[i] % 3 else SIG_V1[:1]
        health = {"status": "healthy", "version": f"1.{version[i]}"}
        if unreachable[i]:
            probes = [ProbeRow(run_id, f"{p:04d}", "prod", started_at, "upload_error", "ConnectError",
                               {m: None for m in METRICS}, 0, 0) for p in range(1, 4)]
            metrics = {m: {"n": 0, "p50": None, "p90": None, "max": None} for m in METRICS}
            outcomes, slo_ok, ok, code, fp, sig_hash = {"upload_error": 3}, None, False, 3, None, None
            slo_results: list = []
        else:
            per_probe = {"upload_s": upload[i], "t_32": trans[i] * 0.4, "dwell_32": dwell[i],
                         "stall_s": dwell[i] + 0.8, "transcription_s": trans[i], "total_s": totals[i]}
            probes = [ProbeRow(run_id, f"{p:04d}", "prod", started_at, "completed", None,
                               {m: float(v[p]) for m, v in per_probe.items()}, 30, 0) for p in range(3)]
            metrics = {}
            for m, v in per_probe.items():
                s = np.sort(v)
                metrics[m] = {"n": 3, "p50": float(s[1]), "p90": float(s[2]), "max": float(s[2])}
            slo_results = [{**r, "value": metrics[r["metric"]]["p90"], "n": 3,
                            "ok": metrics[r["metric"]]["p90"] <= r["threshold"]} for r in SLO]
            slo_ok = all(r["ok"] for r in slo_results)
            outcomes, ok, code = {"completed": 3}, slo_ok, 0 if slo_ok else 1
            fp, sig_hash = stable_hash({"health": health, "signature": signature}), stable_hash(signature)
        yield RunSummary(
            run_id=run_id, target="prod", label="canary", started_at=started_at, started_ts=ts,
            ended_at=None, ended_ts=ts + 40.0, n=3, n_planned=3, outcomes=outcomes, scenario=None, time_scale=None,
            metrics=metrics, slo_ok=slo_ok, slo_results=slo_results, ok=ok, exit_code=code, fingerprint_hash=fp,
            signature=signature if fp else [], signature_hash=sig_hash,
            run_dir=str(ROOT / "reports" / "runs" / run_id), probes=probes)


def build_year(path: Path, count: int) -> dict:
    stamp = path.with_suffix(".complete")
    if stamp.exists() and stamp.read_text().strip() == str(count):
        open_history(str(path)).close()  # apply any newer migration now, not inside a timed run
        return {"cached": True}
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    end = time.time() - 60.0
    t = time.perf_counter()
    with open_history(str(path)) as store:
        store._execute("PRAGMA synchronous = OFF")  # a benchmark's bulk load; the store itself uses NORMAL
        written = store.record_summaries(year_of_runs(count, end), batch=20_000)
        store._execute("PRAGMA wal_checkpoint(TRUNCATE)")
    elapsed = time.perf_counter() - t
    stamp.write_text(str(count))
    return {"cached": False, "runs": written, "write_s": round(elapsed, 1),
            "mb": round(path.stat().st_size / 1e6, 1)}


def child(cmd: list[str], cwd: Path = ROOT) -> tuple[float, float, int, str, float]:
    """(wall s, peak RSS MB of this child alone, exit code, stdout, CPU s user+system) of one fresh process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        print(err, file=sys.stderr)
    return wall, usage.ru_maxrss / 1024.0, proc.returncode, out, usage.ru_utime + usage.ru_stime


def bench_trend(db: Path, repeat: int) -> dict:
    walls, rss, cpus = [], [], []
    for _ in range(repeat):
        wall, peak, code, _, cpu = child([PY, "-m", "probes", "trend", "--history", str(db), "--since", "365d",
                                     "--out", str(OUT / "trend-year")])
        assert code == 0
        walls.append(wall)
        rss.append(peak)
        cpus.append(cpu)
    return {"bench": "trend --since 365d", "runs": YEAR_RUNS, "wall_s": [round(w, 2) for w in walls],
            "median_s": round(statistics.median(walls), 2), "min_s": round(min(walls), 2),
            "cpu_s": [round(c, 2) for c in cpus], "peak_rss_mb": round(max(rss)), "goal": "<= 2 s, <= 500 MB",
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


RECORD_CHILD = """
import json, statistics, sys, time
from pathlib import Path
from probes.canary.history import open_history
dirs = [Path(p) for p in sys.argv[2:]]
with open_history(sys.argv[1]) as store:
    t = time.perf_counter(); store.record_run(dirs[0], exit_code=0); first = time.perf_counter() - t
    times = []
    for d in dirs[1:]:
        t = time.perf_counter(); store.record_run(d, exit_code=0); times.append(time.perf_counter() - t)
print(json.dumps({"first_ms": round(first * 1000, 1), "median_ms": round(statistics.median(times) * 1000, 1),
                  "max_ms": round(max(times) * 1000, 1), "n": len(times)}))
"""


def bench_record(db: Path, profile: str) -> dict:
    runs_dir = OUT / f"record-runs-{profile}"
    if not runs_dir.exists():
        for seed in range(31):
            subprocess.run([PY, str(ROOT / "scripts" / "synth_runs.py"), "--out", str(runs_dir), "--probes", "3",
                            "--seed", str(seed), "--target", "prod", "--label", "canary", "--profile", profile,
                            "--run-id", f"bench-record-{profile}-{seed:03d}"], check=True, capture_output=True)
    dirs = sorted(runs_dir.iterdir())
    polls = [len(json.loads(line)["samples"]) for line in open(dirs[0] / "probes.jsonl")]
    _, _, code, out, _ = child([PY, "-c", RECORD_CHILD, str(db), *map(str, dirs)])
    assert code == 0
    return {"bench": f"record_run (3 {profile} probes) into the year's SQLite", "polls_per_probe": polls,
            **json.loads(out), "goal": "<= 50 ms"}


def first_upload(kind: str, url: str, workdir: Path) -> dict:
    """Spawn `probes canary|run -n 1` and measure process start -> upload request."""
    import httpx

    history = workdir / "history.sqlite"
    cmd = [PY, "-m", "probes", kind, "--target", "bench", "-n", "1", "--cadence", "fine",
           "--targets", str(workdir / "targets.toml"), "--fixtures", str(ROOT / "fixtures"),
           "--out", str(workdir / "runs")]
    if kind == "canary":
        cmd += ["--history", str(history)]
    else:
        cmd += ["--quiet"]
    spawn = time.time()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    run_dir = next(Path(line) for line in proc.stdout.splitlines() if (Path(line) / "run.json").exists())
    record = json.loads((run_dir / "probes.jsonl").read_text().splitlines()[0])
    truth = httpx.get(f"{url}/_sim/tasks/{record['task_id']}", timeout=5).json()
    return {"probe_started_s": parse_utc(record["started_at"]) - spawn, "sim_received_s": truth["t0_wall"] - spawn}


def bench_start(repeat: int) -> dict:
    from probes.sim.server import simulator_process

    workdir = OUT / "start"
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict]] = {"canary": [], "run": []}
    with simulator_process("fast", time_scale=0.05) as url:
        (workdir / "targets.toml").write_text(f'[targets.bench]\nbase_url = "{url}"\n')
        first_upload("canary", url, workdir)  # warm the page cache and the .pyc files
        for _ in range(repeat):  # alternating, side by side
            for kind in results:
                results[kind].append(first_upload(kind, url, workdir))
    out = {"bench": "process start -> first upload request", "goal": "<= 0.5 s (canary)"}
    for kind, rows in results.items():
        out[kind] = {key: round(statistics.median(r[key] for r in rows), 3) for key in rows[0]}
        out[kind]["all_sim_received_s"] = [round(r["sim_received_s"], 3) for r in rows]
    return out


IMPORTS = "import probes.cli, probes.canary.command, probes.canary.history, probes.canary.lock, probes.probe.run"
# in import order: each figure includes the first import of everything below it
CUMULATIVE = ("probes.cli", "probes.canary.command", "probes.probe.run", "probes.probe.wire", "probes.probe.driver",
              "probes.config", "probes.probe.live", "probes.probe.summary")


def bench_imports() -> dict:
    """Self time of every module imported before the first upload, summed per top-level package."""
    proc = subprocess.run([PY, "-X", "importtime", "-c", IMPORTS], capture_output=True, text=True, cwd=ROOT)
    per_package: dict[str, int] = defaultdict(int)
    cumulative: dict[str, int] = {}
    total = 0
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if not m:
            continue
        self_us, name = int(m.group(1)), m.group(4)
        if name in CUMULATIVE:
            cumulative[name] = int(m.group(2))
        top = name.split(".")[0]
        if top == "probes":
            top = ".".join(name.split(".")[:2])
        per_package[top] += self_us
        total += self_us
    top = sorted(per_package.items(), key=lambda kv: -kv[1])[:14]
    return {"bench": "imports before the first upload (-X importtime, self time summed per package)",
            "total_ms": round(total / 1000), "top_ms": {k: round(v / 1000) for k, v in top},
            "cumulative_ms (first importer pays)": {k: round(cumulative.get(k, 0) / 1000) for k in CUMULATIVE}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=YEAR_RUNS)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["trend", "record", "start", "imports"], action="append")
    args = ap.parse_args()
    only = set(args.only or ["trend", "record", "start", "imports"])
    db = OUT / "history-year.sqlite"
    if only & {"trend", "record"}:
        emit({"bench": "history of a year", **build_year(db, args.runs)})
    if "trend" in only:
        emit(bench_trend(db, args.repeat))
    if "record" in only:
        for profile in ("fast", "stale-32"):
            emit(bench_record(db, profile))
    if "start" in only:
        emit(bench_start(max(args.repeat, 5)))
    if "imports" in only:
        emit(bench_imports())


if __name__ == "__main__":
    main()
