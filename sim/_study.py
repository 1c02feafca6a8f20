"""eosim._study
============

The runner behind ``eosim study NAME``: runs a study of ``eosim.experiments.studies`` over seeds
1..N on all cores, with a progress bar, and writes its tables and plot.

A study is a module of ``eosim.experiments.studies`` whose docstring states the claim it tests and
how it is measured, and which defines:

- ``NAME`` and ``DEFAULT_SEEDS``;
- ``cells()``: the sweep, a sequence of picklable parameter tuples;
- ``run_one(cell, seed) -> dict``: one simulated run, one row of ``runs.csv`` (``RUN_FIELDS``);
- ``summarize(rows) -> list[dict]``: one row of ``summary.csv`` (``SUMMARY_FIELDS``) per cell;
- ``markdown(summary, seeds) -> str``: the table of ``summary.md``;
- ``plot(summary, rows, path, seeds)``: ``plot.png`` (needs matplotlib, the ``studies`` extra).

The runs are independent and each is decided by its cell and seed alone, so they go to a pool of
processes and come back in task order: the same seeds give the same files, byte for byte, whatever
the number of workers. The files hold no wall-clock time.

The files go into a run directory with the same rules as ``eosim run``'s (eosim._rundir): by default a
new ``runs/studies/NAME/<UTC timestamp>`` with ``latest`` pointing at it, so earlier results stay; an
``out`` directory is replaced only when it is an earlier eosim run directory, atomically.
"""

from __future__ import annotations

import csv
import functools
import importlib
import io
import os
import pkgutil
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from attrs import frozen

from eosim import _executor, _rundir

PACKAGE = "eosim.experiments.studies"
STUDIES = Path("runs") / "studies"  # the default store, relative to the working directory
CHUNK = 8  # runs per task sent to a worker: a run takes milliseconds, a round trip to a worker too

Progress = Callable[[int], None]  # called with the number of runs just finished


class StudyError(Exception):
    """No such study."""


def names() -> list[str]:
    package = importlib.import_module(PACKAGE)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


def load(name: str) -> ModuleType:
    """The study called ``name`` (``dedup-window`` and ``dedup_window`` are the same study)."""
    module = name.replace("-", "_")
    if module not in names():
        raise StudyError(f"no study called {name!r}; the studies are: {', '.join(names())}")
    return importlib.import_module(f"{PACKAGE}.{module}")


def claim(study: ModuleType) -> str:
    """The first line of the study's docstring: the question it answers."""
    return (study.__doc__ or study.NAME).strip().splitlines()[0]


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@frozen
class StudyResult:
    name: str
    seeds: int
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    markdown: str
    directory: Path  # the run directory the files went to
    paths: dict[str, Path]  # runs, summary_csv, markdown, and plot when one was drawn
    plot_skipped: str | None  # why there is no plot
    warning: str | None  # the latest link was not eosim's to replace (the files are written)


def _run_chunk(name: str, tasks: list[tuple[Any, int]]) -> list[dict[str, Any]]:
    study = load(name)
    return [study.run_one(cell, seed) for cell, seed in tasks]


def run_rows(study: ModuleType, tasks: list[tuple[Any, int]], workers: int,
             progress: Progress | None = None, executor: str = _executor.LOCAL) -> list[dict[str, Any]]:
    """``run_one`` for every (cell, seed) task, in task order, in chunks on ``executor`` (eosim._executor:
    ``workers`` local processes, or a Dask cluster)."""
    chunks = [tasks[i:i + CHUNK] for i in range(0, len(tasks), CHUNK)]
    done = _executor.run_all(functools.partial(_run_chunk, study.NAME), chunks, executor=executor, workers=workers,
                             progress=None if progress is None else lambda i, _rows: progress(len(chunks[i])))
    return [row for rows in done for row in rows]


def _csv(fields: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


_FILES = {"runs": "runs.csv", "summary_csv": "summary.csv", "markdown": "summary.md", "plot": "plot.png"}


def run_study(name: str, seeds: int | None = None, out: str | Path | None = None, *, workers: int | None = None,
              cells: Sequence[Any] | None = None, progress: Progress | None = None,
              plot: bool = True, executor: str = _executor.LOCAL) -> StudyResult:
    """Run study ``name`` for seeds 1..``seeds`` (default: the study's) on every cell (default: the
    study's sweep) and write runs.csv, summary.csv, summary.md and plot.png into the run directory
    ``out`` (default a new runs/studies/NAME/<UTC timestamp>, with a latest link), on ``executor``
    (eosim._executor: local processes, or dask://HOST:PORT). An ``out`` that is
    not empty and not an earlier eosim run directory raises eosim._rundir.RunDirError before any run."""
    study = load(name)
    seeds = study.DEFAULT_SEEDS if seeds is None else seeds
    if seeds < 1:
        raise StudyError(f"--seeds must be at least 1, not {seeds}")
    if out is not None:
        _rundir.check_target(out, replace=True)  # refuse before spending the runs
    cells = study.cells() if cells is None else cells
    tasks = [(cell, seed) for cell in cells for seed in range(1, seeds + 1)]
    rows = run_rows(study, tasks, default_workers() if workers is None else workers, progress, executor)
    summary = study.summarize(rows)
    table = study.markdown(summary, seeds)
    files: dict[str, _rundir.Contents] = {
        "runs.csv": _csv(study.RUN_FIELDS, rows),
        "summary.csv": _csv(study.SUMMARY_FIELDS, summary),
        "summary.md": f"# {study.NAME}\n\n{claim(study)}\n\n{table}\n"
                      f"Reproduce: `eosim study {study.NAME} --seeds {seeds}`\n"}
    skipped = "plot not asked for" if not plot else None
    if plot:
        try:
            import matplotlib  # noqa: F401  (the studies extra)
        except ImportError:
            skipped = "matplotlib is not installed (pip install 'eosim[studies]'): no plot"
        else:
            files["plot.png"] = lambda path: study.plot(summary, rows, path, seeds)
    written, warning = _rundir.store(files, out=out, default=_rundir.default_path(STUDIES, study.NAME),
                                     study=study.NAME, seeds=seeds)
    paths = {key: written / file for key, file in _FILES.items() if file in files}
    return StudyResult(study.NAME, seeds, rows, summary, table, written, paths, skipped, warning)
