"""eosim.models.bugs
===========

Kafka's historical exactly-once bugs that the models can bring back, one entry per JIRA
(/work/shared/docs/kafka-eos-reference.md §8). ``BrokerConfig.eosim_reintroduce`` (key
``eosim.reintroduce``) lists the ids to switch back on; each rule site asks
``config.reintroduces(id)`` and keeps the old behaviour beside the fix.

A bug whose ``kafka_switch`` is set needs no flag of ours: one of Kafka's own settings brings it back
already, so ``eosim.reintroduce`` refuses its id and points there. docs/historical-bugs.md lists the
bugs with their scenarios.
"""

from __future__ import annotations

import json

from attrs import frozen


@frozen(kw_only=True)
class Bug:
    title: str
    fixed_in: str  # the first branches with the fix, backports included (§8)
    reference: str  # section of the EOS reference (kafka-eos-reference.md)
    reintroduced: str  # what the model does again when the bug is switched back on
    # A [cluster] setting (key, value) that already brings it back; such a bug is no eosim.reintroduce id.
    kafka_switch: tuple[str, object] | None = None


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
        fixed_in="4.0.x, 4.1",
        reference="§8.14b",
        reintroduced="a TV2 abort started by a fence keeps the fence's bump and bumps again",
    ),
    "KAFKA-19690": Bug(
        title="stale-epoch produce gets INVALID_TXN_STATE instead of INVALID_PRODUCER_EPOCH",
        fixed_in="3.9.x, 4.0.x",
        reference="§8.15",
        reintroduced="the verification guard is checked before the producer epoch",
    ),
}


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
