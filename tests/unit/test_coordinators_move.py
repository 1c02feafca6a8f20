"""Coordinators that move (issue 9, seam 5): on three brokers the leaders of __transaction_state-0 and
__consumer_offsets-0 host the coordinators, their writes are replicated, and a new leader loads them.

Each test drives a real 3-broker simulated cluster over the network (sim/_cluster.py) with the requests a client
sends, and kills brokers as the scenarios do."""

from __future__ import annotations

import pytest

from eosim.models.config import ReplicationConfig
from eosim.models.errors import Errors
from eosim.models.group_coordinator import GroupCoordinator, OffsetCommitRequest, OffsetFetchRequest
from eosim.models.log import PartitionLog
from eosim.models.protocol import CoordinatorType, FindCoordinatorRequest
from eosim.models.records import TopicPartition
from eosim.models.txn_coordinator import AddOffsetsToTxnRequest, EndTxnRequest, InitProducerIdRequest
from eosim._client.coordinator import Coordinators, coordinator_key
from eosim._cluster import Cluster
from eosim._coordinators import OFFSETS_PARTITION, offsets_log_of
from eosim._net import Failure
from eosim._replication import internal_values
from eosim._topology import cluster_config
from eosim._world import World

TP = TopicPartition("input", 0)
FENCED_AFTER_MS = ReplicationConfig().broker_session_timeout_ms + 2_000


def three() -> tuple[World, Cluster]:
    world = World(1)
    c = Cluster(world, cluster_config({}), {"input": 1}, brokers=3)
    world.env.run(until=100)  # registered, the internal partitions created, both coordinators loaded
    return world, c


def ask(world: World, c: Cluster, broker: str, request: object) -> object:
    reply = c.network.request("client", broker, request, 30_000)
    world.env.run(until=world.now + 2_000)
    assert reply.triggered and not isinstance(reply.value, Failure), f"no answer from {broker} to {request!r}"
    return reply.value


def coordinator(world: World, c: Cluster, key_type: CoordinatorType, key: str, via: str = "broker-3") -> int:
    answer = ask(world, c, via, FindCoordinatorRequest(key_type=key_type, key=key))
    assert answer.error is Errors.NONE
    return answer.node_id


def init_pid(txn_id: str) -> InitProducerIdRequest:
    return InitProducerIdRequest(transactional_id=txn_id, transaction_timeout_ms=60_000)


def test_the_leaders_host_the_coordinators_and_any_broker_names_them() -> None:
    world, c = three()
    for via in c.broker_names:
        assert coordinator(world, c, CoordinatorType.TRANSACTION, "t1", via) == 1
        assert coordinator(world, c, CoordinatorType.GROUP, "g", via) == 2
    # the other brokers host idle coordinators
    assert ask(world, c, "broker-2", init_pid("t1")).error is Errors.NOT_COORDINATOR
    fetch = OffsetFetchRequest(group_id="g", partitions=(TP,), require_stable=True)
    assert ask(world, c, "broker-1", fetch).error is Errors.NOT_COORDINATOR
    assert ask(world, c, "broker-2", fetch).results == ((TP, -1, Errors.NONE),)


def test_the_transaction_coordinator_moves_with_its_replicated_log() -> None:
    world, c = three()
    first = ask(world, c, "broker-1", init_pid("t1"))
    assert (first.error, first.producer_id, first.producer_epoch) == (Errors.NONE, 0, 0)
    c.node("broker-1").crash()
    world.env.run(until=world.now + FENCED_AFTER_MS)
    assert coordinator(world, c, CoordinatorType.TRANSACTION, "t1") == 2
    # broker-2 loaded t1 from its replica of __transaction_state-0: the same producer id, the epoch bumped
    again = ask(world, c, "broker-2", init_pid("t1"))
    assert (again.error, again.producer_id, again.producer_epoch) == (Errors.NONE, 0, 1)
    # a new transactional.id gets an id of broker-2's own block (the controller's next: 1000)
    other = ask(world, c, "broker-2", init_pid("t2"))
    assert (other.error, other.producer_id) == (Errors.NONE, 1000)


def test_a_prepared_commit_is_completed_by_the_new_coordinator() -> None:
    """PrepareCommit durable on the replicas, the coordinator killed before its markers are answered: the new
    coordinator loads PrepareCommit, sends the markers at its epoch and writes CompleteCommit."""
    world, c = three()
    pid = ask(world, c, "broker-1", init_pid("t1"))
    assert ask(world, c, "broker-1", AddOffsetsToTxnRequest(
        transactional_id="t1", producer_id=pid.producer_id, producer_epoch=pid.producer_epoch,
        group_id="g")).error is Errors.NONE
    # The marker to __consumer_offsets-0 goes to broker-2; hold broker-1's marker channel so none is answered.
    c.network.route = lambda packet: None if packet.src == "broker-1/markers" else 0
    assert ask(world, c, "broker-1", EndTxnRequest(
        transactional_id="t1", producer_id=pid.producer_id, producer_epoch=pid.producer_epoch,
        committed=True)).error is Errors.NONE
    assert c.node("broker-1").txn.tc.metadata("t1").state.kafka_name == "PrepareCommit"
    c.node("broker-1").crash()
    world.env.run(until=world.now + FENCED_AFTER_MS)
    new = c.txn_coordinator
    assert new is not None and new.node.node == "broker-2"
    assert new.tc.metadata("t1").state.kafka_name == "CompleteCommit"
    assert new.tc.coordinator_epoch == 1


def test_committed_offsets_survive_a_group_coordinator_move() -> None:
    world, c = three()
    commit = OffsetCommitRequest(group_id="g", offsets=((TP, 5),))
    assert ask(world, c, "broker-2", commit).results == ((TP, Errors.NONE),)
    c.node("broker-2").crash()
    world.env.run(until=world.now + FENCED_AFTER_MS)
    assert coordinator(world, c, CoordinatorType.GROUP, "g") == 3
    fetch = OffsetFetchRequest(group_id="g", partitions=(TP,), require_stable=True)
    assert ask(world, c, "broker-3", fetch).results == ((TP, 5, Errors.NONE),)
    # broker-2 comes back as a follower: its coordinator stays idle
    c.node("broker-2").restart()
    world.env.run(until=world.now + 3_000)
    assert ask(world, c, "broker-2", fetch).error is Errors.NOT_COORDINATOR


def test_an_offset_commit_waits_for_the_followers() -> None:
    """acks=-1: with both followers cut off the high watermark cannot pass the commit; it is unanswered until
    offsets.commit.timeout.ms (5 s), then COORDINATOR_NOT_AVAILABLE (REQUEST_TIMED_OUT, as the group coordinator
    maps it). Healed, the next commit is answered."""
    world, c = three()
    cut = {"broker-3", "broker-1"}
    c.network.route = lambda packet: None if packet.src.split("/")[0] in cut and packet.dst == "broker-2" else 0
    world.env.run(until=world.now + 1_000)  # the followers' waiting fetches end
    reply = c.network.request("client", "broker-2", OffsetCommitRequest(group_id="g", offsets=((TP, 7),)), 30_000)
    world.env.run(until=world.now + 4_000)
    assert not reply.triggered
    world.env.run(until=world.now + 1_500)
    assert reply.triggered and reply.value.results == ((TP, Errors.COORDINATOR_NOT_AVAILABLE),)

    def visible() -> list[int]:
        return [e.data["offset"] for e in world.trace.view() if e.kind == "group.offsets"]
    assert visible() == []
    c.network.route = lambda packet: 0
    world.env.run(until=world.now + 30_000)  # the fetchers' requests time out, they fetch again
    # the timed-out write stayed in the log: committed once the followers have it (CoordinatorRuntime)
    assert visible() == [7]
    assert ask(world, c, "broker-2", OffsetCommitRequest(group_id="g", offsets=((TP, 8),))).results \
        == ((TP, Errors.NONE),)


def test_the_offsets_log_is_rebuilt_from_its_replicated_batches() -> None:
    world, c = three()
    assert ask(world, c, "broker-2", OffsetCommitRequest(group_id="g", offsets=((TP, 3),))).results \
        == ((TP, Errors.NONE),)
    assert ask(world, c, "broker-2", OffsetCommitRequest(group_id="g", offsets=((TP, 4),))).results \
        == ((TP, Errors.NONE),)
    leader = c.node("broker-2")
    original: PartitionLog = leader.group.gc.offsets_log
    replica = c.node("broker-3").replicated.parts[OFFSETS_PARTITION]
    rebuilt = offsets_log_of(internal_values(replica.log), leader.config, world.now)
    assert rebuilt.batches == original.batches
    assert GroupCoordinator(leader.config, rebuilt).committed("g") == {TP: 4}


@pytest.mark.parametrize("payload, key", [
    (init_pid("t1"), (CoordinatorType.TRANSACTION, "t1")),
    (InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60_000), None),  # any broker answers
    (OffsetFetchRequest(group_id="g", partitions=(), require_stable=False), (CoordinatorType.GROUP, "g")),
])
def test_which_requests_go_to_a_coordinator(payload: object, key: object) -> None:
    assert coordinator_key(payload) == key


def test_a_client_finds_the_coordinator_again_after_it_moved() -> None:
    """eosim._client.coordinator: FindCoordinator once, the cached node after that; a request that fails there
    forgets it, and the next one asks FindCoordinator again (rd_kafka_txn_coord_set(rk, NULL))."""
    world, c = three()
    coords = Coordinators(world.env, c.network, "p1", c.broker_names, socket_timeout_ms=1_000)
    key = (CoordinatorType.TRANSACTION, "t1")

    def send() -> object:
        reply = coords.request(key, init_pid("t1"), 5_000, "/txn")
        world.env.run(until=world.now + 6_000)
        return reply.value

    assert send().error is Errors.NONE and coords.known == {key: "broker-1"}
    c.node("broker-1").crash()
    world.env.run(until=world.now + FENCED_AFTER_MS)
    assert isinstance(send(), Failure) and coords.known == {}  # the dead coordinator: timed out, forgotten
    # FindCoordinator to broker-1 (dead) times out after socket.timeout.ms, broker-2 names itself
    assert send().error is Errors.NONE and coords.known == {key: "broker-2"}


def test_an_offset_is_read_once_committed_so_a_failover_cannot_take_back_what_was_read() -> None:
    """The group coordinator reads at the high watermark of __consumer_offsets-0 (GroupCoordinatorService
    .fetchOffsets): with the followers cut off, a commit is appended on the leader but not committed. A non-stable
    OffsetFetch from another client reads the committed snapshot (the old offset), a require_stable one waits for
    the commit (a write without records: CoordinatorRuntime.append) and gets NOT_COORDINATOR when it times out
    (handleOffsetFetchException). The leader then dies: the new one never had the offset, and nobody read it."""
    world, c = three()
    assert ask(world, c, "broker-2", OffsetCommitRequest(group_id="g", offsets=((TP, 5),))).results \
        == ((TP, Errors.NONE),)
    cut = {"broker-3", "broker-1"}
    c.network.route = lambda packet: None if packet.src.split("/")[0] in cut and packet.dst == "broker-2" else 0
    world.env.run(until=world.now + 1_000)  # the followers' waiting fetches end
    commit = c.network.request("client-a", "broker-2", OffsetCommitRequest(group_id="g", offsets=((TP, 7),)), 30_000)
    world.env.run(until=world.now + 100)
    read = c.network.request("client-b", "broker-2", OffsetFetchRequest(group_id="g", partitions=(TP,),
                                                                        require_stable=False), 30_000)
    stable = c.network.request("client-c", "broker-2", OffsetFetchRequest(group_id="g", partitions=(TP,),
                                                                          require_stable=True), 30_000)
    world.env.run(until=world.now + 100)
    assert read.triggered and read.value.results == ((TP, 5, Errors.NONE),)
    assert not commit.triggered and not stable.triggered
    world.env.run(until=world.now + 5_000)
    assert commit.value.results == ((TP, Errors.COORDINATOR_NOT_AVAILABLE),)
    assert stable.value.error is Errors.NOT_COORDINATOR
    c.node("broker-2").crash()
    world.env.run(until=world.now + FENCED_AFTER_MS)
    new = coordinator(world, c, CoordinatorType.GROUP, "g")
    assert new != 2
    for require_stable in (False, True):
        fetch = OffsetFetchRequest(group_id="g", partitions=(TP,), require_stable=require_stable)
        assert ask(world, c, f"broker-{new}", fetch).results == ((TP, 5, Errors.NONE),)


def test_a_request_that_writes_nothing_waits_for_the_writes_before_it() -> None:
    """CoordinatorRuntime.append with no records: a write operation (a require_stable OffsetFetch here) is answered
    once the last write before it is committed, right after that write's own answer; a read operation
    (non-stable OffsetFetch) at once, from the committed snapshot."""
    world, c = three()
    commit = c.network.request("client-a", "broker-2", OffsetCommitRequest(group_id="g", offsets=((TP, 7),)), 30_000)
    offsets_log = c.node("broker-2").group.gc.offsets_log
    while not offsets_log.batches:  # until the commit is appended on the leader
        world.env.step()
    stable = c.network.request("client-b", "broker-2", OffsetFetchRequest(group_id="g", partitions=(TP,),
                                                                          require_stable=True), 30_000)
    read = c.network.request("client-c", "broker-2", OffsetFetchRequest(group_id="g", partitions=(TP,),
                                                                        require_stable=False), 30_000)
    while not commit.triggered:
        assert not stable.triggered
        world.env.step()
    assert commit.value.results == ((TP, Errors.NONE),)
    assert read.value.results == ((TP, -1, Errors.NONE),)
    world.env.run(until=world.now + 100)
    assert stable.value.results == ((TP, 7, Errors.NONE),)
