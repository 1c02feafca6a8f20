"""Rediscover the historical-bug catalogue unguided: for each bug of eosim.models.bugs that the pinned Kafka
release no longer has, run the search of
``eosim explore --reintroduce KAFKA-N --budget 60`` (the same engine, ``eosim._explore.campaign``; no hint
of the bug in the generator) and print the table: bug, found, seconds to find, steps before and after
shrinking, the anomalies.

Usage: python3 experiments/rediscover.py [--budget S] [--shrink-budget S] [--seed N | --seeds N,M,...] [--cpu]
                                        [--jobs J] [--executor local|dask://HOST:PORT] [KAFKA-N ...]

With ``--seeds`` every bug is searched once per seed, and a second table shows, bug by bug, what each seed
found (the steps after shrinking, or "no"): at these rates one seed's found/missed is noisy, and a change
of the generator is judged by how many (bug, seed) pairs it finds and shrinks to ``MAX_STEPS`` or fewer.

With ``--cpu`` the budgets are CPU seconds of the campaign's process (one core's, ``time.process_time``), as
the project measures speed on its shared machine; without it wall-clock seconds, as ``eosim explore`` has them.

Each bug's campaign runs on one core; ``--jobs`` runs that many bugs side by side (local processes), or
``--executor dask://HOST:PORT`` on a Dask cluster (eosim._executor), with a progress bar on a terminal. Seconds are
seconds of that campaign (wall-clock, or CPU with ``--cpu``), so a busy machine finds less within a wall-clock budget: the table says
what was measured where, never asserted in a test (docs/exploration.md has the numbers).
"""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from eosim.models.bugs import HISTORICAL_BUGS, PINNED_RELEASE, bugs_of
from eosim import _executor
from eosim._explore import Campaign, campaign

MAX_STEPS = 12  # the mark: a finding counts when shrunk to this many steps (and rules, strikes) or fewer


def one(args: tuple[str, float, float, int, bool]) -> tuple[str, Campaign]:
    bug, budget, shrink_budget, seed, cpu = args
    return bug, campaign(reintroduce=(bug,), budget=budget, shrink_budget=shrink_budget, seed=seed,
                         clock=time.process_time if cpu else time.perf_counter)


def table(results: list[tuple[str, Campaign]]) -> str:
    lines = ["| bug | found | seconds to find | steps before shrinking | steps after | runs | anomalies |",
             "|---|---|---|---|---|---|---|"]
    for bug, c in results:
        f = c.finding
        if f is None:
            lines.append(f"| {bug} | no | - | - | - | {c.runs} | |")
        else:
            lines.append(f"| {bug} | yes | {f.seconds_to_find:.1f} | {f.steps_found} | {f.steps_shrunk} | {f.runs} | "
                         f"{', '.join(f.anomalies)} |")
    found = sum(c.finding is not None for _b, c in results)
    small = sum(c.finding is not None and c.finding.steps_shrunk <= MAX_STEPS for _b, c in results)
    return "\n".join(lines) + f"\n\n{found} of {len(results)} found, {small} shrunk to {MAX_STEPS} steps or fewer"


def by_seed(results: list[tuple[str, Campaign]]) -> str:
    """Bug by bug, each seed's result: the steps after shrinking (too many when over MAX_STEPS), or no."""
    seeds = sorted({c.seed for _b, c in results})
    bugs = list(dict.fromkeys(b for b, _c in results))
    cell = {(b, c.seed): c for b, c in results}
    lines = ["| bug | " + " | ".join(f"seed {s}" for s in seeds) + " | of |", "|---|" + "---|" * (len(seeds) + 1)]
    total = 0
    for bug in bugs:
        row = []
        for s in seeds:
            f = cell[bug, s].finding
            row.append("no" if f is None else f"{f.steps_shrunk}" + (" (too many)" if f.steps_shrunk > MAX_STEPS
                                                                       else f" in {f.seconds_to_find:.0f} s"))
        good = sum(cell[bug, s].finding is not None and cell[bug, s].finding.steps_shrunk <= MAX_STEPS for s in seeds)
        total += good
        lines.append(f"| {bug} | " + " | ".join(row) + f" | {good} |")
    return "\n".join(lines) + f"\n\n{total} of {len(bugs) * len(seeds)} (bug, seed) pairs found and shrunk"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bugs", nargs="*", help="the bugs to try (default: every one)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of search per bug")
    parser.add_argument("--shrink-budget", type=float, default=60.0, help="seconds of shrinking per finding")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=lambda text: [int(x) for x in text.split(",")],
                        help="comma-separated seeds: every bug once per seed, and a table by seed")
    parser.add_argument("--jobs", type=int, default=1, help="bugs searched side by side")
    parser.add_argument("--cpu", action="store_true",
                        help="budgets in CPU seconds of the campaign's process (one core), not wall-clock seconds")
    parser.add_argument("--executor", default=_executor.LOCAL, help="local or dask://HOST:PORT")
    args = parser.parse_args(argv)
    # A bug the pinned release has (KAFKA-20785) is on in every run already: nothing to rediscover.
    bugs = args.bugs or [b for b in HISTORICAL_BUGS if b not in bugs_of(PINNED_RELEASE)]
    unknown = [b for b in bugs if b not in HISTORICAL_BUGS]
    if unknown:
        parser.error(f"unknown bug(s) {', '.join(unknown)} (known: {', '.join(HISTORICAL_BUGS)})")
    started = time.perf_counter()
    try:
        _executor.check(args.executor)
    except _executor.ExecutorError as err:
        parser.error(str(err))
    seeds = args.seeds or [args.seed]
    work = [(bug, args.budget, args.shrink_budget, seed, args.cpu) for bug in bugs for seed in seeds]
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("rediscovering", total=len(work))
        found = []

        def done(_i: int, result: tuple[str, Campaign]) -> None:
            found.append(result[1].finding is not None)
            bar.update(task, advance=1, description=f"rediscovering: {sum(found)} found")

        results = _executor.run_all(one, work, executor=args.executor, workers=args.jobs, progress=done)
    print(table(results))
    if len(seeds) > 1:
        print()
        print(by_seed(results))
    where = f"{args.jobs} job(s)" if args.executor == _executor.LOCAL else args.executor
    print(f"({time.perf_counter() - started:.0f} s wall, budget {args.budget:.0f} {'CPU ' if args.cpu else ''}s per bug, "
          f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}, {where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
