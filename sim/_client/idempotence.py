"""eosim._client.idempotence
======================

The idempotent producer's PID state machine, librdkafka's ``src/rdkafka_idempotence.c``: acquiring a
producer id, and the epoch bump after all partitions drained.

The automaton is a table (h11 style): ``IDEMP_TRANSITIONS[(state, event)]`` is the next state and any
other pair raises ``IllegalTransition``. librdkafka's ``rd_kafka_idemp_set_state`` takes a target state
without checking it; the events here are the functions that set it, so the table says which of them may
happen in which state. One rule sits beside the table, as in ``rd_kafka_idemp_set_state``: once a fatal
error was raised, a change to anything but FATAL_ERROR or a drain becomes FATAL_ERROR ("Denying state
change ... since a fatal error has been raised").
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from attrs import define

from eosim.models.errors import Errors, IllegalTransition
from eosim.models.txn_coordinator import InitProducerIdRequest
from eosim._client.errors import Context, KafkaError, Reaction, action
from eosim._client.handle import LEADER, TXN_COORDINATOR, failure_code
from eosim._client.reaction import is_fatal
from eosim._net import Failure

if TYPE_CHECKING:
    from eosim._client.producer import Producer

PID_RETRY_MS = 500  # rd_kafka_idemp_pid_timer_restart: non-immediate = 500 ms
NO_PID = (-1, -1)


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


# Read after every Produce response, so a module constant: on Python 3.11 an enum member read through its class
# costs a Python-level __getattr__ (EnumType's).
_DRAIN_BUMP = IdempState.DRAIN_BUMP


class IdempEvent(enum.Enum):
    """What moves the PID state machine, named after the librdkafka function it happens in."""

    START = "rd_kafka_idemp_start"
    PID_REQUESTED = "rd_kafka_idemp_pid_fsm"  # InitProducerId sent
    PID_RECEIVED = "rd_kafka_idemp_pid_update"
    PID_FAILED = "rd_kafka_idemp_request_pid_failed"  # a retriable failure: ask again after 500 ms
    TXN_ABORT_REQUIRED = "rd_kafka_idemp_drain_epoch_bump0(allow_txn_abort)"  # the transaction must abort first
    DRAIN_BUMP = "rd_kafka_idemp_drain_epoch_bump0"
    DRAINED_LOCAL_BUMP = "rd_kafka_idemp_drain_done(idempotent)"  # rd_kafka_pid_bump: the epoch + 1, locally
    DRAINED_REQUEST_PID = "rd_kafka_idemp_drain_done(transactional)"  # the coordinator bumps (KIP-360)
    FATAL = "rd_kafka_idemp_set_fatal_error"
    # Java, TV2: EndTxn v5 answers the bumped (pid, epoch) and the producer takes it (TM.EndTxnHandler); an abort
    # that waited for a bump (WAIT_TXN_ABORT) needs no InitProducerId any more
    END_TXN_BUMPED = "TM.EndTxnHandler"
    # eosim's aged producer (docs/scenario-format.md, Long-lived state): the process ran before the scenario and
    # holds its (pid, epoch) already; the InitProducerId it would ask for at start is cancelled
    AGED = "eosim aged"


S = IdempState
E = IdempEvent
# (state, event) -> next state. FATAL_ERROR keeps answering events that were under way when the fatal error
# was raised (a PID reply, a produce reply asking for a bump): librdkafka lets the drain proceed.
IDEMP_TRANSITIONS: dict[tuple[IdempState, IdempEvent], IdempState] = {
    (S.INIT, E.START): S.REQ_PID,
    (S.REQ_PID, E.START): S.REQ_PID,  # init_transactions resumed after a timeout
    (S.REQ_PID, E.PID_REQUESTED): S.WAIT_PID,
    (S.REQ_PID, E.AGED): S.ASSIGNED,
    (S.WAIT_PID, E.PID_RECEIVED): S.ASSIGNED,
    (S.WAIT_PID, E.PID_FAILED): S.REQ_PID,
    (S.FATAL_ERROR, E.PID_FAILED): S.FATAL_ERROR,
    (S.ASSIGNED, E.TXN_ABORT_REQUIRED): S.WAIT_TXN_ABORT,
    (S.WAIT_TXN_ABORT, E.TXN_ABORT_REQUIRED): S.WAIT_TXN_ABORT,
    (S.FATAL_ERROR, E.TXN_ABORT_REQUIRED): S.FATAL_ERROR,
    (S.ASSIGNED, E.DRAIN_BUMP): S.DRAIN_BUMP,
    (S.WAIT_TXN_ABORT, E.DRAIN_BUMP): S.DRAIN_BUMP,  # abort_transaction's KIP-360 bump
    (S.DRAIN_BUMP, E.DRAIN_BUMP): S.DRAIN_BUMP,
    (S.FATAL_ERROR, E.DRAIN_BUMP): S.DRAIN_BUMP,
    (S.DRAIN_BUMP, E.DRAINED_LOCAL_BUMP): S.ASSIGNED,
    (S.DRAIN_BUMP, E.DRAINED_REQUEST_PID): S.REQ_PID,
    (S.ASSIGNED, E.END_TXN_BUMPED): S.ASSIGNED,
    (S.WAIT_TXN_ABORT, E.END_TXN_BUMPED): S.ASSIGNED,
    **{(state, E.FATAL): S.FATAL_ERROR for state in IdempState},
}
# rd_kafka_idemp_set_state: the states a fatal error does not deny
ALLOWED_AFTER_FATAL = frozenset({S.FATAL_ERROR, S.DRAIN_RESET, S.DRAIN_BUMP})
del S, E


def idemp_transition(state: IdempState, event: IdempEvent) -> IdempState:
    """The next state, or IllegalTransition (a client bug)."""
    try:
        return IDEMP_TRANSITIONS[state, event]
    except KeyError:
        raise IllegalTransition("librdkafka idempotence state machine", state, event) from None


@define(eq=False)
class Idempotence:
    """rk_eos's PID half: the (pid, epoch), its state machine and the PID timer."""

    rk: Producer
    state: IdempState = IdempState.INIT
    pid: tuple[int, int] = NO_PID
    _pid_timer_token: int = 0

    def _set(self, event: IdempEvent) -> None:
        target = idemp_transition(self.state, event)
        if self.state is target:
            return
        if self.rk.fatal_error is not None and target not in ALLOWED_AFTER_FATAL:
            target = IdempState.FATAL_ERROR  # "Denying state change since a fatal error has been raised"
        self.state = target
        if self.rk.transactional_id is not None:
            self.rk.txn.idemp_state_change(target)

    def set_fatal(self) -> None:
        """rd_kafka_idemp_set_fatal_error: no state-change callback (the caller handles the transaction)."""
        self.state = idemp_transition(self.state, IdempEvent.FATAL)

    def start(self, *, immediate: bool) -> None:
        if self.state is not IdempState.WAIT_PID:
            self._set(IdempEvent.START)
        self._pid_timer(0 if immediate else PID_RETRY_MS)

    def _pid_timer(self, delay_ms: int) -> None:
        """rd_kafka_idemp_pid_timer_restart: a restarted timer replaces the pending one."""
        self._pid_timer_token += 1
        token = self._pid_timer_token
        rk = self.rk
        rk._env.call_later(delay_ms, rk._alive(lambda _e: self._pid_fsm() if token == self._pid_timer_token else None))

    def _pid_fsm(self) -> None:
        """rd_kafka_idemp_pid_fsm: in REQ_PID send InitProducerId (the coordinator lookup is not modelled:
        the single broker is the coordinator). A transactional producer with a valid PID asks for a bump
        (KIP-360: the current pid/epoch in the request)."""
        rk = self.rk
        if rk.fatal_error is not None or self.state is not IdempState.REQ_PID:
            return
        if rk.transactional_id is not None:
            request = InitProducerIdRequest(transactional_id=rk.transactional_id,
                                            transaction_timeout_ms=rk.config.transaction_timeout_ms,
                                            producer_id=self.pid[0], producer_epoch=self.pid[1],
                                            api_version=rk.api_version("InitProducerId"))
        else:
            request = InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=-1,
                                            api_version=rk.api_version("InitProducerId"))
        self._set(IdempEvent.PID_REQUESTED)
        # "Let the idempotence state handler perform retries": no request-level retries. The
        # transactional producer asks its TxnCoordinator, the idempotent one any broker.
        connection = LEADER if rk.transactional_id is None else TXN_COORDINATOR
        rk.request(request, rk.config.socket_timeout_ms, connection).callbacks.append(
            rk._alive(lambda e: self._on_init_producer_id(e.value)))

    def _on_init_producer_id(self, reply: Any) -> None:
        error = failure_code(reply) if isinstance(reply, Failure) else int(reply.error)
        if error:
            self._pid_request_failed(error)
            return
        if self.state is not IdempState.WAIT_PID:
            return  # "Ignoring InitProduceId response in state ..."
        self.adopt_pid((reply.producer_id, reply.producer_epoch))
        self._set(IdempEvent.PID_RECEIVED)
        self.rk.sender.kick()

    def start_aged(self, pid: tuple[int, int], sequence: int) -> None:
        """An idempotent producer that ran before the scenario: it holds ``pid`` and goes on at ``sequence`` on
        every partition (simulator-only; the broker holds the matching state)."""
        self._pid_timer_token += 1  # the start's InitProducerId is not sent
        self.adopt_pid(pid)
        self._set(IdempEvent.AGED)
        self.rk.sender.aged = (pid, sequence)

    def end_txn_bumped(self, pid: tuple[int, int]) -> None:
        """TM.EndTxnHandler (TV2): take the (pid, epoch) EndTxn v5 answered; the sender restarts every partition's
        sequences at 0 (TM.resetSequenceNumbers) as it adopts the new epoch."""
        self.adopt_pid(pid)
        self._set(IdempEvent.END_TXN_BUMPED)

    def adopt_pid(self, pid: tuple[int, int]) -> None:
        rk = self.rk
        self.pid = pid
        rk._trace.emit(rk.name, "client.pid", transactional_id=rk.transactional_id, producer_id=pid[0],
                       producer_epoch=pid[1])

    def _pid_request_failed(self, error: int) -> None:
        """rd_kafka_idemp_request_pid_failed: fatal and fencing errors stop the producer, anything else
        is retried by the PID timer after 500 ms (and remembered for init_transactions' timeout)."""
        rk = self.rk
        reaction = (action(Context.INIT_PRODUCER_ID, Errors(error), rk._client).reaction if error >= -1
                    else Reaction.RETRY)
        if is_fatal(reaction):
            rk.fail(error, reaction, f"Failed to acquire PID: {KafkaError(error).name()}")
            return
        rk.txn.init_err = error
        self._set(IdempEvent.PID_FAILED)
        self._pid_timer(PID_RETRY_MS)

    def drain_epoch_bump(self, error: int, *, allow_txn_abort: bool) -> None:
        """rd_kafka_idemp_drain_epoch_bump0: a transactional producer first fails the transaction (the
        bump happens in abort_transaction); otherwise wait for all in-flight requests, then bump."""
        rk = self.rk
        if allow_txn_abort and rk.transactional_id is not None:
            self._set(IdempEvent.TXN_ABORT_REQUIRED)
            rk.txn.set_abortable(error, f"epoch bump required: {KafkaError(error).name()}", requires_bump=True)
            return
        self._set(IdempEvent.DRAIN_BUMP)
        self.check_drain_done()

    def check_drain_done(self) -> None:
        """rd_kafka_idemp_drain_done, once no partition has a request in flight."""
        rk = self.rk
        # the state first: after most responses it is not draining, and nothing more need be asked
        if self.state is not _DRAIN_BUMP or rk.sender.inflight_total() or self.pid == NO_PID:
            return
        if rk.transactional_id is not None:
            # the coordinator bumps the epoch: InitProducerId with the current pid/epoch
            self._set(IdempEvent.DRAINED_REQUEST_PID)
            self._pid_timer(0)
        else:
            self.adopt_pid((self.pid[0], self.pid[1] + 1))  # rd_kafka_pid_bump: local
            self._set(IdempEvent.DRAINED_LOCAL_BUMP)
            rk.sender.kick()


__all__ = ["IDEMP_TRANSITIONS", "NO_PID", "IdempEvent", "IdempState", "Idempotence", "idemp_transition"]
