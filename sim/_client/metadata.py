"""eosim._client.metadata
======================

A client's view of where each partition's leader is (librdkafka's metadata cache, rdkafka_metadata.c), for a
cluster with replicated partitions (sim/_replication.py): a producer's Produce and a consumer's Fetch and
ListOffsets go to the partition's leader. An unknown leader is asked for with a Metadata request to a broker of
bootstrap.servers (the next one after a failure), and asked again after retry.backoff.ms while none is elected
(LEADER_NOT_AVAILABLE). A request answered NOT_LEADER_OR_FOLLOWER (or FENCED_LEADER_EPOCH) for a partition, or
that failed on its connection, forgets that partition's leader: librdkafka then refreshes the partition's metadata
(rd_kafka_toppar_leader_unavailable; rd_kafka_handle_Fetch / rd_kafka_handle_ListOffsets for a consumer) and the
retry goes to the new leader.

A cluster of one broker needs none of this: every request goes to it (eosim._client.producer, .consumer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

import simpy
from attrs import define, field

from eosim.models.errors import Errors
from eosim.models.protocol import FetchResponse, ListOffsetsResponse, MetadataRequest, ProduceResponse
from eosim.models.records import TopicPartition
from eosim._net import Failure

if TYPE_CHECKING:
    from eosim._client.handle import Handle

# the partition errors after which librdkafka asks for the partition's leader again
LEADER_CHANGED = frozenset({Errors.NOT_LEADER_OR_FOLLOWER, Errors.FENCED_LEADER_EPOCH})


@define(eq=False)
class Metadata:
    rk: Handle
    leaders: dict[TopicPartition, str] = field(factory=dict)  # partition -> its leader's node
    _next_broker: int = 0  # which bootstrap broker the next Metadata request goes to

    def produce(self, request: Any, timeout_ms: int) -> simpy.Event:
        """Send ``request`` (a Produce of one partition's batch) to the partition's leader; the event fires with the
        answer."""
        return self.send(request.batches[0][0], request, timeout_ms, "")

    def send(self, tp: TopicPartition, request: Any, timeout_ms: int, connection: str) -> simpy.Event:
        """Send ``request`` (of ``tp`` alone) to ``tp``'s leader, on the client's ``connection`` to that node."""
        rk = self.rk
        done = rk._env.event()
        rk._env.process(self._send(tp, request, timeout_ms, connection, done))
        return done

    def _send(self, tp: TopicPartition, request: Any, timeout_ms: int, connection: str, done: simpy.Event):
        rk = self.rk
        yield from self.find_leaders([tp], timeout_ms)
        if rk._crashed:
            return
        answer = yield rk._cluster.network.request(rk.name + connection, self.leaders[tp], request, timeout_ms)
        self.learn(answer, [tp])
        done.succeed(answer)

    def find_leaders(self, tps: list[TopicPartition], timeout_ms: int) -> Generator:
        """Until every one of ``tps`` has a known leader (or the client crashed)."""
        rk = self.rk
        while True:
            missing = sorted({tp.topic for tp in tps if tp not in self.leaders})
            if not missing or rk._crashed:
                return
            for topic in missing:
                yield from self._refresh(topic, timeout_ms)
            if any(tp not in self.leaders for tp in tps):
                yield rk._env.timeout(rk.config.retry_backoff_ms)

    def learn(self, answer: Any, tps: list[TopicPartition]) -> None:
        """Forget the leader of every partition of ``tps`` that ``answer`` says moved (or all: no answer)."""
        if isinstance(answer, Failure):
            moved = tps
        elif isinstance(answer, ProduceResponse):
            moved = [r.partition for r in answer.responses if r.error in LEADER_CHANGED]
        elif isinstance(answer, FetchResponse):
            moved = [tp for tp, result in answer.responses if result.error in LEADER_CHANGED]
        elif isinstance(answer, ListOffsetsResponse):
            moved = [tp for tp, error, _offset in answer.responses if error in LEADER_CHANGED]
        else:
            moved = []
        for tp in moved:
            self.leaders.pop(tp, None)

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
