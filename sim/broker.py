"""sim.broker
==========

A broker node: the leader of every partition, the transaction coordinator and the group coordinator of
a single-node cluster (the shape the conformance broker has). It only waits, delivers and applies the
models' effects: every Kafka decision is made in ``models/``.

Internal traffic goes over the network like client traffic, so faults can strike it too: the
coordinator sends WriteTxnMarkers to the partition leader, and the leader sends KIP-890 verification
(AddPartitionsToTxn, verifyOnly) to the coordinator, even though both are this node. Each uses its own
connection (``broker-1/markers``, ``broker-1/verification``), as Kafka's inter-broker clients do.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Iterable

import simpy
from attrs import define, field, frozen

from models.api import error_response
from models.config import BrokerConfig
from models.effects import Respond
from models.errors import Errors
from models.group_coordinator import (
    GroupCoordinator,
    GroupStateChanged,
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    OffsetsCommitted,
    OffsetsPending,
    TxnOffsetCommitRequest,
)
from models.log import AppendResult, PartitionLog
from models.protocol import (
    EARLIEST_TIMESTAMP,
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)
from models.records import CONSUMER_OFFSETS_TOPIC, RecordBatch, TopicPartition
from models.txn_coordinator import (
    AddOffsetsToTxnRequest,
    AddPartitionsToTxnRequest,
    AppendTxnLog,
    EndTxnRequest,
    InitProducerIdRequest,
    SendTxnMarkers,
    TransactionCoordinator,
    TxnStateChanged,
)
from sim.net import Failure, Network, Packet
from sim.world import World

TXN_LOG_APPEND_MS = 1  # a replicated write to __transaction_state on a one-node cluster
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


@frozen(kw_only=True)
class Injection:
    """An error the broker answers a request with instead of its own answer; ``after_apply``: it does
    the work first (models.api.INFRASTRUCTURE_ERRORS says which errors come after the work)."""

    error: Errors
    after_apply: bool


def no_injection(_packet: Packet) -> Injection | None:
    return None


@define(eq=False)
class Broker:
    world: World
    network: Network
    config: BrokerConfig
    topics: dict[str, int]
    node: str = "broker-1"
    # The fault layer's hook (sim/faults.py), asked as each request is handled.
    inject: Callable[[Packet], Injection | None] = no_injection
    logs: dict[TopicPartition, PartitionLog] = field(init=False)
    tc: TransactionCoordinator = field(init=False)
    gc: GroupCoordinator = field(init=False)
    _requests: dict[int, Packet] = field(init=False, factory=dict)
    _muted: dict[str, deque[Packet]] = field(init=False, factory=dict)  # connection → requests read after the one in progress
    _answer_with: dict[int, Errors] = field(init=False, factory=dict)  # correlation id -> injected error
    _gc_timers: set[int] = field(init=False, factory=set)
    _handlers: dict[type, Callable[[Packet, Any], None]] = field(init=False)

    def __attrs_post_init__(self) -> None:
        self.logs = {
            TopicPartition(topic, p): PartitionLog(TopicPartition(topic, p), self.config)
            for topic, count in self.topics.items()
            for p in range(count)
        }
        self.tc = TransactionCoordinator(self.config)
        # One log stands for every __consumer_offsets partition: only the group coordinator reads it.
        self.gc = GroupCoordinator(self.config, PartitionLog(TopicPartition(CONSUMER_OFFSETS_TOPIC, 0), self.config))
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
            HeartbeatRequest: group,
            LeaveGroupRequest: group,
            OffsetCommitRequest: group,
            TxnOffsetCommitRequest: group,
            OffsetFetchRequest: group,
        }
        self.network.register(self.node, self._receive)
        env = self.world.env
        env.process(self._every(self.config.transaction_abort_timed_out_transaction_cleanup_interval_ms,
                                lambda now: self._apply(self.tc.abort_timed_out_transactions(now))))
        env.process(self._every(self.config.transaction_remove_expired_transaction_cleanup_interval_ms,
                                lambda now: self._apply(self.tc.remove_expired_transactional_ids(now))))
        env.process(self._every(self.config.producer_id_expiration_check_interval_ms, self._expire_producers))

    # -- plumbing ---------------------------------------------------------------------------------

    def _receive(self, packet: Packet) -> None:
        # Kafka mutes a connection from the moment it reads a request until that request's response is
        # sent (SocketServer.scala, Processor): requests of one connection are handled one at a time.
        waiting = self._muted.get(packet.src)
        if waiting is not None:
            waiting.append(packet)
            return
        self._muted[packet.src] = deque()
        self._handle(packet)

    def _handle(self, packet: Packet) -> None:
        injected = self.inject(packet)
        if injected is not None and injected.after_apply:
            self._answer_with[packet.correlation_id] = injected.error
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
        if not waiting:
            del self._muted[packet.src]
            return
        following = waiting.popleft()
        # Unmuted: the next request is read in a later event, never inside this handler's call stack.
        self.world.env.timeout(0).callbacks.append(lambda _e: self._handle(following))

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
                self._reply(packet, effect.response)
            elif isinstance(effect, AppendTxnLog):
                self._emit("txn.log", write_id=effect.write_id, transactional_id=effect.transactional_id,
                           state=effect.record.state.kafka_name, producer_id=effect.record.producer_id,
                           producer_epoch=effect.record.producer_epoch)
                self.world.env.timeout(TXN_LOG_APPEND_MS).callbacks.append(
                    lambda _e, w=effect.write_id: self._apply(self.tc.on_log_append(w, Errors.NONE, self.world.now)))
            elif isinstance(effect, SendTxnMarkers):
                self.world.env.process(self._send_markers(effect.entry))
            elif isinstance(effect, TxnStateChanged):
                self._emit("txn.state", transactional_id=effect.transactional_id, old=effect.old.kafka_name,
                           new=effect.new.kafka_name, producer_id=effect.producer_id,
                           producer_epoch=effect.producer_epoch)
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

    def _to_coordinator(self, packet: Packet, request: Any) -> None:
        self._requests[packet.correlation_id] = packet
        self._apply(self.tc.handle(packet.correlation_id, request, self.world.now))

    def _to_group_coordinator(self, packet: Packet, request: Any) -> None:
        self._requests[packet.correlation_id] = packet
        self._apply(self.gc.handle(packet.correlation_id, request, self.world.now))
        self._schedule_gc_timer()

    def _schedule_gc_timer(self) -> None:
        deadline = self.gc.next_deadline()
        if deadline is None or deadline in self._gc_timers:
            return
        self._gc_timers.add(deadline)
        self.world.env.timeout(max(deadline - self.world.now, 0)).callbacks.append(
            lambda _e: self._fire_gc_timer(deadline))

    def _fire_gc_timer(self, deadline: int) -> None:
        self._gc_timers.discard(deadline)
        self._apply(self.gc.on_timer(self.world.now))
        self._schedule_gc_timer()

    def _send_markers(self, entry):
        """The coordinator's marker channel (TransactionMarkerChannelManager): resend until answered."""
        while True:
            response = yield self.network.request(f"{self.node}/markers", self.node,
                                                  WriteTxnMarkersRequest(entry=entry), INTER_BROKER_TIMEOUT_MS)
            if not isinstance(response, Failure):
                break
        for tp, error in response.results:
            self._apply(self.tc.on_marker_result(entry, tp, error, self.world.now))

    def _write_markers(self, packet: Packet, request: WriteTxnMarkersRequest) -> None:
        entry = request.entry
        now = self.world.now
        results = []
        for tp in entry.partitions:
            if tp.topic == CONSUMER_OFFSETS_TOPIC:
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
        self._emit("log.offsets", tp=log.tp, log_end_offset=log.log_end_offset,
                   high_watermark=log.high_watermark, last_stable_offset=log.last_stable_offset)

    def _produce(self, packet: Packet, request: ProduceRequest) -> None:
        self.world.env.process(self._produce_process(packet, request))

    def _produce_process(self, packet: Packet, request: ProduceRequest):
        responses = []
        for tp, batch in request.batches:
            log = self.logs.get(tp)
            if log is None:
                responses.append(PartitionProduceResponse(partition=tp, error=Errors.UNKNOWN_TOPIC_OR_PARTITION))
                continue
            error, guard = Errors.NONE, None
            if log.needs_verification(batch):
                error, guard = yield from self._verify(log, batch, request.transactional_id)
            if error is Errors.NONE:
                result = log.append_as_leader(batch, self.world.now, verification_guard=guard)
            else:
                result = AppendResult(error=error)
            self._trace_append(log, batch, result)
            if result.error is Errors.NONE and not result.duplicate:
                self._replicate(log)
            responses.append(PartitionProduceResponse(partition=tp, error=result.error, base_offset=result.base_offset,
                                                      log_start_offset=log.log_start_offset))
        self._reply(packet, ProduceResponse(responses=tuple(responses)))

    def _verify(self, log: PartitionLog, batch: RecordBatch, transactional_id: str | None):
        """KIP-890 part 1: ask the coordinator whether the partition is in the producer's ongoing txn.
        Returns (error as the produce response reports it, the guard the append must present)."""
        early = log.verification_epoch_error(batch.producer_id, batch.producer_epoch)
        if early is not Errors.NONE:  # a stale epoch is refused before any coordinator round trip
            return early, None
        guard = log.start_verification(batch.producer_id, batch.producer_epoch, batch.base_sequence,
                                       now=self.world.now)
        verdict = yield self.network.request(
            f"{self.node}/verification", self.node,
            AddPartitionsToTxnRequest(transactional_id=transactional_id, producer_id=batch.producer_id,
                                      producer_epoch=batch.producer_epoch, partitions=(log.tp,), verify_only=True),
            INTER_BROKER_TIMEOUT_MS)
        error = Errors.NETWORK_EXCEPTION if isinstance(verdict, Failure) else dict(verdict.results)[log.tp]
        return VERIFICATION_ERROR_FOR_OLD_PRODUCE.get(error, error), guard

    def _trace_append(self, log: PartitionLog, batch: RecordBatch, result: AppendResult) -> None:
        common = dict(tp=log.tp, producer_id=batch.producer_id, producer_epoch=batch.producer_epoch,
                      base_sequence=batch.base_sequence)
        if result.error is not Errors.NONE:
            self._emit("log.reject", error=result.error.name, **common)
        elif result.duplicate:
            self._emit("log.duplicate", base_offset=result.base_offset, last_offset=result.last_offset, **common)
        else:
            self._emit("log.append", base_offset=result.base_offset, last_offset=result.last_offset,
                       transactional=batch.is_transactional,
                       records=[[result.base_offset + i, r.key, r.value] for i, r in enumerate(batch.records)],
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
