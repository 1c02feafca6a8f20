"""eosim.models.consumer_group
========================

A KIP-848 consumer group (``group.protocol=consumer``): the group coordinator runs the rebalance. Kafka 4.x
sources, ``group-coordinator/src/main/java/org/apache/kafka/coordinator/group/``: ``GroupMetadataManager.java``
(GMM: ``consumerGroupHeartbeat``, ``throwIfConsumerGroupHeartbeatRequestIsInvalid``,
``throwIfConsumerGroupMemberEpochIsInvalid``, ``consumerGroupFenceMember``), ``modern/consumer/ConsumerGroup.java``,
``modern/consumer/CurrentAssignmentBuilder.java``, ``modern/MemberState.java`` and
``assignor/UniformHomogeneousAssignmentBuilder.java``. ``eosim.models.group_coordinator.GroupCoordinator``
owns the groups, their timers and their offsets; this module holds the group, its members and the rules.

Theory of operation
-------------------
A member talks to the coordinator with one request, ConsumerGroupHeartbeat. It joins with member epoch 0
and its subscription; it leaves with epoch -1. The *group epoch* is bumped when a member joins, leaves, is
fenced or changes its subscription. When the group epoch is ahead of the *assignment epoch*, the
coordinator recomputes the *target assignment* with its server-side assignor (``uniform_assignment``).
Each member then *reconciles* towards its target (``reconcile``, CurrentAssignmentBuilder): partitions
it must give up are *pending revocation* (state ``UNREVOKED_PARTITIONS``: the member keeps its epoch
until a heartbeat shows it no longer owns them); partitions another member still owns are *unreleased*
(``UNRELEASED_PARTITIONS``: the member gets them when they are freed); otherwise the member is ``STABLE``
at the target epoch, its *member epoch*. The member epoch is what KIP-447 fencing checks: an OffsetCommit
with another epoch gets STALE_MEMBER_EPOCH, a TxnOffsetCommit ILLEGAL_GENERATION
(``ConsumerGroup.validateOffsetCommit``, ``OffsetMetadataManager.validateTransactionalOffsetCommit``).

Simplifications (the fidelity notes)
------------------------------------
* Only the ``uniform`` assignor (Kafka's default, the first of ``group.consumer.assignors``). Members are
  visited in member-id order where Kafka iterates a hash map. With different subscriptions the same
  sticky quota rule runs per topic over its subscribers (Kafka's heterogeneous builder balances across
  topics).
* No static members, no regex subscriptions, no classic members in a consumer group (no online upgrade):
  a JoinGroup to a consumer group, or a ConsumerGroupHeartbeat to a classic group with members, is refused
  with INCONSISTENT_GROUP_PROTOCOL / GROUP_ID_NOT_FOUND.
* No group records in the offsets log (as for classic groups): after a fail-over members rejoin.
"""

from __future__ import annotations

import enum
from typing import Callable

from attrs import define, field, evolve

from eosim.models.errors import Errors
from eosim.models.records import TopicPartition
from eosim.models.values import frozen

__all__ = [
    "LEAVE_GROUP_MEMBER_EPOCH",
    "ConsumerGroup",
    "ConsumerGroupHeartbeatRequest",
    "ConsumerGroupHeartbeatResponse",
    "ConsumerGroupMember",
    "ConsumerGroupState",
    "MemberState",
    "reconcile",
    "uniform_assignment",
]

LEAVE_GROUP_MEMBER_EPOCH = -1  # ConsumerGroupHeartbeatRequest.LEAVE_GROUP_MEMBER_EPOCH
NO_OWNER = -1  # ConsumerGroup.currentPartitionEpoch of a free partition

Partitions = frozenset[TopicPartition]


class ConsumerGroupState(enum.StrEnum):
    """ConsumerGroup.ConsumerGroupState, by Kafka's names."""

    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


class MemberState(enum.StrEnum):
    """modern/MemberState.java."""

    STABLE = "stable"
    UNREVOKED_PARTITIONS = "unrevoked_partitions"
    UNRELEASED_PARTITIONS = "unreleased_partitions"


@frozen(kw_only=True)
class ConsumerGroupHeartbeatRequest:
    """ConsumerGroupHeartbeat v1 (KIP-1082: the client makes up its member id). ``None`` fields are not sent
    (unchanged since the last heartbeat); ``topic_partitions`` are the partitions the member owns."""

    group_id: str
    member_id: str
    member_epoch: int
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: tuple[str, ...] | None = None
    server_assignor: str | None = None
    topic_partitions: tuple[TopicPartition, ...] | None = None


@frozen(kw_only=True)
class ConsumerGroupHeartbeatResponse:
    error: Errors
    member_id: str = ""
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: tuple[TopicPartition, ...] | None = None  # sent on a full request or when it changed


@frozen(kw_only=True)
class ConsumerGroupMember:
    """modern/consumer/ConsumerGroupMember.java (the fields this model needs)."""

    member_id: str
    member_epoch: int = 0
    previous_member_epoch: int = -1
    state: MemberState = MemberState.STABLE
    rebalance_timeout_ms: int = 0
    subscribed_topic_names: tuple[str, ...] = ()
    server_assignor: str | None = None
    assigned_partitions: Partitions = frozenset()
    partitions_pending_revocation: Partitions = frozenset()

    def is_reconciled_to(self, target_epoch: int) -> bool:
        return self.state is MemberState.STABLE and self.member_epoch == target_epoch


@define(eq=False)
class ConsumerGroup:
    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0  # the target assignment's epoch
    members: dict[str, ConsumerGroupMember] = field(factory=dict)
    target_assignment: dict[str, Partitions] = field(factory=dict)
    # ConsumerGroup.currentPartitionEpoch: partition -> epoch of the member that owns it (assigned or
    # pending revocation).
    partition_epochs: dict[TopicPartition, int] = field(factory=dict)
    dead: bool = False

    @property
    def state(self) -> ConsumerGroupState:
        """ConsumerGroup.maybeUpdateGroupState."""
        if self.dead:
            return ConsumerGroupState.DEAD
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        if any(not m.is_reconciled_to(self.assignment_epoch) for m in self.members.values()):
            return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    def current_partition_epoch(self, tp: TopicPartition) -> int:
        return self.partition_epochs.get(tp, NO_OWNER)

    def update_member(self, member: ConsumerGroupMember) -> None:
        """ConsumerGroup.updateMember with maybeUpdatePartitionEpoch: the old assignment's partition epochs
        go, the new one's come."""
        old = self.members.get(member.member_id)
        if old is not None:
            self._release(old)
        self.members[member.member_id] = member
        for tp in member.assigned_partitions | member.partitions_pending_revocation:
            self.partition_epochs[tp] = member.member_epoch

    def remove_member(self, member_id: str) -> None:
        """ConsumerGroup.removeMember: its partitions become free; its target assignment goes."""
        self._release(self.members.pop(member_id))
        self.target_assignment.pop(member_id, None)

    def _release(self, member: ConsumerGroupMember) -> None:
        for tp in member.assigned_partitions | member.partitions_pending_revocation:
            if self.partition_epochs.get(tp) == member.member_epoch:
                del self.partition_epochs[tp]


def uniform_assignment(subscriptions: dict[str, tuple[str, ...]], current: dict[str, Partitions],
                       partition_counts: dict[str, int]) -> dict[str, Partitions]:
    """UniformHomogeneousAssignmentBuilder: each member keeps what it has up to its quota (total // members,
    the first ``total % members`` members one more); what is left over or unassigned goes, in
    (topic, partition) order, to the members with quota left, in order. Per topic over its subscribers when
    subscriptions differ (see the module docstring)."""
    topics = sorted({t for ts in subscriptions.values() for t in ts if t in partition_counts})
    if len({tuple(sorted(t for t in ts if t in partition_counts)) for ts in subscriptions.values()}) <= 1:
        return _uniform(sorted(subscriptions), topics, current, partition_counts)
    result: dict[str, set[TopicPartition]] = {m: set() for m in subscriptions}
    for topic in topics:
        members = sorted(m for m, ts in subscriptions.items() if topic in ts)
        for m, tps in _uniform(members, [topic], current, partition_counts).items():
            result[m] |= tps
    return {m: frozenset(tps) for m, tps in result.items()}


def _uniform(members: list[str], topics: list[str], current: dict[str, Partitions],
             partition_counts: dict[str, int]) -> dict[str, Partitions]:
    if not members:
        return {}
    universe = [TopicPartition(t, p) for t in topics for p in range(partition_counts[t])]
    owned = {tp for m in members for tp in current.get(m, frozenset()) if tp in universe}
    unassigned = [tp for tp in universe if tp not in owned]
    quota_base, extra = divmod(len(universe), len(members))
    result: dict[str, set[TopicPartition]] = {}
    unfilled: list[tuple[str, int]] = []
    for member_id in members:  # maybeRevokePartitions
        quota = quota_base + (1 if extra > 0 else 0)
        extra -= 1 if extra > 0 else 0
        keep = set()
        for tp in sorted(tp for tp in current.get(member_id, frozenset()) if tp in universe):
            if quota > 0:
                keep.add(tp)
                quota -= 1
            else:
                unassigned.append(tp)
        result[member_id] = keep
        if quota > 0:
            unfilled.append((member_id, quota))
    unassigned.sort()
    for member_id, quota in unfilled:  # assignRemainingPartitions
        taken, unassigned = unassigned[:quota], unassigned[quota:]
        result[member_id] |= set(taken)
    assert not unassigned, "Partitions were left unassigned"
    return {m: frozenset(tps) for m, tps in result.items()}


def reconcile(member: ConsumerGroupMember, target_epoch: int, target: Partitions,
              partition_epoch: Callable[[TopicPartition], int],
              owned: tuple[TopicPartition, ...] | None) -> ConsumerGroupMember:
    """CurrentAssignmentBuilder.build: the member's next state towards ``target`` (the target assignment at
    ``target_epoch``). ``owned`` None means the member did not say what it owns (it still owns everything)."""
    def owns_revoked(pending: Partitions) -> bool:
        return owned is None or bool(pending & set(owned))

    if member.state is MemberState.STABLE:
        if member.member_epoch == target_epoch:
            return member
        return _next(member, member.member_epoch, target_epoch, target, partition_epoch, owns_revoked)
    if member.state is MemberState.UNREVOKED_PARTITIONS:
        if owns_revoked(member.partitions_pending_revocation):
            return member
        return _next(member, member.member_epoch + 1, target_epoch, target, partition_epoch, owns_revoked)
    return _next(member, member.member_epoch, target_epoch, target, partition_epoch, owns_revoked)


def _next(member: ConsumerGroupMember, member_epoch: int, target_epoch: int, target: Partitions,
          partition_epoch: Callable[[TopicPartition], int],
          owns_revoked: Callable[[Partitions], bool]) -> ConsumerGroupMember:
    """CurrentAssignmentBuilder.computeNextAssignment."""
    assigned = member.assigned_partitions & target
    pending_revocation = member.assigned_partitions - assigned
    pending_assignment = target - assigned
    unreleased = frozenset(tp for tp in pending_assignment if partition_epoch(tp) != NO_OWNER)
    pending_assignment -= unreleased

    def updated(state: MemberState, epoch: int, partitions: Partitions, revoking: Partitions) -> ConsumerGroupMember:
        # ConsumerGroupMember.Builder.updateMemberEpoch: the previous epoch is the one before this update.
        return evolve(member, state=state, member_epoch=epoch, previous_member_epoch=member.member_epoch,
                      assigned_partitions=partitions, partitions_pending_revocation=revoking)

    if pending_revocation and owns_revoked(pending_revocation):
        return updated(MemberState.UNREVOKED_PARTITIONS, member_epoch, assigned, pending_revocation)
    state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
    return updated(state, target_epoch, assigned | pending_assignment, frozenset())
