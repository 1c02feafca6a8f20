"""The simulated confluent-kafka Producer against the real simulated cluster (no mocks)."""

from __future__ import annotations

import zlib

import pytest

from eosim.models.errors import Errors
from eosim.models.records import TopicPartition as TP
from eosim._client.consumer import Consumer
from eosim._client.errors import KafkaError, KafkaException
from eosim._client.message import ConsumerGroupMetadata, TopicPartition
from eosim._client.producer import Producer
from eosim._cluster import Cluster
from eosim._topology import cluster_config
from eosim._net import Packet, deliver_all
from eosim._world import World


def make_cluster(topics=None, **overrides):
    world = World(7)
    return Cluster(world, cluster_config(overrides), topics or {"t": 1})


def run(cluster, body):
    proc = cluster.world.env.process(body())
    cluster.world.env.run(until=proc)
    return proc.value


def data_records(cluster, tp=TP("t", 0)):
    log = cluster.broker_node.replicas.logs[tp]
    return [(b.base_offset + i, r.value) for b in log.batches if not b.is_control for i, r in enumerate(b.records)]


def markers(cluster, tp=TP("t", 0)):
    return [(b.base_offset, b.control.name) for b in cluster.broker_node.replicas.logs[tp].batches if b.is_control]


def drop_first(cluster, message_type):
    """Route hook: drop the first packet carrying ``message_type``."""
    dropped = []

    def route(packet: Packet):
        if not dropped and type(packet.payload).__name__ == message_type:
            dropped.append(packet)
            return None
        return 0
    cluster.network.route = route
    return dropped


def ops(cluster, node, op):
    return [e.data for e in cluster.world.trace.events if e.node == node and e.kind == "client.op"
            and e.data["op"] == op]


def test_idempotent_producer_dedups_the_retry_of_a_lost_response():
    cluster = make_cluster()
    dropped = drop_first(cluster, "ProduceResponse")
    producer = Producer({"enable.idempotence": True, "socket.timeout.ms": 1000}, cluster=cluster, name="p")
    reports = []

    def body():
        producer.produce("t", value="a", key="k", on_delivery=lambda err, msg: reports.append((err, msg.offset())))
        remaining = yield producer.flush()
        assert remaining == 0
    run(cluster, body)
    assert dropped, "the first ProduceResponse was dropped"
    assert data_records(cluster) == [(0, "a")]  # one copy: the broker recognised the retry
    assert reports == [(None, 0)]
    kinds = [e.kind for e in cluster.world.trace.events if e.kind.startswith("log.")]
    assert "log.duplicate" in kinds
    pids = [e.data for e in cluster.world.trace.events if e.kind == "client.pid"]
    assert pids == [{"transactional_id": None, "producer_id": 0, "producer_epoch": 0}]


def test_plain_producer_duplicates_when_a_response_is_lost():
    cluster = make_cluster()
    drop_first(cluster, "ProduceResponse")
    producer = Producer({"socket.timeout.ms": 1000}, cluster=cluster, name="p")

    def body():
        producer.produce("t", value="a", key="k")
        yield producer.flush()
    run(cluster, body)
    assert data_records(cluster) == [(0, "a"), (1, "a")]


def test_transactional_commit_writes_a_marker_and_becomes_visible_to_read_committed():
    cluster = make_cluster()
    producer = Producer({"transactional.id": "tx"}, cluster=cluster, name="p")
    consumer = Consumer({"group.id": "g", "auto.offset.reset": "earliest", "enable.auto.commit": False},
                        cluster=cluster, name="c")
    reports = []
    seen = []

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        for i in range(3):
            producer.produce("t", value=f"v{i}", key="k", on_delivery=lambda e, m: reports.append((e, m.offset())))
        yield producer.commit_transaction()
        consumer.assign([TopicPartition("t", 0)])
        while len(seen) < 3:
            msg = yield consumer.poll(1.0)
            if msg is not None:
                seen.append((msg.offset(), msg.value().decode()))
        # one more poll consumes the marker: the position skips its slot
        yield consumer.poll(1.0)
        return consumer.position([TopicPartition("t", 0)])[0].offset
    position = run(cluster, body)
    assert reports == [(None, 0), (None, 1), (None, 2)]  # callbacks fired inside commit_transaction
    assert markers(cluster) == [(3, "COMMIT")]
    assert seen == [(0, "v0"), (1, "v1"), (2, "v2")]
    assert position == 4
    log = cluster.broker_node.replicas.logs[TP("t", 0)]
    assert (log.high_watermark, log.last_stable_offset) == (4, 4)


def test_abort_hides_the_transaction_from_read_committed():
    cluster = make_cluster()
    producer = Producer({"transactional.id": "tx"}, cluster=cluster, name="p")
    committed = Consumer({"group.id": "g1", "auto.offset.reset": "earliest"}, cluster=cluster, name="rc")
    uncommitted = Consumer({"group.id": "g2", "auto.offset.reset": "earliest", "isolation.level": "read_uncommitted"},
                           cluster=cluster, name="ru")

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        producer.produce("t", value="gone", key="k")
        yield producer.flush()
        yield producer.abort_transaction()
        committed.assign([TopicPartition("t", 0)])
        uncommitted.assign([TopicPartition("t", 0)])
        rc = yield committed.consume(10, 2.0)
        ru = yield uncommitted.consume(10, 2.0)
        return [m.value().decode() for m in rc], [m.value().decode() for m in ru], committed.position([TopicPartition("t", 0)])
    rc, ru, position = run(cluster, body)
    assert markers(cluster) == [(1, "ABORT")]
    assert rc == [] and ru == ["gone"]
    assert position[0].offset == 2  # past the aborted data and the marker


def test_zombie_is_fenced_with_a_fatal_fenced_error():
    cluster = make_cluster()
    zombie = Producer({"transactional.id": "tx"}, cluster=cluster, name="zombie")
    successor = Producer({"transactional.id": "tx"}, cluster=cluster, name="successor")
    errors = {}

    def body():
        yield zombie.init_transactions()
        zombie.begin_transaction()
        zombie.produce("t", value="z", key="k")
        yield zombie.flush()
        yield successor.init_transactions()  # fences the zombie and aborts its transaction
        try:
            yield zombie.commit_transaction()
        except KafkaException as exc:
            errors["commit"] = exc.args[0]
        try:
            zombie.begin_transaction()
        except KafkaException as exc:
            errors["begin"] = exc.args[0]
        try:
            zombie.produce("t", value="again")
        except KafkaException as exc:
            errors["produce"] = exc.args[0]
    run(cluster, body)
    commit = errors["commit"]
    assert commit.name() == "_FENCED" and commit.fatal() and not commit.txn_requires_abort()
    assert errors["begin"].name() == "_FENCED" and errors["begin"].fatal()  # every later call: the fatal error
    assert errors["produce"].code() == KafkaError._FATAL
    assert markers(cluster) == [(1, "ABORT")]
    epochs = [(e.node, e.data["producer_epoch"]) for e in cluster.world.trace.events if e.kind == "client.pid"]
    assert epochs[0] == ("zombie", 0) and epochs[-1][0] == "successor" and epochs[-1][1] > 1
    traced = ops(cluster, "zombie", "commit_transaction")
    assert traced == [{"op": "commit_transaction", "args": {"timeout": -1}, "error": "_FENCED", "fatal": True,
                       "retriable": False, "txn_requires_abort": False}]


def test_concurrent_transactions_on_a_quick_reinit_is_retried_inside_init_transactions():
    cluster = make_cluster()
    # Slow markers keep the coordinator in PrepareCommit, where InitProducerId gets CONCURRENT_TRANSACTIONS.
    cluster.network.route = lambda packet: 700 if type(packet.payload).__name__ == "WriteTxnMarkersRequest" else 0
    first = Producer({"transactional.id": "tx"}, cluster=cluster, name="first")
    second = Producer({"transactional.id": "tx"}, cluster=cluster, name="second")

    def body():
        yield first.init_transactions()
        first.begin_transaction()
        first.produce("t", value="a", key="k")
        yield first.commit_transaction()
        yield second.init_transactions()
    run(cluster, body)
    replies = [e.data["fields"]["error"] for e in cluster.world.trace.events
               if e.kind == "net.response" and e.data["dst"] == "second/txn" and e.data["msg"] == "InitProducerIdResponse"]
    assert replies[0] == Errors.CONCURRENT_TRANSACTIONS.name and replies[-1] == Errors.NONE.name
    assert ops(cluster, "second", "init_transactions")[0]["result"] is None
    assert markers(cluster) == [(1, "COMMIT")]


def test_consume_transform_produce_commits_offsets_atomically():
    cluster = make_cluster({"in": 1, "out": 1})
    setup = Producer({}, cluster=cluster, name="setup")
    consumer = Consumer({"group.id": "app", "auto.offset.reset": "earliest", "enable.auto.commit": False},
                        cluster=cluster, name="c")
    producer = Producer({"transactional.id": "ctp"}, cluster=cluster, name="p")
    observer = Consumer({"group.id": "app"}, cluster=cluster, name="observer")

    def body():
        for i in range(4):
            setup.produce("in", value=f"in{i}", key="k")
        yield setup.flush()
        yield producer.init_transactions()
        consumer.assign([TopicPartition("in", 0)])
        outcomes = []
        for attempt in ("abort", "commit"):
            producer.begin_transaction()
            batch = yield consumer.consume(2, 2.0)
            for msg in batch:
                producer.produce("out", value=msg.value().decode().replace("in", "out"), key="k")
            yield producer.flush()  # written before the abort (abort purges what is still queued)
            yield producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                                       consumer.consumer_group_metadata())
            if attempt == "abort":
                yield producer.abort_transaction()
                consumer.seek(TopicPartition("in", 0, 0))  # rewind to the last committed position
            else:
                yield producer.commit_transaction()
            committed = yield observer.committed([TopicPartition("in", 0)], timeout=5)
            outcomes.append(committed[0].offset)
        return outcomes
    outcomes = run(cluster, body)
    assert outcomes == [-1001, 2]  # nothing after the abort, the consumed position after the commit
    assert data_records(cluster, TP("out", 0)) == [(0, "out0"), (1, "out1"), (3, "out0"), (4, "out1")]
    assert markers(cluster, TP("out", 0)) == [(2, "ABORT"), (5, "COMMIT")]
    assert cluster.broker_node.group.gc.committed("app") == {TP("in", 0): 2}


def test_produce_outside_a_transaction_is_a_state_error():
    cluster = make_cluster()
    producer = Producer({"transactional.id": "tx"}, cluster=cluster, name="p")
    with pytest.raises(KafkaException) as info:
        producer.produce("t", value="x")
    assert info.value.args[0].code() == KafkaError._STATE
    with pytest.raises(KafkaException) as info:
        producer.produce("nope", value="x")
    assert info.value.args[0].code() == KafkaError._STATE  # the transactional state is checked first


def test_unknown_topic_and_partition_are_local_errors():
    cluster = make_cluster()
    producer = Producer({}, cluster=cluster, name="p")
    with pytest.raises(KafkaException) as info:
        producer.produce("nope", value="x")
    assert info.value.args[0].name() == "_UNKNOWN_TOPIC"
    with pytest.raises(KafkaException) as info:
        producer.produce("t", value="x", partition=3)
    assert info.value.args[0].name() == "_UNKNOWN_PARTITION"


def test_message_timeout_in_flight_is_possibly_persisted_and_bumps_the_epoch():
    cluster = make_cluster()
    # The broker never answers: the request times out at message.timeout.ms.
    cluster.network.route = lambda packet: None if type(packet.payload).__name__ == "ProduceResponse" else 0
    producer = Producer({"enable.idempotence": True, "message.timeout.ms": 2000}, cluster=cluster, name="p")
    reports = []

    def body():
        producer.produce("t", value="a", key="k", on_delivery=lambda e, m: reports.append(e))
        yield producer.flush()
        cluster.network.route = deliver_all
        producer.produce("t", value="b", key="k", on_delivery=lambda e, m: reports.append(e))
        yield producer.flush()
    run(cluster, body)
    assert [r.name() if r else None for r in reports] == ["_MSG_TIMED_OUT", None]
    delivery = ops(cluster, "p", "delivery")
    assert delivery[0]["result"]["status"] == "POSSIBLY_PERSISTED"
    pids = [e.data["producer_epoch"] for e in cluster.world.trace.events if e.kind == "client.pid"]
    assert pids == [0, 1]  # drained, then bumped locally
    log = cluster.broker_node.replicas.logs[TP("t", 0)]
    assert [(b.producer_epoch, b.base_sequence) for b in log.batches] == [(0, 0), (1, 0)]


def test_same_key_same_partition_crc32():
    cluster = make_cluster({"t": 8})
    producer = Producer({}, cluster=cluster, name="p")

    def body():
        producer.produce("t", value="1", key="user-1")
        producer.produce("t", value="2", key="user-1")
        yield producer.flush()
    run(cluster, body)
    expected = zlib.crc32(b"user-1") % 8
    assert [r for r in data_records(cluster, TP("t", expected))] == [(0, "1"), (1, "2")]


def sources(cluster, node):
    """{request type: the source nodes it was sent from} for one client's requests."""
    found = {}
    for e in cluster.world.trace.events:
        if e.kind == "net.request" and e.node.split("/", 1)[0] == node:
            found.setdefault(e.data["msg"], set()).add(e.node)
    return found


def test_coordinator_requests_go_over_their_own_logical_connections():
    """librdkafka keeps a logical broker, with its own connection, for the transaction coordinator
    (rk_eos.txn_coord = rd_kafka_broker_add_logical(rk, "TxnCoordinator"), rdkafka_txnmgr.c): the
    transactional InitProducerId (rd_kafka_idemp_pid_fsm), AddPartitionsToTxn, AddOffsetsToTxn and EndTxn
    use it. Produce goes to the partition leader's node broker, and so does TxnOffsetCommit:
    rd_kafka_coord_req (rdkafka_coord.c) sends it to the node broker FindCoordinator named, which on a
    one-node cluster is the leader's. A plain idempotent producer asks any broker for its PID
    (rd_kafka_idemp_broker_any). Kafka handles one request per connection at a time, so which connection
    a request takes decides what it can queue behind."""
    cluster = make_cluster({"in": 1, "out": 1})
    producer = Producer({"transactional.id": "tx"}, cluster=cluster, name="p#1")
    idempotent = Producer({"enable.idempotence": True}, cluster=cluster, name="i#1")

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        producer.produce("out", value="v", key="k")
        yield producer.send_offsets_to_transaction([TopicPartition("in", 0, 1)], ConsumerGroupMetadata(group_id="g"))
        yield producer.commit_transaction()
        idempotent.produce("out", value="w", key="k")
        yield idempotent.flush()
    run(cluster, body)
    assert sources(cluster, "p#1") == {
        "InitProducerIdRequest": {"p#1/txn"}, "AddPartitionsToTxnRequest": {"p#1/txn"},
        "AddOffsetsToTxnRequest": {"p#1/txn"}, "EndTxnRequest": {"p#1/txn"},
        "ProduceRequest": {"p#1"}, "TxnOffsetCommitRequest": {"p#1"}}
    assert sources(cluster, "i#1") == {"InitProducerIdRequest": {"i#1"}, "ProduceRequest": {"i#1"}}


def test_crash_vanishes_without_closing():
    """A crash is the process being killed (the conformance driver SIGKILLs the actor): librdkafka never
    runs rd_kafka_destroy, so there is no flush, no EndTxn, no delivery report. A request already written
    to the socket still reaches the broker; nothing else is sent, and a blocking call in progress never
    returns. confluent-kafka refuses calls on a handle that is gone with RuntimeError("Producer has been
    closed") (ERR_MSG_PRODUCER_CLOSED, Producer.c `if (!self->rk)`), and len() is 0 (Producer__len__)."""
    cluster = make_cluster()
    slow = {"ProduceRequest": 50}
    cluster.network.route = lambda packet: slow.get(type(packet.payload).__name__, 0)
    producer = Producer({"transactional.id": "tx", "linger.ms": 100}, cluster=cluster, name="p#1")
    reports = []
    seen = {}

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        producer.produce("t", value="sent", key="k", on_delivery=lambda e, m: reports.append(m.value().decode()))
        def flusher():  # a flush in progress, as on another thread: its own process yields it
            yield producer.flush()  # Produce on the wire at once (flush bypasses linger), acked at ~52 ms
        flushing = cluster.world.env.process(flusher())
        yield cluster.world.env.timeout(10)
        producer.produce("t", value="queued", key="k", on_delivery=lambda e, m: reports.append(m.value().decode()))
        producer.crash()
        seen["crashed_at"] = cluster.world.env.now
        yield cluster.world.env.timeout(5000)
        seen["flush_returned"] = flushing.triggered
        seen["len"] = len(producer)
        for call in (lambda: producer.produce("t", value="x"), producer.flush, producer.commit_transaction,
                     producer.abort_transaction, producer.begin_transaction):
            with pytest.raises(RuntimeError, match="Producer has been closed"):
                call()
    run(cluster, body)
    assert data_records(cluster) == [(0, "sent")]  # in flight at the crash: it reached the broker
    assert reports == [] and seen["flush_returned"] is False and seen["len"] == 0
    after = [(e.kind, e.data.get("msg") or e.data.get("op")) for e in cluster.world.trace.events
             if e.node.startswith("p#1") and e.t >= seen["crashed_at"]]
    assert after == [("client.op", "produce"), ("client.op", "crash")]  # then silence: no EndTxn, no retry
    assert markers(cluster) == []  # the transaction stays open until the coordinator times it out


def test_a_fatal_error_is_raised_once_by_the_next_poll() -> None:
    """rd_kafka_set_fatal_error0 queues one event; confluent-kafka raises it from the call that serves
    it instead of calling error_cb (confluent_kafka.c error_cb), and delivery reports queued behind it
    wait. Seen on Kafka 4.1.2: a fenced abort, then poll raises _FENCED once (fenced-producer-errors)."""
    from eosim._client.errors import KafkaException
    from eosim._client.producer import Producer
    from eosim._cluster import Cluster
    from eosim._topology import cluster_config
    from eosim._world import World

    world = World(1)
    cluster = Cluster(world, cluster_config({}), {"out": 1})
    zombie = Producer({"transactional.id": "t"}, cluster=cluster, name="zombie#1")
    fencer = Producer({"transactional.id": "t"}, cluster=cluster, name="fencer#1")
    seen = []

    def script():
        yield zombie.init_transactions()
        zombie.begin_transaction()
        zombie.produce("out", value="v", partition=0)
        yield zombie.flush()
        yield fencer.init_transactions()
        for call in (zombie.abort_transaction, lambda: zombie.poll(0), lambda: zombie.poll(0)):
            try:
                yield call()
                seen.append("ok")
            except KafkaException as exc:
                seen.append((exc.args[0].name(), exc.args[0].fatal()))

    world.env.run(until=world.env.process(script()))
    assert seen == [("_FENCED", True), ("_FENCED", True), "ok"]


def refuse_first_produce(cluster, error):
    """The broker's fault hook: the first Produce meets a shrunken ISR (``error`` before the append)."""
    from eosim._broker import Injection
    refused = []

    def inject(packet):
        if not refused and type(packet.payload).__name__ == "ProduceRequest":
            refused.append(packet.correlation_id)
            return Injection(error=error, after_apply=False)
        return None
    cluster.broker_node.inject = inject
    return refused


def test_not_enough_replicas_refuses_after_verification_and_holds_for_the_batch_sent_behind_it():
    """Issue 13: the first batch of a transaction is refused with NOT_ENOUGH_REPLICAS while the second is in
    flight. Kafka checks min.insync.replicas in Partition.appendRecordsToLeader, after ReplicaManager verified
    the batch (KIP-890), and the ISR it reads cannot change between two requests handled back to back: the
    second batch, sent before the refusal came back, is refused too. librdkafka retries both, in order
    (rd_kafka_handle_Produce_error: RETRY, NOT_PERSISTED; the partition drains first). Before the fix the
    second batch was the pid's first append (any sequence goes, KIP-360), 'a' was acked implicitly without
    an offset (rd_kafka_dr_implicit_ack), and the commit lost it."""
    cluster = make_cluster()
    refused = refuse_first_produce(cluster, Errors.NOT_ENOUGH_REPLICAS)
    producer = Producer({"transactional.id": "tx", "batch.num.messages": 1}, cluster=cluster, name="p")
    reports = []

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        for value in ("a", "b"):
            producer.produce("t", value=value, on_delivery=lambda e, m: reports.append((m.value(), e, m.offset())))
        yield producer.commit_transaction()
    run(cluster, body)
    assert refused
    log_events = [(e.kind, e.data.get("base_sequence"), e.data.get("error")) for e in cluster.world.trace.events
                  if e.kind.startswith("log.") and e.kind != "log.offsets" or
                  (e.kind == "net.request" and e.node == "broker-1/verification")]
    assert log_events[:4] == [("net.request", None, None), ("log.reject", 0, "NOT_ENOUGH_REPLICAS"),
                              ("net.request", None, None), ("log.reject", 1, "NOT_ENOUGH_REPLICAS")]
    assert reports == [(b"a", None, 0), (b"b", None, 1)]
    assert data_records(cluster) == [(0, "a"), (1, "b")]
    cluster.world.env.run(until=cluster.world.env.now + 50)  # the marker is written after the commit returns
    assert markers(cluster) == [(2, "COMMIT")]


def test_a_connection_cut_under_the_first_batch_fails_the_later_one_with_it_and_order_holds():
    """Issue 13: the connection closes as the first of two batches is sent. librdkafka's broker thread is then
    DOWN: rd_kafka_broker_fail fails what it queued or sent on that socket (_TRANSPORT), and nothing is sent
    before the failure is handled. Before the fix the second batch went out on a fresh connection at once,
    was the pid's first append on the partition (any sequence goes for a pid with no state, KIP-360), and its
    success implicitly acked the first (rd_kafka_dr_implicit_ack): a committed record without an offset,
    never written."""
    cluster = make_cluster()
    cut = []

    def route(packet):
        if not cut and type(packet.payload).__name__ == "ProduceRequest":
            cut.append(packet.correlation_id)
            cluster.network.close(lambda s, d: (s, d) == (packet.src, packet.dst))
            return None
        return 0
    cluster.network.route = route
    producer = Producer({"transactional.id": "tx", "batch.num.messages": 1}, cluster=cluster, name="p")
    reports = []

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        for value in ("a", "b"):
            producer.produce("t", value=value, on_delivery=lambda e, m: reports.append((m.value(), e, m.offset())))
        yield producer.commit_transaction()
    run(cluster, body)
    assert cut
    assert reports == [(b"a", None, 0), (b"b", None, 1)]
    assert data_records(cluster) == [(0, "a"), (1, "b")]


@pytest.mark.parametrize("error", [Errors.NOT_ENOUGH_REPLICAS, Errors.NOT_LEADER_OR_FOLLOWER, Errors.KAFKA_STORAGE_ERROR])
def test_an_idempotent_producers_batch_behind_a_refused_one_meets_the_same_partition_state(error):
    """Issue 13, the idempotent case: nothing like KIP-890's verification entry guards a pid with no state on the
    partition, so only the partition's state keeps the batch sent behind the refused one out (eosim._broker
    ._partition_state); a batch sent after the refusal was answered is served normally."""
    cluster = make_cluster()
    refuse_first_produce(cluster, error)
    producer = Producer({"enable.idempotence": True, "batch.num.messages": 1}, cluster=cluster, name="p")
    reports = []

    def body():
        yield cluster.world.env.timeout(600)  # the producer id comes at 500 ms
        for value in ("a", "b"):
            producer.produce("t", value=value, on_delivery=lambda e, m: reports.append((m.value(), e, m.offset())))
        yield producer.flush()
    run(cluster, body)
    rejects = [(e.data["base_sequence"], e.data["error"]) for e in cluster.world.trace.events if e.kind == "log.reject"]
    assert rejects == [(0, error.name), (1, error.name)]
    assert reports == [(b"a", None, 0), (b"b", None, 1)]
    assert data_records(cluster) == [(0, "a"), (1, "b")]
