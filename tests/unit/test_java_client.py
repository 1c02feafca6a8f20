"""The Java-client switch (``eosim.client = "java"``): the same situation under both switches, each
client's outcome side by side. Java sources are the Java client 4.1 (confluentinc/kafka branch 4.1,
clients/src/main/java/org/apache/kafka/clients/...): ProducerConfig, ConsumerConfig, KafkaProducer,
producer/internals/TransactionManager.java (TM), Sender.java; librdkafka's are cited in
sim/_client/config.py, sim/_client/errors.py and sim/_client/producer.py."""

from __future__ import annotations

import pytest
import simpy

from eosim.models.api import as_sent
from eosim.models.errors import Errors
from eosim.models.records import IsolationLevel, TopicPartition as TP
from eosim.models.txn_coordinator import EndTxnRequest, EndTxnResponse
from eosim._checkers import check_trace
from eosim._client.config import INT32_MAX, Client, ConfigError, validate_config
from eosim._client.errors import (
    API_VERSIONS,
    JAVA_DEFAULTS,
    JAVA_REACTIONS,
    JAVA_RETRIABLE,
    Context,
    KafkaError,
    KafkaException,
    Reaction,
    action,
    api_error,
    normalize,
)
from eosim._client.consumer import Consumer
from eosim._client.message import OFFSET_BEGINNING, ConsumerGroupMetadata, TopicPartition
from eosim._client.producer import Producer
from eosim._client.sender import produce_outcome
from eosim._cluster import Cluster
from eosim._topology import cluster_config
from eosim._net import deliver_all
from eosim._world import World

JAVA = {"eosim.client": "java"}
T0 = TP("t", 0)


def refused(kind, config):
    with pytest.raises(ConfigError) as info:
        validate_config(kind, config)
    return info.value


# --- configuration: defaults (reference §7) and validation (§6.1) ----------------------------------


def test_the_switch_defaults_to_librdkafka_and_takes_either_name():
    assert validate_config("producer", {}).eosim_client is Client.LIBRDKAFKA
    assert validate_config("producer", {"eosim.client": "Java"}).eosim_client is Client.JAVA
    assert validate_config("consumer", {"group.id": "g", **JAVA}).eosim_client is Client.JAVA
    assert 'Invalid value "kafka" for configuration property "eosim.client"' in refused(
        "producer", {"eosim.client": "kafka"}).reason


def test_producer_defaults_differ_where_java_differs():
    rd, java = validate_config("producer", {}), validate_config("producer", JAVA)
    # ProducerConfig: enable.idempotence true (KIP-679), max.in.flight 5, delivery.timeout.ms 120000;
    # request.timeout.ms 30000 is Java's client-side wait (socket.timeout.ms here).
    assert (rd.enable_idempotence, java.enable_idempotence) == (False, True)
    assert (rd.max_in_flight_requests_per_connection, java.max_in_flight_requests_per_connection) == (1_000_000, 5)
    assert (rd.message_timeout_ms, java.message_timeout_ms) == (300_000, 120_000)
    assert (rd.socket_timeout_ms, java.socket_timeout_ms) == (60_000, 30_000)
    # the same in both: acks=all, retries=MAX, linger.ms=5 (KIP-1030 in Java 4.0)
    assert (java.acks, java.retries, java.linger_ms) == (rd.acks, rd.retries, rd.linger_ms) == (-1, INT32_MAX, 5.0)


def test_consumer_default_isolation_is_read_uncommitted_in_java():
    rd = validate_config("consumer", {"group.id": "g"})
    java = validate_config("consumer", {"group.id": "g", **JAVA})
    assert rd.isolation_level is IsolationLevel.READ_COMMITTED  # librdkafka CONFIGURATION.md
    assert java.isolation_level is IsolationLevel.READ_UNCOMMITTED  # ConsumerConfig DEFAULT_ISOLATION_LEVEL


def test_a_transactional_producer_keeps_its_timeouts_in_java():
    rd = validate_config("producer", {"transactional.id": "tx", "transaction.timeout.ms": 10_000})
    java = validate_config("producer", {"transactional.id": "tx", "transaction.timeout.ms": 10_000, **JAVA})
    # librdkafka lowers message.timeout.ms and socket.timeout.ms to the transaction timeout; Java does not.
    assert (rd.message_timeout_ms, rd.socket_timeout_ms) == (10_000, 9_900)
    assert (java.message_timeout_ms, java.socket_timeout_ms) == (120_000, 30_000)
    assert validate_config("producer", {"transactional.id": "tx", "delivery.timeout.ms": 200_000,
                                        "transaction.timeout.ms": 10_000, **JAVA}).message_timeout_ms == 200_000
    assert "`message.timeout.ms` must be set <= `transaction.timeout.ms`" in refused(
        "producer", {"transactional.id": "tx", "delivery.timeout.ms": 200_000, "transaction.timeout.ms": 10_000}).reason


def test_acks_or_retries_silently_disable_default_idempotence_in_java():
    # postProcessAndValidateIdempotenceConfigs: idempotence only by default gives way to acks != all or
    # retries = 0; librdkafka has it off by default, so the same config is a plain producer there too.
    for config in ({"acks": 1}, {"retries": 0}):
        assert not validate_config("producer", {**config, **JAVA}).enable_idempotence
        assert not validate_config("producer", config).enable_idempotence


@pytest.mark.parametrize(
    "config, key, java_reason, librdkafka_reason",
    [
        ({"enable.idempotence": True, "acks": 1}, "acks", "Must set acks to all in order to use the idempotent",
         "`acks` must be set to `all` when `enable.idempotence` is true"),
        ({"enable.idempotence": True, "retries": 0}, "retries", "Must set retries to non-zero",
         "`retries` must be set >= 1"),
        ({"enable.idempotence": True, "max.in.flight": 6}, "max.in.flight",
         "max.in.flight.requests.per.connection must be set to at most 5. Current value is 6.",
         "`max.in.flight` must be set <= 5"),
        ({"transactional.id": "tx", "enable.idempotence": False}, "transactional.id",
         "Cannot set a transactional.id without also enabling idempotence.", None),
    ],
)
def test_explicit_idempotence_conflicts_are_refused_by_both(config, key, java_reason, librdkafka_reason):
    err = refused("producer", {**config, **JAVA})
    assert err.key == key and java_reason in err.reason
    if librdkafka_reason is not None:
        assert librdkafka_reason in refused("producer", config).reason


def test_java_refuses_more_in_flight_even_with_default_idempotence():
    # Java 4.x: max.in.flight > 5 is a ConfigException whenever idempotence is on, even only by default
    # and even next to acks=1 (the check comes before idempotence is turned off); librdkafka has no
    # idempotence by default, so it accepts the value.
    for config in ({"max.in.flight": 6}, {"max.in.flight": 6, "acks": 1}):
        assert refused("producer", {**config, **JAVA}).key == "max.in.flight"
        assert validate_config("producer", config).max_in_flight_requests_per_connection == 6
    assert validate_config("producer", {"max.in.flight": 6, "enable.idempotence": False, **JAVA})


def test_a_transactional_id_with_acks_1_is_refused_by_both():
    # Java: acks=1 turns default idempotence off, then transactional.id needs it.
    err = refused("producer", {"transactional.id": "tx", "acks": 1, **JAVA})
    assert err.key == "transactional.id" and "without also enabling idempotence" in err.reason
    assert refused("producer", {"transactional.id": "tx", "acks": 1}).key == "acks"


def test_delivery_timeout_must_cover_linger_and_the_request_timeout_in_java():
    # KafkaProducer.configureDeliveryTimeout: an explicit smaller one is refused, a default one raised.
    err = refused("producer", {"delivery.timeout.ms": 20_000, **JAVA})
    assert err.key == "delivery.timeout.ms" and "linger.ms + request.timeout.ms" in err.reason
    assert refused("producer", {"message.timeout.ms": 0, **JAVA}).key == "message.timeout.ms"  # no "infinite"
    assert validate_config("producer", {"delivery.timeout.ms": 20_000}).message_timeout_ms == 20_000
    raised = validate_config("producer", {"socket.timeout.ms": 200_000, "linger.ms": 10, **JAVA})
    assert raised.message_timeout_ms == 200_010


# --- the reaction tables (sim/_client/errors.py) ---------------------------------------------------

R = Reaction


def test_the_java_table_answers_every_error_in_every_context():
    for context in Context:
        for error in Errors:
            if error is not Errors.NONE:
                assert isinstance(action(context, error, Client.JAVA).reaction, Reaction)
    assert set(JAVA_REACTIONS) == set(Context) == set(JAVA_DEFAULTS)


# (context, error, librdkafka's reaction, Java's reaction); Java's source in the comment above each
DIFFERENCES = [
    # KIP-588: InvalidProducerEpochException from a produce is abortable (and on TV1 the abort bumps)
    (Context.PRODUCE_TRANSACTIONAL, Errors.INVALID_PRODUCER_EPOCH, R.FENCED, R.ABORTABLE_BUMP),
    # TM.canRetry: OUT_OF_ORDER_SEQUENCE_NUMBER is retried (head of line: after an epoch bump)
    (Context.PRODUCE_IDEMPOTENT, Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, R.SEQUENCE, R.SEQUENCE_RETRY),
    (Context.PRODUCE_TRANSACTIONAL, Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, R.SEQUENCE, R.SEQUENCE_RETRY),
    # TM.canRetry: an idempotent producer always retries UNKNOWN_PRODUCER_ID, bumping its epoch
    (Context.PRODUCE_IDEMPOTENT, Errors.UNKNOWN_PRODUCER_ID, R.UNKNOWN_PID, R.BUMP_RETRY),
    # RetriableException: NetworkException is retried by Java's Sender (librdkafka: permanent)
    (Context.PRODUCE, Errors.NETWORK_EXCEPTION, R.PERMANENT, R.RETRY),
    # KAFKA-18019 (4.0): InvalidPidMappingException is fatal; librdkafka aborts and bumps
    (Context.ADD_PARTITIONS, Errors.INVALID_PRODUCER_ID_MAPPING, R.ABORTABLE_BUMP, R.FATAL),
    (Context.END_TXN, Errors.INVALID_PRODUCER_ID_MAPPING, R.ABORTABLE_BUMP, R.FATAL),
    # TRANSACTION_ABORTABLE (KIP-890): named by Java's handlers; librdkafka's default branch
    (Context.ADD_OFFSETS, Errors.TRANSACTION_ABORTABLE, R.ABORTABLE, R.ABORTABLE),
    # Java's handlers end in fatalError("Unexpected error ..."), librdkafka's default is abortable or a retry
    (Context.END_TXN, Errors.UNKNOWN_SERVER_ERROR, R.ABORTABLE, R.FATAL),
    (Context.INIT_PRODUCER_ID, Errors.UNKNOWN_SERVER_ERROR, R.RETRY, R.FATAL),
    # the same in both: fencing from the coordinator is fatal, INVALID_TXN_STATE from EndTxn is fatal
    (Context.END_TXN, Errors.INVALID_PRODUCER_EPOCH, R.FENCED, R.FENCED),
    (Context.END_TXN, Errors.PRODUCER_FENCED, R.FENCED, R.FENCED),
    (Context.ADD_PARTITIONS, Errors.INVALID_TXN_STATE, R.FATAL, R.FATAL),
    (Context.ADD_PARTITIONS, Errors.CONCURRENT_TRANSACTIONS, R.RETRY, R.RETRY),
]


@pytest.mark.parametrize("context, error, librdkafka, java", DIFFERENCES,
                         ids=[f"{c.value}-{e.name}" for c, e, _, _ in DIFFERENCES])
def test_each_client_reacts_by_its_own_table(context, error, librdkafka, java):
    assert action(context, error).reaction is librdkafka
    assert action(context, error, Client.LIBRDKAFKA).reaction is librdkafka
    assert action(context, error, Client.JAVA).reaction is java


def test_java_retries_exactly_its_retriable_exceptions_on_produce():
    for error in Errors:
        if error is Errors.NONE:
            continue
        reaction = action(Context.PRODUCE, error, Client.JAVA).reaction
        assert (reaction is R.RETRY) == (error in JAVA_RETRIABLE), error


def test_fencing_surfaces_as_each_clients_own_code():
    # librdkafka: rd_kafka_txn_normalize_err → _FENCED; Java: ProducerFencedException (PRODUCER_FENCED)
    assert normalize(int(Errors.INVALID_PRODUCER_EPOCH)) == KafkaError._FENCED
    assert normalize(int(Errors.INVALID_PRODUCER_EPOCH), Client.JAVA) == Errors.PRODUCER_FENCED
    fenced = api_error(int(Errors.PRODUCER_FENCED), R.FENCED, client=Client.JAVA)
    assert fenced.name() == "PRODUCER_FENCED" and fenced.fatal() and not fenced.txn_requires_abort()
    # Java speaks request versions that have PRODUCER_FENCED; librdkafka's EndTxn v1 gets it down-converted
    for client, code in ((Client.LIBRDKAFKA, Errors.INVALID_PRODUCER_EPOCH), (Client.JAVA, Errors.PRODUCER_FENCED)):
        request = EndTxnRequest(transactional_id="t", producer_id=1, producer_epoch=0, committed=True,
                                api_version=API_VERSIONS[client]["EndTxn"])
        assert as_sent(request, EndTxnResponse(error=Errors.PRODUCER_FENCED)).error is code


# --- produce_outcome: the decision for one failed batch ---------------------------------------------


def outcome(error, context, client, *, first_seq=0, next_ack=0, retries=0):
    return produce_outcome(int(error), context, pid_matches=True, first_seq=first_seq, next_ack_seq=next_ack,
                           next_err_seq=next_ack, first_retries=retries, client=client)


def test_out_of_order_at_the_head_of_the_line_idempotent():
    # librdkafka: "sequence desynchronization with broker", fatal (rd_kafka_handle_idempotent_Produce_error)
    rd = outcome(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, Context.PRODUCE_IDEMPOTENT, Client.LIBRDKAFKA)
    assert (rd.verdict, rd.fatal, rd.bump) == ("fail", int(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER), False)
    # Java: TM.canRetry → requestIdempotentEpochBumpForPartition, then the batch is retried (counted)
    java = outcome(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, Context.PRODUCE_IDEMPOTENT, Client.JAVA)
    assert (java.verdict, java.fatal, java.bump, java.incr_retry) == ("retry", 0, True, True)


def test_out_of_order_at_the_head_of_the_line_transactional():
    rd = outcome(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, Context.PRODUCE_TRANSACTIONAL, Client.LIBRDKAFKA)
    assert (rd.verdict, rd.fatal) == ("fail", int(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER))
    # Java: canRetry is false for a transactional producer; the failed batch makes the transaction
    # abortable (TM.handleFailedBatch → maybeTransitionToErrorState), the abort bumps the epoch on TV1
    java = outcome(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, Context.PRODUCE_TRANSACTIONAL, Client.JAVA)
    assert (java.verdict, java.fatal, java.bump) == ("fail", 0, True)


def test_out_of_order_behind_an_earlier_failure():
    # librdkafka: drain, bump and retry without counting a retry; Java: just retry behind it (counted)
    rd = outcome(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, Context.PRODUCE_IDEMPOTENT, Client.LIBRDKAFKA, first_seq=2)
    assert (rd.verdict, rd.bump, rd.incr_retry) == ("retry", True, False)
    java = outcome(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, Context.PRODUCE_IDEMPOTENT, Client.JAVA, first_seq=2)
    assert (java.verdict, java.bump, java.incr_retry, java.drain_toppar) == ("retry", False, True, True)


def test_unknown_producer_id_on_a_retried_batch():
    # librdkafka: only a first attempt with nothing unacked before it may bump; a retried one is fatal
    rd = outcome(Errors.UNKNOWN_PRODUCER_ID, Context.PRODUCE_IDEMPOTENT, Client.LIBRDKAFKA, retries=1)
    assert (rd.verdict, rd.fatal) == ("fail", int(Errors.UNKNOWN_PRODUCER_ID))
    java = outcome(Errors.UNKNOWN_PRODUCER_ID, Context.PRODUCE_IDEMPOTENT, Client.JAVA, retries=1)
    assert (java.verdict, java.bump, java.fatal) == ("retry", True, 0)


def test_a_fenced_transactional_produce_is_fatal_in_librdkafka_abortable_in_java():
    rd = outcome(Errors.INVALID_PRODUCER_EPOCH, Context.PRODUCE_TRANSACTIONAL, Client.LIBRDKAFKA)
    assert (rd.verdict, rd.fatal, rd.abortable) == ("fail", KafkaError._FENCED, False)
    java = outcome(Errors.INVALID_PRODUCER_EPOCH, Context.PRODUCE_TRANSACTIONAL, Client.JAVA)
    assert (java.verdict, java.fatal, java.bump) == ("fail", 0, True)  # abortable, with the KIP-360 bump


# --- end to end on the simulated cluster --------------------------------------------------------------

CLIENTS = [Client.LIBRDKAFKA, Client.JAVA]


def make_cluster(**overrides):
    return Cluster(World(7), cluster_config(overrides), {"t": 1})


def run(cluster, body):
    cluster.world.env.run(until=cluster.world.env.process(body()))


def data_records(cluster):
    log = cluster.broker_node.replicas.logs[T0]
    return [(b.base_offset + i, r.value) for b in log.batches if not b.is_control for i, r in enumerate(b.records)]


def attempt(outcomes, name, call):
    """Run one API call (a SimPy process or a plain call) and record its outcome."""
    try:
        result = call()
        if isinstance(result, simpy.Process):
            yield result
        outcomes.append((name, None))
    except KafkaException as exc:
        error = exc.args[0]
        outcomes.append((name, error.name(), "fatal" if error.fatal() else
                         "abortable" if error.txn_requires_abort() else "retriable" if error.retriable() else ""))


def fenced_zombie(client):
    """A zombie writes again after its successor fenced it, then flushes, commits and aborts."""
    cluster = make_cluster()
    config = {"transactional.id": "tx", "eosim.client": client.value}
    zombie = Producer(config, cluster=cluster, name="zombie")
    successor = Producer(config, cluster=cluster, name="successor")
    outcomes = []

    def body():
        yield zombie.init_transactions()
        zombie.begin_transaction()
        zombie.produce("t", value="z1", key="k")
        yield zombie.flush()
        yield successor.init_transactions()  # bumps the epoch: the zombie is fenced
        zombie.produce("t", value="z2", key="k", on_delivery=lambda err, msg: outcomes.append(("delivery", err.name())))
        yield from attempt(outcomes, "flush", zombie.flush)
        yield from attempt(outcomes, "commit", zombie.commit_transaction)
        yield from attempt(outcomes, "abort", zombie.abort_transaction)
    run(cluster, body)
    return cluster, outcomes


def test_a_fenced_transactional_produce():
    # librdkafka: the Produce answer INVALID_PRODUCER_EPOCH is the fatal _FENCED at once, raised by the
    # flush once it served the delivery report queued behind it (measured on Kafka 4.1.2 with
    # confluent-kafka 2.16.1: zombie-produce-fenced), and every call after it fails the same.
    _, rd = fenced_zombie(Client.LIBRDKAFKA)
    assert rd == [("delivery", "INVALID_PRODUCER_EPOCH"), ("flush", "_FENCED", "fatal"), ("commit", "_FENCED", "fatal"),
                  ("abort", "_FENCED", "fatal")]
    # Java (KIP-588): the send fails with InvalidProducerEpochException and the transaction becomes
    # abortable; commit raises it (TM.maybeFailWithError), abort is allowed and sends EndTxn, whose
    # answer PRODUCER_FENCED is the fatal ProducerFencedException (EndTxnHandler).
    cluster, java = fenced_zombie(Client.JAVA)
    assert java == [("delivery", "INVALID_PRODUCER_EPOCH"), ("flush", None),
                    ("commit", "INVALID_PRODUCER_EPOCH", "abortable"), ("abort", "PRODUCER_FENCED", "fatal")]
    ends = [e.data["fields"]["error"] for e in cluster.world.trace.events
            if e.kind == "net.response" and e.data["msg"] == "EndTxnResponse"]
    assert ends == ["PRODUCER_FENCED"]
    assert data_records(cluster) == [(0, "z1")]  # z2 was refused either way


def shrunken_window(client):
    """Two one-record batches appended, both answers lost, then the broker restarts: its snapshot keeps only
    the last batch, so the retry of sequence 0 gets OUT_OF_ORDER_SEQUENCE_NUMBER at the head of the line."""
    cluster = make_cluster()
    cluster.network.route = lambda packet: None if type(packet.payload).__name__ == "ProduceResponse" else 0
    producer = Producer({"enable.idempotence": True, "socket.timeout.ms": 1000, "batch.num.messages": 1,
                         "eosim.client": client.value}, cluster=cluster, name="p")
    outcomes = []
    reports = []

    def body():
        yield cluster.world.env.timeout(600)
        for value in ("v0", "v1"):
            producer.produce("t", value=value, key="k",
                             on_delivery=lambda err, msg: reports.append((err and err.name(), msg.offset())))
        yield cluster.world.env.timeout(20)
        cluster.broker_node.crash()
        cluster.network.route = deliver_all
        yield cluster.world.env.timeout(180)
        cluster.broker_node.restart()
        yield from attempt(outcomes, "flush", lambda: producer.flush(10))
        yield from attempt(outcomes, "flush", lambda: producer.flush(10))
    run(cluster, body)
    return cluster, outcomes, reports


def test_out_of_order_at_the_head_of_the_line_end_to_end():
    cluster, rd, reports = shrunken_window(Client.LIBRDKAFKA)
    # librdkafka: fatal, nothing written twice, v0 reported failed although it is at offset 0
    assert rd == [("flush", "OUT_OF_ORDER_SEQUENCE_NUMBER", "fatal"), ("flush", None)]
    assert reports == [("OUT_OF_ORDER_SEQUENCE_NUMBER", -1001), (None, 1)]
    assert data_records(cluster) == [(0, "v0"), (1, "v1")]
    # Java: bump the epoch and resend from sequence 0, one batch at a time (RecordAccumulator): both
    # records land again under epoch 1 - duplicates, where librdkafka gave a spurious failure
    cluster, java, reports = shrunken_window(Client.JAVA)
    assert java == [("flush", None), ("flush", None)]
    assert reports == [(None, 2), (None, 3)]
    assert data_records(cluster) == [(0, "v0"), (1, "v1"), (2, "v0"), (3, "v1")]
    assert [e.data["producer_epoch"] for e in cluster.world.trace.events if e.kind == "client.pid"] == [0, 1]


def timed_out_commit(client):
    cluster = make_cluster(**{"transaction.version": 1})
    producer = Producer({"transactional.id": "tx", "transaction.timeout.ms": 1000, "eosim.client": client.value},
                        cluster=cluster, name="slow")
    outcomes = []

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        producer.produce("t", value="s1", key="k")
        yield producer.flush()
        yield cluster.world.env.timeout(3000)  # the coordinator aborts it, bumping the epoch (TV1)
        yield from attempt(outcomes, "commit", producer.commit_transaction)
    run(cluster, body)
    return outcomes


def test_a_transaction_timed_out_on_a_tv1_cluster_reports_fencing_in_both():
    # EndTxn with the old epoch: librdkafka's v1 gets INVALID_PRODUCER_EPOCH (_FENCED), Java's v4 gets
    # PRODUCER_FENCED (ProducerFencedException): fatal in both, a timed-out producer looks like a zombie
    assert timed_out_commit(Client.LIBRDKAFKA) == [("commit", "_FENCED", "fatal")]
    assert timed_out_commit(Client.JAVA) == [("commit", "PRODUCER_FENCED", "fatal")]


def test_the_default_consumer_sees_an_open_transaction_only_in_java():
    cluster = make_cluster()
    producer = Producer({"transactional.id": "tx"}, cluster=cluster, name="p")
    consumers = {client: Consumer({"group.id": f"g-{client.value}", "eosim.client": client.value},
                                  cluster=cluster, name=f"c-{client.value}") for client in CLIENTS}
    seen = {}

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        producer.produce("t", value="open", key="k")
        yield producer.flush()
        for client, consumer in consumers.items():
            consumer.assign([TopicPartition("t", 0, OFFSET_BEGINNING)])
            seen[client] = [m.value().decode() for m in (yield consumer.consume(10, 2))]
    run(cluster, body)
    # librdkafka reads up to the LSO (read_committed), Java up to the high watermark (read_uncommitted)
    assert seen == {Client.LIBRDKAFKA: [], Client.JAVA: ["open"]}


# --- transaction version 2 (KIP-890 part 2): what the Java client speaks against a TV2 broker --------------


def requests_of(cluster, *names):
    return [(e.node, e.data["msg"], e.data["fields"].get("api_version"))
            for e in cluster.world.trace.events if e.kind == "net.request" and e.data["msg"] in names]


def epochs(cluster, node=None):
    return [e.data["producer_epoch"] for e in cluster.world.trace.events
            if e.kind == "client.pid" and (node is None or e.node == node)]


def three_transactions(tv, client=Client.JAVA):
    """commit, abort, commit; the last one also commits consumed offsets."""
    cluster = make_cluster(**{"transaction.version": tv})
    producer = Producer({"transactional.id": "tx", "eosim.client": client.value}, cluster=cluster, name="p")
    group = Consumer({"group.id": "g"}, cluster=cluster, name="c")
    committed = []

    def body():
        yield producer.init_transactions()
        for i, commit in enumerate((True, False, True)):
            producer.begin_transaction()
            producer.produce("t", value=f"v{i}", key="k")
            yield producer.flush()
            if i == 2:
                yield producer.send_offsets_to_transaction([TopicPartition("t", 0, 7)],
                                                           ConsumerGroupMetadata(group_id="g"))
            yield producer.commit_transaction() if commit else producer.abort_transaction()
        committed.extend((yield group.committed([TopicPartition("t", 0)], 5)))
    run(cluster, body)
    return cluster, [tp.offset for tp in committed]


def test_the_java_client_negotiates_the_transaction_version_with_the_broker():
    # TM.maybeUpdateTransactionV2Enabled after initTransactions: TV2 when the broker finalized it
    cluster, _ = three_transactions(2)
    sent = requests_of(cluster, "ProduceRequest", "EndTxnRequest", "AddPartitionsToTxnRequest",
                       "AddOffsetsToTxnRequest", "TxnOffsetCommitRequest")
    assert {(msg, v) for node, msg, v in sent if node == "p" or node.startswith("p/")} == {
        ("ProduceRequest", 12), ("EndTxnRequest", 5), ("TxnOffsetCommitRequest", 5)}
    # the partitions (out and the offsets partition) join through the leader's AddPartitionsToTxn v5
    assert {(node, v) for node, msg, v in sent if msg == "AddPartitionsToTxnRequest"} == {("broker-1/verification", 5)}
    cluster, _ = three_transactions(1)
    sent = requests_of(cluster, "ProduceRequest", "EndTxnRequest", "AddPartitionsToTxnRequest",
                       "AddOffsetsToTxnRequest", "TxnOffsetCommitRequest")
    assert {(msg, v) for node, msg, v in sent if node == "p" or node.startswith("p/")} == {
        ("ProduceRequest", 11), ("EndTxnRequest", 4), ("AddPartitionsToTxnRequest", 3), ("AddOffsetsToTxnRequest", 4),
        ("TxnOffsetCommitRequest", 4)}
    # librdkafka speaks TV1 whatever the broker finalized
    cluster, _ = three_transactions(2, Client.LIBRDKAFKA)
    assert {msg for _, msg, _ in requests_of(cluster, "EndTxnRequest", "AddPartitionsToTxnRequest")
            if True} == {"EndTxnRequest", "AddPartitionsToTxnRequest"}
    assert {v for _, msg, v in requests_of(cluster, "EndTxnRequest")} == {1}


def test_tv2_bumps_the_epoch_with_every_transaction_and_restarts_sequences():
    cluster, committed = three_transactions(2)
    # EndTxnHandler: the (pid, epoch) of every EndTxn v5 answer, commit or abort
    assert epochs(cluster, "p") == [0, 1, 2, 3]
    appends = [(e.data["producer_epoch"], e.data["base_sequence"]) for e in cluster.world.trace.events
               if e.kind == "log.append" and str(e.data["tp"]) == "t-0"]
    assert appends == [(0, 0), (1, 0), (2, 0)]
    assert committed == [7]  # the offsets joined the transaction through TxnOffsetCommit v5
    assert data_records(cluster) == [(0, "v0"), (2, "v1"), (4, "v2")]
    # TV1: one epoch for the session, sequences go on
    cluster, committed = three_transactions(1)
    assert epochs(cluster, "p") == [0]
    assert [(e.data["producer_epoch"], e.data["base_sequence"]) for e in cluster.world.trace.events
            if e.kind == "log.append" and str(e.data["tp"]) == "t-0"] == [(0, 0), (0, 1), (0, 2)]
    assert committed == [7]


def timed_out_then_abort(tv):
    cluster = make_cluster(**{"transaction.version": tv})
    producer = Producer({"transactional.id": "tx", "transaction.timeout.ms": 1000, "eosim.client": "java"},
                        cluster=cluster, name="slow")
    outcomes = []

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        producer.produce("t", value="s1", key="k")
        yield producer.flush()
        yield cluster.world.env.timeout(3000)  # the coordinator fences and aborts it
        producer.produce("t", value="s2", key="k")
        yield from attempt(outcomes, "flush", producer.flush)
        yield from attempt(outcomes, "commit", producer.commit_transaction)
        yield from attempt(outcomes, "abort", producer.abort_transaction)
        if not producer.txn.state.name == "FATAL_ERROR":
            producer.begin_transaction()
            producer.produce("t", value="s3", key="k")
            yield from attempt(outcomes, "commit", producer.commit_transaction)
    run(cluster, body)
    return cluster, outcomes


def test_a_timed_out_tv2_producer_aborts_and_carries_on():
    # KIP-890: the late write is an abortable INVALID_PRODUCER_EPOCH; the abort's EndTxn v5 one epoch behind
    # is a retry of the timeout's abort (retryOnEpochBump) and answers the current epoch, which the client
    # adopts: no InitProducerId, no fencing (needToTriggerEpochBumpFromClient is false on TV2)
    cluster, outcomes = timed_out_then_abort(2)
    assert outcomes == [("flush", None), ("commit", "INVALID_PRODUCER_EPOCH", "abortable"), ("abort", None),
                        ("commit", None)]
    assert epochs(cluster) == [0, 1, 2]
    assert len(requests_of(cluster, "InitProducerIdRequest")) == 1
    assert data_records(cluster) == [(0, "s1"), (2, "s3")]
    # TV1: the abort's EndTxn v4 with the old epoch is fenced
    _, outcomes = timed_out_then_abort(1)
    assert outcomes == [("flush", None), ("commit", "INVALID_PRODUCER_EPOCH", "abortable"),
                        ("abort", "PRODUCER_FENCED", "fatal")]


def fence_during_completion(bugs):
    """KAFKA-18464's steps: abort with the epoch the coordinator returned while its commit completes."""
    cluster = make_cluster(**{"eosim.reintroduce": bugs})
    producer = Producer({"transactional.id": "tx", "eosim.client": "java"}, cluster=cluster, name="p")
    outcomes = []

    def body():
        yield producer.init_transactions()
        producer.begin_transaction()
        producer.produce("t", value="a1", key="k")
        cluster.network.route = lambda packet: 300 if type(packet.payload).__name__ == "WriteTxnMarkersResponse" else 0
        yield from attempt(outcomes, "commit", producer.commit_transaction)
        producer.begin_transaction()
        producer.produce("t", value="b1", key="k")
        yield cluster.world.env.timeout(20)
        yield from attempt(outcomes, "abort", producer.abort_transaction)
    run(cluster, body)
    ends = [e.data["fields"]["error"] for e in cluster.world.trace.events
            if e.kind == "net.response" and e.data["msg"] == "EndTxnResponse"]
    return outcomes, ends, epochs(cluster)


def test_kafka_18464_a_tv2_abort_while_the_commit_completes():
    # fixed (4.0.0): pending first, CONCURRENT_TRANSACTIONS is retried, then an empty abort bumps to 2
    assert fence_during_completion(()) == ([("commit", None), ("abort", None)],
                                           ["NONE", "CONCURRENT_TRANSACTIONS", "CONCURRENT_TRANSACTIONS", "NONE"],
                                           [0, 1, 2])
    # the bug: the epoch check first, the producer is fenced with the epoch the coordinator gave it
    assert fence_during_completion(("KAFKA-18464",)) == ([("commit", None), ("abort", "PRODUCER_FENCED", "fatal")],
                                                         ["NONE", "PRODUCER_FENCED"], [0, 1])


def test_kafka_19367_a_tv2_fence_abort_bumps_once():
    for bugs, successor in (((), [2, 3]), (("KAFKA-19367",), [3, 4])):
        cluster = make_cluster(**{"eosim.reintroduce": bugs})
        config = {"transactional.id": "tx", "eosim.client": "java"}
        zombie = Producer(config, cluster=cluster, name="zombie")
        new = Producer(config, cluster=cluster, name="new")

        def body():
            yield zombie.init_transactions()
            zombie.begin_transaction()
            zombie.produce("t", value="z1", key="k")
            yield zombie.flush()
            yield new.init_transactions()
            new.begin_transaction()
            new.produce("t", value="n1", key="k")
            yield new.commit_transaction()
        run(cluster, body)
        assert epochs(cluster, "new") == successor, bugs


def test_kafka_18660_an_exhausted_epoch_moves_to_the_producer_id_endtxn_returns():
    """EndTxn v5 at epoch 32766 completes the transaction on a new producer id at epoch 0, which the client
    adopts (EndTxnHandler: "If the epoch overflows, a new producerId is returned with epoch set to 0"); before
    the fix it answered the old (pid, 32767) and the next transaction was refused. The epoch is set near the
    end by hand (32766 transactions are too many for a test): in the coordinator and in the client alike."""
    for bugs, expected in (((), ["ok", "ok"]), (("KAFKA-18660",), ["ok", "INVALID_PRODUCER_ID_MAPPING"])):
        cluster = make_cluster(**{"eosim.reintroduce": bugs})
        producer = Producer({"transactional.id": "tx", "eosim.client": "java"}, cluster=cluster, name="p")
        outcomes = []

        def body():
            yield producer.init_transactions()
            cluster.broker_node.txn.tc._txns["tx"].producer_epoch = 32766
            producer.idemp.pid = (0, 32766)
            for value in ("a", "b"):
                producer.begin_transaction()
                producer.produce("t", value=value, key="k")
                try:
                    yield producer.commit_transaction()
                    outcomes.append("ok")
                except KafkaException as exc:
                    outcomes.append(exc.args[0].name())
                    return
        run(cluster, body)
        assert outcomes == expected, bugs
        pids = [(e.data["producer_id"], e.data["producer_epoch"]) for e in cluster.world.trace.events
                if e.kind == "client.pid"]
        assert pids[1] == ((1, 0) if not bugs else (0, 32767)), bugs
        # The checkers name the symptom: refused the (pid, epoch) the coordinator handed out itself.
        spurious = [a for a in check_trace(cluster.world.trace.events).anomalies if a.name == "spurious-fencing"]
        assert len(spurious) == len(bugs), bugs


def test_a_fatal_produce_error_makes_the_java_producer_fatal():
    # TM.maybeTransitionToErrorState: InvalidPidMappingException (4.0, KAFKA-18019) and ProducerFencedException
    # from a batch are fatal, whatever request they came from
    for error in (Errors.INVALID_PRODUCER_ID_MAPPING, Errors.PRODUCER_FENCED):
        java = outcome(error, Context.PRODUCE_TRANSACTIONAL, Client.JAVA)
        assert (java.verdict, java.fatal, java.abortable) == ("fail", int(normalize(int(error), Client.JAVA)), False)
