"""Transaction coordinator failover: resignation, election, loading the log, markers re-sent.

Sources (Kafka 4.1): TransactionCoordinator.scala (TCo.onElection / onResignation), TransactionStateManager.scala
(TSM.loadTransactionsForTxnTopicPartition, loadTransactionMetadata, getTransactionState, appendTransactionToLog),
TransactionLog.scala (readTxnRecordValue, valueToBytes), TransactionMarkerChannelManager.scala (TMCM),
TransactionMarkerRequestCompletionHandler.scala (TMRCH), ProducerAppendInfo.java (PAI.checkCoordinatorEpoch),
RPCProducerIdManager.java / ProducerIdControlManager.java (producer id blocks).
"""

from __future__ import annotations

import pytest

from eosim.models.config import BrokerConfig
from eosim.models.errors import Errors, ModelError
from eosim.models.log import AppendOrigin, PartitionLog
from eosim.models.records import ControlType, Record, RecordBatch, TopicPartition
from eosim.models.txn_coordinator import (
    PRODUCER_ID_BLOCK_SIZE,
    AddPartitionsToTxnRequest,
    AppendTxnLog,
    EndTxnRequest,
    InitProducerIdRequest,
    Respond,
    SendTxnMarkers,
    TransactionCoordinator,
    TransactionState,
    TxnLoaded,
    TxnStateChanged,
    first_producer_id_after_restart,
)

S = TransactionState
NONE = Errors.NONE
TID = "txn-1"
P0, P1 = TopicPartition("out", 0), TopicPartition("out", 1)
TIMEOUT = 60_000


class Coordinator:
    """One coordinator plus the __transaction_state log its writes go to (the runtime's job in the simulator)."""

    def __init__(self, tv: int = 1, first_producer_id: int = 0) -> None:
        self.config = BrokerConfig(transaction_version=tv)
        self.tc = TransactionCoordinator(self.config, first_producer_id=first_producer_id)
        self.log: list = []
        self.in_flight: list[AppendTxnLog] = []

    def apply(self, effects, *, write: bool = True):
        """Persist every AppendTxnLog at once; with ``write`` also acknowledge it (and what follows)."""
        out = list(effects)
        appends = [e for e in out if isinstance(e, AppendTxnLog)]
        self.log += [a.record for a in appends]
        if not write:
            self.in_flight += appends
            return out
        for append in appends:
            out += self.apply(self.tc.on_log_append(append.write_id, NONE, 0))
        return out

    def request(self, request, cid: int = 1):
        return self.apply(self.tc.handle(cid, request, 0))

    def failover(self, now: int = 0):
        """Resign, be elected at the next coordinator epoch, and load the log."""
        epoch = self.tc.coordinator_epoch + 1
        self.tc.resign()
        self.tc.elect(epoch)
        return self.apply(self.tc.load(self.log, coordinator_epoch=epoch, now=now))


def of(effects, kind):
    return [e for e in effects if isinstance(e, kind)]


def answer(effects):
    (respond,) = of(effects, Respond)
    return respond.response


def init_req(tid=TID, pid=-1, epoch=-1):
    return InitProducerIdRequest(transactional_id=tid, transaction_timeout_ms=TIMEOUT, producer_id=pid,
                                 producer_epoch=epoch)


def add_req(pid, epoch, *partitions, tid=TID):
    return AddPartitionsToTxnRequest(transactional_id=tid, producer_id=pid, producer_epoch=epoch,
                                     partitions=partitions)


def end_req(pid, epoch, commit=True, tid=TID):
    return EndTxnRequest(transactional_id=tid, producer_id=pid, producer_epoch=epoch, committed=commit)


def ongoing(c: Coordinator, *partitions, tid=TID) -> tuple[int, int]:
    r = answer(c.request(init_req(tid)))
    c.request(add_req(r.producer_id, r.producer_epoch, *partitions, tid=tid))
    return r.producer_id, r.producer_epoch


def in_prepare_commit(c: Coordinator, *partitions) -> tuple[int, int, SendTxnMarkers]:
    """A TV1 transaction whose PrepareCommit is durable and whose markers are out, unanswered."""
    pid, epoch = ongoing(c, *partitions)
    effects = c.request(end_req(pid, epoch))
    assert answer(effects).error is NONE
    (send,) = of(effects, SendTxnMarkers)
    return pid, epoch, send


def partition_with_open_txn(pid: int, epoch: int) -> PartitionLog:
    """P0 holding one transactional batch of (pid, epoch) at offset 0 (appended as a follower would)."""
    log = PartitionLog(P0, BrokerConfig())
    log.append_as_leader(RecordBatch(records=(Record("k", "v"),), producer_id=pid, producer_epoch=epoch,
                                     base_sequence=0, is_transactional=True), 0, origin=AppendOrigin.REPLICATION)
    return log


# --- loading the log ------------------------------------------------------------------------------------


def test_load_keeps_the_last_record_per_transactional_id_and_a_tombstone_removes_it():
    # TSM.loadTransactionMetadata: loadedTransactions.put per record, remove on a null value (the Dead tombstone)
    c = Coordinator()
    answer(c.request(init_req("a")))  # Empty: expirable
    pid_b, epoch_b = ongoing(c, P1, tid="b")  # two records: Empty, then Ongoing
    c.apply(c.tc.remove_expired_transactional_ids(10**12))
    assert [(r.transactional_id, r.state) for r in c.log] == [("a", S.EMPTY), ("b", S.EMPTY), ("b", S.ONGOING),
                                                              ("a", S.DEAD)]
    loaded = c.failover()
    assert c.tc.metadata("a") is None
    assert c.tc.metadata("b").state is S.ONGOING and c.tc.metadata("b").partitions == (P1,)
    assert of(loaded, TxnLoaded) == [TxnLoaded(transactional_id="b", state=S.ONGOING, producer_id=pid_b,
                                               producer_epoch=epoch_b, coordinator_epoch=1,
                                               txn_timeout_ms=TIMEOUT)]


def test_load_forgets_what_the_log_value_does_not_hold():
    # TransactionLog.readTxnRecordValue: lastProducerEpoch = NO_PRODUCER_EPOCH; 4.1's valueToBytes writes no
    # previous/next producer id. So a KIP-360 retry of a bump the client did not see is fenced after a failover.
    c = Coordinator()
    pid, epoch = answer(c.request(init_req())).producer_id, 0
    bumped = answer(c.request(init_req(pid=pid, epoch=epoch)))
    assert (bumped.producer_id, bumped.producer_epoch) == (pid, 1)
    assert answer(c.request(init_req(pid=pid, epoch=epoch))).producer_epoch == 1  # retry: same epoch
    c.failover()
    record = c.tc.metadata(TID)
    assert (record.last_producer_epoch, record.prev_producer_id, record.next_producer_id) == (-1, -1, -1)
    assert answer(c.request(init_req(pid=pid, epoch=epoch))).error is Errors.PRODUCER_FENCED


def test_a_write_in_flight_at_failover_is_answered_not_coordinator_but_the_load_has_it():
    # TSM.appendTransactionToLog: the local append happened; the callback finds the coordinator epoch changed
    # and answers NOT_COORDINATOR without touching the (reloaded) cache.
    c = Coordinator()
    pid, epoch = ongoing(c, P0)
    c.apply(c.tc.handle(7, end_req(pid, epoch), 0), write=False)  # PrepareCommit persisted, not acknowledged
    (write,) = c.in_flight
    loaded = c.failover()
    assert c.tc.metadata(TID).state is S.PREPARE_COMMIT  # loaded from the log: markers re-sent
    assert of(loaded, SendTxnMarkers)[0].entry.coordinator_epoch == 1
    late = c.tc.on_log_append(write.write_id, NONE, 0)
    assert late == [Respond(correlation_id=7, response=answer(late))]
    assert answer(late).error is Errors.NOT_COORDINATOR


def test_a_write_acknowledged_while_loading_answers_coordinator_load_in_progress():
    c = Coordinator()
    c.apply(c.tc.handle(7, init_req(), 0), write=False)
    (write,) = c.in_flight
    c.tc.resign()
    c.tc.elect(1)
    assert answer(c.tc.on_log_append(write.write_id, NONE, 0)).error is Errors.COORDINATOR_LOAD_IN_PROGRESS


def test_a_write_failing_after_the_partition_moved_keeps_its_own_error():
    # TSM.appendTransactionToLog: "Do nothing here, since we want to return the original append error"
    c = Coordinator()
    c.apply(c.tc.handle(8, init_req(), 0), write=False)
    (write,) = c.in_flight
    c.tc.resign()
    failed = c.tc.on_log_append(write.write_id, Errors.NOT_ENOUGH_REPLICAS, 0)
    assert answer(failed).error is Errors.COORDINATOR_NOT_AVAILABLE


def test_a_load_for_an_epoch_no_longer_loading_does_nothing():
    # TSM: the loaded transactions are used only if loadingPartitions still holds (partition, epoch)
    c = Coordinator()
    ongoing(c, P0)
    c.tc.resign()
    c.tc.elect(1)
    c.tc.elect(2)
    assert c.tc.load(c.log, coordinator_epoch=1, now=0) == []
    assert c.tc.unavailable is Errors.COORDINATOR_LOAD_IN_PROGRESS
    c.tc.resign()
    assert c.tc.load(c.log, coordinator_epoch=2, now=0) == []
    assert c.tc.unavailable is Errors.NOT_COORDINATOR


# --- requests while the partition moves -----------------------------------------------------------------


@pytest.mark.parametrize("loading", [False, True])
def test_requests_get_not_coordinator_after_resigning_and_load_in_progress_while_loading(loading):
    # TSM.getTransactionState: loadingPartitions first, then the cache (NOT_COORDINATOR when absent)
    c = Coordinator()
    pid, epoch = ongoing(c, P0)
    c.tc.resign()
    if loading:
        c.tc.elect(1)
    expected = Errors.COORDINATOR_LOAD_IN_PROGRESS if loading else Errors.NOT_COORDINATOR
    assert answer(c.request(init_req())).error is expected
    assert answer(c.request(add_req(pid, epoch, P1))).results == ((P1, expected),)
    verify = AddPartitionsToTxnRequest(transactional_id=TID, producer_id=pid, producer_epoch=epoch,
                                       partitions=(P0,), verify_only=True)
    assert answer(c.request(verify)).results == ((P0, expected),)
    assert answer(c.request(end_req(pid, epoch))).error is expected
    # checked before the coordinator state: a malformed request, an invalid timeout
    assert answer(c.request(end_req(pid, epoch, tid=""))).error is Errors.INVALID_REQUEST
    bad_timeout = InitProducerIdRequest(transactional_id=TID, transaction_timeout_ms=0)
    assert answer(c.request(bad_timeout)).error is Errors.INVALID_TRANSACTION_TIMEOUT
    # TCo.handleInitProducerId: an idempotent producer's id comes from the producer id manager, no state
    assert answer(c.request(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=-1))).error is NONE
    # the sweepers see no transaction
    assert c.tc.abort_timed_out_transactions(10**12) == []
    assert c.tc.remove_expired_transactional_ids(10**12) == []


# --- markers after a failover ---------------------------------------------------------------------------


def test_prepare_commit_gets_its_markers_again_at_the_new_coordinator_epoch_and_completes():
    c = Coordinator()
    pid, epoch, old = in_prepare_commit(c, P0, P1)
    assert old.entry.coordinator_epoch == 0
    effects = c.failover(now=5)
    (resend,) = of(effects, SendTxnMarkers)
    assert resend.entry == type(old.entry)(
        transactional_id=TID, producer_id=pid, producer_epoch=epoch, coordinator_epoch=1,
        result=old.entry.result, partitions=(P0, P1), transaction_version=old.entry.transaction_version)
    assert c.tc.metadata(TID).state is S.PREPARE_COMMIT
    # the re-sent markers are answered: Complete* is written at the new epoch
    assert c.apply(c.tc.on_marker_result(resend.entry, P0, NONE, 6)) == []
    done = c.apply(c.tc.on_marker_result(resend.entry, P1, NONE, 6))
    assert of(done, TxnStateChanged)[0].new is S.COMPLETE_COMMIT
    assert c.tc.metadata(TID).state is S.COMPLETE_COMMIT


def test_kafka_16352_a_stale_marker_answer_does_not_remove_the_new_pending_completion():
    # TMRCH: coordinator epoch changed -> removeMarkersForTxn(pendingCompleteTxn), which since KAFKA-16352 (3.8)
    # removes only that very entry: the one the load added at the new epoch stays, so Complete* is written.
    c = Coordinator()
    _, _, old = in_prepare_commit(c, P0)
    (resend,) = of(c.failover(), SendTxnMarkers)
    assert c.apply(c.tc.on_marker_result(old.entry, P0, NONE, 0)) == []  # the old epoch's answer comes late
    assert c.tc.metadata(TID).partitions == (P0,)  # and changes nothing
    assert of(c.apply(c.tc.on_marker_result(resend.entry, P0, NONE, 0)), TxnStateChanged)
    assert c.tc.metadata(TID).state is S.COMPLETE_COMMIT


def test_after_the_epoch_bump_the_old_coordinators_marker_loses_at_the_partition():
    # PAI.checkCoordinatorEpoch: a marker whose coordinator epoch is below the one the partition saw for the pid
    # is TRANSACTION_COORDINATOR_FENCED, and TMRCH then stops that (old) coordinator's markers for good.
    c = Coordinator()
    pid, epoch, old = in_prepare_commit(c, P0)
    (resend,) = of(c.failover(), SendTxnMarkers)
    log = partition_with_open_txn(pid, epoch)

    def marker(entry):
        return log.append_marker(producer_id=pid, producer_epoch=epoch, coordinator_epoch=entry.coordinator_epoch,
                                 control=ControlType.COMMIT, now=0)

    assert marker(resend.entry).error is NONE
    assert marker(old.entry).error is Errors.TRANSACTION_COORDINATOR_FENCED
    assert c.tc.on_marker_result(old.entry, P0, Errors.TRANSACTION_COORDINATOR_FENCED, 0) == []
    assert of(c.apply(c.tc.on_marker_result(resend.entry, P0, NONE, 0)), TxnStateChanged)


def test_duplicate_markers_each_take_an_offset_and_close_the_transaction_once():
    # The old epoch's marker landed before the failover; the re-sent one is appended too, closing nothing.
    c = Coordinator()
    pid, epoch, old = in_prepare_commit(c, P0)
    log = partition_with_open_txn(pid, epoch)
    first = log.append_marker(producer_id=pid, producer_epoch=epoch, coordinator_epoch=0,
                              control=ControlType.COMMIT, now=0)
    (resend,) = of(c.failover(), SendTxnMarkers)
    second = log.append_marker(producer_id=pid, producer_epoch=epoch, coordinator_epoch=1,
                               control=ControlType.COMMIT, now=0)
    assert (first.base_offset, second.base_offset, log.log_end_offset) == (1, 2, 3)
    log.advance_high_watermark(log.log_end_offset)
    assert log.last_stable_offset == 3 and log.txn_index == []


def test_a_disconnected_marker_request_is_resent_unless_the_partition_moved():
    c = Coordinator()
    _, _, old = in_prepare_commit(c, P0)
    assert c.tc.on_markers_disconnected(old.entry) == [old]
    (resend,) = of(c.failover(), SendTxnMarkers)
    assert c.tc.on_markers_disconnected(old.entry) == []  # another coordinator epoch: cancelled
    c.tc.resign()
    assert c.tc.on_markers_disconnected(resend.entry) == []


def test_a_loaded_ongoing_transaction_still_times_out_from_its_start():
    # txnStartTimestamp is in the log value, so the timeout clock survives the failover
    c = Coordinator()
    ongoing(c, P0)
    c.failover()
    assert c.tc.abort_timed_out_transactions(TIMEOUT) == []
    aborting = c.apply(c.tc.abort_timed_out_transactions(TIMEOUT + 1))
    assert [e.new for e in of(aborting, TxnStateChanged)] == [S.PREPARE_ABORT]


# --- producer ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "next_", "restart_at"), [
    (0, 0, 0),  # no id handed out: no block was claimed
    (0, 1, 1000),
    (0, 900, 1000),
    (0, 901, 2000),  # the id at 90 % of the block prefetched the next block
    (1000, 1003, 2000),
    (2000, 3001, 4000),
])
def test_a_restarted_broker_starts_at_a_block_the_controller_never_gave(first, next_, restart_at):
    assert first_producer_id_after_restart(first, next_) == restart_at


def test_producer_ids_after_a_restart_are_above_every_loaded_one():
    c = Coordinator()
    pids = [ongoing(c, P0, tid=f"t{i}")[0] for i in range(3)]
    restarted = TransactionCoordinator(c.config, first_producer_id=first_producer_id_after_restart(
        0, c.tc.next_producer_id))
    restarted.elect(1)
    restarted.load(c.log, coordinator_epoch=1, now=0)
    c.tc = restarted
    fresh = answer(c.request(init_req("new"))).producer_id
    assert fresh == PRODUCER_ID_BLOCK_SIZE > max(pids)
    # a failover on the same broker keeps its producer id manager: ids just continue
    c.failover()
    assert answer(c.request(init_req("newer"))).producer_id == fresh + 1


def test_an_election_never_takes_the_coordinator_epoch_back():
    """The coordinator epoch is __transaction_state's leader epoch, which only grows: an election at an epoch
    not above the current one is a runtime bug, refused."""
    c = Coordinator()
    c.failover()
    c.failover()
    assert c.tc.coordinator_epoch == 2
    for stale in (1, 2):
        with pytest.raises(ModelError, match="not above"):
            c.tc.elect(stale)
    assert c.tc.coordinator_epoch == 2
