"""SIGTERM and SIGINT honoured in every phase of a canary, and held off for the few writes that must finish.

    with Interrupts() as interrupts:      # SIGTERM raises Terminated, Ctrl-C KeyboardInterrupt (Terminated is one)
        jitter(); lock()
        result = probes_run()             # its own event loop handles both; after it, call restore()
        interrupts.restore()              # uvloop leaves its SIGTERM handler behind: the signal would be ignored
        with interrupts.held():           # a signal here waits until the block ends (a second one does not)
            record_in_history()
        alert(); push()                   # interruptible at any point: the outbox keeps what was not sent

Why: the probe phase (probes.probe.run) installs SIGTERM on its event loop, and
uvloop keeps that handler installed after the loop is closed, so a canary that
was recording, alerting or pushing ignored SIGTERM: `timeout`, systemd and
Kubernetes could not stop it. SIGINT is left to Python's default handler
outside held() (asyncio.Runner takes it over only when the default is in place,
which is how the probe phase turns Ctrl-C into "aborted" probes).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Any, Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the canary is; a KeyboardInterrupt so every Ctrl-C path handles it the same way."""


class Interrupts:
    """Installs the canary's handlers for the block (main thread only) and restores the previous ones after."""

    def __init__(self) -> None:
        self._active = threading.current_thread() is threading.main_thread()
        self._previous: dict[int, Any] = {}
        self._holding = False
        self._pending: int | None = None
        self.received: int | None = None  # the first signal seen, for the report

    def __enter__(self) -> Interrupts:
        if self._active:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.getsignal(signum)
            self.restore()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._active:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def restore(self) -> None:
        """(Re)install the handlers: SIGTERM raises Terminated, SIGINT Python's KeyboardInterrupt."""
        if self._active:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        if self._holding and self._pending is None:
            self._pending = signum  # raised when the held block ends
            return
        raise Terminated(signum) if signum == signal.SIGTERM else KeyboardInterrupt()

    @contextmanager
    def held(self) -> Iterator[None]:
        """A block that is not cut short by the first SIGTERM or SIGINT: it is raised when the block ends.

        For writes that must be whole or absent and take milliseconds (a history transaction, a delete);
        a second signal is not held, so a person can still get out of a stuck database.
        """
        if not self._active:
            yield
            return
        self.restore()
        signal.signal(signal.SIGINT, self._on_signal)
        self._holding, self._pending = True, None
        try:
            yield
        finally:
            self._holding = False
            signal.signal(signal.SIGINT, signal.default_int_handler)
            pending, self._pending = self._pending, None
        if pending is not None:
            raise Terminated(pending) if pending == signal.SIGTERM else KeyboardInterrupt()
