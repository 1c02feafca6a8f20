"""The ABORT marker ends a pid's aborted range: its next transaction is visible (CompletedFetch)."""

from eosim.models.config import BrokerConfig
from eosim.models.fetch import visible_records
from eosim.models.log import PartitionLog
from eosim.models.records import ControlType, IsolationLevel, Record, RecordBatch, TopicPartition


def test_committed_txn_after_an_aborted_one_of_the_same_pid_is_visible() -> None:
    log = PartitionLog(TopicPartition("t", 0), BrokerConfig(transaction_partition_verification_enable=False))
    for epoch, value, control in ((0, "aborted", ControlType.ABORT), (1, "committed", ControlType.COMMIT)):
        batch = RecordBatch(records=(Record("k", value),), producer_id=7, producer_epoch=epoch, base_sequence=0,
                            is_transactional=True)
        assert log.append_as_leader(batch, now=0).error.name == "NONE"
        log.append_marker(producer_id=7, producer_epoch=epoch, coordinator_epoch=0, control=control, now=0)
    log.advance_high_watermark(log.log_end_offset)
    result = log.read(0, IsolationLevel.READ_COMMITTED)
    assert [(o, r.value) for o, r in visible_records(result, IsolationLevel.READ_COMMITTED)] == [(2, "committed")]
