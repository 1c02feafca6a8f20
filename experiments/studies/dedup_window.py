"""How often does a lost Produce response turn into a duplicate?

Claim (the idempotent producer): a producer that retries a batch whose acknowledgement was lost
writes it twice unless the broker recognises the retry; the idempotent producer's sequence numbers
let the leader recognise it among the last five batches of each producer, so with at most five
requests in flight no retry is ever written twice.

Usage: ``eosim study dedup_window [--seeds N]`` (default: 200 seeds per cell).

One producer writes 20 single-record batches (``batch.num.messages = 1``) to one partition, in four
bursts of five, each followed by a flush; up to five requests are in flight
(``max.in.flight.requests.per.connection = 5``) and a request without a response times out after
``socket.timeout.ms`` = 1 s and is retried. Each Produce response is lost with probability ``p``,
for three producers:

- ``plain``: ``enable.idempotence = false``, retries on: the retry is new data to the broker;
- ``idempotent``: the leader recognises the retry among the last 5 batches it keeps per producer;
- ``window-1``: idempotent, with the pre-1.0 dedup window of a single batch
  (``"eosim.reintroduce" = ["KAFKA-5494"]``): a retry of any batch but the last is not recognised.

Per run the table records the checkers' verdict, ``duplicate`` (a value written more than once) and
``missed-duplicate`` (the leader refused as out of order a retry of a batch its log holds), and the
ground truth from the final log: whether a record is there twice, and how many extra copies there
are. librdkafka makes an OUT_OF_ORDER_SEQUENCE_NUMBER at the head of the line fatal, so the small
window mostly fails that way, with a dead producer rather than a duplicate. It writes duplicates
only when the refusal of the earlier batch is lost too: the client then sees a later batch refused,
takes it for a follow-on error, bumps its epoch and re-sends every unacknowledged batch as new data.
The checker's ``duplicate`` can exceed the log's: a delivery report of an implicitly acknowledged
message carries no offset (-1001), which the history checker takes for a second offset of the value.
The last column lists the checkers' other findings; a lost response lets later acks overtake the
retried batch's, which the history checker reports as ``nonmonotonic-send`` (and the allowed
``G0-process``) even when the log order is right.

How the losses are made. The fault vocabulary has no loss probability: a ``[[faults]]`` rule strikes
the next ``count`` messages its selector matches, rules are tried in file order and an exhausted
rule drops out. So each run draws, from its seed alone, a loss decision for each of the first 400
Produce responses (lost when ``u < p``, for uniform ``u``) and writes the sequence as alternating
rules on ``message = "Produce"``, ``direction = "response"``, ``node = "p1"``: a ``drop`` rule with
``count = 1`` for a lost response, and between two losses a ``delay`` rule of 1 ms whose ``count``
is the number of responses kept; a last 1 ms ``delay`` rule keeps everything after. Every Produce
response that is not lost thus arrives 1 ms late (2 ms instead of 1), the same in every run. This
gives independent losses per response, retries' responses included, which is what "the probability
that a response is lost" means. The random nemesis (``kinds = ["drop"]``) cannot: it strikes a
target's next one to three messages of any API and either direction at random times, so its rate
is per unit of time, not per response, and most of what it drops would be requests (harmless).
The same ``u`` sequence serves every ``p`` and variant of a seed (common random numbers), so the
losses at a higher ``p`` include those at a lower one and the variants face the same losses.

Why bursts of five with a flush between them. The simulated network can lose one response while
later responses on the same connection arrive, which TCP cannot do (a response is lost with its
connection, and the requests behind it fail too). An idempotent producer streaming without pause
then has more than five batches appended after the lost one by the time it retries, and even the
5-batch window refuses the retry (``missed-duplicate``). With at most five unacknowledged batches
per burst, the situation Kafka's 5 = 5 rule is designed for, the window must hold.

Deterministic: seeds 1..N, simulated time only; the files hold no wall-clock time.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any, Iterable, Sequence

from eosim._runner import Outcome, run_scenario
from eosim._scenario import Scenario, scenario_from_dict

NAME = "dedup_window"
DEFAULT_SEEDS = 200
LOSS_RATES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)

RECORDS = 20
BURST = 5  # records per flush, = max.in.flight.requests.per.connection
SOCKET_TIMEOUT_MS = 1000
DECISIONS = 20 * RECORDS  # loss decisions drawn per run; later responses are never lost
PRODUCER = "p1"
TOPIC = "out"

VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {
        "label": "(a) plain producer (idempotence off, retries on)",
        "config": {"enable.idempotence": False, "retries": 2147483647},
        "cluster": {},
    },
    "idempotent": {
        "label": "(b) idempotent producer (5-batch window)",
        "config": {"enable.idempotence": True},
        "cluster": {},
    },
    "window-1": {
        "label": "(c) idempotent, pre-1.0 window of 1 batch (KAFKA-5494)",
        "config": {"enable.idempotence": True},
        "cluster": {"eosim.reintroduce": ["KAFKA-5494"]},
    },
}

RUN_FIELDS = ("variant", "loss_rate", "seed", "produce_responses", "responses_lost", "duplicate",
              "duplicate_values", "log_duplicate", "extra_copies", "missed_duplicate", "failed_steps",
              "first_error", "anomalies")
SUMMARY_FIELDS = ("variant", "loss_rate", "runs", "observed_loss", "duplicate_runs", "duplicate_fraction",
                  "log_duplicate_runs", "extra_copies_mean", "missed_duplicate_runs", "missed_duplicate_fraction",
                  "other_anomalies")
STUDIED = ("duplicate", "missed-duplicate")


# -- the scenario --------------------------------------------------------------------------------


def loss_draws(seed: int) -> list[float]:
    """The seed's uniform draws, one per Produce response (shared by every loss rate and variant)."""
    rng = random.Random(f"{NAME}/{seed}")
    return [rng.random() for _ in range(DECISIONS)]


def loss_rules(draws: Sequence[float], p: float, direction: str = "response") -> list[dict[str, Any]]:
    """``[[faults]]`` rules that lose the i-th Produce response (or request) of p1 iff ``draws[i] < p``."""
    select = {"message": "Produce", "direction": direction, "node": PRODUCER}
    prefix = "" if direction == "response" else f"{direction}-"
    rules: list[dict[str, Any]] = []
    kept = 0
    for u in draws:
        if u < p:
            if kept:
                rules.append({"name": f"{prefix}keep-{len(rules)}", "action": "delay", "ms": 1, "count": kept,
                              **select})
            rules.append({"name": f"{prefix}lose-{len(rules)}", "action": "drop", "count": 1, **select})
            kept = 0
        else:
            kept += 1
    rules.append({"name": f"{prefix}keep-rest", "action": "delay", "ms": 1, "count": 10**6, **select})
    return rules


def build_scenario(variant: str, p: float, seed: int) -> Scenario:
    spec = VARIANTS[variant]
    config = {"socket.timeout.ms": SOCKET_TIMEOUT_MS, "batch.num.messages": 1,
              "max.in.flight.requests.per.connection": BURST, **spec["config"]}
    steps: list[dict[str, Any]] = []
    for i in range(RECORDS):
        steps.append({"actor": PRODUCER, "op": "produce", "topic": TOPIC, "partition": 0, "key": "k",
                      "value": f"v{i}"})
        if (i + 1) % BURST == 0 or i == RECORDS - 1:
            steps.append({"actor": PRODUCER, "op": "flush"})
    document = {
        "scenario": {"name": "dedup-window", "conformance": False,
                     "description": f"{variant}: each Produce response lost with probability {p}"},
        "cluster": dict(spec["cluster"]),
        "topics": [{"name": TOPIC, "partitions": 1}],
        "actors": {PRODUCER: {"kind": "producer", "config": config}},
        "steps": steps,
        "faults": loss_rules(loss_draws(seed), p),
    }
    return scenario_from_dict(document, name="dedup-window", header=f"# {NAME} study: {variant}, p={p}")


# -- one run -----------------------------------------------------------------------------------------


def measure(outcome: Outcome, variant: str, p: float, seed: int) -> dict[str, Any]:
    """One CSV row: what the run's trace, steps and checkers say."""
    responses = sum(1 for e in outcome.trace
                    if e.kind == "net.response" and e.msg == "ProduceResponse")
    lost = sum(1 for e in outcome.trace if e.kind == "fault.drop" and e.msg == "ProduceResponse")
    duplicates = [a for a in outcome.result.anomalies if a.name == "duplicate"]
    # the ground truth: how many times each value is in the log (no transactions: every record counts)
    copies: dict[str, int] = {}
    for part in outcome.observation.partitions:
        for _offset, _key, value in part.read_uncommitted:
            copies[value] = copies.get(value, 0) + 1
    extra = sum(n - 1 for n in copies.values())
    failed = [s for s in outcome.observation.steps if s.outcome != "ok"]
    names = outcome.result.anomaly_types
    return {
        "variant": variant, "loss_rate": p, "seed": seed,
        "produce_responses": responses, "responses_lost": lost,
        "duplicate": int(bool(duplicates)),
        "duplicate_values": len(duplicates),
        "log_duplicate": int(extra > 0),
        "extra_copies": extra,
        "missed_duplicate": int("missed-duplicate" in names),
        "failed_steps": len(failed),
        "first_error": failed[0].outcome if failed else "",
        "anomalies": ";".join(names),
    }


def cells() -> list[tuple[str, float]]:
    return [(variant, p) for variant in VARIANTS for p in LOSS_RATES]


def run_one(cell: tuple[str, float], seed: int) -> dict[str, Any]:
    variant, p = cell
    return measure(run_scenario(build_scenario(variant, p, seed), seed), variant, p, seed)


# -- the study ----------------------------------------------------------------------------------------


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["variant"], row["loss_rate"]), []).append(row)
    summary = []
    for (variant, p), runs in groups.items():
        n = len(runs)
        responses = sum(r["produce_responses"] for r in runs)
        dup = sum(r["duplicate"] for r in runs)
        missed = sum(r["missed_duplicate"] for r in runs)
        summary.append({
            "variant": variant, "loss_rate": p, "runs": n,
            "observed_loss": round(sum(r["responses_lost"] for r in runs) / responses, 4) if responses else 0.0,
            "duplicate_runs": dup, "duplicate_fraction": round(dup / n, 4),
            "log_duplicate_runs": sum(r["log_duplicate"] for r in runs),
            "extra_copies_mean": round(sum(r["extra_copies"] for r in runs) / n, 3),
            "missed_duplicate_runs": missed, "missed_duplicate_fraction": round(missed / n, 4),
            "other_anomalies": _other_anomalies(runs),
        })
    return summary


def _other_anomalies(runs: Sequence[dict[str, Any]]) -> str:
    """The checkers' other findings, as "name: runs" (e.g. the ordering anomalies of a retry)."""
    counts: dict[str, int] = {}
    for run in runs:
        for name in filter(None, run["anomalies"].split(";")):
            if name not in STUDIED:
                counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{name}: {counts[name]}" for name in sorted(counts))


def markdown(summary: Sequence[dict[str, Any]], seeds: int) -> str:
    lines = [
        f"Lost Produce responses vs duplicates: {RECORDS} records in bursts of {BURST}, "
        f"max.in.flight {BURST}, socket.timeout.ms {SOCKET_TIMEOUT_MS}; {seeds} seeds per cell.",
        "",
        "| producer | P(response lost) | observed loss | runs with `duplicate` | runs with a record twice in "
        "the log | extra copies per run | runs with `missed-duplicate` | other anomalies (runs) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in summary:
        lines.append(f"| {s['variant']} | {s['loss_rate']:g} | {s['observed_loss']:.3f} "
                     f"| {s['duplicate_runs']}/{s['runs']} ({s['duplicate_fraction']:.0%}) "
                     f"| {s['log_duplicate_runs']}/{s['runs']} "
                     f"| {s['extra_copies_mean']:.2f} "
                     f"| {s['missed_duplicate_runs']}/{s['runs']} ({s['missed_duplicate_fraction']:.0%}) "
                     f"| {s['other_anomalies'] or '-'} |")
    return "\n".join(lines) + "\n"


# -- the plot (needs matplotlib: pip install -e '.[studies]') ----------------------------------------


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a fraction k/n."""
    if n == 0:
        return 0.0, 0.0
    f = k / n
    centre = (f + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(f * (1 - f) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def plot(summary: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], path: Path, seeds: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"plain": "tab:red", "idempotent": "tab:green", "window-1": "tab:orange"}
    markers = {"plain": "o", "idempotent": "s", "window-1": "^"}
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.8))
    panels = (
        ("duplicate_runs", "fraction of runs with a duplicate anomaly", "Runs that wrote a duplicate"),
        ("extra_copies_mean", "extra copies in the log per run (records, mean)", "Duplicate records written"),
        ("missed_duplicate_runs", "fraction of runs with missed-duplicate",
         "Retry refused by the dedup window\n(missed-duplicate; librdkafka: fatal error)"),
    )
    rates = sorted({s["loss_rate"] for s in summary})
    for ax, (key, ylabel, title) in zip(axes, panels):
        for variant in VARIANTS:
            cells = sorted((s for s in summary if s["variant"] == variant), key=lambda s: s["loss_rate"])
            if not cells:
                continue
            x = [s["loss_rate"] for s in cells]
            if key == "extra_copies_mean":
                y = [s[key] for s in cells]
            else:
                y = [s[key] / s["runs"] for s in cells]
                band = [wilson(s[key], s["runs"]) for s in cells]
                ax.fill_between(x, [b[0] for b in band], [b[1] for b in band], color=colors[variant], alpha=0.15,
                                linewidth=0)
            ax.plot(x, y, marker=markers[variant], color=colors[variant], label=VARIANTS[variant]["label"])
            if key == "duplicate_runs":  # the ground truth, where the checker's verdict differs from it
                in_log = [s["log_duplicate_runs"] / s["runs"] for s in cells]
                if in_log != y:
                    ax.plot(x, in_log, linestyle="--", color=colors[variant], alpha=0.8,
                            label=f"{VARIANTS[variant]['label'][:3]} log-verified: a record twice in the final log")
            if key != "extra_copies_mean" and variant != "plain":
                for xi, yi in zip(x, y):  # small fractions are hard to see: print them
                    if 0 < yi < 0.15:
                        ax.annotate(f"{yi:.1%}", (xi, yi), textcoords="offset points", xytext=(-4, 7),
                                    ha="right", fontsize=8, color=colors[variant])
        # the small rates matter most: linear up to 0.01, logarithmic above
        ax.set_xscale("symlog", linthresh=0.01, linscale=0.5)
        ax.set_xticks(rates)
        ax.set_xticklabels([f"{r:g}" for r in rates], fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel("P(a Produce response is lost)  (symlog scale)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=11)
        ax.grid(alpha=0.3)
        if key != "extra_copies_mean":
            ax.set_ylim(-0.03, 1.03)
        else:  # the small window's few copies next to the plain producer's many
            ax.set_yscale("symlog", linthresh=0.1, linscale=0.5)
            ax.set_ylim(bottom=0)
            ax.set_ylabel(ylabel + "  (symlog)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False)
    fig.suptitle("How often does a lost Produce response become a duplicate?\n"
                 f"{RECORDS} single-record batches in bursts of {BURST}, {BURST} in flight, socket.timeout.ms "
                 f"{SOCKET_TIMEOUT_MS}; {seeds} seeds per point; shaded: 95% Wilson intervals", fontsize=12)
    fig.tight_layout(rect=(0, 0.1, 1, 0.93))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
