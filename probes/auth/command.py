"""`token_command`: a credential helper run without a shell (30 s at most); its stdout is the token."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess

from probes.auth.base import AuthConfigError, AuthError, TokenSource, check_token
from probes.redact import redact_text
from probes.textsafe import visible

# `token_command` runs at most this long (issue 9): a credential helper that needs longer is
# waiting for a human (a browser login, an MFA prompt), which a probe cannot answer.
TOKEN_COMMAND_TIMEOUT_S = 30.0
# After a timeout the command's process group is killed; reading what it left must not hang.
TOKEN_COMMAND_REAP_S = 5.0
# How much of a failing command's stderr is shown: enough for one error line, not a dump.
MAX_STDERR_CHARS = 300


def parse_token_command(command: str) -> tuple[str, ...]:
    """`token_command` split like a POSIX shell would (no shell runs it); AuthConfigError if unusable."""
    try:
        argv = tuple(shlex.split(command))
    except ValueError as exc:  # unbalanced quotes, a trailing backslash
        raise AuthConfigError(f"token_command: cannot split it into words: {exc}") from None
    if not argv:
        raise AuthConfigError("token_command: empty command")
    return argv


class CommandToken(TokenSource):
    """`token_command = "..."`: the command's stdout is the token; it runs again on refresh."""

    def __init__(self, command: str, *, timeout_s: float = TOKEN_COMMAND_TIMEOUT_S) -> None:
        super().__init__()
        self.argv = parse_token_command(command)
        self.timeout_s = timeout_s

    def describe(self) -> str:
        return f"token_command {shlex.quote(self.argv[0])}"  # the program only: arguments may hold secrets

    def _fetch(self) -> str:
        return run_token_command(self.argv, self.timeout_s)

    def _renew(self, stale: str | None) -> str:
        return self._fetch()


def run_token_command(argv: tuple[str, ...] | list[str], timeout_s: float = TOKEN_COMMAND_TIMEOUT_S) -> str:
    """Run a credential helper without a shell; its stripped stdout is the token.

    Every failure is an AuthError whose message carries the program name and
    the tail of its stderr (control characters made visible, anything from
    stdout or shaped like a credential removed) and never stdout itself.
    """
    program = shlex.quote(argv[0])
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so a timeout kills its children too
        )
    except FileNotFoundError:
        raise AuthError(f"token_command: program {program} not found") from None
    except PermissionError:
        raise AuthError(f"token_command: {program} is not executable") from None
    except OSError as exc:
        raise AuthError(f"token_command: cannot start {program}: {exc.strerror or type(exc).__name__}") from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            out, err = proc.communicate(timeout=TOKEN_COMMAND_REAP_S)
        except subprocess.TimeoutExpired:  # a grandchild left the group and holds the pipes
            proc.kill()
            out, err = b"", b""
        raise AuthError(f"token_command {program} timed out after {timeout_s:g} s{_stderr_note(err, out)}") from None
    if proc.returncode != 0:
        how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exited with status {proc.returncode}")
        raise AuthError(f"token_command {program} {how}{_stderr_note(err, out)}")
    text = out.decode("utf-8", "replace")
    if not text.strip():
        raise AuthError(f"token_command {program} printed no token on stdout{_stderr_note(err, out)}")
    return check_token(text, f"the output of token_command {program}")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group the command leads (we started it with start_new_session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


# What of a failing command's output is looked at for the message (the end of stderr; stdout
# only to remove it from stderr): bounded so that a helper dumping megabytes costs nothing.
_STDERR_SCAN_BYTES = 16 * 1024
_STDOUT_SCAN_BYTES = 64 * 1024


def _stderr_note(err: bytes, out: bytes) -> str:
    """': <stderr tail>' for a message, with nothing that came out on stdout or looks like a credential."""
    text = err[-_STDERR_SCAN_BYTES:].decode("utf-8", "replace")
    stdout = out[:_STDOUT_SCAN_BYTES].decode("utf-8", "replace")
    known = [stdout, stdout.strip(), *(line.strip() for line in stdout.splitlines()),
             *[word for word in stdout.split() if len(word) >= 8][:200]]
    text = " ".join(redact_text(text, known).split())
    if not text:
        return " (no stderr)"
    text = visible(text)
    if len(text) > MAX_STDERR_CHARS:
        text = "…" + text[-(MAX_STDERR_CHARS - 1):]  # the end of stderr usually says what failed
    return f": {text}"
