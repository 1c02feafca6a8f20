"""docs/api.md's side-by-side example, both halves: the confluent-kafka copy loop runs against the real
broker, the eosim loop against the simulation, on the same input, and they must agree: every input
copied exactly once, to the same output partitions, and the same committed offsets."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
_BLOCK = re.compile(r"<!-- example: ([\w-]+) -->\n```python\n(.*?)```", re.S)
INPUT = [(f"user-{i % 5}", f"v{i}") for i in range(30)]  # the user-loop example's feed
BATCHES = 30


def example(name: str, **names: str) -> dict:
    """The page's example ``name``, its topic, group and transactional.id renamed (each occurs once),
    so it runs on fresh topics of a broker other tests share."""
    source = dict(_BLOCK.findall(DOC.read_text(encoding="utf-8")))[name]
    for old, new in names.items():
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    namespace: dict = {"__name__": f"api_doc_{name}"}
    exec(compile(source, f"docs/api.md:{name}", "exec"), namespace)  # noqa: S102
    return namespace


def test_the_confluent_kafka_half_does_on_kafka_what_the_eosim_half_does_in_the_simulation(new_topic, kafka_broker):
    bootstrap = kafka_broker.bootstrap
    source, sink = new_topic(2), new_topic(2)
    group, txn_id = f"copier-{uuid.uuid4().hex[:8]}", f"copier-{uuid.uuid4().hex[:8]}"
    renames = {'["in"]': f'["{source}"]', '"out"': f'"{sink}"', '"group.id": "copier"': f'"group.id": "{group}"',
               '"transactional.id": "copier-1"': f'"transactional.id": "{txn_id}"'}

    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value in INPUT:
        producer.produce(source, key=key, value=value)
    assert producer.flush(30) == 0
    example("confluent", **renames)["copy_loop"](bootstrap, batches=BATCHES)

    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex[:8]}",
                       "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    reader.assign([TopicPartition(sink, p, 0) for p in range(2)])
    real_out: dict[int, list[str]] = {0: [], 1: []}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(map(len, real_out.values())) < len(INPUT):
        for msg in reader.consume(100, 1.0):
            if msg.error() is None:
                real_out[msg.partition()].append(msg.value().decode())
    reader.close()
    group_view = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    real_committed = {tp.partition: tp.offset for tp in group_view.committed(
        [TopicPartition(source, p) for p in range(2)], timeout=30)}
    group_view.close()

    from eosim import Simulation

    sim = Simulation(topics={"in": 2, "out": 2}, seed=7)

    def feed():
        feeder = example("eosim")["Producer"]({"client.id": "feeder"})
        for key, value in INPUT:
            feeder.produce("in", key=key, value=value)
        yield feeder.flush()

    sim.process(feed())
    sim.process(example("eosim")["copy_loop"](sim.bootstrap_servers, batches=BATCHES))
    sim.run(60_000)
    sim_out = {p.partition: [value for _o, _k, value in p.read_committed] for p in sim.partitions() if p.topic == "out"}
    sim_committed = {tp.partition: tp.offset for tp in sim.committed("copier")}

    assert sorted(real_out[0] + real_out[1]) == sorted(value for _k, value in INPUT)  # exactly once on Kafka
    assert {p: sorted(v) for p, v in real_out.items()} == {p: sorted(v) for p, v in sim_out.items()}
    assert real_committed == sim_committed and sum(real_committed.values()) == len(INPUT)
    assert sim.check(pipeline=("in", "out")).valid is True
