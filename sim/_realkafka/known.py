"""eosim._realkafka.known
===================

The differences between the simulator and Kafka that are kept on purpose, each with its reason: the
one list that ``tests/conformance/test_scenarios.py``, ``eosim conform`` and
``experiments/version_matrix.py`` consult. Each is also in docs/fidelity.md. A listed difference that
stops showing up fails the conformance test, so the list stays true.
"""

from __future__ import annotations

from eosim.models.bugs import PINNED_RELEASE

# Where the simulated Java client (sim/_client/, eosim.client = "java") is not yet the real Java client
# 4.1.2: scenario -> (transaction versions, {diff path prefix: what the real client does}). Found by
# the Java lane; the simulated client's semantics are producer-split's (issue 8), not the driver's.
_JAVA_CLIENT_GAPS: dict[str, tuple[tuple[int, ...], dict[str, str]]] = {
    "kip848-zombie-ctp-fenced": ((1, 2), {
        "steps[16].outcome": "the Java producer turns TxnOffsetCommit's UNKNOWN_MEMBER_ID into a CommitFailedException "
                             "(TransactionManager.TxnOffsetCommitHandler), an abortable error with no ApiException "
                             "cause, which the Java actor reports as _STATE",
    }),
    "fenced-producer-errors": ((1, 2), {
        "steps[7].": "produce after the fatal ProducerFencedException does not throw: KafkaProducer.doSend "
                     "catches the ApiException of TransactionManager.maybeAddPartition and completes the send's "
                     "callback with PRODUCER_FENCED (the simulated client raises librdkafka's _FATAL)",
        "steps[8].outcome": "poll does not raise the fatal error again: the Java client has no poll and no "
                            "one-time fatal-error event (librdkafka's, which the simulated client raises)",
    }),
    # with every actor on Java, p3 speaks TV2 too and p1's abort is fenced; p1's next send meets the same gap
    "mixed-tv-abort-revives-zombie": ((2,), {
        "steps[11].": "produce after the fatal ProducerFencedException does not throw: the send's callback gets "
                      "PRODUCER_FENCED, as in fenced-producer-errors",
    }),
    "transactional-state-errors": ((1, 2), {
        "steps[0].values[delivery]": "a send refused with IllegalStateException (_STATE) is appended to the "
                                     "accumulator first (KafkaProducer.doSend, then maybeAddPartition): e0 and e1 "
                                     "stay queued and are written and committed with the next transaction",
        "steps[5].values[delivery]": "the same for e1 (initialised, no transaction begun)",
        "steps[12].values[delivery]": "e2 lands behind them, at offset 2",
        "partitions[out-0]": "e0, e1, e2 committed at 0-2, marker at 3",
    }),
    "txn-abort-sequence-reuse": ((1, 2), {
        "steps[2].values": "the Java client does not purge on abort: the produce whose response was dropped is "
                           "retried after request.timeout.ms and delivered (offset 0) before the abort",
    }),
    "unstable-offset-commit": ((1, 2), {
        "steps[15].": "the Java consumer's committed() always asks require_stable (KIP-447), so a read_uncommitted "
                      "consumer also waits out the pending transactional offset and times out (_TIMED_OUT)",
    }),
}

# On TV1 only: there the simulated Java client keeps its epoch after a clean abort (on TV2 its EndTxn v5 bumps it,
# as the real client's does, so b is not deduplicated away there either).
_JAVA_TV1_GAPS: dict[str, dict[str, str]] = {
    "txn-abort-sequence-reuse": {
        "steps[6].values[delivery]": "after the abort the Java client bumps the epoch (a failed batch), so b is "
                                     "not deduplicated away: no librdkafka-style lost write",
        "steps[9].values[records]": "the reader sees b",
        "partitions[out-0]": "b committed at offset 2",
    },
}

# Only on some releases, where the broker's answer leads the simulated Java client into one of the gaps above:
# (scenario, transaction.version, release) -> {diff path prefix: what the real client does}.
_JAVA_RELEASE_GAPS: dict[tuple[str, int, str], dict[str, str]] = {
    # 4.0.0 fences the timed-out producer (KAFKA-19367), so its next produce meets fenced-producer-errors' gap.
    ("java-tv2-timeout-recovers", 2, "4.0.0"): {
        "steps[10].": _JAVA_CLIENT_GAPS["fenced-producer-errors"][1]["steps[7]."],
    },
}

# Differences kept on purpose: (lane, scenario, transaction.version) -> {diff path prefix: why the model
# may differ}. Each is also listed in docs/fidelity.md; an entry that no longer shows up fails the test,
# so the list stays true.
KNOWN_DIFFERENCES: dict[tuple[str | None, str, int], dict[str, str]] = {
    ("java", name, tv): {**prefixes, **(_JAVA_TV1_GAPS.get(name, {}) if tv == 1 else {})}
    for name, (tvs, prefixes) in _JAVA_CLIENT_GAPS.items() for tv in tvs}


def explain(lane: str | None, scenario: str, transaction_version: int, lines: list[str],
            release: str = PINNED_RELEASE) -> tuple[list[str], list[str]]:
    """(the diff lines no known difference explains, the known prefixes no line shows any more) for a
    run on ``lane`` (None: each actor's own client) at ``transaction_version`` on Kafka ``release``."""
    known = {**KNOWN_DIFFERENCES.get((lane, scenario, transaction_version), {}),
             **(_JAVA_RELEASE_GAPS.get((scenario, transaction_version, release), {}) if lane == "java" else {})}
    unexplained = [line for line in lines if not any(line.startswith(prefix) for prefix in known)]
    stale = [prefix for prefix in known if not any(line.startswith(prefix) for line in lines)]
    return unexplained, stale
