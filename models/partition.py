"""eosim.models.partition
======================

One broker's replica of one partition, as a pure state machine: the leader's side (produce with acks, follower
fetches, the ISR, the high watermark, acks=all waiting in purgatory) and the follower's side (fetching, appending,
truncating by leader epoch).

Theory of operation
-------------------
Sources, as short names (Kafka 4.1.2): ``P`` = core/.../cluster/Partition.scala, ``R`` =
server/.../replica/Replica.java and ReplicaState.java, ``RM`` = core/.../server/ReplicaManager.scala, ``DP`` =
DelayedProduce.scala, ``AFT`` = AbstractFetcherThread.scala, ``RFT`` = ReplicaFetcherThread.scala, ``LEFC`` =
LeaderEpochFileCache.java (``eosim.models.leader_epoch_cache``), ``UL`` = UnifiedLog.java.

* Roles (table ``TRANSITIONS``): OFFLINE (the broker process is dead), NONE (running, no metadata applied since it
  started), FOLLOWER, LEADER. ``apply_registration`` applies the controller's ``PartitionRegistration`` (from
  ``eosim.models.replication_control``): LEADER if it names this broker (P.makeLeader), FOLLOWER otherwise
  (P.makeFollower). A registration at an older partition epoch is skipped. ``crash`` keeps only what is on disk:
  the log, its leader-epoch cache and the high watermark (checkpoint modelled as exact); ``restart`` starts a new
  incarnation at a new broker epoch. An input the table does not list for the role raises IllegalTransition.
* Leader epochs (KIP-101): a leader at a new epoch records (epoch, its log end offset) in its epoch cache before
  taking writes; every entry carries the epoch it was written in, and a follower's cache gets the epochs of what it
  copies.
* High watermark (P.maybeIncrementLeaderHW): the minimum log end offset over the leader and every follower in the
  maximal ISR, or caught up and ISR-eligible; it only grows, and never while the ISR is smaller than
  min.insync.replicas (the strict min-ISR rule of KIP-966). Followers take min(leader's HW, own LEO) from each
  fetch response (RFT.processPartitionData), which is the leader's HW from before that fetch.
* Produce (P.appendRecordsToLeader, RM, DP): acks=0 gets no answer, acks=1 is answered after the leader's append,
  acks=all is refused with NOT_ENOUGH_REPLICAS when the ISR is below min.insync.replicas, else waits until the HW
  passes its last offset (NONE), leadership is lost (NOT_LEADER_OR_FOLLOWER) or ``timeout_ms`` passes
  (REQUEST_TIMED_OUT). With the strict rule a request whose ISR shrank below the minimum waits (the HW is frozen);
  NOT_ENOUGH_REPLICAS_AFTER_APPEND is kept from DP's check for the maximal ISR.
* ISR changes (KIP-497 two steps): the leader proposes (P.prepareIsrExpand / prepareIsrShrink) with an
  ``AlterPartitionRequest`` effect and a pending state; the controller's answer (``on_alter_partition_response``)
  or the next registration commits it. An expansion counts in the maximal ISR at once, a shrink only once
  committed. A follower joins when its LEO reaches the HW and the current epoch's start offset, and (KIP-903) it is
  unfenced with the broker epoch its fetches carried; it leaves when not caught up for replica.lag.time.max.ms. A
  fetch with a broker epoch older than the registered one is refused (R.updateFetchStateOrThrow).
* Follower fetch (AFT with truncation on fetch, IBP 2.7+): the follower sends its LEO and the epoch of its last
  entry; the leader answers a diverging epoch when that epoch ends earlier in its log (P.readRecords, LEFC.
  endOffsetFor), and the follower truncates to where the epochs agree (AFT.getOffsetTruncationState), losing what
  only it had: acknowledged acks=1 data among it. ``offsets_for_leader_epoch`` answers the same question for the
  OffsetsForLeaderEpoch API (KIP-279; consumers and pre-2.7 fetchers use it).
"""

from __future__ import annotations

import enum

from attrs import define, field

from attrs import Factory

from eosim.models.config import BrokerConfig, ReplicationConfig
from eosim.models.effects import Respond
from eosim.models.errors import Errors, IllegalTransition, ModelError
from eosim.models.leader_epoch_cache import UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
from eosim.models.log import AppendResult, PartitionLog, VerificationGuard
from eosim.models.records import ControlType, LogBatch, RecordBatch, TopicPartition
from eosim.models.replication_control import (
    NO_LEADER,
    AlterPartitionRequest,
    AlterPartitionResponse,
    BrokerRegistration,
    LeaderRecoveryState,
    PartitionRegistration,
)
from eosim.models.values import frozen

__all__ = [
    "TRANSITIONS",
    "UNKNOWN_OFFSET",
    "Acks",
    "DivergingEpoch",
    "Effect",
    "Event",
    "FetchRequest",
    "FetchResponse",
    "HighWatermarkUpdated",
    "LogAppended",
    "LogTruncated",
    "MarkerAppended",
    "OffsetsForLeaderEpochRequest",
    "OffsetsForLeaderEpochResponse",
    "Partition",
    "ProduceRequest",
    "ProduceResponse",
    "Role",
    "SendAlterPartition",
    "WriteMarkerRequest",
]

UNKNOWN_OFFSET = -1  # UnifiedLog.UNKNOWN_OFFSET


class Acks(enum.IntEnum):
    """The producer's ``acks`` (RM.isValidRequiredAcks: -1, 0 or 1)."""

    ZERO = 0
    ONE = 1
    ALL = -1


class Role(enum.Enum):
    OFFLINE = enum.auto()  # the broker process is dead
    NONE = enum.auto()  # running; no registration applied since it started
    FOLLOWER = enum.auto()
    LEADER = enum.auto()


class Event(enum.Enum):
    """The inputs of ``Partition``, one per public method."""

    PRODUCE = enum.auto()
    FOLLOWER_FETCH = enum.auto()  # the leader serves a follower's fetch
    OFFSETS_FOR_LEADER_EPOCH = enum.auto()
    BUILD_FETCH = enum.auto()  # the follower's fetcher builds its next fetch
    FETCH_RESPONSE = enum.auto()  # the follower's fetcher gets the answer
    ALTER_PARTITION_RESPONSE = enum.auto()
    ISR_EXPIRATION = enum.auto()  # RM's "isr-expiration" task, every replica.lag.time.max.ms / 2
    PRODUCE_EXPIRATION = enum.auto()  # DP.onExpiration
    BROKER_CHANGE = enum.auto()  # the metadata cache learns a broker registration
    BECOME_LEADER = enum.auto()
    BECOME_FOLLOWER = enum.auto()
    CRASH = enum.auto()
    RESTART = enum.auto()


_R, _E = Role, Event
_RUNNING = (_R.NONE, _R.FOLLOWER, _R.LEADER)
# (role, event) -> role after it (unless the input is stale and dropped: a registration at an older partition epoch
# changes nothing). A running broker answers every request, with NOT_LEADER_OR_FOLLOWER or an epoch
# error where it is not the leader (P.getLocalLog), and drops stale fetch / AlterPartition answers; a dead one takes
# nothing but a restart; only a follower fetches.
TRANSITIONS: dict[tuple[Role, Event], Role] = {
    **{(role, event): role for role in _RUNNING for event in (
        _E.PRODUCE, _E.FOLLOWER_FETCH, _E.OFFSETS_FOR_LEADER_EPOCH, _E.FETCH_RESPONSE, _E.ALTER_PARTITION_RESPONSE,
        _E.ISR_EXPIRATION, _E.PRODUCE_EXPIRATION, _E.BROKER_CHANGE)},
    **{(role, _E.BECOME_LEADER): _R.LEADER for role in _RUNNING},
    **{(role, _E.BECOME_FOLLOWER): _R.FOLLOWER for role in _RUNNING},
    **{(role, _E.CRASH): _R.OFFLINE for role in _RUNNING},
    (_R.FOLLOWER, _E.BUILD_FETCH): _R.FOLLOWER,
    (_R.OFFLINE, _E.RESTART): _R.NONE,
    # a restarted process killed again before its registration brought the replica back (Partition.restart)
    (_R.OFFLINE, _E.CRASH): _R.OFFLINE,
}


# --- requests, responses, effects -------------------------------------------------------------------------


def _non_empty(_instance, _attribute, value: RecordBatch) -> None:
    if not value.records:
        raise ValueError("a produce request carries at least one record")


@frozen(kw_only=True)
class ProduceRequest:
    """One partition's batch of a client's Produce. ``verification_guard``: what the broker's KIP-890 verification
    (sim/_replicas.py, before the append) handed the append, None when the batch needed none."""

    acks: Acks
    batch: RecordBatch = field(validator=_non_empty)
    timeout_ms: int = 30_000  # the producer's request.timeout.ms, sent as the request's timeout
    verification_guard: VerificationGuard | None = None


@frozen(kw_only=True)
class WriteMarkerRequest:
    """A transaction marker for this partition (WriteTxnMarkers from the coordinator): appended by the leader with
    origin COORDINATOR and acks=all (KafkaApis.handleWriteTxnMarkersRequest: requiredAcks -1)."""

    producer_id: int
    producer_epoch: int
    coordinator_epoch: int
    control: ControlType
    timeout_ms: int = 30_000  # the broker's request.timeout.ms, the marker append's timeout


@frozen(kw_only=True)
class ProduceResponse:
    error: Errors
    base_offset: int = -1  # for a duplicate, the original batch's (UL.analyzeAndValidateProducerState)


@frozen(kw_only=True)
class FetchRequest:
    """A follower's fetch for this partition (FetchRequest v12+ partition data, replica id and epoch)."""

    replica_id: int
    replica_epoch: int  # the follower's broker epoch (KIP-903); -1 skips the check
    fetch_offset: int
    last_fetched_epoch: int | None  # None: the follower's log has no epoch yet
    current_leader_epoch: int


@frozen(kw_only=True)
class DivergingEpoch:
    """FetchResponse's diverging epoch: where ``epoch`` ends in the leader's log."""

    epoch: int
    end_offset: int


@frozen(kw_only=True)
class FetchResponse:
    error: Errors
    records: tuple[LogBatch, ...] = ()
    high_watermark: int = -1
    diverging_epoch: DivergingEpoch | None = None


@frozen(kw_only=True)
class OffsetsForLeaderEpochRequest:
    leader_epoch: int
    current_leader_epoch: int | None = None


@frozen(kw_only=True)
class OffsetsForLeaderEpochResponse:
    error: Errors
    leader_epoch: int = UNDEFINED_EPOCH
    end_offset: int = UNDEFINED_EPOCH_OFFSET


@frozen(kw_only=True)
class SendAlterPartition:
    """Send ``request`` to the controller, then call ``on_alter_partition_response(request, response, now)``."""

    request: AlterPartitionRequest


@frozen(kw_only=True)
class LogTruncated:
    """The follower truncated its log at ``offset``; ``removed`` is what it lost (for the trace and checkers)."""

    offset: int
    removed: tuple[LogBatch, ...]


@frozen(kw_only=True)
class MarkerAppended:
    """The leader's append of a marker, or its refusal by producer state (``result.error``), for the trace."""

    marker: WriteMarkerRequest
    result: AppendResult


@frozen(kw_only=True)
class LogAppended:
    """The leader's append of a Produce's batch: appended, a duplicate (the original offsets) or refused by the
    producer-state checks (``result.error``), for the trace and checkers."""

    batch: RecordBatch
    result: AppendResult


@frozen(kw_only=True)
class HighWatermarkUpdated:
    high_watermark: int


Effect = Respond | SendAlterPartition | LogTruncated | LogAppended | MarkerAppended | HighWatermarkUpdated


# --- the leader's view of a follower and of the ISR -------------------------------------------------------


@define(eq=False, kw_only=True)
class _ReplicaState:
    """R's ReplicaState, as the leader keeps it per follower."""

    log_end_offset: int = UNKNOWN_OFFSET
    last_fetch_leader_log_end_offset: int = 0
    last_fetch_time_ms: int = 0
    last_caught_up_time_ms: int = 0
    broker_epoch: int | None = None  # from the follower's fetches; None until one arrives

    def is_caught_up(self, leader_end_offset: int, now: int, max_lag_ms: int) -> bool:
        """ReplicaState.isCaughtUp."""
        return leader_end_offset == self.log_end_offset or now - self.last_caught_up_time_ms <= max_lag_ms


@frozen(kw_only=True)
class _IsrState:
    """P's PartitionState: committed (``pending`` None) or waiting for an AlterPartition answer."""

    isr: tuple[int, ...]
    maximal_isr: tuple[int, ...]
    pending: AlterPartitionRequest | None = None
    last_committed: tuple[int, ...] = ()


@frozen(kw_only=True)
class _DelayedProduce:
    correlation_id: int
    base_offset: int
    required_offset: int
    deadline: int


# AlterPartition errors after which P.handleAlterPartitionError resets to the committed ISR, and those after which it
# waits for new metadata; any other error is retried.
_ALTER_PARTITION_RESET = frozenset({Errors.OPERATION_NOT_ATTEMPTED, Errors.INELIGIBLE_REPLICA})
_ALTER_PARTITION_WAIT = frozenset({Errors.UNKNOWN_TOPIC_OR_PARTITION, Errors.FENCED_LEADER_EPOCH,
                                   Errors.INVALID_UPDATE_VERSION, Errors.INVALID_REQUEST})


@define(eq=False)
class Partition:
    """Broker ``broker_id``'s replica of ``tp``. Every method returns the effects to apply, in order."""

    tp: TopicPartition
    broker_id: int
    config: ReplicationConfig
    broker_epoch: int = field(default=-1, kw_only=True)
    log: PartitionLog = field(default=Factory(lambda self: PartitionLog(self.tp, BrokerConfig()), takes_self=True),
                              kw_only=True)
    _role: Role = field(default=Role.NONE, init=False)
    _leader_id: int = field(default=NO_LEADER, init=False)
    _leader_epoch: int = field(default=-1, init=False)
    _partition_epoch: int = field(default=-1, init=False)
    _replicas: tuple[int, ...] = field(default=(), init=False)
    _leader_recovery_state: LeaderRecoveryState = field(default=LeaderRecoveryState.RECOVERED, init=False)
    _isr_state: _IsrState = field(factory=lambda: _IsrState(isr=(), maximal_isr=()), init=False)
    _leader_epoch_start_offset: int | None = field(default=None, init=False)
    _remote: dict[int, _ReplicaState] = field(factory=dict, init=False)  # P.remoteReplicasMap (leader only)
    _delayed: list[_DelayedProduce] = field(factory=list, init=False)  # the produce purgatory, in arrival order
    _brokers: dict[int, BrokerRegistration] = field(factory=dict, init=False)  # the metadata cache

    # --- read-only views -------------------------------------------------------------------------------

    @property
    def role(self) -> Role:
        return self._role

    @property
    def leader_id(self) -> int:
        return self._leader_id

    @property
    def leader_epoch(self) -> int:
        return self._leader_epoch

    @property
    def partition_epoch(self) -> int:
        return self._partition_epoch

    @property
    def isr(self) -> tuple[int, ...]:
        """The committed ISR (empty unless leader)."""
        return self._isr_state.isr

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        return self._isr_state.maximal_isr

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    def next_deadline(self) -> int | None:
        """When ``expire_delayed_produces`` next answers a waiting acks=all request."""
        return min((d.deadline for d in self._delayed), default=None)

    # --- lifecycle -------------------------------------------------------------------------------------

    def crash(self) -> list[Effect]:
        """The broker process dies: only the log (with its epoch cache and HW checkpoint) survives. Requests in
        purgatory are never answered (their connections are gone)."""
        self._transition(Event.CRASH)
        self._forget_leadership()
        self._brokers.clear()
        return []

    def restart(self, broker_epoch: int) -> list[Effect]:
        """A new incarnation, registered at ``broker_epoch``; it waits for metadata (P is created empty:
        leader and partition epoch -1)."""
        self._transition(Event.RESTART)
        self.broker_epoch = broker_epoch
        self._leader_epoch = -1
        self._partition_epoch = -1
        return []

    def update_broker(self, registration: BrokerRegistration) -> list[Effect]:
        """The metadata cache applies a broker registration (KRaftMetadataCache)."""
        self._transition(Event.BROKER_CHANGE)
        self._brokers[registration.broker_id] = registration
        return []

    def apply_registration(self, registration: PartitionRegistration, now: int) -> list[Effect]:
        """RM.applyDelta for this partition: become leader or follower as ``registration`` says.

        Raises:
            ModelError: this broker is not a replica (reassignment is not modelled).
        """
        if self.broker_id not in registration.replicas:
            raise ModelError(f"broker {self.broker_id} is not a replica of {self.tp}: {registration.replicas}")
        if registration.leader == self.broker_id:
            return self._make_leader(registration, now)
        return self._make_follower(registration)

    # --- leader: produce -------------------------------------------------------------------------------

    def produce(self, correlation_id: int, request: ProduceRequest, now: int) -> list[Effect]:
        """RM.appendRecords -> P.appendRecordsToLeader, then acks (DP)."""
        self._transition(Event.PRODUCE)

        def reply(error: Errors, base_offset: int = -1) -> list[Effect]:
            if request.acks is Acks.ZERO:
                return []  # acks=0: no response at all
            return [Respond(correlation_id=correlation_id,
                            response=ProduceResponse(error=error, base_offset=base_offset))]

        if self._role is not Role.LEADER:
            return reply(Errors.NOT_LEADER_OR_FOLLOWER)
        # P.appendRecordsToLeader: avoid writing if the ISR is too small to be safe.
        if request.acks is Acks.ALL and len(self._isr_state.isr) < self._effective_min_isr():
            return reply(Errors.NOT_ENOUGH_REPLICAS)
        # UL.appendAsLeader: producer-state checks (a duplicate gets the original offsets), the batch stamped
        # with this leader's epoch
        result = self.log.append_as_leader(request.batch, now, verification_guard=request.verification_guard,
                                           leader_epoch=self._leader_epoch)
        effects: list[Effect] = [LogAppended(batch=request.batch, result=result)]
        if result.error is not Errors.NONE:
            return effects + reply(result.error)
        if not result.duplicate:
            effects += self._maybe_increment_leader_hw(now)
        if request.acks is not Acks.ALL:
            return effects + reply(Errors.NONE, result.base_offset)
        # RM: acks=all waits in the produce purgatory until the HW passes the batch's last offset, a duplicate's
        # too (RM.delayedProduceRequestRequired uses the append info's offsets)
        return effects + self._wait_for_acks(correlation_id, result, now + request.timeout_ms)

    def write_marker(self, correlation_id: int, request: WriteMarkerRequest, now: int) -> list[Effect]:
        """KafkaApis.handleWriteTxnMarkersRequest -> RM.appendRecords (origin COORDINATOR, acks=all) ->
        P.appendRecordsToLeader -> UL.appendAsLeader of one control batch, stamped with this leader's epoch."""
        self._transition(Event.PRODUCE)
        if self._role is not Role.LEADER:
            return [Respond(correlation_id=correlation_id,
                            response=ProduceResponse(error=Errors.NOT_LEADER_OR_FOLLOWER))]
        if len(self._isr_state.isr) < self._effective_min_isr():
            return [Respond(correlation_id=correlation_id, response=ProduceResponse(error=Errors.NOT_ENOUGH_REPLICAS))]
        result = self.log.append_marker(producer_id=request.producer_id, producer_epoch=request.producer_epoch,
                                        coordinator_epoch=request.coordinator_epoch, control=request.control,
                                        now=now, leader_epoch=self._leader_epoch)
        effects: list[Effect] = [MarkerAppended(marker=request, result=result)]
        if result.error is not Errors.NONE:
            return effects + [Respond(correlation_id=correlation_id, response=ProduceResponse(error=result.error))]
        effects += self._maybe_increment_leader_hw(now)
        return effects + self._wait_for_acks(correlation_id, result, now + request.timeout_ms)

    def _wait_for_acks(self, correlation_id: int, result: AppendResult, deadline: int) -> list[Effect]:
        """RM: an acks=all append waits in the produce purgatory (DP.tryCompleteElseWatch)."""
        self._delayed.append(_DelayedProduce(correlation_id=correlation_id, base_offset=result.base_offset,
                                             required_offset=result.last_offset + 1, deadline=deadline))
        return self._try_complete_delayed()

    def expire_delayed_produces(self, now: int) -> list[Effect]:
        """DP.onExpiration: acks=all requests past their timeout get REQUEST_TIMED_OUT (the records stay)."""
        self._transition(Event.PRODUCE_EXPIRATION)
        expired = [d for d in self._delayed if d.deadline <= now]
        self._delayed = [d for d in self._delayed if d.deadline > now]
        return [Respond(correlation_id=d.correlation_id,
                        response=ProduceResponse(error=Errors.REQUEST_TIMED_OUT, base_offset=d.base_offset))
                for d in expired]

    # --- leader: follower fetch, OffsetsForLeaderEpoch ---------------------------------------------------

    def follower_fetch(self, correlation_id: int, request: FetchRequest, now: int) -> list[Effect]:
        """P.fetchRecords for a follower (isFromFollower, fetchOnlyLeader)."""
        self._transition(Event.FOLLOWER_FETCH)

        def reply(response: FetchResponse) -> Respond:
            return Respond(correlation_id=correlation_id, response=response)

        error = self._check_local_log(request.current_leader_epoch, require_leader=True)
        if error is Errors.NONE and request.replica_id not in self._remote:
            error = Errors.UNKNOWN_LEADER_EPOCH  # P.followerReplicaOrThrow (the request has an epoch)
        if error is not Errors.NONE:
            return [reply(FetchResponse(error=error))]
        # P.readRecords: the values from before this fetch's update.
        initial_hw = self.log.high_watermark
        leader_end_offset = self.log.log_end_offset
        if request.last_fetched_epoch is not None:
            found = self.log.epoch_cache.end_offset_for(request.last_fetched_epoch, leader_end_offset)
            epoch, end_offset = found
            if end_offset == UNDEFINED_EPOCH_OFFSET or epoch == UNDEFINED_EPOCH:
                return [reply(FetchResponse(error=Errors.OFFSET_OUT_OF_RANGE))]
            if epoch < request.last_fetched_epoch or end_offset < request.fetch_offset:
                diverging = DivergingEpoch(epoch=epoch, end_offset=end_offset)
                return [reply(FetchResponse(error=Errors.NONE, high_watermark=initial_hw,
                                            diverging_epoch=diverging))]
        if request.fetch_offset > leader_end_offset:
            return [reply(FetchResponse(error=Errors.OFFSET_OUT_OF_RANGE))]
        records = self.log.read_for_replica(request.fetch_offset)
        replica = self._remote[request.replica_id]
        # R.updateFetchStateOrThrow: a fetch from an older incarnation of the follower is fenced (KIP-903).
        cached = self._alive_broker_epoch(request.replica_id)
        if request.replica_epoch != -1 and cached is not None and cached > request.replica_epoch:
            return [reply(FetchResponse(error=Errors.NOT_LEADER_OR_FOLLOWER))]
        effects = self._update_follower_fetch_state(replica, request, leader_end_offset, now)
        return [*effects, reply(FetchResponse(error=Errors.NONE, records=records, high_watermark=initial_hw))]

    def offsets_for_leader_epoch(self, correlation_id: int, request: OffsetsForLeaderEpochRequest) -> list[Effect]:
        """P.lastOffsetForLeaderEpoch (fetchOnlyFromLeader): where ``leader_epoch`` ends in this log."""
        self._transition(Event.OFFSETS_FOR_LEADER_EPOCH)
        error = self._check_local_log(request.current_leader_epoch, require_leader=True)
        if error is not Errors.NONE:
            response = OffsetsForLeaderEpochResponse(error=error)
        else:
            epoch, end_offset = self.log.epoch_cache.end_offset_for(request.leader_epoch, self.log.log_end_offset)
            response = OffsetsForLeaderEpochResponse(error=Errors.NONE, leader_epoch=epoch, end_offset=end_offset)
        return [Respond(correlation_id=correlation_id, response=response)]

    # --- leader: ISR --------------------------------------------------------------------------------------

    def maybe_shrink_isr(self, now: int) -> list[Effect]:
        """P.maybeShrinkIsr: propose the ISR without the followers not caught up within replica.lag.time.max.ms."""
        self._transition(Event.ISR_EXPIRATION)
        if self._role is not Role.LEADER or self._isr_state.pending is not None:
            return []
        leader_end_offset = self.log.log_end_offset
        out_of_sync = [r for r in self._isr_state.isr if r != self.broker_id and (
            r not in self._remote
            or not self._remote[r].is_caught_up(leader_end_offset, now, self.config.replica_lag_time_max_ms))]
        if not out_of_sync:
            return []
        new_isr = tuple(r for r in self._isr_state.isr if r not in out_of_sync)
        # P.prepareIsrShrink: the maximal ISR stays the current one until the controller agrees.
        return self._propose_isr(new_isr, maximal=self._isr_state.isr)

    def on_alter_partition_response(self, request: AlterPartitionRequest, response: AlterPartitionResponse,
                                    now: int) -> list[Effect]:
        """P.submitAlterPartition's callback."""
        self._transition(Event.ALTER_PARTITION_RESPONSE)
        state = self._isr_state
        if self._role is not Role.LEADER or state.pending is not request:
            return []  # the state moved on (a registration, a newer proposal): the answer is out of date
        if response.error is Errors.NONE:
            # P.handleAlterPartitionUpdate
            if response.leader_epoch != self._leader_epoch or response.partition_epoch < self._partition_epoch:
                return []
            self._isr_state = _IsrState(isr=response.isr, maximal_isr=response.isr)
            self._partition_epoch = response.partition_epoch
            self._leader_recovery_state = response.leader_recovery_state
            return self._maybe_increment_leader_hw(now)
        # P.handleAlterPartitionError
        if response.error in _ALTER_PARTITION_RESET:
            self._isr_state = _IsrState(isr=state.last_committed, maximal_isr=state.last_committed)
            return []
        if response.error in _ALTER_PARTITION_WAIT:
            return []  # stay pending until new metadata arrives
        return [SendAlterPartition(request=request)]

    # --- follower -----------------------------------------------------------------------------------------

    def build_fetch_request(self) -> FetchRequest | None:
        """The fetcher's next fetch (AFT.buildFetch): from the log end, with the last epoch in the log. None when
        the partition has no leader to fetch from (RM does not start a fetcher)."""
        self._transition(Event.BUILD_FETCH)
        if self._leader_id == NO_LEADER:
            return None
        return FetchRequest(replica_id=self.broker_id, replica_epoch=self.broker_epoch,
                            fetch_offset=self.log.log_end_offset,
                            last_fetched_epoch=self.log.epoch_cache.latest_epoch,
                            current_leader_epoch=self._leader_epoch)

    def on_fetch_response(self, request: FetchRequest, response: FetchResponse, now: int) -> list[Effect]:
        """AFT.processFetchRequest for this partition: append, or truncate on a diverging epoch. A response to a
        fetch made for another leader epoch or another offset is dropped (AFT checks the fetch state); an error
        leaves the state alone (the fetcher backs off and retries, or waits for metadata)."""
        self._transition(Event.FETCH_RESPONSE)
        if (self._role is not Role.FOLLOWER or request.current_leader_epoch != self._leader_epoch
                or request.fetch_offset != self.log.log_end_offset or response.error is not Errors.NONE):
            return []
        if response.diverging_epoch is not None:
            return self._truncate_on_fetch_response(response.diverging_epoch)
        self.log.append_as_follower(response.records)
        # RFT.processPartitionData: the follower takes min(leader HW, LEO), up or down.
        before = self.log.high_watermark
        self.log.update_high_watermark(response.high_watermark)
        if self.log.high_watermark != before:
            return [HighWatermarkUpdated(high_watermark=self.log.high_watermark)]
        return []

    # --- internals: leadership --------------------------------------------------------------------------

    def _make_leader(self, registration: PartitionRegistration, now: int) -> list[Effect]:
        """P.makeLeader."""
        role = self._next_role(Event.BECOME_LEADER)
        if registration.partition_epoch < self._partition_epoch:
            return []
        is_new_leader = self._role is not Role.LEADER
        self._role = role
        is_new_leader_epoch = registration.leader_epoch > self._leader_epoch
        # P.updateAssignmentAndIsr (a new leader starts with no follower state: a follower keeps none)
        followers = [r for r in registration.replicas if r != self.broker_id]
        self._remote = {r: self._remote.get(r, _ReplicaState()) for r in followers}
        self._replicas = registration.replicas
        self._isr_state = _IsrState(isr=registration.isr, maximal_isr=registration.isr)
        self._leader_recovery_state = LeaderRecoveryState.RECOVERED  # P.makeLeader marks RECOVERING recovered
        if is_new_leader_epoch:
            start = self.log.log_end_offset
            # A later epoch than any follower can ask for, so truncation works after quick successive elections.
            self.log.epoch_cache.assign(registration.leader_epoch, start)
            for replica_id, replica in self._remote.items():
                self._reset_replica_state(replica, now, start, is_new_leader, replica_id in registration.isr)
            self._leader_epoch = registration.leader_epoch
            self._leader_epoch_start_offset = start
        self._partition_epoch = registration.partition_epoch
        self._leader_id = self.broker_id
        return self._maybe_increment_leader_hw(now)

    def _make_follower(self, registration: PartitionRegistration) -> list[Effect]:
        """P.makeFollower, then RM: a new leader epoch restarts the fetcher and answers the purgatory
        (completeDelayedOperationsWhenNotPartitionLeader)."""
        role = self._next_role(Event.BECOME_FOLLOWER)
        if registration.partition_epoch < self._partition_epoch:
            return []
        is_new_leader_epoch = registration.leader_epoch > self._leader_epoch
        effects: list[Effect] = []
        if is_new_leader_epoch:
            effects = [Respond(correlation_id=d.correlation_id,
                               response=ProduceResponse(error=Errors.NOT_LEADER_OR_FOLLOWER, base_offset=d.base_offset))
                       for d in self._delayed]
            self._delayed.clear()
        self._role = role
        self._leader_id = registration.leader
        self._leader_epoch = registration.leader_epoch
        self._leader_epoch_start_offset = None
        self._partition_epoch = registration.partition_epoch
        self._replicas = registration.replicas
        self._remote.clear()
        self._isr_state = _IsrState(isr=(), maximal_isr=())
        self._leader_recovery_state = registration.leader_recovery_state
        return effects

    def _forget_leadership(self) -> None:
        self._leader_id = NO_LEADER
        self._leader_epoch_start_offset = None
        self._remote.clear()
        self._delayed.clear()
        self._isr_state = _IsrState(isr=(), maximal_isr=())

    @staticmethod
    def _reset_replica_state(replica: _ReplicaState, now: int, leader_end_offset: int, is_new_leader: bool,
                             in_sync: bool) -> None:
        """R.resetReplicaState: a follower in the ISR counts as caught up now, one outside as never."""
        replica.last_caught_up_time_ms = now if in_sync else 0
        if is_new_leader:
            replica.log_end_offset = UNKNOWN_OFFSET
            replica.last_fetch_leader_log_end_offset = UNKNOWN_OFFSET
            replica.last_fetch_time_ms = 0
            replica.broker_epoch = None
        else:
            replica.last_fetch_leader_log_end_offset = leader_end_offset
            replica.last_fetch_time_ms = now if in_sync else 0

    # --- internals: follower fetch state, ISR, HW ---------------------------------------------------------

    def _update_follower_fetch_state(self, replica: _ReplicaState, request: FetchRequest, leader_end_offset: int,
                                     now: int) -> list[Effect]:
        """P.updateFollowerFetchState / R.updateFetchStateOrThrow: the follower's LEO is its fetch offset."""
        previous_end_offset = replica.log_end_offset
        if request.fetch_offset >= leader_end_offset:
            replica.last_caught_up_time_ms = max(replica.last_caught_up_time_ms, now)
        elif request.fetch_offset >= replica.last_fetch_leader_log_end_offset:
            replica.last_caught_up_time_ms = max(replica.last_caught_up_time_ms, replica.last_fetch_time_ms)
        replica.log_end_offset = request.fetch_offset
        replica.last_fetch_leader_log_end_offset = max(leader_end_offset, replica.last_fetch_leader_log_end_offset)
        replica.last_fetch_time_ms = now
        replica.broker_epoch = request.replica_epoch
        effects = self._maybe_expand_isr(request.replica_id)
        if previous_end_offset != replica.log_end_offset:
            effects += self._maybe_increment_leader_hw(now)
        return effects

    def _maybe_expand_isr(self, replica_id: int) -> list[Effect]:
        """P.maybeExpandIsr: a follower at or past the HW, within the current leader epoch and ISR-eligible
        joins (proposed; counted in the maximal ISR at once, P.prepareIsrExpand)."""
        state = self._isr_state
        if state.pending is not None or replica_id in state.isr or not self._is_replica_isr_eligible(replica_id):
            return []
        end_offset = self._remote[replica_id].log_end_offset
        if end_offset < self.log.high_watermark or end_offset < self._leader_epoch_start_offset:
            return []
        new_isr = tuple(r for r in self._replicas if r in state.isr or r == replica_id)
        return self._propose_isr(new_isr, maximal=new_isr)

    def _propose_isr(self, new_isr: tuple[int, ...], *, maximal: tuple[int, ...]) -> list[Effect]:
        """P.prepareIsrExpand / prepareIsrShrink / addBrokerEpochToIsr / submitAlterPartition."""
        with_epochs = tuple(
            (r, self.broker_epoch if r == self.broker_id else (
                self._remote[r].broker_epoch if r in self._remote and self._remote[r].broker_epoch is not None
                else -1))
            for r in new_isr)
        request = AlterPartitionRequest(
            broker_id=self.broker_id, tp=self.tp, leader_epoch=self._leader_epoch,
            partition_epoch=self._partition_epoch, new_isr_with_epochs=with_epochs,
            leader_recovery_state=self._leader_recovery_state,
        )
        self._isr_state = _IsrState(isr=self._isr_state.isr, maximal_isr=maximal, pending=request,
                                    last_committed=self._isr_state.isr)
        return [SendAlterPartition(request=request)]

    def _is_replica_isr_eligible(self, replica_id: int) -> bool:
        """P.isReplicaIsrEligible: unfenced, and the broker epoch of its fetches is the registered one (or -1)."""
        registration = self._brokers.get(replica_id)
        stored = self._remote[replica_id].broker_epoch
        if registration is None or registration.fenced or stored is None:
            return False
        return stored == -1 or stored == registration.broker_epoch

    def _maybe_increment_leader_hw(self, now: int) -> list[Effect]:
        """P.maybeIncrementLeaderHW, then DP completions if the HW moved."""
        if self._role is not Role.LEADER or len(self._isr_state.isr) < self._effective_min_isr():
            return []  # the strict min-ISR rule: no HW progress under min.insync.replicas
        leader_end_offset = self.log.log_end_offset
        new_hw = leader_end_offset
        for replica_id, replica in self._remote.items():
            should_wait = (replica.is_caught_up(leader_end_offset, now, self.config.replica_lag_time_max_ms)
                           and self._is_replica_isr_eligible(replica_id))
            if replica.log_end_offset < new_hw and (replica_id in self._isr_state.maximal_isr or should_wait):
                new_hw = replica.log_end_offset
        if new_hw <= self.log.high_watermark:
            return []  # UL.maybeIncrementHighWatermark: only up
        self.log.advance_high_watermark(new_hw)
        return [HighWatermarkUpdated(high_watermark=new_hw), *self._try_complete_delayed()]

    def _try_complete_delayed(self) -> list[Effect]:
        """DP.tryComplete with P.checkEnoughReplicasReachOffset, in arrival order."""
        effects: list[Effect] = []
        waiting: list[_DelayedProduce] = []
        for delayed in self._delayed:
            if self.log.high_watermark >= delayed.required_offset:
                enough = self._effective_min_isr() <= len(self._isr_state.maximal_isr)
                error = Errors.NONE if enough else Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND
                effects.append(Respond(correlation_id=delayed.correlation_id,
                                       response=ProduceResponse(error=error, base_offset=delayed.base_offset)))
            else:
                waiting.append(delayed)
        self._delayed = waiting
        return effects

    def _truncate_on_fetch_response(self, diverging: DivergingEpoch) -> list[Effect]:
        """AFT.truncateOnFetchResponse -> getOffsetTruncationState -> RFT.truncate. The next fetch carries the
        new last epoch, so a truncation that is not final continues there."""
        log_end_offset = self.log.log_end_offset
        if diverging.end_offset == UNDEFINED_EPOCH_OFFSET:
            offset = log_end_offset  # truncate to the fetch offset: nothing to drop
        else:
            # UL.endOffsetForEpoch (LEFC.endOffsetFor): None when the cache cannot tell
            found = self.log.epoch_cache.end_offset_for(diverging.epoch, log_end_offset)
            local = None if found[1] == UNDEFINED_EPOCH_OFFSET else found
            if local is None:
                offset = min(diverging.end_offset, log_end_offset)
            else:
                follower_epoch, follower_end_offset = local
                if follower_epoch != diverging.epoch:
                    offset = min(follower_end_offset, log_end_offset)  # an epoch the follower never had
                else:
                    offset = min(follower_end_offset, diverging.end_offset, log_end_offset)
        removed = self.log.truncate_to(offset)
        return [LogTruncated(offset=offset, removed=removed)] if removed else []

    # --- internals: checks ------------------------------------------------------------------------------

    def _check_local_log(self, current_leader_epoch: int | None, *, require_leader: bool) -> Errors:
        """P.getLocalLog: the request's leader epoch against ours, then leadership."""
        if current_leader_epoch is not None:
            if self._leader_epoch > current_leader_epoch:
                return Errors.FENCED_LEADER_EPOCH
            if self._leader_epoch < current_leader_epoch:
                return Errors.UNKNOWN_LEADER_EPOCH
        if require_leader and self._role is not Role.LEADER:
            return Errors.NOT_LEADER_OR_FOLLOWER
        return Errors.NONE

    def _effective_min_isr(self) -> int:
        """P.effectiveMinIsr: min.insync.replicas capped at the replication factor."""
        return min(self.config.min_insync_replicas, len(self._remote) + 1)

    def _alive_broker_epoch(self, broker_id: int) -> int | None:
        """KRaftMetadataCache.getAliveBrokerEpoch: the epoch of an unfenced registration."""
        registration = self._brokers.get(broker_id)
        return None if registration is None or registration.fenced else registration.broker_epoch

    def _next_role(self, event: Event) -> Role:
        """The role ``event`` leads to (TRANSITIONS), or IllegalTransition."""
        try:
            return TRANSITIONS[(self._role, event)]
        except KeyError:
            raise IllegalTransition(f"Partition({self.tp}, broker {self.broker_id})", self._role, event) from None

    def _transition(self, event: Event) -> None:
        self._role = self._next_role(event)
