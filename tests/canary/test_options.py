"""AGE and the canary's numbers: every bad value is a one-line UsageError."""

from __future__ import annotations

import pytest

from probes.canary.options import parse_age, parse_count, parse_seconds
from probes.errors import UsageError


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("30m", 1800), ("12h", 43200), ("30d", 2592000),
                                           ("365d", 31536000), ("1.5h", 5400), (" 7D ", 604800)])
def test_age_units(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "30w", "-1d", "0d", "1e3s", "30 d", "3651d", "nan"])
def test_bad_age_is_one_line(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_age(text, "--since")
    assert "\n" not in str(err.value) and "--since" in str(err.value)


def test_counts_and_seconds() -> None:
    assert parse_count("3", "-n", 1, 100) == 3
    assert parse_seconds("0", "--jitter", 900) == 0.0
    assert parse_seconds("2m", "--jitter", 900) == 120.0
    for bad in ("0", "101", "2.5", "x", ""):
        with pytest.raises(UsageError, match="-n must be a whole number in 1..100"):
            parse_count(bad, "-n", 1, 100)
    for bad in ("-1", "901", "inf", "nan", "soon", "16m"):
        with pytest.raises(UsageError, match="--jitter must be seconds in 0..900"):
            parse_seconds(bad, "--jitter", 900)
