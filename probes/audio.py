"""The ffmpeg seam: PCM in, encoded files out, and files decoded back to measure them.

Everything goes through the static ffmpeg binary of the `imageio-ffmpeg` wheel
(no system ffmpeg, no ffprobe): encoding pipes raw s16le PCM into it, decoding
pipes WAV out of it and counts the samples, so a measured duration is what a
decoder really produces, not what a container header claims.

Formats (mono; the app uploads m4a as ``audio/m4a``):

    m4a   AAC-LC, ffmpeg native encoder, ``-aac_coder fast``, 64 kb/s, 22050 Hz, ipod muxer
    wav   PCM s16le, 22050 Hz
    mp3   LAME, 64 kb/s CBR, 22050 Hz, Xing/LAME header (gapless), no ID3 tags
    webm  Opus (libopus), 32 kb/s, 48000 Hz (resampled with soxr)

Determinism (measured with ffmpeg n9.0.2 from imageio-ffmpeg, x86-64): every
encode runs with ``-map_metadata -1 -fflags +bitexact -flags:a +bitexact`` and
a fixed bitrate, so no timestamps, encoder version strings or random
Matroska UIDs end up in the files. All four formats are byte-identical across
repeated runs on the same machine. Re-encoding with ffmpeg's SIMD disabled
(``-cpuflags 0``, a stand-in for "another CPU") still gives identical bytes for
wav, mp3, m4a and webm with the settings above; it did NOT for AAC's default
``twoloop`` coder, nor for anything resampled with ffmpeg's default swr
resampler, which is why m4a/mp3 stay at the 22050 Hz input rate and Opus
uses soxr. libmp3lame, libopus and libsoxr pick their own SIMD paths, which
``-cpuflags`` does not cover, so across different CPUs or ffmpeg builds
treat byte identity as likely, not promised: compare ``sha256`` in
manifest.json. The 601 s low-bitrate m4a (8 kHz, 8 kb/s) is resampled with
soxr and is deterministic on one machine.

The PCM going in is deterministic too: eSpeak NG output is (see
probes.speech: it renders in a fresh child process, because the library
carries state between utterances), and the synthetic voice is seeded numpy.
"""

from __future__ import annotations

import functools
import os
import struct
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from probes.errors import UsageError

with warnings.catch_warnings():
    # pydub warns at import that it cannot find ffmpeg on PATH; ffmpeg_exe() points it at ours.
    warnings.simplefilter("ignore", RuntimeWarning)
    warnings.simplefilter("ignore", DeprecationWarning)  # pydub imports audioop (deprecated in 3.12+)
    from pydub import AudioSegment

COMPOSE_RATE = 22050
"""Rate at which clips are composed (eSpeak NG's native rate)."""

_BITEXACT = ("-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact")


class AudioDecodeError(UsageError):
    """ffmpeg could not decode a file (corrupt, truncated, not audio, missing)."""


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg; also makes pydub use it."""
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    AudioSegment.converter = exe
    return exe


@functools.cache
def ffmpeg_version() -> str:
    """The ffmpeg version string, recorded in the manifest for reproducibility."""
    return imageio_ffmpeg.get_ffmpeg_version()


# --------------------------------------------------------------------------- PCM


@dataclass(frozen=True)
class Pcm:
    """Mono 16-bit PCM samples and their rate."""

    samples: np.ndarray  # int16, shape (n,)
    rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate

    @classmethod
    def from_segment(cls, segment: AudioSegment) -> Pcm:
        """Mono 16-bit PCM from a pydub segment (downmixed, requantised as needed)."""
        seg = segment.set_channels(1).set_sample_width(2)
        return cls(np.frombuffer(seg.raw_data, dtype="<i2").astype(np.int16), seg.frame_rate)

    def to_segment(self) -> AudioSegment:
        return AudioSegment(
            data=self.samples.astype("<i2").tobytes(), sample_width=2, frame_rate=self.rate, channels=1
        )


def silence(duration_s: float, rate: int = COMPOSE_RATE) -> Pcm:
    """Digital silence of an exact number of samples."""
    return Pcm(np.zeros(round(duration_s * rate), dtype=np.int16), rate)


def fit_to_duration(
    clips: list[Pcm], duration_s: float, *, lead_s: float = 0.25, gap_s: float = 0.5, tail_s: float = 0.25
) -> Pcm:
    """Lay clips end to end into exactly `duration_s` of audio (pure, deterministic).

    A recording of a diary sentence should contain whole sentences, so clips
    are taken in order, cycling, each one only if it still fits (with a pause
    before it); clips that would be cut are skipped. When not even one clip
    fits, the first one is trimmed with a short fade-out. The rest is silence.
    """
    clips = [c for c in clips if len(c.samples)]
    if not clips:
        raise UsageError("no audio to build fixtures from (the clip is empty)")
    rate = clips[0].rate
    if any(c.rate != rate for c in clips):
        raise ValueError("clips must share one sample rate")
    total = round(duration_s * rate)
    lead = min(round(lead_s * rate), total // 10)
    tail = min(round(tail_s * rate), total // 10)
    gap = round(gap_s * rate)
    room = total - lead - tail
    parts: list[np.ndarray] = [np.zeros(lead, dtype=np.int16)]
    used, skipped, i = 0, 0, 0
    while skipped < len(clips):
        clip = clips[i % len(clips)].samples
        i += 1
        need = len(clip) + (gap if used else 0)
        if used + need > room:
            skipped += 1
            continue
        if used:
            parts.append(np.zeros(gap, dtype=np.int16))
        parts.append(clip)
        used += need
        skipped = 0
    if not used:
        parts.append(_fade_out(clips[0].samples[: max(room, 0)], round(0.02 * rate)))
    out = np.concatenate(parts)[:total]
    out = np.pad(out, (0, total - len(out)))
    return Pcm(out.astype(np.int16), rate)


def _fade_out(samples: np.ndarray, n: int) -> np.ndarray:
    """Linear fade over the last n samples, so a trimmed clip ends without a click."""
    n = min(n, len(samples))
    if n == 0:
        return samples
    out = samples.astype(np.float64)
    out[-n:] *= np.linspace(1.0, 0.0, n)
    return np.round(out).astype(np.int16)


# --------------------------------------------------------------------------- encode


@dataclass(frozen=True)
class Format:
    """How one kind of file is written: muxer, codec arguments, output rate."""

    ext: str
    content_type: str
    muxer: str
    codec_args: tuple[str, ...]


FORMATS: dict[str, Format] = {
    "m4a": Format("m4a", "audio/m4a", "ipod", ("-c:a", "aac", "-aac_coder", "fast", "-b:a", "64k")),
    "wav": Format("wav", "audio/wav", "wav", ("-c:a", "pcm_s16le")),
    "mp3": Format(
        "mp3", "audio/mpeg", "mp3", ("-c:a", "libmp3lame", "-b:a", "64k", "-id3v2_version", "0", "-write_id3v1", "0")
    ),
    "webm": Format(
        "webm", "audio/webm", "webm", ("-c:a", "libopus", "-b:a", "32k", "-ar", "48000", "-resampler", "soxr")
    ),
}

M4A_SMALL = Format(
    "m4a", "audio/m4a", "ipod", ("-c:a", "aac", "-aac_coder", "fast", "-b:a", "8k", "-ar", "8000", "-resampler", "soxr")
)
"""Low-bitrate m4a (8 kHz, 8 kb/s) for long or deliberately tiny clips: small and fast to encode."""


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise UsageError(f"unknown format {name!r}; known: {', '.join(FORMATS)}") from None


def encode(audio: Pcm | AudioSegment, fmt: Format | str, dest: Path) -> None:
    """Encode mono PCM into `dest` (written atomically: a reader never sees half a file)."""
    pcm = audio if isinstance(audio, Pcm) else Pcm.from_segment(audio)
    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    part = dest.with_name(f".{dest.name}.part")
    cmd = [
        ffmpeg_exe(), "-v", "error", "-nostdin", "-y",
        "-f", "s16le", "-ar", str(pcm.rate), "-ac", "1", "-i", "pipe:0",
        *_BITEXACT, *fmt.codec_args, "-f", fmt.muxer, str(part),
    ]  # fmt: skip
    proc = subprocess.run(cmd, input=pcm.samples.astype("<i2").tobytes(), capture_output=True)
    if proc.returncode != 0:
        part.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg failed to encode {dest.name}: {_last_line(proc.stderr)}")
    os.replace(part, dest)


# --------------------------------------------------------------------------- decode


@dataclass(frozen=True)
class Decoded:
    """Samples a decoder produced, interleaved int16 as shape (n, channels)."""

    samples: np.ndarray
    sample_rate: int
    channels: int

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.sample_rate

    def rms(self) -> float:
        """Root mean square level (0 for digital silence, full scale 32768)."""
        if self.samples.size == 0:
            return 0.0
        return float(np.sqrt(np.mean(self.samples.astype(np.float64) ** 2)))


def decode(path: Path, *, rate: int | None = None, mono: bool = False) -> Decoded:
    """Decode any audio file with ffmpeg; optionally resample and downmix on the way."""
    if not path.is_file():
        raise AudioDecodeError(f"audio file not found: {path}")
    cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-vn", "-sn", "-dn"]
    if mono:
        cmd += ["-ac", "1"]
    if rate:
        cmd += ["-ar", str(rate), "-resampler", "soxr"]
    cmd += ["-fflags", "+bitexact", "-c:a", "pcm_s16le", "-f", "wav", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise AudioDecodeError(f"cannot decode {path.name}: {_last_line(proc.stderr)}")
    try:
        return _parse_wav_stream(proc.stdout)
    except ValueError as exc:
        raise AudioDecodeError(f"cannot decode {path.name}: {exc}") from None


def _parse_wav_stream(data: bytes) -> Decoded:
    """Parse the WAV ffmpeg writes to a pipe (its size fields are placeholders)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("ffmpeg produced no audio stream")
    pos, rate, channels = 12, 0, 0
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        pos += 8
        if cid == b"fmt ":
            channels, rate = struct.unpack("<HI", data[pos + 2 : pos + 8])
        elif cid == b"data":
            if not rate or not channels:
                raise ValueError("WAV data before its format")
            body = data[pos:]
            body = body[: len(body) - len(body) % (2 * channels)]
            samples = np.frombuffer(body, dtype="<i2").reshape(-1, channels)
            return Decoded(samples, rate, channels)
        pos += size + (size & 1)
    raise ValueError("no audio data")


def _last_line(stderr: bytes) -> str:
    """The last non-empty line of ffmpeg's stderr: short enough for a one-line error."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "ffmpeg gave no reason"
