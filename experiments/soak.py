"""Soak: random *correct* workloads under random faults must never be judged INVALID.

Usage: python3 experiments/soak.py [--runs N] [--start SEED] [--jobs J] [--out DIR]

Each run draws one scenario from its seed (``generate``): transactional and idempotent producers (librdkafka's,
or one in ``JAVA_ONE_IN`` the Java client's shape), read_committed readers, consume-transform-produce,
producer crash + restart + init, the random nemesis, fault rules (infrastructure errors, drops, delays, disconnects, lost WriteTxnMarkers responses,
failed ``__transaction_state`` appends), coordinator failovers (overlapping ones too), broker crash and
restart, pauses, long transaction timeouts. No historical-bug switch is ever set, so every guarantee must
hold: "valid" or "unknown" (a Kafka timer leaves something undecided) are fine, INVALID is a false alarm
of the simulator or a real Kafka/librdkafka finding to document.

An INVALID run whose every anomaly is explained by a documented finding (``eosim._findings.KNOWN_FINDINGS``: real behaviour with a
library scenario and the source lines that show it) is counted as that finding; any other INVALID run is a
false alarm. The report counts the verdicts, findings, false alarms and anomaly types; the exit code is 1 when
a run is a false alarm or crashed. Every INVALID, unknown or crashed run is written to
``DIR/soak-SEED.toml`` (the scenario, with its seed) and can be replayed with ``eosim run DIR/soak-SEED.toml``.
Speed is reported, never asserted (docs/verdicts.md has the numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from eosim.models.api import API_NAMES, INFRASTRUCTURE_ERRORS
from eosim._runner import run_scenario
from eosim._scenario import scenario_from_dict
from eosim._findings import classify

BROKER = "broker-1"
TIMEOUTS = (5_000, 10_000, 60_000, 300_000)  # transaction.timeout.ms: short enough to expire, and long ones
JAVA_ONE_IN = 4  # a producer takes the Java client's shape (eosim.client = "java") one time in 4
HEADER = ("A random correct workload drawn by experiments/soak.py from its seed: no historical bug is switched on,\n"
          "so every guarantee must hold (valid, or unknown when a Kafka timer leaves it undecided).")


# -- generation ---------------------------------------------------------------------------------------

def _txn_program(rng: random.Random, actor: str, partitions: int, *, consumer: str | None) -> list[dict[str, Any]]:
    """A transactional producer's steps: init, then transactions that commit or abort; maybe a crash
    (restart + init after it, or never restarted) in the middle of one. With ``consumer``, each
    transaction is consume-transform-produce: consume, produce, send the consumer's offsets."""
    ops: list[dict[str, Any]] = [{"op": "init_transactions"}]
    crashed = False
    incarnation = 1
    for t in range(rng.randint(1, 4)):
        ops.append({"op": "begin_transaction"})
        if consumer is not None:
            ops.append({"actor": consumer, "op": "consume", "max_records": rng.randint(1, 3),
                        "timeout_ms": rng.choice((300, 1000))})
        body = [{"op": "produce", "topic": "out", "partition": rng.randrange(partitions),
                 "value": f"{actor}.{incarnation}-{t}-{r}"} for r in range(rng.randint(1, 4))]
        if rng.random() < 0.3:
            body.insert(rng.randint(0, len(body)), {"op": "flush"})
        if consumer is not None:
            body.append({"op": "send_offsets_to_transaction", "consumer": consumer})
        ending = {"op": "commit_transaction" if rng.random() < 0.7 else "abort_transaction"}
        if not crashed and rng.random() < 0.15:  # crash somewhere in this transaction
            crashed = True
            cut = rng.randint(0, len(body))
            ops += body[:cut] + [{"op": "crash"}]
            if rng.random() < 0.8:
                incarnation += 1
                ops += [{"op": "restart"}, {"op": "sleep", "ms": rng.choice((0, 200, 2000))},
                        {"op": "init_transactions"}]
                continue
            return ops  # never restarted: the coordinator's timeout ends the transaction
        ops += body + [ending]
    return ops


def _idempotent_program(rng: random.Random, actor: str, topic: str, partitions: int) -> list[dict[str, Any]]:
    ops = []
    for r in range(rng.randint(1, 6)):
        ops.append({"op": "produce", "topic": topic, "partition": rng.randrange(partitions), "value": f"{actor}-{r}"})
        if rng.random() < 0.3:
            ops.append({"op": "flush"})
    return ops + [{"op": "flush"}]


def _nemesis_ops(rng: random.Random, actors: list[str], producers: list[str]) -> list[list[dict[str, Any]]]:
    """Groups of nemesis steps, each group kept together in the global order (a heal after its cut)."""
    groups = []
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        kind = rng.choice(("failover", "overlapping-failover", "broker-restart", "partition", "clog",
                           "disconnect", "pause"))
        if kind == "failover":
            groups.append([{"op": "coordinator_failover", "down_ms": rng.choice((0, 100, 2000)),
                            "load_ms": rng.choice((0, 10, 300))}])
        elif kind == "overlapping-failover":  # the second starts while the first is still down
            first = rng.choice((1000, 3000))
            groups.append([{"op": "coordinator_failover", "down_ms": first, "load_ms": rng.choice((10, 300))},
                           {"op": "sleep", "ms": rng.randint(0, first - 1)},
                           {"op": "coordinator_failover", "down_ms": rng.choice((0, 100, 5000)),
                            "load_ms": rng.choice((0, 10, 300))}])
        elif kind == "broker-restart":
            groups.append([{"op": "crash_broker"}, {"op": "sleep", "ms": rng.choice((100, 1000, 5000))},
                           {"op": "restart_broker", "load_ms": rng.choice((10, 300))}])
        elif kind in ("partition", "clog"):
            nodes = [rng.choice([*actors, BROKER])]
            cut = {"op": kind, "nodes": nodes}
            if kind == "clog":
                cut["ms"] = rng.choice((100, 1500, 6000))
            groups.append([cut, {"op": "sleep", "ms": rng.choice((500, 3000, 12000))}, {"op": "heal"}])
        elif kind == "disconnect":
            groups.append([{"op": "disconnect", "nodes": [rng.choice([*actors, BROKER])]}])
        else:
            groups.append([{"op": "pause", "nodes": [rng.choice(producers)], "ms": rng.choice((500, 3000, 12000))}])
    return groups


def _rule(rng: random.Random, index: int, steps: int, nodes: list[str], transactional_ids: list[str]) -> dict:
    kind = rng.choice(("drop", "delay", "disconnect", "error", "error", "markers", "txn-log"))
    rule: dict[str, Any] = {"name": f"r{index}", "count": rng.randint(1, 3)}
    if rng.random() < 0.7:
        rule["after_step"] = rng.randrange(steps)
    if kind == "markers":  # the coordinator's WriteTxnMarkers, or their answers, lost or late
        rule |= {"action": rng.choice(("drop", "drop", "delay")), "message": "WriteTxnMarkers",
                 "direction": rng.choice(("request", "response", "response")), "node": BROKER}
        if rule["action"] == "delay":
            rule["ms"] = rng.choice((100, 2000, 40_000))
        return rule
    if kind == "txn-log":
        rule |= {"action": "error", "message": "TxnLogAppend",
                 "error": rng.choice(("NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS_AFTER_APPEND"))}
        if transactional_ids and rng.random() < 0.5:
            rule["transactional_id"] = rng.choice(transactional_ids)
        return rule
    rule["action"] = kind
    if kind == "error":
        api = rng.choice(sorted(INFRASTRUCTURE_ERRORS))
        rule["message"] = api
        rule["error"] = rng.choice(sorted(e.name for e in INFRASTRUCTURE_ERRORS[api]))
    else:
        rule["message"] = rng.choice(API_NAMES)
        rule["direction"] = rng.choice(("request", "response"))
    if kind == "delay":
        rule["ms"] = rng.choice((10, 500, 3000))
    if rng.random() < 0.5:
        rule["node"] = rng.choice([*nodes, BROKER])
    return rule


def generate(seed: int) -> dict[str, Any]:
    """The scenario document (the loader's structures, as TOML would give them) of soak run ``seed``."""
    rng = random.Random(seed)
    # The client of each producer comes from its own stream, so adding it left every other draw of a seed as it was.
    clients = random.Random(f"soak-clients-{seed}")
    partitions = rng.randint(1, 3)
    name = f"soak-{seed}"
    actors: dict[str, dict[str, Any]] = {}
    programs: dict[str, list[dict[str, Any]]] = {}
    topics = [{"name": "out", "partitions": partitions}]
    transactional = [f"t{i}" for i in range(1, rng.randint(1, 3) + 1)]
    ctp = rng.random() < 0.35
    for i, actor in enumerate(transactional):
        config: dict[str, Any] = {"transactional.id": f"tx-{actor}", "transaction.timeout.ms": rng.choice(TIMEOUTS)}
        if rng.random() < 0.6:
            config["socket.timeout.ms"] = rng.choice((1000, 5000))
        if clients.randrange(JAVA_ONE_IN) == 0:
            config["eosim.client"] = "java"
        actors[actor] = {"kind": "producer", "config": config}
        consumer = None
        if ctp and i == 0:
            consumer = "app_in"
            actors[consumer] = {"kind": "consumer", "config": {
                "group.id": "app", "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                "enable.auto.commit": False}}
        programs[actor] = _txn_program(rng, actor, partitions, consumer=consumer)
    if ctp:
        topics.append({"name": "in", "partitions": 1})
        actors["source"] = {"kind": "producer", "config": {"enable.idempotence": True}}
        programs["source"] = _idempotent_program(rng, "source", "in", 1)
        programs["app_in"] = [{"op": "assign", "partitions": [{"topic": "in", "partition": 0}]}]
    for actor in [f"i{i}" for i in range(1, rng.randint(0, 1) + 1)]:
        config = {"enable.idempotence": True}
        if clients.randrange(JAVA_ONE_IN) == 0:
            config["eosim.client"] = "java"
        actors[actor] = {"kind": "producer", "config": config}
        programs[actor] = _idempotent_program(rng, actor, "out", partitions)

    # Interleave the programs op by op; a consumer op embedded in a producer's program (the consume of
    # consume-transform-produce) runs as its own actor. Setup programs (assign, source) go first.
    steps: list[dict[str, Any]] = []
    for setup in ("source", "app_in"):
        if setup in programs:
            steps += [{"actor": setup, **op} for op in programs.pop(setup)]
    groups = _nemesis_ops(rng, [a for a in actors], transactional)
    queue = {actor: list(ops) for actor, ops in programs.items()}
    while any(queue.values()):
        if groups and rng.random() < 0.15:
            steps += [{"actor": "nemesis", **op} for op in groups.pop(0)]
        actor = rng.choice(sorted(a for a, ops in queue.items() if ops))
        op = queue[actor].pop(0)
        steps.append({"actor": actor, **op} if "actor" not in op else op)
    for group in groups:
        steps += [{"actor": "nemesis", **op} for op in group]

    document: dict[str, Any] = {
        "scenario": {"name": name, "description": f"soak workload drawn from seed {seed}", "seed": seed,
                     "conformance": False},
        "cluster": {"transaction.version": rng.choice((1, 2))},
        "topics": topics,
        "actors": actors,
        "faults": [_rule(rng, i, len(steps), list(actors), [a["config"]["transactional.id"] for a in actors.values()
                                                            if "transactional.id" in a["config"]])
                   for i in range(rng.choice((0, 0, 1, 2, 3)))],
    }
    if rng.random() < 0.3:
        document["nemesis"] = {"kinds": sorted(rng.sample(("partition", "clog", "pause", "disconnect", "drop",
                                                            "delay", "error"), rng.randint(1, 7))),
                               "targets": sorted(rng.sample(transactional, rng.randint(1, len(transactional)))),
                               "interval_ms": 1000, "duration_ms": 1000,
                               "until_step": rng.randint(1, len(steps))}
    # The final read: read_committed, from the beginning, after the writers had time to finish.
    actors["reader"] = {"kind": "consumer", "config": {"group.id": "reader", "isolation.level": "read_committed",
                                                       "enable.auto.commit": False}}
    steps += [{"actor": "reader", "op": "sleep", "ms": rng.choice((0, 2000, 15000))},
              {"actor": "reader", "op": "assign",
               "partitions": [{"topic": "out", "partition": p, "offset": "beginning"} for p in range(partitions)]},
              {"actor": "reader", "op": "consume", "timeout_ms": 2000}]
    document["steps"] = steps
    return document


# -- TOML (the scenario file of a failing run) ---------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def to_toml(document: dict[str, Any], comment: str = "") -> str:
    lines = [f"# {line}" if line else "#" for line in (HEADER + ("\n" + comment if comment else "")).splitlines()]
    lines.append("")

    def table(title: str, body: dict[str, Any]) -> None:
        lines.append(title)
        lines.extend(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in body.items())
        lines.append("")

    table("[scenario]", document["scenario"])
    table("[cluster]", document["cluster"])
    for topic in document["topics"]:
        table("[[topics]]", topic)
    for name, actor in document["actors"].items():
        table(f"[actors.{name}]", actor)
    for rule in document.get("faults", ()):
        table("[[faults]]", rule)
    if "nemesis" in document:
        table("[nemesis]", document["nemesis"])
    for step in document["steps"]:
        table("[[steps]]", step)
    return "\n".join(lines)


# -- running -------------------------------------------------------------------------------------------

def run_one(seed: int) -> dict[str, Any]:
    """Generate and run soak scenario ``seed``: its verdict, anomaly types, (when not valid) descriptions, and
    (when INVALID) ``findings``: the documented findings that explain it, or None for a false alarm."""
    document = generate(seed)
    started = time.perf_counter()
    try:
        scenario = scenario_from_dict(document, name=document["scenario"]["name"], header=HEADER)
        outcome = run_scenario(scenario, seed)
    except Exception:  # noqa: BLE001 - an internal error is a finding, reported with its scenario
        return {"seed": seed, "verdict": "crash", "types": [], "details": [traceback.format_exc()], "findings": None,
                "wall": time.perf_counter() - started}
    result = outcome.result
    verdict = {True: "valid", False: "INVALID"}.get(result.valid, "unknown")
    details = [f"{a.name}: {a.description}" for a in result.anomalies] if verdict != "valid" else []
    findings = classify(result.anomalies, outcome.trace) if verdict == "INVALID" else None
    return {"seed": seed, "verdict": verdict, "types": result.anomaly_types, "details": details, "findings": findings,
            "wall": time.perf_counter() - started, "sim_ms": outcome.trace[-1].t if outcome.trace else 0}


def false_alarm(result: dict[str, Any]) -> bool:
    """An INVALID run no documented finding explains, or a crash: the simulator's fault, never acceptable."""
    return result["verdict"] == "crash" or (result["verdict"] == "INVALID" and not result["findings"])


def soak(seeds: range, jobs: int = 1) -> list[dict[str, Any]]:
    if jobs <= 1:
        return [run_one(s) for s in seeds]
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(run_one, seeds, chunksize=max(1, len(seeds) // (jobs * 20))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--out", type=Path, default=Path("soak-failures"),
                        help="where the scenario of each INVALID, unknown or crashed run is written")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = soak(range(args.start, args.start + args.runs), args.jobs)
    wall = time.perf_counter() - started
    verdicts = Counter(r["verdict"] for r in results)
    types = Counter((r["verdict"], t) for r in results for t in r["types"])
    print(f"{len(results)} runs (seeds {args.start}..{args.start + args.runs - 1}) in {wall:.1f} s "
          f"({len(results) / wall:.0f} runs/s, {args.jobs} jobs)")
    found = Counter(" + ".join(r["findings"]) for r in results if r["verdict"] == "INVALID" and r["findings"])
    alarms = [r for r in results if false_alarm(r)]
    for verdict in ("valid", "unknown", "INVALID", "crash"):
        print(f"  {verdict:8} {verdicts.get(verdict, 0)}")
        if verdict == "INVALID":
            for name, n in sorted(found.items()):
                print(f"    finding (real librdkafka behaviour: {name}) {n}")
            print(f"    false alarm {sum(r['verdict'] == 'INVALID' for r in alarms)}")
    print(f"  false alarms (INVALID not explained by a finding, or crash): {len(alarms)}")
    for (verdict, name), n in sorted(types.items()):
        print(f"    {verdict:8} {name:28} {n}")
    failing = [r for r in results if r["verdict"] != "valid"]
    if failing:
        args.out.mkdir(parents=True, exist_ok=True)
    for r in failing:
        path = args.out / f"soak-{r['seed']}.toml"
        path.write_text(to_toml(generate(r["seed"]), f"verdict: {r['verdict']} {' '.join(r['types'])}"),
                        encoding="utf-8")
        kind = ("finding: " + " + ".join(r["findings"]) if r["findings"]
                else "FALSE ALARM" if false_alarm(r) else r["verdict"])
        print(f"\n{r['verdict']} seed {r['seed']} ({kind}): eosim run {path}")
        for line in r["details"]:
            print(f"  {line[:600]}")
    return 1 if alarms else 0


if __name__ == "__main__":
    sys.exit(main())
