"""eosim._worktime
===============

How long a broker's internal work takes: a seeded, bounded, jittered number of milliseconds per piece
of work, drawn from the world's random stream ``<node>/work``. On a real broker these durations vary
from run to run, and the variation decides races between clients and the broker's own work: after
``commit_transaction`` returns, the coordinator's markers and another producer's batch race for the
same partition (docs/fidelity.md, "Broker work takes jittered time"). With the durations drawn from a
seed, every such order is reachable by some seed, and a seed still replays byte-identically.

The bounds (inclusive, in ms) and why (docs/fidelity.md has the measurements):

* ``request``: a request read from a connection waits for a request handler thread
  (``KafkaRequestHandlerPool``, the request queue of ``RequestChannel``) before it is handled;
* ``log.append``: a produce's append to a partition (the partition's lock, the segment write);
* ``txn.log.append``: the coordinator's replicated write to ``__transaction_state`` (at least the
  1 ms the model always took);
* ``markers``: the ``TransactionMarkerChannelManager`` queue: the coordinator answers EndTxn once
  PrepareCommit/PrepareAbort is durable and only then hands the markers to its inter-broker send
  thread, which drains the queue, connects and sends WriteTxnMarkers (measured on Kafka 4.1.2: the
  marker was visible 0.8-9.8 ms after ``commit_transaction`` returned).
"""

from __future__ import annotations

from random import Random
from typing import Mapping

from attrs import define, field

# kind -> (fewest, most) ms
WORK_MS: Mapping[str, tuple[int, int]] = {
    "request": (0, 1),
    "log.append": (0, 1),
    "txn.log.append": (1, 2),
    "markers": (0, 10),
}
# Every piece of work at its fewest ms: no draw (the timing of eosim before the jitter, markers aside).
FIXED_WORK_MS: Mapping[str, tuple[int, int]] = {kind: (low, low) for kind, (low, _high) in WORK_MS.items()}


def check_bounds(bounds: Mapping[str, tuple[int, int]]) -> None:
    """Raise ValueError unless ``bounds`` gives every kind of work 0 <= fewest <= most (1 for txn-log writes)."""
    if set(bounds) != set(WORK_MS):
        raise ValueError(f"work-time bounds must name exactly {sorted(WORK_MS)}, got {sorted(bounds)}")
    for kind, (low, high) in sorted(bounds.items()):
        if not 0 <= low <= high:
            raise ValueError(f"work-time bounds of {kind!r}: need 0 <= fewest <= most, got ({low}, {high})")
    if bounds["txn.log.append"][0] < 1:  # the coordinator learns of its write in a later event, never inside it
        raise ValueError("work-time bounds of 'txn.log.append': the fewest ms must be at least 1")


@define(eq=False)
class WorkTime:
    """The duration of each piece of a broker's work, drawn in the order the work happens."""

    rng: Random
    bounds: Mapping[str, tuple[int, int]] = WORK_MS

    _draws: dict[str, tuple[int, int, int]] = field(init=False)  # kind -> (low, n, bits of n)

    def __attrs_post_init__(self) -> None:
        check_bounds(self.bounds)
        self._draws = {kind: (low, high - low + 1, (high - low + 1).bit_length())
                       for kind, (low, high) in self.bounds.items()}

    def draw(self, kind: str) -> int:
        low, n, bits = self._draws[kind]
        if n == 1:
            return low
        # randint(low, high) is low + _randbelow(n), n = high - low + 1, and _randbelow draws getrandbits(bits)
        # until below n (random.py's _randbelow_with_getrandbits, 3.11-3.13): the same draws without randint's
        # argument checks and without _randbelow, three Python calls per piece of work
        getrandbits = self.rng.getrandbits
        r = getrandbits(bits)
        while r >= n:
            r = getrandbits(bits)
        return low + r
