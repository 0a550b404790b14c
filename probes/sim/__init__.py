"""The embedded thankly-compatible backend simulator.

    progress   pure model: a task's drawn latencies in, its schedule of states out
    scenarios  scenario TOML files, validated (pydantic), and the draws they imply
    i18n       fixed API texts (zh/en) and Accept-Language
    app        the Starlette ASGI app over that model
    server     serve / running_simulator (thread) / simulator_process (child process)
"""

from probes.sim.scenarios import Scenario, builtin_names, load_scenario

__all__ = ["Scenario", "builtin_names", "load_scenario"]
