"""Porting a confluent-kafka program: the simulated clients take str or bytes keys and values and
give bytes back, accept bootstrap.servers only when it names the simulated cluster, and refuse a
blocking call that was not yielded with a hint to yield it (docs/api.md, "Porting")."""

from __future__ import annotations

import zlib

import pytest

from eosim._client.config import ConfigError
from eosim._client.consumer import Consumer
from eosim._client.handle import UsageError
from eosim._client.message import TopicPartition
from eosim._client.producer import Producer
from eosim._client.sender import partition_for_key
from eosim._cluster import Cluster
from eosim._topology import cluster_config
from eosim._world import World


def make_cluster(topics=None):
    return Cluster(World(7), cluster_config({}), topics or {"t": 1})


def run(cluster, body):
    proc = cluster.world.env.process(body())
    cluster.world.env.run(until=proc)
    return proc.value


def test_a_bytes_key_partitions_as_its_str_twin():
    # rd_kafka_msg_partitioner_consistent hashes the key bytes; a str key is its UTF-8 encoding
    assert partition_for_key(b"k\xc3\xa9", 7) == partition_for_key("k\u00e9", 7) == zlib.crc32(b"k\xc3\xa9") % 7


def test_str_and_bytes_keys_and_values_come_back_as_bytes():
    cluster = make_cluster({"t": 3})
    producer = Producer({}, cluster=cluster, name="p")
    consumer = Consumer({"group.id": "g"}, cluster=cluster, name="c")
    reports = []

    def body():
        producer.produce("t", value=b"\x00raw", key=b"k1", on_delivery=lambda err, msg: reports.append(msg))
        producer.produce("t", value="text", key="k1", on_delivery=lambda err, msg: reports.append(msg))
        yield producer.flush()
        consumer.assign([TopicPartition("t", reports[0].partition(), 0)])
        return (yield consumer.consume(10, 2.0))

    got = run(cluster, body)
    assert [(m.key(), m.value()) for m in reports] == [(b"k1", b"\x00raw"), (b"k1", b"text")]
    assert [(m.key(), m.value()) for m in got] == [(b"k1", b"\x00raw"), (b"k1", b"text")]
    assert len(got[0]) == 4
    assert cluster.world.trace.to_jsonl()  # bytes render in the JSON trace


@pytest.mark.parametrize("servers", ["broker-1:9092", " broker-1:9092 "])
def test_bootstrap_servers_naming_the_simulated_cluster_is_accepted(servers):
    Producer({"bootstrap.servers": servers}, cluster=make_cluster(), name="p")


@pytest.mark.parametrize("key", ["bootstrap.servers", "metadata.broker.list"])
def test_bootstrap_servers_naming_another_cluster_is_refused(key):
    with pytest.raises(ConfigError, match="the simulated cluster is 'broker-1:9092'") as info:
        Consumer({key: "localhost:9092", "group.id": "g"}, cluster=make_cluster(), name="c")
    assert info.value.key == key


def test_a_blocking_call_not_yielded_is_reported_at_the_next_call():
    cluster = make_cluster()
    producer = Producer({"transactional.id": "tx"}, cluster=cluster, name="p")

    def body():
        producer.init_transactions()  # the bug: not yielded
        with pytest.raises(UsageError, match=r"Producer.init_transactions\(\) \(p\) was called but not yielded.*"
                                             r"yield it"):
            producer.begin_transaction()
        yield cluster.world.env.timeout(1000)

    run(cluster, body)
    # the dropped call never ran: no InitProducerId went out, no client op was traced
    requests = [e.data["msg"] for e in cluster.world.trace.events if e.kind == "net.request"]
    assert "InitProducerIdRequest" not in requests
    assert [e.data["op"] for e in cluster.world.trace.events if e.kind == "client.op"] == []


def test_a_blocking_call_not_yielded_is_reported_when_it_would_start():
    cluster = make_cluster()
    consumer = Consumer({"group.id": "g"}, cluster=cluster, name="c")

    def body():
        consumer.poll(1.0)  # the bug: not yielded, and no other call follows
        yield cluster.world.env.timeout(10)

    with pytest.raises(UsageError, match=r"Consumer.poll\(\) \(c\) was called but not yielded"):
        run(cluster, body)


def test_a_call_waited_for_by_any_means_is_fine():
    cluster = make_cluster()
    producer = Producer({}, cluster=cluster, name="p")
    env = cluster.world.env

    def body():
        producer.produce("t", value="v")
        flushed = yield env.any_of([producer.flush(1.0), env.timeout(5000)])
        return list(flushed.values())

    assert run(cluster, body) == [0]
