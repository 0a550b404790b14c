"""May this target take this load? Pure: a Target and the planned load in, a UsageError out.

Load goes to loopback unless a target says `allow_load = true`; a
non-loopback target must also bound the load (`max_users`, `max_rate`), and
a run that asks for more is refused before any request is sent. Bounds set
on a loopback target are enforced the same way.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from probes.config import Target
from probes.errors import UsageError


def same_origin(a: str, b: str) -> bool:
    """Two base URLs name the same scheme, host and port (a trailing slash and the case of the host aside)."""
    pa, pb = urlsplit(a.strip()), urlsplit(b.strip())
    try:
        ports = (pa.port or _DEFAULT_PORTS.get(pa.scheme), pb.port or _DEFAULT_PORTS.get(pb.scheme))
    except ValueError:
        return False
    return (pa.scheme, (pa.hostname or ""), pa.path.rstrip("/")) == (pb.scheme, (pb.hostname or ""),
                                                                      pb.path.rstrip("/")) and ports[0] == ports[1]


_DEFAULT_PORTS = {"http": 80, "https": 443}


def check_host(target: Target, host: str | None) -> None:
    """The host Locust will hit must be the target's base_url: a guard on one URL must not let load go to another."""
    if host and not same_origin(host, target.base_url):
        raise UsageError(f"--host {host!r} is not targets.{target.name}.base_url ({target.base_url}); "
                         "load goes only to the target the guard checked")


def check_load(target: Target, users: int, rate: float | None, host: str | None = None) -> None:
    """Raise UsageError (one line) unless `users` concurrent flows at `rate` flows/s are allowed on `host`.

    `rate` is the open model's arrival rate, or the closed model's cap (None = uncapped); `host` is
    the URL Locust will really use (None: the target's own).

    >>> check_load(Target(name="l", base_url="http://127.0.0.1:1", allow_load=True), 5, None)
    """
    check_host(target, host)
    where = f"targets.{target.name}"
    if not target.allow_load:
        raise UsageError(f"target {target.name!r} refuses load: set allow_load = true in [{where}] to allow it")
    if users < 1:
        raise UsageError("the number of users must be >= 1")
    if rate is not None and rate <= 0:
        raise UsageError("the rate must be > 0 flows/s")
    if not target.is_loopback and (target.max_users is None or target.max_rate is None):
        raise UsageError(f"target {target.name!r} is not on loopback: set max_users and max_rate in [{where}]")
    if target.max_users is not None and users > target.max_users:
        raise UsageError(f"{users} users exceed {where}.max_users = {target.max_users}")
    if target.max_rate is not None and rate is not None and rate > target.max_rate:
        raise UsageError(f"{rate:g} flows/s exceed {where}.max_rate = {target.max_rate:g}")


def rate_cap(target: Target, rate: float | None) -> float | None:
    """The arrival rate a run must hold to: the asked rate, else the target's max_rate (or None)."""
    return rate if rate is not None else target.max_rate
