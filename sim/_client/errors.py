"""eosim._client.errors
=================

confluent-kafka's ``KafkaError`` / ``KafkaException`` and the tables of the client's reactions to broker
errors: librdkafka's (``REACTIONS``, ``DEFAULTS``) and, for ``eosim.client = "java"``, the Java client
4.1's (``JAVA_REACTIONS``, ``JAVA_DEFAULTS``); ``action`` picks by client. Codes and names are
librdkafka's (``src/rdkafka.h``, ``rd_kafka_err2name`` in ``src/rdkafka.c``): broker codes keep their
numbers, librdkafka's own local codes are negative and their names start with ``_``. A few broker codes
have a librdkafka name that differs from Kafka's (``NOT_LEADER_FOR_PARTITION`` for
``NOT_LEADER_OR_FOLLOWER``, ...): ``name()`` returns librdkafka's, as confluent-kafka does, and both
spellings are class attributes.
"""

from __future__ import annotations

import enum
from typing import Any

from attrs import frozen

from eosim.models.errors import Errors
from eosim._client.config import Client

# librdkafka's local (negative) codes used by this client, with rd_kafka_err2str's text (src/rdkafka.c).
LOCAL_CODES: dict[str, tuple[int, str]] = {
    "_BAD_MSG": (-199, "Local: Bad message format"),
    "_DESTROY": (-197, "Local: Broker handle destroyed for termination"),
    "_TRANSPORT": (-195, "Local: Broker transport failure"),
    "_MSG_TIMED_OUT": (-192, "Local: Message timed out"),
    "_PARTITION_EOF": (-191, "Broker: No more messages"),
    "_UNKNOWN_PARTITION": (-190, "Local: Unknown partition"),
    "_UNKNOWN_TOPIC": (-188, "Local: Unknown topic"),
    "_INVALID_ARG": (-186, "Local: Invalid argument or configuration"),
    "_TIMED_OUT": (-185, "Local: Timed out"),
    "_QUEUE_FULL": (-184, "Local: Queue full"),
    "_WAIT_COORD": (-180, "Local: Waiting for coordinator"),
    "_UNKNOWN_GROUP": (-179, "Local: Unknown group"),
    "_IN_PROGRESS": (-178, "Local: Operation in progress"),
    "_PREV_IN_PROGRESS": (-177, "Local: Previous operation in progress"),
    "_ASSIGN_PARTITIONS": (-175, "Local: Assign partitions"),
    "_REVOKE_PARTITIONS": (-174, "Local: Revoke partitions"),
    "_CONFLICT": (-173, "Local: Conflicting use"),
    "_STATE": (-172, "Local: Erroneous state"),
    "_NOT_IMPLEMENTED": (-170, "Local: Not implemented"),
    "_NO_OFFSET": (-168, "Local: No offset stored"),
    "_OUTDATED": (-167, "Local: Outdated"),
    "_TIMED_OUT_QUEUE": (-166, "Local: Timed out in queue"),
    "_RETRY": (-153, "Local: Retry operation"),
    "_PURGE_QUEUE": (-152, "Local: Purged in queue"),
    "_PURGE_INFLIGHT": (-151, "Local: Purged in flight"),
    "_FATAL": (-150, "Local: Fatal error"),
    "_INCONSISTENT": (-149, "Local: Inconsistent state"),
    "_NOT_CONFIGURED": (-145, "Local: Functionality not configured"),
    "_FENCED": (-144, "Local: This instance has been fenced by a newer instance"),
    "_ASSIGNMENT_LOST": (-142, "Local: Group partition assignment lost"),
    "_AUTO_OFFSET_RESET": (-140, "Local: No offset to automatically reset to"),
}

# Broker codes whose librdkafka name differs from Kafka's (rdkafka.h enum names).
RDKAFKA_NAMES: dict[Errors, str] = {
    Errors.UNKNOWN_SERVER_ERROR: "UNKNOWN",
    Errors.NONE: "NO_ERROR",
    Errors.CORRUPT_MESSAGE: "INVALID_MSG",
    Errors.UNKNOWN_TOPIC_OR_PARTITION: "UNKNOWN_TOPIC_OR_PART",
    Errors.NOT_LEADER_OR_FOLLOWER: "NOT_LEADER_FOR_PARTITION",
}

# rd_kafka_err2str for the broker codes (src/rdkafka.c rd_kafka_err_descs).
BROKER_DESCRIPTIONS: dict[Errors, str] = {
    Errors.UNKNOWN_SERVER_ERROR: "Unknown broker error",
    Errors.NONE: "Success",
    Errors.OFFSET_OUT_OF_RANGE: "Broker: Offset out of range",
    Errors.CORRUPT_MESSAGE: "Broker: Invalid message",
    Errors.UNKNOWN_TOPIC_OR_PARTITION: "Broker: Unknown topic or partition",
    Errors.NOT_LEADER_OR_FOLLOWER: "Broker: Not leader for partition",
    Errors.REQUEST_TIMED_OUT: "Broker: Request timed out",
    Errors.NETWORK_EXCEPTION: "Broker: Broker disconnected before response received",
    Errors.COORDINATOR_LOAD_IN_PROGRESS: "Broker: Coordinator load in progress",
    Errors.COORDINATOR_NOT_AVAILABLE: "Broker: Coordinator not available",
    Errors.NOT_COORDINATOR: "Broker: Not coordinator",
    Errors.NOT_ENOUGH_REPLICAS: "Broker: Not enough in-sync replicas",
    Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND: "Broker: Message(s) written to insufficient number of in-sync replicas",
    Errors.ILLEGAL_GENERATION: "Broker: Specified group generation id is not valid",
    Errors.UNKNOWN_MEMBER_ID: "Broker: Unknown member",
    Errors.INVALID_SESSION_TIMEOUT: "Broker: Invalid session timeout",
    Errors.REBALANCE_IN_PROGRESS: "Broker: Group rebalance in progress",
    Errors.INVALID_REQUEST: "Broker: Invalid request",
    Errors.OUT_OF_ORDER_SEQUENCE_NUMBER: "Broker: Broker received an out of order sequence number",
    Errors.DUPLICATE_SEQUENCE_NUMBER: "Broker: Broker received a duplicate sequence number",
    Errors.INVALID_PRODUCER_EPOCH: "Broker: Producer attempted an operation with an old epoch",
    Errors.INVALID_TXN_STATE: "Broker: Producer attempted a transactional operation in an invalid state",
    Errors.INVALID_PRODUCER_ID_MAPPING: "Broker: Producer attempted to use a producer id which is not currently "
                                        "assigned to its transactional id",
    Errors.INVALID_TRANSACTION_TIMEOUT: "Broker: Transaction timeout is larger than the maximum value allowed by "
                                        "the broker's max.transaction.timeout.ms",
    Errors.CONCURRENT_TRANSACTIONS: "Broker: Producer attempted to update a transaction while another concurrent "
                                    "operation on the same transaction was ongoing",
    Errors.TRANSACTION_COORDINATOR_FENCED: "Broker: Indicates that the transaction coordinator sending a "
                                           "WriteTxnMarker is no longer the current coordinator for a given producer",
    Errors.OPERATION_NOT_ATTEMPTED: "Broker: Operation not attempted",
    Errors.KAFKA_STORAGE_ERROR: "Broker: Disk error when trying to access log file on disk",
    Errors.UNKNOWN_PRODUCER_ID: "Broker: Unknown Producer Id",
    Errors.GROUP_ID_NOT_FOUND: "Broker: The group id does not exist",
    Errors.MEMBER_ID_REQUIRED: "Broker: Group member needs a valid member ID",
    Errors.FENCED_INSTANCE_ID: "Broker: Static consumer fenced by other consumer with same group.instance.id",
    Errors.UNSTABLE_OFFSET_COMMIT: "Broker: There are unstable offsets that need to be cleared",
    Errors.PRODUCER_FENCED: "Broker: There is a newer producer with the same transactionalId which fences the "
                            "current one",
    Errors.TRANSACTIONAL_ID_NOT_FOUND: "Broker: The transactionalId could not be found",
    Errors.STALE_MEMBER_EPOCH: "Broker: The member epoch is stale",
    Errors.TRANSACTION_ABORTABLE: "Broker: The server encountered an error with the transaction. The client can "
                                  "abort the transaction to continue using this transactional ID.",
}

_NAMES: dict[int, str] = {code: name for name, (code, _) in LOCAL_CODES.items()}
_NAMES.update({int(e): RDKAFKA_NAMES.get(e, e.name) for e in Errors})
_DESCRIPTIONS: dict[int, str] = {code: text for code, text in LOCAL_CODES.values()}
_DESCRIPTIONS.update({int(e): text for e, text in BROKER_DESCRIPTIONS.items()})


class KafkaError:
    """confluent_kafka.KafkaError: a code plus the three flags librdkafka's ``rd_kafka_error_t`` carries.

    Compares (and hashes) as its integer code, like the C type (``KafkaError_richcompare``).
    """

    def __init__(self, code: int, reason: str | None = None, fatal: bool = False, retriable: bool = False,
                 txn_requires_abort: bool = False) -> None:
        self._code = int(code)
        self._reason = reason
        self._fatal = bool(fatal)
        self._retriable = bool(retriable)
        self._txn_requires_abort = bool(txn_requires_abort)

    def code(self) -> int:
        return self._code

    def name(self) -> str:
        # rd_kafka_err2name: unknown codes print as "ERR_<n>?"
        return _NAMES.get(self._code, f"ERR_{self._code}?")

    def str(self) -> str:
        return self._reason if self._reason is not None else _DESCRIPTIONS.get(self._code, self.name())

    def fatal(self) -> bool:
        return self._fatal

    def retriable(self) -> bool:
        return self._retriable

    def txn_requires_abort(self) -> bool:
        return self._txn_requires_abort

    def _other(self, other: object) -> int | None:
        if isinstance(other, KafkaError):
            return other._code
        if isinstance(other, int):
            return int(other)
        return None

    def __eq__(self, other: object) -> bool:
        code = self._other(other)
        return NotImplemented if code is None else self._code == code

    def __lt__(self, other: object) -> bool:
        code = self._other(other)
        return NotImplemented if code is None else self._code < code

    def __le__(self, other: object) -> bool:
        code = self._other(other)
        return NotImplemented if code is None else self._code <= code

    def __gt__(self, other: object) -> bool:
        code = self._other(other)
        return NotImplemented if code is None else self._code > code

    def __ge__(self, other: object) -> bool:
        code = self._other(other)
        return NotImplemented if code is None else self._code >= code

    def __hash__(self) -> int:
        return self._code

    def __str__(self) -> str:
        # KafkaError_str0 (confluent_kafka.c)
        return f'KafkaError{{{"FATAL," if self._fatal else ""}code={self.name()},val={self._code},str="{self.str()}"}}'

    def __repr__(self) -> str:
        return (f"KafkaError({self._code}, {self._reason!r}, fatal={self._fatal}, retriable={self._retriable}, "
                f"txn_requires_abort={self._txn_requires_abort})")


for _name, (_code, _) in LOCAL_CODES.items():
    setattr(KafkaError, _name, _code)
for _error in Errors:
    setattr(KafkaError, _error.name, int(_error))
for _error, _name in RDKAFKA_NAMES.items():
    setattr(KafkaError, _name, int(_error))


class KafkaException(Exception):
    """confluent_kafka.KafkaException: ``args[0]`` is the KafkaError."""


# -- the reaction table -----------------------------------------------------------------------------


class Context(enum.Enum):
    """Where a broker error arrives: each librdkafka response handler reacts on its own."""

    PRODUCE = "produce"  # non-idempotent producer (rd_kafka_handle_Produce_error)
    PRODUCE_IDEMPOTENT = "produce-idempotent"  # + rd_kafka_handle_idempotent_Produce_error
    PRODUCE_TRANSACTIONAL = "produce-transactional"
    INIT_PRODUCER_ID = "InitProducerId"  # rd_kafka_idemp_request_pid_failed / rd_kafka_idemp_check_error
    ADD_PARTITIONS = "AddPartitionsToTxn"  # rd_kafka_txn_handle_AddPartitionsToTxn
    ADD_OFFSETS = "AddOffsetsToTxn"  # rd_kafka_txn_handle_AddOffsetsToTxn
    TXN_OFFSET_COMMIT = "TxnOffsetCommit"  # rd_kafka_txn_handle_TxnOffsetCommit
    END_TXN = "EndTxn"  # rd_kafka_txn_handle_EndTxn
    OFFSET_FETCH = "OffsetFetch"  # rd_kafka_handle_OffsetFetch (rdkafka_request.c)
    OFFSET_COMMIT = "OffsetCommit"  # rd_kafka_cgrp_handle_OffsetCommit (rdkafka_cgrp.c)
    HEARTBEAT = "Heartbeat"  # rd_kafka_cgrp_handle_Heartbeat


class Reaction(enum.Enum):
    OK = "ok"  # treated as success
    RETRY = "retry"  # retried internally (counts as a retry)
    REFRESH = "refresh"  # coordinator/leader re-lookup, then retried without counting a retry
    PERMANENT = "permanent"  # the request fails with this error (delivery report / raised)
    PERMANENT_BUMP = "permanent+bump"  # idempotent: messages fail, drain all partitions, bump the epoch
    SEQUENCE = "sequence"  # OUT_OF_ORDER_SEQUENCE_NUMBER: head of line fatal, later requests drain+bump+retry
    UNKNOWN_PID = "unknown-pid"  # idempotent UNKNOWN_PRODUCER_ID: first try with nothing unacked → bump+retry, else fatal
    ABORTABLE = "abortable"  # txn_requires_abort()
    ABORTABLE_BUMP = "abortable+bump"  # txn_requires_abort(), abort_transaction() bumps the epoch (KIP-360)
    REJOIN = "rejoin"  # group membership lost: rejoin the group
    FATAL = "fatal"  # fatal(): the instance is unusable
    FENCED = "fenced"  # fatal() with the code normalised to _FENCED (rd_kafka_txn_normalize_err)
    # Java only (TM.canRetry, TM.handleFailedBatch):
    BUMP_RETRY = "bump+retry"  # idempotent: bump the epoch locally, then retry (requestIdempotentEpochBumpForPartition)
    SEQUENCE_RETRY = "sequence-retry"  # OUT_OF_ORDER_SEQUENCE_NUMBER: not the next batch → retry; head of line →
    # idempotent BUMP_RETRY, transactional ABORTABLE_BUMP


@frozen(kw_only=True)
class Action:
    reaction: Reaction
    # Produce only: the delivery status of the batch's messages (RD_KAFKA_ERR_ACTION_MSG_*)
    possibly_persisted: bool = False
    backoff_ms: int | None = None  # a fixed backoff the handler uses instead of retry.backoff.ms


def _a(reaction: Reaction, **kw: Any) -> Action:
    return Action(reaction=reaction, **kw)


E = Errors
R = Reaction
# Produce errors, common part: rd_kafka_handle_Produce_error's explicit list, then rd_kafka_err_action's
# defaults (rdkafka_request.c). NETWORK_EXCEPTION is in neither list, so it is permanent.
_PRODUCE_COMMON: dict[Errors, Action] = {
    E.NOT_LEADER_OR_FOLLOWER: _a(R.REFRESH),
    E.UNKNOWN_TOPIC_OR_PARTITION: _a(R.REFRESH),
    E.COORDINATOR_NOT_AVAILABLE: _a(R.REFRESH),
    E.NOT_COORDINATOR: _a(R.REFRESH),
    E.KAFKA_STORAGE_ERROR: _a(R.RETRY),  # REFRESH|RETRY: counts a retry
    E.NOT_ENOUGH_REPLICAS: _a(R.RETRY),
    E.NOT_ENOUGH_REPLICAS_AFTER_APPEND: _a(R.RETRY, possibly_persisted=True),
    E.REQUEST_TIMED_OUT: _a(R.RETRY, possibly_persisted=True),
    E.CORRUPT_MESSAGE: _a(R.RETRY),
    E.COORDINATOR_LOAD_IN_PROGRESS: _a(R.RETRY),
    E.OUT_OF_ORDER_SEQUENCE_NUMBER: _a(R.PERMANENT, possibly_persisted=True),
    E.DUPLICATE_SEQUENCE_NUMBER: _a(R.PERMANENT, possibly_persisted=True),
    E.UNKNOWN_PRODUCER_ID: _a(R.PERMANENT),
    E.INVALID_PRODUCER_EPOCH: _a(R.PERMANENT),
}

REACTIONS: dict[Context, dict[Errors, Action]] = {
    Context.PRODUCE: _PRODUCE_COMMON,
    Context.PRODUCE_IDEMPOTENT: {
        **_PRODUCE_COMMON,
        # rd_kafka_handle_idempotent_Produce_error
        E.OUT_OF_ORDER_SEQUENCE_NUMBER: _a(R.SEQUENCE, possibly_persisted=True),
        E.DUPLICATE_SEQUENCE_NUMBER: _a(R.OK),
        E.UNKNOWN_PRODUCER_ID: _a(R.UNKNOWN_PID),
        # permanent errors of an idempotent, non-transactional producer: "message sequence gap" → drain + bump
        E.INVALID_PRODUCER_EPOCH: _a(R.PERMANENT_BUMP),
    },
    Context.PRODUCE_TRANSACTIONAL: {
        **_PRODUCE_COMMON,
        E.OUT_OF_ORDER_SEQUENCE_NUMBER: _a(R.SEQUENCE, possibly_persisted=True),
        E.DUPLICATE_SEQUENCE_NUMBER: _a(R.OK),
        E.UNKNOWN_PRODUCER_ID: _a(R.ABORTABLE_BUMP),
        # "transactional producer fenced by newer producer instance"
        E.INVALID_PRODUCER_EPOCH: _a(R.FENCED),
    },
    Context.INIT_PRODUCER_ID: {
        # rd_kafka_idemp_check_error; everything else is retried by the PID timer after 500 ms
        E.INVALID_TRANSACTION_TIMEOUT: _a(R.FATAL),
        E.INVALID_PRODUCER_EPOCH: _a(R.FENCED),
        E.PRODUCER_FENCED: _a(R.FENCED),
    },
    Context.ADD_PARTITIONS: {
        E.NOT_COORDINATOR: _a(R.REFRESH, backoff_ms=500),
        E.COORDINATOR_NOT_AVAILABLE: _a(R.REFRESH, backoff_ms=500),
        E.CONCURRENT_TRANSACTIONS: _a(R.RETRY, backoff_ms=20),
        E.COORDINATOR_LOAD_IN_PROGRESS: _a(R.RETRY, backoff_ms=500),
        E.UNKNOWN_TOPIC_OR_PARTITION: _a(R.RETRY, backoff_ms=500),
        E.INVALID_PRODUCER_EPOCH: _a(R.FENCED),
        E.PRODUCER_FENCED: _a(R.FENCED),
        E.INVALID_TXN_STATE: _a(R.FATAL),
        E.UNKNOWN_PRODUCER_ID: _a(R.ABORTABLE_BUMP),
        E.INVALID_PRODUCER_ID_MAPPING: _a(R.ABORTABLE_BUMP),
    },
    Context.ADD_OFFSETS: {
        E.COORDINATOR_NOT_AVAILABLE: _a(R.REFRESH),
        E.NOT_COORDINATOR: _a(R.REFRESH),
        E.REQUEST_TIMED_OUT: _a(R.REFRESH),
        E.INVALID_PRODUCER_EPOCH: _a(R.FENCED),
        E.INVALID_TXN_STATE: _a(R.FATAL),
        E.UNKNOWN_TOPIC_OR_PARTITION: _a(R.RETRY),
        E.COORDINATOR_LOAD_IN_PROGRESS: _a(R.RETRY),
        E.CONCURRENT_TRANSACTIONS: _a(R.RETRY),
        # PRODUCER_FENCED is not listed: the default makes it abortable (normalised to _FENCED)
    },
    Context.TXN_OFFSET_COMMIT: {
        E.NOT_COORDINATOR: _a(R.RETRY, backoff_ms=500),
        E.COORDINATOR_NOT_AVAILABLE: _a(R.RETRY, backoff_ms=500),
        E.REQUEST_TIMED_OUT: _a(R.RETRY, backoff_ms=500),
        E.CONCURRENT_TRANSACTIONS: _a(R.RETRY, backoff_ms=500),
        E.COORDINATOR_LOAD_IN_PROGRESS: _a(R.RETRY, backoff_ms=500),
        E.UNKNOWN_TOPIC_OR_PARTITION: _a(R.RETRY, backoff_ms=500),
        E.INVALID_PRODUCER_ID_MAPPING: _a(R.FATAL),
        E.INVALID_PRODUCER_EPOCH: _a(R.FENCED),
        E.INVALID_TXN_STATE: _a(R.FATAL),
        E.ILLEGAL_GENERATION: _a(R.ABORTABLE),
        E.UNKNOWN_MEMBER_ID: _a(R.ABORTABLE),
        E.FENCED_INSTANCE_ID: _a(R.ABORTABLE),
    },
    Context.END_TXN: {
        E.COORDINATOR_NOT_AVAILABLE: _a(R.REFRESH),
        E.NOT_COORDINATOR: _a(R.REFRESH),
        E.COORDINATOR_LOAD_IN_PROGRESS: _a(R.RETRY),
        E.CONCURRENT_TRANSACTIONS: _a(R.RETRY),
        E.UNKNOWN_PRODUCER_ID: _a(R.ABORTABLE_BUMP),
        E.INVALID_PRODUCER_ID_MAPPING: _a(R.ABORTABLE_BUMP),
        E.INVALID_PRODUCER_EPOCH: _a(R.FENCED),
        E.PRODUCER_FENCED: _a(R.FENCED),
        E.INVALID_TXN_STATE: _a(R.FATAL),
    },
    Context.OFFSET_FETCH: {
        # rd_kafka_err_action defaults; UNSTABLE_OFFSET_COMMIT is retried by rd_kafka_handle_OffsetFetch
        E.NOT_LEADER_OR_FOLLOWER: _a(R.REFRESH),
        E.COORDINATOR_NOT_AVAILABLE: _a(R.REFRESH),
        E.NOT_COORDINATOR: _a(R.REFRESH),
        E.KAFKA_STORAGE_ERROR: _a(R.RETRY),
        E.REQUEST_TIMED_OUT: _a(R.RETRY),
        E.NOT_ENOUGH_REPLICAS: _a(R.RETRY),
        E.NOT_ENOUGH_REPLICAS_AFTER_APPEND: _a(R.RETRY),
        E.CORRUPT_MESSAGE: _a(R.RETRY),
        E.COORDINATOR_LOAD_IN_PROGRESS: _a(R.RETRY),
        E.UNSTABLE_OFFSET_COMMIT: _a(R.RETRY),
    },
    Context.OFFSET_COMMIT: {
        # rd_kafka_handle_OffsetCommit_error (rdkafka_request.c, "mimicking AK's ConsumerCoordinator")
        E.COORDINATOR_NOT_AVAILABLE: _a(R.REFRESH),
        E.NOT_COORDINATOR: _a(R.REFRESH),
        E.REQUEST_TIMED_OUT: _a(R.RETRY),
        E.COORDINATOR_LOAD_IN_PROGRESS: _a(R.RETRY),
        E.UNKNOWN_TOPIC_OR_PARTITION: _a(R.RETRY),
        E.FENCED_INSTANCE_ID: _a(R.FATAL),
        # UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS: permanent, the commit fails
    },
    Context.HEARTBEAT: {
        # rd_kafka_cgrp_handle_Heartbeat
        E.NOT_COORDINATOR: _a(R.REFRESH),
        E.COORDINATOR_NOT_AVAILABLE: _a(R.REFRESH),
        E.REBALANCE_IN_PROGRESS: _a(R.REJOIN),
        E.UNKNOWN_MEMBER_ID: _a(R.REJOIN),
        E.ILLEGAL_GENERATION: _a(R.REJOIN),
        E.FENCED_INSTANCE_ID: _a(R.FATAL),
        E.COORDINATOR_LOAD_IN_PROGRESS: _a(R.RETRY),
    },
}

# The `default:` branch of each handler.
DEFAULTS: dict[Context, Action] = {
    Context.PRODUCE: _a(R.PERMANENT),
    Context.PRODUCE_IDEMPOTENT: _a(R.PERMANENT_BUMP),
    Context.PRODUCE_TRANSACTIONAL: _a(R.ABORTABLE),
    Context.INIT_PRODUCER_ID: _a(R.RETRY, backoff_ms=500),
    Context.ADD_PARTITIONS: _a(R.ABORTABLE),
    Context.ADD_OFFSETS: _a(R.ABORTABLE),
    Context.TXN_OFFSET_COMMIT: _a(R.ABORTABLE),
    Context.END_TXN: _a(R.ABORTABLE),
    Context.OFFSET_FETCH: _a(R.PERMANENT),
    Context.OFFSET_COMMIT: _a(R.PERMANENT),
    Context.HEARTBEAT: _a(R.PERMANENT),  # dropped: the next heartbeat tries again
}

# -- the Java client's reactions (eosim.client = "java") --------------------------------------------
# The Java client 4.1 (confluentinc/kafka branch 4.1, clients/.../producer/internals/): Sender.canRetry and
# TransactionManager (TM) canRetry / handleFailedBatch / maybeTransitionToErrorState for Produce, TM's
# InitProducerIdHandler, AddPartitionsToTxnHandler, AddOffsetsToTxnHandler, TxnOffsetCommitHandler and
# EndTxnHandler for the coordinator requests. The consumer's handlers are librdkafka's, which mimic
# AK's ConsumerCoordinator (rd_kafka_handle_OffsetCommit_error).

# Java classifies by exception class: what extends RetriableException (common/protocol/Errors.java and
# common/errors/, 4.1) is retried by every handler, and every produce retry counts (batch.attempts()).
JAVA_RETRIABLE = frozenset({
    E.NOT_LEADER_OR_FOLLOWER, E.UNKNOWN_TOPIC_OR_PARTITION, E.NETWORK_EXCEPTION, E.KAFKA_STORAGE_ERROR,
    E.REQUEST_TIMED_OUT, E.COORDINATOR_LOAD_IN_PROGRESS, E.COORDINATOR_NOT_AVAILABLE, E.NOT_COORDINATOR,
    E.NOT_ENOUGH_REPLICAS, E.NOT_ENOUGH_REPLICAS_AFTER_APPEND, E.CORRUPT_MESSAGE, E.CONCURRENT_TRANSACTIONS,
    E.UNSTABLE_OFFSET_COMMIT,
})
_JAVA_PRODUCE: dict[Errors, Action] = {
    error: _a(R.RETRY, possibly_persisted=error in (E.REQUEST_TIMED_OUT, E.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                                                    E.NETWORK_EXCEPTION))
    for error in sorted(JAVA_RETRIABLE)
}
# Coordinator requests: re-find the coordinator for these two, retry the other retriable errors.
_JAVA_COORDINATOR: dict[Errors, Action] = {
    **{error: _a(R.RETRY) for error in sorted(JAVA_RETRIABLE)},
    E.NOT_COORDINATOR: _a(R.REFRESH),
    E.COORDINATOR_NOT_AVAILABLE: _a(R.REFRESH),
}
# Every handler turns both fencing codes into a fatal ProducerFencedException ("We could still receive
# INVALID_PRODUCER_EPOCH from old versioned transaction coordinator, just treat it the same").
_JAVA_FENCED: dict[Errors, Action] = {E.INVALID_PRODUCER_EPOCH: _a(R.FENCED), E.PRODUCER_FENCED: _a(R.FENCED)}

JAVA_REACTIONS: dict[Context, dict[Errors, Action]] = {
    Context.PRODUCE: _JAVA_PRODUCE,
    Context.PRODUCE_IDEMPOTENT: {
        **_JAVA_PRODUCE,
        # TM.canRetry: a batch that is not the next one is retried; at the head of the line the epoch is
        # bumped locally and the batch retried (librdkafka: fatal)
        E.OUT_OF_ORDER_SEQUENCE_NUMBER: _a(R.SEQUENCE_RETRY, possibly_persisted=True),
        E.DUPLICATE_SEQUENCE_NUMBER: _a(R.OK),  # Sender.completeBatch: success without offset
        E.UNKNOWN_PRODUCER_ID: _a(R.BUMP_RETRY),  # TM.canRetry: "always retry", bumping (librdkafka: maybe fatal)
    },
    Context.PRODUCE_TRANSACTIONAL: {
        **_JAVA_PRODUCE,
        E.OUT_OF_ORDER_SEQUENCE_NUMBER: _a(R.SEQUENCE_RETRY, possibly_persisted=True),
        E.DUPLICATE_SEQUENCE_NUMBER: _a(R.OK),
        E.UNKNOWN_PRODUCER_ID: _a(R.ABORTABLE_BUMP),
        # KIP-588 (2.7): InvalidProducerEpochException from a produce is abortable (librdkafka: fatal _FENCED)
        E.INVALID_PRODUCER_EPOCH: _a(R.ABORTABLE_BUMP),
        # TM.maybeTransitionToErrorState: fatal whatever the request (InvalidPidMapping since 4.0, KAFKA-18019)
        E.PRODUCER_FENCED: _a(R.FENCED),
        E.INVALID_PRODUCER_ID_MAPPING: _a(R.FATAL),
    },
    Context.INIT_PRODUCER_ID: {**_JAVA_COORDINATOR, **_JAVA_FENCED, E.TRANSACTION_ABORTABLE: _a(R.ABORTABLE)},
    Context.ADD_PARTITIONS: {
        **_JAVA_COORDINATOR,
        # TM.ADD_PARTITIONS_RETRY_BACKOFF_MS for the transaction's first AddPartitionsToTxn (as librdkafka)
        E.CONCURRENT_TRANSACTIONS: _a(R.RETRY, backoff_ms=20),
        **_JAVA_FENCED,
        E.INVALID_TXN_STATE: _a(R.FATAL),
        E.INVALID_PRODUCER_ID_MAPPING: _a(R.FATAL),  # librdkafka: abortable with bump
        E.UNKNOWN_PRODUCER_ID: _a(R.ABORTABLE_BUMP),  # abortableErrorIfPossible
        E.TRANSACTION_ABORTABLE: _a(R.ABORTABLE),
    },
    Context.ADD_OFFSETS: {
        **_JAVA_COORDINATOR,
        **_JAVA_FENCED,
        E.INVALID_TXN_STATE: _a(R.FATAL),
        E.INVALID_PRODUCER_ID_MAPPING: _a(R.FATAL),
        E.UNKNOWN_PRODUCER_ID: _a(R.ABORTABLE_BUMP),
        E.TRANSACTION_ABORTABLE: _a(R.ABORTABLE),
    },
    Context.TXN_OFFSET_COMMIT: {
        **_JAVA_COORDINATOR,
        E.NOT_COORDINATOR: _a(R.RETRY),  # re-find the group coordinator, then retry
        E.COORDINATOR_NOT_AVAILABLE: _a(R.RETRY),
        **_JAVA_FENCED,
        E.FENCED_INSTANCE_ID: _a(R.ABORTABLE),
        E.TRANSACTION_ABORTABLE: _a(R.ABORTABLE),
        E.UNKNOWN_MEMBER_ID: _a(R.ABORTABLE),  # CommitFailedException
        E.ILLEGAL_GENERATION: _a(R.ABORTABLE),
    },
    Context.END_TXN: {
        **_JAVA_COORDINATOR,
        **_JAVA_FENCED,
        E.INVALID_TXN_STATE: _a(R.FATAL),
        E.INVALID_PRODUCER_ID_MAPPING: _a(R.FATAL),  # librdkafka: abortable with bump
        E.UNKNOWN_PRODUCER_ID: _a(R.ABORTABLE_BUMP),
        # abortable for a commit; an abort that gets it fails fatally in Java (not modelled: the model's
        # coordinator never answers EndTxn with it, TV1 or TV2)
        E.TRANSACTION_ABORTABLE: _a(R.ABORTABLE),
    },
    Context.OFFSET_FETCH: REACTIONS[Context.OFFSET_FETCH],
    Context.OFFSET_COMMIT: REACTIONS[Context.OFFSET_COMMIT],
    Context.HEARTBEAT: REACTIONS[Context.HEARTBEAT],
}

JAVA_DEFAULTS: dict[Context, Action] = {
    Context.PRODUCE: _a(R.PERMANENT),
    # Sender.failBatch(adjustSequenceNumbers) → TM.handleFailedBatch: requestIdempotentEpochBumpForPartition
    Context.PRODUCE_IDEMPOTENT: _a(R.PERMANENT_BUMP),
    # any failed batch makes a transaction abortable, and on TV1 the abort then bumps the epoch
    # (maybeTransitionToErrorState: needToTriggerEpochBumpFromClient)
    Context.PRODUCE_TRANSACTIONAL: _a(R.ABORTABLE_BUMP),
    Context.INIT_PRODUCER_ID: _a(R.FATAL),  # "Unexpected error in InitProducerIdResponse"
    Context.ADD_PARTITIONS: _a(R.ABORTABLE),  # "Could not add partitions to transaction due to errors"
    Context.ADD_OFFSETS: _a(R.FATAL),  # "Unexpected error in AddOffsetsToTxnResponse"
    Context.TXN_OFFSET_COMMIT: _a(R.FATAL),  # "Unexpected error in TxnOffsetCommitResponse"
    Context.END_TXN: _a(R.FATAL),  # "Unhandled error in EndTxnResponse"
    Context.OFFSET_FETCH: DEFAULTS[Context.OFFSET_FETCH],
    Context.OFFSET_COMMIT: DEFAULTS[Context.OFFSET_COMMIT],
    Context.HEARTBEAT: DEFAULTS[Context.HEARTBEAT],
}
del E, R

TABLES: dict[Client, tuple[dict[Context, dict[Errors, Action]], dict[Context, Action]]] = {
    Client.LIBRDKAFKA: (REACTIONS, DEFAULTS),
    Client.JAVA: (JAVA_REACTIONS, JAVA_DEFAULTS),
}


def action(context: Context, error: Errors, client: Client = Client.LIBRDKAFKA) -> Action:
    """The client's reaction to broker ``error`` in ``context`` (``error`` is never NONE)."""
    reactions, defaults = TABLES[client]
    return reactions[context].get(error, defaults[context])


# The code a fencing error surfaces as: librdkafka's _FENCED (rd_kafka_txn_normalize_err), Java's
# ProducerFencedException (every TM handler: fatalError(Errors.PRODUCER_FENCED.exception())).
FENCED_CODE: dict[Client, int] = {Client.LIBRDKAFKA: KafkaError._FENCED,  # type: ignore[attr-defined]
                                  Client.JAVA: int(Errors.PRODUCER_FENCED)}


def normalize(code: int, client: Client = Client.LIBRDKAFKA) -> int:
    """rd_kafka_txn_normalize_err: both fencing codes surface as the client's fenced code, a queue
    timeout as _TIMED_OUT."""
    if code in (Errors.INVALID_PRODUCER_EPOCH, Errors.PRODUCER_FENCED):
        return FENCED_CODE[client]
    if code == KafkaError._TIMED_OUT_QUEUE:  # type: ignore[attr-defined]
        return KafkaError._TIMED_OUT  # type: ignore[attr-defined]
    return code


def api_error(code: int, reaction: Reaction, reason: str | None = None,
              client: Client = Client.LIBRDKAFKA) -> KafkaError:
    """The KafkaError a transactional API raises for ``reaction`` (rd_kafka_txn_curr_api_set_result:
    FATAL sets fatal, PERMANENT sets txn_requires_abort, RETRY sets retriable). The Java client's
    exception classes map onto the same flags: fatal (TM.transitionToFatalError), abortable
    (transitionToAbortableError) and RetriableException (TimeoutException)."""
    if reaction in (Reaction.FATAL, Reaction.FENCED):
        return KafkaError(normalize(code, client), reason, fatal=True)
    if reaction in (Reaction.ABORTABLE, Reaction.ABORTABLE_BUMP):
        return KafkaError(normalize(code, client), reason, txn_requires_abort=True)
    if reaction in (Reaction.RETRY, Reaction.REFRESH):
        return KafkaError(normalize(code, client), reason, retriable=True)
    return KafkaError(normalize(code, client), reason)


# The versions each client sends, which decide the error codes it receives (eosim.models.api.as_sent: KIP-588
# turns PRODUCER_FENCED into INVALID_PRODUCER_EPOCH below the version that knows it) and, for Produce, how the
# leader verifies a transactional batch (eosim._broker: v11+ gets TRANSACTION_ABORTABLE, v12+ is TV2).
# librdkafka: InitProducerId v4, AddPartitionsToTxn v0, AddOffsetsToTxn v0, EndTxn v1, Produce v10
# (rdkafka_request.c; reference §6.4). The Java client sends the latest versions it has on the TV1 protocol:
# v5, v3, v4, v4 and Produce v11 (ProduceRequest.LAST_BEFORE_TRANSACTION_V2_VERSION: Sender.sendProduceRequest
# caps it while TV2 is off).
API_VERSIONS: dict[Client, dict[str, int]] = {
    Client.LIBRDKAFKA: {"InitProducerId": 4, "AddPartitionsToTxn": 0, "AddOffsetsToTxn": 0, "EndTxn": 1,
                        "Produce": 10, "TxnOffsetCommit": 3},
    Client.JAVA: {"InitProducerId": 5, "AddPartitionsToTxn": 3, "AddOffsetsToTxn": 4, "EndTxn": 4, "Produce": 11,
                  "TxnOffsetCommit": 4},
}
# The Java client once the broker finalized transaction.version >= 2 (TM.isTransactionV2Enabled): EndTxn v5
# (the response carries the bumped pid/epoch), Produce v12 and TxnOffsetCommit v5 (the broker adds the
# partition to the transaction); no AddPartitionsToTxn or AddOffsetsToTxn from the client.
JAVA_TV2_VERSIONS: dict[str, int] = {**API_VERSIONS[Client.JAVA], "EndTxn": 5, "Produce": 12, "TxnOffsetCommit": 5}
