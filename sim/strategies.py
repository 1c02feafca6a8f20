"""eosim.strategies
================

Hypothesis strategies for eosim scenarios (docs/exploration.md): workloads, fault schedules and
broker/client configurations, composed into scenario documents (the loader's tables, as TOML gives
them) that ``eosim._scenario.scenario_from_dict`` reads and the runner runs. Every random choice is a
Hypothesis draw made before the run, so a schedule is data: it is written into the scenario file,
``eosim run`` replays it exactly, and Hypothesis shrinks it. The simulator's own seeded randomness (the
``[nemesis]`` table) is never used here.

- :func:`cluster_configs`: ``transaction.version`` 1/2, KIP-890 verification on/off, producer-id expiry.
- :func:`workloads`: transactional, idempotent and plain producers (several may share a
  ``transactional.id``: a replacement fences the other), consume-transform-produce, consumers of
  both isolation levels, one to three partitions, crashes and restarts, sleeps past the timeouts.
- :func:`fault_schedules`: swarm testing (a random subset of the fault kinds per example) over every
  fault kind the simulator has: drops, delays, disconnects and injected errors of any API (rules armed
  from the start, after a step, or after the k-th request of an API), failed ``__transaction_state``
  appends, network partitions, clogs, disconnects, pauses longer than the timeouts, broker crash and
  restart, coordinator failovers (overlapping ones too).
- :func:`scenario_documents` / :func:`scenarios`: all of it, interleaved into one global step order.
- :class:`ConsumeTransformProduceMachine`: a rule-based state machine over the client API for a user's
  own consume-transform-produce loop (feeds, time, faults; exactly-once checked at the end).

Example::

    from hypothesis import given
    from eosim import strategies
    from eosim._runner import run_scenario

    @given(strategies.scenarios(producers=("transactional", "idempotent"), readers=("read_committed",),
                                cluster=strategies.cluster_configs(verification=(True,), expiry=(None,))))
    def test_kafka_keeps_its_promises(scenario):
        assert run_scenario(scenario).verdict.checks.valid is not False
"""

from __future__ import annotations

from typing import Any, Sequence

from attrs import Factory, frozen
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from eosim.models.api import API_NAMES, INFRASTRUCTURE_ERRORS, TXN_LOG_APPEND_ERRORS

BROKER = "broker-1"
OUT = "out"
# Values that straddle the clients' and the coordinator's timers: some waits outlast them.
SLEEPS_MS = (0, 100, 1_000, 3_000, 8_000, 20_000, 70_000)
PAUSES_MS = (500, 3_000, 12_000, 65_000)
TXN_TIMEOUTS_MS = (60_000, 2_000, 5_000, 10_000, 300_000)
MESSAGE_TIMEOUTS_MS = (3_000, 10_000, 30_000)
DELAYS_MS = (10, 500, 3_000, 40_000)
PRODUCER_KINDS = ("transactional", "idempotent", "plain")
ISOLATION_LEVELS = ("read_committed", "read_uncommitted")
# The fault kinds of a schedule; swarm testing draws a subset of them per example.
RULE_KINDS = ("drop", "delay", "disconnect", "error", "txn-log")
OP_KINDS = ("partition", "clog", "pause", "disconnect-nodes", "broker-restart", "coordinator-failover")
FAULT_KINDS = RULE_KINDS + OP_KINDS
# The exactly-once APIs: half of the message faults aim at one of them, the other half at any API.
EOS_APIS = ("Produce", "InitProducerId", "AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn", "WriteTxnMarkers",
            "TxnOffsetCommit")


@frozen
class Workload:
    """Topics (name -> partitions), actors (name -> actor table) and each actor's program (op tables in
    its own order; an op naming another ``actor`` is that actor's, run at this point of the program)."""

    topics: dict[str, int]
    actors: dict[str, dict[str, Any]]
    programs: dict[str, list[dict[str, Any]]]


@frozen
class Schedule:
    """Fault rules (``[[faults]]`` tables, an ``after_step`` of ``-k`` meaning "the k-th step from the
    end of the workload", resolved when the steps are interleaved), groups of nemesis ops, each group
    kept together in the global order (a heal after its cut), and nemesis strikes on the clock
    (``[[nemesis.strikes]]`` tables: faults at a time, whatever step the workload is at)."""

    rules: list[dict[str, Any]]
    groups: list[list[dict[str, Any]]]
    strikes: list[dict[str, Any]] = Factory(list)


# -- configurations -------------------------------------------------------------------------------------

def cluster_configs(verification: Sequence[bool] = (True, False),
                    expiry: Sequence[int | None] = (None, 2_000, 10_000)) -> st.SearchStrategy[dict[str, Any]]:
    """``[cluster]`` tables: TV1 or TV2, KIP-890 verification among ``verification`` (off is KAFKA-12671's
    switch), ``producer.id.expiration.ms`` among ``expiry`` (None: Kafka's default; a short one gets a fast
    expiry check too, and a retry after it is a duplicate, as on Kafka)."""
    return st.builds(
        lambda tv, verification, expiry: {"transaction.version": tv,
                                           **({} if verification else
                                              {"transaction.partition.verification.enable": False}),
                                           **({} if expiry is None else
                                              {"producer.id.expiration.ms": expiry,
                                               "producer.id.expiration.check.interval.ms": 100})},
        st.sampled_from((2, 1)), st.sampled_from(tuple(verification)), st.sampled_from(tuple(expiry)))


def producer_configs(kind: str, transactional_id: str | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """librdkafka configurations of a ``transactional``, ``idempotent`` or ``plain`` producer: timeouts
    (transaction, message, socket) and one record per batch or librdkafka's batching, drawn."""
    base: dict[str, Any] = ({"transactional.id": transactional_id} if kind == "transactional"
                            else {"enable.idempotence": kind == "idempotent"})
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "socket.timeout.ms": st.sampled_from((1_000, 5_000)),
        "batch.num.messages": st.just(1),
        "message.timeout.ms": st.sampled_from(MESSAGE_TIMEOUTS_MS),
    }
    if kind == "transactional":
        required["transaction.timeout.ms"] = st.sampled_from(TXN_TIMEOUTS_MS)
    return st.fixed_dictionaries(required, optional=optional).map(lambda extra: _consistent({**base, **extra}))


def _consistent(config: dict[str, Any]) -> dict[str, Any]:
    """librdkafka refuses socket.timeout.ms > transaction.timeout.ms + 100 and message.timeout.ms >
    transaction.timeout.ms: the shorter of each pair stays."""
    if config.get("socket.timeout.ms", 0) > config.get("transaction.timeout.ms", 60_000) + 100:
        del config["socket.timeout.ms"]
    if "transaction.timeout.ms" in config and config.get("message.timeout.ms", 0) > config["transaction.timeout.ms"]:
        del config["message.timeout.ms"]
    return config


# -- workloads -----------------------------------------------------------------------------------------

@st.composite
def _transactions(draw: Any, actor: str, partitions: int, consumer: str | None) -> list[dict[str, Any]]:
    """init_transactions, then 1-4 transactions that commit or abort, with sleeps, flushes, and maybe a
    crash (then a restart and a new init, or never again)."""
    ops: list[dict[str, Any]] = [{"op": "init_transactions"}]
    incarnation = 1
    for t in range(draw(st.integers(1, 4))):
        ops.append({"op": "begin_transaction"})
        if consumer is not None:
            ops.append({"actor": consumer, "op": "consume", "max_records": draw(st.integers(1, 3)),
                        "timeout_ms": 500})
        body: list[dict[str, Any]] = []
        for r in range(draw(st.integers(1, 4))):
            body.append({"op": "produce", "topic": OUT, "partition": draw(st.integers(0, partitions - 1)),
                         "value": f"{actor}.{incarnation}-{t}-{r}"})
            extra = draw(st.sampled_from(("", "flush", "sleep")))
            if extra == "flush":
                body.append({"op": "flush"})
            elif extra == "sleep":
                body.append({"op": "sleep", "ms": draw(st.sampled_from(SLEEPS_MS[1:]))})
        if consumer is not None:
            body.append({"op": "send_offsets_to_transaction", "consumer": consumer})
        ending = draw(st.sampled_from(("commit", "abort", "crash")))
        if ending == "crash":
            ops += body[:draw(st.integers(0, len(body)))] + [{"op": "crash"}]
            if not draw(st.booleans()):
                return ops  # never restarted: the coordinator's timeout ends the transaction
            incarnation += 1
            ops += [{"op": "restart"}, {"op": "sleep", "ms": draw(st.sampled_from(SLEEPS_MS))},
                    {"op": "init_transactions"}]
            continue
        ops += body + [{"op": f"{ending}_transaction"}]
    return ops


@st.composite
def _sends(draw: Any, actor: str, topic: str, partitions: int) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    for r in range(draw(st.integers(1, 6))):
        ops.append({"op": "produce", "topic": topic, "partition": draw(st.integers(0, partitions - 1)),
                    "value": f"{actor}-{r}"})
        extra = draw(st.sampled_from(("", "flush", "sleep")))
        if extra == "flush":
            ops.append({"op": "flush"})
        elif extra == "sleep":
            ops.append({"op": "sleep", "ms": draw(st.sampled_from(SLEEPS_MS[1:]))})
    return ops + [{"op": "flush"}]


@st.composite
def workloads(draw: Any, max_producers: int = 3, producers: Sequence[str] = PRODUCER_KINDS,
              readers: Sequence[str] = ISOLATION_LEVELS) -> Workload:
    """1 to ``max_producers`` producers of the ``producers`` kinds (transactional, idempotent, plain), maybe a
    consume-transform-produce application, maybe readers of the ``readers`` isolation levels, on a topic of
    1-3 partitions."""
    partitions = draw(st.integers(1, 3))
    kinds = draw(st.lists(st.sampled_from(tuple(producers)), min_size=1, max_size=max_producers))
    topics = {OUT: partitions}
    actors: dict[str, dict[str, Any]] = {}
    programs: dict[str, list[dict[str, Any]]] = {}
    ctp = "transactional" in kinds and draw(st.booleans())
    for i, kind in enumerate(kinds, 1):
        actor = f"p{i}"
        # two producers may share a transactional.id: the later init fences the earlier one
        tid = f"tx-{draw(st.integers(1, i))}" if kind == "transactional" else None
        actors[actor] = {"kind": "producer", "config": draw(producer_configs(kind, tid))}
        if kind != "transactional":
            programs[actor] = draw(_sends(actor, OUT, partitions))
            continue
        consumer = None
        if ctp:
            ctp, consumer = False, "app"
            topics["in"] = 1
            actors["app"] = {"kind": "consumer", "config": {"group.id": "app", "isolation.level": "read_committed",
                                                            "auto.offset.reset": "earliest",
                                                            "enable.auto.commit": False}}
            actors["source"] = {"kind": "producer", "config": {"enable.idempotence": True}}
            programs["source"] = draw(_sends("source", "in", 1))
            programs["app"] = [{"op": "assign", "partitions": [{"topic": "in", "partition": 0}]}]
        programs[actor] = draw(_transactions(actor, partitions, consumer))
    for isolation in draw(st.lists(st.sampled_from(tuple(readers)), max_size=len(readers), unique=True)):
        reader = f"r{len([a for a in actors if a.startswith('r')]) + 1}"
        actors[reader] = {"kind": "consumer", "config": {"group.id": reader, "isolation.level": isolation,
                                                         "enable.auto.commit": False}}
        programs[reader] = [{"op": "assign", "partitions": [{"topic": OUT, "partition": p, "offset": "beginning"}
                                                            for p in range(partitions)]}]
        programs[reader] += [{"op": "consume", "timeout_ms": draw(st.sampled_from((300, 2_000)))}
                             for _ in range(draw(st.integers(1, 3)))]
    return Workload(topics, actors, programs)


# -- fault schedules -----------------------------------------------------------------------------------

def _transactional_ids(workload: Workload) -> list[str]:
    return sorted({a["config"]["transactional.id"] for a in workload.actors.values()
                   if "transactional.id" in a["config"]})


@st.composite
def _rule(draw: Any, kind: str, nodes: Sequence[str], transactional_ids: Sequence[str]) -> dict[str, Any]:
    rule: dict[str, Any] = {"count": draw(st.sampled_from((1, 2, 3, "until-healed")))}
    if kind == "txn-log":  # the coordinator's own write to __transaction_state fails
        rule |= {"action": "error", "message": "TxnLogAppend",
                 "error": draw(st.sampled_from(sorted(e.name for e in TXN_LOG_APPEND_ERRORS)))}
        if rule["count"] == "until-healed":
            rule["count"] = 3
        if transactional_ids and draw(st.booleans()):
            rule["transactional_id"] = draw(st.sampled_from(transactional_ids))
        return rule
    rule["action"] = kind
    if kind == "error":
        apis = sorted(INFRASTRUCTURE_ERRORS)
        api = draw(st.sampled_from([a for a in EOS_APIS if a in INFRASTRUCTURE_ERRORS]) | st.sampled_from(apis))
        rule |= {"message": api, "error": draw(st.sampled_from(sorted(e.name for e in INFRASTRUCTURE_ERRORS[api])))}
    else:
        rule |= {"message": draw(st.sampled_from(EOS_APIS) | st.sampled_from(API_NAMES)),
                 "direction": draw(st.sampled_from(("response", "request")))}
        if kind == "delay":
            rule["ms"] = draw(st.sampled_from(DELAYS_MS))
    if draw(st.booleans()):
        rule["node"] = draw(st.sampled_from([*nodes, BROKER]))
    return rule


@st.composite
def _group(draw: Any, kind: str, actors: Sequence[str], transactional: Sequence[str]) -> list[dict[str, Any]]:
    sleep = {"op": "sleep", "ms": draw(st.sampled_from(SLEEPS_MS[1:]))}
    if kind == "coordinator-failover":
        first = {"op": "coordinator_failover", "down_ms": draw(st.sampled_from((0, 100, 3_000))),
                 "load_ms": draw(st.sampled_from((10, 300)))}
        if not draw(st.booleans()):
            return [first]
        # a second one, maybe while the first is still down
        return [first, {"op": "sleep", "ms": draw(st.integers(0, 4_000))},
                {"op": "coordinator_failover", "down_ms": draw(st.sampled_from((0, 100, 5_000))),
                 "load_ms": draw(st.sampled_from((10, 300)))}]
    if kind == "broker-restart":
        return [{"op": "crash_broker"}, sleep, {"op": "restart_broker", "load_ms": draw(st.sampled_from((10, 300)))}]
    if kind == "pause":
        return [{"op": "pause", "nodes": [draw(st.sampled_from(transactional or actors))],
                 "ms": draw(st.sampled_from(PAUSES_MS))}]
    nodes = [draw(st.sampled_from([*actors, BROKER]))]
    if kind == "disconnect-nodes":
        return [{"op": "disconnect", "nodes": nodes}]
    cut: dict[str, Any] = {"op": kind, "nodes": nodes}
    if kind == "clog":
        cut["ms"] = draw(st.sampled_from((100, 1_500, 6_000)))
    return [cut, sleep, {"op": "heal"}]


def _trigger(max_step: int) -> st.SearchStrategy[dict[str, Any]]:
    """When a rule is armed: from the start, after a step, or after the k-th request of an API."""
    return st.one_of(
        st.just({}),
        st.integers(1, max(max_step, 1)).map(lambda k: {"after_step": -k}),
        st.builds(lambda api, k: {"after_message": api, "after_count": k},
                  st.sampled_from(EOS_APIS) | st.sampled_from(API_NAMES), st.integers(1, 4)))


# A fault kind as a strike of the clocked nemesis ([[nemesis.strikes]], docs/scenario-format.md)
# (not broker-restart: a crash on the clock could meet a crash_broker step of a scenario explored around)
STRIKE_KINDS = {"drop": "drop", "delay": "delay", "error": "error", "txn-log": "txn-log", "partition": "partition",
                "clog": "clog", "pause": "pause", "disconnect-nodes": "disconnect",
                "coordinator-failover": "coordinator-failover"}
STRIKE_TIMES_MS = (0, 100, 500, 1_000, 2_000, 3_000, 5_000, 10_000, 30_000, 60_000)
STRIKE_DURATIONS_MS = (100, 1_000, 3_000, 10_000, 40_000)


@st.composite
def _strike(draw: Any, kind: str, actors: Sequence[str]) -> dict[str, Any]:
    """One clocked nemesis strike of ``kind``: at a drawn time, for a drawn duration."""
    strike: dict[str, Any] = {"at_ms": draw(st.sampled_from(STRIKE_TIMES_MS) | st.integers(0, 70_000)),
                              "kind": STRIKE_KINDS[kind]}
    if kind not in ("txn-log", "coordinator-failover"):
        strike["target"] = draw(st.sampled_from(tuple(actors)))
    strike["duration_ms"] = draw(st.sampled_from(STRIKE_DURATIONS_MS))
    if kind in ("drop", "delay", "error", "txn-log"):
        strike["count"] = draw(st.integers(1, 3))
    if kind in ("delay", "clog"):
        strike["ms"] = draw(st.sampled_from(DELAYS_MS))
    if kind == "error":
        strike["error"] = draw(st.sampled_from(sorted({e.name for errors in INFRASTRUCTURE_ERRORS.values()
                                                       for e in errors})))
    elif kind == "txn-log":
        strike["error"] = draw(st.sampled_from(sorted(e.name for e in TXN_LOG_APPEND_ERRORS)))
    return strike


@st.composite
def fault_schedules(draw: Any, workload: Workload, kinds: Sequence[str] = FAULT_KINDS,
                    max_faults: int = 4) -> Schedule:
    """A schedule for ``workload``: swarm testing draws which of ``kinds`` this example may use, then up
    to ``max_faults`` faults of those kinds, each either aimed at the protocol (a rule armed at a step or
    by the k-th request of an API; nemesis ops at a point of the step order) or on the clock (a strike of
    the nemesis at a drawn time, while the workload goes on)."""
    enabled = draw(st.lists(st.sampled_from(tuple(kinds)), unique=True, max_size=len(kinds)))
    if not enabled:
        return Schedule([], [])
    actors = sorted(workload.actors)
    producers = [a for a, spec in workload.actors.items() if "transactional.id" in spec["config"]]
    steps = sum(len(p) for p in workload.programs.values())
    rules, groups, strikes = [], [], []
    for kind in draw(st.lists(st.sampled_from(enabled), max_size=max_faults)):
        if kind in STRIKE_KINDS and draw(st.booleans()):
            strikes.append(draw(_strike(kind, actors)))
        elif kind in RULE_KINDS:
            rule = draw(_rule(kind, actors, _transactional_ids(workload)))
            rules.append({"name": f"f{len(rules) + 1}", **rule, **draw(_trigger(steps))})
        else:
            groups.append(draw(_group(kind, actors, producers)))
    return Schedule(rules, groups, sorted(strikes, key=lambda s: s["at_ms"]))


# -- scenarios -----------------------------------------------------------------------------------------

def compose(draw: Any, workload: Workload, schedule: Schedule, cluster: dict[str, Any], *,
            name: str = "explored", description: str = "a workload and fault schedule drawn by eosim.strategies"
            ) -> dict[str, Any]:
    """The scenario document: the programs interleaved op by op (each choice a draw), the nemesis groups
    inserted at drawn points, rules' relative ``after_step`` resolved."""
    queues = {actor: list(ops) for actor, ops in workload.programs.items() if ops}
    setup = [a for a in ("source", "app") if a in queues]  # consume-transform-produce input first
    steps: list[dict[str, Any]] = [{"actor": a, **op} for a in setup for op in queues.pop(a)]
    while queues:
        actor = draw(st.sampled_from(sorted(queues)))
        op = queues[actor].pop(0)
        if not queues[actor]:
            del queues[actor]
        steps.append(op if "actor" in op else {"actor": actor, **op})
    # each group goes before a drawn workload step (or at the end), never inside another group
    slots: list[list[dict[str, Any]]] = [[] for _ in range(len(steps) + 1)]
    for group in schedule.groups:
        slots[draw(st.integers(0, len(steps)))] += [{"actor": "nemesis", **op} for op in group]
    steps = [step for i, slot in enumerate(slots) for step in (*slot, *steps[i:i + 1])]
    # a broker may not stay down at the end: every crash_broker is followed by its restart (same group)
    rules = []
    for rule in schedule.rules:
        rule = dict(rule)
        if "after_step" in rule:
            rule["after_step"] = max(len(steps) + rule["after_step"], 0)
        rules.append(rule)
    document: dict[str, Any] = {
        "scenario": {"name": name, "description": description, "conformance": False},
        "cluster": cluster,
        "topics": [{"name": t, "partitions": n} for t, n in workload.topics.items()],
        "actors": workload.actors,
        "steps": steps,
    }
    if rules:
        document["faults"] = rules
    if schedule.strikes:
        document["nemesis"] = {"strikes": schedule.strikes}
    return document


@st.composite
def scenario_documents(draw: Any, kinds: Sequence[str] = FAULT_KINDS, max_producers: int = 3,
                       producers: Sequence[str] = PRODUCER_KINDS, readers: Sequence[str] = ISOLATION_LEVELS,
                       cluster: st.SearchStrategy[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Scenario documents (the loader's tables) of a workload, a fault schedule and a cluster config."""
    workload = draw(workloads(max_producers, producers, readers))
    schedule = draw(fault_schedules(workload, kinds))
    config = draw(cluster if cluster is not None else cluster_configs())
    return compose(draw, workload, schedule, config)


def scenarios(kinds: Sequence[str] = FAULT_KINDS, max_producers: int = 3, producers: Sequence[str] = PRODUCER_KINDS,
              readers: Sequence[str] = ISOLATION_LEVELS,
              cluster: st.SearchStrategy[dict[str, Any]] | None = None) -> st.SearchStrategy[Any]:
    """Loaded scenarios (``eosim._scenario.Scenario``), ready for ``eosim._runner.run_scenario``."""
    from eosim._scenario import scenario_from_dict

    return scenario_documents(kinds, max_producers, producers, readers, cluster).map(
        lambda doc: scenario_from_dict(doc, name=doc["scenario"]["name"], header="drawn by eosim.strategies"))


# -- a rule-based state machine over the client API ----------------------------------------------------

LOOP_FAULTS = ("drop", "delay", "disconnect")
LOOP_PAUSES_MS = (500, 3_000, 12_000)


class ConsumeTransformProduceMachine(RuleBasedStateMachine):
    """A Hypothesis rule-based state machine for a user's own consume-transform-produce loop.

    Subclass it and write ``application(self)``: a generator (a process of ``self.sim``, an
    ``eosim.Simulation``; docs/api.md) that reads ``INPUT``, writes each value unchanged to ``OUTPUT`` (the
    end-to-end check compares values), and runs until the simulation stops. Hypothesis then interleaves, in any order and number: records fed to ``INPUT``,
    simulated time passing, lost, delayed and disconnected responses of the exactly-once APIs, pauses of
    the application's clients (``CLIENTS``, their ``client.id``s; past their timeouts too), connection
    drops, coordinator failovers and broker restarts. At the end the faults still armed get
    ``CATCH_UP_MS`` to strike, then every fault is healed, the application gets as long again to catch
    up, and ``teardown`` asserts exactly-once end to end (``sim.check(pipeline=(INPUT,
    OUTPUT))``: every fed record once among the committed output, and Jepsen's checks). A failure shrinks
    to the fewest steps and prints them as Python (docs/exploration.md has a complete example).
    """

    INPUT = "in"
    OUTPUT = "out"
    PARTITIONS = 1
    CLIENTS: tuple[str, ...] = ()
    SEED = 1
    CATCH_UP_MS = 30_000

    def __init__(self) -> None:
        from eosim import Simulation

        super().__init__()
        self.sim = Simulation(topics={self.INPUT: self.PARTITIONS, self.OUTPUT: self.PARTITIONS}, seed=self.SEED)
        self.fed = 0
        self.faults = 0
        self.sim.process(self.application())
        self.sim.run(1)  # the application has created its clients: the faults can name them

    def application(self) -> Any:
        raise NotImplementedError("write the application loop: a generator, a process of self.sim")

    @rule(records=st.integers(1, 5))
    def feed(self, records: int) -> None:
        """An idempotent producer of its own sends ``records`` more values to INPUT."""
        from eosim import Producer

        first, self.fed = self.fed, self.fed + records

        def send() -> Any:
            producer = Producer({"client.id": f"feeder-{first}", "enable.idempotence": True})
            for i in range(first, first + records):
                producer.produce(self.INPUT, key=f"k{i % 3}", value=f"v{i}")
            yield producer.flush()

        self.sim.process(send())

    @rule(ms=st.sampled_from((100, 1_000, 5_000, 20_000)))
    def advance(self, ms: int) -> None:
        self.sim.run(ms)

    @rule(action=st.sampled_from(LOOP_FAULTS), api=st.sampled_from(EOS_APIS), count=st.integers(1, 3),
          ms=st.sampled_from(DELAYS_MS))
    def lose_responses(self, action: str, api: str, count: int, ms: int) -> None:
        from eosim import Fault

        self.faults += 1
        self.sim.add_fault(Fault(name=f"f{self.faults}", action=action, message=api, direction="response",
                                 count=count, **({"ms": ms} if action == "delay" else {})))

    @precondition(lambda self: bool(self.CLIENTS))
    @rule(data=st.data(), ms=st.sampled_from(LOOP_PAUSES_MS))
    def pause(self, data: Any, ms: int) -> None:
        self.sim.pause(data.draw(st.sampled_from(self.CLIENTS), label="client"), ms)

    @precondition(lambda self: bool(self.CLIENTS))
    @rule(data=st.data())
    def disconnect(self, data: Any) -> None:
        self.sim.disconnect([data.draw(st.sampled_from(self.CLIENTS), label="client")])

    @rule(down_ms=st.sampled_from((0, 500, 3_000)))
    def coordinator_failover(self, down_ms: int) -> None:
        self.sim.coordinator_failover(down_ms=down_ms)

    @rule(down_ms=st.sampled_from((100, 2_000)))
    def broker_restart(self, down_ms: int) -> None:
        self.sim.crash_broker()
        self.sim.run(down_ms)
        self.sim.restart_broker()

    def teardown(self) -> None:
        """Let the faults still armed strike, heal everything, let the application catch up, and check
        exactly-once end to end."""
        self.sim.run(self.CATCH_UP_MS)
        self.sim.settle()
        self.sim.run(self.CATCH_UP_MS)
        self.sim.settle()
        result = self.sim.check(pipeline=(self.INPUT, self.OUTPUT))
        assert result.valid is True, (f"not exactly-once after {self.fed} records: "
                                      f"{', '.join(a.name for a in result.anomalies)}\n{result.to_json()}")
