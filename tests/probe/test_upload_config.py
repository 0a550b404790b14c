"""A target's upload flow: `upload` and `presigned_base64` in targets.toml, `--upload` on the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from probes.config import load_targets, resolve_target
from probes.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, extra: str, url: str = "http://127.0.0.1:8765") -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(f'[targets.t]\nbase_url = "{url}"\n{extra}\n')
    return path


def test_thankly_targets_default_to_the_apps_presigned_flow_and_an_adhoc_url_to_multipart(tmp_path):
    target = load_targets(write(tmp_path, ""))["t"]
    assert (target.upload, target.presigned_base64) == ("presigned", True)
    assert load_targets(ROOT / "targets.toml")["prod"].upload == "presigned"
    assert resolve_target(tmp_path / "none.toml", None, "http://127.0.0.1:9", None).upload == "multipart"
    assert resolve_target(tmp_path / "none.toml", None, "http://127.0.0.1:9", None, "presigned").upload == "presigned"
    assert resolve_target(write(tmp_path, 'upload = "presigned"'), "t", None, None, "multipart").upload == "multipart"


@pytest.mark.parametrize("extra, message", [
    ('upload = "s3"', "targets.t.upload: Input should be 'presigned' or 'multipart'"),
    ('presigned_base64 = "no"', "targets.t.presigned_base64: Input should be a valid boolean"),
    ('upload = 1', "targets.t.upload: Input should be 'presigned' or 'multipart'"),
])
def test_bad_upload_settings_are_one_line_errors_naming_the_key(tmp_path, extra, message):
    with pytest.raises(UsageError) as info:
        load_targets(write(tmp_path, extra))
    assert str(info.value) == f"{tmp_path / 'targets.toml'}: {message}"


def test_plain_http_object_urls_only_for_a_loopback_target(tmp_path):
    local = load_targets(write(tmp_path, ""))["t"]
    assert local.plain_http_hosts == {"127.0.0.1", "::1", "localhost"}
    remote = load_targets(write(tmp_path, "", url="https://api.example.invalid"))["t"]
    assert remote.plain_http_hosts == frozenset()


def test_the_cli_refuses_an_unknown_upload_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "probes", "run", "--url", "http://127.0.0.1:9", "--upload", "ftp",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == "probes: error: --upload must be presigned or multipart, got 'ftp'"
