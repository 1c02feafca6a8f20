"""eosim._client.handle
=================

What the simulated Producer and Consumer share about their librdkafka handle (``rd_kafka_t``).

Connections
-----------
librdkafka talks to a broker node over one connection per ``rd_kafka_broker_t``, and the coordinators
have broker objects of their own, *logical brokers* with their own connection even when they sit on the
same node as the partition leader (``rd_kafka_broker_add_logical``, rdkafka_broker.c):

* ``TxnCoordinator`` (``rk_eos.txn_coord``, rdkafka_txnmgr.c): the transactional producer's
  InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn;
* ``GroupCoordinator`` (``rkcg_coord``, rdkafka_cgrp.c): JoinGroup/SyncGroup, Heartbeat, LeaveGroup,
  OffsetCommit and OffsetFetch (the assignment's and ``committed()``'s, rdkafka_assignment.c);
* the node's own broker object (``<host>:<port>/<nodeid>``): Produce, Fetch and ListOffsets to the
  partition leader, the idempotent producer's InitProducerId (``rd_kafka_idemp_broker_any``), and
  TxnOffsetCommit, which ``rd_kafka_coord_req`` (rdkafka_coord.c) sends to the coordinator's *node*
  broker found by FindCoordinator, not to a logical broker.

A simulated client sends each request from the source node ``name + connection`` below, so the broker's
per-connection ordering (Kafka handles one request per connection at a time) applies per logical
connection, as it does against Kafka. Names keep the ``actor#incarnation`` prefix (``p1#2/txn``), so
traces and diagrams still group them by actor.

Crash
-----
``crash()`` is the process being killed: the handle vanishes without closing. No LeaveGroup, no EndTxn,
no flush, nothing more on the wire; requests already sent still reach the broker, their responses are
dropped. SimPy cannot cancel a Timeout or a pending request, so every process of the client runs under
``_guarded`` (it never resumes once the client crashed) and every callback under ``_alive`` (it does
nothing). A blocking call in progress never returns, like a call on a killed process. Later calls raise
what confluent-kafka raises on a destroyed handle: ``RuntimeError("Producer has been closed")`` /
``RuntimeError("Consumer closed")`` (ERR_MSG_PRODUCER_CLOSED / ERR_MSG_CONSUMER_CLOSED, confluent_kafka.h;
every method checks ``if (!self->rk)``); a scenario may only restart a crashed actor.

Blocking calls
--------------
A call that blocks in confluent-kafka (``poll``, ``flush``, ``init_transactions``, ...) returns a SimPy
process here, and the application's generator must ``yield`` it to wait, as a thread waits for the C
call. A process nobody yields would still run, but in the background: the code after it goes on at
once (an un-yielded ``init_transactions()`` makes the next ``begin_transaction()`` fail with _STATE).
So a blocking call nobody waits for is a usage error, detected at the first of two moments: the next
call on the same handle, or the moment the call would start running. Then it never runs, and
``UsageError`` says "yield it". Waiting means any SimPy waiter: ``yield call``, ``env.any_of([call,
...])`` or ``env.run(until=call)``; a callback registered by the handle itself (``_watch``) is not one.

Pause
-----
A stop-the-world pause (a GC pause, SIGSTOP; the fault layer's ``pause``) freezes the process: while
``network.asleep(name)`` lies ahead, a guarded process does not resume and a callback does not run;
both happen when the client wakes, in the order their events fired. Responses meanwhile arrive and
wait in the socket; the client's request timeouts, its own timers, fire only once it wakes (net.py).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Generator

import simpy
from attrs import define

from eosim._client.config import ConfigError, validate_config
from eosim._client.coordinator import Coordinators, coordinator_key
from eosim._client.errors import KafkaError
from eosim._net import DISCONNECTED, Failure

LEADER = ""  # the partition leader's node connection (also TxnOffsetCommit, idempotent InitProducerId)
TXN_COORDINATOR = "/txn"  # the TxnCoordinator logical broker
GROUP_COORDINATOR = "/group"  # the GroupCoordinator logical broker


def failure_code(failure: Failure) -> int:
    """librdkafka's local code for a request that got no response: its timeout (_TIMED_OUT), or its
    connection closed (_TRANSPORT, rd_kafka_broker_fail purging the wait-response queue)."""
    return KafkaError._TRANSPORT if failure is DISCONNECTED else KafkaError._TIMED_OUT  # type: ignore[attr-defined]


class UsageError(Exception):
    """The application broke the simulated API's contract: a blocking call that was not yielded."""


@define(eq=False)
class _Call:
    """A blocking API call whose process has not started yet."""

    op: str
    process: simpy.Process | None = None
    reported: bool = False


class _Watch:
    """A callback of the handle's own on a call's process (eosim's history recording): not a waiter."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[simpy.Event], None]) -> None:
        self.fn = fn

    def __call__(self, event: simpy.Event) -> None:
        self.fn(event)


class Handle:
    """The lifecycle shared by Producer and Consumer (mixed in; they set ``_env``, ``_cluster`` and ``name``)."""

    _env: simpy.Environment
    _crashed: bool = False

    def _open(self, kind: str, config: dict[str, Any], cluster: Any, name: str) -> Any:
        """The handle's part of rd_kafka_new: validated config, its world, and its seeded retry jitter."""
        self.name = name
        self._cluster = cluster
        self._world = cluster.world
        self._env = cluster.world.env
        self._trace = cluster.world.trace
        self._broker = cluster.broker  # the node a request goes to, but a replicated partition's (a property call less)
        self._emit_op = self._trace.emitter("client.op")  # a client.op per call: Trace.emitter's cheaper build
        self._calls: list[_Call] = []
        validated = validate_config(kind, config)
        _check_bootstrap(validated, cluster.bootstrap_servers)
        self._client = validated.eosim_client  # whose reactions (eosim._client.errors.TABLES)
        self._jitter = self._world.rng(f"{name}/retry-jitter")
        # several brokers: the coordinators are found with FindCoordinator (eosim._client.coordinator)
        self._coordinators = Coordinators(self._env, cluster.network, name, cluster.broker_names,
                                          validated.socket_timeout_ms) if cluster.brokers > 1 else None
        return validated

    def _to_broker(self, payload: Any, timeout_ms: int, connection: str) -> simpy.Event:
        """Several brokers: send on one of the handle's connections to the coordinator found for ``payload``, or to
        the cluster's broker when no coordinator serves it (one broker: the callers send to it directly)."""
        key = coordinator_key(payload)
        if key is not None:
            return self._coordinators.request(key, payload, timeout_ms, connection)
        return self._cluster.network.request(self.name + connection, self._broker, payload, timeout_ms)

    def _blocking(self, op: str, body: Generator) -> simpy.Process:
        """Start the blocking API call ``op``: the caller must yield the process returned."""
        if self._calls:
            self._check_yielded()
        call = _Call(op)
        call.process = self._env.process(self._guarded(body, call))
        self._calls.append(call)
        return call.process

    def _check_yielded(self) -> None:
        """UsageError when a blocking call made before this one was not yielded (every API call checks)."""
        for call in self._calls:
            if not call.reported and not _waited(call.process):
                call.reported = True
                raise UsageError(self._not_yielded(call.op))

    def _not_yielded(self, op: str) -> str:
        kind = type(self).__name__
        return (f"{kind}.{op}() ({self.name}) was called but not yielded, so it did not block: a blocking call "
                f"returns a SimPy event, yield it (`result = yield {kind.lower()}.{op}(...)`, docs/api.md)")

    def _watch(self, process: simpy.Process, fn: Callable[[simpy.Event], None]) -> None:
        """Call ``fn`` when ``process`` ends, before its waiters resume; not a waiter itself."""
        process.callbacks.append(_Watch(fn))

    def _spawn(self, body: Generator) -> simpy.Process:
        """Start a process of this client: it dies with the client (see ``_guarded``)."""
        return self._env.process(self._guarded(body))

    def _guarded(self, body: Generator, call: _Call | None = None) -> Generator:
        """Run ``body`` step by step; once the client crashed it never resumes (and never returns). The body
        of a blocking ``call`` starts only if the call was yielded (no generator layer of its own for that)."""
        if call is not None:
            self._calls.remove(call)
            if call.reported:  # already reported by the next call on the handle: it never runs
                return None
            if not _waited(call.process):
                call.reported = True
                raise UsageError(self._not_yielded(call.op))
        send: Callable[[Any], Any] = body.send
        value: Any = None
        while True:
            try:
                event = send(value)
            except StopIteration as stop:
                return stop.value
            try:
                value, send = (yield event), body.send
            except Exception as exc:  # noqa: BLE001 - a failed event is handed to the body, as SimPy does
                value, send = exc, body.throw
            network = self._cluster.network
            while network.paused and (wake := network.asleep(self.name)) > self._env._now:  # paused: resumes when it wakes
                yield self._env.timeout(wake - self._env.now)
            if self._crashed:
                yield self._env.event()  # never triggered: the killed process is gone

    def _alive(self, callback: Callable[..., Any]) -> Callable[..., None]:
        """``callback`` for a timer or a response: does nothing once the client crashed."""
        def call(*args: Any) -> None:
            if self._crashed:
                return
            # when this client resumes from a stop-the-world pause (sim/_faults.py); 0 while it runs
            network = self._cluster.network
            if network.paused:
                wake = network.asleep(self.name)
                if wake > self._env._now:  # stopped by a pause: runs when it wakes
                    self._env.call_later(wake - self._env._now, partial(self._alive_later, callback, args))
                    return
            callback(*args)
        return call

    def _alive_later(self, callback: Callable[..., Any], args: tuple[Any, ...], _event: simpy.Event) -> None:
        # a fresh guard, not ``call`` itself: a closure that names itself is a reference cycle, and everything
        # it holds (a request's batch, messages and delivery callbacks) would wait for the garbage collector
        self._alive(callback)(*args)


def first_of(env: simpy.Environment, waits: list[simpy.Event]) -> simpy.Event:
    """An event that fires with the first of ``waits``: one event is waited for itself (an AnyOf
    of it would cost another SimPy event, and fire after it)."""
    return waits[0] if len(waits) == 1 else env.any_of(waits)


def _waited(process: simpy.Process | None) -> bool:
    if process is not None:
        for cb in process.callbacks or ():  # a loop, not any() over a generator: on every blocking call
            if not isinstance(cb, _Watch):
                return True
    return False


def _check_bootstrap(config: Any, servers: tuple[str, ...]) -> None:
    """bootstrap.servers may be left out (the simulation is the cluster); given, it must name the
    simulated cluster, so a program ported from confluent-kafka never silently talks to a cluster it
    did not ask for."""
    if config.bootstrap_servers is None:
        return
    key = next((k for k in ("bootstrap.servers", "metadata.broker.list") if k in config.original), "bootstrap.servers")
    given = [s.strip() for s in config.bootstrap_servers.split(",") if s.strip()]
    foreign = [s for s in given if s not in servers]
    if foreign or not given:
        raise ConfigError(key, f'"{key}" is {config.bootstrap_servers!r}, but the simulated cluster is '
                               f'{",".join(servers)!r}: leave {key} out, or give Simulation.bootstrap_servers')
