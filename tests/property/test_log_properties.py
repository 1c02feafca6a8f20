"""Property tests of PartitionLog + the read_committed filter under random operation sequences.

Several producers send idempotent, transactional and plain batches, retry old batches, end
transactions with TV1 (same epoch) or TV2 (bumped epoch) markers, send late transactional batches
without verification, advance the HW, read, snapshot and reload. The test keeps its own ground truth
of what each offset is (plain, committed, aborted, open, marker) and its own model of the dedup window,
both computed from the operations and their results only, and checks:

* log_start <= LSO <= HW <= LEO, HW and LSO never go back, offsets are contiguous, and the LSO is the
  first offset of the earliest undecided txn (open, or its marker not yet below the HW), else the HW
  (a reload forgets txns ended before the snapshot, as PSM.truncateAndReload does);
* a producer's plain batch never lands inside its own open transaction;
* read_committed, paged with next_offset, shows exactly the plain and committed records below the LSO
  (never an aborted or open transaction's), read_uncommitted all data below the HW, no control record;
* a retry within the dedup window is acked as a duplicate with the original offsets, and the log never
  holds two batches with the same (pid, epoch, base sequence): acked batches are in the log exactly once;
* with verification on, a transactional batch without a guard never opens a transaction (KAFKA-12671).
"""

from __future__ import annotations

from collections import deque

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eosim.models.config import BrokerConfig
from eosim.models.errors import Errors
from eosim.models.fetch import next_offset, visible_records
from eosim.models.log import PartitionLog
from eosim.models.records import MAX_SEQUENCE, ControlType, IsolationLevel, Record, RecordBatch, TopicPartition

RC = IsolationLevel.READ_COMMITTED
RU = IsolationLevel.READ_UNCOMMITTED
N_PRODUCERS = 3

producer = st.integers(0, N_PRODUCERS - 1)
operation = st.one_of(
    st.tuples(st.just("send"), producer, st.booleans(), st.integers(1, 3)),  # (pid, transactional, records)
    st.tuples(st.just("plain"), st.integers(1, 3)),
    st.tuples(st.just("retry"), producer, st.integers(0, 8), st.booleans()),  # (pid, how far back, verify)
    st.tuples(st.just("end"), producer, st.sampled_from(ControlType), st.booleans()),  # (pid, control, TV2 bump)
    st.tuples(st.just("late"), producer),
    st.tuples(st.just("hw"), st.integers(0, 4)),
    st.tuples(st.just("read"), st.integers(1, 6)),
    st.tuples(st.just("snapshot"),),
    st.tuples(st.just("reload"),),
)


class Harness:
    """Drives one PartitionLog and keeps the independent ground truth."""

    def __init__(self, config: BrokerConfig, first_seqs: list[int], first_epochs: list[int]) -> None:
        self.log = PartitionLog(TopicPartition("p", 0), config)
        self.config = config
        self.pids = [1000 + i for i in range(N_PRODUCERS)]
        self.epoch = dict(zip(self.pids, first_epochs))  # the client's epoch
        self.next_seq = dict(zip(self.pids, first_seqs))  # the client's next sequence
        # acked batches of each pid: (batch, base offset, last offset)
        self.sent: dict[int, list[tuple[RecordBatch, int, int]]] = {pid: [] for pid in self.pids}
        self.status: dict[int, str] = {}  # offset -> plain | committed | aborted | open | marker
        self.open: dict[int, list[int]] = {pid: [] for pid in self.pids}  # offsets of each pid's open txn
        self.ended: list[tuple[int, int]] = []  # (first offset, marker offset) of every ended non-empty txn
        self.window: dict[int, tuple[int | None, deque]] = {pid: self._empty_window() for pid in self.pids}
        self.events: list[tuple] = []  # (offset, pid, epoch, cached batch or None) for replay after reload
        self.saved: tuple[int, dict] | None = None  # the latest snapshot and the window model then
        self.snapshot = None
        self.values = 0
        self.hw = self.lso = 0

    def _empty_window(self) -> tuple[int | None, deque]:
        return (None, deque(maxlen=self.config.eosim_num_batches_to_retain))

    def _remember(self, offset: int, pid: int, epoch: int, cached: tuple | None) -> None:
        """The dedup-window model: a new epoch empties it, data batches enter it."""
        current, window = self.window[pid]
        if epoch != current:
            window = deque(maxlen=self.config.eosim_num_batches_to_retain)
        if cached is not None:
            window.append(cached)
        self.window[pid] = (epoch, window)

    def _batch(self, pid: int, n: int, transactional: bool) -> RecordBatch:
        records = []
        for _ in range(n):
            records.append(Record(None, f"v{self.values}", 0))
            self.values += 1
        return RecordBatch(
            records=tuple(records),
            producer_id=pid,
            producer_epoch=self.epoch[pid],
            base_sequence=self.next_seq[pid],
            is_transactional=transactional,
        )

    def _append(self, batch: RecordBatch, *, verify: bool):
        log = self.log
        leo = log.log_end_offset
        guard = None
        if verify and log.needs_verification(batch):
            guard = log.start_verification(batch.producer_id, batch.producer_epoch, batch.base_sequence)
        result = log.append_as_leader(batch, 0, verification_guard=guard)
        if result.error is not Errors.NONE or result.duplicate:
            assert log.log_end_offset == leo, "a rejected or duplicate batch appended something"
            return result
        n = len(batch.records)
        assert (result.base_offset, result.last_offset, log.log_end_offset) == (leo, leo + n - 1, leo + n)
        pid = batch.producer_id
        offsets = range(result.base_offset, result.last_offset + 1)
        if pid < 0:
            self.status.update(dict.fromkeys(offsets, "plain"))
            return result
        if batch.is_transactional:
            self.status.update(dict.fromkeys(offsets, "open"))
            self.open[pid].extend(offsets)
        else:
            self.status.update(dict.fromkeys(offsets, "plain"))
        cached = (
            batch.producer_epoch, batch.base_sequence, batch.last_sequence, result.base_offset, result.last_offset
        )
        self._remember(result.base_offset, pid, batch.producer_epoch, cached)
        self.events.append((result.base_offset, pid, batch.producer_epoch, cached))
        self.sent[pid].append((batch, result.base_offset, result.last_offset))
        if batch.producer_epoch == self.epoch[pid]:
            self.next_seq[pid] = (batch.last_sequence + 1) % (MAX_SEQUENCE + 1)
        return result

    # -- operations ---------------------------------------------------------------------------------

    def send(self, index: int, transactional: bool, n: int) -> None:
        pid = self.pids[index]
        had_open_txn = bool(self.open[pid])
        result = self._append(self._batch(pid, n, transactional), verify=True)
        if had_open_txn and not transactional:  # PAI.appendDataBatch: no plain write inside the pid's txn
            assert result.error is not Errors.NONE, result

    def plain(self, n: int) -> None:
        records = []
        for _ in range(n):
            records.append(Record(None, f"v{self.values}", 0))
            self.values += 1
        self._append(RecordBatch(records=tuple(records)), verify=False)

    def retry(self, index: int, back: int, verify: bool) -> None:
        pid = self.pids[index]
        if not self.sent[pid]:
            return
        batch, base, last = self.sent[pid][-1 - back % len(self.sent[pid])]
        epoch, window = self.window[pid]
        key = (batch.producer_epoch, batch.base_sequence, batch.last_sequence)
        expected = [c for c in window if c[:3] == key] if batch.producer_epoch == epoch else []
        result = self._append(batch, verify=verify)
        if expected:
            assert result.error is Errors.NONE and result.duplicate, (result, expected)
            assert (result.base_offset, result.last_offset) == expected[0][3:], (result, expected)
        else:
            assert not result.duplicate, (result, window)

    def end(self, index: int, control: ControlType, bump: bool) -> None:
        pid = self.pids[index]
        epoch = self.epoch[pid] + (1 if bump else 0)
        leo = self.log.log_end_offset
        result = self.log.append_marker(
            producer_id=pid, producer_epoch=epoch, coordinator_epoch=0, control=control, now=0
        )
        if result.error is not Errors.NONE:
            assert self.log.log_end_offset == leo
            return
        assert result.base_offset == leo and self.log.log_end_offset == leo + 1
        self.status[leo] = "marker"
        outcome = "committed" if control is ControlType.COMMIT else "aborted"
        self.status.update(dict.fromkeys(self.open[pid], outcome))
        if self.open[pid]:
            self.ended.append((self.open[pid][0], leo))
        self.open[pid] = []
        self._remember(leo, pid, epoch, None)
        self.events.append((leo, pid, epoch, None))
        if bump:  # TV2: the client adopts the new epoch and restarts its sequences
            self.epoch[pid] = epoch
            self.next_seq[pid] = 0

    def late(self, index: int) -> None:
        """A transactional batch that skipped verification (delayed past its txn, or a buggy client)."""
        pid = self.pids[index]
        had_open_txn = bool(self.open[pid])
        result = self._append(self._batch(pid, 1, True), verify=False)
        if self.config.transaction_partition_verification_enable and not had_open_txn:
            assert result.error in (Errors.INVALID_TXN_STATE, Errors.INVALID_PRODUCER_EPOCH), result

    def advance_hw(self, quarter: int) -> None:
        # to a batch boundary, as replication moves it (the HW is a follower's log end offset)
        boundaries = [b.next_offset for b in self.log.batches if b.next_offset > self.log.high_watermark]
        if boundaries and quarter:
            self.log.advance_high_watermark(boundaries[(len(boundaries) - 1) * quarter // 4])

    def take_snapshot(self) -> None:
        self.snapshot = self.log.snapshot()
        # PSM.writeSnapshot keeps the last batch of each producer
        self.saved = (
            self.snapshot.offset,
            {pid: (epoch, deque(list(window)[-1:], maxlen=self.config.eosim_num_batches_to_retain))
             for pid, (epoch, window) in self.window.items()},
        )

    def reload(self) -> None:
        lso = self.log.last_stable_offset
        self.log.reload(self.snapshot)
        if self.saved is None:
            self.window = {pid: self._empty_window() for pid in self.pids}
            start = 0
        else:
            start, windows = self.saved
            self.window = {pid: (epoch, deque(w, maxlen=w.maxlen)) for pid, (epoch, w) in windows.items()}
        for offset, pid, epoch, cached in self.events:
            if offset >= start:
                self._remember(offset, pid, epoch, cached)
        # PSM.truncateAndReload forgets the unreplicated txns; only those replayed are tracked again
        self.ended = [(first, marker) for first, marker in self.ended if marker >= start]
        assert self.log.last_stable_offset >= lso

    # -- checks -------------------------------------------------------------------------------------

    def check_offsets(self) -> None:
        log = self.log
        lso, hw = log.last_stable_offset, log.high_watermark
        assert log.log_start_offset <= lso <= hw <= log.log_end_offset
        assert hw >= self.hw and lso >= self.lso, "HW and LSO are monotonic"
        self.hw, self.lso = hw, lso
        # a txn is decided once its marker is below the HW; the LSO stops at the first undecided one
        undecided = [offsets[0] for offsets in self.open.values() if offsets]
        undecided += [first for first, marker in self.ended if marker >= hw]
        assert lso == min([*undecided, hw]), (lso, undecided, hw)

    def check_reads(self, page: int) -> None:
        log = self.log
        committed, position = [], 0
        while position < log.last_stable_offset:
            result = log.read(position, RC, max_records=page)
            assert result.error is Errors.NONE and result.batches
            committed += visible_records(result, RC)
            position = next_offset(result, position)
        lso = log.last_stable_offset
        expected = sorted(o for o, s in self.status.items() if o < lso and s in ("plain", "committed"))
        assert [o for o, _ in committed] == expected
        uncommitted = log.read(0, RU)
        expected_ru = sorted(o for o, s in self.status.items() if o < log.high_watermark and s != "marker")
        assert [o for o, _ in visible_records(uncommitted, RU)] == expected_ru
        by_offset = {b.base_offset + i: r for b in log.batches for i, r in enumerate(b.records)}
        assert all(by_offset[o] == r for o, r in committed)

    def check_log(self) -> None:
        batches = self.log.batches
        offset = 0
        seen = set()
        for b in batches:
            assert b.base_offset == offset
            offset = b.next_offset
            if b.producer_id >= 0 and not b.is_control:
                key = (b.producer_id, b.producer_epoch, b.base_sequence)
                assert key not in seen, f"batch {key} is in the log twice"
                seen.add(key)
        assert offset == self.log.log_end_offset
        assert sorted(self.status) == list(range(offset))


def run(config: BrokerConfig, first_seqs: list[int], first_epochs: list[int], ops: list[tuple]) -> None:
    h = Harness(config, first_seqs, first_epochs)
    for op in ops:
        kind = op[0]
        if kind == "send":
            h.send(*op[1:])
        elif kind == "plain":
            h.plain(*op[1:])
        elif kind == "retry":
            h.retry(*op[1:])
        elif kind == "end":
            h.end(*op[1:])
        elif kind == "late":
            h.late(*op[1:])
        elif kind == "hw":
            h.advance_hw(*op[1:])
        elif kind == "read":
            h.check_reads(*op[1:])
        elif kind == "snapshot":
            h.take_snapshot()
        else:
            h.reload()
        h.check_offsets()
    h.log.advance_high_watermark(h.log.log_end_offset)
    h.check_offsets()
    h.check_reads(1_000)
    h.check_log()


configs = st.builds(
    BrokerConfig,
    transaction_partition_verification_enable=st.booleans(),
    eosim_num_batches_to_retain=st.sampled_from([1, 2, 5]),
)
first_seqs = st.lists(st.sampled_from([0, 7, MAX_SEQUENCE - 2]), min_size=N_PRODUCERS, max_size=N_PRODUCERS)
first_epochs = st.lists(st.integers(0, 2), min_size=N_PRODUCERS, max_size=N_PRODUCERS)
# st.lists alone averages a handful of items; draw the length first to get long histories
histories = st.integers(1, 60).flatmap(lambda n: st.lists(operation, min_size=n, max_size=n))


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(configs, first_seqs, first_epochs, histories)
def test_log_invariants_under_random_operations(config, seqs, epochs, ops):
    run(config, seqs, epochs, ops)


def test_property_harness_sees_a_known_history():
    """The harness itself on a fixed history: an aborted and a committed txn, a retry, a reload."""
    ops = [
        ("send", 0, True, 2), ("send", 1, True, 1), ("plain", 1), ("retry", 0, 0, True),
        ("end", 0, ControlType.ABORT, False), ("send", 0, False, 1), ("snapshot",), ("send", 2, False, 2),
        ("end", 1, ControlType.COMMIT, True), ("hw", 4), ("read", 1), ("reload",), ("retry", 2, 0, False),
        ("late", 1), ("read", 2),
    ]
    run(BrokerConfig(), [0, 0, MAX_SEQUENCE - 2], [0, 0, 0], ops)
