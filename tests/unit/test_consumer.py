"""The simulated confluent-kafka Consumer against the real simulated cluster (no mocks)."""

from __future__ import annotations

import pytest

from eosim.models.errors import Errors
from eosim.models.records import TopicPartition as TP
from eosim._client.consumer import Consumer
from eosim._client.errors import KafkaError, KafkaException
from eosim._client.message import ConsumerGroupMetadata, TopicPartition
from eosim._client.producer import Producer
from eosim._cluster import Cluster
from eosim._topology import cluster_config
from eosim._world import World


def make_cluster(topics=None, **overrides):
    return Cluster(World(11), cluster_config(overrides), topics or {"t": 1})


def run(cluster, body):
    proc = cluster.world.env.process(body())
    cluster.world.env.run(until=proc)
    return proc.value


def responses(cluster, node, msg):
    return [e.data["fields"] for e in cluster.world.trace.events
            if e.kind == "net.response" and e.data["dst"] == node and e.data["msg"] == msg]


def test_read_committed_consumer_is_blocked_by_the_lso_until_commit():
    cluster = make_cluster()
    producer = Producer({"transactional.id": "tx"}, cluster=cluster, name="p")
    committed = Consumer({"group.id": "g", "auto.offset.reset": "earliest"}, cluster=cluster, name="rc")
    uncommitted = Consumer({"group.id": "g2", "auto.offset.reset": "earliest", "isolation.level": "read_uncommitted"},
                           cluster=cluster, name="ru")

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        producer.produce("t", value="a", key="k")
        producer.produce("t", value="b", key="k")
        yield producer.flush()
        committed.assign([TopicPartition("t", 0)])
        uncommitted.assign([TopicPartition("t", 0)])
        before = yield committed.consume(10, 2.0)
        dirty = yield uncommitted.consume(10, 2.0)
        yield producer.commit_transaction()
        after = yield committed.consume(10, 2.0)
        return ([m.value().decode() for m in before], [m.value().decode() for m in dirty],
                [(m.offset(), m.value().decode()) for m in after])
    before, dirty, after = run(cluster, body)
    assert before == []  # the open transaction holds the LSO at 0
    assert dirty == ["a", "b"]  # read_uncommitted reads up to the HW
    assert after == [(0, "a"), (1, "b")]


def test_unstable_offset_commit_is_retried_by_committed_and_by_the_start_position():
    cluster = make_cluster({"in": 1})
    producer = Producer({"transactional.id": "tx"}, cluster=cluster, name="p")
    reader = Consumer({"group.id": "app", "enable.auto.commit": False}, cluster=cluster, name="reader")
    starter = Consumer({"group.id": "app", "enable.auto.commit": False, "auto.offset.reset": "earliest"},
                       cluster=cluster, name="starter")
    setup = Producer({}, cluster=cluster, name="setup")
    seen = {}

    def later_commit():
        yield cluster.world.env.timeout(1500)
        yield producer.commit_transaction()
        seen["committed_at"] = cluster.world.env.now

    def body():
        for i in range(5):
            setup.produce("in", value=f"v{i}", key="k")
        yield setup.flush()
        yield producer.init_transactions()
        producer.begin_transaction()
        yield producer.send_offsets_to_transaction([TopicPartition("in", 0, 3)], ConsumerGroupMetadata(group_id="app"))
        cluster.world.env.process(later_commit())
        starter.assign([TopicPartition("in", 0)])  # start position: the committed offset, once stable
        committed = yield reader.committed([TopicPartition("in", 0)], timeout=10)
        seen["returned_at"] = cluster.world.env.now
        first = yield starter.poll(5.0)
        return committed[0].offset, first.offset()
    offset, first = run(cluster, body)
    assert offset == 3 and first == 3
    assert seen["returned_at"] >= seen["committed_at"]
    for node in ("reader", "starter"):
        errors = [r["results"][0][2] for r in responses(cluster, f"{node}/group", "OffsetFetchResponse")]
        assert errors[0] == Errors.UNSTABLE_OFFSET_COMMIT.name and errors[-1] == Errors.NONE.name


def test_committed_times_out_while_the_offsets_stay_unstable():
    cluster = make_cluster({"in": 1})
    producer = Producer({"transactional.id": "tx"}, cluster=cluster, name="p")
    reader = Consumer({"group.id": "app"}, cluster=cluster, name="reader")

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        yield producer.send_offsets_to_transaction([TopicPartition("in", 0, 1)], ConsumerGroupMetadata(group_id="app"))
        with pytest.raises(KafkaException) as info:
            yield reader.committed([TopicPartition("in", 0)], timeout=1)
        return info.value.args[0]
    error = run(cluster, body)
    assert error.code() == KafkaError._TIMED_OUT


def test_read_uncommitted_does_not_require_stable_offsets():
    cluster = make_cluster({"in": 1})
    producer = Producer({"transactional.id": "tx"}, cluster=cluster, name="p")
    reader = Consumer({"group.id": "app", "isolation.level": "read_uncommitted"}, cluster=cluster, name="reader")

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        yield producer.send_offsets_to_transaction([TopicPartition("in", 0, 1)], ConsumerGroupMetadata(group_id="app"))
        committed = yield reader.committed([TopicPartition("in", 0)], timeout=1)
        return committed[0].offset
    assert run(cluster, body) == -1001  # pending offsets are invisible, but nothing waits for them


def test_poll_stores_offsets_and_auto_commit_commits_them():
    cluster = make_cluster()
    setup = Producer({}, cluster=cluster, name="setup")
    consumer = Consumer({"group.id": "g", "auto.offset.reset": "earliest", "auto.commit.interval.ms": 1000},
                        cluster=cluster, name="c")

    def body():
        for i in range(3):
            setup.produce("t", value=f"v{i}", key="k")
        yield setup.flush()
        consumer.assign([TopicPartition("t", 0)])
        got = []
        while len(got) < 2:
            msg = yield consumer.poll(1.0)
            if msg is not None:
                got.append(msg.offset())
        yield cluster.world.env.timeout(1500)
        return got
    got = run(cluster, body)
    assert got == [0, 1]
    assert cluster.broker_node.group.gc.committed("g") == {TP("t", 0): 2}


def test_sync_commit_returns_the_committed_list_and_no_offset_is_an_error():
    cluster = make_cluster()
    setup = Producer({}, cluster=cluster, name="setup")
    consumer = Consumer({"group.id": "g", "auto.offset.reset": "earliest", "enable.auto.commit": False},
                        cluster=cluster, name="c")

    def body():
        setup.produce("t", value="v", key="k")
        yield setup.flush()
        consumer.assign([TopicPartition("t", 0)])
        with pytest.raises(KafkaException) as info:
            yield consumer.commit(asynchronous=False)
        msg = yield consumer.poll(2.0)
        committed = yield consumer.commit(message=msg, asynchronous=False)
        return info.value.args[0], committed
    error, committed = run(cluster, body)
    assert error.code() == KafkaError._NO_OFFSET
    assert [(p.topic, p.partition, p.offset, p.error) for p in committed] == [("t", 0, 1, None)]


def _two_members(cluster):
    first = Consumer({"group.id": "g", "session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
                     cluster=cluster, name="c1")
    second = Consumer({"group.id": "g", "session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
                      cluster=cluster, name="c2")
    seen = {}

    def body():
        first.subscribe(["t"])
        yield first.poll(2.0)
        seen["alone"] = [(p.topic, p.partition) for p in first.assignment()]
        second.subscribe(["t"])
        for _ in range(10):
            yield cluster.world.env.all_of([first.poll(0.5), second.poll(0.5)])
        seen["first"] = [(p.topic, p.partition) for p in first.assignment()]
        seen["second"] = [(p.topic, p.partition) for p in second.assignment()]
        seen["generation"] = first.consumer_group_metadata().generation_id
        yield first.close()
        yield second.close()
    run(cluster, body)
    return seen


def test_subscribe_joins_the_group_and_rejoins_after_a_rebalance():
    cluster = make_cluster({"t": 2})
    seen = _two_members(cluster)
    assert seen["alone"] == [("t", 0), ("t", 1)]
    assert seen["generation"] == 2
    first_ops = [e.data["op"] for e in cluster.world.trace.events
                 if e.node == "c1" and e.kind == "client.op" and e.data["op"] in ("assign", "revoke")]
    assert first_ops == ["assign", "revoke", "assign"]  # REBALANCE_IN_PROGRESS on a heartbeat: rejoin
    left = [e.data["msg"] for e in cluster.world.trace.events if e.kind == "net.request" and e.data["msg"] ==
            "LeaveGroupRequest"]
    assert len(left) == 2


def test_a_rebalance_splits_the_partitions():
    seen = _two_members(make_cluster({"t": 2}))
    assert sorted(seen["first"] + seen["second"]) == [("t", 0), ("t", 1)]
    assert seen["first"] and seen["second"]


def test_seek_and_position():
    cluster = make_cluster()
    setup = Producer({}, cluster=cluster, name="setup")
    consumer = Consumer({"group.id": "g", "auto.offset.reset": "earliest", "enable.auto.commit": False},
                        cluster=cluster, name="c")

    def body():
        for i in range(3):
            setup.produce("t", value=f"v{i}", key="k")
        yield setup.flush()
        consumer.assign([TopicPartition("t", 0)])
        first = yield consumer.poll(2.0)
        consumer.seek(TopicPartition("t", 0, 2))
        after_seek = consumer.position([TopicPartition("t", 0)])[0].offset
        second = yield consumer.poll(2.0)
        return first.offset(), after_seek, second.offset(), consumer.position([TopicPartition("t", 0)])[0].offset
    assert run(cluster, body) == (0, -1001, 2, 3)  # seek resets the app position (see below)


def test_position_is_the_application_position_not_the_fetch_position():
    """rd_kafka_position returns rktp_app_pos (rdkafka.c rd_kafka_position), which only moves when a
    message or a control message is handed to the application (rd_kafka_fetch_op_app_prepare and
    rd_kafka_op_handle_std in rdkafka_op.c, rd_kafka_consume_batch_queue in rdkafka_queue.c), and which
    seek resets to OFFSET_INVALID (rd_kafka_toppar_seek, rdkafka_partition.c). Fetching at offset 1, or
    having fetched records already, does not move it: before anything is consumed it is -1001, so
    send_offsets_to_transaction(position()) has no valid offset and sends nothing
    (rd_kafka_send_offsets_to_transaction: "No valid offsets, e.g., nothing was consumed")."""
    cluster = make_cluster({"in": 1, "out": 1})
    setup = Producer({}, cluster=cluster, name="setup")
    consumer = Consumer({"group.id": "g", "enable.auto.commit": False}, cluster=cluster, name="c")
    producer = Producer({"transactional.id": "tx"}, cluster=cluster, name="p")
    tp = TopicPartition("in", 0)

    def body():
        for i in range(3):
            setup.produce("in", value=f"v{i}", key="k")
        yield setup.flush()
        yield producer.init_transactions()
        consumer.assign([TopicPartition("in", 0, 1)])
        seen = [consumer.position([tp])[0].offset]
        yield cluster.world.env.timeout(1000)  # fetched by now, but not handed out
        seen.append(consumer.position([tp])[0].offset)
        producer.begin_transaction()
        yield producer.send_offsets_to_transaction(consumer.position([tp]), consumer.consumer_group_metadata())
        msg = yield consumer.poll(1.0)
        seen += [msg.offset(), consumer.position([tp])[0].offset]
        consumer.seek(TopicPartition("in", 0, 0))
        seen.append(consumer.position([tp])[0].offset)
        yield producer.send_offsets_to_transaction(consumer.position([tp]), consumer.consumer_group_metadata())
        yield producer.commit_transaction()
        return seen
    assert run(cluster, body) == [-1001, -1001, 1, 2, -1001]
    sent = [e.data["msg"] for e in cluster.world.trace.events if e.kind == "net.request"
            and e.data["msg"] in ("AddOffsetsToTxnRequest", "TxnOffsetCommitRequest", "EndTxnRequest")]
    assert sent == []  # no valid offset either time, nothing produced: not even EndTxn


def test_closed_consumer_refuses_calls():
    cluster = make_cluster()
    consumer = Consumer({"group.id": "g"}, cluster=cluster, name="c")
    run(cluster, lambda: (yield consumer.close()))
    with pytest.raises(RuntimeError):
        consumer.poll(0)


def test_group_requests_go_over_the_group_coordinator_connection():
    """librdkafka's consumer group has a logical broker with its own connection
    (rkcg_coord = rd_kafka_broker_add_logical(rk, "GroupCoordinator"), rdkafka_cgrp.c): JoinGroup,
    Heartbeat, LeaveGroup, OffsetCommit and OffsetFetch (rd_kafka_cgrp_op_serve, and the assignment's
    rd_kafka_assignment_serve_pending in rdkafka_assignment.c) use it; Fetch and ListOffsets go to the
    partition leader's node broker (rd_kafka_toppar_offset_request, rdkafka_partition.c). Kafka handles
    one request per connection at a time, so a JoinGroup parked at the coordinator never holds up a
    Fetch."""
    cluster = make_cluster()
    setup = Producer({}, cluster=cluster, name="setup")
    consumer = Consumer({"group.id": "g", "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "heartbeat.interval.ms": 500}, cluster=cluster, name="c#1")

    def body():
        setup.produce("t", value="v", key="k")
        yield setup.flush()
        consumer.subscribe(["t"])
        msg = yield consumer.poll(5.0)
        yield consumer.commit(message=msg, asynchronous=False)
        yield consumer.committed([TopicPartition("t", 0)])
        yield cluster.world.env.timeout(600)  # a heartbeat
        yield consumer.close()
    run(cluster, body)
    found = {}
    for e in cluster.world.trace.events:
        if e.kind == "net.request" and e.node.startswith("c#1"):
            found.setdefault(e.data["msg"], set()).add(e.node)
    assert found == {
        "JoinGroupRequest": {"c#1/group"}, "SyncGroupRequest": {"c#1/group"}, "HeartbeatRequest": {"c#1/group"}, "OffsetFetchRequest": {"c#1/group"},
        "OffsetCommitRequest": {"c#1/group"}, "LeaveGroupRequest": {"c#1/group"},
        "ListOffsetsRequest": {"c#1"}, "FetchRequest": {"c#1"}}


def test_crash_vanishes_without_committing_or_leaving():
    """A crash is the process being killed: rd_kafka_consumer_close never runs, so no final auto-commit,
    no LeaveGroup; heartbeats and fetches stop, and the group coordinator only notices when the session
    times out (the classic protocol does not watch connections). A poll in progress never returns. Later
    calls raise RuntimeError("Consumer closed") as on a closed handle (ERR_MSG_CONSUMER_CLOSED,
    Consumer.c `if (!self->rk)`)."""
    cluster = make_cluster()
    setup = Producer({}, cluster=cluster, name="setup")
    consumer = Consumer({"group.id": "g", "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                         "heartbeat.interval.ms": 500, "auto.commit.interval.ms": 5000}, cluster=cluster, name="c#1")
    seen = {}

    def body():
        setup.produce("t", value="v", key="k")
        yield setup.flush()
        consumer.subscribe(["t"])
        msg = yield consumer.poll(5.0)
        seen["offset"] = msg.offset()  # stored for auto-commit, not committed yet
        def poller():  # a poll in progress, as on another thread: its own process yields it
            yield consumer.poll(10.0)
        polling = cluster.world.env.process(poller())
        yield cluster.world.env.timeout(100)
        consumer.crash()
        seen["crashed_at"] = cluster.world.env.now
        yield cluster.world.env.timeout(9000)
        seen["poll_returned"] = polling.triggered
        for call in (lambda: consumer.poll(0), consumer.assignment, consumer.close,
                     lambda: consumer.position([TopicPartition("t", 0)])):
            with pytest.raises(RuntimeError, match="Consumer closed"):
                call()
    run(cluster, body)
    assert seen["offset"] == 0 and seen["poll_returned"] is False
    after = [(e.kind, e.data.get("msg") or e.data.get("op")) for e in cluster.world.trace.events
             if e.node.startswith("c#1") and e.t >= seen["crashed_at"]]
    assert after == [("client.op", "crash")]  # no OffsetCommit, LeaveGroup, Heartbeat or Fetch
    assert cluster.broker_node.group.gc.committed("g") == {}
    generations = [(e.t, e.data["members"]) for e in cluster.world.trace.events if e.kind == "group.generation"]
    expired = [t for t, members in generations if not members]
    # joined at generations[0]; the first heartbeat would have been due 500 ms later, after the crash
    assert expired[0] == generations[0][0] + 6000  # session.timeout.ms after the last sign of life


def test_logical_offset_lookup_waits_for_the_offset_query_timer():
    """rd_kafka_toppar_offset_request (rdkafka_partition.c) sends ListOffsets at once only when the
    partition's leader is known; right after the first assign of a topic its metadata is still on the
    way, so the lookup waits for the 500 ms offset-query timer ("no current leader for partition"). A
    reset caused by an error waits 100 ms (rd_kafka_offset_reset: `err ? 100 : 0`), which is the case
    of a partition with no committed offset (rd_kafka_toppar_fetch_start resets with _NO_OFFSET). So on
    Kafka a consume with a 500 ms timeout right after assign(BEGINNING) returns nothing; once the topic
    is known, a new assign looks up at once."""
    cluster = make_cluster()
    setup = Producer({}, cluster=cluster, name="setup")
    consumer = Consumer({"group.id": "g", "auto.offset.reset": "earliest", "enable.auto.commit": False},
                        cluster=cluster, name="c")
    seen = {}

    def body():
        for i in range(3):
            setup.produce("t", value=f"v{i}", key="k")
        yield setup.flush()
        seen["assigned"] = cluster.world.env.now
        consumer.assign([TopicPartition("t", 0, -2)])  # OFFSET_BEGINNING, topic never seen before
        seen["first"] = [m.offset() for m in (yield consumer.consume(10, 0.5))]
        seen["later"] = [m.offset() for m in (yield consumer.consume(10, 0.5))]
        seen["reassigned"] = cluster.world.env.now
        consumer.assign([TopicPartition("t", 0, -2)])  # the leader is known now
        seen["again"] = [m.offset() for m in (yield consumer.consume(10, 0.5))]
        seen["stored"] = cluster.world.env.now
        consumer.assign([TopicPartition("t", 0)])  # no committed offset: auto.offset.reset after an error
        seen["reset"] = [m.offset() for m in (yield consumer.consume(10, 0.5))]
    run(cluster, body)
    assert seen["first"] == [] and seen["later"] == [0, 1, 2]
    assert seen["again"] == [0, 1, 2] and seen["reset"] == [0, 1, 2]
    sent = [e.t for e in cluster.world.trace.events if e.kind == "net.request" and e.data["msg"] == "ListOffsetsRequest"]
    fetched = [e.t for e in cluster.world.trace.events if e.kind == "net.response" and e.data["dst"] == "c/group"
               and e.data["msg"] == "OffsetFetchResponse"]
    assert sent == [seen["assigned"] + 500, seen["reassigned"], fetched[-1] + 1 + 100]  # +1: one way


def test_classic_join_is_member_id_required_join_then_sync_with_the_leaders_assignment():
    # rd_kafka_cgrp_handle_JoinGroup (KIP-394 rejoin with the id), rd_kafka_cgrp_assignor_run, SyncGroup
    cluster = make_cluster({"t": 2})
    consumer = Consumer({"group.id": "g", "enable.auto.commit": False}, cluster=cluster, name="c#1")

    def body():
        consumer.subscribe(["t"])
        yield consumer.poll(5.0)
        return consumer.assignment(), consumer.consumer_group_metadata()
    assignment, metadata = run(cluster, body)
    joins = responses(cluster, "c#1/group", "JoinGroupResponse")
    assert [(j["error"], j["generation_id"]) for j in joins] == [("MEMBER_ID_REQUIRED", -1), ("NONE", 1)]
    assert joins[1]["leader"] == joins[1]["member_id"] == joins[0]["member_id"] == "rdkafka-1"
    assert joins[1]["protocol_name"] == "range"
    (sync,) = responses(cluster, "c#1/group", "SyncGroupResponse")
    assert sync["assignment"] == ["t-0", "t-1"]
    assert [(p.topic, p.partition) for p in assignment] == [("t", 0), ("t", 1)]
    assert (metadata.generation_id, metadata.member_id) == (1, "rdkafka-1")


def test_kip848_consumer_reconciles_incrementally_and_carries_the_member_epoch():
    # rd_kafka_cgrp_consumer_*: on_assign gets the added partitions only; consumer_group_metadata has the epoch
    cluster = make_cluster({"t": 2})
    seen = []
    config = {"group.id": "g", "group.protocol": "consumer", "enable.auto.commit": False}
    c1 = Consumer(config, cluster=cluster, name="c1#1")
    c2 = Consumer(config, cluster=cluster, name="c2#1")

    def body():
        c1.subscribe(["t"], on_assign=lambda c, ps: seen.append(("assign", [p.partition for p in ps])),
                     on_revoke=lambda c, ps: seen.append(("revoke", [p.partition for p in ps])))
        yield c1.poll(1.0)
        first = c1.consumer_group_metadata().generation_id
        c2.subscribe(["t"])
        yield cluster.world.env.all_of([c1.consume(1, 12.0), c2.consume(1, 12.0)])
        return first, c1.consumer_group_metadata(), c1.assignment(), c2.assignment()
    first, metadata, mine, theirs = run(cluster, body)
    assert first == 1 and metadata.generation_id == 2 and len(metadata.member_id) == 22
    assert seen == [("assign", [0, 1]), ("revoke", [1])]
    assert [p.partition for p in mine] == [0] and [p.partition for p in theirs] == [1]


@pytest.mark.parametrize("key", ["session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"])
def test_the_consumer_protocol_refuses_the_classic_settings(key):
    # rd_kafka_conf_finalize: the broker decides them under group.protocol=consumer
    from eosim._client.config import ConfigError, validate_config
    value = "range" if key == "partition.assignment.strategy" else 10_000
    with pytest.raises(ConfigError, match="not supported for `group.protocol=consumer`"):
        validate_config("consumer", {"group.id": "g", "group.protocol": "consumer", key: value})
