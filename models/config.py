"""eosim.models.config
=============

Broker-side configuration the models read. Field names are Kafka's keys with dots replaced by
underscores, and defaults are Kafka 4.1's (TransactionStateManagerConfig, TransactionLogConfig,
GroupCoordinatorConfig, ProducerStateEntry). ``BrokerConfig.from_kafka`` takes Kafka's dotted names.
Keys of the simulator alone are prefixed ``eosim.``: the dedup window, the historical bugs
(models/bugs.py) switched back on, and the Kafka release the broker runs (``eosim.kafka.version``: Kafka
has no such property; it switches on the bugs of that release, and the conformance suite starts that
release).
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
from attrs import field

from eosim.models.bugs import HISTORICAL_BUGS, PINNED_RELEASE, bugs_of, validate_release, validate_reintroduce
from eosim.models.values import frozen

SIMULATOR_ONLY_PREFIX = "eosim."  # keys no Kafka broker has
KAFKA_VERSION_KEY = "eosim.kafka.version"  # an eosim key, but one a real broker honours by being that release


def _bug_ids(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ValueError(f"expected a list of JIRA ids, got the string {value!r}")
    ids = tuple(value)
    validate_reintroduce(ids)
    return ids


@frozen(kw_only=True)
class BrokerConfig:
    # Finalized `transaction.version` feature: TV1 or TV2 (TransactionVersion.java). Server-initiated
    # aborts (timeout, fencing) use it; client requests use the version the client speaks.
    transaction_version: int = 2
    transaction_partition_verification_enable: bool = True
    transaction_max_timeout_ms: int = 900_000
    transaction_abort_timed_out_transaction_cleanup_interval_ms: int = 10_000
    transactional_id_expiration_ms: int = 604_800_000
    transaction_remove_expired_transaction_cleanup_interval_ms: int = 3_600_000
    transaction_state_log_num_partitions: int = 50
    producer_id_expiration_ms: int = 86_400_000
    producer_id_expiration_check_interval_ms: int = 600_000
    offsets_topic_num_partitions: int = 50
    group_initial_rebalance_delay_ms: int = 3_000
    group_min_session_timeout_ms: int = 6_000
    group_max_session_timeout_ms: int = 1_800_000
    # KIP-848 consumer groups (GroupCoordinatorConfig): the broker decides the session and the heartbeat
    # interval of a group.protocol=consumer member.
    group_consumer_session_timeout_ms: int = 45_000
    group_consumer_min_session_timeout_ms: int = 45_000
    group_consumer_heartbeat_interval_ms: int = 5_000
    group_consumer_min_heartbeat_interval_ms: int = 5_000
    # Simulator-only keys start with "eosim." (fields "eosim_"), so nobody takes them for Kafka's.
    # The dedup window, hard-coded in Kafka (ProducerStateEntry.NUM_BATCHES_TO_RETAIN).
    eosim_num_batches_to_retain: int = 5
    # Historical bugs switched back on, by JIRA id (eosim.models.bugs.HISTORICAL_BUGS).
    eosim_reintroduce: tuple[str, ...] = field(default=(), converter=_bug_ids)
    # The Kafka release the broker runs: its bugs (Bug.affects) are on as if listed in eosim_reintroduce.
    eosim_kafka_version: str = field(default=PINNED_RELEASE, converter=validate_release)

    def reintroduces(self, bug_id: str) -> bool:
        """Whether the rule fixed by ``bug_id`` runs as before the fix: switched back on, or a bug of the
        broker's release."""
        if bug_id not in HISTORICAL_BUGS:
            raise KeyError(bug_id)  # a typo at a rule site must not silently keep the fix
        return bug_id in self.eosim_reintroduce or bug_id in bugs_of(self.eosim_kafka_version)

    def bugs(self) -> tuple[str, ...]:
        """Every bug whose rule runs as before its fix: the release's and the switched-on ones, sorted."""
        return tuple(sorted(set(self.eosim_reintroduce) | bugs_of(self.eosim_kafka_version)))

    @classmethod
    def from_kafka(cls, props: Mapping[str, Any]) -> "BrokerConfig":
        """Build from Kafka's dotted property names; an unknown name raises ``KeyError`` naming it."""
        return cls(**_fields_of(cls, props))

    def to_kafka(self) -> dict[str, Any]:
        return {k.replace("_", "."): v for k, v in attrs.asdict(self).items()}


@frozen(kw_only=True)
class ReplicationConfig:
    """Replication settings of one topic on a cluster, with Kafka 4.1's defaults (``eosim.models.partition`` and
    ``eosim.models.replication_control`` read them). Field names are Kafka's keys with dots replaced by
    underscores; ``from_kafka`` takes the dotted names."""

    # Topic configs (TopicConfig / ServerLogConfigs): the ISR size acks=all needs, and whether the controller may
    # elect a replica outside the ISR (and the ELR) when none is left.
    min_insync_replicas: int = 1
    unclean_leader_election_enable: bool = False
    # ReplicationConfigs: a follower that has not caught up for this long leaves the ISR.
    replica_lag_time_max_ms: int = 30_000
    # KRaftConfigs: a broker without a heartbeat for this long is fenced by the controller.
    broker_session_timeout_ms: int = 9_000
    # The finalized `eligible.leader.replicas.version` feature (EligibleLeaderReplicasVersion): 1 (KIP-966 on) for
    # clusters formatted with 4.1+, 0 for 4.0 and clusters upgraded without enabling it.
    eligible_leader_replicas_version: int = 1

    @property
    def eligible_leader_replicas_enabled(self) -> bool:
        return self.eligible_leader_replicas_version >= 1

    @classmethod
    def from_kafka(cls, props: Mapping[str, Any]) -> "ReplicationConfig":
        """Build from Kafka's dotted property names; an unknown name raises ``KeyError`` naming it."""
        return cls(**_fields_of(cls, props))


def _fields_of(cls: type, props: Mapping[str, Any]) -> dict[str, Any]:
    """Kafka's dotted names as ``cls``'s field names (dots to underscores), refusing a name it has no field for."""
    known = {f.name for f in attrs.fields(cls)}
    kwargs = {}
    for key, value in props.items():
        name = key.replace(".", "_")
        if name not in known:
            raise KeyError(key)
        kwargs[name] = value
    return kwargs
