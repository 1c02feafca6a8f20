"""eosim._client.config: librdkafka's defaults, value parsing, aliases and finalisation conflicts."""

import re
from pathlib import Path

import pytest

from eosim.models.records import IsolationLevel
from eosim._client.config import (
    CONSUMER_SETTINGS,
    INT32_MAX,
    Client,
    PRODUCER_SETTINGS,
    ConfigError,
    ConsumerConfig,
    ProducerConfig,
    validate_config,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "client-config.md"


def producer(**config):
    return validate_config("producer", {k.replace("_", "."): v for k, v in config.items()})


def refused(kind, config):
    with pytest.raises(ConfigError) as info:
        validate_config(kind, config)
    return info.value


# --- defaults -------------------------------------------------------------------------------------


def test_producer_defaults_are_librdkafkas():
    p = validate_config("producer", {})
    assert isinstance(p, ProducerConfig) and p.kind == "producer"
    assert (p.enable_idempotence, p.acks, p.retries, p.max_in_flight_requests_per_connection) == (
        False, -1, INT32_MAX, 1_000_000)
    assert (p.message_timeout_ms, p.linger_ms, p.retry_backoff_ms, p.retry_backoff_max_ms) == (300_000, 5.0, 100, 1000)
    assert (p.request_timeout_ms, p.socket_timeout_ms, p.transaction_timeout_ms, p.batch_num_messages) == (
        30_000, 60_000, 60_000, 10_000)
    assert (p.transactional_id, p.bootstrap_servers, p.client_id) == (None, None, "rdkafka")
    assert p.original == {}


def test_consumer_defaults_are_librdkafkas():
    c = validate_config("consumer", {"group.id": "g"})
    assert isinstance(c, ConsumerConfig) and c.kind == "consumer"
    assert c.isolation_level is IsolationLevel.READ_COMMITTED  # librdkafka's default, not Java's
    assert (c.enable_auto_commit, c.auto_commit_interval_ms, c.auto_offset_reset) == (True, 5000, "latest")
    assert (c.enable_auto_offset_store, c.session_timeout_ms, c.heartbeat_interval_ms) == (True, 45_000, 3000)
    assert (c.max_poll_interval_ms, c.enable_partition_eof, c.fetch_wait_max_ms) == (300_000, False, 500)
    assert (c.group_id, c.group_instance_id) == ("g", None)


def test_the_tables_list_type_default_and_a_doc_citing_librdkafkas_default():
    for setting in [*PRODUCER_SETTINGS.values(), *CONSUMER_SETTINGS.values()]:
        assert setting.attribute == setting.key.replace(".", "_")
        assert "librdkafka default" in setting.doc, setting.key
    assert PRODUCER_SETTINGS["linger.ms"].type is float
    assert PRODUCER_SETTINGS["message.timeout.ms"].aliases == ("delivery.timeout.ms",)
    assert "group.id" not in PRODUCER_SETTINGS and "transactional.id" not in CONSUMER_SETTINGS


# --- the idempotent and transactional adjustments -------------------------------------------------


def test_idempotence_forces_acks_retries_and_in_flight():
    p = producer(enable_idempotence=True)
    assert (p.acks, p.retries, p.max_in_flight_requests_per_connection) == (-1, INT32_MAX, 5)
    assert producer(enable_idempotence=True, max_in_flight=3).max_in_flight_requests_per_connection == 3


def test_transactional_id_implies_idempotence_and_adjusts_timeouts():
    p = validate_config("producer", {"transactional.id": "tx", "transaction.timeout.ms": 10_000})
    assert p.enable_idempotence and p.acks == -1 and p.max_in_flight_requests_per_connection == 5
    assert p.message_timeout_ms == 10_000  # adjusted to transaction.timeout.ms because it was not set
    assert p.socket_timeout_ms == 9_900
    shortest = validate_config("producer", {"transactional.id": "tx", "transaction.timeout.ms": 1000})
    assert shortest.socket_timeout_ms == 900
    kept = validate_config("producer", {"transactional.id": "tx", "message.timeout.ms": 5000})
    assert kept.message_timeout_ms == 5000


def test_a_default_linger_is_lowered_below_the_message_timeout():
    assert producer(message_timeout_ms=3).linger_ms == pytest.approx(2.9)
    assert producer(message_timeout_ms=0).linger_ms == 5.0  # 0 = infinite


@pytest.mark.parametrize(
    "config, key, reason",
    [
        ({"enable.idempotence": True, "acks": 1}, "acks",
         "`acks` must be set to `all` when `enable.idempotence` is true"),
        ({"transactional.id": "tx", "request.required.acks": "0"}, "request.required.acks",
         "`acks` must be set to `all`"),
        ({"transactional.id": "tx", "enable.idempotence": "false"}, "enable.idempotence",
         "`transactional.id` requires `enable.idempotence=true`"),
        ({"enable.idempotence": True, "max.in.flight": 6}, "max.in.flight", "`max.in.flight` must be set <= 5"),
        ({"enable.idempotence": True, "retries": 0}, "retries", "`retries` must be set >= 1"),
        ({"transactional.id": "tx", "transaction.timeout.ms": 5000, "delivery.timeout.ms": 6000},
         "delivery.timeout.ms", "`message.timeout.ms` must be set <= `transaction.timeout.ms`"),
        ({"transactional.id": "tx", "socket.timeout.ms": 70_000}, "socket.timeout.ms",
         "`socket.timeout.ms` must be set <= `transaction.timeout.ms` + 100"),
        ({"linger.ms": 10, "message.timeout.ms": 5}, "linger.ms",
         "`message.timeout.ms` must be greater than `linger.ms`"),
    ],
)
def test_producer_conflicts_are_refused_as_librdkafka_does(config, key, reason):
    err = refused("producer", config)
    assert err.key == key and reason in err.reason and str(err) == err.reason


def test_conflicts_that_librdkafka_accepts_are_accepted():
    p = validate_config("producer", {"enable.idempotence": False, "max.in.flight": 6, "acks": 0, "retries": 0})
    assert (p.max_in_flight_requests_per_connection, p.acks, p.retries) == (6, 0, 0)


def test_consumer_conflicts():
    assert refused("consumer", {}).reason == "group.id must be set"
    assert refused("consumer", {"group.id": ""}).key == "group.id"  # "" resets to the default: unset
    err = refused("consumer", {"group.id": "g", "session.timeout.ms": 400_000})
    assert err.key == "session.timeout.ms" and "`max.poll.interval.ms` must be >= `session.timeout.ms`" in err.reason


# --- keys and aliases ------------------------------------------------------------------------------


def test_unknown_key_is_refused_with_librdkafkas_words():
    err = refused("producer", {"foo": 1})
    assert err.key == "foo" and err.reason.startswith('No such configuration property: "foo"')
    assert refused("producer", {"compression.type": "lz4"}).reason.startswith("No such configuration property")


def test_a_key_of_the_other_client_kind_is_refused_not_ignored():
    assert "is a consumer property" in refused("producer", {"group.id": "g"}).reason
    assert "is a producer property" in refused("consumer", {"group.id": "g", "acks": "all"}).reason


@pytest.mark.parametrize(
    "alias, value, attribute, expected",
    [
        ("metadata.broker.list", "b:9092", "bootstrap_servers", "b:9092"),
        ("request.required.acks", "all", "acks", -1),
        ("message.send.max.retries", 3, "retries", 3),
        ("max.in.flight", 7, "max_in_flight_requests_per_connection", 7),
        ("delivery.timeout.ms", 1000, "message_timeout_ms", 1000),
        ("queue.buffering.max.ms", 2.5, "linger_ms", 2.5),
    ],
)
def test_aliases_set_the_same_attribute(alias, value, attribute, expected):
    assert getattr(validate_config("producer", {alias: value}), attribute) == expected


def test_when_aliases_repeat_the_last_one_wins():
    assert validate_config("producer", {"linger.ms": 1, "queue.buffering.max.ms": 7}).linger_ms == 7.0
    assert validate_config("producer", {"queue.buffering.max.ms": 7, "linger.ms": 1}).linger_ms == 1.0


def test_original_is_kept_as_given():
    config = {"acks": "all", "linger.ms": "1e2"}
    p = validate_config("producer", config)
    assert p.original == config and p.original is not config
    assert (p.acks, p.linger_ms) == (-1, 100.0)


# --- value parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (True, True), ("true", True), ("T", True), ("TRUE", True), (1, True), ("1", True),
    (False, False), ("false", False), ("f", False), (0, False),
])
def test_booleans(value, expected):
    assert validate_config("producer", {"enable.idempotence": value}).enable_idempotence is expected


@pytest.mark.parametrize("value", ["yes", " true", 2, ""])
def test_bad_booleans(value):
    assert refused("producer", {"enable.idempotence": value}).key == "enable.idempotence"


@pytest.mark.parametrize("value, expected", [
    (7, 7), ("7", 7), ("  7", 7), ("+7", 7), ("10abc", 10), ("0x10", 16), ("017", 15), (1.7, 1),
    (99_999_999_999, 99_999_999_999 % 2**32),  # librdkafka's (int) cast of strtol's long
])
def test_integers_follow_strtol(value, expected):
    assert validate_config("producer", {"retries": value}).retries == expected


@pytest.mark.parametrize("value, reason", [
    (True, 'Invalid value for configuration property "retries"'),
    ("abc", 'Invalid value for configuration property "retries"'),
    ("", 'Integer configuration property "retries" cannot be set to empty value'),
    (-5, 'Configuration property "retries" value -5 is outside allowed range 0..2147483647'),
    ([1], 'Invalid value type for "retries"'),
])
def test_bad_integers(value, reason):
    assert refused("producer", {"retries": value}).reason.startswith(reason)


def test_acks_names():
    assert validate_config("producer", {"acks": "ALL"}).acks == -1
    assert validate_config("producer", {"acks": "1"}).acks == 1
    for bad in (" all", "all ", "1001"):
        assert refused("producer", {"acks": bad}).key == "acks"


def test_floats_and_ranges():
    assert validate_config("producer", {"linger.ms": "2.5ms"}).linger_ms == 2.5
    assert "outside allowed range 0..900000" in refused("producer", {"linger.ms": -1}).reason
    assert "outside allowed range 1000..2147483647" in refused("producer", {"transaction.timeout.ms": 999}).reason


def test_enumerations():
    c = validate_config("consumer",
                        {"group.id": "g", "isolation.level": " READ_UNCOMMITTED", "auto.offset.reset": "smallest"})
    assert (c.isolation_level, c.auto_offset_reset) == (IsolationLevel.READ_UNCOMMITTED, "earliest")
    assert validate_config("consumer", {"group.id": "g", "auto.offset.reset": "End"}).auto_offset_reset == "latest"
    assert refused("consumer", {"group.id": "g", "isolation.level": "read_committed "}).key == "isolation.level"
    assert "cannot be set to empty value" in refused("consumer", {"group.id": "g", "auto.offset.reset": ""}).reason


def test_strings_are_left_trimmed_and_empty_means_unset():
    assert validate_config("producer", {"transactional.id": "  tx"}).transactional_id == "tx"
    assert validate_config("producer", {"transactional.id": ""}).transactional_id is None
    assert validate_config("producer", {"client.id": ""}).client_id == "rdkafka"
    assert validate_config("producer", {"client.id": 5}).client_id == "5"


def test_kind_must_be_producer_or_consumer():
    with pytest.raises(ValueError):
        validate_config("admin", {})


# --- the doc lists every key with its default ------------------------------------------------------


def _doc_default(setting, client=Client.LIBRDKAFKA) -> str:
    value = setting.default_for(client)
    if client is Client.JAVA and value == setting.default:
        return "="
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (IsolationLevel, Client)):
        return value.name.lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_docs_table_lists_every_key_alias_and_default():
    rows = {}
    section = None
    for line in DOC.read_text().splitlines():
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        elif section and (m := re.match(r"\| `([a-z.]+)` \|([^|]*)\|([^|]*)\|([^|]*)\|", line)):
            rows.setdefault(section, {})[m.group(1)] = (m.group(2).strip(), m.group(3).strip(), m.group(4).strip())
    both, prod, cons = rows["Both producer and consumer"], rows["Producer"], rows["Consumer"]
    for table, documented in ((PRODUCER_SETTINGS, both | prod), (CONSUMER_SETTINGS, both | cons)):
        assert set(documented) == set(table)
        for key, (aliases, default, java) in documented.items():
            assert aliases == ", ".join(f"`{a}`" for a in table[key].aliases), key
            assert default == _doc_default(table[key]), key
            assert java == _doc_default(table[key], Client.JAVA), key
