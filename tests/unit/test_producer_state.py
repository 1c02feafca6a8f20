"""Producer-state rules of a partition leader (reference §2, §4), each against the Kafka behaviour it
reproduces. Driven through the real PartitionLog and ProducerStateManager."""

from __future__ import annotations

import pytest

from eosim.models.config import BrokerConfig
from eosim.models.errors import Errors
from eosim.models.log import AppendOrigin, PartitionLog, VerificationGuard
from eosim.models.producer_state import BatchMetadata
from eosim.models.records import MAX_SEQUENCE, ControlType, IsolationLevel, Record, RecordBatch, TopicPartition

TP = TopicPartition("t", 0)
DAY = 86_400_000
NONE = Errors.NONE
OOOS = Errors.OUT_OF_ORDER_SEQUENCE_NUMBER


def make_log(**config) -> PartitionLog:
    return PartitionLog(TP, BrokerConfig(**config))


def batch(pid: int, epoch: int, seq: int, n: int = 1, *, txn: bool = False, ts: int = 0, tag: str = "v") -> RecordBatch:
    records = tuple(Record(None, f"{tag}{seq}.{i}", ts) for i in range(n))
    return RecordBatch(records=records, producer_id=pid, producer_epoch=epoch, base_sequence=seq, is_transactional=txn)


def send(log: PartitionLog, b: RecordBatch, now: int = 0, *, supports_epoch_bump: bool = False):
    """Produce as a well-behaved leader does: verify a transactional batch first (the TC says yes)."""
    guard = None
    if log.needs_verification(b, supports_epoch_bump=supports_epoch_bump):
        guard = log.start_verification(
            b.producer_id, b.producer_epoch, b.base_sequence, supports_epoch_bump=supports_epoch_bump, now=now
        )
    return log.append_as_leader(b, now, verification_guard=guard)


def marker(
    log: PartitionLog, pid: int, epoch: int, control=ControlType.COMMIT, *, now: int = 0, coordinator_epoch: int = 0
):
    return log.append_marker(
        producer_id=pid, producer_epoch=epoch, coordinator_epoch=coordinator_epoch, control=control, now=now
    )


# -- duplicates and the dedup window (KAFKA-5494, KAFKA-5793) ------------------------------------------


def test_duplicate_within_window_returns_original_offsets_and_appends_nothing():
    """PSE.findDuplicateBatch: any of the last 5 batches is recognised and acked with its offsets (1.0+)."""
    log = make_log()
    results = [send(log, batch(7, 0, seq, 2)) for seq in range(0, 10, 2)]
    leo = log.log_end_offset
    for b_seq, original in zip(range(0, 10, 2), results):
        retry = send(log, batch(7, 0, b_seq, 2))
        assert retry.error is NONE and retry.duplicate
        assert (retry.base_offset, retry.last_offset) == (original.base_offset, original.last_offset)
    assert log.log_end_offset == leo and len(log.batches) == 5


def test_retry_older_than_the_window_is_out_of_order_sequence():
    """A retry of the 6th-newest batch falls out of the 5-batch cache and fails the sequence check."""
    log = make_log()
    for seq in range(6):
        assert send(log, batch(7, 0, seq)).error is NONE
    assert send(log, batch(7, 0, 0)).error is OOOS
    assert send(log, batch(7, 0, 1)).duplicate


def test_window_of_one_batch_reproduces_kafka_5494():
    """KAFKA-5494: 0.11 brokers cached one batch, so with 2 requests in flight the retry of the first
    (after the second landed) is not seen as a duplicate."""
    log = make_log(eosim_num_batches_to_retain=1)
    assert send(log, batch(7, 0, 0)).error is NONE
    assert send(log, batch(7, 0, 1)).error is NONE
    assert send(log, batch(7, 0, 0)).error is OOOS
    assert send(log, batch(7, 0, 1)).duplicate


def test_duplicate_needs_the_same_epoch_and_exact_sequence_range():
    log = make_log()
    send(log, batch(7, 0, 0, 3))
    assert send(log, batch(7, 0, 0, 2)).error is OOOS  # same first seq, other range: not a duplicate
    assert send(log, batch(7, 1, 0, 3)).duplicate is False  # a new epoch starting at 0 is new data


# -- epochs and sequences (PAI.checkProducerEpoch, PAI.checkSequence) -----------------------------------


def test_epoch_bump_requires_sequence_zero():
    log = make_log()
    send(log, batch(7, 0, 0, 3))
    assert send(log, batch(7, 1, 3)).error is OOOS
    assert send(log, batch(7, 1, 0)).error is NONE


def test_unknown_producer_accepts_any_sequence_kip_360():
    """Since 2.5 (KIP-360) a pid with no state takes any sequence instead of UNKNOWN_PRODUCER_ID."""
    log = make_log()
    assert send(log, batch(7, 3, 12345)).error is NONE
    assert send(log, batch(7, 3, 12346)).error is NONE


def test_first_batch_at_sequence_1_then_0_is_out_of_order_kip_360():
    """The broker rule of the findings implicit-ack-of-a-lost-first-batch and
    idempotent-epoch-bump-rewrites-a-first-batch: the first batch a partition sees of a producer id is appended
    at sequence 1; the entry then has epoch 0, so the lost sequence 0 is out of order, and a retry of sequence 1
    is a duplicate. The same requests on Kafka 4.1.2: tests/conformance/test_finding_facts.py."""
    log = make_log()
    assert (send(log, batch(7, 0, 1)).error, log.log_end_offset) == (NONE, 1)
    assert send(log, batch(7, 0, 0)).error is OOOS
    retry = send(log, batch(7, 0, 1))
    assert retry.duplicate and retry.base_offset == 0
    assert send(log, batch(7, 0, 2)).base_offset == 1
    assert log.producer_state_manager.last_entry(7).last_seq == 2


def test_sequence_gap_is_out_of_order():
    log = make_log()
    send(log, batch(7, 0, 0))
    assert send(log, batch(7, 0, 2)).error is OOOS
    assert log.log_end_offset == 1


def test_sequence_wraps_from_max_to_zero_kafka_7692():
    log = make_log()
    assert send(log, batch(7, 0, MAX_SEQUENCE - 1, 2)).error is NONE
    assert send(log, batch(7, 0, 0)).error is NONE
    assert send(log, batch(7, 0, 1)).error is NONE


def test_batch_spanning_the_wrap_and_its_duplicate_kafka_7692():
    log = make_log()
    first = send(log, batch(7, 0, MAX_SEQUENCE - 1, 3))  # sequences MAX-1, MAX, 0
    assert first.error is NONE
    assert send(log, batch(7, 0, MAX_SEQUENCE - 1, 3)).duplicate
    assert send(log, batch(7, 0, 0)).error is OOOS
    assert send(log, batch(7, 0, 1)).error is NONE


def test_stale_epoch_is_invalid_producer_epoch():
    """KIP-588 (2.7): a lower epoch is INVALID_PRODUCER_EPOCH (abortable), no longer PRODUCER_FENCED."""
    log = make_log()
    send(log, batch(7, 2, 0))
    assert send(log, batch(7, 1, 1)).error is Errors.INVALID_PRODUCER_EPOCH


def test_stale_epoch_is_reported_before_the_missing_verification_kafka_19690():
    log = make_log()
    send(log, batch(7, 2, 0, txn=True))
    marker(log, 7, 2)
    late = log.append_as_leader(batch(7, 1, 1, txn=True), 0)  # no guard at all
    assert late.error is Errors.INVALID_PRODUCER_EPOCH


def test_non_transactional_batch_inside_an_open_transaction_is_invalid_txn_state():
    """PAI.appendDataBatch: a plain write from a producer whose transaction is open."""
    log = make_log()
    assert send(log, batch(7, 0, 0, txn=True)).error is NONE
    assert send(log, batch(7, 0, 1)).error is Errors.INVALID_TXN_STATE
    assert log.log_end_offset == 1
    marker(log, 7, 0)
    assert send(log, batch(7, 0, 1)).error is NONE  # allowed again once the txn is closed


def test_coordinator_writes_get_epoch_checks_but_no_sequence_checks():
    """PAI.maybeValidateDataBatch: origin COORDINATOR (TxnOffsetCommit) skips checkSequence."""
    log = make_log(transaction_partition_verification_enable=False)
    write = RecordBatch(records=(Record("g", "1"),), producer_id=7, producer_epoch=1, is_transactional=True)
    assert log.append_as_leader(write, 0, origin=AppendOrigin.COORDINATOR).error is NONE
    assert log.append_as_leader(write, 0, origin=AppendOrigin.COORDINATOR).error is NONE  # no dedup either
    stale = RecordBatch(records=(Record("g", "1"),), producer_id=7, producer_epoch=0, is_transactional=True)
    assert log.append_as_leader(stale, 0, origin=AppendOrigin.COORDINATOR).error is Errors.INVALID_PRODUCER_EPOCH


def test_plain_batches_need_no_producer_state():
    log = make_log()
    plain = RecordBatch(records=(Record(None, "a"), Record(None, "b")))
    assert log.append_as_leader(plain, 0).base_offset == 0
    assert log.append_as_leader(plain, 0).base_offset == 2  # no dedup without a pid
    assert log.producer_state_manager.producers == {}


# -- markers (PAI.appendEndTxnMarker) ----------------------------------------------------------------


def test_marker_takes_one_offset_and_closes_the_transaction():
    log = make_log()
    send(log, batch(7, 0, 0, 3, txn=True))
    result = marker(log, 7, 0, ControlType.ABORT)
    assert (result.base_offset, result.last_offset, log.log_end_offset) == (3, 3, 4)
    assert log.producer_state_manager.producers[7].current_txn_first_offset is None
    assert [(t.first_offset, t.last_offset) for t in log.txn_index] == [(0, 3)]


def test_empty_marker_consumes_an_offset_without_completing_a_txn_kafka_10702():
    """A marker for a txn that wrote nothing here: offset consumed, no CompletedTxn, index or LSO effect."""
    log = make_log()
    send(log, RecordBatch(records=(Record(None, "p"),)))
    result = marker(log, 9, 0, ControlType.ABORT)
    assert result.error is NONE and result.base_offset == 1 and log.log_end_offset == 2
    assert log.txn_index == [] and log.producer_state_manager.unreplicated_txns == {}
    log.advance_high_watermark(2)
    assert log.last_stable_offset == 2
    assert log.producer_state_manager.producers[9].producer_epoch == 0  # the entry still learns the epoch


def test_marker_from_an_older_coordinator_epoch_is_fenced():
    log = make_log()
    send(log, batch(7, 0, 0, txn=True))
    marker(log, 7, 0, coordinator_epoch=5)
    send(log, batch(7, 0, 1, txn=True))
    zombie = marker(log, 7, 0, coordinator_epoch=4)
    assert zombie.error is Errors.TRANSACTION_COORDINATOR_FENCED
    assert log.log_end_offset == 3 and log.has_ongoing_transaction(7, 0)


def test_marker_with_a_stale_producer_epoch_is_invalid_producer_epoch():
    log = make_log()
    send(log, batch(7, 3, 0, txn=True))
    assert marker(log, 7, 2).error is Errors.INVALID_PRODUCER_EPOCH
    assert marker(log, 7, 3).error is NONE  # equal epoch is fine up to 4.1 (KAFKA-19446 is 4.2)


def test_tv1_marker_at_the_same_epoch_keeps_cached_batches():
    """TV1: the epoch is the same across transactions, so sequences continue and a retry of a batch of
    the previous transaction is still a duplicate after its marker."""
    log = make_log()
    first = send(log, batch(7, 0, 0, 2, txn=True))
    marker(log, 7, 0, ControlType.COMMIT)
    # the duplicate check comes before verification: no guard is needed to be told "duplicate"
    retry = log.append_as_leader(batch(7, 0, 0, 2, txn=True), 0)
    assert retry.duplicate and retry.base_offset == first.base_offset
    assert send(log, batch(7, 0, 2, txn=True)).error is NONE
    assert log.has_ongoing_transaction(7, 0)


def test_tv2_marker_with_a_bumped_epoch_clears_cached_batches():
    """TV2 (KIP-890 part 2): the marker carries epoch+1, which empties the cache; the next txn starts at
    seq 0 and a late batch of the old epoch is fenced."""
    log = make_log()
    send(log, batch(7, 0, 0, 2, txn=True), supports_epoch_bump=True)
    marker(log, 7, 1, ControlType.COMMIT)
    entry = log.producer_state_manager.producers[7]
    assert entry.producer_epoch == 1 and entry.is_empty
    assert send(log, batch(7, 0, 0, 2, txn=True)).error is Errors.INVALID_PRODUCER_EPOCH
    assert send(log, batch(7, 1, 2, txn=True), supports_epoch_bump=True).error is OOOS
    assert send(log, batch(7, 1, 0, txn=True), supports_epoch_bump=True).error is NONE


# -- KIP-890 part 1: verification ------------------------------------------------------------------


def test_verification_rejects_a_late_batch_after_the_abort_kafka_12671():
    """KAFKA-12671: a produce delayed past its txn's abort marker would open a txn nobody will end.
    With verification the batch carries no valid guard and gets INVALID_TXN_STATE; the LSO moves on."""
    log = make_log()
    send(log, batch(7, 0, 0, txn=True))
    marker(log, 7, 0, ControlType.ABORT)
    log.advance_high_watermark(log.log_end_offset)
    late = log.append_as_leader(batch(7, 0, 1, txn=True), 0)  # the TC would not verify it: no guard
    assert late.error is Errors.INVALID_TXN_STATE
    assert log.log_end_offset == 2 and log.last_stable_offset == 2


def test_guard_taken_before_an_abort_marker_no_longer_verifies_kafka_14884():
    """The ABA case: verification starts, the abort marker lands, then the (stale) verified append comes."""
    log = make_log()
    send(log, batch(7, 0, 0, txn=True))
    marker(log, 7, 0, ControlType.ABORT)
    guard = log.start_verification(7, 0, 1)
    assert guard is not VerificationGuard.SENTINEL
    marker(log, 7, 0, ControlType.ABORT)  # e.g. a timeout abort: clears the pending verification
    assert log.append_as_leader(batch(7, 0, 1, txn=True), 0, verification_guard=guard).error is Errors.INVALID_TXN_STATE
    fresh = log.start_verification(7, 0, 1)
    assert log.append_as_leader(batch(7, 0, 1, txn=True), 0, verification_guard=fresh).error is NONE


def test_without_verification_the_late_batch_hangs_the_transaction_kafka_12671():
    """verification off (pre-3.6 behaviour): the late batch starts a txn no marker will close, and the
    LSO stays stuck below everything written after it, for every producer."""
    log = make_log(transaction_partition_verification_enable=False)
    send(log, batch(7, 0, 0, txn=True))
    marker(log, 7, 0, ControlType.ABORT)
    late = log.append_as_leader(batch(7, 0, 1, txn=True), 0)
    assert late.error is NONE and late.base_offset == 2
    for i in range(3):
        log.append_as_leader(RecordBatch(records=(Record(None, f"other{i}"),)), 0)
    log.advance_high_watermark(log.log_end_offset)
    assert log.log_end_offset == 6 and log.last_stable_offset == 2
    assert log.list_offset_latest(IsolationLevel.READ_COMMITTED) == 2


def test_needs_verification_only_without_an_ongoing_txn_for_that_epoch():
    log = make_log()
    b = batch(7, 0, 0, txn=True)
    assert log.needs_verification(b)
    send(log, b)
    assert not log.needs_verification(batch(7, 0, 1, txn=True))
    assert log.needs_verification(batch(7, 1, 0, txn=True))  # KAFKA-14563: the epoch is part of it
    assert not log.needs_verification(batch(7, 0, 1))
    off = make_log(transaction_partition_verification_enable=False)
    assert not off.needs_verification(b)
    assert off.needs_verification(b, supports_epoch_bump=True)  # TV2 produce: the leader adds the partition


def test_start_verification_returns_the_sentinel_for_an_ongoing_txn():
    log = make_log()
    send(log, batch(7, 0, 0, txn=True))
    assert log.start_verification(7, 0, 1) is VerificationGuard.SENTINEL
    assert not VerificationGuard.SENTINEL.verify(VerificationGuard.SENTINEL)
    # the ongoing txn is its own proof: no guard needed for the next batch
    assert log.append_as_leader(batch(7, 0, 1, txn=True), 0).error is NONE


def test_stale_epoch_fails_verification_early_kafka_18042():
    log = make_log()
    send(log, batch(7, 4, 0, txn=True))
    assert log.verification_epoch_error(7, 3) is Errors.INVALID_PRODUCER_EPOCH
    assert log.verification_epoch_error(7, 4) is NONE
    assert log.start_verification(7, 3, 0) is VerificationGuard.SENTINEL
    assert log.producer_state_manager.verification_states == {}


def test_lower_sequence_still_verifying_blocks_higher_ones_kafka_14920():
    """VSE.lowestSequence: a new producer (any sequence accepted) has seq 0 and seq 1 in flight; seq 0's
    verification is still pending, so seq 1 may not be written first (it would send seq 0 into an
    OUT_OF_ORDER_SEQUENCE_NUMBER loop)."""
    log = make_log()
    guard = log.start_verification(7, 0, 0)
    assert log.start_verification(7, 0, 1) is guard  # one entry per pid, lowest sequence 0
    assert log.append_as_leader(batch(7, 0, 1, txn=True), 0, verification_guard=guard).error is OOOS
    assert log.append_as_leader(batch(7, 0, 0, txn=True), 0, verification_guard=guard).error is NONE
    assert log.append_as_leader(batch(7, 0, 1, txn=True), 0).error is NONE  # the txn is ongoing now


def test_a_lower_sequence_lowers_the_verification_bar_kafka_14920():
    log = make_log()
    log.start_verification(7, 0, 5)
    log.start_verification(7, 0, 3)
    assert log.producer_state_manager.verification_states[7].lowest_sequence == 3


def test_verification_entry_epoch_bump_resets_the_lowest_sequence():
    log = make_log()
    log.start_verification(7, 0, 5)
    log.start_verification(7, 1, 9)
    vse = log.producer_state_manager.verification_states[7]
    assert (vse.epoch, vse.lowest_sequence) == (1, 9)


def test_tv2_producer_without_state_must_start_at_sequence_zero_kafka_18202():
    """4.1: a TV2 (epoch-bumping) transactional producer unknown to the partition must send seq 0;
    a TV1 one is accepted at any sequence."""
    log = make_log()
    assert send(log, batch(7, 0, 4, txn=True), supports_epoch_bump=True).error is OOOS
    assert send(log, batch(7, 0, 0, txn=True), supports_epoch_bump=True).error is NONE
    tv1 = make_log()
    assert send(tv1, batch(7, 0, 4, txn=True)).error is NONE


def test_tv2_marker_keeps_the_guard_of_the_next_transaction():
    """UL.updateProducers: under TV2 the next txn may be verified at epoch e+1 before the previous txn's
    marker (also e+1) lands; that marker must not clear the new guard."""
    log = make_log()
    send(log, batch(7, 0, 0, txn=True), supports_epoch_bump=True)
    guard = log.start_verification(7, 1, 0, supports_epoch_bump=True)
    marker(log, 7, 1, ControlType.COMMIT)
    assert log.append_as_leader(batch(7, 1, 0, txn=True), 0, verification_guard=guard).error is NONE


def test_data_append_uses_up_the_guard():
    log = make_log()
    guard = log.start_verification(7, 0, 0)
    assert log.append_as_leader(batch(7, 0, 0, txn=True), 0, verification_guard=guard).error is NONE
    assert log.producer_state_manager.verification_states == {}


# -- expiration (PSM.removeExpiredProducers, KIP-854) -------------------------------------------------


def test_producer_expires_from_its_last_record_timestamp():
    log = make_log()
    send(log, batch(7, 0, 0, ts=1_000))
    assert log.remove_expired_producers(1_000 + DAY - 1) == []
    assert log.remove_expired_producers(1_000 + DAY) == [7]
    # after expiry the pid is unknown again: any sequence is accepted (and the dedup cache is gone)
    assert send(log, batch(7, 0, 0, ts=1_000)).duplicate is False


def test_expired_pids_are_sorted():
    log = make_log()
    for pid in (9, 3, 5):
        send(log, batch(pid, 0, 0))
    assert log.remove_expired_producers(DAY) == [3, 5, 9]


def test_marker_timestamp_delays_expiration_kafka_9144():
    """KAFKA-9144: the marker's timestamp (the leader's clock when it writes it) updates lastTimestamp,
    so a producer whose data is old but whose txn just ended is not expired."""
    log = make_log()
    send(log, batch(7, 0, 0, txn=True, ts=0))
    marker(log, 7, 0, now=5_000)
    assert log.remove_expired_producers(DAY) == []
    assert log.remove_expired_producers(5_000 + DAY) == [7]


def test_producer_with_an_open_transaction_never_expires():
    log = make_log()
    send(log, batch(7, 0, 0, txn=True, ts=0))
    assert log.remove_expired_producers(100 * DAY) == []
    assert log.has_ongoing_transaction(7, 0)


def test_verification_entries_expire_on_the_same_timer():
    log = make_log()
    guard = log.start_verification(7, 0, 0, now=10)
    log.remove_expired_producers(10 + DAY - 1)
    assert log.producer_state_manager.verification_state_entry(7) is not None
    log.remove_expired_producers(10 + DAY)
    assert log.producer_state_manager.verification_state_entry(7) is None
    assert log.append_as_leader(batch(7, 0, 0, txn=True), 0, verification_guard=guard).error is Errors.INVALID_TXN_STATE


# -- snapshots and reload (PSM.writeSnapshot, UL.rebuildProducerState) -------------------------------


def test_snapshot_keeps_only_the_last_batch_per_producer():
    log = make_log()
    for seq in range(0, 8, 2):
        send(log, batch(7, 0, seq, 2, ts=seq))
    snap = log.snapshot()
    assert snap.offset == 8
    (entry,) = snap.entries
    assert (entry.producer_id, entry.last_sequence, entry.last_offset, entry.offset_delta) == (7, 7, 7, 1)


def test_reload_from_snapshot_shrinks_the_dedup_window_to_one_batch():
    """After a restart only the snapshot's last batch is cached: a retry of an older batch that was a
    duplicate before the restart is now OUT_OF_ORDER_SEQUENCE_NUMBER."""
    log = make_log()
    results = [send(log, batch(7, 0, seq)) for seq in range(5)]
    assert send(log, batch(7, 0, 2)).duplicate
    log.reload(log.snapshot())
    assert send(log, batch(7, 0, 2)).error is OOOS
    retry = send(log, batch(7, 0, 4))
    assert retry.duplicate and retry.base_offset == results[4].base_offset
    assert [m.last_seq for m in log.producer_state_manager.producers[7].batch_metadata] == [4]


def test_reload_replays_the_batches_after_the_snapshot():
    log = make_log()
    send(log, batch(7, 0, 0))
    snap = log.snapshot()
    for seq in range(1, 8):
        send(log, batch(7, 0, seq))
    log.reload(snap)
    cached = [m.last_seq for m in log.producer_state_manager.producers[7].batch_metadata]
    assert cached == [3, 4, 5, 6, 7]  # the window fills up again from the replayed batches
    assert send(log, batch(7, 0, 8)).error is NONE


def test_reload_without_a_snapshot_replays_the_whole_log():
    log = make_log()
    for seq in range(3):
        send(log, batch(7, 0, seq))
    log.reload(None)
    assert [m.last_seq for m in log.producer_state_manager.producers[7].batch_metadata] == [0, 1, 2]
    assert send(log, batch(7, 0, 0)).duplicate


def test_reload_restores_open_and_unreplicated_transactions():
    log = make_log()
    send(log, batch(7, 0, 0, txn=True))  # open at the snapshot
    snap = log.snapshot()
    send(log, batch(8, 0, 0, txn=True))
    marker(log, 8, 0, ControlType.ABORT)  # replayed: completed, marker above the HW
    log.advance_high_watermark(1)
    log.reload(snap)
    psm = log.producer_state_manager
    assert log.has_ongoing_transaction(7, 0) and not log.has_ongoing_transaction(8, 0)
    assert list(psm.ongoing_txns) == [0] and list(psm.unreplicated_txns) == [1]
    assert log.first_unstable_offset == 0
    assert marker(log, 7, 0).error is NONE  # the restored txn can still be closed
    log.advance_high_watermark(log.log_end_offset)
    assert log.last_stable_offset == log.log_end_offset


def test_reload_ignores_a_snapshot_above_the_log_end():
    log = make_log()
    send(log, batch(7, 0, 0))
    snap = log.snapshot()
    other = make_log()
    other.reload(snap)
    assert other.producer_state_manager.producers == {}


def test_reload_drops_producers_expired_by_then():
    log = make_log()
    send(log, batch(7, 0, 0, ts=0))
    send(log, batch(8, 0, 0, ts=DAY))
    log.reload(log.snapshot(), now=DAY + 1)
    assert sorted(log.producer_state_manager.producers) == [8]


def test_replicated_marker_with_a_new_epoch_clears_the_cache_on_replay():
    log = make_log()
    send(log, batch(7, 0, 0, txn=True), supports_epoch_bump=True)
    snap = log.snapshot()
    marker(log, 7, 1)
    log.reload(snap)
    entry = log.producer_state_manager.producers[7]
    assert entry.producer_epoch == 1 and entry.is_empty and entry.current_txn_first_offset is None


# -- entry bookkeeping ---------------------------------------------------------------------------------


@pytest.mark.parametrize("last_seq, delta, first", [(9, 4, 5), (1, 3, MAX_SEQUENCE - 1)])
def test_batch_metadata_first_sequence_wraps(last_seq, delta, first):
    assert BatchMetadata(last_seq=last_seq, last_offset=100, offset_delta=delta, timestamp=0).first_seq == first


def test_cache_evicts_the_oldest_batch():
    log = make_log(eosim_num_batches_to_retain=3)
    for seq in range(5):
        send(log, batch(7, 0, seq))
    assert [m.last_seq for m in log.producer_state_manager.producers[7].batch_metadata] == [2, 3, 4]


# -- restart (LogLoader.recoverSegment + UL.rebuildProducerState) -------------------------------------


def test_recover_keeps_each_producers_last_batch_whatever_the_state_before():
    """A restart loads the snapshot taken at the log end (after recovering the unflushed segment, or at
    the clean shutdown): the window is the last batch, even though the full replay saw five."""
    log = make_log()
    results = {seq: send(log, batch(7, 0, seq)) for seq in range(6)}
    send(log, batch(8, 0, 0))
    log.recover(now=0)
    psm = log.producer_state_manager
    assert [m.last_seq for m in psm.producers[7].batch_metadata] == [5]
    assert [m.last_seq for m in psm.producers[8].batch_metadata] == [0]
    retry = send(log, batch(7, 0, 5))
    assert retry.duplicate and retry.base_offset == results[5].base_offset
    assert send(log, batch(7, 0, 4)).error is OOOS
    assert send(log, batch(7, 0, 6)).error is NONE  # the sequence goes on
    assert [m.last_seq for m in psm.producers[7].batch_metadata] == [5, 6]  # and the window refills


def test_recover_keeps_open_transactions_and_drops_expired_producers():
    log = make_log()
    send(log, batch(7, 0, 0, ts=0))
    send(log, batch(8, 0, 0, txn=True, ts=0))
    log.advance_high_watermark(log.log_end_offset)
    log.recover(now=DAY)
    assert sorted(log.producer_state_manager.producers) == [8]  # an open txn never expires
    assert log.has_ongoing_transaction(8, 0) and log.last_stable_offset == 1
    assert marker(log, 8, 0).error is NONE
