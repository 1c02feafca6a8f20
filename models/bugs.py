"""eosim.models.bugs
===========

Kafka's historical exactly-once bugs that the models can bring back, one entry per JIRA
(/work/shared/docs/kafka-eos-reference.md §8). ``BrokerConfig.eosim_reintroduce`` (key
``eosim.reintroduce``) lists the ids to switch back on; each rule site asks
``config.reintroduces(id)`` and keeps the old behaviour beside the fix.

A bug whose ``kafka_switch`` is set needs no flag of ours: one of Kafka's own settings brings it back
already, so ``eosim.reintroduce`` refuses its id and points there. docs/historical-bugs.md lists the
bugs with their scenarios.

Releases. Each bug also lists the Kafka 4.x releases that still have it (``affects``, inclusive ranges
over ``KAFKA_RELEASES``), and the broker's release (``BrokerConfig.eosim_kafka_version``, key
``eosim.kafka.version``, default the pinned ``PINNED_RELEASE``) switches on exactly those: the model then
answers as that release does (docs/version-matrix.md). The ranges were read from the released jars
(Maven Central): the fix's code is in the class files of the releases outside them.
"""

from __future__ import annotations

import functools
import json
import re

from eosim.models.values import frozen

# The 4.x releases on Maven Central (kafka_2.13 maven-metadata.xml, Dec 2026), oldest first: the releases the
# model knows the bugs of. The pinned one is what the library's observations are recorded against.
KAFKA_RELEASES: tuple[str, ...] = (
    "4.0.0", "4.0.1", "4.0.2", "4.1.0", "4.1.1", "4.1.2", "4.2.0", "4.2.1", "4.2.2",
    "4.3.0", "4.3.1", "4.3.2", "4.4.0",
)
PINNED_RELEASE = "4.1.2"


@frozen(kw_only=True)
class Bug:
    title: str
    fixed_in: str  # the first branches with the fix, backports included (§8)
    reference: str  # section of the EOS reference (kafka-eos-reference.md)
    reintroduced: str  # what the model does again when the bug is switched back on
    # A [cluster] setting (key, value) that already brings it back; such a bug is no eosim.reintroduce id.
    kafka_switch: tuple[str, object] | None = None
    # The 4.x releases that have it, as inclusive (first, last) ranges of KAFKA_RELEASES; () for none.
    affects: tuple[tuple[str, str], ...] = ()
    affects_source: str = ""  # where the ranges come from

    def affects_release(self, release: str) -> bool:
        key = release_key(release)
        return any(release_key(first) <= key <= release_key(last) for first, last in self.affects)


HISTORICAL_BUGS: dict[str, Bug] = {
    "KAFKA-5494": Bug(
        title="in-flight dedup window too small",
        fixed_in="1.0",
        reference="§8.1",
        reintroduced="the leader caches one batch per producer (0.11), so a retry of an older in-flight batch "
        "is not a duplicate but OUT_OF_ORDER_SEQUENCE_NUMBER",
    ),
    "KAFKA-6119": Bug(
        title="coordinator timeout abort without fencing",
        fixed_in="0.11.0.x, 1.0",
        reference="§8.2",
        reintroduced="the coordinator aborts a timed-out transaction at the producer's own epoch (TV1), so the "
        "producer can go on writing to the partitions it added",
    ),
    "KAFKA-12671": Bug(
        title="hanging transaction from a produce that lands after the abort marker",
        fixed_in="3.6 (KIP-890 part 1)",
        reference="§8.3, §4.1",
        reintroduced="the leader appends a transactional batch without asking the coordinator",
        kafka_switch=("transaction.partition.verification.enable", False),
    ),
    "KAFKA-9144": Bug(
        title="producer state expires early because marker timestamps are ignored",
        fixed_in="2.2.x-2.5",
        reference="§8.5",
        reintroduced="a marker leaves the producer entry's last timestamp at its last data batch, so the "
        "entry (epoch, coordinator epoch) can expire right after the marker",
    ),
    "KAFKA-9666": Bug(
        title="failed epoch fences bump the epoch again and again",
        fixed_in="2.6",
        reference="§8.6",
        reintroduced="a TV1 epoch fence whose txn-log write failed does not set hasFailedEpochFence, so every "
        "retry bumps the in-memory epoch once more",
    ),
    "KAFKA-16352": Bug(
        title="transaction stuck in Prepare* after a coordinator failover",
        fixed_in="3.8",
        reference="§8.8",
        reintroduced="a late marker answer from the old coordinator epoch removes the pending completion by "
        "transactional.id alone, also the one the reload queued at the new epoch, so Complete* is never written",
    ),
    "KAFKA-7692": Bug(
        title="sequence numbers do not wrap",
        fixed_in="1.1.x, 2.2",
        reference="§8.10",
        reintroduced="the sequence check has no wrap from Int.MAX_VALUE to 0",
    ),
    "KAFKA-14920": Bug(
        title="out-of-order-sequence loop under verification",
        fixed_in="3.6",
        reference="§8.11",
        reintroduced="a pending verification keeps no lowest sequence, so a later batch can be appended while "
        "an earlier one still verifies",
    ),
    "KAFKA-18464": Bug(
        title="TV2 abort while the previous transaction completes is fenced",
        fixed_in="4.0.0",
        reference="§8.12",
        reintroduced="TV2 EndTxn checks the producer id and epoch before the pending transition, so a producer "
        "using the epoch the coordinator returned gets PRODUCER_FENCED instead of CONCURRENT_TRANSACTIONS",
    ),
    "KAFKA-18660": Bug(
        title="TV2 EndTxn at an exhausted epoch returns the old producer id",
        fixed_in="4.0.0",
        reference="§8.14a",
        reintroduced="the EndTxn reply at epoch 32766 carries the old (pid, 32767) instead of (new pid, 0)",
    ),
    "KAFKA-19367": Bug(
        title="TV2 fence-abort bumps the epoch twice",
        fixed_in="4.0.1, 4.1.0",
        reference="§8.14b",
        reintroduced="a TV2 abort started by a fence keeps the fence's bump and bumps again",
        affects=(("4.0.0", "4.0.0"),),
        affects_source="apache/kafka#19910 (trunk, June 2025: 4.1.0) and #19991 (its follow-up cherry-picked to 4.0: "
        "4.0.1); 4.0.1's TransactionCoordinator has the follow-up's log message, 4.0.0's has not",
    ),
    "KAFKA-19690": Bug(
        title="stale-epoch produce gets INVALID_TXN_STATE instead of INVALID_PRODUCER_EPOCH",
        fixed_in="3.9.x, 4.0.2, 4.1.1, 4.2.0",
        reference="§8.15",
        reintroduced="the verification guard is checked before the producer epoch",
        affects=(("4.0.0", "4.0.1"), ("4.1.0", "4.1.0")),
        affects_source="apache/kafka#20534 (trunk, Sept 2025: 4.2.0), #20618 (4.1: 4.1.1), 4.0.2; the fix's "
        "InvalidProducerEpochException before 'Record was not part of an ongoing transaction' in UnifiedLog is in "
        "4.0.2, 4.1.1 and later, not in 4.0.0, 4.0.1, 4.1.0",
    ),
    "KAFKA-20785": Bug(
        title="TV2 commit that races the coordinator's timeout abort is answered INVALID_TXN_STATE (fatal)",
        fixed_in="4.3.2 (not in 4.4.0)",
        reference="§8.15, §3.7",
        reintroduced="a TV2 EndTxn(COMMIT) one epoch behind a CompleteAbort passes the epoch check as a retry and "
        "fails the state check: INVALID_TXN_STATE, where the fix answers PRODUCER_FENCED",
        affects=(("4.0.0", "4.3.1"), ("4.4.0", "4.4.0")),
        affects_source="apache/kafka#23204 (merged Aug 2026); its log message 'received a COMMIT at the pre-abort "
        "epoch' is in 4.3.2's TransactionCoordinator.class and in no other 4.x release's (4.4.0 was built before "
        "4.3.2, without it)",
    ),
}


def release_key(release: str) -> tuple[int, ...]:
    """``"4.1.2"`` -> ``(4, 1, 2)``, for comparing releases."""
    return tuple(int(part) for part in release.split("."))


def validate_release(release: object) -> str:
    """The release if the model knows its bugs.

    Raises:
        ValueError: not a string, not MAJOR.MINOR.PATCH, or not one of ``KAFKA_RELEASES``.
    """
    if not isinstance(release, str):
        raise ValueError(f"expected a Kafka release as a string like \"{PINNED_RELEASE}\", got {release!r}")
    if not re.fullmatch(r"\d+\.\d+\.\d+", release):
        raise ValueError(f"{release!r} is not a Kafka release (MAJOR.MINOR.PATCH, e.g. \"{PINNED_RELEASE}\")")
    if release not in KAFKA_RELEASES:
        raise ValueError(f"Kafka {release} is not a release the model knows the bugs of "
                         f"(known: {', '.join(KAFKA_RELEASES)})")
    return release


@functools.cache
def bugs_of(release: str) -> frozenset[str]:
    """The ids of the bugs ``release`` has (``Bug.affects``)."""
    return frozenset(b for b, bug in HISTORICAL_BUGS.items() if bug.affects_release(release))


def validate_reintroduce(bug_ids: tuple[str, ...]) -> None:
    """Refuse ids that are not switchable bugs, naming the valid ones.

    Raises:
        ValueError: an unknown id, one that has a ``kafka_switch``, or a duplicate.
    """
    switchable = [b for b, bug in HISTORICAL_BUGS.items() if bug.kafka_switch is None]
    seen: set[str] = set()
    for bug_id in bug_ids:
        bug = HISTORICAL_BUGS.get(bug_id)
        if bug is None:
            raise ValueError(f"unknown historical bug {bug_id!r} (valid: {', '.join(switchable)})")
        if bug.kafka_switch is not None:
            key, value = bug.kafka_switch
            raise ValueError(f'{bug_id} needs no eosim flag: set "{key}" = {json.dumps(value)}')
        if bug_id in seen:
            raise ValueError(f"{bug_id} is listed twice")
        seen.add(bug_id)


def cluster_switch(bug_id: str) -> tuple[str, object]:
    """The [cluster] setting (key, value) that brings ``bug_id`` back."""
    return HISTORICAL_BUGS[bug_id].kafka_switch or ("eosim.reintroduce", (bug_id,))
