"""Facts about a real Kafka 4.1.2 broker that the simulator relies on.

Clients: confluent-kafka 2.16.1 (bundles librdkafka 2.16.0) and kafka-python
3.0.12. librdkafka sends InitProducerId v4, AddPartitionsToTxn v0, Produce v10
and EndTxn v1, so every client-driven commit/abort here follows pre-TV2 rules
even on a transaction.version=2 cluster. Findings: docs/real-kafka.md.
"""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import Consumer, IsolationLevel, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import OffsetSpec
from kafka import TopicPartition as KPTopicPartition
from kafka.admin import KafkaAdminClient

TIMEOUT = 30.0


@pytest.fixture(scope="module")
def kp_admin(kafka_broker):
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    yield admin
    admin.close()


def offsets(admin, topic: str) -> tuple[int, int]:
    """(HW, LSO) of partition 0: ListOffsets LATEST read_uncommitted / read_committed."""
    tp = TopicPartition(topic, 0)
    out = []
    for iso in (IsolationLevel.READ_UNCOMMITTED, IsolationLevel.READ_COMMITTED):
        futures = admin.list_offsets({tp: OffsetSpec.latest()}, isolation_level=iso, request_timeout=TIMEOUT)
        out.append(futures[tp].result().offset)
    return out[0], out[1]


def wait_offsets(admin, topic: str, expected: tuple[int, int]) -> None:
    # Markers are written after EndTxn returns (the coordinator answers once
    # PrepareCommit/PrepareAbort is in its log), so HW/LSO converge shortly after.
    deadline = time.monotonic() + TIMEOUT
    while (got := offsets(admin, topic)) != expected:
        assert time.monotonic() < deadline, f"(HW, LSO) stuck at {got}, expected {expected}"
        time.sleep(0.02)


def consume_to_eof(bootstrap: str, topic: str, isolation: str) -> tuple[list[tuple[int, bytes]], int]:
    """All records from offset 0 up to librdkafka's end of partition, and that end offset.

    For read_committed the end is the LSO, for read_uncommitted the HW.
    """
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"{topic}-{isolation}",
        "isolation.level": isolation,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        records = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is None:
                records.append((msg.offset(), msg.value()))
            elif msg.error().code() == KafkaError._PARTITION_EOF:
                return records, msg.offset()
            else:
                raise KafkaException(msg.error())
        raise AssertionError(f"no EOF on {topic} within {TIMEOUT}s; got {records}")
    finally:
        consumer.close()


def txn_producer(bootstrap: str, txn_id: str, **extra) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, **extra})
    producer.init_transactions(TIMEOUT)
    return producer


def produce_acked(producer: Producer, topic: str, values: list[bytes]) -> list[int]:
    """Produce and flush; return the offsets from the delivery reports."""
    reports = []
    for value in values:
        producer.produce(topic, value=value, partition=0,
                         on_delivery=lambda err, msg: reports.append((err, msg.offset())))
    assert producer.flush(TIMEOUT) == 0
    assert [err for err, _ in reports] == [None] * len(values)
    return [offset for _, offset in reports]


VALUES = [b"v0", b"v1", b"v2"]


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())



def test_finalized_transaction_version_is_the_requested_one(kafka_broker, kp_admin):
    tv = kp_admin.describe_features()["transaction.version"]
    assert tv["supported"] == (0, 2)
    if kafka_broker.transaction_version == 0:
        # Level 0 is "not finalized": the feature has no finalized range at all.
        assert "finalized" not in tv
    else:
        assert tv["finalized"] == (kafka_broker.transaction_version,) * 2


def test_committed_transaction_marker_takes_one_offset(kafka_broker, kafka_admin, new_topic):
    topic = new_topic()
    producer = txn_producer(kafka_broker.bootstrap, f"{topic}-txn")
    producer.begin_transaction()
    assert produce_acked(producer, topic, VALUES) == [0, 1, 2]
    producer.commit_transaction(TIMEOUT)

    wait_offsets(kafka_admin, topic, (4, 4))
    assert consume_to_eof(kafka_broker.bootstrap, topic, "read_committed") == (list(enumerate(VALUES)), 4)
    assert consume_to_eof(kafka_broker.bootstrap, topic, "read_uncommitted") == (list(enumerate(VALUES)), 4)
    # The next record lands at 4: the COMMIT marker sits at offset 3.
    plain = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    assert produce_acked(plain, topic, [b"after"]) == [4]


def test_open_transaction_holds_lso_at_its_first_offset(kafka_broker, kafka_admin, new_topic):
    topic = new_topic()
    producer = txn_producer(kafka_broker.bootstrap, f"{topic}-txn")
    producer.begin_transaction()
    assert produce_acked(producer, topic, VALUES) == [0, 1, 2]

    # Acked records are already below the HW (one replica); the LSO stays at the open txn's first offset.
    assert offsets(kafka_admin, topic) == (3, 0)
    assert consume_to_eof(kafka_broker.bootstrap, topic, "read_uncommitted") == (list(enumerate(VALUES)), 3)
    assert consume_to_eof(kafka_broker.bootstrap, topic, "read_committed") == ([], 0)
    producer.abort_transaction(TIMEOUT)


def test_aborted_transaction_is_hidden_from_read_committed(kafka_broker, kafka_admin, new_topic):
    topic = new_topic()
    producer = txn_producer(kafka_broker.bootstrap, f"{topic}-txn")
    producer.begin_transaction()
    assert produce_acked(producer, topic, VALUES) == [0, 1, 2]
    producer.abort_transaction(TIMEOUT)

    wait_offsets(kafka_admin, topic, (4, 4))
    assert consume_to_eof(kafka_broker.bootstrap, topic, "read_committed") == ([], 4)
    assert consume_to_eof(kafka_broker.bootstrap, topic, "read_uncommitted") == (list(enumerate(VALUES)), 4)


def test_second_init_transactions_fences_the_first_producer(kafka_broker, kafka_admin, kp_admin, new_topic):
    topic = new_topic()
    txn_id = f"{topic}-txn"
    tp = KPTopicPartition(topic, 0)
    log = _ListHandler()
    logger = logging.getLogger(f"rdkafka.{topic}")
    logger.addHandler(log)
    logger.setLevel(logging.DEBUG)
    zombie = txn_producer(kafka_broker.bootstrap, txn_id, debug="eos", logger=logger)
    zombie.begin_transaction()
    assert produce_acked(zombie, topic, [b"zombie"]) == [0]
    (state,) = kp_admin.describe_producers([tp])[tp].active_producers
    pid = state.producer_id
    assert (state.producer_epoch, state.current_transaction_start_offset) == (0, 0)

    successor = txn_producer(kafka_broker.bootstrap, txn_id)

    # InitProducerId aborted the zombie's open transaction: ABORT marker at offset 1,
    # written with the bumped epoch 1; the successor then got epoch 2.
    wait_offsets(kafka_admin, topic, (2, 2))
    (state,) = kp_admin.describe_producers([tp])[tp].active_producers
    assert (state.producer_id, state.producer_epoch, state.current_transaction_start_offset) == (pid, 1, -1)
    desc = kp_admin.describe_transactions([txn_id])[txn_id]
    assert (desc.producer_id, desc.producer_epoch, desc.state.value) == (pid, 2, "Empty")

    with pytest.raises(KafkaException) as caught:
        zombie.commit_transaction(TIMEOUT)
    err = caught.value.args[0]
    assert (err.code(), err.name()) == (KafkaError._FENCED, "_FENCED")
    assert (err.fatal(), err.retriable(), err.txn_requires_abort()) == (True, False, False)
    # On the wire the broker answered EndTxn v1 with INVALID_PRODUCER_EPOCH (PRODUCER_FENCED
    # needs EndTxn v2+); librdkafka folds it into _FENCED. Log lines are served by poll(),
    # which, with no error_cb, also raises the fatal error once.
    deadline = time.monotonic() + TIMEOUT
    while not any("EndTxn returned INVALID_PRODUCER_EPOCH" in m for m in log.messages):
        assert time.monotonic() < deadline, log.messages[-20:]
        try:
            zombie.poll(0.1)
        except KafkaException as exc:
            assert exc.args[0].code() == KafkaError._FENCED
    # Fatal is sticky: later transactional calls fail the same way.
    for call in (zombie.begin_transaction, zombie.abort_transaction):
        with pytest.raises(KafkaException) as again:
            call()
        assert again.value.args[0].code() == KafkaError._FENCED

    successor.begin_transaction()
    assert produce_acked(successor, topic, [b"successor"]) == [2]
    successor.commit_transaction(TIMEOUT)
    wait_offsets(kafka_admin, topic, (4, 4))
    assert consume_to_eof(kafka_broker.bootstrap, topic, "read_committed") == ([(2, b"successor")], 4)
    # EndTxn v1 is a pre-TV2 request: the commit does not bump the epoch, even on a TV2 cluster.
    (state,) = kp_admin.describe_producers([tp])[tp].active_producers
    assert (state.producer_id, state.producer_epoch) == (pid, 2)


def test_idempotent_producer_defaults(kafka_broker, kafka_admin, kp_admin, new_topic):
    def producer_states(topic):
        tp = KPTopicPartition(topic, 0)
        return kp_admin.describe_producers([tp])[tp].active_producers

    # librdkafka: idempotence is off by default, so the broker tracks no producer.
    plain = new_topic()
    assert produce_acked(Producer({"bootstrap.servers": kafka_broker.bootstrap}), plain, VALUES) == [0, 1, 2]
    assert offsets(kafka_admin, plain) == (3, 3)
    assert producer_states(plain) == []

    # enable.idempotence=true: a producer id at epoch 0, sequences 0..2, no markers, LSO = HW.
    idem = new_topic()
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "enable.idempotence": True})
    assert produce_acked(producer, idem, VALUES) == [0, 1, 2]
    assert offsets(kafka_admin, idem) == (3, 3)
    (state,) = producer_states(idem)
    assert state.producer_id >= 0
    assert (state.producer_epoch, state.last_sequence, state.current_transaction_start_offset) == (0, 2, -1)

    # kafka-python 3.x: idempotence on by default, with acks=all and 5 in flight.
    from kafka import KafkaProducer

    kp_topic = new_topic()
    kp = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    try:
        assert (kp.config["enable_idempotence"], kp.config["acks"],
                kp.config["max_in_flight_requests_per_connection"]) == (True, -1, 5)
        offsets_sent = [kp.send(kp_topic, value, partition=0).get(TIMEOUT).offset for value in VALUES]
    finally:
        kp.close()
    assert offsets_sent == [0, 1, 2]
    (state,) = producer_states(kp_topic)
    assert (state.producer_epoch, state.last_sequence) == (0, 2)
