"""KIP-848 consumer groups (models/consumer_group.py, driven by models/group_coordinator.py), one test per
Kafka rule. Sources: Kafka 4.x group-coordinator GroupMetadataManager (GMM), ConsumerGroup,
CurrentAssignmentBuilder, UniformHomogeneousAssignmentBuilder, OffsetMetadataManager (OMM)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eosim.models.config import BrokerConfig
from eosim.models.consumer_group import (
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupMember,
    ConsumerGroupState,
    MemberState,
    reconcile,
    uniform_assignment,
)
from eosim.models.effects import Respond
from eosim.models.errors import Errors
from eosim.models.group_coordinator import (
    GroupCoordinator,
    GroupStateChanged,
    JoinGroupRequest,
    OffsetCommitRequest,
    TxnOffsetCommitRequest,
)
from eosim.models.log import PartitionLog
from eosim.models.records import CONSUMER_OFFSETS_TOPIC, TopicPartition

CFG = BrokerConfig()
SESSION = CFG.group_consumer_session_timeout_ms
T0, T1 = TopicPartition("in", 0), TopicPartition("in", 1)


def new_coordinator() -> GroupCoordinator:
    return GroupCoordinator(CFG, PartitionLog(TopicPartition(CONSUMER_OFFSETS_TOPIC, 0), CFG), topics={"in": 2})


def hb(gc, member, epoch, now=0, *, owned=None, join=False, group="g", assignor=None):
    request = ConsumerGroupHeartbeatRequest(
        group_id=group, member_id=member, member_epoch=epoch,
        rebalance_timeout_ms=60_000 if join else -1, subscribed_topic_names=("in",) if join else None,
        server_assignor=assignor, topic_partitions=() if join else owned)
    (response,) = [e.response for e in gc.handle(1, request, now) if isinstance(e, Respond)]
    return response


def two_members(gc):
    """a joins alone (both partitions, epoch 1); b joins (group epoch 2)."""
    first = hb(gc, "a", 0, join=True)
    assert (first.error, first.member_epoch, first.assignment) == (Errors.NONE, 1, (T0, T1))
    second = hb(gc, "b", 0, 10, join=True)
    assert (second.error, second.member_epoch, second.assignment) == (Errors.NONE, 2, ())
    return gc.groups["g"]


def test_the_first_member_gets_everything_at_epoch_1():
    gc = new_coordinator()
    response = hb(gc, "a", 0, join=True)
    assert response.heartbeat_interval_ms == CFG.group_consumer_heartbeat_interval_ms
    group = gc.groups["g"]
    assert (group.group_epoch, group.assignment_epoch, group.state) == (1, 1, ConsumerGroupState.STABLE)


def test_a_partition_moves_only_after_its_owner_revoked_it():
    # CurrentAssignmentBuilder: UNRELEASED_PARTITIONS for the newcomer, UNREVOKED_PARTITIONS for the owner
    gc = new_coordinator()
    group = two_members(gc)
    assert group.members["b"].state is MemberState.UNRELEASED_PARTITIONS
    assert group.state is ConsumerGroupState.RECONCILING
    revoke = hb(gc, "a", 1, 20)  # no owned partitions sent: a still owns everything
    assert (revoke.member_epoch, revoke.assignment) == (1, (T0,))
    assert group.members["a"].state is MemberState.UNREVOKED_PARTITIONS
    assert hb(gc, "b", 2, 30).assignment is None  # T1 is still a's
    ack = hb(gc, "a", 1, 40, owned=(T0,))
    assert (ack.member_epoch, ack.assignment) == (2, None)
    moved = hb(gc, "b", 2, 50)
    assert (moved.member_epoch, moved.assignment) == (2, (T1,))
    assert group.state is ConsumerGroupState.STABLE


@pytest.mark.parametrize(("epoch", "owned", "expected"), [
    (3, None, Errors.FENCED_MEMBER_EPOCH),  # greater than the coordinator's
    (1, (T0,), Errors.NONE),  # the previous epoch with a subset of the assignment: a lost response
    (1, (T0, T1), Errors.FENCED_MEMBER_EPOCH),  # the previous epoch, owning more than assigned
])
def test_member_epoch_validation(epoch, owned, expected):
    # GMM.throwIfConsumerGroupMemberEpochIsInvalid
    gc = new_coordinator()
    two_members(gc)
    hb(gc, "a", 1, 20)
    hb(gc, "a", 1, 30, owned=(T0,))  # a at epoch 2, previous 1, assigned {T0}
    assert hb(gc, "a", epoch, 40, owned=owned).error is expected
    assert hb(gc, "ghost", 2, 50).error is Errors.UNKNOWN_MEMBER_ID


@pytest.mark.parametrize(("request_fields", "expected"), [
    ({"member_epoch": 0, "member_id": "a", "rebalance_timeout_ms": 1, "subscribed_topic_names": ("in",),
      "topic_partitions": (T0,)}, Errors.INVALID_REQUEST),  # owned partitions on a join
    ({"member_epoch": 0, "member_id": "a", "rebalance_timeout_ms": 1, "topic_partitions": ()},
     Errors.INVALID_REQUEST),  # no subscription on a join
    ({"member_epoch": -2, "member_id": "a"}, Errors.INVALID_REQUEST),
    ({"member_epoch": 0, "member_id": "a", "rebalance_timeout_ms": 1, "subscribed_topic_names": ("in",),
      "topic_partitions": (), "server_assignor": "range"}, Errors.UNSUPPORTED_ASSIGNOR),
])
def test_invalid_heartbeats(request_fields, expected):
    # GMM.throwIfConsumerGroupHeartbeatRequestIsInvalid
    gc = new_coordinator()
    (response,) = [e.response for e in gc.handle(1, ConsumerGroupHeartbeatRequest(group_id="g", **request_fields), 0)
                   if isinstance(e, Respond)]
    assert response.error is expected
    assert "g" not in gc.groups


def test_session_expiry_fences_the_member_and_bumps_the_group_epoch():
    # GMM.scheduleConsumerGroupSessionTimeout -> consumerGroupFenceMember
    gc = new_coordinator()
    two_members(gc)
    hb(gc, "b", 2, SESSION)  # b keeps its session; a's expires at 0 + SESSION
    effects = gc.on_timer(SESSION)
    assert [(e.new, e.generation_id, e.members) for e in effects if isinstance(e, GroupStateChanged)] == [
        (ConsumerGroupState.ASSIGNING, 3, ("b",))]
    assert hb(gc, "a", 1, SESSION + 1).error is Errors.UNKNOWN_MEMBER_ID
    assert hb(gc, "b", 2, SESSION + 2).assignment == (T0, T1)


def test_a_member_that_does_not_revoke_in_time_is_fenced():
    # GMM.scheduleConsumerGroupRebalanceTimeout: still UNREVOKED_PARTITIONS at the same epoch
    gc = new_coordinator()
    two_members(gc)
    hb(gc, "a", 1, 20)  # a must revoke T1 within its rebalance timeout (60 s)
    hb(gc, "a", 1, 30_000)  # heartbeats, but keeps T1
    hb(gc, "b", 2, 30_000)
    gc.on_timer(20 + 60_000)
    assert set(gc.groups["g"].members) == {"b"}


def test_leave_removes_the_member_at_once():
    # GMM.consumerGroupLeave (member epoch -1)
    gc = new_coordinator()
    two_members(gc)
    assert (r := hb(gc, "b", -1, 20)).error is Errors.NONE and r.member_epoch == -1
    assert set(gc.groups["g"].members) == {"a"} and gc.groups["g"].group_epoch == 3
    assert hb(gc, "a", 1, 30).member_epoch == 3


def test_kip447_offset_commits_are_checked_against_the_member_epoch():
    # ConsumerGroup.validateOffsetCommit; OMM.validateTransactionalOffsetCommit: stale -> ILLEGAL_GENERATION
    gc = new_coordinator()
    hb(gc, "a", 0, join=True)

    def commit(epoch, member, *, txn):
        request = (TxnOffsetCommitRequest(transactional_id="t", group_id="g", producer_id=1, producer_epoch=0,
                                          generation_id=epoch, member_id=member, offsets=((T0, 1),)) if txn else
                   OffsetCommitRequest(group_id="g", generation_id=epoch, member_id=member, offsets=((T0, 1),)))
        (response,) = [e.response for e in gc.handle(2, request, 5) if isinstance(e, Respond)]
        return dict(response.results)[T0]

    assert commit(1, "a", txn=False) is Errors.NONE
    assert commit(1, "a", txn=True) is Errors.NONE
    assert commit(2, "a", txn=False) is Errors.STALE_MEMBER_EPOCH
    assert commit(0, "a", txn=True) is Errors.ILLEGAL_GENERATION
    assert commit(1, "ghost", txn=True) is Errors.UNKNOWN_MEMBER_ID
    assert commit(-1, "", txn=False) is Errors.UNKNOWN_MEMBER_ID  # a group with members wants one


def test_protocols_do_not_mix():
    # no online migration: a classic JoinGroup to a consumer group with members, a heartbeat to a classic one
    gc = new_coordinator()
    hb(gc, "a", 0, join=True)
    (join,) = [e.response for e in gc.handle(2, JoinGroupRequest(
        group_id="g", member_id="", client_id="c", session_timeout_ms=10_000, rebalance_timeout_ms=10_000,
        protocols=(("range", ("in",)),)), 0) if isinstance(e, Respond)]
    assert join.error is Errors.INCONSISTENT_GROUP_PROTOCOL
    gc.handle(3, JoinGroupRequest(group_id="c", member_id="", client_id="c", session_timeout_ms=10_000,
                                  rebalance_timeout_ms=10_000, protocols=(("range", ("in",)),)), 0)
    gc.handle(3, JoinGroupRequest(group_id="c", member_id="c-1", client_id="c", session_timeout_ms=10_000,
                                  rebalance_timeout_ms=10_000, protocols=(("range", ("in",)),)), 0)
    assert hb(gc, "x", 0, join=True, group="c").error is Errors.GROUP_ID_NOT_FOUND


def test_reconcile_keeps_the_epoch_while_revoking():
    # CurrentAssignmentBuilder.computeNextAssignment
    member = ConsumerGroupMember(member_id="a", member_epoch=1, assigned_partitions=frozenset({T0, T1}))
    revoking = reconcile(member, 2, frozenset({T0}), lambda tp: -1, owned=(T0, T1))
    assert (revoking.state, revoking.member_epoch, revoking.partitions_pending_revocation) == (
        MemberState.UNREVOKED_PARTITIONS, 1, frozenset({T1}))
    done = reconcile(revoking, 2, frozenset({T0}), lambda tp: -1, owned=(T0,))
    assert (done.state, done.member_epoch, done.previous_member_epoch, done.assigned_partitions) == (
        MemberState.STABLE, 2, 1, frozenset({T0}))


@given(counts=st.dictionaries(st.sampled_from("abc"), st.integers(0, 6), min_size=1),
       members=st.lists(st.sampled_from(["m1", "m2", "m3", "m4"]), min_size=1, unique=True),
       seed=st.randoms(use_true_random=False))
def test_uniform_assignment_is_complete_balanced_and_sticky(counts, members, seed):
    """Every partition assigned exactly once; sizes differ by at most one; a member keeps as many of its
    current partitions as its quota allows."""
    universe = [TopicPartition(t, p) for t, n in counts.items() for p in range(n)]
    current: dict[str, frozenset] = {m: frozenset() for m in members}
    for tp in universe:
        owner = seed.choice(members + [None])
        if owner is not None:
            current[owner] |= {tp}
    subscriptions = {m: tuple(sorted(counts)) for m in members}
    result = uniform_assignment(subscriptions, current, counts)
    assigned = [tp for tps in result.values() for tp in tps]
    assert sorted(assigned) == sorted(universe)
    sizes = [len(tps) for tps in result.values()]
    assert max(sizes) - min(sizes) <= 1
    ceiling = -(-len(universe) // len(members))
    for m in members:
        assert len(result[m] & current[m]) >= min(len(current[m]), len(universe) // len(members))
        assert len(result[m]) <= ceiling
