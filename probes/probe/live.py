"""Live progress while a run goes on: one bar per probe in flight (up to a few), one for the run.

Rich hides itself when stderr is not a terminal, so CI logs stay clean.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from probes.probe.plan import ProbeState
from probes.textsafe import visible

MAX_PROBE_BARS = 8


class LiveBars:
    def __init__(self, n: int, concurrency: int, label: str, enabled: bool = True) -> None:
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[phase]}", markup=False),  # a step name is the server's text, not markup
            MofNCompleteColumn(),
            console=self.console,
            disable=not enabled or not self.console.is_terminal,
            transient=True,
        )
        self.per_probe = concurrency <= MAX_PROBE_BARS
        self.run_task = self.progress.add_task(f"{visible(label)} probes", total=n, phase="")
        self.bars: dict[str, TaskID] = {}

    def __enter__(self) -> "LiveBars":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def update(self, state: ProbeState) -> None:
        if state.done:
            self.progress.advance(self.run_task)
            bar = self.bars.pop(state.probe_id, None)
            if bar is not None:
                self.progress.remove_task(bar)
            return
        if not self.per_probe:
            return
        bar = self.bars.get(state.probe_id)
        if bar is None:
            self.bars[state.probe_id] = self.progress.add_task(
                f"  probe {state.probe_id}", total=100, completed=state.progress or 0,
                phase=visible(state.step_name or "")
            )
        else:
            self.progress.update(bar, completed=state.progress or 0, phase=visible(state.step_name or ""))
