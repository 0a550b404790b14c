"""What can go wrong, and the exit code a CI job sees for it.

    ProbesError            base; never shown as a traceback
    ├── UsageError         exit 2: bad flag, config, fixture or scenario
    ├── UnreachableError   exit 3: the target could not be reached or authenticated
    └── NotRecorded        exit 4: results could not be written (a full disk, a read-only file system)

A regression verdict or a broken SLO is exit 1 and is not an exception; an
interruption (Ctrl-C, SIGTERM) is 130.
"""

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_NOT_RECORDED = 4  # the canary's number too (probes/canary/errors.py)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


class ProbesError(Exception):
    exit_code = EXIT_USAGE


class UsageError(ProbesError):
    exit_code = EXIT_USAGE


class UnreachableError(ProbesError):
    exit_code = EXIT_UNREACHABLE


class NotRecorded(ProbesError):
    """Something that had to be written could not be; the message is one line and names what."""

    exit_code = EXIT_NOT_RECORDED


def os_reason(exc: OSError) -> str:
    """The OS's words for a failed write ("No space left on device"), without the path or value it carried."""
    return exc.strerror or type(exc).__name__
