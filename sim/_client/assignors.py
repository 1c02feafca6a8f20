"""eosim._client.assignors
====================

librdkafka's client-side partition assignors for the classic protocol: the group leader runs the one the
group chose (the JoinGroup protocol name) over the members' subscriptions and the topics' partition
counts, and sends the result in its SyncGroup. ``partition.assignment.strategy`` lists the ones a member
offers, in preference order (librdkafka default ``range,roundrobin``). Without racks, as here:

* ``range`` (rdkafka_range_assignor.c, ``rd_kafka_assign_ranges``): per topic, the members subscribed to
  it sorted by member id get consecutive ranges of its partitions; the first ``n % members`` one more.
* ``roundrobin`` (rdkafka_roundrobin_assignor.c): every subscribed partition, sorted by topic then
  partition, goes to the next member (sorted by member id) subscribed to its topic.

``cooperative-sticky`` (incremental rebalancing) is not modelled.
"""

from __future__ import annotations

from typing import Callable

from eosim.models.records import TopicPartition

Subscriptions = dict[str, tuple[str, ...]]  # member id -> subscribed topics
Assignment = dict[str, tuple[TopicPartition, ...]]


def range_assignor(subscriptions: Subscriptions, partition_counts: dict[str, int]) -> Assignment:
    assignment: dict[str, list[TopicPartition]] = {m: [] for m in sorted(subscriptions)}
    for topic in sorted({t for topics in subscriptions.values() for t in topics if t in partition_counts}):
        consumers = [m for m in sorted(subscriptions) if topic in subscriptions[m]]
        per_consumer, extra = divmod(partition_counts[topic], len(consumers))
        for i, member_id in enumerate(consumers):
            start = per_consumer * i + min(i, extra)
            count = per_consumer + (1 if i < extra else 0)
            assignment[member_id] += [TopicPartition(topic, p) for p in range(start, start + count)]
    return {m: tuple(tps) for m, tps in assignment.items()}


def roundrobin_assignor(subscriptions: Subscriptions, partition_counts: dict[str, int]) -> Assignment:
    members = sorted(subscriptions)
    assignment: dict[str, list[TopicPartition]] = {m: [] for m in members}
    turn = 0
    for topic in sorted({t for topics in subscriptions.values() for t in topics if t in partition_counts}):
        for partition in range(partition_counts[topic]):
            while topic not in subscriptions[members[turn % len(members)]]:
                turn += 1
            assignment[members[turn % len(members)]].append(TopicPartition(topic, partition))
            turn += 1
    return {m: tuple(tps) for m, tps in assignment.items()}


ASSIGNORS: dict[str, Callable[[Subscriptions, dict[str, int]], Assignment]] = {
    "range": range_assignor,
    "roundrobin": roundrobin_assignor,
}
