"""How many worker processes a ``jobs`` setting means, and which joblib backend runs them: the
same in every command and function."""

from __future__ import annotations

import os
from contextlib import contextmanager

from xtal_cli.errors import ParameterError, XtalError

DASK_CONNECT_TIMEOUT = "20s"  # how long to wait for a --scheduler before giving up


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


@contextmanager
def parallel_backend(backend: str, scheduler: str | None, jobs: int):
    """joblib's backend for a batch: local processes (loky) or a dask cluster (a local one of
    *jobs* workers, or the one at *scheduler*): scale beyond one machine with dask's engine."""
    import joblib

    client = None
    if backend == "dask":
        try:
            from dask.distributed import Client
        except ImportError:
            raise ParameterError(
                "backend",
                "dask",
                "needs dask.distributed; install it with pip install 'xtal[dask]'",
            ) from None
        try:
            client = (
                Client(scheduler, timeout=DASK_CONNECT_TIMEOUT)
                if scheduler
                else Client(processes=True, n_workers=jobs, threads_per_worker=1)
            )
        except OSError as exc:
            raise XtalError(f"cannot reach the dask scheduler {scheduler}: {exc}") from None
    elif backend != "loky":
        raise ParameterError("backend", backend, "use loky or dask")
    elif scheduler:
        raise ParameterError("scheduler", scheduler, "is for --backend dask")
    try:
        with joblib.parallel_config(backend=backend):
            yield
    finally:
        if client is not None:
            client.close()
