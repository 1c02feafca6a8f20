"""eosim.models.protocol
===============

The data-plane requests a client sends to a partition leader (Produce, Fetch, ListOffsets) and their
responses, and FindCoordinator (a cluster of several brokers). The coordinators' requests live with their
automata (txn_coordinator, group_coordinator).
"""

from __future__ import annotations

import enum

from eosim.models.errors import Errors
from eosim.models.records import IsolationLevel, RecordBatch, TopicPartition
from eosim.models.values import frozen

TV2_PRODUCE_VERSION = 12  # ProduceRequest.LAST_BEFORE_TRANSACTION_V2_VERSION (11) + 1
TRANSACTION_ABORTABLE_PRODUCE_VERSION = 11  # KAFKA-16314: older versions get INVALID_TXN_STATE instead
LATEST_TIMESTAMP = -1  # ListOffsetsRequest.LATEST_TIMESTAMP
EARLIEST_TIMESTAMP = -2


@frozen(kw_only=True)
class ProduceRequest:
    transactional_id: str | None
    acks: int
    # One batch per partition, as the clients send (ReplicaManager rejects several txn pids: one pid here).
    batches: tuple[tuple[TopicPartition, RecordBatch], ...]
    # The version decides KIP-890's leader side (ReplicaManager.handleProduceAppend, AddPartitionsToTxnManager):
    # v11+ gets TRANSACTION_ABORTABLE for a failed verification, v12+ (TV2, supports_epoch_bump) has the leader
    # add the partition to the transaction. librdkafka sends at most v10.
    api_version: int = 10


@frozen(kw_only=True)
class PartitionProduceResponse:
    partition: TopicPartition
    error: Errors
    base_offset: int = -1
    log_start_offset: int = -1


@frozen(kw_only=True)
class ProduceResponse:
    responses: tuple[PartitionProduceResponse, ...]


@frozen(kw_only=True)
class FetchRequest:
    isolation_level: IsolationLevel
    partitions: tuple[tuple[TopicPartition, int], ...]  # (partition, fetch offset)
    max_records: int | None = None


@frozen(kw_only=True)
class FetchResponse:
    # FetchResult is eosim.models.log.FetchResult; typed loosely to keep this module free of the log.
    responses: tuple[tuple[TopicPartition, object], ...]


@frozen(kw_only=True)
class ListOffsetsRequest:
    isolation_level: IsolationLevel
    partitions: tuple[tuple[TopicPartition, int], ...]  # (partition, LATEST_TIMESTAMP or EARLIEST_TIMESTAMP)


@frozen(kw_only=True)
class ListOffsetsResponse:
    responses: tuple[tuple[TopicPartition, Errors, int], ...]


@frozen(kw_only=True)
class WriteTxnMarkersRequest:
    """Coordinator → partition leader (KafkaApis.handleWriteTxnMarkersRequest); entry is a TxnMarkerEntry."""

    entry: object


@frozen(kw_only=True)
class WriteTxnMarkersResponse:
    results: tuple[tuple[TopicPartition, Errors], ...]


@frozen(kw_only=True)
class MetadataRequest:
    """Metadata for these topics' partitions (a client learns where each partition's leader is)."""

    topics: tuple[str, ...]


@frozen(kw_only=True)
class PartitionMetadata:
    partition: TopicPartition
    error: Errors  # LEADER_NOT_AVAILABLE while no leader is elected
    leader: int = -1  # the leader's broker id, -1 for none
    leader_epoch: int = -1


@frozen(kw_only=True)
class MetadataResponse:
    partitions: tuple[PartitionMetadata, ...]


class CoordinatorType(enum.Enum):
    """FindCoordinatorRequest's key type (FindCoordinatorRequest.CoordinatorType)."""

    GROUP = 0
    TRANSACTION = 1


@frozen(kw_only=True)
class FindCoordinatorRequest:
    """Which broker is the coordinator of ``key`` (a group id or a transactional id), asked of any broker."""

    key_type: CoordinatorType
    key: str


@frozen(kw_only=True)
class FindCoordinatorResponse:
    """KafkaApis.getCoordinator: the leader of the key's internal partition, from the broker's metadata cache;
    COORDINATOR_NOT_AVAILABLE while it has none."""

    error: Errors
    node_id: int = -1
