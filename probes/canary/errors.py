"""The canary's own exit codes beyond probes.errors (0 ok, 1 SLO broken, 2 usage, 3 unreachable).

    4    could not record: the history, the lock, the metrics textfile or the run directory could not be
         written (a full disk, a read-only or vanished file system, a database that failed a write).
         A schedule must count it as a failure: nothing it relies on was kept, so no alert can fire.
    130  interrupted (SIGTERM or Ctrl-C): what was measured is recorded when the history could still be
         written; the lock is released; an alert not yet sent stays in the outbox for the next run.

`probes run` uses the same numbers (4 for a run directory it cannot write, 130 interrupted).
"""

from __future__ import annotations

from probes.errors import ProbesError

EXIT_NOT_RECORDED = 4
EXIT_INTERRUPTED = 130


class NotRecorded(ProbesError):
    """Exit 4: something the canary must write could not be written. The message is one line, no traceback."""

    exit_code = EXIT_NOT_RECORDED


def os_reason(exc: OSError) -> str:
    """`No space left on device` and the like: the OS's words, never a path or a value from the error."""
    return exc.strerror or type(exc).__name__
