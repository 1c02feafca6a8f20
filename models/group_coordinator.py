"""eosim.models.group_coordinator
=========================

The group coordinator of one ``__consumer_offsets`` partition: classic-group membership, KIP-848
consumer groups (ConsumerGroupHeartbeat; the group and its rules are ``eosim.models.consumer_group``,
their timers and offsets live here) and the groups' committed offsets, including KIP-447 transactional
offsets fenced by generation or member epoch. Kafka 4.1 sources:
``group-coordinator/src/main/java/org/apache/kafka/coordinator/group/`` ``GroupMetadataManager.java``
(GMM), ``OffsetMetadataManager.java`` (OMM), ``classic/ClassicGroup.java``, ``classic/ClassicGroupState.java``,
and ``coordinator-common/.../runtime/CoordinatorRuntime.java``.

Theory of operation
-------------------
*Offsets are a function of the offsets log.* Every commit is first appended to the ``PartitionLog`` this
coordinator owns, then replayed (``OMM.replay``): a plain commit (producer id -1) goes straight to the
committed store; a transactional one (TxnOffsetCommit: a transactional batch, origin COORDINATOR, so
epoch checks but no sequence checks) goes to ``pending_transactional_offsets[pid]`` and marks the
partition in ``open_transactions``. A transaction marker is appended to the same log and then replayed
(``OMM.replayEndTransactionMarker``): COMMIT moves the pid's pending offsets to the committed store unless
a commit with a higher log offset is already there; ABORT drops them. A failed append changes nothing
(Kafka replays first and reverts the timeline snapshot on failure: the same outcome). The constructor
replays whatever the log already holds, as the coordinator loader does after a fail-over.

*Reads at the high watermark.* The offsets log's high watermark is the coordinator's last committed offset
(SnapshottableCoordinator.lastCommittedOffset); the runtime reports it with ``on_high_watermark`` (one broker:
at once after every write; several: when the followers have the records, CoordinatorRuntime.HighWatermarkListener).
Every change to the committed store made by a record or marker at or above it is kept with the value it replaced
(``_uncommitted``, the timeline snapshot's part): a non-stable OffsetFetch (and ``committed``) reads the value as of
the high watermark, as GroupCoordinatorService.fetchOffsets runs it as a read operation at the last committed offset;
a require_stable one reads the latest state (a write operation without records, ``fetchOffsets(request,
Long.MAX_VALUE)``), and the runtime answers it once everything written before it is committed
(CoordinatorRuntime.append). The loader replays to the log end, so a new leader holds what lies above its high
watermark without reading it (CoordinatorLoaderImpl).

*Membership* follows the classic protocol's ``ClassicGroupState`` table (``VALID_PREVIOUS_STATES``);
``ClassicGroup.transition_to`` raises ``IllegalTransition`` for anything else. A new member's first
JoinGroup gets MEMBER_ID_REQUIRED with its member id (KIP-394; the id stays *pending* for one session
timeout); its second joins. When the join phase completes (every member rejoined, the initial delay or the
rebalance timeout passed) the group enters CompletingRebalance with the next generation and the protocol
most members vote for, and answers every parked JoinGroup: the leader's answer lists the members with
their subscriptions. The leader computes the assignment (a client-side assignor) and sends it in its
SyncGroup; the followers' SyncGroups wait for it, and the group becomes Stable. Members that send no
SyncGroup within the rebalance timeout are removed (``GMM.expirePendingSync``). Timers are keyed like
Kafka's (one join and one sync timer per group, one heartbeat timer per member; re-scheduling a key
replaces it): ``next_deadline()`` gives the earliest, ``on_timer(now)`` fires every due one in (deadline,
scheduling order).

``complete_transaction`` applies a WriteTxnMarkers entry for the offsets partition and returns the
``OffsetsCommitted`` effects with its error; ``unload()`` is the loss of the offsets partition's
leadership (every group goes Dead).

Simplifications (the fidelity notes)
------------------------------------
* No static members (group.instance.id). Member ids are ``f"{client_id}-{n}"`` with a per-coordinator
  counter in place of Kafka's random UUID. A protocol's metadata is the subscribed topics only.
* A tie in the protocol vote goes to the name first in sort order (Kafka: HashMap order).
* No group metadata records: only offsets go to the log, so after a fail-over the offsets come back
  but members must rejoin. The leader's assignment takes effect at once (Kafka first appends it).
* Only the offsets are read at the high watermark: the groups are not in the log (above), so OffsetFetch takes
  a group's existence and state from the latest state (Kafka: ``validateOffsetFetch`` at the last committed
  offset). A write the runtime fails after the append is not reverted in memory (Kafka reverts to the snapshot
  at its batch's start).
* KIP-890 verification of TxnOffsetCommit (the coordinator asking the transaction coordinator whether the
  offsets partition is in the transaction, or adding it under TV2) is not a round trip here: when the
  offsets log needs verification, the coordinator starts the guard itself, i.e. the transaction
  coordinator is assumed to agree.
"""

from __future__ import annotations

import enum
import json
from typing import Callable

from attrs import define, evolve, field

from eosim.models.config import BrokerConfig
from eosim.models.consumer_group import (
    LEAVE_GROUP_MEMBER_EPOCH,
    ConsumerGroup,
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
    ConsumerGroupMember,
    ConsumerGroupState,
    MemberState,
    reconcile,
    uniform_assignment,
)
from eosim.models.effects import Respond
from eosim.models.errors import Errors, IllegalTransition
from eosim.models.log import AppendOrigin, PartitionLog
from eosim.models.records import (
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    NO_SEQUENCE,
    ControlType,
    LogBatch,
    Record,
    RecordBatch,
    TopicPartition,
    TransactionResult,
)
from eosim.models.values import frozen

__all__ = [
    "CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS",
    "VALID_PREVIOUS_STATES",
    "ClassicGroup",
    "ClassicGroupMember",
    "GroupCoordinator",
    "GroupState",
    "GroupStateChanged",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "JoinGroupRequest",
    "JoinGroupResponse",
    "LeaveGroupRequest",
    "LeaveGroupResponse",
    "OffsetAndMetadata",
    "OffsetCommitRequest",
    "OffsetCommitResponse",
    "OffsetFetchRequest",
    "OffsetFetchResponse",
    "OffsetsCommitted",
    "OffsetsPending",
    "TxnOffsetCommitRequest",
    "TxnOffsetCommitResponse",
    "SyncGroupRequest",
    "SyncGroupResponse",
]

# A new member's JoinGroup is parked at most this long before the member is dropped
# (GroupCoordinatorConfig.CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS, hard-coded in Kafka).
CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS = 300_000
INVALID_OFFSET = -1  # OffsetFetch's "no committed offset"


class GroupState(enum.StrEnum):
    """ClassicGroupState, by Kafka's names (``str()`` gives the name)."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_S = GroupState
# target -> states it may be entered from (ClassicGroupState's static block).
VALID_PREVIOUS_STATES: dict[GroupState, frozenset[GroupState]] = {
    _S.EMPTY: frozenset({_S.PREPARING_REBALANCE}),
    _S.PREPARING_REBALANCE: frozenset({_S.STABLE, _S.COMPLETING_REBALANCE, _S.EMPTY}),
    _S.COMPLETING_REBALANCE: frozenset({_S.PREPARING_REBALANCE}),
    _S.STABLE: frozenset({_S.COMPLETING_REBALANCE}),
    _S.DEAD: frozenset({_S.STABLE, _S.PREPARING_REBALANCE, _S.COMPLETING_REBALANCE, _S.EMPTY, _S.DEAD}),
}


# -- requests and responses -------------------------------------------------------------------------

# A JoinGroup protocol: (name, metadata). The metadata of protocol type "consumer" is the member's
# subscription (ConsumerProtocolSubscription); only its topics are modelled.
Protocol = tuple[str, tuple[str, ...]]
Assignment = tuple[TopicPartition, ...]


@frozen(kw_only=True)
class JoinGroupRequest:
    """JoinGroup v4+ (librdkafka sends v5): ``member_id=""`` joins as a new member and gets
    MEMBER_ID_REQUIRED with its id (KIP-394)."""

    group_id: str
    member_id: str
    client_id: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str = "consumer"
    protocols: tuple[Protocol, ...]


@frozen(kw_only=True)
class JoinGroupResponse:
    error: Errors
    generation_id: int = -1
    protocol_name: str = ""
    leader: str = ""
    member_id: str = ""
    members: tuple[Protocol, ...] = ()  # the leader's copy: (member id, metadata of the chosen protocol)


@frozen(kw_only=True)
class SyncGroupRequest:
    """The leader sends every member's assignment; followers send none."""

    group_id: str
    generation_id: int
    member_id: str
    protocol_type: str = "consumer"
    protocol_name: str = ""
    assignments: tuple[tuple[str, Assignment], ...] = ()


@frozen(kw_only=True)
class SyncGroupResponse:
    error: Errors
    protocol_name: str = ""
    assignment: Assignment = ()


@frozen(kw_only=True)
class HeartbeatRequest:
    group_id: str
    member_id: str
    generation_id: int


@frozen(kw_only=True)
class HeartbeatResponse:
    error: Errors


@frozen(kw_only=True)
class LeaveGroupRequest:
    group_id: str
    member_id: str


@frozen(kw_only=True)
class LeaveGroupResponse:
    error: Errors


@frozen(kw_only=True)
class OffsetCommitRequest:
    """``generation_id`` is the generation of a classic member and the member epoch of a consumer-protocol
    member (OffsetCommit v9's GenerationIdOrMemberEpoch)."""

    group_id: str
    generation_id: int = -1
    member_id: str = ""
    offsets: tuple[tuple[TopicPartition, int], ...]


@frozen(kw_only=True)
class OffsetCommitResponse:
    results: tuple[tuple[TopicPartition, Errors], ...]


@frozen(kw_only=True)
class TxnOffsetCommitRequest:
    transactional_id: str
    group_id: str
    producer_id: int
    producer_epoch: int
    generation_id: int = -1
    member_id: str = ""
    offsets: tuple[tuple[TopicPartition, int], ...]
    # v5+ (TV2): the broker adds the offsets partition to the transaction first (KafkaApis
    # .handleTxnOffsetCommitRequest); librdkafka sends v3.
    api_version: int = 3


@frozen(kw_only=True)
class TxnOffsetCommitResponse:
    results: tuple[tuple[TopicPartition, Errors], ...]


@frozen(kw_only=True)
class OffsetFetchRequest:
    group_id: str
    partitions: tuple[TopicPartition, ...]
    require_stable: bool


@frozen(kw_only=True)
class OffsetFetchResponse:
    error: Errors
    results: tuple[tuple[TopicPartition, int, Errors], ...]  # offset -1: no committed offset


# -- effects (Respond is eosim.models.effects.Respond) --------------------------------------------------------


@frozen(kw_only=True)
class GroupStateChanged:
    """A classic group's state or a consumer group's (state, group epoch) changed; ``generation_id`` is the
    generation or the group epoch."""

    group_id: str
    old: GroupState | ConsumerGroupState
    new: GroupState | ConsumerGroupState
    generation_id: int
    members: tuple[str, ...]


@frozen(kw_only=True)
class OffsetsCommitted:
    """An offset became visible (``producer_id`` -1 for a plain OffsetCommit)."""

    group_id: str
    partition: TopicPartition
    offset: int
    producer_id: int


@frozen(kw_only=True)
class OffsetsPending:
    """A TxnOffsetCommit was written; the offset stays invisible until the pid's COMMIT marker."""

    group_id: str
    partition: TopicPartition
    offset: int
    producer_id: int
    producer_epoch: int


Effect = Respond | GroupStateChanged | OffsetsCommitted | OffsetsPending


# -- group state ------------------------------------------------------------------------------------------


@frozen(kw_only=True)
class OffsetAndMetadata:
    committed_offset: int
    record_offset: int  # position of the commit record in the offsets log (OffsetAndMetadata.recordOffset)


@frozen(kw_only=True)
class _Change:
    """A change to the committed store not yet below the offsets log's high watermark: the timeline snapshot
    at the last committed offset still holds ``previous`` (None: no offset)."""

    offset: int  # of the offset record or the COMMIT marker that made it
    group_id: str
    partition: TopicPartition
    previous: OffsetAndMetadata | None


@define(eq=False)
class ClassicGroupMember:
    member_id: str
    client_id: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: tuple[Protocol, ...]
    assignment: Assignment = ()
    awaiting_join: int | None = None  # correlation id of the parked JoinGroup (awaitingJoinFuture)
    awaiting_sync: int | None = None  # correlation id of the parked SyncGroup (awaitingSyncFuture)
    is_new: bool = True  # until its first join phase completes (ClassicGroupMember.isNew)

    def metadata(self, protocol_name: str) -> tuple[str, ...]:
        return next(metadata for name, metadata in self.protocols if name == protocol_name)

    def vote(self, candidates: set[str]) -> str:
        """ClassicGroupMember.vote: the member's first protocol among the candidates."""
        return next(name for name, _metadata in self.protocols if name in candidates)


@define(eq=False)
class ClassicGroup:
    group_id: str
    state: GroupState = GroupState.EMPTY
    previous_state: GroupState | None = None
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, ClassicGroupMember] = field(factory=dict)  # insertion order, as Kafka's member map
    pending_members: list[str] = field(factory=list)  # got MEMBER_ID_REQUIRED, not joined yet
    pending_sync_members: list[str] = field(factory=list)  # joined this generation, no SyncGroup yet
    new_member_added: bool = False  # a member joined during the initial delay: extend it

    def transition_to(self, target: GroupState) -> GroupStateChanged:
        """ClassicGroup.transitionTo / assertValidTransition."""
        if self.state not in VALID_PREVIOUS_STATES[target]:
            raise IllegalTransition("ClassicGroup", self.state, target)
        old = self.state
        self.previous_state, self.state = old, target
        return GroupStateChanged(group_id=self.group_id, old=old, new=target, generation_id=self.generation_id,
                                 members=tuple(sorted(self.members)))

    def can_rebalance(self) -> bool:
        return self.state in VALID_PREVIOUS_STATES[GroupState.PREPARING_REBALANCE]

    def has_all_members_joined(self) -> bool:
        """ClassicGroup.hasAllMembersJoined: a pending member (MEMBER_ID_REQUIRED sent) is waited for too."""
        return all(m.awaiting_join is not None for m in self.members.values()) and not self.pending_members

    def rebalance_timeout_ms(self) -> int:
        """The largest rebalance timeout of the members (ClassicGroup.rebalanceTimeoutMs)."""
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def supports_protocols(self, protocol_type: str, protocols: tuple[Protocol, ...]) -> bool:
        """ClassicGroup.supportsProtocols: an empty group takes any; else the type must match and one
        protocol be supported by every member."""
        names = {name for name, _metadata in protocols}
        if not self.members:
            return bool(protocol_type) and bool(names)
        return protocol_type == self.protocol_type and bool(names & self._candidate_protocols())

    def _candidate_protocols(self) -> set[str]:
        candidates: set[str] | None = None
        for member in self.members.values():
            names = {name for name, _metadata in member.protocols}
            candidates = names if candidates is None else candidates & names
        return candidates or set()

    def select_protocol(self) -> str:
        """ClassicGroup.selectProtocol: each member votes for its first candidate; most votes wins (a tie
        goes to the name first in sort order, where Kafka's HashMap order decides)."""
        candidates = self._candidate_protocols()
        votes: dict[str, int] = {}
        for member in self.members.values():
            name = member.vote(candidates)
            votes[name] = votes.get(name, 0) + 1
        return min(votes, key=lambda name: (-votes[name], name))

    def add(self, member: ClassicGroupMember, protocol_type: str) -> None:
        """ClassicGroup.add: the first member fixes the protocol type and becomes the leader."""
        if not self.members:
            self.protocol_type = protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member

    def remove(self, member_id: str) -> None:
        """ClassicGroup.remove: a removed leader is replaced by the first remaining member."""
        del self.members[member_id]
        if member_id in self.pending_sync_members:
            self.pending_sync_members.remove(member_id)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)

    def maybe_elect_new_joined_leader(self) -> bool:
        """ClassicGroup.maybeElectNewJoinedLeader: a leader that did not rejoin gives way to the first member
        that did."""
        if self.leader_id is None:
            return False
        if self.members[self.leader_id].awaiting_join is not None:
            return True
        joined = next((m for m, member in self.members.items() if member.awaiting_join is not None), None)
        if joined is None:
            return False
        self.leader_id = joined
        return True

    def current_members(self) -> tuple[Protocol, ...]:
        """ClassicGroup.currentClassicGroupMembers: what the leader assigns from."""
        assert self.protocol_name is not None
        return tuple((m, member.metadata(self.protocol_name)) for m, member in self.members.items())


# -- timers -----------------------------------------------------------------------------------------------


class _TimerKind(enum.Enum):
    INITIAL_REBALANCE = "initial-rebalance"  # GMM.tryCompleteInitialRebalanceElseSchedule
    REBALANCE = "rebalance"  # GMM.completeClassicGroupJoin on rebalance timeout
    SYNC = "sync"  # GMM.expirePendingSync
    HEARTBEAT = "heartbeat"  # GMM.expireClassicGroupMemberHeartbeat
    CONSUMER_SESSION = "consumer-session"  # GMM.scheduleConsumerGroupSessionTimeout
    CONSUMER_REBALANCE = "consumer-rebalance"  # GMM.scheduleConsumerGroupRebalanceTimeout


@frozen(kw_only=True)
class _Timer:
    deadline: int
    seq: int
    kind: _TimerKind
    group_id: str
    member_id: str = ""
    delay_ms: int = 0
    remaining_ms: int = 0
    generation_id: int = 0

    @property
    def key(self) -> tuple[str, str]:
        """Kafka's timer keys: one join key and one sync key per group, one heartbeat key per member."""
        if self.kind in (_TimerKind.HEARTBEAT, _TimerKind.CONSUMER_SESSION, _TimerKind.CONSUMER_REBALANCE):
            return (self.group_id, f"{self.kind.value}:{self.member_id}")
        return (self.group_id, "sync" if self.kind is _TimerKind.SYNC else "join")


# -- the offsets log record -------------------------------------------------------------------------------


def _offset_record(group_id: str, tp: TopicPartition, offset: int, now: int) -> Record:
    """An OffsetCommit record: key (group, topic, partition), value the offset (OffsetCommitKey/Value)."""
    return Record(key=json.dumps([group_id, tp.topic, tp.partition]), value=str(offset), timestamp=now)


def _parse_offset_record(record: Record) -> tuple[str, TopicPartition, int]:
    group_id, topic, partition = json.loads(record.key)
    return group_id, TopicPartition(topic, partition), int(record.value)


# Append errors as the coordinator reports them (CoordinatorOperationExceptionHelper.handleOperationException);
# anything else (INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, ...) passes through.
_WRITE_ERRORS: dict[Errors, Errors] = {
    Errors.NETWORK_EXCEPTION: Errors.COORDINATOR_LOAD_IN_PROGRESS,
    Errors.UNKNOWN_TOPIC_OR_PARTITION: Errors.COORDINATOR_NOT_AVAILABLE,
    Errors.NOT_ENOUGH_REPLICAS: Errors.COORDINATOR_NOT_AVAILABLE,
    Errors.REQUEST_TIMED_OUT: Errors.COORDINATOR_NOT_AVAILABLE,
    Errors.NOT_LEADER_OR_FOLLOWER: Errors.NOT_COORDINATOR,
    Errors.KAFKA_STORAGE_ERROR: Errors.NOT_COORDINATOR,
}


# -- KIP-848 rules on requests -----------------------------------------------------------------------------

UNIFORM_ASSIGNOR = "uniform"  # group.consumer.assignors: the one assignor modelled


def _consumer_heartbeat_request_error(req: ConsumerGroupHeartbeatRequest) -> Errors:
    """GMM.throwIfConsumerGroupHeartbeatRequestIsInvalid."""
    if not req.group_id:
        return Errors.INVALID_REQUEST
    if req.member_epoch > 0 or req.member_epoch == LEAVE_GROUP_MEMBER_EPOCH:
        if not req.member_id:
            return Errors.INVALID_REQUEST
    elif req.member_epoch == 0:
        if (not req.member_id or req.rebalance_timeout_ms == -1 or req.topic_partitions is None
                or req.topic_partitions or not req.subscribed_topic_names):
            return Errors.INVALID_REQUEST  # v1 (KIP-1082): the client sends its member id from the start
    else:
        return Errors.INVALID_REQUEST
    if req.server_assignor is not None and req.server_assignor != UNIFORM_ASSIGNOR:
        return Errors.UNSUPPORTED_ASSIGNOR
    return Errors.NONE


def _member_epoch_is_valid(member: ConsumerGroupMember, epoch: int,
                           owned: tuple[TopicPartition, ...] | None) -> bool:
    """GMM.throwIfConsumerGroupMemberEpochIsInvalid: a greater epoch is fenced; a smaller one only passes as
    the previous epoch with owned partitions within the current assignment (the response that bumped the
    epoch was lost)."""
    if epoch > member.member_epoch:
        return False
    if epoch < member.member_epoch:
        return epoch == member.previous_member_epoch and owned is not None \
            and set(owned) <= member.assigned_partitions
    return True


def _validate_consumer_group_offset_commit(group: ConsumerGroup, member_epoch: int, member_id: str, *,
                                           transactional: bool) -> Errors:
    """ConsumerGroup.validateOffsetCommit / validateMemberEpoch; OMM.validateTransactionalOffsetCommit turns a
    stale member epoch into ILLEGAL_GENERATION for a TxnOffsetCommit."""
    if group.dead:
        return Errors.COORDINATOR_NOT_AVAILABLE
    if member_epoch < 0 and not group.members:
        return Errors.NONE  # admin client or a consumer without group management
    member = group.members.get(member_id)
    if member is None:
        return Errors.UNKNOWN_MEMBER_ID
    if member_epoch != member.member_epoch:
        return Errors.ILLEGAL_GENERATION if transactional else Errors.STALE_MEMBER_EPOCH
    return Errors.NONE


# -- the coordinator --------------------------------------------------------------------------------------


@define(eq=False)
class GroupCoordinator:
    config: BrokerConfig
    offsets_log: PartitionLog
    topics: dict[str, int] = field(factory=dict)  # the metadata image: topic -> partition count (assignors)
    groups: dict[str, ClassicGroup | ConsumerGroup] = field(init=False, factory=dict)
    # OMM.offsets: group -> partition -> the visible committed offset.
    offsets: dict[str, dict[TopicPartition, OffsetAndMetadata]] = field(init=False, factory=dict)
    # OMM.pendingTransactionalOffsets: pid -> (group, partition) -> offset written in the open txn.
    pending_transactional_offsets: dict[int, dict[tuple[str, TopicPartition], OffsetAndMetadata]] = field(
        init=False, factory=dict)
    # OMM.openTransactions: (group, partition) -> pids with a pending offset there (membership only).
    open_transactions: dict[tuple[str, TopicPartition], set[int]] = field(init=False, factory=dict)
    # The changes to ``offsets`` at or above the offsets log's high watermark, in log order: what the timeline
    # snapshot at the last committed offset does not hold yet (SnapshottableCoordinator, TimelineHashMap).
    _uncommitted: list[_Change] = field(init=False, factory=list)
    _timers: dict[tuple[str, str], _Timer] = field(init=False, factory=dict)
    _timer_seq: int = field(init=False, default=0)
    _member_seq: int = field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        # Load: replay what the offsets log already holds, to its log end (CoordinatorLoaderImpl -> OMM.replay);
        # what lies at or above its high watermark is loaded but not committed yet.
        for batch in self.offsets_log.batches:
            self._replay_batch(batch)

    @property
    def last_committed_offset(self) -> int:
        """SnapshottableCoordinator.lastCommittedOffset: the offsets log's high watermark."""
        return self.offsets_log.high_watermark

    def on_high_watermark(self, offset: int) -> None:
        """The offsets log is committed below ``offset`` (CoordinatorRuntime.HighWatermarkListener ->
        SnapshottableCoordinator.updateLastCommittedOffset): a non-stable OffsetFetch sees what it holds. One
        replica commits at append time; a replicated partition when its followers have the records."""
        self.offsets_log.advance_high_watermark(offset)
        self._uncommitted = [c for c in self._uncommitted if c.offset >= offset]

    # -- entry points -------------------------------------------------------------------------------

    def handle(self, correlation_id: int, request: object, now: int) -> list[Effect]:
        match request:
            case ConsumerGroupHeartbeatRequest():
                return self._consumer_heartbeat(correlation_id, request, now)
            case JoinGroupRequest():
                return self._join(correlation_id, request, now)
            case SyncGroupRequest():
                return self._sync(correlation_id, request, now)
            case HeartbeatRequest():
                return self._heartbeat(correlation_id, request, now)
            case LeaveGroupRequest():
                return self._leave(correlation_id, request, now)
            case OffsetCommitRequest():
                return self._commit(correlation_id, request, now)
            case TxnOffsetCommitRequest():
                return self._txn_commit(correlation_id, request, now)
            case OffsetFetchRequest():
                return self._fetch(correlation_id, request)
        raise TypeError(f"GroupCoordinator cannot handle {request!r}")

    def complete_transaction(self, *, producer_id: int, producer_epoch: int, coordinator_epoch: int,
                             result: TransactionResult, now: int) -> tuple[Errors, list[Effect]]:
        """Append the marker to the offsets log, then COMMIT materializes / ABORT drops the pid's pending
        offsets (CoordinatorRuntime.completeTransaction). The effects are the offsets that became visible."""
        appended = self.offsets_log.append_marker(producer_id=producer_id, producer_epoch=producer_epoch,
                                                  coordinator_epoch=coordinator_epoch,
                                                  control=result.control_type, now=now)
        if appended.error is not Errors.NONE:
            return appended.error, []  # e.g. INVALID_PRODUCER_EPOCH for a stale marker: nothing changes
        return Errors.NONE, self._replay_end_transaction_marker(producer_id, result, appended.base_offset)

    def next_deadline(self) -> int | None:
        return min((t.deadline for t in self._timers.values()), default=None)

    def on_timer(self, now: int) -> list[Effect]:
        effects: list[Effect] = []
        while due := [t for t in self._timers.values() if t.deadline <= now]:
            timer = min(due, key=lambda t: (t.deadline, t.seq))
            del self._timers[timer.key]
            match timer.kind:
                case _TimerKind.INITIAL_REBALANCE:
                    effects += self._initial_rebalance_expired(timer, now)
                case _TimerKind.REBALANCE:
                    effects += self._complete_join(self.groups[timer.group_id], now)
                case _TimerKind.SYNC:
                    effects += self._sync_expired(timer, now)
                case _TimerKind.HEARTBEAT:
                    effects += self._heartbeat_expired(timer.group_id, timer.member_id, now)
                case _TimerKind.CONSUMER_SESSION:
                    effects += self._consumer_fence(self.groups[timer.group_id], timer.member_id)
                case _TimerKind.CONSUMER_REBALANCE:
                    effects += self._consumer_rebalance_expired(timer)
        return effects

    def unload(self) -> list[Effect]:
        """This broker stops leading the offsets partition (GMM.onUnloaded): every group goes Dead,
        parked JoinGroups get NOT_COORDINATOR, timers stop."""
        effects: list[Effect] = []
        for group_id in sorted(self.groups):
            group = self.groups[group_id]
            if isinstance(group, ConsumerGroup):
                effects += self._consumer_group_changed(group, lambda g=group: setattr(g, "dead", True))
                continue
            effects.append(group.transition_to(GroupState.DEAD))
            for member_id in sorted(group.members):
                effects += self._complete_join_future(group.members[member_id], Errors.NOT_COORDINATOR)
                effects += self._complete_sync_future(group.members[member_id], Errors.NOT_COORDINATOR)
        self._timers.clear()
        return effects

    def committed(self, group_id: str) -> dict[TopicPartition, int]:
        """The committed offsets of a group as a non-stable OffsetFetch reads them (for observations)."""
        partitions = {*self.offsets.get(group_id, {}), *(c.partition for c in self._uncommitted
                                                          if c.group_id == group_id)}
        committed = {tp: self._committed_entry(group_id, tp) for tp in sorted(partitions)}
        return {tp: entry.committed_offset for tp, entry in committed.items() if entry is not None}

    def _committed_entry(self, group_id: str, tp: TopicPartition) -> OffsetAndMetadata | None:
        """A partition's committed offset at the last committed offset (TimelineHashMap.get(key, epoch)): the
        value before its first uncommitted change, else the latest."""
        for change in self._uncommitted:
            if change.group_id == group_id and change.partition == tp:
                return change.previous
        return self.offsets.get(group_id, {}).get(tp)

    # -- membership ------------------------------------------------------------------------------------

    def _join(self, cid: int, req: JoinGroupRequest, now: int) -> list[Effect]:
        def reply(error: Errors) -> list[Effect]:
            return [Respond(correlation_id=cid, response=JoinGroupResponse(error=error, member_id=req.member_id))]

        # GroupCoordinatorService.joinGroup
        config = self.config
        if not config.group_min_session_timeout_ms <= req.session_timeout_ms <= config.group_max_session_timeout_ms:
            return reply(Errors.INVALID_SESSION_TIMEOUT)
        group = self.groups.get(req.group_id)
        if isinstance(group, ConsumerGroup):
            if group.members or group.dead:  # no online migration here (module docstring)
                return reply(Errors.INCONSISTENT_GROUP_PROTOCOL)
            group = None  # GMM.getOrMaybeCreateClassicGroup: an empty consumer group becomes a classic one
        if group is None:
            # GMM.classicGroupJoinToClassicGroup: only an unknown member creates the group.
            if req.member_id:
                return reply(Errors.UNKNOWN_MEMBER_ID)
            group = self.groups[req.group_id] = ClassicGroup(group_id=req.group_id)
        if group.state is GroupState.DEAD:
            return reply(Errors.COORDINATOR_NOT_AVAILABLE)
        if not group.supports_protocols(req.protocol_type, req.protocols):
            return reply(Errors.INCONSISTENT_GROUP_PROTOCOL)
        if not req.member_id:
            # GMM.classicGroupJoinNewDynamicMember (v4+): a member id, pending until the member joins with it.
            self._member_seq += 1
            member_id = f"{req.client_id}-{self._member_seq}"
            group.pending_members.append(member_id)
            self._schedule_heartbeat(group.group_id, member_id, now, req.session_timeout_ms)
            return [Respond(correlation_id=cid, response=JoinGroupResponse(error=Errors.MEMBER_ID_REQUIRED,
                                                                          member_id=member_id))]
        if req.member_id in group.pending_members:
            group.pending_members.remove(req.member_id)
            return self._add_member(cid, req, group, now)
        member = group.members.get(req.member_id)
        if member is None:
            return reply(Errors.UNKNOWN_MEMBER_ID)
        # GMM.classicGroupJoinExistingMember
        same = member.protocols == req.protocols
        if group.state is GroupState.COMPLETING_REBALANCE and same:
            # a lost JoinGroup response: the current generation again
            return [Respond(correlation_id=cid, response=self._join_response(group, member))]
        if group.state is GroupState.STABLE and same and group.leader_id != member.member_id:
            return [Respond(correlation_id=cid, response=self._join_response(group, member, leader_copy=False))]
        # GMM.updateMemberThenRebalanceOrCompleteJoin; a parked earlier JoinGroup of this member is
        # replaced, never answered (ClassicGroup.updateMember).
        member.protocols = req.protocols
        member.session_timeout_ms = req.session_timeout_ms
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.awaiting_join = cid
        return self._maybe_prepare_rebalance_or_complete_join(group, now)

    def _add_member(self, cid: int, req: JoinGroupRequest, group: ClassicGroup, now: int) -> list[Effect]:
        """GMM.addMemberThenRebalanceOrCompleteJoin."""
        member = ClassicGroupMember(member_id=req.member_id, client_id=req.client_id,
                                    session_timeout_ms=req.session_timeout_ms,
                                    rebalance_timeout_ms=req.rebalance_timeout_ms, protocols=req.protocols,
                                    awaiting_join=cid)
        if group.state is GroupState.PREPARING_REBALANCE and group.previous_state is GroupState.EMPTY:
            group.new_member_added = True
        group.add(member, req.protocol_type)
        # A parked new member is dropped if its join does not complete in time (it cannot heartbeat yet).
        self._schedule_heartbeat(group.group_id, member.member_id, now, CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS)
        return self._maybe_prepare_rebalance_or_complete_join(group, now)

    def _join_response(self, group: ClassicGroup, member: ClassicGroupMember, *,
                       leader_copy: bool = True) -> JoinGroupResponse:
        """The JoinGroupResponse of the current generation; only the leader gets the members."""
        is_leader = leader_copy and group.leader_id == member.member_id
        return JoinGroupResponse(error=Errors.NONE, generation_id=group.generation_id,
                                 protocol_name=group.protocol_name or "", leader=group.leader_id or "",
                                 member_id=member.member_id, members=group.current_members() if is_leader else ())

    def _maybe_prepare_rebalance_or_complete_join(self, group: ClassicGroup, now: int) -> list[Effect]:
        if group.can_rebalance():
            return self._prepare_rebalance(group, now)
        return self._maybe_complete_join_phase(group, now)

    def _prepare_rebalance(self, group: ClassicGroup, now: int) -> list[Effect]:
        """GMM.prepareRebalance: parked SyncGroups get REBALANCE_IN_PROGRESS; a new group waits
        group.initial.rebalance.delay.ms for more members."""
        effects: list[Effect] = []
        if group.state is GroupState.COMPLETING_REBALANCE:
            effects += self._reset_and_propagate_assignment_with_error(group, Errors.REBALANCE_IN_PROGRESS)
        self._remove_sync_expiration(group)
        initial = group.state is GroupState.EMPTY
        if initial:
            delay = self.config.group_initial_rebalance_delay_ms
            self._schedule(_TimerKind.INITIAL_REBALANCE, group.group_id, now + delay, delay_ms=delay,
                           remaining_ms=max(group.rebalance_timeout_ms() - delay, 0))
        effects.append(group.transition_to(GroupState.PREPARING_REBALANCE))
        if initial:
            return effects
        # GMM.maybeCompleteJoinElseSchedule
        if group.has_all_members_joined():
            return effects + self._complete_join(group, now)
        self._schedule(_TimerKind.REBALANCE, group.group_id, now + group.rebalance_timeout_ms())
        return effects

    def _maybe_complete_join_phase(self, group: ClassicGroup, now: int) -> list[Effect]:
        """GMM.maybeCompleteJoinPhase: the initial rebalance only completes on its timer."""
        if (group.state is not GroupState.PREPARING_REBALANCE or group.previous_state is GroupState.EMPTY
                or not group.has_all_members_joined()):
            return []
        return self._complete_join(group, now)

    def _initial_rebalance_expired(self, timer: _Timer, now: int) -> list[Effect]:
        """GMM.tryCompleteInitialRebalanceElseSchedule: each new member extends the delay, up to the
        rebalance timeout."""
        group = self.groups[timer.group_id]
        if group.new_member_added and timer.remaining_ms != 0:
            group.new_member_added = False
            delay = min(self.config.group_initial_rebalance_delay_ms, timer.remaining_ms)
            self._schedule(_TimerKind.INITIAL_REBALANCE, group.group_id, now + delay, delay_ms=delay,
                           remaining_ms=max(timer.remaining_ms - timer.delay_ms, 0))
            return []
        return self._complete_join(group, now)

    def _complete_join(self, group: ClassicGroup, now: int) -> list[Effect]:
        """GMM.completeClassicGroupJoin: drop the members that did not rejoin, start the next generation
        (ClassicGroup.initNextGeneration) and answer every parked JoinGroup, the leader's with the members;
        then wait up to the rebalance timeout for the SyncGroups (GMM.schedulePendingSync)."""
        self._timers.pop((group.group_id, "join"), None)
        for member_id in [m for m, member in group.members.items() if member.awaiting_join is None]:
            self._remove_member(group, member_id)  # did not rejoin in time
        if group.members and not group.maybe_elect_new_joined_leader():
            self._schedule(_TimerKind.REBALANCE, group.group_id, now + group.rebalance_timeout_ms())
            return []
        group.generation_id += 1
        group.pending_sync_members = []
        if not group.members:
            group.protocol_name = None
            return [group.transition_to(GroupState.EMPTY)]
        group.protocol_name = group.select_protocol()
        effects: list[Effect] = [group.transition_to(GroupState.COMPLETING_REBALANCE)]
        for member_id, member in group.members.items():
            effects.append(Respond(correlation_id=member.awaiting_join, response=self._join_response(group, member)))
            member.awaiting_join = None
            member.is_new = False
            self._schedule_heartbeat(group.group_id, member_id, now, member.session_timeout_ms)
            group.pending_sync_members.append(member_id)
        self._schedule(_TimerKind.SYNC, group.group_id, now + group.rebalance_timeout_ms(),
                       generation_id=group.generation_id)
        return effects

    def _sync(self, cid: int, req: SyncGroupRequest, now: int) -> list[Effect]:
        """GMM.classicGroupSyncToClassicGroup / validateSyncGroup."""
        def reply(error: Errors) -> list[Effect]:
            return [Respond(correlation_id=cid, response=SyncGroupResponse(error=error))]

        group = self._classic(req.group_id)
        if group is None:
            return reply(Errors.UNKNOWN_MEMBER_ID)
        if group.state is GroupState.DEAD:
            return reply(Errors.COORDINATOR_NOT_AVAILABLE)
        member = group.members.get(req.member_id)
        if member is None:
            return reply(Errors.UNKNOWN_MEMBER_ID)
        if req.generation_id != group.generation_id:
            return reply(Errors.ILLEGAL_GENERATION)
        if req.protocol_type != group.protocol_type or (req.protocol_name and req.protocol_name != group.protocol_name):
            return reply(Errors.INCONSISTENT_GROUP_PROTOCOL)
        if group.state is GroupState.PREPARING_REBALANCE:
            return reply(Errors.REBALANCE_IN_PROGRESS)
        self._remove_pending_sync_member(group, member.member_id)
        if group.state is GroupState.STABLE:
            return [Respond(correlation_id=cid, response=SyncGroupResponse(
                error=Errors.NONE, protocol_name=group.protocol_name or "", assignment=member.assignment))]
        member.awaiting_sync = cid  # CompletingRebalance: parked until the leader's assignment
        if member.member_id != group.leader_id:
            return []
        # The leader's assignment; a member it left out gets an empty one. Kafka stores it in a group
        # metadata record first; this model writes no group records (see the module docstring).
        given = dict(req.assignments)
        for member_id, m in group.members.items():
            m.assignment = given.get(member_id, ())
        effects: list[Effect] = self._propagate_assignment(group, Errors.NONE)
        return [group.transition_to(GroupState.STABLE), *effects]

    def _propagate_assignment(self, group: ClassicGroup, error: Errors) -> list[Effect]:
        """ClassicGroup.propagateAssignment: answer every parked SyncGroup."""
        effects: list[Effect] = []
        for member in group.members.values():
            if member.awaiting_sync is None:
                continue
            response = (SyncGroupResponse(error=Errors.NONE, protocol_name=group.protocol_name or "",
                                          assignment=member.assignment)
                        if error is Errors.NONE else SyncGroupResponse(error=error))
            effects.append(Respond(correlation_id=member.awaiting_sync, response=response))
            member.awaiting_sync = None
        return effects

    def _reset_and_propagate_assignment_with_error(self, group: ClassicGroup, error: Errors) -> list[Effect]:
        for member in group.members.values():
            member.assignment = ()
        return self._propagate_assignment(group, error)

    def _remove_pending_sync_member(self, group: ClassicGroup, member_id: str) -> None:
        """GMM.removePendingSyncMember: the sync timer stops once every member has synced."""
        if member_id in group.pending_sync_members:
            group.pending_sync_members.remove(member_id)
        if not group.pending_sync_members:
            self._timers.pop((group.group_id, "sync"), None)

    def _remove_sync_expiration(self, group: ClassicGroup) -> None:
        group.pending_sync_members = []
        self._timers.pop((group.group_id, "sync"), None)

    def _sync_expired(self, timer: _Timer, now: int) -> list[Effect]:
        """GMM.expirePendingSync: members that did not send SyncGroup in time are removed."""
        group = self.groups[timer.group_id]
        if (timer.generation_id != group.generation_id
                or group.state not in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE)
                or not group.pending_sync_members):
            return []
        for member_id in list(group.pending_sync_members):
            effects = self._complete_sync_future(group.members[member_id], Errors.UNKNOWN_MEMBER_ID)
            assert not effects  # a member with a parked SyncGroup is no longer pending
            self._remove_member(group, member_id)
        return self._prepare_rebalance(group, now)

    def _heartbeat(self, cid: int, req: HeartbeatRequest, now: int) -> list[Effect]:
        """GMM.classicGroupHeartbeatToClassicGroup / validateClassicGroupHeartbeat."""
        group = self._classic(req.group_id)
        member = group.members.get(req.member_id) if group is not None else None
        if group is not None and group.state is GroupState.DEAD:
            error = Errors.COORDINATOR_NOT_AVAILABLE
        elif member is None:
            error = Errors.UNKNOWN_MEMBER_ID
        elif req.generation_id != group.generation_id:
            error = Errors.ILLEGAL_GENERATION
        else:
            # CompletingRebalance and Stable: a plain heartbeat (members heartbeat between Join and Sync).
            self._schedule_heartbeat(group.group_id, member.member_id, now, member.session_timeout_ms)
            rebalancing = group.state is GroupState.PREPARING_REBALANCE
            error = Errors.REBALANCE_IN_PROGRESS if rebalancing else Errors.NONE
        return [Respond(correlation_id=cid, response=HeartbeatResponse(error=error))]

    def _heartbeat_expired(self, group_id: str, member_id: str, now: int) -> list[Effect]:
        """GMM.expireClassicGroupMemberHeartbeat: a pending member is forgotten; a member parked in a
        rebalance satisfies its heartbeat, unless it is new."""
        group = self.groups[group_id]
        if member_id in group.pending_members:
            # GMM.removePendingMemberAndUpdateClassicGroup
            group.pending_members.remove(member_id)
            if group.state is GroupState.PREPARING_REBALANCE:
                return self._maybe_complete_join_phase(group, now)
            return []
        member = group.members[member_id]
        if not member.is_new and member.awaiting_join is not None:
            return []
        # GMM.removeMemberAndUpdateClassicGroup
        return self._remove_member_and_update(group, member, now)

    def _remove_member_and_update(self, group: ClassicGroup, member: ClassicGroupMember, now: int) -> list[Effect]:
        """GMM.removeMemberAndUpdateClassicGroup: a parked JoinGroup gets UNKNOWN_MEMBER_ID (so a live
        consumer rejoins); a Stable or CompletingRebalance group rebalances."""
        effects = self._complete_join_future(member, Errors.UNKNOWN_MEMBER_ID)
        effects += self._complete_sync_future(member, Errors.UNKNOWN_MEMBER_ID)
        self._remove_member(group, member.member_id)
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            effects += self._maybe_prepare_rebalance_or_complete_join(group, now)
        elif group.state is GroupState.PREPARING_REBALANCE:
            effects += self._maybe_complete_join_phase(group, now)
        return effects

    def _leave(self, cid: int, req: LeaveGroupRequest, now: int) -> list[Effect]:
        """GMM.classicGroupLeaveToClassicGroup (one member): a pending member is forgotten too."""
        group = self._classic(req.group_id)
        member = group.members.get(req.member_id) if group is not None else None
        effects: list[Effect] = []
        if group is not None and group.state is GroupState.DEAD:
            error = Errors.COORDINATOR_NOT_AVAILABLE
        elif group is not None and req.member_id in group.pending_members:
            error = Errors.NONE
            group.pending_members.remove(req.member_id)
            self._timers.pop((group.group_id, "heartbeat:" + req.member_id), None)
            effects += self._maybe_complete_join_phase(group, now)
        elif member is None:
            error = Errors.UNKNOWN_MEMBER_ID
        else:
            error = Errors.NONE
            effects += self._remove_member_and_update(group, member, now)
        return effects + [Respond(correlation_id=cid, response=LeaveGroupResponse(error=error))]

    def _complete_join_future(self, member: ClassicGroupMember, error: Errors) -> list[Effect]:
        """ClassicGroup.completeJoinFuture with an error (the member id is reset, as Kafka's UNKNOWN_MEMBER_ID)."""
        if member.awaiting_join is None:
            return []
        cid, member.awaiting_join = member.awaiting_join, None
        member_id = member.member_id if error is Errors.NOT_COORDINATOR else ""
        return [Respond(correlation_id=cid, response=JoinGroupResponse(error=error, member_id=member_id))]

    def _complete_sync_future(self, member: ClassicGroupMember, error: Errors) -> list[Effect]:
        if member.awaiting_sync is None:
            return []
        cid, member.awaiting_sync = member.awaiting_sync, None
        return [Respond(correlation_id=cid, response=SyncGroupResponse(error=error))]

    def _classic(self, group_id: str) -> ClassicGroup | None:
        """The classic group, for SyncGroup, Heartbeat and LeaveGroup; a consumer group has no classic
        member, so they get UNKNOWN_MEMBER_ID there as at an unknown group."""
        group = self.groups.get(group_id)
        return group if isinstance(group, ClassicGroup) else None

    def _remove_member(self, group: ClassicGroup, member_id: str) -> None:
        group.remove(member_id)
        self._timers.pop((group.group_id, "heartbeat:" + member_id), None)

    # -- KIP-848 consumer groups (eosim.models.consumer_group) ------------------------------------------

    def _consumer_heartbeat(self, cid: int, req: ConsumerGroupHeartbeatRequest, now: int) -> list[Effect]:
        """GMM.consumerGroupHeartbeat: validate, create or update the member (a new member or a changed
        subscription bumps the group epoch), recompute the target assignment when the group epoch is ahead
        of it, reconcile the member towards its target, and push its session on."""
        def reply(error: Errors, **fields: object) -> list[Effect]:
            return [Respond(correlation_id=cid, response=ConsumerGroupHeartbeatResponse(
                error=error, member_id=req.member_id, **fields))]

        error = _consumer_heartbeat_request_error(req)
        if error is not Errors.NONE:
            return reply(error)
        group = self.groups.get(req.group_id)
        if isinstance(group, ClassicGroup):
            if group.members or group.pending_members or group.state is GroupState.DEAD or req.member_epoch != 0:
                return reply(Errors.GROUP_ID_NOT_FOUND)  # GMM.getOrMaybeCreateConsumerGroup: not a consumer group
            group = None  # an empty classic group (e.g. made by a commit) becomes a consumer group
        if group is None:
            if req.member_epoch != 0:
                return reply(Errors.GROUP_ID_NOT_FOUND)
            group = self.groups[req.group_id] = ConsumerGroup(group_id=req.group_id)
        if group.dead:
            return reply(Errors.COORDINATOR_NOT_AVAILABLE)
        member = group.members.get(req.member_id)
        if req.member_epoch == LEAVE_GROUP_MEMBER_EPOCH:  # GMM.consumerGroupLeave
            if member is None:
                return reply(Errors.UNKNOWN_MEMBER_ID)
            return self._consumer_fence(group, member.member_id) + reply(Errors.NONE, member_epoch=LEAVE_GROUP_MEMBER_EPOCH)
        if req.member_epoch == 0:
            is_new = member is None
            member = member or ConsumerGroupMember(member_id=req.member_id)
        else:
            if member is None:
                return reply(Errors.UNKNOWN_MEMBER_ID)
            if not _member_epoch_is_valid(member, req.member_epoch, req.topic_partitions):
                return reply(Errors.FENCED_MEMBER_EPOCH)
            is_new = False

        def change() -> None:
            nonlocal member
            updated = member
            if req.rebalance_timeout_ms != -1:
                updated = evolve(updated, rebalance_timeout_ms=req.rebalance_timeout_ms)
            if req.subscribed_topic_names is not None:
                updated = evolve(updated, subscribed_topic_names=tuple(sorted(req.subscribed_topic_names)))
            if req.server_assignor is not None:
                updated = evolve(updated, server_assignor=req.server_assignor)
            if is_new or updated.subscribed_topic_names != member.subscribed_topic_names:
                group.group_epoch += 1  # GMM.hasMemberSubscriptionChanged -> newConsumerGroupEpochRecord
            if group.group_epoch > group.assignment_epoch:  # GMM.updateTargetAssignment
                subscriptions = {m: x.subscribed_topic_names for m, x in group.members.items()}
                subscriptions[updated.member_id] = updated.subscribed_topic_names
                group.target_assignment = uniform_assignment(subscriptions, group.target_assignment, self.topics)
                group.assignment_epoch = group.group_epoch
            target = group.target_assignment.get(updated.member_id, frozenset())
            if not updated.is_reconciled_to(group.assignment_epoch):  # GMM.maybeReconcile
                updated = reconcile(updated, group.assignment_epoch, target, group.current_partition_epoch,
                                    req.topic_partitions)
            group.update_member(updated)
            member = updated

        before = member
        effects = self._consumer_group_changed(group, change)
        # The rebalance timer runs while the member has partitions to revoke (GMM.maybeReconcile).
        if member.state is MemberState.UNREVOKED_PARTITIONS:
            if before.state is not MemberState.UNREVOKED_PARTITIONS or before.member_epoch != member.member_epoch:
                self._schedule(_TimerKind.CONSUMER_REBALANCE, group.group_id, now + member.rebalance_timeout_ms,
                               member_id=member.member_id, generation_id=member.member_epoch)
        else:
            self._timers.pop((group.group_id, f"{_TimerKind.CONSUMER_REBALANCE.value}:{member.member_id}"), None)
        self._schedule(_TimerKind.CONSUMER_SESSION, group.group_id, now + self.config.group_consumer_session_timeout_ms,
                       member_id=member.member_id)
        # The assignment goes out on a full request (joining, or after an error) or when it changed.
        full = req.member_epoch == 0 or (req.rebalance_timeout_ms != -1 and req.subscribed_topic_names is not None
                                         and req.topic_partitions is not None)
        changed = is_new or member.assigned_partitions != before.assigned_partitions
        assignment = tuple(sorted(member.assigned_partitions)) if full or changed else None
        return effects + reply(Errors.NONE, member_epoch=member.member_epoch,
                               heartbeat_interval_ms=self.config.group_consumer_heartbeat_interval_ms,
                               assignment=assignment)

    def _consumer_fence(self, group: ConsumerGroup, member_id: str) -> list[Effect]:
        """GMM.consumerGroupFenceMember (leave, session expiry, rebalance timeout): the member goes, its
        partitions are free, and the group epoch is bumped."""
        self._timers.pop((group.group_id, f"{_TimerKind.CONSUMER_SESSION.value}:{member_id}"), None)
        self._timers.pop((group.group_id, f"{_TimerKind.CONSUMER_REBALANCE.value}:{member_id}"), None)

        def fence() -> None:
            group.remove_member(member_id)
            group.group_epoch += 1

        return self._consumer_group_changed(group, fence)

    def _consumer_rebalance_expired(self, timer: _Timer) -> list[Effect]:
        """GMM.scheduleConsumerGroupRebalanceTimeout: a member still revoking at the same epoch is fenced."""
        group = self.groups[timer.group_id]
        assert isinstance(group, ConsumerGroup)
        member = group.members.get(timer.member_id)
        if member is None or member.state is not MemberState.UNREVOKED_PARTITIONS \
                or member.member_epoch != timer.generation_id:
            return []
        return self._consumer_fence(group, member.member_id)

    @staticmethod
    def _consumer_group_changed(group: ConsumerGroup, change: Callable[[], None]) -> list[Effect]:
        """Run ``change``; a GroupStateChanged when the group's state or epoch moved."""
        old, old_epoch = group.state, group.group_epoch
        change()
        if (group.state, group.group_epoch) == (old, old_epoch):
            return []
        return [GroupStateChanged(group_id=group.group_id, old=old, new=group.state, generation_id=group.group_epoch,
                                  members=tuple(sorted(group.members)))]

    # -- offsets -------------------------------------------------------------------------------------------

    def _validate_offset_commit(self, group_id: str, generation_id: int, member_id: str, *,
                                transactional: bool) -> Errors:
        """OMM.validate(Transactional)OffsetCommit + ClassicGroup.validateOffsetCommit (KIP-447 fencing)."""
        group = self.groups.get(group_id)
        if group is None:
            if generation_id < 0:
                return Errors.NONE  # a "simple" group: replay creates it
            # OffsetCommit v9+ says GROUP_ID_NOT_FOUND; TxnOffsetCommit keeps ILLEGAL_GENERATION.
            return Errors.ILLEGAL_GENERATION if transactional else Errors.GROUP_ID_NOT_FOUND
        if isinstance(group, ConsumerGroup):
            return _validate_consumer_group_offset_commit(group, generation_id, member_id, transactional=transactional)
        if group.state is GroupState.DEAD:
            return Errors.COORDINATOR_NOT_AVAILABLE
        if generation_id < 0 and group.state is GroupState.EMPTY:
            return Errors.NONE  # admin client or a consumer without group management
        if generation_id >= 0 or member_id:
            if member_id not in group.members:
                return Errors.UNKNOWN_MEMBER_ID
            if generation_id != group.generation_id:
                return Errors.ILLEGAL_GENERATION
        elif not transactional:
            # A memberless plain commit is only accepted by an Empty group; a memberless TxnOffsetCommit
            # (pre-KIP-447 producer) is accepted unfenced.
            return Errors.UNKNOWN_MEMBER_ID
        if not transactional and group.state is GroupState.COMPLETING_REBALANCE:
            return Errors.REBALANCE_IN_PROGRESS  # the member has its generation but not its assignment yet
        return Errors.NONE

    def _commit(self, cid: int, req: OffsetCommitRequest, now: int) -> list[Effect]:
        """OMM.commitOffset: a non-transactional batch to the offsets log."""
        error = self._validate_offset_commit(req.group_id, req.generation_id, req.member_id, transactional=False)
        effects: list[Effect] = []
        if error is Errors.NONE:
            group = self._classic(req.group_id)
            if group is not None and group.state in (GroupState.STABLE, GroupState.PREPARING_REBALANCE) \
                    and req.member_id in group.members:
                # A classic member's commit keeps its session alive (OMM.commitOffset).
                member = group.members[req.member_id]
                self._schedule_heartbeat(group.group_id, member.member_id, now, member.session_timeout_ms)
            error, effects = self._write_offsets(req.group_id, req.offsets, now)
        results = tuple((tp, error) for tp, _offset in req.offsets)
        return effects + [Respond(correlation_id=cid, response=OffsetCommitResponse(results=results))]

    def _txn_commit(self, cid: int, req: TxnOffsetCommitRequest, now: int) -> list[Effect]:
        """OMM.commitTransactionalOffset: a transactional batch (pid, epoch) to the offsets log."""
        error = self._validate_offset_commit(req.group_id, req.generation_id, req.member_id, transactional=True)
        effects: list[Effect] = []
        if error is Errors.NONE:
            error, effects = self._write_offsets(req.group_id, req.offsets, now, producer_id=req.producer_id,
                                                 producer_epoch=req.producer_epoch)
        results = tuple((tp, error) for tp, _offset in req.offsets)
        return effects + [Respond(correlation_id=cid, response=TxnOffsetCommitResponse(results=results))]

    def _write_offsets(self, group_id: str, offsets: tuple[tuple[TopicPartition, int], ...], now: int, *,
                       producer_id: int = NO_PRODUCER_ID,
                       producer_epoch: int = NO_PRODUCER_EPOCH) -> tuple[Errors, list[Effect]]:
        if not offsets:
            return Errors.NONE, []  # no records, no write
        transactional = producer_id != NO_PRODUCER_ID
        batch = RecordBatch(records=tuple(_offset_record(group_id, tp, offset, now) for tp, offset in offsets),
                            producer_id=producer_id, producer_epoch=producer_epoch,
                            # The runtime's batches carry base sequence 0 (CoordinatorRuntime.maybeAllocateNewBatch);
                            # origin COORDINATOR is never sequence-checked.
                            base_sequence=0 if transactional else NO_SEQUENCE,
                            is_transactional=transactional)
        guard = None
        if transactional and self.offsets_log.needs_verification(batch):
            # KIP-890 (KAFKA-15449): Kafka asks the transaction coordinator first; here it is taken to agree.
            guard = self.offsets_log.start_verification(producer_id, producer_epoch, batch.base_sequence, now=now)
        result = self.offsets_log.append_as_leader(batch, now, origin=AppendOrigin.COORDINATOR,
                                                   verification_guard=guard)
        if result.error is not Errors.NONE:
            return _WRITE_ERRORS.get(result.error, result.error), []
        return Errors.NONE, self._replay_batch(LogBatch(
            base_offset=result.base_offset, records=batch.records, producer_id=producer_id,
            producer_epoch=producer_epoch, base_sequence=batch.base_sequence, is_transactional=transactional,
            timestamp=now))

    def _fetch(self, cid: int, req: OffsetFetchRequest) -> list[Effect]:
        """OMM.fetchOffsets(request, lastCommittedOffset): GroupCoordinatorService.fetchOffsets schedules a
        non-stable fetch as a read operation, at the last committed offset (CoordinatorReadEvent), and a
        require_stable one as a write operation without records, on the latest state (Long.MAX_VALUE), which
        answers UNSTABLE_OFFSET_COMMIT while a transactional offset is pending for the partition (KIP-447) and
        whose response waits until every write before it is committed (CoordinatorRuntime.append with no
        records: the runtime's part). A Dead or unknown group has no offsets."""
        group = self.groups.get(req.group_id)
        dead = group is None or group.state in (GroupState.DEAD, ConsumerGroupState.DEAD)
        results = []
        for tp in req.partitions:
            if req.require_stable and (req.group_id, tp) in self.open_transactions:
                results.append((tp, INVALID_OFFSET, Errors.UNSTABLE_OFFSET_COMMIT))
                continue
            if dead:
                entry = None
            elif req.require_stable:
                entry = self.offsets.get(req.group_id, {}).get(tp)
            else:
                entry = self._committed_entry(req.group_id, tp)
            results.append((tp, INVALID_OFFSET if entry is None else entry.committed_offset, Errors.NONE))
        return [Respond(correlation_id=cid, response=OffsetFetchResponse(error=Errors.NONE, results=tuple(results)))]

    # -- replay: the state as a function of the offsets log ----------------------------------------------

    def _replay_batch(self, batch: LogBatch) -> list[Effect]:
        if batch.is_control:
            result = TransactionResult.COMMIT if batch.control is ControlType.COMMIT else TransactionResult.ABORT
            return self._replay_end_transaction_marker(batch.producer_id, result, batch.base_offset)
        effects: list[Effect] = []
        for i, record in enumerate(batch.records):
            group_id, tp, offset = _parse_offset_record(record)
            if group_id not in self.groups:
                self.groups[group_id] = ClassicGroup(group_id=group_id)  # OMM.replay: a simple group
            entry = OffsetAndMetadata(committed_offset=offset, record_offset=batch.base_offset + i)
            if batch.producer_id == NO_PRODUCER_ID:
                self._store(group_id, tp, entry, batch.base_offset + i)
                effects.append(OffsetsCommitted(group_id=group_id, partition=tp, offset=offset,
                                                producer_id=NO_PRODUCER_ID))
            else:
                self.pending_transactional_offsets.setdefault(batch.producer_id, {})[(group_id, tp)] = entry
                self.open_transactions.setdefault((group_id, tp), set()).add(batch.producer_id)
                effects.append(OffsetsPending(group_id=group_id, partition=tp, offset=offset,
                                              producer_id=batch.producer_id, producer_epoch=batch.producer_epoch))
        return effects

    def _replay_end_transaction_marker(self, producer_id: int, result: TransactionResult,
                                       offset: int) -> list[Effect]:
        """OMM.replayEndTransactionMarker of the marker at log ``offset``: with a mix of plain and transactional
        commits, the record with the higher log offset stays committed."""
        pending = self.pending_transactional_offsets.pop(producer_id, {})
        effects: list[Effect] = []
        for group_id, tp in sorted(pending):
            pids = self.open_transactions[(group_id, tp)]
            pids.discard(producer_id)
            if not pids:
                del self.open_transactions[(group_id, tp)]
            if result is not TransactionResult.COMMIT:
                continue
            entry = pending[(group_id, tp)]
            existing = self.offsets.get(group_id, {}).get(tp)
            if existing is None or entry.record_offset > existing.record_offset:
                self._store(group_id, tp, entry, offset)
                effects.append(OffsetsCommitted(group_id=group_id, partition=tp, offset=entry.committed_offset,
                                                producer_id=producer_id))
        return effects

    def _store(self, group_id: str, tp: TopicPartition, entry: OffsetAndMetadata, offset: int) -> None:
        """The committed store's change by the record or marker at log ``offset``; kept as uncommitted while
        the offsets log's high watermark is not past it."""
        stored = self.offsets.setdefault(group_id, {})
        if offset >= self.last_committed_offset:
            self._uncommitted.append(_Change(offset=offset, group_id=group_id, partition=tp,
                                             previous=stored.get(tp)))
        stored[tp] = entry

    # -- timers ----------------------------------------------------------------------------------------------

    def _schedule(self, kind: _TimerKind, group_id: str, deadline: int, **payload: int | str) -> None:
        """Timer.schedule: a timer with the same key (group, member) is replaced."""
        self._timer_seq += 1
        timer = _Timer(deadline=deadline, seq=self._timer_seq, kind=kind, group_id=group_id, **payload)
        self._timers[timer.key] = timer

    def _schedule_heartbeat(self, group_id: str, member_id: str, now: int, timeout_ms: int) -> None:
        """GMM.rescheduleClassicGroupMemberHeartbeat."""
        self._schedule(_TimerKind.HEARTBEAT, group_id, now + timeout_ms, member_id=member_id)
