"""The client's KafkaError surface and the librdkafka reaction table (sim/_client/errors.py)."""

from __future__ import annotations

import pytest

from eosim.models.api import as_sent
from eosim.models.errors import Errors
from eosim.models.records import TopicPartition
from eosim.models.txn_coordinator import (
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    EndTxnRequest,
    EndTxnResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
)
from eosim._client.config import Client
from eosim._client.errors import (
    API_VERSIONS,
    DEFAULTS,
    REACTIONS,
    Context,
    KafkaError,
    KafkaException,
    Reaction,
    action,
    api_error,
    normalize,
)
from eosim._client.delivery import MsgStatus
from eosim._client.sender import produce_outcome, retry_backoff_ms

TP = TopicPartition("t", 0)

R = Reaction


def test_local_codes_have_librdkafka_values():
    # rdkafka.h
    assert KafkaError._FENCED == -144
    assert KafkaError._STATE == -172
    assert KafkaError._TIMED_OUT == -185
    assert KafkaError._MSG_TIMED_OUT == -192
    assert KafkaError._PARTITION_EOF == -191
    assert KafkaError._INVALID_ARG == -186
    assert KafkaError._FATAL == -150
    assert KafkaError._PURGE_QUEUE == -152
    assert KafkaError._PURGE_INFLIGHT == -151
    assert KafkaError._NO_OFFSET == -168
    assert KafkaError._INCONSISTENT == -149
    assert KafkaError._CONFLICT == -173
    assert KafkaError._PREV_IN_PROGRESS == -177


def test_broker_codes_under_both_names_and_librdkafka_names_reported():
    assert KafkaError.NOT_LEADER_OR_FOLLOWER == KafkaError.NOT_LEADER_FOR_PARTITION == 6
    assert KafkaError.UNKNOWN_TOPIC_OR_PARTITION == KafkaError.UNKNOWN_TOPIC_OR_PART == 3
    assert KafkaError(6).name() == "NOT_LEADER_FOR_PARTITION"
    assert KafkaError(3).name() == "UNKNOWN_TOPIC_OR_PART"
    assert KafkaError(Errors.PRODUCER_FENCED).name() == "PRODUCER_FENCED"
    assert KafkaError(KafkaError._FENCED).name() == "_FENCED"
    assert KafkaError(-5).name() == "ERR_-5?"
    for error in Errors:
        assert getattr(KafkaError, error.name) == int(error)


def test_kafka_error_behaves_like_confluent_kafka():
    error = KafkaError(KafkaError._FENCED, "fenced", fatal=True)
    assert error == -144 and error != 5 and error == KafkaError(-144)
    assert hash(error) == -144
    assert error.code() == -144 and error.str() == "fenced"
    assert error.fatal() and not error.retriable() and not error.txn_requires_abort()
    assert str(error) == 'KafkaError{FATAL,code=_FENCED,val=-144,str="fenced"}'
    assert KafkaError(KafkaError._STATE).str() == "Local: Erroneous state"
    assert eval(repr(error), {"KafkaError": KafkaError}) == error
    exc = KafkaException(error)
    assert exc.args[0] is error


def test_the_table_answers_every_error_in_every_context():
    for context in Context:
        for error in Errors:
            if error is Errors.NONE:
                continue
            assert isinstance(action(context, error).reaction, Reaction)
    assert set(REACTIONS) == set(Context) == set(DEFAULTS)


# (context, broker error, librdkafka reaction), each from the handler named in Context's comment.
EXPECTED = [
    # rd_kafka_handle_Produce_error / rd_kafka_handle_idempotent_Produce_error
    (Context.PRODUCE, Errors.NOT_LEADER_OR_FOLLOWER, R.REFRESH),
    (Context.PRODUCE, Errors.REQUEST_TIMED_OUT, R.RETRY),
    (Context.PRODUCE, Errors.NOT_ENOUGH_REPLICAS, R.RETRY),
    (Context.PRODUCE, Errors.NETWORK_EXCEPTION, R.PERMANENT),
    (Context.PRODUCE, Errors.DUPLICATE_SEQUENCE_NUMBER, R.PERMANENT),
    (Context.PRODUCE, Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, R.PERMANENT),
    (Context.PRODUCE_IDEMPOTENT, Errors.DUPLICATE_SEQUENCE_NUMBER, R.OK),
    (Context.PRODUCE_IDEMPOTENT, Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, R.SEQUENCE),
    (Context.PRODUCE_IDEMPOTENT, Errors.UNKNOWN_PRODUCER_ID, R.UNKNOWN_PID),
    (Context.PRODUCE_IDEMPOTENT, Errors.INVALID_PRODUCER_EPOCH, R.PERMANENT_BUMP),
    (Context.PRODUCE_IDEMPOTENT, Errors.INVALID_TXN_STATE, R.PERMANENT_BUMP),
    (Context.PRODUCE_TRANSACTIONAL, Errors.INVALID_PRODUCER_EPOCH, R.FENCED),
    (Context.PRODUCE_TRANSACTIONAL, Errors.UNKNOWN_PRODUCER_ID, R.ABORTABLE_BUMP),
    (Context.PRODUCE_TRANSACTIONAL, Errors.INVALID_TXN_STATE, R.ABORTABLE),
    (Context.PRODUCE_TRANSACTIONAL, Errors.TRANSACTION_ABORTABLE, R.ABORTABLE),
    (Context.PRODUCE_TRANSACTIONAL, Errors.NOT_ENOUGH_REPLICAS, R.RETRY),
    # rd_kafka_idemp_check_error
    (Context.INIT_PRODUCER_ID, Errors.CONCURRENT_TRANSACTIONS, R.RETRY),
    (Context.INIT_PRODUCER_ID, Errors.COORDINATOR_LOAD_IN_PROGRESS, R.RETRY),
    (Context.INIT_PRODUCER_ID, Errors.PRODUCER_FENCED, R.FENCED),
    (Context.INIT_PRODUCER_ID, Errors.INVALID_PRODUCER_EPOCH, R.FENCED),
    (Context.INIT_PRODUCER_ID, Errors.INVALID_TRANSACTION_TIMEOUT, R.FATAL),
    # rd_kafka_txn_handle_AddPartitionsToTxn
    (Context.ADD_PARTITIONS, Errors.CONCURRENT_TRANSACTIONS, R.RETRY),
    (Context.ADD_PARTITIONS, Errors.NOT_COORDINATOR, R.REFRESH),
    (Context.ADD_PARTITIONS, Errors.INVALID_PRODUCER_EPOCH, R.FENCED),
    (Context.ADD_PARTITIONS, Errors.INVALID_TXN_STATE, R.FATAL),
    (Context.ADD_PARTITIONS, Errors.INVALID_PRODUCER_ID_MAPPING, R.ABORTABLE_BUMP),
    (Context.ADD_PARTITIONS, Errors.OPERATION_NOT_ATTEMPTED, R.ABORTABLE),
    # rd_kafka_txn_handle_AddOffsetsToTxn: PRODUCER_FENCED falls to the default
    (Context.ADD_OFFSETS, Errors.INVALID_PRODUCER_EPOCH, R.FENCED),
    (Context.ADD_OFFSETS, Errors.PRODUCER_FENCED, R.ABORTABLE),
    (Context.ADD_OFFSETS, Errors.CONCURRENT_TRANSACTIONS, R.RETRY),
    (Context.ADD_OFFSETS, Errors.INVALID_TXN_STATE, R.FATAL),
    # rd_kafka_txn_handle_TxnOffsetCommit
    (Context.TXN_OFFSET_COMMIT, Errors.ILLEGAL_GENERATION, R.ABORTABLE),
    (Context.TXN_OFFSET_COMMIT, Errors.UNKNOWN_MEMBER_ID, R.ABORTABLE),
    (Context.TXN_OFFSET_COMMIT, Errors.FENCED_INSTANCE_ID, R.ABORTABLE),
    (Context.TXN_OFFSET_COMMIT, Errors.INVALID_PRODUCER_EPOCH, R.FENCED),
    (Context.TXN_OFFSET_COMMIT, Errors.INVALID_PRODUCER_ID_MAPPING, R.FATAL),
    (Context.TXN_OFFSET_COMMIT, Errors.CONCURRENT_TRANSACTIONS, R.RETRY),
    (Context.TXN_OFFSET_COMMIT, Errors.UNSTABLE_OFFSET_COMMIT, R.ABORTABLE),
    # rd_kafka_txn_handle_EndTxn
    (Context.END_TXN, Errors.CONCURRENT_TRANSACTIONS, R.RETRY),
    (Context.END_TXN, Errors.NOT_COORDINATOR, R.REFRESH),
    (Context.END_TXN, Errors.PRODUCER_FENCED, R.FENCED),
    (Context.END_TXN, Errors.INVALID_TXN_STATE, R.FATAL),
    (Context.END_TXN, Errors.UNKNOWN_PRODUCER_ID, R.ABORTABLE_BUMP),
    (Context.END_TXN, Errors.TRANSACTION_ABORTABLE, R.ABORTABLE),
    # consumer side
    (Context.OFFSET_FETCH, Errors.UNSTABLE_OFFSET_COMMIT, R.RETRY),
    (Context.OFFSET_FETCH, Errors.GROUP_ID_NOT_FOUND, R.PERMANENT),
    (Context.OFFSET_COMMIT, Errors.ILLEGAL_GENERATION, R.PERMANENT),
    (Context.OFFSET_COMMIT, Errors.COORDINATOR_LOAD_IN_PROGRESS, R.RETRY),
    (Context.HEARTBEAT, Errors.REBALANCE_IN_PROGRESS, R.REJOIN),
    (Context.HEARTBEAT, Errors.ILLEGAL_GENERATION, R.REJOIN),
    (Context.HEARTBEAT, Errors.UNKNOWN_MEMBER_ID, R.REJOIN),
]


@pytest.mark.parametrize(("context", "error", "reaction"), EXPECTED,
                         ids=[f"{c.value}-{e.name}" for c, e, _ in EXPECTED])
def test_reaction_table(context, error, reaction):
    assert action(context, error).reaction is reaction


def test_backoffs_of_the_handlers():
    assert action(Context.ADD_PARTITIONS, Errors.CONCURRENT_TRANSACTIONS).backoff_ms == 20
    assert action(Context.ADD_PARTITIONS, Errors.COORDINATOR_LOAD_IN_PROGRESS).backoff_ms == 500
    assert action(Context.INIT_PRODUCER_ID, Errors.CONCURRENT_TRANSACTIONS).backoff_ms == 500


def test_old_request_versions_receive_invalid_producer_epoch_for_producer_fenced():
    """KIP-588 (KafkaApis): PRODUCER_FENCED is down-converted for AddPartitionsToTxn/AddOffsetsToTxn/EndTxn
    below v2 and InitProducerId below v4; librdkafka's versions get INVALID_PRODUCER_EPOCH except on
    InitProducerId (v4), and its handlers treat that as fencing."""
    requests = {
        Context.ADD_PARTITIONS: (AddPartitionsToTxnRequest(transactional_id="t", producer_id=1, producer_epoch=0,
                                                           partitions=(TP,), api_version=0),
                                 AddPartitionsToTxnResponse(results=((TP, Errors.PRODUCER_FENCED),))),
        Context.ADD_OFFSETS: (AddOffsetsToTxnRequest(transactional_id="t", producer_id=1, producer_epoch=0,
                                                     group_id="g", api_version=0),
                              AddOffsetsToTxnResponse(error=Errors.PRODUCER_FENCED)),
        Context.END_TXN: (EndTxnRequest(transactional_id="t", producer_id=1, producer_epoch=0, committed=True,
                                        api_version=1), EndTxnResponse(error=Errors.PRODUCER_FENCED)),
    }
    for context, (request, response) in requests.items():
        assert request.api_version == API_VERSIONS[Client.LIBRDKAFKA][type(request).__name__[:-7]]
        sent = as_sent(request, response)
        error = sent.results[0][1] if context is Context.ADD_PARTITIONS else sent.error
        assert error is Errors.INVALID_PRODUCER_EPOCH
        assert action(context, error).reaction is R.FENCED
    init = InitProducerIdRequest(transactional_id="t", transaction_timeout_ms=1000,
                                 api_version=API_VERSIONS[Client.LIBRDKAFKA]["InitProducerId"])
    assert as_sent(init, InitProducerIdResponse(error=Errors.PRODUCER_FENCED)).error is Errors.PRODUCER_FENCED


def test_api_errors_carry_librdkafka_flags():
    fenced = api_error(Errors.PRODUCER_FENCED, R.FENCED)
    assert fenced.code() == KafkaError._FENCED and fenced.fatal() and fenced.name() == "_FENCED"
    fatal = api_error(Errors.INVALID_TXN_STATE, R.FATAL)
    assert fatal.code() == Errors.INVALID_TXN_STATE and fatal.fatal()
    abortable = api_error(Errors.ILLEGAL_GENERATION, R.ABORTABLE)
    assert abortable.txn_requires_abort() and not abortable.fatal() and not abortable.retriable()
    retriable = api_error(Errors.CONCURRENT_TRANSACTIONS, R.RETRY)
    assert retriable.retriable() and not retriable.txn_requires_abort()
    assert normalize(Errors.INVALID_PRODUCER_EPOCH) == normalize(Errors.PRODUCER_FENCED) == KafkaError._FENCED
    assert normalize(KafkaError._TIMED_OUT_QUEUE) == KafkaError._TIMED_OUT


def _outcome(error, context=Context.PRODUCE_IDEMPOTENT, *, first_seq=0, next_ack=0, next_err=0, retries=0,
             pid_matches=True):
    return produce_outcome(int(error), context, pid_matches=pid_matches, first_seq=first_seq, next_ack_seq=next_ack,
                           next_err_seq=next_err, first_retries=retries)


def test_out_of_order_sequence_head_of_line_is_fatal_later_requests_bump_and_retry():
    head = _outcome(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, first_seq=5, next_ack=5)
    assert head.verdict == "fail" and head.fatal == Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert head.status is MsgStatus.POSSIBLY_PERSISTED
    later = _outcome(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, first_seq=10, next_ack=5)
    assert later.verdict == "retry" and later.bump and not later.incr_retry and not later.fatal
    rewound = _outcome(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, first_seq=3, next_ack=5)
    assert rewound.fatal and not rewound.update_next_err


def test_unknown_producer_id_idempotent_first_attempt_bumps_else_fatal():
    first = _outcome(Errors.UNKNOWN_PRODUCER_ID, first_seq=4, next_err=4)
    assert first.verdict == "retry" and first.bump
    retried = _outcome(Errors.UNKNOWN_PRODUCER_ID, first_seq=4, next_err=4, retries=1)
    assert retried.verdict == "fail" and retried.fatal == Errors.UNKNOWN_PRODUCER_ID
    txn = _outcome(Errors.UNKNOWN_PRODUCER_ID, Context.PRODUCE_TRANSACTIONAL)
    assert txn.verdict == "fail" and txn.bump and not txn.fatal


def test_produce_outcomes_by_producer_kind():
    assert _outcome(Errors.DUPLICATE_SEQUENCE_NUMBER).verdict == "deliver"
    assert _outcome(Errors.DUPLICATE_SEQUENCE_NUMBER, Context.PRODUCE).verdict == "fail"
    fenced = _outcome(Errors.INVALID_PRODUCER_EPOCH, Context.PRODUCE_TRANSACTIONAL)
    assert fenced.fatal == KafkaError._FENCED
    abortable = _outcome(Errors.INVALID_TXN_STATE, Context.PRODUCE_TRANSACTIONAL)
    assert abortable.abortable and not abortable.fatal
    gap = _outcome(Errors.INVALID_TXN_STATE)
    assert gap.verdict == "fail" and gap.bump
    timeout = _outcome(KafkaError._TIMED_OUT)
    assert timeout.verdict == "retry" and timeout.incr_retry and timeout.drain_toppar
    assert timeout.status is MsgStatus.POSSIBLY_PERSISTED
    refresh = _outcome(Errors.NOT_LEADER_OR_FOLLOWER)
    assert refresh.verdict == "retry" and not refresh.incr_retry
    moved = _outcome(Errors.NOT_ENOUGH_REPLICAS, pid_matches=False)
    assert moved.verdict == "fail" and moved.status is MsgStatus.POSSIBLY_PERSISTED and moved.bump


def test_retry_backoff_is_exponential_jittered_and_capped():
    assert retry_backoff_ms(0, 100, 1000, 100) == 100
    assert retry_backoff_ms(1, 100, 1000, 100) == 100
    assert retry_backoff_ms(3, 100, 1000, 100) == 400
    assert retry_backoff_ms(3, 100, 1000, 80) == 320
    assert retry_backoff_ms(10, 100, 1000, 120) == 1000
