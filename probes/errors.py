"""What can go wrong, and the exit code a CI job sees for it.

    ProbesError            base; never shown as a traceback
    ├── UsageError         exit 2: bad flag, config, fixture or scenario
    ├── UnreachableError   exit 3: the target could not be reached or authenticated
    └── RecordError        exit 4: what was measured could not be written (a full disk, a read-only
                           directory): a failure for cron and systemd, never "SLO broken"

A regression verdict or a broken SLO is exit 1 and is not an exception;
Ctrl-C or SIGTERM, in any phase, is exit 130 with what was already on disk kept.
"""

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_UNRECORDED = 4
EXIT_INTERRUPTED = 130


class ProbesError(Exception):
    exit_code = EXIT_USAGE


class UsageError(ProbesError):
    exit_code = EXIT_USAGE


class UnreachableError(ProbesError):
    exit_code = EXIT_UNREACHABLE


class RecordError(ProbesError):
    exit_code = EXIT_UNRECORDED


def record_error(what: str, exc: OSError) -> RecordError:
    """One line naming what could not be written and why (ENOSPC: "No space left on device")."""
    return RecordError(f"cannot write {what}: {exc.strerror or exc}")
