"""targets.toml: errors name the file, the key and the fix."""

from pathlib import Path

import pytest

from probes.config import load_targets, resolve_target
from probes.errors import UsageError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    path = tmp_path / "targets.toml"
    path.write_text(text)
    return path


def test_repo_targets_file_is_valid():
    targets = load_targets(REPO / "targets.toml")
    assert targets["local"].is_loopback and targets["local"].simulator == "fast"
    assert not targets["prod"].is_loopback and not targets["prod"].allow_load
    assert targets["prod"].token_env == "PROBES_PROD_TOKEN"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[targets.x]\nbase_url = 'ftp://host'\n", "targets.x.base_url"),
        ("[targets.x]\nbase_url = 'http://h'\ncolour = 'red'\n", "targets.x.colour"),
        ("[targets.x\n", "not valid TOML"),
        ("title = 'none'\n", r"no \[targets\.NAME\]"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, text, message):
    with pytest.raises(UsageError, match=message) as info:
        load_targets(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_missing_file_and_unknown_target(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_targets(tmp_path / "nope.toml")
    path = write(tmp_path, "[targets.a]\nbase_url = 'http://127.0.0.1:1'\n")
    with pytest.raises(UsageError, match="unknown target 'b'.*known: a"):
        resolve_target(path, "b", None, None)


def test_token_comes_from_the_named_variable(tmp_path, monkeypatch):
    path = write(tmp_path, "[targets.a]\nbase_url = 'http://127.0.0.1:1'\ntoken_env = 'PROBES_T'\n")
    target = resolve_target(path, "a", None, None)
    monkeypatch.delenv("PROBES_T", raising=False)
    with pytest.raises(UsageError, match="set the environment variable PROBES_T"):
        target.token_source()
    monkeypatch.setenv("PROBES_T", "s3cret")
    assert target.token_source().current() == "s3cret"


def test_exactly_one_of_target_or_url(tmp_path):
    with pytest.raises(UsageError, match="exactly one"):
        resolve_target(tmp_path / "t.toml", None, None, None)
    assert resolve_target(tmp_path / "t.toml", None, "http://127.0.0.1:9/", "V").base_url == "http://127.0.0.1:9"
