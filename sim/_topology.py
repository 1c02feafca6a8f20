"""eosim._topology
===============

The cluster as the scenario format and both backends name it: the broker nodes, the listener port, and
the test profile every scenario's [cluster] table starts from. Backend-neutral (no SimPy): the scenario
loader, the simulated cluster (sim/_cluster.py) and the real-Kafka driver (sim/_realkafka) read it.
"""

from __future__ import annotations

from typing import Any, Mapping

from eosim.models.config import BrokerConfig

# The cluster every scenario runs on unless its [cluster] table overrides a key: Kafka's defaults plus
# the test settings the conformance suite's real broker is started with (sim/_realkafka/broker.py reads
# this table), so both backends run the same configuration.
TEST_CLUSTER_PROFILE: dict[str, Any] = {
    "offsets.topic.num.partitions": 1,
    "transaction.state.log.num.partitions": 1,
    "group.initial.rebalance.delay.ms": 0,
    "group.min.session.timeout.ms": 500,
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500,
}

BROKERS = ("broker-1",)  # the broker nodes, as traces and scenarios (nemesis nodes, fault selectors) name them
MAX_BROKERS = 5  # [cluster] brokers: the simulator's bound
# [cluster] keys that describe the cluster's shape rather than a broker property (BrokerConfig)
SHAPE_KEYS = ("brokers",)
# Topic configs a scenario's [[topics]] config may set (Kafka's names; TopicConfig), with their type
TOPIC_CONFIGS: dict[str, type] = {"min.insync.replicas": int, "unclean.leader.election.enable": bool}
PORT = 9092  # the listener a client's bootstrap.servers names (host:port), Kafka's default
# How long a simulated coordinator takes to load its partition after an election (TSM.loadTransactionsForTxnTopicPartition,
# CoordinatorRuntime's loader: a scheduled read of the whole partition; a few ms for the logs of a scenario).
COORDINATOR_LOAD_MS = 10


def cluster_config(overrides: Mapping[str, Any]) -> BrokerConfig:
    """The brokers' configuration: the test profile plus a scenario's [cluster] (its shape keys aside)."""
    return BrokerConfig.from_kafka({**TEST_CLUSTER_PROFILE,
                                    **{k: v for k, v in overrides.items() if k not in SHAPE_KEYS}})


# With several brokers, each internal topic has one partition whose replicas are on brokers k+1, k+2, ... (mod N)
# for its k here, the first its preferred leader (sim/_cluster.py; the real cluster's driver places them the same).
INTERNAL_FIRST_BROKER = {"__transaction_state": 0, "__consumer_offsets": 1}
INTERNAL_REPLICATION_FACTOR = 3  # offsets.topic.replication.factor, transaction.state.log.replication.factor


def internal_replicas(topic: str, brokers: int) -> list[int]:
    """The replicas of the internal topic's one partition in an N-broker cluster, its preferred leader first."""
    first = INTERNAL_FIRST_BROKER[topic]
    return [(first + j) % brokers + 1 for j in range(min(INTERNAL_REPLICATION_FACTOR, brokers))]


def broker_count(cluster: Mapping[str, Any]) -> int:
    return int(cluster.get("brokers", 1))


def broker_nodes(n: int) -> tuple[str, ...]:
    """The node names of a cluster of ``n`` brokers: broker-1 .. broker-n (the first is BROKERS[0])."""
    return tuple(f"broker-{i}" for i in range(1, n + 1))
