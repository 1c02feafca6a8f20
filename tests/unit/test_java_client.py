"""The Java-client switch (``eosim.client = "java"``): the same situation under both switches, each
client's outcome side by side. Java sources are the Java client 4.1 (confluentinc/kafka branch 4.1,
clients/src/main/java/org/apache/kafka/clients/...): ProducerConfig, ConsumerConfig, KafkaProducer,
producer/internals/TransactionManager.java (TM), Sender.java; librdkafka's are cited in
sim/client/config.py, sim/client/errors.py and sim/client/producer.py."""

from __future__ import annotations

import pytest

from models.records import IsolationLevel
from sim.client.config import INT32_MAX, Client, ConfigError, validate_config

JAVA = {"eosim.client": "java"}


def refused(kind, config):
    with pytest.raises(ConfigError) as info:
        validate_config(kind, config)
    return info.value


# --- configuration: defaults (reference §7) and validation (§6.1) ----------------------------------


def test_the_switch_defaults_to_librdkafka_and_takes_either_name():
    assert validate_config("producer", {}).eosim_client is Client.LIBRDKAFKA
    assert validate_config("producer", {"eosim.client": "Java"}).eosim_client is Client.JAVA
    assert validate_config("consumer", {"group.id": "g", **JAVA}).eosim_client is Client.JAVA
    assert 'Invalid value "kafka" for configuration property "eosim.client"' in refused(
        "producer", {"eosim.client": "kafka"}).reason


def test_producer_defaults_differ_where_java_differs():
    rd, java = validate_config("producer", {}), validate_config("producer", JAVA)
    # ProducerConfig: enable.idempotence true (KIP-679), max.in.flight 5, delivery.timeout.ms 120000;
    # request.timeout.ms 30000 is Java's client-side wait (socket.timeout.ms here).
    assert (rd.enable_idempotence, java.enable_idempotence) == (False, True)
    assert (rd.max_in_flight_requests_per_connection, java.max_in_flight_requests_per_connection) == (1_000_000, 5)
    assert (rd.message_timeout_ms, java.message_timeout_ms) == (300_000, 120_000)
    assert (rd.socket_timeout_ms, java.socket_timeout_ms) == (60_000, 30_000)
    # the same in both: acks=all, retries=MAX, linger.ms=5 (KIP-1030 in Java 4.0)
    assert (java.acks, java.retries, java.linger_ms) == (rd.acks, rd.retries, rd.linger_ms) == (-1, INT32_MAX, 5.0)


def test_consumer_default_isolation_is_read_uncommitted_in_java():
    rd = validate_config("consumer", {"group.id": "g"})
    java = validate_config("consumer", {"group.id": "g", **JAVA})
    assert rd.isolation_level is IsolationLevel.READ_COMMITTED  # librdkafka CONFIGURATION.md
    assert java.isolation_level is IsolationLevel.READ_UNCOMMITTED  # ConsumerConfig DEFAULT_ISOLATION_LEVEL


def test_a_transactional_producer_keeps_its_timeouts_in_java():
    rd = validate_config("producer", {"transactional.id": "tx", "transaction.timeout.ms": 10_000})
    java = validate_config("producer", {"transactional.id": "tx", "transaction.timeout.ms": 10_000, **JAVA})
    # librdkafka lowers message.timeout.ms and socket.timeout.ms to the transaction timeout; Java does not.
    assert (rd.message_timeout_ms, rd.socket_timeout_ms) == (10_000, 9_900)
    assert (java.message_timeout_ms, java.socket_timeout_ms) == (120_000, 30_000)
    assert validate_config("producer", {"transactional.id": "tx", "delivery.timeout.ms": 200_000,
                                        "transaction.timeout.ms": 10_000, **JAVA}).message_timeout_ms == 200_000
    assert "`message.timeout.ms` must be set <= `transaction.timeout.ms`" in refused(
        "producer", {"transactional.id": "tx", "delivery.timeout.ms": 200_000, "transaction.timeout.ms": 10_000}).reason


def test_acks_or_retries_silently_disable_default_idempotence_in_java():
    # postProcessAndValidateIdempotenceConfigs: idempotence only by default gives way to acks != all or
    # retries = 0; librdkafka has it off by default, so the same config is a plain producer there too.
    for config in ({"acks": 1}, {"retries": 0}):
        assert not validate_config("producer", {**config, **JAVA}).enable_idempotence
        assert not validate_config("producer", config).enable_idempotence


@pytest.mark.parametrize(
    "config, key, java_reason, librdkafka_reason",
    [
        ({"enable.idempotence": True, "acks": 1}, "acks", "Must set acks to all in order to use the idempotent",
         "`acks` must be set to `all` when `enable.idempotence` is true"),
        ({"enable.idempotence": True, "retries": 0}, "retries", "Must set retries to non-zero",
         "`retries` must be set >= 1"),
        ({"enable.idempotence": True, "max.in.flight": 6}, "max.in.flight",
         "max.in.flight.requests.per.connection must be set to at most 5. Current value is 6.",
         "`max.in.flight` must be set <= 5"),
        ({"transactional.id": "tx", "enable.idempotence": False}, "transactional.id",
         "Cannot set a transactional.id without also enabling idempotence.", None),
    ],
)
def test_explicit_idempotence_conflicts_are_refused_by_both(config, key, java_reason, librdkafka_reason):
    err = refused("producer", {**config, **JAVA})
    assert err.key == key and java_reason in err.reason
    if librdkafka_reason is not None:
        assert librdkafka_reason in refused("producer", config).reason


def test_java_refuses_more_in_flight_even_with_default_idempotence():
    # Java 4.x: max.in.flight > 5 is a ConfigException whenever idempotence is on, even only by default
    # and even next to acks=1 (the check comes before idempotence is turned off); librdkafka has no
    # idempotence by default, so it accepts the value.
    for config in ({"max.in.flight": 6}, {"max.in.flight": 6, "acks": 1}):
        assert refused("producer", {**config, **JAVA}).key == "max.in.flight"
        assert validate_config("producer", config).max_in_flight_requests_per_connection == 6
    assert validate_config("producer", {"max.in.flight": 6, "enable.idempotence": False, **JAVA})


def test_a_transactional_id_with_acks_1_is_refused_by_both():
    # Java: acks=1 turns default idempotence off, then transactional.id needs it.
    err = refused("producer", {"transactional.id": "tx", "acks": 1, **JAVA})
    assert err.key == "transactional.id" and "without also enabling idempotence" in err.reason
    assert refused("producer", {"transactional.id": "tx", "acks": 1}).key == "acks"


def test_delivery_timeout_must_cover_linger_and_the_request_timeout_in_java():
    # KafkaProducer.configureDeliveryTimeout: an explicit smaller one is refused, a default one raised.
    err = refused("producer", {"delivery.timeout.ms": 20_000, **JAVA})
    assert err.key == "delivery.timeout.ms" and "linger.ms + request.timeout.ms" in err.reason
    assert refused("producer", {"message.timeout.ms": 0, **JAVA}).key == "message.timeout.ms"  # no "infinite"
    assert validate_config("producer", {"delivery.timeout.ms": 20_000}).message_timeout_ms == 20_000
    raised = validate_config("producer", {"socket.timeout.ms": 200_000, "linger.ms": 10, **JAVA})
    assert raised.message_timeout_ms == 200_010
