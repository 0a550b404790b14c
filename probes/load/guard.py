"""May this target take this load? Pure: a Target and the planned load in, a UsageError out.

Load goes to loopback unless a target says `allow_load = true`; a
non-loopback target must also bound the load (`max_users`, `max_rate`), and
a run that asks for more is refused before any request is sent. Bounds set
on a loopback target are enforced the same way.
"""

from __future__ import annotations

from probes.config import Target
from probes.errors import UsageError


def check_load(target: Target, users: int, rate: float | None) -> None:
    """Raise UsageError (one line) unless `users` concurrent flows at `rate` flows/s are allowed.

    `rate` is the open model's arrival rate, or the closed model's cap (None = uncapped).

    >>> check_load(Target(name="l", base_url="http://127.0.0.1:1", allow_load=True), 5, None)
    """
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
