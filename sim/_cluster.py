"""eosim._cluster
===========

A simulated single-node Kafka cluster: the network plus one broker that leads every partition and
hosts both coordinators, the shape of the conformance suite's real broker.
"""

from __future__ import annotations

from typing import Mapping

from attrs import define, field

from eosim.models.config import BrokerConfig
from eosim._broker import BrokerNode
from eosim._net import Network
from eosim._topology import BROKERS, PORT
from eosim._world import World
from eosim._worktime import WORK_MS


@define(eq=False)
class Cluster:
    world: World
    broker_config: BrokerConfig
    topics: dict[str, int]
    work_ms: Mapping[str, tuple[int, int]] = WORK_MS  # how long the broker's internal work takes (sim/_worktime.py)
    network: Network = field(init=False)
    broker_node: BrokerNode = field(init=False)

    def __attrs_post_init__(self) -> None:
        self.network = Network(self.world)
        self.broker_node = BrokerNode(self.world, self.network, self.broker_config, dict(self.topics), node=BROKERS[0],
                                  work_ms=self.work_ms)

    @property
    def broker(self) -> str:
        """The node name every client request goes to."""
        return self.broker_node.node

    @property
    def bootstrap_servers(self) -> tuple[str, ...]:
        """The addresses a client's bootstrap.servers may name (eosim._client.handle)."""
        return tuple(f"{node}:{PORT}" for node in BROKERS)

    def partitions(self, topic: str) -> int:
        return self.topics[topic]
