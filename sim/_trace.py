"""eosim._trace
=========

Every request, response, state transition and client operation becomes a typed ``TraceEvent``. The
trace serialises to JSON lines with sorted keys, so the same seed and inputs give identical bytes.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import tempfile
import types
import typing
from array import array
from bisect import bisect_left
from itertools import accumulate
from typing import IO, Any, Callable, ClassVar, Iterable, Iterator, Sequence, overload

import attrs
from attrs import define, field, frozen

from eosim.models.records import TopicPartition
from eosim.models.values import fast_init


class Absent(enum.Enum):
    """A field an event of this kind may leave out (``None`` is a value: it renders as ``null``)."""

    ABSENT = 0

    __hash__ = object.__hash__  # a singleton: Enum's own hash is a Python call (``ev.error in {...}`` per event)

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent.ABSENT


class TraceSchemaError(TypeError):
    """An event that does not fit its kind's class: an unknown kind, a missing or unknown field."""


class TraceNotKept(LookupError):
    """A read of a trace that kept only what its checkers recall (``Trace.keep_only``; ``keep_trace=False``)."""

    def __init__(self, what: str = "its events") -> None:
        super().__init__(f"this run did not keep {what}: it ran with keep_trace=False, so its trace was checked "
                         "as it was emitted and then dropped; the same scenario and seed with keep_trace=True "
                         "give the whole trace")


@frozen(weakref_slot=False)  # a long run holds millions: not a byte more than its fields
class TraceEvent:
    """One trace event: a subclass per kind (``KINDS``), whose fields are the event's data, kept as the
    values it was emitted with. ``data`` renders them as JSON-ready values only when read, so a run pays
    for rendering only what it writes or checks; a field an event left out (``ABSENT``) is not rendered."""

    kind: ClassVar[str]
    _fields: ClassVar[tuple[str, ...]]  # the data fields, in declaration order
    _tps: ClassVar[frozenset[str]]  # fields holding a TopicPartition ("topic-p" in JSON)

    seq: int
    t: int
    node: str

    @property
    def data(self) -> dict[str, Any]:
        return _data_renderer(type(self))(self)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "t": self.t, "node": self.node, "kind": self.kind, "data": self.data}

    def line(self) -> str:
        """The event's JSON line (no newline): ``to_dict`` encoded with sorted keys, the same bytes,
        built without the dict (what spilling and writing a trace cost per event)."""
        return self._line()[:-1]

    def _line(self) -> str:
        """``line`` and its newline: the kind's generated renderer, once generated (``_first_line``)."""
        return _first_line(self)


KINDS: dict[str, type[TraceEvent]] = {}


def _kind(name: str) -> Callable[[type], type[TraceEvent]]:
    """Register a trace event class for the kind ``name`` (frozen, slots; built by ``fast_init``'s
    ``__init__``: a run builds hundreds of thousands)."""
    def register(cls: type) -> type[TraceEvent]:
        typed_cls = fast_init(frozen(cls, weakref_slot=False))
        typed_cls.kind = name
        own = attrs.fields(typed_cls)[len(attrs.fields(TraceEvent)):]
        typed_cls._fields = tuple(f.name for f in own)
        typed_cls._tps = frozenset(f.name for f in own if f.type in ("TopicPartition", TopicPartition))
        KINDS[name] = typed_cls
        return typed_cls
    return register


def event(seq: int, t: int, node: str, kind: str, fields: dict[str, Any]) -> TraceEvent:
    """The typed event of ``kind`` (what ``Trace.emit`` builds): an unknown kind, a missing or unknown
    field raises ``TraceSchemaError``."""
    try:
        return KINDS[kind](seq, t, node, **fields)
    except (KeyError, TypeError):
        raise _schema_error(kind, fields) from None


def from_dict(row: dict[str, Any]) -> TraceEvent:
    """The typed event of a JSON trace line (``to_dict``'s inverse): topic-partitions come back as
    ``TopicPartition``; the rest stays as JSON has it (the payloads of messages and calls)."""
    kind, data = row["kind"], row["data"]
    cls = KINDS.get(kind)
    if cls is None:
        raise _schema_error(kind, data)
    fields = {name: _topic_partition(kind, name, v) if name in cls._tps else v for name, v in data.items()}
    return event(row["seq"], row["t"], row["node"], kind, fields)


def _topic_partition(kind: str, name: str, value: Any) -> TopicPartition:
    topic, _, partition = value.rpartition("-") if isinstance(value, str) else ("", "", "")
    if not topic or not partition.isdigit():
        raise TraceSchemaError(f"trace event {kind!r}: field {name!r} must be \"topic-partition\", got {value!r:.40}")
    return TopicPartition(topic, int(partition))


def typed(events: Iterable[TraceEvent | dict[str, Any]]) -> Iterator[TraceEvent]:
    """Typed events from typed events or JSON trace rows (``eosim.check_trace`` takes either)."""
    return (e if isinstance(e, TraceEvent) else from_dict(e) for e in events)


# -- the event kinds (docs/design.md, "Trace event kinds") -------------------------------------------

@_kind("net.request")
class NetRequest(TraceEvent):
    dst: str
    correlation_id: int
    msg: str  # the payload's type name
    fields: Any  # the payload: a request of eosim.models (a JSON object when read from a file)


@_kind("net.response")
class NetResponse(TraceEvent):
    dst: str
    correlation_id: int
    msg: str
    fields: Any


@_kind("net.drop")
class NetDrop(TraceEvent):
    dst: str
    correlation_id: int
    msg: str
    closed: bool | Absent = ABSENT  # lost with its connection
    down: bool | Absent = ABSENT  # its broker was crashed


@_kind("net.close")
class NetClose(TraceEvent):
    dst: str
    failed: list[int]  # correlation ids failed with DISCONNECTED


@_kind("fault.arm")
class FaultArm(TraceEvent):
    rule: str
    msg: str | Absent = ABSENT  # the message whose count armed it (after_message)
    count: int | Absent = ABSENT
    action: str | Absent = ABSENT  # the random nemesis's strike
    nodes: list[str] | Absent = ABSENT
    ms: int | Absent = ABSENT
    error: str | Absent = ABSENT


@_kind("fault.drop")
class FaultDrop(TraceEvent):
    rule: str
    correlation_id: int
    msg: str
    src: str
    dst: str


@_kind("fault.hold")
class FaultHold(TraceEvent):
    rule: str
    correlation_id: int
    msg: str
    src: str
    dst: str


@_kind("fault.delay")
class FaultDelay(TraceEvent):
    rule: str
    correlation_id: int
    msg: str
    src: str
    dst: str
    ms: int


@_kind("fault.disconnect")
class FaultDisconnect(TraceEvent):
    """A message's connection closed (``correlation_id, msg, src, dst``), or nodes cut off (``nodes``)."""

    rule: str
    correlation_id: int | Absent = ABSENT
    msg: str | Absent = ABSENT
    src: str | Absent = ABSENT
    dst: str | Absent = ABSENT
    nodes: list[str] | Absent = ABSENT


@_kind("fault.error")
class FaultError(TraceEvent):
    """An injected error: on a message (``correlation_id, src, dst``) or on a txn-log append (``msg``
    "TxnLogAppend", ``broker, write_id, transactional_id``)."""

    rule: str
    msg: str
    error: str
    after_apply: bool
    correlation_id: int | Absent = ABSENT
    src: str | Absent = ABSENT
    dst: str | Absent = ABSENT
    broker: str | Absent = ABSENT
    write_id: int | Absent = ABSENT
    transactional_id: str | Absent = ABSENT


@_kind("fault.partition")
class FaultPartition(TraceEvent):
    rule: str
    nodes: list[str]


@_kind("fault.clog")
class FaultClog(TraceEvent):
    rule: str
    nodes: list[str]
    ms: int


@_kind("fault.pause")
class FaultPause(TraceEvent):
    rule: str
    nodes: list[str]
    ms: int


@_kind("fault.resume")
class FaultResume(TraceEvent):
    rule: str
    nodes: list[str]


@_kind("fault.heal")
class FaultHeal(TraceEvent):
    rule: str


@_kind("log.append")
class LogAppend(TraceEvent):
    tp: TopicPartition
    producer_id: int
    producer_epoch: int
    base_sequence: int
    base_offset: int
    last_offset: int
    transactional: bool
    records: list  # [[offset, key, value], ...]


@_kind("log.duplicate")
class LogDuplicate(TraceEvent):
    tp: TopicPartition
    producer_id: int
    producer_epoch: int
    base_sequence: int
    base_offset: int
    last_offset: int
    records: list  # [[key, value], ...] sent


@_kind("log.aged")
class LogAged(TraceEvent):
    """An aged producer's state, loaded before the first step (docs/scenario-format.md, Long-lived state)."""

    tp: TopicPartition
    producer_id: int
    producer_epoch: int
    last_sequence: int


@_kind("log.reject")
class LogReject(TraceEvent):
    tp: TopicPartition
    producer_id: int
    producer_epoch: int
    base_sequence: int
    error: str
    records: list  # [[key, value], ...] sent


@_kind("log.marker")
class LogMarker(TraceEvent):
    tp: TopicPartition
    offset: int
    producer_id: int
    producer_epoch: int
    coordinator_epoch: int
    control: str  # "COMMIT" or "ABORT"


@_kind("log.reject_marker")
class LogRejectMarker(TraceEvent):
    tp: TopicPartition
    producer_id: int
    producer_epoch: int
    error: str


@_kind("log.offsets")
class LogOffsets(TraceEvent):
    tp: TopicPartition
    log_end_offset: int
    high_watermark: int
    last_stable_offset: int


@_kind("log.truncate")
class LogTruncate(TraceEvent):
    tp: TopicPartition
    offset: int
    records: list  # [[offset, key, value], ...]: what the replica lost (a follower truncating to its new leader's log)


@_kind("log.producer_expired")
class LogProducerExpired(TraceEvent):
    tp: TopicPartition
    producer_id: int


@_kind("txn.log")
class TxnLog(TraceEvent):
    write_id: int
    transactional_id: str
    state: str
    producer_id: int
    producer_epoch: int


@_kind("txn.state")
class TxnState(TraceEvent):
    transactional_id: str
    old: str  # states by Kafka name, e.g. PrepareCommit
    new: str
    producer_id: int
    producer_epoch: int
    txn_timeout_ms: int


@_kind("txn.load")
class TxnLoad(TraceEvent):
    transactional_id: str
    state: str
    producer_id: int
    producer_epoch: int
    coordinator_epoch: int
    txn_timeout_ms: int

    @property
    def new(self) -> str:
        """The state the coordinator holds the transaction in from now (as ``TxnState.new``)."""
        return self.state


@_kind("txn.timeout")
class TxnTimeout(TraceEvent):
    transactional_id: str
    producer_id: int
    producer_epoch: int


@_kind("txn.resign")
class TxnResign(TraceEvent):
    coordinator_epoch: int  # the one given up
    down_ms: int  # until the election


@_kind("txn.elect")
class TxnElect(TraceEvent):
    coordinator_epoch: int
    load_ms: int  # until it serves


@_kind("partition.leader")
class PartitionLeader(TraceEvent):
    tp: TopicPartition
    leader_epoch: int


@_kind("broker.start")
class BrokerStart(TraceEvent):
    timers: dict[str, int]


@_kind("broker.crash")
class BrokerCrash(TraceEvent):
    pass


@_kind("broker.restart")
class BrokerRestart(TraceEvent):
    pass


@_kind("group.load")
class GroupLoad(TraceEvent):
    pass


@_kind("group.offsets")
class GroupOffsets(TraceEvent):
    group_id: str
    tp: TopicPartition
    offset: int
    producer_id: int  # -1 for a plain commit


@_kind("group.pending")
class GroupPending(TraceEvent):
    group_id: str
    tp: TopicPartition
    offset: int
    producer_id: int
    producer_epoch: int


@_kind("group.generation")
class GroupGeneration(TraceEvent):
    group_id: str
    state: str
    generation_id: int
    members: list[str]


@_kind("client.op")
class ClientOp(TraceEvent):
    """A client call, traced when it returns: its ``result``, or its ``error`` (a KafkaError's name and
    flags; a failed delivery keeps its result too)."""

    op: str
    args: dict[str, Any]
    result: Any = ABSENT
    error: str | Absent = ABSENT
    fatal: bool | Absent = ABSENT
    retriable: bool | Absent = ABSENT
    txn_requires_abort: bool | Absent = ABSENT

    def call(self) -> tuple[dict[str, Any], Any]:
        """The call's arguments and result as JSON has them (result None: it returned none)."""
        return plain(self.args), None if self.result is ABSENT else plain(self.result)


@_kind("client.pid")
class ClientPid(TraceEvent):
    transactional_id: str | None
    producer_id: int
    producer_epoch: int


@_kind("client.session_timeout")
class ClientSessionTimeout(TraceEvent):
    """A classic consumer gave up its session on its own (rd_kafka_cgrp_session_timeout_check)."""

    group_id: str


@_kind("client.group_fatal")
class ClientGroupFatal(TraceEvent):
    """A KIP-848 consumer got a fatal ConsumerGroupHeartbeat error and stopped its group membership."""

    group_id: str
    error: str


@_kind("run.end")
class RunEnd(TraceEvent):
    pass


_SCALARS = frozenset((str, int, float, bool, type(None)))


def plain(value: Any) -> Any:
    """Turn model values into JSON-ready ones (enums by name, topic-partitions as "topic-p")."""
    kind = type(value)
    if kind in _SCALARS:  # the common case first
        return value
    render = _RENDERERS.get(kind)
    if render is None:
        render = _RENDERERS[kind] = _renderer(kind)
    return render(value)


# How ``plain`` renders a value of each type, decided once per type (every rule below depends on the
# type only): rendering a spilled or written trace is most of a long run's cost beyond simulating it.
_RENDERERS: dict[type, Callable[[Any], Any]] = {}


def _renderer(kind: type) -> Callable[[Any], Any]:
    if kind is TopicPartition:
        return str
    if kind is bytes:  # a key or value produced as bytes: JSON has no bytes; one-to-one as in eosim._history
        return lambda value: value.decode("utf-8", "surrogateescape")
    if kind is dict:
        return lambda value: {str(plain(k)): v if type(v) in _SCALARS else plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return lambda value: [v if type(v) in _SCALARS else plain(v) for v in value]
    if issubclass(kind, enum.Enum):
        return lambda value: value.name
    if attrs.has(kind):
        return _compile(kind.__name__, _traced_fields(kind), skip_absent=False)
    return lambda value: value


@functools.cache
def _data_renderer(kind: type[TraceEvent]) -> Callable[[TraceEvent], dict[str, Any]]:
    """An event's ``data``: its fields rendered, those left out (``ABSENT``) not at all."""
    return _compile(kind.__name__, kind._fields, skip_absent=True)


def _traced_fields(kind: type) -> tuple[str, ...]:
    """A model value's fields in its trace form: all but those marked ``metadata={"traced": False}``."""
    return tuple(f.name for f in attrs.fields(kind) if f.metadata.get("traced", True))


def _compile(name: str, fields: tuple[str, ...], *, skip_absent: bool) -> Callable[[Any], dict[str, Any]]:
    """A function rendering the attrs fields ``fields`` of a value to a dict, in their order: generated
    code (as attrs generates its methods), without a generic walk over the fields."""
    lines = [f"def render_{name}(value):", "    out = {}"]
    for field_name in fields:
        lines.append(f"    v = value.{field_name}")
        test = "if v is not ABSENT:" if skip_absent else "if True:"
        lines += [f"    {test}", f"        out[{field_name!r}] = v if type(v) in SCALARS else plain(v)"]
    lines.append("    return out")
    namespace: dict[str, Any] = {"ABSENT": ABSENT, "SCALARS": _SCALARS, "plain": plain}
    exec(compile("\n".join(lines), f"<eosim._trace renderer of {name}>", "exec"), namespace)  # noqa: S102
    return namespace[f"render_{name}"]


class _Unrendered(Exception):
    """A value the generated renderers leave to the reference rendering (``ABSENT`` inside a value)."""


# The JSON text of a local variable in generated code, as an f-string expression, for a value of any
# type: ints (which an f-string writes as JSON does), strs and None without a call, a dict by its keys'
# plan, the rest by their type's renderer.
_INLINE = ('({0} if type({0}) is int else A({0}) if type({0}) is str else "null" if {0} is None'
           ' else PLANS[tuple({0})]({0}) if type({0}) is dict else R[type({0})]({0}))')
# ... for a value declared of scalar types: each declared type tested, in the declared order
_SCALAR_TESTS = {int: "{0} if type({0}) is int", str: "A({0}) if type({0}) is str",
                 bool: '"true" if {0} is True else "false" if {0} is False', type(None): '"null" if {0} is None'}


@functools.cache
def _hints(kind: type) -> dict[str, Any]:
    """The declared types of a model value's or an event's fields; none (every field as ``Any``) when an
    annotation names what its module cannot resolve."""
    try:
        return typing.get_type_hints(kind)
    except Exception:  # NameError, or a TypeError of an annotation that is no type: any is possible
        return {}


def _text(code: _Code, var: str, declared: Any, pad: str, within: frozenset[type] = frozenset()) -> str:
    """``var``'s JSON text in generated code, as f-string source (JSON text and ``{...}`` fields), for a
    value declared of type ``declared``. A scalar: an expression testing the value's type, its type's
    renderer when the test fails. A model value or a pair: written in, its parts read first by statements
    at indent ``pad``, which leave a value of another type to the reference rendering (``_Unrendered``:
    the declared types hold in practice). A sequence (of any length): a local, each item written in.
    ``within``: the model types being written around it (a recursive type goes to its renderer)."""
    alternatives = [a for a in typing.get_args(declared) if a is not Absent] \
        if typing.get_origin(declared) in (typing.Union, types.UnionType) else [declared]
    fallback = f"R[type({var})]({var})"
    if all(a in _SCALAR_TESTS for a in alternatives):
        return "{(" + " else ".join(_SCALAR_TESTS[a].format(var) for a in alternatives) + f" else {fallback})}}"
    kind = alternatives[0] if len(alternatives) == 1 else Any
    origin, args = typing.get_origin(kind) or kind, typing.get_args(kind)
    if kind is TopicPartition:  # by identity (``_json_topic_partition``)
        return f"{{(TEXTS.get(id({var})) or {fallback})}}"
    if origin is dict:
        return f"{{(PLANS[tuple({var})]({var}) if type({var}) is dict else {fallback})}}"
    if origin is tuple and args and args[-1] is not Ellipsis:  # a pair, a triple: items of their own types
        items = [code.local() for _ in args]
        code.lines += [f"{pad}if type({var}) is not tuple or len({var}) != {len(args)}:", f"{pad}    raise Unrendered",
                       f"{pad}{', '.join(items)}, = {var}"]
        return "[" + ",".join(_text(code, item, arg, pad, within) for item, arg in zip(items, args)) + "]"
    if origin is tuple or origin is list:  # of one type (Any when undeclared), often of one item
        result, parts, item, declared_item = code.local(), code.local(), code.local(), args[0] if args else Any
        code.lines += [f"{pad}if type({var}) is {origin.__name__} and len({var}) == 1:", f"{pad}    {item}, = {var}"]
        code.lines.append(f"{pad}    {result} = f'[{_text(code, item, declared_item, pad + '    ', within)}]'")
        code.lines += [f"{pad}elif type({var}) is {origin.__name__}:", f"{pad}    {parts} = []",
                       f"{pad}    for {item} in {var}:"]
        text = _text(code, item, declared_item, pad + "        ", within)
        code.lines += [f"{pad}        {parts}.append(f'{text}')", f"{pad}    {result} = f'[{{\",\".join({parts})}}]'",
                       f"{pad}else:", f"{pad}    {result} = {fallback}"]
        return f"{{{result}}}"
    if isinstance(kind, type) and attrs.has(kind) and kind not in within:
        code.lines += [f"{pad}if type({var}) is not {code.constant(kind)}:", f"{pad}    raise Unrendered"]
        return _fields_text(code, var, kind, pad, within)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return f"{{{fallback}}}"
    return f"{{{_INLINE.format(var)}}}"


def _fields_text(code: _Code, var: str, kind: type, pad: str, within: frozenset[type]) -> str:
    """The JSON object of the model value ``var`` of type ``kind``, its traced fields in sorted order, as
    f-string source (``_text``; their parts read first, at indent ``pad``)."""
    declared, texts = _hints(kind), []
    for name in sorted(_traced_fields(kind)):
        field_var = code.local()
        code.lines.append(f"{pad}{field_var} = {var}.{name}")
        text = _text(code, field_var, declared.get(name, Any), pad, within | {kind})
        texts.append(_literal(_ascii(name) + ":") + text)
    return _literal("{") + ",".join(texts) + _literal("}")


@define
class _Code:
    """A generated renderer's source: its lines, fresh local names, and the types it tests (by names)."""

    lines: list[str]
    namespace: dict[str, Any] = field(factory=dict)
    _locals: int = 0

    def local(self) -> str:
        self._locals += 1
        return f"x{self._locals}"

    def constant(self, value: Any) -> str:
        name = f"K{len(self.namespace)}"
        self.namespace[name] = value
        return name


def _literal(text: str) -> str:
    """JSON text (ASCII, as ``_ascii`` writes keys) as the literal part of a generated f'...' string."""
    assert text.isascii() and "\n" not in text, text
    return text.replace("\\", "\\\\").replace("'", "\\'").replace("{", "{{").replace("}", "}}")


def _slot(text: str, expression: str) -> str:
    """Generated f-string source: the JSON ``text`` written in, then the value of ``expression``."""
    return _literal(text) + "{" + expression + "}"


def _generate(name: str, code: _Code) -> Callable[..., str]:
    namespace: dict[str, Any] = {"A": _ascii, "R": _JSON_RENDERERS, "ABSENT": ABSENT, "Unrendered": _Unrendered,
                                 "ENCODE": _encode, "KEYED": _json_dict_keyed, "PLANS": _DICT_PLANS,
                                 "TEXTS": _TP_TEXTS, **code.namespace}
    exec(compile("\n".join(code.lines), f"<eosim._trace {name}>", "exec"), namespace)  # noqa: S102
    return namespace[name]


class _JsonRenderers(dict):
    """``_json``'s renderer of each type, decided on the type's first value (``_json_renderer``)."""

    def __missing__(self, kind: type) -> Callable[[Any], str]:
        render = self[kind] = _json_renderer(kind)
        return render


_JSON_RENDERERS = _JsonRenderers()


class _EnumTexts(dict):
    """An enum type's members' JSON texts (their names), each made on the member's first use."""

    def __missing__(self, member: enum.Enum) -> str:
        text = self[member] = _ascii(member.name)
        return text


def _json(value: Any) -> str:
    """``_encode(plain(value))``, the same text, without building the plain value first."""
    return _JSON_RENDERERS[type(value)](value)


def _json_list_source() -> _Code:
    """``_json_list``: written out for up to four items (a call and a list comprehension less)."""
    code = _Code(["def json_list(value):", "    n = len(value)"])
    for n in range(5):
        items = [f"v{i}" for i in range(n)]
        code.lines += [f"    if n == {n}:"] + ([f"        {', '.join(items)}, = value"] if n else [])
        code.lines.append("        return f'[" + ",".join("{" + _INLINE.format(v) + "}" for v in items) + "]'")
    code.lines.append("    return '[' + ','.join([f'{" + _INLINE.format("v") + "}' for v in value]) + ']'")
    return code


class _DictPlans(dict):
    """A dict's renderer by its keys in order (a client call's arguments, a result: a few shapes each),
    generated on a shape's first dict; bounded, as a run's dicts may have keys drawn from its data."""

    def __missing__(self, keys: tuple) -> Callable[[dict], str]:
        plan = _dict_plan(keys)
        if len(self) < _DICT_PLANS_MAX:
            self[keys] = plan
        return plan


_DICT_PLANS = _DictPlans()
_DICT_PLANS_MAX = 1024
_DICT_PLAN_KEYS_MAX = 32


def _json_dict(value: dict) -> str:
    return _DICT_PLANS[tuple(value)](value)


def _dict_plan(keys: tuple) -> Callable[[dict], str]:
    """Code for dicts with ``keys``, all str (``KEYED`` for others): a key equal to a str of the plan's
    (a str subclass, a StrEnum) has its own text, so each key's type is tested, unless it is the plan's
    own key (the keys of a call's arguments are the same literals each time)."""
    if len(keys) > _DICT_PLAN_KEYS_MAX or not all(type(k) is str for k in keys):
        return _json_dict_keyed
    order = sorted(range(len(keys)), key=keys.__getitem__)
    code = _Code(["def render_dict(d):"])
    if keys:
        names = [f"k{i}" for i in range(len(keys))]
        tests = [f"{k} is not {code.constant(key)} and type({k}) is not str" for k, key in zip(names, keys)]
        code.lines += [f"    {', '.join(names)}, = d", f"    if {' or '.join(tests)}:", "        return KEYED(d)",
                       f"    {', '.join(f'v{i}' for i in range(len(keys)))}, = d.values()"]
    body = ",".join(_slot(_ascii(keys[i]) + ":", _INLINE.format(f"v{i}")) for i in order)
    code.lines.append(f"    return f'{{{{{body}}}}}'")
    return _generate("render_dict", code)


def _json_dict_keyed(value: dict) -> str:
    """A dict whose keys ``plain`` renders (not all str): its keys as JSON has them, sorted."""
    items = {str(plain(k)): v for k, v in value.items()}
    return "{" + ",".join([_ascii(k) + ":" + _json(items[k]) for k in sorted(items)]) + "}"


# A topic-partition's JSON text by its identity: no Python-level ``__hash__`` or ``__eq__`` (attrs'), read
# in generated code as ``TEXTS.get(id(tp))``. Each is held, so its id is no other object's while its text
# is here; only those with a str topic and an int partition (a text that cannot change); a run has a few
# partitions, mostly the same instances: bounded all the same.
_TP_TEXTS: dict[int, str] = {}
_TP_HELD: list[TopicPartition] = []
_TP_TEXTS_MAX = 4096


def _json_topic_partition(tp: TopicPartition) -> str:
    text = _TP_TEXTS.get(id(tp))
    if text is None:
        text = _ascii(str(tp))
        if type(tp.topic) is str and type(tp.partition) is int and len(_TP_TEXTS) < _TP_TEXTS_MAX:
            _TP_TEXTS[id(tp)] = text
            _TP_HELD.append(tp)
    return text


def _json_renderer(kind: type) -> Callable[[Any], str]:
    """``_json`` of one type: ``plain``'s rules (``_renderer``), written as JSON text."""
    if kind is str:
        return _ascii
    if kind is int:
        return int.__repr__
    if kind is bool:
        return lambda value: "true" if value else "false"
    if kind is type(None):
        return lambda value: "null"
    if kind is list or kind is tuple:
        return _generate("json_list", _json_list_source())
    if kind is dict:
        return _json_dict
    if kind is TopicPartition:
        return _json_topic_partition
    if kind is Absent:  # rendered "ABSENT" inside a value: the reference rendering's business
        def unrendered(value: Absent) -> str:
            raise _Unrendered
        return unrendered
    if issubclass(kind, enum.Enum):  # a member's text, looked up (its ``name`` is a Python-level property)
        return _EnumTexts().__getitem__
    if kind is bytes:
        plain_of = _renderer(kind)
        return lambda value: _ascii(plain_of(value))
    if attrs.has(kind):  # its fields written by their declared types (``_text``)
        name = f"json_{kind.__name__}"
        code = _Code([f"def {name}(value):"])
        text = _fields_text(code, "value", kind, "    ", frozenset())
        code.lines.append(f"    return f'{text}'")
        return _generate(name, code)
    return _encode  # floats, str and int subclasses: as the encoder writes them


def _line_renderer(kind: type[TraceEvent]) -> Callable[[TraceEvent], str]:
    """The JSON line (newline included) of an event of one kind, generated: ``_encode(ev.to_dict())``,
    the same bytes, as one f-string with the keys' text written in: the data fields in sorted order as
    ``sort_keys`` has them, each written by its declared type (``_text``), a field left out (``ABSENT``)
    not at all, then the envelope's keys (data, kind, node, seq, t). A value it does not render
    (``ABSENT`` inside a value) goes to the reference."""
    name = f"line_{kind.__name__}"
    code = _Code([f"def {name}(ev):", "    try:"])
    segments = []  # each data field's text, comma first: written in, or a local if the field may be left out
    declared, hints = {f.name: f for f in attrs.fields(kind)}, _hints(kind)
    for field_name in sorted(kind._fields):
        var = code.local()
        code.lines.append(f"        {var} = ev.{field_name}")
        key = "," + _ascii(field_name) + ":"
        if declared[field_name].default is ABSENT:
            segment = code.local()
            code.lines += [f"        if {var} is ABSENT:", f"            {segment} = ''", "        else:"]
            text = _literal(key) + _text(code, var, hints.get(field_name, Any), " " * 12)
            code.lines.append(f"            {segment} = f'{text}'")
            segments.append(f"{{{segment}}}")
        else:
            segments.append(_literal(key) + _text(code, var, hints.get(field_name, Any), " " * 8))
    # the data fields less the first one's comma: cut from the source, or, when the first field may be
    # left out, from the text rendered
    if segments and segments[0].startswith("{x"):
        code.lines.append(f"        data = f'{''.join(segments)}'[1:]")
        data = "{data}"
    else:
        data = "".join(segments)[1:]
    line = (_literal('{"data":{') + data + _literal('},"kind":' + _ascii(kind.kind) + ',"node":')
            + _text(code, "node", str, "") + _literal(',"seq":') + _text(code, "seq", int, "")
            + _literal(',"t":') + _text(code, "t", int, "") + _literal("}") + "\\n")
    code.lines += ["        node, seq, t = ev.node, ev.seq, ev.t",
                   f"        return f'{line}'",
                   "    except Unrendered:",
                   "        return ENCODE(ev.to_dict()) + '\\n'"]
    return _generate(name, code)


def _first_line(ev: TraceEvent) -> str:
    """``TraceEvent._line`` before its kind's renderer is generated (on first use: a run renders a few kinds)."""
    kind = type(ev)
    kind._line = _line_renderer(kind)  # type: ignore[method-assign]
    return kind._line(ev)


class TraceView(Sequence[TraceEvent]):
    """The events of a trace, typed; a spilled one is read back from the spill file on each access, so
    the view holds nothing. ``kinds`` narrows it to events of those kinds, plus the last event (its
    time is where the trace ends)."""

    seq_ordered = True  # readers may stream it rather than sort it

    def __init__(self, trace: Trace, kinds: frozenset[str] | None = None) -> None:
        self._trace, self._kinds = trace, kinds

    def __len__(self) -> int:
        if self._kinds is None:
            return len(self._trace)
        return sum(1 for _ in self)

    @overload
    def __getitem__(self, index: int) -> TraceEvent: ...
    @overload
    def __getitem__(self, index: slice) -> list[TraceEvent]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if self._kinds is not None:
            return list(self)[index]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._trace.event_at(index)

    def __iter__(self) -> Iterator[TraceEvent]:
        return (row if type(row) is not bytes else from_dict(json.loads(row)) for row in self._trace.rows(self._kinds))

    def lines(self) -> Iterator[str]:
        """The JSON lines of the events (``jsonl_lines``), spilled ones copied as written."""
        return (row.decode() if type(row) is bytes else row._line()
                for row in self._trace.rows(self._kinds))

    def of_kinds(self, kinds: frozenset[str]) -> TraceView:
        return TraceView(self._trace, kinds)


# Events a trace holds before it streams them to a temporary file (about 7,000 records of one producer;
# a 100-record nemesis run has about 700): past it the trace's memory stays bounded, and a run pays for
# rendering the events it spills (JSON, as trace.jsonl will have them); below it, nothing.
SPILL_EVENTS = 50_000
# Events held between spills once a trace has spilled: rendered while they are recent (in the CPU's
# caches), about a fifth cheaper per event than a block of SPILL_EVENTS.
SPILL_BLOCK = 2_048
_SPILL_READ = 1 << 20


@define(eq=False)
class Trace:
    """A run's events. A long run's trace streams to an anonymous temporary file (gone with the
    process, however it ends) at ``SPILL_EVENTS`` events, then every ``SPILL_BLOCK``, so its memory stays
    bounded; ``events`` holds those not spilled yet. A reader (``follow``: the run's trace oracle) is handed every event
    once, in seq order, before it is spilled, so it never reads the file back."""

    clock: Callable[[], int]
    events: list[TraceEvent] = field(factory=list)
    _spill: IO[bytes] | None = field(default=None, init=False)
    _offsets: array = field(factory=lambda: array("q"), init=False)  # where each spilled line starts
    _kind_ids: array = field(factory=lambda: array("H"), init=False)  # each spilled event's kind, by id
    _kinds: dict[str, int] = field(factory=dict, init=False)
    _spilled: int = field(default=0, init=False)
    _size: int = field(default=0, init=False)  # bytes spilled
    _reader: Callable[[list[TraceEvent]], None] | None = field(default=None, init=False)
    _read: int = field(default=0, init=False)  # events handed to the reader so far
    _spill_at: int = field(factory=lambda: SPILL_EVENTS, init=False)  # events held that make a spill
    # keep_only: the kinds a spill keeps (None: every kind), and the seq of each line spilled then
    _only: frozenset[type[TraceEvent]] | None = field(default=None, init=False)
    _line_seqs: array = field(factory=lambda: array("q"), init=False)

    def keep_only(self, kinds: frozenset[str]) -> None:
        """Spill only the events of ``kinds`` (those the reader recalls by seq, ``event_at``); the reader has
        every other one before it is dropped. The trace can then no longer be read whole (``TraceNotKept``):
        a run that wants its verdict only skips rendering most of a long trace, and the file stays small."""
        if self._spilled:
            raise ValueError("keep_only() is decided before a trace first spills")
        self._only = frozenset(KINDS[k] for k in kinds)

    def follow(self, reader: Callable[[list[TraceEvent]], None]) -> None:
        """Hand ``reader`` every event of this trace in seq order, in blocks: those so far at the next
        ``catch_up``, each later one at the latest before it is spilled."""
        if self._reader is not None or self._spilled:
            raise ValueError("a trace has one reader, following it from its first event")
        self._reader = reader

    def catch_up(self) -> None:
        """Hand the reader the events it has not had yet."""
        if self._reader is not None and self._read < len(self):
            block = self.events[self._read - self._spilled:]
            self._read = len(self)
            self._reader(block)

    def emit(self, node: str, kind: str, **fields: Any) -> TraceEvent:
        """Trace an event of ``kind`` (a class of ``KINDS``): an unknown kind, a missing or unknown field
        raises ``TraceSchemaError`` here, at the emit site."""
        # Emitted values must not change afterwards (frozen model values, fresh lists): they are
        # rendered when the trace is read or spilled, not now.
        events, t = self.events, self.clock()
        try:  # ``event``, inlined: one Python call less per event on the hot path
            ev = KINDS[kind].make(self._spilled + len(events), t, node, **fields)  # make: no dict of the keywords again
        except (KeyError, TypeError):
            raise _schema_error(kind, fields) from None
        events.append(ev)
        if len(events) >= self._spill_at:
            self._spill_events()
        return ev

    def emitter(self, kind: str) -> Callable[..., TraceEvent]:
        """``emit`` for one kind, as a function ``(node, *, field=value, ...)`` whose keyword-only parameters
        are the kind's fields (a misspelt or missing field is a TypeError at the call, naming it). The hottest
        emit sites hold one: it builds the event without the dict of fields that ``emit`` packs and unpacks
        (about a third of an event's cost)."""
        cls = KINDS.get(kind)
        if cls is None:
            raise _schema_error(kind, {})
        return _emitter_factory(cls)(self, cls, self.clock)

    def __len__(self) -> int:
        return self._spilled + len(self.events)

    def _spill_events(self) -> None:
        self.catch_up()
        if self._only is None:
            spilled = self.events
        else:
            spilled = [ev for ev in self.events if type(ev) in self._only]
            self._line_seqs.extend([ev.seq for ev in spilled])
        if self._spill is None and spilled:
            self._spill = tempfile.TemporaryFile()
        kinds = self._kinds
        for start in range(0, len(spilled), 10_000):  # rendered a block at a time
            block = spilled[start:start + 10_000]
            lines = [ev._line() for ev in block]
            self._kind_ids.extend([kinds.setdefault(ev.kind, len(kinds)) for ev in block])
            # JSON lines are ASCII (non-ASCII is escaped), so a line's bytes are its characters
            self._spill.write("".join(lines).encode("ascii"))  # type: ignore[union-attr]
            self._offsets.extend(accumulate(map(len, lines), initial=self._size))
            self._size = self._offsets.pop()
        self._spilled += len(self.events)
        self.events = []
        self._spill_at = min(SPILL_BLOCK, SPILL_EVENTS)

    def event_at(self, index: int) -> TraceEvent:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index >= self._spilled:
            return self.events[index - self._spilled]
        line = index
        if self._only is not None:  # the spilled lines are those of the kept kinds
            line = bisect_left(self._line_seqs, index)
            if line == len(self._line_seqs) or self._line_seqs[line] != index:
                raise TraceNotKept(f"event {index}")
        assert self._spill is not None
        self._spill.flush()
        end = self._offsets[line + 1] if line + 1 < len(self._offsets) else self._size
        return from_dict(json.loads(os.pread(self._spill.fileno(), end - self._offsets[line], self._offsets[line])))

    def rows(self, kinds: frozenset[str] | None = None) -> Iterator[TraceEvent | bytes]:
        """The events in seq order: each event in memory, the JSON line (bytes) of each spilled one;
        with ``kinds``, only those of these kinds and the last event."""
        if self._only is not None:
            raise TraceNotKept()
        spilled, size, events = self._spilled, self._size, list(self.events)
        last = spilled + len(events) - 1
        wanted = None if kinds is None else {i for k, i in self._kinds.items() if k in kinds}
        if spilled:
            assert self._spill is not None
            self._spill.flush()
            fd, pos, rest, index = self._spill.fileno(), 0, b"", 0
            while pos < size:
                chunk = os.pread(fd, min(_SPILL_READ, size - pos), pos)
                pos += len(chunk)
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    if wanted is None or self._kind_ids[index] in wanted or index == last:
                        yield line + b"\n"
                    index += 1
        for ev in events:
            if kinds is None or ev.kind in kinds or ev.seq == last:
                yield ev

    def view(self) -> TraceView:
        return TraceView(self)

    def dicts(self) -> list[dict[str, Any]]:
        """Every event rendered as a JSON-ready dict (as ``trace.jsonl`` has it)."""
        return [ev.to_dict() for ev in self.view()]

    def to_jsonl(self) -> str:
        return dumps_lines(self.view())


@functools.cache
def _emitter_factory(cls: type[TraceEvent]) -> Callable[[Trace, type[TraceEvent], Callable[[], int]], Callable[..., TraceEvent]]:
    """The code of ``Trace.emitter(cls.kind)``, generated once per kind: ``emit``'s body with the fields passed
    by position."""
    own = attrs.fields(cls)[len(attrs.fields(TraceEvent)):]
    defaults = {f"_default{i}": f.default for i, f in enumerate(own) if f.default is not attrs.NOTHING}
    params = ", ".join(f.name if f.default is attrs.NOTHING else f"{f.name}=_default{i}" for i, f in enumerate(own))
    name = "emit_" + cls.kind.replace(".", "_")
    source = "\n".join([
        "def make(trace, cls, clock):",
        f"    def {name}(node{', *, ' + params if params else ''}):",
        "        events = trace.events",
        "        held = len(events)",
        f"        ev = cls(trace._spilled + held, clock(), node{''.join(', ' + f.name for f in own)})",
        "        events.append(ev)",
        "        if held >= trace._spill_at - 1:  # the events held now reach it",
        "            trace._spill_events()",
        "        return ev",
        f"    {name}.__qualname__ = {name!r}",
        f"    return {name}",
    ])
    namespace: dict[str, Any] = dict(defaults)
    exec(compile(source, f"<eosim._trace {name}>", "exec"), namespace)  # noqa: S102
    return namespace["make"]


def _schema_error(kind: str, fields: dict[str, Any]) -> TraceSchemaError:
    cls = KINDS.get(kind)
    if cls is None:
        return TraceSchemaError(f"unknown trace event kind {kind!r} (eosim._trace.KINDS)")
    unknown = sorted(set(fields) - set(cls._fields))
    if unknown:
        return TraceSchemaError(f"trace event {kind!r} has no field {unknown[0]!r} ({cls.__name__})")
    missing = [f.name for f in attrs.fields(cls)[3:] if f.default is attrs.NOTHING and f.name not in fields]
    return TraceSchemaError(f"trace event {kind!r} lacks field {missing[0]!r} ({cls.__name__})" if missing
                            else f"trace event {kind!r}: cannot build {cls.__name__} from {sorted(fields)}")


_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
_ascii = json.encoder.encode_basestring_ascii  # how _encode writes a str (ensure_ascii)


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON line per row, sorted keys: byte-identical for equal rows."""
    if isinstance(rows, TraceView):
        return rows.lines()
    return (_encode(r) + "\n" for r in rows)


def dumps_lines(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(jsonl_lines(rows))


def load_jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
