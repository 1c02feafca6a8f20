"""The simulated broker's request handling (sim/_broker.py), driven over the network with raw requests."""

from pathlib import Path

from eosim.models.config import BrokerConfig
from eosim.models.errors import Errors
from eosim.models.records import TopicPartition
from eosim.models.txn_coordinator import AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, InitProducerIdRequest
from eosim._cluster import Cluster
from eosim._world import World
from eosim._worktime import FIXED_WORK_MS

TP = TopicPartition("out", 0)


def _second_add_while_first_writes(second_src: str) -> Errors:
    """AddOffsetsToTxn starts a txn-log write; AddPartitionsToTxn follows at once from ``second_src``."""
    world = World(1)
    # fixed work times: the second request must arrive during the first one's 1 ms txn-log write
    cluster = Cluster(world, BrokerConfig(), {"out": 1}, work_ms=FIXED_WORK_MS)
    net, broker = cluster.network, cluster.broker
    result = {}

    def client():
        init = yield net.request("p#1/txn", broker, InitProducerIdRequest(transactional_id="t",
                                                                           transaction_timeout_ms=60_000), 30_000)
        pid, epoch = init.producer_id, init.producer_epoch
        first = net.request("p#1/txn", broker, AddOffsetsToTxnRequest(
            transactional_id="t", producer_id=pid, producer_epoch=epoch, group_id="g"), 30_000)
        second = net.request(second_src, broker, AddPartitionsToTxnRequest(
            transactional_id="t", producer_id=pid, producer_epoch=epoch, partitions=(TP,)), 30_000)
        yield first
        result["second"] = dict((yield second).results)[TP]

    world.env.run(until=world.env.process(client()))
    return result["second"]


def test_a_connection_is_muted_until_its_request_is_answered() -> None:
    """SocketServer mutes a channel per request: the second request waits for the first's log write."""
    assert _second_add_while_first_writes("p#1/txn") is Errors.NONE


def test_another_connection_sees_the_pending_transition() -> None:
    """From another connection the same request meets the pending write: CONCURRENT_TRANSACTIONS."""
    assert _second_add_while_first_writes("q#1/txn") is Errors.CONCURRENT_TRANSACTIONS


def test_a_timed_out_transaction_is_traced_before_its_fencing_write() -> None:
    """abortTimedOutTransactions: the sweep fences (epoch + 1) and aborts; the trace says why."""
    from eosim._runner import run_file

    outcome = run_file(Path(__file__).resolve().parents[2] / "experiments/scenarios/transaction-timeout-abort.toml")
    kinds = [(e.kind, e.producer_epoch) for e in outcome.trace
             if e.kind in ("txn.timeout", "txn.log") and e.transactional_id == "slowpoke"]
    timeout = kinds.index(("txn.timeout", 1))
    assert kinds[timeout + 1] == ("txn.log", 1)


def test_a_fenced_librdkafka_endtxn_gets_invalid_producer_epoch_on_the_wire() -> None:
    """KIP-588: EndTxn v1 (librdkafka) predates PRODUCER_FENCED, so KafkaApis answers INVALID_PRODUCER_EPOCH,
    as the real 4.1.2 broker does (docs/real-kafka.md); librdkafka reports it as _FENCED."""
    from eosim._runner import run_file

    outcome = run_file(Path(__file__).resolve().parents[2] / "experiments/scenarios/zombie-fencing.toml")
    [response] = [e.data["fields"] for e in outcome.trace
                  if e.kind == "net.response" and e.msg == "EndTxnResponse"
                  and e.data["fields"]["error"] != "NONE"]
    assert response["error"] == "INVALID_PRODUCER_EPOCH"
    assert outcome.observation.steps[5].outcome == "_FENCED"
