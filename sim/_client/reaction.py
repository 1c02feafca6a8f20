"""eosim._client.reaction
===================

The one rule for what a failed producer request does to the producer, once its handler decided it is not
retried: fatal or fenced, else abortable (``rd_kafka_txn_set_fatal_error`` / ``rd_kafka_idemp_set_fatal_error``
versus ``rd_kafka_txn_set_abortable_error0``; in the Java client ``TransactionManager.transitionToFatalError``
versus ``transitionToAbortableError``). ``Producer.fail`` applies it; this module is the decision.
"""

from __future__ import annotations

import enum

from eosim._client.errors import Reaction

FATAL_REACTIONS = frozenset({Reaction.FATAL, Reaction.FENCED})


class Consequence(enum.Enum):
    FATAL = "fatal"  # the instance is unusable; fencing surfaces as the client's fenced code
    ABORTABLE = "abortable"  # the transaction must be aborted
    ABORTABLE_BUMP = "abortable+bump"  # ... and the abort bumps the epoch (KIP-360)


def is_fatal(reaction: Reaction | None) -> bool:
    return reaction in FATAL_REACTIONS


def consequence(reaction: Reaction) -> Consequence:
    """Fatal or fenced, else abortable (with the epoch bump an ABORTABLE_BUMP asks for)."""
    if is_fatal(reaction):
        return Consequence.FATAL
    return Consequence.ABORTABLE_BUMP if reaction is Reaction.ABORTABLE_BUMP else Consequence.ABORTABLE


__all__ = ["FATAL_REACTIONS", "Consequence", "consequence", "is_fatal"]
