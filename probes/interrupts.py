"""How a command stops when asked: SIGTERM is Ctrl-C, and children are told once.

    sigterm_interrupts()       SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C does,
                               so every phase of a command unwinds the same way (files renamed into
                               place or not at all, exit 130); later SIGTERMs are ignored while it does
    ForwardToChildren()        while child processes do the work (Locust): SIGINT and SIGTERM are passed
                               on to them as one SIGTERM each, and this process waits for them to
                               write what they have and exit

A CI job that is cancelled, `timeout`, `docker stop` and systemd all send SIGTERM; without a
handler Python dies on it at once, with no `finally` run and a half-written file left behind.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

_HANDLED = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # unwinding now: a second SIGTERM must not cut a finally short
    raise KeyboardInterrupt


def sigterm_interrupts() -> None:
    """From now on SIGTERM stops this process like Ctrl-C (KeyboardInterrupt). Main thread only; else a no-op."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


class ForwardToChildren:
    """A context in which SIGINT/SIGTERM do not stop this process but are sent on to `add`ed children.

    Each child gets SIGTERM once, on the first signal (or at once if it is added after one came);
    `signum` tells afterwards whether the work was interrupted. The previous handlers come back on exit.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._children: list[Any] = []  # subprocess.Popen
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> ForwardToChildren:
        if threading.current_thread() is threading.main_thread():
            for sig in _HANDLED:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def add(self, child: Any) -> None:
        self._children.append(child)
        if self.signum is not None:
            self._tell(child)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            for child in self._children:
                self._tell(child)

    @staticmethod
    def _tell(child: Any) -> None:
        if child.poll() is None:
            try:
                child.send_signal(signal.SIGTERM)
            except ProcessLookupError:  # it exited between the poll and the signal
                pass
