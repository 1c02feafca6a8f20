"""eosim._cluster
===========

A simulated Kafka cluster: the network, ``brokers`` broker nodes (``broker-1`` .. ``broker-N``) and, when some
topic is replicated, a controller (sim/_replication.py). The first broker hosts both coordinators and leads
every single-replica topic (those of ``topics`` not in ``replicated``), the shape of the conformance suite's real broker; a replicated topic
(``replicated``: name -> its partitions, replication factor and replication settings) has its replicas spread
over the brokers, partition p on brokers p+1, p+2, ... (mod N), its leader elected by the controller.
A cluster of one broker and no replicated topic has no controller: every scenario of the library runs so.

With several brokers the coordinators move (issue 9, seam 5): ``__transaction_state`` and ``__consumer_offsets``
have one partition each (offsets.topic.num.partitions = transaction.state.log.num.partitions = 1, the test
profile), replicated on min(3, N) brokers: ``__transaction_state-0`` on brokers 1, 2, 3 and
``__consumer_offsets-0`` on brokers 2, 3, 1 (``eosim._topology.internal_replicas``), so the transaction coordinator starts on
broker-1, the group coordinator on broker-2. Every broker hosts both coordinator roles; the leader of each
partition serves (sim/_broker.py, ``coordinator_leadership``).
"""

from __future__ import annotations

from typing import Mapping

from attrs import define, field, frozen

from eosim.models.config import BrokerConfig, ReplicationConfig
from eosim.models.partition import Partition
from eosim.models.records import TopicPartition
from eosim.models.replication_control import NO_LEADER
from eosim._broker import BrokerNode
from eosim._coordinators import OFFSETS_PARTITION, TXN_STATE_PARTITION, GroupCoordinatorRole, ProducerIdBlocks, \
    TxnCoordinatorRole
from eosim._net import Network
from eosim._replication import ControllerNode
from eosim._topology import PORT, broker_nodes, internal_replicas
from eosim._world import World
from eosim._worktime import WORK_MS


# Where each internal partition's replicas are (eosim._topology.internal_replicas).
INTERNAL_PARTITIONS = (TXN_STATE_PARTITION, OFFSETS_PARTITION)


@frozen(kw_only=True)
class ReplicatedTopic:
    partitions: int
    replication_factor: int
    config: ReplicationConfig


@define(eq=False)
class Cluster:
    world: World
    broker_config: BrokerConfig
    topics: dict[str, int]  # every topic's partition count, the replicated ones' too
    work_ms: Mapping[str, tuple[int, int]] = WORK_MS  # how long the broker's internal work takes (sim/_worktime.py)
    brokers: int = 1
    replicated: Mapping[str, ReplicatedTopic] = field(factory=dict)
    network: Network = field(init=False)
    nodes: tuple[BrokerNode, ...] = field(init=False)
    controller: ControllerNode | None = field(init=False, default=None)
    # every replicated partition -> its replicas (broker ids)
    assignment: dict[TopicPartition, tuple[int, ...]] = field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self.network = Network(self.world)
        names = broker_nodes(self.brokers)
        single = {topic: n for topic, n in self.topics.items() if topic not in self.replicated}
        moving = self.brokers > 1
        config = self.broker_config
        if moving and (config.offsets_topic_num_partitions, config.transaction_state_log_num_partitions) != (1, 1):
            raise ValueError("several brokers: the internal topics have one partition each (offsets.topic.num."
                             "partitions = transaction.state.log.num.partitions = 1)")
        blocks = ProducerIdBlocks() if moving else None
        self.nodes = tuple(
            BrokerNode(self.world, self.network, self.broker_config, single if i == 0 else {}, node=name,
                       work_ms=self.work_ms, coordinators=i == 0 or moving, producer_ids=blocks)
            for i, name in enumerate(names))
        if self.replicated or moving:
            # The controller reads min.insync.replicas and unclean.leader.election.enable per topic (ELR, elections);
            # the model's controller has one ReplicationConfig, so every replicated topic must share its settings.
            # The internal topics take them too (ReplicationConfig's defaults when no data topic is replicated).
            configs = sorted({spec.config for spec in self.replicated.values()}, key=repr) or [ReplicationConfig()]
            if len(configs) > 1:
                raise ValueError(f"replicated topics with different replication settings: {configs}")
            shared = configs[0]
            self.controller = ControllerNode(self.world, self.network, shared, names)
            assignment = self.assignment
            for topic, spec in sorted(self.replicated.items()):
                if not 1 <= spec.replication_factor <= self.brokers:
                    raise ValueError(f"topic {topic!r}: replication factor {spec.replication_factor} on "
                                     f"{self.brokers} broker(s)")
                for p in range(spec.partitions):
                    tp = TopicPartition(topic, p)
                    assignment[tp] = tuple((p + j) % self.brokers + 1 for j in range(spec.replication_factor))
                    self.controller.create_partition(tp, assignment[tp])
            configs = {topic: spec.config for topic, spec in self.replicated.items()}
            if moving:
                for tp in INTERNAL_PARTITIONS:
                    assignment[tp] = tuple(internal_replicas(tp.topic, self.brokers))
                    self.controller.create_partition(tp, assignment[tp])
                    configs[tp.topic] = shared
            for node in self.nodes:
                node.host_replicas(configs, assignment)

    @property
    def broker_node(self) -> BrokerNode:
        """The first broker: the coordinators' host and every single-replica topic's leader."""
        return self.nodes[0]

    def coordinator_node(self, tp: TopicPartition) -> BrokerNode | None:
        """The node hosting the coordinator of internal partition ``tp`` now: its leader's (several brokers; None
        while it has none), or the first broker's."""
        if self.brokers == 1:
            return self.nodes[0]
        replica = self.leader_replica(tp)
        return None if replica is None else self.nodes[replica.broker_id - 1]

    @property
    def txn_coordinator(self) -> TxnCoordinatorRole | None:
        node = self.coordinator_node(TXN_STATE_PARTITION)
        return None if node is None or not node.up else node.txn

    @property
    def group_coordinator(self) -> GroupCoordinatorRole | None:
        node = self.coordinator_node(OFFSETS_PARTITION)
        return None if node is None or not node.up else node.group

    @property
    def broker_names(self) -> tuple[str, ...]:
        return broker_nodes(self.brokers)

    def node(self, name: str) -> BrokerNode:
        return self.nodes[broker_nodes(self.brokers).index(name)]

    def leader_replica(self, tp: TopicPartition) -> Partition | None:
        """The replica of ``tp`` on the broker the controller names its leader (None: no leader, or not created:
        the controller creates the partitions once every broker has registered)."""
        if tp not in self.controller.created:
            return None
        leader = self.controller.control.partition(tp).leader
        return self.nodes[leader - 1].replicated.parts[tp] if leader != NO_LEADER else None

    @property
    def broker(self) -> str:
        """The node name every client request goes to (but a replicated partition's Produce: its leader's)."""
        return self.nodes[0].node

    @property
    def bootstrap_servers(self) -> tuple[str, ...]:
        """The addresses a client's bootstrap.servers may name (eosim._client.handle)."""
        return tuple(f"{node}:{PORT}" for node in broker_nodes(self.brokers))

    def partitions(self, topic: str) -> int:
        return self.topics[topic]
