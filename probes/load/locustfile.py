"""Load mode: the probe flow as Locust users (see probes/load/ and `make load`).

    locust -f probes/load/locustfile.py --headless -u 20 -r 20 -t 60s --probes-target local
    locust -f probes/load/locustfile.py,probes/load/shape.py ... --probes-model ramp --probes-stages 30s:10,60s:50

The user, the options and the hooks live in probes.load; this file only
hands them to Locust (the repository's locustfile.py imports it). `python -m probes.load` (the Makefile's `make load`)
builds these command lines, starts the simulator of a local target and
renders the report.
"""

from locust import events

from probes.load.hooks import register
from probes.load.user import ProbeUser

__all__ = ["ProbeUser"]

register(events)
