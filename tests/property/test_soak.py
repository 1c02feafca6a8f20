"""The soak's workloads (experiments/soak.py) are valid scenarios, and their files replay them."""

from __future__ import annotations

from pathlib import Path

import attrs

from eosim._checkers import Anomaly
from eosim._runner import run_file
from eosim._scenario import load_scenario_text, scenario_from_dict, scenario_to_dict
from eosim._findings import KNOWN_FINDINGS, classify
from eosim.experiments.soak import HEADER, false_alarm, generate, soak, to_toml

ROOT = Path(__file__).resolve().parents[2]


def test_every_generated_workload_loads_and_its_file_gives_the_same_scenario():
    for seed in range(200):
        document = generate(seed)
        name = document["scenario"]["name"]
        scenario = scenario_from_dict(document, name=name, header=HEADER)
        again = load_scenario_text(to_toml(document), name)
        assert scenario_to_dict(again) == scenario_to_dict(scenario)


def test_a_sample_of_the_soak_has_no_false_alarm():
    """40 soak runs (experiments/soak.py runs 10,000): no false alarm (an INVALID no documented finding explains,
    or a crash), and an unknown verdict names the Kafka timer that leaves it undecided."""
    results = soak(range(40))
    assert [r for r in results if false_alarm(r)] == []
    for r in results:
        if r["verdict"] == "unknown":
            assert all("undecided" in d for d in r["details"]), r


def _documented_run(name: str = "txn-abort-sequence-reuse"):
    (finding,) = [f for f in KNOWN_FINDINGS if f.name == name]
    outcome = run_file(ROOT / finding.scenario)
    return outcome.result.anomalies, list(outcome.trace)


def test_the_documented_sequence_reuse_after_an_abort_is_a_finding_not_a_false_alarm():
    anomalies, trace = _documented_run()
    assert sorted(a.name for a in anomalies) == ["lost-write", "sequence-reuse"]
    assert classify(anomalies, trace) == ["txn-abort-sequence-reuse"]
    assert not false_alarm({"verdict": "INVALID", "findings": classify(anomalies, trace)})


def test_the_classifier_hides_nothing_else():
    """Strict: without the abort that causes it, a sequence reuse is a false alarm; so is a lost write that no
    deduplicated reuse explains, and a run with any other anomaly besides the finding."""
    anomalies, trace = _documented_run()
    no_abort = [e for e in trace if not (e.kind == "log.marker" and e.control == "ABORT")]
    assert classify(anomalies, no_abort) is None
    lost = [a for a in anomalies if a.name == "lost-write"]
    assert classify(lost, trace) is None
    other = Anomaly(name="duplicate", description="another anomaly", witness=())
    assert classify([*anomalies, other], trace) is None
    assert classify([], trace) is None
    assert false_alarm({"verdict": "INVALID", "findings": None}) and false_alarm({"verdict": "crash", "findings": None})


def test_a_poll_skip_over_a_deduplicated_record_is_the_same_finding():
    """A reader that reads on past the offset the producer was told (the aborted batch's) skips the lost
    record: explained only when every skipped value is one the reuse got deduplicated."""
    anomalies, trace = _documented_run()
    (lost,) = [a for a in anomalies if a.name == "lost-write"]
    key, value = lost.witness[0]["key"], lost.witness[0]["value"]

    def skip(*values: str) -> Anomaly:
        return Anomaly(name="int-poll-skip", description="a skip", witness=({"key": key, "skipped": list(values)},))

    assert classify([*anomalies, skip(value)], trace) == ["txn-abort-sequence-reuse"]
    assert classify([*anomalies, skip(value, "another")], trace) is None
    assert classify([*anomalies, skip()], trace) is None


def _library_run(name: str):
    outcome = run_file(ROOT / "experiments" / "scenarios" / f"{name}.toml")
    return outcome.result.anomalies, list(outcome.trace)


def test_a_non_idempotent_producers_retry_duplicate_is_a_finding_only_when_the_broker_wrote_it():
    """A plain producer's retry after a lost answer writes a second copy (at-least-once by design): a finding, so
    exploring around a base with a plain producer does not report it. The same duplicate from an idempotent
    producer, or from an application that produced the value twice, stays unexplained."""
    anomalies, trace = _documented_run("non-idempotent-retry-duplicate")
    assert sorted(a.name for a in anomalies) == ["duplicate", "int-nonmonotonic-poll"]
    assert classify(anomalies, trace) == ["non-idempotent-retry-duplicate"]
    assert classify(*_library_run("fault-disconnect-duplicate")) == ["non-idempotent-retry-duplicate"]
    for name in ("fault-producer-id-expired-duplicate",  # an idempotent producer's duplicate
                 "fault-message-timeout-resend-duplicate",  # the application sends the value again
                 "at-least-once-commit-after"):  # a pipeline that reprocesses
        assert classify(*_library_run(name)) is None, name
    # the poll anomaly alone is not explained: it needs the duplicate it follows from
    assert classify([a for a in anomalies if a.name == "int-nonmonotonic-poll"], trace) is None
    # a copy written with a producer id is not a plain producer's retry
    pid_trace = [attrs.evolve(e, producer_id=7) if e.kind == "log.append" else e for e in trace]
    assert classify(anomalies, pid_trace) is None


def test_a_tv2_zombie_revived_by_a_retry_after_a_tv1_abort_is_a_finding_only_with_that_mechanism():
    """Kafka 4.x takes a TV2 zombie's abort one epoch behind a TV1-aborted transaction for a retry and hands it the
    live epoch (mixed-tv-abort-revives-zombie, measured on Kafka 4.1.2). The classifier demands the TV1 end at the
    shared epoch, the TV2 EndTxn one epoch behind, and its NONE answer; the shrunk finding of the search is it."""
    anomalies, trace = _documented_run("mixed-tv-abort-revives-zombie")
    assert [a.name for a in anomalies] == ["shared-producer-epoch"]
    assert classify(anomalies, trace) == ["mixed-tv-abort-revives-zombie"]
    found = run_file(ROOT / "experiments" / "findings" / "java-tv2-zombie-abort-shares-epoch.toml")
    assert classify(found.result.anomalies, list(found.trace)) == ["mixed-tv-abort-revives-zombie"]

    def ends(tv: int):  # every EndTxn sent at that transaction version instead
        return [attrs.evolve(e, fields=attrs.evolve(e.fields, transaction_version=tv))
                if e.kind == "net.request" and e.msg == "EndTxnRequest" else e for e in trace]

    assert classify(anomalies, ends(2)) is None  # an all-TV2 id: the completed end bumped, no retry to take
    assert classify(anomalies, ends(1)) is None  # the zombie's end was TV1: not this mechanism
    no_answer = [e for e in trace if not (e.kind == "net.response" and e.msg == "EndTxnResponse")]
    assert classify(anomalies, no_answer) is None
    other = Anomaly(name="lost-write", description="another anomaly", witness=())
    assert classify([*anomalies, other], trace) is None


def test_a_transaction_left_at_short_max_by_a_timeout_fence_is_a_finding_only_with_that_mechanism():
    """Kafka 4.1.2's TV2 timeout abort at 32766 keeps the producer id at 32767 and hands that epoch to the
    producer, whose next transaction no sweep can fence (timeout-fence-at-exhausted-epoch-hangs, KAFKA-20090).
    The classifier demands the Ongoing at Short.MaxValue, the sweep's fence to it on that producer id, and no
    later state but Ongoing (a partition added); the shrunk finding of the search is it."""
    anomalies, trace = _documented_run("timeout-fence-at-exhausted-epoch-hangs")
    assert [a.name for a in anomalies] == ["unresolved-transaction"]
    assert classify(anomalies, trace) == ["timeout-fence-at-exhausted-epoch-hangs"]
    no_fence = [e for e in trace if e.kind != "txn.timeout"]
    assert classify(anomalies, no_fence) is None  # Short.MaxValue not reached by the sweep's fence
    (a,) = anomalies
    (w,) = a.witness
    lower = attrs.evolve(a, witness=({**w, "data": {**w["data"], "producer_epoch": 32766}},))
    assert classify([lower], trace) is None  # an unresolved transaction the sweep can still fence
    ongoing = [e for e in trace if e.kind == "txn.state" and e.seq == w["seq"]]
    added = [*trace, attrs.evolve(ongoing[0], seq=trace[-1].seq + 1, old="Ongoing")]
    assert classify(anomalies, added) == ["timeout-fence-at-exhausted-epoch-hangs"]  # a partition added: still stuck
    resolved = [*trace, attrs.evolve(ongoing[0], seq=trace[-1].seq + 1, old="Ongoing", new="PrepareAbort")]
    assert classify(anomalies, resolved) is None  # it left Ongoing afterwards: not stuck
    other = Anomaly(name="lost-write", description="another anomaly", witness=())
    assert classify([*anomalies, other], trace) is None


def test_a_transaction_left_at_short_max_by_a_failed_fence_is_a_finding_only_with_that_mechanism():
    """An InitProducerId fences an Ongoing transaction at 32766 (32767 in memory) and the PrepareAbort append
    fails: prepareFenceProducerEpoch then refuses Short.MaxValue before it looks at hasFailedEpochFence, so no
    retry and no sweep ends the transaction (failed-fence-at-exhausted-epoch-hangs). The classifier demands the
    Ongoing at 32766, the failed PrepareAbort at 32767 on that producer id, and no later state but Ongoing."""
    anomalies, trace = _documented_run("failed-fence-at-exhausted-epoch-hangs")
    assert [a.name for a in anomalies] == ["unresolved-transaction"]
    assert classify(anomalies, trace) == ["failed-fence-at-exhausted-epoch-hangs"]
    appended = [e for e in trace if not (e.kind == "fault.error" and e.msg == "TxnLogAppend")]
    assert classify(anomalies, appended) is None  # the fence's append did not fail
    (a,) = anomalies
    (w,) = a.witness
    lower = attrs.evolve(a, witness=({**w, "data": {**w["data"], "producer_epoch": 32765}},))
    assert classify([lower], trace) is None  # a fence to 32766, which a retry or the sweep can still end
    ongoing = [e for e in trace if e.kind == "txn.state" and e.seq == w["seq"]]
    resolved = [*trace, attrs.evolve(ongoing[0], seq=trace[-1].seq + 1, old="Ongoing", new="PrepareAbort")]
    assert classify(anomalies, resolved) is None  # it left Ongoing afterwards: not stuck
    other = Anomaly(name="lost-write", description="another anomaly", witness=())
    assert classify([*anomalies, other], trace) is None


def _gap_to_zero(trace):
    """The trace with every append's base sequence 0: the partition's first batch of each id is in order."""
    return [attrs.evolve(e, base_sequence=0) if e.kind == "log.append" else e for e in trace]


def test_an_implicit_ack_of_a_lost_first_batch_is_a_finding_only_with_that_mechanism():
    """librdkafka's idempotent producer loses sequence 0 and a later batch is the partition's first one for the id,
    appended at sequence 1 (Kafka accepts any first sequence at NO_PRODUCER_EPOCH); its success implicitly acks the
    lost message, reported PERSISTED without an offset (implicit-ack-of-a-lost-first-batch). The classifier demands
    the first append at a sequence above 0 with no state before it, and the offset-less PERSISTED report after it."""
    anomalies, trace = _documented_run("implicit-ack-of-a-lost-first-batch")
    assert [a.name for a in anomalies] == ["lost-write"]
    assert classify(anomalies, trace) == ["implicit-ack-of-a-lost-first-batch"]
    assert classify(anomalies, _gap_to_zero(trace)) is None  # an in-order first batch acks nothing it skipped
    (append,) = [e for e in trace if e.kind == "log.append"]
    state = attrs.evolve(append, seq=0, base_sequence=0, records=[])
    assert classify(anomalies, [state, *trace]) is None  # the partition held state for the id: not a gap
    no_report = [e for e in trace if not (e.kind == "client.op" and e.op == "delivery")]
    assert classify(anomalies, no_report) is None
    (a,) = anomalies
    at_offset = attrs.evolve(a, witness=({**a.witness[0], "offset": 0}, *a.witness[1:]))
    assert classify([at_offset], trace) is None  # a lost write reported at an offset is not an implicit ack
    other = Anomaly(name="duplicate", description="another anomaly", witness=())
    assert classify([*anomalies, other], trace) is None


def test_an_idempotent_epoch_bump_that_rewrites_a_first_batch_is_a_finding_only_with_that_mechanism():
    """The Java idempotent producer's sequence 1 is the partition's first batch for its id (appended, answer lost);
    the retry of sequence 0 gets OUT_OF_ORDER_SEQUENCE_NUMBER, the client bumps the epoch and renumbers both batches
    from 0, writing sequence 1's record again (idempotent-epoch-bump-rewrites-a-first-batch). The classifier demands
    the out-of-order first append, the local bump after it, and the second copy at the bumped epoch."""
    anomalies, trace = _documented_run("idempotent-epoch-bump-rewrites-a-first-batch")
    assert sorted(a.name for a in anomalies) == ["duplicate", "int-nonmonotonic-poll"]
    assert classify(anomalies, trace) == ["idempotent-epoch-bump-rewrites-a-first-batch"]
    assert classify(anomalies, _gap_to_zero(trace)) is None
    no_bump = [e for e in trace if e.kind != "client.pid" or e.producer_epoch == 0]
    assert classify(anomalies, no_bump) is None  # a copy at another epoch the producer never took
    same_epoch = [attrs.evolve(e, producer_epoch=0) if e.kind == "log.append" else e for e in trace]
    assert classify(anomalies, same_epoch) is None  # two copies at one epoch: not a renumbering
    # the poll anomaly alone is not explained: it needs the duplicate it follows from
    assert classify([a for a in anomalies if a.name == "int-nonmonotonic-poll"], trace) is None
    other = Anomaly(name="lost-write", description="another anomaly", witness=())
    assert classify([*anomalies, other], trace) is None
