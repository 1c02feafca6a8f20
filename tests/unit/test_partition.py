"""The broker-side replication rules of eosim.models.partition, one per test, against Kafka 4.1's Partition.scala,
ReplicaManager / DelayedProduce, Replica.java and AbstractFetcherThread (named in each test)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eosim.models.config import BrokerConfig, ReplicationConfig
from eosim.models.effects import Respond
from eosim.models.errors import Errors, IllegalTransition, ModelError
from eosim.models.partition import (
    TRANSITIONS,
    Acks,
    DivergingEpoch,
    Event,
    FetchRequest,
    FetchResponse,
    HighWatermarkUpdated,
    LogAppended,
    LogTruncated,
    OffsetsForLeaderEpochRequest,
    OffsetsForLeaderEpochResponse,
    Partition,
    ProduceRequest,
    ProduceResponse,
    Role,
    SendAlterPartition,
)
from eosim.models.log import PartitionLog
from eosim.models.records import LogBatch, Record, RecordBatch, TopicPartition
from eosim.models.replication_control import (
    AlterPartitionRequest,
    AlterPartitionResponse,
    BrokerRegistration,
    PartitionRegistration,
)

TP = TopicPartition("t", 0)
REPLICAS = (1, 2, 3)
EPOCHS = {1: 11, 2: 12, 3: 13}  # broker id -> broker epoch


def registration(leader=1, isr=REPLICAS, leader_epoch=0, partition_epoch=0) -> PartitionRegistration:
    return PartitionRegistration(replicas=REPLICAS, isr=tuple(isr), leader=leader, leader_epoch=leader_epoch,
                                 partition_epoch=partition_epoch)


def broker(broker_id: int, *, min_isr=2, log: PartitionLog | None = None, fenced=()) -> Partition:
    part = Partition(TP, broker_id, ReplicationConfig(min_insync_replicas=min_isr), broker_epoch=EPOCHS[broker_id],
                     log=log or PartitionLog(TP, BrokerConfig()))
    for b in REPLICAS:
        part.update_broker(BrokerRegistration(broker_id=b, broker_epoch=EPOCHS[b], fenced=b in fenced))
    return part


def leader(*, min_isr=2, isr=REPLICAS, fenced=(), now=0) -> Partition:
    part = broker(1, min_isr=min_isr, fenced=fenced)
    assert part.apply_registration(registration(isr=isr), now) == []
    return part


def responses(effects) -> dict[int, object]:
    return {e.correlation_id: e.response for e in effects if isinstance(e, Respond)}


def fetch(leader_part: Partition, follower_id: int, offset: int, now: int, *, last_epoch=0, leader_epoch=0,
          replica_epoch=None) -> tuple[FetchResponse, list]:
    request = FetchRequest(replica_id=follower_id, replica_epoch=EPOCHS[follower_id] if replica_epoch is None
                           else replica_epoch, fetch_offset=offset, last_fetched_epoch=last_epoch,
                           current_leader_epoch=leader_epoch)
    *effects, answer = leader_part.follower_fetch(99, request, now)
    return answer.response, effects


def produce_request(acks: Acks, values: tuple[str, ...], **kwargs) -> ProduceRequest:
    """A plain (non-idempotent) batch of ``values``."""
    return ProduceRequest(acks=acks, batch=RecordBatch(records=tuple(Record(None, v) for v in values)), **kwargs)


def entries(*values, epoch=0, start=0) -> tuple[LogBatch, ...]:
    """One single-record batch per value, written by the leader of ``epoch``, from offset ``start``."""
    return tuple(LogBatch(base_offset=start + i, records=(Record(None, v),), partition_leader_epoch=epoch)
                 for i, v in enumerate(values))


def log_of(*batches: LogBatch) -> PartitionLog:
    log = PartitionLog(TP, BrokerConfig())
    log.append_as_follower(batches)
    return log


def values_and_epochs(log: PartitionLog) -> list[tuple[str, int]]:
    return [(r.value, b.partition_leader_epoch) for b in log.batches for r in b.records]


# --- acks ---------------------------------------------------------------------------------------------------


def test_acks_0_gets_no_response_and_acks_1_is_answered_after_the_leaders_append():
    part = leader()
    assert responses(part.produce(1, produce_request(Acks.ZERO, ("a",)), 0)) == {}
    assert responses(part.produce(2, produce_request(Acks.ONE, ("b",)), 0)) == {
        2: ProduceResponse(error=Errors.NONE, base_offset=1)}
    assert part.log_end_offset == 2 and part.high_watermark == 0  # acknowledged, not committed


def test_acks_all_is_answered_once_every_isr_member_fetched_past_it():
    part = leader()
    assert responses(part.produce(1, produce_request(Acks.ALL, ("a", "b")), 0)) == {}
    _, effects = fetch(part, 2, 2, 1)
    assert effects == []  # the HW is the minimum over the ISR: follower 3 is still at -1 (unknown)
    _, effects = fetch(part, 3, 1, 1)
    assert effects == [HighWatermarkUpdated(high_watermark=1)]
    _, effects = fetch(part, 3, 2, 2)
    assert effects[0] == HighWatermarkUpdated(high_watermark=2)
    assert responses(effects) == {1: ProduceResponse(error=Errors.NONE, base_offset=0)}


def test_acks_all_is_refused_with_not_enough_replicas_when_the_isr_is_below_min_insync_and_nothing_is_written():
    # one of three brokers down and min.insync.replicas=3 (P.appendRecordsToLeader)
    part = leader(min_isr=3, isr=(1, 2))
    effects = part.produce(1, produce_request(Acks.ALL, ("a",)), 0)
    assert responses(effects) == {1: ProduceResponse(error=Errors.NOT_ENOUGH_REPLICAS)}
    assert part.log_end_offset == 0
    # acks=1 is not checked against min.insync.replicas
    assert responses(part.produce(2, produce_request(Acks.ONE, ("b",)), 0))[2].error is Errors.NONE


def test_the_hw_does_not_advance_while_the_isr_is_below_min_insync_so_acks_all_times_out():
    # the strict min-ISR rule (P.maybeIncrementLeaderHW): the records stay, the request waits, then times out
    part = leader(min_isr=2)
    assert responses(part.produce(1, produce_request(Acks.ALL, ("a",), timeout_ms=40_000), 0)) == {}
    # both followers die; the controller fences them and shrinks the ISR to the leader alone
    for b in (2, 3):
        part.update_broker(BrokerRegistration(broker_id=b, broker_epoch=EPOCHS[b], fenced=True))
    assert part.apply_registration(registration(isr=(1,), partition_epoch=1), 35_000) == []
    assert part.high_watermark == 0  # an ISR of one would make it 1, but 1 < min.insync.replicas
    assert part.next_deadline() == 40_000
    assert part.expire_delayed_produces(39_999) == []
    assert responses(part.expire_delayed_produces(40_000)) == {
        1: ProduceResponse(error=Errors.REQUEST_TIMED_OUT, base_offset=0)}
    assert part.log_end_offset == 1
    # the same with min.insync.replicas=1: the lone leader commits at once
    alone = leader(min_isr=1)
    alone.produce(1, produce_request(Acks.ALL, ("a",)), 0)
    effects = alone.apply_registration(registration(isr=(1,), partition_epoch=1), 35_000)
    assert effects[0] == HighWatermarkUpdated(high_watermark=1)


def test_a_waiting_acks_all_request_fails_with_not_leader_when_leadership_moves():
    part = leader()
    part.produce(1, produce_request(Acks.ALL, ("a",)), 0)
    effects = part.apply_registration(registration(leader=2, isr=(2, 3), leader_epoch=1, partition_epoch=1), 5)
    assert responses(effects) == {1: ProduceResponse(error=Errors.NOT_LEADER_OR_FOLLOWER, base_offset=0)}
    assert part.role is Role.FOLLOWER
    assert responses(part.produce(2, produce_request(Acks.ONE, ("b",)), 5)) == {
        2: ProduceResponse(error=Errors.NOT_LEADER_OR_FOLLOWER)}


# --- high watermark -----------------------------------------------------------------------------------------


def test_a_caught_up_follower_outside_the_isr_holds_the_hw_back_until_it_joins():
    # P.maybeIncrementLeaderHW's shouldWaitForReplicaToJoinIsr: caught up within replica.lag.time.max.ms and
    # ISR-eligible, so the HW waits for it rather than racing ahead of it
    part = leader(isr=(1, 2), min_isr=1)
    [alter] = fetch(part, 3, 0, 1)[1]
    part.on_alter_partition_response(alter.request, AlterPartitionResponse(error=Errors.INELIGIBLE_REPLICA, tp=TP), 1)
    assert part.maximal_isr == (1, 2)
    part.produce(1, produce_request(Acks.ONE, ("a", "b")), 2)
    fetch(part, 2, 2, 3)
    assert part.high_watermark == 0  # follower 3 is at 0 and counts
    _, effects = fetch(part, 3, 2, 4)
    assert HighWatermarkUpdated(high_watermark=2) in effects


def test_the_leader_sends_the_hw_from_before_the_fetch_and_the_follower_caps_it_at_its_own_leo():
    part = leader(isr=(1, 2), min_isr=1)
    part.apply_registration(registration(isr=(1, 2), partition_epoch=1), 40_000)  # 3 long gone: not waited for
    part.produce(1, produce_request(Acks.ONE, ("a", "b")), 40_000)
    response, _ = fetch(part, 2, 2, 40_001)
    assert part.high_watermark == 2 and response.high_watermark == 0  # RFT learns it one fetch later
    follower = broker(2, log=log_of(*entries(*"ab")))
    follower.apply_registration(registration(isr=(1, 2), partition_epoch=1), 40_001)
    request = follower.build_fetch_request()
    assert follower.on_fetch_response(request, FetchResponse(error=Errors.NONE, high_watermark=5), 40_002) == [
        HighWatermarkUpdated(high_watermark=2)]


# --- ISR ------------------------------------------------------------------------------------------------------


def test_a_follower_joins_the_isr_when_it_reaches_the_hw_in_the_current_epoch():
    part = leader(isr=(1, 2), min_isr=1)
    part.produce(1, produce_request(Acks.ONE, ("a",)), 40_000)
    fetch(part, 2, 1, 40_000)
    assert part.high_watermark == 1
    _, effects = fetch(part, 3, 0, 40_001)
    assert effects == []  # below the HW
    _, effects = fetch(part, 3, 1, 40_002)
    [alter] = [e for e in effects if isinstance(e, SendAlterPartition)]
    assert alter.request.new_isr_with_epochs == ((1, 11), (2, 12), (3, 13))  # with broker epochs (KIP-903)
    assert part.maximal_isr == (1, 2, 3) and part.isr == (1, 2)  # counted at once, committed on the answer
    answer = AlterPartitionResponse(error=Errors.NONE, tp=TP, leader=1, isr=(1, 2, 3), leader_epoch=0,
                                    partition_epoch=1)
    part.on_alter_partition_response(alter.request, answer, 40_003)
    assert part.isr == (1, 2, 3) and part.partition_epoch == 1


def test_kip_903_a_fenced_replica_or_a_stale_broker_epoch_stays_out_of_the_isr():
    part = leader(isr=(1, 2), min_isr=1, fenced=(3,))
    _, effects = fetch(part, 3, 0, 1)
    assert effects == []  # fenced: not ISR-eligible
    part.update_broker(BrokerRegistration(broker_id=3, broker_epoch=20, fenced=False))  # a new incarnation
    response, effects = fetch(part, 3, 0, 2)  # a fetch still carrying the old incarnation's epoch 13
    assert response.error is Errors.NOT_LEADER_OR_FOLLOWER and effects == []
    _, effects = fetch(part, 3, 0, 3, replica_epoch=20)
    assert [e.request.new_isr_with_epochs for e in effects if isinstance(e, SendAlterPartition)] == [
        ((1, 11), (2, -1), (3, 20))]  # follower 2 has not fetched from this leader: -1, not checked


@pytest.mark.parametrize("error, isr_after, resent", [
    (Errors.INELIGIBLE_REPLICA, (1, 2), False),  # reset to the committed state
    (Errors.OPERATION_NOT_ATTEMPTED, (1, 2), False),
    (Errors.FENCED_LEADER_EPOCH, (1, 2, 3), False),  # stay pending, wait for metadata
    (Errors.INVALID_UPDATE_VERSION, (1, 2, 3), False),
    (Errors.NOT_CONTROLLER, (1, 2, 3), True),  # anything else: retried
])
def test_alter_partition_errors(error, isr_after, resent):
    part = leader(isr=(1, 2), min_isr=1)
    _, effects = fetch(part, 3, 0, 1)
    [alter] = effects
    effects = part.on_alter_partition_response(alter.request, AlterPartitionResponse(error=error, tp=TP), 2)
    assert part.maximal_isr == isr_after
    assert effects == ([alter] if resent else [])


def test_a_stale_alter_partition_answer_is_ignored():
    part = leader(isr=(1, 2), min_isr=1)
    [alter] = fetch(part, 3, 0, 1)[1]
    part.apply_registration(registration(isr=(1, 2), partition_epoch=1), 2)  # newer metadata came first
    answer = AlterPartitionResponse(error=Errors.NONE, tp=TP, leader=1, isr=(1, 2, 3), leader_epoch=0,
                                    partition_epoch=1)
    assert part.on_alter_partition_response(alter.request, answer, 3) == []
    assert part.isr == (1, 2)


# --- epochs and truncation ----------------------------------------------------------------------------------


def test_fetch_epoch_checks():
    part = leader()
    assert fetch(part, 2, 0, 1, leader_epoch=1)[0].error is Errors.UNKNOWN_LEADER_EPOCH
    part.apply_registration(registration(leader_epoch=2, partition_epoch=1), 1)
    assert fetch(part, 2, 0, 1, leader_epoch=1)[0].error is Errors.FENCED_LEADER_EPOCH
    follower = broker(2)
    follower.apply_registration(registration(leader_epoch=2, partition_epoch=1), 1)
    assert fetch(follower, 3, 0, 1, leader_epoch=2)[0].error is Errors.NOT_LEADER_OR_FOLLOWER


def test_acks_1_data_beyond_the_new_leaders_log_is_truncated_on_the_old_leader():
    # KIP-101 / KIP-279 via the diverging epoch of a fetch (P.readRecords, AFT.getOffsetTruncationState)
    old = leader(min_isr=1)
    old.produce(1, produce_request(Acks.ONE, ("a",)), 0)
    old.produce(3, produce_request(Acks.ONE, ("b",)), 0)  # b acknowledged, only here
    new = broker(2, log=log_of(*entries("a")))
    new.apply_registration(registration(leader=2, isr=(2, 3), leader_epoch=1, partition_epoch=1), 10)
    new.produce(2, produce_request(Acks.ONE, ("c",)), 10)
    old.apply_registration(registration(leader=2, isr=(2, 3), leader_epoch=1, partition_epoch=1), 10)
    request = old.build_fetch_request()
    assert (request.fetch_offset, request.last_fetched_epoch) == (2, 0)
    *_, answer = new.follower_fetch(5, request, 11)
    assert answer.response.diverging_epoch == DivergingEpoch(epoch=0, end_offset=1)
    assert old.on_fetch_response(request, answer.response, 11) == [
        LogTruncated(offset=1, removed=entries("b", start=1))]
    request = old.build_fetch_request()
    *_, answer = new.follower_fetch(6, request, 12)
    old.on_fetch_response(request, answer.response, 12)
    assert values_and_epochs(old.log) == [("a", 0), ("c", 1)]


def test_truncation_takes_several_rounds_when_the_follower_has_epochs_the_leader_never_had():
    # AFT.getOffsetTruncationState: an epoch unknown to the follower -> truncate to the end of the largest epoch
    # below it, and fetch again
    leader_log = log_of(*entries("a", epoch=0), *entries("x", epoch=1, start=1), *entries("y", epoch=3, start=2))
    follower_log = log_of(*entries("a", epoch=0), *entries("p", "q", epoch=2, start=1))
    lead = broker(1, log=leader_log)
    lead.apply_registration(registration(leader=1, leader_epoch=4, partition_epoch=4), 0)
    follower = broker(2, log=follower_log)
    follower.apply_registration(registration(leader=1, leader_epoch=4, partition_epoch=4), 0)
    rounds = []
    for now in range(1, 5):
        request = follower.build_fetch_request()
        *_, answer = lead.follower_fetch(now, request, now)
        rounds.append((request.last_fetched_epoch, answer.response.diverging_epoch))
        follower.on_fetch_response(request, answer.response, now)
    # epoch 1 ends at 2 on the leader; the follower never had epoch 1: it truncates to where its epoch 0 ends
    # (offset 1), and the next fetch, from epoch 0, agrees with the leader
    assert rounds[:2] == [(2, DivergingEpoch(epoch=1, end_offset=2)), (0, None)]
    assert values_and_epochs(follower.log) == [("a", 0), ("x", 1), ("y", 3)]


def test_a_new_leader_records_its_epoch_before_any_write_and_answers_offsets_for_leader_epoch():
    part = broker(1, log=log_of(*entries("a", "b")))
    part.apply_registration(registration(leader_epoch=3, partition_epoch=3), 0)
    assert part.log.epoch_cache.latest_epoch == 3
    assert responses(part.offsets_for_leader_epoch(1, OffsetsForLeaderEpochRequest(leader_epoch=0))) == {
        1: OffsetsForLeaderEpochResponse(error=Errors.NONE, leader_epoch=0, end_offset=2)}
    assert responses(part.offsets_for_leader_epoch(2, OffsetsForLeaderEpochRequest(leader_epoch=3))) == {
        2: OffsetsForLeaderEpochResponse(error=Errors.NONE, leader_epoch=3, end_offset=2)}


def test_a_stale_or_failed_fetch_response_changes_nothing():
    follower = broker(2)
    follower.apply_registration(registration(), 0)
    request = follower.build_fetch_request()
    stale = FetchRequest(replica_id=2, replica_epoch=12, fetch_offset=0, last_fetched_epoch=None,
                         current_leader_epoch=-5)
    assert follower.on_fetch_response(stale, FetchResponse(error=Errors.NONE, records=entries("a")), 1) == []
    assert follower.on_fetch_response(request, FetchResponse(error=Errors.FENCED_LEADER_EPOCH), 1) == []
    assert follower.log_end_offset == 0


def test_a_crash_keeps_the_log_and_forgets_the_rest():
    part = leader(min_isr=1)
    part.produce(1, produce_request(Acks.ALL, ("a",)), 0)
    assert part.crash() == []
    assert part.role is Role.OFFLINE and part.log_end_offset == 1 and part.next_deadline() is None
    with pytest.raises(IllegalTransition):
        part.produce(2, produce_request(Acks.ONE, ("b",)), 1)
    part.restart(21)
    assert (part.role, part.broker_epoch, part.leader_epoch) == (Role.NONE, 21, -1)


def test_an_empty_produce_request_cannot_be_built():
    with pytest.raises(ValueError):
        produce_request(Acks.ONE, ())


def test_a_broker_that_is_not_a_replica_is_a_model_error():
    with pytest.raises(ModelError):
        Partition(TP, 9, ReplicationConfig()).apply_registration(registration(), 0)


# --- the role table, h11-style: every (role, event) pair --------------------------------------------------


def in_role(role: Role) -> Partition:
    part = broker(2)
    if role is Role.LEADER:
        part.apply_registration(registration(leader=2), 0)
    elif role is Role.FOLLOWER:
        part.apply_registration(registration(leader=1), 0)
    elif role is Role.OFFLINE:
        part.crash()
    return part


def send(part: Partition, event: Event, epoch: int):
    match event:
        case Event.PRODUCE:
            return part.produce(1, produce_request(Acks.ALL, ("v",)), 1)
        case Event.FOLLOWER_FETCH:
            return part.follower_fetch(2, FetchRequest(replica_id=3, replica_epoch=13, fetch_offset=0,
                                                       last_fetched_epoch=None, current_leader_epoch=epoch), 1)
        case Event.OFFSETS_FOR_LEADER_EPOCH:
            return part.offsets_for_leader_epoch(3, OffsetsForLeaderEpochRequest(leader_epoch=0))
        case Event.BUILD_FETCH:
            return part.build_fetch_request()
        case Event.FETCH_RESPONSE:
            request = FetchRequest(replica_id=2, replica_epoch=12, fetch_offset=0, last_fetched_epoch=None,
                                   current_leader_epoch=epoch)
            return part.on_fetch_response(request, FetchResponse(error=Errors.NONE, records=entries("z"),
                                                                 high_watermark=0), 1)
        case Event.ALTER_PARTITION_RESPONSE:
            request = AlterPartitionRequest(broker_id=2, tp=TP, leader_epoch=0, partition_epoch=0,
                                            new_isr_with_epochs=((2, 12),))
            return part.on_alter_partition_response(request, AlterPartitionResponse(error=Errors.NONE, tp=TP), 1)
        case Event.ISR_EXPIRATION:
            return part.maybe_shrink_isr(40_000)
        case Event.PRODUCE_EXPIRATION:
            return part.expire_delayed_produces(40_000)
        case Event.BROKER_CHANGE:
            return part.update_broker(BrokerRegistration(broker_id=3, broker_epoch=13, fenced=False))
        case Event.BECOME_LEADER:
            return part.apply_registration(registration(leader=2, leader_epoch=epoch + 1, partition_epoch=5), 1)
        case Event.BECOME_FOLLOWER:
            return part.apply_registration(registration(leader=1, leader_epoch=epoch + 1, partition_epoch=5), 1)
        case Event.CRASH:
            return part.crash()
        case Event.RESTART:
            return part.restart(30)
    raise AssertionError(event)


@settings(max_examples=200, deadline=None)
@given(role=st.sampled_from(Role), event=st.sampled_from(Event), epoch_delta=st.integers(-1, 1))
def test_every_event_in_every_role_follows_the_table_or_raises(role, event, epoch_delta):
    part = in_role(role)
    before = part.role
    if (before, event) not in TRANSITIONS:
        with pytest.raises(IllegalTransition):
            send(part, event, part.leader_epoch + epoch_delta)
        assert part.role is before
    else:
        send(part, event, part.leader_epoch + epoch_delta)
        assert part.role is TRANSITIONS[(before, event)]


def test_the_table_lists_what_kafka_allows():
    running = (Role.NONE, Role.FOLLOWER, Role.LEADER)
    assert {(r, e) for r, e in itertools.product(Role, Event) if (r, e) in TRANSITIONS and r is Role.OFFLINE} == {
        (Role.OFFLINE, Event.RESTART), (Role.OFFLINE, Event.CRASH)}  # killed again before its registration
    assert all((r, Event.CRASH) in TRANSITIONS for r in running)
    assert [r for r in Role if (r, Event.BUILD_FETCH) in TRANSITIONS] == [Role.FOLLOWER]
    assert all(TRANSITIONS[(r, Event.BECOME_LEADER)] is Role.LEADER for r in running)


# --- producer state on replicas (models/log.py's PartitionLog) ------------------------------------------------


def idempotent(value: str, sequence: int) -> RecordBatch:
    return RecordBatch(records=(Record(None, value),), producer_id=7, producer_epoch=0, base_sequence=sequence)


def test_a_new_leader_deduplicates_a_batch_it_copied_from_the_old_one():
    # UL.appendAsFollower rebuilds producer state from the copied batches, so the retry after a failover is
    # found by UL.analyzeAndValidateProducerState's duplicate check and answered with the original offset
    old = leader(min_isr=1)
    old.produce(1, ProduceRequest(acks=Acks.ONE, batch=idempotent("a", 0)), 0)
    follower = broker(2)
    follower.apply_registration(registration(), 0)
    request = follower.build_fetch_request()
    *_, answer = old.follower_fetch(2, request, 1)
    follower.on_fetch_response(request, answer.response, 1)
    assert [b.partition_leader_epoch for b in follower.log.batches] == [0]
    follower.apply_registration(registration(leader=2, isr=(2, 3), leader_epoch=1, partition_epoch=1), 2)
    effects = follower.produce(3, ProduceRequest(acks=Acks.ONE, batch=idempotent("a", 0)), 3)
    [appended] = [e for e in effects if isinstance(e, LogAppended)]
    assert appended.result.duplicate and follower.log_end_offset == 1
    assert responses(effects) == {3: ProduceResponse(error=Errors.NONE, base_offset=0)}
    # the next sequence goes on; a gap is refused as the old leader would have
    assert responses(follower.produce(4, ProduceRequest(acks=Acks.ONE, batch=idempotent("b", 1)), 4)) == {
        4: ProduceResponse(error=Errors.NONE, base_offset=1)}
    assert responses(follower.produce(5, ProduceRequest(acks=Acks.ONE, batch=idempotent("d", 3)), 5)) == {
        5: ProduceResponse(error=Errors.OUT_OF_ORDER_SEQUENCE_NUMBER)}


def test_truncation_rebuilds_producer_state_so_a_truncated_batch_is_appended_again():
    # PSM.truncateAndReload: after the old leader truncates its unreplicated batch, its sequence is free again
    old = leader(min_isr=1)
    old.produce(1, ProduceRequest(acks=Acks.ONE, batch=idempotent("a", 0)), 0)
    old.produce(2, ProduceRequest(acks=Acks.ONE, batch=idempotent("b", 1)), 0)  # only on the old leader
    new = broker(2, log=log_of(old.log.batches[0]))
    new.apply_registration(registration(leader=2, isr=(2, 3), leader_epoch=1, partition_epoch=1), 10)
    old.apply_registration(registration(leader=2, isr=(2, 3), leader_epoch=1, partition_epoch=1), 10)
    request = old.build_fetch_request()
    *_, answer = new.follower_fetch(5, request, 11)
    [truncated] = old.on_fetch_response(request, answer.response, 11)
    assert truncated.offset == 1 and old.log.producer_state_manager.last_entry(7).last_seq == 0
    # the producer's retry of b lands on the new leader, then copies back to the old one
    new.produce(6, ProduceRequest(acks=Acks.ONE, batch=idempotent("b", 1)), 12)
    request = old.build_fetch_request()
    *_, answer = new.follower_fetch(7, request, 13)
    old.on_fetch_response(request, answer.response, 13)
    assert values_and_epochs(old.log) == [("a", 0), ("b", 1)]
    assert old.log.producer_state_manager.last_entry(7).last_seq == 1
