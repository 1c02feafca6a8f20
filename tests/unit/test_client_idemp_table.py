"""The simulated idempotence state machine (rdkafka_idempotence.c) as a table, and the one reaction rule
(eosim._client.reaction): every (state, event) pair is either in the table or raises."""

import itertools

import pytest

from eosim.models.errors import IllegalTransition
from eosim._client.errors import Reaction
from eosim._client.idempotence import IDEMP_TRANSITIONS, IdempEvent, IdempState, idemp_transition
from eosim._client.reaction import Consequence, consequence

PAIRS = list(itertools.product(IdempState, IdempEvent))


@pytest.mark.parametrize("state,event", PAIRS, ids=lambda s: s.name)
def test_every_pair_follows_the_table(state: IdempState, event: IdempEvent) -> None:
    if (state, event) in IDEMP_TRANSITIONS:
        assert idemp_transition(state, event) is IDEMP_TRANSITIONS[state, event]
    else:
        with pytest.raises(IllegalTransition):
            idemp_transition(state, event)


def test_the_pid_life_cycle() -> None:
    """Acquire a PID (with one retriable failure), bump it locally after a drain, then a fatal error."""
    S, E = IdempState, IdempEvent
    state = S.INIT
    path = [state]
    for event in (E.START, E.PID_REQUESTED, E.PID_FAILED, E.PID_REQUESTED, E.PID_RECEIVED, E.DRAIN_BUMP,
                  E.DRAINED_LOCAL_BUMP, E.TXN_ABORT_REQUIRED, E.DRAIN_BUMP, E.DRAINED_REQUEST_PID, E.FATAL):
        state = idemp_transition(state, event)
        path.append(state)
    assert path == [S.INIT, S.REQ_PID, S.WAIT_PID, S.REQ_PID, S.WAIT_PID, S.ASSIGNED, S.DRAIN_BUMP, S.ASSIGNED,
                    S.WAIT_TXN_ABORT, S.DRAIN_BUMP, S.REQ_PID, S.FATAL_ERROR]
    # a PID reply in any state but WAIT_PID, or a bump before a PID, is a client bug
    for state, event in ((S.ASSIGNED, E.PID_RECEIVED), (S.INIT, E.DRAIN_BUMP), (S.REQ_PID, E.DRAINED_LOCAL_BUMP)):
        with pytest.raises(IllegalTransition):
            idemp_transition(state, event)


@pytest.mark.parametrize("reaction, expected", [
    (Reaction.FATAL, Consequence.FATAL),
    (Reaction.FENCED, Consequence.FATAL),
    (Reaction.ABORTABLE_BUMP, Consequence.ABORTABLE_BUMP),
    (Reaction.ABORTABLE, Consequence.ABORTABLE),
    (Reaction.PERMANENT, Consequence.ABORTABLE),  # a transactional request that failed for good
])
def test_fatal_or_fenced_else_abortable(reaction: Reaction, expected: Consequence) -> None:
    assert consequence(reaction) is expected
