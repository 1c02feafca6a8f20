"""eosim._client.producer
===================

``Producer``: confluent-kafka's producer over librdkafka, modelled on librdkafka's own state machines:
the idempotence FSM (``src/rdkafka_idempotence.c``), the transaction manager (``src/rdkafka_txnmgr.c``),
the partition sender (``rd_kafka_toppar_producer_serve``, ``src/rdkafka_broker.c``) and the Produce
response handler (``rd_kafka_handle_Produce_error``, ``src/rdkafka_request.c``). docs/client.md lists
every rule modelled and what is left out.

Theory of operation
-------------------
``produce()`` puts a message on its partition's queue. Messages get a per-partition ``msgid`` (1, 2,
...); a batch's sequence number is ``msgid - epoch_base_msgid``, where the base is the first queued
msgid when the partition adopted the current (pid, epoch). The sender (``_serve``) runs whenever
something changed and sends at most one batch per request, up to 5 in flight per partition when
idempotent, once ``linger.ms`` passed. Responses go through ``produce_outcome`` (a pure function of
the error and the partition's sequence bookkeeping) whose verdict the producer applies: deliver,
re-queue (a retry keeps its msgids, hence its sequence), or fail, possibly with an epoch bump after
all partitions drained, an abortable transaction error or a fatal error.

Blocking API calls return SimPy processes: ``yield producer.commit_transaction()``; an error is raised
as ``KafkaException`` inside the yielding process. Delivery callbacks only run inside ``poll``,
``flush`` and ``commit_transaction``/``abort_transaction`` (which flush), as in confluent-kafka.
Timeouts are seconds (float, -1 = infinite) truncated to ms as confluent-kafka's ``cfl_timeout_ms``.
"""

from __future__ import annotations

import enum
import math
import zlib
from typing import Any, Callable, Generator, Iterable

import simpy
from attrs import define, field, frozen

from eosim.models.errors import Errors, IllegalTransition
from eosim.models.protocol import ProduceRequest, ProduceResponse
from eosim.models.records import MAX_SEQUENCE, Record, RecordBatch, TopicPartition as TP, increment_sequence
from eosim.models.txn_coordinator import (
    AddOffsetsToTxnRequest,
    AddPartitionsToTxnRequest,
    EndTxnRequest,
    InitProducerIdRequest,
)
from eosim.models.group_coordinator import TxnOffsetCommitRequest
from eosim._client.config import Client, ProducerConfig
from eosim._client.errors import (
    API_VERSIONS,
    Context,
    KafkaError,
    KafkaException,
    Reaction,
    action,
    api_error,
    failure_code,
    normalize,
)
from eosim._client.handle import LEADER, TXN_COORDINATOR, Handle
from eosim._client.message import TIMESTAMP_CREATE_TIME, ConsumerGroupMetadata, Message, TopicPartition
from eosim._net import DISCONNECTED, Failure

IDEMP_MAX_INFLIGHT = 5  # RD_KAFKA_IDEMP_MAX_INFLIGHT (rdkafka_idempotence.h): the broker's dedup window
PID_RETRY_MS = 500  # rd_kafka_idemp_pid_timer_restart: non-immediate = 500 ms
TIMEOUT_SCAN_MS = 1000  # rd_kafka_broker_producer_serve scans message timeouts once a second
RETRY_JITTER_PERCENT = 20  # RD_KAFKA_RETRY_JITTER_PERCENT (rdkafka_int.h)
STICKY_PARTITIONING_LINGER_MS = 10  # sticky.partitioning.linger.ms default (CONFIGURATION.md)
TXN_OFFSET_COMMIT_RETRY_MS = 500  # rd_kafka_txn_handle_TxnOffsetCommit: "500ms delay before retrying"
NO_PID = (-1, -1)
# Batches of a partition in flight while it resends: librdkafka resends as many as the dedup window
# takes, once the partition drained (rd_kafka_idemp_drain_toppar); Java resends one at a time
# ("This effectively reduces our in flight request count to 1", RecordAccumulator
# .shouldStopDrainBatchesForPartition).
RESEND_IN_FLIGHT: dict[Client, int] = {Client.LIBRDKAFKA: IDEMP_MAX_INFLIGHT, Client.JAVA: 1}


def _timeout_ms(timeout: float) -> int | None:
    """cfl_timeout_ms (confluent_kafka.h): seconds to int ms by truncation; negative = infinite (None)."""
    return None if timeout < 0 else int(timeout * 1000)


# -- states ---------------------------------------------------------------------------------------


class TxnState(enum.Enum):
    """rd_kafka_txn_state_t (rdkafka_int.h)."""

    INIT = "Init"
    WAIT_PID = "WaitPID"
    READY_NOT_ACKED = "ReadyNotAcked"
    READY = "Ready"
    IN_TRANSACTION = "InTransaction"
    BEGIN_COMMIT = "BeginCommit"
    COMMITTING_TRANSACTION = "CommittingTransaction"
    COMMIT_NOT_ACKED = "CommitNotAcked"
    BEGIN_ABORT = "BeginAbort"
    ABORTING_TRANSACTION = "AbortingTransaction"
    ABORT_NOT_ACKED = "AbortNotAcked"
    ABORTABLE_ERROR = "AbortableError"
    FATAL_ERROR = "FatalError"


T = TxnState
# rd_kafka_txn_state_transition_is_valid: target -> allowed current states (FATAL_ERROR from anywhere).
TXN_TRANSITIONS: dict[TxnState, frozenset[TxnState]] = {
    T.WAIT_PID: frozenset({T.INIT}),
    T.READY_NOT_ACKED: frozenset({T.WAIT_PID}),
    T.READY: frozenset({T.READY_NOT_ACKED, T.COMMIT_NOT_ACKED, T.ABORT_NOT_ACKED}),
    T.IN_TRANSACTION: frozenset({T.READY}),
    T.BEGIN_COMMIT: frozenset({T.IN_TRANSACTION}),
    T.COMMITTING_TRANSACTION: frozenset({T.BEGIN_COMMIT}),
    T.COMMIT_NOT_ACKED: frozenset({T.BEGIN_COMMIT, T.COMMITTING_TRANSACTION}),
    T.BEGIN_ABORT: frozenset({T.IN_TRANSACTION, T.ABORTING_TRANSACTION, T.ABORTABLE_ERROR}),
    T.ABORTING_TRANSACTION: frozenset({T.BEGIN_ABORT}),
    T.ABORT_NOT_ACKED: frozenset({T.BEGIN_ABORT, T.ABORTING_TRANSACTION}),
    T.ABORTABLE_ERROR: frozenset({T.IN_TRANSACTION, T.BEGIN_COMMIT, T.COMMITTING_TRANSACTION}),
    T.FATAL_ERROR: frozenset(TxnState),
}


def txn_transition(current: TxnState, target: TxnState) -> TxnState:
    """rd_kafka_txn_state_transition_is_valid: the target state, or IllegalTransition (a client bug)."""
    if current not in TXN_TRANSITIONS.get(target, frozenset()):
        raise IllegalTransition("librdkafka transaction manager", current, target)
    return target


# Later abortable errors in these states are ignored, not a bug.
ABORTABLE_IGNORED_IN = frozenset({T.BEGIN_ABORT, T.ABORTING_TRANSACTION, T.FATAL_ERROR})
del T


class IdempState(enum.Enum):
    """rd_kafka_idemp_state_t (rdkafka_int.h); WAIT_TRANSPORT is folded into REQ_PID (no connections)."""

    INIT = "Init"
    REQ_PID = "RequestPID"
    WAIT_PID = "WaitPID"
    ASSIGNED = "Assigned"
    DRAIN_RESET = "DrainReset"
    DRAIN_BUMP = "DrainBump"
    WAIT_TXN_ABORT = "WaitTxnAbort"
    FATAL_ERROR = "FatalError"


class MsgStatus(enum.Enum):
    """rd_kafka_msg_status_t: what a delivery report can say about persistence."""

    NOT_PERSISTED = 0
    POSSIBLY_PERSISTED = 1
    PERSISTED = 2


# -- pure decisions -------------------------------------------------------------------------------


def partition_for_key(key: str | bytes, partition_count: int) -> int:
    """rd_kafka_msg_partitioner_consistent: crc32 of the key bytes modulo the partition count (a str
    key is its UTF-8 bytes, as confluent-kafka encodes it)."""
    return zlib.crc32(key if isinstance(key, bytes) else key.encode()) % partition_count


def retry_backoff_ms(retries: int, base_ms: int, max_ms: int, jitter_percent: int) -> int:
    """Exponential backoff of rd_kafka_retry_msgq / rd_kafka_broker_buf_retry: base * 2^(retries-1),
    scaled by a jitter of 80..120 %, capped at retry.backoff.max.ms."""
    backoff = base_ms * (1 << min(retries - 1, 34)) if retries > 0 else base_ms
    return min(backoff * jitter_percent // 100, max_ms)


@frozen(kw_only=True)
class ProduceOutcome:
    """What rd_kafka_handle_Produce_error (+ the idempotent special cases) decides for one batch."""

    verdict: str  # "deliver" | "retry" | "fail"
    error: int = 0  # the delivery report error (0 for success)
    status: MsgStatus = MsgStatus.NOT_PERSISTED
    incr_retry: bool = True
    update_next_ack: bool = False
    update_next_err: bool = True
    drain_toppar: bool = False  # wait for this partition's in-flight requests before retrying
    bump: bool = False  # rd_kafka_idemp_drain_epoch_bump (abortable with bump when transactional)
    abortable: bool = False  # rd_kafka_txn_set_abortable_error
    fatal: int = 0  # a fatal error code (rd_kafka_idemp_set_fatal_error / txn fatal)


LOCAL_PRODUCE_ERRORS: dict[int, tuple[Reaction, bool]] = {
    # request timeout: RD_KAFKA_ERR_ACTION_RETRY | MSG_POSSIBLY_PERSISTED
    KafkaError._TIMED_OUT: (Reaction.RETRY, True),  # type: ignore[attr-defined]
    # connection closed: REFRESH | MSG_POSSIBLY_PERSISTED, and the retry counts ("we can't be certain the
    # request wasn't sent", rd_kafka_handle_Produce_error): a counted retry, possibly persisted
    KafkaError._TRANSPORT: (Reaction.RETRY, True),  # type: ignore[attr-defined]
    # purge(in_flight=True): permanent, possibly persisted (rd_kafka_err_action default list)
    KafkaError._PURGE_INFLIGHT: (Reaction.PERMANENT, True),  # type: ignore[attr-defined]
}


def produce_outcome(error: int, context: Context, *, pid_matches: bool, first_seq: int, next_ack_seq: int,
                    next_err_seq: int, first_retries: int, client: Client = Client.LIBRDKAFKA) -> ProduceOutcome:
    """The reaction to a failed ProduceRequest for one batch (``error`` is never NONE)."""
    if error in LOCAL_PRODUCE_ERRORS:
        reaction, possibly = LOCAL_PRODUCE_ERRORS[error]
        if reaction is Reaction.PERMANENT and context is not Context.PRODUCE:
            reaction = Reaction.ABORTABLE if context is Context.PRODUCE_TRANSACTIONAL else Reaction.PERMANENT_BUMP
    else:
        act = action(context, Errors(error), client)
        reaction, possibly = act.reaction, act.possibly_persisted
    status = MsgStatus.POSSIBLY_PERSISTED if possibly else MsgStatus.NOT_PERSISTED
    idempotent = context is not Context.PRODUCE
    transactional = context is Context.PRODUCE_TRANSACTIONAL
    if idempotent and not pid_matches:
        # "Don't retry if PID changed since we can't guarantee correctness across PID sessions."
        return ProduceOutcome(verdict="fail", error=error, status=MsgStatus.POSSIBLY_PERSISTED,
                              abortable=transactional, bump=not transactional)
    if reaction is Reaction.OK:  # DUPLICATE_SEQUENCE_NUMBER: delivered, without an offset
        return ProduceOutcome(verdict="deliver", status=MsgStatus.PERSISTED, update_next_ack=True)
    if reaction in (Reaction.RETRY, Reaction.REFRESH):
        incr = reaction is Reaction.RETRY
        return ProduceOutcome(verdict="retry", error=error, status=status if incr else MsgStatus.NOT_PERSISTED,
                              incr_retry=incr, drain_toppar=idempotent)
    if reaction is Reaction.SEQUENCE_RETRY:  # Java's TM.canRetry
        if first_seq != next_ack_seq:  # not the next batch: an earlier one failed, retry behind it
            return ProduceOutcome(verdict="retry", error=error, status=status, drain_toppar=True)
        # head of line, a real gap: TM.handleFailedBatch / canRetry
        reaction = Reaction.ABORTABLE_BUMP if transactional else Reaction.BUMP_RETRY
    if reaction is Reaction.BUMP_RETRY:  # the retry counts: batch.attempts() grows on every reenqueue
        return ProduceOutcome(verdict="retry", error=error, status=status, bump=True)
    if reaction is Reaction.SEQUENCE:
        gap = first_seq - next_ack_seq
        if gap > 0:  # a later request failed because an earlier one did: bump and retry, no retry counted
            return ProduceOutcome(verdict="retry", error=error, incr_retry=False, bump=True)
        # head of line (gap == 0: desynchronised) or a rewound sequence (gap < 0): fatal
        return ProduceOutcome(verdict="fail", error=error, status=MsgStatus.POSSIBLY_PERSISTED,
                              update_next_err=gap == 0, fatal=error)
    if reaction is Reaction.UNKNOWN_PID:
        if first_retries == 0 and next_err_seq == first_seq:  # nothing unacked before it: safe to bump
            return ProduceOutcome(verdict="retry", error=error, incr_retry=False, bump=True)
        return ProduceOutcome(verdict="fail", error=error, status=MsgStatus.POSSIBLY_PERSISTED, fatal=error)
    if reaction is Reaction.ABORTABLE_BUMP:  # transactional UNKNOWN_PRODUCER_ID; Java: any failed batch (TV1)
        return ProduceOutcome(verdict="fail", error=error, bump=True)
    if reaction is Reaction.FENCED:  # transactional INVALID_PRODUCER_EPOCH (librdkafka); PRODUCER_FENCED (Java)
        return ProduceOutcome(verdict="fail", error=error, status=status, fatal=normalize(error, client))
    if reaction is Reaction.ABORTABLE:
        return ProduceOutcome(verdict="fail", error=error, status=status, abortable=True)
    if reaction is Reaction.PERMANENT_BUMP:  # "message sequence gap": drain and bump the epoch
        return ProduceOutcome(verdict="fail", error=error, status=status, bump=True)
    return ProduceOutcome(verdict="fail", error=error, status=status)


# -- internal records -----------------------------------------------------------------------------


@define(eq=False)
class _Msg:
    tp: TP
    msgid: int
    key: str | None
    value: str | None
    timestamp: int
    timeout_at: int | None
    callback: Callable[[KafkaError | None, Message], Any] | None
    retries: int = 0
    status: MsgStatus = MsgStatus.NOT_PERSISTED
    backoff_until: int = 0
    last_msgid: int = 0  # set on a batch's first message once sent: a retry rebuilds the same batch


@define(eq=False)
class _Batch:
    tp: TP
    msgs: list[_Msg]
    pid: tuple[int, int]
    first_seq: int
    purged: bool = False
    reply: simpy.Event | None = None


@define(eq=False)
class _Partition:
    tp: TP
    queue: list[_Msg] = field(factory=list)
    inflight: list[_Batch] = field(factory=list)
    next_msgid: int = 1
    pid: tuple[int, int] = NO_PID  # the (pid, epoch) this partition's sequences belong to
    epoch_base_msgid: int = 0
    next_ack_seq: int = 0
    next_err_seq: int = 0
    acked_msgid: int = 0
    wait_drain: bool = False
    pending_txn: bool = False  # RD_KAFKA_TOPPAR_F_PEND_TXN
    in_txn: bool = False  # RD_KAFKA_TOPPAR_F_IN_TXN


@define(eq=False)
class _Api:
    """rk_eos.txn_curr_api: the API call in progress (possibly resumed after a timeout)."""

    name: str
    has_result: bool = False
    error: KafkaError | None = None
    wake: simpy.Event | None = None


class Producer(Handle):
    """confluent_kafka.Producer on the simulated cluster."""

    def __init__(self, config: dict[str, Any], *, cluster: Any, name: str) -> None:
        self.config: ProducerConfig = self._open("producer", config, cluster, name)
        self._partitioner = self._world.rng(f"{name}/partitioner")
        self._sticky: dict[str, tuple[int, int]] = {}  # topic -> (partition, chosen at)
        self._partitions: dict[TP, _Partition] = {}
        # The main queue: (message, error, offset) delivery reports, and the one fatal-error event.
        self._drs: list[tuple[_Msg, int, int] | None] = []
        self._dr_event: simpy.Event = self._env.event()
        self._outstanding = 0  # rd_kafka_outq_len: produced, delivery report not yet served
        self._flushing = 0
        self._serve_scheduled = False
        self._wakeups: set[int] = set()
        self._next_scan = 0
        self._fatal: KafkaError | None = None  # rk_fatal
        # idempotence (rk_eos)
        self._idempotent = self.config.enable_idempotence
        self._transactional_id = self.config.transactional_id
        self._idemp_state = IdempState.INIT
        self._pid: tuple[int, int] = NO_PID
        self._pid_timer_token = 0
        # transactions
        self._txn_state = TxnState.INIT
        self._txn_err = 0
        self._txn_errstr = ""
        self._txn_requires_epoch_bump = False
        self._txn_req_cnt = 0
        self._txn_dr_fails = 0
        self._txn_init_err = 0
        self._pending_tps: list[TP] = []  # txn_pending_rktps
        self._waitresp_tps: list[TP] = []  # txn_waitresp_rktps
        self._register_scheduled = False
        self._api: _Api | None = None
        if self._idempotent and self._transactional_id is None:
            # rd_kafka_idemp_init: a plain idempotent producer asks for a PID right away (500 ms timer)
            self._idemp_start(immediate=False)

    # == public API =================================================================================

    def produce(self, topic: str, value: str | None = None, key: str | None = None, partition: int = -1,
                on_delivery: Callable[[KafkaError | None, Message], Any] | None = None,
                callback: Callable[[KafkaError | None, Message], Any] | None = None) -> None:
        self._check_open()
        args = {"topic": topic, "key": key, "value": value, "partition": partition}
        try:
            self._produce(topic, value, key, partition, on_delivery or callback)
        except KafkaException as exc:
            self._op("produce", args, error=exc.args[0])
            raise
        self._op("produce", args, result=None)

    def poll(self, timeout: float = -1) -> simpy.Process:
        self._check_open()
        return self._blocking("poll", self._call("poll", {"timeout": timeout}, self._poll(_timeout_ms(timeout))))

    def flush(self, timeout: float = -1) -> simpy.Process:
        self._check_open()
        return self._blocking("flush", self._call("flush", {"timeout": timeout},
                                                  self._flush_api(_timeout_ms(timeout))))

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        self._check_open()
        self._purge(in_queue=in_queue, in_flight=in_flight, abort_txn=False)
        self._op("purge", {"in_queue": in_queue, "in_flight": in_flight}, result=None)

    def __len__(self) -> int:
        return 0 if self._crashed else self._outstanding  # Producer__len__: 0 without a handle

    def init_transactions(self, timeout: float = -1) -> simpy.Process:
        self._check_open()
        return self._blocking("init_transactions", self._call("init_transactions", {"timeout": timeout},
                                                              self._init_transactions(_timeout_ms(timeout))))

    def begin_transaction(self) -> None:
        self._check_open()
        error = self._begin_transaction()
        self._op("begin_transaction", {}, error=error, result=None)
        if error is not None:
            raise KafkaException(error)

    def send_offsets_to_transaction(self, positions: Iterable[TopicPartition], group_metadata: ConsumerGroupMetadata,
                                    timeout: float = -1) -> simpy.Process:
        self._check_open()
        positions = list(positions)
        args = {"offsets": [[str(p.model()), p.offset] for p in positions],
                "group_id": group_metadata.group_id if group_metadata else None, "timeout": timeout}
        return self._blocking("send_offsets_to_transaction", self._call("send_offsets_to_transaction", args,
                                                                        self._send_offsets(positions, group_metadata,
                                                                                           _timeout_ms(timeout))))

    def commit_transaction(self, timeout: float = -1) -> simpy.Process:
        self._check_open()
        return self._blocking("commit_transaction", self._call("commit_transaction", {"timeout": timeout},
                                                               self._commit_transaction(_timeout_ms(timeout))))

    def abort_transaction(self, timeout: float = -1) -> simpy.Process:
        self._check_open()
        return self._blocking("abort_transaction", self._call("abort_transaction", {"timeout": timeout},
                                                              self._abort_transaction(_timeout_ms(timeout))))

    def crash(self) -> None:
        """The process is killed (eosim._client.handle): nothing more is sent or called back; no flush,
        no EndTxn. The broker finds out through the transaction timeout."""
        if self._crashed:
            return
        self._crashed = True
        self._op("crash", {}, result=None)

    def _check_open(self) -> None:
        if self._crashed:
            raise RuntimeError("Producer has been closed")  # ERR_MSG_PRODUCER_CLOSED (confluent_kafka.h)
        self._check_yielded()

    # == trace ======================================================================================

    def _op(self, op: str, args: dict[str, Any], *, result: Any = None, error: KafkaError | None = None) -> None:
        if error is not None:
            extra = {} if result is None else {"result": result}  # a failed delivery keeps its status
            self._trace.emit(self.name, "client.op", op=op, args=args, error=error.name(), fatal=error.fatal(),
                             retriable=error.retriable(), txn_requires_abort=error.txn_requires_abort(), **extra)
        else:
            self._trace.emit(self.name, "client.op", op=op, args=args, result=result)

    def _call(self, op: str, args: dict[str, Any], body: Generator) -> Generator:
        """Run a blocking API body, trace its outcome, re-raise its KafkaException."""
        try:
            result = yield from body
        except KafkaException as exc:
            self._op(op, args, error=exc.args[0])
            raise
        self._op(op, args, result=result)
        return result

    # == produce ====================================================================================

    def _produce(self, topic: str, value: str | None, key: str | None, partition: int, callback: Any) -> None:
        # rd_kafka_check_produce: a fatal error, then the transactional state
        if self._fatal is not None:
            raise KafkaException(KafkaError(KafkaError._FATAL))  # type: ignore[attr-defined]
        if self._transactional_id is not None and self._txn_state is not TxnState.IN_TRANSACTION:
            raise KafkaException(KafkaError(KafkaError._STATE))  # type: ignore[attr-defined]
        count = self._cluster.topics.get(topic)
        if count is None:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_TOPIC))  # type: ignore[attr-defined]
        if partition < 0:
            partition = self._choose_partition(topic, key, count)
        if partition >= count:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION))  # type: ignore[attr-defined]
        tp = TP(topic, partition)
        part = self._partition(tp)
        now = self._env.now
        timeout = self.config.message_timeout_ms
        msg = _Msg(tp=tp, msgid=part.next_msgid, key=key, value=value, timestamp=now,
                   timeout_at=now + timeout if timeout else None, callback=callback)
        part.next_msgid += 1
        part.queue.append(msg)
        self._outstanding += 1
        if self._transactional_id is not None:
            self._txn_add_partition(part)
        self._wake_at(now + math.ceil(self.config.linger_ms))
        self._kick()

    def _choose_partition(self, topic: str, key: str | None, count: int) -> int:
        if key:  # consistent_random (librdkafka's default partitioner)
            return partition_for_key(key, count)
        # null or empty key: the sticky partition, re-drawn after sticky.partitioning.linger.ms
        # (rd_kafka_msg_sticky_partition)
        now = self._env.now
        sticky = self._sticky.get(topic)
        if sticky is None or now - sticky[1] >= STICKY_PARTITIONING_LINGER_MS:
            sticky = (self._partitioner.randrange(count), now)
            self._sticky[topic] = sticky
        return sticky[0]

    def _partition(self, tp: TP) -> _Partition:
        part = self._partitions.get(tp)
        if part is None:
            part = self._partitions[tp] = _Partition(tp=tp)
        return part

    def _inflight_total(self) -> int:
        return sum(len(p.inflight) for p in self._partitions.values())

    # == sender =====================================================================================

    def _kick(self) -> None:
        """Serve the partitions once, at the current time, after the running step."""
        if self._serve_scheduled:
            return
        self._serve_scheduled = True
        self._env.timeout(0).callbacks.append(self._alive(self._serve_now))

    def _serve_now(self, _event: object) -> None:
        self._serve_scheduled = False
        self._serve()

    def _wake_at(self, at: int) -> None:
        if at in self._wakeups:
            return
        self._wakeups.add(at)
        self._env.timeout(max(at - self._env.now, 0)).callbacks.append(self._alive(lambda _e: self._wakeup(at)))

    def _wakeup(self, at: int) -> None:
        self._wakeups.discard(at)
        self._serve()

    def _may_send(self) -> bool:
        if self._fatal is not None:
            return False
        if not self._idempotent:
            return True
        if self._idemp_state is not IdempState.ASSIGNED:
            return False
        # rd_kafka_txn_may_send_msg
        return self._transactional_id is None or self._txn_state in (TxnState.IN_TRANSACTION,
                                                                      TxnState.BEGIN_COMMIT)

    def _serve(self) -> None:
        """rd_kafka_broker_produce_toppars / rd_kafka_toppar_producer_serve, for every partition."""
        now = self._env.now
        if now >= self._next_scan and any(p.queue for p in self._partitions.values()):
            self._next_scan = now + TIMEOUT_SCAN_MS
            self._scan_timeouts(now)
        may_send = self._may_send()
        for tp in sorted(self._partitions):
            part = self._partitions[tp]
            if may_send and not self._leader_down():
                self._serve_partition(part, now)
        pending = [p for p in self._partitions.values() if p.queue]
        if pending:
            self._wake_at(self._next_scan)

    def _scan_timeouts(self, now: int) -> None:
        """rd_kafka_broker_toppar_msgq_scan: queued messages past message.timeout.ms fail with
        _MSG_TIMED_OUT; an idempotent producer then drains and bumps its epoch to close the gap."""
        timed_out = 0
        for tp in sorted(self._partitions):
            part = self._partitions[tp]
            expired = [m for m in part.queue if m.timeout_at is not None and m.timeout_at <= now]
            if not expired:
                continue
            part.queue = [m for m in part.queue if m not in expired]
            timed_out += len(expired)
            for msg in expired:
                self._deliver(msg, KafkaError._MSG_TIMED_OUT, -1)  # type: ignore[attr-defined]
        if timed_out and self._idempotent and self._pid != NO_PID:
            self._drain_epoch_bump(KafkaError._TIMED_OUT, allow_txn_abort=True)  # type: ignore[attr-defined]

    def _serve_partition(self, part: _Partition, now: int) -> None:
        if self._transactional_id is not None and not part.in_txn:
            return  # not registered with the transaction yet
        if not part.queue:
            return
        max_requests = self.config.max_in_flight_requests_per_connection - self._inflight_total()
        if self._idempotent:
            if part.pid != self._pid:
                if part.inflight:
                    return  # rd_kafka_toppar_pid_change: wait for the old epoch's requests
                # new (pid, epoch): sequences restart at 0 from the first queued message
                part.pid = self._pid
                part.epoch_base_msgid = part.queue[0].msgid
                part.next_ack_seq = part.next_err_seq = 0
            if part.wait_drain:
                if part.inflight:
                    return
                part.wait_drain = False
            window = RESEND_IN_FLIGHT[self._client] if part.queue[0].last_msgid else IDEMP_MAX_INFLIGHT
            max_requests = min(max_requests, window - len(part.inflight))
        # linger: the first message waited linger.ms, or a full batch, or the app is flushing
        first = part.queue[0]
        ready = (self._flushing > 0 or now >= first.timestamp + math.ceil(self.config.linger_ms)
                 or len(part.queue) >= self.config.batch_num_messages)
        while ready and max_requests > 0 and part.queue and not self._leader_down():
            batch = self._make_batch(part, now)
            if batch is None:
                break
            self._send_batch(part, batch)
            max_requests -= 1

    def _make_batch(self, part: _Partition, now: int) -> _Batch | None:
        first = part.queue[0]
        if first.backoff_until > now:
            self._wake_at(first.backoff_until)
            return None
        limit = self.config.batch_num_messages
        msgs = []
        for msg in part.queue:
            if len(msgs) == limit or (msgs and msg.backoff_until > now):
                break
            msgs.append(msg)
            if first.last_msgid and msg.msgid == first.last_msgid:
                break  # a retry is rebuilt with exactly the same messages (same sequence range)
        first.last_msgid = msgs[-1].msgid
        del part.queue[:len(msgs)]
        first_seq = (first.msgid - part.epoch_base_msgid) % (MAX_SEQUENCE + 1) if self._idempotent else -1
        return _Batch(tp=part.tp, msgs=msgs, pid=part.pid if self._idempotent else NO_PID, first_seq=first_seq)

    def _send_batch(self, part: _Partition, batch: _Batch) -> None:
        part.inflight.append(batch)
        records = tuple(Record(m.key, m.value, m.timestamp) for m in batch.msgs)
        record_batch = RecordBatch(records=records, producer_id=batch.pid[0], producer_epoch=batch.pid[1],
                                   base_sequence=batch.first_seq, is_transactional=self._transactional_id is not None)
        request = ProduceRequest(transactional_id=self._transactional_id, acks=self.config.acks,
                                 batches=((part.tp, record_batch),))
        # rd_kafka_ProduceRequest: the first message's remaining message.timeout.ms (100 ms if already
        # expired), capped by socket.timeout.ms (rd_kafka_buf_calc_timeout)
        timeout = self.config.socket_timeout_ms
        first = batch.msgs[0]
        if first.timeout_at is not None:
            remaining = first.timeout_at - self._env.now
            timeout = min(timeout, remaining if remaining > 0 else 100)
        reply = batch.reply = self._request(request, timeout, LEADER)
        if self.config.acks == 0:  # no response expected: delivered once sent
            part.inflight.remove(batch)
            for msg in batch.msgs:
                self._deliver(msg, 0, -1)
            return
        reply.callbacks.append(self._alive(lambda e: self._on_produce_reply(part, batch, e.value)))

    def _leader_down(self) -> bool:
        """The leader connection failed under a request (DISCONNECTED) and the client has not handled that yet:
        librdkafka's broker thread is then DOWN, rd_kafka_broker_fail failed every request queued or waiting on
        it with _TRANSPORT, and nothing more is sent before that is handled; a later batch must not overtake
        the failed ones on a fresh connection."""
        return any(b.reply is not None and b.reply.triggered and not b.reply.processed
                   and b.reply.value is DISCONNECTED for p in self._partitions.values() for b in p.inflight)

    def _request(self, payload: Any, timeout_ms: int, connection: str) -> simpy.Event:
        """Send on one of the handle's connections (eosim._client.handle: the leader's or a coordinator's)."""
        return self._cluster.network.request(self.name + connection, self._cluster.broker, payload, timeout_ms)

    def _context(self) -> Context:
        if self._transactional_id is not None:
            return Context.PRODUCE_TRANSACTIONAL
        return Context.PRODUCE_IDEMPOTENT if self._idempotent else Context.PRODUCE

    def _on_produce_reply(self, part: _Partition, batch: _Batch, reply: Any) -> None:
        part.inflight.remove(batch)
        if batch.purged:
            pass  # purge(in_flight=True) already reported these messages
        elif isinstance(reply, Failure):
            self._produce_failed(part, batch, failure_code(reply))
        else:
            assert isinstance(reply, ProduceResponse)
            response = reply.responses[0]
            if response.error is Errors.NONE:
                self._produce_succeeded(part, batch, response.base_offset)
            else:
                self._produce_failed(part, batch, int(response.error))
        if not part.inflight:
            self._check_drain_done()
        self._kick()

    def _produce_succeeded(self, part: _Partition, batch: _Batch, base_offset: int) -> None:
        if self._idempotent:
            self._idempotent_success(part, batch)
        for i, msg in enumerate(batch.msgs):
            msg.status = MsgStatus.PERSISTED
            self._deliver(msg, 0, base_offset + i if base_offset >= 0 else -1)

    def _idempotent_success(self, part: _Partition, batch: _Batch) -> None:
        """rd_kafka_handle_idempotent_Produce_success."""
        first_msgid, last_msgid = batch.msgs[0].msgid, batch.msgs[-1].msgid
        next_seq = increment_sequence(batch.first_seq, len(batch.msgs))
        if part.acked_msgid < first_msgid - 1:
            # an earlier request failed with an uncertain status but this later one succeeded, so the
            # earlier messages were persisted too (rd_kafka_dr_implicit_ack)
            acked = [m for m in part.queue if m.msgid <= last_msgid]
            part.queue = [m for m in part.queue if m.msgid > last_msgid]
            for msg in acked:
                msg.status = MsgStatus.PERSISTED
                self._deliver(msg, 0, -1)
        elif batch.first_seq != part.next_ack_seq and batch.first_seq == part.next_err_seq:
            self._set_fatal(KafkaError._INCONSISTENT,  # type: ignore[attr-defined]
                            f"ProduceRequest for {part.tp} succeeded when expecting failure")
            part.next_err_seq = next_seq
            part.acked_msgid = max(part.acked_msgid, last_msgid)
            return
        if part.next_err_seq == part.next_ack_seq:
            part.next_err_seq = next_seq
        part.next_ack_seq = next_seq
        part.acked_msgid = max(part.acked_msgid, last_msgid)

    def _produce_failed(self, part: _Partition, batch: _Batch, error: int) -> None:
        outcome = produce_outcome(error, self._context(), pid_matches=batch.pid == part.pid or not self._idempotent,
                                  first_seq=batch.first_seq, next_ack_seq=part.next_ack_seq,
                                  next_err_seq=part.next_err_seq, first_retries=batch.msgs[0].retries,
                                  client=self._client)
        next_seq = increment_sequence(batch.first_seq, len(batch.msgs)) if self._idempotent else 0
        if self._idempotent:
            if outcome.update_next_ack:
                part.next_ack_seq = next_seq
            if outcome.update_next_err:
                part.next_err_seq = next_seq
        if outcome.fatal:
            self._set_fatal(outcome.fatal, f"ProduceRequest for {part.tp} failed: {KafkaError(error).name()}")
        if outcome.bump:
            self._drain_epoch_bump(error, allow_txn_abort=True)
        if outcome.abortable:
            self._set_abortable(error, f"ProduceRequest for {part.tp} failed: {KafkaError(error).name()}")
        if outcome.verdict == "deliver":
            if self._idempotent:
                self._idempotent_success(part, batch)
            for msg in batch.msgs:
                msg.status = MsgStatus.PERSISTED
                self._deliver(msg, 0, -1)
            return
        if outcome.verdict == "retry":
            if outcome.drain_toppar:
                part.wait_drain = True
            self._retry(part, batch, outcome)
            return
        dr_error = KafkaError._MSG_TIMED_OUT if error == KafkaError._TIMED_OUT else outcome.error  # type: ignore[attr-defined]
        for msg in batch.msgs:
            msg.status = outcome.status
            self._deliver(msg, dr_error, -1)

    def _retry(self, part: _Partition, batch: _Batch, outcome: ProduceOutcome) -> None:
        """rd_kafka_toppar_retry_msgq: back on the queue in msgid order with an exponential backoff."""
        now = self._env.now
        jitter = self._jitter.randint(100 - RETRY_JITTER_PERCENT, 100 + RETRY_JITTER_PERCENT)
        retryable = []
        for msg in batch.msgs:
            if msg.retries + outcome.incr_retry > self.config.retries:
                # out of retries: a request timeout surfaces as _MSG_TIMED_OUT
                msg.status = outcome.status
                self._deliver(msg, KafkaError._MSG_TIMED_OUT if outcome.error == KafkaError._TIMED_OUT  # type: ignore[attr-defined]
                              else outcome.error, -1)
                continue
            msg.retries += outcome.incr_retry
            msg.backoff_until = now + retry_backoff_ms(msg.retries, self.config.retry_backoff_ms,
                                                       self.config.retry_backoff_max_ms, jitter)
            # never downgrade a possibly-persisted message to not-persisted
            if not (outcome.status is MsgStatus.NOT_PERSISTED and msg.status is not MsgStatus.NOT_PERSISTED):
                msg.status = outcome.status
            retryable.append(msg)
        part.queue = sorted(part.queue + retryable, key=lambda m: m.msgid)
        if retryable:
            self._wake_at(retryable[0].backoff_until)

    # == delivery reports ===========================================================================

    def _deliver(self, msg: _Msg, error: int, offset: int) -> None:
        """Queue a delivery report (rd_kafka_dr_msgq); callbacks run in poll()/flush()."""
        if error and self._transactional_id is not None:
            self._txn_dr_fails += 1
        self._drs.append((msg, error, offset))
        if not self._dr_event.triggered:
            self._dr_event.succeed()

    def _serve_drs(self) -> int:
        """Serve the main queue in order. The fatal-error event (None; rd_kafka_set_fatal_error0 queues
        it once) is raised as a KafkaException by confluent-kafka's error_cb instead of reaching the
        user's error_cb, and serving stops there: the reports behind it wait for a later poll
        (confluent_kafka.c error_cb, CallState crash)."""
        served = 0
        while self._drs:
            entry = self._drs.pop(0)
            if entry is None:
                raise KafkaException(self._fatal)
            msg, error, offset = entry
            self._outstanding -= 1
            served += 1
            err = KafkaError(error) if error else None
            timestamp = (TIMESTAMP_CREATE_TIME, msg.timestamp)
            message = Message(msg.tp.topic, msg.tp.partition, offset if offset >= 0 else -1001, msg.key,
                              msg.value, err, timestamp)
            self._op("delivery", {"topic": msg.tp.topic, "key": msg.key, "value": msg.value},
                     error=err, result={"partition": msg.tp.partition, "offset": message.offset(),
                                        "status": msg.status.name})
            if msg.callback is not None:
                msg.callback(err, message)
        return served

    def _dr_wait(self) -> simpy.Event:
        if self._dr_event.triggered:
            self._dr_event = self._env.event()
        return self._dr_event

    def _poll(self, timeout_ms: int | None) -> Generator:
        served = self._serve_drs()
        deadline = None if timeout_ms is None else self._env.now + timeout_ms
        while not served and (deadline is None or self._env.now < deadline):
            waits = [self._dr_wait()]
            if deadline is not None:
                waits.append(self._env.timeout(deadline - self._env.now))
            yield self._env.any_of(waits)
            served = self._serve_drs()
        return served

    def _flush(self, timeout_ms: int | None) -> Generator:
        """rd_kafka_flush: linger is bypassed; serve delivery reports until nothing is outstanding.
        Returns True when everything was delivered in time."""
        self._flushing += 1
        self._kick()
        deadline = None if timeout_ms is None else self._env.now + timeout_ms
        try:
            while True:
                self._serve_drs()
                if self._outstanding == 0:
                    return True
                if deadline is not None and self._env.now >= deadline:
                    return False
                waits = [self._dr_wait()]
                if deadline is not None:
                    waits.append(self._env.timeout(deadline - self._env.now))
                yield self._env.any_of(waits)
        finally:
            self._flushing -= 1

    def _flush_api(self, timeout_ms: int | None) -> Generator:
        """Producer.flush(). Unlike poll, it does not stop at the fatal-error event: it serves the
        reports queued behind it (a fenced produce's INVALID_PRODUCER_EPOCH) until nothing is
        outstanding or the timeout, then raises the fatal error (measured with confluent-kafka 2.16.1 on
        Kafka 4.1.2: the fenced record's report arrives in the flush that raises _FENCED)."""
        deadline = None if timeout_ms is None else self._env.now + timeout_ms
        try:
            yield from self._flush(timeout_ms)
        except KafkaException:
            yield from self._flush(None if deadline is None else max(deadline - self._env.now, 0))
            raise
        return self._outstanding

    def _purge(self, *, in_queue: bool, in_flight: bool, abort_txn: bool) -> None:
        """rd_kafka_purge: queued messages fail with _PURGE_QUEUE, in-flight ones with _PURGE_INFLIGHT
        (their responses are then ignored). An aborted transaction's purge moves the epoch base msgid
        past the purged messages so the sequence has no gap (rd_kafka_toppar_purge_queues)."""
        for tp in sorted(self._partitions):
            part = self._partitions[tp]
            if in_flight:
                for batch in part.inflight:
                    if not batch.purged:
                        batch.purged = True
                        self._batch_purged(part, batch)
            if in_queue and part.queue:
                purged, part.queue = part.queue, []
                if abort_txn:
                    part.epoch_base_msgid += len(purged)
                for msg in purged:
                    self._deliver(msg, KafkaError._PURGE_QUEUE, -1)  # type: ignore[attr-defined]

    def _batch_purged(self, part: _Partition, batch: _Batch) -> None:
        outcome = produce_outcome(KafkaError._PURGE_INFLIGHT, self._context(), pid_matches=True,  # type: ignore[attr-defined]
                                  first_seq=batch.first_seq, next_ack_seq=part.next_ack_seq,
                                  next_err_seq=part.next_err_seq, first_retries=batch.msgs[0].retries,
                                  client=self._client)
        if outcome.bump:
            self._drain_epoch_bump(outcome.error, allow_txn_abort=True)
        if outcome.abortable:
            self._set_abortable(outcome.error, f"ProduceRequest for {part.tp} purged in flight")
        for msg in batch.msgs:
            msg.status = outcome.status
            self._deliver(msg, outcome.error, -1)

    # == fatal errors ================================================================================

    def _set_fatal(self, code: int, reason: str) -> None:
        """rd_kafka_set_fatal_error0 (+ rd_kafka_txn_set_fatal_error): the first fatal error wins."""
        if self._fatal is None:
            self._fatal = KafkaError(code, reason, fatal=True)
            self._drs.append(None)
            if not self._dr_event.triggered:
                self._dr_event.succeed()
        if self._transactional_id is not None:
            self._txn_err = code
            self._txn_errstr = reason
            self._txn_set_state(TxnState.FATAL_ERROR)
            self._api_set_result(KafkaError(code, reason, fatal=True))
        self._idemp_state = IdempState.FATAL_ERROR

    # == idempotence FSM (rdkafka_idempotence.c) ====================================================

    def _idemp_set_state(self, state: IdempState) -> None:
        if self._idemp_state is state:
            return
        if self._fatal is not None and state not in (IdempState.FATAL_ERROR, IdempState.DRAIN_RESET,
                                                      IdempState.DRAIN_BUMP):
            state = IdempState.FATAL_ERROR  # "Denying state change since a fatal error has been raised"
        self._idemp_state = state
        if self._transactional_id is not None:
            self._txn_idemp_state_change(state)

    def _idemp_start(self, *, immediate: bool) -> None:
        if self._idemp_state is not IdempState.WAIT_PID:
            self._idemp_set_state(IdempState.REQ_PID)
        self._pid_timer(0 if immediate else PID_RETRY_MS)

    def _pid_timer(self, delay_ms: int) -> None:
        """rd_kafka_idemp_pid_timer_restart: a restarted timer replaces the pending one."""
        self._pid_timer_token += 1
        token = self._pid_timer_token
        self._env.timeout(delay_ms).callbacks.append(
            self._alive(lambda _e: self._pid_fsm() if token == self._pid_timer_token else None))

    def _pid_fsm(self) -> None:
        """rd_kafka_idemp_pid_fsm: in REQ_PID send InitProducerId (the coordinator lookup is not modelled:
        the single broker is the coordinator). A transactional producer with a valid PID asks for a bump
        (KIP-360: the current pid/epoch in the request)."""
        if self._fatal is not None or self._idemp_state is not IdempState.REQ_PID:
            return
        if self._transactional_id is not None:
            request = InitProducerIdRequest(transactional_id=self._transactional_id,
                                            transaction_timeout_ms=self.config.transaction_timeout_ms,
                                            producer_id=self._pid[0], producer_epoch=self._pid[1],
                                            api_version=self._api_version("InitProducerId"))
        else:
            request = InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=-1,
                                            api_version=self._api_version("InitProducerId"))
        self._idemp_set_state(IdempState.WAIT_PID)
        # "Let the idempotence state handler perform retries": no request-level retries. The
        # transactional producer asks its TxnCoordinator, the idempotent one any broker.
        connection = LEADER if self._transactional_id is None else TXN_COORDINATOR
        self._request(request, self.config.socket_timeout_ms, connection).callbacks.append(
            self._alive(lambda e: self._on_init_producer_id(e.value)))

    def _on_init_producer_id(self, reply: Any) -> None:
        error = failure_code(reply) if isinstance(reply, Failure) else int(reply.error)
        if error:
            self._pid_request_failed(error)
            return
        if self._idemp_state is not IdempState.WAIT_PID:
            return  # "Ignoring InitProduceId response in state ..."
        self._adopt_pid((reply.producer_id, reply.producer_epoch))
        self._idemp_set_state(IdempState.ASSIGNED)
        self._kick()

    def _adopt_pid(self, pid: tuple[int, int]) -> None:
        self._pid = pid
        self._trace.emit(self.name, "client.pid", transactional_id=self._transactional_id, producer_id=pid[0],
                         producer_epoch=pid[1])

    def _pid_request_failed(self, error: int) -> None:
        """rd_kafka_idemp_request_pid_failed: fatal and fencing errors stop the producer, anything else
        is retried by the PID timer after 500 ms (and remembered for init_transactions' timeout)."""
        reaction = (action(Context.INIT_PRODUCER_ID, Errors(error), self._client).reaction if error >= -1
                    else Reaction.RETRY)
        if reaction in (Reaction.FATAL, Reaction.FENCED):
            code = normalize(error, self._client) if reaction is Reaction.FENCED else error
            self._set_fatal(code, f"Failed to acquire PID: {KafkaError(error).name()}")
            return
        self._txn_init_err = error
        self._idemp_set_state(IdempState.REQ_PID)
        self._pid_timer(PID_RETRY_MS)

    def _drain_epoch_bump(self, error: int, *, allow_txn_abort: bool) -> None:
        """rd_kafka_idemp_drain_epoch_bump0: a transactional producer first fails the transaction (the
        bump happens in abort_transaction); otherwise wait for all in-flight requests, then bump."""
        if allow_txn_abort and self._transactional_id is not None:
            self._idemp_set_state(IdempState.WAIT_TXN_ABORT)
            self._set_abortable(error, f"epoch bump required: {KafkaError(error).name()}", requires_bump=True)
            return
        self._idemp_set_state(IdempState.DRAIN_BUMP)
        self._check_drain_done()

    def _check_drain_done(self) -> None:
        """rd_kafka_idemp_drain_done, once no partition has a request in flight."""
        if self._inflight_total() or self._idemp_state is not IdempState.DRAIN_BUMP or self._pid == NO_PID:
            return
        if self._transactional_id is not None:
            # the coordinator bumps the epoch: InitProducerId with the current pid/epoch
            self._idemp_set_state(IdempState.REQ_PID)
            self._pid_timer(0)
        else:
            self._adopt_pid((self._pid[0], self._pid[1] + 1))  # rd_kafka_pid_bump: local
            self._idemp_set_state(IdempState.ASSIGNED)
            self._kick()

    # == transaction manager (rdkafka_txnmgr.c) ======================================================

    def _txn_set_state(self, state: TxnState) -> None:
        current = self._txn_state
        if current is state:
            return
        if state is TxnState.ABORTABLE_ERROR and current in ABORTABLE_IGNORED_IN:
            return
        self._txn_state = txn_transition(current, state)

    def _require_states(self, *states: TxnState) -> KafkaError | None:
        """rd_kafka_txn_require_states0."""
        if self._transactional_id is None:
            return KafkaError(KafkaError._NOT_CONFIGURED)  # type: ignore[attr-defined]
        if self._txn_state in states:
            return None
        if self._txn_state is TxnState.FATAL_ERROR:
            return KafkaError(self._txn_err, self._txn_errstr, fatal=True)
        if self._txn_state is TxnState.ABORTABLE_ERROR:
            return KafkaError(self._txn_err, self._txn_errstr, txn_requires_abort=True)
        return KafkaError(KafkaError._STATE, f"Operation not valid in state {self._txn_state.value}")  # type: ignore[attr-defined]

    def _set_abortable(self, code: int, reason: str, *, requires_bump: bool = False) -> None:
        """rd_kafka_txn_set_abortable_error0: the first abortable error of the transaction sticks; the
        queued messages are purged."""
        if self._fatal is not None or self._transactional_id is None:
            return
        if requires_bump:
            self._txn_requires_epoch_bump = True
        if self._txn_err:
            return
        self._txn_err = code
        self._txn_errstr = reason
        self._txn_set_state(TxnState.ABORTABLE_ERROR)
        # rd_kafka_purge(QUEUE | ABORT_TXN | NON_BLOCKING): the broker thread purges its queues when it
        # serves the purge op, after the response being handled re-queued its retries, so they go too.
        self._env.timeout(0).callbacks.append(
            self._alive(lambda _e: self._purge(in_queue=True, in_flight=False, abort_txn=True)))

    def _txn_idemp_state_change(self, state: IdempState) -> None:
        """rd_kafka_txn_idemp_state_change."""
        if state is IdempState.ASSIGNED and self._txn_state is TxnState.WAIT_PID:
            self._txn_set_state(TxnState.READY_NOT_ACKED)
            self._api_set_result(None)
        elif state is IdempState.ASSIGNED and self._txn_state in (TxnState.BEGIN_ABORT,
                                                                  TxnState.ABORTING_TRANSACTION):
            self._txn_set_state(TxnState.ABORT_NOT_ACKED)
            self._api_set_result(None)
        elif state is IdempState.FATAL_ERROR and self._txn_state is not TxnState.FATAL_ERROR:
            self._txn_set_state(TxnState.FATAL_ERROR)

    # -- the current API call (txn_curr_api) ------------------------------------------------------

    def _api_begin(self, name: str) -> KafkaError | None:
        """rd_kafka_txn_curr_api_begin: another API in progress is a retriable _CONFLICT; the same API
        resumes the call that timed out."""
        if self._transactional_id is None:
            return KafkaError(KafkaError._NOT_CONFIGURED)  # type: ignore[attr-defined]
        if self._api is not None and self._api.name != name:
            return KafkaError(KafkaError._CONFLICT, f"Conflicting {self._api.name} API call is already in progress",  # type: ignore[attr-defined]
                              retriable=True)
        if self._api is None:
            self._api = _Api(name=name)
        return None

    def _api_return(self, error: KafkaError | None, *, resumable: bool) -> None:
        """rd_kafka_txn_curr_api_return: keep the call resumable only for a retriable error."""
        if not resumable or (error is not None and not error.retriable()):
            self._api = None
        if error is not None:
            raise KafkaException(error)

    def _api_set_result(self, error: KafkaError | None) -> None:
        """rd_kafka_txn_curr_api_set_result: the first result sticks until the call collects it."""
        api = self._api
        if api is None:
            return
        if api.has_result and api.error is not None:
            return
        api.has_result = True
        api.error = error
        if api.wake is not None and not api.wake.triggered:
            api.wake.succeed()

    def _op_req(self, handler: Callable[[], None], deadline: int | None) -> Generator:
        """rd_kafka_txn_op_req0: run ``handler`` (the main-thread op) unless a result is already
        waiting, then wait for the result; no result in time is a retriable _TIMED_OUT."""
        api = self._api
        assert api is not None
        if not api.has_result:
            api.wake = self._env.event()
            handler()
            if not api.has_result:
                waits = [api.wake]
                if deadline is not None:
                    waits.append(self._env.timeout(max(deadline - self._env.now, 0)))
                yield self._env.any_of(waits)
        if not api.has_result:
            return KafkaError(KafkaError._TIMED_OUT, "Timed out waiting for operation to finish, retry call to resume",  # type: ignore[attr-defined]
                              retriable=True)
        api.has_result = False
        error, api.error = api.error, None
        return error

    def _deadline(self, timeout_ms: int | None) -> int | None:
        return None if timeout_ms is None else self._env.now + timeout_ms

    # -- init_transactions ----------------------------------------------------------------------------

    def _init_transactions(self, timeout_ms: int | None) -> Generator:
        if timeout_ms is None:  # capped at 2 * transaction.timeout.ms: no coordinator times us out yet
            timeout_ms = self.config.transaction_timeout_ms * 2
        error = self._api_begin("init_transactions")
        if error is not None:
            raise KafkaException(error)
        error = yield from self._op_req(self._op_init_transactions, self._deadline(timeout_ms))
        if error is not None:
            if error.code() == KafkaError._TIMED_OUT and self._txn_init_err:  # type: ignore[attr-defined]
                code = normalize(self._txn_init_err, self._client)
                if code != KafkaError._TIMED_OUT:  # type: ignore[attr-defined]
                    error = KafkaError(code, f"Failed to initialize Producer ID: {KafkaError(code).name()}",
                                       retriable=True)
            self._api_return(error, resumable=True)
        error = yield from self._op_req(self._op_ack_init_transactions, None)
        self._api_return(error, resumable=False)

    def _op_init_transactions(self) -> None:
        error = self._require_states(TxnState.INIT, TxnState.WAIT_PID, TxnState.READY_NOT_ACKED)
        if error is not None:
            self._api_set_result(error)
        elif self._txn_state is not TxnState.READY_NOT_ACKED:
            self._txn_set_state(TxnState.WAIT_PID)
            self._txn_init_err = 0
            self._idemp_start(immediate=True)

    def _op_ack_init_transactions(self) -> None:
        error = self._require_states(TxnState.READY_NOT_ACKED)
        if error is None:
            self._txn_set_state(TxnState.READY)
        self._api_set_result(error)

    # -- begin_transaction ----------------------------------------------------------------------------

    def _begin_transaction(self) -> KafkaError | None:
        error = self._api_begin("begin_transaction")
        if error is not None:
            return error
        error = self._require_states(TxnState.READY)
        if error is None:
            self._txn_set_state(TxnState.IN_TRANSACTION)
            self._txn_dr_fails = 0
            self._txn_err = 0
            self._txn_errstr = ""
            self._kick()
        self._api = None
        return error

    # -- partition registration (AddPartitionsToTxn) ------------------------------------------------

    def _txn_add_partition(self, part: _Partition) -> None:
        """rd_kafka_txn_add_partition: pending until AddPartitionsToTxn registers it."""
        if part.pending_txn or part.in_txn:
            return
        part.pending_txn = True
        schedule = not self._pending_tps
        self._pending_tps = sorted(self._pending_tps + [part.tp])
        if schedule:
            self._schedule_register(0)

    def _schedule_register(self, backoff_ms: int) -> None:
        if self._register_scheduled:
            return  # rd_kafka_timer_start_oneshot(.., restart=false)
        self._register_scheduled = True

        def fire(_e: object) -> None:
            self._register_scheduled = False
            self._register_partitions()
        self._env.timeout(backoff_ms).callbacks.append(self._alive(fire))

    def _register_partitions(self) -> None:
        """rd_kafka_txn_register_partitions: one AddPartitionsToTxn at a time."""
        if self._require_states(TxnState.IN_TRANSACTION, TxnState.BEGIN_COMMIT) is not None:
            return
        if not self._pending_tps or self._waitresp_tps or self._idemp_state is not IdempState.ASSIGNED:
            return
        self._waitresp_tps, self._pending_tps = self._pending_tps, []
        self._txn_req_cnt += 1
        request = AddPartitionsToTxnRequest(transactional_id=self._transactional_id, producer_id=self._pid[0],
                                            producer_epoch=self._pid[1], partitions=tuple(self._waitresp_tps),
                                            api_version=self._api_version("AddPartitionsToTxn"))
        self._request(request, self.config.socket_timeout_ms, TXN_COORDINATOR).callbacks.append(
            self._alive(lambda e: self._on_add_partitions(e.value)))

    def _on_add_partitions(self, reply: Any) -> None:
        """rd_kafka_txn_handle_AddPartitionsToTxn."""
        error = 0
        reaction: Reaction | None = None
        backoff = 500
        if isinstance(reply, Failure):
            error = failure_code(reply)
        elif self._txn_state not in (TxnState.IN_TRANSACTION, TxnState.BEGIN_COMMIT):
            # "Ignoring outdated AddPartitionsToTxn response": the transaction was aborted meanwhile
            self._txn_req_cnt -= 1
            return
        else:
            for tp, code in reply.results:
                if code is Errors.NONE:
                    self._waitresp_tps.remove(tp)
                    part = self._partitions[tp]
                    part.pending_txn, part.in_txn = False, True
                    continue
                act = action(Context.ADD_PARTITIONS, code, self._client)
                if reaction is None or _SEVERITY[act.reaction] > _SEVERITY[reaction]:
                    reaction = act.reaction
                # OPERATION_NOT_ATTEMPTED only names the error when nothing else did
                if code is not Errors.OPERATION_NOT_ATTEMPTED or not error:
                    error = int(code)
                if act.backoff_ms is not None:
                    backoff = act.backoff_ms
                if act.reaction in (Reaction.REFRESH, Reaction.RETRY, Reaction.FENCED, Reaction.FATAL,
                                    Reaction.ABORTABLE_BUMP):
                    break  # request-level errors: the rest of the partitions carry the same one
        if error:
            self._txn_req_cnt -= 1
        if isinstance(reply, Failure):
            # "we can't be sure if the request was received": count it so abort sends EndTxn
            self._txn_req_cnt += 1
            reaction = Reaction.RETRY
        # failed partitions go back to the pending list for the next request
        self._pending_tps = sorted(self._pending_tps + self._waitresp_tps)
        self._waitresp_tps = []
        reason = f"Failed to add partitions to transaction: {KafkaError(error).name()}"
        if reaction in (Reaction.FATAL, Reaction.FENCED):
            code = normalize(error, self._client)
            self._set_fatal(code, reason)
        elif reaction is Reaction.ABORTABLE_BUMP:
            self._drain_epoch_bump(normalize(error, self._client), allow_txn_abort=True)
        elif reaction is Reaction.ABORTABLE:
            self._set_abortable(normalize(error, self._client), reason)
        else:
            self._schedule_register(backoff if reaction is not None else 0)
            self._kick()

    # -- send_offsets_to_transaction ----------------------------------------------------------------

    def _send_offsets(self, positions: list[TopicPartition], group_metadata: ConsumerGroupMetadata | None,
                      timeout_ms: int | None) -> Generator:
        if group_metadata is None:
            raise KafkaException(KafkaError(KafkaError._INVALID_ARG,  # type: ignore[attr-defined]
                                            "cgmetadata and offsets are required parameters"))
        error = self._api_begin("send_offsets_to_transaction")
        if error is not None:
            raise KafkaException(error)
        # capped to the transaction timeout (rd_kafka_txn_current_timeout)
        cap = self.config.transaction_timeout_ms
        deadline = self._env.now + (cap if timeout_ms is None else min(timeout_ms, cap))
        offsets = sorted((p for p in positions if p.offset >= 0), key=lambda p: (p.topic, p.partition))
        if not offsets:
            # "No valid offsets, e.g., nothing was consumed, this is not an error, do nothing."
            self._api_return(None, resumable=False)
            return None
        error = yield from self._op_req(lambda: self._op_send_offsets(offsets, group_metadata, deadline), None)
        self._api_return(error, resumable=False)

    def _op_send_offsets(self, offsets: list[TopicPartition], cgmd: ConsumerGroupMetadata, deadline: int) -> None:
        error = self._require_states(TxnState.IN_TRANSACTION)
        if error is not None:
            self._api_set_result(error)
            return
        self._txn_req_cnt += 1
        request = AddOffsetsToTxnRequest(transactional_id=self._transactional_id, producer_id=self._pid[0],
                                         producer_epoch=self._pid[1], group_id=cgmd.group_id,
                                         api_version=self._api_version("AddOffsetsToTxn"))
        self._spawn(self._add_offsets(request, offsets, cgmd, deadline))

    def _add_offsets(self, request: AddOffsetsToTxnRequest, offsets: list[TopicPartition],
                     cgmd: ConsumerGroupMetadata, deadline: int) -> Generator:
        """AddOffsetsToTxn to the transaction coordinator, then TxnOffsetCommit to the group coordinator
        (rd_kafka_txn_handle_AddOffsetsToTxn, rd_kafka_txn_handle_TxnOffsetCommit)."""
        retries = 0
        while True:
            reply = yield self._request(request, self.config.socket_timeout_ms, TXN_COORDINATOR)
            if isinstance(reply, Failure):
                code, reaction = failure_code(reply), Reaction.REFRESH
            else:
                error = reply.error
                code = int(error)
                reaction = None if error is Errors.NONE else action(Context.ADD_OFFSETS, error, self._client).reaction
            if code:
                self._txn_req_cnt -= 1
            if not code and self._env.now >= deadline:
                # succeeded too late: a retriable _TIMED_OUT, the transaction stays usable
                code, reaction = int(KafkaError._TIMED_OUT), Reaction.REFRESH  # type: ignore[attr-defined]
            if reaction in (Reaction.RETRY, Reaction.REFRESH) and self._env.now < deadline:
                if isinstance(reply, Failure):
                    self._txn_req_cnt += 1  # maybe received: make abort send EndTxn
                self._txn_req_cnt += 1
                retries += 1
                yield self._env.timeout(self._backoff(retries))
                continue
            break
        if code:
            reason = f"Failed to add offsets to transaction: {KafkaError(code).name()}"
            if reaction in (Reaction.FATAL, Reaction.FENCED):
                self._set_fatal(normalize(code, self._client), reason)
                return
            if reaction in (Reaction.ABORTABLE, Reaction.ABORTABLE_BUMP, Reaction.PERMANENT):
                self._set_abortable(normalize(code, self._client), reason,
                                    requires_bump=reaction is Reaction.ABORTABLE_BUMP)
                reaction = Reaction.ABORTABLE
            self._api_set_result(api_error(code, reaction or Reaction.PERMANENT, reason, self._client))
            return
        yield from self._txn_offset_commit(offsets, cgmd, deadline)

    def _txn_offset_commit(self, offsets: list[TopicPartition], cgmd: ConsumerGroupMetadata,
                           deadline: int) -> Generator:
        while True:
            if self._txn_state is not TxnState.IN_TRANSACTION:
                # the request is not sent (_STATE), which the handler treats as any unhandled error
                code, reaction = int(KafkaError._STATE), Reaction.ABORTABLE  # type: ignore[attr-defined]
                break
            request = TxnOffsetCommitRequest(transactional_id=self._transactional_id, group_id=cgmd.group_id,
                                             producer_id=self._pid[0], producer_epoch=self._pid[1],
                                             generation_id=cgmd.generation_id, member_id=cgmd.member_id,
                                             offsets=tuple((p.model(), p.offset) for p in offsets))
            remaining = deadline - self._env.now
            # rd_kafka_coord_req: to the group coordinator's node broker, not a logical broker
            reply = yield self._request(request, min(max(remaining, 1), self.config.socket_timeout_ms), LEADER)
            if isinstance(reply, Failure):
                code, reaction = failure_code(reply), Reaction.RETRY
            else:
                failed = [e for _, e in reply.results if e is not Errors.NONE]
                code = int(failed[0]) if failed else 0
                reaction = action(Context.TXN_OFFSET_COMMIT, failed[0], self._client).reaction if failed else None
            if reaction is Reaction.RETRY:
                if self._env.now < deadline:
                    yield self._env.timeout(TXN_OFFSET_COMMIT_RETRY_MS)
                    continue
                reaction = Reaction.ABORTABLE  # out of time: the transaction fails
            break
        if not code:
            self._api_set_result(None)
            return
        reason = f"Failed to commit offsets to transaction: {KafkaError(code).name()}"
        if reaction in (Reaction.FATAL, Reaction.FENCED):
            self._set_fatal(normalize(code, self._client), reason)
            return
        self._set_abortable(normalize(code, self._client), reason)
        self._api_set_result(api_error(code, Reaction.ABORTABLE, reason, self._client))

    def _backoff(self, retries: int) -> int:
        jitter = self._jitter.randint(100 - RETRY_JITTER_PERCENT, 100 + RETRY_JITTER_PERCENT)
        return retry_backoff_ms(retries, self.config.retry_backoff_ms, self.config.retry_backoff_max_ms, jitter)

    # -- commit_transaction -------------------------------------------------------------------------

    def _commit_transaction(self, timeout_ms: int | None) -> Generator:
        error = self._api_begin("commit_transaction")
        if error is not None:
            raise KafkaException(error)
        deadline = self._deadline(timeout_ms)
        error = yield from self._op_req(self._op_begin_commit, deadline)
        if error is not None:
            self._api_return(error, resumable=False)
        yield from self._end_transaction(self._op_commit_transaction, self._op_commit_ack, deadline)

    def _end_transaction(self, end_op: Callable, ack_op: Callable, deadline: int | None) -> Generator:
        """The second half of commit_transaction and abort_transaction: wait for the outstanding messages
        within the API timeout (rd_kafka_flush), then send EndTxn and wait for its acknowledgement."""
        flushed = yield from self._flush(None if deadline is None else max(deadline - self._env.now, 0))
        if not flushed:
            self._api_return(KafkaError(KafkaError._TIMED_OUT,  # type: ignore[attr-defined]
                                        f"Failed to flush all outstanding messages within the API timeout: "
                                        f"{self._outstanding} message(s) remaining", retriable=True),
                             resumable=True)
        error = yield from self._op_req(end_op, deadline)
        if error is not None:
            self._api_return(error, resumable=True)
        error = yield from self._op_req(ack_op, None)
        self._api_return(error, resumable=False)

    def _op_begin_commit(self) -> None:
        error = self._require_states(TxnState.IN_TRANSACTION, TxnState.BEGIN_COMMIT,
                                     TxnState.COMMITTING_TRANSACTION, TxnState.COMMIT_NOT_ACKED)
        if error is None and self._txn_state is TxnState.IN_TRANSACTION:
            self._txn_set_state(TxnState.BEGIN_COMMIT)
        self._api_set_result(error)

    def _op_commit_transaction(self) -> None:
        error = self._require_states(TxnState.BEGIN_COMMIT, TxnState.COMMITTING_TRANSACTION,
                                     TxnState.COMMIT_NOT_ACKED)
        if error is None and self._txn_state is TxnState.COMMITTING_TRANSACTION:
            return  # a resumed call: the EndTxn in flight will set the result
        if error is None and self._txn_state is TxnState.BEGIN_COMMIT:
            if self._txn_dr_fails:  # any failed delivery makes the transaction abortable
                error = KafkaError(KafkaError._INCONSISTENT,  # type: ignore[attr-defined]
                                   f"{self._txn_dr_fails} message(s) failed delivery (see individual delivery reports)",
                                   txn_requires_abort=True)
                self._set_abortable(error.code(), error.str())
            elif not self._txn_req_cnt:
                # nothing was produced or sent: complete locally without EndTxn
                self._endtxn_complete(commit=True)
                return
            else:
                self._send_end_txn(commit=True)
                self._txn_set_state(TxnState.COMMITTING_TRANSACTION)
                return
        self._api_set_result(error)

    def _op_commit_ack(self) -> None:
        error = self._require_states(TxnState.COMMIT_NOT_ACKED)
        if error is None:
            self._txn_complete()
        self._api_set_result(error)

    # -- abort_transaction --------------------------------------------------------------------------

    def _abort_transaction(self, timeout_ms: int | None) -> Generator:
        error = self._api_begin("abort_transaction")
        if error is not None:
            raise KafkaException(error)
        deadline = self._deadline(timeout_ms)
        error = yield from self._op_req(self._op_begin_abort, deadline)
        if error is not None:
            self._api_return(error, resumable=False)
        # purge what is queued; in-flight requests must finish (purging them could leave sequence gaps)
        self._purge(in_queue=True, in_flight=False, abort_txn=True)
        yield from self._end_transaction(self._op_abort_transaction, self._op_abort_ack, deadline)

    def _op_begin_abort(self) -> None:
        error = self._require_states(TxnState.IN_TRANSACTION, TxnState.BEGIN_ABORT, TxnState.ABORTING_TRANSACTION,
                                     TxnState.ABORTABLE_ERROR, TxnState.ABORT_NOT_ACKED)
        if error is None and self._txn_state in (TxnState.IN_TRANSACTION, TxnState.ABORTABLE_ERROR):
            self._txn_set_state(TxnState.BEGIN_ABORT)
            for tp in self._pending_tps + self._waitresp_tps:  # rd_kafka_txn_clear_pending_partitions
                self._partitions[tp].pending_txn = False
            self._pending_tps, self._waitresp_tps = [], []
        self._api_set_result(error)

    def _op_abort_transaction(self) -> None:
        error = self._require_states(TxnState.BEGIN_ABORT, TxnState.ABORTING_TRANSACTION, TxnState.ABORT_NOT_ACKED)
        if error is not None or self._txn_state is TxnState.ABORT_NOT_ACKED:
            self._api_set_result(error)
            return
        if self._txn_state is TxnState.ABORTING_TRANSACTION:
            return  # a resumed call: the EndTxn in flight will set the result
        if not self._txn_req_cnt:
            self._endtxn_complete(commit=False)
            return
        if self._idemp_state not in (IdempState.ASSIGNED, IdempState.WAIT_TXN_ABORT):
            return  # wait for the PID bump in progress; the idempotence state change sets the result
        self._send_end_txn(commit=False)
        self._txn_set_state(TxnState.ABORTING_TRANSACTION)

    def _op_abort_ack(self) -> None:
        error = self._require_states(TxnState.ABORT_NOT_ACKED)
        if error is None:
            self._txn_complete()
        self._api_set_result(error)

    # -- EndTxn ---------------------------------------------------------------------------------------

    def _api_version(self, api: str) -> int:
        return API_VERSIONS[self._client][api]

    def _send_end_txn(self, *, commit: bool) -> None:
        request = EndTxnRequest(transactional_id=self._transactional_id, producer_id=self._pid[0],
                                producer_epoch=self._pid[1], committed=commit, transaction_version=1,
                                api_version=self._api_version("EndTxn"))
        self._spawn(self._end_txn(request))

    def _end_txn(self, request: EndTxnRequest) -> Generator:
        """Send EndTxn; retriable errors are retried by the request layer with the exponential backoff
        (rd_kafka_buf_retry), as long as the transaction is still committing/aborting."""
        retries = 0
        while True:
            reply = yield self._request(request, self.config.socket_timeout_ms, TXN_COORDINATOR)
            code = (failure_code(reply) if isinstance(reply, Failure)
                    else int(reply.error))
            retry = self._on_end_txn(request.committed, code)
            if not retry:
                return
            retries += 1
            yield self._env.timeout(self._backoff(retries))

    def _on_end_txn(self, commit: bool, code: int) -> bool:
        """rd_kafka_txn_handle_EndTxn; True to retry the request."""
        state = self._txn_state
        if state is TxnState.ABORTABLE_ERROR:
            # the transaction failed locally meanwhile: report that error instead
            reason = (f"EndTxn failed with {KafkaError(code).name()} but transaction had already failed due to: "
                      f"{self._txn_errstr}" if code else
                      f"Transaction {'commit' if commit else 'abort'} succeeded on the broker but the transaction "
                      f"had already failed locally due to: {self._txn_errstr}")
            if not code and commit:
                self._api_set_result(KafkaError(self._txn_err, reason, fatal=True))
            else:
                self._api_set_result(KafkaError(self._txn_err, reason, txn_requires_abort=True))
            return False
        may_retry = state in (TxnState.COMMITTING_TRANSACTION, TxnState.ABORTING_TRANSACTION)
        if not may_retry:
            return False  # outdated response
        if not code:
            self._endtxn_complete(commit=commit)
            return False
        # _TIMED_OUT and _TRANSPORT: RETRY|REFRESH (rd_kafka_txn_handle_EndTxn)
        local = code in (KafkaError._TIMED_OUT, KafkaError._TRANSPORT)  # type: ignore[attr-defined]
        reaction = Reaction.REFRESH if local else action(Context.END_TXN, Errors(code), self._client).reaction
        reason = f"EndTxn {'commit' if commit else 'abort'} failed: {KafkaError(code).name()}"
        if reaction in (Reaction.FATAL, Reaction.FENCED):
            self._set_fatal(normalize(code, self._client), reason)
            return False
        if reaction in (Reaction.RETRY, Reaction.REFRESH):
            return True
        if reaction is Reaction.ABORTABLE_BUMP and not commit:
            # KIP-360: the abort failed on an invalid PID: bump the epoch, the state change completes the call
            self._drain_epoch_bump(code, allow_txn_abort=False)
            return False
        if self._txn_state is TxnState.ABORTING_TRANSACTION:
            self._txn_set_state(TxnState.BEGIN_ABORT)  # so the abort can be retried from the beginning
        self._set_abortable(normalize(code, self._client), reason, requires_bump=reaction is Reaction.ABORTABLE_BUMP)
        self._api_set_result(api_error(code, Reaction.ABORTABLE, reason, self._client))
        return False

    def _endtxn_complete(self, *, commit: bool) -> None:
        """rd_kafka_txn_endtxn_complete: an abort that needs an epoch bump (KIP-360) asks the
        coordinator for it first; the idempotence state change then completes the call."""
        if self._txn_requires_epoch_bump:
            self._drain_epoch_bump(self._txn_err, allow_txn_abort=False)
            return
        self._txn_set_state(TxnState.COMMIT_NOT_ACKED if commit else TxnState.ABORT_NOT_ACKED)
        self._api_set_result(None)

    def _txn_complete(self) -> None:
        """rd_kafka_txn_complete: clear the transaction's partitions, back to READY."""
        for part in self._partitions.values():
            part.pending_txn = part.in_txn = False
        self._pending_tps, self._waitresp_tps = [], []
        self._txn_requires_epoch_bump = False
        self._txn_req_cnt = 0
        self._txn_set_state(TxnState.READY)


# Which of several AddPartitionsToTxn partition errors decides the request's fate (the handler ORs the
# action flags and checks FATAL, then PERMANENT, then RETRY).
_SEVERITY: dict[Reaction, int] = {
    Reaction.RETRY: 1, Reaction.REFRESH: 1, Reaction.ABORTABLE: 2, Reaction.ABORTABLE_BUMP: 3,
    Reaction.FATAL: 4, Reaction.FENCED: 4,
}

__all__ = ["IDEMP_MAX_INFLIGHT", "IdempState", "MsgStatus", "ProduceOutcome", "Producer", "TxnState",
           "partition_for_key", "produce_outcome", "retry_backoff_ms"]
