"""eosim._coordinators
==================

The two coordinators as roles a broker node hosts (``eosim._broker.BrokerNode``): each wraps its model,
keeps what the model asks the runtime to keep, applies the model's effects, and loads after an election.

- ``TxnCoordinatorRole``: the transaction coordinator (models/txn_coordinator.py), its
  ``__transaction_state`` records (``log``, on disk: they survive a crash), its marker channel
  (TransactionMarkerChannelManager) and its two cleanup timers.
- ``GroupCoordinatorRole``: the group coordinator (models/group_coordinator.py), its deadline timers,
  and COORDINATOR_LOAD_IN_PROGRESS while it loads the offsets log.

On a cluster of several brokers (``BrokerNode.producer_ids`` set) both roles start idle (NOT_COORDINATOR) on every
broker and serve while the broker leads their internal partition (``lead``/``resign``, called from the metadata
updates). Their records then live in that replicated partition (sim/_replication.py, ``append_internal``): a
transaction coordinator's ``AppendTxnLog`` completes when the high watermark passes it, and a group coordinator's
answers (and the trace of what became visible) wait until the offsets-log batches the request wrote are
replicated, as CoordinatorRuntime completes a write once it is committed; a request that wrote nothing waits for the
writes before it (a require_stable OffsetFetch, a Heartbeat: CoordinatorRuntime.append with no records), except a
non-stable OffsetFetch, a read operation at the last committed offset. The partition's high watermark reaches the
model as its last committed offset (``on_high_watermark``, the runtime's HighWatermarkListener). The model writes
its in-memory offsets log at once; a write that then fails to replicate answers the error and is not undone in
memory (the runtime's snapshot revert is not modelled): it only fails when this broker lost the leadership, and so
its coordinator, or when the append is refused for want of in-sync replicas (Kafka's runtime appends with acks=1,
CoordinatorPartitionWriter, and is never refused for that: an acks=all stand-in here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

import simpy
from attrs import define, evolve, field

from eosim.models.api import error_response
from eosim.models.consumer_group import ConsumerGroupHeartbeatRequest
from eosim.models.effects import Respond
from eosim.models.errors import Errors
from eosim.models.group_coordinator import (
    GroupCoordinator,
    GroupStateChanged,
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    OffsetsCommitted,
    OffsetsPending,
    SyncGroupRequest,
    TxnOffsetCommitRequest,
)
from eosim.models.log import PartitionLog
from eosim.models.producer_state import AppendOrigin
from eosim.models.protocol import WriteTxnMarkersRequest
from eosim.models.records import (
    CONSUMER_OFFSETS_TOPIC,
    TRANSACTION_STATE_TOPIC,
    LogBatch,
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
    PRODUCER_ID_BLOCK_SIZE,
    TransactionCoordinator,
    TxnLoaded,
    TxnLogRecord,
    TxnMarkerEntry,
    TxnStateChanged,
    first_producer_id_after_restart,
)
from eosim._net import SERVER_RECONNECT_BACKOFF_MS, Failure, Packet
from eosim._replication import internal_values

if TYPE_CHECKING:
    from eosim._broker import BrokerNode

TV2_TXN_OFFSET_COMMIT_VERSION = 5  # TxnOffsetCommitRequest.LAST_STABLE_VERSION_BEFORE_TRANSACTION_V2 (4) + 1
# The marker channel's reconnect.backoff.ms (a broker's own connections: 50 ms; the growth to 1 s left out, as a
# closed connection that had connected starts again from the first backoff): TransactionMarkerChannelManager's
# NetworkClient waits it before reconnecting after a failed request.
MARKER_RECONNECT_BACKOFF_MS = SERVER_RECONNECT_BACKOFF_MS[0]
TXN_STATE_PARTITION = TopicPartition(TRANSACTION_STATE_TOPIC, 0)
OFFSETS_PARTITION = TopicPartition(CONSUMER_OFFSETS_TOPIC, 0)
TXN_LOG_APPEND_TIMEOUT_MS = 30_000  # TSM.appendTransactionToLog: request.timeout.ms
OFFSET_COMMIT_TIMEOUT_MS = 5_000  # offsets.commit.timeout.ms: the group coordinator's writes (CoordinatorRuntime)
# TxnMarkerSenderThread: markers whose partition has no known leader wait in markersQueueForUnknownBroker and are
# retried on the sender thread's next round (its poll timeout).
MARKER_UNKNOWN_LEADER_RETRY_MS = 100


@define(eq=False)
class ProducerIdBlocks:
    """The controller's producer id blocks (ProducerIdControlManager, AllocateProducerIds): each broker's
    RPCProducerIdManager claims the next 1000 ids when it first needs one. A simplification: the claim is a direct
    call, not a request to the controller node."""

    next_block: int = 0

    def claim(self) -> int:
        first = self.next_block
        self.next_block += PRODUCER_ID_BLOCK_SIZE
        return first


@define(eq=False)
class TxnCoordinatorRole:
    node: BrokerNode
    tc: TransactionCoordinator = field(init=False)
    # On disk: the __transaction_state partition's records, in append order (they survive a crash).
    log: list[TxnLogRecord] = field(init=False, factory=list)

    epoch: int = field(init=False, default=-1)  # several brokers: the leader epoch it was elected at (-1: idle)
    _has_block: bool = field(init=False, default=True)  # several brokers: whether it claimed its producer ids
    # the trace's emitters of the kinds traced per transition (Trace.emitter)
    _emit_txn_log: Callable[..., Any] = field(init=False, repr=False)
    _emit_txn_state: Callable[..., Any] = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        trace = self.node.world.trace
        self._emit_txn_log, self._emit_txn_state = trace.emitter("txn.log"), trace.emitter("txn.state")
        self.tc = TransactionCoordinator(self.node.config)
        if self.node.producer_ids is not None:
            self._idle()

    def _idle(self) -> None:
        """Several brokers: a coordinator that serves nothing until elected. The first broker claims its producer
        ids at once (it answers the idempotent producers' InitProducerId, which needs no coordinator), the others
        at their first election (RPCProducerIdManager claims a block when it first needs an id)."""
        self.epoch = -1
        self._has_block = self.node.node == "broker-1"
        first = self.node.producer_ids.claim() if self._has_block else 0
        self.tc = TransactionCoordinator(self.node.config, coordinator_epoch=-1, first_producer_id=first)
        self.tc.resign()

    def handlers(self) -> dict[type, Callable[[Packet, Any], None]]:
        return dict.fromkeys((InitProducerIdRequest, AddPartitionsToTxnRequest, AddOffsetsToTxnRequest,
                              EndTxnRequest), self._handle)

    def start_timers(self) -> None:
        config = self.node.config
        self.node.every(config.transaction_abort_timed_out_transaction_cleanup_interval_ms,
                        self._abort_timed_out_transactions)
        self.node.every(config.transaction_remove_expired_transaction_cleanup_interval_ms,
                        lambda now: self.apply(self.tc.remove_expired_transactional_ids(now)))

    def restart(self) -> None:
        """A new process: a new coordinator, with a fresh producer id block (RPCProducerIdManager starts without
        one); it serves once elected and loaded."""
        if self.node.producer_ids is not None:
            self._idle()
            return
        self.tc = TransactionCoordinator(self.node.config, first_producer_id=first_producer_id_after_restart(
            self.tc.first_producer_id, self.tc.next_producer_id))

    def lead(self, epoch: int, load_ms: int) -> None:
        """Several brokers: this broker became leader of __transaction_state-0 at ``epoch`` (TCo.onElection); the
        load then reads the partition's replica, to its log end (TSM.loadTransactionsForTxnTopicPartition)."""
        if not self._has_block:
            self._has_block = True
            self.tc = TransactionCoordinator(self.node.config, coordinator_epoch=-1,
                                             first_producer_id=self.node.producer_ids.claim())
        self.epoch = epoch
        self.tc.elect(epoch)
        self.node.emit("txn.elect", coordinator_epoch=epoch, load_ms=load_ms)
        part = self.node.replicated.parts[TXN_STATE_PARTITION]
        self.node.later(load_ms, lambda: self.apply(self.tc.load(
            internal_values(part.log), coordinator_epoch=epoch, now=self.node.world.now)))

    def resign(self, down_ms: int = 0) -> None:
        """TCo.onResignation: this node no longer leads __transaction_state."""
        self.tc.resign()
        self.epoch = -1
        self.node.emit("txn.resign", coordinator_epoch=self.tc.coordinator_epoch, down_ms=down_ms)

    def elect(self, epoch: int, load_ms: int) -> None:
        """TCo.onElection at leader epoch ``epoch``, then the load of the log after ``load_ms``."""
        self.tc.elect(epoch)
        self.node.emit("txn.elect", coordinator_epoch=epoch, load_ms=load_ms)
        self.node.later(load_ms, lambda: self.apply(self.tc.load(self.log, coordinator_epoch=epoch,
                                                                 now=self.node.world.now)))

    def _handle(self, packet: Packet, request: Any) -> None:
        self.node.hold(packet)
        self.apply(self.tc.handle(packet.correlation_id, request, self.node.world.now))

    def _abort_timed_out_transactions(self, now: int) -> None:
        """TSM.timedOutTransactions: each fence-and-abort starts with a txn-log write of the fenced epoch."""
        effects = self.tc.abort_timed_out_transactions(now)
        for effect in effects:
            if isinstance(effect, AppendTxnLog):
                self.node.emit("txn.timeout", transactional_id=effect.transactional_id,
                               producer_id=effect.record.producer_id, producer_epoch=effect.record.producer_epoch)
        self.apply(effects)

    def apply(self, effects: Iterable[object]) -> None:
        node = self.node
        for effect in effects:
            if isinstance(effect, Respond):
                node.respond(effect)
            elif isinstance(effect, AppendTxnLog):
                self._emit_txn_log(node.node, write_id=effect.write_id, transactional_id=effect.transactional_id,
                                   state=effect.record.state.kafka_name, producer_id=effect.record.producer_id,
                                   producer_epoch=effect.record.producer_epoch)
                # The leader's local append is synchronous (it is on disk at once); acks=all then completes. An
                # injected error fails it before the local append, or after it (the record stays in the log while
                # the coordinator is told it failed: Partition.appendRecordsToLeader, DelayedProduce).
                failed = node.inject_txn_log(node.node, effect)
                if node.producer_ids is not None:
                    self._append_replicated(effect, failed)
                    continue
                if failed is None or failed.after_apply:
                    self.log.append(effect.record)
                error = Errors.NONE if failed is None else failed.error
                tc = self.tc
                node.after_work("txn.log.append",
                                lambda w=effect.write_id, e=error: self.apply(tc.on_log_append(w, e, node.world.now)))
            elif isinstance(effect, SendTxnMarkers):
                node.spawn(self._send_markers(self.tc, effect.entry))
            elif isinstance(effect, TxnLoaded):
                node.emit("txn.load", transactional_id=effect.transactional_id, state=effect.state.kafka_name,
                          producer_id=effect.producer_id, producer_epoch=effect.producer_epoch,
                          coordinator_epoch=effect.coordinator_epoch, txn_timeout_ms=effect.txn_timeout_ms)
            elif isinstance(effect, TxnStateChanged):
                self._emit_txn_state(node.node, transactional_id=effect.transactional_id, old=effect.old.kafka_name,
                                     new=effect.new.kafka_name, producer_id=effect.producer_id,
                                     producer_epoch=effect.producer_epoch, txn_timeout_ms=effect.txn_timeout_ms)
            else:
                raise TypeError(f"unknown effect {effect!r}")

    def _append_replicated(self, effect: AppendTxnLog, failed: Any) -> None:
        """Several brokers: the record is an acks=all append to __transaction_state-0 (an injected error fails it
        before the append, or after it, as with one broker)."""
        node, tc, write_id = self.node, self.tc, effect.write_id

        def done(error: Errors) -> None:
            error = failed.error if failed is not None else error
            node.after_work("txn.log.append", lambda: self.apply(tc.on_log_append(write_id, error, node.world.now)))

        if failed is not None and not failed.after_apply:
            done(failed.error)
            return
        node.replicated.append_internal(TXN_STATE_PARTITION, (effect.record,), TXN_LOG_APPEND_TIMEOUT_MS, done)

    def _send_markers(self, tc: TransactionCoordinator, entry: TxnMarkerEntry):
        """The coordinator's marker channel (TransactionMarkerChannelManager); the answer goes to the coordinator
        that sent the request (TMRCH): per partition, or, with none, the entry again unless the partition moved.
        The markers wait in the channel's queue first: EndTxn was answered already (TransactionCoordinator
        .endTransaction answers once PrepareCommit/PrepareAbort is durable, then hands the markers over).
        Several brokers: one request per partition leader (TMCM.addTxnMarkersToBrokerQueue), a partition with
        no known leader waits for the sender's next round."""
        node = self.node
        delay = node.work.draw("markers")
        if delay:
            yield node.world.env.timeout(delay)
        if node.producer_ids is None:
            yield from self._send_markers_to(tc, entry, node.node)
            return
        hosts: dict[str, list[TopicPartition]] = {}
        unknown = []
        for tp in entry.partitions:
            host = node.partition_host(tp)
            if host is None:
                unknown.append(tp)
            else:
                hosts.setdefault(host, []).append(tp)
        for host in sorted(hosts):
            node.spawn(self._send_markers_to(tc, evolve(entry, partitions=tuple(hosts[host])), host))
        if unknown:
            yield node.world.env.timeout(MARKER_UNKNOWN_LEADER_RETRY_MS)
            self.apply(tc.on_markers_disconnected(evolve(entry, partitions=tuple(unknown))))

    def _send_markers_to(self, tc: TransactionCoordinator, entry: TxnMarkerEntry, host: str):
        node = self.node
        response = yield node.inter_broker("markers", WriteTxnMarkersRequest(entry=entry), host)
        if isinstance(response, Failure):
            # the channel's NetworkClient reconnects after reconnect.backoff.ms (a lost connection is not
            # retried at once: without it a connection closed on every send would resend with no time passing)
            yield node.world.env.timeout(MARKER_RECONNECT_BACKOFF_MS)
            self.apply(tc.on_markers_disconnected(entry))
            return
        for tp, error in response.results:
            self.apply(tc.on_marker_result(entry, tp, error, node.world.now))


@define(eq=False)
class GroupCoordinatorRole:
    node: BrokerNode
    topics: dict[str, int]
    gc: GroupCoordinator = field(init=False)
    _loading: bool = field(init=False, default=False)
    _timers: set[int] = field(init=False, factory=set)
    # several brokers: the leader epoch of __consumer_offsets-0 it serves at (-1: idle, NOT_COORDINATOR)
    epoch: int = field(init=False, default=0)
    # several brokers: for each record of __consumer_offsets-0 (one per offsets-log batch), the offsets-log offset
    # after its batch: how the partition's high watermark reads as the coordinator's last committed offset
    _ends: list[int] = field(init=False, factory=list)
    # several brokers: effects waiting until the offsets log is committed to (offsets-log offset): the answers of
    # operations that wrote nothing, what a timed-out write made visible (CoordinatorRuntime's deferred event queue)
    _deferred: list[tuple[int, list[object]]] = field(init=False, factory=list)

    def __attrs_post_init__(self) -> None:
        # One log stands for every __consumer_offsets partition: only the group coordinator reads it.
        config = self.node.config
        self.gc = GroupCoordinator(config, PartitionLog(TopicPartition(CONSUMER_OFFSETS_TOPIC, 0), config),
                                   topics=self.topics)
        if self.node.producer_ids is not None:
            self.epoch = -1

    def lead(self, epoch: int, load_ms: int) -> None:
        """Several brokers: this broker became leader of __consumer_offsets-0 at ``epoch``
        (GroupCoordinatorService.onElection): load the partition's replica, to its log end (CoordinatorLoaderImpl
        reads the whole log); COORDINATOR_LOAD_IN_PROGRESS meanwhile."""
        self.epoch = epoch
        self._loading = True
        part = self.node.replicated.parts[OFFSETS_PARTITION]

        def loaded() -> None:
            if self.epoch == epoch:
                offsets_log = offsets_log_of(internal_values(part.log), self.node.config, self.node.world.now,
                                             committed=part.high_watermark)
                self._ends = [batch.next_offset for batch in offsets_log.batches]
                self._loaded(offsets_log)
        self.node.later(load_ms, loaded)

    def on_high_watermark(self, high_watermark: int) -> None:
        """Several brokers: the high watermark of __consumer_offsets-0 moved on this leader (CoordinatorRuntime
        .HighWatermarkListener): the coordinator's state below it is committed, and the answers waiting for it go,
        after those of the writes it completes (the deferred event queue completes in offset order)."""
        if self.epoch < 0 or self._loading or not self._ends or high_watermark == 0:
            return
        self.gc.on_high_watermark(self._ends[min(high_watermark, len(self._ends)) - 1])
        if self._deferred:
            self.node.later(0, self._complete_deferred)

    def _complete_deferred(self) -> None:
        committed = self.gc.last_committed_offset
        done = [entry for entry in self._deferred if entry[0] <= committed]
        self._deferred = [entry for entry in self._deferred if entry[0] > committed]
        for _offset, effects in done:
            self.apply(effects)

    def _defer(self, offset: int, effects: list[object], *, expires: bool = True) -> None:
        """Apply ``effects`` once the offsets log is committed to ``offset`` (the deferred event queue, completed by
        the HW listener); an operation's answers fail after offsets.commit.timeout.ms (CoordinatorWriteEvent's
        timeout: REQUEST_TIMED_OUT) unless ``expires`` is off."""
        if self.gc.last_committed_offset >= offset:
            self.apply(effects)
            return
        entry = (offset, effects)
        self._deferred.append(entry)

        def expire() -> None:
            if any(e is entry for e in self._deferred):
                self._deferred = [e for e in self._deferred if e is not entry]
                self._fail([e for e in effects if isinstance(e, Respond)], Errors.REQUEST_TIMED_OUT)
        if expires:
            self.node.later(OFFSET_COMMIT_TIMEOUT_MS, expire)

    def _fail(self, responds: list[Respond], error: Errors) -> None:
        """Answer a failed operation's requests with the coordinator's error for ``error``
        (CoordinatorOperationExceptionHelper.handleOperationException: NOT_LEADER_OR_FOLLOWER -> NOT_COORDINATOR;
        NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT -> COORDINATOR_NOT_AVAILABLE, which an OffsetFetch answers as
        NOT_COORDINATOR: GroupCoordinatorService.handleOffsetFetchException)."""
        node = self.node
        for effect in responds:
            packet = node.answer(effect.correlation_id)
            answer = Errors.NOT_COORDINATOR if error in (Errors.NOT_LEADER_OR_FOLLOWER, Errors.NOT_COORDINATOR) \
                or isinstance(packet.payload, OffsetFetchRequest) else Errors.COORDINATOR_NOT_AVAILABLE
            node.reply(packet, error_response(packet.payload, answer))

    def resign(self) -> None:
        """Several brokers: the leadership of __consumer_offsets-0 is gone (GroupCoordinatorService.onResignation):
        every group unloads (Dead, parked joins answered NOT_COORDINATOR), requests get NOT_COORDINATOR."""
        if not self._loading:
            self.apply(self.gc.unload())
        deferred, self._deferred = self._deferred, []
        for _offset, effects in deferred:  # CoordinatorRuntime.unload: deferredEventQueue.failAll(NOT_COORDINATOR)
            self._fail([e for e in effects if isinstance(e, Respond)], Errors.NOT_COORDINATOR)
        self.epoch = -1
        self._loading = False
        self._timers.clear()

    def handlers(self) -> dict[type, Callable[[Packet, Any], None]]:
        return dict.fromkeys((JoinGroupRequest, ConsumerGroupHeartbeatRequest, SyncGroupRequest, HeartbeatRequest,
                              LeaveGroupRequest, OffsetCommitRequest, TxnOffsetCommitRequest, OffsetFetchRequest),
                             self._handle)

    def crash(self) -> None:
        self._timers.clear()
        self._deferred.clear()
        if self.node.producer_ids is not None:
            self.epoch = -1
            self._loading = False

    def recover(self, now: int) -> None:
        self.gc.offsets_log.recover(now=now)

    def load(self, load_ms: int) -> None:
        """CoordinatorLoaderImpl: a new coordinator reads the offsets log; COORDINATOR_LOAD_IN_PROGRESS meanwhile."""
        offsets_log = self.gc.offsets_log
        self._loading = True
        self.node.later(load_ms, lambda: self._loaded(offsets_log))

    def _loaded(self, offsets_log: PartitionLog) -> None:
        self.gc = GroupCoordinator(self.node.config, offsets_log, topics=self.topics)
        self._loading = False
        self.node.emit("group.load")

    def _handle(self, packet: Packet, request: Any) -> None:
        if self.epoch < 0:  # CoordinatorRuntime: not the leader of the group's offsets partition
            self.node.reply(packet, error_response(request, Errors.NOT_COORDINATOR))
            return
        if self._loading:  # CoordinatorRuntime: a partition still loading refuses every operation
            self.node.reply(packet, error_response(request, Errors.COORDINATOR_LOAD_IN_PROGRESS))
            return
        if isinstance(request, TxnOffsetCommitRequest) and request.api_version >= TV2_TXN_OFFSET_COMMIT_VERSION:
            self.node.spawn(self._txn_offset_commit_tv2(packet, request))
            return
        self._to_gc(packet, request)

    def _txn_offset_commit_tv2(self, packet: Packet, request: TxnOffsetCommitRequest):
        """KafkaApis.handleTxnOffsetCommitRequest v5+ (TV2): the offsets partition joins the transaction through
        the broker's AddPartitionsToTxn v5 (what AddOffsetsToTxn did for the client before), then the commit."""
        offsets = TopicPartition(CONSUMER_OFFSETS_TOPIC,
                                 partition_for(request.group_id, self.node.config.offsets_topic_num_partitions))
        add = AddPartitionsToTxnRequest(transactional_id=request.transactional_id, producer_id=request.producer_id,
                                        producer_epoch=request.producer_epoch, partitions=(offsets,),
                                        transaction_version=2, api_version=5)
        error = yield from self.node.add_partition_tv2(add, offsets)
        if error is not Errors.NONE:
            self.node.reply(packet, error_response(request, error))
            return
        self._to_gc(packet, request)

    def _to_gc(self, packet: Packet, request: Any) -> None:
        self.node.hold(packet)
        # GroupCoordinatorService: a non-stable OffsetFetch is a read operation, everything else a write operation
        read = isinstance(request, OffsetFetchRequest) and not request.require_stable
        self._durably(lambda gc: gc.handle(packet.correlation_id, request, self.node.world.now), read=read)
        self._schedule_timer()

    def _durably(self, step: Callable[[GroupCoordinator], list[object]], *, read: bool = False) -> simpy.Event | None:
        """Apply the effects of ``step``. One broker: the offsets log is committed at once. Several brokers: once
        the offsets-log batches it wrote are replicated (CoordinatorRuntime: a write's response waits until the
        high watermark passes its records); a write operation that wrote nothing is answered once everything
        written before it is committed (CoordinatorRuntime.append with no records), a read operation at once.
        Returns the event that fires with the append's error, None when nothing was written."""
        gc = self.gc
        written = len(gc.offsets_log.batches)
        effects = step(gc)
        batches = tuple(gc.offsets_log.batches[written:])
        if self.node.producer_ids is None:
            gc.on_high_watermark(gc.offsets_log.log_end_offset)  # one replica: the HW follows the log end at once
            self.apply(effects)
            return None
        if not batches:
            last_written = self._ends[-1] if self._ends else 0
            responds = [e for e in effects if isinstance(e, Respond)]
            if read or not responds or gc.last_committed_offset >= last_written:
                self.apply(effects)
            else:
                self.apply([e for e in effects if not isinstance(e, Respond)])
                self._defer(last_written, responds)
            return None
        node = self.node
        durable = node.world.env.event()
        part = node.replicated.parts[OFFSETS_PARTITION]
        epoch = self.epoch

        def done(error: Errors) -> None:
            if error is Errors.NONE:
                self.apply(effects)
            else:
                # the write failed (the leadership moved, no ISR, its timeout): its requests get the coordinator's error
                self._fail([e for e in effects if isinstance(e, Respond)], error)
                if error is Errors.REQUEST_TIMED_OUT and self.epoch == epoch:
                    # CoordinatorRuntime: a timed-out write fails only its response; its records stay in the log
                    # and the state they wrote becomes committed (visible) when the high watermark passes them
                    self._defer(batches[-1].next_offset, [e for e in effects if not isinstance(e, Respond)],
                                expires=False)
            durable.succeed(error)

        before = part.log_end_offset
        self._ends += [batch.next_offset for batch in batches]  # before the append: its HW update reads them
        node.replicated.append_internal(OFFSETS_PARTITION, batches, OFFSET_COMMIT_TIMEOUT_MS, done)
        if part.log_end_offset == before:
            del self._ends[-len(batches):]  # refused: never in the partition (Kafka reverts the state to the snapshot)
        return durable

    def _schedule_timer(self) -> None:
        deadline = self.gc.next_deadline()
        if deadline is None or deadline in self._timers:
            return
        self._timers.add(deadline)
        self.node.later(max(deadline - self.node.world.now, 0), lambda: self._fire_timer(deadline))

    def _fire_timer(self, deadline: int) -> None:
        self._timers.discard(deadline)
        self._durably(lambda gc: gc.on_timer(self.node.world.now))
        self._schedule_timer()

    def write_marker(self, entry: TxnMarkerEntry, now: int) -> tuple[Errors, simpy.Event | None]:
        """The transaction's offsets become visible or are dropped (GroupCoordinator.completeTransaction); with
        several brokers, the event that fires once the marker is replicated (None: nothing written)."""
        if self._loading or self.epoch < 0:
            # KafkaApis.handleWriteTxnMarkersRequest: a group coordinator that is not ready answers
            # NOT_LEADER_OR_FOLLOWER, so the transaction coordinator retries
            return Errors.NOT_LEADER_OR_FOLLOWER, None
        outcome: list[Errors] = []

        def complete(gc: GroupCoordinator) -> list[object]:
            error, effects = gc.complete_transaction(
                producer_id=entry.producer_id, producer_epoch=entry.producer_epoch,
                coordinator_epoch=entry.coordinator_epoch, result=entry.result, now=now)
            outcome.append(error)
            return effects
        written = self._durably(complete)
        return outcome[0], written

    def apply(self, effects: Iterable[object]) -> None:
        node = self.node
        for effect in effects:
            if isinstance(effect, Respond):
                node.respond(effect)
            elif isinstance(effect, GroupStateChanged):
                node.emit("group.generation", group_id=effect.group_id, state=str(effect.new),
                          generation_id=effect.generation_id, members=list(effect.members))
            elif isinstance(effect, OffsetsCommitted):
                node.emit("group.offsets", group_id=effect.group_id, tp=effect.partition, offset=effect.offset,
                          producer_id=effect.producer_id)
            elif isinstance(effect, OffsetsPending):
                node.emit("group.pending", group_id=effect.group_id, tp=effect.partition, offset=effect.offset,
                          producer_id=effect.producer_id, producer_epoch=effect.producer_epoch)
            else:
                raise TypeError(f"unknown effect {effect!r}")


def offsets_log_of(batches: Iterable[LogBatch], config: Any, now: int, committed: int | None = None) -> PartitionLog:
    """The offsets log a new group coordinator loads (CoordinatorLoaderImpl): the replica's batches appended again
    in order, as a follower's log has them (origin REPLICATION: no validation), so each keeps its offset. Its high
    watermark is after the first ``committed`` batches (the partition's HW: CoordinatorLoaderImpl reads to the log
    end, but only what is below the HW is committed), or at its end."""
    log = PartitionLog(OFFSETS_PARTITION, config)
    ends = [0]
    for batch in batches:
        if batch.is_control:
            log.append_marker(producer_id=batch.producer_id, producer_epoch=batch.producer_epoch,
                              coordinator_epoch=batch.coordinator_epoch, control=batch.control,
                              now=batch.timestamp)
        else:
            log.append_as_leader(RecordBatch(records=batch.records, producer_id=batch.producer_id,
                                             producer_epoch=batch.producer_epoch, base_sequence=batch.base_sequence,
                                             is_transactional=batch.is_transactional),
                                 now, origin=AppendOrigin.REPLICATION)
        ends.append(log.log_end_offset)
    log.advance_high_watermark(log.log_end_offset if committed is None else ends[min(committed, len(ends) - 1)])
    return log
