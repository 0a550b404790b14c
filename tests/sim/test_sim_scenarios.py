"""Scenario files: built-ins load, unknown names and bad files are one-line UsageErrors."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from probes.errors import UsageError
from probes.sim.progress import build_schedule, plateau
from probes.sim.scenarios import LogNormal, Presigned, builtin_names, load_scenario

REQUIRED = {"fast", "stale-32", "cold-start", "flaky", "rate-limited", "stuck", "fail-transcription", "renamed-steps",
            "multi-instance", "stale-deploy", "slow-whisper", "throttled-db", "slow-visibility", "slow-s3",
            "presign-broken"}


def test_builtins_present_and_valid() -> None:
    assert REQUIRED <= set(builtin_names())
    for name in builtin_names():
        assert load_scenario(name).name == name


def test_unknown_scenario_lists_known() -> None:
    with pytest.raises(UsageError) as exc:
        load_scenario("nope")
    msg = str(exc.value)
    assert msg.startswith("unknown scenario 'nope'; known: ")
    assert "fast" in msg and "stale-32" in msg and "\n" not in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="scenario file not found"):
        load_scenario(str(tmp_path / "x.toml"))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[transcription]\nlatency = { s = -1 }\n", "transcription.latency.s"),
        ("[transcription]\nlatency = { s = 1 }\ncap = 120\n", "transcription.cap"),
        ("[faults.progress]\nerror_rate = 2\n", "faults.progress.error_rate"),
        ("[failure]\nphase = \"nowhere\"\n", "failure.phase"),
        ("bogus = 1\n", "bogus"),
        ("[transcription]\nlatency = { s = 1 }\ntimeouts = 1\n", "transcription"),
        ("[presigned]\nsigning_secret = \"old\"\n", "presigned.signing_secret"),
        ("[presigned]\nexpires_s = 604801\n", "presigned.expires_s"),
        ("[presigned]\nput = { s = -1 }\n", "presigned.put.s"),
    ],
)
def test_bad_file_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as exc:
        load_scenario(str(path))
    assert str(path) in str(exc.value) and f"'{key}'" in str(exc.value)


def test_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("this is = = not toml")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_scenario(str(path))


def test_seeded_draws_reproduce() -> None:
    sc = load_scenario("fast")
    a = [sc.plan(random.Random(f"14:{n}")) for n in range(5)]
    b = [sc.plan(random.Random(f"14:{n}")) for n in range(5)]
    assert a == b and len({p.transcription_s for p in a}) == 5


def test_presigned_intake_keeps_the_multipart_draws() -> None:
    """The fetch is drawn last, so a task's phases do not depend on how its audio came."""
    fast = load_scenario("fast")
    sc = fast.model_copy(update={"presigned": Presigned(fetch=LogNormal(median_s=0.2, sigma=0.5))})
    for n in range(5):
        multipart = sc.plan(random.Random(f"14:{n}"))
        url = sc.plan(random.Random(f"14:{n}"), "url")
        assert replace(url, intake="multipart", fetch_s=0.0) == multipart == fast.plan(random.Random(f"14:{n}"))
        assert url.fetch_s != 0.2 and url.fetch_s > 0


def test_fast_totals_within_8_to_12_s() -> None:
    sc = load_scenario("fast")
    totals = [build_schedule(sc.plan(random.Random(f"{sc.seed}:{n}")))[-1].t for n in range(200)]
    assert 8.0 < min(totals) and max(totals) < 12.1
    assert 8.0 < sorted(totals)[100] < 12.0


def test_stale_32_key_numbers() -> None:
    s = build_schedule(load_scenario("stale-32").plan(random.Random(0)))
    assert plateau(s, 32) == pytest.approx(51.8) and s[-1].t == pytest.approx(62.072)


def test_renamed_steps_overrides_labels() -> None:
    sc = load_scenario("renamed-steps")
    assert sc.label_table("zh")["transcribing"] != load_scenario("fast").label_table("zh")["transcribing"]
    assert sc.label_table("zh")["received"] == load_scenario("fast").label_table("zh")["received"]
