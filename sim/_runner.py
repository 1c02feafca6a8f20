"""eosim._runner
==========

Runs a scenario in the simulator: builds the world and the cluster, drives the interpreter's steps as
a SimPy process, lets in-flight work settle, then observes the final state and checks the run
(Jepsen-style history checks, the trace oracle, and the scenario's own expectations).
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from attrs import define, field, frozen

from eosim.models.fetch import visible_records
from eosim.models.config import ReplicationConfig
from eosim.models.log import PartitionLog
from eosim.models import records
from eosim.models.records import IsolationLevel
from eosim import _scenario as sc
from eosim._aged import age
from eosim._checkers import CheckResult
from eosim._checkers.oracle import RECALLED_KINDS, TraceOracle, settle_deadline
from eosim._client.consumer import Consumer
from eosim._client.errors import KafkaException
from eosim._client.message import TopicPartition
from eosim._client.producer import Producer
from eosim._cluster import Cluster, ReplicatedTopic
from eosim._diagram import mermaid
from eosim._faults import FaultLayer
from eosim._history import text
from eosim._interpret import Block, Interpreter
from eosim._judge import ORACLE_KINDS, SETTLE_MS, observation_of, verdict_of
from eosim._observation import Observation, PartitionObservation
from eosim._timeline import timeline_html
from eosim._topology import cluster_config
from eosim._trace import TraceView, dumps_lines, jsonl_lines
from eosim._verdict import Verdict
from eosim._world import World

# A run ends as "unknown" when its steps have not finished, or it has not settled, within the format's
# limits (docs/scenario-format.md): sc.MAX_SIM_MS of simulated time, settle included, and sc.MAX_EVENTS
# SimPy events, so that every run ends whatever the scenario.


@define(eq=False)
class SimBackend:
    """The interpreter's backend in the simulator: simulated confluent-kafka clients on one cluster."""

    world: World
    cluster: Cluster
    faults: FaultLayer
    incarnations: dict[str, int] = field(factory=dict)
    aged: dict[str, tuple[tuple[int, int], int]] = field(factory=dict)  # sim/_aged.py: first instances' state
    # the history's clock, twice per operation: SimPy's ``_now`` read in C, not a method or property call
    now: Callable[[], int] = field(init=False, repr=False)
    # Asked around every step of a scenario with faults: the fault layer's own methods (no call of ours between)
    paused_until: Callable[[str], int | None] = field(init=False, repr=False)
    after_step: Callable[[int], None] = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.now = partial(getattr, self.world.env, "_now")
        self.paused_until = self.faults.paused_until
        self.after_step = self.faults.after_step

    def new_client(self, actor: str, spec: sc.Actor) -> Any:
        n = self.incarnations[actor] = self.incarnations.get(actor, 0) + 1
        client = Producer if spec.kind == "producer" else Consumer
        handle = client(dict(spec.config), cluster=self.cluster, name=f"{actor}#{n}")
        if n == 1 and actor in self.aged:
            handle.idemp.start_aged(*self.aged[actor])
        return handle

    def crash(self, actor: str, client: Any) -> None:
        client.crash()

    def sleep(self, ms: int) -> Any:
        return self.world.env.timeout(ms)

    def topic_partition(self, topic: str, partition: int, offset: int = -1001) -> TopicPartition:
        return TopicPartition(topic, partition, offset)

    def error_name(self, exc: BaseException) -> str | None:
        return exc.args[0].name() if isinstance(exc, KafkaException) else None

    # The nemesis ops: the fault layer performs them (docs/faults.md).

    def pause(self, actor: str, ms: int) -> None:
        self.faults.pause(actor, ms)

    def partition(self, nodes: tuple[str, ...]) -> None:
        self.faults.partition(nodes)

    def clog(self, nodes: tuple[str, ...], ms: int) -> None:
        self.faults.clog(nodes, ms)

    def disconnect(self, nodes: tuple[str, ...]) -> None:
        self.faults.disconnect(nodes)

    def heal(self) -> None:
        self.faults.heal()

    # The broker nemesis ops: the broker performs them (sim/_broker.py).

    def crash_broker(self, broker: str) -> None:
        self.cluster.node(broker).crash()

    def restart_broker(self, broker: str, load_ms: int) -> None:
        self.cluster.node(broker).restart(load_ms)

    def coordinator_failover(self, down_ms: int, load_ms: int) -> None:
        self.cluster.broker_node.coordinator_failover(down_ms, load_ms)


def _drive(world: World, interpreter: Interpreter):
    """Perform the interpreter's blocking calls: each one is a SimPy event to wait for."""
    steps = interpreter.run()
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            block = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration:
            return
        value, error = None, None
        if block.nowait:
            world.env.process(_background(block))
            continue
        try:
            value = yield block.call()
        except Exception as exc:  # noqa: BLE001 - handed back to the interpreter, which records it
            error = exc


def _background(block: Block):
    try:
        result = yield block.call()
    except Exception as exc:  # noqa: BLE001
        block.on_done(None, exc)
    else:
        block.on_done(result, None)


@frozen
class Outcome:
    scenario: sc.Scenario
    seed: int
    trace: TraceView  # the run's typed events, held once (by the run's Trace); TraceNotKept if not kept
    history: Sequence[dict[str, Any]]  # eosim._history.Ops: op dicts rendered as they are read
    observation: Observation
    verdict: Verdict
    completed: bool

    @property
    def result(self) -> CheckResult:
        """The checkers and the scenario's unmet claims as one result."""
        return self.verdict.combined()

    @property
    def exit_code(self) -> int:
        """0 valid or broken as expected, 1 not as the scenario expects, 2 unknown (eosim._verdict)."""
        return self.verdict.exit_code

    def results_json(self) -> dict[str, Any]:
        config = self.scenario.broker_config
        return {"scenario": self.scenario.name, "seed": self.seed, "completed": self.completed,
                "kafka-release": config.eosim_kafka_version, "kafka-bugs": list(config.bugs()),
                **self.verdict.to_json()}


def observe(scenario: sc.Scenario, cluster: Cluster, interpreter: Interpreter) -> Observation:
    group = cluster.group_coordinator  # several brokers: the one the leader of __consumer_offsets-0 hosts now
    return observation_of(scenario, interpreter, observe_partitions(cluster),
                          lambda g: [] if group is None else [(tp.topic, tp.partition, o)
                                                              for tp, o in group.gc.committed(g).items()])


def observe_partitions(cluster: Cluster) -> list[PartitionObservation]:
    """Every partition's final state, as fresh readers of each isolation level see it (keys and values as
    text, a bytes one decoded, as the history holds them). A replicated partition is read from its leader (none
    elected: an empty log); the single-replica ones from broker-1."""
    logs: dict[records.TopicPartition, PartitionLog | None] = dict(cluster.broker_node.replicas.logs)
    for tp in cluster.assignment:
        if tp.topic in cluster.replicated:  # not an internal topic's
            part = cluster.leader_replica(tp)
            logs[tp] = part.log if part is not None else None
    return [_observe_log(tp, log) for tp, log in sorted(logs.items())]


def _observe_log(tp: records.TopicPartition, log: PartitionLog | None) -> PartitionObservation:
    if log is None:
        return PartitionObservation(topic=tp.topic, partition=tp.partition, high_watermark=0, last_stable_offset=0,
                                    read_committed=[], read_uncommitted=[])
    # read_committed is a subsequence of read_uncommitted (both in offset order): its rows are the same
    # tuples, not copies (a long run's final state is otherwise held twice).
    views: dict[IsolationLevel, list[tuple[int, Any, Any]]] = {}
    for isolation in (IsolationLevel.READ_UNCOMMITTED, IsolationLevel.READ_COMMITTED):
        fetched = log.read(log.log_start_offset, isolation)
        if isolation is IsolationLevel.READ_UNCOMMITTED:
            views[isolation] = [(o, text(r.key), text(r.value)) for o, r in visible_records(fetched, isolation)]
            continue
        rows, shared, i = [], views[IsolationLevel.READ_UNCOMMITTED], 0
        for o, r in visible_records(fetched, isolation):
            while i < len(shared) and shared[i][0] < o:
                i += 1
            rows.append(shared[i] if i < len(shared) and shared[i][0] == o else (o, text(r.key), text(r.value)))
        views[isolation] = rows
    return PartitionObservation(
        topic=tp.topic, partition=tp.partition, high_watermark=log.high_watermark,
        last_stable_offset=log.last_stable_offset, read_committed=views[IsolationLevel.READ_COMMITTED],
        read_uncommitted=views[IsolationLevel.READ_UNCOMMITTED])


@define(eq=False)
class Simulation:
    """A run after its simulated time, before it is observed and judged (``conclude``)."""

    scenario: sc.Scenario
    seed: int
    world: World
    cluster: Cluster
    interpreter: Interpreter
    completed: bool
    oracle: TraceOracle  # the trace oracle, reading the trace as the run goes
    max_events: int  # the run's event budget (sc.MAX_EVENTS unless the caller asked for less)


@contextlib.contextmanager
def _young_collections_only() -> Iterator[None]:
    """No full garbage collection during a run. A run's trace, log and history only grow, and every
    full collection rescans all of them: 30-70 % of a long run's time went there, growing with its
    length. The young generations still collect the short-lived cycles (SimPy events and processes);
    the old thresholds come back afterwards."""
    old = gc.get_threshold()
    gc.set_threshold(old[0], old[1], 1_000_000_000)
    try:
        yield
    finally:
        gc.set_threshold(*old)


# The heap's allocated blocks after the last full collection (0: not measured), how many full collections
# there had been then (another's since, Python's own or a caller's, resets the measure), and the runs since.
_blocks_after_full = 0
_full_collections = -1
_runs_since_full = 0
# Without pymalloc (PYTHONMALLOC=malloc, as under valgrind) there is no block count: a run count instead.
RUNS_PER_FULL_COLLECTION = 300


def _pace_full_collections() -> None:
    """A finished run is cyclic garbage (its processes, world and trace refer to each other), which only
    a full collection frees. Python's own trigger is checked at a middle-generation collection, and in a
    loop of runs nearly all of those fall inside a run, whose full collections are off: it never fired, and
    110 KB per run piled up (157 MB after 1,000 nemesis runs). So a run's start makes a full collection
    once the heap's allocated blocks (an O(1) count) have doubled since the last one, as Go's collector
    paces itself at its default GOGC=100: memory stays within twice the live heap, one full collection per
    about 300 nemesis runs (Python's own rule, a quarter's growth, collected every 43 runs and cost 7 % of
    them). At a run's start, not its end nor its checks', so that the run being judged is not garbage."""
    global _blocks_after_full, _full_collections, _runs_since_full
    if not gc.isenabled():
        return
    blocks, full = sys.getallocatedblocks(), gc.get_stats()[2]["collections"]
    _runs_since_full += 1
    if full != _full_collections:
        _blocks_after_full, _full_collections, _runs_since_full = blocks, full, 0
    elif blocks > 2 * _blocks_after_full if blocks else _runs_since_full >= RUNS_PER_FULL_COLLECTION:
        gc.collect()
        _blocks_after_full, _full_collections, _runs_since_full = sys.getallocatedblocks(), full + 1, 0


def simulate(scenario: sc.Scenario, seed: int | None = None, *, max_events: int | None = None,
             keep_trace: bool = True) -> Simulation:
    """Run the scenario's steps, then the settle period, within ``max_events`` (at most sc.MAX_EVENTS, read
    when called: the benchmark raises it).
    ``keep_trace=False``: keep only what the checkers need (``Trace.keep_only``), for a run whose verdict is
    all that is wanted; the same verdict, without the trace's file (a long run's cost per record stays flat)."""
    _pace_full_collections()
    with _young_collections_only():
        return _simulate(scenario, seed, sc.MAX_EVENTS if max_events is None else min(max_events, sc.MAX_EVENTS),
                         keep_trace)


def settle(world: World, cluster: Cluster, faults: FaultLayer, limit: int | None = None, *,
           oracle: TraceOracle | None = None) -> bool:
    """Heal every fault, then run SETTLE_MS (the settle period is fault-free) and on until Kafka's own timers
    have decided every open transaction (the oracle's liveness bound: transaction.timeout.ms and the abort
    sweep, the marker channel's request timeout), so it is judged, not left unknown;
    transaction.max.timeout.ms (15 min) caps those timers. A run's settle period also stops at the simulated
    time ``limit`` and when the world's event budget is spent: returns whether it got past SETTLE_MS within them.
    ``oracle``: the run's own trace oracle, which has read the trace so far (without it, the trace is read)."""
    settled = faults.end() + SETTLE_MS
    world.env.run(until=settled if limit is None else min(settled, limit))
    spent = world.env.spent
    while _in_progress(cluster) and not spent and (limit is None or world.now < limit):
        until = (settle_deadline(world.trace.view().of_kinds(ORACLE_KINDS)) if oracle is None
                 else oracle.settle_deadline())
        if until is None or until < world.now:
            break
        world.env.run(until=until + 1 if limit is None else min(until + 1, limit))
        spent = world.env.spent
    return (limit is None or settled <= limit) and not spent


def _in_progress(cluster: Cluster) -> bool:
    """Whether a transaction may still be open: the transaction coordinator's view (none while no broker serves
    __transaction_state: it cannot be told)."""
    txn = cluster.txn_coordinator
    return txn is None or txn.tc.in_progress()


def cluster_for(world: World, scenario: sc.Scenario) -> Cluster:
    """One broker: every topic single-replica on it. N brokers: every topic with replication_factor > 1 replicated
    (sim/_replication.py); one with replication_factor 1 is a single-replica topic on broker-1 (the single-broker
    partitions: producer state, transactions, consumers), until replicated logs carry those (issue 9, seam 1)."""
    config, topics = cluster_config(scenario.cluster), {t.name: t.partitions for t in scenario.topics}
    if len(scenario.brokers) == 1:
        return Cluster(world, config, topics)
    replicated = {t.name: ReplicatedTopic(partitions=t.partitions, replication_factor=t.replication_factor,
                                          config=ReplicationConfig.from_kafka(t.config))
                  for t in scenario.topics if t.replication_factor > 1}
    return Cluster(world, config, topics, brokers=len(scenario.brokers), replicated=replicated)


def _simulate(scenario: sc.Scenario, seed: int | None, max_events: int, keep_trace: bool) -> Simulation:
    seed = scenario.seed if seed is None else seed
    world = World(seed)
    if not keep_trace:
        world.trace.keep_only(RECALLED_KINDS)
    oracle = TraceOracle(world.trace)
    cluster = cluster_for(world, scenario)
    faults = FaultLayer.install(world, cluster.network, cluster.broker_node, scenario, cluster.node)
    aged = age(scenario, cluster) if any(a.aged is not None for a in scenario.actors.values()) else {}
    interpreter = Interpreter(scenario, SimBackend(world, cluster, faults, aged=aged))
    main = world.env.process(_drive(world, interpreter))
    world.env.events_left = max_events
    world.env.run(until=main | world.env.timeout(sc.MAX_SIM_MS - SETTLE_MS))
    completed = main.triggered
    settled = settle(world, cluster, faults, sc.MAX_SIM_MS, oracle=oracle)
    world.trace.emit("runner", "run.end")
    completed = completed and settled
    if main.triggered and not main.ok:
        raise main.value
    return Simulation(scenario, seed, world, cluster, interpreter, completed, oracle, max_events)


def conclude(run: Simulation) -> Outcome:
    """Observe the final state and run every checker."""
    with _young_collections_only():
        return _conclude(run)


def _conclude(run: Simulation) -> Outcome:
    trace = run.world.trace.view()
    observation = observe(run.scenario, run.cluster, run.interpreter)
    verdict = verdict_of(run.scenario, run.interpreter, observation, run.oracle, run.completed, run.max_events)
    return Outcome(run.scenario, run.seed, trace, run.interpreter.history, observation, verdict, run.completed)


def run_scenario(scenario: sc.Scenario, seed: int | None = None, *, max_events: int | None = None,
                 keep_trace: bool = True) -> Outcome:
    if not isinstance(scenario, sc.Scenario):
        raise TypeError(f"run_scenario() takes an eosim.Scenario, as load_scenario(path) returns, "
                        f"got {scenario!r}")
    return conclude(simulate(scenario, seed, max_events=max_events, keep_trace=keep_trace))


def reachable(scenario: sc.Scenario) -> list[Outcome]:
    """The distinct observations the simulator reaches, one outcome each (the first seed that reached it, in seed
    order): the scenario's own seed alone, or for a racy one (``racy_seeds`` = N) seeds seed .. seed + N - 1.
    The conformance suite accepts Kafka's observation if it is one of these (docs/conformance.md)."""
    seeds = range(scenario.seed, scenario.seed + max(scenario.scenario.racy_seeds, 1))
    found: dict[str, Outcome] = {}
    for seed in seeds:
        outcome = run_scenario(scenario, seed)
        found.setdefault(outcome.observation.to_json(), outcome)
    return list(found.values())


def run_file(path: Path, seed: int | None = None) -> Outcome:
    return run_scenario(sc.load_scenario(path), seed)


def run_dir_files(outcome: Outcome, scenario_text: str,
                  results: dict[str, Any] | None = None) -> dict[str, str | Iterable[str]]:
    """The files of a run directory (docs/cli.md); ``results`` (default ``outcome.results_json()``)
    becomes results.json. The trace and the history are their lines, rendered as they are written."""
    return {
        "scenario.toml": scenario_text,
        "seed": f"{outcome.seed}\n",
        "trace.jsonl": jsonl_lines(outcome.trace),
        "history.jsonl": jsonl_lines(outcome.history),
        "observation.json": outcome.observation.to_json() + "\n",
        "results.json": json.dumps(results or outcome.results_json(), indent=2, sort_keys=True) + "\n",
        "diagram.mmd": mermaid(outcome.trace, outcome.result.to_json()["anomalies"]),
        "timeline.html": timeline_html(outcome.trace, outcome.results_json()),
    }


def replay(scenario: sc.Scenario, seed: int, recorded: str) -> tuple[bool, str]:
    """Run ``scenario`` with ``seed`` again and compare the trace bytes with ``recorded``."""
    again = dumps_lines(run_scenario(scenario, seed).trace)
    if again == recorded:
        return True, f"identical: {len(recorded.splitlines())} trace events replayed byte for byte"
    old, new = recorded.splitlines(), again.splitlines()
    first = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    return False, f"DIFFERENT from event {first}:\n  recorded: {old[first:first+1]}\n  replayed: {new[first:first+1]}"
