"""PartitionLog: offsets, HW, LSO, the aborted-transaction index and reads (reference §1)."""

from __future__ import annotations

import pytest

from eosim.models.config import BrokerConfig
from eosim.models.errors import Errors, IllegalTransition, ModelError
from eosim.models.log import AbortedTransaction, AbortedTxn, PartitionLog
from eosim.models.records import ControlType, IsolationLevel, LogBatch, Record, RecordBatch, TopicPartition

TP = TopicPartition("t", 0)
RC = IsolationLevel.READ_COMMITTED
RU = IsolationLevel.READ_UNCOMMITTED


def make_log(**config) -> PartitionLog:
    return PartitionLog(TP, BrokerConfig(**config))


def plain(*values: str) -> RecordBatch:
    return RecordBatch(records=tuple(Record(None, v) for v in values))


def txn_batch(pid: int, seq: int, *values: str, epoch: int = 0) -> RecordBatch:
    return RecordBatch(
        records=tuple(Record(None, v) for v in values),
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        is_transactional=True,
    )


def send(log: PartitionLog, b: RecordBatch):
    guard = None
    if log.needs_verification(b):
        guard = log.start_verification(b.producer_id, b.producer_epoch, b.base_sequence)
    result = log.append_as_leader(b, 0, verification_guard=guard)
    assert result.error is Errors.NONE
    return result


def end(log: PartitionLog, pid: int, control: ControlType, epoch: int = 0):
    result = log.append_marker(producer_id=pid, producer_epoch=epoch, coordinator_epoch=0, control=control, now=0)
    assert result.error is Errors.NONE
    return result


def catch_up(log: PartitionLog) -> None:
    log.advance_high_watermark(log.log_end_offset)


# -- offsets and the HW ---------------------------------------------------------------------------------


def test_leader_assigns_contiguous_offsets():
    log = make_log()
    assert (send(log, plain("a", "b", "c")).base_offset, send(log, plain("d")).base_offset) == (0, 3)
    assert [b.base_offset for b in log.batches] == [0, 3] and log.log_end_offset == 4
    assert log.high_watermark == 0 and log.log_start_offset == 0


def test_high_watermark_is_monotonic_and_bounded_by_the_log_end():
    log = make_log()
    send(log, plain("a", "b", "c"))
    log.advance_high_watermark(2)
    log.advance_high_watermark(1)  # UL.maybeIncrementHighWatermark ignores a lower value
    assert log.high_watermark == 2
    with pytest.raises(IllegalTransition):
        log.advance_high_watermark(4)
    assert log.high_watermark == 2


def test_rejected_append_takes_no_offset():
    log = make_log()
    send(log, txn_batch(7, 0, "a"))
    bad = RecordBatch(records=(Record(None, "x"),), producer_id=7, producer_epoch=0, base_sequence=1)
    assert log.append_as_leader(bad, 0).error is Errors.INVALID_TXN_STATE
    assert log.log_end_offset == 1 and len(log.batches) == 1


# -- the LSO --------------------------------------------------------------------------------------------


def test_lso_equals_hw_without_transactions():
    log = make_log()
    send(log, plain("a", "b"))
    assert log.last_stable_offset == 0
    catch_up(log)
    assert log.last_stable_offset == log.high_watermark == 2
    assert log.first_unstable_offset == log.log_end_offset


def test_open_transaction_pins_the_lso_for_all_producers():
    """PSM.firstUnstableOffset: one open txn holds back read_committed for everyone on the partition."""
    log = make_log()
    send(log, plain("before"))
    send(log, txn_batch(7, 0, "t0"))
    for i in range(3):
        send(log, plain(f"after{i}"))
    catch_up(log)
    assert (log.first_unstable_offset, log.last_stable_offset, log.high_watermark) == (1, 1, 5)
    end(log, 7, ControlType.COMMIT)
    catch_up(log)
    assert log.last_stable_offset == log.high_watermark == 6


def test_lso_waits_until_the_marker_is_below_the_hw():
    """A completed txn stays unstable until its marker is replicated (PSM.unreplicatedTxns)."""
    log = make_log()
    send(log, txn_batch(7, 0, "a"))
    end(log, 7, ControlType.COMMIT)  # marker at 1
    log.advance_high_watermark(1)
    assert log.last_stable_offset == 0
    log.advance_high_watermark(2)
    assert log.last_stable_offset == 2
    assert log.producer_state_manager.unreplicated_txns == {}


def test_lso_is_the_earliest_of_several_open_transactions():
    log = make_log()
    send(log, txn_batch(7, 0, "a"))
    send(log, txn_batch(8, 0, "b"))
    end(log, 7, ControlType.COMMIT)
    catch_up(log)
    assert log.last_stable_offset == 1  # pid 8's txn


def test_list_offset_latest_by_isolation():
    log = make_log()
    send(log, txn_batch(7, 0, "a"))
    send(log, plain("b"))
    catch_up(log)
    assert log.list_offset_latest(RC) == 0
    assert log.list_offset_latest(RU) == 2


# -- the aborted-transaction index (§1.5) ----------------------------------------------------------------


def test_only_aborted_non_empty_transactions_are_indexed():
    log = make_log()
    send(log, txn_batch(7, 0, "a"))
    end(log, 7, ControlType.COMMIT)
    end(log, 8, ControlType.ABORT)  # empty abort
    send(log, txn_batch(7, 1, "b"))
    end(log, 7, ControlType.ABORT)
    assert log.txn_index == [AbortedTxn(producer_id=7, first_offset=3, last_offset=4, last_stable_offset=5)]


def test_index_lso_is_the_earliest_other_ongoing_transaction():
    """PSM.lastStableOffset: at the abort, pid 8's txn (first offset 1) is still open."""
    log = make_log()
    send(log, txn_batch(7, 0, "a"))
    send(log, txn_batch(8, 0, "b"))
    send(log, txn_batch(7, 1, "c"))
    end(log, 7, ControlType.ABORT)
    assert log.txn_index == [AbortedTxn(producer_id=7, first_offset=0, last_offset=3, last_stable_offset=1)]


def test_collect_aborted_transactions_overlapping_the_range():
    log = make_log()
    send(log, txn_batch(7, 0, "a"))  # 0
    end(log, 7, ControlType.ABORT)  # 1
    send(log, txn_batch(8, 0, "b"))  # 2
    end(log, 8, ControlType.ABORT)  # 3
    send(log, txn_batch(9, 0, "c"))  # 4
    end(log, 9, ControlType.ABORT)  # 5
    pids = lambda start, upper: [t.producer_id for t in log.collect_aborted_transactions(start, upper)]  # noqa: E731
    assert pids(0, 6) == [7, 8, 9]
    assert pids(2, 4) == [8]  # 7 ended before 2; the scan stops at 8 (its LSO 4 reaches the bound)
    assert pids(1, 2) == [7]
    assert pids(6, 6) == []


# -- reads (§1.6) -------------------------------------------------------------------------------------


def test_read_uncommitted_reads_to_the_hw_and_read_committed_to_the_lso():
    log = make_log()
    send(log, plain("a"))
    send(log, txn_batch(7, 0, "t"))
    send(log, plain("b"))
    log.advance_high_watermark(3)
    send(log, plain("above-hw"))
    ru = log.read(0, RU)
    rc = log.read(0, RC)
    assert [b.base_offset for b in ru.batches] == [0, 1, 2]
    assert [b.base_offset for b in rc.batches] == [0]
    assert (rc.high_watermark, rc.last_stable_offset) == (3, 1)
    assert ru.aborted_transactions == () and rc.error is Errors.NONE


def test_batch_straddling_the_bound_is_left_out():
    log = make_log()
    send(log, plain("a", "b", "c"))
    log.advance_high_watermark(2)
    assert log.read(0, RU).batches == ()


def test_read_from_inside_a_batch_returns_the_whole_batch():
    log = make_log()
    send(log, plain("a", "b", "c"))
    catch_up(log)
    result = log.read(1, RU)
    assert [b.base_offset for b in result.batches] == [0] and result.fetch_offset == 1


def test_read_outside_the_log_is_offset_out_of_range():
    log = make_log()
    send(log, plain("a"))
    catch_up(log)
    assert log.read(2, RU).error is Errors.OFFSET_OUT_OF_RANGE
    assert log.read(-1, RC).error is Errors.OFFSET_OUT_OF_RANGE
    at_end = log.read(1, RC)
    assert at_end.error is Errors.NONE and at_end.batches == ()


def test_max_records_limits_whole_batches_but_returns_at_least_one():
    log = make_log()
    send(log, plain("a", "b", "c"))
    send(log, plain("d"))
    send(log, plain("e"))
    catch_up(log)
    assert [b.base_offset for b in log.read(0, RU, max_records=1).batches] == [0]
    assert [b.base_offset for b in log.read(0, RU, max_records=4).batches] == [0, 3]
    assert [b.base_offset for b in log.read(3, RU, max_records=5).batches] == [3, 4]


def test_read_committed_lists_aborted_transactions_of_the_fetched_range():
    log = make_log()
    send(log, txn_batch(7, 0, "a"))  # 0
    end(log, 7, ControlType.ABORT)  # 1
    send(log, txn_batch(8, 0, "b"))  # 2
    end(log, 8, ControlType.COMMIT)  # 3
    send(log, txn_batch(7, 1, "c"))  # 4
    end(log, 7, ControlType.ABORT)  # 5
    catch_up(log)
    full = log.read(0, RC)
    assert full.aborted_transactions == (
        AbortedTransaction(producer_id=7, first_offset=0),
        AbortedTransaction(producer_id=7, first_offset=4),
    )
    assert log.read(2, RC, max_records=2).aborted_transactions == ()
    assert log.read(0, RU).aborted_transactions == ()


def test_duplicate_appends_nothing():
    log = make_log()
    b = RecordBatch(records=(Record(None, "a"),), producer_id=7, producer_epoch=0, base_sequence=0)
    send(log, b)
    assert send(log, b).duplicate
    catch_up(log)
    assert [r.value for batch in log.read(0, RU).batches for r in batch.records] == ["a"]


# -- replicas: leader epochs, follower appends, truncation (UL.appendAsFollower, UL.truncateTo) ----------------


def test_a_follower_copy_has_the_leaders_epochs_txn_index_and_producer_state():
    leader = make_log()
    leader.append_as_leader(txn_batch(1, 0, "a"), 0, verification_guard=leader.start_verification(1, 0, 0),
                            leader_epoch=2)
    leader.append_marker(producer_id=1, producer_epoch=0, coordinator_epoch=0, control=ControlType.ABORT, now=0,
                         leader_epoch=3)
    send(leader, txn_batch(9, 0, "open"))  # single-replica append: no epoch
    follower = make_log()
    follower.append_as_follower(tuple(leader.batches))
    assert [b.partition_leader_epoch for b in follower.batches] == [2, 3, -1]
    assert [(e.epoch, e.start_offset) for e in follower.epoch_cache.entries] == [(2, 0), (3, 1)]
    assert follower.txn_index == leader.txn_index and follower.snapshot() == leader.snapshot()
    follower.update_high_watermark(99)  # the leader's HW, capped at the follower's log end
    assert follower.high_watermark == 3 and follower.last_stable_offset == 2  # pid 9's transaction is open


def test_a_follower_append_that_does_not_continue_the_log_is_a_model_error():
    follower = make_log()
    with pytest.raises(ModelError):
        follower.append_as_follower((LogBatch(base_offset=1, records=(Record(None, "a"),)),))


def test_truncation_drops_epochs_index_entries_and_reopens_the_transaction_of_a_dropped_marker():
    log = make_log()
    log.append_as_leader(txn_batch(1, 0, "a"), 0, verification_guard=log.start_verification(1, 0, 0),
                         leader_epoch=0)
    log.append_marker(producer_id=1, producer_epoch=0, coordinator_epoch=0, control=ControlType.ABORT, now=0,
                      leader_epoch=1)
    log.advance_high_watermark(2)
    assert [b.base_offset for b in log.truncate_to(1)] == [1]
    assert log.log_end_offset == 1 and log.high_watermark == 1 and log.txn_index == []
    assert [e.epoch for e in log.epoch_cache.entries] == [0]
    assert log.has_ongoing_transaction(1, 0) and log.last_stable_offset == 0
    straddled = make_log()
    send(straddled, plain("a", "b"))
    with pytest.raises(ModelError):
        straddled.truncate_to(1)  # inside the batch at 0
