"""eosim._replicas
==============

The partitions a broker node leads (Kafka's ReplicaManager, a role hosted by ``eosim._broker.BrokerNode``):
Produce with KIP-890 verification, Fetch, ListOffsets, the transaction markers of data partitions, and
producer-id expiry. With one replica the high watermark follows the log end at once (``_replicate``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import attrs
from attrs import define, field

from eosim.models.errors import Errors
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
)
from eosim.models.records import ControlType, RecordBatch, TopicPartition
from eosim.models.txn_coordinator import AddPartitionsToTxnRequest, TxnMarkerEntry
from eosim._net import Packet

if TYPE_CHECKING:
    from eosim._broker import BrokerNode


# Read on every append, so a module constant: on Python 3.11 an enum member read through its class costs a
# Python-level __getattr__ (EnumType's); a global read does not.
_NONE = Errors.NONE


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


def verification_error_for(error: Errors, api_version: int) -> Errors:
    """The coordinator's answer as a Produce of ``api_version`` reports it: v11+ keeps TRANSACTION_ABORTABLE
    (KAFKA-16314), v12+ (TV2) keeps CONCURRENT_TRANSACTIONS, which the client retries."""
    if api_version >= TRANSACTION_ABORTABLE_PRODUCE_VERSION and error is Errors.TRANSACTION_ABORTABLE:
        return error
    if api_version >= TV2_PRODUCE_VERSION and error is Errors.CONCURRENT_TRANSACTIONS:
        return error
    return VERIFICATION_ERROR_FOR_OLD_PRODUCE.get(error, error)


@define(eq=False)
class ReplicaManager:
    node: BrokerNode
    topics: dict[str, int]
    logs: dict[TopicPartition, PartitionLog] = field(init=False)
    # the logs by (topic, partition): a Produce finds its log by a tuple, hashed and compared in C, not TopicPartition's
    # Python-level __hash__ and __eq__ (the request's partition is the client's object, not the log's key)
    _by_name: dict[tuple[str, int], PartitionLog] = field(init=False)
    _refuse_produce: dict[int, Errors] = field(init=False, factory=dict)  # Produce correlation id -> injected error
    # (connection, partition) -> (the partition-state error a Produce was refused with, when): see _partition_state
    _refusing: dict[tuple[str, TopicPartition], tuple[Errors, int]] = field(init=False, factory=dict)
    # the trace's emitters of the kinds traced per append (Trace.emitter)
    _emit_append: Callable[..., Any] = field(init=False, repr=False)
    _emit_offsets: Callable[..., Any] = field(init=False, repr=False)
    _emit_marker: Callable[..., Any] = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        trace = self.node.world.trace
        self._emit_append, self._emit_offsets, self._emit_marker = (
            trace.emitter("log.append"), trace.emitter("log.offsets"), trace.emitter("log.marker"))
        config = self.node.config
        self.logs = {
            TopicPartition(topic, p): PartitionLog(TopicPartition(topic, p), config)
            for topic, count in self.topics.items()
            for p in range(count)
        }
        self._by_name = {(tp.topic, tp.partition): log for tp, log in self.logs.items()}

    def handlers(self) -> dict[type, Callable[[Packet, Any], None]]:
        return {ProduceRequest: self._produce, FetchRequest: self._fetch, ListOffsetsRequest: self._list_offsets}

    def start_timers(self) -> None:
        self.node.every(self.node.config.producer_id_expiration_check_interval_ms, self._expire_producers)

    def crash(self) -> None:
        self._refuse_produce.clear()
        self._refusing.clear()

    def recover(self, now: int) -> None:
        for log in self.logs.values():
            log.recover(now=now)

    def refuses_with(self, packet: Packet, error: Errors) -> bool:
        """An injected error for a Produce stands for a partition's state (min ISR, leadership, log directory):
        ``_produce_process`` refuses where Kafka does. Any other request is answered with it at once."""
        if not isinstance(packet.payload, ProduceRequest):
            return False
        self._refuse_produce[packet.correlation_id] = error
        return True

    def write_marker(self, tp: TopicPartition, entry: TxnMarkerEntry, now: int) -> Errors:
        log = self.logs.get(tp)
        if log is None:
            return Errors.UNKNOWN_TOPIC_OR_PARTITION
        result = log.append_marker(producer_id=entry.producer_id, producer_epoch=entry.producer_epoch,
                                   coordinator_epoch=entry.coordinator_epoch,
                                   control=entry.result.control_type, now=now,
                                   transaction_version=entry.transaction_version)
        self.trace_marker(tp, entry.producer_id, entry.producer_epoch, entry.coordinator_epoch,
                          entry.result.control_type, result)
        if result.error is _NONE:
            self._replicate(log)
        return result.error

    def trace_marker(self, tp: TopicPartition, producer_id: int, producer_epoch: int, coordinator_epoch: int,
                     control: ControlType, result: AppendResult) -> None:
        if result.error is Errors.NONE:
            self._emit_marker(self.node.node, tp=tp, offset=result.base_offset, producer_id=producer_id,
                              producer_epoch=producer_epoch, coordinator_epoch=coordinator_epoch, control=control.name)
        else:
            self.node.emit("log.reject_marker", tp=tp, producer_id=producer_id, producer_epoch=producer_epoch,
                           error=result.error.name)

    def _replicate(self, log: PartitionLog) -> None:
        """One replica: the HW follows the LEO at once (acks=all is met by the leader alone)."""
        end = log.log_end_offset
        log.advance_high_watermark(end)  # the HW is then the LEO (never past it)
        self._emit_offsets(self.node.node, tp=log.tp, log_end_offset=end, high_watermark=end,
                           last_stable_offset=log.last_stable_offset)

    def _produce(self, packet: Packet, request: ProduceRequest) -> None:
        self.node.start(self._produce_process(packet, request))

    def _produce_process(self, packet: Packet, request: ProduceRequest):
        injected = self._refuse_produce.pop(packet.correlation_id, None) if self._refuse_produce else None
        responses = []
        for tp, batch in request.batches:
            log = self._by_name.get((tp.topic, tp.partition))
            if log is None:
                responses.append(PartitionProduceResponse(partition=tp, error=Errors.UNKNOWN_TOPIC_OR_PARTITION))
                continue
            refused = injected or (self._partition_state(packet, tp) if self._refusing else None)
            error, guard = _NONE, None
            if refused is not None and refused is not Errors.NOT_ENOUGH_REPLICAS:
                error = refused  # ReplicaManager.getPartitionOrException: not the leader, or its log dir offline
            elif log.needs_verification(batch, supports_epoch_bump=request.api_version >= TV2_PRODUCE_VERSION):
                error, guard = yield from self.verify(log, batch, request.transactional_id, request.api_version)
            if error is _NONE and refused is not None:
                # The min-ISR check is Partition.appendRecordsToLeader's, reached only after ReplicaManager
                # .handleProduceAppend verified the batch (KIP-890): the verification entry, with its lowest
                # sequence (KAFKA-14920), stays behind for the later batches of the same transaction.
                error = refused
            if refused is not None:
                self._refusing[(packet.src, tp)] = (refused, self.node.world.now)
            if error is _NONE:
                delay = self.node.work.draw("log.append")
                if delay:
                    yield self.node.world.env.timeout(delay)
                result = log.append_as_leader(batch, self.node.world.env._now, verification_guard=guard)
            else:
                result = AppendResult(error=error)
            self.trace_append(log, batch, result)
            if result.error is _NONE and not result.duplicate:
                self._replicate(log)
            # by make: a class called with keywords packs them into a dict (eosim.models.values)
            responses.append(PartitionProduceResponse.make(partition=tp, error=result.error, base_offset=result.base_offset,
                                                      log_start_offset=log.log_start_offset))
        self.node.reply(packet, ProduceResponse.make(responses=tuple(responses)))

    def _partition_state(self, packet: Packet, tp: TopicPartition) -> Errors | None:
        """An injected refusal stands for the partition's state, which Kafka reads afresh for every request but
        which cannot change between two requests it handles back to back: a Produce for the same partition that
        the client sent before the refusal was answered meets the same state. Without this, a one-shot fault
        lets the batch behind the refused one in: a producer id with no state on the partition takes it at any
        sequence (KIP-360), and librdkafka acks the refused batch implicitly (rd_kafka_dr_implicit_ack)."""
        held = self._refusing.get((packet.src, tp))
        return held[0] if held is not None and packet.sent_at <= held[1] else None

    def verify(self, log: PartitionLog, batch: RecordBatch, transactional_id: str | None, api_version: int):
        """KIP-890: ask the coordinator whether the partition is in the producer's ongoing txn (part 1), or, for a
        TV2 produce (v12+, part 2), have it add the partition (AddPartitionsToTxn v5, not verify-only; the broker
        retries CONCURRENT_TRANSACTIONS itself for a while). Returns (error as the produce response of this version
        reports it, the guard the append must present)."""
        early = log.verification_epoch_error(batch.producer_id, batch.producer_epoch)
        if early is not Errors.NONE:  # a stale epoch is refused before any coordinator round trip
            return early, None
        tv2 = api_version >= TV2_PRODUCE_VERSION
        guard = log.start_verification(batch.producer_id, batch.producer_epoch, batch.base_sequence,
                                       supports_epoch_bump=tv2, now=self.node.world.now)
        request = AddPartitionsToTxnRequest.make(transactional_id=transactional_id, producer_id=batch.producer_id,
                                                 producer_epoch=batch.producer_epoch, partitions=(log.tp,),
                                                 verify_only=not tv2)
        if tv2:
            error = yield from self.node.add_partition_tv2(attrs.evolve(request, transaction_version=2, api_version=5),
                                                           log.tp)
        else:
            error = yield from self.node.ask_coordinator(request, log.tp)
        return verification_error_for(error, api_version), guard

    def trace_append(self, log: PartitionLog, batch: RecordBatch, result: AppendResult) -> None:
        if result.error is _NONE and not result.duplicate:
            base = result.base_offset
            self._emit_append(
                self.node.node, base_offset=base, last_offset=result.last_offset,
                transactional=batch.is_transactional,
                records=[[base + i, r.key, r.value] for i, r in enumerate(batch.records)], tp=log.tp,
                producer_id=batch.producer_id, producer_epoch=batch.producer_epoch, base_sequence=batch.base_sequence)
            return
        common = dict(tp=log.tp, producer_id=batch.producer_id, producer_epoch=batch.producer_epoch,
                      base_sequence=batch.base_sequence)
        # what a refused or deduplicated batch carried: the oracle tells a retry from new records (sequence-reuse)
        sent = [[r.key, r.value] for r in batch.records]
        if result.error is not _NONE:
            self.node.emit("log.reject", error=result.error.name, records=sent, **common)
        else:
            self.node.emit("log.duplicate", base_offset=result.base_offset, last_offset=result.last_offset,
                           records=sent, **common)

    def _fetch(self, packet: Packet, request: FetchRequest) -> None:
        responses = []
        for tp, offset in request.partitions:
            log = self.logs[tp]
            responses.append((tp, log.read(offset, request.isolation_level, request.max_records)))
        self.node.reply(packet, FetchResponse(responses=tuple(responses)))

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
        self.node.reply(packet, ListOffsetsResponse(responses=tuple(responses)))

    def _expire_producers(self, now: int) -> None:
        for tp, log in self.logs.items():
            for pid in log.remove_expired_producers(now):
                self.node.emit("log.producer_expired", tp=tp, producer_id=pid)
