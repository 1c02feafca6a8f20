"""A user's own test, as someone who installed eosim from a wheel would write it (.ci/wheel.sh runs it
there): it imports only ``eosim`` (and pytest). It checks an exactly-once consume-transform-produce
loop under faults with the Jepsen checker, and what porting a confluent-kafka program relies on."""

import pytest

import eosim
from eosim import Consumer, Fault, KafkaException, Producer, Simulation, TopicPartition, UsageError


def upper_loop(batches):
    """Read "in", write each value upper-cased to "out", exactly once (transactions + sent offsets)."""
    consumer = Consumer({"client.id": "upper-in", "group.id": "upper", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    producer = Producer({"client.id": "upper-out", "transactional.id": "upper"})
    consumer.assign([TopicPartition("in", 0)])
    yield producer.init_transactions()
    for _ in range(batches):
        msgs = yield consumer.consume(num_messages=5, timeout=0.5)
        if not msgs:
            continue
        producer.begin_transaction()
        for msg in msgs:
            producer.produce("out", key=msg.key(), value=msg.value().upper())
        yield producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                                   consumer.consumer_group_metadata())
        try:
            yield producer.commit_transaction()
        except KafkaException as e:
            if not e.args[0].txn_requires_abort():
                raise
            yield producer.abort_transaction()
            for tp in (yield consumer.committed(consumer.assignment())):
                consumer.seek(TopicPartition(tp.topic, tp.partition, max(tp.offset, 0)))


def feed(sim, n):
    producer = Producer({"bootstrap.servers": sim.bootstrap_servers, "client.id": "feeder"})
    for i in range(n):
        producer.produce("in", key=b"key", value=f"value-{i}".encode())
        yield sim.sleep(50)
    yield producer.flush()


@pytest.mark.parametrize("seed", [1, 2])
def test_my_loop_is_exactly_once_under_faults(seed):
    sim = Simulation(topics={"in": 1, "out": 1}, seed=seed)
    sim.add_fault(Fault(name="slow-commits", action="delay", message="EndTxn", ms=300, count=3))
    sim.add_fault(Fault(name="lost-markers", action="drop", message="WriteTxnMarkers", count=1), at_ms=1000)

    def nemesis():
        yield sim.sleep(800)
        sim.pause("upper-out", 1500)

    sim.process(feed(sim, 20))
    sim.process(upper_loop(batches=40))
    sim.process(nemesis())
    sim.run(40_000)

    result = sim.check()
    assert result.valid is True, result.to_json()
    out = sim.partition_state("out", 0)
    assert [value for _offset, _key, value in out.read_committed] == [f"VALUE-{i}" for i in range(20)]
    assert out.last_stable_offset == out.high_watermark
    assert sim.committed("upper") == [TopicPartition("in", 0, 20)]


def test_an_unyielded_call_says_yield_it():
    sim = Simulation(topics={"t": 1})

    def forgetful():
        producer = Producer({"transactional.id": "tx"})
        producer.init_transactions()  # forgot the yield
        producer.begin_transaction()
        yield sim.sleep(1)

    sim.process(forgetful())
    with pytest.raises(UsageError, match="yield it"):
        sim.run(100)


def test_bootstrap_servers_must_name_the_simulated_cluster():
    with Simulation(topics={"t": 1}), pytest.raises(eosim.ConfigError, match="the simulated cluster"):
        Producer({"bootstrap.servers": "kafka.example.com:9092"})


def test_the_public_names():
    assert "Simulation" in eosim.__all__ and all(hasattr(eosim, name) for name in eosim.__all__)
