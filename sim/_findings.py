"""eosim._findings
===============

Known findings: real Kafka or librdkafka behaviour that breaks a guarantee for a *correct* workload. The
checkers rightly call such a run INVALID; the soak (experiments/soak.py) and ``eosim explore`` without a
switch must still tell it from a false alarm of the simulator. Each finding names the scenario that documents
it (a library one replayed on real Kafka by the conformance suite, or a simulator-only one where only aged
state reaches it), the source lines, and a strict test on a run's anomalies and trace: an anomaly it
cannot tie to the documented mechanism stays unexplained.
docs/verdicts.md lists them.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from attrs import frozen

from eosim._trace import TraceEvent as Event


@frozen
class KnownFinding:
    """Real Kafka or librdkafka behaviour that a correct workload can run into. ``explains`` returns the
    indices of the anomalies (of one run, given its trace) that this behaviour accounts for; it must be
    strict: an anomaly it cannot tie to the documented mechanism stays a false alarm."""

    name: str
    scenario: str  # the scenario that documents it (a library one replayed on Kafka where conformance can reach it)
    source: str
    explains: Callable[[Sequence[Any], Sequence[Event]], set[int]]


def _abort_sequence_reuse(anomalies: Sequence[Any], trace: Sequence[Event]) -> set[int]:
    """``sequence-reuse`` whose reused batch (the witness's ``log.append``) was transactional and aborted:
    the first marker after it for that producer id on that partition is an ABORT, written before the new
    records came; and ``lost-write`` of a record that such a reuse got deduplicated (``log.duplicate``),
    and ``int-poll-skip`` whose skipped values are all such records (the producer was told they lie at the
    aborted batch's offset, which a reader passes)."""
    markers = [e for e in trace if e.kind == "log.marker"]
    explained: set[int] = set()
    deduplicated: set[tuple[str, Any]] = set()
    for i, a in enumerate(anomalies):
        if a.name != "sequence-reuse" or len(a.witness) != 2:
            continue
        original, reuse = a.witness
        od, rd = original["data"], reuse.get("data", {})
        if (original["kind"] != "log.append" or not od.get("transactional")
                or reuse["kind"] not in ("log.duplicate", "log.reject")
                or (reuse["node"], rd.get("tp"), rd.get("producer_id"), rd.get("producer_epoch"))
                != (original["node"], od["tp"], od["producer_id"], od["producer_epoch"])):
            continue
        after = next((m for m in markers if m.seq > original["seq"] and m.node == original["node"]
                      and str(m.tp) == od["tp"] and m.producer_id == od["producer_id"]), None)
        if after is None or after.control != "ABORT" or after.seq > reuse["seq"]:
            continue
        explained.add(i)
        if reuse["kind"] == "log.duplicate":
            deduplicated |= {(rd["tp"], value) for _, value in rd["records"]}
    for i, a in enumerate(anomalies):
        facts = a.witness[0] if a.witness else {}
        if a.name == "lost-write" and (facts.get("key"), facts.get("value")) in deduplicated:
            explained.add(i)
        # a reader skips over where the producer was told such a record lies (the aborted batch's offset)
        skipped = facts.get("skipped") or ()
        if a.name == "int-poll-skip" and skipped and all((facts.get("key"), v) in deduplicated for v in skipped):
            explained.add(i)
    return explained


def _plain_retry_duplicate(anomalies: Sequence[Any], trace: Sequence[Event]) -> set[int]:
    """``duplicate`` of a value every copy of which a non-idempotent producer wrote (batches with producer id
    -1: a retry has nothing to tie it to the first request) and the application produced once, and
    ``int-nonmonotonic-poll`` or ``int-poll-skip``
    whose values are all such duplicates. An idempotent or transactional producer never writes producer id -1,
    so a duplicate it caused stays unexplained."""
    writers: dict[tuple[str, Any], set[int]] = {}
    sends: dict[tuple[str, Any], int] = {}
    for e in trace:
        if e.kind == "log.append":
            for _offset, _key, value in e.records:
                writers.setdefault((str(e.tp), value), set()).add(e.producer_id)
        elif e.kind == "client.op" and e.op == "produce":
            sends[(e.args.get("topic"), e.args.get("value"))] = sends.get((e.args.get("topic"), e.args.get("value")), 0) + 1
    # written only by producer id -1, and produced once by the application (a resend is the application's copy)
    plain = {k for k, ids in writers.items() if ids == {-1} and sends.get((k[0].rpartition("-")[0], k[1])) == 1}
    explained: set[int] = set()
    duplicated: set[tuple[str, Any]] = set()
    for i, a in enumerate(anomalies):
        facts = a.witness[0] if a.witness else {}
        if a.name == "duplicate" and (facts.get("key"), facts.get("value")) in plain:
            explained.add(i)
            duplicated.add((facts["key"], facts["value"]))
    for i, a in enumerate(anomalies):
        facts = a.witness[0] if a.witness else {}
        values = facts.get("values") if a.name == "int-nonmonotonic-poll" else (
            facts.get("skipped") if a.name == "int-poll-skip" else None)
        if values and all((facts.get("key"), v) in duplicated for v in values):
            explained.add(i)
    return explained


def _field(payload: Any, name: str) -> Any:
    """A request's or response's field: the model's object in a live trace, a JSON object in a read one."""
    value = payload.get(name) if isinstance(payload, dict) else getattr(payload, name, None)
    return getattr(value, "name", value)  # Errors.NONE -> "NONE"


def _revived_by_a_retry(trace: Sequence[Event], holder: dict[str, Any]) -> bool:
    """``holder`` (a ``client.pid`` at producer id P, epoch E) took E from a TV2 EndTxn sent at E - 1 and
    answered NONE while the coordinator's transaction at E was Complete* after a TV1 end at E (no bump)."""
    node, data = holder["node"], holder["data"]
    tid, pid, epoch = data.get("transactional_id"), data["producer_id"], data["producer_epoch"]
    ends: dict[tuple[str, int], Any] = {}  # (channel, correlation id) -> EndTxn request of tid
    last_end_tv: int | None = None  # the transaction version of the last EndTxn of tid at (pid, E)
    ended_by_tv1 = False  # tid's last Prepare* at (pid, E) followed a TV1 EndTxn at E
    state = None  # tid's last (state, producer id, epoch)
    answer = None
    for e in trace:
        if e.seq >= holder["seq"]:
            break
        if e.kind == "net.request" and e.msg == "EndTxnRequest" and _field(e.fields, "transactional_id") == tid:
            ends[(e.node, e.correlation_id)] = e.fields
            if (_field(e.fields, "producer_id"), _field(e.fields, "producer_epoch")) == (pid, epoch):
                last_end_tv = _field(e.fields, "transaction_version")
        elif e.kind == "txn.state" and e.transactional_id == tid:
            state = (e.new, e.producer_id, e.producer_epoch)
            if e.new in ("PrepareCommit", "PrepareAbort") and state[1:] == (pid, epoch):
                ended_by_tv1 = e.old == "Ongoing" and last_end_tv == 1
        elif (e.kind == "net.response" and e.msg == "EndTxnResponse" and e.dst.split("/")[0] == node
              and (e.dst, e.correlation_id) in ends):
            request = ends[(e.dst, e.correlation_id)]
            answer = (_field(e.fields, "error"), _field(e.fields, "producer_id"), _field(e.fields, "producer_epoch"),
                      _field(request, "transaction_version"), _field(request, "producer_epoch"), ended_by_tv1,
                      state is not None and state[0] in ("CompleteCommit", "CompleteAbort") and state[1:] == (pid, epoch))
    return answer == ("NONE", pid, epoch, 2, epoch - 1, True, True)


def _mixed_tv_abort_revives_zombie(anomalies: Sequence[Any], trace: Sequence[Event]) -> set[int]:
    """``shared-producer-epoch`` whose later holder got the epoch from a TV2 EndTxn one epoch behind a
    transaction that a TV1 EndTxn ended at that epoch: Kafka's TV2 endTransaction takes it for a retry of an
    epoch-bumping end and hands the fenced instance the live one's epoch. Nothing else is explained."""
    return {i for i, a in enumerate(anomalies)
            if a.name == "shared-producer-epoch" and len(a.witness) == 2
            and all(w.get("kind") == "client.pid" for w in a.witness)
            and _revived_by_a_retry(trace, a.witness[1])}


SHORT_MAX = 32767  # Short.MaxValue: the last producer epoch


def _fence_at_exhausted_epoch_hangs(anomalies: Sequence[Any], trace: Sequence[Event]) -> set[int]:
    """``unresolved-transaction`` whose transaction went Ongoing at epoch Short.MaxValue on a producer id whose
    coordinator timeout fence (``txn.timeout``) had bumped it to Short.MaxValue, and that never left Ongoing
    again: Kafka 4.1.2's TV2 fence-abort keeps the producer id at an exhausted epoch, and its sweep cannot fence
    Short.MaxValue. An unresolved transaction at any other epoch, or one the sweep did not bring there, stays
    unexplained."""
    explained: set[int] = set()
    for i, a in enumerate(anomalies):
        if a.name != "unresolved-transaction" or len(a.witness) != 1:
            continue
        (w,) = a.witness
        d = w.get("data", {})
        if w.get("kind") != "txn.state" or d.get("new") != "Ongoing" or d.get("producer_epoch") != SHORT_MAX:
            continue
        tid, pid = d.get("transactional_id"), d.get("producer_id")
        fenced = any(e.kind == "txn.timeout" and e.seq < w["seq"] and e.node == w["node"]
                     and (e.transactional_id, e.producer_id, e.producer_epoch) == (tid, pid, SHORT_MAX)
                     for e in trace)
        # Adding partitions keeps it Ongoing; any other state would be an end the sweep or the producer reached.
        left = any(e.kind == "txn.state" and e.seq > w["seq"] and e.transactional_id == tid and e.new != "Ongoing"
                   for e in trace)
        if fenced and not left:
            explained.add(i)
    return explained


KNOWN_FINDINGS = (
    KnownFinding(name="txn-abort-sequence-reuse",
            scenario="experiments/scenarios/txn-abort-sequence-reuse.toml",
            source="librdkafka rdkafka_partition.c rd_kafka_toppar_purge_queues (RD_KAFKA_PURGE_F_ABORT_TXN advances "
                   "the epoch base msgid past a sent batch); Kafka UnifiedLog.analyzeAndValidateProducerState "
                   "(findDuplicateBatch), ProducerStateEntry.maybeUpdateProducerEpoch (a TV1 marker at the same "
                   "epoch keeps the cached batches); docs/client.md, \"Sequence reuse after an abort\"",
            explains=_abort_sequence_reuse),
    KnownFinding(name="non-idempotent-retry-duplicate",
            scenario="experiments/scenarios/fault-lost-response-duplicate.toml",
            source="librdkafka rdkafka_request.c rd_kafka_handle_Produce_error (a timed-out Produce is retried, its "
                   "messages POSSIBLY_PERSISTED) with enable.idempotence=false, its default: at-least-once by design "
                   "(Kafka's producer docs, \"Delivery semantics\")",
            explains=_plain_retry_duplicate),
    KnownFinding(name="mixed-tv-abort-revives-zombie",
            scenario="experiments/scenarios/mixed-tv-abort-revives-zombie.toml",
            source="Kafka TransactionCoordinator.handleEndTransaction (the path by the request's version) and "
                   "endTransaction (TV2: retryOnEpochBump = txnMetadata.producerEpoch == producerEpoch + 1, no "
                   "check that the completed transaction was a TV2 one; kafka_2.13 4.0.0-4.4.0); the Java client's "
                   "EndTxnHandler takes the answered epoch (TV2). Measured on Kafka 4.1.2",
            explains=_mixed_tv_abort_revives_zombie),
    KnownFinding(name="timeout-fence-at-exhausted-epoch-hangs",
            scenario="experiments/findings/timeout-fence-at-exhausted-epoch-hangs.toml",
            source="Kafka TransactionCoordinator.abortTimedOutTransactions (prepareFenceProducerEpoch, not caught) "
                   "and endTransaction (TV2: generateTxnTransitMetadataForTxnCompletion rotates the producer id "
                   "only when !isEpochFence, so the timeout abort at 32766 completes at 32767 on the same id; "
                   "retryOnEpochBump hands 32767 to the producer); TransactionMetadata.prepareFenceProducerEpoch "
                   "(IllegalStateException at Short.MaxValue), prepareAbortOrCommit (TV2: epoch + 1 overflows, "
                   "prepareTransitionTo's IllegalArgumentException -> UNKNOWN_SERVER_ERROR); KafkaScheduler logs "
                   "it every sweep. kafka_2.13 4.1.2 bytecode; upstream KAFKA-20090 (fixed after 4.1). "
                   "Simulator-only: the scenario needs aged state (conformance = false)",
            explains=_fence_at_exhausted_epoch_hangs),
)


def classify(anomalies: Sequence[Any], trace: Sequence[Event]) -> list[str] | None:
    """The known findings that explain every one of an INVALID run's anomalies, or None: none or not all of
    them are explained (a false alarm, or something new)."""
    explained: set[int] = set()
    names = []
    for finding in KNOWN_FINDINGS:
        mine = finding.explains(anomalies, trace)
        if mine - explained:
            names.append(finding.name)
        explained |= mine
    return names if anomalies and explained == set(range(len(anomalies))) else None
