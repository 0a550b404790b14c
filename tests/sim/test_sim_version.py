"""The simulated backend's version: X-App-Version on every answer, `version` in /health and /."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from probes.errors import UsageError
from probes.sim.scenarios import CURRENT_VERSION, load_scenario

from .conftest import upload


def test_every_answer_carries_the_version(sim: Any, client: httpx.Client) -> None:
    base = sim("fast", time_scale=0.1)
    task_id = upload(client, base).json()["task_id"]
    answers = [
        client.get(f"{base}/health"),
        client.get(f"{base}/"),
        upload(client, base),
        upload(client, base, duration=4),  # 400
        client.get(f"{base}/diary/voice/progress/{task_id}"),  # the hot path
        client.get(f"{base}/diary/voice/progress/unknown"),  # 404
        client.get(f"{base}/diary/list"),
        client.get(f"{base}/no-such-route"),
    ]
    assert [r.headers["x-app-version"] for r in answers] == [CURRENT_VERSION] * len(answers)
    health = answers[0].json()
    assert health["version"] == CURRENT_VERSION and health["status"] == "healthy" and health["config"] == "ok"
    assert health["timestamp"].endswith("+00:00")  # thankly's health body: status, config, timestamp
    assert answers[1].json() == {"message": "欢迎使用感恩日记API", "version": CURRENT_VERSION, "docs": "/docs"}


def test_scenario_version_key(sim: Any, client: httpx.Client, tmp_path: Path) -> None:
    path = tmp_path / "old.toml"
    path.write_text('version = "1.2.0+build.7"\n')
    base = sim(str(path), time_scale=0.1)
    assert client.get(f"{base}/health").json()["version"] == "1.2.0+build.7"
    task_id = upload(client, base).json()["task_id"]
    assert client.get(f"{base}/diary/voice/progress/{task_id}").headers["x-app-version"] == "1.2.0+build.7"


@pytest.mark.parametrize("bad", ['""', '"1.0 beta"', '"v1\\r\\nX-Evil: 1"'])
def test_version_must_fit_in_a_header(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f"version = {bad}\n")
    with pytest.raises(UsageError, match="'version'"):
        load_scenario(str(path))
