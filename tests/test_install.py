"""The package as a tool: build the wheel, install it into a fresh venv, use it from outside the repository.

What `pipx install .` or `pip install .` gives a user: a `probes` command that
finds the simulator scenarios and the Locust file inside the installed
package, whatever the current directory. Installing every dependency from the
network would take minutes, so the fresh venv gets the wheel alone
(`--no-deps`) and sees the test venv's site-packages through a .pth line; its
own site-packages comes first, so the `probes` it imports is the wheel's
(checked), and the command is the wheel's entry point. That the wheel asks
for the right dependencies is checked on its metadata against pyproject.toml.
Everything runs in tmp_path, offline, on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
STEP_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built offline from a copy of the working tree (no build/ or egg-info left in the repo)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "probes", src / "probes", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path_factory.mktemp("dist")
    _check([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
            "--wheel-dir", str(dist), str(src)], cwd=src)
    (found,) = dist.glob("probes-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the wheel; the test venv's site-packages supplies the dependencies."""
    venv = tmp_path_factory.mktemp("venv")
    _check([sys.executable, "-m", "venv", "--clear", "--without-pip", str(venv)], cwd=venv)
    _check([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
            "--no-deps", "--no-index", str(wheel)], cwd=venv)
    site = Path(_check([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                       cwd=venv).strip())
    (site / "zz_probes_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    return venv


def test_wheel_holds_the_package_data_and_declares_the_dependencies(wheel: Path, pyproject: dict) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = zf.read(meta_name).decode()
        entry_points = zf.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    source = {p.relative_to(ROOT).as_posix() for p in (ROOT / "probes").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".toml")}
    assert {"probes/load/locustfile.py", "probes/load/shape.py", "probes/sim/scenarios/fast.toml"} <= source
    assert source <= names, sorted(source - names)
    assert not any(n.startswith("tests/") for n in names)
    assert "probes = probes.cli:main" in entry_points

    wanted = {_req_key(Requirement(r)) for r in pyproject["project"]["dependencies"]}
    wanted |= {_req_key(Requirement(r), "dev") for r in pyproject["project"]["optional-dependencies"]["dev"]}
    declared = {_req_key(Requirement(line.split(":", 1)[1].strip()))
                for line in metadata.splitlines() if line.startswith("Requires-Dist:")}
    assert declared == wanted
    (audioop,) = [key for key in declared if key[0] == "audioop-lts"]
    assert audioop[3:] == ('python_version >= "3.13"', None), "pydub needs the audioop backport on 3.13 only"


def test_installed_command_works_outside_the_repository(venv: Path, tmp_path: Path, pyproject: dict) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    probes, python = str(venv / "bin" / "probes"), str(venv / "bin" / "python")

    where = _check([python, "-c", "import probes, probes.load.cli as c; print(probes.__file__); print(c.LOCUSTFILE)"],
                   cwd=work).split()
    assert all(Path(p).is_relative_to(venv) for p in where), where
    assert Path(where[1]).is_file()

    assert _check([probes, "--version"], cwd=work).strip() == f"probes {pyproject['project']['version']}"

    _check([probes, "fixtures", "--out", str(tmp_path / "fx")], cwd=work)
    manifest = json.loads((tmp_path / "fx" / "manifest.json").read_text())
    assert "speech-en-5s.m4a" in manifest["files"]

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "sim.log").open("wb") as log:
        sim = subprocess.Popen([probes, "sim", "--scenario", "fast", "--port", str(port), "--time-scale", "0.1"],
                               cwd=work, env=_env(), stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(url, sim, tmp_path / "sim.log")
            out = _check([probes, "run", "--url", url, "-n", "1", "--fixtures", str(tmp_path / "fx"),
                          "--out", str(tmp_path / "runs"), "--quiet"], cwd=work)
            run_dir = Path(out.strip().splitlines()[-1])
            assert run_dir.parent == tmp_path / "runs"
            (record,) = [json.loads(line) for line in (run_dir / "probes.jsonl").read_text().splitlines()]
            assert record["outcome"] == "completed"
            assert json.loads((run_dir / "run.json").read_text())["n"] == 1

            # Load mode: Locust loads the installed package's locustfile, not one in the current directory.
            targets = work / "targets.toml"
            targets.write_text(f'[targets.sim]\nbase_url = "{url}"\nallow_load = true\n', encoding="utf-8")
            out = _check([str(Path(python).parent / "probes"), "load", "--target", "sim", "--targets", str(targets), "--users", "1",
                          "--duration", "3s", "--fixtures", str(tmp_path / "fx"), "--out", str(tmp_path / "load"),
                          "--no-report", "--quiet"], cwd=work)
            load_dir = Path(out.strip().splitlines()[-1])
            assert load_dir.parent == tmp_path / "load"
            assert (load_dir / "run.json").is_file() and (load_dir / "locust_stats.csv").is_file()
        finally:
            sim.terminate()
            sim.wait(timeout=10)
    assert sorted(p.name for p in work.iterdir()) == ["targets.toml"], "nothing else is written to the CWD"


# --------------------------------------------------------------------------- helpers


def _req_key(req: Requirement, extra: str | None = None) -> tuple:
    """A requirement as comparable parts; the `extra == "dev"` marker of the metadata becomes `extra`."""
    marker = str(req.marker) if req.marker else None
    if marker and 'extra == "' in marker:
        marker, _, extra_part = marker.rpartition(" and ") if " and " in marker else ("", "", marker)
        extra = extra_part.split('"')[1]
        marker = marker.strip("()") or None
    return (canonicalize_name(req.name), str(req.specifier), tuple(sorted(req.extras)), marker, extra)


def _env() -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH pointing into the repository, no active venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _check(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, check=False, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
    assert proc.returncode == 0, f"{cmd[:3]} exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"probes sim exited {proc.returncode}: {log.read_text()[-2000:]}"
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"probes sim did not answer {url}/health within {timeout_s} s")
