"""eosim._simulation
=================

The public API's simulation (docs/api.md): a ``Simulation`` holds one world (seed, integer-ms clock),
one simulated cluster, the fault layer and the run's Jepsen history. An application written against
confluent-kafka's API runs in it as SimPy processes; ``Producer(config)`` and ``Consumer(config)``
join the *active* simulation, the one whose ``with`` block or ``run()`` is in progress (a context
variable, as ``decimal.localcontext`` does), so a ported program needs no extra constructor argument.

The clients made here are the simulated confluent-kafka clients plus history recording: every
transaction, send, poll, assign and subscribe goes into the run's history through the one recorder
(eosim._history) the scenario interpreter uses too, so ``Simulation.check()`` judges a user's own loop
with the same checkers as a scenario.

Naming: a client's node (what fault selectors and nemesis ops name) is its ``client.id`` when given,
else ``producer``/``consumer``; the n-th client of a node is ``node#n`` in the trace, and its Jepsen
process is ``node`` for the first and ``node#n`` after, as a restarted scenario actor.
"""

from __future__ import annotations

import copy
import inspect
import re
from contextvars import ContextVar, Token
from typing import Any, Callable, Generator, Iterable, Mapping

import simpy
from attrs import define, field

from eosim import _scenario as sc
from eosim._checkers import CheckResult, combine
from eosim._checkers.jepsen import check_history
from eosim._checkers.oracle import check_trace
from eosim._checkers.pipeline import check_pipeline
from eosim._client import consumer as _consumer, producer as _producer
from eosim._client.errors import KafkaError, KafkaException
from eosim._client.handle import UsageError
from eosim._client.message import Message, TopicPartition
from eosim._cluster import Cluster
from eosim._topology import COORDINATOR_LOAD_MS, cluster_config
from eosim._diagram import mermaid
from eosim._faults import FaultLayer, node_of
from eosim._history import History, Send
from eosim._judge import ORACLE_KINDS
from eosim._observation import PartitionObservation
from eosim._runner import observe_partitions, settle as settle_run
from eosim._timeline import timeline_html
from eosim._world import World

_ACTIVE: ContextVar[Simulation | None] = ContextVar("eosim.simulation", default=None)
_NODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")  # no "/" or "#": they separate connection and incarnation


def _active(kind: str) -> Simulation:
    sim = _ACTIVE.get()
    if sim is None:
        raise UsageError(f"eosim.{kind}(config) joins the active Simulation, and none is: create it inside "
                         f"`with sim:` or in a process of sim.process(...) (docs/api.md)")
    return sim


def _ms(value: Any, what: str, *, low: int = 0) -> int:
    if type(value) is not int:
        raise TypeError(f"{what} is simulated time in integer milliseconds, got {value!r}")
    if value < low:
        raise ValueError(f"{what} must be >= {low}, got {value}")
    return value


def _mapping(value: Any, what: str, shape: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"Simulation({what}=...) is a dict of {shape}, got {value!r}")
    return dict(value)


@define(eq=False)
class Simulation:
    """One simulated Kafka cluster and the applications that run against it.

    Args:
        topics: topic name -> partition count, created before anything runs.
        seed: the seed of every random stream (same seed and program = the same run, byte for byte).
        cluster: broker properties by Kafka's dotted names (``transaction.max.timeout.ms``, ...), over
            the test profile the scenarios use (docs/api.md).
    """

    topics: dict[str, int] = field(converter=lambda v: _mapping(v, "topics", "topic name -> partition count"))
    seed: int = 1
    cluster: dict[str, Any] = field(factory=dict,
                                    converter=lambda v: _mapping(v, "cluster", "broker property -> value"))
    _world: World = field(init=False, repr=False)
    _cluster: Cluster = field(init=False, repr=False)
    _faults: FaultLayer = field(init=False, repr=False)
    _history: History = field(init=False, repr=False)
    _clients: dict[str, dict[str, Any]] = field(init=False, factory=dict, repr=False)  # node -> its first config
    _incarnations: dict[str, int] = field(init=False, factory=dict, repr=False)
    _members: dict[str, Producer | Consumer] = field(init=False, factory=dict, repr=False)  # node -> latest client
    _rules: list[sc.Fault] = field(init=False, factory=list, repr=False)
    _tokens: list[Token] = field(init=False, factory=list, repr=False)

    def __attrs_post_init__(self) -> None:
        if type(self.seed) is not int or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        self._check()
        self._world = World(self.seed)
        self._cluster = Cluster(self._world, cluster_config(self.cluster), dict(self.topics))
        self._faults = FaultLayer.attach(self._world, self._cluster.network, self._cluster.broker_node)
        self._history = History(clock=lambda: self._world.now)

    def _check(self, faults: tuple[sc.Fault, ...] = ()) -> None:
        try:
            sc.check_parts(topics=self.topics, cluster=self.cluster, actors=self._clients, faults=faults,
                           what="Simulation")
        except sc.ScenarioError as err:
            raise ValueError(str(err)) from None

    # -- the context clients join ---------------------------------------------------------------------

    def __enter__(self) -> Simulation:
        self._tokens.append(_ACTIVE.set(self))
        return self

    def __exit__(self, *exc: object) -> None:
        _ACTIVE.reset(self._tokens.pop())

    # -- time and processes ---------------------------------------------------------------------------

    @property
    def now(self) -> int:
        """Simulated time, in ms since the start."""
        return self._world.now

    @property
    def env(self) -> simpy.Environment:
        """The SimPy environment, for ``env.any_of``, ``env.event()`` and the like."""
        return self._world.env

    @property
    def bootstrap_servers(self) -> str:
        """What a client's ``bootstrap.servers`` may say (it may also be left out)."""
        return ",".join(self._cluster.bootstrap_servers)

    @property
    def brokers(self) -> tuple[str, ...]:
        """The broker nodes: one broker leads every partition and hosts both coordinators."""
        return (self._cluster.broker,)

    def process(self, generator: Generator) -> simpy.Process:
        """Run ``generator`` (an application loop, a nemesis) as a process of the simulation; it runs
        during ``run()``. An exception it raises ends ``run()`` with that exception."""
        if not inspect.isgenerator(generator):
            raise TypeError(f"process() takes a generator, such as loop() for `def loop(): ... yield ...`, "
                            f"got {generator!r}")
        return self._world.env.process(generator)

    def sleep(self, ms: int) -> simpy.Timeout:
        """An event ``ms`` from now: ``yield sim.sleep(100)``."""
        return self._world.env.timeout(_ms(ms, "sleep(ms)"))

    def run(self, ms: int) -> None:
        """Run the simulation for ``ms`` more milliseconds of simulated time."""
        until = self.now + _ms(ms, "run(ms)")
        with self:
            self._world.env.run(until=until)

    def settle(self) -> None:
        """End the faults and let Kafka finish, as a scenario run does after its steps: heal everything,
        disarm the fault rules, stop the random nemesis, then run a fault-free second and on until Kafka's
        own timers (transaction.timeout.ms, the abort sweep, the markers' retries) have decided every
        transaction still open, so ``check()`` can judge it rather than call it unknown."""
        with self:
            settle_run(self._world, self._cluster, self._faults)

    # -- clients --------------------------------------------------------------------------------------

    def _join(self, kind: str, config: Mapping[str, Any], client: Callable[[str], None]) -> str:
        """Open ``client`` under its trace name; returns its Jepsen process. Its node joins the fault
        layer's graph."""
        node = str(config.get("client.id", kind))
        if not _NODE.fullmatch(node) or node in (sc.NEMESIS, *self.brokers):
            raise ValueError(f'client.id "{node}" cannot name a simulated client: use a letter, then letters, '
                             f'digits, ".", "_" and "-", and not "{sc.NEMESIS}" or a broker\'s name')
        n = self._incarnations.get(node, 0) + 1
        client(f"{node}#{n}")  # a config it refuses raises here, and nothing is registered
        self._incarnations[node] = n
        self._clients.setdefault(node, dict(config))
        self._faults.add_actor(node)
        return node if n == 1 else f"{node}#{n}"

    def crash(self, client: str | Producer | Consumer) -> None:
        """Kill the client's process (a client, or its node name: its latest incarnation): no flush, no
        EndTxn, no LeaveGroup (docs/client.md). The same as ``client.crash()``. Make a new client with the
        same client.id to restart it."""
        if isinstance(client, str):
            (name,) = self._nodes([client])
            if name not in self._members:
                raise ValueError(f"crash() kills a client, not the broker {name}: use crash_broker()")
            client = self._members[name]
        elif not isinstance(client, (Producer, Consumer)):
            raise TypeError(f"crash() takes an eosim.Producer or eosim.Consumer or its client.id, got {client!r}")
        client.crash()

    # -- faults ---------------------------------------------------------------------------------------

    def add_fault(self, fault: sc.Fault, *, at_ms: int | None = None) -> None:
        """Arm a fault rule (docs/faults.md) now, or at ``at_ms``. It is checked as the scenario loader
        checks ``[[faults]]``; a ``node`` or ``transactional_id`` it names must belong to a client
        already created. Rules are tried in the order they were armed."""
        if not isinstance(fault, sc.Fault):
            raise TypeError(f"add_fault() takes an eosim.Fault, got {fault!r}")
        if fault.after_step is not None:
            raise ValueError(f"Fault {fault.name!r}: after_step is for scenario steps; give add_fault(at_ms=...)")
        self._check((*self._rules, fault))
        self._rules.append(fault)
        if at_ms is None:
            self._faults.arm(fault)
        else:
            delay = _ms(at_ms, "at_ms", low=self.now) - self.now
            self._world.env.timeout(delay).callbacks.append(lambda _e: self._faults.arm(fault))

    def start_nemesis(self, nemesis: sc.Nemesis) -> None:
        """Start a seeded random nemesis now (docs/faults.md, ``[nemesis]``): quiet gaps and faults of its
        ``kinds`` on random ``targets`` (clients already created; empty = all of them), each healed after
        its duration, until ``stop_nemesis()``. It draws only from the seed's ``nemesis`` stream. One per
        simulation."""
        if not isinstance(nemesis, sc.Nemesis):
            raise TypeError(f"start_nemesis() takes an eosim.Nemesis, got {nemesis!r}")
        if nemesis.after_step is not None or nemesis.until_step is not None:
            raise ValueError("Nemesis: after_step and until_step are for scenario steps; call start_nemesis() and "
                             "stop_nemesis() when you want it")
        if self._faults.nemesis is not None:
            raise ValueError("a simulation runs one random nemesis: it was started already")
        try:
            sc.check_parts(topics=self.topics, cluster=self.cluster, actors=self._clients, nemesis=nemesis,
                           what="Nemesis")
        except sc.ScenarioError as err:
            raise ValueError(str(err)) from None
        self._faults.start_nemesis(nemesis)

    def stop_nemesis(self) -> None:
        """Heal the random nemesis' current fault and stop it."""
        self._faults.stop_nemesis()

    def partition(self, nodes: Iterable[str | Producer | Consumer]) -> None:
        """Cut the links between ``nodes`` (clients, or node names) and every other node, until heal()."""
        names = self._nodes(nodes)
        self._faults.partition(names)
        self._history.nemesis("partition", {"nodes": list(names)})

    def clog(self, nodes: Iterable[str | Producer | Consumer], ms: int) -> None:
        """Every packet on these nodes' links takes ``ms`` longer, until heal()."""
        names = self._nodes(nodes)
        self._faults.clog(names, _ms(ms, "clog(ms)", low=1))
        self._history.nemesis("clog", {"nodes": list(names), "ms": ms})

    def disconnect(self, nodes: Iterable[str | Producer | Consumer]) -> None:
        """Close every connection of these nodes now."""
        names = self._nodes(nodes)
        self._faults.disconnect(names)
        self._history.nemesis("disconnect", {"nodes": list(names)})

    def heal(self) -> None:
        """Restore every link, unclog every node, end every until-healed rule."""
        self._faults.heal()
        self._history.nemesis("heal", {})

    def pause(self, client: str | Producer | Consumer, ms: int) -> None:
        """Stop the world for a client for ``ms`` (a GC pause, SIGSTOP): its process neither runs nor sends."""
        (name,) = self._nodes([client])
        if name in self.brokers:
            raise ValueError(f"pause() stops a client, not the broker {name}: use crash_broker()")
        self._faults.pause(name, _ms(ms, "pause(ms)", low=1))
        self._history.nemesis("pause", {"nodes": [name], "ms": ms})

    def crash_broker(self) -> None:
        """Kill the broker process; its logs stay (restart_broker() starts it again)."""
        self._cluster.broker_node.crash()
        self._history.nemesis("crash_broker", {})

    def restart_broker(self, load_ms: int = COORDINATOR_LOAD_MS) -> None:
        """Start the crashed broker again; its coordinators load for ``load_ms``."""
        self._cluster.broker_node.restart(_ms(load_ms, "load_ms"))
        self._history.nemesis("restart_broker", {"load_ms": load_ms})

    def coordinator_failover(self, down_ms: int = 0, load_ms: int = COORDINATOR_LOAD_MS) -> None:
        """The transaction coordinator moves away and back at the next coordinator epoch."""
        self._cluster.broker_node.coordinator_failover(_ms(down_ms, "down_ms"), _ms(load_ms, "load_ms"))
        self._history.nemesis("coordinator_failover", {"down_ms": down_ms, "load_ms": load_ms})

    def _nodes(self, nodes: Iterable[str | Producer | Consumer]) -> tuple[str, ...]:
        if isinstance(nodes, (str, Producer, Consumer)):
            raise TypeError("give a list of nodes, e.g. [producer] or [\"app\"]")
        names = tuple(node_of(n.name) if isinstance(n, (Producer, Consumer)) else n for n in nodes)
        known = self._faults.nodes
        for name in names:
            if name not in known:
                raise ValueError(f'no node "{name}" (nodes: {", ".join(known)})')
        return names

    # -- the final state ------------------------------------------------------------------------------

    def partitions(self) -> list[PartitionObservation]:
        """Every partition's state now, as fresh readers see it: high watermark, last stable offset, and
        the (offset, key, value) records of a read_committed and of a read_uncommitted reader (data
        records only; keys and values as text, as the history holds them: eosim._history)."""
        return observe_partitions(self._cluster)

    def partition_state(self, topic: str, partition: int = 0) -> PartitionObservation:
        """One partition's state now (see ``partitions``)."""
        for p in self.partitions():
            if (p.topic, p.partition) == (topic, partition):
                return p
        raise ValueError(f'no partition {partition} of topic "{topic}" (topics: {self.topics})')

    def committed(self, group_id: str) -> list[TopicPartition]:
        """The group's committed offsets now, as a fresh consumer sees them (partitions without one left
        out), sorted."""
        offsets = self._cluster.broker_node.group.gc.committed(group_id)
        return [TopicPartition(tp.topic, tp.partition, offset) for tp, offset in offsets.items()]

    # -- history and checkers ---------------------------------------------------------------------------

    def trace(self) -> list[dict[str, Any]]:
        """The trace so far: every request, response, state transition, client op and fault (docs/design.md)."""
        return self._world.trace.dicts()

    def history(self) -> list[dict[str, Any]]:
        """The Jepsen history as of now, closed: a transaction still open is ``info`` (unknown), and a
        fresh read_committed reader's final read of every partition ends it (docs/api.md)."""
        closed = copy.deepcopy(self._history)
        closed.close_open()
        closed.final_read(self.partitions())
        return list(closed.ops)

    def check(self, *, pipeline: tuple[str, str] | None = None) -> CheckResult:
        """Jepsen's Kafka checker on the history, plus the trace oracle's invariants; with
        ``pipeline=(input, output)``, also that every committed input value appears exactly once among
        the committed output values (a consume-transform-produce application's end-to-end claim)."""
        history = self.history()
        subscribe_used = any(op["f"] == "subscribe" for op in history)
        result = combine(check_history(history, subscribe_used=subscribe_used),
                         check_trace(self._world.trace.view().of_kinds(ORACLE_KINDS)))
        if pipeline is not None:
            source, sink = pipeline
            for topic in pipeline:
                if topic not in self.topics:
                    raise ValueError(f'pipeline names no topic "{topic}" (topics: {", ".join(self.topics)})')
            result = combine(result, check_pipeline(self._committed_values(source), self._committed_values(sink)))
        return result

    def diagram(self, result: CheckResult | None = None) -> str:
        """The run as a Mermaid sequence diagram (docs/pictures.md); with ``result`` (from ``check()``),
        each anomaly's witness is banded in red."""
        return mermaid(self._world.trace.view(), None if result is None else result.to_json()["anomalies"])

    def timeline(self, result: CheckResult | None = None, *, title: str = "simulation") -> str:
        """The run as a self-contained HTML timeline (docs/pictures.md): a lane per client and broker,
        faults shaded, and with ``result`` its anomalies' witnesses outlined."""
        results = {"scenario": title, "seed": self.seed, **({} if result is None else result.to_json())}
        return timeline_html(self._world.trace.view(), results)

    def _committed_values(self, topic: str) -> list[tuple[str, int, Any]]:
        return [(f"{p.topic}-{p.partition}", offset, value)
                for p in self.partitions() if p.topic == topic for offset, _key, value in p.read_committed]


# -- the public clients: the simulated clients, joined to the active simulation, recording history ------


def _check_payload(topic: Any, value: Any, key: Any) -> None:
    """Refuse at produce() what confluent-kafka refuses there (Producer_produce parses its arguments as
    "s|z#z#..."): a topic that is not str, a key or value that is not str, bytes or None (a writable
    buffer such as bytearray or memoryview too), a str that UTF-8 cannot encode; its messages."""
    if not isinstance(topic, str):
        raise TypeError(f"argument 1 must be str, not {type(topic).__name__}")
    for position, payload in ((2, value), (3, key)):
        if payload is None or isinstance(payload, bytes):
            continue
        if isinstance(payload, str):
            payload.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError, as it does in confluent-kafka
            continue
        try:
            memoryview(payload)
        except TypeError:
            raise TypeError(f"a bytes-like object is required, not '{type(payload).__name__}'") from None
        raise TypeError(f"argument {position} must be read-only bytes-like object, not {type(payload).__name__}")


def _python_keys(config: dict[str, Any]) -> dict[str, Any]:
    """confluent-kafka's ``logger`` key, taken out: accepted (a logging.Logger, as there), and given
    nothing, since eosim's clients write no librdkafka log lines (their trace is the log)."""
    config.pop("logger", None)
    return config


def _not_simulated(method: str, instead: str = "") -> None:
    raise NotImplementedError(f"{method}() is not simulated by eosim{': ' + instead if instead else ''} "
                              f'(docs/api.md, "Not simulated")')


def _crash(client: Producer | Consumer, crash: Callable[[], None]) -> None:
    """Kill a public client and record the crash in the history, once (one place for sim.crash too)."""
    if client._crashed:
        return
    crash()
    client._history.crash(client._process)


class Producer(_producer.Producer):
    """confluent_kafka.Producer in the active Simulation (docs/api.md). Blocking calls return a SimPy
    event to yield: ``yield producer.init_transactions()``."""

    def __init__(self, config: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        sim = _active("Producer")
        config = _python_keys({**(config or {}), **kwargs})  # confluent-kafka merges keyword properties
        default_report = config.pop("on_delivery", None)  # confluent-kafka: the default delivery callback
        if default_report is not None and not callable(default_report):
            raise KafkaException(KafkaError(KafkaError._INVALID_ARG, "on_delivery requires a callable object"))
        self._default_report = default_report
        self._history = sim._history
        self._process = sim._join("producer", config,
                                  lambda name: super(Producer, self).__init__(config, cluster=sim._cluster, name=name))
        sim._members[node_of(self.name)] = self

    def begin_transaction(self) -> None:
        super().begin_transaction()
        self._history.begin(self._process)

    def produce(self, topic: str, value: str | bytes | None = None, key: str | bytes | None = None,
                partition: int = -1, on_delivery: Callable[..., Any] | None = None,
                callback: Callable[..., Any] | None = None) -> None:
        user = on_delivery or callback or self._default_report
        send: Send | None = None  # recorded once produce() accepted the record; reports come later

        def report(err: Any, msg: Message) -> None:
            assert send is not None
            if err is None:
                send.delivered(msg.topic(), msg.partition(), msg.offset())
            else:
                send.failed()
            if user is not None:
                user(err, msg)

        _check_payload(topic, value, key)
        super().produce(topic, value, key, partition, on_delivery=report)
        send = self._history.send(self._process, value)

    def list_topics(self, *args: Any, **kwargs: Any) -> None:
        _not_simulated("Producer.list_topics")

    def crash(self) -> None:
        """Kill the process (``Simulation.crash``): no flush, no EndTxn; the history records the crash."""
        _crash(self, super().crash)

    def commit_transaction(self, timeout: float = -1) -> simpy.Process:
        process = super().commit_transaction(timeout)
        self._watch(process, self._commit_done)
        return process

    def _commit_done(self, event: simpy.Event) -> None:
        if event.ok:
            self._history.end(self._process, "ok")
        elif isinstance(event.value, KafkaException):
            self._history.commit_failed(self._process, event.value.args[0].txn_requires_abort())

    def abort_transaction(self, timeout: float = -1) -> simpy.Process:
        process = super().abort_transaction(timeout)
        self._watch(process, lambda event: self._history.end(self._process, "fail") if event.ok else None)
        return process


class Consumer(_consumer.Consumer):
    """confluent_kafka.Consumer in the active Simulation (docs/api.md). Blocking calls return a SimPy
    event to yield: ``msg = yield consumer.poll(1.0)``."""

    def __init__(self, config: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        sim = _active("Consumer")
        config = _python_keys({**(config or {}), **kwargs})
        self._history = sim._history
        self._process = sim._join("consumer", config,
                                  lambda name: super(Consumer, self).__init__(config, cluster=sim._cluster, name=name))
        sim._members[node_of(self.name)] = self

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        partitions = list(partitions)
        super().assign(partitions)
        self._history.assigned(self._process, "assign", [f"{p.topic}-{p.partition}" for p in partitions])

    def subscribe(self, topics: list[str], on_assign: Callable[..., Any] | None = None,
                  on_revoke: Callable[..., Any] | None = None) -> None:
        super().subscribe(topics, on_assign, on_revoke)
        self._history.assigned(self._process, "subscribe", list(topics))

    def crash(self) -> None:
        """Kill the process (``Simulation.crash``): no final commit, no LeaveGroup; the history records
        the crash."""
        _crash(self, super().crash)

    # confluent_kafka.Consumer's calls eosim does not simulate: refused by name (docs/api.md)
    def unsubscribe(self) -> None:
        _not_simulated("Consumer.unsubscribe")

    def pause(self, partitions: Any) -> None:
        _not_simulated("Consumer.pause")

    def resume(self, partitions: Any) -> None:
        _not_simulated("Consumer.resume")

    def get_watermark_offsets(self, *args: Any, **kwargs: Any) -> None:
        _not_simulated("Consumer.get_watermark_offsets", "sim.partition_state(topic, p) gives HW and LSO")

    def list_topics(self, *args: Any, **kwargs: Any) -> None:
        _not_simulated("Consumer.list_topics")

    def incremental_assign(self, partitions: Any) -> None:
        _not_simulated("Consumer.incremental_assign")

    def incremental_unassign(self, partitions: Any) -> None:
        _not_simulated("Consumer.incremental_unassign")

    def offsets_for_times(self, *args: Any, **kwargs: Any) -> None:
        _not_simulated("Consumer.offsets_for_times")

    def seek(self, partition: TopicPartition) -> None:
        super().seek(partition)
        self._history.seek(self._process, f"{partition.topic}-{partition.partition}", partition.offset)

    def poll(self, timeout: float = -1) -> simpy.Process:
        return self._recorded(super().poll(timeout), lambda value: [] if value is None else [value])

    def consume(self, num_messages: int = 1, timeout: float = -1) -> simpy.Process:
        return self._recorded(super().consume(num_messages, timeout), list)

    def _recorded(self, process: simpy.Process, messages: Callable[[Any], list[Message]]) -> simpy.Process:
        self._history.poll_invoke(self._process)

        def done(event: simpy.Event) -> None:
            if not event.ok:
                self._history.op(self._process, "fail", "poll", [["poll"]])
                return
            self._history.poll_ok(self._process, [(m.topic(), m.partition(), m.offset(), m.value())
                                                  for m in messages(event.value) if m.error() is None])

        self._watch(process, done)
        return process
