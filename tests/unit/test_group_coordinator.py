"""The group coordinator (models/group_coordinator.py), one test per Kafka rule it reproduces.

Sources are Kafka 4.1's group-coordinator module: GMM = GroupMetadataManager.java, OMM =
OffsetMetadataManager.java, ClassicGroup.java, ClassicGroupState.java; KIP-447 for the fencing and
pending-offset rules.
"""

from __future__ import annotations

import json

import pytest
from attrs import define, field
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eosim.models.config import BrokerConfig
from eosim.models.effects import Respond
from eosim.models.errors import Errors, IllegalTransition
from eosim.models.group_coordinator import (
    CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS,
    VALID_PREVIOUS_STATES,
    ClassicGroup,
    GroupCoordinator,
    GroupState,
    GroupStateChanged,
    HeartbeatRequest,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    OffsetsCommitted,
    OffsetsPending,
    SyncGroupRequest,
    SyncGroupResponse,
    TxnOffsetCommitRequest,
)
from eosim.models.log import PartitionLog
from eosim.models.records import CONSUMER_OFFSETS_TOPIC, ControlType, TopicPartition, TransactionResult
from eosim._client.assignors import range_assignor

CFG = BrokerConfig()
DELAY = CFG.group_initial_rebalance_delay_ms  # 3 s
SESSION = 10_000
REBALANCE = 60_000
T0, T1, T2 = (TopicPartition("in", p) for p in range(3))
ALL = (T0, T1, T2)
S = GroupState


def new_coordinator(config: BrokerConfig = CFG) -> GroupCoordinator:
    return GroupCoordinator(config, PartitionLog(TopicPartition(CONSUMER_OFFSETS_TOPIC, 0), config))


def one_replica(gc: GroupCoordinator) -> None:
    """One broker: the offsets log is committed as soon as it is appended (its high watermark follows the log
    end at once: the runtime tells the coordinator, as sim/_coordinators.py does)."""
    gc.on_high_watermark(gc.offsets_log.log_end_offset)


def responses(effects) -> dict[int, object]:
    return {e.correlation_id: e.response for e in effects if isinstance(e, Respond)}


def join(gc, cid, now, *, member_id="", client_id="c", topics=("in",), group="g", session=SESSION,
         rebalance=REBALANCE):
    """A JoinGroup; a new member's first one gets MEMBER_ID_REQUIRED and it joins again with the id
    (the same correlation id: the first was answered at once). The effects of the last request."""
    def request(member):
        return gc.handle(cid, JoinGroupRequest(group_id=group, member_id=member, client_id=client_id,
                                               session_timeout_ms=session, rebalance_timeout_ms=rebalance,
                                               protocols=(("range", topics), ("roundrobin", topics))), now)
    effects = request(member_id)
    first = responses(effects).get(cid)
    if member_id == "" and first is not None and first.error is Errors.MEMBER_ID_REQUIRED:
        assert first.member_id == f"{client_id}-{gc._member_seq}"
        return request(first.member_id)
    return effects


def sync(gc, joined, now, group="g") -> dict[str, tuple]:
    """Every member of ``joined`` (cid -> JoinGroupResponse) sends SyncGroup, followers first, the leader with
    the range assignment of topic "in" (3 partitions); returns member -> assigned partitions."""
    cid = 1000
    answers = {}
    ordered = sorted(joined.values(), key=lambda r: r.member_id == r.leader)
    cids = {}
    for response in ordered:
        assignments = ()
        if response.member_id == response.leader:
            assignments = tuple(sorted(range_assignor(dict(response.members), {"in": 3}).items()))
        cid += 1
        cids[cid] = response.member_id
        answers.update(responses(gc.handle(cid, SyncGroupRequest(
            group_id=group, generation_id=response.generation_id, member_id=response.member_id,
            protocol_name=response.protocol_name, assignments=assignments), now)))
    assert all(isinstance(r, SyncGroupResponse) and r.error is Errors.NONE for r in answers.values())
    return {cids[c]: r.assignment for c, r in answers.items()}


def heartbeat(gc, member_id, generation, now, group="g") -> Errors:
    (response,) = responses(gc.handle(0, HeartbeatRequest(group_id=group, member_id=member_id,
                                                          generation_id=generation), now)).values()
    return response.error


def txn_commit(gc, now, offsets, *, pid=7, epoch=0, generation=-1, member="", group="g"):
    effects = gc.handle(0, TxnOffsetCommitRequest(transactional_id="tx", group_id=group, producer_id=pid,
                                                  producer_epoch=epoch, generation_id=generation, member_id=member,
                                                  offsets=offsets), now)
    one_replica(gc)
    return effects


def commit(gc, now, offsets, *, generation=-1, member="", group="g"):
    effects = gc.handle(0, OffsetCommitRequest(group_id=group, generation_id=generation, member_id=member,
                                               offsets=offsets), now)
    one_replica(gc)
    return effects


def results(effects) -> dict[TopicPartition, Errors]:
    (response,) = responses(effects).values()
    return dict(response.results)


def fetch(gc, partitions=ALL, *, require_stable, group="g") -> dict[TopicPartition, tuple[int, Errors]]:
    (response,) = responses(gc.handle(0, OffsetFetchRequest(group_id=group, partitions=partitions,
                                                            require_stable=require_stable), 0)).values()
    assert response.error is Errors.NONE
    return {tp: (offset, error) for tp, offset, error in response.results}


def marker(gc, result, now, *, pid=7, epoch=0):
    outcome = gc.complete_transaction(producer_id=pid, producer_epoch=epoch, coordinator_epoch=0, result=result,
                                      now=now)
    one_replica(gc)
    return outcome


def stable_pair(gc) -> int:
    """Members a-1 and b-2 in generation 1 (both joined within the initial delay); returns the time."""
    join(gc, 1, 0, client_id="a")
    join(gc, 2, 1_000, client_id="b")
    gc.on_timer(DELAY)  # b joined during the delay: extended once (GMM.tryCompleteInitialRebalanceElseSchedule)
    done = responses(gc.on_timer(2 * DELAY))
    assert {r.member_id: r.generation_id for r in done.values()} == {"a-1": 1, "b-2": 1}
    assert sync(gc, done, 2 * DELAY) == {"a-1": (T0, T1), "b-2": (T2,)}
    assert gc.groups["g"].state is S.STABLE
    return 2 * DELAY


# -- membership ----------------------------------------------------------------------------------------


def test_first_join_waits_the_initial_rebalance_delay_then_generation_1():
    # GMM.prepareRebalance: an Empty group waits group.initial.rebalance.delay.ms; initNextGeneration -> 1
    gc = new_coordinator()
    effects = join(gc, 1, 0, client_id="a")
    assert responses(effects) == {}
    assert gc.next_deadline() == DELAY
    assert gc.on_timer(DELAY - 1) == []
    effects = gc.on_timer(DELAY)
    assert responses(effects) == {1: JoinGroupResponse(error=Errors.NONE, generation_id=1, protocol_name="range",
                                                       leader="a-1", member_id="a-1", members=(("a-1", ("in",)),))}
    changes = [(e.old, e.new, e.generation_id) for e in effects if isinstance(e, GroupStateChanged)]
    assert changes == [(S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE, 1)]
    # GMM.classicGroupSyncToClassicGroup: the leader's SyncGroup carries the assignment -> Stable
    effects = gc.handle(2, SyncGroupRequest(group_id="g", generation_id=1, member_id="a-1", protocol_name="range",
                                            assignments=(("a-1", ALL),)), DELAY + 1)
    assert responses(effects) == {2: SyncGroupResponse(error=Errors.NONE, protocol_name="range", assignment=ALL)}
    assert [(e.old, e.new) for e in effects if isinstance(e, GroupStateChanged)] == [
        (S.COMPLETING_REBALANCE, S.STABLE)]


def test_a_new_member_gets_member_id_required_and_stays_pending_for_a_session():
    # GMM.classicGroupJoinNewDynamicMember (JoinGroup v4+, KIP-394); expireClassicGroupMemberHeartbeat
    gc = new_coordinator()
    (first,) = responses(gc.handle(1, JoinGroupRequest(group_id="g", member_id="", client_id="a",
                                                       session_timeout_ms=SESSION, rebalance_timeout_ms=REBALANCE,
                                                       protocols=(("range", ("in",)),)), 0)).values()
    assert first == JoinGroupResponse(error=Errors.MEMBER_ID_REQUIRED, member_id="a-1")
    assert gc.groups["g"].pending_members == ["a-1"] and gc.groups["g"].members == {}
    assert gc.on_timer(SESSION) == []
    assert gc.groups["g"].pending_members == []
    assert responses(join(gc, 2, SESSION + 1, member_id="a-1", client_id="a"))[2].error is Errors.UNKNOWN_MEMBER_ID


def test_followers_sync_waits_for_the_leaders_assignment():
    # CompletingRebalance parks SyncGroups until the leader's; a member left out gets an empty assignment
    gc = new_coordinator()
    join(gc, 1, 0, client_id="a")
    join(gc, 2, 1_000, client_id="b")
    gc.on_timer(DELAY)
    done = responses(gc.on_timer(2 * DELAY))
    assert done[1].members == (("a-1", ("in",)), ("b-2", ("in",))) and done[2].members == ()
    assert done[1].leader == done[2].leader == "a-1"
    assert responses(gc.handle(3, SyncGroupRequest(group_id="g", generation_id=1, member_id="b-2",
                                                   protocol_name="range"), 2 * DELAY)) == {}
    assert results(commit(gc, 2 * DELAY, ((T0, 1),), generation=1, member="b-2")) == {T0: Errors.REBALANCE_IN_PROGRESS}
    assert heartbeat(gc, "b-2", 1, 2 * DELAY) is Errors.NONE
    effects = gc.handle(4, SyncGroupRequest(group_id="g", generation_id=1, member_id="a-1", protocol_name="range",
                                            assignments=(("a-1", ALL),)), 2 * DELAY + 1)
    assert responses(effects) == {4: SyncGroupResponse(error=Errors.NONE, protocol_name="range", assignment=ALL),
                                  3: SyncGroupResponse(error=Errors.NONE, protocol_name="range", assignment=())}


def test_sync_expiry_removes_members_that_never_synced():
    # GMM.expirePendingSync after the rebalance timeout: removed, then a rebalance
    gc = new_coordinator()
    join(gc, 1, 0, client_id="a")
    join(gc, 2, 1_000, client_id="b")
    gc.on_timer(DELAY)
    gc.on_timer(2 * DELAY)
    gc.handle(3, SyncGroupRequest(group_id="g", generation_id=1, member_id="b-2", protocol_name="range"), 2 * DELAY)
    for t in range(2 * DELAY + 5_000, 2 * DELAY + REBALANCE, 5_000):
        assert heartbeat(gc, "a-1", 1, t) is Errors.NONE and heartbeat(gc, "b-2", 1, t) is Errors.NONE
        gc.on_timer(t)
    effects = gc.on_timer(2 * DELAY + REBALANCE)
    assert responses(effects) == {3: SyncGroupResponse(error=Errors.REBALANCE_IN_PROGRESS)}
    assert sorted(gc.groups["g"].members) == ["b-2"] and gc.groups["g"].leader_id == "b-2"
    assert gc.groups["g"].state is S.PREPARING_REBALANCE


@pytest.mark.parametrize(("generation", "member", "protocol", "expected"), [
    (1, "ghost", "range", Errors.UNKNOWN_MEMBER_ID), (0, "a-1", "range", Errors.ILLEGAL_GENERATION),
    (1, "a-1", "roundrobin", Errors.INCONSISTENT_GROUP_PROTOCOL)])
def test_sync_group_validation(generation, member, protocol, expected):
    # GMM.validateSyncGroup
    gc = new_coordinator()
    join(gc, 1, 0, client_id="a")
    gc.on_timer(DELAY)
    (response,) = responses(gc.handle(2, SyncGroupRequest(group_id="g", generation_id=generation, member_id=member,
                                                          protocol_name=protocol), DELAY)).values()
    assert response.error is expected


def test_protocols_are_voted_and_must_overlap():
    # ClassicGroup.selectProtocol / supportsProtocols
    gc = new_coordinator()
    gc.handle(1, JoinGroupRequest(group_id="g", member_id="", client_id="a", session_timeout_ms=SESSION,
                                  rebalance_timeout_ms=REBALANCE, protocols=(("roundrobin", ("in",)),)), 0)
    gc.handle(1, JoinGroupRequest(group_id="g", member_id="a-1", client_id="a", session_timeout_ms=SESSION,
                                  rebalance_timeout_ms=REBALANCE, protocols=(("roundrobin", ("in",)),)), 0)
    refused = gc.handle(2, JoinGroupRequest(group_id="g", member_id="", client_id="b", session_timeout_ms=SESSION,
                                            rebalance_timeout_ms=REBALANCE, protocols=(("range", ("in",)),)), 1)
    assert responses(refused)[2].error is Errors.INCONSISTENT_GROUP_PROTOCOL
    join(gc, 3, 2, client_id="c")  # offers range first, roundrobin second: roundrobin is the only candidate
    gc.on_timer(DELAY)
    done = responses(gc.on_timer(2 * DELAY))
    assert {r.protocol_name for r in done.values()} == {"roundrobin"}


def test_initial_delay_extends_for_new_members_up_to_the_rebalance_timeout():
    # GMM.tryCompleteInitialRebalanceElseSchedule: delay min(initial delay, remaining), remaining shrinks
    gc = new_coordinator()
    join(gc, 1, 0, client_id="a", rebalance=4_000)  # remaining = 4000 - 3000 = 1000
    join(gc, 2, 1_000, client_id="b", rebalance=4_000)
    assert gc.on_timer(DELAY) == []  # extended by min(3000, 1000)
    assert gc.next_deadline() == DELAY + 1_000
    join(gc, 3, 3_500, client_id="c", rebalance=4_000)  # no time left: no further extension
    done = responses(gc.on_timer(4_000))
    assert sorted(done) == [1, 2, 3] and {r.generation_id for r in done.values()} == {1}


def test_second_member_triggers_a_rebalance_and_both_get_generation_2_with_a_range_assignment():
    gc = new_coordinator()
    join(gc, 1, 0, client_id="a")
    assert sync(gc, responses(gc.on_timer(DELAY)), DELAY) == {"a-1": ALL}
    effects = join(gc, 2, 4_000, client_id="b")  # a new member into Stable: PreparingRebalance
    assert responses(effects) == {}
    assert [(e.old, e.new) for e in effects] == [(S.STABLE, S.PREPARING_REBALANCE)]
    assert heartbeat(gc, "a-1", 1, 4_100) is Errors.REBALANCE_IN_PROGRESS
    done = responses(join(gc, 3, 4_200, member_id="a-1", client_id="a"))  # every known member rejoined
    assert {c: (r.generation_id, r.member_id, r.leader) for c, r in done.items()} == {
        3: (2, "a-1", "a-1"), 2: (2, "b-2", "a-1")}
    assert sync(gc, done, 4_250) == {"a-1": (T0, T1), "b-2": (T2,)}
    assert heartbeat(gc, "b-2", 2, 4_300) is Errors.NONE


@pytest.mark.parametrize(
    ("member", "generation", "expected"),
    [("ghost", 1, Errors.UNKNOWN_MEMBER_ID), ("a-1", 0, Errors.ILLEGAL_GENERATION), ("a-1", 1, Errors.NONE)],
)
def test_heartbeat_validates_member_then_generation(member, generation, expected):
    # GMM.validateClassicGroupHeartbeat
    gc = new_coordinator()
    stable_pair(gc)
    assert heartbeat(gc, member, generation, 7_000) is expected
    assert heartbeat(gc, "a-1", 1, 7_000, group="unknown") is Errors.UNKNOWN_MEMBER_ID


def test_heartbeat_refreshes_the_session():
    gc = new_coordinator()
    join(gc, 1, 0, client_id="a")
    gc.on_timer(DELAY)  # session deadline DELAY + SESSION
    assert heartbeat(gc, "a-1", 1, DELAY + SESSION - 1) is Errors.NONE
    assert gc.on_timer(DELAY + SESSION) == []
    assert gc.next_deadline() == DELAY + 2 * SESSION - 1


def test_session_expiry_removes_the_member_and_triggers_a_rebalance():
    # GMM.expireClassicGroupMemberHeartbeat -> removeMemberAndUpdateClassicGroup -> prepareRebalance
    gc = new_coordinator()
    now = stable_pair(gc)
    assert heartbeat(gc, "a-1", 1, now + SESSION - 1) is Errors.NONE
    effects = gc.on_timer(now + SESSION)  # b-2 never heartbeated
    assert [(e.old, e.new, e.members) for e in effects] == [(S.STABLE, S.PREPARING_REBALANCE, ("a-1",))]
    assert heartbeat(gc, "a-1", 1, now + SESSION + 1) is Errors.REBALANCE_IN_PROGRESS
    done = responses(join(gc, 9, now + SESSION + 2, member_id="a-1", client_id="a"))
    assert [(r.generation_id, r.member_id) for r in done.values()] == [(2, "a-1")]
    assert sync(gc, done, now + SESSION + 3) == {"a-1": ALL}


def test_kip447_session_expiry_fences_a_paused_member_with_unknown_member_id():
    # KIP-447: the zombie's TxnOffsetCommit carries its member id; it was removed (ClassicGroup.validateMember)
    gc = new_coordinator()
    now = stable_pair(gc)
    heartbeat(gc, "a-1", 1, now + SESSION - 1)
    gc.on_timer(now + SESSION)  # b-2 paused past its session: removed
    join(gc, 9, now + SESSION + 1, member_id="a-1", client_id="a")
    effects = txn_commit(gc, now + SESSION + 2, ((T2, 50),), generation=1, member="b-2")
    assert results(effects) == {T2: Errors.UNKNOWN_MEMBER_ID}
    assert gc.offsets_log.batches == [] and gc.pending_transactional_offsets == {}


def test_kip447_a_previous_generation_gets_illegal_generation():
    # ClassicGroup.validateOffsetCommit: generation != current -> ILLEGAL_GENERATION
    gc = new_coordinator()
    join(gc, 1, 0, client_id="a")
    gc.on_timer(DELAY)
    join(gc, 2, 4_000, client_id="b")
    join(gc, 3, 4_001, member_id="a-1", client_id="a")  # generation 2
    assert results(txn_commit(gc, 4_002, ((T0, 5),), generation=1, member="a-1")) == {T0: Errors.ILLEGAL_GENERATION}
    assert results(txn_commit(gc, 4_003, ((T0, 5),), generation=2, member="a-1")) == {T0: Errors.NONE}


def test_rebalance_timeout_removes_members_that_did_not_rejoin():
    # GMM.completeClassicGroupJoin on the rebalance timer: members not awaiting a join are removed
    gc = new_coordinator()
    now = stable_pair(gc)
    join(gc, 3, now, client_id="c")  # rebalance timer at now + REBALANCE
    join(gc, 4, now + 1, member_id="a-1", client_id="a")
    for t in range(now + 5_000, now + REBALANCE, 5_000):  # b-2 heartbeats but never rejoins
        assert heartbeat(gc, "b-2", 1, t) is Errors.REBALANCE_IN_PROGRESS
        assert responses(gc.on_timer(t)) == {}
    done = responses(gc.on_timer(now + REBALANCE))
    assert sync(gc, done, now + REBALANCE) == {"a-1": (T0, T1), "c-3": (T2,)}
    assert heartbeat(gc, "b-2", 1, now + REBALANCE + 1) is Errors.UNKNOWN_MEMBER_ID


def test_a_new_member_that_cannot_complete_its_join_is_dropped():
    # GMM.addMemberThenRebalanceOrCompleteJoin: CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS (5 min)
    gc = new_coordinator()
    join(gc, 1, 0, client_id="a", rebalance=600_000)
    gc.on_timer(DELAY)
    join(gc, 2, DELAY, client_id="b", rebalance=600_000)
    expiry = DELAY + CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS
    for t in range(DELAY + 5_000, expiry, 5_000):  # a-1 keeps its session but never rejoins
        heartbeat(gc, "a-1", 1, t)
    assert responses(gc.on_timer(expiry)) == {2: JoinGroupResponse(error=Errors.UNKNOWN_MEMBER_ID)}
    assert sorted(gc.groups["g"].members) == ["a-1"]


def test_leave_group_rebalances_and_the_last_leave_empties_the_group():
    # GMM.classicGroupLeaveToClassicGroup; completeClassicGroupJoin with no members -> Empty, generation + 1
    gc = new_coordinator()
    now = stable_pair(gc)
    leave = gc.handle(5, LeaveGroupRequest(group_id="g", member_id="b-2"), now)
    assert responses(leave)[5].error is Errors.NONE
    assert gc.groups["g"].state is S.PREPARING_REBALANCE
    join(gc, 6, now + 1, member_id="a-1", client_id="a")
    assert gc.groups["g"].generation_id == 2
    effects = gc.handle(7, LeaveGroupRequest(group_id="g", member_id="a-1"), now + 2)
    assert [(e.old, e.new, e.generation_id) for e in effects if isinstance(e, GroupStateChanged)] == [
        (S.COMPLETING_REBALANCE, S.PREPARING_REBALANCE, 2), (S.PREPARING_REBALANCE, S.EMPTY, 3)]
    assert responses(gc.handle(8, LeaveGroupRequest(group_id="g", member_id="a-1"), now + 3))[8].error \
        is Errors.UNKNOWN_MEMBER_ID


def test_leaving_answers_the_members_parked_join_with_unknown_member_id():
    # GMM.removeCurrentMemberFromClassicGroup completes the join future first
    gc = new_coordinator()
    join(gc, 1, 0, client_id="a")
    done = responses(gc.handle(2, LeaveGroupRequest(group_id="g", member_id="a-1"), 10))
    assert done == {1: JoinGroupResponse(error=Errors.UNKNOWN_MEMBER_ID), 2: done[2]}
    assert done[2].error is Errors.NONE


def test_join_checks_session_timeout_and_member_id():
    # GroupCoordinatorService.joinGroup (group.min/max.session.timeout.ms); GMM.classicGroupJoinExistingMember
    gc = new_coordinator()
    assert responses(join(gc, 1, 0, session=CFG.group_min_session_timeout_ms - 1))[1].error \
        is Errors.INVALID_SESSION_TIMEOUT
    assert responses(join(gc, 2, 0, member_id="ghost"))[2].error is Errors.UNKNOWN_MEMBER_ID
    assert "g" not in gc.groups
    stable_pair(gc)
    assert responses(join(gc, 3, 7_000, member_id="ghost"))[3].error is Errors.UNKNOWN_MEMBER_ID


# -- offset commits --------------------------------------------------------------------------------------


def test_a_commit_without_generation_creates_a_simple_group():
    # OMM.validateOffsetCommit: generation < 0 and no group -> a simple (Empty) classic group
    gc = new_coordinator()
    effects = commit(gc, 0, ((T0, 10),))
    assert results(effects) == {T0: Errors.NONE}
    assert [e for e in effects if isinstance(e, OffsetsCommitted)] == [
        OffsetsCommitted(group_id="g", partition=T0, offset=10, producer_id=-1)]
    assert gc.groups["g"].state is S.EMPTY and gc.committed("g") == {T0: 10}


@pytest.mark.parametrize("transactional", [False, True], ids=["OffsetCommit", "TxnOffsetCommit"])
@pytest.mark.parametrize(
    ("generation", "member", "plain", "txn"),
    [
        (1, "a-1", Errors.NONE, Errors.NONE),
        (1, "ghost", Errors.UNKNOWN_MEMBER_ID, Errors.UNKNOWN_MEMBER_ID),
        (0, "a-1", Errors.ILLEGAL_GENERATION, Errors.ILLEGAL_GENERATION),
        (2, "a-1", Errors.ILLEGAL_GENERATION, Errors.ILLEGAL_GENERATION),
        # No member information: a plain commit needs an Empty group; a TxnOffsetCommit is accepted
        # without fencing (pre-KIP-447 producers).
        (-1, "", Errors.UNKNOWN_MEMBER_ID, Errors.NONE),
    ],
)
def test_commit_validation_of_classic_group_validate_offset_commit(transactional, generation, member, plain, txn):
    gc = new_coordinator()
    stable_pair(gc)
    if transactional:
        assert results(txn_commit(gc, 7_000, ((T0, 5),), generation=generation, member=member)) == {T0: txn}
    else:
        assert results(commit(gc, 7_000, ((T0, 5),), generation=generation, member=member)) == {T0: plain}


def test_commit_to_an_unknown_group_with_a_generation():
    # OMM.validateOffsetCommit (v9+: GROUP_ID_NOT_FOUND); OMM.validateTransactionalOffsetCommit: ILLEGAL_GENERATION
    gc = new_coordinator()
    assert results(commit(gc, 0, ((T0, 5),), generation=1, member="a-1")) == {T0: Errors.GROUP_ID_NOT_FOUND}
    assert results(txn_commit(gc, 0, ((T0, 5),), generation=1, member="a-1")) == {T0: Errors.ILLEGAL_GENERATION}


def test_plain_commit_during_preparing_rebalance_is_accepted_and_keeps_the_session():
    # ClassicGroup.validateOffsetCommit returns REBALANCE_IN_PROGRESS only in CompletingRebalance; in
    # PreparingRebalance the current generation may still commit (it does so while revoking), and
    # OMM.commitOffset reschedules the member's heartbeat.
    gc = new_coordinator()
    now = stable_pair(gc)
    join(gc, 3, now, client_id="c")
    assert gc.groups["g"].state is S.PREPARING_REBALANCE
    assert results(commit(gc, now + SESSION - 1, ((T0, 5),), generation=1, member="b-2")) == {T0: Errors.NONE}
    heartbeat(gc, "a-1", 1, now + SESSION - 1)
    gc.on_timer(now + SESSION)
    assert sorted(gc.groups["g"].members) == ["a-1", "b-2", "c-3"]


def test_commits_and_markers_are_records_of_the_offsets_log():
    # OMM.commitOffset / commitTransactionalOffset write records; CoordinatorRuntime.completeTransaction the marker
    gc = new_coordinator()
    commit(gc, 0, ((T0, 1), (T1, 2)))
    txn_commit(gc, 1, ((T0, 3),), pid=7, epoch=4)
    marker(gc, TransactionResult.COMMIT, 2, pid=7, epoch=4)
    plain, txn, end = gc.offsets_log.batches
    assert (plain.base_offset, plain.producer_id, plain.is_transactional, len(plain.records)) == (0, -1, False, 2)
    assert (txn.base_offset, txn.producer_id, txn.producer_epoch, txn.is_transactional) == (2, 7, 4, True)
    assert (end.base_offset, end.control, end.producer_id) == (3, ControlType.COMMIT, 7)


# -- KIP-447 pending transactional offsets -----------------------------------------------------------------


def test_pending_txn_offsets_are_invisible_until_the_commit_marker():
    # OMM.replay puts a pid's offsets in pendingTransactionalOffsets; replayEndTransactionMarker(COMMIT) publishes
    gc = new_coordinator()
    effects = txn_commit(gc, 0, ((T0, 5), (T1, 6)))
    assert results(effects) == {T0: Errors.NONE, T1: Errors.NONE}
    assert [e for e in effects if isinstance(e, OffsetsPending)] == [
        OffsetsPending(group_id="g", partition=T0, offset=5, producer_id=7, producer_epoch=0),
        OffsetsPending(group_id="g", partition=T1, offset=6, producer_id=7, producer_epoch=0)]
    assert gc.committed("g") == {}
    error, effects = marker(gc, TransactionResult.COMMIT, 1)
    assert error is Errors.NONE
    assert effects == [OffsetsCommitted(group_id="g", partition=T0, offset=5, producer_id=7),
                       OffsetsCommitted(group_id="g", partition=T1, offset=6, producer_id=7)]
    assert gc.committed("g") == {T0: 5, T1: 6}
    assert gc.pending_transactional_offsets == {} and gc.open_transactions == {}


def test_abort_marker_drops_pending_offsets():
    gc = new_coordinator()
    commit(gc, 0, ((T0, 1),))
    txn_commit(gc, 1, ((T0, 5),))
    assert marker(gc, TransactionResult.ABORT, 2) == (Errors.NONE, [])
    assert gc.committed("g") == {T0: 1}
    assert marker(gc, TransactionResult.COMMIT, 3) == (Errors.NONE, [])
    assert gc.committed("g") == {T0: 1}  # nothing left to commit


def test_require_stable_gets_unstable_offset_commit_while_a_txn_offset_is_open():
    # OMM.fetchOffsets: requireStable and openTransactions contains the partition -> UNSTABLE_OFFSET_COMMIT
    gc = new_coordinator()
    commit(gc, 0, ((T0, 1), (T1, 2)))
    txn_commit(gc, 1, ((T0, 5),))
    assert fetch(gc, require_stable=True) == {T0: (-1, Errors.UNSTABLE_OFFSET_COMMIT), T1: (2, Errors.NONE),
                                              T2: (-1, Errors.NONE)}
    marker(gc, TransactionResult.COMMIT, 2)
    assert fetch(gc, require_stable=True) == {T0: (5, Errors.NONE), T1: (2, Errors.NONE), T2: (-1, Errors.NONE)}


def test_non_stable_fetch_returns_the_last_visible_offset():
    gc = new_coordinator()
    commit(gc, 0, ((T0, 1),))
    txn_commit(gc, 1, ((T0, 5),))
    assert fetch(gc, (T0,), require_stable=False) == {T0: (1, Errors.NONE)}


# -- reads at the last committed offset (the offsets log's high watermark) -----------------------------------
# GroupCoordinatorService.fetchOffsets: a non-stable fetch is a read operation, OMM.fetchOffsets(request,
# lastCommittedOffset) on the timeline snapshot at the HW (CoordinatorRuntime.CoordinatorReadEvent); a
# require_stable one reads the latest state (Long.MAX_VALUE). These tests leave the HW behind the log end, as a
# replicated __consumer_offsets does until the followers have the records.


def test_a_non_stable_fetch_reads_at_the_high_watermark_and_a_stable_one_the_latest():
    gc = new_coordinator()
    commit(gc, 0, ((T0, 1),))  # committed: the HW follows
    gc.handle(0, OffsetCommitRequest(group_id="g", offsets=((T0, 2), (T1, 3))), 1)  # appended, HW still behind
    assert fetch(gc, (T0, T1), require_stable=False) == {T0: (1, Errors.NONE), T1: (-1, Errors.NONE)}
    assert gc.committed("g") == {T0: 1}
    assert fetch(gc, (T0, T1), require_stable=True) == {T0: (2, Errors.NONE), T1: (3, Errors.NONE)}
    gc.on_high_watermark(gc.offsets_log.log_end_offset)
    assert fetch(gc, (T0, T1), require_stable=False) == {T0: (2, Errors.NONE), T1: (3, Errors.NONE)}
    assert gc.committed("g") == {T0: 2, T1: 3}


def test_the_snapshot_moves_with_the_high_watermark_one_record_at_a_time():
    # TimelineHashMap.get(key, epoch): the value of the latest change below the snapshot's offset
    gc = new_coordinator()
    for now, offset in enumerate((4, 5, 6)):  # records at log offsets 0, 1, 2
        gc.handle(0, OffsetCommitRequest(group_id="g", offsets=((T0, offset),)), now)
    seen = []
    for hw in range(4):
        gc.on_high_watermark(hw)
        seen.append(fetch(gc, (T0,), require_stable=False)[T0][0])
    assert seen == [-1, 4, 5, 6]


def test_a_commit_marker_above_the_high_watermark_is_not_read_yet():
    # OMM.replayEndTransactionMarker moves the offsets at the marker's offset: a non-stable read waits for the
    # marker to be committed; require_stable no longer answers UNSTABLE_OFFSET_COMMIT once it is replayed
    gc = new_coordinator()
    commit(gc, 0, ((T0, 1),))
    txn_commit(gc, 1, ((T0, 5),))
    gc.complete_transaction(producer_id=7, producer_epoch=0, coordinator_epoch=0, result=TransactionResult.COMMIT,
                            now=2)
    assert fetch(gc, (T0,), require_stable=False) == {T0: (1, Errors.NONE)}
    assert fetch(gc, (T0,), require_stable=True) == {T0: (5, Errors.NONE)}
    one_replica(gc)
    assert fetch(gc, (T0,), require_stable=False) == {T0: (5, Errors.NONE)}


def test_a_loaded_coordinator_commits_only_what_is_below_the_high_watermark():
    # CoordinatorLoaderImpl replays to the log end, but lastCommittedOffset is the HW: a new leader's HW can be
    # behind what the old leader had committed, and what lies above it may still be truncated away
    gc = new_coordinator()
    commit(gc, 0, ((T0, 1),))
    gc.handle(0, OffsetCommitRequest(group_id="g", offsets=((T0, 2),)), 1)
    reloaded = GroupCoordinator(CFG, gc.offsets_log)
    assert reloaded.committed("g") == {T0: 1}
    assert fetch(reloaded, (T0,), require_stable=True) == {T0: (2, Errors.NONE)}
    one_replica(reloaded)
    assert reloaded.committed("g") == {T0: 2}


def test_plain_commit_after_a_txn_commit_wins_over_the_later_commit_marker():
    # OMM.replayEndTransactionMarker keeps the record with the higher log offset
    gc = new_coordinator()
    txn_commit(gc, 0, ((T0, 5),))  # log offset 0
    commit(gc, 1, ((T0, 9),))  # log offset 1: visible at once
    assert gc.committed("g") == {T0: 9}
    assert marker(gc, TransactionResult.COMMIT, 2) == (Errors.NONE, [])
    assert gc.committed("g") == {T0: 9}


def test_txn_commit_after_a_plain_commit_wins_at_the_commit_marker():
    gc = new_coordinator()
    commit(gc, 0, ((T0, 9),))
    txn_commit(gc, 1, ((T0, 5),))
    marker(gc, TransactionResult.COMMIT, 2)
    assert gc.committed("g") == {T0: 5}


def test_one_marker_completes_the_pids_offsets_in_every_group():
    # OMM.pendingTransactionalOffsets is keyed by producer id only
    gc = new_coordinator()
    txn_commit(gc, 0, ((T0, 5),), group="g1")
    txn_commit(gc, 1, ((T0, 6),), group="g2")
    txn_commit(gc, 2, ((T0, 7),), group="g3", pid=8)
    marker(gc, TransactionResult.COMMIT, 3)
    assert (gc.committed("g1"), gc.committed("g2"), gc.committed("g3")) == ({T0: 5}, {T0: 6}, {})
    assert fetch(gc, (T0,), require_stable=True, group="g3") == {T0: (-1, Errors.UNSTABLE_OFFSET_COMMIT)}


def test_stale_producer_epoch_on_txn_offset_commit_gets_invalid_producer_epoch():
    # PAI.checkProducerEpoch on the offsets partition (origin COORDINATOR), answered for every partition
    gc = new_coordinator()
    txn_commit(gc, 0, ((T0, 5),), epoch=1)
    marker(gc, TransactionResult.COMMIT, 1, epoch=1)
    batches = list(gc.offsets_log.batches)
    effects = txn_commit(gc, 2, ((T0, 6), (T1, 7)), epoch=0)  # a zombie of the previous epoch
    assert results(effects) == {T0: Errors.INVALID_PRODUCER_EPOCH, T1: Errors.INVALID_PRODUCER_EPOCH}
    assert gc.offsets_log.batches == batches and gc.pending_transactional_offsets == {}
    assert gc.committed("g") == {T0: 5}


def test_a_stale_marker_is_rejected_and_changes_nothing():
    # CoordinatorRuntime.completeTransaction: a failed marker write reverts the replay
    gc = new_coordinator()
    txn_commit(gc, 0, ((T0, 5),), epoch=2)
    assert marker(gc, TransactionResult.COMMIT, 1, epoch=1) == (Errors.INVALID_PRODUCER_EPOCH, [])
    assert gc.committed("g") == {} and 7 in gc.pending_transactional_offsets


def test_a_new_coordinator_reloads_offsets_from_the_log():
    # the coordinator loader replays __consumer_offsets (OMM.replay, replayEndTransactionMarker)
    gc = new_coordinator()
    commit(gc, 0, ((T0, 1),))
    txn_commit(gc, 1, ((T1, 5),), pid=7)
    marker(gc, TransactionResult.COMMIT, 2, pid=7)
    txn_commit(gc, 3, ((T2, 8),), pid=8)
    reloaded = GroupCoordinator(CFG, gc.offsets_log)
    assert reloaded.committed("g") == {T0: 1, T1: 5}
    assert reloaded.open_transactions == {("g", T2): {8}}
    assert reloaded.groups["g"].state is S.EMPTY


def test_unload_makes_every_group_dead():
    # GMM.onUnloaded: Dead, parked joins NOT_COORDINATOR; ClassicGroup.validateOffsetCommit on Dead
    gc = new_coordinator()
    now = stable_pair(gc)
    commit(gc, now, ((T0, 3),), generation=1, member="a-1")
    join(gc, 3, now, client_id="c")
    effects = gc.unload()
    assert [(e.old, e.new) for e in effects if isinstance(e, GroupStateChanged)] == [
        (S.PREPARING_REBALANCE, S.DEAD)]
    assert responses(effects) == {3: JoinGroupResponse(error=Errors.NOT_COORDINATOR, member_id="c-3")}
    assert gc.next_deadline() is None
    assert heartbeat(gc, "a-1", 1, now) is Errors.COORDINATOR_NOT_AVAILABLE
    assert results(commit(gc, now, ((T0, 4),), generation=1, member="a-1")) == {T0: Errors.COORDINATOR_NOT_AVAILABLE}
    assert fetch(gc, (T0,), require_stable=False) == {T0: (-1, Errors.NONE)}


# -- the state table --------------------------------------------------------------------------------------

# ClassicGroupState.java, written out again here so the test does not read the table it checks.
KAFKA_TRANSITIONS = {
    (S.PREPARING_REBALANCE, S.EMPTY),
    (S.STABLE, S.PREPARING_REBALANCE), (S.COMPLETING_REBALANCE, S.PREPARING_REBALANCE),
    (S.EMPTY, S.PREPARING_REBALANCE),
    (S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE),
    (S.COMPLETING_REBALANCE, S.STABLE),
    *((s, S.DEAD) for s in S),
}


@pytest.mark.parametrize("target", list(S), ids=str)
@pytest.mark.parametrize("state", list(S), ids=str)
def test_group_state_table(state, target):
    group = ClassicGroup(group_id="g", state=state)
    assert ((state, target) in KAFKA_TRANSITIONS) == (state in VALID_PREVIOUS_STATES[target])
    if (state, target) in KAFKA_TRANSITIONS:
        change = group.transition_to(target)
        assert (change.old, change.new, group.state, group.previous_state) == (state, target, target, state)
    else:
        with pytest.raises(IllegalTransition):
            group.transition_to(target)
        assert group.state is state


# -- every (state, request) pair under Hypothesis ------------------------------------------------------------

TPS = (T0, T1, TopicPartition("other", 0))


@define
class Driver:
    """Feeds one coordinator and checks its invariants after every call. ``calls`` replays the run."""

    gc: GroupCoordinator = field(factory=new_coordinator)
    now: int = 0
    cid: int = 0
    calls: list = field(factory=list)
    outputs: list = field(factory=list)
    answered: set = field(factory=set)
    seen_members: list = field(factory=list)
    generations: dict = field(factory=dict)
    states: dict = field(factory=dict)
    visible: dict = field(factory=dict)  # (group, tp) -> offset, from OffsetsCommitted alone

    def request(self, request):
        self.cid += 1
        open_before = dict(self.gc.open_transactions)
        effects = self._call(("handle", self.cid, request, self.now))
        mine = responses(effects).get(self.cid)
        if not isinstance(request, (JoinGroupRequest, SyncGroupRequest)):
            assert mine is not None, "every request but JoinGroup and SyncGroup is answered at once"
        if isinstance(request, OffsetFetchRequest):
            for tp, _offset, error in mine.results:
                assert (error is Errors.UNSTABLE_OFFSET_COMMIT) == (
                    request.require_stable and (request.group_id, tp) in open_before)
        return effects

    def advance(self, ms):
        target = self.now + ms
        while (deadline := self.gc.next_deadline()) is not None and deadline <= target:
            self.now = max(self.now, deadline)
            self._call(("timer", self.now))
        self.now = target

    def marker(self, pid, epoch, result):
        self._call(("marker", pid, epoch, result, self.now))

    def unload(self):
        self._call(("unload",))

    def _call(self, call):
        self.calls.append(call)
        effects = run_call(self.gc, call)
        self.outputs.append(effects)
        self._check(effects)
        return effects

    def _check(self, effects):
        for e in effects:
            if isinstance(e, Respond):
                assert 0 < e.correlation_id <= self.cid and e.correlation_id not in self.answered, "answered twice"
                self.answered.add(e.correlation_id)
                if isinstance(e.response, JoinGroupResponse) and e.response.member_id not in ("", *self.seen_members):
                    self.seen_members.append(e.response.member_id)
            elif isinstance(e, GroupStateChanged):
                assert self.states.get(e.group_id, S.EMPTY) is e.old
                self.states[e.group_id] = e.new
            elif isinstance(e, OffsetsCommitted):
                self.visible[(e.group_id, e.partition)] = e.offset
        for group_id, group in self.gc.groups.items():
            assert group.generation_id >= self.generations.get(group_id, 0), "generation only grows"
            self.generations[group_id] = group.generation_id
            assert group.state is self.states.get(group_id, S.EMPTY)
            if group.state is S.EMPTY:
                assert not group.members
            if group.state is S.STABLE:
                assert group.members
            assert self.gc.committed(group_id) == {
                tp: offset for (g, tp), offset in sorted(self.visible.items()) if g == group_id}
        committed, pending = reference_offsets(self.gc.offsets_log)
        assert self.visible == committed
        assert set(self.gc.open_transactions) == {key for keys in pending.values() for key in keys}
        self._check_assignments(effects)

    def _check_assignments(self, effects):
        group = self.gc.groups.get("g")
        for e in effects:
            if not isinstance(e, Respond) or getattr(e.response, "error", None) is not Errors.NONE:
                continue
            if isinstance(e.response, JoinGroupResponse):
                assert e.response.generation_id == group.generation_id and group.state is S.COMPLETING_REBALANCE \
                    or group.state is S.STABLE, "a JoinGroup is answered with the generation just formed"
                assert bool(e.response.members) == (e.response.member_id == e.response.leader)
            if isinstance(e.response, SyncGroupResponse):
                assert group.state is S.STABLE
        if group is not None and group.state is S.STABLE:
            assigned = [tp for m in group.members.values() for tp in m.assignment]
            assert len(assigned) == len(set(assigned)), "assignments are disjoint"
        if group is not None and group.members:
            assert group.leader_id in group.members


def reference_offsets(log: PartitionLog):
    """KIP-447's rules re-derived from the offsets log alone: (committed, pending by pid); with a mix of
    plain and transactional commits the higher log offset wins."""
    committed, pending = {}, {}
    for batch in log.batches:
        if batch.is_control:
            for key, (offset, position) in pending.pop(batch.producer_id, {}).items():
                if batch.control is ControlType.COMMIT and position > committed.get(key, (0, -1))[1]:
                    committed[key] = (offset, position)
            continue
        for i, record in enumerate(batch.records):
            group_id, topic, partition = json.loads(record.key)
            key, entry = (group_id, TopicPartition(topic, partition)), (int(record.value), batch.base_offset + i)
            if batch.producer_id == -1:
                committed[key] = entry
            else:
                pending.setdefault(batch.producer_id, {})[key] = entry
    return {key: offset for key, (offset, _position) in committed.items()}, pending


def run_call(gc, call):
    """One call, on one broker (the offsets log committed at once)."""
    match call:
        case ("handle", cid, request, now):
            effects = gc.handle(cid, request, now)
        case ("timer", now):
            effects = gc.on_timer(now)
        case ("marker", pid, epoch, result, now):
            error, effects = gc.complete_transaction(producer_id=pid, producer_epoch=epoch, coordinator_epoch=0,
                                                     result=result, now=now)
            assert error in (Errors.NONE, Errors.INVALID_PRODUCER_EPOCH)
        case ("unload",):
            effects = gc.unload()
    one_replica(gc)
    return effects


# The set-up groups' rebalance timeout is below their session timeout, so a random tail reaches both the
# rebalance-timeout and the session-expiry paths.
SETUP_REBALANCE = 5_000


def _join_request(member_id="", client_id="c", topics=("in", "other"), session=SESSION, rebalance=SETUP_REBALANCE,
                  protocols=("range",)):
    return JoinGroupRequest(group_id="g", member_id=member_id, client_id=client_id, session_timeout_ms=session,
                            rebalance_timeout_ms=rebalance, protocols=tuple((p, topics) for p in protocols))


def _sync_request(d: Driver, member_id: str, generation: int) -> SyncGroupRequest:
    group = d.gc.groups.get("g")
    assignments = ()
    if group is not None and group.leader_id == member_id and group.protocol_name is not None:
        assignments = tuple(sorted(range_assignor(dict(group.current_members()), {"in": 2, "other": 1}).items()))
    return SyncGroupRequest(group_id="g", generation_id=generation, member_id=member_id,
                            protocol_name=(group.protocol_name or "range") if group is not None else "range",
                            assignments=assignments)


def _setup(d: Driver, name: str) -> None:
    if name == "no group":
        return
    if name == "Empty (simple group)":
        d.request(OffsetCommitRequest(group_id="g", offsets=((T0, 1),)))
        return
    d.request(_join_request(client_id="a"))
    d.request(_join_request(member_id="a-1", client_id="a"))
    if name == "PreparingRebalance (initial)":
        return
    d.advance(DELAY)
    if name == "CompletingRebalance":
        return
    d.request(_sync_request(d, "a-1", 1))
    d.request(_join_request(client_id="b"))
    d.request(_join_request(member_id="b-2", client_id="b"))
    if name == "PreparingRebalance":
        return
    d.request(_join_request(member_id="a-1", client_id="a"))
    d.request(_sync_request(d, "b-2", 2))
    d.request(_sync_request(d, "a-1", 2))
    if name == "Empty (after members)":
        d.request(LeaveGroupRequest(group_id="g", member_id="a-1"))
        d.request(LeaveGroupRequest(group_id="g", member_id="b-2"))
    if name == "Dead":
        d.unload()


SETUPS = {
    "no group": None,
    "Empty (simple group)": S.EMPTY,
    "Empty (after members)": S.EMPTY,
    "PreparingRebalance (initial)": S.PREPARING_REBALANCE,
    "PreparingRebalance": S.PREPARING_REBALANCE,
    "CompletingRebalance": S.COMPLETING_REBALANCE,
    "Stable": S.STABLE,
    "Dead": S.DEAD,
}
KINDS = ("join", "sync", "heartbeat", "leave", "commit", "txn_commit", "fetch", "marker", "timer")


def _step(d: Driver, kind: str, data) -> None:
    group = d.gc.groups.get("g")
    generation = group.generation_id if group is not None else 0
    member = data.draw(st.sampled_from(["", "ghost", *d.seen_members]), label="member")
    gen = data.draw(st.sampled_from([-1, 0, generation - 1, generation, generation + 1]), label="generation")
    offsets = tuple(data.draw(st.dictionaries(st.sampled_from(TPS), st.integers(0, 50), max_size=3),
                              label="offsets").items())
    pid = data.draw(st.sampled_from([1, 2]), label="pid")
    epoch = data.draw(st.sampled_from([0, 1, 2]), label="epoch")
    match kind:
        case "join":
            d.request(_join_request(
                member_id=member, client_id=data.draw(st.sampled_from("abc")),
                topics=tuple(data.draw(st.lists(st.sampled_from(["in", "other"]), unique=True, max_size=2))),
                protocols=data.draw(st.sampled_from([("range",), ("range", "roundrobin"), ("roundrobin",)])),
                session=data.draw(st.sampled_from([1_000, 6_000, SESSION])),
                rebalance=data.draw(st.sampled_from([1_000, DELAY, SETUP_REBALANCE, REBALANCE]))))
        case "sync":
            d.request(_sync_request(d, member, gen))
        case "heartbeat":
            d.request(HeartbeatRequest(group_id="g", member_id=member, generation_id=gen))
        case "leave":
            d.request(LeaveGroupRequest(group_id="g", member_id=member))
        case "commit":
            d.request(OffsetCommitRequest(group_id="g", generation_id=gen, member_id=member, offsets=offsets))
        case "txn_commit":
            d.request(TxnOffsetCommitRequest(transactional_id=f"tx{pid}", group_id="g", producer_id=pid,
                                             producer_epoch=epoch, generation_id=gen, member_id=member,
                                             offsets=offsets))
        case "fetch":
            d.request(OffsetFetchRequest(group_id="g", partitions=TPS, require_stable=data.draw(st.booleans())))
        case "marker":
            d.marker(pid, epoch, data.draw(st.sampled_from(TransactionResult)))
        case "timer":
            d.advance(data.draw(st.sampled_from([0, 1, 1_000, DELAY, 6_000, SESSION, REBALANCE, 300_000])))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("setup", list(SETUPS))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_state_and_request_keeps_the_invariants(setup, kind, data):
    """Put the group in ``setup``'s state, send ``kind``, then a random tail of requests and timers: no
    exception, and after every call the Driver's invariants hold (generation only grows, one assignment per
    member, assignments partition the asked-for partitions, state changes chain, visible offsets are exactly
    the OffsetsCommitted effects, require_stable is UNSTABLE exactly while a txn offset is open). A replay
    of the same calls gives the same effects (determinism)."""
    d = Driver()
    _setup(d, setup)
    group = d.gc.groups.get("g")
    assert (group.state if group is not None else None) is SETUPS[setup]
    _step(d, kind, data)
    for tail_kind in data.draw(st.lists(st.sampled_from(KINDS), max_size=12), label="tail"):
        _step(d, tail_kind, data)
    replay = new_coordinator()
    assert [run_call(replay, call) for call in d.calls] == d.outputs


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.one_of(
    st.tuples(st.just("commit"), st.dictionaries(st.sampled_from(TPS), st.integers(0, 50), min_size=1, max_size=2)),
    st.tuples(st.just("txn_commit"), st.sampled_from([1, 2]), st.sampled_from([0, 1]),
              st.dictionaries(st.sampled_from(TPS), st.integers(0, 50), min_size=1, max_size=2)),
    st.tuples(st.just("marker"), st.sampled_from([1, 2]), st.sampled_from([0, 1]), st.sampled_from(TransactionResult)),
), max_size=20))
def test_offsets_match_a_replay_of_the_offsets_log(ops):
    """Plain commits, TxnOffsetCommits and markers on a simple group: the visible offsets are always Kafka's
    rules applied to the log (``reference_offsets``), and require_stable fetches follow the open txns."""
    d = Driver()
    for op in ops:
        match op:
            case ("commit", offsets):
                d.request(OffsetCommitRequest(group_id="g", offsets=tuple(offsets.items())))
            case ("txn_commit", pid, epoch, offsets):
                d.request(TxnOffsetCommitRequest(transactional_id=f"tx{pid}", group_id="g", producer_id=pid,
                                                 producer_epoch=epoch, offsets=tuple(offsets.items())))
            case ("marker", pid, epoch, result):
                d.marker(pid, epoch, result)
        d.request(OffsetFetchRequest(group_id="g", partitions=TPS, require_stable=True))
