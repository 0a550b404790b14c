"""The ramp model as a Locust LoadTestShape: stages of users over time.

Passed to Locust beside the locustfile (`-f locustfile.py,probes/load/shape.py`)
only for `--probes-model ramp`: a shape class in the locustfile itself would
take over every run. Stages come from --probes-stages, or ramp up-hold-down
over --run-time and --users (use_common_options).
"""

from __future__ import annotations

from locust import LoadTestShape

from probes.load import options as load_options
from probes.load.workload import Stage, stage_at


class RampShape(LoadTestShape):
    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self._stages: list[Stage] | None = None

    def stages(self) -> list[Stage]:
        if self._stages is None:
            opts = self.runner.environment.parsed_options
            load = load_options.from_namespace(opts)
            self._stages = load.stages(int(opts.num_users or 1), load_options.run_time_s(opts))
        return self._stages

    def tick(self) -> tuple[int, float] | None:
        return stage_at(self.stages(), self.get_run_time())
