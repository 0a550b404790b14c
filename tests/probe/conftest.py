"""Shared set-up for the probe-engine tests: real fixtures, real simulator processes, real runs."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from probes.probe.run import run_probes

from probes.probe.options import RunOptions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_run(run_dir: Path) -> tuple[dict, list[dict]]:
    meta = json.loads((run_dir / "run.json").read_text())
    records = [json.loads(line) for line in (run_dir / "probes.jsonl").read_text().splitlines()]
    return meta, records


@pytest.fixture
def probe_run(tmp_path, fixtures_dir, capsys):
    """probe_run(url, n=.., **run_probes kwargs) -> (exit code, run.json, records)."""

    def run(url: str, n: int, **kwargs):
        out = tmp_path / "runs"
        result = run_probes(RunOptions(target=None, url=url, n=n, out=out, fixtures_dir=fixtures_dir, quiet=True, **kwargs))
        printed = capsys.readouterr().out.strip().splitlines()
        assert Path(printed[-1]) == result.run_dir, "the run directory's path is the last line on stdout"
        meta, records = read_run(result.run_dir)
        assert records == result.records, "what is on disk is what the run saw"
        return result.code, meta, records

    return run
