"""eosim._client.message
==================

confluent-kafka's value types: ``Message`` (accessor *methods*), ``TopicPartition`` (plain
*attributes*, equal and ordered by (topic, partition) only, as ``TopicPartition_richcompare`` in
confluent_kafka.c) and ``ConsumerGroupMetadata``.
"""

from __future__ import annotations

from attrs import frozen

from eosim.models.records import TopicPartition as ModelTopicPartition
from eosim._client.errors import KafkaError

OFFSET_BEGINNING = -2  # RD_KAFKA_OFFSET_BEGINNING
OFFSET_END = -1  # RD_KAFKA_OFFSET_END
OFFSET_STORED = -1000  # RD_KAFKA_OFFSET_STORED
OFFSET_INVALID = -1001  # RD_KAFKA_OFFSET_INVALID

TIMESTAMP_NOT_AVAILABLE = 0
TIMESTAMP_CREATE_TIME = 1


class TopicPartition:
    """confluent_kafka.TopicPartition(topic, partition=-1, offset=-1001)."""

    def __init__(self, topic: str, partition: int = -1, offset: int = OFFSET_INVALID,
                 metadata: str | None = None, leader_epoch: int | None = None) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.metadata = metadata
        self.leader_epoch = -1 if leader_epoch is None else leader_epoch
        self.error: KafkaError | None = None

    def model(self) -> ModelTopicPartition:
        return ModelTopicPartition(self.topic, self.partition)

    def _key(self) -> tuple[str, int]:
        return (self.topic, self.partition)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TopicPartition) and self._key() == other._key()

    def __lt__(self, other: TopicPartition) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"TopicPartition({self.topic!r}, {self.partition}, {self.offset}, {self.metadata!r}, "
                f"{None if self.leader_epoch < 0 else self.leader_epoch})")

    def __str__(self) -> str:
        # TopicPartition_str0 (confluent_kafka.c)
        epoch = self.leader_epoch if self.leader_epoch >= 0 else None
        return (f"TopicPartition{{topic={self.topic},partition={self.partition},offset={self.offset},"
                f"leader_epoch={epoch},error={self.error}}}")


def to_bytes(data: str | bytes | None) -> bytes | None:
    """A key or value as librdkafka holds it: bytes, a str being its UTF-8 encoding (confluent-kafka's
    produce() takes either; Message.key() and value() give bytes back)."""
    return data.encode() if isinstance(data, str) else data


class Message:
    """confluent_kafka.Message as delivery reports and the consumer hand it out: key and value are
    bytes, whether they were produced as str or bytes."""

    def __init__(self, topic: str | None = None, partition: int | None = None, offset: int | None = None,
                 key: str | bytes | None = None, value: str | bytes | None = None, error: KafkaError | None = None,
                 timestamp: tuple[int, int] = (TIMESTAMP_NOT_AVAILABLE, -1)) -> None:
        self._topic = topic
        self._partition = partition
        self._offset = offset
        # to_bytes, inlined: two Python calls less on every delivery report
        self._key = key.encode() if isinstance(key, str) else key
        self._value = value.encode() if isinstance(value, str) else value
        self._error = error
        self._timestamp = timestamp

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> KafkaError | None:
        return self._error

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp

    def headers(self) -> None:
        """None: eosim's records carry no headers, and librdkafka gives None for a message without any."""
        return None

    def set_error(self, error: KafkaError | None) -> None:
        self._error = error

    def __len__(self) -> int:
        return 0 if self._value is None else len(self._value)

    def __repr__(self) -> str:
        return (f"Message({self._topic!r}, {self._partition!r}, {self._offset!r}, {self._key!r}, "
                f"{self._value!r}, {self._error!r}, {self._timestamp!r})")


@frozen(kw_only=True)
class ConsumerGroupMetadata:
    """What ``Consumer.consumer_group_metadata()`` hands to ``send_offsets_to_transaction`` (KIP-447)."""

    group_id: str
    generation_id: int = -1
    member_id: str = ""
    group_instance_id: str | None = None
