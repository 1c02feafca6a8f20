"""eosim._aged
===========

Long-lived state (docs/scenario-format.md, "Long-lived state"): producers that start as a cluster running for a
long time has left them, so that boundary values (a sequence at Int.MAX_VALUE, an epoch at Short.MaxValue - 1)
are reached in a few steps. Simulator-only: the loader refuses ``aged`` on a conformance scenario.

Before the first step, on the single broker, in actor-name order:

- an aged **transactional** producer's transactional.id is registered at the coordinator at the aged epoch,
  its last transaction committed (TransactionCoordinator.load_aged; the record goes to the coordinator's
  __transaction_state log, so a failover reloads it). The client starts as usual: init_transactions bumps
  from there.
- an aged **idempotent** producer gets a producer id (the coordinator's ProducerIdManager); every partition's
  producer state holds (pid, epoch) with its last batch ending one before ``sequence``
  (PartitionLog.load_aged_producer), and the client's first instance holds that (pid, epoch) and goes on at
  ``sequence`` on every partition (Idempotence.start_aged). A restarted instance is a new process: it asks
  for a new producer id as any producer does.
"""

from __future__ import annotations

from typing import Any

from eosim.models.records import MAX_SEQUENCE
from eosim._scenario import Scenario

AGED_TIMESTAMP = 0  # the earlier batches' time: the scenario's start


def age(scenario: Scenario, cluster: Any) -> dict[str, tuple[tuple[int, int], int]]:
    """Load every aged producer's state into ``cluster`` (one broker); returns, per aged idempotent actor, the
    (pid, epoch) and next sequence its first client instance starts with."""
    clients: dict[str, tuple[tuple[int, int], int]] = {}
    node = cluster.broker_node
    for name, actor in sorted(scenario.actors.items()):
        aged = actor.aged
        if aged is None:
            continue
        config = actor.client_config
        tc = node.txn.tc
        if config.transactional_id is not None:
            record = tc.load_aged(config.transactional_id, aged.epoch, config.transaction_timeout_ms,
                                  cluster.broker_config.transaction_version, AGED_TIMESTAMP)
            node.txn.log.append(record)
            node.emit("txn.load", transactional_id=record.transactional_id, state=record.state.kafka_name,
                      producer_id=record.producer_id, producer_epoch=record.producer_epoch,
                      coordinator_epoch=tc.coordinator_epoch, txn_timeout_ms=record.txn_timeout_ms)
            continue
        pid = tc.generate_producer_id()
        sequence = 0 if aged.sequence is None else aged.sequence
        if aged.sequence is not None:
            last_seq = (sequence - 1) % (MAX_SEQUENCE + 1)  # DefaultRecordBatch.decrementSequence
            for tp, log in sorted(node.replicas.logs.items()):
                log.producer_state_manager.load_aged_producer(pid, aged.epoch, last_seq, AGED_TIMESTAMP)
                node.emit("log.aged", tp=tp, producer_id=pid, producer_epoch=aged.epoch, last_sequence=last_seq)
        clients[name] = ((pid, aged.epoch), sequence)
    return clients
