"""RunOptions: every limit of a run checked once, when the options are made (one line, exit 2)."""

from __future__ import annotations

import pytest

from probes.errors import UsageError
from probes.load.options import _milestones
from probes.probe.options import MAX_CONCURRENCY, MAX_PROBES, RunOptions


@pytest.mark.parametrize("fields, flag", [
    ({"n": 0}, "-n"), ({"n": MAX_PROBES + 1}, "-n"),
    ({"concurrency": 0}, "--concurrency"), ({"concurrency": MAX_CONCURRENCY + 1}, "--concurrency"),
    ({"timeout_s": 0}, "--timeout"), ({"timeout_s": 3600.5}, "--timeout"),
    ({"milestones": ()}, "--milestones"), ({"milestones": (0, 32)}, "--milestones"), ({"milestones": (101,)}, "--milestones"),
    ({"idle_before_s": -1}, "--idle-before"),
    ({"cadence": "fast"}, "--cadence"), ({"cadence": "fine", "interval": 0}, "--cadence"),
    ({"upload": "s3"}, "--upload"), ({"baseline": " "}, "--baseline"),
])
def test_each_limit_is_one_line_naming_its_flag(fields, flag):
    with pytest.raises(UsageError) as err:
        RunOptions(url="http://127.0.0.1:1", **fields)
    assert str(err.value).startswith(flag) and "\n" not in str(err.value)


def test_the_limits_themselves_are_allowed_and_milestones_come_sorted_and_distinct():
    options = RunOptions(url="http://127.0.0.1:1", n=MAX_PROBES, concurrency=MAX_CONCURRENCY, timeout_s=3600,
                         milestones=[55, 32, 32, 100], idle_before_s=3600, upload="multipart")
    assert options.milestones == (32, 55, 100)


def test_load_mode_checks_milestones_with_the_same_rule():
    assert _milestones("55,32,32") == (32, 55)
    with pytest.raises(UsageError, match="^--probes-milestones must be whole numbers in 1..100"):
        _milestones("0,32")
