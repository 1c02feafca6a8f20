"""The simulated librdkafka transaction manager's state table (rd_kafka_txn_state_transition_is_valid,
rdkafka_txnmgr.c), enumerated: every legal (current, target) pair is accepted, every other one raises."""

import itertools

import pytest

from eosim.models.errors import IllegalTransition
from eosim._client.txnmgr import TXN_TRANSITIONS, TxnState, txn_transition

PAIRS = list(itertools.product(TxnState, TxnState))


@pytest.mark.parametrize("current,target", PAIRS, ids=lambda s: s.value)
def test_every_pair_follows_the_table(current: TxnState, target: TxnState) -> None:
    if current in TXN_TRANSITIONS.get(target, frozenset()):
        assert txn_transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition):
            txn_transition(current, target)


def test_the_table_matches_librdkafka() -> None:
    """Written out again from rd_kafka_txn_state_transition_is_valid, so an edit to one shows up."""
    S = TxnState
    assert {t: set(c) for t, c in TXN_TRANSITIONS.items()} == {
        S.WAIT_PID: {S.INIT},
        S.READY_NOT_ACKED: {S.WAIT_PID},
        S.READY: {S.READY_NOT_ACKED, S.COMMIT_NOT_ACKED, S.ABORT_NOT_ACKED},
        S.IN_TRANSACTION: {S.READY},
        S.BEGIN_COMMIT: {S.IN_TRANSACTION},
        S.COMMITTING_TRANSACTION: {S.BEGIN_COMMIT},
        S.COMMIT_NOT_ACKED: {S.BEGIN_COMMIT, S.COMMITTING_TRANSACTION},
        S.BEGIN_ABORT: {S.IN_TRANSACTION, S.ABORTING_TRANSACTION, S.ABORTABLE_ERROR},
        S.ABORTING_TRANSACTION: {S.BEGIN_ABORT},
        S.ABORT_NOT_ACKED: {S.BEGIN_ABORT, S.ABORTING_TRANSACTION},
        S.ABORTABLE_ERROR: {S.IN_TRANSACTION, S.BEGIN_COMMIT, S.COMMITTING_TRANSACTION},
        S.FATAL_ERROR: set(S),
    }
    assert sum(1 for c, t in PAIRS if c in TXN_TRANSITIONS.get(t, ())) == 32
