"""Report files are whole or absent: each writer on a really full disk keeps the old file and leaves no temp.

In-process, on a 64 KB tmpfs (tests/conftest.py `small_disk`; skipped with the reason when it cannot
be mounted), except the interruption test, which needs no full disk.
"""

from __future__ import annotations

import errno

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from probes.errors import NotRecorded, UsageError
from probes.report.build import _csv
from probes.report.files import atomic_path, make_dir, write_error, write_text
from probes.report.load import write_parquet
from probes.report.plots import _save
from tests.conftest import fill

BIG = 200_000  # bytes: far more than the 64 KB disk has left


def big_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.random(BIG // 8), "label": [f"probe-{i}" for i in range(BIG // 8)]})


def big_figure() -> plt.Figure:
    fig, ax = plt.subplots(figsize=(12, 8))
    ax.imshow(np.random.default_rng(0).random((400, 600)))  # noise: a PNG that does not compress
    return fig


WRITERS = {  # name: (file name, the old file's writer, the new file's writer)
    "text": ("report.html", lambda p: p.write_text("old report"), lambda p: write_text(p, "x" * BIG)),
    "csv": ("summary.csv", lambda p: p.write_text("a\n1\n"), lambda p: _csv(big_frame(), p)),
    "parquet": ("probes.parquet", lambda p: pd.DataFrame({"a": [1]}).to_parquet(p),
                lambda p: write_parquet(big_frame(), p)),
    "png": ("progress.png", lambda p: _save(plt.figure(figsize=(1, 1)), p), lambda p: _save(big_figure(), p)),
}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_a_write_that_meets_a_full_disk_keeps_the_old_file_whole(kind, small_disk):
    name, old, new = WRITERS[kind]
    path = small_disk / name
    old(path)
    before = path.read_bytes()
    fill(small_disk, leave=8192)
    with pytest.raises(OSError) as info:
        new(path)
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before  # the old file, whole: never half of the new one
    assert sorted(p.name for p in small_disk.iterdir()) == sorted(["filler", name])  # no temporary file
    if kind == "parquet":
        assert pq.read_table(path).num_rows == 1


def test_an_interrupted_write_leaves_neither_a_temp_nor_half_a_file(tmp_path):
    path = tmp_path / "report.md"
    with pytest.raises(KeyboardInterrupt), atomic_path(path) as tmp:
        tmp.write_text("half a rep")
        raise KeyboardInterrupt  # Ctrl-C or SIGTERM in the middle of the write
    assert list(tmp_path.iterdir()) == []


def test_disk_errors_are_not_recorded_and_others_are_usage_errors(tmp_path):
    assert isinstance(write_error(OSError(errno.ENOSPC, "No space left on device"), "x"), NotRecorded)
    assert isinstance(write_error(OSError(errno.EROFS, "Read-only file system"), "x"), NotRecorded)
    denied = write_error(OSError(errno.EACCES, "Permission denied"), "the report in /r")
    assert isinstance(denied, UsageError) and str(denied) == "cannot write the report in /r: Permission denied"
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="^cannot create the report directory .*/file/sub: Not a directory$"):
        make_dir(tmp_path / "file" / "sub", "the report directory")
