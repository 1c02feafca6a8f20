"""sim.client.handle
=================

What the simulated Producer and Consumer share about their librdkafka handle (``rd_kafka_t``).

Connections
-----------
librdkafka talks to a broker node over one connection per ``rd_kafka_broker_t``, and the coordinators
have broker objects of their own, *logical brokers* with their own connection even when they sit on the
same node as the partition leader (``rd_kafka_broker_add_logical``, rdkafka_broker.c):

* ``TxnCoordinator`` (``rk_eos.txn_coord``, rdkafka_txnmgr.c): the transactional producer's
  InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn;
* ``GroupCoordinator`` (``rkcg_coord``, rdkafka_cgrp.c): JoinGroup/SyncGroup, Heartbeat, LeaveGroup,
  OffsetCommit and OffsetFetch (the assignment's and ``committed()``'s, rdkafka_assignment.c);
* the node's own broker object (``<host>:<port>/<nodeid>``): Produce, Fetch and ListOffsets to the
  partition leader, the idempotent producer's InitProducerId (``rd_kafka_idemp_broker_any``), and
  TxnOffsetCommit, which ``rd_kafka_coord_req`` (rdkafka_coord.c) sends to the coordinator's *node*
  broker found by FindCoordinator, not to a logical broker.

A simulated client sends each request from the source node ``name + connection`` below, so the broker's
per-connection ordering (Kafka handles one request per connection at a time) applies per logical
connection, as it does against Kafka. Names keep the ``actor#incarnation`` prefix (``p1#2/txn``), so
traces and diagrams still group them by actor.
"""

from __future__ import annotations

LEADER = ""  # the partition leader's node connection (also TxnOffsetCommit, idempotent InitProducerId)
TXN_COORDINATOR = "/txn"  # the TxnCoordinator logical broker
GROUP_COORDINATOR = "/group"  # the GroupCoordinator logical broker
