"""librdkafka's client-side assignors (sim/_client/assignors.py): the classic group leader's arithmetic."""

from __future__ import annotations

from eosim._client.assignors import range_assignor, roundrobin_assignor
from eosim.models.records import TopicPartition


def tps(topic, *partitions):
    return tuple(TopicPartition(topic, p) for p in partitions)


def test_range_gives_consecutive_ranges_per_topic_the_first_members_one_more():
    # rd_kafka_assign_ranges: members sorted by id; 7 partitions over 3 members: 3, 2, 2
    result = range_assignor({"m3": ("t",), "m1": ("t", "u"), "m2": ("t",)}, {"t": 7, "u": 2})
    assert result == {"m1": tps("t", 0, 1, 2) + tps("u", 0, 1), "m2": tps("t", 3, 4), "m3": tps("t", 5, 6)}


def test_range_leaves_a_member_without_partitions_when_there_are_too_few():
    assert range_assignor({"a": ("t",), "b": ("t",)}, {"t": 1}) == {"a": tps("t", 0), "b": ()}


def test_roundrobin_deals_partitions_in_topic_order_to_subscribed_members():
    # rdkafka_roundrobin_assignor.c: the next member (by id) subscribed to the partition's topic
    result = roundrobin_assignor({"a": ("t", "u"), "b": ("t",)}, {"t": 3, "u": 2})
    assert result == {"a": tps("t", 0, 2) + tps("u", 0, 1), "b": tps("t", 1)}


def test_unknown_topics_are_left_out():
    assert range_assignor({"a": ("missing",)}, {}) == {"a": ()}
