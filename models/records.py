"""eosim.models.records
==============

Value objects shared by every model: topic-partitions, records, client record batches, stored log
batches and transaction markers. Layout follows magic-v2 record batches
(clients/src/main/java/org/apache/kafka/common/record/DefaultRecordBatch.java).
"""

from __future__ import annotations

import enum

from attrs import field

from eosim.models.values import frozen

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
MAX_SEQUENCE = 2**31 - 1  # Int.MAX_VALUE; sequences wrap to 0 after it (DefaultRecordBatch.incrementSequence)
MAX_EPOCH = 2**15 - 1  # Short.MAX_VALUE

CONSUMER_OFFSETS_TOPIC = "__consumer_offsets"
TRANSACTION_STATE_TOPIC = "__transaction_state"


def increment_sequence(sequence: int, increment: int) -> int:
    """Kafka's modular sequence arithmetic: wraps past Int.MAX_VALUE to 0."""
    return (sequence + increment) % (MAX_SEQUENCE + 1)


def java_string_hash(s: str) -> int:
    """Java's String.hashCode (32-bit signed), so coordinator placement matches Kafka's."""
    h = 0
    units = s.encode("utf-16-be")  # Java hashes UTF-16 code units, not code points
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i : i + 2], "big")) & 0xFFFFFFFF
    return h - 2**32 if h >= 2**31 else h


def partition_for(key: str, num_partitions: int) -> int:
    """Utils.abs(hash) % n, as in TransactionStateManager.partitionFor and GroupCoordinator.partitionFor."""
    return (java_string_hash(key) & 0x7FFFFFFF) % num_partitions


class IsolationLevel(enum.Enum):
    READ_UNCOMMITTED = 0
    READ_COMMITTED = 1


class ControlType(enum.IntEnum):
    """Control record key type (ControlRecordType.java)."""

    ABORT = 0
    COMMIT = 1


class TransactionResult(enum.Enum):
    ABORT = 0
    COMMIT = 1

    @property
    def control_type(self) -> ControlType:
        return ControlType.COMMIT if self is TransactionResult.COMMIT else ControlType.ABORT


@frozen(cache_hash=True)  # a dict key on every request's path (logs, partitions, producer states)
class TopicPartition:
    topic: str
    partition: int = field()

    @partition.validator
    def _check(self, _attr, value: int) -> None:
        if value < 0:
            raise ValueError(f"partition must be >= 0, got {value}")

    # Ordered by (topic, partition). Written out because sorting partitions is on the simulator's hot
    # path, and attrs' generated order (order=True) goes through a generic tuple builder, 10x slower.
    def __lt__(self, other: TopicPartition) -> bool:
        if other.__class__ is not TopicPartition:
            return NotImplemented
        return (self.topic, self.partition) < (other.topic, other.partition)

    def __le__(self, other: TopicPartition) -> bool:
        if other.__class__ is not TopicPartition:
            return NotImplemented
        return (self.topic, self.partition) <= (other.topic, other.partition)

    def __gt__(self, other: TopicPartition) -> bool:
        if other.__class__ is not TopicPartition:
            return NotImplemented
        return (self.topic, self.partition) > (other.topic, other.partition)

    def __ge__(self, other: TopicPartition) -> bool:
        if other.__class__ is not TopicPartition:
            return NotImplemented
        return (self.topic, self.partition) >= (other.topic, other.partition)

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


@frozen
class Record:
    key: str | None
    value: str | None
    timestamp: int = 0


@frozen(kw_only=True)
class RecordBatch:
    """A batch as a client sends it (baseOffset 0; the leader assigns offsets)."""

    records: tuple[Record, ...]
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    base_sequence: int = NO_SEQUENCE
    is_transactional: bool = False

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return increment_sequence(self.base_sequence, len(self.records) - 1)

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id >= 0

    @property
    def max_timestamp(self) -> int:
        records = self.records
        highest = records[0].timestamp  # a loop, not max() over a comprehension: on every append
        for r in records:
            if r.timestamp > highest:
                highest = r.timestamp
        return highest


@frozen(kw_only=True)
class LogBatch:
    """A batch as stored in a partition log: data (``records``) or one control record (``control``)."""

    base_offset: int
    records: tuple[Record, ...] = ()
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    base_sequence: int = NO_SEQUENCE
    is_transactional: bool = False
    control: ControlType | None = None
    coordinator_epoch: int = -1
    timestamp: int = 0
    # the epoch of the leader that wrote it (DefaultRecordBatch.partitionLeaderEpoch): -1 on a single-replica log.
    # Not in a batch's trace form (sim/_trace.py): partition.leader events show the epochs.
    partition_leader_epoch: int = field(default=-1, metadata={"traced": False})

    @property
    def is_control(self) -> bool:
        return self.control is not None

    @property
    def last_offset(self) -> int:
        return self.base_offset + max(len(self.records), 1) - 1

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1
