"""Parse the canary's command-line values into numbers, with one-line errors. Pure.

The CLI takes these as strings and parses them here so that a bad value is a
`UsageError` (exit 2, one line) instead of a framework usage box.
"""

from __future__ import annotations

import math
import re

from probes.errors import UsageError

AGE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# Ten years: longer than any history worth plotting, short enough that `now - age` stays a sane timestamp.
MAX_AGE_S = 10 * 365 * 86400.0
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_age(text: str, option: str = "AGE") -> float:
    """An age like 90s, 30m, 12h or 30d, in seconds.

    >>> parse_age("30d"), parse_age("90s"), parse_age("1.5h")
    (2592000.0, 90.0, 5400.0)
    """
    match = _AGE.fullmatch(text.strip().lower())
    if not match:
        raise UsageError(f"{option} must be a number and a unit s, m, h or d (90s, 30m, 12h, 30d), got {text!r}")
    seconds = float(match.group(1)) * AGE_UNITS[match.group(2)]
    if not 0 < seconds <= MAX_AGE_S:
        raise UsageError(f"{option} must be more than 0 and at most 3650d, got {text!r}")
    return seconds


def parse_count(text: str, option: str, low: int, high: int) -> int:
    """A whole number in [low, high].

    >>> parse_count("2", "--alert-after", 1, 100)
    2
    """
    try:
        value = int(text.strip())
    except ValueError:
        raise UsageError(f"{option} must be a whole number in {low}..{high}, got {text!r}") from None
    if not low <= value <= high:
        raise UsageError(f"{option} must be a whole number in {low}..{high}, got {text!r}")
    return value


def parse_seconds(text: str, option: str, high: float) -> float:
    """Seconds in [0, high]; a bare number or an AGE (`--jitter 30` or `--jitter 30s`).

    >>> parse_seconds("2.5", "--jitter", 900), parse_seconds("1m", "--jitter", 900)
    (2.5, 60.0)
    """
    stripped = text.strip().lower()
    try:
        value = float(stripped)
    except ValueError:
        value = parse_age(stripped, option) if _AGE.fullmatch(stripped) else math.nan
    if not math.isfinite(value) or not 0 <= value <= high:
        raise UsageError(f"{option} must be seconds in 0..{high:g}, got {text!r}")
    return value
