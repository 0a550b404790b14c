"""Audio fixtures: real bytes through the real ffmpeg and eSpeak NG, no mocks.

Generation is the slow part (the 601 s negative clip), so each set of
arguments is generated once per session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes import audio, speech
from probes.errors import UsageError
from probes.fixtures import (
    DEFAULT_FIXTURE,
    expected_status,
    fixture_entry,
    form_duration,
    generate_fixtures,
    load_manifest,
)

REPO = Path(__file__).resolve().parents[1]
FORMATS = ["m4a", "wav", "mp3", "webm"]
ENTRY_KEYS = {
    "name", "format", "content_type", "kind", "nominal_s", "duration_s", "form_duration",
    "bytes", "sample_rate", "channels", "sha256", "expect", "expect_reason",
}  # fmt: skip
NEGATIVES = {  # name: (expect, form_duration, decodable)
    "neg-empty.m4a": (400, 5, False),
    "neg-truncated.m4a": (200, 5, False),
    "neg-silence-5s.m4a": (200, 5, True),
    "neg-short-0.5s.m4a": (400, 0, True),
    "neg-tiny.m4a": (400, 5, True),
    "neg-wav-as-m4a.m4a": (200, 5, True),
    "neg-long-601s.m4a": (400, 601, True),
}


def _generate(root: Path, **overrides: object) -> tuple[Path, dict]:
    args: dict = dict(durations=[5.0], formats=FORMATS, lang="en", voice="espeak", source=None)
    args.update(overrides)
    return root, generate_fixtures(out_dir=root, **args)


@pytest.fixture(scope="session")
def en(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The CLI's default arguments."""
    return _generate(tmp_path_factory.mktemp("en"))


@pytest.fixture(scope="session")
def zh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    return _generate(tmp_path_factory.mktemp("zh"), lang="zh", formats=["wav", "m4a"])


def _ffmpeg_samples(path: Path, rate: int = 16000) -> np.ndarray:
    """Decode independently of probes.audio: raw mono s16le at a fixed rate."""
    out = subprocess.run(
        [audio.ffmpeg_exe(), "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(rate), "-f", "s16le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(out, dtype="<i2")


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


# --------------------------------------------------------------------------- generated files


def test_default_arguments_write_the_expected_names(en: tuple[Path, dict]) -> None:
    root, manifest = en
    speech_names = {f"speech-en-5s.{ext}" for ext in FORMATS}
    assert set(manifest["files"]) == speech_names | set(NEGATIVES)
    assert DEFAULT_FIXTURE in manifest["files"]
    assert manifest["schema"] == 1
    assert manifest["generator"]["voice"] == "espeak"
    on_disk = {p.name for p in root.iterdir()}
    assert on_disk == set(manifest["files"]) | {"manifest.json"}  # no scratch or .part files left


def test_manifest_on_disk_matches_returned_dict_and_files(en: tuple[Path, dict]) -> None:
    import hashlib

    root, manifest = en
    assert load_manifest(root) == manifest
    for name, entry in manifest["files"].items():
        assert set(entry) == ENTRY_KEYS, name
        assert entry["name"] == name
        data = (root / name).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_every_decodable_file_lasts_its_nominal_duration(en: tuple[Path, dict]) -> None:
    root, manifest = en
    for name, entry in manifest["files"].items():
        if entry["duration_s"] is None:
            continue
        measured = len(_ffmpeg_samples(root / name)) / 16000
        assert abs(measured - entry["nominal_s"]) <= 0.05, (name, measured)
        assert abs(entry["duration_s"] - entry["nominal_s"]) <= 0.05, name
        assert entry["channels"] == 1
    assert manifest["files"]["speech-en-5s.webm"]["sample_rate"] == 48000
    assert manifest["files"]["speech-en-5s.m4a"]["sample_rate"] == 22050


def test_speech_fixtures_are_valid_uploads(en: tuple[Path, dict]) -> None:
    _, manifest = en
    content_types = {"m4a": "audio/m4a", "wav": "audio/wav", "mp3": "audio/mpeg", "webm": "audio/webm"}
    for ext, ctype in content_types.items():
        entry = manifest["files"][f"speech-en-5s.{ext}"]
        assert (entry["kind"], entry["content_type"], entry["format"]) == ("speech", ctype, ext)
        assert (entry["form_duration"], entry["expect"]) == (5, 200)
        assert entry["bytes"] >= 1000


def test_negative_fixtures(en: tuple[Path, dict]) -> None:
    root, manifest = en
    for name, (expect, form, decodable) in NEGATIVES.items():
        entry = manifest["files"][name]
        assert entry["kind"] == "negative"
        assert entry["content_type"] == "audio/m4a"
        assert (entry["expect"], entry["form_duration"]) == (expect, form), name
        assert (entry["duration_s"] is not None) == decodable, name
        assert entry["expect_reason"]
    files = manifest["files"]
    assert files["neg-empty.m4a"]["bytes"] == 0
    assert files["neg-tiny.m4a"]["bytes"] < 1000
    whole = (root / "speech-en-5s.m4a").read_bytes()
    truncated = (root / "neg-truncated.m4a").read_bytes()
    assert 1000 < len(truncated) < len(whole) and whole.startswith(truncated)
    assert (root / "neg-wav-as-m4a.m4a").read_bytes()[:4] == b"RIFF"
    assert files["neg-wav-as-m4a.m4a"]["format"] == "wav"
    assert _rms(_ffmpeg_samples(root / "neg-silence-5s.m4a")) == 0.0
    assert files["neg-long-601s.m4a"]["bytes"] < 2_000_000


def test_regenerating_gives_the_same_manifest(en: tuple[Path, dict], tmp_path: Path) -> None:
    """Nothing excluded: encoders run bit-exact, the manifest holds no time or absolute path."""
    root, manifest = en
    _, again = _generate(tmp_path)
    assert again == manifest
    assert (tmp_path / "manifest.json").read_bytes() == (root / "manifest.json").read_bytes()


def test_espeak_speech_is_loud_enough_to_be_speech(en: tuple[Path, dict]) -> None:
    root, _ = en
    for ext in FORMATS:
        samples = _ffmpeg_samples(root / f"speech-en-5s.{ext}")
        assert _rms(samples) > 500, ext
        # Speech has pauses: the quietest 100 ms windows are far quieter than the loudest.
        windows = samples[: len(samples) // 1600 * 1600].reshape(-1, 1600).astype(np.float64)
        levels = np.sqrt(np.mean(windows**2, axis=1))
        assert levels.min() < 0.05 * levels.max(), ext


def test_english_and_mandarin_speech_differ(en: tuple[Path, dict], zh: tuple[Path, dict]) -> None:
    en_root, en_manifest = en
    zh_root, zh_manifest = zh
    assert "speech-zh-5s.m4a" in zh_manifest["files"]
    assert zh_manifest["files"]["speech-zh-5s.m4a"]["expect"] == 200
    assert zh_manifest["files"]["speech-zh-5s.wav"]["sha256"] != en_manifest["files"]["speech-en-5s.wav"]["sha256"]
    zh_samples = _ffmpeg_samples(zh_root / "speech-zh-5s.wav")
    en_samples = _ffmpeg_samples(en_root / "speech-en-5s.wav")
    assert _rms(zh_samples) > 500
    assert not np.array_equal(zh_samples, en_samples)


def test_espeak_gives_the_same_samples_whatever_was_spoken_before() -> None:
    text = speech.SENTENCES["en"][1]
    first = speech.say(text, "en")
    speech.say(speech.SENTENCES["zh"][0], "zh")
    again = speech.say(text, "en")
    assert first.rate == 22050 and len(first.samples) > 22050
    assert np.array_equal(first.samples, again.samples)


def test_espeak_renders_the_same_in_a_spawned_process() -> None:
    """The spawn path (used when threads run, e.g. beside a simulator) matches the fork path."""
    texts = (speech.SENTENCES["zh"][0],)
    _, (spawned,) = speech._render(texts, "zh", method="spawn")
    assert np.array_equal(spawned.samples, speech.say(texts[0], "zh").samples)


def test_synthetic_voice(tmp_path: Path) -> None:
    _, manifest = _generate(tmp_path, voice="synthetic", formats=["m4a", "webm"], durations=[5, 7.5])
    assert {"synthetic-5s.m4a", "synthetic-7.5s.m4a", "synthetic-7.5s.webm"} <= set(manifest["files"])
    assert manifest["generator"]["espeak_ng"] is None
    entry = manifest["files"]["synthetic-7.5s.m4a"]
    assert (entry["kind"], entry["form_duration"], entry["expect"]) == ("synthetic", 8, 200)
    samples = _ffmpeg_samples(tmp_path / "synthetic-7.5s.m4a")
    assert abs(len(samples) / 16000 - 7.5) <= 0.05
    assert _rms(samples) > 500


def test_synthetic_voice_is_deterministic() -> None:
    a, b = speech.synthetic_utterance(3), speech.synthetic_utterance(3)
    assert np.array_equal(a.samples, b.samples) and a.rate == audio.COMPOSE_RATE


def test_encode_accepts_a_pydub_segment(tmp_path: Path) -> None:
    pcm = audio.fit_to_duration(list(speech.synthetic_utterances()), 5.0)
    segment = pcm.to_segment().set_frame_rate(44100).set_channels(2)  # encode downmixes to mono
    audio.encode(segment, "m4a", tmp_path / "seg.m4a")
    decoded = audio.decode(tmp_path / "seg.m4a")
    assert (decoded.channels, decoded.sample_rate) == (1, 44100)
    assert abs(decoded.duration_s - 5.0) <= 0.05 and decoded.rms() > 500
    assert np.array_equal(audio.Pcm.from_segment(pcm.to_segment()).samples, pcm.samples)


# --------------------------------------------------------------------------- --source


def test_source_recording_is_trimmed_and_padded(en: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = en
    source = root / "speech-en-5s.mp3"  # any format ffmpeg reads
    _, manifest = _generate(tmp_path / "out", source=source, formats=["m4a"], durations=[3, 12])
    assert manifest["generator"]["source"]["name"] == "speech-en-5s.mp3"
    for dur in (3, 12):
        entry = manifest["files"][f"source-{dur}s.m4a"]
        assert entry["kind"] == "source"
        assert abs(entry["duration_s"] - dur) <= 0.05
    assert manifest["files"]["source-3s.m4a"]["expect"] == 400
    assert _rms(_ffmpeg_samples(tmp_path / "out" / "source-12s.m4a")) > 300


@pytest.mark.parametrize("content", [b"", b"this is not audio at all" * 100, b"RIFF\x00\x00\x00\x00WAVEjunk"])
def test_corrupt_source_is_a_usage_error(tmp_path: Path, content: bytes) -> None:
    source = tmp_path / "recording.m4a"
    source.write_bytes(content)
    with pytest.raises(UsageError) as err:
        _generate(tmp_path / "out", source=source)
    assert "--source" in str(err.value) and "\n" not in str(err.value)


def test_missing_source_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        _generate(tmp_path / "out", source=tmp_path / "nope.m4a")


@pytest.mark.parametrize(
    "overrides",
    [{"formats": ["flac"]}, {"formats": []}, {"durations": []}, {"durations": [0]}, {"durations": [-5]},
     {"lang": "fr"}, {"voice": "robot"}],
)  # fmt: skip
def test_bad_arguments_are_usage_errors(tmp_path: Path, overrides: dict) -> None:
    with pytest.raises(UsageError):
        _generate(tmp_path, **overrides)


# --------------------------------------------------------------------------- manifest reading


def test_load_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="manifest.json not found: run `make fixtures`"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(UsageError, match="manifest is not valid JSON"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": 99, "files": {}}))
    with pytest.raises(UsageError, match="schema"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("[]")
    with pytest.raises(UsageError, match="files"):
        load_manifest(tmp_path)


def test_fixture_entry(en: tuple[Path, dict]) -> None:
    _, manifest = en
    assert fixture_entry(manifest, DEFAULT_FIXTURE)["name"] == DEFAULT_FIXTURE
    with pytest.raises(UsageError) as err:
        fixture_entry(manifest, "speech-en-9s.m4a")
    assert DEFAULT_FIXTURE in str(err.value) and "neg-empty.m4a" in str(err.value)


# --------------------------------------------------------------------------- pure rules


def test_expected_status_follows_thankly_validation() -> None:
    assert expected_status(5, 1000, "audio/m4a")[0] == 200
    assert expected_status(600, 50_000, "audio/wav")[0] == 200
    assert expected_status(4, 50_000, "audio/m4a")[0] == 400
    assert expected_status(601, 50_000, "audio/m4a")[0] == 400
    assert expected_status(5, 999, "audio/m4a")[0] == 400
    assert expected_status(5, 50_000, "application/octet-stream")[0] == 400
    assert expected_status(5, 50_000, "Audio/m4a")[0] == 400  # case-sensitive, like the server
    assert form_duration(0.5) == 0 and form_duration(5.0) == 5 and form_duration(7.5) == 8


def _clip(n: int, value: int = 1000) -> audio.Pcm:
    return audio.Pcm(np.full(n, value, dtype=np.int16), 1000)


def test_fit_keeps_whole_clips_and_skips_ones_that_would_be_cut() -> None:
    out = audio.fit_to_duration([_clip(3000, 1), _clip(900, 2)], 5.0)  # rate 1000: lead/tail 250, gap 500
    assert len(out.samples) == 5000
    assert np.count_nonzero(out.samples == 1) == 3000  # the 3 s clip, whole
    assert np.count_nonzero(out.samples == 2) == 900  # then the short one; the long one no longer fits


def test_fit_trims_the_first_clip_when_nothing_fits() -> None:
    out = audio.fit_to_duration([_clip(10_000)], 2.0)
    assert len(out.samples) == 2000
    assert out.samples[0] == 0 and out.samples[500] == 1000 and out.samples[-1] == 0


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 8000), min_size=1, max_size=5),
    duration=st.floats(0.01, 30.0, allow_nan=False),
)
def test_fit_always_gives_the_exact_length(lengths: list[int], duration: float) -> None:
    out = audio.fit_to_duration([_clip(n) for n in lengths], duration)
    assert len(out.samples) == round(duration * 1000)
    assert out.samples.dtype == np.int16


# --------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probes", "fixtures", *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )


def test_cli_end_to_end(tmp_path: Path, en: tuple[Path, dict]) -> None:
    proc = _cli("--out", str(tmp_path), "--durations", "5", "--formats", "m4a")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    manifest = load_manifest(tmp_path)
    entry = fixture_entry(manifest, DEFAULT_FIXTURE)
    assert entry["expect"] == 200
    # Another process, another history: still the same bytes as this session's.
    assert entry == en[1]["files"][DEFAULT_FIXTURE]


def test_cli_corrupt_source_exits_2_with_one_line(tmp_path: Path) -> None:
    source = tmp_path / "broken.m4a"
    source.write_bytes(b"\x00\x01garbage" * 500)
    proc = _cli("--out", str(tmp_path / "out"), "--source", str(source))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("probes: error: --source"), proc.stderr
