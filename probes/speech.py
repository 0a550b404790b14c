"""Spoken gratitude-diary sentences: real speech from eSpeak NG, or a synthetic stand-in.

A backend that runs Whisper treats silence or noise differently from speech
(it may fail the job with TRANSCRIPTION_CONTENT_TOO_SHORT), so probes upload
intelligible sentences like the ones people record in the app. eSpeak NG comes
from the `espeakng-loader` wheel and is driven through ctypes: no system
package, no network. Synthesis runs in a short-lived child process (see
`_render`) so that the same text always gives the same samples. When the
library cannot be loaded, `--voice synthetic` produces a deterministic
speech-like signal (voiced syllables with harmonics, formants, a moving pitch
and pauses) that needs nothing but numpy.
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from probes.audio import COMPOSE_RATE, Pcm
from probes.errors import UsageError

LANGS = ("en", "zh")
VOICES = ("espeak", "synthetic")

SENTENCES: dict[str, tuple[str, ...]] = {
    # The first sentence of each language fits a 5 s clip whole (with the lead and tail silence).
    "en": (
        "Today I am grateful for a walk in the park with my sister, and for the warm tea we shared.",
        "I am thankful for a quiet morning and a good cup of coffee.",
        "A friend called just to say hello, and it made my whole day brighter.",
        "Dinner with my family tonight was simple, warm and full of laughter.",
        "I am grateful that my body carried me through a busy day.",
    ),
    "zh": (
        "今天我很感恩和妹妹在公园里散步。",
        "我很感激有一个安静的早晨和一杯好咖啡。",
        "朋友打电话来问好，让我一整天都很开心。",
        "今晚和家人一起吃饭，简单、温暖又充满笑声。",
    ),
}

ESPEAK_VOICE = {"en": b"en", "zh": b"cmn"}  # the bundled data names Mandarin "cmn" (lang/sit/cmn)

RENDER_TIMEOUT_S = 60.0

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Espeak:
    """One initialised eSpeak NG per process (the library keeps global state)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader

            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data_path = espeakng_loader.get_data_path().encode()
        except (ImportError, OSError, RuntimeError) as exc:
            raise UsageError(f"cannot load eSpeak NG ({exc}); use --voice synthetic") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if rate <= 0:
            raise UsageError("eSpeak NG failed to initialise; use --voice synthetic")
        self.lib, self.rate = lib, rate
        self.version = (lib.espeak_Info(None) or b"?").decode()
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    def _collect(self, wav: ctypes._Pointer, n: int, _events: int) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = keep synthesising

    def say(self, text: str, voice: bytes) -> Pcm:
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice) != 0:
                raise UsageError(f"eSpeak NG has no voice {voice.decode()!r}; use --voice synthetic")
            self._chunks = []
            data = text.encode("utf-8")
            err = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
            if err != 0:
                raise RuntimeError(f"espeak_Synth failed with code {err}")
            samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            return Pcm(samples.astype(np.int16), self.rate)


_engine: _Espeak | None = None
_engine_lock = threading.Lock()


def _espeak() -> _Espeak:
    """The process's engine, initialised on first use (only ever called in a render child)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _Espeak()
        return _engine


def _render_in_this_process(texts: tuple[str, ...], lang: str) -> tuple[str, tuple[Pcm, ...]]:
    engine = _espeak()
    return engine.version, tuple(engine.say(text, ESPEAK_VOICE[lang]) for text in texts)


def _start_method() -> str:
    """fork when it is safe (no other Python threads, e.g. a test's simulator) and available; else spawn."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return "fork"
    return "spawn"


def _render(texts: tuple[str, ...], lang: str, method: str | None = None) -> tuple[str, tuple[Pcm, ...]]:
    """Render texts in a fresh child process, so that equal input gives equal samples.

    eSpeak NG keeps synthesis state in C statics that espeak_Initialize does
    not reset (the harmonic-spectrum double buffer, the pitch-flutter index),
    so in one process the same sentence comes out slightly different each
    time, depending on everything spoken before. A child forked from a
    process that never loaded the library starts from pristine state; this
    process therefore never loads it. A fork costs ~15 ms; a spawn (used
    when other threads run, where fork is unsafe) a few hundred ms.
    """
    if lang not in ESPEAK_VOICE:
        raise UsageError(f"--lang must be one of {', '.join(LANGS)}, got {lang!r}")
    ctx = multiprocessing.get_context(method or _start_method())
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            version, clips = pool.submit(_render_in_this_process, texts, lang).result(timeout=RENDER_TIMEOUT_S)
    except BrokenProcessPool:
        raise UsageError("eSpeak NG crashed while speaking; use --voice synthetic") from None
    except TimeoutError:
        raise UsageError(f"eSpeak NG took over {RENDER_TIMEOUT_S:g} s; use --voice synthetic") from None
    for pcm in clips:
        if pcm.rate != COMPOSE_RATE:  # eSpeak NG renders at 22050; guard against a future change
            raise RuntimeError(f"eSpeak NG rendered at {pcm.rate} Hz, expected {COMPOSE_RATE}")
    return version, clips


def say(text: str, lang: str) -> Pcm:
    """Render one sentence with eSpeak NG: mono int16 PCM at 22050 Hz, the same every time."""
    return _render((text,), lang)[1][0]


@functools.cache
def _diary(lang: str) -> tuple[str, tuple[Pcm, ...]]:
    if lang not in SENTENCES:
        raise UsageError(f"--lang must be one of {', '.join(LANGS)}, got {lang!r}")
    return _render(SENTENCES[lang], lang)


def diary_sentences(lang: str) -> tuple[Pcm, ...]:
    """The gratitude-diary sentences of `lang`, spoken (rendered once per process)."""
    return _diary(lang)[1]


def espeak_version(lang: str = "en") -> str:
    """Version of the bundled eSpeak NG library, as the render child reported it."""
    return _diary(lang)[0]


# --------------------------------------------------------------------------- synthetic voice

# First three formants (Hz) of a few vowels: /a/, /i/, /u/, /e/, /o/.
_VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]])


@functools.cache
def synthetic_utterances(count: int = 4, rate: int = COMPOSE_RATE) -> tuple[Pcm, ...]:
    """A few speech-like utterances of about 2-4 s, identical on every call and run."""
    return tuple(synthetic_utterance(seed, rate) for seed in range(count))


def synthetic_utterance(seed: int, rate: int = COMPOSE_RATE) -> Pcm:
    """One deterministic speech-like phrase: words of voiced syllables with a falling pitch."""
    rng = np.random.default_rng(seed)
    n_words = int(rng.integers(4, 7))
    base_f0 = 110.0 + 60.0 * rng.random()
    pieces: list[np.ndarray] = []
    for w in range(n_words):
        declination = 1.0 - 0.25 * w / n_words  # pitch drifts down over a phrase, as in speech
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.5:
                pieces.append(_fricative(rng, rate))
            f0_start = base_f0 * declination * (1.0 + rng.uniform(-0.08, 0.15))
            f0_end = f0_start * (1.0 + rng.uniform(-0.2, 0.1))
            pieces.append(_syllable(rng, rate, rng.uniform(0.12, 0.28), f0_start, f0_end))
            pieces.append(np.zeros(int(rate * rng.uniform(0.0, 0.03))))
        pieces.append(np.zeros(int(rate * rng.uniform(0.08, 0.18))))
    signal = np.concatenate(pieces)
    signal *= 0.5 * 32767 / max(np.max(np.abs(signal)), 1e-9)
    return Pcm(np.round(signal).astype(np.int16), rate)


def _syllable(rng: np.random.Generator, rate: int, dur_s: float, f0_start: float, f0_end: float) -> np.ndarray:
    """A voiced vowel: harmonics of a gliding f0 shaped by the vowel's formants."""
    n = int(rate * dur_s)
    f0 = np.linspace(f0_start, f0_end, n)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    formants = _VOWELS[int(rng.integers(len(_VOWELS)))]
    out = np.zeros(n)
    mean_f0 = float(np.mean(f0))
    for k in range(1, int(3500 / mean_f0) + 1):
        freq = k * mean_f0
        gain = sum(np.exp(-(((freq - f) / (80 + 0.06 * f)) ** 2)) for f in formants) + 0.03
        out += (gain / k**0.5) * np.sin(k * phase)
    envelope = np.sin(np.linspace(0, np.pi, n)) ** 0.6
    return out * envelope


def _fricative(rng: np.random.Generator, rate: int) -> np.ndarray:
    """A short burst of high-passed noise, like /s/ or /t/ before a vowel."""
    n = int(rate * rng.uniform(0.03, 0.07))
    noise = np.diff(rng.standard_normal(n + 1))
    return 0.15 * noise * np.hanning(n)


def utterances(voice: str, lang: str) -> tuple[Pcm, ...]:
    """The clips a fixture of `voice` is built from."""
    if voice == "espeak":
        return diary_sentences(lang)
    if voice == "synthetic":
        return synthetic_utterances()
    raise UsageError(f"--voice must be one of {', '.join(VOICES)}, got {voice!r}")
