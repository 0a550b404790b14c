"""What docs/canary.md tells people to paste must be safe: the GitHub Actions step run for real with a hostile
input, and no secret passed as a flag (a process's arguments are visible to every user in `ps`)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "canary.md").read_text()


def workflow() -> dict:
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", DOC, re.S) if ".github/workflows/canary.yml" in b]
    return yaml.safe_load(block)


def canary_step() -> dict:
    [step] = [s for s in workflow()["jobs"]["canary"]["steps"] if s.get("name") == "canary"]
    return step


def run_step(tmp_path: Path, target: str, label: str = "canary") -> subprocess.CompletedProcess:
    """The step's script under bash, as the runner runs it, with a stand-in `probes` that prints its arguments."""
    fake = tmp_path / ".venv" / "bin" / "probes"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text('#!/bin/sh\nprintf "probes-called:"; printf " [%s]" "$@"; echo\n')
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "TARGET": target, "LABEL": label}
    return subprocess.run(["bash", "-e", "-c", canary_step()["run"]], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=30)


def test_the_step_takes_inputs_from_env_only() -> None:
    step = canary_step()
    assert "${{" not in step["run"] and "inputs." in step["env"]["TARGET"]
    assert "make" not in step["run"].split("#")[0]  # make would paste the values into a command line again


@pytest.mark.parametrize("hostile", ["x; echo INJECTED; #", "$(echo INJECTED)", "`echo INJECTED`", "prod\necho INJECTED",
                                     "--history=/etc/passwd", "../../etc"])
def test_a_hostile_target_input_is_refused_before_anything_runs(hostile: str, tmp_path: Path) -> None:
    proc = run_step(tmp_path, hostile)
    assert proc.returncode == 2
    assert "INJECTED" not in proc.stdout.replace(hostile, "") and "probes-called" not in proc.stdout
    assert "::error::target must match" in proc.stdout
    assert run_step(tmp_path, "prod", label=hostile).returncode == 2


def test_a_good_input_reaches_probes_as_one_argument(tmp_path: Path) -> None:
    proc = run_step(tmp_path, "prod-eu.1", label="after-deploy")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ("probes-called: [canary] [--target] [prod-eu.1] [--label] [after-deploy] "
                                   "[--concurrency] [3] [--jitter] [20]")


def test_no_secret_is_passed_as_a_flag() -> None:
    for doc in (DOC, (ROOT / "README.md").read_text()):
        for flag in ("--webhook", "--history", "--pushgateway"):
            assert not re.search(flag + r"[ =]+\"?\$", doc), flag  # e.g. --webhook "$PROBES_WEBHOOK_URL"
        assert not re.search(r"--(webhook|history|pushgateway)[ =]+\S*://[^\s`]*:[^\s`@]*@", doc)  # user:pass@
