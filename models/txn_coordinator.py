"""eosim.models.txn_coordinator
======================

Kafka's transaction coordinator (TC) for one ``__transaction_state`` partition leader, as a pure state machine.

Theory of operation
-------------------
Everything that changes a transaction's state lives in this file (h11's rule 1). Sources, as short names
(Kafka 4.1 branch): ``TMd`` = core/.../coordinator/transaction/TransactionMetadata.scala, ``TS`` =
transaction-coordinator/.../TransactionState.java, ``TCo`` = TransactionCoordinator.scala, ``TSM`` =
TransactionStateManager.scala, ``TMCM`` = TransactionMarkerChannelManager.scala, ``TMRCH`` =
TransactionMarkerRequestCompletionHandler.scala, ``KafkaApis`` = core/.../server/KafkaApis.scala.

* One ``TransactionMetadata`` per transactional.id. A transition is two steps (``TMd.prepareTransitionTo`` /
  ``completeTransitionTo``): ``prepare_transition`` checks ``VALID_PREVIOUS_STATES``, sets ``pending_state`` and
  returns the ``TxnLogRecord`` to persist; the coordinator emits ``AppendTxnLog`` and the metadata changes only
  when the runtime reports the write durable (``on_log_append`` with ``Errors.NONE``). While a state is pending,
  requests that would transition get CONCURRENT_TRANSACTIONS.
* The one in-memory change without a write is Kafka's: the TV1 epoch fence sets the bumped epoch before the
  PrepareAbort append (``TCo.endTransactionWithTV1``); ``has_failed_epoch_fence`` stops a second bump (KAFKA-9666).
* After Prepare* is durable the coordinator prepares Complete* at once (``pending_state`` = Complete* while markers
  are out), answers the client, and emits ``SendTxnMarkers``. ``on_marker_result`` drops acked partitions; when none
  are left it appends Complete* (``TMCM.maybeWriteTxnCompletion``).
* ``PrepareEpochFence`` and ``Dead`` are never completed: the fence is replaced by PrepareAbort in the same step
  and a durable tombstone removes the metadata (``TSM.writeTombstonesForExpiredTransactionalIds``).
* Transaction versions are Kafka's feature levels (``TransactionVersion.java``): TV_0 is what Kafka records for
  requests from pre-TV2 clients (EndTxn <= v4, AddPartitionsToTxn <= v3, AddOffsetsToTxn); TV_2 (epoch bump per
  transaction, KIP-890 part 2) for EndTxn v5+ / AddPartitionsToTxn v4+. Server-initiated aborts use the finalized
  ``BrokerConfig.transaction_version``.
* Leadership of the ``__transaction_state`` partition (TCo.onElection / onResignation): ``resign`` forgets every
  transaction (requests get NOT_COORDINATOR), ``elect`` starts loading at a new coordinator epoch (requests get
  COORDINATOR_LOAD_IN_PROGRESS) and ``load`` replays the log (TSM.loadTransactionsForTxnTopicPartition): the last
  record per transactional.id wins, a tombstone removes it, and Prepare* transactions get their markers again at the
  new coordinator epoch. A write or marker answer that comes back for an older epoch changes nothing (TSM's append
  callback, TMRCH): the loaded log already holds what it wrote.
* Kafka code paths that throw (IllegalState/IllegalArgument, e.g. epoch overflow corners fixed only after 4.1,
  KAFKA-20090) raise ``KafkaIllegalState`` before any change; ``handle`` answers UNKNOWN_SERVER_ERROR as
  ``KafkaApis.handleError`` does.
"""

from __future__ import annotations

import enum
from operator import attrgetter, itemgetter
from collections.abc import Iterable

from attrs import Factory, define, evolve, field, setters

from eosim.models.config import BrokerConfig
from eosim.models.effects import Respond
from eosim.models.errors import Errors, IllegalTransition, ModelError
from eosim.models.records import (
    CONSUMER_OFFSETS_TOPIC,
    MAX_EPOCH,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    TopicPartition,
    TransactionResult,
    partition_for,
)
from eosim.models.values import frozen

__all__ = [
    "EXPIRATION_ALLOWED",
    "PRODUCER_ID_BLOCK_SIZE",
    "TV_0",
    "TV_2",
    "AddOffsetsToTxnRequest",
    "AddOffsetsToTxnResponse",
    "AddPartitionsToTxnRequest",
    "AddPartitionsToTxnResponse",
    "AppendTxnLog",
    "Effect",
    "EndTxnRequest",
    "EndTxnResponse",
    "InitProducerIdRequest",
    "InitProducerIdResponse",
    "KafkaIllegalState",
    "Respond",
    "SendTxnMarkers",
    "TransactionCoordinator",
    "TransactionMetadata",
    "TransactionState",
    "TxnLogRecord",
    "TxnMarkerEntry",
    "TxnLoaded",
    "TxnStateChanged",
    "VALID_PREVIOUS_STATES",
    "first_producer_id_after_restart",
    "is_epoch_exhausted",
    "supports_epoch_bump",
]

# TransactionVersion.java feature levels (TV_1, flexible records only, behaves as TV_0 here).
TV_0 = 0
TV_2 = 2


def supports_epoch_bump(transaction_version: int) -> bool:
    """TransactionVersion.supportsEpochBump: TV_2 bumps the epoch on every EndTxn (KIP-890 part 2)."""
    return transaction_version >= TV_2


def is_epoch_exhausted(epoch: int) -> bool:
    """TMd.isEpochExhausted: Short.MaxValue is kept so the coordinator can always fence once more."""
    return epoch >= MAX_EPOCH - 1


PRODUCER_ID_BLOCK_SIZE = 1000  # ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE
_PID_PREFETCH_AT = 900  # RPCProducerIdManager.PID_PREFETCH_THRESHOLD (0.90) of a block


def first_producer_id_after_restart(first_producer_id: int, next_producer_id: int) -> int:
    """The first producer id a restarted broker hands out: the start of a block the controller never gave before.

    RPCProducerIdManager claims a block of 1000 ids from the controller when it first needs an id, and the next
    block once the id at 90 % of the current one is handed out (ProducerIdControlManager persists the next block's
    start); a restarted broker starts without a block. ``first_producer_id``/``next_producer_id``: the ids the
    previous incarnation started at and would have handed out next (it started at a block boundary).
    """
    if next_producer_id == first_producer_id:
        return first_producer_id  # no id handed out, so no block claimed
    last = next_producer_id - 1
    block_end = (last // PRODUCER_ID_BLOCK_SIZE + 1) * PRODUCER_ID_BLOCK_SIZE
    prefetched = last % PRODUCER_ID_BLOCK_SIZE >= _PID_PREFETCH_AT
    return block_end + PRODUCER_ID_BLOCK_SIZE if prefetched else block_end


class KafkaIllegalState(Exception):
    """Kafka's coordinator throws here (IllegalStateException / IllegalArgumentException); nothing was changed.

    KafkaApis turns such an exception into UNKNOWN_SERVER_ERROR; the timeout sweeper just logs it.
    """


class TransactionState(enum.Enum):
    """TS: the states, with Kafka's ids as values."""

    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    # Members are singletons compared by identity, so they may hash by identity too: a C call, where Enum's
    # own __hash__ (hash of the name) is a Python call, paid on every transition's table lookups.
    __hash__ = object.__hash__

    @property
    def kafka_name(self) -> str:
        """TS.stateName, as DescribeTransactions shows it ("PrepareCommit", ...)."""
        return _KAFKA_NAMES_BY_ID[self._value_]  # by id: an enum member's hash is a Python call


_KAFKA_NAMES = {
    TransactionState.EMPTY: "Empty",
    TransactionState.ONGOING: "Ongoing",
    TransactionState.PREPARE_COMMIT: "PrepareCommit",
    TransactionState.PREPARE_ABORT: "PrepareAbort",
    TransactionState.COMPLETE_COMMIT: "CompleteCommit",
    TransactionState.COMPLETE_ABORT: "CompleteAbort",
    TransactionState.DEAD: "Dead",
    TransactionState.PREPARE_EPOCH_FENCE: "PrepareEpochFence",
}
_KAFKA_NAMES_BY_ID = tuple(_KAFKA_NAMES[state] for state in sorted(TransactionState, key=lambda s: s.value))

_S = TransactionState

# TS.VALID_PREVIOUS_STATES: target state -> the states it may be entered from. PrepareAbort from Empty and
# Complete* is the TV2 empty abort (KIP-890 part 2).
VALID_PREVIOUS_STATES: dict[TransactionState, frozenset[TransactionState]] = {
    _S.EMPTY: frozenset({_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.ONGOING: frozenset({_S.ONGOING, _S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.PREPARE_COMMIT: frozenset({_S.ONGOING}),
    _S.PREPARE_ABORT: frozenset({_S.ONGOING, _S.PREPARE_EPOCH_FENCE, _S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.COMPLETE_COMMIT: frozenset({_S.PREPARE_COMMIT}),
    _S.COMPLETE_ABORT: frozenset({_S.PREPARE_ABORT}),
    _S.DEAD: frozenset({_S.EMPTY, _S.COMPLETE_ABORT, _S.COMPLETE_COMMIT}),
    _S.PREPARE_EPOCH_FENCE: frozenset({_S.ONGOING}),
}

# TS.isExpirationAllowed
EXPIRATION_ALLOWED = frozenset({_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT})


def _partition_tuple(partitions) -> tuple[TopicPartition, ...]:
    if type(partitions) is tuple and len(partitions) < 2:  # already its own sorted set (most converted values)
        return partitions
    # TopicPartition's order, (topic, partition): a set by those keys, sorted, all in C (TopicPartition's own
    # __hash__ and __lt__ are Python calls)
    by_key = dict(zip(map(_TP_ORDER, partitions), partitions))
    return tuple(map(_VALUE, sorted(by_key.items())))


_TP_ORDER = attrgetter("topic", "partition")
_VALUE = itemgetter(1)


# --- requests and responses -------------------------------------------------------------------------------


@frozen(kw_only=True)
class InitProducerIdRequest:
    transactional_id: str | None
    transaction_timeout_ms: int
    producer_id: int = NO_PRODUCER_ID  # KIP-360 expected (pid, epoch), v3+
    producer_epoch: int = NO_PRODUCER_EPOCH
    api_version: int = 5  # the request's version decides error codes on the wire (eosim.models.api.as_sent)


@frozen(kw_only=True)
class InitProducerIdResponse:
    error: Errors
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH


@frozen(kw_only=True)
class AddPartitionsToTxnRequest:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    partitions: tuple[TopicPartition, ...]
    verify_only: bool = False
    # 1: AddPartitionsToTxn <= v3 from a client (Kafka records TV_0); 2: v4+ from a broker (TV_2 implicit add).
    transaction_version: int = 1
    api_version: int = 3


@frozen(kw_only=True)
class AddPartitionsToTxnResponse:
    results: tuple[tuple[TopicPartition, Errors], ...]


@frozen(kw_only=True)
class AddOffsetsToTxnRequest:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    group_id: str
    api_version: int = 4


@frozen(kw_only=True)
class AddOffsetsToTxnResponse:
    error: Errors


@frozen(kw_only=True)
class EndTxnRequest:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    committed: bool
    transaction_version: int = 1  # 1: EndTxn <= v4; 2: v5+ (TransactionVersion.transactionVersionForEndTxn)
    api_version: int = 4


@frozen(kw_only=True)
class EndTxnResponse:
    error: Errors
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH


@frozen(kw_only=True)
class TxnMarkerEntry:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    coordinator_epoch: int
    result: TransactionResult
    partitions: tuple[TopicPartition, ...] = field(converter=_partition_tuple)
    transaction_version: int  # the transaction's clientTransactionVersion (feature level 0, 1 or 2)


# --- the persisted record and the metadata ----------------------------------------------------------------


@frozen(kw_only=True)
class TxnLogRecord:
    """One ``__transaction_state`` value (TxnTransitMetadata): the metadata as it will be once durable."""

    transactional_id: str
    producer_id: int
    prev_producer_id: int
    next_producer_id: int
    producer_epoch: int
    last_producer_epoch: int
    txn_timeout_ms: int
    state: TransactionState
    partitions: tuple[TopicPartition, ...] = field(converter=_partition_tuple)
    txn_start_timestamp: int
    txn_last_update_timestamp: int
    client_transaction_version: int


# Only ``partitions`` has a converter, so only it is converted on assignment: attrs' default would route every
# attribute assignment of this class through its setattr hooks, and completing a transition assigns twelve.
@define(eq=False, kw_only=True, on_setattr=setters.NO_OP)
class TransactionMetadata:
    """TMd: the coordinator's in-memory state of one transactional.id."""

    transactional_id: str
    producer_id: int
    prev_producer_id: int = NO_PRODUCER_ID
    next_producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    txn_timeout_ms: int
    state: TransactionState = TransactionState.EMPTY
    # converted when built; the two assignments (complete_transition, remove_partition) give a converted tuple, so
    # there is no setattr hook (attrs would then send every assignment of every field through its __setattr__)
    partitions: tuple[TopicPartition, ...] = field(default=(), converter=_partition_tuple)
    txn_start_timestamp: int = -1
    txn_last_update_timestamp: int
    client_transaction_version: int = TV_0
    pending_state: TransactionState | None = None
    # A TV1 epoch fence whose write failed already bumped the in-memory epoch: do not bump again (KAFKA-9666).
    has_failed_epoch_fence: bool = False

    def snapshot(self, **changes) -> TxnLogRecord:
        """The metadata as a record; ``changes``: ``TxnLogRecord`` fields to give other values (one record
        built, not a snapshot and then a copy: a transition is on the coordinator's hot path)."""
        values = dict(
            transactional_id=self.transactional_id,
            producer_id=self.producer_id,
            prev_producer_id=self.prev_producer_id,
            next_producer_id=self.next_producer_id,
            producer_epoch=self.producer_epoch,
            last_producer_epoch=self.last_producer_epoch,
            txn_timeout_ms=self.txn_timeout_ms,
            state=self.state,
            partitions=self.partitions,
            txn_start_timestamp=self.txn_start_timestamp,
            txn_last_update_timestamp=self.txn_last_update_timestamp,
            client_transaction_version=self.client_transaction_version,
        )
        if changes:
            values.update(changes)
        return TxnLogRecord(**values)

    @property
    def is_producer_epoch_exhausted(self) -> bool:
        return is_epoch_exhausted(self.producer_epoch)

    def prepare_transition(self, state: TransactionState, **changes) -> TxnLogRecord:
        """TMd.prepareTransitionTo: check the table, set ``pending_state``, return the record to persist.

        ``changes`` are ``TxnLogRecord`` fields other than ``state``; ``prev_producer_id`` is always the current
        producer id (TMd passes ``this.producerId``).

        Raises:
            IllegalTransition: a transition is already pending, or ``state`` may not follow the current state.
            KafkaIllegalState: the new epoch is outside [0, Short.MaxValue] (Kafka's IllegalArgumentException).
        """
        if self.pending_state is not None:
            raise IllegalTransition(f"TransactionMetadata({self.transactional_id}) pending", self.pending_state, state)
        record = self.snapshot(state=state, prev_producer_id=self.producer_id, **changes)
        if state is not TransactionState.DEAD and not 0 <= record.producer_epoch <= MAX_EPOCH:
            raise KafkaIllegalState(f"illegal new producer epoch {record.producer_epoch}")
        if self.state not in VALID_PREVIOUS_STATES[state]:
            raise IllegalTransition(f"TransactionMetadata({self.transactional_id})", self.state, state)
        self.pending_state = state
        return record

    def complete_transition(self, record: TxnLogRecord) -> None:
        """TMd.completeTransitionTo: apply ``record`` once its write is durable; clears ``pending_state``.

        Raises:
            IllegalTransition: nothing is pending, or ``record`` is not the pending transition.
        """
        if self.pending_state is None or record.state is not self.pending_state:
            raise IllegalTransition(f"TransactionMetadata({self.transactional_id}) complete", self.state, record.state)
        self.producer_id = record.producer_id
        self.prev_producer_id = record.prev_producer_id
        self.next_producer_id = record.next_producer_id
        self.producer_epoch = record.producer_epoch
        self.last_producer_epoch = record.last_producer_epoch
        self.txn_timeout_ms = record.txn_timeout_ms
        self.partitions = record.partitions
        self.txn_start_timestamp = record.txn_start_timestamp
        self.txn_last_update_timestamp = record.txn_last_update_timestamp
        self.client_transaction_version = record.client_transaction_version
        self.pending_state = None
        self.state = record.state

    # The named transitions of TMd, one rule each.

    def prepare_fence_producer_epoch(self) -> TxnLogRecord:
        """TMd.prepareFenceProducerEpoch: epoch+1 (not again after a failed fence, KAFKA-9666), lastEpoch -1."""
        if self.producer_epoch == MAX_EPOCH:
            raise KafkaIllegalState("cannot fence a producer at epoch Short.MaxValue")
        bumped = self.producer_epoch if self.has_failed_epoch_fence else self.producer_epoch + 1
        return self.prepare_transition(
            TransactionState.PREPARE_EPOCH_FENCE, producer_epoch=bumped, last_producer_epoch=NO_PRODUCER_EPOCH
        )

    def prepare_increment_producer_epoch(
        self, new_txn_timeout_ms: int, expected_epoch: int | None, now: int
    ) -> TxnLogRecord | Errors:
        """TMd.prepareIncrementProducerEpoch (KIP-360): bump, or repeat a bump the client did not see."""
        if self.is_producer_epoch_exhausted:
            raise KafkaIllegalState(f"cannot allocate any more producer epochs for {self.producer_id}")
        bumped = self.producer_epoch + 1
        if expected_epoch is None:
            epoch, last_epoch = bumped, NO_PRODUCER_EPOCH  # a new instance: fence every older one
        elif self.producer_epoch == NO_PRODUCER_EPOCH or expected_epoch == self.producer_epoch:
            epoch, last_epoch = bumped, self.producer_epoch  # the client asks to bump after an error
        elif expected_epoch == self.last_producer_epoch:
            epoch, last_epoch = self.producer_epoch, self.last_producer_epoch  # retry of a successful bump
        else:
            return Errors.PRODUCER_FENCED
        return self.prepare_transition(
            TransactionState.EMPTY,
            producer_epoch=epoch,
            last_producer_epoch=last_epoch,
            txn_timeout_ms=new_txn_timeout_ms,
            partitions=(),
            txn_start_timestamp=-1,
            txn_last_update_timestamp=now,
        )

    def prepare_producer_id_rotation(
        self, new_producer_id: int, new_txn_timeout_ms: int, now: int, record_last_epoch: bool
    ) -> TxnLogRecord:
        """TMd.prepareProducerIdRotation: epoch exhausted -> a new producer id at epoch 0."""
        return self.prepare_transition(
            TransactionState.EMPTY,
            producer_id=new_producer_id,
            producer_epoch=0,
            last_producer_epoch=self.producer_epoch if record_last_epoch else NO_PRODUCER_EPOCH,
            txn_timeout_ms=new_txn_timeout_ms,
            partitions=(),
            txn_start_timestamp=-1,
            txn_last_update_timestamp=now,
        )

    def prepare_add_partitions(
        self, added: tuple[TopicPartition, ...], now: int, client_transaction_version: int
    ) -> TxnLogRecord:
        """TMd.prepareAddPartitions: the transaction timeout clock starts at the first add."""
        starting = self.state in (_S.EMPTY, _S.COMPLETE_ABORT, _S.COMPLETE_COMMIT)
        return self.prepare_transition(
            TransactionState.ONGOING,
            partitions=self.partitions + tuple(added),
            txn_start_timestamp=now if starting else self.txn_start_timestamp,
            txn_last_update_timestamp=now,
            client_transaction_version=client_transaction_version,
        )

    def prepare_abort_or_commit(
        self,
        state: TransactionState,
        client_transaction_version: int,
        next_producer_id: int,
        now: int,
        no_partition_added: bool,
    ) -> TxnLogRecord:
        """TMd.prepareAbortOrCommit: TV2 bumps the epoch (lastEpoch = old); an empty abort starts now."""
        if supports_epoch_bump(client_transaction_version):
            epoch, last_epoch = self.producer_epoch + 1, self.producer_epoch
        else:
            epoch, last_epoch = self.producer_epoch, self.last_producer_epoch
        return self.prepare_transition(
            state,
            next_producer_id=next_producer_id,
            producer_epoch=epoch,
            last_producer_epoch=last_epoch,
            txn_start_timestamp=now if no_partition_added else self.txn_start_timestamp,
            txn_last_update_timestamp=now,
            client_transaction_version=client_transaction_version,
        )

    def prepare_complete(self, now: int) -> TxnLogRecord:
        """TMd.prepareComplete: TV2 overflow moves to nextProducerId at epoch 0 (KAFKA-18660)."""
        state = _S.COMPLETE_COMMIT if self.state is _S.PREPARE_COMMIT else _S.COMPLETE_ABORT
        self.has_failed_epoch_fence = False
        if supports_epoch_bump(self.client_transaction_version) and self.next_producer_id != NO_PRODUCER_ID:
            producer_id, epoch = self.next_producer_id, 0
        else:
            producer_id, epoch = self.producer_id, self.producer_epoch
        return self.prepare_transition(
            state,
            producer_id=producer_id,
            next_producer_id=NO_PRODUCER_ID,
            producer_epoch=epoch,
            partitions=(),
            txn_last_update_timestamp=now,
        )

    def prepare_dead(self) -> TxnLogRecord:
        """TMd.prepareDead: the tombstone of an expired transactional.id."""
        return self.prepare_transition(TransactionState.DEAD, partitions=())

    def remove_partition(self, partition: TopicPartition) -> None:
        """TMd.removePartition: a marker was written; only while markers are being sent (Prepare*)."""
        if self.state not in (_S.PREPARE_COMMIT, _S.PREPARE_ABORT):
            raise ModelError(f"{self.transactional_id}: marker result for {partition} in state {self.state}")
        self.partitions = tuple(p for p in self.partitions if p != partition)


# --- effects ----------------------------------------------------------------------------------------------


@frozen(kw_only=True)
class AppendTxnLog:
    """Persist ``record`` to ``__transaction_state``, then call ``on_log_append(write_id, error, now)``."""

    write_id: int
    transactional_id: str
    record: TxnLogRecord


@frozen(kw_only=True)
class SendTxnMarkers:
    """Write ``entry``'s markers, then call ``on_marker_result`` once per partition."""

    entry: TxnMarkerEntry


@frozen(kw_only=True)
class TxnStateChanged:
    """A txn-log write became durable (for the ``txn.state`` trace); pid/epoch are the new ones, and
    ``txn_timeout_ms`` the transaction.timeout.ms the coordinator aborts an Ongoing transaction after."""

    transactional_id: str
    old: TransactionState
    new: TransactionState
    producer_id: int
    producer_epoch: int
    txn_timeout_ms: int


@frozen(kw_only=True)
class TxnLoaded:
    """A transaction as ``load`` found it in the log (for the ``txn.load`` trace): its state at the new
    coordinator epoch, before any marker is re-sent."""

    transactional_id: str
    state: TransactionState
    producer_id: int
    producer_epoch: int
    coordinator_epoch: int
    txn_timeout_ms: int


Effect = Respond | AppendTxnLog | SendTxnMarkers | TxnStateChanged | TxnLoaded

# TSM.appendTransactionToLog: log-append error -> coordinator error.
_APPEND_ERROR_MAP = {
    Errors.UNKNOWN_TOPIC_OR_PARTITION: Errors.COORDINATOR_NOT_AVAILABLE,
    Errors.NOT_ENOUGH_REPLICAS: Errors.COORDINATOR_NOT_AVAILABLE,
    Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND: Errors.COORDINATOR_NOT_AVAILABLE,
    Errors.REQUEST_TIMED_OUT: Errors.COORDINATOR_NOT_AVAILABLE,
    Errors.NOT_LEADER_OR_FOLLOWER: Errors.NOT_COORDINATOR,
    Errors.KAFKA_STORAGE_ERROR: Errors.NOT_COORDINATOR,
}

# TMRCH: marker errors after which the partition is re-enqueued. NETWORK_EXCEPTION stands for the disconnected
# response, after which TMRCH re-enqueues too.
_MARKER_RETRY_ERRORS = frozenset(
    {
        Errors.UNKNOWN_TOPIC_OR_PARTITION,
        Errors.NOT_LEADER_OR_FOLLOWER,
        Errors.NOT_ENOUGH_REPLICAS,
        Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        Errors.REQUEST_TIMED_OUT,
        Errors.KAFKA_STORAGE_ERROR,
        Errors.NETWORK_EXCEPTION,
    }
)
# TMRCH: the producer or coordinator epoch moved on; stop sending markers for this transaction.
_MARKER_ABORT_ERRORS = frozenset({Errors.INVALID_PRODUCER_EPOCH, Errors.TRANSACTION_COORDINATOR_FENCED})

_R = TransactionResult
_C, _A = _R.COMMIT, _R.ABORT

# TCo.endTransactionWithTV1: (state, result) -> target state, or the error to answer.
_END_TXN_TV1: dict[tuple[TransactionState, TransactionResult], TransactionState | Errors] = {
    (_S.ONGOING, _C): _S.PREPARE_COMMIT,
    (_S.ONGOING, _A): _S.PREPARE_ABORT,
    (_S.COMPLETE_COMMIT, _C): Errors.NONE,
    (_S.COMPLETE_COMMIT, _A): Errors.INVALID_TXN_STATE,
    (_S.COMPLETE_ABORT, _A): Errors.NONE,
    (_S.COMPLETE_ABORT, _C): Errors.INVALID_TXN_STATE,
    (_S.PREPARE_COMMIT, _C): Errors.CONCURRENT_TRANSACTIONS,
    (_S.PREPARE_COMMIT, _A): Errors.INVALID_TXN_STATE,
    (_S.PREPARE_ABORT, _A): Errors.CONCURRENT_TRANSACTIONS,
    (_S.PREPARE_ABORT, _C): Errors.INVALID_TXN_STATE,
    (_S.EMPTY, _C): Errors.INVALID_TXN_STATE,
    (_S.EMPTY, _A): Errors.INVALID_TXN_STATE,
}

# TCo.endTransaction (TV2): (state, result, is_retry) -> target state, or the error to answer (NONE: a retry,
# answered with the current pid/epoch). The epoch check lets through only the current epoch for Ongoing/Empty
# (never a retry), only current-1 for Prepare* (always a retry), and either for Complete*.
_END_TXN_TV2: dict[tuple[TransactionState, TransactionResult, bool], TransactionState | Errors] = {
    (_S.ONGOING, _C, False): _S.PREPARE_COMMIT,
    (_S.ONGOING, _A, False): _S.PREPARE_ABORT,
    (_S.EMPTY, _A, False): _S.PREPARE_ABORT,  # empty abort
    (_S.EMPTY, _C, False): Errors.INVALID_TXN_STATE,
    (_S.PREPARE_COMMIT, _C, True): Errors.CONCURRENT_TRANSACTIONS,
    (_S.PREPARE_COMMIT, _A, True): Errors.INVALID_TXN_STATE,
    (_S.PREPARE_ABORT, _A, True): Errors.CONCURRENT_TRANSACTIONS,
    (_S.PREPARE_ABORT, _C, True): Errors.INVALID_TXN_STATE,
    (_S.COMPLETE_COMMIT, _C, True): Errors.NONE,
    (_S.COMPLETE_COMMIT, _C, False): Errors.INVALID_TXN_STATE,
    (_S.COMPLETE_COMMIT, _A, True): Errors.INVALID_TXN_STATE,
    (_S.COMPLETE_COMMIT, _A, False): _S.PREPARE_ABORT,  # empty abort
    (_S.COMPLETE_ABORT, _A, True): Errors.NONE,
    (_S.COMPLETE_ABORT, _A, False): _S.PREPARE_ABORT,  # empty abort
    (_S.COMPLETE_ABORT, _C, True): Errors.INVALID_TXN_STATE,
    (_S.COMPLETE_ABORT, _C, False): Errors.INVALID_TXN_STATE,
}


class _Purpose(enum.Enum):
    """What a txn-log write was for, i.e. which Kafka callback runs when it completes."""

    INIT_PRODUCER_ID = enum.auto()  # TCo.handleInitProducerId: sendPidResponseCallback
    ADD_PARTITIONS = enum.auto()  # TCo.handleAddPartitionsToTransaction: responseCallback
    END_TXN = enum.auto()  # TCo.endTransaction: sendTxnMarkersCallback (client, fence or timeout)
    COMPLETE_TXN = enum.auto()  # TMCM.tryAppendToLog
    EXPIRE = enum.auto()  # TSM.writeTombstonesForExpiredTransactionalIds


@frozen(kw_only=True)
class _LogWrite:
    purpose: _Purpose
    record: TxnLogRecord
    # TSM.appendTransactionToLog's coordinatorEpoch: the epoch the write was issued at (``_append`` sets it)
    coordinator_epoch: int | None = None
    correlation_id: int | None = None  # None: no request waits (markers path, timeout, expiration)
    request: object = None
    result: TransactionResult | None = None  # END_TXN
    epoch_fence: bool = False  # END_TXN started by a fence (InitProducerId on Ongoing, or a timeout)
    epoch_bump: bool = False  # END_TXN on the TV2 path


@frozen(kw_only=True)
class _PendingCompleteTxn:
    """TMCM.PendingCompleteTxn: the Complete* record to append once every marker is written."""

    coordinator_epoch: int
    record: TxnLogRecord


def _from_log_value(record: TxnLogRecord) -> TransactionMetadata:
    """TransactionLog.readTxnRecordValue: the metadata a loaded record gives. The log value has no last epoch
    (TMd gets NO_PRODUCER_EPOCH) and, in 4.1, no previous or next producer id either (TransactionLog.valueToBytes
    leaves its tagged fields at -1: §8.14d); an Empty record has no partitions."""
    return TransactionMetadata(
        transactional_id=record.transactional_id,
        producer_id=record.producer_id,
        producer_epoch=record.producer_epoch,
        txn_timeout_ms=record.txn_timeout_ms,
        state=record.state,
        partitions=() if record.state is _S.EMPTY else record.partitions,
        txn_start_timestamp=record.txn_start_timestamp,
        txn_last_update_timestamp=record.txn_last_update_timestamp,
        client_transaction_version=record.client_transaction_version,
    )


def _client_transaction_version(request: AddPartitionsToTxnRequest | EndTxnRequest) -> int:
    """TransactionVersion.transactionVersionFor*: what Kafka records for a client request."""
    return TV_2 if request.transaction_version >= TV_2 else TV_0


def _response(request: object, error: Errors, producer_id: int = NO_PRODUCER_ID, epoch: int = NO_PRODUCER_EPOCH):
    match request:
        case InitProducerIdRequest():
            return InitProducerIdResponse(error=error, producer_id=producer_id, producer_epoch=epoch)
        case AddPartitionsToTxnRequest():
            return AddPartitionsToTxnResponse(results=tuple((p, error) for p in _partition_tuple(request.partitions)))
        case AddOffsetsToTxnRequest():
            return AddOffsetsToTxnResponse(error=error)
        case EndTxnRequest():
            return EndTxnResponse(error=error, producer_id=producer_id, producer_epoch=epoch)
    raise TypeError(f"not a transaction coordinator request: {request!r}")


@define(eq=False)
class TransactionCoordinator:
    """The TC for the transactional.ids of one ``__transaction_state`` partition (TCo + TSM + TMCM).

    Every method returns the effects to apply, in order. Every request gets exactly one ``Respond``: at once, or
    when the write it waits for completes.
    """

    config: BrokerConfig
    coordinator_epoch: int = field(default=0, kw_only=True)
    first_producer_id: int = field(default=0, kw_only=True)
    _txns: dict[str, TransactionMetadata] = field(factory=dict, init=False)
    # ProducerIdManager.generateProducerId: ids in order from first_producer_id.
    _next_producer_id: int = field(default=Factory(lambda self: self.first_producer_id, takes_self=True), init=False)
    _next_write_id: int = field(default=0, init=False)
    _writes: dict[int, _LogWrite] = field(factory=dict, init=False)
    # TMCM.transactionsWithPendingMarkers
    _pending_markers: dict[str, _PendingCompleteTxn] = field(factory=dict, init=False)
    # TSM.getTransactionState's error while this broker does not serve the partition: NOT_COORDINATOR after a
    # resignation, COORDINATOR_LOAD_IN_PROGRESS while loading (TSM.loadingPartitions); None when serving.
    _unavailable: Errors | None = field(default=None, init=False)

    # --- leadership of the __transaction_state partition ---------------------------------------------------

    @property
    def next_producer_id(self) -> int:
        """The producer id ``ProducerIdManager.generateProducerId`` hands out next."""
        return self._next_producer_id

    @property
    def unavailable(self) -> Errors | None:
        """The error every transactional request gets now (None when this coordinator serves the partition)."""
        return self._unavailable

    def resign(self) -> None:
        """TCo.onResignation: the partition's leadership is lost. TSM.removeTransactionsForTxnTopicPartition drops
        the cache, TMCM.removeMarkersForTxnTopicPartition the queued markers; requests get NOT_COORDINATOR. Writes
        in flight still complete (``on_log_append`` answers their requests with NOT_COORDINATOR)."""
        self._txns.clear()
        self._pending_markers.clear()
        self._unavailable = Errors.NOT_COORDINATOR

    def elect(self, coordinator_epoch: int) -> None:
        """TCo.onElection at ``coordinator_epoch`` (the partition's new leader epoch): forget the queued markers,
        then TSM.loadTransactionsForTxnTopicPartition marks the partition loading (COORDINATOR_LOAD_IN_PROGRESS)
        until ``load`` runs.

        Raises:
            ModelError: ``coordinator_epoch`` is not above the current one. It is the partition's leader epoch,
                which only grows (BrokerMetadataPublisher elects at the new leader epoch); a coordinator at an
                older epoch would have its markers refused by partitions that saw the newer one.
        """
        if coordinator_epoch <= self.coordinator_epoch:
            raise ModelError(f"coordinator epoch {coordinator_epoch} is not above the current {self.coordinator_epoch}")
        self._txns.clear()
        self._pending_markers.clear()
        self.coordinator_epoch = coordinator_epoch
        self._unavailable = Errors.COORDINATOR_LOAD_IN_PROGRESS

    def load(self, records: Iterable[TxnLogRecord], *, coordinator_epoch: int, now: int) -> list[Effect]:
        """TSM.loadTransactionsForTxnTopicPartition's scheduled load: replay ``records`` (the partition's log, in
        order) and serve the partition.

        TSM.loadTransactionMetadata keeps the last record per transactional.id and removes it on a tombstone (the
        ``Dead`` record here); pending transitions are not in the log, so none is restored. A load for an epoch
        that is no longer loading (a newer election, or a resignation, came first) does nothing. Then every
        PrepareCommit/PrepareAbort transaction prepares Complete* and gets its markers at the new coordinator epoch
        (TMCM.addTxnMarkersToSend): partitions that already have a marker get a second one.
        """
        if self._unavailable is not Errors.COORDINATOR_LOAD_IN_PROGRESS or coordinator_epoch != self.coordinator_epoch:
            return []
        last: dict[str, TxnLogRecord] = {}
        for record in records:
            if record.state is _S.DEAD:
                last.pop(record.transactional_id, None)
            else:
                last[record.transactional_id] = record
        self._txns = {tid: _from_log_value(last[tid]) for tid in sorted(last)}
        self._unavailable = None  # TSM: loadingPartitions.remove before the markers go out
        effects: list[Effect] = []
        for tid, txn in self._txns.items():
            effects.append(TxnLoaded(transactional_id=tid, state=txn.state, producer_id=txn.producer_id,
                                     producer_epoch=txn.producer_epoch, coordinator_epoch=coordinator_epoch,
                                     txn_timeout_ms=txn.txn_timeout_ms))
        for tid, txn in self._txns.items():
            if txn.state in (_S.PREPARE_COMMIT, _S.PREPARE_ABORT):
                result = _C if txn.state is _S.PREPARE_COMMIT else _A
                effects += self._add_txn_markers_to_send(txn, result, txn.prepare_complete(now))
        return effects

    def load_aged(self, transactional_id: str, producer_epoch: int, txn_timeout_ms: int, transaction_version: int,
                  now: int) -> TxnLogRecord:
        """Start with ``transactional_id`` registered as a long-lived id holds it (eosim's aged state,
        docs/scenario-format.md): a new producer id at ``producer_epoch``, its last transaction committed. The
        record is what __transaction_state would hold; TSM.loadTransactionMetadata keeps it (the caller writes it
        to the log, so a reload finds it). Kafka's own rules then apply: an InitProducerId at an exhausted epoch
        (>= 32766, TMd.isEpochExhausted) rotates to a new producer id at epoch 0.

        Raises:
            ModelError: the id is already known, or the epoch is outside 0..Short.MaxValue.
        """
        if transactional_id in self._txns or not 0 <= producer_epoch <= MAX_EPOCH:
            raise ModelError(f"cannot age {transactional_id!r} at epoch {producer_epoch}")
        record = TxnLogRecord(
            transactional_id=transactional_id, producer_id=self._generate_producer_id(),
            prev_producer_id=NO_PRODUCER_ID, next_producer_id=NO_PRODUCER_ID, producer_epoch=producer_epoch,
            last_producer_epoch=NO_PRODUCER_EPOCH, txn_timeout_ms=txn_timeout_ms, state=_S.COMPLETE_COMMIT,
            partitions=(), txn_start_timestamp=now, txn_last_update_timestamp=now,
            client_transaction_version=transaction_version,
        )
        self._txns[transactional_id] = _from_log_value(record)
        return record

    def generate_producer_id(self) -> int:
        """ProducerIdManager.generateProducerId for a producer outside a request (an aged idempotent producer)."""
        return self._generate_producer_id()

    # --- public entry points ------------------------------------------------------------------------------

    def handle(self, correlation_id: int, request: object, now: int) -> list[Effect]:
        """Handle one coordinator request.

        Raises:
            TypeError: ``request`` is not one of this module's requests.
        """
        try:
            match request:
                case InitProducerIdRequest():
                    return self._init_producer_id(correlation_id, request, now)
                case AddPartitionsToTxnRequest(verify_only=True):
                    return [self._respond(correlation_id, self._verify_partitions(request))]
                case AddPartitionsToTxnRequest():
                    return self._add_partitions(
                        correlation_id, request, request.partitions, _client_transaction_version(request), now
                    )
                case AddOffsetsToTxnRequest():
                    # KafkaApis.handleAddOffsetsToTxnRequest: the group's offsets partition, always TV_0.
                    group_partition = partition_for(request.group_id, self.config.offsets_topic_num_partitions)
                    offsets = TopicPartition(CONSUMER_OFFSETS_TOPIC, group_partition)
                    return self._add_partitions(correlation_id, request, (offsets,), TV_0, now)
                case EndTxnRequest():
                    return self._end_transaction(
                        request.transactional_id,
                        request.producer_id,
                        request.producer_epoch,
                        _C if request.committed else _A,
                        from_client=True,
                        client_transaction_version=_client_transaction_version(request),
                        correlation_id=correlation_id,
                        request=request,
                        now=now,
                    )
        except KafkaIllegalState:
            # KafkaApis.handleError: Errors.forException(IllegalStateException) = UNKNOWN_SERVER_ERROR.
            return [self._respond(correlation_id, _response(request, Errors.UNKNOWN_SERVER_ERROR))]
        raise TypeError(f"not a transaction coordinator request: {request!r}")

    def on_log_append(self, write_id: int, error: Errors, now: int) -> list[Effect]:
        """The runtime finished the ``AppendTxnLog`` with ``write_id``; ``error`` is the raw append error."""
        if write_id not in self._writes:
            raise ModelError(f"unknown txn-log write id {write_id}")
        write = self._writes.pop(write_id)
        if self._unavailable is not None or write.coordinator_epoch != self.coordinator_epoch:
            # TSM.appendTransactionToLog's callback after the partition moved: the cache is not touched (a load
            # replays what the write put in the log); the caller gets the lookup error, NOT_COORDINATOR for an
            # epoch change, or the append's own error. TMCM.tryAppendToLog gives up on any of them.
            if write.correlation_id is None:
                return []
            answer = (self._unavailable or Errors.NOT_COORDINATOR) if error is Errors.NONE else (
                _APPEND_ERROR_MAP.get(error, error))
            return [self._respond(write.correlation_id, _response(write.request, answer))]
        txn = self._txns[write.record.transactional_id]
        if error is Errors.NONE:
            return self._on_write_durable(txn, write, now)
        if write.purpose is _Purpose.EXPIRE:
            txn.pending_state = None  # TSM.writeTombstonesForExpiredTransactionalIds: keep the metadata
            return []
        mapped = _APPEND_ERROR_MAP.get(error, error)
        if write.purpose is _Purpose.COMPLETE_TXN and mapped is Errors.COORDINATOR_NOT_AVAILABLE:
            return [self._append(write)]  # TMCM.tryAppendToLog: retryOnError keeps the pending state, re-append
        txn.pending_state = None  # TSM.appendTransactionToLog: reset the pending state, return the error
        # TCo.endTransactionWithTV1 (KAFKA-9666; before it every retry bumped again); TV2 does not set it
        if write.epoch_fence and not write.epoch_bump and not self.config.reintroduces("KAFKA-9666"):
            txn.has_failed_epoch_fence = True
        if write.correlation_id is None:
            return []
        return [self._respond(write.correlation_id, _response(write.request, mapped))]

    def on_marker_result(
        self, entry: TxnMarkerEntry, partition: TopicPartition, error: Errors, now: int
    ) -> list[Effect]:
        """The result of writing ``entry``'s marker to ``partition`` (TMRCH.onComplete)."""
        tid = entry.transactional_id
        if self._unavailable is not None:
            self._remove_markers_for_txn(entry)  # TMRCH: NOT_COORDINATOR or loading, cancel
            return []
        txn = self._txns.get(tid)
        if txn is None:
            raise ModelError(f"marker result for {tid}, which has no metadata")
        if entry.coordinator_epoch != self.coordinator_epoch:
            self._remove_markers_for_txn(entry)  # TMRCH: coordinator epoch changed, cancel
            return []
        if error is Errors.NONE:
            txn.remove_partition(partition)
        elif error in _MARKER_RETRY_ERRORS:
            return [SendTxnMarkers(entry=evolve(entry, partitions=(partition,)))]  # re-enqueue this partition
        elif error in _MARKER_ABORT_ERRORS:
            self._remove_markers_for_txn(entry)  # no Complete* will be written by this coordinator
            return []
        else:
            raise ModelError(f"unexpected marker error {error.name} for {tid}")  # TMRCH: IllegalStateException
        return self._maybe_write_txn_completion(tid)

    def on_markers_disconnected(self, entry: TxnMarkerEntry) -> list[Effect]:
        """TMRCH.onComplete for a WriteTxnMarkers request that got no response: send ``entry`` again, unless the
        partition moved meanwhile (not the coordinator, loading, or another coordinator epoch: cancel)."""
        if self._unavailable is not None or entry.coordinator_epoch != self.coordinator_epoch:
            self._remove_markers_for_txn(entry)
            return []
        if entry.transactional_id not in self._txns:
            raise ModelError(f"marker result for {entry.transactional_id}, which has no metadata")
        return [SendTxnMarkers(entry=entry)]

    def abort_timed_out_transactions(self, now: int) -> list[Effect]:
        """TSM.timedOutTransactions + TCo.abortTimedOutTransactions: fence and abort expired Ongoing txns.

        Aborts use the server's finalized transaction.version. Transactional ids are visited in sorted order.
        """
        effects: list[Effect] = []
        for tid in sorted(self._txns):
            txn = self._txns[tid]
            if (
                txn.pending_state is None
                and txn.state is _S.ONGOING
                and txn.txn_start_timestamp + txn.txn_timeout_ms < now
            ):
                if self.config.reintroduces("KAFKA-6119"):
                    epoch = txn.producer_epoch  # 0.11.0.0 aborted at the producer's epoch: no fence (KAFKA-6119)
                else:
                    try:
                        epoch = txn.prepare_fence_producer_epoch().producer_epoch
                    except KafkaIllegalState:
                        continue  # Kafka's scheduler logs it; the txn stays Ongoing (KAFKA-20090, fixed after 4.1)
                effects += self._end_transaction(
                    tid,
                    txn.producer_id,
                    epoch,
                    _A,
                    from_client=False,
                    client_transaction_version=self.config.transaction_version,
                    correlation_id=None,
                    request=None,
                    now=now,
                )
        return effects

    def remove_expired_transactional_ids(self, now: int) -> list[Effect]:
        """TSM.removeExpiredTransactionalIds: tombstone (Dead) ids idle for transactional.id.expiration.ms.

        One ``AppendTxnLog`` per id (Kafka batches the tombstones of a partition into one append).
        """
        effects: list[Effect] = []
        for tid in sorted(self._txns):
            txn = self._txns[tid]
            if (
                txn.pending_state is None
                and txn.state in EXPIRATION_ALLOWED
                and txn.txn_last_update_timestamp <= now - self.config.transactional_id_expiration_ms
            ):
                effects.append(self._append(_LogWrite(purpose=_Purpose.EXPIRE, record=txn.prepare_dead())))
        return effects

    def in_progress(self) -> bool:
        """Whether a transaction here is still to be resolved (Ongoing or Prepare*, or a transition pending), or
        this broker does not serve the partition now, so whether one is cannot be told."""
        return self._unavailable is not None or any(
            txn.pending_state is not None or txn.state in (_S.ONGOING, _S.PREPARE_COMMIT, _S.PREPARE_ABORT)
            for txn in self._txns.values())

    def metadata(self, transactional_id: str) -> TxnLogRecord | None:
        """A read-only snapshot of the metadata (without the pending state), or None if unknown."""
        txn = self._txns.get(transactional_id)
        return None if txn is None else txn.snapshot()

    # --- InitProducerId -----------------------------------------------------------------------------------

    def _init_producer_id(self, correlation_id: int, request: InitProducerIdRequest, now: int) -> list[Effect]:
        def reply(error: Errors) -> list[Effect]:
            return [self._respond(correlation_id, InitProducerIdResponse(error=error))]

        # KafkaApis.handleInitProducerIdRequest: the expected (pid, epoch) is both or neither.
        if (request.producer_id == NO_PRODUCER_ID) != (request.producer_epoch == NO_PRODUCER_EPOCH):
            return reply(Errors.INVALID_REQUEST)
        expected = None if request.producer_id == NO_PRODUCER_ID else (request.producer_id, request.producer_epoch)
        tid = request.transactional_id
        if tid is None:
            # TCo.handleInitProducerId: idempotent producer, a new pid every time and no state.
            response = InitProducerIdResponse(error=Errors.NONE, producer_id=self._generate_producer_id(),
                                              producer_epoch=0)
            return [self._respond(correlation_id, response)]
        if tid == "":
            return reply(Errors.INVALID_REQUEST)
        # TSM.validateTransactionTimeoutMs
        if not 0 < request.transaction_timeout_ms <= self.config.transaction_max_timeout_ms:
            return reply(Errors.INVALID_TRANSACTION_TIMEOUT)
        if self._unavailable is not None:  # TSM.getTransactionState
            return reply(self._unavailable)
        txn = self._txns.get(tid)
        if txn is None:
            # New metadata: a new pid at epoch -1, Empty, TV_0; cached before any write.
            txn = TransactionMetadata(
                transactional_id=tid,
                producer_id=self._generate_producer_id(),
                txn_timeout_ms=request.transaction_timeout_ms,
                txn_last_update_timestamp=now,
            )
            self._txns[tid] = txn
        # TCo.prepareInitProducerIdTransit
        if txn.pending_state is not None:
            return reply(Errors.CONCURRENT_TRANSACTIONS)
        if expected is not None and not self._is_valid_expected_producer_id(txn, *expected):
            return reply(Errors.PRODUCER_FENCED)
        match txn.state:
            case _S.PREPARE_COMMIT | _S.PREPARE_ABORT:
                return reply(Errors.CONCURRENT_TRANSACTIONS)
            case _S.EMPTY | _S.COMPLETE_COMMIT | _S.COMPLETE_ABORT:
                if txn.is_producer_epoch_exhausted and (expected is None or expected[1] == txn.producer_epoch):
                    record = txn.prepare_producer_id_rotation(
                        self._generate_producer_id(), request.transaction_timeout_ms, now, expected is not None
                    )
                else:
                    record = txn.prepare_increment_producer_epoch(
                        request.transaction_timeout_ms, None if expected is None else expected[1], now
                    )
                    if isinstance(record, Errors):
                        return reply(record)
                write = _LogWrite(
                    purpose=_Purpose.INIT_PRODUCER_ID, record=record, correlation_id=correlation_id, request=request
                )
                return [self._append(write)]
            case _S.ONGOING:
                # Fence the current producer and abort its txn; the client gets CONCURRENT_TRANSACTIONS and its
                # retry bumps again from CompleteAbort. The abort uses the server's transaction.version.
                fence = txn.prepare_fence_producer_epoch()
                return self._end_transaction(
                    tid,
                    fence.producer_id,
                    fence.producer_epoch,
                    _A,
                    from_client=False,
                    client_transaction_version=self.config.transaction_version,
                    correlation_id=correlation_id,
                    request=request,
                    now=now,
                )
        # Dead and PrepareEpochFence are never resting states (TCo: fatal IllegalStateException).
        raise KafkaIllegalState(f"{tid} found in state {txn.state}")

    @staticmethod
    def _is_valid_expected_producer_id(txn: TransactionMetadata, producer_id: int, epoch: int) -> bool:
        """TCo.prepareInitProducerIdTransit.isValidProducerId (KIP-360)."""
        return (
            txn.producer_epoch == NO_PRODUCER_EPOCH
            or producer_id == txn.producer_id
            or (producer_id == txn.prev_producer_id and is_epoch_exhausted(epoch))
        )

    # --- AddPartitionsToTxn / AddOffsetsToTxn -------------------------------------------------------------

    def _add_partitions(
        self,
        correlation_id: int,
        request: AddPartitionsToTxnRequest | AddOffsetsToTxnRequest,
        partitions: tuple[TopicPartition, ...],
        client_transaction_version: int,
        now: int,
    ) -> list[Effect]:
        """TCo.handleAddPartitionsToTransaction (4.0 order of checks)."""

        def reply(error: Errors) -> list[Effect]:
            return [self._respond(correlation_id, _response(request, error))]

        if not request.transactional_id:
            return reply(Errors.INVALID_REQUEST)
        if self._unavailable is not None:  # TSM.getTransactionState
            return reply(self._unavailable)
        txn = self._txns.get(request.transactional_id)
        if txn is None:
            return reply(Errors.INVALID_PRODUCER_ID_MAPPING)
        if txn.pending_state is not None:
            return reply(Errors.CONCURRENT_TRANSACTIONS)  # first, since 4.0 (KAFKA-18660)
        if txn.producer_id != request.producer_id:
            return reply(Errors.INVALID_PRODUCER_ID_MAPPING)
        if txn.producer_epoch != request.producer_epoch:
            return reply(Errors.PRODUCER_FENCED)
        if txn.state in (_S.PREPARE_COMMIT, _S.PREPARE_ABORT):
            return reply(Errors.CONCURRENT_TRANSACTIONS)
        if txn.state is _S.ONGOING and set(partitions) <= set(txn.partitions):
            return reply(Errors.NONE)  # already in the txn: no write
        record = txn.prepare_add_partitions(partitions, now, client_transaction_version)
        write = _LogWrite(
            purpose=_Purpose.ADD_PARTITIONS, record=record, correlation_id=correlation_id, request=request
        )
        return [self._append(write)]

    def _verify_partitions(self, request: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse:
        """TCo.handleVerifyPartitionsInTransaction (KIP-890 part 1): no state change, pending not checked."""
        partitions = _partition_tuple(request.partitions)
        txn = self._txns.get(request.transactional_id)
        if not request.transactional_id:
            error = Errors.INVALID_REQUEST
        elif self._unavailable is not None:  # TSM.getTransactionState
            error = self._unavailable
        elif txn is None or txn.producer_id != request.producer_id:
            error = Errors.INVALID_PRODUCER_ID_MAPPING
        elif txn.producer_epoch != request.producer_epoch:
            error = Errors.PRODUCER_FENCED
        elif txn.state in (_S.PREPARE_COMMIT, _S.PREPARE_ABORT):
            error = Errors.CONCURRENT_TRANSACTIONS
        else:
            # Each partition not (yet) in the txn is abortable for the producer.
            return AddPartitionsToTxnResponse(
                results=tuple(
                    (p, Errors.NONE if p in txn.partitions else Errors.TRANSACTION_ABORTABLE) for p in partitions
                )
            )
        return AddPartitionsToTxnResponse(results=tuple((p, error) for p in partitions))

    # --- EndTxn (client, fence, timeout) ------------------------------------------------------------------

    def _end_transaction(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        result: TransactionResult,
        *,
        from_client: bool,
        client_transaction_version: int,
        correlation_id: int | None,
        request: object,
        now: int,
    ) -> list[Effect]:
        """TCo.endTransaction: the TV2 path, or ``endTransactionWithTV1`` for a version without epoch bumps."""

        def reply(error: Errors, pid: int = NO_PRODUCER_ID, epoch: int = NO_PRODUCER_EPOCH) -> list[Effect]:
            if correlation_id is None:
                return []
            return [self._respond(correlation_id, _response(request, error, pid, epoch))]

        tv2 = supports_epoch_bump(client_transaction_version)
        if not transactional_id:
            return reply(Errors.INVALID_REQUEST)
        if self._unavailable is not None:  # TSM.getTransactionState
            return reply(self._unavailable)
        txn = self._txns.get(transactional_id)
        if txn is None:
            return reply(Errors.INVALID_PRODUCER_ID_MAPPING)
        is_epoch_fence = txn.pending_state is _S.PREPARE_EPOCH_FENCE
        if tv2:
            outcome = self._end_txn_tv2_outcome(
                txn, producer_id, producer_epoch, result, from_client, is_epoch_fence,
                pending_first=not self.config.reintroduces("KAFKA-18464"),
                commit_after_abort_fenced=not self.config.reintroduces("KAFKA-20785"),
            )
            if outcome is Errors.NONE:
                return reply(Errors.NONE, txn.producer_id, txn.producer_epoch)  # a retry: the stored pid/epoch
        else:
            outcome = self._end_txn_tv1_outcome(txn, producer_id, producer_epoch, result, from_client)
        if isinstance(outcome, Errors):
            return reply(outcome)

        if tv2:
            # Exhausted epoch: the markers go out at Short.MaxValue and the txn completes on a new pid (KAFKA-18660).
            next_producer_id = (
                self._generate_producer_id()
                if not is_epoch_fence and txn.is_producer_epoch_exhausted
                else NO_PRODUCER_ID
            )
            if is_epoch_fence:
                txn.pending_state = None  # the fence's own epoch is dropped: PrepareAbort bumps once (KAFKA-19367)
                if self.config.reintroduces("KAFKA-19367"):
                    txn.producer_epoch = producer_epoch  # 4.0.0 kept the fence's bump, then bumped again
            record = txn.prepare_abort_or_commit(
                outcome, client_transaction_version, next_producer_id, now, txn.state is not _S.ONGOING
            )
        else:
            if is_epoch_fence:
                # TCo.endTransactionWithTV1: the fenced epoch goes into memory before the write (see KAFKA-9666).
                txn.pending_state = None
                txn.producer_epoch = producer_epoch
                txn.last_producer_epoch = NO_PRODUCER_EPOCH
            record = txn.prepare_abort_or_commit(outcome, TV_0, NO_PRODUCER_ID, now, False)
        write = _LogWrite(
            purpose=_Purpose.END_TXN,
            record=record,
            correlation_id=correlation_id,
            request=request,
            result=result,
            epoch_fence=is_epoch_fence,
            epoch_bump=tv2,
        )
        return [self._append(write)]

    @staticmethod
    def _end_txn_tv1_outcome(
        txn: TransactionMetadata, producer_id: int, epoch: int, result: TransactionResult, from_client: bool
    ) -> TransactionState | Errors:
        """TCo.endTransactionWithTV1 checks, in Kafka's order."""
        if txn.producer_id != producer_id:
            return Errors.INVALID_PRODUCER_ID_MAPPING
        # Strict epoch equality for client requests (KAFKA-9600).
        if (from_client and epoch != txn.producer_epoch) or epoch < txn.producer_epoch:
            return Errors.PRODUCER_FENCED
        if txn.pending_state not in (None, _S.PREPARE_EPOCH_FENCE):
            return Errors.CONCURRENT_TRANSACTIONS
        return _END_TXN_TV1[(txn.state, result)]

    @staticmethod
    def _end_txn_tv2_outcome(
        txn: TransactionMetadata,
        producer_id: int,
        epoch: int,
        result: TransactionResult,
        from_client: bool,
        is_epoch_fence: bool,
        *,
        pending_first: bool,
        commit_after_abort_fenced: bool,
    ) -> TransactionState | Errors:
        """TCo.endTransaction (TV2) checks, in Kafka's order."""
        # The client retries a request that overflowed the epoch; the new pid is already stored.
        retry_on_overflow = (
            not is_epoch_fence
            and txn.prev_producer_id == producer_id
            and epoch == MAX_EPOCH - 1
            and txn.producer_epoch == 0
        )
        # No check of the stored client_transaction_version (Kafka 4.0-4.4): one behind a TV1-completed
        # transaction passes too, and a TV2 zombie gets its TV1 successor's epoch (mixed-tv-abort-revives-zombie).
        retry_on_epoch_bump = not is_epoch_fence and txn.producer_epoch == epoch + 1
        if is_epoch_fence:
            valid_epoch = (not from_client or epoch == txn.producer_epoch) and epoch >= txn.producer_epoch
        elif txn.state in (_S.PREPARE_COMMIT, _S.PREPARE_ABORT):
            valid_epoch = retry_on_epoch_bump
        elif txn.state in (_S.COMPLETE_COMMIT, _S.COMPLETE_ABORT):
            valid_epoch = retry_on_epoch_bump or retry_on_overflow or epoch == txn.producer_epoch
        else:
            valid_epoch = epoch == txn.producer_epoch
        # The pending check comes first so a pending overflow completes before the pid check (KAFKA-18464/18660);
        # before KAFKA-18464 it came after the epoch check, which fenced a producer aborting during Prepare*.
        pending = txn.pending_state not in (None, _S.PREPARE_EPOCH_FENCE)
        if pending and pending_first:
            return Errors.CONCURRENT_TRANSACTIONS
        if txn.producer_id != producer_id and not retry_on_overflow:
            return Errors.INVALID_PRODUCER_ID_MAPPING
        if not valid_epoch:
            return Errors.PRODUCER_FENCED
        if pending:
            return Errors.CONCURRENT_TRANSACTIONS
        retry = retry_on_epoch_bump or retry_on_overflow
        # A commit one epoch behind a CompleteAbort comes from a producer whose transaction the coordinator
        # aborted (a timeout): only 4.3.2 answers PRODUCER_FENCED (KAFKA-20785), the others INVALID_TXN_STATE.
        if (txn.state, result, retry) == (_S.COMPLETE_ABORT, _C, True) and commit_after_abort_fenced:
            return Errors.PRODUCER_FENCED
        return _END_TXN_TV2[(txn.state, result, retry)]

    # --- write completion and markers ---------------------------------------------------------------------

    def _on_write_durable(self, txn: TransactionMetadata, write: _LogWrite, now: int) -> list[Effect]:
        old = txn.state
        if write.purpose is _Purpose.EXPIRE:
            del self._txns[txn.transactional_id]  # TSM: a durable tombstone removes the metadata
            return [self._state_changed(txn, old, _S.DEAD)]
        txn.complete_transition(write.record)
        effects: list[Effect] = [self._state_changed(txn, old, txn.state)]
        match write.purpose:
            case _Purpose.INIT_PRODUCER_ID:
                response = InitProducerIdResponse(
                    error=Errors.NONE, producer_id=txn.producer_id, producer_epoch=txn.producer_epoch
                )
                effects.append(self._respond(write.correlation_id, response))
            case _Purpose.ADD_PARTITIONS:
                effects.append(self._respond(write.correlation_id, _response(write.request, Errors.NONE)))
            case _Purpose.END_TXN:
                # TCo.sendTxnMarkersCallback: prepare Complete* now (it stays pending while markers are out),
                # answer, then send the markers with the Prepare* pid/epoch.
                complete = txn.prepare_complete(now)
                if write.correlation_id is not None:
                    if isinstance(write.request, InitProducerIdRequest):
                        response = InitProducerIdResponse(error=Errors.CONCURRENT_TRANSACTIONS)
                    elif write.epoch_bump and self.config.reintroduces("KAFKA-18660"):
                        # before KAFKA-18660 an overflow answered the Prepare* (pid, 32767), not (new pid, 0)
                        response = _response(write.request, Errors.NONE, txn.producer_id, txn.producer_epoch)
                    elif write.epoch_bump:
                        response = _response(write.request, Errors.NONE, complete.producer_id, complete.producer_epoch)
                    else:
                        response = _response(write.request, Errors.NONE)
                    effects.append(self._respond(write.correlation_id, response))
                effects += self._add_txn_markers_to_send(txn, write.result, complete)
            case _Purpose.COMPLETE_TXN:
                pass
        return effects

    def _add_txn_markers_to_send(
        self, txn: TransactionMetadata, result: TransactionResult, complete: TxnLogRecord
    ) -> list[Effect]:
        """TMCM.addTxnMarkersToSend: markers at the Prepare* epoch (Short.MaxValue on TV2 overflow)."""
        tid = txn.transactional_id
        self._pending_markers[tid] = _PendingCompleteTxn(coordinator_epoch=self.coordinator_epoch, record=complete)
        effects: list[Effect] = []
        if txn.partitions:
            entry = TxnMarkerEntry(
                transactional_id=tid,
                producer_id=txn.producer_id,
                producer_epoch=txn.producer_epoch,
                coordinator_epoch=self.coordinator_epoch,
                result=result,
                partitions=txn.partitions,
                transaction_version=txn.client_transaction_version,
            )
            effects.append(SendTxnMarkers(entry=entry))
        return effects + self._maybe_write_txn_completion(tid)

    def _maybe_write_txn_completion(self, transactional_id: str) -> list[Effect]:
        """TMCM.maybeWriteTxnCompletion: once no partition waits for a marker, append Complete* (only once)."""
        pending = self._pending_markers.get(transactional_id)
        if pending is None or self._txns[transactional_id].partitions:
            return []
        del self._pending_markers[transactional_id]
        return [self._append(_LogWrite(purpose=_Purpose.COMPLETE_TXN, record=pending.record))]

    def _remove_markers_for_txn(self, entry: TxnMarkerEntry) -> None:
        """TMCM.removeMarkersForTxn: forget the pending completion this entry belongs to, not a newer one
        (KAFKA-16352)."""
        pending = self._pending_markers.get(entry.transactional_id)
        # before KAFKA-16352 (3.8) any entry of the transactional.id went, also one a reload queued at a newer epoch
        if pending is not None and (pending.coordinator_epoch == entry.coordinator_epoch
                                    or self.config.reintroduces("KAFKA-16352")):
            del self._pending_markers[entry.transactional_id]

    # --- helpers ------------------------------------------------------------------------------------------

    def _generate_producer_id(self) -> int:
        producer_id = self._next_producer_id
        self._next_producer_id += 1
        return producer_id

    def _append(self, write: _LogWrite) -> AppendTxnLog:
        write_id = self._next_write_id
        self._next_write_id += 1
        self._writes[write_id] = evolve(write, coordinator_epoch=self.coordinator_epoch)
        return AppendTxnLog(write_id=write_id, transactional_id=write.record.transactional_id, record=write.record)

    @staticmethod
    def _respond(correlation_id: int, response: object) -> Respond:
        return Respond(correlation_id=correlation_id, response=response)

    @staticmethod
    def _state_changed(txn: TransactionMetadata, old: TransactionState, new: TransactionState) -> TxnStateChanged:
        return TxnStateChanged(
            transactional_id=txn.transactional_id,
            old=old,
            new=new,
            producer_id=txn.producer_id,
            producer_epoch=txn.producer_epoch,
            txn_timeout_ms=txn.txn_timeout_ms,
        )
