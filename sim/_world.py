"""eosim._world
=========

One simulated world: a SimPy environment with integer-millisecond time, a trace, and named random
streams derived from one seed. A stream's draws depend only on (seed, name), so adding a stream never
changes the draws of the others.
"""

from __future__ import annotations

import hashlib
from random import Random

import simpy
from attrs import define, field

from eosim._trace import Trace


def derive_seed(seed: int, name: str) -> int:
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@define(eq=False)
class World:
    seed: int
    env: simpy.Environment = field(factory=simpy.Environment)
    trace: Trace = field(init=False)
    _streams: dict[str, Random] = field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self.trace = Trace(clock=lambda: self.env.now)

    @property
    def now(self) -> int:
        return self.env.now

    def rng(self, name: str) -> Random:
        """The random stream called ``name`` (created on first use)."""
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = Random(derive_seed(self.seed, name))
        return stream
