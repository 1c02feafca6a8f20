"""eosim._client.metadata
======================

A producer's view of where each partition's leader is (librdkafka's metadata cache, rdkafka_metadata.c), for a
cluster with replicated partitions (sim/_replication.py): a Produce goes to the partition's leader. An unknown
leader is asked for with a Metadata request to a broker of bootstrap.servers (the next one after a failure), and
asked again after retry.backoff.ms while none is elected (LEADER_NOT_AVAILABLE). A Produce answered
NOT_LEADER_OR_FOLLOWER, or that failed on its connection, forgets the leader: librdkafka then refreshes the
partition's metadata (rd_kafka_toppar_leader_unavailable) and the retry goes to the new leader.

A cluster of one broker needs none of this: every request goes to it (eosim._client.producer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import simpy
from attrs import define, field

from eosim.models.errors import Errors
from eosim.models.protocol import MetadataRequest, ProduceRequest, ProduceResponse
from eosim.models.records import TopicPartition
from eosim._net import Failure

if TYPE_CHECKING:
    from eosim._client.producer import Producer


@define(eq=False)
class Metadata:
    rk: Producer
    leaders: dict[TopicPartition, str] = field(factory=dict)  # partition -> its leader's node
    _next_broker: int = 0  # which bootstrap broker the next Metadata request goes to

    def produce(self, request: ProduceRequest, timeout_ms: int) -> simpy.Event:
        """Send ``request`` (one partition's batch) to the partition's leader; the event fires with the answer."""
        rk = self.rk
        done = rk._env.event()
        rk._env.process(self._produce(request, timeout_ms, done))
        return done

    def _produce(self, request: ProduceRequest, timeout_ms: int, done: simpy.Event):
        rk = self.rk
        tp = request.batches[0][0]
        while tp not in self.leaders:
            yield from self._refresh(tp.topic, timeout_ms)
            if tp not in self.leaders:
                yield rk._env.timeout(rk.config.retry_backoff_ms)
            if rk._crashed:
                return
        answer = yield rk._cluster.network.request(rk.name, self.leaders[tp], request, timeout_ms)
        if isinstance(answer, Failure) or (isinstance(answer, ProduceResponse)
                                           and answer.responses[0].error is Errors.NOT_LEADER_OR_FOLLOWER):
            self.leaders.pop(tp, None)
        done.succeed(answer)

    def _refresh(self, topic: str, timeout_ms: int):
        rk = self.rk
        brokers = rk._cluster.broker_names
        broker = brokers[self._next_broker % len(brokers)]
        answer: Any = yield rk._cluster.network.request(f"{rk.name}/metadata", broker,
                                                        MetadataRequest(topics=(topic,)), timeout_ms)
        if isinstance(answer, Failure):
            self._next_broker += 1
            return
        for p in answer.partitions:
            if p.error is Errors.NONE:
                self.leaders[p.partition] = f"broker-{p.leader}"
