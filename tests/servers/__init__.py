"""Loopback HTTP servers that misbehave on purpose, for testing the probe engine and its drivers.

    from tests.servers import SCRIPTS, Step, hostile, scripted_server

    with scripted_server(SCRIPTS["auth-expiry"]) as base:     # "http://127.0.0.1:PORT"
        ...                                                   # drive the probe at base
        assert {r.token for r in base.of("poll")} == {"old", "new"}

    scripted    the server: Step, scripts per route, the request recorder, scripted_server()
    hostile     payloads and steps that misbehave (gzip bomb, endless body, odd ids, ...)
    scripts     SCRIPTS: ready-made thankly flows, healthy and not
    process     the same server in a child process (`scripted_process`), for clients that
                must not share the test process (gevent-patched Locust)
"""

from tests.servers import hostile
from tests.servers.process import scripted_process
from tests.servers.scripted import BaseURL, Recorded, Step, scripted_server
from tests.servers.scripts import SCRIPTS, flow, with_poll

__all__ = [
           "SCRIPTS",
           "BaseURL",
           "Recorded",
           "Step",
           "flow",
           "hostile",
           "scripted_process",
           "scripted_server",
           "with_poll",
]
