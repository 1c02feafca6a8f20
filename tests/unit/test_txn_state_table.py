"""The transaction coordinator's state table (TransactionState.java) and an any-request-in-any-state property test."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eosim.models.config import BrokerConfig
from eosim.models.errors import Errors, IllegalTransition
from eosim.models.records import MAX_EPOCH, TopicPartition
from eosim.models.txn_coordinator import (
    VALID_PREVIOUS_STATES,
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    AppendTxnLog,
    EndTxnRequest,
    EndTxnResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    Respond,
    SendTxnMarkers,
    TransactionCoordinator,
    TransactionMetadata,
    TransactionState,
    TxnStateChanged,
)

S = TransactionState
ALL_PAIRS = list(itertools.product(S, S))

# Kafka 4.1 TransactionState.VALID_PREVIOUS_STATES, written out by hand from the source.
KAFKA_TABLE = {
    (S.EMPTY, S.EMPTY),
    (S.COMPLETE_COMMIT, S.EMPTY),
    (S.COMPLETE_ABORT, S.EMPTY),
    (S.ONGOING, S.ONGOING),
    (S.EMPTY, S.ONGOING),
    (S.COMPLETE_COMMIT, S.ONGOING),
    (S.COMPLETE_ABORT, S.ONGOING),
    (S.ONGOING, S.PREPARE_COMMIT),
    (S.ONGOING, S.PREPARE_ABORT),
    (S.PREPARE_EPOCH_FENCE, S.PREPARE_ABORT),
    (S.EMPTY, S.PREPARE_ABORT),  # TV2 empty abort
    (S.COMPLETE_COMMIT, S.PREPARE_ABORT),  # TV2 empty abort
    (S.COMPLETE_ABORT, S.PREPARE_ABORT),  # TV2 empty abort
    (S.PREPARE_COMMIT, S.COMPLETE_COMMIT),
    (S.PREPARE_ABORT, S.COMPLETE_ABORT),
    (S.EMPTY, S.DEAD),
    (S.COMPLETE_ABORT, S.DEAD),
    (S.COMPLETE_COMMIT, S.DEAD),
    (S.ONGOING, S.PREPARE_EPOCH_FENCE),
}


def metadata_in(state: TransactionState) -> TransactionMetadata:
    return TransactionMetadata(
        transactional_id="t",
        producer_id=7,
        producer_epoch=3,
        txn_timeout_ms=60_000,
        state=state,
        txn_last_update_timestamp=0,
    )


def test_table_is_kafkas():
    assert {(prev, target) for target, prevs in VALID_PREVIOUS_STATES.items() for prev in prevs} == KAFKA_TABLE
    assert set(VALID_PREVIOUS_STATES) == set(S)


def test_kafka_names_and_ids():
    assert [(s.value, s.kafka_name) for s in S] == [
        (0, "Empty"),
        (1, "Ongoing"),
        (2, "PrepareCommit"),
        (3, "PrepareAbort"),
        (4, "CompleteCommit"),
        (5, "CompleteAbort"),
        (6, "Dead"),
        (7, "PrepareEpochFence"),
    ]


@pytest.mark.parametrize(("old", "new"), ALL_PAIRS, ids=[f"{a.kafka_name}->{b.kafka_name}" for a, b in ALL_PAIRS])
def test_every_transition_pair(old, new):
    txn = metadata_in(old)
    before = txn.snapshot()
    if (old, new) in KAFKA_TABLE:
        record = txn.prepare_transition(new, producer_epoch=4)
        assert record.state is new and record.producer_epoch == 4 and record.prev_producer_id == 7
        assert txn.pending_state is new
        assert txn.snapshot() == before  # nothing applied before the write is durable
        txn.complete_transition(record)
        assert txn.state is new and txn.pending_state is None and txn.producer_epoch == 4
    else:
        with pytest.raises(IllegalTransition):
            txn.prepare_transition(new, producer_epoch=4)
        assert txn.snapshot() == before and txn.pending_state is None


def test_a_pending_transition_blocks_another():
    txn = metadata_in(S.ONGOING)
    txn.prepare_transition(S.ONGOING)
    with pytest.raises(IllegalTransition):
        txn.prepare_transition(S.PREPARE_COMMIT)
    assert txn.pending_state is S.ONGOING and txn.state is S.ONGOING


def test_complete_needs_the_matching_pending_transition():
    txn = metadata_in(S.ONGOING)
    record = txn.prepare_transition(S.PREPARE_COMMIT)
    other = metadata_in(S.ONGOING).prepare_transition(S.PREPARE_ABORT)
    with pytest.raises(IllegalTransition):
        txn.complete_transition(other)
    txn.complete_transition(record)
    with pytest.raises(IllegalTransition):
        txn.complete_transition(record)  # nothing pending any more
    assert txn.state is S.PREPARE_COMMIT


# --- every request in every state ------------------------------------------------------------------------

TID = "txn"
P0, P1, P2 = TopicPartition("out", 0), TopicPartition("out", 1), TopicPartition("out", 2)
RESTING = ["absent", S.EMPTY, S.ONGOING, S.PREPARE_COMMIT, S.PREPARE_ABORT, S.COMPLETE_COMMIT, S.COMPLETE_ABORT]
KINDS = ["init", "init_expected", "add", "add_v4", "verify", "add_offsets", "end_tv1", "end_tv2"]
RESPONSE_TYPE = {
    InitProducerIdRequest: InitProducerIdResponse,
    AddPartitionsToTxnRequest: AddPartitionsToTxnResponse,
    AddOffsetsToTxnRequest: AddOffsetsToTxnResponse,
    EndTxnRequest: EndTxnResponse,
}


class Runtime:
    """A test runtime: applies effects, acknowledges writes and markers, checks invariants after every call."""

    def __init__(self, coordinator: TransactionCoordinator) -> None:
        self.c = coordinator
        self.writes: dict[int, AppendTxnLog] = {}
        self.markers: list[tuple] = []  # (entry, partition)
        self.responses: dict[int, list] = {}
        self.requests: dict[int, object] = {}
        self.last_seen: dict[str, tuple[int, int]] = {}
        self.next_cid = 0

    def states(self):
        return {tid: txn.state for tid, txn in self.c._txns.items()}

    def call(self, fn, *args, may_change_state=False):
        before = self.states()
        effects = fn(*args)
        if not may_change_state:
            after = self.states()
            # New metadata is cached (Empty, epoch -1) before its first write, as TCo.handleInitProducerId does.
            for t in after.keys() - before.keys():
                assert self.c._txns[t].producer_epoch == -1 and after[t] is S.EMPTY
            assert {t: after[t] for t in before} == before, "state changed without a durable write"
        for effect in effects:
            if isinstance(effect, AppendTxnLog):
                assert all(w.transactional_id != effect.transactional_id for w in self.writes.values()), (
                    "two txn-log writes in flight for one transactional id"
                )
                record = effect.record
                assert record.state is S.DEAD or 0 <= record.producer_epoch <= MAX_EPOCH
                self.writes[effect.write_id] = effect
            elif isinstance(effect, SendTxnMarkers):
                assert 0 <= effect.entry.producer_epoch <= MAX_EPOCH
                self.markers += [(effect.entry, p) for p in effect.entry.partitions]
            elif isinstance(effect, Respond):
                self.responses.setdefault(effect.correlation_id, []).append(effect.response)
            else:
                assert isinstance(effect, TxnStateChanged)
        self.check()
        return effects

    def check(self):
        for tid, txn in self.c._txns.items():
            assert -1 <= txn.producer_epoch <= MAX_EPOCH
            assert txn.producer_epoch >= 0 or txn.state is S.EMPTY
            in_flight = any(w.transactional_id == tid for w in self.writes.values())
            assert in_flight <= (txn.pending_state is not None)  # a write in flight holds the pending state
            if txn.pending_state is not None:
                assert in_flight or tid in self.c._pending_markers
            pid, epoch = self.last_seen.get(tid, (txn.producer_id, txn.producer_epoch))
            assert txn.producer_id != pid or txn.producer_epoch >= epoch, "epoch went backwards"
            self.last_seen[tid] = (txn.producer_id, txn.producer_epoch)

    def request(self, request, now=0):
        cid = self.next_cid
        self.next_cid += 1
        self.requests[cid] = request
        self.call(self.c.handle, cid, request, now)
        return cid

    def ack_write(self, write_id, error=Errors.NONE, now=0):
        self.writes.pop(write_id)
        return self.call(self.c.on_log_append, write_id, error, now, may_change_state=error is Errors.NONE)

    def ack_markers(self, now=0):
        while self.markers:
            entry, partition = self.markers.pop(0)
            self.call(self.c.on_marker_result, entry, partition, Errors.NONE, now)

    def drain(self, now=0):
        for _ in range(20):
            if not self.writes and not self.markers:
                return
            self.ack_markers(now)
            for write_id in sorted(self.writes):
                self.ack_write(write_id, Errors.NONE, now)
        raise AssertionError("did not quiesce")


def drive(rt: Runtime, state, pending: bool, base_epoch: int, tv: int, commit: bool) -> None:
    """Bring TID into ``state`` through real requests (epoch seeded after InitProducerId)."""
    if state == "absent":
        return
    rt.request(InitProducerIdRequest(transactional_id=TID, transaction_timeout_ms=60_000))
    rt.drain()
    rt.c._txns[TID].producer_epoch = base_epoch  # as if reloaded at this epoch
    rt.last_seen.pop(TID)
    txn = rt.c._txns[TID]
    if state is not S.EMPTY:
        rt.request(AddPartitionsToTxnRequest(transactional_id=TID, producer_id=txn.producer_id,
                                             producer_epoch=base_epoch, partitions=(P0,)))
        rt.drain()
    if state in (S.PREPARE_COMMIT, S.PREPARE_ABORT, S.COMPLETE_COMMIT, S.COMPLETE_ABORT):
        committed = state in (S.PREPARE_COMMIT, S.COMPLETE_COMMIT)
        rt.request(EndTxnRequest(transactional_id=TID, producer_id=txn.producer_id, producer_epoch=base_epoch,
                                 committed=committed, transaction_version=tv))
        (write_id,) = rt.writes
        rt.ack_write(write_id)
    if state in (S.COMPLETE_COMMIT, S.COMPLETE_ABORT):
        rt.drain()
    assert txn.state is state
    if state in (S.PREPARE_COMMIT, S.PREPARE_ABORT):
        if not pending:  # the Complete* write failed with NOT_COORDINATOR: Prepare* without a pending state
            rt.ack_markers()
            (write_id,) = rt.writes
            rt.ack_write(write_id, Errors.NOT_LEADER_OR_FOLLOWER)
    elif pending:
        rt.request(AddPartitionsToTxnRequest(transactional_id=TID, producer_id=txn.producer_id,
                                             producer_epoch=txn.producer_epoch, partitions=(P1,)))
        assert rt.writes


def make_request(kind: str, pid: int, epoch: int, commit: bool):
    match kind:
        case "init":
            return InitProducerIdRequest(transactional_id=TID, transaction_timeout_ms=60_000)
        case "init_expected":
            return InitProducerIdRequest(transactional_id=TID, transaction_timeout_ms=60_000,
                                         producer_id=pid, producer_epoch=epoch)
        case "add" | "add_v4" | "verify":
            return AddPartitionsToTxnRequest(transactional_id=TID, producer_id=pid, producer_epoch=epoch,
                                             partitions=(P0, P2), verify_only=kind == "verify",
                                             transaction_version=2 if kind == "add_v4" else 1)
        case "add_offsets":
            return AddOffsetsToTxnRequest(transactional_id=TID, producer_id=pid, producer_epoch=epoch, group_id="g")
        case "end_tv1" | "end_tv2":
            return EndTxnRequest(transactional_id=TID, producer_id=pid, producer_epoch=epoch, committed=commit,
                                 transaction_version=2 if kind == "end_tv2" else 1)
    raise AssertionError(kind)


PAIRS = list(itertools.product(RESTING, KINDS))


@pytest.mark.parametrize(("state", "kind"), PAIRS, ids=[f"{getattr(s, 'kafka_name', s)}-{k}" for s, k in PAIRS])
@settings(max_examples=25, deadline=None)
@given(
    pending=st.booleans(),
    server_tv=st.sampled_from([1, 2]),
    base_epoch=st.sampled_from([0, 1, 5, MAX_EPOCH - 2, MAX_EPOCH - 1]),
    pid_delta=st.sampled_from([0, 0, 0, 1, -1]),
    epoch_delta=st.sampled_from([0, 0, 0, -1, 1, 2]),
    commit=st.booleans(),
    sweep=st.booleans(),
    first_error=st.sampled_from([Errors.NONE, Errors.NOT_ENOUGH_REPLICAS, Errors.NOT_LEADER_OR_FOLLOWER,
                                 Errors.REQUEST_TIMED_OUT, Errors.KAFKA_STORAGE_ERROR]),
)
def test_any_request_in_any_state(state, kind, pending, server_tv, base_epoch, pid_delta, epoch_delta, commit,
                                  sweep, first_error):
    rt = Runtime(TransactionCoordinator(BrokerConfig(transaction_version=server_tv), first_producer_id=1000))
    drive(rt, state, pending, base_epoch, server_tv, commit)
    if sweep:  # the timeout sweeper may fence and abort an Ongoing txn first
        rt.call(rt.c.abort_timed_out_transactions, 10**9)
    txn = rt.c._txns.get(TID)
    pid = (txn.producer_id if txn else 1000) + pid_delta
    epoch = min(MAX_EPOCH, max(0, (txn.producer_epoch if txn else 0) + epoch_delta))
    request = make_request(kind, pid, epoch, commit)
    cid = rt.request(request, now=10**9)

    if rt.writes:  # the newest write (this request's, if it made one) may fail
        rt.ack_write(max(rt.writes), first_error, now=10**9)
    rt.drain(now=10**9)

    for c, request_ in rt.requests.items():
        assert len(rt.responses.get(c, [])) == 1, f"request {c} got {rt.responses.get(c)}"
        response = rt.responses[c][0]
        assert type(response) is RESPONSE_TYPE[type(request_)]
        if isinstance(response, AddPartitionsToTxnResponse):
            errors = [e for _, e in response.results]
        else:
            errors = [response.error]
        assert all(isinstance(e, Errors) for e in errors)
        if isinstance(response, (InitProducerIdResponse, EndTxnResponse)) and response.error is Errors.NONE:
            assert response.producer_epoch == -1 or 0 <= response.producer_epoch <= MAX_EPOCH
    assert cid in rt.responses
    assert all(t.pending_state is None for t in rt.c._txns.values())  # quiescent: nothing left pending
