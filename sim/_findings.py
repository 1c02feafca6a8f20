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


def _gap_first_appends(trace: Sequence[Event]) -> list[Any]:
    """``log.append`` of a producer id's first batch at a partition that holds no state for it (no earlier
    append, duplicate or aged state of that id there) whose base sequence is not 0: Kafka's
    ProducerAppendInfo.checkSequence accepts any first sequence at NO_PRODUCER_EPOCH."""
    seen: set[tuple[str, int]] = set()
    gaps = []
    for e in trace:
        if e.kind in ("log.append", "log.duplicate", "log.aged"):
            key = (str(e.tp), e.producer_id)
            if e.kind == "log.append" and key not in seen and e.base_sequence != 0:
                gaps.append(e)
            seen.add(key)
    return gaps


def _implicit_ack_of_a_gap(anomalies: Sequence[Any], trace: Sequence[Event]) -> set[int]:
    """``lost-write`` of a value never appended whose delivery report said PERSISTED without an offset, after
    a later batch of the same producer id (the one the reporting client held) was the first one the partition
    appended for that id, at a base sequence above 0: librdkafka took that success for an implicit ack of the
    earlier, lost, batch. Any other lost write stays unexplained."""
    gaps = _gap_first_appends(trace)
    appended = {(str(e.tp), value) for e in trace if e.kind == "log.append" for _o, _k, value in e.records}
    explained: set[int] = set()
    for i, a in enumerate(anomalies):
        facts = a.witness[0] if a.witness else {}
        tp, value = facts.get("key"), facts.get("value")
        if a.name != "lost-write" or facts.get("offset") is not None or (tp, value) in appended:
            continue
        pids: dict[str, int] = {}  # node -> the producer id it holds
        for e in trace:
            if e.kind == "client.pid":
                pids[e.node] = e.producer_id
            elif e.kind == "client.op" and e.op == "delivery":
                args, result = e.call()
                if (args.get("value") != value or f"{args.get('topic')}-{(result or {}).get('partition')}" != tp
                        or (result or {}).get("status") != "PERSISTED" or (result or {}).get("offset", 0) >= 0):
                    continue
                if any(g.seq < e.seq and str(g.tp) == tp and g.producer_id == pids.get(e.node) for g in gaps):
                    explained.add(i)
                    break
    return explained


def _epoch_bump_rewrites_a_gap(anomalies: Sequence[Any], trace: Sequence[Event]) -> set[int]:
    """``duplicate`` of a value produced once whose two copies are: one in a producer id's first batch at a
    partition with no state for it, appended at a base sequence above 0 and epoch E, and one appended by that
    producer id at a later epoch, which an idempotent (non-transactional) producer took after that append
    (``client.pid``): the Java client's bump renumbered the batch from sequence 0 and wrote it again. And
    ``int-nonmonotonic-poll`` whose values include such a duplicate. Anything else stays unexplained."""
    gaps = _gap_first_appends(trace)
    sends: dict[tuple[Any, Any], int] = {}
    copies: dict[tuple[str, Any], list[Any]] = {}
    for e in trace:
        if e.kind == "client.op" and e.op == "produce":
            k = (e.args.get("topic"), e.args.get("value"))
            sends[k] = sends.get(k, 0) + 1
        elif e.kind == "log.append":
            for _offset, _key, value in e.records:
                copies.setdefault((str(e.tp), value), []).append(e)
    bumps = [e for e in trace if e.kind == "client.pid" and e.transactional_id is None]
    explained: set[int] = set()
    duplicated: set[tuple[str, Any]] = set()
    for i, a in enumerate(anomalies):
        facts = a.witness[0] if a.witness else {}
        key = (facts.get("key"), facts.get("value"))
        if a.name != "duplicate" or sends.get((str(key[0]).rpartition("-")[0], key[1])) != 1:
            continue
        appends = copies.get(key, [])
        if len(appends) != 2 or appends[0] not in gaps:
            continue
        first, again = appends
        if (again.producer_id == first.producer_id and again.producer_epoch > first.producer_epoch
                and any(first.seq < b.seq < again.seq and b.producer_id == first.producer_id
                        and b.producer_epoch == again.producer_epoch for b in bumps)):
            explained.add(i)
            duplicated.add(key)
    for i, a in enumerate(anomalies):
        facts = a.witness[0] if a.witness else {}
        if a.name == "int-nonmonotonic-poll" and any((facts.get("key"), v) in duplicated
                                                     for v in facts.get("values") or ()):
            explained.add(i)
    return explained


SHORT_MAX = 32767  # Short.MaxValue: the last producer epoch


def _stuck_ongoing(anomalies: Sequence[Any], trace: Sequence[Event], epoch: int,
                   cause: Callable[[dict[str, Any], Any, Any], bool]) -> set[int]:
    """The ``unresolved-transaction`` anomalies whose one witness is its transaction going Ongoing at ``epoch``,
    that never changed state afterwards (adding partitions keeps it Ongoing; any other state is an end the
    sweep or the producer reached), and for which ``cause(witness, transactional_id, producer_id)`` finds the
    documented mechanism in the trace."""
    explained: set[int] = set()
    for i, a in enumerate(anomalies):
        if a.name != "unresolved-transaction" or len(a.witness) != 1:
            continue
        (w,) = a.witness
        d = w.get("data", {})
        if w.get("kind") != "txn.state" or d.get("new") != "Ongoing" or d.get("producer_epoch") != epoch:
            continue
        tid, pid = d.get("transactional_id"), d.get("producer_id")
        left = any(e.kind == "txn.state" and e.seq > w["seq"] and e.transactional_id == tid and e.new != "Ongoing"
                   for e in trace)
        if not left and cause(w, tid, pid):
            explained.add(i)
    return explained


def _fence_at_exhausted_epoch_hangs(anomalies: Sequence[Any], trace: Sequence[Event]) -> set[int]:
    """``unresolved-transaction`` whose transaction went Ongoing at epoch Short.MaxValue on a producer id whose
    coordinator timeout fence (``txn.timeout``) had bumped it to Short.MaxValue, and that never left Ongoing
    again: Kafka 4.1.2's TV2 fence-abort keeps the producer id at an exhausted epoch, and its sweep cannot fence
    Short.MaxValue. An unresolved transaction at any other epoch, or one the sweep did not bring there, stays
    unexplained."""
    def swept_there(w: dict[str, Any], tid: Any, pid: Any) -> bool:
        return any(e.kind == "txn.timeout" and e.seq < w["seq"] and e.node == w["node"]
                   and (e.transactional_id, e.producer_id, e.producer_epoch) == (tid, pid, SHORT_MAX) for e in trace)

    return _stuck_ongoing(anomalies, trace, SHORT_MAX, swept_there)


def _failed_fence_at_exhausted_epoch_hangs(anomalies: Sequence[Any], trace: Sequence[Event]) -> set[int]:
    """``unresolved-transaction`` whose transaction went Ongoing at epoch Short.MaxValue - 1 and then met a fence
    (the coordinator's PrepareAbort at Short.MaxValue on that producer id) whose ``__transaction_state`` append
    failed, and never changed state again: the failed fence leaves the epoch at Short.MaxValue in memory, and
    ``prepareFenceProducerEpoch`` refuses Short.MaxValue before it looks at ``hasFailedEpochFence``, so neither a
    retried InitProducerId nor a timeout sweep can end it. Anything else stays unexplained."""
    def failed_fence(w: dict[str, Any], tid: Any, pid: Any) -> bool:
        fences = {e.write_id for e in trace
                  if e.kind == "txn.log" and e.seq > w["seq"] and e.node == w["node"] and e.state == "PrepareAbort"
                  and (e.transactional_id, e.producer_id, e.producer_epoch) == (tid, pid, SHORT_MAX)}
        return any(e.kind == "fault.error" and e.msg == "TxnLogAppend" and e.transactional_id == tid
                   and e.write_id in fences for e in trace)

    return _stuck_ongoing(anomalies, trace, SHORT_MAX - 1, failed_fence)

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
    KnownFinding(name="failed-fence-at-exhausted-epoch-hangs",
            scenario="experiments/findings/failed-fence-at-exhausted-epoch-hangs.toml",
            source="Kafka TransactionMetadata.prepareFenceProducerEpoch (the Short.MaxValue check, IllegalStateException, "
                   "comes before hasFailedEpochFence), TransactionCoordinator.handleInitProducerId (an Ongoing "
                   "transaction is fenced, its epoch bumped in memory before the PrepareAbort append; a failed append "
                   "sets hasFailedEpochFence and keeps the epoch) and abortTimedOutTransactions (the sweep fences "
                   "through the same call). The overflow of KAFKA-20090 reached through a failed fence at 32766. "
                   "Simulator-only: the scenario needs aged state (conformance = false)",
            explains=_failed_fence_at_exhausted_epoch_hangs),
    KnownFinding(name="implicit-ack-of-a-lost-first-batch",
            scenario="experiments/findings/implicit-ack-of-a-lost-first-batch.toml",
            source="Kafka ProducerAppendInfo.checkSequence (a new epoch with a first sequence other than 0 is refused "
                   "only when the partition has a producer epoch: at NO_PRODUCER_EPOCH any first sequence is "
                   "appended); librdkafka rdkafka_request.c rd_kafka_handle_idempotent_Produce_success "
                   "(acked_msgid < first_msgid - 1) and rdkafka_broker.c rd_kafka_dr_implicit_ack (re-queued "
                   "messages reported PERSISTED without an offset); rd_kafka_broker_producer_serve sends before "
                   "its request timeout scan. Simulator-only (conformance = false)",
            explains=_implicit_ack_of_a_gap),
    KnownFinding(name="idempotent-epoch-bump-rewrites-a-first-batch",
            scenario="experiments/findings/idempotent-epoch-bump-rewrites-a-first-batch.toml",
            source="Kafka ProducerAppendInfo.checkSequence (any first sequence at NO_PRODUCER_EPOCH); the Java "
                   "client's Sender.completeBatch (REQUEST_TIMED_OUT retried, sequences kept), "
                   "TransactionManager.canRetry (OUT_OF_ORDER_SEQUENCE_NUMBER for the next sequence, idempotent, no "
                   "unresolved sequence: requestEpochBumpForPartition), bumpIdempotentEpochAndResetIdIfNeeded and "
                   "TxnPartitionMap.startSequencesAtBeginning (the in-flight batches renumbered from 0 at the new "
                   "epoch, an appended one included). Simulator-only (conformance = false)",
            explains=_epoch_bump_rewrites_a_gap),
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
