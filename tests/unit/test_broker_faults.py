"""Broker faults in real simulated runs (no mocks): crash and restart, transaction coordinator failover.

Kafka 4.1 sources: LogLoader.java / UnifiedLog.java (producer state after a restart: the snapshot at the log end),
ProducerStateManager.java (PSM.writeSnapshot keeps each producer's last batch), TransactionStateManager.scala
(loading, COORDINATOR_LOAD_IN_PROGRESS / NOT_COORDINATOR), TransactionMarkerChannelManager.scala (markers re-sent
after loading), ProducerAppendInfo.java (a marker takes an offset even when it closes nothing).
"""

from __future__ import annotations

import pytest

from eosim.models.errors import Errors
from eosim.models.group_coordinator import OffsetFetchRequest
from eosim.models.protocol import WriteTxnMarkersRequest
from eosim.models.records import CONSUMER_OFFSETS_TOPIC, TransactionResult
from eosim.models.records import TopicPartition as TP
from eosim.models.txn_coordinator import InitProducerIdRequest, TransactionState, TxnMarkerEntry
from eosim._checkers.oracle import check_trace
from eosim._client.errors import KafkaException
from eosim._client.producer import Producer
from eosim._cluster import Cluster
from eosim._topology import cluster_config
from eosim._net import Packet, deliver_all
from eosim._trace import dumps_lines
from eosim._world import World

T0 = TP("t", 0)


def make_cluster(seed: int = 7) -> Cluster:
    return Cluster(World(seed), cluster_config({}), {"t": 1})


def run(cluster: Cluster, body) -> None:
    cluster.world.env.run(until=cluster.world.env.process(body()))


def events(cluster: Cluster, kind: str) -> list[dict]:
    return [dict(e.data, t=e.t, node=e.node) for e in cluster.world.trace.events if e.kind == kind]


def data_records(cluster: Cluster) -> list[tuple[int, str]]:
    log = cluster.broker_node.replicas.logs[T0]
    return [(b.base_offset + i, r.value) for b in log.batches if not b.is_control for i, r in enumerate(b.records)]


def drop(*message_types: str):
    """A route that drops every packet of these types (a lost response: the work was done, the answer is lost)."""
    return lambda packet: None if type(packet.payload).__name__ in message_types else 0


def crash_and_restart(cluster: Cluster, *, at: int, down_ms: int):
    broker = cluster.broker_node
    yield cluster.world.env.timeout(at - cluster.world.now)
    broker.crash()
    cluster.network.route = deliver_all
    yield cluster.world.env.timeout(down_ms)
    broker.restart()


# --- crash and restart: idempotent retries in flight ----------------------------------------------------


def idempotent_run(messages: int, *, crash: bool, seed: int = 7):
    """An idempotent producer (its producer id comes at 500 ms) sends ``messages`` one-record batches at 600 ms;
    every ProduceResponse is lost, so all are retried after socket.timeout.ms (1 s). With ``crash`` the broker
    crashes at 620 ms, after the appends, and restarts at 800 ms."""
    cluster = make_cluster(seed)
    cluster.network.route = drop("ProduceResponse")
    producer = Producer({"enable.idempotence": True, "socket.timeout.ms": 1000, "batch.num.messages": 1},
                        cluster=cluster, name="p#1")
    reports: list = []

    def body():
        yield cluster.world.env.timeout(600)
        for i in range(messages):
            producer.produce("t", value=f"v{i}", key="k",
                             on_delivery=lambda err, msg: reports.append((err and err.name(), msg.offset())))
        if crash:
            yield from crash_and_restart(cluster, at=620, down_ms=180)
        else:
            yield cluster.world.env.timeout(200)
            cluster.network.route = deliver_all
        try:
            yield producer.flush(10)
        except KafkaException as exc:  # raised by flush once it served the reports queued behind it
            reports.append(("raised", exc.args[0].name()))
    run(cluster, body)
    return cluster, reports, producer


def test_restart_keeps_the_log_and_rebuilds_producer_state_with_one_batch_per_producer():
    cluster, _, _ = idempotent_run(3, crash=True)
    assert [e["t"] for e in events(cluster, "broker.crash")] == [620]
    assert [e["t"] for e in events(cluster, "broker.restart")] == [800]
    log = cluster.broker_node.replicas.logs[T0]
    # the three first attempts were appended before the crash and stay on disk
    assert [e["base_sequence"] for e in events(cluster, "log.append") if e["t"] < 620] == [0, 1, 2]
    assert data_records(cluster) == [(0, "v0"), (1, "v1"), (2, "v2")]
    assert log.high_watermark == 3


def test_a_restart_with_the_last_batch_in_flight_deduplicates_its_retry():
    """The done-criterion: within the window left after the restart (one batch), a retry is a duplicate."""
    cluster, reports, _ = idempotent_run(1, crash=True)
    dup = events(cluster, "log.duplicate")
    assert [(d["base_sequence"], d["base_offset"]) for d in dup] == [(0, 0)]
    # the restart reset the old connection (DISCONNECTED at 800 ms): the retry, after its backoff, hit the
    # restarted broker
    assert 800 < dup[0]["t"] < 1600
    assert data_records(cluster) == [(0, "v0")]  # exactly once
    assert reports == [(None, 0)]


def test_after_a_restart_a_retry_older_than_the_last_batch_is_out_of_order_not_duplicated():
    """Kafka's snapshot keeps the last batch only: the retry of seq 0 (seq 1 was appended after it) is no longer
    recognised and gets OUT_OF_ORDER_SEQUENCE_NUMBER; it is not appended again. librdkafka treats that at the head
    of the line as a fatal desynchronisation (rd_kafka_handle_idempotent_Produce_error): the message it reports
    failed is in the log; the retry of seq 1 behind it is still a duplicate."""
    cluster, reports, producer = idempotent_run(2, crash=True)
    rejects = events(cluster, "log.reject")
    assert [(r["base_sequence"], r["error"]) for r in rejects] == [(0, "OUT_OF_ORDER_SEQUENCE_NUMBER")]
    assert [d["base_sequence"] for d in events(cluster, "log.duplicate")] == [1]
    assert data_records(cluster) == [(0, "v0"), (1, "v1")]  # no duplicate
    assert reports == [("OUT_OF_ORDER_SEQUENCE_NUMBER", -1001), (None, 1), ("raised", "OUT_OF_ORDER_SEQUENCE_NUMBER")]
    with pytest.raises(KafkaException) as fatal:
        producer.produce("t", value="v2", key="k")
    assert fatal.value.args[0].name() == "_FATAL"


def test_without_the_restart_the_same_retries_are_all_duplicates():
    cluster, reports, _ = idempotent_run(2, crash=False)
    assert [d["base_sequence"] for d in events(cluster, "log.duplicate")] == [0, 1]
    assert events(cluster, "log.reject") == []
    assert reports == [(None, 0), (None, 1)]


def test_a_crashed_broker_reads_nothing_and_its_clients_time_out():
    cluster = make_cluster()
    producer = Producer({"enable.idempotence": True, "socket.timeout.ms": 1000}, cluster=cluster, name="p#1")

    def body():
        cluster.broker_node.crash()
        producer.produce("t", value="v", key="k")
        yield cluster.world.env.timeout(3000)
        cluster.broker_node.restart()
        yield producer.flush(10)
    run(cluster, body)
    drops = events(cluster, "net.drop")
    assert drops and all(d["down"] and d["dst"] == "broker-1" for d in drops)
    assert {d["msg"] for d in drops} == {"InitProducerIdRequest"}  # no pid yet: nothing could be produced
    assert data_records(cluster) == [(0, "v")]


# --- crash and restart: the transaction coordinator --------------------------------------------------


def transactional_commit_with_markers_lost(cluster: Cluster):
    """A TV1 commit whose PrepareCommit is durable (commit_transaction returned) but whose markers never land."""
    producer = Producer({"transactional.id": "tx", "transaction.timeout.ms": 60_000}, cluster=cluster, name="p#1")

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        producer.produce("t", value="a", key="k")
        producer.produce("t", value="b", key="k")
        cluster.network.route = drop("WriteTxnMarkersRequest")
        yield producer.commit_transaction()
    return body


def test_a_restart_reloads_prepare_commit_and_resends_its_markers_at_the_next_coordinator_epoch():
    cluster = make_cluster()
    commit = transactional_commit_with_markers_lost(cluster)

    def body():
        yield from commit()
        log = cluster.broker_node.replicas.logs[T0]
        assert (log.high_watermark, log.last_stable_offset) == (2, 0)  # data in, no marker: the LSO is stuck
        yield from crash_and_restart(cluster, at=cluster.world.now + 5, down_ms=100)
        yield cluster.world.env.timeout(100)
    run(cluster, body)
    broker = cluster.broker_node
    (load,) = events(cluster, "txn.load")
    assert (load["state"], load["coordinator_epoch"]) == ("PrepareCommit", 1)
    markers = events(cluster, "log.marker")
    assert [(m["control"], m["coordinator_epoch"]) for m in markers] == [("COMMIT", 1)]
    assert broker.txn.tc.metadata("tx").state is TransactionState.COMPLETE_COMMIT
    log = broker.replicas.logs[T0]
    assert (log.high_watermark, log.last_stable_offset) == (3, 3)  # the LSO resolves


def test_requests_during_the_load_get_coordinator_load_in_progress_and_new_pids_take_a_new_block():
    cluster = make_cluster()
    answers = {}

    def body():
        net, broker = cluster.network, cluster.broker
        init = InitProducerIdRequest(transactional_id="tx", transaction_timeout_ms=60_000)
        first = yield net.request("c#1/txn", broker, init, 30_000)
        cluster.broker_node.crash()
        cluster.broker_node.restart(load_ms=50)
        answers["loading"] = (yield net.request("c#1/txn", broker, init, 30_000)).error
        yield cluster.world.env.timeout(50)
        again = yield net.request("c#1/txn", broker, init, 30_000)
        other = yield net.request("c#1/txn", broker, InitProducerIdRequest(transactional_id="tx2",
                                                                           transaction_timeout_ms=60_000), 30_000)
        answers.update(first=(first.producer_id, first.producer_epoch), again=(again.producer_id, again.producer_epoch),
                       other=other.producer_id)
    run(cluster, body)
    assert answers["loading"] is Errors.COORDINATOR_LOAD_IN_PROGRESS
    assert answers["first"] == (0, 0)
    assert answers["again"] == (0, 1)  # the loaded metadata: same pid, epoch bumped
    assert answers["other"] == 1000  # RPCProducerIdManager: a fresh block after the restart


def test_the_group_coordinator_loads_after_a_restart_and_refuses_meanwhile():
    """CoordinatorRuntime: a loading partition refuses operations (COORDINATOR_LOAD_IN_PROGRESS); KafkaApis answers
    a marker for __consumer_offsets NOT_LEADER_OR_FOLLOWER meanwhile, so the coordinator retries it."""
    cluster = make_cluster()
    offsets = TP(CONSUMER_OFFSETS_TOPIC, 0)
    marker = WriteTxnMarkersRequest(entry=TxnMarkerEntry(
        transactional_id="tx", producer_id=0, producer_epoch=0, coordinator_epoch=1,
        result=TransactionResult.COMMIT, partitions=(offsets,), transaction_version=0))
    fetch = OffsetFetchRequest(group_id="g", partitions=(T0,), require_stable=True)
    answers = {}

    def body():
        net, broker = cluster.network, cluster.broker
        cluster.broker_node.crash()
        cluster.broker_node.restart(load_ms=50)
        answers["marker"] = (yield net.request("x#1", broker, marker, 30_000)).results
        answers["fetch"] = (yield net.request("c#1/group", broker, fetch, 30_000)).error
        yield cluster.world.env.timeout(50)
        answers["fetch later"] = (yield net.request("c#1/group", broker, fetch, 30_000)).error
    run(cluster, body)
    assert answers == {"marker": ((offsets, Errors.NOT_LEADER_OR_FOLLOWER),),
                       "fetch": Errors.COORDINATOR_LOAD_IN_PROGRESS, "fetch later": Errors.NONE}
    assert [e["t"] for e in events(cluster, "group.load")] == [50]


# --- coordinator failover without a crash ----------------------------------------------------------------


def failover_with_markers_in_flight(seed: int = 7) -> Cluster:
    """A TV1 commit whose first WriteTxnMarkers request is delayed 50 ms; the coordinator fails over meanwhile."""
    cluster = make_cluster(seed)
    producer = Producer({"transactional.id": "tx"}, cluster=cluster, name="p#1")
    delayed = []

    def route(packet: Packet):
        if type(packet.payload).__name__ == "WriteTxnMarkersRequest" and not delayed:
            delayed.append(packet.correlation_id)
            return 50
        return 0

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        producer.produce("t", value="a", key="k")
        cluster.network.route = route
        yield producer.commit_transaction()  # TV1: answered once PrepareCommit is durable
        cluster.broker_node.coordinator_failover(down_ms=5, load_ms=10)
        yield cluster.world.env.timeout(200)
    run(cluster, body)
    return cluster


def test_failover_with_markers_in_flight_writes_them_twice_each_at_its_own_offset_and_the_txn_completes():
    """TSM re-sends the markers of a loaded PrepareCommit: the marker already on its way lands first (coordinator
    epoch 0, closing the transaction), the re-sent one after it (epoch 1): each takes an offset. The old request's
    answer, coming back to the moved coordinator, removes nothing (KAFKA-16352)."""
    cluster = failover_with_markers_in_flight()
    broker = cluster.broker_node
    assert [e["coordinator_epoch"] for e in events(cluster, "txn.resign")] == [0]
    assert [e["coordinator_epoch"] for e in events(cluster, "txn.elect")] == [1]
    assert [(e["state"], e["coordinator_epoch"]) for e in events(cluster, "txn.load")] == [("PrepareCommit", 1)]
    markers = events(cluster, "log.marker")
    assert [(m["offset"], m["coordinator_epoch"]) for m in markers] == [(1, 0), (2, 1)]
    assert [e["new"] for e in events(cluster, "txn.state") if e["new"] == "CompleteCommit"] == ["CompleteCommit"]
    assert broker.txn.tc.metadata("tx").state is TransactionState.COMPLETE_COMMIT
    log = broker.replicas.logs[T0]
    assert (log.log_end_offset, log.high_watermark, log.last_stable_offset) == (3, 3, 3)


def test_a_failover_while_prepare_commit_is_being_written_answers_not_coordinator_and_the_load_completes_it():
    """The PrepareCommit record is in the log but its write is not acknowledged when the coordinator moves:
    EndTxn gets NOT_COORDINATOR (TSM.appendTransactionToLog's callback), the load finds PrepareCommit and
    re-sends the markers, and librdkafka's retried EndTxn finds CompleteCommit: NONE. The oracle is quiet."""
    cluster = make_cluster()
    env, broker = cluster.world.env, cluster.broker_node
    producer = Producer({"transactional.id": "tx"}, cluster=cluster, name="p#1")

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        producer.produce("t", value="a", key="k")
        yield producer.commit_transaction()
    done = env.process(body())
    while not [e for e in events(cluster, "txn.log") if e["state"] == "PrepareCommit"]:
        env.step()
    broker.coordinator_failover(down_ms=5, load_ms=10)
    env.run(until=done)
    end_txn = [e["fields"]["error"] for e in events(cluster, "net.response") if e["msg"] == "EndTxnResponse"]
    assert end_txn == ["NOT_COORDINATOR", "NONE"]
    assert "PrepareCommit" not in [e["new"] for e in events(cluster, "txn.state")]  # never acknowledged
    assert [e["state"] for e in events(cluster, "txn.load")] == ["PrepareCommit"]
    assert [(m["offset"], m["coordinator_epoch"]) for m in events(cluster, "log.marker")] == [(1, 1)]
    assert broker.txn.tc.metadata("tx").state is TransactionState.COMPLETE_COMMIT
    assert check_trace(cluster.world.trace.dicts()).valid is True


def test_during_a_failover_requests_get_not_coordinator_then_coordinator_load_in_progress():
    cluster = make_cluster()
    init = InitProducerIdRequest(transactional_id="tx", transaction_timeout_ms=60_000)
    answers = []

    def body():
        net, broker = cluster.network, cluster.broker
        yield net.request("c#1/txn", broker, init, 30_000)
        cluster.broker_node.coordinator_failover(down_ms=20, load_ms=20)
        for _ in range(3):
            answers.append((yield net.request("c#1/txn", broker, init, 30_000)).error)
            yield cluster.world.env.timeout(20)
    run(cluster, body)
    assert answers == [Errors.NOT_COORDINATOR, Errors.COORDINATOR_LOAD_IN_PROGRESS, Errors.NONE]


# --- determinism ----------------------------------------------------------------------------------------


def test_same_seed_same_trace_across_a_crash_restart_and_a_failover():
    def traces(seed: int) -> tuple[str, str]:
        restarted, _, _ = idempotent_run(2, crash=True, seed=seed)
        failed_over = failover_with_markers_in_flight(seed)
        return dumps_lines(restarted.world.trace.dicts()), dumps_lines(failed_over.world.trace.dicts())

    assert traces(3) == traces(3)


def overlapping_failovers(first_down_ms: int, second_after_ms: int, second_down_ms: int) -> Cluster:
    """A TV1 commit in PrepareCommit when the coordinator fails over twice: the second failover starts
    ``second_after_ms`` after the first, while the first is still down for ``first_down_ms``."""
    cluster = make_cluster()
    producer = Producer({"transactional.id": "tx"}, cluster=cluster, name="p#1")

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        producer.produce("t", value="a", key="k")
        cluster.network.route = drop("WriteTxnMarkersResponse")
        yield producer.commit_transaction()  # PrepareCommit is durable; the markers' answer is lost
        cluster.network.route = deliver_all
        broker = cluster.broker_node
        broker.coordinator_failover(down_ms=first_down_ms, load_ms=10)
        yield cluster.world.env.timeout(second_after_ms)
        broker.coordinator_failover(down_ms=second_down_ms, load_ms=10)
        yield cluster.world.env.timeout(first_down_ms + second_down_ms + 100)
    run(cluster, body)
    return cluster


@pytest.mark.parametrize("second_down_ms", [0, 3000])
def test_overlapping_failovers_never_take_the_coordinator_epoch_back_and_the_transaction_completes(second_down_ms):
    """The first failover's election (epoch 1) is superseded by the second's (epoch 2) before it happens: the
    broker applies leadership in metadata order, so it is elected at epoch 2 only, whichever comes first in
    time, and the reloaded PrepareCommit gets its markers at epoch 2 and completes."""
    cluster = overlapping_failovers(first_down_ms=1000, second_after_ms=100, second_down_ms=second_down_ms)
    broker = cluster.broker_node
    assert [e["coordinator_epoch"] for e in events(cluster, "txn.elect")] == [2]
    assert [e["leader_epoch"] for e in events(cluster, "partition.leader")] == [1, 2]
    assert broker.txn.tc.coordinator_epoch == 2
    assert broker.txn.tc.metadata("tx").state is TransactionState.COMPLETE_COMMIT
    log = broker.replicas.logs[T0]
    assert log.last_stable_offset == log.high_watermark
    assert check_trace(cluster.world.trace.dicts()).valid is True


def test_failovers_one_after_the_other_are_each_elected_at_a_higher_epoch():
    cluster = overlapping_failovers(first_down_ms=10, second_after_ms=500, second_down_ms=10)
    assert [e["coordinator_epoch"] for e in events(cluster, "txn.elect")] == [1, 2]
    assert cluster.broker_node.txn.tc.metadata("tx").state is TransactionState.COMPLETE_COMMIT


def test_a_restart_gives_every_partition_a_new_leader_epoch():
    cluster = make_cluster()
    run(cluster, lambda: crash_and_restart(cluster, at=10, down_ms=10))
    leaders = {str(e["tp"]): e["leader_epoch"] for e in events(cluster, "partition.leader")}
    assert leaders == {"t-0": 1, "__consumer_offsets-0": 1, "__transaction_state-0": 1}
    assert [e["coordinator_epoch"] for e in events(cluster, "txn.elect")] == [1]


def test_a_restart_resets_the_old_connections_so_a_later_batch_cannot_overtake_one_lost_in_the_crash():
    """Issue 13 (a nonmonotonic-send with no switch): v0 is sent to a crashed broker and lost; after the restart
    the producer sends v1 on the same connection. A new process never serves its predecessor's connections
    (the restarted host answers them with a reset), so v0 fails with DISCONNECTED at the restart and is retried
    first. Before, v1 was read on the old connection and appended ahead of v0 (a pid with no state on the
    partition takes any sequence), and v0 followed at a bumped epoch after its 60 s request timeout."""
    cluster = make_cluster()
    producer = Producer({"enable.idempotence": True, "batch.num.messages": 1}, cluster=cluster, name="p#1")
    reports: list = []

    def send(value):
        producer.produce("t", value=value, key="k", on_delivery=lambda err, msg: reports.append((err, msg.offset())))

    def body():
        yield cluster.world.env.timeout(600)  # the producer id came at 500 ms
        cluster.broker_node.crash()
        send("v0")
        yield cluster.world.env.timeout(100)
        cluster.broker_node.restart()
        yield cluster.world.env.timeout(50)
        send("v1")
        yield producer.flush()
    run(cluster, body)
    assert data_records(cluster) == [(0, "v0"), (1, "v1")]
    assert reports == [(None, 0), (None, 1)]
    assert cluster.world.now < 2000  # no request timeout was waited for
