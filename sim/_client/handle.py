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

Pause
-----
A stop-the-world pause (a GC pause, SIGSTOP; the fault layer's ``pause``) freezes the process: while
``network.asleep(name)`` lies ahead, a guarded process does not resume and a callback does not run;
both happen when the client wakes, in the order their events fired. Responses meanwhile arrive and
wait in the socket; the client's request timeouts, its own timers, fire only once it wakes (net.py).
"""

from __future__ import annotations

from typing import Any, Callable, Generator

import simpy

from eosim._client.config import validate_config

LEADER = ""  # the partition leader's node connection (also TxnOffsetCommit, idempotent InitProducerId)
TXN_COORDINATOR = "/txn"  # the TxnCoordinator logical broker
GROUP_COORDINATOR = "/group"  # the GroupCoordinator logical broker


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
        validated = validate_config(kind, config)
        self._client = validated.eosim_client  # whose reactions (eosim._client.errors.TABLES)
        self._jitter = self._world.rng(f"{name}/retry-jitter")
        return validated

    def _spawn(self, body: Generator) -> simpy.Process:
        """Start a process of this client: it dies with the client (see ``_guarded``)."""
        return self._env.process(self._guarded(body))

    def _guarded(self, body: Generator) -> Generator:
        """Run ``body`` step by step; once the client crashed it never resumes (and never returns)."""
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
            while (wake := self._wake()) > self._env.now:  # stopped by a pause: resumes when it wakes
                yield self._env.timeout(wake - self._env.now)
            if self._crashed:
                yield self._env.event()  # never triggered: the killed process is gone

    def _alive(self, callback: Callable[..., Any]) -> Callable[..., None]:
        """``callback`` for a timer or a response: does nothing once the client crashed."""
        def call(*args: Any) -> None:
            if self._crashed:
                return
            wake = self._wake()
            if wake > self._env.now:  # stopped by a pause: runs when it wakes
                self._env.timeout(wake - self._env.now).callbacks.append(lambda _e: call(*args))
                return
            callback(*args)
        return call

    def _wake(self) -> int:
        """When this client resumes from a stop-the-world pause (sim/_faults.py); 0 while it runs."""
        return self._cluster.network.asleep(self.name)
