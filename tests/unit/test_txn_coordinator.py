"""Transaction coordinator rules, each against the Kafka 4.1 behaviour it reproduces.

Sources: TransactionCoordinator.scala (TCo), TransactionMetadata.scala (TMd), TransactionStateManager.scala (TSM),
TransactionMarkerChannelManager.scala (TMCM), TransactionMarkerRequestCompletionHandler.scala (TMRCH), KafkaApis.
"""

from __future__ import annotations

import pytest

from eosim.models.config import BrokerConfig
from eosim.models.errors import Errors, ModelError
from eosim.models.records import CONSUMER_OFFSETS_TOPIC, MAX_EPOCH, TopicPartition, TransactionResult, partition_for
from eosim.models.txn_coordinator import (
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    AppendTxnLog,
    EndTxnRequest,
    EndTxnResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    Respond,
    SendTxnMarkers,
    TransactionCoordinator,
    TransactionState,
    TxnStateChanged,
)

S = TransactionState
NONE = Errors.NONE
TID = "txn-1"
P0, P1, P2 = TopicPartition("out", 0), TopicPartition("out", 1), TopicPartition("out", 2)
FIRST_PID = 1000
TIMEOUT = 60_000


# --- a tiny driver --------------------------------------------------------------------------------------


def make(tv: int = 2, **config) -> TransactionCoordinator:
    return TransactionCoordinator(BrokerConfig(transaction_version=tv, **config), first_producer_id=FIRST_PID)


def of(effects, kind):
    return [e for e in effects if isinstance(e, kind)]


def the_append(effects) -> AppendTxnLog:
    (append,) = of(effects, AppendTxnLog)
    return append


def the_response(effects):
    (respond,) = of(effects, Respond)
    return respond.response


def the_markers(effects) -> SendTxnMarkers:
    (send,) = of(effects, SendTxnMarkers)
    return send


def durable(c, effects, now=0, error=NONE):
    return c.on_log_append(the_append(effects).write_id, error, now)


def init_req(tid=TID, timeout=TIMEOUT, pid=-1, epoch=-1):
    return InitProducerIdRequest(transactional_id=tid, transaction_timeout_ms=timeout, producer_id=pid,
                                 producer_epoch=epoch)


def add_req(pid, epoch, *partitions, tid=TID, verify_only=False, tv=1):
    return AddPartitionsToTxnRequest(transactional_id=tid, producer_id=pid, producer_epoch=epoch,
                                     partitions=partitions, verify_only=verify_only, transaction_version=tv)


def end_req(pid, epoch, commit, tv, tid=TID):
    return EndTxnRequest(transactional_id=tid, producer_id=pid, producer_epoch=epoch, committed=commit,
                         transaction_version=tv)


def init(c, now=0, **kw) -> tuple[int, int]:
    response = the_response(durable(c, c.handle(1, init_req(**kw), now), now))
    assert response.error is NONE
    return response.producer_id, response.producer_epoch


def begin(c, pid, epoch, *partitions, now=0, tv=1):
    response = the_response(durable(c, c.handle(2, add_req(pid, epoch, *partitions, tv=tv), now), now))
    assert {e for _, e in response.results} == {NONE}


def prepare(c, pid, epoch, commit, tv, now=0):
    """EndTxn whose Prepare* write is durable: returns (response, effects after the write)."""
    effects = durable(c, c.handle(3, end_req(pid, epoch, commit, tv), now), now)
    return the_response(effects), effects


def complete(c, effects, now=0):
    """Ack every marker of ``effects`` and make the Complete* write durable."""
    out = []
    for send in of(effects, SendTxnMarkers):
        for partition in send.entry.partitions:
            out += c.on_marker_result(send.entry, partition, NONE, now)
    pending = of(effects, AppendTxnLog) + of(out, AppendTxnLog)
    (append,) = pending
    assert append.record.state in (S.COMPLETE_COMMIT, S.COMPLETE_ABORT)
    return c.on_log_append(append.write_id, NONE, now)


def seed_epoch(c, epoch, tid=TID):
    """Put the durable epoch at ``epoch`` (as if reloaded from the log), instead of bumping 30000 times."""
    c._txns[tid].producer_epoch = epoch


def meta(c, tid=TID):
    return c.metadata(tid)


# --- InitProducerId -------------------------------------------------------------------------------------


def test_init_idempotent_producer_gets_a_new_pid_at_epoch_0_and_no_state():
    c = make()
    for cid, pid in ((1, FIRST_PID), (2, FIRST_PID + 1)):
        effects = c.handle(cid, init_req(tid=None), 0)
        assert effects == [Respond(correlation_id=cid, response=InitProducerIdResponse(error=NONE, producer_id=pid,
                                                                                         producer_epoch=0))]
    assert c.metadata("") is None


def test_init_empty_transactional_id_is_invalid_request():
    assert the_response(make().handle(1, init_req(tid=""), 0)).error is Errors.INVALID_REQUEST


@pytest.mark.parametrize(("pid", "epoch"), [(5, -1), (-1, 5)])
def test_init_half_expected_pid_epoch_is_invalid_request(pid, epoch):
    # KafkaApis.handleInitProducerIdRequest: both -1 or both set.
    assert the_response(make().handle(1, init_req(pid=pid, epoch=epoch), 0)).error is Errors.INVALID_REQUEST


@pytest.mark.parametrize(("timeout", "error"), [(0, Errors.INVALID_TRANSACTION_TIMEOUT),
                                                (-1, Errors.INVALID_TRANSACTION_TIMEOUT),
                                                (900_001, Errors.INVALID_TRANSACTION_TIMEOUT),
                                                (900_000, None)])
def test_init_transaction_timeout_bounds(timeout, error):
    effects = make().handle(1, init_req(timeout=timeout), 0)
    if error is None:
        assert the_append(effects).record.txn_timeout_ms == timeout
    else:
        assert the_response(effects).error is error


def test_init_new_transactional_id_replies_after_the_log_write():
    c = make()
    effects = c.handle(7, init_req(), now=5)
    assert not of(effects, Respond)  # no reply before the write is durable
    record = the_append(effects).record
    assert (record.producer_id, record.producer_epoch, record.last_producer_epoch, record.state) == (
        FIRST_PID, 0, -1, S.EMPTY)
    assert meta(c).producer_epoch == -1  # cached at epoch -1 until the write completes
    effects = c.on_log_append(the_append(effects).write_id, NONE, 6)
    assert effects == [
        TxnStateChanged(transactional_id=TID, old=S.EMPTY, new=S.EMPTY, producer_id=FIRST_PID, producer_epoch=0,
                        txn_timeout_ms=TIMEOUT),
        Respond(correlation_id=7, response=InitProducerIdResponse(error=NONE, producer_id=FIRST_PID,
                                                                  producer_epoch=0)),
    ]


def test_init_again_bumps_the_epoch_and_fences_the_old_instance():
    c = make(tv=1)
    pid, old = init(c)
    assert init(c) == (pid, old + 1)
    assert meta(c).last_producer_epoch == -1  # no expected epoch: every older instance is fenced
    assert the_response(c.handle(2, add_req(pid, old, P0), 0)).results == ((P0, Errors.PRODUCER_FENCED),)
    assert the_response(c.handle(3, end_req(pid, old, True, tv=1), 0)).error is Errors.PRODUCER_FENCED


def test_init_concurrent_transactions_while_a_write_is_pending():
    c = make()
    init(c)
    c.handle(1, init_req(), 0)
    assert the_response(c.handle(2, init_req(), 0)).error is Errors.CONCURRENT_TRANSACTIONS


def test_kip360_expected_current_epoch_bumps_and_records_the_last_epoch():
    c = make()
    pid, epoch = init(c)
    assert init(c, pid=pid, epoch=epoch) == (pid, epoch + 1)
    assert meta(c).last_producer_epoch == epoch


def test_kip360_retry_with_the_last_epoch_returns_the_same_epoch():
    c = make()
    pid, epoch = init(c)
    init(c, pid=pid, epoch=epoch)
    # The client never saw epoch+1 and retries with its old epoch: no second bump.
    assert init(c, pid=pid, epoch=epoch) == (pid, epoch + 1)


def test_kip360_stale_expected_epoch_or_unknown_pid_is_producer_fenced():
    c = make()
    pid, epoch = init(c)
    init(c)  # a new instance: lastEpoch = -1
    assert the_response(c.handle(1, init_req(pid=pid, epoch=epoch), 0)).error is Errors.PRODUCER_FENCED
    assert the_response(c.handle(2, init_req(pid=pid + 50, epoch=1), 0)).error is Errors.PRODUCER_FENCED


def test_kip360_any_expected_pid_is_accepted_while_the_epoch_is_minus_one():
    c = make()
    durable(c, c.handle(1, init_req(), 0), error=Errors.NOT_ENOUGH_REPLICAS)  # metadata stays at epoch -1
    assert init(c, pid=77, epoch=3) == (FIRST_PID, 0)


@pytest.mark.parametrize("tv", [1, 2])
def test_fencing_by_a_second_init_producer_id(tv):
    """The zombie at epoch e: its txn is aborted with markers at e+1, the new instance ends up at e+2."""
    c = make(tv=tv)
    pid, e = init(c)
    begin(c, pid, e, P0)
    effects = c.handle(9, init_req(), 0)
    record = the_append(effects).record
    assert (record.state, record.producer_epoch) == (S.PREPARE_ABORT, e + 1)
    assert record.last_producer_epoch == (-1 if tv == 1 else e)
    assert not of(effects, Respond)
    effects = durable(c, effects)
    assert the_response(effects) == InitProducerIdResponse(error=Errors.CONCURRENT_TRANSACTIONS)
    marker = the_markers(effects).entry
    assert (marker.producer_id, marker.producer_epoch, marker.result, marker.partitions) == (
        pid, e + 1, TransactionResult.ABORT, (P0,))
    # The retry while the markers are out: CONCURRENT_TRANSACTIONS again.
    assert the_response(c.handle(10, init_req(), 0)).error is Errors.CONCURRENT_TRANSACTIONS
    complete(c, effects)
    assert meta(c).state is S.COMPLETE_ABORT
    assert init(c) == (pid, e + 2)
    # The zombie's commit is refused.
    assert the_response(c.handle(11, end_req(pid, e, True, tv=tv), 0)).error is Errors.PRODUCER_FENCED


def test_kafka_19367_tv2_fence_abort_bumps_the_epoch_once():
    c = make(tv=2)
    pid, _ = init(c)
    seed_epoch(c, 10)
    begin(c, pid, 10, P0)
    record = the_append(c.handle(1, init_req(), 0)).record
    # Before KAFKA-19367 the fence (+1) and the TV2 abort (+1) both bumped: 12.
    assert (record.producer_epoch, record.last_producer_epoch) == (11, 10)


def test_concurrent_transactions_on_quick_reinit_while_markers_are_pending():
    c = make(tv=1)
    pid, e = init(c)
    begin(c, pid, e, P0, P1)
    _, effects = prepare(c, pid, e, True, tv=1)
    entry = the_markers(effects).entry
    assert the_response(c.handle(5, init_req(), 0)).error is Errors.CONCURRENT_TRANSACTIONS
    assert c.on_marker_result(entry, P0, NONE, 0) == []
    assert the_response(c.handle(6, init_req(), 0)).error is Errors.CONCURRENT_TRANSACTIONS
    done = c.on_marker_result(entry, P1, NONE, 0)
    c.on_log_append(the_append(done).write_id, NONE, 0)
    assert init(c) == (pid, e + 1)


def test_epoch_bump_up_to_32766_then_the_producer_id_rotates():
    c = make()
    pid, _ = init(c)
    seed_epoch(c, MAX_EPOCH - 2)
    assert init(c) == (pid, MAX_EPOCH - 1)  # 32766 is handed out, 32767 never is
    assert init(c) == (FIRST_PID + 1, 0)
    m = meta(c)
    assert (m.prev_producer_id, m.last_producer_epoch) == (pid, -1)


def test_epoch_exhaustion_with_expected_epoch_rotates_and_a_retry_gets_the_same_new_pid():
    c = make()
    pid, _ = init(c)
    seed_epoch(c, MAX_EPOCH - 1)
    assert init(c, pid=pid, epoch=MAX_EPOCH - 1) == (FIRST_PID + 1, 0)
    assert meta(c).last_producer_epoch == MAX_EPOCH - 1
    # The response was lost: the retry names the old pid, valid because its epoch is exhausted (KIP-360).
    assert init(c, pid=pid, epoch=MAX_EPOCH - 1) == (FIRST_PID + 1, 0)


def test_init_expected_epoch_mismatch_at_an_exhausted_epoch_is_unknown_server_error():
    # TMd.prepareIncrementProducerEpoch throws IllegalStateException in 4.1; KafkaApis answers UNKNOWN_SERVER_ERROR.
    c = make()
    pid, _ = init(c)
    seed_epoch(c, MAX_EPOCH - 1)
    assert the_response(c.handle(1, init_req(pid=pid, epoch=5), 0)).error is Errors.UNKNOWN_SERVER_ERROR
    assert meta(c).producer_epoch == MAX_EPOCH - 1
    assert init(c) == (FIRST_PID + 1, 0)  # nothing is left pending


def test_kafka_9666_tv1_failed_fence_does_not_bump_again():
    c = make(tv=1)
    pid, e = init(c)
    begin(c, pid, e, P0)
    for cid in range(3):  # __transaction_state below min ISR: every fence write fails
        effects = c.handle(cid, init_req(), 0)
        assert the_append(effects).record.producer_epoch == e + 1
        assert the_response(durable(c, effects, error=Errors.NOT_ENOUGH_REPLICAS)).error is (
            Errors.COORDINATOR_NOT_AVAILABLE)
        m = meta(c)
        assert (m.state, m.producer_epoch) == (S.ONGOING, e + 1)  # TV1 bumps in memory before the write
    # The timeout sweeper does not bump again either.
    effects = c.abort_timed_out_transactions(10**9)
    assert the_append(effects).record.producer_epoch == e + 1
    complete(c, durable(c, effects))
    # The completion clears the flag: the next fence bumps again.
    assert init(c) == (pid, e + 2)
    begin(c, pid, e + 2, P0)
    assert the_append(c.handle(9, init_req(), 0)).record.producer_epoch == e + 3


def test_kafka_9666_tv2_failed_fence_leaves_the_epoch_and_the_retry_bumps_once():
    c = make(tv=2)
    pid, e = init(c)
    begin(c, pid, e, P0)
    effects = c.handle(1, init_req(), 0)
    durable(c, effects, error=Errors.NOT_ENOUGH_REPLICAS)
    assert meta(c).producer_epoch == e
    assert not c._txns[TID].has_failed_epoch_fence  # TV2 never sets it
    record = the_append(c.handle(2, init_req(), 0)).record
    assert (record.producer_epoch, record.last_producer_epoch) == (e + 1, e)


# --- AddPartitionsToTxn ---------------------------------------------------------------------------------


def test_add_partitions_unknown_or_empty_transactional_id():
    c = make()
    assert the_response(c.handle(1, add_req(1, 0, P0), 0)).results == ((P0, Errors.INVALID_PRODUCER_ID_MAPPING),)
    assert the_response(c.handle(2, add_req(1, 0, P0, tid=""), 0)).results == ((P0, Errors.INVALID_REQUEST),)


def test_add_partitions_pending_is_checked_before_the_producer_id():
    # KAFKA-18660 moved the pending check first (the client may already hold a pid that is only pending).
    c = make()
    pid, e = init(c)
    c.handle(1, add_req(pid, e, P0), 0)
    assert the_response(c.handle(2, add_req(pid + 1, e, P1), 0)).results == ((P1, Errors.CONCURRENT_TRANSACTIONS),)


def test_add_partitions_wrong_pid_or_epoch():
    c = make()
    pid, e = init(c)
    assert the_response(c.handle(1, add_req(pid + 1, e, P0), 0)).results == (
        (P0, Errors.INVALID_PRODUCER_ID_MAPPING),)
    assert the_response(c.handle(2, add_req(pid, e + 1, P0), 0)).results == ((P0, Errors.PRODUCER_FENCED),)


def test_add_partitions_during_prepare_is_concurrent_transactions():
    c = make(tv=1)
    pid, e = init(c)
    begin(c, pid, e, P0)
    prepare(c, pid, e, True, tv=1)
    assert the_response(c.handle(1, add_req(pid, e, P1), 0)).results == ((P1, Errors.CONCURRENT_TRANSACTIONS),)


def test_add_partitions_already_in_the_txn_replies_none_without_a_write():
    c = make()
    pid, e = init(c)
    begin(c, pid, e, P0, P1)
    effects = c.handle(1, add_req(pid, e, P1), 0)
    assert effects == [Respond(correlation_id=1, response=AddPartitionsToTxnResponse(results=((P1, NONE),)))]


def test_add_partitions_starts_the_txn_clock_at_the_first_add():
    c = make()
    pid, e = init(c, now=0)
    begin(c, pid, e, P1, now=100)
    effects = c.handle(1, add_req(pid, e, P0, P2), 250)
    record = the_append(effects).record
    assert (record.partitions, record.txn_start_timestamp, record.txn_last_update_timestamp) == (
        (P0, P1, P2), 100, 250)
    assert the_response(durable(c, effects)).results == ((P0, NONE), (P2, NONE))


@pytest.mark.parametrize(("tv", "recorded"), [(1, 0), (2, 2)])
def test_add_partitions_records_kafkas_client_transaction_version(tv, recorded):
    # TransactionVersion.transactionVersionForAddPartitionsToTxn: v<=3 from a client is TV_0, v4+ (broker) TV_2.
    c = make()
    pid, e = init(c)
    assert the_append(c.handle(1, add_req(pid, e, P0, tv=tv), 0)).record.client_transaction_version == recorded


# --- verify-only (KIP-890 part 1) -----------------------------------------------------------------------


def test_verify_only_partition_not_in_the_txn_is_transaction_abortable():
    c = make()
    pid, e = init(c)
    begin(c, pid, e, P0)
    effects = c.handle(1, add_req(pid, e, P1, P0, verify_only=True), 0)
    assert effects == [Respond(correlation_id=1, response=AddPartitionsToTxnResponse(
        results=((P0, NONE), (P1, Errors.TRANSACTION_ABORTABLE))))]


def test_verify_only_ignores_a_pending_write_and_never_writes():
    c = make()
    pid, e = init(c)
    begin(c, pid, e, P0)
    c.handle(1, add_req(pid, e, P1), 0)  # in flight: P1 is not in the txn yet
    assert the_response(c.handle(2, add_req(pid, e, P0, P1, verify_only=True), 0)).results == (
        (P0, NONE), (P1, Errors.TRANSACTION_ABORTABLE))


def test_verify_only_errors():
    c = make(tv=1)
    pid, e = init(c)
    begin(c, pid, e, P0)

    def verify(pid_, epoch_, tid=TID):
        return the_response(c.handle(1, add_req(pid_, epoch_, P0, tid=tid, verify_only=True), 0)).results

    assert verify(pid, e, tid="") == ((P0, Errors.INVALID_REQUEST),)
    assert verify(pid, e, tid="other") == ((P0, Errors.INVALID_PRODUCER_ID_MAPPING),)
    assert verify(pid + 1, e) == ((P0, Errors.INVALID_PRODUCER_ID_MAPPING),)
    assert verify(pid, e + 1) == ((P0, Errors.PRODUCER_FENCED),)
    prepare(c, pid, e, True, tv=1)
    assert verify(pid, e) == ((P0, Errors.CONCURRENT_TRANSACTIONS),)


# --- AddOffsetsToTxn ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("partitions", "expected"), [(50, 36), (7, 1)])
def test_add_offsets_adds_the_groups_offsets_partition(partitions, expected):
    c = make(offsets_topic_num_partitions=partitions)
    pid, e = init(c)
    effects = c.handle(1, AddOffsetsToTxnRequest(transactional_id=TID, producer_id=pid, producer_epoch=e,
                                                 group_id="my-group"), 0)
    record = the_append(effects).record
    assert partition_for("my-group", partitions) == expected  # "my-group".hashCode() = -1906497762
    assert record.partitions == (TopicPartition(CONSUMER_OFFSETS_TOPIC, expected),)
    assert record.client_transaction_version == 0  # KafkaApis: always TV_0
    assert the_response(durable(c, effects)) == AddOffsetsToTxnResponse(error=NONE)


def test_add_offsets_errors_use_its_own_response():
    c = make()
    request = AddOffsetsToTxnRequest(transactional_id=TID, producer_id=1, producer_epoch=0, group_id="g")
    assert the_response(c.handle(1, request, 0)) == AddOffsetsToTxnResponse(error=Errors.INVALID_PRODUCER_ID_MAPPING)


# --- EndTxn, TV1 (EndTxn <= v4) -------------------------------------------------------------------------


def test_end_txn_tv1_commit_prepares_at_the_same_epoch_and_replies_none_after_the_write():
    c = make(tv=2)  # the request's version decides the path, not the server's
    pid, e = init(c)
    begin(c, pid, e, P0, P1)
    effects = c.handle(3, end_req(pid, e, True, tv=1), 10)
    record = the_append(effects).record
    assert (record.state, record.producer_epoch, record.client_transaction_version) == (S.PREPARE_COMMIT, e, 0)
    assert not of(effects, Respond)
    effects = durable(c, effects, now=11)
    assert [type(x) for x in effects] == [TxnStateChanged, Respond, SendTxnMarkers]
    assert the_response(effects) == EndTxnResponse(error=NONE, producer_id=-1, producer_epoch=-1)
    entry = the_markers(effects).entry
    assert (entry.producer_id, entry.producer_epoch, entry.result, entry.partitions) == (
        pid, e, TransactionResult.COMMIT, (P0, P1))
    complete(c, effects)
    assert (meta(c).state, meta(c).producer_epoch, meta(c).partitions) == (S.COMPLETE_COMMIT, e, ())


@pytest.mark.parametrize("commit", [True, False])
def test_end_txn_tv1_retry_after_completion_is_none(commit):
    c = make(tv=1)
    pid, e = init(c)
    begin(c, pid, e, P0)
    complete(c, prepare(c, pid, e, commit, tv=1)[1])
    assert the_response(c.handle(4, end_req(pid, e, commit, tv=1), 0)) == EndTxnResponse(error=NONE)
    # The other result does not match the completed one.
    assert the_response(c.handle(5, end_req(pid, e, not commit, tv=1), 0)).error is Errors.INVALID_TXN_STATE


@pytest.mark.parametrize("commit", [True, False])
def test_end_txn_tv1_in_empty_is_invalid_txn_state(commit):
    c = make(tv=1)
    pid, e = init(c)
    assert the_response(c.handle(1, end_req(pid, e, commit, tv=1), 0)).error is Errors.INVALID_TXN_STATE


def test_end_txn_tv1_while_markers_are_pending_is_concurrent_transactions():
    c = make(tv=1)
    pid, e = init(c)
    begin(c, pid, e, P0)
    prepare(c, pid, e, True, tv=1)
    assert the_response(c.handle(4, end_req(pid, e, True, tv=1), 0)).error is Errors.CONCURRENT_TRANSACTIONS


@pytest.mark.parametrize("delta", [-1, 1])
def test_kafka_9600_end_txn_tv1_strict_epoch_check(delta):
    c = make(tv=1)
    pid, e = init(c)
    init(c)
    begin(c, pid, e + 1, P0)
    assert the_response(c.handle(1, end_req(pid, e + 1 + delta, True, tv=1), 0)).error is Errors.PRODUCER_FENCED


def test_end_txn_unknown_id_wrong_pid_or_empty_id():
    c = make(tv=1)
    assert the_response(c.handle(1, end_req(1, 0, True, tv=1), 0)).error is Errors.INVALID_PRODUCER_ID_MAPPING
    pid, e = init(c)
    begin(c, pid, e, P0)
    for tv in (1, 2):
        assert the_response(c.handle(2, end_req(pid + 1, e, True, tv=tv), 0)).error is (
            Errors.INVALID_PRODUCER_ID_MAPPING)
        assert the_response(c.handle(3, end_req(pid, e, True, tv=tv, tid=""), 0)).error is Errors.INVALID_REQUEST


# --- EndTxn, TV2 (EndTxn v5+) ---------------------------------------------------------------------------


def test_end_txn_tv2_commit_bumps_the_epoch_and_replies_the_post_completion_pid_epoch():
    c = make()
    pid, e = init(c)
    begin(c, pid, e, P0, tv=2)
    effects = c.handle(3, end_req(pid, e, True, tv=2), 0)
    record = the_append(effects).record
    assert (record.state, record.producer_epoch, record.last_producer_epoch, record.client_transaction_version) == (
        S.PREPARE_COMMIT, e + 1, e, 2)
    effects = durable(c, effects)
    assert the_response(effects) == EndTxnResponse(error=NONE, producer_id=pid, producer_epoch=e + 1)
    assert the_markers(effects).entry.producer_epoch == e + 1  # markers at the bumped epoch (KIP-890 part 2)
    assert the_markers(effects).entry.transaction_version == 2
    complete(c, effects)
    assert (meta(c).state, meta(c).producer_epoch) == (S.COMPLETE_COMMIT, e + 1)


def test_end_txn_tv2_retry_after_completion_returns_the_stored_pid_epoch():
    c = make()
    pid, e = init(c)
    begin(c, pid, e, P0, tv=2)
    complete(c, prepare(c, pid, e, True, tv=2)[1])
    assert the_response(c.handle(4, end_req(pid, e, True, tv=2), 0)) == EndTxnResponse(
        error=NONE, producer_id=pid, producer_epoch=e + 1)


def test_end_txn_tv2_one_behind_a_tv1_completed_abort_passes_as_a_retry():
    """Kafka picks the EndTxn path by the request's version and the TV2 path ignores the stored
    clientTransactionVersion (kafka_2.13 4.0.0-4.4.0, TransactionCoordinator.endTransaction): a TV2 zombie's
    abort one epoch behind a transaction its TV1 successor aborted (no bump) is a "retry", answered with the
    successor's epoch. Measured on Kafka 4.1.2: experiments/scenarios/mixed-tv-abort-revives-zombie.toml."""
    c = make()
    pid, zombie = init(c)
    _, live = init(c, pid=-1, epoch=-1)  # the TV1 successor fences the TV2 instance
    assert live == zombie + 1
    begin(c, pid, live, P0, tv=1)
    response, effects = prepare(c, pid, live, False, tv=1)
    assert response == EndTxnResponse(error=NONE)  # TV1: the abort bumps nothing
    assert the_response(c.handle(4, end_req(pid, zombie, False, tv=2), 0)).error is Errors.CONCURRENT_TRANSACTIONS
    complete(c, effects)
    assert (meta(c).state, meta(c).producer_epoch) == (S.COMPLETE_ABORT, live)
    assert the_response(c.handle(5, end_req(pid, zombie, False, tv=2), 0)) == EndTxnResponse(
        error=NONE, producer_id=pid, producer_epoch=live)
    # one ahead is no retry: fenced
    assert the_response(c.handle(6, end_req(pid, live + 1, False, tv=2), 0)).error is Errors.PRODUCER_FENCED


def test_end_txn_tv2_empty_abort_completes_without_markers():
    c = make()
    pid, e = init(c, now=0)
    effects = c.handle(3, end_req(pid, e, False, tv=2), 40)
    record = the_append(effects).record
    assert (record.state, record.producer_epoch, record.partitions, record.txn_start_timestamp) == (
        S.PREPARE_ABORT, e + 1, (), 40)
    effects = durable(c, effects, now=41)
    assert not of(effects, SendTxnMarkers)
    assert the_response(effects) == EndTxnResponse(error=NONE, producer_id=pid, producer_epoch=e + 1)
    done = c.on_log_append(the_append(effects).write_id, NONE, 42)
    assert done == [TxnStateChanged(transactional_id=TID, old=S.PREPARE_ABORT, new=S.COMPLETE_ABORT,
                                    producer_id=pid, producer_epoch=e + 1, txn_timeout_ms=TIMEOUT)]


def test_end_txn_tv2_empty_commit_or_retry_epoch():
    c = make()
    pid, e = init(c)
    init(c)  # epoch e+1
    assert the_response(c.handle(1, end_req(pid, e + 1, True, tv=2), 0)).error is Errors.INVALID_TXN_STATE
    assert the_response(c.handle(2, end_req(pid, e, False, tv=2), 0)).error is Errors.PRODUCER_FENCED


# TCo's table for Complete* under TV2 ("Retry" = epoch current-1, "Current" = epoch current).
@pytest.mark.parametrize(("completed_commit", "commit", "retry", "expected"), [
    (False, False, True, NONE),
    (False, False, False, S.PREPARE_ABORT),
    (False, True, True, Errors.INVALID_TXN_STATE),
    (False, True, False, Errors.INVALID_TXN_STATE),
    (True, True, True, NONE),
    (True, True, False, Errors.INVALID_TXN_STATE),
    (True, False, True, Errors.INVALID_TXN_STATE),
    (True, False, False, S.PREPARE_ABORT),
])
def test_end_txn_tv2_after_completion_table(completed_commit, commit, retry, expected):
    c = make()
    pid, e = init(c)
    begin(c, pid, e, P0, tv=2)
    complete(c, prepare(c, pid, e, completed_commit, tv=2)[1])
    effects = c.handle(4, end_req(pid, e if retry else e + 1, commit, tv=2), 0)
    if isinstance(expected, Errors):
        assert the_response(effects).error is expected
    else:
        record = the_append(effects).record
        assert (record.state, record.producer_epoch, record.partitions) == (expected, e + 2, ())


@pytest.mark.parametrize("epoch_delta", [0, 1])
def test_end_txn_tv2_during_prepare_needs_the_retry_epoch(epoch_delta):
    # Prepare* without a pending state (the Complete* write got NOT_COORDINATOR): only epoch current-1 is a retry.
    c = make()
    pid, e = init(c)
    begin(c, pid, e, P0, tv=2)
    _, effects = prepare(c, pid, e, True, tv=2)
    done = c.on_marker_result(the_markers(effects).entry, P0, NONE, 0)
    c.on_log_append(the_append(done).write_id, Errors.NOT_LEADER_OR_FOLLOWER, 0)
    error = the_response(c.handle(5, end_req(pid, e + epoch_delta, True, tv=2), 0)).error
    assert error is (Errors.CONCURRENT_TRANSACTIONS if epoch_delta == 0 else Errors.PRODUCER_FENCED)


def test_kafka_18464_empty_abort_while_completion_pending_is_concurrent_transactions_not_fenced():
    c = make()
    pid, e = init(c)
    begin(c, pid, e, P0, tv=2)
    response, _ = prepare(c, pid, e, True, tv=2)  # markers not yet written: Complete* pending
    # The producer adopts (pid, e+1), its next txn fails locally and it aborts an empty txn.
    effects = c.handle(5, end_req(response.producer_id, response.producer_epoch, False, tv=2), 0)
    assert the_response(effects) == EndTxnResponse(error=Errors.CONCURRENT_TRANSACTIONS)


def test_kafka_18660_epoch_overflow_rotates_the_pid_with_markers_at_32767():
    c = make()
    pid, _ = init(c)
    seed_epoch(c, MAX_EPOCH - 1)
    begin(c, pid, MAX_EPOCH - 1, P0, tv=2)
    effects = c.handle(3, end_req(pid, MAX_EPOCH - 1, True, tv=2), 0)
    record = the_append(effects).record
    new_pid = FIRST_PID + 1
    assert (record.producer_id, record.producer_epoch, record.next_producer_id) == (pid, MAX_EPOCH, new_pid)
    effects = durable(c, effects)
    assert the_response(effects) == EndTxnResponse(error=NONE, producer_id=new_pid, producer_epoch=0)
    entry = the_markers(effects).entry
    assert (entry.producer_id, entry.producer_epoch) == (pid, MAX_EPOCH)
    # The producer already uses the new pid while the completion is pending: retriable, not fenced.
    assert the_response(c.handle(4, end_req(new_pid, 0, False, tv=2), 0)).error is Errors.CONCURRENT_TRANSACTIONS
    complete(c, effects)
    m = meta(c)
    assert (m.producer_id, m.producer_epoch, m.prev_producer_id, m.last_producer_epoch, m.next_producer_id) == (
        new_pid, 0, pid, MAX_EPOCH - 1, -1)
    # Only epoch 32766 on the old pid counts as the overflow retry.
    assert the_response(c.handle(6, end_req(pid, 5, True, tv=2), 0)).error is Errors.INVALID_PRODUCER_ID_MAPPING
    # A retry of the overflowing EndTxn gets the new pid.
    assert the_response(c.handle(5, end_req(pid, MAX_EPOCH - 1, True, tv=2), 0)) == EndTxnResponse(
        error=NONE, producer_id=new_pid, producer_epoch=0)
    begin(c, new_pid, 0, P1, tv=2)


# --- timeouts -------------------------------------------------------------------------------------------


def test_timeout_abort_only_after_start_plus_timeout():
    c = make()
    pid, e = init(c, now=0)
    begin(c, pid, e, P0, now=1_000)
    assert c.abort_timed_out_transactions(1_000 + TIMEOUT) == []  # strictly after
    record = the_append(c.abort_timed_out_transactions(1_001 + TIMEOUT)).record
    assert record.state is S.PREPARE_ABORT


def test_timeout_skips_pending_and_non_ongoing_transactions():
    c = make()
    pid, e = init(c)
    assert c.abort_timed_out_transactions(10**9) == []  # Empty
    begin(c, pid, e, P0)
    c.handle(1, add_req(pid, e, P1), 0)  # pending
    assert c.abort_timed_out_transactions(10**9) == []


def test_timeout_tv1_fences_the_old_producer():
    c = make(tv=1)
    pid, first = init(c)
    pid, e = init(c, pid=pid, epoch=first)  # a KIP-360 bump: lastEpoch = first
    begin(c, pid, e, P0)
    effects = c.abort_timed_out_transactions(10**9)
    record = the_append(effects).record
    assert (record.producer_epoch, record.last_producer_epoch) == (e + 1, -1)
    assert record.client_transaction_version == 0  # endTransactionWithTV1 records TV_0 even for server TV_1
    effects = durable(c, effects)
    assert not of(effects, Respond)
    assert (the_markers(effects).entry.producer_epoch, the_markers(effects).entry.transaction_version) == (e + 1, 0)
    complete(c, effects)
    assert the_response(c.handle(1, end_req(pid, e, False, tv=1), 0)).error is Errors.PRODUCER_FENCED
    assert the_response(c.handle(2, add_req(pid, e, P0), 0)).results == ((P0, Errors.PRODUCER_FENCED),)
    assert the_response(c.handle(3, init_req(pid=pid, epoch=e), 0)).error is Errors.PRODUCER_FENCED


def test_timeout_tv2_lets_the_old_producer_continue():
    c = make(tv=2)
    pid, e = init(c)
    begin(c, pid, e, P0, tv=2)
    effects = c.abort_timed_out_transactions(10**9)
    record = the_append(effects).record
    assert (record.producer_epoch, record.last_producer_epoch) == (e + 1, e)
    effects = durable(c, effects)
    # While the markers are out the producer's abort is retriable.
    assert the_response(c.handle(1, end_req(pid, e, False, tv=2), 0)).error is Errors.CONCURRENT_TRANSACTIONS
    complete(c, effects)
    assert the_response(c.handle(2, end_req(pid, e, True, tv=2), 0)).error is Errors.INVALID_TXN_STATE
    assert the_response(c.handle(3, end_req(pid, e, False, tv=2), 0)) == EndTxnResponse(
        error=NONE, producer_id=pid, producer_epoch=e + 1)
    begin(c, pid, e + 1, P1, tv=2)


def test_kafka_20090_tv2_timeout_at_32766_leaves_a_txn_that_cannot_end():
    """4.1 behaviour (fixed later): the fence-abort at 32766 does not rotate the pid."""
    c = make(tv=2)
    pid, _ = init(c)
    seed_epoch(c, MAX_EPOCH - 1)
    begin(c, pid, MAX_EPOCH - 1, P0, tv=2)
    effects = durable(c, c.abort_timed_out_transactions(10**9))
    complete(c, effects)
    assert (meta(c).producer_id, meta(c).producer_epoch) == (pid, MAX_EPOCH)
    # The old producer's abort is a retry and hands out epoch 32767 ...
    assert the_response(c.handle(1, end_req(pid, MAX_EPOCH - 1, False, tv=2), 0)) == EndTxnResponse(
        error=NONE, producer_id=pid, producer_epoch=MAX_EPOCH)
    begin(c, pid, MAX_EPOCH, P1, tv=2)
    # ... so the next EndTxn overflows (IllegalArgumentException -> UNKNOWN_SERVER_ERROR) ...
    assert the_response(c.handle(2, end_req(pid, MAX_EPOCH, True, tv=2), 0)).error is Errors.UNKNOWN_SERVER_ERROR
    # ... and the sweeper cannot fence it (IllegalStateException, logged): stuck Ongoing.
    assert c.abort_timed_out_transactions(2 * 10**9) == []
    assert meta(c).state is S.ONGOING



@pytest.mark.xfail(strict=True, reason="the model skips the stuck id and sweeps on; Kafka 4.1.2's sweep run ends at it "
                                       "(tests/conformance/test_finding_facts.py, measured)")
def test_a_stuck_fence_ends_the_sweep_run():
    """TCo.abortTimedOutTransactions does not guard its foreach: prepareFenceProducerEpoch's IllegalStateException
    at Short.MaxValue ends the run (KafkaScheduler logs it), so a timed-out transaction visited after the stuck one
    is never aborted. Kafka visits ConcurrentHashMap bucket order, the model sorted order."""
    c = make(tv=2)
    pid, _ = init(c)
    seed_epoch(c, MAX_EPOCH - 1)
    begin(c, pid, MAX_EPOCH - 1, P0, tv=2)
    complete(c, durable(c, c.abort_timed_out_transactions(10**9)))
    retry = the_response(c.handle(1, end_req(pid, MAX_EPOCH - 1, False, tv=2), 0))
    assert (retry.error, retry.producer_epoch) == (NONE, MAX_EPOCH)
    begin(c, pid, MAX_EPOCH, P0, tv=2)  # stuck Ongoing at Short.MaxValue
    later = "z-" + TID  # visited after TID
    other, e = init(c, tid=later)
    durable(c, c.handle(2, add_req(other, e, P1, tid=later, tv=2), 0))
    assert c.abort_timed_out_transactions(2 * 10**9) == []
    assert meta(c, later).state is S.ONGOING

# --- log-append errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "mapped"), [
    (Errors.NOT_ENOUGH_REPLICAS, Errors.COORDINATOR_NOT_AVAILABLE),
    (Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND, Errors.COORDINATOR_NOT_AVAILABLE),
    (Errors.REQUEST_TIMED_OUT, Errors.COORDINATOR_NOT_AVAILABLE),
    (Errors.UNKNOWN_TOPIC_OR_PARTITION, Errors.COORDINATOR_NOT_AVAILABLE),
    (Errors.NOT_LEADER_OR_FOLLOWER, Errors.NOT_COORDINATOR),
    (Errors.KAFKA_STORAGE_ERROR, Errors.NOT_COORDINATOR),
    (Errors.UNKNOWN_SERVER_ERROR, Errors.UNKNOWN_SERVER_ERROR),
])
def test_log_append_error_mapping_clears_pending_and_answers(raw, mapped):
    c = make()
    pid, e = init(c)
    before = meta(c)
    effects = c.handle(1, init_req(), 0)
    assert the_response(durable(c, effects, error=raw)) == InitProducerIdResponse(error=mapped)
    assert meta(c) == before
    assert init(c) == (pid, e + 1)  # nothing left pending


def test_log_append_error_on_end_txn_keeps_the_txn_ongoing():
    c = make()
    pid, e = init(c)
    begin(c, pid, e, P0, tv=2)
    effects = c.handle(1, end_req(pid, e, True, tv=2), 0)
    assert the_response(durable(c, effects, error=Errors.NOT_ENOUGH_REPLICAS)) == EndTxnResponse(
        error=Errors.COORDINATOR_NOT_AVAILABLE)
    assert (meta(c).state, meta(c).producer_epoch) == (S.ONGOING, e)
    assert prepare(c, pid, e, True, tv=2)[0].producer_epoch == e + 1


def test_log_append_error_on_add_partitions_answers_every_partition():
    c = make()
    pid, e = init(c)
    effects = c.handle(1, add_req(pid, e, P1, P0), 0)
    assert the_response(durable(c, effects, error=Errors.NOT_LEADER_OR_FOLLOWER)).results == (
        (P0, Errors.NOT_COORDINATOR), (P1, Errors.NOT_COORDINATOR))
    assert meta(c).state is S.EMPTY


def test_complete_write_keeps_pending_and_reappends_on_coordinator_not_available():
    c = make(tv=1)
    pid, e = init(c)
    begin(c, pid, e, P0)
    _, effects = prepare(c, pid, e, True, tv=1)
    first = the_append(c.on_marker_result(the_markers(effects).entry, P0, NONE, 0))
    again = c.on_log_append(first.write_id, Errors.NOT_ENOUGH_REPLICAS, 0)
    assert the_append(again).record == first.record and the_append(again).write_id != first.write_id
    assert the_response(c.handle(1, init_req(), 0)).error is Errors.CONCURRENT_TRANSACTIONS
    c.on_log_append(the_append(again).write_id, NONE, 0)
    assert meta(c).state is S.COMPLETE_COMMIT


@pytest.mark.parametrize("commit", [True, False])
def test_complete_write_not_coordinator_clears_pending_and_stays_prepare(commit):
    c = make(tv=1)
    pid, e = init(c)
    begin(c, pid, e, P0)
    _, effects = prepare(c, pid, e, commit, tv=1)
    done = c.on_marker_result(the_markers(effects).entry, P0, NONE, 0)
    assert c.on_log_append(the_append(done).write_id, Errors.NOT_LEADER_OR_FOLLOWER, 0) == []
    assert meta(c).state is (S.PREPARE_COMMIT if commit else S.PREPARE_ABORT)
    assert the_response(c.handle(1, init_req(), 0)).error is Errors.CONCURRENT_TRANSACTIONS
    # TV1 table: the same result is retriable, the other one is INVALID_TXN_STATE.
    assert the_response(c.handle(2, end_req(pid, e, commit, tv=1), 0)).error is Errors.CONCURRENT_TRANSACTIONS
    assert the_response(c.handle(3, end_req(pid, e, not commit, tv=1), 0)).error is Errors.INVALID_TXN_STATE


# --- markers --------------------------------------------------------------------------------------------


def test_marker_results_remove_partitions_and_the_last_one_appends_complete():
    c = make()
    pid, e = init(c)
    begin(c, pid, e, P0, P1, tv=2)
    _, effects = prepare(c, pid, e, False, tv=2)
    entry = the_markers(effects).entry
    assert c.on_marker_result(entry, P1, NONE, 0) == []
    assert meta(c).partitions == (P0,)
    record = the_append(c.on_marker_result(entry, P0, NONE, 0)).record
    assert (record.state, record.producer_epoch, record.partitions) == (S.COMPLETE_ABORT, e + 1, ())


@pytest.mark.parametrize("error", [Errors.NOT_LEADER_OR_FOLLOWER, Errors.UNKNOWN_TOPIC_OR_PARTITION,
                                   Errors.NOT_ENOUGH_REPLICAS, Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                                   Errors.REQUEST_TIMED_OUT, Errors.KAFKA_STORAGE_ERROR, Errors.NETWORK_EXCEPTION])
def test_marker_retriable_error_resends_only_that_partition(error):
    c = make()
    pid, e = init(c)
    begin(c, pid, e, P0, P1, tv=2)
    entry = the_markers(prepare(c, pid, e, True, tv=2)[1]).entry
    resend = the_markers(c.on_marker_result(entry, P1, error, 0)).entry
    assert resend.partitions == (P1,) and (resend.producer_id, resend.producer_epoch) == (pid, e + 1)
    assert meta(c).partitions == (P0, P1)
    assert c.on_marker_result(entry, P0, NONE, 0) == []
    assert of(c.on_marker_result(resend, P1, NONE, 0), AppendTxnLog)


@pytest.mark.parametrize("error", [Errors.INVALID_PRODUCER_EPOCH, Errors.TRANSACTION_COORDINATOR_FENCED])
def test_marker_epoch_errors_stop_the_txn_for_good(error):
    c = make()
    pid, e = init(c)
    begin(c, pid, e, P0, P1, tv=2)
    entry = the_markers(prepare(c, pid, e, True, tv=2)[1]).entry
    assert c.on_marker_result(entry, P0, error, 0) == []
    # Even once every partition has its marker (here a late NONE for P0), no Complete* from this coordinator.
    assert c.on_marker_result(entry, P0, NONE, 0) == []
    assert c.on_marker_result(entry, P1, NONE, 0) == []
    assert meta(c).partitions == ()
    assert meta(c).state is S.PREPARE_COMMIT
    assert the_response(c.handle(1, init_req(), 0)).error is Errors.CONCURRENT_TRANSACTIONS


def test_marker_result_from_another_coordinator_epoch_is_dropped():
    c = make()
    pid, e = init(c)
    begin(c, pid, e, P0, P1, tv=2)
    entry = the_markers(prepare(c, pid, e, True, tv=2)[1]).entry
    stale = type(entry)(transactional_id=TID, producer_id=pid, producer_epoch=e + 1, coordinator_epoch=-5,
                        result=entry.result, partitions=(P0,), transaction_version=2)
    assert c.on_marker_result(stale, P0, NONE, 0) == []
    assert meta(c).partitions == (P0, P1)
    c.on_marker_result(entry, P0, NONE, 0)
    assert of(c.on_marker_result(entry, P1, NONE, 0), AppendTxnLog)  # the current completion survives


def test_marker_unexpected_error_is_a_model_error():
    c = make()
    pid, e = init(c)
    begin(c, pid, e, P0, tv=2)
    entry = the_markers(prepare(c, pid, e, True, tv=2)[1]).entry
    with pytest.raises(ModelError):
        c.on_marker_result(entry, P0, Errors.CORRUPT_MESSAGE, 0)


# --- transactional.id expiration ------------------------------------------------------------------------

EXPIRY = 604_800_000


def test_expire_transactional_id_writes_a_dead_tombstone_and_forgets_it():
    c = make()
    pid, e = init(c, now=0)
    begin(c, pid, e, P0, now=10, tv=2)
    complete(c, prepare(c, pid, e, True, tv=2, now=20)[1], now=20)  # last update at 20
    assert c.remove_expired_transactional_ids(20 + EXPIRY - 1) == []
    effects = c.remove_expired_transactional_ids(20 + EXPIRY)
    record = the_append(effects).record
    assert (record.state, record.partitions) == (S.DEAD, ())
    assert c.on_log_append(the_append(effects).write_id, NONE, 0) == [TxnStateChanged(
        transactional_id=TID, old=S.COMPLETE_COMMIT, new=S.DEAD, producer_id=pid, producer_epoch=e + 1,
        txn_timeout_ms=TIMEOUT)]
    assert c.metadata(TID) is None
    assert the_response(c.handle(1, add_req(pid, e + 1, P0), 0)).results == (
        (P0, Errors.INVALID_PRODUCER_ID_MAPPING),)
    assert init(c) == (FIRST_PID + 1, 0)  # a new pid


def test_expire_skips_ongoing_and_pending():
    c = make()
    pid, e = init(c)
    effects = c.handle(1, add_req(pid, e, P0), 0)
    assert c.remove_expired_transactional_ids(10**12) == []
    durable(c, effects)
    assert meta(c).state is S.ONGOING
    assert c.remove_expired_transactional_ids(10**12) == []


def test_expire_tombstone_failure_keeps_the_metadata():
    c = make()
    init(c)
    effects = c.remove_expired_transactional_ids(10**12)
    assert c.on_log_append(the_append(effects).write_id, Errors.NOT_ENOUGH_REPLICAS, 0) == []
    assert meta(c).state is S.EMPTY
    assert of(c.remove_expired_transactional_ids(10**12), AppendTxnLog)


# --- misuse ---------------------------------------------------------------------------------------------


def test_misuse_raises():
    c = make()
    with pytest.raises(TypeError):
        c.handle(1, object(), 0)
    with pytest.raises(ModelError):
        c.on_log_append(42, NONE, 0)
