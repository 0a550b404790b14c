"""scripts/find-python: which interpreter the Makefile and .ci/run use (issue 14).

Real interpreters only (this one, linked under other names); the one stand-in
is a pyenv shim for an unselected version, which exits 127 as pyenv's does.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "find-python"
REAL = Path(os.path.realpath(sys.executable))  # the base interpreter behind the test venv
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
SHIM = '#!/bin/sh\necho "pyenv: $(basename "$0"): command not found" >&2\nexit 127\n'


def find(*args: str, path: list[Path], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": os.pathsep.join(map(str, path)), "HOME": "/nonexistent", **(env or {})}
    return subprocess.run(["/bin/sh", str(SCRIPT), *args], check=False, env=full_env, capture_output=True, text=True, timeout=30)


def bin_dir(root: Path, name: str, **links: Path | str) -> Path:
    """A directory of commands: a Path is linked to, a str is written as a script."""
    d = root / name
    d.mkdir(parents=True)
    for cmd, what in links.items():
        if isinstance(what, Path):
            (d / cmd).symlink_to(what)
        else:
            (d / cmd).write_text(what)
            (d / cmd).chmod(0o755)
    return d


def test_supported_versions_match_requires_python() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    spec = SpecifierSet(pyproject["project"]["requires-python"])
    supported = find("--supported", path=[]).stdout.split()
    assert supported == [f"3.{m}" for m in range(6, 20) if spec.contains(f"3.{m}.0")]
    assert VERSION in supported


def test_auto_skips_a_shim_that_does_not_run(tmp_path: Path) -> None:
    shims = bin_dir(tmp_path, "shims", **{"python3.13": SHIM, "python3.12": SHIM, "python3.11": SHIM})
    real = bin_dir(tmp_path, "real", python3=REAL)
    proc = find(path=[shims, real])
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).resolve() == REAL


def test_auto_says_in_one_line_what_it_needs(tmp_path: Path) -> None:
    shims = bin_dir(tmp_path, "shims", **{"python3.13": SHIM, "python3": SHIM})
    proc = find(path=[shims])
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert "needs Python 3.11 to 3.13" in line and "PYTHON=" in line


def test_explicit_shim_is_resolved_through_pyenv(tmp_path: Path) -> None:
    name = f"python{VERSION}"
    shims = bin_dir(tmp_path, "shims", **{name: SHIM})
    tools = bin_dir(tmp_path, "tools", ls=Path(shutil.which("ls")), sort=Path(shutil.which("sort")))
    bin_dir(tmp_path / "pyenv" / "versions" / f"{VERSION}.0", "bin", **{name: REAL})
    proc = find(name, path=[shims, tools], env={"PYENV_ROOT": str(tmp_path / "pyenv")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "pyenv" / "versions" / f"{VERSION}.0" / "bin" / name)


def test_explicit_missing_is_one_line(tmp_path: Path) -> None:
    tools = bin_dir(tmp_path, "tools", ls=Path(shutil.which("ls")), sort=Path(shutil.which("sort")))
    proc = find("python3.13", path=[tools], env={"PYENV_ROOT": str(tmp_path / "no-pyenv")})
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("find-python: python3.13 is not installed or does not run")


def test_explicit_path_of_an_unsupported_version_is_refused() -> None:
    old = [p for minor in (10, 9) for p in (*glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin/python3")),
                                            f"/usr/bin/python3.{minor}") if os.access(p, os.X_OK)]
    if not old:
        pytest.skip("no Python older than 3.11 on this machine")
    proc = find(old[0], path=[])
    assert proc.returncode == 1 and proc.stdout == ""
    assert "probes needs Python 3.11 to 3.13" in proc.stderr
