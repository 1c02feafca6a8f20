"""The consumer's client-side filter (CompletedFetch.nextFetchedRecord, reference §1.6)."""

from __future__ import annotations

from eosim.models.config import BrokerConfig
from eosim.models.errors import Errors
from eosim.models.fetch import next_offset, visible_records
from eosim.models.log import AbortedTransaction, FetchResult, PartitionLog
from eosim.models.records import ControlType, IsolationLevel, LogBatch, Record, RecordBatch, TopicPartition

RC = IsolationLevel.READ_COMMITTED
RU = IsolationLevel.READ_UNCOMMITTED


def make_log() -> PartitionLog:
    return PartitionLog(TopicPartition("t", 0), BrokerConfig(transaction_partition_verification_enable=False))


def txn(log: PartitionLog, pid: int, seq: int, *values: str) -> None:
    b = RecordBatch(
        records=tuple(Record(None, v) for v in values), producer_id=pid, producer_epoch=0, base_sequence=seq,
        is_transactional=True,
    )
    assert log.append_as_leader(b, 0).error is Errors.NONE


def plain(log: PartitionLog, *values: str) -> None:
    assert log.append_as_leader(RecordBatch(records=tuple(Record(None, v) for v in values)), 0).error is Errors.NONE


def end(log: PartitionLog, pid: int, control: ControlType) -> None:
    result = log.append_marker(producer_id=pid, producer_epoch=0, coordinator_epoch=0, control=control, now=0)
    assert result.error is Errors.NONE


def values(result: FetchResult, isolation: IsolationLevel) -> list[str]:
    return [r.value for _, r in visible_records(result, isolation)]


def test_read_committed_skips_aborted_and_keeps_committed_and_plain_data():
    log = make_log()
    txn(log, 7, 0, "a1", "a2")  # 0-1, aborted
    txn(log, 8, 0, "c1")  # 2, committed
    plain(log, "p")  # 3
    end(log, 7, ControlType.ABORT)  # 4
    end(log, 8, ControlType.COMMIT)  # 5
    log.advance_high_watermark(log.log_end_offset)
    result = log.read(0, RC)
    assert values(result, RC) == ["c1", "p"]
    assert [o for o, _ in visible_records(result, RC)] == [2, 3]
    assert next_offset(result, 0) == 6


def test_abort_marker_removes_the_pid_so_its_next_transaction_is_visible():
    log = make_log()
    txn(log, 7, 0, "aborted")
    end(log, 7, ControlType.ABORT)
    txn(log, 7, 1, "committed")
    end(log, 7, ControlType.COMMIT)
    log.advance_high_watermark(log.log_end_offset)
    assert values(log.read(0, RC), RC) == ["committed"]


def test_non_transactional_batches_are_never_skipped():
    """isBatchAborted needs the transactional bit: an idempotent batch of an aborted pid stays visible."""
    idempotent = LogBatch(
        base_offset=1, records=(Record(None, "idem"),), producer_id=7, producer_epoch=0, base_sequence=1
    )
    result = FetchResult(
        error=Errors.NONE,
        batches=(
            LogBatch(base_offset=0, records=(Record(None, "t"),), producer_id=7, producer_epoch=0, base_sequence=0,
                     is_transactional=True),
            idempotent,
        ),
        high_watermark=2,
        last_stable_offset=2,
        log_start_offset=0,
        aborted_transactions=(AbortedTransaction(producer_id=7, first_offset=0),),
    )
    assert values(result, RC) == ["idem"]


def test_control_records_are_never_returned_in_either_isolation():
    log = make_log()
    txn(log, 7, 0, "a")
    end(log, 7, ControlType.COMMIT)
    log.advance_high_watermark(log.log_end_offset)
    for isolation in (RC, RU):
        result = log.read(0, isolation)
        assert values(result, isolation) == ["a"]
        assert next_offset(result, 0) == 2  # the position moves past the marker


def test_read_uncommitted_sees_aborted_and_open_data_below_the_hw():
    log = make_log()
    txn(log, 7, 0, "aborted")
    end(log, 7, ControlType.ABORT)
    txn(log, 8, 0, "open")
    plain(log, "above-hw")
    log.advance_high_watermark(3)
    result = log.read(0, RU)
    assert values(result, RU) == ["aborted", "open"]
    assert values(log.read(0, RC), RC) == []  # the LSO is pinned at 2 by pid 8; offset 0 is aborted


def test_records_below_the_fetch_offset_are_dropped():
    log = make_log()
    plain(log, "a", "b", "c")
    log.advance_high_watermark(3)
    result = log.read(1, RU)
    assert visible_records(result, RU) == [(1, Record(None, "b")), (2, Record(None, "c"))]
    assert next_offset(result, 1) == 3


def test_aborted_batches_move_the_position_past_them():
    log = make_log()
    txn(log, 7, 0, "x", "y")
    end(log, 7, ControlType.ABORT)
    log.advance_high_watermark(log.log_end_offset)
    result = log.read(0, RC)
    assert visible_records(result, RC) == []
    assert next_offset(result, 0) == 3


def test_empty_response_keeps_the_position():
    log = make_log()
    txn(log, 7, 0, "open")
    log.advance_high_watermark(1)
    result = log.read(0, RC)
    assert result.batches == () and next_offset(result, 0) == 0


def test_paging_with_max_records_sees_the_same_records_as_one_read():
    log = make_log()
    txn(log, 7, 0, "a1")
    txn(log, 8, 0, "b1")
    plain(log, "p1")
    txn(log, 7, 1, "a2")
    end(log, 7, ControlType.ABORT)
    txn(log, 8, 1, "b2")
    end(log, 8, ControlType.COMMIT)
    plain(log, "p2")
    log.advance_high_watermark(log.log_end_offset)
    whole = values(log.read(0, RC), RC)
    paged, position = [], 0
    while position < log.last_stable_offset:
        page = log.read(position, RC, max_records=1)
        paged += values(page, RC)
        position = next_offset(page, position)
    assert whole == paged == ["b1", "p1", "b2", "p2"]
