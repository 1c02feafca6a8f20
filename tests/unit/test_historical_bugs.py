"""Historical bugs switched back on (models/bugs.py, ``eosim.reintroduce``), driven on the models alone.

Each test runs the steps of the reference's §8 entry twice: with the fix (Kafka today) the entry's
invariant holds, with the bug reintroduced it breaks. The releases each bug is in (``Bug.affects``) are
tested in tests/unit/test_kafka_releases.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from eosim.models.bugs import HISTORICAL_BUGS, cluster_switch
from eosim.models.config import BrokerConfig
from eosim.models.errors import Errors
from eosim.models.log import PartitionLog
from eosim.models.records import MAX_EPOCH, MAX_SEQUENCE, ControlType, Record, RecordBatch, TopicPartition
from eosim.models.txn_coordinator import (
    AddPartitionsToTxnRequest,
    AppendTxnLog,
    EndTxnRequest,
    InitProducerIdRequest,
    Respond,
    SendTxnMarkers,
    TransactionCoordinator,
    TransactionState,
)

MODELS = Path(__file__).resolve().parents[2] / "models"
THIS = Path(__file__)
TP = TopicPartition("out", 0)
TID = "tx"
NONE = Errors.NONE
OOOS = Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
FIXED, BUGGY = False, True
both = pytest.mark.parametrize("buggy", [FIXED, BUGGY], ids=["fixed", "reintroduced"])


def config(bug: str, buggy: bool, **kw) -> BrokerConfig:
    return BrokerConfig(eosim_reintroduce=(bug,) if buggy else (), **kw)


# --- partition log helpers ----------------------------------------------------------------------------


def batch(pid: int, epoch: int, seq: int, n: int = 1, *, txn: bool = False, ts: int = 0) -> RecordBatch:
    records = tuple(Record(None, f"v{seq}.{i}", ts) for i in range(n))
    return RecordBatch(records=records, producer_id=pid, producer_epoch=epoch, base_sequence=seq, is_transactional=txn)


def verified(log: PartitionLog, b: RecordBatch, now: int = 0):
    """A produce whose verification the coordinator granted (or that needed none)."""
    guard = log.start_verification(b.producer_id, b.producer_epoch, b.base_sequence) if log.needs_verification(b) \
        else None
    return log.append_as_leader(b, now, verification_guard=guard)


def marker(log: PartitionLog, pid: int, epoch: int, *, now: int = 0, coordinator_epoch: int = 0):
    return log.append_marker(producer_id=pid, producer_epoch=epoch, coordinator_epoch=coordinator_epoch,
                             control=ControlType.ABORT, now=now)


# --- coordinator helpers ------------------------------------------------------------------------------


def the(effects, kind):
    (effect,) = [e for e in effects if isinstance(e, kind)]
    return effect


def durable(c: TransactionCoordinator, effects, error: Errors = NONE, now: int = 0):
    return c.on_log_append(the(effects, AppendTxnLog).write_id, error, now)


def reply(effects):
    return the(effects, Respond).response


def init(c: TransactionCoordinator) -> tuple[int, int]:
    response = reply(durable(c, c.handle(1, InitProducerIdRequest(transactional_id=TID,
                                                                  transaction_timeout_ms=60_000), 0)))
    return response.producer_id, response.producer_epoch


def add(c: TransactionCoordinator, pid: int, epoch: int, tv: int = 1, now: int = 0):
    request = AddPartitionsToTxnRequest(transactional_id=TID, producer_id=pid, producer_epoch=epoch,
                                        partitions=(TP,), transaction_version=tv)
    effects = c.handle(2, request, now)
    if any(isinstance(e, AppendTxnLog) for e in effects):
        effects = durable(c, effects, now=now)
    return dict(reply(effects).results)[TP]


def end(c: TransactionCoordinator, pid: int, epoch: int, *, commit: bool, tv: int):
    request = EndTxnRequest(transactional_id=TID, producer_id=pid, producer_epoch=epoch, committed=commit,
                            transaction_version=tv)
    return c.handle(3, request, 0)


def seed_epoch(c: TransactionCoordinator, epoch: int) -> None:
    """Put the durable epoch at ``epoch`` (as if reloaded from the log) instead of bumping 30000 times."""
    c._txns[TID].producer_epoch = epoch


def markers_to(c: TransactionCoordinator, effects, log: PartitionLog, now: int = 0):
    """The marker channel: write each marker to ``log``, report the result, append Complete*."""
    entry = the(effects, SendTxnMarkers).entry
    result = log.append_marker(producer_id=entry.producer_id, producer_epoch=entry.producer_epoch,
                               coordinator_epoch=entry.coordinator_epoch, control=entry.result.control_type, now=now)
    log.advance_high_watermark(log.log_end_offset)
    return durable(c, c.on_marker_result(entry, TP, result.error, now), now=now)


# --- §8.1 KAFKA-5494: the dedup window ------------------------------------------------------------------


@both
def test_kafka_5494_retry_of_an_older_in_flight_batch_is_a_duplicate(buggy):
    """Five batches in flight, the first one's response is lost, the other four are acked, the first is
    retried. Invariant: every acked record appears exactly once (the retry is recognised as a duplicate)."""
    log = PartitionLog(TP, config("KAFKA-5494", buggy))
    first = verified(log, batch(7, 0, 0))
    for seq in range(1, 5):
        assert verified(log, batch(7, 0, seq)).error is NONE
    retry = verified(log, batch(7, 0, 0))
    if buggy:  # 0.11 cached the last batch only: the retry looks like a gap, and the producer re-sends it as new
        assert retry.error is OOOS
    else:
        assert retry.duplicate and retry.base_offset == first.base_offset
    assert log.log_end_offset == 5


# --- §8.2 KAFKA-6119: timeout abort without fencing -------------------------------------------------------


@both
def test_kafka_6119_timed_out_producer_cannot_write_after_the_abort(buggy):
    """P(e) adds p and writes B1, stalls past its timeout; the coordinator aborts. P resumes and writes
    B2(e, next seq). Invariant: after a coordinator-initiated abort no data of (pid, e) is appended, and
    the LSO reaches the HW. (Verification off, as before KIP-890: with it the TC would refuse B2.)"""
    cfg = config("KAFKA-6119", buggy, transaction_version=1, transaction_partition_verification_enable=False)
    c, log = TransactionCoordinator(cfg), PartitionLog(TP, cfg)
    pid, e = init(c)
    assert add(c, pid, e) is NONE
    assert verified(log, batch(pid, e, 0, txn=True)).error is NONE
    effects = durable(c, c.abort_timed_out_transactions(10**9))
    assert the(effects, SendTxnMarkers).entry.producer_epoch == (e if buggy else e + 1)
    markers_to(c, effects, log)
    assert c.metadata(TID).state is TransactionState.COMPLETE_ABORT
    late = verified(log, batch(pid, e, 1, txn=True))
    log.advance_high_watermark(log.log_end_offset)
    if buggy:  # an open txn the coordinator knows nothing about: the LSO is stuck for good
        assert late.error is NONE
        assert log.last_stable_offset == late.base_offset < log.high_watermark
    else:
        assert late.error is Errors.INVALID_PRODUCER_EPOCH
        assert log.last_stable_offset == log.high_watermark


# --- §8.5 KAFKA-9144: marker timestamps and producer expiry -------------------------------------------


@both
def test_kafka_9144_producer_state_outlives_its_last_marker(buggy):
    """P's last data batch is old; a timeout abort marker (coordinator epoch 3) lands at t=5000. Invariant:
    the state is not expired within producer.id.expiration.ms of the last marker, so a zombie
    coordinator's marker (epoch 2) is still fenced: the per-pid coordinator epoch never goes back."""
    log = PartitionLog(TP, config("KAFKA-9144", buggy, producer_id_expiration_ms=1_000))
    verified(log, batch(7, 0, 0, txn=True, ts=0))
    assert marker(log, 7, 1, now=5_000, coordinator_epoch=3).error is NONE
    assert log.remove_expired_producers(5_100) == ([7] if buggy else [])
    zombie = marker(log, 7, 1, now=5_200, coordinator_epoch=2)
    assert zombie.error is (NONE if buggy else Errors.TRANSACTION_COORDINATOR_FENCED)


# --- §8.6 KAFKA-9666: failed fences ---------------------------------------------------------------------


@both
def test_kafka_9666_failed_fence_writes_do_not_bump_the_epoch_again(buggy):
    """__transaction_state is below min ISR; a new instance calls InitProducerId three times while the
    TV1 txn is Ongoing, and every fence write fails. Invariant: the in-memory epoch advances only on
    durable writes (at most one fence ahead of the log)."""
    c = TransactionCoordinator(config("KAFKA-9666", buggy, transaction_version=1))
    pid, e = init(c)
    assert add(c, pid, e) is NONE
    for attempt in range(1, 4):
        effects = c.handle(10 + attempt, InitProducerIdRequest(transactional_id=TID, transaction_timeout_ms=60_000), 0)
        assert the(effects, AppendTxnLog).record.producer_epoch == (e + attempt if buggy else e + 1)
        assert reply(durable(c, effects, Errors.NOT_ENOUGH_REPLICAS)).error is Errors.COORDINATOR_NOT_AVAILABLE
    assert c.metadata(TID).producer_epoch == (e + 3 if buggy else e + 1)


# --- §8.8 KAFKA-16352: stuck Prepare* after a failover -----------------------------------------------------


@both
def test_kafka_16352_every_prepare_completes_after_a_failover(buggy):
    """The coordinator writes PrepareCommit and sends markers at coordinator epoch 0, then loses and regains
    the partition (epoch 1): the reload sends the markers again. The epoch-0 answer comes in late.
    Invariant: every Prepare* reaches Complete* while the coordinator and the partitions are available."""
    c = TransactionCoordinator(config("KAFKA-16352", buggy, transaction_version=1))
    written = []

    def persist(effects):
        written.extend(e.record for e in effects if isinstance(e, AppendTxnLog))
        return durable(c, effects)

    started = reply(persist(c.handle(1, InitProducerIdRequest(transactional_id=TID, transaction_timeout_ms=60_000), 0)))
    pid, e = started.producer_id, started.producer_epoch
    persist(c.handle(2, AddPartitionsToTxnRequest(transactional_id=TID, producer_id=pid, producer_epoch=e,
                                                  partitions=(TP,)), 0))
    old = the(persist(end(c, pid, e, commit=True, tv=1)), SendTxnMarkers).entry
    c.resign()
    c.elect(1)
    resent = the(c.load(written, coordinator_epoch=1, now=0), SendTxnMarkers).entry
    assert c.on_marker_result(old, TP, NONE, 0) == []  # the old epoch's answer, late
    completion = c.on_marker_result(resent, TP, NONE, 0)
    if buggy:  # the late answer took the new pending completion with it: stuck in PrepareCommit for good
        assert completion == []
        assert c.metadata(TID).state is TransactionState.PREPARE_COMMIT
        retry = c.handle(3, InitProducerIdRequest(transactional_id=TID, transaction_timeout_ms=60_000), 0)
        assert reply(retry).error is Errors.CONCURRENT_TRANSACTIONS
    else:
        durable(c, completion)
        assert c.metadata(TID).state is TransactionState.COMPLETE_COMMIT


# --- §8.10 KAFKA-7692: sequence wraparound --------------------------------------------------------------


@both
def test_kafka_7692_sequence_continues_from_int_max_to_zero(buggy):
    """Invariant: sequence continuity modulo 2^31, inSequence(MAX, 0)."""
    log = PartitionLog(TP, config("KAFKA-7692", buggy))
    assert verified(log, batch(7, 0, MAX_SEQUENCE - 1, 2)).error is NONE  # ends at Int.MAX_VALUE
    assert verified(log, batch(7, 0, 0)).error is (OOOS if buggy else NONE)


# --- §8.11 KAFKA-14920: out-of-order loop under verification ---------------------------------------------


@both
def test_kafka_14920_a_later_batch_never_overtakes_one_still_verifying(buggy):
    """B(seq 10..14) starts verification and fails with a retriable error; B'(seq 15) is verified.
    Invariant: a pid's appends on a partition are in sequence order with no permanent gap."""
    log = PartitionLog(TP, config("KAFKA-14920", buggy))
    b, b_later = batch(7, 0, 10, 5, txn=True), batch(7, 0, 15, txn=True)
    log.start_verification(7, 0, 10)  # B's verification: the coordinator answers NOT_COORDINATOR
    overtaking = verified(log, b_later)
    retried = verified(log, b)
    if buggy:  # B' went in first; B can never be appended: OUT_OF_ORDER_SEQUENCE_NUMBER on every retry
        assert (overtaking.error, retried.error) == (NONE, OOOS)
        assert verified(log, b).error is OOOS
    else:  # B' is refused until B is in; then both follow in order
        assert (overtaking.error, retried.error) == (OOOS, NONE)
        assert verified(log, b_later).error is NONE
        assert [x.base_sequence for x in log.batches] == [10, 15]


# --- §8.12 KAFKA-18464: TV2 empty abort during completion --------------------------------------------------


@both
def test_kafka_18464_producer_with_the_returned_epoch_is_not_fenced(buggy):
    """P commits (TV2): PrepareCommit(e+1) with Complete* pending, the reply says e+1. P's next txn fails
    locally and it aborts with e+1. Invariant: a producer using exactly the (pid, epoch) the coordinator
    returned is never fenced; the right answer is the retriable CONCURRENT_TRANSACTIONS."""
    c = TransactionCoordinator(config("KAFKA-18464", buggy))
    pid, e = init(c)
    assert add(c, pid, e, tv=2) is NONE
    response = reply(durable(c, end(c, pid, e, commit=True, tv=2)))
    assert (response.producer_id, response.producer_epoch) == (pid, e + 1)
    abort = reply(end(c, pid, e + 1, commit=False, tv=2))
    assert abort.error is (Errors.PRODUCER_FENCED if buggy else Errors.CONCURRENT_TRANSACTIONS)


# --- §8.14 KAFKA-18660, KAFKA-19367: TV2 epoch overflow ------------------------------------------------------


@both
def test_kafka_18660_endtxn_at_an_exhausted_epoch_returns_a_usable_producer_id(buggy):
    """EndTxn(commit) at epoch 32766 (TV2). Invariant: every successful EndTxn yields a usable (pid, epoch)."""
    c = TransactionCoordinator(config("KAFKA-18660", buggy))
    log = PartitionLog(TP, BrokerConfig())
    pid, _ = init(c)
    seed_epoch(c, MAX_EPOCH - 1)
    assert add(c, pid, MAX_EPOCH - 1, tv=2) is NONE
    effects = durable(c, end(c, pid, MAX_EPOCH - 1, commit=True, tv=2))
    response = reply(effects)
    assert response.error is NONE
    markers_to(c, effects, log)
    got = (response.producer_id, response.producer_epoch)
    if buggy:  # the Prepare* pid at Short.MaxValue: the pid is gone, the producer cannot go on
        assert got == (pid, MAX_EPOCH)
        assert add(c, *got, tv=2) is Errors.INVALID_PRODUCER_ID_MAPPING
    else:
        assert got == (pid + 1, 0)
        assert add(c, *got, tv=2) is NONE


@both
def test_kafka_19367_tv2_fence_abort_bumps_exactly_once(buggy):
    """InitProducerId fences an Ongoing TV2 txn at epoch 32766. Invariant: 0 <= epoch <= 32767 at all
    times; the fence-abort bumps once (to 32767), where the bug bumped twice and overflowed."""
    c = TransactionCoordinator(config("KAFKA-19367", buggy))
    pid, _ = init(c)
    seed_epoch(c, MAX_EPOCH - 1)
    assert add(c, pid, MAX_EPOCH - 1, tv=2) is NONE
    effects = c.handle(9, InitProducerIdRequest(transactional_id=TID, transaction_timeout_ms=60_000), 0)
    if buggy:  # 32766 -> 32767 (fence) -> 32768: IllegalArgumentException, answered UNKNOWN_SERVER_ERROR
        assert reply(effects).error is Errors.UNKNOWN_SERVER_ERROR
    else:
        record = the(effects, AppendTxnLog).record
        assert (record.state, record.producer_epoch) == (TransactionState.PREPARE_ABORT, MAX_EPOCH)


# --- §8.15 KAFKA-19690: the error class of a stale-epoch write -------------------------------------------


@both
def test_kafka_19690_stale_epoch_write_gets_the_epoch_error(buggy):
    """The TC timed out P(e) and bumped: p's abort marker is at e+1. P's next produce reaches the append
    without a verification guard (its txn looked ongoing when the request arrived). Invariant: a
    stale-epoch write always gets INVALID_PRODUCER_EPOCH, never INVALID_TXN_STATE (fatal for Streams)."""
    log = PartitionLog(TP, config("KAFKA-19690", buggy))
    verified(log, batch(7, 0, 0, txn=True))
    marker(log, 7, 1)
    late = log.append_as_leader(batch(7, 0, 1, txn=True), 0)
    assert late.error is (Errors.INVALID_TXN_STATE if buggy else Errors.INVALID_PRODUCER_EPOCH)


# --- KAFKA-20785: a commit racing the coordinator's timeout abort -----------------------------------------


@both
def test_kafka_20785_commit_after_the_timeout_abort_is_fenced_not_an_invalid_state(buggy):
    """P(e) adds p (TV2) and stalls past its timeout; the coordinator aborts and bumps to e+1 (CompleteAbort).
    P's EndTxn(commit) at e looks like a retry (stored epoch == e + 1). Invariant: the stale commit gets the
    recoverable PRODUCER_FENCED, not the fatal INVALID_TXN_STATE. Only 4.3.2 has the fix, so the fixed
    run is on 4.3.2; every other 4.x release, the pinned one included, has the bug."""
    c = TransactionCoordinator(config("KAFKA-20785", buggy, eosim_kafka_version="4.3.2"))
    log = PartitionLog(TP, BrokerConfig())
    pid, e = init(c)
    assert add(c, pid, e, tv=2) is NONE
    markers_to(c, durable(c, c.abort_timed_out_transactions(10**9)), log)
    assert (c.metadata(TID).state, c.metadata(TID).producer_epoch) == (TransactionState.COMPLETE_ABORT, e + 1)
    commit = reply(end(c, pid, e, commit=True, tv=2))
    assert commit.error is (Errors.INVALID_TXN_STATE if buggy else Errors.PRODUCER_FENCED)


# --- the table -------------------------------------------------------------------------------------------


def _reintroduces_calls() -> dict[str, list[str]]:
    """Bug id -> the model files whose rules ask ``reintroduces(id)``."""
    sites: dict[str, list[str]] = {}
    for path in sorted(MODELS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "reintroduces" and isinstance(node.args[0], ast.Constant)):
                sites.setdefault(node.args[0].value, []).append(path.name)
    return sites


def test_every_switchable_bug_has_a_rule_site_and_a_test_here():
    sites = _reintroduces_calls()
    switchable = {b for b, bug in HISTORICAL_BUGS.items() if bug.kafka_switch is None}
    assert set(sites) == switchable
    tests = THIS.read_text()
    for bug in switchable:
        assert f"def test_{bug.lower().replace('-', '_')}_" in tests, bug


def test_every_bug_has_a_cluster_switch_the_broker_config_takes():
    defaults = BrokerConfig().to_kafka()
    for bug_id in HISTORICAL_BUGS:
        key, value = cluster_switch(bug_id)
        assert BrokerConfig.from_kafka({key: value}).to_kafka()[key] != defaults[key], bug_id


def test_reintroduces_refuses_an_id_outside_the_table():
    with pytest.raises(KeyError):
        BrokerConfig().reintroduces("KAFKA-1")


@pytest.mark.parametrize(("value", "message"), [
    (("KAFKA-1",), "unknown historical bug 'KAFKA-1' (valid: KAFKA-5494, KAFKA-6119, KAFKA-9144"),
    (("KAFKA-12671",), 'KAFKA-12671 needs no eosim flag: set "transaction.partition.verification.enable" = false'),
    (("KAFKA-6119", "KAFKA-6119"), "KAFKA-6119 is listed twice"),
    ("KAFKA-6119", "expected a list of JIRA ids, got the string 'KAFKA-6119'"),
])
def test_eosim_reintroduce_is_validated_against_the_table(value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BrokerConfig.from_kafka({"eosim.reintroduce": value})


def test_docs_table_lists_every_bug_and_its_scenario():
    doc = (THIS.parents[2] / "docs" / "historical-bugs.md").read_text()
    rows = dict(re.findall(r"^\| (KAFKA-\d+) \|.*?\| (`bug-kafka-\d+`|unit test only)", doc, re.MULTILINE))
    assert list(rows) == list(HISTORICAL_BUGS)
    scenarios = {p.stem for p in (THIS.parents[2] / "experiments" / "scenarios").glob("bug-kafka-*.toml")}
    assert {r.strip("`") for r in rows.values() if r.startswith("`")} == {s for s in scenarios if s.count("-") == 2}
    # a bug's other scenarios (bug-kafka-9666-replicated) are named in its row too
    table = "\n".join(line for line in doc.splitlines() if line.startswith("| KAFKA-"))
    assert set(re.findall(r"`(bug-kafka-\d+(?:-[a-z]+)*)`", table)) == scenarios
