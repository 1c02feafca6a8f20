"""Without idempotence, what do retries buy and what do they cost?

Claim (the seed article, at-least-once vs at-most-once): a producer that is not idempotent cannot tell
a lost request from a lost acknowledgement. If it does not retry (``retries`` = 0, librdkafka's
``message.send.max.retries``) a lost request loses the record: at-most-once. If it retries, the
record survives, but every retry after a lost acknowledgement writes it again: at-least-once, with
duplicates that grow with the number of retries allowed.

Usage: ``eosim study retries_duplicates [--seeds N]`` (default: 100 seeds per cell).

One plain producer (``enable.idempotence = false``, ``acks = all``) writes 20 single-record batches
(``batch.num.messages = 1``) to one partition, one request in flight at a time
(``max.in.flight.requests.per.connection = 1``: no reordering, the article's in-order at-least-once
baseline), then flushes. A request without a response fails after ``socket.timeout.ms`` = 1 s and,
while retries remain, is sent again. Each Produce request and each Produce response is lost with
probability ``p``, independently (two streams of draws per seed, shared by every ``retries`` value:
common random numbers), made with the per-message ``[[faults]]`` rules of the dedup_window study.

Per run the CSV records, from the final log (ground truth) and the delivery reports:

- ``lost``: records never written (at-most-once's failure);
- ``duplicated`` and ``extra_copies``: records in the log more than once, and the copies beyond the
  first (at-least-once's failure);
- ``reported_failed``: delivery reports with an error, and ``failed_but_written``: those whose record
  is in the log anyway (the producer cannot know: its request arrived, the answer did not);
- the checkers' anomalies.

Deterministic: seeds 1..N, simulated time only; the files hold no wall-clock time.
"""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from typing import Any, Iterable, Sequence

from eosim._runner import Outcome, run_scenario
from eosim._scenario import Scenario, scenario_from_dict
from eosim.experiments.studies.dedup_window import loss_rules

NAME = "retries_duplicates"
DEFAULT_SEEDS = 100
RETRIES = (0, 1, 2, 3, 5, 10)
LOSS_RATES = (0.05, 0.2)

RECORDS = 20
SOCKET_TIMEOUT_MS = 1000
DECISIONS = 30 * RECORDS  # loss draws per direction; later messages are never lost
PRODUCER = "p1"
TOPIC = "out"

RUN_FIELDS = ("retries", "loss_rate", "seed", "requests_lost", "responses_lost", "lost", "duplicated",
              "extra_copies", "reported_failed", "failed_but_written", "anomalies")
SUMMARY_FIELDS = ("retries", "loss_rate", "runs", "records", "lost_runs", "lost_records_mean", "duplicate_runs",
                  "extra_copies_mean", "reported_failed_mean", "failed_but_written_mean", "exact_runs")


def draws(seed: int, direction: str) -> list[float]:
    rng = random.Random(f"{NAME}/{direction}/{seed}")
    return [rng.random() for _ in range(DECISIONS)]


def build_scenario(retries: int, p: float, seed: int) -> Scenario:
    config = {"enable.idempotence": False, "acks": "all", "retries": retries, "batch.num.messages": 1,
              "max.in.flight.requests.per.connection": 1, "socket.timeout.ms": SOCKET_TIMEOUT_MS}
    steps: list[dict[str, Any]] = [
        {"actor": PRODUCER, "op": "produce", "topic": TOPIC, "partition": 0, "key": "k", "value": f"v{i}"}
        for i in range(RECORDS)]
    steps.append({"actor": PRODUCER, "op": "flush"})
    document = {
        "scenario": {"name": "retries-duplicates", "conformance": False,
                     "description": f"retries = {retries}: each Produce request and response lost with probability {p}"},
        "topics": [{"name": TOPIC, "partitions": 1}],
        "actors": {PRODUCER: {"kind": "producer", "config": config}},
        "steps": steps,
        "faults": loss_rules(draws(seed, "request"), p, "request") + loss_rules(draws(seed, "response"), p),
    }
    return scenario_from_dict(document, name="retries-duplicates", header=f"# {NAME} study: retries {retries}, p={p}")


def measure(outcome: Outcome, retries: int, p: float, seed: int) -> dict[str, Any]:
    dropped = [e.msg for e in outcome.trace if e.kind == "fault.drop"]
    copies = {f"v{i}": 0 for i in range(RECORDS)}
    for part in outcome.observation.partitions:
        for _offset, _key, value in part.read_uncommitted:
            copies[value] += 1
    failed = [e.args["value"] for e in outcome.trace if e.kind == "client.op" and e.op == "delivery" and e.error]
    return {
        "retries": retries, "loss_rate": p, "seed": seed,
        "requests_lost": dropped.count("ProduceRequest"), "responses_lost": dropped.count("ProduceResponse"),
        "lost": sum(n == 0 for n in copies.values()),
        "duplicated": sum(n > 1 for n in copies.values()),
        "extra_copies": sum(max(0, n - 1) for n in copies.values()),
        "reported_failed": len(failed),
        "failed_but_written": sum(copies[v] > 0 for v in failed),
        "anomalies": ";".join(outcome.result.anomaly_types),
    }


def cells() -> list[tuple[int, float]]:
    return [(retries, p) for p in LOSS_RATES for retries in RETRIES]


def run_one(cell: tuple[int, float], seed: int) -> dict[str, Any]:
    retries, p = cell
    return measure(run_scenario(build_scenario(retries, p, seed), seed), retries, p, seed)


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[int, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["retries"], row["loss_rate"]), []).append(row)
    return [{
        "retries": retries, "loss_rate": p, "runs": len(runs), "records": RECORDS,
        "lost_runs": sum(r["lost"] > 0 for r in runs),
        "lost_records_mean": round(statistics.fmean(r["lost"] for r in runs), 3),
        "duplicate_runs": sum(r["duplicated"] > 0 for r in runs),
        "extra_copies_mean": round(statistics.fmean(r["extra_copies"] for r in runs), 3),
        "reported_failed_mean": round(statistics.fmean(r["reported_failed"] for r in runs), 3),
        "failed_but_written_mean": round(statistics.fmean(r["failed_but_written"] for r in runs), 3),
        "exact_runs": sum(r["lost"] == 0 and r["duplicated"] == 0 for r in runs),
    } for (retries, p), runs in groups.items()]


def markdown(summary: Sequence[dict[str, Any]], seeds: int) -> str:
    lines = [
        f"A plain producer (idempotence off), {RECORDS} records one at a time, each Produce request and response "
        f"lost with probability p; {seeds} seeds per row. Means are per run of {RECORDS} records.",
        "",
        "| p | retries | runs that lost records | records lost | runs with duplicates | extra copies "
        "| delivery reports failed | ... but written | runs exactly once |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        n = s["runs"]
        lines.append(f"| {s['loss_rate']:g} | {s['retries']} | {s['lost_runs']}/{n} ({s['lost_runs'] / n:.0%}) "
                     f"| {s['lost_records_mean']:.2f} | {s['duplicate_runs']}/{n} ({s['duplicate_runs'] / n:.0%}) "
                     f"| {s['extra_copies_mean']:.2f} | {s['reported_failed_mean']:.2f} "
                     f"| {s['failed_but_written_mean']:.2f} | {s['exact_runs']}/{n} |")
    return "\n".join(lines) + "\n"


def plot(summary: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], path: Path, seeds: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for p, style in zip(sorted({s["loss_rate"] for s in summary}), ("-", "--", ":")):
        cells = sorted((s for s in summary if s["loss_rate"] == p), key=lambda s: s["retries"])
        x = [s["retries"] for s in cells]
        left.plot(x, [s["lost_records_mean"] for s in cells], style, marker="o", color="tab:blue",
                  label=f"records lost, p={p:g}")
        left.plot(x, [s["extra_copies_mean"] for s in cells], style, marker="s", color="tab:red",
                  label=f"extra copies (duplicates), p={p:g}")
        right.plot(x, [s["exact_runs"] / s["runs"] for s in cells], style, marker="^", color="tab:green",
                   label=f"p={p:g}")
    left.set_xlabel("retries (message.send.max.retries)")
    left.set_ylabel(f"records per run of {RECORDS} (mean)")
    left.set_title("Loss falls, duplicates rise with retries", fontsize=11)
    left.legend(fontsize=9)
    left.grid(alpha=0.3)
    right.set_xlabel("retries (message.send.max.retries)")
    right.set_ylabel("fraction of runs with every record exactly once")
    right.set_ylim(-0.03, 1.03)
    right.set_title("Neither setting gives exactly once", fontsize=11)
    right.legend(fontsize=9)
    right.grid(alpha=0.3)
    fig.suptitle("A producer without idempotence: at-most-once or at-least-once\n"
                 f"each Produce request and response lost with probability p; {seeds} seeds per point", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
