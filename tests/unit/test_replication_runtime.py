"""The replication runtime (sim/_replication.py): three brokers and a controller over the simulated network.

The three facts tests/conformance/test_replication.py shows on a real 3-broker Kafka 4.1.2 cluster, here with
requests over the simulated network, real time passing (heartbeats, the controller's session timeout, follower
fetches), and broker processes killed and restarted. Where the conformance test compares Kafka with the pure
model, these compare the runtime with the same model after the same steps (leader, leader epoch, ISR, ELR).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from eosim.models.config import ReplicationConfig
from eosim.models.errors import Errors
from eosim.models.partition import Acks, ProduceRequest
from eosim.models.records import Record, RecordBatch, TopicPartition
from eosim._cluster import Cluster, ReplicatedTopic
from eosim._net import HOLD, Packet, deliver_all
from eosim._replication import ReplicaRequest
from eosim._topology import cluster_config
from eosim._world import World

TP = TopicPartition("t", 0)
SESSION_MS = ReplicationConfig().broker_session_timeout_ms


def _model_cluster():
    # The property tests' synchronous wiring of the same models, the one place it is defined.
    path = Path(__file__).resolve().parents[1] / "property" / "test_replication_properties.py"
    spec = importlib.util.spec_from_file_location("_replication_model_wiring", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Cluster


ModelCluster = _model_cluster()


def cluster(min_isr: int) -> tuple[World, Cluster]:
    world = World(1)
    topic = ReplicatedTopic(partitions=1, replication_factor=3, config=ReplicationConfig(min_insync_replicas=min_isr))
    c = Cluster(world, cluster_config({}), {"t": 1}, brokers=3, replicated={"t": topic})
    world.env.run(until=100)  # registered, unfenced, the partition created
    return world, c


def leader(c: Cluster) -> int:
    return c.controller.control.partition(TP).leader


def produce(world: World, c: Cluster, acks: Acks, value: str) -> Errors | None:
    """A client's produce to the leader the controller names; None: no answer (acks=0)."""
    reply = c.network.request("client", f"broker-{leader(c)}",
                              ReplicaRequest(tp=TP, request=ProduceRequest(acks=acks, batch=RecordBatch(records=(Record(None, value),)))), 30_000)
    world.env.run(until=world.now + 1_000)
    return reply.value.response.error if reply.triggered else None


def log_values(c: Cluster, broker: int) -> list[str]:
    return [r.value for b in c.node(f"broker-{broker}").replicated.parts[TP].log.batches for r in b.records]


def registration(c) -> dict[str, object]:
    r = c.controller.partition(TP) if isinstance(c, ModelCluster) else c.controller.control.partition(TP)
    return {"leader": r.leader, "leader_epoch": r.leader_epoch, "isr": sorted(r.isr), "elr": sorted(r.elr)}


def fenced(world: World) -> None:
    """Past the controller's session timeout: a killed broker is fenced and its partitions move."""
    world.env.run(until=world.now + SESSION_MS + 2_000)


def test_the_leader_is_elected_and_followers_replicate() -> None:
    world, c = cluster(min_isr=2)
    assert registration(c) == {"leader": 1, "leader_epoch": 0, "isr": [1, 2, 3], "elr": []}
    assert produce(world, c, Acks.ALL, "v1") is Errors.NONE
    assert [log_values(c, b) for b in (1, 2, 3)] == [["v1"]] * 3
    assert c.node("broker-1").replicated.parts[TP].high_watermark == 1


def test_acks_all_with_min_isr_2_survives_the_leader_kill() -> None:
    world, c = cluster(min_isr=2)
    model = ModelCluster(ReplicationConfig(min_insync_replicas=2))
    assert produce(world, c, Acks.ALL, "v1") is Errors.NONE
    c.node("broker-1").crash()
    fenced(world)
    model.produce(Acks.ALL)
    model.replicate(2)
    model.crash(1)
    model.tick(SESSION_MS + 100)
    assert registration(c) == registration(model)
    assert leader(c) != 1 and log_values(c, leader(c)) == ["v1"]
    assert produce(world, c, Acks.ALL, "v2") is Errors.NONE  # two in the ISR: min.insync.replicas=2 still met


def test_not_enough_replicas_with_one_broker_down_and_min_isr_3() -> None:
    world, c = cluster(min_isr=3)
    model = ModelCluster(ReplicationConfig(min_insync_replicas=3))
    c.node("broker-3").crash()
    fenced(world)
    model.crash(3)
    model.tick(SESSION_MS + 100)
    assert registration(c) == registration(model)
    assert produce(world, c, Acks.ALL, "v1") is Errors.NOT_ENOUGH_REPLICAS
    assert log_values(c, 1) == []  # refused before the append
    assert produce(world, c, Acks.ONE, "v2") is Errors.NONE  # acks=1 does not need the ISR


def test_acks_1_loses_an_acknowledged_record_on_leader_failover() -> None:
    world, c = cluster(min_isr=1)
    assert produce(world, c, Acks.ALL, "v1") is Errors.NONE
    # cut the followers off the leader; their pending long-poll fetches expire (replica.fetch.wait.max.ms) and
    # their answers wait on the cut link with nothing in them, as tests/conformance/test_replication.py waits
    followers = {"broker-2", "broker-3"}

    def cut(packet: Packet) -> int | None:
        ends = {packet.src.split("/")[0], packet.dst.split("/")[0]}
        return HOLD if "broker-1" in ends and ends & followers else 0

    c.network.route = cut
    world.env.run(until=world.now + 800)
    assert produce(world, c, Acks.ONE, "v2") is Errors.NONE  # acknowledged by the leader alone
    assert log_values(c, 1) == ["v1", "v2"]
    c.node("broker-1").crash()
    c.network.route = deliver_all
    c.network.release()
    fenced(world)
    new_leader = leader(c)
    assert new_leader in (2, 3) and log_values(c, new_leader) == ["v1"]
    c.node("broker-1").restart()
    world.env.run(until=world.now + 5_000)
    assert log_values(c, 1) == ["v1"]  # the old leader truncated v2 away when it rejoined as a follower
    [truncate] = [e for e in world.trace.view() if e.kind == "log.truncate"]
    assert (truncate.node, truncate.offset, truncate.records) == ("broker-1", 1, [[1, None, "v2"]])


def test_acks_0_gets_no_answer_and_the_connection_reads_on() -> None:
    """acks=0: the leader appends and answers nothing; the next request on that connection is still served."""
    world, c = cluster(min_isr=2)
    assert produce(world, c, Acks.ZERO, "v0") is None
    assert produce(world, c, Acks.ALL, "v1") is Errors.NONE
    assert log_values(c, 1) == ["v0", "v1"]


def test_a_fenced_follower_leaves_the_isr_and_the_high_watermark_passes_it() -> None:
    """broker-3 cut off from everyone: acks=all waits for it, in the ISR, until the controller fences it and takes
    it out; the leader applies that knowing it is fenced (the metadata image before the partition changes), so
    its high watermark moves at once (P.makeLeader's maybeIncrementLeaderHW) and the produce is answered."""
    world, c = cluster(min_isr=1)
    c.network.route = lambda packet: HOLD if "broker-3" in {packet.src.split("/")[0], packet.dst.split("/")[0]} else 0
    reply = c.network.request("client", "broker-1", ReplicaRequest(tp=TP, request=ProduceRequest(
        acks=Acks.ALL, batch=RecordBatch(records=(Record(None, "v1"),)), timeout_ms=60_000)), 60_000)
    world.env.run(until=world.now + SESSION_MS // 2)
    assert not reply.triggered  # broker-3 is in the ISR without the record
    fenced(world)
    assert registration(c)["isr"] == [1, 2]
    assert reply.triggered and reply.value.response.error is Errors.NONE
