"""eosim.models.log
==========

One replica's log of one partition: offsets, the high watermark (HW), the last stable offset (LSO), the
aborted-transaction index, reads by isolation level, producer state, and the leader-epoch cache (KIP-101).

A leader appends client batches (``append_as_leader``, stamped with its leader epoch) and markers; a follower
appends the leader's batches as they are (``append_as_follower``: offsets and epochs kept, producer state rebuilt
from them with origin REPLICATION, UL.appendAsFollower), takes the leader's HW (``update_high_watermark``) and
truncates (``truncate_to``: the epoch cache, the transaction index and the producer state follow, PSM.
truncateAndReload). A single-replica log (sim/_replicas.py) stamps no epoch (-1) and keeps its cache empty.

Sources (Kafka 4.1): ``UL`` = storage/.../log/UnifiedLog.java, ``LL`` = storage/.../log/LocalLog.java,
``TI`` = storage/.../log/TransactionIndex.java; the producer-side rules are in models/producer_state.py.

The log is one segment (retention and DeleteRecords are not modelled, so the log start offset stays 0).
Offsets are contiguous: a data batch takes one offset per record, a marker takes one.
"""

from __future__ import annotations

from bisect import bisect_right
from operator import attrgetter
from typing import ClassVar

from attrs import Factory, define, field

from eosim.models.config import BrokerConfig
from eosim.models.errors import Errors, IllegalTransition, ModelError
from eosim.models.leader_epoch_cache import LeaderEpochFileCache
from eosim.models.producer_state import (
    AppendOrigin,
    CompletedTxn,
    ProducerStateManager,
    ProducerStateSnapshot,
    VerificationGuard,
)
from eosim.models.records import (
    NO_SEQUENCE,
    ControlType,
    IsolationLevel,
    LogBatch,
    RecordBatch,
    TopicPartition,
    increment_sequence,
)
from eosim.models.values import frozen


# Read on every append, so a module constant: on Python 3.11 an enum member read through its class costs a
# Python-level __getattr__ (EnumType's); a global read does not.
_NONE = Errors.NONE
_CLIENT = AppendOrigin.CLIENT
_READ_COMMITTED = IsolationLevel.READ_COMMITTED
# a batch's bisect key, read in C (a Python function was a call per step of every read's bisection)
_base_offset = attrgetter("base_offset")


__all__ = [
    "AbortedTransaction",
    "AbortedTxn",
    "AppendOrigin",
    "AppendResult",
    "FetchResult",
    "PartitionLog",
    "ProducerStateSnapshot",
    "VerificationGuard",
]


@frozen(kw_only=True)
class AppendResult:
    error: Errors
    base_offset: int = -1  # for a duplicate: the ORIGINAL offsets
    last_offset: int = -1
    duplicate: bool = False
    log_start_offset: int = 0


@frozen(kw_only=True)
class AbortedTransaction:
    """An entry of a fetch response's abortedTransactions (FetchResponseData.AbortedTransaction)."""

    producer_id: int
    first_offset: int


@frozen(kw_only=True)
class AbortedTxn:
    """A .txnindex entry (AbortedTxn.java), written only for aborted, non-empty transactions.
    ``last_stable_offset`` is the LSO right after the ABORT marker at ``last_offset`` (PSM.lastStableOffset)."""

    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


@frozen(kw_only=True)
class FetchResult:
    error: Errors
    batches: tuple[LogBatch, ...]
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    aborted_transactions: tuple[AbortedTransaction, ...]  # only for READ_COMMITTED
    # The offset fetched from. Whole batches are returned, so the first one may start below it and the
    # client drops those records (CompletedFetch.nextFetchedRecord: record.offset() >= nextFetchOffset).
    fetch_offset: int = 0


@define(eq=False)
class PartitionLog:
    tp: TopicPartition
    config: BrokerConfig
    batches: list[LogBatch] = field(factory=list, init=False)
    producer_state_manager: ProducerStateManager = field(
        default=Factory(lambda self: ProducerStateManager(self.config), takes_self=True), init=False
    )
    txn_index: list[AbortedTxn] = field(factory=list, init=False)  # in marker-offset order
    epoch_cache: LeaderEpochFileCache = field(factory=LeaderEpochFileCache, init=False)
    _log_end_offset: int = field(default=0, init=False)
    _high_watermark: int = field(default=0, init=False)
    # the producer-state snapshot on disk (taken by ``recover``; PSM.takeSnapshot): truncation reloads from it
    _snapshot: ProducerStateSnapshot | None = field(default=None, init=False)

    # -- offsets ------------------------------------------------------------------------------------

    log_start_offset: ClassVar[int] = 0  # one segment, neither retention nor DeleteRecords: it stays 0

    @property
    def log_end_offset(self) -> int:
        return self._log_end_offset

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @property
    def first_unstable_offset(self) -> int:
        """The first offset of the earliest undecided transaction (ongoing, or its marker not yet below
        the HW), at least the log start offset (UL.maybeIncrementFirstUnstableOffset). Kafka has none when
        nothing is unstable; this returns the log end offset then, so the LSO is always min(this, HW)."""
        first = self.producer_state_manager.first_unstable_offset()
        return self._log_end_offset if first is None else max(first, self.log_start_offset)

    @property
    def last_stable_offset(self) -> int:
        # UL.lastStableOffset: the first unstable offset if it is below the HW, else the HW
        return min(self.first_unstable_offset, self._high_watermark)

    def advance_high_watermark(self, offset: int) -> None:
        """UL.maybeIncrementHighWatermark: monotonic, and never past the log end offset."""
        if offset > self._log_end_offset:
            raise IllegalTransition("PartitionLog.high_watermark", self._high_watermark, offset)
        if offset > self._high_watermark:
            self._high_watermark = offset
            self.producer_state_manager.on_high_watermark_updated(offset)

    def update_high_watermark(self, offset: int) -> None:
        """A follower takes the leader's HW, capped at its own log end, up or down (UL.updateHighWatermark)."""
        offset = min(offset, self._log_end_offset)
        if offset != self._high_watermark:
            self._high_watermark = offset
            self.producer_state_manager.on_high_watermark_updated(offset)

    # -- appends ------------------------------------------------------------------------------------

    def append_as_leader(
        self,
        batch: RecordBatch,
        now: int,
        *,
        origin: AppendOrigin = AppendOrigin.CLIENT,
        verification_guard: VerificationGuard | None = None,
        leader_epoch: int = -1,
    ) -> AppendResult:
        """Append one client batch at the log end (UL.append with assignOffsets), stamped with ``leader_epoch``
        (UL.appendAsLeader: the batch's partitionLeaderEpoch, and the epoch cache learns where it starts).

        A duplicate (same pid, epoch and sequence range as a cached batch) returns the original offsets
        and appends nothing. ``now`` is the broker's clock; with CreateTime (Kafka's default) the
        producer state takes the records' timestamps, so it is not used for data.
        """
        base_offset = self._log_end_offset
        last_offset = base_offset + len(batch.records) - 1
        timestamp = batch.max_timestamp
        if batch.producer_id >= 0:
            psm = self.producer_state_manager
            last_seq = batch.last_sequence
            if origin is _CLIENT:
                # UL.analyzeAndValidateProducerState: the duplicate check comes before everything else
                duplicate = psm.find_duplicate_batch(
                    batch.producer_id, batch.producer_epoch, batch.base_sequence, last_seq
                )
                if duplicate is not None:
                    return AppendResult.make(
                        error=_NONE,
                        base_offset=duplicate.first_offset,
                        last_offset=duplicate.last_offset,
                        duplicate=True,
                        log_start_offset=self.log_start_offset,
                    )
            error = psm.append_data_batch(
                producer_id=batch.producer_id,
                producer_epoch=batch.producer_epoch,
                first_seq=batch.base_sequence,
                last_seq=last_seq,
                first_offset=base_offset,
                last_offset=last_offset,
                timestamp=timestamp,
                is_transactional=batch.is_transactional,
                origin=origin,
                verification_guard=verification_guard,
            )
            if error is not _NONE:
                return AppendResult(error=error, log_start_offset=self.log_start_offset)
        self.batches.append(
            LogBatch.make(  # by make: a class called with keywords packs them into a dict (models/values.py)
                base_offset=base_offset,
                records=batch.records,
                producer_id=batch.producer_id,
                producer_epoch=batch.producer_epoch,
                base_sequence=batch.base_sequence,
                is_transactional=batch.is_transactional,
                timestamp=timestamp,
                partition_leader_epoch=leader_epoch,
            )
        )
        self._assign_epoch(leader_epoch, base_offset)
        self._log_end_offset = last_offset + 1
        self.producer_state_manager.update_map_end_offset(last_offset + 1)
        return AppendResult.make(
            error=_NONE, base_offset=base_offset, last_offset=last_offset, log_start_offset=self.log_start_offset
        )

    def append_marker(
        self,
        *,
        producer_id: int,
        producer_epoch: int,
        coordinator_epoch: int,
        control: ControlType,
        now: int,
        transaction_version: int = 1,
        leader_epoch: int = -1,
    ) -> AppendResult:
        """Append a COMMIT/ABORT marker, built by this leader at ``now`` (WriteTxnMarkers, origin COORDINATOR).

        It takes one offset even when it closes no transaction here. In 4.1 the partition treats TV1 and
        TV2 markers alike, so ``transaction_version`` changes nothing (the strict TV2 epoch check,
        KAFKA-19446, is 4.2).
        """
        offset = self._log_end_offset
        error, completed = self.producer_state_manager.append_end_txn_marker(
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            coordinator_epoch=coordinator_epoch,
            control=control,
            offset=offset,
            timestamp=now,
            origin=AppendOrigin.COORDINATOR,
        )
        if error is not Errors.NONE:
            return AppendResult(error=error, log_start_offset=self.log_start_offset)
        self.batches.append(
            LogBatch.make(  # make: see append_as_leader
                base_offset=offset,
                producer_id=producer_id,
                producer_epoch=producer_epoch,
                is_transactional=True,
                control=control,
                coordinator_epoch=coordinator_epoch,
                timestamp=now,
                partition_leader_epoch=leader_epoch,
            )
        )
        self._assign_epoch(leader_epoch, offset)
        self._log_end_offset = offset + 1
        if completed is not None:
            self._complete_txn(completed)
        self.producer_state_manager.update_map_end_offset(offset + 1)
        return AppendResult.make(
            error=Errors.NONE, base_offset=offset, last_offset=offset, log_start_offset=self.log_start_offset
        )

    def _assign_epoch(self, leader_epoch: int, offset: int) -> None:
        # UL.append: a batch with a partition leader epoch updates the cache (LEFC.assign)
        if leader_epoch >= 0:
            self.epoch_cache.assign(leader_epoch, offset)

    def append_as_follower(self, batches: tuple[LogBatch, ...]) -> None:
        """UL.appendAsFollower: the leader's batches with their offsets and epochs. Producer state is updated from
        them with origin REPLICATION (no sequence or verification checks: PAI validates only a client's or the
        coordinator's appends), and a marker completes its transaction as on the leader (index, then complete).

        Raises:
            ModelError: the batches do not continue the log (RFT.processPartitionData: offset mismatch).
        """
        psm = self.producer_state_manager
        for batch in batches:
            if batch.base_offset != self._log_end_offset:
                raise ModelError(f"{self.tp}: follower append at {batch.base_offset}, log end {self._log_end_offset}")
            completed = self._replay(batch)
            self.batches.append(batch)
            self._assign_epoch(batch.partition_leader_epoch, batch.base_offset)
            self._log_end_offset = batch.next_offset
            if completed is not None:
                self._complete_txn(completed)
            psm.update_map_end_offset(self._log_end_offset)

    def truncate_to(self, offset: int) -> tuple[LogBatch, ...]:
        """UL.truncateTo: drop every batch from ``offset`` on (a batch boundary: an epoch's start or end), with
        their epochs (LEFC.truncateFromEnd) and aborted-transaction entries (TransactionIndex.truncateTo); the HW
        follows down. Producer state is rebuilt as PSM.truncateAndReload does: the snapshot on disk if it is not
        past ``offset`` (else it is deleted), then the log after it replayed. Returns the batches dropped.

        Raises:
            ModelError: ``offset`` falls inside a batch.
        """
        i = bisect_right(self.batches, offset - 1, key=_base_offset)
        if i and self.batches[i - 1].next_offset > offset:
            raise ModelError(f"{self.tp}: truncation at {offset} falls inside the batch at {self.batches[i - 1].base_offset}")
        removed = tuple(self.batches[i:])
        if not removed:
            return ()
        del self.batches[i:]
        self._log_end_offset = offset
        self.epoch_cache.truncate_from_end(offset)
        self.txn_index = [t for t in self.txn_index if t.last_offset < offset]
        self._high_watermark = min(self._high_watermark, offset)
        if self._snapshot is not None and self._snapshot.offset > offset:
            self._snapshot = None
        self.reload(self._snapshot)
        return removed

    def read_for_replica(self, fetch_offset: int) -> tuple[LogBatch, ...]:
        """A follower's fetch (FetchIsolation.LOG_END): every batch from ``fetch_offset`` to the log end."""
        return tuple(self.batches[bisect_right(self.batches, fetch_offset - 1, key=_base_offset):])

    def _complete_txn(self, completed: CompletedTxn) -> None:
        # UL.append: index the aborted txn with the LSO computed before completing it, then complete it
        psm = self.producer_state_manager
        if completed.is_aborted:  # LogSegment.updateTxnIndex
            self.txn_index.append(
                AbortedTxn(
                    producer_id=completed.producer_id,
                    first_offset=completed.first_offset,
                    last_offset=completed.last_offset,
                    last_stable_offset=psm.last_stable_offset(completed),
                )
            )
        psm.complete_txn(completed)

    # -- KIP-890 verification -----------------------------------------------------------------------

    def has_ongoing_transaction(self, producer_id: int, producer_epoch: int) -> bool:
        return self.producer_state_manager.has_ongoing_transaction(producer_id, producer_epoch)

    def needs_verification(self, batch: RecordBatch, *, supports_epoch_bump: bool = False) -> bool:
        """ReplicaManager.maybeSendPartitionsToTransactionCoordinator: a transactional batch with no
        ongoing txn for (pid, epoch) is verified with the coordinator when verification is enabled, or
        always for a TV2 produce (``supports_epoch_bump``: Produce v12+, where the leader adds the partition)."""
        return (
            batch.is_transactional
            and (self.config.transaction_partition_verification_enable or supports_epoch_bump)
            and not self.producer_state_manager.has_ongoing_transaction(batch.producer_id, batch.producer_epoch)
        )

    def verification_epoch_error(self, producer_id: int, producer_epoch: int) -> Errors:
        """UL.maybeStartTransactionVerification's early check (KAFKA-18042, 4.1): an epoch older than the
        partition's gets INVALID_PRODUCER_EPOCH before any coordinator round trip."""
        entry = self.producer_state_manager.last_entry(producer_id)
        if entry is not None and producer_epoch < entry.producer_epoch:
            return Errors.INVALID_PRODUCER_EPOCH
        return Errors.NONE

    def start_verification(
        self,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
        *,
        supports_epoch_bump: bool = False,
        now: int = 0,
    ) -> VerificationGuard:
        """UL.maybeStartTransactionVerification: the guard the append must present.

        Returns ``VerificationGuard.SENTINEL`` when the txn is already ongoing (nothing to verify) and,
        where Kafka throws, for a stale epoch (the append then answers INVALID_PRODUCER_EPOCH). ``now``
        stamps the verification entry, which expires like a producer.
        """
        if self.verification_epoch_error(producer_id, producer_epoch) is not Errors.NONE:
            return VerificationGuard.SENTINEL
        psm = self.producer_state_manager
        if psm.has_ongoing_transaction(producer_id, producer_epoch):
            return VerificationGuard.SENTINEL
        entry = psm.maybe_create_verification_state_entry(
            producer_id, base_sequence, producer_epoch, supports_epoch_bump, now
        )
        return entry.verification_guard

    # -- reads --------------------------------------------------------------------------------------

    def read(self, fetch_offset: int, isolation: IsolationLevel, max_records: int | None = None) -> FetchResult:
        """UL.read: whole batches from the one holding ``fetch_offset`` up to the HW (READ_UNCOMMITTED)
        or the LSO (READ_COMMITTED); a batch that straddles the bound stays out. ``max_records`` stands
        in for the byte limits: batches are added until they hold that many records (a control
        record counts one), and the first batch always goes in (minOneMessage)."""
        hw = self._high_watermark
        lso = self.last_stable_offset
        if fetch_offset < self.log_start_offset or fetch_offset > self._log_end_offset:
            return FetchResult(
                error=Errors.OFFSET_OUT_OF_RANGE,
                batches=(),
                high_watermark=hw,
                last_stable_offset=lso,
                log_start_offset=self.log_start_offset,
                aborted_transactions=(),
                fetch_offset=fetch_offset,
            )
        read_committed = isolation is _READ_COMMITTED
        upper = lso if read_committed else hw
        batches = self.batches
        i = max(bisect_right(batches, fetch_offset, key=_base_offset) - 1, 0)
        if i < len(batches) and batches[i].last_offset < fetch_offset:
            i += 1  # fetch_offset is the log end: nothing holds it
        selected = []
        count = 0
        while i < len(batches):
            batch = batches[i]
            if batch.last_offset >= upper or (max_records is not None and selected and count >= max_records):
                break
            selected.append(batch)
            count += len(batch.records) or 1
            i += 1
        aborted: tuple[AbortedTransaction, ...] = ()
        if read_committed and selected:
            # LL.addAbortedTransactions: up to the offset after the fetched data
            aborted = tuple(
                AbortedTransaction(producer_id=t.producer_id, first_offset=t.first_offset)
                for t in self.collect_aborted_transactions(fetch_offset, selected[-1].next_offset)
            )
        return FetchResult(
            error=_NONE,
            batches=tuple(selected),
            high_watermark=hw,
            last_stable_offset=lso,
            log_start_offset=self.log_start_offset,
            aborted_transactions=aborted,
            fetch_offset=fetch_offset,
        )

    def collect_aborted_transactions(self, start_offset: int, upper_bound_offset: int) -> list[AbortedTxn]:
        """TI.collectAbortedTxns: every entry overlapping [start, upper), stopping at the first entry
        whose LSO reaches the upper bound (no later entry can overlap)."""
        found = []
        for txn in self.txn_index:
            if txn.last_offset >= start_offset and txn.first_offset < upper_bound_offset:
                found.append(txn)
            if txn.last_stable_offset >= upper_bound_offset:
                break
        return found

    def list_offset_latest(self, isolation: IsolationLevel) -> int:
        # Partition.fetchOffsetForTimestamp: LATEST is the LSO for read_committed, the HW otherwise
        return self.last_stable_offset if isolation is IsolationLevel.READ_COMMITTED else self._high_watermark

    # -- producer state lifecycle -------------------------------------------------------------------

    def remove_expired_producers(self, now: int) -> list[int]:
        """Expired pids, sorted (PSM.removeExpiredProducers, every producer.id.expiration.check.interval.ms)."""
        return self.producer_state_manager.remove_expired_producers(now)

    def snapshot(self) -> ProducerStateSnapshot:
        """PSM.takeSnapshot at the log end offset: last batch per pid only."""
        return self.producer_state_manager.take_snapshot()

    def reload(self, snapshot: ProducerStateSnapshot | None, *, now: int | None = None) -> None:
        """Rebuild producer state as a restarted broker does (UL.rebuildProducerState): load ``snapshot``
        (or nothing), then replay every batch after it with origin REPLICATION. The dedup window is then
        the snapshot's last batch plus the replayed ones. A snapshot above the log end offset is ignored,
        as PSM.truncateAndReload deletes it. Pass ``now`` to drop producers expired by then."""
        psm = self.producer_state_manager
        if snapshot is not None and snapshot.offset > self._log_end_offset:
            snapshot = None
        psm.load_snapshot(snapshot, self.log_start_offset, now)
        start = bisect_right(self.batches, psm.last_map_offset - 1, key=_base_offset)
        for batch in self.batches[start:]:
            # UL.loadProducersFromRecords: the transaction index is already written
            completed = self._replay(batch)
            if completed is not None:
                psm.complete_txn(completed)
        psm.update_map_end_offset(self._log_end_offset)
        psm.on_high_watermark_updated(self._high_watermark)


    def _replay(self, batch: LogBatch) -> CompletedTxn | None:
        """One stored batch into producer state with origin REPLICATION (UL.updateProducers): validates nothing;
        returns the transaction a marker completes (the caller indexes and completes it)."""
        if batch.producer_id < 0:
            return None
        psm = self.producer_state_manager
        if batch.is_control:
            _, completed = psm.append_end_txn_marker(
                producer_id=batch.producer_id,
                producer_epoch=batch.producer_epoch,
                coordinator_epoch=batch.coordinator_epoch,
                control=batch.control,
                offset=batch.base_offset,
                timestamp=batch.timestamp,
                origin=AppendOrigin.REPLICATION,
            )
            return completed
        psm.append_data_batch(
            producer_id=batch.producer_id,
            producer_epoch=batch.producer_epoch,
            first_seq=batch.base_sequence,
            last_seq=_last_sequence(batch),
            first_offset=batch.base_offset,
            last_offset=batch.last_offset,
            timestamp=batch.timestamp,
            is_transactional=batch.is_transactional,
            origin=AppendOrigin.REPLICATION,
        )
        return None

    def recover(self, *, now: int) -> None:
        """Producer state after a broker restart (LogLoader.load, UL.rebuildProducerState), clean or not.

        The log here is one segment that is never flushed, so an unclean restart recovers all of it
        (LogLoader.recoverSegment): every batch is replayed into a fresh producer state, which is snapshotted at
        the log end; a clean shutdown snapshots there too (UL.close). Either way the log's producer state is then
        loaded from that snapshot (PSM.truncateAndReload), which keeps only each producer's LAST batch
        (PSM.writeSnapshot): the dedup window is one batch per producer until new appends refill it. Producers
        expired by ``now`` are dropped (PSM.loadFromSnapshot)."""
        self.reload(None)
        self._snapshot = self.snapshot()
        self.reload(self._snapshot, now=now)


def _last_sequence(batch: LogBatch) -> int:
    # DefaultRecordBatch.lastSequence: batches without sequences (coordinator writes) keep -1
    if batch.base_sequence == NO_SEQUENCE:
        return NO_SEQUENCE
    return increment_sequence(batch.base_sequence, len(batch.records) - 1)
