"""One canary per target at a time: two runs of one target would share the backend and the alert streak.

SQLite history: an exclusive `flock` on a file beside the database
(`.canary-<target>.lock`, mode 0600, never through a symlink), released by the
kernel when the process dies. A lock that cannot be created or written (a full
disk, a symlink in its place) is exit 4, like any other write the canary needs.
PostgreSQL history: a session advisory lock on its own connection, so two
runners on different machines that share the database never overlap either;
the server releases it when the session ends, however the runner died.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from probes.errors import NotRecorded, os_reason
from probes.canary.location import HistoryLocation
from probes.errors import UsageError

LOCK_PREFIX = "probes-canary:"


def busy_message(target: str, where: str) -> str:
    return f"another canary of target {target!r} is running (lock: {where}); this one exits without probing"


def lock_file(history_path: Path, target: str) -> Path:
    """`.canary-<slug>-<hash>.lock` beside the history: readable, and distinct for targets whose slugs collide."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", target).strip("-.")[:40] or "target"
    digest = hashlib.sha256(target.encode("utf-8")).hexdigest()[:8]
    return history_path.parent / f".canary-{slug}-{digest}.lock"


def advisory_key(target: str) -> int:
    """The signed 64-bit key of a target's PostgreSQL advisory lock."""
    digest = hashlib.sha256((LOCK_PREFIX + target).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# O_NOFOLLOW: a symlink planted where the lock goes (by anyone who can write the history's directory) must not
# make the canary create, truncate or write a file elsewhere; 0o600: the file says nothing anyone else needs.
LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
LOCK_MODE = 0o600


@contextmanager
def _file_lock(path: Path, target: str) -> Iterator[None]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, LOCK_FLAGS, LOCK_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRecorded(f"the canary lock {path} is a symbolic link: not followed; remove it") from None
        raise NotRecorded(f"cannot create the canary lock {path}: {os_reason(exc)}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRecorded(f"the canary lock {path} is not a regular file; remove it")
        try:
            os.fchmod(fd, LOCK_MODE)  # a lock made by an older probes was 0644
        except OSError:
            pass
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UsageError(busy_message(target, str(path))) from None
            raise NotRecorded(f"cannot take the canary lock {path}: {os_reason(exc)}") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for a person looking at a stuck lock
        except OSError as exc:  # a full disk: the run could not be recorded either, so stop before probing
            raise NotRecorded(f"cannot write the canary lock {path}: {os_reason(exc)}") from None
        yield
    finally:
        os.close(fd)  # closing releases the flock


@contextmanager
def _advisory_lock(location: HistoryLocation, target: str) -> Iterator[None]:
    from probes.canary.history import connect_postgresql

    conn = connect_postgresql(location)
    try:
        key = advisory_key(target)
        if not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
            raise UsageError(busy_message(target, f"PostgreSQL advisory lock {key} on {location.display}"))
        try:
            yield
        finally:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            except Exception:  # noqa: BLE001 - the connection is closed next, which releases it anyway
                pass
    finally:
        conn.close()


@contextmanager
def canary_lock(location: HistoryLocation, target: str) -> Iterator[None]:
    """Hold the target's canary lock for the block; UsageError (exit 2) when another canary holds it."""
    if location.kind == "postgresql":
        with _advisory_lock(location, target):
            yield
    else:
        assert location.path is not None
        with _file_lock(lock_file(location.path, target), target):
            yield
