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
  fault kind the simulator has: drops, delays, disconnects and injected errors of any API, on anyone's
  messages, one node's, or the broker's own requests (verification, markers) apart from a client's (rules armed
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

from typing import Any, Callable, Sequence

import functools

from attrs import Factory, frozen
from hypothesis import assume, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from eosim.models.api import INFRASTRUCTURE_ERRORS, TXN_LOG_APPEND_ERRORS
from eosim.models.records import MAX_EPOCH, MAX_SEQUENCE
from eosim._topology import broker_nodes

BROKER = "broker-1"
OUT = "out"
# Values that straddle the clients' and the coordinator's timers: some waits outlast them.
SLEEPS_MS = (0, 100, 1_000, 3_000, 8_000, 20_000, 70_000)
PAUSES_MS = (500, 3_000, 12_000, 65_000)
# Kafka's default first, then short ones (a short timeout makes a run that outlasts it cheap to simulate)
TXN_TIMEOUTS_MS = (60_000, 2_000, 5_000, 10_000)
# The coordinator's abort sweep (transaction.abort.timed.out.transaction.cleanup.interval.ms): Kafka's
# default, or a fast one, so that a timed-out transaction is fenced within a short run.
ABORT_SWEEPS_MS = (10_000, 1_000)
# Where an op stands in the global step order: each op draws its slot, independently of every other op,
# and the programs are merged by slot (an actor's own ops keep their order). Deleting one op moves no
# other op's draw, so Hypothesis can delete steps without changing how the rest interleave.
SLOTS = 12
MESSAGE_TIMEOUTS_MS = (3_000, 10_000, 30_000)
DELAYS_MS = (10, 500, 3_000, 40_000)
PRODUCER_KINDS = ("transactional", "idempotent", "plain")
# Whose client a producer is (the simulator's ``eosim.client``): librdkafka's, or the Java client's (TV2 on a TV2
# broker: implicit partition adds, an epoch bump per transaction; docs/client.md)
CLIENTS = ("librdkafka", "java")
JAVA_REQUEST_TIMEOUT_MS = 30_000  # the Java client's request.timeout.ms, its socket.timeout.ms here
JAVA_LINGER_MS = 5
ISOLATION_LEVELS = ("read_committed", "read_uncommitted")
# The fault kinds of a schedule; swarm testing draws a subset of them per example.
RULE_KINDS = ("drop", "delay", "disconnect", "error", "txn-log")
OP_KINDS = ("partition", "clog", "pause", "disconnect-nodes", "broker-restart", "coordinator-failover")
FAULT_KINDS = RULE_KINDS + OP_KINDS
# The exactly-once APIs (the state machine's faults aim at them).
EOS_APIS = ("Produce", "InitProducerId", "AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn", "WriteTxnMarkers",
            "TxnOffsetCommit")
# The APIs a drawn workload sends: the exactly-once ones and its consumers' (they assign partitions, so no
# group membership APIs). A rule draws its message from them, mapped into those its targets send (``exchanged``).
WORKLOAD_APIS = EOS_APIS + ("Fetch", "ListOffsets", "OffsetFetch")
# The requests a broker sends itself (to the transaction coordinator, to a partition leader): the leader's
# KIP-890 verification (or TV2 implicit add) and the coordinator's transaction markers.
BROKER_APIS = ("AddPartitionsToTxn", "WriteTxnMarkers")


@frozen
class Workload:
    """Topics (name -> partitions), actors (name -> actor table) and each actor's program (op tables in
    its own order; an op naming another ``actor`` is that actor's, run at this point of the program). A
    drawn op carries its slot ``_at`` (0..SLOTS), where ``compose`` merges it into the global order; ops
    without one (a scenario explored around) keep their order, op ``i`` at slot ``i``."""

    topics: dict[str, int]
    actors: dict[str, dict[str, Any]]
    programs: dict[str, list[dict[str, Any]]]


@frozen
class Schedule:
    """Fault rules (``[[faults]]`` tables; an ``after_slot`` of ``s`` arms the rule once every step of
    a slot below ``s`` is done, resolved to an ``after_step`` when the steps are merged), groups of
    nemesis ops, each group kept together in the global order (a heal after its cut) and put at the slot
    ``_at`` of its first op, and nemesis strikes on the clock (``[[nemesis.strikes]]`` tables: faults at
    a time, whatever step the workload is at)."""

    rules: list[dict[str, Any]]
    groups: list[list[dict[str, Any]]]
    strikes: list[dict[str, Any]] = Factory(list)


# Strategies are built once per argument tuple: building one anew at every draw cost more than the draw.
_cached = functools.lru_cache(maxsize=4096)


@_cached
def _lists(elements: st.SearchStrategy[Any], min_size: int = 0, max_size: int | None = None,
           unique: bool = False) -> st.SearchStrategy[list[Any]]:
    return st.lists(elements, min_size=min_size, max_size=max_size, unique=unique)


# Drawn vocabularies, one strategy each: st.sampled_from builds a new strategy at every call, and Hypothesis works out
# every new strategy's label and emptiness again at its first draw (a sixth of the time to draw a document).
_SAMPLED: dict[tuple[tuple[type, Any], ...], st.SearchStrategy[Any]] = {}


def _sampled(elements: Sequence[Any]) -> st.SearchStrategy[Any]:
    """``st.sampled_from(elements)``, built once per vocabulary (keyed by value and type: True is not 1)."""
    key = tuple((type(e), e) for e in elements)
    strategy = _SAMPLED.get(key)
    if strategy is None:
        strategy = _SAMPLED[key] = st.sampled_from(tuple(elements))
    return strategy


# -- configurations -------------------------------------------------------------------------------------

def cluster_configs(verification: Sequence[bool] = (True, False),
                    expiry: Sequence[int | None] = (None, 2_000, 10_000)) -> st.SearchStrategy[dict[str, Any]]:
    """``[cluster]`` tables: TV1 or TV2, KIP-890 verification among ``verification`` (off is KAFKA-12671's
    switch), ``producer.id.expiration.ms`` among ``expiry`` (None: Kafka's default; a short one gets a fast
    expiry check too, and a retry after it is a duplicate, as on Kafka), and the coordinator's abort sweep
    every 10 s (Kafka's default) or every second."""
    return st.builds(
        lambda tv, verification, expiry, sweep: {
            "transaction.version": tv,
            **({} if verification else {"transaction.partition.verification.enable": False}),
            **({} if expiry is None else {"producer.id.expiration.ms": expiry,
                                          "producer.id.expiration.check.interval.ms": 100}),
            **({} if sweep == ABORT_SWEEPS_MS[0] else
               {"transaction.abort.timed.out.transaction.cleanup.interval.ms": sweep})},
        _sampled((2, 1)), _sampled(tuple(verification)), _sampled(tuple(expiry)),
        _sampled(ABORT_SWEEPS_MS))


@_cached
def producer_configs(kind: str, transactional_id: str | None = None,
                     clients: tuple[str, ...] = CLIENTS) -> st.SearchStrategy[dict[str, Any]]:
    """Configurations of a ``transactional``, ``idempotent`` or ``plain`` producer: timeouts (transaction,
    message, socket), one record per batch or the client's batching, and maybe the Java client's shape
    (``eosim.client = "java"``, when ``clients`` has it; absent: librdkafka's), drawn."""
    base: dict[str, Any] = ({"transactional.id": transactional_id} if kind == "transactional"
                            else {"enable.idempotence": kind == "idempotent"})
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "socket.timeout.ms": _sampled((1_000, 5_000)),
        "batch.num.messages": st.just(1),
        "message.timeout.ms": _sampled(MESSAGE_TIMEOUTS_MS),
    }
    if "java" in clients:
        optional["eosim.client"] = st.just("java")
    if kind == "transactional":
        required["transaction.timeout.ms"] = _sampled(TXN_TIMEOUTS_MS)
    return st.fixed_dictionaries(required, optional=optional).map(lambda extra: _consistent({**base, **extra}))


# Long-lived state (docs/scenario-format.md): one producer in AGED_ONE_IN starts as a long-running one, at a boundary
# a long-lived cluster reaches: a transactional.id registered at epoch 0 or at most two bumps below exhaustion
# (TransactionMetadata.isEpochExhausted: >= Short.MaxValue - 1), an idempotent producer's next sequence at or just
# before the wrap from Int.MAX_VALUE to 0.
AGED_ONE_IN = 4
AGED_EPOCHS = (0, MAX_EPOCH - 3, MAX_EPOCH - 2, MAX_EPOCH - 1)
AGED_SEQUENCES = (0, MAX_SEQUENCE - 2, MAX_SEQUENCE - 1, MAX_SEQUENCE)


@_cached
def aged_states(kind: str) -> st.SearchStrategy[dict[str, Any] | None]:
    """An ``aged`` table for a producer of ``kind`` (None: it starts fresh, which shrinking prefers); a plain
    producer has no state to age."""
    if kind == "plain":
        return st.none()
    state = (st.fixed_dictionaries({"epoch": _sampled(AGED_EPOCHS)}) if kind == "transactional"
             else st.fixed_dictionaries({"sequence": _sampled(AGED_SEQUENCES)}))
    return st.integers(0, AGED_ONE_IN - 1).flatmap(lambda n: state if n == AGED_ONE_IN - 1 else st.none())


def _consistent(config: dict[str, Any]) -> dict[str, Any]:
    """librdkafka refuses socket.timeout.ms > transaction.timeout.ms + 100 and message.timeout.ms >
    transaction.timeout.ms: the shorter of each pair stays. The Java client refuses a delivery timeout
    (message.timeout.ms) under linger.ms + request.timeout.ms: then its default one stays."""
    if config.get("eosim.client") == "java":
        floor = config.get("socket.timeout.ms", JAVA_REQUEST_TIMEOUT_MS) + JAVA_LINGER_MS
        if config.get("message.timeout.ms", floor) < floor:
            del config["message.timeout.ms"]
        return config
    if config.get("socket.timeout.ms", 0) > config.get("transaction.timeout.ms", 60_000) + 100:
        del config["socket.timeout.ms"]
    if "transaction.timeout.ms" in config and config.get("message.timeout.ms", 0) > config["transaction.timeout.ms"]:
        del config["message.timeout.ms"]
    return config


# -- workloads -----------------------------------------------------------------------------------------

def _at(draw: Any, op: dict[str, Any]) -> dict[str, Any]:
    """``op`` with its slot (``_at``) drawn right beside it: the op and its place are deleted together."""
    return {**op, "_at": draw(st.integers(0, SLOTS))}


# Every repeated part (producers, transactions, records, reads) is a Hypothesis list, never a drawn count
# and a loop: the shrinker deletes a list element with its whole span of draws, and nothing else moves.
# Values are numbered when the program gets its actor's name (``_named``), after the draws.

@_cached
@st.composite
def _record(draw: Any, topic: str, partitions: int) -> list[dict[str, Any]]:
    """A produce (its value given later), maybe followed by a flush or a sleep."""
    ops = [_at(draw, {"op": "produce", "topic": topic, "partition": draw(st.integers(0, partitions - 1))})]
    extra = draw(_sampled(("", "flush", "sleep")))
    if extra == "flush":
        ops.append(_at(draw, {"op": "flush"}))
    elif extra == "sleep":
        ops.append(_at(draw, {"op": "sleep", "ms": draw(_sampled(SLEEPS_MS[1:]))}))
    return ops


@_cached
@st.composite
def _transaction(draw: Any, partitions: int, consumer: str | None) -> tuple[list[dict[str, Any]], bool]:
    """One transaction that commits, aborts or crashes (then a restart and a new init, or never again:
    the coordinator's timeout ends it); the ops, and whether the program goes on after it."""
    ops = [_at(draw, {"op": "begin_transaction"})]
    if consumer is not None:
        ops.append(_at(draw, {"actor": consumer, "op": "consume", "max_records": draw(st.integers(1, 3)),
                              "timeout_ms": 500}))
    body = [op for record in draw(_lists(_record(OUT, partitions), 1, 3)) for op in record]
    if consumer is not None:
        body.append(_at(draw, {"op": "send_offsets_to_transaction", "consumer": consumer}))
    ending = draw(_sampled(("commit", "abort", "crash")))
    if ending != "crash":
        return ops + body + [_at(draw, {"op": f"{ending}_transaction"})], True
    ops += body[:draw(st.integers(0, len(body)))] + [_at(draw, {"op": "crash"})]
    if not draw(st.booleans()):
        return ops, False
    return ops + [_at(draw, {"op": "restart"}), _at(draw, {"op": "sleep", "ms": draw(_sampled(SLEEPS_MS))}),
                  _at(draw, {"op": "init_transactions"})], True


@_cached
@st.composite
def _transactions(draw: Any, partitions: int, consumer: str | None) -> list[dict[str, Any]]:
    """init_transactions, then 1-3 transactions (none after a crash that is never restarted)."""
    ops: list[dict[str, Any]] = [_at(draw, {"op": "init_transactions"})]
    for transaction, goes_on in draw(_lists(_transaction(partitions, consumer), 1, 3)):
        ops += transaction
        if not goes_on:
            break
    return ops


@_cached
@st.composite
def _sends(draw: Any, topic: str, partitions: int) -> list[dict[str, Any]]:
    records = draw(_lists(_record(topic, partitions), 1, 4))
    return [op for record in records for op in record] + [_at(draw, {"op": "flush"})]


@_cached
@st.composite
def _read(draw: Any) -> dict[str, Any]:
    return _at(draw, {"op": "consume", "timeout_ms": draw(_sampled((300, 2_000)))})


@_cached
@st.composite
def _producer(draw: Any, producers: Sequence[str], partitions: int,
              clients: tuple[str, ...] = CLIENTS) -> tuple[str, int, dict[str, Any], bool, Any, Any, Any]:
    """One producer, drawn as a whole (so that Hypothesis deletes it as a whole and no other producer's draws
    move): its kind, the number of its transactional.id (1-3: two may share one, and the later init fences
    the earlier), its config, whether it is the consume-transform-produce application's producer, its
    program, its aged state (``aged_states``) or None, and the program of the application's source (used when
    this producer is the application's)."""
    kind = draw(_sampled(tuple(producers)))
    # drawn whatever the kind, and the application's ops whether it runs it or not (``_named`` drops them):
    # the shrinker flips a choice without moving the draws after it
    tid = draw(st.integers(1, 3)) if kind == "transactional" else 0
    config = draw(producer_configs(kind, f"tx-{tid}" if tid else None, clients))
    ctp = draw(st.booleans()) and kind == "transactional"
    # the application's input too, drawn whether it runs or not: drawn after every producer only when one
    # runs it, these draws moved the rest of the example when that one was deleted or its choice flipped
    source = draw(_sends("in", 1))
    if kind != "transactional":
        program = draw(_sends(OUT, partitions))
    else:
        program = draw(_transactions(partitions, "app"))
    return kind, tid, config, ctp, program, draw(aged_states(kind)), source


@_cached
def _optional(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | elements


def _places(draw: Any, elements: st.SearchStrategy[Any], places: int) -> list[tuple[int, Any]]:
    """``places`` optional elements, each absent (None) or drawn: the present ones with their place (0-based).
    Hypothesis's shrinker deletes an element by lowering its branch choice to None and the span after it, at
    any place; in a list it deletes the last element well, the first of a list with a minimum size never,
    and it sorts the simplest elements (those that matter least) to the front."""
    return [(i, value) for i in range(places) if (value := draw(_optional(elements))) is not None]


def _named(program: list[dict[str, Any]], actor: str, ctp: bool = False) -> list[dict[str, Any]]:
    """A drawn program under its actor's name: its values numbered (``p1-0``, ``p1-1``, ...); without the
    application, its consume and offsets ops go."""
    named, produced = [], 0
    for op in program:
        if not ctp and (op.get("actor") == "app" or op["op"] == "send_offsets_to_transaction"):
            continue
        if op["op"] == "produce":
            op, produced = {**op, "value": f"{actor}-{produced}"}, produced + 1
        named.append(op)
    return named


@st.composite
def workloads(draw: Any, max_producers: int = 3, producers: Sequence[str] = PRODUCER_KINDS,
              readers: Sequence[str] = ISOLATION_LEVELS, clients: Sequence[str] = CLIENTS) -> Workload:
    """1 to ``max_producers`` producers of the ``producers`` kinds (transactional, idempotent, plain), each
    librdkafka's or (when ``clients`` has it) the Java client's, maybe a
    consume-transform-produce application (fed by its own source, run by the first transactional producer
    that drew it), maybe readers of the ``readers`` isolation levels, on a topic of 1-3 partitions."""
    partitions = draw(st.integers(1, 3))
    # a producer at each of max_producers places, or none; ``p<place>``: deleting one renames no other
    placed = _places(draw, _producer(tuple(producers), partitions, tuple(clients)), max_producers)
    assume(placed)
    names = [f"p{i + 1}" for i, _p in placed]
    drawn = [producer for _i, producer in placed]
    topics = {OUT: partitions}
    actors: dict[str, dict[str, Any]] = {}
    programs: dict[str, list[dict[str, Any]]] = {}
    app = next((i for i, producer in enumerate(drawn) if producer[3]), None)
    aged_ids: set[str] = set()
    for i, (_kind, _tid, config, _ctp, program, aged, _source) in enumerate(drawn):
        actor = names[i]
        if aged and "transactional.id" in config:  # the coordinator holds one epoch per id: the first one ages it
            aged = None if config["transactional.id"] in aged_ids else aged
            aged_ids.add(config["transactional.id"])
        actors[actor] = {"kind": "producer", "config": config, **({"aged": aged} if aged else {})}
        programs[actor] = _named(program, actor, i == app)
    if app is not None:
        topics["in"] = 1
        actors["app"] = {"kind": "consumer", "config": {"group.id": "app", "isolation.level": "read_committed",
                                                        "auto.offset.reset": "earliest", "enable.auto.commit": False}}
        actors["source"] = {"kind": "producer", "config": {"enable.idempotence": True}}
        programs["source"] = _named(drawn[app][6], "source")
        programs["app"] = [{"op": "assign", "partitions": [{"topic": "in", "partition": 0}], "_at": 0}]
    # a reader of each isolation level, or none, its program drawn beside it
    for isolation in readers:
        program = draw(_optional(_reader(partitions)))
        if program is None:
            continue
        reader = f"r{ISOLATION_LEVELS.index(isolation) + 1}"  # r1 read_committed, r2 read_uncommitted
        actors[reader] = {"kind": "consumer", "config": {"group.id": reader, "isolation.level": isolation,
                                                         "enable.auto.commit": False}}
        programs[reader] = program
    return Workload(topics, actors, programs)


@_cached
@st.composite
def _reader(draw: Any, partitions: int) -> list[dict[str, Any]]:
    """A reader's program: assign every partition of the output, then 1-2 reads."""
    program = [_at(draw, {"op": "assign", "partitions": [
        {"topic": OUT, "partition": p, "offset": "beginning"} for p in range(partitions)]})]
    return program + draw(_lists(_read(), 1, 2))


# -- fault schedules -----------------------------------------------------------------------------------

def _transactional_ids(workload: Workload) -> list[str]:
    return sorted({a["config"]["transactional.id"] for a in workload.actors.values()
                   if "transactional.id" in a["config"]})


# What a fault names is drawn from fixed vocabularies, not by its place among the workload's actors: deleting
# another actor (or transactional.id) then neither retargets the fault nor moves its other draws. The vocabulary is
# every name ``workloads`` gives (its producers are named by their places, ``_places``), the brokers, and the
# transactional.ids ``_producer`` draws.
NODE_NAMES = ("p1", "p2", "p3", "r1", "r2", "app", "source", BROKER, "broker-2", "broker-3")
TRANSACTIONAL_IDS = ("tx-1", "tx-2", "tx-3")


def _who(draw: Any, present: Sequence[str], names: Sequence[str] = NODE_NAMES) -> str:
    """One of ``present`` (not empty), by a draw from the fixed ``names``: the drawn name if present, else (its actor
    gone, or a scenario explored around has other names) the present one at the drawn index, modulo."""
    i = draw(st.integers(0, len(names) - 1))
    return names[i] if names[i] in present else sorted(present)[i % len(present)]


def exchanged(workload: Workload) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Which node sends which of ``WORKLOAD_APIS`` in ``workload``, on any cluster: ``(node, APIs)`` pairs, the broker's
    own requests under ``BROKER``. As the simulator's clients send them (and Kafka's): a transactional producer
    InitProducerId, AddPartitionsToTxn (AddOffsetsToTxn and TxnOffsetCommit with offsets), Produce if it produces,
    EndTxn if it commits or aborts; an idempotent one InitProducerId and Produce; a plain one Produce; a consumer Fetch,
    ListOffsets, and OffsetFetch unless it assigns every partition at a given offset. The broker sends WriteTxnMarkers
    and AddPartitionsToTxn (KIP-890 verification, or a TV2 add) when a producer is transactional. The cluster is drawn
    after the schedule, so what depends on it (verification off, a Java producer's TV2 adds) counts as sent."""
    ops: dict[str, list[dict[str, Any]]] = {}
    for owner, program in workload.programs.items():
        for op in program:
            ops.setdefault(op.get("actor", owner), []).append(op)
    sent: dict[str, tuple[str, ...]] = {}
    for name, actor in workload.actors.items():
        config, mine = actor.get("config", {}), ops.get(name, [])
        produces = any(op["op"] == "produce" for op in mine)
        if actor.get("kind") == "consumer":
            positioned = all("offset" in p for op in mine if op["op"] == "assign" for p in op.get("partitions", ()))
            sent[name] = ("Fetch", "ListOffsets", *(() if positioned else ("OffsetFetch",)))
        elif "transactional.id" in config:
            offsets = any(op["op"] == "send_offsets_to_transaction" for op in mine)
            ends = any(op["op"] in ("commit_transaction", "abort_transaction") for op in mine)
            sent[name] = ("InitProducerId", "AddPartitionsToTxn", *(("Produce",) if produces else ()),
                          *(("EndTxn",) if ends else ()), *(("AddOffsetsToTxn", "TxnOffsetCommit") if offsets else ()))
            sent[BROKER] = BROKER_APIS
        elif config.get("enable.idempotence", config.get("eosim.client") == "java"):
            sent[name] = ("InitProducerId", *(("Produce",) if produces else ()))
        else:
            sent[name] = ("Produce",) if produces else ()
    return tuple(sorted(sent.items()))


# A rule's message: half the time one of the exactly-once APIs, else any API a workload sends.
MESSAGES = st.sampled_from(EOS_APIS) | st.sampled_from(WORKLOAD_APIS)


def _among(api: str, present: Sequence[str]) -> str:
    """``api`` if ``present`` has it, else the present one at its index in ``WORKLOAD_APIS``, modulo (as ``_who``): a
    message nobody sends takes one that is sent, and every message that is sent keeps its own draws' probability."""
    return api if api in present else sorted(present)[WORKLOAD_APIS.index(api) % len(present)]


def _everyone(sent: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[str, ...]:
    """Every API a run exchanges (any sender's), or, knowing none (no actor), every API a workload may send."""
    apis = tuple(sorted({api for _node, apis in sent for api in apis}))
    return apis or WORKLOAD_APIS


@_cached
@st.composite
def _rule(draw: Any, kind: str, nodes: Sequence[str], transactional_ids: Sequence[str],
          sent: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> dict[str, Any]:
    """A rule of ``kind`` whose message is one the messages it selects carry in this run (``sent``: ``exchanged``): an
    API drawn as ever and, when nobody it aims at sends it, mapped to one they do (``_among``), so a rule
    on a message nobody exchanges, which strikes nothing, is not drawn; an error is one that API's answer can carry."""
    rule: dict[str, Any] = {"count": draw(_sampled((1, 2, 3, "until-healed")))}
    if kind == "txn-log":  # the coordinator's own write to __transaction_state fails
        rule |= {"action": "error", "message": "TxnLogAppend",
                 "error": draw(_sampled(sorted(e.name for e in TXN_LOG_APPEND_ERRORS)))}
        if rule["count"] == "until-healed":
            rule["count"] = 3
        if draw(st.booleans()) and transactional_ids:
            rule["transactional_id"] = _who(draw, transactional_ids, TRANSACTIONAL_IDS)
        return rule
    rule["action"] = kind
    sends = dict(sent)
    # whose messages: anyone's, those on one node's connections, or the broker's own requests (and their
    # answers), which share their API with a client's: the leader's verification, the coordinator's markers
    aim = draw(_sampled(("any", "node", "own")))
    if aim == "own" and BROKER not in sends:
        aim = "any"  # the broker sends nothing of its own in this run (no transactional producer)
    if aim == "node":
        rule["node"] = node = _who(draw, (*nodes, BROKER))
        present = sends.get(node, ()) if node != BROKER else ()  # the broker's connections carry every message
    elif aim == "own":
        present = sends[BROKER]
    else:
        present = ()
    rule["message"] = api = _among(draw(_sampled(BROKER_APIS) if aim == "own" else MESSAGES), present or _everyone(sent))
    if kind == "error":
        rule["error"] = draw(_sampled(sorted(e.name for e in INFRASTRUCTURE_ERRORS[api])))
    else:
        rule["direction"] = draw(_sampled(("response", "request")))
        if kind == "delay":
            rule["ms"] = draw(_sampled(DELAYS_MS))
    if aim == "own":
        rule["src"] = BROKER
    if rule["count"] == "until-healed" and (aim == "own" or api == "WriteTxnMarkers"):
        # the broker's channels resend at once (markers every reconnect.backoff.ms, 50 ms): a fault on them
        # until healed makes a marker per resend for the rest of the run, slow to simulate and nothing new
        rule["count"] = 3
    return rule


@_cached
@st.composite
def _group(draw: Any, kind: str, actors: Sequence[str], transactional: Sequence[str],
           slots: int, brokers: Sequence[str] = (BROKER,)) -> list[dict[str, Any]]:
    group = _ops_of_group(draw, kind, actors, transactional, brokers)
    return [{**group[0], "_at": draw(st.integers(0, slots))}, *group[1:]]


def _ops_of_group(draw: Any, kind: str, actors: Sequence[str], transactional: Sequence[str],
                  brokers: Sequence[str] = (BROKER,)) -> list[dict[str, Any]]:
    """``brokers``: the cluster's; with more than one, a broker-restart kills and restarts one of broker-2 ..
    broker-N (a killed process) and a partition, clog or disconnect may strike one of them."""
    sleep = {"op": "sleep", "ms": draw(_sampled(SLEEPS_MS[1:]))}
    others = tuple(brokers[1:])
    if kind == "coordinator-failover":
        first = {"op": "coordinator_failover", "down_ms": draw(_sampled((0, 100, 3_000))),
                 "load_ms": draw(_sampled((10, 300)))}
        if not draw(st.booleans()):
            return [first]
        # a second one, maybe while the first is still down
        return [first, {"op": "sleep", "ms": draw(st.integers(0, 4_000))},
                {"op": "coordinator_failover", "down_ms": draw(_sampled((0, 100, 5_000))),
                 "load_ms": draw(_sampled((10, 300)))}]
    if kind == "broker-restart" and others:
        broker = draw(_sampled(others))
        return [{"op": "crash_broker", "broker": broker}, sleep, {"op": "restart_broker", "broker": broker}]
    if kind == "broker-restart":
        return [{"op": "crash_broker"}, sleep, {"op": "restart_broker", "load_ms": draw(_sampled((10, 300)))}]
    if kind == "pause":
        return [{"op": "pause", "nodes": [_who(draw, transactional or actors)],
                 "ms": draw(_sampled(PAUSES_MS))}]
    nodes = [_who(draw, (*actors, *(others or (BROKER,))))]
    if kind == "disconnect-nodes":
        return [{"op": "disconnect", "nodes": nodes}]
    cut: dict[str, Any] = {"op": kind, "nodes": nodes}
    if kind == "clog":
        cut["ms"] = draw(_sampled((100, 1_500, 6_000)))
    return [cut, sleep, {"op": "heal"}]


@_cached
def _trigger(slots: int, message: str, actors: tuple[str, ...],
             sent: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> st.SearchStrategy[dict[str, Any]]:
    """When a rule is armed: from the start, at a slot of the step order, or after one node's k-th request of an
    API (``_counted``)."""
    return st.one_of(st.just({}), st.integers(1, slots).map(lambda s: {"after_slot": s}),
                     _counted(message, actors, sent))


@_cached
@st.composite
def _counted(draw: Any, message: str, actors: tuple[str, ...],
             sent: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> dict[str, Any]:
    """Armed after the k-th request of an API, counted among the requests of one node (``after_node``) that sends it in
    this run (``sent``: ``exchanged``): an actor, or the broker for its own requests. The API is the rule's own
    ``message`` a third of the time (one branch of three; the other two draw as a rule's message does, ``MESSAGES``,
    and may give it too): the rule then strikes the messages of that API after the k-th one (a broker's own request,
    a verification, a marker, comes after the client's of the same API). Anchored so, deleting another actor's steps
    moves not the moment the rule is armed; counting an API its node never sends, a rule would never be armed."""
    everyone = _everyone(sent)
    api = _among(draw(_sampled((message,)) | MESSAGES if message in WORKLOAD_APIS else MESSAGES), everyone)
    k = draw(st.integers(1, 4))
    senders = tuple(node for node, apis in sent if api in apis) or (
        (BROKER,) if api == "WriteTxnMarkers" else (*actors, BROKER) if api in BROKER_APIS else actors)
    return {"after_message": api, "after_count": k, "after_node": _who(draw, senders)}


# A fault kind as a strike of the clocked nemesis ([[nemesis.strikes]], docs/scenario-format.md)
# (not broker-restart: a crash on the clock could meet a crash_broker step of a scenario explored around)
STRIKE_KINDS = {"drop": "drop", "delay": "delay", "error": "error", "txn-log": "txn-log", "partition": "partition",
                "clog": "clog", "pause": "pause", "disconnect-nodes": "disconnect",
                "coordinator-failover": "coordinator-failover"}
# Most drawn workloads are done within a second or two of simulated time (sleeps aside), so most strike
# times fall there; the rest reach the long sleeps and timeouts.
STRIKE_TIMES_MS = (0, 10, 50, 100, 200, 500, 1_000, 2_000, 3_000, 5_000, 10_000, 30_000, 60_000)
STRIKE_DURATIONS_MS = (100, 1_000, 3_000, 10_000, 40_000)


@_cached
@st.composite
def _strike(draw: Any, kind: str, actors: Sequence[str]) -> dict[str, Any]:
    """One clocked nemesis strike of ``kind``: at a drawn time, for a drawn duration."""
    strike: dict[str, Any] = {"at_ms": draw(_sampled(STRIKE_TIMES_MS) | st.integers(0, 2_000)
                                            | st.integers(0, 70_000)),
                              "kind": STRIKE_KINDS[kind]}
    if kind not in ("txn-log", "coordinator-failover"):
        strike["target"] = _who(draw, actors)
    strike["duration_ms"] = draw(_sampled(STRIKE_DURATIONS_MS))
    if kind in ("drop", "delay", "error", "txn-log"):
        strike["count"] = draw(st.integers(1, 3))
    if kind in ("delay", "clog"):
        strike["ms"] = draw(_sampled(DELAYS_MS))
    if kind == "error":
        strike["error"] = draw(_sampled(sorted({e.name for errors in INFRASTRUCTURE_ERRORS.values()
                                                       for e in errors})))
    elif kind == "txn-log":
        strike["error"] = draw(_sampled(sorted(e.name for e in TXN_LOG_APPEND_ERRORS)))
    return strike


@st.composite
def fault_schedules(draw: Any, workload: Workload, kinds: Sequence[str] = FAULT_KINDS,
                    max_faults: int = 4, max_strikes: int = 6, brokers: int = 1) -> Schedule:
    """A schedule for ``workload``: swarm testing draws which of ``kinds`` this example may use, then up
    to ``max_faults`` faults of those kinds aimed at the protocol (a rule armed at a slot of the step
    order or by the k-th request of an API; nemesis ops at a slot), and up to ``max_strikes`` on the
    clock (strikes of the nemesis at drawn times, while the workload goes on). Each fault is drawn on its
    own: deleting one changes no other. A rule's message and trigger are among the messages ``workload`` exchanges
    (``exchanged``). ``brokers`` > 1: the broker ops strike broker-2 .. broker-N (a coordinator moves when its broker
    dies, so no coordinator-failover)."""
    if brokers > 1:
        kinds = [k for k in kinds if k != "coordinator-failover"]
    if not kinds:
        return Schedule([], [])
    # the swarm has at least one kind (an empty one made 19 % of documents fault-free on top of the empty fault and
    # strike lists, which still give a quarter of them no fault: docs/exploration.md, "Session 8: yield")
    enabled = draw(_lists(_sampled(tuple(kinds)), 1, len(kinds), True))
    actors = tuple(sorted(workload.actors))
    producers = tuple(sorted(a for a, spec in workload.actors.items() if "transactional.id" in spec["config"]))
    faults = draw(_lists(_fault(tuple(kinds), tuple(enabled), actors, producers,
                                tuple(_transactional_ids(workload)), _slots(workload), broker_nodes(brokers),
                                exchanged(workload)),
                         0, max_faults))
    rules = [{"name": f"f{n}", **rule} for n, rule in enumerate((f for kind, f in faults if kind in RULE_KINDS), 1)]
    groups = [group for kind, group in faults if kind not in RULE_KINDS]
    clocked = tuple(kind for kind in enabled if kind in STRIKE_KINDS)
    strikes = draw(_lists(_clocked(tuple(k for k in kinds if k in STRIKE_KINDS), clocked, actors), 0, max_strikes)
                   ) if clocked else []
    return Schedule(rules, groups, sorted(strikes, key=lambda s: s["at_ms"]))


def _kind(draw: Any, kinds: Sequence[str], enabled: Sequence[str]) -> str:
    """A kind of ``enabled`` (the example's swarm), drawn from all ``kinds``: a drawn kind not enabled is the enabled
    one at its index, modulo. So shrinking the swarm (deleting a kind no fault has) changes no fault's kind."""
    i = draw(st.integers(0, len(kinds) - 1))
    return kinds[i] if kinds[i] in enabled else enabled[i % len(enabled)]


@_cached
@st.composite
def _fault(draw: Any, kinds: tuple[str, ...], enabled: tuple[str, ...], actors: tuple[str, ...],
           producers: tuple[str, ...], transactional_ids: tuple[str, ...], slots: int,
           brokers: tuple[str, ...], sent: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> tuple[str, Any]:
    """One fault, its kind and all of it drawn in one span (a list element: the shrinker deletes it whole): a
    rule with its trigger, or a group of nemesis ops."""
    kind = _kind(draw, kinds, enabled)
    if kind in RULE_KINDS:
        rule = draw(_rule(kind, actors, transactional_ids, sent))
        return kind, {**rule, **draw(_trigger(slots, rule["message"], actors, sent))}
    return kind, draw(_group(kind, actors, producers, slots, brokers))


@_cached
@st.composite
def _clocked(draw: Any, kinds: tuple[str, ...], enabled: tuple[str, ...], actors: tuple[str, ...]) -> dict[str, Any]:
    """One strike, its kind and all of it drawn in one span."""
    return draw(_strike(_kind(draw, kinds, enabled), actors))


def _slots(workload: Workload) -> int:
    """The last slot of the step order: SLOTS + 1 (after every drawn op), or a given program's length."""
    ops = [op for program in workload.programs.values() for op in program]
    return SLOTS + 1 if all("_at" in op for op in ops) else len(ops)


# -- scenarios -----------------------------------------------------------------------------------------

def compose(workload: Workload, schedule: Schedule, cluster: dict[str, Any], *, name: str = "explored",
            description: str = "a workload and fault schedule drawn by eosim.strategies") -> dict[str, Any]:
    """The scenario document: the programs merged by slot (the op whose actor is ready earliest goes next,
    an actor ready at the largest slot of its ops so far; ties by the actors' order in the workload), the
    nemesis groups put at their slots, rules' ``after_slot`` resolved to an ``after_step``. Nothing is drawn
    here: an op's place depends on its own slot and its actor's earlier ops only."""
    setup = [a for a in ("source", "app") if a in workload.programs]  # consume-transform-produce input first
    steps: list[dict[str, Any]] = [_step(a, op) for a in setup for op in workload.programs[a]]
    keyed: list[tuple[int, int, int, str, dict[str, Any]]] = []  # (ready slot, actor's place, index, actor, op)
    # ties go by the actors' places in the workload (the order they were drawn in), not their names: deleting
    # one actor changes no other's place relative to the rest (a scenario explored around names its own actors)
    for place, (actor, program) in enumerate(workload.programs.items()):
        if actor in setup:
            continue
        ready = 0
        for i, op in enumerate(program):
            ready = max(ready, op.get("_at", i))
            keyed.append((ready, place, i, actor, op))
    keyed.sort(key=lambda k: k[:3])
    # a group at slot s goes before every step ready at s or later, and after the setup
    groups = sorted(((g[0].get("_at", 0), n, g) for n, g in enumerate(schedule.groups)), key=lambda g: g[:2])
    merged: list[dict[str, Any]] = []
    ready_at: list[int] = []  # each merged step's slot
    for ready, _place, _i, actor, op in [*keyed, (None, 0, 0, "", None)]:
        while groups and (ready is None or groups[0][0] <= ready):
            slot, _n, group = groups.pop(0)
            merged += [_step("nemesis", op) for op in group]
            ready_at += [slot] * len(group)
        if op is not None:
            merged.append(_step(actor, op))
            ready_at.append(ready)
    steps += merged
    offset = len(steps) - len(merged)
    rules = []
    for rule in schedule.rules:
        rule = dict(rule)
        if "after_slot" in rule:  # once every step of a slot below it is done
            slot = rule.pop("after_slot")
            done = offset + sum(1 for r in ready_at if r < slot)
            if done:
                rule["after_step"] = done - 1
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


def _step(actor: str, op: dict[str, Any]) -> dict[str, Any]:
    """A step table: the op under its actor (unless it names its own), without its slot (a given step is
    itself: the explorer finds a scenario's own steps by identity)."""
    if "actor" in op and "_at" not in op:
        return op
    step = {k: v for k, v in op.items() if k != "_at"}
    return step if "actor" in step else {"actor": actor, **step}


@st.composite
def scenario_documents(draw: Any, kinds: Sequence[str] = FAULT_KINDS, max_producers: int = 3,
                       producers: Sequence[str] = PRODUCER_KINDS, readers: Sequence[str] = ISOLATION_LEVELS,
                       cluster: st.SearchStrategy[dict[str, Any]] | None = None, brokers: int = 1) -> dict[str, Any]:
    """Scenario documents (the loader's tables) of a workload, a fault schedule and a cluster config; with
    ``brokers`` > 1 on a cluster of that many brokers (the workload's topics single-replica on broker-1, the
    internal topics replicated: killing broker-2 .. broker-N moves the coordinators)."""
    workload = draw(workloads(max_producers, producers, readers))
    if brokers > 1:  # aged state is a single broker's (docs/scenario-format.md, Long-lived state)
        workload = Workload(workload.topics, {name: {k: v for k, v in actor.items() if k != "aged"}
                                              for name, actor in workload.actors.items()}, workload.programs)
    schedule = draw(fault_schedules(workload, kinds, brokers=brokers))
    config = draw(cluster if cluster is not None else cluster_configs())
    return compose(workload, schedule, config if brokers == 1 else {**config, "brokers": brokers})


def scenarios(kinds: Sequence[str] = FAULT_KINDS, max_producers: int = 3, producers: Sequence[str] = PRODUCER_KINDS,
              readers: Sequence[str] = ISOLATION_LEVELS,
              cluster: st.SearchStrategy[dict[str, Any]] | None = None, brokers: int = 1) -> st.SearchStrategy[Any]:
    """Loaded scenarios (``eosim._scenario.Scenario``), ready for ``eosim._runner.run_scenario``."""
    from eosim._scenario import scenario_from_dict

    return scenario_documents(kinds, max_producers, producers, readers, cluster, brokers).map(
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
          ms=_sampled(DELAYS_MS))
    def lose_responses(self, action: str, api: str, count: int, ms: int) -> None:
        from eosim import Fault

        self.faults += 1
        self.sim.add_fault(Fault(name=f"f{self.faults}", action=action, message=api, direction="response",
                                 count=count, **({"ms": ms} if action == "delay" else {})))

    @precondition(lambda self: bool(self.CLIENTS))
    @rule(data=st.data(), ms=st.sampled_from(LOOP_PAUSES_MS))
    def pause(self, data: Any, ms: int) -> None:
        self.sim.pause(data.draw(_sampled(self.CLIENTS), label="client"), ms)

    @precondition(lambda self: bool(self.CLIENTS))
    @rule(data=st.data())
    def disconnect(self, data: Any) -> None:
        self.sim.disconnect([data.draw(_sampled(self.CLIENTS), label="client")])

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
