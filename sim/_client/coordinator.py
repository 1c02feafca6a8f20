"""eosim._client.coordinator
=========================

Where a client's coordinator requests go on a cluster of several brokers (issue 9, seam 5): the coordinator of a
transactional.id or a group is the leader of its internal partition, which moves when its broker dies. librdkafka
keeps the coordinator it last found (``rk_eos.txn_curr_coord``, rdkafka_txnmgr.c; ``rkcg_curr_coord``,
rdkafka_cgrp.c; the coordinator cache of ``rd_kafka_coord_req``, rdkafka_coord.c) and:

- finds it with FindCoordinator (key type transaction or group) sent to any usable broker
  (``rd_kafka_idemp_broker_any``: here the next of bootstrap.servers after one that failed), and queries again
  every 500 ms while the answer is an error or none comes (``rd_kafka_txn_coord_timer_start(rk, 500)``);
- forgets it when a request to it fails on its connection or is answered NOT_COORDINATOR or
  COORDINATOR_NOT_AVAILABLE (``rd_kafka_txn_coord_set(rk, NULL)``, ``rd_kafka_cgrp_coord_dead``), so the
  request's retry (the reaction tables of eosim._client.errors, which back off as librdkafka does) finds it again.

A request waits while the coordinator is being found (on librdkafka's logical coordinator broker, which holds its
queue until it has a node), within the request's own timeout. A cluster of one broker needs none of this: every
request goes to it.
"""

from __future__ import annotations

from typing import Any

import simpy
from attrs import define, field

from eosim.models.consumer_group import ConsumerGroupHeartbeatRequest
from eosim.models.errors import Errors
from eosim.models.group_coordinator import (
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    SyncGroupRequest,
    TxnOffsetCommitRequest,
)
from eosim.models.protocol import CoordinatorType, FindCoordinatorRequest, FindCoordinatorResponse
from eosim.models.txn_coordinator import (
    AddOffsetsToTxnRequest,
    AddPartitionsToTxnRequest,
    EndTxnRequest,
    InitProducerIdRequest,
)
from eosim._net import TIMED_OUT, Failure, Network

FIND_COORDINATOR_RETRY_MS = 500  # rd_kafka_txn_coord_timer_start(rk, 500) after a failed query
# the answers after which librdkafka forgets the coordinator and finds it again
COORDINATOR_MOVED = (Errors.NOT_COORDINATOR, Errors.COORDINATOR_NOT_AVAILABLE)
_TXN_REQUESTS = (AddPartitionsToTxnRequest, AddOffsetsToTxnRequest, EndTxnRequest)
_GROUP_REQUESTS = (JoinGroupRequest, SyncGroupRequest, HeartbeatRequest, LeaveGroupRequest, OffsetCommitRequest,
                   TxnOffsetCommitRequest, OffsetFetchRequest, ConsumerGroupHeartbeatRequest)


def coordinator_key(payload: Any) -> tuple[CoordinatorType, str] | None:
    """Whose coordinator serves ``payload``: (key type, key), None for a request any broker or a leader takes
    (an idempotent producer's InitProducerId goes to any broker: ``rd_kafka_idemp_broker_any``)."""
    if isinstance(payload, _TXN_REQUESTS) or (isinstance(payload, InitProducerIdRequest)
                                              and payload.transactional_id is not None):
        return CoordinatorType.TRANSACTION, payload.transactional_id
    if isinstance(payload, _GROUP_REQUESTS):
        return CoordinatorType.GROUP, payload.group_id
    return None


def _moved(answer: Any) -> bool:
    """Whether the answer says the coordinator is not there (a failed connection, or one of COORDINATOR_MOVED for
    the request or any of its partitions)."""
    if isinstance(answer, Failure):
        return True
    errors = [answer.error] if hasattr(answer, "error") else [r[-1] for r in getattr(answer, "results", ())]
    return any(e in COORDINATOR_MOVED for e in errors)


@define(eq=False)
class Coordinators:
    """One client's coordinators: key -> the node found for it."""

    env: simpy.Environment
    network: Network
    name: str  # the client's node name (connections are ``name + connection``)
    brokers: tuple[str, ...]  # bootstrap.servers
    socket_timeout_ms: int  # a FindCoordinator's own timeout (socket.timeout.ms), within the request's
    known: dict[tuple[CoordinatorType, str], str] = field(factory=dict)
    _next_broker: int = 0  # which broker the next FindCoordinator goes to

    def request(self, key: tuple[CoordinatorType, str], payload: Any, timeout_ms: int, connection: str) -> simpy.Event:
        """Send ``payload`` to ``key``'s coordinator, finding it first; the event fires with the answer (a
        ``Failure`` when none came within ``timeout_ms``)."""
        done = self.env.event()
        self.env.process(self._request(key, payload, timeout_ms, connection, done))
        return done

    def _request(self, key: tuple[CoordinatorType, str], payload: Any, timeout_ms: int, connection: str,
                 done: simpy.Event):
        deadline = self.env.now + timeout_ms
        while key not in self.known:
            if self.env.now >= deadline:
                done.succeed(TIMED_OUT)
                return
            yield from self._find(key, min(deadline - self.env.now, self.socket_timeout_ms))
            if key not in self.known:
                yield self.env.timeout(min(FIND_COORDINATOR_RETRY_MS, max(deadline - self.env.now, 0)))
        node = self.known[key]
        answer = yield self.network.request(self.name + connection, node, payload, max(deadline - self.env.now, 1))
        if _moved(answer) and self.known.get(key) == node:
            del self.known[key]
        done.succeed(answer)

    def _find(self, key: tuple[CoordinatorType, str], timeout_ms: int):
        broker = self.brokers[self._next_broker % len(self.brokers)]
        answer = yield self.network.request(f"{self.name}/find", broker,
                                            FindCoordinatorRequest(key_type=key[0], key=key[1]), timeout_ms)
        if isinstance(answer, Failure):
            self._next_broker += 1
            return
        if isinstance(answer, FindCoordinatorResponse) and answer.error is Errors.NONE:
            self.known[key] = f"broker-{answer.node_id}"
