"""eosim._broker
==========

A broker node: the leader of every partition, the transaction coordinator and the group coordinator of
a single-node cluster (the shape the conformance broker has). It only waits, delivers and applies the
models' effects: every Kafka decision is made in ``models/``.

Internal traffic goes over the network like client traffic, so faults can strike it too: the
coordinator sends WriteTxnMarkers to the partition leader, and the leader sends KIP-890 verification
(AddPartitionsToTxn, verifyOnly) to the coordinator, even though both are this node. Each uses its own
connection (``broker-1/markers``, ``broker-1/verification``), as Kafka's inter-broker clients do.

Broker faults (docs/fidelity.md): ``crash`` kills the process: it drops every packet addressed to it, its timers
and internal requests die with it (each belongs to one incarnation), and what it held in memory is gone. The disk
stays: the partition logs, ``__consumer_offsets`` and the ``__transaction_state`` records (``txn_log``).
``restart`` recovers each log's producer state (the snapshot at the log end: one cached batch per producer) and
loads both coordinators at a new leader epoch; ``coordinator_failover`` moves the transaction coordinator away and
back without a crash. While a coordinator is away its requests get NOT_COORDINATOR, while it loads
COORDINATOR_LOAD_IN_PROGRESS.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Generator, Iterable, Mapping

import attrs
from attrs import define, field, frozen

from eosim.models.api import as_sent, error_response
from eosim.models.config import BrokerConfig
from eosim.models.effects import Respond
from eosim.models.errors import Errors
from eosim.models.consumer_group import ConsumerGroupHeartbeatRequest
from eosim.models.group_coordinator import (
    GroupCoordinator,
    GroupStateChanged,
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    SyncGroupRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    OffsetsCommitted,
    OffsetsPending,
    TxnOffsetCommitRequest,
)
from eosim.models.log import AppendResult, PartitionLog
from eosim.models.protocol import (
    EARLIEST_TIMESTAMP,
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    PartitionProduceResponse,
    TRANSACTION_ABORTABLE_PRODUCE_VERSION,
    TV2_PRODUCE_VERSION,
    ProduceRequest,
    ProduceResponse,
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)
from eosim.models.records import (
    CONSUMER_OFFSETS_TOPIC,
    TRANSACTION_STATE_TOPIC,
    RecordBatch,
    TopicPartition,
    partition_for,
)
from eosim.models.txn_coordinator import (
    AddOffsetsToTxnRequest,
    AddPartitionsToTxnRequest,
    AppendTxnLog,
    EndTxnRequest,
    InitProducerIdRequest,
    SendTxnMarkers,
    TransactionCoordinator,
    TxnLoaded,
    TxnLogRecord,
    TxnStateChanged,
    first_producer_id_after_restart,
)
from eosim._net import Failure, Network, Packet
from eosim._topology import COORDINATOR_LOAD_MS
from eosim._world import World
from eosim._worktime import WORK_MS, WorkTime

# The one partition of each internal topic on the test cluster (TEST_CLUSTER_PROFILE in sim/_topology.py).
OFFSETS_PARTITION = TopicPartition(CONSUMER_OFFSETS_TOPIC, 0)
TXN_STATE_PARTITION = TopicPartition(TRANSACTION_STATE_TOPIC, 0)
INTER_BROKER_TIMEOUT_MS = 30_000  # request.timeout.ms of the broker's own clients

# What a Produce ≤ v10 (the librdkafka protocol) reports when KIP-890 verification fails
# (AddPartitionsToTxnManager.java, ReplicaManager.scala): retriable coordinator trouble becomes
# NOT_ENOUGH_REPLICAS, fencing becomes INVALID_PRODUCER_EPOCH, "not in the txn" INVALID_TXN_STATE.
VERIFICATION_ERROR_FOR_OLD_PRODUCE = {
    Errors.PRODUCER_FENCED: Errors.INVALID_PRODUCER_EPOCH,
    Errors.TRANSACTION_ABORTABLE: Errors.INVALID_TXN_STATE,
    Errors.NETWORK_EXCEPTION: Errors.NOT_ENOUGH_REPLICAS,
    Errors.COORDINATOR_NOT_AVAILABLE: Errors.NOT_ENOUGH_REPLICAS,
    Errors.COORDINATOR_LOAD_IN_PROGRESS: Errors.NOT_ENOUGH_REPLICAS,
    Errors.NOT_COORDINATOR: Errors.NOT_ENOUGH_REPLICAS,
    Errors.CONCURRENT_TRANSACTIONS: Errors.NOT_ENOUGH_REPLICAS,
}
# TV2's implicit add (Produce v12+): the broker retries CONCURRENT_TRANSACTIONS every
# add.partitions.to.txn.retry.backoff.ms until add.partitions.to.txn.retry.backoff.max.ms passed (reference §3.4).
ADD_PARTITIONS_RETRY_BACKOFF_MS = 20
ADD_PARTITIONS_RETRY_BACKOFF_MAX_MS = 100
TV2_TXN_OFFSET_COMMIT_VERSION = 5  # TxnOffsetCommitRequest.LAST_STABLE_VERSION_BEFORE_TRANSACTION_V2 (4) + 1


def verification_error_for(error: Errors, api_version: int) -> Errors:
    """The coordinator's answer as a Produce of ``api_version`` reports it: v11+ keeps TRANSACTION_ABORTABLE
    (KAFKA-16314), v12+ (TV2) keeps CONCURRENT_TRANSACTIONS, which the client retries."""
    if api_version >= TRANSACTION_ABORTABLE_PRODUCE_VERSION and error is Errors.TRANSACTION_ABORTABLE:
        return error
    if api_version >= TV2_PRODUCE_VERSION and error is Errors.CONCURRENT_TRANSACTIONS:
        return error
    return VERIFICATION_ERROR_FOR_OLD_PRODUCE.get(error, error)


@frozen(kw_only=True)
class Injection:
    """An error the broker answers a request with instead of its own answer; ``after_apply``: it does
    the work first (eosim.models.api.INFRASTRUCTURE_ERRORS says which errors come after the work)."""

    error: Errors
    after_apply: bool


def no_injection(*_what: object) -> Injection | None:
    return None


@define(eq=False)
class Broker:
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
    _work: WorkTime = field(init=False)
    logs: dict[TopicPartition, PartitionLog] = field(init=False)
    tc: TransactionCoordinator = field(init=False)
    gc: GroupCoordinator = field(init=False)
    _requests: dict[int, Packet] = field(init=False, factory=dict)
    _muted: dict[str, deque[Packet]] = field(init=False, factory=dict)  # connection → requests read after the one in progress
    _answer_with: dict[int, Errors] = field(init=False, factory=dict)  # correlation id -> injected error
    _refuse_produce: dict[int, Errors] = field(init=False, factory=dict)  # Produce correlation id -> injected error
    # (connection, partition) -> (the partition-state error a Produce was refused with, when): see _partition_state
    _refusing: dict[tuple[str, TopicPartition], tuple[Errors, int]] = field(init=False, factory=dict)
    _gc_timers: set[int] = field(init=False, factory=set)
    _handlers: dict[type, Callable[[Packet, Any], None]] = field(init=False)
    # On disk: the __transaction_state partition's records, in append order (they survive a crash).
    txn_log: list[TxnLogRecord] = field(init=False, factory=list)
    up: bool = field(init=False, default=True)
    _incarnation: int = field(init=False, default=0)  # every timer and internal process belongs to one
    # The leader epoch of each partition this broker leads, __transaction_state's being the coordinator epoch
    # (BrokerMetadataPublisher: txnCoordinator.onElection(partition, leaderEpoch)). Only the controller moves it,
    # and only up: every leader change is a new, higher epoch (KRaft PartitionChangeBuilder).
    leader_epochs: dict[TopicPartition, int] = field(init=False)
    _gc_loading: bool = field(init=False, default=False)

    def __attrs_post_init__(self) -> None:
        self._work = WorkTime(self.world.rng(f"{self.node}/work"), self.work_ms)
        self.logs = {
            TopicPartition(topic, p): PartitionLog(TopicPartition(topic, p), self.config)
            for topic, count in self.topics.items()
            for p in range(count)
        }
        self.leader_epochs = {tp: 0 for tp in (*sorted(self.logs), OFFSETS_PARTITION, TXN_STATE_PARTITION)}
        self.tc = TransactionCoordinator(self.config)
        # One log stands for every __consumer_offsets partition: only the group coordinator reads it.
        self.gc = GroupCoordinator(self.config, PartitionLog(TopicPartition(CONSUMER_OFFSETS_TOPIC, 0), self.config),
                                   topics=self.topics)
        coordinator = self._to_coordinator
        group = self._to_group_coordinator
        self._handlers = {
            ProduceRequest: self._produce,
            FetchRequest: self._fetch,
            ListOffsetsRequest: self._list_offsets,
            WriteTxnMarkersRequest: self._write_markers,
            InitProducerIdRequest: coordinator,
            AddPartitionsToTxnRequest: coordinator,
            AddOffsetsToTxnRequest: coordinator,
            EndTxnRequest: coordinator,
            JoinGroupRequest: group,
            ConsumerGroupHeartbeatRequest: group,
            SyncGroupRequest: group,
            HeartbeatRequest: group,
            LeaveGroupRequest: group,
            OffsetCommitRequest: group,
            TxnOffsetCommitRequest: group,
            OffsetFetchRequest: group,
        }
        self.network.register(self.node, self._receive)
        # The timers that decide how soon Kafka resolves a transaction on its own, for the oracle's liveness bound.
        self._emit("broker.start", timers={
            "transaction.abort.timed.out.transaction.cleanup.interval.ms":
                self.config.transaction_abort_timed_out_transaction_cleanup_interval_ms,
            "request.timeout.ms": INTER_BROKER_TIMEOUT_MS})
        self._start_timers()

    def _start_timers(self) -> None:
        self._spawn(self._every(self.config.transaction_abort_timed_out_transaction_cleanup_interval_ms,
                                self._abort_timed_out_transactions))
        self._spawn(self._every(self.config.transaction_remove_expired_transaction_cleanup_interval_ms,
                                lambda now: self._apply(self.tc.remove_expired_transactional_ids(now))))
        self._spawn(self._every(self.config.producer_id_expiration_check_interval_ms, self._expire_producers))

    # -- faults -----------------------------------------------------------------------------------

    def crash(self) -> None:
        """The process dies: nothing more is received or sent, timers and internal requests are abandoned, and
        the in-memory state (producer states, coordinators, queued requests) is lost; the logs stay. Clients
        get no answer while it is down (a crashed host: no reset); their requests time out, or fail when the
        restart resets their connections."""
        if not self.up:
            raise RuntimeError(f"{self.node} is down already")
        self.up = False
        self._incarnation += 1
        self._requests.clear()
        self._muted.clear()
        self._answer_with.clear()
        self._refuse_produce.clear()
        self._refusing.clear()
        self._gc_timers.clear()
        self._emit("broker.crash")

    def restart(self, load_ms: int = COORDINATOR_LOAD_MS) -> None:
        """The process starts again. Log recovery (LogLoader) gives each partition, ``__consumer_offsets``
        included, the producer state of the snapshot at its log end. Then the broker leads every partition again
        at a new leader epoch, and its coordinators load: the transaction coordinator from ``txn_log`` (a new
        producer id block: RPCProducerIdManager starts without one), the group coordinator from the offsets log
        (CoordinatorLoaderImpl); each answers COORDINATOR_LOAD_IN_PROGRESS for ``load_ms``."""
        if self.up:
            raise RuntimeError(f"{self.node} is running: crash it before a restart")
        now = self.world.now
        for log in self.logs.values():
            log.recover(now=now)
        offsets_log = self.gc.offsets_log
        offsets_log.recover(now=now)
        self.up = True
        self._emit("broker.restart")
        # A new process never serves its predecessor's connections: a client's retransmission reaches the
        # restarted host and is answered with a reset, so what still waits on an old connection fails
        # (librdkafka: _TRANSPORT) and the next request opens a new one. Served as before, a later batch could
        # land ahead of an earlier one still waiting on the same connection.
        self.network.close(lambda _src, dst: dst == self.node)
        self.tc = TransactionCoordinator(self.config, first_producer_id=first_producer_id_after_restart(
            self.tc.first_producer_id, self.tc.next_producer_id))
        for tp in self.leader_epochs:
            self._new_leader_epoch(tp)
        self._elect(self.leader_epochs[TXN_STATE_PARTITION], load_ms)
        self._gc_loading = True
        self._later(load_ms, lambda: self._load_group_coordinator(offsets_log))
        self._start_timers()

    def coordinator_failover(self, down_ms: int = 0, load_ms: int = COORDINATOR_LOAD_MS) -> None:
        """The transaction coordinator moves away and back without a crash: this broker loses the leadership of
        ``__transaction_state`` (TCo.onResignation: NOT_COORDINATOR for ``down_ms``), regains it at the next
        leader epoch (TCo.onElection) and loads the log for ``load_ms`` (COORDINATOR_LOAD_IN_PROGRESS); Prepare*
        transactions then get their markers again."""
        if not self.up:
            raise RuntimeError(f"{self.node} is down: its coordinator cannot fail over")
        self.tc.resign()
        self._emit("txn.resign", coordinator_epoch=self.tc.coordinator_epoch, down_ms=down_ms)
        epoch = self._new_leader_epoch(TXN_STATE_PARTITION)
        self._later(down_ms, lambda: self._elect(epoch, load_ms))

    def _new_leader_epoch(self, tp: TopicPartition) -> int:
        self.leader_epochs[tp] += 1
        self._emit("partition.leader", tp=tp, leader_epoch=self.leader_epochs[tp])
        return self.leader_epochs[tp]

    def _elect(self, epoch: int, load_ms: int) -> None:
        if epoch != self.leader_epochs[TXN_STATE_PARTITION]:
            # A later failover decided a newer leader epoch while this one was pending: a broker applies the
            # metadata log in order, so it never becomes leader at a superseded epoch (overlapping failovers
            # must not take the coordinator epoch back, which would make the newer markers' epoch refused).
            return
        self.tc.elect(epoch)
        self._emit("txn.elect", coordinator_epoch=epoch, load_ms=load_ms)
        self._later(load_ms, lambda: self._apply(self.tc.load(self.txn_log, coordinator_epoch=epoch,
                                                              now=self.world.now)))

    def _load_group_coordinator(self, offsets_log: PartitionLog) -> None:
        self.gc = GroupCoordinator(self.config, offsets_log, topics=self.topics)
        self._gc_loading = False
        self._emit("group.load")

    # -- incarnations ---------------------------------------------------------------------------------

    def _later(self, delay_ms: int, action: Callable[[], None]) -> None:
        """Run ``action`` in ``delay_ms`` unless the broker crashes first (its timers die with it)."""
        incarnation = self._incarnation
        self.world.env.call_later(delay_ms, lambda _e: action() if self._incarnation == incarnation else None)

    def _spawn(self, steps: Generator) -> None:
        """Run an internal process of this incarnation: a crash abandons it wherever it waits."""
        self.world.env.process(self._guarded(steps, self._incarnation))

    def _start(self, steps: Generator) -> None:
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
        event.callbacks.append(lambda fired: self._resume(steps, incarnation, fired.value))

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

    # -- plumbing ---------------------------------------------------------------------------------

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
        self._after_work("request", lambda: self._handle(packet))  # a request handler thread picks it up

    def _handle(self, packet: Packet) -> None:
        injected = self.inject(packet)
        if injected is not None and injected.after_apply:
            self._answer_with[packet.correlation_id] = injected.error
        elif injected is not None and isinstance(packet.payload, ProduceRequest):
            # a partition's state (min ISR, leadership, log directory): _produce_process refuses where Kafka does
            self._refuse_produce[packet.correlation_id] = injected.error
        elif injected is not None:
            self._reply(packet, error_response(packet.payload, injected.error))
            return
        self._handlers[type(packet.payload)](packet, packet.payload)

    def _reply(self, packet: Packet, response: Any) -> None:
        error = self._answer_with.pop(packet.correlation_id, None)
        if error is not None:
            response = error_response(packet.payload, error)
        self.network.respond(packet, response)
        waiting = self._muted[packet.src]
        while waiting and not self.network.live(waiting[0]):  # unread when its connection closed: lost
            waiting.popleft()
        if not waiting:
            del self._muted[packet.src]
            return
        following = waiting.popleft()
        # Unmuted: the next request is read in a later event, never inside this handler's call stack.
        self._later(self._work.draw("request"), lambda: self._handle(following))

    def _after_work(self, kind: str, action: Callable[[], None]) -> None:
        """Run ``action`` once a piece of work of this kind has taken its drawn time: at once when it takes 0 ms."""
        delay = self._work.draw(kind)
        if delay == 0:
            action()
        else:
            self._later(delay, action)

    def _every(self, interval_ms: int, task: Callable[[int], None]):
        while True:
            yield self.world.env.timeout(interval_ms)
            task(self.world.now)

    def _emit(self, kind: str, **data: Any) -> None:
        self.world.trace.emit(self.node, kind, **data)

    def _apply(self, effects: Iterable[object]) -> None:
        for effect in effects:
            if isinstance(effect, Respond):
                packet = self._requests.pop(effect.correlation_id)
                self._reply(packet, as_sent(packet.payload, effect.response))
            elif isinstance(effect, AppendTxnLog):
                self._emit("txn.log", write_id=effect.write_id, transactional_id=effect.transactional_id,
                           state=effect.record.state.kafka_name, producer_id=effect.record.producer_id,
                           producer_epoch=effect.record.producer_epoch)
                # The leader's local append is synchronous (it is on disk at once); acks=all then completes. An
                # injected error fails it before the local append, or after it (the record stays in the log while
                # the coordinator is told it failed: Partition.appendRecordsToLeader, DelayedProduce).
                failed = self.inject_txn_log(self.node, effect)
                if failed is None or failed.after_apply:
                    self.txn_log.append(effect.record)
                error = Errors.NONE if failed is None else failed.error
                tc = self.tc
                self._after_work("txn.log.append",
                                 lambda w=effect.write_id, e=error: self._apply(tc.on_log_append(w, e, self.world.now)))
            elif isinstance(effect, SendTxnMarkers):
                self._spawn(self._send_markers(self.tc, effect.entry))
            elif isinstance(effect, TxnLoaded):
                self._emit("txn.load", transactional_id=effect.transactional_id, state=effect.state.kafka_name,
                           producer_id=effect.producer_id, producer_epoch=effect.producer_epoch,
                           coordinator_epoch=effect.coordinator_epoch, txn_timeout_ms=effect.txn_timeout_ms)
            elif isinstance(effect, TxnStateChanged):
                self._emit("txn.state", transactional_id=effect.transactional_id, old=effect.old.kafka_name,
                           new=effect.new.kafka_name, producer_id=effect.producer_id,
                           producer_epoch=effect.producer_epoch, txn_timeout_ms=effect.txn_timeout_ms)
            elif isinstance(effect, GroupStateChanged):
                self._emit("group.generation", group_id=effect.group_id, state=str(effect.new),
                           generation_id=effect.generation_id, members=list(effect.members))
            elif isinstance(effect, OffsetsCommitted):
                self._emit("group.offsets", group_id=effect.group_id, tp=effect.partition, offset=effect.offset,
                           producer_id=effect.producer_id)
            elif isinstance(effect, OffsetsPending):
                self._emit("group.pending", group_id=effect.group_id, tp=effect.partition, offset=effect.offset,
                           producer_id=effect.producer_id, producer_epoch=effect.producer_epoch)
            else:
                raise TypeError(f"unknown effect {effect!r}")

    # -- coordinators -------------------------------------------------------------------------------

    def _abort_timed_out_transactions(self, now: int) -> None:
        """TSM.timedOutTransactions: each fence-and-abort starts with a txn-log write of the fenced epoch."""
        effects = self.tc.abort_timed_out_transactions(now)
        for effect in effects:
            if isinstance(effect, AppendTxnLog):
                self._emit("txn.timeout", transactional_id=effect.transactional_id,
                           producer_id=effect.record.producer_id, producer_epoch=effect.record.producer_epoch)
        self._apply(effects)

    def _to_coordinator(self, packet: Packet, request: Any) -> None:
        self._requests[packet.correlation_id] = packet
        self._apply(self.tc.handle(packet.correlation_id, request, self.world.now))

    def _to_group_coordinator(self, packet: Packet, request: Any) -> None:
        if self._gc_loading:  # CoordinatorRuntime: a partition still loading refuses every operation
            self._reply(packet, error_response(request, Errors.COORDINATOR_LOAD_IN_PROGRESS))
            return
        if isinstance(request, TxnOffsetCommitRequest) and request.api_version >= TV2_TXN_OFFSET_COMMIT_VERSION:
            self._spawn(self._txn_offset_commit_tv2(packet, request))
            return
        self._to_gc(packet, request)

    def _txn_offset_commit_tv2(self, packet: Packet, request: TxnOffsetCommitRequest):
        """KafkaApis.handleTxnOffsetCommitRequest v5+ (TV2): the offsets partition joins the transaction through
        the broker's AddPartitionsToTxn v5 (what AddOffsetsToTxn did for the client before), then the commit."""
        offsets = TopicPartition(CONSUMER_OFFSETS_TOPIC,
                                 partition_for(request.group_id, self.config.offsets_topic_num_partitions))
        add = AddPartitionsToTxnRequest(transactional_id=request.transactional_id, producer_id=request.producer_id,
                                        producer_epoch=request.producer_epoch, partitions=(offsets,),
                                        transaction_version=2, api_version=5)
        error = yield from self._add_partition_tv2(add, offsets)
        if error is not Errors.NONE:
            self._reply(packet, error_response(request, error))
            return
        self._to_gc(packet, request)

    def _add_partition_tv2(self, request: AddPartitionsToTxnRequest, tp: TopicPartition):
        """AddPartitionsToTxnManager for TV2: CONCURRENT_TRANSACTIONS is retried every
        add.partitions.to.txn.retry.backoff.ms until add.partitions.to.txn.retry.backoff.max.ms passed."""
        give_up_at = self.world.now + ADD_PARTITIONS_RETRY_BACKOFF_MAX_MS
        while True:
            verdict = yield self.network.request(f"{self.node}/verification", self.node, request,
                                                 INTER_BROKER_TIMEOUT_MS)
            error = Errors.NETWORK_EXCEPTION if isinstance(verdict, Failure) else dict(verdict.results)[tp]
            if error is not Errors.CONCURRENT_TRANSACTIONS or self.world.now >= give_up_at:
                return error
            yield self.world.env.timeout(ADD_PARTITIONS_RETRY_BACKOFF_MS)

    def _to_gc(self, packet: Packet, request: Any) -> None:
        self._requests[packet.correlation_id] = packet
        self._apply(self.gc.handle(packet.correlation_id, request, self.world.now))
        self._schedule_gc_timer()

    def _schedule_gc_timer(self) -> None:
        deadline = self.gc.next_deadline()
        if deadline is None or deadline in self._gc_timers:
            return
        self._gc_timers.add(deadline)
        self._later(max(deadline - self.world.now, 0), lambda: self._fire_gc_timer(deadline))

    def _fire_gc_timer(self, deadline: int) -> None:
        self._gc_timers.discard(deadline)
        self._apply(self.gc.on_timer(self.world.now))
        self._schedule_gc_timer()

    def _send_markers(self, tc: TransactionCoordinator, entry):
        """The coordinator's marker channel (TransactionMarkerChannelManager); the answer goes to the coordinator
        that sent the request (TMRCH): per partition, or, with none, the entry again unless the partition moved.
        The markers wait in the channel's queue first: EndTxn was answered already (TransactionCoordinator
        .endTransaction answers once PrepareCommit/PrepareAbort is durable, then hands the markers over)."""
        delay = self._work.draw("markers")
        if delay:
            yield self.world.env.timeout(delay)
        response = yield self.network.request(f"{self.node}/markers", self.node,
                                              WriteTxnMarkersRequest(entry=entry), INTER_BROKER_TIMEOUT_MS)
        if isinstance(response, Failure):
            self._apply(tc.on_markers_disconnected(entry))
            return
        for tp, error in response.results:
            self._apply(tc.on_marker_result(entry, tp, error, self.world.now))

    def _write_markers(self, packet: Packet, request: WriteTxnMarkersRequest) -> None:
        entry = request.entry
        now = self.world.now
        results = []
        for tp in entry.partitions:
            if tp.topic == CONSUMER_OFFSETS_TOPIC and self._gc_loading:
                # KafkaApis.handleWriteTxnMarkersRequest: a group coordinator that is not ready answers
                # NOT_LEADER_OR_FOLLOWER, so the transaction coordinator retries
                error = Errors.NOT_LEADER_OR_FOLLOWER
            elif tp.topic == CONSUMER_OFFSETS_TOPIC:
                error, effects = self.gc.complete_transaction(
                    producer_id=entry.producer_id, producer_epoch=entry.producer_epoch,
                    coordinator_epoch=entry.coordinator_epoch, result=entry.result, now=now)
                self._apply(effects)
            elif tp in self.logs:
                log = self.logs[tp]
                result = log.append_marker(producer_id=entry.producer_id, producer_epoch=entry.producer_epoch,
                                           coordinator_epoch=entry.coordinator_epoch,
                                           control=entry.result.control_type, now=now,
                                           transaction_version=entry.transaction_version)
                error = result.error
                if error is Errors.NONE:
                    self._emit("log.marker", tp=tp, offset=result.base_offset, producer_id=entry.producer_id,
                               producer_epoch=entry.producer_epoch, coordinator_epoch=entry.coordinator_epoch,
                               control=entry.result.control_type.name)
                    self._replicate(log)
                else:
                    self._emit("log.reject_marker", tp=tp, producer_id=entry.producer_id,
                               producer_epoch=entry.producer_epoch, error=error.name)
            else:
                error = Errors.UNKNOWN_TOPIC_OR_PARTITION
            results.append((tp, error))
        self._reply(packet, WriteTxnMarkersResponse(results=tuple(results)))

    # -- partition leader ----------------------------------------------------------------------------

    def _replicate(self, log: PartitionLog) -> None:
        """One replica: the HW follows the LEO at once (acks=all is met by the leader alone)."""
        log.advance_high_watermark(log.log_end_offset)
        self.world.trace.emit(self.node, "log.offsets", tp=log.tp, log_end_offset=log.log_end_offset,
                              high_watermark=log.high_watermark, last_stable_offset=log.last_stable_offset)

    def _produce(self, packet: Packet, request: ProduceRequest) -> None:
        self._start(self._produce_process(packet, request))

    def _produce_process(self, packet: Packet, request: ProduceRequest):
        injected = self._refuse_produce.pop(packet.correlation_id, None) if self._refuse_produce else None
        responses = []
        for tp, batch in request.batches:
            log = self.logs.get(tp)
            if log is None:
                responses.append(PartitionProduceResponse(partition=tp, error=Errors.UNKNOWN_TOPIC_OR_PARTITION))
                continue
            refused = injected or (self._partition_state(packet, tp) if self._refusing else None)
            error, guard = Errors.NONE, None
            if refused is not None and refused is not Errors.NOT_ENOUGH_REPLICAS:
                error = refused  # ReplicaManager.getPartitionOrException: not the leader, or its log dir offline
            elif log.needs_verification(batch, supports_epoch_bump=request.api_version >= TV2_PRODUCE_VERSION):
                error, guard = yield from self._verify(log, batch, request.transactional_id, request.api_version)
            if error is Errors.NONE and refused is not None:
                # The min-ISR check is Partition.appendRecordsToLeader's, reached only after ReplicaManager
                # .handleProduceAppend verified the batch (KIP-890): the verification entry, with its lowest
                # sequence (KAFKA-14920), stays behind for the later batches of the same transaction.
                error = refused
            if refused is not None:
                self._refusing[(packet.src, tp)] = (refused, self.world.now)
            if error is Errors.NONE:
                delay = self._work.draw("log.append")
                if delay:
                    yield self.world.env.timeout(delay)
                result = log.append_as_leader(batch, self.world.now, verification_guard=guard)
            else:
                result = AppendResult(error=error)
            self._trace_append(log, batch, result)
            if result.error is Errors.NONE and not result.duplicate:
                self._replicate(log)
            responses.append(PartitionProduceResponse(partition=tp, error=result.error, base_offset=result.base_offset,
                                                      log_start_offset=log.log_start_offset))
        self._reply(packet, ProduceResponse(responses=tuple(responses)))

    def _partition_state(self, packet: Packet, tp: TopicPartition) -> Errors | None:
        """An injected refusal stands for the partition's state, which Kafka reads afresh for every request but
        which cannot change between two requests it handles back to back: a Produce for the same partition that
        the client sent before the refusal was answered meets the same state. Without this, a one-shot fault
        lets the batch behind the refused one in: a producer id with no state on the partition takes it at any
        sequence (KIP-360), and librdkafka acks the refused batch implicitly (rd_kafka_dr_implicit_ack)."""
        held = self._refusing.get((packet.src, tp))
        return held[0] if held is not None and packet.sent_at <= held[1] else None

    def _verify(self, log: PartitionLog, batch: RecordBatch, transactional_id: str | None, api_version: int):
        """KIP-890: ask the coordinator whether the partition is in the producer's ongoing txn (part 1), or, for a
        TV2 produce (v12+, part 2), have it add the partition (AddPartitionsToTxn v5, not verify-only; the broker
        retries CONCURRENT_TRANSACTIONS itself for a while). Returns (error as the produce response of this version
        reports it, the guard the append must present)."""
        early = log.verification_epoch_error(batch.producer_id, batch.producer_epoch)
        if early is not Errors.NONE:  # a stale epoch is refused before any coordinator round trip
            return early, None
        tv2 = api_version >= TV2_PRODUCE_VERSION
        guard = log.start_verification(batch.producer_id, batch.producer_epoch, batch.base_sequence,
                                       supports_epoch_bump=tv2, now=self.world.now)
        request = AddPartitionsToTxnRequest(transactional_id=transactional_id, producer_id=batch.producer_id,
                                            producer_epoch=batch.producer_epoch, partitions=(log.tp,),
                                            verify_only=not tv2)
        if tv2:
            error = yield from self._add_partition_tv2(attrs.evolve(request, transaction_version=2, api_version=5),
                                                       log.tp)
        else:
            verdict = yield self.network.request(f"{self.node}/verification", self.node, request,
                                                 INTER_BROKER_TIMEOUT_MS)
            error = Errors.NETWORK_EXCEPTION if isinstance(verdict, Failure) else dict(verdict.results)[log.tp]
        return verification_error_for(error, api_version), guard

    def _trace_append(self, log: PartitionLog, batch: RecordBatch, result: AppendResult) -> None:
        emit = self.world.trace.emit
        if result.error is Errors.NONE and not result.duplicate:
            base = result.base_offset
            emit(self.node, "log.append", base_offset=base, last_offset=result.last_offset,
                 transactional=batch.is_transactional,
                 records=[[base + i, r.key, r.value] for i, r in enumerate(batch.records)], tp=log.tp,
                 producer_id=batch.producer_id, producer_epoch=batch.producer_epoch, base_sequence=batch.base_sequence)
            return
        common = dict(tp=log.tp, producer_id=batch.producer_id, producer_epoch=batch.producer_epoch,
                      base_sequence=batch.base_sequence)
        # what a refused or deduplicated batch carried: the oracle tells a retry from new records (sequence-reuse)
        sent = [[r.key, r.value] for r in batch.records]
        if result.error is not Errors.NONE:
            self._emit("log.reject", error=result.error.name, records=sent, **common)
        else:
            self._emit("log.duplicate", base_offset=result.base_offset, last_offset=result.last_offset, records=sent,
                       **common)

    def _fetch(self, packet: Packet, request: FetchRequest) -> None:
        responses = []
        for tp, offset in request.partitions:
            log = self.logs[tp]
            responses.append((tp, log.read(offset, request.isolation_level, request.max_records)))
        self._reply(packet, FetchResponse(responses=tuple(responses)))

    def _list_offsets(self, packet: Packet, request: ListOffsetsRequest) -> None:
        responses = []
        for tp, timestamp in request.partitions:
            log = self.logs.get(tp)
            if log is None:
                responses.append((tp, Errors.UNKNOWN_TOPIC_OR_PARTITION, -1))
            elif timestamp == EARLIEST_TIMESTAMP:
                responses.append((tp, Errors.NONE, log.log_start_offset))
            else:
                responses.append((tp, Errors.NONE, log.list_offset_latest(request.isolation_level)))
        self._reply(packet, ListOffsetsResponse(responses=tuple(responses)))

    def _expire_producers(self, now: int) -> None:
        for tp, log in self.logs.items():
            for pid in log.remove_expired_producers(now):
                self._emit("log.producer_expired", tp=tp, producer_id=pid)
