"""Simulator-only invariants over the trace: each fires on a hand-built broken trace and stays quiet on a
correct one. Also combine() and exit codes."""

from __future__ import annotations

import json

from eosim._checkers import Anomaly, CheckResult, check_trace, combine, exit_code
from eosim._checkers.oracle import settle_deadline

TP, TP2, OFFSETS = "out-0", "out-1", "__consumer_offsets-0"
TID, PID, GROUP = "tx-1", 7, "g"


class Trace:
    """Builds trace events as dicts (docs/design.md); ``seq`` follows the order of calls."""

    def __init__(self):
        self.events = []
        self.t = 0
        self.txn_timeout_ms = 60_000  # the transaction.timeout.ms every txn.state carries

    def at(self, t):
        self.t = t
        return self

    def emit(self, node, kind, **data):
        ev = {"seq": len(self.events), "t": self.t, "node": node, "kind": kind, "data": data}
        self.events.append(ev)
        return ev

    def state(self, old, new, epoch=0, pid=PID, tid=TID):
        return self.emit("b0", "txn.state", transactional_id=tid, old=old, new=new, producer_id=pid,
                         producer_epoch=epoch, txn_timeout_ms=self.txn_timeout_ms)

    def log(self, state, epoch=0, pid=PID, tid=TID):
        """The coordinator appends this record to __transaction_state (durable only with a txn.state)."""
        return self.emit("b0", "txn.log", write_id=len(self.events), transactional_id=tid, state=state,
                         producer_id=pid, producer_epoch=epoch)

    def write(self, old, new, epoch=0, pid=PID, tid=TID):
        """An append that becomes durable."""
        self.log(new, epoch, pid, tid)
        return self.state(old, new, epoch, pid, tid)

    def append(self, tp, base_offset, count=1, seq=0, epoch=0, pid=PID, transactional=True, node="b0"):
        last = base_offset + count - 1
        return self.emit(node, "log.append", tp=tp, base_offset=base_offset, last_offset=last, producer_id=pid,
                         producer_epoch=epoch, base_sequence=seq, transactional=transactional,
                         records=[[o, None, f"v{o}"] for o in range(base_offset, last + 1)])

    def marker(self, tp, offset, control, epoch=0, coordinator_epoch=0, pid=PID):
        return self.emit("b0", "log.marker", tp=tp, offset=offset, producer_id=pid, producer_epoch=epoch,
                         coordinator_epoch=coordinator_epoch, control=control)

    def offsets(self, tp, leo, hw, lso):
        return self.emit("b0", "log.offsets", tp=tp, log_end_offset=leo, high_watermark=hw, last_stable_offset=lso)

    def pending(self, tp, offset, epoch=0, pid=PID):
        return self.emit("b0", "group.pending", group_id=GROUP, tp=tp, offset=offset, producer_id=pid,
                         producer_epoch=epoch)

    def visible(self, tp, offset, pid=PID):
        return self.emit("b0", "group.offsets", group_id=GROUP, tp=tp, offset=offset, producer_id=pid)

    def client_pid(self, actor, epoch, pid=PID, tid=TID):
        return self.emit(actor, "client.pid", transactional_id=tid, producer_id=pid, producer_epoch=epoch)

    def client_op(self, actor, op):
        return self.emit(actor, "client.op", op=op, args={}, result=None)

    def txn(self, tp=TP, offset=0, commit=True, epoch=0, seq=0, consumed=None):
        """One whole, correct transaction: Ongoing, a data batch, Prepare*, marker, Complete*."""
        self.state("Empty", "Ongoing", epoch)
        self.append(tp, offset, seq=seq, epoch=epoch)
        if consumed is not None:
            self.pending("in-0", consumed, epoch)
        decision, control = ("Commit", "COMMIT") if commit else ("Abort", "ABORT")
        self.state("Ongoing", f"Prepare{decision}", epoch)
        self.marker(tp, offset + 1, control, epoch)
        if consumed is not None and commit:
            self.visible("in-0", consumed)
        return self.state(f"Prepare{decision}", f"Complete{decision}", epoch)


def found(result: CheckResult, name: str) -> list[Anomaly]:
    return [a for a in result.anomalies + result.allowed if a.name == name]


def names(result: CheckResult) -> set[str]:
    return {a.name for a in result.anomalies + result.allowed}


def test_correct_transactions_are_valid():
    tr = Trace()
    tr.client_pid("app", 0)
    tr.txn(offset=0, consumed=10)
    tr.offsets(TP, leo=2, hw=2, lso=2)
    tr.txn(offset=2, commit=False, seq=1, consumed=11)
    tr.txn(offset=4, seq=2, consumed=11)
    result = check_trace(tr.events)
    assert result.valid is True and result.anomalies == () and result.allowed == ()


# -- epochs and producer identity ----------------------------------------------------------------------


def test_epoch_regression_fires_at_the_coordinator():
    tr = Trace()
    high = tr.state("Empty", "Empty", epoch=3)
    low = tr.state("Empty", "Empty", epoch=2)
    [anomaly] = found(check_trace(tr.events), "epoch-regression")
    assert anomaly.witness == (high, low)
    assert "from epoch 3 back to 2" in anomaly.description


def test_epoch_regression_fires_in_one_client_instance():
    tr = Trace()
    high = tr.client_pid("app", 4)
    low = tr.client_pid("app", 3)
    result = check_trace(tr.events)
    [anomaly] = found(result, "epoch-regression")
    assert anomaly.witness == (high, low) and result.valid is False


def test_epoch_regression_quiet_for_growing_epochs_and_a_zombie_adopting_a_late_reply():
    tr = Trace()
    for epoch in range(3):
        tr.state("Empty", "Empty", epoch=epoch)
    tr.client_pid("new", 4)
    tr.client_pid("zombie", 3)  # its InitProducerId reply was delayed: it will be fenced, no anomaly
    assert check_trace(tr.events).valid is True


def test_shared_producer_epoch_fires():
    tr = Trace()
    first = tr.client_pid("app-a", 3)
    second = tr.client_pid("app-b", 3)
    result = check_trace(tr.events)
    [anomaly] = found(result, "shared-producer-epoch")
    assert anomaly.witness == (first, second) and result.valid is False


def test_shared_producer_epoch_quiet_after_a_crash_or_a_move_to_a_new_epoch():
    tr = Trace()
    tr.client_pid("app-a", 3)
    tr.client_op("app-a", "crash")
    tr.client_pid("app-b", 3)  # app-a's instance is gone
    tr.client_pid("app-b", 4)
    tr.client_pid("app-a", 3)  # a new instance of app-a; app-b moved on
    assert "shared-producer-epoch" not in names(check_trace(tr.events))


def test_epoch_skip_fires_when_a_failed_fence_is_bumped_again():
    """KAFKA-9666: the fence's PrepareAbort write fails, and each InitProducerId retry bumps the in-memory epoch
    once more; one anomaly per durable epoch run ahead of, however many appends."""
    tr = Trace()
    tr.write("Empty", "Empty", 0)
    ongoing = tr.write("Empty", "Ongoing", 0)
    tr.log("PrepareAbort", 1)  # the fence: its write fails
    again = tr.log("PrepareAbort", 2)
    tr.log("PrepareAbort", 3)
    tr.write("Ongoing", "PrepareAbort", 3)
    tr.write("PrepareAbort", "CompleteAbort", 3)
    tr.write("CompleteAbort", "Empty", 4)
    result = check_trace(tr.events)
    [anomaly] = found(result, "epoch-skip")
    assert anomaly.witness == (ongoing, again) and result.valid is False
    assert "appended PrepareAbort for 'tx-1' (producer id 7) at epoch 2, 2 above its durable epoch 0" \
        in anomaly.description


def test_epoch_skip_fires_for_a_durable_double_bump():
    """KAFKA-19367's shape: a TV2 fence-abort keeps the fence's bump and bumps again."""
    tr = Trace()
    ongoing = tr.write("Empty", "Ongoing", 5)
    prepare = tr.log("PrepareAbort", 7)
    tr.state("Ongoing", "PrepareAbort", 7)
    [anomaly] = found(check_trace(tr.events), "epoch-skip")
    assert anomaly.witness == (ongoing, prepare)


def test_epoch_skip_quiet_for_one_bump_per_durable_write_rotations_and_loads():
    tr = Trace()
    tr.write("Empty", "Empty", 0)
    tr.write("Empty", "Ongoing", 0)
    for _ in range(3):
        tr.log("PrepareAbort", 1)  # a failed fence is retried at the epoch it already bumped
    tr.write("Ongoing", "PrepareAbort", 1)
    tr.write("PrepareAbort", "CompleteAbort", 1)
    tr.write("CompleteAbort", "Empty", 2)
    tr.log("Empty", 3)  # fails after its append: in the log, not durable for the coordinator
    tr.emit("b0", "txn.load", transactional_id=TID, state="Empty", producer_id=PID, producer_epoch=3,
            coordinator_epoch=1, txn_timeout_ms=60_000)  # a failover loads it: the same state at the next epoch
    tr.write("Empty", "Empty", 4)
    tr.write("Empty", "Ongoing", 4)  # TV2: every Prepare* bumps once
    tr.write("Ongoing", "PrepareCommit", 5)
    tr.write("PrepareCommit", "CompleteCommit", 5)
    tr.write("Empty", "Empty", 0, pid=PID + 1)  # the epoch was exhausted: a new producer id at epoch 0
    result = check_trace(tr.events)
    assert "epoch-skip" not in names(result) and result.valid is True


def _fenced(tr, actor, error="PRODUCER_FENCED", op="abort_transaction"):
    return tr.emit(actor, "client.op", op=op, args={}, error=error, fatal=True)


def test_spurious_fencing_fires_when_the_handed_epoch_is_fenced():
    """KAFKA-18464: EndTxn v5 handed out epoch 1 and the abort with it is fenced; KAFKA-18660: the epoch
    overflowed, the coordinator moved to a new pid but handed out the old one, which it then refuses."""
    tr = Trace()
    tr.client_pid("p#1", 0)
    tr.write("Ongoing", "PrepareCommit", epoch=1)
    handed = tr.client_pid("p#1", 1)
    tr.log("CompleteCommit", epoch=1)
    fenced = _fenced(tr, "p#1")
    _fenced(tr, "p#1", op="commit_transaction")  # reported once per instance
    tr.client_pid("q#1", 32767, pid=8, tid="tx-2")
    tr.log("CompleteCommit", epoch=0, pid=9, tid="tx-2")  # the rotated pid is no newer epoch of pid 8
    mapping = _fenced(tr, "q#1", error="INVALID_PRODUCER_ID_MAPPING", op="delivery")
    first, second = found(check_trace(tr.events), "spurious-fencing")
    assert first.witness == (handed, fenced) and second.witness[1] == mapping
    assert "got PRODUCER_FENCED on abort_transaction while it used producer id 7 epoch 1" in first.description


def test_spurious_fencing_quiet_when_something_fenced_the_producer():
    tr = Trace()
    tr.client_pid("zombie#1", 0)
    tr.client_pid("new#1", 1)  # another instance of the transactional.id
    _fenced(tr, "zombie#1", error="_FENCED")
    tr.client_pid("slow#1", 0, tid="tx-2")
    tr.emit("b0", "txn.timeout", transactional_id="tx-2", producer_id=PID, producer_epoch=0)  # timeout abort
    _fenced(tr, "slow#1")
    tr.client_pid("a#1", 3, tid="tx-3")
    tr.log("PrepareAbort", epoch=4, tid="tx-3")  # a newer epoch of its pid (a fence)
    _fenced(tr, "a#1")
    tr.client_pid("b#1", 0, tid="tx-4")
    tr.state("Empty", "Dead", tid="tx-4")  # transactional.id.expiration.ms
    _fenced(tr, "b#1", error="INVALID_PRODUCER_ID_MAPPING")
    tr.client_pid("c#1", 0, tid=None)  # idempotent: no coordinator hands it anything
    _fenced(tr, "c#1")
    tr.client_pid("d#1", 0, tid="tx-5")
    _fenced(tr, "d#1", error="INVALID_PRODUCER_EPOCH")  # no coordinator fencing error
    tr.client_pid("e#1", 32766, pid=10, tid="tx-6")
    tr.log("Empty", epoch=0, pid=11, tid="tx-6")  # another instance's InitProducerId rotated the exhausted id
    _fenced(tr, "e#1", error="INVALID_PRODUCER_ID_MAPPING")  # though that instance never got its answer
    assert "spurious-fencing" not in names(check_trace(tr.events))


# -- sequences ---------------------------------------------------------------------------------------------


def test_sequence_gap_fires():
    tr = Trace()
    first = tr.append(TP, 0, count=3, seq=0, transactional=False)
    gap = tr.append(TP, 3, count=1, seq=5, transactional=False)
    [anomaly] = found(check_trace(tr.events), "sequence-gap")
    assert anomaly.witness == (first, gap)
    assert "sequence 5 right after one ending at sequence 2" in anomaly.description


def test_sequence_gap_fires_on_overlap():
    tr = Trace()
    tr.append(TP, 0, count=3, seq=0, transactional=False)
    tr.append(TP, 3, count=2, seq=1, transactional=False)
    assert "sequence-gap" in names(check_trace(tr.events))


def test_sequence_gap_quiet_for_contiguous_wrapping_new_epoch_and_expired_producer():
    tr = Trace()
    tr.append(TP, 0, count=3, seq=2**31 - 2, transactional=False)  # sequences MAX-1, MAX, 0
    tr.append(TP, 3, count=1, seq=1, transactional=False)
    tr.append(TP, 4, count=1, seq=0, epoch=1, transactional=False)  # a new epoch starts afresh
    tr.emit("b0", "log.producer_expired", tp=TP, producer_id=PID)
    tr.append(TP, 5, count=1, seq=9, epoch=1, transactional=False)
    tr.append(TP2, 0, count=1, seq=7, transactional=False)  # another partition: its own run
    assert check_trace(tr.events).valid is True


def _reject(tr, tp, seq, epoch=0, error="OUT_OF_ORDER_SEQUENCE_NUMBER"):
    return tr.emit("b0", "log.reject", tp=tp, producer_id=PID, producer_epoch=epoch, base_sequence=seq, error=error,
                   records=[[None, f"v{seq}"]])


def test_missed_duplicate_fires_when_a_retry_of_an_appended_batch_is_out_of_order():
    tr = Trace()
    first = tr.append(TP, 0, seq=0, transactional=False)
    tr.append(TP, 1, seq=1, transactional=False)
    retry = _reject(tr, TP, 0)
    [anomaly] = found(check_trace(tr.events), "missed-duplicate")
    assert anomaly.witness == (first, retry)
    assert "retried the batch at sequence 0, which the log holds at offset 0" in anomaly.description


def test_missed_duplicate_quiet_for_new_data_other_errors_epochs_partitions_and_expired_producers():
    tr = Trace()
    tr.append(TP, 0, seq=0, transactional=False)
    _reject(tr, TP, 5)  # never appended: a real gap, not a retry
    _reject(tr, TP, 0, error="INVALID_PRODUCER_EPOCH")
    _reject(tr, TP, 0, epoch=1)  # another epoch's sequence 0
    _reject(tr, TP2, 0)
    tr.emit("b0", "log.producer_expired", tp=TP, producer_id=PID)
    _reject(tr, TP, 0)  # the broker forgot the producer: Kafka cannot know it is a retry
    assert "missed-duplicate" not in names(check_trace(tr.events))


def _refused(tr, tp, seq, values, kind="log.reject", epoch=0):
    extra = {"error": "OUT_OF_ORDER_SEQUENCE_NUMBER"} if kind == "log.reject" else {"base_offset": 0, "last_offset": 0}
    return tr.emit("b0", kind, tp=tp, producer_id=PID, producer_epoch=epoch, base_sequence=seq,
                   records=[[None, v] for v in values], **extra)


def test_sequence_reuse_fires_for_new_records_at_a_logged_sequence_deduplicated_or_refused():
    """Issue 13: librdkafka reused an aborted batch's sequence (experiments/scenarios/txn-abort-sequence-reuse.toml).
    The same records are a retry (missed-duplicate when refused, nothing when deduplicated); other records are
    a reused sequence, whether the leader deduplicates them (they are lost) or refuses them."""
    tr = Trace()
    first = tr.append(TP, 0, seq=0)  # v0
    dedup = _refused(tr, TP, 0, ["b"], kind="log.duplicate")
    refused = _refused(tr, TP, 0, ["b", "c"])
    found_ = found(check_trace(tr.events), "sequence-reuse")
    assert [a.witness for a in found_] == [(first, dedup), (first, refused)]
    assert "answered them as a duplicate of the batch it holds at offset 0" in found_[0].description
    assert "missed-duplicate" not in names(check_trace(tr.events))


def test_sequence_reuse_quiet_for_retries_of_the_same_records():
    tr = Trace()
    tr.append(TP, 0, seq=0)
    _refused(tr, TP, 0, ["v0"], kind="log.duplicate")  # a retry the leader recognised
    _refused(tr, TP, 5, ["new"], kind="log.duplicate")  # nothing logged at that sequence
    _refused(tr, TP, 0, ["other"], kind="log.duplicate", epoch=1)  # another epoch restarts its sequences
    assert "sequence-reuse" not in names(check_trace(tr.events))
    _refused(tr, TP, 0, ["v0"])  # the same records refused: the dedup window lost them, not a reuse
    assert "sequence-reuse" not in names(check_trace(tr.events))
    assert "missed-duplicate" in names(check_trace(tr.events))


def test_misreported_fencing_fires_for_a_stale_epoch_refused_as_a_state_or_sequence_error():
    tr = Trace()
    tr.append(TP, 0, epoch=0)
    fence = tr.marker(TP, 1, "ABORT", epoch=1)
    stale = _reject(tr, TP, 1, epoch=0, error="INVALID_TXN_STATE")
    _reject(tr, TP, 1, epoch=0)  # OUT_OF_ORDER_SEQUENCE_NUMBER
    first, second = found(check_trace(tr.events), "misreported-fencing")
    assert first.witness == (fence, stale)
    assert "at epoch 0, older than the epoch 1 the partition holds for it, got INVALID_TXN_STATE" in first.description
    assert "got OUT_OF_ORDER_SEQUENCE_NUMBER" in second.description


def test_misreported_fencing_quiet_for_the_epoch_error_current_epochs_other_errors_and_expired_producers():
    tr = Trace()
    tr.append(TP, 0, epoch=1)
    _reject(tr, TP, 1, epoch=0, error="INVALID_PRODUCER_EPOCH")  # the right answer
    _reject(tr, TP, 1, epoch=1, error="INVALID_TXN_STATE")  # not stale
    _reject(tr, TP, 1, epoch=0, error="NOT_ENOUGH_REPLICAS")  # a verification that could not ask the coordinator
    _reject(tr, TP2, 0, epoch=0, error="INVALID_TXN_STATE")  # another partition knows no newer epoch
    tr.emit("b0", "log.producer_expired", tp=TP, producer_id=PID)
    _reject(tr, TP, 1, epoch=0, error="INVALID_TXN_STATE")  # the partition forgot the producer
    assert "misreported-fencing" not in names(check_trace(tr.events))


# -- markers ---------------------------------------------------------------------------------------------


def test_stale_marker_fires_for_the_wrong_producer_epoch():
    tr = Trace()
    tr.state("Empty", "Ongoing", 1)
    tr.append(TP, 0, epoch=1)
    prepare = tr.state("Ongoing", "PrepareCommit", 1)
    stale = tr.marker(TP, 1, "COMMIT", epoch=0)
    tr.state("PrepareCommit", "CompleteCommit", 1)
    [anomaly] = found(check_trace(tr.events), "stale-marker")
    assert anomaly.witness == (prepare, stale)


def test_stale_marker_fires_without_any_decision():
    tr = Trace()
    stray = tr.marker(TP, 0, "ABORT")
    [anomaly] = found(check_trace(tr.events), "stale-marker")
    assert anomaly.witness == (stray,)


def test_stale_marker_fires_for_an_older_coordinator_epoch():
    tr = Trace()
    tr.state("Empty", "Ongoing")
    tr.state("Ongoing", "PrepareAbort")
    newer = tr.marker(TP, 0, "ABORT", coordinator_epoch=2)
    older = tr.marker(TP, 1, "ABORT", coordinator_epoch=1)
    tr.state("PrepareAbort", "CompleteAbort")
    [anomaly] = found(check_trace(tr.events), "stale-marker")
    assert anomaly.witness == (newer, older)


def test_stale_marker_quiet_with_a_newer_coordinator_epoch():
    tr = Trace()
    tr.state("Empty", "Ongoing")
    tr.state("Ongoing", "PrepareAbort")
    tr.marker(TP, 0, "ABORT", coordinator_epoch=1)
    tr.marker(TP2, 0, "ABORT", coordinator_epoch=1)
    tr.marker(TP, 1, "ABORT", coordinator_epoch=2)  # a retry by the new coordinator
    tr.state("PrepareAbort", "CompleteAbort")
    assert check_trace(tr.events).valid is True


def test_a_decision_seen_only_in_a_coordinator_load_counts():
    """The PrepareCommit write landed while the coordinator moved (answered NOT_COORDINATOR, never traced
    as txn.state); the new coordinator loads it and re-sends the markers."""
    tr = Trace()
    tr.state("Empty", "Ongoing")
    tr.append(TP, 0)
    tr.emit("b0", "txn.load", transactional_id=TID, state="PrepareCommit", producer_id=PID, producer_epoch=0,
            coordinator_epoch=1, txn_timeout_ms=60_000)
    tr.marker(TP, 1, "COMMIT", coordinator_epoch=1)
    tr.state("PrepareCommit", "CompleteCommit")
    assert check_trace(tr.events).valid is True


def test_a_load_contradicted_by_a_marker_is_a_torn_transaction():
    tr = Trace()
    tr.state("Empty", "Ongoing")
    tr.state("Ongoing", "PrepareCommit")
    tr.emit("b0", "txn.load", transactional_id=TID, state="PrepareCommit", producer_id=PID, producer_epoch=0,
            coordinator_epoch=1, txn_timeout_ms=60_000)  # the state the trace already showed: nothing new
    wrong = tr.marker(TP, 1, "ABORT", coordinator_epoch=1)
    [anomaly] = found(check_trace(tr.events), "torn-transaction")
    assert anomaly.witness[-1] == wrong


def test_torn_transaction_fires_when_a_marker_contradicts_the_decision():
    tr = Trace()
    tr.state("Empty", "Ongoing")
    tr.append(TP, 0)
    tr.append(TP2, 0)
    prepare = tr.state("Ongoing", "PrepareCommit")
    tr.marker(TP, 1, "COMMIT")
    torn = tr.marker(TP2, 1, "ABORT")
    tr.state("PrepareCommit", "CompleteCommit")
    result = check_trace(tr.events)
    [anomaly] = found(result, "torn-transaction")
    assert anomaly.witness == (prepare, torn) and result.valid is False


def test_torn_transaction_fires_when_offsets_of_an_aborted_txn_become_visible():
    tr = Trace()
    tr.state("Empty", "Ongoing")
    tr.pending("in-0", 5)
    prepare = tr.state("Ongoing", "PrepareAbort")
    leaked = tr.visible("in-0", 5)
    tr.state("PrepareAbort", "CompleteAbort")
    [anomaly] = found(check_trace(tr.events), "torn-transaction")
    assert anomaly.witness == (prepare, leaked)


def test_torn_transaction_quiet_for_plain_commits_and_matching_markers():
    tr = Trace()
    tr.visible("in-0", 3, pid=-1)  # a plain OffsetCommit
    tr.txn(offset=0, consumed=4)
    tr.txn(offset=2, commit=False, seq=1)
    assert check_trace(tr.events).valid is True


# -- offsets -----------------------------------------------------------------------------------------------


def test_lso_above_hw_fires():
    tr = Trace()
    bad = tr.offsets(TP, leo=5, hw=4, lso=5)
    worse = tr.offsets(TP2, leo=5, hw=6, lso=6)
    result = check_trace(tr.events)
    assert [a.witness for a in found(result, "lso-above-hw")] == [(bad,), (worse,)]
    assert result.valid is False


def test_lso_above_hw_quiet():
    tr = Trace()
    tr.offsets(TP, leo=5, hw=5, lso=5)
    tr.offsets(TP, leo=6, hw=5, lso=2)
    assert check_trace(tr.events).valid is True


# -- liveness ----------------------------------------------------------------------------------------------


TIMERS = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": 500, "request.timeout.ms": 30_000}


def timed(timeout_ms=5_000):
    """A trace whose broker runs the test cluster's timers, with a transaction that went Ongoing at t=0."""
    tr = Trace()
    tr.txn_timeout_ms = timeout_ms
    tr.emit("b0", "broker.start", timers=TIMERS)
    opened = tr.emit("b0", "txn.state", transactional_id=TID, old="Empty", new="Ongoing", producer_id=PID,
                     producer_epoch=0, txn_timeout_ms=timeout_ms)
    return tr, opened


def test_unresolved_transaction_fires_when_the_trace_outlives_the_timeout_and_the_sweep():
    tr, opened = timed(5_000)
    tr.at(6_501).offsets(TP, leo=1, hw=1, lso=0)  # 5000 timeout + 500 sweep + 1000 processing slack
    result = check_trace(tr.events)
    [anomaly] = found(result, "unresolved-transaction")
    assert anomaly.witness == (opened,) and result.valid is False
    assert "transaction.timeout.ms (5000 ms)" in anomaly.description


def test_an_open_transaction_with_a_long_timeout_is_unknown_and_names_the_timer():
    """transaction.timeout.ms = 300000 legally keeps a crashed producer's transaction open past 70 s."""
    tr, opened = timed(300_000)
    tr.at(100_000).offsets(TP, leo=1, hw=1, lso=0)
    result = check_trace(tr.events)
    assert result.valid == "unknown"
    [anomaly] = result.anomalies
    assert anomaly.name == "unresolved-at-end" and anomaly.witness == (opened,)
    assert "transaction.timeout.ms (300000 ms)" in anomaly.description and "until t=301500" in anomaly.description


def test_a_transaction_decided_after_the_timeout_and_the_sweep_fires():
    tr, opened = timed(5_000)
    late = tr.at(6_600).state("Ongoing", "PrepareAbort", 1)
    tr.state("PrepareAbort", "CompleteAbort", 1)
    [anomaly] = found(check_trace(tr.events), "unresolved-transaction")
    assert anomaly.witness == (opened, late)


def test_a_lost_marker_answer_retried_after_the_request_timeout_is_valid():
    """PrepareCommit at 1 s, its WriteTxnMarkers answer lost: the coordinator sends again after the inter-broker
    request.timeout.ms (30 s), so completing at 31 s is Kafka keeping its promise (the fixed 70 s bound called a
    completion at 90 s INVALID when the timers allowed it)."""
    tr, _opened = timed(60_000)
    tr.at(1_000).state("Ongoing", "PrepareCommit")
    tr.emit("nemesis", "fault.drop", rule="r", msg="WriteTxnMarkersResponse", correlation_id=9, src="b0/markers",
            dst="b0")
    tr.at(31_010).state("PrepareCommit", "CompleteCommit")
    assert check_trace(tr.events).valid is True


def test_a_prepared_transaction_not_completed_by_the_marker_retry_fires():
    tr, opened = timed(60_000)
    tr.at(1_000).state("Ongoing", "PrepareCommit")
    tr.at(32_001).offsets(TP, leo=1, hw=1, lso=0)  # 1000 + 30000 request timeout + 1000 slack
    [anomaly] = found(check_trace(tr.events), "unresolved-transaction")
    assert anomaly.witness == (opened,) and "request.timeout.ms (30000 ms)" in anomaly.description


def test_the_bound_runs_from_the_end_of_the_faults():
    """While faults last (here a coordinator failover whose election comes 20 s later) Kafka cannot be held to
    its timers; the bound starts once they are over."""
    tr, _opened = timed(5_000)
    tr.at(1_000).emit("b0", "txn.resign", coordinator_epoch=0, down_ms=20_000)
    tr.at(21_000).emit("b0", "txn.elect", coordinator_epoch=1, load_ms=10)
    tr.at(21_400).state("Ongoing", "PrepareAbort", 1)
    tr.state("PrepareAbort", "CompleteAbort", 1)
    assert check_trace(tr.events).valid is True
    tr2, _opened = timed(5_000)
    tr2.at(1_000).emit("b0", "txn.resign", coordinator_epoch=0, down_ms=20_000)
    tr2.at(21_000).emit("b0", "txn.elect", coordinator_epoch=1, load_ms=10)
    tr2.at(22_600).offsets(TP, leo=1, hw=1, lso=0)  # 21010 + 500 + 1000 passed
    assert found(check_trace(tr2.events), "unresolved-transaction")


def test_while_the_broker_is_down_an_open_transaction_is_unknown():
    tr, _opened = timed(5_000)
    tr.at(1_000).emit("b0", "broker.crash")
    tr.at(500_000).offsets(TP, leo=1, hw=1, lso=0)
    result = check_trace(tr.events)
    assert result.valid == "unknown" and "b0 has been down since t=1000" in result.anomalies[0].description


def test_settle_deadline_is_when_the_timers_decide_every_open_transaction():
    tr, _opened = timed(5_000)
    assert settle_deadline(tr.events) == 6_500
    tr.at(100).emit("b0", "txn.state", transactional_id="tx-2", old="Empty", new="Ongoing", producer_id=8,
                    producer_epoch=0, txn_timeout_ms=300_000)
    assert settle_deadline(tr.events) == 301_600
    tr.at(200).state("Ongoing", "PrepareCommit")
    tr.state("PrepareCommit", "CompleteCommit")
    tr.emit("b0", "txn.state", transactional_id="tx-2", old="Ongoing", new="PrepareAbort", producer_id=8,
            producer_epoch=0, txn_timeout_ms=300_000)
    assert settle_deadline(tr.events) == 31_200
    tr.emit("b0", "broker.crash")
    assert settle_deadline(tr.events) is None


def test_open_transaction_at_the_end_is_unknown_not_invalid():
    tr = Trace()
    opened = tr.state("Empty", "Ongoing")
    tr.at(100).append(TP, 0)
    result = check_trace(tr.events)
    assert result.valid == "unknown" and exit_code(result) == 2
    [anomaly] = result.anomalies
    assert anomaly.name == "unresolved-at-end" and anomaly.witness == (opened,)


def test_hanging_transaction_fires_for_a_late_produce_after_the_abort():
    tr = Trace()
    tr.state("Empty", "Ongoing")
    tr.append(TP, 0, seq=0)
    tr.state("Ongoing", "PrepareAbort")
    tr.marker(TP, 1, "ABORT")
    complete = tr.state("PrepareAbort", "CompleteAbort")
    late = tr.append(TP, 2, seq=1)  # KAFKA-12671: the delayed produce opens a txn nobody will close
    result = check_trace(tr.events)
    [anomaly] = found(result, "hanging-transaction")
    assert anomaly.witness == (complete, late) and result.valid is False
    assert "from offset 2" in anomaly.description


def test_hanging_transaction_fires_for_a_pid_the_coordinator_never_knew():
    tr = Trace()
    orphan = tr.append(TP, 0, pid=99)
    [anomaly] = found(check_trace(tr.events), "hanging-transaction")
    assert anomaly.witness == (orphan,)


def test_hanging_transaction_quiet_while_the_coordinator_is_still_deciding():
    tr = Trace()
    tr.txn()
    tr.state("Empty", "Ongoing")
    tr.append(TP, 2, seq=1)
    tr.state("Ongoing", "PrepareCommit")  # markers are still to come when the trace ends
    result = check_trace(tr.events)
    assert "hanging-transaction" not in names(result)
    assert result.valid == "unknown"  # the open transaction itself


# -- consume-transform-produce -----------------------------------------------------------------------


def test_offsets_output_mismatch_fires_when_outputs_commit_without_offsets():
    tr = Trace()
    tr.state("Empty", "Ongoing")
    output = tr.append(TP, 0)
    consumed = tr.pending("in-0", 42)
    prepare = tr.state("Ongoing", "PrepareCommit")
    commit = tr.marker(TP, 1, "COMMIT")
    tr.state("PrepareCommit", "CompleteCommit")
    result = check_trace(tr.events)
    [anomaly] = found(result, "offsets-output-mismatch")
    assert anomaly.witness == (output, consumed, prepare, commit) and result.valid is False
    assert "consumed offsets never became visible" in anomaly.description


def test_offsets_output_mismatch_fires_when_offsets_commit_without_outputs():
    tr = Trace()
    tr.state("Empty", "Ongoing")
    output = tr.append(TP, 0)
    consumed = tr.pending("in-0", 42)
    prepare = tr.state("Ongoing", "PrepareCommit")
    visible = tr.visible("in-0", 42)  # but the output partition never got its COMMIT marker
    tr.state("PrepareCommit", "CompleteCommit")
    tr.state("CompleteCommit", "Ongoing")
    [anomaly] = found(check_trace(tr.events), "offsets-output-mismatch")
    assert anomaly.witness == (output, consumed, prepare, visible)


def test_offsets_output_mismatch_quiet_for_committed_and_aborted_pairs():
    tr = Trace()
    tr.txn(offset=0, consumed=42)
    tr.txn(offset=2, commit=False, seq=1, consumed=43)
    tr.txn(offset=4, seq=2)  # outputs only
    assert check_trace(tr.events).valid is True


# -- results ------------------------------------------------------------------------------------------------


def _broken_trace():
    tr = Trace()
    tr.client_pid("a", 1)
    tr.client_pid("b", 1)
    tr.offsets(TP, leo=1, hw=1, lso=2)
    tr.append(TP, 0, seq=4, transactional=False)
    tr.append(TP, 1, seq=9, transactional=False)
    tr.marker(TP2, 0, "COMMIT")
    tr.state("Empty", "Ongoing")
    return tr.events


def test_output_is_byte_identical():
    events = _broken_trace()
    first = json.dumps(check_trace(events).to_json(), sort_keys=True)
    assert first == json.dumps(check_trace(list(reversed(events))).to_json(), sort_keys=True)
    assert json.loads(first)["anomaly-types"] == [
        "lso-above-hw", "sequence-gap", "shared-producer-epoch", "stale-marker", "unresolved-at-end"]


def test_combine_and_exit_codes():
    bad = check_trace(_broken_trace())
    unknown = CheckResult("unknown", [Anomaly(name="unresolved-at-end", description="d", witness=())])
    allowed = CheckResult(True, (), [Anomaly(name="G0", description="d", witness=())])
    assert exit_code(combine(allowed)) == 0
    assert exit_code(combine(allowed, unknown)) == 2
    merged = combine(unknown, bad, allowed)
    assert merged.valid is False and exit_code(merged) == 1
    assert [a.name for a in merged.allowed] == ["G0"]
    assert len(merged.anomalies) == len(bad.anomalies) + 1
    assert [a.name for a in merged.anomalies] == sorted(a.name for a in merged.anomalies)
    assert combine().valid is True


# -- leadership epochs ----------------------------------------------------------------------------------------


def test_coordinator_epoch_regression_fires_when_an_election_goes_back():
    tr = Trace()
    tr.emit("b0", "txn.elect", coordinator_epoch=1, load_ms=0)
    newer = tr.emit("b0", "txn.elect", coordinator_epoch=2, load_ms=0)
    older = tr.emit("b0", "txn.elect", coordinator_epoch=1, load_ms=0)
    [anomaly] = found(check_trace(tr.events), "coordinator-epoch-regression")
    assert anomaly.witness == (newer, older)


def test_coordinator_epoch_regression_quiet_when_elections_go_up():
    tr = Trace()
    for epoch in (1, 2, 5):
        tr.emit("b0", "txn.elect", coordinator_epoch=epoch, load_ms=0)
    tr.emit("b1", "txn.elect", coordinator_epoch=1, load_ms=0)  # another broker's own coordinator
    assert check_trace(tr.events).valid is True


def test_leader_epoch_regression_fires_when_a_partition_leader_epoch_goes_back_or_repeats():
    tr = Trace()
    first = tr.emit("b0", "partition.leader", tp=TP, leader_epoch=3)
    again = tr.emit("b0", "partition.leader", tp=TP, leader_epoch=3)
    [anomaly] = found(check_trace(tr.events), "leader-epoch-regression")
    assert anomaly.witness == (first, again)


def test_leader_epoch_regression_quiet_when_each_partition_goes_up():
    tr = Trace()
    tr.emit("b0", "partition.leader", tp=TP, leader_epoch=1)
    tr.emit("b0", "partition.leader", tp=TP2, leader_epoch=1)
    tr.emit("b0", "partition.leader", tp=TP, leader_epoch=2)
    assert check_trace(tr.events).valid is True
