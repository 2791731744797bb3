"""How many worker processes a ``jobs`` setting means, the same in every command and function."""

from __future__ import annotations

import os

from xtal_cli.errors import ParameterError


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return len(cores) if cores else os.cpu_count() or 1


def worker_count(jobs: int) -> int:
    """*jobs* as a number of processes: N >= 1 as given, -1 for every core this process may use
    (joblib's convention), so ``-j -1`` means the same in every command."""
    if jobs == -1:
        return available_cores()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ParameterError("jobs", jobs, "use a positive number of workers, or -1 for all cores")
    return jobs
