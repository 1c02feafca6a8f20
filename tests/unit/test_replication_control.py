"""The controller's replication rules (eosim.models.replication_control) against Kafka 4.1's
ReplicationControlManager, PartitionChangeBuilder and ClusterControlManager, one rule per test."""

from __future__ import annotations

import itertools

import pytest

from eosim.models.config import ReplicationConfig
from eosim.models.effects import Respond
from eosim.models.errors import Errors, ModelError
from eosim.models.records import TopicPartition
from eosim.models.replication_control import (
    BROKER_TRANSITIONS,
    NO_LEADER,
    AlterPartitionRequest,
    AlterPartitionResponse,
    BrokerChange,
    BrokerEvent,
    BrokerHeartbeatRequest,
    BrokerState,
    LeaderRecoveryState,
    PartitionChange,
    RegisterBrokerRequest,
    ReplicationControl,
    PartitionRegistration,
    _build,
    _Election,
    _NO_CHANGE,
)

TP = TopicPartition("t", 0)
SESSION = ReplicationConfig().broker_session_timeout_ms


def cluster(*, brokers=(1, 2, 3), **config) -> ReplicationControl:
    rc = ReplicationControl(ReplicationConfig(**config))
    for b in brokers:
        rc.register_broker(0, RegisterBrokerRequest(broker_id=b), 0)
        rc.heartbeat(0, BrokerHeartbeatRequest(broker_id=b, broker_epoch=rc.broker(b).broker_epoch), 0)
    rc.create_partition(TP, tuple(brokers))
    return rc


def fence(rc: ReplicationControl, *brokers: int, now: int) -> list:
    """Only ``brokers`` stop heartbeating; everyone else keeps its session."""
    for b in (1, 2, 3):
        registration = rc.broker(b)
        if b not in brokers and not registration.fenced:
            rc.heartbeat(0, BrokerHeartbeatRequest(broker_id=b, broker_epoch=registration.broker_epoch), now)
    return rc.on_timer(now)


def restart(rc: ReplicationControl, b: int, now: int, *, clean=False) -> list:
    first, *effects = rc.register_broker(0, RegisterBrokerRequest(broker_id=b, clean_shutdown=clean), now)
    assert first.response.error is Errors.NONE
    return effects + rc.heartbeat(0, BrokerHeartbeatRequest(broker_id=b, broker_epoch=first.response.broker_epoch),
                                  now)[1:]


def changes(effects) -> list[PartitionChange]:
    return [e for e in effects if isinstance(e, PartitionChange)]


def test_a_new_partition_has_every_active_replica_in_the_isr_and_the_first_leads():
    rc = cluster()
    part = rc.partition(TP)
    assert (part.isr, part.leader, part.leader_epoch, part.partition_epoch) == ((1, 2, 3), 1, 0, 0)
    with pytest.raises(ModelError):
        rc.create_partition(TP, (1, 2, 3))


def test_fencing_the_leader_elects_the_next_isr_member_and_bumps_both_epochs():
    rc = cluster(min_insync_replicas=2)
    [change] = changes(fence(rc, 1, now=SESSION + 1))
    part = change.registration
    assert (part.leader, part.isr, part.elr, part.leader_epoch, part.partition_epoch) == (2, (2, 3), (), 1, 1)
    assert not change.unclean


def test_an_isr_shrink_without_a_leader_change_keeps_the_leader_epoch():
    rc = cluster(min_insync_replicas=2)
    [change] = changes(fence(rc, 3, now=SESSION + 1))
    assert (change.registration.isr, change.registration.leader_epoch, change.registration.partition_epoch) == (
        (1, 2), 0, 1)


def test_elr_holds_the_replicas_that_left_an_isr_below_min_insync_and_one_of_them_is_elected():
    # KIP-966: PCB.maybePopulateTargetElr / isValidNewLeader
    rc = cluster(min_insync_replicas=2)
    fence(rc, 3, now=SESSION + 1)
    fence(rc, 2, now=2 * SESSION + 2)
    part = rc.partition(TP)
    assert (part.isr, part.elr) == ((1,), (2,))  # 2 left an ISR that fell below 2: eligible
    fence(rc, 1, now=3 * SESSION + 3)
    part = rc.partition(TP)
    assert (part.leader, part.isr, part.elr, part.last_known_elr) == (NO_LEADER, (), (1, 2), (1,))
    # 2 comes back after a clean shutdown: an ELR member, so it leads, clean
    effects = restart(rc, 2, now=3 * SESSION + 4, clean=True)
    [change] = changes(effects)
    part = change.registration
    assert (part.leader, part.isr, part.elr, part.last_known_elr) == (2, (2,), (1,), ())
    assert not change.unclean


def test_an_unclean_shutdown_removes_a_replica_from_the_elr():
    rc = cluster(min_insync_replicas=2)
    fence(rc, 3, now=SESSION + 1)
    fence(rc, 2, now=2 * SESSION + 2)
    fence(rc, 1, now=3 * SESSION + 3)
    effects = restart(rc, 2, now=3 * SESSION + 4)  # killed: RCM.handleBrokerShutdown(isCleanShutdown=false)
    part = rc.partition(TP)
    assert (part.leader, part.isr, part.elr) == (NO_LEADER, (), (1,))
    assert changes(effects)[0].registration.elr == (1,)


def test_with_isr_and_elr_empty_the_last_known_leader_is_elected_and_it_counts_as_unclean():
    # PCB.canElectLastKnownLeader (KIP-966 balanced recovery), on with unclean.leader.election.enable=false
    rc = cluster(min_insync_replicas=2)
    fence(rc, 3, now=SESSION + 1)
    fence(rc, 2, now=2 * SESSION + 2)
    fence(rc, 1, now=3 * SESSION + 3)
    restart(rc, 2, now=3 * SESSION + 4)
    restart(rc, 3, now=3 * SESSION + 4)
    assert rc.partition(TP).leader == NO_LEADER  # neither was in ISR or ELR, and unclean election is off
    # 1's registration first takes it out of the ELR (an unclean shutdown), then its unfencing elects it
    shutdown, change = changes(restart(rc, 1, now=3 * SESSION + 5))
    assert (shutdown.registration.elr, shutdown.registration.last_known_elr) == ((), (1,))
    part = change.registration
    assert (part.leader, part.isr, part.leader_recovery_state) == (1, (1,), LeaderRecoveryState.RECOVERING)
    assert change.unclean


def test_unclean_leader_election_picks_any_live_replica_when_isr_and_elr_have_none():
    for enabled in (False, True):
        rc = cluster(min_insync_replicas=1, unclean_leader_election_enable=enabled)
        fence(rc, 3, now=SESSION + 1)
        fence(rc, 2, now=2 * SESSION + 2)
        assert rc.partition(TP).isr == (1,)
        restart(rc, 3, now=2 * SESSION + 3, clean=True)
        effects = fence(rc, 1, now=3 * SESSION + 4)  # ISR [1] -> []: 1 is in the ELR but fenced
        part = rc.partition(TP)
        if enabled:
            assert (part.leader, part.isr, part.elr) == (3, (3,), ())
            assert part.leader_recovery_state is LeaderRecoveryState.RECOVERING
            assert changes(effects)[0].unclean
        else:
            assert (part.leader, part.isr, part.elr) == (NO_LEADER, (), (1,))


def test_without_elr_the_isr_keeps_its_last_member_and_there_is_no_elr():
    rc = cluster(min_insync_replicas=2, eligible_leader_replicas_version=0)
    fence(rc, 3, now=SESSION + 1)
    fence(rc, 2, now=2 * SESSION + 2)
    fence(rc, 1, now=3 * SESSION + 3)
    part = rc.partition(TP)
    assert (part.leader, part.isr, part.elr, part.last_known_elr) == (NO_LEADER, (1,), (), ())
    [change] = changes(restart(rc, 1, now=3 * SESSION + 4))
    assert (change.registration.leader, change.registration.isr) == (1, (1,))


def test_a_restarting_broker_cannot_register_while_its_old_session_is_valid():
    rc = cluster()
    first, *_ = rc.register_broker(7, RegisterBrokerRequest(broker_id=2), SESSION)
    assert first == Respond(correlation_id=7, response=first.response)
    assert first.response.error is Errors.DUPLICATE_BROKER_REGISTRATION
    first, *effects = rc.register_broker(8, RegisterBrokerRequest(broker_id=2), SESSION + 1)
    assert first.response.error is Errors.NONE and first.response.broker_epoch == 4
    assert effects[-1] == BrokerChange(registration=rc.broker(2)) and rc.broker(2).fenced
    assert rc.partition(TP).isr == (1, 3)  # the old incarnation left the ISR


def test_a_heartbeat_with_an_old_broker_epoch_is_stale():
    rc = cluster()
    [answer] = rc.heartbeat(3, BrokerHeartbeatRequest(broker_id=1, broker_epoch=0), 1)
    assert answer.response.error is Errors.STALE_BROKER_EPOCH


def alter(rc, *, broker_id=1, leader_epoch=0, partition_epoch=0, isr=((1, 1), (2, 2)),
          state=LeaderRecoveryState.RECOVERED) -> AlterPartitionResponse:
    request = AlterPartitionRequest(broker_id=broker_id, tp=TP, leader_epoch=leader_epoch,
                                    partition_epoch=partition_epoch, new_isr_with_epochs=isr,
                                    leader_recovery_state=state)
    return rc.alter_partition(5, request)[0].response


@pytest.mark.parametrize("kwargs, error", [
    (dict(leader_epoch=1), Errors.NOT_CONTROLLER),
    (dict(broker_id=2), Errors.INVALID_REQUEST),
    (dict(isr=((2, 2), (3, 3))), Errors.INVALID_REQUEST),  # the leader must stay in
    (dict(isr=((1, 1), (4, 9))), Errors.INVALID_REQUEST),  # not a replica
    (dict(isr=((1, 1), (2, 2)), state=LeaderRecoveryState.RECOVERING), Errors.INVALID_REQUEST),
    (dict(isr=((1, 1), (2, 7))), Errors.INELIGIBLE_REPLICA),  # KIP-903: not the registered broker epoch
    (dict(isr=((1, 1), (2, -1))), Errors.NONE),  # -1: not checked
])
def test_alter_partition_validation(kwargs, error):
    assert alter(cluster(), **kwargs).error is error


def test_alter_partition_refuses_stale_epochs_and_fenced_replicas():
    rc = cluster()
    fence(rc, 3, now=SESSION + 1)  # partition epoch 1
    assert alter(rc).error is Errors.INVALID_UPDATE_VERSION
    assert alter(rc, partition_epoch=1, isr=((1, 1), (3, 3))).error is Errors.INELIGIBLE_REPLICA
    fence(rc, 1, now=2 * SESSION + 2)  # leader epoch 1
    assert alter(rc, partition_epoch=1).error is Errors.FENCED_LEADER_EPOCH


def test_an_accepted_alter_partition_answers_with_the_new_state():
    rc = cluster()
    fence(rc, 3, now=SESSION + 1)
    restart(rc, 3, now=SESSION + 2)
    response = alter(rc, partition_epoch=1, isr=((1, 1), (2, 2), (3, 4)))
    assert (response.error, response.isr, response.partition_epoch) == (Errors.NONE, (1, 2, 3), 2)
    assert rc.partition(TP).isr == (1, 2, 3)


def drive(rc: ReplicationControl, b: int, event: BrokerEvent, now: int) -> None:
    match event:
        case BrokerEvent.REGISTER:
            rc.register_broker(0, RegisterBrokerRequest(broker_id=b), now)
        case BrokerEvent.UNFENCE:
            registration = rc.broker(b)
            if registration is not None:
                rc.heartbeat(0, BrokerHeartbeatRequest(broker_id=b, broker_epoch=registration.broker_epoch), now)
        case BrokerEvent.FENCE:
            rc.on_timer(now)


@pytest.mark.parametrize("state, event", list(itertools.product(BrokerState, BrokerEvent)))
def test_every_broker_event_in_every_state_follows_the_table(state, event):
    """h11-style: each (state, event) pair either moves as BROKER_TRANSITIONS says, or the public API leaves
    the state alone (it never drives a transition the table does not list)."""
    rc = ReplicationControl(ReplicationConfig())
    now = 0
    if state is not BrokerState.UNREGISTERED:
        rc.register_broker(0, RegisterBrokerRequest(broker_id=1), now)
    if state is BrokerState.UNFENCED:
        rc.heartbeat(0, BrokerHeartbeatRequest(broker_id=1, broker_epoch=rc.broker(1).broker_epoch), now)
    assert rc.broker_state(1) is state
    drive(rc, 1, event, now + SESSION + 1)  # past the session, so a registration and a fence are allowed
    assert rc.broker_state(1) is BROKER_TRANSITIONS.get((state, event), state)


# --- Kafka's own PartitionChangeBuilderTest cases (4.1.2, ELR on, useLastKnownLeaderInBalancedRecovery=true) ------

_NO = object()  # the field is absent from the expected PartitionChangeRecord


@pytest.mark.parametrize("name, part, target_isr, acceptable, unclean_shutdown, expected", [
    ("IsrShrinkBelowMinISR",
     dict(isr=(1, 2, 3, 4), leader=1), (1, 2), lambda r: r != 3, (),
     dict(leader=_NO, isr=(1, 2), elr=(3, 4), last_known_elr=_NO)),
    ("lastKnownElrShouldBePopulatedWhenNoLeader",
     dict(isr=(1,), elr=(2,), leader=1), (1,), lambda r: False, (),
     dict(leader=NO_LEADER, isr=_NO, elr=_NO, last_known_elr=(1,))),
    ("ElrCanBeElected",
     dict(isr=(1,), elr=(3,), leader=1), (), lambda r: r != 1, (),
     dict(leader=3, isr=(3,), elr=(1,), last_known_elr=_NO)),
    ("IsrCanShrinkToZero",
     dict(isr=(1, 2, 3, 4), leader=1), (), lambda r: False, (),
     dict(leader=NO_LEADER, isr=(), elr=(1, 2, 3, 4), last_known_elr=(1,))),
    ("IsrCanShrinkToZero, then an unclean shutdown",
     dict(isr=(), elr=(1, 2, 3, 4), last_known_elr=(1,), leader=NO_LEADER), (), lambda r: False, (2,),
     dict(leader=_NO, isr=_NO, elr=(1, 3, 4), last_known_elr=_NO)),
    ("ElectLastKnownLeader",
     dict(isr=(), last_known_elr=(1,), leader=NO_LEADER), (), lambda r: True, (),
     dict(leader=1, isr=(1,), elr=_NO, last_known_elr=(), leader_recovery_state=LeaderRecoveryState.RECOVERING)),
    ("ElectLastKnownLeaderShouldFail",
     dict(isr=(), elr=(3,), last_known_elr=(1,), leader=NO_LEADER), (), lambda r: r != 3, (), None),
    ("NotEligibleLastKnownLeader",
     dict(isr=(), last_known_elr=(1,), leader=NO_LEADER), (), lambda r: False, (), None),
    ("NotEligibleLastKnownLeader, unclean election",
     dict(isr=(), last_known_elr=(1,), leader=NO_LEADER), (), lambda r: False, (), None),
], ids=lambda v: v if isinstance(v, str) else "")
def test_kafkas_partition_change_builder_cases(name, part, target_isr, acceptable, unclean_shutdown, expected):
    unclean_election = name.endswith("unclean election")
    registration = PartitionRegistration(replicas=(1, 2, 3, 4), leader_epoch=100, partition_epoch=200, **part)
    record = _build(registration, target_isr=target_isr, is_acceptable_leader=acceptable, min_isr=3,
                    elr_enabled=True, election=_Election.UNCLEAN if unclean_election else _Election.ONLINE,
                    unclean_shutdown_replicas=unclean_shutdown)
    if expected is None:
        assert record is None
        return
    for field_name, value in expected.items():
        got = getattr(record, field_name)
        assert (got is _NO_CHANGE) if value is _NO else (got == value), (field_name, got)
