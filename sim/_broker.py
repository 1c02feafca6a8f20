"""eosim._broker
==========

A broker node and the roles it hosts, as separate classes (Kafka's split: SocketServer and KafkaApis,
then ReplicaManager and the two coordinators):

- ``BrokerNode`` (this module): the network endpoint, request dispatch (one request per connection at a
  time, injected errors, work time), and the process lifecycle (crash, restart, timers and internal
  processes that belong to one incarnation, the leader epochs it has applied);
- ``ReplicaManager`` (sim/_replicas.py): the partitions it leads: Produce, Fetch, ListOffsets, markers,
  KIP-890 verification, producer expiry;
- ``TxnCoordinatorRole`` and ``GroupCoordinatorRole`` (sim/_coordinators.py): the coordinators, each
  wrapping its model, applying its effects, and loading after an election.

A single-node cluster (the shape the conformance broker has) hosts every role on its one node. The node
and its roles only wait, deliver and apply the models' effects: every Kafka decision is made in
``models/``.

Internal traffic goes over the network like client traffic, so faults can strike it too: the
coordinator sends WriteTxnMarkers to the partition leader, and the leader sends KIP-890 verification
(AddPartitionsToTxn, verifyOnly) to the coordinator, even though both are this node. Each uses its own
connection (``broker-1/markers``, ``broker-1/verification``), as Kafka's inter-broker clients do.

Broker faults (docs/fidelity.md): ``crash`` kills the process: it drops every packet addressed to it, its timers
and internal requests die with it (each belongs to one incarnation), and what it held in memory is gone. The disk
stays: the partition logs, ``__consumer_offsets`` and the ``__transaction_state`` records (``txn.log``).
``restart`` recovers each log's producer state (the snapshot at the log end: one cached batch per producer) and
loads both coordinators at a new leader epoch; ``coordinator_failover`` moves the transaction coordinator away and
back without a crash. While a coordinator is away its requests get NOT_COORDINATOR, while it loads
COORDINATOR_LOAD_IN_PROGRESS.

With several brokers (``producer_ids`` given) every node hosts both coordinator roles, idle until its replica of
``__transaction_state-0`` / ``__consumer_offsets-0`` (sim/_replication.py) becomes leader: the metadata update that
makes it so calls ``coordinator_leadership``, which elects and loads the coordinator at the partition's leader
epoch, or resigns and unloads it when the leadership goes. The coordinators' writes are acks=all appends to those
partitions; markers go to each partition's leader and KIP-890 verification to the transaction coordinator's node,
as this broker's metadata cache names them.
"""

from __future__ import annotations

from collections import deque
from functools import partial
from typing import Any, Callable, Generator, Mapping

from attrs import define, field, frozen

from eosim.models.api import as_sent, error_response
from eosim.models.config import BrokerConfig, ReplicationConfig
from eosim.models.effects import Respond
from eosim.models.errors import Errors
from eosim.models.partition import Partition, Role
from eosim.models.protocol import WriteTxnMarkersRequest, WriteTxnMarkersResponse
from eosim.models.records import CONSUMER_OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC, TopicPartition
from eosim.models.txn_coordinator import AddPartitionsToTxnRequest, AppendTxnLog
from eosim._coordinators import GroupCoordinatorRole, ProducerIdBlocks, TxnCoordinatorRole
from eosim._net import NO_RESPONSE, Failure, Network, Packet
from eosim._replicas import ReplicaManager
from eosim._replication import ReplicaHost
from eosim._topology import BROKERS, COORDINATOR_LOAD_MS
from eosim._world import World
from eosim._worktime import WORK_MS, WorkTime

# The one partition of each internal topic on the test cluster (TEST_CLUSTER_PROFILE in sim/_topology.py).
OFFSETS_PARTITION = TopicPartition(CONSUMER_OFFSETS_TOPIC, 0)
TXN_STATE_PARTITION = TopicPartition(TRANSACTION_STATE_TOPIC, 0)
INTER_BROKER_TIMEOUT_MS = 30_000  # request.timeout.ms of the broker's own clients
# TV2's implicit add (Produce v12+): the broker retries CONCURRENT_TRANSACTIONS every
# add.partitions.to.txn.retry.backoff.ms until add.partitions.to.txn.retry.backoff.max.ms passed (reference §3.4).
ADD_PARTITIONS_RETRY_BACKOFF_MS = 20
ADD_PARTITIONS_RETRY_BACKOFF_MAX_MS = 100


@frozen(kw_only=True)
class Injection:
    """An error the broker answers a request with instead of its own answer; ``after_apply``: it does
    the work first (eosim.models.api.INFRASTRUCTURE_ERRORS says which errors come after the work)."""

    error: Errors
    after_apply: bool


def no_injection(*_what: object) -> Injection | None:
    return None


@define(eq=False)
class BrokerNode:
    """One broker process: the network endpoint of ``node``, dispatching each request to the role that
    hosts it (KafkaApis), and the lifecycle every role's timers and internal processes belong to."""

    world: World
    network: Network
    config: BrokerConfig
    topics: dict[str, int]
    node: str = "broker-1"
    # The fault layer's hook (sim/_faults.py), asked as each request is handled.
    inject: Callable[[Packet], Injection | None] = no_injection
    # Its hook for the transaction coordinator's own appends to __transaction_state (node, append).
    inject_txn_log: Callable[[str, AppendTxnLog], Injection | None] = no_injection
    # How long internal work takes: (fewest, most) ms per kind, drawn from the stream "<node>/work" (sim/_worktime.py).
    work_ms: Mapping[str, tuple[int, int]] = WORK_MS
    coordinators: bool = True  # whether it hosts the coordinators (the first broker of a cluster does)
    # Several brokers: the controller's producer id blocks, and the coordinators move with the leadership of the
    # internal partitions (None: one broker, which leads them for good).
    producer_ids: ProducerIdBlocks | None = None
    work: WorkTime = field(init=False)
    # the hosted roles
    replicas: ReplicaManager = field(init=False)
    txn: TxnCoordinatorRole | None = field(init=False, default=None)
    group: GroupCoordinatorRole | None = field(init=False, default=None)
    replicated: ReplicaHost | None = field(init=False, default=None)  # its replicas of replicated partitions
    _requests: dict[int, Packet] = field(init=False, factory=dict)  # correlation id -> a request a model answers later
    _muted: dict[str, deque[Packet]] = field(init=False, factory=dict)  # connection → requests read after the one in progress
    _answer_with: dict[int, Errors] = field(init=False, factory=dict)  # correlation id -> injected error
    # ``emit(kind, **data)``: traces an event of this broker (the trace's emit with the node bound, in C: no
    # Python call nor keyword copy of its own per event)
    emit: Callable[..., Any] = field(init=False, repr=False)
    _handlers: dict[type, Callable[[Packet, Any], None]] = field(init=False)
    up: bool = field(init=False, default=True)
    _incarnation: int = field(init=False, default=0)  # every timer and internal process belongs to one
    # The leader epoch of each partition this broker leads, __transaction_state's being the coordinator epoch
    # (BrokerMetadataPublisher: txnCoordinator.onElection(partition, leaderEpoch)). Only the controller moves it,
    # and only up: every leader change is a new, higher epoch (KRaft PartitionChangeBuilder).
    leader_epochs: dict[TopicPartition, int] = field(init=False)
    load_ms: int = field(init=False, default=COORDINATOR_LOAD_MS)  # how long the next coordinator load takes

    def __attrs_post_init__(self) -> None:
        self.emit = partial(self.world.trace.emit, self.node)
        self.work = WorkTime(self.world.rng(f"{self.node}/work"), self.work_ms)
        self.replicas = ReplicaManager(self, self.topics)
        self.leader_epochs = {tp: 0 for tp in (*sorted(self.replicas.logs), OFFSETS_PARTITION, TXN_STATE_PARTITION)}
        self._handlers = {**self.replicas.handlers(), WriteTxnMarkersRequest: self._write_markers}
        if self.coordinators:
            self.txn = TxnCoordinatorRole(self)
            self.group = GroupCoordinatorRole(self, self.topics)
            self._handlers.update({**self.txn.handlers(), **self.group.handlers()})
        self.network.register(self.node, self._receive)
        # The timers that decide how soon Kafka resolves a transaction on its own, for the oracle's liveness bound.
        self.emit("broker.start", timers={
            "transaction.abort.timed.out.transaction.cleanup.interval.ms":
                self.config.transaction_abort_timed_out_transaction_cleanup_interval_ms,
            "request.timeout.ms": INTER_BROKER_TIMEOUT_MS})
        self._start_timers()

    def host_replicas(self, configs: Mapping[str, ReplicationConfig],
                      assignment: Mapping[TopicPartition, tuple[int, ...]]) -> None:
        """Host this broker's replicas of the replicated partitions (sim/_replication.py) and start them."""
        self.replicated = ReplicaHost(self, dict(configs), dict(assignment))
        self._handlers.update(self.replicated.handlers())
        self.replicated.start()

    def _start_timers(self) -> None:
        if self.txn is not None:
            self.txn.start_timers()
        self.replicas.start_timers()

    # -- faults -----------------------------------------------------------------------------------

    def crash(self) -> None:
        """The process dies: nothing more is received or sent, timers and internal requests are abandoned, and
        the in-memory state (producer states, coordinators, queued requests) is lost; the logs stay. Clients
        get no answer while it is down (a crashed host: no reset); their requests time out, or fail when the
        restart resets their connections. In an N-broker cluster it is a killed process instead: its connections
        reset at once and connects to it are refused (sim/_net.py, ``kill``)."""
        if not self.up:
            raise RuntimeError(f"{self.node} is down already")
        self.up = False
        self._incarnation += 1
        self._requests.clear()
        self._muted.clear()
        self._answer_with.clear()
        self.replicas.crash()
        if self.group is not None:
            self.group.crash()
        if self.replicated is not None:
            self.replicated.crash()
        self.emit("broker.crash")
        if self.replicated is not None:
            # In an N-broker cluster a crash is a killed process (sim/_net.py, ``kill``): its connections reset and
            # connects are refused, as SIGKILL of a broker's JVM does on the real cluster (docs/fidelity.md).
            self.network.kill(self.node)

    def restart(self, load_ms: int = COORDINATOR_LOAD_MS) -> None:
        """The process starts again. Log recovery (LogLoader) gives each partition, ``__consumer_offsets``
        included, the producer state of the snapshot at its log end. Then the broker leads every partition again
        at a new leader epoch, and its coordinators load: the transaction coordinator from its log (a new
        producer id block: RPCProducerIdManager starts without one), the group coordinator from the offsets log
        (CoordinatorLoaderImpl); each answers COORDINATOR_LOAD_IN_PROGRESS for ``load_ms``."""
        if self.up:
            raise RuntimeError(f"{self.node} is running: crash it before a restart")
        now = self.world.now
        self.replicas.recover(now)
        if self.group is not None:
            self.group.recover(now)
        self.up = True
        self.network.revive(self.node)
        self.emit("broker.restart")
        # A new process never serves its predecessor's connections: a client's retransmission reaches the
        # restarted host and is answered with a reset, so what still waits on an old connection fails
        # (librdkafka: _TRANSPORT) and the next request opens a new one. Served as before, a later batch could
        # land ahead of an earlier one still waiting on the same connection.
        self.network.close(lambda _src, dst: dst == self.node)
        self.load_ms = load_ms
        if self.producer_ids is not None:
            self.txn.restart()  # idle: the metadata image elects it where this broker leads __transaction_state
            for tp in sorted(self.replicas.logs):  # its single-replica partitions: led again at a new epoch
                self.new_leader_epoch(tp)
        elif self.txn is not None and self.group is not None:
            self.txn.restart()
            for tp in self.leader_epochs:
                self.new_leader_epoch(tp)
            self._elect_txn(self.leader_epochs[TXN_STATE_PARTITION], load_ms)
            self.group.load(load_ms)
        self._start_timers()
        if self.replicated is not None:
            self.replicated.start()

    def coordinator_failover(self, down_ms: int = 0, load_ms: int = COORDINATOR_LOAD_MS) -> None:
        """The transaction coordinator moves away and back without a crash: this broker loses the leadership of
        ``__transaction_state`` (TCo.onResignation: NOT_COORDINATOR for ``down_ms``), regains it at the next
        leader epoch (TCo.onElection) and loads the log for ``load_ms`` (COORDINATOR_LOAD_IN_PROGRESS); Prepare*
        transactions then get their markers again."""
        if not self.up:
            raise RuntimeError(f"{self.node} is down: its coordinator cannot fail over")
        if self.txn is None or self.producer_ids is not None:
            raise RuntimeError(f"{self.node} hosts no coordinator")
        self.txn.resign(down_ms)
        epoch = self.new_leader_epoch(TXN_STATE_PARTITION)
        self.later(down_ms, lambda: self._elect_txn(epoch, load_ms))

    def _elect_txn(self, epoch: int, load_ms: int) -> None:
        if epoch != self.leader_epochs[TXN_STATE_PARTITION]:
            # A later failover decided a newer leader epoch while this one was pending: a broker applies the
            # metadata log in order, so it never becomes leader at a superseded epoch (overlapping failovers
            # must not take the coordinator epoch back, which would make the newer markers' epoch refused).
            return
        self.txn.elect(epoch, load_ms)

    def coordinator_leadership(self, tp: TopicPartition, was_leader: bool, part: Partition) -> None:
        """A metadata update changed this broker's replica of an internal partition (BrokerMetadataPublisher:
        txnCoordinator.onElection / onResignation, the group coordinator's likewise): a new leader epoch elects
        and loads the coordinator, a lost leadership resigns it."""
        leads = part.role is Role.LEADER
        role = self.txn if tp == TXN_STATE_PARTITION else self.group
        if was_leader and (not leads or part.leader_epoch != role.epoch):
            role.resign()
        if leads and part.leader_epoch != role.epoch:
            role.lead(part.leader_epoch, self.load_ms)

    def partition_host(self, tp: TopicPartition) -> str | None:
        """Where a partition's leader is: a replicated one's from this broker's metadata cache (None: no leader
        known), a single-replica one is the first broker's."""
        if self.replicated is not None and tp in self.replicated.assignment:
            return self.replicated.leader_of(tp)
        return BROKERS[0]

    def new_leader_epoch(self, tp: TopicPartition) -> int:
        self.leader_epochs[tp] += 1
        self.emit("partition.leader", tp=tp, leader_epoch=self.leader_epochs[tp])
        return self.leader_epochs[tp]

    # -- incarnations ---------------------------------------------------------------------------------

    def later(self, delay_ms: int, action: Callable[[], None]) -> None:
        """Run ``action`` in ``delay_ms`` unless the broker crashes first (its timers die with it)."""
        incarnation = self._incarnation
        self.world.env.call_later(delay_ms, lambda _e: action() if self._incarnation == incarnation else None)

    def spawn(self, steps: Generator) -> None:
        """Run an internal process of this incarnation: a crash abandons it wherever it waits."""
        self.world.env.process(self._guarded(steps, self._incarnation))

    def start(self, steps: Generator) -> None:
        """Run a request handler's ``steps`` at once, in the caller's event, and on as each event it waits for
        fires (in that event's callbacks), until it returns or this incarnation crashes. Called as the request's
        packet is delivered, this is the order a process would run in (a process starts urgently: nothing runs
        between), without a process' start and end events: most handlers never wait, the rest wait once or
        twice (work time, KIP-890 verification)."""
        self._resume(steps, self._incarnation, None)

    def _resume(self, steps: Generator, incarnation: int, value: Any) -> None:
        if self._incarnation != incarnation:
            steps.close()
            return
        try:
            event = steps.send(value)
        except StopIteration:
            return
        event.callbacks.append(lambda fired: self._resume(steps, incarnation, fired._value))  # fired: no property call

    def _guarded(self, steps: Generator, incarnation: int):
        value = None
        while True:
            try:
                event = steps.send(value)
            except StopIteration:
                return
            value = yield event
            if self._incarnation != incarnation:
                steps.close()
                return

    def every(self, interval_ms: int, task: Callable[[int], None]) -> None:
        """Run ``task(now)`` every ``interval_ms`` while this incarnation lives."""
        self.spawn(self._every(interval_ms, task))

    def _every(self, interval_ms: int, task: Callable[[int], None]):
        while True:
            yield self.world.env.timeout(interval_ms)
            task(self.world.now)

    def after_work(self, kind: str, action: Callable[[], None]) -> None:
        """Run ``action`` once a piece of work of this kind has taken its drawn time: at once when it takes 0 ms."""
        delay = self.work.draw(kind)
        if delay == 0:
            action()
        else:
            self.later(delay, action)

    # -- the endpoint ---------------------------------------------------------------------------------

    def _receive(self, packet: Packet) -> None:
        if not self.up:  # a crashed process reads nothing: the packet is lost
            self.world.trace.emit(packet.src, "net.drop", dst=packet.dst, correlation_id=packet.correlation_id,
                                  msg=type(packet.payload).__name__, down=True)
            return
        # Kafka mutes a connection from the moment it reads a request until that request's response is
        # sent (SocketServer.scala, Processor): requests of one connection are handled one at a time.
        waiting = self._muted.get(packet.src)
        if waiting is not None:
            waiting.append(packet)
            return
        self._muted[packet.src] = deque()
        self.after_work("request", partial(self._handle, packet))  # a request handler thread picks it up

    def _handle(self, packet: Packet) -> None:
        injected = self.inject(packet)
        if injected is not None and injected.after_apply:
            self._answer_with[packet.correlation_id] = injected.error
        elif injected is not None and self.replicas.refuses_with(packet, injected.error):
            pass  # a partition's state (min ISR, leadership, log directory): the produce refuses where Kafka does
        elif injected is not None:
            self.reply(packet, error_response(packet.payload, injected.error))
            return
        self._handlers[type(packet.payload)](packet, packet.payload)

    def reply(self, packet: Packet, response: Any) -> None:
        """Answer the request (``NO_RESPONSE``: it gets none, as an acks=0 Produce); its connection reads the next."""
        error = self._answer_with.pop(packet.correlation_id, None)
        if error is not None:
            response = error_response(packet.payload, error)
        if response is not NO_RESPONSE:
            self.network.respond(packet, response)
        waiting = self._muted[packet.src]
        while waiting and not self.network.live(waiting[0]):  # unread when its connection closed: lost
            waiting.popleft()
        if not waiting:
            del self._muted[packet.src]
            return
        following = waiting.popleft()
        # Unmuted: the next request is read in a later event, never inside this handler's call stack.
        self.later(self.work.draw("request"), lambda: self._handle(following))

    def hold(self, packet: Packet) -> None:
        """Keep a request a model answers with a later ``Respond`` effect (``answer``)."""
        self._requests[packet.correlation_id] = packet

    def answer(self, correlation_id: int) -> Packet:
        return self._requests.pop(correlation_id)

    def respond(self, effect: Respond) -> None:
        """A model's answer to a held request, in the version the client sent it (``as_sent``)."""
        packet = self.answer(effect.correlation_id)
        self.reply(packet, as_sent(packet.payload, effect.response))

    # -- inter-broker -----------------------------------------------------------------------------------

    def _write_markers(self, packet: Packet, request: WriteTxnMarkersRequest) -> None:
        """KafkaApis.handleWriteTxnMarkersRequest: the offsets partition's markers go to the group coordinator,
        the others to the partition's log."""
        entry = request.entry
        now = self.world.now
        results = []
        durable = []  # several brokers: a replicated partition's marker is answered once replicated (acks=-1)
        for tp in entry.partitions:
            if tp.topic == CONSUMER_OFFSETS_TOPIC and self.group is not None:
                error, written = self.group.write_marker(entry, now)
                if written is not None:
                    durable.append((len(results), written))
            elif self.replicated is not None and tp in self.replicated.parts:
                # a replicated partition: its leader appends with acks=all (sim/_replication.py)
                error = Errors.NONE
                durable.append((len(results), self.replicated.write_marker(tp, entry)))
            else:
                error = self.replicas.write_marker(tp, entry, now)
            results.append((tp, error))
        if not durable:
            self.reply(packet, WriteTxnMarkersResponse(results=tuple(results)))
            return
        self.spawn(self._answer_markers(packet, results, durable))

    def _answer_markers(self, packet: Packet, results: list, durable: list):
        for i, written in durable:
            error = yield written
            if error is not Errors.NONE:
                results[i] = (results[i][0], error)
        self.reply(packet, WriteTxnMarkersResponse(results=tuple(results)))

    def add_partition_tv2(self, request: AddPartitionsToTxnRequest, tp: TopicPartition):
        """AddPartitionsToTxnManager for TV2: CONCURRENT_TRANSACTIONS is retried every
        add.partitions.to.txn.retry.backoff.ms until add.partitions.to.txn.retry.backoff.max.ms passed."""
        give_up_at = self.world.now + ADD_PARTITIONS_RETRY_BACKOFF_MAX_MS
        while True:
            error = yield from self.ask_coordinator(request, tp)
            if error is not Errors.CONCURRENT_TRANSACTIONS or self.world.now >= give_up_at:
                return error
            yield self.world.env.timeout(ADD_PARTITIONS_RETRY_BACKOFF_MS)

    def ask_coordinator(self, request: AddPartitionsToTxnRequest, tp: TopicPartition):
        """The broker's AddPartitionsToTxn to the transaction coordinator (KIP-890), on its own connection:
        the coordinator's answer for ``tp``, NETWORK_EXCEPTION when none came. Several brokers: to the leader of
        __transaction_state-0 in this broker's metadata cache (AddPartitionsToTxnManager), COORDINATOR_NOT_AVAILABLE
        while it names none."""
        dst = self.node if self.producer_ids is None else self.partition_host(TXN_STATE_PARTITION)
        if dst is None:
            return Errors.COORDINATOR_NOT_AVAILABLE
        verdict = yield self.inter_broker("verification", request, dst)
        return Errors.NETWORK_EXCEPTION if isinstance(verdict, Failure) else dict(verdict.results)[tp]

    def inter_broker(self, connection: str, request: Any, dst: str | None = None) -> Any:
        """A request of this broker's own clients (the marker channel, KIP-890 verification), each on its own
        connection, to the node that serves it (one broker: this node, which hosts every role). The event fires
        with the response, or a ``Failure``."""
        return self.network.request(f"{self.node}/{connection}", dst or self.node, request, INTER_BROKER_TIMEOUT_MS)
