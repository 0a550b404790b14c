"""The canary's signal handling in-process (pytest runs tests in the main thread, where handlers live)."""

from __future__ import annotations

import os
import signal

import pytest

from probes.canary.signals import Interrupts, Terminated


def test_sigterm_raises_and_the_previous_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with Interrupts() as interrupts:
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)  # a bytecode boundary for the handler to run at
        assert interrupts.received == signal.SIGTERM
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # what uvloop leaves behind after the probe phase
        interrupts.restore()
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


@pytest.mark.parametrize("signum, raised", [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)])
def test_a_held_block_finishes_then_the_signal_is_raised(signum, raised) -> None:
    done = []
    with Interrupts() as interrupts:
        with pytest.raises(raised):
            with interrupts.held():
                os.kill(os.getpid(), signum)
                signal.sigtimedwait([], 0)
                done.append("the write finished")
        assert done == ["the write finished"]


def test_a_second_signal_is_not_held() -> None:
    """A person can still get out of a stuck database."""
    done = []
    with Interrupts() as interrupts:
        with pytest.raises(Terminated):
            with interrupts.held():
                os.kill(os.getpid(), signal.SIGTERM)
                signal.sigtimedwait([], 0)
                os.kill(os.getpid(), signal.SIGTERM)
                signal.sigtimedwait([], 0)
                done.append("not reached")
    assert done == []
