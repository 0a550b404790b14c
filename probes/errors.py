"""What can go wrong, and the exit code a CI job sees for it.

    ProbesError            base; never shown as a traceback
    ├── UsageError         exit 2: bad flag, config, fixture or scenario
    └── UnreachableError   exit 3: the target could not be reached or authenticated

A regression verdict or a broken SLO is exit 1 and is not an exception.
"""

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class ProbesError(Exception):
    exit_code = EXIT_USAGE


class UsageError(ProbesError):
    exit_code = EXIT_USAGE


class UnreachableError(ProbesError):
    exit_code = EXIT_UNREACHABLE
