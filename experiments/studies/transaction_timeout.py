"""When does a paused transactional producer get fenced?

Claim (transactions fence zombies): a producer that stalls past ``transaction.timeout.ms`` has its
transaction aborted by the coordinator, which bumps the epoch, so the stalled producer's commit fails
and none of its data ever becomes visible to read_committed consumers.

Usage: ``eosim study transaction_timeout [--seeds N]`` (default: 200 seeds per pause length).

A transactional producer (``transaction.timeout.ms`` = 1000) begins a transaction, writes v1, flushes,
and is paused (a stop-the-world pause: the nemesis op ``pause``, SIGSTOP/SIGCONT on Kafka) for a
multiple of its timeout; when it wakes it writes v2 and commits. The coordinator looks for Ongoing
transactions older than their timeout every
``transaction.abort.timed.out.transaction.cleanup.interval.ms`` (500 ms on the test cluster) and
aborts them itself, bumping the epoch: the producer is fenced. So the abort comes between the
timeout and the timeout plus one sweep interval after the transaction started, depending on where
the transaction starts between two sweeps. Each seed draws that phase: the producer sleeps 0..499 ms
(uniform, from the seed alone) after ``init_transactions``, the same for every pause length (common
random numbers).

Per run the CSV records:

- ``outcome``: ``committed`` (commit_transaction succeeded), ``fenced`` (it failed with ``_FENCED``)
  or ``other`` (any other error, named in ``commit_error``);
- ``visible``: whether any of the producer's records is visible to read_committed at the end (it must
  be exactly when the commit succeeded; ``zombie_visible`` counts the violations: data of a fenced or
  aborted transaction that a read_committed reader sees);
- from the trace (the coordinator's ``txn.state`` events of this transactional.id): the time from the
  transaction's start (Empty -> Ongoing) to the coordinator's own abort (-> PrepareAbort), and that
  minus the timeout: how long after the timeout the abort came (empty when it did not abort);
- ``wake_after_start_ms``: when the pause ended, from the transaction's start;
- the checkers' anomalies (none expected).

Deterministic: seeds 1..N, simulated time only; the files hold no wall-clock time.
"""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from typing import Any, Iterable, Sequence

from eosim._topology import TEST_CLUSTER_PROFILE
from eosim._runner import Outcome, run_scenario
from eosim._scenario import Scenario, scenario_from_dict

NAME = "transaction_timeout"
DEFAULT_SEEDS = 200
RATIOS = (0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.75, 2.0, 3.0, 4.0)

TIMEOUT_MS = 1000
SWEEP_MS = int(TEST_CLUSTER_PROFILE["transaction.abort.timed.out.transaction.cleanup.interval.ms"])
PRODUCER = "p1"
TRANSACTIONAL_ID = "paused"
TOPIC = "out"
OUTCOMES = ("committed", "fenced", "other")

RUN_FIELDS = ("ratio", "pause_ms", "seed", "phase_ms", "outcome", "commit_error", "visible", "zombie_visible",
              "coordinator_abort", "abort_after_start_ms", "timeout_to_abort_ms", "wake_after_start_ms",
              "anomalies")
SUMMARY_FIELDS = ("ratio", "pause_ms", "runs", "committed", "fenced", "other", "zombie_visible",
                  "coordinator_aborts", "timeout_to_abort_min_ms", "timeout_to_abort_mean_ms",
                  "timeout_to_abort_max_ms")


# -- the scenario --------------------------------------------------------------------------------


def phase(seed: int) -> int:
    """Where the transaction starts between two coordinator sweeps (ms slept before it)."""
    return random.Random(f"{NAME}/{seed}").randrange(SWEEP_MS)


def pause_ms(ratio: float) -> int:
    return max(1, round(ratio * TIMEOUT_MS))


def build_scenario(ratio: float, seed: int) -> Scenario:
    steps: list[dict[str, Any]] = [{"actor": PRODUCER, "op": "init_transactions"}]
    if phase(seed):
        steps.append({"actor": PRODUCER, "op": "sleep", "ms": phase(seed)})
    steps += [
        {"actor": PRODUCER, "op": "begin_transaction"},
        {"actor": PRODUCER, "op": "produce", "topic": TOPIC, "partition": 0, "key": PRODUCER, "value": "v1"},
        {"actor": PRODUCER, "op": "flush"},
        {"actor": "nemesis", "op": "pause", "nodes": [PRODUCER], "ms": pause_ms(ratio)},
        {"actor": PRODUCER, "op": "produce", "topic": TOPIC, "partition": 0, "key": PRODUCER, "value": "v2"},
        {"actor": PRODUCER, "op": "commit_transaction"},
    ]
    document = {
        "scenario": {"name": "transaction-timeout", "conformance": False,
                     "description": f"a transactional producer paused for {ratio} x transaction.timeout.ms"},
        "topics": [{"name": TOPIC, "partitions": 1}],
        "actors": {PRODUCER: {"kind": "producer", "config": {"transactional.id": TRANSACTIONAL_ID,
                                                             "transaction.timeout.ms": TIMEOUT_MS}}},
        "steps": steps,
    }
    return scenario_from_dict(document, name="transaction-timeout", header=f"# {NAME} study: ratio {ratio}")


# -- one run -----------------------------------------------------------------------------------------


def _first(trace: Iterable[Any], kind: str, **match: Any) -> Any:
    return next((e for e in trace if e.kind == kind and all(getattr(e, k) == v for k, v in match.items())), None)


def measure(outcome: Outcome, ratio: float, seed: int) -> dict[str, Any]:
    trace = outcome.trace
    commit = next(s for s in outcome.observation.steps if s.actor == PRODUCER and s.op == "commit_transaction")
    kind = "committed" if commit.outcome == "ok" else "fenced" if commit.outcome == "_FENCED" else "other"
    mine = {f"v{i}" for i in (1, 2)}
    visible = any(value in mine for p in outcome.observation.partitions if p.topic == TOPIC
                  for _offset, key, value in p.read_committed if key == PRODUCER)
    started = _first(trace, "txn.state", transactional_id=TRANSACTIONAL_ID, new="Ongoing")
    aborted = _first(trace, "txn.state", transactional_id=TRANSACTIONAL_ID, new="PrepareAbort")
    woke = _first(trace, "fault.resume", nodes=[PRODUCER])
    after_start = aborted.t - started.t if aborted and started else None
    return {
        "ratio": ratio, "pause_ms": pause_ms(ratio), "seed": seed, "phase_ms": phase(seed),
        "outcome": kind, "commit_error": "" if commit.outcome == "ok" else commit.outcome,
        "visible": int(visible), "zombie_visible": int(visible and kind != "committed"),
        "coordinator_abort": int(aborted is not None),
        "abort_after_start_ms": "" if after_start is None else after_start,
        "timeout_to_abort_ms": "" if after_start is None else after_start - TIMEOUT_MS,
        "wake_after_start_ms": woke.t - started.t if woke and started else "",
        "anomalies": ";".join(outcome.result.anomaly_types),
    }


def cells() -> list[float]:
    return list(RATIOS)


def run_one(ratio: float, seed: int) -> dict[str, Any]:
    return measure(run_scenario(build_scenario(ratio, seed), seed), ratio, seed)


# -- the study ----------------------------------------------------------------------------------------


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[float, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["ratio"], []).append(row)
    summary = []
    for ratio, runs in groups.items():
        delays = [r["timeout_to_abort_ms"] for r in runs if r["coordinator_abort"]]
        summary.append({
            "ratio": ratio, "pause_ms": pause_ms(ratio), "runs": len(runs),
            **{kind: sum(r["outcome"] == kind for r in runs) for kind in OUTCOMES},
            "zombie_visible": sum(r["zombie_visible"] for r in runs),
            "coordinator_aborts": len(delays),
            "timeout_to_abort_min_ms": min(delays) if delays else "",
            "timeout_to_abort_mean_ms": round(statistics.fmean(delays), 1) if delays else "",
            "timeout_to_abort_max_ms": max(delays) if delays else "",
        })
    return summary


def markdown(summary: Sequence[dict[str, Any]], seeds: int) -> str:
    lines = [
        f"A transactional producer paused after writing, transaction.timeout.ms {TIMEOUT_MS}, coordinator sweep "
        f"every {SWEEP_MS} ms; {seeds} seeds (sweep phases) per row.",
        "",
        "| pause / timeout | pause (ms) | committed | fenced (`_FENCED`) | other | visible after fence "
        "| timeout → abort, ms (min / mean / max) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        n = s["runs"]
        delay = (f"{s['timeout_to_abort_min_ms']} / {s['timeout_to_abort_mean_ms']} / {s['timeout_to_abort_max_ms']}"
                 if s["coordinator_aborts"] else "no abort")
        lines.append(f"| {s['ratio']:g} | {s['pause_ms']} | {s['committed'] / n:.0%} | {s['fenced'] / n:.0%} "
                     f"| {s['other'] / n:.0%} | {s['zombie_visible']}/{n} | {delay} |")
    return "\n".join(lines) + "\n"


# -- the plot (needs matplotlib: pip install -e '.[studies]') ----------------------------------------


def plot(summary: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], path: Path, seeds: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = (1.0, 1.0 + SWEEP_MS / TIMEOUT_MS)
    fig, (ax, hist) = plt.subplots(1, 2, figsize=(14, 5.2), gridspec_kw={"width_ratios": [3, 2]})
    cells = sorted(summary, key=lambda s: s["ratio"])
    x = [s["ratio"] for s in cells]
    ax.axvspan(*window, color="tab:blue", alpha=0.10,
               label=f"[timeout, timeout + sweep interval] = [{TIMEOUT_MS}, {TIMEOUT_MS + SWEEP_MS}] ms")
    styles = {"committed": ("tab:green", "o", "commit succeeded"),
              "fenced": ("tab:red", "s", "commit failed _FENCED"),
              "other": ("tab:gray", "^", "commit failed otherwise")}
    for kind, (color, marker, label) in styles.items():
        ax.plot(x, [s[kind] / s["runs"] for s in cells], marker=marker, color=color, label=label)
    zombies = [s["zombie_visible"] / s["runs"] for s in cells]
    ax.plot(x, zombies, linestyle=":", color="black",
            label=f"fenced data visible to read_committed (total {sum(s['zombie_visible'] for s in cells)})")
    ax.set_xlabel(f"pause length / transaction.timeout.ms  (timeout = {TIMEOUT_MS} ms)")
    ax.set_ylabel("fraction of runs")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(0, max(x) + 0.1)
    ax.set_title("Commit outcome after the pause", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize=9)

    # one abort per seed: the longest pause, where every transaction is aborted while the producer sleeps
    longest = max(r["ratio"] for r in rows)
    delays = [r["timeout_to_abort_ms"] for r in rows if r["ratio"] == longest and r["coordinator_abort"]]
    hist.hist(delays, bins=list(range(0, SWEEP_MS + 1, 25)), color="tab:red", alpha=0.7, edgecolor="white")
    hist.axvline(SWEEP_MS, color="tab:blue", linestyle="--", label=f"sweep interval ({SWEEP_MS} ms)")
    hist.set_xlabel("time from timeout to the coordinator's abort (ms)\n(PrepareAbort - txn start - timeout)")
    hist.set_ylabel("runs (one per seed)")
    hist.set_title(f"When the coordinator aborts (pause {longest:g}x timeout, {len(delays)} runs)", fontsize=11)
    hist.grid(alpha=0.3)
    hist.legend(fontsize=9)

    fig.suptitle("When does a paused transactional producer get fenced?\n"
                 f"sweep every {SWEEP_MS} ms (test cluster), start phase drawn per seed; {seeds} seeds per point",
                 fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
