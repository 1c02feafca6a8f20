"""How fast the simulator runs: every library scenario, repeated, and seeded random workloads.

Usage: python experiments/benchmark.py [--repeat N] [--workloads N]

Prints, per scenario, the wall time of one run (best of N), the simulated time it covers and the trace
events per second of wall time; then the throughput on random transactional workloads, the shape the
property tests and explorations use. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from eosim._runner import run_scenario
from eosim._scenario import load_scenario, scenario_from_dict

LIBRARY = Path(__file__).resolve().parent / "scenarios"


def random_workload(rng: random.Random, producers: int, txns: int, records: int):
    """``producers`` transactional producers, each committing or aborting ``txns`` transactions of
    ``records`` records on a 4-partition topic, interleaved op by op."""
    programs = {}
    for i in range(producers):
        ops = [{"op": "init_transactions"}]
        for t in range(txns):
            ops.append({"op": "begin_transaction"})
            ops += [{"op": "produce", "topic": "t", "partition": rng.randrange(4), "value": f"p{i}-{t}-{r}"}
                    for r in range(records)]
            ops.append({"op": rng.choice(["commit_transaction", "abort_transaction"])})
        programs[f"p{i}"] = ops
    steps = []
    while any(programs.values()):
        name = rng.choice(sorted(n for n, ops in programs.items() if ops))
        steps.append({"actor": name, **programs[name].pop(0)})
    document = {"scenario": {"name": "bench", "description": "benchmark workload", "conformance": False},
                "topics": [{"name": "t", "partitions": 4}],
                "actors": {n: {"kind": "producer", "config": {"transactional.id": n}} for n in programs},
                "steps": steps}
    return scenario_from_dict(document, name="bench", header="# benchmark")


def best_of(n: int, fn):
    times = []
    result = None
    for _ in range(n):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workloads", type=int, default=200)
    args = parser.parse_args()

    print(f"{'scenario':40} {'wall ms':>8} {'sim ms':>8} {'events':>7} {'events/s':>10}")
    for path in sorted(LIBRARY.glob("*.toml")):
        scenario = load_scenario(path)
        wall, outcome = best_of(args.repeat, lambda: run_scenario(scenario))
        events = len(outcome.trace)
        print(f"{scenario.name:40} {wall * 1000:8.1f} {outcome.trace[-1]['t']:8d} {events:7d} {events / wall:10.0f}")

    rng = random.Random(1)
    workloads = [random_workload(rng, producers=3, txns=3, records=5) for _ in range(args.workloads)]
    start = time.perf_counter()
    events = [len(run_scenario(w, seed=i).trace) for i, w in enumerate(workloads)]
    wall = time.perf_counter() - start
    print(f"\nrandom workloads (3 producers x 3 txns x 5 records): {len(workloads)} runs in {wall:.2f} s = "
          f"{len(workloads) / wall:.0f} scenarios/s, {sum(events) / wall:.0f} trace events/s "
          f"(median {statistics.median(events):.0f} events per run)")


if __name__ == "__main__":
    main()
