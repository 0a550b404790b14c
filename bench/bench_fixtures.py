"""How long it takes to make the default fixture (speech-en-5s.m4a); prints one JSON line.

    .venv/bin/python bench/bench_fixtures.py [--reps 20]

encode_only   PCM already in memory -> ffmpeg -> m4a on disk
end_to_end    eSpeak NG synthesis of the diary sentences (cache cleared) + fit to 5 s + encode
measure       decode the m4a back through ffmpeg (what the manifest's duration_s costs)
generate_all  generate_fixtures() with the CLI defaults (4 formats + 7 negatives); the
              first call in a process also encodes the 601 s negative, later ones reuse it
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from probes.fixtures import audio, speech
from probes.fixtures.generate import generate_fixtures


def _timed(fn: Callable[[], object], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered) * 1000, 1), "p90_ms": round(p90 * 1000, 1), "n": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-fixtures-") as tmp:
        root = Path(tmp)
        dest = root / "speech-en-5s.m4a"
        pcm = audio.fit_to_duration(list(speech.diary_sentences("en")), 5.0)  # also warms up eSpeak NG
        audio.encode(pcm, "m4a", dest)  # warm up the page cache for the ffmpeg binary

        def end_to_end() -> None:
            speech._diary.cache_clear()  # force a fresh eSpeak NG render
            audio.encode(audio.fit_to_duration(list(speech.diary_sentences("en")), 5.0), "m4a", dest)

        def generate_all() -> None:
            generate_fixtures(root / "all", [5.0], ["m4a", "wav", "mp3", "webm"], "en", "espeak", None)

        gen = _timed(generate_all, max(3, args.reps // 5))
        result = {
            "bench": "fixtures",
            "fixture": "speech-en-5s.m4a",
            "ffmpeg": audio.ffmpeg_version(),
            "espeak_ng": speech.espeak_version(),
            "encode_only": _summary(_timed(lambda: audio.encode(pcm, "m4a", dest), args.reps)),
            "end_to_end": _summary(_timed(end_to_end, args.reps)),
            "measure": _summary(_timed(lambda: audio.decode(dest), args.reps)),
            "generate_all_first_ms": round(gen[0] * 1000, 1),
            "generate_all_warm": _summary(gen[1:]),
            "bytes": dest.stat().st_size,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
