"""eosim._client.config
=================

The client configuration, shaped like librdkafka's (confluent-kafka hands its dict to librdkafka):
dotted keys, librdkafka's defaults (CONFIGURATION.md), its value parsing
(``rd_kafka_anyconf_set_prop``, src/rdkafka_conf.c) and its finalisation rules
(``rd_kafka_conf_finalize``, ``rd_kafka_topic_conf_finalize``). ``validate_config`` is the entry
point; ``PRODUCER_SETTINGS`` and ``CONSUMER_SETTINGS`` are the tables of supported keys, derived from
the fields of ``ProducerConfig`` and ``ConsumerConfig`` (attribute = key with dots as underscores,
as in ``eosim.models.config.BrokerConfig``). docs/client-config.md lists them.

eosim is stricter than librdkafka in one way: a key it does not support, or a key of the other
client kind (librdkafka ignores it with a warning), is an error, so nothing is silently ignored.

One key is the simulator's own: ``eosim.client = "java"`` keeps the keys and the API librdkafka-shaped
but takes the Java client's (4.1) defaults (``Setting.java_default``) and its validation
(``ProducerConfig.postProcessAndValidateIdempotenceConfigs``, ``KafkaProducer.configureDeliveryTimeout``)
instead of librdkafka's finalisation; sim/_client/errors.py holds its reactions to broker errors.
"""

from __future__ import annotations

import enum
import re
from typing import Any, ClassVar, Literal, Mapping

import attrs
from attrs import field, frozen

from eosim.models.records import IsolationLevel

INT32_MAX = 2**31 - 1
IDEMPOTENT_MAX_IN_FLIGHT = 5  # RD_KAFKA_IDEMP_MAX_INFLIGHT


class Client(enum.Enum):
    """Whose behaviour a simulated client reproduces (the simulator-only key ``eosim.client``)."""

    LIBRDKAFKA = "librdkafka"  # confluent-kafka 2.16 over librdkafka: what the conformance suite runs
    JAVA = "java"  # the Java client 4.1 (org.apache.kafka.clients): TV2 on a TV2 broker, else TV1


SAME = object()  # Setting.java_default: the Java client's default is librdkafka's


class ConfigError(ValueError):
    """A configuration librdkafka (or eosim) refuses; ``key`` is the key as the user wrote it."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


@frozen(kw_only=True)
class Setting:
    """One supported key: its typed attribute, librdkafka default, one-line doc and parsing rules."""

    key: str
    attribute: str
    type: Any  # bool, int, float, str | None, or the value type of ``names``
    default: Any
    doc: str
    aliases: tuple[str, ...] = ()
    range: tuple[float, float] | None = None  # librdkafka's vmin..vmax
    names: Mapping[str, Any] | None = None  # librdkafka's s2i value names (matched case-insensitively)
    java_default: Any = SAME  # the default under eosim.client = "java" (ProducerConfig / ConsumerConfig 4.1)

    def default_for(self, client: Client) -> Any:
        return self.default if client is Client.LIBRDKAFKA or self.java_default is SAME else self.java_default


def _setting(default: Any, doc: str, *, aliases: tuple[str, ...] = (), range: tuple[float, float] | None = None,
             names: Mapping[str, Any] | None = None, java: Any = SAME) -> Any:
    return field(default=default, metadata={"setting": (doc, aliases, range, names, java)})


@frozen(kw_only=True)
class ClientConfig:
    """Effective settings (after librdkafka's finalisation) plus the dict as given, in ``original``."""

    kind: ClassVar[Literal["producer", "consumer"]]

    original: dict[str, Any] = field(factory=dict, converter=dict, hash=False)
    eosim_client: Client = _setting(
        Client.LIBRDKAFKA, "Simulator only (no librdkafka default; eosim's is librdkafka): whose defaults, "
        "validation and error reactions the client has, librdkafka or java (the Java client 4.1).",
        names={"librdkafka": Client.LIBRDKAFKA, "java": Client.JAVA})
    bootstrap_servers: str | None = _setting(
        None, "Initial broker list, host:port CSV (librdkafka default: none).", aliases=("metadata.broker.list",))
    client_id: str = _setting("rdkafka", "Client identifier (librdkafka default: rdkafka).")
    # Java has no socket.timeout.ms: its client-side wait for a response is request.timeout.ms (30000).
    socket_timeout_ms: int = _setting(
        60_000, "Default timeout for network requests (librdkafka default: 60000; a transactional producer "
        "lowers an unset one to max(transaction.timeout.ms - 100, 900)).", range=(10, 300_000), java=30_000)
    retry_backoff_ms: int = _setting(
        100, "First backoff before retrying a protocol request, doubled per retry (librdkafka default: 100).",
        range=(1, 300_000))
    retry_backoff_max_ms: int = _setting(
        1000, "Cap of the exponential retry backoff (librdkafka default: 1000).", range=(1, 300_000))


@frozen(kw_only=True)
class ProducerConfig(ClientConfig):
    kind: ClassVar[Literal["producer", "consumer"]] = "producer"

    transactional_id: str | None = _setting(
        None, "Enables the transactional producer and implies enable.idempotence=true (librdkafka default: none).")
    enable_idempotence: bool = _setting(
        False, "Idempotent producer: forces acks=all, retries=INT32_MAX, max.in.flight<=5 "
        "(librdkafka default: false).", java=True)
    acks: int = _setting(
        -1, "Acknowledgements the leader waits for: 0, 1, or -1/all (librdkafka default: -1).",
        aliases=("request.required.acks",), range=(-1, 1000), names={"all": -1})
    retries: int = _setting(
        INT32_MAX, "How many times to retry a failing message (librdkafka default: 2147483647).",
        aliases=("message.send.max.retries",), range=(0, INT32_MAX))
    max_in_flight_requests_per_connection: int = _setting(
        1_000_000, "Maximum in-flight requests per broker connection (librdkafka default: 1000000; "
        "5 when idempotent).", aliases=("max.in.flight",), range=(1, 1_000_000), java=5)
    message_timeout_ms: int = _setting(
        300_000, "Local delivery timeout including retries, 0 = infinite (librdkafka default: 300000; a "
        "transactional producer sets an unset one to transaction.timeout.ms).",
        aliases=("delivery.timeout.ms",), range=(0, INT32_MAX), java=120_000)
    linger_ms: float = _setting(
        5.0, "Time to wait for more messages before sending a batch (librdkafka default: 5).",
        aliases=("queue.buffering.max.ms",), range=(0, 900_000))
    request_timeout_ms: int = _setting(
        30_000, "Produce request ack timeout, enforced by the broker (librdkafka default: 30000).",
        range=(1, 900_000))
    transaction_timeout_ms: int = _setting(
        60_000, "Transaction timeout sent in InitProducerId; the coordinator aborts a transaction "
        "older than this (librdkafka default: 60000).", range=(1000, INT32_MAX))
    batch_num_messages: int = _setting(
        10_000, "Maximum messages in one batch (librdkafka default: 10000).", range=(1, 1_000_000))


@frozen(kw_only=True)
class ConsumerConfig(ClientConfig):
    kind: ClassVar[Literal["producer", "consumer"]] = "consumer"

    group_id: str | None = _setting(
        None, "Consumer group id; required by confluent-kafka's Consumer (librdkafka default: none).")
    group_instance_id: str | None = _setting(
        None, "Static group membership id (librdkafka default: none).")
    isolation_level: IsolationLevel = _setting(
        IsolationLevel.READ_COMMITTED, "read_committed or read_uncommitted (librdkafka default: read_committed).",
        names={"read_uncommitted": IsolationLevel.READ_UNCOMMITTED, "read_committed": IsolationLevel.READ_COMMITTED},
        java=IsolationLevel.READ_UNCOMMITTED)
    enable_auto_commit: bool = _setting(
        True, "Commit offsets in the background every auto.commit.interval.ms (librdkafka default: true).")
    auto_commit_interval_ms: int = _setting(
        5000, "Auto-commit period, 0 = disabled (librdkafka default: 5000).", range=(0, 86_400_000))
    auto_offset_reset: Literal["earliest", "latest", "error"] = _setting(
        "latest", "Where to start without a committed offset: smallest/earliest/beginning, "
        "largest/latest/end, or error (librdkafka default: largest).",
        names={"smallest": "earliest", "earliest": "earliest", "beginning": "earliest",
               "largest": "latest", "latest": "latest", "end": "latest", "error": "error"})
    enable_auto_offset_store: bool = _setting(
        True, "Store the offset of each message handed to the application (librdkafka default: true).")
    session_timeout_ms: int = _setting(
        45_000, "Group session timeout (librdkafka default: 45000).", range=(1, 3_600_000))
    heartbeat_interval_ms: int = _setting(
        3000, "Group heartbeat interval (librdkafka default: 3000).", range=(1, 3_600_000))
    partition_assignment_strategy: str = _setting(
        "range,roundrobin", "Client-side assignors the member offers in the classic protocol, in preference "
        "order: range, roundrobin (librdkafka default: range,roundrobin; cooperative-sticky is not modelled).")
    group_protocol: Literal["classic", "consumer"] = _setting(
        "classic", "classic (JoinGroup/SyncGroup) or consumer (KIP-848 ConsumerGroupHeartbeat) "
        "(librdkafka default: classic).", names={"classic": "classic", "consumer": "consumer"})
    group_remote_assignor: str | None = _setting(
        None, "Server-side assignor for group.protocol=consumer: uniform or range; none lets the broker "
        "choose (librdkafka default: none).")
    max_poll_interval_ms: int = _setting(
        300_000, "Maximum time between polls before the member leaves the group (librdkafka default: 300000).",
        range=(1, 86_400_000))
    enable_partition_eof: bool = _setting(
        False, "Emit a _PARTITION_EOF event at the end of a partition (librdkafka default: false).")
    fetch_wait_max_ms: int = _setting(
        500, "Maximum time the broker may wait to fill a Fetch response (librdkafka default: 500).",
        range=(0, 300_000))


def _settings(cls: type[ClientConfig]) -> dict[str, Setting]:
    attrs.resolve_types(cls)
    table = {}
    for f in attrs.fields(cls):
        if "setting" not in f.metadata:
            continue
        doc, aliases, range_, names, java = f.metadata["setting"]
        key = f.name.replace("_", ".")
        table[key] = Setting(key=key, attribute=f.name, type=f.type, default=f.default, doc=doc,
                             aliases=aliases, range=range_, names=names, java_default=java)
    return table


PRODUCER_SETTINGS: dict[str, Setting] = _settings(ProducerConfig)
CONSUMER_SETTINGS: dict[str, Setting] = _settings(ConsumerConfig)
SETTINGS: dict[str, dict[str, Setting]] = {"producer": PRODUCER_SETTINGS, "consumer": CONSUMER_SETTINGS}
_CLASSES: dict[str, type[ClientConfig]] = {"producer": ProducerConfig, "consumer": ConsumerConfig}


def find_setting(kind: Literal["producer", "consumer"], key: str) -> Setting | None:
    """The setting ``key`` names for this client kind, directly or through an alias."""
    for setting in SETTINGS[kind].values():
        if key == setting.key or key in setting.aliases:
            return setting
    return None


# strtol(value, &end, 0) and strtod: librdkafka parses the longest numeric prefix and ignores the rest.
_STRTOL = re.compile(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_STRTOD = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _as_text(key: str, value: Any) -> str:
    # confluent-kafka passes str(value) to librdkafka, so True becomes "True" and 2.5 becomes "2.5".
    if not isinstance(value, (str, bool, int, float)):
        raise ConfigError(key, f'Invalid value type for "{key}": expected a string, integer, float or boolean, '
                               f"got {type(value).__name__}")
    return str(value)


def _parse(setting: Setting, key: str, value: Any) -> Any:
    """One value, by librdkafka's rules for the setting's type (rd_kafka_anyconf_set_prop)."""
    text = _as_text(key, value)
    if setting.names is not None and setting.type is not int:  # an enum (_RK_C_S2I)
        if not text:
            raise ConfigError(key, f'Configuration property "{key}" cannot be set to empty value')
        wanted = text.lstrip().lower()
        for name, mapped in setting.names.items():
            if name == wanted:
                return mapped
        raise ConfigError(key, f'Invalid value "{text}" for configuration property "{key}"')
    if setting.type is bool:
        if not text:
            raise ConfigError(key, f'Bool configuration property "{key}" cannot be set to empty value')
        if text.lower() in ("true", "t", "1"):
            return True
        if text.lower() in ("false", "f", "0"):
            return False
        raise ConfigError(key, f'Expected bool value for "{key}": true or false')
    if setting.type is int:
        if not text:
            raise ConfigError(key, f'Integer configuration property "{key}" cannot be set to empty value')
        match = _STRTOL.match(text)
        if match:
            sign, digits = match.groups()
            base = 16 if digits[:2] in ("0x", "0X") else 8 if digits[:1] == "0" else 10
            number = int(sign + digits, base)
            number = max(-(2**63), min(2**63 - 1, number))  # strtol saturates at LONG_MIN/LONG_MAX
            number = (number + 2**31) % 2**32 - 2**31  # then librdkafka casts it to a 32-bit int
        else:  # no number: librdkafka looks the text up in the value names ("all" for acks)
            number = (setting.names or {}).get(text.lower())
            if number is None:
                raise ConfigError(key, f'Invalid value for configuration property "{key}"')
        return _in_range(setting, key, number)
    if setting.type is float:
        if not text:
            raise ConfigError(key, f'Float configuration property "{key}" cannot be set to empty value')
        match = _STRTOD.match(text)
        if not match:
            raise ConfigError(key, f'Invalid value for configuration property "{key}"')
        return _in_range(setting, key, float(match.group(0)))
    # A string: left-trimmed; empty means unset, as librdkafka resets "" to the default.
    return text.lstrip() or setting.default


def _in_range(setting: Setting, key: str, number: int | float) -> int | float:
    low, high = setting.range or (-INT32_MAX - 1, INT32_MAX)
    if not low <= number <= high:
        shown = number if isinstance(number, int) else f"{number:g}"
        raise ConfigError(key, f'Configuration property "{key}" value {shown} is outside allowed range {low}..{high}')
    return number


# confluent-kafka's Python-side config keys (confluent_kafka.c, common_conf_setup): real keys eosim refuses
# by name rather than as unknown (docs/api.md)
NOT_SIMULATED = {"error_cb": "callback", "stats_cb": "callback", "throttle_cb": "callback", "oauth_cb": "callback",
                 "on_delivery": "default delivery callback (eosim.Producer takes it)",
                 "logger": "logger (eosim.Producer and eosim.Consumer take it)"}


def validate_config(kind: Literal["producer", "consumer"], config: Mapping[str, Any]) -> ClientConfig:
    """Parse and finalise a librdkafka-style config dict; raise ``ConfigError`` for what librdkafka
    refuses, for unsupported keys and for keys of the other client kind."""
    if kind not in SETTINGS:
        raise ValueError(f"kind must be 'producer' or 'consumer', not {kind!r}")
    table = SETTINGS[kind]
    values = {setting.attribute: setting.default for setting in table.values()}
    written: dict[str, str] = {}  # attribute -> the key the user wrote for it (the last alias wins, as in librdkafka)
    for key, value in config.items():
        if not isinstance(key, str):
            raise ConfigError(str(key), f"configuration keys are strings, got {type(key).__name__} {key!r}")
        setting = find_setting(kind, key)
        if setting is None and key in NOT_SIMULATED:
            raise ConfigError(key, f'"{key}" is a confluent-kafka {NOT_SIMULATED[key]} eosim does not simulate yet: '
                                   "leave it out (docs/api.md, \"Not simulated\")")
        if setting is None:
            other = "consumer" if kind == "producer" else "producer"
            if find_setting(other, key) is not None:
                raise ConfigError(key, f'Configuration property "{key}" is a {other} property: librdkafka ignores '
                                       f"it on a {kind} with a warning, eosim refuses it")
            raise ConfigError(key, f'No such configuration property: "{key}" (eosim supports the keys listed '
                                   "in docs/client-config.md)")
        values[setting.attribute] = _parse(setting, key, value)
        written[setting.attribute] = key
    client = values["eosim_client"]
    for setting in table.values():
        if setting.attribute not in written:
            values[setting.attribute] = setting.default_for(client)
    _FINALIZE[client, kind](values, written)
    return _CLASSES[kind](original=dict(config), **values)


def _finalize_producer(v: dict[str, Any], written: dict[str, str]) -> None:
    """rd_kafka_conf_finalize + rd_kafka_topic_conf_finalize for a producer, in librdkafka's order.
    ``v`` holds every attribute; an attribute not in ``written`` still has its default."""
    if v["transactional_id"] is not None:
        if not v["enable_idempotence"]:
            if "enable_idempotence" in written:
                raise ConfigError(written["enable_idempotence"],
                                  "`transactional.id` requires `enable.idempotence=true`")
            v["enable_idempotence"] = True
        # Make sure at least one request can be sent before the transaction times out.
        if "socket_timeout_ms" not in written:
            v["socket_timeout_ms"] = max(v["transaction_timeout_ms"] - 100, 900)
        elif v["transaction_timeout_ms"] + 100 < v["socket_timeout_ms"]:
            raise ConfigError(written["socket_timeout_ms"],
                              "`socket.timeout.ms` must be set <= `transaction.timeout.ms` + 100")
    if v["enable_idempotence"]:
        if "max_in_flight_requests_per_connection" not in written:
            v["max_in_flight_requests_per_connection"] = min(v["max_in_flight_requests_per_connection"],
                                                             IDEMPOTENT_MAX_IN_FLIGHT)
        elif v["max_in_flight_requests_per_connection"] > IDEMPOTENT_MAX_IN_FLIGHT:
            raise ConfigError(written["max_in_flight_requests_per_connection"],
                              "`max.in.flight` must be set <= 5 when `enable.idempotence` is true")
        if "retries" not in written:
            v["retries"] = INT32_MAX
        elif v["retries"] < 1:
            raise ConfigError(written["retries"], "`retries` must be set >= 1 when `enable.idempotence` is true")
    _check_linger(v, written, adjust=True)
    # Topic-level finalisation: acks and message.timeout.ms are topic properties in librdkafka.
    if v["enable_idempotence"]:
        if "acks" not in written:
            v["acks"] = -1
        elif v["acks"] != -1:
            raise ConfigError(written["acks"], "`acks` must be set to `all` when `enable.idempotence` is true")
        if v["transactional_id"] is not None:
            if "message_timeout_ms" not in written:
                v["message_timeout_ms"] = v["transaction_timeout_ms"]
            elif v["message_timeout_ms"] > v["transaction_timeout_ms"]:
                raise ConfigError(written["message_timeout_ms"],
                                  "`message.timeout.ms` must be set <= `transaction.timeout.ms`")
    _check_linger(v, written, adjust=False)


def _check_linger(v: dict[str, Any], written: dict[str, str], *, adjust: bool) -> None:
    """message.timeout.ms must exceed linger.ms: an explicit linger.ms fails, a default one is lowered."""
    if v["message_timeout_ms"] == 0 or v["message_timeout_ms"] > v["linger_ms"]:
        return
    if "linger_ms" in written:
        raise ConfigError(written["linger_ms"], "`message.timeout.ms` must be greater than `linger.ms`")
    if adjust:
        v["linger_ms"] = v["message_timeout_ms"] - 0.1


def _finalize_consumer(v: dict[str, Any], written: dict[str, str]) -> None:
    _require_group(v, written)
    _check_group_protocol(v, written)
    if v["group_protocol"] == "classic" and v["max_poll_interval_ms"] < v["session_timeout_ms"]:
        raise ConfigError(written.get("max_poll_interval_ms", written.get("session_timeout_ms", "session.timeout.ms")),
                          "`max.poll.interval.ms` must be >= `session.timeout.ms`")


# Assignors eosim models (sim/_client/assignors.py; KIP-848's server-side ones in models/consumer_group.py).
CLASSIC_ASSIGNORS = ("range", "roundrobin")
REMOTE_ASSIGNORS = ("uniform",)


def _check_group_protocol(v: dict[str, Any], written: dict[str, str]) -> None:
    """rd_kafka_conf_finalize: under group.protocol=consumer the session, the heartbeat interval and the
    assignor are the broker's, and setting them is an error."""
    if v["group_protocol"] == "consumer":
        for attribute in ("session_timeout_ms", "heartbeat_interval_ms", "partition_assignment_strategy"):
            if attribute in written:
                key = attribute.replace("_", ".")
                raise ConfigError(written[attribute], f"`{key}` is not supported for `group.protocol=consumer`"
                                  + (": use `group.remote.assignor` instead" if "assignment" in key
                                     else ": it is defined broker side"))
        if v["group_remote_assignor"] is not None and v["group_remote_assignor"] not in REMOTE_ASSIGNORS:
            raise ConfigError(written["group_remote_assignor"],
                              f"unknown server-side assignor (eosim models {', '.join(REMOTE_ASSIGNORS)})")
        return
    names = [n.strip() for n in v["partition_assignment_strategy"].split(",") if n.strip()]
    unknown = [n for n in names if n not in CLASSIC_ASSIGNORS]
    if not names or unknown:
        raise ConfigError(written.get("partition_assignment_strategy", "partition.assignment.strategy"),
                          f"unsupported assignor {unknown[0] if unknown else '(none)'} "
                          f"(eosim models {', '.join(CLASSIC_ASSIGNORS)})")


def _require_group(v: dict[str, Any], written: dict[str, str]) -> None:
    # confluent-kafka's Consumer() refuses to start without a group (Consumer_init); the API stays
    # confluent-kafka's under eosim.client = "java" too.
    if v["group_id"] is None:
        raise ConfigError(written.get("group_id", "group.id"), "group.id must be set")


# -- the Java client's rules (eosim.client = "java") ------------------------------------------------


def _finalize_java_producer(v: dict[str, Any], written: dict[str, str]) -> None:
    """ProducerConfig.postProcessAndValidateIdempotenceConfigs, then KafkaProducer.configureDeliveryTimeout
    (Java client 4.1). Idempotence is on by default; only an explicit enable.idempotence=true makes a
    conflicting retries or acks an error, a default one is silently turned off by them. max.in.flight > 5
    is an error either way. Java adjusts no timeout to transaction.timeout.ms."""
    if v["enable_idempotence"]:
        explicit = "enable_idempotence" in written
        disable = False
        if v["retries"] == 0:
            if explicit:
                raise ConfigError(written["retries"],
                                  "Must set retries to non-zero when using the idempotent producer.")
            disable = True
        if v["acks"] != -1:
            if explicit:
                raise ConfigError(written["acks"], "Must set acks to all in order to use the idempotent producer. "
                                                   "Otherwise we cannot guarantee idempotence.")
            disable = True
        in_flight = v["max_in_flight_requests_per_connection"]
        if in_flight > IDEMPOTENT_MAX_IN_FLIGHT:
            raise ConfigError(written.get("max_in_flight_requests_per_connection", "max.in.flight"),
                              "To use the idempotent producer, max.in.flight.requests.per.connection must be set to "
                              f"at most 5. Current value is {in_flight}.")
        v["enable_idempotence"] = not disable
    if v["transactional_id"] is not None and not v["enable_idempotence"]:
        raise ConfigError(written["transactional_id"],
                          "Cannot set a transactional.id without also enabling idempotence.")
    # delivery.timeout.ms >= linger.ms + request.timeout.ms (Java's client-side request timeout, which is
    # socket.timeout.ms here): an explicit smaller one is an error, the default one is raised to it.
    floor = int(v["linger_ms"]) + v["socket_timeout_ms"]
    if v["message_timeout_ms"] < floor:
        if "message_timeout_ms" in written:
            raise ConfigError(written["message_timeout_ms"],
                              "delivery.timeout.ms should be equal to or larger than linger.ms + request.timeout.ms "
                              "(Java's request.timeout.ms is socket.timeout.ms here)")
        v["message_timeout_ms"] = floor


def _finalize_java_consumer(v: dict[str, Any], written: dict[str, str]) -> None:
    """No max.poll.interval.ms >= session.timeout.ms check in Java; the group-protocol keys are checked as
    librdkafka does (ConsumerConfig refuses the classic settings under group.protocol=consumer too)."""
    _require_group(v, written)
    _check_group_protocol(v, written)


_FINALIZE = {
    (Client.LIBRDKAFKA, "producer"): _finalize_producer,
    (Client.LIBRDKAFKA, "consumer"): _finalize_consumer,
    (Client.JAVA, "producer"): _finalize_java_producer,
    (Client.JAVA, "consumer"): _finalize_java_consumer,
}
