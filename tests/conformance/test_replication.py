"""Replication facts of a real 3-broker Kafka 4.1.2 cluster, each compared with what the pure replication model
(``eosim.models.partition`` + ``eosim.models.replication_control``) says for the same sequence.

The model side is the property tests' synchronous wiring (``Cluster`` in tests/property/test_replication_properties.py)
driven through the same steps: produce, followers fetch (``replicate``), a broker killed, time passing past the
controller's session timeout (``tick``), a restart. Every topic is assigned to replicas [1, 2, 3] as the model's
partition is, so both elect the same brokers. The cluster (sim/_realkafka/cluster.py) is shared by the session; a
test that kills a broker gets it restarted by the ``kafka_cluster`` fixture. Findings: docs/real-kafka.md.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, IsolationLevel, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaConnectionError, for_code
from kafka.net.compat import KafkaNetClient
from kafka.protocol.producer import ProduceRequest
from kafka.record.memory_records import MemoryRecordsBuilder

from eosim._realkafka.cluster import SESSION_TIMEOUT_MS
from eosim.models.config import ReplicationConfig
from eosim.models.errors import Errors
from eosim.models.partition import Acks

TIMEOUT = 60.0
REPLICAS = [1, 2, 3]

# Replication does not depend on transaction.version: these facts are checked in the TV2 pass only (the 3-broker
# library scenarios run in both, tests/conformance/test_scenarios.py).
pytestmark = pytest.mark.skipif(os.environ.get("EOSIM_KAFKA_TV", "2") != "2",
                                reason="replication facts are checked in the transaction.version=2 pass")


def _load_model_cluster():
    # The property tests' wiring of three Partitions and the controller, the one place it is defined.
    path = Path(__file__).resolve().parents[1] / "property" / "test_replication_properties.py"
    spec = importlib.util.spec_from_file_location("_replication_model_wiring", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Cluster, module.TP


ModelCluster, MODEL_TP = _load_model_cluster()


def model(min_isr: int) -> ModelCluster:
    return ModelCluster(ReplicationConfig(min_insync_replicas=min_isr, broker_session_timeout_ms=SESSION_TIMEOUT_MS))


def model_fence(m: ModelCluster) -> None:
    """Time passes until the controller has fenced a killed broker, as the tests wait for on the real cluster."""
    m.tick(SESSION_TIMEOUT_MS + 100)


def model_partition(m: ModelCluster) -> dict[str, object]:
    """The controller's registration of the partition, in ``describe_partition``'s shape."""
    r = m.controller.partition(MODEL_TP)
    return {"leader": r.leader, "leader_epoch": r.leader_epoch, "isr": sorted(r.isr), "elr": sorted(r.elr),
            "last_known_elr": sorted(r.last_known_elr)}


def model_leader_log(m: ModelCluster) -> list[tuple[int, str, int]]:
    leader = m.controller.partition(MODEL_TP).leader
    return [(b.base_offset + i, r.value, b.partition_leader_epoch) for b in m.parts[leader].log.batches
            for i, r in enumerate(b.records)]


# --- the real side --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(kafka_cluster_session):
    return AdminClient({"bootstrap.servers": kafka_cluster_session.bootstrap, "reconnect.backoff.max.ms": 250})


@pytest.fixture(scope="module")
def kp_admin(kafka_cluster_session):
    admin = KafkaAdminClient(bootstrap_servers=kafka_cluster_session.bootstrap)
    yield admin
    admin.close()


@pytest.fixture
def topic(admin, request):
    """Factory: topic(min_isr) -> a fresh 1-partition topic on replicas [1, 2, 3], leader 1, full ISR."""

    def make(min_isr: int) -> str:
        name = f"{re.sub(r'[^A-Za-z0-9._-]', '-', request.node.name)[:80]}-{uuid.uuid4().hex[:8]}"
        futures = admin.create_topics([NewTopic(name, 1, replica_assignment=[REPLICAS],
                                                config={"min.insync.replicas": str(min_isr)})])
        futures[name].result(timeout=TIMEOUT)
        wait_partition(admin, name, lambda leader, isr: leader == 1 and isr == REPLICAS)
        return name

    return make


def partition_state(admin, topic: str) -> tuple[int, list[int]]:
    """(leader, sorted ISR) of partition 0 in a broker's metadata; (-1, []) while that broker does not know it yet,
    or when the Metadata request timed out (librdkafka may still be asking a broker that was just killed)."""
    try:
        part = admin.list_topics(topic, timeout=5).topics[topic].partitions.get(0)
    except KafkaException:
        return -1, []
    return (-1, []) if part is None else (part.leader, sorted(part.isrs))


def describe_partition(kp_admin, topic: str) -> dict[str, object]:
    """The controller's registration of partition 0 as a broker's metadata has it (DescribeTopicPartitions, the
    KIP-966 API that carries the ELR). kafka-python sends it to one broker and does not fail over: a request that
    went to a killed broker is sent again, and reaches another."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            (part,) = kp_admin.describe_topic_partitions([topic])["topics"][0]["partitions"]
            break
        except KafkaConnectionError:
            assert time.monotonic() < deadline, f"DescribeTopicPartitions({topic}) failed for {TIMEOUT}s"
            time.sleep(0.1)
    return {"leader": part["leader_id"], "leader_epoch": part["leader_epoch"], "isr": sorted(part["isr_nodes"]),
            "elr": sorted(part["eligible_leader_replicas"] or ()),
            "last_known_elr": sorted(part["last_known_elr"] or ())}


def wait_partition(admin, topic: str, ok) -> tuple[int, list[int]]:
    deadline = time.monotonic() + TIMEOUT
    while not ok(*(state := partition_state(admin, topic))):
        assert time.monotonic() < deadline, f"{topic}: (leader, ISR) stuck at {state}"
        time.sleep(0.1)
    return state


def produce(cluster, topic: str, value: str, acks: str, **conf) -> tuple[str, int]:
    """(error name or "NONE", offset) of one record, with no client retries: the broker's first answer."""
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": acks, "retries": 0,
                         "reconnect.backoff.max.ms": 250, **conf})
    results = []
    producer.produce(topic, value.encode(), partition=0,
                     on_delivery=lambda err, msg: results.append((err.name(), None) if err else ("NONE", msg.offset())))
    producer.flush(TIMEOUT)
    assert len(results) == 1, f"no delivery report for {value} within {TIMEOUT}s"
    return results[0]


def high_watermark(admin, topic: str) -> tuple[int, int]:
    """(HW, leader epoch) from the leader: ListOffsets LATEST, read_uncommitted."""
    tp = TopicPartition(topic, 0)
    info = admin.list_offsets({tp: OffsetSpec.latest()}, isolation_level=IsolationLevel.READ_UNCOMMITTED,
                              request_timeout=TIMEOUT)[tp].result()
    return info.offset, info.leader_epoch


def consume(cluster, topic: str) -> list[tuple[int, str, int]]:
    """(offset, value, leader epoch of its batch) of every record below the HW."""
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": topic, "enable.auto.commit": False,
                         "enable.partition.eof": True, "isolation.level": "read_uncommitted"})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        records = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is None:
                records.append((msg.offset(), msg.value().decode(), msg.leader_epoch()))
            elif msg.error().code() == KafkaError._PARTITION_EOF:
                return records
            else:
                raise KafkaException(msg.error())
        raise AssertionError(f"no end of partition on {topic} within {TIMEOUT}s; got {records}")
    finally:
        consumer.close()


@contextlib.contextmanager
def raw_client(cluster, node_id: int):
    """kafka-python's protocol-level client, already connected to ``node_id``."""
    client = KafkaNetClient(bootstrap_servers=cluster.bootstrap)
    try:
        client.check_version()  # bootstraps the client's metadata
        client.await_ready(node_id, timeout_ms=int(TIMEOUT * 1000))
        yield client
    finally:
        client.close()


def raw_produce(client, node_id: int, topic: str, value: str, timeout_ms: int) -> str:
    """One acks=all Produce v9 sent to ``node_id``; the broker's error name. The client waits well past
    ``timeout_ms``, so the answer is the broker's, not a client-side timeout."""
    builder = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
    builder.append(timestamp=None, key=None, value=value.encode())
    builder.close()
    data = ProduceRequest.TopicProduceData
    request = ProduceRequest(
        transactional_id=None, acks=-1, timeout_ms=timeout_ms, min_version=9, max_version=9,
        topic_data=[data(name=topic, partition_data=[data.PartitionProduceData(index=0, records=builder.buffer())])])
    response = client.send_and_receive(node_id, request, timeout_ms=timeout_ms + 30_000)
    error_code = response.responses[0].partition_responses[0].error_code
    return "NONE" if error_code == 0 else for_code(error_code).message


def model_answers(m: ModelCluster) -> dict[str, tuple[str, int | None]]:
    """value -> (error name, offset); an error has no offset (confluent-kafka reports -1001, the model -1)."""
    return {v: (r.error.name, r.base_offset if r.error is Errors.NONE else None) for v, r in m.answers.items()}


# --- the facts ----------------------------------------------------------------------------------------------


def test_min_isr_3_with_one_of_three_down_refuses_acks_all_and_the_restarted_broker_rejoins(
        kafka_cluster, admin, kp_admin, topic):
    m = model(3)
    m.produce(Acks.ALL)
    m.replicate(2)
    m.crash(3)
    model_fence(m)
    model_down = model_partition(m)
    m.produce(Acks.ALL)
    m.produce(Acks.ONE)
    m.replicate(2)
    model_hw_down = m.parts[1].high_watermark
    m.restart(3)
    m.replicate(3)
    model_back = model_partition(m)
    m.produce(Acks.ALL)
    m.replicate(2)
    answers = model_answers(m)

    name = topic(3)
    real = {"v1": produce(kafka_cluster, name, "v1", "all")}
    kafka_cluster.kill(3)
    wait_partition(admin, name, lambda leader, isr: leader != -1 and isr != REPLICAS)
    real_down = describe_partition(kp_admin, name)
    real["v2"] = produce(kafka_cluster, name, "v2", "all")
    real["v3"] = produce(kafka_cluster, name, "v3", "1")
    time.sleep(1.0)  # a follower fetch round (replica.fetch.wait.max.ms 500): the HW would move now if it could
    real_hw_down = high_watermark(admin, name)[0]
    kafka_cluster.restart(3)
    wait_partition(admin, name, lambda leader, isr: isr == REPLICAS)
    real_back = describe_partition(kp_admin, name)
    real["v4"] = produce(kafka_cluster, name, "v4", "all")

    # the fenced broker leaves the ISR for the ELR (KIP-966: the ISR fell below min.insync.replicas)
    assert model_down == real_down == {"leader": 1, "leader_epoch": 0, "isr": [1, 2], "elr": [3],
                                       "last_known_elr": []}, (model_down, real_down)
    # acks=all is refused before the append; acks=1 is not subject to min.insync.replicas
    assert answers == real == {"v1": ("NONE", 0), "v2": ("NOT_ENOUGH_REPLICAS", None), "v3": ("NONE", 1),
                               "v4": ("NONE", 2)}, (answers, real)
    # the strict min-ISR rule: the acks=1 record is not committed while the ISR is below min.insync.replicas
    assert model_hw_down == real_hw_down == 1
    # the restarted broker catches up and rejoins the ISR, which empties the ELR; no election happened
    assert model_back == real_back == {"leader": 1, "leader_epoch": 0, "isr": REPLICAS, "elr": [],
                                       "last_known_elr": []}, (model_back, real_back)


def test_acks_all_min_isr_2_survives_killing_the_leader(kafka_cluster, admin, kp_admin, topic):
    m = model(2)
    m.produce(Acks.ALL)
    m.replicate(2)
    m.crash(1)
    model_fence(m)
    model_failover = model_partition(m)
    m.produce(Acks.ALL)
    m.replicate(2)
    answers = model_answers(m)
    model_log = model_leader_log(m)
    m.restart(1)
    m.replicate(3)
    model_back = model_partition(m)

    name = topic(2)
    real = {"v1": produce(kafka_cluster, name, "v1", "all")}
    kafka_cluster.kill(1)
    wait_partition(admin, name, lambda leader, isr: leader not in (1, -1))
    real_failover = describe_partition(kp_admin, name)
    real["v2"] = produce(kafka_cluster, name, "v2", "all")
    real_log = consume(kafka_cluster, name)
    kafka_cluster.restart(1)
    wait_partition(admin, name, lambda leader, isr: isr == REPLICAS)
    real_back = describe_partition(kp_admin, name)

    # the controller elects the first replica of the ISR in assignment order, at a new leader epoch; the dead
    # broker leaves the ISR, and the ELR stays empty (the ISR is still at min.insync.replicas)
    assert model_failover == real_failover == {"leader": 2, "leader_epoch": 1, "isr": [2, 3], "elr": [],
                                               "last_known_elr": []}, (model_failover, real_failover)
    assert answers == real == {"v1": ("NONE", 0), "v2": ("NONE", 1)}
    # the acknowledged record is on the new leader; the new leader's batches carry the bumped epoch
    assert model_log == real_log == [(0, "v1", 0), (1, "v2", 1)]
    # the old leader comes back as a follower and rejoins the ISR; leadership stays where it is
    assert model_back == real_back == {"leader": 2, "leader_epoch": 1, "isr": REPLICAS, "elr": [],
                                       "last_known_elr": []}, (model_back, real_back)


def test_hw_does_not_advance_below_min_isr_so_acks_all_times_out(kafka_cluster, admin, kp_admin, topic):
    """KIP-966's strict min-ISR rule: an acks=all request appended while the ISR was full waits; once the ISR drops
    below min.insync.replicas the HW stays, so the request times out (REQUEST_TIMED_OUT) instead of being answered
    NOT_ENOUGH_REPLICAS_AFTER_APPEND as before 4.0. The record stays in the log and is committed once the ISR is
    back."""
    request_timeout_ms = 3 * SESSION_TIMEOUT_MS  # the controller fences the killed follower well within it
    m = model(3)
    m.produce(Acks.ALL)
    m.replicate(2)
    m.crash(3)
    m.produce(Acks.ALL, timeout_ms=request_timeout_ms)
    m.replicate(2)
    model_fence(m)
    m.tick(request_timeout_ms)
    model_down = model_partition(m)
    model_hw_down = m.parts[1].high_watermark
    answers = {v: error for v, (error, _) in model_answers(m).items()}
    m.restart(3)
    m.replicate(3)
    model_hw_back = m.parts[1].high_watermark
    model_log = [(o, v) for o, v, _ in model_leader_log(m)]

    name = topic(3)
    real = {"v1": produce(kafka_cluster, name, "v1", "all")[0]}
    with raw_client(kafka_cluster, 1) as client:
        kafka_cluster.kill(3)
        # sent at once: the leader appends it while the killed follower is still in the ISR
        real["v2"] = raw_produce(client, 1, name, "v2", request_timeout_ms)
    real_down = describe_partition(kp_admin, name)
    real_hw_down = high_watermark(admin, name)[0]
    kafka_cluster.restart(3)
    wait_partition(admin, name, lambda leader, isr: isr == REPLICAS)
    deadline = time.monotonic() + TIMEOUT
    while (real_hw_back := high_watermark(admin, name)[0]) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    real_log = [(o, v) for o, v, _ in consume(kafka_cluster, name)]

    assert model_down == real_down == {"leader": 1, "leader_epoch": 0, "isr": [1, 2], "elr": [3],
                                       "last_known_elr": []}, (model_down, real_down)
    assert answers == real == {"v1": "NONE", "v2": "REQUEST_TIMED_OUT"}, (answers, real)
    assert model_hw_down == real_hw_down == 1
    assert model_hw_back == real_hw_back == 2
    assert model_log == real_log == [(0, "v1"), (1, "v2")]


def test_acks_1_loses_an_acknowledged_record_on_leader_failover(kafka_cluster, admin, kp_admin, topic):
    """The classic loss without an unclean election: the leader acknowledges an acks=1 record no follower has
    fetched, dies, and a follower from the ISR becomes leader; the old leader truncates the record when it comes
    back (KIP-101), and the offset is reused."""
    m = model(1)
    m.produce(Acks.ONE)
    m.replicate(2)
    m.produce(Acks.ONE)  # the followers are paused: they never fetch it
    m.crash(1)
    model_fence(m)
    model_failover = model_partition(m)
    m.produce(Acks.ONE)
    m.replicate(2)
    answers = model_answers(m)
    model_log = model_leader_log(m)
    m.restart(1)
    m.replicate(3)
    model_back = model_partition(m)
    model_truncated = [(t.offset, [r.value for b in t.removed for r in b.records]) for t in m.truncated]

    name = topic(1)
    producer = Producer({"bootstrap.servers": kafka_cluster.bootstrap, "acks": "1", "retries": 0,
                         "reconnect.backoff.max.ms": 250})
    real = {}

    def send(value: str) -> None:
        producer.produce(name, value.encode(), partition=0, on_delivery=lambda err, msg: real.__setitem__(
            value, (err.name(), None) if err else ("NONE", msg.offset())))
        producer.flush(TIMEOUT)

    send("v1")
    deadline = time.monotonic() + TIMEOUT
    while high_watermark(admin, name)[0] < 1:  # both followers have v1
        assert time.monotonic() < deadline, "v1 never committed"
        time.sleep(0.05)
    # Paused for well under the 3 s session timeout, so the controller does not fence the followers.
    kafka_cluster.pause(2)
    kafka_cluster.pause(3)
    try:
        # A follower's fetch already waiting at the leader (a long poll of replica.fetch.wait.max.ms, 500 ms by
        # default) would carry v2 into the paused follower's socket, and the follower would append it on resume:
        # let those fetches expire first. CI saw v2 survive this way.
        time.sleep(0.8)
        send("v2")
        kafka_cluster.kill(1)
    finally:
        kafka_cluster.resume(2)
        kafka_cluster.resume(3)
    producer.flush(TIMEOUT)
    wait_partition(admin, name, lambda leader, isr: leader not in (1, -1))
    real_failover = describe_partition(kp_admin, name)
    send("v3")
    real_log = consume(kafka_cluster, name)
    kafka_cluster.restart(1)
    wait_partition(admin, name, lambda leader, isr: isr == REPLICAS)
    real_back = describe_partition(kp_admin, name)

    assert model_failover == real_failover == {"leader": 2, "leader_epoch": 1, "isr": [2, 3], "elr": [],
                                               "last_known_elr": []}, (model_failover, real_failover)
    # v2 was acknowledged at offset 1, and v3 got offset 1 again: v2 is lost
    assert answers == real == {"v1": ("NONE", 0), "v2": ("NONE", 1), "v3": ("NONE", 1)}, (answers, real)
    assert model_log == real_log == [(0, "v1", 0), (1, "v3", 1)]
    # the old leader rejoins after truncating v2 (the model says where; Kafka's broker log says the same)
    assert model_truncated == [(1, ["v2"])]
    assert model_back == real_back == {"leader": 2, "leader_epoch": 1, "isr": REPLICAS, "elr": [],
                                       "last_known_elr": []}, (model_back, real_back)
