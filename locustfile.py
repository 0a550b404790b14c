"""Load mode for `locust -f locustfile.py ...` from a checkout: the Locust file lives in the package.

    locust -f locustfile.py --headless -u 20 -r 20 -t 60s --probes-target local

`probes load` (and `make load`) uses probes/load/locustfile.py directly, so an
installed `probes` needs no checkout.
"""

from probes.load.locustfile import *  # noqa: F401,F403
from probes.load.locustfile import ProbeUser  # noqa: F401
