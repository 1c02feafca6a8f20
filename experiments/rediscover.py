"""Rediscover the historical-bug catalogue unguided: for each bug of eosim.models.bugs, run the search of
``eosim explore --reintroduce KAFKA-N --budget 60`` (the same engine, ``eosim._explore.campaign``; no hint
of the bug in the generator) and print the table: bug, found, seconds to find, steps before and after
shrinking, the anomalies.

Usage: python3 experiments/rediscover.py [--budget S] [--shrink-budget S] [--seed N] [--jobs J] [KAFKA-N ...]

Each bug's campaign runs on one core; ``--jobs`` runs that many bugs side by side (processes). Seconds are
wall-clock seconds of that campaign, so a busy machine finds less within the budget: the table says
what was measured where, never asserted in a test (docs/exploration.md has the numbers).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from eosim.models.bugs import HISTORICAL_BUGS
from eosim._explore import Campaign, campaign


def one(args: tuple[str, float, float, int]) -> tuple[str, Campaign]:
    bug, budget, shrink_budget, seed = args
    return bug, campaign(reintroduce=(bug,), budget=budget, shrink_budget=shrink_budget, seed=seed)


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
    return "\n".join(lines) + f"\n\n{found} of {len(results)} found"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bugs", nargs="*", help="the bugs to try (default: every one)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of search per bug")
    parser.add_argument("--shrink-budget", type=float, default=60.0, help="seconds of shrinking per finding")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="bugs searched side by side")
    args = parser.parse_args(argv)
    bugs = args.bugs or list(HISTORICAL_BUGS)
    unknown = [b for b in bugs if b not in HISTORICAL_BUGS]
    if unknown:
        parser.error(f"unknown bug(s) {', '.join(unknown)} (known: {', '.join(HISTORICAL_BUGS)})")
    started = time.perf_counter()
    work = [(bug, args.budget, args.shrink_budget, args.seed) for bug in bugs]
    if args.jobs <= 1:
        results = [one(w) for w in work]
    else:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(one, work))
    print(table(results))
    print(f"({time.perf_counter() - started:.0f} s wall, budget {args.budget:.0f} s per bug, seed {args.seed}, "
          f"{args.jobs} job(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
