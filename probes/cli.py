"""The `probes` command line: parses flags, calls the modules that do the work.

Heavy imports (pandas, matplotlib, uvicorn, pydub) happen inside each command so
that `probes --help` stays instant. Every ProbesError ends as a one-line message
and its exit code; no traceback reaches the user.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from probes import defaults
from probes.errors import EXIT_REGRESSION, ProbesError, UsageError

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
    return [int(x) for x in _csv_floats(text)]


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
) -> None:
    """Probe a target: upload, poll like the app, write a run directory and print its path."""
    from probes.probe.run import run_probes

    result = run_probes(
        target=target, url=url, token_env=token_env, n=n, concurrency=concurrency, label=label,
        fixture=fixture, cadence=cadence, interval=interval, milestones=_csv_ints(milestones),
        timeout_s=timeout, out=out, targets_file=targets_file, fixtures_dir=fixtures_dir, quiet=quiet,
    )
    raise typer.Exit(result.code)


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="One or more run directories.")],
    out: Annotated[Optional[Path], typer.Option(help="Report directory (default: reports/report-<time>).")] = None,
) -> None:
    """Tables, plots and an HTML/Markdown report from run directories."""
    from probes.report import build_report

    path = build_report(run_dirs, out)
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
    """Compare two runs metric by metric; exit 1 on a regression (a deploy gate)."""
    from probes.report.compare import run_compare

    regression = run_compare(baseline, candidate, max_rel=max_rel, max_abs=max_abs, alpha=alpha, out=out)
    raise typer.Exit(EXIT_REGRESSION if regression else 0)


def main() -> None:
    try:
        app()
    except ProbesError as exc:
        print(f"probes: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("probes: interrupted", file=sys.stderr)
        sys.exit(130)
