"""eosim._world
=========

One simulated world: a SimPy environment with integer-millisecond time, a trace, and named random
streams derived from one seed. A stream's draws depend only on (seed, name), so adding a stream never
changes the draws of the others.
"""

from __future__ import annotations

import hashlib
import sys
from functools import partial
from heapq import heappop, heappush
from random import Random
from types import MethodType
from typing import Any, Callable

import simpy
from simpy.core import NORMAL, URGENT, BoundClass, EmptySchedule, StopSimulation
from attrs import define, field

from eosim._trace import Trace


def derive_seed(seed: int, name: str) -> int:
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class _Timer:
    """What the loop needs of a Timeout with one callback: ``callbacks`` and ``_ok``."""

    __slots__ = ("callbacks",)
    _ok = True


_new_timer = partial(object.__new__, _Timer)  # no Python __init__: built in C


class _Process(simpy.Process):
    """SimPy's Process, started in one Python call: SimPy's __init__ calls Initialize's, which calls ``schedule``.
    Its Initialize is the same event at the same place in the queue (now, URGENT, SimPy's event id)."""

    def __init__(self, env: Environment, generator: Any) -> None:
        if not hasattr(generator, "throw"):
            raise ValueError(f"{generator} is not a generator.")
        self.env = env
        self.callbacks = []
        self._generator = generator
        init = self._target = _new_initialize()
        init.env, init.callbacks, init._value, init._ok = env, [self._resume], None, True
        heappush(env._queue, (env._now, URGENT, next(env._eid), init))


class _Timeout(simpy.Timeout):
    """SimPy's Timeout in one Python call (SimPy's __init__ calls ``schedule``): the same place in the queue."""

    def __init__(self, env: Environment, delay: int, value: Any = None) -> None:
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        self.env = env
        self.callbacks = []
        self._value = value
        self._delay = delay
        self._ok = True
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), self))


# shown as SimPy's own in reprs (``<Process(gen) object at ...>``), as they are SimPy's events
_Process.__name__, _Process.__qualname__ = "Process", "Process"
_Timeout.__name__, _Timeout.__qualname__ = "Timeout", "Timeout"

_new_initialize = partial(object.__new__, simpy.events.Initialize)  # its fields set by _Process, without its __init__


class Environment(simpy.Environment):
    """SimPy's environment, stepping in one loop: ``run`` processes events as SimPy's ``step`` does, without a
    Python call per event (simpy is pinned: the loop reads its queue). It counts the events it processed
    (``processed``) and, with ``events_left`` set, stops before the event past that budget as ``until`` does
    (StopSimulation), setting ``spent``."""

    def __init__(self) -> None:
        super().__init__()
        # SimPy binds its event classes (timeout, event, process, ...) to the instance so that ``env.timeout``
        # is no descriptor call, but only those in the instance's own class: a subclass loses that.
        for name, attr in vars(simpy.Environment).items():
            if type(attr) is BoundClass:
                setattr(self, name, getattr(self, name))
        self.process, self.timeout = MethodType(_Process, self), MethodType(_Timeout, self)
        self.events_left = sys.maxsize
        self.spent = False
        self.processed = 0

    def call_later(self, delay: int, callback: Callable[[Any], None]) -> None:
        """Call ``callback`` in ``delay`` ms, where ``timeout(delay).callbacks.append(callback)`` would: the same
        place in the queue (time, priority, SimPy's event id), the same event count."""
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        timer = _new_timer()  # no SimPy event
        timer.callbacks = [callback]
        heappush(self._queue, (self._now + delay, NORMAL, next(self._eid), timer))

    def run(self, until: Any = None) -> Any:
        if until is not None:
            if not isinstance(until, simpy.Event):
                at = until if isinstance(until, int) else float(until)
                if at <= self.now:
                    raise ValueError(f"until ({at}) must be greater than the current simulation time")
                until = simpy.Event(self)
                until._ok = True
                until._value = None
                self.schedule(until, URGENT, at - self.now)
            elif until.callbacks is None:
                return until.value
            until.callbacks.append(StopSimulation.callback)
        try:
            self._loop()
        except StopSimulation as exc:
            return exc.args[0]
        except EmptySchedule:
            if until is not None:
                raise RuntimeError(f'No scheduled events left but "until" event was not triggered: {until}') from None
        return None

    def _loop(self) -> None:
        queue, left = self._queue, self.events_left
        try:
            while True:
                if not left:
                    self.spent = True
                    raise StopSimulation(None)
                left -= 1
                try:
                    self._now, _, _, event = heappop(queue)
                except IndexError:
                    raise EmptySchedule from None
                callbacks, event.callbacks = event.callbacks, None
                try:
                    for callback in callbacks:
                        callback(event)
                except StopSimulation:
                    event.callbacks = callbacks[callbacks.index(callback) + 1:]
                    self.schedule(event, -1)
                    raise
                if not event._ok and not hasattr(event, "_defused"):
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    raise exc
        finally:
            self.processed += self.events_left - left
            self.events_left = left


@define(eq=False)
class World:
    seed: int
    env: Environment = field(factory=Environment)
    trace: Trace = field(init=False)
    _streams: dict[str, Random] = field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        env = self.env
        # SimPy's ``now`` without a Python call per event: neither its property nor a lambda
        self.trace = Trace(clock=partial(getattr, env, "_now"))

    @property
    def now(self) -> int:
        return self.env._now  # not SimPy's ``now`` property: one Python call less, on every request's path

    def rng(self, name: str) -> Random:
        """The random stream called ``name`` (created on first use)."""
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = Random(derive_seed(self.seed, name))
        return stream
