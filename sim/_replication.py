"""eosim._replication
=================

The replication runtime of an N-broker cluster (issue 9, its first step): the pure replication models wired
over the simulated network, the way tests/property/test_replication_properties.py wires them synchronously.

- ``ControllerNode`` (node ``controller``): one ``ReplicationControl`` (KRaft abstracted to one controller).
  It answers RegisterBroker, BrokerHeartbeat and AlterPartition, fences brokers whose session expired
  (``on_timer`` at ``next_deadline``), and pushes every metadata record (``PartitionChange``,
  ``BrokerChange``) to every broker, in order, over one connection per broker (``MetadataUpdate``).
- ``ReplicaHost``, a role a ``BrokerNode`` hosts: its replicas (``models/partition.py``'s ``Partition``, one
  per replicated partition it is assigned). As leader it answers a client's Produce (KIP-890 verification with
  the coordinator's broker first when the batch needs it; acks 0/1/all, NOT_ENOUGH_REPLICAS, acks=all answered
  once the HW passes it), a consumer's Fetch and ListOffsets from its log (NOT_LEADER_OR_FOLLOWER where it does
  not lead), the coordinator's WriteTxnMarkers (appended with acks=all) and the followers' fetches, holding an empty fetch up to replica.fetch.wait.max.ms (DelayedFetch); as follower it
  runs one fetcher process per partition (ReplicaFetcherThread), with replica.fetch.backoff.ms after an error.
  It registers with the controller when its node starts (retrying DUPLICATE_BROKER_REGISTRATION while the old
  incarnation's session lasts) and heartbeats every broker.heartbeat.interval.ms.

The replicas keep ``models/log.py``'s ``PartitionLog``: batches with producer state and leader epochs, so a new
leader deduplicates idempotent producers, checks their sequences and knows their open transactions (docs/design.md,
"The replicated runtime: the seams"). The internal partitions ``__transaction_state-0`` and ``__consumer_offsets-0``
are replicated here too: their records are the coordinators' (a ``TxnLogRecord``, a ``LogBatch`` of the offsets
log), each the value of one ``Record`` of a batch without producer id, written with ``append_internal`` (acks=all,
as the coordinators write) and read back with ``internal_values``; their leader hosts the coordinator: a change of
leadership calls the node's ``coordinator_leadership`` (sim/_broker.py), and FindCoordinator is answered from this
broker's metadata cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

import simpy
from attrs import define, field, frozen

from eosim.models.config import ReplicationConfig
from eosim.models.log import AppendResult, FetchResult, PartitionLog
from eosim.models.effects import Respond
from eosim.models.errors import Errors
from eosim.models.partition import (
    Acks,
    FetchRequest,
    FetchResponse,
    HighWatermarkUpdated,
    LogAppended,
    LogTruncated,
    MarkerAppended,
    Partition,
    ProduceRequest,
    ProduceResponse,
    Role,
    SendAlterPartition,
    WriteMarkerRequest,
)
from eosim.models import protocol
from eosim.models.records import (CONSUMER_OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC, Record, RecordBatch, TopicPartition,
                                  partition_for)
from eosim.models.txn_coordinator import TxnMarkerEntry
from eosim.models.replication_control import (
    NO_LEADER,
    AlterPartitionRequest,
    BrokerChange,
    BrokerHeartbeatRequest,
    PartitionChange,
    PartitionRegistration,
    RegisterBrokerRequest,
    ReplicationControl,
)
from eosim._net import NO_RESPONSE, Failure, Network, Packet
from eosim._world import World

if TYPE_CHECKING:
    from eosim._broker import BrokerNode

CONTROLLER = "controller"
CONTROLLER_TIMEOUT_MS = 30_000  # the broker's controller channel: request.timeout.ms
BROKER_HEARTBEAT_INTERVAL_MS = 2_000  # broker.heartbeat.interval.ms
REGISTRATION_RETRY_MS = 1_000  # BrokerLifecycleManager's backoff after a refused registration (simplified)
REPLICA_FETCH_WAIT_MAX_MS = 500  # replica.fetch.wait.max.ms: how long a leader holds a fetch with nothing new
REPLICA_FETCH_BACKOFF_MS = 1_000  # replica.fetch.backoff.ms: a fetcher's pause after an error
INTERNAL_TOPICS = (TRANSACTION_STATE_TOPIC, CONSUMER_OFFSETS_TOPIC)
COORDINATOR_TOPIC = {protocol.CoordinatorType.TRANSACTION: TRANSACTION_STATE_TOPIC,
                     protocol.CoordinatorType.GROUP: CONSUMER_OFFSETS_TOPIC}


@frozen(kw_only=True)
class ReplicaRequest:
    """A request for one replicated partition (a Produce from a client, a Fetch from a follower)."""

    tp: TopicPartition
    request: ProduceRequest | FetchRequest


@frozen(kw_only=True)
class ReplicaResponse:
    tp: TopicPartition
    response: Any


@frozen(kw_only=True)
class MetadataUpdate:
    """The controller's metadata records, in commit order (what a broker's metadata publisher applies)."""

    records: tuple[PartitionChange | BrokerChange, ...]


@frozen(kw_only=True)
class MetadataApplied:
    """A broker's acknowledgement of a ``MetadataUpdate``."""


@frozen(kw_only=True)
class MetadataImageRequest:
    """A registered broker's catch-up with the metadata log: the answer is a ``MetadataUpdate`` of the current
    image (every broker's registration, then every partition's)."""


def internal_values(log: PartitionLog) -> list[object]:
    """The coordinators' records in an internal partition's log, in offset order (``append_internal``)."""
    return [record.value for batch in log.batches for record in batch.records]


def broker_id(node: str) -> int:
    """``broker-3`` -> 3: the broker id a node name carries."""
    return int(node.rsplit("-", 1)[1])


@define(eq=False)
class ControllerNode:
    world: World
    network: Network
    config: ReplicationConfig
    brokers: tuple[str, ...]  # every broker node, by name
    control: ReplicationControl = field(init=False)
    _timers: set[int] = field(init=False, factory=set)
    _requests: dict[int, Packet] = field(init=False, factory=dict)
    # the partitions to create once every broker is registered and unfenced (CreateTopics needs live brokers)
    _pending: list[tuple[TopicPartition, tuple[int, ...]]] = field(init=False, factory=list)
    created: list[TopicPartition] = field(init=False, factory=list)  # in creation order

    def __attrs_post_init__(self) -> None:
        self.control = ReplicationControl(self.config)
        self.network.register(CONTROLLER, self._receive)

    def create_partition(self, tp: TopicPartition, replicas: tuple[int, ...]) -> None:
        self._pending.append((tp, replicas))

    def _create_when_ready(self) -> None:
        if self._pending and all(self.control.is_active(broker_id(b)) for b in self.brokers):
            pending, self._pending = self._pending, []
            for tp, replicas in pending:
                self.created.append(tp)
                self._publish(self.control.create_partition(tp, replicas))

    def _image(self) -> MetadataUpdate:
        brokers = [BrokerChange(registration=r) for r in (self.control.broker(broker_id(b)) for b in self.brokers)
                   if r is not None]
        partitions = [PartitionChange(tp=tp, registration=self.control.partition(tp)) for tp in self.created]
        return MetadataUpdate(records=(*brokers, *partitions))

    def _receive(self, packet: Packet) -> None:
        request, cid, now = packet.payload, packet.correlation_id, self.world.now
        self._requests[cid] = packet
        if isinstance(request, RegisterBrokerRequest):
            effects = self.control.register_broker(cid, request, now)
        elif isinstance(request, BrokerHeartbeatRequest):
            effects = self.control.heartbeat(cid, request, now)
        elif isinstance(request, AlterPartitionRequest):
            effects = self.control.alter_partition(cid, request)
        elif isinstance(request, MetadataImageRequest):
            effects = [Respond(correlation_id=cid, response=self._image())]
        else:
            raise TypeError(f"the controller has no handler for {request!r}")
        self._publish(effects)
        self._create_when_ready()

    def _publish(self, effects: Iterable[object]) -> None:
        """Answers first, then the metadata records to every broker (each applies them in order)."""
        records = []
        for effect in effects:
            if isinstance(effect, Respond):
                packet = self._requests.pop(effect.correlation_id)
                self.network.respond(packet, effect.response)
            else:
                records.append(effect)
        if records:
            for node in self.brokers:
                self.network.request(f"{CONTROLLER}/metadata", node, MetadataUpdate(records=tuple(records)),
                                     CONTROLLER_TIMEOUT_MS)
        self._schedule_timer()

    def _schedule_timer(self) -> None:
        deadline = self.control.next_deadline()
        if deadline is None or deadline in self._timers:
            return
        self._timers.add(deadline)
        self.world.env.timeout(max(deadline - self.world.now, 0)).callbacks.append(
            lambda _e: self._fire_timer(deadline))

    def _fire_timer(self, deadline: int) -> None:
        self._timers.discard(deadline)
        self._publish(self.control.on_timer(self.world.now))


@define(eq=False)
class ReplicaHost:
    """The replicated partitions a broker node hosts (its part of ReplicaManager for them)."""

    node: BrokerNode
    configs: dict[str, ReplicationConfig]  # topic -> its replication settings
    assignment: dict[TopicPartition, tuple[int, ...]]  # every replicated partition -> its replicas
    parts: dict[TopicPartition, Partition] = field(init=False, factory=dict)
    # the metadata cache: every replicated partition's registration this broker has applied (Metadata answers it)
    registrations: dict[TopicPartition, PartitionRegistration] = field(init=False, factory=dict)
    broker_epoch: int = field(init=False, default=-1)
    _wake: dict[TopicPartition, simpy.Event] = field(init=False, factory=dict)  # a fetcher waiting for a leader
    _fetches: dict[TopicPartition, list[tuple[Packet, FetchRequest]]] = field(init=False, factory=dict)
    _timers: set[tuple[TopicPartition, int]] = field(init=False, factory=set)
    # the coordinators' own appends waiting for their acks (negative correlation ids: never a network one's)
    _appends: dict[int, Callable[[Errors], None]] = field(init=False, factory=dict)
    _next_append: int = field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        me = broker_id(self.node.node)
        self.parts = {tp: Partition(tp, me, self.configs[tp.topic], log=PartitionLog(tp, self.node.config))
                      for tp, replicas in sorted(self.assignment.items()) if me in replicas}

    @property
    def broker_id(self) -> int:
        return broker_id(self.node.node)

    def handlers(self) -> dict[type, Callable[[Packet, Any], None]]:
        return {ReplicaRequest: self._handle, MetadataUpdate: self._metadata, protocol.ProduceRequest: self._produce,
                protocol.MetadataRequest: self._describe, protocol.FindCoordinatorRequest: self._find_coordinator,
                protocol.FetchRequest: self._consumer_fetch, protocol.ListOffsetsRequest: self._list_offsets}

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """A new process: load the logs (LogLoader: producer state from the snapshot at the log end), register with
        the controller, then heartbeat; fetchers wait for a leader."""
        self._wake.clear()
        for part in self.parts.values():
            part.log.recover(now=self.node.world.now)
        self.node.spawn(self._register())
        for tp in self.parts:
            self.node.spawn(self._fetcher(tp))
        # the isr-expiration task (ReplicaManager.startup): every replica.lag.time.max.ms / 2
        lag = min((c.replica_lag_time_max_ms for c in self.configs.values()), default=30_000)
        self.node.every(lag // 2, self._shrink_isrs)

    def _shrink_isrs(self, now: int) -> None:
        for tp, part in self.parts.items():
            if part.role is Role.LEADER:
                self._apply(tp, part.maybe_shrink_isr(now))

    def crash(self) -> None:
        for part in self.parts.values():
            part.crash()
        self.registrations.clear()
        self._fetches.clear()
        self._timers.clear()
        self._appends.clear()

    def _register(self):
        me = self.broker_id
        while True:
            answer = yield self._to_controller(RegisterBrokerRequest(broker_id=me))
            if not isinstance(answer, Failure) and answer.error is Errors.NONE:
                break
            yield self.node.world.env.timeout(REGISTRATION_RETRY_MS)
        self.broker_epoch = answer.broker_epoch
        for part in self.parts.values():
            if part.role is Role.OFFLINE:
                part.restart(self.broker_epoch)
            else:
                part.broker_epoch = self.broker_epoch
        # the new incarnation catches up with the metadata log (BrokerMetadataListener's replay)
        while True:
            image = yield self._to_controller(MetadataImageRequest())
            if not isinstance(image, Failure):
                break
        self._apply_metadata(image)
        while True:
            yield self._to_controller(BrokerHeartbeatRequest(broker_id=me, broker_epoch=self.broker_epoch))
            yield self.node.world.env.timeout(BROKER_HEARTBEAT_INTERVAL_MS)

    def _to_controller(self, request: Any) -> simpy.Event:
        return self.node.network.request(f"{self.node.node}/controller", CONTROLLER, request, CONTROLLER_TIMEOUT_MS)

    # -- metadata ---------------------------------------------------------------------------------------

    def _metadata(self, packet: Packet, update: MetadataUpdate) -> None:
        self._apply_metadata(update)
        self.node.reply(packet, MetadataApplied())

    def _apply_metadata(self, update: MetadataUpdate) -> None:
        """The brokers' registrations first, then the partitions' (BrokerMetadataPublisher: the metadata cache takes
        the new image before ReplicaManager.applyDelta, so a leader whose ISR lost a fenced broker recomputes its
        high watermark knowing that broker is fenced: P.makeLeader's maybeIncrementLeaderHW)."""
        now = self.node.world.now
        for record in update.records:
            if isinstance(record, BrokerChange):
                for part in self.parts.values():
                    if part.role is not Role.OFFLINE:
                        part.update_broker(record.registration)
        for record in update.records:
            if isinstance(record, PartitionChange):
                self.registrations[record.tp] = record.registration
                part = self.parts.get(record.tp)
                if part is None or part.role is Role.OFFLINE:
                    continue
                was = part.role, part.leader_id, part.leader_epoch
                self._apply(record.tp, part.apply_registration(record.registration, now))
                if (part.role, part.leader_id, part.leader_epoch) != was:
                    if part.role is Role.LEADER:
                        self.node.emit("partition.leader", tp=record.tp, leader_epoch=part.leader_epoch)
                    if record.tp.topic in INTERNAL_TOPICS:
                        self.node.coordinator_leadership(record.tp, was[0] is Role.LEADER, part)
                    # the fetcher moves to the new leader (ReplicaFetcherManager.addFetcherForPartitions), leaving
                    # a fetch still waiting on the old one
                    wake = self._wake.pop(record.tp, None)
                    if wake is not None:
                        wake.succeed()

    # -- clients ----------------------------------------------------------------------------------------

    def _describe(self, packet: Packet, request: protocol.MetadataRequest) -> None:
        """KafkaApis.handleTopicMetadataRequest, from this broker's metadata cache."""
        partitions = tuple(
            protocol.PartitionMetadata(partition=tp, error=Errors.NONE if r.leader != NO_LEADER
                                       else Errors.LEADER_NOT_AVAILABLE, leader=r.leader, leader_epoch=r.leader_epoch)
            for tp, r in sorted(self.registrations.items()) if tp.topic in request.topics)
        self.node.reply(packet, protocol.MetadataResponse(partitions=partitions))

    def _find_coordinator(self, packet: Packet, request: protocol.FindCoordinatorRequest) -> None:
        """KafkaApis.handleFindCoordinatorRequest (getCoordinator): the leader of the key's partition of the internal
        topic, from this broker's metadata cache; COORDINATOR_NOT_AVAILABLE while it names none."""
        topic = COORDINATOR_TOPIC[request.key_type]
        tp = TopicPartition(topic, partition_for(request.key, self.node.config.offsets_topic_num_partitions
                                                 if topic == CONSUMER_OFFSETS_TOPIC
                                                 else self.node.config.transaction_state_log_num_partitions))
        registration = self.registrations.get(tp)
        if registration is None or registration.leader == NO_LEADER:
            self.node.reply(packet, protocol.FindCoordinatorResponse(error=Errors.COORDINATOR_NOT_AVAILABLE))
            return
        self.node.reply(packet, protocol.FindCoordinatorResponse(error=Errors.NONE, node_id=registration.leader))

    def leader_of(self, tp: TopicPartition) -> str | None:
        """The node of ``tp``'s leader in this broker's metadata cache (None: unknown or no leader)."""
        registration = self.registrations.get(tp)
        if registration is None or registration.leader == NO_LEADER:
            return None
        return f"broker-{registration.leader}"

    def append_internal(self, tp: TopicPartition, values: tuple[object, ...], timeout_ms: int,
                        done: Callable[[Errors], None]) -> None:
        """A coordinator's write to its internal partition (ReplicaManager.appendRecords with acks=-1, origin
        COORDINATOR): ``done(error)`` once the high watermark passes it, or with NOT_LEADER_OR_FOLLOWER,
        NOT_ENOUGH_REPLICAS or REQUEST_TIMED_OUT."""
        part = self.parts.get(tp)
        if part is None or part.role is not Role.LEADER:
            done(Errors.NOT_LEADER_OR_FOLLOWER)
            return
        self._next_append -= 1
        cid = self._next_append
        self._appends[cid] = done
        batch = RecordBatch(records=tuple(Record(None, value) for value in values))
        self._apply(tp, part.produce(cid, ProduceRequest(acks=Acks.ALL, batch=batch, timeout_ms=timeout_ms),
                                     self.node.world.now))
        self._complete_fetches(tp)

    def _produce(self, packet: Packet, request: protocol.ProduceRequest) -> None:
        """A client's Produce (one partition's batch): KIP-890 verification with the transaction coordinator when
        the batch needs it (RM.appendRecords, sim/_replicas.py's ``verify``), then ``Partition.produce``."""
        if request.batches[0][0] not in self.assignment:  # a single-replica topic's (on broker-1): ReplicaManager's
            self.node.replicas.handlers()[protocol.ProduceRequest](packet, request)
            return
        self.node.hold(packet)
        self.node.start(self._produce_process(packet, request))

    def _produce_process(self, packet: Packet, request: protocol.ProduceRequest):
        [(tp, batch)] = request.batches
        part, guard = self._leading(tp), None
        if part is not None and part.log.needs_verification(
                batch, supports_epoch_bump=request.api_version >= protocol.TV2_PRODUCE_VERSION):
            error, guard = yield from self.node.replicas.verify(part.log, batch, request.transactional_id,
                                                                 request.api_version)
            part = self._leading(tp)  # leadership may have moved while the coordinator answered
            if part is not None and error is not Errors.NONE:
                self.node.replicas.trace_append(part.log, batch, AppendResult(error=error))
                self._apply(tp, [Respond(correlation_id=packet.correlation_id, response=ProduceResponse(error=error))])
                return
        if part is None:
            self._apply(tp, [Respond(correlation_id=packet.correlation_id,
                                     response=ProduceResponse(error=Errors.NOT_LEADER_OR_FOLLOWER))])
            return
        effects = part.produce(packet.correlation_id, ProduceRequest(acks=Acks(request.acks), batch=batch,
                                                                     verification_guard=guard),
                               self.node.world.now)
        self._apply(tp, effects)
        if request.acks == Acks.ZERO:
            self.node.answer(packet.correlation_id)
            self.node.reply(packet, NO_RESPONSE)
        self._complete_fetches(tp)

    def write_marker(self, tp: TopicPartition, entry: TxnMarkerEntry) -> simpy.Event:
        """A WriteTxnMarkers entry's marker for this broker's replica of ``tp`` (BrokerNode.write_markers), appended
        by ``Partition.write_marker`` with acks=all: the event fires with the error once the HW passes it
        (KafkaApis.handleWriteTxnMarkersRequest: requiredAcks -1), NOT_LEADER_OR_FOLLOWER where this broker does
        not lead ``tp``."""
        written = self.node.world.env.event()
        self._next_append -= 1
        cid = self._next_append
        self._appends[cid] = written.succeed
        marker = WriteMarkerRequest(producer_id=entry.producer_id, producer_epoch=entry.producer_epoch,
                                    coordinator_epoch=entry.coordinator_epoch, control=entry.result.control_type)
        self._apply(tp, self.parts[tp].write_marker(cid, marker, self.node.world.now))
        self._complete_fetches(tp)
        return written

    def _leading(self, tp: TopicPartition) -> Partition | None:
        """This broker's replica of ``tp`` if it leads it (P.getLocalLog with fetchOnlyFromLeader)."""
        part = self.parts.get(tp)
        return part if part is not None and part.role is Role.LEADER else None

    def _consumer_fetch(self, packet: Packet, request: protocol.FetchRequest) -> None:
        """A consumer's Fetch (RM.fetchMessages from a consumer: the leader's log, read_uncommitted up to the HW,
        read_committed up to the LSO, UL.read); a partition this broker does not lead gets NOT_LEADER_OR_FOLLOWER.
        An empty answer is sent at once: the consumer waits fetch.wait.max.ms itself (docs/fidelity.md)."""
        if all(tp not in self.assignment for tp, _offset in request.partitions):  # single-replica topics'
            self.node.replicas.handlers()[protocol.FetchRequest](packet, request)
            return
        responses = []
        for tp, offset in request.partitions:
            part = self._leading(tp)
            if tp not in self.assignment:
                result = self.node.replicas.logs[tp].read(offset, request.isolation_level, request.max_records)
            elif part is None:
                result = FetchResult(error=Errors.NOT_LEADER_OR_FOLLOWER, batches=(), high_watermark=-1,
                                     last_stable_offset=-1, log_start_offset=-1, aborted_transactions=(),
                                     fetch_offset=offset)
            else:
                result = part.log.read(offset, request.isolation_level, request.max_records)
            responses.append((tp, result))
        self.node.reply(packet, protocol.FetchResponse(responses=tuple(responses)))

    def _list_offsets(self, packet: Packet, request: protocol.ListOffsetsRequest) -> None:
        """ListOffsets on the leader (P.fetchOffsetForTimestamp): EARLIEST the log start, LATEST the LSO for
        read_committed, else the HW; NOT_LEADER_OR_FOLLOWER elsewhere."""
        if request.partitions[0][0] not in self.assignment:  # a single-replica topic's: ReplicaManager's
            self.node.replicas.handlers()[protocol.ListOffsetsRequest](packet, request)
            return
        responses = []
        for tp, timestamp in request.partitions:
            part = self._leading(tp)
            if part is None:
                responses.append((tp, Errors.NOT_LEADER_OR_FOLLOWER, -1))
            elif timestamp == protocol.EARLIEST_TIMESTAMP:
                responses.append((tp, Errors.NONE, part.log.log_start_offset))
            else:
                responses.append((tp, Errors.NONE, part.log.list_offset_latest(request.isolation_level)))
        self.node.reply(packet, protocol.ListOffsetsResponse(responses=tuple(responses)))

    # -- leader -----------------------------------------------------------------------------------------

    def _handle(self, packet: Packet, envelope: ReplicaRequest) -> None:

        part = self.parts.get(envelope.tp)
        request, now = envelope.request, self.node.world.now
        if part is None or part.role is Role.OFFLINE:
            error = Errors.NOT_LEADER_OR_FOLLOWER
            self.node.reply(packet, ReplicaResponse(tp=envelope.tp, response=_refusal(request, error)))
            return
        self.node.hold(packet)
        if isinstance(request, ProduceRequest):
            self._apply(envelope.tp, part.produce(packet.correlation_id, request, now))
            if request.acks is Acks.ZERO:
                self.node.answer(packet.correlation_id)
                self.node.reply(packet, NO_RESPONSE)
            self._complete_fetches(envelope.tp)
        else:
            self._follower_fetch(envelope.tp, packet, request, held=False)

    def _follower_fetch(self, tp: TopicPartition, packet: Packet, request: FetchRequest, *, held: bool) -> None:
        """Answer a follower's fetch, or hold it while it has nothing new (DelayedFetch): an append completes it,
        else replica.fetch.wait.max.ms does."""
        *effects, respond = self.parts[tp].follower_fetch(packet.correlation_id, request, self.node.world.now)
        self._apply(tp, effects)
        response = respond.response
        if not held and response.error is Errors.NONE and not response.records and response.diverging_epoch is None:
            self._fetches.setdefault(tp, []).append((packet, request))
            self.node.later(REPLICA_FETCH_WAIT_MAX_MS, lambda: self._expire_fetch(tp, packet))
            return
        self._apply(tp, [respond])

    def _complete_fetches(self, tp: TopicPartition) -> None:
        for packet, request in self._fetches.pop(tp, []):
            self._follower_fetch(tp, packet, request, held=True)

    def _expire_fetch(self, tp: TopicPartition, packet: Packet) -> None:
        waiting = self._fetches.get(tp, [])
        for i, (held, request) in enumerate(waiting):
            if held is packet:
                del waiting[i]
                self._follower_fetch(tp, packet, request, held=True)
                return

    # -- follower ---------------------------------------------------------------------------------------

    def _fetcher(self, tp: TopicPartition):
        """ReplicaFetcherThread for one partition: fetch from the leader while this replica follows."""
        part, node = self.parts[tp], self.node
        env = node.world.env
        while True:
            self._wake[tp] = wake = env.event()
            request = part.build_fetch_request() if part.role is Role.FOLLOWER else None
            if request is None:
                yield wake
                continue
            # Kafka fetches every partition of one leader in one Fetch; here each partition is its own request, so
            # an internal partition's held fetch must not delay the data partitions': it has its own connection
            connection = f"{node.node}/fetcher" if tp.topic not in INTERNAL_TOPICS else \
                f"{node.node}/fetcher/{tp.topic}-{tp.partition}"
            reply = node.network.request(connection, f"broker-{part.leader_id}",
                                         ReplicaRequest(tp=tp, request=request), CONTROLLER_TIMEOUT_MS)
            yield env.any_of([reply, wake])
            if not reply.triggered:
                continue  # the leader changed: fetch from the new one
            answer = reply.value
            if isinstance(answer, Failure):
                yield env.timeout(REPLICA_FETCH_BACKOFF_MS)
                continue
            response: FetchResponse = answer.response
            self._apply(tp, part.on_fetch_response(request, response, node.world.now))
            if response.error is not Errors.NONE:
                yield node.world.env.timeout(REPLICA_FETCH_BACKOFF_MS)

    # -- effects ----------------------------------------------------------------------------------------

    def _apply(self, tp: TopicPartition, effects: Iterable[object]) -> None:
        node = self.node
        part = self.parts[tp]
        for effect in effects:
            if isinstance(effect, Respond):
                done = self._appends.pop(effect.correlation_id, None)
                if done is not None:
                    done(effect.response.error)
                    continue
                packet = node.answer(effect.correlation_id)
                if isinstance(packet.payload, protocol.ProduceRequest):
                    node.reply(packet, protocol.ProduceResponse(responses=(protocol.PartitionProduceResponse(
                        partition=tp, error=effect.response.error, base_offset=effect.response.base_offset),)))
                else:
                    node.reply(packet, ReplicaResponse(tp=tp, response=effect.response))
            elif isinstance(effect, SendAlterPartition):
                node.spawn(self._alter_partition(tp, effect.request))
            elif isinstance(effect, HighWatermarkUpdated):
                if part.role is Role.LEADER and tp.topic == CONSUMER_OFFSETS_TOPIC:
                    node.group.on_high_watermark(effect.high_watermark)  # the group coordinator's HW listener
                if part.role is not Role.LEADER or tp.topic in INTERNAL_TOPICS:
                    continue  # a follower's copy of the leader's HW: the leader traced it; no reader reads internals
                node.emit("log.offsets", tp=tp, log_end_offset=part.log_end_offset,
                          high_watermark=effect.high_watermark, last_stable_offset=part.log.last_stable_offset)
            elif isinstance(effect, LogAppended):
                if tp.topic not in INTERNAL_TOPICS:  # the coordinators trace their own records
                    node.replicas.trace_append(part.log, effect.batch, effect.result)
            elif isinstance(effect, MarkerAppended):
                m = effect.marker
                node.replicas.trace_marker(tp, m.producer_id, m.producer_epoch, m.coordinator_epoch, m.control,
                                           effect.result)
            elif isinstance(effect, LogTruncated):
                if tp.topic in INTERNAL_TOPICS:
                    continue  # the coordinators' records: a new leader's load reads what stayed
                node.emit("log.truncate", tp=tp, offset=effect.offset,
                          records=[[b.base_offset + i, r.key, r.value] for b in effect.removed
                                   for i, r in enumerate(b.records)])
            else:
                raise TypeError(f"unknown effect {effect!r}")
        self._schedule_timer(tp)

    def _alter_partition(self, tp: TopicPartition, request: AlterPartitionRequest):
        answer = yield self._to_controller(request)
        if not isinstance(answer, Failure):
            self._apply(tp, self.parts[tp].on_alter_partition_response(request, answer, self.node.world.now))

    def _schedule_timer(self, tp: TopicPartition) -> None:
        """The leader's purgatory (acks=all's timeout) and its ISR check, at the partition's next deadline."""
        deadline = self.parts[tp].next_deadline()
        if deadline is None or (tp, deadline) in self._timers:
            return
        self._timers.add((tp, deadline))
        self.node.later(max(deadline - self.node.world.now, 0), lambda: self._fire_timer(tp, deadline))

    def _fire_timer(self, tp: TopicPartition, deadline: int) -> None:
        self._timers.discard((tp, deadline))
        part = self.parts[tp]
        if part.role is Role.LEADER:
            self._apply(tp, part.expire_delayed_produces(self.node.world.now))


def _refusal(request: ProduceRequest | FetchRequest, error: Errors) -> Any:
    if isinstance(request, ProduceRequest):
        return ProduceResponse(error=error)
    return FetchResponse(error=error, records=(), high_watermark=-1)
