"""Audio fixtures a probe uploads, and fixtures/manifest.json describing them.

The manifest is the contract with the rest of the harness: a probe picks a
file by name (default ``speech-en-5s.m4a``), sends ``form_duration`` as the
``duration`` form field and ``content_type`` as the file part's type, and knows
from ``expect`` what thankly's upload validation should answer. Every
``duration_s``, ``sample_rate`` and ``channels`` is measured by decoding the
written file back with ffmpeg, not copied from the request. Generating twice
with the same arguments on the same machine gives the same manifest (no
timestamps, no absolute paths; see probes.audio for which encoders are
byte-identical).

    name                          kind       expect  why
    speech-{lang}-{dur:g}s.{ext}  speech     200     eSpeak NG diary sentences (400 if dur < 5 or > 600)
    synthetic-{dur:g}s.{ext}      synthetic  200     --voice synthetic
    source-{dur:g}s.{ext}         source     200     --source FILE, trimmed/padded
    neg-empty.m4a                 negative   400     0 bytes
    neg-truncated.m4a             negative   200     first 40 % of a 5 s m4a: accepted, fails later
    neg-silence-5s.m4a            negative   200     accepted; the recogniser fails it (TOO_SHORT)
    neg-short-0.5s.m4a            negative   400     duration field 0
    neg-tiny.m4a                  negative   400     a valid m4a under 1000 bytes
    neg-wav-as-m4a.m4a            negative   200     WAV bytes sent as audio/m4a
    neg-long-601s.m4a             negative   400     duration field 601 (synthetic voice, 8 kb/s)

Entries also carry ``nominal_s``, the length a clip was made to have (the
truncated file is undecodable, so its ``duration_s`` is null). Negatives are
built from the same voice or --source as the main files, except the 601 s one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from probes import audio, defaults, speech
from probes.manifest import MANIFEST_NAME, SCHEMA, fixture_entry, load_manifest  # noqa: F401  (re-exported)
from probes.errors import UsageError

DEFAULT_FIXTURE = defaults.FIXTURE

# thankly's synchronous upload validation (DESIGN.md).
MIN_DURATION_S = 5
MAX_DURATION_S = 600
MIN_BYTES = 1000

MAX_FIXTURE_S = 3600.0  # refuse typos like --durations 50000
TRUNCATE_FRACTION = 0.4
LONG_S = 601.0
TINY_S = 0.1
TINY_GAINS = (1.0, 0.3, 0.1, 0.03, 0.01, 0.0)  # deterministic: the first that fits is always the same


# --------------------------------------------------------------------------- pure rules


def expected_status(form_duration: int, n_bytes: int, content_type: str) -> tuple[int, str]:
    """What thankly's upload validation answers for a file, and why."""
    if not content_type.startswith("audio/"):
        return 400, f"content type {content_type} does not start with audio/"
    if form_duration < MIN_DURATION_S:
        return 400, f"duration {form_duration} < {MIN_DURATION_S} s"
    if form_duration > MAX_DURATION_S:
        return 400, f"duration {form_duration} > {MAX_DURATION_S} s"
    if n_bytes < MIN_BYTES:
        return 400, f"file {n_bytes} bytes < {MIN_BYTES} bytes"
    return 200, "passes upload validation"


def form_duration(nominal_s: float) -> int:
    """The integer `duration` form field for a clip: Python's round (half to even, 0.5 -> 0)."""
    return int(round(nominal_s))


def fixture_name(kind: str, duration_s: float, ext: str, lang: str) -> str:
    """speech-en-5s.m4a, synthetic-15s.wav, source-5s.mp3."""
    prefix = f"speech-{lang}" if kind == "speech" else kind
    return f"{prefix}-{duration_s:g}s.{ext}"


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class _Job:
    """One file to write: how to make its bytes and what the manifest says about it."""

    name: str
    kind: str
    format: str
    content_type: str
    nominal_s: float
    form_duration: int
    write: Callable[[Path], None]
    reason: str | None = None  # overrides the generic validation reason


def _validated(durations: list[float], formats: list[str], lang: str, voice: str) -> tuple[list[float], list[str]]:
    if not durations:
        raise UsageError("--durations is empty")
    for d in durations:
        if not (0 < d <= MAX_FIXTURE_S):
            raise UsageError(f"--durations must be > 0 and <= {MAX_FIXTURE_S:g} s, got {d:g}")
    if not formats:
        raise UsageError("--formats is empty")
    for f in formats:
        audio.get_format(f)
    if lang not in speech.LANGS:
        raise UsageError(f"--lang must be one of {', '.join(speech.LANGS)}, got {lang!r}")
    if voice not in speech.VOICES:
        raise UsageError(f"--voice must be one of {', '.join(speech.VOICES)}, got {voice!r}")
    unique: dict[str, float] = {}
    for d in durations:
        unique.setdefault(f"{d:g}", float(d))  # 5 and 5.0 name the same file: keep the first
    return list(unique.values()), list(dict.fromkeys(formats))


def _load_source(source: Path) -> tuple[audio.Pcm, ...]:
    """A person's recording, mono at the compose rate; any problem is one UsageError line."""
    if not source.is_file():
        raise UsageError(f"--source {source}: file not found (or not a file)")
    try:
        decoded = audio.decode(source, rate=audio.COMPOSE_RATE, mono=True)
    except audio.AudioDecodeError as exc:
        raise UsageError(f"--source {source}: not readable audio ({exc})") from None
    pcm = audio.Pcm(np.ascontiguousarray(decoded.samples[:, 0]), decoded.sample_rate)
    if pcm.duration_s < 0.1:
        raise UsageError(f"--source {source}: has {pcm.duration_s:.2f} s of audio, need at least 0.1 s")
    return (pcm,)


def _encoder(pcm: audio.Pcm, fmt: audio.Format) -> Callable[[Path], None]:
    return lambda dest: audio.encode(pcm, fmt, dest)


def _bytes_writer(make: Callable[[], bytes]) -> Callable[[Path], None]:
    def write(dest: Path) -> None:
        _write_atomic(dest, make())

    return write


def _plan(
    clips: tuple[audio.Pcm, ...], kind: str, durations: list[float], formats: list[str], lang: str, scratch: Path
) -> list[_Job]:
    jobs: list[_Job] = []
    for dur in durations:
        pcm = audio.fit_to_duration(list(clips), dur)
        for ext in formats:
            fmt = audio.FORMATS[ext]
            name = fixture_name(kind, dur, ext, lang)
            jobs.append(_Job(name, kind, ext, fmt.content_type, dur, form_duration(dur), _encoder(pcm, fmt)))
    return jobs + _negative_plan(clips, scratch)


def _negative_plan(clips: tuple[audio.Pcm, ...], scratch: Path) -> list[_Job]:
    """The always-present negative cases, built from the same clips as the main fixtures."""
    m4a = audio.FORMATS["m4a"]
    five = audio.fit_to_duration(list(clips), 5.0)

    def truncated() -> bytes:
        tmp = scratch / ".scratch-truncated.m4a"
        try:
            audio.encode(five, m4a, tmp)
            whole = tmp.read_bytes()
        finally:
            tmp.unlink(missing_ok=True)
        return whole[: int(len(whole) * TRUNCATE_FRACTION)]

    def wav_bytes() -> bytes:
        tmp = scratch / ".scratch-wav-as-m4a.wav"
        try:
            audio.encode(five, audio.FORMATS["wav"], tmp)
            return tmp.read_bytes()
        finally:
            tmp.unlink(missing_ok=True)

    def neg(name: str, fmt: str, nominal: float, form: int, write: Callable[[Path], None], reason: str) -> _Job:
        return _Job(name, "negative", fmt, "audio/m4a", nominal, form, write, reason)

    return [
        neg("neg-empty.m4a", "m4a", 0.0, 5, _bytes_writer(lambda: b""), "empty file: size < 1000 bytes"),
        neg("neg-truncated.m4a", "m4a", 5.0, 5, _bytes_writer(truncated),
            "first 40 % of a 5 s m4a (no moov atom): validation accepts it, the job fails later"),
        neg("neg-silence-5s.m4a", "m4a", 5.0, 5, _encoder(audio.silence(5.0), m4a),
            "5 s digital silence: accepted; the recogniser fails it with TRANSCRIPTION_CONTENT_TOO_SHORT"),
        neg("neg-short-0.5s.m4a", "m4a", 0.5, form_duration(0.5), _encoder(audio.fit_to_duration(list(clips), 0.5), m4a),
            "0.5 s of speech, duration field 0 < 5 s"),
        neg("neg-tiny.m4a", "m4a", TINY_S, 5, _tiny_writer(clips[0]),
            "a valid 0.1 s m4a (quiet or silent) under 1000 bytes, duration field 5"),
        neg("neg-wav-as-m4a.m4a", "wav", 5.0, 5, _bytes_writer(wav_bytes),
            "WAV bytes sent as audio/m4a: validation checks only the declared type"),
        neg("neg-long-601s.m4a", "m4a", LONG_S, 601, _bytes_writer(_long_negative_bytes),
            "601 s of the synthetic voice at 8 kb/s: duration field 601 > 600 s"),
    ]  # fmt: skip


@functools.cache
def _long_negative_bytes() -> bytes:
    """The 601 s clip, encoded once per process.

    Encoding 601 s of AAC is most of the generation time, and the server
    rejects it on the duration field alone, so its content does not follow
    --voice/--lang/--source: it is always the synthetic voice, the same bytes
    for every generation (and available when eSpeak NG is not).
    """
    pcm = audio.fit_to_duration(list(speech.synthetic_utterances()), LONG_S)
    with tempfile.TemporaryDirectory(prefix="probes-") as tmp:
        dest = Path(tmp) / "long.m4a"
        audio.encode(pcm, audio.M4A_SMALL, dest)
        return dest.read_bytes()


def _tiny_writer(clip: audio.Pcm) -> Callable[[Path], None]:
    """A valid m4a under MIN_BYTES: a 0.1 s excerpt, made quieter until it is small enough.

    AAC's first frames cost ~400 bytes of speech whatever the bitrate, on top
    of ~700 bytes of mp4 headers, so loudness is the knob left (silence always fits).
    """
    n = round(TINY_S * clip.rate)
    start = min(len(clip.samples) // 3, max(len(clip.samples) - n, 0))
    excerpt = np.pad(clip.samples[start : start + n], (0, max(0, n - len(clip.samples[start:]))))

    def write(dest: Path) -> None:
        for gain in TINY_GAINS:
            quiet = np.round(excerpt.astype(np.float64) * gain).astype(np.int16)
            audio.encode(audio.Pcm(quiet, clip.rate), audio.M4A_SMALL, dest)
            if dest.stat().st_size < MIN_BYTES:
                return
        raise RuntimeError(f"could not make {dest.name} smaller than {MIN_BYTES} bytes")

    return write


# --------------------------------------------------------------------------- I/O


def generate_fixtures(
    out_dir: Path, durations: list[float], formats: list[str], lang: str, voice: str, source: Path | None
) -> dict[str, Any]:
    """Write the fixtures and out_dir/manifest.json; return the manifest.

    Files are written in parallel (each is one ffmpeg process) and atomically;
    the manifest is written last, so it never lists a file that is not there.
    """
    durations, formats = _validated(durations, formats, lang, voice)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out {out_dir}: {exc.strerror}") from None

    generator: dict[str, Any] = {"durations": durations, "formats": formats, "lang": lang, "voice": voice}
    if source is not None:
        clips, kind = _load_source(Path(source)), "source"
        generator["source"] = {"name": Path(source).name, "sha256": _sha256(Path(source).read_bytes())}
    else:
        clips, kind = speech.utterances(voice, lang), "speech" if voice == "espeak" else "synthetic"
        generator["source"] = None
    generator["ffmpeg"] = audio.ffmpeg_version()
    generator["espeak_ng"] = speech.espeak_version(lang) if kind == "speech" else None

    jobs = _plan(clips, kind, durations, formats, lang, scratch=out_dir)
    # Longest first: the 601 s clip overlaps with the many short ones.
    order = sorted(jobs, key=lambda j: -j.nominal_s)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        entries = list(pool.map(lambda job: _make(job, out_dir), order))
    files = {e["name"]: e for e in sorted(entries, key=lambda e: e["name"])}
    manifest = {"schema": SCHEMA, "generator": generator, "files": files}
    _write_atomic(out_dir / MANIFEST_NAME, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())
    return manifest


def _make(job: _Job, out_dir: Path) -> dict[str, Any]:
    """Write one file, decode it back, and describe it."""
    path = out_dir / job.name
    job.write(path)
    data = path.read_bytes()
    digest = _sha256(data)
    duration_s, sample_rate, channels = _measure(path, digest)
    status, reason = expected_status(job.form_duration, len(data), job.content_type)
    return {
        "name": job.name,
        "format": job.format,
        "content_type": job.content_type,
        "kind": job.kind,
        "nominal_s": job.nominal_s,
        "duration_s": duration_s,
        "form_duration": job.form_duration,
        "bytes": len(data),
        "sample_rate": sample_rate,
        "channels": channels,
        "sha256": digest,
        "expect": status,
        "expect_reason": job.reason if job.reason and job.kind == "negative" else reason,
    }


_measured: dict[str, tuple[float | None, int | None, int | None]] = {}


def _measure(path: Path, digest: str) -> tuple[float | None, int | None, int | None]:
    """Duration, rate and channels as a decoder sees them (None when undecodable).

    Memoised by content hash: the same bytes always decode the same way.
    """
    if digest not in _measured:
        try:
            info = audio.decode(path)
            _measured[digest] = (round(info.duration_s, 4), info.sample_rate, info.channels)
        except audio.AudioDecodeError:
            _measured[digest] = (None, None, None)
    return _measured[digest]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(dest: Path, data: bytes) -> None:
    part = dest.with_name(f".{dest.name}.part")
    part.write_bytes(data)
    os.replace(part, dest)
