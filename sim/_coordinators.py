"""eosim._coordinators
==================

The two coordinators as roles a broker node hosts (``eosim._broker.BrokerNode``): each wraps its model,
keeps what the model asks the runtime to keep, applies the model's effects, and loads after an election.

- ``TxnCoordinatorRole``: the transaction coordinator (models/txn_coordinator.py), its
  ``__transaction_state`` records (``log``, on disk: they survive a crash), its marker channel
  (TransactionMarkerChannelManager) and its two cleanup timers.
- ``GroupCoordinatorRole``: the group coordinator (models/group_coordinator.py), its deadline timers,
  and COORDINATOR_LOAD_IN_PROGRESS while it loads the offsets log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

from attrs import define, field

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
from eosim.models.protocol import WriteTxnMarkersRequest
from eosim.models.records import CONSUMER_OFFSETS_TOPIC, TopicPartition, partition_for
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
    TxnMarkerEntry,
    TxnStateChanged,
    first_producer_id_after_restart,
)
from eosim._net import Failure, Packet

if TYPE_CHECKING:
    from eosim._broker import BrokerNode

TV2_TXN_OFFSET_COMMIT_VERSION = 5  # TxnOffsetCommitRequest.LAST_STABLE_VERSION_BEFORE_TRANSACTION_V2 (4) + 1


@define(eq=False)
class TxnCoordinatorRole:
    node: BrokerNode
    tc: TransactionCoordinator = field(init=False)
    # On disk: the __transaction_state partition's records, in append order (they survive a crash).
    log: list[TxnLogRecord] = field(init=False, factory=list)

    def __attrs_post_init__(self) -> None:
        self.tc = TransactionCoordinator(self.node.config)

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
        self.tc = TransactionCoordinator(self.node.config, first_producer_id=first_producer_id_after_restart(
            self.tc.first_producer_id, self.tc.next_producer_id))

    def resign(self, down_ms: int) -> None:
        """TCo.onResignation: this node no longer leads __transaction_state."""
        self.tc.resign()
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
                node.emit("txn.log", write_id=effect.write_id, transactional_id=effect.transactional_id,
                          state=effect.record.state.kafka_name, producer_id=effect.record.producer_id,
                          producer_epoch=effect.record.producer_epoch)
                # The leader's local append is synchronous (it is on disk at once); acks=all then completes. An
                # injected error fails it before the local append, or after it (the record stays in the log while
                # the coordinator is told it failed: Partition.appendRecordsToLeader, DelayedProduce).
                failed = node.inject_txn_log(node.node, effect)
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
                node.emit("txn.state", transactional_id=effect.transactional_id, old=effect.old.kafka_name,
                          new=effect.new.kafka_name, producer_id=effect.producer_id,
                          producer_epoch=effect.producer_epoch, txn_timeout_ms=effect.txn_timeout_ms)
            else:
                raise TypeError(f"unknown effect {effect!r}")

    def _send_markers(self, tc: TransactionCoordinator, entry: TxnMarkerEntry):
        """The coordinator's marker channel (TransactionMarkerChannelManager); the answer goes to the coordinator
        that sent the request (TMRCH): per partition, or, with none, the entry again unless the partition moved.
        The markers wait in the channel's queue first: EndTxn was answered already (TransactionCoordinator
        .endTransaction answers once PrepareCommit/PrepareAbort is durable, then hands the markers over)."""
        node = self.node
        delay = node.work.draw("markers")
        if delay:
            yield node.world.env.timeout(delay)
        response = yield node.inter_broker("markers", WriteTxnMarkersRequest(entry=entry))
        if isinstance(response, Failure):
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

    def __attrs_post_init__(self) -> None:
        # One log stands for every __consumer_offsets partition: only the group coordinator reads it.
        config = self.node.config
        self.gc = GroupCoordinator(config, PartitionLog(TopicPartition(CONSUMER_OFFSETS_TOPIC, 0), config),
                                   topics=self.topics)

    def handlers(self) -> dict[type, Callable[[Packet, Any], None]]:
        return dict.fromkeys((JoinGroupRequest, ConsumerGroupHeartbeatRequest, SyncGroupRequest, HeartbeatRequest,
                              LeaveGroupRequest, OffsetCommitRequest, TxnOffsetCommitRequest, OffsetFetchRequest),
                             self._handle)

    def crash(self) -> None:
        self._timers.clear()

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
        self.apply(self.gc.handle(packet.correlation_id, request, self.node.world.now))
        self._schedule_timer()

    def _schedule_timer(self) -> None:
        deadline = self.gc.next_deadline()
        if deadline is None or deadline in self._timers:
            return
        self._timers.add(deadline)
        self.node.later(max(deadline - self.node.world.now, 0), lambda: self._fire_timer(deadline))

    def _fire_timer(self, deadline: int) -> None:
        self._timers.discard(deadline)
        self.apply(self.gc.on_timer(self.node.world.now))
        self._schedule_timer()

    def write_marker(self, entry: TxnMarkerEntry, now: int) -> Errors:
        """The transaction's offsets become visible or are dropped (GroupCoordinator.completeTransaction)."""
        if self._loading:
            # KafkaApis.handleWriteTxnMarkersRequest: a group coordinator that is not ready answers
            # NOT_LEADER_OR_FOLLOWER, so the transaction coordinator retries
            return Errors.NOT_LEADER_OR_FOLLOWER
        error, effects = self.gc.complete_transaction(
            producer_id=entry.producer_id, producer_epoch=entry.producer_epoch,
            coordinator_epoch=entry.coordinator_epoch, result=entry.result, now=now)
        self.apply(effects)
        return error

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
