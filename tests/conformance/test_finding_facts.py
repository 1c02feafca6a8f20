"""The broker rules behind the simulator-only findings (experiments/findings/*.toml, sim/_findings.py), pinned on
a real Kafka 4.1.2 broker with raw requests (kafka-python's protocol layer, so the request versions are ours, not
a client's), each beside the model's answers to the same requests: model == Kafka == the expected value.

The findings' client parts (librdkafka's implicit ack, the Java client's epoch bump, librdkafka's purge) stay
simulator-only; what is pinned here is what the broker answers. Sources: Apache Kafka 4.1.2
(confluentinc/kafka 4d1cc32dcb6a, the Apache release commit).
"""

from __future__ import annotations

import importlib.util
import os
import time
import uuid
from pathlib import Path

import pytest
from kafka import TopicPartition as KPTopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.net.compat import KafkaNetClient
from kafka.protocol.metadata import FindCoordinatorRequest
from kafka.protocol.producer import AddPartitionsToTxnRequest, EndTxnRequest, InitProducerIdRequest, ProduceRequest
from kafka.record.memory_records import MemoryRecordsBuilder

from eosim._realkafka.broker import KafkaBroker, ToolMissing
from eosim.models.errors import Errors
from eosim.models.records import MAX_EPOCH, ControlType

TIMEOUT = 30.0
# Coordinator answers that mean "ask again": the __transaction_state partition is being created or loaded.
_NOT_YET = {Errors.COORDINATOR_LOAD_IN_PROGRESS, Errors.COORDINATOR_NOT_AVAILABLE, Errors.NOT_COORDINATOR}


def _load_unit_helpers(name: str):
    # The unit tests' drivers of the model, the one place they are defined.
    path = Path(__file__).resolve().parents[1] / "unit" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_finding_facts_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ps = _load_unit_helpers("test_producer_state")  # PartitionLog: make_log, batch, send, marker
tc = _load_unit_helpers("test_txn_coordinator")  # TransactionCoordinator: make, init, begin, prepare, complete


# --- the real side --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kp_admin(kafka_broker):
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    yield admin
    admin.close()


class Raw:
    """kafka-python's protocol-level client on the single broker: one request, its answer."""

    def __init__(self, bootstrap: str):
        self.client = KafkaNetClient(bootstrap_servers=bootstrap)
        self.client.check_version()  # bootstraps the client's metadata
        (broker,) = self.client._manager.cluster.brokers()
        self.node = broker.node_id
        self.client.await_ready(self.node, timeout_ms=int(TIMEOUT * 1000))

    def call(self, request):
        return self.client.send_and_receive(self.node, request, timeout_ms=int(TIMEOUT * 1000))

    def until_ready(self, send, error_of):
        """``send()`` again while the coordinator is not ready; its last answer."""
        deadline = time.monotonic() + TIMEOUT
        while Errors(error_of(answer := send())) in _NOT_YET:
            assert time.monotonic() < deadline, answer
            time.sleep(0.05)
        return answer

    def init_producer_id(self, transactional_id: str | None = None, timeout_ms: int = 60_000) -> tuple[int, int]:
        """InitProducerId v4 (librdkafka's); a transactional id first finds its coordinator, which creates
        __transaction_state on first use (InitProducerId alone answers NOT_COORDINATOR until then)."""
        if transactional_id is not None:
            find = FindCoordinatorRequest(key_type=1, coordinator_keys=[transactional_id], min_version=4, max_version=4)
            answer = self.until_ready(lambda: self.call(find), lambda r: r.coordinators[0].error_code)
            coordinator = answer.coordinators[0]
            assert (Errors(coordinator.error_code), coordinator.node_id) == (Errors.NONE, self.node)
        request = InitProducerIdRequest(transactional_id=transactional_id, transaction_timeout_ms=timeout_ms,
                                        producer_id=-1, producer_epoch=-1, min_version=4, max_version=4)
        answer = self.until_ready(lambda: self.call(request), lambda r: r.error_code)
        assert Errors(answer.error_code) is Errors.NONE, answer
        return answer.producer_id, answer.producer_epoch

    def init_error(self, transactional_id: str, timeout_ms: int = 60_000) -> str:
        """One InitProducerId v4 for a transactional id whose coordinator is known: its error name."""
        request = InitProducerIdRequest(transactional_id=transactional_id, transaction_timeout_ms=timeout_ms,
                                        producer_id=-1, producer_epoch=-1, min_version=4, max_version=4)
        return Errors(self.call(request).error_code).name

    def produce(self, topic: str, pid: int, epoch: int, seq: int, value: str, *, transactional_id: str | None = None,
                version: int = 10) -> tuple[str, int | None]:
        """One acks=all Produce of a one-record v2 batch to partition 0: (error name, base offset or None).
        v10 is librdkafka's (pre-TV2 rules); v12 is a TV2 producer's (the leader adds the partition)."""
        builder = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20,
                                       transactional=transactional_id is not None, producer_id=pid,
                                       producer_epoch=epoch, base_sequence=seq)
        builder.append(timestamp=None, key=None, value=value.encode())
        builder.close()
        data = ProduceRequest.TopicProduceData
        request = ProduceRequest(
            transactional_id=transactional_id, acks=-1, timeout_ms=int(TIMEOUT * 1000),
            min_version=version, max_version=version,
            topic_data=[data(name=topic,
                             partition_data=[data.PartitionProduceData(index=0, records=builder.buffer())])])
        answer = self.call(request).responses[0].partition_responses[0]
        error = Errors(answer.error_code)
        return error.name, answer.base_offset if error is Errors.NONE else None

    def add_partition(self, transactional_id: str, pid: int, epoch: int, topic: str) -> str:
        """AddPartitionsToTxn v3 (the last client version; librdkafka sends v0): pre-TV2 rules."""
        topics = AddPartitionsToTxnRequest.AddPartitionsToTxnTopic
        request = AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=transactional_id, v3_and_below_producer_id=pid,
            v3_and_below_producer_epoch=epoch, v3_and_below_topics=[topics(name=topic, partitions=[0])],
            min_version=3, max_version=3)
        (result,) = self.call(request).results_by_topic_v3_and_below[0].results_by_partition
        return Errors(result.partition_error_code).name

    def end_txn(self, transactional_id: str, pid: int, epoch: int, *, commit: bool, version: int) -> tuple:
        """EndTxn: v1 is librdkafka's (TV1 rules), v5 a TV2 producer's (the coordinator bumps the epoch and
        answers it). (error name, producer id, epoch); before v5 the answer has no producer id or epoch."""
        request = EndTxnRequest(transactional_id=transactional_id, producer_id=pid, producer_epoch=epoch,
                                committed=commit, min_version=version, max_version=version)
        answer = self.call(request)
        if version < 5:
            return (Errors(answer.error_code).name,)
        return Errors(answer.error_code).name, answer.producer_id, answer.producer_epoch

    def close(self):
        self.client.close()


@pytest.fixture(scope="module")
def raw(kafka_broker):
    client = Raw(kafka_broker.bootstrap)
    yield client
    client.close()


def producer_state(admin, topic: str) -> tuple[int, int, int, int]:
    """DescribeProducers of partition 0, its one producer: (id, epoch, last sequence, open txn start or -1)."""
    tp = KPTopicPartition(topic, 0)
    (state,) = admin.describe_producers([tp])[tp].active_producers
    return state.producer_id, state.producer_epoch, state.last_sequence, state.current_transaction_start_offset


def transaction_state(admin, transactional_id: str) -> tuple[str, int, int]:
    """DescribeTransactions: (state, producer id, epoch)."""
    desc = admin.describe_transactions([transactional_id])[transactional_id]
    return desc.state.value, desc.producer_id, desc.producer_epoch


def wait_transaction_state(admin, transactional_id: str, state: str) -> tuple[str, int, int]:
    deadline = time.monotonic() + TIMEOUT
    while (got := transaction_state(admin, transactional_id))[0] != state:
        assert time.monotonic() < deadline, f"{transactional_id} stuck at {got}, expected {state}"
        time.sleep(0.05)
    return got


def kafka_state(state) -> str:
    """The model's TransactionState as DescribeTransactions names it: COMPLETE_ABORT -> CompleteAbort."""
    return "".join(word.capitalize() for word in state.name.split("_"))


def model_answer(result) -> tuple[str, int | None]:
    return result.error.name, result.base_offset if result.error is Errors.NONE else None


# --- implicit-ack-of-a-lost-first-batch, idempotent-epoch-bump-rewrites-a-first-batch -------------------------

# (base sequence, value) -> (error, offset): the producer id's first batch at sequence 1, the lost sequence 0 after
# it, a retry of sequence 1, the next sequence.
FIRST_BATCH_AT_1 = [((1, "p-1"), ("NONE", 0)),
                    ((0, "p-0"), ("OUT_OF_ORDER_SEQUENCE_NUMBER", None)),
                    ((1, "p-1"), ("NONE", 0)),
                    ((2, "p-2"), ("NONE", 1))]


def test_a_partition_without_state_for_a_producer_id_appends_its_first_batch_at_any_sequence(raw, kp_admin,
                                                                                              new_topic):
    """ProducerAppendInfo.checkSequence (4.1.2 lines 112-150): a batch whose epoch differs from the entry's is
    refused for a first sequence other than 0 only when the entry has an epoch; a partition with no state for the
    producer id has NO_PRODUCER_EPOCH, so sequence 1 is appended at offset 0 (lines 125-132). The entry then has
    epoch 0 and last sequence 1: sequence 0 is out of order (lines 133-149), and a retry of sequence 1 is a
    duplicate (ProducerStateEntry.findDuplicateBatch: NONE at the original offset, nothing appended).
    The model: tests/unit/test_producer_state.py::test_first_batch_at_sequence_1_then_0_is_out_of_order_kip_360."""
    topic = new_topic()
    pid, epoch = raw.init_producer_id()
    assert epoch == 0
    log = ps.make_log()
    model, kafka, states = [], [], []
    for (seq, value), _ in FIRST_BATCH_AT_1:
        model.append(model_answer(ps.send(log, ps.batch(pid, epoch, seq, tag=value))))
        kafka.append(raw.produce(topic, pid, epoch, seq, value))
        entry = log.producer_state_manager.last_entry(pid)
        states.append(((pid, entry.producer_epoch, entry.last_seq), producer_state(kp_admin, topic)[:3]))
    assert model == kafka == [answer for _, answer in FIRST_BATCH_AT_1]
    # DescribeProducers after each request: the model's entry and Kafka's agree, last sequence 1, 1, 1, 2.
    assert [m for m, _ in states] == [k for _, k in states] == [(pid, 0, 1), (pid, 0, 1), (pid, 0, 1), (pid, 0, 2)]


# --- librdkafka-abort-purge-sequence-reuse ---------------------------------------------------------------------


def test_a_tv1_abort_keeps_the_sequence_cache_so_a_reused_sequence_is_a_duplicate_of_the_aborted_batch(
        raw, kp_admin, new_topic):
    """A pre-TV2 transaction (AddPartitionsToTxn v3, Produce v10, EndTxn v1, as librdkafka speaks) keeps its
    epoch across the abort: the ABORT marker carries the same epoch, so ProducerStateEntry.maybeUpdateProducerEpoch
    (4.1.2 lines 97-105) keeps the cached batches, and the next transaction's batch that reuses the aborted one's
    sequence is found by UnifiedLog.analyzeAndValidateProducerState (findDuplicateBatch, lines 1360-1368) before
    anything else: NONE at the aborted batch's offset, nothing written. The model:
    tests/unit/test_producer_state.py::test_tv1_marker_at_the_same_epoch_keeps_cached_batches.

    And the next sequence is refused: the duplicate wrote nothing, so the partition has no open transaction and the
    leader's verification entry (started for the duplicate, at its sequence 0) stays; ProducerAppendInfo.checkSequence
    refuses a first sequence above the entry's lowest (lines 120-124, KAFKA-14920): OUT_OF_ORDER_SEQUENCE_NUMBER."""
    topic = new_topic()
    tid = f"{topic}-txn"
    pid, epoch = raw.init_producer_id(tid)
    log = ps.make_log()

    assert raw.add_partition(tid, pid, epoch, topic) == "NONE"
    first = raw.produce(topic, pid, epoch, 0, "p-0", transactional_id=tid)
    assert first == model_answer(ps.send(log, ps.batch(pid, epoch, 0, txn=True, tag="p-0"))) == ("NONE", 0)
    assert raw.end_txn(tid, pid, epoch, commit=False, version=1) == ("NONE",)
    assert wait_transaction_state(kp_admin, tid, "CompleteAbort") == ("CompleteAbort", pid, epoch)
    assert ps.marker(log, pid, epoch, ControlType.ABORT).error is Errors.NONE  # the ABORT marker at offset 1

    assert raw.add_partition(tid, pid, epoch, topic) == "NONE"
    model = [model_answer(ps.send(log, ps.batch(pid, epoch, seq, txn=True, tag=value)))
             for seq, value in ((0, "p-1"), (1, "p-2"))]
    kafka = [raw.produce(topic, pid, epoch, seq, value, transactional_id=tid)
             for seq, value in ((0, "p-1"), (1, "p-2"))]
    # p-1 is "written" at offset 0, where the aborted p-0 lies; p-2 is out of order.
    assert model == kafka == [("NONE", 0), ("OUT_OF_ORDER_SEQUENCE_NUMBER", None)]
    entry = log.producer_state_manager.last_entry(pid)
    open_txn = -1 if entry.current_txn_first_offset is None else entry.current_txn_first_offset
    model_state = (pid, entry.producer_epoch, entry.last_seq, open_txn)
    assert model_state == producer_state(kp_admin, topic) == (pid, epoch, 0, -1)


# --- java-tv2-zombie-abort-shares-epoch ------------------------------------------------------------------------


def test_a_tv2_end_txn_one_epoch_behind_a_tv1_completed_abort_is_answered_as_a_retry(raw, kafka_broker, kp_admin,
                                                                                      new_topic):
    """TransactionCoordinator.endTransaction (4.1.2, from line 748) takes the TV2 path by the request's version
    (EndTxn v5; KafkaApis.handleEndTxnRequest, TransactionVersion.transactionVersionForEndTxn), and for a
    Complete* state accepts retryOnEpochBump = (txnMetadata.producerEpoch == producerEpoch + 1, line 784) without
    asking whether the completed transaction was a TV2 one: a zombie one epoch behind a transaction that a TV1
    EndTxn aborted (no bump) gets NONE and the live instance's (producer id, epoch). One epoch ahead is
    PRODUCER_FENCED. The model: tests/unit/test_txn_coordinator.py::
    test_end_txn_tv2_one_behind_a_tv1_completed_abort_passes_as_a_retry (and the library scenario
    mixed-tv-abort-revives-zombie, which replays it with real clients)."""
    if kafka_broker.transaction_version < 2:
        pytest.skip("EndTxn v5 is a transaction.version=2 request")
    topic = new_topic()
    tid = f"{topic}-txn"
    pid, zombie = raw.init_producer_id(tid)
    assert raw.init_producer_id(tid) == (pid, zombie + 1)  # the successor fences the zombie
    live = zombie + 1
    assert raw.add_partition(tid, pid, live, topic) == "NONE"
    assert raw.end_txn(tid, pid, live, commit=False, version=1) == ("NONE",)
    assert wait_transaction_state(kp_admin, tid, "CompleteAbort") == ("CompleteAbort", pid, live)
    kafka = [raw.end_txn(tid, pid, zombie, commit=False, version=5),
             raw.end_txn(tid, pid, live + 1, commit=False, version=5)]

    c = tc.make()
    m_pid, m_zombie = tc.init(c)
    _, m_live = tc.init(c)
    tc.begin(c, m_pid, m_live, tc.P0, tv=1)
    tc.complete(c, tc.prepare(c, m_pid, m_live, False, tv=1)[1])
    model = []
    for cid, epoch in ((4, m_zombie), (5, m_live + 1)):
        answer = tc.the_response(c.handle(cid, tc.end_req(m_pid, epoch, False, tv=2), 0))
        model.append((answer.error.name, answer.producer_id, answer.producer_epoch))
    # the model's producer ids start elsewhere; a refusal carries (-1, -1) on both
    model = [(e, pid if p == m_pid else p, ep) for e, p, ep in model]

    assert model == kafka == [("NONE", pid, live), ("PRODUCER_FENCED", -1, -1)]
    # Nothing changed: the coordinator still holds the TV1 abort at the live epoch.
    assert transaction_state(kp_admin, tid) == ("CompleteAbort", pid, live)
    assert (tc.meta(c).state, tc.meta(c).producer_epoch) == (tc.S.COMPLETE_ABORT, m_live)


# --- timeout-fence-at-exhausted-epoch-hangs (and the check failed-fence-at-exhausted-epoch-hangs rests on) -------


@pytest.fixture
def own_broker():
    """Factory: own_broker(transaction_version) -> a broker of the test's own, stopped after it. A transaction left
    stuck at Short.MaxValue cannot be ended, and the timeout sweep throws at it on every run (below): on the session
    broker that would leak into other tests. They do not depend on the session's transaction.version, so they run
    in the TV2 pass only."""
    if os.environ.get("EOSIM_KAFKA_TV", "2") != "2":
        pytest.skip("a broker of its own: checked in the transaction.version=2 pass")
    brokers = []

    def start(transaction_version: int) -> KafkaBroker:
        broker = KafkaBroker()
        brokers.append(broker)
        try:
            broker.start(transaction_version=transaction_version)
        except ToolMissing as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI=true and no broker: {exc.reason}", pytrace=False)
            pytest.skip(exc.reason)
        return broker

    yield start
    for broker in brokers:
        broker.stop()


def bump_to_32766(raw: Raw, transactional_id: str, timeout_ms: int) -> int:
    """InitProducerId until the epoch is 32766, the last one handed out (the next would rotate the producer id:
    TransactionMetadata.isProducerEpochExhausted, 4.1.2 line 253): 32767 requests, ~11 s, one at a time (a
    concurrent one is refused). The producer id."""
    pid, epoch = raw.init_producer_id(transactional_id, timeout_ms=timeout_ms)
    bump = InitProducerIdRequest(transactional_id=transactional_id, transaction_timeout_ms=timeout_ms,
                                 producer_id=-1, producer_epoch=-1, min_version=4, max_version=4)
    while epoch < MAX_EPOCH - 1:
        answer = raw.call(bump)
        assert (Errors(answer.error_code), answer.producer_id) == (Errors.NONE, pid), answer
        epoch = answer.producer_epoch
    return pid


def java_string_bucket(s: str, table_size: int = 16) -> int:
    """The bucket of a java.util.concurrent.ConcurrentHashMap<String, _> (String.hashCode, CHM.spread), whose
    iteration visits buckets in order: where a transactional id comes in the coordinator's sweep (all ids share the
    test profile's one __transaction_state partition; a few ids keep the default table of 16)."""
    h = 0
    for ch in s:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return (h ^ (h >> 16)) & 0x7FFFFFFF & (table_size - 1)


def test_a_tv2_timeout_fence_at_epoch_32766_leaves_a_transaction_no_one_can_end(own_broker):
    """KAFKA-20090 on Kafka 4.1.2 (fixed after 4.1). A TV2 transaction Ongoing at 32766 (bump_to_32766) times out.
    TransactionCoordinator.abortTimedOutTransactions (4.1.2 lines 1020-1056) fences it
    (prepareFenceProducerEpoch: 32767) and endTransaction aborts it on the same producer id:
    generateTxnTransitMetadataForTxnCompletion rotates only when !isEpochFence (lines 808-820), so it completes at
    32767. The producer's TV2 abort at 32766 is then a retry (retryOnEpochBump, line 784) answered with 32767; its
    next transaction goes Ongoing at 32767 = Short.MaxValue, its commit cannot bump (prepareAbortOrCommit:
    UNKNOWN_SERVER_ERROR), and neither InitProducerId nor the sweep can fence it: prepareFenceProducerEpoch throws
    IllegalStateException at Short.MaxValue (TransactionMetadata lines 94-96; handleInitProducerId calls it for an
    Ongoing transaction, line 283) -> UNKNOWN_SERVER_ERROR, before it looks at hasFailedEpochFence (the rule
    failed-fence-at-exhausted-epoch-hangs rests on). The model:
    tests/unit/test_txn_coordinator.py::test_kafka_20090_tv2_timeout_at_32766_leaves_a_txn_that_cannot_end.

    The sweep's exception also ends that sweep run (its foreach over timedOutTransactions is not guarded, lines
    1022-1055): a timed-out transaction visited after the stuck one (ConcurrentHashMap bucket order) is never
    aborted, one visited before it is. The model visits ids in sorted order and skips the stuck one: it DISAGREES
    (tests/unit/test_txn_coordinator.py::test_a_stuck_fence_ends_the_sweep_run, xfail)."""
    broker = own_broker(2)
    raw = Raw(broker.bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        topic = "out"
        admin.create_topics([NewTopic(topic, 1, 1)])
        # the stuck id's bucket has room on both sides: "before" is swept before it, "after" after it
        stuck = next(t for t in (f"stuck-{i}" for i in range(100)) if 2 <= java_string_bucket(t) <= 13)
        bucket = java_string_bucket(stuck)
        before = next(t for t in (f"before-{i}" for i in range(100)) if java_string_bucket(t) < bucket)
        after = next(t for t in (f"after-{i}" for i in range(100)) if java_string_bucket(t) > bucket)

        pid = bump_to_32766(raw, stuck, timeout_ms=1000)
        kafka = [("produce", raw.produce(topic, pid, MAX_EPOCH - 1, 0, "p-0", transactional_id=stuck, version=12)),
                 ("swept", wait_transaction_state(admin, stuck, "CompleteAbort")),
                 ("abort", raw.end_txn(stuck, pid, MAX_EPOCH - 1, commit=False, version=5)),
                 ("produce", raw.produce(topic, pid, MAX_EPOCH, 0, "p-1", transactional_id=stuck, version=12)),
                 ("commit", raw.end_txn(stuck, pid, MAX_EPOCH, commit=True, version=5))]
        kafka.append(("init", (raw.init_error(stuck),)))

        # Two more transactions time out after the stuck one: "after" begins first, so it has timed out whenever
        # "before" has; the sweep run that aborts "before" throws at the stuck id and never reaches "after".
        for tid in (after, before):
            other, other_epoch = raw.init_producer_id(tid, timeout_ms=1000)
            assert raw.produce(topic, other, other_epoch, 0, tid, transactional_id=tid, version=12)[0] == "NONE"
        assert wait_transaction_state(admin, before, "CompleteAbort")[0] == "CompleteAbort"
        swept = {tid: transaction_state(admin, tid)[0] for tid in (stuck, before, after)}
    finally:
        admin.close()
        raw.close()

    c, log = tc.make(tv=2), ps.make_log()
    m_pid, _ = tc.init(c)
    tc.seed_epoch(c, MAX_EPOCH - 2)
    assert tc.init(c) == (m_pid, MAX_EPOCH - 1)  # handed out by a bump, as on Kafka
    tc.begin(c, m_pid, MAX_EPOCH - 1, tc.P0, tv=2)
    model = [("produce", model_answer(ps.send(log, ps.batch(m_pid, MAX_EPOCH - 1, 0, txn=True),
                                              supports_epoch_bump=True)))]
    tc.complete(c, tc.durable(c, c.abort_timed_out_transactions(10**9)))
    assert ps.marker(log, m_pid, MAX_EPOCH, ControlType.ABORT).error is Errors.NONE
    model.append(("swept", (kafka_state(tc.meta(c).state), pid, tc.meta(c).producer_epoch)))
    answer = tc.the_response(c.handle(1, tc.end_req(m_pid, MAX_EPOCH - 1, False, tv=2), 0))
    model.append(("abort", (answer.error.name, pid if answer.producer_id == m_pid else answer.producer_id,
                            answer.producer_epoch)))
    tc.begin(c, m_pid, MAX_EPOCH, tc.P0, tv=2)
    model.append(("produce", model_answer(ps.send(log, ps.batch(m_pid, MAX_EPOCH, 0, txn=True),
                                                  supports_epoch_bump=True))))
    answer = tc.the_response(c.handle(2, tc.end_req(m_pid, MAX_EPOCH, True, tv=2), 0))
    model.append(("commit", (answer.error.name, answer.producer_id, answer.producer_epoch)))
    model.append(("init", (tc.the_response(c.handle(3, tc.init_req(), 0)).error.name,)))

    assert model == kafka == [("produce", ("NONE", 0)),
                              ("swept", ("CompleteAbort", pid, MAX_EPOCH)),
                              ("abort", ("NONE", pid, MAX_EPOCH)),
                              ("produce", ("NONE", 2)),
                              ("commit", ("UNKNOWN_SERVER_ERROR", -1, -1)),
                              ("init", ("UNKNOWN_SERVER_ERROR",))]
    assert c.abort_timed_out_transactions(2 * 10**9) == [] and tc.meta(c).state is tc.S.ONGOING
    # Kafka only (the model aborts "after" too): the stuck transaction ends every sweep run that reaches it.
    assert swept == {stuck: "Ongoing", before: "CompleteAbort", after: "Ongoing"}


def test_a_tv1_fence_at_epoch_32766_whose_write_fails_leaves_a_transaction_no_one_can_end(own_broker):
    """failed-fence-at-exhausted-epoch-hangs on Kafka 4.1.2, TV1. InitProducerId for a transaction Ongoing at 32766
    fences it: TransactionCoordinator.handleInitProducerId (4.1.2 line 283) calls prepareFenceProducerEpoch (32767),
    and the TV1 end (endTransactionWithTV1, lines 567-573) puts 32767 in memory before the PrepareAbort append. The
    append fails (here: __transaction_state's max.message.bytes set below any record; MESSAGE_TOO_LARGE, which
    TransactionStateManager.appendTransactionToLog answers as UNKNOWN_SERVER_ERROR, lines 695-697); any append
    error takes the same path, which sets hasFailedEpochFence and keeps 32767 (TransactionCoordinator lines
    676-690). With the log writable again, the retried InitProducerId fails in prepareFenceProducerEpoch's
    Short.MaxValue check (TransactionMetadata lines 94-96), which comes before hasFailedEpochFence:
    UNKNOWN_SERVER_ERROR, for good. The model, fed UNKNOWN_SERVER_ERROR for the append (it has no
    MESSAGE_TOO_LARGE; NOT_ENOUGH_REPLICAS, the finding's fault, cannot happen on a single broker:
    Partition.effectiveMinIsr caps min.insync.replicas at the replication factor); at a low epoch:
    tests/unit/test_txn_coordinator.py::test_kafka_9666_tv1_failed_fence_does_not_bump_again."""
    broker = own_broker(1)
    raw = Raw(broker.bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    txn_log = ConfigResource(ConfigResourceType.TOPIC, "__transaction_state")

    def txn_log_writable(writable: bool) -> None:
        """Set (or delete) the override, then wait until a fresh transactional id's InitProducerId, whose Empty
        record goes to the same log, fails (or succeeds) with it."""
        txn_log.configs = {"max.message.bytes": ("DELETE", None) if writable else "10"}
        admin.alter_configs([txn_log])
        deadline = time.monotonic() + TIMEOUT
        while (raw.init_error(f"probe-{uuid.uuid4().hex}") == "NONE") != writable:
            assert time.monotonic() < deadline, f"__transaction_state still {'not ' * writable}writable"
            time.sleep(0.05)

    try:
        topic = "out"
        admin.create_topics([NewTopic(topic, 1, 1)])
        tid = "tx-2"
        pid = bump_to_32766(raw, tid, timeout_ms=60_000)  # the sweep stays out of it
        assert raw.add_partition(tid, pid, MAX_EPOCH - 1, topic) == "NONE"
        assert raw.produce(topic, pid, MAX_EPOCH - 1, 0, "p2-0", transactional_id=tid) == ("NONE", 0)
        txn_log_writable(False)
        kafka = [("fence", raw.init_error(tid), transaction_state(admin, tid))]
        txn_log_writable(True)
        kafka.append(("init", raw.init_error(tid), transaction_state(admin, tid)))
        kafka.append(("init", raw.init_error(tid), transaction_state(admin, tid)))
        open_txn = producer_state(admin, topic)[3]
    finally:
        admin.close()
        raw.close()

    c = tc.make(tv=1)
    m_pid, _ = tc.init(c)
    tc.seed_epoch(c, MAX_EPOCH - 2)
    assert tc.init(c) == (m_pid, MAX_EPOCH - 1)
    tc.begin(c, m_pid, MAX_EPOCH - 1, tc.P0)
    answer = tc.the_response(tc.durable(c, c.handle(1, tc.init_req(), 0), error=Errors.UNKNOWN_SERVER_ERROR))
    model = [("fence", answer.error.name, (kafka_state(tc.meta(c).state), pid, tc.meta(c).producer_epoch))]
    for cid in (2, 3):
        answer = tc.the_response(c.handle(cid, tc.init_req(), 0))
        model.append(("init", answer.error.name, (kafka_state(tc.meta(c).state), pid, tc.meta(c).producer_epoch)))

    stuck = ("Ongoing", pid, MAX_EPOCH)
    assert model == kafka == [("fence", "UNKNOWN_SERVER_ERROR", stuck),
                              ("init", "UNKNOWN_SERVER_ERROR", stuck),
                              ("init", "UNKNOWN_SERVER_ERROR", stuck)]
    assert open_txn == 0  # the partition's last stable offset stays at the transaction's first record
