"""eosim.models.leader_epoch_cache
===============================

One replica's leader-epoch cache (KIP-101): the start offset of every leader epoch in its log, as Kafka's
``LeaderEpochFileCache`` keeps it (storage/.../internals/epoch/LeaderEpochFileCache.java, Kafka 4.1, ``LEFC``
below). Followers truncate by it (KIP-101/KIP-279) and leaders answer OffsetsForLeaderEpoch and the
diverging-epoch check of a follower fetch from it (``eosim.models.partition``).

Entries are kept sorted by epoch and by start offset (both strictly increasing): ``assign`` drops any entry that
would break that, as LEFC.maybeTruncateNonMonotonicEntries does.
"""

from __future__ import annotations

from attrs import define, field

from eosim.models.errors import ModelError
from eosim.models.values import frozen

__all__ = ["UNDEFINED_EPOCH", "UNDEFINED_EPOCH_OFFSET", "EpochEntry", "LeaderEpochFileCache"]

UNDEFINED_EPOCH = -1  # RecordBatch.NO_PARTITION_LEADER_EPOCH / OffsetsForLeaderEpochResponse.UNDEFINED_EPOCH
UNDEFINED_EPOCH_OFFSET = -1  # OffsetsForLeaderEpochResponse.UNDEFINED_EPOCH_OFFSET


@frozen(kw_only=True)
class EpochEntry:
    """LEFC's EpochEntry: ``epoch`` starts at ``start_offset``."""

    epoch: int
    start_offset: int


@define(eq=False)
class LeaderEpochFileCache:
    """The epoch -> start offset map of one replica's log (the checkpoint file is its durable form: it survives a
    crash with the log)."""

    _entries: list[EpochEntry] = field(factory=list)

    @property
    def entries(self) -> tuple[EpochEntry, ...]:
        return tuple(self._entries)

    @property
    def latest_epoch(self) -> int | None:
        """LEFC.latestEpoch: the epoch of the last entry, None when the cache is empty."""
        return self._entries[-1].epoch if self._entries else None

    def assign(self, epoch: int, start_offset: int) -> None:
        """LEFC.assign: record that ``epoch`` starts at ``start_offset``.

        Nothing changes when the latest entry already has this epoch at an offset <= ``start_offset``
        (LEFC.isUpdateNeeded). Otherwise every trailing entry with an epoch >= ``epoch`` or a start offset >=
        ``start_offset`` goes first (LEFC.maybeTruncateNonMonotonicEntries).

        Raises:
            ModelError: a negative epoch or offset (LEFC throws IllegalArgumentException).
        """
        if epoch < 0 or start_offset < 0:
            raise ModelError(f"invalid leader epoch entry epoch={epoch} start_offset={start_offset}")
        if self._entries:
            latest = self._entries[-1]
            if latest.epoch == epoch and latest.start_offset <= start_offset:
                return
        while self._entries and (self._entries[-1].epoch >= epoch or self._entries[-1].start_offset >= start_offset):
            self._entries.pop()
        self._entries.append(EpochEntry(epoch=epoch, start_offset=start_offset))

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """LEFC.endOffsetFor: (the largest epoch <= ``requested_epoch``, the offset where it ends).

        The end of the latest epoch is the log end offset; of an older one, the start of the next epoch. An
        unknown epoch (undefined, or above every cached one) gives (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET); one
        below every cached epoch gives (requested_epoch, start of the first cached epoch).
        """
        if requested_epoch == UNDEFINED_EPOCH:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if self._entries and self._entries[-1].epoch == requested_epoch:
            return requested_epoch, log_end_offset
        higher = next((e for e in self._entries if e.epoch > requested_epoch), None)
        if higher is None:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        floor = None
        for entry in self._entries:
            if entry.epoch <= requested_epoch:
                floor = entry
        if floor is None:
            return requested_epoch, higher.start_offset
        return floor.epoch, higher.start_offset

    def truncate_from_end(self, end_offset: int) -> None:
        """LEFC.truncateFromEnd: drop every entry starting at or after ``end_offset`` (the log was truncated
        there)."""
        while self._entries and self._entries[-1].start_offset >= end_offset:
            self._entries.pop()
