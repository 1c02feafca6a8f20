"""eosim._scenario
============

The scenario format: one TOML file describes a situation as client-visible operations, so the
simulator and the conformance suite (real Kafka through confluent-kafka) replay the same file.
docs/scenario-format.md is the reference.

The frozen attrs classes below mirror the document one to one: a table is a class, a key is a
field (its ``doc`` and constraints in the field metadata), and the op table ``OPS`` maps each
``op`` to its step class. One generic walker turns a parsed document into these classes, refusing
unknown keys, missing fields and wrong types with the field path; ``_check`` then verifies what
types cannot (references, partition ranges, client and broker configs, actor lifecycle). The JSON
Schema (``scenario_json_schema``) is derived from the same classes.

Whatever the input, the loader raises nothing but ``ScenarioError``, and it refuses what would make a
run blow up in memory or time: the resource limits below (docs/scenario-format.md, "Limits") bound
the file, its arrays, strings, integers and durations; the runner bounds the simulated time and the
number of events of a run (``MAX_SIM_MS``, ``MAX_EVENTS``).
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal, Mapping, Union

import attrs
from attrs import NOTHING, field, frozen

from eosim.models.api import API_NAMES, INFRASTRUCTURE_ERRORS, TXN_LOG_APPEND, TXN_LOG_APPEND_ERRORS, injectable_errors
from eosim.models.config import BrokerConfig
from eosim.models.errors import Errors
from eosim.models.records import CONSUMER_OFFSETS_TOPIC, MAX_EPOCH, MAX_SEQUENCE, TRANSACTION_STATE_TOPIC
from eosim._client.config import ClientConfig, ConfigError, find_setting, validate_config
from eosim._conformable import refusal as proxy_refusal
from eosim._topology import (BROKERS, COORDINATOR_LOAD_MS, MAX_BROKERS, SHAPE_KEYS, TOPIC_CONFIGS, broker_count,
                             broker_nodes, cluster_config)


class ScenarioError(Exception):
    """A scenario file the loader refuses: ``file``, ``location`` (a field path such as
    ``steps[3].partition``, or ``line 12, column 5``) and ``reason``."""

    def __init__(self, file: str, location: str, reason: str) -> None:
        # one line, whatever the file holds: a value quoted in the message has its newlines and other
        # control or formatting characters (a terminal's escape sequences, U+202E) escaped
        location, reason = _printable(location), _printable(reason)
        super().__init__(f"{file}: {location}: {reason}")
        self.file = file
        self.location = location
        self.reason = reason

    def __reduce__(self):  # the default pickles only the message, which __init__ cannot take back
        return (type(self), (self.file, self.location, self.reason))


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class _Invalid(Exception):
    """Raised inside the loader, which adds the file name."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(location, reason)
        self.location = location
        self.reason = reason


# --- resource limits (docs/scenario-format.md, "Limits"): each is far above what the library and the
# studies use, and each is refused at its field with the value and the limit.
MAX_FILE_BYTES = 1_000_000  # a scenario file (the library's largest is under 6 kB)
MAX_ITEMS = 10_000  # items of any array: steps, records, offsets, nodes, ...
MAX_STRING = 10_000  # characters of any string: a record's key and value, a note, a name
MAX_TOPICS = 100
MAX_PARTITIONS = 1_000  # partitions of all topics together
MAX_ACTORS = 100
# [[faults]] rules: every message is matched against each armed rule (the dedup-window study writes up to 801)
MAX_FAULTS = 1_000
MAX_MS = 3_600_000  # any one duration or timeout (ms, timeout_ms, down_ms, load_ms, interval_ms, duration_ms)
MAX_COUNT = 1_000_000_000  # a fault's count, a consume step's max_records
MAX_INT = 2**63 - 1  # any other integer (offsets, the seed): Kafka's int64
MAX_SIM_MS = 3_600_000  # simulated time of a run, settle included: the runner stops there (unknown verdict)
MAX_EVENTS = 200_000  # simulation events of a run: the runner stops there (unknown verdict)
# TOML's own shape: arrays and inline tables nested deeper than tomllib's recursion allows, and integer
# literals longer than Python converts (sys.get_int_max_str_digits), are refused before any field is read.
MAX_INT_DIGITS = 4_300

# (regex, what it means): string fields that must match, with the words an error uses.
NAME_PATTERN = (r"^[a-z0-9][a-z0-9_-]*$", "lowercase letters, digits, - and _")
ACTOR_PATTERN = (r"^[A-Za-z][A-Za-z0-9_-]*$", "a letter, then letters, digits, - and _")
TOPIC_PATTERN = (r"^[A-Za-z0-9._-]{1,249}$", "1 to 249 letters, digits, . _ and - (Kafka's Topic.java)")
ERROR_PATTERN = (r"^(NONE|_?[A-Z][A-Z0-9_]*)$", '"NONE" or an error name in capitals, e.g. "_FENCED"')
ANOMALY_PATTERN = (r"^[A-Za-z][A-Za-z0-9_-]*$", "an anomaly name such as \"torn-transaction\"")

Scalar = Union[str, int, float, bool]  # a TOML scalar: the values of client and broker configs
BrokerValue = Union[Scalar, tuple[Scalar, ...]]  # broker properties also take arrays (eosim.reintroduce)


def _f(doc: str, default: Any = NOTHING, *, min: int | None = None, max: int | None = None,
       pattern: tuple[str, str] | None = None, nonempty: bool = False, derived: bool = False, **kwargs: Any) -> Any:
    """A documented field; ``derived`` fields are not keys of the document. An integer field without
    ``max`` takes up to ``MAX_INT``."""
    meta = {"doc": doc, "min": min, "max": max, "pattern": pattern, "nonempty": nonempty, "derived": derived}
    return field(default=default, metadata=meta, **kwargs)


# --- entries used inside sections and steps --------------------------------------------------------


@frozen(kw_only=True)
class PartitionRef:
    title: ClassVar[str] = "partition entry"

    topic: str = _f("Topic name, declared in [[topics]].")
    partition: int = _f("Partition number.", min=0, max=MAX_PARTITIONS - 1)


@frozen(kw_only=True)
class PartitionOffset:
    title: ClassVar[str] = "offset entry"

    topic: str = _f("Topic name, declared in [[topics]].")
    partition: int = _f("Partition number.", min=0, max=MAX_PARTITIONS - 1)
    offset: int = _f("The next offset to consume (last processed offset + 1).", min=0)


@frozen(kw_only=True)
class AssignEntry:
    title: ClassVar[str] = "assignment entry"

    topic: str = _f("Topic name, declared in [[topics]].")
    partition: int = _f("Partition number.", min=0, max=MAX_PARTITIONS - 1)
    offset: int | Literal["beginning", "end", "stored"] = _f(
        'Start offset, or "beginning", "end", or "stored" (the committed offset, else auto.offset.reset).',
        "stored", min=0)


@frozen(kw_only=True)
class ExpectedOffset:
    title: ClassVar[str] = "expected offset"

    topic: str = _f("Topic name, declared in [[topics]].")
    partition: int = _f("Partition number.", min=0, max=MAX_PARTITIONS - 1)
    offset: int | Literal["none"] = _f('The expected offset, or "none" for no offset.', min=0)


@frozen(kw_only=True)
class ExpectedDelivery:
    title: ClassVar[str] = "expected delivery"

    offset: int | None = _f("The offset the record must be delivered at; absent = not checked.", None, min=0)
    error: str | None = _f(
        '"NONE" = delivered without error; an error name as the delivery report\'s KafkaError.name() gives it '
        '(e.g. "INVALID_PRODUCER_EPOCH", "_MSG_TIMED_OUT") = the report must carry it; absent = "NONE".',
        None, pattern=ERROR_PATTERN)
    fatal: bool | None = _f("With an error: what the error's fatal() must return; absent = not checked.", None)
    retriable: bool | None = _f("With an error: what the error's retriable() must return; absent = not checked.",
                                None)
    abortable: bool | None = _f(
        "With an error: what the error's txn_requires_abort() must return; absent = not checked.", None)


@frozen(kw_only=True)
class Record:
    title: ClassVar[str] = "record"
    # Besides a table, an array of the fields in this order (TOML has no null: use a table,
    # leaving out key or value, for a null one).
    positional: ClassVar[tuple[tuple[str, ...], ...]] = (("offset", "key", "value"),)

    offset: int = _f("Offset of the record.", min=0)
    key: str | None = _f("Record key; absent = null.", None)
    value: str | None = _f("Record value; absent = null.", None)


@frozen(kw_only=True)
class ConsumedRecord:
    title: ClassVar[str] = "consumed record"
    positional: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("offset", "key", "value"), ("topic", "partition", "offset", "key", "value"))

    topic: str | None = _f("Topic of the record; absent = not compared.", None)
    partition: int | None = _f("Partition of the record; absent = not compared.", None, min=0, max=MAX_PARTITIONS - 1)
    offset: int = _f("Offset of the record.", min=0)
    key: str | None = _f("Record key; absent = null.", None)
    value: str | None = _f("Record value; absent = null.", None)


# --- steps: the op table ------------------------------------------------------------------------------

PRODUCER = ("producer",)
CONSUMER = ("consumer",)
ANY_KIND = ("producer", "consumer")
NEMESIS = "nemesis"  # the reserved actor of the nemesis ops (docs/faults.md)

OPS: dict[str, type[Step]] = {}


def _op(name: str, kinds: tuple[str, ...]):
    """Register a step class under its op name: adding an op is this decorator on its class."""

    def register(cls: type[Step]) -> type[Step]:
        cls.op, cls.kinds, cls.title = name, kinds, f'op = "{name}"'
        OPS[name] = cls
        return cls

    return register


@frozen(kw_only=True)
class Step:
    """Fields every step has. Steps run in order, each completing before the next starts unless
    ``nowait`` is set."""

    title: ClassVar[str] = "[[steps]]"
    op: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]

    actor: str = _f("Name of the actor (a key of [actors]) that performs the op.")
    expect_error: str | None = _f(
        '"NONE" = must succeed; an error name as confluent-kafka\'s KafkaError.name() gives it '
        '(e.g. "_FENCED", "CONCURRENT_TRANSACTIONS") = must fail with it; absent = not checked.',
        None, pattern=ERROR_PATTERN)
    nowait: bool = _f("Start the next step without waiting for this one to complete.", False)
    note: str | None = _f("Free text shown in diagrams.", None)


@frozen(kw_only=True)
class _Blocking(Step):
    timeout_ms: int | None = _f("Timeout passed to the call; absent = the client's default.", None, min=0, max=MAX_MS)


@_op("init_transactions", PRODUCER)
@frozen(kw_only=True)
class InitTransactions(_Blocking):
    """Producer.init_transactions(): fences older instances, gets the producer id and epoch."""


@_op("begin_transaction", PRODUCER)
@frozen(kw_only=True)
class BeginTransaction(Step):
    """Producer.begin_transaction()."""


@_op("produce", PRODUCER)
@frozen(kw_only=True)
class Produce(Step):
    """Producer.produce(): queues one record (delivery is reported by poll, flush or commit)."""

    topic: str = _f("Topic name, declared in [[topics]].")
    partition: int | None = _f("Partition; absent = librdkafka's partitioner.", None, min=0, max=MAX_PARTITIONS - 1)
    key: str | None = _f("Record key; absent = null.", None)
    value: str | None = _f("Record value; absent = null.", None)
    expect_delivery: ExpectedDelivery | None = _f(
        "The record's delivery report by the end of the run; absent = not checked.", None)


@_op("flush", PRODUCER)
@frozen(kw_only=True)
class Flush(_Blocking):
    """Producer.flush(): waits until every queued record is delivered or failed."""


@_op("send_offsets_to_transaction", PRODUCER)
@frozen(kw_only=True)
class SendOffsetsToTransaction(_Blocking):
    """Producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata())."""

    consumer: str = _f("Name of the consumer actor whose group metadata is sent.")
    offsets: tuple[PartitionOffset, ...] | None = _f(
        "Offsets to commit with the transaction; absent = the consumer's current positions.", None)


@_op("commit_transaction", PRODUCER)
@frozen(kw_only=True)
class CommitTransaction(_Blocking):
    """Producer.commit_transaction() (flushes first)."""


@_op("abort_transaction", PRODUCER)
@frozen(kw_only=True)
class AbortTransaction(_Blocking):
    """Producer.abort_transaction()."""


@_op("poll", PRODUCER)
@frozen(kw_only=True)
class Poll(Step):
    """Producer.poll(): serves delivery reports."""

    timeout_ms: int = _f("How long to wait for an event.", 0, min=0, max=MAX_MS)


@_op("assign", CONSUMER)
@frozen(kw_only=True)
class Assign(Step):
    """Consumer.assign(): manual assignment."""

    partitions: tuple[AssignEntry, ...] = _f("The partitions to read, with optional start offsets.")


@_op("subscribe", CONSUMER)
@frozen(kw_only=True)
class Subscribe(Step):
    """Consumer.subscribe(): group-managed assignment."""

    topics: tuple[str, ...] = _f("Topic names, declared in [[topics]].", nonempty=True)


@_op("consume", CONSUMER)
@frozen(kw_only=True)
class Consume(Step):
    """Calls Consumer.consume() for timeout_ms, or until max_records records arrived."""

    max_records: int | None = _f("Stop after this many records; absent = read for the whole timeout.", None, min=1,
                                 max=MAX_COUNT)
    timeout_ms: int = _f("How long the step reads.", 2000, min=0, max=MAX_MS)
    expect_records: tuple[ConsumedRecord, ...] | None = _f(
        "The records the step must return, in order; absent = not checked.", None)


@_op("commit", CONSUMER)
@frozen(kw_only=True)
class Commit(Step):
    """Consumer.commit()."""

    offsets: tuple[PartitionOffset, ...] | None = _f("Offsets to commit; absent = the current positions.", None)
    asynchronous: bool = _f("Return without waiting for the result.", False)


@_op("position", CONSUMER)
@frozen(kw_only=True)
class Position(Step):
    """Consumer.position(): the next offset to fetch, per partition."""

    partitions: tuple[PartitionRef, ...] | None = _f("Partitions to ask about; absent = the assignment.", None)
    expect_offsets: tuple[ExpectedOffset, ...] | None = _f("Offsets the call must return; absent = not checked.", None)


@_op("committed", CONSUMER)
@frozen(kw_only=True)
class Committed(_Blocking):
    """Consumer.committed(): the group's committed offsets (read_committed: stable ones only)."""

    partitions: tuple[PartitionRef, ...] | None = _f("Partitions to ask about; absent = the assignment.", None)
    expect_offsets: tuple[ExpectedOffset, ...] | None = _f("Offsets the call must return; absent = not checked.", None)


@_op("close", ANY_KIND)
@frozen(kw_only=True)
class Close(Step):
    """close(): a producer aborts an open transaction and flushes; a consumer leaves its group."""


@_op("crash", ANY_KIND)
@frozen(kw_only=True)
class Crash(Step):
    """The instance vanishes without closing; the broker notices only through timeouts."""


@_op("restart", ANY_KIND)
@frozen(kw_only=True)
class Restart(Step):
    """A new instance with the same config replaces a closed or crashed one."""


@_op("sleep", (*ANY_KIND, NEMESIS))
@frozen(kw_only=True)
class Sleep(Step):
    """The actor does nothing for ms milliseconds (simulated time; wall time against Kafka)."""

    ms: int = _f("How long.", min=0, max=MAX_MS)


# Nemesis ops (actor = "nemesis"): each takes effect at once, and the next step starts.


@_op("partition", (NEMESIS,))
@frozen(kw_only=True)
class Partition(Step):
    """Cut every link between these nodes and all the others, until a heal (simulator only)."""

    nodes: tuple[str, ...] = _f('Actors, or "broker-1", on one side of the cut.', nonempty=True)


@_op("clog", (NEMESIS,))
@frozen(kw_only=True)
class Clog(Step):
    """Every message on these nodes' links takes ms longer, until a heal (simulator only)."""

    nodes: tuple[str, ...] = _f('Actors, or "broker-1", whose links are slowed.', nonempty=True)
    ms: int = _f("Extra latency of each message, in ms.", min=1, max=MAX_MS)


@_op("disconnect", (NEMESIS,))
@frozen(kw_only=True)
class Disconnect(Step):
    """Close these nodes' connections now: requests waiting for a response fail with a transport error
    and are retried (simulator only)."""

    nodes: tuple[str, ...] = _f('Actors, or "broker-1", whose connections close.', nonempty=True)


@_op("heal", (NEMESIS,))
@frozen(kw_only=True)
class Heal(Step):
    """Restore every cut link, unclog every link and end every until-healed fault (simulator only)."""


@_op("pause", (NEMESIS,))
@frozen(kw_only=True)
class Pause(Step):
    """Stop the world for these actors for ms: their process neither runs nor reads or sends (SIGSTOP,
    then SIGCONT against Kafka). Their next steps wait until they wake."""

    nodes: tuple[str, ...] = _f("Actors to pause.", nonempty=True)
    ms: int = _f("How long, in ms.", min=1, max=MAX_MS)


@_op("crash_broker", (NEMESIS,))
@frozen(kw_only=True)
class CrashBroker(Step):
    """Kill the broker process: it reads and sends nothing, its clients time out and retry, and what it held
    in memory is lost; its logs stay (simulator only)."""

    broker: str = _f("The broker node (broker-1 .. broker-N).", BROKERS[0])


@_op("restart_broker", (NEMESIS,))
@frozen(kw_only=True)
class RestartBroker(Step):
    """Start the crashed broker again: each log's producer state comes from the snapshot at its end (one batch per
    producer), and its coordinators load at a new epoch (simulator only)."""

    broker: str = _f("The broker node (broker-1 .. broker-N).", BROKERS[0])
    load_ms: int = _f("How long the coordinators load (COORDINATOR_LOAD_IN_PROGRESS meanwhile).", COORDINATOR_LOAD_MS,
                      min=0, max=MAX_MS)


@_op("coordinator_failover", (NEMESIS,))
@frozen(kw_only=True)
class CoordinatorFailover(Step):
    """The transaction coordinator moves away and back at the next coordinator epoch, without a crash; it re-sends
    the markers of every PrepareCommit/PrepareAbort transaction (simulator only)."""

    down_ms: int = _f("How long no broker is the coordinator (NOT_COORDINATOR meanwhile).", 0, min=0, max=MAX_MS)
    load_ms: int = _f("How long it then loads the transaction log (COORDINATOR_LOAD_IN_PROGRESS meanwhile).",
                      COORDINATOR_LOAD_MS, min=0, max=MAX_MS)


NETWORK_OPS = ("partition", "clog", "disconnect", "heal")
# the nemesis ops only the simulator performs
SIMULATOR_OPS = (*NETWORK_OPS, "crash_broker", "restart_broker", "coordinator_failover")
# the nemesis ops the real N-broker cluster performs too (docs/conformance.md, "Three brokers"): a broker's JVM
# killed (SIGKILL) and started again, and brokers cut off from every other node (SIGSTOP until the heal)
CLUSTER_CONFORMANCE_OPS = ("partition", "heal", "crash_broker", "restart_broker")


# --- sections --------------------------------------------------------------------------------------

UNTIL_HEALED = "until-healed"
NEMESIS_KINDS = ("partition", "clog", "pause", "disconnect", "drop", "delay", "error")
# kinds a nemesis may also draw, not by default: they strike a broker, not an actor. One broker: it is the target
# (none given). [cluster] brokers = N: broker-restart (a killed process, restarted at the heal) and
# broker-partition (a silent host: every link of the broker cut until the heal) strike one of broker-2 .. broker-N.
NEMESIS_BROKER_KINDS = ("txn-log", "coordinator-failover", "broker-restart", "broker-partition")
NEMESIS_CLUSTER_KINDS = ("broker-restart", "broker-partition")  # the kinds whose target is a broker of N
NemesisKind = Literal["partition", "clog", "pause", "disconnect", "drop", "delay", "error", "txn-log",
                      "coordinator-failover", "broker-restart", "broker-partition"]


@frozen(kw_only=True)
class Fault:
    """A fault rule: the messages it selects (every field given must match), what happens to them, how
    many times, and from when (simulator only, but for the plain drops a proxy does on Kafka; docs/faults.md)."""

    title: ClassVar[str] = "[[faults]]"

    name: str = _f("Names the rule in the trace and diagrams.", pattern=NAME_PATTERN)
    action: Literal["drop", "delay", "disconnect", "error"] = _f(
        "drop the message; delay it by ms; close its connection; or answer the request with error.")
    message: str | None = _f('Kafka API of the message, e.g. "Produce", "EndTxn", or "TxnLogAppend" (the '
                             "transaction coordinator's own append to __transaction_state); absent = any request "
                             "or response.", None)
    direction: Literal["request", "response"] | None = _f("Only requests, or only responses; absent = both.", None)
    node: str | None = _f('An actor, or "broker-1", at either end of the connection; absent = any.', None)
    src: str | None = _f('The node that sent the request (an actor, or a broker for its own requests: markers, '
                         'verification); a response is judged by its request; absent = any.', None)
    dst: str | None = _f("The node the request was sent to (a response is judged by its request); absent = any.",
                         None)
    topic: str | None = _f("Messages about this topic; absent = any.", None)
    partition: int | None = _f("With topic: messages about this partition; absent = any.", None, min=0,
                               max=MAX_PARTITIONS - 1)
    transactional_id: str | None = _f("Messages that carry this transactional.id; absent = any.", None)
    ms: int | None = _f("delay only: how long, in ms.", None, min=1, max=MAX_MS)
    error: str | None = _f("error only: the Kafka error name the broker answers with.", None)
    count: int | Literal["until-healed"] = _f('How many messages it strikes, or "until-healed".', 1, min=1,
                                              max=MAX_COUNT)
    after_step: int | None = _f("Armed once this step was performed; absent = from the start.", None, min=0,
                                max=MAX_ITEMS - 1)
    after_message: str | None = _f("Armed once the after_count-th request of this Kafka API was sent (not by a "
                                   "step); absent = not armed by a message.", None)
    after_count: int = _f("With after_message: which request of that API arms the rule (1 = the first).", 1, min=1,
                          max=MAX_COUNT)
    after_node: str | None = _f("With after_message: count only the requests of that API this node sent (an actor, "
                                "or a broker for its own requests); absent = every node's.", None)

    def __attrs_post_init__(self) -> None:
        _check_own_fields(self)


@frozen(kw_only=True)
class Strike:
    """One fault of a nemesis schedule: what, on whom, when and for how long. The random nemesis draws
    these from its seed; a schedule written out replays them exactly (docs/faults.md)."""

    title: ClassVar[str] = "[[nemesis.strikes]]"

    at_ms: int = _f("When it strikes, in ms after the nemesis started; after the previous strike has healed.",
                    min=0, max=MAX_MS)
    kind: NemesisKind = _f("The fault (the kinds of [nemesis]).")
    target: str | None = _f("The actor it strikes; for broker-restart and broker-partition with [cluster] brokers = N, "
                            "the broker (broker-2 .. broker-N); absent for the other broker kinds.", None)
    duration_ms: int = _f("How long until the heal (for broker-restart: until the restart; for coordinator-failover: "
                          "how long the coordinator is away).", min=1, max=MAX_MS)
    count: int | None = _f("drop, delay, error, txn-log: how many messages (or appends) it strikes.", None, min=1,
                           max=MAX_COUNT)
    ms: int | None = _f("clog: the extra latency; delay: the delay, in ms.", None, min=1, max=MAX_MS)
    error: str | None = _f("error, txn-log: the Kafka error.", None)

    def __attrs_post_init__(self) -> None:
        _check_own_fields(self)


@frozen(kw_only=True)
class Nemesis:
    """A seeded random nemesis: quiet gaps and faults on random targets, each fault healed after its
    duration, all healed when it stops (simulator only). With ``strikes`` it draws nothing: it replays them."""

    title: ClassVar[str] = "[nemesis]"

    kinds: tuple[NemesisKind, ...] = _f(
        "Which faults it draws from.", NEMESIS_KINDS, nonempty=True)
    targets: tuple[str, ...] = _f("Actors it strikes; empty = every actor.", ())
    interval_ms: int = _f("Mean quiet gap before each fault, in ms.", 1000, min=2, max=MAX_MS)
    duration_ms: int = _f("Mean duration of each fault, in ms.", 1000, min=2, max=MAX_MS)
    after_step: int | None = _f("Starts once this step was performed; absent = with the first step.", None, min=0,
                                max=MAX_ITEMS - 1)
    until_step: int | None = _f("Heals and stops before this step; absent = when the steps end.", None, min=1,
                                max=MAX_ITEMS - 1)
    strikes: tuple[Strike, ...] = _f("A schedule to replay instead of random draws (kinds, targets, interval_ms "
                                     "and duration_ms then unused); empty = draw at random.", ())

    def __attrs_post_init__(self) -> None:
        _check_own_fields(self)


@frozen(kw_only=True)
class Pipeline:
    title: ClassVar[str] = "[scenario.pipeline]"

    input: str = _f("Topic the application consumes, declared in [[topics]].")
    output: str = _f("Topic it writes one copy of each input value to (the identity transform).")


@frozen(kw_only=True)
class ScenarioInfo:
    title: ClassVar[str] = "[scenario]"

    name: str = _f("Equals the file name without .toml: lowercase letters, digits, - and _.", pattern=NAME_PATTERN)
    description: str = _f("One line saying what the scenario shows.")
    seed: int = _f("Seed of the simulator's random streams.", 1, min=0)
    expect_anomalies: tuple[str, ...] = _f(
        "Anomaly names the checkers must report (a broken-pattern scenario); empty = the run must be valid.", (),
        pattern=ANOMALY_PATTERN)
    conformance: bool = _f("Replay against a real Kafka broker in the conformance suite.", True)
    racy_seeds: int = _f(
        "0 = the observation is deterministic: Kafka must observe what the simulator observes with `seed`. "
        "N > 0 = it is racy: the allowed observations are those the simulator reaches with seeds "
        "`seed` .. `seed` + N - 1, and Kafka's must be one of them.", 0, min=0, max=1000)
    pipeline: Pipeline | None = _f(
        "A consume-transform-produce application to check end to end: every committed input value must "
        "appear exactly once among the committed output values.", None)


@frozen(kw_only=True)
class Topic:
    title: ClassVar[str] = "[[topics]]"

    name: str = _f("Topic name (Kafka's legal characters: letters, digits, . _ -).", pattern=TOPIC_PATTERN)
    partitions: int = _f("Number of partitions.", 1, min=1, max=MAX_PARTITIONS)
    replication_factor: int = _f("Replicas of each partition, each on its own broker (at most [cluster] brokers).", 1,
                                 min=1, max=MAX_BROKERS)
    config: dict[str, Scalar] = _f(
        'Topic configuration by Kafka\'s names: "min.insync.replicas" (int >= 1), '
        '"unclean.leader.election.enable" (bool). Needs [cluster] brokers > 1.', attrs.Factory(dict), hash=False)


@frozen(kw_only=True)
class Aged:
    title: ClassVar[str] = "[actors.<name>.aged]"

    epoch: int = _f("The producer epoch it has reached: a transactional.id registered at the coordinator at this "
                    "epoch (its last transaction committed); an idempotent producer holding a producer id at it.",
                    0, min=0, max=MAX_EPOCH)
    sequence: int | None = _f("An idempotent producer's next sequence number on every partition (the broker holds "
                              "its last batch, ending one before, wrapping at Int.MAX_VALUE); absent = 0 with no "
                              "earlier batch. Not for a transactional producer.", None, min=0, max=MAX_SEQUENCE)


@frozen(kw_only=True)
class Actor:
    title: ClassVar[str] = "[actors.<name>]"

    kind: Literal["producer", "consumer"] = _f("Which client the actor is.")
    config: dict[str, Scalar] = _f(
        "librdkafka configuration (docs/client-config.md); bootstrap.servers is set by the runner.",
        attrs.Factory(dict), hash=False)
    aged: Aged | None = _f("A producer that starts as a long-running one has left it (simulator-only): see "
                           "docs/scenario-format.md, Long-lived state.", None)

    @property
    def client_config(self) -> ClientConfig:
        return validate_config(self.kind, self.config)


@frozen(kw_only=True)
class PartitionExpectation:
    title: ClassVar[str] = "[[expect.partitions]]"

    topic: str = _f("Topic name, declared in [[topics]].")
    partition: int = _f("Partition number.", min=0, max=MAX_PARTITIONS - 1)
    high_watermark: int | None = _f("Expected high watermark; absent = not checked.", None, min=0)
    last_stable_offset: int | None = _f("Expected last stable offset; absent = not checked.", None, min=0)
    read_committed: tuple[Record, ...] | None = _f(
        "Records a fresh read_committed reader sees, in order; absent = not checked.", None)
    read_uncommitted: tuple[Record, ...] | None = _f(
        "Records a fresh read_uncommitted reader sees (data records only); absent = not checked.", None)


@frozen(kw_only=True)
class CommittedExpectation:
    title: ClassVar[str] = "[[expect.committed]]"

    group: str = _f("Consumer group id (the group.id of a consumer actor).")
    topic: str = _f("Topic name, declared in [[topics]].")
    partition: int = _f("Partition number.", min=0, max=MAX_PARTITIONS - 1)
    offset: int | Literal["none"] = _f('The committed offset a fresh reader sees, or "none".', min=0)


@frozen(kw_only=True)
class Expect:
    title: ClassVar[str] = "[expect]"

    partitions: tuple[PartitionExpectation, ...] = _f("Final state of partitions.", ())
    committed: tuple[CommittedExpectation, ...] = _f("Final committed offsets of groups.", ())


@frozen(kw_only=True)
class Scenario:
    title: ClassVar[str] = "top level"

    header: str = _f("The leading comment block: what the scenario teaches.", derived=True)
    scenario: ScenarioInfo = _f("What the scenario is.")
    cluster: dict[str, BrokerValue] = _f(
        "Broker configuration overrides, by Kafka's dotted names (eosim.models.config.BrokerConfig).",
        attrs.Factory(dict), hash=False)
    topics: tuple[Topic, ...] = _f("Topics created before the first step.", (), max=MAX_TOPICS)
    actors: dict[str, Actor] = _f("The clients, by name.", attrs.Factory(dict), max=MAX_ACTORS, hash=False)
    steps: tuple[Step, ...] = _f("The operations, in their global order.", nonempty=True)
    faults: tuple[Fault, ...] = _f("Fault rules, tried in this order (simulator only, but for plain drops).", (),
                                   max=MAX_FAULTS)
    nemesis: Nemesis | None = _f("A seeded random nemesis (simulator only).", None)
    expect: Expect = _f("Expectations on the final state.", attrs.Factory(Expect))

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def description(self) -> str:
        return self.scenario.description

    @property
    def seed(self) -> int:
        return self.scenario.seed

    @property
    def broker_config(self) -> BrokerConfig:
        return BrokerConfig.from_kafka({k: v for k, v in self.cluster.items() if k not in SHAPE_KEYS})

    @property
    def brokers(self) -> tuple[str, ...]:
        """The broker nodes: broker-1 .. broker-N ([cluster] brokers, default 1)."""
        return broker_nodes(broker_count(self.cluster))

    def topic(self, name: str) -> Topic | None:
        return next((t for t in self.topics if t.name == name), None)


# --- loading ----------------------------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file (errors name it)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError) as err:  # ValueError: a NUL in the path
        raise ScenarioError(str(path), "file", f"cannot read it: {getattr(err, 'strerror', None) or err}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioError(str(path), "file", f"larger than the limit of {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ScenarioError(str(path), "file", f"not UTF-8: {err.reason} at byte {err.start}") from None
    return load_scenario_text(text, path.stem, file=str(path))


def load_scenario_text(text: str, name: str, *, file: str | None = None) -> Scenario:
    """Load a scenario from TOML text; errors name ``file``, else ``<name>``."""
    file = file if file is not None else f"<{name}>"
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        location, reason = _toml_error(str(err))
        raise ScenarioError(file, location, reason) from None
    except RecursionError:  # tomllib recurses once per level of arrays and inline tables
        raise ScenarioError(file, _nesting_location(text), "arrays or inline tables nested too deeply "
                                                           "(the format nests at most 3 deep)") from None
    except ValueError:  # int() refuses a literal longer than sys.get_int_max_str_digits()
        raise ScenarioError(file, _long_number_location(text),
                            f"an integer of more than {MAX_INT_DIGITS} digits (no field takes one)") from None
    return scenario_from_dict(document, name=name, header=_header(text), file=file)


def scenario_from_dict(document: Mapping[str, Any], *, name: str, header: str, file: str | None = None) -> Scenario:
    """Build and validate a scenario from a parsed document (the TOML's tables as dicts); errors name
    ``file``, else ``<name>``."""
    file = file if file is not None else f"<{name}>"
    try:
        if not isinstance(document, Mapping):
            raise _Invalid("document", f"expected a table, got {_describe(document)}")
        scenario = _structure_table(Scenario, document, "", derived={"header": header})
        _check(scenario)
        return scenario
    except _Invalid as err:
        raise ScenarioError(file, err.location, err.reason) from None


def check_parts(*, topics: Mapping[str, Any], cluster: Mapping[str, Any], actors: Mapping[str, Mapping[str, Any]],
                faults: tuple[Fault, ...] = (), nemesis: Nemesis | None = None, what: str) -> None:
    """Check the parts of a simulation built in Python (eosim.Simulation) exactly as the loader checks a
    scenario's ``[[topics]]``, ``[cluster]``, ``[[faults]]`` and ``[nemesis]``: types and ranges, each fault
    action's own fields, API and error names, references to the topics and to ``actors`` (client name ->
    config). Raises ScenarioError(``what``, field path, reason)."""
    try:
        declared = tuple(_structure_table(Topic, {"name": name, "partitions": n}, f"topics[{i}]")
                         for i, (name, n) in enumerate(topics.items()))
        _check_topics(declared)
        _check_cluster(cluster)
        checked = tuple(_structure_table(Fault, _unstructure(f), f"faults[{i}]") for i, f in enumerate(faults))
        spec = None if nemesis is None else _structure_table(Nemesis, _unstructure(nemesis), "nemesis")
        _check_faults(Scenario(
            header="", scenario=ScenarioInfo(name="python", description="", conformance=False), topics=declared,
            actors={name: Actor(kind="producer" if "transactional.id" in config else "consumer", config=dict(config))
                    for name, config in actors.items()},
            steps=(), faults=checked, nemesis=spec))
    except _Invalid as err:
        raise ScenarioError(what, err.location, err.reason) from None


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """The document ``scenario_from_dict`` reads back into an equal scenario (the header excluded)."""
    return _unstructure(scenario)


def _toml_error(message: str) -> tuple[str, str]:
    """tomllib's "reason (at line L, column C)" as (location, reason)."""
    match = re.fullmatch(r"(.*) \(at (line \d+, column \d+|end of document)\)", message, re.DOTALL)
    if not match:
        return "document", message
    return match.group(2), f"TOML syntax: {match.group(1)}"


def _line_column(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    return f"line {line}, column {index - (text.rfind(chr(10), 0, index) + 1) + 1}"


def _nesting_location(text: str, limit: int = 100) -> str:
    """Where brackets and braces outside strings and comments first nest ``limit`` deep (a rough TOML
    lexer, good enough to point at the place)."""
    depth, i, quote = 0, 0, ""
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote in ('"', '"""'):
                i += 1
            elif text.startswith(quote, i):
                i += len(quote) - 1
                quote = ""
        elif c == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif c in "\"'":
            quote = c * 3 if text.startswith(c * 3, i) else c
            i += len(quote) - 1
        elif c in "[{":
            depth += 1
            if depth >= limit:
                return _line_column(text, i)
        elif c in "]}":
            depth -= 1
        i += 1
    return "document"


def _long_number_location(text: str) -> str:
    match = re.search(rf"[0-9][0-9_]{{{MAX_INT_DIGITS},}}", text)
    return _line_column(text, match.start()) if match else "document"


def _header(text: str) -> str:
    """The comment lines before the first statement, without their '#'; blank lines inside are kept."""
    lines: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            lines.append(stripped[1:].removeprefix(" ").rstrip())
        elif stripped:
            break
        elif lines:
            lines.append("")
    return "\n".join(lines).strip()


# --- the generic walker: document -> classes ---------------------------------------------------------


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _fields(cls: type) -> tuple[attrs.Attribute, ...]:
    return tuple(f for f in attrs.fields(cls) if not f.metadata.get("derived"))


def _by_identity(question: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``question`` answered once per type object, looked up by identity: a ``functools.cache`` hashes its key,
    and a Literal's or a union's hash is computed in Python on every lookup (a third of checking a drawn Strike)."""
    answers: dict[int, tuple[Any, Any]] = {}

    def answer(tp: Any) -> Any:
        known = answers.get(id(tp))
        if known is None:  # kept with its answer, the type stays alive: no other object takes its id
            known = answers[id(tp)] = (tp, question(tp))
        return known[1]
    return answer


# The walker asks the same few types the same questions for every value of every document: answered once.
_origin = _by_identity(typing.get_origin)
_args = _by_identity(typing.get_args)
_is_table = _by_identity(attrs.has)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        # a huge one (a hex literal has no digit limit) by its size: str() of it could be refused, or be huge
        return f"the integer {value}" if value.bit_length() <= 128 else f"an integer of {value.bit_length()} bits"
    if isinstance(value, float):
        return f"the float {value}"
    if isinstance(value, str):
        return f"the string {_shown(value)}"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return f"a {type(value).__name__}"


def _shown(text: str, limit: int = 60) -> str:
    """A string as an error message quotes it: repr, cut after ``limit`` characters."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def _expected(tp: Any) -> str:
    origin = _origin(tp)
    if tp is str:
        return "a string"
    if tp is int:
        return "an integer"
    if tp is bool:
        return "true or false"
    if tp is float:
        return "a number"
    if origin is Literal:
        return "one of " + ", ".join(f'"{a}"' for a in _args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_expected(a) for a in _args(tp) if a is not type(None))
    if origin is tuple:
        return "an array"
    return "a table"


MAX_KEY = 60  # characters of a key shown in a location


def _key(location: str, name: str, *, quote: bool = False) -> str:
    """A field path like TOML writes keys: ``actors.p1.config."linger.ms"``."""
    if len(name) > MAX_KEY:
        name = f"{name[:MAX_KEY]}..."
    if quote or not _BARE_KEY.fullmatch(name):
        name = json.dumps(name, ensure_ascii=False)  # a TOML basic string: quotes and control characters escaped
    return f"{location}.{name}" if location else name


def _structure(tp: Any, value: Any, location: str) -> Any:
    origin = _origin(tp)
    if tp is Step:
        return _structure_step(value, location)
    if _is_table(tp):
        positional = getattr(tp, "positional", ())
        if isinstance(value, list) and positional:
            shape = next((s for s in positional if len(s) == len(value)), None)
            if shape is None:
                lengths = " or ".join(str(len(s)) for s in positional)
                raise _Invalid(location, f"expected an array of {lengths} items "
                                         f"({' or '.join('[' + ', '.join(s) + ']' for s in positional)}), "
                                         f"got {len(value)} items")
            value = dict(zip(shape, value))
        return _structure_table(tp, value, location)
    if origin in (Union, types.UnionType):
        for member in _args(tp):
            if member is not type(None) and _accepts(member, value):
                return _structure(member, value, location)
        if value is None and type(None) in _args(tp):
            return None
        raise _Invalid(location, f"expected {_expected(tp)}, got {_describe(value)}")
    if origin is tuple:
        if not isinstance(value, list):
            raise _Invalid(location, f"expected an array, got {_describe(value)}")
        _check_size(value, MAX_ITEMS, location)
        return tuple(_structure(_args(tp)[0], item, f"{location}[{i}]") for i, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _Invalid(location, f"expected a table, got {_describe(value)}")
        item_type = _args(tp)[1]
        _check_size(value, MAX_ITEMS, location)
        for k in value:
            if not isinstance(k, str):
                raise _Invalid(location, f"keys are strings, got {_describe(k)}")
        # Property maps (config, cluster) always quote their keys, as they are dotted names.
        quote = not _is_table(item_type)
        return {k: _structure(item_type, v, _key(location, str(k), quote=quote)) for k, v in value.items()}
    if not _accepts(tp, value):
        raise _Invalid(location, f"expected {_expected(tp)}, got {_describe(value)}")
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise _Invalid(location, f"a string of {len(value)} characters, more than the limit of {MAX_STRING}")
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT - 1 <= value <= MAX_INT:
        raise _Invalid(location, f"{_describe(value)} is out of range: integers are 64-bit "
                                 f"({-MAX_INT - 1}..{MAX_INT})")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid(location, f"expected a finite number, got {_describe(value)}")
    return value


def _check_size(value: Any, limit: int, location: str) -> None:
    if len(value) > limit:
        items = "entries" if isinstance(value, Mapping) else "items"
        raise _Invalid(location, f"{len(value)} {items}, more than the limit of {limit}")


def _accepts(tp: Any, value: Any) -> bool:
    """Whether a scalar type (or a union member) takes this value; containers say yes to their shape."""
    origin = _origin(tp)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is Literal:
        return isinstance(value, str) and value in _args(tp)
    if origin in (Union, types.UnionType):
        return any(_accepts(member, value) for member in _args(tp))
    if origin is tuple:
        return isinstance(value, list)
    return isinstance(value, Mapping) or (isinstance(value, list) and bool(getattr(tp, "positional", ())))


def _structure_table(cls: type, value: Any, location: str, derived: Mapping[str, Any] | None = None) -> Any:
    if not isinstance(value, Mapping):
        raise _Invalid(location, f"expected a table, got {_describe(value)}")
    fields = {f.name: f for f in _fields(cls)}
    for key in value:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            raise _Invalid(_key(location, str(key)),
                           f"unknown key{hint} (allowed here: {', '.join(fields) or 'none'})")
    kwargs = dict(derived or {})
    for name, f in fields.items():
        where = _key(location, name)
        if name not in value:
            if f.default is NOTHING:
                raise _Invalid(where, "missing required field")
            continue
        kwargs[name] = _constrain(f, _structure(_hints(cls)[name], value[name], where), where)
    return cls(**kwargs)


def _check_own_fields(value: Any) -> None:
    """A ``Fault`` or ``Nemesis`` built in Python (eosim.Fault) checks its fields' types and ranges at once, as the
    loader checks the keys of its table; what depends on the rest of a simulation (topics, clients, which fields an
    action takes) is checked where it is installed (``check_parts``)."""
    cls = type(value)
    for f in _fields(cls):
        try:
            _constrain(f, _structure(_hints(cls)[f.name], _unstructure(getattr(value, f.name)), f.name), f.name)
        except _Invalid as err:
            raise ValueError(f"{cls.__name__}.{err.location}: {err.reason}") from None


def _constrain(f: attrs.Attribute, value: Any, location: str) -> Any:
    meta = f.metadata
    items = list(enumerate(value)) if isinstance(value, tuple) and meta["pattern"] else [(None, value)]
    if meta["max"] is not None and isinstance(value, (tuple, dict)):
        _check_size(value, meta["max"], location)
    for i, item in items:
        where = location if i is None else f"{location}[{i}]"
        if meta["min"] is not None and _accepts(int, item) and item < meta["min"]:
            raise _Invalid(where, f"must be >= {meta['min']}, got {item}")
        limit = MAX_INT if meta["max"] is None else meta["max"]
        if _accepts(int, item) and item > limit:
            raise _Invalid(where, f"must be <= {limit}, got {item}")
        if meta["pattern"] and isinstance(item, str) and not re.fullmatch(meta["pattern"][0], item):
            raise _Invalid(where, f"expected {meta['pattern'][1]}, got {_describe(item)}")
    if meta["nonempty"] and not value:
        raise _Invalid(location, "must not be empty")
    return value


def _structure_step(value: Any, location: str) -> Step:
    if not isinstance(value, Mapping):
        raise _Invalid(location, f"expected a table, got {_describe(value)}")
    op = value.get("op")
    if op is None:
        raise _Invalid(_key(location, "op"), "missing required field")
    if not isinstance(op, str) or op not in OPS:
        # A hint only for a misspelt name: str() of another value can fail (a 5,000-digit integer).
        close = difflib.get_close_matches(op, list(OPS), n=1) if isinstance(op, str) else []
        hint = f'; did you mean "{close[0]}"?' if close else ""
        shown = f'"{op}"' if isinstance(op, str) else _describe(op)
        raise _Invalid(_key(location, "op"), f"unknown op {shown}{hint} (ops: {', '.join(OPS)})")
    return _structure_table(OPS[op], {k: v for k, v in value.items() if k != "op"}, location)


def _unstructure(value: Any) -> Any:
    if _is_table(type(value)):
        out = {"op": value.op} if isinstance(value, Step) else {}
        for f in _fields(type(value)):
            item = getattr(value, f.name)
            if item is not None:
                out[f.name] = _unstructure(item)
        return out
    if isinstance(value, tuple):
        return [_unstructure(v) for v in value]
    if isinstance(value, dict):
        return {k: _unstructure(v) for k, v in value.items()}
    return value


# --- checks beyond types -----------------------------------------------------------------------------


def _check(s: Scenario) -> None:
    if "\n" in s.scenario.description:
        raise _Invalid("scenario.description", "must be one line")
    _check_unique(s.scenario.expect_anomalies, "scenario.expect_anomalies")
    _check_cluster(s.cluster)
    _check_topics(s.topics)
    _check_replication(s)
    if s.scenario.pipeline is not None:
        for end in ("input", "output"):
            if s.topic(getattr(s.scenario.pipeline, end)) is None:
                raise _Invalid(f"scenario.pipeline.{end}",
                               f'topic "{getattr(s.scenario.pipeline, end)}" is not declared in [[topics]]')
    for i, topic in enumerate(s.topics):
        if topic.name in (".", "..") or topic.name in (CONSUMER_OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC):
            raise _Invalid(f"topics[{i}].name", f'"{topic.name}" is not a topic a scenario may create')
    for name, actor in s.actors.items():
        _check_actor(name, actor)
        if actor.aged is not None:
            _check_aged(s, name, actor)
    # actor or broker -> None, or the location of its close/crash
    alive: dict[str, str | None] = {name: None for name in (*s.actors, *s.brokers)}
    for i, step in enumerate(s.steps):
        _check_step(s, step, f"steps[{i}]", alive)
    for broker in s.brokers:
        if alive[broker] is not None:
            raise _Invalid(alive[broker], f"{broker} stays down: restart it, the final observation reads it")
    _check_faults(s)
    _check_expectations(s)


def _check_topics(topics: tuple[Topic, ...]) -> None:
    _check_size(topics, MAX_TOPICS, "topics")
    _check_unique([t.name for t in topics], "topics", ".name")
    if (total := sum(t.partitions for t in topics)) > MAX_PARTITIONS:
        raise _Invalid("topics", f"{total} partitions in all, more than the limit of {MAX_PARTITIONS}")


def _check_unique(values: Any, location: str, suffix: str = "") -> None:
    seen = set()
    for i, value in enumerate(values):
        if value in seen:
            raise _Invalid(f"{location}[{i}]{suffix}", f"duplicate {value!r}")
        seen.add(value)


INT32 = (-(2**31), 2**31 - 1)
# Kafka's validators of the broker properties (ConfigDef ranges in TransactionLogConfig,
# TransactionStateManagerConfig, ProducerStateManagerConfig, GroupCoordinatorConfig; every one an INT); the
# dedup window's bound is the simulator's own (Kafka hard-codes 5).
BROKER_RANGES: dict[str, tuple[int, int]] = {
    "transaction.version": (0, 2),  # TransactionVersion's feature levels
    "transaction.max.timeout.ms": (1, INT32[1]),
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": (1, INT32[1]),
    "transactional.id.expiration.ms": (1, INT32[1]),
    "transaction.remove.expired.transaction.cleanup.interval.ms": (1, INT32[1]),
    "transaction.state.log.num.partitions": (1, INT32[1]),
    "producer.id.expiration.ms": (1, INT32[1]),
    "producer.id.expiration.check.interval.ms": (1, INT32[1]),
    "offsets.topic.num.partitions": (1, INT32[1]),
    "group.initial.rebalance.delay.ms": (0, INT32[1]),  # Kafka has no validator here: a delay is >= 0
    "group.min.session.timeout.ms": INT32,
    "group.max.session.timeout.ms": INT32,
    "group.consumer.session.timeout.ms": (1, INT32[1]),
    "group.consumer.min.session.timeout.ms": (1, INT32[1]),
    "group.consumer.heartbeat.interval.ms": (1, INT32[1]),
    "group.consumer.min.heartbeat.interval.ms": (1, INT32[1]),
    "eosim.num.batches.to.retain": (1, 1000),
}


def _check_cluster(cluster: Mapping[str, Any]) -> None:
    hints = _hints(BrokerConfig)
    for key, value in cluster.items():
        location = _key("cluster", key, quote=key not in SHAPE_KEYS)
        if key == "brokers":
            if not _accepts(int, value) or not 1 <= value <= MAX_BROKERS:
                raise _Invalid(location, f"the number of broker nodes, an integer in 1..{MAX_BROKERS}, got "
                                         f"{_describe(value)}")
            continue
        # from_kafka also takes the attribute spelling; Kafka only the dotted one
        wanted = None if "_" in key else hints.get(key.replace(".", "_"))
        if wanted is None:
            known = ", ".join(sorted(BrokerConfig().to_kafka()))
            raise _Invalid(location, f"unknown broker property (supported: {known})")
        raw = list(value) if isinstance(value, tuple) else value
        if not _accepts(wanted, raw):
            raise _Invalid(location, f"expected {_expected(wanted)}, got {_describe(value)}")
        _structure(wanted, raw, location)  # the items of an array
        low, high = BROKER_RANGES.get(key, (None, None))
        if low is not None and _accepts(int, value) and not low <= value <= high:
            raise _Invalid(location, f"must be in {low}..{high}, got {value}")
        try:
            BrokerConfig.from_kafka({key: value})
        except ValueError as err:  # a value the config itself refuses (eosim.reintroduce: not a bug id)
            raise _Invalid(location, str(err)) from None


def _check_replication(s: Scenario) -> None:
    """[cluster] brokers and the topics' replication: what the replicated runtime (sim/_replication.py) runs so
    far is plain produces with acks to replicated partitions, broker kills and restarts, network faults."""
    n = len(s.brokers)
    for i, topic in enumerate(s.topics):
        location = f"topics[{i}]"
        if topic.replication_factor > n:
            raise _Invalid(f"{location}.replication_factor", f"{topic.replication_factor} replicas need as many "
                                                              f"brokers; [cluster] brokers is {n}")
        for key, value in topic.config.items():
            where = _key(f"{location}.config", key, quote=True)
            wanted = TOPIC_CONFIGS.get(key)
            if wanted is None:
                raise _Invalid(where, f"unknown topic config (supported: {', '.join(TOPIC_CONFIGS)})")
            if not _accepts(wanted, value) or (wanted is int and value < 1):
                raise _Invalid(where, f"expected {'an integer >= 1' if wanted is int else _expected(wanted)}, "
                                      f"got {_describe(value)}")
            if n == 1:
                raise _Invalid(where, "replication settings need [cluster] brokers > 1 (one broker runs the "
                                      "single-replica runtime)")
    settings = [tuple(sorted(t.config.items())) for t in s.topics]
    for i, topic_settings in enumerate(settings):
        if topic_settings != settings[0]:
            raise _Invalid(f"topics[{i}].config", "every topic of a scenario takes the same replication settings "
                                                  "(the simulated controller has one set)")
    if n == 1:
        return
    # What the replicated runtime does not run yet (issue 9): each refused with its reason.
    if s.nemesis is not None and "coordinator-failover" in s.nemesis.kinds:
        raise _Invalid("nemesis.kinds", f"{n} brokers: a coordinator moves when its broker dies (draw "
                                        "broker-restart instead of coordinator-failover)")
    for key in ("offsets.topic.num.partitions", "transaction.state.log.num.partitions"):
        if cluster_config(s.cluster).to_kafka()[key] != 1:
            raise _Invalid(_key("cluster", key, quote=True), f"{n} brokers: the internal topics have one partition "
                                                            "each (their leaders host the coordinators)")
    for i, step in enumerate(s.steps):
        if isinstance(step, CoordinatorFailover):
            raise _Invalid(f"steps[{i}].op", f"{n} brokers: a coordinator moves when its broker dies (crash_broker "
                                             "the leader of its internal partition)")


def _check_actor(name: str, actor: Actor) -> None:
    location = _key("actors", name)
    if not re.fullmatch(ACTOR_PATTERN[0], name):
        raise _Invalid(location, f"an actor name is {ACTOR_PATTERN[1]}")
    if name == NEMESIS or re.fullmatch(r"broker-\d+", name):
        raise _Invalid(location, f'"{name}" is reserved: it names the {"nemesis" if name == NEMESIS else "broker"}')
    for key in actor.config:
        setting = find_setting(actor.kind, key)
        if setting is not None and setting.key == "bootstrap.servers":
            raise _Invalid(_key(f"{location}.config", key, quote=True),
                           "set by the runner (the simulator or the conformance suite's broker), not the scenario")
    try:
        actor.client_config
    except ConfigError as err:
        where = _key(f"{location}.config", err.key, quote=True) if err.key in actor.config else f"{location}.config"
        raise _Invalid(where, err.reason) from None


def _check_aged(s: Scenario, name: str, actor: Actor) -> None:
    location = f"{_key('actors', name)}.aged"
    if s.scenario.conformance:
        raise _Invalid(location, "aged state is simulator-only (a real broker cannot be made to have run for "
                                 "years): set scenario.conformance = false")
    if len(s.brokers) > 1:
        raise _Invalid(location, "aged state needs a single broker (the replicas' producer state and "
                                 "__transaction_state's replicas are not aged)")
    if actor.kind != "producer":
        raise _Invalid(location, "only a producer can be aged")
    config = actor.client_config
    if config.transactional_id is not None:
        earlier = list(s.actors)[:list(s.actors).index(name)]
        other = next((n for n in earlier if s.actors[n].aged is not None and s.actors[n].kind == "producer"
                      and s.actors[n].client_config.transactional_id == config.transactional_id), None)
        if other is not None:
            raise _Invalid(location, f'transactional.id "{config.transactional_id}" is aged by actors.{other} '
                                     "too: the coordinator holds one epoch per id, age it on one actor")
        if actor.aged.sequence is not None:
            raise _Invalid(f"{location}.sequence", "a transactional producer's sequences restart at "
                                                   "init_transactions: age its epoch only")
    elif not config.enable_idempotence:
        raise _Invalid(location, "a plain producer has no producer id, epoch or sequence to age: set "
                                 "enable.idempotence = true or a transactional.id")


def _check_partition(s: Scenario, topic: str, partition: int | None, location: str, *, topic_field: str = "topic",
                     partition_field: str = "partition") -> None:
    declared = s.topic(topic)
    if declared is None:
        known = ", ".join(t.name for t in s.topics) or "none declared"
        raise _Invalid(_key(location, topic_field) if topic_field else location,
                       f'no topic "{topic}" in [[topics]] ({known})')
    if partition is not None and partition >= declared.partitions:
        raise _Invalid(_key(location, partition_field),
                       f'partition {partition} is out of range: topic "{topic}" has {declared.partitions} '
                       f"partition{'s' if declared.partitions > 1 else ''} (0..{declared.partitions - 1})")


def _check_step(s: Scenario, step: Step, location: str, alive: dict[str, str | None]) -> None:
    if step.actor == NEMESIS:
        _check_nemesis_step(s, step, location, alive)
        return
    actor = s.actors.get(step.actor)
    if actor is None:
        known = ", ".join(s.actors) or "none declared"
        raise _Invalid(f"{location}.actor", f'no actor "{step.actor}" in [actors] ({known}), nor "{NEMESIS}"')
    if actor.kind not in step.kinds:
        raise _Invalid(f"{location}.op", f'op "{step.op}" is for a {" or ".join(step.kinds)}, '
                                          f'but "{step.actor}" is a {actor.kind}')
    # Lifecycle: a closed or crashed instance is gone until a restart replaces it.
    ended = alive[step.actor]
    if isinstance(step, Restart):
        if ended is None:
            raise _Invalid(f"{location}.op", f'"{step.actor}" is running: close or crash it before a restart')
        alive[step.actor] = None
    elif ended is not None:
        raise _Invalid(f"{location}.op", f'"{step.actor}" was stopped at {ended}: only restart may follow')
    elif isinstance(step, (Close, Crash)):
        alive[step.actor] = location

    if isinstance(step, Produce):
        _check_partition(s, step.topic, step.partition, location)
        topic = s.topic(step.topic)
        if s.scenario.conformance and step.partition is None and step.key is None and topic.partitions > 1:
            raise _Invalid(f"{location}.partition", "a record without key or partition goes to a random partition "
                                                    "of a multi-partition topic: give one, so runs compare")
        _check_expected_delivery(step.expect_delivery, f"{location}.expect_delivery")
    elif isinstance(step, Subscribe):
        for j, topic in enumerate(step.topics):
            _check_partition(s, topic, None, f"{location}.topics[{j}]", topic_field="")
    elif isinstance(step, SendOffsetsToTransaction):
        consumer = s.actors.get(step.consumer)
        if consumer is None or consumer.kind != "consumer":
            consumers = ", ".join(n for n, a in s.actors.items() if a.kind == "consumer") or "none declared"
            raise _Invalid(f"{location}.consumer", f'no consumer actor "{step.consumer}" ({consumers})')
    for name in ("partitions", "offsets", "expect_offsets", "expect_records"):
        for j, entry in enumerate(getattr(step, name, None) or ()):
            where = f"{location}.{name}[{j}]"
            if isinstance(entry, ConsumedRecord) and (entry.topic is None) != (entry.partition is None):
                raise _Invalid(where, "give both topic and partition, or neither")
            if getattr(entry, "topic", None) is not None:
                _check_partition(s, entry.topic, entry.partition, where)


def _check_expected_delivery(want: ExpectedDelivery | None, location: str) -> None:
    if want is None:
        return
    failed = want.error not in (None, "NONE")
    if want.offset is not None and failed:
        raise _Invalid(f"{location}.offset", "a failed delivery has no offset: give offset or error, not both")
    for flag in ("fatal", "retriable", "abortable"):
        if getattr(want, flag) is not None and not failed:
            raise _Invalid(f"{location}.{flag}", "the flags describe a delivery error: give error too")


def _check_nemesis_step(s: Scenario, step: Step, location: str, alive: dict[str, str | None]) -> None:
    if NEMESIS not in step.kinds:
        raise _Invalid(f"{location}.op", f'op "{step.op}" is for a {" or ".join(step.kinds)}, not the nemesis')
    if step.op in SIMULATOR_OPS and s.scenario.conformance:
        if len(s.brokers) == 1 or step.op not in CLUSTER_CONFORMANCE_OPS:
            raise _Invalid(f"{location}.op", f'"{step.op}" is simulator-only{_on_cluster_only(step.op)}: set '
                                             "scenario.conformance = false")
        _check_cluster_conformance_step(s, step, location)
    for name in ("expect_error", "nowait"):
        if getattr(step, name):
            raise _Invalid(f"{location}.{name}", "a nemesis op takes effect at once: there is nothing to wait for")
    allowed = tuple(s.actors) if isinstance(step, Pause) else (*s.actors, *s.brokers)
    for j, node in enumerate(getattr(step, "nodes", ())):
        _check_node(node, allowed, f"{location}.nodes[{j}]")
    _check_unique(getattr(step, "nodes", ()), f"{location}.nodes")
    broker = getattr(step, "broker", BROKERS[0])  # coordinator_failover: the coordinators' broker
    _check_node(broker, s.brokers, f"{location}.broker")
    down = alive[broker]
    if isinstance(step, RestartBroker):
        if down is None:
            raise _Invalid(f"{location}.op", f"{broker} is running: crash_broker before a restart_broker")
        alive[broker] = None
    elif isinstance(step, (CrashBroker, CoordinatorFailover)):
        if down is not None:
            raise _Invalid(f"{location}.op", f"{broker} was crashed at {down}: only restart_broker may follow")
        if isinstance(step, CrashBroker):
            alive[broker] = location


def _on_cluster_only(op: str) -> str:
    return " with one broker" if op in CLUSTER_CONFORMANCE_OPS else ""


def _check_cluster_conformance_step(s: Scenario, step: Step, location: str) -> None:
    """What the real cluster can do as the simulator does: a partition is of brokers only (the driver stops
    their JVMs, which cuts them from every other node, clients included), and a restarted broker's
    coordinators load as long as Kafka's do."""
    if isinstance(step, Partition):
        for j, node in enumerate(step.nodes):
            if node not in s.brokers:
                raise _Invalid(f"{location}.nodes[{j}]", f'"{node}" is not a broker: on the real cluster a '
                                                        "partition stops brokers' JVMs, so it cuts brokers only; "
                                                        "set scenario.conformance = false")
    if isinstance(step, RestartBroker) and step.load_ms != COORDINATOR_LOAD_MS:
        raise _Invalid(f"{location}.load_ms", "a real broker's coordinators load as long as they take: leave "
                                              "load_ms out, or set scenario.conformance = false")


def _check_node(node: str, allowed: tuple[str, ...], location: str) -> None:
    if node not in allowed:
        raise _Invalid(location, f'no node "{node}" (nodes: {", ".join(allowed) or "none"})')


def _check_step_index(index: int | None, s: Scenario, location: str) -> None:
    if index is not None and index >= len(s.steps):
        raise _Invalid(location, f"no step {index}: the steps are 0..{len(s.steps) - 1}")


def _check_faults(s: Scenario) -> None:
    if s.scenario.conformance:  # on Kafka, a proxy drops messages (sim/_realkafka/proxy.py); nothing else
        for i, fault in enumerate(s.faults):
            if fault.after_message is not None:
                raise _Invalid(f"faults[{i}].after_message", "the conformance suite's proxy arms its drops from the "
                                                             "start: set scenario.conformance = false")
            if (reason := proxy_refusal(fault)) is not None:
                raise _Invalid(f"faults[{i}]", f"the conformance suite's proxy cannot do this rule ({reason}): "
                                              "set scenario.conformance = false")
    _check_unique([f.name for f in s.faults], "faults", ".name")
    transactional_ids = sorted({str(a.config["transactional.id"]) for a in s.actors.values()
                                if "transactional.id" in a.config})
    for i, fault in enumerate(s.faults):
        location = f"faults[{i}]"
        if fault.name == NEMESIS:
            raise _Invalid(f"{location}.name", f'"{NEMESIS}" names the random nemesis\' own faults')
        if fault.message is not None and fault.message not in (*API_NAMES, TXN_LOG_APPEND):
            raise _Invalid(f"{location}.message",
                           f'no API "{fault.message}" (APIs: {", ".join((*API_NAMES, TXN_LOG_APPEND))})')
        if fault.message == TXN_LOG_APPEND:
            _check_txn_log_append(fault, location)
        for field_ in ("node", "src", "dst", "after_node"):
            if getattr(fault, field_) is not None:
                _check_node(getattr(fault, field_), (*s.actors, *s.brokers), f"{location}.{field_}")
        if fault.partition is not None and fault.topic is None:
            raise _Invalid(f"{location}.partition", "give the topic too")
        if fault.topic is not None:
            _check_partition(s, fault.topic, fault.partition, location)
        if fault.transactional_id is not None and fault.transactional_id not in transactional_ids:
            raise _Invalid(f"{location}.transactional_id", f'no producer has transactional.id = '
                                                            f'"{fault.transactional_id}"')
        if (fault.ms is None) != (fault.action != "delay"):
            raise _Invalid(f"{location}.ms", "a delay needs ms" if fault.ms is None else "only a delay takes ms")
        if (fault.error is None) != (fault.action != "error"):
            raise _Invalid(f"{location}.error", "an error action needs error" if fault.error is None
                           else "only the error action takes error")
        if fault.error is not None:
            _check_injectable(fault, f"{location}.error")
            if fault.direction == "response":
                raise _Invalid(f"{location}.direction", "the broker answers requests with errors: not responses")
        _check_step_index(fault.after_step, s, f"{location}.after_step")
        _check_trigger(fault, location)
    nemesis = s.nemesis
    if nemesis is None:
        return
    if s.scenario.conformance:
        raise _Invalid("nemesis", "[nemesis] is simulator-only: set scenario.conformance = false")
    _check_unique(nemesis.kinds, "nemesis.kinds")
    _check_unique(nemesis.targets, "nemesis.targets")
    for j, target in enumerate(nemesis.targets):
        _check_node(target, tuple(s.actors), f"nemesis.targets[{j}]")
    if not nemesis.targets and not s.actors:
        raise _Invalid("nemesis.targets", "no actor to strike")
    _check_step_index(nemesis.after_step, s, "nemesis.after_step")
    _check_step_index(nemesis.until_step, s, "nemesis.until_step")
    if None not in (nemesis.after_step, nemesis.until_step) and nemesis.until_step <= nemesis.after_step:
        raise _Invalid("nemesis.until_step", f"must come after after_step ({nemesis.after_step})")
    if "broker-partition" in nemesis.kinds and len(s.brokers) == 1:
        raise _Invalid("nemesis.kinds", "broker-partition strikes one of broker-2 .. broker-N: it needs [cluster] "
                                        "brokers > 1 (with one broker, partition its actors)")
    for j, strike in enumerate(nemesis.strikes):
        _check_strike(strike, tuple(s.actors), f"nemesis.strikes[{j}]", s.brokers[1:])


# which optional Strike fields each kind takes (and needs)
_STRIKE_FIELDS = {"clog": ("ms",), "drop": ("count",), "delay": ("count", "ms"), "error": ("count", "error"),
                  "txn-log": ("count", "error")}


def _check_strike(strike: Strike, actors: tuple[str, ...], location: str, others: tuple[str, ...] = ()) -> None:
    """``others``: the brokers a broker-restart or broker-partition may strike (broker-2 .. broker-N)."""
    if strike.kind in NEMESIS_CLUSTER_KINDS and others:
        if strike.target is None:
            raise _Invalid(f"{location}.target", f"a {strike.kind} in a {len(others) + 1}-broker cluster needs the "
                                                 f"broker it strikes ({', '.join(others)})")
        _check_node(strike.target, others, f"{location}.target")
    elif strike.kind == "broker-partition":
        raise _Invalid(f"{location}.kind", "broker-partition needs [cluster] brokers > 1")
    elif strike.kind in NEMESIS_BROKER_KINDS:
        if strike.target is not None:
            raise _Invalid(f"{location}.target", f"a {strike.kind} strikes the broker: no target")
    elif strike.target is None:
        raise _Invalid(f"{location}.target", f"a {strike.kind} needs the actor it strikes")
    else:
        _check_node(strike.target, actors, f"{location}.target")
    takes = _STRIKE_FIELDS.get(strike.kind, ())
    for name in ("count", "ms", "error"):
        given = getattr(strike, name) is not None
        if given != (name in takes):
            raise _Invalid(f"{location}.{name}", f"a {strike.kind} {'needs' if not given else 'takes no'} {name}")
    if strike.kind == "error":
        error = Errors.__members__.get(strike.error)
        if error is None or not any(error in injectable_errors(api) for api in INFRASTRUCTURE_ERRORS):
            raise _Invalid(f"{location}.error", f'"{strike.error}" is no error a broker answers requests with')
    if strike.kind == "txn-log" and strike.error not in {e.name for e in TXN_LOG_APPEND_ERRORS}:
        known = ", ".join(sorted(e.name for e in TXN_LOG_APPEND_ERRORS))
        raise _Invalid(f"{location}.error", f'"{strike.error}" is no {TXN_LOG_APPEND} error (known: {known})')


def _check_trigger(fault: Fault, location: str) -> None:
    """A rule is armed from the start, after a step, or after the k-th request of an API; never two of these."""
    if fault.after_message is None:
        if fault.after_count != 1:
            raise _Invalid(f"{location}.after_count", "only with after_message")
        if fault.after_node is not None:
            raise _Invalid(f"{location}.after_node", "only with after_message")
        return
    if fault.after_message not in API_NAMES:
        raise _Invalid(f"{location}.after_message", f'no API "{fault.after_message}" (APIs: {", ".join(API_NAMES)})')
    if fault.after_step is not None:
        raise _Invalid(f"{location}.after_message", "give after_step or after_message, not both")


def _check_txn_log_append(fault: Fault, location: str) -> None:
    """A TxnLogAppend is no message on a connection: it can only fail, and has no direction or topic."""
    if fault.action != "error":
        raise _Invalid(f"{location}.action", f'a {TXN_LOG_APPEND} can only fail: action = "error"')
    if fault.direction is not None:
        raise _Invalid(f"{location}.direction", f"a {TXN_LOG_APPEND} is neither a request nor a response")
    if fault.topic is not None:
        raise _Invalid(f"{location}.topic", f"a {TXN_LOG_APPEND} writes __transaction_state: select it by "
                                            "transactional_id")
    if fault.node is not None and fault.node not in BROKERS:
        raise _Invalid(f"{location}.node", f"the transaction coordinator appends on {', '.join(BROKERS)}, "
                                           f"not on {fault.node}")
    for field_ in ("src", "dst"):
        if getattr(fault, field_) is not None:
            raise _Invalid(f"{location}.{field_}", f"a {TXN_LOG_APPEND} is sent nowhere: select its coordinator "
                                                   "by node")


def _check_injectable(fault: Fault, location: str) -> None:
    try:
        error = Errors[fault.error]
    except KeyError:
        raise _Invalid(location, f'no Kafka error "{fault.error}"') from None
    apis = [fault.message] if fault.message is not None else list(INFRASTRUCTURE_ERRORS)
    if not any(error in injectable_errors(api) for api in apis):
        known = sorted({e.name for api in apis for e in injectable_errors(api)})
        what = ("fail an append to __transaction_state" if fault.message == TXN_LOG_APPEND
                else f"answer a {fault.message} request" if fault.message else "answer any request")
        raise _Invalid(location, f"the broker does not {what} with {fault.error} for a reason the "
                                 f"simulator leaves out (injectable: {', '.join(known)})")


def _check_expectations(s: Scenario) -> None:
    seen = set()
    for i, exp in enumerate(s.expect.partitions):
        location = f"expect.partitions[{i}]"
        _check_partition(s, exp.topic, exp.partition, location)
        if (exp.topic, exp.partition) in seen:
            raise _Invalid(location, f"{exp.topic}-{exp.partition} is already expected above")
        seen.add((exp.topic, exp.partition))
        if (exp.high_watermark, exp.last_stable_offset, exp.read_committed, exp.read_uncommitted) == (None,) * 4:
            raise _Invalid(location, "expects nothing: give high_watermark, last_stable_offset, read_committed "
                                     "or read_uncommitted")
    groups = {a.client_config.group_id for a in s.actors.values() if a.kind == "consumer"}
    seen = set()
    for i, exp in enumerate(s.expect.committed):
        location = f"expect.committed[{i}]"
        if exp.group not in groups:
            raise _Invalid(f"{location}.group", f'no consumer actor has group.id = "{exp.group}"')
        _check_partition(s, exp.topic, exp.partition, location)
        if (exp.group, exp.topic, exp.partition) in seen:
            raise _Invalid(location, f"{exp.group} {exp.topic}-{exp.partition} is already expected above")
        seen.add((exp.group, exp.topic, exp.partition))


# --- JSON Schema ---------------------------------------------------------------------------------------


def scenario_json_schema() -> dict[str, Any]:
    """A JSON Schema (2020-12) of the parsed document. It states the shape; cross-references,
    partition ranges and configs are checked by the loader only."""
    schema = _schema(Scenario)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = ("An eosim scenario (docs/scenario-format.md). A leading comment block of the file "
                             "is kept as the scenario's header.")
    return schema


def _schema(tp: Any) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if tp is Step:
        return {"oneOf": [_schema(cls) for cls in OPS.values()]}
    if attrs.has(tp):
        properties = {"op": {"const": tp.op}} if issubclass(tp, Step) else {}
        required = ["op"] if issubclass(tp, Step) else []
        for f in _fields(tp):
            prop = {**_schema(_hints(tp)[f.name]), "description": f.metadata["doc"]}
            if f.metadata["min"] is not None:
                prop["minimum"] = f.metadata["min"]  # applies to the number branch of a union only
            if f.metadata["max"] is not None:  # the value of an integer, the size of an array or a table
                limit = {"array": "maxItems", "object": "maxProperties"}.get(prop.get("type"), "maximum")
                prop[limit] = f.metadata["max"]
            if f.metadata["pattern"]:
                (prop["items"] if "items" in prop else prop)["pattern"] = f.metadata["pattern"][0]
            if f.metadata["nonempty"]:
                prop["minItems"] = 1
            default = f.default.factory() if isinstance(f.default, attrs.Factory) else f.default
            if default is NOTHING:
                required.append(f.name)
            elif default is not None:
                prop["default"] = _unstructure(default)
            properties[f.name] = prop
        obj = {"type": "object", "title": tp.title, "properties": properties, "required": required,
               "additionalProperties": False}
        if tp.__doc__:
            obj["description"] = " ".join(tp.__doc__.split())
        arrays = [{"type": "array", "prefixItems": [properties[name] for name in shape],
                   "minItems": len(shape), "maxItems": len(shape)} for shape in getattr(tp, "positional", ())]
        return {"oneOf": [obj, *arrays]} if arrays else obj
    if origin in (Union, types.UnionType):
        members = [_schema(a) for a in typing.get_args(tp) if a is not type(None)]
        return members[0] if len(members) == 1 else {"anyOf": members}
    if origin is tuple:
        return {"type": "array", "items": _schema(typing.get_args(tp)[0]), "maxItems": MAX_ITEMS}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(typing.get_args(tp)[1]), "maxProperties": MAX_ITEMS}
    if origin is Literal:
        return {"enum": list(typing.get_args(tp))}
    if tp is int:
        return {"type": "integer", "minimum": -MAX_INT - 1, "maximum": MAX_INT}
    if tp is str:
        return {"type": "string", "maxLength": MAX_STRING}
    return {"type": {bool: "boolean", float: "number"}[tp]}
