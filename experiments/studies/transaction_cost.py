"""What does a transaction cost, and how does its size change that?

Claim (the seed article, the cost of transactions): the overhead of a transaction does not depend on
how many records it holds: each one costs a fixed number of coordinator round trips
(AddPartitionsToTxn, EndTxn) and one marker per partition it wrote, so larger transactions amortise
it and approach the throughput of a producer without transactions. The price of size is latency:
a read_committed consumer sees a record only once its transaction commits (the last stable offset,
LSO, passes it), so records wait longer the larger the transaction.

Usage: ``eosim study transaction_cost [--seeds N]`` (default: 30 seeds per size).

One producer writes 100 records to one partition. The records arrive as a Poisson stream, one every
2 ms on average: before each record the producer sleeps an exponentially distributed gap (whole ms,
drawn from the seed alone, the same for every size: common random numbers). The transactional
producer groups them into transactions of ``size`` records (``begin_transaction``, the records,
``commit_transaction``; 100 / size transactions); size 0 is the baseline, an idempotent producer
without transactions that flushes at the end. Each producer has been running for a second before the
first record (librdkafka's idempotent producer asks for its producer id on a 500 ms timer; the
transactional one in ``init_transactions``). librdkafka's defaults otherwise (``linger.ms`` 5 ms,
so records that arrive close together share a batch).

Per run the CSV records, from the trace:

- ``elapsed_ms`` from the first produce call to the end of the last commit (or flush), and
  ``records_per_s``: 100 records over it, in simulated time;
- ``markers``: transaction markers written (one per transaction on the one partition), and
  ``log_offsets``: offsets the partition used (records + markers: markers take offsets too);
- ``coordinator_requests``: the producer's InitProducerId, AddPartitionsToTxn and EndTxn requests
  (not the broker's own KIP-890 verification), and ``produce_requests``;
- ``lso_lag_ms`` (mean and max over the records): from a record's append to the moment the LSO passes
  it, when read_committed consumers can see it; ``visible_after_ms``: the same from the produce call.

Deterministic: seeds 1..N, simulated time only; the files hold no wall-clock time.
"""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from typing import Any, Iterable, Sequence

from eosim._runner import Outcome, run_scenario
from eosim._scenario import Scenario, scenario_from_dict

NAME = "transaction_cost"
DEFAULT_SEEDS = 30
SIZES = (0, 1, 2, 5, 10, 20, 50, 100)  # records per transaction; 0: no transactions
RECORDS = 100
MEAN_GAP_MS = 2
WARM_UP_MS = 1000
PRODUCER = "p1"
TOPIC = "out"
TP = f"{TOPIC}-0"
COORDINATOR_REQUESTS = ("InitProducerIdRequest", "AddPartitionsToTxnRequest", "EndTxnRequest")

RUN_FIELDS = ("size", "seed", "transactions", "elapsed_ms", "records_per_s", "markers", "log_offsets",
              "coordinator_requests", "produce_requests", "lso_lag_mean_ms", "lso_lag_max_ms",
              "visible_after_mean_ms", "anomalies")
SUMMARY_FIELDS = ("size", "runs", "transactions", "records_per_s_mean", "throughput_vs_baseline", "markers_per_record",
                  "offsets_per_record", "coordinator_requests_per_record", "records_per_produce_request",
                  "lso_lag_mean_ms", "lso_lag_max_ms", "visible_after_mean_ms")


def gaps(seed: int) -> list[int]:
    """The ms the producer waits before each record: exponential, mean MEAN_GAP_MS, whole ms."""
    rng = random.Random(f"{NAME}/{seed}")
    return [round(rng.expovariate(1 / MEAN_GAP_MS)) for _ in range(RECORDS)]


def build_scenario(size: int, seed: int) -> Scenario:
    config: dict[str, Any] = {"enable.idempotence": True}
    if size:
        config["transactional.id"] = "cost"
    steps: list[dict[str, Any]] = [{"actor": PRODUCER, "op": "init_transactions"}] if size else []
    # a running producer: the idempotent one gets its producer id on librdkafka's 500 ms timer
    steps.append({"actor": PRODUCER, "op": "sleep", "ms": WARM_UP_MS})
    for i, gap in enumerate(gaps(seed)):
        if size and i % size == 0:
            steps.append({"actor": PRODUCER, "op": "begin_transaction"})
        if gap:
            steps.append({"actor": PRODUCER, "op": "sleep", "ms": gap})
        steps.append({"actor": PRODUCER, "op": "produce", "topic": TOPIC, "partition": 0, "key": "k",
                      "value": f"v{i}"})
        if size and (i + 1) % size == 0:
            steps.append({"actor": PRODUCER, "op": "commit_transaction"})
    if not size:
        steps.append({"actor": PRODUCER, "op": "flush"})
    document = {
        "scenario": {"name": "transaction-cost", "conformance": False,
                     "description": f"{RECORDS} records in transactions of {size}" if size else
                     f"{RECORDS} records, idempotent, no transactions"},
        "topics": [{"name": TOPIC, "partitions": 1}],
        "actors": {PRODUCER: {"kind": "producer", "config": config}},
        "steps": steps,
    }
    return scenario_from_dict(document, name="transaction-cost", header=f"# {NAME} study: size {size}")


def measure(outcome: Outcome, size: int, seed: int) -> dict[str, Any]:
    trace = list(outcome.trace)
    ops = [e for e in trace if e.kind == "client.op" and e.node.startswith(PRODUCER)]
    start = next(e.t for e in ops if e.op == "produce")
    end = [e.t for e in ops if e.op in ("commit_transaction", "flush")][-1]
    produced = {e.args["value"]: e.t for e in ops if e.op == "produce"}
    requests = [e.msg for e in trace if e.kind == "net.request" and e.node.startswith(PRODUCER)]
    # when each record was appended, and when the LSO first passed its offset
    appended: dict[int, tuple[int, str]] = {}
    lags, visible_after = [], []
    for e in trace:
        if e.kind == "log.append" and str(e.tp) == TP:
            appended.update({offset: (e.t, value) for offset, _key, value in e.records})
        elif e.kind == "log.offsets" and str(e.tp) == TP:
            for offset in [o for o in appended if o < e.last_stable_offset]:
                t, value = appended.pop(offset)
                lags.append(e.t - t)
                visible_after.append(e.t - produced[value])
    log = next(p for p in outcome.observation.partitions if p.topic == TOPIC)
    elapsed = end - start
    return {
        "size": size, "seed": seed, "transactions": RECORDS // size if size else 0,
        "elapsed_ms": elapsed, "records_per_s": round(RECORDS * 1000 / elapsed, 1),
        "markers": sum(1 for e in trace if e.kind == "log.marker"),
        "log_offsets": log.high_watermark,
        "coordinator_requests": sum(requests.count(m) for m in COORDINATOR_REQUESTS),
        "produce_requests": requests.count("ProduceRequest"),
        "lso_lag_mean_ms": round(statistics.fmean(lags), 2), "lso_lag_max_ms": max(lags),
        "visible_after_mean_ms": round(statistics.fmean(visible_after), 2),
        "anomalies": ";".join(outcome.result.anomaly_types),
    }


def cells() -> list[int]:
    return list(SIZES)


def run_one(size: int, seed: int) -> dict[str, Any]:
    return measure(run_scenario(build_scenario(size, seed), seed), size, seed)


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["size"], []).append(row)
    baseline = statistics.fmean(r["records_per_s"] for r in groups[0]) if 0 in groups else None
    summary = []
    for size, runs in groups.items():
        def mean(key: str) -> float:
            return statistics.fmean(r[key] for r in runs)
        summary.append({
            "size": size, "runs": len(runs), "transactions": runs[0]["transactions"],
            "records_per_s_mean": round(mean("records_per_s"), 1),
            "throughput_vs_baseline": round(mean("records_per_s") / baseline, 3) if baseline else "",
            "markers_per_record": round(mean("markers") / RECORDS, 3),
            "offsets_per_record": round(mean("log_offsets") / RECORDS, 3),
            "coordinator_requests_per_record": round(mean("coordinator_requests") / RECORDS, 3),
            "records_per_produce_request": round(RECORDS / mean("produce_requests"), 2),
            "lso_lag_mean_ms": round(mean("lso_lag_mean_ms"), 1),
            "lso_lag_max_ms": max(r["lso_lag_max_ms"] for r in runs),
            "visible_after_mean_ms": round(mean("visible_after_mean_ms"), 1),
        })
    return summary


def markdown(summary: Sequence[dict[str, Any]], seeds: int) -> str:
    lines = [
        f"{RECORDS} records to one partition, arriving every {MEAN_GAP_MS} ms on average (Poisson), in "
        f"transactions of `size` records (0: idempotent, no transactions); {seeds} seeds per row, means over "
        "runs; times in simulated ms.",
        "",
        "| records per transaction | transactions | records/s (simulated) | vs no transactions | markers per record "
        "| log offsets per record | coordinator requests per record | records per Produce request "
        "| LSO lag, mean (max) ms | produce → visible to read_committed, mean ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        label = "none (idempotent)" if s["size"] == 0 else str(s["size"])
        ratio = f"{s['throughput_vs_baseline']:.0%}" if s["throughput_vs_baseline"] != "" else "-"
        lines.append(f"| {label} | {s['transactions']} | {s['records_per_s_mean']:.0f} | {ratio} "
                     f"| {s['markers_per_record']:.2f} | {s['offsets_per_record']:.2f} "
                     f"| {s['coordinator_requests_per_record']:.2f} | {s['records_per_produce_request']:.2f} "
                     f"| {s['lso_lag_mean_ms']:.1f} ({s['lso_lag_max_ms']}) | {s['visible_after_mean_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def plot(summary: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], path: Path, seeds: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = sorted((s for s in summary if s["size"]), key=lambda s: s["size"])
    base = next((s for s in summary if s["size"] == 0), None)
    x = [s["size"] for s in cells]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    left.plot(x, [s["records_per_s_mean"] for s in cells], marker="o", color="tab:blue", label="transactional")
    if base:
        left.axhline(base["records_per_s_mean"], color="tab:gray", linestyle="--", label="idempotent, no transactions")
    left.set_xscale("log")
    left.set_xlabel("records per transaction (log scale)")
    left.set_ylabel("records/s (simulated time)")
    left.set_title("Throughput: the per-transaction cost is amortised", fontsize=11)
    twin = left.twinx()
    twin.plot(x, [s["markers_per_record"] + s["coordinator_requests_per_record"] for s in cells], marker="s",
              color="tab:orange", label="markers + coordinator requests per record")
    twin.set_ylabel("overhead per record")
    handles = left.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    left.legend(handles, [h.get_label() for h in handles], fontsize=9, loc="center right")
    left.grid(alpha=0.3)
    right.plot(x, [s["lso_lag_mean_ms"] for s in cells], marker="o", color="tab:red", label="append → LSO passes (mean)")
    right.plot(x, [s["visible_after_mean_ms"] for s in cells], marker="^", color="tab:purple",
               label="produce call → visible to read_committed (mean)")
    right.set_xscale("log")
    right.set_xlabel("records per transaction (log scale)")
    right.set_ylabel("ms (simulated)")
    right.set_title("Latency: read_committed waits for the commit", fontsize=11)
    right.legend(fontsize=9)
    right.grid(alpha=0.3)
    fig.suptitle(f"The cost of transactions vs their size: {RECORDS} records, one every {MEAN_GAP_MS} ms on average; "
                 f"{seeds} seeds per point", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
