"""Long-lived state (docs/scenario-format.md, "Long-lived state"): aged producers are loaded through the models,
the loader validates them like every other key, Kafka's rules at the boundaries hold without a switch (the
sequence wraps from Int.MAX_VALUE to 0; an exhausted epoch moves to a new producer id at epoch 0), and the
KAFKA-7692 and KAFKA-18660 switches make aged runs INVALID with the expected anomaly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from eosim import strategies
from eosim.models.config import BrokerConfig
from eosim.models.errors import Errors, ModelError
from eosim.models.log import PartitionLog
from eosim.models.records import MAX_EPOCH, MAX_SEQUENCE, Record, RecordBatch, TopicPartition
from eosim.models.txn_coordinator import (AddPartitionsToTxnRequest, AppendTxnLog, EndTxnRequest, InitProducerIdRequest, TransactionCoordinator,
                                          TransactionState)
from eosim.models.effects import Respond
from eosim._realkafka.conform import _conform_one
from eosim._runner import run_scenario
from eosim._scenario import ScenarioError, scenario_from_dict

TP = TopicPartition("out", 0)
TID = "tx-1"


def _batch(pid: int, epoch: int, seq: int, n: int = 1) -> RecordBatch:
    return RecordBatch(records=tuple(Record(None, f"v{i}", 0) for i in range(n)), producer_id=pid,
                       producer_epoch=epoch, base_sequence=seq)


def _config(*bugs: str, tv: int = 2) -> BrokerConfig:
    return BrokerConfig(eosim_reintroduce=bugs, transaction_version=tv)


# --- the models ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bugs", [(), ("KAFKA-7692",)])
def test_an_aged_producer_at_int_max_continues_at_zero(bugs):
    """PAI.inSequence: after Int.MAX_VALUE comes 0 (KAFKA-7692 added the wrap; with the bug, out of order)."""
    log = PartitionLog(TP, _config(*bugs))
    log.producer_state_manager.load_aged_producer(7, 3, MAX_SEQUENCE, 0)
    result = log.append_as_leader(_batch(7, 3, 0), 0)
    assert result.error is (Errors.OUT_OF_ORDER_SEQUENCE_NUMBER if bugs else Errors.NONE)
    if not bugs:
        assert log.append_as_leader(_batch(7, 3, 1), 0).error is Errors.NONE
        assert log.append_as_leader(_batch(7, 3, 3), 0).error is Errors.OUT_OF_ORDER_SEQUENCE_NUMBER  # a gap


def test_an_aged_producer_needs_its_next_sequence_and_is_refused_twice():
    log = PartitionLog(TP, BrokerConfig())
    log.producer_state_manager.load_aged_producer(7, 0, 41, 0)
    assert log.append_as_leader(_batch(7, 0, 0), 0).error is Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.append_as_leader(_batch(7, 0, 42, 2), 0).error is Errors.NONE
    with pytest.raises(ModelError):
        log.producer_state_manager.load_aged_producer(7, 0, 1, 0)
    with pytest.raises(ModelError):
        log.producer_state_manager.load_aged_producer(8, MAX_EPOCH + 1, 1, 0)


def test_a_restarted_broker_keeps_an_aged_producer_from_its_snapshot():
    """Kafka keeps a producer whose batches retention deleted in its producer-state snapshot (KIP-360), and a
    restart loads it back (PSM.loadFromSnapshot): the aged producer's next sequence still holds after it."""
    log = PartitionLog(TP, BrokerConfig())
    log.producer_state_manager.load_aged_producer(7, 2, 41, 0)
    log.recover(now=10)  # nothing in the log yet: an unclean restart replays nothing
    assert log.append_as_leader(_batch(7, 2, 43), 10).error is Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.append_as_leader(_batch(7, 2, 42), 10).error is Errors.NONE
    log.recover(now=20)  # its last batch is in the log now: the snapshot at the log end has it
    assert log.append_as_leader(_batch(7, 2, 42), 20).error is Errors.NONE  # a duplicate, not appended again
    assert log.log_end_offset == 1
    assert log.append_as_leader(_batch(7, 2, 44), 20).error is Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.append_as_leader(_batch(7, 2, 43), 20).error is Errors.NONE


def test_a_restart_forgets_an_aged_producer_once_it_expired():
    config = BrokerConfig()
    log = PartitionLog(TP, config)
    log.producer_state_manager.load_aged_producer(7, 2, 41, 0)
    log.recover(now=config.producer_id_expiration_ms)  # PSM.loadFromSnapshot drops expired producers
    assert log.producer_state_manager.last_entry(7) is None
    assert log.append_as_leader(_batch(7, 2, 5), 0).error is Errors.NONE  # no state: any first sequence


def test_an_aged_producer_bumped_since_is_not_given_its_old_batch_back():
    log = PartitionLog(TP, BrokerConfig())
    log.producer_state_manager.load_aged_producer(7, 2, 41, 0)
    assert log.append_as_leader(_batch(7, 3, 0), 0).error is Errors.NONE  # a new epoch starts at 0
    log.recover(now=10)
    entry = log.producer_state_manager.last_entry(7)
    assert entry.producer_epoch == 3 and entry.last_seq == 0


def test_a_crash_and_restart_before_an_aged_producer_writes_keeps_its_sequence():
    """Found by `eosim explore` as a sequence-gap (a false alarm): the restarted broker had forgotten the aged
    producer, so it appended sequence 1 first, as a partition without the producer's state does."""
    document = {
        "scenario": {"name": "aged-restart", "description": "aged idempotent producer across a broker restart",
                     "conformance": False, "seed": 3},
        "topics": [{"name": "out", "partitions": 1}],
        "actors": {"p": {"kind": "producer", "config": {"enable.idempotence": True, "message.timeout.ms": 0},
                         "aged": {"sequence": 0}}},
        "faults": [{"name": "f1", "count": 1, "action": "drop", "message": "Produce", "direction": "response"},
                   {"name": "f2", "count": 1, "action": "drop", "message": "InitProducerId", "direction": "response"},
                   {"name": "f3", "count": 1, "action": "error", "message": "Produce", "error": "KAFKA_STORAGE_ERROR"}],
        "steps": [{"actor": "nemesis", "op": "crash_broker"}, {"actor": "nemesis", "op": "sleep", "ms": 100},
                  {"actor": "nemesis", "op": "restart_broker", "load_ms": 10},
                  {"actor": "p", "op": "produce", "topic": "out", "partition": 0, "value": "a"},
                  {"actor": "p", "op": "sleep", "ms": 100},
                  {"actor": "p", "op": "produce", "topic": "out", "partition": 0, "value": "b"},
                  {"actor": "p", "op": "flush"}],
    }
    outcome = run_scenario(scenario_from_dict(document, name="aged-restart", header="# test"))
    assert outcome.result.valid is True, outcome.result
    (partition,) = outcome.observation.partitions
    assert [value for _, _, value in partition.read_committed] == ["a", "b"]
    appends = [(e.base_sequence, e.base_offset) for e in outcome.trace if e.kind == "log.append"]
    assert appends == [(0, 0), (1, 1)]


def _answer(effects):
    (respond,) = [e for e in effects if isinstance(e, Respond)]
    return respond.response


def _durable(c: TransactionCoordinator, effects):
    (write,) = [e for e in effects if isinstance(e, AppendTxnLog)]
    return c.on_log_append(write.write_id, Errors.NONE, 0)


def _init(c: TransactionCoordinator):
    return _answer(_durable(c, c.handle(1, InitProducerIdRequest(transactional_id=TID,
                                                                 transaction_timeout_ms=60_000), 0)))


@pytest.mark.parametrize("tv", [0, 2])
@pytest.mark.parametrize("epoch", [MAX_EPOCH - 1, MAX_EPOCH])
def test_init_producer_id_at_an_exhausted_aged_epoch_rotates_the_producer_id(tv, epoch):
    """TCo.handleInitProducerId: an exhausted epoch (>= Short.MaxValue - 1) gets a new producer id at epoch 0,
    at every transaction version."""
    c = TransactionCoordinator(_config(tv=tv))
    record = c.load_aged(TID, epoch, 60_000, tv, 0)
    assert (record.state, record.producer_epoch) == (TransactionState.COMPLETE_COMMIT, epoch)
    response = _init(c)
    assert (response.error, response.producer_id, response.producer_epoch) == (Errors.NONE,
                                                                                record.producer_id + 1, 0)


def test_init_producer_id_below_exhaustion_bumps_the_aged_epoch():
    c = TransactionCoordinator(_config())
    record = c.load_aged(TID, MAX_EPOCH - 2, 60_000, 2, 0)
    response = _init(c)
    assert (response.producer_id, response.producer_epoch) == (record.producer_id, MAX_EPOCH - 1)
    with pytest.raises(ModelError):
        c.load_aged(TID, 0, 60_000, 2, 0)


@pytest.mark.parametrize("bugs", [(), ("KAFKA-18660",)])
def test_a_tv2_commit_at_the_last_aged_epoch_hands_out_a_new_producer_id(bugs):
    """KIP-890 (TMd.prepareComplete): a TV2 EndTxn at epoch 32766 ends on a new producer id at epoch 0; with
    KAFKA-18660 the answer is the old (pid, 32767)."""
    c = TransactionCoordinator(_config(*bugs))
    record = c.load_aged(TID, MAX_EPOCH - 2, 60_000, 2, 0)
    pid, epoch = record.producer_id, _init(c).producer_epoch
    assert epoch == MAX_EPOCH - 1
    add = AddPartitionsToTxnRequest(transactional_id=TID, producer_id=pid, producer_epoch=epoch, partitions=(TP,),
                                    transaction_version=2)
    assert dict(_answer(_durable(c, c.handle(2, add, 0))).results)[TP] is Errors.NONE
    request = EndTxnRequest(transactional_id=TID, producer_id=pid, producer_epoch=epoch, committed=True,
                            transaction_version=2)
    response = _answer(_durable(c, c.handle(3, request, 0)))
    assert response.error is Errors.NONE
    assert (response.producer_id, response.producer_epoch) == ((pid, MAX_EPOCH) if bugs else (pid + 1, 0))


# --- scenarios ----------------------------------------------------------------------------------------------


def _produce(value: str, partition: int = 0) -> dict:
    return {"actor": "p1", "op": "produce", "topic": "out", "partition": partition, "value": value}


def _document(actor: dict, steps: list[dict], cluster: dict | None = None, conformance: bool = False) -> dict:
    return {"scenario": {"name": "aged", "description": "an aged producer", "conformance": conformance},
            "cluster": cluster or {}, "topics": [{"name": "out"}], "actors": {"p1": actor}, "steps": steps}


IDEMPOTENT = {"kind": "producer", "config": {"enable.idempotence": True, "batch.num.messages": 1},
              "aged": {"epoch": 2, "sequence": MAX_SEQUENCE - 1}}
WRAP_STEPS = [_produce("a"), _produce("b"), _produce("c"), {"actor": "p1", "op": "flush"}]


def _run(document: dict):
    return run_scenario(scenario_from_dict(document, name="aged", header=""))


@pytest.mark.parametrize("bugs", [[], ["KAFKA-7692"]])
def test_an_aged_idempotent_producer_crosses_the_wrap(bugs):
    outcome = _run(_document(IDEMPOTENT, WRAP_STEPS, {"eosim.reintroduce": bugs} if bugs else None))
    appends = [(e.producer_id, e.producer_epoch, e.base_sequence) for e in outcome.trace if e.kind == "log.append"]
    names = sorted({a.name for a in outcome.result.anomalies})
    if bugs:
        assert names == ["spurious-out-of-order"]
        assert appends == [(0, 2, MAX_SEQUENCE - 1), (0, 2, MAX_SEQUENCE)]  # the batch at 0 is refused
    else:
        assert outcome.exit_code == 0 and names == []
        assert appends == [(0, 2, MAX_SEQUENCE - 1), (0, 2, MAX_SEQUENCE), (0, 2, 0)]


TRANSACTIONAL = {"kind": "producer", "config": {"transactional.id": TID, "eosim.client": "java"},
                 "aged": {"epoch": MAX_EPOCH - 2}}
TWO_COMMITS = [{"actor": "p1", "op": "init_transactions"},
               *[step for value in ("a", "b") for step in ({"actor": "p1", "op": "begin_transaction"}, _produce(value),
                                                           {"actor": "p1", "op": "commit_transaction"})]]


@pytest.mark.parametrize("bugs", [[], ["KAFKA-18660"]])
def test_an_aged_java_tv2_producer_commits_past_its_exhausted_epoch(bugs):
    cluster = {"transaction.version": 2, **({"eosim.reintroduce": bugs} if bugs else {})}
    outcome = _run(_document(TRANSACTIONAL, TWO_COMMITS, cluster))
    pids = [(e.producer_id, e.producer_epoch) for e in outcome.trace if e.kind == "client.pid"]
    names = sorted({a.name for a in outcome.result.anomalies})
    if bugs:  # the client adopts (0, 32767), which the coordinator no longer has
        assert names == ["spurious-fencing"] and pids[:2] == [(0, MAX_EPOCH - 1), (0, MAX_EPOCH)]
    else:
        assert outcome.exit_code == 0 and names == []
        assert pids == [(0, MAX_EPOCH - 1), (1, 0), (1, 1)]


def test_an_aged_librdkafka_tv1_producer_at_an_exhausted_epoch_starts_on_a_new_producer_id():
    actor = {"kind": "producer", "config": {"transactional.id": TID}, "aged": {"epoch": MAX_EPOCH - 1}}
    outcome = _run(_document(actor, TWO_COMMITS, {"transaction.version": 1}))
    assert outcome.exit_code == 0 and not outcome.result.anomalies
    assert [(e.producer_id, e.producer_epoch) for e in outcome.trace if e.kind == "client.pid"] == [(1, 0)]


@pytest.mark.parametrize("change, location, reason", [
    ({"conformance": True}, "actors.p1.aged", "simulator-only"),
    ({"aged": {"epoch": 1, "sequence": 5}, "config": {"transactional.id": TID}}, "actors.p1.aged.sequence",
     "restart at init_transactions"),
    ({"config": {"enable.idempotence": False}}, "actors.p1.aged", "plain producer"),
    ({"aged": {"epoch": 1, "seq": 5}}, "actors.p1.aged.seq", "unknown key"),
    ({"aged": {"epoch": MAX_EPOCH + 1}}, "actors.p1.aged.epoch", "must be <="),
    ({"aged": {"sequence": MAX_SEQUENCE + 1}}, "actors.p1.aged.sequence", "must be <="),
    ({"aged": {"sequence": -1}}, "actors.p1.aged.sequence", "must be >="),
    ({"cluster": {"brokers": 3}}, "actors.p1.aged", "single broker"),
])
def test_the_loader_refuses_aged_state_it_cannot_load(change, location, reason):
    actor = {**IDEMPOTENT, **{k: v for k, v in change.items() if k in ("aged", "config")}}
    document = _document(actor, WRAP_STEPS, change.get("cluster"), change.get("conformance", False))
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict(document, name="aged", header="")
    assert err.value.location == location and reason in err.value.reason


def test_the_loader_refuses_a_transactional_id_aged_twice():
    document = _document(TRANSACTIONAL, TWO_COMMITS)
    document["actors"]["p2"] = {**TRANSACTIONAL, "aged": {"epoch": 1}}
    with pytest.raises(ScenarioError, match="aged by actors.p1") as err:
        scenario_from_dict(document, name="aged", header="")
    assert err.value.location == "actors.p2.aged"


def test_conform_skips_an_aged_scenario_and_says_why(tmp_path):
    row = _conform_one(scenario_from_dict(_document(IDEMPOTENT, WRAP_STEPS), name="aged", header=""), None, tmp_path)
    assert row.agree is None and "aged producers p1: a real broker cannot be aged" in row.kafka


# --- the generator -------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None, database=None)
@given(st.data())
def test_drawn_aged_states_load(data):
    kind = data.draw(st.sampled_from(strategies.PRODUCER_KINDS))
    aged = data.draw(strategies.aged_states(kind))
    if kind == "plain":
        assert aged is None
    if aged is not None:
        assert set(aged) == ({"epoch"} if kind == "transactional" else {"sequence"})
        config = {"transactional.id": TID} if kind == "transactional" else {"enable.idempotence": True}
        scenario_from_dict(_document({"kind": "producer", "config": config, "aged": aged}, WRAP_STEPS),
                           name="aged", header="")
