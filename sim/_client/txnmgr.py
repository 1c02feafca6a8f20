"""eosim._client.txnmgr
=================

The transaction manager, librdkafka's ``src/rdkafka_txnmgr.c``: the client-side transaction state machine
(``TXN_TRANSITIONS``, ``rd_kafka_txn_state_transition_is_valid``), the API call in progress
(``txn_curr_api``, resumable after a timeout), partition registration (AddPartitionsToTxn),
``send_offsets_to_transaction`` (AddOffsetsToTxn + TxnOffsetCommit) and EndTxn.

What a failed coordinator request does to the producer is decided in one place, ``Producer.fail``
(eosim._client.reaction): fatal or fenced, else abortable.
"""

from __future__ import annotations

import enum
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable, Generator

import simpy
from attrs import define, field

from eosim.models.errors import Errors, IllegalTransition
from eosim.models.group_coordinator import TxnOffsetCommitRequest
from eosim.models.records import NO_PRODUCER_ID, TopicPartition as TP
from eosim.models.txn_coordinator import AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest
from eosim._client.config import Client
from eosim._client.errors import (
    Context,
    KafkaError,
    KafkaException,
    Reaction,
    action,
    api_error,
    normalize,
)
from eosim._client.handle import LEADER, TXN_COORDINATOR, failure_code, first_of
from eosim._client.idempotence import IdempState
from eosim._client.message import ConsumerGroupMetadata, TopicPartition
from eosim._client.reaction import is_fatal
from eosim._net import Failure

if TYPE_CHECKING:
    from eosim._client.producer import Producer
    from eosim._client.sender import _Partition

# TopicPartition's order, (topic, partition), compared in C rather than by its Python __lt__
_TP_ORDER = attrgetter("topic", "partition")
TXN_OFFSET_COMMIT_RETRY_MS = 500  # rd_kafka_txn_handle_TxnOffsetCommit: "500ms delay before retrying"


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

    # Members are singletons compared by identity, so they may hash by identity too: a C call, where Enum's
    # own __hash__ (hash of the name) is a Python call, paid on every state change's table lookups.
    __hash__ = object.__hash__


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

# Which of several AddPartitionsToTxn partition errors decides the request's fate (the handler ORs the
# action flags and checks FATAL, then PERMANENT, then RETRY).
_SEVERITY: dict[Reaction, int] = {
    Reaction.RETRY: 1, Reaction.REFRESH: 1, Reaction.ABORTABLE: 2, Reaction.ABORTABLE_BUMP: 3,
    Reaction.FATAL: 4, Reaction.FENCED: 4,
}


@define(eq=False)
class _Api:
    """rk_eos.txn_curr_api: the API call in progress (possibly resumed after a timeout)."""

    name: str
    has_result: bool = False
    error: KafkaError | None = None
    wake: simpy.Event | None = None


@define(eq=False)
class TransactionManager:
    """rk_eos's transaction half."""

    rk: Producer
    state: TxnState = TxnState.INIT
    err: int = 0
    errstr: str = ""
    requires_epoch_bump: bool = False
    req_cnt: int = 0  # requests sent in this transaction: abort sends EndTxn only when non-zero
    dr_fails: int = 0  # failed deliveries in this transaction: commit then fails abortably
    init_err: int = 0  # the last InitProducerId error, raised when init_transactions times out
    # The Java client speaks transaction version 2 (KIP-890 part 2) once init_transactions found the broker's
    # finalized transaction.version >= 2 (TM.maybeUpdateTransactionV2Enabled, read from ApiVersions)
    tv2: bool = False
    pending_tps: list[TP] = field(factory=list)  # txn_pending_rktps
    waitresp_tps: list[TP] = field(factory=list)  # txn_waitresp_rktps
    _register_scheduled: bool = False
    _api: _Api | None = None

    # -- states -----------------------------------------------------------------------------------

    def set_state(self, state: TxnState) -> None:
        current = self.state
        if current is state:
            return
        if state is TxnState.ABORTABLE_ERROR and current in ABORTABLE_IGNORED_IN:
            return
        self.state = txn_transition(current, state)

    def aborting(self) -> bool:
        return self.state in (TxnState.BEGIN_ABORT, TxnState.ABORTING_TRANSACTION)

    def may_send(self) -> bool:
        """rd_kafka_txn_may_send_msg."""
        return self.state in (TxnState.IN_TRANSACTION, TxnState.BEGIN_COMMIT)

    def require_states(self, *states: TxnState) -> KafkaError | None:
        """rd_kafka_txn_require_states0."""
        if self.rk.transactional_id is None:
            return KafkaError(KafkaError._NOT_CONFIGURED)  # type: ignore[attr-defined]
        if self.state in states:
            return None
        if self.state is TxnState.FATAL_ERROR:
            return KafkaError(self.err, self.errstr, fatal=True)
        if self.state is TxnState.ABORTABLE_ERROR:
            return KafkaError(self.err, self.errstr, txn_requires_abort=True)
        return KafkaError(KafkaError._STATE, f"Operation not valid in state {self.state.value}")  # type: ignore[attr-defined]

    def on_fatal(self, code: int, reason: str) -> None:
        """rd_kafka_txn_set_fatal_error."""
        self.err = code
        self.errstr = reason
        self.set_state(TxnState.FATAL_ERROR)
        self.api_set_result(KafkaError(code, reason, fatal=True))

    def set_abortable(self, code: int, reason: str, *, requires_bump: bool = False) -> None:
        """rd_kafka_txn_set_abortable_error0: the first abortable error of the transaction sticks; the
        queued messages are purged."""
        rk = self.rk
        if rk.fatal_error is not None or rk.transactional_id is None:
            return
        if requires_bump and not self.tv2:  # TM.needToTriggerEpochBumpFromClient: TV2's EndTxn bumps anyway
            self.requires_epoch_bump = True
        if self.err:
            return
        self.err = code
        self.errstr = reason
        self.set_state(TxnState.ABORTABLE_ERROR)
        # rd_kafka_purge(QUEUE | ABORT_TXN | NON_BLOCKING): the broker thread purges its queues when it
        # serves the purge op, after the response being handled re-queued its retries, so they go too.
        rk._env.call_later(0, rk._alive(lambda _e: rk.sender.purge(in_queue=True, in_flight=False, abort_txn=True)))

    def idemp_state_change(self, state: IdempState) -> None:
        """rd_kafka_txn_idemp_state_change."""
        if state is IdempState.ASSIGNED and self.state is TxnState.WAIT_PID:
            self.set_state(TxnState.READY_NOT_ACKED)
            self.api_set_result(None)
        elif state is IdempState.ASSIGNED and self.state in (TxnState.BEGIN_ABORT, TxnState.ABORTING_TRANSACTION):
            self.set_state(TxnState.ABORT_NOT_ACKED)
            self.api_set_result(None)
        elif state is IdempState.FATAL_ERROR and self.state is not TxnState.FATAL_ERROR:
            self.set_state(TxnState.FATAL_ERROR)

    # -- the current API call (txn_curr_api) ------------------------------------------------------

    def _api_begin(self, name: str) -> KafkaError | None:
        """rd_kafka_txn_curr_api_begin: another API in progress is a retriable _CONFLICT; the same API
        resumes the call that timed out."""
        if self.rk.transactional_id is None:
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

    def api_set_result(self, error: KafkaError | None) -> None:
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
        env = self.rk._env
        api = self._api
        assert api is not None
        if not api.has_result:
            api.wake = env.event()
            handler()
            if not api.has_result:
                waits = [api.wake]
                if deadline is not None:
                    waits.append(env.timeout(max(deadline - env.now, 0)))
                yield first_of(env, waits)
        if not api.has_result:
            return KafkaError(KafkaError._TIMED_OUT, "Timed out waiting for operation to finish, retry call to resume",  # type: ignore[attr-defined]
                              retriable=True)
        api.has_result = False
        error, api.error = api.error, None
        return error

    def _deadline(self, timeout_ms: int | None) -> int | None:
        return None if timeout_ms is None else self.rk._env.now + timeout_ms

    # -- init_transactions ------------------------------------------------------------------------

    def init_transactions(self, timeout_ms: int | None) -> Generator:
        rk = self.rk
        if timeout_ms is None:  # capped at 2 * transaction.timeout.ms: no coordinator times us out yet
            timeout_ms = rk.config.transaction_timeout_ms * 2
        error = self._api_begin("init_transactions")
        if error is not None:
            raise KafkaException(error)
        error = yield from self._op_req(self._op_init_transactions, self._deadline(timeout_ms))
        if error is not None:
            if error.code() == KafkaError._TIMED_OUT and self.init_err:  # type: ignore[attr-defined]
                code = normalize(self.init_err, rk._client)
                if code != KafkaError._TIMED_OUT:  # type: ignore[attr-defined]
                    error = KafkaError(code, f"Failed to initialize Producer ID: {KafkaError(code).name()}",
                                       retriable=True)
            self._api_return(error, resumable=True)
        error = yield from self._op_req(self._op_ack_init_transactions, None)
        self._api_return(error, resumable=False)

    def _op_init_transactions(self) -> None:
        error = self.require_states(TxnState.INIT, TxnState.WAIT_PID, TxnState.READY_NOT_ACKED)
        if error is not None:
            self.api_set_result(error)
        elif self.state is not TxnState.READY_NOT_ACKED:
            self.set_state(TxnState.WAIT_PID)
            self.init_err = 0
            self.rk.idemp.start(immediate=True)

    def _op_ack_init_transactions(self) -> None:
        rk = self.rk
        error = self.require_states(TxnState.READY_NOT_ACKED)
        if error is None:
            self.set_state(TxnState.READY)
            # KafkaProducer.initTransactions: maybeUpdateTransactionV2Enabled(true) once the producer id is there
            self.tv2 = rk._client is Client.JAVA and rk._cluster.broker_config.transaction_version >= 2
        self.api_set_result(error)

    # -- begin_transaction ------------------------------------------------------------------------

    def begin_transaction(self) -> KafkaError | None:
        error = self._api_begin("begin_transaction")
        if error is not None:
            return error
        error = self.require_states(TxnState.READY)
        if error is None:
            self.set_state(TxnState.IN_TRANSACTION)
            self.dr_fails = 0
            self.err = 0
            self.errstr = ""
            self.rk.sender.kick()
        self._api = None
        return error

    # -- partition registration (AddPartitionsToTxn) ----------------------------------------------

    def add_partition(self, part: _Partition) -> None:
        """rd_kafka_txn_add_partition: pending until AddPartitionsToTxn registers it."""
        if part.pending_txn or part.in_txn:
            return
        if self.tv2:
            # TM.maybeAddPartition (TV2): no AddPartitionsToTxn, the leader adds the partition on the first
            # Produce v12; the transaction counts as started (transactionStarted), so EndTxn is sent
            part.in_txn = True
            self.req_cnt += 1
            return
        part.pending_txn = True
        schedule = not self.pending_tps
        self.pending_tps = sorted(self.pending_tps + [part.tp], key=_TP_ORDER)
        if schedule:
            self._schedule_register(0)

    def _schedule_register(self, backoff_ms: int) -> None:
        if self._register_scheduled:
            return  # rd_kafka_timer_start_oneshot(.., restart=false)
        self._register_scheduled = True

        def fire(_e: object) -> None:
            self._register_scheduled = False
            self._register_partitions()
        self.rk._env.call_later(backoff_ms, self.rk._alive(fire))

    def _register_partitions(self) -> None:
        """rd_kafka_txn_register_partitions: one AddPartitionsToTxn at a time."""
        rk = self.rk
        if self.require_states(TxnState.IN_TRANSACTION, TxnState.BEGIN_COMMIT) is not None:
            return
        if not self.pending_tps or self.waitresp_tps or rk.idemp.state is not IdempState.ASSIGNED:
            return
        self.waitresp_tps, self.pending_tps = self.pending_tps, []
        self.req_cnt += 1
        pid = rk.idemp.pid
        request = AddPartitionsToTxnRequest(transactional_id=rk.transactional_id, producer_id=pid[0],
                                            producer_epoch=pid[1], partitions=tuple(self.waitresp_tps),
                                            api_version=rk.api_version("AddPartitionsToTxn"))
        rk.request(request, rk.config.socket_timeout_ms, TXN_COORDINATOR).callbacks.append(
            rk._alive(lambda e: self._on_add_partitions(e.value)))

    def _on_add_partitions(self, reply: Any) -> None:
        """rd_kafka_txn_handle_AddPartitionsToTxn."""
        rk = self.rk
        error = 0
        reaction: Reaction | None = None
        backoff = 500
        if isinstance(reply, Failure):
            error = failure_code(reply)
        elif self.state not in (TxnState.IN_TRANSACTION, TxnState.BEGIN_COMMIT):
            # "Ignoring outdated AddPartitionsToTxn response": the transaction was aborted meanwhile
            self.req_cnt -= 1
            return
        else:
            for tp, code in reply.results:
                if code is Errors.NONE:
                    self.waitresp_tps.remove(tp)
                    part = rk.sender.partitions[tp]
                    part.pending_txn, part.in_txn = False, True
                    continue
                act = action(Context.ADD_PARTITIONS, code, rk._client)
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
            self.req_cnt -= 1
        if isinstance(reply, Failure):
            # "we can't be sure if the request was received": count it so abort sends EndTxn
            self.req_cnt += 1
            reaction = Reaction.RETRY
        # failed partitions go back to the pending list for the next request
        self.pending_tps = sorted(self.pending_tps + self.waitresp_tps, key=_TP_ORDER)
        self.waitresp_tps = []
        if reaction is None or reaction in (Reaction.RETRY, Reaction.REFRESH):
            self._schedule_register(backoff if reaction is not None else 0)
            rk.sender.kick()
            return
        # an abortable error that needs a bump drains first (rd_kafka_idemp_drain_epoch_bump)
        rk.fail(error, reaction, f"Failed to add partitions to transaction: {KafkaError(error).name()}",
                drain=True)

    # -- send_offsets_to_transaction --------------------------------------------------------------

    def send_offsets(self, positions: list[TopicPartition], group_metadata: ConsumerGroupMetadata | None,
                     timeout_ms: int | None) -> Generator:
        rk = self.rk
        if group_metadata is None:
            raise KafkaException(KafkaError(KafkaError._INVALID_ARG,  # type: ignore[attr-defined]
                                            "cgmetadata and offsets are required parameters"))
        error = self._api_begin("send_offsets_to_transaction")
        if error is not None:
            raise KafkaException(error)
        # capped to the transaction timeout (rd_kafka_txn_current_timeout)
        cap = rk.config.transaction_timeout_ms
        deadline = rk._env.now + (cap if timeout_ms is None else min(timeout_ms, cap))
        offsets = sorted((p for p in positions if p.offset >= 0), key=lambda p: (p.topic, p.partition))
        if not offsets:
            # "No valid offsets, e.g., nothing was consumed, this is not an error, do nothing."
            self._api_return(None, resumable=False)
            return None
        error = yield from self._op_req(lambda: self._op_send_offsets(offsets, group_metadata, deadline), None)
        self._api_return(error, resumable=False)

    def _op_send_offsets(self, offsets: list[TopicPartition], cgmd: ConsumerGroupMetadata, deadline: int) -> None:
        rk = self.rk
        error = self.require_states(TxnState.IN_TRANSACTION)
        if error is not None:
            self.api_set_result(error)
            return
        self.req_cnt += 1
        if self.tv2:
            # TM.sendOffsetsToTransaction (TV2): TxnOffsetCommit v5 at once, the group coordinator's broker adds
            # the offsets partition to the transaction
            rk._spawn(self._txn_offset_commit(offsets, cgmd, deadline))
            return
        pid = rk.idemp.pid
        request = AddOffsetsToTxnRequest(transactional_id=rk.transactional_id, producer_id=pid[0],
                                         producer_epoch=pid[1], group_id=cgmd.group_id,
                                         api_version=rk.api_version("AddOffsetsToTxn"))
        rk._spawn(self._add_offsets(request, offsets, cgmd, deadline))

    def _add_offsets(self, request: AddOffsetsToTxnRequest, offsets: list[TopicPartition],
                     cgmd: ConsumerGroupMetadata, deadline: int) -> Generator:
        """AddOffsetsToTxn to the transaction coordinator, then TxnOffsetCommit to the group coordinator
        (rd_kafka_txn_handle_AddOffsetsToTxn, rd_kafka_txn_handle_TxnOffsetCommit)."""
        rk = self.rk
        env = rk._env
        retries = 0
        while True:
            reply = yield rk.request(request, rk.config.socket_timeout_ms, TXN_COORDINATOR)
            if isinstance(reply, Failure):
                code, reaction = failure_code(reply), Reaction.REFRESH
            else:
                error = reply.error
                code = int(error)
                reaction = None if error is Errors.NONE else action(Context.ADD_OFFSETS, error, rk._client).reaction
            if code:
                self.req_cnt -= 1
            if not code and env.now >= deadline:
                # succeeded too late: a retriable _TIMED_OUT, the transaction stays usable
                code, reaction = int(KafkaError._TIMED_OUT), Reaction.REFRESH  # type: ignore[attr-defined]
            if reaction in (Reaction.RETRY, Reaction.REFRESH) and env.now < deadline:
                if isinstance(reply, Failure):
                    self.req_cnt += 1  # maybe received: make abort send EndTxn
                self.req_cnt += 1
                retries += 1
                yield env.timeout(rk.backoff(retries))
                continue
            break
        if code:
            assert reaction is not None
            reason = f"Failed to add offsets to transaction: {KafkaError(code).name()}"
            if reaction in (Reaction.RETRY, Reaction.REFRESH):  # out of time: the call may be retried
                self.api_set_result(api_error(code, reaction, reason, rk._client))
            else:
                self.api_set_result(rk.fail(code, reaction, reason))
            return
        yield from self._txn_offset_commit(offsets, cgmd, deadline)

    def _txn_offset_commit(self, offsets: list[TopicPartition], cgmd: ConsumerGroupMetadata,
                           deadline: int) -> Generator:
        rk = self.rk
        env = rk._env
        while True:
            if self.state is not TxnState.IN_TRANSACTION:
                # the request is not sent (_STATE), which the handler treats as any unhandled error
                code, reaction = int(KafkaError._STATE), Reaction.ABORTABLE  # type: ignore[attr-defined]
                break
            pid = rk.idemp.pid
            request = TxnOffsetCommitRequest(transactional_id=rk.transactional_id, group_id=cgmd.group_id,
                                             producer_id=pid[0], producer_epoch=pid[1],
                                             generation_id=cgmd.generation_id, member_id=cgmd.member_id,
                                             offsets=tuple((p.model(), p.offset) for p in offsets),
                                             api_version=rk.api_version("TxnOffsetCommit"))
            remaining = deadline - env.now
            # rd_kafka_coord_req: to the group coordinator's node broker, not a logical broker
            reply = yield rk.request(request, min(max(remaining, 1), rk.config.socket_timeout_ms), LEADER)
            if isinstance(reply, Failure):
                code, reaction = failure_code(reply), Reaction.RETRY
            else:
                failed = [e for _, e in reply.results if e is not Errors.NONE]
                code = int(failed[0]) if failed else 0
                reaction = action(Context.TXN_OFFSET_COMMIT, failed[0], rk._client).reaction if failed else None
            if reaction is Reaction.RETRY:
                if env.now < deadline:
                    yield env.timeout(TXN_OFFSET_COMMIT_RETRY_MS)
                    continue
                reaction = Reaction.ABORTABLE  # out of time: the transaction fails
            break
        if not code:
            self.api_set_result(None)
            return
        assert reaction is not None
        self.api_set_result(rk.fail(code, reaction, f"Failed to commit offsets to transaction: "
                                                    f"{KafkaError(code).name()}"))

    # -- commit_transaction -----------------------------------------------------------------------

    def commit_transaction(self, timeout_ms: int | None) -> Generator:
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
        rk = self.rk
        flushed = yield from rk.dr.flush(None if deadline is None else max(deadline - rk._env.now, 0))
        if not flushed:
            self._api_return(KafkaError(KafkaError._TIMED_OUT,  # type: ignore[attr-defined]
                                        f"Failed to flush all outstanding messages within the API timeout: "
                                        f"{rk.dr.outstanding} message(s) remaining", retriable=True),
                             resumable=True)
        error = yield from self._op_req(end_op, deadline)
        if error is not None:
            self._api_return(error, resumable=True)
        error = yield from self._op_req(ack_op, None)
        self._api_return(error, resumable=False)

    def _op_begin_commit(self) -> None:
        error = self.require_states(TxnState.IN_TRANSACTION, TxnState.BEGIN_COMMIT,
                                    TxnState.COMMITTING_TRANSACTION, TxnState.COMMIT_NOT_ACKED)
        if error is None and self.state is TxnState.IN_TRANSACTION:
            self.set_state(TxnState.BEGIN_COMMIT)
        self.api_set_result(error)

    def _op_commit_transaction(self) -> None:
        error = self.require_states(TxnState.BEGIN_COMMIT, TxnState.COMMITTING_TRANSACTION,
                                    TxnState.COMMIT_NOT_ACKED)
        if error is None and self.state is TxnState.COMMITTING_TRANSACTION:
            return  # a resumed call: the EndTxn in flight will set the result
        if error is None and self.state is TxnState.BEGIN_COMMIT:
            if self.dr_fails:  # any failed delivery makes the transaction abortable
                error = KafkaError(KafkaError._INCONSISTENT,  # type: ignore[attr-defined]
                                   f"{self.dr_fails} message(s) failed delivery (see individual delivery reports)",
                                   txn_requires_abort=True)
                self.set_abortable(error.code(), error.str())
            elif not self.req_cnt:
                # nothing was produced or sent: complete locally without EndTxn
                self._endtxn_complete(commit=True)
                return
            else:
                self._send_end_txn(commit=True)
                self.set_state(TxnState.COMMITTING_TRANSACTION)
                return
        self.api_set_result(error)

    def _op_commit_ack(self) -> None:
        error = self.require_states(TxnState.COMMIT_NOT_ACKED)
        if error is None:
            self._txn_complete()
        self.api_set_result(error)

    # -- abort_transaction ------------------------------------------------------------------------

    def abort_transaction(self, timeout_ms: int | None) -> Generator:
        error = self._api_begin("abort_transaction")
        if error is not None:
            raise KafkaException(error)
        deadline = self._deadline(timeout_ms)
        error = yield from self._op_req(self._op_begin_abort, deadline)
        if error is not None:
            self._api_return(error, resumable=False)
        # purge what is queued; in-flight requests must finish (purging them could leave sequence gaps)
        self.rk.sender.purge(in_queue=True, in_flight=False, abort_txn=True)
        yield from self._end_transaction(self._op_abort_transaction, self._op_abort_ack, deadline)

    def _op_begin_abort(self) -> None:
        error = self.require_states(TxnState.IN_TRANSACTION, TxnState.BEGIN_ABORT, TxnState.ABORTING_TRANSACTION,
                                    TxnState.ABORTABLE_ERROR, TxnState.ABORT_NOT_ACKED)
        if error is None and self.state in (TxnState.IN_TRANSACTION, TxnState.ABORTABLE_ERROR):
            self.set_state(TxnState.BEGIN_ABORT)
            partitions = self.rk.sender.partitions
            for tp in self.pending_tps + self.waitresp_tps:  # rd_kafka_txn_clear_pending_partitions
                partitions[tp].pending_txn = False
            self.pending_tps, self.waitresp_tps = [], []
        self.api_set_result(error)

    def _op_abort_transaction(self) -> None:
        error = self.require_states(TxnState.BEGIN_ABORT, TxnState.ABORTING_TRANSACTION, TxnState.ABORT_NOT_ACKED)
        if error is not None or self.state is TxnState.ABORT_NOT_ACKED:
            self.api_set_result(error)
            return
        if self.state is TxnState.ABORTING_TRANSACTION:
            return  # a resumed call: the EndTxn in flight will set the result
        if not self.req_cnt:
            self._endtxn_complete(commit=False)
            return
        if self.rk.idemp.state not in (IdempState.ASSIGNED, IdempState.WAIT_TXN_ABORT):
            return  # wait for the PID bump in progress; the idempotence state change sets the result
        self._send_end_txn(commit=False)
        self.set_state(TxnState.ABORTING_TRANSACTION)

    def _op_abort_ack(self) -> None:
        error = self.require_states(TxnState.ABORT_NOT_ACKED)
        if error is None:
            self._txn_complete()
        self.api_set_result(error)

    # -- EndTxn -----------------------------------------------------------------------------------

    def _send_end_txn(self, *, commit: bool) -> None:
        rk = self.rk
        pid = rk.idemp.pid
        request = EndTxnRequest(transactional_id=rk.transactional_id, producer_id=pid[0],
                                producer_epoch=pid[1], committed=commit, transaction_version=2 if self.tv2 else 1,
                                api_version=rk.api_version("EndTxn"))
        rk._spawn(self._end_txn(request))

    def _end_txn(self, request: EndTxnRequest) -> Generator:
        """Send EndTxn; retriable errors are retried by the request layer with the exponential backoff
        (rd_kafka_buf_retry), as long as the transaction is still committing/aborting."""
        rk = self.rk
        retries = 0
        while True:
            reply = yield rk.request(request, rk.config.socket_timeout_ms, TXN_COORDINATOR)
            code = (failure_code(reply) if isinstance(reply, Failure)
                    else int(reply.error))
            if not code and reply.producer_id != NO_PRODUCER_ID:
                # EndTxn v5 (TV2): the bumped pid/epoch, or a new pid at epoch 0 after an exhausted epoch
                rk.idemp.end_txn_bumped((reply.producer_id, reply.producer_epoch))
            retry = self._on_end_txn(request.committed, code)
            if not retry:
                return
            retries += 1
            yield rk._env.timeout(rk.backoff(retries))

    def _on_end_txn(self, commit: bool, code: int) -> bool:
        """rd_kafka_txn_handle_EndTxn; True to retry the request."""
        rk = self.rk
        state = self.state
        if state is TxnState.ABORTABLE_ERROR:
            # the transaction failed locally meanwhile: report that error instead
            reason = (f"EndTxn failed with {KafkaError(code).name()} but transaction had already failed due to: "
                      f"{self.errstr}" if code else
                      f"Transaction {'commit' if commit else 'abort'} succeeded on the broker but the transaction "
                      f"had already failed locally due to: {self.errstr}")
            if not code and commit:
                self.api_set_result(KafkaError(self.err, reason, fatal=True))
            else:
                self.api_set_result(KafkaError(self.err, reason, txn_requires_abort=True))
            return False
        may_retry = state in (TxnState.COMMITTING_TRANSACTION, TxnState.ABORTING_TRANSACTION)
        if not may_retry:
            return False  # outdated response
        if not code:
            self._endtxn_complete(commit=commit)
            return False
        # _TIMED_OUT and _TRANSPORT: RETRY|REFRESH (rd_kafka_txn_handle_EndTxn)
        local = code in (KafkaError._TIMED_OUT, KafkaError._TRANSPORT)  # type: ignore[attr-defined]
        reaction = Reaction.REFRESH if local else action(Context.END_TXN, Errors(code), rk._client).reaction
        if reaction in (Reaction.RETRY, Reaction.REFRESH):
            return True
        if reaction is Reaction.ABORTABLE_BUMP and not commit:
            # KIP-360: the abort failed on an invalid PID: bump the epoch, the state change completes the call
            rk.idemp.drain_epoch_bump(code, allow_txn_abort=False)
            return False
        if not is_fatal(reaction) and self.state is TxnState.ABORTING_TRANSACTION:
            self.set_state(TxnState.BEGIN_ABORT)  # so the abort can be retried from the beginning
        self.api_set_result(rk.fail(code, reaction, f"EndTxn {'commit' if commit else 'abort'} failed: "
                                                    f"{KafkaError(code).name()}"))
        return False

    def _endtxn_complete(self, *, commit: bool) -> None:
        """rd_kafka_txn_endtxn_complete: an abort that needs an epoch bump (KIP-360) asks the
        coordinator for it first; the idempotence state change then completes the call."""
        if self.requires_epoch_bump:
            self.rk.idemp.drain_epoch_bump(self.err, allow_txn_abort=False)
            return
        self.set_state(TxnState.COMMIT_NOT_ACKED if commit else TxnState.ABORT_NOT_ACKED)
        self.api_set_result(None)

    def _txn_complete(self) -> None:
        """rd_kafka_txn_complete: clear the transaction's partitions, back to READY."""
        for part in self.rk.sender.partitions.values():
            part.pending_txn = part.in_txn = False
        self.pending_tps, self.waitresp_tps = [], []
        self.requires_epoch_bump = False
        self.req_cnt = 0
        self.set_state(TxnState.READY)


__all__ = ["ABORTABLE_IGNORED_IN", "TXN_TRANSITIONS", "TransactionManager", "TxnState", "txn_transition"]
