"""The `probes` command line: parses flags, calls the modules that do the work.

Heavy imports (pandas, matplotlib, uvicorn, pydub) happen inside each command so
that `probes --help` stays instant. Every ProbesError ends as a one-line message
and its exit code; no traceback reaches the user.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from probes import defaults
from probes.errors import EXIT_INTERRUPTED, EXIT_REGRESSION, ProbesError, UsageError
from probes.interrupts import sigterm_interrupts

app = typer.Typer(
    name="probes",
    help="Probe upload-then-poll backends the way the app does, and report where the time goes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from probes import __version__

        print(f"probes {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Probe upload-then-poll backends the way the app does, and report where the time goes."""


def _csv_floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"expected comma-separated numbers, got {text!r}") from None


def _csv_ints(text: str) -> list[int]:
    """Whole numbers only: `nan`, `inf` or `32.5` are a one-line error, not a traceback."""
    out = []
    for x in _csv_floats(text):
        if not math.isfinite(x) or x != int(x):
            raise UsageError(f"expected comma-separated whole numbers, got {text!r}")
        out.append(int(x))
    return out


@app.command()
def fixtures(
    out: Annotated[Path, typer.Option(help="Directory for the audio files and manifest.json.")] = Path("fixtures"),
    durations: Annotated[str, typer.Option(help="Comma-separated clip lengths in seconds, e.g. 5,15,60.")] = "5",
    formats: Annotated[str, typer.Option(help="Comma-separated formats: m4a,wav,mp3,webm.")] = "m4a,wav,mp3,webm",
    lang: Annotated[str, typer.Option(help="Language of the spoken diary sentence: en or zh.")] = "en",
    voice: Annotated[str, typer.Option(help="espeak (real speech) or synthetic (speech-like signal).")] = "espeak",
    source: Annotated[Optional[Path], typer.Option(help="Use this recording instead of generated speech.")] = None,
) -> None:
    """Write audio fixtures (speech clips and negative cases) and fixtures/manifest.json."""
    from probes.fixtures.generate import generate_fixtures

    if lang not in ("en", "zh"):
        raise UsageError(f"--lang must be en or zh, got {lang!r}")
    if voice not in ("espeak", "synthetic"):
        raise UsageError(f"--voice must be espeak or synthetic, got {voice!r}")
    manifest = generate_fixtures(
        out_dir=out,
        durations=_csv_floats(durations),
        formats=[f.strip() for f in formats.split(",") if f.strip()],
        lang=lang,
        voice=voice,
        source=source,
    )
    print(f"{len(manifest['files'])} fixtures, manifest: {out / 'manifest.json'}")


@app.command()
def sim(
    scenario: Annotated[str, typer.Option(help="Built-in scenario name or path to a scenario .toml file.")] = "fast",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    time_scale: Annotated[float, typer.Option("--time-scale", help="Multiply every simulated duration (0.1 = 10x faster).")] = 1.0,
    require_auth: Annotated[bool, typer.Option("--require-auth", help="Answer 401 without a Bearer token.")] = False,
    seed: Annotated[Optional[int], typer.Option(help="Override the scenario's random seed.")] = None,
) -> None:
    """Run the embedded thankly-compatible backend simulator until interrupted."""
    from probes.sim.server import serve

    if time_scale <= 0:
        raise UsageError("--time-scale must be > 0")
    serve(scenario=scenario, host=host, port=port, time_scale=time_scale, require_auth=require_auth, seed=seed)


@app.command()
def run(
    target: Annotated[Optional[str], typer.Option(help="Target name from targets.toml.")] = None,
    url: Annotated[Optional[str], typer.Option(help="Ad-hoc target base URL instead of --target.")] = None,
    token_env: Annotated[Optional[str], typer.Option("--token-env", help="Environment variable holding the bearer token (with --url).")] = None,
    n: Annotated[int, typer.Option("-n", help="Number of probes in all.")] = 5,
    concurrency: Annotated[int, typer.Option(
        help="Probes in flight at once; the first C start spread over 0.3 s (3 ms each past 100).")] = 1,
    label: Annotated[str, typer.Option(help="Label for this run, e.g. before-deploy.")] = "manual",
    fixture: Annotated[str, typer.Option(help="Fixture file name from fixtures/manifest.json.")] = defaults.FIXTURE,
    cadence: Annotated[str, typer.Option(help="app (the app's own polling) or fine (fixed --interval).")] = "app",
    interval: Annotated[float, typer.Option(help="Poll interval in seconds for --cadence fine.")] = defaults.FINE_INTERVAL_S,
    milestones: Annotated[str, typer.Option(help="Comma-separated progress milestones to time.")] = ",".join(map(str, defaults.MILESTONES)),
    timeout: Annotated[float, typer.Option(help="Give up on a probe after this many seconds.")] = defaults.PROBE_TIMEOUT_S,
    out: Annotated[Path, typer.Option(help="Parent directory for run directories.")] = defaults.RUNS_DIR,
    targets_file: Annotated[Path, typer.Option("--targets", help="targets.toml to read.")] = defaults.TARGETS_FILE,
    fixtures_dir: Annotated[Path, typer.Option("--fixtures", help="Directory holding manifest.json.")] = defaults.FIXTURES_DIR,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress bars.")] = False,
    slo: Annotated[Optional[Path], typer.Option(
        "--slo", help="TOML file with an [slo] table to judge the run by (instead of the target's).")] = None,
    no_slo: Annotated[bool, typer.Option("--no-slo", help="Do not judge the run by SLOs.")] = False,
    baseline: Annotated[Optional[str], typer.Option(
        help="Compare with this run afterwards: a run directory or latest:LABEL (the newest run of the target "
             "with that label in --out); exit 1 on a regression.")] = None,
    idle_before: Annotated[float, typer.Option(
        "--idle-before", help="Wait this many seconds (after /health) before the first probe, which then runs "
                              "alone: the diagnosis compares it, cold, with the warm ones.")] = 0.0,
    upload: Annotated[Optional[str], typer.Option(
        help="presigned (the app's flow: presign, PUT the audio to the URL it answers, create with the URL) or "
             "multipart (one POST of the audio). Default: the target's `upload` (presigned), multipart for --url.")]
    = None,
) -> None:
    """Probe a target: upload, poll like the app, judge the SLOs, diagnose; print the run directory last.

    Exit 0 when every SLO holds (defaults: total p90 <= 15 s, the bar the user sees held at 32 % p90 <= 3 s, transcription p90 <= 8 s, every probe completed), 1 when one is broken or the baseline comparison finds a regression, 2 bad usage, 3 the target could not be reached or authenticated, 130 interrupted.
    """
    from probes.probe.run import run_probes
    from probes.probe.options import RunOptions

    result = run_probes(RunOptions(
        target=target, url=url, token_env=token_env, n=n, concurrency=concurrency, label=label,
        fixture=fixture, cadence=cadence, interval=interval, milestones=_csv_ints(milestones),
        timeout_s=timeout, out=out, targets_file=targets_file, fixtures_dir=fixtures_dir, quiet=quiet,
        slo_file=slo, no_slo=no_slo, baseline=baseline, idle_before_s=idle_before, upload=upload,
    ))
    raise typer.Exit(result.code)


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="One or more run directories.")],
    out: Annotated[Optional[Path], typer.Option(help="Report directory (default: reports/report-<time>).")] = None,
) -> None:
    """The verdict, the diagnosis, tables and plots of run directories: report.html, report.md, diagnosis.json.

    With two or more runs the first is the baseline and the others are compared with it. Exit 2 bad usage,
    4 the report could not be written (disk full), 130 interrupted (no report.html is left half-written).
    """
    from probes.report import build_report

    try:
        path = build_report(run_dirs, out)
    except KeyboardInterrupt:
        print("probes: interrupted: the report was not written", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    print(path)


@app.command()
def compare(
    baseline: Annotated[Path, typer.Argument(help="Baseline run directory.")],
    candidate: Annotated[Path, typer.Argument(help="Candidate run directory.")],
    max_rel: Annotated[float, typer.Option(help="Regression when p50 is worse by more than this fraction...")] = 0.10,
    max_abs: Annotated[float, typer.Option(help="...and by more than this many seconds...")] = 0.5,
    alpha: Annotated[float, typer.Option(help="...with a Mann-Whitney p-value below this.")] = 0.05,
    out: Annotated[Optional[Path], typer.Option(help="Also write comparison.md/.json into this directory.")] = None,
) -> None:
    """Compare two runs metric by metric, and their diagnoses; exit 1 on a regression (a deploy gate)."""
    from probes.report.compare import run_compare

    regression = run_compare(baseline, candidate, max_rel=max_rel, max_abs=max_abs, alpha=alpha, out=out)
    raise typer.Exit(EXIT_REGRESSION if regression else 0)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def load(ctx: typer.Context) -> None:
    """Locust load mode: the probe flow under a closed, open or ramped load (`probes load --help`)."""
    from probes.load.cli import main as load_main

    raise typer.Exit(load_main(list(ctx.args)))


def main() -> None:
    sigterm_interrupts()  # SIGTERM is Ctrl-C in every command and every phase: exit 130, nothing half-written
    try:
        app()
    except ProbesError as exc:
        print(f"probes: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("probes: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


# --- canary, trend, history (issue 10). Values are parsed by probes.canary.options so a bad one is one line. ---

history_app = typer.Typer(help="The canary history store (SQLite or PostgreSQL).", no_args_is_help=True)
app.add_typer(history_app, name="history")

_HISTORY_HELP = ("History store: a path, sqlite:///PATH or postgresql://user:pass@host:port/db "
                 "(default reports/history.sqlite). Prefer the environment variable for a URL with a password.")


@app.command()
def canary(
    target: Annotated[str, typer.Option(help="Target name from targets.toml; its SLO table (targets.NAME.slo) is judged.")],
    n: Annotated[str, typer.Option("-n", help="Probes in this canary run.")] = "3",
    label: Annotated[str, typer.Option(help="Label of the run, e.g. canary, before-deploy, after-deploy.")] = "canary",
    history: Annotated[Optional[str], typer.Option(envvar="PROBES_HISTORY_URL", help=_HISTORY_HELP)] = None,
    webhook: Annotated[Optional[str], typer.Option(
        envvar="PROBES_WEBHOOK_URL", help="POST alerts here as JSON with a Slack-compatible `text`; at least once, "
        "within 20 s a run, retried by later runs. Give it in PROBES_WEBHOOK_URL: a flag shows in `ps`.")] = None,
    alert_after: Annotated[str, typer.Option("--alert-after", help="Fire after K failing runs in a row.")] = "2",
    resolve_after: Annotated[str, typer.Option("--resolve-after", help="Resolve after M passing runs in a row.")] = "2",
    pushgateway: Annotated[Optional[str], typer.Option(
        envvar="PROBES_PUSHGATEWAY_URL", help="Push metrics to this Prometheus Pushgateway (job probes), "
        "within 10 s; http(s)://[user:pass@]host:port, no query.")] = None,
    textfile: Annotated[Optional[Path], typer.Option(
        help="Write metrics to this .prom file (node_exporter textfile collector).")] = None,
    jitter: Annotated[str, typer.Option(help="Sleep a random 0..S seconds before starting (spreads schedules).")] = "0",
    keep: Annotated[Optional[str], typer.Option(
        help="Delete this target's run directories older than AGE (30d); the history keeps their summaries.")] = None,
    slo: Annotated[Optional[Path], typer.Option(
        "--slo", help="Judge these SLOs (a TOML file with an slo table) instead of the target's.")] = None,
    concurrency: Annotated[str, typer.Option(help="Probes in flight at once.")] = "1",
    cadence: Annotated[str, typer.Option(help="app (the app's own polling) or fine (fixed --interval).")] = "app",
    interval: Annotated[str, typer.Option(help="Poll interval in seconds for --cadence fine.")] = str(defaults.FINE_INTERVAL_S),
    timeout: Annotated[str, typer.Option(help="Give up on a probe after this many seconds.")] = str(defaults.PROBE_TIMEOUT_S),
    out: Annotated[Path, typer.Option(help="Parent directory for run directories.")] = defaults.RUNS_DIR,
    targets_file: Annotated[Path, typer.Option("--targets", help="targets.toml to read.")] = defaults.TARGETS_FILE,
    fixtures_dir: Annotated[Path, typer.Option("--fixtures", help="Directory holding manifest.json.")] = defaults.FIXTURES_DIR,
) -> None:
    """One canary run: probes + SLOs + history + alerts + metrics.

    Exit 0 healthy, 1 SLO broken, 2 bad usage or the target's lock is held, 3 unreachable, 4 could not record (history, lock, textfile or run directory: a full disk), 130 interrupted (SIGTERM or Ctrl-C). Secrets come from the environment: PROBES_WEBHOOK_URL, PROBES_HISTORY_URL, PROBES_PUSHGATEWAY_URL.
    """
    from probes.canary.command import MAX_JITTER_S, MAX_PROBES, MAX_STREAK, run_canary
    from probes.canary.options import parse_age, parse_count, parse_seconds

    result = run_canary(
        target=target, n=parse_count(n, "-n", 1, MAX_PROBES), label=label, history=history, webhook=webhook,
        alert_after=parse_count(alert_after, "--alert-after", 1, MAX_STREAK),
        resolve_after=parse_count(resolve_after, "--resolve-after", 1, MAX_STREAK),
        pushgateway=pushgateway, textfile=textfile, jitter_s=parse_seconds(jitter, "--jitter", MAX_JITTER_S),
        keep_s=parse_age(keep, "--keep") if keep is not None else None,
        concurrency=parse_count(concurrency, "--concurrency", 1, MAX_PROBES), cadence=cadence,
        interval=parse_seconds(interval, "--interval", 60.0), timeout_s=parse_seconds(timeout, "--timeout", 3600.0),
        out=out, targets_file=targets_file, fixtures_dir=fixtures_dir, slo_file=slo,
    )
    raise typer.Exit(result.code)


@app.command()
def trend(
    target: Annotated[Optional[str], typer.Option(help="Only this target (default: every target in the window).")] = None,
    history: Annotated[Optional[str], typer.Option(envvar="PROBES_HISTORY_URL", help=_HISTORY_HELP)] = None,
    since: Annotated[str, typer.Option(help="Window: runs started within this AGE (90s, 30m, 12h, 30d).")] = "30d",
    out: Annotated[Path, typer.Option(help="Directory for trend.html and its PNGs.")] = Path("reports/trend"),
) -> None:
    """trend.html + PNGs from the history: p50/p90 per run over time, SLO lines, failures, deploys, undelivered alerts."""
    from probes.canary.history import open_history
    from probes.canary.options import parse_age

    since_s = parse_age(since, "--since")
    with open_history(history) as store:
        from probes.report.trend import build_trend

        path = build_trend(store, target, since_s, out)
        undelivered = store.undelivered_alerts(target, limit=1000)
    if undelivered:
        failed = sum(1 for e in undelivered if e["delivery"] == "failed")
        print(f"probes: warning: {len(undelivered)} alert(s) not delivered to the webhook, {failed} of them given "
              f"up: listed in {path}", file=sys.stderr)
    print(path)


@history_app.command("import")
def history_import(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (reports/runs/<run_id>).")],
    history: Annotated[Optional[str], typer.Option(envvar="PROBES_HISTORY_URL", help=_HISTORY_HELP)] = None,
) -> None:
    """Back-fill the history from run directories (idempotent: a run already there is replaced)."""
    from probes.canary.history import open_history

    with open_history(history) as store:
        result = store.import_runs(run_dirs)
    for run_dir, reason in result.skipped:
        print(f"probes: skipped {run_dir}: {reason}", file=sys.stderr)
    print(f"imported {len(result.recorded)} run(s) into {store.display}"
          + (f"; skipped {len(result.skipped)}" if result.skipped else ""))
    if result.skipped:
        raise UsageError(f"{len(result.skipped)} of {len(run_dirs)} director{'y was' if len(run_dirs) == 1 else 'ies were'} "
                         "not run directories")
