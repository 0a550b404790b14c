"""Files written whole or not at all: a hidden temporary sibling, renamed onto the real name when complete.

A reader (a person opening report.html, a CI step collecting artefacts, `probes report` reading a
load run) never finds half a file under a final name, whether the writer was interrupted (Ctrl-C,
SIGTERM) or the disk filled up; the temporary file is removed on the way out, so a full disk gets
its space back.

    with atomic_path(out / "summary.csv") as tmp:   # tmp keeps the suffix: writers that pick a
        frame.to_csv(tmp, index=False)              # format by extension (matplotlib) still work
    write_text(out / "report.html", html)
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from probes.errors import NotRecorded, UsageError, os_reason

# errno values that say "the medium could not take it", not "you named a bad place": exit 4, not 2.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG})


def temp_name(path: Path) -> Path:
    """`.name.<pid>.tmp<suffix>` beside `path`: hidden, unique per process, the same suffix."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path to write; renamed onto `path` when the block ends, deleted when it raises."""
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def write_text(path: Path, text: str) -> Path:
    """`text` as UTF-8 at `path`, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def make_dir(path: Path, what: str) -> None:
    """mkdir -p; a full or read-only disk is NotRecorded (exit 4), a bad place a UsageError (exit 2)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, f"{what} {path}", verb="create") from None


def write_error(exc: OSError, what: str, verb: str = "write") -> NotRecorded | UsageError:
    """The one-line error for a failed write of `what`: NotRecorded for the disk's errors, else a UsageError."""
    if exc.errno in DISK_ERRNOS:
        return NotRecorded(f"could not record {what}: {os_reason(exc)}")
    return UsageError(f"cannot {verb} {what}: {os_reason(exc)}")
