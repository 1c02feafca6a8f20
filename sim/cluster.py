"""sim.cluster
===========

A simulated single-node Kafka cluster: the network plus one broker that leads every partition and
hosts both coordinators, the shape of the conformance suite's real broker.
"""

from __future__ import annotations

from attrs import define, field

from models.config import BrokerConfig
from sim.broker import Broker
from sim.net import Network
from sim.world import World


@define(eq=False)
class Cluster:
    world: World
    broker_config: BrokerConfig
    topics: dict[str, int]
    network: Network = field(init=False)
    broker_node: Broker = field(init=False)

    def __attrs_post_init__(self) -> None:
        self.network = Network(self.world)
        self.broker_node = Broker(self.world, self.network, self.broker_config, dict(self.topics))

    @property
    def broker(self) -> str:
        """The node name every client request goes to."""
        return self.broker_node.node

    def partitions(self, topic: str) -> int:
        return self.topics[topic]
