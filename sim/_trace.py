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
from array import array
from typing import IO, Any, Callable, ClassVar, Iterable, Iterator, Sequence, overload

import attrs
from attrs import define, field, frozen

from eosim.models.records import TopicPartition


class Absent(enum.Enum):
    """A field an event of this kind may leave out (``None`` is a value: it renders as ``null``)."""

    ABSENT = 0

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent.ABSENT


class TraceSchemaError(TypeError):
    """An event that does not fit its kind's class: an unknown kind, a missing or unknown field."""


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
        return _line_renderer(type(self))(self)


KINDS: dict[str, type[TraceEvent]] = {}


def _kind(name: str) -> Callable[[type], type[TraceEvent]]:
    """Register a trace event class for the kind ``name`` (frozen, slots)."""
    def register(cls: type) -> type[TraceEvent]:
        typed_cls = frozen(cls, weakref_slot=False)
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


def _json(value: Any) -> str:
    """``_encode(plain(value))``, the same text, without building the plain value first."""
    kind = type(value)
    if kind is str:
        return _ascii(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    render = _JSON_RENDERERS.get(kind)
    if render is None:
        render = _JSON_RENDERERS[kind] = _json_renderer(kind)
    return render(value)


_JSON_RENDERERS: dict[type, Callable[[Any], str]] = {}


def _json_renderer(kind: type) -> Callable[[Any], str]:
    """``_json`` of one type: ``plain``'s rules (``_renderer``), written as JSON text."""
    if kind is list or kind is tuple:
        return lambda value: "[" + ",".join([_json(v) for v in value]) + "]"
    if kind is dict:
        def render_dict(value: dict) -> str:
            items = {str(plain(k)): v for k, v in value.items()}
            return "{" + ",".join([_ascii(k) + ":" + _json(items[k]) for k in sorted(items)]) + "}"
        return render_dict
    if kind is TopicPartition or kind is bytes or issubclass(kind, enum.Enum):
        plain_of = _renderer(kind)
        return lambda value: _ascii(plain_of(value))
    if attrs.has(kind):
        names = sorted(_traced_fields(kind))
        source = [f"def json_{kind.__name__}(value):", "    return '{' + ','.join(["]
        source += [f"        {_ascii(name) + ':'!r} + json(value.{name})," for name in names]
        source.append("    ]) + '}'")
        namespace: dict[str, Any] = {"json": _json}
        exec(compile("\n".join(source), f"<eosim._trace json of {kind.__name__}>", "exec"), namespace)  # noqa: S102
        return namespace[f"json_{kind.__name__}"]
    return _encode  # floats, str and int subclasses: as the encoder writes them


@functools.cache
def _line_renderer(kind: type[TraceEvent]) -> Callable[[TraceEvent], str]:
    """``TraceEvent.line`` of one kind, generated: its fields in sorted order as ``sort_keys`` has them,
    those left out (``ABSENT``) not at all, then the envelope's keys (data, kind, node, seq, t)."""
    lines = [f"def line_{kind.__name__}(ev):", "    parts = []"]
    for name in sorted(kind._fields):
        lines += [f"    v = ev.{name}", "    if v is not ABSENT:", f"        parts.append({_ascii(name) + ':'!r} + json(v))"]
    envelope = '},"kind":' + _ascii(kind.kind) + ',"node":'
    lines.append(f"    return '{{\"data\":{{' + ','.join(parts) + {envelope!r} + json(ev.node) + ',\"seq\":' "
                 "+ json(ev.seq) + ',\"t\":' + json(ev.t) + '}'")
    namespace: dict[str, Any] = {"ABSENT": ABSENT, "json": _json}
    exec(compile("\n".join(lines), f"<eosim._trace line of {kind.__name__}>", "exec"), namespace)  # noqa: S102
    return namespace[f"line_{kind.__name__}"]


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
        return (row.decode() if type(row) is bytes else row.line() + "\n"
                for row in self._trace.rows(self._kinds))

    def of_kinds(self, kinds: frozenset[str]) -> TraceView:
        return TraceView(self._trace, kinds)


# Events a trace holds before it streams them to a temporary file (about 7,000 records of one producer;
# a 100-record nemesis run has about 700): past it the trace's memory stays bounded, and a run pays for
# rendering the events it spills (JSON, as trace.jsonl will have them); below it, nothing.
SPILL_EVENTS = 50_000
_SPILL_READ = 1 << 20


@define(eq=False)
class Trace:
    """A run's events. A long run's trace streams to an anonymous temporary file (gone with the
    process, however it ends) every ``SPILL_EVENTS`` events, so its memory stays bounded; ``events``
    holds those not spilled yet. A reader (``follow``: the run's trace oracle) is handed every event
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
            ev = KINDS[kind](self._spilled + len(events), t, node, **fields)
        except (KeyError, TypeError):
            raise _schema_error(kind, fields) from None
        events.append(ev)
        if len(events) >= SPILL_EVENTS:
            self._spill_events()
        return ev

    def __len__(self) -> int:
        return self._spilled + len(self.events)

    def _spill_events(self) -> None:
        self.catch_up()
        if self._spill is None:
            self._spill = tempfile.TemporaryFile()
        for start in range(0, len(self.events), 10_000):  # rendered a block at a time
            lines = []
            for ev in self.events[start:start + 10_000]:
                line = (ev.line() + "\n").encode()
                self._offsets.append(self._size)
                self._kind_ids.append(self._kinds.setdefault(ev.kind, len(self._kinds)))
                self._size += len(line)
                lines.append(line)
            self._spill.writelines(lines)
        self._spilled += len(self.events)
        self.events = []

    def event_at(self, index: int) -> TraceEvent:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index >= self._spilled:
            return self.events[index - self._spilled]
        assert self._spill is not None
        self._spill.flush()
        end = self._offsets[index + 1] if index + 1 < self._spilled else self._size
        return from_dict(json.loads(os.pread(self._spill.fileno(), end - self._offsets[index], self._offsets[index])))

    def rows(self, kinds: frozenset[str] | None = None) -> Iterator[TraceEvent | bytes]:
        """The events in seq order: each event in memory, the JSON line (bytes) of each spilled one;
        with ``kinds``, only those of these kinds and the last event."""
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
