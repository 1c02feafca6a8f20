"""sim/_realkafka/proxy.py on a real broker: clients bootstrapped at the proxy stay behind it (the
broker's PROXIED listener advertises the proxy's port), and a dropped Produce response makes a plain
producer write twice and the idempotent producer once (docs/conformance.md)."""

from __future__ import annotations

import pytest

from eosim._realkafka.driver import proxied_listener
from eosim._realkafka.proxy import DropRule, KafkaProxy

SOCKET_TIMEOUT_MS = 1000


@pytest.fixture
def proxy_for(kafka_admin):
    upstream, port = proxied_listener(kafka_admin)
    started = []

    def make(*rules: DropRule) -> KafkaProxy:
        proxy = KafkaProxy(("127.0.0.1", upstream), port, list(rules))
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.close()


def _produce_one(bootstrap: str, topic: str, **config) -> list[tuple]:
    import confluent_kafka as ck

    producer = ck.Producer({"bootstrap.servers": bootstrap, "socket.timeout.ms": SOCKET_TIMEOUT_MS, **config})
    reports = []
    producer.produce(topic, b"v1", key=b"k1", partition=0,
                     on_delivery=lambda err, msg: reports.append((err, msg.offset())))
    assert producer.flush(30) == 0
    return reports


def _log(bootstrap: str, topic: str) -> list[tuple[int, bytes]]:
    import confluent_kafka as ck

    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "enable.auto.commit": False})
    try:
        consumer.assign([ck.TopicPartition(topic, 0, 0)])
        low, high = consumer.get_watermark_offsets(ck.TopicPartition(topic, 0), timeout=10)
        records = []
        while len(records) < high - low:
            for msg in consumer.consume(high - low - len(records), 5):
                assert msg.error() is None, msg.error()
                records.append((msg.offset(), msg.value()))
        return records
    finally:
        consumer.close()


def test_traffic_goes_through_the_proxy(proxy_for, kafka_broker, new_topic):
    topic = new_topic()
    proxy = proxy_for()
    assert _produce_one(proxy.address, topic) == [(None, 0)]
    # Metadata answered with the proxy's port, so the Produce request came through it too.
    assert proxy.rules.seen[("Produce", "request")] == 1
    assert proxy.rules.seen[("Produce", "response")] == 1
    assert proxy.events == []
    assert _log(kafka_broker.bootstrap, topic) == [(0, b"v1")]


def test_lost_produce_response_makes_a_plain_producer_write_twice(proxy_for, kafka_broker, new_topic):
    topic = new_topic()
    proxy = proxy_for(DropRule("lose-produce-response", "Produce", "response", 1))
    assert _produce_one(proxy.address, topic, **{"enable.idempotence": False}) == [(None, 1)]
    assert [(e.rule, e.api, e.direction) for e in proxy.events] == [("lose-produce-response", "Produce", "response")]
    assert proxy.rules.seen[("Produce", "request")] == 2  # the retry after socket.timeout.ms
    assert _log(kafka_broker.bootstrap, topic) == [(0, b"v1"), (1, b"v1")]


def test_lost_produce_response_is_deduplicated_for_the_idempotent_producer(proxy_for, kafka_broker, new_topic):
    topic = new_topic()
    proxy = proxy_for(DropRule("lose-produce-response", "Produce", "response", 1))
    assert _produce_one(proxy.address, topic, **{"enable.idempotence": True}) == [(None, 0)]
    assert len(proxy.events) == 1
    assert proxy.rules.seen[("Produce", "request")] == 2
    assert _log(kafka_broker.bootstrap, topic) == [(0, b"v1")]


def test_lost_produce_request_is_retried_and_written_once(proxy_for, kafka_broker, new_topic):
    topic = new_topic()
    proxy = proxy_for(DropRule("lose-produce-request", "Produce", "request", 1))
    assert _produce_one(proxy.address, topic, **{"enable.idempotence": False}) == [(None, 0)]
    assert proxy.rules.seen[("Produce", "request")] == 2
    assert _log(kafka_broker.bootstrap, topic) == [(0, b"v1")]
