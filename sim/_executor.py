"""eosim._executor
==============

Where a batch of independent jobs runs (explore campaigns, study chunks, rediscovery campaigns):

- ``local``: this machine, in ``workers`` processes (``concurrent.futures``, forkserver: the parent may run
  a progress bar's thread that a forked child would inherit mid-lock); one worker runs them in this process;
- ``dask://HOST:PORT``: the workers of a Dask distributed cluster (``distributed.Client``), which must
  have eosim installed (the jobs are module-level functions, pickled by reference).

``run_all`` returns the results in the order of the jobs, whatever order they finish in, so a batch gives
the same results on either executor. ``progress(i, result)`` is called as job ``i`` finishes.
"""

from __future__ import annotations

import multiprocessing
import re
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Sequence

LOCAL = "local"
_DASK = re.compile(r"dask://([A-Za-z0-9.\-\[\]:]+):(\d{1,5})")


class ExecutorError(ValueError):
    """A bad ``--executor`` value, or a Dask cluster that cannot be reached."""


def check(spec: str) -> str | None:
    """The Dask scheduler address of ``spec`` (None for ``local``); ExecutorError if it is neither."""
    if spec == LOCAL:
        return None
    match = _DASK.fullmatch(spec)
    if match is None:
        raise ExecutorError(f"--executor must be local or dask://HOST:PORT, not {spec!r}")
    return f"tcp://{match.group(1)}:{match.group(2)}"


def run_all(fn: Callable[[Any], Any], jobs: Sequence[Any], *, executor: str = LOCAL, workers: int = 1,
            progress: Callable[[int, Any], None] | None = None) -> list[Any]:
    """``fn(job)`` for every job, on ``executor``; the results in job order."""
    address = check(executor)
    if address is not None:
        return _on_dask(address, fn, jobs, progress)
    if workers <= 1 or len(jobs) <= 1:
        results = []
        for i, job in enumerate(jobs):
            results.append(fn(job))
            if progress:
                progress(i, results[-1])
        return results
    done: dict[int, Any] = {}
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)),
                             mp_context=multiprocessing.get_context("forkserver")) as pool:
        pending = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                i = pending.pop(future)
                done[i] = future.result()
                if progress:
                    progress(i, done[i])
    return [done[i] for i in range(len(jobs))]


def _on_dask(address: str, fn: Callable[[Any], Any], jobs: Sequence[Any],
             progress: Callable[[int, Any], None] | None) -> list[Any]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ExecutorError("the dask executor needs dask and distributed (pip install 'eosim[test]')") from None
    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise ExecutorError(f"no Dask scheduler at {address}: {err}") from None
    with client:
        futures = client.map(fn, list(jobs), pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        for future in as_completed(futures, loop=client.loop):
            if progress:
                progress(index[future.key], future.result())
        return client.gather(futures)
