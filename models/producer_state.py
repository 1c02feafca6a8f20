"""eosim.models.producer_state
=====================

One partition's producer state, as Kafka's leader keeps it: a ``ProducerStateEntry`` per producer id,
the validation a batch or a transaction marker goes through before it is appended (Kafka splits it
between ``UnifiedLog.analyzeAndValidateProducerState`` and ``ProducerAppendInfo``), the KIP-890
``VerificationStateEntry``, the ongoing and not yet replicated transactions that decide the LSO,
expiration and snapshots.

Sources (Kafka 4.1, ``storage/src/main/java/org/apache/kafka/storage/internals/log/``): ``PAI`` =
ProducerAppendInfo.java, ``PSE`` = ProducerStateEntry.java, ``PSM`` = ProducerStateManager.java, ``VSE`` =
VerificationStateEntry.java, ``UL`` = UnifiedLog.java.

Theory of operation: ``PartitionLog`` (models/log.py) assigns offsets and asks this module whether a
batch may go in. A check either returns an ``Errors`` code and changes nothing, or returns
``Errors.NONE`` after updating the state, so the log appends exactly what was validated. One call
validates one batch, as the runtime sends batches one at a time.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import ClassVar

from attrs import define, field

from eosim.models.config import BrokerConfig
from eosim.models.errors import Errors, ModelError
from eosim.models.records import MAX_EPOCH, MAX_SEQUENCE, NO_PRODUCER_EPOCH, NO_SEQUENCE, ControlType
from eosim.models.values import frozen

NO_TIMESTAMP = -1  # RecordBatch.NO_TIMESTAMP


class AppendOrigin(enum.Enum):
    """Who appends (AppendOrigin.java); it decides how much validation runs (PAI.maybeValidateDataBatch)."""

    CLIENT = "CLIENT"  # produce requests: epoch, sequence and duplicate checks
    COORDINATOR = "COORDINATOR"  # markers, group-coordinator writes: epoch checks, no sequence checks
    REPLICATION = "REPLICATION"  # followers and log recovery: no checks, state still updated


# Read on every append, so a module constant: on Python 3.11 an enum member read through its class costs a
# Python-level __getattr__ (EnumType's); a global read does not.
_NONE = Errors.NONE
_CLIENT = AppendOrigin.CLIENT
_REPLICATION = AppendOrigin.REPLICATION


@frozen(eq=False)
class VerificationGuard:
    """KIP-890's guard: an identity object that only verifies against itself (VerificationGuard.java)."""

    SENTINEL: ClassVar[VerificationGuard]

    def verify(self, verifying_guard: VerificationGuard | None) -> bool:
        # VerificationGuard.verify: the sentinel never verifies anything
        return verifying_guard is self and verifying_guard is not VerificationGuard.SENTINEL


VerificationGuard.SENTINEL = VerificationGuard()


def _decrement_sequence(sequence: int, decrement: int) -> int:
    # DefaultRecordBatch.decrementSequence: modular, the inverse of increment_sequence
    return (sequence - decrement) % (MAX_SEQUENCE + 1)


def _in_sequence(last_seq: int, next_seq: int, *, wraps: bool) -> bool:
    # PAI.inSequence: next after last, or the wrap from Int.MAX_VALUE to 0 (KAFKA-7692 added the wrap)
    return next_seq == last_seq + 1 or (wraps and next_seq == 0 and last_seq == MAX_SEQUENCE)


@frozen(kw_only=True)
class BatchMetadata:
    """One cached batch of a producer (BatchMetadata.java); ``offset_delta`` is also the sequence delta."""

    last_seq: int
    last_offset: int
    offset_delta: int
    timestamp: int

    @property
    def first_seq(self) -> int:
        return _decrement_sequence(self.last_seq, self.offset_delta)

    @property
    def first_offset(self) -> int:
        return self.last_offset - self.offset_delta


@define(eq=False)
class ProducerStateEntry:
    """The state of one producer id (PSE): epoch, the last ``eosim_num_batches_to_retain`` batches, and
    the open transaction's first offset, if any."""

    producer_id: int
    batch_metadata: deque[BatchMetadata]  # oldest first; a deque with maxlen evicts the oldest (PSE.addBatchMetadata)
    producer_epoch: int = NO_PRODUCER_EPOCH
    coordinator_epoch: int = -1
    last_timestamp: int = NO_TIMESTAMP
    current_txn_first_offset: int | None = None

    @classmethod
    def empty(cls, producer_id: int, num_batches_to_retain: int) -> ProducerStateEntry:
        return cls(producer_id, deque(maxlen=num_batches_to_retain))

    @property
    def is_empty(self) -> bool:
        return not self.batch_metadata

    @property
    def last_seq(self) -> int:
        return self.batch_metadata[-1].last_seq if self.batch_metadata else NO_SEQUENCE

    @property
    def last_data_offset(self) -> int:
        return self.batch_metadata[-1].last_offset if self.batch_metadata else -1

    @property
    def last_offset_delta(self) -> int:
        return self.batch_metadata[-1].offset_delta if self.batch_metadata else 0

    def maybe_update_producer_epoch(self, producer_epoch: int) -> None:
        # PSE.maybeUpdateProducerEpoch: a new epoch forgets the cached batches
        if self.producer_epoch != producer_epoch:
            self.batch_metadata.clear()
            self.producer_epoch = producer_epoch

    def add_batch(
        self, producer_epoch: int, last_seq: int, last_offset: int, offset_delta: int, timestamp: int
    ) -> None:
        # PSE.addBatch
        if self.producer_epoch != producer_epoch:  # else maybe_update_producer_epoch does nothing: no call
            self.maybe_update_producer_epoch(producer_epoch)
        self.batch_metadata.append(
            BatchMetadata.make(last_seq=last_seq, last_offset=last_offset, offset_delta=offset_delta, timestamp=timestamp)
        )
        self.last_timestamp = timestamp

    def find_duplicate_batch(self, producer_epoch: int, first_seq: int, last_seq: int) -> BatchMetadata | None:
        # PSE.findDuplicateBatch: same epoch and exactly the same sequence range as a cached batch
        if producer_epoch != self.producer_epoch:
            return None
        for metadata in self.batch_metadata:
            if metadata.last_seq == last_seq and metadata.first_seq == first_seq:
                return metadata
        return None


@define(eq=False)
class TxnMetadata:
    """An ongoing or not yet replicated transaction (TxnMetadata.java)."""

    producer_id: int
    first_offset: int
    last_offset: int | None = None


@frozen(kw_only=True)
class CompletedTxn:
    """A transaction closed by a marker (CompletedTxn.java); ``last_offset`` is the marker's offset."""

    producer_id: int
    first_offset: int
    last_offset: int
    is_aborted: bool


@define(eq=False)
class VerificationStateEntry:
    """KIP-890 part 1 (VSE): the guard a pending verification must present, and the lowest sequence
    seen while verifying (KAFKA-14920)."""

    timestamp: int
    lowest_sequence: int
    epoch: int
    supports_epoch_bump: bool  # the produce request speaks transaction version 2
    verification_guard: VerificationGuard = field(factory=VerificationGuard)

    def maybe_update_lowest_sequence_and_epoch(self, incoming_sequence: int, incoming_epoch: int) -> None:
        # VSE.maybeUpdateLowestSequenceAndEpoch: a lower sequence at this epoch, or any sequence at a newer one
        if incoming_epoch == self.epoch and incoming_sequence < self.lowest_sequence:
            self.lowest_sequence = incoming_sequence
        if incoming_epoch > self.epoch:
            self.epoch = incoming_epoch
            self.lowest_sequence = incoming_sequence


@frozen(kw_only=True)
class ProducerSnapshotEntry:
    """One producer in a snapshot file (ProducerSnapshot.json): only its LAST batch survives."""

    producer_id: int
    epoch: int
    last_sequence: int
    last_offset: int  # -1: no batch cached
    offset_delta: int
    timestamp: int
    coordinator_epoch: int
    current_txn_first_offset: int  # -1: no open transaction


@frozen(kw_only=True)
class ProducerStateSnapshot:
    """A producer-state snapshot taken at ``offset`` (the log end offset then; PSM.takeSnapshot)."""

    offset: int
    entries: tuple[ProducerSnapshotEntry, ...]


@define(eq=False)
class ProducerStateManager:
    """All producer state of one partition (PSM), plus the producer-side validation of appends."""

    config: BrokerConfig
    producers: dict[int, ProducerStateEntry] = field(factory=dict, init=False)
    verification_states: dict[int, VerificationStateEntry] = field(factory=dict, init=False)
    # Keyed by the transaction's first offset; Kafka keeps TreeMaps, the minimum is taken where it matters.
    ongoing_txns: dict[int, TxnMetadata] = field(factory=dict, init=False)
    unreplicated_txns: dict[int, TxnMetadata] = field(factory=dict, init=False)  # marker not yet below the HW
    last_map_offset: int = field(default=0, init=False)  # PSM.mapEndOffset: producer state covers offsets below it
    # Whether a sequence wraps from Int.MAX_VALUE to 0 (KAFKA-7692's fix): asked once, not on every append
    _sequence_wraps: bool = field(init=False, repr=False)
    # eosim's aged producers (load_aged_producer): pid -> (epoch, its last batch, below the log start)
    _aged: dict[int, tuple[int, BatchMetadata]] = field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        self._sequence_wraps = not self.config.reintroduces("KAFKA-7692")

    @property
    def _batches_to_retain(self) -> int:
        # PSE.NUM_BATCHES_TO_RETAIN; 0.11 cached only the last batch (KAFKA-5494)
        return 1 if self.config.reintroduces("KAFKA-5494") else self.config.eosim_num_batches_to_retain

    # -- lookups ------------------------------------------------------------------------------------

    def last_entry(self, producer_id: int) -> ProducerStateEntry | None:
        return self.producers.get(producer_id)

    def has_ongoing_transaction(self, producer_id: int, producer_epoch: int) -> bool:
        # UL.hasOngoingTransaction: the epoch is part of the check since KAFKA-14563 (4.0)
        entry = self.producers.get(producer_id)
        return (
            entry is not None
            and entry.current_txn_first_offset is not None
            and entry.producer_epoch == producer_epoch
        )

    def find_duplicate_batch(
        self, producer_id: int, producer_epoch: int, first_seq: int, last_seq: int
    ) -> BatchMetadata | None:
        entry = self.producers.get(producer_id)
        return None if entry is None else entry.find_duplicate_batch(producer_epoch, first_seq, last_seq)

    # -- KIP-890 verification -----------------------------------------------------------------------

    def maybe_create_verification_state_entry(
        self, producer_id: int, sequence: int, epoch: int, supports_epoch_bump: bool, now: int
    ) -> VerificationStateEntry:
        # PSM.maybeCreateVerificationStateEntry: computeIfAbsent, then track the lowest sequence
        entry = self.verification_states.get(producer_id)
        if entry is None:
            # (timestamp, lowest_sequence, epoch, supports_epoch_bump) by position: a class called with keywords
            # packs them into a dict (models/values.py)
            entry = VerificationStateEntry(now, sequence, epoch, supports_epoch_bump)
            self.verification_states[producer_id] = entry
        entry.maybe_update_lowest_sequence_and_epoch(sequence, epoch)
        return entry

    def verification_state_entry(self, producer_id: int) -> VerificationStateEntry | None:
        return self.verification_states.get(producer_id)

    # -- appends ------------------------------------------------------------------------------------

    def append_data_batch(
        self,
        *,
        producer_id: int,
        producer_epoch: int,
        first_seq: int,
        last_seq: int,
        first_offset: int,
        last_offset: int,
        timestamp: int,
        is_transactional: bool,
        origin: AppendOrigin,
        verification_guard: VerificationGuard | None = None,
    ) -> Errors:
        """Validate a data batch that will take offsets [first_offset, last_offset] and, if it passes,
        record it. The duplicate check comes first and is the caller's (``find_duplicate_batch``)."""
        entry = self.producers.get(producer_id)
        vse = self.verification_states.get(producer_id)
        current_epoch = NO_PRODUCER_EPOCH if entry is None else entry.producer_epoch
        txn_first_offset = None if entry is None else entry.current_txn_first_offset
        if origin is not _REPLICATION:
            # UL.analyzeAndValidateProducerState: a transactional batch with no ongoing txn for (pid, epoch)
            # needs verification; a stale epoch is reported first (KAFKA-19690), then the guard (KIP-890).
            if is_transactional and not (txn_first_offset is not None and current_epoch == producer_epoch):
                # before KAFKA-19690 a stale epoch without a guard got INVALID_TXN_STATE (fatal for Streams)
                if entry is not None and producer_epoch < current_epoch and not self.config.reintroduces("KAFKA-19690"):
                    return Errors.INVALID_PRODUCER_EPOCH
                if self.config.transaction_partition_verification_enable and (
                    vse is None or not vse.verification_guard.verify(verification_guard)
                ):
                    return Errors.INVALID_TXN_STATE
            # PAI.checkProducerEpoch (INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED, since 2.7: KIP-588)
            if producer_epoch < current_epoch:
                return Errors.INVALID_PRODUCER_EPOCH
            if origin is _CLIENT:
                error = self._check_sequence(entry, vse, producer_epoch, first_seq)
                if error is not _NONE:
                    return error
        # PAI.appendDataBatch: no plain write while this producer's transaction is open (all origins)
        if txn_first_offset is not None and not is_transactional:
            return Errors.INVALID_TXN_STATE

        if entry is None:
            entry = ProducerStateEntry.empty(producer_id, self._batches_to_retain)
            self.producers[producer_id] = entry
        entry.add_batch(producer_epoch, last_seq, last_offset, last_offset - first_offset, timestamp)
        if is_transactional:
            if txn_first_offset is None:
                # PAI.appendDataBatch: this batch begins a transaction
                entry.current_txn_first_offset = first_offset
                self.ongoing_txns[first_offset] = TxnMetadata(producer_id, first_offset)
            # UL.updateProducers: the first offset now proves the txn, the guard is no longer needed
            self.verification_states.pop(producer_id, None)
        return _NONE

    def _check_sequence(
        self, entry: ProducerStateEntry | None, vse: VerificationStateEntry | None, producer_epoch: int, first_seq: int
    ) -> Errors:
        # PAI.checkSequence, in Kafka's order
        no_batches = entry is None or not entry.batch_metadata
        if vse is not None and vse.supports_epoch_bump and first_seq != 0 and no_batches:
            return Errors.OUT_OF_ORDER_SEQUENCE_NUMBER  # TV2 producer without state starts at 0 (KAFKA-18202, 4.1)
        # never past a lower sequence still verifying (KAFKA-14920; before it, the later batch went in first)
        if vse is not None and first_seq > vse.lowest_sequence and not self.config.reintroduces("KAFKA-14920"):
            return Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
        current_epoch = NO_PRODUCER_EPOCH if entry is None else entry.producer_epoch
        if producer_epoch != current_epoch:
            # a new epoch restarts at 0; an unknown producer (no epoch) may start anywhere (KIP-360)
            if first_seq != 0 and current_epoch != NO_PRODUCER_EPOCH:
                return Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
        elif current_epoch != NO_PRODUCER_EPOCH and not _in_sequence(
            entry.last_seq, first_seq, wraps=self._sequence_wraps
        ):
            # an entry without batches (a marker with a new epoch cleared them) has last_seq -1: expect 0
            return Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
        return _NONE

    def append_end_txn_marker(
        self,
        *,
        producer_id: int,
        producer_epoch: int,
        coordinator_epoch: int,
        control: ControlType,
        offset: int,
        timestamp: int,
        origin: AppendOrigin,
    ) -> tuple[Errors, CompletedTxn | None]:
        """Validate and record a COMMIT/ABORT marker at ``offset`` (PAI.appendEndTxnMarker). The
        CompletedTxn is None for a marker that closes no transaction here (an "empty" marker)."""
        entry = self.producers.get(producer_id)
        if entry is not None and origin is not AppendOrigin.REPLICATION:
            # PAI.checkProducerEpoch: up to 4.1 an equal or newer epoch is accepted (KAFKA-19446 is 4.2)
            if producer_epoch < entry.producer_epoch:
                return Errors.INVALID_PRODUCER_EPOCH, None
            # PAI.checkCoordinatorEpoch: a marker from a zombie coordinator
            if coordinator_epoch < entry.coordinator_epoch:
                return Errors.TRANSACTION_COORDINATOR_FENCED, None
        if entry is None:
            entry = ProducerStateEntry.empty(producer_id, self._batches_to_retain)
            self.producers[producer_id] = entry
        completed = None
        if entry.current_txn_first_offset is not None:
            # only a non-empty transaction yields a CompletedTxn (KAFKA-10702)
            completed = CompletedTxn.make(  # make: a class called with keywords packs them into a dict
                producer_id=producer_id,
                first_offset=entry.current_txn_first_offset,
                last_offset=offset,
                is_aborted=control is ControlType.ABORT,
            )
        # PSE.update(epoch, coordinatorEpoch, timestamp): the marker's timestamp counts for expiration
        # (KAFKA-9144; before it the last data timestamp stayed, so the entry could expire at once);
        # a TV1 marker at the same epoch keeps the cached batches, a new epoch clears them.
        entry.maybe_update_producer_epoch(producer_epoch)
        entry.coordinator_epoch = coordinator_epoch
        entry.current_txn_first_offset = None
        entry.last_timestamp = entry.last_timestamp if self.config.reintroduces("KAFKA-9144") else timestamp
        vse = self.verification_states.get(producer_id)
        # UL.updateProducers: keep the guard only if a TV2 producer already verifies its next txn at this epoch
        if vse is not None and not (vse.supports_epoch_bump and producer_epoch == vse.epoch):
            del self.verification_states[producer_id]
        return Errors.NONE, completed

    # -- transactions and the LSO -------------------------------------------------------------------

    def last_stable_offset(self, completed_txn: CompletedTxn) -> int:
        # PSM.lastStableOffset: the earliest OTHER producer's ongoing txn, else just past the marker
        other = [o for o, txn in self.ongoing_txns.items() if txn.producer_id != completed_txn.producer_id]
        return min(other) if other else completed_txn.last_offset + 1

    def complete_txn(self, completed_txn: CompletedTxn) -> None:
        # PSM.completeTxn: ongoing -> unreplicated until its marker is below the HW
        txn = self.ongoing_txns.pop(completed_txn.first_offset)
        txn.last_offset = completed_txn.last_offset
        self.unreplicated_txns[completed_txn.first_offset] = txn

    def first_unstable_offset(self) -> int | None:
        # PSM.firstUnstableOffset: the earliest first offset of an ongoing or unreplicated txn
        if not self.ongoing_txns and not self.unreplicated_txns:  # most calls: no tuple built for nothing
            return None
        return min((*self.ongoing_txns, *self.unreplicated_txns), default=None)

    def on_high_watermark_updated(self, high_watermark: int) -> None:
        # PSM.removeUnreplicatedTransactions
        if not self.unreplicated_txns:  # most calls: no list built for nothing
            return
        done = [first for first, txn in self.unreplicated_txns.items() if txn.last_offset < high_watermark]
        for first in done:
            del self.unreplicated_txns[first]

    def update_map_end_offset(self, offset: int) -> None:
        self.last_map_offset = offset

    # -- expiration ---------------------------------------------------------------------------------

    def _is_expired(self, now: int, entry: ProducerStateEntry) -> bool:
        # PSM.isProducerExpired: never with an open txn (KIP-854 producer.id.expiration.ms, 3.4+)
        return (
            entry.current_txn_first_offset is None
            and now - entry.last_timestamp >= self.config.producer_id_expiration_ms
        )

    def remove_expired_producers(self, now: int) -> list[int]:
        """PSM.removeExpiredProducers; returns the expired producer ids, sorted. Pending verifications
        expire on the same timer, from the time they started."""
        expired = sorted(pid for pid, entry in self.producers.items() if self._is_expired(now, entry))
        for pid in expired:
            del self.producers[pid]
        stale = [
            pid
            for pid, vse in self.verification_states.items()
            if now - vse.timestamp >= self.config.producer_id_expiration_ms
        ]
        for pid in stale:
            del self.verification_states[pid]
        return expired

    def load_aged_producer(self, producer_id: int, producer_epoch: int, last_seq: int, timestamp: int) -> None:
        """Start with a long-lived producer's entry whose batches retention already deleted (eosim's aged
        state, docs/scenario-format.md): (pid, epoch) and its last batch ending at ``last_seq`` (PSM.loadProducerEntry
        from a snapshot; KIP-360 keeps an entry when its batches leave the log). The batch is below the log
        start (offset -1 here, where the log starts at 0). The snapshot that holds it stays on disk: a reload
        keeps it (``load_snapshot``), as a restarted Kafka broker loads it.

        Raises:
            ModelError: the pid already has state, or a value is outside Kafka's ranges.
        """
        if producer_id in self.producers:
            raise ModelError(f"producer {producer_id} already has state")
        if not (0 <= producer_epoch <= MAX_EPOCH and 0 <= last_seq <= MAX_SEQUENCE and producer_id >= 0):
            raise ModelError(f"no such producer state: pid {producer_id}, epoch {producer_epoch}, seq {last_seq}")
        self._aged[producer_id] = (producer_epoch, BatchMetadata(last_seq=last_seq, last_offset=-1, offset_delta=0,
                                                                 timestamp=timestamp))
        self._load_aged(producer_id, None)

    def _load_aged(self, producer_id: int, now: int | None) -> None:
        epoch, batch = self._aged[producer_id]
        entry = ProducerStateEntry(producer_id, deque(maxlen=self._batches_to_retain), producer_epoch=epoch,
                                   last_timestamp=batch.timestamp)
        entry.batch_metadata.append(batch)
        if now is None or not self._is_expired(now, entry):
            self.producers[producer_id] = entry

    def take_snapshot(self) -> ProducerStateSnapshot:
        """PSM.writeSnapshot: each producer with its LAST batch only, at the current map end offset."""
        return ProducerStateSnapshot(
            offset=self.last_map_offset,
            entries=tuple(
                ProducerSnapshotEntry(
                    producer_id=pid,
                    epoch=entry.producer_epoch,
                    last_sequence=entry.last_seq,
                    last_offset=entry.last_data_offset,
                    offset_delta=entry.last_offset_delta,
                    timestamp=entry.last_timestamp,
                    coordinator_epoch=entry.coordinator_epoch,
                    current_txn_first_offset=(
                        -1 if entry.current_txn_first_offset is None else entry.current_txn_first_offset
                    ),
                )
                for pid, entry in sorted(self.producers.items())
            ),
        )

    def load_snapshot(self, snapshot: ProducerStateSnapshot | None, log_start_offset: int, now: int | None) -> None:
        """Forget everything (a restart) and load ``snapshot`` (PSM.truncateAndReload/loadFromSnapshot):
        entries come back with one cached batch; expired ones are dropped when ``now`` is given. The
        caller then replays the log from ``last_map_offset`` with origin REPLICATION."""
        self.producers.clear()
        self.verification_states.clear()
        self.ongoing_txns.clear()
        self.unreplicated_txns.clear()
        if snapshot is None:  # the snapshot at the log start: the aged producers' (load_aged_producer)
            for pid in sorted(self._aged):
                self._load_aged(pid, now)
            self.last_map_offset = log_start_offset
            return
        for e in snapshot.entries:
            entry = ProducerStateEntry(
                e.producer_id,
                deque(maxlen=self._batches_to_retain),
                producer_epoch=e.epoch,
                coordinator_epoch=e.coordinator_epoch,
                last_timestamp=e.timestamp,
                current_txn_first_offset=None if e.current_txn_first_offset < 0 else e.current_txn_first_offset,
            )
            if e.last_offset >= 0:  # PSM.readSnapshot: the batch takes the entry's timestamp
                entry.batch_metadata.append(
                    BatchMetadata(
                        last_seq=e.last_sequence,
                        last_offset=e.last_offset,
                        offset_delta=e.offset_delta,
                        timestamp=e.timestamp,
                    )
                )
            elif e.producer_id in self._aged and self._aged[e.producer_id][0] == e.epoch:
                # its last batch is still the aged one, below the log start: Kafka's snapshot has it at its
                # real offset, which is >= 0
                entry.batch_metadata.append(self._aged[e.producer_id][1])
            if now is not None and self._is_expired(now, entry):
                continue
            # PSM.loadProducerEntry: an open txn is ongoing again
            self.producers[e.producer_id] = entry
            if entry.current_txn_first_offset is not None:
                first = entry.current_txn_first_offset
                self.ongoing_txns[first] = TxnMetadata(e.producer_id, first)
        self.last_map_offset = snapshot.offset
